//! Slack's `response_url`s: the one-off webhook a slash command or a click
//! carries, through which an app answers later than its 3 s ack. Slack
//! accepts up to 5 answers per URL within 30 minutes; the fake mints URLs
//! for tests and the sandbox to put in the payloads they send, and records
//! each answer as the ephemeral message the person would see.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::blockkit;
use crate::FakeSlack;

/// How many answers Slack takes through one `response_url`.
pub const USES: u32 = 5;

/// Who a minted URL answers: the person who typed, in the channel.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub channel: String,
    pub user: String,
    pub uses: u32,
}

pub(crate) fn router(fake: FakeSlack) -> Router {
    Router::new().route("/{id}", post(respond)).with_state(fake)
}

/// Slack answers a good post with `{"ok":true}` and a spent or unknown URL
/// with 404 `expired_url` / `used_url`; blocks are checked like
/// `chat.postMessage`'s.
async fn respond(State(fake): State<FakeSlack>, Path(id): Path<String>, body: Bytes) -> Response {
    let refuse = |status: StatusCode, error: &str| (status, Json(json!({"ok": false, "error": error}))).into_response();
    if fake.inner.is_unavailable() {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    fake.inner.lock().count_call("response_url");
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let text = message.get("text").and_then(Value::as_str).unwrap_or_default().to_owned();
    let blocks = message.get("blocks").cloned().unwrap_or(Value::Null);
    if !blocks.is_null() {
        if let Err(messages) = blockkit::validate_blocks(&blocks) {
            let body = json!({"ok": false, "error": "invalid_blocks", "response_metadata": {"messages": messages}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    }
    if text.is_empty() && blocks.as_array().is_none_or(Vec::is_empty) {
        return refuse(StatusCode::BAD_REQUEST, "no_text");
    }
    let target = {
        let mut rec = fake.inner.lock();
        match rec.responses.get_mut(&id) {
            None => return refuse(StatusCode::NOT_FOUND, "expired_url"),
            Some(t) if t.uses >= USES => return refuse(StatusCode::NOT_FOUND, "used_url"),
            Some(t) => {
                t.uses += 1;
                t.clone()
            }
        }
    };
    let blocks = match blocks {
        Value::Array(a) if !a.is_empty() => Value::Array(a),
        _ => Value::Null,
    };
    fake.inner.record_ephemeral(&target.channel, &target.user, text, blocks);
    Json(json!({"ok": true})).into_response()
}
