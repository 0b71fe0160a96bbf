//! What operators should hear about: the machine says it with
//! [`Effect::Notify`](super::Effect::Notify); the service logs it and sends
//! it to the notifier (email, webhooks), which decides what is news.

use autosync_model::{RunId, RunRecord, RunStatus};

/// What a failed MA's notice says, wherever it is shown (the notification,
/// the published `notice` event).
pub fn ma_failed_message(ma: &str, profile: &str, attempts: u32, status: RunStatus) -> String {
    format!(
        "`{profile}` on `{ma}` was retried {attempts} times and ended {status} each time; the controller keeps retrying, the delay growing up to its max_backoff, and the MA recovers by itself when a run succeeds"
    )
}

/// Something an operator should hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A run ended, the controller's or not (the notifier decides, by
    /// status, whether it is news).
    RunEnded(RunRecord),
    /// Retries are used up: the MA is failed.
    MaFailed {
        ma: String,
        profile: String,
        attempts: u32,
        status: RunStatus,
    },
    /// An import went over a staging threshold.
    ThresholdExceeded {
        ma: String,
        run_id: RunId,
        exceeded: Vec<String>,
    },
    /// A trigger failed.
    TriggerError {
        ma: String,
        trigger: String,
        message: String,
    },
    /// The cycle was stopped at the oscillation limit.
    Oscillation { ma: String, detail: String },
    /// The rules changed since the MA's last full sync.
    FullSyncNeeded { ma: String, because: String },
    /// A configuration reload was refused.
    ReloadRejected { message: String },
    /// A controller hook failed (its safe default was used).
    HookError { ma: String, message: String },
}
