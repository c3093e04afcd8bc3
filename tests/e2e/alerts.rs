//! Alerts by webhook: GitHub workflow runs and Alertmanager notifications
//! come in through `/hooks/…`, verified, stored and answered at once, then
//! decided by the hook worker into alert messages in the runbook's team
//! channel (`#devops`), one message per failing workflow, edited as it
//! fails again and recovers.

use crate::support::*;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

const WORKFLOW_RUN: &str = include_str!("../../handlers/tests/fixtures/github/workflow_run.completed.success.json");
const PING: &str = include_str!("../../handlers/tests/fixtures/github/ping.json");
const ALERTMANAGER_FIRING: &str = include_str!("../../handlers/tests/fixtures/alertmanager/firing.single_alert.json");

const REPO: &str = "octo-org/octo-repo";
const COMMIT_TITLE: &str = "build(test): check workflow run event payload";
const AUTHOR: &str = "Matthias Fax";
const CI: u64 = 2823525;

fn run_url(run_id: u64) -> String {
    format!("https://github.com/{REPO}/actions/runs/{run_id}")
}

/// A completed run of a workflow, from GitHub's example payload: run `run`
/// (its number and, for a unique id, `run * 1000`) of workflow `workflow`
/// on `branch` of a repository whose default branch is `main`, finished a
/// few minutes before the test clock starts.
fn completed_run(workflow: (&str, u64), run: u64, conclusion: &str, branch: &str) -> String {
    let (name, workflow_id) = workflow;
    let run_id = 289_782_000 + run;
    let finished: DateTime<Utc> = test_start() - TimeDelta::minutes(10) + TimeDelta::minutes(run as i64);
    let started = finished - TimeDelta::minutes(4);
    let mut payload: Value = serde_json::from_str(WORKFLOW_RUN).unwrap();
    payload["repository"]["default_branch"] = json!("main");
    payload["workflow"]["name"] = json!(name);
    payload["workflow"]["id"] = json!(workflow_id);
    let r = &mut payload["workflow_run"];
    r["name"] = json!(name);
    r["workflow_id"] = json!(workflow_id);
    r["id"] = json!(run_id);
    r["run_number"] = json!(run);
    r["conclusion"] = json!(conclusion);
    r["head_branch"] = json!(branch);
    r["html_url"] = json!(run_url(run_id));
    r["run_started_at"] = json!(started);
    r["created_at"] = json!(started);
    r["updated_at"] = json!(finished);
    payload.to_string()
}

pub(crate) fn ci_run(run: u64, conclusion: &str) -> String {
    completed_run(("CI", CI), run, conclusion, "main")
}

/// The top-level messages in a channel.
fn posts(t: &TestApp, channel: &str) -> Vec<opsbot_fake_slack::Message> {
    t.slack.messages(channel).into_iter().filter(|m| m.thread_ts.is_none()).collect()
}

async fn inbox_len(t: &TestApp) -> u64 {
    t.app().state.store.inbox.len().await.unwrap()
}

async fn accepted(response: reqwest::Response) {
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
}

