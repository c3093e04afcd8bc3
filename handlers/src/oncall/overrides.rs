//! On-call overrides: `/oncall override <role> @person <for how long>` puts
//! someone on call for a role instead of the rotation's member, from now or
//! a given time, until it ends by itself or someone presses Cancel on its
//! announcement. Pages, `/oncall`, handoffs and shift reminders all follow
//! it (the shell keeps the open ones in the runbook it hands the core, as
//! [`Cover`]s). Each override is a subject of its own, `OVR-<n>`.

use super::USAGE;
use crate::decision::{Decision, Effect, Invocation, UsageError};
use crate::runbook::oncall::Cover;
use crate::runbook::permissions::Action;
use crate::runbook::Runbook;
use crate::subject::{Message, OverrideId, OverrideMessage, Posted, Stamp, Subject, SwapId};
use crate::text::{escape, slack_date};
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// The longest override: longer is a change of the rotation, not a cover.
pub const LONGEST: TimeDelta = TimeDelta::weeks(8);

/// `/oncall override …` as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The role, as typed (its id or name).
    pub role: String,
    /// The Slack user id of who covers.
    pub member: String,
    /// From when, in the runbook's time zone; `None`: now.
    pub from: Option<NaiveDateTime>,
    pub until: Until,
}

/// How an override's end was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Until {
    /// `4h`, `for 2d`
    For(TimeDelta),
    /// `until 18:00`: the next such time after the start.
    Time(NaiveTime),
    /// `until 2026-12-07 09:00`
    At(NaiveDateTime),
}

/// The one person mentioned in `text` (a Slack user id), with the words
/// before and after the mention; `missing` says what to write when nobody
/// is mentioned.
pub(super) fn mention<'a>(text: &'a str, missing: &str) -> Result<(&'a str, String, &'a str), UsageError> {
    let usage = |message: &str| UsageError { message: message.to_owned(), usage: USAGE };
    let not_one_person = "Mention one person (`@carol`), not a group or a channel.";
    let open = match text.find("<@") {
        Some(open) => open,
        None if text.contains("<!") || text.contains("<#") => return Err(usage(not_one_person)),
        None => return Err(usage(missing)),
    };
    let close = text[open..].find('>').map(|i| open + i).ok_or_else(|| usage("That mention is not complete."))?;
    let member = text[open + 2..close].split('|').next().unwrap_or("").trim();
    if !member.starts_with(['U', 'W']) || !member[1..].chars().all(|c| c.is_ascii_alphanumeric()) || member.len() < 2 {
        return Err(usage(not_one_person));
    }
    Ok((text[..open].trim(), member.to_owned(), &text[close + 1..]))
}

/// Reads what follows `/oncall override`.
pub fn parse(text: &str) -> Result<Request, UsageError> {
    let usage = |message: &str| UsageError { message: message.to_owned(), usage: USAGE };
    let (role, member, after) =
        mention(text, "Who covers? Mention them, e.g. `/oncall override on-call engineer @carol 4h`.")?;
    if role.is_empty() {
        return Err(usage("Which role? e.g. `/oncall override on-call engineer @carol 4h`."));
    }
    let mut words: Vec<&str> = after.split_whitespace().collect();
    let when = |words: &[&str]| -> Option<NaiveDateTime> {
        NaiveDateTime::parse_from_str(&words.join(" "), "%Y-%m-%d %H:%M").ok()
    };
    let mut from = None;
    if words.first().is_some_and(|w| w.eq_ignore_ascii_case("from")) {
        from = Some(
            words
                .get(1..3)
                .and_then(when)
                .ok_or_else(|| usage("`from` takes a date and time, e.g. `from 2026-12-04 18:00`."))?,
        );
        words.drain(..3);
    }
    let until =
        match words.as_slice() {
            [] => return Err(usage("For how long? e.g. `4h`, `for 2d` or `until 18:00`.")),
            [word, rest @ ..] if word.eq_ignore_ascii_case("until") => {
                match rest {
                    [time] => Until::Time(NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| {
                        usage("`until` takes a time (`18:00`) or a date and time (`2026-12-07 09:00`).")
                    })?),
                    [date, time] => Until::At(when(&[date, time]).ok_or_else(|| {
                        usage("`until` takes a time (`18:00`) or a date and time (`2026-12-07 09:00`).")
                    })?),
                    _ => return Err(usage("`until` takes a time (`18:00`) or a date and time (`2026-12-07 09:00`).")),
                }
            }
            [word, rest @ ..] => {
                let rest = if word.eq_ignore_ascii_case("for") { rest.join(" ") } else { words.join(" ") };
                Until::For(crate::runbook::load::parse_duration(&rest).map_err(|_| {
                    usage("For how long? e.g. `4h`, `for 2d`, `until 18:00` or `until 2026-12-07 09:00`.")
                })?)
            }
        };
    Ok(Request { role: role.to_owned(), member, from, until })
}

