//! What the outbox worker asks of a subject when it delivers a message:
//! the subject's current state rendered, where its messages already are,
//! and the channel its anchor goes to. Delivery renders at send time, so a
//! retried update never shows stale state.

use crate::alert::{render as alert_render, AlertGroup};
use crate::blocks::SlackMessage;
use crate::deploy::{render as deploy_render, Deployment};
use crate::incident::{render as incident_render, Incident};
use crate::oncall::handoff::Handoff;
use crate::oncall::overrides::Override;
use crate::oncall::swap::Swap;
use crate::pipeline::checks::Fetched;
use crate::run::{render as run_render, Run};
use crate::runbook::pipeline::Figure;
use crate::runbook::Runbook;
use crate::subject::{Message, MessageRef, Posted, RunMessage, Subject};
use chrono::{DateTime, Utc};

/// A subject as stored, with where its messages are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Incident(Incident),
    Run(Run),
    Alert(AlertGroup),
    Deployment(Deployment),
    Handoff(Handoff),
    Override(Override),
    Swap(Swap),
}

impl State {
    pub fn subject(&self) -> Subject {
        match self {
            State::Incident(inc) => Subject::Incident(inc.id),
            State::Run(run) => Subject::Run(run.id),
            State::Alert(group) => Subject::Alert(group.id),
            State::Deployment(d) => Subject::Deployment(d.id),
            State::Handoff(h) => Subject::Handoff(h.id),
            State::Override(o) => Subject::Override(o.id),
            State::Swap(s) => Subject::Swap(s.id),
        }
    }

    /// The incident, when the subject is one.
    pub fn incident(&self) -> Option<&Incident> {
        match self {
            State::Incident(inc) => Some(inc),
            State::Run(_)
            | State::Alert(_)
            | State::Deployment(_)
            | State::Handoff(_)
            | State::Override(_)
            | State::Swap(_) => None,
        }
    }

    pub fn posted(&self) -> &Posted {
        match self {
            State::Incident(inc) => &inc.posted,
            State::Run(run) => &run.posted,
            State::Alert(group) => &group.posted,
            State::Deployment(d) => &d.posted,
            State::Handoff(h) => &h.posted,
            State::Override(o) => &o.posted,
            State::Swap(s) => &s.posted,
        }
    }

    /// The channel, as the runbook names it, where the anchor belongs now
    /// (a swap's offer: the person asked, whose DM it is).
    pub fn route<'a>(&'a self, runbook: &'a Runbook) -> &'a str {
        match self {
            State::Incident(inc) => runbook.channel_for(inc.severity),
            State::Run(run) => &run.channel,
            State::Alert(group) => &group.channel,
            State::Deployment(d) => &d.channel,
            State::Handoff(h) => &h.channel,
            State::Override(o) => &o.channel,
            State::Swap(s) => &s.invitee,
        }
    }

    /// Where a message posted on its own ([`Message::is_direct`]) goes: a
    /// handoff's DM, to the person taking over (a user id, which Slack
    /// reads as the app's DM with them).
    pub fn direct_to(&self, message: &Message) -> Option<&str> {
        match (self, message) {
            (State::Handoff(h), Message::Handoff(id, crate::subject::HandoffMessage::Direct)) if *id == h.id => {
                Some(&h.incoming)
            }
            _ => None,
        }
    }

    /// `message` as the subject is now; `None` when the message is not
    /// this subject's.
    pub fn render(&self, message: &Message, runbook: &Runbook, now: DateTime<Utc>) -> Option<SlackMessage> {
        self.render_checked(message, runbook, now, None)
    }

    /// The live checks `message` shows beside its steps: the shell fetches
    /// their figures ([`sources`](crate::pipeline::checks::sources)) before it renders the message.
    pub fn checks(&self, message: &Message) -> Vec<Figure> {
        match (self, message) {
            (State::Run(run), Message::Run(id, RunMessage::Steps(part))) if *id == run.id => run.checks(*part),
            _ => Vec::new(),
        }
    }

    /// [`State::render`], with the figures fetched for the message's checks.
    pub fn render_checked(
        &self,
        message: &Message,
        runbook: &Runbook,
        now: DateTime<Utc>,
        checks: Option<&Fetched>,
    ) -> Option<SlackMessage> {
        match (self, message) {
            (State::Incident(inc), Message::Incident(id, which)) if *id == inc.id => {
                Some(incident_render::message(inc, *which, runbook))
            }
            (State::Run(run), Message::Run(id, which)) if *id == run.id => {
                Some(run_render::message(run, *which, runbook, now, checks))
            }
            (State::Alert(group), Message::Alert(id, _)) if *id == group.id => {
                Some(alert_render::message(group, runbook, now))
            }
            (State::Deployment(d), Message::Deployment(id, _)) if *id == d.id => {
                Some(deploy_render::message(d, runbook))
            }
            (State::Handoff(h), Message::Handoff(id, which)) if *id == h.id => {
                Some(crate::oncall::render::message(h, *which))
            }
            (State::Override(o), Message::Override(id, _)) if *id == o.id => Some(crate::oncall::overrides::message(o)),
            (State::Swap(s), Message::Swap(id, _)) if *id == s.id => Some(crate::oncall::swap::message(s)),
            _ => None,
        }
    }
}

/// The note that tells the declarer where the alert is.
pub fn alert_link(inc: &Incident, alert: &MessageRef) -> String {
    let link = match &inc.team_domain {
        Some(domain) => format!("<{}|open the alert>", crate::text::permalink(domain, &alert.channel, &alert.ts)),
        None => format!("see <#{}>", alert.channel),
    };
    format!("🚨 *{}* is up in <#{}>: {link}", inc.id, alert.channel)
}

/// The first note in a moved alert's new thread, pointing back.
pub fn moved_here(inc: &Incident, old: &MessageRef) -> String {
    let back = match &inc.team_domain {
        Some(domain) => format!("<{}|earlier thread>", crate::text::permalink(domain, &old.channel, &old.ts)),
        None => format!("<#{}>", old.channel),
    };
    format!("↪️ *{}* moved here from <#{}> ({back}).", inc.id, old.channel)
}
