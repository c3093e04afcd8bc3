//! The outbox: what decisions owe Slack, in a stream that replicas share
//! through a consumer group, and the dead letters Slack refused for good.

use super::{Backend, StoreResult};
use opsbot_handlers::Effect;
use std::time::Duration;

/// How long a blocking outbox read waits for new entries.
pub const OUTBOX_BLOCK: Duration = Duration::from_millis(1000);

/// Dead letters kept, newest first; older ones are dropped.
pub(super) const DEAD_LETTERS_KEPT: usize = 1000;

/// One outbox entry as read back from the stream.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub id: String,
    pub effect: Effect,
}

/// The delivery stream; see the module's comment.
#[derive(Clone)]
pub struct OutboxStore {
    pub(super) backend: Backend,
}

impl OutboxStore {
    /// Effects that change no state (answers to mentions, notes to a user).
    pub async fn enqueue(&self, effects: &[Effect]) -> StoreResult<()> {
        dispatch!(self.enqueue(effects))
    }

    /// Creates the consumer group (and stream) unless it exists; needed at
    /// start and again after Redis lost its data.
    pub async fn prepare(&self) -> StoreResult<()> {
        dispatch!(self.outbox_prepare())
    }

    /// Reads entries for `consumer`: with `own_pending_after`, the ones it
    /// was given before and never finished (after a restart), after that
    /// id; else new ones, waiting up to [`OUTBOX_BLOCK`] for some to arrive.
    pub async fn read(
        &self,
        consumer: &str,
        count: usize,
        own_pending_after: Option<&str>,
    ) -> StoreResult<Vec<OutboxEntry>> {
        // Both backends wait here, so no `dispatch!`.
        match &self.backend {
            Backend::Redis(store) => store.outbox_read(consumer, count, own_pending_after).await,
            Backend::Memory(store) => store.outbox_read(consumer, count, own_pending_after).await,
        }
    }

    /// Takes over entries another consumer was given but has not finished
    /// for `min_idle`: that replica died.
    pub async fn claim_abandoned(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        dispatch!(self.outbox_claim_abandoned(consumer, min_idle, count))
    }

    /// Resets an entry's idle time while we keep retrying it, so another
    /// replica does not think we died and deliver it twice.
    pub async fn keep(&self, consumer: &str, entry_id: &str) -> StoreResult<()> {
        dispatch!(self.outbox_keep(consumer, entry_id))
    }

    pub async fn done(&self, entry_id: &str) -> StoreResult<()> {
        dispatch!(self.outbox_done(entry_id))
    }

    /// Moves an entry Slack refused for good to the dead letters, with why.
    pub async fn dead(&self, entry: &OutboxEntry, error: &str, at: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
        dispatch!(self.outbox_dead(entry, error, at))
    }

    pub async fn dead_letters(&self) -> StoreResult<Vec<serde_json::Value>> {
        dispatch!(self.dead_letters())
    }

    /// Takes one of `channel`'s posting slots, shared by every replica:
    /// `None` when taken, else how long until one frees up. A channel
    /// takes a post every `every`, and up to `burst` at once after a pause.
    pub async fn take_post_slot(&self, channel: &str, every: Duration, burst: u32) -> StoreResult<Option<Duration>> {
        dispatch!(self.take_post_slot(channel, every, burst))
    }

    /// Entries not yet delivered (pending or unread), for tests and metrics.
    pub async fn len(&self) -> StoreResult<u64> {
        dispatch!(self.outbox_len())
    }
}

/// An outbox entry's effect from its `effect` field; the error says why it
/// cannot be read (then the entry goes to the dead letters).
pub(super) fn decode_effect(json: Option<String>) -> Result<Effect, String> {
    json.ok_or_else(|| "no effect field".to_owned())
        .and_then(|json| serde_json::from_str::<Effect>(&json).map_err(|e| e.to_string()))
}

/// The dead letter for an entry Slack refused for good.
pub(super) fn dead_letter(entry: &OutboxEntry, error: &str, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({"entry": entry.id, "effect": entry.effect, "error": error, "at": at})
}

/// The dead letter for an entry no version of us can read.
pub(super) fn unreadable_letter(entry_id: &str, reason: &str) -> serde_json::Value {
    serde_json::json!({"entry": entry_id, "error": format!("unreadable: {reason}")})
}
