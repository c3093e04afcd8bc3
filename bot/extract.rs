//! An axum extractor for requests from Slack: the body is read (within the
//! route's size limit), its `v0` signature and timestamp are checked against
//! the signing secret and the clock, and only then is it parsed into the
//! payload the route asks for. A handler that takes `Verified<T>` cannot
//! see an unverified request.

use crate::error::AppError;
use crate::slack::payloads::{self, EventEnvelope, Interaction, SlashCommandForm};
use crate::slack::signature::{self, SignatureError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use std::sync::Arc;

/// A verified Slack request, parsed.
pub struct Verified<T>(pub T);

/// A payload Slack sends, parsed from a verified body.
pub trait SlackPayload: Sized {
    fn parse(body: &[u8]) -> Result<Self, String>;
}

impl SlackPayload for SlashCommandForm {
    fn parse(body: &[u8]) -> Result<Self, String> {
        payloads::slash_command(body).map_err(|e| e.to_string())
    }
}

impl SlackPayload for Interaction {
    fn parse(body: &[u8]) -> Result<Self, String> {
        payloads::interaction(body).map_err(|e| e.to_string())
    }
}

impl SlackPayload for EventEnvelope {
    fn parse(body: &[u8]) -> Result<Self, String> {
        payloads::event(body).map_err(|e| e.to_string())
    }
}

impl<T: SlackPayload> FromRequest<Arc<AppState>> for Verified<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, app: &Arc<AppState>) -> Result<Self, AppError> {
        let (parts, body) = request.into_parts();
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), app).await?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        // The Slack routes exist only with a signing secret (see routes.rs).
        let secret = app.signing_secret.as_ref().ok_or(SignatureError::Missing)?;
        signature::verify(
            secret.expose().as_bytes(),
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            &body,
            app.clock.now().timestamp(),
        )?;
        T::parse(&body).map(Verified).map_err(AppError::BadRequest)
    }
}
