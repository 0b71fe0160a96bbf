//! A run the store failed under: its step, or the run where it could not
//! go on, ends `stopped-error` (`stopped-deadlocked` when another process
//! held the store's write lock), recorded now or, when the store fails
//! again, once it takes writes again (`unrecorded`).

use super::{StepCtx, persist_end};
use crate::error::EngineError;
use crate::{Engine, export};
use autosync_model::{RunRecord, RunStatus};

/// The run stopped where it could not go on, on store failure `e`, before
/// its end was recorded: its step in progress and the run end here.
pub(super) fn end(engine: &Engine, record: &mut RunRecord, e: &EngineError) {
    let now = chrono::Utc::now();
    for step in &mut record.steps {
        if step.status == RunStatus::InProgress {
            step.status = RunStatus::StoppedError;
            step.ended_at = Some(now);
            step.message = Some(e.to_string());
        }
    }
    if !record.status.is_stopped() {
        record.status = RunStatus::StoppedError;
    }
    record.ended_at = Some(now);
    if let Err(again) = persist_end(engine, record) {
        tracing::error!(error = %again, "could not record the failed run (recorded once the store takes writes again)");
    }
    tracing::error!(error = %e, "run stopped by a store failure");
}

/// The step of `ctx` (the run's last) stopped on store failure `e`: the
/// step and the run end, with what the step committed.
pub(super) fn step(
    ctx: &StepCtx<'_>,
    record: &mut RunRecord,
    index: usize,
    e: autosync_store::StoreError,
) -> Result<(), EngineError> {
    let durable = ctx.take_durable();
    let Some(step_record) = record.steps.last_mut() else {
        return Err(e.into());
    };
    // What the step committed before the failure is counted.
    if let Some((counters, errors)) = durable {
        step_record.counters = counters;
        step_record.errors = errors;
    }
    // Another process held the store's write lock past the timeout: MIM's
    // `stopped-deadlocked` (retried by default); anything else is a store
    // failure.
    let locked = e.kind == autosync_store::StoreErrorKind::Busy;
    let status = if locked {
        RunStatus::StoppedDeadlocked
    } else {
        RunStatus::StoppedError
    };
    step_record.status = status;
    let mut message = format!("store: {e}");
    if ctx
        .sent_unrecorded
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        // As for an export killed while sending (`close_unfinished_runs`).
        message = format!(
            "{message}; the export had sent changes when the store failed, and its counters are what it recorded: {}",
            export::in_flight::UNCOUNTED
        );
    }
    step_record.message = Some(message);
    step_record.ended_at = Some(chrono::Utc::now());
    record.status = status;
    record.ended_at = Some(chrono::Utc::now());
    // The store just failed: if it fails again, the run's end is written
    // once it takes writes again (`persist_end`).
    if let Err(again) = persist_end(ctx.engine, record) {
        tracing::error!(error = %again, "could not record the failed run (recorded once the store takes writes again)");
    }
    if locked {
        tracing::warn!(error = %e, "run stopped: the store stayed locked by another process");
        if let Some(p) = &ctx.opts.progress
            && let Some(step_record) = record.steps.last()
        {
            p.step_finished(index, step_record);
        }
        return Ok(());
    }
    tracing::error!(error = %e, "run stopped by a store failure");
    Err(e.into())
}
