//! Runs whose end this process could not write: the store failed (a full
//! disk, a read-only file, another process holding the write lock) when
//! the run's record was to be written as ended, so the store still shows
//! it `in-progress`, with the counters of its last commit.
//!
//! The process keeps the record as the run ended, with why its end was not
//! written, and keeps the run's MA lease (so that no process, this one
//! included, takes the run for one whose process ended), and writes it once
//! the store takes writes again: before the next run of that MA starts, and
//! when runs left in progress are closed
//! ([`crate::Engine::close_unfinished_runs`], which the service calls
//! while a run is in progress), never as "the process ended". Until then
//! `close_unfinished_runs` gives it as it ended, with the runs it closed:
//! the service does not wait for it as for a run in progress (`run --once`
//! gives up on an MA whose runs cannot start, and exits).
//!
//! The MA's lease is kept, but its heartbeat cannot be written while the
//! disk stays full: past its time to live other processes take the run for
//! one left by a process that ended (listings say so; one that closes it
//! so can only write that once the store takes writes: this one then finds
//! it closed).

use crate::Engine;
use autosync_model::repeated::{Repeated, Say};
use autosync_model::{RunId, RunRecord, RunStatus};
use autosync_store::{Store, StoreError, StoreResult};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The runs of this process whose end is not written yet.
#[derive(Default)]
pub(crate) struct Unrecorded {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    runs: BTreeMap<RunId, RunRecord>,
    /// Failed attempts to write them since one last worked (logged once a
    /// minute: the service tries every second).
    failing: Repeated,
}

impl Unrecorded {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `record`, ended, which the store could not write.
    pub fn keep(&self, record: RunRecord) {
        self.lock().runs.insert(record.id, record);
    }

    /// Whether a run of `ma` waits to be written.
    pub fn has_ma(&self, ma: &str) -> bool {
        self.lock().runs.values().any(|r| r.ma == ma)
    }

    /// Run `id` as it ended, if it waits to be written.
    pub fn get(&self, id: RunId) -> Option<RunRecord> {
        self.lock().runs.get(&id).cloned()
    }
}

/// The end of `record` as written once the store takes writes again: the
/// store failed (`error`) to write it. A run that had not stopped stops
/// `stopped-error` (its caller was told the store failed), a step still in
/// progress too, and the last step says why.
pub(crate) fn note(record: &mut RunRecord, error: &StoreError) {
    let now = chrono::Utc::now();
    if !record.status.is_stopped() {
        record.status = RunStatus::StoppedError;
    }
    record.ended_at.get_or_insert(now);
    for step in &mut record.steps {
        if step.status == RunStatus::InProgress {
            step.status = RunStatus::StoppedError;
            step.ended_at = Some(now);
        }
    }
    if let Some(last) = record.steps.last_mut() {
        let note = format!(
            "the store could not record this run's end: {error}; its counters are what it committed"
        );
        last.message = Some(match last.message.take() {
            Some(m) => format!("{m}; {note}"),
            None => note,
        });
    }
}

/// Writes the runs of `ma` (of every MA: `None`) whose end this process
/// could not write, each unless its record is no longer in progress, and
/// appends those written to `written`. Stops at the first failure (the
/// store does not take writes yet): the rest wait for the next call.
pub(crate) fn write(
    engine: &Engine,
    ma: Option<&str>,
    written: &mut Vec<RunRecord>,
) -> StoreResult<()> {
    let mut state = engine.unrecorded.lock();
    let ids: Vec<RunId> = state
        .runs
        .values()
        .filter(|r| ma.is_none_or(|m| r.ma == m))
        .map(|r| r.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    for id in ids {
        let Some(record) = state.runs.get(&id) else {
            continue;
        };
        match write_one(engine.store.as_ref(), record) {
            Ok(wrote) => {
                let Some(record) = state.runs.remove(&id) else {
                    continue;
                };
                if wrote {
                    tracing::warn!(run_id = id, ma = %record.ma, status = %record.status, "recorded the end of a run the store could not record when it ended");
                    written.push(record.clone());
                } else {
                    tracing::info!(run_id = id, ma = %record.ma, "a run whose end this process could not record was closed meanwhile");
                }
                // The MA's lease, kept while the run's end was not written,
                // unless a run of it runs here now (it holds the lease).
                let running = engine
                    .running
                    .lock()
                    .map(|r| r.contains(&record.ma))
                    .unwrap_or(true);
                if !running
                    && !state.runs.values().any(|r| r.ma == record.ma)
                    && let Err(e) = crate::lease::release(&engine.leases, &record.ma)
                {
                    tracing::warn!(ma = %record.ma, "cannot release the MA's lease (the next run takes it over): {e}");
                }
            }
            Err(e) => {
                if let Say::Log { failures, for_ } = state.failing.failed(Instant::now()) {
                    tracing::error!(
                        run_id = id,
                        failures,
                        seconds = for_.as_secs(),
                        "cannot record the end of a run yet (tried again): {e}"
                    );
                }
                return Err(e);
            }
        }
    }
    if let Some((failures, for_)) = state.failing.worked(Instant::now()) {
        tracing::info!(
            failures,
            seconds = for_.as_secs(),
            "the store takes writes again: the ends of runs it could not record are recorded"
        );
    }
    Ok(())
}

/// Writes `record` over its stored record if that is still in progress:
/// `false` when it is not (closed meanwhile, by another process).
fn write_one(store: &dyn Store, record: &RunRecord) -> StoreResult<bool> {
    let mut txn = store.begin()?;
    match txn.run_get(record.id)? {
        Some(stored) if stored.status == RunStatus::InProgress => {}
        _ => return Ok(false),
    }
    txn.run_update(record)?;
    txn.commit()?;
    Ok(true)
}