/// One override as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub id: OverrideId,
    /// The role id, and its name when it was set.
    pub role: String,
    pub role_name: String,
    /// Who is on call instead.
    pub member: String,
    /// Who the rotation had on call at the start: whom it covers for.
    pub covers: String,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    /// Who set it, and when.
    pub by: Stamp,
    /// The team channel, as the runbook names it.
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Stamp>,
    /// It ran its course and its message says so.
    #[serde(default)]
    pub ended: bool,
    /// The swap it carries out half of, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapId>,
    /// Where its message is in Slack; the store fills it in on load.
    #[serde(skip)]
    pub posted: Posted,
}

impl Override {
    /// In force or still to come: what pages follow.
    pub fn is_open(&self) -> bool {
        self.cancelled.is_none() && !self.ended
    }

    /// As the rotation arithmetic sees it.
    pub fn cover(&self) -> Cover {
        Cover {
            role: self.role.clone(),
            member: self.member.clone(),
            starts: self.starts,
            ends: self.ends,
            id: self.id.0,
        }
    }
}

pub type OverrideDecision = Decision<Override>;

/// What an override decision needs loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// A number for a new override.
    New,
    One(OverrideId),
}

/// What was loaded for a [`Need`].
// Built once per event and moved straight into a decision: boxing the
// override would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    New(OverrideId),
    One(Option<Override>),
}

/// `/oncall override` or `swap` by someone the runbook does not let: who
/// may, and nothing else (the event decided on nothing loaded).
pub fn refused(who: &Invocation, runbook: &Runbook) -> OverrideDecision {
    // Asked of the same runbook the need was, so this is a refusal; were
    // it not, nothing was loaded to act on, and trying again works.
    let Err(refused) = runbook.may(Action::OverrideOnCall, who, None) else {
        return Decision::reply("The runbook changed while you typed: please try again.");
    };
    refused.decision(who)
}

