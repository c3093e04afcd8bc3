//! Incident response as the runbook says: the severity's playbook in the
//! alert's thread, escalation when nobody acknowledges, reminders, and the
//! post-incident checklist. Time moves by the test clock, never by sleeping.

use crate::support::*;
use chrono::TimeDelta;
use opsbot_fake_slack::Message;
use opsbot_handlers::{Runbook, Severity};

async fn declare_p0(t: &TestApp) -> Message {
    t.incident("p0 Production API down").await;
    t.wait_for_alert(ALERTS, "INC-1").await
}

/// Waits until the alert's thread has a reply containing `needle`.
async fn thread_reply(t: &TestApp, alert: &Message, needle: &str) -> Message {
    t.slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &alert.ts).into_iter().find(|m| m.text.contains(needle)))
        .await
        .unwrap_or_else(|| panic!("no reply with {needle:?}: {:#?}", t.slack.thread(ALERTS, &alert.ts)))
}

fn count_replies(t: &TestApp, alert: &Message, needle: &str) -> usize {
    t.slack.thread(ALERTS, &alert.ts).iter().filter(|m| m.text.contains(needle)).count()
}

/// Waits until every timer due by the test clock has been handled.
async fn timers_settle(t: &TestApp) {
    let store = &t.app().state.store;
    let deadline = std::time::Instant::now() + PATIENCE;
    while !store.timers.due(opsbot::clock::Clock::now(&t.clock), 1).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "due timers were never handled");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The first playbook message (phase 1) in the alert's thread.
async fn first_phase(t: &TestApp, alert: &Message) -> Message {
    let name = Runbook::seed().policy(Severity::P0).playbook[0].name.clone();
    t.slack
        .wait_for(PATIENCE, |s| {
            s.thread(ALERTS, &alert.ts).into_iter().find(|m| blocks_text(m).contains(&name) && has_step_buttons(m))
        })
        .await
        .expect("the first phase of the playbook is posted in the thread")
}

fn has_step_buttons(m: &Message) -> bool {
    blocks_text(m).contains("step.done")
}

/// The action id of a step's button on a playbook message.
fn step_action(m: &Message, verb: &str, step: usize) -> String {
    format!("{verb}:pb:{}:{step}", phase_of(m))
}

