//! The `/incident` grammar. Words stay stable (tests outside the project
//! type them); a mistake becomes a [`UsageError`] that is shown with help.

use crate::decision::UsageError;
use crate::severity::Severity;
use crate::subject::IncidentId;
use crate::text::{split_word, truncate_word, unescape};

/// Longest title we accept; the alert's header shows the first 150 characters.
pub const MAX_TITLE_CHARS: usize = 250;

pub const USAGE: &str = "\
*Usage*
`/incident p0|p1|p2|p3 <title>` declare an incident
`/incident list` open incidents
`/incident show <id>` state and timeline
`/incident ack <id>` acknowledge (stops the response clock)
`/incident update <id> <text>` status update in the incident's thread
`/incident commander <id> @user` assign the incident commander
`/incident severity <id> p0|p1|p2|p3` re-route and re-time
`/incident resolve <id> [summary]` resolve (starts the post-incident checklist)
`/incident report <id>` post the incident report in its thread
`/incident stats` the last 30 days against the runbook's targets
An id is `INC-42` or `42`.";

/// `/incident …`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Declare { severity: Severity, title: String },
    List,
    Show(IncidentId),
    Ack(IncidentId),
    Resolve { id: IncidentId, summary: Option<String> },
    Update { id: IncidentId, text: String },
    Commander { id: IncidentId, user: String },
    ChangeSeverity { id: IncidentId, severity: Severity },
    Report(IncidentId),
    Stats,
}

fn usage_error(message: impl Into<String>) -> UsageError {
    UsageError { message: message.into(), usage: USAGE }
}

/// Parses the text after `/incident`.
pub fn parse(text: &str) -> Result<Command, UsageError> {
    let text = unescape(text.trim());
    let (word, rest) = split_word(&text);
    let lower = word.to_ascii_lowercase();
    if let Some(severity) = Severity::parse(&lower) {
        return declare(severity, rest);
    }
    match lower.as_str() {
        "" | "help" => Ok(Command::Help),
        "list" | "ls" => Ok(Command::List),
        "stats" => Ok(Command::Stats),
        "report" => Ok(Command::Report(only_id("report", rest)?)),
        "show" => Ok(Command::Show(only_id("show", rest)?)),
        "ack" | "acknowledge" => Ok(Command::Ack(only_id("ack", rest)?)),
        "resolve" => {
            let (id, summary) = id_and_rest("resolve", rest)?;
            Ok(Command::Resolve { id, summary: (!summary.is_empty()).then(|| summary.to_owned()) })
        }
        "update" => {
            let (id, text) = id_and_rest("update", rest)?;
            if text.is_empty() {
                return Err(usage_error("Say what changed: `/incident update INC-42 Rolled back to v1.4.2`."));
            }
            Ok(Command::Update { id, text: text.to_owned() })
        }
        "commander" => {
            let (id, who) = id_and_rest("commander", rest)?;
            let user = mentioned_user(who).ok_or_else(|| {
                usage_error("Mention the commander so Slack can tell who it is: `/incident commander INC-42 @alice`.")
            })?;
            Ok(Command::Commander { id, user })
        }
        "severity" | "sev" => {
            let (id, level) = id_and_rest("severity", rest)?;
            let severity = Severity::parse(level.trim()).ok_or_else(|| {
                usage_error(format!("Unknown severity `{}`: use p0, p1, p2 or p3.", truncate_word(level)))
            })?;
            Ok(Command::ChangeSeverity { id, severity })
        }
        _ if looks_like_severity(&lower) => Err(usage_error(format!(
            "Unknown severity `{}`: use p0 (critical), p1 (high), p2 (medium) or p3 (low).",
            truncate_word(word)
        ))),
        _ => Err(usage_error(format!("Unknown subcommand `{}`.", truncate_word(word)))),
    }
}

fn declare(severity: Severity, title: &str) -> Result<Command, UsageError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(usage_error(format!(
            "Give the incident a title: `/incident {} Production API down`.",
            severity.as_str().to_ascii_lowercase()
        )));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(usage_error(format!(
            "That title is {} characters; keep it under {MAX_TITLE_CHARS} and put details in `/incident update`.",
            title.chars().count()
        )));
    }
    Ok(Command::Declare { severity, title: title.to_owned() })
}

