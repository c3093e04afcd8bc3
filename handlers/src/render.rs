//! Block Kit rendering of incidents. Everything stays inside Slack's limits
//! (50 blocks, 3000-character sections, 150-character headers) however long
//! the input, so Slack never rejects what we send.

use crate::checklist::{progress, ChecklistKind, ChecklistPart};
use crate::decide::{Button, Reply};
use crate::incident::{Incident, Status, TimelineEntry, TimelineEvent, TransitionError};
use crate::runbook::Runbook;
use crate::text::{duration, escape, slack_date, truncate};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const MAX_BLOCKS: usize = 50;
/// Rows in `/incident list`; more are summarised as "… and N more".
const LIST_MAX: usize = 25;

/// A rendered Slack message: fallback text (notifications, screen readers)
/// and blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Value,
}

fn status_line(inc: &Incident) -> String {
    match (&inc.status, &inc.acknowledged, &inc.resolved) {
        (Status::Resolved, _, Some(r)) => {
            format!("✅ Resolved by <@{}> {}", r.user, slack_date(r.at))
        }
        (Status::Acknowledged, Some(a), _) => {
            format!("👀 Acknowledged by <@{}> {}", a.user, slack_date(a.at))
        }
        _ => "🔥 Declared, waiting for a responder".to_owned(),
    }
}

/// The alert in the severity's channel; edited in place as the incident moves.
pub fn alert(inc: &Incident, runbook: &Runbook) -> SlackMessage {
    let targets = runbook.targets(inc.severity);
    let header =
        truncate(&format!("{} {} · {} · {}", inc.severity.emoji(), inc.severity, inc.id, inc.title), HEADER_MAX);
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Status*\n{}", status_line(inc))}),
        json!({"type": "mrkdwn", "text": format!("*Severity*\n{} ({})", inc.severity, inc.severity.label())}),
        json!({"type": "mrkdwn", "text": format!("*Declared by*\n<@{}> {}", inc.declared.user, slack_date(inc.declared.at))}),
        json!({"type": "mrkdwn", "text": format!("*Targets*\nrespond &lt; {} · resolve &lt; {}", duration(targets.respond), duration(targets.resolve))}),
    ];
    fields.push(json!({"type": "mrkdwn", "text": format!("*Commander*\n{}", inc.commander.as_ref().map_or("unassigned".to_owned(), |c| format!("<@{c}>")))}));
    let (settled, total) = progress(&inc.playbook);
    if total > 0 {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Playbook*\n{settled}/{total} steps")}));
    }
    if inc.escalation_level > 0 && inc.status == Status::Declared {
        let role = runbook
            .escalation_role(inc.severity, inc.escalation_level)
            .map_or("responders".to_owned(), |r| r.name.clone());
        fields.push(json!({"type": "mrkdwn", "text": format!("*Escalated*\nto the {role} (level {})", inc.escalation_level + 1)}));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*{}*", escape(&inc.title)), SECTION_MAX)}, "fields": fields}),
    ];
    if let Some(resolved) = &inc.resolved {
        let mut lines = vec![time_against_target(
            "Time to acknowledge",
            inc.acknowledged.as_ref().map(|a| a.at - inc.declared.at),
            targets.respond,
        )];
        lines.push(time_against_target("Time to resolve", Some(resolved.at - inc.declared.at), targets.resolve));
        if let Some(summary) = &inc.summary {
            lines.push(format!("*Summary:* {}", escape(summary)));
        }
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&lines.join("\n"), SECTION_MAX)}}),
        );
    }
    let value = inc.id.0.to_string();
    let mut buttons = Vec::new();
    if inc.status == Status::Declared {
        buttons.push(json!({"type": "button", "action_id": Button::Acknowledge.action_id(), "style": "primary", "value": value.clone(), "text": {"type": "plain_text", "text": "Acknowledge"}}));
    }
    if inc.is_open() {
        buttons.push(json!({"type": "button", "action_id": Button::Resolve.action_id(), "style": "danger", "value": value, "text": {"type": "plain_text", "text": "Resolve"}}));
        buttons.push(json!({"type": "button", "action_id": Button::TakeCommand.action_id(), "value": value, "text": {"type": "plain_text", "text": "I'm commander"}}));
    }
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "block_id": format!("incident:{}", inc.id.0), "elements": buttons}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} · `/incident show {}` for the timeline", inc.id, inc.id)}]}));
    SlackMessage {
        text: format!("{} {}: {} ({})", inc.severity, inc.id, escape(&truncate(&inc.title, 200)), inc.status.as_str()),
        blocks: Value::Array(blocks),
    }
}

