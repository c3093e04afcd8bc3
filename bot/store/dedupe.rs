//! What Slack sent that was already taken: event ids, so a redelivered
//! event takes effect once, and Socket Mode envelope ids with the answer
//! each was acknowledged with, so an envelope Slack sends again (its
//! acknowledgement was lost with a socket) is answered the same way and
//! acted on once, whichever replica it reaches.

use super::{Backend, StoreResult};
use std::time::Duration;

#[derive(Clone)]
pub struct DedupeStore {
    pub(super) backend: Backend,
}

/// What a replica that receives a Socket Mode envelope may do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeClaim {
    /// Nobody has it: this replica handles it.
    First,
    /// Being handled (here or on another replica) and not answered yet.
    Busy,
    /// Handled: acknowledge it again with this answer (JSON).
    Answered(String),
}

impl DedupeStore {
    /// Slack retries events it thinks we missed; true only the first time an
    /// event id is seen within `ttl`.
    pub async fn first_sighting(&self, event_id: &str, ttl: Duration) -> StoreResult<bool> {
        dispatch!(self.first_sighting(event_id, ttl))
    }

    /// Takes an envelope for handling, for at most `ttl` (then a
    /// redelivery may take it again, should this replica have died).
    pub async fn claim_envelope(&self, envelope_id: &str, ttl: Duration) -> StoreResult<EnvelopeClaim> {
        dispatch!(self.claim_envelope(envelope_id, ttl))
    }

    /// The answer a handled envelope was acknowledged with, if it is handled.
    pub async fn envelope_answer(&self, envelope_id: &str) -> StoreResult<Option<String>> {
        dispatch!(self.envelope_answer(envelope_id))
    }

    /// Records a handled envelope's answer (non-empty JSON) for `ttl`.
    pub async fn answer_envelope(&self, envelope_id: &str, answer: &str, ttl: Duration) -> StoreResult<()> {
        dispatch!(self.answer_envelope(envelope_id, answer, ttl))
    }

    /// Gives a claimed envelope up unhandled, so Slack's next delivery of
    /// it is handled at once.
    pub async fn release_envelope(&self, envelope_id: &str) -> StoreResult<()> {
        dispatch!(self.release_envelope(envelope_id))
    }
}
