//! Handlers: a parsed command, the state it needs and `now` in; a
//! [`Decision`] out. The shell loads what [`state_needed`] asks for, calls
//! [`decide`], commits the decision atomically and answers Slack.

use crate::checklist::{checklist_parts, start_checklist, ChecklistKind, ChecklistPart};
use crate::command::{IncidentCommand, INCIDENT_USAGE};
use crate::incident::{Incident, IncidentId, Stamp, Status, TimelineEntry, TimelineEvent, TransitionError};
use crate::render;
use crate::run::{RunId, Subject};
use crate::runbook::Runbook;
use crate::text::duration;
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who invoked a command or clicked a button, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub user: String,
    pub channel: String,
    pub team_domain: Option<String>,
}

/// What the shell must load before calling [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateNeeded {
    Nothing,
    NewIncidentId,
    Incident(IncidentId),
    IncidentWithTimeline(IncidentId),
    OpenIncidents,
    /// Incidents declared since this long ago, open or not.
    RecentIncidents(chrono::TimeDelta),
}

/// What the shell loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    NewIncidentId(IncidentId),
    Incident(Option<Incident>),
    IncidentWithTimeline(Option<(Incident, Vec<TimelineEntry>)>),
    OpenIncidents(Vec<Incident>),
    RecentIncidents(Vec<Incident>),
}

/// Something to deliver to Slack. Stored in the outbox in the same
/// transaction as the state change, delivered by the outbox worker.
///
/// Alert and checklist effects name what to show rather than carry
/// rendered blocks: the worker renders the incident as it is when it
/// delivers, so a late or retried update never shows stale state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Post the incident's alert in its severity's channel.
    PostAlert { incident: IncidentId },
    /// Edit the alert in place to show the incident's current state.
    RefreshAlert { incident: IncidentId },
    /// The severity now routes to another channel: post the alert there,
    /// and point the old alert at the new one.
    MoveAlert { incident: IncidentId },
    /// Post one message of a checklist in the alert's thread.
    PostChecklist { incident: IncidentId, part: ChecklistPart },
    /// Edit a checklist message in place.
    RefreshChecklist { incident: IncidentId, part: ChecklistPart },
    /// A message in the alert's thread.
    PostInThread { incident: IncidentId, text: String },
    /// Once the alert is up, tell the declarer where it is.
    SendAlertLink { incident: IncidentId, channel: String, user: String },
    /// A note only `user` sees.
    Ephemeral { channel: String, user: String, text: String },
    /// A plain message, e.g. an answer to a mention in its thread.
    Post { channel: String, thread_ts: Option<String>, text: String },
    /// Post a routine run's header in its channel.
    PostRunHeader { run: RunId },
    /// Edit the run's header to show its progress.
    RefreshRunHeader { run: RunId },
    /// Post one message of the run's steps in the header's thread.
    PostRunPart { run: RunId, part: ChecklistPart },
    /// Edit a message of the run's steps in place.
    RefreshRunPart { run: RunId, part: ChecklistPart },
    /// A message in the run's thread.
    PostInRunThread { run: RunId, text: String },
}

impl Effect {
    /// The incident this effect concerns, for lanes and logs.
    pub fn incident(&self) -> Option<IncidentId> {
        match self {
            Effect::PostAlert { incident }
            | Effect::RefreshAlert { incident }
            | Effect::MoveAlert { incident }
            | Effect::PostChecklist { incident, .. }
            | Effect::RefreshChecklist { incident, .. }
            | Effect::PostInThread { incident, .. }
            | Effect::SendAlertLink { incident, .. } => Some(*incident),
            _ => None,
        }
    }

    /// The routine run this effect concerns.
    pub fn run(&self) -> Option<RunId> {
        match self {
            Effect::PostRunHeader { run }
            | Effect::RefreshRunHeader { run }
            | Effect::PostRunPart { run, .. }
            | Effect::RefreshRunPart { run, .. }
            | Effect::PostInRunThread { run, .. } => Some(*run),
            _ => None,
        }
    }

    /// Effects in one lane are delivered in order; lanes run concurrently.
    pub fn lane(&self) -> String {
        match (self, self.incident(), self.run()) {
            (_, Some(incident), _) => format!("incident:{}", incident.0),
            (_, _, Some(run)) => format!("run:{}", run.0),
            (Effect::Ephemeral { channel, .. } | Effect::Post { channel, .. }, None, None) => {
                format!("channel:{channel}")
            }
            _ => "misc".to_owned(),
        }
    }

    /// A courtesy note that may be dropped if Slack refuses it for good
    /// (say, the bot is not in the channel the command came from).
    pub fn is_best_effort(&self) -> bool {
        matches!(self, Effect::SendAlertLink { .. } | Effect::Ephemeral { .. })
    }
}

/// The answer shown only to the user who typed the command.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    pub blocks: Option<serde_json::Value>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply { text: text.into(), blocks: None }
    }
}

