//! Business hours and holidays, and the clock a severity's pages run on.
//!
//! The seed runbook says a P2 escalates "during business hours" and a P3
//! "next business day": outside the team's hours their clock stops and
//! starts again at the next opening. This module is that arithmetic, pure:
//! whether an instant is inside business hours, the first open instant at
//! or after one, N minutes of business time added to an instant, and the
//! business time between two instants.
//!
//! Hours are wall-clock times in the runbook's time zone, per weekday, so
//! 09:00 stays 09:00 across daylight saving. An opening or closing time the
//! clocks skip (02:30 the night they spring forward) is read as the first
//! minute that does happen; one that happens twice opens at its first
//! occurrence and closes at its second, so an interval holds every instant
//! whose wall clock reads inside it. An interval ends on its own day
//! (`24:00` at the latest): overnight hours are two intervals on two days.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use std::fmt;

/// Minutes in a day: `24:00`, the latest an interval may end.
pub const DAY_MINUTES: u16 = 24 * 60;

/// One open interval of a weekday, in minutes after local midnight:
/// `09:00-17:00` is `{ from: 540, to: 1020 }`. `from < to <= 24:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub from: u16,
    pub to: u16,
}

impl Interval {
    /// `09:00-17:00`, `13:00-24:00`. An interval that ends before it
    /// starts (overnight) is refused with how to write it instead.
    pub fn parse(text: &str) -> Result<Interval, String> {
        let text = text.trim();
        let Some((from, to)) = text.split_once('-') else {
            return Err(format!("`{text}` is not a time range: write it as `09:00-17:00`"));
        };
        let from = clock_minutes(from.trim())?;
        let to = clock_minutes(to.trim())?;
        if from == DAY_MINUTES {
            return Err(format!("`{text}` starts at 24:00, the end of the day: a day's hours start at 00:00 to 23:59"));
        }
        if to <= from {
            return Err(format!(
                "`{text}` ends before it starts: hours end on their own day. For hours past midnight \
                 write both days, e.g. `mon: 22:00-24:00` and `tue: 00:00-06:00`"
            ));
        }
        Ok(Interval { from, to })
    }
}

impl Interval {
    /// [`Interval::parse`], except that a range that ends before it
    /// starts runs past midnight: `22:00-06:00` is `22:00-24:00` and, the
    /// next day, `00:00-06:00`; `22:00-00:00` ends at midnight.
    pub fn parse_overnight(text: &str) -> Result<(Interval, Option<Interval>), String> {
        let Some((from, to)) = text.trim().split_once('-') else { return Interval::parse(text).map(|i| (i, None)) };
        let (start, end) = (clock_minutes(from.trim()), clock_minutes(to.trim()));
        match (start, end) {
            (Ok(start), Ok(0)) if start > 0 && start < DAY_MINUTES => {
                Ok((Interval { from: start, to: DAY_MINUTES }, None))
            }
            (Ok(start), Ok(end)) if end < start && start < DAY_MINUTES => {
                Ok((Interval { from: start, to: DAY_MINUTES }, Some(Interval { from: 0, to: end })))
            }
            _ => Interval::parse(text).map(|i| (i, None)),
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.from), hm(self.to))
    }
}

/// `09:00` → 540; `24:00` → 1440. Hours and minutes of two digits, the
/// hour may be written with one (`9:00`).
fn clock_minutes(text: &str) -> Result<u16, String> {
    let bad = || format!("`{text}` is not a time of day: write `HH:MM`, such as `09:00` or `17:30`");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A day off: no business hours on that local date, whatever its weekday.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    /// e.g. `Christmas Day`, when the runbook names it.
    pub name: Option<String>,
}

/// When the team is at work: hours per weekday and the holidays, read in
/// the runbook's time zone. Never without any hours (the loader and
/// [`BusinessHours::new`] refuse that), so the next opening always exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessHours {
    /// Monday first; each day's intervals sorted and apart. A day with
    /// none has no business hours.
    week: [Vec<Interval>; 7],
    /// Sorted by date.
    holidays: Vec<Holiday>,
}

/// Why a week of hours cannot be business hours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("no day has any hours: business hours need at least one open interval in the week")]
    NeverOpen,
    #[error("{day}'s hours {first} and {second} overlap")]
    Overlap { day: &'static str, first: Interval, second: Interval },
}

