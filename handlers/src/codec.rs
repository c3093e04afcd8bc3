//! What opsbot writes into Slack's interactive parts and reads back: a
//! button's `action_id` and `value`, a modal's `callback_id`,
//! `private_metadata` and field ids. Encode and decode stand side by side so
//! they cannot drift, and the encodings never change (buttons on messages
//! posted by an earlier version still work).

use crate::github::Repo;
use crate::runbook::pipeline::Action;
use crate::severity::Severity;
use crate::subject::{AlertId, HandoffId, IncidentChecklist, IncidentId, OverrideId, RunId, SwapId};

/// A button opsbot put on a message: whose, and which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Button {
    Incident(IncidentId, IncidentButton),
    Run(RunId, RunButton),
    Alert(AlertId, AlertButton),
    Handoff(HandoffId, HandoffButton),
    Override(OverrideId, OverrideButton),
    /// **Re-run failed jobs** on a failed run that `/pipeline runs` lists.
    Rerun(ListedRun),
    Swap(SwapId, SwapButton),
    /// A button of the App Home tab.
    Home(HomeButton),
}

/// The App Home tab's buttons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HomeButton {
    /// Opens a form to declare an incident.
    Declare,
    /// Starts a run of the checklist with this id, as `/runbook start`.
    Start(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapButton {
    /// The person asked takes the trade: two overrides.
    Accept,
    /// The person asked says no: nothing changes.
    Decline,
}

/// A failed workflow run as `/pipeline runs` listed it: what its re-run
/// button carries, since the list itself is stored nowhere. The workflow
/// and branch name the alert group that may follow the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedRun {
    pub repo: Repo,
    pub run_id: u64,
    pub run_number: u64,
    /// The attempt that failed; a re-run is the next one.
    pub attempt: u32,
    pub workflow_id: u64,
    pub branch: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideButton {
    /// Ends the override at once.
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffButton {
    /// "I have it": the incoming person takes the shift.
    Acknowledge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertButton {
    /// Opens the declare modal, prefilled from the alert.
    Declare,
    /// Silences the group for [`crate::alert::MUTE_FOR`].
    Mute,
    /// Ends a mute early.
    Unmute,
    /// Asks GitHub to re-run the failed jobs of the group's latest run.
    Rerun,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentButton {
    Acknowledge,
    /// Opens the resolve modal, which asks for a summary.
    Resolve,
    /// "I'm commander": the clicker takes command.
    TakeCommand,
    Step {
        checklist: IncidentChecklist,
        phase: usize,
        step: usize,
        done: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunButton {
    Step {
        phase: usize,
        step: usize,
        done: bool,
    },
    /// Opens the flag modal, which asks for a note.
    Flag {
        phase: usize,
        step: usize,
    },
}

const ACK: &str = "incident.ack";
const RESOLVE: &str = "incident.resolve";
const TAKE_COMMAND: &str = "incident.commander";
const STEP_DONE: &str = "step.done";
const STEP_SKIP: &str = "step.skip";
const STEP_FLAG: &str = "step.flag";
const ALERT_DECLARE: &str = "alert.declare";
const ALERT_MUTE: &str = "alert.mute";
const ALERT_UNMUTE: &str = "alert.unmute";
const ALERT_RERUN: &str = "alert.rerun";
const HANDOFF_ACK: &str = "handoff.ack";
const OVERRIDE_CANCEL: &str = "override.cancel";
const PIPELINE_RERUN: &str = "pipeline.rerun";
const SWAP_ACCEPT: &str = "swap.accept";
const SWAP_DECLINE: &str = "swap.decline";
const HOME_DECLARE: &str = "home.declare";
const HOME_START: &str = "home.start";

/// A step's checklist as button ids spell it.
fn checklist_code(checklist: Option<IncidentChecklist>) -> &'static str {
    match checklist {
        Some(IncidentChecklist::Playbook) => "pb",
        Some(IncidentChecklist::PostIncident) => "pi",
        None => "rn",
    }
}

impl Button {
    /// The button's `action_id`. Step buttons carry the step in the id too,
    /// since Slack wants action ids unique within a message.
    pub fn action_id(&self) -> String {
        let step = |verb: &str, checklist, phase, step| format!("{verb}:{}:{phase}:{step}", checklist_code(checklist));
        let verb = |done: bool| if done { STEP_DONE } else { STEP_SKIP };
        match *self {
            Button::Rerun(ref run) => format!("{PIPELINE_RERUN}:{}", run.run_id),
            Button::Incident(_, IncidentButton::Acknowledge) => ACK.to_owned(),
            Button::Incident(_, IncidentButton::Resolve) => RESOLVE.to_owned(),
            Button::Incident(_, IncidentButton::TakeCommand) => TAKE_COMMAND.to_owned(),
            Button::Incident(_, IncidentButton::Step { checklist, phase, step: s, done }) => {
                step(verb(done), Some(checklist), phase, s)
            }
            Button::Run(_, RunButton::Step { phase, step: s, done }) => step(verb(done), None, phase, s),
            Button::Run(_, RunButton::Flag { phase, step: s }) => step(STEP_FLAG, None, phase, s),
            Button::Alert(_, AlertButton::Declare) => ALERT_DECLARE.to_owned(),
            Button::Alert(_, AlertButton::Mute) => ALERT_MUTE.to_owned(),
            Button::Alert(_, AlertButton::Unmute) => ALERT_UNMUTE.to_owned(),
            Button::Alert(_, AlertButton::Rerun) => ALERT_RERUN.to_owned(),
            Button::Handoff(_, HandoffButton::Acknowledge) => HANDOFF_ACK.to_owned(),
            Button::Override(_, OverrideButton::Cancel) => OVERRIDE_CANCEL.to_owned(),
            Button::Swap(_, SwapButton::Accept) => SWAP_ACCEPT.to_owned(),
            Button::Swap(_, SwapButton::Decline) => SWAP_DECLINE.to_owned(),
            Button::Home(HomeButton::Declare) => HOME_DECLARE.to_owned(),
            // Unique within the view: one Start per checklist.
            Button::Home(HomeButton::Start(ref id)) => format!("{HOME_START}:{id}"),
        }
    }

    /// The button's `value`: the incident or run number, and for steps
    /// which step; for a listed run, `<repo>:<run id>:<number>:<attempt>:
    /// <workflow id>:<branch>` (a branch holds no `:`, and is last anyway).
    pub fn value(&self) -> String {
        match *self {
            Button::Rerun(ref r) => {
                format!("{}:{}:{}:{}:{}:{}", r.repo, r.run_id, r.run_number, r.attempt, r.workflow_id, r.branch)
            }
            Button::Incident(id, IncidentButton::Step { checklist, phase, step, .. }) => {
                format!("{}:{}:{phase}:{step}", id.0, checklist_code(Some(checklist)))
            }
            Button::Incident(id, _) => id.0.to_string(),
            Button::Run(id, RunButton::Step { phase, step, .. } | RunButton::Flag { phase, step }) => {
                format!("{}:{}:{phase}:{step}", id.0, checklist_code(None))
            }
            Button::Alert(id, _) => id.0.to_string(),
            Button::Handoff(id, _) => id.0.to_string(),
            Button::Override(id, _) => id.0.to_string(),
            Button::Swap(id, _) => id.0.to_string(),
            Button::Home(HomeButton::Declare) => String::new(),
            Button::Home(HomeButton::Start(ref id)) => id.clone(),
        }
    }

    /// Reads a click back; `None` for buttons that are not opsbot's or
    /// values that do not parse.
    pub fn parse(action_id: &str, value: &str) -> Option<Button> {
        let verb = action_id.split(':').next()?;
        let incident = |b| Some(Button::Incident(value.parse().ok()?, b));
        match verb {
            ACK => incident(IncidentButton::Acknowledge),
            PIPELINE_RERUN => {
                let mut parts = value.splitn(6, ':');
                let repo = Repo::parse(parts.next()?)?;
                let mut number = || parts.next()?.parse::<u64>().ok();
                let (run_id, run_number, attempt, workflow_id) = (number()?, number()?, number()?, number()?);
                let branch = parts.next().filter(|b| !b.is_empty())?.to_owned();
                let attempt = u32::try_from(attempt).ok()?;
                Some(Button::Rerun(ListedRun { repo, run_id, run_number, attempt, workflow_id, branch }))
            }
            RESOLVE => incident(IncidentButton::Resolve),
            TAKE_COMMAND => incident(IncidentButton::TakeCommand),
            ALERT_DECLARE | ALERT_MUTE | ALERT_UNMUTE | ALERT_RERUN => {
                let id = AlertId(value.parse().ok()?);
                let button = match verb {
                    ALERT_DECLARE => AlertButton::Declare,
                    ALERT_MUTE => AlertButton::Mute,
                    ALERT_RERUN => AlertButton::Rerun,
                    _ => AlertButton::Unmute,
                };
                Some(Button::Alert(id, button))
            }
            HANDOFF_ACK => Some(Button::Handoff(HandoffId(value.parse().ok()?), HandoffButton::Acknowledge)),
            OVERRIDE_CANCEL => Some(Button::Override(OverrideId(value.parse().ok()?), OverrideButton::Cancel)),
            SWAP_ACCEPT => Some(Button::Swap(SwapId(value.parse().ok()?), SwapButton::Accept)),
            SWAP_DECLINE => Some(Button::Swap(SwapId(value.parse().ok()?), SwapButton::Decline)),
            HOME_DECLARE => Some(Button::Home(HomeButton::Declare)),
            HOME_START if !value.is_empty() => Some(Button::Home(HomeButton::Start(value.to_owned()))),
            STEP_DONE | STEP_SKIP | STEP_FLAG => {
                let mut parts = value.split(':');
                let number: u64 = parts.next()?.parse().ok()?;
                let code = parts.next()?;
                let phase = parts.next()?.parse().ok()?;
                let step = parts.next()?.parse().ok()?;
                if parts.next().is_some() {
                    return None;
                }
                let done = verb == STEP_DONE;
                let checklist = match code {
                    "pb" => IncidentChecklist::Playbook,
                    "pi" => IncidentChecklist::PostIncident,
                    "rn" if verb == STEP_FLAG => {
                        return Some(Button::Run(RunId(number), RunButton::Flag { phase, step }))
                    }
                    "rn" => return Some(Button::Run(RunId(number), RunButton::Step { phase, step, done })),
                    _ => return None,
                };
                // Incident steps have no flag: a note is a status update.
                (verb != STEP_FLAG).then_some(Button::Incident(
                    IncidentId(number),
                    IncidentButton::Step { checklist, phase, step, done },
                ))
            }
            _ => None,
        }
    }
}

/// A modal's identity as Slack carries it back on submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModalIds {
    pub callback_id: &'static str,
    pub private_metadata: String,
}

const RESOLVE_MODAL: &str = "incident.resolve";
const FLAG_MODAL: &str = "run.flag";
const DECLARE_MODAL: &str = "alert.declare";
const DEPLOY_MODAL: &str = "pipeline.deploy";
/// The App Home's declare form.
pub const HOME_DECLARE_MODAL: &str = "home.declare";
/// Block and action id of the optional "why" in the deploy modal, where a
/// refused confirmation is shown too.
pub const DEPLOY_REASON_FIELD: &str = "reason";
/// Block and action ids of the declare modal's fields.
pub const SEVERITY_FIELD: &str = "severity";
pub const TITLE_FIELD: &str = "title";
pub const DETAILS_FIELD: &str = "details";
/// Block and action id of the summary field in the resolve modal.
pub const SUMMARY_FIELD: &str = "summary";
/// Block and action id of the note field in the flag modal.
pub const NOTE_FIELD: &str = "note";

/// The resolve modal of an incident.
pub fn resolve_modal(id: IncidentId) -> ModalIds {
    ModalIds { callback_id: RESOLVE_MODAL, private_metadata: id.0.to_string() }
}

/// The flag modal of a run's step.
pub fn flag_modal(run: RunId, phase: usize, step: usize) -> ModalIds {
    ModalIds { callback_id: FLAG_MODAL, private_metadata: format!("{}:{phase}:{step}", run.0) }
}

/// The declare modal opened from an alert group.
pub fn declare_modal(alert: AlertId) -> ModalIds {
    ModalIds { callback_id: DECLARE_MODAL, private_metadata: alert.0.to_string() }
}

/// The confirmation modal of a deployment or rollback: the metadata is
/// `<action> <environment> <ref>`, none of which holds a space (an
/// environment is one word, a ref passes `is_git_ref`).
pub fn deploy_modal(action: Action, environment: &str, git_ref: &str) -> ModalIds {
    ModalIds { callback_id: DEPLOY_MODAL, private_metadata: format!("{} {environment} {git_ref}", action.as_str()) }
}

/// A modal submitted back to opsbot, with what was typed in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submission {
    Resolve {
        incident: IncidentId,
        summary: Option<String>,
    },
    Flag {
        run: RunId,
        phase: usize,
        step: usize,
        note: String,
    },
    /// Declare an incident from an alert group. The severity is as chosen
    /// (`None`: not one opsbot knows, refused under its field).
    Declare {
        alert: AlertId,
        severity: Option<Severity>,
        title: String,
        details: Option<String>,
    },
    /// Declare an incident from the App Home's form.
    HomeDeclare {
        severity: Option<Severity>,
        title: String,
    },
    /// Confirm a deployment or rollback. What the metadata says is checked
    /// again as if typed: it comes back from the client.
    Deploy {
        action: Action,
        environment: String,
        git_ref: String,
        reason: Option<String>,
    },
}

impl Submission {
    /// The field a refusal is shown under.
    pub fn field(&self) -> &'static str {
        match self {
            Submission::Resolve { .. } => SUMMARY_FIELD,
            Submission::Flag { .. } => NOTE_FIELD,
            Submission::Declare { severity: None, .. } => SEVERITY_FIELD,
            Submission::Declare { .. } => TITLE_FIELD,
            Submission::HomeDeclare { severity: None, .. } => SEVERITY_FIELD,
            Submission::HomeDeclare { .. } => TITLE_FIELD,
            Submission::Deploy { .. } => DEPLOY_REASON_FIELD,
        }
    }

    /// Reads a submission back. `field(id)` is the value typed in the input
    /// whose block and action id are `id`. `Ok(None)`: not one of opsbot's
    /// modals; `Err`: one of ours whose metadata does not parse.
    pub fn parse(
        callback_id: &str,
        private_metadata: &str,
        field: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Submission>, &'static str> {
        match callback_id {
            RESOLVE_MODAL => {
                let incident = private_metadata.parse().map_err(|()| "resolve modal without an incident")?;
                Ok(Some(Submission::Resolve { incident, summary: field(SUMMARY_FIELD) }))
            }
            FLAG_MODAL => {
                let mut parts = private_metadata.split(':').map(|p| p.parse::<u64>().ok());
                let (Some(Some(run)), Some(Some(phase)), Some(Some(step)), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err("flag modal without its step");
                };
                let note = field(NOTE_FIELD).unwrap_or_default();
                Ok(Some(Submission::Flag { run: RunId(run), phase: phase as usize, step: step as usize, note }))
            }
            DECLARE_MODAL => {
                let alert = private_metadata.parse().map(AlertId).map_err(|_| "declare modal without its alert")?;
                let severity = field(SEVERITY_FIELD).as_deref().and_then(Severity::parse);
                let title = field(TITLE_FIELD).unwrap_or_default().trim().to_owned();
                let details = field(DETAILS_FIELD).filter(|d| !d.trim().is_empty());
                Ok(Some(Submission::Declare { alert, severity, title, details }))
            }
            HOME_DECLARE_MODAL => {
                let severity = field(SEVERITY_FIELD).as_deref().and_then(Severity::parse);
                let title = field(TITLE_FIELD).unwrap_or_default().trim().to_owned();
                Ok(Some(Submission::HomeDeclare { severity, title }))
            }
            DEPLOY_MODAL => {
                let mut words = private_metadata.split(' ');
                let (Some(action), Some(environment), Some(git_ref), None) =
                    (words.next().and_then(Action::parse), words.next(), words.next(), words.next())
                else {
                    return Err("deploy modal without its action, environment and ref");
                };
                Ok(Some(Submission::Deploy {
                    action,
                    environment: environment.to_owned(),
                    git_ref: git_ref.to_owned(),
                    reason: field(DEPLOY_REASON_FIELD).filter(|r| !r.trim().is_empty()),
                }))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_round_trip_through_action_id_and_value() {
        let incident = IncidentId(5);
        let run = RunId(9);
        for button in [
            Button::Incident(incident, IncidentButton::Acknowledge),
            Button::Incident(incident, IncidentButton::Resolve),
            Button::Incident(incident, IncidentButton::TakeCommand),
            Button::Incident(
                incident,
                IncidentButton::Step { checklist: IncidentChecklist::PostIncident, phase: 2, step: 7, done: false },
            ),
            Button::Incident(
                incident,
                IncidentButton::Step { checklist: IncidentChecklist::Playbook, phase: 0, step: 0, done: true },
            ),
            Button::Run(run, RunButton::Flag { phase: 1, step: 2 }),
            Button::Run(run, RunButton::Step { phase: 0, step: 3, done: true }),
            Button::Rerun(ListedRun {
                repo: Repo::parse("octo-org/shop").unwrap(),
                run_id: 9_000_000_001,
                run_number: 12,
                attempt: 1,
                workflow_id: 161335,
                branch: "release/2026.11".into(),
            }),
        ] {
            assert_eq!(Button::parse(&button.action_id(), &button.value()), Some(button));
        }
    }

    #[test]
    fn the_encoding_is_the_one_posted_messages_already_carry() {
        let step = Button::Incident(
            IncidentId(5),
            IncidentButton::Step { checklist: IncidentChecklist::Playbook, phase: 0, step: 1, done: true },
        );
        assert_eq!((step.action_id().as_str(), step.value().as_str()), ("step.done:pb:0:1", "5:pb:0:1"));
        let flag = Button::Run(RunId(9), RunButton::Flag { phase: 1, step: 2 });
        assert_eq!((flag.action_id().as_str(), flag.value().as_str()), ("step.flag:rn:1:2", "9:rn:1:2"));
        assert_eq!(Button::Incident(IncidentId(5), IncidentButton::Acknowledge).action_id(), "incident.ack");
    }

    #[test]
    fn foreign_or_malformed_clicks_are_not_ours() {
        assert_eq!(Button::parse("step.done:pb:0:0", "5:pb:0"), None);
        assert_eq!(Button::parse("step.done:pb:0:0", "5:xx:0:0"), None);
        assert_eq!(Button::parse("step.done:pb:0:0", "5:pb:0:0:1"), None);
        assert_eq!(Button::parse("other", "5"), None);
        assert_eq!(Button::parse("incident.ack", "INC-x"), None);
        assert_eq!(Button::parse("step.flag:pb:0:0", "5:pb:0:0"), None, "incident steps have no flag");
        for bad in ["", "octo-org/shop:1:2:1:4", "octo-org/shop:1:2:1:4:", "shop:1:2:1:4:main", "o/r:x:2:1:4:main"] {
            assert_eq!(Button::parse("pipeline.rerun:1", bad), None, "{bad}");
        }
    }

    #[test]
    fn submissions_round_trip_and_refuse_bad_metadata() {
        let ids = resolve_modal(IncidentId(4));
        let summary = |f: &str| (f == SUMMARY_FIELD).then(|| "rolled back".to_owned());
        assert_eq!(
            Submission::parse(ids.callback_id, &ids.private_metadata, summary),
            Ok(Some(Submission::Resolve { incident: IncidentId(4), summary: Some("rolled back".into()) }))
        );
        let ids = flag_modal(RunId(2), 1, 3);
        let note = |f: &str| (f == NOTE_FIELD).then(|| "slow".to_owned());
        assert_eq!(
            Submission::parse(ids.callback_id, &ids.private_metadata, note),
            Ok(Some(Submission::Flag { run: RunId(2), phase: 1, step: 3, note: "slow".into() }))
        );
        assert!(Submission::parse(ids.callback_id, "2:1", |_| None).is_err());
        assert!(Submission::parse(RESOLVE_MODAL, "x", |_| None).is_err());
        let ids = deploy_modal(Action::Rollback, "production", "v1.4.1");
        assert_eq!(
            Submission::parse(ids.callback_id, &ids.private_metadata, |_| None),
            Ok(Some(Submission::Deploy {
                action: Action::Rollback,
                environment: "production".into(),
                git_ref: "v1.4.1".into(),
                reason: None
            }))
        );
        for bad in ["", "deploy", "deploy production", "launch production main", "deploy production main extra"] {
            assert!(Submission::parse(DEPLOY_MODAL, bad, |_| None).is_err(), "{bad}");
        }
        assert_eq!(Submission::parse("someone.else", "", |_| None), Ok(None));
    }
}
