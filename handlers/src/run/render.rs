//! How checklist runs look in Slack: the header, the step messages, the
//! flag modal, `/runbook list` and `/runbook history`.

use super::Run;
use crate::blocks::{SlackMessage, HEADER_MAX};
use crate::checklist::{progress, ChecklistView, StepRun};
use crate::codec::{Button, RunButton};
use crate::decision::Modal;
use crate::pipeline::checks::Fetched;
use crate::runbook::Runbook;
use crate::subject::{ChecklistPart, RunMessage};
use crate::text::{duration, escape, slack_date, truncate};
use chrono::{DateTime, Utc};
use serde_json::json;

/// The message `which` of a run, as it is now. Steps with a check show
/// the figure the shell fetched for it (`checks`), or nothing when it was
/// not asked to fetch any.
pub fn message(
    run: &Run,
    which: RunMessage,
    runbook: &Runbook,
    now: DateTime<Utc>,
    checks: Option<&Fetched>,
) -> SlackMessage {
    match which {
        RunMessage::Header => header(run, runbook, now),
        RunMessage::Steps(part) => steps(run, part, checks.map(|fetched| (fetched, runbook, now))),
    }
}

/// `/runbook list`: each checklist, how often it runs, when next (in the
/// runbook's zone and, through Slack's date token, the reader's own), how
/// long it takes and who is responsible.
pub fn list(runbook: &Runbook, now: DateTime<Utc>) -> String {
    let next: std::collections::HashMap<&str, DateTime<Utc>> =
        crate::schedule::upcoming(runbook, now).into_iter().map(|(c, at)| (c.id.as_str(), at)).collect();
    let mut scheduled = Vec::new();
    let mut on_demand = Vec::new();
    for c in &runbook.checklists {
        let mut line = format!("• *{}* `{}`", escape(&c.name), c.id);
        if let Some(d) = c.duration {
            line.push_str(&format!(" · {}", duration(d)));
        }
        if let Some(role) = c.responsible.as_deref().and_then(|r| runbook.role(r)) {
            line.push_str(&format!(" · {}", escape(&role.name)));
        }
        match (next.get(c.id.as_str()), &c.schedule) {
            (Some(at), Some(schedule)) => {
                let local = schedule.describe_slot(*at);
                let freq = c.frequency.as_deref().map(|f| format!("{} · ", escape(f))).unwrap_or_default();
                line.push_str(&format!("\n   {freq}next {local} ({} your time)", slack_date(*at)));
                scheduled.push(line);
            }
            _ => on_demand.push(line),
        }
    }
    let mut text = format!("*Scheduled* (times in {})\n{}", runbook.timezone, scheduled.join("\n"));
    if !on_demand.is_empty() {
        text.push_str(&format!("\n\n*On demand*\n{}", on_demand.join("\n")));
    }
    text.push_str("\n\n`/runbook start <name>` runs one now.");
    truncate(&text, 3000 * 10)
}

fn run_status(run: &Run, now: DateTime<Utc>) -> String {
    let (settled, total) = progress(&run.sections);
    match &run.completed {
        Some(done) => {
            let took = done.at - run.started.at;
            let planned = run.due.map(|d| d - run.started.at);
            let against = match planned {
                Some(p) if took <= p => format!(", planned {}", duration(p)),
                Some(p) => format!(", planned {} — {} over", duration(p), duration(took - p)),
                None => String::new(),
            };
            format!("✅ Completed by <@{}> in {}{against}", done.user, duration(took))
        }
        None => match run.due {
            Some(due) if now > due => format!("⏰ {settled}/{total} · overdue since {}", slack_date(due)),
            Some(due) => format!("⏳ {settled}/{total} · due {}", slack_date(due)),
            None => format!("⏳ {settled}/{total}"),
        },
    }
}

