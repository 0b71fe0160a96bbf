//! The executor: the thin shell around the controller's state machine
//! ([`Machine`]). One tokio task receives events (trigger events, finished
//! runs and the answers of blocking work, operators' commands, the timer
//! the machine asked for), hands each to [`Machine::handle`] with the time,
//! and carries out the effects it returns ([`Executor::carry_out`], the one
//! place every effect passes). What the machine publishes is numbered and
//! broadcast to the service's followers; while runs are in progress their
//! progress is sampled about once a second for the machine to publish what
//! moved. Every engine and store call runs on a blocking thread; a status
//! request is answered from the machine's memory. Once the machine has
//! stopped, [`Stopped`] still answers the status (and refuses the rest)
//! and keeps the event stream open while the service finishes its stop.

use crate::config::ControllerConfig;
use crate::jobs;
use crate::notices::NotifierMessage;
use crate::persister::Persister;
use crate::wiring::Command;
use crate::wiring::{build_trigger_set, machine_config, request_of};
use autosync_controller::machine::{
    Answer, Effect, Event, Machine, Options, Published, Refusal, RefusalCode, ReplyId, Startup,
    Summary,
};
use autosync_controller::{
    CancelFlag, PushOutcome, QueuedRequest, Request, RunProgress, SyncEngine,
};
use autosync_model::RunReason;
use autosync_store::Store;
use autosync_triggers::{TriggerDeps, TriggerEvent, TriggerSet};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A run in progress: how to cancel it, and its live progress.
struct RunHandle {
    cancel: CancelFlag,
    progress: RunProgress,
}

/// How often the progress of the runs in progress is sampled.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// A caller waiting for the machine's answer.
enum Waiter {
    Queue(oneshot::Sender<Result<PushOutcome, Refusal>>),
    Done(oneshot::Sender<Result<String, Refusal>>),
    /// A reload's caller, which takes the refusal's sentence.
    Reload(oneshot::Sender<Result<String, String>>),
}

/// The shell's state: the machine, and what carries out its effects.
pub(crate) struct Executor {
    machine: Machine,
    engine: Arc<dyn SyncEngine>,
    store: Arc<dyn Store>,
    config: ControllerConfig,
    triggers: BTreeMap<String, TriggerSet>,
    trigger_deps: Option<TriggerDeps>,
    runs: BTreeMap<String, RunHandle>,
    waiters: BTreeMap<ReplyId, Waiter>,
    last_reply: u64,
    /// Where blocking work sends its answers.
    answers: mpsc::UnboundedSender<Event>,
    notices: mpsc::UnboundedSender<NotifierMessage>,
    persister: Persister,
    /// Where what the machine publishes goes, and the last number given.
    events: broadcast::Sender<Published>,
    seq: u64,
    /// When the progress of the runs is sampled next (only while one runs).
    sample_at: Option<Instant>,
    wake: Option<DateTime<Utc>>,
    shutdown: CancellationToken,
    once: bool,
}

impl Executor {
    pub(crate) fn new(
        engine: Arc<dyn SyncEngine>,
        store: Arc<dyn Store>,
        config: ControllerConfig,
        once: bool,
        notices: mpsc::UnboundedSender<NotifierMessage>,
        answers: mpsc::UnboundedSender<Event>,
        events: broadcast::Sender<Published>,
    ) -> Executor {
        let seed = u64::from(Utc::now().timestamp_subsec_nanos()) ^ u64::from(std::process::id());
        let machine = Machine::new(machine_config(&config), Options { once, seed });
        Executor {
            machine,
            persister: Persister::spawn(store.clone()),
            engine,
            store,
            config,
            triggers: BTreeMap::new(),
            trigger_deps: None,
            runs: BTreeMap::new(),
            waiters: BTreeMap::new(),
            last_reply: 0,
            answers,
            notices,
            events,
            seq: 0,
            sample_at: None,
            wake: None,
            shutdown: CancellationToken::new(),
            once,
        }
    }

    /// Hands the executor every MA's triggers (already started when `deps`
    /// is given; without, as with `run --once`, they only record imports).
    pub(crate) fn with_triggers(
        mut self,
        triggers: BTreeMap<String, TriggerSet>,
        deps: Option<TriggerDeps>,
    ) -> Self {
        self.triggers = triggers;
        self.trigger_deps = deps;
        self
    }

