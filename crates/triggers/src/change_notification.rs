//! The change-notification trigger: the MA connector's listener (an LDAP
//! persistent search: see `autosync_connector::ChangeSource`) tells each
//! change as it happens, and the trigger asks for its profile (a delta
//! import) at once. The listener runs on a blocking thread of its own;
//! the trigger names no system.
//!
//! * **No debounce on the first change**: a change asks at once, since a
//!   wait would only add latency. Changes that follow within
//!   [`Timing::gap`] of a request (a burst) are covered by one more
//!   request at the end of the gap: every change is followed by a request
//!   made after it, none is dropped. While a burst lasts the gap doubles,
//!   up to eight times its length ([`Throttle`]), so that it becomes a
//!   few large imports rather than many small ones. The controller's queue does the rest:
//!   a request equal to one already queued (same profile) is merged into
//!   it, and a request made while the import runs queues exactly one
//!   more, so a burst becomes at most the running import and one more.
//! * **`ignore_attributes`**: a change that touched only those asks
//!   nothing (the listener then tells the changed attributes: an LDAP
//!   listener reads every entry when it connects to tell them). A change
//!   whose attributes are unknown (an add, a delete, a rename) always
//!   asks.
//! * **Disconnects**: a listener that breaks (the server restarted, the
//!   network) is opened again after a backoff (from
//!   [`Timing::backoff_min`], doubling up to [`Timing::backoff_max`],
//!   reset once a listener stayed up [`Timing::stable`]); the failure is
//!   reported, and once listening again the trigger asks for one
//!   catch-up import, which reads what changed while nobody listened.
//!   So does the first listener: what changed while the service was
//!   stopped (or before the MA was ever imported) is read then, not at
//!   the next change.

use crate::TriggerError;
use crate::change_filter::ChangeFilter;
use crate::clock::Clock;
use crate::config::{Ask, Common, check_profile, default_profile, key_error};
use crate::provided::Provided;
use crate::sink::RequestSink;
pub use crate::throttle::{BURST_RATE, GAP_GROWTH, Throttle};
use autosync_connector::{ChangeEvent, ChangeSource, ConnectorError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// `{ type = "change-notification", profile = "delta-import", ignore_attributes = ["lastLogonTimestamp"] }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeNotificationConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_profile")]
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
    /// Attributes whose changes ask for no import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_attributes: Vec<String>,
    /// The MA connector's notification channel (from its offer). Not a key
    /// of the file: whoever reads the configuration provides it.
    #[serde(skip)]
    pub source: Provided<dyn ChangeSource>,
}

/// How long stopping waits for the listener's thread.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// How the trigger paces itself (not configurable: tests shorten them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// After a request, changes wait this long for the next one.
    pub gap: Duration,
    /// The first wait before opening a broken listener again.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A listener up this long resets the backoff.
    pub stable: Duration,
    /// How long the listener's thread waits for a change before it looks
    /// whether the trigger stopped.
    pub poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            gap: Duration::from_millis(25),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            stable: Duration::from_secs(10),
            poll: Duration::from_millis(200),
        }
    }
}

/// A validated change-notification trigger.
#[derive(Clone, Debug)]
pub struct ChangeNotificationTrigger {
    pub ask: Ask,
    pub ignore: ChangeFilter,
    pub source: Arc<dyn ChangeSource>,
    pub timing: Timing,
}

impl ChangeNotificationConfig {
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
    ) -> Result<ChangeNotificationTrigger, crate::TriggerConfigError> {
        let kind = "change-notification";
        check_profile(ma, index, kind, &self.profile)?;
        let Some(source) = self.source.get() else {
            return Err(key_error(
                ma,
                index,
                kind,
                "",
                "this MA's connector offers no change notification (`autosync discover` says what it offers)",
            ));
        };
        let common = Common {
            profile: &self.profile,
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
        };
        let details = if self.ignore_attributes.is_empty() {
            "every change".to_owned()
        } else {
            format!("ignoring {}", self.ignore_attributes.join(", "))
        };
        Ok(ChangeNotificationTrigger {
            ask: Ask::new(ma, kind, self.name.as_deref(), &details, common),
            ignore: ChangeFilter::new(self.ignore_attributes.iter().cloned()),
            source: source.clone(),
            timing: Timing::default(),
        })
    }
}

