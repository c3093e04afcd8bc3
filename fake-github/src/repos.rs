//! The repository side of the API: the repository itself, its commits and
//! comparisons between them.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::api::{error, not_found, ok, paginate, param, parse_query, serve, Here, Reply};
use crate::endpoint;
use crate::history;
use crate::json;
use crate::FakeGitHub;

const GET_COMMIT_DOCS: &str = "https://docs.github.com/rest/commits/commits#get-a-commit";
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
