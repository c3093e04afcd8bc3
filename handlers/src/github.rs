//! What opsbot reads from GitHub Actions, as plain data: the questions the
//! core asks ([`Lookup`]), what the shell's GitHub client brings back
//! ([`Activity`]) and why it sometimes cannot ([`Unavailable`]). The core
//! decides and renders from these; it never sees octocrab or HTTP.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `owner/repo`, as GitHub names a repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl Repo {
    /// Accepts `owner/repo` with GitHub's characters (letters, digits, `-`,
    /// `_`, `.`); anything else is not a repository a person meant.
    pub fn parse(text: &str) -> Option<Repo> {
        let (owner, name) = text.trim().split_once('/')?;
        let fits = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        (fits(owner, 39) && fits(name, 100)).then(|| Repo { owner: owner.to_owned(), name: name.to_owned() })
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl TryFrom<String> for Repo {
    type Error = String;
    fn try_from(text: String) -> Result<Repo, String> {
        Repo::parse(&text).ok_or_else(|| format!("`{text}` is not owner/repo"))
    }
}

impl From<Repo> for String {
    fn from(repo: Repo) -> String {
        repo.to_string()
    }
}

/// What the core asks GitHub. Each is a read, answered from a short cache
/// when someone asked the same a moment ago.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Lookup {
    /// The workflow runs created in the last `hours` hours, for the KPIs.
    Activity { repo: Repo, hours: u32 },
    /// The latest runs, optionally of one workflow (by name or file) and
    /// one branch.
    Runs {
        repo: Repo,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
    },
}

impl Lookup {
    pub fn repo(&self) -> &Repo {
        match self {
            Lookup::Activity { repo, .. } | Lookup::Runs { repo, .. } => repo,
        }
    }
}

/// Where a workflow run is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Queued, waiting, requested or pending: not started on a runner yet.
    Queued,
    InProgress,
    Completed(RunConclusion),
}

/// How a completed run ended, GitHub's conclusions folded into what the
/// KPIs distinguish.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunConclusion {
    Success,
    /// `failure`, `timed_out`, `startup_failure`: the build broke.
    Failure,
    Cancelled,
    /// `skipped`, `neutral`, `stale`, `action_required`, or a conclusion
    /// newer than this code: neither a pass nor a failure.
    Other,
}

impl RunConclusion {
    /// GitHub's word for it.
    pub fn parse(word: &str) -> RunConclusion {
        match word {
            "success" => RunConclusion::Success,
            "failure" | "timed_out" | "startup_failure" => RunConclusion::Failure,
            "cancelled" => RunConclusion::Cancelled,
            _ => RunConclusion::Other,
        }
    }
}

impl RunState {
    /// GitHub's `status` and `conclusion` fields.
    pub fn parse(status: &str, conclusion: Option<&str>) -> RunState {
        match (status, conclusion) {
            ("completed", Some(c)) => RunState::Completed(RunConclusion::parse(c)),
            ("completed", None) => RunState::Completed(RunConclusion::Other),
            ("in_progress", _) => RunState::InProgress,
            _ => RunState::Queued,
        }
    }
}

/// One workflow run, as `/pipeline` shows and counts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub number: u64,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow's file, e.g. `.github/workflows/ci.yml`.
    pub workflow_path: String,
    /// GitHub's id of the workflow; 0 in answers cached before it was read.
    #[serde(default)]
    pub workflow_id: u64,
    /// GitHub's `display_title`: the commit title or the `run-name`.
    pub title: String,
    pub branch: String,
    /// What started it: `push`, `pull_request`, `workflow_dispatch`, …
    pub event: String,
    pub state: RunState,
    /// The login of who started it.
    pub actor: String,
    pub attempt: u32,
    pub created: DateTime<Utc>,
    /// When this attempt started on a runner.
    pub started: DateTime<Utc>,
    /// When it last changed: its end, once completed.
    pub updated: DateTime<Utc>,
    pub url: String,
}

impl RunRecord {
    /// How long a completed run took, start to end.
    pub fn duration(&self) -> Option<TimeDelta> {
        matches!(self.state, RunState::Completed(_)).then(|| (self.updated - self.started).max(TimeDelta::zero()))
    }

    /// Whether it ran the workflow `name_or_file` names (its name, any
    /// case, or its file with or without `.github/workflows/`).
    pub fn is_workflow(&self, name_or_file: &str) -> bool {
        let file = self.workflow_path.rsplit('/').next().unwrap_or(&self.workflow_path);
        self.workflow.eq_ignore_ascii_case(name_or_file) || file == name_or_file || self.workflow_path == name_or_file
    }
}

/// What GitHub answered to a [`Lookup`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub repo: Repo,
    pub default_branch: String,
    /// Newest first.
    pub runs: Vec<RunRecord>,
    /// More runs matched than opsbot reads for one answer; the figures are
    /// over the newest ones.
    pub truncated: bool,
    /// When GitHub answered (a cached answer is as old as this).
    pub fetched: DateTime<Utc>,
}

/// Where a deployment is, from its latest status.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// `success`, or `inactive`: it went out (and a later one replaced it).
    Succeeded,
    /// `failure` or `error`.
    Failed,
    /// `queued`, `pending`, `in_progress`, or no status yet.
    Pending,
}

