//! How incidents look in Slack: the alert, its checklist messages, the
//! resolve modal, `/incident list` and `show`, and polite refusals.

use super::{Incident, IncidentChecklist, MessageRef, Status, TimelineEntry, TimelineEvent, TransitionError};
use crate::blocks::{sections, SlackMessage, HEADER_MAX, SECTION_MAX};
use crate::checklist::{progress, ChecklistView};
use crate::codec::{Button, IncidentButton};
use crate::decision::{Modal, Reply};
use crate::runbook::Runbook;
use crate::subject::{ChecklistPart, IncidentMessage};
use crate::text::{duration, escape, slack_date, truncate};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Rows in `/incident list`; more are summarised as "… and N more".
pub const LIST_MAX: usize = 25;

/// The message `which` of an incident, as it is now.
pub fn message(inc: &Incident, which: IncidentMessage, runbook: &Runbook) -> SlackMessage {
    match which {
        IncidentMessage::Alert => alert(inc, runbook),
        IncidentMessage::Checklist(checklist, part) => checklist_part(inc, checklist, part),
    }
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
        json!({"type": "mrkdwn", "text": format!("*Declared by*\n{} {}", super::mention(&inc.declared.user), slack_date(inc.declared.at))}),
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
    if let Some(origin) = &inc.origin {
        let text = format!("*From {}*\n{}", origin.alert, origin.details);
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_MAX)}}));
    }
    if let Some(resolved) = &inc.resolved {
        let label = if runbook.clock(inc.severity).escalate.pauses() {
            "Time to acknowledge (business hours)"
        } else {
            "Time to acknowledge"
        };
        let mut lines = vec![time_against_target(label, inc.time_to_acknowledge(runbook), targets.respond)];
        lines.push(time_against_target("Time to resolve", Some(resolved.at - inc.declared.at), targets.resolve));
        if let Some(summary) = &inc.summary {
            lines.push(format!("*Summary:* {}", escape(summary)));
        }
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&lines.join("\n"), SECTION_MAX)}}),
        );
    }
    let button = |b, label, style| crate::blocks::button(Button::Incident(inc.id, b), label, style);
    let mut buttons = Vec::new();
    if inc.status == Status::Declared {
        buttons.push(button(IncidentButton::Acknowledge, "Acknowledge", Some("primary")));
    }
    if inc.is_open() {
        buttons.push(button(IncidentButton::Resolve, "Resolve", Some("danger")));
        buttons.push(button(IncidentButton::TakeCommand, "I'm commander", None));
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

/// A message of an incident's playbook or post-incident checklist.
pub fn checklist_part(inc: &Incident, which: IncidentChecklist, part: ChecklistPart) -> SlackMessage {
    let (what, open) = match which {
        IncidentChecklist::Playbook => (format!("{} playbook", inc.severity), inc.is_open()),
        IncidentChecklist::PostIncident => ("Post-incident".to_owned(), true),
    };
    let settle =
        |phase, step, done| Button::Incident(inc.id, IncidentButton::Step { checklist: which, phase, step, done });
    crate::checklist::message(&ChecklistView {
        phases: inc.checklist(which),
        part,
        subject: inc.id.to_string(),
        what,
        open,
        settle: &settle,
        flag: None,
        beside: None,
    })
}

/// What the old alert says once a severity change moved the incident to
/// another channel.
pub fn moved_alert(inc: &Incident, to: &MessageRef) -> SlackMessage {
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

pub(crate) fn list_row(inc: &Incident, now: DateTime<Utc>) -> String {
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

/// `/incident list`: the newest open incidents (the caller's order), at
/// most [`LIST_MAX`] of the `total` open.
pub fn incident_list(open: &[Incident], total: usize, now: DateTime<Utc>) -> Reply {
    let total = total.max(open.len());
    if total == 0 {
        return Reply::text("No open incidents. 🎉");
    }
    let mut lines: Vec<String> = open.iter().take(LIST_MAX).map(|i| list_row(i, now)).collect();
    if total > lines.len() {
        lines.push(format!("… and {} more.", total - lines.len()));
    }
    let title = match total {
        1 => "*1 open incident*".to_owned(),
        n => format!("*{n} open incidents*"),
    };
    let text = format!("{title}\n{}", lines.join("\n"));
    Reply { blocks: Some(sections(&text)), text: truncate(&text, 3000) }
}

/// `/incident show`: the incident's state and its timeline.
pub fn incident_details(inc: &Incident, timeline: &[TimelineEntry], runbook: &Runbook, now: DateTime<Utc>) -> Reply {
    let mut text = format!(
        "{} *{} · {}* — {}\n{}\nDeclared by {} {}",
        inc.severity.emoji(),
        inc.id,
        inc.severity,
        escape(&inc.title),
        status_line(inc),
        super::mention(&inc.declared.user),
        slack_date(inc.declared.at)
    );
    if let Some(origin) = &inc.origin {
        text.push_str(&format!("\nFrom {}: {}", origin.alert, origin.details));
    }
    if let Some(c) = &inc.commander {
        text.push_str(&format!("\nCommander: <@{c}>"));
    }
    if let Some(pages) = next_pages(inc, runbook, now) {
        text.push_str(&format!("\n{pages}"));
    }
    if let (Some(alert), Some(domain)) = (inc.alert(), &inc.team_domain) {
        text.push_str(&format!("\n<{}|Open the alert>", crate::text::permalink(domain, &alert.channel, &alert.ts)));
    } else if inc.alert().is_none() {
        text.push_str(&format!("\nThe alert is on its way to {}.", runbook.channel_for(inc.severity)));
    }
    text.push_str("\n\n*Timeline*");
    for e in timeline {
        text.push_str(&format!("\n• {} <@{}> {}", slack_date(e.at), e.user, timeline_event(&e.event)));
    }
    Reply { blocks: Some(sections(&text)), text: truncate(&text, 3000) }
}

/// Who is paged next and when, while nobody has acknowledged; with why
/// it waits when business hours hold it back.
fn next_pages(inc: &Incident, runbook: &Runbook, now: DateTime<Utc>) -> Option<String> {
    if inc.status != Status::Declared || inc.next_pages.is_empty() {
        return None;
    }
    let pages: Vec<String> = inc
        .next_pages
        .iter()
        .map(|p| {
            let name = runbook.role(&p.role).map_or(p.role.as_str(), |r| r.name.as_str());
            format!("the {name} {}", crate::runbook::hours::slack_when(p.at, runbook.timezone))
        })
        .collect();
    let mut line = format!("⏳ Next page if nobody acknowledges: {}.", pages.join("; "));
    let clock = runbook.clock(inc.severity);
    if clock.paused(now) {
        line.push_str(" Paused: outside business hours the clock stops until they start again.");
    } else if clock.escalate.pauses() {
        line.push_str(" The clock runs during business hours only.");
    }
    Some(line)
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
        TimelineEvent::Paged { role } => format!("paged the {role}"),
        TimelineEvent::StepSettled { checklist, done, text, .. } => format!(
            "{} {} step: {}",
            if *done { "did" } else { "skipped" },
            match checklist {
                IncidentChecklist::Playbook => "a playbook",
                IncidentChecklist::PostIncident => "a post-incident",
            },
            truncate(text, 200)
        ),
        TimelineEvent::Resolved { summary: Some(s) } => format!("resolved: {}", truncate(s, 500)),
        TimelineEvent::Resolved { summary: None } => "resolved".to_owned(),
        TimelineEvent::StatusUpdate { text } => format!("posted an update: {}", truncate(text, 500)),
        TimelineEvent::CommanderAssigned { commander } => format!("made @{commander} commander"),
        TimelineEvent::Deployment { text, .. } => truncate(&crate::text::plain(text), 300),
    }
}

/// The modal the Resolve button opens: a summary, then resolve.
pub fn resolve_modal(inc: &Incident) -> Modal {
    let view = crate::blocks::input_modal(
        crate::codec::resolve_modal(inc.id),
        &format!("Resolve {}", inc.id),
        "Resolve",
        &format!("*{}* · {}", inc.id, escape(&inc.title)),
        crate::codec::SUMMARY_FIELD,
        "Summary: what happened and what fixed it",
        true,
    );
    let fallback =
        format!("I could not open the resolve dialog. Resolve with `/incident resolve {} <summary>` instead.", inc.id);
    Modal { view, fallback }
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

    #[test]
    fn a_p2s_time_to_acknowledge_counts_business_hours_as_its_response_target_does() {
        // Declared Friday 16:50, acknowledged Monday 09:10: 20 business minutes.
        let friday = Utc.with_ymd_and_hms(2026, 11, 27, 16, 50, 0).unwrap();
        let monday = Utc.with_ymd_and_hms(2026, 11, 30, 9, 10, 0).unwrap();
        let mut inc = incident("Builds are slow");
        inc.severity = Severity::P2;
        inc.declared.at = friday;
        inc.acknowledged = Some(Stamp { user: "U1".into(), at: monday });
        inc.resolved = Some(Stamp { user: "U1".into(), at: monday + TimeDelta::hours(1) });
        let rb = Runbook::seed();
        assert_eq!(inc.time_to_acknowledge(&rb), Some(TimeDelta::minutes(20)));
        let shown = alert(&inc, &rb).blocks.to_string();
        assert!(shown.contains("*Time to acknowledge (business hours):* 20 min (target &lt; 1 h, met ✅)"), "{shown}");
        // A P0 runs around the clock.
        inc.severity = Severity::P0;
        assert_eq!(inc.time_to_acknowledge(&rb), Some(monday - friday));
        assert!(alert(&inc, &rb).blocks.to_string().contains("*Time to acknowledge:* 2 d"));
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
        let reply = incident_list(&many, many.len(), now() + TimeDelta::minutes(12));
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
                .map(|i| Step {
                    text: format!("step {i} {long}"),
                    command: Some(format!("run --step {i} {long}")),
                    check: Some(crate::runbook::pipeline::Figure::ALL[i % crate::runbook::pipeline::Figure::ALL.len()]),
                })
                .collect(),
        };
        let mut inc = incident("Long playbook");
        inc.playbook = crate::checklist::start_checklist(std::slice::from_ref(&phase));
        // A settled and a flagged step render differently; both must fit.
        crate::checklist::settle(&mut inc.playbook, 0, 3, true, "U2", now()).unwrap();
        crate::checklist::flag(&mut inc.playbook, 0, 4, &long, "U2", now()).unwrap();
        let parts = crate::checklist::parts(&inc.playbook);
        assert_eq!(parts.len(), 3, "47 steps take three messages");
        for part in &parts {
            assert_valid(&checklist_part(&inc, IncidentChecklist::Playbook, *part).blocks);
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
            posted: Default::default(),
        };
        // Every step carries a check, each figure over a busy month.
        let busy = crate::pipeline::checks::tests::busy();
        let runbook = Runbook::seed();
        for part in crate::checklist::parts(&run.sections) {
            assert_valid(&crate::run::render::steps(&run, part, None).blocks);
            let checked = crate::run::render::steps(&run, part, Some((&busy, &runbook, now())));
            assert_valid(&checked.blocks);
            assert!(checked.blocks.to_string().contains("📊"), "the figures are shown");
        }
        assert_valid(&crate::run::render::header(&run, &Runbook::seed(), now()).blocks);
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
