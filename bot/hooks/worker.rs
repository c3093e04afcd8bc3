//! The hook worker: decides the webhook deliveries the routes stored.
//!
//! Entries come from the inbox stream, read through a consumer group like
//! the outbox's, so replicas share them and each goes to one. Each is
//! parsed and handed to the engine as a signal, and leaves the stream only
//! once its decision is committed. A crash in between decides it again,
//! which changes nothing the second time (a signal that repeats what its
//! group knows decides nothing). So nothing is lost:
//! - a store error leaves the entry pending; it is read again, after a
//!   backoff, before anything newer;
//! - a restart under the same replica name first reads back its own
//!   unfinished entries;
//! - entries of a replica that stopped are taken over as soon as its
//!   heartbeat lapses (or it left), and those of a replica without a
//!   heartbeat once they have been idle for `reclaim_after`.
//!
//! A delivery that does not parse never will: it is logged once (source,
//! event and why, never the body) and settled.
//!
//! Entries are decided one at a time, in stream order. During an alert
//! storm that bounds intake throughput by one decision's round trips to
//! the store; the routes keep answering fast meanwhile, as the inbox
//! absorbs the burst.

use crate::engine::{Engine, Signalled};
use crate::metrics::Metrics;
use crate::outbox::backoff;
use crate::outbox::WorkerSettings;
use crate::store::{Hook, HookSource, InboxEntry, InboxStore, StoreError};
use opsbot_handlers::alert::github::Parsed;
use opsbot_handlers::alert::signal::Signal;
use opsbot_handlers::alert::{alertmanager, github};
use opsbot_handlers::text::loggable;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct HookSettings {
    /// This replica's consumer name; a restarted replica with the same name
    /// resumes its unfinished entries at once.
    pub consumer: String,
    /// Entries read per batch. Small: a GitHub body may be up to 25 MB, and
    /// entries are decided one at a time anyway.
    pub batch: usize,
    /// Entries another replica has held this long are taken over.
    pub reclaim_after: Duration,
    /// How often to look for entries of replicas whose heartbeat lapsed.
    pub heartbeat_every: Duration,
    pub backoff_first: Duration,
    pub backoff_max: Duration,
}

impl HookSettings {
    /// The outbox worker's consumer name, takeover time and backoff: one
    /// replica, one name, one pace of retries.
    pub fn like(outbox: &WorkerSettings) -> HookSettings {
        HookSettings {
            consumer: outbox.consumer.clone(),
            batch: 16,
            reclaim_after: outbox.reclaim_after,
            heartbeat_every: outbox.heartbeat_every,
            backoff_first: outbox.backoff_first,
            backoff_max: outbox.backoff_max,
        }
    }
}

/// What the hook worker needs: where deliveries wait, who decides them,
/// and the counters.
pub struct HookWorker {
    pub inbox: InboxStore,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    pub settings: HookSettings,
}

/// What became of one entry, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Its signal was decided (which may have changed nothing).
    Decided,
    /// Nothing to act on: an event or action opsbot does not use.
    Ignored,
    /// It cannot be read, and never will.
    Unreadable,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Decided => "decided",
            Outcome::Ignored => "ignored",
            Outcome::Unreadable => "unreadable",
        }
    }
}

/// Why the worker stopped and backs off; what it was on stays pending.
#[derive(Debug, thiserror::Error)]
enum Stall {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("an alert group stayed contended")]
    Contended,
}

