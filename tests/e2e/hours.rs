//! Business hours and the seed's escalation sentences, on the test clock:
//! a P3 waits for the next business day, a P2 escalates during business
//! hours only, holidays are skipped, a P1 pages the on-call engineer after
//! 30 minutes, and a P0 at 3 a.m. pages at once. The seed runbook's hours
//! are Monday to Friday 09:00-17:00 UTC; the tests start on Wednesday
//! 2026-11-25 at 03:00 UTC.

use crate::oncall::with_rotation;
use crate::support::*;
use chrono::TimeDelta;
use opsbot_fake_slack::Message;
use opsbot_handlers::runbook::hours::{Holiday, Interval};
use opsbot_handlers::runbook::BusinessHours;

/// The reply in the alert's thread (in `channel`) that holds `needle`.
async fn reply_with(t: &TestApp, channel: &str, alert: &Message, needle: &str) -> Message {
    t.slack
        .wait_for(PATIENCE, |s| s.thread(channel, &alert.ts).into_iter().find(|m| m.text.contains(needle)))
        .await
        .unwrap_or_else(|| panic!("no reply with {needle:?}: {:#?}", t.slack.thread(channel, &alert.ts)))
}

fn replies_with(t: &TestApp, channel: &str, alert: &Message, needle: &str) -> usize {
    t.slack.thread(channel, &alert.ts).iter().filter(|m| m.text.contains(needle)).count()
}

/// Waits until every timer due by the test clock has been handled and
/// what they owe Slack is delivered.
async fn timers_settle(t: &TestApp) {
    let store = &t.app().state.store;
    let deadline = std::time::Instant::now() + PATIENCE;
    while !store.timers.due(opsbot::clock::Clock::now(&t.clock), 1).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "due timers were never handled");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    t.wait_until_settled().await;
}

/// From Wednesday 03:00 to Friday 2026-11-27 at `hh:mm` UTC.
fn to_friday(t: &TestApp, hour: i64, minute: i64) {
    t.clock.advance(TimeDelta::days(2) + TimeDelta::hours(hour - 3) + TimeDelta::minutes(minute));
}

#[tokio::test]
async fn a_p3_declared_on_friday_evening_pages_nobody_until_mondays_opening() {
    let t = spawn_app().await;
    to_friday(&t, 19, 0);
    let reply = reply_text(&t.incident("p3 Flaky integration test").await);
    assert!(reply.contains("Outside business hours: nobody is paged until"), "{reply}");
    let alert = t.wait_for_alert(DEVOPS, "INC-1").await;
    let note = reply_with(&t, DEVOPS, &alert, "Outside business hours").await;
    assert!(
        note.text.contains("the Development team is paged") && note.text.contains("Mon 30 Nov 09:00 UTC"),
        "{}",
        note.text
    );
    assert_eq!(replies_with(&t, DEVOPS, &alert, "Paging the"), 0, "nobody is paged on Friday evening");
    let show = reply_text(&t.incident("show 1").await);
    assert!(show.contains("Next page if nobody acknowledges: the Development team"), "{show}");
    assert!(show.contains("Paused: outside business hours"), "{show}");

    // Through the weekend to Monday 08:59: still nobody.
    t.clock.advance(TimeDelta::days(2) + TimeDelta::hours(13) + TimeDelta::minutes(59));
    timers_settle(&t).await;
    assert_eq!(replies_with(&t, DEVOPS, &alert, "Paging the"), 0, "nobody is paged at the weekend");
    // Monday 09:00: the development team is paged.
    t.clock.advance(TimeDelta::minutes(1));
    let page = reply_with(&t, DEVOPS, &alert, "Paging the").await;
    assert!(
        page.text.starts_with("☀️ Business hours have started. 📟 Paging the Development team: <!here>"),
        "{}",
        page.text
    );
    timers_settle(&t).await;
    assert_eq!(replies_with(&t, DEVOPS, &alert, "Paging the"), 1);
    let show = reply_text(&t.incident("show 1").await);
    assert!(show.contains("paged the Development team"), "on the timeline: {show}");
}

