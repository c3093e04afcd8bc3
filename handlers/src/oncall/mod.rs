//! `/oncall`: who is on call for each rotation of the runbook, until when,
//! and who is next; or one role's next shifts. Times are Slack date tokens,
//! so each reader sees them in their own time zone. Handoffs, overrides and
//! swaps are modules of their own.

pub mod handoff;
pub mod overrides;
pub mod plan;
pub mod reminder;
pub mod render;
pub mod report;
pub mod swap;
pub mod usergroup;

use crate::decision::{Decision, UsageError};
use crate::runbook::oncall::Rotation;
use crate::runbook::{Role, Runbook};
use crate::text::{escape, slack_date};
use chrono::{DateTime, Utc};
use std::convert::Infallible;

pub const USAGE: &str = "\
*Usage*
`/oncall` who is on call now for each rotation, until when, and who is next
`/oncall <role>` one rotation's next shifts, e.g. `/oncall on-call engineer`
`/oncall handoff [notes]` post the handoff now, with what is open (a swap, a hand-over mid-shift)
`/oncall override <role> @person <4h | for 2d | until 18:00 | until 2026-12-07 09:00>` put someone on call instead, from now
`/oncall override <role> @person from 2026-12-04 18:00 until 2026-12-07 09:00` the same, planned
`/oncall swap <role> @person [2026-12-14]` offer @person your next shift (or that day's) for their next one
`/oncall swap withdraw SWP-3` take back an offer nobody has answered
Rotations are the runbook's `oncall` section; times are in its time zone.";

/// How many shifts `/oncall <role>` lists.
pub const SHIFTS_SHOWN: usize = 6;

/// `/oncall …`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    /// Every rotation now.
    Now,
    /// One role's next shifts, by the words typed.
    Role(String),
    /// Post the handoff now, with the person's notes.
    Handoff {
        notes: String,
    },
    /// Someone on call instead of the rotation's member, for a while.
    Override(overrides::Request),
    /// Offer one of your shifts for someone else's.
    Swap(swap::Request),
    /// Take back a swap offer nobody has answered.
    Withdraw(crate::subject::SwapId),
}

pub fn parse(text: &str) -> Result<Command, UsageError> {
    let text = crate::text::unescape(text.trim());
    let (word, rest) = crate::text::split_word(&text);
    Ok(match word.to_ascii_lowercase().as_str() {
        "" => Command::Now,
        "help" => Command::Help,
        "handoff" => Command::Handoff { notes: rest.to_owned() },
        "override" => Command::Override(overrides::parse(rest)?),
        "swap" => match swap::withdrawal(rest)? {
            Some(id) => Command::Withdraw(id),
            None => Command::Swap(swap::parse(rest)?),
        },
        _ => Command::Role(text),
    })
}

/// `/oncall` stores nothing: its answers are worked out from the runbook
/// and the time.
pub type OnCallDecision = Decision<Infallible>;

/// What a command needs loaded: what the shift hands over, for a handoff.
pub fn needs_report(command: &Command) -> bool {
    matches!(command, Command::Handoff { .. })
}

pub fn command(
    command: &Command,
    report: &report::ShiftReport,
    who: &crate::decision::Invocation,
    runbook: &Runbook,
    now: DateTime<Utc>,
) -> OnCallDecision {
    match command {
        Command::Handoff { notes } => handoff::on_demand(notes, report, who, runbook, now),
        Command::Help => Decision::reply(USAGE),
        // Routed to `overrides::set`, `swap::propose` and `swap::withdraw`
        // before they get here; answered all the same.
        Command::Override(_) | Command::Swap(_) | Command::Withdraw(_) => Decision::reply(USAGE),
        Command::Now => Decision::reply(now_text(runbook, now)),
        Command::Role(query) => match find(runbook, query) {
            Ok(role) => Decision::reply(role_text(runbook, role, now)),
            Err(why) => Decision::reply(why),
        },
    }
}

