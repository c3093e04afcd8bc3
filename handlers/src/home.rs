//! The App Home tab: what the person opening it needs at a glance. Open
//! incidents by severity with their next step, who is on call, today's
//! checklists and how far they got, the viewer's own unfinished work, and
//! buttons to declare an incident or start a checklist.
//!
//! The view holds no "n minutes ago" of its own: ages and times are Slack
//! date tokens, which each reader's Slack renders, so the same state gives
//! the same view and the shell publishes again only when something changed.

use crate::codec::{self, Button, HomeButton};
use crate::decision::{Decision, Effect, Invocation, Modal};
use crate::incident::Incident;
use crate::run::Run;
use crate::runbook::permissions::Action;
use crate::runbook::{Checklist, Runbook};
use crate::severity::Severity;
use crate::text::{escape, slack_date, truncate};
use chrono::{DateTime, Days, NaiveTime, Utc};
use serde_json::{json, Value};

/// Blocks a Home view may hold (Slack's limit is 100); lists are cut
/// before it, with what was left out counted.
const MAX_BLOCKS: usize = 100;
/// Incidents, runs and checklists listed per section at most.
const LISTED: usize = 12;

/// What the Home of every viewer is drawn from.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Open incidents, any order.
    pub open: Vec<Incident>,
    /// Checklist runs not yet complete, any order.
    pub runs: Vec<Run>,
}

/// `user`'s Home view (`{"type": "home", "blocks": [...]}`).
pub fn view(user: &str, facts: &Facts, runbook: &Runbook, now: DateTime<Utc>) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&format!("🛠️ {}", runbook.name), 150)}}),
        json!({"type": "actions", "elements": [
            button("🚨 Declare an incident", Button::Home(HomeButton::Declare), Some("danger")),
        ]}),
    ];
    blocks.push(json!({"type": "divider"}));
    blocks.extend(incidents(&facts.open));
    blocks.push(json!({"type": "divider"}));
    blocks.extend(on_call(runbook, now));
    blocks.push(json!({"type": "divider"}));
    blocks.extend(today(&facts.runs, runbook, now));
    blocks.push(json!({"type": "divider"}));
    blocks.extend(yours(user, facts));
    blocks.truncate(MAX_BLOCKS);
    json!({"type": "home", "blocks": blocks})
}

fn button(text: &str, action: Button, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action.action_id(),
        "value": action.value(),
    });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, 3000)}})
}

fn title(text: &str) -> Value {
    section(format!("*{text}*"))
}

/// "and 3 more", when a list was cut.
fn more(total: usize) -> Option<Value> {
    (total > LISTED).then(|| {
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("… and {} more", total - LISTED)}]})
    })
}

/// An age Slack renders in the reader's words ("3 minutes ago").
fn ago(at: DateTime<Utc>) -> String {
    format!("<!date^{}^{{ago}}|{}>", at.timestamp(), at.format("%Y-%m-%d %H:%M UTC"))
}

/// The first playbook step nobody has done or skipped.
fn next_step(inc: &Incident) -> Option<String> {
    inc.playbook.iter().flat_map(|p| &p.steps).find(|s| s.outcome.is_none()).map(|s| escape(&truncate(&s.text, 80)))
}

fn incidents(open: &[Incident]) -> Vec<Value> {
    let mut open: Vec<&Incident> = open.iter().collect();
    // Most severe first, then oldest: what to look at first.
    open.sort_by_key(|inc| (inc.severity, inc.declared.at));
    let mut blocks = vec![title(&format!("Open incidents ({})", open.len()))];
    if open.is_empty() {
        blocks.push(section("No open incidents. 🎉".to_owned()));
        return blocks;
    }
    for inc in open.iter().take(LISTED) {
        let commander =
            inc.commander.as_ref().map_or_else(|| "no commander".to_owned(), |c| format!("<@{c}> commands"));
        let next = next_step(inc).map(|s| format!("\nNext: {s}")).unwrap_or_default();
        blocks.push(section(format!(
            "{} *{}* {} · {} · declared {} · {} · {commander}{next}",
            inc.severity.emoji(),
            inc.id,
            escape(&truncate(&inc.title, 80)),
            inc.severity,
            ago(inc.declared.at),
            inc.status.as_str(),
        )));
    }
    blocks.extend(more(open.len()));
    blocks
}

