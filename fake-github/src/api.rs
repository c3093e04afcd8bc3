//! The HTTP face of the fake: axum routes for the endpoints `/pipeline`
//! needs, and the Actions handlers (the repository and App ones live in
//! `repos.rs` and `apps.rs`). Every request first passes [`serve`], which
//! applies outages, scripted failures, auth and the primary rate limit the
//! way GitHub's edge does; every answer after that carries the
//! `x-ratelimit-*` headers.

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::endpoint;
use crate::json;
use crate::repos;
use crate::state::{Change, Failure, Job, Status, WorkflowRun};
use crate::{FakeGitHub, TOKEN_LOGIN};

const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const DOCS: &str = "https://docs.github.com/rest";
const RATE_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";
const SECONDARY_DOCS: &str =
    "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";
const RERUN_DOCS: &str = "https://docs.github.com/rest/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run";
const DISPATCH_DOCS: &str = "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event";
/// GitHub's default and maximum `per_page`.
const PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;

pub(crate) fn router(fake: FakeGitHub) -> Router {
    Router::new()
        .route("/rate_limit", get(rate_limit))
        .route("/repos/{owner}/{repo}", get(repos::get_repo))
        .route("/repos/{owner}/{repo}/commits/{*reference}", get(repos::get_commit))
        .route("/repos/{owner}/{repo}/compare/{*basehead}", get(repos::compare))
        .route("/repos/{owner}/{repo}/actions/runs", get(list_repo_runs))
        .route("/repos/{owner}/{repo}/actions/runs/{run_id}", get(get_run))
        .route("/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", get(list_jobs))
        .route("/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs", post(rerun_failed_jobs))
        .route("/repos/{owner}/{repo}/actions/workflows", get(list_workflows))
        .route("/repos/{owner}/{repo}/actions/workflows/{workflow}", get(get_workflow))
        .route("/repos/{owner}/{repo}/actions/workflows/{workflow}/runs", get(list_workflow_runs))
        .route("/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches", post(dispatch))
        .route("/repos/{owner}/{repo}/deployments", get(repos::list_deployments).post(repos::create_deployment))
        .route("/repos/{owner}/{repo}/deployments/{deployment}", get(repos::get_deployment))
        .route(
            "/repos/{owner}/{repo}/deployments/{deployment}/statuses",
            get(repos::list_deployment_statuses).post(repos::create_deployment_status),
        )
        .fallback(unknown)
        .with_state(fake)
}

/// An error answer in GitHub's shape: `message`, `documentation_url` and,
/// as GitHub has added lately, the status as a string.
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    documentation_url: &'static str,
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>, documentation_url: &'static str) -> ApiError {
    ApiError { status, message: message.into(), documentation_url }
}

pub(crate) fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "Not Found", DOCS)
}

impl ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "message": self.message,
            "documentation_url": self.documentation_url,
            "status": self.status.as_str(),
        });
        json_response(self.status, Some(&body))
    }
}

/// A success: a status, a JSON body unless 204, and a `Link` header when
/// the list has more than one page.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub link: Option<String>,
}

pub(crate) fn ok(body: Value) -> Reply {
    Reply { status: StatusCode::OK, body: Some(body), link: None }
}

pub(crate) type Outcome = Result<Reply, ApiError>;

/// Who made a request, as its credentials say.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    /// The personal access token the fake was made with.
    Token,
}

impl Caller {
    /// The login actions taken by this caller are attributed to.
    pub fn login(&self) -> String {
        match self {
            Caller::Token => TOKEN_LOGIN.to_owned(),
        }
    }
}

fn json_response(status: StatusCode, body: Option<&Value>) -> Response {
    let mut res = match body {
        Some(body) => {
            let mut res = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
            res.headers_mut().insert(header::CONTENT_TYPE, JSON_CONTENT_TYPE);
            res
        }
        None => Response::new(Body::empty()),
    };
    *res.status_mut() = status;
    res
}

