//! The service: start-up (the persisted state and what the store says,
//! sources changed while the service was stopped), the triggers, the
//! executor, and graceful stop. `run(once = true)` processes what start-up
//! finds until quiescent and returns, without starting triggers.

use crate::config::ControllerConfig;
use crate::executor::Executor;
use crate::persist::{self, PersistError};
use crate::service_lease::StoreWatch;
use crate::wiring::{Command, build_trigger_set, request_of};
use autosync_connector::ScriptFunction;
use autosync_controller::SyncEngine;
use autosync_controller::machine::{Published, ServiceEvent, Startup, Summary, WatchedFile};
use autosync_model::{RunRecord, RunStatus};
use autosync_store::Store;
use autosync_store::sqlite::FileState;
use autosync_triggers::{ScriptHost, SystemClock, Trigger, TriggerDeps, TriggerEvent, TriggerSet};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// How many published events the broadcast keeps for a follower that has
/// not read them yet; one further behind loses the oldest.
pub const EVENTS_KEPT: usize = 1024;

/// Subscribes to the events a service publishes (its API's
/// `GET /api/v1/events`). Cloneable; it does not keep the stream open:
/// once the service has stopped, [`EventFeed::subscribe`] gives `None`
/// and the receivers already given end after the last event.
#[derive(Clone, Debug)]
pub struct EventFeed(broadcast::WeakSender<Published>);

impl EventFeed {
    /// The feed of `sender`'s events.
    pub fn new(sender: &broadcast::Sender<Published>) -> EventFeed {
        EventFeed(sender.downgrade())
    }

    /// A receiver of the events published from now on; `None` once the
    /// service has stopped.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Published>> {
        self.0.upgrade().map(|sender| sender.subscribe())
    }
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("the triggers of management agent `{ma}` cannot be built: {message}")]
    Triggers { ma: String, message: String },
    #[error("the service's start-up failed: {0}")]
    Startup(String),
    /// The store file was deleted, moved away, replaced or damaged under
    /// the service: what happened, where what it held was saved, and what
    /// to do.
    #[error("{0}")]
    StoreFile(String),
}

/// Scripts see the store's run history and the functions connector types
/// lend (`sql_scalar`).
struct StoreHost {
    store: Arc<dyn Store>,
    functions: Vec<ScriptFunction>,
}

impl ScriptHost for StoreHost {
    fn last_run(&self, ma: &str) -> Option<RunRecord> {
        let mut read = self.store.read().ok()?;
        read.runs(Some(ma), 1).ok()?.into_iter().next()
    }

    fn functions(&self) -> &[ScriptFunction] {
        &self.functions
    }
}

/// The autosync service.
pub struct Service {
    engine: Arc<dyn SyncEngine>,
    store: Arc<dyn Store>,
    config: ControllerConfig,
    shutdown: CancellationToken,
    commands_tx: mpsc::UnboundedSender<Command>,
    commands_rx: mpsc::UnboundedReceiver<Command>,
    /// Where the executor publishes; it owns it once running.
    events: broadcast::Sender<Published>,
    /// The store file's watch of the lease it runs under, if any.
    store_watch: Option<Arc<StoreWatch>>,
    /// Why the service stopped, when not at an operator's request (see
    /// [`Service::stop_reason`]).
    stop_reason: Option<StopReason>,
}

/// Says, once the service stopped, why it stopped when that was not at
/// an operator's request (its lease taken over): the message of its
/// `service-stopped` notice; `None` for a normal stop.
pub type StopReason = Box<dyn Fn() -> Option<String> + Send + Sync>;

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("mas", &self.config.mas.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// When the MA last started an import (any import, whatever its cause).
/// When a file last changed: the later of its modification time and, on
/// Unix, its inode's change time.
fn changed_at(m: &std::fs::Metadata) -> DateTime<Utc> {
    let modified = m.modified().map(DateTime::<Utc>::from).ok();
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        DateTime::<Utc>::from_timestamp(m.ctime(), u32::try_from(m.ctime_nsec()).unwrap_or(0))
    };
    #[cfg(not(unix))]
    let changed: Option<DateTime<Utc>> = None;
    match (modified, changed) {
        (Some(a), Some(b)) => a.max(b),
        (a, b) => a.or(b).unwrap_or_else(Utc::now),
    }
}

