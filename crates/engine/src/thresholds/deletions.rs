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
//! An approval is bound to what it approves: the number of deletes pending
//! when it was given. The export it lets through may go over the threshold
//! only with at most that many; with more, it stops as usual.

use super::{DeletionStop, clear_deletion_stop, deletion_approval_key, deletion_stop_key};
use crate::run::StepCtx;
use autosync_model::{ExportKind, RunStatus};
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

/// The meta value of an approval of `n` pending deletes.
pub(crate) fn approval_value(n: u64) -> String {
    format!("approved:{n}")
}

/// The pending deletes an approval's meta value covers. A value without a
/// count (`approved`, written before approvals were bound to what they
/// approve, possibly with nothing waiting) covers none: the export over
/// the threshold stops again and asks for a new approval, rather than let
/// any number through.
fn approved_count(text: &str) -> u64 {
    text.strip_prefix("approved:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The pending deletes the approval recorded for `ma` covers, if one is.
pub(crate) fn approval<R: StoreRead + ?Sized>(read: &mut R, ma: &str) -> StoreResult<Option<u64>> {
    Ok(read
        .meta(&deletion_approval_key(ma))?
        .map(|t| approved_count(&t)))
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
/// through only with an approval of at least its pending deletes, which
/// it consumes.
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
    if let Some(covered) = approved
        && deletes <= covered
    {
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
    // An approval of fewer deletes is spent: this stop asks for its own.
    txn.set_meta(&deletion_approval_key(ma), None)?;
    txn.commit()?;
    tracing::warn!(
        ma,
        deletes,
        allowed,
        total,
        ?approved,
        "export stopped: deletion threshold exceeded"
    );
    let not_covered = approved
        .map(|n| {
            format!(" The approval given covered {n} pending deletes; {deletes} are pending now.")
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
