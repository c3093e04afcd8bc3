//! Incident decisions: every `/incident` command, a click on an incident's
//! buttons, the resolve modal's submission, and the incident's timers
//! (escalation, reminders). Each takes what it needs and `now`, and returns
//! a [`Decision`] about one incident.

use super::command::{Command, USAGE};
use super::render;
use super::{Incident, IncidentChange, Origin, Stamp, Status, TimelineEntry, TimelineEvent, TransitionError};
use crate::checklist::start_checklist;
use crate::codec::IncidentButton;
use crate::decision::{Decision, Effect, Invocation, Reply};
use crate::runbook::Runbook;
use crate::severity::Severity;
use crate::subject::{AlertId, ChecklistPart, IncidentChecklist, IncidentId, IncidentMessage, Message, Subject};
use crate::text::duration;
use crate::timer::{Declaration, IncidentReminder, Timer, TimerKind};
use chrono::{DateTime, TimeDelta, Utc};
use IncidentChecklist::Playbook;

/// A decision about one incident.
pub type IncidentDecision = Decision<IncidentChange>;

/// How far back `/incident stats` looks.
pub const STATS_WINDOW: TimeDelta = TimeDelta::days(30);
/// The seed runbook's KPI "Mean Time to Recovery < 30 minutes", for a
/// runbook file whose `kpis` leave it out.
pub const MTTR_TARGET: TimeDelta = TimeDelta::minutes(30);
/// The KPI `/incident stats` holds recoveries against.
pub const MTTR_KPI: &str = "mean-time-to-recovery";

/// The runbook's mean-time-to-recovery target (its `kpis`), else the seed's.
pub fn mttr_target(runbook: &Runbook) -> TimeDelta {
    runbook
        .alerts
        .kpis
        .iter()
        .find(|k| k.id == MTTR_KPI)
        .and_then(|k| crate::runbook::load::duration_target(&k.target))
        .unwrap_or(MTTR_TARGET)
}

/// What an incident decision needs loaded first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// A fresh incident number.
    NewId,
    One(IncidentId),
    /// The incident and its timeline.
    WithTimeline(IncidentId),
    /// The open incidents, newest first.
    Open,
    /// Incidents declared within this long before now, open or not.
    DeclaredWithin(TimeDelta),
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    NewId(IncidentId),
    One(Option<Incident>),
    WithTimeline(Option<(Incident, Vec<TimelineEntry>)>),
    Many(Vec<Incident>),
}

fn alert(id: IncidentId) -> Message {
    Message::Incident(id, IncidentMessage::Alert)
}

fn checklist(id: IncidentId, which: IncidentChecklist, part: ChecklistPart) -> Message {
    Message::Incident(id, IncidentMessage::Checklist(which, part))
}

fn in_thread(id: IncidentId, text: String) -> Effect {
    Effect::InThread { subject: Subject::Incident(id), text }
}

fn changed(reply: Reply, incident: Incident, entry: TimelineEntry, effects: Vec<Effect>) -> IncidentDecision {
    let mut decision = Decision::answer(reply);
    decision.change = Some(IncidentChange { incident, timeline: vec![entry] });
    decision.effects = effects;
    decision
}

/// Mentions of the role at `level` of the severity's escalation matrix,
/// with its name: `("DevOps team lead", "<@U1> <!subteam^S2>")`. A role
/// with an on-call rotation is paged as whoever is on call at `now`.
fn escalation_audience(runbook: &Runbook, inc: &Incident, level: usize, now: DateTime<Utc>) -> (String, String) {
    match runbook.escalation_role(inc.severity, level) {
        Some(role) => {
            let mentions: Vec<String> = runbook.paged(role, now).iter().map(|p| p.to_mrkdwn()).collect();
            (role.name.clone(), mentions.join(" "))
        }
        None => ("responders".to_owned(), "<!here>".to_owned()),
    }
}

