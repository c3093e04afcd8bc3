//! Alerts that arrive by webhook: GitHub (workflow runs, deployment
//! statuses) and Alertmanager. The routes verify a delivery and store it
//! in the inbox before they answer; the worker decides what is stored
//! afterwards. A delivery is answered in milliseconds whatever the store
//! behind the decisions is doing, and a restart loses none.

pub mod routes;
pub mod verify;
pub mod worker;

use crate::config::Secret;

/// What the webhook routes check deliveries against; a route whose secret
/// is not set does not exist.
#[derive(Clone, Debug, Default)]
pub struct HookSecrets {
    /// GitHub's webhook secret (`GITHUB_WEBHOOK_SECRET`).
    pub github: Option<Secret>,
    /// The bearer token Alertmanager sends (`OPSBOT_ALERTMANAGER_TOKEN`).
    pub alertmanager: Option<Secret>,
}

pub use routes::router;
