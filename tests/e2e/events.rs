//! The Events API: URL verification and `@opsbot` mentions, each event
//! taking effect once however often Slack redelivers it.

use crate::support::*;
use serde_json::json;

/// The user's message in the channel, as Slack has it, and the event Slack
/// sends about it.
fn mention(t: &TestApp, event_id: &str, text: &str) -> (String, String) {
    let ts = t.slack.post_as_user(GENERAL, ALICE, text, None).expect("the user's message is posted");
    (ts.clone(), mention_event(event_id, text, &ts))
}

fn mention_event(event_id: &str, text: &str, ts: &str) -> String {
    json!({
        "token": "x", "team_id": "T0OPSBOT", "api_app_id": "A0OPSBOT", "type": "event_callback",
        "event_id": event_id, "event_time": 1_700_000_000,
        "event": {"type": "app_mention", "user": ALICE, "text": text, "ts": ts,
                  "channel": GENERAL, "event_ts": ts}
    })
    .to_string()
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let t = spawn_app().await;
    let body = include_str!("../fixtures/slack/url_verification.json").to_owned();
    let response = t.post_signed("/slack/events", "application/json", body).await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

#[tokio::test]
async fn mention_status_is_answered_in_the_thread_once_despite_redeliveries() {
    let t = spawn_app().await;
    t.incident("p0 API down").await;
    t.wait_for_alert(ALERTS, "INC-1").await;
    let (ts, event) = mention(&t, "Ev0STATUS", "<@U0OPSBOT> status");
    // Slack's redeliveries carry the same event_id.
    for _ in 0..3 {
        let response = t.post_signed("/slack/events", "application/json", event.clone()).await;
        assert_eq!(response.status(), 200);
    }
    let answer = t
        .slack
        .wait_for(PATIENCE, |s| s.thread(GENERAL, &ts).into_iter().next())
        .await
        .expect("answered in the thread");
    assert!(answer.text.contains("INC-1") && answer.text.contains("API down"), "{}", answer.text);
    // Give any duplicate a chance to show up, then check there is none.
    t.incident("p3 marker").await;
    t.wait_for_alert(DEVOPS, "INC-2").await;
    assert_eq!(t.slack.thread(GENERAL, &ts).len(), 1);
}

#[tokio::test]
async fn mention_help_explains_the_commands() {
    let t = spawn_app().await;
    let (ts, event) = mention(&t, "Ev0HELP", "<@U0OPSBOT> help");
    let response = t.post_signed("/slack/events", "application/json", event).await;
    assert_eq!(response.status(), 200);
    let answer = t
        .slack
        .wait_for(PATIENCE, |s| s.thread(GENERAL, &ts).into_iter().next())
        .await
        .expect("answered in the thread");
    assert!(answer.text.contains("/incident p0"), "{}", answer.text);
}
