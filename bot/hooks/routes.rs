//! `POST /hooks/github` and `POST /hooks/alertmanager`, thin: check who
//! sent the delivery, store it in the inbox, answer. Nothing is parsed or
//! decided here, so the answer never waits on a decision, and a delivery
//! that was answered 2xx is stored.
//!
//! The answers: 202 when stored; 200 for a GitHub ping (nothing stored)
//! and for a GitHub redelivery already stored; 401 without valid
//! credentials (nothing stored); 400 for a GitHub delivery without its
//! event name; 413 over 25 MB; 503 when the store does not answer, which
//! Alertmanager retries and GitHub shows as a failed delivery to redeliver.
//! Never 429: a refused alert would be lost to whoever sent it.

use super::verify::{self, Refused};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::{Accepted, HookSource, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// GitHub caps webhook payloads at 25 MB; Alertmanager's are far smaller.
pub const MAX_HOOK_BODY_BYTES: usize = 25 * 1024 * 1024;
/// How long a GitHub delivery id is remembered: GitHub lets people
/// redeliver a delivery for 3 days.
pub const DELIVERY_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

/// The webhook routes whose secret is configured; none when neither is.
pub fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let mut hooks = Router::new();
    if state.hooks.github.is_some() {
        hooks = hooks.route("/hooks/github", post(github));
    }
    if state.hooks.alertmanager.is_some() {
        hooks = hooks.route("/hooks/alertmanager", post(alertmanager));
    }
    hooks
        .layer(DefaultBodyLimit::max(MAX_HOOK_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
}

/// Why a delivery was not stored, and what its sender is told: a plain
/// sentence, never a secret or the body.
#[derive(Debug, thiserror::Error)]
enum HookError {
    #[error("{from} webhook refused: {why}")]
    Unauthorized { from: HookSource, why: Refused },
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[from] StoreError),
    /// Over the size limit (413), or cut off.
    #[error("unreadable body: {0}")]
    Body(#[from] BytesRejection),
}

impl IntoResponse for HookError {
    fn into_response(self) -> Response {
        match self {
            HookError::Unauthorized { from, why } => {
                tracing::warn!(source = %from, reason = %why, "refused a webhook without valid credentials");
                match from {
                    HookSource::Github => {
                        (StatusCode::UNAUTHORIZED, "invalid or missing X-Hub-Signature-256").into_response()
                    }
                    HookSource::Alertmanager => (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Bearer")],
                        "invalid or missing bearer token",
                    )
                        .into_response(),
                }
            }
            HookError::BadRequest(why) => {
                tracing::warn!(reason = why, "refused a signed webhook");
                (StatusCode::BAD_REQUEST, why).into_response()
            }
            HookError::Unavailable(e) => {
                tracing::warn!(reason = %e, "webhook answered 503");
                (StatusCode::SERVICE_UNAVAILABLE, "opsbot's store is unavailable; try again shortly").into_response()
            }
            HookError::Body(rejection) => {
                tracing::warn!(reason = %rejection, "refused a webhook body");
                (rejection.status(), rejection.body_text()).into_response()
            }
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn stored(accepted: Accepted) -> Response {
    match accepted {
        Accepted::Stored => (StatusCode::ACCEPTED, Json(json!({"ok": true}))).into_response(),
        Accepted::Duplicate => Json(json!({"ok": true, "duplicate": true})).into_response(),
    }
}

async fn github(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HookError> {
    let Some(secret) = &app.hooks.github else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    // The signature covers the body, so the body is read first.
    let body = body?;
    verify::github(secret.expose().as_bytes(), header(&headers, "x-hub-signature-256"), &body)
        .map_err(|why| HookError::Unauthorized { from: HookSource::Github, why })?;
    let event = header(&headers, "x-github-event").ok_or(HookError::BadRequest("missing X-GitHub-Event"))?;
    let hook_id = header(&headers, "x-github-hook-id");
    if event == "ping" {
        tracing::info!(hook = hook_id.unwrap_or("-"), "GitHub pinged: its webhook reaches opsbot");
        return Ok(Json(json!({"ok": true})).into_response());
    }
    if !opsbot_handlers::alert::github::is_used(event) {
        tracing::debug!(event = %opsbot_handlers::text::loggable(event), "a GitHub event opsbot does not use; not stored");
        return Ok(Json(json!({"ok": true, "ignored": true})).into_response());
    }
    // A redelivery reuses the delivery's GUID; two hooks (a repository's and
    // its organisation's) send the same event under the same GUID, each to
    // be taken once.
    let dedupe = header(&headers, "x-github-delivery").map(|guid| format!("{}:{guid}", hook_id.unwrap_or("")));
    let accepted = app.store.inbox.accept(HookSource::Github, event, dedupe.as_deref(), &body, DELIVERY_TTL).await?;
    if accepted == Accepted::Duplicate {
        tracing::debug!(delivery = dedupe.as_deref().unwrap_or("-"), "dropped a redelivered GitHub delivery");
    }
    Ok(stored(accepted))
}

async fn alertmanager(State(app): State<Arc<AppState>>, request: Request) -> Result<Response, HookError> {
    let Some(token) = &app.hooks.alertmanager else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    // The token is in the headers: an unauthorised sender is refused before
    // its body is read.
    verify::bearer(token.expose(), header(request.headers(), "authorization"))
        .map_err(|why| HookError::Unauthorized { from: HookSource::Alertmanager, why })?;
    let body = Bytes::from_request(request, &app).await?;
    // Alertmanager sends no delivery id; a repeated notification is made
    // harmless by the decisions, which ignore what a group already knows.
    let accepted = app.store.inbox.accept(HookSource::Alertmanager, "", None, &body, DELIVERY_TTL).await?;
    Ok(stored(accepted))
}

/// Counts each webhook request by endpoint and how it ended.
async fn count_requests(State(app): State<Arc<AppState>>, request: Request, next: axum::middleware::Next) -> Response {
    let endpoint = match request.uri().path() {
        "/hooks/github" => "github",
        "/hooks/alertmanager" => "alertmanager",
        _ => "other",
    };
    let response = next.run(request).await;
    app.metrics.hook_request(endpoint, Metrics::outcome_of(response.status()));
    response
}