    /// Runs until shutdown (or, with `once`, until quiescent). `startup`
    /// is what the store said at start; `events` brings trigger events,
    /// `commands` operator commands, `answers` the answers of blocking work.
    /// Returns what ran once the machine has stopped (its triggers stopped,
    /// its state written), and the executor after its stop, which goes on
    /// answering `commands` ([`Stopped::answer_until`]). The notices'
    /// sender is dropped here: the notifier may end.
    pub(crate) async fn run(
        mut self,
        startup: Startup,
        mut events: mpsc::UnboundedReceiver<TriggerEvent>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        mut answers: mpsc::UnboundedReceiver<Event>,
        shutdown: CancellationToken,
    ) -> (Summary, Stopped) {
        self.shutdown = shutdown.clone();
        self.dispatch(Event::Started(Box::new(startup))).await;
        let mut stopping = false;
        while !self.machine.stopped() {
            if self.once && !stopping && self.machine.quiescent() {
                stopping = true;
                self.dispatch(Event::Shutdown).await;
                continue;
            }
            let wake = self.wake.map(instant_of);
            // Progress is sampled only while something runs: an idle
            // service keeps no timer.
            if self.runs.is_empty() {
                self.sample_at = None;
            } else if self.sample_at.is_none() {
                self.sample_at = Some(Instant::now() + PROGRESS_EVERY);
            }
            let sample = self.sample_at;
            tokio::select! {
                Some(event) = answers.recv() => self.dispatch(event).await,
                Some(event) = events.recv() => self.dispatch(trigger_event(event)).await,
                Some(command) = commands.recv() => self.command(command).await,
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.dispatch(Event::Tick).await;
                }
                _ = tokio::time::sleep_until(sample.unwrap_or_else(Instant::now)), if sample.is_some() => {
                    self.sample_at = None;
                    let progress = self
                        .runs
                        .iter()
                        .map(|(ma, run)| (ma.clone(), run.progress.get()))
                        .collect();
                    self.dispatch(Event::Progress(progress)).await;
                }
                _ = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    self.dispatch(Event::Shutdown).await;
                }
            }
        }
        for set in self.triggers.values_mut() {
            set.stop().await;
        }
        let summary = self.machine.summary().clone();
        self.persister.finish().await;
        // The rest (the notices' sender among it) is dropped here.
        let stopped = Stopped {
            machine: self.machine,
            store: self.store,
            _events: self.events,
        };
        (summary, stopped)
    }

    /// Hands one event to the machine and carries out what it says.
    async fn dispatch(&mut self, event: Event) {
        if let Event::RunEnded(end) = &event {
            self.runs.remove(&end.ma);
        }
        let effects = self.machine.handle(event, Utc::now());
        self.carry_out(effects).await;
    }

    /// Carries out the machine's effects, in order.
    async fn carry_out(&mut self, effects: Vec<Effect>) {
        self.wake = None;
        let mut persisted = None;
        for effect in effects {
            match effect {
                Effect::Start(request) => self.start(request),
                Effect::Cancel { ma } => {
                    if let Some(run) = self.runs.get(&ma) {
                        run.cancel.cancel();
                    }
                }
                Effect::Persist(state) => persisted = Some(self.persister.write(*state)),
                Effect::Notify(notice) => {
                    let _ = self.notices.send(NotifierMessage::Notice(notice));
                }
                Effect::Publish(event) => {
                    // Never waits: a follower that lags loses the oldest
                    // events (and is told how many); none listening is fine.
                    self.seq += 1;
                    let _ = self.events.send(Published {
                        seq: self.seq,
                        event,
                    });
                }
                Effect::CheckApproval { reply, ma } => {
                    let store = self.store.clone();
                    self.blocking(move || jobs::check_approval(store.as_ref(), reply, ma));
                }
                Effect::Approve {
                    reply,
                    ma,
                    stopped_export,
                } => {
                    let engine = self.engine.clone();
                    self.blocking(move || {
                        let result = engine.approve(&ma);
                        Event::Approved {
                            reply,
                            ma,
                            stopped_export,
                            result,
                        }
                    });
                }
                Effect::Reject { reply, ma } => {
                    let (engine, store) = (self.engine.clone(), self.store.clone());
                    self.blocking(move || jobs::reject(engine.as_ref(), store.as_ref(), reply, ma));
                }
                Effect::RestartTriggers { ma, start } => self.restart_triggers(&ma, start).await,
                Effect::ImportSeen { ma, at } => {
                    if let Some(set) = self.triggers.get(&ma) {
                        set.record_import(at);
                    }
                }
                Effect::ReadCounts { mas } => {
                    let engine = self.engine.clone();
                    self.blocking(move || Event::Counts(jobs::counts(engine.as_ref(), &mas)));
                }
                Effect::LookForRuns {
                    after,
                    known,
                    always,
                } => {
                    let (engine, store) = (self.engine.clone(), self.store.clone());
                    self.blocking(move || {
                        jobs::look_for_runs(engine.as_ref(), store.as_ref(), after, &known, always)
                    });
                }
                Effect::CheckRules => {
                    let engine = self.engine.clone();
                    self.blocking(move || {
                        Event::RulesChecked(engine.full_syncs_needed().map_err(|e| e.to_string()))
                    });
                }
                Effect::TrimHistory { before } => {
                    let store = self.store.clone();
                    tokio::task::spawn_blocking(move || jobs::trim_history(store.as_ref(), before));
                }
                Effect::Reply { reply, answer } => self.answer(reply, answer, persisted),
                Effect::StopService { .. } => self.shutdown.cancel(),
                Effect::Stopped => {}
                Effect::WakeAt(at) => self.wake = Some(at),
            }
        }
    }

    /// Runs `job` on a blocking thread; its event comes back to the loop.
    fn blocking(&self, job: impl FnOnce() -> Event + Send + 'static) {
        let answers = self.answers.clone();
        tokio::task::spawn_blocking(move || {
            let _ = answers.send(job());
        });
    }

    /// Starts a request's run (hooks, profile, the facts read after it).
    fn start(&mut self, request: QueuedRequest) {
        let cancel = CancelFlag::new();
        let progress = RunProgress::new();
        self.runs.insert(
            request.ma.clone(),
            RunHandle {
                cancel: cancel.clone(),
                progress: progress.clone(),
            },
        );
        let (engine, store) = (self.engine.clone(), self.store.clone());
        let hooks = self
            .config
            .mas
            .get(&request.ma)
            .map(|m| m.hooks.clone())
            .unwrap_or_default();
        let answers = self.answers.clone();
        self.blocking(move || {
            let hook_error = |e: crate::hooks::HookError| {
                tracing::warn!("{e}");
                let _ = answers.send(Event::HookFailed {
                    ma: e.ma.clone(),
                    message: e.to_string(),
                });
            };
            let end = jobs::run_request(
                engine.as_ref(),
                store.as_ref(),
                &hooks,
                &request,
                cancel,
                progress,
                hook_error,
            );
            Event::RunEnded(Box::new(end))
        });
    }

    /// Sends an answer, once the state persisted before it is written.
    fn answer(&mut self, reply: ReplyId, answer: Answer, persisted: Option<u64>) {
        let Some(waiter) = self.waiters.remove(&reply) else {
            return;
        };
        let send = move || match (waiter, answer) {
            (Waiter::Queue(tx), Answer::Queued(a)) => {
                let _ = tx.send(a);
            }
            (Waiter::Done(tx), Answer::Done(a)) => {
                let _ = tx.send(a);
            }
            (Waiter::Reload(tx), Answer::Done(a)) => {
                let _ = tx.send(a.map_err(|refusal| refusal.message));
            }
            _ => tracing::error!("an answer of the wrong kind; the caller gets none"),
        };
        match persisted {
            None => send(),
            Some(generation) => {
                let written = self.persister.written(generation);
                tokio::spawn(async move {
                    written.await;
                    send();
                });
            }
        }
    }

    fn waiter(&mut self, waiter: Waiter) -> ReplyId {
        self.last_reply += 1;
        let id = ReplyId(self.last_reply);
        self.waiters.insert(id, waiter);
        id
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Queue {
                ma,
                profile,
                exclusive,
                run_immediate,
                by,
                reply,
            } => {
                let reply = self.waiter(Waiter::Queue(reply));
                let request = Request {
                    ma,
                    profile,
                    exclusive,
                    run_immediate,
                    reason: RunReason::Manual { by },
                    chain: Vec::new(),
                };
                self.dispatch(Event::Queue { reply, request }).await;
            }
            Command::Status { reply } => {
                let runs = &self.runs;
                let mut status = self
                    .machine
                    .status(|ma| runs.get(ma).map(|r| r.progress.get()));
                // The objects with errors are in the store, off the loop.
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || {
                    crate::status::count_errors(store.as_ref(), &mut status);
                    let _ = reply.send(status);
                });
            }
            Command::Control {
                action,
                ma,
                by,
                reply,
            } => {
                let reply = self.waiter(Waiter::Done(reply));
                self.dispatch(Event::Control {
                    reply,
                    action,
                    ma,
                    by,
                })
                .await;
            }
            Command::Reload {
                engine,
                config,
                reply,
            } => {
                let reply = self.waiter(Waiter::Reload(reply));
                let machine = Box::new(machine_config(&config));
                // Notification settings take effect with the rest; repeats
                // already suppressed stay suppressed.
                let notify = config.notifications.clone();
                let _ = self.notices.send(NotifierMessage::Reconfigure(notify));
                self.engine = engine;
                self.config = *config;
                self.dispatch(Event::Reload {
                    reply,
                    config: machine,
                })
                .await;
            }
            Command::ReloadRejected { message } => {
                self.dispatch(Event::ReloadRejected { message }).await;
            }
        }
    }

    /// Stops an MA's triggers and, with `start`, builds them again from
    /// the configuration and their persisted states.
    async fn restart_triggers(&mut self, name: &str, start: bool) {
        if let Some(mut set) = self.triggers.remove(name) {
            // Cancelled now; waiting for a trigger in the middle of a probe
            // or a script call happens beside the loop, not in it.
            tokio::spawn(async move { set.stop().await });
        }
        if !start || !self.config.mas.contains_key(name) {
            return;
        }
        let states = self.machine.trigger_states(name);
        match build_trigger_set(&self.config, name, &states) {
            Ok(mut set) => {
                if let Some(deps) = &self.trigger_deps {
                    set.start(deps);
                }
                self.triggers.insert(name.to_owned(), set);
            }
            Err(errors) => {
                // Validated before the reload; report rather than stop.
                tracing::error!(ma = %name, "the triggers cannot be built: {errors}");
            }
        }
    }
}

