//! Nothing is lost when the bot restarts, Slack is away, or Redis goes down
//! for a while.

use crate::support::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_restart_keeps_open_incidents_and_delivers_what_was_not_yet_posted() {
    let mut t = spawn_app().await;
    t.incident("p2 Before the restart").await;
    t.wait_for_alert(DEVOPS, "INC-1").await;

    // Slack is away: the next alert waits in the outbox.
    t.slack.set_unavailable(true);
    t.incident("p0 During the outage").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.stop().await;
    t.slack.set_unavailable(false);

    t.start_again().await;
    t.wait_for_alert(ALERTS, "INC-2").await;
    let list = reply_text(&t.incident("list").await);
    assert!(list.contains("INC-1") && list.contains("INC-2"), "{list}");
    let alerts: Vec<_> = t.slack.messages(ALERTS).into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(alerts.len(), 1, "posted once after the restart");
    // Numbering continues where it stopped.
    assert!(reply_text(&t.incident("p3 After").await).contains("INC-3"));
}

#[tokio::test]
async fn a_second_replica_takes_over_what_a_dead_one_left() {
    let mut t = spawn_app().await;
    t.slack.set_unavailable(true);
    t.incident("p1 Orphaned").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.stop().await;
    t.slack.set_unavailable(false);
    // Another replica (another consumer name) on the same Redis.
    t.config.replica = "other-replica".into();
    t.start_again().await;
    t.wait_for_alert(ALERTS, "INC-1").await;
    let alerts: Vec<_> = t.slack.messages(ALERTS).into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(alerts.len(), 1);
}

#[tokio::test]
async fn redis_down_makes_readyz_503_and_commands_answer_clearly_then_recovers() {
    let mut t = spawn_app().await;
    t.incident("p3 Before").await;
    t.wait_for_alert(DEVOPS, "INC-1").await;
    t.redis.stop();

    let http = reqwest::Client::new();
    let started = Instant::now();
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_ne!(body["redis"], "ok");
    assert!(started.elapsed() < Duration::from_secs(3), "readyz answered in {:?}", started.elapsed());

    let started = Instant::now();
    let reply = reply_text(&t.incident("p0 During the Redis outage").await);
    assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    assert!(reply.contains("cannot reach its database") && reply.contains("nothing was changed"), "{reply}");

    t.redis.restart();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = reply_text(&t.incident("p0 After Redis returned").await);
        if reply.contains("declared") {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http.get(t.url("/readyz")).send().await.unwrap().status(), 200);
    // The append-only Redis came back with INC-1 ("Before"), so this one
    // numbers on from it; what matters is that it reaches Slack.
    t.slack
        .wait_for(PATIENCE, |s| s.messages(ALERTS).into_iter().find(|m| m.text.contains("After Redis returned")))
        .await
        .expect("the alert after recovery is posted");
}

#[tokio::test]
async fn slack_unreachable_makes_readyz_503() {
    let t = spawn_app().await;
    t.slack.set_unavailable(true);
    let http = reqwest::Client::new();
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["redis"], "ok");
    assert_ne!(body["slack"], "ok");
}

#[tokio::test]
async fn a_long_slack_outage_with_two_replicas_delivers_each_message_once() {
    let t = spawn_app().await;
    let second = t.spawn_replica("replica-2").await;
    t.slack.set_unavailable(true);
    t.incident("p0 During a long Slack outage").await;
    // Longer than the replicas' reclaim_after (2 s in tests): entries a live
    // replica holds must not look abandoned to the other.
    tokio::time::sleep(Duration::from_secs(5)).await;
    t.slack.set_unavailable(false);
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    let page = t
        .slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &alert.ts).into_iter().find(|m| m.text.contains("Paging the")))
        .await;
    assert!(page.is_some(), "the page is delivered");
    // Give a duplicate every chance to appear.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pages = t.slack.thread(ALERTS, &alert.ts).iter().filter(|m| m.text.contains("Paging the")).count();
    let alerts = t.slack.messages(ALERTS).iter().filter(|m| m.thread_ts.is_none()).count();
    assert_eq!((alerts, pages), (1, 1), "{:#?}", t.slack.messages(ALERTS));
    second.stop().await;
}

#[tokio::test]
async fn a_running_replica_takes_over_what_a_stopped_one_left_without_a_restart() {
    let mut t = spawn_app().await;
    let survivor = t.spawn_replica("replica-2").await;
    t.slack.set_unavailable(true);
    t.incident("p1 Left behind").await;
    // Let the first replica take the entries, then stop it mid-retry.
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.stop().await;
    t.slack.set_unavailable(false);
    // The survivor keeps running; after reclaim_after (2 s in tests) the
    // stopped replica's entries look abandoned and it delivers them.
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &alert.ts).into_iter().find(|m| m.text.contains("Paging the")))
        .await
        .expect("the page is delivered too");
    assert_eq!(t.slack.messages(ALERTS).iter().filter(|m| m.thread_ts.is_none()).count(), 1);
    survivor.stop().await;
}
