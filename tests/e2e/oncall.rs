//! `/oncall` and on-call paging against a runbook with a rotation: who is
//! on call now and next, a role's next shifts, and pages that reach the
//! person on call rather than everyone in the channel.

use crate::support::*;
use chrono::TimeDelta;
use opsbot_handlers::runbook::oncall::{Rotation, ShiftLength};

/// The seed runbook with a weekly on-call rotation of Alice, Bob and Carol
/// handing over on Mondays at 09:00 UTC, Alice's first shift starting
/// Monday 2026-11-16; the tests start on Wednesday 2026-11-25, in Bob's.
pub(crate) fn with_rotation(config: &mut opsbot::config::Config) {
    config.runbook.oncall.rotations.push(Rotation::new(
        "on-call-engineer",
        vec![ALICE.into(), BOB.into(), "U0CAROL".into()],
        ShiftLength::Days(7),
        chrono::NaiveDateTime::parse_from_str("2026-11-16 09:00", "%Y-%m-%d %H:%M").unwrap(),
    ));
}

/// Declares a P0 titled `title` (numbered `id`) and returns the first
/// page in its alert's thread.
async fn first_page(app: &TestApp, title: &str, id: &str) -> opsbot_fake_slack::Message {
    app.incident(&format!("p0 {title}")).await;
    let alert = app.wait_for_alert(ALERTS, id).await;
    app.wait_for_page(&alert).await
}

#[tokio::test]
async fn oncall_shows_who_is_on_call_until_when_and_who_is_next() {
    let app = spawn_app_with(with_rotation).await;
    let answer = reply_text(&app.slash("/oncall", "", ALICE).await);
    assert!(answer.contains("*On-call engineer*: <@U0BOB> until <!date^"), "{answer}");
    assert!(answer.contains("2026-11-30 09:00 UTC") && answer.contains("then <@U0CAROL>"), "{answer}");

    let shifts = reply_text(&app.slash("/oncall", "on-call engineer", ALICE).await);
    let lines: Vec<&str> = shifts.lines().collect();
    assert!(lines[0].contains("*On-call engineer*, shifts of a week"), "{shifts}");
    assert!(lines[1].starts_with("• <@U0BOB>") && lines[1].ends_with("(now)"), "{shifts}");
    assert!(lines[2].starts_with("• <@U0CAROL>") && lines[3].starts_with("• <@U0ALICE>"), "{shifts}");
}

#[tokio::test]
async fn a_p0_pages_whoever_is_on_call_and_the_next_shift_pages_the_next_person() {
    let app = spawn_app_with(with_rotation).await;
    let page = first_page(&app, "Checkout is down", "INC-1").await;
    assert!(page.text.contains("Paging the On-call engineer: <@U0BOB>, and the Engineering manager"), "{}", page.text);
    // The seed pages management at once too; only it is still `@here`.
    assert!(!page.text.contains("On-call engineer: <!here>"), "{}", page.text);

    // Next Monday it is Carol's shift.
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(7));
    let page = first_page(&app, "Search is down", "INC-2").await;
    assert!(page.text.contains("<@U0CAROL>"), "{}", page.text);
}

#[tokio::test]
async fn oncall_without_rotations_says_how_roles_are_paged_and_there_is_nothing_to_swap() {
    let app = spawn_app().await;
    let answer = reply_text(&app.slash("/oncall", "", ALICE).await);
    assert!(answer.contains("no on-call rotations in the runbook"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "swap on-call engineer <@U0BOB>", ALICE).await);
    assert!(answer.contains("*On-call engineer* has no rotation, so it has no shifts to swap"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "devops tem lead", ALICE).await);
    assert!(answer.contains("Did you mean *DevOps team lead*?"), "{answer}");
}

