//! The blocking work the shell carries out for the state machine's
//! effects, each on a blocking thread (never on the event loop): running a
//! request (with its hooks), and every read or write of the store and the
//! engine the machine asks for. Each returns the event that answers it.

use crate::hooks::{BeforeDecision, HookError, Hooks};
use autosync_controller::machine::{
    AfterDecision, Event, ReplyId, RunEnd, RunFacts, RunOutcome, SeenRun, Startup, Stops,
    facts_wanted,
};
use autosync_controller::{CancelFlag, CsState, QueuedRequest, RunProgress, SyncEngine};
use autosync_model::{RunId, RunRecord, RunStatus};
use autosync_store::Store;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// How many recent runs of an MA tell whether an interrupted request's run
/// completed.
const RECENT_RUNS: usize = 100;

/// Runs one request: the before hook (which may skip it), the profile, the
/// after hook; then reads what the machine needs to decide what follows.
/// Hook errors go to `hook_error` (the safe default is used).
pub(crate) fn run_request(
    engine: &dyn SyncEngine,
    store: &dyn Store,
    hooks: &Hooks,
    request: &QueuedRequest,
    cancel: CancelFlag,
    progress: RunProgress,
    hook_error: impl Fn(HookError),
) -> RunEnd {
    let (ma, profile, reason) = (&request.ma, &request.profile, &request.reason);
    if hooks.has_before() {
        let outcome = hooks.before(ma, profile, reason, Utc::now());
        if let Some(e) = outcome.error {
            hook_error(e);
        }
        if let BeforeDecision::Skip { reason: why } = outcome.decision {
            return RunEnd {
                ma: ma.clone(),
                outcome: RunOutcome::Skipped(why),
                after: AfterDecision::Continue,
                facts: RunFacts::default(),
            };
        }
    }
    let result = engine.run_profile_with_progress(ma, profile, reason.clone(), cancel, progress);
    let mut after = AfterDecision::Continue;
    if hooks.has_after()
        && let Ok(record) = &result
    {
        let outcome = hooks.after(record, Utc::now());
        if let Some(e) = outcome.error {
            hook_error(e);
        }
        after = outcome.decision;
    }
    let (outcome, facts) = match result {
        Ok(record) => {
            let facts = if record.status == RunStatus::NoStartMaAlreadyRunning {
                RunFacts::default()
            } else {
                facts(engine, store, &record)
            };
            (RunOutcome::Ran(record), facts)
        }
        Err(e) => (RunOutcome::NotStarted(e), RunFacts::default()),
    };
    RunEnd {
        ma: ma.clone(),
        outcome,
        after,
        facts,
    }
}