/// Outages and proxy errors come back as text, as they do when GitHub's
/// load balancers answer instead of the API.
fn plain(status: StatusCode) -> Response {
    let mut res = Response::new(Body::from(status.canonical_reason().unwrap_or("error")));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

/// What every request goes through before its handler: the call is counted;
/// an outage answers 503; a queued failure answers as scripted; a wrong or
/// missing credential answers 401; an exhausted budget answers 403.
/// Otherwise the request spends one unit of the budget (except
/// `/rate_limit`, which is free on GitHub) and `handler` decides.
pub(crate) fn serve(
    fake: &FakeGitHub,
    name: &str,
    headers: &HeaderMap,
    handler: impl FnOnce(&Caller) -> Outcome,
) -> Response {
    let free = name == endpoint::RATE_LIMIT;
    let inner = &fake.inner;
    let unavailable = inner.is_unavailable();
    let failure = {
        let mut state = inner.lock();
        state.count_call(name);
        // While GitHub is "down" the queue is left alone, so scripted
        // failures still apply once it comes back.
        if unavailable {
            None
        } else {
            state.take_failure(name)
        }
    };
    inner.changed.notify_waiters();
    if unavailable {
        return plain(StatusCode::SERVICE_UNAVAILABLE);
    }
    let mut res = match failure {
        Some(Failure::HttpStatus(code)) => {
            return plain(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
        Some(Failure::SecondaryRateLimit { retry_after_secs }) => {
            let message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. \
                           If you reach out to GitHub Support for help, please include the request ID FAKE:0001.";
            let mut res = error(StatusCode::FORBIDDEN, message, SECONDARY_DOCS).into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            res
        }
        Some(Failure::ServerError) => error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error", DOCS).into_response(),
        Some(Failure::NotFound) => not_found().into_response(),
        None => match check_auth(&inner.token, headers) {
            Err(e) => return e.into_response(),
            Ok(caller) => {
                let exhausted = {
                    let mut state = inner.lock();
                    let exhausted = state.rate.used >= state.rate.limit;
                    if !exhausted && !free {
                        state.rate.used += 1;
                    }
                    exhausted
                };
                if exhausted && !free {
                    let message = format!(
                        "API rate limit exceeded for user ID {}. If you reach out to GitHub Support for help, \
                         please include the request ID FAKE:0002.",
                        json::user(TOKEN_LOGIN)["id"]
                    );
                    error(StatusCode::FORBIDDEN, message, RATE_DOCS).into_response()
                } else {
                    match handler(&caller) {
                        Ok(reply) => {
                            let mut res = json_response(reply.status, reply.body.as_ref());
                            if let Some(link) = reply.link.and_then(|l| HeaderValue::from_str(&l).ok()) {
                                res.headers_mut().insert(header::LINK, link);
                            }
                            res
                        }
                        Err(e) => e.into_response(),
                    }
                }
            }
        },
    };
    add_rate_headers(fake, res.headers_mut());
    res
}

fn add_rate_headers(fake: &FakeGitHub, headers: &mut HeaderMap) {
    let rate = fake.inner.lock().rate;
    headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.limit.saturating_sub(rate.used)));
    headers.insert("x-ratelimit-reset", HeaderValue::from(rate.reset));
    headers.insert("x-ratelimit-used", HeaderValue::from(rate.used));
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    headers.insert("x-github-api-version-selected", HeaderValue::from_static("2022-11-28"));
}

/// GitHub takes `Bearer <token>` and the older `token <token>`.
fn check_auth(token: &str, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("token ")))
        .map(str::trim);
    match given {
        // The fake's repositories are private, and every endpoint here needs
        // a token; GitHub says so in these words.
        None => Err(error(StatusCode::UNAUTHORIZED, "Requires authentication", DOCS)),
        Some(t) if t == token => Ok(Caller::Token),
        Some(_) => Err(error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS)),
    }
}

pub(crate) type Query = Vec<(String, String)>;

