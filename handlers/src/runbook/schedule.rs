//! Schedule math for the runbook's checklists: when a checklist's next slot
//! is, which slot a bot that was down has missed, and whether a missed slot
//! is still worth posting.
//!
//! A checklist's schedule is a cron expression read in the runbook's named
//! time zone, so `0 9 * * *` in `Europe/Berlin` is 09:00 on Berlin's wall
//! clock all year: the UTC instant moves by an hour when daylight saving
//! starts or ends, the local time does not. Everything here is pure: the
//! shell passes `now`, and gets UTC instants back to store and compare.
//!
//! # Daylight-saving changes
//!
//! The cron arithmetic, DST included, is croner's (`find_next_occurrence`
//! and `find_previous_occurrence` on a `chrono_tz` date-time); the tests
//! below pin the behaviour opsbot relies on, so a croner upgrade that
//! changes it fails here rather than in a team's channel.
//!
//! - **Gap** (spring forward: the clock jumps from 02:00 to 03:00 in Berlin,
//!   so 02:30 does not exist that day). A slot at a fixed time of day that
//!   falls in the gap runs once, at the first real instant after the gap
//!   (03:00 local). Dropping it would silently skip a day's checklist once a
//!   year; running it late by at most the gap's length is what a person
//!   would do.
//! - **Overlap** (fall back: 02:00–02:59 happens twice in Berlin). A slot at
//!   a fixed time of day in the overlap runs once, at its first occurrence
//!   (the summer-time one). A checklist is done once a day, so the repeat is
//!   not a second slot: [`Schedule::next_after`] skips it and
//!   [`Schedule::latest_at_or_before`] never returns it.
//! - A schedule that is not a fixed time of day (`*/30 * * * *`) follows
//!   real time instead: it runs every 30 minutes through both halves of an
//!   overlap, and the wall-clock times a gap removes do not happen.
//!
//! Every checklist in the seed runbook is a fixed time of day.

use crate::runbook::load::parse_schedule;
use crate::runbook::{Checklist, Runbook};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use std::fmt;

/// How far back [`Schedule::latest_at_or_before`] looks. A run missed
/// longer ago than this is not "missed while the bot was down" but history;
/// a little over a year still finds the previous slot of a yearly checklist.
const LOOKBACK_DAYS: i64 = 400;

/// A checklist's schedule: its cron expression in the runbook's time zone,
/// parsed once, when the runbook is loaded ([`crate::runbook::parse`]), so
/// nothing at run time parses it again or has to decide what to do when
/// that fails.
///
/// It keeps the expression as written for display. Two schedules are equal
/// when their text and zone are: the parsed cron is a function of the text.
#[derive(Clone)]
pub struct Schedule {
    /// As written in the runbook (trimmed), e.g. `0 9 * * *`.
    expression: String,
    cron: croner::Cron,
    timezone: Tz,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

impl Eq for Schedule {}

/// `Schedule { expression: "0 9 * * *", timezone: Europe/Berlin }`: the
/// parsed cron's bit masks would drown a failing test's output.
impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("expression", &self.expression)
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

impl Schedule {
    /// Parses `cron` (five fields, croner's dialect) for the time zone
    /// `timezone`. The cron goes through [`parse_schedule`], so the error
    /// is the one `opsbot runbook check` reports. The zone is already
    /// typed: the loader checks it once, with its own "did you mean".
    pub fn new(cron: &str, timezone: Tz) -> Result<Schedule, String> {
        let expression = cron.trim().to_owned();
        let cron = parse_schedule(&expression)?;
        Ok(Schedule { expression, cron, timezone })
    }

    /// The cron expression as the runbook writes it, e.g. `0 9 * * *`.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone the expression is read in (the runbook's).
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first slot strictly after `after`, as a UTC instant. `None` only
    /// for an expression that never matches (e.g. `0 9 30 2 *`, 30 February),
    /// which croner gives up on after a bounded search.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        let slot = self.cron.find_next_occurrence(&local, false).ok()?;
        Some(slot.with_timezone(&Utc))
    }

    /// The latest slot at or before `at` (None if none in the last 400
    /// days) — used at start-up to find a run that was missed while the bot
    /// was down. Inclusive, so a bot starting exactly on a slot finds that
    /// slot rather than the one before it.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.timezone);
        let slot = self.cron.find_previous_occurrence(&local, true).ok()?.with_timezone(&Utc);
        (at - slot <= TimeDelta::days(LOOKBACK_DAYS)).then_some(slot)
    }

    /// Slot as the team reads it: e.g. "Mon 27 Nov 10:00 Europe/Berlin" —
    /// the schedule's own zone, named, so nobody has to guess whether
    /// "10:00" is theirs or UTC.
    pub fn describe_slot(&self, slot: DateTime<Utc>) -> String {
        let local = slot.with_timezone(&self.timezone);
        format!("{} {}", local.format("%a %-d %b %H:%M"), self.timezone.name())
    }
}

