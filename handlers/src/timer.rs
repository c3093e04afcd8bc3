//! Timers: what the runbook says must happen later if nobody acts —
//! escalation when an incident goes unacknowledged, reminders when it runs
//! past its resolution target or goes quiet.
//!
//! A timer is data with a due time. The shell keeps timers in Redis and
//! hands due ones to [`crate::decide::decide_timer`], which checks them
//! against the incident as it is now: a timer whose reason has passed
//! (the incident was acknowledged, a newer update moved the nudge) does
//! nothing, so nothing ever needs cancelling.

use crate::run::{RunId, Subject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// What the timer is about; the kind says what to do.
    pub subject: Subject,
    pub due: DateTime<Utc>,
    /// The incident's timer generation when this was set. A severity change
    /// re-times the incident and starts a new generation; older timers then
    /// do nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    #[serde(flatten)]
    pub kind: TimerKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum TimerKind {
    /// Escalate to this level of the matrix if still unacknowledged.
    Escalate { level: usize },
    /// Remind that the resolution target has passed (again, each round).
    ResolutionOverdue { round: u32 },
    /// Nudge the commander for a status update.
    UpdateDue,
    /// Remind the responsible role of a run still open past its duration.
    RunOverdue,
    /// A routine's scheduled slot: start its run.
    ScheduledRun { slot: DateTime<Utc> },
}

impl Timer {
    /// The run a run timer is about.
    pub fn run(&self) -> Option<RunId> {
        match self.subject {
            Subject::Run(id) => Some(id),
            _ => None,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
