//! The handoff at a shift change: a message in the team channel and a DM to
//! whoever takes over, with what is open, and an **I have it** button.
//! Each handoff is a timer due at the shift's start, consumed in the commit
//! that stores the handoff, so it is posted once however many replicas see
//! it, and late (saying so) when opsbot was not running at the time. When
//! nobody says "I have it" within the rotation's window, the outgoing
//! person and the rotation's escalation are reminded, once.

use super::report::{summary, ShiftReport};
use crate::decision::{Decision, Effect, Invocation};
use crate::runbook::oncall::Rotation;
use crate::runbook::Runbook;
use crate::subject::{HandoffId, HandoffMessage, Message, Posted, Stamp, Subject};
use crate::text::{duration, escape, slack_date};
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

/// Later than this after the shift change, the message says it is late.
pub const LATE_AFTER: TimeDelta = TimeDelta::minutes(5);

/// One shift change as stored: who handed over to whom, what was open,
/// and whether the incoming person has said they have it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub id: HandoffId,
    /// The rotation's role id, and its name when the handoff was posted.
    pub role: String,
    pub role_name: String,
    /// The number of the shift that starts.
    pub shift: i64,
    pub outgoing: String,
    pub incoming: String,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    /// When it was posted: at `starts`, or later when opsbot was down then.
    pub at: DateTime<Utc>,
    /// The team channel, as the runbook names it.
    pub channel: String,
    /// What was open at the handoff, as listed then (mrkdwn).
    pub open: String,
    /// By when the incoming person should say they have it; `None` when
    /// the rotation asks for no acknowledgement or nobody changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge_by: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Stamp>,
    /// Nobody acknowledged by `acknowledge_by`, and the reminder went out.
    #[serde(default)]
    pub reminded: bool,
    /// Where its messages are in Slack; the store fills it in on load.
    #[serde(skip)]
    pub posted: Posted,
}

impl Handoff {
    /// Still waiting for "I have it".
    pub fn is_open(&self) -> bool {
        self.acknowledge_by.is_some() && self.acknowledged.is_none()
    }

    /// How late it was posted, when that is worth saying.
    pub fn late(&self) -> Option<TimeDelta> {
        Some(self.at - self.starts).filter(|late| *late > LATE_AFTER)
    }
}

/// A handoff decision writes the handoff.
pub type HandoffDecision = Decision<Handoff>;

/// What a handoff decision needs loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// A number for the handoff a shift change posts, and what the shift
    /// that started at `since` hands over.
    New {
        since: DateTime<Utc>,
    },
    /// What the shift that started at `since` hands over, for a handoff on
    /// demand.
    Report {
        since: DateTime<Utc>,
    },
    One(HandoffId),
}

/// What was loaded for a [`Need`].
// Built once per event and moved straight into a decision: boxing the
// handoff would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    New { id: HandoffId, report: ShiftReport },
    Report(ShiftReport),
    One(Option<Handoff>),
}

/// When the shift that ends at a handoff started: what its report covers.
pub fn since(role: &str, shift: i64, due: DateTime<Utc>, runbook: &Runbook) -> DateTime<Utc> {
    match runbook.oncall.rotation(role) {
        Some(rotation) => {
            let zone = runbook.timezone;
            rotation.before(zone, &rotation.shift(zone, shift)).starts
        }
        None => due - TimeDelta::days(1),
    }
}

/// What a handoff on demand covers: the person's current shift (of the
/// first rotation they are on call for), else the last day.
pub fn since_on_demand(who: &Invocation, runbook: &Runbook, now: DateTime<Utc>) -> DateTime<Utc> {
    let zone = runbook.timezone;
    runbook
        .oncall
        .rotations
        .iter()
        .find(|r| runbook.oncall.on_call(&r.role, zone, now).is_some_and(|n| n.member == who.user))
        .map_or(now - TimeDelta::days(1), |r| r.shift_at(zone, now).starts)
}

