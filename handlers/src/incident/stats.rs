//! `/incident stats` from tallies rather than from the incidents: what each
//! incident counts for on the day it was declared (declared, resolved, its
//! times to acknowledge and to resolve, bucketed), kept up to date by the
//! commit of every change to it, so that the answer reads 30 small tallies
//! however many incidents are stored.

use super::report::{against, Style};
use super::Incident;
use crate::runbook::Runbook;
use crate::severity::Severity;
use crate::text::duration;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One count of a declaration day's tally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Count {
    Declared(Severity),
    Resolved(Severity),
    /// Acknowledged this long after being declared, on the severity's
    /// clock (as its response target counts): the start of its bucket, in
    /// seconds.
    Acknowledged(Severity, i64),
    /// Resolved this long after being declared: the start of its bucket,
    /// in seconds.
    Fixed(Severity, i64),
}

impl Count {
    /// As stored: a hash field such as `P1:declared` or `P1:ack:300`.
    pub fn field(&self) -> String {
        match self {
            Count::Declared(s) => format!("{s}:declared"),
            Count::Resolved(s) => format!("{s}:resolved"),
            Count::Acknowledged(s, secs) => format!("{s}:ack:{secs}"),
            Count::Fixed(s, secs) => format!("{s}:fix:{secs}"),
        }
    }

    /// A field read back from [`Count::field`]; `None` for anything else.
    pub fn parse(field: &str) -> Option<Count> {
        let mut parts = field.split(':');
        let severity = Severity::parse(parts.next()?)?;
        let count = match (parts.next()?, parts.next()) {
            ("declared", None) => Count::Declared(severity),
            ("resolved", None) => Count::Resolved(severity),
            ("ack", Some(secs)) => Count::Acknowledged(severity, secs.parse().ok()?),
            ("fix", Some(secs)) => Count::Fixed(severity, secs.parse().ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some(count)
    }
}

/// The bucket a duration is counted in, by its start in seconds: to the
/// second under a minute, the minute under an hour, five minutes under a
/// day, the hour beyond. Buckets keep a day's tally small whatever the
/// number of incidents, and the runbook's targets (whole minutes, hours)
/// fall on their edges, so "met" or "missed" is what it would be exactly.
pub fn bucket(d: TimeDelta) -> i64 {
    let secs = d.num_seconds().max(0);
    let step = match secs {
        0..60 => 1,
        60..3_600 => 60,
        3_600..86_400 => 300,
        _ => 3_600,
    };
    secs - secs % step
}

/// The day an incident is tallied on: the UTC day it was declared.
pub fn day(incident: &Incident) -> NaiveDate {
    incident.declared.at.date_naive()
}

/// What an incident counts for, as it stands.
pub fn counts(incident: &Incident, runbook: &Runbook) -> Vec<Count> {
    let severity = incident.severity;
    let mut counts = vec![Count::Declared(severity)];
    if let Some(ack) = incident.time_to_acknowledge(runbook) {
        counts.push(Count::Acknowledged(severity, bucket(ack)));
    }
    if let Some(resolved) = &incident.resolved {
        counts.push(Count::Resolved(severity));
        counts.push(Count::Fixed(severity, bucket(resolved.at - incident.declared.at)));
    }
    counts
}

/// What a day's incidents count for in all, as the commits of every change
/// to them leave its tally: field → count. `opsbot redis rebuild-tallies`
/// writes it over a tally that lacks incidents stored before tallies were.
pub fn day_tally<'a>(incidents: impl IntoIterator<Item = &'a Incident>, runbook: &Runbook) -> BTreeMap<String, i64> {
    let mut tally = BTreeMap::new();
    for incident in incidents {
        for count in counts(incident, runbook) {
            *tally.entry(count.field()).or_insert(0) += 1;
        }
    }
    tally
}

/// The declarations a day's tally counts: from its midnight (UTC) to the
/// next, that one excluded.
pub fn day_span(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
    (midnight, midnight + TimeDelta::days(1))
}

/// What a commit adds to a declaration day's tally: field → increment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub day: NaiveDate,
    pub deltas: Vec<(String, i64)>,
}

