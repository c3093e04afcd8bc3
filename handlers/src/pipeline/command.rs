//! The `/pipeline` grammar: what a person typed, parsed into a
//! [`Command`], or one line saying what was wrong followed by the usage.

use crate::decision::UsageError;
use crate::github::Repo;

pub const USAGE: &str = "\
*Usage*
`/pipeline status [owner/repo]` the last 24 h of workflow runs against the runbook's KPIs
`/pipeline runs [workflow] [branch]` the latest runs of the configured repository, optionally of one workflow and branch
`/pipeline deploy <environment> [ref]` deploy through the runbook's workflow, after confirmation
`/pipeline rollback <environment> <ref>` roll back to a ref through the runbook's workflow, after confirmation
A workflow is named by its name (quote it when it has spaces) or its file, e.g. `ci.yml`.";

/// `/pipeline …`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    /// The KPIs of the last 24 h; `None`: the configured repository.
    Status {
        repo: Option<Repo>,
    },
    /// Of the configured repository: a branch name may hold a `/`.
    Runs {
        workflow: Option<String>,
        branch: Option<String>,
    },
    Deploy {
        environment: String,
        git_ref: Option<String>,
    },
    Rollback {
        environment: String,
        git_ref: Option<String>,
    },
}

pub fn parse(text: &str) -> Result<Command, UsageError> {
    let text = crate::text::unescape(text.trim());
    let usage = |message: String| UsageError { message, usage: USAGE };
    let words = words(&text).map_err(usage)?;
    let (first, rest) = match words.split_first() {
        None => return Ok(Command::Help),
        Some((first, rest)) => (first.to_ascii_lowercase(), rest),
    };
    let mut args = rest.iter().cloned();
    let too_many = |what: &str| usage(format!("`/pipeline {what}` takes fewer words than that."));
    match first.as_str() {
        "help" => Ok(Command::Help),
        "status" => {
            let repo = match args.next() {
                None => None,
                Some(word) => Some(Repo::parse(&word).ok_or_else(|| {
                    usage(format!("`{}` is not a repository like `octo-org/shop`.", crate::text::truncate(&word, 60)))
                })?),
            };
            match args.next() {
                None => Ok(Command::Status { repo }),
                Some(_) => Err(too_many("status")),
            }
        }
        "runs" => {
            let (workflow, branch) = (args.next(), args.next());
            if args.next().is_some() {
                return Err(too_many("runs"));
            }
            Ok(Command::Runs { workflow, branch })
        }
        verb @ ("deploy" | "rollback") => {
            let Some(environment) = args.next() else {
                return Err(usage(format!("Which environment? `/pipeline {verb} production`")));
            };
            let git_ref = args.next();
            if args.next().is_some() {
                return Err(too_many(verb));
            }
            Ok(if verb == "deploy" {
                Command::Deploy { environment, git_ref }
            } else {
                Command::Rollback { environment, git_ref }
            })
        }
        other => Err(usage(format!("Unknown subcommand `{}`.", crate::text::truncate(other, 40)))),
    }
}

/// Splits on whitespace, keeping "quoted words" together (a workflow's
/// name may have spaces; Slack may send curly quotes).
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if matches!(c, '"' | '“' | '”') {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    Some('"' | '“' | '”') => break,
                    Some(c) => word.push(c),
                    None => return Err("A quote is not closed.".into()),
                }
            }
            if !word.trim().is_empty() {
                words.push(word.trim().to_owned());
            }
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            word.push(c);
            chars.next();
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(text: &str) -> Option<Repo> {
        Repo::parse(text)
    }

    #[test]
    fn status_takes_an_optional_repository() {
        assert_eq!(parse(""), Ok(Command::Help));
        assert_eq!(parse("status"), Ok(Command::Status { repo: None }));
        assert_eq!(parse("STATUS octo-org/shop"), Ok(Command::Status { repo: repo("octo-org/shop") }));
        assert!(parse("status octo-org/shop main").unwrap_err().message.contains("fewer words"));
        assert!(parse("status a/b/c").unwrap_err().message.contains("not a repository"));
    }

    #[test]
    fn runs_take_a_workflow_a_branch_and_quoted_names() {
        assert_eq!(parse("runs"), Ok(Command::Runs { workflow: None, branch: None }));
        assert_eq!(
            parse("runs \"Build and test\" main"),
            Ok(Command::Runs { workflow: Some("Build and test".into()), branch: Some("main".into()) })
        );
        assert_eq!(
            parse("runs ci.yml release/2.0"),
            Ok(Command::Runs { workflow: Some("ci.yml".into()), branch: Some("release/2.0".into()) })
        );
        assert!(parse("runs \"open").unwrap_err().message.contains("quote"));
    }

    #[test]
    fn deploy_and_rollback_need_an_environment() {
        assert_eq!(parse("deploy production"), Ok(Command::Deploy { environment: "production".into(), git_ref: None }));
        assert_eq!(
            parse("rollback staging release/1.2"),
            Ok(Command::Rollback { environment: "staging".into(), git_ref: Some("release/1.2".into()) })
        );
        assert!(parse("deploy").unwrap_err().message.contains("Which environment"));
        assert!(parse("frob").unwrap_err().message.contains("Unknown subcommand"));
    }
}