/// A scheduled run that starts within this of its slot is on time, so a
/// scheduler tick a few seconds late is not "late".
pub const ON_TIME_GRACE: TimeDelta = TimeDelta::seconds(60);

/// How long after its slot a run without a `duration` is still worth
/// starting late.
const DEFAULT_LATE_WINDOW: TimeDelta = TimeDelta::hours(1);

/// How long after its late window a missed slot is still logged as
/// skipped; older ones are history, not news.
const SKIPPED_LOGGED_FOR: TimeDelta = TimeDelta::hours(1);

/// How long after its slot a checklist's run is still worth starting late:
/// its `duration`, or an hour when it has none.
pub fn late_window(checklist: &Checklist) -> TimeDelta {
    checklist.duration.unwrap_or(DEFAULT_LATE_WINDOW)
}

/// The one rule for a checklist's slot, missed or not: what to do about
/// `slot` of `checklist` at `now`, or `None` when it is no longer worth
/// handling at all. With `by = now - slot` and the checklist's
/// [`late_window`] (its duration, 1 h without one):
///
/// - `by <= ON_TIME_GRACE` (60 s): [`SlotDecision::OnTime`], run it;
/// - `by < late_window`: [`SlotDecision::Late`], run it, marked late;
/// - `by < late_window + 1 h`: [`SlotDecision::Skipped`], do not run it,
///   log that it was skipped;
/// - older: `None`, not worth handling: ignore it.
///
/// So a 10-minute checklist missed at 09:00 runs late until 09:10, is logged
/// as skipped until 10:10, and is ignored after that. The shell's start-up
/// scan sets a timer for the latest past slot only when this is `Some`, and
/// a slot's timer, when it fires, starts a run only on `OnTime` or `Late`
/// ([`crate::run::decide::slot_starts_a_run`], [`crate::run::decide::scheduled`]):
/// both use this function, so they agree on where "late" ends and where
/// "worth telling" ends. (A timer set before an outage longer than that
/// can still fire for an older slot; it starts no run, and
/// `run::decide::scheduled` logs it as skipped.)
pub fn slot_decision(checklist: &Checklist, slot: DateTime<Utc>, now: DateTime<Utc>) -> Option<SlotDecision> {
    let window = late_window(checklist);
    (now - slot < window + SKIPPED_LOGGED_FOR).then(|| decide_slot(slot, window, ON_TIME_GRACE, now))
}

/// What to do about a slot whose time has come (see [`decide_slot`] and
/// [`slot_decision`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotDecision {
    /// Post the run as usual.
    OnTime,
    /// Post the run, marked late by `by` (now − slot).
    Late { by: TimeDelta },
    /// Do not post: the run's whole duration had passed `by` (now − slot)
    /// after its slot. The shell logs it.
    Skipped { by: TimeDelta },
}

/// What to do about the slot `slot` of a checklist whose run takes `duration`,
/// at `now`: on time if `now - slot <= grace` (pass 60 s, so a scheduler
/// tick a few seconds late is not "late"), late while `now < slot +
/// duration`, skipped from then on. A bot that was down at 09:00 and starts
/// at 09:20 posts a 30-minute checklist late, but skips a 10-minute one: by
/// 09:10 it should already have been finished, and posting it would ask for
/// work whose moment has passed.
///
/// The grace check comes first, so a checklist shorter than the grace is
/// never skipped within the grace, and a slot still in the future (`now <
/// slot`) counts as on time.
pub fn decide_slot(slot: DateTime<Utc>, duration: TimeDelta, grace: TimeDelta, now: DateTime<Utc>) -> SlotDecision {
    let by = now - slot;
    if by <= grace {
        SlotDecision::OnTime
    } else if now < slot + duration {
        SlotDecision::Late { by }
    } else {
        SlotDecision::Skipped { by }
    }
}

