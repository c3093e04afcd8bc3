//! `/oncall` and on-call paging against a runbook with a rotation: who is
//! on call now and next, a role's next shifts, and pages that reach the
//! person on call rather than everyone in the channel.

use crate::support::*;
use chrono::TimeDelta;
use opsbot_handlers::runbook::oncall::{Rotation, ShiftLength};

/// The seed runbook with a weekly on-call rotation of Alice, Bob and Carol
/// handing over on Mondays at 09:00 UTC, Alice's first shift starting
/// Monday 2026-11-16; the tests start on Wednesday 2026-11-25, in Bob's.
fn with_rotation(config: &mut opsbot::config::Config) {
    config.runbook.oncall.rotations.push(Rotation {
        role: "on-call-engineer".into(),
        members: vec![ALICE.into(), BOB.into(), "U0CAROL".into()],
        shift: ShiftLength::Days(7),
        handoff: chrono::NaiveDateTime::parse_from_str("2026-11-16 09:00", "%Y-%m-%d %H:%M").unwrap(),
    });
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
    app.incident("p0 Checkout is down").await;
    let alert = app.wait_for_alert(ALERTS, "INC-1").await;
    let page = app
        .slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &alert.ts).into_iter().find(|m| m.text.contains("Paging the")))
        .await
        .expect("the first responder is paged");
    assert!(page.text.contains("Paging the On-call engineer: <@U0BOB>."), "{}", page.text);
    assert!(!page.text.contains("<!here>"), "{}", page.text);

    // Next Monday it is Carol's shift.
    app.clock.advance(TimeDelta::days(5) + TimeDelta::hours(7));
    app.incident("p0 Search is down").await;
    let alert = app.wait_for_alert(ALERTS, "INC-2").await;
    let page = app
        .slack
        .wait_for(PATIENCE, |s| s.thread(ALERTS, &alert.ts).into_iter().find(|m| m.text.contains("Paging the")))
        .await
        .expect("the first responder is paged");
    assert!(page.text.contains("<@U0CAROL>"), "{}", page.text);
}

#[tokio::test]
async fn oncall_without_rotations_says_how_roles_are_paged_and_handoffs_are_not_built_yet() {
    let app = spawn_app().await;
    let answer = reply_text(&app.slash("/oncall", "", ALICE).await);
    assert!(answer.contains("no on-call rotations in the runbook"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "handoff", ALICE).await);
    assert!(answer.contains("`/oncall handoff` is not built yet"), "{answer}");
    let answer = reply_text(&app.slash("/oncall", "devops tem lead", ALICE).await);
    assert!(answer.contains("Did you mean *DevOps team lead*?"), "{answer}");
}
