//! Timers: a sorted set by due time. Setting one twice keeps one; reading
//! due ones does not take them (the commit that acts on one does).

use super::{Backend, StoreResult};
use opsbot_handlers::Timer;

#[derive(Clone)]
pub struct TimerStore {
    pub(super) backend: Backend,
}

impl TimerStore {
    /// Timers due at `now`, oldest first, as stored (the raw member is what
    /// a commit consumes). Reading does not take them: the commit does.
    pub async fn due(&self, now: chrono::DateTime<chrono::Utc>, limit: usize) -> StoreResult<Vec<(String, Timer)>> {
        dispatch!(self.due_timers(now, limit))
    }

    /// Sets a timer unless it is already set (the same timer from several
    /// replicas stays one).
    pub async fn set(&self, timer: &Timer) -> StoreResult<()> {
        dispatch!(self.set_timer(timer))
    }

    /// How many timers are set, for tests and metrics.
    pub async fn count(&self) -> StoreResult<u64> {
        dispatch!(self.timer_count())
    }
}
