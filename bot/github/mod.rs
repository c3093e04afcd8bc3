//! opsbot's GitHub client: octocrab pointed at `GITHUB_API_URL`, signed in
//! with a token or as a GitHub App, answering the core's
//! [`Lookup`]s. It keeps GitHub's rules so GitHub keeps answering: it stops
//! asking while a rate limit (primary or secondary) is spent and says until
//! when, gives up on a slow answer rather than hold a person waiting, and
//! answers repeated questions from a short cache.

pub mod cache;
pub mod checks;

use crate::clock::Clock;
use crate::metrics::Metrics;
use cache::Cache;
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use octocrab::Octocrab;
use opsbot_handlers::deploy::Action;
use opsbot_handlers::github::{
    Activity, Call, CommitLine, DeployPreview, Deployments, DispatchedRun, LastDeployment, Lookup, Repo, RunRecord,
    RunState, Unavailable,
};
use opsbot_handlers::pipeline::Setup;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one call to GitHub may take, end to end: a person is waiting.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an answer is reused: long enough that a channel asking at once
/// costs one call, short enough that a re-run shows up soon.
const ANSWER_TTL: TimeDelta = TimeDelta::seconds(30);
/// A repository's default branch and workflows change rarely.
const SHAPE_TTL: TimeDelta = TimeDelta::minutes(10);
/// How long the confirmation modal of a deployment waits for GitHub's
/// preview: Slack's `trigger_id` lives 3 s, and the modal opens anyway
/// (saying why the commits are missing) when GitHub is slower.
const PREVIEW_DEADLINE: Duration = Duration::from_millis(1500);
/// A preview is reused this long: a person who cancels and types the
/// command again sees the same commits at once.
const PREVIEW_TTL: TimeDelta = TimeDelta::seconds(30);
/// The environment's deployments looked through for its last successful one.
const DEPLOYMENTS_READ: usize = 10;
/// GitHub's largest page.
const PER_PAGE: usize = 100;
/// Pages read for one status: 500 runs a day is a busy repository; beyond
/// that the figures are over the newest 500, and the answer says so.
const MAX_PAGES: usize = 5;
/// When GitHub says "secondary rate limit" without a `retry-after`, its
/// docs ask for at least a minute.
const SECONDARY_WAIT: TimeDelta = TimeDelta::seconds(60);

// The settings live with the rest of the configuration; named here too,
// where they are used.
pub use crate::config::{GitHubAuth as Auth, GitHubSettings};

/// The client. Cheap to clone; clones share the cache and the limits.
#[derive(Clone)]
pub struct GitHub {
    repository: Option<Repo>,
    connected: Option<Arc<Connected>>,
    /// GitHub's web address, for links opsbot makes itself.
    web: Option<String>,
}

struct Connected {
    signed_in: SignedIn,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// GitHub told us to stop until then.
    blocked_until: Mutex<Option<DateTime<Utc>>>,
    answers: Cache<Lookup, Activity>,
    previews: Cache<PreviewKey, DeployPreview>,
    default_branches: Cache<Repo, String>,
    workflows: Cache<Repo, Vec<WorkflowJson>>,
    /// A repository's deployments over a window of hours.
    deployments: Cache<(Repo, u32), Deployments>,
    /// A fetch for a checklist's checks outlasted its wait: until then,
    /// the next ones wait only briefly.
    checks_slow_until: Mutex<Option<tokio::time::Instant>>,
}

enum SignedIn {
    Token(Arc<Octocrab>),
    /// The App's own client (JWT) and one installation client per
    /// repository, each renewing its installation token by itself. Shared
    /// behind an `Arc`: a cloned octocrab client copies its token cache,
    /// so the clone would mint a token of its own.
    App {
        app: Box<Octocrab>,
        installations: tokio::sync::Mutex<HashMap<Repo, Arc<Octocrab>>>,
    },
}

impl GitHub {
    /// Not connected: `/pipeline` explains how to connect.
    pub fn disconnected(repository: Option<Repo>) -> GitHub {
        GitHub { repository, connected: None, web: None }
    }