impl Default for BusinessHours {
    /// The seed's assumption: Monday to Friday, 09:00 to 17:00, no holidays.
    fn default() -> BusinessHours {
        let office = vec![Interval { from: 9 * 60, to: 17 * 60 }];
        let mut week: [Vec<Interval>; 7] = Default::default();
        for day in week.iter_mut().take(5) {
            day.clone_from(&office);
        }
        BusinessHours { week, holidays: Vec::new() }
    }
}

/// The weekday's English name, for messages.
pub fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

impl BusinessHours {
    /// Hours per weekday (Monday first) and holidays. Refuses a week
    /// without any hours, and intervals of one day that overlap.
    pub fn new(mut week: [Vec<Interval>; 7], mut holidays: Vec<Holiday>) -> Result<BusinessHours, HoursError> {
        for (i, day) in week.iter_mut().enumerate() {
            day.sort();
            if let Some(pair) = day.windows(2).find(|pair| pair[1].from < pair[0].to) {
                let name = day_name(Weekday::try_from(i as u8).unwrap_or(Weekday::Mon));
                return Err(HoursError::Overlap { day: name, first: pair[0], second: pair[1] });
            }
        }
        if week.iter().all(Vec::is_empty) {
            return Err(HoursError::NeverOpen);
        }
        holidays.sort_by_key(|h| h.date);
        Ok(BusinessHours { week, holidays })
    }

    /// A weekday's intervals.
    pub fn day(&self, day: Weekday) -> &[Interval] {
        &self.week[day.num_days_from_monday() as usize]
    }

    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    /// The holiday on `date`, if it is one.
    pub fn holiday(&self, date: NaiveDate) -> Option<&Holiday> {
        self.holidays.binary_search_by_key(&date, |h| h.date).ok().map(|i| &self.holidays[i])
    }

    /// Whether `at` is inside business hours. Opening is inside, closing
    /// is not: 09:00-17:00 holds 09:00 and not 17:00.
    pub fn is_open(&self, zone: Tz, at: DateTime<Utc>) -> bool {
        let date = at.with_timezone(&zone).date_naive();
        self.intervals_on(zone, date).into_iter().any(|(from, to)| from <= at && at < to)
    }

    /// The first instant at or after `at` inside business hours: `at`
    /// itself when it is inside, else the next opening.
    pub fn open_from(&self, zone: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
        self.add(zone, at, TimeDelta::zero())
    }

