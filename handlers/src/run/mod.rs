//! Runs of the runbook's checklists: a checklist started by `/runbook start`
//! or by its schedule, settled step by step in its Slack thread, and kept
//! with its history (who, when, how long, flags, skipped steps).

pub mod command;
pub mod decide;
pub mod render;

use crate::checklist::{self, PhaseRun, StepRefusal};
pub use crate::subject::{MessageRef, Posted, RunId, Stamp};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// One run of a checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    /// The checklist's id in the runbook, e.g. `morning-health-check`.
    pub checklist: String,
    pub name: String,
    /// Who started it; `opsbot` for a scheduled run.
    pub started: Stamp,
    /// When it should be finished (start + the checklist's duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Role id of who is responsible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible: Option<String>,
    /// The channel, as the runbook names it, the run is posted in.
    pub channel: String,
    /// The schedule slot this run is for, when it was started by schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
    /// How late a scheduled run started (the bot was down at its time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_by_secs: Option<i64>,
    pub sections: Vec<PhaseRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Stamp>,
    /// The overdue reminder was sent (there is one per run).
    #[serde(default)]
    pub reminded: bool,
    /// Where its messages are in Slack; the store fills it in on load.
    #[serde(skip)]
    pub posted: Posted,
}

impl Run {
    pub fn is_open(&self) -> bool {
        self.completed.is_none()
    }

    /// How long it took (or has taken so far).
    pub fn took(&self, now: DateTime<Utc>) -> TimeDelta {
        self.completed.as_ref().map_or(now, |c| c.at) - self.started.at
    }

    /// Settles a step; the last settled step completes the run.
    pub fn settle(
        &mut self,
        phase: usize,
        step: usize,
        done: bool,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StepRefusal> {
        if !self.is_open() {
            // A completed run keeps its record; late clicks change nothing.
            return Err(StepRefusal::NoSuchStep);
        }
        let text = checklist::settle(&mut self.sections, phase, step, done, user, now)?;
        if checklist::is_complete(&self.sections) {
            self.completed = Some(Stamp { user: user.to_owned(), at: now });
        }
        Ok(text)
    }

    /// The checks of the steps that the message `part` shows: what the
    /// shell fetches from GitHub before it posts or edits that message.
    pub fn checks(&self, part: crate::subject::ChecklistPart) -> Vec<crate::runbook::pipeline::Figure> {
        let Some(phase) = self.sections.get(part.phase) else { return Vec::new() };
        let range = part.steps();
        phase.steps.iter().skip(range.start).take(range.len()).filter_map(|s| s.check).collect()
    }

    /// Flagged steps: (phase name, step text, flag).
    pub fn flags(&self) -> Vec<(&str, &str, &checklist::Flag)> {
        self.sections
            .iter()
            .flat_map(|p| {
                p.steps.iter().filter_map(move |s| s.flag.as_ref().map(|f| (p.name.as_str(), s.text.as_str(), f)))
            })
            .collect()
    }

    /// Skipped steps: (phase name, step text).
    pub fn skipped(&self) -> Vec<(&str, &str)> {
        self.sections
            .iter()
            .flat_map(|p| {
                p.steps
                    .iter()
                    .filter(|s| s.outcome.as_ref().is_some_and(|o| !o.done))
                    .map(move |s| (p.name.as_str(), s.text.as_str()))
            })
            .collect()
    }
}