impl DeploymentState {
    /// The `state` of a deployment's latest status; `None` when it has none.
    pub fn parse(latest: Option<&str>) -> DeploymentState {
        match latest {
            Some("success" | "inactive") => DeploymentState::Succeeded,
            Some("failure" | "error") => DeploymentState::Failed,
            _ => DeploymentState::Pending,
        }
    }
}

/// One deployment, with where its latest status left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: u64,
    pub environment: String,
    /// The branch, tag or sha deployed.
    pub git_ref: String,
    pub created: DateTime<Utc>,
    pub state: DeploymentState,
    /// The latest status's log, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The deployments GitHub listed for a window, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployments {
    pub repo: Repo,
    pub deployments: Vec<DeploymentRecord>,
    /// More deployments were in the window than opsbot reads for one
    /// answer; the figures are over the newest ones.
    pub truncated: bool,
    pub fetched: DateTime<Utc>,
}

/// Why GitHub could not answer; each is told to the person in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unavailable {
    /// No token and no App are configured.
    NotConnected,
    /// GitHub's rate limit (primary or secondary) is spent until `resets`.
    RateLimited { resets: DateTime<Utc> },
    /// The repository, workflow or run does not exist, or the token cannot
    /// see it (GitHub answers 404 for both).
    NotFound { what: String },
    /// GitHub refused: the token lacks a permission, or the request was
    /// invalid (`message` is GitHub's own).
    Refused { status: u16, message: String },
    /// GitHub did not answer, or answered with a server error.
    Down { why: String },
}

/// Something opsbot asks GitHub to do on someone's behalf. Made by a
/// decision, carried out by the outbox; a refusal comes back to the
/// subject as a timer due at once (see `TimerKind::GitHubRefused`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Call {
    /// `POST /repos/{repo}/actions/runs/{run_id}/rerun-failed-jobs`.
    RerunFailedJobs { repo: Repo, run_id: u64 },
    /// `POST /repos/{repo}/actions/workflows/{workflow}/dispatches` with
    /// `inputs`, on `git_ref`: the branch whose workflow file runs. `None`
    /// is the repository's default branch, which the shell asks GitHub for
    /// (a decision cannot know it, and the modal may have opened while
    /// GitHub was down). The ref to deploy travels in the inputs.
    Dispatch {
        repo: Repo,
        /// A file in `.github/workflows` or a numeric id.
        workflow: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        git_ref: Option<String>,
        /// In the runbook's order.
        inputs: Vec<(String, String)>,
        /// The id the run's title carries (`DEP-3`, when an input holds
        /// `{id}` for the workflow's `run-name`): a run of the workflow
        /// already titled with it means GitHub took this dispatch before
        /// (its answer was lost, and the outbox is retrying), so it is not
        /// sent again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        once: Option<String>,
    },
}

impl Call {
    pub fn repo(&self) -> &Repo {
        match self {
            Call::RerunFailedJobs { repo, .. } | Call::Dispatch { repo, .. } => repo,
        }
    }

    /// For logs (never the inputs: they are the team's, not the log's).
    pub fn describe(&self) -> String {
        match self {
            Call::RerunFailedJobs { repo, run_id } => format!("re-run the failed jobs of {repo} run {run_id}"),
            Call::Dispatch { repo, workflow, .. } => format!("dispatch {workflow} in {repo}"),
        }
    }
}

/// The run a dispatch made, when GitHub names it (`return_run_details`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchedRun {
    pub run_id: u64,
    /// The run's page on GitHub.
    pub url: String,
}

/// What the confirmation modal of a deployment shows, read from GitHub
/// before it opens: the environment's last successful deployment and the
/// commits between it and the ref.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployPreview {
    pub repo: Repo,
    pub default_branch: String,
    /// The environment's latest deployment whose latest status is
    /// `success`; `None` when it has none.
    pub last: Option<LastDeployment>,
    /// From the last deployment to the ref (a deployment: what goes out),
    /// or from the ref to it (a rollback: what is undone); empty without a
    /// last deployment.
    pub commits: Vec<CommitLine>,
    /// How many commits that is in all; `commits` holds the newest few.
    pub total_commits: u64,
    /// GitHub's compare page for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_url: Option<String>,
}

/// A deployment GitHub recorded for an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDeployment {
    pub git_ref: String,
    pub sha: String,
    /// Who created it (a login).
    pub creator: String,
    pub at: DateTime<Utc>,
}

/// One commit of a compare, as the modal lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitLine {
    /// The first 7 characters of the sha.
    pub short_sha: String,
    /// The message's first line.
    pub title: String,
    pub author: String,
}

impl Unavailable {
    /// GitHub's refusal in one line, for a thread note.
    pub fn in_words(&self) -> String {
        match self {
            Unavailable::NotConnected => "opsbot is not connected to GitHub".to_owned(),
            Unavailable::RateLimited { resets } => {
                format!("GitHub's rate limit is spent until {}", crate::text::slack_date(*resets))
            }
            Unavailable::NotFound { what } => format!("GitHub does not know {what}, or opsbot's token cannot see it"),
            Unavailable::Refused { status, message } => format!("GitHub said \"{message}\" ({status})"),
            Unavailable::Down { why } => format!("GitHub did not answer ({why})"),
        }
    }
}
