//! The vocabulary every feature speaks: who asked ([`Invocation`]), what a
//! handler decided ([`Decision`]), what is owed to Slack ([`Effect`]) and
//! what the person sees ([`Reply`], [`Modal`], [`FieldError`]).
//!
//! This module names no feature: a decision is generic over the state it
//! changes, so an incident's decision cannot write a run, and the features
//! depend on this module, never the other way round.

use crate::github::{Call, Lookup};
use crate::subject::{IncidentId, Message, Subject};
use crate::timer::Timer;

/// Who invoked a command or clicked a button, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub user: String,
    /// The channel it came from; empty for a modal submission, which has none.
    pub channel: String,
    pub team_domain: Option<String>,
    /// Slack's `response_url` for a slash command: where a later answer
    /// goes (a secret of sorts, never logged).
    pub response_url: Option<String>,
    /// The Slack user groups, of those the runbook's permissions name,
    /// that Slack says the user is in: the shell asks before deciding, so
    /// the core can tell who may without I/O.
    pub groups: Vec<String>,
}

/// Whom a later answer is for, and how to reach them: the command's
/// `response_url` when Slack gave one, else an ephemeral in the channel.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnswerTo {
    pub channel: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

/// The `response_url` is a credential for 30 minutes: never printed.
impl std::fmt::Debug for AnswerTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerTo")
            .field("channel", &self.channel)
            .field("user", &self.user)
            .field("response_url", &self.response_url.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The answer shown only to the person who typed the command.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    pub blocks: Option<serde_json::Value>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply { text: text.into(), blocks: None }
    }
}

/// What was wrong with what the person typed, said in one line; the usage
/// text is appended when it is shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
    pub usage: &'static str,
}

impl UsageError {
    /// The answer: what was wrong, then how it is written.
    pub fn reply(&self) -> Reply {
        Reply::text(format!("{}\n\n{}", self.message, self.usage))
    }
}

/// A modal to open at once with the click's `trigger_id` (it expires in
/// 3 s, so a modal is never deferred to the outbox).
#[derive(Clone, Debug, PartialEq)]
pub struct Modal {
    pub view: serde_json::Value,
    /// What to tell the clicker when Slack will not open it, with the
    /// command that does the same.
    pub fallback: String,
}

/// A modal submission that was refused: the text shown under `field`, and
/// the modal stays open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub text: String,
}

/// Something to deliver to Slack. Stored in the outbox in the same commit
/// as the state change, delivered by the outbox worker.
///
/// Effects name the message rather than carry rendered blocks: the worker
/// renders the subject as it is when it delivers, so a late or retried
/// update never shows stale state. Stored as the `wire` module describes,
/// which implements its serde.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Post one of a subject's messages: the anchor in its channel, the
    /// others in the anchor's thread. Skipped when it was posted already.
    Post(Message),
    /// Edit a posted message to show its subject's current state.
    Refresh(Message),
    /// A text in the subject's thread.
    InThread { subject: Subject, text: String },
    /// The severity now routes to another channel: post the alert there,
    /// and point the old alert at the new one.
    MoveAlert { incident: IncidentId },
    /// Once the alert is up, tell the declarer where it is.
    SendAlertLink { incident: IncidentId, channel: String, user: String },
    /// A note only `user` sees.
    Ephemeral { channel: String, user: String, text: String },
    /// A plain message in a channel, e.g. an answer to a mention in its thread.
    Say { channel: String, thread_ts: Option<String>, text: String },
    /// Ask GitHub, then answer the person with what it said (or why it
    /// could not).
    Lookup { lookup: Lookup, to: AnswerTo },
    /// Make `users` the members of Slack user group `group`: a rotation's
    /// group kept in step with whoever is on call.
    SyncUserGroup { group: String, users: Vec<String> },
    /// Ask GitHub to do something for a subject (an alert group's re-run,
    /// a deployment's dispatch) or a person; a refusal comes back to it as
    /// a timer.
    Call { call: Call, caller: Caller },
    /// A later answer to a click or a command, through its `response_url`
    /// (replacing what it answers), else an ephemeral note.
    Answer { to: AnswerTo, text: String },
}

// Named with the subjects (the timer that reports a refusal names it too).
pub use crate::subject::Caller;

