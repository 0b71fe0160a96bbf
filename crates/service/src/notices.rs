//! The notifier's task: the executor's notices become notifications
//! (email, webhooks) through `autosync-notify`, with repeats suppressed and
//! reminders; the suppression state is kept in the store (meta
//! `controller.notifications`) so a restart does not re-send or forget.
//! Every store call runs on a blocking thread: a store held by a long sync
//! or another process never stalls the async workers the API answers on.

use autosync_controller::machine::{Notice, ma_failed_message, trigger_error_reason};
use autosync_notify::{
    Delivery, Event, Notifier, NotifyConfig, ObjectErrorSummary, Settled, Submission,
    SuppressionState,
};
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
    /// The service stopped by itself: why (`service-stopped`, never
    /// suppressed). Sent after the executor ended, before the stop.
    ServiceStopped(String),
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
/// decided in order, as they come (their time is when they came, a run's
/// when it ended), and queued on every channel without waiting: each
/// channel (the mail, each webhook) sends from its own queue, so a slow
/// one delays only itself. Without a configuration, notices are only
/// logged (the machine logs them already). A reload's
/// [`NotifierMessage::Reconfigure`] switches the settings, keeping the
/// suppression state. When the sender is dropped (the service stops), the
/// task gives the channels [`autosync_notify::STOP_WITHIN`] in all to send
/// what they hold; what is not delivered by then is logged as an error and
/// saved as not sent (the next equal notice goes out); it saves the state
/// and ends.
pub(crate) fn spawn(
    config: Option<NotifyConfig>,
    store: Arc<dyn Store>,
) -> (
    mpsc::UnboundedSender<NotifierMessage>,
    tokio::task::JoinHandle<()>,
) {
    spawn_within(config, store, autosync_notify::STOP_WITHIN)
}

/// [`spawn`], whose stop gives the channels `stop_within`.
fn spawn_within(
    config: Option<NotifyConfig>,
    store: Arc<dyn Store>,
    stop_within: std::time::Duration,
) -> (
    mpsc::UnboundedSender<NotifierMessage>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<NotifierMessage>();
    let handle = tokio::spawn(async move {
        let (saves, saver) = spawn_saver(store.clone());
        // The channels' outcomes, as they come.
        let (settled_tx, mut settled_rx) = mpsc::unbounded_channel::<Settled>();
        let mut in_flight: usize = 0;
        // The channels of the settings a reload replaced, still sending.
        let mut retired: Vec<autosync_notify::Closing> = Vec::new();
        let mut notifier = match config {
            Some(c) => Some(Notifier::new(
                c,
                off_loop(&store, SuppressionState::default(), load_state).await,
            )),
            None => None,
        };
        let mut open = true;
        while open || in_flight > 0 {
            let message = tokio::select! {
                message = rx.recv(), if open => message,
                Some(settled) = settled_rx.recv() => {
                    in_flight = in_flight.saturating_sub(1);
                    log_failures(settled.delivery());
                    if let Some(n) = notifier.as_mut() {
                        // Saved after a delivery too: a failure heard of
                        // is worth a `recovered` notice after a restart.
                        let again = n.settle(&settled);
                        if again || settled.delivery().delivered() {
                            let _ = saves.send(n.state().clone());
                        }
                    }
                    continue;
                }
                else => break,
            };
            let Some(message) = message else {
                open = false;
                // The stop: every channel gets until the deadline; what it
                // has not delivered then fails (logged), and its outcome,
                // settled below, records it as not sent.
                let deadline = tokio::time::Instant::now() + stop_within;
                retired.extend(notifier.as_mut().and_then(Notifier::close));
                let mut gave_up = false;
                for closing in retired.drain(..) {
                    gave_up |= closing.finish(deadline).await;
                }
                if gave_up {
                    tracing::warn!(
                        "stopping: notifications not sent within {stop_within:?} were given up (each is logged)"
                    );
                }
                continue;
            };
            let now = chrono::Utc::now();
            let notice = match message {
                NotifierMessage::Notice(notice) => notice,
                NotifierMessage::ServiceStopped(message) => {
                    if let Some(n) = notifier.as_mut() {
                        let submission = n.submit(Event::ServiceStopped { message }, now);
                        follow(submission, &mut in_flight, &settled_tx);
                    }
                    continue;
                }
                NotifierMessage::Reconfigure(config) => {
                    let state = match &notifier {
                        Some(n) => n.state().clone(),
                        None => off_loop(&store, SuppressionState::default(), load_state).await,
                    };
                    retired.retain(|c| !c.is_finished());
                    retired.extend(notifier.as_mut().and_then(Notifier::close));
                    notifier = config.map(|c| Notifier::new(c, state));
                    continue;
                }
            };
            let Some(notifier) = notifier.as_mut() else {
                continue;
            };
            let submission = match notice {
                // The machine judged the MA back (no threshold stop waits
                // on it): the notifier forgets the profile's failures and
                // says it recovered, if it notified them.
                Notice::Recovered { ma, profile, .. } => {
                    match notifier.on_success(&ma, &profile, now) {
                        Some(event) => notifier.submit(event, now),
                        None => {
                            let _ = saves.send(notifier.state().clone());
                            continue;
                        }
                    }
                }
                Notice::RunFailed(run) => {
                    // The run's notice is of when it ended.
                    let at = run.ended_at.filter(|t| *t <= now).unwrap_or(now);
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
                    notifier.submit(
                        Event::RunFailed {
                            run,
                            first_errors: errors,
                        },
                        at,
                    )
                }
                other => {
                    let Some(event) = event_of(other) else {
                        continue;
                    };
                    notifier.submit(event, now)
                }
            };
            follow(submission, &mut in_flight, &settled_tx);
            let _ = saves.send(notifier.state().clone());
        }
        drop(saves);
        if let Err(e) = saver.await {
            tracing::warn!("the notifications' state saver ended abnormally: {e}");
        }
    });
    (tx, handle)
}

