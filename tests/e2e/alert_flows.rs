//! Alerts as the on-call engineer sees them arrive: a failed production
//! deployment that declares a P1, Alertmanager groups that fire, change and
//! resolve in one message, rules that declare once, the KPI alerts, and a
//! storm that never floods a channel and survives a restart.

use crate::support::*;
use opsbot_fake_slack::Message;
use serde_json::{json, Value};
use std::collections::HashSet;

fn fixture(path: &str) -> Value {
    let text = match path {
        "workflow_run" => include_str!("../../handlers/tests/fixtures/github/workflow_run.completed.success.json"),
        "deployment_status" => include_str!("../../handlers/tests/fixtures/github/deployment_status.created.json"),
        _ => include_str!("../../handlers/tests/fixtures/alertmanager/firing.two_alerts.json"),
    };
    serde_json::from_str(text).expect("fixtures are JSON")
}

fn at(minutes: i64) -> String {
    (test_start() + chrono::TimeDelta::minutes(minutes)).to_rfc3339()
}

/// GitHub's `workflow_run` completed payload for run `number` of
/// `workflow` on the default branch, ended at `ended` minutes into the test
/// after `took` minutes.
fn workflow_run(workflow: &str, number: u64, conclusion: &str, ended: i64, took: i64) -> String {
    let mut payload = fixture("workflow_run");
    let id = 7000 + workflow.len() as u64;
    let run = &mut payload["workflow_run"];
    run["id"] = json!(number * 100 + id);
    run["run_number"] = json!(number);
    run["name"] = json!(workflow);
    run["workflow_id"] = json!(id);
    run["conclusion"] = json!(conclusion);
    run["head_branch"] = json!("main");
    run["run_started_at"] = json!(at(ended - took));
    run["updated_at"] = json!(at(ended));
    payload["repository"]["default_branch"] = json!("main");
    payload["workflow"]["name"] = json!(workflow);
    payload["workflow"]["id"] = json!(id);
    payload.to_string()
}

fn deployment_status(state: &str, deployment: u64) -> String {
    let mut payload = fixture("deployment_status");
    payload["deployment_status"]["state"] = json!(state);
    payload["deployment_status"]["target_url"] = json!("https://ci.example.com/deploys/7");
    payload["deployment"]["id"] = json!(deployment);
    payload.to_string()
}

/// An Alertmanager notification for group `name` with one alert per instance.
fn alertmanager(name: &str, severity: &str, status: &str, instances: &[&str]) -> String {
    let mut payload = fixture("alertmanager");
    payload["groupKey"] = json!(format!("{{}}:{{alertname=\"{name}\"}}"));
    payload["status"] = json!(status);
    payload["groupLabels"] = json!({"alertname": name});
    payload["commonLabels"] = json!({"alertname": name, "severity": severity});
    payload["commonAnnotations"] = json!({"summary": format!("{name} is over its threshold")});
    payload["alerts"] = instances
        .iter()
        .map(|i| {
            json!({
                "status": status,
                "labels": {"alertname": name, "severity": severity, "instance": i},
                "annotations": {"summary": format!("{name} on {i}")},
                "startsAt": at(0),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": format!("{name}-{i}"),
            })
        })
        .collect();
    payload.to_string()
}

async fn accepted(response: reqwest::Response) {
    let status = response.status();
    assert!(status.is_success(), "a webhook is accepted: {status} {}", response.text().await.unwrap_or_default());
}

/// Waits until the hook worker has decided every stored delivery.
async fn hooks_decided(t: &TestApp) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while t.app().state.store.inbox.len().await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "the hook worker did not catch up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn top_level(t: &TestApp, channel: &str) -> Vec<Message> {
    t.slack.messages(channel).into_iter().filter(|m| m.thread_ts.is_none()).collect()
}

