//! The fake's GitHub: repositories and their commit history, workflows,
//! workflow runs and their jobs, deployments, plus what the fake has recorded
//! (call counters, queued failures, the rate-limit budget, webhook
//! deliveries). Pure data and the rules for minting GitHub-looking ids and
//! shas; walking the history lives in `history.rs`, JSON shapes in `json.rs`,
//! the HTTP layer in `api.rs`.

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
const FIRST_DEPLOYMENT_STATUS_ID: u64 = 2_100_000_001;

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
    /// Tag -> sha.
    pub tags: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// A commit in a repository's history. Every branch head, tag and run head
/// is one of these, so refs resolve and comparisons can walk parents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Commit {
    pub sha: String,
    /// `owner/repo`.
    pub repo: String,
    pub message: String,
    /// Login of the author (and committer); the git name is the login too.
    pub author: String,
    pub date: DateTime<Utc>,
    /// Empty for a repository's first commit.
    pub parents: Vec<String>,
    /// Order of creation within the fake: parents always come first, so it
    /// sorts a history oldest first.
    #[serde(skip)]
    pub(crate) seq: u64,
}

/// A `workflow_dispatch` input as a workflow file declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Input {
    pub name: String,
    /// A dispatch without it (and without a default) is refused with 422.
    pub required: bool,
    /// Used when a dispatch does not give the input.
    pub default: Option<String>,
}

impl Input {
    pub fn optional(name: &str) -> Self {
        Input { name: name.to_owned(), required: false, default: None }
    }

    pub fn required(name: &str) -> Self {
        Input { required: true, ..Input::optional(name) }
    }