/// A request body, or GitHub's 400 for one that is not JSON.
pub(crate) fn json_body(body: &[u8], docs: &'static str) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| error(StatusCode::BAD_REQUEST, "Problems parsing JSON", docs))
}

/// A required string property, refused in the words of GitHub's schema
/// validation when missing or of another type.
pub(crate) fn required_string(body: &Value, key: &str, docs: &'static str) -> Result<String, ApiError> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid request.\n\nFor 'properties/{key}', {other} is not a string."),
            docs,
        )),
        None => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid request.\n\n\"{key}\" wasn't supplied."),
            docs,
        )),
    }
}

/// An optional string property; `null` counts as absent.
pub(crate) fn optional_string(body: &Value, key: &str, docs: &'static str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => required_string(body, key, docs).map(Some),
    }
}

/// An optional boolean property; `null` counts as absent.
pub(crate) fn optional_bool(body: &Value, key: &str, docs: &'static str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid request.\n\nFor 'properties/{key}', {other} is not a boolean."),
            docs,
        )),
    }
}

pub(crate) fn parse_query(raw: Option<&str>) -> Query {
    raw.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default()
}

pub(crate) fn param<'a>(q: &'a Query, key: &str) -> Option<&'a str> {
    q.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// The request as the client addressed it, to build `Link` URLs that lead
/// back here even when the router is nested under a prefix.
pub(crate) struct Here {
    base: String,
    pub query: Query,
}

impl Here {
    pub fn new(headers: &HeaderMap, uri: &OriginalUri, query: Query) -> Self {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        Here { base: format!("http://{host}{}", uri.0.path()), query }
    }

    fn page_url(&self, page: usize) -> String {
        let mut query: Query = self.query.iter().filter(|(k, _)| k != "page").cloned().collect();
        query.push(("page".to_owned(), page.to_string()));
        format!("{}?{}", self.base, serde_urlencoded::to_string(&query).unwrap_or_default())
    }
}

/// Cuts one page out of `items` and builds GitHub's `Link` header for it.
pub(crate) fn paginate<T>(items: Vec<T>, here: &Here) -> (Vec<T>, Option<String>) {
    let per_page =
        param(&here.query, "per_page").and_then(|p| p.parse().ok()).unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE);
    let page = param(&here.query, "page").and_then(|p| p.parse().ok()).unwrap_or(1usize).max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let page_items: Vec<T> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    if last == 1 {
        return (page_items, None);
    }
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", here.page_url((page - 1).min(last))));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", here.page_url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", here.page_url(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", here.page_url(1)));
    }
    (page_items, Some(links.join(", ")))
}

// --- Actions: runs -------------------------------------------------------

async fn list_repo_runs(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let here = Here::new(&headers, &uri, parse_query(query.as_deref()));
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::LIST_REPO_RUNS, &headers, |_| list_runs(&fake, &full, None, &here))
}

async fn list_workflow_runs(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let here = Here::new(&headers, &uri, parse_query(query.as_deref()));
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::LIST_WORKFLOW_RUNS, &headers, |_| list_runs(&fake, &full, Some(&workflow), &here))
}

fn list_runs(fake: &FakeGitHub, repo: &str, workflow: Option<&str>, here: &Here) -> Outcome {
    let state = fake.inner.lock();
    let repo = state.repo(repo).ok_or_else(not_found)?;
    let workflow_id = match workflow {
        Some(w) => Some(state.workflow(&repo.full_name(), w).ok_or_else(not_found)?.id),
        None => None,
    };
    let q = &here.query;
    let created = match param(q, "created") {
        Some(c) => Some(DateFilter::parse(c).ok_or_else(|| invalid_created(c))?),
        None => None,
    };
    let mut runs: Vec<&WorkflowRun> = state
        .runs
        .iter()
        .filter(|r| r.repo == repo.full_name())
        .filter(|r| workflow_id.is_none_or(|id| r.workflow_id == id))
        .filter(|r| param(q, "branch").is_none_or(|b| r.head_branch == b))
        .filter(|r| param(q, "event").is_none_or(|e| r.event == e))
        .filter(|r| param(q, "actor").is_none_or(|a| r.actor == a))
        .filter(|r| param(q, "head_sha").is_none_or(|s| r.head_sha == s))
        // GitHub's `status` filter takes a conclusion as well as a status.
        .filter(|r| {
            param(q, "status").is_none_or(|s| r.status.as_str() == s || r.conclusion.is_some_and(|c| c.as_str() == s))
        })
        .filter(|r| created.as_ref().is_none_or(|f| f.matches(r.created_at)))
        .collect();
    // Newest first, as GitHub lists them.
    runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let total = runs.len();
    let (page, link) = paginate(runs, here);
    let workflow_runs: Vec<Value> = page.into_iter().map(|r| run_json(&state, r)).collect();
    Ok(Reply { link, ..ok(json!({"total_count": total, "workflow_runs": workflow_runs})) })
}