#[tokio::test]
async fn a_github_hook_without_a_valid_signature_is_refused_and_stores_nothing() {
    let t = spawn_app().await;
    let body = ci_run(1, "failure");

    let unsigned = [("content-type", "application/json"), ("x-github-event", "workflow_run")];
    assert_eq!(t.post_raw("/hooks/github", &unsigned, body.clone()).await.status(), 401, "missing");
    let wrong = [
        ("content-type", "application/json"),
        ("x-github-event", "workflow_run"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("x-hub-signature-256", "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c"),
    ];
    assert_eq!(t.post_raw("/hooks/github", &wrong, body.clone()).await.status(), 401, "wrong");
    let other_secret = t.post_github_signed_with("another-secret", "workflow_run", &body, "d-1").await;
    assert_eq!(other_secret.status(), 401, "signed with another secret");
    // A body changed after signing is another body.
    let signature = opsbot::hooks::verify::github_signature(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let tampered = [("x-github-event", "workflow_run"), ("x-hub-signature-256", signature.as_str())];
    let response = t.post_raw("/hooks/github", &tampered, body.replace("failure", "success")).await;
    assert_eq!(response.status(), 401, "tampered");

    assert_eq!(inbox_len(&t).await, 0, "nothing stored");
    assert!(t.slack.all_messages().is_empty(), "nothing in Slack: {:?}", t.slack.all_messages());
    assert_eq!(t.metric(r#"opsbot_hook_requests_total{endpoint="github",outcome="unauthorized"}"#).await, 4);
}

#[tokio::test]
async fn a_signed_github_delivery_without_its_event_name_is_a_bad_request() {
    let t = spawn_app().await;
    let body = ci_run(1, "failure");
    let signature = opsbot::hooks::verify::github_signature(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let headers = [("content-type", "application/json"), ("x-hub-signature-256", signature.as_str())];
    assert_eq!(t.post_raw("/hooks/github", &headers, body).await.status(), 400);
    assert_eq!(inbox_len(&t).await, 0);
}

#[tokio::test]
async fn hook_routes_are_absent_when_their_secrets_are_not_set() {
    let t = spawn_app_with(|config| {
        config.github_webhook_secret = None;
        config.alertmanager_token = None;
    })
    .await;
    assert_eq!(t.post_github("workflow_run", &ci_run(1, "failure"), "d-1").await.status(), 404);
    assert_eq!(t.post_github("ping", PING, "d-2").await.status(), 404);
    assert_eq!(t.post_alertmanager(ALERTMANAGER_FIRING).await.status(), 404);

    // Each route exists exactly when its own secret is set.
    let t = spawn_app_with(|config| config.github_webhook_secret = None).await;
    assert_eq!(t.post_github("ping", PING, "d-3").await.status(), 404);
    accepted(t.post_alertmanager(ALERTMANAGER_FIRING).await).await;
}

#[tokio::test]
async fn an_alertmanager_hook_without_the_bearer_token_is_refused() {
    let t = spawn_app().await;
    let json = ("content-type", "application/json");
    let refusals: [&[(&str, &str)]; 4] = [
        &[json],
        &[json, ("authorization", "Bearer not-the-token")],
        &[json, ("authorization", "Basic dGVzdC1hbGVydG1hbmFnZXItdG9rZW4=")],
        &[json, ("authorization", ALERTMANAGER_TOKEN)],
    ];
    for headers in refusals {
        let response = t.post_raw("/hooks/alertmanager", headers, ALERTMANAGER_FIRING).await;
        assert_eq!(response.status(), 401, "{headers:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    assert_eq!(inbox_len(&t).await, 0, "nothing stored");

    // With the token, the same notification is taken and alerts the team.
    accepted(t.post_alertmanager(ALERTMANAGER_FIRING).await).await;
    let alert = t.wait_for_alert(DEVOPS, "high_memory_load").await;
    assert!(blocks_text(&alert).contains("Server High Memory usage"), "{}", blocks_text(&alert));
    assert!(t.slack.messages(ALERTS).is_empty());
}

#[tokio::test]
async fn a_github_ping_is_answered() {
    let t = spawn_app().await;
    let response = t.post_github("ping", PING, "4d6bc020-a000-11ef-8f2a-0e7f7a7a0b5e").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"ok": true}));
    assert_eq!(inbox_len(&t).await, 0, "a ping is not stored");
}

#[tokio::test]
async fn a_failed_run_on_the_default_branch_posts_one_alert_in_devops_with_its_buttons() {
    let t = spawn_app().await;
    let response = t.post_github("workflow_run", &ci_run(1, "failure"), "a1f0c7d2-0001").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"ok": true}));

    let alert = t.wait_for_alert(DEVOPS, "CI failing on main").await;
    let shown = blocks_text(&alert);
    for expected in [REPO, "CI run #1", "`main`", COMMIT_TITLE, AUTHOR, &run_url(289_782_001), "Failing since"] {
        assert!(shown.contains(expected), "{expected:?} not in {shown}");
    }
    assert!(has_button(&alert, "alert.declare") && shown.contains("Declare incident"), "{shown}");
    assert!(has_button(&alert, "alert.mute") && shown.contains("Mute 1h"), "{shown}");

    t.wait_until_settled().await;
    assert_eq!(posts(&t, DEVOPS).len(), 1, "one alert: {:#?}", t.slack.messages(DEVOPS));
    assert!(t.slack.thread(DEVOPS, &alert.ts).is_empty());
    assert!(t.slack.messages(ALERTS).is_empty(), "a CI failure is not an incident");
    assert_eq!(t.metric(r#"opsbot_hook_signals_total{source="github",outcome="decided"}"#).await, 1);
    assert_eq!(t.metric(r#"opsbot_hook_requests_total{endpoint="github",outcome="ok"}"#).await, 1);
}

#[tokio::test]
async fn a_redelivered_github_delivery_takes_effect_once() {
    let t = spawn_app().await;
    let failure = ci_run(1, "failure");
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    accepted(t.post_github("workflow_run", &failure, delivery).await).await;
    // "Redeliver" in GitHub's settings sends the same delivery id again.
    for _ in 0..2 {
        let again = t.post_github("workflow_run", &failure, delivery).await;
        assert_eq!(again.status(), 200);
        assert_eq!(again.json::<Value>().await.unwrap(), json!({"ok": true, "duplicate": true}));
    }

    let alert = t.wait_for_alert(DEVOPS, "CI failing on main").await;
    t.wait_until_settled().await;
    assert_eq!(t.metric(r#"opsbot_hook_signals_total{source="github",outcome="decided"}"#).await, 1, "stored once");
    assert_eq!(posts(&t, DEVOPS).len(), 1);
    assert!(t.slack.thread(DEVOPS, &alert.ts).is_empty(), "no second failure in the thread");
    let alert = t.current(&alert);
    assert!(blocks_text(&alert).contains("Failing since"), "one failure counted: {}", blocks_text(&alert));
    assert_eq!(alert.edits, 0);
}

#[tokio::test]
async fn fail_fail_pass_on_one_workflow_is_one_message_updated_then_recovered() {
    let t = spawn_app().await;
    accepted(t.post_github("workflow_run", &ci_run(1, "failure"), "d-1").await).await;
    let alert = t.wait_for_alert(DEVOPS, "CI failing on main").await;

    accepted(t.post_github("workflow_run", &ci_run(2, "failure"), "d-2").await).await;
    let alert = t.wait_until(&alert, "the second failure", |m| blocks_text(m).contains("Failing for 2 runs")).await;
    assert!(blocks_text(&alert).contains("CI run #2"), "shows the latest run: {}", blocks_text(&alert));
    let listed = t
        .slack
        .wait_for(PATIENCE, |s| s.thread(DEVOPS, &alert.ts).into_iter().find(|m| m.text.contains("Failure 2")))
        .await
        .expect("the second failure is listed in the thread");
    assert!(listed.text.contains("run #2") && listed.text.contains(&run_url(289_782_002)), "{}", listed.text);

    accepted(t.post_github("workflow_run", &ci_run(3, "success"), "d-3").await).await;
    let alert = t.wait_until(&alert, "the recovery", |m| blocks_text(m).contains("Recovered after 2")).await;
    assert!(alert.text.starts_with('✅'), "{}", alert.text);
    assert!(!has_button(&alert, "alert.declare") && !has_button(&alert, "alert.mute"), "nothing left to act on");
    t.slack
        .wait_for(PATIENCE, |s| {
            s.thread(DEVOPS, &alert.ts).into_iter().find(|m| m.text.contains("Recovered after 2 failures"))
        })
        .await
        .expect("the recovery is noted in the thread");

    t.wait_until_settled().await;
    assert_eq!(posts(&t, DEVOPS).len(), 1, "one message throughout: {:#?}", posts(&t, DEVOPS));
}

#[tokio::test]
async fn a_run_on_a_feature_branch_alerts_nobody() {
    let t = spawn_app().await;
    let feature = completed_run(("CI", CI), 1, "failure", "feature/login-form");
    accepted(t.post_github("workflow_run", &feature, "d-1").await).await;
    t.wait_until_settled().await;
    assert_eq!(t.metric(r#"opsbot_hook_signals_total{source="github",outcome="decided"}"#).await, 1);
    assert!(t.slack.all_messages().is_empty(), "{:#?}", t.slack.all_messages());

    // The same workflow failing on the default branch does alert.
    accepted(t.post_github("workflow_run", &ci_run(2, "failure"), "d-2").await).await;
    let alert = t.wait_for_alert(DEVOPS, "CI failing on main").await;
    assert!(blocks_text(&alert).contains("Failing since"), "the feature branch's failure is not counted");
}

#[tokio::test]
async fn a_cancelled_run_is_not_a_failure() {
    let t = spawn_app().await;
    accepted(t.post_github("workflow_run", &ci_run(1, "cancelled"), "d-1").await).await;
    t.wait_until_settled().await;
    assert!(t.slack.all_messages().is_empty(), "{:#?}", t.slack.all_messages());

    accepted(t.post_github("workflow_run", &ci_run(2, "failure"), "d-2").await).await;
    let alert = t.wait_for_alert(DEVOPS, "CI failing on main").await;
    // Nor does cancelling the next run recover it or count as a failure.
    accepted(t.post_github("workflow_run", &ci_run(3, "cancelled"), "d-3").await).await;
    t.wait_until_settled().await;
    let alert = t.current(&alert);
    assert!(blocks_text(&alert).contains("Failing since"), "{}", blocks_text(&alert));
    assert!(has_button(&alert, "alert.declare"), "still firing");
    assert!(t.slack.thread(DEVOPS, &alert.ts).is_empty());
    assert_eq!(posts(&t, DEVOPS).len(), 1);
}

#[tokio::test]
async fn github_bodies_up_to_25_mb_are_taken_and_bigger_ones_refused() {
    let t = spawn_app().await;
    // Over Slack's 1 MiB limit, well within GitHub's 25 MB: a long commit
    // message, as a squash merge of many commits can have.
    let mut payload: Value = serde_json::from_str(&ci_run(1, "failure")).unwrap();
    let message = format!("{COMMIT_TITLE}\n\n{}", "* a squashed commit\n".repeat(100_000));
    payload["workflow_run"]["head_commit"]["message"] = json!(message);
    let big = payload.to_string();
    assert!(big.len() > 2 * 1024 * 1024);
    accepted(t.post_github("workflow_run", &big, "d-1").await).await;
    t.wait_for_alert(DEVOPS, "CI failing on main").await;
    t.wait_until_settled().await;

    let too_big = format!("{{\"padding\":\"{}\"}}", "x".repeat(25 * 1024 * 1024));
    assert_eq!(t.post_github("workflow_run", &too_big, "d-2").await.status(), 413);
    assert_eq!(inbox_len(&t).await, 0);
}

/// A store on the test's Redis under the app's prefix, as another process
/// (a replica that crashed, say) would have it.
fn same_store(t: &TestApp) -> opsbot::store::Store {
    opsbot::store::Store::connect(&t.redis.url(), &t.config.redis_prefix).unwrap()
}

/// Stores a failed CI run as the intake would, and has `consumer` take it
/// without finishing it: a replica that crashed while deciding it.
async fn taken_but_unfinished(store: &opsbot::store::Store, consumer: &str) {
    use opsbot::store::HookSource;
    let body = ci_run(1, "failure");
    let ttl = opsbot::hooks::routes::DELIVERY_TTL;
    store.inbox.accept(HookSource::Github, "workflow_run", Some("1:d-1"), body.as_bytes(), ttl).await.unwrap();
    store.inbox.prepare().await.unwrap();
    assert_eq!(store.inbox.read(consumer, 10, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_delivery_taken_before_a_crash_is_decided_after_the_restart() {
    let mut t = spawn_app().await;
    t.stop().await;
    taken_but_unfinished(&same_store(&t), &t.config.replica).await;

    t.start_again().await;
    t.wait_for_alert(DEVOPS, "CI failing on main").await;
    t.wait_until_settled().await;
    assert_eq!(posts(&t, DEVOPS).len(), 1);
}

#[tokio::test]
async fn deliveries_held_by_a_replica_that_stopped_are_taken_over() {
    let mut t = spawn_app().await;
    t.stop().await;
    taken_but_unfinished(&same_store(&t), "replica-that-stopped").await;

    // Taken over once idle for `reclaim_after` (2 s in the tests).
    t.start_again().await;
    t.wait_for_alert(DEVOPS, "CI failing on main").await;
    t.wait_until_settled().await;
    assert_eq!(posts(&t, DEVOPS).len(), 1);
}

#[tokio::test]
async fn with_redis_down_a_hook_is_answered_503_and_taken_once_it_is_back() {
    let mut t = spawn_app().await;
    t.redis.stop();
    let started = std::time::Instant::now();
    let response = t.post_github("workflow_run", &ci_run(1, "failure"), "d-1").await;
    assert_eq!(response.status(), 503, "GitHub shows it failed, to be redelivered");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "answered in {:?}", started.elapsed());
    let response = t.post_alertmanager(ALERTMANAGER_FIRING).await;
    assert_eq!(response.status(), 503, "Alertmanager retries");

    t.redis.restart();
    // The redelivery, once Redis is back, is the first to count.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let response = t.post_github("workflow_run", &ci_run(1, "failure"), "d-1").await;
        if response.status() == 202 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(tokio::time::Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    t.wait_for_alert(DEVOPS, "CI failing on main").await;
    assert!(t.metric(r#"opsbot_hook_requests_total{endpoint="github",outcome="unavailable"}"#).await >= 1);
}

#[tokio::test]
async fn a_github_event_opsbot_does_not_use_is_answered_and_not_stored() {
    let t = spawn_app().await;
    let response = t.post_github("push", r#"{"ref":"refs/heads/main"}"#, "push-1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"ok": true, "ignored": true}));
    assert_eq!(inbox_len(&t).await, 0, "an unused event is not stored");
}