pub async fn run(worker: HookWorker, shutdown: CancellationToken) {
    let settings = &worker.settings;
    // Replaying our own unfinished entries (after a restart or a stall):
    // the id after which to read next; `None` once caught up.
    let mut own_cursor: Option<String> = Some("0".to_owned());
    // The group must exist before reading; a Redis that restarted empty has
    // lost it, so it is created again after every read error.
    let mut prepared = false;
    let mut next_reclaim = Instant::now();
    let mut next_departed = Instant::now();
    let mut failures = 0u32;

    while !shutdown.is_cancelled() {
        let reclaim_now = own_cursor.is_none() && Instant::now() >= next_reclaim;
        if reclaim_now {
            next_reclaim = Instant::now() + settings.reclaim_after / 4;
        }
        let departed_now = own_cursor.is_none() && Instant::now() >= next_departed;
        if departed_now {
            next_departed = Instant::now() + settings.heartbeat_every;
        }
        let read = async {
            if !prepared {
                worker.inbox.prepare().await?;
            }
            if let Some(after) = &own_cursor {
                let mine = worker.inbox.read(&settings.consumer, settings.batch, Some(after)).await?;
                return Ok::<_, StoreError>((mine, true));
            }
            if departed_now {
                let claimed = worker.inbox.claim_departed(&settings.consumer, settings.batch).await?;
                if !claimed.is_empty() {
                    tracing::info!(
                        entries = claimed.len(),
                        "took over webhook deliveries from a replica that left or whose heartbeat lapsed"
                    );
                    return Ok((claimed, false));
                }
            }
            if reclaim_now {
                let claimed =
                    worker.inbox.claim_abandoned(&settings.consumer, settings.reclaim_after, settings.batch).await?;
                if !claimed.is_empty() {
                    tracing::info!(entries = claimed.len(), "took over webhook deliveries from a replica that stopped");
                    return Ok((claimed, false));
                }
            }
            Ok((worker.inbox.read(&settings.consumer, settings.batch, None).await?, false))
        };
        let read = tokio::select! {
            _ = shutdown.cancelled() => break,
            read = read => read,
        };
        let settled = match read {
            Ok((entries, reading_own)) => {
                prepared = true;
                if reading_own {
                    // An empty answer means we are caught up with our own.
                    own_cursor = entries.last().map(|e| e.id.clone());
                }
                worker.settle(entries, &shutdown).await
            }
            Err(e) => {
                prepared = false;
                Err(Stall::Store(e))
            }
        };
        match settled {
            Ok(()) => failures = 0,
            Err(stall) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) || tracing::enabled!(tracing::Level::DEBUG) {
                    tracing::warn!(reason = %stall, "webhook deliveries wait; retrying");
                }
                // What was not settled is pending on us: read it again first,
                // in order, so nothing newer overtakes it.
                own_cursor = Some("0".to_owned());
                let pause = backoff(settings.backoff_first, settings.backoff_max, failures);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

impl HookWorker {
    /// Decides and settles entries in order; stops at the first that cannot
    /// be settled now, or when shutting down (the rest stay pending).
    async fn settle(&self, entries: Vec<InboxEntry>, shutdown: &CancellationToken) -> Result<(), Stall> {
        for entry in entries {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let (source, outcome) = match &entry.hook {
                Ok(hook) => (hook.source.as_str(), self.decide(hook).await?),
                Err(reason) => {
                    tracing::warn!(entry = %entry.id, %reason, "an inbox entry cannot be read; dropped");
                    ("unknown", Outcome::Unreadable)
                }
            };
            self.inbox.done(&entry.id).await?;
            self.metrics.hook_signal(source, outcome.as_str());
        }
        Ok(())
    }

    /// Parses a delivery and decides its signal; `Err` when it must be
    /// decided again later.
    async fn decide(&self, hook: &Hook) -> Result<Outcome, Stall> {
        let event = loggable(&hook.event);
        let signal = match hook.source {
            HookSource::Github => match github::parse(&hook.event, &hook.body) {
                Ok(Parsed::Signal(signal)) => signal,
                Ok(Parsed::Ping { .. }) => {
                    tracing::debug!("a GitHub ping reached the inbox; nothing to do");
                    return Ok(Outcome::Ignored);
                }
                Ok(Parsed::Ignored { why }) => {
                    tracing::debug!(%event, %why, "GitHub delivery ignored");
                    return Ok(Outcome::Ignored);
                }
                Err(error) => {
                    tracing::warn!(source = "github", %event, %error, "a webhook delivery cannot be read; dropped");
                    return Ok(Outcome::Unreadable);
                }
            },
            HookSource::Alertmanager => match alertmanager::parse(&hook.body) {
                Ok(group) => Signal::Alertmanager(group),
                Err(error) => {
                    tracing::warn!(source = "alertmanager", %error, "a webhook delivery cannot be read; dropped");
                    return Ok(Outcome::Unreadable);
                }
            },
        };
        match self.engine.signal(signal).await? {
            Signalled::Decided => Ok(Outcome::Decided),
            Signalled::Contended => Err(Stall::Contended),
        }
    }
}