/// Logs what failed of a notice decided at once, or waits for a queued
/// one's outcome on a task of its own (sent to `settled` when it comes).
fn follow(submission: Submission, in_flight: &mut usize, settled: &mpsc::UnboundedSender<Settled>) {
    match submission {
        Submission::Done(delivery) => log_failures(&delivery),
        Submission::Queued(pending) => {
            *in_flight += 1;
            let settled = settled.clone();
            tokio::spawn(async move {
                let _ = settled.send(pending.outcome().await);
            });
        }
    }
}

fn log_failures(delivery: &Delivery) {
    for failure in delivery.failures() {
        if let Err(e) = &failure.result {
            tracing::warn!(channel = ?failure.channel, "a notification was not delivered: {e}");
        }
    }
}

/// The task that saves the suppression state, the latest of those sent
/// (a store held by a long sync delays the saves, never the notices).
fn spawn_saver(
    store: Arc<dyn Store>,
) -> (
    mpsc::UnboundedSender<SuppressionState>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<SuppressionState>();
    let handle = tokio::spawn(async move {
        while let Some(mut state) = rx.recv().await {
            while let Ok(newer) = rx.try_recv() {
                state = newer;
            }
            off_loop(&store, (), move |store| save_state(store, &state)).await;
        }
    });
    (tx, handle)
}

/// The notification of a notice (runs and recoveries are handled apart).
fn event_of(notice: Notice) -> Option<Event> {
    Some(match notice {
        Notice::RunFailed(_) | Notice::Recovered { .. } => return None,
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
            message: trigger_message(&ma, &trigger, message),
            ma,
            trigger,
        },
        Notice::Oscillation { ma, detail } => Event::Oscillation { ma, detail },
        Notice::FullSyncNeeded { ma, because } => Event::FullSyncNeeded { ma, because },
        Notice::ReloadRejected { message } => Event::ConfigReloadRejected { message },
        Notice::HookError { ma, message } => Event::TriggerError {
            trigger: hook_trigger(&message),
            message: hook_message(&ma, message),
            ma,
        },
    })
}

/// A trigger's error without what the notice says already (the machine
/// strips it; an error of another shape is kept whole).
fn trigger_message(ma: &str, trigger: &str, message: String) -> String {
    trigger_error_reason(ma, trigger, &message)
}

/// A failed hook's error without what the notification says already: it
/// reads `the <hook> hook of MA `<ma>` failed: <why>`, and the notification
/// names the hook (as its trigger) and the MA itself.
fn hook_message(ma: &str, message: String) -> String {
    let why = message
        .strip_prefix("the ")
        .and_then(|rest| rest.split_once(&format!(" hook of MA `{ma}` failed: ")))
        .map(|(_, why)| why)
        .filter(|why| !why.trim().is_empty());
    match why {
        Some(why) => why.to_owned(),
        None => message,
    }
}