/// The run's header message in the team channel.
pub fn header(run: &Run, runbook: &Runbook, now: DateTime<Utc>) -> SlackMessage {
    let starter = if run.started.user == "opsbot" {
        match run.late_by_secs {
            Some(late) => format!(
                "on schedule, {} late (opsbot was down at its time)",
                duration(chrono::TimeDelta::seconds(late))
            ),
            None => "on schedule".to_owned(),
        }
    } else {
        format!("by <@{}>", run.started.user)
    };
    let responsible = run.responsible.as_deref().and_then(|r| runbook.role(r)).map(|r| {
        format!("{} {}", escape(&r.name), r.people.iter().map(|p| p.to_mrkdwn()).collect::<Vec<_>>().join(" "))
    });
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Started*\n{} {}", slack_date(run.started.at), starter)}),
        json!({"type": "mrkdwn", "text": format!("*Progress*\n{}", run_status(run, now))}),
    ];
    if let Some(r) = responsible {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Responsible*\n{r}")}));
    }
    let flags = run.flags();
    if !flags.is_empty() {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Flags*\n🚩 {}", flags.len())}));
    }
    let header = truncate(&format!("📋 {} · {}", run.name, run.id), HEADER_MAX);
    SlackMessage {
        text: format!("{} {}: {}", run.id, escape(&run.name), run_status(run, now)),
        blocks: json!([
            {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} · steps in the thread · `/runbook history {}`", run.id, run.checklist)}]}
        ]),
    }
}

/// One message of a run's steps, in the header's thread, with each check's
/// figure beside its step when they were fetched.
pub fn steps(run: &Run, part: ChecklistPart, checks: Option<(&Fetched, &Runbook, DateTime<Utc>)>) -> SlackMessage {
    let settle = |phase, step, done| Button::Run(run.id, RunButton::Step { phase, step, done });
    let flag = |phase, step| Button::Run(run.id, RunButton::Flag { phase, step });
    let beside = |step: &StepRun| {
        let (fetched, runbook, now) = checks?;
        Some(crate::pipeline::checks::line(step.check?, fetched, runbook, now))
    };
    crate::checklist::message(&ChecklistView {
        phases: &run.sections,
        part,
        subject: run.id.to_string(),
        what: run.name.clone(),
        open: run.is_open(),
        settle: &settle,
        flag: Some(&flag),
        beside: Some(&beside),
    })
}

/// The modal the Flag button opens: what went wrong at this step.
pub fn flag_modal(run: &Run, phase: usize, step: usize) -> Modal {
    let text = run.sections.get(phase).and_then(|p| p.steps.get(step)).map(|s| s.text.as_str()).unwrap_or_default();
    let view = crate::blocks::input_modal(
        crate::codec::flag_modal(run.id, phase, step),
        &format!("Flag a step · {}", run.id),
        "Flag",
        &format!("*{}*\n{}", escape(&run.name), escape(text)),
        crate::codec::NOTE_FIELD,
        "What is wrong? (failures, anomalies, an issue to open)",
        false,
    );
    let fallback = format!(
        "I could not open the flag dialog. Post what is wrong in {}'s thread instead, so the team can follow up.",
        run.id
    );
    Modal { view, fallback }
}

/// `/runbook history`: the last runs, newest first.
pub fn history(checklist: &crate::runbook::Checklist, runs: &[Run], now: DateTime<Utc>) -> String {
    if runs.is_empty() {
        return format!("*{}* has not run yet. `/runbook start {}`", escape(&checklist.name), checklist.id);
    }
    let mut text = format!("*{}*: the last {} runs\n", escape(&checklist.name), runs.len());
    for run in runs {
        let who =
            if run.started.user == "opsbot" { "scheduled".to_owned() } else { format!("<@{}>", run.started.user) };
        let mut line = format!("• *{}* {} · {who} · {}", run.id, slack_date(run.started.at), run_status(run, now));
        let flags = run.flags();
        if !flags.is_empty() {
            line.push_str(&format!(" · 🚩 {}", flags.len()));
        }
        let skipped = run.skipped();
        if !skipped.is_empty() {
            let names: Vec<String> = skipped.iter().take(3).map(|(_, s)| escape(&truncate(s, 60))).collect();
            line.push_str(&format!(" · skipped {}: {}", skipped.len(), names.join("; ")));
        }
        text.push_str(&line);
        text.push('\n');
    }
    truncate(&text, 30_000)
}
