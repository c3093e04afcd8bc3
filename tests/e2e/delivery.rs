//! The outbox: what opsbot promised reaches Slack exactly once, whatever
//! Slack answers in between.

use crate::support::*;
use opsbot_fake_slack::Failure;
use std::time::{Duration, Instant};

#[tokio::test]
async fn slack_answering_429_twice_and_500_once_still_posts_the_alert_exactly_once() {
    let t = spawn_app().await;
    t.slack.fail_next("chat.postMessage", Failure::RateLimited { retry_after_secs: 1 });
    t.slack.fail_next("chat.postMessage", Failure::RateLimited { retry_after_secs: 1 });
    t.slack.fail_next("chat.postMessage", Failure::HttpStatus(500));
    let started = Instant::now();
    t.incident("p0 Checkout errors").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After was honoured twice");
    assert_eq!(t.slack.calls("chat.postMessage"), 4, "three refusals, then one success");
    let posted: Vec<_> = t.slack.messages(ALERTS).into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(posted.len(), 1, "exactly one alert");
    // Later updates still find the alert.
    t.incident("ack 1").await;
    t.wait_until(&alert, "the acknowledgement", |m| m.text.contains("Acknowledged")).await;
}

#[tokio::test]
async fn a_permanent_refusal_goes_to_the_dead_letters_and_updates_do_not_wait_forever() {
    let t = spawn_app().await;
    t.slack.fail_next("chat.postMessage", Failure::Error("channel_not_found".into()));
    t.incident("p1 Lost in the void").await;
    let store = &t.app().state.store;
    let deadline = Instant::now() + PATIENCE;
    let letter = loop {
        let letters = store.outbox.dead_letters().await.unwrap();
        if let Some(letter) = letters.into_iter().find(|l| l["effect"]["kind"] == "post_alert") {
            break letter;
        }
        assert!(Instant::now() < deadline, "the refusal never reached the dead letters");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(letter["error"], "channel_not_found");
    assert_eq!(t.slack.calls("chat.postMessage"), 1, "a permanent error is not retried");

    // The incident itself is intact, and its later updates give up too.
    t.incident("ack 1").await;
    let deadline = Instant::now() + PATIENCE;
    while store.outbox.len().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "outbox never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reply_text(&t.incident("list").await).contains("INC-1"));
}

#[tokio::test]
async fn invalid_blocks_are_never_sent_even_for_the_longest_titles() {
    let t = spawn_app().await;
    let title = format!("<!here> {}", "ü".repeat(240));
    t.incident(&format!("p0 {title}")).await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    // mrkdwn would turn `<!here>` into a channel-wide ping; plain_text
    // (the header) shows it literally.
    assert!(!alert.text.contains("<!here>"), "{}", alert.text);
    for block in alert.blocks.as_array().unwrap() {
        if block["type"] == "section" {
            assert!(!block.to_string().contains("<!here>"), "no channel-wide pings from titles: {block}");
        }
    }
    assert!(t.app().state.store.outbox.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn after_an_outage_every_new_incidents_alert_goes_out_before_any_earlier_incidents_playbook() {
    // Small batches, so the twelve alerts take several reads: the playbooks
    // must still wait for all of them, not only for the first batch.
    let mut worker = worker_settings();
    worker.batch = 4;
    let t = spawn_app_with_worker(|_| {}, worker).await;
    t.slack.set_unavailable(true);
    for n in 1..=12 {
        t.incident(&format!("p1 Storm part {n}")).await;
    }
    t.slack.set_unavailable(false);
    t.wait_until_settled().await;

    let posted = t.slack.all_messages();
    let alerts: Vec<usize> =
        (0..posted.len()).filter(|&i| posted[i].thread_ts.is_none() && posted[i].text.contains("INC-")).collect();
    assert_eq!(alerts.len(), 12, "every incident's alert, once");
    let first_reply = posted.iter().position(|m| m.thread_ts.is_some()).expect("the playbooks were posted");
    assert!(
        alerts.iter().all(|&i| i < first_reply),
        "all twelve alerts before the first thread reply; posted: {:?}",
        posted.iter().map(|m| (m.thread_ts.is_some(), m.text.chars().take(40).collect::<String>())).collect::<Vec<_>>()
    );
    for alert in alerts.iter().map(|&i| &posted[i]) {
        let thread = t.slack.thread(ALERTS, &alert.ts);
        let playbook = thread.iter().any(|m| m.text.to_lowercase().contains("playbook"));
        assert!(
            playbook,
            "{}'s playbook is in its thread: {:?}",
            alert.text,
            thread.iter().map(|m| &m.text).collect::<Vec<_>>()
        );
    }
}
