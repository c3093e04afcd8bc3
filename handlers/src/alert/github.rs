//! GitHub webhook deliveries read into [`Signal`]s: completed workflow runs
//! and deployment statuses. Pings are recognised; every other event is ignored.

use super::brief;
use super::signal::{DeploymentStatus, Signal, WorkflowRun};
use crate::text::loggable;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// What one delivery amounts to.
// One per delivery, handed straight to the decisions: boxing the signal would
// save nothing and make every caller unwrap it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Signal(Signal),
    /// GitHub's check that the hook works, sent when the hook is created.
    Ping {
        zen: Option<String>,
        hook_id: Option<u64>,
    },
    /// Nothing to act on; `why` says so in a few words, for the log.
    Ignored {
        why: String,
    },
}

/// Why a delivery's body could not be read. It never quotes the body: at
/// most one misplaced value, and only a short one, as serde_json names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("`{event}` payload of the wrong shape: {detail}")]
    WrongShape { event: &'static str, detail: String },
    #[error("`{event}` payload without `{field}`")]
    Missing { event: &'static str, field: &'static str },
}

/// Whether opsbot reads `event` at all; a hook that sends more (say, a
/// repository hook with "Send me everything") is answered at the door for
/// the rest, without storing them.
pub fn is_used(event: &str) -> bool {
    matches!(event, "workflow_run" | "deployment_status")
}

/// Reads a delivery; `event` is its `X-GitHub-Event` header. The body of an
/// event that is not used is not read at all, so it cannot fail.
pub fn parse(event: &str, body: &[u8]) -> Result<Parsed, PayloadError> {
    match event {
        "ping" => {
            let ping: PingEvent = read("ping", body)?;
            Ok(Parsed::Ping { zen: ping.zen, hook_id: ping.hook_id })
        }
        "workflow_run" => workflow_run(body),
        "deployment_status" => deployment_status(body).map(|d| Parsed::Signal(Signal::Deployment(d))),
        "" => Ok(Parsed::Ignored { why: "no event name (the `X-GitHub-Event` header is empty)".into() }),
        other => Ok(Parsed::Ignored { why: format!("`{}` events are not used", loggable(other)) }),
    }
}

fn workflow_run(body: &[u8]) -> Result<Parsed, PayloadError> {
    const EVENT: &str = "workflow_run";
    let missing = |field| PayloadError::Missing { event: EVENT, field };
    let payload: WorkflowRunEvent = read(EVENT, body)?;
    let action = payload.action.ok_or(missing("action"))?;
    // `requested` says nothing yet; `in_progress` only tells a deployment
    // its run started; the same run arrives again as `completed`.
    let in_progress = action == "in_progress";
    if action != "completed" && !in_progress {
        return Ok(Parsed::Ignored {
            why: format!(
                "`workflow_run` action `{}` is not used, only `in_progress` and `completed`",
                loggable(&action)
            ),
        });
    }
    let run = payload.workflow_run.ok_or(missing("workflow_run"))?;
    let repository = payload.repository.ok_or(missing("repository"))?;
    let workflow = payload.workflow.unwrap_or_default();

    let run_id = run.id.ok_or(missing("workflow_run.id"))?;
    let repo = nonempty(repository.full_name).ok_or(missing("repository.full_name"))?;
    let workflow_id = run.workflow_id.or(workflow.id).ok_or(missing("workflow_run.workflow_id"))?;
    let run_number = run.run_number.ok_or(missing("workflow_run.run_number"))?;
    let workflow_path = nonempty(run.path).or(nonempty(workflow.path)).unwrap_or_default();
    // The run's name is empty when the workflow file names none; GitHub then
    // shows the path, and so do we.
    let workflow_name = nonempty(run.name)
        .or(nonempty(workflow.name))
        .or(nonempty(Some(workflow_path.clone())))
        .ok_or(missing("workflow_run.name"))?;
    let started = run.run_started_at.or(run.created_at).ok_or(missing("workflow_run.run_started_at"))?;
    let finished = run.updated_at.ok_or(missing("workflow_run.updated_at"))?;
    let head_commit = run.head_commit.unwrap_or_default();
    let display_title = nonempty(run.display_title).unwrap_or_default();
    let title = nonempty(head_commit.message)
        .and_then(|m| m.lines().next().map(|l| l.trim_end().to_string()))
        .filter(|l| !l.is_empty())
        .or(nonempty(Some(display_title.clone())))
        .unwrap_or_default();
    let author = nonempty(head_commit.author.and_then(|a| a.name))
        .or(login(run.actor))
        .or(login(run.triggering_actor))
        .unwrap_or_default();
    let url = nonempty(run.html_url)
        .or(nonempty(repository.html_url).map(|r| format!("{r}/actions/runs/{run_id}")))
        .unwrap_or_default();

    let signal = if in_progress { Signal::WorkflowRunStarted } else { Signal::WorkflowRun };
    Ok(Parsed::Signal(signal(WorkflowRun {
        repo,
        workflow: workflow_name,
        workflow_path,
        workflow_id,
        // GitHub sends no branch for some runs; such a run is simply not on
        // the default branch.
        branch: run.head_branch.unwrap_or_default(),
        default_branch: repository.default_branch.unwrap_or_default(),
        run_id,
        run_number,
        // Payloads from before re-runs existed carry no attempt.
        attempt: run.run_attempt.unwrap_or(1),
        // A completed run with no conclusion has happened; it is kept, as
        // neither a failure nor a pass, rather than refused.
        conclusion: nonempty(run.conclusion).unwrap_or_else(|| "unknown".into()),
        title,
        author,
        sha: nonempty(run.head_sha).or(nonempty(head_commit.id)).unwrap_or_default(),
        url,
        started,
        finished,
        display_title,
    })))
}

