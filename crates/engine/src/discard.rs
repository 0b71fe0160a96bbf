//! Rejecting what an import staged: an operator who rejects a staging
//! threshold drops the MA's pending imports, so nothing of it reaches the
//! metaverse, and clears the MA's watermark, so the next import reads the
//! source again (and stages again what is still there).

use crate::Engine;
use crate::error::EngineError;
use crate::run::MaGuard;
use autosync_model::ImportKind;
use autosync_store::CsFilter;

/// Objects handled per transaction.
const PAGE: usize = 1000;

/// What [`Engine::discard_staged`] dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Staged changes dropped (objects that stay, with their last
    /// synchronised state).
    pub changes: u64,
    /// Objects that only existed as a staged add, removed from the
    /// connector space.
    pub removed: u64,
}

/// Why the staged changes were not discarded.
#[derive(Debug, thiserror::Error)]
pub enum DiscardError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(
        "management agent `{ma}` is running a profile; discard its staged changes when it ends"
    )]
    Running { ma: String },
}

impl From<autosync_store::StoreError> for DiscardError {
    fn from(e: autosync_store::StoreError) -> Self {
        DiscardError::Engine(EngineError::Store(e))
    }
}

impl Engine {
    /// Drops every change staged by imports of `ma` and not yet
    /// synchronised, and clears its watermark. A staged add of an object
    /// that was never joined removes the object; any other staged change is
    /// dropped and the object keeps its last synchronised state. Refused
    /// while the MA runs a profile in this process.
    pub fn discard_staged(&self, ma: &str) -> Result<Discarded, DiscardError> {
        self.ma_def(ma)?;
        let Some(_guard) = MaGuard::acquire(self, ma) else {
            return Err(DiscardError::Running { ma: ma.to_owned() });
        };
        if crate::lease::holder(&self.leases, ma)?.is_some() {
            return Err(DiscardError::Running { ma: ma.to_owned() });
        }
        let mut done = Discarded::default();
        let mut after = 0;
        loop {
            let page = self
                .store()
                .read()?
                .cs_page(ma, CsFilter::PendingImport, after, PAGE)?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            let mut txn = self.store().begin()?;
            for mut obj in page {
                let Some(pending) = obj.pending_import.take() else {
                    continue;
                };
                let never_synchronised = pending.kind == ImportKind::Add
                    && obj.connection.mv_id().is_none()
                    && obj.hologram.is_empty()
                    && obj.pending_export.is_none()
                    && obj.unconfirmed_export.is_none();
                if never_synchronised {
                    txn.cs_delete(obj.id)?;
                    done.removed += 1;
                } else {
                    txn.cs_update(&obj)?;
                    done.changes += 1;
                }
            }
            txn.commit()?;
        }
        let mut txn = self.store().begin()?;
        txn.set_watermark(ma, None)?;
        txn.commit()?;
        tracing::warn!(
            ma,
            changes = done.changes,
            removed = done.removed,
            "staged changes discarded; the next import reads the source again"
        );
        Ok(done)
    }
}
