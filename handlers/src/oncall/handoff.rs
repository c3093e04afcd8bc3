//! The handoff at a shift change: a message in the team channel and a DM to
//! whoever takes over, with what is open. Each is a timer due at the
//! shift's start, consumed in the commit that posts it, so it is posted
//! once however many replicas see it, and late (saying so) when opsbot was
//! not running at the time.

use crate::decision::{Decision, Effect};
use crate::incident::Incident;
use crate::runbook::oncall::Rotation;
use crate::runbook::Runbook;
use crate::text::{duration, escape, slack_date};
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, TimeDelta, Utc};
use std::convert::Infallible;

/// Later than this after the shift change, the message says it is late.
pub const LATE_AFTER: TimeDelta = TimeDelta::minutes(5);
/// Open incidents listed; the rest are counted.
const LISTED: usize = 15;

/// The timer for the handoff that starts shift `shift` of `role`'s
/// rotation; the same for every replica, so setting it twice keeps one.
pub fn timer(role: &str, shift: i64, due: DateTime<Utc>) -> Timer {
    Timer { due, kind: TimerKind::Handoff { role: role.to_owned(), shift } }
}

/// The next handoff timer of every rotation, for the scheduler to keep set.
pub fn next_timers(runbook: &Runbook, now: DateTime<Utc>) -> Vec<Timer> {
    runbook
        .oncall
        .rotations
        .iter()
        .map(|r| {
            let current = r.shift_at(runbook.timezone, now);
            timer(&r.role, current.index + 1, current.ends)
        })
        .collect()
}

