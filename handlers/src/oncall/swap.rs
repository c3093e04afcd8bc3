//! On-call swaps: `/oncall swap <role> @person [date]` offers one of the
//! typer's shifts of a rotation for @person's next one. @person answers in
//! a DM with Accept or Decline; an offer nobody answers lapses when the
//! earlier of the two shifts starts. Accepted, the swap is two overrides
//! (each person covers the other's shift), so pages, `/oncall`, handoffs
//! and reminders follow it through the overrides they already follow, and
//! either override's Cancel undoes its half. Each offer is a subject of its
//! own, `SWP-<n>`.
//!
//! Only shifts that have not started can be swapped: an offer must be
//! answerable before the shifts it trades begin, and the rest of a shift in
//! progress is what `/oncall override` is for.

use super::overrides::{self, Override};
use super::USAGE;
use crate::decision::{Decision, Effect, Invocation, UsageError};
use crate::runbook::oncall::{Rotation, Shift};
use crate::runbook::permissions::Action;
use crate::runbook::Runbook;
use crate::subject::{Message, OverrideId, OverrideMessage, Posted, Stamp, SwapId, SwapMessage};
use crate::text::{escape, slack_date};
use crate::timer::{Timer, TimerKind};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How far ahead a shift can be offered: further is a change of the
/// rotation, not a trade between two people.
pub const HORIZON: TimeDelta = TimeDelta::days(366);

/// `/oncall swap …` as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The role, as typed (its id or name).
    pub role: String,
    /// The Slack user id of the person asked.
    pub member: String,
    /// Which of the typer's shifts: the one on call that day (in the
    /// runbook's time zone); `None`: their next one.
    pub on: Option<NaiveDate>,
}

/// `/oncall swap withdraw SWP-3` (or `cancel`): the offer to take back;
/// `None` when the text is an offer instead.
pub fn withdrawal(text: &str) -> Result<Option<SwapId>, UsageError> {
    let (word, rest) = crate::text::split_word(text.trim());
    if !matches!(word.to_ascii_lowercase().as_str(), "withdraw" | "cancel") {
        return Ok(None);
    }
    let typed = rest.trim();
    let digits = typed.get(..4).filter(|p| p.eq_ignore_ascii_case("swp-")).map_or(typed, |_| &typed[4..]);
    match digits.parse() {
        Ok(n) => Ok(Some(SwapId(n))),
        Err(_) => Err(UsageError {
            message: "Which offer? e.g. `/oncall swap withdraw SWP-3` (the number is in the offer's DM and its answer to you)."
                .to_owned(),
            usage: USAGE,
        }),
    }
}

/// Reads what follows `/oncall swap`.
pub fn parse(text: &str) -> Result<Request, UsageError> {
    let usage = |message: &str| UsageError { message: message.to_owned(), usage: USAGE };
    let (role, member, rest) =
        overrides::mention(text, "Swap with whom? Mention them, e.g. `/oncall swap on-call engineer @bob`.")?;
    if role.is_empty() {
        return Err(usage("Which role? e.g. `/oncall swap on-call engineer @bob`."));
    }
    let on = match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] => None,
        [date] => Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
            usage("Which of your shifts? Give a date, e.g. `/oncall swap on-call engineer @bob 2026-12-14`.")
        })?),
        _ => {
            return Err(usage(
                "After the person, only a date picks which of your shifts, e.g. `/oncall swap on-call engineer @bob 2026-12-14`.",
            ))
        }
    };
    Ok(Request { role: role.to_owned(), member, on })
}

/// One shift as a swap names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwappedShift {
    /// The rotation's shift number.
    pub index: i64,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
}

impl SwappedShift {
    fn of(shift: &Shift) -> SwappedShift {
        SwappedShift { index: shift.index, starts: shift.starts, ends: shift.ends }
    }

    fn span(&self) -> String {
        format!("{} → {}", slack_date(self.starts), slack_date(self.ends))
    }
}

/// What the person asked said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Yes: the two overrides that carry it out.
    Accepted {
        at: DateTime<Utc>,
        overrides: [OverrideId; 2],
    },
    Declined {
        at: DateTime<Utc>,
    },
    /// Not an answer: the proposer took the offer back first.
    Withdrawn {
        at: DateTime<Utc>,
    },
}

