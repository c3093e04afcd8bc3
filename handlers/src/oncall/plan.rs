//! Who a runbook change moves: each rotation's shifts of the next weeks are
//! kept as a plan, and when a new runbook (members reordered, a shift
//! length or handoff time changed) plans them differently, each member
//! whose shifts moved gets a DM with their shifts as they are now. The
//! shell keeps the last plan and calls this at start; an override tells
//! its people itself (`overrides`).

use crate::decision::Effect;
use crate::runbook::oncall::Rotation;
use crate::text::{escape, slack_date};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How far ahead a plan looks.
pub const AHEAD: TimeDelta = TimeDelta::weeks(4);
/// Shifts planned at most (a 1-hour rotation does not plan 672).
const MOST: usize = 60;
/// Shifts listed in a DM.
const LISTED: usize = 6;

/// One planned shift.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Planned {
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    pub member: String,
}

/// The rotation's shifts from the one in progress until [`AHEAD`].
pub fn plan(rotation: &Rotation, zone: Tz, now: DateTime<Utc>) -> Vec<Planned> {
    rotation
        .shifts(zone, now)
        .take(MOST)
        .take_while(|s| s.starts < now + AHEAD)
        .map(|s| Planned { starts: s.starts, ends: s.ends, member: s.member })
        .collect()
}

/// The DMs a change from `old` to `new` calls for: one per member whose
/// shifts in the time both plans cover (from `now`) differ.
pub fn moved(role_name: &str, old: &[Planned], new: &[Planned], now: DateTime<Utc>) -> Vec<Effect> {
    let horizon = |plan: &[Planned]| plan.iter().map(|p| p.ends).max();
    let Some(until) = horizon(old).zip(horizon(new)).map(|(a, b)| a.min(b)) else { return Vec::new() };
    let within = |plan: &[Planned]| -> Vec<Planned> {
        plan.iter().filter(|p| p.ends > now && p.starts < until).cloned().collect()
    };
    let (old, new) = (within(old), within(new));
    let shifts_of = |plan: &[Planned], member: &str| -> BTreeSet<(DateTime<Utc>, DateTime<Utc>)> {
        plan.iter().filter(|p| p.member == member).map(|p| (p.starts, p.ends)).collect()
    };
    let members: BTreeSet<&str> = old.iter().chain(&new).map(|p| p.member.as_str()).collect();
    members
        .into_iter()
        .filter_map(|member| {
            let (before, after) = (shifts_of(&old, member), shifts_of(&new, member));
            if before == after {
                return None;
            }
            let list = |shifts: &BTreeSet<(DateTime<Utc>, DateTime<Utc>)>| -> String {
                let mut lines: Vec<String> = shifts
                    .iter()
                    .take(LISTED)
                    .map(|(s, e)| format!("• {} → {}", slack_date(*s), slack_date(*e)))
                    .collect();
                if shifts.len() > LISTED {
                    lines.push(format!("… and {} more", shifts.len() - LISTED));
                }
                lines.join("\n")
            };
            let now_text = if after.is_empty() {
                "You have no shifts in it until then any more.".to_owned()
            } else {
                format!("Your shifts now:\n{}", list(&after))
            };
            let dropped: BTreeSet<_> = before.difference(&after).cloned().collect();
            let was =
                if dropped.is_empty() { String::new() } else { format!("\nNo longer yours:\n{}", list(&dropped)) };
            Some(Effect::Say {
                channel: member.to_owned(),
                thread_ts: None,
                text: format!(
                    "📅 The runbook's *{}* rotation changed, and it moves your shifts until {}. {now_text}{was}",
                    escape(role_name),
                    slack_date(until)
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::tests::at;
    use crate::runbook::oncall::ShiftLength;
    use chrono::NaiveDateTime;

    fn rotation(members: &[&str], shift: ShiftLength) -> Rotation {
        let first = NaiveDateTime::parse_from_str("2026-11-30 09:00", "%Y-%m-%d %H:%M").unwrap();
        Rotation::new("on-call-engineer", members.iter().map(|m| m.to_string()).collect(), shift, first)
    }

    #[test]
    fn a_plan_covers_the_shift_in_progress_and_the_next_four_weeks() {
        let r = rotation(&["U0ALICE", "U0BOB"], ShiftLength::Days(7));
        let p = plan(&r, Tz::UTC, at("2026-12-02T12:00:00Z"));
        assert_eq!(p.len(), 5, "{p:?}");
        assert_eq!((p[0].member.as_str(), p[0].starts), ("U0ALICE", at("2026-11-30T09:00:00Z")));
        let hourly = plan(&rotation(&["U0ALICE"], ShiftLength::Hours(1)), Tz::UTC, at("2026-12-02T12:00:00Z"));
        assert_eq!(hourly.len(), MOST);
    }

    #[test]
    fn the_same_plan_later_moves_nobody() {
        let r = rotation(&["U0ALICE", "U0BOB", "U0CAROL"], ShiftLength::Days(7));
        let old = plan(&r, Tz::UTC, at("2026-12-02T12:00:00Z"));
        let later = at("2026-12-16T12:00:00Z");
        assert!(moved("On-call engineer", &old, &plan(&r, Tz::UTC, later), later).is_empty());
    }

    #[test]
    fn members_whose_shifts_a_reordered_rotation_moves_are_told_and_the_others_are_not() {
        let now = at("2026-12-02T12:00:00Z");
        let old = plan(&rotation(&["U0ALICE", "U0BOB", "U0CAROL"], ShiftLength::Days(7)), Tz::UTC, now);
        // Bob and Carol trade places; Alice keeps her weeks.
        let new = plan(&rotation(&["U0ALICE", "U0CAROL", "U0BOB"], ShiftLength::Days(7)), Tz::UTC, now);
        let effects = moved("On-call engineer", &old, &new, now);
        let told: Vec<(&str, &str)> = effects
            .iter()
            .map(|e| match e {
                Effect::Say { channel, text, .. } => (channel.as_str(), text.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        let channels: Vec<&str> = told.iter().map(|(c, _)| *c).collect();
        assert_eq!(channels, ["U0BOB", "U0CAROL"]);
        let (_, bob) = told[0];
        assert!(bob.starts_with("📅 The runbook's *On-call engineer* rotation changed"), "{bob}");
        assert!(bob.contains("Your shifts now:\n• ") && bob.contains("No longer yours:\n• "), "{bob}");
    }

    #[test]
    fn a_member_taken_off_the_rotation_is_told_they_have_no_shifts_left() {
        let now = at("2026-12-02T12:00:00Z");
        let old = plan(&rotation(&["U0ALICE", "U0BOB"], ShiftLength::Days(7)), Tz::UTC, now);
        let new = plan(&rotation(&["U0ALICE"], ShiftLength::Days(7)), Tz::UTC, now);
        let effects = moved("On-call engineer", &old, &new, now);
        let [Effect::Say { channel: alice, .. }, Effect::Say { channel, text, .. }] = &effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!((alice.as_str(), channel.as_str()), ("U0ALICE", "U0BOB"), "Alice gains Bob's weeks");
        assert!(text.contains("You have no shifts in it until then any more."), "{text}");
    }
}
