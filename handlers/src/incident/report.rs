//! The post-incident report: summary, times against targets, severity
//! history, roles, timeline, and what was done, skipped or left of the
//! checklists. Written once, rendered as Slack mrkdwn (posted in the
//! thread) or Markdown (`opsbot report`).

use super::{Incident, TimelineEntry, TimelineEvent};
use crate::checklist::PhaseRun;
use crate::runbook::Runbook;
use crate::text::{duration, slack_date};
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt::Write;

/// Where the report is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Slack mrkdwn: `*bold*`, `<@U1>` mentions, date tokens.
    Slack,
    /// Markdown for files and terminals.
    Markdown,
}

impl Style {
    fn bold(self, text: &str) -> String {
        match self {
            Style::Slack => format!("*{text}*"),
            Style::Markdown => format!("**{text}**"),
        }
    }

    fn heading(self, text: &str) -> String {
        match self {
            Style::Slack => format!("\n*{text}*\n"),
            Style::Markdown => format!("\n## {text}\n\n"),
        }
    }

    fn user(self, id: &str) -> String {
        if id == super::BY_RULE {
            return super::mention(id);
        }
        match self {
            Style::Slack => format!("<@{id}>"),
            Style::Markdown => format!("@{id}"),
        }
    }

    fn date(self, at: DateTime<Utc>) -> String {
        match self {
            Style::Slack => slack_date(at),
            Style::Markdown => at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }

    fn text(self, text: &str) -> String {
        match self {
            Style::Slack => crate::text::escape(text),
            Style::Markdown => text.to_owned(),
        }
    }
}

impl Style {
    /// "less than", escaped where it must be.
    fn lt(self) -> &'static str {
        match self {
            Style::Slack => "&lt;",
            Style::Markdown => "<",
        }
    }
}

pub(super) fn against(s: Style, took: TimeDelta, target: TimeDelta) -> String {
    let verdict = if took < target { "met" } else { "missed" };
    format!("{} (target {} {}, {verdict})", duration(took), s.lt(), duration(target))
}

/// The report for one incident as it stands now.
pub fn report(inc: &Incident, timeline: &[TimelineEntry], runbook: &Runbook, style: Style) -> String {
    let s = style;
    let targets = runbook.targets(inc.severity);
    let mut out = String::new();
    let title = format!("{} · {} · {}", inc.id, inc.severity, inc.title);
    match s {
        Style::Slack => writeln!(out, "📋 *Incident report: {}*", s.text(&title)),
        Style::Markdown => writeln!(out, "# Incident report: {title}"),
    }
    .ok();
    writeln!(out, "{} {}", s.bold("Status:"), inc.status.as_str()).ok();
    writeln!(out, "{} {}", s.bold("Summary:"), inc.summary.as_deref().map_or("(none given)".to_owned(), |t| s.text(t)))
        .ok();

    out.push_str(&s.heading("Times"));
    writeln!(out, "- Declared {} by {}", s.date(inc.declared.at), s.user(&inc.declared.user)).ok();
    match &inc.acknowledged {
        Some(a) => writeln!(
            out,
            "- Acknowledged {} by {}: {}",
            s.date(a.at),
            s.user(&a.user),
            against(s, inc.time_to_acknowledge(runbook).unwrap_or_else(|| a.at - inc.declared.at), targets.respond)
        ),
        None => writeln!(out, "- Never acknowledged (target {} {})", s.lt(), duration(targets.respond)),
    }
    .ok();
    match &inc.resolved {
        Some(r) => writeln!(
            out,
            "- Resolved {} by {}: {}",
            s.date(r.at),
            s.user(&r.user),
            against(s, r.at - inc.declared.at, targets.resolve)
        ),
        None => writeln!(out, "- Not resolved yet (target {} {})", s.lt(), duration(targets.resolve)),
    }
    .ok();

    out.push_str(&s.heading("Severity history"));
    for e in timeline {
        match &e.event {
            TimelineEvent::Declared { severity, .. } => {
                writeln!(out, "- {} declared {severity} by {}", s.date(e.at), s.user(&e.user)).ok();
            }
            TimelineEvent::SeverityChanged { from, to } => {
                writeln!(out, "- {} {from} → {to} by {}", s.date(e.at), s.user(&e.user)).ok();
            }
            _ => {}
        }
    }

    out.push_str(&s.heading("Roles"));
    writeln!(out, "- Declared by {}", s.user(&inc.declared.user)).ok();
    writeln!(out, "- Commander: {}", inc.commander.as_deref().map_or("none assigned".to_owned(), |c| s.user(c))).ok();
    if let Some(a) = &inc.acknowledged {
        writeln!(out, "- First responder: {}", s.user(&a.user)).ok();
    }
    for e in timeline {
        if let TimelineEvent::Escalated { level, role } = &e.event {
            writeln!(out, "- Escalated to the {role} (level {}) {}", level + 1, s.date(e.at)).ok();
        }
    }

    out.push_str(&s.heading("Timeline"));
    for e in timeline {
        let who = if e.user == "opsbot" { "opsbot".to_owned() } else { s.user(&e.user) };
        writeln!(out, "- {} {who} {}", s.date(e.at), s.text(&super::render::timeline_event_plain(&e.event))).ok();
    }

    checklist_section(&mut out, s, "Playbook", &inc.playbook);
    checklist_section(&mut out, s, "Post-incident checklist", &inc.post_incident);
    out
}

