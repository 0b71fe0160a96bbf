//! The notifier's task: the executor's notices become notifications
//! (email, webhooks) through `autosync-notify`, with repeats suppressed and
//! reminders; the suppression state is kept in the store (meta
//! `controller.notifications`) so a restart does not re-send or forget.

use crate::executor::Notice;
use autosync_model::{RunRecord, RunStatus};
use autosync_notify::{Event, Notifier, NotifyConfig, ObjectErrorSummary, SuppressionState};
use autosync_store::Store;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The meta key of the notifier's suppression state.
pub const NOTIFY_STATE_KEY: &str = "controller.notifications";

/// Per-object errors attached to a failed run's notification.
const FIRST_ERRORS: usize = 10;

fn load_state(store: &dyn Store) -> SuppressionState {
    let text = store.read().and_then(|mut r| r.meta(NOTIFY_STATE_KEY));
    match text {
        Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(
                "the notifications' suppression state cannot be decoded ({e}); starting afresh"
            );
            SuppressionState::default()
        }),
        Ok(None) => SuppressionState::default(),
        Err(e) => {
            tracing::warn!("cannot read the notifications' suppression state: {e}");
            SuppressionState::default()
        }
    }
}

fn save_state(store: &dyn Store, state: &SuppressionState) {
    let result = serde_json::to_string(state)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            let mut txn = store.begin().map_err(|e| e.to_string())?;
            txn.set_meta(NOTIFY_STATE_KEY, Some(&text))
                .map_err(|e| e.to_string())?;
            txn.commit().map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        tracing::warn!("cannot save the notifications' suppression state: {e}");
    }
}

/// Starts the notifier's task; notices sent to the returned channel are
/// handled in order. Without a configuration, notices are only logged
/// (the executor logs them already). A reload's [`Notice::Reconfigure`]
/// switches the settings, keeping the suppression state.
pub(crate) fn spawn(
    config: Option<NotifyConfig>,
    store: Arc<dyn Store>,
) -> (mpsc::UnboundedSender<Notice>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Notice>();
    let handle = tokio::spawn(async move {
        let mut notifier = config.map(|c| Notifier::new(c, load_state(store.as_ref())));
        while let Some(notice) = rx.recv().await {
            if let Notice::Reconfigure(config) = notice {
                let state = match &notifier {
                    Some(n) => n.state().clone(),
                    None => load_state(store.as_ref()),
                };
                notifier = config.map(|c| Notifier::new(c, state));
                continue;
            }
            let Some(notifier) = notifier.as_mut() else {
                continue;
            };
            let now = chrono::Utc::now();
            let delivery = match notice {
                Notice::RunEnded(run) => {
                    let errors: Vec<ObjectErrorSummary> = if run.steps.iter().any(|s| s.errors > 0)
                    {
                        store
                            .read()
                            .and_then(|mut r| r.run_errors(run.id, FIRST_ERRORS))
                            .map(|v| v.iter().map(ObjectErrorSummary::from).collect())
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    notifier.run_finished(run, errors, now).await
                }
                other => {
                    let Some(event) = event_of(other) else {
                        continue;
                    };
                    notifier.notify(event, now).await
                }
            };
            for failure in delivery.failures() {
                if let Err(e) = &failure.result {
                    tracing::warn!(channel = ?failure.channel, "a notification was not delivered: {e}");
                }
            }
            save_state(store.as_ref(), notifier.state());
        }
    });
    (tx, handle)
}

/// The notification of a notice (runs are handled apart).
fn event_of(notice: Notice) -> Option<Event> {
    Some(match notice {
        Notice::RunEnded(_) => return None,
        Notice::MaFailed {
            ma,
            profile,
            attempts,
            status,
        } => Event::MaFailed {
            message: format!(
                "`{profile}` on `{ma}` ended {status} {attempts} times in a row; the controller keeps retrying at the longest backoff, and the MA recovers by itself when a run succeeds"
            ),
            ma,
            profile,
            attempts,
            last_status: status,
        },
        Notice::ThresholdExceeded {
            ma,
            run_id,
            exceeded,
        } => Event::ThresholdExceeded {
            ma,
            run_id,
            what: exceeded.join(", "),
        },
        Notice::TriggerError {
            ma,
            trigger,
            message,
        } => Event::TriggerError {
            ma,
            trigger,
            message,
        },
        Notice::Oscillation { ma, detail } => Event::Oscillation { ma, detail },
        Notice::FullSyncNeeded { ma, because } => Event::FullSyncNeeded { ma, because },
        Notice::ReloadRejected { message } => Event::ConfigReloadRejected { message },
        Notice::HookError { ma, message } => Event::TriggerError {
            ma,
            trigger: "controller hook".to_owned(),
            message,
        },
        Notice::Reconfigure(_) => return None,
    })
}

/// Logs the end of a run the service started. A run that stopped is a
/// WARN with why (the first step's error text; see [`stop_reason`]),
/// except an operator's cancel or a graceful stop (`stopped-user-requested`:
/// INFO, it was asked for); one that completed with per-object errors is a
/// WARN with their count and where to read them; any other end is INFO.
pub(crate) fn log_run_ended(record: &RunRecord) {
    let errors: u64 = record.steps.iter().map(|s| s.errors).sum();
    if record.status == RunStatus::StoppedUserRequested {
        tracing::info!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status, "run ended: {}", stop_reason(record)
        );
    } else if record.status.is_stopped() {
        tracing::warn!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status, "run stopped: {}", stop_reason(record)
        );
    } else if matches!(
        record.status,
        RunStatus::CompletedImportErrors
            | RunStatus::CompletedSyncErrors
            | RunStatus::CompletedExportErrors
    ) {
        tracing::warn!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status,
            "run ended with {errors} per-object error(s) (`autosync history {}` lists them)",
            record.id
        );
    } else {
        tracing::info!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status, "run ended"
        );
    }
}

/// Why a run stopped, in words: its status, then the error text of the
/// step that stopped it (else of the first step that has one), else where
/// to look.
pub(crate) fn stop_reason(record: &RunRecord) -> String {
    let stopping = record
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.status.is_stopped() && s.message.is_some())
        .or_else(|| {
            record
                .steps
                .iter()
                .enumerate()
                .find(|(_, s)| s.message.is_some())
        });
    match stopping {
        Some((i, step)) => format!(
            "{} at step {} {}: {}",
            record.status,
            i + 1,
            step.step_type,
            step.message.as_deref().unwrap_or_default()
        ),
        None => format!(
            "{} (no error text recorded; `autosync history {}` shows the run)",
            record.status, record.id
        ),
    }
}
