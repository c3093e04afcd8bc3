//! What keeps a flood of requests from becoming unbounded memory or
//! minutes-long answers: at most so many requests in flight on the work
//! routes (Slack's and the webhooks'), each for at most so long. A request
//! over the limit is turned away at once with 503 and `Retry-After`, which
//! Slack and Alertmanager retry and GitHub records for redelivery, rather
//! than queued behind the others.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Requests in flight at most, by default: far more than Slack sends a
/// team at once, far less than would exhaust memory.
pub const MAX_IN_FLIGHT: usize = 512;
/// How long a request may take at most, by default. Slack's 3 seconds are
/// kept by the store's own timeouts inside; this bounds everything else.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What a turned-away caller is asked to wait.
const RETRY_AFTER_SECS: &str = "1";

/// The limits, shared by the work routes.
#[derive(Clone)]
pub struct Admission {
    in_flight: Arc<Semaphore>,
    timeout: Duration,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission::new(MAX_IN_FLIGHT, REQUEST_TIMEOUT)
    }
}

impl Admission {
    pub fn new(max_in_flight: usize, timeout: Duration) -> Admission {
        Admission { in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))), timeout }
    }
}

fn unavailable(why: &'static str) -> Response {
    let body = axum::Json(serde_json::json!({ "error": why }));
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, RETRY_AFTER_SECS)], body).into_response()
}

/// The middleware: admits a request if there is room, for at most the
/// timeout.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let Ok(_permit) = admission.in_flight.clone().try_acquire_owned() else {
        return unavailable("overloaded: too many requests in flight, try again in a second");
    };
    match tokio::time::timeout(admission.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(after = ?admission.timeout, "a request took too long and was cut off");
            unavailable("the request took too long")
        }
    }
}