    pub fn new(settings: &GitHubSettings, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> anyhow::Result<GitHub> {
        let Some(auth) = &settings.auth else {
            return Ok(GitHub::disconnected(settings.repository.clone()));
        };
        let builder = Octocrab::builder()
            .base_uri(settings.api_url.as_str())
            .map_err(|_| anyhow::anyhow!("GITHUB_API_URL is not a URL octocrab accepts"))?
            .set_connect_timeout(Some(Duration::from_secs(5)))
            .set_read_timeout(Some(CALL_TIMEOUT))
            // A rate limit is told to the person, never slept through.
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None);
        let signed_in = match auth {
            Auth::Token(token) => SignedIn::Token(Arc::new(
                builder
                    .personal_token(token.expose().to_owned())
                    .build()
                    .map_err(|_| anyhow::anyhow!("could not set up the GitHub client"))?,
            )),
            Auth::App { id, private_key } => {
                let key = octocrab::EncodingKey::from_rsa_pem(private_key.expose().as_bytes())
                    .map_err(|_| anyhow::anyhow!("GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM"))?;
                let app = builder
                    .app(octocrab::models::AppId(*id), key)
                    .build()
                    .map_err(|_| anyhow::anyhow!("could not set up the GitHub App client"))?;
                SignedIn::App { app: Box::new(app), installations: tokio::sync::Mutex::new(HashMap::new()) }
            }
        };
        Ok(GitHub {
            repository: settings.repository.clone(),
            web: Some(web_address(&settings.api_url)),
            connected: Some(Arc::new(Connected {
                signed_in,
                clock,
                metrics,
                blocked_until: Mutex::new(None),
                answers: Cache::new(ANSWER_TTL),
                previews: Cache::new(PREVIEW_TTL),
                default_branches: Cache::new(SHAPE_TTL),
                workflows: Cache::new(SHAPE_TTL),
                deployments: Cache::new(ANSWER_TTL),
                checks_slow_until: Mutex::new(None),
            })),
        })
    }

    /// What the core needs to know to decide `/pipeline`.
    pub fn setup(&self) -> Setup {
        Setup { connected: self.connected.is_some(), repository: self.repository.clone(), web: self.web.clone() }
    }

    /// Does what a decision asked of GitHub. Never cached, never retried
    /// here: the outbox decides what a failure means. A dispatch answers
    /// the run it made when GitHub names it.
    pub async fn call(&self, call: &Call) -> Result<Option<DispatchedRun>, Unavailable> {
        let Some(c) = &self.connected else {
            return Err(Unavailable::NotConnected);
        };
        match call {
            Call::RerunFailedJobs { repo, run_id } => {
                let client = c.client(repo).await?;
                let path = format!("/repos/{repo}/actions/runs/{run_id}/rerun-failed-jobs");
                c.request(&client, Verb::Post(None), &path, &format!("run {run_id}")).await.map(|_| None)
            }
            Call::Dispatch { repo, workflow, git_ref, inputs, once } => {
                if let Some(id) = once {
                    if let Some(run) = c.dispatched_before(repo, workflow, id).await? {
                        tracing::info!(%repo, %workflow, run = run.run_id, "the dispatch was taken before; not sent again");
                        return Ok(Some(run));
                    }
                }
                let branch = match git_ref {
                    Some(branch) => branch.clone(),
                    None => c.default_branch(repo).await?,
                };
                let client = c.client(repo).await?;
                let inputs: serde_json::Map<String, serde_json::Value> =
                    inputs.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
                // `return_run_details`: GitHub names the run it made, so the
                // message links it at once. An answer without it (204, as
                // before GitHub could) leaves the run to its webhook.
                let body = serde_json::json!({ "ref": branch, "inputs": inputs, "return_run_details": true });
                let path = format!("/repos/{repo}/actions/workflows/{}/dispatches", path_segment(workflow));
                let answer =
                    c.request(&client, Verb::Post(Some(&body)), &path, &format!("the workflow `{workflow}`")).await?;
                #[derive(Deserialize)]
                struct RunDetails {
                    workflow_run_id: u64,
                    html_url: String,
                }
                Ok(serde_json::from_slice::<RunDetails>(&answer)
                    .ok()
                    .map(|r| DispatchedRun { run_id: r.workflow_run_id, url: r.html_url }))
            }
        }
    }

