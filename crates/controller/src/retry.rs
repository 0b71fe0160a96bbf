//! Retries of runs that ended in a retryable status: which statuses, how
//! many attempts, and the backoff between them (`backoff × attempt`, ±10 %,
//! capped). Pure: the caller passes the jitter.

use autosync_model::RunStatus;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Statuses retried by default: the connected system or the engine was
/// briefly unavailable, and runs that completed with per-object sync or
/// export errors (their objects are tried again by the next run of the
/// profile; the service does not hold the MA back or mark it failed for
/// them).
pub const DEFAULT_RETRY_STATUSES: [RunStatus; 5] = [
    RunStatus::StoppedDeadlocked,
    RunStatus::StoppedServerDown,
    RunStatus::StoppedConnectivity,
    RunStatus::CompletedSyncErrors,
    RunStatus::CompletedExportErrors,
];

/// How runs that ended in a retryable status are tried again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// The statuses that are retried.
    pub statuses: Vec<RunStatus>,
    /// Attempts (after the first run) before the MA is marked failed. The
    /// failed MA is still tried (the delay growing up to `max_backoff`), so
    /// it recovers by itself when the connected system returns.
    pub max_attempts: u32,
    /// The first delay; attempt *n* waits `backoff × n`.
    pub backoff: Duration,
    /// The longest delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            statuses: DEFAULT_RETRY_STATUSES.to_vec(),
            max_attempts: 5,
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// What to do after a run ended in a retryable status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RetryDecision {
    /// Run the same request again after `delay`; this is attempt `attempt`.
    Retry { attempt: u32, delay: Duration },
    /// The attempts are used up: mark the MA failed (and notify), and keep
    /// trying every `delay` (the capped backoff).
    Failed { attempt: u32, delay: Duration },
}

impl RetryPolicy {
    /// Whether a run that ended with `status` is retried.
    pub fn retries(&self, status: RunStatus) -> bool {
        self.statuses.contains(&status)
    }

    /// The delay before attempt `attempt` (1-based), with `jitter` in
    /// `[-1, 1]` giving ±10 %, capped at `max_backoff`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let base = self.backoff.saturating_mul(attempt.max(1));
        let factor = 1.0 + 0.1 * jitter.clamp(-1.0, 1.0);
        base.mul_f64(factor).min(self.max_backoff)
    }

    /// The decision after the `previous`-th consecutive retryable end
    /// (0 for the first run).
    pub fn decide(&self, previous: u32, jitter: f64) -> RetryDecision {
        let attempt = previous.saturating_add(1);
        let delay = self.delay(attempt, jitter);
        if attempt > self.max_attempts {
            RetryDecision::Failed { attempt, delay }
        } else {
            RetryDecision::Retry { attempt, delay }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_policy_should_retry_the_transient_statuses_and_object_errors() {
        let p = RetryPolicy::default();
        assert!(p.retries(RunStatus::StoppedServerDown));
        assert!(p.retries(RunStatus::StoppedConnectivity));
        assert!(p.retries(RunStatus::StoppedDeadlocked));
        assert!(p.retries(RunStatus::CompletedExportErrors));
        assert!(p.retries(RunStatus::CompletedSyncErrors));
        assert!(!p.retries(RunStatus::CompletedImportErrors));
        assert!(!p.retries(RunStatus::StoppedUserRequested));
    }

    #[test]
    fn delays_should_grow_with_the_attempt_and_stop_at_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(5));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(15));
        assert_eq!(p.delay(1000, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn attempts_past_the_maximum_should_mark_the_ma_failed() {
        let p = RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        };
        assert!(matches!(
            p.decide(0, 0.0),
            RetryDecision::Retry { attempt: 1, .. }
        ));
        assert!(matches!(
            p.decide(1, 0.0),
            RetryDecision::Retry { attempt: 2, .. }
        ));
        assert!(matches!(
            p.decide(2, 0.0),
            RetryDecision::Failed { attempt: 3, .. }
        ));
    }

    proptest! {
        #[test]
        fn jitter_should_stay_within_ten_percent_and_under_the_cap(attempt in 1u32..50, jitter in -5.0f64..5.0) {
            let p = RetryPolicy::default();
            let d = p.delay(attempt, jitter).as_secs_f64();
            let base = (5.0 * f64::from(attempt)).min(f64::MAX);
            prop_assert!(d <= 300.0 + 1e-9);
            prop_assert!(d >= (base * 0.9).min(300.0) - 1e-9);
            prop_assert!(d <= base * 1.1 + 1e-9);
        }
    }
}