/// What the listener's thread tells the trigger.
#[derive(Debug)]
enum Note {
    /// Listening; `again` when a listener failed before (else the first).
    Up {
        again: bool,
    },
    Change(ChangeEvent),
    /// The listener broke or could not be opened.
    Down(ConnectorError),
}

impl ChangeNotificationTrigger {
    /// Listens until cancelled or the sink closes.
    pub async fn run(
        self,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn RequestSink>,
        cancel: CancellationToken,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = std_mpsc::channel::<()>();
        let source = self.source.clone();
        let (timing, attributes) = (self.timing, !self.ignore.ignore_attributes.is_empty());
        let hold = Hold::default();
        let held = hold.clone();
        let worker = tokio::task::spawn_blocking(move || {
            listen(source.as_ref(), attributes, timing, &tx, &stop_rx, &held);
        });
        let mut throttle = Throttle::new(self.timing.gap);
        loop {
            let deadline = throttle.deadline();
            hold.set(deadline);
            let note = tokio::select! {
                () = cancel.cancelled() => break,
                () = sleep_until(deadline) => {
                    if throttle.poll(Instant::now()) && !self.ask_now(sink.as_ref(), None) {
                        break;
                    }
                    continue;
                }
                note = rx.recv() => note,
            };
            let asked = match note {
                None => break,
                Some(Note::Change(event)) => {
                    let relevant = self.ignore.is_relevant(
                        event
                            .attributes
                            .as_ref()
                            .map(|a| a.iter().map(String::as_str)),
                    );
                    tracing::debug!(ma = %self.ask.ma, object = %event.object, attributes = ?event.attributes, relevant, "change notified");
                    if relevant && throttle.on_change(Instant::now()) {
                        self.ask_now(sink.as_ref(), None)
                    } else {
                        true
                    }
                }
                Some(Note::Up { again }) => {
                    tracing::info!(ma = %self.ask.ma, trigger = %self.ask.trigger, again, "listening to changes");
                    throttle.on_change(Instant::now());
                    let why = if again {
                        "(catch-up after listening again)"
                    } else {
                        "(catch-up as it starts listening)"
                    };
                    self.ask_now(sink.as_ref(), Some(why))
                }
                Some(Note::Down(e)) => {
                    sink.error(TriggerError {
                        ma: self.ask.ma.clone(),
                        trigger: self.ask.trigger.clone(),
                        message: format!(
                            "not listening to changes: {e}; listening again after a backoff, then asking for a catch-up import"
                        ),
                        stopped: false,
                        at: clock.now(),
                    });
                    true
                }
            };
            if !asked {
                break;
            }
        }
        drop(stop_tx);
        // The thread sees the stop between two waits for a change; one
        // that is connecting ends when the connection is made or refused
        // (within the connector's timeout): not waited for that long.
        match tokio::time::timeout(STOP_WAIT, worker).await {
            Ok(Err(e)) => {
                tracing::error!(ma = %self.ask.ma, "the change listener's thread failed: {e}");
            }
            Ok(Ok(())) => {}
            Err(_) => {
                tracing::debug!(ma = %self.ask.ma, "the change listener's thread ends on its own");
            }
        }
    }

