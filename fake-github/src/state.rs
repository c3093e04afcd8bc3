//! The fake's GitHub: repositories, workflows, workflow runs and their jobs,
//! deployments, plus what the fake has recorded (call counters, queued
//! failures, the rate-limit budget, webhook deliveries). Pure data and the
//! rules for minting GitHub-looking ids and shas; JSON shapes live in
//! `json.rs`, the HTTP layer in `api.rs`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Where ids start. Real GitHub ids are large (run ids no longer fit in 32
/// bits), so the fake's are too: a client that truncates them fails here.
const FIRST_REPO_ID: u64 = 700_000_001;
const FIRST_WORKFLOW_ID: u64 = 60_000_001;
const FIRST_RUN_ID: u64 = 9_000_000_001;
const FIRST_JOB_ID: u64 = 25_000_000_001;
const FIRST_DEPLOYMENT_ID: u64 = 1_500_000_001;

/// `status` of a workflow run or job, as GitHub spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    InProgress,
    Completed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
        }
    }
}

/// `conclusion` of a completed run or job, as GitHub spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    Success,
    Failure,
    Cancelled,
    TimedOut,
    Skipped,
    Neutral,
    ActionRequired,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Cancelled => "cancelled",
            Conclusion::TimedOut => "timed_out",
            Conclusion::Skipped => "skipped",
            Conclusion::Neutral => "neutral",
            Conclusion::ActionRequired => "action_required",
        }
    }

    /// What "re-run failed jobs" re-runs: GitHub counts cancelled and timed
    /// out jobs as failed for this purpose.
    pub fn is_failed(self) -> bool {
        matches!(self, Conclusion::Failure | Conclusion::Cancelled | Conclusion::TimedOut)
    }
}

/// How a test seeds a workflow run (see [`crate::FakeGitHub::add_run`]).
/// Build it with [`RunSpec::completed`] or [`RunSpec::in_progress`]; every
/// time comes from the caller so runs are reproducible.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub branch: String,
    /// `None` leaves the run in progress.
    pub conclusion: Option<Conclusion>,
    /// `created_at` and `run_started_at`.
    pub started: DateTime<Utc>,
    /// From start to `updated_at`; ignored while the run is in progress.
    pub duration: Duration,
    /// Login of the user who triggered the run.
    pub actor: String,
    /// `display_title`: the head commit's subject for pushes.
    pub title: String,
    /// `push` unless set.
    pub event: String,
    /// The head commit; a fresh sha on `branch` when `None`, as for a new push.
    pub sha: Option<String>,
    /// Job names and conclusions (`None`: still running). When empty the run
    /// gets one `build` job that ends as the run does.
    pub jobs: Vec<(String, Option<Conclusion>)>,
}

impl RunSpec {
    pub fn completed(branch: &str, conclusion: Conclusion, started: DateTime<Utc>, duration: Duration) -> Self {
        RunSpec {
            branch: branch.to_owned(),
            conclusion: Some(conclusion),
            started,
            duration,
            actor: "octocat".to_owned(),
            title: format!("Update {branch}"),
            event: "push".to_owned(),
            sha: None,
            jobs: Vec::new(),
        }
    }

    pub fn in_progress(branch: &str, started: DateTime<Utc>) -> Self {
        RunSpec {
            conclusion: None,
            duration: Duration::ZERO,
            ..RunSpec::completed(branch, Conclusion::Success, started, Duration::ZERO)
        }
    }

    pub fn actor(mut self, login: &str) -> Self {
        login.clone_into(&mut self.actor);
        self
    }

    pub fn title(mut self, title: &str) -> Self {
        title.clone_into(&mut self.title);
        self
    }

    pub fn event(mut self, event: &str) -> Self {
        event.clone_into(&mut self.event);
        self
    }

    pub fn sha(mut self, sha: &str) -> Self {
        self.sha = Some(sha.to_owned());
        self
    }

    pub fn job(mut self, name: &str, conclusion: Option<Conclusion>) -> Self {
        self.jobs.push((name.to_owned(), conclusion));
        self
    }
}

