//! The runbook's `permissions` end to end: a reserved action is refused
//! politely to whoever may not do it, changes nothing, and is done by
//! whoever may; user groups are asked of Slack, once a minute at most.

use crate::support::*;
use opsbot_handlers::runbook::permissions::{Action, Allowed};
use opsbot_handlers::runbook::Mention;
use opsbot_handlers::severity::Severity;

const DAVE: &str = "U0DAVE";

/// The seed with Dave named as the DevOps team lead and the senior DevOps
/// engineer: its `resolve_p0` and `lower_severity` then leave out Bob.
fn with_a_named_lead(config: &mut opsbot::config::Config) {
    for role in config.runbook.roles.iter_mut() {
        if role.id == "devops-team-lead" || role.id == "senior-devops-engineer" {
            role.people = vec![Mention::User(DAVE.into())];
        }
    }
}

#[tokio::test]
async fn a_p0_is_resolved_only_by_its_commander_or_a_lead_and_a_refusal_changes_nothing() {
    let app = spawn_app_with(with_a_named_lead).await;
    app.incident_as(ALICE, "p0 Checkout down").await;
    let alert = app.wait_for_alert(ALERTS, "INC-1").await;

    let refused = reply_text(&app.slash("/incident", "resolve INC-1", BOB).await);
    assert!(
        refused.starts_with("🔒 Only the incident's commander, the DevOps team lead or the Senior DevOps engineer (ask <@U0DAVE>) may resolve a P0"),
        "{refused}"
    );
    let lowered = reply_text(&app.slash("/incident", "severity INC-1 p2", BOB).await);
    assert!(lowered.contains("may lower a P0's or P1's severity"), "{lowered}");
    // Raising, updating and acknowledging are open to everyone.
    let acked = reply_text(&app.slash("/incident", "ack INC-1", BOB).await);
    assert!(acked.contains("You acknowledged"), "{acked}");
    let shown = reply_text(&app.slash("/incident", "show INC-1", BOB).await);
    assert!(!shown.contains("Resolved") && shown.contains("P0"), "still open, still a P0: {shown}");

    // Bob takes command: now it is his to close.
    let took = reply_text(&app.slash("/incident", "commander INC-1 <@U0BOB|bob>", BOB).await);
    assert!(took.contains("commands *INC-1*"), "{took}");
    let resolved = reply_text(&app.slash("/incident", "resolve INC-1 rolled back", BOB).await);
    assert!(resolved.contains("*INC-1* resolved"), "{resolved}");
    app.wait_until_settled().await;
    let thread = app.slack.thread(ALERTS, &alert.ts);
    assert!(thread.iter().any(|m| m.text.contains("Resolved by <@U0BOB>")), "the timeline says who");
    assert!(thread.iter().all(|m| !m.text.contains("🔒")), "a refusal is the refused person's alone");
}

#[tokio::test]
async fn a_lead_may_resolve_a_p0_they_do_not_command() {
    let app = spawn_app_with(with_a_named_lead).await;
    app.incident_as(ALICE, "p0 Checkout down").await;
    app.wait_for_alert(ALERTS, "INC-1").await;
    let resolved = reply_text(&app.slash("/incident", "resolve INC-1", DAVE).await);
    assert!(resolved.contains("*INC-1* resolved"), "{resolved}");
}

/// P0 declares reserved to the `S0ONCALL` user group.
fn p0_for_the_oncall_group(config: &mut opsbot::config::Config) {
    config.runbook.permissions.rules =
        vec![(Action::Declare(Severity::P0), vec![Allowed::UserGroup("S0ONCALL".into())])];
}

#[tokio::test]
async fn a_user_group_in_permissions_is_asked_of_slack_and_only_its_members_may() {
    let app = spawn_app_with(p0_for_the_oncall_group).await;
    app.slack.set_usergroup("S0ONCALL", &[ALICE], true);
    let refused = reply_text(&app.slash("/incident", "p0 Checkout down", BOB).await);
    assert!(refused.starts_with("🔒 Only <!subteam^S0ONCALL> may declare a P0"), "{refused}");
    let declared = reply_text(&app.slash("/incident", "p0 Checkout down", ALICE).await);
    assert!(declared.contains("INC-1"), "a refused declare takes no number: {declared}");
    // A P1 is open to everyone, and Slack is not asked again within the minute.
    let p1 = reply_text(&app.slash("/incident", "p1 Search slow", BOB).await);
    assert!(p1.contains("INC-"), "{p1}");
    assert_eq!(app.slack.calls("usergroups.users.list"), 1);
    app.wait_until_settled().await;
    assert_eq!(app.slack.messages(ALERTS).iter().filter(|m| m.thread_ts.is_none()).count(), 2, "no alert for Bob's P0");
}

#[tokio::test]
async fn when_slack_cannot_say_who_is_in_a_group_its_members_are_refused_and_told_who_may() {
    let app = spawn_app_with(p0_for_the_oncall_group).await;
    app.slack.set_usergroup("S0ONCALL", &[ALICE], true);
    app.slack.fail_next("usergroups.users.list", opsbot_fake_slack::Failure::HttpStatus(503));
    let refused = reply_text(&app.slash("/incident", "p0 Checkout down", ALICE).await);
    assert!(refused.starts_with("🔒 Only <!subteam^S0ONCALL> may declare a P0"), "{refused}");
    let again = reply_text(&app.slash("/incident", "p0 Checkout down", ALICE).await);
    assert!(again.contains("INC-"), "Slack answers the next time: {again}");
}

#[tokio::test]
async fn starting_a_checklist_and_overriding_on_call_can_be_reserved_too() {
    let app = spawn_app_with(|config| {
        crate::oncall::with_rotation(config);
        config.runbook.permissions.rules = vec![
            (Action::StartChecklist, vec![Allowed::User(ALICE.into())]),
            (Action::OverrideOnCall, vec![Allowed::Role("on-call-engineer".into())]),
        ];
    })
    .await;
    let refused = reply_text(&app.slash("/runbook", "start security review", DAVE).await);
    assert!(refused.starts_with("🔒 Only <@U0ALICE> may start a checklist"), "{refused}");
    let started = reply_text(&app.slash("/runbook", "start security review", ALICE).await);
    assert!(started.contains("RUN-1"), "a refused start took no number: {started}");

    let refused = reply_text(&app.slash("/oncall", "override on-call engineer <@U0DAVE|dave> 4h", DAVE).await);
    assert!(
        refused.starts_with("🔒 Only the On-call engineer (ask <@U0ALICE>, <@U0BOB>, <@U0CAROL>) may override or swap"),
        "{refused}"
    );
    let set = reply_text(&app.slash("/oncall", "override on-call engineer <@U0DAVE|dave> 4h", BOB).await);
    assert!(set.contains("(OVR-1)"), "a member of the rotation may, and a refusal took no number: {set}");
}
