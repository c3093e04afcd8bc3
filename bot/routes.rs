//! The HTTP endpoints. Each handler is thin: the [`Verified`] extractor
//! checks and parses the request, the engine decides and commits, the
//! handler answers. Slack gets its answer in milliseconds; delivery to Slack
//! happens later, in the outbox worker.

use crate::error::AppError;
use crate::extract::Verified;
use crate::slack::payloads::{Event, EventEnvelope, Interaction, SlashCommandForm};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use opsbot_handlers::codec::{Button, Submission};
use opsbot_handlers::decision::Modal;
use opsbot_handlers::{Invocation, Reply};
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
        .merge(crate::hooks::router(&state))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
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
    Verified(form): Verified<SlashCommandForm>,
) -> Result<Response, AppError> {
    let who = Invocation {
        user: form.user_id,
        channel: form.channel_id,
        team_domain: form.team_domain,
        response_url: form.response_url,
        groups: Vec::new(),
    };
    let answer = app.engine.command(&form.command, &form.text, &who).await;
    if let Some(modal) = answer.modal {
        // Slack wants the command itself answered within 3 s too, and the
        // decision may have waited for GitHub: the dialog opens beside the
        // answer rather than before it.
        let app = app.clone();
        let trigger_id = form.trigger_id;
        tokio::spawn(async move { open_modal(&app, trigger_id.as_deref(), &modal, &who).await });
    }
    Ok(ephemeral(answer.reply))
}

async fn slack_interactions(
    State(app): State<Arc<AppState>>,
    Verified(interaction): Verified<Interaction>,
) -> Result<Response, AppError> {
    match interaction {
        Interaction::BlockActions { user, team, channel, container, actions, trigger_id, response_url } => {
            let Some(channel) = Interaction::channel_of(&channel, &container) else {
                return Err(AppError::BadRequest("block_actions without a channel".into()));
            };
            let who = Invocation {
                user: user.id,
                channel,
                team_domain: team.and_then(|t| t.domain),
                response_url,
                groups: Vec::new(),
            };
            for action in actions {
                let Some(button) = Button::parse(&action.action_id, action.value.as_deref().unwrap_or("")) else {
                    tracing::debug!(action = %action.action_id, "ignored an action opsbot does not own");
                    continue;
                };
                // A 503 makes Slack show the clicker that the click did not work.
                if let Some(modal) = app.engine.click(button, &who).await? {
                    open_modal(&app, trigger_id.as_deref(), &modal, &who).await;
                }
            }
            Ok(StatusCode::OK.into_response())
        }
        Interaction::ViewSubmission { user, view } => {
            let field = |id: &str| view.text(id, id);
            let Some(submission) = Submission::parse(&view.callback_id, &view.private_metadata, field)
                .map_err(|why| AppError::BadRequest(why.to_owned()))?
            else {
                return Ok(StatusCode::OK.into_response());
            };
            // A modal has no channel; notes go to the subject's thread.
            let who = Invocation {
                user: user.id,
                channel: String::new(),
                team_domain: None,
                response_url: None,
                groups: Vec::new(),
            };
            match app.engine.submission(submission, &who).await? {
                None => Ok(StatusCode::OK.into_response()),
                Some(refused) => Ok(modal_error(refused.field, &refused.text)),
            }
        }
        Interaction::Other => Ok(StatusCode::OK.into_response()),
    }
}

/// Keeps a modal open with `why` under the field, as Slack shows errors.
fn modal_error(field: &str, why: &str) -> Response {
    Json(json!({"response_action": "errors", "errors": { field: opsbot_handlers::text::truncate(why, 150) }}))
        .into_response()
}

/// Opens the modal within the click's (or command's) 3-second
/// `trigger_id`; if Slack will not, the person is told what to do instead.
async fn open_modal(app: &AppState, trigger_id: Option<&str>, modal: &Modal, who: &Invocation) {
    let opened = match trigger_id {
        Some(trigger) => tokio::time::timeout(Duration::from_millis(2500), app.slack.open_modal(trigger, &modal.view))
            .await
            .map_err(|_| "Slack did not answer in time".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
        None => Err("the request carried no trigger_id".to_owned()),
    };
    if let Err(why) = opened {
        tracing::warn!(reason = %why, "could not open a dialog");
        if let Err(e) = app.engine.tell(who, &modal.fallback).await {
            tracing::warn!(error = %e, "could not tell the clicker either");
        }
    }
}

async fn slack_events(
    State(app): State<Arc<AppState>>,
    Verified(envelope): Verified<EventEnvelope>,
) -> Result<Response, AppError> {
    match envelope {
        EventEnvelope::UrlVerification { challenge } => Ok(Json(json!({ "challenge": challenge })).into_response()),
        EventEnvelope::EventCallback { event_id, event } => {
            let Event::AppMention { text, channel, ts, thread_ts } = event else {
                return Ok(StatusCode::OK.into_response());
            };
            // A retry (X-Slack-Retry-Num) of an event we already took is
            // answered 200 and dropped; a 503 here makes Slack retry later.
            if app.store.dedupe.first_sighting(&event_id, EVENT_DEDUPE_TTL).await? {
                app.engine.mention(&text, &channel, thread_ts.as_deref().unwrap_or(&ts)).await?;
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
    app.metrics.request(endpoint, crate::metrics::Metrics::outcome_of(response.status()));
    response
}

/// Prometheus text; the gauges are read from the store at scrape time
/// (left as they were if the store does not answer).
async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let m = &app.metrics;
    let (outbox, open, timers, inbox) = tokio::join!(
        app.store.outbox.len(),
        app.store.subjects.open_incidents(),
        app.store.timers.count(),
        app.store.inbox.len()
    );
    if let Ok(n) = outbox {
        m.outbox_entries.set(n as i64);
    }
    if let Ok(open) = open {
        m.open_incidents.set(open.len() as i64);
    }
    if let Ok(n) = timers {
        m.timers_set.set(n as i64);
    }
    if let Ok(n) = inbox {
        m.inbox_entries.set(n as i64);
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