/// The "trigger" a failed controller hook is notified as: each hook (the
/// before and the after hook) is a problem of its own, so that one failing
/// does not count as a different failure of the other. Its error reads
/// `the <hook> hook of MA `<ma>` failed: ...`.
fn hook_trigger(message: &str) -> String {
    let hook = message
        .strip_prefix("the ")
        .and_then(|rest| rest.split_once(" hook of MA "))
        .map(|(hook, _)| hook)
        .filter(|hook| !hook.is_empty() && !hook.contains(char::is_whitespace));
    match hook {
        Some(hook) => format!("controller hook ({hook})"),
        None => "controller hook".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::hooks::{HookError, HookKind};
    use autosync_store::sqlite::SqliteStore;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// An HTTP server answering 204 to every POST; sends each body (JSON)
    /// with when it arrived.
    async fn webhook_sink() -> (
        String,
        mpsc::UnboundedReceiver<(Instant, serde_json::Value)>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = sock.read(&mut chunk).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some((head, body)) = text.split_once("\r\n\r\n") else {
                            continue;
                        };
                        let len: usize = head
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                            .map(|(_, v)| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if body.len() < len {
                            continue;
                        }
                        let json = serde_json::from_str(body).unwrap();
                        let _ = tx.send((Instant::now(), json));
                        break;
                    }
                    let _ = sock
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (format!("http://{addr}/hook"), rx)
    }

    /// An HTTP server that accepts connections and never answers.
    async fn silent_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        format!("http://{addr}/hook")
    }

    fn config(text: &str) -> NotifyConfig {
        let c: NotifyConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        c
    }

    fn rejected(message: &str) -> NotifierMessage {
        NotifierMessage::Notice(Notice::ReloadRejected {
            message: message.to_owned(),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_webhook_that_never_answers_should_delay_neither_other_channels_nor_later_notices() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let (healthy, mut received) = webhook_sink().await;
        let silent = silent_server().await;
        let cfg = config(&format!(
            "[[webhooks]]\nurl = \"{silent}\"\ntimeout = \"2s\"\n\
             [[webhooks]]\nurl = \"{healthy}\"\n"
        ));
        let (tx, handle) = spawn(Some(cfg), store.clone());
        let start = Instant::now();
        tx.send(rejected("first")).unwrap();
        tx.send(rejected("second")).unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            let (at, json) = tokio::time::timeout(Duration::from_millis(1500), received.recv())
                .await
                .expect("the healthy webhook got both notices at once")
                .unwrap();
            assert!(at.duration_since(start) < Duration::from_millis(1500));
            got.push(json);
        }
        let messages: Vec<&str> = got.iter().map(|j| j["message"].as_str().unwrap()).collect();
        assert_eq!(messages, ["first", "second"], "in order");
        // The notice's time is when it came, not when a channel was free.
        let sent_at: chrono::DateTime<chrono::Utc> =
            got[1]["sent_at"].as_str().unwrap().parse().unwrap();
        let late = chrono::Utc::now().signed_duration_since(sent_at);
        assert!(late < chrono::TimeDelta::seconds(2), "{late}");
        // Ending waits for the silent webhook's timeouts and saves the state.
        drop(tx);
        tokio::time::timeout(Duration::from_secs(20), handle)
            .await
            .unwrap()
            .unwrap();
        let state = load_state(store.as_ref());
        assert_eq!(state.entries().count(), 1, "{state:?}");
    }

    /// A stop gives a webhook that never answers (its `timeout` 5 minutes)
    /// the bound at most, and the notice it did not deliver is saved as
    /// not sent: the next equal notice is not suppressed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_should_give_up_on_a_silent_webhook_within_its_bound_and_save_the_notice_as_not_sent()
     {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let silent = silent_server().await;
        let cfg = config(&format!(
            "[[webhooks]]\nurl = \"{silent}\"\ntimeout = \"5m\"\n"
        ));
        let bound = Duration::from_millis(300);
        let (tx, handle) = spawn_within(Some(cfg.clone()), store.clone(), bound);
        tx.send(rejected("the reload failed")).unwrap();
        drop(tx);
        let start = Instant::now();
        tokio::time::timeout(bound * 4, handle)
            .await
            .expect("the stop returns within its bound")
            .unwrap();
        assert!(start.elapsed() >= bound, "{:?}", start.elapsed());
        let state = load_state(store.as_ref());
        let entries: Vec<_> = state.entries().collect();
        assert_eq!(entries.len(), 1, "{state:?}");
        assert_eq!(entries[0].1.last_sent, None, "not delivered: {state:?}");
        let mut n = Notifier::new(cfg, state);
        let event = event_of(Notice::ReloadRejected {
            message: "the reload failed".into(),
        })
        .unwrap();
        assert!(
            matches!(n.submit(event, chrono::Utc::now()), Submission::Queued(_)),
            "the notice never delivered is sent again"
        );
    }

    fn hook_error(hook: HookKind, message: &str) -> Notice {
        let e = HookError {
            hook,
            ma: "hr".into(),
            message: message.into(),
        };
        Notice::HookError {
            ma: e.ma.clone(),
            message: e.to_string(),
        }
    }

    #[tokio::test]
    async fn failing_before_and_after_hooks_should_each_be_notified_once_then_suppressed() {
        let before = hook_error(HookKind::Before, "script failed: before hook exploded");
        let after = hook_error(HookKind::After, "the hook returned 42");
        let mut n = Notifier::new(config("reminder_after = \"24h\""), SuppressionState::new());
        let now = chrono::Utc::now();
        let mut sent = Vec::new();
        for (i, notice) in [&before, &after, &before, &after, &before, &after]
            .into_iter()
            .enumerate()
        {
            let event = event_of(notice.clone()).unwrap();
            let trigger = match &event {
                Event::TriggerError { trigger, .. } => trigger.clone(),
                other => panic!("{other:?}"),
            };
            let at = now + chrono::TimeDelta::seconds(i as i64);
            match n.notify(event, at).await {
                Delivery::Sent { .. } => sent.push(trigger),
                Delivery::Suppressed { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            sent,
            ["controller hook (before)", "controller hook (after)"],
            "each hook once"
        );
    }

    /// A failed hook is notified as a trigger error of the hook: its text
    /// names the hook and the MA once (it said `controller hook (before)`
    /// of MA "hr" failed: the before hook of MA `hr` failed: ...).
    #[test]
    fn a_hook_error_should_name_the_hook_and_the_ma_once() {
        let event = event_of(hook_error(HookKind::Before, "script failed: boom")).unwrap();
        let Event::TriggerError { message, .. } = &event else {
            panic!("{event:?}")
        };
        assert_eq!(message, "script failed: boom");
        let rendered =
            autosync_notify::render(&event, &autosync_notify::Context::first(chrono::Utc::now()));
        for text in [&rendered.subject, &rendered.text] {
            assert_eq!(text.matches("before").count(), 1, "{text}");
            assert!(!text.contains("`hr`"), "{text}");
        }
        assert!(rendered.text.contains("script failed: boom"));
    }

    #[test]
    fn a_trigger_error_should_name_the_trigger_once() {
        let e = autosync_triggers::TriggerError {
            ma: "a".into(),
            trigger: "script throws (every 2s, throw.rhai)".into(),
            message: "Runtime error: boom from script (line 1, position 1)".into(),
            stopped: false,
            at: chrono::Utc::now(),
        };
        let event = event_of(Notice::TriggerError {
            ma: e.ma.clone(),
            trigger: e.trigger.clone(),
            message: e.to_string(),
        })
        .unwrap();
        let Event::TriggerError { message, .. } = &event else {
            panic!("{event:?}")
        };
        assert_eq!(
            message,
            "Runtime error: boom from script (line 1, position 1)"
        );
        let rendered =
            autosync_notify::render(&event, &autosync_notify::Context::first(chrono::Utc::now()));
        for text in [&rendered.subject, &rendered.text] {
            assert_eq!(text.matches("throw.rhai").count(), 1, "{text}");
        }
        // A stopped trigger says so; a message of another shape is kept.
        let stopped = autosync_triggers::TriggerError { stopped: true, ..e };
        let Some(Event::TriggerError { message, .. }) = event_of(Notice::TriggerError {
            ma: "a".into(),
            trigger: stopped.trigger.clone(),
            message: stopped.to_string(),
        }) else {
            panic!()
        };
        assert!(message.ends_with("(trigger stopped)"), "{message}");
        assert!(!message.contains("throw.rhai"), "{message}");
        let Some(Event::TriggerError { message, .. }) = event_of(Notice::TriggerError {
            ma: "a".into(),
            trigger: "t".into(),
            message: "the run profile `x` does not exist".into(),
        }) else {
            panic!()
        };
        assert_eq!(message, "the run profile `x` does not exist");
    }
}
