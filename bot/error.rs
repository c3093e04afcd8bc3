//! What can go wrong serving a request, and what the caller is told: one
//! plain sentence and the status that fits, never a Debug dump or a secret.

use crate::slack::signature::SignatureError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("request signature rejected: {0}")]
    Unauthorized(#[from] SignatureError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[from] StoreError),
    /// The body could not be read: over the size limit (413), or cut off.
    #[error("unreadable body: {0}")]
    Body(#[from] axum::extract::rejection::BytesRejection),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, text) = match &self {
            AppError::Body(rejection) => {
                tracing::warn!(reason = %rejection, "refused a request body");
                (rejection.status(), rejection.body_text())
            }
            AppError::Unauthorized(e) => {
                tracing::warn!(reason = %e, "refused an unsigned or stale request");
                (StatusCode::UNAUTHORIZED, "invalid or stale Slack signature".to_owned())
            }
            AppError::BadRequest(why) => {
                tracing::warn!(reason = %why, "refused a signed request that is not a Slack payload");
                (StatusCode::BAD_REQUEST, why.clone())
            }
            AppError::Unavailable(e) => {
                tracing::warn!(reason = %e, "answered 503");
                (StatusCode::SERVICE_UNAVAILABLE, "opsbot's store is unavailable; try again shortly".to_owned())
            }
        };
        (status, text).into_response()
    }
}