    /// What a deployment's confirmation shows: the environment's last
    /// successful deployment and the commits between it and `git_ref`
    /// (`None`: the default branch). Waits [`PREVIEW_DEADLINE`] at most,
    /// and answers from a short cache.
    pub async fn preview(
        &self,
        repo: &Repo,
        environment: &str,
        action: Action,
        git_ref: Option<&str>,
    ) -> Result<DeployPreview, Unavailable> {
        let Some(c) = &self.connected else {
            return Err(Unavailable::NotConnected);
        };
        let key = PreviewKey {
            repo: repo.clone(),
            environment: environment.to_owned(),
            action,
            git_ref: git_ref.map(str::to_owned),
        };
        let now = c.clock.now();
        let asked = c.previews.get_or_fetch(&key, now, || c.fetch_preview(&key));
        match tokio::time::timeout(PREVIEW_DEADLINE, asked).await {
            Ok(answer) => answer,
            Err(_) => Err(Unavailable::Down { why: format!("no answer within {} s", PREVIEW_DEADLINE.as_secs_f32()) }),
        }
    }

    /// Answers `lookup`, from the cache when someone asked the same a
    /// moment ago.
    pub async fn lookup(&self, lookup: &Lookup) -> Result<Activity, Unavailable> {
        let Some(c) = &self.connected else {
            return Err(Unavailable::NotConnected);
        };
        let now = c.clock.now();
        c.answers.get_or_fetch(lookup, now, || c.fetch(lookup)).await
    }
}

/// What a preview is cached by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PreviewKey {
    repo: Repo,
    environment: String,
    action: Action,
    git_ref: Option<String>,
}

/// GitHub's web address for an API address: a GitHub Enterprise Server's
/// `https://ghe.example.com/api/v3` is `https://ghe.example.com`,
/// `https://api.acme.ghe.com` is `https://acme.ghe.com`, and anything else
/// (the public API, a fake in tests) is `https://github.com`.
fn web_address(api_url: &str) -> String {
    const PUBLIC: &str = "https://github.com";
    let Ok(url) = url::Url::parse(api_url) else { return PUBLIC.to_owned() };
    let Some(host) = url.host_str() else { return PUBLIC.to_owned() };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    if url.path().trim_end_matches('/').ends_with("/api/v3") {
        return format!("{}://{host}{port}", url.scheme());
    }
    match host.strip_prefix("api.") {
        Some(web) if web != "github.com" && web.contains('.') => format!("{}://{web}{port}", url.scheme()),
        _ => PUBLIC.to_owned(),
    }
}

