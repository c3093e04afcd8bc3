//! The repository side of the API: the repository itself, its commits and
//! comparisons between them, and deployments with their statuses.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::api::{
    error, json_body, not_found, ok, optional_bool, optional_string, paginate, param, parse_query, required_string,
    serve, ApiError, Here, Reply,
};
use crate::endpoint;
use crate::history;
use crate::json;
use crate::state::{Change, Deployment, State as FakeState, DEPLOYMENT_STATES};
use crate::FakeGitHub;

const GET_COMMIT_DOCS: &str = "https://docs.github.com/rest/commits/commits#get-a-commit";
const CREATE_DEPLOYMENT_DOCS: &str = "https://docs.github.com/rest/deployments/deployments#create-a-deployment";
const CREATE_STATUS_DOCS: &str = "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status";
/// What compare lists when the client does not page: the newest 250.
const COMPARE_UNPAGED_LIMIT: usize = 250;

pub(crate) async fn get_repo(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::GET_REPO, &headers, |_| {
        let state = fake.inner.lock();
        let repo = state.repo(&full).ok_or_else(not_found)?;
        let name = repo.full_name();
        let pushed_at = state.commits.values().filter(|c| c.repo == name).map(|c| c.date).max();
        Ok(ok(json::full_repository(repo, pushed_at.unwrap_or(repo.created_at))))
    })
}

pub(crate) async fn get_commit(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, reference)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::GET_COMMIT, &headers, |_| {
        let state = fake.inner.lock();
        state.repo(&full).ok_or_else(not_found)?;
        // GitHub answers an unknown ref here with 422, not 404.
        let commit = history::resolve(&state, &full, &reference).ok_or_else(|| {
            error(StatusCode::UNPROCESSABLE_ENTITY, format!("No commit found for SHA: {reference}"), GET_COMMIT_DOCS)
        })?;
        Ok(ok(json::commit_detail(commit)))
    })
}

pub(crate) async fn compare(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, basehead)): Path<(String, String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    let here = Here::new(&headers, &uri, parse_query(query.as_deref()));
    serve(&fake, endpoint::COMPARE, &headers, |_| {
        let state = fake.inner.lock();
        let entry = state.repo(&full).ok_or_else(not_found)?;
        let (base, head) = basehead.split_once("...").ok_or_else(not_found)?;
        // `OWNER:ref` names a ref in a fork; the fake has none, so only the
        // repository's own owner is accepted.
        let own_ref = |r: &'_ str| -> Option<String> {
            match r.split_once(':') {
                Some((who, r)) if who.eq_ignore_ascii_case(&entry.owner) => Some(r.to_owned()),
                Some(_) => None,
                None => Some(r.to_owned()),
            }
        };
        let resolve = |r: &str| own_ref(r).and_then(|r| history::resolve(&state, &full, &r));
        let (Some(base), Some(head)) = (resolve(base), resolve(head)) else { return Err(not_found()) };
        let cmp = history::compare(&state, &entry.full_name(), base, head);
        let paged = param(&here.query, "page").is_some() || param(&here.query, "per_page").is_some();
        let (page, link) = if paged {
            paginate(cmp.ahead.clone(), &here)
        } else {
            let skip = cmp.ahead.len().saturating_sub(COMPARE_UNPAGED_LIMIT);
            (cmp.ahead[skip..].to_vec(), None)
        };
        Ok(Reply { link, ..ok(json::comparison(entry, &basehead, &cmp, &page)) })
    })
}

// --- Deployments -----------------------------------------------------------------

pub(crate) async fn list_deployments(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    let here = Here::new(&headers, &uri, parse_query(query.as_deref()));
    serve(&fake, endpoint::LIST_DEPLOYMENTS, &headers, |_| {
        let state = fake.inner.lock();
        let repo = state.repo(&full).ok_or_else(not_found)?.full_name();
        let q = &here.query;
        let mut deployments: Vec<_> = state
            .deployments
            .iter()
            .filter(|d| d.repo == repo)
            .filter(|d| param(q, "environment").is_none_or(|e| d.environment == e))
            .filter(|d| param(q, "ref").is_none_or(|r| d.git_ref == r))
            .filter(|d| param(q, "sha").is_none_or(|s| d.sha == s))
            .filter(|d| param(q, "task").is_none_or(|t| d.task == t))
            .collect();
        deployments.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        // This endpoint answers a bare array, unlike the Actions lists.
        let (page, link) = paginate(deployments, &here);
        Ok(Reply { link, ..ok(Value::Array(page.into_iter().map(json::deployment).collect())) })
    })
}

/// The deployment `id` of `repo`, or 404 as GitHub answers for both an
/// unknown id and one from another repository.
fn find_deployment<'a>(state: &'a FakeState, repo: &str, id: &str) -> Result<&'a Deployment, ApiError> {
    let repo = state.repo(repo).ok_or_else(not_found)?.full_name();
    let id: u64 = id.parse().map_err(|_| not_found())?;
    state.deployments.iter().find(|d| d.id == id && d.repo == repo).ok_or_else(not_found)
}

pub(crate) async fn get_deployment(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, deployment)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::GET_DEPLOYMENT, &headers, |_| {
        let state = fake.inner.lock();
        Ok(ok(json::deployment(find_deployment(&state, &full, &deployment)?)))
    })
}

