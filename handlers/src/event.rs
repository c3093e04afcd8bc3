//! Every entry point as one [`Event`], and the one protocol that decides
//! it: ask [`needs`] what to load, load it, call [`decide`] with what was
//! loaded and `now`, commit the [`Decision`]. A slash command, a click, a
//! modal submission, a timer and a mention all go this way.
//!
//! This is the one module that names every feature: adding a subject adds
//! its arms here and nowhere else in the core.

use crate::alert::signal::{Signal, WorkflowRun};
use crate::alert::{self, AlertChange};
use crate::codec::{Button, Submission};
use crate::command::SlashCommand;
use crate::decision::{Caller, Decision, Invocation};
use crate::deploy::{self, Deployment};
use crate::incident::{self, IncidentChange};
use crate::oncall::handoff::{self, Handoff};
use crate::oncall::overrides::{self, Override};
use crate::oncall::swap::{self, SwapChange};
use crate::oncall::Command as OnCallCommand;
use crate::pipeline::rerun::{self, RerunRequest};
use crate::pipeline::{self, command::Command as PipelineCommand};
use crate::run::{self, Run};
use crate::runbook::Runbook;
use crate::subject::{DeployId, Subject};
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
    /// A webhook reported something (GitHub, Alertmanager).
    Signal(Signal),
    /// Re-check a KPI alert (by its runbook id) after a run joined the window.
    KpiCheck {
        alert: String,
    },
    /// A workflow run whose title names a deployment started (`finished`
    /// false) or finished.
    DeploymentRun {
        deployment: DeployId,
        run: WorkflowRun,
        finished: bool,
    },
    /// A later attempt of a run finished: a person's re-run of it, if one
    /// is stored, is answered.
    RerunFinished {
        run: WorkflowRun,
    },
}

/// What must be loaded before an event is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Incident(incident::decide::Need),
    Run(run::decide::Need),
    Alert(alert::decide::Need),
    Pipeline(pipeline::Need),
    Deploy(deploy::decide::Need),
    Handoff(handoff::Need),
    Override(overrides::Need),
    Rerun(rerun::Need),
    Swap(swap::Need),
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    Incident(incident::decide::Loaded),
    Run(run::decide::Loaded),
    Alert(alert::decide::Loaded),
    Pipeline(pipeline::Loaded),
    Deploy(deploy::decide::Loaded),
    Handoff(handoff::Loaded),
    Override(overrides::Loaded),
    Rerun(rerun::Loaded),
    Swap(swap::Loaded),
}

/// The state a decision writes: one subject's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Incident(IncidentChange),
    Run(Run),
    Alert(AlertChange),
    Deployment(Deployment),
    Handoff(Handoff),
    Override(Override),
    /// A person's re-run from `/pipeline runs`: no subject of its own.
    Rerun(RerunRequest),
    /// A swap offer, and the overrides an accepted one makes.
    Swap(Box<SwapChange>),
}

impl Change {
    /// The subject whose state it writes; `None` for an alert decision
    /// that only adds a run to the KPI window.
    pub fn subject(&self) -> Option<Subject> {
        match self {
            Change::Incident(c) => Some(Subject::Incident(c.incident.id)),
            Change::Run(run) => Some(Subject::Run(run.id)),
            Change::Alert(c) => c.group.as_ref().map(|g| Subject::Alert(g.group.id)),
            Change::Deployment(d) => Some(Subject::Deployment(d.id)),
            Change::Handoff(h) => Some(Subject::Handoff(h.id)),
            Change::Override(o) => Some(Subject::Override(o.id)),
            Change::Rerun(_) => None,
            Change::Swap(c) => Some(Subject::Swap(c.swap.id)),
        }
    }
}