fn deployment_status(body: &[u8]) -> Result<DeploymentStatus, PayloadError> {
    const EVENT: &str = "deployment_status";
    let missing = |field| PayloadError::Missing { event: EVENT, field };
    let payload: DeploymentStatusEvent = read(EVENT, body)?;
    let status = payload.deployment_status.ok_or(missing("deployment_status"))?;
    let deployment = payload.deployment.ok_or(missing("deployment"))?;
    let repository = payload.repository.ok_or(missing("repository"))?;

    let repo = nonempty(repository.full_name).ok_or(missing("repository.full_name"))?;
    let state = nonempty(status.state).ok_or(missing("deployment_status.state"))?;
    let deployment_id = deployment.id.ok_or(missing("deployment.id"))?;
    let environment = nonempty(status.environment)
        .or(nonempty(deployment.environment))
        .ok_or(missing("deployment_status.environment"))?;
    let at = status.created_at.ok_or(missing("deployment_status.created_at"))?;
    // GitHub sends `target_url` as "" when the deployer set none.
    let url = nonempty(status.log_url)
        .or(nonempty(status.target_url))
        .or(nonempty(status.environment_url))
        .or(nonempty(repository.html_url).map(|r| format!("{r}/deployments")))
        .unwrap_or_default();

    Ok(DeploymentStatus {
        repo,
        environment,
        state,
        deployment_id,
        git_ref: deployment.git_ref.unwrap_or_default(),
        sha: deployment.sha.unwrap_or_default(),
        description: status.description.unwrap_or_default(),
        url,
        creator: login(deployment.creator).or(login(payload.sender)).unwrap_or_default(),
        at,
    })
}

fn read<T: DeserializeOwned>(event: &'static str, body: &[u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => PayloadError::WrongShape { event, detail: brief(&e) },
        _ => PayloadError::NotJson(brief(&e)),
    })
}

fn nonempty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn login(user: Option<User>) -> Option<String> {
    nonempty(user.and_then(|u| u.login))
}

// The payloads, as far as they are read. Every field is optional so that a
// missing one is reported by name rather than as serde's "missing field".

#[derive(Deserialize)]
struct PingEvent {
    zen: Option<String>,
    hook_id: Option<u64>,
}