fn run_json(state: &crate::state::State, r: &WorkflowRun) -> Value {
    let path = state.workflows.iter().find(|w| w.id == r.workflow_id).map(|w| w.path.as_str()).unwrap_or_default();
    let repo = state.repo(&r.repo).expect("runs belong to known repositories");
    json::run(r, repo, path)
}

fn invalid_created(value: &str) -> ApiError {
    error(StatusCode::UNPROCESSABLE_ENTITY, format!("Invalid value for `created`: {value}"), DOCS)
}

/// GitHub's search-style date qualifier as `created` takes it: `DATE`,
/// `>=DATE`, `>DATE`, `<=DATE`, `<DATE` or `FROM..TO`, where a date is
/// `YYYY-MM-DD` or an ISO 8601 time.
struct DateFilter {
    from: Option<DateTime<Utc>>,
    /// Exclusive.
    until: Option<DateTime<Utc>>,
}

impl DateFilter {
    fn parse(s: &str) -> Option<Self> {
        // A bare date covers its whole day; a time is a single instant.
        fn bounds(s: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
            if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                let start = day.and_hms_opt(0, 0, 0)?.and_utc();
                return Some((start, start + TimeDelta::days(1)));
            }
            let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
            Some((t, t + TimeDelta::seconds(1)))
        }
        let f = if let Some((a, b)) = s.split_once("..") {
            DateFilter { from: Some(bounds(a)?.0), until: Some(bounds(b)?.1) }
        } else if let Some(d) = s.strip_prefix(">=") {
            DateFilter { from: Some(bounds(d)?.0), until: None }
        } else if let Some(d) = s.strip_prefix("<=") {
            DateFilter { from: None, until: Some(bounds(d)?.1) }
        } else if let Some(d) = s.strip_prefix('>') {
            DateFilter { from: Some(bounds(d)?.1), until: None }
        } else if let Some(d) = s.strip_prefix('<') {
            DateFilter { from: None, until: Some(bounds(d)?.0) }
        } else {
            let (from, until) = bounds(s)?;
            DateFilter { from: Some(from), until: Some(until) }
        };
        Some(f)
    }

    fn matches(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.until.is_none_or(|u| t < u)
    }
}

async fn get_run(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, run_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::GET_RUN, &headers, |_| {
        let state = fake.inner.lock();
        let run = find_run(&state, &full, &run_id)?;
        Ok(ok(run_json(&state, run)))
    })
}

fn find_run<'a>(state: &'a crate::state::State, repo: &str, run_id: &str) -> Result<&'a WorkflowRun, ApiError> {
    let repo = state.repo(repo).ok_or_else(not_found)?.full_name();
    let id: u64 = run_id.parse().map_err(|_| not_found())?;
    state.run(id).filter(|r| r.repo == repo).ok_or_else(not_found)
}

