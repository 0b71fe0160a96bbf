//! The controller as a pure state machine: [`Machine::handle`] takes an
//! [`Event`] and the time, changes the machine's state and returns the
//! [`Effect`]s the service carries out (start a run, cancel one, persist,
//! notify, approve or reject, restart triggers, read the store, reply to a
//! caller, wake me at). Every policy of the controller lives here:
//!
//! - the cycle's follow-ups (`decide`), reconciliation, the queues and the
//!   scheduler (run modes, lock groups, no starvation), start stagger and
//!   blackout windows, maintenance mode (`schedule`);
//! - retries with backoff and the failed state, retries of per-object
//!   errors, MAs held back because they were busy (`retries`);
//! - staging thresholds that hold an MA's syncs, approve and reject,
//!   operators' controls and queue requests (`runs`, `controls`);
//! - start-up (crash recovery), reload planning, full syncs needed after a
//!   rule change, runs started outside the controller (`lifecycle`,
//!   `unmanaged`);
//! - the status of every MA ([`Machine::status`]) and quiescence for
//!   `autosync run --once` ([`Machine::quiescent`]);
//! - what is published to whoever follows the service ([`ServiceEvent`],
//!   `published`), and why a request is refused ([`Refusal`]).
//!
//! No I/O, no async, no clock: `now` is an argument, and randomness (the
//! ±10 % jitter of backoffs and periods) comes from a seeded generator.

mod config;
mod controls;
mod event;
mod lifecycle;
mod notice;
mod published;
mod refusal;
mod retries;
mod runs;
mod schedule;
mod state;
mod status;
mod trigger_problems;
mod unmanaged;
mod views;

pub use config::{
    DEFAULT_IGNORE_STATUSES, DEFAULT_KEEP_HISTORY, DEFAULT_RECONCILE_EVERY, DEFAULT_START_STAGGER,
    MaConfig, MachineConfig,
};
pub use controls::maintenance_already_on;
pub use event::{
    AfterDecision, Answer, Effect, Event, ReplyId, RunEnd, RunFacts, RunOutcome, SeenRun, Startup,
    Stops, WatchedFile, facts_wanted,
};
pub use notice::{
    Notice, log_line, ma_failed_message, recovered_message, run_failed_message,
    trigger_error_reason,
};
pub use published::{NoticeKind, Published, RunCounts, ServiceEvent, ServiceState};
pub use refusal::{Refusal, RefusalCode};
pub use state::{Failed, HeldThreshold, MaControl, PersistedState, Since};
pub use status::{
    MaStateName, MaStateView, MaStatus, StateFacts, Status, TriggerProblem, state_view,
};

use crate::engine_api::ProgressState;
use crate::profiles::resolve_profiles;
use crate::queue::{PushOutcome, QueuedRequest};
use crate::request::Request;
use crate::scheduler::{MaState, Running};
use crate::view::{ControllerView, MaView};
use autosync_model::{RunId, RunReason, RunRecord};
use chrono::{DateTime, Utc};
use retries::{Hold, ObjectRetry};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long an MA found busy is held back before its request is tried again.
pub const HOLD_BACK: Duration = Duration::from_secs(5);
/// How often the store is looked at for runs the controller did not start.
pub const UNMANAGED_POLL: Duration = Duration::from_secs(5);
/// The first trim of the run history after start, then every `TRIM_EVERY`.
pub const FIRST_TRIM: Duration = Duration::from_secs(60);
pub const TRIM_EVERY: Duration = Duration::from_secs(6 * 3600);

/// How many ended runs [`Summary::runs`] keeps when the service runs
/// without `--once` (it may run for months: every run would grow it
/// without end).
pub const SUMMARY_RUNS: usize = 1_000;

/// What a service run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// The controller's runs that ended, in the order they ended: all of
    /// them with `--once`, else the last [`SUMMARY_RUNS`].
    pub runs: Vec<RunRecord>,
    /// How many of the controller's runs ended.
    pub ended: u64,
    /// Requests still queued at the end.
    pub queued: usize,
    /// The MAs whose cycle did not settle and was stopped (an
    /// oscillation), in the order it happened.
    pub oscillations: Vec<String>,
    /// With `--once`: the MAs given up on because their runs could not
    /// start, time after time (the store full, unwritable), with the
    /// engine's reason.
    pub unavailable: Vec<(String, String)>,
}