#[tokio::test]
async fn at_the_shift_change_the_handoff_is_posted_once_with_whats_open_and_the_incoming_person_is_told() {
    let mut app = spawn_app_with(with_rotation).await;
    let second = app.spawn_replica("second-replica").await;
    app.incident("p2 Builds are slow").await;
    app.wait_for_alert(DEVOPS, "INC-1").await;
    let started = reply_text(&app.slash("/runbook", "start security review", BOB).await);
    assert!(started.contains("RUN-1"), "{started}");
    let failing = app.post_github("workflow_run", &crate::alerts::ci_run(1, "failure"), "d-ci-1").await;
    assert_eq!(failing.status(), 202);
    app.wait_until_settled().await;

    // Monday 2026-11-30 09:00 UTC: Bob hands over to Carol.
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(6));
    let handoff = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(DEVOPS).into_iter().find(|m| m.text.contains("On-call handoff")))
        .await
        .expect("the handoff is posted in #devops");
    assert!(handoff.text.contains("<@U0BOB> hands over to <@U0CAROL>"), "{}", handoff.text);
    assert!(handoff.text.contains("*Open incidents (1)*") && handoff.text.contains("INC-1"), "{}", handoff.text);
    assert!(handoff.text.contains("· next: "), "the next step nobody has done: {}", handoff.text);
    // Nobody acknowledged the P2, so its page went unanswered.
    assert!(handoff.text.contains("*Pages nobody answered in time (1)*"), "{}", handoff.text);
    assert!(
        handoff.text.contains("*Checklists due next shift") && handoff.text.contains("Morning Health Check"),
        "{}",
        handoff.text
    );
    assert!(
        handoff.text.contains("*Checklists left unfinished (1)*\n• *RUN-1* Security Review · 0/"),
        "{}",
        handoff.text
    );
    assert!(
        handoff.text.contains("*Pipeline failures still firing (1)*\n• *ALR-1* CI failing on main"),
        "{}",
        handoff.text
    );
    let dm = app
        .slack
        .wait_for(PATIENCE, |s| s.all_messages().into_iter().find(|m| m.text.contains("You are on call as")))
        .await
        .expect("Carol gets a DM");
    assert!(dm.text.contains("taking over from <@U0BOB>"), "{}", dm.text);

    app.wait_until_settled().await;
    let posted = app.slack.messages(DEVOPS).iter().filter(|m| m.text.contains("On-call handoff")).count();
    assert_eq!(posted, 1, "two replicas, one handoff");
    second.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_handoff_missed_while_opsbot_was_down_is_posted_once_when_it_is_back_and_says_it_is_late() {
    let mut app = spawn_app_with(with_rotation).await;
    app.stop().await;
    // Down across Monday's 09:00 handoff, back at 10:30.
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(7) + TimeDelta::minutes(30));
    app.start_again().await;
    let handoff = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(DEVOPS).into_iter().find(|m| m.text.contains("On-call handoff")))
        .await
        .expect("the missed handoff is posted");
    assert!(handoff.text.contains("Posted 1 h 30 min late"), "{}", handoff.text);
    app.wait_until_settled().await;
    assert_eq!(app.slack.messages(DEVOPS).iter().filter(|m| m.text.contains("On-call handoff")).count(), 1);
}

#[tokio::test]
async fn oncall_handoff_posts_the_handoff_now_with_the_notes_and_whats_open() {
    let app = spawn_app_with(with_rotation).await;
    app.incident("p1 Payments slow").await;
    let answer = reply_text(&app.slash("/oncall", "handoff swapped with Carol for Friday", BOB).await);
    assert!(answer.contains("Posted the handoff in #devops"), "{answer}");
    let posted = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(DEVOPS).into_iter().find(|m| m.text.contains("On-call handoff")))
        .await
        .expect("the handoff is posted");
    assert!(posted.text.contains("posted by <@U0BOB>"), "{}", posted.text);
    assert!(posted.text.contains("*Notes:* swapped with Carol for Friday"), "{}", posted.text);
    assert!(posted.text.contains("INC-1"), "{}", posted.text);
}

const CAROL: &str = "U0CAROL";

/// Monday 2026-11-30 09:00 UTC: Bob hands over to Carol. Returns the
/// handoff in #devops once it is posted with its button.
async fn at_the_shift_change(app: &TestApp) -> opsbot_fake_slack::Message {
    app.schedule_now().await;
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(6));
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS).into_iter().find(|m| m.text.contains("On-call handoff") && m.thread_ts.is_none())
        })
        .await
        .expect("the handoff is posted in #devops")
}

