//! A replica that dies or stops hands its work over: what it held is
//! taken over within seconds of a crash (its heartbeat lapses) and at once
//! after a graceful stop (it says it left), a live replica's work is never
//! taken, and a message the dead replica posted just before it died is
//! found in Slack by its metadata rather than posted twice.

use crate::support::*;
use opsbot::store::OutboxStream;
use opsbot_fake_slack::{Failure, FakeSlack, Message};
use std::time::Duration;

/// Top-level messages in `channel` whose text has `needle`.
fn top_level(slack: &FakeSlack, channel: &str, needle: &str) -> Vec<Message> {
    slack.messages(channel).into_iter().filter(|m| m.thread_ts.is_none() && m.text.contains(needle)).collect()
}

/// Waits until the replica has tried to post to Slack, so it holds what
/// it was given.
async fn wait_for_an_attempt(t: &TestApp) {
    t.slack
        .wait_for(PATIENCE, |s| (s.calls("chat.postMessage") > 0).then_some(()))
        .await
        .expect("the replica tried to post");
}

#[tokio::test]
async fn a_replica_killed_after_slack_answered_does_not_post_the_alert_twice() {
    let mut t = spawn_app_with_worker(|_| {}, heartbeat_only()).await;
    // Slack posts the alert, but its answer never reaches the replica,
    // which is killed before it could record where the alert is.
    t.slack.fail_next("chat.postMessage", Failure::NoAnswer);
    t.incident("p0 Posted just before the crash").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.kill();

    let survivor = t.spawn_replica_with("survivor", heartbeat_only()).await;
    t.addr = survivor.addr;
    // Once the killed replica's heartbeat lapses, the survivor takes the
    // incident's entries over; the page lands in the first alert's thread.
    t.wait_for_page(&alert).await;
    settled(&survivor.state.store).await;
    assert_eq!(top_level(&t.slack, ALERTS, "INC-1").len(), 1, "{:#?}", t.slack.messages(ALERTS));
    assert!(t.slack.calls("conversations.history") >= 1, "the survivor looked before posting");

    // The alert found is the incident's: acknowledging edits it.
    t.incident("ack 1").await;
    t.wait_until(&alert, "the acknowledgement", |m| m.edits > 0).await;
    survivor.stop().await;
}

#[tokio::test]
async fn a_replica_killed_after_slack_answered_does_not_post_the_thread_reply_twice() {
    let mut t = spawn_app_with_worker(|_| {}, heartbeat_only()).await;
    t.incident("p2 Slow checkout").await;
    let alert = t.wait_for_alert(DEVOPS, "INC-1").await;
    t.wait_until_settled().await;
    let lookups = || t.slack.calls("conversations.history") + t.slack.calls("conversations.replies");
    assert_eq!(lookups(), 0, "a first attempt looks nothing up");

    t.slack.fail_next("chat.postMessage", Failure::NoAnswer);
    t.incident("update 1 Rolled back the release").await;
    let update = |s: &FakeSlack| {
        s.thread(DEVOPS, &alert.ts).into_iter().filter(|m| m.text.contains("Rolled back")).collect::<Vec<_>>()
    };
    t.slack.wait_for(PATIENCE, |s| (!update(s).is_empty()).then_some(())).await.expect("Slack has the update");
    t.kill();

    let survivor = t.spawn_replica_with("survivor", heartbeat_only()).await;
    t.slack
        .wait_for(PATIENCE, |s| (s.calls("conversations.replies") > 0).then_some(()))
        .await
        .expect("the survivor looks in the thread");
    settled(&survivor.state.store).await;
    assert_eq!(update(&t.slack).len(), 1, "{:#?}", t.slack.thread(DEVOPS, &alert.ts));
    survivor.stop().await;
}

#[tokio::test]
async fn a_killed_replica_s_entries_are_delivered_by_another_once_its_heartbeat_lapses() {
    // An hour of idle window: only the heartbeat can explain a take-over
    // within the test's patience.
    let mut t = spawn_app_with_worker(|_| {}, heartbeat_only()).await;
    t.slack.set_unavailable(true);
    t.incident("p0 Orphaned by a crash").await;
    wait_for_an_attempt(&t).await;
    t.kill();
    t.slack.set_unavailable(false);

    let survivor = t.spawn_replica_with("survivor", heartbeat_only()).await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.wait_for_page(&alert).await;
    settled(&survivor.state.store).await;
    assert_eq!(top_level(&t.slack, ALERTS, "INC-1").len(), 1);
    survivor.stop().await;
}

