//! The stored JSON of effects (outbox entries) and timers, exactly as
//! earlier versions wrote it. The typed [`crate::Effect`] and
//! [`crate::Timer`] convert through these, so a rolling upgrade reads what
//! the previous version left in the outbox and the timer set, and the same
//! timer written by two versions is the same member of the timer set.
//!
//! A stored value that fits no subject (say, a checklist part of a run
//! inside an incident's effect) is refused when read: the outbox sends it to
//! the dead letters, the timer worker drops it with a log line.

use crate::decision;
use crate::decision::Caller;
use crate::subject::{
    AlertId, AlertMessage, ChecklistPart, DeployId, DeploymentMessage, HandoffId, HandoffMessage, IncidentChecklist,
    IncidentId, IncidentMessage, Message, OverrideId, OverrideMessage, RunId, RunMessage, SwapId, SwapMessage,
};
use crate::timer::{self, IncidentReminder, TimerKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    Playbook,
    PostIncident,
    Run,
}

#[derive(Serialize, Deserialize)]
pub struct Part {
    kind: PartKind,
    phase: usize,
    part: usize,
}

impl Part {
    fn new(kind: PartKind, p: ChecklistPart) -> Part {
        Part { kind, phase: p.phase, part: p.part }
    }

    fn of_incident(self) -> Result<IncidentMessage, String> {
        let p = ChecklistPart { phase: self.phase, part: self.part };
        match self.kind {
            PartKind::Playbook => Ok(IncidentMessage::Checklist(IncidentChecklist::Playbook, p)),
            PartKind::PostIncident => Ok(IncidentMessage::Checklist(IncidentChecklist::PostIncident, p)),
            PartKind::Run => Err("a run's checklist part on an incident".to_owned()),
        }
    }

