//! The executor: one tokio task that owns the queues and everything that
//! runs. It wakes only on events (a run ended, a trigger asked, an operator
//! command, the stagger or reconciliation timer, shutdown), asks the pure
//! [`Scheduler`] what may start, runs each profile on a blocking thread
//! through [`SyncEngine`], and on each end calls the pure `decide` and
//! queues the follow-ups. The queues are persisted after every change.

use crate::config::ControllerConfig;
use crate::control::Control;
use crate::hooks::{AfterDecision, BeforeDecision};
use crate::persist::{self, Failed, HeldThreshold, MaControl, PersistedState, Since};
use crate::status::{MaStateView, MaStatus, Status};
use autosync_controller::{
    CancelFlag, ControllerView, EngineCallError, MaState, MaView, PushOutcome, QueuedRequest,
    Request, RetryDecision, RunProgress, Running, Slot, SyncEngine, decide, reconcile,
    resolve_profiles,
};
use autosync_model::{RunReason, RunRecord, RunStatus, StepCounters, StepType};
use autosync_store::Store;
use autosync_triggers::{BuildContext, TriggerDeps, TriggerEvent, TriggerRequest, TriggerSet};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long an MA found busy is held back before its request is tried again.
const HOLD_BACK: std::time::Duration = std::time::Duration::from_secs(5);
/// The first trim of the run history after start, then every `TRIM_EVERY`.
const FIRST_TRIM: std::time::Duration = std::time::Duration::from_secs(60);
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// How often the store is checked for runs the controller did not start.
const UNMANAGED_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// An operator's command to a running service.
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
    /// A new configuration was loaded and validated (and its engine built):
    /// switch to it. Running profiles finish on the engine they started on;
    /// MAs whose definition changed get new triggers; requests for MAs or
    /// profiles that no longer exist are dropped with a warning. The reply
    /// says what changed.
    Reload {
        engine: Arc<dyn SyncEngine>,
        config: Box<ControllerConfig>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// A configuration reload was refused (it did not load or validate):
    /// the running one stays; the notice goes to operators.
    ReloadRejected { message: String },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Queue { ma, profile, .. } => {
                write!(f, "Queue {{ ma: {ma:?}, profile: {profile:?} }}")
            }
            Command::Status { .. } => f.write_str("Status"),
            Command::Control { action, ma, by, .. } => {
                write!(f, "Control {{ action: {action}, ma: {ma:?}, by: {by:?} }}")
            }
            Command::Reload { .. } => f.write_str("Reload"),
            Command::ReloadRejected { message } => write!(f, "ReloadRejected({message:?})"),
        }
    }
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
    progress: RunProgress,
}

/// Something an operator should hear about (logged; sent by the notifier
/// when one is configured).
#[derive(Clone, Debug)]
pub(crate) enum Notice {
    /// A run ended (the notifier decides, by status, whether it is news).
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
        run_id: autosync_model::RunId,
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
    /// A reload was accepted: notify through these settings from now on
    /// (none: stop notifying), keeping what was already sent.
    Reconfigure(Option<autosync_notify::NotifyConfig>),
}

/// The MA's first run profile with a full sync step, if any.
fn full_sync_profile(ma: &crate::config::MaControllerConfig) -> Option<String> {
    ma.info
        .profiles
        .iter()
        .find(|(_, steps)| steps.contains(&StepType::FullSync))
        .map(|(p, _)| p.clone())
}

/// Retries of a run that completed with per-object errors.
struct ObjectRetry {
    /// Retries made so far (this one included, once due).
    attempt: u32,
    /// When it is due, and what to queue then; `None` once queued.
    due: Option<(Instant, Request)>,
}

/// Whether a status says the run completed with per-object errors that a
/// later run of the same profile tries again (their objects keep their
/// pending import or export).
fn is_object_errors(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::CompletedSyncErrors | RunStatus::CompletedExportErrors
    )
}

/// A run that ended (or that its before hook skipped).
struct Done {
    request: QueuedRequest,
    result: Result<RunRecord, EngineCallError>,
    /// The before hook said not to run it (why).
    skipped: Option<String>,
    /// What the after hook decided.
    after: AfterDecision,
}

/// The executor's state.
pub(crate) struct Executor {
    engine: Arc<dyn SyncEngine>,
    store: Arc<dyn Store>,
    config: ControllerConfig,
    view: ControllerView,
    pub(crate) state: PersistedState,
    active: BTreeMap<String, Active>,
    last_start: Option<Instant>,
    /// MAs held back until then (their last start found the MA busy).
    held: BTreeMap<String, Instant>,
    /// Runs that completed with per-object errors, to run again after a
    /// backoff (by MA and profile): the attempts so far, and when the next
    /// one is due with its request (none while one is queued or running).
    object_retries: BTreeMap<(String, String), ObjectRetry>,
    /// What each waiting MA waited for at the last planning.
    waiting: BTreeMap<String, String>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: Option<mpsc::UnboundedReceiver<Done>>,
    summary: Summary,
    /// Where notices go.
    notices: Option<mpsc::UnboundedSender<Notice>>,
    /// Every MA's triggers, and what they need to run (none with `once`).
    triggers: BTreeMap<String, TriggerSet>,
    trigger_deps: Option<TriggerDeps>,
    /// Cancelled by an after hook that stops the service.
    shutdown: CancellationToken,
    /// Runs after `state.last_seen_run` already handled (ours, or
    /// unmanaged ones that ended).
    seen: std::collections::BTreeSet<autosync_model::RunId>,
    /// Runs in progress that another process started, per MA: they hold
    /// their locks in the scheduler until they end.
    unmanaged: BTreeMap<String, RunRecord>,
    /// MAs whose rules changed since their last full sync, with why, until
    /// one runs.
    full_sync_needed: BTreeMap<String, String>,
    /// The state changed since it was last written.
    dirty: bool,
}

/// A number in `[-1, 1]` from the clock's sub-second noise (no RNG needed).
fn jitter_unit() -> f64 {
    let nanos = chrono::Utc::now().timestamp_subsec_nanos();
    f64::from(nanos % 1000) / 500.0 - 1.0
}

/// ±10 % of `d`.
fn jittered(d: std::time::Duration) -> std::time::Duration {
    d.mul_f64(1.0 + 0.1 * jitter_unit())
}

