//! `/incident` as an on-call engineer uses it.

use crate::support::*;
use chrono::TimeDelta;

#[tokio::test]
async fn p0_declare_posts_the_alert_in_devops_alerts_and_links_it_to_the_declarer() {
    let t = spawn_app().await;
    let reply = t.incident("p0 Production API down").await;
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(reply_text(&reply).contains("INC-1"), "{reply}");

    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    let blocks = blocks_text(&alert);
    assert!(blocks.contains("P0 · INC-1 · Production API down"), "{blocks}");
    assert!(blocks.contains("respond &lt; 5 min · resolve &lt; 1 h"), "{blocks}");
    assert!(blocks.contains(&format!("<@{ALICE}>")), "declarer shown: {blocks}");
    assert!(has_button(&alert, "incident.ack") && has_button(&alert, "incident.resolve"));

    let link = t
        .slack
        .wait_for(PATIENCE, |s| s.ephemerals().into_iter().find(|e| e.user == ALICE && e.text.contains("INC-1")))
        .await
        .expect("the declarer is sent the alert's link");
    let permalink = format!("https://{TEAM_DOMAIN}.slack.com/archives/{ALERTS}/p{}", alert.ts.replace('.', ""));
    assert!(link.text.contains(&permalink), "{}", link.text);
    assert!(t.slack.messages(DEVOPS).is_empty());
}

#[tokio::test]
async fn p2_and_p3_go_to_devops_p1_to_devops_alerts() {
    let t = spawn_app().await;
    t.incident("p2 Builds slow").await;
    t.incident("p3 Flaky test").await;
    t.incident("p1 Deploys failing").await;
    t.wait_for_alert(DEVOPS, "INC-1").await;
    t.wait_for_alert(DEVOPS, "INC-2").await;
    t.wait_for_alert(ALERTS, "INC-3").await;
    assert_eq!(t.slack.messages(ALERTS).len(), 1);
}

#[tokio::test]
async fn ack_and_resolve_update_the_same_message_in_place() {
    let t = spawn_app().await;
    t.incident("p0 Database down").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;

    t.clock.advance(TimeDelta::minutes(3));
    let reply = t.incident_as(BOB, "ack INC-1").await;
    assert!(reply_text(&reply).contains("acknowledged"), "{reply}");
    let acked = t.wait_until(&alert, "the acknowledgement", |m| m.text.contains("Acknowledged")).await;
    assert!(blocks_text(&acked).contains(&format!("Acknowledged by <@{BOB}>")));
    assert!(!has_button(&acked, "incident.ack"), "Acknowledge goes away once acknowledged");

    t.clock.advance(TimeDelta::minutes(20));
    assert_eq!(t.click(ALICE, &acked, "incident.resolve").await, 200);
    let modal = t
        .slack
        .wait_for(PATIENCE, |s| s.views().into_iter().next())
        .await
        .expect("Resolve opens a modal asking for a summary");
    assert_eq!(modal.trigger_id, "111.222.xxx");
    let response = t.submit_view(ALICE, &modal.view, "summary", "Failed over to the replica").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "", "an empty answer closes the modal");
    let resolved = t.wait_until(&alert, "the resolution", |m| m.text.contains("Resolved")).await;
    let blocks = blocks_text(&resolved);
    assert!(blocks.contains(&format!("Resolved by <@{ALICE}>")), "{blocks}");
    assert!(blocks.contains("Time to acknowledge:* 3 min (target &lt; 5 min, met ✅)"), "{blocks}");
    assert!(blocks.contains("Time to resolve:* 23 min (target &lt; 1 h, met ✅)"), "{blocks}");
    assert!(!has_button(&resolved, "incident.resolve"));
    assert_eq!(resolved.edits, 2, "one edit for ack, one for resolve");

    let top_level: Vec<_> = t.slack.messages(ALERTS).into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(top_level.len(), 1, "updates edit the alert, they do not post new ones");
    t.slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &alert.ts).into_iter().find(|m| m.text.contains("Resolved by")))
        .await
        .expect("resolution noted in the thread");

    // Submitting the modal again (say, from a second tab) is refused in the modal.
    let again = t.submit_view(BOB, &modal.view, "summary", "again").await;
    let errors: serde_json::Value = again.json().await.unwrap();
    assert_eq!(errors["response_action"], "errors");
    assert!(errors["errors"]["summary"].as_str().unwrap().contains("already resolved"), "{errors}");
}

