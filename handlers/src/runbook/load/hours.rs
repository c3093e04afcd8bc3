//! Reading `business_hours`, `holidays`, and a severity's `escalate` and
//! `also_page_after`, with every mistake at its line and column.
//!
//! ```yaml
//! business_hours:
//!   mon-fri: 09:00-17:00
//!   sat: 10:00-12:00, 13:00-15:00
//!   sun: closed
//! holidays:
//!   - 2026-12-25 Christmas Day
//! ```
//!
//! A day is written `mon` (or `monday`), a range `mon-fri` (which may wrap,
//! `fri-mon`), or several `sat, sun`; a day left out, `closed` or empty has
//! no hours. Hours are `HH:MM-HH:MM` on the same day, several with commas.

use super::{closest, duration_for, Check, Key, List, Map};
use crate::runbook::hours::{BusinessHours, Escalate, Holiday, Interval, LatePage};
use crate::severity::Severity;
use chrono::{NaiveDate, Weekday};
use serde_saphyr::{Location, Spanned};
use std::collections::HashSet;

const DAYS: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Mon),
    ("tue", "tuesday", Weekday::Tue),
    ("wed", "wednesday", Weekday::Wed),
    ("thu", "thursday", Weekday::Thu),
    ("fri", "friday", Weekday::Fri),
    ("sat", "saturday", Weekday::Sat),
    ("sun", "sunday", Weekday::Sun),
];

/// How a day is written.
const DAY_HINT: &str = "a weekday such as `mon`, a range such as `mon-fri`, or several such as `sat, sun`";

/// `mon` or `monday`, any case.
fn weekday(word: &str) -> Option<Weekday> {
    let word = word.trim().to_lowercase();
    DAYS.iter().find(|(short, long, _)| word == *short || word == *long).map(|(_, _, day)| *day)
}

/// `mon-fri`, `sat, sun`, `fri-mon`: the weekdays a key names.
fn weekdays(key: &str, what: &str) -> Result<Vec<Weekday>, String> {
    let mut days = Vec::new();
    for part in key.split(',').map(str::trim) {
        let unknown = |word: &str| {
            let hint = closest(word, DAYS.iter().map(|(short, _, _)| *short))
                .map(|near| format!("did you mean `{near}`?"))
                .unwrap_or_else(|| format!("expected {DAY_HINT}"));
            format!("unknown day `{word}` in {what} ({hint})")
        };
        match part.split_once('-') {
            Some((from, to)) => {
                let from = weekday(from).ok_or_else(|| unknown(from.trim()))?;
                let to = weekday(to).ok_or_else(|| unknown(to.trim()))?;
                let mut day = from;
                loop {
                    days.push(day);
                    if day == to {
                        break;
                    }
                    day = day.succ();
                }
            }
            None => days.push(weekday(part).ok_or_else(|| unknown(part))?),
        }
    }
    Ok(days)
}

/// `09:00-17:00`, `09:00-12:00, 13:00-17:00`, or `closed`/`none`/empty:
/// the day's intervals, and those that run past midnight into the next
/// day (`22:00-06:00`).
type DayHours = (Vec<Interval>, Vec<Interval>);

fn intervals(value: Option<&str>) -> Result<DayHours, String> {
    let value = value.map(str::trim).unwrap_or("");
    let (mut today, mut tomorrow) = (Vec::new(), Vec::new());
    if value.is_empty() || ["closed", "none", "-"].contains(&value.to_lowercase().as_str()) {
        return Ok((today, tomorrow));
    }
    for part in value.split(',') {
        let (interval, spill) = Interval::parse_overnight(part)?;
        today.push(interval);
        tomorrow.extend(spill);
    }
    Ok((today, tomorrow))
}

/// `2026-12-25 Christmas Day`: the date, then a name if any.
fn holiday(text: &str) -> Result<Holiday, String> {
    let text = text.trim();
    let (date, name) = match text.split_once(char::is_whitespace) {
        Some((date, name)) => (date, Some(name.trim().to_owned()).filter(|n| !n.is_empty())),
        None => (text, None),
    };
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
        format!("bad holiday `{text}`: a date and an optional name, such as `2026-12-25 Christmas Day`")
    })?;
    Ok(Holiday { date, name })
}

