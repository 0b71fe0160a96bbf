//! Full and delta synchronisation: CS objects of one MA in id order, in
//! batches committed one by one (a large sync in bulk transactions of
//! several batches, whose commits do not wait). Every object is worked out in
//! memory first ([`Work`]) and written only when all its rules succeeded, so
//! a failing expression leaves the object (and everything it would have
//! touched) as it was, with its pending import kept for the next sync.

mod deprovision;
mod gone;
mod inbound;
mod join;
pub(crate) use join::joins_to;
pub(crate) use staging::cancel_same_dns;
mod left;
mod outbound;
mod plan;
mod precedence;
mod prefetch;
mod provision;
mod refpass;
mod rows;
mod staging;
mod unjoined;
mod waits;
mod write;

use waits::{RefNotes, waiting_at_start};

use crate::history::{StepErrors, StepOutcome, completed};
use crate::rules::{MaRules, Rules};
use crate::run::StepCtx;
use autosync_model::{
    CsId, CsObject, ErrorStage, ImportKind, MvId, MvObject, OutboundCounters, PendingImport,
    RunStatus, StepCounters, SyncCounters,
};
use autosync_store::{CsFilter, StoreError, StoreErrorKind, StoreResult, StoreTxn};
use rustc_hash::{FxHashMap, FxHashSet};

/// Why one object's sync failed.
pub(crate) enum Fail {
    /// A per-object error: recorded, the rest carries on.
    Object {
        error_type: &'static str,
        detail: String,
    },
    /// The store failed: the step stops.
    Store(StoreError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

/// An expression failure as a per-object error.
pub(crate) fn expression_failed(what: &str, e: impl std::fmt::Display) -> Fail {
    Fail::Object {
        error_type: "expression-failed",
        detail: format!("{what}: {e}"),
    }
}

/// What happens to another connector (ordered: the strongest wins).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    Keep,
    Update,
    Delete,
}

/// The metaverse object an object's sync works on.
pub(crate) struct MvWork {
    pub obj: MvObject,
    /// Projected by this object (id 0 until written).
    pub is_new: bool,
    pub delete: bool,
    /// Needs writing (values or contributors changed).
    pub dirty: bool,
    /// Connectors other than the object being synced, loaded on demand.
    pub others: Option<Vec<(CsObject, Action)>>,
}

/// One object's sync, worked out in memory.
pub(crate) struct Work {
    pub source: CsObject,
    pub source_dirty: bool,
    pub source_delete: bool,
    pub mv: Option<MvWork>,
    /// The metaverse object the source left (disconnection, delete-add).
    pub left: Option<MvWork>,
    /// The source's hologram before its pending import was accepted.
    pub previous: Option<autosync_model::Attributes>,
    /// Objects provisioned on target MAs.
    pub inserts: Vec<CsObject>,
    pub counters: SyncCounters,
    /// The source's references that wait for the object they name (when
    /// its MA has reference flows and they ran).
    pub in_waits: Option<Vec<autosync_store::RefWait>>,
}

/// The state of one sync step.
pub(crate) struct Syncer<'a> {
    pub rules: &'a Rules,
    pub ma: &'a MaRules,
    pub full: bool,
    /// Every object is treated as deleted in its system.
    pub delete_all: bool,
    pub counters: SyncCounters,
    pub errors: StepErrors,
    pub processed: u64,
    /// Metaverse objects of the current batch.
    pub mv_cache: FxHashMap<MvId, MvObject>,
    /// Whether any object synchronised without error yet.
    pub any_success: bool,
    /// Expression failures before the first success.
    pub failures_before_success: u64,
    pub last_failure: String,
    /// The batch's join lookups.
    pub joins: prefetch::JoinPrefetch,
    /// The counters of the last object, zeroed, for the next one: its
    /// outbound entries keep their names (no copy per object).
    pub spare_counters: SyncCounters,
    /// Whether this MA's import flows copy references (their waits are
    /// written with every object).
    pub in_refs: bool,
    /// What outbound rules noted about references (see [`RefNotes`]).
    pub ref_notes: std::cell::RefCell<RefNotes>,
    /// What this step wrote of the objects references name (`None`
    /// without references).
    pub joined: Option<crate::refs::Joined>,
    /// The objects of this MA whose references waited when the step
    /// began, and the metaverse objects whose outbound references did:
    /// only these (and those that wait now) have their waits written.
    /// `None`: every object's waits are written.
    pub waiting: Option<(FxHashSet<CsId>, FxHashSet<MvId>)>,
    /// Objects are synchronised again to resolve their references (the
    /// end of a step, `refpass`).
    pub resolving: bool,
    /// Objects whose sync failed with `ambiguous-reference` in this step,
    /// and whether the step deleted or renamed an object that references
    /// name by DN: those are synchronised again at the step's end (the
    /// DN may name one object now).
    pub ambiguous: Vec<CsId>,
    pub dn_moved: bool,
    /// How the connectors of the metaverse objects this step deleted were
    /// named (see `gone`), while fewer than `gone::GONE_KEYS_MAX`.
    pub gone: FxHashMap<MvId, Vec<gone::GoneKey>>,
    /// The connector being synchronised was deleted in its system and is
    /// removed with this object's work: provisioning on its own MA does
    /// not take it for the object it would create again.
    pub deleted_source: Option<CsId>,
    /// Per target MA, the connectors whose deletes an operator rejected
    /// (read when first needed), and those found in scope again by this
    /// step (written with its batch).
    pub rejected: std::cell::RefCell<FxHashMap<String, FxHashSet<CsId>>>,
    pub unrejected: std::cell::RefCell<Vec<(String, CsId)>>,
    /// Per target MA, whether an export of it may have sent adds it did
    /// not record (`export::in_flight`).
    pub in_flight: std::cell::RefCell<FxHashMap<String, bool>>,
    /// Per target MA, its objects joined to nothing, read when provisioning
    /// first adds an object to it (see `unjoined`).
    pub unjoined: std::cell::RefCell<FxHashMap<String, unjoined::Unjoined>>,
    /// Objects provisioning took for a metaverse object in this step
    /// (joined with the batch's writes).
    pub claimed: std::cell::RefCell<FxHashSet<CsId>>,
    /// The objects provisioning made before their connector space was
    /// deleted (read once per MA).
    pub rebuilt: crate::rebuilt::Rebuilt,
}