fn declare(
    id: IncidentId,
    severity: Severity,
    title: &str,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let policy = runbook.policy(severity);
    let mut incident = Incident::new(
        id,
        severity,
        title.to_owned(),
        Stamp { user: who.user.clone(), at: now },
        who.channel.clone(),
        who.team_domain.clone(),
    );
    incident.playbook = start_checklist(&policy.playbook);
    incident.update_due = policy.update_every.map(|every| now + every);
    let entry = TimelineEntry {
        at: now,
        user: who.user.clone(),
        event: TimelineEvent::Declared { severity, title: title.to_owned() },
    };
    let channel = runbook.channel_for(severity);
    let reply = Reply::text(format!(
        "🚨 *{id}* declared ({severity}). Posting the alert to {channel}; I'll send you the link as soon as it is up."
    ));
    let (first, mentions) = escalation_audience(runbook, &incident, 0, now);
    let next = runbook
        .policy(severity)
        .escalation
        .get(1)
        .and_then(|r| runbook.role(r))
        .map(|r| format!(" or this escalates to the {}", r.name))
        .unwrap_or_default();
    // Roles the runbook pages at once beside the first responder (the
    // seed's P0 tells management straight away).
    let also: String = policy
        .also_page
        .iter()
        .filter(|r| runbook.policy(severity).escalation.first() != Some(*r))
        .filter_map(|r| runbook.role(r))
        .map(|role| {
            let mentions: Vec<String> = runbook.paged(role, now).iter().map(|p| p.to_mrkdwn()).collect();
            format!(", and the {}: {}", role.name, mentions.join(" "))
        })
        .collect();
    let page = format!(
        "📟 Paging the {first}: {mentions}{also}. Acknowledge within {}{next}.",
        duration(policy.targets.respond)
    );
    let mut effects = vec![Effect::Post(alert(id)), in_thread(id, page)];
    effects.extend(
        crate::checklist::parts(&incident.playbook)
            .into_iter()
            .map(|part| Effect::Post(checklist(id, IncidentChecklist::Playbook, part))),
    );
    effects.push(Effect::SendAlertLink { incident: id, channel: who.channel.clone(), user: who.user.clone() });
    let mut timers = vec![
        Timer::incident(id, 0, now + policy.targets.respond, IncidentReminder::Escalate { level: 1 }),
        Timer::incident(id, 0, now + policy.targets.resolve, IncidentReminder::ResolutionOverdue { round: 1 }),
    ];
    if let Some(due) = incident.update_due {
        timers.push(Timer::incident(id, 0, due, IncidentReminder::UpdateDue));
    }
    let mut decision = changed(reply, incident, entry, effects);
    decision.timers = timers;
    decision
}

/// A runbook rule's incident for an alert group (a failed production
/// deployment, a critical Alertmanager group): the whole declare flow, with
/// opsbot as the declarer and what fired in the incident.
pub fn declare_from_alert(
    id: IncidentId,
    alert: AlertId,
    declaration: &Declaration,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let channel = runbook.channel_for(declaration.severity).to_owned();
    let by_rule =
        Invocation { user: super::BY_RULE.to_owned(), channel: channel.clone(), team_domain: None, response_url: None };
    let mut decision = declare(id, declaration.severity, &declaration.title, &by_rule, runbook, now);
    // Nobody typed a command, so nobody waits for the link.
    decision.effects.retain(|e| !matches!(e, Effect::SendAlertLink { .. }));
    if declaration.announce {
        let note = format!("🚨 The runbook declared *{id}* ({}) for this; it is in {channel}.", declaration.severity);
        decision.effects.push(Effect::InThread { subject: Subject::Alert(alert), text: note });
    }
    if let Some(change) = decision.change.as_mut() {
        change.incident.origin = Some(Origin { alert, details: declaration.details.clone() });
    }
    decision.timers.push(Timer {
        due: now,
        kind: TimerKind::AlertDeclared { alert, incident: id, severity: declaration.severity, by: None },
    });
    decision.reply = Reply::text("");
    decision
}

/// The declare form an alert's button opened was submitted.
#[allow(clippy::too_many_arguments)]
pub fn declare_submitted(
    loaded: Loaded,
    alert: AlertId,
    severity: Option<Severity>,
    title: &str,
    details: Option<&str>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let Some(severity) = severity else {
        return Decision::invalid(crate::codec::SEVERITY_FIELD, "Choose a severity, P0 to P3.");
    };
    if title.trim().is_empty() {
        return Decision::invalid(crate::codec::TITLE_FIELD, "Give the incident a title.");
    }
    let Loaded::NewId(id) = loaded else { return Decision::reply(crate::replies::INTERNAL_ERROR) };
    // A form has no channel; follow-up notes go where the incident is.
    let channel = runbook.channel_for(severity).to_owned();
    let declarer = Invocation {
        user: who.user.clone(),
        channel: channel.clone(),
        team_domain: who.team_domain.clone(),
        response_url: None,
    };
    let mut decision = declare(id, severity, title.trim(), &declarer, runbook, now);
    decision.effects.retain(|e| !matches!(e, Effect::SendAlertLink { .. }));
    let note = format!("🚨 <@{}> declared *{id}* ({severity}) for this; it is in {channel}.", who.user);
    decision.effects.push(Effect::InThread { subject: Subject::Alert(alert), text: note });
    if let Some(change) = decision.change.as_mut() {
        // Typed in a plain-text box: shown as typed, never as markup.
        let details = details.map_or_else(|| format!("Declared from {alert}."), crate::text::escape);
        change.incident.origin = Some(Origin { alert, details });
    }
    decision.timers.push(Timer {
        due: now,
        kind: TimerKind::AlertDeclared { alert, incident: id, severity, by: Some(who.user.clone()) },
    });
    decision
}

