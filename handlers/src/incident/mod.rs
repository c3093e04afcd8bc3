//! Incidents: the state machine (declared → acknowledged → resolved) in
//! this file; the `/incident` grammar, the decisions, the rendering and
//! the report in the modules below.
//!
//! Transitions return the timeline entry they produce, or say politely why
//! they cannot happen (resolving twice, acknowledging a resolved incident).

pub mod command;
pub mod decide;
pub mod render;
pub mod report;
pub mod stats;

use crate::checklist::{self, PhaseRun, StepRefusal};
use crate::severity::Severity;
pub use crate::subject::{IncidentChecklist, IncidentId, MessageRef, Posted, Stamp};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the incident is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Declared,
    Acknowledged,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Declared => "Declared",
            Status::Acknowledged => "Acknowledged",
            Status::Resolved => "Resolved",
        }
    }
}

/// One incident as it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub severity: Severity,
    pub title: String,
    pub status: Status,
    pub declared: Stamp,
    /// The channel the command was typed in, for follow-up notes to the declarer.
    pub declared_in: String,
    /// The Slack workspace's domain, for permalinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Stamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Stamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commander: Option<String>,
    /// The severity's playbook, copied from the runbook at declaration so a
    /// runbook edit never reshuffles a running incident's steps.
    #[serde(default)]
    pub playbook: Vec<PhaseRun>,
    /// The post-incident checklist, started on resolution.
    #[serde(default)]
    pub post_incident: Vec<PhaseRun>,
    /// How far escalation went: 0 is the first responder, paged at declaration.
    #[serde(default)]
    pub escalation_level: usize,
    /// When the next status-update nudge is due; a newer update moves it,
    /// and a nudge timer that no longer matches does nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_due: Option<DateTime<Utc>>,
    /// Bumped when the incident is re-timed (severity change); timers of
    /// an older generation do nothing.
    #[serde(default)]
    pub generation: u32,
    /// The alert it was declared from, with what fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Who will be paged next and when, while nobody has acknowledged:
    /// what `/incident show` tells, kept beside the timers that do it (a
    /// timer cannot be read back from the subject it is about).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_pages: Vec<NextPage>,
    /// Where its messages are in Slack; the store fills it in on load.
    #[serde(skip)]
    pub posted: Posted,
}

/// An incident declared from an alert group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub alert: crate::subject::AlertId,
    /// mrkdwn: what fired, with its links.
    pub details: String,
}

/// A page still to come: the role, by id, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextPage {
    pub at: DateTime<Utc>,
    pub role: String,
}

/// The declarer of an incident a runbook rule declared: not a Slack user
/// id (those start with `U` or `W`), so it can never be mistaken for one.
pub const BY_RULE: &str = "opsbot";

/// How a person in an incident's record is shown in Slack.
pub fn mention(user: &str) -> String {
    if user == BY_RULE {
        "opsbot (a runbook rule)".to_owned()
    } else {
        format!("<@{user}>")
    }
}

/// What an incident decision writes: the incident's new state, the
/// entries it adds to its timeline, and what that changes in the tally of
/// its declaration day (set by [`crate::event::decide`], which sees the
/// incident as it was loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentChange {
    pub incident: Incident,
    pub timeline: Vec<TimelineEntry>,
    pub tally: Option<stats::Tally>,
}

/// What happened, for the incident's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TimelineEvent {
    Declared {
        severity: Severity,
        title: String,
    },
    Acknowledged,
    Escalated {
        level: usize,
        role: String,
    },
    SeverityChanged {
        from: Severity,
        to: Severity,
    },
    StepSettled {
        checklist: IncidentChecklist,
        phase: usize,
        step: usize,
        done: bool,
        text: String,
    },
    Resolved {
        summary: Option<String>,
    },
    StatusUpdate {
        text: String,
    },
    CommanderAssigned {
        commander: String,
    },
    /// A role was paged beside the escalation matrix (the seed's P1 pages
    /// the on-call engineer after 30 minutes), or the first responder at
    /// the opening of business hours.
    Paged {
        role: String,
    },
    /// A deployment or rollback was asked for while the incident was open.
    Deployment {
        deployment: crate::subject::DeployId,
        text: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub user: String,
    #[serde(flatten)]
    pub event: TimelineEvent,
}

