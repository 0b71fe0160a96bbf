//! Running a run profile: the per-MA guard, the run record persisted as it
//! goes, one step after another until one stops (a sync step once it is its
//! turn: `sync_turn`), and what every step sees of the run (its context).

use crate::error::EngineError;
use crate::history::{StepOutcome, worst};
use crate::options::RunOptions;
use crate::{Engine, export, import, sync, thresholds};
use autosync_connector::{BuildContext, Connector, ConnectorError, ConnectorErrorKind};
use autosync_model::{MaDef, RunId, RunRecord, RunStatus, StepCounters, StepRecord, StepType};
use autosync_store::{CsFilter, Store, StoreResult, StoreTxn};

mod failed;
pub(crate) mod unrecorded;

/// Objects per page and per transaction in sync and export.
pub(crate) const PAGE: usize = 5000;

/// What a step knows of its run.
pub(crate) struct StepCtx<'a> {
    pub engine: &'a Engine,
    pub ma: &'a MaDef,
    pub ma_index: usize,
    pub run_id: RunId,
    pub step_index: u32,
    pub opts: &'a RunOptions,
    /// The step's counters and error count as of its last commit: what
    /// its record shows if the store then fails and the step stops.
    pub durable: std::sync::Mutex<Option<(StepCounters, u64)>>,
    /// An export sent changes it could not record (the store failed):
    /// they may be in the system and are not in its counters.
    pub sent_unrecorded: std::sync::atomic::AtomicBool,
    /// The run's record as persisted when this step started (the step
    /// last, in progress): what [`StepCtx::record_counters`] writes again
    /// with the step's counters so far.
    pub record: RunRecord,
    /// A deletion of the connector space: the sync step disconnects and
    /// removes every object, under these rules (the MA's own, or none for an
    /// MA no longer in the configuration).
    pub delete_all: Option<&'a crate::rules::MaRules>,
}

impl StepCtx<'_> {
    pub fn store(&self) -> &dyn Store {
        self.engine.store.as_ref()
    }

    pub fn cancelled(&self) -> bool {
        self.opts.cancel.is_cancelled()
    }

    /// Renews this engine's leases that are due, from the step's thread
    /// between two of its transactions: the keeper thread waits for the
    /// store's writer, which a sync takes again at once after each bulk
    /// transaction. Never inside a transaction (the writer is this
    /// thread's then).
    pub fn renew_leases(&self) {
        if let Err(e) = self.engine.leases.renew_due() {
            // The lease keeper logs it (the first time, then once a minute).
            tracing::debug!("cannot renew this run's leases (tried again shortly): {e}");
        }
    }

    /// Everything counted so far is committed (`counters`, `errors`).
    pub fn committed(&self, counters: StepCounters, errors: u64) {
        *self.durable.lock().unwrap_or_else(|e| e.into_inner()) = Some((counters, errors));
    }

    /// Writes the step's counters so far into its run's record, in `txn`:
    /// the transaction that commits what they count. A run the process
    /// did not live to finish (killed, the host lost) is closed at the
    /// next start with what it committed, as MIM keeps a stopped run's
    /// counters, never as a run that changed nothing.
    pub fn record_counters(
        &self,
        txn: &mut dyn StoreTxn,
        counters: StepCounters,
        errors: u64,
    ) -> StoreResult<()> {
        let mut record = self.record.clone();
        if let Some(step) = record.steps.last_mut() {
            step.counters = counters;
            step.errors = errors;
        }
        txn.run_update(&record)
    }

    fn take_durable(&self) -> Option<(StepCounters, u64)> {
        self.durable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub fn advanced(&self, processed: u64) {
        if let Some(p) = &self.opts.progress {
            p.advanced(processed);
        }
    }

    /// Build a connector for `ma` (this step's MA by default).
    pub fn connector(&self) -> Result<Box<dyn Connector>, ConnectorError> {
        let ma = self.ma;
        let factory = self
            .engine
            .registry
            .get(&ma.connector.kind)
            .ok_or_else(|| {
                ConnectorError::new(
                    ConnectorErrorKind::Configuration,
                    format!(
                        "management agent `{}`: unknown connector type `{}`; known types: {}",
                        ma.name,
                        ma.connector.kind,
                        self.engine.registry.kinds().join(", ")
                    ),
                )
            })?;
        let build = BuildContext {
            ma: ma.name.clone(),
            base_dir: self.engine.system.base_dir.clone(),
            object_types: ma.object_types.clone(),
        };
        factory.build(&ma.connector.settings, &build)
    }
}

