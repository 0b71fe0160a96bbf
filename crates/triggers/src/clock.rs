//! Wall clocks. Schedules and "time since the last import" are about the wall
//! clock (which can be corrected backwards or forwards), while waiting is done
//! on tokio's monotonic clock. Runners read the wall clock through [`Clock`]
//! so tests can drive it: [`TokioWallClock`] follows tokio's (paused) clock
//! from a chosen start and can be set like an operator correcting the time.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Mutex;

/// The current wall-clock time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that reads `start` at creation and then advances with
/// tokio's clock (so `tokio::time::pause`/`advance` drive it), and that can be
/// moved like a real clock being corrected.
#[derive(Debug)]
pub struct TokioWallClock {
    inner: Mutex<(DateTime<Utc>, tokio::time::Instant)>,
}

impl TokioWallClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        TokioWallClock {
            inner: Mutex::new((start, tokio::time::Instant::now())),
        }
    }

    /// Sets the wall clock to `to` (forwards or backwards), as `date -s` would.
    pub fn set(&self, to: DateTime<Utc>) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *guard = (to, tokio::time::Instant::now());
    }

    /// Moves the wall clock by `delta` (negative: backwards).
    pub fn shift(&self, delta: TimeDelta) {
        let now = self.now();
        self.set(now + delta);
    }
}

impl Clock for TokioWallClock {
    fn now(&self) -> DateTime<Utc> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = tokio::time::Instant::now().saturating_duration_since(guard.1);
        guard.0 + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }
}

/// How long to wait from `now` until `at`, as a tokio duration (zero when
/// `at` is not in the future), capped at `cap` so a runner re-reads the wall
/// clock regularly and follows corrections.
pub fn wait_until(
    now: DateTime<Utc>,
    at: DateTime<Utc>,
    cap: std::time::Duration,
) -> std::time::Duration {
    (at - now).to_std().unwrap_or_default().min(cap)
}
