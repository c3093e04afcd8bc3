//! The HTTP endpoints. Each handler is thin: the [`Verified`] extractor
//! checks and parses the request, [`inbound`] has the engine decide and
//! commit (as it does for Socket Mode's envelopes), the handler answers.
//! Slack gets its answer in milliseconds; delivery to Slack happens later,
//! in the outbox worker.

use crate::error::AppError;
use crate::extract::Verified;
use crate::inbound::{self, SlackAnswer};
use crate::slack::payloads::{EventEnvelope, Interaction, SlashCommandForm};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// Slack's payloads are small; anything bigger is not from Slack.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    // Without a signing secret (Socket Mode only) nothing could be
    // verified, and Slack sends nothing here: the routes do not exist.
    let slack = match state.signing_secret {
        Some(_) => Router::new()
            .route("/slack/commands", post(slack_commands))
            .route("/slack/interactions", post(slack_interactions))
            .route("/slack/events", post(slack_events))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests)),
        None => Router::new(),
    };
    // Health and metrics stay outside the limits: a flood must not make
    // the bot look dead to its orchestrator, nor blind its dashboards.
    let work = Router::new()
        .merge(slack)
        .merge(crate::hooks::router(&state))
        .layer(axum::middleware::from_fn_with_state(state.admission.clone(), crate::admission::admit));
    Router::new()
        .merge(work)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// HTTP's side of an answer: a plain 200, or the JSON Slack reads.
fn respond(answer: SlackAnswer) -> Response {
    match answer {
        None => StatusCode::OK.into_response(),
        Some(body) => Json(body).into_response(),
    }
}

async fn slack_commands(
    State(app): State<Arc<AppState>>,
    Verified(form): Verified<SlashCommandForm>,
) -> Result<Response, AppError> {
    inbound::slash_command(&app, form).await.map(respond)
}

async fn slack_interactions(
    State(app): State<Arc<AppState>>,
    Verified(interaction): Verified<Interaction>,
) -> Result<Response, AppError> {
    inbound::interaction(&app, interaction).await.map(respond)
}

async fn slack_events(
    State(app): State<Arc<AppState>>,
    Verified(envelope): Verified<EventEnvelope>,
) -> Result<Response, AppError> {
    inbound::event(&app, envelope).await.map(respond)
}

/// Counts each request from Slack by endpoint and how it ended.
async fn count_requests(
    State(app): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let endpoint = match request.uri().path() {
        "/slack/commands" => "commands",
        "/slack/interactions" => "interactions",
        "/slack/events" => "events",
        _ => "other",
    };
    let response = next.run(request).await;
    app.metrics.request(endpoint, crate::metrics::Metrics::outcome_of(response.status()));
    response
}

/// Prometheus text; the gauges are read from the store at scrape time
/// (left as they were if the store does not answer).
async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let m = &app.metrics;
    let (outbox, open, timers, inbox) = tokio::join!(
        app.store.outbox.len(),
        // A count only: reading every open incident would cost a scrape as
        // much as the open incidents weigh (tens of MB after a storm).
        app.store.subjects.open_incidents_first(0),
        app.store.timers.count(),
        app.store.inbox.len()
    );
    if let Ok(n) = outbox {
        m.outbox_entries.set(n as i64);
    }
    if let Ok((_, open)) = open {
        m.open_incidents.set(open as i64);
    }
    if let Ok(n) = timers {
        m.timers_set.set(n as i64);
    }
    if let Ok(n) = inbox {
        m.inbox_entries.set(n as i64);
    }
    m.unreplicated_commits.set(i64::try_from(app.store.unreplicated_commits()).unwrap_or(i64::MAX));
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode())
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when Redis answers and Slack accepts our token.
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let (redis, slack) = tokio::join!(app.store.ping(), app.slack_ready());
    let body = json!({
        "redis": match &redis { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "slack": slack.clone().unwrap_or_else(|| "ok".to_owned()),
    });
    let status = if redis.is_ok() && slack.is_none() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}