fn phase_of(m: &Message) -> usize {
    let text = blocks_text(m);
    let at = text.find("step.done:pb:").expect("step buttons") + "step.done:pb:".len();
    text[at..].split(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn p0_pages_the_first_responder_and_escalates_to_the_team_lead_after_five_minutes_without_ack() {
    let t = spawn_app().await;
    let runbook = Runbook::seed();
    let first = runbook.escalation_role(Severity::P0, 0).unwrap().name.clone();
    let second = runbook.escalation_role(Severity::P0, 1).unwrap().name.clone();
    let third = runbook.escalation_role(Severity::P0, 2).unwrap().name.clone();
    let alert = declare_p0(&t).await;
    thread_reply(&t, &alert, &format!("Paging the {first}")).await;

    t.clock.advance(TimeDelta::minutes(4));
    timers_settle(&t).await;
    assert_eq!(count_replies(&t, &alert, "Escalating"), 0, "not before five minutes");

    t.clock.advance(TimeDelta::minutes(1));
    let escalation = thread_reply(&t, &alert, &format!("Escalating to the {second}")).await;
    assert!(escalation.text.contains("after 5 min"), "{}", escalation.text);
    t.wait_until(&alert, "the escalation", |m| blocks_text(m).contains(&format!("to the {second} (level 2)"))).await;

    t.clock.advance(TimeDelta::minutes(5));
    thread_reply(&t, &alert, &format!("Escalating to the {third}")).await;
    assert_eq!(count_replies(&t, &alert, "Escalating"), 2);
}

#[tokio::test]
async fn ack_stops_escalation_even_across_a_restart() {
    let mut t = spawn_app().await;
    let alert = declare_p0(&t).await;
    t.clock.advance(TimeDelta::minutes(2));
    t.incident_as(BOB, "ack 1").await;
    thread_reply(&t, &alert, "escalation stopped").await;
    t.stop().await;
    t.start_again().await;
    t.clock.advance(TimeDelta::minutes(30));
    timers_settle(&t).await;
    // A later, unrelated delivery proves the outbox is caught up.
    t.incident("update 1 still on it").await;
    thread_reply(&t, &alert, "still on it").await;
    assert_eq!(count_replies(&t, &alert, "Escalating"), 0);
    assert_eq!(count_replies(&t, &alert, "not acknowledged"), 0);
}

#[tokio::test]
async fn two_replicas_escalate_once() {
    let t = spawn_app().await;
    let second = t.spawn_replica("replica-2").await;
    let alert = declare_p0(&t).await;
    t.clock.advance(TimeDelta::minutes(5));
    thread_reply(&t, &alert, "Escalating").await;
    timers_settle(&t).await;
    t.incident("update 1 marker").await;
    thread_reply(&t, &alert, "marker").await;
    assert_eq!(count_replies(&t, &alert, "Escalating"), 1);
    second.stop().await;
}

#[tokio::test]
async fn the_playbook_runs_in_the_thread_and_clicks_tick_steps_in_place() {
    let t = spawn_app().await;
    let alert = declare_p0(&t).await;
    let phase = first_phase(&t, &alert).await;
    let command =
        Runbook::seed().policy(Severity::P0).playbook.iter().flat_map(|p| &p.steps).find_map(|s| s.command.clone());
    if let Some(command) = command {
        let all = t.slack.thread(ALERTS, &alert.ts).iter().map(blocks_text).collect::<String>();
        let first_line = command.lines().next().unwrap().to_owned();
        assert!(
            all.contains(&serde_json::to_string(&first_line).unwrap().trim_matches('"').to_owned()),
            "steps show their commands"
        );
    }

    assert_eq!(t.click(BOB, &phase, &step_action(&phase, "step.done", 0)).await, 200);
    let ticked =
        t.wait_until(&phase, "the ticked step", |m| blocks_text(m).contains(&format!("Done by <@{BOB}>"))).await;
    assert!(blocks_text(&ticked).contains("✅"));
    assert!(!blocks_text(&ticked).contains(&step_action(&phase, "step.done", 0)), "a settled step loses its buttons");
    t.wait_until(&alert, "playbook progress", |m| blocks_text(m).contains("*Playbook*\\n1/")).await;

    // A double click (or Slack's retry) counts once.
    assert_eq!(t.click(ALICE, &phase, &step_action(&phase, "step.done", 0)).await, 200);
    t.slack
        .wait_for(PATIENCE, |s| s.ephemerals().into_iter().find(|e| e.user == ALICE && e.text.contains("already done")))
        .await
        .expect("the late clicker is told");
    let show = reply_text(&t.incident("show 1").await);
    assert_eq!(show.matches("did a playbook step").count(), 1, "{show}");
}

#[tokio::test]
async fn concurrent_clicks_on_one_phase_lose_nothing() {
    let t = spawn_app().await;
    let alert = declare_p0(&t).await;
    let phase = first_phase(&t, &alert).await;
    let (done, skip) = (step_action(&phase, "step.done", 0), step_action(&phase, "step.skip", 1));
    let (a, b) = tokio::join!(t.click(ALICE, &phase, &done), t.click(BOB, &phase, &skip));
    assert_eq!((a, b), (reqwest::StatusCode::OK, reqwest::StatusCode::OK));
    let both = t
        .wait_until(&phase, "both clicks", |m| {
            let text = blocks_text(m);
            text.contains(&format!("Done by <@{ALICE}>")) && text.contains(&format!("Skipped by <@{BOB}>"))
        })
        .await;
    assert!(blocks_text(&both).contains("⏭"));
    t.wait_until(&alert, "playbook progress", |m| blocks_text(m).contains("*Playbook*\\n2/")).await;
}

#[tokio::test]
async fn resolution_posts_the_post_incident_checklist_in_the_thread() {
    let t = spawn_app().await;
    let alert = declare_p0(&t).await;
    first_phase(&t, &alert).await;
    t.incident("resolve 1 rolled back the deploy").await;
    let first = Runbook::seed().post_incident.sections[0].name.clone();
    let checklist = t
        .slack
        .wait_for(PATIENCE, |s| {
            s.thread(ALERTS, &alert.ts)
                .into_iter()
                .find(|m| blocks_text(m).contains("Post-incident") && blocks_text(m).contains(&first))
        })
        .await
        .expect("post-incident checklist in the thread");
    assert!(blocks_text(&checklist).contains("step.done:pi:"), "with buttons");
    // The playbook can no longer be ticked.
    let phase = t.slack.thread(ALERTS, &alert.ts).into_iter().find(|m| blocks_text(m).contains("P0 playbook")).unwrap();
    t.wait_until(&phase, "buttons removed", |m| !has_step_buttons(m)).await;
}

#[tokio::test]
async fn a_quiet_p0_gets_a_status_update_nudge_and_an_update_resets_it() {
    let t = spawn_app().await;
    let every = Runbook::seed().policy(Severity::P0).update_every.expect("P0 asks for updates");
    let alert = declare_p0(&t).await;
    t.incident(&format!("commander 1 <@{BOB}>")).await;
    t.incident_as(BOB, "ack 1").await;
    t.clock.advance(every);
    let nudge = thread_reply(&t, &alert, "no status update").await;
    assert!(nudge.text.contains(&format!("<@{BOB}>")), "the commander is nudged: {}", nudge.text);

    t.clock.advance(TimeDelta::minutes(10));
    t.incident_as(BOB, "update 1 failover done").await;
    t.clock.advance(every - TimeDelta::minutes(1));
    timers_settle(&t).await;
    assert_eq!(count_replies(&t, &alert, "no status update"), 1, "the update reset the clock");
    t.clock.advance(TimeDelta::minutes(1));
    t.slack
        .wait_for(PATIENCE, |s| {
            (s.thread(ALERTS, &alert.ts).iter().filter(|m| m.text.contains("no status update")).count() == 2)
                .then_some(())
        })
        .await
        .expect("nudged again a full interval after the update");
}

#[tokio::test]
async fn past_the_resolution_target_the_thread_is_reminded() {
    let t = spawn_app().await;
    let alert = declare_p0(&t).await;
    t.incident_as(BOB, "ack 1").await;
    t.clock.advance(Runbook::seed().targets(Severity::P0).resolve);
    thread_reply(&t, &alert, "past its resolution target").await;
}

#[tokio::test]
async fn severity_raise_reposts_to_the_alerts_channel_and_retimes_escalation() {
    let t = spawn_app().await;
    t.incident("p2 Checkout latency creeping up").await;
    let old = t.wait_for_alert(DEVOPS, "INC-1").await;
    t.clock.advance(TimeDelta::minutes(20));
    let reply = reply_text(&t.incident("severity INC-1 p0").await);
    assert!(reply.contains("now P0") && reply.contains("#devops-alerts"), "{reply}");

    let new = t.wait_for_alert(ALERTS, "INC-1").await;
    assert!(blocks_text(&new).contains("P0 · INC-1"), "{}", blocks_text(&new));
    let moved = t.wait_until(&old, "a pointer to the new alert", |m| m.text.contains("moved")).await;
    assert!(blocks_text(&moved).contains(ALERTS), "the old alert links the new one: {}", blocks_text(&moved));
    thread_reply(&t, &new, "moved here from").await;
    thread_reply(&t, &new, "Severity raised P2 → P0").await;
    let p0_phase = Runbook::seed().policy(Severity::P0).playbook[0].name.clone();
    t.slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &new.ts).into_iter().find(|m| blocks_text(m).contains(&p0_phase)))
        .await
        .expect("the P0 playbook is posted under the new alert");

    // The P0 response clock starts at the raise: escalation 5 minutes later.
    t.clock.advance(TimeDelta::minutes(4));
    timers_settle(&t).await;
    assert_eq!(count_replies(&t, &new, "Escalating"), 0);
    t.clock.advance(TimeDelta::minutes(1));
    thread_reply(&t, &new, "Escalating").await;
    let show = reply_text(&t.incident("show 1").await);
    assert!(show.contains("changed the severity P2 → P0"), "{show}");
}

