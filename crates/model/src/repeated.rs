//! A failure retried every second (a lease's heartbeat, the controller's
//! state written to a full disk) must not write a log line every second
//! for as long as it lasts: a day of a full disk was 170,000 lines, into
//! the journal that may share the disk. [`Repeated`] says which failures to
//! log: the first, then one a minute with how many there were, and, once
//! the thing works again, that it recovered and after how many.

use std::time::{Duration, Instant};

/// How often a failure that goes on is logged again.
pub const LOG_AGAIN_EVERY: Duration = Duration::from_secs(60);

/// The failures of one retried thing, since it last worked.
#[derive(Debug, Default)]
pub struct Repeated {
    /// Failures since it last worked.
    failures: u64,
    /// When the first of them came.
    since: Option<Instant>,
    /// When one was last logged.
    logged: Option<Instant>,
}

/// What to say of a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Say {
    /// Log it: the first failure (`failures` 1), or one more after
    /// [`LOG_AGAIN_EVERY`] (`failures` so far, the first `for_` ago).
    Log { failures: u64, for_: Duration },
    /// Say nothing: one was logged less than [`LOG_AGAIN_EVERY`] ago.
    Quiet,
}

impl Repeated {
    /// One more failure, at `now`.
    pub fn failed(&mut self, now: Instant) -> Say {
        self.failures += 1;
        let since = *self.since.get_or_insert(now);
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_AGAIN_EVERY);
        if !due {
            return Say::Quiet;
        }
        self.logged = Some(now);
        Say::Log {
            failures: self.failures,
            for_: now.saturating_duration_since(since),
        }
    }

    /// It worked, at `now`: `Some((failures, for how long))` when it had
    /// failed since it last worked (to log that it recovered).
    pub fn worked(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let failures = std::mem::take(&mut self.failures);
        let since = self.since.take();
        self.logged = None;
        (failures > 0).then(|| {
            (
                failures,
                since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_every_second_should_be_logged_once_a_minute_and_its_end_once() {
        let start = Instant::now();
        let mut r = Repeated::default();
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(
            r.failed(at(0)),
            Say::Log {
                failures: 1,
                for_: Duration::ZERO
            }
        );
        let logged: Vec<u64> = (1..=180)
            .filter(|&s| matches!(r.failed(at(s)), Say::Log { .. }))
            .collect();
        assert_eq!(logged, vec![60, 120, 180]);
        assert_eq!(r.worked(at(181)), Some((181, Duration::from_secs(181))));
        assert_eq!(r.worked(at(182)), None);
        // A new failure after it worked is logged at once.
        assert!(matches!(r.failed(at(183)), Say::Log { failures: 1, .. }));
    }
}