fn on_call(runbook: &Runbook, now: DateTime<Utc>) -> Vec<Value> {
    let mut blocks = vec![title("On call now")];
    if runbook.oncall.rotations.is_empty() {
        blocks.push(section(
            "The runbook has no on-call rotations: roles are paged as their `people` say. `/oncall` tells more."
                .to_owned(),
        ));
        return blocks;
    }
    let lines: Vec<String> =
        runbook.oncall.rotations.iter().map(|r| crate::oncall::handoff::now_line(runbook, r, now)).collect();
    blocks.push(section(lines.join("\n")));
    blocks
}

/// Today's local date's scheduled checklists, in slot order, with how far
/// each got: its open run, else done, else when it is due.
fn today(runs: &[Run], runbook: &Runbook, now: DateTime<Utc>) -> Vec<Value> {
    let zone = runbook.timezone;
    let date = now.with_timezone(&zone).date_naive();
    let starts = crate::runbook::oncall::local(zone, date.and_time(NaiveTime::MIN));
    let ends = date.checked_add_days(Days::new(1)).map_or(starts + chrono::TimeDelta::days(1), |d| {
        crate::runbook::oncall::local(zone, d.and_time(NaiveTime::MIN))
    });
    let mut due: Vec<(DateTime<Utc>, &Checklist)> = runbook
        .checklists
        .iter()
        .filter_map(|c| {
            let slot = c.schedule.as_ref()?.next_after(starts - chrono::TimeDelta::seconds(1))?;
            (slot < ends).then_some((slot, c))
        })
        .collect();
    due.sort_by_key(|(slot, _)| *slot);
    let mut blocks = vec![title(&format!("Today's checklists ({})", due.len()))];
    if due.is_empty() {
        blocks.push(section("Nothing scheduled today. `/runbook` lists every checklist.".to_owned()));
    }
    for (slot, checklist) in due.iter().take(LISTED) {
        let run = runs.iter().filter(|r| r.checklist == checklist.id).max_by_key(|r| r.started.at);
        let state = match run {
            Some(run) => {
                let (settled, total) = crate::checklist::progress(&run.sections);
                format!("⏳ *{}* in progress · {settled}/{total} steps", run.id)
            }
            None if *slot > now => format!("due {}", slack_date(*slot)),
            None => format!("was due {} · done or not started", slack_date(*slot)),
        };
        let mut block = section(format!("*{}* · {state}", escape(&checklist.name)));
        if run.is_none() {
            block["accessory"] = button("Start", Button::Home(HomeButton::Start(checklist.id.clone())), None);
        }
        blocks.push(block);
    }
    blocks.extend(more(due.len()));
    blocks
}

/// What the viewer has in hand: incidents they command and checklist runs
/// they started that are not finished.
fn yours(user: &str, facts: &Facts) -> Vec<Value> {
    let mut lines: Vec<String> = facts
        .open
        .iter()
        .filter(|inc| inc.commander.as_deref() == Some(user))
        .map(|inc| {
            let next =
                next_step(inc).map(|s| format!(" · next: {s}")).unwrap_or_else(|| " · every step settled".into());
            format!("{} *{}* you command{next}", inc.severity.emoji(), inc.id)
        })
        .collect();
    lines.extend(facts.runs.iter().filter(|r| r.started.user == user && r.is_open()).map(|run| {
        let (settled, total) = crate::checklist::progress(&run.sections);
        format!("*{}* {} · {settled}/{total} steps", run.id, escape(&run.name))
    }));
    let total = lines.len();
    let mut blocks = vec![title(&format!("Yours, unfinished ({total})"))];
    if lines.is_empty() {
        blocks.push(section("Nothing waits on you. Incidents you command and checklists you start show here.".into()));
        return blocks;
    }
    let listed: Vec<String> = lines.into_iter().take(LISTED).map(|l| format!("• {l}")).collect();
    blocks.push(section(listed.join("\n")));
    blocks.extend(more(total));
    blocks
}

