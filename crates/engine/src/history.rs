//! Run history: per-object errors recorded with the run (capped per step,
//! counted exactly), what a step ends with, and how a run's status is the
//! worst of its steps'.

use autosync_model::{
    CsObject, ErrorStage, ObjectError, RunId, RunObjectError, RunStatus, StepCounters, StepRecord,
};
use autosync_store::{StoreResult, StoreTxn};

/// At most this many per-object errors are recorded per step; the count in
/// the step record stays exact.
pub const MAX_RECORDED_ERRORS: u64 = 10_000;

/// The per-object errors of one step, flushed with each batch's transaction.
pub(crate) struct StepErrors {
    run_id: RunId,
    step_index: u32,
    ma: String,
    stage: ErrorStage,
    pub count: u64,
    pending: Vec<RunObjectError>,
}

impl StepErrors {
    /// Forget the errors after the first `count` (their writes were rolled
    /// back).
    pub fn rewind(&mut self, count: u64) {
        self.count = count;
        self.pending.clear();
    }

    pub fn new(run_id: RunId, step_index: u32, ma: &str, stage: ErrorStage) -> Self {
        StepErrors {
            run_id,
            step_index,
            ma: ma.to_owned(),
            stage,
            count: 0,
            pending: Vec::new(),
        }
    }

    /// Record an error about `object` (an anchor, or a location in the
    /// source) and return it, ready to be kept on the object.
    pub fn push(&mut self, object: &str, error_type: &str, detail: String) -> ObjectError {
        let error = ObjectError {
            stage: self.stage,
            error_type: error_type.to_owned(),
            detail,
            run_id: Some(self.run_id),
        };
        self.count += 1;
        if self.count <= MAX_RECORDED_ERRORS {
            self.pending.push(RunObjectError {
                run_id: self.run_id,
                step_index: self.step_index,
                ma: self.ma.clone(),
                object: object.to_owned(),
                error: error.clone(),
            });
        }
        tracing::debug!(object, error_type, "per-object error");
        error
    }

    /// Write the errors gathered since the last flush.
    pub fn flush(&mut self, txn: &mut dyn StoreTxn) -> StoreResult<()> {
        if !self.pending.is_empty() {
            txn.run_errors_insert(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// Clear an object's error of `stage` (a later run succeeded on it);
/// returns whether the object changed.
pub(crate) fn clear_error(cs: &mut CsObject, stage: ErrorStage) -> bool {
    if cs.error.as_ref().is_some_and(|e| e.stage == stage) {
        cs.error = None;
        true
    } else {
        false
    }
}

/// What a step ended with.
#[derive(Debug)]
pub(crate) struct StepOutcome {
    pub status: RunStatus,
    pub counters: StepCounters,
    pub errors: u64,
    pub message: Option<String>,
}

impl StepOutcome {
    pub fn fill(self, record: &mut StepRecord) {
        record.status = self.status;
        record.counters = self.counters;
        record.errors = self.errors;
        record.message = self.message;
        record.ended_at = Some(chrono::Utc::now());
    }
}

/// The status of a step that was not stopped: errors first, then whether it
/// processed anything.
pub(crate) fn completed(errors: u64, error_status: RunStatus, processed: u64) -> RunStatus {
    if errors > 0 {
        error_status
    } else if processed == 0 {
        RunStatus::CompletedNoObjects
    } else {
        RunStatus::Success
    }
}

/// The worst of the steps' statuses (`success` over `completed-no-objects`
/// when both occur).
pub(crate) fn worst(steps: &[StepRecord]) -> RunStatus {
    let mut out: Option<RunStatus> = None;
    for s in steps {
        out = Some(match out {
            None => s.status,
            Some(o) if s.status.severity() > o.severity() => s.status,
            Some(RunStatus::CompletedNoObjects) if s.status == RunStatus::Success => {
                RunStatus::Success
            }
            Some(o) => o,
        });
    }
    out.unwrap_or(RunStatus::CompletedNoObjects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_model::StepType;

    fn step(status: RunStatus) -> StepRecord {
        StepRecord {
            step_type: StepType::FullImport,
            status,
            started_at: chrono::Utc::now(),
            ended_at: None,
            counters: StepCounters::for_step(StepType::FullImport),
            errors: 0,
            message: None,
        }
    }

    #[test]
    fn a_run_status_should_be_the_worst_of_its_steps() {
        let steps = [
            step(RunStatus::CompletedNoObjects),
            step(RunStatus::Success),
            step(RunStatus::CompletedSyncErrors),
        ];
        assert_eq!(worst(&steps), RunStatus::CompletedSyncErrors);
        assert_eq!(worst(&steps[..2]), RunStatus::Success);
        assert_eq!(worst(&steps[..1]), RunStatus::CompletedNoObjects);
        assert_eq!(
            worst(&[
                step(RunStatus::Success),
                step(RunStatus::StoppedUserRequested)
            ]),
            RunStatus::StoppedUserRequested
        );
    }
}
