//! A staging hold whose changes are no longer staged: an import after the
//! one that went over the threshold read the source again (the good file
//! put back), and what the connector space now holds staged is under every
//! threshold. The hold is lifted by that import, as an operator's `reject`
//! followed by the import would have: nothing that went over is left to
//! approve, and a hold that stayed made the status, `approve` and the next
//! sync's reason speak of deletes that no longer existed.

use super::{StagingHold, staging_hold, staging_hold_key};
use crate::run::PAGE;
use autosync_model::{ImportCounters, ImportKind, MaDef, RunId};
use autosync_store::{CsFilter, Store, StoreResult};

/// What an import found of the staging hold it ran under.
pub(crate) enum HoldAfter {
    /// What is staged now is under every threshold: the hold is gone.
    Lifted(String),
    /// Still over: the hold stands, its figures now what is staged now.
    Stands(String),
}

/// After import run `run_id` of `ma` (not itself over a threshold): lift
/// the MA's staging hold when what is staged now is under its thresholds,
/// else give the hold the figures of what is staged now (a file half
/// restored leaves fewer deletes than the hold said). Returns what the
/// step says of it. Reads the pending imports only while a hold stands.
pub(crate) fn lift_if_gone(
    store: &dyn Store,
    ma: &MaDef,
    run_id: RunId,
) -> StoreResult<Option<HoldAfter>> {
    let Some(hold) = staging_hold(store, &ma.name)? else {
        return Ok(None);
    };
    if hold.run_id == run_id {
        return Ok(None);
    }
    let staged = staged_now(store, &ma.name)?;
    let thresholds = &ma.staging_thresholds;
    let mut read = store.read()?;
    let total = read
        .cs_count(&ma.name, CsFilter::All)?
        .saturating_sub(staged.stage_add);
    let mut exceeded = thresholds.evaluate(&staged, total);
    if thresholds.evaluate_values(&staged, 1).is_some() {
        let values = read.cs_ma_values_count(&ma.name)?;
        exceeded.extend(thresholds.evaluate_values(&staged, values));
    }
    drop(read);
    if !exceeded.is_empty() {
        let now = StagingHold {
            run_id: hold.run_id,
            exceeded,
        };
        if now != hold {
            let mut txn = store.begin()?;
            txn.set_meta(
                &staging_hold_key(&ma.name),
                Some(&serde_json::to_string(&now).unwrap_or_default()),
            )?;
            txn.commit()?;
        }
        return Ok(Some(HoldAfter::Stands(format!(
            "the staging threshold that run {} went over still holds: what is staged now is over \
             it ({}); no sync of `{}` runs until `autosync approve {2}` or `autosync reject {2}` \
             (or an import that leaves what is staged under the thresholds)",
            hold.run_id,
            now.summary(),
            ma.name
        ))));
    }
    let mut txn = store.begin()?;
    txn.set_meta(&staging_hold_key(&ma.name), None)?;
    txn.commit()?;
    let message = format!(
        "the changes run {} staged over the staging threshold ({}) are no longer staged: this \
         import read the source again and {} change(s) are staged now, under the thresholds; the \
         syncs of `{}` run again",
        hold.run_id,
        hold.summary(),
        staged.staged(),
        ma.name
    );
    tracing::info!(ma = %ma.name, run_id, "{message}");
    Ok(Some(HoldAfter::Lifted(message)))
}

/// What the connector space of `ma` holds staged, counted as an import's
/// counters are.
fn staged_now(store: &dyn Store, ma: &str) -> StoreResult<ImportCounters> {
    let mut c = ImportCounters::default();
    let mut read = store.read()?;
    let mut after = 0;
    loop {
        let page = read.cs_page_light(ma, CsFilter::PendingImport, after, PAGE)?;
        let Some(last) = page.last() else {
            return Ok(c);
        };
        after = last.id;
        for p in page.iter().filter_map(|o| o.pending_import.as_ref()) {
            match p.kind {
                ImportKind::Add => c.stage_add += 1,
                ImportKind::Update => c.stage_update += 1,
                ImportKind::Delete => c.stage_delete += 1,
                ImportKind::DeleteAdd => c.stage_delete_add += 1,
            }
            if p.dn.is_some() {
                c.stage_rename += 1;
            }
            for d in p.values.values() {
                c.stage_values += (d.add.len() + d.remove.len()) as u64;
                c.stage_values_removed += d.remove.len() as u64;
            }
        }
    }
}
