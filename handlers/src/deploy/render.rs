//! What deployments look like: the confirmation modal with GitHub's
//! preview, the message in the environment's channel and the notes in its
//! thread, the note an incident's timeline gets, and every refusal in
//! words. Everything keeps within Block Kit's limits, however long a ref or
//! a commit title is.

use super::{Action, DeployState, Deployment};
use crate::blocks::{SlackMessage, SECTION_MAX};
use crate::codec::{deploy_modal, DEPLOY_REASON_FIELD};
use crate::github::{DeployPreview, Repo, Unavailable};
use crate::runbook::pipeline::{Environment, Pipeline};
use crate::runbook::Runbook;
use crate::text::{duration, escape, slack_date, truncate};
use serde_json::{json, Value};

/// How many commits the modal lists; the rest are counted.
pub const COMMITS_SHOWN: usize = 15;

pub const NO_REPOSITORY: &str = "Which repository does this environment deploy? Set its `repository` in the \
runbook's `pipeline` section, or ask an admin to set `GITHUB_REPOSITORY`.";

/// When Slack would not open the modal (its 3 s passed).
pub const MODAL_FAILED: &str = "Slack did not open the confirmation dialog in time, so nothing was deployed. \
Please type the command again.";

fn doing(action: Action, env: &str, git_ref: &str) -> String {
    match action {
        Action::Deploy => format!("deploying `{}` to *{}*", escape(git_ref), escape(env)),
        Action::Rollback => format!("rolling back *{}* to `{}`", escape(env), escape(git_ref)),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub fn unknown_environment(typed: &str, action: Action, pipeline: &Pipeline) -> String {
    let closest = pipeline.closest(typed);
    let typed = escape(&truncate(typed, 40));
    let known: Vec<String> = pipeline.environments.iter().map(|e| format!("`{}`", escape(&e.name))).collect();
    let verb = action.as_str();
    match closest {
        Some(env) => format!(
            "There is no environment `{typed}`. Did you mean `{}`? `/pipeline {verb} {}`",
            escape(&env.name),
            escape(&env.name)
        ),
        None if known.is_empty() => {
            format!("There is no environment `{typed}`: the runbook's `pipeline` section names none.")
        }
        None => format!("There is no environment `{typed}`. The runbook's are {}.", known.join(", ")),
    }
}

pub fn bad_ref(typed: &str) -> String {
    format!(
        "`{}` is not a branch, tag or commit opsbot passes to a workflow: only letters, digits and `. _ - / + @`, \
not starting with `-` or `/`, without `..`, `//` or `@{{`, as git allows them.",
        escape(&truncate(typed, 60))
    )
}

pub fn rollback_needs_ref(env: &Environment) -> String {
    format!(
        "Roll back to what? Name the ref to roll back to, e.g. `/pipeline rollback {} v1.4.2`: the default ref \
is what is deployed, not a rollback target.",
        escape(&env.name)
    )
}

/// Slack could not say whether the user is in the groups that would let
/// them (and nothing else does): the refusal says so, rather than claiming
/// they are not in them. `unread`: each group and why, in words.
pub fn groups_unread(env: &Environment, action: Action, unread: &[(String, String)], runbook: &Runbook) -> String {
    let named: Vec<String> = unread.iter().map(|(g, _)| format!("<!subteam^{g}>")).collect();
    let mut why: Vec<String> = unread.iter().map(|(_, why)| escape(why)).collect();
    why.dedup();
    format!(
        "{} Slack could not be asked whether you are in {} ({}), so nothing was changed; try again in a minute.",
        env.refusal(action, &runbook.roles),
        named.join(", "),
        why.join("; ")
    )
}

pub fn default_branch_unknown(env: &Environment, action: Action, why: Option<&Unavailable>) -> String {
    let why = why.map(|w| format!(" ({})", w.in_words())).unwrap_or_default();
    format!(
        "GitHub could not tell the repository's default branch{why}, and the runbook gives `{}` no `ref`. Name \
the ref: `/pipeline {} {} main`.",
        escape(&env.name),
        action.as_str(),
        escape(&env.name)
    )
}

/// The answer to the command while the modal opens.
pub fn confirm_in_dialog(env: &Environment, action: Action, git_ref: &str) -> String {
    format!("Confirm in the dialog: {}.", doing(action, &env.name, git_ref))
}

/// The confirmation modal: environment, ref, workflow, the last
/// deployment and the commits that would go out (or be undone).
pub fn confirm_modal(
    env: &Environment,
    action: Action,
    repo: &Repo,
    git_ref: &str,
    preview: Option<&Result<DeployPreview, Unavailable>>,
) -> Value {
    let ids = deploy_modal(action, &env.name, git_ref);
    let (title, submit) = match action {
        Action::Deploy => ("Confirm deployment", "Deploy"),
        Action::Rollback => ("Confirm rollback", "Roll back"),
    };
    let workflow = env.dispatch(action).workflow.to_string();
    let mut text = format!(
        "*Environment*: {}\n*Ref*: `{}`\n*Workflow*: `{}` in `{repo}`",
        escape(&env.name),
        escape(git_ref),
        escape(&workflow)
    );
    let commits = match preview {
        None => "*Commits*: could not be listed: opsbot did not ask GitHub.".to_owned(),
        Some(Err(why)) => format!("*Commits*: could not be listed: {}.", escape(&why.in_words())),
        Some(Ok(p)) => {
            match &p.last {
                Some(last) => text.push_str(&format!(
                    "\n*Last deployment*: `{}` (`{}`) by {}, {}",
                    escape(&last.git_ref),
                    escape(&last.sha.chars().take(7).collect::<String>()),
                    escape(&last.creator),
                    slack_date(last.at)
                )),
                None => text.push_str("\n*Last deployment*: none that succeeded"),
            }
            commit_list(p, action, &env.name)
        }
    };
    json!({
        "type": "modal",
        "callback_id": ids.callback_id,
        "private_metadata": ids.private_metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_MAX)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&commits, SECTION_MAX)}},
            {"type": "input", "block_id": DEPLOY_REASON_FIELD, "optional": true,
             "label": {"type": "plain_text", "text": "Why (shown with the deployment)"},
             "element": {"type": "plain_text_input", "action_id": DEPLOY_REASON_FIELD, "max_length": 500}}
        ]
    })
}

