//! The executor: one tokio task that owns the queues and everything that
//! runs. It wakes only on events (a run ended, a trigger asked, an operator
//! command, the stagger or reconciliation timer, shutdown), asks the pure
//! [`Scheduler`] what may start, runs each profile on a blocking thread
//! through [`SyncEngine`], and on each end calls the pure `decide` and
//! queues the follow-ups. The queues are persisted after every change.

use crate::config::ControllerConfig;
use crate::control::Control;
use crate::persist::{self, PersistedState};
use crate::status::{MaStateView, MaStatus, Status};
use autosync_controller::{
    CancelFlag, ControllerView, EngineCallError, MaState, MaView, PushOutcome, QueuedRequest,
    Request, Running, Slot, SyncEngine, decide, reconcile, resolve_profiles,
};
use autosync_model::{RunReason, RunRecord, RunStatus, StepType};
use autosync_store::Store;
use autosync_triggers::{TriggerEvent, TriggerRequest};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long an MA found busy is held back before its request is tried again.
const HOLD_BACK: std::time::Duration = std::time::Duration::from_secs(5);

/// An operator's command to a running service.
#[derive(Debug)]
pub enum Command {
    /// Queue `profile` on `ma` (back of the queue unless `run_immediate`).
    Queue {
        ma: String,
        profile: String,
        exclusive: bool,
        run_immediate: bool,
        by: String,
        reply: oneshot::Sender<Result<PushOutcome, String>>,
    },
    /// Every MA's state and queue.
    Status { reply: oneshot::Sender<Status> },
    /// An operator's control (start, stop, cancel, clear-queue, pause,
    /// resume, approve, reject, maintenance) on one MA or, with `ma: None`,
    /// on every MA / the whole service. The reply says what was done.
    Control {
        action: Control,
        ma: Option<String>,
        by: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// What a service run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Runs started and finished, in the order they ended.
    pub runs: Vec<RunRecord>,
    /// Requests still queued at the end.
    pub queued: usize,
}

/// A run in progress.
struct Active {
    running: Running,
    request: QueuedRequest,
    cancel: CancelFlag,
}

/// A run that ended.
struct Done {
    request: QueuedRequest,
    result: Result<RunRecord, EngineCallError>,
}

/// The executor's state.
pub(crate) struct Executor {
    engine: Arc<dyn SyncEngine>,
    store: Arc<dyn Store>,
    config: ControllerConfig,
    view: ControllerView,
    pub(crate) state: PersistedState,
    ma_states: BTreeMap<String, MaState>,
    active: BTreeMap<String, Active>,
    last_start: Option<Instant>,
    /// MAs held back until then (their last start found the MA busy).
    held: BTreeMap<String, Instant>,
    /// What each waiting MA waited for at the last planning.
    waiting: BTreeMap<String, String>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: Option<mpsc::UnboundedReceiver<Done>>,
    summary: Summary,
}

/// ±10 % of `d`, from the clock's sub-second noise (no RNG needed).
fn jittered(d: std::time::Duration) -> std::time::Duration {
    let nanos = chrono::Utc::now().timestamp_subsec_nanos();
    let factor = 0.9 + 0.2 * (f64::from(nanos % 1000) / 1000.0);
    d.mul_f64(factor)
}

impl Executor {
    pub(crate) fn new(
        engine: Arc<dyn SyncEngine>,
        store: Arc<dyn Store>,
        config: ControllerConfig,
        state: PersistedState,
    ) -> Executor {
        let mut view = ControllerView {
            oscillation_limit: config.oscillation_limit,
            ..ControllerView::default()
        };
        let mut ma_states = BTreeMap::new();
        for (name, ma) in &config.mas {
            let mut m = MaView::new(resolve_profiles(&ma.info, &ma.profiles));
            m.follow_ups = ma.follow_ups;
            view.mas.insert(name.clone(), m);
            let state = if ma.auto_start {
                MaState::Active
            } else {
                MaState::Stopped
            };
            ma_states.insert(name.clone(), state);
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Executor {
            engine,
            store,
            config,
            view,
            state,
            ma_states,
            active: BTreeMap::new(),
            last_start: None,
            held: BTreeMap::new(),
            waiting: BTreeMap::new(),
            done_tx,
            done_rx: Some(done_rx),
            summary: Summary::default(),
        }
    }

    /// Writes the state; a failure is logged (the service carries on).
    fn persist(&mut self) {
        self.state.running = self.active.values().map(|a| a.request.clone()).collect();
        if let Err(e) = persist::save(self.store.as_ref(), &self.state) {
            tracing::error!("{e}");
        }
    }

    /// Queues requests and persists the queues.
    pub(crate) fn push(&mut self, requests: Vec<Request>) -> Vec<PushOutcome> {
        if requests.is_empty() {
            return Vec::new();
        }
        for r in &requests {
            tracing::info!(ma = %r.ma, profile = %r.profile, reason = %r.reason, "queued");
        }
        let outcomes = self.state.queues.push_all(requests, chrono::Utc::now());
        self.persist();
        outcomes
    }

    /// Requests that were running when the last service ended without
    /// finishing them go back into their queues.
    pub(crate) fn requeue_interrupted(&mut self) {
        let interrupted = std::mem::take(&mut self.state.running);
        let requests: Vec<Request> = interrupted.iter().map(QueuedRequest::request).collect();
        self.push(requests);
    }

    /// Refreshes every MA's connector-space counts in the view.
    fn refresh_cs(&mut self) {
        for (name, m) in self.view.mas.iter_mut() {
            m.cs = match self.engine.cs_state(name) {
                Ok(cs) => Some(cs),
                Err(e) => {
                    tracing::warn!(ma = %name, "cannot read the connector space's counts: {e}");
                    None
                }
            };
        }
    }

    /// Queues what the connector spaces still need.
    pub(crate) fn reconcile(&mut self) {
        self.refresh_cs();
        let decision = reconcile(&self.view);
        for report in &decision.reports {
            tracing::warn!("{report}");
        }
        self.push(decision.requests);
    }

    /// A trigger's request.
    pub(crate) fn trigger_request(&mut self, t: TriggerRequest) {
        let mut request = Request::trigger(&t.ma, &t.profile, &t.trigger);
        request.exclusive = t.exclusive;
        request.run_immediate = t.run_immediate;
        self.push(vec![request]);
    }

    fn trigger_event(&mut self, event: TriggerEvent) {
        match event {
            TriggerEvent::Request(t) => self.trigger_request(t),
            TriggerEvent::Error(e) => tracing::warn!("{e}"),
            TriggerEvent::State { ma, key, state } => {
                self.state
                    .triggers
                    .entry(ma)
                    .or_default()
                    .insert(key, state);
                self.persist();
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Queue {
                ma,
                profile,
                exclusive,
                run_immediate,
                by,
                reply,
            } => {
                let answer = match self.config.mas.get(&ma) {
                    None => Err(format!("no management agent named `{ma}`")),
                    Some(m) if m.info.steps(&profile).is_none() => Err(format!(
                        "management agent `{ma}` has no run profile `{profile}`"
                    )),
                    Some(_) => {
                        let request = Request {
                            ma,
                            profile,
                            exclusive,
                            run_immediate,
                            reason: RunReason::Manual { by },
                            chain: Vec::new(),
                        };
                        self.push(vec![request])
                            .into_iter()
                            .next()
                            .ok_or_else(|| "nothing queued".to_owned())
                    }
                };
                let _ = reply.send(answer);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn status(&self) -> Status {
        let mut read = self.store.read().ok();
        let mas = self
            .config
            .mas
            .keys()
            .map(|name| {
                let queue: Vec<QueuedRequest> = self
                    .state
                    .queues
                    .get(name)
                    .map(|q| q.iter().cloned().collect())
                    .unwrap_or_default();
                let state = if let Some(a) = self.active.get(name) {
                    MaStateView::Running {
                        profile: a.request.profile.clone(),
                        reason: a.request.reason.to_string(),
                    }
                } else if self.ma_states.get(name).copied().unwrap_or_default() != MaState::Active {
                    MaStateView::Stopped
                } else if let Some(reason) = self.waiting.get(name) {
                    MaStateView::Waiting {
                        reason: reason.clone(),
                    }
                } else {
                    MaStateView::Idle
                };
                let last_run = read
                    .as_mut()
                    .and_then(|r| r.runs(Some(name), 1).ok())
                    .and_then(|runs| runs.into_iter().next());
                (
                    name.clone(),
                    MaStatus {
                        state,
                        queue,
                        last_run,
                    },
                )
            })
            .collect();
        Status { service: true, mas }
    }

    /// Starts what the scheduler allows; returns when to look again if the
    /// start stagger or a held-back MA holds a start back.
    fn start_ready(&mut self) -> Option<Instant> {
        let now = Instant::now();
        self.held.retain(|_, until| *until > now);
        let release = self.held.values().min().copied();
        self.start_planned().or(release)
    }

    /// Queues a request again at the front, held back for a while: the MA
    /// was busy with a run the controller did not start, or the engine was
    /// unavailable. The request is never dropped.
    fn hold_back(&mut self, request: QueuedRequest, why: &str) {
        tracing::warn!(ma = %request.ma, profile = %request.profile, "{why}; trying again in {}s", HOLD_BACK.as_secs());
        self.held
            .insert(request.ma.clone(), Instant::now() + HOLD_BACK);
        let mut again = request.request();
        again.run_immediate = true;
        self.push(vec![again]);
    }

    fn start_planned(&mut self) -> Option<Instant> {
        let running: Vec<Running> = self.active.values().map(|a| a.running.clone()).collect();
        let plan = {
            let slots: Vec<Slot<'_>> = self
                .config
                .mas
                .iter()
                .map(|(name, m)| {
                    let head = self.state.queues.peek(name);
                    Slot {
                        ma: name,
                        state: self.ma_states.get(name).copied().unwrap_or_default(),
                        in_blackout: self.held.contains_key(name.as_str()),
                        head,
                        head_has_sync: head.is_some_and(|h| m.info.has_sync(&h.profile)),
                    }
                })
                .collect();
            self.config.scheduler.plan(&running, &slots)
        };
        for (ma, reason) in &plan.waiting {
            tracing::debug!(ma = %ma, "{reason}");
        }
        self.waiting = plan
            .waiting
            .iter()
            .map(|(ma, r)| {
                let reason = if self.held.contains_key(ma) {
                    "waiting: held back after finding the MA busy".to_owned()
                } else {
                    r.to_string()
                };
                (ma.clone(), reason)
            })
            .collect();
        let stagger = self.config.start_stagger;
        for start in plan.start {
            if !stagger.is_zero()
                && !self.active.is_empty()
                && let Some(last) = self.last_start
                && last + stagger > Instant::now()
            {
                return Some(last + stagger);
            }
            let Some(request) = self.state.queues.pop(&start.ma) else {
                continue;
            };
            if request.id != start.request {
                tracing::error!(ma = %start.ma, "the queue head changed while planning; planning again");
                self.state
                    .queues
                    .push(request.request(), request.enqueued_at);
                return Some(Instant::now());
            }
            self.spawn(start.running(), request);
        }
        None
    }

    fn spawn(&mut self, running: Running, request: QueuedRequest) {
        let cancel = CancelFlag::new();
        let engine = self.engine.clone();
        let done = self.done_tx.clone();
        let (ma, profile, reason) = (
            request.ma.clone(),
            request.profile.clone(),
            request.reason.clone(),
        );
        tracing::info!(ma = %ma, profile = %profile, reason = %reason, "starting");
        let flag = cancel.clone();
        let req = request.clone();
        tokio::task::spawn_blocking(move || {
            let result = engine.run_profile(&ma, &profile, reason, flag);
            let _ = done.send(Done {
                request: req,
                result,
            });
        });
        self.last_start = Some(Instant::now());
        self.active.insert(
            running.ma.clone(),
            Active {
                running,
                request,
                cancel,
            },
        );
        self.persist();
    }

    /// A run ended: decide its follow-ups. Returns the record, if any.
    fn finished(&mut self, done: Done) -> Option<RunRecord> {
        let request = done.request;
        self.active.remove(&request.ma);
        let record = match done.result {
            Ok(record) if record.status == RunStatus::NoStartMaAlreadyRunning => {
                self.hold_back(
                    request,
                    "the MA is running a profile the controller did not start",
                );
                return None;
            }
            Ok(record) => record,
            Err(e) if e.is_retryable() => {
                self.hold_back(request, &format!("the run could not start: {e}"));
                return None;
            }
            Err(e) => {
                tracing::error!(ma = %request.ma, profile = %request.profile, "the run could not start: {e}");
                self.persist();
                return None;
            }
        };
        tracing::info!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status, "run ended"
        );
        let steps: Vec<StepType> = self
            .config
            .mas
            .get(&record.ma)
            .and_then(|m| m.info.steps(&record.profile))
            .map(<[StepType]>::to_vec)
            .unwrap_or_default();
        self.refresh_cs();
        if let Some(m) = self.view.mas.get_mut(&record.ma) {
            m.chain = request.chain.clone();
        }
        let decision = decide(&record, &steps, &self.view);
        for report in &decision.reports {
            tracing::warn!("{report}");
        }
        self.push(decision.requests);
        self.persist();
        self.summary.runs.push(record.clone());
        Some(record)
    }

    /// Nothing runs and no active MA has a queued request.
    fn quiescent(&self) -> bool {
        self.active.is_empty()
            && self.state.queues.iter().all(|(ma, q)| {
                q.is_empty()
                    || self.ma_states.get(ma).copied().unwrap_or_default() != MaState::Active
            })
    }

    /// Runs until shutdown (or, with `once`, until quiescent). `events`
    /// brings trigger events, `commands` operator commands. `on_run` sees
    /// every finished run (the service records imports for its triggers).
    pub(crate) async fn run(
        mut self,
        once: bool,
        mut events: mpsc::UnboundedReceiver<TriggerEvent>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
        on_run: &(dyn Fn(&RunRecord) + Send + Sync),
    ) -> Summary {
        let mut next_reconcile = Instant::now() + jittered(self.config.reconcile_every);
        let Some(mut done_rx) = self.done_rx.take() else {
            return self.summary;
        };
        loop {
            let stagger_wake = self.start_ready();
            if once && stagger_wake.is_none() && self.quiescent() {
                break;
            }
            let stagger_at = stagger_wake.unwrap_or_else(Instant::now);
            tokio::select! {
                Some(done) = done_rx.recv() => {
                    if let Some(record) = self.finished(done) {
                        on_run(&record);
                    }
                }
                Some(event) = events.recv() => self.trigger_event(event),
                Some(command) = commands.recv() => self.command(command),
                _ = tokio::time::sleep_until(stagger_at), if stagger_wake.is_some() => {}
                _ = tokio::time::sleep_until(next_reconcile) => {
                    self.reconcile();
                    next_reconcile = Instant::now() + jittered(self.config.reconcile_every);
                }
                _ = shutdown.cancelled() => break,
            }
        }
        self.stop(done_rx, on_run).await
    }

    /// Graceful stop: cancel running profiles at their next safe point,
    /// wait for them, queue their follow-ups, persist.
    async fn stop(
        mut self,
        mut done_rx: mpsc::UnboundedReceiver<Done>,
        on_run: &(dyn Fn(&RunRecord) + Send + Sync),
    ) -> Summary {
        if !self.active.is_empty() {
            tracing::info!(
                running = self.active.len(),
                "stopping: cancelling running profiles"
            );
        }
        for a in self.active.values() {
            a.cancel.cancel();
        }
        while !self.active.is_empty() {
            let Some(done) = done_rx.recv().await else {
                break;
            };
            let request = done.request.clone();
            if let Some(record) = self.finished(done) {
                on_run(&record);
                // What the cancelled run did not get to must run at the next
                // start: its request goes back to the front.
                if record.status == RunStatus::StoppedUserRequested {
                    let mut again = request.request();
                    again.run_immediate = true;
                    self.push(vec![again]);
                }
            }
        }
        self.persist();
        self.summary.queued = self.state.queues.total();
        self.summary
    }
}
