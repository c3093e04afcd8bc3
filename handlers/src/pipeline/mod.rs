//! `/pipeline`: the CI/CD pipeline as GitHub Actions sees it. A command is
//! decided at once (checked, acknowledged) and leaves a
//! [`Effect::Lookup`](crate::Effect::Lookup) for the shell, which asks
//! GitHub and hands the answer to [`answer`] to be rendered: Slack's 3 s
//! never wait on GitHub.

pub mod checks;
pub mod command;
pub mod figures;
pub mod render;
pub mod rerun;

use crate::decision::{AnswerTo, Decision, Effect, Invocation, Reply};
use crate::github::{Activity, Lookup, Repo, Unavailable};
use crate::runbook::Runbook;
use chrono::{DateTime, Utc};
use command::Command;
use std::convert::Infallible;

/// How far back `/pipeline status` looks.
pub const STATUS_HOURS: u32 = 24;

/// What a `/pipeline` decision needs: how opsbot is connected to GitHub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    Setup,
}

/// The shell's GitHub settings, as the core needs to know them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Setup(Setup),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    /// A token or an App is configured.
    pub connected: bool,
    /// `GITHUB_REPOSITORY`: what `/pipeline` looks at when none is named.
    pub repository: Option<Repo>,
    /// GitHub's web address (`https://github.com`, or a GitHub Enterprise
    /// server's), for the links opsbot makes itself rather than taking
    /// from GitHub's answers; `None` when not connected.
    pub web: Option<String>,
}

/// `/pipeline` stores nothing yet: its answers come from GitHub.
pub type PipelineDecision = Decision<Infallible>;

pub fn needs(_command: &Command) -> Need {
    Need::Setup
}

/// Decides a `/pipeline` command: the usage, a refusal that says what is
/// missing, or an acknowledgement and the lookup that fills it in.
pub fn command(command: &Command, loaded: Loaded, who: &Invocation) -> PipelineDecision {
    let Loaded::Setup(setup) = loaded;
    let repo = match command {
        Command::Help => return Decision::reply(command::USAGE),
        // Routed to `deploy` before they get here; answered all the same.
        Command::Deploy { .. } | Command::Rollback { .. } => return Decision::reply(command::USAGE),
        Command::Status { repo } => repo.clone(),
        Command::Runs { .. } => None,
    };
    if !setup.connected {
        return Decision::answer(render::unavailable(&Unavailable::NotConnected, None));
    }
    let Some(repo) = repo.or(setup.repository) else {
        return Decision::reply(render::NO_REPOSITORY);
    };
    let lookup = match command {
        Command::Runs { workflow, branch } => Lookup::Runs { repo, workflow: workflow.clone(), branch: branch.clone() },
        _ => Lookup::Activity { repo, hours: STATUS_HOURS },
    };
    let mut decision = Decision::reply(render::asking(&lookup));
    let to = AnswerTo { channel: who.channel.clone(), user: who.user.clone(), response_url: who.response_url.clone() };
    decision.effects.push(Effect::Lookup { lookup, to });
    decision
}

/// What the person sees once GitHub answered `lookup` (or could not).
pub fn answer(lookup: &Lookup, found: &Result<Activity, Unavailable>, runbook: &Runbook, now: DateTime<Utc>) -> Reply {
    match (lookup, found) {
        (_, Err(why)) => render::unavailable(why, Some(lookup.repo())),
        (Lookup::Activity { hours, .. }, Ok(activity)) => render::status(activity, *hours, runbook, now),
        (Lookup::Runs { workflow, branch, .. }, Ok(activity)) => {
            render::runs(activity, workflow.as_deref(), branch.as_deref(), now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Invocation {
        Invocation {
            user: "U0ALICE".into(),
            channel: "C0DEVOPS".into(),
            team_domain: None,
            response_url: Some("https://hooks.slack.com/commands/T1/2/3".into()),
            groups: Vec::new(),
        }
    }

    fn setup(connected: bool, repository: Option<&str>) -> Loaded {
        Loaded::Setup(Setup { connected, repository: repository.and_then(Repo::parse), web: None })
    }

    #[test]
    fn status_is_acknowledged_at_once_and_looked_up_for_the_asker() {
        let d = command(&Command::Status { repo: None }, setup(true, Some("octo-org/shop")), &alice());
        assert!(d.reply.text.contains("octo-org/shop"), "{}", d.reply.text);
        let [Effect::Lookup { lookup, to }] = d.effects.as_slice() else { panic!("{:?}", d.effects) };
        assert_eq!(lookup, &Lookup::Activity { repo: Repo::parse("octo-org/shop").unwrap(), hours: 24 });
        assert_eq!(to.user, "U0ALICE");
        assert_eq!(to.response_url.as_deref(), Some("https://hooks.slack.com/commands/T1/2/3"));
    }

    #[test]
    fn a_named_repository_wins_over_the_configured_one() {
        let repo = Repo::parse("octo-org/api");
        let d = command(&Command::Status { repo: repo.clone() }, setup(true, Some("octo-org/shop")), &alice());
        assert!(
            matches!(&d.effects[..], [Effect::Lookup { lookup: Lookup::Activity { repo: r, .. }, .. }] if Some(r) == repo.as_ref())
        );
    }

    #[test]
    fn without_github_the_answer_says_how_to_connect_it_and_asks_nothing() {
        let d = command(&Command::Status { repo: None }, setup(false, None), &alice());
        assert!(d.reply.text.contains("GITHUB_TOKEN"), "{}", d.reply.text);
        assert!(d.effects.is_empty());
        let d = command(&Command::Runs { workflow: None, branch: None }, setup(true, None), &alice());
        assert!(d.reply.text.contains("GITHUB_REPOSITORY"), "{}", d.reply.text);
        assert!(d.effects.is_empty());
    }
}