/// What a `/incident` command needs loaded before it is decided.
pub fn needs(cmd: &Command) -> Need {
    match cmd {
        Command::Help => Need::Nothing,
        Command::Declare { .. } => Need::NewId,
        Command::List => Need::Open,
        Command::Show(id) | Command::Report(id) => Need::WithTimeline(*id),
        Command::Stats => Need::DeclaredWithin(STATS_WINDOW),
        Command::Ack(id)
        | Command::Resolve { id, .. }
        | Command::Update { id, .. }
        | Command::Commander { id, .. }
        | Command::ChangeSeverity { id, .. } => Need::One(*id),
    }
}

/// Decides what a `/incident` command does, with what [`needs`] asked for.
pub fn command(
    cmd: &Command,
    loaded: Loaded,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    match (cmd, loaded) {
        (Command::Help, _) => Decision::reply(USAGE),
        (Command::Declare { severity, title }, Loaded::NewId(id)) => declare(id, *severity, title, who, runbook, now),
        (Command::List, Loaded::Many(open)) => Decision::answer(render::incident_list(&open, now)),
        (Command::Show(id), Loaded::WithTimeline(found)) => match found {
            Some((incident, timeline)) => {
                Decision::answer(render::incident_details(&incident, &timeline, runbook, now))
            }
            None => unknown(*id),
        },
        (Command::Ack(id), Loaded::One(found)) => transition(*id, found, |inc| {
            let entry = inc.acknowledge(&who.user, now)?;
            let reply = Reply::text(format!("👀 You acknowledged *{}*; escalation is stopped.", inc.id));
            let note = format!("👀 <@{}> acknowledged *{}*; escalation stopped.", who.user, inc.id);
            Ok((reply, entry, vec![Effect::Refresh(alert(inc.id)), in_thread(inc.id, note)]))
        }),
        (Command::Resolve { id, summary }, Loaded::One(found)) => transition(*id, found, |inc| {
            let entry = inc.resolve(&who.user, summary.clone(), now)?;
            inc.post_incident = start_checklist(&runbook.post_incident.sections);
            let reply = Reply::text(format!("✅ *{}* resolved. The post-incident checklist is in its thread.", inc.id));
            let note = match summary {
                Some(s) => format!("✅ Resolved by <@{}>: {}", who.user, crate::text::escape(s)),
                None => format!("✅ Resolved by <@{}>.", who.user),
            };
            let mut effects = vec![Effect::Refresh(alert(inc.id)), in_thread(inc.id, note)];
            // The playbook's buttons go away: its steps can no longer be settled.
            effects.extend(
                crate::checklist::parts(&inc.playbook)
                    .into_iter()
                    .map(|part| Effect::Refresh(checklist(inc.id, IncidentChecklist::Playbook, part))),
            );
            effects.extend(
                crate::checklist::parts(&inc.post_incident)
                    .into_iter()
                    .map(|part| Effect::Post(checklist(inc.id, IncidentChecklist::PostIncident, part))),
            );
            Ok((reply, entry, effects))
        }),
        (Command::Update { id, text }, Loaded::One(found)) => {
            let every = found.as_ref().and_then(|inc| runbook.policy(inc.severity).update_every);
            let mut decision = transition(*id, found, |inc| {
                let entry = inc.post_update(&who.user, text.clone(), now)?;
                inc.update_due = every.map(|every| now + every);
                let note = format!("📣 *Status update* from <@{}>: {}", who.user, crate::text::escape(text));
                Ok((
                    Reply::text(format!("📣 Update posted in *{}*'s thread.", inc.id)),
                    entry,
                    vec![in_thread(inc.id, note)],
                ))
            });
            if let Some(IncidentChange { incident: inc, .. }) = &decision.change {
                if let Some(due) = inc.update_due {
                    decision.timers.push(Timer::incident(*id, inc.generation, due, IncidentReminder::UpdateDue));
                }
            }
            decision
        }
        (Command::Commander { id, user }, Loaded::One(found)) => transition(*id, found, |inc| {
            let entry = inc.assign_commander(&who.user, user.clone(), now)?;
            let note = format!("🎖️ <@{user}> is now the incident commander (assigned by <@{}>).", who.user);
            Ok((
                Reply::text(format!("🎖️ <@{user}> commands *{}*.", inc.id)),
                entry,
                vec![Effect::Refresh(alert(inc.id)), in_thread(inc.id, note)],
            ))
        }),
        (Command::Report(id), Loaded::WithTimeline(found)) => match found {
            Some((incident, timeline)) => {
                let text = crate::text::truncate(
                    &super::report::report(&incident, &timeline, runbook, super::report::Style::Slack),
                    39_000,
                );
                let mut d = Decision::answer(Reply::text(format!("📋 The report of *{id}* is posted in its thread.")));
                d.effects.push(in_thread(*id, text));
                d
            }
            None => unknown(*id),
        },
        (Command::Stats, Loaded::Many(recent)) => Decision::answer(Reply::text(super::report::stats(
            &recent,
            runbook,
            mttr_target(runbook),
            STATS_WINDOW.num_days(),
        ))),
        (Command::ChangeSeverity { id, severity }, Loaded::One(found)) => {
            change_severity(*id, *severity, found, who, runbook, now)
        }
        // The shell loads what `needs` asks for; anything else is a bug in
        // the shell, answered without changing anything.
        (_, _) => Decision::reply(crate::replies::INTERNAL_ERROR),
    }
}