/// A handler's verdict: the reply, and the change to commit atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub reply: Reply,
    /// The incident's new state; `None` when nothing about it changes.
    pub incident: Option<Incident>,
    /// A routine run's new state, likewise.
    pub run: Option<crate::run::Run>,
    pub timeline: Vec<TimelineEntry>,
    pub effects: Vec<Effect>,
    /// Timers to set, committed with the state.
    pub timers: Vec<Timer>,
    /// A modal to open at once with the click's `trigger_id` (it expires in
    /// 3 s, so this one is not deferred to the outbox).
    pub modal: Option<serde_json::Value>,
}

impl Decision {
    fn reply_only(reply: Reply) -> Decision {
        Decision {
            reply,
            incident: None,
            run: None,
            timeline: Vec::new(),
            effects: Vec::new(),
            timers: Vec::new(),
            modal: None,
        }
    }

    fn changed(reply: Reply, incident: Incident, entry: TimelineEntry, effects: Vec<Effect>) -> Decision {
        Decision {
            reply,
            incident: Some(incident),
            run: None,
            timeline: vec![entry],
            effects,
            timers: Vec::new(),
            modal: None,
        }
    }

    pub fn changes_state(&self) -> bool {
        self.incident.is_some() || self.run.is_some()
    }

    /// A decision that only answers.
    pub fn reply(text: impl Into<String>) -> Decision {
        Decision::reply_only(Reply::text(text))
    }
}

/// How far back `/incident stats` looks.
pub const STATS_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// The seed runbook's KPI "Mean Time to Recovery < 30 minutes". It moves
/// into the runbook file with the other KPIs when `/pipeline` is built.
pub const MTTR_TARGET: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

pub fn state_needed(cmd: &IncidentCommand) -> StateNeeded {
    match cmd {
        IncidentCommand::Help => StateNeeded::Nothing,
        IncidentCommand::Declare { .. } => StateNeeded::NewIncidentId,
        IncidentCommand::List => StateNeeded::OpenIncidents,
        IncidentCommand::Show(id) | IncidentCommand::Report(id) => StateNeeded::IncidentWithTimeline(*id),
        IncidentCommand::Stats => StateNeeded::RecentIncidents(STATS_WINDOW),
        IncidentCommand::Ack(id)
        | IncidentCommand::Resolve { id, .. }
        | IncidentCommand::Update { id, .. }
        | IncidentCommand::Commander { id, .. }
        | IncidentCommand::ChangeSeverity { id, .. } => StateNeeded::Incident(*id),
    }
}

/// Mentions of the role at `level` of the severity's escalation matrix,
/// with its name: `("DevOps team lead", "<@U1> <!subteam^S2>")`.
fn escalation_audience(runbook: &Runbook, inc: &Incident, level: usize) -> (String, String) {
    match runbook.escalation_role(inc.severity, level) {
        Some(role) => (role.name.clone(), role.people.iter().map(|p| p.to_mrkdwn()).collect::<Vec<_>>().join(" ")),
        None => ("responders".to_owned(), "<!here>".to_owned()),
    }
}

