//! An in-process fake of GitHub's REST API, for opsbot's end-to-end tests,
//! load benchmark and browser sandbox: what the `/pipeline` command reads and
//! does through octocrab, answered the way `https://api.github.com` answers.
//!
//! It serves, under `/repos/{owner}/{repo}`: the repository itself; its
//! commit history (`commits/{ref}`, `compare/{base}...{head}` with status,
//! ahead/behind counts and commits oldest first); Actions workflows, runs,
//! jobs, `rerun-failed-jobs` and `dispatches`; deployments and their
//! statuses. Also `/rate_limit`, and GitHub App authentication: a
//! repository's `installation` and `/app/installations/{id}/access_tokens`
//! for an App's RS256 JWT, whose installation tokens then work like the
//! personal token until they expire. JSON is shaped so octocrab's models
//! deserialize it; lists filter and page with `Link`; errors carry GitHub's
//! status codes and messages; every answer has the `x-ratelimit-*` headers
//! and a primary budget runs out. Completed runs are reported to the bot as
//! signed `workflow_run` webhooks.
//!
//! Tests seed it, drive runs and deployments, script failures, count calls
//! per endpoint (named by GitHub's operation ids, see [`endpoint`]) and wait
//! for webhook deliveries:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use opsbot_fake_github::{Conclusion, FakeGitHub, Input};
//!
//! let github = FakeGitHub::new();
//! github.add_repo("octo-org/shop", "main");
//! let shipped = github.add_commit("octo-org/shop", "main", "Fix checkout rounding", "alice");
//! github.add_tag("octo-org/shop", "v1.4.1", &shipped);
//! github.add_commit("octo-org/shop", "main", "Add gift cards", "bob"); // v1.4.1...main: 1 ahead
//! let deploy = github.add_workflow("octo-org/shop", "Deploy", ".github/workflows/deploy.yml");
//! github.set_inputs(deploy, vec![Input::required("opsbot_id")]);
//! github.set_run_name(deploy, "Deploy ${{ inputs.opsbot_id }}");
//! let server = github.spawn().await?; // point octocrab's base_uri at server.api_url
//! github.deliver_to("http://127.0.0.1:3000/github/webhook", "webhook-secret");
//! // ... the bot dispatches deploy.yml with opsbot_id DEP-3: a queued run
//! // titled "Deploy DEP-3" ...
//! let run = github.runs("octo-org/shop")[0].id;
//! github.start_run(run);
//! github.complete_run(run, Conclusion::Failure); // POSTs a signed workflow_run "completed"
//! # drop(server); Ok(()) }
//! ```
//!
//! For App authentication a test generates an RSA key pair, gives octocrab
//! the private key (`Octocrab::builder().app(id, key)`, which needs
//! octocrab's `jwt-rust-crypto` feature without aws-lc) and the fake the
//! public one with [`FakeGitHub::add_app`], then installs the App with
//! [`FakeGitHub::install_app`].
//!
//! Two clocks: runs, commits and deployments are stamped with the fake's
//! clock, which a test may freeze and move ([`FakeGitHub::set_now`]) and
//! the sandbox keeps ahead of the wall clock in step with its own
//! ([`FakeGitHub::run_ahead`]); JWTs and installation tokens are checked
//! against the wall clock, as clients stamp JWTs with it
//! ([`FakeGitHub::expire_installation_tokens`] ends tokens early).

mod api;
mod apps;
mod history;
mod json;
mod repos;
mod state;
mod webhook;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{broadcast, oneshot, Notify};

pub use state::{
    Change, Commit, Conclusion, Delivery, Deployment, DeploymentSpec, DeploymentStatus, Failure, Input, Job, RunSpec,
    Status, Workflow, WorkflowRun, DEPLOYMENT_STATES,
};
use state::{FakeClock, State};
pub use webhook::signature;

/// The token [`FakeGitHub::new`] accepts.
pub const DEFAULT_TOKEN: &str = "ghp_fake_opsbot_token";

/// The login the token belongs to: the actor of runs the API creates.
pub const TOKEN_LOGIN: &str = "opsbot[bot]";