/// **Start** on a checklist of the Home: as `/runbook start`, the answer
/// (or refusal) sent to the clicker as a DM, since a Home has no channel.
pub fn start(
    checklist: &str,
    loaded: crate::run::decide::Loaded,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> crate::run::decide::RunDecision {
    let command = crate::run::command::Command::Start(checklist.to_owned());
    let mut d = crate::run::decide::command(&command, loaded, who, runbook, now);
    d.effects.push(Effect::Say { channel: who.user.clone(), thread_ts: None, text: d.reply.text.clone() });
    d
}

/// The Home's declare form was submitted: declared as `/incident` would,
/// or refused under the field at fault, the form staying open.
pub fn declare(
    severity: Option<Severity>,
    title: &str,
    loaded: crate::incident::decide::Loaded,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> crate::incident::decide::IncidentDecision {
    let Some(severity) = severity else {
        return Decision::invalid(codec::SEVERITY_FIELD, "Choose a severity, P0 to P3.");
    };
    if title.trim().is_empty() {
        return Decision::invalid(codec::TITLE_FIELD, "Give the incident a title.");
    }
    if let Err(refused) = runbook.may(Action::Declare(severity), who, None) {
        return refused.under(codec::SEVERITY_FIELD, who);
    }
    // A form has no channel; follow-up notes go where the incident is.
    let declarer = Invocation { channel: runbook.channel_for(severity).to_owned(), ..who.clone() };
    let command = crate::incident::command::Command::Declare { severity, title: title.trim().to_owned() };
    let mut d = crate::incident::decide::command(&command, loaded, &declarer, runbook, now);
    d.effects.retain(|e| !matches!(e, Effect::SendAlertLink { .. }));
    d
}

/// What **Declare an incident** opens.
pub fn declare_form() -> Modal {
    Modal {
        view: declare_modal(),
        fallback: "Slack would not open the form: type `/incident p2 <title>` instead.".into(),
    }
}

/// The form **Declare an incident** opens: severity and title.
pub fn declare_modal() -> Value {
    let option = |s: Severity| json!({"text": {"type": "plain_text", "text": format!("{} {}", s.emoji(), s)}, "value": s.as_str()});
    let options: Vec<Value> = Severity::ALL.into_iter().map(option).collect();
    json!({
        "type": "modal",
        "callback_id": codec::HOME_DECLARE_MODAL,
        "title": {"type": "plain_text", "text": "Declare incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": codec::SEVERITY_FIELD, "label": {"type": "plain_text", "text": "Severity"},
             "element": {"type": "static_select", "action_id": codec::SEVERITY_FIELD, "options": options}},
            {"type": "input", "block_id": codec::TITLE_FIELD, "label": {"type": "plain_text", "text": "Title"},
             "element": {"type": "plain_text_input", "action_id": codec::TITLE_FIELD, "max_length": 150}}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_quiet_home_says_so_in_every_section_and_offers_to_declare() {
        let home = view("U0ALICE", &Facts::default(), &Runbook::seed(), at("2026-12-01T07:00:00Z"));
        assert_eq!(home["type"], "home");
        let text = home.to_string();
        for expected in ["No open incidents. 🎉", "no on-call rotations", "Nothing waits on you", "home.declare"] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        // The seed's Tuesday: the morning health check (09:00), with a Start button.
        assert!(text.contains("Morning Health Check") && text.contains("home.start"), "{text}");
    }

    #[test]
    fn the_same_state_gives_the_same_view_whenever_it_is_drawn() {
        let rb = Runbook::seed();
        let early = view("U0ALICE", &Facts::default(), &rb, at("2026-12-01T07:00:00Z"));
        let later = view("U0ALICE", &Facts::default(), &rb, at("2026-12-01T07:05:00Z"));
        assert_eq!(early, later, "nothing but the state changes the view");
    }
}