/// When this many objects in a row fail in rules expressions or scripts
/// from the start of a step and none succeeded, the rules are broken, not
/// the data: the step stops with `stopped-extension-dll-exception`.
pub(crate) const RULES_BROKEN_AFTER: u64 = 100;

/// Objects per sync batch (one commit). Larger than the export page: a
/// commit rewrites every index page the batch touched, and the keys of a
/// batch are spread over the whole index, so fewer, larger batches write
/// fewer pages in all (but not too large: a transaction whose dirty pages
/// outgrow the store's cache spills them, and checkpoints copy more).
const SYNC_PAGE: usize = 20_000;

/// Batches per bulk transaction. Each batch is committed on its own
/// ([`StoreTxn::commit_so_far`]), without waiting: the next page is read
/// and worked out while the store still writes and commits the last one.
/// Bounded because the store remembers what a bulk transaction wrote, and
/// other writers of this process wait until it ends.
const BATCHES_PER_BULK: usize = 5;

/// A batch lost to another process's commits ([`StoreErrorKind::Conflict`])
/// is done again at most this many times in a row; lost once more, the
/// sync stops with the error. Losses of different batches do not add up: a
/// sync that committed batches since its last loss made progress.
const CONFLICTS_MAX: u32 = 10;

/// Where a sync stood when a batch began: a batch lost to a conflict is
/// done again from here.
struct Resume {
    after: CsId,
    counters: SyncCounters,
    errors: u64,
    processed: u64,
    any_success: bool,
    failures_before_success: u64,
    last_failure: String,
}

/// What a sync step goes through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Every object, re-applying every rule.
    Full,
    /// Objects with a pending import.
    Delta,
    /// Every object, as if deleted in its system: the connector space is
    /// being deleted.
    DeleteAll,
}

pub(crate) fn run(ctx: &StepCtx<'_>, full: bool) -> StoreResult<StepOutcome> {
    let Some(ma) = ctx.engine.rules.mas.get(ctx.ma_index) else {
        return Ok(StepOutcome {
            status: RunStatus::StoppedConfiguration,
            counters: StepCounters::Sync(SyncCounters::default()),
            errors: 0,
            message: Some("the MA has no compiled rules".into()),
        });
    };
    run_pass(ctx, ma, if full { Pass::Full } else { Pass::Delta })
}