/// Names for [`FakeGitHub::calls`] and [`FakeGitHub::fail_next`]: GitHub's own
/// operation ids from its OpenAPI description, so they match the docs.
pub mod endpoint {
    pub const GET_REPO: &str = "repos/get";
    pub const GET_COMMIT: &str = "repos/get-commit";
    pub const COMPARE: &str = "repos/compare-commits";
    pub const LIST_REPO_RUNS: &str = "actions/list-workflow-runs-for-repo";
    pub const LIST_WORKFLOW_RUNS: &str = "actions/list-workflow-runs";
    pub const GET_RUN: &str = "actions/get-workflow-run";
    pub const LIST_RUN_JOBS: &str = "actions/list-jobs-for-workflow-run";
    pub const LIST_WORKFLOWS: &str = "actions/list-repo-workflows";
    pub const GET_WORKFLOW: &str = "actions/get-workflow";
    pub const RERUN_FAILED_JOBS: &str = "actions/re-run-workflow-failed-jobs";
    pub const DISPATCH: &str = "actions/create-workflow-dispatch";
    pub const LIST_DEPLOYMENTS: &str = "repos/list-deployments";
    pub const GET_DEPLOYMENT: &str = "repos/get-deployment";
    pub const CREATE_DEPLOYMENT: &str = "repos/create-deployment";
    pub const LIST_DEPLOYMENT_STATUSES: &str = "repos/list-deployment-statuses";
    pub const CREATE_DEPLOYMENT_STATUS: &str = "repos/create-deployment-status";
    pub const RATE_LIMIT: &str = "rate-limit/get";
    pub const GET_REPO_INSTALLATION: &str = "apps/get-repo-installation";
    pub const GET_INSTALLATION: &str = "apps/get-installation";
    pub const CREATE_INSTALLATION_TOKEN: &str = "apps/create-installation-access-token";
    /// Any path the fake does not serve.
    pub const UNKNOWN: &str = "unknown";
}

/// A fake GitHub. Cheap to clone; clones share state, so a test can keep one
/// handle while the server holds another.
#[derive(Clone, Debug)]
pub struct FakeGitHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    token: String,
    state: Mutex<State>,
    unavailable: AtomicBool,
    /// Where completed runs are reported, and the secret that signs them.
    webhook: Mutex<Option<webhook::Target>>,
    /// Signalled on every change so `wait_for` need not poll.
    changed: Notify,
    changes: broadcast::Sender<Change>,
}

/// How many changes a slow subscriber may fall behind before it is told it
/// lagged (and should look at everything again).
const CHANGE_BUFFER: usize = 256;

impl Inner {
    /// A test that panicked while holding the lock must not take every later
    /// assertion down with it, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_unavailable(&self) -> bool {
        self.unavailable.load(Ordering::Relaxed)
    }

    /// Tells waiters and subscribers; call it after the lock is released.
    fn emit(&self, change: Change) {
        // No subscriber is the usual case in tests, not an error.
        let _ = self.changes.send(change);
        self.changed.notify_waiters();
    }
}

impl Default for FakeGitHub {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeGitHub {
    /// An empty GitHub accepting [`DEFAULT_TOKEN`].
    pub fn new() -> Self {
        Self::with_token(DEFAULT_TOKEN)
    }

    /// An empty GitHub accepting `token` (as `Bearer` or `token`).
    pub fn with_token(token: &str) -> Self {
        FakeGitHub {
            inner: Arc::new(Inner {
                token: token.to_owned(),
                state: Mutex::new(State::new()),
                unavailable: AtomicBool::new(false),
                webhook: Mutex::new(None),
                changed: Notify::new(),
                changes: broadcast::channel(CHANGE_BUFFER).0,
            }),
        }
    }

    /// Routes `/repos/...` and `/rate_limit`; nest it where the API should
    /// live. `Link` headers follow the prefix it is nested under.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Serves the API at the root of `127.0.0.1` on an ephemeral port, as
    /// api.github.com serves it at its root, until the handle is dropped.
    pub async fn spawn(&self) -> std::io::Result<SpawnedFake> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = self.router();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                // A dropped sender means the same as an explicit stop.
                let _ = rx.await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        Ok(SpawnedFake { addr, api_url: format!("http://{addr}"), shutdown: Some(tx) })
    }

    // --- Seeding -----------------------------------------------------------

