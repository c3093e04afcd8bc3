//! This replica's heartbeat: it tells the other replicas, through the store,
//! that it is alive, every `heartbeat_every` for `heartbeat_lasts`, so that
//! when it dies what it holds is taken over within seconds rather than
//! after the outbox's long idle window; and that it left, when it stops
//! gracefully, so what it still holds is taken over at once.
//!
//! It beats on a task of its own, so a replica busy with slow deliveries
//! keeps its work: only a replica that cannot reach the store for longer
//! than `heartbeat_lasts` (dead, frozen, or cut off) loses it. What it
//! knows of its own beats ([`Liveness`]) tells the outbox when that may
//! have happened, so a replica that wakes from a freeze does not post what
//! another one took over meanwhile.

use crate::store::ReplicaStore;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// This replica's own heartbeat as the workers see it: until when the
/// others take it for alive, and how many times it lapsed and came back.
#[derive(Debug, Default)]
pub struct Liveness {
    state: Mutex<LivenessState>,
}

#[derive(Debug, Default)]
struct LivenessState {
    alive_until: Option<Instant>,
    lapses: u64,
}

impl Liveness {
    /// A beat sent at `sent` was recorded: Redis counts `lasts` from when it
    /// ran the beat, no sooner than `sent`, so until `sent + lasts` nobody
    /// takes over what this replica holds.
    pub fn recorded(&self, sent: Instant, lasts: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.alive_until.is_some_and(|until| until <= sent) {
            state.lapses += 1;
        }
        state.alive_until = Some(sent + lasts);
    }

    /// Whether the last recorded beat still stands: while it does, what
    /// this replica holds is its own. Not before the first beat.
    pub fn alive(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.alive_until.is_some_and(|until| Instant::now() < until)
    }

    /// How many times the heartbeat lapsed and was recorded again: what was
    /// held across a lapse may be another replica's now.
    pub fn lapses(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).lapses
    }
}

/// How long leaving may take: past it, the heartbeat lapses by itself.
const LEAVE_WAIT: Duration = Duration::from_secs(2);

/// One beat, logged when it fails: the workers must not wait on it.
pub async fn beat(replicas: &ReplicaStore, replica: &str, lasts: Duration, liveness: &Liveness) -> bool {
    let sent = Instant::now();
    match replicas.beat(replica, lasts).await {
        Ok(()) => {
            liveness.recorded(sent, lasts);
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "heartbeat not recorded");
            false
        }
    }
}

/// Beats every `every` until `stop`; a run of failures is logged once
/// when it has lasted as long as a heartbeat, since from then on other
/// replicas may take over what this one holds.
pub async fn run(
    replicas: ReplicaStore,
    replica: String,
    (every, lasts): (Duration, Duration),
    liveness: std::sync::Arc<Liveness>,
    stop: CancellationToken,
) {
    let mut last_recorded = tokio::time::Instant::now();
    let mut warned = false;
    loop {
        if beat(&replicas, &replica, lasts, &liveness).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_recorded_after_the_last_one_ran_out_counts_a_lapse() {
        let liveness = Liveness::default();
        assert!(!liveness.alive(), "not before the first beat");
        let (now, lasts) = (Instant::now(), Duration::from_secs(10));
        let ago = |secs| now.checked_sub(Duration::from_secs(secs)).expect("the machine is up for a minute");
        liveness.recorded(ago(30), lasts);
        assert!(!liveness.alive(), "a beat sent 30 s ago stood for 10 s: the others may take over now");
        liveness.recorded(ago(25), lasts);
        assert_eq!(liveness.lapses(), 0, "a beat sent while the last one stood is no lapse");
        liveness.recorded(now, lasts);
        assert_eq!((liveness.alive(), liveness.lapses()), (true, 1), "back after a lapse");
    }
}
