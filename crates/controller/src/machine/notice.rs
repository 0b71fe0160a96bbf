//! What operators should hear about: the machine says it with
//! [`Effect::Notify`](super::Effect::Notify); the service logs it and sends
//! it to the notifier (email, webhooks), which decides what is news.

use autosync_model::{RunId, RunRecord, RunStatus};
use chrono::{DateTime, Utc};

/// What a failed MA's notice says, wherever it is shown (the notification,
/// the published `notice` event).
pub fn ma_failed_message(ma: &str, profile: &str, attempts: u32, status: RunStatus) -> String {
    format!(
        "`{profile}` on `{ma}` was retried {attempts} times and ended {status} each time; the controller keeps retrying, the delay growing up to its max_backoff, and the MA recovers by itself when a run succeeds"
    )
}

/// What a failed run's notice says (the published `notice` event; the
/// notification shows the whole run): the run, how it ended and why.
pub fn run_failed_message(run: &RunRecord) -> String {
    let errors: u64 = run.steps.iter().map(|s| s.errors).sum();
    let why = if run.status.is_stopped() {
        super::runs::run_error(run)
            .map(|e| format!(" at {e}"))
            .unwrap_or_default()
    } else if errors > 0 {
        format!(
            " with {errors} per-object error(s) (`autosync history {}` lists them)",
            run.id
        )
    } else {
        String::new()
    };
    format!(
        "run {} of `{}` on `{}` ended {}{why}",
        run.id, run.profile, run.ma, run.status
    )
}

/// What a recovery's notice says.
pub fn recovered_message(
    ma: &str,
    profile: &str,
    run_id: RunId,
    status: RunStatus,
    failing_since: DateTime<Utc>,
) -> String {
    format!(
        "`{profile}` on `{ma}` recovered: run {run_id} ended {status}, and no threshold stop waits on `{ma}` (its runs failed since {})",
        failing_since.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// What a trigger's error says without what its notice names already:
/// a trigger's error reads `trigger <name> on MA `<ma>` failed: <why>`
/// (`autosync_triggers::TriggerError`), and the notice names the trigger
/// and the MA itself. A message of another shape is kept whole.
pub fn trigger_error_reason(ma: &str, trigger: &str, message: &str) -> String {
    match message.strip_prefix(&format!("trigger {trigger} on MA `{ma}` failed: ")) {
        Some(why) if !why.trim().is_empty() => why.to_owned(),
        _ => message.to_owned(),
    }
}

/// Something an operator should hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A run ended, the controller's or not, in a status that is news (not
    /// one of the notifications' `ignore_statuses`).
    RunFailed(RunRecord),
    /// A run of a profile whose runs failed ended well (in an ignored
    /// status), and no threshold stop waits on its MA: the MA is back.
    Recovered {
        ma: String,
        profile: String,
        run_id: RunId,
        status: RunStatus,
        /// When the profile's first failed run (since the last recovery)
        /// was seen.
        failing_since: DateTime<Utc>,
    },
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

/// A message of several lines (a refusal with its diagnostics) as one log
/// line: its lines trimmed and joined with "; " (a space after a line
/// that ends with a colon).
pub fn log_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for line in message.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod log_line_tests {
    #[test]
    fn a_refusal_of_several_lines_should_log_as_one() {
        let m = "reload refused (kept):\nautosync.toml:3:1: invalid TOML\n  help: truncated?\n";
        assert_eq!(
            super::log_line(m),
            "reload refused (kept): autosync.toml:3:1: invalid TOML; help: truncated?"
        );
        assert_eq!(super::log_line("plain"), "plain");
    }
}