#[tokio::test]
async fn severity_change_within_a_channel_edits_the_alert_in_place() {
    let t = spawn_app().await;
    t.incident("p1 Deploys slow").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    t.incident("severity 1 p0").await;
    t.wait_until(&alert, "the new severity", |m| blocks_text(m).contains("P0 · INC-1")).await;
    assert_eq!(t.slack.messages(ALERTS).iter().filter(|m| m.thread_ts.is_none()).count(), 1);
    assert!(reply_text(&t.incident("severity 1 p0").await).contains("already P0"));
}

#[tokio::test]
async fn the_report_is_posted_in_the_thread_and_stats_compare_with_the_targets() {
    let t = spawn_app().await;
    let alert = declare_p0(&t).await;
    let phase = first_phase(&t, &alert).await;
    t.click(BOB, &phase, &step_action(&phase, "step.done", 0)).await;
    t.wait_until(&phase, "the ticked step", |m| blocks_text(m).contains("Done by")).await;
    t.clock.advance(TimeDelta::minutes(3));
    t.incident_as(BOB, "ack 1").await;
    t.clock.advance(TimeDelta::minutes(17));
    t.incident_as(BOB, "resolve 1 bad config rolled back").await;
    t.incident("p2 Slow cache").await;

    let reply = reply_text(&t.incident("report INC-1").await);
    assert!(reply.contains("posted in its thread"), "{reply}");
    let report = thread_reply(&t, &alert, "📋 *Incident report:").await;
    for expected in [
        "bad config rolled back",
        "3 min (target &lt; 5 min, met)",
        "20 min (target &lt; 1 h, met)",
        "*Severity history*",
        "*Timeline*",
        "Playbook: 1 done, 0 skipped",
    ] {
        assert!(report.text.contains(expected), "{expected:?} missing from:\n{}", report.text);
    }

    let stats = reply_text(&t.incident("stats").await);
    assert!(stats.contains("P0: 1 (0 open)"), "{stats}");
    assert!(stats.contains("P2: 1 (1 open)"), "{stats}");
    assert!(
        stats.contains("Median time to recovery over all 1 resolved: 20 min — within the runbook's KPI of &lt; 30 min"),
        "{stats}"
    );
}