#[tokio::test]
async fn the_incoming_engineer_says_i_have_it_and_the_outgoing_one_is_told_they_are_off_call() {
    let app = spawn_app_with(with_rotation).await;
    let handoff = at_the_shift_change(&app).await;
    assert!(handoff.text.contains("⏳ Waiting for <@U0CAROL> to say *I have it*"), "{}", handoff.text);
    let dm = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(CAROL).into_iter().find(|m| m.text.contains("You are on call as")))
        .await
        .expect("Carol gets a DM with the button");

    // Bob cannot take it for her.
    assert_eq!(app.click(BOB, &handoff, "handoff.ack").await, 200);
    let refused = app
        .slack
        .wait_for(PATIENCE, |s| s.ephemerals().into_iter().find(|e| e.user == BOB))
        .await
        .expect("Bob is told who can");
    assert!(refused.text.contains("Only <@U0CAROL>, who takes over as *On-call engineer*"), "{}", refused.text);

    // Carol presses it in her DM.
    assert_eq!(app.click(CAROL, &dm, "handoff.ack").await, 200);
    let thanks = app
        .slack
        .wait_for(PATIENCE, |s| s.thread(DEVOPS, &handoff.ts).into_iter().find(|m| m.text.contains("has it")))
        .await
        .expect("the handoff's thread says so");
    assert!(thanks.text.contains("Thanks, <@U0BOB>: you are off call"), "{}", thanks.text);
    let shown = app
        .slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS).into_iter().find(|m| m.ts == handoff.ts && m.text.contains("✅ <@U0CAROL> has it since"))
        })
        .await
        .expect("the handoff shows it");
    assert!(button_value(&shown, "handoff.ack").is_none(), "the button is gone");
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(CAROL).into_iter().find(|m| m.ts == dm.ts && m.text.contains("✅ You have it since"))
        })
        .await
        .expect("so does the DM");

    // Past the window, nobody is reminded.
    app.clock.advance(TimeDelta::minutes(20));
    app.wait_until_settled().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.wait_until_settled().await;
    let thread = app.slack.thread(DEVOPS, &handoff.ts);
    assert!(!thread.iter().any(|m| m.text.contains("has not said")), "{thread:?}");
}

#[tokio::test]
async fn a_handoff_nobody_acknowledges_in_fifteen_minutes_reminds_both_engineers_and_the_team_lead() {
    let app = spawn_app_with(with_rotation).await;
    let handoff = at_the_shift_change(&app).await;
    app.wait_until_settled().await;
    app.clock.advance(TimeDelta::minutes(15));
    let reminder = app
        .slack
        .wait_for(PATIENCE, |s| s.thread(DEVOPS, &handoff.ts).into_iter().find(|m| m.text.contains("has not said")))
        .await
        .expect("the thread is reminded");
    assert!(
        reminder.text.contains("<@U0CAROL> has not said *I have it* 15 min after the handoff"),
        "{}",
        reminder.text
    );
    assert!(reminder.text.contains("<@U0BOB>, please stay on as *On-call engineer*"), "{}", reminder.text);
    assert!(reminder.text.contains("<!here> (DevOps team lead), for your attention"), "{}", reminder.text);
    app.slack
        .wait_for(PATIENCE, |s| s.messages(BOB).into_iter().find(|m| m.text.contains("Please stay on until they do")))
        .await
        .expect("Bob is asked by DM to stay on");
    app.slack
        .wait_for(PATIENCE, |s| s.messages(CAROL).into_iter().find(|m| m.text.contains("Please press *I have it*")))
        .await
        .expect("Carol is nudged by DM");
    let flagged = app
        .slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS).into_iter().find(|m| m.ts == handoff.ts && m.text.contains("⚠️ <@U0CAROL> has not said"))
        })
        .await
        .expect("the handoff shows it is waiting");

    // She can still say so, and then it is settled.
    assert_eq!(app.click(CAROL, &flagged, "handoff.ack").await, 200);
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS).into_iter().find(|m| m.ts == handoff.ts && m.text.contains("✅ <@U0CAROL> has it"))
        })
        .await
        .expect("acknowledged after the reminder");
    app.wait_until_settled().await;
    let reminders = app.slack.thread(DEVOPS, &handoff.ts).iter().filter(|m| m.text.contains("has not said")).count();
    assert_eq!(reminders, 1, "reminded once");
}