/// The timer for the handoff that starts shift `shift` of `role`'s
/// rotation; the same for every replica, so setting it twice keeps one.
pub fn timer(role: &str, shift: i64, due: DateTime<Utc>) -> Timer {
    Timer { due, kind: TimerKind::Handoff { role: role.to_owned(), shift } }
}

/// The next handoff timer of every rotation, and of every rotation that
/// reminds its members, the next reminder, for the scheduler to keep set.
pub fn next_timers(runbook: &Runbook, now: DateTime<Utc>) -> Vec<Timer> {
    let mut timers = Vec::new();
    for r in &runbook.oncall.rotations {
        let current = r.shift_at(runbook.timezone, now);
        let next = r.after(runbook.timezone, &current);
        timers.push(timer(&r.role, next.index, next.starts));
        timers.extend(super::reminder::next(r, runbook.timezone, now));
    }
    timers
}

/// Posts the handoff of shift `shift` (due at `due`) with the incidents
/// open now, asks the incoming person to acknowledge it, and sets the next
/// one. A handoff the runbook no longer has (the rotation was removed or
/// re-timed) does nothing but say why in the log; the scheduler sets the
/// right timers.
pub fn handoff(
    role: &str,
    shift: i64,
    due: DateTime<Utc>,
    id: HandoffId,
    report: &ShiftReport,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> HandoffDecision {
    let zone = runbook.timezone;
    let Some(rotation) = runbook.oncall.rotation(role) else {
        let mut d = Decision::nothing();
        d.log = Some(format!("no handoff for `{role}`: the runbook has no rotation for it any more"));
        return d;
    };
    let starting = rotation.shift(zone, shift);
    if starting.starts != due {
        let mut d = Decision::nothing();
        d.log = Some(format!("no handoff for `{role}` at {due}: the rotation's shifts changed"));
        return d;
    }
    // Overrides decide who hands over to whom: someone covering the end of
    // the last shift hands over, someone covering the start takes over.
    let who_at = |at| runbook.oncall.on_call(role, zone, at).map(|now| now.member);
    let outgoing = who_at(due - TimeDelta::seconds(1)).unwrap_or_else(|| rotation.before(zone, &starting).member);
    let incoming = who_at(due).unwrap_or_else(|| starting.member.clone());
    let changes_hands = outgoing != incoming;
    let handoff = Handoff {
        id,
        role: role.to_owned(),
        role_name: runbook.role(role).map_or(role, |r| r.name.as_str()).to_owned(),
        shift,
        outgoing,
        incoming,
        starts: starting.starts,
        ends: starting.ends,
        at: now,
        channel: runbook.channels.team.clone(),
        open: summary(report, since(role, shift, due, runbook), (starting.starts, starting.ends), runbook, now),
        acknowledge_by: rotation.acknowledge_within.filter(|_| changes_hands).map(|within| now + within),
        acknowledged: None,
        reminded: false,
        posted: Posted::default(),
    };
    let mut d = Decision::nothing();
    d.effects = vec![
        Effect::Post(Message::Handoff(id, HandoffMessage::Announcement)),
        Effect::Post(Message::Handoff(id, HandoffMessage::Direct)),
    ];
    let next = rotation.after(zone, &starting);
    d.timers = vec![timer(role, next.index, next.starts)];
    if let Some(by) = handoff.acknowledge_by {
        d.timers.push(Timer { due: by, kind: TimerKind::HandoffUnacknowledged { handoff: id } });
    }
    d.change = Some(handoff);
    d
}

/// **I have it**: the incoming person takes the shift. Only they can say
/// so; anyone else is told who can, and nothing changes.
pub fn acknowledge(found: Option<Handoff>, id: HandoffId, who: &Invocation, now: DateTime<Utc>) -> HandoffDecision {
    let Some(mut handoff) = found else {
        return refuse(who, format!("The handoff {id} is no longer stored."));
    };
    if let Some(done) = &handoff.acknowledged {
        let whom = if done.user == who.user { "You".to_owned() } else { format!("<@{}>", done.user) };
        return refuse(who, format!("{whom} already said so at {}.", slack_date(done.at)));
    }
    if who.user != handoff.incoming {
        return refuse(
            who,
            format!(
                "Only <@{}>, who takes over as *{}*, can say they have it.",
                handoff.incoming,
                escape(&handoff.role_name)
            ),
        );
    }
    handoff.acknowledged = Some(Stamp { user: who.user.clone(), at: now });
    let after = duration(now - handoff.at);
    let mut d = Decision::nothing();
    d.effects = vec![
        refresh(handoff.id, HandoffMessage::Announcement),
        refresh(handoff.id, HandoffMessage::Direct),
        Effect::InThread {
            subject: Subject::Handoff(handoff.id),
            text: format!(
                "✅ <@{}> has it ({after} after the handoff). Thanks, <@{}>: you are off call.",
                handoff.incoming, handoff.outgoing
            ),
        },
    ];
    d.change = Some(handoff);
    d
}

/// Nobody said "I have it" in time: remind the incoming person, ask the
/// outgoing one to stay on until they do, and tell the rotation's
/// escalation. Once; a handoff acknowledged meanwhile does nothing.
pub fn unacknowledged(found: Option<Handoff>, runbook: &Runbook, now: DateTime<Utc>) -> HandoffDecision {
    let Some(mut handoff) = found.filter(|h| h.is_open() && !h.reminded) else {
        return Decision::nothing();
    };
    handoff.reminded = true;
    let waited = duration(now - handoff.at);
    let escalation = runbook
        .oncall
        .rotation(&handoff.role)
        .and_then(|rotation| runbook.handoff_escalation(rotation))
        .map(|role| {
            let mentions: Vec<String> = runbook.paged(role, now).iter().map(|m| m.to_mrkdwn()).collect();
            format!(" {} ({}), for your attention.", mentions.join(" "), escape(&role.name))
        })
        .unwrap_or_default();
    let role = escape(&handoff.role_name);
    let mut d = Decision::nothing();
    d.effects = vec![
        refresh(handoff.id, HandoffMessage::Announcement),
        refresh(handoff.id, HandoffMessage::Direct),
        Effect::InThread {
            subject: Subject::Handoff(handoff.id),
            text: format!(
                "⏰ <@{}> has not said *I have it* {waited} after the handoff. <@{}>, please stay on as *{role}* \
                 until they do.{escalation}",
                handoff.incoming, handoff.outgoing
            ),
        },
        Effect::Say {
            channel: handoff.incoming.clone(),
            thread_ts: None,
            text: format!(
                "⏰ You are on call as *{role}* since {}. Please press *I have it* on the handoff, \
                 so <@{}> knows they can go.",
                slack_date(handoff.starts),
                handoff.outgoing
            ),
        },
        Effect::Say {
            channel: handoff.outgoing.clone(),
            thread_ts: None,
            text: format!(
                "⏰ <@{}> has not acknowledged the *{role}* handoff yet ({waited}). Please stay on until they do.",
                handoff.incoming
            ),
        },
    ];
    d.change = Some(handoff);
    d
}

/// Edits one of the handoff's messages to show it as it now is.
fn refresh(id: HandoffId, which: HandoffMessage) -> Effect {
    Effect::Refresh(Message::Handoff(id, which))
}

fn refuse(who: &Invocation, text: String) -> HandoffDecision {
    let mut d = Decision::nothing();
    d.effects = vec![Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text }];
    d
}