#[tokio::test]
async fn a_live_replica_s_entries_are_not_taken_while_slack_is_slow() {
    let t = spawn_app_with_worker(|_| {}, heartbeat_only()).await;
    let other = t.spawn_replica_with("replica-2", heartbeat_only()).await;
    t.slack.set_unavailable(true);
    t.incident("p0 During a long Slack outage").await;
    wait_for_an_attempt(&t).await;
    // Longer than a heartbeat lasts (2 s in tests): the replica retrying
    // the alert is alive, so nothing it holds may be claimed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let store = &other.state.store;
    for stream in OutboxStream::ALL {
        let claimed = store.outbox.claim_departed(stream, "a-probe", 100).await.unwrap();
        assert!(claimed.is_empty(), "a live replica's entries were claimable: {claimed:?}");
    }
    t.slack.set_unavailable(false);
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.wait_for_page(&alert).await;
    t.wait_until_settled().await;
    let pages = t.slack.thread(ALERTS, &alert.ts).iter().filter(|m| m.text.contains("Paging the")).count();
    assert_eq!((top_level(&t.slack, ALERTS, "INC-1").len(), pages), (1, 1), "{:#?}", t.slack.messages(ALERTS));
    other.stop().await;
}

#[tokio::test]
async fn a_stopped_replica_hands_what_it_holds_to_another_at_once() {
    // Heartbeats that last an hour: only the stopped replica saying it
    // left can explain a take-over within the test's patience.
    let mut lasting = heartbeat_only();
    lasting.heartbeat_lasts = Duration::from_secs(3600);
    let mut t = spawn_app_with_worker(|_| {}, lasting.clone()).await;
    t.slack.set_unavailable(true);
    t.incident("p1 Handed over").await;
    wait_for_an_attempt(&t).await;
    let survivor = t.spawn_replica_with("survivor", lasting).await;
    t.stop().await;
    assert_eq!(survivor.state.store.replicas.is_alive("test-replica").await.unwrap(), Some(false), "it left");

    t.slack.set_unavailable(false);
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.wait_for_page(&alert).await;
    settled(&survivor.state.store).await;
    assert_eq!(top_level(&t.slack, ALERTS, "INC-1").len(), 1);
    survivor.stop().await;
}

#[tokio::test]
async fn a_replica_whose_heartbeat_lapsed_does_not_post_what_another_took_over_meanwhile() {
    // The first replica talks to a Slack of its own, down for now, and
    // beats every 3 s for 1 s: its heartbeat lapses for two seconds of
    // every three while it runs on, as a replica frozen by its machine
    // looks to the others.
    let own_slack = FakeSlack::with_token(BOT_TOKEN);
    let own_server = own_slack.spawn().await.expect("its own fake Slack starts");
    own_slack.set_unavailable(true);
    let mut lapsing = heartbeat_only();
    lapsing.heartbeat_every = Duration::from_secs(3);
    lapsing.heartbeat_lasts = Duration::from_secs(1);
    let mut shared_slack = String::new();
    let t = spawn_app_with_worker(
        |c| {
            shared_slack = std::mem::replace(&mut c.slack_api_url, own_server.api_url.clone());
        },
        lapsing,
    )
    .await;
    t.incident("p0 Held across a freeze").await;
    own_slack
        .wait_for(PATIENCE, |s| (s.calls("chat.postMessage") > 0).then_some(()))
        .await
        .expect("the first replica holds the alert and tries to post it");

    // Another replica takes the alert over while the heartbeat has lapsed,
    // and posts it.
    let other = t.spawn_replica_on("other", &shared_slack, heartbeat_only()).await;
    t.wait_for_alert(ALERTS, "INC-1").await;

    // The first replica's Slack comes back and its heartbeat with it: it
    // finds the alert is the other's now and leaves it.
    own_slack.set_unavailable(false);
    let deadline = std::time::Instant::now() + PATIENCE;
    while t.metric(r#"opsbot_outbox_deliveries_total{outcome="lost"}"#).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the first replica never gave the alert up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(own_slack.all_messages().is_empty(), "posted twice: {:#?}", own_slack.all_messages());
    settled(&other.state.store).await;
    assert_eq!(top_level(&t.slack, ALERTS, "INC-1").len(), 1);
    other.stop().await;
}