#[tokio::test]
async fn the_next_on_call_engineer_gets_a_reminder_an_hour_before_their_shift() {
    let app = spawn_app_with(with_rotation).await;
    app.schedule_now().await;
    // Monday 2026-11-30 08:00 UTC, an hour before Carol's shift.
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(4) + TimeDelta::minutes(59));
    app.wait_until_settled().await;
    assert!(app.slack.messages(CAROL).is_empty(), "not yet");
    app.clock.advance(TimeDelta::minutes(1));
    let reminder = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(CAROL).into_iter().find(|m| m.text.contains("Your on-call shift")))
        .await
        .expect("Carol is reminded");
    assert!(
        reminder.text.contains("as *On-call engineer* starts") && reminder.text.contains("(in 1 h)"),
        "{}",
        reminder.text
    );
    assert!(reminder.text.contains("taking over from <@U0BOB>"), "{}", reminder.text);
    app.wait_until_settled().await;
    assert_eq!(app.slack.messages(CAROL).len(), 1, "once");
    assert!(app.slack.messages(BOB).is_empty(), "Bob, who hands over, gets nothing");
}

#[tokio::test]
async fn an_override_pages_whoever_covers_shows_in_oncall_and_ends_by_itself() {
    let app = spawn_app_with(with_rotation).await;
    // Wednesday 03:00 in Bob's week: Carol covers for four hours.
    let answer = reply_text(&app.slash("/oncall", "override on-call engineer <@U0CAROL|carol> 4h", BOB).await);
    assert!(
        answer.contains("Done: <@U0CAROL> is on call as *On-call engineer*") && answer.contains("OVR-1"),
        "{answer}"
    );
    let announcement = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(DEVOPS).into_iter().find(|m| m.text.contains("*OVR-1*")))
        .await
        .expect("announced in #devops");
    assert!(
        announcement.text.contains("<@U0CAROL> is on call as *On-call engineer* instead of <@U0BOB>"),
        "{}",
        announcement.text
    );
    app.slack
        .wait_for(PATIENCE, |s| s.messages(CAROL).into_iter().find(|m| m.text.contains("put you on call")))
        .await
        .expect("Carol is told");

    let now = reply_text(&app.slash("/oncall", "", ALICE).await);
    assert!(now.contains("<@U0CAROL> (covering for <@U0BOB>, OVR-1) until"), "{now}");
    let shifts = reply_text(&app.slash("/oncall", "on-call engineer", ALICE).await);
    assert!(shifts.contains("*Overrides*") && shifts.contains("(OVR-1)"), "{shifts}");

    let page = first_page(&app, "Checkout is down", "INC-1").await;
    assert!(page.text.contains("Paging the On-call engineer: <@U0CAROL>"), "{}", page.text);

    // Four hours later it is over: the message says so and Bob is paged again.
    app.clock.advance(TimeDelta::hours(4));
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS).into_iter().find(|m| m.ts == announcement.ts && m.text.contains("Over."))
        })
        .await
        .expect("the override's message says it is over");
    let page = first_page(&app, "Search is down", "INC-2").await;
    assert!(page.text.contains("Paging the On-call engineer: <@U0BOB>"), "{}", page.text);
}

#[tokio::test]
async fn an_override_set_on_one_replica_is_followed_by_another_and_cancel_ends_it_at_once() {
    let app = spawn_app_with(with_rotation).await;
    let second = app.spawn_replica("second-replica").await;
    reply_text(&app.slash("/oncall", "override on-call engineer <@U0CAROL> until 2026-11-26 09:00", BOB).await);
    let announcement = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(DEVOPS).into_iter().find(|m| m.text.contains("*OVR-1*")))
        .await
        .expect("announced");
    // The other replica reloads overrides every couple of seconds.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while second.state.engine.roster.runbook().oncall.covers.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the second replica never loaded the override");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    assert_eq!(app.click(ALICE, &announcement, "override.cancel").await, 200);
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS)
                .into_iter()
                .find(|m| m.ts == announcement.ts && m.text.contains("Cancelled by <@U0ALICE>"))
        })
        .await
        .expect("the message shows it cancelled");
    let now = reply_text(&app.slash("/oncall", "", ALICE).await);
    assert!(now.contains("*On-call engineer*: <@U0BOB> until"), "{now}");
    second.stop().await;
}