/// Every scheduled checklist of the runbook with its next slot after
/// `after`, soonest first; checklists due at the same instant keep the
/// runbook's order. On-demand checklists are left out, and so is a schedule
/// that never matches (e.g. 30 February).
pub fn upcoming(runbook: &Runbook, after: DateTime<Utc>) -> Vec<(&Checklist, DateTime<Utc>)> {
    let mut slots: Vec<_> = runbook
        .checklists
        .iter()
        .filter_map(|checklist| {
            let schedule = checklist.schedule.as_ref()?;
            Some((checklist, schedule.next_after(after)?))
        })
        .collect();
    // Stable, so ties keep the runbook's order.
    slots.sort_by_key(|(_, slot)| *slot);
    slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A UTC instant; every expected value below is written as one, with the
    /// local time it stands for in a comment.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn schedule(cron: &str, timezone: &str) -> Schedule {
        Schedule::new(cron, timezone.parse().unwrap()).unwrap()
    }

    /// `count` slots in a row, each strictly after the one before.
    fn slots_after(s: &Schedule, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = after;
        for _ in 0..count {
            at = s.next_after(at).unwrap();
            out.push(at);
        }
        out
    }

    #[test]
    fn daily_0900_berlin_stays_0900_across_both_dst_changes() {
        let s = schedule("0 9 * * *", "Europe/Berlin");
        // Summer time starts Sun 29 Mar 2026 (02:00 CET → 03:00 CEST).
        assert_eq!(
            slots_after(&s, utc(2026, 3, 27, 12, 0), 3),
            [
                utc(2026, 3, 28, 8, 0), // Sat 28 Mar 09:00 CET (UTC+1)
                utc(2026, 3, 29, 7, 0), // Sun 29 Mar 09:00 CEST (UTC+2), the day of the change
                utc(2026, 3, 30, 7, 0), // Mon 30 Mar 09:00 CEST
            ]
        );
        // Summer time ends Sun 25 Oct 2026 (03:00 CEST → 02:00 CET).
        assert_eq!(
            slots_after(&s, utc(2026, 10, 23, 12, 0), 3),
            [
                utc(2026, 10, 24, 7, 0), // Sat 24 Oct 09:00 CEST
                utc(2026, 10, 25, 8, 0), // Sun 25 Oct 09:00 CET, the day of the change
                utc(2026, 10, 26, 8, 0), // Mon 26 Oct 09:00 CET
            ]
        );
        assert_eq!(s.describe_slot(utc(2026, 3, 29, 7, 0)), "Sun 29 Mar 09:00 Europe/Berlin");
        assert_eq!(s.describe_slot(utc(2026, 10, 25, 8, 0)), "Sun 25 Oct 09:00 Europe/Berlin");
    }

    #[test]
    fn new_york_and_sydney_dst() {
        let ny = schedule("0 9 * * *", "America/New_York");
        // EDT starts Sun 8 Mar 2026, EST returns Sun 1 Nov 2026.
        assert_eq!(
            slots_after(&ny, utc(2026, 3, 7, 0, 0), 2),
            [
                utc(2026, 3, 7, 14, 0), // Sat 7 Mar 09:00 EST (UTC−5)
                utc(2026, 3, 8, 13, 0), // Sun 8 Mar 09:00 EDT (UTC−4)
            ]
        );
        assert_eq!(
            slots_after(&ny, utc(2026, 10, 31, 0, 0), 2),
            [
                utc(2026, 10, 31, 13, 0), // Sat 31 Oct 09:00 EDT
                utc(2026, 11, 1, 14, 0),  // Sun 1 Nov 09:00 EST
            ]
        );
        // The southern hemisphere changes the other way round: AEDT (UTC+11)
        // ends Sun 5 Apr 2026 and starts again Sun 4 Oct 2026. 09:00 in
        // Sydney is the previous day in UTC.
        let sydney = schedule("0 9 * * *", "Australia/Sydney");
        assert_eq!(
            slots_after(&sydney, utc(2026, 4, 3, 12, 0), 2),
            [
                utc(2026, 4, 3, 22, 0), // Sat 4 Apr 09:00 AEDT (UTC+11)
                utc(2026, 4, 4, 23, 0), // Sun 5 Apr 09:00 AEST (UTC+10)
            ]
        );
        assert_eq!(
            slots_after(&sydney, utc(2026, 10, 2, 12, 0), 2),
            [
                utc(2026, 10, 2, 23, 0), // Sat 3 Oct 09:00 AEST
                utc(2026, 10, 3, 22, 0), // Sun 4 Oct 09:00 AEDT
            ]
        );
        assert_eq!(sydney.describe_slot(utc(2026, 10, 3, 22, 0)), "Sun 4 Oct 09:00 Australia/Sydney");
    }

    #[test]
    fn first_monday_is_right_every_month_of_2026_and_2027() {
        // The seed's Comprehensive Pipeline Assessment: first Monday, 10:00.
        let s = schedule("0 10 * * 1#1", "Europe/Berlin");
        let expected = [
            utc(2026, 1, 5, 9, 0),  // Mon 5 Jan 10:00 CET
            utc(2026, 2, 2, 9, 0),  // Mon 2 Feb 10:00 CET
            utc(2026, 3, 2, 9, 0),  // Mon 2 Mar 10:00 CET
            utc(2026, 4, 6, 8, 0),  // Mon 6 Apr 10:00 CEST
            utc(2026, 5, 4, 8, 0),  // Mon 4 May 10:00 CEST
            utc(2026, 6, 1, 8, 0),  // Mon 1 Jun 10:00 CEST (the 1st itself)
            utc(2026, 7, 6, 8, 0),  // Mon 6 Jul 10:00 CEST
            utc(2026, 8, 3, 8, 0),  // Mon 3 Aug 10:00 CEST
            utc(2026, 9, 7, 8, 0),  // Mon 7 Sep 10:00 CEST (the 7th, the latest possible)
            utc(2026, 10, 5, 8, 0), // Mon 5 Oct 10:00 CEST
            utc(2026, 11, 2, 9, 0), // Mon 2 Nov 10:00 CET
            utc(2026, 12, 7, 9, 0), // Mon 7 Dec 10:00 CET
            utc(2027, 1, 4, 9, 0),  // Mon 4 Jan 10:00 CET
            utc(2027, 2, 1, 9, 0),  // Mon 1 Feb 10:00 CET
            utc(2027, 3, 1, 9, 0),  // Mon 1 Mar 10:00 CET
            utc(2027, 4, 5, 8, 0),  // Mon 5 Apr 10:00 CEST
            utc(2027, 5, 3, 8, 0),  // Mon 3 May 10:00 CEST
            utc(2027, 6, 7, 8, 0),  // Mon 7 Jun 10:00 CEST
            utc(2027, 7, 5, 8, 0),  // Mon 5 Jul 10:00 CEST
            utc(2027, 8, 2, 8, 0),  // Mon 2 Aug 10:00 CEST
            utc(2027, 9, 6, 8, 0),  // Mon 6 Sep 10:00 CEST
            utc(2027, 10, 4, 8, 0), // Mon 4 Oct 10:00 CEST
            utc(2027, 11, 1, 9, 0), // Mon 1 Nov 10:00 CET
            utc(2027, 12, 6, 9, 0), // Mon 6 Dec 10:00 CET
        ];
        assert_eq!(slots_after(&s, utc(2026, 1, 1, 0, 0), 24), expected);
        assert_eq!(s.next_after(utc(2027, 12, 6, 9, 0)), Some(utc(2028, 1, 3, 9, 0)));
        // Mon 3 Jan 2028 10:00 CET
    }

    #[test]
    fn last_friday_is_right_every_month_including_february_in_a_leap_year() {
        // The seed's Disaster Recovery Testing: last Friday, 15:00.
        let s = schedule("0 15 * * 5L", "Europe/Berlin");
        // 2028 is a leap year; summer time runs 26 Mar – 29 Oct.
        let expected = [
            utc(2028, 1, 28, 14, 0),  // Fri 28 Jan 15:00 CET
            utc(2028, 2, 25, 14, 0),  // Fri 25 Feb 15:00 CET (29 Feb 2028 is a Tuesday)
            utc(2028, 3, 31, 13, 0),  // Fri 31 Mar 15:00 CEST
            utc(2028, 4, 28, 13, 0),  // Fri 28 Apr 15:00 CEST
            utc(2028, 5, 26, 13, 0),  // Fri 26 May 15:00 CEST
            utc(2028, 6, 30, 13, 0),  // Fri 30 Jun 15:00 CEST
            utc(2028, 7, 28, 13, 0),  // Fri 28 Jul 15:00 CEST
            utc(2028, 8, 25, 13, 0),  // Fri 25 Aug 15:00 CEST
            utc(2028, 9, 29, 13, 0),  // Fri 29 Sep 15:00 CEST
            utc(2028, 10, 27, 13, 0), // Fri 27 Oct 15:00 CEST (two days before the change)
            utc(2028, 11, 24, 14, 0), // Fri 24 Nov 15:00 CET
            utc(2028, 12, 29, 14, 0), // Fri 29 Dec 15:00 CET
        ];
        assert_eq!(slots_after(&s, utc(2028, 1, 1, 0, 0), 12), expected);
        // In 2036, 29 Feb is itself a Friday: the leap day is the last Friday
        // (Fri 29 Feb 15:00 CET).
        assert_eq!(s.next_after(utc(2036, 2, 1, 0, 0)), Some(utc(2036, 2, 29, 14, 0)));
        // In 2027 February has 28 days and the 26th is its last Friday
        // (Fri 26 Feb 15:00 CET).
        assert_eq!(s.next_after(utc(2027, 2, 1, 0, 0)), Some(utc(2027, 2, 26, 14, 0)));
    }

    #[test]
    fn monday_1000_weekly() {
        let s = schedule("0 10 * * 1", "Europe/Berlin");
        assert_eq!(
            slots_after(&s, utc(2026, 3, 18, 12, 0), 3),
            [
                utc(2026, 3, 23, 9, 0), // Mon 23 Mar 10:00 CET
                utc(2026, 3, 30, 8, 0), // Mon 30 Mar 10:00 CEST, the day after the change
                utc(2026, 4, 6, 8, 0),  // Mon 6 Apr 10:00 CEST
            ]
        );
        // Strictly after: on the slot itself, the next one is a week later;
        // a second before it, it is the slot.
        assert_eq!(s.next_after(utc(2026, 3, 23, 9, 0)), Some(utc(2026, 3, 30, 8, 0)));
        let just_before = utc(2026, 3, 23, 9, 0) - TimeDelta::seconds(1);
        assert_eq!(s.next_after(just_before), Some(utc(2026, 3, 23, 9, 0)));
        // Sub-second precision does not leak into slots.
        let mid_second = utc(2026, 3, 23, 9, 0) - TimeDelta::milliseconds(500);
        assert_eq!(s.next_after(mid_second), Some(utc(2026, 3, 23, 9, 0)));
        assert_eq!(s.describe_slot(utc(2026, 3, 23, 9, 0)), "Mon 23 Mar 10:00 Europe/Berlin");
        assert_eq!(s.describe_slot(utc(2023, 11, 27, 9, 0)), "Mon 27 Nov 10:00 Europe/Berlin");
    }

    #[test]
    fn latest_slot_before_start_finds_the_missed_0900_run() {
        let s = schedule("0 9 * * *", "Europe/Berlin");
        // The bot starts at 09:20 CEST (07:20 UTC) on Wed 10 Jun 2026.
        let start = utc(2026, 6, 10, 7, 20);
        // The run it missed: that day's 09:00 CEST.
        assert_eq!(s.latest_at_or_before(start), Some(utc(2026, 6, 10, 7, 0)));
        // Ten minutes long: its moment passed at 09:10. Thirty: still on.
        assert_eq!(
            decide_slot(utc(2026, 6, 10, 7, 0), TimeDelta::minutes(10), TimeDelta::seconds(60), start),
            SlotDecision::Skipped { by: TimeDelta::minutes(20) }
        );
        assert_eq!(
            decide_slot(utc(2026, 6, 10, 7, 0), TimeDelta::minutes(30), TimeDelta::seconds(60), start),
            SlotDecision::Late { by: TimeDelta::minutes(20) }
        );
        // At or before: exactly on the slot finds that slot; a second
        // earlier finds yesterday's.
        assert_eq!(s.latest_at_or_before(utc(2026, 6, 10, 7, 0)), Some(utc(2026, 6, 10, 7, 0)));
        assert_eq!(
            s.latest_at_or_before(utc(2026, 6, 10, 7, 0) - TimeDelta::seconds(1)),
            Some(utc(2026, 6, 9, 7, 0)) // Tue 9 Jun 09:00 CEST
        );
        // Across the spring change: a start at 08:00 CEST on Sun 29 Mar 2026
        // is before that day's 09:00, so the missed slot is Saturday's, in CET
        // (Sat 28 Mar 09:00 CET).
        assert_eq!(s.latest_at_or_before(utc(2026, 3, 29, 6, 0)), Some(utc(2026, 3, 28, 8, 0)));
        // Monthly: the first Monday before Wed 10 Jun 2026 is 1 Jun (10:00 CEST).
        let monthly = schedule("0 10 * * 1#1", "Europe/Berlin");
        assert_eq!(monthly.latest_at_or_before(start), Some(utc(2026, 6, 1, 8, 0)));
        // Nothing in the last 400 days: 29 Feb 2024 is too long ago on
        // 1 Jun 2027; on 1 Mar 2028 the day before counts.
        let leap_day = schedule("0 0 29 2 *", "Europe/Berlin");
        assert_eq!(leap_day.latest_at_or_before(utc(2027, 6, 1, 0, 0)), None);
        // Tue 29 Feb 2028 00:00 CET
        assert_eq!(leap_day.latest_at_or_before(utc(2028, 3, 1, 0, 0)), Some(utc(2028, 2, 28, 23, 0)));
        // A date that never comes has neither a past nor a next slot.
        let never = schedule("0 9 30 2 *", "Europe/Berlin");
        assert_eq!(never.latest_at_or_before(start), None);
        assert_eq!(never.next_after(start), None);
    }

    #[test]
    fn decide_slot_on_time_late_and_skipped() {
        let slot = utc(2026, 6, 10, 7, 0); // 09:00 CEST
        let ten_minutes = TimeDelta::minutes(10);
        let grace = TimeDelta::seconds(60);
        let at = |seconds: i64| slot + TimeDelta::seconds(seconds);
        // A tick a little early or on time, and up to the grace inclusive.
        assert_eq!(decide_slot(slot, ten_minutes, grace, at(-5)), SlotDecision::OnTime);
        assert_eq!(decide_slot(slot, ten_minutes, grace, at(0)), SlotDecision::OnTime);
        assert_eq!(decide_slot(slot, ten_minutes, grace, at(60)), SlotDecision::OnTime);
        // Past the grace, late until the duration is up.
        assert_eq!(decide_slot(slot, ten_minutes, grace, at(61)), SlotDecision::Late { by: TimeDelta::seconds(61) });
        assert_eq!(decide_slot(slot, ten_minutes, grace, at(599)), SlotDecision::Late { by: TimeDelta::seconds(599) });
        // At 09:10 the run should have been over: skipped.
        assert_eq!(decide_slot(slot, ten_minutes, grace, at(600)), SlotDecision::Skipped { by: ten_minutes });
        assert_eq!(
            decide_slot(slot, ten_minutes, grace, at(3 * 3600)),
            SlotDecision::Skipped { by: TimeDelta::hours(3) }
        );
        // A checklist shorter than the grace is on time within the grace,
        // then skipped, never late.
        let thirty_seconds = TimeDelta::seconds(30);
        assert_eq!(decide_slot(slot, thirty_seconds, grace, at(45)), SlotDecision::OnTime);
        assert_eq!(
            decide_slot(slot, thirty_seconds, grace, at(61)),
            SlotDecision::Skipped { by: TimeDelta::seconds(61) }
        );
    }

    #[test]
    fn a_missed_slot_runs_late_within_the_duration_is_logged_for_an_hour_then_ignored() {
        let seed = Runbook::seed();
        let morning = seed.checklists.iter().find(|c| c.id == "morning-health-check").unwrap();
        assert_eq!(morning.duration, Some(TimeDelta::minutes(10)));
        let slot = utc(2026, 6, 10, 9, 0); // 09:00 in the seed's UTC
        let at = |minutes: i64, seconds: i64| slot + TimeDelta::minutes(minutes) + TimeDelta::seconds(seconds);
        let decide = |now| slot_decision(morning, slot, now);
        assert_eq!(late_window(morning), TimeDelta::minutes(10));
        assert_eq!(decide(at(0, 0)), Some(SlotDecision::OnTime));
        assert_eq!(decide(at(1, 0)), Some(SlotDecision::OnTime), "within the 60 s grace");
        assert_eq!(decide(at(5, 0)), Some(SlotDecision::Late { by: TimeDelta::minutes(5) }));
        // At 09:10 the run should be over: skipped, and logged until 10:10.
        assert_eq!(decide(at(10, 0)), Some(SlotDecision::Skipped { by: TimeDelta::minutes(10) }));
        assert_eq!(decide(at(69, 59)), Some(SlotDecision::Skipped { by: at(69, 59) - slot }));
        assert_eq!(decide(at(70, 0)), None, "history, not news");
        assert_eq!(decide(at(3 * 24 * 60, 0)), None);

        // Without a duration, a run is worth starting late for an hour, and
        // the slot is logged as skipped for the hour after that.
        let no_duration = Checklist { duration: None, ..morning.clone() };
        assert_eq!(late_window(&no_duration), TimeDelta::hours(1));
        let decide = |now| slot_decision(&no_duration, slot, now);
        assert_eq!(decide(at(59, 59)), Some(SlotDecision::Late { by: at(59, 59) - slot }));
        assert_eq!(decide(at(60, 0)), Some(SlotDecision::Skipped { by: TimeDelta::hours(1) }));
        assert_eq!(decide(at(119, 59)), Some(SlotDecision::Skipped { by: at(119, 59) - slot }));
        assert_eq!(decide(at(120, 0)), None);
    }

    #[test]
    fn dst_gap_and_overlap_slots_fire_once() {
        // 02:30 daily in Berlin.
        let s = schedule("30 2 * * *", "Europe/Berlin");
        // Gap: on Sun 29 Mar 2026 the clock jumps 02:00 CET → 03:00 CEST, so
        // 02:30 does not exist; the slot runs once, at 03:00 CEST.
        assert_eq!(
            slots_after(&s, utc(2026, 3, 27, 12, 0), 3),
            [
                utc(2026, 3, 28, 1, 30), // Sat 28 Mar 02:30 CET
                utc(2026, 3, 29, 1, 0),  // Sun 29 Mar 03:00 CEST, first instant after the gap
                utc(2026, 3, 30, 0, 30), // Mon 30 Mar 02:30 CEST
            ]
        );
        assert_eq!(s.describe_slot(utc(2026, 3, 29, 1, 0)), "Sun 29 Mar 03:00 Europe/Berlin");
        // Looking back (from 07:00 CEST, or from 03:00 CEST itself) finds
        // that one run, and a second before it finds Saturday's.
        assert_eq!(s.latest_at_or_before(utc(2026, 3, 29, 5, 0)), Some(utc(2026, 3, 29, 1, 0)));
        assert_eq!(s.latest_at_or_before(utc(2026, 3, 29, 1, 0)), Some(utc(2026, 3, 29, 1, 0)));
        assert_eq!(
            s.latest_at_or_before(utc(2026, 3, 29, 1, 0) - TimeDelta::seconds(1)),
            Some(utc(2026, 3, 28, 1, 30)) // Sat 28 Mar 02:30 CET
        );

        // Overlap: on Sun 25 Oct 2026 02:00–02:59 happens twice (CEST, then
        // CET). The slot runs once, at the first 02:30.
        assert_eq!(
            slots_after(&s, utc(2026, 10, 23, 12, 0), 3),
            [
                utc(2026, 10, 24, 0, 30), // Sat 24 Oct 02:30 CEST
                utc(2026, 10, 25, 0, 30), // Sun 25 Oct 02:30 CEST, the first of the two
                utc(2026, 10, 26, 1, 30), // Mon 26 Oct 02:30 CET; not Sun 25 Oct 02:30 CET (01:30 UTC)
            ]
        );
        // From inside the repeated hour, or just after the second 02:30,
        // the latest slot is still the first 02:30, never the repeat.
        // At the second 02:00 (CET):
        assert_eq!(s.latest_at_or_before(utc(2026, 10, 25, 1, 0)), Some(utc(2026, 10, 25, 0, 30)));
        // At 02:45 CET, after the second 02:30:
        assert_eq!(s.latest_at_or_before(utc(2026, 10, 25, 1, 45)), Some(utc(2026, 10, 25, 0, 30)));
        // Starting between the two 02:30s, the next slot is Monday's.
        assert_eq!(s.next_after(utc(2026, 10, 25, 1, 0)), Some(utc(2026, 10, 26, 1, 30)));

        // New York changes at 02:00 local: 02:30 is in the gap on Sun 8 Mar
        // 2026, 01:30 in the overlap on Sun 1 Nov 2026.
        let ny_gap = schedule("30 2 * * *", "America/New_York");
        // Runs at Sun 8 Mar 03:00 EDT:
        assert_eq!(ny_gap.next_after(utc(2026, 3, 8, 0, 0)), Some(utc(2026, 3, 8, 7, 0)));
        let ny_overlap = schedule("30 1 * * *", "America/New_York");
        assert_eq!(
            slots_after(&ny_overlap, utc(2026, 10, 31, 12, 0), 2),
            [
                utc(2026, 11, 1, 5, 30), // Sun 1 Nov 01:30 EDT, the first of the two
                utc(2026, 11, 2, 6, 30), // Mon 2 Nov 01:30 EST
            ]
        );

        // Sydney: 02:30 repeats on Sun 5 Apr 2026 and is skipped over on
        // Sun 4 Oct 2026.
        let sydney = schedule("30 2 * * *", "Australia/Sydney");
        assert_eq!(
            slots_after(&sydney, utc(2026, 4, 4, 0, 0), 2),
            [
                utc(2026, 4, 4, 15, 30), // Sun 5 Apr 02:30 AEDT, the first of the two
                utc(2026, 4, 5, 16, 30), // Mon 6 Apr 02:30 AEST
            ]
        );
        // Runs at Sun 4 Oct 03:00 AEDT:
        assert_eq!(sydney.next_after(utc(2026, 10, 3, 12, 0)), Some(utc(2026, 10, 3, 16, 0)));

        // A schedule that is not a fixed time of day follows real time: the
        // gap's 02:00 and 02:30 do not happen, and it runs every 30 minutes
        // through both halves of the overlap.
        let every_half_hour = schedule("*/30 * * * *", "Europe/Berlin");
        assert_eq!(
            slots_after(&every_half_hour, utc(2026, 3, 29, 0, 15), 3),
            [
                utc(2026, 3, 29, 0, 30), // 01:30 CET
                utc(2026, 3, 29, 1, 0),  // 03:00 CEST, straight after 01:59:59 CET
                utc(2026, 3, 29, 1, 30), // 03:30 CEST
            ]
        );
        assert_eq!(
            slots_after(&every_half_hour, utc(2026, 10, 24, 23, 45), 5),
            [
                utc(2026, 10, 25, 0, 0),  // 02:00 CEST
                utc(2026, 10, 25, 0, 30), // 02:30 CEST
                utc(2026, 10, 25, 1, 0),  // 02:00 CET
                utc(2026, 10, 25, 1, 30), // 02:30 CET
                utc(2026, 10, 25, 2, 0),  // 03:00 CET
            ]
        );
    }

    #[test]
    fn upcoming_lists_the_seed_checklists_soonest_first() {
        let seed = Runbook::seed();
        // After Thu 30 Apr 2026 10:00 UTC; the seed's zone is UTC.
        let ids = |list: &[(&Checklist, DateTime<Utc>)]| -> Vec<(String, DateTime<Utc>)> {
            list.iter().map(|(c, slot)| (c.id.clone(), *slot)).collect()
        };
        let expected = |offset_hours: i64| {
            // The same local times, `offset_hours` ahead of UTC.
            let local = [
                ("morning-health-check", utc(2026, 5, 1, 9, 0)), // Fri 1 May 09:00, daily
                ("dependency-management", utc(2026, 5, 1, 11, 0)), // Fri 1 May 11:00, Fridays
                ("pipeline-performance-review", utc(2026, 5, 4, 10, 0)), // Mon 4 May 10:00, Mondays
                ("comprehensive-pipeline-assessment", utc(2026, 5, 4, 10, 0)), // Mon 4 May 10:00, first Monday
                ("security-review", utc(2026, 5, 6, 14, 0)),     // Wed 6 May 14:00, Wednesdays
                ("disaster-recovery-testing", utc(2026, 5, 29, 15, 0)), // Fri 29 May 15:00, last Friday (24 Apr passed)
            ];
            local.map(|(id, at)| (id.to_owned(), at - TimeDelta::hours(offset_hours))).to_vec()
        };
        assert_eq!(ids(&upcoming(&seed, utc(2026, 4, 30, 10, 0))), expected(0));
        // The same runbook in Berlin, in summer time (UTC+2): every slot two
        // hours earlier in UTC, same order. The weekly and monthly Monday
        // checklists tie and keep the runbook's order. The schedules carry
        // the zone they were loaded with, so the file is loaded again.
        let berlin =
            crate::runbook::parse(&Runbook::SEED_YAML.replace("\ntimezone: UTC\n", "\ntimezone: Europe/Berlin\n"))
                .unwrap();
        assert_eq!(berlin.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(ids(&upcoming(&berlin, utc(2026, 4, 30, 8, 0))), expected(2));
        // On-demand procedures are not listed.
        assert!(upcoming(&seed, utc(2026, 4, 30, 10, 0)).iter().all(|(c, _)| c.schedule.is_some()));
        assert!(seed.checklists.iter().any(|c| c.schedule.is_none()));
    }

    #[test]
    fn bad_cron_is_refused_with_the_checkers_words() {
        // The zone is typed, so only the cron can be wrong here; an unknown
        // zone is the loader's to report (`schedules_and_time_zones_are_checked`).
        let e = Schedule::new("0 25 * * *", Tz::Europe__Berlin).unwrap_err();
        assert!(e.starts_with("bad schedule `0 25 * * *`"), "{e}");
    }

    #[test]
    fn a_schedule_keeps_its_text_and_zone_and_compares_by_them() {
        // Surrounding blanks are not part of the expression, as the loader
        // always trimmed them.
        let s = Schedule::new(" 0 9 * * * ", Tz::Europe__Berlin).unwrap();
        assert_eq!(s.expression(), "0 9 * * *");
        assert_eq!(s.timezone(), Tz::Europe__Berlin);
        assert_eq!(s.timezone().name(), "Europe/Berlin");
        assert_eq!(s, schedule("0 9 * * *", "Europe/Berlin"));
        assert_ne!(s, schedule("0 9 * * *", "UTC"), "same text, other zone");
        assert_ne!(s, schedule("0 10 * * *", "Europe/Berlin"));
        assert_eq!(format!("{s:?}"), r#"Schedule { expression: "0 9 * * *", timezone: Europe/Berlin, .. }"#);
    }

    #[test]
    fn the_seed_morning_checklist_is_a_typed_schedule_due_at_0900() {
        // Loaded once: the checklist holds a parsed schedule in the
        // runbook's zone, and nothing parses the cron again to use it.
        let berlin =
            crate::runbook::parse(&Runbook::SEED_YAML.replace("\ntimezone: UTC\n", "\ntimezone: Europe/Berlin\n"))
                .unwrap();
        let morning = berlin.checklists.iter().find(|c| c.id == "morning-health-check").unwrap();
        let s = morning.schedule.as_ref().expect("the morning health check is scheduled");
        assert_eq!((s.expression(), s.timezone()), ("0 9 * * *", berlin.timezone));
        // After Tue 10 Mar 2026 12:00 UTC: Wed 11 Mar 09:00 CET (UTC+1).
        assert_eq!(s.next_after(utc(2026, 3, 10, 12, 0)), Some(utc(2026, 3, 11, 8, 0)));
        assert_eq!(s.describe_slot(utc(2026, 3, 11, 8, 0)), "Wed 11 Mar 09:00 Europe/Berlin");
        // After Wed 10 Jun 2026 07:01 UTC (09:01 CEST): Thu 11 Jun 09:00 CEST.
        assert_eq!(s.next_after(utc(2026, 6, 10, 7, 1)), Some(utc(2026, 6, 11, 7, 0)));
    }
}
