//! Talks to the fake through octocrab, configured as `/pipeline` will be
//! (rustls with ring, retries, timeouts), so a response shape the real
//! client cannot decode fails here rather than in the bot's end-to-end tests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use octocrab::models::commits::GithubCommitStatus;
use octocrab::models::repos::DeploymentStatusState;
use octocrab::models::workflows::{Conclusion as JobConclusion, Status as JobStatus};
use octocrab::models::RunId;
use octocrab::params::workflows::Filter;
use octocrab::Octocrab;
use opsbot_fake_github::{
    endpoint, Conclusion, DeploymentSpec, Failure, FakeGitHub, RunSpec, SpawnedFake, DEFAULT_TOKEN,
};

const REPO: &str = "octo-org/shop";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

struct Setup {
    github: FakeGitHub,
    _server: SpawnedFake,
    client: Octocrab,
    ci: u64,
    deploy: u64,
}

async fn setup() -> Setup {
    let github = FakeGitHub::new();
    github.set_now(at("2024-05-02T12:00:00Z"));
    github.add_repo(REPO, "main");
    let ci = github.add_workflow(REPO, "CI", ".github/workflows/ci.yml");
    let deploy = github.add_workflow(REPO, "Deploy", ".github/workflows/deploy.yml");
    github.declare_inputs(deploy, &["environment", "version"]);
    let server = github.spawn().await.expect("spawn fake");
    let client = Octocrab::builder()
        .base_uri(server.api_url.as_str())
        .expect("base uri")
        .personal_token(DEFAULT_TOKEN.to_owned())
        .build()
        .expect("octocrab");
    Setup { github, _server: server, client, ci, deploy }
}

#[tokio::test]
async fn lists_and_gets_runs_and_jobs() {
    let s = setup().await;
    let spec = RunSpec::completed("main", Conclusion::Failure, at("2024-05-01T09:00:00Z"), Duration::from_secs(300))
        .actor("alice")
        .title("Fix checkout rounding")
        .job("build", Some(Conclusion::Success))
        .job("test", Some(Conclusion::Failure));
    let failed = s.github.add_run(REPO, s.ci, spec);
    let green = s.github.add_run(
        REPO,
        s.ci,
        RunSpec::completed("main", Conclusion::Success, at("2024-05-01T10:00:00Z"), Duration::from_secs(240)),
    );
    s.github.add_run(REPO, s.ci, RunSpec::in_progress("feature/x", at("2024-05-01T11:00:00Z")));

    let page = s.client.workflows("octo-org", "shop").list_all_runs().branch("main").send().await.expect("list runs");
    assert_eq!(page.total_count, Some(2));
    let ids: Vec<u64> = page.items.iter().map(|r| r.id.0).collect();
    assert_eq!(ids, [green, failed], "newest first");
    let first = &page.items[1];
    assert_eq!(first.conclusion.as_deref(), Some("failure"));
    assert_eq!(first.status, "completed");
    assert_eq!(first.head_branch, "main");
    assert_eq!(first.name, "CI");
    assert_eq!(first.head_commit.message, "Fix checkout rounding");
    assert_eq!(first.created_at, at("2024-05-01T09:00:00Z"));
    assert_eq!(first.updated_at, at("2024-05-01T09:05:00Z"));

    let by_file = s.client.workflows("octo-org", "shop").list_runs("ci.yml").send().await.expect("runs of ci.yml");
    assert_eq!(by_file.total_count, Some(3));

    let run = s.client.workflows("octo-org", "shop").get(RunId(failed)).await.expect("get run");
    assert_eq!(run.run_number, 1);
    assert_eq!(run.workflow_id.0, s.ci);

    let jobs = s.client.workflows("octo-org", "shop").list_jobs(RunId(failed)).send().await.expect("jobs");
    let summary: Vec<(String, Option<JobConclusion>)> =
        jobs.items.iter().map(|j| (j.name.clone(), j.conclusion.clone())).collect();
    assert_eq!(
        summary,
        [("build".to_owned(), Some(JobConclusion::Success)), ("test".to_owned(), Some(JobConclusion::Failure))]
    );

    let workflows = s.client.workflows("octo-org", "shop").list().send().await.expect("workflows");
    let names: Vec<&str> = workflows.items.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["CI", "Deploy"]);
}

