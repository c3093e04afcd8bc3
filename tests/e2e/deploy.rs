//! `/pipeline deploy` and `/pipeline rollback` against the fake GitHub and
//! the fake Slack: the confirmation shows what would go out, only the
//! runbook's roles may confirm, the runbook's workflow is dispatched with
//! its inputs, the thread follows the run to its end, GitHub's refusal is
//! shown, and open incidents record the deployment.

use crate::support::*;
use chrono::TimeDelta;
use opsbot_fake_github::{endpoint, Conclusion, DeploymentSpec, Input};
use opsbot_handlers::runbook::Mention;
use serde_json::{json, Value};

/// The shop as the tests find it: `v1.4.1` deployed to production
/// (successfully, yesterday), `v1.4.2` one commit ahead of it, and the
/// runbook's deploy and rollback workflows taking the seed's inputs, with
/// `opsbot_id` in their run names. GitHub reports finished runs to opsbot.
fn the_shop(app: &TestApp) -> u64 {
    let github = &app.github;
    github.set_now(test_start());
    github.deliver_to(&app.url("/hooks/github"), GITHUB_SECRET);
    let shipped = github.add_commit(REPOSITORY, "main", "Fix checkout rounding", "alice");
    github.add_tag(REPOSITORY, "v1.4.1", &shipped);
    github.add_deployment(
        REPOSITORY,
        DeploymentSpec {
            environment: "production".into(),
            git_ref: "v1.4.1".into(),
            sha: shipped,
            creator: "alice".into(),
            created_at: test_start() - TimeDelta::days(1),
            statuses: vec!["in_progress".into(), "success".into()],
        },
    );
    let next = github.add_commit(REPOSITORY, "main", "Add gift cards", "bob");
    github.add_tag(REPOSITORY, "v1.4.2", &next);
    let inputs = |ref_input: &str| {
        ["environment", ref_input, "requested_by", "opsbot_id"].into_iter().map(Input::required).collect::<Vec<_>>()
    };
    let deploy = github.add_workflow(REPOSITORY, "Deploy", ".github/workflows/deploy.yml");
    github.set_inputs(deploy, inputs("ref"));
    github.set_run_name(deploy, "Deploy ${{ inputs.opsbot_id }}");
    let rollback = github.add_workflow(REPOSITORY, "Rollback", ".github/workflows/rollback.yml");
    github.set_inputs(rollback, inputs("to_ref"));
    github.set_run_name(rollback, "Roll back ${{ inputs.opsbot_id }}");
    deploy
}

/// The seed runbook with every role filled by Bob alone: he may deploy,
/// Alice may not.
fn only_bob_may_deploy(config: &mut opsbot::config::Config) {
    with_github(config);
    for role in &mut config.runbook.roles {
        role.people = vec![Mention::User(BOB.into())];
    }
}

/// The confirmation modal Slack opened.
async fn the_modal(app: &TestApp) -> Value {
    app.slack.wait_for(PATIENCE, |s| s.views().into_iter().next()).await.expect("the confirmation opens").view
}

/// Waits until GitHub has a run titled `title` (the outbox dispatched it).
async fn dispatched(app: &TestApp, title: &str) -> opsbot_fake_github::WorkflowRun {
    app.github
        .wait_for(PATIENCE, |g| g.runs(REPOSITORY).into_iter().find(|r| r.display_title == title))
        .await
        .unwrap_or_else(|| panic!("GitHub never got a run titled {title:?}: {:#?}", app.github.runs(REPOSITORY)))
}

/// Types the command, confirms the modal, and returns the deployment's
/// message in #devops and its run.
async fn deploy_confirmed(app: &TestApp, text: &str, user: &str) -> (opsbot_fake_slack::Message, u64) {
    let ack = app.slash("/pipeline", text, user).await;
    assert!(reply_text(&ack).contains("Confirm in the dialog"), "{ack}");
    let view = the_modal(app).await;
    assert_eq!(app.submit_values(user, &view, json!({})).await.status(), 200);
    let run = dispatched(app, "Deploy DEP-1").await;
    let message = app.wait_for_alert(DEVOPS, "DEP-1").await;
    (message, run.id)
}