#[tokio::test]
async fn a_failed_production_deployment_declares_one_p1_with_its_playbook_and_page() {
    let t = spawn_app().await;
    accepted(t.post_github("deployment_status", &deployment_status("failure", 42), "d-1").await).await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    let blocks = blocks_text(&alert);
    assert!(blocks.contains("P1 · INC-1 · Deployment to production failed"), "{blocks}");
    assert!(blocks.contains("opsbot (a runbook rule)"), "declared by the runbook: {blocks}");
    assert!(blocks.contains("https://ci.example.com/deploys/7"), "the deployment's link: {blocks}");
    t.slack
        .wait_for(PATIENCE, |s| {
            let thread = s.thread(ALERTS, &alert.ts);
            (thread.iter().any(|m| m.text.contains("Paging")) && thread.iter().any(|m| m.text.contains("playbook")))
                .then_some(())
        })
        .await
        .expect("the playbook and the page in the incident's thread");

    // GitHub's `error` for the same deployment, as a new delivery: recorded
    // on the same failure, not a second incident.
    accepted(t.post_github("deployment_status", &deployment_status("error", 42), "d-2").await).await;
    hooks_decided(&t).await;
    assert_eq!(top_level(&t, ALERTS).len(), 1, "one incident for one failing deployment");
    assert!(top_level(&t, DEVOPS).iter().all(|m| !m.text.contains("Deployment")), "no alert message of its own");
}

#[tokio::test]
async fn declare_on_a_failed_run_opens_a_prefilled_form_and_the_alert_names_the_incident() {
    let t = spawn_app().await;
    accepted(t.post_github("workflow_run", &workflow_run("CI", 5, "failure", 1, 4), "run-5").await).await;
    let alert = t.wait_for_alert(DEVOPS, "CI failing on main").await;
    assert_eq!(t.click(ALICE, &alert, "alert.declare").await, 200);
    let view = t.slack.wait_for(PATIENCE, |s| s.views().into_iter().next()).await.expect("the form opens").view;
    let form = view.to_string();
    assert!(form.contains("CI failing on main in octo-org/octo-repo") && form.contains(r#""value":"P2""#), "{form}");

    let values = json!({
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "P1", "text": {"type": "plain_text", "text": "P1"}}}},
        "title": {"title": {"type": "plain_text_input", "value": "CI broken on main"}},
        "details": {"details": {"type": "plain_text_input", "value": null}},
    });
    let response = t.submit_values(ALICE, &view, values).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "", "the form closes");
    let incident = t.wait_for_alert(ALERTS, "INC-1").await;
    let blocks = blocks_text(&incident);
    assert!(blocks.contains("P1 · INC-1 · CI broken on main") && blocks.contains("From ALR-1"), "{blocks}");
    let named = t.wait_until(&alert, "the incident named", |m| blocks_text(m).contains("*INC-1* (P1)")).await;
    assert!(!has_button(&named, "alert.declare"), "declared once from here");
}

#[tokio::test]
async fn a_declare_from_an_alerts_form_that_permissions_refuse_says_who_may_and_takes_no_number() {
    use opsbot_handlers::runbook::permissions::{Action, Allowed};
    use opsbot_handlers::severity::Severity;
    let t = spawn_app_with(|config| {
        config.runbook.permissions.rules = vec![(Action::Declare(Severity::P0), vec![Allowed::User(ALICE.into())])];
    })
    .await;
    accepted(t.post_github("workflow_run", &workflow_run("CI", 5, "failure", 1, 4), "run-5").await).await;
    let alert = t.wait_for_alert(DEVOPS, "CI failing on main").await;
    assert_eq!(t.click(BOB, &alert, "alert.declare").await, 200);
    let view = t.slack.wait_for(PATIENCE, |s| s.views().into_iter().next()).await.expect("the form opens").view;
    let form = |severity: &str, title: &str| {
        json!({
            "severity": {"severity": {"type": "static_select", "selected_option": {"value": severity, "text": {"type": "plain_text", "text": severity}}}},
            "title": {"title": {"type": "plain_text_input", "value": title}},
            "details": {"details": {"type": "plain_text_input", "value": null}},
        })
    };

    let refused = t.submit_values(BOB, &view, form("P0", "CI broken on main")).await.text().await.unwrap();
    assert!(refused.contains("response_action") && refused.contains("may declare a P0"), "under the field: {refused}");
    let declared = t.submit_values(BOB, &view, form("P1", "CI broken on main")).await;
    assert_eq!(declared.text().await.unwrap(), "", "the form closes");
    t.wait_for_alert(ALERTS, "INC-1").await;
}

