//! Timers: what must happen later if nobody acts — escalation when an
//! incident goes unacknowledged, reminders when it runs past its resolution
//! target or goes quiet, a run's overdue reminder, a checklist's schedule
//! slot.
//!
//! A timer is data with a due time, and each kind names its own subject, so
//! an escalation of a run cannot be written. The shell keeps timers in the
//! store and hands due ones back to the core, which checks them against
//! the subject as it is now: a timer whose reason has passed (the incident
//! was acknowledged, a newer update moved the nudge) does nothing, so
//! nothing ever needs cancelling. Stored as the `wire` module describes,
//! which implements its serde.

use crate::github::Call;
use crate::severity::Severity;
use crate::subject::Caller;
use crate::subject::{AlertId, DeployId, HandoffId, IncidentId, OverrideId, RunId, SwapId};
use chrono::{DateTime, Utc};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    pub due: DateTime<Utc>,
    pub kind: TimerKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerKind {
    Incident {
        incident: IncidentId,
        /// The incident's timer generation when this was set. A severity
        /// change re-times the incident and starts a new generation; older
        /// timers then do nothing.
        generation: u32,
        reminder: IncidentReminder,
    },
    /// Remind the responsible role of a run still open past its duration.
    RunOverdue { run: RunId },
    /// A scheduled checklist's slot: start its run. Due at the slot.
    ScheduledRun { checklist: String, slot: DateTime<Utc> },
    /// Declare an incident for an alert group a runbook rule says needs
    /// one. Due at once: a timer rather than part of the alert's decision
    /// because a decision writes one subject, and this one writes a new
    /// incident; consumed in the incident's commit, so it declares once.
    DeclareFromAlert { alert: AlertId, declaration: Declaration },
    /// Tell an alert group which incident was declared for it, so its
    /// message shows it and its Declare button goes. Due at once, for the
    /// same reason as [`TimerKind::DeclareFromAlert`]: the declare decision
    /// writes the incident, this one the group.
    AlertDeclared { alert: AlertId, incident: IncidentId, severity: Severity, by: Option<String> },
    /// GitHub refused a [`Call`] a subject's decision made (a re-run of a
    /// run already running, a dispatch missing a required input, a token
    /// without the permission): the subject says so. Set by the outbox,
    /// due at once.
    GitHubRefused { caller: Caller, call: Call, why: String },
    /// Record a deployment on an open incident's timeline and in its
    /// thread. Due at once: the deployment's decision writes the
    /// deployment, this one the incident.
    DeploymentNoted { incident: IncidentId, deployment: DeployId, by: String, text: String },
    /// GitHub accepted a deployment's dispatch and named the run it made:
    /// the message links it at once. Set by the outbox, due at once.
    DeploymentDispatched { deployment: DeployId, run: crate::github::DispatchedRun },
    /// The environment's `timeout` after a deployment was confirmed: if its
    /// run has not been reported finished, opsbot stops following it and
    /// says so. Does nothing to a deployment that ended.
    DeploymentTimeout { deployment: DeployId },
    /// A rotation's shift `shift` starts: post the handoff. Due at the
    /// shift change; see `oncall::handoff`.
    Handoff { role: String, shift: i64 },
    /// Nobody said "I have it" to a handoff in the rotation's window:
    /// remind. Due at the handoff's `acknowledge_by`.
    HandoffUnacknowledged { handoff: HandoffId },
    /// Remind a member that their shift `shift` of `role`'s rotation
    /// starts soon. Due the rotation's `remind_before` ahead of it.
    ShiftReminder { role: String, shift: i64 },
    /// An override runs its course: its message says so. Due at its end.
    OverrideEnds { cover: OverrideId },
    /// Nobody answered a swap offer by the time the earlier of its two
    /// shifts starts: it lapses. Due then.
    SwapExpires { swap: SwapId },
}

/// What to declare for an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration {
    pub severity: Severity,
    pub title: String,
    /// mrkdwn: what fired, with its links; shown in the incident.
    pub details: String,
    /// Whether the alert group has a message of its own to tell about the
    /// incident in its thread.
    pub announce: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentReminder {
    /// Escalate to this level of the matrix if still unacknowledged.
    Escalate { level: usize },
    /// Page the first responder at the opening of business hours: a
    /// severity that escalates the next business day was declared
    /// outside them.
    FirstPage,
    /// Page this role (by id) if still unacknowledged: the severity's
    /// `also_page_after`.
    LatePage { role: String },
    /// Remind that the resolution target has passed (again, each round).
    ResolutionOverdue { round: u32 },
    /// Nudge the commander for a status update.
    UpdateDue,
}

impl Timer {
    pub fn incident(incident: IncidentId, generation: u32, due: DateTime<Utc>, reminder: IncidentReminder) -> Timer {
        Timer { due, kind: TimerKind::Incident { incident, generation, reminder } }
    }

    pub fn run_overdue(run: RunId, due: DateTime<Utc>) -> Timer {
        Timer { due, kind: TimerKind::RunOverdue { run } }
    }

    /// The timer for a checklist's schedule slot; the same for every
    /// replica, so that scheduling it twice keeps one.
    pub fn slot(checklist: &str, slot: DateTime<Utc>) -> Timer {
        Timer { due: slot, kind: TimerKind::ScheduledRun { checklist: checklist.to_owned(), slot } }
    }

    /// For logs.
    pub fn describe(&self) -> String {
        match &self.kind {
            TimerKind::Incident { incident, reminder, .. } => format!("{incident} {reminder:?}"),
            TimerKind::RunOverdue { run } => format!("{run} overdue"),
            TimerKind::ScheduledRun { checklist, slot } => format!("{checklist} slot {slot}"),
            TimerKind::DeclareFromAlert { alert, declaration } => {
                format!("{alert} declares a {} incident", declaration.severity)
            }
            TimerKind::AlertDeclared { alert, incident, .. } => format!("{alert} learns of {incident}"),
            TimerKind::GitHubRefused { caller, call, .. } => {
                format!("{caller}: GitHub refused to {}", call.describe())
            }
            TimerKind::DeploymentNoted { incident, deployment, .. } => format!("{incident} notes {deployment}"),
            TimerKind::DeploymentDispatched { deployment, run } => {
                format!("{deployment} dispatched run {}", run.run_id)
            }
            TimerKind::DeploymentTimeout { deployment } => format!("{deployment} timeout"),
            TimerKind::Handoff { role, shift } => format!("{role} handoff to shift {shift}"),
            TimerKind::HandoffUnacknowledged { handoff } => format!("{handoff} unacknowledged"),
            TimerKind::ShiftReminder { role, shift } => format!("{role} reminder of shift {shift}"),
            TimerKind::OverrideEnds { cover } => format!("{cover} ends"),
            TimerKind::SwapExpires { swap } => format!("{swap} expires"),
        }
    }
}