#[tokio::test]
async fn an_override_typed_wrong_gets_usage_help_and_changes_nothing() {
    let app = spawn_app_with(with_rotation).await;
    let answer = reply_text(&app.slash("/oncall", "override on-call engineer carol 4h", BOB).await);
    assert!(answer.contains("Who covers?") && answer.contains("*Usage*"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "override devops team lead <@U0CAROL> 4h", BOB).await);
    assert!(answer.contains("has no rotation"), "{answer}");
    app.wait_until_settled().await;
    assert!(app.slack.messages(DEVOPS).is_empty(), "nothing announced");
    let now = reply_text(&app.slash("/oncall", "", ALICE).await);
    assert!(!now.contains("covering"), "{now}");
}

#[tokio::test]
async fn a_new_runbook_that_moves_shifts_tells_the_people_it_moves_once() {
    let mut app = spawn_app_with(with_rotation).await;
    app.schedule_now().await; // the plan of the runbook it started with
    app.stop().await;
    // Bob and Carol trade places in the rotation; Alice keeps her weeks.
    app.config.runbook.oncall.rotations[0].members = vec![ALICE.into(), CAROL.into(), BOB.into()];
    app.start_again().await;
    let second = app.spawn_replica("second-replica").await;
    app.schedule_now().await;
    for person in [BOB, CAROL] {
        let dm = app
            .slack
            .wait_for(PATIENCE, |s| s.messages(person).into_iter().find(|m| m.text.contains("rotation changed")))
            .await
            .unwrap_or_else(|| panic!("{person} is told"));
        assert!(dm.text.contains("Your shifts now:") && dm.text.contains("No longer yours:"), "{}", dm.text);
    }
    app.schedule_now().await;
    app.wait_until_settled().await;
    assert!(app.slack.messages(ALICE).is_empty(), "Alice's weeks did not move");
    for person in [BOB, CAROL] {
        assert_eq!(app.slack.messages(person).len(), 1, "{person} is told once, two replicas or not");
    }
    second.stop().await;
}

/// Alice offers Carol her next week (from Monday 2026-12-07) for Carol's
/// (from Monday 2026-11-30); returns the offer as Carol's DM shows it.
async fn alice_offers_carol_a_swap(app: &TestApp) -> opsbot_fake_slack::Message {
    let answer = reply_text(&app.slash("/oncall", "swap on-call engineer <@U0CAROL|carol>", ALICE).await);
    assert!(answer.contains("📨 Sent to <@U0CAROL> (SWP-1)"), "{answer}");
    assert!(answer.contains("2026-12-07 09:00 UTC") && answer.contains("2026-11-30 09:00 UTC"), "{answer}");
    let offer = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(CAROL).into_iter().find(|m| m.text.contains("*SWP-1*")))
        .await
        .expect("Carol gets the offer by DM");
    assert!(offer.text.contains("<@U0ALICE> asks to swap *On-call engineer* shifts with you"), "{}", offer.text);
    let buttons = offer.blocks.to_string();
    assert!(buttons.contains("swap.accept") && buttons.contains("swap.decline"), "{buttons}");
    offer
}

