//! Alerts that arrive by themselves: GitHub Actions failures, failed
//! deployments, Alertmanager groups and the runbook's KPI alerts.
//!
//! Each source key (a workflow on a branch, an environment, an Alertmanager
//! group key, a KPI alert) has at most one current [`AlertGroup`]: one
//! episode, from its first failure until it recovers, shown as one Slack
//! message edited in place. The next failure after a recovery opens a new
//! group with a new message. The state is here; payload parsing in
//! [`github`] and [`alertmanager`]; the decisions in [`decide`]; the
//! messages in [`render`].

pub mod alertmanager;
pub mod decide;
pub mod github;
pub mod render;
pub mod signal;

pub use crate::subject::{AlertId, Posted, Stamp};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use signal::{AlertmanagerAlert, DeploymentStatus, WorkflowRun};
use std::collections::BTreeMap;

/// Runs of a workflow kept in its group's state (the thread lists every
/// one); the count goes on.
pub const RUNS_KEPT: usize = 50;
/// How long the Mute button silences a group.
pub const MUTE_FOR: TimeDelta = TimeDelta::hours(1);

/// One episode of one source, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertGroup {
    pub id: AlertId,
    /// The source's key; see [`decide::source_key`].
    pub key: String,
    /// Where its message is posted, as the runbook names the channel.
    pub channel: String,
    pub firing: bool,
    pub opened: DateTime<Utc>,
    /// The last time something about it changed.
    pub updated: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<Mute>,
    /// The incident declared for it, by a rule or a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<Declared>,
    /// No message of its own: its runbook route is muted, or the incident
    /// declared for it says everything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
    pub detail: Detail,
    /// Where its message is in Slack; the store fills it in on load.
    #[serde(skip)]
    pub posted: Posted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    pub until: DateTime<Utc>,
    pub by: String,
}

/// An incident declared from a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    pub severity: crate::Severity,
    /// Known once the incident is committed (a rule's incident is declared
    /// just after its group opens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<crate::subject::IncidentId>,
    /// Who declared it; `None` when a runbook rule did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub at: DateTime<Utc>,
}

/// What the group is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Detail {
    Workflow(WorkflowFailures),
    Deployment(DeploymentFailures),
    Alertmanager(AlertmanagerState),
    Kpi(KpiBreach),
}

/// A workflow failing on a branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowFailures {
    pub repo: String,
    pub workflow: String,
    pub branch: String,
    /// Distinct runs that failed in this episode (a re-run attempt of a run
    /// already counted is not another).
    pub failures: u32,
    /// The latest runs, oldest first, at most [`RUNS_KEPT`].
    pub runs: Vec<WorkflowRun>,
    /// The run that passed and ended the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_by: Option<Box<WorkflowRun>>,
    /// The latest re-run someone asked for from the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<Rerun>,
}

/// A re-run of a failed run's failed jobs, asked for with the message's
/// button, until GitHub reports the new attempt or refuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rerun {
    /// The Slack user who asked.
    pub by: String,
    pub at: DateTime<Utc>,
    pub run_id: u64,
    pub run_number: u64,
    /// The attempt that failed; the re-run is the next one.
    pub attempt: u32,
    /// Why GitHub would not, once it said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl Rerun {
    /// Asked, and GitHub has neither refused nor reported the new attempt.
    pub fn is_pending(&self) -> bool {
        self.refused.is_none()
    }
}

impl WorkflowFailures {
    pub fn latest(&self) -> Option<&WorkflowRun> {
        self.runs.last()
    }
}

/// Deployments to an environment failing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentFailures {
    pub repo: String,
    pub environment: String,
    /// Failed statuses, oldest first, at most [`RUNS_KEPT`].
    pub failed: Vec<DeploymentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_by: Option<Box<DeploymentStatus>>,
}

/// An Alertmanager group as last notified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerState {
    pub group_key: String,
    pub receiver: String,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    /// By fingerprint: every alert the group ever carried in this episode,
    /// firing or resolved.
    pub alerts: BTreeMap<String, AlertmanagerAlert>,
    /// Notifications that changed something.
    pub notifications: u32,
}

impl AlertmanagerState {
    pub fn firing(&self) -> impl Iterator<Item = &AlertmanagerAlert> {
        self.alerts.values().filter(|a| a.firing)
    }
}

/// A KPI alert's condition holding over its window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiBreach {
    /// The runbook's KPI alert id.
    pub alert: String,
    /// Its name when it crossed, e.g. `High Build Failure Rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The figures when it crossed.
    pub crossed: Figures,
    /// The figures now (when it recovered, the ones that ended it).
    pub latest: Figures,
}

/// What a window of runs adds up to; integers, so stored state compares
/// exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub runs: u32,
    pub failed: u32,
    pub passed: u32,
    /// Sum of the runs' durations, in seconds.
    pub seconds: i64,
}

impl Figures {
    pub fn failure_rate(&self) -> f64 {
        percent(self.failed, self.runs)
    }

    pub fn success_rate(&self) -> f64 {
        percent(self.passed, self.runs)
    }

    /// Mean run time in seconds.
    pub fn average_seconds(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.seconds as f64 / f64::from(self.runs)
        }
    }
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

/// A finished workflow run as the KPI window keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSample {
    pub run_id: u64,
    pub attempt: u32,
    pub failed: bool,
    pub seconds: i64,
    pub finished: DateTime<Utc>,
}

/// How long the KPI window keeps runs, whatever the runbook's windows say.
pub const SAMPLES_KEPT_FOR: TimeDelta = TimeDelta::days(7);
/// And at most this many, so a storm cannot grow it without bound.
pub const SAMPLES_KEPT: usize = 5000;

/// A payload parser's view of serde_json's message, unless it quotes so much of a misplaced value that
/// it would flood the log.
pub(crate) fn brief(e: &serde_json::Error) -> String {
    let full = e.to_string();
    if full.len() <= 200 {
        return full;
    }
    let what = match e.classify() {
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Eof => "unexpected end",
        _ => "invalid JSON",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// What an alert decision writes: the group it opens or changes, and the
/// finished run it adds to the KPI window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertChange {
    pub group: Option<GroupWrite>,
    pub sample: Option<RunSample>,
}

/// A group's new state, and, for a group it opens, the group it succeeds as
/// its key's current one (the commit refuses if another replica opened one
/// meanwhile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupWrite {
    pub group: AlertGroup,
    pub opens: Option<Opening>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    /// The key's current group before this one, if any.
    pub replaces: Option<AlertId>,
}

impl AlertGroup {
    pub fn is_open(&self) -> bool {
        self.firing
    }

    /// The episode ends: it recovered or resolved.
    pub fn resolve(&mut self, now: DateTime<Utc>) {
        self.firing = false;
        self.resolved = Some(now);
        self.updated = now;
    }

    pub fn is_muted(&self, now: DateTime<Utc>) -> bool {
        self.muted.as_ref().is_some_and(|m| m.until > now)
    }
}
