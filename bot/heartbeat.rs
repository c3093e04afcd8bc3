//! This replica's heartbeat: it tells the other replicas, through the store,
//! that it is alive, every `heartbeat_every` for `heartbeat_lasts`, so that
//! when it dies what it holds is taken over within seconds rather than
//! after the outbox's long idle window; and that it left, when it stops
//! gracefully, so what it still holds is taken over at once.
//!
//! It beats on a task of its own, so a replica busy with slow deliveries
//! keeps its work: only a replica that cannot reach the store for longer
//! than `heartbeat_lasts` (dead, frozen, or cut off) loses it.

use crate::store::ReplicaStore;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long leaving may take: past it, the heartbeat lapses by itself.
const LEAVE_WAIT: Duration = Duration::from_secs(2);

/// One beat, logged when it fails: the workers must not wait on it.
pub async fn beat(replicas: &ReplicaStore, replica: &str, lasts: Duration) -> bool {
    match replicas.beat(replica, lasts).await {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "heartbeat not recorded");
            false
        }
    }
}

/// Beats every `every` until `stop`; a run of failures is logged once
/// when it has lasted as long as a heartbeat, since from then on other
/// replicas may take over what this one holds.
pub async fn run(replicas: ReplicaStore, replica: String, every: Duration, lasts: Duration, stop: CancellationToken) {
    let mut last_recorded = tokio::time::Instant::now();
    let mut warned = false;
    loop {
        if beat(&replicas, &replica, lasts).await {
            if warned {
                tracing::info!(%replica, "heartbeat recorded again");
            }
            last_recorded = tokio::time::Instant::now();
            warned = false;
        } else if !warned && last_recorded.elapsed() >= lasts {
            tracing::warn!(%replica, ?lasts, "no heartbeat recorded for a while: other replicas may take over what this one holds");
            warned = true;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Says this replica left, so the others take over what it still holds at
/// once; bounded, since the process is on its way out.
pub async fn leave(replicas: &ReplicaStore, replica: &str) {
    match tokio::time::timeout(LEAVE_WAIT, replicas.leave(replica)).await {
        Ok(Ok(())) => tracing::info!(%replica, "left: other replicas take over what this one still holds"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not say this replica left; its heartbeat will lapse by itself"),
        Err(_) => tracing::warn!("saying this replica left took too long; its heartbeat will lapse by itself"),
    }
}