fn commit_list(p: &DeployPreview, action: Action, env: &str) -> String {
    if p.last.is_none() {
        return format!("*Commits*: {} has no successful deployment to compare with.", escape(env));
    }
    let what = match action {
        Action::Deploy => "Commits that would go out",
        Action::Rollback => "Commits that would be undone",
    };
    if p.total_commits == 0 {
        return format!("*{what}*: none.");
    }
    let mut text = format!("*{what}* ({}):", p.total_commits);
    for c in p.commits.iter().rev().take(COMMITS_SHOWN) {
        text.push_str(&format!(
            "\n• `{}` {} — {}",
            escape(&c.short_sha),
            escape(&truncate(&c.title, 100)),
            escape(&truncate(&c.author, 40))
        ));
    }
    let shown = p.commits.len().min(COMMITS_SHOWN) as u64;
    if p.total_commits > shown {
        let more = p.total_commits - shown;
        match &p.compare_url {
            Some(url) => text.push_str(&format!("\n… and <{url}|{more} more>")),
            None => text.push_str(&format!("\n… and {more} more")),
        }
    }
    text
}

/// The deployment's message in its channel, as it is now.
pub fn message(d: &Deployment, _runbook: &Runbook) -> SlackMessage {
    let what = doing(d.action, &d.environment, &d.git_ref);
    let headline = match &d.state {
        DeployState::Requested | DeployState::Dispatched | DeployState::Running { .. } => {
            let mark = if d.action == Action::Deploy { "🚀" } else { "⏪" };
            format!("{mark} *{}* {}, asked by <@{}>", d.id, capitalized(&what), d.by)
        }
        DeployState::Succeeded => {
            let done = match d.action {
                Action::Deploy => format!("Deployed `{}` to *{}*", escape(&d.git_ref), escape(&d.environment)),
                Action::Rollback => {
                    format!("Rolled back *{}* to `{}`", escape(&d.environment), escape(&d.git_ref))
                }
            };
            format!("✅ *{}* {done}, asked by <@{}>", d.id, d.by)
        }
        DeployState::Failed { conclusion } => {
            format!("❌ *{}* {} failed ({}), asked by <@{}>", d.id, capitalized(&what), escape(conclusion), d.by)
        }
        DeployState::Refused { why } => format!(
            "⚠️ *{}* {} did not start: {}. Asked by <@{}>",
            d.id,
            capitalized(&what),
            escape(&truncate(why, 500)),
            d.by
        ),
        DeployState::Unfollowed { .. } => format!(
            "⏳ *{}* {}, asked by <@{}>: opsbot stopped following it ({})",
            d.id,
            capitalized(&what),
            d.by,
            no_word(d)
        ),
    };
    let mut context = format!("`{}` in `{}`", escape(&d.workflow), escape(&d.repo));
    match (&d.run, &d.dispatched) {
        (Some(run), _) => context.push_str(&format!(" · <{}|run #{}> · {}", run.url, run.number, duration(run.took()))),
        (None, Some(run)) if matches!(d.state, DeployState::Unfollowed { .. }) => {
            context.push_str(&format!(" · <{}|the run>", run.url))
        }
        (None, Some(run)) => match &d.state {
            DeployState::Running { since } => {
                context.push_str(&format!(" · <{}|the run> running since {}", run.url, slack_date(*since)))
            }
            _ => context.push_str(&format!(" · <{}|the run> is on its way", run.url)),
        },
        (None, None) if d.is_open() => context.push_str(" · waiting for its run"),
        (None, None) => {
            if let (DeployState::Unfollowed { .. }, Some(page)) = (&d.state, &d.runs_page) {
                context.push_str(&format!(" · look for its run in <{page}|the workflow's runs>"));
            }
        }
    }
    if matches!(d.state, DeployState::Unfollowed { .. }) {
        context.push_str("\nIf GitHub reports the run later, this message will still show how it ended.");
    }
    if let Some(reason) = &d.reason {
        context.push_str(&format!("\n_{}_", escape(reason)));
    }
    // The notification's text is the headline itself: mrkdwn, so the
    // person who asked is mentioned there too.
    SlackMessage {
        text: truncate(&headline, SECTION_MAX),
        blocks: json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&headline, SECTION_MAX)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&context, SECTION_MAX)}]}
        ]),
    }
}

