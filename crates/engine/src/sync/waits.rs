//! What a sync step notes about references and writes with its batches:
//! the outbound references that wait (per referring metaverse object and
//! target MA), the metaverse objects whose referrers are to be worked out
//! again (renamed or leaving connectors), and which objects' waits to
//! write at all (those that wait now or waited when the step began).

use super::Syncer;
use crate::run::StepCtx;
use autosync_model::{CsId, MvId};
use autosync_store::{OutWaitTargets, StoreResult, StoreTxn};
use rustc_hash::FxHashSet;

/// The references of one metaverse object (0: the one projected by the
/// object being synchronised) to one target MA that wait: each referred
/// object and the MA it waits for a connector on.
pub(crate) type OutWaits = (MvId, String, OutWaitTargets);

/// What an object's outbound work noted about references, kept apart
/// because outbound rules read the syncer only (`&self`).
#[derive(Default)]
pub(crate) struct RefNotes {
    /// Per referring metaverse object (0: the one projected by the object
    /// being synchronised) and target MA: the referred objects without a
    /// connector there.
    pub out_waits: Vec<OutWaits>,
    /// Metaverse objects whose connector on some MA was renamed or is
    /// leaving: the references to them are worked out again.
    pub touched: rustc_hash::FxHashSet<MvId>,
    /// Metaverse objects whose connector on an MA that references name by
    /// DN has a new DN: the connectors of their referrers are synchronised
    /// again (a reference naming the old DN names nothing now).
    pub renamed: rustc_hash::FxHashSet<MvId>,
    /// How the connectors that left the objects in `touched` were named.
    pub names: Vec<(MvId, autosync_store::RefName)>,
}

impl Syncer<'_> {
    /// Write the outbound waits the last object's work noted; `new_id`:
    /// the id of the metaverse object it projected, if any.
    pub(crate) fn write_out_waits(
        &mut self,
        txn: &mut dyn StoreTxn,
        new_id: Option<MvId>,
    ) -> StoreResult<()> {
        let waits = std::mem::take(&mut self.ref_notes.get_mut().out_waits);
        for (mv_id, ma, targets) in waits {
            let id = match (mv_id, new_id) {
                (0, Some(n)) => n,
                (0, None) => continue,
                (id, _) => id,
            };
            // Written only when something waits now or waited before.
            if let Some((_, mvs)) = &mut self.waiting {
                if !targets.is_empty() {
                    mvs.insert(id);
                } else if !mvs.contains(&id) {
                    continue;
                }
            }
            txn.ref_out_waits_take(id, &ma, targets)?;
        }
        Ok(())
    }

    /// Note in the store the objects the last object's work renamed or
    /// deprovisioned connectors of (with its batch: nothing is lost to a
    /// crash before the end of the step).
    pub(crate) fn write_touched(&mut self, txn: &mut dyn StoreTxn) -> StoreResult<()> {
        let notes = self.ref_notes.get_mut();
        let touched = std::mem::take(&mut notes.touched);
        let renamed = std::mem::take(&mut notes.renamed);
        let names = std::mem::take(&mut notes.names);
        if touched.is_empty() && renamed.is_empty() {
            return Ok(());
        }
        for (id, name) in names {
            txn.ref_touched_names_add(id, std::slice::from_ref(&name))?;
        }
        // Renamed: noted as gone is (the referrers' connectors are
        // synchronised again, then their outbound references).
        let mut noted: Vec<(MvId, bool)> = touched
            .into_iter()
            .filter(|id| !renamed.contains(id))
            .map(|id| (id, false))
            .chain(renamed.iter().map(|id| (*id, true)))
            .collect();
        noted.sort_unstable();
        txn.ref_touched_add(&noted)
    }
}

/// The objects of `ma` whose references wait, and the metaverse objects
/// whose outbound references do, as a step begins.
pub(super) fn waiting_at_start(
    ctx: &StepCtx<'_>,
    ma: &str,
) -> StoreResult<(FxHashSet<CsId>, FxHashSet<MvId>)> {
    let mut read = ctx.store().read()?;
    let mut cs = FxHashSet::default();
    let mut after = 0;
    loop {
        let page = read.ref_waiting_page(ma, after, 10_000)?;
        let Some(&last) = page.last() else { break };
        after = last;
        cs.extend(page);
    }
    let mvs = read.ref_out_waiting()?.into_iter().collect();
    Ok((cs, mvs))
}