/// How a test seeds a deployment (see [`crate::FakeGitHub::add_deployment`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentSpec {
    pub environment: String,
    /// The branch, tag or sha that was deployed.
    pub git_ref: String,
    pub sha: String,
    pub creator: String,
    pub created_at: DateTime<Utc>,
    /// Statuses oldest first, e.g. `["in_progress", "success"]`.
    pub statuses: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    /// Branch -> head sha. Dispatches are only accepted on a known branch
    /// (or a sha of one of these heads), as GitHub resolves `ref`.
    pub heads: BTreeMap<String, String>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// A workflow file as GitHub lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workflow {
    pub id: u64,
    /// `owner/repo`.
    pub repo: String,
    pub name: String,
    /// e.g. `.github/workflows/deploy.yml`.
    pub path: String,
    /// `active` unless a test disables it.
    pub state: String,
    /// Whether the workflow has an `on: workflow_dispatch` trigger.
    pub dispatchable: bool,
    /// The `workflow_dispatch` inputs it declares; anything else is refused.
    pub inputs: Vec<String>,
    /// Jobs a dispatched run of this workflow gets.
    pub jobs: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Workflow {
    /// The file name, which the API accepts in place of the id.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// A job as the fake stores it. A re-run adds new jobs with the next
/// `run_attempt`; the ones it did not re-run stay with their old attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Job {
    pub id: u64,
    pub run_id: u64,
    pub run_attempt: u32,
    pub name: String,
    pub status: Status,
    pub conclusion: Option<Conclusion>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A workflow run as the fake stores it; [`crate::FakeGitHub::run`] hands out
/// copies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkflowRun {
    pub id: u64,
    /// `owner/repo`.
    pub repo: String,
    pub workflow_id: u64,
    /// The workflow's name.
    pub name: String,
    /// Per workflow, counting from 1.
    pub run_number: u64,
    pub run_attempt: u32,
    pub head_branch: String,
    pub head_sha: String,
    pub event: String,
    pub status: Status,
    pub conclusion: Option<Conclusion>,
    pub created_at: DateTime<Utc>,
    pub run_started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub actor: String,
    pub triggering_actor: String,
    pub display_title: String,
    /// What a `workflow_dispatch` was given (empty otherwise).
    pub inputs: BTreeMap<String, String>,
    pub jobs: Vec<Job>,
}

impl WorkflowRun {
    /// The jobs of the latest attempt, as `filter=latest` lists them: for each
    /// job name the entry from the highest attempt.
    pub fn latest_jobs(&self) -> Vec<&Job> {
        let mut latest: Vec<&Job> = Vec::new();
        for job in &self.jobs {
            match latest.iter_mut().find(|j| j.name == job.name) {
                Some(slot) if slot.run_attempt < job.run_attempt => *slot = job,
                Some(_) => {}
                None => latest.push(job),
            }
        }
        latest
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deployment {
    pub id: u64,
    pub repo: String,
    pub environment: String,
    pub git_ref: String,
    pub sha: String,
    pub creator: String,
    pub created_at: DateTime<Utc>,
    pub statuses: Vec<String>,
}

/// A scripted failure for the next call of one endpoint (see
/// [`crate::FakeGitHub::fail_next`]), shaped as GitHub sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 403 with `retry-after` and GitHub's "You have exceeded a secondary
    /// rate limit" message; the primary budget headers stay as they are.
    SecondaryRateLimit { retry_after_secs: u64 },
    /// 500 with GitHub's `{"message":"Server Error"}`.
    ServerError,
    /// 404 `{"message":"Not Found"}`, as for a repository the token cannot see.
    NotFound,
    /// A bare status with a text body, as a proxy in front of GitHub sends.
    HttpStatus(u16),
}

/// Something that changed in the fake, as [`crate::FakeGitHub::subscribe`]
/// reports it: enough to know what to look at again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A run was seeded or created by a dispatch.
    RunCreated {
        run_id: u64,
    },
    /// A completed run started a new attempt.
    RunRerun {
        run_id: u64,
        attempt: u32,
    },
    RunCompleted {
        run_id: u64,
    },
    /// A webhook delivery was answered (or failed to connect).
    Delivered {
        delivery: String,
    },
    /// [`crate::FakeGitHub::reset`] forgot the recorded calls.
    Reset,
}