/// "1 MA" / "3 MAs".
fn count_mas(n: usize) -> String {
    if n == 1 {
        "1 management agent".to_owned()
    } else {
        format!("{n} management agents")
    }
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
        for (name, ma) in &config.mas {
            let mut m = MaView::new(resolve_profiles(&ma.info, &ma.profiles));
            m.follow_ups = ma.follow_ups;
            view.mas.insert(name.clone(), m);
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Executor {
            engine,
            store,
            config,
            view,
            state,
            active: BTreeMap::new(),
            last_start: None,
            held: BTreeMap::new(),
            object_retries: BTreeMap::new(),
            waiting: BTreeMap::new(),
            done_tx,
            done_rx: Some(done_rx),
            summary: Summary::default(),
            notices: None,
            triggers: BTreeMap::new(),
            trigger_deps: None,
            shutdown: CancellationToken::new(),
            seen: std::collections::BTreeSet::new(),
            unmanaged: BTreeMap::new(),
            full_sync_needed: BTreeMap::new(),
            dirty: false,
        }
    }

    /// The MAs whose rules changed since their last full sync (a
    /// configuration edited while the service was stopped, or reloaded):
    /// with `full_sync_on_rule_change` their full syncs are queued; by
    /// default the service asks for them (in `status`, the log and a
    /// notification) and leaves the choice to an operator.
    pub(crate) fn check_rules_applied(&mut self) {
        let needed = match self.engine.full_syncs_needed() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("cannot tell which MAs need a full sync: {e}");
                return;
            }
        };
        for (ma, because) in needed {
            let Some(config) = self.config.mas.get(&ma) else {
                continue;
            };
            match full_sync_profile(config) {
                Some(p) if self.config.full_sync_on_rule_change => {
                    tracing::info!(ma = %ma, profile = %p, "{because}: full sync queued");
                    self.push(vec![Request {
                        ma: ma.clone(),
                        profile: p,
                        exclusive: false,
                        run_immediate: false,
                        reason: RunReason::Reconciliation {
                            because: because.clone(),
                        },
                        chain: Vec::new(),
                    }]);
                }
                profile => {
                    if self.full_sync_needed.get(&ma) == Some(&because) {
                        continue;
                    }
                    let how = match profile {
                        Some(p) => format!("`autosync queue {ma} {p}`"),
                        None => format!("a run profile with a full sync step on `{ma}`"),
                    };
                    tracing::warn!(ma = %ma, "{because}: a full sync re-applies the rules; queue one with {how}, or set `full_sync_on_rule_change = true`");
                    self.full_sync_needed.insert(ma.clone(), because.clone());
                    self.notice(Notice::FullSyncNeeded { ma, because });
                }
            }
        }
    }

    /// The id of the newest run in the store (0 when none or unreadable).
    fn newest_run_id(&self) -> autosync_model::RunId {
        self.store
            .read()
            .ok()
            .and_then(|mut r| r.runs(None, 1).ok())
            .and_then(|runs| runs.first().map(|r| r.id))
            .unwrap_or(0)
    }

    /// Runs that exist now are history: reconciliation at start covers
    /// what they left to do, so only later runs count as unmanaged.
    pub(crate) fn skip_past_runs(&mut self) {
        let newest = self.newest_run_id();
        self.state.last_seen_run = self.state.last_seen_run.max(newest);
        self.seen.clear();
    }

    /// Looks for runs the controller did not start (e.g. `autosync
    /// run-profile` while the service runs): one in progress holds its
    /// MA's locks; one that ended is handled as the controller's own
    /// (follow-ups, thresholds, notifications). Cheap when nothing changed:
    /// one read of the newest run id.
    pub(crate) fn poll_unmanaged(&mut self) {
        let newest = self.newest_run_id();
        if newest <= self.state.last_seen_run && self.unmanaged.is_empty() {
            return;
        }
        let runs = match self.engine.runs_since(self.state.last_seen_run) {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!("cannot read the runs started outside the controller: {e}");
                return;
            }
        };
        let mut cursor_blocked = false;
        let cursor_before = self.state.last_seen_run;
        for run in runs {
            let handled = self.seen.contains(&run.id);
            if run.status == RunStatus::InProgress {
                cursor_blocked = true;
                if !self.active.contains_key(&run.ma) && !handled {
                    if !self.unmanaged.contains_key(&run.ma) {
                        tracing::info!(ma = %run.ma, profile = %run.profile, run_id = run.id, "a run started outside the controller is in progress; its MA's locks are held until it ends");
                    }
                    self.unmanaged.insert(run.ma.clone(), run);
                }
                continue;
            }
            if !handled {
                let ours_in_flight = self.active.contains_key(&run.ma)
                    && self.unmanaged.get(&run.ma).is_none_or(|u| u.id != run.id);
                if ours_in_flight {
                    // Ours, ending now: `finished` handles it.
                    cursor_blocked = true;
                    continue;
                }
                if self.unmanaged.get(&run.ma).is_some_and(|u| u.id == run.id) {
                    self.unmanaged.remove(&run.ma);
                }
                self.seen.insert(run.id);
                if run.status != RunStatus::NoStartMaAlreadyRunning {
                    tracing::info!(ma = %run.ma, profile = %run.profile, run_id = run.id, status = %run.status, "a run started outside the controller ended; its follow-ups are queued");
                    self.followed_up(&run, Vec::new());
                    self.notice(Notice::RunEnded(run.clone()));
                }
            }
            if !cursor_blocked {
                self.state.last_seen_run = run.id;
                self.seen.retain(|id| *id > run.id);
            }
        }
        if self.state.last_seen_run != cursor_before {
            self.persist();
        }
    }

    /// Hands the executor every MA's triggers; with `deps` they start now
    /// (without, as with `run --once`, they only record imports).
    pub(crate) fn with_triggers(
        mut self,
        triggers: BTreeMap<String, TriggerSet>,
        deps: Option<TriggerDeps>,
    ) -> Self {
        self.triggers = triggers;
        self.trigger_deps = deps;
        if let Some(deps) = &self.trigger_deps {
            for set in self.triggers.values_mut() {
                set.start(deps);
            }
        }
        self
    }

    /// Stops every trigger (their states were persisted as they changed).
    async fn stop_triggers(&mut self) {
        for set in self.triggers.values_mut() {
            set.stop().await;
        }
    }

    /// Switches to a new configuration and engine (see [`Command::Reload`]).
    async fn reload(
        &mut self,
        engine: Arc<dyn SyncEngine>,
        config: ControllerConfig,
    ) -> Result<String, String> {
        let old = std::mem::replace(&mut self.config, config);
        self.engine = engine;
        let mut changed = Vec::new();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut rules_changed = Vec::new();
        for (name, ma) in &self.config.mas {
            match old.mas.get(name) {
                None => added.push(name.clone()),
                Some(o) if o.fingerprint != ma.fingerprint => {
                    changed.push(name.clone());
                    if o.rules_fingerprint != ma.rules_fingerprint {
                        rules_changed.push(name.clone());
                    }
                }
                Some(_) => {}
            }
        }
        for name in old.mas.keys() {
            if !self.config.mas.contains_key(name) {
                removed.push(name.clone());
            }
        }
        // The view: new profiles and follow-up settings, chains kept.
        let mut view = ControllerView {
            oscillation_limit: self.config.oscillation_limit,
            ..ControllerView::default()
        };
        for (name, ma) in &self.config.mas {
            let mut m = MaView::new(resolve_profiles(&ma.info, &ma.profiles));
            m.follow_ups = ma.follow_ups;
            if let Some(o) = self.view.mas.get(name) {
                m.chain = o.chain.clone();
                m.cs = o.cs;
            }
            view.mas.insert(name.clone(), m);
        }
        self.view = view;
        // Requests that no longer make sense are dropped, loudly.
        let mut dropped = Vec::new();
        let names: Vec<String> = self
            .state
            .queues
            .iter()
            .map(|(n, _)| n.to_owned())
            .collect();
        for name in names {
            let stale: Vec<QueuedRequest> = self
                .state
                .queues
                .get(&name)
                .map(|q| {
                    q.iter()
                        .filter(|r| {
                            self.config
                                .mas
                                .get(&name)
                                .is_none_or(|m| m.info.steps(&r.profile).is_none())
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for r in stale {
                self.state.queues.get_mut(&name).remove(r.id);
                tracing::warn!(ma = %r.ma, profile = %r.profile, "dropped a queued request: the new configuration has no such management agent or run profile");
                dropped.push(format!("{} {}", r.ma, r.profile));
            }
        }
        for name in &removed {
            self.state.mas.remove(name);
        }
        // Triggers: MAs that changed, came or went get new ones.
        let restart: Vec<String> = changed
            .iter()
            .chain(added.iter())
            .chain(removed.iter())
            .cloned()
            .collect();
        for name in &restart {
            if let Some(mut set) = self.triggers.remove(name) {
                set.stop().await;
            }
            let Some(ma) = self.config.mas.get(name).filter(|m| m.enabled) else {
                continue;
            };
            let profiles: Vec<String> = ma.info.profiles.keys().cloned().collect();
            let ctx = BuildContext {
                ma: name,
                base_dir: &self.config.base_dir,
                default_watch_path: ma.connector_path.as_deref(),
                profiles: &profiles,
            };
            let empty = BTreeMap::new();
            let states = self.state.triggers.get(name).unwrap_or(&empty);
            match TriggerSet::build(&ctx, &ma.triggers, states) {
                Ok(mut set) => {
                    if let Some(deps) = &self.trigger_deps {
                        set.start(deps);
                    }
                    self.triggers.insert(name.clone(), set);
                }
                Err(errors) => {
                    // Validated before the reload; report rather than stop.
                    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    tracing::error!(ma = %name, "the triggers cannot be built: {}", text.join("; "));
                }
            }
        }
        // Changed sync rules: a full sync recomputes what they produce.
        let mut full_syncs = Vec::new();
        if !rules_changed.is_empty() {
            let sources: Vec<String> = self
                .config
                .mas
                .iter()
                .filter(|(n, m)| rules_changed.contains(n) || m.imports)
                .map(|(n, _)| n.clone())
                .collect();
            for name in sources {
                let Some(ma) = self.config.mas.get(&name) else {
                    continue;
                };
                match full_sync_profile(ma) {
                    Some(p) if self.config.full_sync_on_rule_change => {
                        full_syncs.push(format!("{name} {p}"));
                        self.push(vec![Request {
                            ma: name.clone(),
                            profile: p,
                            exclusive: false,
                            run_immediate: false,
                            reason: RunReason::Reconciliation {
                                because: "the synchronisation rules changed".to_owned(),
                            },
                            chain: Vec::new(),
                        }]);
                    }
                    Some(p) => full_syncs.push(format!("{name} {p}")),
                    None => full_syncs.push(format!("{name} (no full-sync profile)")),
                }
            }
        }
        self.persist();
        // What changed is now known to the status and the notifications
        // too (the full syncs queued above are not queued twice).
        self.check_rules_applied();
        // Notification settings take effect with the rest; repeats already
        // suppressed stay suppressed.
        self.notice(Notice::Reconfigure(self.config.notifications.clone()));
        let mut parts = vec!["configuration reloaded".to_owned()];
        let list = |v: &[String]| v.join(", ");
        if !changed.is_empty() {
            parts.push(format!("changed: {}", list(&changed)));
        }
        if !added.is_empty() {
            parts.push(format!("added: {}", list(&added)));
        }
        if !removed.is_empty() {
            parts.push(format!("removed: {}", list(&removed)));
        }
        if changed.is_empty() && added.is_empty() && removed.is_empty() {
            parts.push("no management agent changed".to_owned());
        }
        if !dropped.is_empty() {
            parts.push(format!("dropped queued requests: {}", list(&dropped)));
        }
        if !full_syncs.is_empty() {
            if self.config.full_sync_on_rule_change {
                parts.push(format!(
                    "sync rules changed; full syncs queued: {}",
                    list(&full_syncs)
                ));
            } else {
                parts.push(format!(
                    "sync rules changed; these need a full sync (queue them, or set `full_sync_on_rule_change = true`): {}",
                    list(&full_syncs)
                ));
            }
        }
        Ok(parts.join("; "))
    }

    /// Sends notices to `tx` (the notifier's task).
    pub(crate) fn with_notices(mut self, tx: mpsc::UnboundedSender<Notice>) -> Self {
        self.notices = Some(tx);
        self
    }

    fn notice(&self, notice: Notice) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(notice);
        }
    }

    /// Whether the scheduler may start runs of `ma`: an operator's start or
    /// stop wins over the configuration's `auto_start`.
    fn ma_state(&self, ma: &str) -> MaState {
        let Some(config) = self.config.mas.get(ma).filter(|m| m.enabled) else {
            return MaState::Disabled;
        };
        match self.state.mas.get(ma).and_then(|c| c.started) {
            Some(true) => MaState::Active,
            Some(false) => MaState::Stopped,
            None if config.auto_start => MaState::Active,
            None => MaState::Stopped,
        }
    }

    fn control_of(&mut self, ma: &str) -> &mut MaControl {
        self.state.mas.entry(ma.to_owned()).or_default()
    }

    /// Sync requests of an MA whose staging threshold waits for an
    /// operator are held with it (nothing of what was staged may flow);
    /// returns the other requests.
    fn divert_held(&mut self, requests: Vec<Request>) -> Vec<Request> {
        let mut rest = Vec::with_capacity(requests.len());
        for r in requests {
            let holds = self
                .config
                .mas
                .get(&r.ma)
                .is_some_and(|m| m.info.has_sync(&r.profile));
            match self
                .state
                .mas
                .get_mut(&r.ma)
                .and_then(|c| c.threshold.as_mut())
            {
                Some(t) if holds => {
                    if !t.held.iter().any(|h| h.profile == r.profile) {
                        tracing::info!(ma = %r.ma, profile = %r.profile, "held until the staging threshold is approved or rejected");
                        t.held.push(r);
                    }
                }
                _ => rest.push(r),
            }
        }
        rest
    }

    /// Writes the state; a failure is logged (the service carries on).
    /// Marks the state for writing at the end of this turn of the loop
    /// (after the starts it allows: a follow-up never waits for a store
    /// write). Nothing is lost if the process dies before the write: the
    /// previous state still holds the request, and reconciliation finds
    /// what a finished run left to do.
    fn persist(&mut self) {
        self.dirty = true;
    }

    /// Writes the state if it changed; a failure is logged (the service
    /// carries on and writes again at the next change).
    pub(crate) fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.state.running = self.active.values().map(|a| a.request.clone()).collect();
        if let Err(e) = persist::save(self.store.as_ref(), &self.state) {
            tracing::error!("{e}");
            self.dirty = true;
        }
    }

    /// Queues requests and persists the queues.
    pub(crate) fn push(&mut self, requests: Vec<Request>) -> Vec<PushOutcome> {
        let requests = self.divert_held(requests);
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
    ///
    /// A request whose run did complete (the process died after the run
    /// ended, before the state was written) is not run again: its run is in
    /// the history with the request's reason, started after it was queued,
    /// and not closed as `stopped-server` by the crash. What it left to do
    /// is found by reconciliation.
    pub(crate) fn requeue_interrupted(&mut self) {
        let interrupted = std::mem::take(&mut self.state.running);
        let mut requests = Vec::new();
        for r in &interrupted {
            let completed = self
                .store
                .read()
                .ok()
                .and_then(|mut read| read.runs(Some(&r.ma), 100).ok())
                .and_then(|runs| {
                    runs.into_iter().find(|run| {
                        run.profile == r.profile
                            && run.reason == r.reason
                            && run.started_at >= r.enqueued_at
                            && run.ended_at.is_some()
                            && !matches!(
                                run.status,
                                RunStatus::StoppedServer
                                    | RunStatus::InProgress
                                    | RunStatus::NoStartMaAlreadyRunning
                                    | RunStatus::StoppedUserRequested
                            )
                    })
                });
            match completed {
                Some(run) => tracing::info!(
                    ma = %r.ma, profile = %r.profile, run_id = run.id, status = %run.status,
                    "the run of an interrupted request had completed; not run again"
                ),
                None => requests.push(r.request()),
            }
        }
        self.push(requests);
    }

    /// Refreshes every MA's connector-space counts in the view.
    fn refresh_cs(&mut self) {
        self.refresh_cs_of(|_| true);
    }

    /// Refreshes the connector-space counts of the MAs `which` selects.
    fn refresh_cs_of(&mut self, which: impl Fn(&str) -> bool) {
        for (name, m) in self.view.mas.iter_mut() {
            if !which(name) {
                continue;
            }
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
        let control = self.control_of(&t.ma);
        if control.paused {
            if !control
                .deferred
                .iter()
                .any(|d| d.profile == request.profile && d.exclusive == request.exclusive)
            {
                tracing::info!(ma = %t.ma, profile = %t.profile, trigger = %t.trigger, "triggers paused: the request waits for resume");
                control.deferred.push(request);
            }
            self.persist();
            return;
        }
        self.push(vec![request]);
    }

    fn trigger_event(&mut self, event: TriggerEvent) {
        match event {
            TriggerEvent::Request(t) => self.trigger_request(t),
            TriggerEvent::Error(e) => {
                tracing::warn!("{e}");
                self.notice(Notice::TriggerError {
                    message: e.to_string(),
                    ma: e.ma,
                    trigger: e.trigger,
                });
            }
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
                    Some(m)
                        if m.info.has_sync(&profile)
                            && self
                                .state
                                .mas
                                .get(&ma)
                                .is_some_and(|c| c.threshold.is_some()) =>
                    {
                        Err(format!(
                            "`{ma}` waits for an operator: an import went over a staging threshold, so its syncs are held; `autosync approve {ma}` lets the staged changes flow, `autosync reject {ma}` discards them"
                        ))
                    }
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
                self.flush();
                let _ = reply.send(answer);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Reload { reply, .. } => {
                let _ = reply.send(Err("the service is stopping".to_owned()));
            }
            Command::ReloadRejected { message } => {
                tracing::error!("{message}");
                self.notice(Notice::ReloadRejected { message });
            }
            Command::Control {
                action,
                ma,
                by,
                reply,
            } => {
                let answer = self.control(action, ma.as_deref(), &by);
                match &answer {
                    Ok(message) => tracing::info!(by = %by, action = %action, "{message}"),
                    Err(message) => {
                        tracing::warn!(by = %by, action = %action, "refused: {message}")
                    }
                }
                self.persist();
                self.flush();
                let _ = reply.send(answer);
            }
        }
    }

    /// The MAs an action applies to: the one named, or every MA.
    fn targets(&self, action: Control, ma: Option<&str>) -> Result<Vec<String>, String> {
        match ma {
            Some(_) if action.global_only() => Err(format!(
                "`{action}` applies to the whole service, not to one management agent"
            )),
            Some(name) if self.config.mas.contains_key(name) => Ok(vec![name.to_owned()]),
            Some(name) => Err(format!(
                "no management agent named `{name}` (management agents: {})",
                self.config
                    .mas
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None if action.needs_ma() => Err(format!("`{action}` needs a management agent")),
            None => Ok(self.config.mas.keys().cloned().collect()),
        }
    }

    /// Carries out an operator's control; the answer says what was done.
    fn control(&mut self, action: Control, ma: Option<&str>, by: &str) -> Result<String, String> {
        let targets = self.targets(action, ma)?;
        let one = targets.first().cloned().unwrap_or_default();
        let now = chrono::Utc::now();
        match action {
            Control::Start => {
                if let Some(m) = ma
                    && self.ma_state(m) == MaState::Disabled
                {
                    return Err(format!(
                        "`{m}` is disabled in the configuration (`enabled = false` under its `[ma.controller]`); enable it and reload"
                    ));
                }
                for t in &targets {
                    let c = self.control_of(t);
                    c.started = Some(true);
                    c.failed = None;
                    c.attempts = 0;
                    self.held.remove(t);
                }
                Ok(match ma {
                    Some(m) => format!("started `{m}`"),
                    None => format!("started {}", count_mas(targets.len())),
                })
            }
            Control::Stop => {
                for t in &targets {
                    self.control_of(t).started = Some(false);
                }
                let running: Vec<String> = targets
                    .iter()
                    .filter_map(|t| {
                        self.active
                            .get(t)
                            .map(|a| format!("`{}` on `{t}`", a.request.profile))
                    })
                    .collect();
                let what = match ma {
                    Some(m) => format!("stopped `{m}`"),
                    None => format!("stopped {}", count_mas(targets.len())),
                };
                Ok(if running.is_empty() {
                    format!("{what}: no new run starts; queued requests are kept")
                } else {
                    format!(
                        "{what}: no new run starts; queued requests are kept; still running: {} (cancel with `autosync cancel MA`)",
                        running.join(", ")
                    )
                })
            }
            Control::Cancel => match self.active.get(&one) {
                Some(a) => {
                    a.cancel.cancel();
                    Ok(format!(
                        "cancelling `{}` on `{one}`: it stops at its next safe point, keeping what it committed",
                        a.request.profile
                    ))
                }
                None => Err(format!("`{one}` is not running a profile")),
            },
            Control::ClearQueue => {
                let dropped = self.state.queues.get_mut(&one).clear();
                let deferred = std::mem::take(&mut self.control_of(&one).deferred);
                Ok(format!(
                    "dropped {} queued request(s) of `{one}`{}",
                    dropped.len() + deferred.len(),
                    if deferred.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} waiting for resume)", deferred.len())
                    }
                ))
            }
            Control::Pause => {
                for t in &targets {
                    self.control_of(t).paused = true;
                }
                Ok(format!(
                    "paused the triggers of {}: their requests wait for resume; follow-ups still run",
                    ma.map_or_else(|| count_mas(targets.len()), |m| format!("`{m}`"))
                ))
            }
            Control::Resume => {
                let mut deferred = Vec::new();
                for t in &targets {
                    let c = self.control_of(t);
                    c.paused = false;
                    deferred.append(&mut c.deferred);
                }
                let n = deferred.len();
                self.push(deferred);
                Ok(format!(
                    "resumed the triggers of {}; {n} request(s) that waited are queued",
                    ma.map_or_else(|| count_mas(targets.len()), |m| format!("`{m}`"))
                ))
            }
            Control::Approve => self.approve(&one),
            Control::Reject => self.reject(&one),
            Control::Maintenance => {
                self.state.maintenance = Some(Since {
                    by: by.to_owned(),
                    at: now,
                });
                Ok(format!(
                    "maintenance mode on: no run starts ({} running finish); triggers still queue",
                    self.active.len()
                ))
            }
            Control::EndMaintenance => {
                if self.state.maintenance.take().is_none() {
                    return Err("maintenance mode is not on".to_owned());
                }
                Ok("maintenance mode off: queued runs start".to_owned())
            }
        }
    }

    /// Lets what a threshold stopped flow: the held syncs are queued (run
    /// immediately), and an export stopped at the deletion threshold is
    /// queued again.
    fn approve(&mut self, ma: &str) -> Result<String, String> {
        let store = self.store.as_ref();
        let stopped_export = autosync_engine::thresholds::deletion_stop(store, ma)
            .map_err(|e| e.to_string())?
            .is_some();
        let held_staging = autosync_engine::thresholds::staging_hold(store, ma)
            .map_err(|e| e.to_string())?
            .is_some();
        let threshold = self.control_of(ma).threshold.take();
        if threshold.is_none() && !stopped_export && !held_staging {
            return Err(format!(
                "`{ma}` waits for no approval (no staging threshold exceeded, and no export stopped at the deletion threshold)"
            ));
        }
        let message = self.engine.approve(ma).map_err(|e| e.to_string())?;
        let mut queued: Vec<Request> = threshold.map(|t| t.held).unwrap_or_default();
        if stopped_export
            && let Some(export) = self
                .view
                .mas
                .get(ma)
                .and_then(|m| m.profiles.export.clone().ok())
        {
            queued.push(Request {
                ma: ma.to_owned(),
                profile: export,
                exclusive: false,
                run_immediate: true,
                reason: RunReason::Manual {
                    by: "approve".to_owned(),
                },
                chain: Vec::new(),
            });
        }
        for r in &mut queued {
            r.run_immediate = true;
        }
        let n = queued.len();
        self.push(queued);
        Ok(format!("{message}; {n} request(s) queued"))
    }

    /// Discards what a threshold stopped: the changes an import staged over
    /// a staging threshold, the pending deletes of an export stopped at
    /// the deletion threshold. When the dropped deletes leave objects to be
    /// joined again, the MA's delta sync is queued.
    fn reject(&mut self, ma: &str) -> Result<String, String> {
        if let Some(a) = self.active.get(ma) {
            return Err(format!(
                "`{ma}` is running `{}`; reject again when it ends",
                a.request.profile
            ));
        }
        let message = self.engine.reject(ma).map_err(|e| e.to_string())?;
        self.control_of(ma).threshold = None;
        self.persist();
        let pending = self
            .store
            .read()
            .and_then(|mut r| r.cs_counts(ma))
            .map(|c| c.pending_import)
            .unwrap_or(0);
        if pending > 0
            && let Some(sync) = self
                .view
                .mas
                .get(ma)
                .and_then(|m| m.profiles.delta_sync.clone().ok())
        {
            self.push(vec![Request {
                ma: ma.to_owned(),
                profile: sync,
                exclusive: false,
                run_immediate: false,
                reason: RunReason::Manual {
                    by: "reject".to_owned(),
                },
                chain: Vec::new(),
            }]);
        }
        Ok(message)
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
                let control = self.state.mas.get(name);
                let state = if let Some(u) = self.unmanaged.get(name) {
                    MaStateView::Running {
                        profile: u.profile.clone(),
                        reason: format!("started outside the controller (run {})", u.id),
                        step: None,
                        step_index: None,
                        processed: 0,
                        expected: None,
                    }
                } else if let Some(a) = self.active.get(name) {
                    let p = a.progress.get();
                    MaStateView::Running {
                        profile: a.request.profile.clone(),
                        reason: a.request.reason.to_string(),
                        step: p.step.map(|s| s.to_string()),
                        step_index: p.step_index,
                        processed: p.processed,
                        expected: p.expected,
                    }
                } else if let Some(v) = control.and_then(MaStateView::from_control) {
                    v
                } else if self.ma_state(name) == MaState::Disabled {
                    MaStateView::Disabled
                } else if self.ma_state(name) != MaState::Active {
                    MaStateView::Stopped
                } else if self.state.maintenance.is_some() && !queue.is_empty() {
                    MaStateView::Waiting {
                        reason: "maintenance mode".to_owned(),
                    }
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
                        paused: control.is_some_and(|c| c.paused),
                        deferred: control.map(|c| c.deferred.clone()).unwrap_or_default(),
                        last_run,
                        full_sync_needed: self.full_sync_needed.get(name).cloned(),
                    },
                )
            })
            .collect();
        Status {
            service: true,
            maintenance: self.state.maintenance.clone(),
            mas,
        }
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

    /// The MAs in one of their blackout windows now.
    fn in_blackout(&self) -> std::collections::BTreeSet<String> {
        let now = chrono::Utc::now();
        self.config
            .mas
            .iter()
            .filter(|(_, m)| !m.blackouts.is_empty() && m.blackouts.active_at(now))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// When the next blackout window of any MA starts or ends.
    fn next_blackout_change(&self) -> Option<Instant> {
        let now = chrono::Utc::now();
        let next = self
            .config
            .mas
            .values()
            .filter(|m| !m.blackouts.is_empty())
            .filter_map(|m| m.blackouts.next_change(now))
            .min()?;
        let wait = (next - now).to_std().unwrap_or_default();
        Some(Instant::now() + wait + std::time::Duration::from_millis(1))
    }

    fn start_planned(&mut self) -> Option<Instant> {
        let mut running: Vec<Running> = self.active.values().map(|a| a.running.clone()).collect();
        for (ma, run) in &self.unmanaged {
            running.push(Running {
                ma: ma.clone(),
                profile: run.profile.clone(),
                has_sync: self
                    .config
                    .mas
                    .get(ma)
                    .is_some_and(|m| m.info.has_sync(&run.profile)),
                exclusive: false,
            });
        }
        let blackout = self.in_blackout();
        let plan = {
            let slots: Vec<Slot<'_>> = self
                .config
                .mas
                .iter()
                .map(|(name, m)| {
                    let head = self.state.queues.peek(name);
                    Slot {
                        ma: name,
                        state: self.ma_state(name),
                        in_blackout: self.held.contains_key(name.as_str())
                            || self.state.maintenance.is_some()
                            || blackout.contains(name.as_str()),
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
                let reason = if self.state.maintenance.is_some() {
                    "waiting: maintenance mode".to_owned()
                } else if blackout.contains(ma) {
                    "waiting: in a blackout window".to_owned()
                } else if self.held.contains_key(ma) {
                    "waiting: held back (retry backoff, or the MA was busy)".to_owned()
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
        let progress = RunProgress::new();
        let shared = progress.clone();
        let hooks = self
            .config
            .mas
            .get(&ma)
            .map(|m| m.hooks.clone())
            .unwrap_or_default();
        let notices = self.notices.clone();
        let hook_error = move |e: crate::hooks::HookError| {
            tracing::warn!("{e}");
            if let Some(tx) = &notices {
                let _ = tx.send(Notice::HookError {
                    ma: e.ma.clone(),
                    message: e.to_string(),
                });
            }
        };
        tokio::task::spawn_blocking(move || {
            if hooks.has_before() {
                let outcome = hooks.before(&ma, &profile, &reason, chrono::Utc::now());
                if let Some(e) = outcome.error {
                    hook_error(e);
                }
                if let BeforeDecision::Skip { reason: why } = outcome.decision {
                    let _ = done.send(Done {
                        request: req,
                        result: Err(EngineCallError::Failed {
                            message: format!("skipped by the before hook: {why}"),
                        }),
                        skipped: Some(why),
                        after: AfterDecision::Continue,
                    });
                    return;
                }
            }
            let result = engine.run_profile_with_progress(&ma, &profile, reason, flag, shared);
            let mut after = AfterDecision::Continue;
            if hooks.has_after()
                && let Ok(record) = &result
            {
                let outcome = hooks.after(record, chrono::Utc::now());
                if let Some(e) = outcome.error {
                    hook_error(e);
                }
                after = outcome.decision;
            }
            let _ = done.send(Done {
                request: req,
                result,
                skipped: None,
                after,
            });
        });
        self.last_start = Some(Instant::now());
        self.active.insert(
            running.ma.clone(),
            Active {
                running,
                request,
                cancel,
                progress,
            },
        );
        self.persist();
    }

    /// A run ended: decide its follow-ups. Returns the record, if any.
    fn finished(&mut self, done: Done) -> Option<RunRecord> {
        let request = done.request;
        self.active.remove(&request.ma);
        if let Some(why) = done.skipped {
            tracing::info!(ma = %request.ma, profile = %request.profile, "not run: the before hook skipped it ({why})");
            self.persist();
            return None;
        }
        match &done.after {
            AfterDecision::Continue => {}
            AfterDecision::StopMa { reason } => {
                tracing::warn!(ma = %request.ma, "the after hook stopped the MA: {reason}");
                self.control_of(&request.ma).started = Some(false);
            }
            AfterDecision::StopService { reason } => {
                tracing::warn!(ma = %request.ma, "the after hook stops the service: {reason}");
                self.shutdown.cancel();
            }
        }
        if let Ok(record) = &done.result {
            self.seen.insert(record.id);
        }
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
        crate::notices::log_run_ended(&record);
        self.followed_up(&record, request.chain.clone());
        self.retry(&record, &request);
        self.notice(Notice::RunEnded(record.clone()));
        self.persist();
        self.summary.runs.push(record.clone());
        Some(record)
    }

    /// What follows a run that ended (the controller's or not): triggers
    /// learn of its import, `decide` queues its follow-ups, staging
    /// thresholds may hold its MA's syncs.
    fn followed_up(&mut self, record: &RunRecord, chain: Vec<autosync_controller::ChainLink>) {
        let steps: Vec<StepType> = self
            .config
            .mas
            .get(&record.ma)
            .and_then(|m| m.info.steps(&record.profile))
            .map(<[StepType]>::to_vec)
            .unwrap_or_default();
        // `decide` reads the counts of the run's MA and of the MAs its
        // sync sent changes to; the others are not read on this path.
        let targets: Vec<&str> = record
            .steps
            .iter()
            .filter_map(|s| match &s.counters {
                StepCounters::Sync(c) => Some(c.outbound.keys().map(String::as_str)),
                _ => None,
            })
            .flatten()
            .collect();
        self.refresh_cs_of(|name| name == record.ma || targets.contains(&name));
        if let Some(m) = self.view.mas.get_mut(&record.ma) {
            m.chain = chain;
        }
        let decision = decide(record, &steps, &self.view);
        for report in &decision.reports {
            tracing::warn!("{report}");
            if let autosync_controller::Report::Oscillation { ma, .. } = report {
                self.notice(Notice::Oscillation {
                    ma: ma.clone(),
                    detail: report.to_string(),
                });
            }
        }
        if record
            .steps
            .iter()
            .any(|s| s.step_type == StepType::FullSync && !s.status.is_stopped())
        {
            self.full_sync_needed.remove(&record.ma);
        }
        if record.steps.iter().any(|s| s.step_type.is_import())
            && let Some(set) = self.triggers.get(&record.ma)
        {
            set.record_import(record.started_at);
        }
        let requests = self.check_thresholds(record, &steps, decision.requests);
        self.push(requests);
    }

    /// After a run: whether it stopped at a staging threshold of its MA
    /// (its import went over one, or a sync found one holding). If so the
    /// MA's syncs (this run's follow-up, and any queued) are held for an
    /// operator; the other requests go on.
    fn check_thresholds(
        &mut self,
        record: &RunRecord,
        _steps: &[StepType],
        requests: Vec<Request>,
    ) -> Vec<Request> {
        let Some(config) = self.config.mas.get(&record.ma) else {
            return requests;
        };
        let stopped_sync = record.steps.iter().find(|s| {
            s.status == RunStatus::StoppedStagingThresholdExceeded && s.step_type.is_sync()
        });
        let stopped = record
            .steps
            .iter()
            .any(|s| s.status == RunStatus::StoppedStagingThresholdExceeded);
        if !stopped {
            return requests;
        }
        let hold = autosync_engine::thresholds::staging_hold(self.store.as_ref(), &record.ma)
            .ok()
            .flatten();
        let exceeded: Vec<String> = hold
            .as_ref()
            .map(|h| h.exceeded.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let mut held: Vec<Request> = Vec::new();
        if stopped_sync.is_some() {
            // A sync that found the hold waits with it, as queued ones do.
            held.push(Request {
                ma: record.ma.clone(),
                profile: record.profile.clone(),
                exclusive: false,
                run_immediate: false,
                reason: record.reason.clone(),
                chain: Vec::new(),
            });
        }
        if self
            .state
            .mas
            .get(&record.ma)
            .is_some_and(|c| c.threshold.is_some())
            && stopped_sync.is_some()
        {
            // Already waiting for an operator: nothing new to announce.
            if let Some(t) = self.control_of(&record.ma).threshold.as_mut() {
                for r in held {
                    if !t.held.iter().any(|h| h.profile == r.profile) {
                        t.held.push(r);
                    }
                }
            }
            return requests;
        }
        tracing::error!(
            ma = %record.ma, run_id = record.id,
            "staging threshold exceeded ({}): the MA's syncs wait for `autosync approve {}` or `autosync reject {}`",
            exceeded.join(", "), record.ma, record.ma
        );
        // Syncs already queued for this MA are held too.
        let queued_syncs: Vec<QueuedRequest> = self
            .state
            .queues
            .get(&record.ma)
            .map(|q| {
                q.iter()
                    .filter(|r| config.info.has_sync(&r.profile))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for q in queued_syncs {
            self.state.queues.get_mut(&record.ma).remove(q.id);
            held.push(q.request());
        }
        let threshold = self
            .control_of(&record.ma)
            .threshold
            .get_or_insert_with(|| HeldThreshold {
                run_id: record.id,
                profile: record.profile.clone(),
                exceeded: Vec::new(),
                held: Vec::new(),
                since: chrono::Utc::now(),
            });
        threshold.exceeded.extend(exceeded.iter().cloned());
        for r in held {
            if !threshold.held.iter().any(|h| h.profile == r.profile) {
                threshold.held.push(r);
            }
        }
        self.notice(Notice::ThresholdExceeded {
            ma: record.ma.clone(),
            run_id: record.id,
            exceeded,
        });
        requests
    }

    /// A run ended in a retryable status: run it again after a backoff;
    /// once the attempts are used up the MA is failed (and still retried
    /// at the capped backoff, so it recovers by itself). Any other end
    /// resets the count and clears the failed state.
    fn retry(&mut self, record: &RunRecord, request: &QueuedRequest) {
        let Some(policy) = self.config.mas.get(&record.ma).map(|m| m.retry.clone()) else {
            return;
        };
        let ma = record.ma.clone();
        self.retry_object_errors(record, request, &policy);
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
        let control = self.control_of(&ma);
        let decision = policy.decide(control.attempts, jitter_unit());
        let (attempt, delay) = match decision {
            RetryDecision::Retry { attempt, delay } | RetryDecision::Failed { attempt, delay } => {
                (attempt, delay)
            }
        };
        control.attempts = attempt;
        if matches!(decision, RetryDecision::Failed { .. }) && control.failed.is_none() {
            control.failed = Some(Failed {
                profile: record.profile.clone(),
                status: record.status,
                run_id: record.id,
                attempts: attempt - 1,
                since: chrono::Utc::now(),
            });
            tracing::error!(ma = %ma, profile = %record.profile, status = %record.status, "failed after {} retries; still trying every {}s", attempt - 1, delay.as_secs());
            self.notice(Notice::MaFailed {
                ma: ma.clone(),
                profile: record.profile.clone(),
                attempts: attempt - 1,
                status: record.status,
            });
        } else {
            tracing::warn!(ma = %ma, profile = %record.profile, status = %record.status, "retry {attempt} in {:.1}s", delay.as_secs_f64());
        }
        self.held.insert(ma, Instant::now() + delay);
        let mut again = request.request();
        again.run_immediate = true;
        self.push(vec![again]);
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
        policy: &autosync_controller::RetryPolicy,
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
        let delay = policy.delay(attempt, jitter_unit());
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
                due: Some((Instant::now() + delay, again)),
            },
        );
    }

    /// When the next retry of per-object errors is due.
    fn next_object_retry(&self) -> Option<Instant> {
        self.object_retries
            .values()
            .filter_map(|r| r.due.as_ref().map(|(at, _)| *at))
            .min()
    }

    /// Queues the retries of per-object errors that are due.
    fn release_object_retries(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for r in self.object_retries.values_mut() {
            if r.due.as_ref().is_some_and(|(at, _)| *at <= now)
                && let Some((_, request)) = r.due.take()
            {
                due.push(request);
            }
        }
        if !due.is_empty() {
            self.push(due);
        }
    }

    /// Trims run history older than `keep_history`, on a blocking thread
    /// (the store may take a while; nothing waits for it).
    pub(crate) fn trim_history(&self) {
        let Ok(keep) = chrono::Duration::from_std(self.config.keep_history) else {
            return;
        };
        let before = chrono::Utc::now() - keep;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || match store.trim_runs(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, before = %before, "trimmed run history"),
            Err(e) => tracing::warn!("cannot trim the run history: {e}"),
        });
    }

    /// Nothing runs and no active MA has a queued request (the retry of a
    /// failed MA that waits for its backoff is not waited for: `run --once`
    /// ends, and says it failed; the next start tries the MA again).
    fn quiescent(&self) -> bool {
        self.active.is_empty()
            && (self.state.maintenance.is_some()
                || self.state.queues.iter().all(|(ma, q)| {
                    q.is_empty() || self.ma_state(ma) != MaState::Active || self.failed_held(ma)
                }))
    }

    /// The MA is failed and its retry waits for its backoff.
    fn failed_held(&self, ma: &str) -> bool {
        self.held.contains_key(ma) && self.state.mas.get(ma).is_some_and(|c| c.failed.is_some())
    }

    /// Runs until shutdown (or, with `once`, until quiescent). `events`
    /// brings trigger events, `commands` operator commands.
    pub(crate) async fn run(
        mut self,
        once: bool,
        mut events: mpsc::UnboundedReceiver<TriggerEvent>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) -> Summary {
        let mut next_reconcile = Instant::now() + jittered(self.config.reconcile_every);
        let mut next_trim = Instant::now() + FIRST_TRIM;
        let mut next_poll = Instant::now() + UNMANAGED_POLL;
        let Some(mut done_rx) = self.done_rx.take() else {
            return self.summary;
        };
        self.shutdown = shutdown.clone();
        loop {
            let stagger_wake = self.start_ready();
            self.flush();
            let blackout_wake = self.next_blackout_change();
            let only_failed_wait =
                !self.held.is_empty() && self.held.keys().all(|ma| self.failed_held(ma));
            if once && (stagger_wake.is_none() || only_failed_wait) && self.quiescent() {
                break;
            }
            let stagger_at = stagger_wake.unwrap_or_else(Instant::now);
            let retry_wake = self.next_object_retry();
            tokio::select! {
                _ = tokio::time::sleep_until(retry_wake.unwrap_or_else(Instant::now)), if retry_wake.is_some() => {
                    self.release_object_retries();
                }
                Some(done) = done_rx.recv() => {
                    self.finished(done);
                }
                Some(event) = events.recv() => self.trigger_event(event),
                Some(command) = commands.recv() => match command {
                    Command::Reload { engine, config, reply } => {
                        let answer = self.reload(engine, *config).await;
                        match &answer {
                            Ok(m) => tracing::info!("{m}"),
                            Err(m) => tracing::error!("reload failed: {m}"),
                        }
                        self.flush();
                        let _ = reply.send(answer);
                    }
                    Command::ReloadRejected { message } => {
                        tracing::error!("{message}");
                        self.notice(Notice::ReloadRejected { message });
                    }
                    other => self.command(other),
                },
                _ = tokio::time::sleep_until(stagger_at), if stagger_wake.is_some() => {}
                _ = tokio::time::sleep_until(blackout_wake.unwrap_or_else(Instant::now)), if blackout_wake.is_some() => {}
                _ = tokio::time::sleep_until(next_reconcile) => {
                    self.reconcile();
                    next_reconcile = Instant::now() + jittered(self.config.reconcile_every);
                }
                _ = tokio::time::sleep_until(next_poll) => {
                    self.poll_unmanaged();
                    next_poll = Instant::now() + UNMANAGED_POLL;
                }
                _ = tokio::time::sleep_until(next_trim), if !once => {
                    self.trim_history();
                    next_trim = Instant::now() + jittered(TRIM_EVERY);
                }
                _ = shutdown.cancelled() => break,
            }
        }
        self.stop(done_rx).await
    }

    /// Graceful stop: cancel running profiles at their next safe point,
    /// wait for them, queue their follow-ups, persist.
    async fn stop(mut self, mut done_rx: mpsc::UnboundedReceiver<Done>) -> Summary {
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
                // What the cancelled run did not get to must run at the next
                // start: its request goes back to the front.
                if record.status == RunStatus::StoppedUserRequested {
                    let mut again = request.request();
                    again.run_immediate = true;
                    self.push(vec![again]);
                }
            }
        }
        self.stop_triggers().await;
        self.persist();
        self.flush();
        self.summary.queued = self.state.queues.total();
        self.summary
    }
}
