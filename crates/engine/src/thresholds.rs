//! The two thresholds that stop mass changes, and what an operator says of
//! them. Both live in the store's meta, so the service and `autosync` run
//! from a shell see the same stop:
//!
//! * **Staging** (`staging-hold:<ma>`): an import that stages more than
//!   the MA's `staging_thresholds` allow (by default deletes over 10% of
//!   the connector space) ends `stopped-staging-threshold-exceeded`, and
//!   every sync of the MA refuses to start until an operator approves (the
//!   staged changes flow) or rejects (they are discarded and the next import
//!   reads the source again).
//! * **Export deletion** (`deletion-stop:<ma>`): an export that would delete
//!   more than the MA's `export_deletion_threshold` allows ends
//!   `stopped-deletion-threshold-exceeded` having sent nothing, until an
//!   operator approves (the next export goes through once, with only
//!   deletes of the objects whose deletes were pending when approved) or
//!   rejects (the pending deletes are
//!   dropped, per the MA's `reject_deletions`), or its pending deletes are
//!   no longer over the threshold (see `deletions.rs`).

mod deletions;
mod lift;
pub(crate) use deletions::check_export_deletions;
pub(crate) use lift::{HoldAfter, lift_if_gone};

use crate::error::EngineError;
use crate::run::MaGuard;
use crate::{DiscardError, Discarded, Engine};
use autosync_model::{
    Connection, CsId, Exceeded, ExportKind, ImportCounters, ImportKind, PendingImport,
    RejectDeletions, RunId,
};
use autosync_store::{CsFilter, Store, StoreResult, StoreTxn};
use serde::{Deserialize, Serialize};

/// The meta key of an MA's held staging threshold.
pub fn staging_hold_key(ma: &str) -> String {
    format!("staging-hold:{ma}")
}

/// The meta key of an MA's export stopped at the deletion threshold.
pub fn deletion_stop_key(ma: &str) -> String {
    format!("deletion-stop:{ma}")
}

/// The meta key holding an operator's approval of one export over the
/// deletion threshold (`approved:[ids]`: the deletes of these objects).
pub fn deletion_approval_key(ma: &str) -> String {
    format!("approve-deletions:{ma}")
}

/// An import over a staging threshold, waiting for an operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagingHold {
    /// The run whose import went over.
    pub run_id: RunId,
    pub exceeded: Vec<Exceeded>,
}

