//! The notifier's task: the executor's notices become notifications
//! (email, webhooks) through `autosync-notify`, with repeats suppressed and
//! reminders; the suppression state is kept in the store (meta
//! `controller.notifications`) so a restart does not re-send or forget.
//! Every store call runs on a blocking thread: a store held by a long sync
//! or another process never stalls the async workers the API answers on.

use autosync_controller::machine::{Notice, ma_failed_message};
use autosync_notify::{Event, Notifier, NotifyConfig, ObjectErrorSummary, SuppressionState};
use autosync_store::Store;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The meta key of the notifier's suppression state.
pub const NOTIFY_STATE_KEY: &str = "controller.notifications";

/// What the notifier's task is sent.
pub(crate) enum NotifierMessage {
    Notice(Notice),
    /// A reload was accepted: notify through these settings from now on
    /// (none: stop notifying), keeping what was already sent.
    Reconfigure(Option<NotifyConfig>),
}

/// Per-object errors attached to a failed run's notification.
const FIRST_ERRORS: usize = 10;

/// Runs a store call on a blocking thread; `fallback` if that thread died.
async fn off_loop<T: Send + 'static>(
    store: &Arc<dyn Store>,
    fallback: T,
    call: impl FnOnce(&dyn Store) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .unwrap_or(fallback)
}

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
/// (the machine logs them already). A reload's
/// [`NotifierMessage::Reconfigure`] switches the settings, keeping the
/// suppression state.
pub(crate) fn spawn(
    config: Option<NotifyConfig>,
    store: Arc<dyn Store>,
) -> (
    mpsc::UnboundedSender<NotifierMessage>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<NotifierMessage>();
    let handle = tokio::spawn(async move {
        let mut notifier = match config {
            Some(c) => Some(Notifier::new(
                c,
                off_loop(&store, SuppressionState::default(), load_state).await,
            )),
            None => None,
        };
        while let Some(message) = rx.recv().await {
            let notice = match message {
                NotifierMessage::Notice(notice) => notice,
                NotifierMessage::Reconfigure(config) => {
                    let state = match &notifier {
                        Some(n) => n.state().clone(),
                        None => off_loop(&store, SuppressionState::default(), load_state).await,
                    };
                    notifier = config.map(|c| Notifier::new(c, state));
                    continue;
                }
            };
            let Some(notifier) = notifier.as_mut() else {
                continue;
            };
            let now = chrono::Utc::now();
            let delivery = match notice {
                Notice::RunEnded(run) => {
                    let errors: Vec<ObjectErrorSummary> = if run.steps.iter().any(|s| s.errors > 0)
                    {
                        let id = run.id;
                        off_loop(&store, Vec::new(), move |store| {
                            store
                                .read()
                                .and_then(|mut r| r.run_errors(id, FIRST_ERRORS))
                                .map(|v| v.iter().map(ObjectErrorSummary::from).collect())
                                .unwrap_or_default()
                        })
                        .await
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
            let state = notifier.state().clone();
            off_loop(&store, (), move |store| save_state(store, &state)).await;
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
            message: ma_failed_message(&ma, &profile, attempts, status),
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
    })
}