#[tokio::test]
async fn the_confirmation_shows_the_commits_that_would_go_out_and_the_last_deployment() {
    let app = spawn_app_with(with_github).await;
    the_shop(&app);
    app.slash("/pipeline", "deploy production v1.4.2", ALICE).await;
    let view = the_modal(&app).await.to_string();
    assert!(view.contains("Confirm deployment"), "{view}");
    assert!(view.contains("deploy.yml"), "{view}");
    assert!(view.contains("Commits that would go out* (1)"), "{view}");
    assert!(view.contains("Add gift cards"), "{view}");
    assert!(!view.contains("Fix checkout rounding"), "already deployed: {view}");
    assert!(view.contains("*Last deployment*: `v1.4.1`"), "{view}");
    assert_eq!(app.github.calls(endpoint::DISPATCH), 0, "nothing is dispatched before confirming");
}

#[tokio::test]
async fn someone_the_runbook_does_not_allow_is_told_who_may_and_nothing_is_dispatched() {
    let app = spawn_app_with(only_bob_may_deploy).await;
    the_shop(&app);
    let answer = reply_text(&app.slash("/pipeline", "deploy production v1.4.2", ALICE).await);
    assert!(answer.starts_with("Deploying to production is for the DevOps engineer"), "{answer}");
    assert!(answer.contains("<@U0BOB>"), "{answer}");
    app.wait_until_settled().await;
    assert!(app.slack.views().is_empty(), "no confirmation opens");
    assert_eq!(app.github.calls(endpoint::DISPATCH), 0);
    assert_eq!(app.github.calls(endpoint::COMPARE), 0, "GitHub is not even asked");
}

#[tokio::test]
async fn confirming_dispatches_the_runbooks_workflow_with_its_inputs_and_the_thread_follows_the_run_to_success() {
    let app = spawn_app_with(only_bob_may_deploy).await;
    the_shop(&app);
    let (message, run) = deploy_confirmed(&app, "deploy production v1.4.2", BOB).await;
    assert!(message.text.contains("Deploying `v1.4.2` to *production*, asked by <@U0BOB>"), "{}", message.text);
    // GitHub names the run the dispatch made: linked before it finishes.
    app.wait_until(&message, "the run linked", |m| blocks_text(m).contains(&format!("actions/runs/{run}|the run")))
        .await;

    let dispatched = app.github.run(run).unwrap();
    assert_eq!(dispatched.head_branch, "main", "the workflow file is read from the default branch");
    let inputs: Vec<(&str, &str)> = dispatched.inputs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        inputs,
        [("environment", "production"), ("opsbot_id", "DEP-1"), ("ref", "v1.4.2"), ("requested_by", BOB)],
        "the runbook's inputs, filled"
    );

    app.github.advance(std::time::Duration::from_secs(60));
    assert!(app.github.start_run(run));
    app.wait_until(&message, "the run running", |m| blocks_text(m).contains("running since")).await;
    app.github.advance(std::time::Duration::from_secs(192));
    assert!(app.github.complete_run(run, Conclusion::Success));
    let done = app.wait_until(&message, "the deployment done", |m| m.text.contains("Deployed `v1.4.2`")).await;
    assert!(blocks_text(&done).contains(&format!("actions/runs/{run}")), "{}", blocks_text(&done));
    app.wait_until_settled().await;
    let thread = app.slack.thread(DEVOPS, &message.ts);
    assert!(thread.iter().any(|m| m.text.contains("✅ Deployed `v1.4.2` to *production* in 3 min")), "{thread:#?}");
}

#[tokio::test]
async fn a_failed_run_is_shown_on_the_message_and_in_its_thread() {
    let app = spawn_app_with(with_github).await;
    the_shop(&app);
    let (message, run) = deploy_confirmed(&app, "deploy production v1.4.2", ALICE).await;
    assert!(app.github.start_run(run));
    assert!(app.github.complete_run(run, Conclusion::Failure));
    let failed = app.wait_until(&message, "the failure", |m| m.text.contains("failed (failure)")).await;
    assert!(failed.text.starts_with("❌"), "{}", failed.text);
    app.wait_until_settled().await;
    let thread = app.slack.thread(DEVOPS, &message.ts);
    assert!(thread.iter().any(|m| m.text.contains("❌ Deploying `v1.4.2` to *production* failed")), "{thread:#?}");
}