async fn list_jobs(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, run_id)): Path<(String, String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let here = Here::new(&headers, &uri, parse_query(query.as_deref()));
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::LIST_RUN_JOBS, &headers, |_| {
        let state = fake.inner.lock();
        let run = find_run(&state, &full, &run_id)?;
        let jobs: Vec<&Job> = match param(&here.query, "filter").unwrap_or("latest") {
            "latest" => run.latest_jobs(),
            "all" => run.jobs.iter().collect(),
            other => {
                let message = format!("Invalid value for `filter`: {other}, expected one of latest, all");
                return Err(error(StatusCode::UNPROCESSABLE_ENTITY, message, DOCS));
            }
        };
        let total = jobs.len();
        let (page, link) = paginate(jobs, &here);
        let jobs: Vec<Value> = page.into_iter().map(|j| json::job(j, run)).collect();
        Ok(Reply { link, ..ok(json!({"total_count": total, "jobs": jobs})) })
    })
}

async fn rerun_failed_jobs(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, run_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut change = None;
    let full = format!("{owner}/{repo}");
    let res = serve(&fake, endpoint::RERUN_FAILED_JOBS, &headers, |_| {
        let mut state = fake.inner.lock();
        let id = find_run(&state, &full, &run_id)?.id;
        let now = state.now();
        let run = state.run(id).expect("found above");
        if run.status != Status::Completed {
            return Err(error(StatusCode::FORBIDDEN, "This workflow is already running", RERUN_DOCS));
        }
        let failed: Vec<String> = run
            .latest_jobs()
            .into_iter()
            .filter(|j| j.conclusion.is_some_and(|c| c.is_failed()))
            .map(|j| j.name.clone())
            .collect();
        if failed.is_empty() {
            // GitHub refuses this too; the wording is the fake's own, not
            // checked against GitHub's.
            return Err(error(StatusCode::FORBIDDEN, "This workflow run has no failed jobs to re-run", RERUN_DOCS));
        }
        let job_ids: Vec<u64> = failed.iter().map(|_| state.next_job_id()).collect();
        let run = state.run_mut(id).expect("found above");
        run.run_attempt += 1;
        // GitHub queues the attempt for a moment; the fake goes straight to
        // in progress, which is what a client polling a second later sees.
        run.status = Status::InProgress;
        run.conclusion = None;
        run.run_started_at = now;
        run.updated_at = now;
        for (name, job_id) in failed.into_iter().zip(job_ids) {
            run.jobs.push(Job {
                id: job_id,
                run_id: id,
                run_attempt: run.run_attempt,
                name,
                status: Status::InProgress,
                conclusion: None,
                started_at: now,
                completed_at: None,
            });
        }
        change = Some(Change::RunRerun { run_id: id, attempt: run.run_attempt });
        Ok(Reply { status: StatusCode::CREATED, body: Some(json!({})), link: None })
    });
    if let Some(change) = change {
        fake.inner.emit(change);
    }
    res
}

// --- Actions: workflows ----------------------------------------------------

async fn list_workflows(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let here = Here::new(&headers, &uri, parse_query(query.as_deref()));
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::LIST_WORKFLOWS, &headers, |_| {
        let state = fake.inner.lock();
        let repo = state.repo(&full).ok_or_else(not_found)?.full_name();
        let workflows: Vec<_> = state.workflows.iter().filter(|w| w.repo == repo).collect();
        let total = workflows.len();
        let (page, link) = paginate(workflows, &here);
        let workflows: Vec<Value> = page.into_iter().map(json::workflow).collect();
        Ok(Reply { link, ..ok(json!({"total_count": total, "workflows": workflows})) })
    })
}

async fn get_workflow(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::GET_WORKFLOW, &headers, |_| {
        let state = fake.inner.lock();
        let w = state.workflow(&full, &workflow).ok_or_else(not_found)?;
        Ok(ok(json::workflow(w)))
    })
}

async fn dispatch(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut created = None;
    let full = format!("{owner}/{repo}");
    let res = serve(&fake, endpoint::DISPATCH, &headers, |caller| {
        let id = create_dispatch(&fake, &full, &workflow, &body, &caller.login())?;
        created = Some(id);
        Ok(Reply { status: StatusCode::NO_CONTENT, body: None, link: None })
    });
    if let Some(run_id) = created {
        fake.inner.emit(Change::RunCreated { run_id });
    }
    res
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    error(StatusCode::UNPROCESSABLE_ENTITY, message, DISPATCH_DOCS)
}