impl StagingHold {
    /// `deletes 288 > 10% (100.0% of 288 objects)`, joined.
    pub fn summary(&self) -> String {
        self.exceeded
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An export stopped at the deletion threshold, waiting for an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionStop {
    pub run_id: RunId,
    /// Pending export deletes when it stopped.
    pub deletes: u64,
    /// The most deletes the threshold allowed.
    pub allowed: u64,
    /// Objects in the connector space.
    pub cs_total: u64,
}

impl DeletionStop {
    /// What the status and the log say of it.
    pub fn summary(&self) -> String {
        format!(
            "export stopped at the deletion threshold: {} pending deletes, at most {} of {} objects (run {})",
            self.deletes, self.allowed, self.cs_total, self.run_id
        )
    }
}

/// What [`Engine::approve`] let through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Approval {
    /// The staging threshold that held the MA's syncs, now released.
    pub staging: Option<StagingHold>,
    /// The export stopped at the deletion threshold, whose next export may
    /// now exceed it once, deleting only objects the approval covers.
    pub deletions: Option<DeletionStop>,
    /// The export deletes pending when approved (fewer than when it
    /// stopped if people came back in scope meanwhile): how many objects
    /// the approval covers (0 when no export stop stood).
    pub pending_deletes: u64,
}

impl Approval {
    /// What was approved, in a sentence.
    pub fn describe(&self, ma: &str) -> String {
        let mut parts = Vec::new();
        if let Some(h) = &self.staging {
            parts.push(format!(
                "the changes staged by run {} of `{ma}` ({}) may flow: its syncs run again",
                h.run_id,
                h.summary()
            ));
        }
        if let Some(d) = &self.deletions {
            let then = if self.pending_deletes == d.deletes {
                String::new()
            } else {
                format!(", {} when it stopped", d.deletes)
            };
            parts.push(format!(
                "the next export of `{ma}` may delete {} objects, over its deletion threshold of {} (run {}{then})",
                self.pending_deletes, d.allowed, d.run_id
            ));
        }
        if parts.is_empty() {
            format!(
                "nothing of `{ma}` waited for an approval; nothing was recorded (an approval is never recorded in advance of a stop)"
            )
        } else {
            format!("approved: {}", parts.join("; "))
        }
    }
}

impl Rejection {
    /// What was dropped, in a sentence.
    pub fn describe(&self, ma: &str) -> String {
        let mut parts = Vec::new();
        if let Some((h, d)) = &self.staging {
            parts.push(format!(
                "discarded the changes staged by run {} of `{ma}` ({}): {} staged change(s) and {} \
                 object(s) that only existed as a staged add; the next import reads the source again",
                h.run_id,
                h.summary(),
                d.changes,
                d.removed
            ));
        }
        if let Some((s, r)) = &self.deletions {
            let then = match r.action {
                RejectDeletions::ReEvaluate => {
                    "the objects stay (a connector stays joined and in step, and no delta sync stages its delete again until it is back in its provisioning scope and leaves it again; a full sync of its MA decides again; a disconnector meets the join rules again at its MA's next sync)"
                }
                RejectDeletions::ExplicitDisconnector => {
                    "the objects stay as explicit disconnectors, never joined again"
                }
            };
            parts.push(format!(
                "dropped {} pending export delete(s) of `{ma}` (run {} stopped at the deletion threshold); \
                 nothing was deleted: {then}",
                r.dropped, s.run_id
            ));
        }
        format!("rejected: {}", parts.join("; "))
    }
}

/// What [`Engine::reject`] dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rejection {
    /// The staging threshold rejected, and the staged changes discarded.
    pub staging: Option<(StagingHold, Discarded)>,
    /// The export deletion threshold rejected, and the deletes dropped.
    pub deletions: Option<(DeletionStop, RejectedDeletes)>,
}

/// Pending export deletes an operator rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectedDeletes {
    /// Deletes dropped.
    pub dropped: u64,
    /// What became of their objects.
    pub action: RejectDeletions,
}

fn read_json<T: for<'de> Deserialize<'de>>(store: &dyn Store, key: &str) -> StoreResult<Option<T>> {
    Ok(store
        .read()?
        .meta(key)?
        .and_then(|t| serde_json::from_str(&t).ok()))
}

/// The staging threshold holding `ma`'s syncs, if any.
pub fn staging_hold(store: &dyn Store, ma: &str) -> StoreResult<Option<StagingHold>> {
    read_json(store, &staging_hold_key(ma))
}

/// The export of `ma` stopped at the deletion threshold, if the stop
/// still stands: its pending deletes are still more than the threshold
/// allowed (a sync that cancelled them ended it; see `deletions.rs`).
pub fn deletion_stop(store: &dyn Store, ma: &str) -> StoreResult<Option<DeletionStop>> {
    Ok(deletions::standing(store.read()?.as_mut(), ma)?.map(|s| s.stop))
}

/// The export of `ma` stopped at the deletion threshold, the stop still
/// stands, and no operator approved what is pending now (after `approve`,
/// the stop is kept until the export it lets through runs, but nothing
/// waits for an operator any more, unless a delete is pending now that the
/// approval does not cover: the export would stop again).
pub fn deletion_stop_waiting(store: &dyn Store, ma: &str) -> StoreResult<Option<DeletionStop>> {
    let mut read = store.read()?;
    let Some(s) = deletions::standing(read.as_mut(), ma)? else {
        return Ok(None);
    };
    let covered = match deletions::approval(read.as_mut(), ma)? {
        Some(a) => a.covers_all(read.as_mut(), ma, s.pending)?,
        None => false,
    };
    Ok((!covered).then_some(s.stop))
}