/// One webhook POST the fake made to the configured receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The `X-GitHub-Delivery` header.
    pub id: String,
    /// The `X-GitHub-Event` header, e.g. `workflow_run`.
    pub event: String,
    /// The payload's `action`, e.g. `completed`.
    pub action: String,
    pub run_id: u64,
    /// The receiver's HTTP status; `None` when it could not be reached.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// Everything behind the fake's one lock. Guarded by a std mutex that is
/// never held across an await.
#[derive(Debug)]
pub(crate) struct State {
    pub repos: Vec<Repo>,
    pub workflows: Vec<Workflow>,
    pub runs: Vec<WorkflowRun>,
    pub deployments: Vec<Deployment>,
    /// The test clock; `None` means the system clock.
    pub clock: Option<DateTime<Utc>>,
    pub calls: HashMap<String, usize>,
    pub failures: HashMap<String, VecDeque<Failure>>,
    pub rate: RateBudget,
    pub deliveries: Vec<Delivery>,
    next_repo: u64,
    next_workflow: u64,
    next_run: u64,
    next_job: u64,
    next_deployment: u64,
    /// Makes every minted sha distinct within one fake.
    sha_counter: u64,
}

/// The primary rate limit of the one token the fake knows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateBudget {
    pub limit: u64,
    pub used: u64,
    /// Epoch seconds when the window resets, as `x-ratelimit-reset` says.
    pub reset: i64,
}

/// GitHub's budget for a personal access token.
pub(crate) const DEFAULT_RATE_LIMIT: u64 = 5000;