    /// Adds `owner/repo` with its default branch (which exists from the
    /// start). Adding it again changes nothing.
    pub fn add_repo(&self, owner_repo: &str, default_branch: &str) {
        self.inner.lock().add_repo(owner_repo, default_branch);
    }

    /// Makes `branch` exist in `repo`, pointing at the default branch's head
    /// as a branch just created from it does, and returns that sha. An
    /// existing branch is left where it is. Panics on an unknown repository.
    pub fn add_branch(&self, repo: &str, branch: &str) -> String {
        let mut state = self.inner.lock();
        let entry = state.repo_mut(repo).unwrap_or_else(|| panic!("add_branch: unknown repository {repo}"));
        let from = entry.heads[&entry.default_branch].clone();
        entry.heads.entry(branch.to_owned()).or_insert(from).clone()
    }

    /// Commits on top of `branch` (creating it from the default branch if
    /// new), authored by `author` (a login) at the fake's clock, and returns
    /// the new sha. Panics on an unknown repository.
    pub fn add_commit(&self, repo: &str, branch: &str, message: &str, author: &str) -> String {
        let mut state = self.inner.lock();
        let now = state.now();
        state
            .commit(repo, branch, message, author, now, None)
            .unwrap_or_else(|| panic!("add_commit: unknown repository {repo}"))
    }

    /// Tags the commit `reference` (a branch, tag or sha) resolves to and
    /// returns its sha. Panics on an unknown repository or ref.
    pub fn add_tag(&self, repo: &str, tag: &str, reference: &str) -> String {
        let mut state = self.inner.lock();
        let sha = history::resolve(&state, repo, reference)
            .unwrap_or_else(|| panic!("add_tag: no {reference} in {repo}"))
            .sha
            .clone();
        state.repo_mut(repo).expect("resolved above").tags.insert(tag.to_owned(), sha.clone());
        sha
    }

    /// The commit `reference` (a branch, tag or sha) names in `repo`.
    pub fn commit(&self, repo: &str, reference: &str) -> Option<Commit> {
        history::resolve(&self.inner.lock(), repo, reference).cloned()
    }

    /// Adds an active workflow that has a `workflow_dispatch` trigger without
    /// inputs and one job, `build`. Returns its id. Panics on an unknown
    /// repository: seeding mistakes should fail loudly.
    pub fn add_workflow(&self, repo: &str, name: &str, path: &str) -> u64 {
        self.inner
            .lock()
            .add_workflow(repo, name, path)
            .unwrap_or_else(|| panic!("add_workflow: unknown repository {repo}"))
    }

    /// Declares the optional `workflow_dispatch` inputs `workflow` accepts;
    /// dispatches with any other input are refused with 422, as GitHub does.
    pub fn declare_inputs(&self, workflow: u64, inputs: &[&str]) {
        self.with_workflow(workflow, |w| w.inputs = inputs.iter().map(|s| Input::optional(s)).collect());
    }

    /// Declares `workflow`'s inputs with their `required` flags and defaults,
    /// replacing earlier ones: a dispatch missing a required input without a
    /// default is refused with 422, as GitHub does.
    pub fn set_inputs(&self, workflow: u64, inputs: Vec<Input>) {
        self.with_workflow(workflow, |w| w.inputs = inputs);
    }

    /// Gives `workflow` a `run-name`, which titles its dispatched runs
    /// (`display_title`): `"Deploy ${{ inputs.opsbot_id }}"` or the
    /// shorthand `"Deploy {opsbot_id}"`.
    pub fn set_run_name(&self, workflow: u64, template: &str) {
        self.with_workflow(workflow, |w| w.run_name = Some(template.to_owned()));
    }

    /// Removes (or restores) the workflow's `workflow_dispatch` trigger.
    pub fn set_dispatchable(&self, workflow: u64, dispatchable: bool) {
        self.with_workflow(workflow, |w| w.dispatchable = dispatchable);
    }

    /// The jobs a dispatched run of `workflow` gets (default: `build`).
    pub fn set_jobs(&self, workflow: u64, jobs: &[&str]) {
        self.with_workflow(workflow, |w| w.jobs = jobs.iter().map(|s| (*s).to_owned()).collect());
    }