/// Validates a dispatch as GitHub does (workflow, trigger, `ref`, inputs)
/// and queues a `workflow_dispatch` run on the ref's head commit.
fn create_dispatch(fake: &FakeGitHub, repo: &str, workflow: &str, body: &[u8], actor: &str) -> Result<u64, ApiError> {
    let mut state = fake.inner.lock();
    let workflow = state.workflow(repo, workflow).ok_or_else(not_found)?.clone();
    let body = json_body(body, DISPATCH_DOCS)?;
    if !workflow.dispatchable {
        return Err(unprocessable("Workflow does not have 'workflow_dispatch' trigger"));
    }
    let git_ref = required_string(&body, "ref", DISPATCH_DOCS)?;
    let repo_entry = state.repo(repo).expect("the workflow's repository exists");
    let short = git_ref.strip_prefix("refs/heads/").unwrap_or(&git_ref);
    let (branch, sha) = match repo_entry.heads.get(short) {
        Some(sha) => (short.to_owned(), sha.clone()),
        None => repo_entry
            .heads
            .iter()
            .find(|(_, sha)| **sha == git_ref)
            .map(|(b, sha)| (b.clone(), sha.clone()))
            .ok_or_else(|| unprocessable(format!("No ref found for: {git_ref}")))?,
    };
    let mut inputs = std::collections::BTreeMap::new();
    match body.get("inputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            let unexpected: Vec<&String> =
                given.keys().filter(|k| !workflow.inputs.iter().any(|i| &i.name == *k)).collect();
            if !unexpected.is_empty() {
                let list = serde_json::to_string(&unexpected).unwrap_or_default();
                return Err(unprocessable(format!("Unexpected inputs provided: {list}")));
            }
            for (k, v) in given {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                inputs.insert(k.clone(), v);
            }
        }
        Some(other) => {
            return Err(unprocessable(format!(
                "Invalid request.\n\nFor 'properties/inputs', {other} is not an object."
            )))
        }
    }
    let now = state.now();
    let mut spec = crate::RunSpec::in_progress(&branch, now).actor(actor).event("workflow_dispatch").sha(&sha);
    // A dispatched run is titled after its workflow unless `run-name` says
    // otherwise, which the fake does not model.
    spec.title.clone_from(&workflow.name);
    spec.jobs = workflow.jobs.iter().map(|j| (j.clone(), None)).collect();
    let id = state.add_run(workflow.id, spec).expect("workflow exists");
    let run = state.run_mut(id).expect("just added");
    run.status = Status::Queued;
    run.inputs = inputs;
    for job in &mut run.jobs {
        job.status = Status::Queued;
    }
    Ok(id)
}

// --- The rest ------------------------------------------------------------------

async fn rate_limit(State(fake): State<FakeGitHub>, headers: HeaderMap) -> Response {
    serve(&fake, endpoint::RATE_LIMIT, &headers, |_| {
        let rate = fake.inner.lock().rate;
        let core = json!({
            "limit": rate.limit,
            "used": rate.used,
            "remaining": rate.limit.saturating_sub(rate.used),
            "reset": rate.reset,
        });
        // Only `core` is modelled; the other buckets are GitHub's defaults
        // for a personal access token, untouched.
        let fresh = |limit: u64| json!({"limit": limit, "used": 0, "remaining": limit, "reset": rate.reset});
        Ok(ok(json!({
            "resources": {
                "core": core,
                "search": fresh(30),
                "graphql": fresh(5000),
                "integration_manifest": fresh(5000),
                "code_search": fresh(10),
            },
            "rate": core,
        })))
    })
}

async fn unknown(State(fake): State<FakeGitHub>, headers: HeaderMap) -> Response {
    serve(&fake, endpoint::UNKNOWN, &headers, |_| Err(not_found()))
}
