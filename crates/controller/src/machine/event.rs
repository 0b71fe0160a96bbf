//! What the machine is told ([`Event`]) and what it asks for ([`Effect`]).
//! Every event that needs an answer from the store or the engine has its
//! effect, and the answer comes back as another event: the machine itself
//! never waits, reads or writes anything.

use super::config::MachineConfig;
use super::notice::Notice;
use super::published::ServiceEvent;
use super::refusal::Refusal;
use super::state::PersistedState;
use crate::control::Control;
use crate::engine_api::{CsState, EngineCallError, ProgressState};
use crate::queue::{PushOutcome, QueuedRequest};
use crate::request::Request;
use autosync_model::{RunId, RunRecord, RunStatus, StepCounters};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Names a caller waiting for an answer (the service keeps the channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyId(pub u64);

/// Something that happened, for [`Machine::handle`](super::Machine::handle).
#[derive(Debug)]
pub enum Event {
    /// The service starts: the persisted state and what the store says.
    Started(Box<Startup>),
    /// A trigger asked for a run.
    Triggered(Request),
    /// A trigger failed.
    TriggerFailed {
        ma: String,
        trigger: String,
        message: String,
    },
    /// A controller hook failed (its safe default was used).
    HookFailed { ma: String, message: String },
    /// A trigger's own state changed (persisted with the controller's).
    TriggerState {
        ma: String,
        key: String,
        state: serde_json::Value,
    },
    /// An operator asks to queue a request (its reason says who).
    Queue { reply: ReplyId, request: Request },
    /// An operator's control on one MA or (with `ma: None`) on all.
    Control {
        reply: ReplyId,
        action: Control,
        ma: Option<String>,
        by: String,
    },
    /// A run that [`Effect::Start`] asked for ended (or did not start).
    RunEnded(Box<RunEnd>),
    /// The answer to [`Effect::LookForRuns`]: runs after the cursor, oldest
    /// first.
    RunsSeen(Result<Vec<SeenRun>, String>),
    /// The answer to [`Effect::ReadCounts`] (`None`: unreadable).
    Counts(BTreeMap<String, Option<CsState>>),
    /// The answer to [`Effect::CheckRules`]: MAs whose rules changed since
    /// their last full sync, each with why.
    RulesChecked(Result<Vec<(String, String)>, String>),
    /// The answer to [`Effect::CheckApproval`].
    ApprovalChecked {
        reply: ReplyId,
        ma: String,
        found: Result<Stops, String>,
    },
    /// The answer to [`Effect::Approve`]: the engine's sentence.
    Approved {
        reply: ReplyId,
        ma: String,
        stopped_export: bool,
        result: Result<String, EngineCallError>,
    },
    /// The answer to [`Effect::Reject`]: the engine's sentence and the
    /// pending imports and exports left in the connector space.
    Rejected {
        reply: ReplyId,
        ma: String,
        result: Result<(String, u64, u64), EngineCallError>,
    },
    /// A new configuration, loaded and validated: plan the switch.
    Reload {
        reply: ReplyId,
        config: Box<MachineConfig>,
    },
    /// A configuration reload was refused; the running one stays.
    ReloadRejected { message: String },
    /// Where the runs in progress are (sampled by the service about once
    /// a second while something runs), by MA.
    Progress(Vec<(String, ProgressState)>),
    /// A time the machine asked for ([`Effect::WakeAt`]) came.
    Tick,
    /// Stop gracefully: cancel running profiles, wait for them, persist.
    Shutdown,
}

/// What a start finds: the persisted state, reconciled with the store.
#[derive(Debug)]
pub struct Startup {
    pub state: PersistedState,
    /// The newest run in the store (0 when none): runs up to it are history.
    pub newest_run: RunId,
    /// For each MA of [`PersistedState::interrupted_mas`], its recent runs,
    /// newest first: which interrupted requests completed.
    pub recent_runs: BTreeMap<String, Vec<RunRecord>>,
    /// Each MA's newest run (what the status shows until the next ends).
    pub last_runs: BTreeMap<String, RunRecord>,
    /// Every MA's connector-space counts (`None`: unreadable).
    pub cs: BTreeMap<String, Option<CsState>>,
    /// MAs whose rules changed while the service was stopped.
    pub full_syncs_needed: Result<Vec<(String, String)>, String>,
    /// Trigger requests to make at start, whatever else holds.
    pub initial: Vec<Request>,
    /// Each file watch's file as start finds it: the machine queues the
    /// requests of those written after their MA's last import (changes made
    /// while the service was stopped).
    pub watched: Vec<WatchedFile>,
    /// MAs whose last export stopped at the deletion threshold and wait
    /// for an operator: the run and what the stop says.
    pub deletion_stops: BTreeMap<String, (RunId, String)>,
    /// Runs an earlier process left in progress (it crashed or was
    /// killed), closed `stopped-server` at this start: notified as any run
    /// that ends in that status.
    pub closed: Vec<RunRecord>,
}

/// A watched file as start-up finds it.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchedFile {
    /// What its file-watch trigger asks for.
    pub request: Request,
    /// When the file was last written.
    pub modified: DateTime<Utc>,
    /// When the MA last started an import (`None`: never).
    pub last_import: Option<DateTime<Utc>>,
}

impl Default for Startup {
    /// An empty store and state.
    fn default() -> Self {
        Startup {
            state: PersistedState::default(),
            newest_run: 0,
            recent_runs: BTreeMap::new(),
            last_runs: BTreeMap::new(),
            cs: BTreeMap::new(),
            full_syncs_needed: Ok(Vec::new()),
            initial: Vec::new(),
            watched: Vec::new(),
            deletion_stops: BTreeMap::new(),
            closed: Vec::new(),
        }
    }
}

