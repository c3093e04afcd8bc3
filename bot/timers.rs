//! The timer worker: every tick, hands due timers (escalations, reminders,
//! schedule slots) to the engine. Timers live in Redis; each is consumed by the commit that
//! acts on it, so a tick that crashes loses none and replicas act once.

use crate::engine::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Timers handled per tick; more wait for the next one.
const BATCH: usize = 200;

pub async fn run(engine: Arc<Engine>, tick: Duration, shutdown: CancellationToken) {
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        match tick_once(&engine).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(60) {
                    tracing::warn!(error = %e, "timers cannot reach Redis; retrying");
                }
            }
        }
    }
}

async fn tick_once(engine: &Engine) -> crate::store::StoreResult<()> {
    let due = engine.store.timers.due(engine.clock.now(), BATCH).await?;
    for (stored, timer) in &due {
        engine.timer(stored, timer).await?;
    }
    Ok(())
}