#[tokio::test]
async fn github_refusing_the_dispatch_for_a_missing_input_is_shown() {
    let app = spawn_app_with(with_github).await;
    let deploy = the_shop(&app);
    let mut inputs: Vec<Input> =
        ["environment", "ref", "requested_by", "opsbot_id"].into_iter().map(Input::required).collect();
    inputs.push(Input::required("change_ticket"));
    app.github.set_inputs(deploy, inputs);

    app.slash("/pipeline", "deploy production v1.4.2", ALICE).await;
    let view = the_modal(&app).await;
    app.submit_values(ALICE, &view, json!({})).await;
    let message = app.wait_for_alert(DEVOPS, "DEP-1").await;
    let refused = app.wait_until(&message, "the refusal", |m| m.text.contains("did not start")).await;
    assert!(refused.text.contains("Required input 'change_ticket' not provided"), "{}", refused.text);
    assert!(app.github.runs(REPOSITORY).is_empty(), "no run was made");
}

#[tokio::test]
async fn an_open_incidents_timeline_records_the_deployment() {
    let app = spawn_app_with(with_github).await;
    the_shop(&app);
    app.incident("p2 Checkout rounding errors").await;
    let incident = app.wait_for_alert(DEVOPS, "INC-1").await;
    deploy_confirmed(&app, "deploy production v1.4.2", ALICE).await;
    // A timer due at once tells the incident, so this waits for its note
    // rather than for the outbox alone.
    let note = "🚀 DEP-1: deploying `v1.4.2` to *production*, asked by <@U0ALICE>";
    let noted = app
        .slack
        .wait_for(PATIENCE, |s| s.thread(DEVOPS, &incident.ts).into_iter().find(|m| m.text.contains(note)))
        .await;
    assert!(noted.is_some(), "{:#?}", app.slack.thread(DEVOPS, &incident.ts));
    // The report, posted in the thread, lists it on the timeline.
    let answer = reply_text(&app.slash("/incident", "report 1", ALICE).await);
    assert!(answer.contains("report"), "{answer}");
    let report = app
        .slack
        .wait_for(PATIENCE, |s| {
            s.thread(DEVOPS, &incident.ts).into_iter().find(|m| {
                let all = format!("{} {}", m.text, m.blocks);
                all.contains("DEP-1: deploying") && !m.text.starts_with("🚀")
            })
        })
        .await;
    assert!(report.is_some(), "{:#?}", app.slack.thread(DEVOPS, &incident.ts));
}

#[tokio::test]
async fn a_rollback_without_a_ref_is_refused_with_how_to_name_one() {
    let app = spawn_app_with(with_github).await;
    the_shop(&app);
    let answer = reply_text(&app.slash("/pipeline", "rollback production", ALICE).await);
    assert!(answer.contains("`/pipeline rollback production v1.4.2`"), "{answer}");
    let typo = reply_text(&app.slash("/pipeline", "deploy prodution v1.4.2", ALICE).await);
    assert!(typo.contains("Did you mean `production`"), "{typo}");
    let bad_ref = reply_text(&app.slash("/pipeline", "deploy production main;reboot", ALICE).await);
    assert!(bad_ref.contains("is not a branch, tag or commit"), "{bad_ref}");
    app.wait_until_settled().await;
    assert!(app.slack.views().is_empty());
    assert_eq!(app.github.calls(endpoint::DISPATCH), 0);
}