/// How many objects' pending deletes an operator's approval lets the next
/// export of `ma` send over its deletion threshold, if one is recorded.
pub fn deletion_approval(store: &dyn Store, ma: &str) -> StoreResult<Option<u64>> {
    Ok(deletions::approval(store.read()?.as_mut(), ma)?.map(|a| a.len()))
}

/// After an import step: hold the MA's syncs when it staged more than its
/// staging thresholds allow on a connector space of `cs_total` objects
/// before the import. Returns the step's stop (status and message); none
/// while another run's hold stands (`lift_if_gone` decides then).
pub(crate) fn check_staging(
    store: &dyn Store,
    ma: &autosync_model::MaDef,
    run_id: RunId,
    counters: &ImportCounters,
) -> StoreResult<Option<String>> {
    // A share of a connector space never allows fewer than its floor, a
    // count the same whatever the size, and an empty connector space has
    // no limit: what goes over nothing on a connector space of one object
    // goes over nothing on any. Only then is it counted (a count reads an
    // index of the whole connector space).
    let thresholds = &ma.staging_thresholds;
    let objects = !thresholds.evaluate(counters, 1).is_empty();
    let values = thresholds.evaluate_values(counters, 1).is_some();
    if !objects && !values {
        return Ok(None);
    }
    let mut exceeded = Vec::new();
    if objects {
        // Its size before the import: the import inserted exactly the
        // objects it counted as adds.
        let cs_total = store
            .read()?
            .cs_count(&ma.name, autosync_store::CsFilter::All)?
            .saturating_sub(counters.stage_add);
        exceeded = thresholds.evaluate(counters, cs_total);
    }
    if values {
        // An import stages; the rows hold what the last sync took in.
        let values_total = store.read()?.cs_ma_values_count(&ma.name)?;
        exceeded.extend(thresholds.evaluate_values(counters, values_total));
    }
    if exceeded.is_empty() {
        return Ok(None);
    }
    // Under an earlier run's hold, the counters count what that import
    // staged and this one kept (see `import/held.rs`): the hold stands or
    // goes by what is staged now (`lift_if_gone`), still that run's.
    if staging_hold(store, &ma.name)?.is_some_and(|h| h.run_id != run_id) {
        return Ok(None);
    }
    let hold = StagingHold { run_id, exceeded };
    let summary = hold.summary();
    let mut txn = store.begin()?;
    txn.set_meta(
        &staging_hold_key(&ma.name),
        Some(&serde_json::to_string(&hold).unwrap_or_default()),
    )?;
    txn.commit()?;
    tracing::warn!(ma = %ma.name, run_id, exceeded = %summary, "import over a staging threshold: the MA's syncs wait for an operator");
    Ok(Some(format!(
        "staging threshold exceeded ({summary}): the changes are staged but no sync of `{0}` runs \
         until an operator checks them: `autosync approve {0}` lets them flow, `autosync reject {0}` \
         discards them (the next import reads the source again)",
        ma.name
    )))
}

/// Before a sync step: the message of the staging threshold that holds
/// the MA's syncs, if one does.
pub(crate) fn sync_held(store: &dyn Store, ma: &str) -> StoreResult<Option<String>> {
    Ok(staging_hold(store, ma)?.map(|h| {
        format!(
            "an import (run {}) went over a staging threshold ({}); no sync of `{ma}` runs until \
             `autosync approve {ma}` or `autosync reject {ma}`",
            h.run_id,
            h.summary()
        )
    }))
}