/// `/oncall override …`: checks the role and the span, stores the
/// override, announces it in the team channel and tells the two people it
/// moves (unless they set it themselves).
pub fn set(
    request: &Request,
    id: OverrideId,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> OverrideDecision {
    if let Err(refused) = runbook.may(Action::OverrideOnCall, who, None) {
        return refused.decision(who);
    }
    let role = match super::find(runbook, &request.role) {
        Ok(role) => role,
        Err(why) => return Decision::reply(why),
    };
    let name = escape(&role.name);
    if runbook.oncall.rotation(&role.id).is_none() {
        return Decision::reply(format!(
            "*{name}* has no rotation, so there is nothing to override: it is paged as its `people` say."
        ));
    }
    let zone = runbook.timezone;
    let local = |at: NaiveDateTime| crate::runbook::oncall::local(zone, at);
    let starts = request.from.map_or(now, local);
    let ends = match &request.until {
        Until::For(length) => starts + *length,
        Until::At(at) => local(*at),
        Until::Time(time) => {
            let day = starts.with_timezone(&zone).date_naive();
            let today = local(day.and_time(*time));
            if today > starts {
                today
            } else {
                local(day.succ_opt().unwrap_or(NaiveDate::MAX).and_time(*time))
            }
        }
    };
    if ends <= starts {
        return Decision::reply(format!(
            "It would end ({}) before it starts ({}).",
            slack_date(ends),
            slack_date(starts)
        ));
    }
    if ends <= now {
        return Decision::reply(format!("That is over already: it would have ended {}.", slack_date(ends)));
    }
    if ends - starts > LONGEST {
        return Decision::reply(
            "An override lasts 8 weeks at most; for longer, change the rotation's `members` in the runbook.",
        );
    }
    let covers = runbook.oncall.on_call(&role.id, zone, starts).map(|n| n.member).unwrap_or_default();
    let o = Override {
        id,
        role: role.id.clone(),
        role_name: role.name.clone(),
        member: request.member.clone(),
        covers,
        starts,
        ends,
        by: Stamp { user: who.user.clone(), at: now },
        channel: runbook.channels.team.clone(),
        cancelled: None,
        ended: false,
        swap: None,
        posted: Posted::default(),
    };
    let span = format!("from {} until {}", slack_date(o.starts), slack_date(o.ends));
    let mut d = Decision::reply(format!(
        "🔁 Done: <@{}> is on call as *{name}* {span} ({id}). The announcement in {} has a Cancel button.",
        o.member, o.channel
    ));
    d.effects.push(Effect::Post(Message::Override(id, OverrideMessage::Announcement)));
    if o.member != who.user {
        d.effects.push(Effect::Say {
            channel: o.member.clone(),
            thread_ts: None,
            text: format!(
                "🔁 <@{}> put you on call as *{name}* {span}, covering for <@{}> ({id}).",
                who.user, o.covers
            ),
        });
    }
    if o.covers != who.user && o.covers != o.member && !o.covers.is_empty() {
        d.effects.push(Effect::Say {
            channel: o.covers.clone(),
            thread_ts: None,
            text: format!("🔁 <@{}> covers your *{name}* shift {span} ({id}, set by <@{}>).", o.member, who.user),
        });
    }
    d.timers.push(Timer { due: o.ends, kind: TimerKind::OverrideEnds { cover: id } });
    d.change = Some(o);
    d
}

/// **Cancel** on the announcement: the rotation's member is on call again
/// at once (or the planned override never starts).
pub fn cancel(found: Option<Override>, id: OverrideId, who: &Invocation, now: DateTime<Utc>) -> OverrideDecision {
    let Some(mut o) = found else {
        return note(who, format!("{id} is no longer stored."));
    };
    if !o.is_open() {
        return note(who, format!("{id} is over already."));
    }
    o.cancelled = Some(Stamp { user: who.user.clone(), at: now });
    let mut d = Decision::nothing();
    d.effects = vec![
        Effect::Refresh(Message::Override(id, OverrideMessage::Announcement)),
        Effect::InThread {
            subject: Subject::Override(id),
            text: format!("❌ <@{}> cancelled {id}; the rotation has *{}* again.", who.user, escape(&o.role_name)),
        },
    ];
    if o.member != who.user {
        d.effects.push(Effect::Say {
            channel: o.member.clone(),
            thread_ts: None,
            text: format!(
                "❌ <@{}> cancelled {id}: you are not on call as *{}* for it.",
                who.user,
                escape(&o.role_name)
            ),
        });
    }
    d.change = Some(o);
    d
}

/// The override's end: its message says it is over, and who has the role
/// now. A cancelled one, or one already marked, does nothing.
pub fn ended(found: Option<Override>, runbook: &Runbook, now: DateTime<Utc>) -> OverrideDecision {
    let Some(mut o) = found.filter(|o| o.is_open() && now >= o.ends) else {
        return Decision::nothing();
    };
    o.ended = true;
    let next = runbook
        .oncall
        .on_call(&o.role, runbook.timezone, o.ends)
        .map(|n| format!(" <@{}> is on call as *{}* now.", n.member, escape(&o.role_name)))
        .unwrap_or_default();
    let mut d = Decision::nothing();
    d.effects = vec![
        Effect::Refresh(Message::Override(o.id, OverrideMessage::Announcement)),
        Effect::InThread { subject: Subject::Override(o.id), text: format!("⏹ {} is over.{next}", o.id) },
    ];
    d.change = Some(o);
    d
}

fn note(who: &Invocation, text: String) -> OverrideDecision {
    let mut d = Decision::nothing();
    d.effects = vec![Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text }];
    d
}

