//! An import while an earlier run's import holds the MA's syncs at a
//! staging threshold. What that import staged never reached the
//! metaverse: whatever this import leaves staged is what the next sync
//! applies (the hold lifted, `thresholds::lift_if_gone`), so it counts
//! and records it against what the metaverse last saw (the hologram),
//! not against what the held import staged. A change kept as it was
//! staged, a delete still staged included, is this import's change; a
//! held change it cancels (the object read back as the hologram has it)
//! is no change.

use crate::run::StepCtx;
use autosync_model::{CsObject, ImportKind};
use autosync_store::StoreResult;

use super::Importer;

/// Whether a staging hold of another run than this step's stands on the
/// step's MA.
pub(super) fn under_hold(ctx: &StepCtx<'_>) -> StoreResult<bool> {
    Ok(crate::thresholds::staging_hold(ctx.store(), &ctx.ma.name)?
        .is_some_and(|h| h.run_id != ctx.run_id))
}

impl Importer<'_, '_> {
    /// `cs`, read or found absent, left as it was by this import: counted
    /// as the change it keeps staged under a hold, else as no change.
    pub(super) fn unchanged(&mut self, cs: &CsObject) {
        if !self.count_kept(cs) {
            self.counters.stage_no_change += 1;
        }
    }

    /// Count the change `cs` holds staged, unchanged by this import, as
    /// staged by it when an earlier import's hold stands (see above);
    /// `false` (nothing counted) otherwise. Counted as `stage_difference`
    /// and `stage_delete` count a change they stage.
    fn count_kept(&mut self, cs: &CsObject) -> bool {
        if !self.held {
            return false;
        }
        let Some(p) = &cs.pending_import else {
            return false;
        };
        let c = &mut self.counters;
        match p.kind {
            ImportKind::Add => c.stage_add += 1,
            ImportKind::Delete => c.stage_delete += 1,
            ImportKind::DeleteAdd => c.stage_delete_add += 1,
            ImportKind::Update if p.dn.as_ref().is_some_and(|dn| *dn != cs.dn) => {
                c.stage_rename += 1;
            }
            ImportKind::Update => c.stage_update += 1,
        }
        for d in p.values.values() {
            c.stage_values += (d.add.len() + d.remove.len()) as u64;
            c.stage_values_removed += d.remove.len() as u64;
        }
        true
    }
}