fn looks_like_severity(word: &str) -> bool {
    let digits = word.strip_prefix('p').or_else(|| word.strip_prefix("sev"));
    digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

fn id_and_rest<'a>(sub: &str, rest: &'a str) -> Result<(IncidentId, &'a str), UsageError> {
    let (word, rest) = split_word(rest);
    if word.is_empty() {
        return Err(usage_error(format!("Which incident? `/incident {sub} INC-42`.")));
    }
    let id = word.parse().map_err(|()| {
        usage_error(format!("`{}` is not an incident id; ids look like `INC-42` or `42`.", truncate_word(word)))
    })?;
    Ok((id, rest.trim()))
}

fn only_id(sub: &str, rest: &str) -> Result<IncidentId, UsageError> {
    let (id, extra) = id_and_rest(sub, rest)?;
    if !extra.is_empty() {
        return Err(usage_error(format!("`/incident {sub}` takes only an id.")));
    }
    Ok(id)
}

/// `<@U123>` or `<@U123|alice>` as Slack escapes a mention.
fn mentioned_user(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix("<@")?.strip_suffix('>')?;
    let id = inner.split('|').next()?;
    let valid = !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(text: &str) -> Result<Command, UsageError> {
        parse(text)
    }

    #[test]
    fn declare_takes_severity_and_title() {
        assert_eq!(
            inc("p0 Production API down"),
            Ok(Command::Declare { severity: Severity::P0, title: "Production API down".into() })
        );
        assert_eq!(
            inc("  P2   Slow   builds "),
            Ok(Command::Declare { severity: Severity::P2, title: "Slow   builds".into() })
        );
    }

    #[test]
    fn titles_arrive_unescaped() {
        assert_eq!(
            inc("p1 5xx &gt; 2% &amp; rising"),
            Ok(Command::Declare { severity: Severity::P1, title: "5xx > 2% & rising".into() })
        );
    }

    #[test]
    fn typos_get_usage_help() {
        let e = inc("p9 x").unwrap_err();
        assert!(e.message.contains("Unknown severity `p9`"), "{e}");
        assert!(inc("p0").unwrap_err().message.contains("title"));
        assert!(inc("p0    ").unwrap_err().message.contains("title"));
        assert!(inc("frobnicate").unwrap_err().message.contains("Unknown subcommand `frobnicate`"));
        assert!(inc("ack").unwrap_err().message.contains("Which incident"));
        assert!(inc("ack INC-x").unwrap_err().message.contains("not an incident id"));
        assert!(inc("show 4 5").unwrap_err().message.contains("only an id"));
        assert!(inc("update 4").unwrap_err().message.contains("Say what changed"));
        assert!(inc("commander 4 alice").unwrap_err().message.contains("Mention"));
        assert!(inc(&format!("p1 {}", "x".repeat(MAX_TITLE_CHARS + 1))).is_err());
    }

    #[test]
    fn empty_text_and_help_show_usage() {
        assert_eq!(inc(""), Ok(Command::Help));
        assert_eq!(inc("help"), Ok(Command::Help));
    }

    #[test]
    fn lifecycle_words() {
        assert_eq!(inc("list"), Ok(Command::List));
        assert_eq!(inc("stats"), Ok(Command::Stats));
        assert_eq!(inc("report INC-9"), Ok(Command::Report(IncidentId(9))));
        assert_eq!(inc("show INC-3"), Ok(Command::Show(IncidentId(3))));
        assert_eq!(inc("ack 3"), Ok(Command::Ack(IncidentId(3))));
        assert_eq!(inc("resolve 3"), Ok(Command::Resolve { id: IncidentId(3), summary: None }));
        assert_eq!(
            inc("resolve inc-3 rolled back"),
            Ok(Command::Resolve { id: IncidentId(3), summary: Some("rolled back".into()) })
        );
        assert_eq!(inc("commander 3 <@U123|alice>"), Ok(Command::Commander { id: IncidentId(3), user: "U123".into() }));
        assert_eq!(inc("severity 3 P0"), Ok(Command::ChangeSeverity { id: IncidentId(3), severity: Severity::P0 }));
    }

    #[test]
    fn no_input_panics_the_parser() {
        for text in ["\u{0}", "p0 \u{200b}", "ack 99999999999999999999999", "<@", "commander 1 <@>", "é", "p"] {
            let _ = inc(text);
        }
    }
}
