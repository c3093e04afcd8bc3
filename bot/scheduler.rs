//! Keeps every scheduled routine's next slot in the timer set, and finds a
//! slot that was missed while opsbot was down. The timer worker does the
//! rest: a slot's timer starts its run (or logs it skipped) and sets the
//! next one. Every replica does this; timers are identical, so they stay
//! one, and a slot's commit refuses to run it twice.

use crate::app::AppState;
use opsbot_handlers::routine;
use opsbot_handlers::schedule::Schedule;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the schedule is checked again (the chain of slot timers
/// normally carries itself; this mends it after Redis lost data).
const RECHECK: Duration = Duration::from_secs(300);

pub async fn run(app: Arc<AppState>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = ensure(&app).await {
            tracing::warn!(error = %e, "cannot check the routines' schedule; will retry");
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

/// Sets each scheduled routine's next slot, and its latest past slot when
/// no run (or skip) was recorded for it.
pub async fn ensure(app: &AppState) -> crate::store::StoreResult<()> {
    let now = app.clock.now();
    for checklist in &app.runbook.checklists {
        let Some(cron) = checklist.schedule.as_deref() else { continue };
        let Ok(schedule) = Schedule::new(cron, &app.runbook.timezone) else { continue };
        if let Some(next) = schedule.next_after(now) {
            app.store.set_timer(&routine::slot_timer(&checklist.id, next)).await?;
        }
        // A slot missed within its duration is run late; within the hour
        // after that, logged as skipped; older ones are history, not news.
        let horizon = checklist.duration.unwrap_or_default() + chrono::TimeDelta::hours(1);
        if let Some(latest) = schedule.latest_at_or_before(now).filter(|l| now - *l < horizon) {
            let handled = app.store.last_handled_slot(&checklist.id).await?;
            if handled.is_none_or(|h| h < latest) {
                app.store.set_timer(&routine::slot_timer(&checklist.id, latest)).await?;
            }
        }
    }
    Ok(())
}