/// How many times in a row a run of an MA may fail to start before
/// `run --once` gives up on it (5 s apart: about 20 s).
const ONCE_NOT_STARTED: u32 = 5;

/// A run the machine started.
#[derive(Clone, Debug)]
struct Active {
    running: Running,
    request: QueuedRequest,
    /// When the machine started it (the engine it runs on was the one in
    /// force then; the run's own start comes after its before hook).
    began: DateTime<Utc>,
    /// Its progress as last published.
    progress: ProgressState,
}

/// Where the machine is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for [`Event::Started`]: nothing starts.
    Starting,
    Running,
    /// Cancelling what runs; nothing new starts.
    Stopping,
    Stopped,
}

/// Periodic chores and the reads in flight.
#[derive(Clone, Debug, Default)]
struct Chores {
    next_reconcile: Option<DateTime<Utc>>,
    next_poll: Option<DateTime<Utc>>,
    next_trim: Option<DateTime<Utc>>,
    reading_counts: bool,
    looking_for_runs: bool,
    checking_rules: bool,
    /// Engine calls (approve, reject) in flight, with the control they
    /// answer, its MA and who asked.
    calls: BTreeMap<ReplyId, (crate::control::Control, String, String)>,
}

/// How the service runs the machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `autosync run --once`: no history trim, and an MA that failed does
    /// not keep the run from ending ([`Machine::quiescent`]).
    pub once: bool,
    /// Seed of the jitter (any value; tests fix it).
    pub seed: u64,
}

/// The controller's state and policies. See the module documentation.
#[derive(Debug)]
pub struct Machine {
    config: MachineConfig,
    view: ControllerView,
    state: PersistedState,
    active: BTreeMap<String, Active>,
    last_start: Option<DateTime<Utc>>,
    /// MAs held back until a time (retry backoff, busy, unavailable).
    held: BTreeMap<String, Hold>,
    /// Runs that completed with per-object errors, by MA and profile.
    object_retries: BTreeMap<(String, String), ObjectRetry>,
    /// What each waiting MA waited for at the last planning.
    waiting: BTreeMap<String, String>,
    /// When the start stagger lets the next start go.
    stagger_until: Option<DateTime<Utc>>,
    /// Runs after `state.last_seen_run` already handled.
    seen: BTreeSet<RunId>,
    /// Runs in progress that another process started, per MA.
    unmanaged: BTreeMap<String, RunRecord>,
    /// MAs whose rules changed since their last full sync, with why.
    full_sync_needed: BTreeMap<String, String>,
    /// Reloads whose answer waits for the engine's word on which MAs need
    /// a full sync (the answer names those the status then shows), oldest
    /// first, each with its answer so far.
    reloads_waiting: Vec<(ReplyId, String)>,
    /// When the rules in force took effect (the start, or the last reload
    /// that changed an MA's rules): a full sync that started before ran
    /// on the rules before, and does not satisfy `full_sync_needed`.
    rules_since: BTreeMap<String, DateTime<Utc>>,
    /// Each MA's newest run that ended (or one found in progress).
    last_run: BTreeMap<String, RunRecord>,
    /// The newest run id known (run ids only grow): a run started after
    /// now has a greater one.
    newest_run: RunId,
    /// MAs whose last export stopped at the deletion threshold, waiting
    /// for `approve` or `reject`: the run and what the stop says. Not
    /// persisted: the store keeps the stop, start-up reads it.
    deletion_stops: BTreeMap<String, (RunId, String)>,
    /// How many times in a row each MA's run could not start (the engine
    /// unavailable), and why the last time.
    not_started: BTreeMap<String, (u32, String)>,
    /// Triggers' requests for a profile their MA does not have, already
    /// logged at WARN (each is notified, never queued).
    bad_profiles: BTreeSet<(String, String)>,
    /// Triggers that failed and have not asked for a run since (the
    /// status shows them).
    trigger_problems: trigger_problems::TriggerProblems,
    summary: Summary,
    chores: Chores,
    phase: Phase,
    once: bool,
    /// The state changed since it was last persisted.
    dirty: bool,
    /// Each MA's state as last published (`state-changed`).
    published_states: BTreeMap<String, MaStateName>,
    /// The profile last published as running, per running MA: a running
    /// MA that goes on to its next profile changes state too.
    published_profiles: BTreeMap<String, String>,
    /// The time of the event being handled.
    now: DateTime<Utc>,
    rng: u64,
    effects: Vec<Effect>,
    replies: Vec<Effect>,
}