/// Why an operator's rejection was refused.
#[derive(Debug, thiserror::Error)]
pub enum RejectError {
    #[error(transparent)]
    Discard(#[from] DiscardError),
    #[error("{}", autosync_model::threshold::nothing_waits(.ma))]
    Nothing { ma: String },
}

impl From<EngineError> for RejectError {
    fn from(e: EngineError) -> Self {
        RejectError::Discard(DiscardError::Engine(e))
    }
}

impl From<autosync_store::StoreError> for RejectError {
    fn from(e: autosync_store::StoreError) -> Self {
        RejectError::Discard(DiscardError::from(e))
    }
}

/// Objects handled per transaction by a rejection.
const PAGE: usize = 1000;

impl Engine {
    /// Let what a threshold stopped on `ma` flow: release a held staging
    /// threshold, and let the next export exceed the deletion threshold
    /// once, with only the deletes of the objects whose deletes are
    /// pending now (recorded by id), when a stop at it stands. No approval is recorded in advance of a stop: with none
    /// standing, a stale stop record is forgotten instead (the callers
    /// refuse an approval when nothing waits; this is the last guard).
    pub fn approve(&self, ma: &str) -> Result<Approval, EngineError> {
        self.ma_def(ma)?;
        let store = self.store.as_ref();
        // Read and written in one transaction: an export that stops
        // meanwhile records its stop before or after, never lost between.
        let mut txn = store.begin()?;
        let staging = txn
            .meta(&staging_hold_key(ma))?
            .and_then(|t| serde_json::from_str(&t).ok());
        let standing = deletions::standing(txn.as_mut(), ma)?;
        txn.set_meta(&staging_hold_key(ma), None)?;
        let approval = match standing {
            Some(s) => {
                let ids = deletions::pending_delete_ids(txn.as_mut(), ma)?;
                let value = deletions::approval_value(&ids);
                txn.set_meta(&deletion_approval_key(ma), Some(&value))?;
                Approval {
                    staging,
                    deletions: Some(s.stop),
                    pending_deletes: ids.len() as u64,
                }
            }
            None => {
                clear_deletion_stop(txn.as_mut(), ma)?;
                Approval {
                    staging,
                    deletions: None,
                    pending_deletes: 0,
                }
            }
        };
        txn.commit()?;
        tracing::info!(
            ma,
            staging = approval.staging.is_some(),
            deletions = approval.deletions.is_some(),
            pending_deletes = approval.pending_deletes,
            "approved: held syncs may run, the next export may exceed the deletion threshold once"
        );
        Ok(approval)
    }

    /// Let the next export of `ma` exceed its deletion threshold once.
    pub fn approve_deletions(&self, ma: &str) -> Result<(), EngineError> {
        self.approve(ma).map(|_| ())
    }

    /// Reject what a threshold stopped on `ma`: the changes staged by an
    /// import over a staging threshold are discarded (see
    /// [`Engine::discard_staged`]), and the pending export deletes of an
    /// export stopped at the deletion threshold are dropped, their objects
    /// made explicit disconnectors or left to be joined again, per the
    /// MA's `reject_deletions`. Refused while the MA runs a profile, and
    /// when nothing waits for an operator.
    pub fn reject(&self, ma: &str) -> Result<Rejection, RejectError> {
        let def = self.ma_def(ma)?;
        let store = self.store.as_ref();
        let hold = staging_hold(store, ma)?;
        let stop = deletion_stop(store, ma)?;
        if stop.is_none() {
            // A stop whose deletes a sync cancelled: nothing to reject.
            deletions::forget_if_gone(store, ma)?;
        }
        if hold.is_none() && stop.is_none() {
            return Err(RejectError::Nothing { ma: ma.to_owned() });
        }
        let mut rejection = Rejection::default();
        if let Some(hold) = hold {
            let discarded = self.discard_staged(ma)?;
            let mut txn = store.begin()?;
            txn.set_meta(&staging_hold_key(ma), None)?;
            txn.commit()?;
            rejection.staging = Some((hold, discarded));
        }
        if let Some(stop) = stop {
            let dropped = self.drop_pending_deletes(ma, def.reject_deletions)?;
            rejection.deletions = Some((stop, dropped));
        }
        Ok(rejection)
    }

