//! What a caller passes to a run: why it runs, where progress goes, and a
//! flag to stop it between batches.

use autosync_model::{RunReason, StepRecord, StepType};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Receives a run's progress (a CLI progress bar, the service's live view).
pub trait ProgressSink: Send + Sync {
    /// A step begins; `expected` is the number of objects it will process
    /// when known.
    fn step_started(&self, index: usize, step: StepType, expected: Option<u64>);
    /// Objects processed so far by the current step.
    fn advanced(&self, processed: u64);
    fn step_finished(&self, index: usize, record: &StepRecord);
    /// The step waits before it starts, and why, as a sentence: "waiting
    /// for the sync of `hr` in process 1234 (run 17)" (another process's
    /// sync step runs). Said once per reason; `step_started` follows when
    /// the wait ends.
    fn waiting(&self, index: usize, step: StepType, why: &str) {
        let _ = (index, step, why);
    }
}

/// Asks a run to stop; checked between batches. The run then ends with
/// `stopped-user-requested`, its committed batches kept.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Options of one run.
#[derive(Clone)]
pub struct RunOptions {
    pub reason: RunReason,
    pub progress: Option<Arc<dyn ProgressSink>>,
    pub cancel: CancelFlag,
    /// Objects per sync batch, one commit each; `None` is the default
    /// (20,000). For tests that need many batches without many objects;
    /// not in the configuration file or the CLI.
    pub sync_batch: Option<NonZeroUsize>,
}

impl RunOptions {
    /// A run with no progress sink and a fresh cancel flag.
    pub fn new(reason: RunReason) -> Self {
        RunOptions {
            reason,
            progress: None,
            cancel: CancelFlag::new(),
            sync_batch: None,
        }
    }

    /// Objects per sync batch: [`RunOptions::sync_batch`] or `default`.
    pub(crate) fn sync_page(&self, default: usize) -> usize {
        self.sync_batch.map_or(default, NonZeroUsize::get)
    }

    /// A manual run started by `by`.
    pub fn manual(by: &str) -> Self {
        Self::new(RunReason::Manual { by: by.to_owned() })
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("reason", &self.reason)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .field("sync_batch", &self.sync_batch)
            .finish()
    }
}
