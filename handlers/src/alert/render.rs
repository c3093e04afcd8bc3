//! How alert groups look in Slack: the group's message (edited in place as
//! it fails again, changes or recovers), the lines in its thread, and the
//! declare form its button opens.

use super::signal::{AlertmanagerAlert, DeploymentStatus, WorkflowRun};
use super::{AlertGroup, Detail, Figures};
use crate::blocks::{button, SlackMessage, HEADER_MAX, SECTION_MAX};
use crate::codec::{declare_modal as declare_ids, AlertButton, Button, DETAILS_FIELD, SEVERITY_FIELD, TITLE_FIELD};
use crate::runbook::alerts::{KpiAction, KpiAlert, Metric};
use crate::runbook::Runbook;
use crate::severity::Severity;
use crate::text::{duration, escape, slack_date, truncate};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Alertmanager alerts listed in a group's message; the rest are counted.
const ALERTS_LISTED: usize = 10;
/// Labels every alert of a group carries anyway, or that say nothing to a
/// person reading the message.
const QUIET_LABELS: &[&str] = &["alertname", "severity", "prometheus", "monitor", "job"];

/// `<url|label>`, or the label alone when there is no link.
pub fn link(url: &str, label: &str) -> String {
    if url.is_empty() {
        escape(label)
    } else {
        format!("<{url}|{}>", escape(label))
    }
}

/// The group's headline, e.g. `CI failing on main in octo-org/octo-repo`.
pub fn title(group: &AlertGroup) -> String {
    match &group.detail {
        Detail::Workflow(w) => format!("{} failing on {} in {}", w.workflow, w.branch, w.repo),
        Detail::Deployment(d) => format!("Deployment to {} failing in {}", d.environment, d.repo),
        Detail::Alertmanager(state) => {
            let name = state.common_labels.get("alertname").cloned().unwrap_or_else(|| state.group_key.clone());
            match state.common_annotations.get("summary") {
                Some(summary) => format!("{name}: {summary}"),
                None => name,
            }
        }
        Detail::Kpi(breach) => breach.name.clone().unwrap_or_else(|| breach.alert.replace('-', " ")),
    }
}

/// mrkdwn for the incident declared from it: what fired, with its link.
pub fn details(group: &AlertGroup) -> String {
    match &group.detail {
        Detail::Workflow(w) => match w.latest() {
            Some(run) => run_line(&format!("{} failing on `{}`", escape(&w.workflow), escape(&w.branch)), run),
            None => escape(&title(group)),
        },
        Detail::Deployment(d) => d.failed.last().map_or_else(|| escape(&title(group)), deployment_details),
        Detail::Alertmanager(state) => {
            let mut lines = vec![format!("Alertmanager group `{}`", escape(&state.group_key))];
            lines.extend(state.firing().take(ALERTS_LISTED).map(alert_line));
            lines.join("\n")
        }
        Detail::Kpi(_) => escape(&title(group)),
    }
}

/// One workflow run as a line: `❌ Failure 2 · run #163 (attempt 2) · 4 min · title — author`.
pub fn run_line(prefix: &str, run: &WorkflowRun) -> String {
    let attempt = if run.attempt > 1 { format!(" (attempt {})", run.attempt) } else { String::new() };
    format!(
        "{prefix} · {}{attempt} · {} · {} — {}",
        link(&run.url, &format!("run #{}", run.run_number)),
        duration(run.duration()),
        escape(&truncate(&run.title, 120)),
        escape(&run.author)
    )
}

pub fn deployment_title(d: &DeploymentStatus) -> String {
    format!("Deployment to {} failed in {} ({})", d.environment, d.repo, d.git_ref)
}

/// The deployment, its ref and link, for the declared incident.
pub fn deployment_details(d: &DeploymentStatus) -> String {
    let mut text = format!(
        "GitHub deployment {} of `{}` ({}) to *{}* by {}: *{}*",
        link(&d.url, &format!("#{}", d.deployment_id)),
        escape(&d.git_ref),
        escape(&d.sha.chars().take(7).collect::<String>()),
        escape(&d.environment),
        escape(&d.creator),
        escape(&d.state)
    );
    if !d.description.is_empty() {
        text.push_str(&format!("\n> {}", escape(&truncate(&d.description, 300))));
    }
    text
}