/// What must be decided after `event` was committed: the KPI checks a
/// finished workflow run calls for, and the deployment its title names.
pub fn follow_ups(event: &Event, decision: &Decision<Change>, runbook: &Runbook) -> Vec<Event> {
    let mut next = match &decision.change {
        Some(Change::Alert(change)) => {
            alert::decide::kpi_checks(change, runbook).into_iter().map(|alert| Event::KpiCheck { alert }).collect()
        }
        _ => Vec::new(),
    };
    let (run, finished) = match event {
        Event::Signal(Signal::WorkflowRun(run)) => (Some(run), true),
        Event::Signal(Signal::WorkflowRunStarted(run)) => (Some(run), false),
        _ => (None, false),
    };
    if let Some(run) = run {
        if let Some(deployment) = deploy::decide::named_by(run) {
            next.push(Event::DeploymentRun { deployment, run: run.clone(), finished });
        }
        if finished && rerun::may_answer(run) {
            next.push(Event::RerunFinished { run: run.clone() });
        }
    }
    next
}

/// What `event` needs loaded. `now` matters for a schedule slot: one that
/// is too late to run takes no run number.
pub fn needs(event: &Event, runbook: &Runbook, now: DateTime<Utc>) -> Need {
    use incident::decide::Need as I;
    use run::decide::Need as R;
    match event {
        Event::Command { command: SlashCommand::Incident(cmd), who } => {
            Need::Incident(incident::decide::needs(cmd, who, runbook))
        }
        Event::Command { command: SlashCommand::Runbook(cmd), who } => Need::Run(run::decide::needs(cmd, who, runbook)),
        Event::Command { command: SlashCommand::Pipeline(PipelineCommand::Deploy { environment, git_ref }), who } => {
            Need::Deploy(deploy::decide::needs(deploy::Action::Deploy, environment, git_ref.as_deref(), who, runbook))
        }
        Event::Command { command: SlashCommand::Pipeline(PipelineCommand::Rollback { environment, git_ref }), who } => {
            Need::Deploy(deploy::decide::needs(deploy::Action::Rollback, environment, git_ref.as_deref(), who, runbook))
        }
        Event::Command { command: SlashCommand::Pipeline(cmd), .. } => Need::Pipeline(pipeline::needs(cmd)),
        // Refused, they take no number: the refusal is decided on nothing.
        Event::Command { command: SlashCommand::OnCall(OnCallCommand::Override(_) | OnCallCommand::Swap(_)), who }
            if runbook.may(crate::runbook::permissions::Action::OverrideOnCall, who, None).is_err() =>
        {
            Need::Nothing
        }
        Event::Command { command: SlashCommand::OnCall(OnCallCommand::Override(_)), .. } => {
            Need::Override(overrides::Need::New)
        }
        Event::Command { command: SlashCommand::OnCall(OnCallCommand::Swap(_)), .. } => Need::Swap(swap::Need::New),
        Event::Command { command: SlashCommand::OnCall(OnCallCommand::Withdraw(id)), .. } => {
            Need::Swap(swap::Need::One(*id))
        }
        Event::Command { command: SlashCommand::OnCall(cmd), who } => {
            if crate::oncall::needs_report(cmd) {
                Need::Handoff(handoff::Need::Report { since: handoff::since_on_demand(who, runbook, now) })
            } else {
                Need::Nothing
            }
        }
        Event::Click { button: Button::Incident(id, _), .. } => Need::Incident(I::One(*id)),
        Event::Click { button: Button::Run(id, _), .. } => Need::Run(R::One(*id)),
        Event::Click { button: Button::Alert(id, _), .. } => Need::Alert(alert::decide::Need::One(*id)),
        Event::Click { button: Button::Handoff(id, _), .. } => Need::Handoff(handoff::Need::One(*id)),
        Event::Click { button: Button::Override(id, _), .. } => Need::Override(overrides::Need::One(*id)),
        Event::Click { button: Button::Rerun(run), .. } => Need::Rerun(rerun::needs(run)),
        Event::Click { button: Button::Swap(id, crate::codec::SwapButton::Accept), .. } => {
            Need::Swap(swap::Need::Accept(*id))
        }
        Event::Click { button: Button::Swap(id, crate::codec::SwapButton::Decline), .. } => {
            Need::Swap(swap::Need::One(*id))
        }
        Event::Submission { submission: Submission::Resolve { incident, .. }, .. } => Need::Incident(I::One(*incident)),
        Event::Submission { submission: Submission::Flag { run, .. }, .. } => Need::Run(R::One(*run)),
        // A form's declare that will be refused (unfilled, or not the
        // person's to make) takes no number, as a typed one does not.
        Event::Submission { submission: Submission::Declare { severity, title, .. }, who }
        | Event::Submission { submission: Submission::HomeDeclare { severity, title }, who } => {
            match incident::decide::form_declare_needs_a_number(*severity, title, who, runbook) {
                true => Need::Incident(I::NewId),
                false => Need::Nothing,
            }
        }
        Event::Click { button: Button::Home(crate::codec::HomeButton::Declare), .. } => Need::Nothing,
        Event::Click { button: Button::Home(crate::codec::HomeButton::Start(checklist)), who } => {
            Need::Run(run::decide::needs(&run::command::Command::Start(checklist.clone()), who, runbook))
        }
        Event::Submission { submission: Submission::Deploy { environment, .. }, who } => {
            Need::Deploy(deploy::decide::confirm_needs(environment, who, runbook))
        }
        Event::Timer(timer) => match &timer.kind {
            TimerKind::Incident { incident, .. } => Need::Incident(I::One(*incident)),
            TimerKind::RunOverdue { run } => Need::Run(R::One(*run)),
            TimerKind::ScheduledRun { checklist, slot } => {
                Need::Run(run::decide::slot_needs(checklist, *slot, runbook, now))
            }
            TimerKind::DeclareFromAlert { .. } => Need::Incident(I::NewId),
            TimerKind::AlertDeclared { alert, .. } | TimerKind::GitHubRefused { caller: Caller::Alert(alert), .. } => {
                Need::Alert(alert::decide::Need::One(*alert))
            }
            TimerKind::Handoff { role, shift } => {
                Need::Handoff(handoff::Need::New { since: handoff::since(role, *shift, timer.due, runbook) })
            }
            TimerKind::HandoffUnacknowledged { handoff: id } => Need::Handoff(handoff::Need::One(*id)),
            TimerKind::ShiftReminder { .. } => Need::Nothing,
            TimerKind::OverrideEnds { cover } => Need::Override(overrides::Need::One(*cover)),
            TimerKind::SwapExpires { swap: id } => Need::Swap(swap::Need::One(*id)),
            TimerKind::GitHubRefused { caller: Caller::Deployment(id), .. } => {
                Need::Deploy(deploy::decide::Need::One(*id))
            }
            TimerKind::GitHubRefused { caller: Caller::Person { run_id }, .. } => {
                Need::Rerun(rerun::Need::One(*run_id))
            }
            TimerKind::DeploymentNoted { incident, .. } => Need::Incident(I::One(*incident)),
            TimerKind::DeploymentDispatched { deployment, .. } | TimerKind::DeploymentTimeout { deployment } => {
                Need::Deploy(deploy::decide::Need::One(*deployment))
            }
        },
        Event::Mention { .. } => Need::Incident(I::OpenFirst(incident::render::LIST_MAX)),
        Event::Signal(signal) => Need::Alert(alert::decide::needs(signal, runbook)),
        Event::KpiCheck { alert } => Need::Alert(alert::decide::kpi_needs(alert, runbook, now)),
        Event::DeploymentRun { deployment, .. } => Need::Deploy(deploy::decide::Need::One(*deployment)),
        Event::RerunFinished { run } => Need::Rerun(rerun::Need::One(run.run_id)),
    }
}