fn checklist_section(out: &mut String, s: Style, name: &str, phases: &[PhaseRun]) {
    if phases.is_empty() {
        return;
    }
    let steps: Vec<_> = phases.iter().flat_map(|p| p.steps.iter().map(move |st| (p, st))).collect();
    let done: Vec<_> = steps.iter().filter(|(_, st)| st.outcome.as_ref().is_some_and(|o| o.done)).collect();
    let skipped: Vec<_> = steps.iter().filter(|(_, st)| st.outcome.as_ref().is_some_and(|o| !o.done)).collect();
    let left: Vec<_> = steps.iter().filter(|(_, st)| st.outcome.is_none()).collect();
    out.push_str(&s.heading(&format!(
        "{name}: {} done, {} skipped, {} left of {}",
        done.len(),
        skipped.len(),
        left.len(),
        steps.len()
    )));
    for (label, list) in [("Done", &done), ("Skipped", &skipped), ("Left", &left)] {
        for (phase, step) in list.iter() {
            let by =
                step.outcome.as_ref().map(|o| format!(" ({} {})", s.user(&o.by), s.date(o.at))).unwrap_or_default();
            writeln!(out, "- {label}: {} / {}{by}", s.text(&phase.name), s.text(&step.text)).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checklist::start_checklist;
    use crate::incident::{IncidentChecklist, IncidentId, Stamp};
    use crate::Severity;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn resolved_p0(ack_min: i64, resolve_min: i64) -> (Incident, Vec<TimelineEntry>) {
        let rb = Runbook::seed();
        let mut inc = Incident::new(
            IncidentId(7),
            Severity::P0,
            "API down".into(),
            Stamp { user: "U1".into(), at: at(0) },
            "C1".into(),
            None,
        );
        inc.playbook = start_checklist(&rb.policy(Severity::P0).playbook);
        let mut timeline = vec![TimelineEntry {
            at: at(0),
            user: "U1".into(),
            event: TimelineEvent::Declared { severity: Severity::P0, title: "API down".into() },
        }];
        timeline.push(inc.settle_step(IncidentChecklist::Playbook, 0, 0, true, "U2", at(1)).unwrap());
        timeline.push(inc.settle_step(IncidentChecklist::Playbook, 0, 1, false, "U2", at(2)).unwrap());
        timeline.push(inc.acknowledge("U2", at(ack_min)).unwrap());
        timeline.push(inc.resolve("U2", Some("rolled back v1.4.3".into()), at(resolve_min)).unwrap());
        (inc, timeline)
    }

    #[test]
    fn report_has_times_against_targets_roles_timeline_and_steps() {
        let (inc, timeline) = resolved_p0(3, 70);
        let md = report(&inc, &timeline, &Runbook::seed(), Style::Markdown);
        assert!(md.starts_with("# Incident report: INC-7 · P0 · API down"), "{md}");
        assert!(md.contains("**Summary:** rolled back v1.4.3"), "{md}");
        assert!(md.contains("Acknowledged 2026-11-27 09:03 UTC by @U2: 3 min (target < 5 min, met)"), "{md}");
        assert!(md.contains("Resolved 2026-11-27 10:10 UTC by @U2: 1 h 10 min (target < 1 h, missed)"), "{md}");
        assert!(md.contains("## Severity history") && md.contains("declared P0 by @U1"), "{md}");
        let total = crate::checklist::progress(&inc.playbook).1;
        assert!(md.contains(&format!("## Playbook: 1 done, 1 skipped, {} left of {total}", total - 2)), "{md}");
        assert!(md.contains("- Skipped: "), "{md}");
        let slack = report(&inc, &timeline, &Runbook::seed(), Style::Slack);
        assert!(slack.contains("<@U2>") && slack.contains("<!date^"), "{slack}");
    }
}