    fn with_workflow(&self, id: u64, f: impl FnOnce(&mut Workflow)) {
        let mut state = self.inner.lock();
        f(state.workflow_by_id_mut(id).unwrap_or_else(|| panic!("unknown workflow {id}")));
    }

    /// Adds a run of `workflow` (an id from [`FakeGitHub::add_workflow`]) in
    /// `repo`, completed or in progress as `spec` says, and returns its id.
    /// Seeded runs are history: no webhook is sent for them.
    pub fn add_run(&self, repo: &str, workflow: u64, spec: RunSpec) -> u64 {
        let id = {
            let mut state = self.inner.lock();
            let known = state.workflows.iter().any(|w| w.id == workflow && w.repo.eq_ignore_ascii_case(repo));
            assert!(known, "add_run: no workflow {workflow} in {repo}");
            state.add_run(workflow, spec).expect("workflow checked above")
        };
        self.inner.emit(Change::RunCreated { run_id: id });
        id
    }

    /// Adds a deployment with its statuses and returns its id. Panics on an
    /// unknown repository.
    pub fn add_deployment(&self, repo: &str, spec: DeploymentSpec) -> u64 {
        self.inner
            .lock()
            .add_deployment(repo, spec)
            .unwrap_or_else(|| panic!("add_deployment: unknown repository {repo}"))
    }

    /// Gives a deployment a new status at the fake's clock, as the workflow
    /// deploying it would (`failure` makes it fail), and returns the status
    /// id. Panics on an unknown deployment or a state GitHub does not have
    /// (see [`DEPLOYMENT_STATES`]).
    pub fn add_deployment_status(&self, deployment: u64, state: &str, description: &str) -> u64 {
        assert!(DEPLOYMENT_STATES.contains(&state), "add_deployment_status: no state {state:?} on GitHub");
        let id = {
            let mut fake = self.inner.lock();
            assert!(fake.deployments.iter().any(|d| d.id == deployment), "unknown deployment {deployment}");
            let now = fake.now();
            let status = fake.new_deployment_status(deployment, state, description, "github-actions[bot]", now);
            let id = status.id;
            fake.push_deployment_status(deployment, status);
            id
        };
        self.inner.emit(Change::DeploymentStatus { deployment_id: deployment, state: state.to_owned() });
        id
    }

    /// A copy of the deployment with its statuses (oldest first).
    pub fn deployment(&self, id: u64) -> Option<Deployment> {
        self.inner.lock().deployments.iter().find(|d| d.id == id).cloned()
    }

    /// The repository's deployments, newest first (as the API lists them).
    pub fn deployments(&self, repo: &str) -> Vec<Deployment> {
        let state = self.inner.lock();
        let mut list: Vec<Deployment> =
            state.deployments.iter().filter(|d| d.repo.eq_ignore_ascii_case(repo)).cloned().collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        list
    }

    // --- GitHub Apps ------------------------------------------------------------

    /// Registers a GitHub App: `app_id` is what its JWTs carry as `iss`,
    /// `public_key_pem` (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`) checks
    /// their RS256 signatures, and runs it dispatches are by `{slug}[bot]`.
    /// Panics on a key that does not parse.
    pub fn add_app(&self, app_id: u64, slug: &str, public_key_pem: &str) {
        self.inner.lock().apps.add_app(app_id, slug, public_key_pem).unwrap_or_else(|e| panic!("add_app: {e}"));
    }

    /// Installs the App on every repository of `account` and returns the
    /// installation id. Panics on an unknown App, or one already installed
    /// there (GitHub has one installation per App and account).
    pub fn install_app(&self, app_id: u64, account: &str) -> u64 {
        let mut state = self.inner.lock();
        assert!(state.apps.apps.iter().any(|a| a.id == app_id), "install_app: unknown app {app_id}");
        state.apps.install(app_id, account, None).unwrap_or_else(|e| panic!("install_app: {e}"))
    }