#[tokio::test]
async fn list_shows_open_incidents_newest_first_and_show_has_the_timeline() {
    let t = spawn_app().await;
    assert!(reply_text(&t.incident("list").await).contains("No open incidents"));
    t.incident("p2 Cache misses").await;
    t.clock.advance(TimeDelta::minutes(10));
    t.incident("p0 API down").await;
    t.incident("p3 Lint slow").await;
    t.incident("resolve 3 false alarm").await;

    let list = reply_text(&t.incident("list").await);
    let newest = list.find("INC-2").expect("INC-2 listed");
    let older = list.find("INC-1").expect("INC-1 listed");
    assert!(newest < older, "newest first: {list}");
    assert!(!list.contains("INC-3"), "resolved incidents are not open: {list}");
    assert!(list.contains("10 min ago"), "age shown: {list}");
    assert!(list.contains("Declared"), "status shown: {list}");

    t.incident_as(BOB, "ack 2").await;
    t.incident_as(BOB, "update 2 Failing over to the replica").await;
    let show = reply_text(&t.incident("show INC-2").await);
    assert!(show.contains("declared P0: API down"), "{show}");
    assert!(show.contains(&format!("<@{BOB}> acknowledged")), "{show}");
    assert!(show.contains("posted an update: Failing over to the replica"), "{show}");

    let resolved = reply_text(&t.incident("show 3").await);
    assert!(resolved.contains("resolved: false alarm"), "resolved incidents can still be shown: {resolved}");
}

#[tokio::test]
async fn resolving_twice_and_acking_a_resolved_incident_are_refused_politely() {
    let t = spawn_app().await;
    t.incident("p1 Queue backlog").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.incident_as(BOB, "resolve 1 drained").await;
    t.wait_until(&alert, "the resolution", |m| m.text.contains("Resolved")).await;

    let again = reply_text(&t.incident("resolve 1").await);
    assert!(again.contains("already resolved") && again.contains(&format!("<@{BOB}>")), "{again}");
    let ack = reply_text(&t.incident("ack INC-1").await);
    assert!(ack.contains("already resolved"), "{ack}");
    let show = reply_text(&t.incident("show 1").await);
    assert!(show.contains("resolved: drained"), "the first resolution stands: {show}");
}

#[tokio::test]
async fn typos_get_usage_help_and_change_nothing() {
    let t = spawn_app().await;
    for (text, expected) in [
        ("p9 Something", "Unknown severity `p9`"),
        ("", "Usage"),
        ("frobnicate", "Unknown subcommand `frobnicate`"),
        ("p0", "Give the incident a title"),
        ("ack", "Which incident?"),
        ("ack 41", "There is no incident *INC-41*"),
        ("show INC-x", "not an incident id"),
    ] {
        let reply = t.incident(text).await;
        assert_eq!(reply["response_type"], "ephemeral");
        assert!(reply_text(&reply).contains(expected), "{text:?} → {reply}");
    }
    assert!(reply_text(&t.incident("list").await).contains("No open incidents"));
    // The first real incident is still INC-1: mistakes used up no numbers.
    assert!(reply_text(&t.incident("p3 real one").await).contains("INC-1"));
    t.wait_for_alert(DEVOPS, "INC-1").await;
    assert_eq!(t.slack.calls("chat.postMessage"), 1);
}

#[tokio::test]
async fn concurrent_acks_record_one_responder_and_tell_the_other() {
    let t = spawn_app().await;
    t.incident("p0 Everything is on fire").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    let (a, b) = tokio::join!(t.click(ALICE, &alert, "incident.ack"), t.click(BOB, &alert, "incident.ack"));
    assert_eq!((a, b), (reqwest::StatusCode::OK, reqwest::StatusCode::OK));
    let acked = t.wait_until(&alert, "the acknowledgement", |m| m.text.contains("Acknowledged")).await;
    let note = t
        .slack
        .wait_for(PATIENCE, |s| s.ephemerals().into_iter().find(|e| e.text.contains("already acknowledged")))
        .await
        .expect("the second clicker is told someone was first");
    let winner = if note.user == ALICE { BOB } else { ALICE };
    assert!(blocks_text(&acked).contains(&format!("Acknowledged by <@{winner}>")));
    let show = reply_text(&t.incident("show 1").await);
    assert_eq!(show.matches("acknowledged").count(), 1, "{show}");
}

#[tokio::test]
async fn commander_is_shown_on_the_alert() {
    let t = spawn_app().await;
    t.incident("p1 Payments slow").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    let reply = reply_text(&t.incident(&format!("commander 1 <@{BOB}|bob>")).await);
    assert!(reply.contains(&format!("<@{BOB}>")), "{reply}");
    t.wait_until(&alert, "the commander", |m| blocks_text(m).contains(&format!("*Commander*\\n<@{BOB}>"))).await;
}

#[tokio::test]
async fn im_commander_button_makes_the_clicker_commander() {
    let t = spawn_app().await;
    t.incident("p0 Login broken").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    assert_eq!(t.click(BOB, &alert, "incident.commander").await, 200);
    t.wait_until(&alert, "the commander", |m| blocks_text(m).contains(&format!("*Commander*\\n<@{BOB}>"))).await;
    let show = reply_text(&t.incident("show 1").await);
    assert!(show.contains(&format!("Commander: <@{BOB}>")), "{show}");
}
