//! Retries: a run that ended in a retryable status runs again after a
//! backoff (`RetryPolicy`), and once the attempts are used up the MA is
//! failed (still retried at the capped backoff, so it recovers by itself);
//! a run that completed with per-object errors runs again without holding
//! the MA back; a request that found its MA busy (a run started outside
//! the controller) or the engine unavailable waits a moment. A trigger
//! that fires while the source was unavailable retries at once.

use super::runs::run_error;
use super::state::Failed;
use super::{HOLD_BACK, Machine, Notice, after};
use crate::queue::QueuedRequest;
use crate::request::Request;
use crate::retry::{RetryDecision, RetryPolicy};
use autosync_model::{RunId, RunReason, RunRecord, RunStatus};
use chrono::{DateTime, Utc};

/// Why an MA is held back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum HoldWhy {
    /// A retry after a run that ended in a retryable status.
    Retry {
        attempt: u32,
        max_attempts: u32,
        profile: String,
        status: RunStatus,
        run_id: RunId,
        /// The error of the step that stopped the run, when it has one.
        error: Option<String>,
    },
    /// A run the controller did not start holds the MA.
    Busy,
    /// The run could not start (the engine said why).
    Unavailable(String),
}

/// An MA held back until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Hold {
    pub(super) until: DateTime<Utc>,
    pub(super) why: HoldWhy,
}

impl Hold {
    /// What the status says a held MA waits for.
    pub(super) fn describe(&self) -> String {
        let next = self.until.format("%Y-%m-%d %H:%M:%S UTC");
        match &self.why {
            HoldWhy::Retry {
                attempt,
                max_attempts,
                profile,
                status,
                run_id,
                error,
            } => {
                let error = error
                    .as_deref()
                    .map(|e| format!(" at {e}"))
                    .unwrap_or_default();
                format!(
                    "retry {attempt} of {max_attempts} after `{profile}` ended {status} (run {run_id}){error}; next try at {next}"
                )
            }
            HoldWhy::Busy => format!(
                "the MA is running a profile the controller did not start; next try at {next}"
            ),
            HoldWhy::Unavailable(message) => {
                format!("the run could not start ({message}); next try at {next}")
            }
        }
    }

    /// The source was unavailable: a trigger that fires means it may be
    /// back, so the retry need not wait.
    fn source_unavailable(&self) -> bool {
        matches!(
            self.why,
            HoldWhy::Retry {
                status: RunStatus::StoppedConnectivity | RunStatus::StoppedServerDown,
                ..
            }
        )
    }
}

/// Retries of a run that completed with per-object errors.
#[derive(Clone, Debug)]
pub(super) struct ObjectRetry {
    /// Retries made so far (this one included, once due).
    attempt: u32,
    /// When it is due, and what to queue then; `None` once queued.
    due: Option<(DateTime<Utc>, Request)>,
}

/// Whether a status says the run completed with per-object errors that a
/// later run of the same profile tries again.
fn is_object_errors(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::CompletedSyncErrors | RunStatus::CompletedExportErrors
    )
}

impl Machine {
    /// Queues a request again at the front, its MA held back for a while:
    /// the MA was busy with a run the controller did not start, or the
    /// engine was unavailable. The request is never dropped.
    pub(super) fn hold_back(&mut self, request: QueuedRequest, why: HoldWhy, now: DateTime<Utc>) {
        self.hold_back_for(request, why, HOLD_BACK, 1, now);
    }

    /// [`Self::hold_back`] for `delay`, the `times`-th time in a row: said
    /// at WARN the first time and every tenth, at DEBUG in between (a
    /// full disk is not three lines every few seconds).
    pub(super) fn hold_back_for(
        &mut self,
        request: QueuedRequest,
        why: HoldWhy,
        delay: std::time::Duration,
        times: u32,
        now: DateTime<Utc>,
    ) {
        let what = match &why {
            HoldWhy::Busy => "the MA is running a profile the controller did not start".to_owned(),
            HoldWhy::Unavailable(m) => format!("the run could not start: {m}"),
            HoldWhy::Retry { .. } => "retry".to_owned(),
        };
        if times <= 1 || times.is_multiple_of(10) {
            tracing::warn!(ma = %request.ma, profile = %request.profile, times, "{what}; trying again in {}s", delay.as_secs());
        } else {
            tracing::debug!(ma = %request.ma, profile = %request.profile, times, "{what}; trying again in {}s", delay.as_secs());
        }
        self.held.insert(
            request.ma.clone(),
            Hold {
                until: after(now, delay),
                why,
            },
        );
        let mut again = request.request();
        again.run_immediate = true;
        self.push(vec![again], now);
    }

    /// A trigger (or an operator's queue request) for `ma`: if the MA
    /// waits out the backoff of an unavailable source, it is tried at once.
    pub(super) fn retry_now_if_unavailable(&mut self, ma: &str) {
        if self.held.get(ma).is_some_and(Hold::source_unavailable) {
            tracing::info!(
                ma,
                "a request came while the source was unavailable: retrying at once"
            );
            self.held.remove(ma);
        }
    }

