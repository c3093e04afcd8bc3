//! What opsbot's work is about: the subjects (an incident, a checklist run),
//! their ids, and the Slack messages each one owns.
//!
//! A subject owns an *anchor* (an incident's alert, a run's header) and the
//! messages in the anchor's thread. Each subject's messages are their own
//! type, so a run can never be asked for a playbook message: adding a kind
//! of subject adds a variant to [`Subject`] and [`Message`], and the compiler
//! lists every place that must learn it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An incident's number, shown as `INC-<n>`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub u64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INC-{}", self.0)
    }
}

impl FromStr for IncidentId {
    type Err = ();

    /// Accepts `INC-42`, `inc-42`, `#42` and `42`.
    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.trim();
        let digits = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("inc-"))
            .map(|_| &s[4..])
            .or_else(|| s.strip_prefix('#'))
            .unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        digits.parse().map(IncidentId).map_err(|_| ())
    }
}

/// A checklist run's number, shown as `RUN-<n>`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RUN-{}", self.0)
    }
}

/// An alert group's number, shown as `ALR-<n>`. A group is one episode of
/// one source (a workflow failing until it passes, an Alertmanager group
/// firing until it resolves); the next episode is a new group.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(pub u64);

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ALR-{}", self.0)
    }
}

/// A deployment's (or rollback's) number, shown as `DEP-<n>`: one
/// `/pipeline deploy` or `/pipeline rollback` someone confirmed, from the
/// dispatch of the runbook's workflow until its run ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeployId(pub u64);

impl fmt::Display for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DEP-{}", self.0)
    }
}

/// A handoff's number, shown as `HND-<n>`: one shift change of one
/// rotation, from the message that announces it until the incoming person
/// says they have it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HandoffId(pub u64);

impl fmt::Display for HandoffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HND-{}", self.0)
    }
}

/// An on-call override's number, shown as `OVR-<n>`: someone on call for
/// a role instead of the rotation's member, for a while.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OverrideId(pub u64);

impl fmt::Display for OverrideId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OVR-{}", self.0)
    }
}

/// An on-call swap's number, shown as `SWP-<n>`: one person's shift
/// offered for another's, waiting for the other person's answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SwapId(pub u64);

impl fmt::Display for SwapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SWP-{}", self.0)
    }
}

impl DeployId {
    /// The first `DEP-<n>` in `text` (a run's title, which the workflow's
    /// `run-name` fills with opsbot's id), as a word of its own: `DEP-3`
    /// in "Deploy DEP-3 to production", not in "XDEP-3" or "DEP-3a".
    pub fn find_in(text: &str) -> Option<DeployId> {
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(at) = text[from..].find("DEP-").map(|i| i + from) {
            from = at + 4;
            let before_ok = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
            let digits = text[from..].bytes().take_while(|b| b.is_ascii_digit()).count();
            let after_ok = bytes.get(from + digits).is_none_or(|b| !b.is_ascii_alphanumeric());
            if before_ok && digits > 0 && after_ok {
                if let Ok(n) = text[from..from + digits].parse() {
                    return Some(DeployId(n));
                }
            }
        }
        None
    }
}

/// What a thread, an effect or a stored state is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Incident(IncidentId),
    Run(RunId),
    Alert(AlertId),
    Deployment(DeployId),
    Handoff(HandoffId),
    Override(OverrideId),
    Swap(SwapId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Incident(id) => id.fmt(f),
            Subject::Run(id) => id.fmt(f),
            Subject::Alert(id) => id.fmt(f),
            Subject::Deployment(id) => id.fmt(f),
            Subject::Handoff(id) => id.fmt(f),
            Subject::Override(id) => id.fmt(f),
            Subject::Swap(id) => id.fmt(f),
        }
    }
}

/// Who did something, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub user: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A Slack message that later updates edit in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub channel: String,
    pub ts: String,
}

/// One Slack message of a checklist: a phase, or a slice of a long phase
/// (see [`crate::checklist::STEPS_PER_MESSAGE`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChecklistPart {
    pub phase: usize,
    pub part: usize,
}

/// An incident's two checklists.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentChecklist {
    /// The severity's playbook, posted at declaration.
    Playbook,
    /// The post-incident checklist, posted on resolution.
    PostIncident,
}

/// A message an incident owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum IncidentMessage {
    /// The alert in the severity's channel: the anchor.
    Alert,
    Checklist(IncidentChecklist, ChecklistPart),
}

