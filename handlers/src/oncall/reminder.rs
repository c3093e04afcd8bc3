//! The reminder DM before a shift: "your on-call shift starts in an hour".
//! A timer per shift, due the rotation's `remind_before` ahead of its
//! start, consumed in the commit that sends it; nothing is stored.

use crate::decision::{Decision, Effect};
use crate::runbook::oncall::Rotation;
use crate::runbook::Runbook;
use crate::text::{duration, escape, slack_date};
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::convert::Infallible;

/// The reminder of the next shift whose reminder is still ahead, if the
/// rotation reminds at all. Never one that is due already: the scheduler
/// calls this every tick, and a reminder it consumed a moment ago must not
/// come back (the shift it was for is then still the next one).
pub fn next(rotation: &Rotation, zone: Tz, now: DateTime<Utc>) -> Option<Timer> {
    let before = rotation.remind_before?;
    rotation.shifts(zone, now).skip(1).take(2).find_map(|shift| {
        let due = shift.starts - before;
        (due > now).then(|| timer(&rotation.role, shift.index, due))
    })
}

fn timer(role: &str, shift: i64, due: DateTime<Utc>) -> Timer {
    Timer { due, kind: TimerKind::ShiftReminder { role: role.to_owned(), shift } }
}

/// Sends the reminder for shift `shift` of `role`'s rotation (due at
/// `due`), and sets the next. Nothing is sent when the runbook changed
/// since (the scheduler sets the right timers), when the shift has started
/// already (opsbot was down: the handoff says it all), or when the member
/// simply stays on.
pub fn remind(
    role: &str,
    shift: i64,
    due: DateTime<Utc>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision<Infallible> {
    let zone = runbook.timezone;
    let mut d = Decision::nothing();
    let Some(rotation) = runbook.oncall.rotation(role) else {
        d.log = Some(format!("no shift reminder for `{role}`: the runbook has no rotation for it any more"));
        return d;
    };
    let Some(before) = rotation.remind_before else { return d };
    let coming = rotation.shift(zone, shift);
    if coming.starts - before != due {
        d.log = Some(format!("no shift reminder for `{role}` at {due}: the rotation changed"));
        return d;
    }
    d.timers.extend(next(rotation, zone, now.max(due)));
    // Overrides decide who takes over, and from whom.
    let who_at = |at| runbook.oncall.on_call(role, zone, at).map(|n| n.member);
    let member = who_at(coming.starts).unwrap_or_else(|| coming.member.clone());
    let previous = who_at(coming.starts - chrono::TimeDelta::seconds(1)).unwrap_or_default();
    if now >= coming.starts || previous == member {
        return d;
    }
    let name = runbook.role(role).map_or(role, |r| r.name.as_str());
    d.effects = vec![Effect::Say {
        channel: member,
        thread_ts: None,
        text: format!(
            "⏰ Your on-call shift as *{}* starts {} (in {}) and lasts until {}, taking over from <@{}>. \
             `/oncall` shows the rotation; you will get the handoff when it starts.",
            escape(name),
            slack_date(coming.starts),
            duration(coming.starts - now),
            slack_date(coming.ends),
            previous
        ),
    }];
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::tests::at;
    use crate::oncall::tests::with_rotation as runbook;
    use chrono::TimeDelta;

    /// Bob's shift (number 1) starts Monday 2026-12-07 at 09:00 UTC.
    const BOBS: i64 = 1;

    #[test]
    fn the_next_reminder_is_an_hour_before_the_next_shift_and_never_one_already_due() {
        let rb = runbook();
        let rotation = &rb.oncall.rotations[0];
        let zone = rb.timezone;
        let expected = timer("on-call-engineer", BOBS, at("2026-12-07T08:00:00Z"));
        assert_eq!(next(rotation, zone, at("2026-12-03T12:00:00Z")), Some(expected.clone()));
        assert_eq!(next(rotation, zone, at("2026-12-07T07:59:59Z")), Some(expected));
        // Once due (the scheduler may tick before the worker consumes it),
        // the next one is the shift after.
        let after = timer("on-call-engineer", BOBS + 1, at("2026-12-14T08:00:00Z"));
        assert_eq!(next(rotation, zone, at("2026-12-07T08:00:00Z")), Some(after.clone()));
        assert_eq!(next(rotation, zone, at("2026-12-07T08:30:00Z")), Some(after));
        let mut quiet = rb.clone();
        quiet.oncall.rotations[0].remind_before = None;
        assert_eq!(next(&quiet.oncall.rotations[0], zone, at("2026-12-03T12:00:00Z")), None);
    }

    #[test]
    fn the_member_is_reminded_by_dm_with_when_their_shift_starts_and_whom_they_take_over_from() {
        let rb = runbook();
        let due = at("2026-12-07T08:00:00Z");
        let d = remind("on-call-engineer", BOBS, due, &rb, due);
        let [Effect::Say { channel, text, thread_ts: None }] = &d.effects[..] else { panic!("{:?}", d.effects) };
        assert_eq!(channel, "U0BOB");
        assert!(text.contains("Your on-call shift as *On-call engineer* starts"), "{text}");
        assert!(text.contains("(in 1 h)") && text.contains("taking over from <@U0ALICE>"), "{text}");
        assert_eq!(d.timers, vec![timer("on-call-engineer", BOBS + 1, at("2026-12-14T08:00:00Z"))]);
    }

    #[test]
    fn a_reminder_too_late_for_its_shift_or_for_a_changed_rotation_says_nothing() {
        let rb = runbook();
        let due = at("2026-12-07T08:00:00Z");
        let late = remind("on-call-engineer", BOBS, due, &rb, due + TimeDelta::hours(2));
        assert!(late.effects.is_empty(), "the shift has started: the handoff says it all");
        assert_eq!(late.timers.len(), 1, "the next one is still set");
        let moved = remind("on-call-engineer", BOBS, due + TimeDelta::minutes(30), &rb, due + TimeDelta::minutes(30));
        assert!(moved.effects.is_empty() && moved.timers.is_empty() && moved.log.is_some());
        let gone = remind("devops-team-lead", BOBS, due, &rb, due);
        assert!(gone.effects.is_empty() && gone.log.is_some());
    }

    #[test]
    fn a_member_who_stays_on_is_not_reminded() {
        let mut rb = runbook();
        rb.oncall.rotations[0].members = vec!["U0ALICE".into()];
        let due = at("2026-12-07T08:00:00Z");
        let d = remind("on-call-engineer", BOBS, due, &rb, due);
        assert!(d.effects.is_empty() && d.timers.len() == 1);
    }
}