/// Why a transition was refused; rendered as a polite ephemeral answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("{id} was already acknowledged")]
    AlreadyAcknowledged { id: IncidentId, by: Stamp },
    #[error("{id} is already resolved")]
    AlreadyResolved { id: IncidentId, by: Stamp },
    #[error("{id} has no such step")]
    NoSuchStep { id: IncidentId },
    #[error("that step of {id} was already settled")]
    StepAlreadySettled { id: IncidentId, outcome: checklist::StepOutcome },
}

impl Incident {
    pub fn new(
        id: IncidentId,
        severity: Severity,
        title: String,
        declared: Stamp,
        declared_in: String,
        team_domain: Option<String>,
    ) -> Incident {
        Incident {
            id,
            severity,
            title,
            status: Status::Declared,
            declared,
            declared_in,
            team_domain,
            acknowledged: None,
            resolved: None,
            summary: None,
            commander: None,
            playbook: Vec::new(),
            post_incident: Vec::new(),
            escalation_level: 0,
            update_due: None,
            generation: 0,
            origin: None,
            next_pages: Vec::new(),
            posted: Posted::default(),
        }
    }

    pub fn checklist(&self, which: IncidentChecklist) -> &[PhaseRun] {
        match which {
            IncidentChecklist::Playbook => &self.playbook,
            IncidentChecklist::PostIncident => &self.post_incident,
        }
    }

    /// Where the alert is, once it is posted.
    pub fn alert(&self) -> Option<&MessageRef> {
        self.posted.anchor()
    }