#[tokio::test]
async fn a_rollback_shows_the_commits_it_would_undo_and_dispatches_the_rollback_workflow() {
    let app = spawn_app_with(with_github).await;
    the_shop(&app);
    // v1.4.2 went out; rolling back to v1.4.1 undoes "Add gift cards".
    let deployed = app.github.commit(REPOSITORY, "v1.4.2").unwrap().sha;
    app.github.add_deployment(
        REPOSITORY,
        DeploymentSpec {
            environment: "production".into(),
            git_ref: "v1.4.2".into(),
            sha: deployed,
            creator: "bob".into(),
            created_at: test_start() - TimeDelta::hours(1),
            statuses: vec!["success".into()],
        },
    );
    app.slash("/pipeline", "rollback production v1.4.1", ALICE).await;
    let view = the_modal(&app).await;
    let text = view.to_string();
    assert!(text.contains("Commits that would be undone* (1)"), "{text}");
    assert!(text.contains("Add gift cards"), "{text}");
    app.submit_values(ALICE, &view, json!({})).await;
    let run = dispatched(&app, "Roll back DEP-1").await;
    assert_eq!(run.inputs.get("to_ref").map(String::as_str), Some("v1.4.1"));
    let message = app.wait_for_alert(DEVOPS, "DEP-1").await;
    assert!(message.text.contains("Rolling back *production* to `v1.4.1`"), "{}", message.text);
}

#[tokio::test]
async fn when_github_is_down_the_confirmation_still_opens_says_why_and_the_deployment_goes_out_once_it_is_back() {
    let app = spawn_app_with(with_github).await;
    the_shop(&app);
    app.github.set_unavailable(true);
    let ack = app.slash("/pipeline", "deploy production v1.4.2", ALICE).await;
    assert!(reply_text(&ack).contains("Confirm in the dialog"), "{ack}");
    let view = the_modal(&app).await;
    let text = view.to_string();
    assert!(text.contains("*Commits*: could not be listed: GitHub did not answer"), "{text}");

    app.submit_values(ALICE, &view, json!({})).await;
    let message = app.wait_for_alert(DEVOPS, "DEP-1").await;
    assert!(message.text.contains("Deploying `v1.4.2`"), "{}", message.text);
    assert!(app.github.runs(REPOSITORY).is_empty(), "nothing reached GitHub yet");
    // The dispatch waits in the outbox and goes out once GitHub answers.
    app.github.set_unavailable(false);
    let run = dispatched(&app, "Deploy DEP-1").await;
    assert_eq!(run.inputs.get("opsbot_id").map(String::as_str), Some("DEP-1"));
    assert_eq!(app.github.runs(REPOSITORY).len(), 1, "dispatched once");
}

#[tokio::test]
async fn a_dispatch_github_already_took_is_not_sent_again() {
    let app = spawn_app_with(with_github).await;
    let deploy = the_shop(&app);
    // As if GitHub took the dispatch but its answer was lost on the way
    // back, and the outbox is trying again: the run is there already.
    let taken =
        opsbot_fake_github::RunSpec::in_progress("main", test_start()).event("workflow_dispatch").title("Deploy DEP-1");
    let run = app.github.add_run(REPOSITORY, deploy, taken);

    app.slash("/pipeline", "deploy production v1.4.2", ALICE).await;
    let view = the_modal(&app).await;
    app.submit_values(ALICE, &view, json!({})).await;
    let message = app.wait_for_alert(DEVOPS, "DEP-1").await;
    app.wait_until(&message, "the run linked", |m| blocks_text(m).contains(&format!("actions/runs/{run}|the run")))
        .await;
    assert_eq!(app.github.calls(endpoint::DISPATCH), 0, "not dispatched again");
    assert_eq!(app.github.runs(REPOSITORY).len(), 1);
}

#[tokio::test]
async fn a_deployment_whose_run_never_reports_is_closed_after_an_hour_and_a_late_report_still_settles_it() {
    let app = spawn_app_with(with_github).await;
    the_shop(&app);
    let (message, run) = deploy_confirmed(&app, "deploy production v1.4.2", ALICE).await;
    app.wait_until(&message, "the run linked", |m| blocks_text(m).contains(&format!("actions/runs/{run}|the run")))
        .await;
    // GitHub says nothing more: the run never starts.
    app.clock.advance(TimeDelta::minutes(59));
    app.wait_until_settled().await;
    assert!(app.current(&message).text.starts_with("🚀"), "still followed before the hour");

    app.clock.advance(TimeDelta::minutes(2));
    let closed = app.wait_until(&message, "opsbot stopped following", |m| m.text.contains("stopped following")).await;
    assert!(closed.text.contains("no word from GitHub about the run in 1 h"), "{}", closed.text);
    let shown = blocks_text(&closed);
    assert!(shown.contains(&format!("actions/runs/{run}|the run")), "where to look: {shown}");
    assert!(shown.contains("still show how it ended"), "{shown}");
    app.wait_until_settled().await;
    let thread = app.slack.thread(DEVOPS, &message.ts);
    assert!(thread.iter().any(|m| m.text.contains("⏳ opsbot stopped following DEP-1")), "{thread:#?}");

    // The run finishes after all: its report still settles the deployment.
    assert!(app.github.start_run(run));
    assert!(app.github.complete_run(run, Conclusion::Success));
    app.wait_until(&message, "the deployment done", |m| m.text.contains("Deployed `v1.4.2`")).await;
    app.wait_until_settled().await;
    let thread = app.slack.thread(DEVOPS, &message.ts);
    assert!(
        thread.iter().any(|m| m.text.contains("✅ Deployed") && m.text.contains("after opsbot had stopped following")),
        "{thread:#?}"
    );
}

