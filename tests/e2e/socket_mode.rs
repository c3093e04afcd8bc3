//! Socket Mode end to end: the bot with an app-level token and no signing
//! secret, talking to the fake Slack's Socket Mode. Commands, clicks, modal
//! submissions and events arrive as envelopes and are handled as over
//! HTTP; each is acknowledged (with the reply, or a modal's errors), and
//! refreshes, dropped sockets and a second replica lose and double nothing.

use crate::support::*;
use opsbot_fake_slack::{EnvelopeKind, Message};
use serde_json::{json, Value};
use std::collections::HashSet;

/// The bot in Socket Mode, with both its connections open.
async fn socket_app() -> TestApp {
    let t = spawn_app_with(in_socket_mode).await;
    t.slack.wait_for_socket_connections(2, PATIENCE).await.expect("the bot opens two connections");
    t
}

/// `/incident <text>` by `user`, over Socket Mode; the acknowledgement's
/// payload is what the typer sees.
async fn incident(t: &TestApp, user: &str, text: &str) -> Value {
    let ack = t.over_socket(EnvelopeKind::SlashCommands, t.slash_payload("/incident", text, user)).await;
    ack.payload.expect("a slash command is acknowledged with its reply")
}

/// The top-level alerts of `channel` naming an incident.
fn incident_alerts(t: &TestApp, channel: &str) -> Vec<Message> {
    t.slack.messages(channel).into_iter().filter(|m| m.thread_ts.is_none() && m.text.contains("INC-")).collect()
}

/// Waits until `channel` shows `n` incident alerts, then checks each
/// incident is there once.
async fn exactly_these_incidents(t: &TestApp, channel: &str, n: usize) {
    t.slack
        .wait_for(PATIENCE, |_| (incident_alerts(t, channel).len() >= n).then_some(()))
        .await
        .unwrap_or_else(|| panic!("{n} incidents never all showed: {:#?}", incident_alerts(t, channel)));
    t.wait_until_settled().await;
    let alerts = incident_alerts(t, channel);
    let titles: HashSet<String> = alerts.iter().map(|m| m.text.clone()).collect();
    assert_eq!(alerts.len(), n, "each incident once: {alerts:#?}");
    assert_eq!(titles.len(), n, "no incident twice: {alerts:#?}");
}