#[tokio::test]
async fn an_accepted_swap_pages_whoever_took_the_shift_and_shows_in_oncall() {
    let app = spawn_app_with(with_rotation).await;
    let offer = alice_offers_carol_a_swap(&app).await;

    assert_eq!(app.click(CAROL, &offer, "swap.accept").await, 200);
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(CAROL).into_iter().find(|m| m.ts == offer.ts && m.text.contains("✅ *SWP-1* accepted"))
        })
        .await
        .expect("the offer shows it accepted, without its buttons");
    let told = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(ALICE).into_iter().find(|m| m.text.contains("accepted SWP-1")))
        .await
        .expect("Alice is told");
    assert!(told.text.contains("(OVR-1)") && told.text.contains("(OVR-2)"), "{}", told.text);
    for (id, who, instead_of) in [("*OVR-1*", "<@U0CAROL>", "<@U0ALICE>"), ("*OVR-2*", "<@U0ALICE>", "<@U0CAROL>")] {
        let announcement = app
            .slack
            .wait_for(PATIENCE, |s| s.messages(DEVOPS).into_iter().find(|m| m.text.contains(id)))
            .await
            .expect("each half is announced in #devops");
        assert!(
            announcement.text.contains(&format!("{who} is on call as *On-call engineer* instead of {instead_of}"))
                && announcement.text.contains("Swapped (SWP-1), agreed by <@U0CAROL>."),
            "{}",
            announcement.text
        );
        assert!(announcement.blocks.to_string().contains("override.cancel"), "it can be cancelled");
    }
    let shifts = reply_text(&app.slash("/oncall", "on-call engineer", BOB).await);
    assert!(shifts.contains("(OVR-1)") && shifts.contains("(OVR-2)"), "{shifts}");

    // Tuesday 2026-12-01, Carol's week as the rotation has it: Alice has it.
    app.clock.advance(TimeDelta::days(6) + TimeDelta::hours(9));
    let now = reply_text(&app.slash("/oncall", "", BOB).await);
    assert!(now.contains("<@U0ALICE> (covering for <@U0CAROL>, OVR-2) until"), "{now}");
    let page = first_page(&app, "Checkout is down", "INC-1").await;
    assert!(page.text.contains("Paging the On-call engineer: <@U0ALICE>"), "{}", page.text);
}

#[tokio::test]
async fn a_declined_swap_changes_nothing_and_only_the_person_asked_may_answer() {
    let app = spawn_app_with(with_rotation).await;
    let offer = alice_offers_carol_a_swap(&app).await;

    // Bob cannot answer for Carol, nor Alice for herself.
    for someone_else in [BOB, ALICE] {
        assert_eq!(app.click(someone_else, &offer, "swap.accept").await, 200);
        let refused = app
            .slack
            .wait_for(PATIENCE, |s| {
                s.ephemerals().into_iter().find(|e| e.user == someone_else && e.text.contains("SWP-1"))
            })
            .await
            .expect("told who can answer");
        assert!(refused.text.contains("Only <@U0CAROL> can answer SWP-1"), "{}", refused.text);
    }

    assert_eq!(app.click(CAROL, &offer, "swap.decline").await, 200);
    let told = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(ALICE).into_iter().find(|m| m.text.contains("declined SWP-1")))
        .await
        .expect("Alice is told");
    assert!(told.text.contains("Nothing changes"), "{}", told.text);
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(CAROL).into_iter().find(|m| m.ts == offer.ts && m.text.contains("❌ *SWP-1* declined"))
        })
        .await
        .expect("the offer shows it declined");
    app.wait_until_settled().await;
    assert!(app.slack.messages(DEVOPS).iter().all(|m| !m.text.contains("OVR-")), "no override");
    let now = reply_text(&app.slash("/oncall", "", BOB).await);
    assert!(!now.contains("covering"), "{now}");
}

#[tokio::test]
async fn a_swap_nobody_answers_lapses_when_the_first_shift_starts() {
    let app = spawn_app_with(with_rotation).await;
    let offer = alice_offers_carol_a_swap(&app).await;
    // Monday 2026-11-30 09:00 UTC: Carol's shift starts with no answer.
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(6));
    let told = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(ALICE).into_iter().find(|m| m.text.contains("SWP-1 lapsed")))
        .await
        .expect("Alice is told");
    assert!(told.text.contains("<@U0CAROL> did not answer before"), "{}", told.text);
    let lapsed = app
        .slack
        .wait_for(PATIENCE, |s| s.messages(CAROL).into_iter().find(|m| m.ts == offer.ts && m.text.contains("lapsed")))
        .await
        .expect("the offer shows it lapsed");
    assert!(!lapsed.blocks.to_string().contains("swap.accept"), "no buttons left");
    // A late Accept is refused.
    assert_eq!(app.click(CAROL, &offer, "swap.accept").await, 200);
    let refused = app
        .slack
        .wait_for(PATIENCE, |s| s.ephemerals().into_iter().find(|e| e.user == CAROL && e.text.contains("SWP-1")))
        .await
        .expect("Carol is told");
    assert!(refused.text.contains("lapsed"), "{}", refused.text);
}