    fn drop_pending_deletes(
        &self,
        ma: &str,
        action: RejectDeletions,
    ) -> Result<RejectedDeletes, DiscardError> {
        let Some(_guard) = MaGuard::acquire(self, ma) else {
            return Err(DiscardError::Running { ma: ma.to_owned() });
        };
        if crate::lease::holder(&self.leases, ma)?.is_some() {
            return Err(DiscardError::Running { ma: ma.to_owned() });
        }
        let mut done = RejectedDeletes { dropped: 0, action };
        let mut rejected = rejected_deletes(self.store().read()?.as_mut(), ma)?;
        let mut after = 0;
        loop {
            let page = self
                .store()
                .read()?
                .cs_page(ma, CsFilter::PendingExport, after, PAGE)?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            let mut txn = self.store().begin()?;
            for mut obj in page {
                let delete = obj
                    .pending_export
                    .as_ref()
                    .is_some_and(|p| p.kind == ExportKind::Delete);
                if !delete {
                    continue;
                }
                obj.pending_export = None;
                match action {
                    RejectDeletions::ExplicitDisconnector => {
                        obj.connection = Connection::ExplicitDisconnector;
                    }
                    RejectDeletions::ReEvaluate => {
                        if matches!(obj.connection, Connection::Connector { .. }) {
                            rejected.insert(obj.id);
                        }
                        if obj.connection == Connection::Disconnector {
                            meet_join_rules_again(&mut obj);
                        }
                    }
                }
                txn.cs_update(&obj)?;
                done.dropped += 1;
            }
            txn.commit()?;
        }
        let mut txn = self.store().begin()?;
        clear_deletion_stop(txn.as_mut(), ma)?;
        set_rejected_deletes(txn.as_mut(), ma, &rejected)?;
        txn.commit()?;
        tracing::warn!(
            ma,
            dropped = done.dropped,
            ?action,
            "pending export deletes rejected; nothing was deleted"
        );
        Ok(done)
    }
}

/// The meta key of the connectors of `ma` whose pending deletes an
/// operator rejected (`reject_deletions = "re-evaluate"`, joined ones).
pub fn rejected_deletes_key(ma: &str) -> String {
    format!("deletes-rejected:{ma}")
}

/// The connectors of `ma` whose deletes an operator rejected: a delta sync
/// stages no delete of theirs again (a rejected mass delete does not go
/// out in parts under the threshold), until they are in scope again or a
/// full sync of `ma` decides again.
pub(crate) fn rejected_deletes(
    read: &mut dyn autosync_store::StoreRead,
    ma: &str,
) -> StoreResult<rustc_hash::FxHashSet<CsId>> {
    Ok(read
        .meta(&rejected_deletes_key(ma))?
        .and_then(|t| serde_json::from_str::<Vec<CsId>>(&t).ok())
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// Write the set of [`rejected_deletes`] of `ma` (none: the key goes).
pub(crate) fn set_rejected_deletes(
    txn: &mut dyn StoreTxn,
    ma: &str,
    ids: &rustc_hash::FxHashSet<CsId>,
) -> StoreResult<()> {
    if ids.is_empty() {
        return txn.set_meta(&rejected_deletes_key(ma), None);
    }
    let mut sorted: Vec<CsId> = ids.iter().copied().collect();
    sorted.sort_unstable();
    let text = serde_json::to_string(&sorted).unwrap_or_default();
    txn.set_meta(&rejected_deletes_key(ma), Some(&text))
}

/// Forget an export's stop at the deletion threshold and any approval.
pub(crate) fn clear_deletion_stop(txn: &mut dyn StoreTxn, ma: &str) -> StoreResult<()> {
    txn.set_meta(&deletion_stop_key(ma), None)?;
    txn.set_meta(&deletion_approval_key(ma), None)
}

/// Stage disconnector `obj` for its MA's next sync, which tries the join
/// rules on it again (as a change of its system would).
fn meet_join_rules_again(obj: &mut autosync_model::CsObject) {
    if obj.pending_import.is_none() {
        obj.pending_import = Some(PendingImport {
            values: Default::default(),
            kind: ImportKind::Update,
            attributes: obj.hologram.clone(),
            dn: None,
            object_type: None,
        });
    }
}