    /// Installs the App on some repositories (`owner/name`, one owner) and
    /// returns the installation id. Panics on an unknown App or repository,
    /// or an App already installed on that owner.
    pub fn install_app_on(&self, app_id: u64, repos: &[&str]) -> u64 {
        let mut state = self.inner.lock();
        assert!(state.apps.apps.iter().any(|a| a.id == app_id), "install_app_on: unknown app {app_id}");
        let names: Vec<String> = repos
            .iter()
            .map(|r| state.repo(r).unwrap_or_else(|| panic!("install_app_on: unknown repository {r}")).full_name())
            .collect();
        let owner =
            names.first().and_then(|n| n.split('/').next()).expect("install_app_on: no repositories").to_owned();
        assert!(names.iter().all(|n| n.starts_with(&format!("{owner}/"))), "install_app_on: one owner only");
        state.apps.install(app_id, &owner, Some(names)).unwrap_or_else(|e| panic!("install_app_on: {e}"))
    }

    /// Makes every installation token minted so far expired, as an hour
    /// passing would: using one answers 401 "Bad credentials" until the App
    /// mints another.
    pub fn expire_installation_tokens(&self) {
        self.inner.lock().apps.expire_tokens();
    }

    // --- The clock and the life of a run ------------------------------------

    /// Freezes the fake's clock at `now`: dispatches, re-runs and completions
    /// are stamped with it. Until this (or [`FakeGitHub::run_ahead`]) is
    /// called the system clock is used.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.inner.lock().clock = FakeClock::Frozen(now);
    }

    /// Makes the fake's clock the system clock moved `by` ahead: time
    /// passes on its own, as it does on the sandbox's clock, and
    /// [`FakeGitHub::advance`] pushes it further.
    pub fn run_ahead(&self, by: TimeDelta) {
        self.inner.lock().clock = FakeClock::Ahead(by);
    }

    /// Moves the clock forward: a frozen clock (or the system clock, which
    /// it then freezes) stands still at the new time, a clock running
    /// ahead runs on from there.
    pub fn advance(&self, by: Duration) {
        let mut state = self.inner.lock();
        let by = TimeDelta::from_std(by).expect("advance: a duration a clock can move by");
        state.clock = match state.clock {
            FakeClock::Ahead(ahead) => FakeClock::Ahead(ahead + by),
            FakeClock::System | FakeClock::Frozen(_) => FakeClock::Frozen(state.now() + by),
        };
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.lock().now()
    }

    /// Moves a queued run (from a dispatch) to in progress, as a runner
    /// picking it up does, and sends the `workflow_run` `in_progress`
    /// webhook when [`FakeGitHub::deliver_to`] configured one, as GitHub
    /// does. Returns false for an unknown or non-queued run.
    pub fn start_run(&self, run_id: u64) -> bool {
        let payload = {
            let mut state = self.inner.lock();
            let now = state.now();
            let Some(run) = state.run_mut(run_id) else { return false };
            if run.status != Status::Queued {
                return false;
            }
            run.status = Status::InProgress;
            run.run_started_at = now;
            run.updated_at = now;
            let attempt = run.run_attempt;
            for job in run.jobs.iter_mut().filter(|j| j.run_attempt == attempt && j.status == Status::Queued) {
                job.status = Status::InProgress;
                job.started_at = now;
            }
            webhook::workflow_run_payload(&state, run_id, "in_progress")
        };
        if let Some(payload) = payload {
            self.deliver("workflow_run", "in_progress", run_id, payload);
        }
        true
    }

    /// Completes a queued or in-progress run at the fake's clock: its
    /// unfinished jobs end with `conclusion` too. Sends the `workflow_run`
    /// `completed` webhook when [`FakeGitHub::deliver_to`] configured one.
    /// Returns false for an unknown or already completed run.
    pub fn complete_run(&self, run_id: u64, conclusion: Conclusion) -> bool {
        let payload = {
            let mut state = self.inner.lock();
            let now = state.now();
            let Some(run) = state.run_mut(run_id) else { return false };
            if run.status == Status::Completed {
                return false;
            }
            run.status = Status::Completed;
            run.conclusion = Some(conclusion);
            run.updated_at = now.max(run.run_started_at);
            for job in run.jobs.iter_mut().filter(|j| j.status != Status::Completed) {
                job.status = Status::Completed;
                job.conclusion = Some(conclusion);
                job.completed_at = Some(now.max(job.started_at));
            }
            webhook::workflow_run_payload(&state, run_id, "completed")
        };
        self.inner.emit(Change::RunCompleted { run_id });
        if let Some(payload) = payload {
            self.deliver("workflow_run", "completed", run_id, payload);
        }
        true
    }

    /// A copy of the run as it is now.
    pub fn run(&self, run_id: u64) -> Option<WorkflowRun> {
        self.inner.lock().run(run_id).cloned()
    }

    /// The repository's runs, newest first (as the API lists them).
    pub fn runs(&self, repo: &str) -> Vec<WorkflowRun> {
        let state = self.inner.lock();
        let mut runs: Vec<WorkflowRun> =
            state.runs.iter().filter(|r| r.repo.eq_ignore_ascii_case(repo)).cloned().collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        runs
    }

    // --- Webhooks ---------------------------------------------------------

    /// From now on, POSTs `workflow_run` deliveries to `url`, signed with
    /// `secret` in `X-Hub-Signature-256` as GitHub signs them.
    pub fn deliver_to(&self, url: &str, secret: &str) {
        *self.inner.webhook.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(webhook::Target { url: url.to_owned(), secret: secret.to_owned() });
    }

    /// Deliveries made so far (answered or failed), in the order they were
    /// answered.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().deliveries.clone()
    }

    fn deliver(&self, event: &str, action: &str, run_id: u64, payload: serde_json::Value) {
        let target = self.inner.webhook.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(target) = target {
            webhook::send(self.clone(), target, event, action, run_id, payload);
        }
    }

    fn record_delivery(&self, delivery: Delivery) {
        let id = delivery.id.clone();
        self.inner.lock().deliveries.push(delivery);
        self.inner.emit(Change::Delivered { delivery: id });
    }

    // --- Test controls ------------------------------------------------------

    /// Requests received for an [`endpoint`], including failed and rejected
    /// ones.
    pub fn calls(&self, endpoint: &str) -> usize {
        self.inner.lock().calls.get(endpoint).copied().unwrap_or(0)
    }

    /// Queues a failure for the next call of an [`endpoint`]. Queued failures
    /// are consumed first-in first-out, one per call, before auth and the
    /// rate limit.
    pub fn fail_next(&self, endpoint: &str, failure: Failure) {
        self.inner.lock().failures.entry(endpoint.to_owned()).or_default().push_back(failure);
    }

    /// While set, every endpoint answers HTTP 503 (calls are still counted,
    /// queued failures are left for later).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.unavailable.store(unavailable, Ordering::Relaxed);
        self.inner.changed.notify_waiters();
    }

    /// Sets the primary rate limit (5000 by default, as for a personal access
    /// token) and starts a fresh window with nothing used. Once `limit`
    /// requests have been made, every endpoint but `/rate_limit` answers 403
    /// with `x-ratelimit-remaining: 0` until the next call of this.
    pub fn set_rate_limit(&self, limit: u64) {
        let mut state = self.inner.lock();
        let reset = state.now().timestamp() + 3600;
        state.rate = state::RateBudget { limit, used: 0, reset };
    }

    /// What `x-ratelimit-remaining` would say now.
    pub fn rate_limit_remaining(&self) -> u64 {
        let rate = self.inner.lock().rate;
        rate.limit.saturating_sub(rate.used)
    }

    /// Forgets call counters, queued failures, deliveries and the used rate
    /// budget, and ends an outage; repositories, history, workflows, runs,
    /// deployments, Apps and their tokens stay.
    pub fn reset(&self) {
        self.inner.lock().clear_recorded();
        self.inner.unavailable.store(false, Ordering::Relaxed);
        self.inner.emit(Change::Reset);
    }

    /// Every change from now on. A receiver that falls more than a few
    /// hundred changes behind gets `RecvError::Lagged` and should look at the
    /// whole state again.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// Re-evaluates `f` after every change to the fake until it returns `Some`
    /// or `timeout` elapses (then `f` gets one last look).
    pub async fn wait_for<T>(&self, timeout: Duration, mut f: impl FnMut(&FakeGitHub) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            // Registering before looking means a change made between the look
            // and the await still wakes us.
            notified.as_mut().enable();
            if let Some(found) = f(self) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return f(self);
            }
        }
    }
}

/// A running fake server; dropping it stops the server.
#[derive(Debug)]
pub struct SpawnedFake {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, the value for octocrab's `base_uri`.
    pub api_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for SpawnedFake {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