fn last_import(store: &dyn Store, ma: &str) -> Option<DateTime<Utc>> {
    let runs = store.read().ok()?.runs(Some(ma), 100).ok()?;
    runs.into_iter()
        .filter(|r| !matches!(r.status, RunStatus::NoStartMaAlreadyRunning))
        .find(|r| r.steps.iter().any(|s| s.step_type.is_import()))
        .map(|r| r.started_at)
}

impl Service {
    /// A service over `engine` (whose runs it starts) and `store` (where it
    /// keeps its state). [`Service::run`] first closes the runs a crash
    /// left unfinished.
    pub fn new(
        engine: Arc<dyn SyncEngine>,
        store: Arc<dyn Store>,
        config: ControllerConfig,
    ) -> Service {
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENTS_KEPT);
        Service {
            engine,
            store,
            config,
            shutdown: CancellationToken::new(),
            commands_tx,
            commands_rx,
            events,
            store_watch: None,
            stop_reason: None,
        }
    }

    /// Watches the store file `lease` watches (`autosync run`): a file
    /// deleted, replaced or damaged under the service stops it.
    pub fn watch_store_file(&mut self, lease: &crate::service_lease::ServiceLease) {
        self.store_watch = lease.store_watch();
    }

    /// How to learn, once the service stopped, whether something other
    /// than an operator stopped it (`autosync run`: its service lease
    /// found taken over), and what its `service-stopped` notice says then.
    /// A store file found gone, replaced or damaged is told by the
    /// service itself ([`Service::watch_store_file`]).
    pub fn stop_reason(&mut self, reason: StopReason) {
        self.stop_reason = Some(reason);
    }

    /// Cancel it to stop the service gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Where operator commands go.
    pub fn commands(&self) -> mpsc::UnboundedSender<Command> {
        self.commands_tx.clone()
    }

    /// A receiver of every event the service publishes from now on (take
    /// it before [`Service::run`] to see the start). A receiver that falls
    /// more than [`EVENTS_KEPT`] events behind loses the oldest and is
    /// told how many (`RecvError::Lagged`); the service never waits for it.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.events.subscribe()
    }

    /// A handle that subscribes while the service runs (for the API).
    pub fn events(&self) -> EventFeed {
        EventFeed::new(&self.events)
    }

    /// Builds every MA's triggers with their persisted states.
    fn build_triggers(
        &self,
        states: &BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    ) -> Result<BTreeMap<String, TriggerSet>, ServiceError> {
        let empty = BTreeMap::new();
        let mut sets = BTreeMap::new();
        for (name, ma) in &self.config.mas {
            if !ma.enabled {
                continue;
            }
            let states = states.get(name).unwrap_or(&empty);
            let set = build_trigger_set(&self.config, name, states).map_err(|message| {
                ServiceError::Triggers {
                    ma: name.clone(),
                    message,
                }
            })?;
            if let Some(at) = last_import(self.store.as_ref(), name) {
                set.record_import(at);
            }
            sets.insert(name.clone(), set);
        }
        Ok(sets)
    }

    /// Every file watch's file as start finds it (when it was written,
    /// when its MA last imported): the machine decides which changed while
    /// the service was stopped. A change poll counts as a file written
    /// now: it asks once at start. So does a change notification with
    /// `once` (no listener runs then, whose first catch-up import reads
    /// what changed while the service was stopped).
    fn watched_files(&self, sets: &BTreeMap<String, TriggerSet>, once: bool) -> Vec<WatchedFile> {
        let mut watched = Vec::new();
        for (name, set) in sets {
            let mut last = None;
            for trigger in set.triggers() {
                // A poll learns its token at start: what changed while the
                // service was stopped it cannot tell, so it asks once (a
                // delta import that finds nothing is cheap); so does a
                // notification that has no listener (`once`).
                let at_start = match trigger {
                    Trigger::ChangePoll(t) => Some(&t.ask),
                    Trigger::ChangeNotification(t) if once => Some(&t.ask),
                    _ => None,
                };
                if let Some(ask) = at_start {
                    let last_import =
                        *last.get_or_insert_with(|| last_import(self.store.as_ref(), name));
                    let mut request = ask.request();
                    request.trigger = format!("{} (at start)", request.trigger);
                    watched.push(WatchedFile {
                        request: request_of(request),
                        modified: Utc::now(),
                        last_import,
                    });
                    continue;
                }
                let Trigger::FileWatch(t) = trigger else {
                    continue;
                };
                let path = t.folder.join(&t.file_name);
                let last_import =
                    *last.get_or_insert_with(|| last_import(self.store.as_ref(), name));
                let modified = match std::fs::metadata(&path) {
                    // The later of the modification and the change time: a
                    // file copied in keeping an older modification time
                    // (`cp -p`, `rsync -a`, `tar x`, a move) has a new
                    // change time, which no tool sets back.
                    Ok(m) => changed_at(&m),
                    Err(e) => {
                        // A source whose file is not there is imported
                        // anyway: the import says so (`stopped-server-down`,
                        // retried, notified; `run --once` exits 3) instead
                        // of the MA looking idle.
                        let imports = self.config.mas.get(name).is_some_and(|m| m.imports);
                        if !imports && last_import.is_none() {
                            tracing::warn!(ma = %name, path = %path.display(), "cannot read the watched file's time: {e}");
                            continue;
                        }
                        tracing::warn!(ma = %name, path = %path.display(), "cannot read the watched file ({e}): importing it to report it");
                        Utc::now()
                    }
                };
                let mut request = t.ask.request();
                request.trigger = format!("{} (changed before start)", request.trigger);
                watched.push(WatchedFile {
                    request: request_of(request),
                    modified,
                    last_import,
                });
            }
        }
        watched
    }

    /// Runs the service until its shutdown token is cancelled, or with
    /// `once` until nothing is left to do. Returns what ran.
    pub async fn run(self, once: bool) -> Result<Summary, ServiceError> {
        let engine = self.engine.clone();
        // Runs a crash left in progress are closed (`stopped-server`, the
        // engine logs each) before anything reads the run history.
        let closed = tokio::task::spawn_blocking(move || engine.close_unfinished_runs())
            .await
            .map_err(|e| ServiceError::Startup(e.to_string()))?
            .map_err(|e| {
                ServiceError::Startup(format!(
                    "cannot close the runs an earlier crash left unfinished: {e}"
                ))
            })?;
        let mut state = persist::load(self.store.as_ref())?;
        let rejected = settle_offline_decisions(self.store.as_ref(), &mut state)?;
        let mut sets = self.build_triggers(&state.triggers)?;
        let (events_tx, events_rx) = mpsc::unbounded_channel::<TriggerEvent>();
        // Every MA's triggers run, stopped MAs' too: their requests wait in
        // the queue (nothing is lost) until an operator starts the MA.
        let deps = (!once).then(|| TriggerDeps {
            sink: Arc::new(events_tx.clone()),
            clock: Arc::new(SystemClock),
            host: Arc::new(StoreHost {
                store: self.store.clone(),
                functions: self.config.script_functions.clone(),
            }) as Arc<dyn ScriptHost>,
            rng_seed: None,
        });
        // The file watches are armed before the files are compared with the
        // last imports, so a change made meanwhile is seen by one or the
        // other (their requests wait in the channel until the executor runs).
        if let Some(deps) = &deps {
            for set in sets.values_mut() {
                set.start(deps);
            }
        }
        let mut watched = self.watched_files(&sets, once);
        // A rejection discarded what the last import staged: the source is
        // read again, as if it changed after that import.
        for w in &mut watched {
            if rejected.contains(&w.request.ma) {
                w.last_import = None;
            }
        }
        let Service {
            engine,
            store,
            config,
            shutdown,
            commands_tx,
            mut commands_rx,
            events,
            store_watch,
            stop_reason,
        } = self;
        drop(commands_tx);
        let (notices, notifier) =
            crate::notices::spawn(config.notifications.clone(), store.clone());
        let startup = Startup {
            state,
            watched,
            closed,
            ..Startup::default()
        };
        let mas: Vec<String> = config.mas.keys().cloned().collect();
        let (e, s) = (engine.clone(), store.clone());
        let startup = tokio::task::spawn_blocking(move || {
            crate::jobs::startup(e.as_ref(), s.as_ref(), &mas, startup)
        })
        .await
        .map_err(|e| ServiceError::Startup(e.to_string()))?;
        let watch = store_watch;
        let watching = CancellationToken::new();
        let watcher = watch.clone().map(|w| {
            tokio::spawn(watch_store(
                w,
                events.subscribe(),
                shutdown.clone(),
                watching.clone(),
            ))
        });
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        // Kept to tell of a stop the service did not ask for.
        let stopped = notices.clone();
        let (summary, last) =
            Executor::new(engine, store, config, once, notices, answers_tx, events)
                .with_triggers(std::mem::take(&mut sets), deps)
                .run(startup, events_rx, &mut commands_rx, answers_rx, shutdown)
                .await;
        drop(events_tx);
        let watched = watch.clone();
        let finish = async move {
            // Not waited for: a whole read of a large store may take long,
            // and what it found is kept in the watch.
            watching.cancel();
            if let Some(watcher) = watcher {
                watcher.abort();
            }
            // A stop nobody asked for is notified once, before the notifier
            // ends (it sends it within its stop's bound).
            if let Some(why) = stopped_why(watched, stop_reason).await {
                let _ = stopped.send(crate::notices::NotifierMessage::ServiceStopped(why));
            }
            drop(stopped);
            // The executor's notices' sender went with its stop, so this
            // was the last: the notifier sends what is left and ends.
            if let Err(e) = notifier.await {
                tracing::warn!("the notifier ended abnormally: {e}");
            }
        };
        // Until then the stopped executor still answers the status (the
        // API's, `autosync status`) and refuses the rest, and the event
        // stream's followers stay connected.
        last.answer_until(&mut commands_rx, finish).await;
        drop(last);
        tracing::info!(
            runs = summary.ended,
            queued = summary.queued,
            "service stopped"
        );
        // After the last write: what the file became (also when the
        // service was stopped before its next look), and what the process
        // holds saved when it is gone.
        if let Some(watch) = watch {
            let concluded = tokio::task::spawn_blocking(move || {
                let found = watch.found().or_else(|| watch.look(false))?;
                Some((watch.shown().to_owned(), watch.conclude(&found)))
            })
            .await
            .map_err(|e| ServiceError::Startup(e.to_string()))?;
            if let Some((shown, message)) = concluded {
                tracing::error!(store = %shown, "{message}");
                return Err(ServiceError::StoreFile(message));
            }
        }
        Ok(summary)
    }
}