#[tokio::test]
async fn a_slash_command_over_socket_mode_declares_the_incident_and_acks_with_the_reply() {
    let t = socket_app().await;
    let reply = incident(&t, ALICE, "p1 Checkout errors").await;
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(reply_text(&reply).contains("INC-1"), "{reply}");
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    assert!(alert.text.contains("Checkout errors"), "{}", alert.text);
    // Slack shows the acknowledgement's reply to the typer.
    let shown = t.slack.wait_for(PATIENCE, |s| s.ephemerals().into_iter().next()).await.expect("shown");
    assert_eq!(shown.user, ALICE);

    // A mistake is answered in the acknowledgement too, and changes nothing.
    let usage = incident(&t, ALICE, "p9 nope").await;
    assert!(!reply_text(&usage).is_empty(), "{usage}");
    assert_eq!(incident_alerts(&t, ALERTS).len(), 1);

    // Health and metrics stay on HTTP; the Slack routes do not exist
    // without a signing secret.
    let http = reqwest::Client::new();
    assert_eq!(http.get(t.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(t.url("/readyz")).send().await.unwrap().status(), 200);
    assert_eq!(t.metric("opsbot_socket_mode_connections").await, 2);
    assert_eq!(t.metric("opsbot_slack_requests_total{endpoint=\"commands\",outcome=\"ok\"}").await, 2);
    let form = TestApp::slash_form("/incident", "p0 forged", ALICE);
    let refused = t.post_signed("/slack/commands", "application/x-www-form-urlencoded", form).await;
    assert_eq!(refused.status(), 404);
}

#[tokio::test]
async fn a_button_click_over_socket_mode_acknowledges_the_incident() {
    let t = socket_app().await;
    incident(&t, ALICE, "p0 Database down").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    let ack = t.over_socket(EnvelopeKind::Interactive, click_payload(BOB, &alert, "incident.ack")).await;
    assert_eq!(ack.payload, None, "a click is acknowledged without a payload");
    let acked = t.wait_until(&alert, "the acknowledgement", |m| m.text.contains("Acknowledged")).await;
    assert!(blocks_text(&acked).contains(&format!("Acknowledged by <@{BOB}>")));
}

#[tokio::test]
async fn a_modal_submission_over_socket_mode_closes_it_or_acks_with_its_errors() {
    let t = socket_app().await;
    incident(&t, ALICE, "p0 Database down").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.over_socket(EnvelopeKind::Interactive, click_payload(ALICE, &alert, "incident.resolve")).await;
    let modal = t.slack.wait_for(PATIENCE, |s| s.views().into_iter().next()).await.expect("Resolve opens a modal");
    let summary = |text: &str| json!({"summary": {"summary": {"type": "plain_text_input", "value": text}}});

    let closed =
        t.over_socket(EnvelopeKind::Interactive, submission_payload(ALICE, &modal.view, summary("Failed over"))).await;
    assert_eq!(closed.payload, None, "a bare acknowledgement closes the modal");
    t.wait_until(&alert, "the resolution", |m| m.text.contains("Resolved")).await;

    // Submitted again (a second tab): the modal stays open, saying why.
    let refused =
        t.over_socket(EnvelopeKind::Interactive, submission_payload(BOB, &modal.view, summary("again"))).await;
    let errors = refused.payload.expect("the acknowledgement carries the errors");
    assert_eq!(errors["response_action"], "errors");
    assert!(errors["errors"]["summary"].as_str().unwrap().contains("already resolved"), "{errors}");
}

#[tokio::test]
async fn a_mention_over_socket_mode_is_answered_in_its_thread_once() {
    let t = socket_app().await;
    incident(&t, ALICE, "p0 API down").await;
    t.wait_for_alert(ALERTS, "INC-1").await;
    let ts = t.slack.post_as_user(GENERAL, ALICE, "<@U0OPSBOT> status", None).unwrap();
    let event = json!({
        "token": "x", "team_id": "T0OPSBOT", "api_app_id": "A0OPSBOT", "type": "event_callback",
        "event_id": "Ev0SOCKET", "event_time": 1_700_000_000,
        "event": {"type": "app_mention", "user": ALICE, "text": "<@U0OPSBOT> status", "ts": ts,
                  "channel": GENERAL, "event_ts": ts}
    });
    // Slack's retry of an event comes in a new envelope, with the same event id.
    for _ in 0..2 {
        let ack = t.over_socket(EnvelopeKind::EventsApi, event.clone()).await;
        assert_eq!(ack.payload, None);
    }
    let answer = t.slack.wait_for(PATIENCE, |s| s.thread(GENERAL, &ts).into_iter().next()).await.expect("answered");
    assert!(answer.text.contains("INC-1"), "{}", answer.text);
    t.wait_until_settled().await;
    assert_eq!(t.slack.thread(GENERAL, &ts).len(), 1);
}

#[tokio::test]
async fn a_refresh_opens_the_new_connection_before_the_old_one_closes_and_loses_nothing() {
    let t = socket_app().await;
    let old = t.slack.socket_connections()[0];
    t.slack.disconnect(old, "refresh_requested", Some(std::time::Duration::from_secs(2)));
    let envelopes: Vec<String> = (1..=10)
        .map(|n| {
            t.slack.push_envelope(
                EnvelopeKind::SlashCommands,
                t.slash_payload("/incident", &format!("p1 Refresh storm {n}"), ALICE),
            )
        })
        .collect();
    // The replacement is open while the old connection still is.
    t.slack.wait_for_socket_connections(3, PATIENCE).await.expect("the replacement opens before the old one closes");
    t.slack
        .wait_for(PATIENCE, |s| (!s.socket_connections().contains(&old)).then_some(()))
        .await
        .expect("Slack closes the old connection");
    for envelope in &envelopes {
        t.slack.wait_for_ack(envelope, PATIENCE).await.expect("every envelope is acknowledged");
    }
    exactly_these_incidents(&t, ALERTS, 10).await;
    assert_eq!(t.slack.socket_connections().len(), 2, "back to two connections");
}

#[tokio::test]
async fn a_socket_dropped_mid_storm_loses_and_doubles_nothing() {
    let t = socket_app().await;
    let [first, _] = t.slack.socket_connections()[..] else { panic!("two connections") };
    let mut envelopes = Vec::new();
    for n in 1..=30 {
        let envelope = t
            .slack
            .push_envelope(EnvelopeKind::SlashCommands, t.slash_payload("/incident", &format!("p1 Storm {n}"), ALICE));
        // Some are acted on, but their acknowledgement is lost with the socket.
        if n % 10 == 0 {
            t.slack.drop_socket_on_ack(&envelope);
        }
        if n == 15 {
            t.slack.drop_socket(first);
        }
        envelopes.push(envelope);
    }
    let mut redelivered = 0;
    for envelope in &envelopes {
        let ack = t.slack.wait_for_ack(envelope, PATIENCE).await.expect("every envelope is acknowledged");
        let reply = ack.payload.expect("each with its reply");
        assert!(reply_text(&reply).contains("INC-"), "an answer from the store is the same reply: {reply}");
        redelivered += usize::from(ack.retry_attempt > 0);
    }
    assert!(redelivered >= 3, "the lost acknowledgements were asked for again ({redelivered})");
    exactly_these_incidents(&t, ALERTS, 30).await;
    t.slack.wait_for_socket_connections(2, PATIENCE).await.expect("the dropped connections are replaced");
}

#[tokio::test]
async fn two_replicas_on_one_redis_share_the_envelopes_and_act_once() {
    let t = socket_app().await;
    let replica = t.spawn_replica("second-replica").await;
    t.slack.wait_for_socket_connections(4, PATIENCE).await.expect("each replica opens two connections");
    let mut envelopes = Vec::new();
    for n in 1..=20 {
        let envelope = t.slack.push_envelope(
            EnvelopeKind::SlashCommands,
            t.slash_payload("/incident", &format!("p1 Replicated {n}"), ALICE),
        );
        if n % 5 == 0 {
            // Delivered again elsewhere, perhaps to the other replica.
            t.slack.drop_socket_on_ack(&envelope);
        }
        envelopes.push(envelope);
    }
    let mut connections = HashSet::new();
    for envelope in &envelopes {
        let ack = t.slack.wait_for_ack(envelope, PATIENCE).await.expect("acknowledged");
        assert!(reply_text(ack.payload.as_ref().unwrap()).contains("INC-"));
        connections.insert(ack.connection);
    }
    assert!(connections.len() >= 3, "envelopes were spread over the replicas' connections: {connections:?}");
    exactly_these_incidents(&t, ALERTS, 20).await;
    replica.stop().await;
}

#[tokio::test]
async fn the_bot_connects_again_after_slack_disables_the_link_or_says_nothing_first() {
    let t = socket_app().await;
    let [first, second] = t.slack.socket_connections()[..] else { panic!("two connections") };
    // Socket Mode switched off and on again in the app's settings.
    t.slack.disconnect(first, "link_disabled", Some(std::time::Duration::from_millis(100)));
    // A connection Slack closes without a word first.
    t.slack.drop_socket(second);
    t.slack
        .wait_for(PATIENCE, |s| {
            let open = s.socket_connections();
            (open.len() == 2 && !open.contains(&first) && !open.contains(&second)).then_some(())
        })
        .await
        .expect("both connections are opened again");
    let reply = incident(&t, BOB, "p3 After the link came back").await;
    assert!(reply_text(&reply).contains("INC-1"), "{reply}");
    let http = reqwest::Client::new();
    assert_eq!(http.get(t.url("/readyz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_a_connection_the_bot_keeps_trying_and_is_not_ready() {
    let t = spawn_app_with(|config| {
        in_socket_mode(config);
        // Slack refuses this app-level token: no connection opens.
        config.app_token = Some(opsbot::config::Secret::new("xapp-1-revoked"));
    })
    .await;
    let http = reqwest::Client::new();
    t.slack
        .wait_for(PATIENCE, |s| (s.calls("apps.connections.open") >= 2).then_some(()))
        .await
        .expect("the bot keeps asking");
    assert!(t.slack.socket_connections().is_empty());
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert!(body["slack"].as_str().unwrap().contains("Socket Mode"), "{body}");
    assert_eq!(t.metric("opsbot_socket_mode_connections").await, 0);
}

#[tokio::test]
async fn an_envelope_sent_while_redis_is_down_is_answered_when_it_comes_again_and_acted_on_at_most_once() {
    let mut t = socket_app().await;
    let [first, _] = t.slack.socket_connections()[..] else { panic!("two connections") };
    t.redis.stop();
    let envelope = t.slack.push_envelope_to(
        first,
        EnvelopeKind::SlashCommands,
        t.slash_payload("/incident", "p1 During the Redis outage", ALICE),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    t.redis.restart();
    // Whatever the bot could not take is delivered again when its socket goes.
    t.slack.drop_socket(first);
    let ack = t.slack.wait_for_ack(&envelope, PATIENCE).await.expect("acknowledged once Redis is back");
    let reply = reply_text(ack.payload.as_ref().unwrap());
    assert!(reply.contains("INC-1") || reply.contains("nothing was changed"), "{reply}");
    if reply.contains("nothing was changed") {
        // Answered while Redis was still down: the typer was told, nothing happened.
        assert!(incident_alerts(&t, ALERTS).is_empty());
    } else {
        exactly_these_incidents(&t, ALERTS, 1).await;
    }
}
