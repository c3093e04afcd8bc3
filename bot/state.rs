//! What the HTTP handlers share: the engine that decides, the store for
//! the few reads and writes that are not decisions (readiness, gauges,
//! event de-duplication, the webhook inbox), the Slack client, and how
//! requests are verified.

use crate::clock::Clock;
use crate::config::HookSecrets;
use crate::config::Secret;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::slack::client::SlackApi;
use crate::store::Store;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a Slack reachability check is reused by `/readyz`, so probes
/// do not hammer Slack's rate-limited `auth.test`.
const SLACK_CHECK_TTL: Duration = Duration::from_secs(10);

pub struct AppState {
    pub engine: Arc<Engine>,
    pub store: Store,
    pub slack: SlackApi,
    /// `None`: no Slack route over HTTP (Socket Mode only).
    pub signing_secret: Option<Secret>,
    /// Slack talks to this bot over Socket Mode: it is ready only while
    /// a connection is open.
    pub socket_mode: bool,
    /// What webhook deliveries are checked against.
    pub hooks: HookSecrets,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// The App Home tabs this replica keeps up to date.
    pub home: crate::home::HomeViews,
    /// How many requests may be in flight, and for how long.
    pub admission: crate::admission::Admission,
    slack_check: Mutex<Option<(Instant, Option<String>)>>,
}

impl AppState {
    pub fn new(
        engine: Arc<Engine>,
        slack: SlackApi,
        signing_secret: Option<Secret>,
        socket_mode: bool,
        hooks: HookSecrets,
    ) -> AppState {
        AppState {
            store: engine.store.clone(),
            clock: engine.clock.clone(),
            metrics: engine.metrics.clone(),
            home: crate::home::HomeViews::new(engine.clone(), slack.clone()),
            admission: crate::admission::Admission::default(),
            engine,
            slack,
            signing_secret,
            socket_mode,
            hooks,
            slack_check: Mutex::new(None),
        }
    }

    /// `None` when Slack answers and accepts our token (and, in Socket
    /// Mode, a connection is open), else why not.
    pub async fn slack_ready(&self) -> Option<String> {
        if self.socket_mode && self.metrics.socket_mode_connections.get() <= 0 {
            return Some("no Socket Mode connection is open".to_owned());
        }
        if let Some((at, verdict)) = self.slack_check.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            if at.elapsed() < SLACK_CHECK_TTL {
                return verdict;
            }
        }
        let verdict = tokio::time::timeout(Duration::from_secs(2), self.slack.auth_test())
            .await
            .map_err(|_| "Slack did not answer within 2 s".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .err();
        *self.slack_check.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), verdict.clone()));
        verdict
    }
}
