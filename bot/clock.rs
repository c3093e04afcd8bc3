//! Time as an injected dependency: production reads the system clock, tests
//! move a [`TestClock`] by hand, and the sandbox runs an [`OffsetClock`], real
//! time that its user can push ahead.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Moves the clock forward, where it can be moved (tests, the
    /// sandbox's clock control); the system clock cannot, and says so.
    fn advance(&self, _by: TimeDelta) -> bool {
        false
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new(start: DateTime<Utc>) -> TestClock {
        TestClock(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn advance(&self, by: TimeDelta) -> bool {
        TestClock::advance(self, by);
        true
    }
}

/// Real time plus an offset that only grows: the sandbox's clock, so a
/// user can jump ahead to watch escalations while time still passes.
#[derive(Debug, Default)]
pub struct OffsetClock(Mutex<TimeDelta>);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn advance(&self, by: TimeDelta) -> bool {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
        true
    }
}
