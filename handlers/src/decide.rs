//! Handlers: a parsed command, the state it needs and `now` in; a
//! [`Decision`] out. The shell loads what [`state_needed`] asks for, calls
//! [`decide`], commits the decision atomically and answers Slack.

use crate::command::{IncidentCommand, INCIDENT_USAGE};
use crate::incident::{Incident, IncidentId, Stamp, TimelineEntry, TimelineEvent, TransitionError};
use crate::policy::IncidentPolicy;
use crate::render;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who invoked a command or clicked a button, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub user: String,
    pub channel: String,
    pub team_domain: Option<String>,
}

/// What the shell must load before calling [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateNeeded {
    Nothing,
    NewIncidentId,
    Incident(IncidentId),
    IncidentWithTimeline(IncidentId),
    OpenIncidents,
}

/// What the shell loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Nothing,
    NewIncidentId(IncidentId),
    Incident(Option<Incident>),
    IncidentWithTimeline(Option<(Incident, Vec<TimelineEntry>)>),
    OpenIncidents(Vec<Incident>),
}

/// Something to deliver to Slack. Stored in the outbox in the same
/// transaction as the state change, delivered by the outbox worker.
///
/// Alert effects name the incident rather than carrying rendered blocks: the
/// worker renders the incident as it is when it delivers, so a late or
/// retried update never shows stale state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Post the incident's alert in its severity's channel.
    PostAlert { incident: IncidentId },
    /// Edit the alert in place to show the incident's current state.
    RefreshAlert { incident: IncidentId },
    /// A message in the alert's thread.
    PostInThread { incident: IncidentId, text: String },
    /// Once the alert is up, tell the declarer where it is.
    SendAlertLink {
        incident: IncidentId,
        channel: String,
        user: String,
    },
    /// A note only `user` sees.
    Ephemeral {
        channel: String,
        user: String,
        text: String,
    },
    /// A plain message, e.g. an answer to a mention in its thread.
    Post {
        channel: String,
        thread_ts: Option<String>,
        text: String,
    },
}

impl Effect {
    /// Effects in one lane are delivered in order; lanes run concurrently.
    pub fn lane(&self) -> String {
        match self {
            Effect::PostAlert { incident }
            | Effect::RefreshAlert { incident }
            | Effect::PostInThread { incident, .. }
            | Effect::SendAlertLink { incident, .. } => format!("incident:{}", incident.0),
            Effect::Ephemeral { channel, .. } | Effect::Post { channel, .. } => {
                format!("channel:{channel}")
            }
        }
    }

    /// The incident this effect concerns, for logs.
    pub fn incident(&self) -> Option<IncidentId> {
        match self {
            Effect::PostAlert { incident }
            | Effect::RefreshAlert { incident }
            | Effect::PostInThread { incident, .. }
            | Effect::SendAlertLink { incident, .. } => Some(*incident),
            Effect::Ephemeral { .. } | Effect::Post { .. } => None,
        }
    }

    /// A courtesy note that may be dropped if Slack refuses it for good
    /// (say, the bot is not in the channel the command came from).
    pub fn is_best_effort(&self) -> bool {
        matches!(
            self,
            Effect::SendAlertLink { .. } | Effect::Ephemeral { .. }
        )
    }
}

/// The answer shown only to the user who typed the command.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    pub blocks: Option<serde_json::Value>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            blocks: None,
        }
    }
}

/// A handler's verdict: the reply, and the change to commit atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub reply: Reply,
    /// The incident's new state; `None` when nothing about it changes.
    pub incident: Option<Incident>,
    pub timeline: Vec<TimelineEntry>,
    pub effects: Vec<Effect>,
}

impl Decision {
    fn reply_only(reply: Reply) -> Decision {
        Decision {
            reply,
            incident: None,
            timeline: Vec::new(),
            effects: Vec::new(),
        }
    }

    fn changed(
        reply: Reply,
        incident: Incident,
        entry: TimelineEntry,
        effects: Vec<Effect>,
    ) -> Decision {
        Decision {
            reply,
            incident: Some(incident),
            timeline: vec![entry],
            effects,
        }
    }

    pub fn changes_state(&self) -> bool {
        self.incident.is_some()
    }
}

