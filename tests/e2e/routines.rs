//! The runbook's routines as checklists in threads: on demand with
//! `/runbook start`, on schedule exactly once, with Done/Skip/Flag, the
//! overdue reminder and each routine's history.

use crate::support::*;
use chrono::TimeDelta;
use opsbot_fake_slack::Message;

async fn runbook_as(t: &TestApp, user: &str, text: &str) -> String {
    let response = t
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            TestApp::slash_form("/runbook", text, user),
        )
        .await;
    assert_eq!(response.status(), 200);
    let reply: serde_json::Value = response.json().await.unwrap();
    reply_text(&reply)
}

/// The run's header in #devops.
async fn header(t: &TestApp, needle: &str) -> Message {
    t.slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS).into_iter().find(|m| m.thread_ts.is_none() && blocks_text(m).contains(needle))
        })
        .await
        .unwrap_or_else(|| panic!("no run header with {needle:?}: {:#?}", t.slack.messages(DEVOPS)))
}

/// The run's step messages, once all are posted.
async fn step_messages(t: &TestApp, header: &Message, expected: usize) -> Vec<Message> {
    t.slack
        .wait_for(PATIENCE, |s| {
            let parts: Vec<Message> =
                s.thread(DEVOPS, &header.ts).into_iter().filter(|m| blocks_text(m).contains("step.done:rn:")).collect();
            (parts.len() == expected).then_some(parts)
        })
        .await
        .expect("the run's steps are posted in the thread")
}

fn checklist(id: &str) -> opsbot_handlers::runbook::Checklist {
    let rb = opsbot_handlers::Runbook::seed();
    rb.checklists.iter().find(|c| c.id == id).expect("the seed has it").clone()
}

fn morning() -> opsbot_handlers::runbook::Checklist {
    checklist("morning-health-check")
}

/// All step buttons of a verb on a message, as action ids.
fn actions(m: &Message, verb: &str) -> Vec<String> {
    let mut found = Vec::new();
    for block in m.blocks.as_array().unwrap() {
        for e in block["elements"].as_array().into_iter().flatten() {
            if let Some(id) = e["action_id"].as_str().filter(|id| id.starts_with(verb)) {
                found.push(id.to_owned());
            }
        }
    }
    found
}

#[tokio::test]
async fn runbook_list_shows_schedules_and_next_runs() {
    let t = spawn_app().await;
    let list = runbook_as(&t, ALICE, "list").await;
    assert!(list.contains("*Morning Health Check* `morning-health-check`"), "{list}");
    assert!(list.contains("next Wed 25 Nov 09:00 UTC"), "{list}");
    assert!(list.contains("<!date^"), "the reader's local time: {list}");
    assert!(list.contains("*On demand*") && list.contains("Canary Deployment"), "{list}");
}

#[tokio::test]
async fn names_are_forgiving_and_typos_get_a_did_you_mean() {
    let t = spawn_app().await;
    let typo = runbook_as(&t, ALICE, "start mornin helth check").await;
    assert!(typo.contains("Did you mean *Morning Health Check*"), "{typo}");
    assert!(runbook_as(&t, ALICE, "frobnicate").await.contains("Usage"));
    let started = runbook_as(&t, ALICE, "start MORNING").await;
    assert!(started.contains("RUN-1") && started.contains("Morning Health Check"), "{started}");
}

#[tokio::test]
async fn a_run_driven_by_clicks_from_start_to_completed() {
    let t = spawn_app().await;
    runbook_as(&t, ALICE, "start morning-health-check").await;
    let head = header(&t, "Morning Health Check · RUN-1").await;
    assert!(blocks_text(&head).contains(&format!("by <@{ALICE}>")), "{}", blocks_text(&head));
    let checklist = morning();
    let parts = step_messages(&t, &head, checklist.sections.len()).await;
    let total: usize = checklist.sections.iter().map(|s| s.steps.len()).sum();
    assert!(blocks_text(&parts[0]).contains("step.flag:rn:"), "steps can be flagged");

    t.clock.advance(TimeDelta::minutes(7));
    let mut clicked = 0;
    for part in &parts {
        for (i, action) in actions(part, "step.done").into_iter().enumerate() {
            let action = if clicked == 0 && i == 0 { action.replace("step.done", "step.skip") } else { action };
            assert_eq!(t.click(BOB, part, &action).await, 200);
            clicked += 1;
        }
    }
    assert_eq!(clicked, total);
    let done = t.wait_until(&head, "completion", |m| blocks_text(m).contains("Completed by")).await;
    assert!(blocks_text(&done).contains("in 7 min, planned 10 min"), "{}", blocks_text(&done));
    t.slack
        .wait_for(PATIENCE, |s| s.thread(DEVOPS, &head.ts).into_iter().find(|m| m.text.contains("completed in 7 min")))
        .await
        .expect("the thread says it is done");
    let history = runbook_as(&t, ALICE, "history morning").await;
    assert!(history.contains("RUN-1") && history.contains("skipped 1"), "{history}");
}