/// Looks at the store file with every heartbeat of the service lease and
/// when a run starts, and reads the whole store when a run ended with an
/// error naming it; cancels `stop` (the service's graceful stop) when the
/// file is gone, another one, or damaged. Ends with `done`.
async fn watch_store(
    watch: Arc<StoreWatch>,
    mut events: broadcast::Receiver<Published>,
    stop: CancellationToken,
    done: CancellationToken,
) {
    let mut tick = tokio::time::interval(watch.every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deep = tokio::select! {
            () = done.cancelled() => return,
            _ = tick.tick() => false,
            event = events.recv() => match event {
                Ok(published) => match &published.event {
                    ServiceEvent::RunStarted { .. } => false,
                    ServiceEvent::RunEnded { message: Some(m), .. } if watch.names_store(m) => true,
                    _ => continue,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => false,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let w = watch.clone();
        let found = tokio::task::spawn_blocking(move || w.look(deep))
            .await
            .ok()
            .flatten();
        if let Some(found) = found {
            tracing::warn!(
                store = %watch.shown(),
                "the store file {} was found {}: stopping the service (runs in progress end at their next safe point)",
                watch.shown(),
                StoreWatch::seen(&found)
            );
            stop.cancel();
            return;
        }
    }
}

/// Why the service stopped by itself, once its executor ended: its store
/// file found gone, replaced or damaged (also at this last look, after a
/// stop that came before the watch's next one), else what `reason` says
/// (the lease taken over; the whole store is read then: a store
/// overwritten in place by a copy makes the lease look taken over, and
/// the file is the cause). `None` for a normal stop.
async fn stopped_why(watch: Option<Arc<StoreWatch>>, reason: Option<StopReason>) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let lost = reason.as_ref().and_then(|reason| reason());
        let Some(watch) = watch else {
            return lost;
        };
        match watch.found().or_else(|| watch.look(lost.is_some())) {
            Some(found) => Some(stop_notice(&watch, &found)),
            None => lost,
        }
    })
    .await
    .ok()
    .flatten()
}