impl Check {
    /// `business_hours` and `holidays`, top-level and optional: without
    /// `business_hours` the week is Monday to Friday, 09:00 to 17:00.
    pub(super) fn business_hours(
        &mut self,
        hours: &Key<Map<String>>,
        holidays: &Key<List<String>>,
        top: &Location,
    ) -> Option<BusinessHours> {
        let mut ok = true;
        let mut days = Vec::new();
        if let Some(list) = holidays.as_ref().and_then(|k| k.value.as_ref()) {
            let mut seen: HashSet<NaiveDate> = HashSet::new();
            for item in list {
                match holiday(item.value.as_deref().unwrap_or("")) {
                    Ok(day) if !seen.insert(day.date) => {
                        self.error(&item.referenced, format!("holiday {} is listed twice", day.date));
                        ok = false;
                    }
                    Ok(day) => days.push(day),
                    Err(why) => {
                        self.error(&item.referenced, why);
                        ok = false;
                    }
                }
            }
        }
        let week = match hours {
            None => {
                let default = BusinessHours::default();
                DAYS.map(|(_, _, day)| default.day(day).to_vec())
            }
            Some(Spanned { value: None, referenced, .. }) => {
                self.error(
                    referenced,
                    "`business_hours` is empty: give the team's hours per weekday, such as `mon-fri: 09:00-17:00`, \
                     or leave the key out for those",
                );
                return None;
            }
            // A mistake in it is reported already; going on with an empty
            // week would only add "no hours".
            Some(Spanned { value: Some(map), .. }) => self.week(map, "`business_hours`")?,
        };
        let place = hours.as_ref().map_or(top, |k| &k.referenced);
        match BusinessHours::new(week, days) {
            Ok(hours) => ok.then_some(hours),
            Err(why) => {
                self.error(place, format!("`business_hours`: {why}"));
                None
            }
        }
    }

    /// Hours per weekday, as `business_hours` and a layer's `only` write
    /// them; `None` when a mistake was reported.
    fn week(&mut self, map: &Map<String>, what: &str) -> Option<[Vec<Interval>; 7]> {
        let mut ok = true;
        let mut week: [Vec<Interval>; 7] = Default::default();
        let mut given: [Option<usize>; 7] = [None; 7];
        for (key, value) in super::in_file_order(map) {
            let at = &key.referenced;
            let named = match weekdays(&key.value, what) {
                Ok(named) => named,
                Err(why) => {
                    self.error(at, why);
                    ok = false;
                    continue;
                }
            };
            let (hours, spill) = match intervals(value.value.as_deref()) {
                Ok(hours) => hours,
                Err(why) => {
                    self.error(&value.referenced, format!("bad hours for `{}`: {why}", key.value.trim()));
                    ok = false;
                    continue;
                }
            };
            for day in named {
                let i = day.num_days_from_monday() as usize;
                if let Some(line) = given[i] {
                    let name = crate::runbook::hours::day_name(day);
                    self.error(at, format!("{name}'s hours are given twice (also on line {line})"));
                    ok = false;
                }
                given[i] = Some(at.line() as usize);
                week[i].extend_from_slice(&hours);
                week[(i + 1) % 7].extend_from_slice(&spill);
            }
        }
        ok.then_some(week)
    }

    /// A rotation layer's `only`: when it is on. Holidays are no break
    /// for it: a layer for nights is on on Christmas night too.
    pub(super) fn hours_of_layer(&mut self, map: &Map<String>, at: &Location, what: &str) -> Option<BusinessHours> {
        let week = self.week(map, what)?;
        match BusinessHours::new(week, Vec::new()) {
            Ok(hours) => Some(hours),
            Err(why) => {
                self.error(at, format!("{what}: {why}"));
                None
            }
        }
    }

    /// A severity's `escalate`: the seed's sentence for it when left out.
    pub(super) fn escalate(&mut self, key: &Key<String>, severity: Severity) -> Option<Escalate> {
        let Some(Spanned { value: Some(text), referenced, .. }) = key else {
            return Some(Escalate::seed(severity));
        };
        let found = Escalate::parse(text);
        if found.is_none() {
            let words = Escalate::WORDS.map(|w| format!("`{w}`")).join(", ");
            self.error(
                referenced,
                format!("unknown `escalate` `{}` of {severity} (expected one of: {words})", text.trim()),
            );
        }
        found
    }