/// The announcement, as the override is now.
pub fn message(o: &Override) -> crate::blocks::SlackMessage {
    use crate::codec::{Button, OverrideButton};
    let name = escape(&o.role_name);
    let span = format!("from {} until {}", slack_date(o.starts), slack_date(o.ends));
    let covering = if o.covers.is_empty() || o.covers == o.member {
        String::new()
    } else {
        format!(" instead of <@{}>", o.covers)
    };
    let text = match (&o.cancelled, o.ended) {
        (Some(c), _) => format!(
            "❌ ~*{}* <@{}> on call as *{name}*{covering} {span}~\nCancelled by <@{}> {}.",
            o.id,
            o.member,
            c.user,
            slack_date(c.at)
        ),
        (None, true) => format!("⏹ *{}* <@{}> was on call as *{name}*{covering} {span}. Over.", o.id, o.member),
        (None, false) => {
            let why = match o.swap {
                Some(swap) => format!("Swapped ({swap}), agreed by <@{}>.", o.by.user),
                None => format!("Set by <@{}>.", o.by.user),
            };
            format!("🔁 *{}* <@{}> is on call as *{name}*{covering} {span}. {why}", o.id, o.member)
        }
    };
    let mut blocks = vec![serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
    if o.is_open() {
        blocks.push(serde_json::json!({
            "type": "actions",
            "elements": [crate::blocks::button(Button::Override(o.id, OverrideButton::Cancel), "Cancel", Some("danger"))],
        }));
    }
    crate::blocks::SlackMessage { text, blocks: serde_json::Value::Array(blocks) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::tests::with_rotation as runbook;
    use crate::oncall::tests::{at, person};

    const ID: OverrideId = OverrideId(3);

    #[test]
    fn an_override_is_read_with_its_person_and_its_span() {
        let r = parse("on-call engineer <@U0CAROL|carol> 4h").unwrap();
        assert_eq!((r.role.as_str(), r.member.as_str(), r.from.as_ref()), ("on-call engineer", "U0CAROL", None));
        assert_eq!(r.until, Until::For(TimeDelta::hours(4)));
        assert_eq!(parse("on-call <@U0CAROL> for 2d").unwrap().until, Until::For(TimeDelta::days(2)));
        assert_eq!(
            parse("on-call <@U0CAROL> until 18:00").unwrap().until,
            Until::Time(NaiveTime::from_hms_opt(18, 0, 0).unwrap())
        );
        let planned = parse("on-call <@U0CAROL> from 2026-12-04 18:00 until 2026-12-07 09:00").unwrap();
        assert_eq!(planned.from, NaiveDateTime::parse_from_str("2026-12-04 18:00", "%Y-%m-%d %H:%M").ok());
        assert_eq!(
            planned.until,
            Until::At(NaiveDateTime::parse_from_str("2026-12-07 09:00", "%Y-%m-%d %H:%M").unwrap())
        );
        for (typed, says) in [
            ("on-call carol 4h", "Who covers?"),
            ("<@U0CAROL> 4h", "Which role?"),
            ("on-call <!subteam^S1> 4h", "Mention one person"),
            ("on-call <@U0CAROL>", "For how long?"),
            ("on-call <@U0CAROL> a while", "For how long?"),
            ("on-call <@U0CAROL> until tomorrow", "`until` takes a time"),
            ("on-call <@U0CAROL> from friday 4h", "`from` takes a date and time"),
        ] {
            let e = parse(typed).unwrap_err();
            assert!(e.message.contains(says), "{typed}: {}", e.message);
        }
    }

    #[test]
    fn an_override_from_now_is_announced_and_the_two_people_it_moves_are_told() {
        let rb = runbook();
        let now = at("2026-12-08T12:00:00Z"); // Bob's week
        let d = set(&parse("on-call engineer <@U0CAROL> 4h").unwrap(), ID, &person("U0ALICE"), &rb, now);
        let o = d.change.clone().expect("stored");
        assert_eq!((o.member.as_str(), o.covers.as_str()), ("U0CAROL", "U0BOB"));
        assert_eq!((o.starts, o.ends), (now, now + TimeDelta::hours(4)));
        assert!(d.reply.text.contains("Done: <@U0CAROL> is on call as *On-call engineer*"), "{}", d.reply.text);
        let [Effect::Post(_), Effect::Say { channel: carol, .. }, Effect::Say { channel: bob, text, .. }] =
            &d.effects[..]
        else {
            panic!("{:?}", d.effects)
        };
        assert_eq!((carol.as_str(), bob.as_str()), ("U0CAROL", "U0BOB"));
        assert!(text.contains("<@U0CAROL> covers your *On-call engineer* shift"), "{text}");
        assert_eq!(d.timers, vec![Timer { due: o.ends, kind: TimerKind::OverrideEnds { cover: ID } }]);
        let shown = message(&o);
        assert!(shown.text.contains("🔁 *OVR-3* <@U0CAROL> is on call as *On-call engineer* instead of <@U0BOB>"));
        assert!(shown.blocks.to_string().contains("override.cancel"));

        // Bob covering himself with Carol: nobody is told twice.
        let d = set(&parse("on-call engineer <@U0CAROL> 4h").unwrap(), ID, &person("U0CAROL"), &rb, now);
        assert!(matches!(&d.effects[..], [Effect::Post(_), Effect::Say { channel, .. }] if channel == "U0BOB"));
    }

    #[test]
    fn until_a_time_means_its_next_occurrence_in_the_runbooks_zone() {
        let rb = runbook();
        let evening = at("2026-12-08T19:00:00Z");
        let d = set(&parse("on-call <@U0CAROL> until 08:00").unwrap(), ID, &person("U0BOB"), &rb, evening);
        assert_eq!(d.change.unwrap().ends, at("2026-12-09T08:00:00Z"), "tomorrow morning");
        let planned = parse("on-call <@U0CAROL> from 2026-12-10 18:00 until 2026-12-11 09:00").unwrap();
        let o = set(&planned, ID, &person("U0BOB"), &rb, evening).change.unwrap();
        assert_eq!((o.starts, o.ends), (at("2026-12-10T18:00:00Z"), at("2026-12-11T09:00:00Z")));
    }

    #[test]
    fn an_override_that_makes_no_sense_changes_nothing_and_says_why() {
        let rb = runbook();
        let now = at("2026-12-08T12:00:00Z");
        for (typed, says) in [
            ("devops team lead <@U0CAROL> 4h", "has no rotation"),
            ("on-cal engineer <@U0CAROL> 4h", "Did you mean *On-call engineer*?"),
            ("on-call <@U0CAROL> from 2026-12-08 10:00 until 2026-12-08 11:00", "over already"),
            ("on-call <@U0CAROL> from 2026-12-09 10:00 until 2026-12-09 09:00", "before it starts"),
            ("on-call <@U0CAROL> 57d", "8 weeks at most"),
        ] {
            let d = set(&parse(typed).unwrap(), ID, &person("U0BOB"), &rb, now);
            assert!(d.change.is_none() && d.effects.is_empty(), "{typed}");
            assert!(d.reply.text.contains(says), "{typed}: {}", d.reply.text);
        }
    }

    #[test]
    fn cancel_ends_it_at_once_and_its_end_is_marked_once() {
        let rb = runbook();
        let now = at("2026-12-08T12:00:00Z");
        let o = set(&parse("on-call <@U0CAROL> 4h").unwrap(), ID, &person("U0BOB"), &rb, now).change.unwrap();
        let d = cancel(Some(o.clone()), ID, &person("U0BOB"), now + TimeDelta::hours(1));
        let cancelled = d.change.clone().expect("cancelled");
        assert!(!cancelled.is_open());
        assert!(message(&cancelled).text.contains("Cancelled by <@U0BOB>"));
        assert!(!message(&cancelled).blocks.to_string().contains("override.cancel"));
        assert!(d.effects.iter().any(|e| matches!(e, Effect::Say { channel, .. } if channel == "U0CAROL")));
        assert!(cancel(Some(cancelled.clone()), ID, &person("U0BOB"), now).change.is_none(), "twice");
        assert_eq!(ended(Some(cancelled), &rb, o.ends), Decision::nothing(), "a cancelled one just stops");

        assert_eq!(ended(Some(o.clone()), &rb, o.ends - TimeDelta::seconds(1)), Decision::nothing(), "not yet");
        let d = ended(Some(o.clone()), &rb, o.ends);
        let over = d.change.clone().expect("marked");
        assert!(over.ended && message(&over).text.contains("Over."));
        let Effect::InThread { text, .. } = &d.effects[1] else { panic!("{:?}", d.effects) };
        assert!(text.contains("<@U0BOB> is on call as *On-call engineer* now"), "{text}");
        assert_eq!(ended(Some(over), &rb, o.ends), Decision::nothing(), "once");
    }
}
