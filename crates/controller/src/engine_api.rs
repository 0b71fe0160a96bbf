//! The narrow trait through which the controller sees a synchronisation
//! engine: its management agents and run profiles, running a profile, the
//! pending counts of a connector space, and the runs the controller did not
//! start. Our engine is one implementation; a Microsoft MIM engine driven
//! remotely could be another, so nothing in the controller reaches past it.
//!
//! The calls block; the executor calls them from blocking threads.

use autosync_model::{MaDef, RunId, RunReason, RunRecord, StepType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// A management agent as the controller sees it: its name and its run
/// profiles with their steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaInfo {
    pub name: String,
    /// Run profile name → its steps, in order.
    pub profiles: BTreeMap<String, Vec<StepType>>,
}

impl MaInfo {
    /// The MA of a definition, with the conventional profiles when the
    /// definition names none.
    pub fn from_def(def: &MaDef) -> Self {
        let profiles = def
            .profile_names()
            .into_iter()
            .filter_map(|name| def.profile(&name).map(|steps| (name, steps)))
            .collect();
        MaInfo {
            name: def.name.clone(),
            profiles,
        }
    }

    /// The steps of a run profile.
    pub fn steps(&self, profile: &str) -> Option<&[StepType]> {
        self.profiles.get(profile).map(Vec::as_slice)
    }

    /// Whether a profile has a synchronisation step (it then needs the
    /// global sync lock). Unknown profiles have none.
    pub fn has_sync(&self, profile: &str) -> bool {
        self.steps(profile).is_some_and(has_sync_step)
    }
}

/// Whether any of these steps is a synchronisation.
pub fn has_sync_step(steps: &[StepType]) -> bool {
    steps.iter().any(|s| s.is_sync())
}

/// What a connector space holds that still has to flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsState {
    /// Objects with a change staged by an import and not yet synchronised.
    pub pending_import: u64,
    /// Objects with a change staged by synchronisation and not yet exported.
    pub pending_export: u64,
    /// Objects exported and not yet seen back by a confirming import.
    pub unconfirmed_export: u64,
    /// Referred objects whose connector on this MA was added or left (an
    /// export sent the add or the delete, a sync disconnected it) and
    /// whose referrers no sync has worked out since: the references to
    /// them a sync's end sends.
    #[serde(default)]
    pub references_ready: u64,
}

impl CsState {
    /// Nothing left to flow.
    pub fn is_quiescent(&self) -> bool {
        self.pending_import == 0
            && self.pending_export == 0
            && self.unconfirmed_export == 0
            && self.references_ready == 0
    }
}

/// A hook run once when a [`CancelFlag`] is set.
type CancelHook = Box<dyn FnOnce() + Send>;

/// Asks a running profile to stop at its next safe point. Cloning shares
/// the flag. An engine whose own cancellation is another type registers a
/// hook with [`CancelFlag::on_cancel`] to forward it (no polling).
#[derive(Clone, Default)]
pub struct CancelFlag {
    flag: Arc<AtomicBool>,
    hooks: Arc<Mutex<Vec<CancelHook>>>,
}

impl std::fmt::Debug for CancelFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelFlag")
            .field(&self.is_cancelled())
            .finish()
    }
}

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    /// Ask the run to stop (it ends `stopped-user-requested`).
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let hooks: Vec<CancelHook> = {
            let mut guard = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
            guard.drain(..).collect()
        };
        for hook in hooks {
            hook();
        }
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    /// Runs `hook` when the flag is set (at once when it already is).
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        {
            let mut guard = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
            if !self.is_cancelled() {
                guard.push(Box::new(hook));
                return;
            }
        }
        hook();
    }
}

/// Why a call to the engine did not give an answer. A run that started and
/// then stopped is not an error: it is a [`RunRecord`] with a `stopped-*`
/// status.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EngineCallError {
    #[error("management agent `{ma}` does not exist in the engine")]
    UnknownMa { ma: String },
    #[error("management agent `{ma}` has no run profile `{profile}`")]
    UnknownProfile { ma: String, profile: String },
    #[error("management agent `{ma}` is already running a profile")]
    AlreadyRunning { ma: String },
    /// An approval or rejection found nothing that a threshold stopped.
    #[error("{}", autosync_model::threshold::nothing_waits(.ma))]
    NothingWaits { ma: String },
    /// The engine cannot be reached or is shutting down; worth retrying.
    #[error("the engine is unavailable: {message}")]
    Unavailable { message: String },
    #[error("the engine failed: {message}")]
    Failed { message: String },
}

impl EngineCallError {
    /// Whether asking again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            EngineCallError::AlreadyRunning { .. } | EngineCallError::Unavailable { .. }
        )
    }
}

/// A synchronisation engine as the controller drives it.
pub trait SyncEngine: Send + Sync {
    /// Every management agent with its run profiles and their steps.
    fn management_agents(&self) -> Vec<MaInfo>;

    /// Runs a profile to its end (or until `cancel` is set) and returns its
    /// record, whatever its status. The record carries `reason`.
    fn run_profile(
        &self,
        ma: &str,
        profile: &str,
        reason: RunReason,
        cancel: CancelFlag,
    ) -> Result<RunRecord, EngineCallError>;