pub fn state_needed(cmd: &IncidentCommand) -> StateNeeded {
    match cmd {
        IncidentCommand::Help => StateNeeded::Nothing,
        IncidentCommand::Declare { .. } => StateNeeded::NewIncidentId,
        IncidentCommand::List => StateNeeded::OpenIncidents,
        IncidentCommand::Show(id) => StateNeeded::IncidentWithTimeline(*id),
        IncidentCommand::Ack(id)
        | IncidentCommand::Resolve { id, .. }
        | IncidentCommand::Update { id, .. }
        | IncidentCommand::Commander { id, .. }
        | IncidentCommand::ChangeSeverity { id, .. } => StateNeeded::Incident(*id),
    }
}

/// Decides what a `/incident` command does.
pub fn decide(
    cmd: &IncidentCommand,
    loaded: Loaded,
    who: &Invocation,
    policy: &IncidentPolicy,
    now: DateTime<Utc>,
) -> Decision {
    match (cmd, loaded) {
        (IncidentCommand::Help, _) => Decision::reply_only(Reply::text(INCIDENT_USAGE)),
        (IncidentCommand::Declare { severity, title }, Loaded::NewIncidentId(id)) => {
            let incident = Incident::new(
                id,
                *severity,
                title.clone(),
                Stamp { user: who.user.clone(), at: now },
                who.channel.clone(),
                who.team_domain.clone(),
            );
            let entry = TimelineEntry {
                at: now,
                user: who.user.clone(),
                event: TimelineEvent::Declared { severity: *severity, title: title.clone() },
            };
            let channel = policy.channel_for(*severity);
            let reply = Reply::text(format!(
                "🚨 *{id}* declared ({severity}). Posting the alert to {channel}; I'll send you the link as soon as it is up."
            ));
            let effects = vec![
                Effect::PostAlert { incident: id },
                Effect::SendAlertLink { incident: id, channel: who.channel.clone(), user: who.user.clone() },
            ];
            Decision::changed(reply, incident, entry, effects)
        }
        (IncidentCommand::List, Loaded::OpenIncidents(open)) => {
            Decision::reply_only(render::incident_list(&open, now))
        }
        (IncidentCommand::Show(id), Loaded::IncidentWithTimeline(found)) => match found {
            Some((incident, timeline)) => Decision::reply_only(render::incident_details(&incident, &timeline, policy, now)),
            None => unknown(*id),
        },
        (IncidentCommand::Ack(id), Loaded::Incident(found)) => transition(*id, found, |inc| {
            let entry = inc.acknowledge(&who.user, now)?;
            let reply = Reply::text(format!("👀 You acknowledged *{}*; the response clock is stopped.", inc.id));
            Ok((reply, entry, vec![Effect::RefreshAlert { incident: inc.id }]))
        }),
        (IncidentCommand::Resolve { id, summary }, Loaded::Incident(found)) => transition(*id, found, |inc| {
            let entry = inc.resolve(&who.user, summary.clone(), now)?;
            let reply = Reply::text(format!("✅ *{}* resolved.", inc.id));
            let note = match summary {
                Some(s) => format!("✅ Resolved by <@{}>: {}", who.user, crate::text::escape(s)),
                None => format!("✅ Resolved by <@{}>.", who.user),
            };
            Ok((
                reply,
                entry,
                vec![
                    Effect::RefreshAlert { incident: inc.id },
                    Effect::PostInThread { incident: inc.id, text: note },
                ],
            ))
        }),
        (IncidentCommand::Update { id, text }, Loaded::Incident(found)) => transition(*id, found, |inc| {
            let entry = inc.post_update(&who.user, text.clone(), now)?;
            let note = format!("📣 *Status update* from <@{}>: {}", who.user, crate::text::escape(text));
            Ok((
                Reply::text(format!("📣 Update posted in *{}*'s thread.", inc.id)),
                entry,
                vec![Effect::PostInThread { incident: inc.id, text: note }],
            ))
        }),
        (IncidentCommand::Commander { id, user }, Loaded::Incident(found)) => transition(*id, found, |inc| {
            let entry = inc.assign_commander(&who.user, user.clone(), now)?;
            let note = format!("🎖️ <@{user}> is now the incident commander (assigned by <@{}>).", who.user);
            Ok((
                Reply::text(format!("🎖️ <@{user}> commands *{}*.", inc.id)),
                entry,
                vec![
                    Effect::RefreshAlert { incident: inc.id },
                    Effect::PostInThread { incident: inc.id, text: note },
                ],
            ))
        }),
        (IncidentCommand::ChangeSeverity { .. }, Loaded::Incident(_)) => Decision::reply_only(Reply::text(
            "Changing an incident's severity is not built yet: it needs re-routing and re-timing (the incident-response work). Declare a new incident at the right level and resolve this one with a pointer to it.",
        )),
        // The shell loads what `state_needed` asks for; anything else is a
        // bug in the shell, answered without changing anything.
        (_, _) => Decision::reply_only(Reply::text("Something went wrong on opsbot's side; nothing was changed.")),
    }
}

