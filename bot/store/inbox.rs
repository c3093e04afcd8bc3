//! The inbox: webhook deliveries from GitHub and Alertmanager, stored as
//! they arrived before anything is decided, in a stream that replicas share
//! through a consumer group. The intake answers once a delivery is here, so
//! a crash or a restart loses none; the hook worker decides them after.
//!
//! A GitHub delivery carries an id that its redeliveries reuse; the first
//! sighting of the id and the stored entry are one atomic write, so a
//! redelivery is stored once and a crash never marks a delivery seen
//! without storing it.

use super::{Backend, StoreResult};
use std::fmt;
use std::time::Duration;

/// How long a blocking inbox read waits for new entries.
pub const INBOX_BLOCK: Duration = Duration::from_millis(1000);

/// Who sent a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookSource {
    Github,
    Alertmanager,
}

impl HookSource {
    /// Its name in the stream, the logs and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HookSource::Github => "github",
            HookSource::Alertmanager => "alertmanager",
        }
    }

    fn parse(name: &str) -> Option<HookSource> {
        match name {
            "github" => Some(HookSource::Github),
            "alertmanager" => Some(HookSource::Alertmanager),
            _ => None,
        }
    }
}

impl fmt::Display for HookSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub source: HookSource,
    /// GitHub's `X-GitHub-Event`; empty for Alertmanager.
    pub event: String,
    /// The raw body, verified but not parsed.
    pub body: Vec<u8>,
}

/// One inbox entry as read back from the stream.
#[derive(Clone, Debug)]
pub struct InboxEntry {
    pub id: String,
    /// Why the entry cannot be read, when it cannot (written by a newer
    /// version, or damaged): it will never be, so it is settled as it is.
    pub hook: Result<Hook, String>,
}

/// Whether `accept` stored the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    Stored,
    /// Seen before within the TTL: nothing stored.
    Duplicate,
}

/// The delivery stream; see the module's comment.
#[derive(Clone)]
pub struct InboxStore {
    pub(super) backend: Backend,
}

impl InboxStore {
    /// Stores a delivery, unless `dedupe` was accepted within `ttl`.
    /// Without `dedupe` it is always stored.
    pub async fn accept(
        &self,
        source: HookSource,
        event: &str,
        dedupe: Option<&str>,
        body: &[u8],
        ttl: Duration,
    ) -> StoreResult<Accepted> {
        dispatch!(self.inbox_accept(source, event, dedupe, body, ttl))
    }

    /// Creates the consumer group (and stream) unless it exists; needed at
    /// start and again after Redis lost its data.
    pub async fn prepare(&self) -> StoreResult<()> {
        dispatch!(self.inbox_prepare())
    }

    /// Reads entries for `consumer`: with `own_pending_after`, the ones it
    /// was given before and never finished (after a restart), after that
    /// id; else new ones, waiting up to [`INBOX_BLOCK`] for some to arrive.
    pub async fn read(
        &self,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<InboxEntry>> {
        // Both backends wait here, so no `dispatch!`.
        match &self.backend {
            Backend::Redis(store) => store.inbox_read(consumer, count, own_pending_after).await,
            Backend::Memory(store) => store.inbox_read(consumer, count, own_pending_after).await,
        }
    }

    /// Takes over entries another consumer was given but has not finished
    /// for `min_idle`: that replica died.
    pub async fn claim_abandoned(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<InboxEntry>> {
        dispatch!(self.inbox_claim_abandoned(consumer, min_idle, count))
    }

    /// Takes over entries held by replicas whose heartbeat has lapsed or
    /// who left, however recently they touched them; in stream order.
    pub async fn claim_departed(&self, consumer: &str, count: usize) -> StoreResult<Vec<InboxEntry>> {
        dispatch!(self.inbox_claim_departed(consumer, count))
    }

    /// Resets an entry's idle time while we are still on it, so another
    /// replica does not take it over.
    pub async fn keep(&self, consumer: &str, entry_id: &str) -> StoreResult<bool> {
        dispatch!(self.inbox_keep(consumer, entry_id))
    }

    /// The entry is settled: it leaves the stream.
    pub async fn done(&self, entry_id: &str) -> StoreResult<()> {
        dispatch!(self.inbox_done(entry_id))
    }

    /// Entries not yet settled (pending or unread), for tests and metrics.
    pub async fn len(&self) -> StoreResult<u64> {
        dispatch!(self.inbox_len())
    }
}

/// The stream fields of a delivery: `source`, `event`, `body`.
pub(super) fn hook_fields<'a>(source: HookSource, event: &'a str, body: &'a [u8]) -> [(&'static str, &'a [u8]); 3] {
    [("source", source.as_str().as_bytes()), ("event", event.as_bytes()), ("body", body)]
}

/// A delivery from its stream fields; the error says why it cannot be read.
pub(super) fn decode_hook(
    source: Option<Vec<u8>>,
    event: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
) -> Result<Hook, String> {
    let source = source.ok_or("no source field")?;
    let source = std::str::from_utf8(&source).ok().and_then(HookSource::parse).ok_or_else(|| {
        format!("unknown source {:?}", String::from_utf8_lossy(&source).chars().take(32).collect::<String>())
    })?;
    let event = String::from_utf8(event.unwrap_or_default()).map_err(|_| "an event name that is not UTF-8")?;
    let body = body.ok_or("no body field")?;
    Ok(Hook { source, event, body })
}