/// A ref or workflow file as one path segment: what GitHub's paths take
/// as they are (`/` included, for refs like `release/1.2`), the rest
/// percent-encoded.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/+@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Connected {
    /// The latest dispatched run of `workflow` whose title carries `id`
    /// as a word of its own, if GitHub lists one.
    async fn dispatched_before(
        &self,
        repo: &Repo,
        workflow: &str,
        id: &str,
    ) -> Result<Option<DispatchedRun>, Unavailable> {
        #[derive(Deserialize)]
        struct RunsPage {
            workflow_runs: Vec<RunJson>,
        }
        let path = format!(
            "/repos/{repo}/actions/workflows/{}/runs?event=workflow_dispatch&per_page=30",
            path_segment(workflow)
        );
        let page: RunsPage = self.get(repo, &path, &format!("the workflow `{workflow}`")).await?;
        let carries = |title: &str| {
            opsbot_handlers::subject::DeployId::find_in(title).is_some_and(|found| found.to_string() == id)
        };
        Ok(page
            .workflow_runs
            .into_iter()
            .find(|r| r.display_title.as_deref().is_some_and(carries))
            .map(|r| DispatchedRun { run_id: r.id, url: r.html_url }))
    }

    async fn fetch_preview(&self, key: &PreviewKey) -> Result<DeployPreview, Unavailable> {
        #[derive(Deserialize)]
        struct Login {
            login: String,
        }
        #[derive(Deserialize)]
        struct DeploymentJson {
            id: u64,
            sha: String,
            #[serde(rename = "ref")]
            git_ref: String,
            creator: Option<Login>,
            created_at: DateTime<Utc>,
        }
        #[derive(Deserialize)]
        struct StatusJson {
            state: String,
        }
        #[derive(Deserialize)]
        struct CompareJson {
            total_commits: u64,
            html_url: Option<String>,
            commits: Vec<CompareCommit>,
        }
        #[derive(Deserialize)]
        struct CompareCommit {
            sha: String,
            commit: CommitDetail,
            author: Option<Login>,
        }
        #[derive(Deserialize)]
        struct CommitDetail {
            message: String,
            author: Option<GitAuthor>,
        }
        #[derive(Deserialize)]
        struct GitAuthor {
            name: String,
        }
        let repo = &key.repo;
        let default_branch = self.default_branch(repo).await?;
        let head = key.git_ref.clone().unwrap_or_else(|| default_branch.clone());
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("environment", &key.environment).append_pair("per_page", &DEPLOYMENTS_READ.to_string());
            q.finish()
        };
        let deployments: Vec<DeploymentJson> =
            self.get(repo, &format!("/repos/{repo}/deployments?{query}"), "the environment's deployments").await?;
        let mut last = None;
        for d in deployments {
            let path = format!("/repos/{repo}/deployments/{}/statuses?per_page=1", d.id);
            let statuses: Vec<StatusJson> = self.get(repo, &path, "a deployment's statuses").await?;
            if statuses.first().is_some_and(|s| s.state == "success") {
                last = Some(LastDeployment {
                    git_ref: d.git_ref,
                    sha: d.sha,
                    creator: d.creator.map(|c| c.login).unwrap_or_default(),
                    at: d.created_at,
                });
                break;
            }
        }
        let Some(last) = last else {
            return Ok(DeployPreview {
                repo: repo.clone(),
                default_branch,
                last: None,
                commits: Vec::new(),
                total_commits: 0,
                compare_url: None,
            });
        };
        // A deployment sends out what the ref has beyond the last one; a
        // rollback undoes what the last one has beyond the ref.
        let (base, tip) = match key.action {
            Action::Deploy => (last.sha.clone(), head),
            Action::Rollback => (head, last.sha.clone()),
        };
        let path = format!("/repos/{repo}/compare/{}...{}", path_segment(&base), path_segment(&tip));
        let compared: CompareJson =
            self.get(repo, &path, &format!("the ref `{}`", key.git_ref.as_deref().unwrap_or(&default_branch))).await?;
        let keep = compared.commits.len().saturating_sub(opsbot_handlers::deploy::render::COMMITS_SHOWN);
        let commits = compared.commits[keep..]
            .iter()
            .map(|c| CommitLine {
                short_sha: c.sha.chars().take(7).collect(),
                title: c.commit.message.lines().next().unwrap_or_default().to_owned(),
                author: c
                    .author
                    .as_ref()
                    .map(|a| a.login.clone())
                    .or_else(|| c.commit.author.as_ref().map(|a| a.name.clone()))
                    .unwrap_or_default(),
            })
            .collect();
        Ok(DeployPreview {
            repo: repo.clone(),
            default_branch,
            last: Some(last),
            commits,
            total_commits: compared.total_commits,
            compare_url: compared.html_url,
        })
    }

    async fn fetch(&self, lookup: &Lookup) -> Result<Activity, Unavailable> {
        let repo = lookup.repo();
        let default_branch = self.default_branch(repo).await?;
        let (runs, truncated) = match lookup {
            Lookup::Activity { hours, .. } => {
                let since = self.clock.now() - TimeDelta::hours(i64::from(*hours));
                let created = format!(">={}", since.format("%Y-%m-%dT%H:%M:%SZ"));
                self.runs(repo, &format!("/repos/{repo}/actions/runs"), &[("created", &created)], MAX_PAGES).await?
            }
            Lookup::Runs { workflow, branch, .. } => {
                let path = match workflow {
                    None => format!("/repos/{repo}/actions/runs"),
                    Some(name) => {
                        format!("/repos/{repo}/actions/workflows/{}/runs", self.workflow_id(repo, name).await?)
                    }
                };
                let query: Vec<(&str, &str)> = branch.iter().map(|b| ("branch", b.as_str())).collect();
                let (runs, _) = self.runs(repo, &path, &query, 1).await?;
                (runs, false)
            }
        };
        Ok(Activity { repo: repo.clone(), default_branch, runs, truncated, fetched: self.clock.now() })
    }

    async fn default_branch(&self, repo: &Repo) -> Result<String, Unavailable> {
        #[derive(Deserialize)]
        struct RepoJson {
            default_branch: String,
        }
        let now = self.clock.now();
        self.default_branches
            .get_or_fetch(repo, now, || async {
                let found: RepoJson = self.get(repo, &format!("/repos/{repo}"), "the repository").await?;
                Ok(found.default_branch)
            })
            .await
    }

    /// A workflow's id from its name (any case) or its file.
    async fn workflow_id(&self, repo: &Repo, name: &str) -> Result<u64, Unavailable> {
        #[derive(Deserialize)]
        struct Workflows {
            workflows: Vec<WorkflowJson>,
        }
        let now = self.clock.now();
        let all = self
            .workflows
            .get_or_fetch(repo, now, || async {
                let path = format!("/repos/{repo}/actions/workflows?per_page={PER_PAGE}");
                let found: Workflows = self.get(repo, &path, "the repository's workflows").await?;
                Ok(found.workflows)
            })
            .await?;
        all.iter()
            .find(|w| w.name.eq_ignore_ascii_case(name) || w.path.rsplit('/').next() == Some(name) || w.path == name)
            .map(|w| w.id)
            .ok_or_else(|| {
                let names: Vec<String> = all.iter().take(10).map(|w| format!("`{}`", w.name)).collect();
                Unavailable::NotFound {
                    what: if names.is_empty() {
                        format!("a workflow `{name}`")
                    } else {
                        format!("a workflow `{name}` (its workflows: {})", names.join(", "))
                    },
                }
            })
    }

    /// Up to `pages` pages of runs, newest first, and whether more matched.
    async fn runs(
        &self,
        repo: &Repo,
        path: &str,
        query: &[(&str, &str)],
        pages: usize,
    ) -> Result<(Vec<RunRecord>, bool), Unavailable> {
        #[derive(Deserialize)]
        struct RunsPage {
            total_count: usize,
            workflow_runs: Vec<RunJson>,
        }
        let per_page = if pages == 1 { opsbot_handlers::pipeline::render::RUNS_SHOWN * 2 } else { PER_PAGE };
        let mut runs = Vec::new();
        let mut total = 0;
        for page in 1..=pages {
            // Built before the await: the serializer is not `Send`.
            let uri = {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in query {
                    q.append_pair(k, v);
                }
                q.append_pair("per_page", &per_page.to_string()).append_pair("page", &page.to_string());
                format!("{path}?{}", q.finish())
            };
            let found: RunsPage = self.get(repo, &uri, "the workflow runs").await?;
            total = found.total_count;
            let last = found.workflow_runs.len() < per_page;
            runs.extend(found.workflow_runs.into_iter().map(RunJson::into_record));
            if last || runs.len() >= total {
                break;
            }
        }
        let truncated = total > runs.len();
        Ok((runs, truncated))
    }

    /// The client for `repo`: the token's, or the App's installation on it.
    async fn client(&self, repo: &Repo) -> Result<Arc<Octocrab>, Unavailable> {
        match &self.signed_in {
            SignedIn::Token(client) => Ok(client.clone()),
            SignedIn::App { app, installations } => {
                let mut known = installations.lock().await;
                if let Some(client) = known.get(repo) {
                    return Ok(client.clone());
                }
                #[derive(Deserialize)]
                struct InstallationJson {
                    id: u64,
                }
                let path = format!("/repos/{repo}/installation");
                let found: InstallationJson = self.send(app, &path, "opsbot's App installation").await?;
                let client = Arc::new(
                    app.installation(octocrab::models::InstallationId(found.id))
                        .map_err(|e| Unavailable::Down { why: short(&e.to_string()) })?,
                );
                known.insert(repo.clone(), client.clone());
                Ok(client)
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, repo: &Repo, path: &str, what: &str) -> Result<T, Unavailable> {
        let client = self.client(repo).await?;
        self.send(&client, path, what).await
    }

    /// One GET, its answer read as `T`.
    async fn send<T: DeserializeOwned>(&self, client: &Octocrab, path: &str, what: &str) -> Result<T, Unavailable> {
        let body = self.request(client, Verb::Get, path, what).await?;
        serde_json::from_slice(&body).map_err(|e| Unavailable::Down {
            why: format!("GitHub's answer was not understood ({})", short(&e.to_string())),
        })
    }

    /// One request, with GitHub's rate limits kept: nothing is sent while a
    /// limit is spent, and a limit GitHub reports stops the next calls.
    /// The body of a 2xx answer, or why there is none.
    async fn request(&self, client: &Octocrab, verb: Verb<'_>, path: &str, what: &str) -> Result<Bytes, Unavailable> {
        let now = self.clock.now();
        if let Some(resets) = *self.blocked_until.lock().unwrap_or_else(|e| e.into_inner()) {
            if resets > now {
                self.metrics.github_request("held");
                return Err(Unavailable::RateLimited { resets });
            }
        }
        let answer = self.send_once(client, verb, path, what, now).await;
        self.metrics.github_request(match &answer {
            Ok(_) => "ok",
            Err(Unavailable::NotFound { .. }) => "not_found",
            Err(Unavailable::Refused { .. } | Unavailable::NotConnected) => "refused",
            Err(Unavailable::RateLimited { .. }) => "rate_limited",
            Err(Unavailable::Down { .. }) => "down",
        });
        answer
    }

    /// One request sent, its answer sorted.
    async fn send_once(
        &self,
        client: &Octocrab,
        verb: Verb<'_>,
        path: &str,
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<Bytes, Unavailable> {
        let sent = async {
            match verb {
                Verb::Get => client._get(path).await,
                Verb::Post(None) => client._post(path, None::<&()>).await,
                Verb::Post(Some(body)) => client._post(path, Some(body)).await,
            }
        };
        let response = tokio::time::timeout(CALL_TIMEOUT, sent)
            .await
            .map_err(|_| Unavailable::Down { why: format!("no answer within {} s", CALL_TIMEOUT.as_secs()) })?
            .map_err(|e| Unavailable::Down { why: short(&e.to_string()) })?;
        let status = response.status();
        let limits = Limits::of(response.headers());
        let body = tokio::time::timeout(CALL_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| Unavailable::Down { why: "the answer stopped halfway".into() })?
            .map_err(|e| Unavailable::Down { why: short(&e.to_string()) })?
            .to_bytes();
        if let Some(resets) = limits.blocked(status.as_u16(), &body, now) {
            let mut blocked = self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
            *blocked = Some(blocked.map_or(resets, |b| b.max(resets)));
            if !status.is_success() {
                tracing::warn!(status = status.as_u16(), resets = %resets, "GitHub's rate limit is spent");
                return Err(Unavailable::RateLimited { resets });
            }
        }
        match status.as_u16() {
            200..=299 => Ok(body),
            404 => Err(Unavailable::NotFound { what: what.to_owned() }),
            code @ (401 | 403 | 409 | 422) => Err(Unavailable::Refused { status: code, message: message_of(&body) }),
            code => Err(Unavailable::Down { why: format!("HTTP {code}") }),
        }
    }
}

#[derive(Copy, Clone)]
enum Verb<'a> {
    Get,
    /// With a JSON body, or none.
    Post(Option<&'a serde_json::Value>),
}

/// The rate-limit headers GitHub sends with every answer.
struct Limits {
    remaining: Option<u64>,
    reset: Option<i64>,
    retry_after: Option<i64>,
}

impl Limits {
    fn of(headers: &http::HeaderMap) -> Limits {
        let number = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        Limits {
            remaining: number("x-ratelimit-remaining").map(|n: i64| n.max(0) as u64),
            reset: number("x-ratelimit-reset"),
            retry_after: number("retry-after"),
        }
    }

    /// Until when GitHub must not be asked again, if this answer says so:
    /// `retry-after` first (secondary limits), then a spent primary budget
    /// (until `x-ratelimit-reset`), then a 403/429 that names a rate limit
    /// without saying how long.
    fn blocked(&self, status: u16, body: &[u8], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let limited = matches!(status, 403 | 429);
        if let Some(secs) = self.retry_after.filter(|_| limited) {
            return Some(now + TimeDelta::seconds(secs.max(1)));
        }
        if self.remaining == Some(0) {
            let reset = self.reset.and_then(|t| DateTime::from_timestamp(t, 0));
            return Some(reset.filter(|r| *r > now).unwrap_or(now + SECONDARY_WAIT));
        }
        (limited && message_of(body).to_ascii_lowercase().contains("rate limit")).then(|| now + SECONDARY_WAIT)
    }
}

/// GitHub's `{"message": …}`, bounded.
fn message_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .map(|m| short(&m))
        .unwrap_or_else(|| "no message".to_owned())
}

/// Errors can carry whole bodies; logs and people get one bounded line.
fn short(text: &str) -> String {
    opsbot_handlers::text::truncate(text.lines().next().unwrap_or(""), 200)
}

#[derive(Clone, Debug, Deserialize)]
struct WorkflowJson {
    id: u64,
    name: String,
    path: String,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

#[derive(Deserialize)]
struct HeadCommitJson {
    message: String,
}

/// The fields of a workflow run `/pipeline` uses. octocrab's own `Run`
/// model has no `run_attempt`, `run_started_at`, `actor` or
/// `display_title`, and requires a `head_commit` GitHub sends as `null` for
/// some runs, so runs are read into this instead.
#[derive(Deserialize)]
struct RunJson {
    id: u64,
    run_number: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    workflow_id: u64,
    #[serde(default)]
    display_title: Option<String>,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    event: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    actor: Option<Login>,
    #[serde(default)]
    run_attempt: Option<u32>,
    created_at: DateTime<Utc>,
    #[serde(default)]
    run_started_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    html_url: String,
    #[serde(default)]
    head_commit: Option<HeadCommitJson>,
}

impl RunJson {
    fn into_record(self) -> RunRecord {
        let title = self
            .display_title
            .or_else(|| self.head_commit.map(|c| c.message.lines().next().unwrap_or("").to_owned()))
            .unwrap_or_default();
        let workflow_path = self.path.unwrap_or_default();
        RunRecord {
            id: self.id,
            number: self.run_number,
            workflow: self.name.filter(|n| !n.is_empty()).unwrap_or_else(|| workflow_path.clone()),
            workflow_path,
            workflow_id: self.workflow_id,
            title,
            branch: self.head_branch.unwrap_or_default(),
            event: self.event,
            state: RunState::parse(self.status.as_deref().unwrap_or("queued"), self.conclusion.as_deref()),
            actor: self.actor.map(|a| a.login).unwrap_or_default(),
            attempt: self.run_attempt.unwrap_or(1),
            created: self.created_at,
            started: self.run_started_at.unwrap_or(self.created_at),
            updated: self.updated_at,
            url: self.html_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_address_follows_the_api_address() {
        assert_eq!(web_address("https://api.github.com"), "https://github.com");
        assert_eq!(web_address("https://api.github.com/"), "https://github.com");
        assert_eq!(web_address("https://ghe.example.com/api/v3"), "https://ghe.example.com");
        assert_eq!(web_address("https://ghe.example.com:8443/api/v3/"), "https://ghe.example.com:8443");
        assert_eq!(web_address("https://api.acme.ghe.com"), "https://acme.ghe.com");
        assert_eq!(web_address("http://127.0.0.1:4000/"), "https://github.com");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    fn t0() -> DateTime<Utc> {
        "2026-12-01T14:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_secondary_limit_waits_as_long_as_retry_after_says() {
        let l = Limits::of(&headers(&[("retry-after", "90"), ("x-ratelimit-remaining", "4000")]));
        assert_eq!(l.blocked(403, b"{}", t0()), Some(t0() + TimeDelta::seconds(90)));
        assert_eq!(l.blocked(200, b"{}", t0()), None, "retry-after only counts on a refusal");
    }

    #[test]
    fn a_spent_primary_budget_waits_for_its_reset() {
        let reset = (t0() + TimeDelta::minutes(5)).timestamp().to_string();
        let l = Limits::of(&headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]));
        assert_eq!(l.blocked(403, b"{}", t0()), Some(t0() + TimeDelta::minutes(5)));
        // The last call of the budget succeeded: the next one would not.
        assert_eq!(l.blocked(200, b"{}", t0()), Some(t0() + TimeDelta::minutes(5)));
    }

    #[test]
    fn a_refusal_naming_a_rate_limit_waits_a_minute_and_others_are_refusals() {
        let l = Limits::of(&headers(&[]));
        let body = br#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert_eq!(l.blocked(403, body, t0()), Some(t0() + SECONDARY_WAIT));
        assert_eq!(l.blocked(403, br#"{"message":"Resource not accessible by integration"}"#, t0()), None);
    }
}