/// Removes the MA from the running set when the run ends.
pub(crate) struct MaGuard<'a> {
    engine: &'a Engine,
    ma: String,
}

impl<'a> MaGuard<'a> {
    pub(crate) fn acquire(engine: &'a Engine, ma: &str) -> Option<MaGuard<'a>> {
        let mut running = engine.running.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(ma.to_owned()).then(|| MaGuard {
            engine,
            ma: ma.to_owned(),
        })
    }
}

impl Drop for MaGuard<'_> {
    fn drop(&mut self) {
        let mut running = self
            .engine
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        running.remove(&self.ma);
    }
}

/// Releases this process's store lease of the MA when the run ends.
struct LeaseGuard<'a> {
    engine: &'a Engine,
    ma: &'a str,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if self.engine.unrecorded.has_ma(self.ma) {
            // Kept (and renewed) until the run's end is written
            // (`unrecorded`): its process has not ended.
            tracing::debug!(
                ma = self.ma,
                "the MA's lease is kept until the run's end is recorded"
            );
            return;
        }
        if let Err(e) = crate::lease::release(&self.engine.leases, self.ma) {
            tracing::warn!(
                ma = self.ma,
                "cannot release the MA's lease (the next run takes it over): {e}"
            );
        }
    }
}

pub(super) fn persist(engine: &Engine, record: &mut RunRecord) -> StoreResult<()> {
    let mut txn = engine.store.begin()?;
    if record.id == 0 {
        txn.run_insert(record)?;
    } else {
        txn.run_update(record)?;
    }
    txn.commit()
}