/// A later failed status of the same environment, in the thread.
pub fn deployment_line(d: &DeploymentStatus) -> String {
    format!("❌ {}", deployment_details(d))
}

fn alert_line(alert: &AlertmanagerAlert) -> String {
    let mark = if alert.firing { "🔥" } else { "✅" };
    let name = alert.labels.get("alertname").map_or("alert", String::as_str);
    let summary = alert
        .annotations
        .get("summary")
        .or_else(|| alert.annotations.get("description"))
        .map(|s| format!(": {}", escape(&truncate(s, 200))))
        .unwrap_or_default();
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| !QUIET_LABELS.contains(&k.as_str()))
        .map(|(k, v)| format!("`{}={}`", escape(k), escape(&truncate(v, 60))))
        .collect();
    let labels = if labels.is_empty() { String::new() } else { format!(" {}", labels.join(" ")) };
    format!("{mark} {}{summary}{labels}", link(&alert.generator_url, name))
}

/// A KPI alert's figures, e.g. `failure rate 23 % (7 of 30 runs in the last 24 h)`.
pub fn kpi_figures(kpi: &KpiAlert, f: &Figures) -> String {
    let window = duration(kpi.window);
    match kpi.condition.metric {
        Metric::FailureRate => {
            format!("failure rate {:.0} % ({} of {} runs in the last {window})", f.failure_rate(), f.failed, f.runs)
        }
        Metric::SuccessRate => {
            format!("success rate {:.0} % ({} of {} runs in the last {window})", f.success_rate(), f.passed, f.runs)
        }
        Metric::AverageBuildTime => format!(
            "average build time {} over {} runs in the last {window}",
            duration(chrono::TimeDelta::seconds(f.average_seconds().round() as i64)),
            f.runs
        ),
    }
}

