//! Every entry point as one [`Event`], and the one protocol that decides
//! it: ask [`needs`] what to load, load it, call [`decide`] with what was
//! loaded and `now`, commit the [`Decision`]. A slash command, a click, a
//! modal submission, a timer and a mention all go this way.
//!
//! This is the one module that names every feature: adding a subject adds
//! its arms here and nowhere else in the core.

use crate::codec::{Button, Submission};
use crate::command::SlashCommand;
use crate::decision::{Decision, Invocation};
use crate::incident::{self, IncidentChange};
use crate::run::{self, Run};
use crate::runbook::Runbook;
use crate::subject::Subject;
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, Utc};

/// Something that asks opsbot to decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Command {
        command: SlashCommand,
        who: Invocation,
    },
    Click {
        button: Button,
        who: Invocation,
    },
    Submission {
        submission: Submission,
        who: Invocation,
    },
    Timer(Timer),
    /// `@opsbot …` in a channel, answered in its thread.
    Mention {
        text: String,
        channel: String,
        ts: String,
    },
}

/// What must be loaded before an event is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Incident(incident::decide::Need),
    Run(run::decide::Need),
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    Incident(incident::decide::Loaded),
    Run(run::decide::Loaded),
}

/// The state a decision writes: one subject's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Incident(IncidentChange),
    Run(Run),
}

impl Change {
    pub fn subject(&self) -> Subject {
        match self {
            Change::Incident(c) => Subject::Incident(c.incident.id),
            Change::Run(run) => Subject::Run(run.id),
        }
    }
}

/// What `event` needs loaded. `now` matters for a schedule slot: one that
/// is too late to run takes no run number.
pub fn needs(event: &Event, runbook: &Runbook, now: DateTime<Utc>) -> Need {
    use incident::decide::Need as I;
    use run::decide::Need as R;
    match event {
        Event::Command { command: SlashCommand::Incident(cmd), .. } => Need::Incident(incident::decide::needs(cmd)),
        Event::Command { command: SlashCommand::Runbook(cmd), .. } => Need::Run(run::decide::needs(cmd, runbook)),
        Event::Command { command: SlashCommand::NotBuiltYet { .. }, .. } => Need::Nothing,
        Event::Click { button: Button::Incident(id, _), .. } => Need::Incident(I::One(*id)),
        Event::Click { button: Button::Run(id, _), .. } => Need::Run(R::One(*id)),
        Event::Submission { submission: Submission::Resolve { incident, .. }, .. } => Need::Incident(I::One(*incident)),
        Event::Submission { submission: Submission::Flag { run, .. }, .. } => Need::Run(R::One(*run)),
        Event::Timer(timer) => match &timer.kind {
            TimerKind::Incident { incident, .. } => Need::Incident(I::One(*incident)),
            TimerKind::RunOverdue { run } => Need::Run(R::One(*run)),
            TimerKind::ScheduledRun { checklist, slot } => {
                Need::Run(run::decide::slot_needs(checklist, *slot, runbook, now))
            }
        },
        Event::Mention { .. } => Need::Incident(I::Open),
    }
}

/// Decides `event` with what [`needs`] asked for.
pub fn decide(event: &Event, loaded: Loaded, runbook: &Runbook, now: DateTime<Utc>) -> Decision<Change> {
    use incident::decide::{self as inc, Loaded as I};
    use run::decide::{self as rn, Loaded as R};
    let incident = |d: inc::IncidentDecision| d.map(Change::Incident);
    let run = |d: rn::RunDecision| d.map(Change::Run);
    match (event, loaded) {
        (Event::Command { command: SlashCommand::Incident(cmd), who }, Loaded::Incident(l)) => {
            incident(inc::command(cmd, l, who, runbook, now))
        }
        (Event::Command { command: SlashCommand::Runbook(cmd), who }, Loaded::Run(l)) => {
            run(rn::command(cmd, l, who, runbook, now))
        }
        (Event::Command { command: SlashCommand::NotBuiltYet { command }, .. }, _) => {
            Decision::reply(crate::command::not_built_yet(command))
        }
        (Event::Click { button: Button::Incident(id, b), who }, Loaded::Incident(I::One(found))) => {
            incident(inc::click(*b, *id, found, who, runbook, now))
        }
        (Event::Click { button: Button::Run(id, b), who }, Loaded::Run(R::One(found))) => {
            run(rn::click(*b, *id, found, who, now))
        }
        (
            Event::Submission { submission: Submission::Resolve { incident: id, summary }, who },
            Loaded::Incident(I::One(found)),
        ) => incident(inc::resolve_submitted(*id, summary.clone(), found, who, runbook, now)),
        (
            Event::Submission { submission: Submission::Flag { run: id, phase, step, note }, who },
            Loaded::Run(R::One(found)),
        ) => run(rn::flag_submitted(*id, *phase, *step, note, found, who, now)),
        (Event::Timer(timer), loaded) => match (&timer.kind, loaded) {
            (TimerKind::Incident { generation, reminder, .. }, Loaded::Incident(I::One(found))) => {
                incident(inc::timer(*reminder, *generation, timer.due, found, runbook, now))
            }
            (TimerKind::RunOverdue { .. }, Loaded::Run(R::One(found))) => run(rn::overdue(found, runbook, now)),
            (TimerKind::ScheduledRun { checklist, slot }, loaded) => {
                let new_id = match loaded {
                    Loaded::Run(R::NewId(id)) => Some(id),
                    _ => None,
                };
                run(rn::scheduled(checklist, *slot, new_id, runbook, now))
            }
            _ => Decision::reply(crate::replies::INTERNAL_ERROR),
        },
        (Event::Mention { text, channel, ts }, Loaded::Incident(I::Many(open))) => {
            incident(inc::mention(text, &open, channel, ts, now))
        }
        // The shell loads what `needs` asks for; anything else is a bug in
        // the shell, answered without changing anything.
        _ => Decision::reply(crate::replies::INTERNAL_ERROR),
    }
}