/// What the notice of a stop on the store file `found` says, before the
/// notifier's last write: [`StoreWatch::conclude`]'s ERROR for a damaged
/// file (nothing is saved then), else what was seen and that the service
/// saves what it held, which it does after that write (its ERROR says
/// where).
fn stop_notice(watch: &StoreWatch, found: &FileState) -> String {
    if let FileState::Damaged(_) = found {
        return watch.conclude(found);
    }
    let path = watch.shown();
    format!(
        "the store file {path} was {} while the service ran: the service stopped, and saves what it held (every change until it stopped) at {path} again when nothing is there, else beside it as {path}.recovered-<time>; the ERROR it ends its log with says where and what to do (see docs/src/operations/runbook.md#the-store-file-was-deleted-replaced-or-damaged-under-the-service)",
        StoreWatch::seen(found)
    )
}

/// A staging threshold the persisted state says holds an MA, which the
/// store no longer holds: an operator approved or rejected it while no
/// service ran (`approve` and `reject` act on the store then). The hold
/// goes from the state; start-up reconciliation then asks for what the
/// connector space needs (an approved import's delta sync, for its
/// pending imports). Left in place, it held the MA's syncs for good.
/// Returns the MAs rejected (nothing is left pending): their source is
/// read again.
fn settle_offline_decisions(
    store: &dyn Store,
    state: &mut autosync_controller::machine::PersistedState,
) -> Result<Vec<String>, ServiceError> {
    let mut rejected = Vec::new();
    for (ma, control) in &mut state.mas {
        if control.threshold.is_none() {
            continue;
        }
        let held = autosync_engine::thresholds::staging_hold(store, ma).map_err(|e| {
            ServiceError::Startup(format!("cannot read the staging hold of `{ma}`: {e}"))
        })?;
        if held.is_none() {
            tracing::info!(ma = %ma, "the staging threshold was approved or rejected while no service ran: the MA's syncs run again");
            control.threshold = None;
            let pending = store
                .read()
                .and_then(|mut r| r.cs_counts(ma))
                .map(|c| c.pending_import)
                .map_err(|e| {
                    ServiceError::Startup(format!(
                        "cannot count the pending imports of `{ma}`: {e}"
                    ))
                })?;
            if pending == 0 {
                rejected.push(ma.clone());
            }
        }
    }
    Ok(rejected)
}