/// The thread note when the run ended.
pub fn finished_note(d: &Deployment) -> String {
    let run = match &d.run {
        Some(run) => format!(" in {}: <{}|run #{}>", duration(run.took()), run.url, run.number),
        None => String::new(),
    };
    match &d.state {
        DeployState::Succeeded => match d.action {
            Action::Deploy => {
                format!("✅ Deployed `{}` to *{}*{run}", escape(&d.git_ref), escape(&d.environment))
            }
            Action::Rollback => {
                format!("✅ Rolled back *{}* to `{}`{run}", escape(&d.environment), escape(&d.git_ref))
            }
        },
        DeployState::Failed { conclusion } => format!(
            "❌ {} failed ({}){run}",
            capitalized(&doing(d.action, &d.environment, &d.git_ref)),
            escape(conclusion)
        ),
        _ => String::new(),
    }
}

/// Why opsbot stopped following a deployment: `no word from GitHub about
/// the run in 1 h`.
fn no_word(d: &Deployment) -> String {
    match &d.state {
        DeployState::Unfollowed { at } => format!("no word from GitHub about the run in {}", duration(*at - d.at)),
        _ => String::new(),
    }
}

/// The thread note when opsbot stopped following the deployment, with
/// where to look.
pub fn unfollowed_note(d: &Deployment) -> String {
    let look = match (&d.dispatched, &d.runs_page) {
        (Some(run), _) => format!(" Look at <{}|the run>.", run.url),
        (None, Some(page)) => format!(" Look for its run in <{page}|the workflow's runs>."),
        (None, None) => String::new(),
    };
    format!(
        "⏳ opsbot stopped following {}: {}.{look} If GitHub reports the run later, the message will still show \
how it ended.",
        d.id,
        no_word(d)
    )
}

/// Added to the finished note of a run reported after opsbot had stopped
/// following its deployment.
pub const REPORTED_LATE: &str = " (GitHub reported it after opsbot had stopped following it)";

/// The thread note when GitHub would not start the workflow.
pub fn refused_note(d: &Deployment, why: &str) -> String {
    format!("⚠️ GitHub would not start `{}`: {}.", escape(&d.workflow), escape(&truncate(why, 500)))
}

/// What an open incident's timeline and thread get.
pub fn incident_note(d: &Deployment) -> String {
    let mark = if d.action == Action::Deploy { "🚀" } else { "⏪" };
    format!("{mark} {}: {}, asked by <@{}>", d.id, doing(d.action, &d.environment, &d.git_ref), d.by)
}
