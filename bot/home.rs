//! Keeps each viewer's App Home tab up to date. Opening the tab publishes
//! it at once; after that, every couple of seconds each recent viewer's
//! view is drawn again from the store and published only if it changed.
//!
//! A view is state, not an event: only the latest matters. So this is not
//! the outbox (which delivers every effect once, in order) but a loop that
//! compares, which coalesces a storm by design (a hundred changes in two
//! seconds are one publish per viewer) and retries a failed publish at the
//! next tick, because what was last published is only recorded on success.
//! Viewers are remembered by the replica that saw them open the tab; after
//! a restart a viewer's tab updates again the next time they open it.

use crate::engine::Engine;
use crate::slack::client::SlackApi;
use opsbot_handlers::home::{self, Facts};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often recent viewers' views are drawn again.
pub const EVERY: Duration = Duration::from_secs(2);
/// How long after opening the tab a viewer's view is kept up to date.
pub const FOLLOWED_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// Viewers followed at most, the most recent first: Slack allows
/// `views.publish` about 100 times a minute.
const MOST_FOLLOWED: usize = 100;

struct Viewer {
    opened: Instant,
    /// The hash of the view last published; `None`: publish it.
    published: Option<u64>,
}

/// The viewers this replica follows; clones share them.
#[derive(Clone)]
pub struct HomeViews {
    engine: Arc<Engine>,
    slack: SlackApi,
    viewers: Arc<Mutex<HashMap<String, Viewer>>>,
    wake: Arc<Notify>,
}

impl HomeViews {
    pub fn new(engine: Arc<Engine>, slack: SlackApi) -> HomeViews {
        HomeViews { engine, slack, viewers: Arc::default(), wake: Arc::default() }
    }

    /// `user` opened the Home tab: their view is published at the next
    /// moment, whatever was published before (Slack may show a stale one).
    pub fn opened(&self, user: &str) {
        let mut viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        viewers.insert(user.to_owned(), Viewer { opened: Instant::now(), published: None });
        if viewers.len() > MOST_FOLLOWED {
            let oldest = viewers.iter().min_by_key(|(_, v)| v.opened).map(|(u, _)| u.clone());
            if let Some(oldest) = oldest {
                viewers.remove(&oldest);
            }
        }
        drop(viewers);
        self.wake.notify_one();
    }

    /// Draws every recent viewer's view and publishes those that changed.
    /// Returns how long to wait before the next tick: longer when Slack
    /// asked us to slow down.
    pub async fn tick(&self) -> Duration {
        let users: Vec<String> = {
            let mut viewers = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
            viewers.retain(|_, v| v.opened.elapsed() < FOLLOWED_FOR);
            viewers.keys().cloned().collect()
        };
        if users.is_empty() {
            return EVERY;
        }
        let store = &self.engine.store.subjects;
        let facts = match tokio::try_join!(store.open_incidents(), store.open_runs()) {
            Ok((open, runs)) => Facts { open, runs },
            Err(e) => {
                tracing::debug!(error = %e, "Home views not drawn: the store did not answer");
                return EVERY;
            }
        };
        let runbook = self.engine.roster.runbook();
        let now = self.engine.clock.now();
        for user in users {
            let view = home::view(&user, &facts, &runbook, now);
            let hash = {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                view.to_string().hash(&mut hasher);
                hasher.finish()
            };
            let unchanged = self
                .viewers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&user)
                .is_some_and(|v| v.published == Some(hash));
            if unchanged {
                continue;
            }
            match self.slack.publish_home(&user, &view).await {
                Ok(()) => {
                    if let Some(v) = self.viewers.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&user) {
                        v.published = Some(hash);
                    }
                }
                Err(e) => {
                    tracing::warn!(%user, error = %e, "could not publish a Home view; trying again shortly");
                    if let Some(wait) = e.retry_after() {
                        return wait.max(EVERY);
                    }
                }
            }
        }
        EVERY
    }
}

/// Publishes Home views until shutdown: at each tick, and at once when
/// someone opens the tab.
pub async fn run(views: HomeViews, shutdown: CancellationToken) {
    loop {
        let wait = views.tick().await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = views.wake.notified() => {}
        }
    }
}
