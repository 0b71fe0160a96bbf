//! Our engine seen through the controller's narrow [`SyncEngine`] trait:
//! MAs and profiles from the definitions, runs through
//! `Engine::run_profile`, connector-space counts and run history from the
//! store.

use autosync_controller::{CancelFlag, CsState, EngineCallError, MaInfo, RunProgress, SyncEngine};
use autosync_engine::{DiscardError, Engine, EngineError, ProgressSink, RejectError, RunOptions};
use autosync_model::{RunId, RunReason, RunRecord, RunStatus};
use autosync_model::{StepRecord, StepType};
use autosync_store::{CsFilter, StoreError};
use std::sync::Arc;

/// How many recent runs `runs_since` looks at.
const RECENT_RUNS: usize = 1000;

/// [`SyncEngine`] over our [`Engine`].
#[derive(Clone, Debug)]
pub struct EngineAdapter(pub Arc<Engine>);

/// A store that is busy, full, read-only or failing to read or write may
/// be fine later: the controller asks again (`Unavailable`). A constraint
/// the data broke, a record that cannot be decoded, a damaged store or
/// one of a newer version stay so however often the run is tried: the
/// run failed (`Failed`), it is not tried again and again (`run --once`
/// would wait for ever).
fn store_error(e: StoreError) -> EngineCallError {
    use autosync_store::StoreErrorKind as K;
    let message = format!("store: {e}");
    match e.kind {
        K::Busy | K::Conflict | K::Full | K::ReadOnly | K::Io => {
            EngineCallError::Unavailable { message }
        }
        K::Invalid | K::Decode | K::Corrupt | K::Version => EngineCallError::Failed { message },
    }
}

fn engine_error(e: EngineError) -> EngineCallError {
    match e {
        EngineError::UnknownMa { name, .. } => EngineCallError::UnknownMa { ma: name },
        EngineError::UnknownProfile { ma, profile, .. } => {
            EngineCallError::UnknownProfile { ma, profile }
        }
        EngineError::Store(e) => store_error(e),
        other => EngineCallError::Failed {
            message: other.to_string(),
        },
    }
}

impl SyncEngine for EngineAdapter {
    fn management_agents(&self) -> Vec<MaInfo> {
        self.0.system().mas.iter().map(MaInfo::from_def).collect()
    }

    fn run_profile(
        &self,
        ma: &str,
        profile: &str,
        reason: RunReason,
        cancel: CancelFlag,
    ) -> Result<RunRecord, EngineCallError> {
        let opts = RunOptions::new(reason);
        let engine_cancel = opts.cancel.clone();
        cancel.on_cancel(move || engine_cancel.cancel());
        self.0.run_profile(ma, profile, opts).map_err(engine_error)
    }

    fn cs_state(&self, ma: &str) -> Result<CsState, EngineCallError> {
        if self.0.system().ma(ma).is_none() {
            return Err(EngineCallError::UnknownMa { ma: ma.to_owned() });
        }
        // Asked after every run: only the figures that flow, each counted
        // from its own (small) index, never the whole connector space.
        let count = || -> Result<CsState, StoreError> {
            let mut r = self.0.store().read()?;
            Ok(CsState {
                pending_import: r.cs_count(ma, CsFilter::PendingImport)?,
                pending_export: r.cs_count(ma, CsFilter::PendingExport)?,
                unconfirmed_export: r.cs_count(ma, CsFilter::UnconfirmedExport)?,
                references_ready: r.ref_out_sendable_count(ma)? + r.ref_touched_names_count(ma)?,
            })
        };
        count().map_err(store_error)
    }

    fn run_profile_with_progress(
        &self,
        ma: &str,
        profile: &str,
        reason: RunReason,
        cancel: CancelFlag,
        progress: RunProgress,
    ) -> Result<RunRecord, EngineCallError> {
        let mut opts = RunOptions::new(reason);
        opts.progress = Some(Arc::new(ProgressBridge(progress)));
        let engine_cancel = opts.cancel.clone();
        cancel.on_cancel(move || engine_cancel.cancel());
        self.0.run_profile(ma, profile, opts).map_err(engine_error)
    }

    fn full_syncs_needed(&self) -> Result<Vec<(String, String)>, EngineCallError> {
        self.0
            .full_syncs_needed()
            .map(|v| v.into_iter().map(|n| (n.ma, n.because)).collect())
            .map_err(engine_error)
    }

    fn approve(&self, ma: &str) -> Result<String, EngineCallError> {
        self.0
            .approve(ma)
            .map(|a| a.describe(ma))
            .map_err(engine_error)
    }

    fn reject(&self, ma: &str) -> Result<String, EngineCallError> {
        match self.0.reject(ma) {
            Ok(r) => Ok(r.describe(ma)),
            Err(RejectError::Discard(DiscardError::Engine(e))) => Err(engine_error(e)),
            Err(RejectError::Discard(DiscardError::Running { ma })) => {
                Err(EngineCallError::AlreadyRunning { ma })
            }
            Err(RejectError::Nothing { ma }) => Err(EngineCallError::NothingWaits { ma }),
        }
    }

    fn close_unfinished_runs(&self) -> Result<Vec<RunRecord>, EngineCallError> {
        self.0.close_unfinished_runs().map_err(engine_error)
    }

    fn runs_since(&self, after_run_id: RunId) -> Result<Vec<RunRecord>, EngineCallError> {
        let mut runs = self
            .0
            .store()
            .read()
            .and_then(|mut r| r.runs(None, RECENT_RUNS))
            .map_err(store_error)?;
        runs.retain(|r| r.id > after_run_id);
        if runs.iter().any(|r| r.status == RunStatus::InProgress) {
            // Runs of a process that died are closed (`stopped-server`), so
            // nobody waits for them forever.
            let closed = self.0.close_unfinished_runs().map_err(engine_error)?;
            if !closed.is_empty() {
                for run in &mut runs {
                    if let Some(c) = closed.iter().find(|c| c.id == run.id) {
                        *run = c.clone();
                    }
                }
            }
        }
        runs.reverse();
        Ok(runs)
    }
}

/// The engine's progress callbacks written into the controller's shared
/// progress cell.
struct ProgressBridge(RunProgress);

impl ProgressSink for ProgressBridge {
    fn step_started(&self, index: usize, step: StepType, expected: Option<u64>) {
        self.0.update(|p| {
            p.step_index = Some(index);
            p.step = Some(step);
            p.processed = 0;
            p.expected = expected;
        });
    }

    fn advanced(&self, processed: u64) {
        self.0.update(|p| p.processed = processed);
    }

    fn step_finished(&self, _index: usize, _record: &StepRecord) {}
}

#[cfg(test)]
mod tests {
    use super::store_error;
    use autosync_controller::EngineCallError;
    use autosync_store::{StoreError, StoreErrorKind as K};

    #[test]
    fn only_store_errors_a_later_try_may_mend_are_retried() {
        let error = |kind| StoreError {
            kind,
            message: "x".into(),
        };
        for kind in [K::Busy, K::Conflict, K::Full, K::ReadOnly, K::Io] {
            assert!(store_error(error(kind)).is_retryable(), "{kind:?}");
        }
        for kind in [K::Invalid, K::Decode, K::Corrupt, K::Version] {
            let e = store_error(error(kind));
            assert!(
                matches!(&e, EngineCallError::Failed { message } if message == "store: x"),
                "{kind:?}: {e:?}"
            );
        }
    }
}