/// What the after hook decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AfterDecision {
    #[default]
    Continue,
    StopMa {
        reason: String,
    },
    StopService {
        reason: String,
    },
}

/// How a started request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// The profile ran (whatever its status).
    Ran(RunRecord),
    /// The before hook said not to run it (why).
    Skipped(String),
    /// The engine could not start it.
    NotStarted(EngineCallError),
}

/// What the store says after a run: what `decide` and the staging
/// threshold check read. [`facts_wanted`] says what to read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFacts {
    /// Connector-space counts of the run's MA and of the MAs its sync sent
    /// changes to (`None`: unreadable).
    pub cs: BTreeMap<String, Option<CsState>>,
    /// When the run stopped at a staging threshold: what the hold says was
    /// exceeded.
    pub staging_exceeded: Vec<String>,
    /// When the run's export stopped at the deletion threshold: what the
    /// stop says (pending deletes, the most allowed).
    pub deletion_stop: Option<String>,
    /// The run imported and the store holds no staging hold of its MA
    /// (read, not assumed): a hold the machine still has was lifted (the
    /// import read the source again and what is staged is under the
    /// thresholds) or settled from a shell.
    pub staging_hold_gone: bool,
    /// MAs among those the run touched (its own, and the targets of its
    /// sync) whose export was stopped at the deletion threshold and whose
    /// stop the store no longer has standing (read, not assumed): a sync
    /// cancelled the pending deletes, or an operator settled it from a
    /// shell.
    pub deletion_stops_gone: Vec<String>,
}

/// A run that [`Effect::Start`] asked for ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEnd {
    pub ma: String,
    pub outcome: RunOutcome,
    pub after: AfterDecision,
    pub facts: RunFacts,
}

/// A run found in the store (maybe started outside the controller).
#[derive(Clone, Debug, PartialEq)]
pub struct SeenRun {
    pub record: RunRecord,
    /// Read only for runs that ended and were not known.
    pub facts: RunFacts,
}

/// What the store says a threshold stopped on an MA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stops {
    /// An export stopped at the deletion threshold.
    pub stopped_export: bool,
    /// An import's staged changes are held at a staging threshold.
    pub held_staging: bool,
}

/// What to read after a run ended: the connector-space counts of these MAs
/// (the run's and its sync's targets), and the staging hold when a step
/// stopped at a staging threshold.
pub fn facts_wanted(record: &RunRecord) -> (Vec<String>, bool) {
    let mut mas = vec![record.ma.clone()];
    for step in &record.steps {
        if let StepCounters::Sync(c) = &step.counters {
            for target in c.outbound.keys() {
                if !mas.contains(target) {
                    mas.push(target.clone());
                }
            }
        }
    }
    let hold = record
        .steps
        .iter()
        .any(|s| s.status == RunStatus::StoppedStagingThresholdExceeded);
    (mas, hold)
}

/// The answer to a caller: what was done, or why it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// To [`Event::Queue`].
    Queued(Result<PushOutcome, Refusal>),
    /// To [`Event::Control`] and [`Event::Reload`]: what was done.
    Done(Result<String, Refusal>),
}

/// What the machine asks the service to do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Run the request's profile (before hook, profile, after hook) off
    /// the event loop; answer with [`Event::RunEnded`].
    Start(QueuedRequest),
    /// Ask the MA's running profile to stop at its next safe point.
    Cancel {
        ma: String,
    },
    /// Write this state (the newest write wins).
    Persist(Box<PersistedState>),
    Notify(Notice),
    /// Tell whoever follows the service (numbered and broadcast by it).
    Publish(ServiceEvent),
    /// Read what a threshold stopped on `ma`; answer with
    /// [`Event::ApprovalChecked`].
    CheckApproval {
        reply: ReplyId,
        ma: String,
    },
    /// The engine approves what a threshold stopped on `ma`; answer with
    /// [`Event::Approved`].
    Approve {
        reply: ReplyId,
        ma: String,
        stopped_export: bool,
    },
    /// The engine rejects what a threshold stopped on `ma` (discards the
    /// staged changes, drops the stopped deletes), then the pending imports
    /// and exports are counted; answer with [`Event::Rejected`].
    Reject {
        reply: ReplyId,
        ma: String,
    },
    /// Stop the MA's triggers and, with `start`, build and start them
    /// again from the configuration and their persisted states.
    RestartTriggers {
        ma: String,
        start: bool,
    },
    /// An import of `ma` started at `at` (auto-import triggers count from it).
    ImportSeen {
        ma: String,
        at: DateTime<Utc>,
    },
    /// Read these MAs' connector-space counts; answer with [`Event::Counts`].
    ReadCounts {
        mas: Vec<String>,
    },
    /// Read the runs after `after`, with the facts of those that ended and
    /// are not `known` (already handled); answer with [`Event::RunsSeen`].
    /// Unless `always`, a newest run id not after `after` answers at once
    /// with none.
    LookForRuns {
        after: RunId,
        known: BTreeSet<RunId>,
        always: bool,
    },
    /// Ask the engine which MAs need a full sync; answer with
    /// [`Event::RulesChecked`].
    CheckRules,
    /// Trim run history older than `before`.
    TrimHistory {
        before: DateTime<Utc>,
    },
    /// Answer a caller (after the state persisted before it is written).
    Reply {
        reply: ReplyId,
        answer: Answer,
    },
    /// An after hook asked to stop the service: answer with
    /// [`Event::Shutdown`].
    StopService {
        reason: String,
    },
    /// The graceful stop is complete: nothing runs, the state is persisted.
    Stopped,
    /// Send [`Event::Tick`] at this time (the earliest of the machine's
    /// timers), unless another event comes first.
    WakeAt(DateTime<Utc>),
}