    pub fn default(mut self, value: &str) -> Self {
        self.default = Some(value.to_owned());
        self
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
    pub inputs: Vec<Input>,
    /// The file's `run-name`, with `{input}` where `${{ inputs.input }}`
    /// would be: a dispatched run's `display_title`. `None` titles dispatched
    /// runs after the workflow, as GitHub does.
    pub run_name: Option<String>,
    /// Jobs a dispatched run of this workflow gets.
    pub jobs: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Workflow {
    /// The file name, which the API accepts in place of the id.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// `run-name` with the inputs filled in: `${{ inputs.x }}` (also
    /// `github.event.inputs.x`) or the shorthand `{x}`. An input without a
    /// value, and any other expression, reads as empty, as a missing value
    /// does in an expression.
    pub fn title_for(&self, inputs: &BTreeMap<String, String>) -> String {
        let Some(template) = &self.run_name else { return self.name.clone() };
        let input = |name: &str| inputs.get(name.trim()).cloned().unwrap_or_default();
        let mut title = String::with_capacity(template.len());
        let mut rest = template.as_str();
        loop {
            let expression = rest.find("${{");
            let shorthand = rest.find('{').filter(|&at| expression.is_none_or(|e| at < e));
            match (expression, shorthand) {
                (_, Some(open)) => match rest[open + 1..].find('}') {
                    Some(len) => {
                        title.push_str(&rest[..open]);
                        title.push_str(&input(&rest[open + 1..open + 1 + len]));
                        rest = &rest[open + 2 + len..];
                    }
                    None => break,
                },
                (Some(open), None) => match rest[open + 3..].find("}}") {
                    Some(len) => {
                        title.push_str(&rest[..open]);
                        let inner = rest[open + 3..open + 3 + len].trim();
                        let name = inner.strip_prefix("inputs.").or_else(|| inner.strip_prefix("github.event.inputs."));
                        title.push_str(&name.map(input).unwrap_or_default());
                        rest = &rest[open + 5 + len..];
                    }
                    None => break,
                },
                (None, None) => break,
            }
        }
        title.push_str(rest);
        title
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
    /// Where it goes now: a status may move it.
    pub environment: String,
    /// Where it was first created for.
    pub original_environment: String,
    pub git_ref: String,
    pub sha: String,
    /// `deploy` unless the creator said otherwise.
    pub task: String,
    pub description: Option<String>,
    pub payload: serde_json::Value,
    pub transient_environment: bool,
    pub production_environment: bool,
    pub creator: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Oldest first; the last one is the deployment's state.
    pub statuses: Vec<DeploymentStatus>,
}

impl Deployment {
    /// The latest status's state, as GitHub's UI shows the deployment.
    pub fn state(&self) -> Option<&str> {
        self.statuses.last().map(|s| s.state.as_str())
    }
}

/// The states GitHub accepts for a deployment status.
pub const DEPLOYMENT_STATES: [&str; 7] =
    ["error", "failure", "inactive", "in_progress", "queued", "pending", "success"];

/// One status of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeploymentStatus {
    pub id: u64,
    /// One of [`DEPLOYMENT_STATES`].
    pub state: String,
    pub description: String,
    pub environment: String,
    /// `log_url`, which GitHub also reports as `target_url`.
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub creator: String,
    pub created_at: DateTime<Utc>,
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
    /// A deployment was created through the API.
    DeploymentCreated {
        deployment_id: u64,
    },
    /// A deployment got a new status.
    DeploymentStatus {
        deployment_id: u64,
        state: String,
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
    /// Keyed by repository (lower case, as names are case-insensitive) and
    /// sha: a sha a test supplies may appear in two repositories.
    pub commits: HashMap<(String, String), Commit>,
    pub apps: crate::apps::Apps,
    pub clock: FakeClock,
    pub calls: HashMap<String, usize>,
    pub failures: HashMap<String, VecDeque<Failure>>,
    pub rate: RateBudget,
    pub deliveries: Vec<Delivery>,
    next_repo: u64,
    next_workflow: u64,
    next_run: u64,
    next_job: u64,
    next_deployment: u64,
    next_deployment_status: u64,
    /// Makes every minted sha distinct within one fake, and orders commits.
    sha_counter: u64,
}

/// What the fake stamps runs, commits and deployments with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FakeClock {
    /// The system clock, until a test sets or moves the time.
    System,
    /// A test's clock: stands still until moved.
    Frozen(DateTime<Utc>),
    /// The system clock moved ahead, as the sandbox's clock is: time
    /// passes, and jumps when the sandbox's user pushes it.
    Ahead(chrono::TimeDelta),
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
            commits: HashMap::new(),
            apps: crate::apps::Apps::default(),
            clock: FakeClock::System,
            calls: HashMap::new(),
            failures: HashMap::new(),
            rate: RateBudget { limit: DEFAULT_RATE_LIMIT, used: 0, reset: Utc::now().timestamp() + 3600 },
            deliveries: Vec::new(),
            next_repo: FIRST_REPO_ID,
            next_workflow: FIRST_WORKFLOW_ID,
            next_run: FIRST_RUN_ID,
            next_job: FIRST_JOB_ID,
            next_deployment: FIRST_DEPLOYMENT_ID,
            next_deployment_status: FIRST_DEPLOYMENT_STATUS_ID,
            sha_counter: 0,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.clock {
            FakeClock::System => Utc::now(),
            FakeClock::Frozen(at) => at,
            FakeClock::Ahead(by) => Utc::now() + by,
        }
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
        let created_at = self.now();
        self.repos.push(Repo {
            id,
            owner: owner.to_owned(),
            name: name.to_owned(),
            default_branch: default_branch.to_owned(),
            heads: BTreeMap::new(),
            tags: BTreeMap::new(),
            created_at,
        });
        let full = format!("{owner}/{name}");
        self.commit(&full, default_branch, "Initial commit", "octocat", created_at, None);
        id
    }

    /// Adds a commit on top of `branch` (created from the default branch's
    /// head if new) and moves the branch to it. `sha` is minted unless given;
    /// a given sha already in the history just becomes the branch's head.
    /// `None` for an unknown repository.
    pub fn commit(
        &mut self,
        repo: &str,
        branch: &str,
        message: &str,
        author: &str,
        date: DateTime<Utc>,
        sha: Option<String>,
    ) -> Option<String> {
        let entry = self.repo(repo)?;
        let full = entry.full_name();
        let parent = entry.heads.get(branch).or_else(|| entry.heads.get(&entry.default_branch)).cloned();
        let sha = match sha {
            Some(sha) if self.commit_by_sha(&full, &sha).is_some() => {
                self.repo_mut(&full)?.heads.insert(branch.to_owned(), sha.clone());
                return Some(sha);
            }
            Some(sha) => sha,
            None => self.mint_sha(&format!("{full}@{branch}")),
        };
        self.sha_counter += 1;
        let commit = Commit {
            sha: sha.clone(),
            repo: full.clone(),
            message: message.to_owned(),
            author: author.to_owned(),
            date,
            parents: parent.into_iter().collect(),
            seq: self.sha_counter,
        };
        self.commits.insert((full.to_ascii_lowercase(), sha.clone()), commit);
        self.repo_mut(&full)?.heads.insert(branch.to_owned(), sha.clone());
        Some(sha)
    }

    pub fn commit_by_sha(&self, repo: &str, sha: &str) -> Option<&Commit> {
        self.commits.get(&(repo.to_ascii_lowercase(), sha.to_owned()))
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
            run_name: None,
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
        // A run on a branch means the branch exists and that commit is its
        // head, so a later dispatch on it finds both and a comparison can
        // walk back from it. A push run brings its own commit.
        let sha = match spec.sha {
            Some(sha) => sha,
            None => self.commit(&workflow.repo, &spec.branch, &spec.title, &spec.actor, spec.started, None)?,
        };
        if self.commit_by_sha(&workflow.repo, &sha).is_none() {
            self.commit(&workflow.repo, &spec.branch, &spec.title, &spec.actor, spec.started, Some(sha.clone()))?;
        }
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
        let production = spec.environment == "production";
        self.deployments.push(Deployment {
            id,
            repo,
            environment: spec.environment.clone(),
            original_environment: spec.environment.clone(),
            git_ref: spec.git_ref,
            sha: spec.sha,
            task: "deploy".to_owned(),
            description: None,
            payload: serde_json::json!({}),
            transient_environment: false,
            production_environment: production,
            creator: spec.creator.clone(),
            created_at: spec.created_at,
            updated_at: spec.created_at,
            statuses: Vec::new(),
        });
        for state in spec.statuses {
            let status = self.new_deployment_status(id, &state, "", &spec.creator, spec.created_at);
            self.push_deployment_status(id, status);
        }
        Some(id)
    }

    pub fn deployment_mut(&mut self, id: u64) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.id == id)
    }

    /// A status for `deployment` in its current environment, not yet added.
    pub fn new_deployment_status(
        &mut self,
        deployment: u64,
        state: &str,
        description: &str,
        creator: &str,
        at: DateTime<Utc>,
    ) -> DeploymentStatus {
        let id = self.next_deployment_status;
        self.next_deployment_status += 1;
        let environment =
            self.deployments.iter().find(|d| d.id == deployment).map(|d| d.environment.clone()).unwrap_or_default();
        DeploymentStatus {
            id,
            state: state.to_owned(),
            description: description.to_owned(),
            environment,
            log_url: None,
            environment_url: None,
            creator: creator.to_owned(),
            created_at: at,
        }
    }

    /// Appends `status` (which may move the deployment to its environment).
    pub fn push_deployment_status(&mut self, deployment: u64, status: DeploymentStatus) {
        if let Some(d) = self.deployment_mut(deployment) {
            d.environment.clone_from(&status.environment);
            d.updated_at = status.created_at.max(d.updated_at);
            d.statuses.push(status);
        }
    }

    /// Forgets what was recorded about calls; the seeded data stays.
    pub fn clear_recorded(&mut self) {
        self.calls.clear();
        self.failures.clear();
        self.deliveries.clear();
        self.rate.used = 0;
    }
}