/// One swap offer as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    pub id: SwapId,
    /// The role id, and its name when it was offered.
    pub role: String,
    pub role_name: String,
    /// Who offers, and the shift of theirs they give away.
    pub proposer: String,
    pub gives: SwappedShift,
    /// Who is asked, and the shift of theirs the proposer would take.
    pub invitee: String,
    pub takes: SwappedShift,
    pub at: DateTime<Utc>,
    /// The team channel, as the runbook names it: where the overrides are
    /// announced.
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// Nobody answered in time, and the offer says so.
    #[serde(default)]
    pub expired: bool,
    /// Where its DM is in Slack; the store fills it in on load.
    #[serde(skip)]
    pub posted: Posted,
}

impl Swap {
    /// Waiting for an answer.
    pub fn is_open(&self) -> bool {
        self.answer.is_none() && !self.expired
    }

    /// When the offer lapses: the earlier of the two shifts starts.
    pub fn expires(&self) -> DateTime<Utc> {
        self.gives.starts.min(self.takes.starts)
    }
}

/// A swap decision's writes: the offer, and when it is accepted the two
/// overrides that carry it out, committed together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapChange {
    pub swap: Swap,
    pub overrides: Vec<Override>,
}

pub type SwapDecision = Decision<SwapChange>;

/// What a swap decision needs loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// A number for a new offer.
    New,
    One(SwapId),
    /// The offer, and numbers for the two overrides an Accept makes.
    Accept(SwapId),
}

/// What was loaded for a [`Need`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// A number for the offer, and the offers nobody has answered yet.
    New {
        id: SwapId,
        open: Vec<Swap>,
    },
    One(Option<Swap>),
    Accept {
        found: Option<Swap>,
        overrides: [OverrideId; 2],
    },
}

/// `/oncall swap …`: finds the two shifts, stores the offer, sends it to
/// the person asked and sets when it lapses. A shift already in an offer
/// nobody has answered (`open`) is not offered again: two answers could
/// then both hand it over.
pub fn propose(
    request: &Request,
    id: SwapId,
    open: &[Swap],
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> SwapDecision {
    if let Err(refused) = runbook.may(Action::OverrideOnCall, who, None) {
        return refused.decision(who);
    }
    let role = match super::find(runbook, &request.role) {
        Ok(role) => role,
        Err(why) => return Decision::reply(why),
    };
    let name = escape(&role.name);
    let Some(rotation) = runbook.oncall.rotation(&role.id) else {
        return Decision::reply(format!(
            "*{name}* has no rotation, so it has no shifts to swap: it is paged as its `people` say."
        ));
    };
    let everyone = rotation.everyone();
    let members = || everyone.iter().map(|m| format!("<@{m}>")).collect::<Vec<_>>().join(", ");
    if !everyone.contains(&who.user.as_str()) {
        return Decision::reply(format!(
            "You are not in the *{name}* rotation ({}), so you have no shift to swap. `/oncall override` puts someone on call instead.",
            members()
        ));
    }
    if request.member == who.user {
        return Decision::reply("Those are the same shift: swap with someone else in the rotation.");
    }
    if !everyone.contains(&request.member.as_str()) {
        return Decision::reply(format!(
            "<@{}> is not in the *{name}* rotation ({}), so they have no shift to swap. `/oncall override {} <@{}> …` puts them on call instead.",
            request.member,
            members(),
            role.id,
            request.member
        ));
    }
    let zone = runbook.timezone;
    let gives = match request.on {
        None => upcoming(rotation, zone, &who.user, now).next(),
        Some(day) => match on_day(rotation, zone, &who.user, day, now) {
            Ok(shift) => Some(shift),
            Err(why) => return Decision::reply(why),
        },
    };
    let Some(gives) = gives else {
        return Decision::reply(format!("You have no *{name}* shift in the next year to swap."));
    };
    let Some(takes) = upcoming(rotation, zone, &request.member, now).next() else {
        return Decision::reply(format!("<@{}> has no *{name}* shift in the next year to swap.", request.member));
    };
    let pending = open.iter().filter(|s| s.role == role.id && s.is_open()).find(|s| {
        let starts = [s.gives.starts, s.takes.starts];
        starts.contains(&gives.starts) || starts.contains(&takes.starts)
    });
    if let Some(pending) = pending {
        let whose = if pending.proposer == who.user { "Your" } else { "That" };
        return Decision::reply(format!(
            "{whose} offer {} (<@{}>'s shift {} for <@{}>'s {}) is still waiting for an answer, and this one would trade one of the same shifts. \
             Wait for it, or take it back with `/oncall swap withdraw {}` if it is yours.",
            pending.id,
            pending.proposer,
            pending.gives.span(),
            pending.invitee,
            pending.takes.span(),
            pending.id
        ));
    }
    let swap = Swap {
        id,
        role: role.id.clone(),
        role_name: role.name.clone(),
        proposer: who.user.clone(),
        gives: SwappedShift::of(&gives),
        invitee: request.member.clone(),
        takes: SwappedShift::of(&takes),
        at: now,
        channel: runbook.channels.team.clone(),
        answer: None,
        expired: false,
        posted: Posted::default(),
    };
    let mut d = Decision::reply(format!(
        "📨 Sent to <@{}> ({id}): you would give your *{name}* shift {} and take theirs, {}. If they do not answer, the offer lapses {}.",
        swap.invitee,
        swap.gives.span(),
        swap.takes.span(),
        slack_date(swap.expires())
    ));
    d.effects.push(Effect::Post(Message::Swap(id, SwapMessage::Offer)));
    d.timers.push(Timer { due: swap.expires(), kind: TimerKind::SwapExpires { swap: id } });
    d.change = Some(SwapChange { swap, overrides: Vec::new() });
    d
}

/// `member`'s shifts of `rotation` that start after `now`, soonest first,
/// within [`HORIZON`].
fn upcoming<'a>(
    rotation: &'a Rotation,
    zone: Tz,
    member: &'a str,
    now: DateTime<Utc>,
) -> impl Iterator<Item = Shift> + 'a {
    rotation
        .shifts(zone, now)
        .skip(1)
        .take_while(move |shift| shift.starts <= now + HORIZON)
        .filter(move |shift| shift.member == member)
}