/// Writes `record`, ended: when the store fails, the record as ended is
/// kept with why, and written once the store takes writes again
/// (`unrecorded`); never left for a run whose process ended.
pub(super) fn persist_end(engine: &Engine, record: &mut RunRecord) -> StoreResult<()> {
    match persist(engine, record) {
        Ok(()) => Ok(()),
        Err(e) if record.id != 0 => {
            unrecorded::note(record, &e);
            engine.unrecorded.keep(record.clone());
            Err(e)
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn run_profile(
    engine: &Engine,
    ma: &str,
    profile: &str,
    opts: RunOptions,
) -> Result<RunRecord, EngineError> {
    let ma_def = engine.ma_def(ma)?;
    let steps = ma_def.profile(profile).ok_or_else(|| {
        let known = ma_def.profile_names();
        EngineError::UnknownProfile {
            ma: ma.to_owned(),
            profile: profile.to_owned(),
            suggestion: autosync_model::suggest::closest(profile, known.iter().map(String::as_str))
                .map(str::to_owned),
            known,
        }
    })?;
    let ma_index = engine.rules.ma_index.get(ma).copied().unwrap_or_default();
    run_steps(engine, ma_def, ma_index, profile, &steps, opts, None)
}

/// The run profile name of a connector-space deletion.
pub const DELETE_CONNECTOR_SPACE: &str = "delete-connector-space";

/// Deletes the connector space of `ma` (configured or no longer): one run
/// with one sync step that disconnects every object (the metaverse
/// deletion rule decides whether its metaverse object goes, and
/// deprovisioning what happens to that object's other connectors) and
/// removes it.
pub(crate) fn delete_connector_space(
    engine: &Engine,
    ma: &str,
    opts: RunOptions,
) -> Result<RunRecord, EngineError> {
    let retired_def;
    let retired_rules;
    let (ma_def, ma_index, rules) = match engine.rules.ma_index.get(ma) {
        Some(&i) => (engine.ma_def(ma)?, i, &engine.rules.mas[i]),
        None => {
            retired_def = MaDef::retired(ma);
            retired_rules = crate::rules::MaRules::retired(ma, engine.rules.mas.len());
            (&retired_def, usize::MAX, &retired_rules)
        }
    };
    run_steps(
        engine,
        ma_def,
        ma_index,
        DELETE_CONNECTOR_SPACE,
        &[StepType::FullSync],
        opts,
        Some(rules),
    )
}

fn run_steps(
    engine: &Engine,
    ma_def: &MaDef,
    ma_index: usize,
    profile: &str,
    steps: &[StepType],
    opts: RunOptions,
    delete_all: Option<&crate::rules::MaRules>,
) -> Result<RunRecord, EngineError> {
    let ma = ma_def.name.as_str();
    let now = chrono::Utc::now();
    let mut record = RunRecord {
        id: 0,
        ma: ma.to_owned(),
        profile: profile.to_owned(),
        status: RunStatus::InProgress,
        started_at: now,
        ended_at: None,
        reason: opts.reason.clone(),
        steps: Vec::new(),
    };
    let span = tracing::info_span!("run", ma, profile, run_id = tracing::field::Empty);
    let _entered = span.enter();
    let Some(_guard) = MaGuard::acquire(engine, ma) else {
        record.status = RunStatus::NoStartMaAlreadyRunning;
        record.ended_at = Some(now);
        persist(engine, &mut record)?;
        tracing::warn!("a run of this MA is already in progress");
        return Ok(record);
    };
    // An earlier run of this MA whose end the store could not write is
    // written before this one starts (it keeps the MA's lease till then).
    unrecorded::write(engine, Some(ma), &mut Vec::new())?;
    if let Err(owner) = crate::lease::acquire(&engine.leases, ma)? {
        record.status = RunStatus::NoStartMaAlreadyRunning;
        record.ended_at = Some(now);
        persist(engine, &mut record)?;
        tracing::warn!(
            pid = owner.holder.pid,
            host = %owner.holder.host,
            run_id = owner.run_id,
            "a run of this MA is in progress in another process"
        );
        return Ok(record);
    }
    let _lease = LeaseGuard { engine, ma };
    let cancel = opts.cancel.clone();
    engine.leases.on_lost(
        &crate::lease::lease_key(ma),
        Box::new(move || cancel.cancel()),
    );
    persist(engine, &mut record)?;
    span.record("run_id", record.id);
    let run = Run {
        engine,
        ma_def,
        ma_index,
        profile,
        opts: &opts,
        delete_all,
    };
    let result = run.steps(&mut record, steps);
    if let Err(e) = &result
        && record.ended_at.is_none()
    {
        failed::end(engine, &mut record, e);
    }
    result.map(|()| record)
}

/// A run started: its record inserted, its MA's lease held.
struct Run<'a> {
    engine: &'a Engine,
    ma_def: &'a MaDef,
    ma_index: usize,
    profile: &'a str,
    opts: &'a RunOptions,
    delete_all: Option<&'a crate::rules::MaRules>,
}

impl Run<'_> {
    /// Runs `steps` one after another until one stops. An `Err` with the
    /// record not ended: the caller ends it (a store failure).
    fn steps(&self, record: &mut RunRecord, steps: &[StepType]) -> Result<(), EngineError> {
        let Run {
            engine,
            ma_def,
            ma_index,
            profile,
            opts,
            delete_all,
        } = *self;
        let ma = ma_def.name.as_str();
        if !crate::lease::record_run(&engine.leases, ma, record.id)? {
            tracing::warn!(
                "this MA's lease was taken over by another process before the run started"
            );
            opts.cancel.cancel();
        }
        tracing::info!(reason = %record.reason, "run started");
        for (index, step) in steps.iter().copied().enumerate() {
            // A sync step starts when it is its turn (it may wait for another
            // process's sync); its record starts then.
            let _sync_turn = if step.is_sync() {
                match sync_turn(engine, record, opts, index, step)? {
                    Some(turn) => Some(turn),
                    None => break,
                }
            } else {
                None
            };
            record.steps.push(StepRecord {
                step_type: step,
                status: RunStatus::InProgress,
                started_at: chrono::Utc::now(),
                ended_at: None,
                counters: StepCounters::for_step(step),
                errors: 0,
                message: None,
            });
            persist(engine, record)?;
            let ctx = StepCtx {
                engine,
                ma: ma_def,
                ma_index,
                run_id: record.id,
                step_index: u32::try_from(index).unwrap_or(u32::MAX),
                opts,
                durable: std::sync::Mutex::new(None),
                sent_unrecorded: std::sync::atomic::AtomicBool::new(false),
                record: record.clone(),
                delete_all,
            };
            let step_span =
                tracing::info_span!("step", ma, profile, run_id = record.id, step = %step, index);
            let outcome = step_span.in_scope(|| run_step(&ctx, index, step));
            let Some(step_record) = record.steps.last_mut() else {
                break;
            };
            match outcome {
                Ok(outcome) => outcome.fill(step_record),
                Err(e) => return failed::step(&ctx, record, index, e),
            }
            let Some(step_record) = record.steps.last() else {
                break;
            };
            let status = step_record.status;
            tracing::info!(status = %status, errors = step_record.errors, "step finished");
            if let Some(p) = &opts.progress {
                p.step_finished(index, step_record);
            }
            persist(engine, record)?;
            if status.is_stopped() {
                break;
            }
        }
        record.status = worst(&record.steps);
        record.ended_at = Some(chrono::Utc::now());
        persist_end(engine, record)?;
        tracing::info!(status = %record.status, "run finished");
        Ok(())
    }
}

/// Waits for the turn of a sync step of `record`'s run. When the run is
/// cancelled while it waits (`None`), or the store fails, the step is
/// recorded as never started, with why.
fn sync_turn<'a>(
    engine: &'a Engine,
    record: &mut RunRecord,
    opts: &RunOptions,
    index: usize,
    step: StepType,
) -> Result<Option<crate::sync_turn::SyncTurn<'a>>, EngineError> {
    let waited_from = chrono::Utc::now();
    let (status, message, failure) =
        match crate::sync_turn::take(engine, &record.ma, record.id, opts, index, step) {
            Ok(Some(turn)) => return Ok(Some(turn)),
            Ok(None) => (
                RunStatus::StoppedUserRequested,
                "stopped by request while waiting for another process's sync to end".to_owned(),
                None,
            ),
            Err(e) => (RunStatus::StoppedError, format!("store: {e}"), Some(e)),
        };
    record.steps.push(StepRecord {
        step_type: step,
        status,
        started_at: waited_from,
        ended_at: Some(chrono::Utc::now()),
        counters: StepCounters::for_step(step),
        errors: 0,
        message: Some(message),
    });
    if let Some(p) = &opts.progress
        && let Some(step_record) = record.steps.last()
    {
        p.step_finished(index, step_record);
    }
    match failure {
        None => {
            persist(engine, record)?;
            Ok(None)
        }
        Some(e) => {
            record.status = RunStatus::StoppedError;
            record.ended_at = Some(chrono::Utc::now());
            if let Err(again) = persist_end(engine, record) {
                tracing::error!(error = %again, "could not record the failed run (recorded once the store takes writes again)");
            }
            tracing::error!(error = %e, "run stopped by a store failure");
            Err(e.into())
        }
    }
}