pub(crate) async fn create_deployment(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full = format!("{owner}/{repo}");
    let mut created = None;
    let res = serve(&fake, endpoint::CREATE_DEPLOYMENT, &headers, |caller| {
        let docs = CREATE_DEPLOYMENT_DOCS;
        let mut state = fake.inner.lock();
        state.repo(&full).ok_or_else(not_found)?;
        let body = json_body(&body, docs)?;
        let git_ref = required_string(&body, "ref", docs)?;
        let sha = history::resolve(&state, &full, &git_ref)
            .ok_or_else(|| error(StatusCode::UNPROCESSABLE_ENTITY, format!("No ref found for: {git_ref}"), docs))?
            .sha
            .clone();
        let environment = optional_string(&body, "environment", docs)?.unwrap_or_else(|| "production".to_owned());
        let production = optional_bool(&body, "production_environment", docs)?;
        let spec = crate::DeploymentSpec {
            environment: environment.clone(),
            git_ref,
            sha,
            creator: caller.login(),
            created_at: state.now(),
            statuses: Vec::new(),
        };
        let id = state.add_deployment(&full, spec).expect("repository checked above");
        let task = optional_string(&body, "task", docs)?;
        let description = optional_string(&body, "description", docs)?;
        let transient = optional_bool(&body, "transient_environment", docs)?;
        let deployment = state.deployment_mut(id).expect("just added");
        if let Some(task) = task {
            deployment.task = task;
        }
        deployment.description = description;
        deployment.transient_environment = transient.unwrap_or(false);
        deployment.production_environment = production.unwrap_or(environment == "production");
        // GitHub takes the payload as an object or as a string of JSON.
        deployment.payload = match body.get("payload") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
            Some(other) => other.clone(),
        };
        created = Some(id);
        let deployment = json::deployment(deployment);
        Ok(Reply { status: StatusCode::CREATED, ..ok(deployment) })
    });
    if let Some(deployment_id) = created {
        fake.inner.emit(Change::DeploymentCreated { deployment_id });
    }
    res
}

pub(crate) async fn list_deployment_statuses(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, deployment)): Path<(String, String, String)>,
    uri: OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    let here = Here::new(&headers, &uri, parse_query(query.as_deref()));
    serve(&fake, endpoint::LIST_DEPLOYMENT_STATUSES, &headers, |_| {
        let state = fake.inner.lock();
        let deployment = find_deployment(&state, &full, &deployment)?;
        // Newest first, so the first entry is the deployment's state.
        let statuses: Vec<_> = deployment.statuses.iter().rev().collect();
        let (page, link) = paginate(statuses, &here);
        let statuses = page.into_iter().map(|s| json::deployment_status(s, deployment)).collect();
        Ok(Reply { link, ..ok(Value::Array(statuses)) })
    })
}

pub(crate) async fn create_deployment_status(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, deployment)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full = format!("{owner}/{repo}");
    let mut changes = Vec::new();
    let res = serve(&fake, endpoint::CREATE_DEPLOYMENT_STATUS, &headers, |caller| {
        let docs = CREATE_STATUS_DOCS;
        let mut state = fake.inner.lock();
        let id = find_deployment(&state, &full, &deployment)?.id;
        let body = json_body(&body, docs)?;
        let state_name = required_string(&body, "state", docs)?;
        if !DEPLOYMENT_STATES.contains(&state_name.as_str()) {
            // Worded like GitHub's other schema refusals; this one's exact
            // text was not checked against GitHub.
            let allowed = serde_json::to_string(&DEPLOYMENT_STATES).unwrap_or_default();
            let message =
                format!("Invalid request.\n\nFor 'properties/state', \"{state_name}\" is not a member of {allowed}.");
            return Err(error(StatusCode::UNPROCESSABLE_ENTITY, message, docs));
        }
        let description = optional_string(&body, "description", docs)?.unwrap_or_default();
        // `log_url` replaced `target_url`; setting either sets both.
        let log_url = optional_string(&body, "log_url", docs)?.or(optional_string(&body, "target_url", docs)?);
        let environment = optional_string(&body, "environment", docs)?;
        let environment_url = optional_string(&body, "environment_url", docs)?;
        let auto_inactive = optional_bool(&body, "auto_inactive", docs)?.unwrap_or(true);
        let now = state.now();
        let mut status = state.new_deployment_status(id, &state_name, &description, &caller.login(), now);
        if let Some(environment) = environment {
            status.environment = environment;
        }
        status.log_url = log_url;
        status.environment_url = environment_url;
        let status_id = status.id;
        state.push_deployment_status(id, status);
        changes.push(Change::DeploymentStatus { deployment_id: id, state: state_name.clone() });
        if state_name == "success" && auto_inactive {
            changes.extend(retire_earlier_deployments(&mut state, id, &caller.login()));
        }
        let deployment = state.deployments.iter().find(|d| d.id == id).expect("found above");
        let status = deployment.statuses.iter().find(|s| s.id == status_id).expect("just added");
        Ok(Reply { status: StatusCode::CREATED, ..ok(json::deployment_status(status, deployment)) })
    });
    for change in changes {
        fake.inner.emit(change);
    }
    res
}

/// GitHub's `auto_inactive`: a successful deployment marks earlier
/// successful ones to the same non-production, non-transient environment of
/// the repository inactive.
fn retire_earlier_deployments(state: &mut FakeState, id: u64, creator: &str) -> Vec<Change> {
    let Some(current) = state.deployments.iter().find(|d| d.id == id) else { return Vec::new() };
    let (repo, environment) = (current.repo.clone(), current.environment.clone());
    let earlier: Vec<u64> = state
        .deployments
        .iter()
        .filter(|d| d.id != id && d.repo == repo && d.environment == environment)
        .filter(|d| !d.production_environment && !d.transient_environment && d.state() == Some("success"))
        .map(|d| d.id)
        .collect();
    let now = state.now();
    earlier
        .into_iter()
        .map(|old| {
            let status = state.new_deployment_status(old, "inactive", "", creator, now);
            state.push_deployment_status(old, status);
            Change::DeploymentStatus { deployment_id: old, state: "inactive".to_owned() }
        })
        .collect()
}