    /// A severity's `also_page_after`: role ids, each with how long after
    /// declaration it is paged if nobody has acknowledged.
    pub(super) fn also_page_after(
        &mut self,
        key: &Key<Map<String>>,
        severity: Severity,
        roles: &HashSet<String>,
    ) -> Option<Vec<LatePage>> {
        let Some(Spanned { value: Some(map), .. }) = key else {
            return Some(Vec::new());
        };
        let mut pages = Some(Vec::new());
        for (role, after) in super::in_file_order(map) {
            let id = role.value.trim();
            let whose = format!("{severity} `also_page_after`");
            self.role_ref(id, &role.referenced, roles, &whose);
            let after = match after.value.as_deref() {
                Some(text) => duration_for(text, &format!(" for `{id}` in {whose}"))
                    .map_err(|why| self.error(&after.referenced, why))
                    .ok(),
                None => {
                    self.error(
                        &role.referenced,
                        format!("`{id}` in {whose} has no delay: write how long after declaring, such as `30m`"),
                    );
                    None
                }
            };
            match (after, pages.as_mut()) {
                (Some(after), Some(all)) => all.push(LatePage { role: id.to_owned(), after }),
                _ => pages = None,
            }
        }
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{parse, Runbook};
    use chrono::TimeDelta;

    /// The seed runbook with `from` replaced by `to` (once; it must be there).
    fn seed_with(from: &str, to: &str) -> String {
        assert_eq!(Runbook::SEED_YAML.matches(from).count(), 1, "{from:?}");
        Runbook::SEED_YAML.replacen(from, to, 1)
    }

    /// The 1-based line of the first line of `text` holding `needle`, or
    /// being it when `needle` ends in a newline.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle) || l == needle.trim_end_matches('\n')).expect(needle) + 1
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text).expect_err("the runbook should be refused").iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_seed_escalates_as_its_sentences_say() {
        let rb = Runbook::seed();
        let escalate: Vec<Escalate> = rb.severities.iter().map(|s| s.escalate).collect();
        assert_eq!(
            escalate,
            [
                Escalate::AroundTheClock,
                Escalate::AroundTheClock,
                Escalate::DuringBusinessHours,
                Escalate::NextBusinessDay
            ]
        );
        assert_eq!(
            rb.policy(Severity::P1).also_page_after,
            vec![LatePage { role: "on-call-engineer".into(), after: TimeDelta::minutes(30) }]
        );
        assert_eq!(rb.business_hours, BusinessHours::default());
        // A file that leaves it all out gets the same.
        let bare = Runbook::SEED_YAML
            .lines()
            .filter(|l| !l.trim_start().starts_with("escalate:"))
            .filter(|l| {
                !l.starts_with("business_hours:") && !l.starts_with("  mon-fri:") && !l.starts_with("  sat, sun:")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let rb = parse(&bare).unwrap();
        assert_eq!(rb.business_hours, BusinessHours::default());
        assert_eq!(rb.policy(Severity::P3).escalate, Escalate::NextBusinessDay);
    }

    #[test]
    fn hours_and_holidays_are_read_per_weekday() {
        let text = seed_with(
            "business_hours:\n  mon-fri: 09:00-17:00\n  sat, sun: closed\n",
            "business_hours:\n  mon-thu: 08:00-12:00, 13:00-16:30\n  friday: 08:00-14:00\n\
             holidays:\n  - 2026-12-25 Christmas Day\n  - 2026-12-24\n",
        )
        .replace("holidays: []", "");
        let rb = parse(&text).unwrap();
        let h = &rb.business_hours;
        assert_eq!(h.day(Weekday::Tue).len(), 2);
        assert_eq!(h.day(Weekday::Fri)[0].to_string(), "08:00-14:00");
        assert!(h.day(Weekday::Sat).is_empty());
        assert_eq!(h.holidays()[0].date.to_string(), "2026-12-24", "sorted");
        assert_eq!(h.holidays()[1].name.as_deref(), Some("Christmas Day"));
    }

    #[test]
    fn mistakes_in_hours_holidays_and_policies_are_reported_where_they_are() {
        let text = seed_with(
            "business_hours:\n  mon-fri: 09:00-17:00\n  sat, sun: closed\n",
            "business_hours:\n  mon-fri: 09:00-17:00\n  fri: 22:00-06:00\n  wed: 10:00-12:00\n  sun-mun: 09:00-10:00\n\
             holidays:\n  - 2026-12-25 Christmas Day\n  - 25.12.2026\n  - 2026-12-25\n",
        )
        .replace("holidays: []", "")
        .replace("    escalate: during business hours", "    escalate: sometimes")
        .replace("      on-call-engineer: 30m", "      on-call-enginer: half an hour");
        let errors = errors(&text);
        let at = |needle: &str, column: usize, message: &str| format!("{}:{column}: {message}", line_of(&text, needle));
        for expected in [
            at("escalate: sometimes", 15, "unknown `escalate` `sometimes` of P2 (expected one of: `around the clock`, `during business hours`, `next business day`)"),
            at("on-call-enginer:", 7, "P1 `also_page_after` names role `on-call-enginer`, which is not defined (did you mean `on-call-engineer`?)"),
            at("fri: 22:00-06:00", 3, "Friday's hours are given twice (also on line"),
            at("wed: 10:00-12:00", 3, "Wednesday's hours are given twice (also on line"),
            at("sun-mun:", 3, "unknown day `mun` in `business_hours` (did you mean `mon`?)"),
            at("25.12.2026", 5, "bad holiday `25.12.2026`: a date and an optional name, such as `2026-12-25 Christmas Day`"),
            at("  - 2026-12-25\n", 5, "holiday 2026-12-25 is listed twice"),
        ] {
            assert!(errors.iter().any(|e| e.starts_with(&expected)), "{expected}\nnot in {errors:#?}");
        }
        assert!(errors.iter().any(|e| e.contains("`half an hour`")), "{errors:#?}");
    }

    #[test]
    fn a_week_without_hours_is_refused() {
        let text = seed_with("  mon-fri: 09:00-17:00\n", "  mon-fri: closed\n");
        let errors = errors(&text);
        let line = line_of(&text, "mon-fri: closed");
        assert_eq!(
            errors,
            [format!("{line}:3: `business_hours`: no day has any hours: business hours need at least one open interval in the week")]
        );
    }

    #[test]
    fn hours_past_midnight_run_into_the_next_day() {
        let text = seed_with(
            "business_hours:\n  mon-fri: 09:00-17:00\n  sat, sun: closed\n",
            "business_hours:\n  mon-thu: 09:00-17:00\n  fri: 09:00-17:00, 22:00-02:00\n  sun: 20:00-00:00\n",
        );
        let rb = parse(&text).unwrap();
        let hours = &rb.business_hours;
        let shown = |day| hours.day(day).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown(Weekday::Fri), ["09:00-17:00", "22:00-24:00"]);
        assert_eq!(shown(Weekday::Sat), ["00:00-02:00"]);
        assert_eq!(shown(Weekday::Sun), ["20:00-24:00"]);
        assert!(shown(Weekday::Mon) == ["09:00-17:00"], "Sunday's ends at midnight");
    }

    #[test]
    fn days_and_ranges() {
        use Weekday::*;
        assert_eq!(weekdays("mon-fri", "`business_hours`"), Ok(vec![Mon, Tue, Wed, Thu, Fri]));
        assert_eq!(weekdays("Sat, sunday", "`business_hours`"), Ok(vec![Sat, Sun]));
        assert_eq!(weekdays("fri-mon", "`business_hours`"), Ok(vec![Fri, Sat, Sun, Mon]));
        assert!(weekdays("mon-fir", "`business_hours`").unwrap_err().contains("did you mean `fri`?"));
        assert!(weekdays("weekdays", "`business_hours`").unwrap_err().contains("unknown day `weekdays`"));
    }

    #[test]
    fn hours_and_holidays() {
        assert_eq!(intervals(Some("closed")), Ok((Vec::new(), Vec::new())));
        assert_eq!(intervals(None), Ok((Vec::new(), Vec::new())));
        assert_eq!(intervals(Some("09:00-12:00, 13:00-17:00")).unwrap().0.len(), 2);
        assert!(intervals(Some("9 to 5")).is_err());
        let h = holiday("2026-12-25 Christmas Day").unwrap();
        assert_eq!((h.date.to_string(), h.name.as_deref()), ("2026-12-25".into(), Some("Christmas Day")));
        assert_eq!(holiday("2027-01-01").unwrap().name, None);
        assert!(holiday("25.12.2026").unwrap_err().contains("such as `2026-12-25 Christmas Day`"));
    }
}