#[derive(Deserialize)]
struct WorkflowRunEvent {
    action: Option<String>,
    workflow_run: Option<Run>,
    workflow: Option<Workflow>,
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Run {
    id: Option<u64>,
    name: Option<String>,
    path: Option<String>,
    workflow_id: Option<u64>,
    head_branch: Option<String>,
    head_sha: Option<String>,
    run_number: Option<u64>,
    run_attempt: Option<u32>,
    conclusion: Option<String>,
    display_title: Option<String>,
    html_url: Option<String>,
    run_started_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    head_commit: Option<Commit>,
    actor: Option<User>,
    triggering_actor: Option<User>,
}

#[derive(Default, Deserialize)]
struct Workflow {
    id: Option<u64>,
    name: Option<String>,
    path: Option<String>,
}

#[derive(Default, Deserialize)]
struct Commit {
    id: Option<String>,
    message: Option<String>,
    author: Option<CommitAuthor>,
}

#[derive(Deserialize)]
struct CommitAuthor {
    name: Option<String>,
}

#[derive(Deserialize)]
struct User {
    login: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: Option<String>,
    html_url: Option<String>,
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct DeploymentStatusEvent {
    deployment_status: Option<StatusPayload>,
    deployment: Option<Deployment>,
    repository: Option<Repository>,
    sender: Option<User>,
}

#[derive(Deserialize)]
struct StatusPayload {
    state: Option<String>,
    environment: Option<String>,
    description: Option<String>,
    log_url: Option<String>,
    target_url: Option<String>,
    environment_url: Option<String>,
    created_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Deployment {
    id: Option<u64>,
    environment: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
    creator: Option<User>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::signal::Conclusion;
    use serde_json::{json, Value};

    const RUN_COMPLETED: &str = include_str!("../../tests/fixtures/github/workflow_run.completed.success.json");
    const RUN_REQUESTED: &str = include_str!("../../tests/fixtures/github/workflow_run.requested.json");
    const JOB_FAILED: &str = include_str!("../../tests/fixtures/github/workflow_job.completed.failure.json");
    const DEPLOYMENT_STATUS: &str = include_str!("../../tests/fixtures/github/deployment_status.created.json");
    const PING: &str = include_str!("../../tests/fixtures/github/ping.json");

    /// The fixture with `edit` applied to its JSON.
    fn edited(fixture: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut value: Value = serde_json::from_str(fixture).unwrap();
        edit(&mut value);
        serde_json::to_vec(&value).unwrap()
    }

    fn run(body: &[u8]) -> WorkflowRun {
        match parse("workflow_run", body) {
            Ok(Parsed::Signal(Signal::WorkflowRun(run))) => run,
            other => panic!("expected a workflow run, got {other:?}"),
        }
    }

    fn deployment(body: &[u8]) -> DeploymentStatus {
        match parse("deployment_status", body) {
            Ok(Parsed::Signal(Signal::Deployment(status))) => status,
            other => panic!("expected a deployment status, got {other:?}"),
        }
    }

    fn with_conclusion(conclusion: Value) -> Vec<u8> {
        edited(RUN_COMPLETED, |v| v["workflow_run"]["conclusion"] = conclusion)
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_successful_run_parses_with_the_workflow_name_from_the_workflow_when_the_run_names_none() {
        let run = run(RUN_COMPLETED.as_bytes());
        assert_eq!(
            run,
            WorkflowRun {
                repo: "octo-org/octo-repo".into(),
                workflow: "test".into(),
                workflow_path: ".github/workflows/test.yml".into(),
                workflow_id: 2823525,
                branch: "master".into(),
                default_branch: "master".into(),
                run_id: 289782451,
                run_number: 163,
                attempt: 1,
                conclusion: "success".into(),
                title: "build(test): check workflow run event payload".into(),
                author: "Matthias Fax".into(),
                sha: "3484a3fb816e0859fd6e1cea078d76385ff50625".into(),
                url: "https://github.com/octo-org/octo-repo/actions/runs/289782451".into(),
                started: at("2020-10-05T16:33:49Z"),
                finished: at("2020-10-05T16:33:49Z"),
                display_title: "ci(action): update actions/setup-node digest to 8c91899".into(),
            }
        );
        assert_eq!(run.conclusion(), Conclusion::Passed);
    }

    #[test]
    fn a_failed_run_on_the_default_branch_parses_with_its_commit_title_and_attempt() {
        let body = edited(RUN_COMPLETED, |v| {
            let run = &mut v["workflow_run"];
            run["conclusion"] = json!("failure");
            run["run_attempt"] = json!(2);
            run["updated_at"] = json!("2020-10-05T16:41:02Z");
            run["head_commit"]["message"] = json!("Fix the cache key\r\n\nIt missed the lockfile.");
        });
        let run = run(&body);
        assert_eq!(run.conclusion, "failure");
        assert_eq!(run.conclusion(), Conclusion::Failed);
        assert_eq!(run.attempt, 2);
        assert_eq!(run.title, "Fix the cache key");
        assert_eq!(run.branch, run.default_branch);
        assert_eq!(run.duration(), chrono::TimeDelta::seconds(433));
    }

    #[test]
    fn a_startup_failure_is_kept_as_github_names_it_and_counts_as_a_failure() {
        let run = run(&with_conclusion(json!("startup_failure")));
        assert_eq!(run.conclusion, "startup_failure");
        assert_eq!(run.conclusion(), Conclusion::Failed);
    }

    #[test]
    fn a_cancelled_run_is_neither_a_failure_nor_a_pass() {
        let run = run(&with_conclusion(json!("cancelled")));
        assert_eq!(run.conclusion, "cancelled");
        assert_eq!(run.conclusion(), Conclusion::Neither);
    }

    #[test]
    fn a_completed_run_without_a_conclusion_is_unknown_and_neither() {
        for missing in [json!(null), json!("")] {
            let run = run(&with_conclusion(missing));
            assert_eq!(run.conclusion, "unknown");
            assert_eq!(run.conclusion(), Conclusion::Neither);
        }
        let run = run(&edited(RUN_COMPLETED, |v| {
            v["workflow_run"].as_object_mut().unwrap().remove("conclusion");
        }));
        assert_eq!(run.conclusion, "unknown");
    }

    #[test]
    fn a_requested_run_is_ignored_and_one_in_progress_is_a_start_that_alerts_nobody() {
        let Ok(Parsed::Ignored { why }) = parse("workflow_run", RUN_REQUESTED.as_bytes()) else {
            panic!("a requested run is not ignored");
        };
        assert_eq!(why, "`workflow_run` action `requested` is not used, only `in_progress` and `completed`");
        let in_progress = edited(RUN_REQUESTED, |v| v["action"] = json!("in_progress"));
        let Ok(Parsed::Signal(signal @ Signal::WorkflowRunStarted(_))) = parse("workflow_run", &in_progress) else {
            panic!("an in_progress run is a start");
        };
        let runbook = crate::Runbook::seed();
        assert_eq!(crate::alert::decide::needs(&signal, &runbook), crate::alert::decide::Need::Nothing);
    }

    #[test]
    fn a_run_without_a_head_commit_takes_its_title_from_the_display_title_and_its_author_from_the_actor() {
        let body = edited(RUN_COMPLETED, |v| {
            let run = v["workflow_run"].as_object_mut().unwrap();
            run.remove("head_commit");
            run["actor"]["login"] = json!("octo-actor");
        });
        let run = run(&body);
        assert_eq!(run.title, "ci(action): update actions/setup-node digest to 8c91899");
        assert_eq!(run.author, "octo-actor");
        assert_eq!(run.sha, "3484a3fb816e0859fd6e1cea078d76385ff50625");
    }

    #[test]
    fn a_run_without_an_actor_is_by_its_triggering_actor() {
        let body = edited(RUN_COMPLETED, |v| {
            let run = v["workflow_run"].as_object_mut().unwrap();
            run["head_commit"] = Value::Null;
            run["actor"] = Value::Null;
            run["triggering_actor"]["login"] = json!("re-runner");
        });
        assert_eq!(run(&body).author, "re-runner");
    }

    #[test]
    fn a_run_with_no_names_is_called_by_its_path() {
        let body = edited(RUN_COMPLETED, |v| {
            v.as_object_mut().unwrap().remove("workflow");
        });
        let run = run(&body);
        assert_eq!(run.workflow, ".github/workflows/test.yml");
        assert_eq!(run.workflow_id, 2823525);
    }

    #[test]
    fn a_named_run_keeps_its_own_name() {
        let body = edited(RUN_COMPLETED, |v| v["workflow_run"]["name"] = json!("CI"));
        assert_eq!(run(&body).workflow, "CI");
    }

    #[test]
    fn a_run_without_a_start_time_started_when_it_was_created_and_without_an_attempt_is_the_first() {
        let body = edited(RUN_COMPLETED, |v| {
            let run = v["workflow_run"].as_object_mut().unwrap();
            run.remove("run_started_at");
            run.remove("run_attempt");
        });
        let run = run(&body);
        assert_eq!(run.started, at("2020-10-05T16:33:24Z"));
        assert_eq!(run.attempt, 1);
    }

    #[test]
    fn a_run_without_its_id_is_refused_by_name() {
        let body = edited(RUN_COMPLETED, |v| {
            v["workflow_run"].as_object_mut().unwrap().remove("id");
        });
        let error = parse("workflow_run", &body).unwrap_err();
        assert_eq!(error.to_string(), "`workflow_run` payload without `workflow_run.id`");
    }

    #[test]
    fn a_deployment_status_parses_and_links_to_the_deployments_page_when_it_has_no_log_or_target() {
        let status = deployment(DEPLOYMENT_STATUS.as_bytes());
        assert_eq!(
            status,
            DeploymentStatus {
                repo: "Codertocat/Hello-World".into(),
                environment: "production".into(),
                state: "success".into(),
                deployment_id: 145988746,
                git_ref: "master".into(),
                sha: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
                description: String::new(),
                url: "https://github.com/Codertocat/Hello-World/deployments".into(),
                creator: "Codertocat".into(),
                at: at("2019-05-15T15:20:55Z"),
            }
        );
    }

    #[test]
    fn a_failed_deployment_parses_with_its_state_description_and_log() {
        let body = edited(DEPLOYMENT_STATUS, |v| {
            let status = &mut v["deployment_status"];
            status["state"] = json!("failure");
            status["description"] = json!("Health check timed out");
            status["target_url"] = json!("https://deploy.example.com/jobs/7");
            status["log_url"] = json!("https://deploy.example.com/jobs/7/log");
        });
        let status = deployment(&body);
        assert_eq!(status.state, "failure");
        assert_eq!(status.description, "Health check timed out");
        assert_eq!(status.url, "https://deploy.example.com/jobs/7/log");
    }

    #[test]
    fn a_deployment_status_without_its_own_environment_or_creator_takes_the_deployments_and_the_senders() {
        let body = edited(DEPLOYMENT_STATUS, |v| {
            v["deployment_status"].as_object_mut().unwrap().remove("environment");
            v["deployment"]["environment"] = json!("staging");
            v["deployment"]["creator"] = Value::Null;
            v["sender"]["login"] = json!("deploy-bot");
            v["deployment_status"]["target_url"] = json!("https://deploy.example.com/jobs/8");
        });
        let status = deployment(&body);
        assert_eq!(status.environment, "staging");
        assert_eq!(status.creator, "deploy-bot");
        assert_eq!(status.url, "https://deploy.example.com/jobs/8");
    }

    #[test]
    fn a_ping_parses_with_its_zen_and_hook_id() {
        assert_eq!(
            parse("ping", PING.as_bytes()),
            Ok(Parsed::Ping { zen: Some("Anything added dilutes everything else.".into()), hook_id: Some(109948940) })
        );
        assert_eq!(parse("ping", b"{}"), Ok(Parsed::Ping { zen: None, hook_id: None }));
    }

    #[test]
    fn events_that_are_not_used_are_ignored_whatever_their_body() {
        assert_eq!(
            parse("workflow_job", JOB_FAILED.as_bytes()),
            Ok(Parsed::Ignored { why: "`workflow_job` events are not used".into() })
        );
        assert_eq!(
            parse("issues", b"\xff not even JSON"),
            Ok(Parsed::Ignored { why: "`issues` events are not used".into() })
        );
        let Ok(Parsed::Ignored { why }) = parse("", b"{}") else { panic!("an unnamed event is not ignored") };
        assert!(why.contains("X-GitHub-Event"), "{why}");
        let Ok(Parsed::Ignored { why }) = parse(&"x\n".repeat(1000), b"{}") else {
            panic!("a long name is not ignored")
        };
        assert!(why.len() < 100 && !why.contains('\n'), "{why}");
    }

    #[test]
    fn garbage_bytes_are_not_json() {
        for event in ["ping", "workflow_run", "deployment_status"] {
            for body in [&b""[..], b"\x00\xff\xfe", b"<html>", b"{\"action\": \"completed\""] {
                let error = parse(event, body).unwrap_err();
                assert!(matches!(error, PayloadError::NotJson(_)), "{event} {body:?}: {error:?}");
                assert!(error.to_string().starts_with("not JSON: "), "{error}");
            }
        }
    }

    #[test]
    fn json_of_the_wrong_shape_is_refused_saying_what_was_wrong() {
        let cases: [(&str, &[u8], &str); 7] = [
            ("workflow_run", b"\"a string\"", "`workflow_run` payload of the wrong shape: invalid type: string"),
            ("ping", b"[1]", "`ping` payload of the wrong shape"),
            ("workflow_run", b"{}", "`workflow_run` payload without `action`"),
            ("workflow_run", b"{\"action\":\"completed\"}", "`workflow_run` payload without `workflow_run`"),
            (
                "workflow_run",
                b"{\"action\":\"completed\",\"workflow_run\":\"x\"}",
                "`workflow_run` payload of the wrong shape",
            ),
            (
                "deployment_status",
                b"{\"deployment_status\":{\"state\":7}}",
                "`deployment_status` payload of the wrong shape",
            ),
            ("deployment_status", b"{\"deployment_status\":{}}", "`deployment_status` payload without `deployment`"),
        ];
        for (event, body, expected) in cases {
            let error = parse(event, body).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{event} {}: {error}", String::from_utf8_lossy(body));
        }
        let error = parse("workflow_run", &with_conclusion(json!(["failure"]))).unwrap_err();
        assert!(matches!(error, PayloadError::WrongShape { event: "workflow_run", .. }), "{error:?}");
        let error =
            parse("workflow_run", &edited(RUN_COMPLETED, |v| v["workflow_run"]["updated_at"] = json!("yesterday")))
                .unwrap_err();
        assert!(matches!(error, PayloadError::WrongShape { .. }), "{error:?}");
    }

    #[test]
    fn a_huge_misplaced_value_is_not_quoted_in_full() {
        let body = edited(RUN_COMPLETED, |v| v["workflow_run"]["id"] = json!("9".repeat(100_000)));
        let error = parse("workflow_run", &body).unwrap_err().to_string();
        assert!(error.len() < 300, "{error}");
        assert!(error.contains("line 1 column"), "{error}");
    }

    #[test]
    fn every_truncation_of_a_payload_is_an_error_not_a_panic() {
        for (event, fixture) in
            [("workflow_run", RUN_COMPLETED), ("deployment_status", DEPLOYMENT_STATUS), ("ping", PING)]
        {
            let bytes = fixture.trim_end().as_bytes();
            for end in (0..bytes.len()).step_by(7) {
                assert!(parse(event, &bytes[..end]).is_err(), "{event} cut at {end}");
            }
        }
    }
}