#[tokio::test]
async fn an_alertmanager_group_fires_changes_and_resolves_in_one_message() {
    let t = spawn_app().await;
    accepted(t.post_alertmanager(&alertmanager("HighLatency", "critical", "firing", &["api-1"])).await).await;
    let message = t.wait_for_alert(ALERTS, "HighLatency").await;
    assert!(blocks_text(&message).contains("*1 firing*"), "{}", blocks_text(&message));
    assert!(has_button(&message, "alert.declare") && has_button(&message, "alert.mute"));

    accepted(t.post_alertmanager(&alertmanager("HighLatency", "critical", "firing", &["api-1", "api-2"])).await).await;
    let changed = t.wait_until(&message, "the second alert", |m| blocks_text(m).contains("*2 firing*")).await;
    assert!(blocks_text(&changed).contains("HighLatency on api-2"));

    accepted(t.post_alertmanager(&alertmanager("HighLatency", "critical", "resolved", &["api-1", "api-2"])).await)
        .await;
    let resolved = t.wait_until(&message, "the resolution", |m| blocks_text(m).contains("Resolved")).await;
    assert!(!has_button(&resolved, "alert.declare"), "nothing to press once resolved");
    assert_eq!(top_level(&t, ALERTS).len(), 1, "every notification edited the same message");

    accepted(t.post_alertmanager(&alertmanager("DiskFilling", "warning", "firing", &["db-1"])).await).await;
    t.wait_for_alert(DEVOPS, "DiskFilling").await;
}

#[tokio::test]
async fn a_critical_group_declares_an_incident_once_even_when_alertmanager_repeats_it() {
    let mut runbook = opsbot_handlers::Runbook::seed();
    runbook.alerts.alertmanager[0].declare = Some(opsbot_handlers::Severity::P1);
    let t = spawn_app_with(|config| config.runbook = runbook).await;
    let firing = alertmanager("ApiDown", "critical", "firing", &["api-1"]);
    for _ in 0..3 {
        accepted(t.post_alertmanager(&firing).await).await;
    }
    let incident = t.wait_for_alert(ALERTS, "INC-1").await;
    assert!(blocks_text(&incident).contains("ApiDown"), "{}", blocks_text(&incident));
    // The incident's message has the group's title too, and may come first
    // (people's work goes before alerts): the group's message starts with
    // its state.
    let group = t.wait_for_alert(ALERTS, "🔴 ApiDown: ApiDown is over its threshold").await;
    t.slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &group.ts).iter().any(|m| m.text.contains("INC-1")).then_some(()))
        .await
        .expect("the group's thread says which incident was declared");
    accepted(t.post_alertmanager(&alertmanager("ApiDown", "critical", "firing", &["api-1", "api-2"])).await).await;
    t.wait_until(&group, "the second alert", |m| blocks_text(m).contains("*2 firing*")).await;
    hooks_decided(&t).await;
    let incidents: Vec<Message> = top_level(&t, ALERTS).into_iter().filter(|m| m.text.contains("INC-")).collect();
    assert_eq!(incidents.len(), 1, "declared once");
}