/// A message a checklist run owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RunMessage {
    /// The header in the team channel: the anchor.
    Header,
    Steps(ChecklistPart),
}

/// A message an alert group owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AlertMessage {
    /// The group's message in its channel, edited as the group changes:
    /// the anchor.
    Group,
}

/// A message a deployment owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeploymentMessage {
    /// "🚀 Deploying …" in the environment's channel, edited as the run
    /// goes: the anchor.
    Announcement,
}

/// A message a handoff owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HandoffMessage {
    /// "🔄 On-call handoff …" in the team channel: the anchor.
    Announcement,
    /// The same, as a DM to whoever takes over: a message of its own, not
    /// a reply in the anchor's thread (see [`Message::is_direct`]).
    Direct,
}

/// A message an override owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OverrideMessage {
    /// "🔁 OVR-3 @carol is on call …" in the team channel, with its
    /// Cancel button: the anchor.
    Announcement,
}

/// A message a swap owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SwapMessage {
    /// The offer, in a DM to the person asked, with Accept and Decline:
    /// the anchor, whose "channel" is that person.
    Offer,
}

/// A message some subject owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    Incident(IncidentId, IncidentMessage),
    Run(RunId, RunMessage),
    Alert(AlertId, AlertMessage),
    Deployment(DeployId, DeploymentMessage),
    Handoff(HandoffId, HandoffMessage),
    Override(OverrideId, OverrideMessage),
    Swap(SwapId, SwapMessage),
}

impl Message {
    pub fn subject(&self) -> Subject {
        match self {
            Message::Incident(id, _) => Subject::Incident(*id),
            Message::Run(id, _) => Subject::Run(*id),
            Message::Alert(id, _) => Subject::Alert(*id),
            Message::Deployment(id, _) => Subject::Deployment(*id),
            Message::Handoff(id, _) => Subject::Handoff(*id),
            Message::Override(id, _) => Subject::Override(*id),
            Message::Swap(id, _) => Subject::Swap(*id),
        }
    }

    /// The subject's anchor message.
    pub fn anchor_of(subject: Subject) -> Message {
        match subject {
            Subject::Incident(id) => Message::Incident(id, IncidentMessage::Alert),
            Subject::Run(id) => Message::Run(id, RunMessage::Header),
            Subject::Alert(id) => Message::Alert(id, AlertMessage::Group),
            Subject::Deployment(id) => Message::Deployment(id, DeploymentMessage::Announcement),
            Subject::Handoff(id) => Message::Handoff(id, HandoffMessage::Announcement),
            Subject::Override(id) => Message::Override(id, OverrideMessage::Announcement),
            Subject::Swap(id) => Message::Swap(id, SwapMessage::Offer),
        }
    }

    pub fn is_anchor(&self) -> bool {
        matches!(
            self,
            Message::Incident(_, IncidentMessage::Alert)
                | Message::Run(_, RunMessage::Header)
                | Message::Alert(_, AlertMessage::Group)
                | Message::Deployment(_, DeploymentMessage::Announcement)
                | Message::Handoff(_, HandoffMessage::Announcement)
                | Message::Override(_, OverrideMessage::Announcement)
                | Message::Swap(_, SwapMessage::Offer)
        )
    }

    /// Whether the message is posted on its own rather than in the
    /// anchor's thread: a handoff's DM goes to the person it is for.
    pub fn is_direct(&self) -> bool {
        matches!(self, Message::Handoff(_, HandoffMessage::Direct))
    }

    /// The key its location is stored under, unique within its subject:
    /// `anchor`, or `<checklist>:<phase>:<part>` (`pb`, `pi`, `rn`).
    pub fn key(&self) -> String {
        let part = |code: &str, p: &ChecklistPart| format!("{code}:{}:{}", p.phase, p.part);
        match self {
            Message::Incident(_, IncidentMessage::Alert)
            | Message::Run(_, RunMessage::Header)
            | Message::Alert(_, AlertMessage::Group)
            | Message::Deployment(_, DeploymentMessage::Announcement)
            | Message::Handoff(_, HandoffMessage::Announcement)
            | Message::Override(_, OverrideMessage::Announcement)
            | Message::Swap(_, SwapMessage::Offer) => ANCHOR_KEY.to_owned(),
            Message::Handoff(_, HandoffMessage::Direct) => "dm".to_owned(),
            Message::Incident(_, IncidentMessage::Checklist(IncidentChecklist::Playbook, p)) => part("pb", p),
            Message::Incident(_, IncidentMessage::Checklist(IncidentChecklist::PostIncident, p)) => part("pi", p),
            Message::Run(_, RunMessage::Steps(p)) => part("rn", p),
        }
    }
}