fn declare(
    id: IncidentId,
    severity: crate::Severity,
    title: &str,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision {
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
    let (first, mentions) = escalation_audience(runbook, &incident, 0);
    let next = runbook
        .policy(severity)
        .escalation
        .get(1)
        .and_then(|r| runbook.role(r))
        .map(|r| format!(" or this escalates to the {}", r.name))
        .unwrap_or_default();
    let page =
        format!("📟 Paging the {first}: {mentions}. Acknowledge within {}{next}.", duration(policy.targets.respond));
    let mut effects = vec![Effect::PostAlert { incident: id }, Effect::PostInThread { incident: id, text: page }];
    effects.extend(
        checklist_parts(ChecklistKind::Playbook, &incident.playbook)
            .into_iter()
            .map(|part| Effect::PostChecklist { incident: id, part }),
    );
    effects.push(Effect::SendAlertLink { incident: id, channel: who.channel.clone(), user: who.user.clone() });
    let mut timers = vec![
        Timer {
            subject: Subject::Incident(id),
            due: now + policy.targets.respond,
            generation: 0,
            kind: TimerKind::Escalate { level: 1 },
        },
        Timer {
            subject: Subject::Incident(id),
            due: now + policy.targets.resolve,
            generation: 0,
            kind: TimerKind::ResolutionOverdue { round: 1 },
        },
    ];
    if let Some(due) = incident.update_due {
        timers.push(Timer { subject: Subject::Incident(id), due, generation: 0, kind: TimerKind::UpdateDue });
    }
    let mut decision = Decision::changed(reply, incident, entry, effects);
    decision.timers = timers;
    decision
}

/// Decides what a `/incident` command does.
pub fn decide(
    cmd: &IncidentCommand,
    loaded: Loaded,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision {
    match (cmd, loaded) {
        (IncidentCommand::Help, _) => Decision::reply_only(Reply::text(INCIDENT_USAGE)),
        (IncidentCommand::Declare { severity, title }, Loaded::NewIncidentId(id)) => {
            declare(id, *severity, title, who, runbook, now)
        }
        (IncidentCommand::List, Loaded::OpenIncidents(open)) => Decision::reply_only(render::incident_list(&open, now)),
        (IncidentCommand::Show(id), Loaded::IncidentWithTimeline(found)) => match found {
            Some((incident, timeline)) => {
                Decision::reply_only(render::incident_details(&incident, &timeline, runbook, now))
            }
            None => unknown(*id),
        },
        (IncidentCommand::Ack(id), Loaded::Incident(found)) => transition(*id, found, |inc| {
            let entry = inc.acknowledge(&who.user, now)?;
            let reply = Reply::text(format!("👀 You acknowledged *{}*; escalation is stopped.", inc.id));
            let note = format!("👀 <@{}> acknowledged *{}*; escalation stopped.", who.user, inc.id);
            Ok((
                reply,
                entry,
                vec![Effect::RefreshAlert { incident: inc.id }, Effect::PostInThread { incident: inc.id, text: note }],
            ))
        }),
        (IncidentCommand::Resolve { id, summary }, Loaded::Incident(found)) => transition(*id, found, |inc| {
            let entry = inc.resolve(&who.user, summary.clone(), now)?;
            inc.post_incident = start_checklist(&runbook.post_incident.sections);
            let reply = Reply::text(format!("✅ *{}* resolved. The post-incident checklist is in its thread.", inc.id));
            let note = match summary {
                Some(s) => format!("✅ Resolved by <@{}>: {}", who.user, crate::text::escape(s)),
                None => format!("✅ Resolved by <@{}>.", who.user),
            };
            let mut effects =
                vec![Effect::RefreshAlert { incident: inc.id }, Effect::PostInThread { incident: inc.id, text: note }];
            // The playbook's buttons go away: its steps can no longer be settled.
            effects.extend(
                checklist_parts(ChecklistKind::Playbook, &inc.playbook)
                    .into_iter()
                    .map(|part| Effect::RefreshChecklist { incident: inc.id, part }),
            );
            effects.extend(
                checklist_parts(ChecklistKind::PostIncident, &inc.post_incident)
                    .into_iter()
                    .map(|part| Effect::PostChecklist { incident: inc.id, part }),
            );
            Ok((reply, entry, effects))
        }),
        (IncidentCommand::Update { id, text }, Loaded::Incident(found)) => {
            let every = found.as_ref().and_then(|inc| runbook.policy(inc.severity).update_every);
            let mut decision = transition(*id, found, |inc| {
                let entry = inc.post_update(&who.user, text.clone(), now)?;
                inc.update_due = every.map(|every| now + every);
                let note = format!("📣 *Status update* from <@{}>: {}", who.user, crate::text::escape(text));
                Ok((
                    Reply::text(format!("📣 Update posted in *{}*'s thread.", inc.id)),
                    entry,
                    vec![Effect::PostInThread { incident: inc.id, text: note }],
                ))
            });
            if let Some(inc) = &decision.incident {
                if let Some(due) = inc.update_due {
                    decision.timers.push(Timer {
                        subject: Subject::Incident(*id),
                        due,
                        generation: inc.generation,
                        kind: TimerKind::UpdateDue,
                    });
                }
            }
            decision
        }
        (IncidentCommand::Commander { id, user }, Loaded::Incident(found)) => transition(*id, found, |inc| {
            let entry = inc.assign_commander(&who.user, user.clone(), now)?;
            let note = format!("🎖️ <@{user}> is now the incident commander (assigned by <@{}>).", who.user);
            Ok((
                Reply::text(format!("🎖️ <@{user}> commands *{}*.", inc.id)),
                entry,
                vec![Effect::RefreshAlert { incident: inc.id }, Effect::PostInThread { incident: inc.id, text: note }],
            ))
        }),
        (IncidentCommand::Report(id), Loaded::IncidentWithTimeline(found)) => match found {
            Some((incident, timeline)) => {
                let text = crate::text::truncate(
                    &crate::report::report(&incident, &timeline, runbook, crate::report::Style::Slack),
                    39_000,
                );
                let mut d =
                    Decision::reply_only(Reply::text(format!("📋 The report of *{id}* is posted in its thread.")));
                d.effects.push(Effect::PostInThread { incident: *id, text });
                d
            }
            None => unknown(*id),
        },
        (IncidentCommand::Stats, Loaded::RecentIncidents(recent)) => Decision::reply_only(Reply::text(
            crate::report::stats(&recent, runbook, MTTR_TARGET, STATS_WINDOW.num_days()),
        )),
        (IncidentCommand::ChangeSeverity { id, severity }, Loaded::Incident(found)) => {
            change_severity(*id, *severity, found, who, runbook, now)
        }
        // The shell loads what `state_needed` asks for; anything else is a
        // bug in the shell, answered without changing anything.
        (_, _) => Decision::reply_only(Reply::text("Something went wrong on opsbot's side; nothing was changed.")),
    }
}

/// Re-routes and re-times an incident at a new severity. The response
/// clock restarts at the change (a raise is a new page); the resolution
/// target counts from declaration; timers of the old severity go stale.
fn change_severity(
    id: IncidentId,
    to: crate::Severity,
    found: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision {
    let Some(mut inc) = found else { return unknown(id) };
    if let Some(by) = &inc.resolved {
        return Decision::reply_only(Reply::text(render::refusal(&TransitionError::AlreadyResolved {
            id,
            by: by.clone(),
        })));
    }
    let from = inc.severity;
    if from == to {
        return Decision::reply_only(Reply::text(format!("*{id}* is already {to}; nothing was changed.")));
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
    let mut timers = vec![Timer {
        subject: Subject::Incident(id),
        due: (inc.declared.at + policy.targets.resolve).max(now),
        generation: gen,
        kind: TimerKind::ResolutionOverdue { round: 1 },
    }];
    inc.update_due = policy.update_every.map(|every| now + every);
    if let Some(due) = inc.update_due {
        timers.push(Timer { subject: Subject::Incident(id), due, generation: gen, kind: TimerKind::UpdateDue });
    }
    let verb = if raised { "raised" } else { "lowered" };
    let mut note = format!("{} Severity {verb} {from} → {to} by <@{}>.", if raised { "⬆️" } else { "⬇️" }, who.user);
    if inc.status == Status::Declared {
        timers.push(Timer {
            subject: Subject::Incident(id),
            due: now + policy.targets.respond,
            generation: gen,
            kind: TimerKind::Escalate { level: inc.escalation_level + 1 },
        });
        let (role, mentions) = escalation_audience(runbook, &inc, inc.escalation_level);
        note.push_str(&format!(
            " Paging the {role}: {mentions}. Acknowledge within {}.",
            duration(policy.targets.respond)
        ));
    }
    let moves = runbook.channel_for(from) != runbook.channel_for(to);
    let mut effects =
        vec![if moves { Effect::MoveAlert { incident: id } } else { Effect::RefreshAlert { incident: id } }];
    effects.push(Effect::PostInThread { incident: id, text: note });
    if raised {
        let parts = checklist_parts(ChecklistKind::Playbook, &inc.playbook);
        effects.extend(
            parts
                .into_iter()
                .filter(|p| !inc.checklist_messages.contains_key(&p.key()))
                .map(|part| Effect::PostChecklist { incident: id, part }),
        );
    }
    let entry = TimelineEntry { at: now, user: who.user.clone(), event: TimelineEvent::SeverityChanged { from, to } };
    let reply = if moves {
        format!("*{id}* is now {to}; its alert moves to {}.", runbook.channel_for(to))
    } else {
        format!("*{id}* is now {to}.")
    };
    let mut decision = Decision::changed(Reply::text(reply), inc, entry, effects);
    decision.timers = timers;
    decision
}

/// A button opsbot put on a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Button {
    Acknowledge,
    Resolve,
    /// "I'm commander": the clicker takes command.
    TakeCommand,
    Step {
        kind: ChecklistKind,
        phase: usize,
        step: usize,
        done: bool,
    },
    /// Flag a routine run's step: opens a modal for the note.
    Flag {
        phase: usize,
        step: usize,
    },
}

/// Action ids of opsbot's buttons. Step buttons carry the step in the id
/// too, since Slack wants action ids unique within a message.
pub mod action {
    pub const ACK: &str = "incident.ack";
    pub const RESOLVE: &str = "incident.resolve";
    pub const TAKE_COMMAND: &str = "incident.commander";
    pub const STEP_DONE: &str = "step.done";
    pub const STEP_SKIP: &str = "step.skip";
    pub const STEP_FLAG: &str = "step.flag";
}

impl Button {
    /// The button's `value`: the incident, and for steps which step.
    /// The button's `value`: the incident or run number, and for steps
    /// which step.
    pub fn value(&self, number: u64) -> String {
        match self {
            Button::Step { kind, phase, step, .. } => format!("{number}:{}:{phase}:{step}", kind.code()),
            Button::Flag { phase, step } => format!("{number}:{}:{phase}:{step}", ChecklistKind::Run.code()),
            _ => number.to_string(),
        }
    }

    pub fn action_id(&self) -> String {
        match self {
            Button::Acknowledge => action::ACK.to_owned(),
            Button::Resolve => action::RESOLVE.to_owned(),
            Button::TakeCommand => action::TAKE_COMMAND.to_owned(),
            Button::Step { kind, phase, step, done } => {
                let verb = if *done { action::STEP_DONE } else { action::STEP_SKIP };
                format!("{verb}:{}:{phase}:{step}", kind.code())
            }
            Button::Flag { phase, step } => {
                format!("{}:{}:{phase}:{step}", action::STEP_FLAG, ChecklistKind::Run.code())
            }
        }
    }

    /// Reads a click back: what it is about and which button; `None` for
    /// buttons that are not opsbot's or values that do not parse.
    pub fn parse(action_id: &str, value: &str) -> Option<(Subject, Button)> {
        let verb = action_id.split(':').next()?;
        let incident = |value: &str| value.parse::<IncidentId>().ok().map(Subject::Incident);
        match verb {
            action::ACK => Some((incident(value)?, Button::Acknowledge)),
            action::RESOLVE => Some((incident(value)?, Button::Resolve)),
            action::TAKE_COMMAND => Some((incident(value)?, Button::TakeCommand)),
            action::STEP_DONE | action::STEP_SKIP | action::STEP_FLAG => {
                let mut parts = value.split(':');
                let number: u64 = parts.next()?.parse().ok()?;
                let kind = ChecklistKind::from_code(parts.next()?)?;
                let phase = parts.next()?.parse().ok()?;
                let step = parts.next()?.parse().ok()?;
                if parts.next().is_some() {
                    return None;
                }
                let subject = match kind {
                    ChecklistKind::Run => Subject::Run(crate::run::RunId(number)),
                    ChecklistKind::Playbook | ChecklistKind::PostIncident => Subject::Incident(IncidentId(number)),
                };
                let button = match verb {
                    action::STEP_FLAG if kind == ChecklistKind::Run => Button::Flag { phase, step },
                    action::STEP_FLAG => return None,
                    _ => Button::Step { kind, phase, step, done: verb == action::STEP_DONE },
                };
                Some((subject, button))
            }
            _ => None,
        }
    }
}

/// A click on one of opsbot's buttons. The HTTP answer to a click is not
/// shown to anyone, so refusals become an ephemeral note to the clicker.
pub fn decide_button(
    button: Button,
    id: IncidentId,
    incident: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision {
    let mut decision = match button {
        Button::Acknowledge => decide(&IncidentCommand::Ack(id), Loaded::Incident(incident), who, runbook, now),
        Button::TakeCommand => decide(
            &IncidentCommand::Commander { id, user: who.user.clone() },
            Loaded::Incident(incident),
            who,
            runbook,
            now,
        ),
        // Resolve asks for a summary first; the modal's submission resolves.
        Button::Resolve => match incident {
            Some(inc) if inc.is_open() => {
                let mut d = Decision::reply_only(Reply::text(""));
                d.modal = Some(render::resolve_modal(&inc));
                return d;
            }
            other => {
                decide(&IncidentCommand::Resolve { id, summary: None }, Loaded::Incident(other), who, runbook, now)
            }
        },
        Button::Flag { .. } => {
            Decision::reply_only(Reply::text("Incident steps cannot be flagged; post an update instead."))
        }
        Button::Step { kind, phase, step, done } => transition(id, incident, |inc| {
            let entry = inc.settle_step(kind, phase, step, done, &who.user, now)?;
            let part = ChecklistPart::of_step(kind, phase, step);
            Ok((
                Reply::text(""),
                entry,
                vec![Effect::RefreshChecklist { incident: inc.id, part }, Effect::RefreshAlert { incident: inc.id }],
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

/// The resolve modal was submitted. `Err` carries the refusal to show in
/// the modal (it stays open) instead of resolving.
pub fn decide_resolve_submission(
    id: IncidentId,
    summary: Option<String>,
    incident: Option<Incident>,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Result<Decision, String> {
    let summary = summary.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let decision = decide(&IncidentCommand::Resolve { id, summary }, Loaded::Incident(incident), who, runbook, now);
    if decision.changes_state() {
        Ok(decision)
    } else {
        Err(decision.reply.text)
    }
}

/// A timer came due: act on it if its reason still holds.
pub fn decide_timer(timer: &Timer, incident: Option<Incident>, runbook: &Runbook, now: DateTime<Utc>) -> Decision {
    let nothing = || Decision::reply_only(Reply::text(""));
    let Some(mut inc) = incident else { return nothing() };
    if inc.status == Status::Resolved || timer.generation != inc.generation {
        return nothing();
    }
    let policy = runbook.policy(inc.severity);
    let elapsed = duration(now - inc.declared.at);
    match timer.kind {
        TimerKind::Escalate { level } => {
            let (role, mentions) = escalation_audience(runbook, &inc, level);
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
            let mut decision = Decision::changed(
                Reply::text(""),
                inc,
                entry,
                vec![Effect::PostInThread { incident: id, text }, Effect::RefreshAlert { incident: id }],
            );
            decision.timers.push(Timer {
                subject: Subject::Incident(id),
                due: timer.due + policy.targets.respond,
                generation: timer.generation,
                kind: TimerKind::Escalate { level: level + 1 },
            });
            decision
        }
        TimerKind::ResolutionOverdue { round } => {
            let (_, mentions) = escalation_audience(runbook, &inc, inc.escalation_level);
            let commander = inc.commander.as_ref().map(|c| format!("<@{c}> ")).unwrap_or_default();
            let text = format!(
                "⏰ *{}* is past its resolution target of {} (open for {elapsed}). {commander}{mentions}: what is the plan?",
                inc.id,
                duration(policy.targets.resolve)
            );
            let mut decision = nothing();
            decision.effects.push(Effect::PostInThread { incident: inc.id, text });
            decision.timers.push(Timer {
                subject: Subject::Incident(inc.id),
                due: timer.due + policy.targets.resolve,
                generation: timer.generation,
                kind: TimerKind::ResolutionOverdue { round: round + 1 },
            });
            decision
        }
        TimerKind::RunOverdue | TimerKind::ScheduledRun { .. } => nothing(),
        TimerKind::UpdateDue => {
            let (Some(due), Some(every)) = (inc.update_due, policy.update_every) else { return nothing() };
            if due != timer.due {
                // A newer update moved the nudge; this one is stale.
                return nothing();
            }
            let who = match &inc.commander {
                Some(c) => format!("<@{c}>"),
                None => escalation_audience(runbook, &inc, inc.escalation_level).1,
            };
            let text = format!(
                "📝 {who}: no status update on *{}* for {}. Post one with `/incident update {} <what changed>`.",
                inc.id,
                duration(every),
                inc.id
            );
            let id = inc.id;
            inc.update_due = Some(due + every);
            Decision {
                reply: Reply::text(""),
                incident: Some(inc),
                run: None,
                timeline: Vec::new(),
                effects: vec![Effect::PostInThread { incident: id, text }],
                timers: vec![Timer {
                    subject: Subject::Incident(id),
                    due: due + every,
                    generation: timer.generation,
                    kind: TimerKind::UpdateDue,
                }],
                modal: None,
            }
        }
    }
}

/// An `@opsbot …` mention: `help`, or `status` (the open incidents).
pub fn decide_mention(text: &str, open: &[Incident], channel: &str, ts: &str, now: DateTime<Utc>) -> Decision {
    let words: Vec<&str> = text.split_whitespace().filter(|w| !(w.starts_with("<@") && w.ends_with('>'))).collect();
    let answer = match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("status") | Some("incidents") => render::incident_list(open, now).text,
        _ => render::mention_help(),
    };
    let mut decision = Decision::reply_only(Reply::text(""));
    decision.effects.push(Effect::Post { channel: channel.to_owned(), thread_ts: Some(ts.to_owned()), text: answer });
    decision
}

fn unknown(id: IncidentId) -> Decision {
    Decision::reply_only(Reply::text(format!("There is no incident *{id}*. `/incident list` shows the open ones.")))
}

type Transition = Result<(Reply, TimelineEntry, Vec<Effect>), TransitionError>;

fn transition(id: IncidentId, found: Option<Incident>, apply: impl FnOnce(&mut Incident) -> Transition) -> Decision {
    let Some(mut incident) = found else {
        return unknown(id);
    };
    match apply(&mut incident) {
        Ok((reply, entry, effects)) => Decision::changed(reply, incident, entry, effects),
        Err(refused) => Decision::reply_only(Reply::text(render::refusal(&refused))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::severity::Severity;
    use chrono::{TimeDelta, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn alice() -> Invocation {
        Invocation { user: "U0ALICE".into(), channel: "C0GENERAL".into(), team_domain: Some("acme".into()) }
    }

    fn runbook() -> Runbook {
        Runbook::seed()
    }

    fn declare_decision(severity: Severity) -> Decision {
        let cmd = IncidentCommand::Declare { severity, title: "API down".into() };
        decide(&cmd, Loaded::NewIncidentId(IncidentId(1)), &alice(), &runbook(), now())
    }

    fn declared(severity: Severity) -> Incident {
        declare_decision(severity).incident.unwrap()
    }

    fn timer(kind: TimerKind, after: TimeDelta) -> Timer {
        Timer { subject: Subject::Incident(IncidentId(1)), generation: 0, due: now() + after, kind }
    }

    fn thread_texts(d: &Decision) -> Vec<&str> {
        d.effects
            .iter()
            .filter_map(|e| match e {
                Effect::PostInThread { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn declare_posts_the_alert_pages_the_first_responder_and_starts_the_playbook() {
        let cmd = IncidentCommand::Declare { severity: Severity::P0, title: "API down".into() };
        let d = decide(&cmd, Loaded::NewIncidentId(IncidentId(42)), &alice(), &runbook(), now());
        let inc = d.incident.clone().unwrap();
        assert_eq!((inc.id, inc.status, inc.declared.user.as_str()), (IncidentId(42), Status::Declared, "U0ALICE"));
        assert!(d.reply.text.contains("INC-42") && d.reply.text.contains("#devops-alerts"));
        assert_eq!(d.effects[0], Effect::PostAlert { incident: IncidentId(42) });
        assert!(thread_texts(&d)[0].starts_with("📟 Paging the"), "{:?}", thread_texts(&d));
        let phases = runbook().policy(Severity::P0).playbook.len();
        assert_eq!(inc.playbook.len(), phases);
        let posted = d.effects.iter().filter(|e| matches!(e, Effect::PostChecklist { .. })).count();
        assert!(posted >= phases, "one message per phase at least");
        assert!(matches!(d.effects.last(), Some(Effect::SendAlertLink { user, .. }) if user == "U0ALICE"));
        let respond = runbook().targets(Severity::P0).respond;
        assert!(d.timers.contains(&Timer {
            subject: Subject::Incident(IncidentId(42)),
            generation: 0,
            due: now() + respond,
            kind: TimerKind::Escalate { level: 1 }
        }));
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
        let d = decide_timer(
            &timer(TimerKind::Escalate { level: 1 }, TimeDelta::minutes(5)),
            Some(inc),
            &rb,
            now() + TimeDelta::minutes(5),
        );
        let escalated = d.incident.clone().expect("escalation changes the incident");
        assert_eq!(escalated.escalation_level, 1);
        let role = rb.escalation_role(Severity::P0, 1).unwrap();
        let text = thread_texts(&d)[0];
        assert!(text.contains(&format!("Escalating to the {}", role.name)), "{text}");
        assert!(text.contains("after 5 min"), "{text}");
        assert!(d.effects.contains(&Effect::RefreshAlert { incident: IncidentId(1) }));
        assert_eq!(d.timers, vec![timer(TimerKind::Escalate { level: 2 }, TimeDelta::minutes(10))]);
    }

    #[test]
    fn an_acknowledged_incident_never_escalates() {
        let mut inc = declared(Severity::P0);
        inc.acknowledge("U0BOB", now() + TimeDelta::minutes(2)).unwrap();
        let d = decide_timer(
            &timer(TimerKind::Escalate { level: 1 }, TimeDelta::minutes(5)),
            Some(inc),
            &runbook(),
            now() + TimeDelta::minutes(5),
        );
        assert!(!d.changes_state() && d.effects.is_empty() && d.timers.is_empty());
    }

    #[test]
    fn a_timer_firing_twice_escalates_once() {
        let rb = runbook();
        let t = timer(TimerKind::Escalate { level: 1 }, TimeDelta::minutes(5));
        let once = decide_timer(&t, Some(declared(Severity::P0)), &rb, t.due).incident.unwrap();
        let twice = decide_timer(&t, Some(once), &rb, t.due);
        assert!(!twice.changes_state() && twice.effects.is_empty());
    }

    #[test]
    fn past_the_resolution_target_the_thread_is_reminded_each_round() {
        let rb = runbook();
        let resolve = rb.targets(Severity::P1).resolve;
        let t = timer(TimerKind::ResolutionOverdue { round: 1 }, resolve);
        let d = decide_timer(&t, Some(declared(Severity::P1)), &rb, t.due);
        assert!(thread_texts(&d)[0].contains("past its resolution target of 4 h"), "{:?}", thread_texts(&d));
        assert_eq!(d.timers[0].due, now() + resolve + resolve);
        let mut resolved = declared(Severity::P1);
        resolved.resolve("U0BOB", None, now()).unwrap();
        assert!(decide_timer(&t, Some(resolved), &rb, t.due).effects.is_empty());
    }

    #[test]
    fn an_update_moves_the_nudge_and_the_old_nudge_does_nothing() {
        let rb = runbook();
        let inc = declared(Severity::P0);
        let every = rb.policy(Severity::P0).update_every.expect("P0 asks for updates");
        let first_due = inc.update_due.unwrap();
        assert_eq!(first_due, now() + every);
        let later = now() + TimeDelta::minutes(10);
        let cmd = IncidentCommand::Update { id: IncidentId(1), text: "rolled back".into() };
        let d = decide(&cmd, Loaded::Incident(Some(inc)), &alice(), &rb, later);
        let updated = d.incident.clone().unwrap();
        assert_eq!(updated.update_due, Some(later + every));
        assert_eq!(
            d.timers,
            vec![Timer {
                subject: Subject::Incident(IncidentId(1)),
                generation: 0,
                due: later + every,
                kind: TimerKind::UpdateDue
            }]
        );
        let stale = Timer {
            subject: Subject::Incident(IncidentId(1)),
            generation: 0,
            due: first_due,
            kind: TimerKind::UpdateDue,
        };
        assert!(decide_timer(&stale, Some(updated.clone()), &rb, first_due).effects.is_empty());
        let fresh = Timer {
            subject: Subject::Incident(IncidentId(1)),
            generation: 0,
            due: later + every,
            kind: TimerKind::UpdateDue,
        };
        let nudge = decide_timer(&fresh, Some(updated), &rb, later + every);
        assert!(thread_texts(&nudge)[0].contains("no status update"), "{:?}", thread_texts(&nudge));
    }

    #[test]
    fn ack_refreshes_the_alert_and_notes_it_in_the_thread() {
        let d = decide(
            &IncidentCommand::Ack(IncidentId(1)),
            Loaded::Incident(Some(declared(Severity::P0))),
            &alice(),
            &runbook(),
            now(),
        );
        assert_eq!(d.incident.as_ref().unwrap().status, Status::Acknowledged);
        assert_eq!(d.effects[0], Effect::RefreshAlert { incident: IncidentId(1) });
        assert!(thread_texts(&d)[0].contains("escalation stopped"));
    }

    #[test]
    fn resolve_starts_the_post_incident_checklist() {
        let cmd = IncidentCommand::Resolve { id: IncidentId(1), summary: Some("rolled back".into()) };
        let d = decide(&cmd, Loaded::Incident(Some(declared(Severity::P0))), &alice(), &runbook(), now());
        let inc = d.incident.clone().unwrap();
        assert!(!inc.post_incident.is_empty());
        assert!(d
            .effects
            .iter()
            .any(|e| matches!(e, Effect::PostChecklist { part, .. } if part.kind == ChecklistKind::PostIncident)));
    }

    #[test]
    fn resolving_a_resolved_incident_changes_nothing() {
        let mut inc = declared(Severity::P1);
        inc.resolve("U0BOB", None, now()).unwrap();
        let cmd = IncidentCommand::Resolve { id: IncidentId(1), summary: None };
        let d = decide(&cmd, Loaded::Incident(Some(inc)), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(d.effects.is_empty());
        assert!(d.reply.text.contains("already resolved"), "{}", d.reply.text);
        assert!(d.reply.text.contains("<@U0BOB>"), "{}", d.reply.text);
    }

    #[test]
    fn unknown_id_is_answered_and_changes_nothing() {
        let d = decide(&IncidentCommand::Ack(IncidentId(999)), Loaded::Incident(None), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(d.reply.text.contains("no incident *INC-999*"));
    }

    #[test]
    fn a_step_click_settles_once_and_refreshes_its_message() {
        let rb = runbook();
        let step = Button::Step { kind: ChecklistKind::Playbook, phase: 0, step: 1, done: true };
        let d = decide_button(step, IncidentId(1), Some(declared(Severity::P0)), &alice(), &rb, now());
        let inc = d.incident.clone().unwrap();
        assert_eq!(crate::checklist::progress(&inc.playbook).0, 1);
        assert!(d.effects.contains(&Effect::RefreshChecklist {
            incident: IncidentId(1),
            part: ChecklistPart { kind: ChecklistKind::Playbook, phase: 0, part: 0 }
        }));
        let again = decide_button(step, IncidentId(1), Some(inc), &alice(), &rb, now());
        assert!(!again.changes_state());
        assert!(
            matches!(&again.effects[..], [Effect::Ephemeral { text, .. }] if text.contains("already done by <@U0ALICE>"))
        );
    }

    #[test]
    fn buttons_round_trip_through_action_id_and_value() {
        for button in [
            Button::Acknowledge,
            Button::Resolve,
            Button::TakeCommand,
            Button::Step { kind: ChecklistKind::PostIncident, phase: 2, step: 7, done: false },
            Button::Step { kind: ChecklistKind::Playbook, phase: 0, step: 0, done: true },
        ] {
            assert_eq!(
                Button::parse(&button.action_id(), &button.value(5)),
                Some((Subject::Incident(IncidentId(5)), button))
            );
        }
        assert_eq!(Button::parse("step.done:pb:0:0", "5:pb:0"), None);
        assert_eq!(Button::parse("step.done:pb:0:0", "5:xx:0:0"), None);
        assert_eq!(Button::parse("other", "5"), None);
        let flag = Button::Flag { phase: 1, step: 2 };
        assert_eq!(Button::parse(&flag.action_id(), &flag.value(9)), Some((Subject::Run(crate::run::RunId(9)), flag)));
        let run_step = Button::Step { kind: ChecklistKind::Run, phase: 0, step: 3, done: true };
        assert_eq!(
            Button::parse(&run_step.action_id(), &run_step.value(9)),
            Some((Subject::Run(crate::run::RunId(9)), run_step))
        );
        assert_eq!(Button::parse("step.flag:pb:0:0", "5:pb:0:0"), None, "incident steps have no flag");
    }

    #[test]
    fn refused_button_click_tells_the_clicker_privately() {
        let mut inc = declared(Severity::P0);
        inc.resolve("U0BOB", None, now()).unwrap();
        let d = decide_button(Button::Acknowledge, IncidentId(1), Some(inc), &alice(), &runbook(), now());
        assert!(!d.changes_state());
        assert!(
            matches!(&d.effects[..], [Effect::Ephemeral { user, text, .. }] if user == "U0ALICE" && text.contains("already resolved"))
        );
    }

    #[test]
    fn mention_answers_in_the_thread() {
        let d = decide_mention("<@U0OPSBOT> status", &[declared(Severity::P0)], "C1", "1.2", now());
        assert!(
            matches!(&d.effects[..], [Effect::Post { thread_ts: Some(ts), text, .. }] if ts == "1.2" && text.contains("INC-1"))
        );
        let d = decide_mention("<@U0OPSBOT> help", &[], "C1", "1.2", now());
        assert!(matches!(&d.effects[..], [Effect::Post { text, .. }] if text.contains("/incident")));
    }

    #[test]
    fn effects_of_one_incident_share_a_lane() {
        let a = Effect::PostAlert { incident: IncidentId(3) };
        let b = Effect::RefreshAlert { incident: IncidentId(3) };
        assert_eq!(a.lane(), b.lane());
        assert_ne!(a.lane(), Effect::PostAlert { incident: IncidentId(4) }.lane());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Effect>(&json).unwrap(), a);
    }
}