#[tokio::test]
async fn follows_link_pagination() {
    let s = setup().await;
    for hour in 0..5 {
        let started = at("2024-05-01T00:00:00Z") + chrono::TimeDelta::hours(hour);
        s.github.add_run(REPO, s.ci, RunSpec::completed("main", Conclusion::Success, started, Duration::from_secs(60)));
    }
    let first = s.client.workflows("octo-org", "shop").list_all_runs().per_page(2u8).send().await.expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert!(first.next.is_some());
    let all = s.client.all_pages(first).await.expect("all pages");
    assert_eq!(all.len(), 5);
    assert_eq!(s.github.calls(endpoint::LIST_REPO_RUNS), 3);
}

#[tokio::test]
async fn reruns_failed_jobs_as_a_new_attempt() {
    let s = setup().await;
    let spec = RunSpec::completed("main", Conclusion::Failure, at("2024-05-01T09:00:00Z"), Duration::from_secs(300))
        .job("build", Some(Conclusion::Success))
        .job("test", Some(Conclusion::Failure));
    let run = s.github.add_run(REPO, s.ci, spec);

    s.client.workflows("octo-org", "shop").rerun_failed_jobs(RunId(run)).await.expect("rerun");
    let again = s.client.workflows("octo-org", "shop").get(RunId(run)).await.expect("get run");
    assert_eq!(again.status, "in_progress");
    assert_eq!(again.conclusion, None);

    let jobs = s.client.workflows("octo-org", "shop").list_jobs(RunId(run)).send().await.expect("jobs");
    let test = jobs.items.iter().find(|j| j.name == "test").expect("test job");
    assert_eq!(test.run_attempt, 2);
    assert_eq!(test.status, JobStatus::InProgress);
    let all =
        s.client.workflows("octo-org", "shop").list_jobs(RunId(run)).filter(Filter::All).send().await.expect("all");
    assert_eq!(all.items.len(), 3);

    // A second re-run while the first is going is refused.
    let err = s.client.workflows("octo-org", "shop").rerun_failed_jobs(RunId(run)).await.expect_err("running");
    let octocrab::Error::GitHub { source, .. } = err else { panic!("not a GitHub error: {err:?}") };
    assert_eq!(source.status_code, 403);
    assert_eq!(source.message, "This workflow is already running");

    assert!(s.github.complete_run(run, Conclusion::Success));
    let done = s.client.workflows("octo-org", "shop").get(RunId(run)).await.expect("get run");
    assert_eq!(done.conclusion.as_deref(), Some("success"));
}

#[tokio::test]
async fn dispatches_a_workflow() {
    let s = setup().await;
    s.client
        .actions()
        .create_workflow_dispatch("octo-org", "shop", "deploy.yml", "main")
        .inputs(serde_json::json!({"environment": "production", "version": "1.4.2"}))
        .send()
        .await
        .expect("dispatch");
    let runs = s.github.runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].event, "workflow_dispatch");
    assert_eq!(runs[0].inputs["environment"], "production");

    let page = s
        .client
        .workflows("octo-org", "shop")
        .list_runs(s.deploy.to_string())
        .event("workflow_dispatch")
        .status("queued")
        .send()
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].head_branch, "main");

    let err = s
        .client
        .actions()
        .create_workflow_dispatch("octo-org", "shop", "deploy.yml", "main")
        .inputs(serde_json::json!({"force": "true"}))
        .send()
        .await
        .expect_err("undeclared input");
    let octocrab::Error::GitHub { source, .. } = err else { panic!("not a GitHub error: {err:?}") };
    assert_eq!(source.status_code, 422);
    assert_eq!(source.message, r#"Unexpected inputs provided: ["force"]"#);
}

