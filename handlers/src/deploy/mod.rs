//! Deployments: `/pipeline deploy <environment> [ref]` and `/pipeline
//! rollback <environment> <ref>`, run through the runbook's workflows.
//!
//! A command is checked (the environment, the ref, who may) and answered
//! with a confirmation modal that shows what would go out, read from GitHub
//! by the shell before the modal opens. Confirming makes a [`Deployment`]
//! (`DEP-<n>`): the runbook's workflow is dispatched through the outbox,
//! its message is posted in the environment's channel, every open incident
//! notes it, and the run GitHub reports back (its title carries `DEP-<n>`)
//! ends it; when GitHub says nothing for the environment's `timeout`,
//! opsbot stops following it and says so. The state is here; the decisions in [`decide`]; the messages
//! and the modal in [`render`].

pub mod decide;
pub mod render;

pub use crate::runbook::pipeline::Action;
use crate::subject::{DeployId, Posted};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// One deployment or rollback someone confirmed, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeployId,
    pub action: Action,
    /// The environment's name as the runbook writes it.
    pub environment: String,
    /// `owner/name`.
    pub repo: String,
    /// What is deployed, or rolled back to.
    pub git_ref: String,
    /// The workflow dispatched, as the runbook names it (`deploy.yml`).
    pub workflow: String,
    /// The Slack user who confirmed.
    pub by: String,
    pub at: DateTime<Utc>,
    /// Where its message goes, as the runbook names the channel.
    pub channel: String,
    /// Why, as typed in the modal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub state: DeployState,
    /// The run GitHub said the dispatch made, before it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched: Option<crate::github::DispatchedRun>,
    /// The workflow run, once GitHub reported it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunLink>,
    /// The workflow's runs on GitHub's web pages: where to look for its run
    /// when GitHub never named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_page: Option<String>,
    /// Where its message is in Slack; the store fills it in on load.
    #[serde(skip)]
    pub posted: Posted,
}

/// Where a deployment is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeployState {
    /// The dispatch is asked for; GitHub has not answered yet.
    Requested,
    /// GitHub accepted the dispatch and named its run (`dispatched`),
    /// which has not started yet.
    Dispatched,
    /// Its run (`dispatched`) is on a runner since `since`.
    Running { since: DateTime<Utc> },
    /// The run finished with `success`.
    Succeeded,
    /// The run finished otherwise; `conclusion` is GitHub's word
    /// (`failure`, `cancelled`, `timed_out`, …).
    Failed { conclusion: String },
    /// GitHub would not start the workflow.
    Refused { why: String },
    /// No word from GitHub that the run finished by `at`, the
    /// environment's `timeout` after the dispatch: opsbot stopped following
    /// it. A report of its run that comes later still settles it.
    Unfollowed { at: DateTime<Utc> },
}

/// The run a deployment's workflow made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLink {
    pub run_id: u64,
    pub number: u64,
    pub url: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
}

impl RunLink {
    pub fn took(&self) -> TimeDelta {
        (self.finished - self.started).max(TimeDelta::zero())
    }
}

impl Deployment {
    /// Still waiting for its run.
    pub fn is_open(&self) -> bool {
        matches!(self.state, DeployState::Requested | DeployState::Dispatched | DeployState::Running { .. })
    }

    /// Its run may still end it: it is open, or opsbot stopped following
    /// it before GitHub reported the run.
    pub fn awaits_its_run(&self) -> bool {
        self.is_open() || matches!(self.state, DeployState::Unfollowed { .. })
    }
}
