//! The autosync synchronisation engine: the steps of a run profile (full and
//! delta import, full and delta synchronisation, export) and MIM's rules
//! (filters, join, projection, attribute flows with precedence, provisioning,
//! deprovisioning, the metaverse deletion rule), over the [`Store`] and
//! [`Connector`](autosync_connector::Connector) contracts.
//!
//! The engine runs what it is asked to run and never decides what runs next
//! (that is the controller's job). Concurrency: only one synchronisation step
//! at a time in the whole engine, across processes that share the store (a
//! sync step waits for another's: see `sync_turn`); at most one run per MA at
//! a time; imports and exports of different MAs run concurrently in their
//! callers' threads.
//!
//! Decisions worth knowing:
//! * An export delete that the system applied removes the CS object at once
//!   (there is nothing left to confirm).
//! * A confirming import that sees other values than those exported stages
//!   an update, and sync recomputes the export flows of that object.
//! * A disconnector with a pending export delete is on its way out: sync
//!   never joins or projects it.
//! * A full import reads its source every time (no watermark skip), so its
//!   errors are reported by every full import; a delta import may skip a
//!   source its watermark shows unchanged.
//! * An imported value over the MA's `max_value_size` makes its object a
//!   `value-too-large` error (known objects are kept, with the error).

pub mod applied;
mod changes;
mod compute;
mod confirm;
mod crashpoint;
mod discard;
pub use discard::{DiscardError, Discarded};
pub use export::held::{HeldValue, held_at_export};
pub use release::ReleaseError;
mod error;
mod export;
mod extensions;
mod filtered;
pub use filtered::{ConnectorFilters, FilterState};
mod history;
mod import;
mod import_schema;
pub mod lease;
mod options;
mod order;
mod rebuilt;
mod record_errors;
mod refs;
mod release;
mod rows;
pub use record_errors::{RecordError, record_errors};
mod rules;
mod run;
mod secrets;
mod sync;
mod sync_turn;
pub mod thresholds;
mod values;
mod write_only;

pub use applied::FullSyncNeeded;
pub use changes::MAX_RECORDED_CHANGES;
pub use confirm::whole_read_key;
pub use error::EngineError;
pub use history::MAX_RECORDED_ERRORS;
pub use options::{CancelFlag, ProgressSink, RunOptions};
pub use run::DELETE_CONNECTOR_SPACE;
pub use thresholds::{
    Approval, DeletionStop, RejectError, RejectedDeletes, Rejection, StagingHold,
    deletion_approval_key,
};