/// Re-routes and re-times an incident at a new severity. The response
/// clock restarts at the change (a raise is a new page); the resolution
/// target counts from declaration; timers of the old severity go stale.
fn change_severity(
    id: IncidentId,
    to: Severity,
    found: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let Some(mut inc) = found else { return unknown(id) };
    if let Some(by) = &inc.resolved {
        return Decision::answer(Reply::text(render::refusal(&TransitionError::AlreadyResolved {
            id,
            by: by.clone(),
        })));
    }
    let from = inc.severity;
    if from == to {
        return Decision::answer(Reply::text(format!("*{id}* is already {to}; nothing was changed.")));
    }
    let policy = runbook.policy(to);
    inc.severity = to;
    inc.generation += 1;
    let raised = to < from;
    if raised {
        // The more severe playbook starts now, after what was already done.
        inc.playbook.extend(start_checklist(&policy.playbook).into_iter().map(|mut phase| {
            phase.name = format!("{to}: {}", phase.name);
            phase
        }));
    }
    let gen = inc.generation;
    let mut timers = vec![Timer::incident(
        id,
        gen,
        (inc.declared.at + policy.targets.resolve).max(now),
        IncidentReminder::ResolutionOverdue { round: 1 },
    )];
    inc.update_due = policy.update_every.map(|every| now + every);
    if let Some(due) = inc.update_due {
        timers.push(Timer::incident(id, gen, due, IncidentReminder::UpdateDue));
    }
    let verb = if raised { "raised" } else { "lowered" };
    let mut note = format!("{} Severity {verb} {from} → {to} by <@{}>.", if raised { "⬆️" } else { "⬇️" }, who.user);
    if inc.status == Status::Declared {
        timers.push(Timer::incident(
            id,
            gen,
            now + policy.targets.respond,
            IncidentReminder::Escalate { level: inc.escalation_level + 1 },
        ));
        let (role, mentions) = escalation_audience(runbook, &inc, inc.escalation_level, now);
        note.push_str(&format!(
            " Paging the {role}: {mentions}. Acknowledge within {}.",
            duration(policy.targets.respond)
        ));
    }
    let moves = runbook.channel_for(from) != runbook.channel_for(to);
    let mut effects = vec![if moves { Effect::MoveAlert { incident: id } } else { Effect::Refresh(alert(id)) }];
    effects.push(in_thread(id, note));
    if raised {
        let messages = crate::checklist::parts(&inc.playbook).into_iter().map(|p| checklist(id, Playbook, p));
        effects.extend(messages.filter(|m| inc.posted.get(m).is_none()).map(Effect::Post));
    }
    let entry = TimelineEntry { at: now, user: who.user.clone(), event: TimelineEvent::SeverityChanged { from, to } };
    let reply = if moves {
        format!("*{id}* is now {to}; its alert moves to {}.", runbook.channel_for(to))
    } else {
        format!("*{id}* is now {to}.")
    };
    let mut decision = changed(Reply::text(reply), inc, entry, effects);
    decision.timers = timers;
    decision
}

/// A click on one of an incident's buttons. The HTTP answer to a click is
/// not shown to anyone, so refusals become an ephemeral note to the clicker.
pub fn click(
    button: IncidentButton,
    id: IncidentId,
    incident: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let mut decision = match button {
        IncidentButton::Acknowledge => command(&Command::Ack(id), Loaded::One(incident), who, runbook, now),
        IncidentButton::TakeCommand => {
            command(&Command::Commander { id, user: who.user.clone() }, Loaded::One(incident), who, runbook, now)
        }
        // Resolve asks for a summary first; the modal's submission resolves.
        IncidentButton::Resolve => match incident {
            Some(inc) if inc.is_open() => {
                let mut d = Decision::nothing();
                d.modal = Some(render::resolve_modal(&inc));
                return d;
            }
            other => command(&Command::Resolve { id, summary: None }, Loaded::One(other), who, runbook, now),
        },
        IncidentButton::Step { checklist: which, phase, step, done } => transition(id, incident, |inc| {
            let entry = inc.settle_step(which, phase, step, done, &who.user, now)?;
            let part = ChecklistPart::of_step(phase, step);
            Ok((
                Reply::text(""),
                entry,
                vec![Effect::Refresh(checklist(inc.id, which, part)), Effect::Refresh(alert(inc.id))],
            ))
        }),
    };
    if !decision.changes_state() {
        decision.effects.push(Effect::Ephemeral {
            channel: who.channel.clone(),
            user: who.user.clone(),
            text: decision.reply.text.clone(),
        });
    }
    decision
}

