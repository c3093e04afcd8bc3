//! Keeps every scheduled checklist's next slot and every rotation's next
//! handoff and shift reminder in the timer set, and finds a slot that was missed while opsbot
//! was down. The timer worker does the
//! rest: a slot's timer starts its run (or logs it skipped) and sets the
//! next one. Every replica does this; timers are identical, so they stay
//! one, and a slot's commit refuses to run it twice.

use crate::engine::Engine;
use chrono::{DateTime, Utc};
use opsbot_handlers::oncall::plan;
use opsbot_handlers::Timer;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the schedule is checked again (the chain of slot timers
/// normally carries itself; this mends it after Redis lost data).
const RECHECK: Duration = Duration::from_secs(300);

pub async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = ensure(&engine).await {
            tracing::warn!(error = %e, "cannot check the checklists' schedule; will retry");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// Compares each rotation's shifts of the next weeks with the plan stored
/// last, and tells the members whose shifts a runbook change moved. The
/// plan also moves on as time passes, which moves nobody. Of several
/// replicas, the one whose replace wins tells; the others see no change.
/// A crash between the replace and the DMs loses the DMs, not the plan.
async fn tell_whom_a_new_runbook_moves(engine: &Engine, now: DateTime<Utc>) -> crate::store::StoreResult<()> {
    let runbook = &engine.runbook;
    for rotation in &runbook.oncall.rotations {
        let new = plan::plan(rotation, runbook.timezone, now);
        let json = serde_json::to_string(&new).map_err(|e| crate::store::StoreError::Corrupt {
            key: format!("the plan of {}", rotation.role),
            reason: e.to_string(),
        })?;
        let stored = engine.store.subjects.rotation_plan(&rotation.role).await?;
        if stored.as_deref() == Some(json.as_str()) {
            continue;
        }
        // A plan this version cannot read is replaced, telling nobody.
        let old: Vec<plan::Planned> = stored.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        let name = runbook.role(&rotation.role).map_or(rotation.role.as_str(), |r| r.name.as_str());
        let moved = plan::moved(name, &old, &new, now);
        if engine.store.subjects.replace_rotation_plan(&rotation.role, stored.as_deref(), &json).await?
            && !moved.is_empty()
        {
            tracing::info!(role = %rotation.role, told = moved.len(), "the runbook moved on-call shifts; telling whom");
            engine.store.outbox.enqueue(&moved).await?;
        }
    }
    Ok(())
}

/// Sets each scheduled checklist's next slot, and its latest past slot when
/// no run (or skip) was recorded for it.
pub async fn ensure(engine: &Engine) -> crate::store::StoreResult<()> {
    let now = engine.clock.now();
    // Each rotation's next handoff and reminder; each sets the one after.
    for timer in opsbot_handlers::oncall::handoff::next_timers(&engine.runbook, now) {
        engine.store.timers.set(&timer).await?;
    }
    tell_whom_a_new_runbook_moves(engine, now).await?;
    for checklist in &engine.runbook.checklists {
        let Some(schedule) = &checklist.schedule else { continue };
        if let Some(next) = schedule.next_after(now) {
            engine.store.timers.set(&Timer::slot(&checklist.id, next)).await?;
        }
        // A missed slot is worth a timer while the core would still run it
        // late or log it as skipped (`schedule::slot_decision`).
        let worth_handling = |slot| opsbot_handlers::schedule::slot_decision(checklist, slot, now).is_some();
        if let Some(latest) = schedule.latest_at_or_before(now).filter(|l| worth_handling(*l)) {
            let handled = engine.store.subjects.last_handled_slot(&checklist.id).await?;
            if handled.is_none_or(|h| h < latest) {
                engine.store.timers.set(&Timer::slot(&checklist.id, latest)).await?;
            }
        }
    }
    Ok(())
}