/// The group's message, as it is now.
pub fn message(group: &AlertGroup, runbook: &Runbook, now: DateTime<Utc>) -> SlackMessage {
    let (emoji, state) = if group.firing { ("🔴", "Firing") } else { ("✅", "Recovered") };
    let headline = match &group.detail {
        Detail::Kpi(breach) => runbook
            .alerts
            .kpi_alerts
            .iter()
            .find(|k| k.id == breach.alert)
            .map_or_else(|| title(group), |k| k.name.clone()),
        _ => title(group),
    };
    let header = truncate(&format!("{emoji} {headline}"), HEADER_MAX);
    let mut lines = Vec::new();
    match &group.detail {
        Detail::Workflow(w) => {
            if let Some(run) = w.latest() {
                lines.push(format!(
                    "*{}* · `{}` · {}",
                    escape(&w.repo),
                    escape(&w.branch),
                    link(&run.url, &format!("{} run #{}", w.workflow, run.run_number))
                ));
                lines.push(format!(
                    "*Commit* {} — {} (`{}`)",
                    escape(&truncate(&run.title, 200)),
                    escape(&run.author),
                    escape(&run.sha.chars().take(7).collect::<String>())
                ));
                lines.push(format!(
                    "*Attempt* {} · *ran for* {} · *conclusion* `{}`",
                    run.attempt,
                    duration(run.duration()),
                    escape(&run.conclusion)
                ));
            }
            lines.push(match (&w.recovered_by, group.resolved) {
                (Some(pass), Some(at)) => format!(
                    "✅ *Recovered after {}, {}*: {} passed {}",
                    crate::text::plural(w.failures, "run", "runs"),
                    duration(at - group.opened),
                    link(&pass.url, &format!("run #{}", pass.run_number)),
                    slack_date(at)
                ),
                _ if w.failures > 1 => {
                    format!(
                        "🔴 *Failing for {} since {}*; each run is in the thread.",
                        crate::text::plural(w.failures, "run", "runs"),
                        slack_date(group.opened)
                    )
                }
                _ => format!("🔴 *Failing since {}*", slack_date(group.opened)),
            });
        }
        Detail::Deployment(d) => {
            if let Some(last) = d.failed.last() {
                lines.push(deployment_details(last));
            }
            if d.failed.len() > 1 {
                lines.push(format!("{} failed statuses since {}", d.failed.len(), slack_date(group.opened)));
            }
            if let (Some(ok), Some(at)) = (&d.recovered_by, group.resolved) {
                lines.push(format!("✅ *Deployed again {}*: {}", slack_date(at), link(&ok.url, "the deployment")));
            }
        }
        Detail::Alertmanager(state) => {
            let firing: Vec<&AlertmanagerAlert> = state.firing().collect();
            let resolved = state.alerts.len() - firing.len();
            let severity = state.common_labels.get("severity").map(|s| format!(" · severity `{}`", escape(s)));
            lines.push(format!(
                "*{} firing*, {resolved} resolved{} · {}",
                firing.len(),
                severity.unwrap_or_default(),
                link(&state.external_url, "Alertmanager")
            ));
            let shown: Vec<&AlertmanagerAlert> = if group.firing {
                firing.iter().copied().take(ALERTS_LISTED).collect()
            } else {
                state.alerts.values().take(ALERTS_LISTED).collect()
            };
            lines.extend(shown.iter().map(|a| alert_line(a)));
            let listed_of = if group.firing { firing.len() } else { state.alerts.len() };
            if listed_of > ALERTS_LISTED {
                lines.push(format!("… and {} more", listed_of - ALERTS_LISTED));
            }
            lines.push(match group.resolved {
                Some(at) => format!("✅ *Resolved {}* after {}", slack_date(at), duration(at - group.opened)),
                None => format!("🔴 Firing since {}", slack_date(group.opened)),
            });
        }
        Detail::Kpi(breach) => {
            if let Some(kpi) = runbook.alerts.kpi_alerts.iter().find(|k| k.id == breach.alert) {
                lines.push(format!(
                    "`{}` crossed {}: {}.",
                    escape(&kpi.condition.text),
                    slack_date(group.opened),
                    kpi_figures(kpi, &breach.crossed)
                ));
                if kpi.action == KpiAction::Investigate && group.firing {
                    lines.push("🔎 *Can someone investigate?* Say so in the thread.".to_owned());
                }
                if let Some(at) = group.resolved {
                    lines.push(format!(
                        "✅ *Back within bounds {}* after {}: {}.",
                        slack_date(at),
                        duration(at - group.opened),
                        kpi_figures(kpi, &breach.latest)
                    ));
                }
            }
        }
    }
    if let Detail::Workflow(failures) = &group.detail {
        match failures.rerun.as_ref().filter(|_| group.firing) {
            Some(asked) if asked.is_pending() => lines.push(format!(
                "🔁 <@{}> asked for a re-run of the failed jobs {}; waiting for attempt {}.",
                asked.by,
                slack_date(asked.at),
                asked.attempt + 1
            )),
            Some(asked) => lines.push(format!(
                "⚠️ GitHub would not re-run run #{} for <@{}>: {}",
                asked.run_number,
                asked.by,
                escape(&truncate(asked.refused.as_deref().unwrap_or(""), 300))
            )),
            None => {}
        }
    }
    if let Some(mute) = group.muted.as_ref().filter(|m| m.until > now) {
        lines.push(format!("🔕 Muted by <@{}> until {}", mute.by, slack_date(mute.until)));
    }
    if let Some(declared) = &group.declared {
        let by = declared.by.as_ref().map_or("the runbook".to_owned(), |u| format!("<@{u}>"));
        match declared.incident {
            Some(id) => lines.push(format!("🚨 *{id}* ({}) was declared for this by {by}.", declared.severity)),
            None => lines.push(format!("🚨 A {} incident was declared by {by}.", declared.severity)),
        }
    }
    let body = truncate(&lines.join("\n"), SECTION_MAX);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": body}}),
    ];
    if group.firing {
        let mut actions = Vec::new();
        if group.declared.is_none() {
            actions.push(button(Button::Alert(group.id, AlertButton::Declare), "Declare incident", Some("danger")));
        }
        if let Detail::Workflow(failures) = &group.detail {
            if !failures.rerun.as_ref().is_some_and(|r| r.is_pending()) {
                actions.push(button(Button::Alert(group.id, AlertButton::Rerun), "Re-run failed jobs", None));
            }
        }
        actions.push(if group.is_muted(now) {
            button(Button::Alert(group.id, AlertButton::Unmute), "Unmute", None)
        } else {
            button(Button::Alert(group.id, AlertButton::Mute), "Mute 1h", None)
        });
        blocks.push(json!({"type": "actions", "block_id": "alert", "elements": actions}));
    }
    blocks
        .push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} · {state}", group.id)}]}));
    SlackMessage { text: format!("{emoji} {}", truncate(&headline, 300)), blocks: Value::Array(blocks) }
}