/// [`Message::key`] of every anchor.
pub const ANCHOR_KEY: &str = "anchor";

/// Where a subject's messages are in Slack: filled in by the store on load
/// from what the delivery worker recorded, never part of the state a
/// decision writes (so a click and a delivery never conflict).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Posted {
    /// By [`Message::key`].
    pub messages: std::collections::BTreeMap<String, MessageRef>,
    /// The channel, as the runbook names it, the anchor was posted to; a
    /// severity change that routes elsewhere moves the alert.
    pub route: Option<String>,
    /// The anchor was rolled into its channel's storm digest instead of
    /// being posted on its own: `anchor` is the digest's message, and the
    /// subject's later messages are listed in the digest's thread.
    pub digested: bool,
}

impl Posted {
    pub fn anchor(&self) -> Option<&MessageRef> {
        self.messages.get(ANCHOR_KEY)
    }

    pub fn get(&self, message: &Message) -> Option<&MessageRef> {
        self.messages.get(&message.key())
    }
}

/// Whom a GitHub call (`Effect::Call`) is made for, who hears of a
/// refusal: a subject, or a person who pressed a button.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    Alert(AlertId),
    Deployment(DeployId),
    /// A person who asked to re-run a run from `/pipeline runs`; their
    /// request is stored by the run's id.
    Person {
        run_id: u64,
    },
}

impl Caller {
    /// The subject that made the call; `None` for a person.
    pub fn subject(self) -> Option<Subject> {
        match self {
            Caller::Alert(id) => Some(Subject::Alert(id)),
            Caller::Deployment(id) => Some(Subject::Deployment(id)),
            Caller::Person { .. } => None,
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject() {
            Some(subject) => subject.fmt(f),
            None => f.write_str("a person's re-run"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_forms_people_type() {
        for s in ["INC-42", "inc-42", "#42", "42", " 42 "] {
            assert_eq!(s.parse::<IncidentId>(), Ok(IncidentId(42)), "{s}");
        }
        for s in ["", "INC-", "INC-x", "-1", "4 2", "INC-99999999999999999999999"] {
            assert!(s.parse::<IncidentId>().is_err(), "{s}");
        }
        assert_eq!(IncidentId(42).to_string(), "INC-42");
        assert_eq!(Subject::Run(RunId(3)).to_string(), "RUN-3");
    }

    #[test]
    fn message_keys_are_unique_within_a_subject_and_stable() {
        let p = ChecklistPart { phase: 1, part: 2 };
        let id = IncidentId(1);
        assert_eq!(Message::Incident(id, IncidentMessage::Alert).key(), "anchor");
        assert_eq!(Message::Incident(id, IncidentMessage::Checklist(IncidentChecklist::Playbook, p)).key(), "pb:1:2");
        assert_eq!(
            Message::Incident(id, IncidentMessage::Checklist(IncidentChecklist::PostIncident, p)).key(),
            "pi:1:2"
        );
        assert_eq!(Message::Run(RunId(1), RunMessage::Steps(p)).key(), "rn:1:2");
        assert!(Message::anchor_of(Subject::Run(RunId(1))).is_anchor());
        assert!(Message::anchor_of(Subject::Deployment(DeployId(1))).is_anchor());
        let direct = Message::Handoff(HandoffId(1), HandoffMessage::Direct);
        assert_eq!(direct.key(), "dm");
        assert!(direct.is_direct() && !direct.is_anchor());
        assert!(!Message::anchor_of(Subject::Handoff(HandoffId(1))).is_direct());
    }

    #[test]
    fn a_deployment_id_is_found_in_a_run_title_as_a_word_of_its_own() {
        assert_eq!(DeployId::find_in("Deploy DEP-3 to production"), Some(DeployId(3)));
        assert_eq!(DeployId::find_in("DEP-12"), Some(DeployId(12)));
        assert_eq!(DeployId::find_in("Roll back (DEP-7)"), Some(DeployId(7)));
        for text in ["", "Deploy", "XDEP-3", "DEP-3a", "DEP-", "DEP-99999999999999999999999", "dep-3"] {
            assert_eq!(DeployId::find_in(text), None, "{text}");
        }
        assert_eq!(DeployId::find_in("XDEP-1 then DEP-2"), Some(DeployId(2)));
        assert_eq!(DeployId(3).to_string(), "DEP-3");
    }
}
