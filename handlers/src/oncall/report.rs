//! What a shift hands over, as the handoff lists it: incidents still open
//! (with the next step nobody has done), incidents resolved during the
//! shift against their targets, pages nobody answered in time, checklist
//! runs left unfinished or flagged, pipeline failures still firing, and
//! the scheduled checklists due during the next shift.

use crate::alert::AlertGroup;
use crate::incident::Incident;
use crate::run::Run;
use crate::runbook::Runbook;
use crate::text::{duration, escape, plural, slack_date, truncate};
use chrono::{DateTime, TimeDelta, Utc};

/// Lines listed per section; the rest are counted.
const LISTED: usize = 10;
/// Slots of one checklist looked at in the next shift (an hourly check in
/// a two-week shift is "336 times", not 336 lines).
const SLOTS_COUNTED: usize = 1000;

/// What the shell loads for a handoff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShiftReport {
    /// Open incidents, newest first.
    pub open: Vec<Incident>,
    /// Incidents declared since the outgoing shift started, open or not.
    pub recent: Vec<Incident>,
    /// Checklist runs not completed.
    pub runs: Vec<Run>,
    /// Alert groups firing.
    pub alerts: Vec<AlertGroup>,
}

/// The handoff's list: `since` is when the outgoing shift started, `next`
/// the incoming one's span.
pub fn summary(
    report: &ShiftReport,
    since: DateTime<Utc>,
    next: (DateTime<Utc>, DateTime<Utc>),
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> String {
    let sections = [
        open_incidents(&report.open, now),
        resolved(&report.recent, since, runbook),
        unanswered(&report.recent, since),
        runs(&report.runs, now),
        failures(&report.alerts, now),
        due(runbook, next),
    ];
    let shown: Vec<String> = sections.into_iter().flatten().collect();
    if shown.is_empty() {
        return "No open incidents, nothing left unfinished, nothing due. 🌤".to_owned();
    }
    if report.open.is_empty() {
        return format!("No open incidents.\n{}", shown.join("\n"));
    }
    shown.join("\n")
}

/// `*Title (n)*` and at most [`LISTED`] lines, the rest counted.
fn section(title: &str, lines: Vec<String>) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let mut out = vec![format!("*{title} ({})*", lines.len())];
    out.extend(lines.iter().take(LISTED).map(|l| format!("• {l}")));
    if lines.len() > LISTED {
        out.push(format!("… and {} more", lines.len() - LISTED));
    }
    Some(out.join("\n"))
}

fn open_incidents(open: &[Incident], now: DateTime<Utc>) -> Option<String> {
    let lines = open
        .iter()
        .map(|inc| {
            let commander = inc.commander.as_ref().map(|c| format!(" · commander <@{c}>")).unwrap_or_default();
            let next = inc
                .playbook
                .iter()
                .flat_map(|p| &p.steps)
                .find(|s| s.outcome.is_none())
                .map(|s| format!(" · next: {}", escape(&truncate(&s.text, 80))))
                .unwrap_or_default();
            format!("{}{commander}{next}", crate::incident::render::list_row(inc, now))
        })
        .collect();
    section("Open incidents", lines)
}

/// ✅ within the target, ⚠️ past it.
fn against(took: TimeDelta, target: TimeDelta) -> String {
    let mark = if took <= target { "✅" } else { "⚠️" };
    format!("{} (target {}) {mark}", duration(took), duration(target))
}

fn resolved(recent: &[Incident], since: DateTime<Utc>, runbook: &Runbook) -> Option<String> {
    let lines = recent
        .iter()
        .filter_map(|inc| {
            let resolved = inc.resolved.as_ref().filter(|r| r.at >= since)?;
            let targets = runbook.targets(inc.severity);
            let acknowledged = match inc.time_to_acknowledge(runbook) {
                Some(took) => format!("acknowledged in {}", against(took, targets.respond)),
                None => "never acknowledged".to_owned(),
            };
            Some(format!(
                "{} *{}* {} · {} · {acknowledged} · resolved in {}",
                inc.severity.emoji(),
                inc.id,
                escape(&truncate(&inc.title, 60)),
                inc.severity,
                against(resolved.at - inc.declared.at, targets.resolve)
            ))
        })
        .collect();
    section("Resolved this shift", lines)
}

/// Incidents of the shift whose first page went unanswered past its
/// response target, so escalation paged someone else.
fn unanswered(recent: &[Incident], since: DateTime<Utc>) -> Option<String> {
    let lines = recent
        .iter()
        .filter(|inc| inc.declared.at >= since && inc.escalation_level > 0)
        .map(|inc| {
            let then = match &inc.acknowledged {
                Some(ack) => format!("acknowledged by <@{}> after {}", ack.user, duration(ack.at - inc.declared.at)),
                None => "still unacknowledged".to_owned(),
            };
            format!(
                "*{}* {}: escalated {} · {then}",
                inc.id,
                inc.severity,
                plural(inc.escalation_level as u64, "time", "times")
            )
        })
        .collect();
    section("Pages nobody answered in time", lines)
}

fn runs(open: &[Run], now: DateTime<Utc>) -> Option<String> {
    let lines = open
        .iter()
        .map(|run| {
            let (settled, total) = crate::checklist::progress(&run.sections);
            let flags = run.flags().len();
            let flagged =
                if flags > 0 { format!(" · 🚩 {}", plural(flags as u64, "flag", "flags")) } else { String::new() };
            let late = match run.due {
                Some(due) if due < now => format!(" · overdue by {}", duration(now - due)),
                _ => String::new(),
            };
            format!(
                "*{}* {} · {settled}/{total} steps · started {}{flagged}{late}",
                run.id,
                escape(&run.name),
                slack_date(run.started.at)
            )
        })
        .collect();
    section("Checklists left unfinished", lines)
}