impl State {
    pub fn new() -> Self {
        State {
            repos: Vec::new(),
            workflows: Vec::new(),
            runs: Vec::new(),
            deployments: Vec::new(),
            clock: None,
            calls: HashMap::new(),
            failures: HashMap::new(),
            rate: RateBudget { limit: DEFAULT_RATE_LIMIT, used: 0, reset: Utc::now().timestamp() + 3600 },
            deliveries: Vec::new(),
            next_repo: FIRST_REPO_ID,
            next_workflow: FIRST_WORKFLOW_ID,
            next_run: FIRST_RUN_ID,
            next_job: FIRST_JOB_ID,
            next_deployment: FIRST_DEPLOYMENT_ID,
            sha_counter: 0,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    pub fn count_call(&mut self, endpoint: &str) {
        *self.calls.entry(endpoint.to_owned()).or_default() += 1;
    }

    pub fn take_failure(&mut self, endpoint: &str) -> Option<Failure> {
        self.failures.get_mut(endpoint)?.pop_front()
    }

    /// A 40-hex-digit sha, deterministic for a given fake and seed order.
    pub fn mint_sha(&mut self, salt: &str) -> String {
        self.sha_counter += 1;
        let digest = Sha256::digest(format!("{salt}\n{}", self.sha_counter));
        hex::encode(&digest[..20])
    }

    pub fn add_repo(&mut self, owner_repo: &str, default_branch: &str) -> u64 {
        let (owner, name) = owner_repo.split_once('/').unwrap_or(("octo-org", owner_repo));
        if let Some(existing) = self.repo(owner_repo) {
            return existing.id;
        }
        let id = self.next_repo;
        self.next_repo += 1;
        let sha = self.mint_sha(owner_repo);
        self.repos.push(Repo {
            id,
            owner: owner.to_owned(),
            name: name.to_owned(),
            default_branch: default_branch.to_owned(),
            heads: BTreeMap::from([(default_branch.to_owned(), sha)]),
        });
        id
    }

    /// Owner and repository names are case-insensitive on GitHub.
    pub fn repo(&self, owner_repo: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.full_name().eq_ignore_ascii_case(owner_repo))
    }

    pub fn repo_mut(&mut self, owner_repo: &str) -> Option<&mut Repo> {
        self.repos.iter_mut().find(|r| r.full_name().eq_ignore_ascii_case(owner_repo))
    }

    pub fn add_workflow(&mut self, repo: &str, name: &str, path: &str) -> Option<u64> {
        let repo = self.repo(repo)?.full_name();
        let id = self.next_workflow;
        self.next_workflow += 1;
        let created_at = self.now();
        self.workflows.push(Workflow {
            id,
            repo,
            name: name.to_owned(),
            path: path.to_owned(),
            state: "active".to_owned(),
            dispatchable: true,
            inputs: Vec::new(),
            jobs: vec!["build".to_owned()],
            created_at,
        });
        Some(id)
    }

    /// By id or file name, as `{workflow_id}` in a path accepts either.
    pub fn workflow(&self, repo: &str, id_or_file: &str) -> Option<&Workflow> {
        let id: Option<u64> = id_or_file.parse().ok();
        self.workflows
            .iter()
            .find(|w| w.repo.eq_ignore_ascii_case(repo) && (Some(w.id) == id || w.file_name() == id_or_file))
    }

    pub fn workflow_by_id_mut(&mut self, id: u64) -> Option<&mut Workflow> {
        self.workflows.iter_mut().find(|w| w.id == id)
    }

    pub fn run(&self, id: u64) -> Option<&WorkflowRun> {
        self.runs.iter().find(|r| r.id == id)
    }

    pub fn run_mut(&mut self, id: u64) -> Option<&mut WorkflowRun> {
        self.runs.iter_mut().find(|r| r.id == id)
    }

    pub fn next_job_id(&mut self) -> u64 {
        let id = self.next_job;
        self.next_job += 1;
        id
    }

    /// Creates a run of `workflow_id` from `spec`; the caller has checked the
    /// workflow exists.
    pub fn add_run(&mut self, workflow_id: u64, spec: RunSpec) -> Option<u64> {
        let workflow = self.workflows.iter().find(|w| w.id == workflow_id)?.clone();
        let sha = match spec.sha {
            Some(sha) => sha,
            None => self.mint_sha(&format!("{}@{}", workflow.repo, spec.branch)),
        };
        // A run on a branch means the branch exists and that commit is its
        // head, so a later dispatch on it finds both.
        self.repo_mut(&workflow.repo)?.heads.insert(spec.branch.clone(), sha.clone());
        let id = self.next_run;
        self.next_run += 1;
        let run_number = self.runs.iter().filter(|r| r.workflow_id == workflow_id).count() as u64 + 1;
        let (status, updated_at) = match spec.conclusion {
            Some(_) => (Status::Completed, spec.started + spec.duration),
            None => (Status::InProgress, spec.started),
        };
        let job_specs = if spec.jobs.is_empty() { vec![("build".to_owned(), spec.conclusion)] } else { spec.jobs };
        let mut jobs = Vec::with_capacity(job_specs.len());
        for (name, conclusion) in job_specs {
            let job_id = self.next_job_id();
            jobs.push(Job {
                id: job_id,
                run_id: id,
                run_attempt: 1,
                name,
                status: if conclusion.is_some() { Status::Completed } else { Status::InProgress },
                conclusion,
                started_at: spec.started,
                completed_at: conclusion.map(|_| updated_at),
            });
        }
        self.runs.push(WorkflowRun {
            id,
            repo: workflow.repo.clone(),
            workflow_id,
            name: workflow.name.clone(),
            run_number,
            run_attempt: 1,
            head_branch: spec.branch,
            head_sha: sha,
            event: spec.event,
            status,
            conclusion: spec.conclusion,
            created_at: spec.started,
            run_started_at: spec.started,
            updated_at,
            actor: spec.actor.clone(),
            triggering_actor: spec.actor,
            display_title: spec.title,
            inputs: BTreeMap::new(),
            jobs,
        });
        Some(id)
    }

    pub fn add_deployment(&mut self, repo: &str, spec: DeploymentSpec) -> Option<u64> {
        let repo = self.repo(repo)?.full_name();
        let id = self.next_deployment;
        self.next_deployment += 1;
        self.deployments.push(Deployment {
            id,
            repo,
            environment: spec.environment,
            git_ref: spec.git_ref,
            sha: spec.sha,
            creator: spec.creator,
            created_at: spec.created_at,
            statuses: spec.statuses,
        });
        Some(id)
    }

    /// Forgets what was recorded about calls; the seeded data stays.
    pub fn clear_recorded(&mut self) {
        self.calls.clear();
        self.failures.clear();
        self.deliveries.clear();
        self.rate.used = 0;
    }
}