/// Longest step text or command shown; the rest is cut to stay within a
/// section's 3000 characters.
const STEP_TEXT_MAX: usize = 1200;

/// What a checklist message shows, whichever checklist it is.
pub struct ChecklistView<'a> {
    pub phases: &'a [crate::checklist::PhaseRun],
    pub part: ChecklistPart,
    /// `INC-1`, `RUN-5`
    pub subject: String,
    /// The number button values carry.
    pub number: u64,
    /// `P0 playbook`, `Post-incident`, `Morning Health Check`
    pub what: String,
    /// Whether steps can still be settled (their buttons are shown).
    pub open: bool,
    /// Whether steps get a `Flag` button.
    pub flaggable: bool,
}

/// One message of a checklist in a thread: the phase's name, and each step
/// with `Done`/`Skip` (and `Flag`) buttons, or who settled it and when.
pub fn checklist_message(view: &ChecklistView) -> SlackMessage {
    let part = view.part;
    let Some(phase) = view.phases.get(part.phase) else {
        return SlackMessage {
            text: format!("{}: (no such checklist part)", view.subject),
            blocks: Value::Array(vec![]),
        };
    };
    let what = &view.what;
    let range = part.steps();
    let parts_in_phase = phase.steps.len().div_ceil(crate::checklist::STEPS_PER_MESSAGE).max(1);
    let title = if parts_in_phase > 1 {
        format!("*{}* ({}/{parts_in_phase})", escape(&phase.name), part.part + 1)
    } else {
        format!("*{}*", escape(&phase.name))
    };
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("{} · {title}", escape(what)), SECTION_MAX)}}),
    ];
    for (index, step) in phase.steps.iter().enumerate().skip(range.start).take(range.len()) {
        let mut text = match &step.outcome {
            Some(o) if o.done => format!("✅ ~{}~", escape(&truncate(&step.text, STEP_TEXT_MAX))),
            Some(_) => format!("⏭ ~{}~", escape(&truncate(&step.text, STEP_TEXT_MAX))),
            None => format!("⬜ {}", escape(&truncate(&step.text, STEP_TEXT_MAX))),
        };
        if let Some(command) = &step.command {
            text.push_str(&format!("\n```{}```", truncate(command, STEP_TEXT_MAX)));
        }
        if let Some(o) = &step.outcome {
            text.push_str(&format!(
                "\n_{} by <@{}> {}_",
                if o.done { "Done" } else { "Skipped" },
                o.by,
                slack_date(o.at)
            ));
        }
        if let Some(f) = &step.flag {
            text.push_str(&format!("\n🚩 <@{}>: {}", f.by, escape(&truncate(&f.note, 500))));
        }
        blocks.push(json!({"type": "section", "block_id": format!("step:{}:{}", part.phase, index), "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_MAX)}}));
        if step.outcome.is_none() && view.open {
            let button = |b: Button, label: &str, style: Option<&str>| {
                let mut json = json!({"type": "button", "action_id": b.action_id(), "value": b.value(view.number), "text": {"type": "plain_text", "text": label}});
                if let Some(style) = style {
                    json["style"] = json!(style);
                }
                json
            };
            let (kind, phase) = (part.kind, part.phase);
            let mut elements = vec![
                button(Button::Step { kind, phase, step: index, done: true }, "Done", Some("primary")),
                button(Button::Step { kind, phase, step: index, done: false }, "Skip", None),
            ];
            if view.flaggable {
                elements.push(button(Button::Flag { phase, step: index }, "Flag", Some("danger")));
            }
            blocks.push(json!({"type": "actions", "block_id": format!("step-actions:{}:{}", part.phase, index), "elements": elements}));
        }
    }
    let (settled, total) = progress(view.phases);
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} · {} · {settled}/{total} steps settled", view.subject, escape(what))}]}));
    SlackMessage {
        text: format!("{} {}: {}", view.subject, escape(what), escape(&truncate(&phase.name, 200))),
        blocks: Value::Array(blocks),
    }
}

/// A message of an incident's playbook or post-incident checklist.
pub fn checklist_part(inc: &Incident, part: ChecklistPart) -> SlackMessage {
    let (what, open) = match part.kind {
        ChecklistKind::Playbook => (format!("{} playbook", inc.severity), inc.is_open()),
        ChecklistKind::PostIncident | ChecklistKind::Run => ("Post-incident".to_owned(), true),
    };
    checklist_message(&ChecklistView {
        phases: inc.checklist(part.kind),
        part,
        subject: inc.id.to_string(),
        number: inc.id.0,
        what,
        open,
        flaggable: false,
    })
}

/// `/runbook list`: each checklist, how often it runs, when next (in the
/// runbook's zone and, through Slack's date token, the reader's own), how
/// long it takes and who is responsible.
pub fn runbook_list(runbook: &Runbook, now: DateTime<Utc>) -> String {
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
            (Some(at), Some(_)) => {
                let local =
                    crate::schedule::Schedule::new(c.schedule.as_deref().unwrap_or_default(), &runbook.timezone)
                        .map(|s| s.describe_slot(*at))
                        .unwrap_or_default();
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

fn run_status(run: &crate::run::Run, now: DateTime<Utc>) -> String {
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
pub fn run_header(run: &crate::run::Run, runbook: &Runbook, now: DateTime<Utc>) -> SlackMessage {
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

/// One message of a run's steps, in the header's thread.
pub fn run_part(run: &crate::run::Run, part: ChecklistPart) -> SlackMessage {
    checklist_message(&ChecklistView {
        phases: &run.sections,
        part,
        subject: run.id.to_string(),
        number: run.id.0,
        what: run.name.clone(),
        open: run.is_open(),
        flaggable: true,
    })
}

/// Callback id of the flag modal; `private_metadata` is `run:phase:step`.
pub const FLAG_MODAL: &str = "run.flag";
/// Block and action id of the note field in the flag modal.
pub const NOTE_FIELD: &str = "note";

/// The modal the Flag button opens: what went wrong at this step.
pub fn flag_modal(run: &crate::run::Run, phase: usize, step: usize) -> Value {
    let text = run.sections.get(phase).and_then(|p| p.steps.get(step)).map(|s| s.text.as_str()).unwrap_or_default();
    json!({
        "type": "modal",
        "callback_id": FLAG_MODAL,
        "private_metadata": format!("{}:{phase}:{step}", run.id.0),
        "title": {"type": "plain_text", "text": truncate(&format!("Flag a step · {}", run.id), 24)},
        "submit": {"type": "plain_text", "text": "Flag"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*{}*\n{}", escape(&run.name), escape(text)), SECTION_MAX)}},
            {"type": "input", "block_id": NOTE_FIELD,
             "label": {"type": "plain_text", "text": "What is wrong? (failures, anomalies, an issue to open)"},
             "element": {"type": "plain_text_input", "action_id": NOTE_FIELD, "multiline": true, "max_length": 2000}}
        ]
    })
}

/// `/runbook history`: the last runs, newest first.
pub fn run_history(checklist: &crate::runbook::Checklist, runs: &[crate::run::Run], now: DateTime<Utc>) -> String {
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

/// What the old alert says once a severity change moved the incident to
/// another channel.
pub fn moved_alert(inc: &Incident, to: &crate::incident::MessageRef) -> SlackMessage {
    let link = match &inc.team_domain {
        Some(domain) => {
            format!("<{}|the alert in <#{}>>", crate::text::permalink(domain, &to.channel, &to.ts), to.channel)
        }
        None => format!("<#{}>", to.channel),
    };
    let text = format!("➡️ *{}* is now {} and continues in {link}.", inc.id, inc.severity);
    SlackMessage {
        text: format!("{} moved to {}", inc.id, to.channel),
        blocks: json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("~{}~", escape(&inc.title)), SECTION_MAX)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}}
        ]),
    }
}

fn time_against_target(label: &str, took: Option<chrono::TimeDelta>, target: chrono::TimeDelta) -> String {
    match took {
        Some(t) if t < target => format!("*{label}:* {} (target &lt; {}, met ✅)", duration(t), duration(target)),
        Some(t) => format!("*{label}:* {} (target &lt; {}, missed ❌)", duration(t), duration(target)),
        None => format!("*{label}:* never acknowledged (target &lt; {})", duration(target)),
    }
}

fn list_row(inc: &Incident, now: DateTime<Utc>) -> String {
    format!(
        "{} *{}* · {} · {} · {} ago · {}",
        inc.severity.emoji(),
        inc.id,
        inc.severity,
        escape(&truncate(&inc.title, 80)),
        duration(now - inc.declared.at),
        inc.status.as_str()
    )
}

/// `/incident list`: open incidents, newest first (the caller's order).
pub fn incident_list(open: &[Incident], now: DateTime<Utc>) -> Reply {
    if open.is_empty() {
        return Reply::text("No open incidents. 🎉");
    }
    let mut lines: Vec<String> = open.iter().take(LIST_MAX).map(|i| list_row(i, now)).collect();
    if open.len() > LIST_MAX {
        lines.push(format!("… and {} more.", open.len() - LIST_MAX));
    }
    let title = match open.len() {
        1 => "*1 open incident*".to_owned(),
        n => format!("*{n} open incidents*"),
    };
    let text = format!("{title}\n{}", lines.join("\n"));
    Reply { blocks: Some(sections(&text)), text: truncate(&text, 3000) }
}

/// `/incident show`: the incident's state and its timeline.
pub fn incident_details(inc: &Incident, timeline: &[TimelineEntry], runbook: &Runbook, _now: DateTime<Utc>) -> Reply {
    let mut text = format!(
        "{} *{} · {}* — {}\n{}\nDeclared by <@{}> {}",
        inc.severity.emoji(),
        inc.id,
        inc.severity,
        escape(&inc.title),
        status_line(inc),
        inc.declared.user,
        slack_date(inc.declared.at)
    );
    if let Some(c) = &inc.commander {
        text.push_str(&format!("\nCommander: <@{c}>"));
    }
    if let (Some(alert), Some(domain)) = (&inc.alert, &inc.team_domain) {
        text.push_str(&format!("\n<{}|Open the alert>", crate::text::permalink(domain, &alert.channel, &alert.ts)));
    } else if inc.alert.is_none() {
        text.push_str(&format!("\nThe alert is on its way to {}.", runbook.channel_for(inc.severity)));
    }
    text.push_str("\n\n*Timeline*");
    for e in timeline {
        text.push_str(&format!("\n• {} <@{}> {}", slack_date(e.at), e.user, timeline_event(&e.event)));
    }
    Reply { blocks: Some(sections(&text)), text: truncate(&text, 3000) }
}

/// A timeline event in Slack mrkdwn (user text escaped, people mentioned).
fn timeline_event(event: &TimelineEvent) -> String {
    match event {
        TimelineEvent::CommanderAssigned { commander } => format!("made <@{commander}> commander"),
        other => escape(&timeline_event_plain(other)),
    }
}

/// A timeline event as plain text, for reports in any format.
pub fn timeline_event_plain(event: &TimelineEvent) -> String {
    match event {
        TimelineEvent::Declared { severity, title } => format!("declared {severity}: {}", truncate(title, 200)),
        TimelineEvent::Acknowledged => "acknowledged".to_owned(),
        TimelineEvent::SeverityChanged { from, to } => format!("changed the severity {from} → {to}"),
        TimelineEvent::Escalated { level, role } => format!("escalated to the {role} (level {})", level + 1),
        TimelineEvent::StepSettled { checklist, done, text, .. } => format!(
            "{} {} step: {}",
            if *done { "did" } else { "skipped" },
            match checklist {
                ChecklistKind::Playbook => "a playbook",
                ChecklistKind::PostIncident => "a post-incident",
                ChecklistKind::Run => "a routine",
            },
            truncate(text, 200)
        ),
        TimelineEvent::Resolved { summary: Some(s) } => format!("resolved: {}", truncate(s, 500)),
        TimelineEvent::Resolved { summary: None } => "resolved".to_owned(),
        TimelineEvent::StatusUpdate { text } => format!("posted an update: {}", truncate(text, 500)),
        TimelineEvent::CommanderAssigned { commander } => format!("made @{commander} commander"),
    }
}

/// Splits long mrkdwn into section blocks on line boundaries, each within
/// the section limit, and at most [`MAX_BLOCKS`] of them.
fn sections(text: &str) -> Value {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = truncate(line, SECTION_MAX);
        if !current.is_empty() && current.chars().count() + 1 + line.chars().count() > SECTION_MAX {
            blocks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    if blocks.len() > MAX_BLOCKS {
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push("… (cut to fit one Slack message)".to_owned());
    }
    Value::Array(
        blocks.into_iter().map(|t| json!({"type": "section", "text": {"type": "mrkdwn", "text": t}})).collect(),
    )
}

/// Callback id of the resolve modal; its `private_metadata` is the incident number.
pub const RESOLVE_MODAL: &str = "incident.resolve";
/// Block and action id of the summary field in the resolve modal.
pub const SUMMARY_FIELD: &str = "summary";

/// The modal the Resolve button opens: a summary, then resolve.
pub fn resolve_modal(inc: &Incident) -> Value {
    json!({
        "type": "modal",
        "callback_id": RESOLVE_MODAL,
        "private_metadata": inc.id.0.to_string(),
        "title": {"type": "plain_text", "text": truncate(&format!("Resolve {}", inc.id), 24)},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*{}* · {}", inc.id, escape(&inc.title)), SECTION_MAX)}},
            {"type": "input", "block_id": SUMMARY_FIELD, "optional": true,
             "label": {"type": "plain_text", "text": "Summary: what happened and what fixed it"},
             "element": {"type": "plain_text_input", "action_id": SUMMARY_FIELD, "multiline": true, "max_length": 2000}}
        ]
    })
}

/// A polite refusal, naming who got there first.
pub fn refusal(err: &TransitionError) -> String {
    match err {
        TransitionError::AlreadyAcknowledged { id, by } => {
            format!("*{id}* was already acknowledged by <@{}> {}.", by.user, slack_date(by.at))
        }
        TransitionError::AlreadyResolved { id, by } => {
            format!("*{id}* is already resolved (by <@{}> {}); nothing was changed.", by.user, slack_date(by.at))
        }
        TransitionError::NoSuchStep { id } => {
            format!("That step is not part of *{id}*'s checklist; nothing was changed.")
        }
        TransitionError::StepAlreadySettled { id, outcome } => format!(
            "That step of *{id}* was already {} by <@{}> {}.",
            if outcome.done { "done" } else { "skipped" },
            outcome.by,
            slack_date(outcome.at)
        ),
    }
}

pub fn mention_help() -> String {
    "I run the team's runbook in Slack.\n\
     • `/incident p0 <title>` declares an incident (P0/P1 go to the alerts channel, P2/P3 to the team channel)\n\
     • `/incident list` shows what is open; `@opsbot status` does too\n\
     • `/incident help` lists every incident command"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{IncidentId, Stamp};
    use crate::severity::Severity;
    use chrono::{TimeDelta, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn incident(title: &str) -> Incident {
        Incident::new(
            IncidentId(42),
            Severity::P0,
            title.into(),
            Stamp { user: "U1".into(), at: now() },
            "C1".into(),
            None,
        )
    }

    fn assert_valid(blocks: &Value) {
        if let Err(errors) = opsbot_fake_slack::blockkit::validate_blocks(blocks) {
            panic!("Slack would reject these blocks: {errors:?}\n{blocks:#}");
        }
    }

    fn buttons(msg: &SlackMessage) -> Vec<String> {
        msg.blocks
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| {
                b["elements"].as_array().unwrap().iter().map(|e| e["text"]["text"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    #[test]
    fn alert_shows_severity_id_title_and_targets() {
        let msg = alert(&incident("Production API down"), &Runbook::seed());
        let json = msg.blocks.to_string();
        assert!(json.contains("P0 · INC-42 · Production API down"));
        assert!(json.contains("respond &lt; 5 min · resolve &lt; 1 h"));
        assert!(json.contains("<@U1>"));
        assert_eq!(buttons(&msg), ["Acknowledge", "Resolve", "I'm commander"]);
        assert_valid(&msg.blocks);
    }

    #[test]
    fn acknowledged_alert_keeps_only_resolve_and_resolved_has_no_buttons() {
        let mut inc = incident("x");
        inc.acknowledge("U2", now() + TimeDelta::minutes(3)).unwrap();
        let msg = alert(&inc, &Runbook::seed());
        assert_eq!(buttons(&msg), ["Resolve", "I'm commander"]);
        assert!(msg.blocks.to_string().contains("Acknowledged by <@U2>"));
        inc.resolve("U2", Some("rolled back".into()), now() + TimeDelta::minutes(70)).unwrap();
        let msg = alert(&inc, &Runbook::seed());
        assert!(buttons(&msg).is_empty());
        let json = msg.blocks.to_string();
        assert!(json.contains("Time to acknowledge:* 3 min (target &lt; 5 min, met ✅)"), "{json}");
        assert!(json.contains("Time to resolve:* 1 h 10 min (target &lt; 1 h, missed ❌)"), "{json}");
        assert_valid(&msg.blocks);
    }

    #[test]
    fn hostile_titles_stay_inside_block_kit_limits_and_ping_nobody() {
        let msg = alert(&incident(&format!("<!channel> {}", "é".repeat(249))), &Runbook::seed());
        assert_valid(&msg.blocks);
        // mrkdwn would ping; plain_text (the header) shows it literally.
        for block in msg.blocks.as_array().unwrap() {
            if block["type"] != "header" {
                assert!(!block.to_string().contains("<!channel>"), "{block}");
            }
        }
        assert!(!msg.text.contains("<!channel>"));
    }

    #[test]
    fn list_is_newest_first_as_given_and_capped() {
        let many: Vec<Incident> = (0..60)
            .map(|i| {
                let mut x = incident(&"long title ".repeat(20));
                x.id = IncidentId(100 - i);
                x
            })
            .collect();
        let reply = incident_list(&many, now() + TimeDelta::minutes(12));
        assert!(reply.text.starts_with("*60 open incidents*\n🔴 *INC-100*"));
        assert!(reply.text.contains("12 min ago"));
        assert_valid(reply.blocks.as_ref().unwrap());
        assert!(reply.text.chars().count() <= 3000);
    }

    #[test]
    fn any_length_of_playbook_or_run_fits_slack_message_by_message() {
        use crate::runbook::{Phase, Step};
        let long = "x".repeat(5000);
        let phase = Phase {
            name: "A phase with a very long name ".repeat(20),
            steps: (0..47)
                .map(|i| Step { text: format!("step {i} {long}"), command: Some(format!("run --step {i} {long}")) })
                .collect(),
        };
        let mut inc = incident("Long playbook");
        inc.playbook = crate::checklist::start_checklist(std::slice::from_ref(&phase));
        // A settled and a flagged step render differently; both must fit.
        crate::checklist::settle(&mut inc.playbook, 0, 3, true, "U2", now()).unwrap();
        crate::checklist::flag(&mut inc.playbook, 0, 4, &long, "U2", now()).unwrap();
        let parts = crate::checklist::checklist_parts(ChecklistKind::Playbook, &inc.playbook);
        assert_eq!(parts.len(), 3, "47 steps take three messages");
        for part in &parts {
            assert_valid(&checklist_part(&inc, *part).blocks);
        }
        let run = crate::run::Run {
            id: crate::run::RunId(1),
            checklist: "long".into(),
            name: long.clone(),
            started: Stamp { user: "U1".into(), at: now() },
            due: None,
            responsible: None,
            channel: "#devops".into(),
            slot: None,
            late_by_secs: None,
            sections: inc.playbook.clone(),
            completed: None,
            reminded: false,
            header: None,
            messages: Default::default(),
        };
        for part in crate::checklist::checklist_parts(ChecklistKind::Run, &run.sections) {
            assert_valid(&run_part(&run, part).blocks);
        }
        assert_valid(&run_header(&run, &Runbook::seed(), now()).blocks);
    }

    #[test]
    fn details_show_the_timeline() {
        let mut inc = incident("API down");
        let e1 = TimelineEntry {
            at: now(),
            user: "U1".into(),
            event: TimelineEvent::Declared { severity: Severity::P0, title: "API down".into() },
        };
        let e2 = inc.acknowledge("U2", now() + TimeDelta::minutes(2)).unwrap();
        let timeline: Vec<_> = std::iter::once(e1)
            .chain(std::iter::once(e2))
            .chain((0..200).map(|i| TimelineEntry {
                at: now(),
                user: "U3".into(),
                event: TimelineEvent::StatusUpdate { text: format!("update {i} {}", "x".repeat(100)) },
            }))
            .collect();
        let reply = incident_details(&inc, &timeline, &Runbook::seed(), now());
        assert!(reply.text.contains("declared P0: API down"));
        assert!(reply.text.contains("<@U2> acknowledged"));
        assert_valid(reply.blocks.as_ref().unwrap());
    }
}
