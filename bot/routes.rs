//! The HTTP endpoints. Each handler is thin: verify, parse, hand to the
//! engine, answer. Slack gets its answer in milliseconds; delivery to Slack
//! happens later, in the outbox worker.

use crate::app::AppState;
use crate::engine;
use crate::slack::payloads::{self, Event, EventEnvelope, Interaction};
use crate::slack::signature::{self, SignatureError};
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use opsbot_handlers::decide::Button;
use opsbot_handlers::{render, IncidentId, Invocation, Reply};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Slack's payloads are small; anything bigger is not from Slack.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long Slack event ids are remembered to drop its retries.
const EVENT_DEDUPE_TTL: Duration = Duration::from_secs(2 * 3600);

pub fn router(state: Arc<AppState>) -> Router {
    let slack = Router::new()
        .route("/slack/commands", post(slack_commands))
        .route("/slack/interactions", post(slack_interactions))
        .route("/slack/events", post(slack_events))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests));
    Router::new()
        .merge(slack)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// What can go wrong serving a request, and what the caller is told. The
/// body is one plain sentence: no Debug dumps, no secrets.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("request signature rejected: {0}")]
    Unauthorized(#[from] SignatureError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        match &self {
            AppError::Unauthorized(e) => {
                tracing::warn!(reason = %e, "refused an unsigned or stale request")
            }
            AppError::BadRequest(e) => {
                tracing::warn!(reason = %e, "refused a signed request that is not a Slack payload")
            }
            AppError::Unavailable(e) => tracing::warn!(reason = %e, "answered 503"),
        }
        let text = match &self {
            AppError::Unauthorized(_) => "invalid or stale Slack signature".to_owned(),
            AppError::BadRequest(why) => why.clone(),
            AppError::Unavailable(_) => "opsbot's store is unavailable; try again shortly".to_owned(),
        };
        (status, text).into_response()
    }
}

fn verify(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), AppError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    signature::verify(
        app.signing_secret.expose().as_bytes(),
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        body,
        app.clock.now().timestamp(),
    )?;
    Ok(())
}

fn ephemeral(reply: Reply) -> Response {
    let mut body = json!({"response_type": "ephemeral", "text": reply.text});
    if let Some(blocks) = reply.blocks {
        body["blocks"] = blocks;
    }
    Json(body).into_response()
}

async fn slack_commands(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    verify(&app, &headers, &body)?;
    let form = payloads::slash_command(&body).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let who = Invocation { user: form.user_id, channel: form.channel_id, team_domain: form.team_domain };
    Ok(ephemeral(engine::slash_command(&app, &form.command, &form.text, &who).await))
}

async fn slack_interactions(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    verify(&app, &headers, &body)?;
    match payloads::interaction(&body).map_err(|e| AppError::BadRequest(e.to_string()))? {
        Interaction::BlockActions { user, team, channel, container, actions, trigger_id } => {
            let Some(channel) = Interaction::channel_of(&channel, &container) else {
                return Err(AppError::BadRequest("block_actions without a channel".into()));
            };
            let who = Invocation { user: user.id, channel, team_domain: team.and_then(|t| t.domain) };
            for action in actions {
                let Some((subject, button)) = Button::parse(&action.action_id, action.value.as_deref().unwrap_or(""))
                else {
                    tracing::debug!(action = %action.action_id, "ignored an action opsbot does not own");
                    continue;
                };
                // A 503 makes Slack show the clicker that the click did not work.
                if let Some(modal) = engine::button(&app, button, &subject, &who).await? {
                    open_modal(&app, trigger_id.as_deref(), &modal, &who).await;
                }
            }
            Ok(StatusCode::OK.into_response())
        }
        Interaction::ViewSubmission { user, view } if view.callback_id == render::RESOLVE_MODAL => {
            let id: IncidentId = view
                .private_metadata
                .parse()
                .map_err(|()| AppError::BadRequest("resolve modal without an incident".into()))?;
            let summary = view.text(render::SUMMARY_FIELD, render::SUMMARY_FIELD);
            // The modal has no channel; notes go to the incident's thread.
            let who = Invocation { user: user.id, channel: String::new(), team_domain: None };
            match engine::resolve_submission(&app, id, summary, &who).await? {
                None => Ok(StatusCode::OK.into_response()),
                Some(why) => Ok(modal_error(render::SUMMARY_FIELD, &why)),
            }
        }
        Interaction::ViewSubmission { user, view } if view.callback_id == render::FLAG_MODAL => {
            let mut parts = view.private_metadata.split(':').map(|p| p.parse::<u64>().ok());
            let (Some(Some(run)), Some(Some(phase)), Some(Some(step))) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(AppError::BadRequest("flag modal without its step".into()));
            };
            let note = view.text(render::NOTE_FIELD, render::NOTE_FIELD).unwrap_or_default();
            let who = Invocation { user: user.id, channel: String::new(), team_domain: None };
            let run = opsbot_handlers::run::RunId(run);
            match engine::flag_submission(&app, run, phase as usize, step as usize, &note, &who).await? {
                None => Ok(StatusCode::OK.into_response()),
                Some(why) => Ok(modal_error(render::NOTE_FIELD, &why)),
            }
        }
        Interaction::ViewSubmission { .. } | Interaction::Other => Ok(StatusCode::OK.into_response()),
    }
}