    /// Asks for the profile; false when nobody listens any more.
    fn ask_now(&self, sink: &dyn RequestSink, note: Option<&str>) -> bool {
        let request = match note {
            Some(n) => self.ask.request_with_note(n),
            None => self.ask.request(),
        };
        sink.request(request).is_ok()
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Until when changes wait for a request (the end of the trigger's gap),
/// if they do: the listener's thread then reads them in batches.
///
/// Reading a change as it comes wakes the listener's thread, the
/// connection's reader and the trigger's task: in a burst of thousands,
/// a quarter of the service's CPU, for changes that wait anyway. While
/// changes wait, the thread reads every [`BATCH`] what came meanwhile
/// (the server's messages wait in the connection), and reads as they come
/// again in the last moments of the gap, so that the trigger has seen
/// every change read before it asks; when the burst ends, what it sent
/// is read within a batch and the requests end with it.
#[derive(Clone, Default)]
struct Hold(Arc<std::sync::Mutex<Option<Instant>>>);

impl Hold {
    fn set(&self, until: Option<Instant>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }

    /// How long the thread may leave changes unread now.
    fn nap(&self, now: Instant) -> Option<Duration> {
        let until = (*self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))?;
        let nap = until.saturating_duration_since(now).checked_sub(MARGIN)?;
        (!nap.is_zero()).then_some(nap.min(BATCH))
    }
}

/// How often the listener's thread reads while changes wait.
const BATCH: Duration = Duration::from_millis(10);
/// How long before a request the listener reads as changes come again.
const MARGIN: Duration = Duration::from_millis(3);
/// How long the thread reads a batch: what waited in the connection
/// comes at once, and a burst that goes on is read in the next batch.
const DRAIN: Duration = Duration::from_millis(2);

/// The listener's thread: open, tell, open again after a backoff, until
/// `stop` is dropped (or the trigger stops receiving).
fn listen(
    source: &dyn ChangeSource,
    attributes: bool,
    timing: Timing,
    tx: &mpsc::UnboundedSender<Note>,
    stop: &std_mpsc::Receiver<()>,
    hold: &Hold,
) {
    let stopped = || {
        matches!(
            stop.try_recv(),
            Err(std_mpsc::TryRecvError::Disconnected) | Ok(())
        )
    };
    let mut backoff = timing.backoff_min;
    let mut failed = false;
    while !stopped() {
        let error = match source.listen(attributes) {
            Err(e) => e,
            Ok(mut listener) => {
                let opened = Instant::now();
                if tx.send(Note::Up { again: failed }).is_err() {
                    return;
                }
                // While reading a batch: until when.
                let mut drain: Option<Instant> = None;
                let broke = loop {
                    if stopped() {
                        return;
                    }
                    // Changes wait for a request: sleeps (noticing a
                    // stop), then reads all that came meanwhile.
                    let now = Instant::now();
                    let wait = match (drain, hold.nap(now)) {
                        (Some(end), _) => end.saturating_duration_since(now),
                        (None, Some(nap)) => {
                            if !matches!(
                                stop.recv_timeout(nap),
                                Err(std_mpsc::RecvTimeoutError::Timeout)
                            ) {
                                return;
                            }
                            drain = Some(Instant::now() + DRAIN);
                            DRAIN
                        }
                        (None, None) => timing.poll,
                    };
                    match listener.next_change(wait) {
                        Ok(Some(event)) => {
                            if tx.send(Note::Change(event)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => drain = None,
                        Err(e) => break e,
                    }
                };
                if opened.elapsed() >= timing.stable {
                    backoff = timing.backoff_min;
                }
                broke
            }
        };
        failed = true;
        if tx.send(Note::Down(error)).is_err() {
            return;
        }
        // Waits for the backoff, or for the trigger to stop.
        if !matches!(
            stop.recv_timeout(backoff),
            Err(std_mpsc::RecvTimeoutError::Timeout)
        ) {
            return;
        }
        backoff = (backoff * 2).min(timing.backoff_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::sink::TriggerEvent;
    use autosync_connector::{ChangeListener, ConnectorErrorKind};
    use std::sync::Mutex;

    const MS: Duration = Duration::from_millis(1);

    /// A source whose listeners tell what the test sends them, and fail
    /// when the test says so.
    #[derive(Debug, Default)]
    struct Scripted {
        opened: Mutex<Vec<bool>>,
        next: Mutex<Option<std_mpsc::Receiver<Result<ChangeEvent, ConnectorError>>>>,
    }

    struct ScriptedListener(std_mpsc::Receiver<Result<ChangeEvent, ConnectorError>>);

    impl ChangeListener for ScriptedListener {
        fn next_change(&mut self, wait: Duration) -> Result<Option<ChangeEvent>, ConnectorError> {
            match self.0.recv_timeout(wait) {
                Ok(r) => r.map(Some),
                Err(std_mpsc::RecvTimeoutError::Timeout) => Ok(None),
                Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(down()),
            }
        }
    }

    fn down() -> ConnectorError {
        ConnectorError::new(ConnectorErrorKind::Connectivity, "the server went away")
    }

    impl ChangeSource for Scripted {
        fn listen(&self, attributes: bool) -> Result<Box<dyn ChangeListener>, ConnectorError> {
            self.opened.lock().unwrap().push(attributes);
            match self.next.lock().unwrap().take() {
                Some(rx) => Ok(Box::new(ScriptedListener(rx))),
                None => Err(down()),
            }
        }
    }

    fn event(attributes: Option<&[&str]>) -> ChangeEvent {
        ChangeEvent {
            object: "uid=a".into(),
            attributes: attributes.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn trigger(source: Arc<Scripted>, ignore: &[&str]) -> ChangeNotificationTrigger {
        let config = ChangeNotificationConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            ignore_attributes: ignore.iter().map(|s| (*s).to_owned()).collect(),
            source: Provided(Some(source)),
        };
        let mut t = config.validate("dir", 0).unwrap();
        t.timing = Timing {
            gap: Duration::ZERO,
            backoff_min: 5 * MS,
            backoff_max: 20 * MS,
            stable: Duration::from_secs(60),
            poll: 10 * MS,
        };
        t
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<TriggerEvent>) -> TriggerEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_trigger_without_a_channel_should_be_a_configuration_error() {
        let config = ChangeNotificationConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            ignore_attributes: Vec::new(),
            source: Provided(None),
        };
        let e = config.validate("dir", 1).unwrap_err();
        assert!(
            e.to_string().contains("offers no change notification"),
            "{e}"
        );
        let t = trigger(Arc::new(Scripted::default()), &["lastLogon"]);
        assert_eq!(t.ask.trigger, "change-notification (ignoring lastLogon)");
    }

    #[tokio::test]
    async fn changes_should_ask_ignored_ones_not_and_a_listener_opened_again_should_catch_up() {
        let source = Arc::new(Scripted::default());
        let (send, rx) = std_mpsc::channel();
        *source.next.lock().unwrap() = Some(rx);
        let t = trigger(source.clone(), &["lastLogon"]);
        let (tx, mut requests) = mpsc::unbounded_channel::<TriggerEvent>();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(t.run(Arc::new(SystemClock), Arc::new(tx), cancel.clone()));
        // Listening, it first asks for what changed while nobody listened.
        let TriggerEvent::Request(r) = next(&mut requests).await else {
            panic!("a request")
        };
        assert!(
            r.trigger.ends_with("(catch-up as it starts listening)"),
            "{r:?}"
        );

        send.send(Ok(event(Some(&["lastLogon"])))).unwrap();
        send.send(Ok(event(Some(&["LASTLOGON"])))).unwrap();
        send.send(Ok(event(Some(&["title", "lastLogon"])))).unwrap();
        let TriggerEvent::Request(r) = next(&mut requests).await else {
            panic!("a request")
        };
        assert_eq!(r.trigger, "change-notification (ignoring lastLogon)");
        send.send(Ok(event(None))).unwrap();
        assert!(matches!(
            next(&mut requests).await,
            TriggerEvent::Request(_)
        ));
        assert!(
            requests.try_recv().is_err(),
            "ignored changes asked nothing"
        );
        assert_eq!(
            source.opened.lock().unwrap().as_slice(),
            [true],
            "attributes asked for"
        );

        // The listener breaks; opening it fails once, then works.
        drop(send);
        let TriggerEvent::Error(e) = next(&mut requests).await else {
            panic!("an error")
        };
        assert!(
            !e.stopped && e.message.contains("the server went away"),
            "{e:?}"
        );
        // Opening it again fails (reported) until the server is back.
        assert!(matches!(next(&mut requests).await, TriggerEvent::Error(_)));
        let (send, rx) = std_mpsc::channel();
        *source.next.lock().unwrap() = Some(rx);
        let r = loop {
            match next(&mut requests).await {
                TriggerEvent::Request(r) => break r,
                TriggerEvent::Error(_) => {}
                other => panic!("{other:?}"),
            }
        };
        assert!(
            r.trigger.ends_with("(catch-up after listening again)"),
            "{r:?}"
        );
        send.send(Ok(event(Some(&["title"])))).unwrap();
        assert!(matches!(
            next(&mut requests).await,
            TriggerEvent::Request(_)
        ));
        cancel.cancel();
        task.await.unwrap();
    }
}