/// Posts the handoff of shift `shift` (due at `due`) with the incidents
/// open now, and sets the next one. A handoff the runbook no longer has
/// (the rotation was removed or re-timed) does nothing but say why in the
/// log; the scheduler sets the right timers.
pub fn handoff(
    role: &str,
    shift: i64,
    due: DateTime<Utc>,
    open: &[Incident],
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision<Infallible> {
    let zone = runbook.timezone;
    let Some(rotation) = runbook.oncall.rotation(role) else {
        let mut d = Decision::nothing();
        d.log = Some(format!("no handoff for `{role}`: the runbook has no rotation for it any more"));
        return d;
    };
    let incoming = rotation.shift(zone, shift);
    if incoming.starts != due {
        let mut d = Decision::nothing();
        d.log = Some(format!("no handoff for `{role}` at {due}: the rotation's shifts changed"));
        return d;
    }
    let outgoing = rotation.shift(zone, shift - 1);
    let name = runbook.role(role).map_or(role, |r| r.name.as_str());
    let late = if now - due > LATE_AFTER {
        format!("\n_Posted {} late: opsbot was not running at the handoff._", duration(now - due))
    } else {
        String::new()
    };
    let who = if outgoing.member == incoming.member {
        format!("<@{}> stays on call", incoming.member)
    } else {
        format!("<@{}> hands over to <@{}>", outgoing.member, incoming.member)
    };
    let open_list = open_incidents(open, now);
    let channel_text = format!(
        "🔄 *On-call handoff, {}*: {who}, on call until {}.\n{open_list}{late}",
        escape(name),
        slack_date(incoming.ends)
    );
    let dm_text = format!(
        "🔄 You are on call as *{}* from {} until {}, taking over from <@{}>.\n{open_list}{late}",
        escape(name),
        slack_date(incoming.starts),
        slack_date(incoming.ends),
        outgoing.member
    );
    let mut d = Decision::nothing();
    d.effects = vec![
        Effect::Say { channel: runbook.channels.team.clone(), thread_ts: None, text: channel_text },
        // A message to a user id is a DM from the app.
        Effect::Say { channel: incoming.member.clone(), thread_ts: None, text: dm_text },
    ];
    d.timers = vec![timer(role, shift + 1, incoming.ends)];
    d
}

/// `/oncall handoff [notes]`: the same message now, for the rotations the
/// person is on call for (all of them when none), with their notes.
pub fn on_demand(
    notes: &str,
    open: &[Incident],
    who: &crate::decision::Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision<Infallible> {
    let zone = runbook.timezone;
    let rotations = &runbook.oncall.rotations;
    if rotations.is_empty() {
        return Decision::reply(
            "There are no on-call rotations in the runbook, so there is nothing to hand over. Add one under `oncall:`.",
        );
    }
    let mine: Vec<_> = rotations.iter().filter(|r| r.shift_at(zone, now).member == who.user).collect();
    let shown = if mine.is_empty() { rotations.iter().collect() } else { mine };
    let mut lines = vec![format!("🔄 *On-call handoff*, posted by <@{}>", who.user)];
    lines.extend(shown.into_iter().map(|rotation| now_line(runbook, rotation, now)));
    if !notes.trim().is_empty() {
        lines.push(format!("*Notes:* {}", escape(&crate::text::truncate(notes.trim(), 1500))));
    }
    lines.push(open_incidents(open, now));
    let mut d = Decision::reply(format!("Posted the handoff in {}.", runbook.channels.team));
    d.effects = vec![Effect::Say { channel: runbook.channels.team.clone(), thread_ts: None, text: lines.join("\n") }];
    d
}

/// `• *On-call engineer*: @bob until Mon 09:00, then @carol`: a rotation
/// now, as `/oncall` and a handoff on demand show it.
pub(super) fn now_line(runbook: &Runbook, rotation: &Rotation, now: DateTime<Utc>) -> String {
    let shift = rotation.shift_at(runbook.timezone, now);
    let next = rotation.shift(runbook.timezone, shift.index + 1);
    format!(
        "• *{}*: <@{}> until {}, then <@{}>",
        escape(runbook.role(&rotation.role).map_or(rotation.role.as_str(), |r| r.name.as_str())),
        shift.member,
        slack_date(shift.ends),
        next.member
    )
}

fn open_incidents(open: &[Incident], now: DateTime<Utc>) -> String {
    if open.is_empty() {
        return "No open incidents.".to_owned();
    }
    let mut lines = vec![match open.len() {
        1 => "*1 open incident*".to_owned(),
        n => format!("*{n} open incidents*"),
    }];
    for inc in open.iter().take(LISTED) {
        let commander = inc.commander.as_ref().map(|c| format!(" · commander <@{c}>")).unwrap_or_default();
        lines.push(format!("• {}{commander}", crate::incident::render::list_row(inc, now)));
    }
    if open.len() > LISTED {
        lines.push(format!("… and {} more: `/incident list`", open.len() - LISTED));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::oncall::tests::with_rotation as runbook;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_handoff_tells_the_channel_and_the_incoming_person_and_sets_the_next() {
        let rb = runbook();
        let due = at("2026-12-07T09:00:00Z");
        let d = handoff("on-call-engineer", 1, due, &[], &rb, due);
        let [Effect::Say { channel, text, .. }, Effect::Say { channel: dm, text: dm_text, .. }] = &d.effects[..] else {
            panic!("{:?}", d.effects)
        };
        assert_eq!(channel, "#devops");
        assert!(text.contains("<@U0ALICE> hands over to <@U0BOB>") && text.contains("No open incidents."), "{text}");
        assert_eq!(dm, "U0BOB");
        assert!(dm_text.contains("You are on call as *On-call engineer*"), "{dm_text}");
        assert_eq!(d.timers, vec![timer("on-call-engineer", 2, at("2026-12-14T09:00:00Z"))]);
        assert!(!text.contains("late"));
    }

    #[test]
    fn a_handoff_posted_after_an_outage_says_it_is_late() {
        let rb = runbook();
        let due = at("2026-12-07T09:00:00Z");
        let d = handoff("on-call-engineer", 1, due, &[], &rb, due + TimeDelta::minutes(42));
        let Effect::Say { text, .. } = &d.effects[0] else { panic!() };
        assert!(text.contains("Posted 42 min late"), "{text}");
    }

    #[test]
    fn a_handoff_the_runbook_no_longer_has_posts_nothing() {
        let rb = runbook();
        let d = handoff("on-call-engineer", 1, at("2026-12-07T10:00:00Z"), &[], &rb, at("2026-12-07T10:00:00Z"));
        assert!(d.effects.is_empty() && d.timers.is_empty() && d.log.is_some());
        let d = handoff("devops-team-lead", 1, at("2026-12-07T09:00:00Z"), &[], &rb, at("2026-12-07T09:00:00Z"));
        assert!(d.effects.is_empty() && d.log.is_some());
    }
}