/// What a button on the alert does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertButton {
    Acknowledge,
    Resolve,
}

impl AlertButton {
    pub const ACK_ACTION_ID: &'static str = "incident.ack";
    pub const RESOLVE_ACTION_ID: &'static str = "incident.resolve";

    pub fn from_action_id(action_id: &str) -> Option<AlertButton> {
        match action_id {
            Self::ACK_ACTION_ID => Some(AlertButton::Acknowledge),
            Self::RESOLVE_ACTION_ID => Some(AlertButton::Resolve),
            _ => None,
        }
    }
}

/// A click on an alert's button. The HTTP answer to a click is not shown to
/// anyone, so refusals become an ephemeral note to the clicker.
pub fn decide_button(
    button: AlertButton,
    id: IncidentId,
    incident: Option<Incident>,
    who: &Invocation,
    policy: &IncidentPolicy,
    now: DateTime<Utc>,
) -> Decision {
    let cmd = match button {
        AlertButton::Acknowledge => IncidentCommand::Ack(id),
        AlertButton::Resolve => IncidentCommand::Resolve { id, summary: None },
    };
    let mut decision = decide(&cmd, Loaded::Incident(incident), who, policy, now);
    if !decision.changes_state() {
        decision.effects.push(Effect::Ephemeral {
            channel: who.channel.clone(),
            user: who.user.clone(),
            text: decision.reply.text.clone(),
        });
    }
    decision
}

/// An `@opsbot …` mention: `help`, or `status` (the open incidents).
pub fn decide_mention(
    text: &str,
    open: &[Incident],
    channel: &str,
    ts: &str,
    now: DateTime<Utc>,
) -> Decision {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !(w.starts_with("<@") && w.ends_with('>')))
        .collect();
    let answer = match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("status") | Some("incidents") => render::incident_list(open, now).text,
        _ => render::mention_help(),
    };
    let mut decision = Decision::reply_only(Reply::text(""));
    decision.effects.push(Effect::Post {
        channel: channel.to_owned(),
        thread_ts: Some(ts.to_owned()),
        text: answer,
    });
    decision
}

fn unknown(id: IncidentId) -> Decision {
    Decision::reply_only(Reply::text(format!(
        "There is no incident *{id}*. `/incident list` shows the open ones."
    )))
}

type Transition = Result<(Reply, TimelineEntry, Vec<Effect>), TransitionError>;