    fn of_run(self) -> Result<RunMessage, String> {
        match self.kind {
            PartKind::Run => Ok(RunMessage::Steps(ChecklistPart { phase: self.phase, part: self.part })),
            _ => Err("an incident's checklist part on a run".to_owned()),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    PostAlert { incident: IncidentId },
    RefreshAlert { incident: IncidentId },
    MoveAlert { incident: IncidentId },
    PostChecklist { incident: IncidentId, part: Part },
    RefreshChecklist { incident: IncidentId, part: Part },
    PostInThread { incident: IncidentId, text: String },
    SendAlertLink { incident: IncidentId, channel: String, user: String },
    Ephemeral { channel: String, user: String, text: String },
    Post { channel: String, thread_ts: Option<String>, text: String },
    PostRunHeader { run: RunId },
    RefreshRunHeader { run: RunId },
    PostRunPart { run: RunId, part: Part },
    RefreshRunPart { run: RunId, part: Part },
    PostInRunThread { run: RunId, text: String },
    PostAlertGroup { alert: AlertId },
    RefreshAlertGroup { alert: AlertId },
    PostInAlertThread { alert: AlertId, text: String },
    AnswerLookup { lookup: crate::github::Lookup, to: decision::AnswerTo },
    CallGithub { call: crate::github::Call, alert: AlertId },
    PostDeployment { deployment: DeployId },
    RefreshDeployment { deployment: DeployId },
    PostInDeploymentThread { deployment: DeployId, text: String },
    CallGithubForDeployment { call: crate::github::Call, deployment: DeployId },
    PostHandoff { handoff: HandoffId },
    RefreshHandoff { handoff: HandoffId },
    PostHandoffDm { handoff: HandoffId },
    RefreshHandoffDm { handoff: HandoffId },
    PostInHandoffThread { handoff: HandoffId, text: String },
    PostOverride { cover: OverrideId },
    RefreshOverride { cover: OverrideId },
    PostInOverrideThread { cover: OverrideId, text: String },
    CallGithubForPerson { call: crate::github::Call, run_id: u64 },
    Answer { to: decision::AnswerTo, text: String },
    SyncUserGroup { group: String, users: Vec<String> },
    PostSwap { swap: SwapId },
    RefreshSwap { swap: SwapId },
    PostInSwapThread { swap: SwapId, text: String },
}

fn posted(message: Message, refresh: bool) -> Effect {
    let part = |c, p| match c {
        IncidentChecklist::Playbook => Part::new(PartKind::Playbook, p),
        IncidentChecklist::PostIncident => Part::new(PartKind::PostIncident, p),
    };
    match (message, refresh) {
        (Message::Incident(incident, IncidentMessage::Alert), false) => Effect::PostAlert { incident },
        (Message::Incident(incident, IncidentMessage::Alert), true) => Effect::RefreshAlert { incident },
        (Message::Incident(incident, IncidentMessage::Checklist(c, p)), false) => {
            Effect::PostChecklist { incident, part: part(c, p) }
        }
        (Message::Incident(incident, IncidentMessage::Checklist(c, p)), true) => {
            Effect::RefreshChecklist { incident, part: part(c, p) }
        }
        (Message::Run(run, RunMessage::Header), false) => Effect::PostRunHeader { run },
        (Message::Run(run, RunMessage::Header), true) => Effect::RefreshRunHeader { run },
        (Message::Run(run, RunMessage::Steps(p)), false) => {
            Effect::PostRunPart { run, part: Part::new(PartKind::Run, p) }
        }
        (Message::Run(run, RunMessage::Steps(p)), true) => {
            Effect::RefreshRunPart { run, part: Part::new(PartKind::Run, p) }
        }
        (Message::Alert(alert, AlertMessage::Group), false) => Effect::PostAlertGroup { alert },
        (Message::Alert(alert, AlertMessage::Group), true) => Effect::RefreshAlertGroup { alert },
        (Message::Deployment(deployment, DeploymentMessage::Announcement), false) => {
            Effect::PostDeployment { deployment }
        }
        (Message::Deployment(deployment, DeploymentMessage::Announcement), true) => {
            Effect::RefreshDeployment { deployment }
        }
        (Message::Handoff(handoff, HandoffMessage::Announcement), false) => Effect::PostHandoff { handoff },
        (Message::Handoff(handoff, HandoffMessage::Announcement), true) => Effect::RefreshHandoff { handoff },
        (Message::Handoff(handoff, HandoffMessage::Direct), false) => Effect::PostHandoffDm { handoff },
        (Message::Handoff(handoff, HandoffMessage::Direct), true) => Effect::RefreshHandoffDm { handoff },
        (Message::Override(cover, OverrideMessage::Announcement), false) => Effect::PostOverride { cover },
        (Message::Override(cover, OverrideMessage::Announcement), true) => Effect::RefreshOverride { cover },
        (Message::Swap(swap, SwapMessage::Offer), false) => Effect::PostSwap { swap },
        (Message::Swap(swap, SwapMessage::Offer), true) => Effect::RefreshSwap { swap },
    }
}

impl From<decision::Effect> for Effect {
    fn from(effect: decision::Effect) -> Effect {
        use crate::subject::Subject;
        match effect {
            decision::Effect::Post(message) => posted(message, false),
            decision::Effect::Refresh(message) => posted(message, true),
            decision::Effect::InThread { subject: Subject::Incident(incident), text } => {
                Effect::PostInThread { incident, text }
            }
            decision::Effect::InThread { subject: Subject::Run(run), text } => Effect::PostInRunThread { run, text },
            decision::Effect::InThread { subject: Subject::Alert(alert), text } => {
                Effect::PostInAlertThread { alert, text }
            }
            decision::Effect::InThread { subject: Subject::Deployment(deployment), text } => {
                Effect::PostInDeploymentThread { deployment, text }
            }
            decision::Effect::InThread { subject: Subject::Handoff(handoff), text } => {
                Effect::PostInHandoffThread { handoff, text }
            }
            decision::Effect::InThread { subject: Subject::Override(cover), text } => {
                Effect::PostInOverrideThread { cover, text }
            }
            decision::Effect::InThread { subject: Subject::Swap(swap), text } => {
                Effect::PostInSwapThread { swap, text }
            }
            decision::Effect::MoveAlert { incident } => Effect::MoveAlert { incident },
            decision::Effect::SendAlertLink { incident, channel, user } => {
                Effect::SendAlertLink { incident, channel, user }
            }
            decision::Effect::Ephemeral { channel, user, text } => Effect::Ephemeral { channel, user, text },
            decision::Effect::Say { channel, thread_ts, text } => Effect::Post { channel, thread_ts, text },
            decision::Effect::Lookup { lookup, to } => Effect::AnswerLookup { lookup, to },
            decision::Effect::Call { call, caller: Caller::Alert(alert) } => Effect::CallGithub { call, alert },
            decision::Effect::Call { call, caller: Caller::Deployment(deployment) } => {
                Effect::CallGithubForDeployment { call, deployment }
            }
            decision::Effect::Call { call, caller: Caller::Person { run_id } } => {
                Effect::CallGithubForPerson { call, run_id }
            }
            decision::Effect::Answer { to, text } => Effect::Answer { to, text },
            decision::Effect::SyncUserGroup { group, users } => Effect::SyncUserGroup { group, users },
        }
    }
}

impl TryFrom<Effect> for decision::Effect {
    type Error = String;

    fn try_from(wire: Effect) -> Result<decision::Effect, String> {
        use crate::subject::Subject;
        use decision::Effect as E;
        let incident = |id, m| Message::Incident(id, m);
        Ok(match wire {
            Effect::PostAlert { incident: id } => E::Post(incident(id, IncidentMessage::Alert)),
            Effect::RefreshAlert { incident: id } => E::Refresh(incident(id, IncidentMessage::Alert)),
            Effect::MoveAlert { incident } => E::MoveAlert { incident },
            Effect::PostChecklist { incident: id, part } => E::Post(incident(id, part.of_incident()?)),
            Effect::RefreshChecklist { incident: id, part } => E::Refresh(incident(id, part.of_incident()?)),
            Effect::PostInThread { incident, text } => E::InThread { subject: Subject::Incident(incident), text },
            Effect::SendAlertLink { incident, channel, user } => E::SendAlertLink { incident, channel, user },
            Effect::Ephemeral { channel, user, text } => E::Ephemeral { channel, user, text },
            Effect::Post { channel, thread_ts, text } => E::Say { channel, thread_ts, text },
            Effect::PostRunHeader { run } => E::Post(Message::Run(run, RunMessage::Header)),
            Effect::RefreshRunHeader { run } => E::Refresh(Message::Run(run, RunMessage::Header)),
            Effect::PostRunPart { run, part } => E::Post(Message::Run(run, part.of_run()?)),
            Effect::RefreshRunPart { run, part } => E::Refresh(Message::Run(run, part.of_run()?)),
            Effect::PostInRunThread { run, text } => E::InThread { subject: Subject::Run(run), text },
            Effect::PostAlertGroup { alert } => E::Post(Message::Alert(alert, AlertMessage::Group)),
            Effect::RefreshAlertGroup { alert } => E::Refresh(Message::Alert(alert, AlertMessage::Group)),
            Effect::PostInAlertThread { alert, text } => E::InThread { subject: Subject::Alert(alert), text },
            Effect::AnswerLookup { lookup, to } => E::Lookup { lookup, to },
            Effect::CallGithub { call, alert } => E::Call { call, caller: Caller::Alert(alert) },
            Effect::PostDeployment { deployment } => {
                E::Post(Message::Deployment(deployment, DeploymentMessage::Announcement))
            }
            Effect::RefreshDeployment { deployment } => {
                E::Refresh(Message::Deployment(deployment, DeploymentMessage::Announcement))
            }
            Effect::PostInDeploymentThread { deployment, text } => {
                E::InThread { subject: Subject::Deployment(deployment), text }
            }
            Effect::CallGithubForDeployment { call, deployment } => {
                E::Call { call, caller: Caller::Deployment(deployment) }
            }
            Effect::PostHandoff { handoff } => E::Post(Message::Handoff(handoff, HandoffMessage::Announcement)),
            Effect::RefreshHandoff { handoff } => E::Refresh(Message::Handoff(handoff, HandoffMessage::Announcement)),
            Effect::PostHandoffDm { handoff } => E::Post(Message::Handoff(handoff, HandoffMessage::Direct)),
            Effect::RefreshHandoffDm { handoff } => E::Refresh(Message::Handoff(handoff, HandoffMessage::Direct)),
            Effect::PostInHandoffThread { handoff, text } => E::InThread { subject: Subject::Handoff(handoff), text },
            Effect::PostOverride { cover } => E::Post(Message::Override(cover, OverrideMessage::Announcement)),
            Effect::RefreshOverride { cover } => E::Refresh(Message::Override(cover, OverrideMessage::Announcement)),
            Effect::PostInOverrideThread { cover, text } => E::InThread { subject: Subject::Override(cover), text },
            Effect::CallGithubForPerson { call, run_id } => E::Call { call, caller: Caller::Person { run_id } },
            Effect::Answer { to, text } => E::Answer { to, text },
            Effect::SyncUserGroup { group, users } => E::SyncUserGroup { group, users },
            Effect::PostSwap { swap } => E::Post(Message::Swap(swap, SwapMessage::Offer)),
            Effect::RefreshSwap { swap } => E::Refresh(Message::Swap(swap, SwapMessage::Offer)),
            Effect::PostInSwapThread { swap, text } => E::InThread { subject: Subject::Swap(swap), text },
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TimerSubject {
    Incident(IncidentId),
    Run(RunId),
    /// A scheduled checklist, by id (stored as `routine`, the old name).
    Routine(String),
    Alert(AlertId),
    /// A role's on-call rotation, by role id.
    Rotation(String),
    Deployment(DeployId),
    Handoff(HandoffId),
    Override(OverrideId),
    /// A person's re-run, by the run's id.
    Rerun(u64),
    Swap(SwapId),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
enum Reason {
    Escalate {
        level: usize,
    },
    ResolutionOverdue {
        round: u32,
    },
    UpdateDue,
    FirstPage,
    LatePage {
        role: String,
    },
    RunOverdue,
    ScheduledRun {
        slot: DateTime<Utc>,
    },
    Declare {
        severity: crate::Severity,
        title: String,
        details: String,
        announce: bool,
    },
    Declared {
        incident: IncidentId,
        severity: crate::Severity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    GithubRefused {
        call: crate::github::Call,
        why: String,
    },
    Handoff {
        shift: i64,
    },
    DeploymentNoted {
        deployment: DeployId,
        by: String,
        text: String,
    },
    Dispatched {
        run_id: u64,
        url: String,
    },
    Unacknowledged,
    OverrideEnds,
    SwapExpires,
    ShiftReminder {
        shift: i64,
    },
    DeploymentTimeout,
}

#[derive(Serialize, Deserialize)]
pub struct Timer {
    subject: TimerSubject,
    due: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "is_zero")]
    generation: u32,
    #[serde(flatten)]
    reason: Reason,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl From<timer::Timer> for Timer {
    fn from(t: timer::Timer) -> Timer {
        let (subject, generation, reason) = match t.kind {
            TimerKind::Incident { incident, generation, reminder } => (
                TimerSubject::Incident(incident),
                generation,
                match reminder {
                    IncidentReminder::Escalate { level } => Reason::Escalate { level },
                    IncidentReminder::ResolutionOverdue { round } => Reason::ResolutionOverdue { round },
                    IncidentReminder::UpdateDue => Reason::UpdateDue,
                    IncidentReminder::FirstPage => Reason::FirstPage,
                    IncidentReminder::LatePage { role } => Reason::LatePage { role },
                },
            ),
            TimerKind::RunOverdue { run } => (TimerSubject::Run(run), 0, Reason::RunOverdue),
            TimerKind::ScheduledRun { checklist, slot } => {
                (TimerSubject::Routine(checklist), 0, Reason::ScheduledRun { slot })
            }
            TimerKind::DeclareFromAlert { alert, declaration: d } => (
                TimerSubject::Alert(alert),
                0,
                Reason::Declare { severity: d.severity, title: d.title, details: d.details, announce: d.announce },
            ),
            TimerKind::AlertDeclared { alert, incident, severity, by } => {
                (TimerSubject::Alert(alert), 0, Reason::Declared { incident, severity, by })
            }
            TimerKind::GitHubRefused { caller, call, why } => {
                let subject = match caller {
                    Caller::Alert(alert) => TimerSubject::Alert(alert),
                    Caller::Deployment(deployment) => TimerSubject::Deployment(deployment),
                    Caller::Person { run_id } => TimerSubject::Rerun(run_id),
                };
                (subject, 0, Reason::GithubRefused { call, why })
            }
            TimerKind::DeploymentNoted { incident, deployment, by, text } => {
                (TimerSubject::Incident(incident), 0, Reason::DeploymentNoted { deployment, by, text })
            }
            TimerKind::DeploymentDispatched { deployment, run } => {
                (TimerSubject::Deployment(deployment), 0, Reason::Dispatched { run_id: run.run_id, url: run.url })
            }
            TimerKind::DeploymentTimeout { deployment } => {
                (TimerSubject::Deployment(deployment), 0, Reason::DeploymentTimeout)
            }
            TimerKind::Handoff { role, shift } => (TimerSubject::Rotation(role), 0, Reason::Handoff { shift }),
            TimerKind::HandoffUnacknowledged { handoff } => (TimerSubject::Handoff(handoff), 0, Reason::Unacknowledged),
            TimerKind::ShiftReminder { role, shift } => {
                (TimerSubject::Rotation(role), 0, Reason::ShiftReminder { shift })
            }
            TimerKind::OverrideEnds { cover } => (TimerSubject::Override(cover), 0, Reason::OverrideEnds),
            TimerKind::SwapExpires { swap } => (TimerSubject::Swap(swap), 0, Reason::SwapExpires),
        };
        Timer { subject, due: t.due, generation, reason }
    }
}

impl TryFrom<Timer> for timer::Timer {
    type Error = String;

    fn try_from(w: Timer) -> Result<timer::Timer, String> {
        let kind = match (w.subject, w.reason) {
            (TimerSubject::Incident(incident), Reason::DeploymentNoted { deployment, by, text }) => {
                TimerKind::DeploymentNoted { incident, deployment, by, text }
            }
            (TimerSubject::Incident(incident), reason) => {
                let reminder = match reason {
                    Reason::Escalate { level } => IncidentReminder::Escalate { level },
                    Reason::ResolutionOverdue { round } => IncidentReminder::ResolutionOverdue { round },
                    Reason::UpdateDue => IncidentReminder::UpdateDue,
                    Reason::FirstPage => IncidentReminder::FirstPage,
                    Reason::LatePage { role } => IncidentReminder::LatePage { role },
                    Reason::RunOverdue
                    | Reason::ScheduledRun { .. }
                    | Reason::Declare { .. }
                    | Reason::Declared { .. }
                    | Reason::GithubRefused { .. }
                    | Reason::Handoff { .. }
                    | Reason::DeploymentNoted { .. }
                    | Reason::Dispatched { .. }
                    | Reason::Unacknowledged
                    | Reason::OverrideEnds
                    | Reason::SwapExpires
                    | Reason::DeploymentTimeout
                    | Reason::ShiftReminder { .. } => {
                        return Err("a timer of another subject on an incident".to_owned())
                    }
                };
                TimerKind::Incident { incident, generation: w.generation, reminder }
            }
            (TimerSubject::Run(run), Reason::RunOverdue) => TimerKind::RunOverdue { run },
            (TimerSubject::Routine(checklist), Reason::ScheduledRun { slot }) => {
                TimerKind::ScheduledRun { checklist, slot }
            }
            (TimerSubject::Alert(alert), Reason::Declare { severity, title, details, announce }) => {
                TimerKind::DeclareFromAlert {
                    alert,
                    declaration: timer::Declaration { severity, title, details, announce },
                }
            }
            (TimerSubject::Alert(alert), Reason::Declared { incident, severity, by }) => {
                TimerKind::AlertDeclared { alert, incident, severity, by }
            }
            (TimerSubject::Alert(alert), Reason::GithubRefused { call, why }) => {
                TimerKind::GitHubRefused { caller: Caller::Alert(alert), call, why }
            }
            (TimerSubject::Deployment(deployment), Reason::GithubRefused { call, why }) => {
                TimerKind::GitHubRefused { caller: Caller::Deployment(deployment), call, why }
            }
            (TimerSubject::Rerun(run_id), Reason::GithubRefused { call, why }) => {
                TimerKind::GitHubRefused { caller: Caller::Person { run_id }, call, why }
            }
            (TimerSubject::Deployment(deployment), Reason::Dispatched { run_id, url }) => {
                TimerKind::DeploymentDispatched { deployment, run: crate::github::DispatchedRun { run_id, url } }
            }
            (TimerSubject::Deployment(deployment), Reason::DeploymentTimeout) => {
                TimerKind::DeploymentTimeout { deployment }
            }
            (TimerSubject::Rotation(role), Reason::Handoff { shift }) => TimerKind::Handoff { role, shift },
            (TimerSubject::Rotation(role), Reason::ShiftReminder { shift }) => TimerKind::ShiftReminder { role, shift },
            (TimerSubject::Handoff(handoff), Reason::Unacknowledged) => TimerKind::HandoffUnacknowledged { handoff },
            (TimerSubject::Override(cover), Reason::OverrideEnds) => TimerKind::OverrideEnds { cover },
            (TimerSubject::Swap(swap), Reason::SwapExpires) => TimerKind::SwapExpires { swap },
            (_, _) => return Err("a timer that fits no subject".to_owned()),
        };
        Ok(timer::Timer { due: w.due, kind })
    }
}

/// The typed effect is stored as its wire form.
impl Serialize for decision::Effect {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Effect::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for decision::Effect {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Effect::deserialize(deserializer)?.try_into().map_err(serde::de::Error::custom)
    }
}

/// The typed timer is stored as its wire form.
impl Serialize for timer::Timer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Timer::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for timer::Timer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Timer::deserialize(deserializer)?.try_into().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use crate::decision::Effect;
    use crate::subject::{
        ChecklistPart, IncidentChecklist, IncidentId, IncidentMessage, Message, RunId, RunMessage, Subject,
    };
    use crate::timer::{IncidentReminder, Timer};
    use chrono::{DateTime, TimeZone, Utc};

    fn at(h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, h, min, 0).unwrap()
    }

    fn part(phase: usize, part: usize) -> ChecklistPart {
        ChecklistPart { phase, part }
    }

    /// `stored` reads as `typed`, and `typed` writes exactly `stored`.
    fn assert_same<T>(stored: &str, typed: T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        assert_eq!(serde_json::from_str::<T>(stored).unwrap(), typed, "{stored}");
        assert_eq!(serde_json::to_string(&typed).unwrap(), stored);
    }

    #[test]
    fn timers_read_and_write_the_json_the_previous_version_stored() {
        let incident = |generation, reminder| Timer::incident(IncidentId(1), generation, at(9, 5), reminder);
        assert_same(
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","timer":"escalate","level":1}"#,
            incident(0, IncidentReminder::Escalate { level: 1 }),
        );
        assert_same(
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","generation":2,"timer":"escalate","level":3}"#,
            incident(2, IncidentReminder::Escalate { level: 3 }),
        );
        assert_same(
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","generation":2,"timer":"resolution_overdue","round":4}"#,
            incident(2, IncidentReminder::ResolutionOverdue { round: 4 }),
        );
        assert_same(
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","timer":"update_due"}"#,
            incident(0, IncidentReminder::UpdateDue),
        );
        assert_same(
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","timer":"first_page"}"#,
            incident(0, IncidentReminder::FirstPage),
        );
        assert_same(
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","generation":1,"timer":"late_page","role":"on-call-engineer"}"#,
            incident(1, IncidentReminder::LatePage { role: "on-call-engineer".into() }),
        );
        assert_same(
            r#"{"subject":{"routine":"morning-health-check"},"due":"2026-11-27T08:00:00Z","timer":"scheduled_run","slot":"2026-11-27T08:00:00Z"}"#,
            Timer::slot("morning-health-check", at(8, 0)),
        );
        assert_same(
            r#"{"subject":{"run":3},"due":"2026-11-27T09:05:00Z","timer":"run_overdue"}"#,
            Timer::run_overdue(RunId(3), at(9, 5)),
        );
    }

    #[test]
    fn effects_read_and_write_the_json_the_previous_version_stored() {
        let inc = |m| Message::Incident(IncidentId(1), m);
        let run = |m| Message::Run(RunId(2), m);
        let playbook = |p| IncidentMessage::Checklist(IncidentChecklist::Playbook, p);
        let post_incident = |p| IncidentMessage::Checklist(IncidentChecklist::PostIncident, p);
        for (stored, typed) in [
            (r#"{"kind":"post_alert","incident":1}"#, Effect::Post(inc(IncidentMessage::Alert))),
            (r#"{"kind":"refresh_alert","incident":1}"#, Effect::Refresh(inc(IncidentMessage::Alert))),
            (r#"{"kind":"move_alert","incident":1}"#, Effect::MoveAlert { incident: IncidentId(1) }),
            (
                r#"{"kind":"post_checklist","incident":1,"part":{"kind":"playbook","phase":0,"part":0}}"#,
                Effect::Post(inc(playbook(part(0, 0)))),
            ),
            (
                r#"{"kind":"refresh_checklist","incident":1,"part":{"kind":"post_incident","phase":2,"part":1}}"#,
                Effect::Refresh(inc(post_incident(part(2, 1)))),
            ),
            (
                r#"{"kind":"post_in_thread","incident":1,"text":"x"}"#,
                Effect::InThread { subject: Subject::Incident(IncidentId(1)), text: "x".into() },
            ),
            (
                r#"{"kind":"send_alert_link","incident":1,"channel":"C1","user":"U1"}"#,
                Effect::SendAlertLink { incident: IncidentId(1), channel: "C1".into(), user: "U1".into() },
            ),
            (
                r#"{"kind":"ephemeral","channel":"C1","user":"U1","text":"x"}"#,
                Effect::Ephemeral { channel: "C1".into(), user: "U1".into(), text: "x".into() },
            ),
            (
                r#"{"kind":"post","channel":"C1","thread_ts":"1.2","text":"hi"}"#,
                Effect::Say { channel: "C1".into(), thread_ts: Some("1.2".into()), text: "hi".into() },
            ),
            (
                r#"{"kind":"post","channel":"C1","thread_ts":null,"text":"hi"}"#,
                Effect::Say { channel: "C1".into(), thread_ts: None, text: "hi".into() },
            ),
            (
                r#"{"kind":"answer_lookup","lookup":{"kind":"runs","repo":"octo-org/shop","branch":"main"},"to":{"channel":"C1","user":"U1","response_url":"https://hooks.slack.com/commands/T1/2/3"}}"#,
                Effect::Lookup {
                    lookup: crate::github::Lookup::Runs {
                        repo: crate::github::Repo::parse("octo-org/shop").unwrap(),
                        workflow: None,
                        branch: Some("main".into()),
                    },
                    to: crate::decision::AnswerTo {
                        channel: "C1".into(),
                        user: "U1".into(),
                        response_url: Some("https://hooks.slack.com/commands/T1/2/3".into()),
                    },
                },
            ),
            (r#"{"kind":"post_run_header","run":2}"#, Effect::Post(run(RunMessage::Header))),
            (r#"{"kind":"refresh_run_header","run":2}"#, Effect::Refresh(run(RunMessage::Header))),
            (
                r#"{"kind":"post_run_part","run":2,"part":{"kind":"run","phase":1,"part":0}}"#,
                Effect::Post(run(RunMessage::Steps(part(1, 0)))),
            ),
            (
                r#"{"kind":"refresh_run_part","run":2,"part":{"kind":"run","phase":0,"part":3}}"#,
                Effect::Refresh(run(RunMessage::Steps(part(0, 3)))),
            ),
            (
                r#"{"kind":"post_in_run_thread","run":2,"text":"x"}"#,
                Effect::InThread { subject: Subject::Run(RunId(2)), text: "x".into() },
            ),
        ] {
            assert_same(stored, typed);
        }
    }

    #[test]
    fn alert_effects_and_timers_have_a_stored_form_of_their_own() {
        use crate::subject::{AlertId, AlertMessage};
        use crate::timer::{Declaration, TimerKind};
        let group = Message::Alert(AlertId(4), AlertMessage::Group);
        assert_same(r#"{"kind":"post_alert_group","alert":4}"#, Effect::Post(group));
        assert_same(r#"{"kind":"refresh_alert_group","alert":4}"#, Effect::Refresh(group));
        assert_same(
            r#"{"kind":"post_in_alert_thread","alert":4,"text":"x"}"#,
            Effect::InThread { subject: Subject::Alert(AlertId(4)), text: "x".into() },
        );
        let declaration = Declaration {
            severity: crate::Severity::P1,
            title: "Deploy failed".into(),
            details: "d".into(),
            announce: false,
        };
        assert_same(
            r#"{"subject":{"alert":4},"due":"2026-11-27T09:05:00Z","timer":"declare","severity":"P1","title":"Deploy failed","details":"d","announce":false}"#,
            Timer { due: at(9, 5), kind: TimerKind::DeclareFromAlert { alert: AlertId(4), declaration } },
        );
        assert_same(
            r#"{"subject":{"alert":4},"due":"2026-11-27T09:05:00Z","timer":"declared","incident":9,"severity":"P1"}"#,
            Timer {
                due: at(9, 5),
                kind: TimerKind::AlertDeclared {
                    alert: AlertId(4),
                    incident: IncidentId(9),
                    severity: crate::Severity::P1,
                    by: None,
                },
            },
        );
    }

    #[test]
    fn deployment_effects_and_timers_have_a_stored_form_of_their_own() {
        use crate::decision::Caller;
        use crate::github::{Call, Repo};
        use crate::subject::{AlertId, DeployId, DeploymentMessage};
        use crate::timer::TimerKind;
        let announcement = Message::Deployment(DeployId(3), DeploymentMessage::Announcement);
        assert_same(r#"{"kind":"post_deployment","deployment":3}"#, Effect::Post(announcement));
        assert_same(r#"{"kind":"refresh_deployment","deployment":3}"#, Effect::Refresh(announcement));
        assert_same(
            r#"{"kind":"post_in_deployment_thread","deployment":3,"text":"x"}"#,
            Effect::InThread { subject: Subject::Deployment(DeployId(3)), text: "x".into() },
        );
        let dispatch = Call::Dispatch {
            repo: Repo::parse("octo-org/shop").unwrap(),
            workflow: "deploy.yml".into(),
            git_ref: None,
            inputs: vec![("ref".into(), "v1.4.2".into())],
            once: None,
        };
        assert_same(
            r#"{"kind":"call_github_for_deployment","call":{"kind":"dispatch","repo":"octo-org/shop","workflow":"deploy.yml","inputs":[["ref","v1.4.2"]]},"deployment":3}"#,
            Effect::Call { call: dispatch.clone(), caller: Caller::Deployment(DeployId(3)) },
        );
        // A re-run's call is stored as before the caller was typed.
        let rerun = Call::RerunFailedJobs { repo: Repo::parse("octo-org/shop").unwrap(), run_id: 9 };
        assert_same(
            r#"{"kind":"call_github","call":{"kind":"rerun_failed_jobs","repo":"octo-org/shop","run_id":9},"alert":4}"#,
            Effect::Call { call: rerun.clone(), caller: Caller::Alert(AlertId(4)) },
        );
        assert_same(
            r#"{"subject":{"alert":4},"due":"2026-11-27T09:05:00Z","timer":"github_refused","call":{"kind":"rerun_failed_jobs","repo":"octo-org/shop","run_id":9},"why":"no"}"#,
            Timer {
                due: at(9, 5),
                kind: TimerKind::GitHubRefused {
                    caller: Caller::Alert(AlertId(4)),
                    call: rerun.clone(),
                    why: "no".into(),
                },
            },
        );
        assert_same(
            r#"{"subject":{"deployment":3},"due":"2026-11-27T09:05:00Z","timer":"github_refused","call":{"kind":"dispatch","repo":"octo-org/shop","workflow":"deploy.yml","inputs":[["ref","v1.4.2"]]},"why":"no"}"#,
            Timer {
                due: at(9, 5),
                kind: TimerKind::GitHubRefused {
                    caller: Caller::Deployment(DeployId(3)),
                    call: dispatch,
                    why: "no".into(),
                },
            },
        );
        assert_same(
            r#"{"kind":"call_github_for_person","call":{"kind":"rerun_failed_jobs","repo":"octo-org/shop","run_id":9},"run_id":9}"#,
            Effect::Call { call: rerun.clone(), caller: Caller::Person { run_id: 9 } },
        );
        assert_same(
            r#"{"subject":{"rerun":9},"due":"2026-11-27T09:05:00Z","timer":"github_refused","call":{"kind":"rerun_failed_jobs","repo":"octo-org/shop","run_id":9},"why":"no"}"#,
            Timer {
                due: at(9, 5),
                kind: TimerKind::GitHubRefused {
                    caller: Caller::Person { run_id: 9 },
                    call: rerun.clone(),
                    why: "no".into(),
                },
            },
        );
        assert_same(
            r#"{"kind":"answer","to":{"channel":"C1","user":"U1","response_url":"https://hooks.slack.com/actions/T1/2/3"},"text":"x"}"#,
            Effect::Answer {
                to: crate::decision::AnswerTo {
                    channel: "C1".into(),
                    user: "U1".into(),
                    response_url: Some("https://hooks.slack.com/actions/T1/2/3".into()),
                },
                text: "x".into(),
            },
        );
        assert_same(
            r#"{"subject":{"deployment":3},"due":"2026-11-27T09:05:00Z","timer":"dispatched","run_id":99,"url":"u"}"#,
            Timer {
                due: at(9, 5),
                kind: TimerKind::DeploymentDispatched {
                    deployment: DeployId(3),
                    run: crate::github::DispatchedRun { run_id: 99, url: "u".into() },
                },
            },
        );
        assert_same(
            r#"{"subject":{"deployment":3},"due":"2026-11-27T09:05:00Z","timer":"deployment_timeout"}"#,
            Timer { due: at(9, 5), kind: TimerKind::DeploymentTimeout { deployment: DeployId(3) } },
        );
        assert_same(
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","timer":"deployment_noted","deployment":3,"by":"U1","text":"x"}"#,
            Timer {
                due: at(9, 5),
                kind: TimerKind::DeploymentNoted {
                    incident: IncidentId(1),
                    deployment: DeployId(3),
                    by: "U1".into(),
                    text: "x".into(),
                },
            },
        );
    }

    #[test]
    fn handoff_effects_and_timers_have_a_stored_form_of_their_own() {
        use crate::subject::{HandoffId, HandoffMessage};
        use crate::timer::TimerKind;
        let id = HandoffId(5);
        assert_same(
            r#"{"kind":"post_handoff","handoff":5}"#,
            Effect::Post(Message::Handoff(id, HandoffMessage::Announcement)),
        );
        assert_same(
            r#"{"kind":"refresh_handoff","handoff":5}"#,
            Effect::Refresh(Message::Handoff(id, HandoffMessage::Announcement)),
        );
        assert_same(
            r#"{"kind":"post_handoff_dm","handoff":5}"#,
            Effect::Post(Message::Handoff(id, HandoffMessage::Direct)),
        );
        assert_same(
            r#"{"kind":"refresh_handoff_dm","handoff":5}"#,
            Effect::Refresh(Message::Handoff(id, HandoffMessage::Direct)),
        );
        assert_same(
            r#"{"kind":"post_in_handoff_thread","handoff":5,"text":"x"}"#,
            Effect::InThread { subject: Subject::Handoff(id), text: "x".into() },
        );
        assert_same(
            r#"{"subject":{"handoff":5},"due":"2026-11-27T09:05:00Z","timer":"unacknowledged"}"#,
            Timer { due: at(9, 5), kind: TimerKind::HandoffUnacknowledged { handoff: id } },
        );
        assert_same(
            r#"{"subject":{"rotation":"on-call"},"due":"2026-11-27T09:05:00Z","timer":"shift_reminder","shift":4}"#,
            Timer { due: at(9, 5), kind: TimerKind::ShiftReminder { role: "on-call".into(), shift: 4 } },
        );
        let cover = crate::subject::OverrideId(2);
        let announcement = Message::Override(cover, crate::subject::OverrideMessage::Announcement);
        assert_same(r#"{"kind":"post_override","cover":2}"#, Effect::Post(announcement));
        assert_same(r#"{"kind":"refresh_override","cover":2}"#, Effect::Refresh(announcement));
        assert_same(
            r#"{"kind":"post_in_override_thread","cover":2,"text":"x"}"#,
            Effect::InThread { subject: Subject::Override(cover), text: "x".into() },
        );
        assert_same(
            r#"{"subject":{"override":2},"due":"2026-11-27T09:05:00Z","timer":"override_ends"}"#,
            Timer { due: at(9, 5), kind: TimerKind::OverrideEnds { cover } },
        );
        let swap = crate::subject::SwapId(5);
        let offer = Message::Swap(swap, crate::subject::SwapMessage::Offer);
        assert_same(r#"{"kind":"post_swap","swap":5}"#, Effect::Post(offer));
        assert_same(r#"{"kind":"refresh_swap","swap":5}"#, Effect::Refresh(offer));
        assert_same(
            r#"{"kind":"post_in_swap_thread","swap":5,"text":"x"}"#,
            Effect::InThread { subject: Subject::Swap(swap), text: "x".into() },
        );
        assert_same(
            r#"{"subject":{"swap":5},"due":"2026-11-27T09:05:00Z","timer":"swap_expires"}"#,
            Timer { due: at(9, 5), kind: TimerKind::SwapExpires { swap } },
        );
        assert_same(
            r#"{"kind":"sync_user_group","group":"S0ONCALL","users":["U0BOB"]}"#,
            Effect::SyncUserGroup { group: "S0ONCALL".into(), users: vec!["U0BOB".into()] },
        );
        // The handoff's own timer is stored as before.
        assert_same(
            r#"{"subject":{"rotation":"on-call"},"due":"2026-11-27T09:05:00Z","timer":"handoff","shift":4}"#,
            Timer { due: at(9, 5), kind: TimerKind::Handoff { role: "on-call".into(), shift: 4 } },
        );
    }

    #[test]
    fn stored_values_that_fit_no_subject_are_refused() {
        for effect in [
            r#"{"kind":"post_checklist","incident":1,"part":{"kind":"run","phase":0,"part":0}}"#,
            r#"{"kind":"refresh_checklist","incident":1,"part":{"kind":"run","phase":0,"part":0}}"#,
            r#"{"kind":"post_run_part","run":2,"part":{"kind":"playbook","phase":0,"part":0}}"#,
            r#"{"kind":"refresh_run_part","run":2,"part":{"kind":"post_incident","phase":0,"part":0}}"#,
        ] {
            assert!(serde_json::from_str::<Effect>(effect).is_err(), "{effect}");
        }
        for timer in [
            r#"{"subject":{"run":3},"due":"2026-11-27T09:05:00Z","timer":"escalate","level":1}"#,
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","timer":"run_overdue"}"#,
            r#"{"subject":{"routine":"x"},"due":"2026-11-27T09:05:00Z","timer":"update_due"}"#,
            r#"{"subject":{"incident":1},"due":"2026-11-27T09:05:00Z","timer":"scheduled_run","slot":"2026-11-27T09:05:00Z"}"#,
            r#"{"subject":{"rotation":"x"},"due":"2026-11-27T09:05:00Z","timer":"unacknowledged"}"#,
            r#"{"subject":{"handoff":1},"due":"2026-11-27T09:05:00Z","timer":"handoff","shift":1}"#,
        ] {
            assert!(serde_json::from_str::<Timer>(timer).is_err(), "{timer}");
        }
    }
}