/// `/oncall handoff [notes]`: the same message now, for the rotations the
/// person is on call for (all of them when none), with their notes.
pub fn on_demand(
    notes: &str,
    report: &ShiftReport,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> Decision<Infallible> {
    let zone = runbook.timezone;
    let rotations = &runbook.oncall.rotations;
    if rotations.is_empty() {
        return Decision::reply(
            "There are no on-call rotations in the runbook, so there is nothing to hand over. Add one under `oncall:`.",
        );
    }
    let on_call = |r: &&Rotation| runbook.oncall.on_call(&r.role, zone, now).is_some_and(|n| n.member == who.user);
    let mine: Vec<_> = rotations.iter().filter(on_call).collect();
    let shown = if mine.is_empty() { rotations.iter().collect() } else { mine };
    let mut lines = vec![format!("🔄 *On-call handoff*, posted by <@{}>", who.user)];
    lines.extend(shown.iter().map(|rotation| now_line(runbook, rotation, now)));
    if !notes.trim().is_empty() {
        lines.push(format!("*Notes:* {}", escape(&crate::text::truncate(notes.trim(), 1500))));
    }
    let next = shown.first().map_or((now, now), |r| {
        let current = r.shift_at(zone, now);
        (current.ends, r.after(zone, &current).ends)
    });
    lines.push(summary(report, since_on_demand(who, runbook, now), next, runbook, now));
    let mut d = Decision::reply(format!("Posted the handoff in {}.", runbook.channels.team));
    d.effects = vec![Effect::Say { channel: runbook.channels.team.clone(), thread_ts: None, text: lines.join("\n") }];
    d
}

/// `• *On-call engineer*: @bob until Mon 09:00, then @carol`: a rotation
/// now, as `/oncall` and a handoff on demand show it.
pub(crate) fn now_line(runbook: &Runbook, rotation: &Rotation, now: DateTime<Utc>) -> String {
    let name = escape(runbook.role(&rotation.role).map_or(rotation.role.as_str(), |r| r.name.as_str()));
    let (zone, oncall) = (runbook.timezone, &runbook.oncall);
    let Some(current) = oncall.on_call(&rotation.role, zone, now) else { return format!("• *{name}*") };
    let covering = match &current.cover {
        Some(cover) => format!(" (covering for <@{}>, OVR-{})", current.scheduled, cover.id),
        None => String::new(),
    };
    let next = oncall.on_call(&rotation.role, zone, current.until).map(|n| n.member).unwrap_or_default();
    format!("• *{name}*: <@{}>{covering} until {}, then <@{next}>", current.member, slack_date(current.until))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::tests::{at, person};

    use crate::oncall::tests::with_rotation as runbook;

    const ID: HandoffId = HandoffId(7);

    /// Bob takes over from Alice on Monday 2026-12-07 at 09:00 UTC.
    fn posted(now: DateTime<Utc>) -> Handoff {
        let d =
            handoff("on-call-engineer", 1, at("2026-12-07T09:00:00Z"), ID, &ShiftReport::default(), &runbook(), now);
        d.change.expect("a handoff is stored")
    }

    fn text_of(h: &Handoff, which: HandoffMessage) -> String {
        crate::oncall::render::message(h, which).text
    }

    #[test]
    fn the_handoff_tells_the_channel_and_the_incoming_person_and_sets_the_next_and_the_reminder() {
        let rb = runbook();
        let due = at("2026-12-07T09:00:00Z");
        let d = handoff("on-call-engineer", 1, due, ID, &ShiftReport::default(), &rb, due);
        assert_eq!(
            d.effects,
            vec![
                Effect::Post(Message::Handoff(ID, HandoffMessage::Announcement)),
                Effect::Post(Message::Handoff(ID, HandoffMessage::Direct)),
            ]
        );
        let h = d.change.expect("stored");
        assert_eq!((h.outgoing.as_str(), h.incoming.as_str(), h.channel.as_str()), ("U0ALICE", "U0BOB", "#devops"));
        assert_eq!(h.acknowledge_by, Some(due + TimeDelta::minutes(15)));
        assert_eq!(
            d.timers,
            vec![
                timer("on-call-engineer", 2, at("2026-12-14T09:00:00Z")),
                Timer { due: due + TimeDelta::minutes(15), kind: TimerKind::HandoffUnacknowledged { handoff: ID } },
            ]
        );
        let text = text_of(&h, HandoffMessage::Announcement);
        assert!(text.contains("<@U0ALICE> hands over to <@U0BOB>") && text.contains("No open incidents."), "{text}");
        assert!(text.contains("⏳ Waiting for <@U0BOB> to say *I have it*") && !text.contains("late"), "{text}");
        let dm = text_of(&h, HandoffMessage::Direct);
        assert!(dm.contains("You are on call as *On-call engineer*") && dm.contains("Press *I have it*"), "{dm}");
        let blocks = crate::oncall::render::message(&h, HandoffMessage::Direct).blocks.to_string();
        assert!(blocks.contains("handoff.ack"), "{blocks}");
    }

    #[test]
    fn a_handoff_posted_after_an_outage_says_it_is_late_and_gives_the_full_window_from_now() {
        let now = at("2026-12-07T09:42:00Z");
        let h = posted(now);
        assert!(text_of(&h, HandoffMessage::Announcement).contains("Posted 42 min late"));
        assert_eq!(h.acknowledge_by, Some(now + TimeDelta::minutes(15)));
    }

    #[test]
    fn a_handoff_the_runbook_no_longer_has_posts_nothing() {
        let rb = runbook();
        let d = handoff(
            "on-call-engineer",
            1,
            at("2026-12-07T10:00:00Z"),
            ID,
            &ShiftReport::default(),
            &rb,
            at("2026-12-07T10:00:00Z"),
        );
        assert!(d.effects.is_empty() && d.timers.is_empty() && d.change.is_none() && d.log.is_some());
        let d = handoff(
            "devops-team-lead",
            1,
            at("2026-12-07T09:00:00Z"),
            ID,
            &ShiftReport::default(),
            &rb,
            at("2026-12-07T09:00:00Z"),
        );
        assert!(d.effects.is_empty() && d.change.is_none() && d.log.is_some());
    }

    #[test]
    fn an_override_across_the_shift_change_decides_who_hands_over_to_whom() {
        use crate::runbook::oncall::Cover;
        let due = at("2026-12-07T09:00:00Z");
        let cover = |member: &str, starts: &str, ends: &str| Cover {
            role: "on-call-engineer".into(),
            member: member.into(),
            starts: at(starts),
            ends: at(ends),
            id: 1,
        };
        // Carol covers the last hours of Alice's shift: she hands over to Bob.
        let mut rb = runbook();
        rb.oncall.covers = vec![cover("U0CAROL", "2026-12-07T06:00:00Z", "2026-12-07T09:00:00Z")];
        let h = handoff("on-call-engineer", 1, due, ID, &ShiftReport::default(), &rb, due).change.unwrap();
        assert_eq!((h.outgoing.as_str(), h.incoming.as_str()), ("U0CAROL", "U0BOB"));
        // Carol covers across the change: she stays on, and nobody is asked for "I have it".
        rb.oncall.covers = vec![cover("U0CAROL", "2026-12-07T08:00:00Z", "2026-12-07T10:00:00Z")];
        let d = handoff("on-call-engineer", 1, due, ID, &ShiftReport::default(), &rb, due);
        let h = d.change.unwrap();
        assert_eq!((h.outgoing.as_str(), h.incoming.as_str(), h.acknowledge_by), ("U0CAROL", "U0CAROL", None));
        assert!(text_of(&h, HandoffMessage::Announcement).contains("<@U0CAROL> stays on call"));
        assert_eq!(d.timers.len(), 1, "no reminder to set");
    }

    #[test]
    fn a_rotation_that_asks_no_acknowledgement_has_no_button_and_no_reminder() {
        let mut rb = runbook();
        rb.oncall.rotations[0].acknowledge_within = None;
        let due = at("2026-12-07T09:00:00Z");
        let d = handoff("on-call-engineer", 1, due, ID, &ShiftReport::default(), &rb, due);
        let h = d.change.unwrap();
        assert_eq!(h.acknowledge_by, None);
        assert_eq!(d.timers.len(), 1, "only the next handoff");
        assert!(!crate::oncall::render::message(&h, HandoffMessage::Announcement)
            .blocks
            .to_string()
            .contains("handoff.ack"));
    }

    #[test]
    fn the_incoming_person_says_i_have_it_and_both_messages_show_it() {
        let due = at("2026-12-07T09:00:00Z");
        let h = posted(due);
        let d = acknowledge(Some(h), ID, &person("U0BOB"), due + TimeDelta::minutes(3));
        let h = d.change.clone().expect("acknowledged");
        assert_eq!(h.acknowledged.as_ref().map(|s| s.user.as_str()), Some("U0BOB"));
        assert!(!h.is_open());
        let Effect::InThread { text, .. } = &d.effects[2] else { panic!("{:?}", d.effects) };
        assert!(text.contains("<@U0BOB> has it (3 min after the handoff)") && text.contains("<@U0ALICE>"), "{text}");
        assert!(text_of(&h, HandoffMessage::Announcement).contains("✅ <@U0BOB> has it since"));
        assert!(text_of(&h, HandoffMessage::Direct).contains("✅ You have it since"));
        assert!(!crate::oncall::render::message(&h, HandoffMessage::Direct).blocks.to_string().contains("handoff.ack"));

        let again = acknowledge(Some(h.clone()), ID, &person("U0BOB"), due + TimeDelta::minutes(4));
        assert!(again.change.is_none());
        let [Effect::Ephemeral { text, .. }] = &again.effects[..] else { panic!("{:?}", again.effects) };
        assert!(text.starts_with("You already said so"), "{text}");
        // The reminder then has nothing to do.
        assert_eq!(unacknowledged(Some(h), &runbook(), due + TimeDelta::minutes(15)), Decision::nothing());
    }

    #[test]
    fn only_the_incoming_person_can_say_they_have_it() {
        let h = posted(at("2026-12-07T09:00:00Z"));
        let d = acknowledge(Some(h), ID, &person("U0ALICE"), at("2026-12-07T09:01:00Z"));
        assert!(d.change.is_none());
        let [Effect::Ephemeral { text, user, .. }] = &d.effects[..] else { panic!("{:?}", d.effects) };
        assert_eq!(user, "U0ALICE");
        assert!(text.contains("Only <@U0BOB>, who takes over as *On-call engineer*"), "{text}");
        let gone = acknowledge(None, ID, &person("U0BOB"), at("2026-12-07T09:01:00Z"));
        assert!(gone.change.is_none() && matches!(&gone.effects[..], [Effect::Ephemeral { .. }]));
    }

    #[test]
    fn an_unacknowledged_handoff_reminds_both_people_and_the_team_lead_once() {
        let due = at("2026-12-07T09:00:00Z");
        let rb = runbook();
        let later = due + TimeDelta::minutes(15);
        let d = unacknowledged(Some(posted(due)), &rb, later);
        let h = d.change.clone().expect("marked reminded");
        assert!(h.reminded && h.is_open(), "still open: the button stays");
        let [Effect::Refresh(_), Effect::Refresh(_), Effect::InThread { text, .. }, Effect::Say { channel: to_bob, .. }, Effect::Say { channel: to_alice, text: to_alice_text, .. }] =
            &d.effects[..]
        else {
            panic!("{:?}", d.effects)
        };
        assert!(text.contains("<@U0BOB> has not said *I have it* 15 min after the handoff"), "{text}");
        assert!(text.contains("<@U0ALICE>, please stay on") && text.contains("(DevOps team lead)"), "{text}");
        assert_eq!((to_bob.as_str(), to_alice.as_str()), ("U0BOB", "U0ALICE"));
        assert!(to_alice_text.contains("Please stay on until they do"), "{to_alice_text}");
        assert!(text_of(&h, HandoffMessage::Announcement).contains("⚠️ <@U0BOB> has not said *I have it* yet"));
        assert_eq!(unacknowledged(Some(h.clone()), &rb, later), Decision::nothing(), "once");
        // Bob can still say so afterwards.
        assert!(acknowledge(Some(h), ID, &person("U0BOB"), later).change.is_some());
    }

    #[test]
    fn a_handoff_round_trips_through_json_without_where_it_was_posted() {
        let h = posted(at("2026-12-07T09:00:00Z"));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Handoff>(&json).unwrap(), h);
    }
}