/// The form the Declare button opens: severity, title and details,
/// prefilled from the alert.
pub fn declare_modal(group: &AlertGroup, severity: Severity) -> Value {
    let option = |s: Severity| json!({"text": {"type": "plain_text", "text": format!("{} {}", s.emoji(), s)}, "value": s.as_str()});
    let options: Vec<Value> = Severity::ALL.into_iter().map(option).collect();
    let ids = declare_ids(group.id);
    json!({
        "type": "modal",
        "callback_id": ids.callback_id,
        "private_metadata": ids.private_metadata,
        "title": {"type": "plain_text", "text": "Declare incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": SEVERITY_FIELD, "label": {"type": "plain_text", "text": "Severity"},
             "element": {"type": "static_select", "action_id": SEVERITY_FIELD, "options": options, "initial_option": option(severity)}},
            {"type": "input", "block_id": TITLE_FIELD, "label": {"type": "plain_text", "text": "Title"},
             "element": {"type": "plain_text_input", "action_id": TITLE_FIELD, "max_length": 150,
                         "initial_value": truncate(&title(group), 150)}},
            {"type": "input", "block_id": DETAILS_FIELD, "optional": true, "label": {"type": "plain_text", "text": "What fired"},
             "element": {"type": "plain_text_input", "action_id": DETAILS_FIELD, "multiline": true, "max_length": 2000,
                         "initial_value": truncate(&crate::text::plain(&details(group)), 2000)}}
        ]
    })
}

/// A group as one line of a storm digest's thread.
pub fn digest_line(group: &AlertGroup, now: DateTime<Utc>) -> String {
    let mark = if group.firing { "🔴" } else { "✅" };
    let what = match &group.detail {
        Detail::Workflow(w) => match w.latest() {
            Some(run) => run_line(&format!("{} on `{}`", escape(&w.workflow), escape(&w.branch)), run),
            None => escape(&title(group)),
        },
        Detail::Alertmanager(state) => {
            let firing = state.firing().count();
            format!("{} · {firing} firing", escape(&title(group)))
        }
        _ => escape(&title(group)),
    };
    let state = if group.firing {
        String::new()
    } else {
        format!(" · recovered {}", slack_date(group.resolved.unwrap_or(now)))
    };
    truncate(&format!("{mark} *{}* {what}{state}", group.id), 600)
}

/// A thread note of a group rolled into a digest, as a line of its thread.
pub fn digest_note(group: &AlertGroup, note: &str) -> String {
    truncate(&format!("↳ *{}* {note}", group.id), 600)
}

/// The digest that stands in for alerts a channel cannot take one by one.
/// It counts its lines: each is an alert group opening, changing or a note
/// of one, so "updates" rather than alerts.
pub fn digest(alerts: usize, groups: usize, since: DateTime<Utc>) -> SlackMessage {
    let noun = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let headline = format!(
        "⚠ {} since {} in {}",
        noun(alerts, "alert update", "alert updates"),
        since.format("%H:%M UTC"),
        noun(groups, "group", "groups")
    );
    let body = format!(
        "*{}* arrived since {} in *{}*: more than this channel can take one by one. Every one is listed in this thread; each group's later changes are listed there too.",
        noun(alerts, "alert update", "alert updates"),
        slack_date(since),
        noun(groups, "group", "groups")
    );
    SlackMessage {
        text: headline.clone(),
        blocks: json!([
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&headline, HEADER_MAX), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&body, SECTION_MAX)}}
        ]),
    }
}

/// One message of a digest's thread: a run of its lines.
pub fn digest_batch(lines: &[String]) -> SlackMessage {
    let text = lines.join("\n");
    SlackMessage { text: truncate(&text, 300), blocks: crate::blocks::sections(&text) }
}
