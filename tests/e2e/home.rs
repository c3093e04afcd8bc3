//! The App Home tab: opening it publishes the viewer's view, it follows
//! what changes without publishing once per change, and its buttons
//! declare an incident and start a checklist.

use crate::support::*;
use serde_json::{json, Value};

/// Slack's event when `user` opens the bot's Home tab.
async fn open_home(t: &TestApp, user: &str) {
    let event = json!({
        "token": "x", "team_id": "T0OPSBOT", "api_app_id": "A0OPSBOT", "type": "event_callback",
        "event_id": format!("Ev0HOME{user}"), "event_time": 1_700_000_000,
        "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home", "event_ts": "1.2"}
    });
    let response = t.post_signed("/slack/events", "application/json", event.to_string()).await;
    assert_eq!(response.status(), 200);
}

/// `user`'s Home once it holds `text`.
async fn home_showing(t: &TestApp, user: &str, text: &str) -> Value {
    t.slack
        .wait_for(PATIENCE, |s| s.home(user).filter(|h| h.to_string().contains(text)))
        .await
        .unwrap_or_else(|| panic!("{user}'s Home shows {text}: {:?}", t.slack.home(user)))
}

/// Clicks a button of `user`'s Home, as Slack posts it: from a view, with
/// no channel.
async fn click_home(t: &TestApp, user: &str, action_id: &str, value: &str) -> reqwest::StatusCode {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user, "team_id": "T0OPSBOT"},
        "team": {"id": "T0OPSBOT", "domain": TEAM_DOMAIN},
        "api_app_id": "A0OPSBOT",
        "container": {"type": "view", "view_id": "V0HOME"},
        "view": {"id": "V0HOME", "type": "home"},
        "trigger_id": "333.444.home",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": "1.2"}],
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    t.post_signed("/slack/interactions", "application/x-www-form-urlencoded", body).await.status()
}

#[tokio::test]
async fn opening_the_home_tab_shows_open_incidents_who_is_on_call_and_todays_checklists() {
    let t = spawn_app_with(crate::oncall::with_rotation).await;
    t.incident("p1 Search is slow").await;
    t.wait_for_alert(ALERTS, "INC-1").await;
    open_home(&t, ALICE).await;
    let home = home_showing(&t, ALICE, "INC-1").await.to_string();
    assert!(home.contains("Open incidents (1)") && home.contains("Search is slow"), "{home}");
    assert!(home.contains("*On-call engineer*: <@U0BOB> until"), "{home}");
    assert!(home.contains("Today's checklists") && home.contains("Morning Health Check"), "{home}");
    assert!(home.contains("home.declare"), "{home}");
    // Bob has not opened it: nothing is published for him.
    assert!(t.slack.home(BOB).is_none());
}

#[tokio::test]
async fn the_home_follows_changes_and_a_storm_of_declares_is_not_a_storm_of_publishes() {
    let t = spawn_app().await;
    open_home(&t, ALICE).await;
    home_showing(&t, ALICE, "No open incidents").await;
    let before = t.slack.calls("views.publish");
    for i in 1..=30 {
        t.incident(&format!("p3 Flaky test {i}")).await;
    }
    home_showing(&t, ALICE, "Open incidents (30)").await;
    let publishes = t.slack.calls("views.publish") - before;
    assert!(publishes <= 10, "30 declares took {publishes} publishes");
    // Resolved, it leaves the Home.
    reply_text(&t.incident("resolve INC-30 fixed").await);
    home_showing(&t, ALICE, "Open incidents (29)").await;
}

#[tokio::test]
async fn the_home_buttons_declare_an_incident_and_start_a_checklist() {
    let t = spawn_app().await;
    open_home(&t, ALICE).await;
    home_showing(&t, ALICE, "home.declare").await;

    assert_eq!(click_home(&t, ALICE, "home.declare", "").await, 200);
    let view = t.slack.wait_for(PATIENCE, |s| s.views().into_iter().next()).await.expect("the form opens").view;
    // Without a severity, the form stays open and says so.
    let values = json!({"title": {"title": {"type": "plain_text_input", "value": "Checkout down"}}});
    let refused = t.submit_values(ALICE, &view, values).await;
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["response_action"], "errors", "{body}");
    let values = json!({
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "P1", "text": {"type": "plain_text", "text": "P1"}}}},
        "title": {"title": {"type": "plain_text_input", "value": "Checkout down"}},
    });
    let declared = t.submit_values(ALICE, &view, values).await;
    assert_eq!(declared.status(), 200);
    assert_eq!(declared.text().await.unwrap(), "", "the form closes");
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    assert!(alert.text.contains("Checkout down"), "{}", alert.text);
    home_showing(&t, ALICE, "Checkout down").await;

    assert_eq!(click_home(&t, ALICE, "home.start:morning-health-check", "morning-health-check").await, 200);
    let dm = t
        .slack
        .wait_for(PATIENCE, |s| s.messages(ALICE).into_iter().find(|m| m.text.contains("RUN-1")))
        .await
        .expect("the clicker is told in a DM");
    assert!(dm.text.contains("Morning Health Check"), "{}", dm.text);
    home_showing(&t, ALICE, "*RUN-1* in progress").await;
}
