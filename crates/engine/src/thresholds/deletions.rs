//! The export deletion threshold: the check an export makes before it
//! sends anything, what stands of a stop, and what an approval covers.
//!
//! A stop stands only while the MA's pending export deletes are still more
//! than the threshold allowed when it stopped, as a staging hold is lifted
//! by an import that no longer stages what went over (`lift.rs`): a sync
//! that cancelled them (the people back in scope) ended it, and a stop
//! kept until the next export made the status ask for a decision that
//! `approve` then recorded for whatever mass delete came next (found by a
//! black-box review: an approval of 0 pending deletes let 3 through). Its
//! record stays until the next export, `approve` or `reject` forgets it;
//! nobody is asked to decide on it meanwhile, and a sync that stages the
//! deletes again makes it stand again (the export stops them regardless:
//! it reads the deletes, not the record).
//!
//! An approval is bound to what it approves: the objects whose deletes
//! were pending when it was given (their connector-space ids, stable while
//! the object exists). The export it lets through may go over the
//! threshold only when every delete pending then is one of those; with
//! another (the people approved back in scope and others gone instead: a
//! count alone let those through, found by a black-box review), it stops
//! as usual and the approval is spent.

use super::{DeletionStop, clear_deletion_stop, deletion_approval_key, deletion_stop_key};
use crate::run::StepCtx;
use autosync_model::{CsId, ExportKind, RunStatus};
use autosync_store::{CsFilter, Store, StoreRead, StoreResult};

/// A stop at the deletion threshold that still stands.
pub(crate) struct Standing {
    pub stop: DeletionStop,
    /// The export deletes pending now.
    pub pending: u64,
}

/// The stop recorded for `ma`, if it still stands: the MA's pending
/// export deletes are still more than the threshold allowed when it
/// stopped. Read in a transaction by those who write after it.
pub(crate) fn standing<R: StoreRead + ?Sized>(
    read: &mut R,
    ma: &str,
) -> StoreResult<Option<Standing>> {
    let Some(stop) = read
        .meta(&deletion_stop_key(ma))?
        .and_then(|t| serde_json::from_str::<DeletionStop>(&t).ok())
    else {
        return Ok(None);
    };
    // The deletes are among the pending exports: when those are not over,
    // neither are the deletes (an index count, not a read of each object).
    if read.cs_count(ma, CsFilter::PendingExport)? <= stop.allowed {
        return Ok(None);
    }
    let pending = read.cs_pending_export_count(ma, ExportKind::Delete)?;
    Ok((pending > stop.allowed).then_some(Standing { stop, pending }))
}

/// Pending delete ids read at a time: what bounds the memory of a check
/// (an approval itself holds every id it covers).
const IDS_PAGE: usize = 10_000;

/// The prefix of an approval's meta value, before the JSON list of ids.
const APPROVED: &str = "approved:";

/// The ids of the objects of `ma` with a pending export delete, in id
/// order (read as far as each pending export's kind, not whole objects).
pub(crate) fn pending_delete_ids<R: StoreRead + ?Sized>(
    read: &mut R,
    ma: &str,
) -> StoreResult<Vec<CsId>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = read.cs_pending_export_ids(ma, ExportKind::Delete, after, IDS_PAGE)?;
        let Some(&last) = page.last() else {
            return Ok(out);
        };
        after = last;
        out.extend(page);
    }
}

/// The meta value of an approval of the deletes of the objects `ids`
/// (`approved:[12,15]`).
pub(crate) fn approval_value(ids: &[CsId]) -> String {
    format!(
        "{APPROVED}{}",
        serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
    )
}

/// The objects whose pending deletes an approval covers, sorted.
pub(crate) struct Approved(Vec<CsId>);

impl Approved {
    /// Read from an approval's meta value. A value without a list of ids
    /// covers none: `approved:N` (written when an approval was bound to a
    /// count, which let other objects' deletes through) and `approved`
    /// (written before that, possibly with nothing waiting). An export over
    /// the threshold then stops again and asks for a new approval, rather
    /// than let deletes nobody checked through.
    fn parse(text: &str) -> Self {
        let mut ids = text
            .strip_prefix(APPROVED)
            .and_then(|list| serde_json::from_str::<Vec<CsId>>(list).ok())
            .unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        Approved(ids)
    }

    /// How many objects' deletes it covers.
    pub(crate) fn len(&self) -> u64 {
        self.0.len() as u64
    }

    /// How many of the deletes pending on `ma` now it does not cover, read
    /// a page of ids at a time.
    pub(crate) fn uncovered<R: StoreRead + ?Sized>(
        &self,
        read: &mut R,
        ma: &str,
    ) -> StoreResult<u64> {
        let (mut after, mut n) = (0, 0);
        loop {
            let page = read.cs_pending_export_ids(ma, ExportKind::Delete, after, IDS_PAGE)?;
            let Some(&last) = page.last() else {
                return Ok(n);
            };
            after = last;
            n += page
                .iter()
                .filter(|id| self.0.binary_search(id).is_err())
                .count() as u64;
        }
    }

    /// Whether it covers every delete pending on `ma` now, `pending` of
    /// them (with more than it covers, some is not one of them).
    pub(crate) fn covers_all<R: StoreRead + ?Sized>(
        &self,
        read: &mut R,
        ma: &str,
        pending: u64,
    ) -> StoreResult<bool> {
        Ok(pending <= self.len() && self.uncovered(read, ma)? == 0)
    }
}

