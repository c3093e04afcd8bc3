//! Checklists as they run: phases of steps, each settled once (done or
//! skipped) by whoever clicks first, and split into Slack-sized messages.
//! Incident playbooks, post-incident checklists and checklist runs all use
//! this one mechanism.

use crate::blocks::{SlackMessage, SECTION_MAX};
use crate::codec::Button;
use crate::runbook::pipeline::Figure;
use crate::subject::ChecklistPart;
use crate::text::{escape, slack_date, truncate};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// At most this many steps share one Slack message (two blocks a step, a
/// header and a context line stay under Block Kit's 50 blocks).
pub const STEPS_PER_MESSAGE: usize = 20;

impl ChecklistPart {
    /// The message that shows a step.
    pub fn of_step(phase: usize, step: usize) -> ChecklistPart {
        ChecklistPart { phase, part: step / STEPS_PER_MESSAGE }
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
    /// The live figure the runbook shows beside the step, copied when the
    /// checklist started. Runs stored before steps had checks have none.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "known_figure")]
    pub check: Option<Figure>,
}

/// A check this version does not know (stored by a newer one) reads as
/// none: the run still loads, and the step shows no figure.
fn known_figure<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Figure>, D::Error> {
    let name: Option<String> = Option::deserialize(deserializer)?;
    Ok(name.as_deref().and_then(Figure::parse))
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
                .map(|s| StepRun {
                    text: s.text.clone(),
                    command: s.command.clone(),
                    outcome: None,
                    flag: None,
                    check: s.check,
                })
                .collect(),
        })
        .collect()
}

/// Every message a checklist needs, in posting order.
pub fn parts(phases: &[PhaseRun]) -> Vec<ChecklistPart> {
    phases
        .iter()
        .enumerate()
        .flat_map(|(phase, p)| {
            let parts = p.steps.len().div_ceil(STEPS_PER_MESSAGE).max(1);
            (0..parts).map(move |part| ChecklistPart { phase, part })
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

/// Longest step text or command shown; the rest is cut to stay within a
/// section's 3000 characters.
const STEP_TEXT_MAX: usize = 1200;

/// What a checklist message shows, whichever checklist it is.
pub struct ChecklistView<'a> {
    pub phases: &'a [PhaseRun],
    pub part: ChecklistPart,
    /// `INC-1`, `RUN-5`
    pub subject: String,
    /// `P0 playbook`, `Post-incident`, `Morning Health Check`
    pub what: String,
    /// Whether steps can still be settled (their buttons are shown).
    pub open: bool,
    /// The Done (`true`) and Skip (`false`) button of a step.
    pub settle: &'a dyn Fn(usize, usize, bool) -> Button,
    /// The Flag button of a step, for checklists whose steps can be flagged.
    pub flag: Option<&'a dyn Fn(usize, usize) -> Button>,
    /// What a step shows beside it, below its text: the live figure of its
    /// `check`, for checklists that fetch them.
    pub beside: Option<&'a Beside<'a>>,
}

/// The text a checklist shows below a step, if any.
pub type Beside<'a> = dyn Fn(&StepRun) -> Option<String> + 'a;

/// Longest text shown beside a step; the step's own text gives way to it,
/// so the section stays within 3000 characters either way.
pub const BESIDE_MAX: usize = 1000;

/// One message of a checklist in a thread: the phase's name, and each step
/// with `Done`/`Skip` (and `Flag`) buttons, or who settled it and when.
pub fn message(view: &ChecklistView) -> SlackMessage {
    let part = view.part;
    let Some(phase) = view.phases.get(part.phase) else {
        return SlackMessage {
            text: format!("{}: (no such checklist part)", view.subject),
            blocks: Value::Array(vec![]),
        };
    };
    let what = &view.what;
    let range = part.steps();
    let parts_in_phase = phase.steps.len().div_ceil(STEPS_PER_MESSAGE).max(1);
    let title = if parts_in_phase > 1 {
        format!("*{}* ({}/{parts_in_phase})", escape(&phase.name), part.part + 1)
    } else {
        format!("*{}*", escape(&phase.name))
    };
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("{} · {title}", escape(what)), SECTION_MAX)}}),
    ];
    for (index, step) in phase.steps.iter().enumerate().skip(range.start).take(range.len()) {
        let mut text = match &step.outcome {
            Some(o) if o.done => format!("✅ ~{}~", escape(&truncate(&step.text, STEP_TEXT_MAX))),
            Some(_) => format!("⏭ ~{}~", escape(&truncate(&step.text, STEP_TEXT_MAX))),
            None => format!("⬜ {}", escape(&truncate(&step.text, STEP_TEXT_MAX))),
        };
        if let Some(command) = &step.command {
            text.push_str(&format!("\n```{}```", truncate(command, STEP_TEXT_MAX)));
        }
        if let Some(o) = &step.outcome {
            text.push_str(&format!(
                "\n_{} by <@{}> {}_",
                if o.done { "Done" } else { "Skipped" },
                o.by,
                slack_date(o.at)
            ));
        }
        if let Some(f) = &step.flag {
            text.push_str(&format!("\n🚩 <@{}>: {}", f.by, escape(&truncate(&f.note, 500))));
        }
        if let Some(beside) = view.beside.and_then(|beside| beside(step)) {
            let beside = truncate(&beside, BESIDE_MAX);
            text = truncate(&text, SECTION_MAX - 1 - beside.chars().count());
            text.push('\n');
            text.push_str(&beside);
        }
        blocks.push(json!({"type": "section", "block_id": format!("step:{}:{}", part.phase, index), "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_MAX)}}));
        if step.outcome.is_none() && view.open {
            let mut elements = vec![
                crate::blocks::button((view.settle)(part.phase, index, true), "Done", Some("primary")),
                crate::blocks::button((view.settle)(part.phase, index, false), "Skip", None),
            ];
            if let Some(flag) = view.flag {
                elements.push(crate::blocks::button(flag(part.phase, index), "Flag", Some("danger")));
            }
            blocks.push(json!({"type": "actions", "block_id": format!("step-actions:{}:{}", part.phase, index), "elements": elements}));
        }
    }
    let (settled, total) = progress(view.phases);
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} · {} · {settled}/{total} steps settled", view.subject, escape(what))}]}));
    SlackMessage {
        text: format!("{} {}: {}", view.subject, escape(what), escape(&truncate(&phase.name, 200))),
        blocks: Value::Array(blocks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{Phase, Step};
    use chrono::TimeZone;

    fn phases(steps: usize) -> Vec<PhaseRun> {
        let phase = Phase {
            name: "Checks".into(),
            steps: (0..steps).map(|i| Step { text: format!("step {i}"), command: None, check: None }).collect(),
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
        let parts = parts(&p);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].steps(), 40..60);
        assert_eq!(ChecklistPart::of_step(0, 44), parts[2]);
    }

    #[test]
    fn a_flag_keeps_the_step_open() {
        let mut p = phases(1);
        flag(&mut p, 0, 0, "cache hit rate 41%", "U1", now()).unwrap();
        assert_eq!(progress(&p), (0, 1));
        assert_eq!(p[0].steps[0].flag.as_ref().unwrap().note, "cache hit rate 41%");
    }
}