    /// A run ended in a retryable status: run it again after a backoff;
    /// once the attempts are used up the MA is failed (and still retried
    /// at the capped backoff, so it recovers by itself). Any other end
    /// resets the count and clears the failed state.
    pub(super) fn retry(
        &mut self,
        record: &RunRecord,
        request: &QueuedRequest,
        now: DateTime<Utc>,
    ) {
        let Some(policy) = self.config.mas.get(&record.ma).map(|m| m.retry.clone()) else {
            return;
        };
        let ma = record.ma.clone();
        self.retry_object_errors(record, request, &policy, now);
        if is_object_errors(record.status) {
            // The system answered: whatever was transient is over.
            let control = self.control_of(&ma);
            control.attempts = 0;
            control.failed = None;
            return;
        }
        if !policy.retries(record.status) {
            if record.status == RunStatus::StoppedUserRequested {
                return;
            }
            let control = self.control_of(&ma);
            control.attempts = 0;
            if let Some(f) = control.failed.take() {
                tracing::info!(ma = %ma, "recovered: `{}` ended {} after the MA failed ({} attempts)", record.profile, record.status, f.attempts);
            }
            return;
        }
        let previous = self.control_of(&ma).attempts;
        let jitter = self.jitter_unit();
        let decision = policy.decide(previous, jitter);
        let (attempt, delay) = match decision {
            RetryDecision::Retry { attempt, delay } | RetryDecision::Failed { attempt, delay } => {
                (attempt, delay)
            }
        };
        let control = self.control_of(&ma);
        control.attempts = attempt;
        if matches!(decision, RetryDecision::Failed { .. }) && control.failed.is_none() {
            control.failed = Some(Failed {
                profile: record.profile.clone(),
                status: record.status,
                run_id: record.id,
                attempts: attempt - 1,
                since: now,
                error: run_error(record),
            });
            tracing::error!(ma = %ma, profile = %record.profile, status = %record.status, "failed after {} retries: the MA is failed; a running service tries again in {}s, then less and less often, up to every max_backoff (`autosync start` tries at once)", attempt - 1, delay.as_secs());
            self.notify(Notice::MaFailed {
                ma: ma.clone(),
                profile: record.profile.clone(),
                attempts: attempt - 1,
                status: record.status,
            });
        } else {
            tracing::warn!(ma = %ma, profile = %record.profile, status = %record.status, "retry {attempt} in {:.1}s", delay.as_secs_f64());
            if matches!(decision, RetryDecision::Failed { .. }) {
                // Still failed: a repeat of the notice, which the notifier
                // keeps quiet until its reminder, and sends when the first
                // one reached no one.
                self.notify(Notice::MaFailed {
                    ma: ma.clone(),
                    profile: record.profile.clone(),
                    attempts: attempt - 1,
                    status: record.status,
                });
            }
        }
        self.held.insert(
            ma,
            Hold {
                until: after(now, delay),
                why: HoldWhy::Retry {
                    attempt,
                    max_attempts: policy.max_attempts,
                    profile: record.profile.clone(),
                    status: record.status,
                    run_id: record.id,
                    error: run_error(record),
                },
            },
        );
        let mut again = request.request();
        again.run_immediate = true;
        self.push(vec![again], now);
    }

    /// A run that completed with per-object errors (sync or export errors,
    /// when the retry policy lists their status) runs again after the
    /// policy's backoff, without holding the MA back (its other requests go
    /// on): the objects keep their pending import or export, so the run
    /// tries them again. After `max_attempts` the errors are left to the
    /// next change or reconciliation, still listed with their objects. A run
    /// of the profile without them ends the retries.
    fn retry_object_errors(
        &mut self,
        record: &RunRecord,
        request: &QueuedRequest,
        policy: &RetryPolicy,
        now: DateTime<Utc>,
    ) {
        let key = (record.ma.clone(), record.profile.clone());
        if !is_object_errors(record.status) || !policy.retries(record.status) {
            if record.status != RunStatus::StoppedUserRequested {
                self.object_retries.remove(&key);
            }
            return;
        }
        let attempt = self
            .object_retries
            .get(&key)
            .map_or(1, |r| r.attempt.saturating_add(1));
        if attempt > policy.max_attempts {
            tracing::warn!(ma = %record.ma, profile = %record.profile, status = %record.status, "per-object errors after {} retries: left to the next change or reconciliation (the errors stay listed with their objects)", attempt - 1);
            self.object_retries.remove(&key);
            return;
        }
        let jitter = self.jitter_unit();
        let delay = policy.delay(attempt, jitter);
        tracing::info!(ma = %record.ma, profile = %record.profile, status = %record.status, "per-object errors: retry {attempt} in {:.1}s", delay.as_secs_f64());
        let mut again = request.request();
        again.reason = RunReason::Reconciliation {
            because: format!(
                "retry {attempt} of run {} that ended {}",
                record.id, record.status
            ),
        };
        self.object_retries.insert(
            key,
            ObjectRetry {
                attempt,
                due: Some((after(now, delay), again)),
            },
        );
    }

    /// When the next retry of per-object errors is due.
    pub(super) fn next_object_retry(&self) -> Option<DateTime<Utc>> {
        self.object_retries
            .values()
            .filter_map(|r| r.due.as_ref().map(|(at, _)| *at))
            .min()
    }

    /// Queues the retries of per-object errors that are due.
    pub(super) fn release_object_retries(&mut self, now: DateTime<Utc>) {
        let mut due = Vec::new();
        for r in self.object_retries.values_mut() {
            if r.due.as_ref().is_some_and(|(at, _)| *at <= now)
                && let Some((_, request)) = r.due.take()
            {
                due.push(request);
            }
        }
        if !due.is_empty() {
            self.push(due, now);
        }
    }

    /// Forgets the holds and retries of MAs and profiles that no longer
    /// exist (after a reload).
    pub(super) fn forget_retries_of_removed(&mut self) {
        let config = &self.config;
        self.held.retain(|ma, _| config.mas.contains_key(ma));
        self.object_retries.retain(|(ma, profile), _| {
            config
                .mas
                .get(ma)
                .is_some_and(|m| m.info.steps(profile).is_some())
        });
    }

    /// An operator's start: no hold, no failed state, attempts from zero.
    pub(super) fn clear_retries(&mut self, ma: &str) {
        let c = self.control_of(ma);
        c.failed = None;
        c.attempts = 0;
        self.held.remove(ma);
    }
}