fn run_step(ctx: &StepCtx<'_>, index: usize, step: StepType) -> StoreResult<StepOutcome> {
    if let Some(p) = &ctx.opts.progress {
        // Counted only for someone watching: a count reads an index of
        // the whole connector space.
        let expected = match step {
            StepType::FullImport | StepType::DeltaImport => None,
            StepType::FullSync => Some(CsFilter::All),
            StepType::DeltaSync => Some(CsFilter::PendingImport),
            StepType::Export => Some(CsFilter::PendingExport),
        };
        let expected = match expected {
            Some(filter) => Some(ctx.store().read()?.cs_count(&ctx.ma.name, filter)?),
            None => None,
        };
        p.step_started(index, step, expected);
    }
    match step {
        StepType::FullImport | StepType::DeltaImport => {
            let mut outcome = import::run(ctx, step == StepType::FullImport)?;
            if let StepCounters::Import(counters) = &outcome.counters
                && !outcome.status.is_stopped()
                && let Some(message) =
                    thresholds::check_staging(ctx.store(), ctx.ma, ctx.run_id, counters)?
            {
                outcome.status = RunStatus::StoppedStagingThresholdExceeded;
                outcome.message = Some(message);
            } else if !outcome.status.is_stopped() {
                match thresholds::lift_if_gone(ctx.store(), ctx.ma, ctx.run_id)? {
                    Some(thresholds::HoldAfter::Lifted(message)) => outcome.message = Some(message),
                    Some(thresholds::HoldAfter::Stands(message)) => {
                        outcome.status = RunStatus::StoppedStagingThresholdExceeded;
                        outcome.message = Some(message);
                    }
                    None => {}
                }
            }
            Ok(outcome)
        }
        StepType::FullSync | StepType::DeltaSync if ctx.delete_all.is_some() => {
            sync::delete_all(ctx)
        }
        StepType::FullSync | StepType::DeltaSync => {
            if let Some(message) = thresholds::sync_held(ctx.store(), &ctx.ma.name)? {
                tracing::warn!("{message}");
                return Ok(StepOutcome {
                    status: RunStatus::StoppedStagingThresholdExceeded,
                    counters: StepCounters::for_step(step),
                    errors: 0,
                    message: Some(message),
                });
            }
            // The caller holds the sync's turn (`sync_turn`).
            let full = step == StepType::FullSync;
            let outcome = sync::run(ctx, full)?;
            if !outcome.status.is_stopped() {
                crate::applied::record(ctx.store(), &ctx.engine.fingerprints, &ctx.ma.name, full)?;
            }
            Ok(outcome)
        }
        StepType::Export => export::run(ctx),
    }
}