    /// `at` plus `time` of business time: the clock runs inside business
    /// hours only, and a span that ends exactly at a closing ends there.
    /// With no time to add, the first open instant at or after `at`.
    pub fn add(&self, zone: Tz, at: DateTime<Utc>, time: TimeDelta) -> DateTime<Utc> {
        let mut left = time.max(TimeDelta::zero());
        let mut date = at.with_timezone(&zone).date_naive();
        for _ in 0..self.days_to_search() {
            for (from, to) in self.intervals_on(zone, date) {
                if to <= at {
                    continue;
                }
                let start = from.max(at);
                if start + left <= to {
                    return start + left;
                }
                left -= to - start;
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        // Only past chrono's last date: the clock runs as if always open.
        at + time
    }

    /// The business time in `[from, to)`; zero when `to` is not after `from`.
    pub fn between(&self, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        let mut total = TimeDelta::zero();
        if to <= from {
            return total;
        }
        let mut date = from.with_timezone(&zone).date_naive();
        loop {
            for (open, close) in self.intervals_on(zone, date) {
                let (start, end) = (open.max(from), close.min(to));
                if end > start {
                    total += end - start;
                }
            }
            match date.succ_opt() {
                Some(next) if local_start(zone, next) < to => date = next,
                _ => break,
            }
        }
        total
    }

    /// The last opening or closing at or before `at`, and the first after
    /// it, give or take: where none falls within a day of `at`, the local
    /// midnight two days off stands in, so that every real change is still
    /// at or beyond what is returned (what a search for changes needs).
    pub fn edges_around(&self, zone: Tz, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let date = at.with_timezone(&zone).date_naive();
        let (Some(first), Some(last)) = (date.pred_opt(), date.succ_opt()) else { return (at, at) };
        let edges: Vec<DateTime<Utc>> = first
            .iter_days()
            .take_while(|day| *day <= last)
            .flat_map(|day| self.intervals_on(zone, day))
            .flat_map(|(from, to)| [from, to])
            .collect();
        let before = edges.iter().filter(|e| **e <= at).max().copied().unwrap_or_else(|| local_start(zone, first));
        let after = edges
            .iter()
            .filter(|e| **e > at)
            .min()
            .copied()
            .unwrap_or_else(|| last.succ_opt().map_or(at + TimeDelta::days(2), |d| local_start(zone, d)));
        (before, after)
    }

    /// How many days [`Self::add`] looks ahead: every week has an open
    /// interval, so a week past the last holiday there is one.
    fn days_to_search(&self) -> usize {
        (self.holidays.len() + 2) * 7 + 1
    }

    /// The open intervals of the local date `date`, as instants; none on
    /// a holiday or a day without hours.
    fn intervals_on(&self, zone: Tz, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holiday(date).is_some() {
            return Vec::new();
        }
        self.day(date.weekday())
            .iter()
            .filter_map(|interval| {
                let from = opening(zone, date, interval.from);
                let to = closing(zone, date, interval.to);
                // An interval inside a skipped hour does not happen.
                (from < to).then_some((from, to))
            })
            .collect()
    }
}

/// Local midnight starting `date`, as an instant.
fn local_start(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    opening(zone, date, 0)
}

/// `minutes` after midnight of `date` (1440 being the next midnight) as a
/// wall-clock reading.
fn wall(date: NaiveDate, minutes: u16) -> NaiveDateTime {
    let day = if minutes >= DAY_MINUTES { date.checked_add_days(Days::new(1)).unwrap_or(date) } else { date };
    let minutes = u32::from(minutes % DAY_MINUTES);
    day.and_time(NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN))
}

/// When the wall clock first reads `minutes` on `date` or later: its first
/// occurrence, or when a skipped time is passed, the first minute after
/// the gap.
fn opening(zone: Tz, date: NaiveDate, minutes: u16) -> DateTime<Utc> {
    resolve(zone, wall(date, minutes), true)
}

/// When the wall clock last reads `minutes` on `date`: its second
/// occurrence in an hour that happens twice.
fn closing(zone: Tz, date: NaiveDate, minutes: u16) -> DateTime<Utc> {
    resolve(zone, wall(date, minutes), false)
}

fn resolve(zone: Tz, at: NaiveDateTime, first: bool) -> DateTime<Utc> {
    // A gap is at most a few hours (Lord Howe's half hour, most zones' one
    // hour); the first minute that exists after it is found by stepping.
    for step in 0..=(4 * 60) {
        let candidate = at + TimeDelta::minutes(step);
        let found = zone.from_local_datetime(&candidate);
        let instant = if first { found.earliest() } else { found.latest() };
        if let Some(instant) = instant {
            return instant.with_timezone(&Utc);
        }
    }
    Utc.from_utc_datetime(&at)
}

/// An instant as the team reads it in the runbook's zone, with a Slack date
/// token so each reader also sees it in their own: `Mon 30 Nov 09:00
/// Europe/Berlin` when Slack cannot render the token.
pub fn slack_when(at: DateTime<Utc>, zone: Tz) -> String {
    let local = at.with_timezone(&zone);
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{} {}>",
        at.timestamp(),
        local.format("%a %-d %b %H:%M"),
        zone.name()
    )
}

/// Which clock a severity's pages run on: the seed's "Escalation:" line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalate {
    /// Real time, day and night (P0, P1).
    AroundTheClock,
    /// The first responder is paged at once; the response clock, the
    /// update nudges and the overdue reminders wait for business hours (P2).
    DuringBusinessHours,
    /// As [`Escalate::DuringBusinessHours`], and outside business hours
    /// even the first page waits for the next opening (P3).
    NextBusinessDay,
}