#[tokio::test]
async fn a_swap_typed_wrong_gets_usage_help_or_says_why_and_changes_nothing() {
    let app = spawn_app_with(with_rotation).await;
    let answer = reply_text(&app.slash("/oncall", "swap on-call engineer carol", ALICE).await);
    assert!(answer.contains("Swap with whom?") && answer.contains("*Usage*"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "swap on-call engineer <@U0DAVE>", ALICE).await);
    assert!(answer.contains("<@U0DAVE> is not in the *On-call engineer* rotation"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "swap on-call engineer <@U0CAROL> 2026-12-01", ALICE).await);
    assert!(answer.contains("You have no shift on 2026-12-01"), "{answer}");
    app.wait_until_settled().await;
    assert!(app.slack.messages(CAROL).is_empty(), "nothing sent");
}

#[tokio::test]
async fn a_rotations_user_group_follows_whoever_is_on_call_handoffs_and_overrides_included() {
    let app = spawn_app_with(|config| {
        with_rotation(config);
        config.runbook.oncall.rotations[0].usergroup = Some("S0ONCALL".into());
    })
    .await;
    app.slack.set_usergroup("S0ONCALL", &[ALICE, BOB, CAROL], true);
    let holds = |member: &'static str| {
        let slack = app.slack.clone();
        async move {
            slack
                .wait_for(PATIENCE, |s| (s.usergroup("S0ONCALL")? == [member]).then_some(()))
                .await
                .unwrap_or_else(|| panic!("the group never held only {member}: {:?}", slack.usergroup("S0ONCALL")))
        }
    };
    holds(BOB).await;
    reply_text(&app.slash("/oncall", "override on-call engineer <@U0DAVE> 2h", BOB).await);
    holds("U0DAVE").await;
    app.clock.advance(TimeDelta::hours(2));
    holds(BOB).await;
    app.schedule_now().await;
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(4)); // Monday 09:00: Carol's week
    holds(CAROL).await;
}

#[tokio::test]
async fn a_swap_offer_taken_back_before_it_is_answered_can_no_longer_be_accepted() {
    let app = spawn_app_with(with_rotation).await;
    let offer = alice_offers_carol_a_swap(&app).await;
    let answer = reply_text(&app.slash("/oncall", "swap withdraw SWP-1", CAROL).await);
    assert!(answer.contains("Only <@U0ALICE>, who offered SWP-1, can take it back"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "swap withdraw SWP-1", ALICE).await);
    assert!(answer.contains("You took back SWP-1"), "{answer}");
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(CAROL).into_iter().find(|m| m.ts == offer.ts && m.text.contains("took the offer back"))
        })
        .await
        .expect("the offer's DM shows it taken back");
    assert_eq!(app.click(CAROL, &offer, "swap.accept").await, 200);
    app.slack
        .wait_for(PATIENCE, |s| s.ephemerals().into_iter().find(|e| e.user == CAROL && e.text.contains("taken back")))
        .await
        .expect("a late Accept is refused");
    app.wait_until_settled().await;
    assert!(app.slack.messages(DEVOPS).iter().all(|m| !m.text.contains("OVR-")), "no override");
}

#[tokio::test]
async fn the_same_shift_is_not_offered_twice_while_an_offer_waits_for_an_answer() {
    let app = spawn_app_with(with_rotation).await;
    alice_offers_carol_a_swap(&app).await;
    let again = reply_text(&app.slash("/oncall", "swap on-call engineer <@U0CAROL|carol>", ALICE).await);
    assert!(again.contains("Your offer SWP-1") && again.contains("/oncall swap withdraw SWP-1"), "{again}");
    app.wait_until_settled().await;
    let offers = app.slack.messages(CAROL).iter().filter(|m| m.text.contains("asks to swap")).count();
    assert_eq!(offers, 1, "Carol is asked once");

    // Taken back, the shift can be offered again.
    reply_text(&app.slash("/oncall", "swap withdraw SWP-1", ALICE).await);
    let anew = reply_text(&app.slash("/oncall", "swap on-call engineer <@U0CAROL|carol>", ALICE).await);
    assert!(anew.contains("📨 Sent to <@U0CAROL> (SWP-"), "{anew}");
}

