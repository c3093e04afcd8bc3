//! The `/runbook` grammar, and finding a checklist by the name a person
//! typed (any case, a prefix, or a "did you mean" for a near miss).

use crate::decision::UsageError;
use crate::runbook::{Checklist, Runbook};
use crate::text::escape;

pub const USAGE: &str = "\
*Usage*
`/runbook list` the runbook's checklists, their schedules and next runs
`/runbook start <name>` run a checklist now, in its thread
`/runbook history <name>` its last runs: who, when, how long, flags, skipped steps
Names may be the checklist's id or name, any case, or a prefix.";

/// `/runbook …`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    List,
    Start(String),
    History(String),
}

pub fn parse(text: &str) -> Result<Command, UsageError> {
    let text = crate::text::unescape(text.trim());
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((w, r)) => (w.to_ascii_lowercase(), r.trim().to_owned()),
        None => (text.to_ascii_lowercase(), String::new()),
    };
    let usage = |message: String| UsageError { message, usage: USAGE };
    match word.as_str() {
        "" | "help" => Ok(Command::Help),
        "list" | "ls" => Ok(Command::List),
        "start" | "run" if rest.is_empty() => {
            Err(usage("Which checklist? `/runbook start morning health check`".into()))
        }
        "start" | "run" => Ok(Command::Start(rest)),
        "history" if rest.is_empty() => Err(usage("Which checklist? `/runbook history security review`".into())),
        "history" => Ok(Command::History(rest)),
        other => Err(usage(format!("Unknown subcommand `{}`.", crate::text::truncate(other, 40)))),
    }
}

/// What a name typed by a person refers to.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    One(&'a Checklist),
    Several(Vec<&'a Checklist>),
    None { did_you_mean: Option<&'a Checklist> },
}

/// Finds a checklist by id or name: exact (any case, spaces or dashes),
/// then a unique prefix, else a "did you mean" for a near miss.
pub fn find<'a>(runbook: &'a Runbook, query: &str) -> Found<'a> {
    let norm = |s: &str| s.to_lowercase().replace(['-', '_'], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    let q = norm(query);
    if q.is_empty() {
        return Found::None { did_you_mean: None };
    }
    let all = &runbook.checklists;
    if let Some(c) = all.iter().find(|c| norm(&c.id) == q || norm(&c.name) == q) {
        return Found::One(c);
    }
    let prefixed: Vec<&Checklist> =
        all.iter().filter(|c| norm(&c.id).starts_with(&q) || norm(&c.name).starts_with(&q)).collect();
    match prefixed.len() {
        1 => return Found::One(prefixed[0]),
        n if n > 1 => return Found::Several(prefixed),
        _ => {}
    }
    let names = all.iter().map(|c| c.name.as_str()).chain(all.iter().map(|c| c.id.as_str()));
    let did_you_mean =
        crate::runbook::load::closest(&q, names).and_then(|hit| all.iter().find(|c| c.name == hit || c.id == hit));
    Found::None { did_you_mean }
}

fn not_found(query: &str, found: Found<'_>) -> String {
    let text = match found {
        Found::Several(many) => format!(
            "`{}` could be {}. Which one?",
            escape(query),
            many.iter().map(|c| format!("*{}* (`{}`)", c.name, c.id)).collect::<Vec<_>>().join(", ")
        ),
        Found::None { did_you_mean: Some(c) } => {
            format!("There is no checklist `{}`. Did you mean *{}*? `/runbook start {}`", escape(query), c.name, c.id)
        }
        _ => format!("There is no checklist `{}`. `/runbook list` shows them all.", escape(query)),
    };
    text
}

/// The checklist a name typed by a person means, or the answer saying
/// why there is none (several match, or a near miss).
pub fn by_name<'a>(runbook: &'a Runbook, query: &str) -> Result<&'a Checklist, String> {
    match find(runbook, query) {
        Found::One(c) => Ok(c),
        other => Err(not_found(query, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn morning(rb: &Runbook) -> &Checklist {
        match find(rb, "morning health check") {
            Found::One(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_match_by_id_name_case_and_prefix_with_a_did_you_mean() {
        let rb = Runbook::seed();
        let by_name = morning(&rb).id.clone();
        assert!(matches!(find(&rb, &by_name), Found::One(c) if c.id == by_name));
        assert!(matches!(find(&rb, "MORNING"), Found::One(c) if c.id == by_name));
        assert!(matches!(find(&rb, "mornin health check"), Found::None { did_you_mean: Some(c) } if c.id == by_name));
        assert!(matches!(find(&rb, "zzzz"), Found::None { did_you_mean: None }));
    }

    #[test]
    fn grammar() {
        assert_eq!(parse(""), Ok(Command::Help));
        assert_eq!(parse("list"), Ok(Command::List));
        assert_eq!(parse("start Security Review"), Ok(Command::Start("Security Review".into())));
        assert!(parse("start").unwrap_err().message.contains("Which checklist"));
        assert!(parse("frob").unwrap_err().message.contains("Unknown subcommand"));
    }
}