/// The resolve modal was submitted. A refusal keeps the modal open, saying
/// why under the summary.
pub fn resolve_submitted(
    id: IncidentId,
    summary: Option<String>,
    incident: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let summary = summary.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let decision = command(&Command::Resolve { id, summary }, Loaded::One(incident), who, runbook, now);
    if decision.changes_state() {
        decision
    } else {
        Decision::invalid(crate::codec::SUMMARY_FIELD, decision.reply.text)
    }
}

/// A deployment was asked for while the incident is open: its timeline
/// records it and its thread says so. A resolved incident's timeline is
/// left as it was; it was open when the deployment was asked for, but its
/// report was written without it.
pub fn deployment_noted(
    deployment: crate::subject::DeployId,
    by: &str,
    text: &str,
    incident: Option<Incident>,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let Some(incident) = incident.filter(|i| i.is_open()) else { return Decision::nothing() };
    let id = incident.id;
    let entry = TimelineEntry {
        at: now,
        user: by.to_owned(),
        event: TimelineEvent::Deployment { deployment, text: text.to_owned() },
    };
    changed(Reply::text(""), incident, entry, vec![in_thread(id, text.to_owned())])
}

/// One of an incident's timers came due (at `due`, set in `generation`):
/// act on it if its reason still holds.
pub fn timer(
    reminder: IncidentReminder,
    generation: u32,
    due: DateTime<Utc>,
    incident: Option<Incident>,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> IncidentDecision {
    let nothing = Decision::nothing;
    let Some(mut inc) = incident else { return nothing() };
    if inc.status == Status::Resolved || generation != inc.generation {
        return nothing();
    }
    let policy = runbook.policy(inc.severity);
    let elapsed = duration(now - inc.declared.at);
    match reminder {
        IncidentReminder::Escalate { level } => {
            let (role, mentions) = escalation_audience(runbook, &inc, level, now);
            let Some(entry) = inc.escalate(level, &role, now) else { return nothing() };
            let last = policy.escalation.len().saturating_sub(1);
            let text = if level <= last {
                format!(
                    "⏫ *{}* has not been acknowledged after {elapsed}. Escalating to the {role}: {mentions}",
                    inc.id
                )
            } else {
                format!(
                    "⏫ *{}* is still not acknowledged after {elapsed}. {mentions}, please acknowledge or hand it on.",
                    inc.id
                )
            };
            let id = inc.id;
            let mut decision =
                changed(Reply::text(""), inc, entry, vec![in_thread(id, text), Effect::Refresh(alert(id))]);
            decision.timers.push(Timer::incident(
                id,
                generation,
                due + policy.targets.respond,
                IncidentReminder::Escalate { level: level + 1 },
            ));
            decision
        }
        IncidentReminder::ResolutionOverdue { round } => {
            let (_, mentions) = escalation_audience(runbook, &inc, inc.escalation_level, now);
            let commander = inc.commander.as_ref().map(|c| format!("<@{c}> ")).unwrap_or_default();
            let text = format!(
                "⏰ *{}* is past its resolution target of {} (open for {elapsed}). {commander}{mentions}: what is the plan?",
                inc.id,
                duration(policy.targets.resolve)
            );
            let mut decision = nothing();
            decision.effects.push(in_thread(inc.id, text));
            decision.timers.push(Timer::incident(
                inc.id,
                generation,
                due + policy.targets.resolve,
                IncidentReminder::ResolutionOverdue { round: round + 1 },
            ));
            decision
        }
        IncidentReminder::UpdateDue => {
            let (Some(expected), Some(every)) = (inc.update_due, policy.update_every) else { return nothing() };
            if expected != due {
                // A newer update moved the nudge; this one is stale.
                return nothing();
            }
            let who = match &inc.commander {
                Some(c) => format!("<@{c}>"),
                None => escalation_audience(runbook, &inc, inc.escalation_level, now).1,
            };
            let text = format!(
                "📝 {who}: no status update on *{}* for {}. Post one with `/incident update {} <what changed>`.",
                inc.id,
                duration(every),
                inc.id
            );
            let id = inc.id;
            inc.update_due = Some(due + every);
            let mut decision = Decision::nothing();
            decision.change = Some(IncidentChange { incident: inc, timeline: Vec::new() });
            decision.effects.push(in_thread(id, text));
            decision.timers.push(Timer::incident(id, generation, due + every, IncidentReminder::UpdateDue));
            decision
        }
    }
}

/// An `@opsbot …` mention: `help`, or `status` (the open incidents).
pub fn mention(text: &str, open: &[Incident], channel: &str, ts: &str, now: DateTime<Utc>) -> IncidentDecision {
    let words: Vec<&str> = text.split_whitespace().filter(|w| !(w.starts_with("<@") && w.ends_with('>'))).collect();
    let answer = match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("status") | Some("incidents") => render::incident_list(open, now).text,
        _ => render::mention_help(),
    };
    let mut decision = Decision::answer(Reply::text(""));
    decision.effects.push(Effect::Say { channel: channel.to_owned(), thread_ts: Some(ts.to_owned()), text: answer });
    decision
}