#[tokio::test]
async fn a_p2_declared_at_ten_to_five_on_friday_escalates_at_mondays_opening_plus_the_rest_of_its_target() {
    let t = spawn_app().await;
    to_friday(&t, 16, 50);
    t.incident("p2 Builds slow").await;
    let alert = t.wait_for_alert(DEVOPS, "INC-1").await;
    let page = reply_with(&t, DEVOPS, &alert, "Paging the Assigned engineer").await;
    assert!(page.text.contains("The clock runs during business hours only"), "{}", page.text);
    // Its hour to respond: 10 minutes on Friday, 50 on Monday.
    t.clock.advance(TimeDelta::days(2) + TimeDelta::hours(16) + TimeDelta::minutes(59));
    timers_settle(&t).await;
    assert_eq!(replies_with(&t, DEVOPS, &alert, "Escalating"), 0, "not over the weekend nor at 09:49");
    t.clock.advance(TimeDelta::minutes(1));
    let escalation = reply_with(&t, DEVOPS, &alert, "Escalating to the DevOps team").await;
    assert!(escalation.text.contains("after 1 h of business hours"), "{}", escalation.text);
}

#[tokio::test]
async fn a_holiday_is_skipped_like_a_weekend() {
    let t = spawn_app_with(|config| {
        let mut week: [Vec<Interval>; 7] = Default::default();
        for day in week.iter_mut().take(5) {
            *day = vec![Interval::parse("09:00-17:00").unwrap()];
        }
        let holiday = Holiday { date: "2026-11-30".parse().unwrap(), name: Some("Company day off".into()) };
        config.runbook.business_hours = BusinessHours::new(week, vec![holiday]).unwrap();
    })
    .await;
    to_friday(&t, 16, 50);
    t.incident("p2 Cache misses").await;
    let alert = t.wait_for_alert(DEVOPS, "INC-1").await;
    reply_with(&t, DEVOPS, &alert, "Tue 1 Dec 09:50 UTC").await;
    // Monday is the holiday: Monday 09:50 passes quietly.
    t.clock.advance(TimeDelta::days(2) + TimeDelta::hours(17));
    timers_settle(&t).await;
    assert_eq!(replies_with(&t, DEVOPS, &alert, "Escalating"), 0, "the holiday does not count");
    // Tuesday 09:50.
    t.clock.advance(TimeDelta::days(1));
    reply_with(&t, DEVOPS, &alert, "Escalating to the DevOps team").await;
}

#[tokio::test]
async fn a_p1_pages_the_on_call_engineer_30_minutes_after_declare_unless_someone_acknowledged() {
    let t = spawn_app_with(with_rotation).await;
    t.incident("p1 Deploys degraded").await;
    let first = t.wait_for_alert(ALERTS, "INC-1").await;
    let page = reply_with(&t, ALERTS, &first, "Paging the DevOps engineer").await;
    assert!(
        page.text.contains("The On-call engineer is paged too if nobody has acknowledged within 30 min"),
        "{}",
        page.text
    );
    t.incident("p1 Queue backlog").await;
    let second = t.wait_for_alert(ALERTS, "INC-2").await;
    t.clock.advance(TimeDelta::minutes(10));
    t.incident_as(ALICE, "ack 2").await;

    t.clock.advance(TimeDelta::minutes(19));
    timers_settle(&t).await;
    assert_eq!(replies_with(&t, ALERTS, &first, "as well"), 0, "not before 30 minutes");
    t.clock.advance(TimeDelta::minutes(1));
    let late = reply_with(&t, ALERTS, &first, "Paging the On-call engineer as well").await;
    assert!(late.text.contains("<@U0BOB>") && late.text.contains("after 30 min"), "{}", late.text);
    timers_settle(&t).await;
    assert_eq!(replies_with(&t, ALERTS, &first, "as well"), 1, "paged once");
    assert_eq!(replies_with(&t, ALERTS, &second, "as well"), 0, "acknowledged: nobody more is paged");
}

#[tokio::test]
async fn a_p0_at_3_am_pages_at_once_and_escalates_five_minutes_later() {
    let t = spawn_app().await;
    // Saturday 2026-11-28, 03:00 UTC.
    t.clock.advance(TimeDelta::days(3));
    t.incident("p0 Production down").await;
    let alert = t.wait_for_alert(ALERTS, "INC-1").await;
    let page = reply_with(&t, ALERTS, &alert, "Paging the On-call engineer").await;
    assert!(
        page.text.contains("and the Engineering manager") && !page.text.contains("business hours"),
        "{}",
        page.text
    );
    t.clock.advance(TimeDelta::minutes(5));
    reply_with(&t, ALERTS, &alert, "Escalating to the DevOps team lead").await;
}