impl Escalate {
    /// The words the runbook uses, as `escalate:` takes them.
    pub const WORDS: [&'static str; 3] = ["around the clock", "during business hours", "next business day"];

    /// `during business hours`, any case, with `-` or `_` for spaces.
    pub fn parse(text: &str) -> Option<Escalate> {
        let words: Vec<String> = text.split([' ', '-', '_']).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
        match words.join(" ").as_str() {
            "around the clock" | "always" | "at once" | "immediately" => Some(Escalate::AroundTheClock),
            "during business hours" | "business hours" => Some(Escalate::DuringBusinessHours),
            "next business day" => Some(Escalate::NextBusinessDay),
            _ => None,
        }
    }

    /// The seed runbook's sentence for each severity: P0 and P1 around the
    /// clock, P2 during business hours, P3 the next business day.
    pub fn seed(severity: crate::severity::Severity) -> Escalate {
        use crate::severity::Severity;
        match severity {
            Severity::P0 | Severity::P1 => Escalate::AroundTheClock,
            Severity::P2 => Escalate::DuringBusinessHours,
            Severity::P3 => Escalate::NextBusinessDay,
        }
    }

    /// Whether the clock stops outside business hours.
    pub fn pauses(self) -> bool {
        self != Escalate::AroundTheClock
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Escalate::AroundTheClock => Self::WORDS[0],
            Escalate::DuringBusinessHours => Self::WORDS[1],
            Escalate::NextBusinessDay => Self::WORDS[2],
        }
    }
}

/// A role paged while an incident is still unacknowledged this long after
/// it was declared, beside the escalation matrix (the seed's P1: "to
/// on-call engineer within 30 minutes").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatePage {
    pub role: String,
    pub after: TimeDelta,
}

/// The clock of one severity: business hours when it pauses, real time
/// when it does not.
#[derive(Clone, Copy, Debug)]
pub struct Clock<'a> {
    pub escalate: Escalate,
    pub hours: &'a BusinessHours,
    pub zone: Tz,
}