/// The executor once the machine has stopped (nothing runs, the state is
/// written, the triggers are stopped), while the service finishes its
/// stop (the notifier sends what it holds, up to
/// [`autosync_notify::STOP_WITHIN`]): the status is still answered, from
/// the stopped machine, and the event stream stays open; every other
/// command is refused (`service-stopping`): nothing can be done any more.
pub(crate) struct Stopped {
    machine: Machine,
    store: Arc<dyn Store>,
    /// Kept so that the event stream's followers stay connected until the
    /// service has ended.
    _events: broadcast::Sender<Published>,
}

impl Stopped {
    /// Answers `commands` until `done` (the rest of the service's stop)
    /// completes; returns its output. The event stream ends when this is
    /// dropped.
    pub(crate) async fn answer_until<T>(
        &self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        done: impl std::future::Future<Output = T>,
    ) -> T {
        tokio::pin!(done);
        loop {
            tokio::select! {
                out = &mut done => return out,
                Some(command) = commands.recv() => self.command(command),
            }
        }
    }

    fn command(&self, command: Command) {
        match command {
            Command::Status { reply } => {
                let mut status = self.machine.status(|_| None);
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || {
                    crate::status::count_errors(store.as_ref(), &mut status);
                    let _ = reply.send(status);
                });
            }
            Command::Queue { reply, .. } => {
                let _ = reply.send(Err(last_phase()));
            }
            Command::Control { reply, .. } => {
                let _ = reply.send(Err(last_phase()));
            }
            Command::Reload { reply, .. } => {
                let _ = reply.send(Err(last_phase().message));
            }
            Command::ReloadRejected { message } => {
                tracing::error!(
                    "the configuration reload was refused (not notified: the service is stopping): {message}"
                );
            }
        }
    }
}

/// The refusal of every command but the status once the machine has
/// stopped.
fn last_phase() -> Refusal {
    Refusal::new(
        RefusalCode::ServiceStopping,
        "the service is stopping (a graceful stop): it has stopped its runs and written its state, and is sending its last notifications; nothing more is done: ask again once it has stopped (without a service, the command acts on the store) or started again",
    )
}

/// What a trigger tells the controller, as an event.
fn trigger_event(event: TriggerEvent) -> Event {
    match event {
        TriggerEvent::Request(t) => Event::Triggered(request_of(t)),
        TriggerEvent::Error(e) => {
            tracing::warn!("{e}");
            Event::TriggerFailed {
                message: e.to_string(),
                ma: e.ma,
                trigger: e.trigger,
            }
        }
        TriggerEvent::State { ma, key, state } => Event::TriggerState {
            ma,
            key,
            state: serde_json::to_value(state).unwrap_or(serde_json::Value::Null),
        },
    }
}

/// The tokio instant of a wall-clock time (now, when it is past; at most
/// a day ahead: the machine then says again when it wants to wake).
fn instant_of(at: DateTime<Utc>) -> Instant {
    const LONGEST: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    Instant::now() + wait.min(LONGEST)
}