impl Effect {
    /// The subject this effect concerns, for lanes and logs.
    pub fn subject(&self) -> Option<Subject> {
        match self {
            Effect::Post(message) | Effect::Refresh(message) => Some(message.subject()),
            Effect::InThread { subject, .. } => Some(*subject),
            Effect::Call { caller, .. } => caller.subject(),
            Effect::MoveAlert { incident } | Effect::SendAlertLink { incident, .. } => {
                Some(Subject::Incident(*incident))
            }
            Effect::Ephemeral { .. }
            | Effect::Say { .. }
            | Effect::Lookup { .. }
            | Effect::Answer { .. }
            | Effect::SyncUserGroup { .. } => None,
        }
    }

    /// Effects in one lane are delivered in order; lanes run concurrently.
    pub fn lane(&self) -> String {
        match (self, self.subject()) {
            (_, Some(Subject::Incident(id))) => format!("incident:{}", id.0),
            (_, Some(Subject::Run(id))) => format!("run:{}", id.0),
            (_, Some(Subject::Alert(id))) => format!("alert:{}", id.0),
            (_, Some(Subject::Deployment(id))) => format!("deployment:{}", id.0),
            (_, Some(Subject::Handoff(id))) => format!("handoff:{}", id.0),
            (_, Some(Subject::Override(id))) => format!("override:{}", id.0),
            (_, Some(Subject::Swap(id))) => format!("swap:{}", id.0),
            (Effect::Ephemeral { channel, .. } | Effect::Say { channel, .. }, None) => format!("channel:{channel}"),
            // One person's questions are answered in the order asked.
            (Effect::Lookup { to, .. }, None) => format!("lookup:{}", to.user),
            // A group's updates in the order decided: the last one stands.
            (Effect::SyncUserGroup { group, .. }, None) => format!("usergroup:{group}"),
            _ => "misc".to_owned(),
        }
    }

    /// A courtesy note that may be dropped if Slack refuses it for good
    /// (say, the bot is not in the channel the command came from).
    pub fn is_best_effort(&self) -> bool {
        matches!(self, Effect::SendAlertLink { .. } | Effect::Ephemeral { .. })
    }
}

/// A handler's verdict: the answer, and the change to commit atomically.
/// `S` is the state the deciding feature owns (an incident and its
/// timeline, a run); the router lifts it into the closed set of changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision<S> {
    pub reply: Reply,
    /// The new state; `None` when nothing stored changes.
    pub change: Option<S>,
    pub effects: Vec<Effect>,
    /// Timers to set, committed with the state.
    pub timers: Vec<Timer>,
    pub modal: Option<Modal>,
    /// A modal submission refused; nothing else is in the decision.
    pub invalid: Option<FieldError>,
    /// Worth a line in opsbot's log, though nobody is answered (a
    /// scheduled slot skipped because opsbot was down).
    pub log: Option<String>,
}

impl<S> Decision<S> {
    /// A decision that only answers.
    pub fn reply(text: impl Into<String>) -> Decision<S> {
        Decision::answer(Reply::text(text))
    }

    pub fn answer(reply: Reply) -> Decision<S> {
        Decision { reply, change: None, effects: Vec::new(), timers: Vec::new(), modal: None, invalid: None, log: None }
    }

    /// A decision that does nothing at all (a stale timer, a lost click).
    pub fn nothing() -> Decision<S> {
        Decision::reply("")
    }

    /// A refused modal submission: the modal stays open showing why.
    pub fn invalid(field: &'static str, text: impl Into<String>) -> Decision<S> {
        let text = text.into();
        let mut d = Decision::reply(text.clone());
        d.invalid = Some(FieldError { field, text });
        d
    }

    pub fn changes_state(&self) -> bool {
        self.change.is_some()
    }

    /// The same decision about a wider set of states.
    pub fn map<T>(self, lift: impl FnOnce(S) -> T) -> Decision<T> {
        Decision {
            reply: self.reply,
            change: self.change.map(lift),
            effects: self.effects,
            timers: self.timers,
            modal: self.modal,
            invalid: self.invalid,
            log: self.log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::IncidentMessage;

    #[test]
    fn effects_of_one_subject_share_a_lane() {
        let a = Effect::Post(Message::Incident(IncidentId(3), IncidentMessage::Alert));
        let b = Effect::InThread { subject: Subject::Incident(IncidentId(3)), text: "x".into() };
        assert_eq!(a.lane(), b.lane());
        assert_ne!(a.lane(), Effect::MoveAlert { incident: IncidentId(4) }.lane());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Effect>(&json).unwrap(), a);
    }
}