impl Clock<'_> {
    /// `at` plus `time` on this clock.
    pub fn add(&self, at: DateTime<Utc>, time: TimeDelta) -> DateTime<Utc> {
        if self.escalate.pauses() {
            self.hours.add(self.zone, at, time)
        } else {
            at + time
        }
    }

    /// When something due at `at` may be said: at once around the clock,
    /// else `at` held to the next opening.
    pub fn hold(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.add(at, TimeDelta::zero())
    }

    /// The time this clock counted in `[from, to)`.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        if self.escalate.pauses() {
            self.hours.between(self.zone, from, to)
        } else {
            (to - from).max(TimeDelta::zero())
        }
    }

    /// Whether the clock is stopped at `at`.
    pub fn paused(&self, at: DateTime<Utc>) -> bool {
        self.escalate.pauses() && !self.hours.is_open(self.zone, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn zone(name: &str) -> Tz {
        name.parse().unwrap()
    }

    fn hours(text: &str) -> Vec<Interval> {
        text.split(',').map(|i| Interval::parse(i).unwrap()).collect()
    }

    /// Monday to Friday 09:00-17:00, with Christmas and Boxing Day off.
    fn office() -> BusinessHours {
        let mut week: [Vec<Interval>; 7] = Default::default();
        for day in week.iter_mut().take(5) {
            *day = hours("09:00-17:00");
        }
        let holidays = vec![
            Holiday { date: date("2026-12-25"), name: Some("Christmas Day".into()) },
            Holiday { date: date("2026-12-28"), name: None },
        ];
        BusinessHours::new(week, holidays).unwrap()
    }

    #[test]
    fn intervals_are_read_as_a_day_writes_them_and_overnight_is_refused() {
        assert_eq!(Interval::parse("09:00-17:00"), Ok(Interval { from: 540, to: 1020 }));
        assert_eq!(Interval::parse(" 9:30 - 24:00 "), Ok(Interval { from: 570, to: 1440 }));
        assert_eq!(Interval::parse("00:00-24:00").unwrap().to_string(), "00:00-24:00");
        let overnight = Interval::parse("22:00-06:00").unwrap_err();
        assert!(overnight.contains("ends before it starts") && overnight.contains("`tue: 00:00-06:00`"), "{overnight}");
        assert!(Interval::parse("09:00-09:00").unwrap_err().contains("ends before it starts"));
        for bad in ["9-17", "09:00", "25:00-26:00", "09:60-10:00", "24:30-24:40", "ab:cd-17:00", "09:00-24:01"] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
        assert!(Interval::parse("24:00-24:00").unwrap_err().contains("starts at 24:00"));
    }

    #[test]
    fn a_week_without_hours_or_with_overlapping_hours_is_refused() {
        assert_eq!(BusinessHours::new(Default::default(), Vec::new()), Err(HoursError::NeverOpen));
        let mut week: [Vec<Interval>; 7] = Default::default();
        week[2] = hours("09:00-12:00,11:00-17:00");
        let err = BusinessHours::new(week, Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "Wednesday's hours 09:00-12:00 and 11:00-17:00 overlap");
    }

    #[test]
    fn open_at_opening_and_closed_at_closing() {
        let (h, z) = (office(), Tz::UTC);
        assert!(h.is_open(z, utc("2026-11-27T09:00:00Z")), "Friday at opening");
        assert!(h.is_open(z, utc("2026-11-27T16:59:59Z")));
        assert!(!h.is_open(z, utc("2026-11-27T17:00:00Z")), "closing is closed");
        assert!(!h.is_open(z, utc("2026-11-27T08:59:59Z")));
        assert!(!h.is_open(z, utc("2026-11-28T12:00:00Z")), "Saturday");
        assert!(!h.is_open(z, utc("2026-12-25T12:00:00Z")), "Christmas, a Friday");
        assert!(h.is_open(z, utc("2026-12-24T12:00:00Z")));
    }

    #[test]
    fn the_next_opening_skips_nights_weekends_and_holidays() {
        let (h, z) = (office(), Tz::UTC);
        assert_eq!(h.open_from(z, utc("2026-11-27T10:00:00Z")), utc("2026-11-27T10:00:00Z"), "open: now");
        assert_eq!(h.open_from(z, utc("2026-11-27T09:00:00Z")), utc("2026-11-27T09:00:00Z"), "at opening");
        assert_eq!(h.open_from(z, utc("2026-11-27T17:00:00Z")), utc("2026-11-30T09:00:00Z"), "Friday closing");
        assert_eq!(h.open_from(z, utc("2026-11-26T03:00:00Z")), utc("2026-11-26T09:00:00Z"), "a weekday night");
        assert_eq!(h.open_from(z, utc("2026-11-29T23:59:00Z")), utc("2026-11-30T09:00:00Z"), "Sunday night");
        // Christmas is a Friday, the 28th a Monday holiday: from Thursday
        // evening the next opening is Tuesday.
        assert_eq!(h.open_from(z, utc("2026-12-24T18:00:00Z")), utc("2026-12-29T09:00:00Z"));
    }

    #[test]
    fn business_time_is_added_inside_hours_only() {
        let (h, z) = (office(), Tz::UTC);
        let min = TimeDelta::minutes;
        // The seed's P2 case: Friday 16:50, 30 minutes to respond.
        assert_eq!(h.add(z, utc("2026-11-27T16:50:00Z"), min(30)), utc("2026-11-30T09:20:00Z"));
        assert_eq!(h.add(z, utc("2026-11-27T16:30:00Z"), min(30)), utc("2026-11-27T17:00:00Z"), "ends at closing");
        assert_eq!(h.add(z, utc("2026-11-27T16:31:00Z"), min(30)), utc("2026-11-30T09:01:00Z"));
        assert_eq!(h.add(z, utc("2026-11-28T03:00:00Z"), min(30)), utc("2026-11-30T09:30:00Z"), "from a weekend");
        assert_eq!(h.add(z, utc("2026-11-27T09:00:00Z"), TimeDelta::hours(8)), utc("2026-11-27T17:00:00Z"));
        // 24 h of business time is three working days.
        assert_eq!(h.add(z, utc("2026-11-25T09:00:00Z"), TimeDelta::hours(24)), utc("2026-11-27T17:00:00Z"));
        assert_eq!(h.add(z, utc("2026-11-25T09:00:01Z"), TimeDelta::hours(24)), utc("2026-11-30T09:00:01Z"));
        // Across Christmas and the Monday holiday.
        assert_eq!(h.add(z, utc("2026-12-24T16:00:00Z"), TimeDelta::hours(2)), utc("2026-12-29T10:00:00Z"));
        assert_eq!(h.add(z, utc("2026-11-27T10:00:00Z"), -min(5)), utc("2026-11-27T10:00:00Z"), "never back");
    }

    #[test]
    fn business_time_between_two_instants() {
        let (h, z) = (office(), Tz::UTC);
        let between = |a, b| h.between(z, utc(a), utc(b));
        assert_eq!(between("2026-11-27T16:50:00Z", "2026-11-30T09:20:00Z"), TimeDelta::minutes(30));
        assert_eq!(between("2026-11-28T00:00:00Z", "2026-11-30T00:00:00Z"), TimeDelta::zero(), "a weekend");
        assert_eq!(between("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"), TimeDelta::hours(40), "a week");
        assert_eq!(between("2026-12-21T00:00:00Z", "2026-12-29T00:00:00Z"), TimeDelta::hours(32), "Christmas week");
        assert_eq!(between("2026-11-30T09:20:00Z", "2026-11-27T16:50:00Z"), TimeDelta::zero(), "backwards");
        // Adding and measuring agree, wherever one starts.
        let mut at = utc("2026-12-20T05:17:00Z");
        for step in 0..300 {
            let span = TimeDelta::minutes(37 * step % 1500);
            let end = h.add(z, at, span);
            assert_eq!(h.between(z, at, end), span, "{at} + {span}");
            at += TimeDelta::minutes(53);
        }
    }

    #[test]
    fn a_day_without_hours_and_a_split_day_count_as_they_are_written() {
        let mut week: [Vec<Interval>; 7] = Default::default();
        week[0] = hours("09:00-12:00,13:00-17:00"); // Monday, with lunch
        week[2] = hours("10:00-14:00"); // Wednesday
        let h = BusinessHours::new(week, Vec::new()).unwrap();
        let z = Tz::UTC;
        assert!(!h.is_open(z, utc("2026-11-30T12:30:00Z")), "lunch");
        assert_eq!(h.open_from(z, utc("2026-11-30T12:00:00Z")), utc("2026-11-30T13:00:00Z"));
        assert_eq!(h.add(z, utc("2026-11-30T11:30:00Z"), TimeDelta::hours(1)), utc("2026-11-30T13:30:00Z"));
        // Tuesday has none: Monday 17:00 resumes Wednesday 10:00.
        assert_eq!(h.add(z, utc("2026-11-30T16:00:00Z"), TimeDelta::hours(2)), utc("2026-12-02T11:00:00Z"));
        // A week on, past the empty days.
        assert_eq!(h.open_from(z, utc("2026-12-02T14:00:00Z")), utc("2026-12-07T09:00:00Z"));
    }

    #[test]
    fn hours_to_midnight_run_on_into_the_next_days_hours() {
        let mut week: [Vec<Interval>; 7] = Default::default();
        week[4] = hours("18:00-24:00"); // Friday evening
        week[5] = hours("00:00-06:00"); // into Saturday morning
        let h = BusinessHours::new(week, Vec::new()).unwrap();
        let z = zone("Europe/Berlin");
        assert!(h.is_open(z, utc("2026-11-27T22:59:00Z")), "23:59 Friday in Berlin");
        assert!(h.is_open(z, utc("2026-11-27T23:00:00Z")), "00:00 Saturday in Berlin");
        // 7 h from Friday 22:00 Berlin: 2 h on Friday, 5 h on Saturday.
        assert_eq!(h.add(z, utc("2026-11-27T21:00:00Z"), TimeDelta::hours(7)), utc("2026-11-28T04:00:00Z"));
        assert_eq!(h.between(z, utc("2026-11-27T17:00:00Z"), utc("2026-11-28T05:00:00Z")), TimeDelta::hours(12));
    }

    #[test]
    fn hours_stay_on_the_wall_clock_across_daylight_saving_in_europe_and_america() {
        let h = office();
        // Berlin goes back to CET on Sunday 2026-10-25: 09:00 is 07:00 UTC
        // the Friday before and 08:00 UTC the Monday after.
        let berlin = zone("Europe/Berlin");
        assert_eq!(h.open_from(berlin, utc("2026-10-23T15:00:00Z")), utc("2026-10-26T08:00:00Z"));
        assert_eq!(h.add(berlin, utc("2026-10-23T14:50:00Z"), TimeDelta::minutes(30)), utc("2026-10-26T08:20:00Z"));
        assert!(h.is_open(berlin, utc("2026-10-23T07:00:00Z")) && !h.is_open(berlin, utc("2026-10-26T07:30:00Z")));
        // New York springs forward on Sunday 2026-03-08 and falls back on
        // Sunday 2026-11-01.
        let new_york = zone("America/New_York");
        assert_eq!(h.open_from(new_york, utc("2026-03-06T22:00:00Z")), utc("2026-03-09T13:00:00Z"), "09:00 EDT");
        assert_eq!(h.open_from(new_york, utc("2026-10-30T22:00:00Z")), utc("2026-11-02T14:00:00Z"), "09:00 EST");
        // A week of business time is 40 h on either side of a change.
        for (from, to) in [("2026-03-02", "2026-03-16"), ("2026-10-26", "2026-11-09")] {
            let (from, to) = (local_start(new_york, date(from)), local_start(new_york, date(to)));
            assert_eq!(h.between(new_york, from, to), TimeDelta::hours(80));
        }
    }

    #[test]
    fn hours_in_the_skipped_and_the_repeated_hour() {
        let mut week: [Vec<Interval>; 7] = Default::default();
        week[6] = hours("02:30-04:00"); // Sunday night shift
        let h = BusinessHours::new(week, Vec::new()).unwrap();
        let berlin = zone("Europe/Berlin");
        // 2026-03-29: 02:00-03:00 does not happen; the shift opens at 03:00 CEST.
        assert_eq!(h.open_from(berlin, utc("2026-03-28T12:00:00Z")), utc("2026-03-29T01:00:00Z"));
        assert_eq!(h.between(berlin, utc("2026-03-28T12:00:00Z"), utc("2026-03-30T00:00:00Z")), TimeDelta::hours(1));
        // 2026-10-25: 02:00-03:00 happens twice; the shift opens at the
        // first 02:30 (CEST) and runs to 04:00 CET: 2 h 30 min.
        assert_eq!(h.open_from(berlin, utc("2026-10-24T12:00:00Z")), utc("2026-10-25T00:30:00Z"));
        let night = h.between(berlin, utc("2026-10-24T12:00:00Z"), utc("2026-10-26T00:00:00Z"));
        assert_eq!(night, TimeDelta::minutes(150));
    }

    #[test]
    fn the_clock_of_a_severity() {
        let h = office();
        let p0 = Clock { escalate: Escalate::AroundTheClock, hours: &h, zone: Tz::UTC };
        let p2 = Clock { escalate: Escalate::DuringBusinessHours, ..p0 };
        let night = utc("2026-11-27T23:00:00Z");
        assert_eq!(p0.add(night, TimeDelta::minutes(5)), night + TimeDelta::minutes(5));
        assert_eq!(p2.add(night, TimeDelta::minutes(5)), utc("2026-11-30T09:05:00Z"));
        assert_eq!(p2.hold(night), utc("2026-11-30T09:00:00Z"));
        assert!(p2.paused(night) && !p0.paused(night));
        assert_eq!(p0.between(night, night + TimeDelta::hours(3)), TimeDelta::hours(3));
        assert_eq!(p2.between(night, night + TimeDelta::hours(3)), TimeDelta::zero());
    }

    #[test]
    fn escalate_reads_the_seeds_words() {
        assert_eq!(Escalate::parse("During business hours"), Some(Escalate::DuringBusinessHours));
        assert_eq!(Escalate::parse("next_business_day"), Some(Escalate::NextBusinessDay));
        assert_eq!(Escalate::parse("around-the-clock"), Some(Escalate::AroundTheClock));
        assert_eq!(Escalate::parse("sometimes"), None);
        for word in Escalate::WORDS {
            assert_eq!(Escalate::parse(word).map(Escalate::as_str), Some(word));
        }
    }

    #[test]
    fn a_time_is_shown_in_the_runbooks_zone_and_the_readers() {
        let text = slack_when(utc("2026-11-30T08:00:00Z"), zone("Europe/Berlin"));
        assert_eq!(text, "<!date^1796025600^{date_short_pretty} {time}|Mon 30 Nov 09:00 Europe/Berlin>");
    }
}