/// Delete the connector space: every object is disconnected (the deletion
/// rule and deprovisioning apply as for an object deleted in its system)
/// and removed.
pub(crate) fn delete_all(ctx: &StepCtx<'_>) -> StoreResult<StepOutcome> {
    match ctx.delete_all {
        Some(ma) => {
            if ctx.ma_index != usize::MAX {
                crate::rebuilt::remember(ctx.store(), &ma.name)?;
            }
            run_pass(ctx, ma, Pass::DeleteAll)
        }
        None => run(ctx, true),
    }
}

fn run_pass(ctx: &StepCtx<'_>, ma: &MaRules, pass: Pass) -> StoreResult<StepOutcome> {
    let rules = &ctx.engine.rules;
    let full = pass == Pass::Full;
    let mut s = Syncer::new(
        rules,
        ma,
        full,
        StepErrors::new(ctx.run_id, ctx.step_index, &ctx.ma.name, ErrorStage::Sync),
    );
    s.delete_all = pass == Pass::DeleteAll;
    if rules.has_refs {
        s.waiting = Some(waiting_at_start(ctx, &ma.name)?);
    }
    let filter = if pass == Pass::Delta {
        CsFilter::PendingImport
    } else {
        CsFilter::All
    };
    let mut after: CsId = 0;
    let mut stop = None;
    // Bulk transactions (writes on the store's second thread) pay for
    // themselves on large batches: a full sync, or a delta sync whose
    // first page was full.
    let mut bulk = pass != Pass::Delta;
    // Losses in a row of the batch that begins after `lost_after`.
    let mut conflicts = 0;
    let mut lost_after = None;
    loop {
        if ctx.cancelled() {
            stop = Some((
                RunStatus::StoppedUserRequested,
                "stopped by request".to_owned(),
            ));
            break;
        }
        let mut pages = 0;
        let mut page_len = 0;
        let mut resume = s.resume_point(after);
        let mut batch = |txn: &mut dyn StoreTxn| -> StoreResult<()> {
            loop {
                resume = s.resume_point(after);
                let limit = ctx.opts.sync_page(SYNC_PAGE);
                // Light (see `rows`) where value-level changes may come.
                let page = if pass == Pass::Delta && rules.rows.cs_of(&ma.name).is_some() {
                    txn.cs_page_light(&ma.name, filter, after, limit)?
                } else {
                    txn.cs_page(&ma.name, filter, after, limit)?
                };
                page_len = page.len();
                let Some(last) = page.last() else {
                    break;
                };
                after = last.id;
                pages += 1;
                s.batch(txn, page)?;
                s.errors.flush(txn)?;
                s.flush_unrejected(txn)?;
                ctx.record_counters(txn, StepCounters::Sync(s.counters.clone()), s.errors.count)?;
                ctx.advanced(s.processed);
                if !bulk || pages >= BATCHES_PER_BULK || ctx.cancelled() || s.rules_broken() {
                    break;
                }
                crate::crashpoint::crash_point("sync.batch.before-commit");
                txn.commit_so_far()?;
                // The parts before this one are surely committed now (this
                // one's commit is confirmed by the next `commit_so_far`).
                ctx.committed(StepCounters::Sync(resume.counters.clone()), resume.errors);
            }
            crate::crashpoint::crash_point("sync.batch.before-commit");
            Ok(())
        };
        if bulk {
            match ctx.store().write_bulk(&mut batch) {
                Ok(()) => conflicts = 0,
                Err(e) if e.kind == StoreErrorKind::Conflict => {
                    // The batches before the lost one are committed; do
                    // the lost one again, counting it once.
                    if lost_after != Some(resume.after) {
                        lost_after = Some(resume.after);
                        conflicts = 0;
                    }
                    if conflicts >= CONFLICTS_MAX {
                        // A conflict loses only the part it came in.
                        ctx.committed(StepCounters::Sync(resume.counters.clone()), resume.errors);
                        return Err(e);
                    }
                    conflicts += 1;
                    tracing::info!(ma = %ma.name, error = %e, "sync batch done again");
                    after = s.resume(resume);
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            let mut txn = ctx.store().begin()?;
            batch(txn.as_mut())?;
            if pages > 0 {
                txn.commit()?;
            }
        }
        if pages > 0 {
            crate::crashpoint::crash_point("sync.batch.committed");
            ctx.committed(StepCounters::Sync(s.counters.clone()), s.errors.count);
        }
        // Between two transactions: the heartbeat of this run's leases.
        ctx.renew_leases();
        if page_len == 0 {
            break;
        }
        bulk = bulk || page_len == ctx.opts.sync_page(SYNC_PAGE);
        if s.rules_broken() {
            stop = Some((
                RunStatus::StoppedExtensionDllException,
                format!(
                    "the first {} objects all failed in the rules' expressions or scripts; last error: {}",
                    s.failures_before_success, s.last_failure
                ),
            ));
            break;
        }
    }
    if stop.is_none() && rules.has_refs {
        refpass::run(ctx, &mut s)?;
    }
    let (status, message) = match stop {
        Some((st, m)) => (st, Some(m)),
        None => (
            completed(
                s.counters.failures,
                RunStatus::CompletedSyncErrors,
                s.processed,
            ),
            None,
        ),
    };
    Ok(StepOutcome {
        status,
        counters: StepCounters::Sync(s.counters),
        errors: s.errors.count,
        message,
    })
}

impl<'a> Syncer<'a> {
    pub(crate) fn new(
        rules: &'a Rules,
        ma: &'a MaRules,
        full: bool,
        errors: StepErrors,
    ) -> Syncer<'a> {
        Syncer {
            rules,
            ma,
            full,
            delete_all: false,
            counters: SyncCounters::default(),
            errors,
            processed: 0,
            mv_cache: FxHashMap::default(),
            any_success: false,
            failures_before_success: 0,
            last_failure: String::new(),
            joins: prefetch::JoinPrefetch::default(),
            spare_counters: SyncCounters::default(),
            in_refs: ma.inbound.iter().any(|f| f.reference.is_some()),
            ref_notes: Default::default(),
            joined: rules.has_refs.then(Default::default),
            waiting: None,
            resolving: false,
            ambiguous: Vec::new(),
            dn_moved: false,
            gone: FxHashMap::default(),
            deleted_source: None,
            rejected: Default::default(),
            unrejected: Default::default(),
            in_flight: Default::default(),
            unjoined: Default::default(),
            claimed: Default::default(),
            rebuilt: Default::default(),
        }
    }

    fn resume_point(&self, after: CsId) -> Resume {
        Resume {
            after,
            counters: self.counters.clone(),
            errors: self.errors.count,
            processed: self.processed,
            any_success: self.any_success,
            failures_before_success: self.failures_before_success,
            last_failure: self.last_failure.clone(),
        }
    }

    /// Go back to `r` (the work since was rolled back); returns where the
    /// next page starts.
    fn resume(&mut self, r: Resume) -> CsId {
        self.counters = r.counters;
        self.errors.rewind(r.errors);
        self.processed = r.processed;
        self.any_success = r.any_success;
        self.failures_before_success = r.failures_before_success;
        self.last_failure = r.last_failure;
        // What the lost part wrote is gone: forget what was noted of it.
        if self.joined.is_some() {
            self.joined = Some(Default::default());
        }
        self.waiting = None;
        r.after
    }

    /// Whether the rules look broken: every object so far failed in them.
    fn rules_broken(&self) -> bool {
        !self.any_success && self.failures_before_success >= RULES_BROKEN_AFTER
    }

    fn batch(&mut self, txn: &mut dyn StoreTxn, page: Vec<CsObject>) -> StoreResult<()> {
        self.mv_cache.clear();
        // A page read light (the MA keeps value rows): value-level changes
        // first, at the cost of the change; anything else read whole.
        let page = if self.rules.rows.cs_of(&self.ma.name).is_some() {
            let mut rest = Vec::with_capacity(page.len());
            for cs in page {
                if !crate::rows::needs_whole(&cs) {
                    rest.push(cs);
                    continue;
                }
                let id = cs.id;
                let anchor = cs.anchor.clone();
                match self.sync_rows(txn, cs) {
                    Ok(rows::Taken::Done) => {
                        self.processed += 1;
                        self.any_success = true;
                    }
                    Ok(rows::Taken::Whole) => {
                        if let Some(whole) = txn.cs_get(id)? {
                            rest.push(whole);
                        }
                    }
                    Err(Fail::Store(e)) => return Err(e),
                    Err(Fail::Object { error_type, detail }) => {
                        self.processed += 1;
                        self.object_failed(txn, id, &anchor, error_type, detail)?;
                    }
                }
            }
            rest
        } else {
            page
        };
        let ids: Vec<MvId> = page.iter().filter_map(|c| c.connection.mv_id()).collect();
        if !ids.is_empty() {
            for mv in txn.mv_get_many(&ids)? {
                self.mv_cache.insert(mv.id, mv);
            }
        }
        self.prefetch_joins(txn, &page)?;
        for mut cs in page {
            self.processed += 1;
            if self.delete_all {
                cs.pending_import = Some(PendingImport {
                    values: Default::default(),
                    kind: ImportKind::Delete,
                    attributes: Default::default(),
                    dn: None,
                    object_type: None,
                });
            }
            let id = cs.id;
            let anchor = cs.anchor.clone();
            match self.sync_object(txn, cs) {
                Ok(work) => {
                    self.any_success = true;
                    self.apply(txn, work)?;
                }
                Err(Fail::Store(e)) => return Err(e),
                Err(Fail::Object { error_type, detail }) => {
                    self.object_failed(txn, id, &anchor, error_type, detail)?;
                }
            }
        }
        Ok(())
    }

    /// One object's sync failed: the error is counted, recorded with the
    /// run and kept on the object as it was.
    pub(crate) fn object_failed(
        &mut self,
        txn: &mut dyn StoreTxn,
        id: CsId,
        anchor: &str,
        error_type: &'static str,
        detail: String,
    ) -> StoreResult<()> {
        self.counters.failures += 1;
        if error_type == "ambiguous-reference" && !self.resolving {
            self.ambiguous.push(id);
        }
        if error_type == "expression-failed" && !self.any_success {
            self.failures_before_success += 1;
            self.last_failure.clone_from(&detail);
        }
        let error = self.errors.push(anchor, error_type, detail);
        if let Some(mut orig) = txn.cs_get(id)? {
            orig.error = Some(error);
            txn.cs_update(&orig)?;
        }
        Ok(())
    }

    /// A metaverse object, from the batch's cache or the store.
    pub(crate) fn mv_load(
        &mut self,
        txn: &mut dyn StoreTxn,
        id: MvId,
    ) -> StoreResult<Option<MvObject>> {
        if let Some(mv) = self.mv_cache.get(&id) {
            return Ok(Some(mv.clone()));
        }
        txn.mv_get(id)
    }
}

/// `c` counting nothing, its outbound entries kept (see `spare_counters`).
fn zeroed(mut c: SyncCounters) -> SyncCounters {
    let outbound = std::mem::take(&mut c.outbound);
    let mut c = SyncCounters {
        outbound,
        ..Default::default()
    };
    for o in c.outbound.values_mut() {
        *o = OutboundCounters::default();
    }
    c
}

pub(crate) fn add_counters(total: &mut SyncCounters, one: &SyncCounters) {
    total.projections += one.projections;
    total.joins += one.joins;
    total.filtered_disconnectors += one.filtered_disconnectors;
    total.disconnections += one.disconnections;
    total.connectors_with_flow_updates += one.connectors_with_flow_updates;
    total.connectors_without_flow_updates += one.connectors_without_flow_updates;
    total.deleted += one.deleted;
    total.failures += one.failures;
    for (ma, c) in &one.outbound {
        // A kept entry that counted nothing (see `spare_counters`).
        if *c == OutboundCounters::default() {
            continue;
        }
        // The name is copied only the first time.
        if !total.outbound.contains_key(ma) {
            total.outbound.insert(ma.clone(), Default::default());
        }
        let Some(t) = total.outbound.get_mut(ma) else {
            continue;
        };
        t.provisioned_adds += c.provisioned_adds;
        t.provisioned_renames += c.provisioned_renames;
        t.provisioned_disconnects += c.provisioned_disconnects;
        t.provisioned_delete_adds += c.provisioned_delete_adds;
        t.export_attribute_flow += c.export_attribute_flow;
        t.export_no_flow += c.export_no_flow;
    }
}