fn unknown(id: IncidentId) -> IncidentDecision {
    Decision::answer(Reply::text(format!("There is no incident *{id}*. `/incident list` shows the open ones.")))
}

type Transition = Result<(Reply, TimelineEntry, Vec<Effect>), TransitionError>;

fn transition(
    id: IncidentId,
    found: Option<Incident>,
    apply: impl FnOnce(&mut Incident) -> Transition,
) -> IncidentDecision {
    let Some(mut incident) = found else {
        return unknown(id);
    };
    match apply(&mut incident) {
        Ok((reply, entry, effects)) => changed(reply, incident, entry, effects),
        Err(refused) => Decision::reply(render::refusal(&refused)),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn stats_hold_recoveries_against_the_runbooks_own_mttr_target() {
        let mut runbook = Runbook::seed();
        assert_eq!(mttr_target(&runbook), TimeDelta::minutes(30));
        runbook.alerts.kpis.iter_mut().find(|k| k.id == MTTR_KPI).unwrap().target = "< 1 hour".into();
        assert_eq!(mttr_target(&runbook), TimeDelta::hours(1));
        runbook.alerts.kpis.retain(|k| k.id != MTTR_KPI);
        assert_eq!(mttr_target(&runbook), MTTR_TARGET);
    }
    use super::*;
    use crate::severity::Severity;
    use crate::timer::TimerKind;
    use chrono::{TimeDelta, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn alice() -> Invocation {
        Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: Some("acme".into()),
            response_url: None,
        }
    }

    fn runbook() -> Runbook {
        Runbook::seed()
    }

    fn declare_decision(severity: Severity) -> IncidentDecision {
        let cmd = Command::Declare { severity, title: "API down".into() };
        command(&cmd, Loaded::NewId(IncidentId(1)), &alice(), &runbook(), now())
    }

    fn declared(severity: Severity) -> Incident {
        declare_decision(severity).change.unwrap().incident
    }

    /// The incident it decided about, if it changed.
    fn changed_incident(d: &IncidentDecision) -> Option<Incident> {
        d.change.clone().map(|c| c.incident)
    }

    /// A timer of INC-1, set at generation 0, due `after` now.
    fn incident_timer(reminder: IncidentReminder, after: TimeDelta) -> Timer {
        Timer::incident(IncidentId(1), 0, now() + after, reminder)
    }

    /// Hands a due timer to the incident's timer handler, as the router does.
    fn fire(t: &Timer, incident: Option<Incident>, runbook: &Runbook, now: DateTime<Utc>) -> IncidentDecision {
        let TimerKind::Incident { generation, reminder, .. } = t.kind else { panic!("not an incident's timer: {t:?}") };
        timer(reminder, generation, t.due, incident, runbook, now)
    }

    fn alert_of(id: u64) -> Message {
        Message::Incident(IncidentId(id), IncidentMessage::Alert)
    }

    fn thread_texts(d: &IncidentDecision) -> Vec<&str> {
        d.effects
            .iter()
            .filter_map(|e| match e {
                Effect::InThread { subject: Subject::Incident(_), text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_p0_pages_the_on_call_engineer_and_management_at_once_as_the_seed_says() {
        let p0 = Command::Declare { severity: Severity::P0, title: "Checkout down".into() };
        let d = command(&p0, Loaded::NewId(IncidentId(1)), &alice(), &Runbook::seed(), now());
        let page = &thread_texts(&d)[0];
        assert!(page.contains("Paging the On-call engineer: <!here>, and the Engineering manager: <!here>."), "{page}");
        let p1 = Command::Declare { severity: Severity::P1, title: "Search slow".into() };
        let d = command(&p1, Loaded::NewId(IncidentId(2)), &alice(), &Runbook::seed(), now());
        assert!(
            !thread_texts(&d)[0].contains("Engineering manager"),
            "P1 escalates in its time: {:?}",
            thread_texts(&d)
        );
    }

    #[test]
    fn declare_posts_the_alert_pages_the_first_responder_and_starts_the_playbook() {
        let cmd = Command::Declare { severity: Severity::P0, title: "API down".into() };
        let d = command(&cmd, Loaded::NewId(IncidentId(42)), &alice(), &runbook(), now());
        let inc = changed_incident(&d).unwrap();
        assert_eq!((inc.id, inc.status, inc.declared.user.as_str()), (IncidentId(42), Status::Declared, "U0ALICE"));
        assert!(d.reply.text.contains("INC-42") && d.reply.text.contains("#devops-alerts"));
        assert_eq!(d.effects[0], Effect::Post(alert_of(42)));
        assert!(thread_texts(&d)[0].starts_with("📟 Paging the"), "{:?}", thread_texts(&d));
        let phases = runbook().policy(Severity::P0).playbook.len();
        assert_eq!(inc.playbook.len(), phases);
        let posted = d
            .effects
            .iter()
            .filter(|e| {
                matches!(e, Effect::Post(Message::Incident(IncidentId(42), IncidentMessage::Checklist(Playbook, _))))
            })
            .count();
        assert!(posted >= phases, "one message per phase at least");
        assert!(matches!(d.effects.last(), Some(Effect::SendAlertLink { user, .. }) if user == "U0ALICE"));
        let respond = runbook().targets(Severity::P0).respond;
        assert!(d.timers.contains(&Timer::incident(
            IncidentId(42),
            0,
            now() + respond,
            IncidentReminder::Escalate { level: 1 }
        )));
    }

    #[test]
    fn p2_declare_is_announced_in_devops() {
        let d = declare_decision(Severity::P2);
        assert!(d.reply.text.contains("#devops;"), "{}", d.reply.text);
    }

    #[test]
    fn p0_escalates_to_the_next_level_after_five_minutes_without_ack() {
        let rb = runbook();
        let inc = declared(Severity::P0);
        let d = fire(
            &incident_timer(IncidentReminder::Escalate { level: 1 }, TimeDelta::minutes(5)),
            Some(inc),
            &rb,
            now() + TimeDelta::minutes(5),
        );
        let escalated = changed_incident(&d).expect("escalation changes the incident");
        assert_eq!(escalated.escalation_level, 1);
        let role = rb.escalation_role(Severity::P0, 1).unwrap();
        let text = thread_texts(&d)[0];
        assert!(text.contains(&format!("Escalating to the {}", role.name)), "{text}");
        assert!(text.contains("after 5 min"), "{text}");
        assert!(d.effects.contains(&Effect::Refresh(alert_of(1))));
        assert_eq!(d.timers, vec![incident_timer(IncidentReminder::Escalate { level: 2 }, TimeDelta::minutes(10))]);
    }

    #[test]
    fn an_acknowledged_incident_never_escalates() {
        let mut inc = declared(Severity::P0);
        inc.acknowledge("U0BOB", now() + TimeDelta::minutes(2)).unwrap();
        let d = fire(
            &incident_timer(IncidentReminder::Escalate { level: 1 }, TimeDelta::minutes(5)),
            Some(inc),
            &runbook(),
            now() + TimeDelta::minutes(5),
        );
        assert!(!d.changes_state() && d.effects.is_empty() && d.timers.is_empty());
    }

    #[test]
    fn a_timer_firing_twice_escalates_once() {
        let rb = runbook();
        let t = incident_timer(IncidentReminder::Escalate { level: 1 }, TimeDelta::minutes(5));
        let once = changed_incident(&fire(&t, Some(declared(Severity::P0)), &rb, t.due)).unwrap();
        let twice = fire(&t, Some(once), &rb, t.due);
        assert!(!twice.changes_state() && twice.effects.is_empty());
    }

    #[test]
    fn past_the_resolution_target_the_thread_is_reminded_each_round() {
        let rb = runbook();
        let resolve = rb.targets(Severity::P1).resolve;
        let t = incident_timer(IncidentReminder::ResolutionOverdue { round: 1 }, resolve);
        let d = fire(&t, Some(declared(Severity::P1)), &rb, t.due);
        assert!(thread_texts(&d)[0].contains("past its resolution target of 4 h"), "{:?}", thread_texts(&d));
        assert_eq!(d.timers[0].due, now() + resolve + resolve);
        let mut resolved = declared(Severity::P1);
        resolved.resolve("U0BOB", None, now()).unwrap();
        assert!(fire(&t, Some(resolved), &rb, t.due).effects.is_empty());
    }

    #[test]
    fn an_update_moves_the_nudge_and_the_old_nudge_does_nothing() {
        let rb = runbook();
        let inc = declared(Severity::P0);
        let every = rb.policy(Severity::P0).update_every.expect("P0 asks for updates");
        let first_due = inc.update_due.unwrap();
        assert_eq!(first_due, now() + every);
        let later = now() + TimeDelta::minutes(10);
        let cmd = Command::Update { id: IncidentId(1), text: "rolled back".into() };
        let d = command(&cmd, Loaded::One(Some(inc)), &alice(), &rb, later);
        let updated = changed_incident(&d).unwrap();
        assert_eq!(updated.update_due, Some(later + every));
        assert_eq!(d.timers, vec![Timer::incident(IncidentId(1), 0, later + every, IncidentReminder::UpdateDue)]);
        let stale = Timer::incident(IncidentId(1), 0, first_due, IncidentReminder::UpdateDue);
        assert!(fire(&stale, Some(updated.clone()), &rb, first_due).effects.is_empty());
        let fresh = Timer::incident(IncidentId(1), 0, later + every, IncidentReminder::UpdateDue);
        let nudge = fire(&fresh, Some(updated), &rb, later + every);
        assert!(thread_texts(&nudge)[0].contains("no status update"), "{:?}", thread_texts(&nudge));
    }

    #[test]
    fn ack_refreshes_the_alert_and_notes_it_in_the_thread() {
        let d = command(
            &Command::Ack(IncidentId(1)),
            Loaded::One(Some(declared(Severity::P0))),
            &alice(),
            &runbook(),
            now(),
        );
        assert_eq!(changed_incident(&d).unwrap().status, Status::Acknowledged);
        assert_eq!(d.effects[0], Effect::Refresh(alert_of(1)));
        assert!(thread_texts(&d)[0].contains("escalation stopped"));
    }

    #[test]
    fn resolve_starts_the_post_incident_checklist() {
        let cmd = Command::Resolve { id: IncidentId(1), summary: Some("rolled back".into()) };
        let d = command(&cmd, Loaded::One(Some(declared(Severity::P0))), &alice(), &runbook(), now());
        let inc = changed_incident(&d).unwrap();
        assert!(!inc.post_incident.is_empty());
        assert!(d.effects.iter().any(|e| matches!(
            e,
            Effect::Post(Message::Incident(
                IncidentId(1),
                IncidentMessage::Checklist(IncidentChecklist::PostIncident, _)
            ))
        )));
    }

    #[test]
    fn resolving_a_resolved_incident_changes_nothing() {
        let mut inc = declared(Severity::P1);
        inc.resolve("U0BOB", None, now()).unwrap();
        let cmd = Command::Resolve { id: IncidentId(1), summary: None };
        let d = command(&cmd, Loaded::One(Some(inc)), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(d.effects.is_empty());
        assert!(d.reply.text.contains("already resolved"), "{}", d.reply.text);
        assert!(d.reply.text.contains("<@U0BOB>"), "{}", d.reply.text);
    }

    #[test]
    fn unknown_id_is_answered_and_changes_nothing() {
        let d = command(&Command::Ack(IncidentId(999)), Loaded::One(None), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(d.reply.text.contains("no incident *INC-999*"));
    }

    #[test]
    fn a_step_click_settles_once_and_refreshes_its_message() {
        let rb = runbook();
        let step = IncidentButton::Step { checklist: IncidentChecklist::Playbook, phase: 0, step: 1, done: true };
        let d = click(step, IncidentId(1), Some(declared(Severity::P0)), &alice(), &rb, now());
        let inc = changed_incident(&d).unwrap();
        assert_eq!(crate::checklist::progress(&inc.playbook).0, 1);
        assert!(d.effects.contains(&Effect::Refresh(Message::Incident(
            IncidentId(1),
            IncidentMessage::Checklist(IncidentChecklist::Playbook, ChecklistPart { phase: 0, part: 0 })
        ))));
        let again = click(step, IncidentId(1), Some(inc), &alice(), &rb, now());
        assert!(!again.changes_state());
        assert!(
            matches!(&again.effects[..], [Effect::Ephemeral { text, .. }] if text.contains("already done by <@U0ALICE>"))
        );
    }

    #[test]
    fn refused_button_click_tells_the_clicker_privately() {
        let mut inc = declared(Severity::P0);
        inc.resolve("U0BOB", None, now()).unwrap();
        let d = click(IncidentButton::Acknowledge, IncidentId(1), Some(inc), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(
            matches!(&d.effects[..], [Effect::Ephemeral { user, text, .. }] if user == "U0ALICE" && text.contains("already resolved"))
        );
    }

    #[test]
    fn mention_answers_in_the_thread() {
        let d = mention("<@U0OPSBOT> status", &[declared(Severity::P0)], "C1", "1.2", now());
        assert!(
            matches!(&d.effects[..], [Effect::Say { thread_ts: Some(ts), text, .. }] if ts == "1.2" && text.contains("INC-1"))
        );
        let d = mention("<@U0OPSBOT> help", &[], "C1", "1.2", now());
        assert!(matches!(&d.effects[..], [Effect::Say { text, .. }] if text.contains("/incident")));
    }
}