/// The approval recorded for `ma`, if one is.
pub(crate) fn approval<R: StoreRead + ?Sized>(
    read: &mut R,
    ma: &str,
) -> StoreResult<Option<Approved>> {
    Ok(read
        .meta(&deletion_approval_key(ma))?
        .map(|t| Approved::parse(&t)))
}

/// Forget the stop of `ma` and any approval when the stop no longer
/// stands (checked in the transaction that forgets it, so a stop an export
/// records meanwhile is kept).
pub(crate) fn forget_if_gone(store: &dyn Store, ma: &str) -> StoreResult<()> {
    let mut txn = store.begin()?;
    let recorded = txn.meta(&deletion_stop_key(ma))?.is_some()
        || txn.meta(&deletion_approval_key(ma))?.is_some();
    if recorded && standing(txn.as_mut(), ma)?.is_none() {
        clear_deletion_stop(txn.as_mut(), ma)?;
        txn.commit()?;
    }
    Ok(())
}

/// Pending export deletes on the MA, counted only when there are more
/// pending exports than the threshold.
fn pending_deletes(ctx: &StepCtx<'_>, threshold: u64) -> StoreResult<u64> {
    let ma = ctx.ma.name.as_str();
    let mut read = ctx.store().read()?;
    if read.cs_count(ma, CsFilter::PendingExport)? <= threshold {
        return Ok(0);
    }
    read.cs_pending_export_count(ma, ExportKind::Delete)
}

/// Check the deletion threshold; `Some` when the export must not start.
/// An export under it forgets an earlier stop and any approval (an
/// approval never waits for a later mass delete); one over it goes
/// through only with an approval that covers each of its pending deletes,
/// which it consumes.
pub(crate) fn check_export_deletions(
    ctx: &StepCtx<'_>,
) -> StoreResult<Option<(RunStatus, String)>> {
    let ma = ctx.ma.name.as_str();
    let threshold = ctx.ma.export_deletion_threshold;
    // The deletes are among the pending exports, and the connector
    // space holds at least those, so the threshold allows at least
    // what it allows of that many: when the pending exports are under
    // it, neither the deletes nor the connector space (a count of its
    // whole index) need counting.
    {
        let mut read = ctx.store().read()?;
        let pending = read.cs_count(ma, CsFilter::PendingExport)?;
        let under = pending == 0 || threshold.allowed(pending).is_none_or(|a| pending <= a);
        if under {
            let waiting = read.meta(&deletion_approval_key(ma))?.is_some()
                || read.meta(&deletion_stop_key(ma))?.is_some();
            drop(read);
            if waiting {
                let mut txn = ctx.store().begin()?;
                clear_deletion_stop(txn.as_mut(), ma)?;
                txn.commit()?;
            }
            return Ok(None);
        }
    }
    let total = ctx.store().read()?.cs_count(ma, CsFilter::All)?;
    let deletes = match threshold.allowed(total) {
        Some(allowed) => pending_deletes(ctx, allowed)?,
        None => 0,
    };
    let allowed = threshold.allowed(total).unwrap_or(u64::MAX);
    let mut txn = ctx.store().begin()?;
    let approved = approval(txn.as_mut(), ma)?;
    if deletes <= allowed {
        if approved.is_some() || txn.meta(&deletion_stop_key(ma))?.is_some() {
            clear_deletion_stop(txn.as_mut(), ma)?;
            txn.commit()?;
        }
        return Ok(None);
    }
    // The deletes pending now that the approval does not cover, read in
    // the transaction that consumes or spends it.
    let not_covered = match &approved {
        Some(a) => Some((a.len(), a.uncovered(txn.as_mut(), ma)?)),
        None => None,
    };
    if let Some((covered, 0)) = not_covered {
        // The approval is consumed by the export it lets through.
        clear_deletion_stop(txn.as_mut(), ma)?;
        txn.commit()?;
        tracing::info!(
            ma,
            deletes,
            allowed,
            covered,
            "deletions over the threshold approved"
        );
        return Ok(None);
    }
    let stop = DeletionStop {
        run_id: ctx.run_id,
        deletes,
        allowed,
        cs_total: total,
    };
    txn.set_meta(
        &deletion_stop_key(ma),
        Some(&serde_json::to_string(&stop).unwrap_or_default()),
    )?;
    // An approval of other deletes is spent: this stop asks for its own.
    txn.set_meta(&deletion_approval_key(ma), None)?;
    txn.commit()?;
    tracing::warn!(
        ma,
        deletes,
        allowed,
        total,
        ?not_covered,
        "export stopped: deletion threshold exceeded"
    );
    let not_covered = not_covered
        .map(|(covered, n)| {
            let are = if n == 1 { "is" } else { "are" };
            format!(
                " The approval given covered {covered} pending deletes; {n} of the {deletes} \
                 pending now {are} not among them."
            )
        })
        .unwrap_or_default();
    Ok(Some((
        RunStatus::StoppedDeletionThresholdExceeded,
        format!(
            "{deletes} pending export deletes exceed the deletion threshold of management \
             agent `{ma}` ({threshold}: at most {allowed} of its {total} objects); nothing \
             was sent.{not_covered} Check them (`autosync cs {ma} --pending-export`), then \
             `autosync approve {ma}` lets the next export delete them, or `autosync reject \
             {ma}` drops the deletes"
        ),
    )))
}