    /// Pending import, pending export and unconfirmed export counts of an
    /// MA's connector space.
    fn cs_state(&self, ma: &str) -> Result<CsState, EngineCallError>;

    /// Runs with an id greater than `after_run_id`, oldest first, including
    /// those still in progress: how the controller sees runs it did not start.
    fn runs_since(&self, after_run_id: RunId) -> Result<Vec<RunRecord>, EngineCallError>;

    /// [`SyncEngine::run_profile`] reporting its progress into `progress`
    /// (for the status a dashboard shows). Engines that cannot report
    /// progress run the profile without it.
    fn run_profile_with_progress(
        &self,
        ma: &str,
        profile: &str,
        reason: RunReason,
        cancel: CancelFlag,
        progress: RunProgress,
    ) -> Result<RunRecord, EngineCallError> {
        let _ = progress;
        self.run_profile(ma, profile, reason, cancel)
    }

    /// Closes the runs a crashed process left `in-progress` (as
    /// `stopped-server`), leaving alone those of live processes; returns
    /// the runs it closed. The service does it at start-up, before it
    /// reads the run history. An engine without run history closes none.
    fn close_unfinished_runs(&self) -> Result<Vec<RunRecord>, EngineCallError> {
        Ok(Vec::new())
    }

    /// The MAs whose connector space was last synchronised under other
    /// rules than the current ones, each with why: a full sync of each
    /// re-applies them. An engine that cannot tell says none.
    fn full_syncs_needed(&self) -> Result<Vec<(String, String)>, EngineCallError> {
        Ok(Vec::new())
    }

    /// An operator's approval of what a threshold stopped on `ma`: the
    /// syncs a staging threshold held may run, and the next export may go
    /// over the export deletion threshold once. Returns a sentence saying
    /// what was approved.
    fn approve(&self, ma: &str) -> Result<String, EngineCallError> {
        Err(EngineCallError::Failed {
            message: format!("this engine cannot approve what a threshold stopped on `{ma}`"),
        })
    }

    /// An operator's rejection of what a threshold stopped on `ma`: what
    /// an import over a staging threshold staged is dropped (the next
    /// import reads the source again), and the pending deletes of an
    /// export stopped at the deletion threshold are dropped. Returns a
    /// sentence saying what was dropped.
    fn reject(&self, ma: &str) -> Result<String, EngineCallError> {
        Err(EngineCallError::Failed {
            message: format!("this engine cannot reject what a threshold stopped on `{ma}`"),
        })
    }
}

/// Where a run is: its current step and how many objects it processed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressState {
    /// 0-based index of the current step, `None` before the first starts.
    pub step_index: Option<usize>,
    pub step: Option<StepType>,
    pub processed: u64,
    /// Objects the step expects to process, when known.
    pub expected: Option<u64>,
}

/// A run's live progress, written by the engine's thread and read by the
/// status. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct RunProgress(Arc<Mutex<ProgressState>>);

impl RunProgress {
    pub fn new() -> Self {
        Self::default()
    }

    /// The progress now.
    pub fn get(&self) -> ProgressState {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Changes the progress.
    pub fn update(&self, f: impl FnOnce(&mut ProgressState)) {
        if let Ok(mut state) = self.0.lock() {
            f(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_flag_clones_should_share_one_flag() {
        let flag = CancelFlag::new();
        let seen_by_run = flag.clone();
        assert!(!seen_by_run.is_cancelled());
        flag.cancel();
        assert!(seen_by_run.is_cancelled());
    }

    #[test]
    fn cancel_hooks_should_run_once_when_the_flag_is_set_or_at_once_if_already_set() {
        let flag = CancelFlag::new();
        let forwarded = Arc::new(AtomicBool::new(false));
        let f = forwarded.clone();
        flag.on_cancel(move || f.store(true, Ordering::SeqCst));
        assert!(!forwarded.load(Ordering::SeqCst));
        flag.clone().cancel();
        assert!(forwarded.load(Ordering::SeqCst));
        let late = Arc::new(AtomicBool::new(false));
        let l = late.clone();
        flag.on_cancel(move || l.store(true, Ordering::SeqCst));
        assert!(late.load(Ordering::SeqCst));
    }

    #[test]
    fn ma_info_should_know_which_profiles_sync() {
        let ma = MaInfo {
            name: "hr".into(),
            profiles: BTreeMap::from([
                (
                    "import-sync".into(),
                    vec![StepType::DeltaImport, StepType::DeltaSync],
                ),
                ("export".into(), vec![StepType::Export]),
            ]),
        };
        assert!(ma.has_sync("import-sync"));
        assert!(!ma.has_sync("export"));
        assert!(!ma.has_sync("missing"));
    }

    #[test]
    fn only_busy_or_unavailable_engines_should_be_worth_retrying() {
        assert!(
            EngineCallError::Unavailable {
                message: "down".into()
            }
            .is_retryable()
        );
        assert!(EngineCallError::AlreadyRunning { ma: "hr".into() }.is_retryable());
        assert!(!EngineCallError::UnknownMa { ma: "hr".into() }.is_retryable());
    }
}