#[tokio::test]
async fn the_build_failure_rate_alert_crosses_stays_quiet_recovers_and_crosses_again() {
    let t = spawn_app().await;
    let kpi = |t: &TestApp| -> Vec<Message> {
        top_level(t, DEVOPS).into_iter().filter(|m| m.text.contains("High Build Failure Rate")).collect()
    };
    // Four passing builds: within bounds, and too few to say anything yet.
    let mut number = 0;
    let mut post = |workflow: &'static str, conclusion: &'static str| {
        number += 1;
        (workflow_run(workflow, number, conclusion, number as i64, 4), format!("kpi-{number}"))
    };
    for _ in 0..4 {
        let (body, id) = post("Build", "success");
        accepted(t.post_github("workflow_run", &body, &id).await).await;
    }
    // One failure in five: 20 % > 10 %.
    let (body, id) = post("Lint", "failure");
    accepted(t.post_github("workflow_run", &body, &id).await).await;
    let fired = t.wait_for_alert(DEVOPS, "High Build Failure Rate").await;
    assert!(blocks_text(&fired).contains("failure rate 20 % (1 of 5 runs"), "{}", blocks_text(&fired));

    // Still above: quiet.
    let (body, id) = post("Lint", "failure");
    accepted(t.post_github("workflow_run", &body, &id).await).await;
    // Passing builds bring it to 2 of 20 = 10 %, which is not above 10 %.
    for _ in 0..14 {
        let (body, id) = post("Build", "success");
        accepted(t.post_github("workflow_run", &body, &id).await).await;
    }
    let recovered = t.wait_until(&fired, "the recovery", |m| blocks_text(m).contains("Back within bounds")).await;
    assert!(blocks_text(&recovered).contains("2 of 20 runs"), "{}", blocks_text(&recovered));
    assert_eq!(kpi(&t).len(), 1, "it fired once while above");

    let (body, id) = post("Lint", "failure");
    accepted(t.post_github("workflow_run", &body, &id).await).await;
    t.slack.wait_for(PATIENCE, |_| (kpi(&t).len() == 2).then_some(())).await.expect("it fires again after recovering");
}

/// Every group of a storm is visible: its own message, or a line in its
/// channel's digest.
fn visible_groups(t: &TestApp, channel: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for m in t.slack.messages(channel) {
        let text = format!("{} {}", m.text, blocks_text(&m));
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if let Some(n) = word.strip_prefix("Storm") {
                seen.insert(n.to_owned());
            }
        }
    }
    seen
}

/// The most posts in `channel` within any `window`, from the fake's
/// wall-clock `ts`.
fn busiest(t: &TestApp, channel: &str, window: f64) -> usize {
    let mut times: Vec<f64> = t.slack.messages(channel).iter().filter_map(|m| m.ts.parse().ok()).collect();
    times.sort_by(f64::total_cmp);
    (0..times.len()).map(|i| times[i..].iter().take_while(|t| **t < times[i] + window).count()).max().unwrap_or(0)
}

#[tokio::test]
async fn a_storm_keeps_the_channel_within_its_budget_and_every_alert_ends_up_visible() {
    let t = spawn_app().await;
    let groups = 80;
    for n in 0..groups {
        accepted(t.post_alertmanager(&alertmanager(&format!("Storm{n}"), "warning", "firing", &["a", "b"])).await)
            .await;
    }
    t.slack
        .wait_for(PATIENCE * 2, |_| (visible_groups(&t, DEVOPS).len() == groups).then_some(()))
        .await
        .unwrap_or_else(|| panic!("only {} of {groups} groups visible", visible_groups(&t, DEVOPS).len()));
    let digests: Vec<Message> = top_level(&t, DEVOPS).into_iter().filter(|m| m.text.starts_with("⚠")).collect();
    assert!(!digests.is_empty(), "the storm was rolled into a digest");
    // One post a second with a burst of three: never more than 3 + 10 in
    // any 10 s (one more allowed for the time a post takes to reach the
    // fake, which stamps it), and the channel did not get a message per group.
    let most = busiest(&t, DEVOPS, 10.0);
    assert!(most <= 14, "{most} posts in 10 s");
    assert!(top_level(&t, DEVOPS).len() < groups / 2);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_storm_loses_nothing() {
    let mut t = spawn_app().await;
    let groups = 40;
    for n in 0..groups / 2 {
        accepted(t.post_alertmanager(&alertmanager(&format!("Storm{n}"), "warning", "firing", &["a"])).await).await;
    }
    t.stop().await;
    t.start_again().await;
    for n in groups / 2..groups {
        accepted(t.post_alertmanager(&alertmanager(&format!("Storm{n}"), "warning", "firing", &["a"])).await).await;
    }
    t.slack
        .wait_for(PATIENCE * 2, |_| (visible_groups(&t, DEVOPS).len() == groups).then_some(()))
        .await
        .unwrap_or_else(|| panic!("only {} of {groups} groups visible", visible_groups(&t, DEVOPS).len()));
}