/// Keeps a modal open with `why` under the field, as Slack shows errors.
fn modal_error(field: &str, why: &str) -> Response {
    Json(json!({"response_action": "errors", "errors": { field: opsbot_handlers::text::truncate(why, 150) }}))
        .into_response()
}

/// Opens the modal within the click's 3-second `trigger_id`; if Slack
/// will not, the clicker is told how to do it by command instead.
async fn open_modal(app: &AppState, trigger_id: Option<&str>, modal: &serde_json::Value, who: &Invocation) {
    let opened = match trigger_id {
        Some(trigger) => tokio::time::timeout(Duration::from_millis(2500), app.slack.open_modal(trigger, modal))
            .await
            .map_err(|_| "Slack did not answer in time".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
        None => Err("the click carried no trigger_id".to_owned()),
    };
    if let Err(why) = opened {
        tracing::warn!(reason = %why, "could not open a dialog");
        let note = opsbot_handlers::Effect::Ephemeral {
            channel: who.channel.clone(),
            user: who.user.clone(),
            text: "I could not open the resolve dialog. Resolve with `/incident resolve <id> <summary>` instead."
                .to_owned(),
        };
        if let Err(e) = app.store.enqueue(&[note]).await {
            tracing::warn!(error = %e, "could not tell the clicker either");
        }
    }
}

async fn slack_events(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    verify(&app, &headers, &body)?;
    match payloads::event(&body).map_err(|e| AppError::BadRequest(e.to_string()))? {
        EventEnvelope::UrlVerification { challenge } => Ok(Json(json!({ "challenge": challenge })).into_response()),
        EventEnvelope::EventCallback { event_id, event } => {
            let Event::AppMention { text, channel, ts, thread_ts } = event else {
                return Ok(StatusCode::OK.into_response());
            };
            // A retry (X-Slack-Retry-Num) of an event we already took is
            // answered 200 and dropped; a 503 here makes Slack retry later.
            if app.store.first_sighting(&event_id, EVENT_DEDUPE_TTL).await? {
                engine::mention(&app, &text, &channel, thread_ts.as_deref().unwrap_or(&ts)).await?;
            } else {
                tracing::debug!(%event_id, "dropped a redelivered event");
            }
            Ok(StatusCode::OK.into_response())
        }
        EventEnvelope::Other => Ok(StatusCode::OK.into_response()),
    }
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
    let outcome = match response.status().as_u16() {
        200..=299 => "ok",
        401 => "unauthorized",
        503 => "unavailable",
        400..=499 => "bad_request",
        _ => "error",
    };
    app.metrics.request(endpoint, outcome);
    response
}

/// Prometheus text; the gauges are read from the store at scrape time
/// (left as they were if the store does not answer).
async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let m = &app.metrics;
    let (outbox, open, timers) =
        tokio::join!(app.store.outbox_len(), app.store.open_incidents(), app.store.timer_count());
    if let Ok(n) = outbox {
        m.outbox_entries.set(n as i64);
    }
    if let Ok(open) = open {
        m.open_incidents.set(open.len() as i64);
    }
    if let Ok(n) = timers {
        m.timers_set.set(n as i64);
    }
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