#[tokio::test]
async fn flag_opens_a_modal_and_the_note_lands_in_the_thread() {
    let t = spawn_app().await;
    runbook_as(&t, ALICE, "start security review").await;
    let head = header(&t, "Security Review · RUN-1").await;
    let parts = step_messages(&t, &head, checklist("security-review").sections.len()).await;
    let flag = actions(&parts[0], "step.flag")[0].clone();
    assert_eq!(t.click(BOB, &parts[0], &flag).await, 200);
    let modal = t.slack.wait_for(PATIENCE, |s| s.views().into_iter().next()).await.expect("a modal for the note");
    assert_eq!(modal.view["callback_id"], "run.flag");
    let empty = t.submit_view(BOB, &modal.view, "note", "   ").await;
    let errors: serde_json::Value = empty.json().await.unwrap();
    assert_eq!(errors["response_action"], "errors", "an empty note keeps the modal open");
    let ok = t.submit_view(BOB, &modal.view, "note", "2 secrets overdue for rotation").await;
    assert_eq!(ok.status(), 200);
    t.slack
        .wait_for(PATIENCE, |s| {
            s.thread(DEVOPS, &head.ts)
                .into_iter()
                .find(|m| m.text.contains("flagged") && m.text.contains("2 secrets overdue"))
        })
        .await
        .expect("the flag is posted in the thread");
    t.wait_until(&parts[0], "the flag on the step", |m| blocks_text(m).contains("🚩")).await;
    t.wait_until(&head, "the flag count", |m| blocks_text(m).contains("*Flags*")).await;
}