/// The change to the tally when an incident that counted for `before`
/// (nothing when new) is committed as `after`: what it counts for now less
/// what it counted for. `None` when that is nothing (most changes: an
/// update, a step ticked), so the commit writes no tally at all.
pub fn tally(before: &[Count], after: &Incident, runbook: &Runbook) -> Option<Tally> {
    let now = counts(after, runbook);
    let mut deltas: Vec<(String, i64)> = Vec::new();
    for added in now.iter().filter(|c| !before.contains(c)) {
        deltas.push((added.field(), 1));
    }
    for removed in before.iter().filter(|c| !now.contains(c)) {
        deltas.push((removed.field(), -1));
    }
    (!deltas.is_empty()).then(|| Tally { day: day(after), deltas })
}

/// The days `/incident stats` reads: today (UTC) and the `days - 1` before.
pub fn window(now: DateTime<Utc>, days: i64) -> Vec<NaiveDate> {
    let today = now.date_naive();
    (0..days.max(1)).map(|back| today - TimeDelta::days(back)).collect()
}

/// The window's tallies summed, as the store reads them: field → count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tallies {
    /// The first day of the window.
    pub since: Option<NaiveDate>,
    pub counts: BTreeMap<String, i64>,
}

impl Tallies {
    fn count(&self, count: Count) -> i64 {
        self.counts.get(&count.field()).copied().unwrap_or(0).max(0)
    }

    /// A histogram of bucketed durations: bucket start (s) → how many.
    fn histogram(&self, pick: impl Fn(Count) -> Option<i64>) -> BTreeMap<i64, i64> {
        let mut histogram = BTreeMap::new();
        for (field, n) in &self.counts {
            if let Some(secs) = Count::parse(field).and_then(&pick) {
                *histogram.entry(secs).or_insert(0) += (*n).max(0);
            }
        }
        histogram
    }
}

/// The median of a histogram, with the two middle values averaged when
/// their number is even; `None` when it is empty.
fn median(histogram: &BTreeMap<i64, i64>) -> Option<TimeDelta> {
    let total: i64 = histogram.values().sum();
    if total == 0 {
        return None;
    }
    let nth = |rank: i64| {
        let mut seen = 0;
        histogram.iter().find_map(|(secs, n)| {
            seen += n;
            (seen > rank).then_some(*secs)
        })
    };
    let (low, high) = (nth((total - 1) / 2)?, nth(total / 2)?);
    Some(TimeDelta::seconds((low + high) / 2))
}