/// Production is for the Slack user group `S0RELEASE` alone.
fn only_the_release_group_may_deploy(config: &mut opsbot::config::Config) {
    with_github(config);
    config.runbook.pipeline.environments[0].may =
        vec![opsbot_handlers::runbook::pipeline::Deployer::UserGroup("S0RELEASE".into())];
}

#[tokio::test]
async fn a_member_of_a_slack_user_group_in_may_deploys_and_a_non_member_is_told_who_may() {
    let app = spawn_app_with(only_the_release_group_may_deploy).await;
    the_shop(&app);
    app.slack.set_usergroup("S0RELEASE", &[ALICE], true);

    let refused = reply_text(&app.slash("/pipeline", "deploy production v1.4.2", BOB).await);
    assert_eq!(refused, "Deploying to production is for <!subteam^S0RELEASE>.");
    assert_eq!(app.github.calls(endpoint::COMPARE), 0, "GitHub is not asked for someone who may not");

    let (message, _) = deploy_confirmed(&app, "deploy production v1.4.2", ALICE).await;
    assert!(message.text.contains("asked by <@U0ALICE>"), "{}", message.text);
    assert_eq!(app.slack.calls("usergroups.users.list"), 1, "the command and its confirmation share one answer");
}

#[tokio::test]
async fn when_slack_cannot_list_the_group_the_refusal_says_so_and_nothing_is_deployed() {
    let app = spawn_app_with(only_the_release_group_may_deploy).await;
    the_shop(&app);
    app.slack.set_usergroup("S0RELEASE", &[ALICE], true);
    app.slack.fail_next("usergroups.users.list", opsbot_fake_slack::Failure::HttpStatus(503));

    let refused = reply_text(&app.slash("/pipeline", "deploy production v1.4.2", ALICE).await);
    assert!(refused.contains("Slack could not be asked whether you are in <!subteam^S0RELEASE>"), "{refused}");
    assert!(refused.contains("Slack did not answer"), "{refused}");
    app.wait_until_settled().await;
    assert!(app.slack.views().is_empty(), "no confirmation opens");
    assert_eq!(app.github.calls(endpoint::DISPATCH), 0);
    // Slack is back: the next try goes through.
    let ack = reply_text(&app.slash("/pipeline", "deploy production v1.4.2", ALICE).await);
    assert!(ack.contains("Confirm in the dialog"), "{ack}");
}

#[tokio::test]
async fn ten_deploy_checks_against_a_user_group_cost_slack_one_call() {
    let app = spawn_app_with(only_the_release_group_may_deploy).await;
    the_shop(&app);
    app.slack.set_usergroup("S0RELEASE", &[ALICE], true);
    let people = [ALICE, BOB];
    let asks = (0..10).map(|i| app.slash("/pipeline", "deploy production v1.4.2", people[i % 2]));
    let answers: Vec<String> = futures::future::join_all(asks).await.iter().map(reply_text).collect();
    assert_eq!(answers.iter().filter(|a| a.contains("Confirm in the dialog")).count(), 5, "{answers:#?}");
    assert_eq!(answers.iter().filter(|a| a.contains("is for <!subteam^S0RELEASE>")).count(), 5, "{answers:#?}");
    assert_eq!(app.slack.calls("usergroups.users.list"), 1);
}