fn transition(
    id: IncidentId,
    found: Option<Incident>,
    apply: impl FnOnce(&mut Incident) -> Transition,
) -> Decision {
    let Some(mut incident) = found else {
        return unknown(id);
    };
    match apply(&mut incident) {
        Ok((reply, entry, effects)) => Decision::changed(reply, incident, entry, effects),
        Err(refused) => Decision::reply_only(Reply::text(render::refusal(&refused))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::severity::Severity;
    use crate::Status;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
    }

    fn alice() -> Invocation {
        Invocation {
            user: "U0ALICE".into(),
            channel: "C0GENERAL".into(),
            team_domain: Some("acme".into()),
        }
    }

    fn declared(severity: Severity) -> Incident {
        let cmd = IncidentCommand::Declare {
            severity,
            title: "API down".into(),
        };
        decide(
            &cmd,
            Loaded::NewIncidentId(IncidentId(1)),
            &alice(),
            &IncidentPolicy::default(),
            now(),
        )
        .incident
        .unwrap()
    }

    #[test]
    fn declare_posts_the_alert_and_links_it_to_the_declarer() {
        let cmd = IncidentCommand::Declare {
            severity: Severity::P0,
            title: "API down".into(),
        };
        let d = decide(
            &cmd,
            Loaded::NewIncidentId(IncidentId(42)),
            &alice(),
            &IncidentPolicy::default(),
            now(),
        );
        let inc = d.incident.unwrap();
        assert_eq!(
            (inc.id, inc.status, inc.declared.user.as_str()),
            (IncidentId(42), Status::Declared, "U0ALICE")
        );
        assert!(d.reply.text.contains("INC-42"));
        assert!(d.reply.text.contains("#devops-alerts"));
        assert_eq!(
            d.effects[0],
            Effect::PostAlert {
                incident: IncidentId(42)
            }
        );
        assert!(
            matches!(d.effects[1], Effect::SendAlertLink { ref user, .. } if user == "U0ALICE")
        );
        assert!(matches!(
            d.timeline[0].event,
            TimelineEvent::Declared {
                severity: Severity::P0,
                ..
            }
        ));
    }

    #[test]
    fn p2_declare_is_announced_in_devops() {
        let cmd = IncidentCommand::Declare {
            severity: Severity::P2,
            title: "Slow builds".into(),
        };
        let d = decide(
            &cmd,
            Loaded::NewIncidentId(IncidentId(1)),
            &alice(),
            &IncidentPolicy::default(),
            now(),
        );
        assert!(d.reply.text.contains("#devops;"), "{}", d.reply.text);
    }

    #[test]
    fn ack_refreshes_the_alert() {
        let d = decide(
            &IncidentCommand::Ack(IncidentId(1)),
            Loaded::Incident(Some(declared(Severity::P0))),
            &alice(),
            &IncidentPolicy::default(),
            now(),
        );
        assert_eq!(d.incident.unwrap().status, Status::Acknowledged);
        assert_eq!(
            d.effects,
            vec![Effect::RefreshAlert {
                incident: IncidentId(1)
            }]
        );
    }

    #[test]
    fn resolving_a_resolved_incident_changes_nothing() {
        let mut inc = declared(Severity::P1);
        inc.resolve("U0BOB", None, now()).unwrap();
        let cmd = IncidentCommand::Resolve {
            id: IncidentId(1),
            summary: None,
        };
        let d = decide(
            &cmd,
            Loaded::Incident(Some(inc)),
            &alice(),
            &IncidentPolicy::default(),
            now(),
        );
        assert!(!d.changes_state());
        assert!(d.effects.is_empty());
        assert!(
            d.reply.text.contains("already resolved"),
            "{}",
            d.reply.text
        );
        assert!(d.reply.text.contains("<@U0BOB>"), "{}", d.reply.text);
    }

    #[test]
    fn unknown_id_is_answered_and_changes_nothing() {
        let d = decide(
            &IncidentCommand::Ack(IncidentId(999)),
            Loaded::Incident(None),
            &alice(),
            &IncidentPolicy::default(),
            now(),
        );
        assert!(!d.changes_state());
        assert!(d.reply.text.contains("no incident *INC-999*"));
    }

    #[test]
    fn refused_button_click_tells_the_clicker_privately() {
        let mut inc = declared(Severity::P0);
        inc.resolve("U0BOB", None, now()).unwrap();
        let d = decide_button(
            AlertButton::Acknowledge,
            IncidentId(1),
            Some(inc),
            &alice(),
            &IncidentPolicy::default(),
            now(),
        );
        assert!(!d.changes_state());
        assert!(
            matches!(&d.effects[..], [Effect::Ephemeral { user, text, .. }] if user == "U0ALICE" && text.contains("already resolved"))
        );
    }

    #[test]
    fn mention_answers_in_the_thread() {
        let d = decide_mention(
            "<@U0OPSBOT> status",
            &[declared(Severity::P0)],
            "C1",
            "1.2",
            now(),
        );
        assert!(
            matches!(&d.effects[..], [Effect::Post { thread_ts: Some(ts), text, .. }] if ts == "1.2" && text.contains("INC-1"))
        );
        let d = decide_mention("<@U0OPSBOT> help", &[], "C1", "1.2", now());
        assert!(
            matches!(&d.effects[..], [Effect::Post { text, .. }] if text.contains("/incident"))
        );
    }

    #[test]
    fn effects_of_one_incident_share_a_lane() {
        let a = Effect::PostAlert {
            incident: IncidentId(3),
        };
        let b = Effect::RefreshAlert {
            incident: IncidentId(3),
        };
        assert_eq!(a.lane(), b.lane());
        assert_ne!(
            a.lane(),
            Effect::PostAlert {
                incident: IncidentId(4)
            }
            .lane()
        );
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Effect>(&json).unwrap(), a);
    }
}