/// Decides `event` with what [`needs`] asked for. A decision that writes
/// an incident carries what that changes in its day's tally, from the
/// incident as loaded (nothing, when new) and as written.
pub fn decide(event: &Event, loaded: Loaded, runbook: &Runbook, now: DateTime<Utc>) -> Decision<Change> {
    use incident::decide::Loaded as I;
    let before = match &loaded {
        Loaded::Incident(I::One(Some(inc)) | I::WithTimeline(Some((inc, _)))) => incident::stats::counts(inc, runbook),
        _ => Vec::new(),
    };
    let mut decision = decide_subject(event, loaded, runbook, now);
    if let Some(Change::Incident(change)) = &mut decision.change {
        change.tally = incident::stats::tally(&before, &change.incident, runbook);
    }
    decision
}

fn decide_subject(event: &Event, loaded: Loaded, runbook: &Runbook, now: DateTime<Utc>) -> Decision<Change> {
    use incident::decide::{self as inc, Loaded as I};
    use run::decide::{self as rn, Loaded as R};
    let incident = |d: inc::IncidentDecision| d.map(Change::Incident);
    let run = |d: rn::RunDecision| d.map(Change::Run);
    let alert = |d: alert::decide::AlertDecision| d.map(Change::Alert);
    let deployment = |d: deploy::decide::DeployDecision| d.map(Change::Deployment);
    let swapped = |c: SwapChange| Change::Swap(Box::new(c));
    use deploy::decide::Loaded as D;
    match (event, loaded) {
        (
            Event::Command { command: SlashCommand::Pipeline(PipelineCommand::Deploy { environment, git_ref }), who },
            Loaded::Deploy(l),
        ) => deployment(deploy::decide::command(
            deploy::Action::Deploy,
            environment,
            git_ref.as_deref(),
            l,
            who,
            runbook,
        )),
        (
            Event::Command { command: SlashCommand::Pipeline(PipelineCommand::Rollback { environment, git_ref }), who },
            Loaded::Deploy(l),
        ) => deployment(deploy::decide::command(
            deploy::Action::Rollback,
            environment,
            git_ref.as_deref(),
            l,
            who,
            runbook,
        )),
        (
            Event::Submission { submission: Submission::Deploy { action, environment, git_ref, reason }, who },
            Loaded::Deploy(l),
        ) => deployment(deploy::decide::confirmed(
            *action,
            environment,
            git_ref,
            reason.as_deref(),
            l,
            who,
            runbook,
            now,
        )),
        (Event::DeploymentRun { run, finished: true, .. }, Loaded::Deploy(D::One(found))) => {
            deployment(deploy::decide::run_finished(found, run))
        }
        (Event::DeploymentRun { run, finished: false, .. }, Loaded::Deploy(D::One(found))) => {
            deployment(deploy::decide::run_started(found, run))
        }
        (Event::Command { command: SlashCommand::Incident(cmd), who }, Loaded::Incident(l)) => {
            incident(inc::command(cmd, l, who, runbook, now))
        }
        (Event::Command { command: SlashCommand::Runbook(cmd), who }, Loaded::Run(l)) => {
            run(rn::command(cmd, l, who, runbook, now))
        }
        (Event::Command { command: SlashCommand::Pipeline(cmd), who }, Loaded::Pipeline(l)) => {
            pipeline::command(cmd, l, who).map(|never| match never {})
        }
        (
            Event::Command { command: SlashCommand::OnCall(OnCallCommand::Override(request)), who },
            Loaded::Override(overrides::Loaded::New(id)),
        ) => overrides::set(request, id, who, runbook, now).map(Change::Override),
        (
            Event::Command { command: SlashCommand::OnCall(OnCallCommand::Override(_) | OnCallCommand::Swap(_)), who },
            Loaded::Nothing,
        ) => crate::oncall::overrides::refused(who, runbook).map(Change::Override),
        (
            Event::Command { command: SlashCommand::OnCall(OnCallCommand::Swap(request)), who },
            Loaded::Swap(swap::Loaded::New { id, open }),
        ) => swap::propose(request, id, &open, who, runbook, now).map(swapped),
        (
            Event::Command { command: SlashCommand::OnCall(OnCallCommand::Withdraw(id)), who },
            Loaded::Swap(swap::Loaded::One(found)),
        ) => swap::withdraw(found, *id, who, now).map(swapped),
        (Event::Command { command: SlashCommand::OnCall(cmd), who }, loaded) => {
            let report = match loaded {
                Loaded::Handoff(handoff::Loaded::Report(report)) => report,
                _ => Default::default(),
            };
            crate::oncall::command(cmd, &report, who, runbook, now).map(|never| match never {})
        }
        (Event::Click { button: Button::Incident(id, b), who }, Loaded::Incident(I::One(found))) => {
            incident(inc::click(*b, *id, found, who, runbook, now))
        }
        (Event::Click { button: Button::Run(id, b), who }, Loaded::Run(R::One(found))) => {
            run(rn::click(*b, *id, found, who, runbook, now))
        }
        (Event::Click { button: Button::Alert(id, b), who }, Loaded::Alert(alert::decide::Loaded::One(found))) => {
            alert(alert::decide::click(*b, *id, found, who, now))
        }
        (Event::Click { button: Button::Rerun(listed), who }, Loaded::Rerun(loaded)) => {
            match rerun::pressed(listed, loaded, who, now) {
                rerun::Pressed::Alert(d) => alert(*d),
                rerun::Pressed::Person(d) => d.map(Change::Rerun),
            }
        }
        (Event::RerunFinished { run }, Loaded::Rerun(rerun::Loaded::One(found))) => {
            rerun::finished(found, run).map(Change::Rerun)
        }
        (
            Event::Click { button: Button::Handoff(id, crate::codec::HandoffButton::Acknowledge), who },
            Loaded::Handoff(handoff::Loaded::One(found)),
        ) => handoff::acknowledge(found, *id, who, now).map(Change::Handoff),
        (
            Event::Click { button: Button::Override(id, crate::codec::OverrideButton::Cancel), who },
            Loaded::Override(overrides::Loaded::One(found)),
        ) => overrides::cancel(found, *id, who, now).map(Change::Override),
        (
            Event::Click { button: Button::Swap(id, crate::codec::SwapButton::Accept), who },
            Loaded::Swap(swap::Loaded::Accept { found, overrides }),
        ) => swap::accept(found, overrides, *id, who, runbook, now).map(swapped),
        (
            Event::Click { button: Button::Swap(id, crate::codec::SwapButton::Decline), who },
            Loaded::Swap(swap::Loaded::One(found)),
        ) => swap::decline(found, *id, who, now).map(swapped),
        (
            Event::Submission { submission: Submission::Resolve { incident: id, summary }, who },
            Loaded::Incident(I::One(found)),
        ) => incident(inc::resolve_submitted(*id, summary.clone(), found, who, runbook, now)),
        (
            Event::Submission { submission: Submission::Flag { run: id, phase, step, note }, who },
            Loaded::Run(R::One(found)),
        ) => run(rn::flag_submitted(*id, *phase, *step, note, found, who, runbook, now)),
        (
            Event::Submission { submission: Submission::Declare { alert: from, severity, title, details }, who },
            loaded,
        ) => {
            // A refused declare asked for nothing, so nothing was loaded.
            let loaded = match loaded {
                Loaded::Incident(loaded) => loaded,
                _ => I::Nothing,
            };
            incident(inc::declare_submitted(loaded, *from, *severity, title, details.as_deref(), who, runbook, now))
        }
        (Event::Submission { submission: Submission::HomeDeclare { severity, title }, who }, loaded) => {
            let loaded = match loaded {
                Loaded::Incident(loaded) => loaded,
                _ => I::Nothing,
            };
            incident(crate::home::declare(*severity, title, loaded, who, runbook, now))
        }
        (Event::Click { button: Button::Home(crate::codec::HomeButton::Declare), .. }, _) => {
            let mut d = Decision::nothing();
            d.modal = Some(crate::home::declare_form());
            d
        }
        (Event::Click { button: Button::Home(crate::codec::HomeButton::Start(checklist)), who }, loaded) => {
            let loaded = match loaded {
                Loaded::Run(loaded) => loaded,
                _ => R::Nothing,
            };
            run(crate::home::start(checklist, loaded, who, runbook, now))
        }
        (Event::Timer(timer), loaded) => match (&timer.kind, loaded) {
            (TimerKind::Incident { generation, reminder, .. }, Loaded::Incident(I::One(found))) => {
                incident(inc::timer(reminder.clone(), *generation, timer.due, found, runbook, now))
            }
            (TimerKind::RunOverdue { .. }, Loaded::Run(R::One(found))) => run(rn::overdue(found, runbook, now)),
            (TimerKind::ScheduledRun { checklist, slot }, loaded) => {
                let new_id = match loaded {
                    Loaded::Run(R::NewId(id)) => Some(id),
                    _ => None,
                };
                run(rn::scheduled(checklist, *slot, new_id, runbook, now))
            }
            (TimerKind::DeclareFromAlert { alert: from, declaration }, Loaded::Incident(I::NewId(id))) => {
                incident(inc::declare_from_alert(id, *from, declaration, runbook, now))
            }
            (
                TimerKind::AlertDeclared { incident: id, severity, by, .. },
                Loaded::Alert(alert::decide::Loaded::One(found)),
            ) => alert(alert::decide::incident_declared(found, *id, *severity, by.clone(), now)),
            (TimerKind::GitHubRefused { call, why, .. }, Loaded::Alert(alert::decide::Loaded::One(found))) => {
                alert(alert::decide::github_refused(found, call, why, now))
            }
            (TimerKind::Handoff { role, shift }, Loaded::Handoff(handoff::Loaded::New { id, report })) => {
                handoff::handoff(role, *shift, timer.due, id, &report, runbook, now).map(Change::Handoff)
            }
            (TimerKind::HandoffUnacknowledged { .. }, Loaded::Handoff(handoff::Loaded::One(found))) => {
                handoff::unacknowledged(found, runbook, now).map(Change::Handoff)
            }
            (TimerKind::OverrideEnds { .. }, Loaded::Override(overrides::Loaded::One(found))) => {
                overrides::ended(found, runbook, now).map(Change::Override)
            }
            (TimerKind::SwapExpires { .. }, Loaded::Swap(swap::Loaded::One(found))) => {
                swap::expired(found, now).map(swapped)
            }
            (TimerKind::ShiftReminder { role, shift }, _) => {
                crate::oncall::reminder::remind(role, *shift, timer.due, runbook, now).map(|never| match never {})
            }
            (TimerKind::GitHubRefused { call, why, .. }, Loaded::Deploy(D::One(found))) => {
                deployment(deploy::decide::github_refused(found, call, why))
            }
            (TimerKind::GitHubRefused { call, why, .. }, Loaded::Rerun(rerun::Loaded::One(found))) => {
                rerun::refused(found, call, why).map(Change::Rerun)
            }
            (TimerKind::DeploymentDispatched { run, .. }, Loaded::Deploy(D::One(found))) => {
                deployment(deploy::decide::dispatched(found, run))
            }
            (TimerKind::DeploymentTimeout { .. }, Loaded::Deploy(D::One(found))) => {
                deployment(deploy::decide::timed_out(found, timer.due))
            }
            (TimerKind::DeploymentNoted { deployment: id, by, text, .. }, Loaded::Incident(I::One(found))) => {
                incident(inc::deployment_noted(*id, by, text, found, now))
            }
            _ => Decision::reply(crate::replies::INTERNAL_ERROR),
        },
        (Event::Mention { text, channel, ts }, Loaded::Incident(I::Page(open, total))) => {
            incident(inc::mention(text, &open, total, channel, ts, now))
        }
        (Event::Signal(signal), Loaded::Alert(loaded)) => alert(alert::decide::signal(signal, loaded, runbook, now)),
        (Event::Signal(_), Loaded::Nothing) => Decision::nothing(),
        (Event::KpiCheck { alert: id }, Loaded::Alert(loaded)) => {
            alert(alert::decide::kpi_check(id, loaded, runbook, now))
        }
        // The shell loads what `needs` asks for; anything else is a bug in
        // the shell, answered without changing anything.
        _ => Decision::reply(crate::replies::INTERNAL_ERROR),
    }
}