#[tokio::test]
async fn retries_a_server_error_and_reads_rate_limits_and_deployments() {
    let s = setup().await;
    let run = s.github.add_run(REPO, s.ci, RunSpec::in_progress("main", at("2024-05-01T09:00:00Z")));
    s.github.fail_next(endpoint::GET_RUN, Failure::ServerError);
    let got = s.client.workflows("octo-org", "shop").get(RunId(run)).await.expect("retried");
    assert_eq!(got.id.0, run);
    assert_eq!(s.github.calls(endpoint::GET_RUN), 2, "octocrab retried once");

    s.github.add_deployment(
        REPO,
        DeploymentSpec {
            environment: "production".into(),
            git_ref: "v1.4.1".into(),
            sha: "a".repeat(40),
            creator: "alice".into(),
            created_at: at("2024-04-30T08:00:00Z"),
            statuses: vec!["success".into()],
        },
    );
    let deployments = s
        .client
        .repos("octo-org", "shop")
        .deployments()
        .list()
        .environment("production")
        .send()
        .await
        .expect("deployments");
    assert_eq!(deployments.items.len(), 1);
    assert_eq!(deployments.items[0].ref_field, "v1.4.1");

    let limits = s.client.ratelimit().get().await.expect("rate limit");
    assert_eq!(limits.rate.limit, 5000);
    // The scripted 500 was answered before the budget; /rate_limit is free.
    assert_eq!(limits.rate.used, 2);
    assert_eq!(limits.resources.core.remaining, 4998);
}

#[tokio::test]
async fn reads_the_repository_commits_and_comparisons() {
    let s = setup().await;
    let repo = s.client.repos("octo-org", "shop").get().await.expect("repository");
    assert_eq!(repo.default_branch.as_deref(), Some("main"));
    assert_eq!(repo.full_name.as_deref(), Some(REPO));
    assert_eq!(repo.html_url.as_ref().map(|u| u.as_str()), Some("https://github.com/octo-org/shop"));

    let deployed = s.github.add_commit(REPO, "main", "Fix checkout rounding", "alice");
    s.github.add_tag(REPO, "v1.4.1", &deployed);
    s.github.advance(Duration::from_secs(60));
    let first = s.github.add_commit(REPO, "main", "Add gift cards\n\nBehind a flag.", "bob");
    s.github.advance(Duration::from_secs(60));
    let second = s.github.add_commit(REPO, "main", "Bump serde", "dependabot[bot]");

    let cmp = s.client.commits("octo-org", "shop").compare("v1.4.1", "main").send().await.expect("compare");
    assert!(matches!(cmp.status, GithubCommitStatus::Ahead), "{:?}", cmp.status);
    assert_eq!((cmp.ahead_by, cmp.behind_by, cmp.total_commits), (2, 0, 2));
    let shas: Vec<&str> = cmp.commits.iter().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, [first.as_str(), second.as_str()], "oldest first");
    let gift = &cmp.commits[0];
    assert_eq!(gift.commit.message, "Add gift cards\n\nBehind a flag.");
    assert_eq!(gift.commit.author.as_ref().and_then(|a| a.name.as_deref()), Some("bob"));
    assert_eq!(gift.commit.author.as_ref().and_then(|a| a.date.as_deref()), Some("2024-05-02T12:01:00Z"));
    assert_eq!(gift.author.as_ref().map(|a| a.login.as_str()), Some("bob"));
    assert_eq!(gift.html_url.as_str(), format!("https://github.com/{REPO}/commit/{first}"));
    assert_eq!(cmp.base_commit.sha, deployed);
    assert_eq!(cmp.merge_base_commit.sha, deployed);
    assert_eq!(cmp.html_url, format!("https://github.com/{REPO}/compare/v1.4.1...main"));

    let back = s.client.commits("octo-org", "shop").compare("main", &deployed[..7]).send().await.expect("behind");
    assert!(matches!(back.status, GithubCommitStatus::Behind));
    assert_eq!((back.ahead_by, back.behind_by), (0, 2));
    assert!(back.commits.is_empty());

    let one = s.client.commits("octo-org", "shop").get(&first).await.expect("one commit");
    assert_eq!(one.commit.message, "Add gift cards\n\nBehind a flag.");
    assert_eq!(one.parents.len(), 1);
    assert_eq!(one.parents[0].sha.as_deref(), Some(deployed.as_str()));
    let by_branch = s.client.commits("octo-org", "shop").get("main").await.expect("main's head");
    assert_eq!(by_branch.sha, second);

    let err = s.client.commits("octo-org", "shop").compare("v1.4.1", "nope").send().await.expect_err("unknown ref");
    let octocrab::Error::GitHub { source, .. } = err else { panic!("not a GitHub error: {err:?}") };
    assert_eq!(source.status_code, 404);
    assert_eq!(s.github.calls(endpoint::COMPARE), 3);
    assert_eq!(s.github.calls(endpoint::GET_COMMIT), 2);
    assert_eq!(s.github.calls(endpoint::GET_REPO), 1);
}

