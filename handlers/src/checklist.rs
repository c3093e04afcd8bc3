//! Checklists as they run: phases of steps, each settled once (done or
//! skipped) by whoever clicks first, and split into Slack-sized messages.
//! Incident playbooks, post-incident checklists and routine runs all use
//! this one mechanism.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which checklist: an incident's playbook or post-incident checklist, or
/// a run of one of the runbook's routines.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecklistKind {
    Playbook,
    PostIncident,
    Run,
}

impl ChecklistKind {
    pub fn code(self) -> &'static str {
        match self {
            ChecklistKind::Playbook => "pb",
            ChecklistKind::PostIncident => "pi",
            ChecklistKind::Run => "rn",
        }
    }

    pub fn from_code(code: &str) -> Option<ChecklistKind> {
        match code {
            "pb" => Some(ChecklistKind::Playbook),
            "pi" => Some(ChecklistKind::PostIncident),
            "rn" => Some(ChecklistKind::Run),
            _ => None,
        }
    }
}

/// At most this many steps share one Slack message (two blocks a step, a
/// header and a context line stay under Block Kit's 50 blocks).
pub const STEPS_PER_MESSAGE: usize = 20;

/// One Slack message of a checklist: a phase, or a slice of a long phase.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChecklistPart {
    pub kind: ChecklistKind,
    pub phase: usize,
    pub part: usize,
}

impl ChecklistPart {
    /// The key its message is stored under.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.kind.code(), self.phase, self.part)
    }

    pub fn of_step(kind: ChecklistKind, phase: usize, step: usize) -> ChecklistPart {
        ChecklistPart { kind, phase, part: step / STEPS_PER_MESSAGE }
    }

    /// Step indexes within the phase that this part shows.
    pub fn steps(&self) -> std::ops::Range<usize> {
        self.part * STEPS_PER_MESSAGE..(self.part + 1) * STEPS_PER_MESSAGE
    }
}

/// A phase of a running checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRun {
    pub name: String,
    pub steps: Vec<StepRun>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRun {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<StepOutcome>,
    /// A note that something was wrong at this step ("document any
    /// failures or anomalies"); a flagged step can still be done or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<Flag>,
}

/// Who flagged a step, when, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: String,
}

/// How a step was settled, by whom and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub done: bool,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Copies a runbook's phases into a fresh run.
pub fn start_checklist(phases: &[crate::runbook::Phase]) -> Vec<PhaseRun> {
    phases
        .iter()
        .map(|p| PhaseRun {
            name: p.name.clone(),
            steps: p
                .steps
                .iter()
                .map(|s| StepRun { text: s.text.clone(), command: s.command.clone(), outcome: None, flag: None })
                .collect(),
        })
        .collect()
}

/// Every message a checklist needs, in posting order.
pub fn checklist_parts(kind: ChecklistKind, phases: &[PhaseRun]) -> Vec<ChecklistPart> {
    phases
        .iter()
        .enumerate()
        .flat_map(|(phase, p)| {
            let parts = p.steps.len().div_ceil(STEPS_PER_MESSAGE).max(1);
            (0..parts).map(move |part| ChecklistPart { kind, phase, part })
        })
        .collect()
}

/// (settled, total) steps.
pub fn progress(phases: &[PhaseRun]) -> (usize, usize) {
    let steps = phases.iter().flat_map(|p| &p.steps);
    let total = steps.clone().count();
    let settled = steps.filter(|s| s.outcome.is_some()).count();
    (settled, total)
}

/// Why a step could not be settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepRefusal {
    NoSuchStep,
    AlreadySettled(StepOutcome),
}

/// Settles a step: the first click wins, a second (a double click, a Slack
/// retry, a colleague) changes nothing. Returns the step's text.
pub fn settle(
    phases: &mut [PhaseRun],
    phase: usize,
    step: usize,
    done: bool,
    user: &str,
    now: DateTime<Utc>,
) -> Result<String, StepRefusal> {
    let step_run = phases.get_mut(phase).and_then(|p| p.steps.get_mut(step)).ok_or(StepRefusal::NoSuchStep)?;
    if let Some(outcome) = &step_run.outcome {
        return Err(StepRefusal::AlreadySettled(outcome.clone()));
    }
    step_run.outcome = Some(StepOutcome { done, by: user.to_owned(), at: now });
    Ok(step_run.text.clone())
}

/// Flags a step with a note; a later flag replaces the earlier one.
pub fn flag(
    phases: &mut [PhaseRun],
    phase: usize,
    step: usize,
    note: &str,
    user: &str,
    now: DateTime<Utc>,
) -> Result<String, StepRefusal> {
    let step_run = phases.get_mut(phase).and_then(|p| p.steps.get_mut(step)).ok_or(StepRefusal::NoSuchStep)?;
    step_run.flag = Some(Flag { by: user.to_owned(), at: now, note: note.to_owned() });
    Ok(step_run.text.clone())
}

/// Whether every step is settled.
pub fn is_complete(phases: &[PhaseRun]) -> bool {
    let (settled, total) = progress(phases);
    settled == total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{Phase, Step};
    use chrono::TimeZone;

    fn phases(steps: usize) -> Vec<PhaseRun> {
        let phase = Phase {
            name: "Checks".into(),
            steps: (0..steps).map(|i| Step { text: format!("step {i}"), command: None }).collect(),
        };
        start_checklist(&[phase])
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    #[test]
    fn the_first_click_settles_a_step_and_a_second_changes_nothing() {
        let mut p = phases(3);
        assert_eq!(settle(&mut p, 0, 1, true, "U1", now()), Ok("step 1".into()));
        let again = settle(&mut p, 0, 1, false, "U2", now());
        assert!(matches!(again, Err(StepRefusal::AlreadySettled(ref o)) if o.by == "U1" && o.done));
        assert_eq!(settle(&mut p, 0, 9, true, "U1", now()), Err(StepRefusal::NoSuchStep));
        assert_eq!(settle(&mut p, 4, 0, true, "U1", now()), Err(StepRefusal::NoSuchStep));
        assert_eq!(progress(&p), (1, 3));
        assert!(!is_complete(&p));
    }

    #[test]
    fn long_phases_split_into_slack_sized_messages() {
        let p = phases(45);
        let parts = checklist_parts(ChecklistKind::Run, &p);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].steps(), 40..60);
        assert_eq!(ChecklistPart::of_step(ChecklistKind::Run, 0, 44), parts[2]);
    }

    #[test]
    fn a_flag_keeps_the_step_open() {
        let mut p = phases(1);
        flag(&mut p, 0, 0, "cache hit rate 41%", "U1", now()).unwrap();
        assert_eq!(progress(&p), (0, 1));
        assert_eq!(p[0].steps[0].flag.as_ref().unwrap().note, "cache hit rate 41%");
    }
}