/// `/incident stats`: incidents declared in the window's days per
/// severity, how many are still open, and the median times to acknowledge
/// and resolve against the targets.
pub fn render(tallies: &Tallies, runbook: &Runbook, mttr_target: TimeDelta, days: i64) -> String {
    let since = tallies.since.map(|d| format!(" since {}", d.format("%Y-%m-%d"))).unwrap_or_default();
    let mut out = format!("📊 *Incidents declared in the last {days} days*{since} (UTC days)\n");
    let declared: i64 = Severity::ALL.iter().map(|s| tallies.count(Count::Declared(*s))).sum();
    if declared == 0 {
        out.push_str("None. 🎉");
        return out;
    }
    for severity in Severity::ALL {
        let of = tallies.count(Count::Declared(severity));
        if of == 0 {
            continue;
        }
        let open = (of - tallies.count(Count::Resolved(severity))).max(0);
        let acks = tallies.histogram(|c| match c {
            Count::Acknowledged(s, secs) if s == severity => Some(secs),
            _ => None,
        });
        let fixes = tallies.histogram(|c| match c {
            Count::Fixed(s, secs) if s == severity => Some(secs),
            _ => None,
        });
        let targets = runbook.targets(severity);
        writeln!(
            out,
            "• {} {severity}: {of} ({open} open) · median to acknowledge {} · median to resolve {}",
            severity.emoji(),
            median(&acks).map_or("—".to_owned(), |m| against(Style::Slack, m, targets.respond)),
            median(&fixes).map_or("—".to_owned(), |m| against(Style::Slack, m, targets.resolve)),
        )
        .ok();
    }
    let all_fixes = tallies.histogram(|c| match c {
        Count::Fixed(_, secs) => Some(secs),
        _ => None,
    });
    if let Some(m) = median(&all_fixes) {
        let verdict = if m < mttr_target { "within" } else { "over" };
        writeln!(
            out,
            "Median time to recovery over all {} resolved: {} — {verdict} the runbook's KPI of &lt; {}.",
            all_fixes.values().sum::<i64>(),
            duration(m),
            duration(mttr_target)
        )
        .ok();
    }
    out.push_str("_Times to the second under a minute, the minute under an hour, 5 min under a day, the hour beyond._");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checklist::start_checklist;
    use crate::incident::{IncidentId, Stamp};
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn declared(severity: Severity) -> Incident {
        let mut inc = Incident::new(
            IncidentId(7),
            severity,
            "API down".into(),
            Stamp { user: "U1".into(), at: at(0) },
            "C1".into(),
            None,
        );
        inc.playbook = start_checklist(&Runbook::seed().policy(severity).playbook);
        inc
    }

    fn resolved_p0(ack_min: i64, resolve_min: i64) -> Incident {
        let mut inc = declared(Severity::P0);
        inc.acknowledge("U2", at(ack_min)).unwrap();
        inc.resolve("U2", None, at(resolve_min)).unwrap();
        inc
    }

    /// The window's tallies as the store would sum them after each
    /// incident was committed once, new.
    fn tallied(incidents: &[Incident]) -> Tallies {
        let mut tallies = Tallies { since: Some(at(0).date_naive()), counts: BTreeMap::new() };
        for inc in incidents {
            for (field, n) in tally(&[], inc, &Runbook::seed()).unwrap().deltas {
                *tallies.counts.entry(field).or_insert(0) += n;
            }
        }
        tallies
    }

    #[test]
    fn every_count_reads_back_from_its_field() {
        for count in [
            Count::Declared(Severity::P0),
            Count::Resolved(Severity::P3),
            Count::Acknowledged(Severity::P1, 300),
            Count::Fixed(Severity::P2, 86_400),
        ] {
            assert_eq!(Count::parse(&count.field()), Some(count));
        }
        assert_eq!(Count::parse("P9:declared"), None);
        assert_eq!(Count::parse("P1:ack"), None);
        assert_eq!(Count::parse("P1:declared:3"), None);
    }

    #[test]
    fn buckets_keep_seconds_then_minutes_then_five_minutes_then_hours() {
        assert_eq!(bucket(TimeDelta::seconds(42)), 42);
        assert_eq!(bucket(TimeDelta::seconds(4 * 60 + 59)), 240);
        assert_eq!(bucket(TimeDelta::minutes(73)), 70 * 60);
        assert_eq!(bucket(TimeDelta::hours(30) + TimeDelta::minutes(59)), 30 * 3600);
        assert_eq!(bucket(TimeDelta::seconds(-5)), 0);
    }

    #[test]
    fn a_change_tallies_what_it_counts_for_now_less_what_it_counted_for() {
        let rb = Runbook::seed();
        let mut inc = declared(Severity::P2);
        let new = tally(&[], &inc, &rb).unwrap();
        assert_eq!(new.day, at(0).date_naive());
        assert_eq!(new.deltas, vec![("P2:declared".to_owned(), 1)]);
        let before = counts(&inc, &rb);
        inc.post_update("U1", "looking".into(), at(3)).unwrap();
        assert_eq!(tally(&before, &inc, &rb), None, "an update changes no count");
        inc.severity = Severity::P0;
        let moved = tally(&before, &inc, &rb).unwrap();
        assert_eq!(moved.deltas, vec![("P0:declared".to_owned(), 1), ("P2:declared".to_owned(), -1)]);
        let before = counts(&inc, &rb);
        inc.resolve("U1", None, at(42)).unwrap();
        let fixed = tally(&before, &inc, &rb).unwrap();
        assert_eq!(fixed.deltas, vec![("P0:resolved".to_owned(), 1), ("P0:fix:2520".to_owned(), 1)]);
    }

    #[test]
    fn stats_give_medians_against_targets_and_the_mttr_kpi() {
        let rb = Runbook::seed();
        let mut incidents: Vec<Incident> =
            [(2, 20), (4, 40), (10, 25)].iter().map(|(a, r)| resolved_p0(*a, *r)).collect();
        incidents.push(declared(Severity::P1));
        let text = render(&tallied(&incidents), &rb, TimeDelta::minutes(30), 30);
        assert!(text.contains("in the last 30 days* since 2026-11-27 (UTC days)"), "{text}");
        assert!(text.contains("P0: 3 (0 open)"), "{text}");
        assert!(text.contains("median to acknowledge 4 min (target &lt; 5 min, met)"), "{text}");
        assert!(text.contains("median to resolve 25 min (target &lt; 1 h, met)"), "{text}");
        assert!(text.contains("P1: 1 (1 open) · median to acknowledge — · median to resolve —"), "{text}");
        assert!(
            text.contains(
                "Median time to recovery over all 3 resolved: 25 min — within the runbook's KPI of &lt; 30 min"
            ),
            "{text}"
        );
        assert!(render(&Tallies::default(), &rb, TimeDelta::minutes(30), 30).contains("None"));
    }

    #[test]
    fn an_even_number_of_times_has_the_middle_two_averaged() {
        let rb = Runbook::seed();
        let incidents: Vec<Incident> = [(2, 20), (4, 40)].iter().map(|(a, r)| resolved_p0(*a, *r)).collect();
        let text = render(&tallied(&incidents), &rb, TimeDelta::minutes(30), 30);
        assert!(text.contains("median to acknowledge 3 min"), "{text}");
        assert!(text.contains("median to resolve 30 min (target &lt; 1 h, met)"), "{text}");
    }

    #[test]
    fn a_day_tally_is_what_the_commits_of_every_change_add_up_to() {
        let rb = Runbook::seed();
        let mut added: BTreeMap<String, i64> = BTreeMap::new();
        let mut commit = |before: &[Count], after: &Incident| {
            for (field, n) in tally(before, after, &rb).map(|t| t.deltas).unwrap_or_default() {
                *added.entry(field).or_insert(0) += n;
            }
        };
        let mut moved = declared(Severity::P2);
        commit(&[], &moved);
        let before = counts(&moved, &rb);
        moved.acknowledge("U2", at(7)).unwrap();
        commit(&before, &moved);
        let before = counts(&moved, &rb);
        moved.severity = Severity::P1;
        commit(&before, &moved);
        let resolved = resolved_p0(3, 50);
        commit(&[], &resolved);
        let open = declared(Severity::P3);
        commit(&[], &open);

        added.retain(|_, n| *n != 0);
        assert_eq!(day_tally([&moved, &resolved, &open], &rb), added);
        assert!(day_tally([], &rb).is_empty());
    }

    #[test]
    fn a_day_spans_its_utc_midnight_to_the_next() {
        let (from, to) = day_span(at(0).date_naive());
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap());
        assert_eq!(to, Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap());
    }

    #[test]
    fn the_window_is_today_and_the_days_before() {
        let days = window(at(0), 30);
        assert_eq!(days.len(), 30);
        assert_eq!(days[0], at(0).date_naive());
        assert_eq!(days[29], at(0).date_naive() - TimeDelta::days(29));
    }
}