#[tokio::test]
async fn follows_a_deployment_through_its_statuses() {
    let s = setup().await;
    let sha = s.github.add_commit(REPO, "main", "Release 1.4.2", "alice");
    let seeded = s.github.add_deployment(
        REPO,
        DeploymentSpec {
            environment: "production".into(),
            git_ref: "main".into(),
            sha: sha.clone(),
            creator: "github-actions[bot]".into(),
            created_at: at("2024-05-02T11:00:00Z"),
            statuses: vec!["queued".into(), "in_progress".into()],
        },
    );
    let repo = s.client.repos("octo-org", "shop");
    let deployments = repo.deployments();
    let got = deployments.get(seeded).await.expect("get deployment");
    assert_eq!((got.sha.as_str(), got.environment.as_str()), (sha.as_str(), "production"));

    let statuses = deployments.statuses(seeded).list().send().await.expect("statuses");
    let states: Vec<DeploymentStatusState> = statuses.items.iter().map(|st| st.state).collect();
    assert_eq!(states, [DeploymentStatusState::InProgress, DeploymentStatusState::Queued], "newest first");

    // The deploy fails, as a test makes it...
    s.github.add_deployment_status(seeded, "failure", "smoke tests failed");
    let latest = &deployments.statuses(seeded).list().send().await.expect("statuses").items[0];
    assert_eq!(latest.state, DeploymentStatusState::Failure);
    assert_eq!(latest.description.as_deref(), Some("smoke tests failed"));
    assert_eq!(s.github.deployment(seeded).and_then(|d| d.state().map(str::to_owned)).as_deref(), Some("failure"));

    // ...and a client can create one and report on it.
    let created = deployments
        .create("main")
        .environment("staging")
        .description("opsbot DEP-7")
        .payload(serde_json::json!({"opsbot_id": "DEP-7"}))
        .send()
        .await
        .expect("create deployment");
    assert_eq!(created.sha, sha);
    assert_eq!(created.production_environment, Some(false));
    assert_eq!(created.payload["opsbot_id"], "DEP-7");
    assert_eq!(created.creator.as_ref().map(|c| c.login.as_str()), Some(opsbot_fake_github::TOKEN_LOGIN));
    let status = deployments
        .statuses(created.id)
        .create(DeploymentStatusState::Success)
        .log_url("https://ci.example/runs/1")
        .send()
        .await
        .expect("create status");
    assert_eq!(status.state, DeploymentStatusState::Success);
    assert_eq!(status.environment.as_deref(), Some("staging"));
    assert_eq!(status.target_url.as_deref(), Some("https://ci.example/runs/1"));
    assert_eq!(s.github.calls(endpoint::CREATE_DEPLOYMENT_STATUS), 1);
    assert_eq!(s.github.calls(endpoint::LIST_DEPLOYMENT_STATUSES), 2);
}