use autosync_connector::Registry;
use autosync_model::{RunRecord, RunStatus, StepType, SystemDef};
use autosync_store::Store;
use autosync_store::lease::{Instance, LeaseTiming, Leases};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The synchronisation engine. `Send + Sync`; share it in an `Arc`.
pub struct Engine {
    system: Arc<SystemDef>,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    rules: rules::Rules,
    /// The fingerprints of the rules, to record what each sync ran under.
    fingerprints: applied::Fingerprints,
    /// Held for the whole of a sync step (with the store's sync lease,
    /// which orders the syncs of other processes: `sync_turn`).
    sync_lock: Mutex<()>,
    /// MAs with a run in progress in this process.
    running: Mutex<HashSet<String>>,
    /// The MA and sync leases this engine takes (see [`lease`]).
    leases: Leases,
    /// Runs of this process whose end the store could not write yet.
    unrecorded: run::unrecorded::Unrecorded,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "mas",
                &self.system.mas.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Engine {
    /// Compiles every rule (expressions, scripts) once and declares the
    /// metaverse index (the join attributes and what scripts' lookups
    /// search) and the configuration's names to the store.
    pub fn new(
        system: Arc<SystemDef>,
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
    ) -> Result<Engine, EngineError> {
        let mut rules = rules::Rules::compile(&system)?;
        // Write-only attributes: the MA's and its connector type's own. A
        // flow to one flows only on provisioning unless it says otherwise.
        for (m, def) in rules.mas.iter_mut().zip(&system.mas) {
            let defaults = registry
                .get(&def.connector.kind)
                .map(|f| f.write_only_attributes())
                .unwrap_or_default();
            m.write_only = write_only::WriteOnly::of(def, &defaults);
            for f in &mut m.outbound {
                if m.write_only.get(&f.cs_attr).is_some_and(|d| !d.on_change) {
                    f.initial_only = true;
                }
            }
        }
        let mut index = rules.join_index();
        // The references to an object are found by its id (`refs`).
        // (Those kept as value rows are found from their rows.)
        let refs = rules
            .mv_refs
            .iter()
            .filter(|(t, a)| !rules.rows.mv_has(t, a))
            .cloned();
        for (mv_type, attr) in rules.lookup_index().into_iter().chain(refs) {
            let def = autosync_store::MvIndexDef::attribute(&mv_type, &attr);
            if !index.contains(&def) {
                index.push(def);
            }
        }
        store.set_mv_index(&index)?;
        // The MAs whose objects import flows name by DN.
        let mut by_dn: Vec<&str> = rules
            .mas
            .iter()
            .flat_map(|m| m.inbound.iter().filter_map(|f| f.reference.as_ref()))
            .filter(|r| r.by == autosync_model::RefBy::Dn)
            .map(|r| r.ma.as_str())
            .collect();
        by_dn.sort_unstable();
        by_dn.dedup();
        store.set_dn_index(&by_dn)?;
        // Large multi-valued references: one row per value (`rows`).
        store.set_value_rows(&rules.rows.declaration())?;
        let names = rules.store_names(&system);
        store.declare_names(&names.iter().map(String::as_str).collect::<Vec<_>>())?;
        let fingerprints = applied::Fingerprints::of(&system);
        let leases = Leases::new(store.clone(), Instance::current(), LeaseTiming::default());
        Ok(Engine {
            leases,
            system,
            store,
            registry,
            rules,
            fingerprints,
            sync_lock: Mutex::new(()),
            running: Mutex::new(HashSet::new()),
            unrecorded: Default::default(),
        })
    }

    /// This engine taking its leases as `leases` (on the same store): a
    /// second node in one process, or a short time to live (tests).
    pub fn with_leases(mut self, leases: Leases) -> Engine {
        self.leases = leases;
        self
    }

    /// The leases this engine takes: this process's instance on its store.
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Run one run profile of one MA to completion. The run record is
    /// persisted as it goes (in progress at start, updated after each step).
    pub fn run_profile(
        &self,
        ma: &str,
        profile: &str,
        opts: RunOptions,
    ) -> Result<RunRecord, EngineError> {
        run::run_profile(self, ma, profile, opts)
    }

    /// Delete the connector space of `ma`, configured or no longer in the
    /// configuration: every object is disconnected as if deleted in its
    /// system (the metaverse deletion rule decides whether its metaverse
    /// object goes, and deprovisioning what becomes of that object's other
    /// connectors) and removed. Recorded as a run of profile
    /// `delete-connector-space` with one sync step.
    pub fn delete_connector_space(
        &self,
        ma: &str,
        opts: RunOptions,
    ) -> Result<RunRecord, EngineError> {
        run::delete_connector_space(self, ma, opts)
    }

    /// At start-up: close the runs a crash left in progress as
    /// `stopped-server`. Their staged work is safe: every batch was committed
    /// with what it covers, and exports are replayable.
    /// Runs of MAs running in this process, or whose MA another live
    /// instance holds (see [`lease`]), are still running and are left alone;
    /// so this also closes, at any time, the runs of a process that died.
    /// Runs of this process whose end the store could not write are
    /// written as they ended (`stopped-error`, saying so) once it takes
    /// writes again, and left in progress in the store until then: never
    /// closed as if their process had ended.
    ///
    /// Returns the runs closed, and the runs of this process whose end is
    /// not written yet as they ended: whoever reads the run history
    /// (the service's look for runs started outside it) takes them for
    /// ended, not for runs in progress to wait for (`run --once` waited as
    /// long as the disk stayed full).
    pub fn close_unfinished_runs(&self) -> Result<Vec<RunRecord>, EngineError> {
        let mut closed = Vec::new();
        if let Err(e) = run::unrecorded::write(self, None, &mut closed) {
            // Logged there (once a minute); the other runs are still closed.
            tracing::debug!("cannot record the end of a run yet: {e}");
        }
        for mut run in self.store.unfinished_runs()? {
            // Running here, or ended here with its end not written yet
            // (checked after: a run's end is kept before its MA leaves the
            // running set).
            let running = self
                .running
                .lock()
                .map(|r| r.contains(&run.ma))
                .unwrap_or(true);
            if let Some(ended) = self.unrecorded.get(run.id) {
                // Ended: its end is written once the store takes writes.
                closed.push(ended);
                continue;
            }
            if running {
                continue;
            }
            if let Some(owner) = lease::holder(&self.leases, &run.ma)? {
                tracing::info!(run_id = run.id, ma = %run.ma, pid = owner.holder.pid, host = %owner.holder.host, "a run in progress in another process; left alone");
                continue;
            }
            // Another engine of this process runs it (the one a reload
            // replaced: its runs finish on it).
            if lease::held_here(&self.leases, &run.ma)? {
                continue;
            }
            let mut txn = self.store.begin()?;
            // Read again under the write lock: its process may have ended
            // it (and released its lease) since it was read above, or
            // committed more of it before it died.
            match txn.run_get(run.id)? {
                Some(fresh) if fresh.status == RunStatus::InProgress => run = fresh,
                _ => continue,
            }
            let now = chrono::Utc::now();
            // An export that died sending: what it sent after its last
            // recorded batch is in the system but not in its counters.
            let sending = txn
                .meta(&export::in_flight::key(&run.ma))?
                .is_some_and(|id| id == run.id.to_string());
            for step in &mut run.steps {
                if step.status == RunStatus::InProgress {
                    step.status = RunStatus::StoppedServer;
                    step.ended_at = Some(now);
                    step.message = Some(if sending && step.step_type == StepType::Export {
                        format!(
                            "the process ended while this export was sending changes; its counters are what it recorded: {}",
                            export::in_flight::UNCOUNTED
                        )
                    } else {
                        "the process ended while this step was running; its counters are what it committed".into()
                    });
                }
            }
            run.status = RunStatus::StoppedServer;
            run.ended_at = Some(now);
            txn.run_update(&run)?;
            txn.commit()?;
            tracing::warn!(run_id = run.id, ma = %run.ma, profile = %run.profile, "closed a run left in progress");
            closed.push(run);
        }
        Ok(closed)
    }

    pub fn system(&self) -> &SystemDef {
        &self.system
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn ma_def(&self, name: &str) -> Result<&autosync_model::MaDef, EngineError> {
        self.system.ma(name).ok_or_else(|| {
            let known: Vec<String> = self.system.mas.iter().map(|m| m.name.clone()).collect();
            EngineError::UnknownMa {
                name: name.to_owned(),
                suggestion: autosync_model::suggest::closest(
                    name,
                    known.iter().map(String::as_str),
                )
                .map(str::to_owned),
                known,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_engine_should_be_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::Engine>();
    }
}