/// `member`'s shift on call some time on `day` (in the runbook's zone);
/// the one that starts that day when two are. Else why not.
fn on_day(rotation: &Rotation, zone: Tz, member: &str, day: NaiveDate, now: DateTime<Utc>) -> Result<Shift, String> {
    use crate::runbook::oncall::local;
    let day_starts = local(zone, day.and_time(chrono::NaiveTime::MIN));
    let day_ends = local(zone, day.succ_opt().unwrap_or(NaiveDate::MAX).and_time(chrono::NaiveTime::MIN));
    if day_ends <= now {
        return Err(format!("{day} is over: pick a day still to come."));
    }
    if day_starts > now + HORIZON {
        return Err(format!("{day} is more than a year away."));
    }
    let mine: Vec<Shift> = rotation
        .shifts(zone, day_starts)
        .take_while(|shift| shift.starts < day_ends)
        .filter(|shift| shift.member == member)
        .collect();
    let chosen = mine.iter().find(|s| s.starts >= day_starts).or(mine.first());
    match chosen {
        None => Err(format!("You have no shift on {day}. `/oncall <role>` lists the rotation's next shifts.")),
        Some(shift) if shift.starts <= now => Err(format!(
            "Your shift on {day} has started, so it cannot be swapped; `/oncall override` hands over the rest of it."
        )),
        Some(shift) => Ok(shift.clone()),
    }
}