fn failures(alerts: &[AlertGroup], now: DateTime<Utc>) -> Option<String> {
    let lines = alerts
        .iter()
        .filter(|g| g.firing)
        .map(|g| {
            format!(
                "*{}* {} · firing for {}",
                g.id,
                escape(&truncate(&crate::alert::render::title(g), 100)),
                duration(now - g.opened)
            )
        })
        .collect();
    section("Pipeline failures still firing", lines)
}

/// Each scheduled checklist with a slot in the next shift: when first,
/// and how many times.
fn due(runbook: &Runbook, (starts, ends): (DateTime<Utc>, DateTime<Utc>)) -> Option<String> {
    let lines = runbook
        .checklists
        .iter()
        .filter_map(|checklist| {
            let schedule = checklist.schedule.as_ref()?;
            let first = schedule.next_after(starts - TimeDelta::seconds(1)).filter(|s| *s < ends)?;
            let mut count = 1;
            let mut at = first;
            while count < SLOTS_COUNTED {
                match schedule.next_after(at) {
                    Some(next) if next < ends => {
                        count += 1;
                        at = next;
                    }
                    _ => break,
                }
            }
            let times = if count > 1 {
                format!(" ({} in the shift)", plural(count as u64, "time", "times"))
            } else {
                String::new()
            };
            Some(format!("{} · first {}{times}", escape(&checklist.name), slack_date(first)))
        })
        .collect();
    section("Checklists due next shift", lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::tests::at;
    use crate::oncall::tests::with_rotation as runbook;
    use crate::severity::Severity;
    use crate::subject::{IncidentId, Stamp};

    fn incident(id: u64, severity: Severity, declared: &str) -> Incident {
        let declared = Stamp { user: "U0ALICE".into(), at: at(declared) };
        let mut inc = Incident::new(IncidentId(id), severity, "Builds are slow".into(), declared, "C0".into(), None);
        inc.playbook = crate::checklist::start_checklist(&runbook().policy(severity).playbook);
        inc
    }

    /// Alice's week ends Monday 2026-12-07 09:00 UTC; Bob's then starts.
    const SINCE: &str = "2026-11-30T09:00:00Z";
    const NOW: &str = "2026-12-07T09:00:00Z";

    fn summarize(report: &ShiftReport) -> String {
        let next = (at(NOW), at("2026-12-14T09:00:00Z"));
        summary(report, at(SINCE), next, &runbook(), at(NOW))
    }

    #[test]
    fn open_incidents_show_their_commander_and_the_next_step_nobody_has_done() {
        let mut inc = incident(4, Severity::P2, "2026-12-07T07:00:00Z");
        inc.commander = Some("U0BOB".into());
        let text = summarize(&ShiftReport { open: vec![inc.clone()], recent: vec![inc], ..Default::default() });
        assert!(text.starts_with("*Open incidents (1)*\n• "), "{text}");
        assert!(text.contains("*INC-4*") && text.contains("commander <@U0BOB> · next: "), "{text}");
    }

    #[test]
    fn incidents_resolved_in_the_shift_are_measured_against_their_targets() {
        let mut quick = incident(1, Severity::P2, "2026-12-01T10:00:00Z");
        quick.acknowledged = Some(Stamp { user: "U0ALICE".into(), at: at("2026-12-01T10:10:00Z") });
        quick.resolved = Some(Stamp { user: "U0ALICE".into(), at: at("2026-12-01T11:00:00Z") });
        let mut slow = incident(2, Severity::P1, "2026-12-02T10:00:00Z");
        slow.resolved = Some(Stamp { user: "U0ALICE".into(), at: at("2026-12-02T20:00:00Z") });
        slow.escalation_level = 2;
        let mut before = incident(3, Severity::P3, "2026-11-29T10:00:00Z");
        before.resolved = Some(Stamp { user: "U0ALICE".into(), at: at("2026-11-29T11:00:00Z") });
        let text = summarize(&ShiftReport { recent: vec![quick, slow, before], ..Default::default() });
        assert!(text.starts_with("No open incidents.\n*Resolved this shift (2)*"), "{text}");
        assert!(
            text.contains("*INC-1* Builds are slow · P2 · acknowledged in 10 min (target 1 h) ✅ · resolved in 1 h"),
            "{text}"
        );
        assert!(text.contains("*INC-2*") && text.contains("never acknowledged") && text.contains("⚠️"), "{text}");
        assert!(!text.contains("INC-3"), "resolved before the shift: {text}");
        assert!(
            text.contains(
                "*Pages nobody answered in time (1)*\n• *INC-2* P1: escalated 2 times · still unacknowledged"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_next_shifts_scheduled_checklists_are_counted() {
        let text = summarize(&ShiftReport::default());
        assert!(text.contains("*Checklists due next shift ("), "{text}");
        assert!(text.contains("Morning Health Check · first <!date^"), "{text}");
        assert!(text.contains("(7 times in the shift)"), "daily at 09:00: {text}");
    }

    #[test]
    fn a_quiet_shift_with_nothing_scheduled_says_so() {
        let mut rb = runbook();
        rb.checklists.iter_mut().for_each(|c| c.schedule = None);
        let text = summary(&ShiftReport::default(), at(SINCE), (at(NOW), at(NOW)), &rb, at(NOW));
        assert_eq!(text, "No open incidents, nothing left unfinished, nothing due. 🌤");
    }
}