fn now_text(runbook: &Runbook, now: DateTime<Utc>) -> String {
    if runbook.oncall.rotations.is_empty() {
        return "There are no on-call rotations in the runbook yet, so each role is paged as its `people` say \
(the seed's are all `@here`). Add a rotation under `oncall:` in the runbook file; the README's \"On call\" section \
says how."
            .to_owned();
    }
    let mut lines = vec!["*On call now*".to_owned()];
    lines.extend(runbook.oncall.rotations.iter().map(|rotation| handoff::now_line(runbook, rotation, now)));
    let others = runbook.roles.iter().filter(|r| runbook.oncall.rotation(&r.id).is_none()).count();
    if others > 0 {
        lines.push(format!(
            "The other {others} roles have no rotation and are paged as their `people` say. `/oncall <role>` lists a rotation's next shifts."
        ));
    }
    lines.join("\n")
}

fn role_text(runbook: &Runbook, role: &Role, now: DateTime<Utc>) -> String {
    let Some(rotation) = runbook.oncall.rotation(&role.id) else {
        let people: Vec<String> = role.people.iter().map(|p| p.to_mrkdwn()).collect();
        return format!(
            "*{}* has no rotation: it is paged as {}. Add one under `oncall:` in the runbook.",
            escape(&role.name),
            people.join(" ")
        );
    };
    let mut lines = vec![format!("*{}*, shifts of {}", escape(&role.name), describe(rotation))];
    for (i, shift) in rotation.shifts_from(runbook.timezone, now, SHIFTS_SHOWN).iter().enumerate() {
        let layer = shift.layer.as_deref().map(|name| format!(" ({})", escape(name))).unwrap_or_default();
        let mark = if i == 0 { " (now)" } else { "" };
        lines.push(format!(
            "• <@{}> {} → {}{layer}{mark}",
            shift.member,
            slack_date(shift.starts),
            slack_date(shift.ends)
        ));
    }
    let covers = runbook.oncall.covers_of(&role.id, now);
    if !covers.is_empty() {
        lines.push("*Overrides*".to_owned());
        lines.extend(
            covers
                .iter()
                .map(|c| format!("• <@{}> {} → {} (OVR-{})", c.member, slack_date(c.starts), slack_date(c.ends), c.id)),
        );
    }
    lines.join("\n")
}

/// "a week", or with layers "a week, with weeknights (a day) over them".
fn describe(rotation: &Rotation) -> String {
    let layers: Vec<String> =
        rotation.layers.iter().map(|l| format!("{} ({})", escape(&l.name), length(l.shift))).collect();
    match &layers[..] {
        [] => length(rotation.shift),
        _ => format!("{}, with {} over them", length(rotation.shift), layers.join(" and then ")),
    }
}

fn length(shift: crate::runbook::oncall::ShiftLength) -> String {
    use crate::runbook::oncall::ShiftLength;
    match shift {
        ShiftLength::Hours(h) => format!("{h} hours"),
        ShiftLength::Days(d) if d % 7 == 0 && d > 7 => format!("{} weeks", d / 7),
        ShiftLength::Days(7) => "a week".to_owned(),
        ShiftLength::Days(1) => "a day".to_owned(),
        ShiftLength::Days(d) => format!("{d} days"),
    }
}