impl Machine {
    /// A machine for `config`; it starts nothing before [`Event::Started`].
    pub fn new(config: MachineConfig, options: Options) -> Machine {
        let view = view_of(&config, None);
        Machine {
            config,
            view,
            state: PersistedState::default(),
            active: BTreeMap::new(),
            last_start: None,
            held: BTreeMap::new(),
            object_retries: BTreeMap::new(),
            waiting: BTreeMap::new(),
            stagger_until: None,
            seen: BTreeSet::new(),
            unmanaged: BTreeMap::new(),
            full_sync_needed: BTreeMap::new(),
            reloads_waiting: Vec::new(),
            rules_since: BTreeMap::new(),
            not_started: BTreeMap::new(),
            bad_profiles: BTreeSet::new(),
            trigger_problems: Default::default(),
            last_run: BTreeMap::new(),
            newest_run: 0,
            deletion_stops: BTreeMap::new(),
            summary: Summary::default(),
            chores: Chores::default(),
            phase: Phase::Starting,
            once: options.once,
            dirty: false,
            published_states: BTreeMap::new(),
            published_profiles: BTreeMap::new(),
            now: DateTime::<Utc>::MIN_UTC,
            // xorshift needs a non-zero state.
            rng: options.seed | 1,
            effects: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// Handles one event at `now`; returns what to do, in order: the
    /// effects of the event (with what it publishes), the runs that start,
    /// the state to persist, the MAs' state changes to publish, the replies
    /// (sent once that state is written), and when to wake.
    pub fn handle(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Effect> {
        self.now = now;
        match event {
            Event::Started(startup) => self.started(*startup, now),
            Event::Triggered(request) => self.trigger_request(request, now),
            Event::TriggerFailed {
                ma,
                trigger,
                message,
            } => self.trigger_failed(ma, trigger, &message, now),
            Event::HookFailed { ma, message } => self.notify(Notice::HookError { ma, message }),
            Event::TriggerState { ma, key, state } => {
                self.state
                    .triggers
                    .entry(ma)
                    .or_default()
                    .insert(key, state);
                self.dirty = true;
            }
            Event::Queue { reply, request } => self.queue(reply, request, now),
            Event::Control {
                reply,
                action,
                ma,
                by,
            } => self.control(reply, action, ma.as_deref(), &by, now),
            Event::RunEnded(end) => self.run_ended(*end, now),
            Event::RunsSeen(runs) => self.runs_seen(runs, now),
            Event::Counts(cs) => self.counts_read(cs, now),
            Event::RulesChecked(needed) => self.rules_checked(needed, now),
            Event::ApprovalChecked { reply, ma, found } => self.approval_checked(reply, &ma, found),
            Event::Approved {
                reply,
                ma,
                stopped_export,
                result,
            } => self.approved(reply, &ma, stopped_export, result, now),
            Event::Rejected { reply, ma, result } => self.rejected(reply, &ma, result, now),
            Event::Reload { reply, config } => self.reload(reply, *config, now),
            Event::ReloadRejected { message } => {
                tracing::error!("{}", notice::log_line(&message));
                self.notify(Notice::ReloadRejected { message });
            }
            Event::Progress(progress) => self.progressed(progress),
            Event::Tick => {}
            Event::Shutdown => self.shutdown(),
        }
        self.forget_restarted_triggers();
        self.settle(now);
        let mut effects = std::mem::take(&mut self.effects);
        effects.append(&mut self.replies);
        if let Some(at) = self.next_wake(now) {
            effects.push(Effect::WakeAt(at));
        }
        effects
    }

    /// After every event: release what is due, start what may start,
    /// persist what changed, publish the MAs' state changes, finish a
    /// graceful stop.
    fn settle(&mut self, now: DateTime<Utc>) {
        match self.phase {
            Phase::Running => {
                self.release_due(now);
                self.chores_due(now);
                self.stagger_until = self.start_planned(now);
            }
            Phase::Stopping if self.active.is_empty() && self.chores.calls.is_empty() => {
                self.dirty = true;
                self.flush();
                self.summary.queued = self.state.queues.total();
                self.phase = Phase::Stopped;
                self.publish_state_changes();
                self.publish(ServiceEvent::Service {
                    at: now,
                    state: ServiceState::Stopped,
                });
                self.effects.push(Effect::Stopped);
                return;
            }
            _ => {}
        }
        self.flush();
        self.publish_state_changes();
    }

    /// The earliest time something is due.
    fn next_wake(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.phase != Phase::Running {
            return None;
        }
        let chores = &self.chores;
        [
            self.stagger_until,
            self.held.values().map(|h| h.until).min(),
            self.next_object_retry(),
            self.next_blackout_change(now),
            chores.next_reconcile,
            chores.next_poll,
            chores.next_trim,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Nothing runs (neither a run the controller started nor one started
    /// outside it: its end brings follow-ups) or is being asked of the
    /// store, and no MA that may run has a queued request: `autosync run
    /// --once` ends here. With `once`, an MA in the failed state counts as
    /// done (its request stays queued for the next run).
    pub fn quiescent(&self) -> bool {
        self.phase == Phase::Running
            && self.active.is_empty()
            && self.unmanaged.is_empty()
            && !self.chores.reading_counts
            && !self.chores.looking_for_runs
            && !self.chores.checking_rules
            && self.chores.calls.is_empty()
            && (self.state.maintenance.is_some()
                || self.state.queues.iter().all(|(ma, q)| {
                    q.is_empty()
                        || self.ma_state(ma) != MaState::Active
                        || (self.once && (self.is_failed(ma) || self.given_up(ma)))
                }))
    }

    /// With `--once`: whether `ma`'s runs could not start
    /// [`ONCE_NOT_STARTED`] times in a row (the store full or unwritable):
    /// `run --once` ends rather than wait for the disk, as it does for an
    /// MA that failed.
    fn given_up(&self, ma: &str) -> bool {
        self.not_started
            .get(ma)
            .is_some_and(|(n, _)| *n >= ONCE_NOT_STARTED)
    }

    /// The graceful stop is complete ([`Effect::Stopped`] was given).
    pub fn stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// What the service ran; `queued` is set once stopped.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The state as it is persisted.
    pub fn state(&self) -> &PersistedState {
        &self.state
    }

    /// The persisted states of one MA's triggers.
    pub fn trigger_states(&self, ma: &str) -> BTreeMap<String, serde_json::Value> {
        self.state.triggers.get(ma).cloned().unwrap_or_default()
    }

    /// The configuration in use.
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// An operator's start or stop, else the configuration's `auto_start`.
    fn started_flag(&self, ma: &str) -> bool {
        match self.state.mas.get(ma).and_then(|c| c.started) {
            Some(started) => started,
            None => self.config.mas.get(ma).is_some_and(|m| m.auto_start),
        }
    }

    /// Whether the scheduler may start runs of `ma`: an operator's start or
    /// stop wins over the configuration's `auto_start`.
    fn ma_state(&self, ma: &str) -> MaState {
        if !self.config.mas.get(ma).is_some_and(|m| m.enabled) {
            return MaState::Disabled;
        }
        if self.started_flag(ma) {
            MaState::Active
        } else {
            MaState::Stopped
        }
    }

    fn is_failed(&self, ma: &str) -> bool {
        self.state.mas.get(ma).is_some_and(|c| c.failed.is_some())
    }

    fn control_of(&mut self, ma: &str) -> &mut MaControl {
        self.state.mas.entry(ma.to_owned()).or_default()
    }

    fn notify(&mut self, notice: Notice) {
        self.publish(ServiceEvent::notice(self.now, &notice));
        self.effects.push(Effect::Notify(notice));
    }

    fn publish(&mut self, event: ServiceEvent) {
        self.effects.push(Effect::Publish(event));
    }

    fn reply(&mut self, reply: ReplyId, answer: Answer) {
        self.replies.push(Effect::Reply { reply, answer });
    }

    /// Writes the state if it changed.
    fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.state.running = self.active.values().map(|a| a.request.clone()).collect();
        self.effects
            .push(Effect::Persist(Box::new(self.state.clone())));
    }

    /// Sync requests of an MA whose staging threshold waits for an
    /// operator are held with it (nothing of what was staged may flow);
    /// returns the other requests.
    fn divert_held(&mut self, requests: Vec<Request>) -> Vec<Request> {
        let mut rest = Vec::with_capacity(requests.len());
        for r in requests {
            let syncs = self
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
                Some(t) if syncs => {
                    if !t
                        .held
                        .iter()
                        .any(|h| h.profile == r.profile && h.exclusive == r.exclusive)
                    {
                        tracing::info!(ma = %r.ma, profile = %r.profile, "held until the staging threshold is approved or rejected");
                        t.held.push(r);
                        self.dirty = true;
                    }
                }
                _ => rest.push(r),
            }
        }
        rest
    }

    /// Queues requests (those a staging threshold holds are held with it)
    /// and publishes each.
    fn push(&mut self, requests: Vec<Request>, now: DateTime<Utc>) -> Vec<PushOutcome> {
        let requests = self.divert_held(requests);
        if requests.is_empty() {
            return Vec::new();
        }
        let asked: Vec<(String, String, RunReason)> = requests
            .iter()
            .map(|r| (r.ma.clone(), r.profile.clone(), r.reason.clone()))
            .collect();
        self.dirty = true;
        let outcomes = self.state.queues.push_all(requests, now);
        for ((ma, profile, reason), outcome) in asked.into_iter().zip(&outcomes) {
            // A request equal to one already queued is merged into it: the
            // run that comes carries the first one's reason, and does this
            // one's work too.
            match outcome {
                PushOutcome::Queued { .. } => {
                    tracing::info!(%ma, %profile, %reason, "queued");
                }
                PushOutcome::Merged { into, .. } => {
                    tracing::info!(%ma, %profile, %reason, request = %into, "merged into the request already queued");
                }
            }
            self.publish(ServiceEvent::Queued {
                at: now,
                ma,
                profile,
                request: outcome.id(),
                reason,
                merged: matches!(outcome, PushOutcome::Merged { .. }),
            });
        }
        outcomes
    }

    /// A number in `[-1, 1]` (xorshift64).
    fn jitter_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        f64::from((self.rng >> 11) as u32 % 2001) / 1000.0 - 1.0
    }

    /// ±10 % of `d`.
    fn jittered(&mut self, d: Duration) -> Duration {
        d.mul_f64(1.0 + 0.1 * self.jitter_unit())
    }
}

/// `now + d`, saturating.
fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The view `decide` reads: profiles and follow-ups from `config`, the
/// chains and counts of `old` kept.
fn view_of(config: &MachineConfig, old: Option<&ControllerView>) -> ControllerView {
    let mut view = ControllerView {
        oscillation_limit: config.oscillation_limit,
        ..ControllerView::default()
    };
    for (name, ma) in &config.mas {
        let mut m = MaView::new(resolve_profiles(&ma.info, &ma.profiles));
        m.follow_ups = ma.follow_ups;
        if let Some(o) = old.and_then(|o| o.mas.get(name)) {
            m.chain = o.chain.clone();
            m.cs = o.cs;
        }
        view.mas.insert(name.clone(), m);
    }
    view
}

/// "1 management agent" / "3 management agents".
fn count_mas(n: usize) -> String {
    if n == 1 {
        "1 management agent".to_owned()
    } else {
        format!("{n} management agents")
    }
}
