//! Signals: what a webhook reported, normalised from GitHub's and
//! Alertmanager's payloads into the few facts the alert decisions use.
//! Parsing lives in [`super::github`] and [`super::alertmanager`]; the
//! decisions never see a raw payload.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Something a webhook reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// A GitHub Actions workflow run completed.
    WorkflowRun(WorkflowRun),
    /// A GitHub Actions workflow run started on a runner (`in_progress`).
    /// Alerts wait for it to complete; a deployment whose run it is shows
    /// it running. Its `conclusion` is `unknown`, its `finished` the time
    /// of the report.
    WorkflowRunStarted(WorkflowRun),
    /// A GitHub deployment changed state.
    Deployment(DeploymentStatus),
    /// Alertmanager notified about a group of alerts.
    Alertmanager(AlertmanagerGroup),
}

/// A completed workflow run (`workflow_run`, action `completed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// `owner/repo`
    pub repo: String,
    /// The workflow's name; its file path when the name is empty.
    pub workflow: String,
    /// The workflow's file, e.g. `.github/workflows/ci.yml`.
    pub workflow_path: String,
    pub workflow_id: u64,
    pub branch: String,
    /// The repository's default branch, as the payload names it.
    pub default_branch: String,
    pub run_id: u64,
    pub run_number: u64,
    /// 1 for the first attempt; a re-run of the same run counts up.
    pub attempt: u32,
    /// GitHub's conclusion, kept open: `success`, `failure`, `timed_out`,
    /// `startup_failure`, `cancelled`, `skipped`, … (see [`Conclusion`]).
    pub conclusion: String,
    /// The head commit's title (its first line).
    pub title: String,
    /// Who the commit is by (its author's name), or the actor's login.
    pub author: String,
    pub sha: String,
    pub url: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// GitHub's `display_title`: the workflow's `run-name` when it has one
    /// (a deploy workflow puts opsbot's `DEP-<n>` there), else the commit
    /// title. Empty in signals stored before it was read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_title: String,
}

/// What a run's conclusion means for alerting.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Conclusion {
    Passed,
    Failed,
    /// Cancelled, skipped, neutral, stale, action_required, or something
    /// newer: neither a failure nor a recovery.
    Neither,
}

impl WorkflowRun {
    pub fn conclusion(&self) -> Conclusion {
        match self.conclusion.as_str() {
            "success" => Conclusion::Passed,
            "failure" | "timed_out" | "startup_failure" => Conclusion::Failed,
            _ => Conclusion::Neither,
        }
    }

    pub fn duration(&self) -> chrono::TimeDelta {
        (self.finished - self.started).max(chrono::TimeDelta::zero())
    }
}

/// A deployment status (`deployment_status`, action `created`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    pub repo: String,
    pub environment: String,
    /// `pending`, `queued`, `in_progress`, `success`, `failure`, `error`, …
    pub state: String,
    pub deployment_id: u64,
    /// The ref deployed (a branch, tag or sha).
    pub git_ref: String,
    pub sha: String,
    pub description: String,
    /// The best link to show: the log, the target, or the repository's
    /// deployments page.
    pub url: String,
    /// Who started the deployment.
    pub creator: String,
    pub at: DateTime<Utc>,
}

/// An Alertmanager notification (webhook format version 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerGroup {
    pub group_key: String,
    /// `firing` or `resolved`: the group as a whole.
    pub firing: bool,
    pub receiver: String,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    pub alerts: Vec<AlertmanagerAlert>,
}

/// One alert of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerAlert {
    /// Alertmanager's fingerprint; computed from the labels when an older
    /// Alertmanager sends none.
    pub fingerprint: String,
    pub firing: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<DateTime<Utc>>,
    /// `None` while firing (Alertmanager sends year 1 then).
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
}