#[tokio::test]
async fn a_run_open_past_its_duration_reminds_the_responsible_role_once() {
    let t = spawn_app().await;
    runbook_as(&t, ALICE, "start morning").await;
    let head = header(&t, "RUN-1").await;
    t.clock.advance(TimeDelta::minutes(11));
    t.slack
        .wait_for(PATIENCE, |s| s.thread(DEVOPS, &head.ts).into_iter().find(|m| m.text.contains("is past its 10 min")))
        .await
        .expect("reminded");
    t.clock.advance(TimeDelta::minutes(30));
    runbook_as(&t, ALICE, "start dependency management").await;
    header(&t, "RUN-2").await;
    let reminders = t.slack.thread(DEVOPS, &head.ts).iter().filter(|m| m.text.contains("is past its")).count();
    assert_eq!(reminders, 1);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_run_keeps_its_state() {
    let mut t = spawn_app().await;
    runbook_as(&t, ALICE, "start morning").await;
    let head = header(&t, "RUN-1").await;
    let parts = step_messages(&t, &head, morning().sections.len()).await;
    let first = actions(&parts[0], "step.done");
    t.click(ALICE, &parts[0], &first[0]).await;
    t.wait_until(&parts[0], "the first click", |m| blocks_text(m).contains(&format!("Done by <@{ALICE}>"))).await;
    t.stop().await;
    t.start_again().await;
    t.click(BOB, &parts[0], &first[1]).await;
    let both = t
        .wait_until(&parts[0], "both clicks", |m| {
            blocks_text(m).contains(&format!("Done by <@{ALICE}>"))
                && blocks_text(m).contains(&format!("Done by <@{BOB}>"))
        })
        .await;
    assert!(blocks_text(&both).contains("2/"), "{}", blocks_text(&both));
}

#[tokio::test]
async fn history_after_three_runs_shows_each_newest_first() {
    let t = spawn_app().await;
    for n in 1..=3 {
        runbook_as(&t, if n == 2 { BOB } else { ALICE }, "start security review").await;
        header(&t, &format!("RUN-{n}")).await;
        t.clock.advance(TimeDelta::minutes(1));
    }
    let history = runbook_as(&t, ALICE, "history security-review").await;
    let (r3, r2, r1) = (history.find("RUN-3").unwrap(), history.find("RUN-2").unwrap(), history.find("RUN-1").unwrap());
    assert!(r3 < r2 && r2 < r1, "newest first: {history}");
    assert!(history.contains(&format!("<@{BOB}>")), "{history}");
    assert!(history.contains("the last 3 runs"), "{history}");
}

#[tokio::test]
async fn the_scheduled_morning_check_is_posted_once_at_0900_with_two_replicas() {
    let t = spawn_app().await;
    let second = t.spawn_replica("replica-2").await;
    // 03:00 → 08:59: nothing yet.
    t.clock.advance(TimeDelta::minutes(359));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(t.slack.messages(DEVOPS).is_empty(), "nothing before its time");
    t.clock.advance(TimeDelta::minutes(1));
    let head = header(&t, "Morning Health Check").await;
    assert!(blocks_text(&head).contains("on schedule"), "{}", blocks_text(&head));
    assert!(!blocks_text(&head).contains("late"), "on time: {}", blocks_text(&head));
    // Give a duplicate every chance to appear.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    runbook_as(&t, ALICE, "start canary").await;
    header(&t, "Canary").await;
    let mornings = t
        .slack
        .messages(DEVOPS)
        .iter()
        .filter(|m| m.thread_ts.is_none() && blocks_text(m).contains("Morning Health Check"))
        .count();
    assert_eq!(mornings, 1);
    second.stop().await;
}

#[tokio::test]
async fn a_bot_down_at_0900_posts_the_missed_run_once_marked_late() {
    let mut t = spawn_app().await;
    t.stop().await;
    t.clock.advance(TimeDelta::minutes(6 * 60 + 5)); // 09:05, within the 10-minute routine
    t.start_again().await;
    let second = t.spawn_replica("replica-2").await;
    let head = header(&t, "Morning Health Check").await;
    assert!(blocks_text(&head).contains("5 min late"), "{}", blocks_text(&head));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    t.stop().await;
    t.start_again().await;
    runbook_as(&t, ALICE, "start canary").await;
    header(&t, "Canary").await;
    let mornings = t
        .slack
        .messages(DEVOPS)
        .iter()
        .filter(|m| m.thread_ts.is_none() && blocks_text(m).contains("Morning Health Check"))
        .count();
    assert_eq!(mornings, 1, "posted once, however many starts");
    second.stop().await;
}

#[tokio::test]
async fn a_bot_that_starts_after_the_routines_duration_skips_it() {
    let mut t = spawn_app().await;
    t.stop().await;
    t.clock.advance(TimeDelta::minutes(6 * 60 + 20)); // 09:20: the 10-minute check is over
    t.start_again().await;
    runbook_as(&t, ALICE, "start canary").await;
    header(&t, "Canary").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !t.slack.messages(DEVOPS).iter().any(|m| blocks_text(m).contains("Morning Health Check")),
        "a skipped run is not posted"
    );
}

#[tokio::test]
async fn a_handled_slots_timer_added_again_by_a_late_replica_is_dropped_and_takes_no_run_numbers() {
    let t = spawn_app().await;
    t.schedule_now().await;
    t.clock.advance(TimeDelta::minutes(6 * 60)); // 09:00
    header(&t, "Morning Health Check").await;
    t.wait_until_settled().await;
    // A replica that read the slot mark just before this one handled the
    // slot sets its timer again.
    let slot = opsbot::clock::Clock::now(&t.clock);
    let timers = &t.app().state.store.timers;
    let before = timers.count().await.unwrap();
    timers.set(&opsbot_handlers::Timer::slot("morning-health-check", slot)).await.unwrap();
    t.clock.advance(TimeDelta::seconds(30));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while timers.count().await.unwrap() > before {
        assert!(tokio::time::Instant::now() < deadline, "the handled slot's timer stays");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let answer = runbook_as(&t, ALICE, "start canary").await;
    assert!(
        answer.contains("RUN-2") || answer.contains("RUN-3"),
        "one number at most went to the stale timer: {answer}"
    );
    let mornings = t
        .slack
        .messages(DEVOPS)
        .iter()
        .filter(|m| m.thread_ts.is_none() && blocks_text(m).contains("Morning Health Check"))
        .count();
    assert_eq!(mornings, 1, "posted once");
}
