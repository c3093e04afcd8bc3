//! Which replicas are alive: each refreshes a heartbeat every few seconds,
//! and the entries a replica holds (outbox and inbox) are taken over by the
//! others as soon as its heartbeat lapses or it says it is leaving, rather
//! than after the long idle window that is all a replica that never beat
//! (an older version) can be judged by.
//!
//! Heartbeats are times of the store's own clock (Redis's `TIME`), so
//! replicas whose clocks disagree still agree on who is alive.

use super::{Backend, StoreResult};
use std::time::Duration;

/// The replicas' heartbeats; see the module's comment.
#[derive(Clone)]
pub struct ReplicaStore {
    pub(super) backend: Backend,
}

impl ReplicaStore {
    /// `replica` is alive for `lasts` from now; a live replica says so again
    /// well before that runs out.
    pub async fn beat(&self, replica: &str, lasts: Duration) -> StoreResult<()> {
        dispatch!(self.replica_beat(replica, lasts))
    }

    /// `replica` is leaving (it was stopped and has finished what it was
    /// doing): what it still holds may be taken over at once.
    pub async fn leave(&self, replica: &str) -> StoreResult<()> {
        dispatch!(self.replica_leave(replica))
    }

    /// Whether `replica`'s heartbeat is current: `None` when it never beat.
    pub async fn is_alive(&self, replica: &str) -> StoreResult<Option<bool>> {
        dispatch!(self.replica_is_alive(replica))
    }
}