/// The role a person means: its id or name, any case, spaces or dashes, or
/// a unique prefix; else why not, with a "did you mean".
pub(super) fn find<'a>(runbook: &'a Runbook, query: &str) -> Result<&'a Role, String> {
    let norm = |s: &str| s.to_lowercase().replace(['-', '_'], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    let q = norm(query);
    if let Some(role) = runbook.roles.iter().find(|r| norm(&r.id) == q || norm(&r.name) == q) {
        return Ok(role);
    }
    let prefixed: Vec<&Role> =
        runbook.roles.iter().filter(|r| norm(&r.id).starts_with(&q) || norm(&r.name).starts_with(&q)).collect();
    if let [one] = prefixed[..] {
        return Ok(one);
    }
    if prefixed.len() > 1 {
        let names: Vec<String> = prefixed.iter().map(|r| format!("*{}*", escape(&r.name))).collect();
        return Err(format!("`{}` could be {}. Which one?", escape(query), names.join(", ")));
    }
    let names = runbook.roles.iter().map(|r| r.name.as_str());
    let hint = match crate::runbook::load::closest(&q, names) {
        Some(near) => format!(" Did you mean *{}*?", escape(near)),
        None => " `/oncall` lists the rotations.".to_owned(),
    };
    Err(format!("There is no role `{}`.{hint}", escape(&crate::text::truncate(query, 60))))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::decision::Effect;
    use crate::runbook::oncall::{Rotation, ShiftLength};

    /// The seed with a weekly on-call rotation of Alice and Bob, handing
    /// over on Mondays at 09:00 UTC from 2026-11-30.
    pub(crate) fn with_rotation() -> Runbook {
        let mut runbook = Runbook::seed();
        runbook.oncall.rotations.push(Rotation::new(
            "on-call-engineer",
            vec!["U0ALICE".into(), "U0BOB".into()],
            ShiftLength::Days(7),
            chrono::NaiveDateTime::parse_from_str("2026-11-30 09:00", "%Y-%m-%d %H:%M").unwrap(),
        ));
        runbook
    }

    /// Someone typing or clicking in #general.
    pub(crate) fn person(user: &str) -> crate::decision::Invocation {
        crate::decision::Invocation {
            user: user.into(),
            channel: "C0GENERAL".into(),
            team_domain: None,
            response_url: None,
            groups: Vec::new(),
        }
    }

    fn alice() -> crate::decision::Invocation {
        person("U0ALICE")
    }

    /// An instant written as RFC 3339.
    pub(crate) fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn oncall_shows_who_has_each_rotation_until_when_and_who_is_next() {
        let d =
            command(&parse("").unwrap(), &Default::default(), &alice(), &with_rotation(), at("2026-12-01T12:00:00Z"));
        let text = d.reply.text;
        assert!(text.contains("*On-call engineer*: <@U0ALICE> until <!date^"), "{text}");
        assert!(text.contains("2026-12-07 09:00 UTC"), "{text}");
        assert!(
            text.ends_with("`/oncall <role>` lists a rotation's next shifts.") && text.contains(", then <@U0BOB>"),
            "{text}"
        );
    }

    #[test]
    fn oncall_for_a_role_lists_its_next_shifts_and_finds_it_by_name() {
        let d = command(
            &parse("On-call Engineer").unwrap(),
            &Default::default(),
            &alice(),
            &with_rotation(),
            at("2026-12-08T12:00:00Z"),
        );
        let text = d.reply.text;
        assert_eq!(text.lines().count(), 1 + SHIFTS_SHOWN, "{text}");
        assert!(text.lines().nth(1).unwrap().starts_with("• <@U0BOB>") && text.contains("(now)"), "{text}");
        let d = command(
            &parse("on-cal engineer").unwrap(),
            &Default::default(),
            &alice(),
            &with_rotation(),
            at("2026-12-08T12:00:00Z"),
        );
        assert!(d.reply.text.contains("Did you mean *On-call engineer*?"), "{}", d.reply.text);
        let d = command(
            &parse("devops team lead").unwrap(),
            &Default::default(),
            &alice(),
            &with_rotation(),
            at("2026-12-08T12:00:00Z"),
        );
        assert!(d.reply.text.contains("has no rotation: it is paged as <!here>"), "{}", d.reply.text);
    }

    #[test]
    fn without_rotations_oncall_says_how_roles_are_paged_and_how_to_add_one() {
        let d = command(&Command::Now, &Default::default(), &alice(), &Runbook::seed(), at("2026-12-01T12:00:00Z"));
        assert!(d.reply.text.contains("no on-call rotations"), "{}", d.reply.text);
    }

    #[test]
    fn a_handoff_on_demand_posts_the_persons_rotations_with_their_notes() {
        let handoff = parse("handoff all quiet, watch the cache").unwrap();
        let d = command(&handoff, &Default::default(), &alice(), &with_rotation(), at("2026-12-01T12:00:00Z"));
        let [Effect::Say { channel, text, .. }] = &d.effects[..] else { panic!("{:?}", d.effects) };
        assert_eq!(channel, "#devops");
        assert!(
            text.contains("posted by <@U0ALICE>") && text.contains("*Notes:* all quiet, watch the cache"),
            "{text}"
        );
        assert!(text.contains("*On-call engineer*: <@U0ALICE> until") && text.contains("No open incidents."), "{text}");
    }
}