/// [`with_rotation`] with Dave and Carol taking the weeknights in turn over
/// it (17:00 to 09:00, Monday to Friday): the tests start on Wednesday
/// 03:00, in Dave's Tuesday night.
fn with_weeknights(config: &mut opsbot::config::Config) {
    use opsbot_handlers::runbook::hours::{BusinessHours, Interval};
    use opsbot_handlers::runbook::oncall::Layer;
    with_rotation(config);
    let mut week: [Vec<Interval>; 7] = Default::default();
    for day in 0..5 {
        week[day].push(Interval::parse("17:00-24:00").unwrap());
        week[day + 1].push(Interval::parse("00:00-09:00").unwrap());
    }
    config.runbook.oncall.rotations[0].layers.push(Layer {
        name: "weeknights".into(),
        members: vec![DAVE.into(), CAROL.into()],
        shift: ShiftLength::Days(1),
        handoff: chrono::NaiveDateTime::parse_from_str("2026-11-16 17:00", "%Y-%m-%d %H:%M").unwrap(),
        only: Some(BusinessHours::new(week, Vec::new()).unwrap()),
    });
}

const DAVE: &str = "U0DAVE";

/// The handoff posted in #devops that names `text`.
async fn handoff_saying(app: &TestApp, text: &str) -> opsbot_fake_slack::Message {
    app.slack
        .wait_for(PATIENCE, |s| {
            s.messages(DEVOPS)
                .into_iter()
                .find(|m| m.text.contains("On-call handoff") && m.thread_ts.is_none() && m.text.contains(text))
        })
        .await
        .unwrap_or_else(|| panic!("a handoff saying {text} is posted in #devops"))
}

#[tokio::test]
async fn a_weeknight_layer_takes_the_nights_hands_back_to_the_week_each_morning_and_gets_the_pages() {
    let app = spawn_app_with(with_weeknights).await;
    let now = reply_text(&app.slash("/oncall", "", ALICE).await);
    assert!(now.contains("*On-call engineer*: <@U0DAVE> until <!date^"), "{now}");
    assert!(now.contains("2026-11-25 09:00 UTC") && now.contains("then <@U0BOB>"), "{now}");
    let shifts = reply_text(&app.slash("/oncall", "on-call engineer", ALICE).await);
    assert!(shifts.contains("shifts of a week, with weeknights (a day) over them"), "{shifts}");
    assert!(shifts.lines().nth(1).is_some_and(|l| l.starts_with("• <@U0DAVE>") && l.contains("(weeknights) (now)")));
    assert!(shifts.lines().nth(2).is_some_and(|l| l.starts_with("• <@U0BOB>")), "{shifts}");

    // Wednesday 09:00: Dave hands the night back to Bob's week.
    app.schedule_now().await;
    app.clock.advance(TimeDelta::hours(6));
    let morning = handoff_saying(&app, "<@U0DAVE> hands over to <@U0BOB>").await;
    assert!(morning.text.contains("Waiting for <@U0BOB> to say *I have it*"), "{}", morning.text);
    // Wednesday 17:00: Carol's night.
    app.clock.advance(TimeDelta::hours(8));
    handoff_saying(&app, "<@U0BOB> hands over to <@U0CAROL>").await;
    app.slack
        .wait_for(PATIENCE, |s| s.messages(CAROL).into_iter().find(|m| m.text.contains("You are on call as")))
        .await
        .expect("Carol gets a DM");

    // A P0 at 20:00 pages Carol, not the week's Bob.
    app.clock.advance(TimeDelta::hours(3));
    let page = first_page(&app, "Checkout down", "INC-1").await;
    assert!(page.text.contains("<@U0CAROL>") && !page.text.contains("<@U0BOB>"), "{}", page.text);
    app.wait_until_settled().await;
    let handoffs = app.slack.messages(DEVOPS).iter().filter(|m| m.text.contains("On-call handoff")).count();
    assert_eq!(handoffs, 2, "one per change of hands");
}