/// **Accept** in the DM: two overrides, each person on call for the
/// other's shift, announced in the team channel; the proposer is told.
pub fn accept(
    found: Option<Swap>,
    overrides: [OverrideId; 2],
    id: SwapId,
    who: &Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> SwapDecision {
    let mut swap = match answerable(found, id, who, now) {
        Ok(swap) => swap,
        Err(refused) => return *refused,
    };
    // The runbook may have moved the rotation since the offer: then these
    // are no longer the shifts the two people agreed to trade.
    let still = |shift: &SwappedShift, member: &str| {
        runbook.oncall.rotation(&swap.role).is_some_and(|r| {
            let now = r.shift(runbook.timezone, shift.index);
            now.member == member && now.starts == shift.starts && now.ends == shift.ends
        })
    };
    if !still(&swap.gives, &swap.proposer) || !still(&swap.takes, &swap.invitee) {
        return note(
            who,
            format!(
                "The *{}* rotation changed since {id} was offered; ask <@{}> to offer it again.",
                escape(&swap.role_name),
                swap.proposer
            ),
        );
    }
    swap.answer = Some(Answer::Accepted { at: now, overrides });
    let by = Stamp { user: who.user.clone(), at: now };
    let cover = |oid: OverrideId, member: &str, covers: &str, shift: &SwappedShift| Override {
        id: oid,
        role: swap.role.clone(),
        role_name: swap.role_name.clone(),
        member: member.to_owned(),
        covers: covers.to_owned(),
        starts: shift.starts,
        ends: shift.ends,
        by: by.clone(),
        channel: swap.channel.clone(),
        cancelled: None,
        ended: false,
        swap: Some(id),
        posted: Posted::default(),
    };
    let [first, second] = overrides;
    let made = vec![
        cover(first, &swap.invitee, &swap.proposer, &swap.gives),
        cover(second, &swap.proposer, &swap.invitee, &swap.takes),
    ];
    let mut d = Decision::nothing();
    d.effects.push(Effect::Refresh(Message::Swap(id, SwapMessage::Offer)));
    for o in &made {
        d.effects.push(Effect::Post(Message::Override(o.id, OverrideMessage::Announcement)));
        d.timers.push(Timer { due: o.ends, kind: TimerKind::OverrideEnds { cover: o.id } });
    }
    d.effects.push(Effect::Say {
        channel: swap.proposer.clone(),
        thread_ts: None,
        text: format!(
            "✅ <@{}> accepted {id}: they are on call as *{}* for your shift {} ({first}), and you for theirs, {} ({second}).",
            swap.invitee,
            escape(&swap.role_name),
            swap.gives.span(),
            swap.takes.span()
        ),
    });
    d.change = Some(SwapChange { swap, overrides: made });
    d
}

/// **Decline** in the DM: nothing changes, and the proposer is told.
pub fn decline(found: Option<Swap>, id: SwapId, who: &Invocation, now: DateTime<Utc>) -> SwapDecision {
    let mut swap = match answerable(found, id, who, now) {
        Ok(swap) => swap,
        Err(refused) => return *refused,
    };
    swap.answer = Some(Answer::Declined { at: now });
    let mut d = Decision::nothing();
    d.effects = vec![
        Effect::Refresh(Message::Swap(id, SwapMessage::Offer)),
        Effect::Say {
            channel: swap.proposer.clone(),
            thread_ts: None,
            text: format!(
                "❌ <@{}> declined {id} (your *{}* shift {} for theirs, {}). Nothing changes.",
                swap.invitee,
                escape(&swap.role_name),
                swap.gives.span(),
                swap.takes.span()
            ),
        },
    ];
    d.change = Some(SwapChange { swap, overrides: Vec::new() });
    d
}

/// `/oncall swap withdraw SWP-n`: the proposer takes back an offer nobody
/// has answered; the DM says so and the person asked is told.
pub fn withdraw(found: Option<Swap>, id: SwapId, who: &Invocation, now: DateTime<Utc>) -> SwapDecision {
    let Some(mut swap) = found else {
        return Decision::reply(format!("There is no swap offer {id}."));
    };
    if who.user != swap.proposer {
        return Decision::reply(format!("Only <@{}>, who offered {id}, can take it back.", swap.proposer));
    }
    if !swap.is_open() {
        return Decision::reply(format!("{id} was answered or lapsed already; there is nothing to take back."));
    }
    swap.answer = Some(Answer::Withdrawn { at: now });
    let mut d = Decision::reply(format!("↩️ You took back {id}. Nothing changes."));
    d.effects = vec![
        Effect::Refresh(Message::Swap(id, SwapMessage::Offer)),
        Effect::Say {
            channel: swap.invitee.clone(),
            thread_ts: None,
            text: format!(
                "↩️ <@{}> took back {id}, the *{}* swap. Nothing changes.",
                swap.proposer,
                escape(&swap.role_name)
            ),
        },
    ];
    d.change = Some(SwapChange { swap, overrides: Vec::new() });
    d
}

/// The offer as it must be for `who` to answer it now, else the note that
/// tells them why they cannot.
fn answerable(
    found: Option<Swap>,
    id: SwapId,
    who: &Invocation,
    now: DateTime<Utc>,
) -> Result<Swap, Box<SwapDecision>> {
    let Some(swap) = found else {
        return Err(Box::new(note(who, format!("{id} is no longer stored."))));
    };
    if who.user != swap.invitee {
        return Err(Box::new(note(
            who,
            format!("Only <@{}> can answer {id}: <@{}> offered the swap to them.", swap.invitee, swap.proposer),
        )));
    }
    let already = match (&swap.answer, swap.expired) {
        (Some(Answer::Accepted { .. }), _) => Some("accepted it already"),
        (Some(Answer::Declined { .. }), _) => Some("declined it already"),
        (Some(Answer::Withdrawn { .. }), _) => Some("cannot answer it any more: it was taken back"),
        (None, true) => Some("cannot answer it any more: it lapsed"),
        (None, false) if now >= swap.expires() => {
            Some("cannot answer it any more: the first of its shifts has started")
        }
        (None, false) => None,
    };
    match already {
        Some(why) => Err(Box::new(note(who, format!("You {why} ({id}).")))),
        None => Ok(swap),
    }
}

/// The earlier shift starts with no answer: the offer lapses, the DM says
/// so and the proposer is told. An answered offer does nothing.
pub fn expired(found: Option<Swap>, now: DateTime<Utc>) -> SwapDecision {
    let Some(mut swap) = found.filter(|s| s.is_open() && now >= s.expires()) else {
        return Decision::nothing();
    };
    swap.expired = true;
    let mut d = Decision::nothing();
    d.effects = vec![
        Effect::Refresh(Message::Swap(swap.id, SwapMessage::Offer)),
        Effect::Say {
            channel: swap.proposer.clone(),
            thread_ts: None,
            text: format!(
                "⌛ {} lapsed: <@{}> did not answer before {}. Nothing changes.",
                swap.id,
                swap.invitee,
                slack_date(swap.expires())
            ),
        },
    ];
    d.change = Some(SwapChange { swap, overrides: Vec::new() });
    d
}

fn note(who: &Invocation, text: String) -> SwapDecision {
    let mut d = Decision::nothing();
    d.effects = vec![Effect::Ephemeral { channel: who.channel.clone(), user: who.user.clone(), text }];
    d
}

/// The offer in the DM, as the swap is now.
pub fn message(swap: &Swap) -> crate::blocks::SlackMessage {
    use crate::codec::{Button, SwapButton};
    let name = escape(&swap.role_name);
    let text = match (&swap.answer, swap.expired) {
        (Some(Answer::Accepted { at, overrides: [first, second] }), _) => format!(
            "✅ *{}* accepted {}: you are on call as *{name}* {} ({first}), and <@{}> for your shift {} ({second}).",
            swap.id,
            slack_date(*at),
            swap.gives.span(),
            swap.proposer,
            swap.takes.span()
        ),
        (Some(Answer::Declined { at }), _) => {
            format!("❌ *{}* declined {}: <@{}> keeps their *{name}* shift. Nothing changes.", swap.id, slack_date(*at), swap.proposer)
        }
        (Some(Answer::Withdrawn { at }), _) => {
            format!("↩️ *{}* <@{}> took the offer back {}. Nothing changes.", swap.id, swap.proposer, slack_date(*at))
        }
        (None, true) => format!(
            "⌛ *{}* lapsed: nobody answered before {}. Nothing changes.",
            swap.id,
            slack_date(swap.expires())
        ),
        (None, false) => format!(
            "🔄 *{}* <@{}> asks to swap *{name}* shifts with you.\n• You would take theirs: {}\n• They would take yours: {}\nAnswer before {}, when the offer lapses.",
            swap.id,
            swap.proposer,
            swap.gives.span(),
            swap.takes.span(),
            slack_date(swap.expires())
        ),
    };
    let mut blocks = vec![serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
    if swap.is_open() {
        blocks.push(serde_json::json!({
            "type": "actions",
            "elements": [
                crate::blocks::button(Button::Swap(swap.id, SwapButton::Accept), "Accept", Some("primary")),
                crate::blocks::button(Button::Swap(swap.id, SwapButton::Decline), "Decline", None),
            ],
        }));
    }
    crate::blocks::SlackMessage { text, blocks: serde_json::Value::Array(blocks) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::tests::with_rotation as runbook;
    use crate::oncall::tests::{at, person};

    const ID: SwapId = SwapId(4);
    const COVERS: [OverrideId; 2] = [OverrideId(7), OverrideId(8)];

    /// Tuesday 2026-12-01, in Alice's week; Bob has the next, Alice the one after.
    fn now() -> DateTime<Utc> {
        at("2026-12-01T12:00:00Z")
    }

    /// Alice offers Bob her next shift (2026-12-14) for his (2026-12-07).
    fn offered() -> Swap {
        let d =
            propose(&parse("on-call engineer <@U0BOB|bob>").unwrap(), ID, &[], &person("U0ALICE"), &runbook(), now());
        d.change.expect("stored").swap
    }

    #[test]
    fn a_swap_is_read_with_its_person_and_an_optional_date() {
        let r = parse("on-call engineer <@U0BOB|bob>").unwrap();
        assert_eq!((r.role.as_str(), r.member.as_str(), r.on), ("on-call engineer", "U0BOB", None));
        let r = parse("on-call <@U0BOB> 2026-12-14").unwrap();
        assert_eq!(r.on, NaiveDate::from_ymd_opt(2026, 12, 14));
        for (typed, says) in [
            ("", "Swap with whom?"),
            ("on-call bob", "Swap with whom?"),
            ("<@U0BOB>", "Which role?"),
            ("on-call <!subteam^S1>", "Mention one person"),
            ("on-call <@U0BOB> next week", "only a date"),
            ("on-call <@U0BOB> 14/12", "Give a date"),
        ] {
            let e = parse(typed).unwrap_err();
            assert!(e.message.contains(says), "{typed}: {}", e.message);
            assert!(e.reply().text.contains("*Usage*"), "{typed}");
        }
    }

    #[test]
    fn a_shift_already_in_an_unanswered_offer_is_not_offered_again() {
        let typed = parse("on-call engineer <@U0BOB>").unwrap();
        let first = propose(&typed, ID, &[], &person("U0ALICE"), &runbook(), now()).change.expect("stored").swap;
        let again = propose(&typed, SwapId(5), std::slice::from_ref(&first), &person("U0ALICE"), &runbook(), now());
        assert!(again.change.is_none() && again.effects.is_empty() && again.timers.is_empty());
        assert!(
            again.reply.text.starts_with("Your offer SWP-4 (<@U0ALICE>'s shift")
                && again.reply.text.contains("/oncall swap withdraw SWP-4"),
            "{}",
            again.reply.text
        );
        // Nor can Bob offer Alice his shift while hers waits for his answer.
        let bob = propose(
            &parse("on-call engineer <@U0ALICE>").unwrap(),
            SwapId(5),
            std::slice::from_ref(&first),
            &person("U0BOB"),
            &runbook(),
            now(),
        );
        assert!(bob.change.is_none() && bob.reply.text.starts_with("That offer SWP-4"), "{}", bob.reply.text);
        // Answered, it no longer holds the shifts.
        let mut declined = first.clone();
        declined.answer = Some(Answer::Declined { at: now() });
        let after = propose(&typed, SwapId(5), &[declined], &person("U0ALICE"), &runbook(), now());
        assert!(after.change.is_some(), "{}", after.reply.text);
    }

    #[test]
    fn an_offer_trades_the_typers_next_shift_for_the_others_next_one_and_lapses_when_the_first_starts() {
        let d = propose(&parse("on-call engineer <@U0BOB>").unwrap(), ID, &[], &person("U0ALICE"), &runbook(), now());
        let c = d.change.clone().expect("stored");
        assert!(c.overrides.is_empty());
        let s = c.swap;
        assert_eq!((s.gives.starts, s.gives.ends), (at("2026-12-14T09:00:00Z"), at("2026-12-21T09:00:00Z")));
        assert_eq!((s.takes.starts, s.takes.ends), (at("2026-12-07T09:00:00Z"), at("2026-12-14T09:00:00Z")));
        assert_eq!(s.expires(), s.takes.starts, "the earlier of the two");
        assert_eq!(d.effects, vec![Effect::Post(Message::Swap(ID, SwapMessage::Offer))]);
        assert_eq!(d.timers, vec![Timer { due: s.expires(), kind: TimerKind::SwapExpires { swap: ID } }]);
        assert!(d.reply.text.starts_with("📨 Sent to <@U0BOB> (SWP-4)"), "{}", d.reply.text);
        assert!(d.reply.text.contains("the offer lapses <!date^"), "{}", d.reply.text);

        let dm = message(&s);
        assert!(
            dm.text.contains("🔄 *SWP-4* <@U0ALICE> asks to swap *On-call engineer* shifts with you"),
            "{}",
            dm.text
        );
        assert!(dm.text.contains("2026-12-14 09:00 UTC") && dm.text.contains("2026-12-07 09:00 UTC"), "{}", dm.text);
        let blocks = dm.blocks.to_string();
        assert!(blocks.contains("swap.accept") && blocks.contains("swap.decline"), "{blocks}");

        // A date picks which of her shifts: the one that starts that day.
        let d = propose(&parse("on-call <@U0BOB> 2026-12-28").unwrap(), ID, &[], &person("U0ALICE"), &runbook(), now());
        let s = d.change.expect("stored").swap;
        assert_eq!(s.gives.starts, at("2026-12-28T09:00:00Z"));
        assert_eq!(s.takes.starts, at("2026-12-07T09:00:00Z"), "Bob's next one all the same");
    }

    #[test]
    fn an_offer_that_cannot_be_made_changes_nothing_and_says_why() {
        let rb = runbook();
        for (who, typed, says) in [
            ("U0ALICE", "devops team lead <@U0BOB>", "has no rotation"),
            ("U0ALICE", "on-cal engineer <@U0BOB>", "Did you mean *On-call engineer*?"),
            ("U0CAROL", "on-call <@U0BOB>", "You are not in the *On-call engineer* rotation"),
            ("U0ALICE", "on-call <@U0CAROL>", "<@U0CAROL> is not in the *On-call engineer* rotation"),
            ("U0ALICE", "on-call <@U0ALICE>", "the same shift"),
            ("U0ALICE", "on-call <@U0BOB> 2026-12-09", "You have no shift on 2026-12-09"),
            ("U0ALICE", "on-call <@U0BOB> 2026-12-01", "has started"),
            ("U0ALICE", "on-call <@U0BOB> 2026-11-20", "is over"),
            ("U0ALICE", "on-call <@U0BOB> 2028-01-03", "more than a year away"),
        ] {
            let d = propose(&parse(typed).unwrap(), ID, &[], &person(who), &rb, now());
            assert!(d.change.is_none() && d.effects.is_empty() && d.timers.is_empty(), "{typed}");
            assert!(d.reply.text.contains(says), "{typed}: {}", d.reply.text);
        }
    }

    #[test]
    fn accepted_it_is_two_overrides_that_pages_follow_and_the_proposer_is_told() {
        let mut rb = runbook();
        let d = accept(Some(offered()), COVERS, ID, &person("U0BOB"), &rb, now());
        let c = d.change.clone().expect("stored");
        assert!(!c.swap.is_open());
        let [mine, his] = &c.overrides[..] else { panic!("{:?}", c.overrides) };
        assert_eq!((mine.id, mine.member.as_str(), mine.covers.as_str()), (COVERS[0], "U0BOB", "U0ALICE"));
        assert_eq!((mine.starts, mine.ends), (c.swap.gives.starts, c.swap.gives.ends));
        assert_eq!((his.id, his.member.as_str(), his.covers.as_str()), (COVERS[1], "U0ALICE", "U0BOB"));
        assert_eq!((his.starts, his.ends), (c.swap.takes.starts, c.swap.takes.ends));
        assert!(overrides::message(mine).text.contains("instead of <@U0ALICE>") && mine.swap == Some(ID));
        assert!(overrides::message(mine).text.contains("Swapped (SWP-4), agreed by <@U0BOB>."));
        assert!(overrides::message(mine).blocks.to_string().contains("override.cancel"), "Cancel still works");

        assert_eq!(d.effects[0], Effect::Refresh(Message::Swap(ID, SwapMessage::Offer)));
        assert_eq!(d.effects[1], Effect::Post(Message::Override(COVERS[0], OverrideMessage::Announcement)));
        assert_eq!(d.effects[2], Effect::Post(Message::Override(COVERS[1], OverrideMessage::Announcement)));
        let Effect::Say { channel, text, .. } = &d.effects[3] else { panic!("{:?}", d.effects) };
        assert!(channel == "U0ALICE" && text.contains("✅ <@U0BOB> accepted SWP-4"), "{text}");
        assert_eq!(d.timers.len(), 2, "each override ends by itself");
        assert!(
            message(&c.swap).text.contains("✅ *SWP-4* accepted")
                && !message(&c.swap).blocks.to_string().contains("swap.accept")
        );

        // With the overrides folded in, Bob has Alice's week and she his.
        rb.oncall.covers = c.overrides.iter().map(Override::cover).collect();
        let on_call = |when: &str| rb.oncall.on_call("on-call-engineer", rb.timezone, at(when)).unwrap().member;
        assert_eq!(on_call("2026-12-08T12:00:00Z"), "U0ALICE");
        assert_eq!(on_call("2026-12-15T12:00:00Z"), "U0BOB");
        assert_eq!(on_call("2026-12-22T12:00:00Z"), "U0BOB", "the shifts after are as before");

        // Answering twice does nothing more.
        let again = accept(Some(c.swap.clone()), COVERS, ID, &person("U0BOB"), &rb, now());
        assert!(again.change.is_none());
        assert!(matches!(&again.effects[..], [Effect::Ephemeral { text, .. }] if text.contains("accepted it already")));
        assert!(decline(Some(c.swap), ID, &person("U0BOB"), now()).change.is_none());
    }

    #[test]
    fn the_proposer_takes_an_offer_back_before_it_is_answered_and_it_can_no_longer_be_accepted() {
        assert_eq!(withdrawal("withdraw SWP-4").unwrap(), Some(ID));
        assert_eq!(withdrawal("cancel swp-4").unwrap(), Some(ID));
        assert_eq!(withdrawal("on-call engineer <@U0BOB>").unwrap(), None, "an offer, not a withdrawal");
        assert!(withdrawal("withdraw the last one").unwrap_err().message.contains("Which offer?"));

        let bob = withdraw(Some(offered()), ID, &person("U0BOB"), now());
        assert!(bob.change.is_none() && bob.reply.text.contains("Only <@U0ALICE>, who offered SWP-4"));
        assert!(withdraw(None, ID, &person("U0ALICE"), now()).reply.text.contains("no swap offer SWP-4"));

        let d = withdraw(Some(offered()), ID, &person("U0ALICE"), now());
        assert!(d.reply.text.contains("You took back SWP-4"));
        let taken = d.change.clone().expect("stored").swap;
        assert!(!taken.is_open());
        let Effect::Say { channel, text, .. } = &d.effects[1] else { panic!("{:?}", d.effects) };
        assert!(channel == "U0BOB" && text.contains("took back SWP-4"), "{text}");
        let shown = message(&taken);
        assert!(shown.text.contains("took the offer back") && !shown.blocks.to_string().contains("swap.accept"));

        let late = accept(Some(taken.clone()), COVERS, ID, &person("U0BOB"), &runbook(), now());
        assert!(late.change.is_none(), "nothing to accept");
        assert!(matches!(&late.effects[..], [Effect::Ephemeral { text, .. }] if text.contains("taken back")));
        assert!(withdraw(Some(taken.clone()), ID, &person("U0ALICE"), now()).change.is_none(), "twice");
        assert_eq!(expired(Some(taken), at("2026-12-07T09:00:00Z")), Decision::nothing());
    }

    #[test]
    fn only_the_person_asked_may_answer_and_anyone_else_is_told_who_can() {
        for clicker in ["U0ALICE", "U0CAROL"] {
            let d = accept(Some(offered()), COVERS, ID, &person(clicker), &runbook(), now());
            assert!(d.change.is_none() && d.timers.is_empty(), "{clicker}");
            let [Effect::Ephemeral { user, text, .. }] = &d.effects[..] else { panic!("{:?}", d.effects) };
            assert_eq!(user, clicker);
            assert!(text.contains("Only <@U0BOB> can answer SWP-4"), "{text}");
            assert!(decline(Some(offered()), ID, &person(clicker), now()).change.is_none(), "{clicker}");
        }
        let gone = accept(None, COVERS, ID, &person("U0BOB"), &runbook(), now());
        assert!(gone.change.is_none());
    }

    #[test]
    fn declined_nothing_changes_and_the_proposer_is_told() {
        let d = decline(Some(offered()), ID, &person("U0BOB"), now());
        let c = d.change.clone().expect("stored");
        assert!(c.overrides.is_empty() && d.timers.is_empty());
        assert!(matches!(c.swap.answer, Some(Answer::Declined { .. })));
        let [Effect::Refresh(_), Effect::Say { channel, text, .. }] = &d.effects[..] else { panic!("{:?}", d.effects) };
        assert!(
            channel == "U0ALICE" && text.contains("❌ <@U0BOB> declined SWP-4") && text.contains("Nothing changes")
        );
        assert!(message(&c.swap).text.contains("declined"));
        assert!(expired(Some(c.swap), at("2026-12-07T09:00:00Z")).change.is_none(), "answered: the lapse does nothing");
    }

    #[test]
    fn an_offer_nobody_answers_lapses_once_when_the_first_shift_starts() {
        let s = offered();
        assert_eq!(expired(Some(s.clone()), s.expires() - TimeDelta::seconds(1)), Decision::nothing(), "not yet");
        let late = accept(Some(s.clone()), COVERS, ID, &person("U0BOB"), &runbook(), s.expires());
        assert!(late.change.is_none(), "too late to accept even before the timer ran");
        let d = expired(Some(s.clone()), s.expires());
        let lapsed = d.change.clone().expect("marked").swap;
        assert!(lapsed.expired && message(&lapsed).text.contains("⌛ *SWP-4* lapsed"));
        assert!(!message(&lapsed).blocks.to_string().contains("swap.accept"));
        assert!(
            matches!(&d.effects[1], Effect::Say { channel, text, .. } if channel == "U0ALICE" && text.contains("did not answer"))
        );
        assert_eq!(expired(Some(lapsed), s.expires()), Decision::nothing(), "once");
    }

    #[test]
    fn an_offer_made_before_the_rotation_changed_cannot_be_accepted() {
        let mut rb = runbook();
        rb.oncall.rotations[0].members = vec!["U0BOB".into(), "U0ALICE".into()];
        let d = accept(Some(offered()), COVERS, ID, &person("U0BOB"), &rb, now());
        assert!(d.change.is_none());
        assert!(matches!(&d.effects[..], [Effect::Ephemeral { text, .. }] if text.contains("rotation changed")));
    }
}