/// What the machine reads after a run: counts of the MAs `decide` looks
/// at, and what a staging hold says was exceeded.
fn facts(engine: &dyn SyncEngine, store: &dyn Store, record: &RunRecord) -> RunFacts {
    let (mas, hold) = facts_wanted(record);
    let staging_exceeded = if hold {
        autosync_engine::thresholds::staging_hold(store, &record.ma)
            .ok()
            .flatten()
            .map(|h| h.exceeded.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let deletion_stop = record
        .steps
        .iter()
        .any(|s| s.status == RunStatus::StoppedDeletionThresholdExceeded)
        .then(|| {
            autosync_engine::thresholds::deletion_stop_waiting(store, &record.ma)
                .ok()
                .flatten()
        })
        .flatten()
        .map(|d| d.summary());
    let imported = record.steps.iter().any(|s| s.step_type.is_import());
    let staging_hold_gone = imported
        && !hold
        && matches!(
            autosync_engine::thresholds::staging_hold(store, &record.ma),
            Ok(None)
        );
    let deletion_stops_gone = mas
        .iter()
        .filter(|ma| {
            matches!(
                autosync_engine::thresholds::deletion_stop_waiting(store, ma),
                Ok(None)
            )
        })
        .cloned()
        .collect();
    RunFacts {
        cs: counts(engine, &mas),
        staging_exceeded,
        deletion_stop,
        staging_hold_gone,
        deletion_stops_gone,
    }
}

/// The connector-space counts of `mas` (`None` when unreadable).
pub(crate) fn counts(engine: &dyn SyncEngine, mas: &[String]) -> BTreeMap<String, Option<CsState>> {
    mas.iter()
        .map(|ma| {
            let cs = match engine.cs_state(ma) {
                Ok(cs) => Some(cs),
                Err(e) => {
                    tracing::warn!(ma = %ma, "cannot read the connector space's counts: {e}");
                    None
                }
            };
            (ma.clone(), cs)
        })
        .collect()
}

/// The id of the newest run in the store (0 when none or unreadable).
fn newest_run_id(store: &dyn Store) -> RunId {
    store
        .read()
        .ok()
        .and_then(|mut r| r.runs(None, 1).ok())
        .and_then(|runs| runs.first().map(|r| r.id))
        .unwrap_or(0)
}

/// Runs after `after`, with the facts of those that ended and are not
/// `known`. Cheap when nothing changed: one read of the newest run id.
pub(crate) fn look_for_runs(
    engine: &dyn SyncEngine,
    store: &dyn Store,
    after: RunId,
    known: &BTreeSet<RunId>,
    always: bool,
) -> Event {
    if !always && newest_run_id(store) <= after {
        return Event::RunsSeen(Ok(Vec::new()));
    }
    let runs = match engine.runs_since(after) {
        Ok(runs) => runs,
        Err(e) => return Event::RunsSeen(Err(e.to_string())),
    };
    let seen = runs
        .into_iter()
        .map(|record| {
            let ended = !matches!(
                record.status,
                RunStatus::InProgress | RunStatus::NoStartMaAlreadyRunning
            );
            let facts = if ended && !known.contains(&record.id) {
                facts(engine, store, &record)
            } else {
                RunFacts::default()
            };
            SeenRun { record, facts }
        })
        .collect();
    Event::RunsSeen(Ok(seen))
}

/// What a threshold stopped on `ma`.
pub(crate) fn check_approval(store: &dyn Store, reply: ReplyId, ma: String) -> Event {
    let found = (|| {
        let stopped_export = autosync_engine::thresholds::deletion_stop_waiting(store, &ma)
            .map_err(|e| e.to_string())?
            .is_some();
        let held_staging = autosync_engine::thresholds::staging_hold(store, &ma)
            .map_err(|e| e.to_string())?
            .is_some();
        Ok(Stops {
            stopped_export,
            held_staging,
        })
    })();
    Event::ApprovalChecked { reply, ma, found }
}

/// The engine's rejection, then the pending imports and exports left.
pub(crate) fn reject(
    engine: &dyn SyncEngine,
    store: &dyn Store,
    reply: ReplyId,
    ma: String,
) -> Event {
    let result = engine.reject(&ma).map(|message| {
        let (pending_import, pending_export) = store
            .read()
            .and_then(|mut r| r.cs_counts(&ma))
            .map(|c| (c.pending_import, c.pending_export))
            .unwrap_or((0, 0));
        (message, pending_import, pending_export)
    });
    Event::Rejected { reply, ma, result }
}

/// Trims run history older than `before`.
pub(crate) fn trim_history(store: &dyn Store, before: DateTime<Utc>) {
    match store.trim_runs(before) {
        Ok(0) => {}
        Ok(n) => tracing::info!(runs = n, before = %before, "trimmed run history"),
        Err(e) => tracing::warn!("cannot trim the run history: {e}"),
    }
}

/// What a start finds in the store for the persisted `startup.state`.
pub(crate) fn startup(
    engine: &dyn SyncEngine,
    store: &dyn Store,
    mas: &[String],
    mut startup: Startup,
) -> Startup {
    startup.newest_run = newest_run_id(store);
    let mut read = store.read().ok();
    let mut runs_of = |ma: &str, n: usize| -> Vec<RunRecord> {
        read.as_mut()
            .and_then(|r| r.runs(Some(ma), n).ok())
            .unwrap_or_default()
    };
    for ma in startup.state.interrupted_mas() {
        let runs = runs_of(&ma, RECENT_RUNS);
        startup.recent_runs.insert(ma, runs);
    }
    for ma in mas {
        if let Some(run) = runs_of(ma, 1).into_iter().next() {
            startup.last_runs.insert(ma.clone(), run);
        }
    }
    drop(read);
    for ma in mas {
        match autosync_engine::thresholds::deletion_stop_waiting(store, ma) {
            Ok(Some(stop)) => {
                startup
                    .deletion_stops
                    .insert(ma.clone(), (stop.run_id, stop.summary()));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(ma = %ma, "cannot read whether an export stopped at the deletion threshold: {e}")
            }
        }
    }
    startup.cs = counts(engine, mas);
    startup.full_syncs_needed = engine.full_syncs_needed().map_err(|e| e.to_string());
    startup
}
