//! Slack event ids already seen, so a redelivered event takes effect once.

use super::{Backend, StoreResult};
use std::time::Duration;

#[derive(Clone)]
pub struct DedupeStore {
    pub(super) backend: Backend,
}

impl DedupeStore {
    /// Slack retries events it thinks we missed; true only the first time an
    /// event id is seen within `ttl`.
    pub async fn first_sighting(&self, event_id: &str, ttl: Duration) -> StoreResult<bool> {
        dispatch!(self.first_sighting(event_id, ttl))
    }
}