    /// Marks a checklist step done or skipped. The first click settles it;
    /// a second (a double click, a Slack retry, a colleague) changes nothing.
    /// The post-incident checklist stays open after resolution, the
    /// playbook does not.
    pub fn settle_step(
        &mut self,
        kind: IncidentChecklist,
        phase: usize,
        step: usize,
        done: bool,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<TimelineEntry, TransitionError> {
        if kind == IncidentChecklist::Playbook {
            self.refuse_if_resolved()?;
        }
        let id = self.id;
        let list = match kind {
            IncidentChecklist::Playbook => &mut self.playbook,
            IncidentChecklist::PostIncident => &mut self.post_incident,
        };
        let text = checklist::settle(list, phase, step, done, user, now).map_err(|refusal| match refusal {
            StepRefusal::NoSuchStep => TransitionError::NoSuchStep { id },
            StepRefusal::AlreadySettled(outcome) => TransitionError::StepAlreadySettled { id, outcome },
        })?;
        Ok(entry(now, user, TimelineEvent::StepSettled { checklist: kind, phase, step, done, text }))
    }

    /// Raises escalation to `level` if it is not there yet.
    pub fn escalate(&mut self, level: usize, role: &str, now: DateTime<Utc>) -> Option<TimelineEntry> {
        if self.status != Status::Declared || level <= self.escalation_level {
            return None;
        }
        self.escalation_level = level;
        Some(entry(now, "opsbot", TimelineEvent::Escalated { level, role: role.to_owned() }))
    }

    pub fn is_open(&self) -> bool {
        self.status != Status::Resolved
    }

    /// How long it took to acknowledge, on the severity's clock: business
    /// time for a severity that escalates in business hours (its response
    /// target counts only those), real time otherwise.
    pub fn time_to_acknowledge(&self, runbook: &crate::runbook::Runbook) -> Option<chrono::TimeDelta> {
        let ack = self.acknowledged.as_ref()?;
        Some(runbook.clock(self.severity).between(self.declared.at, ack.at))
    }

    fn refuse_if_resolved(&self) -> Result<(), TransitionError> {
        match &self.resolved {
            Some(by) => Err(TransitionError::AlreadyResolved { id: self.id, by: by.clone() }),
            None => Ok(()),
        }
    }

    /// Someone is on it: stops the response clock.
    pub fn acknowledge(&mut self, user: &str, now: DateTime<Utc>) -> Result<TimelineEntry, TransitionError> {
        self.refuse_if_resolved()?;
        if let Some(by) = &self.acknowledged {
            return Err(TransitionError::AlreadyAcknowledged { id: self.id, by: by.clone() });
        }
        self.acknowledged = Some(Stamp { user: user.to_owned(), at: now });
        self.status = Status::Acknowledged;
        self.next_pages.clear();
        Ok(entry(now, user, TimelineEvent::Acknowledged))
    }

    /// Resolving an unacknowledged incident is allowed (it was fixed before
    /// anyone clicked Acknowledge); its time to acknowledge stays unknown.
    pub fn resolve(
        &mut self,
        user: &str,
        summary: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TimelineEntry, TransitionError> {
        self.refuse_if_resolved()?;
        self.resolved = Some(Stamp { user: user.to_owned(), at: now });
        self.summary.clone_from(&summary);
        self.status = Status::Resolved;
        self.next_pages.clear();
        Ok(entry(now, user, TimelineEvent::Resolved { summary }))
    }

    pub fn post_update(
        &mut self,
        user: &str,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<TimelineEntry, TransitionError> {
        self.refuse_if_resolved()?;
        Ok(entry(now, user, TimelineEvent::StatusUpdate { text }))
    }

    pub fn assign_commander(
        &mut self,
        user: &str,
        commander: String,
        now: DateTime<Utc>,
    ) -> Result<TimelineEntry, TransitionError> {
        self.refuse_if_resolved()?;
        self.commander = Some(commander.clone());
        Ok(entry(now, user, TimelineEvent::CommanderAssigned { commander }))
    }
}

fn entry(at: DateTime<Utc>, user: &str, event: TimelineEvent) -> TimelineEntry {
    TimelineEntry { at, user: user.to_owned(), event }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, min, 0).unwrap()
    }

    fn incident() -> Incident {
        Incident::new(
            IncidentId(7),
            Severity::P0,
            "API down".into(),
            Stamp { user: "U1".into(), at: at(0) },
            "C9".into(),
            None,
        )
    }

    #[test]
    fn declared_then_acknowledged_then_resolved() {
        let mut inc = incident();
        assert_eq!(inc.status, Status::Declared);
        inc.acknowledge("U2", at(3)).unwrap();
        assert_eq!(inc.status, Status::Acknowledged);
        assert_eq!(inc.acknowledged.as_ref().unwrap().user, "U2");
        let e = inc.resolve("U2", Some("rolled back".into()), at(40)).unwrap();
        assert_eq!(e.event, TimelineEvent::Resolved { summary: Some("rolled back".into()) });
        assert_eq!(inc.status, Status::Resolved);
        assert!(!inc.is_open());
    }

    #[test]
    fn resolving_twice_is_refused_and_changes_nothing() {
        let mut inc = incident();
        inc.resolve("U2", None, at(10)).unwrap();
        let before = inc.clone();
        let err = inc.resolve("U3", Some("again".into()), at(11)).unwrap_err();
        assert!(matches!(err, TransitionError::AlreadyResolved { ref by, .. } if by.user == "U2"));
        assert_eq!(inc, before);
    }

    #[test]
    fn ack_after_resolve_is_refused_politely() {
        let mut inc = incident();
        inc.resolve("U2", None, at(10)).unwrap();
        assert_eq!(inc.acknowledge("U3", at(11)).unwrap_err().to_string(), "INC-7 is already resolved");
    }

    #[test]
    fn acknowledging_twice_keeps_the_first_responder() {
        let mut inc = incident();
        inc.acknowledge("U2", at(1)).unwrap();
        assert!(inc.acknowledge("U3", at(2)).is_err());
        assert_eq!(inc.acknowledged.unwrap().user, "U2");
    }

    #[test]
    fn stored_form_round_trips_without_the_alert_location() {
        let mut inc = incident();
        inc.posted
            .messages
            .insert(crate::subject::ANCHOR_KEY.into(), MessageRef { channel: "C1".into(), ts: "1.2".into() });
        let json = serde_json::to_string(&inc).unwrap();
        let back: Incident = serde_json::from_str(&json).unwrap();
        assert_eq!(back.alert(), None);
        assert_eq!(back.title, "API down");
    }
}
