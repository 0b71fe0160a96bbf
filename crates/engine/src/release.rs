//! Releasing an explicit disconnector (MIM's Joiner, for one object): an
//! operator makes an object that deprovisioning or a rejected delete made
//! an explicit disconnector (never joined again) a normal disconnector, so
//! its MA's join rules meet it again at that MA's next sync, and a
//! provisioning that made it takes it back (the person came back).

use crate::Engine;
use crate::discard::DiscardError;
use crate::run::MaGuard;
use autosync_model::{Connection, ImportKind, PendingImport, RunReason, StepType};

/// Why an object was not released.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Refused(#[from] DiscardError),
    #[error(
        "`{ma}` has no object with anchor `{anchor}` (anchors compare exactly; `autosync cs {ma}` lists them)"
    )]
    NoObject { ma: String, anchor: String },
    #[error(
        "the object of `{ma}` with anchor `{anchor}` is not an explicit disconnector (it is {state}): nothing to release"
    )]
    NotExplicit {
        ma: String,
        anchor: String,
        state: &'static str,
    },
}

impl From<autosync_store::StoreError> for ReleaseError {
    fn from(e: autosync_store::StoreError) -> Self {
        ReleaseError::Refused(e.into())
    }
}

impl From<crate::EngineError> for ReleaseError {
    fn from(e: crate::EngineError) -> Self {
        ReleaseError::Refused(e.into())
    }
}

impl Engine {
    /// Makes the explicit disconnector of `ma` with anchor `anchor` a
    /// normal disconnector, staged for its MA's next sync (which tries the
    /// join rules). Refused while the MA runs a profile, here or in
    /// another process.
    pub fn release_explicit_disconnector(
        &self,
        ma: &str,
        anchor: &str,
    ) -> Result<(), ReleaseError> {
        self.ma_def(ma)?;
        let Some(_guard) = MaGuard::acquire(self, ma) else {
            return Err(DiscardError::Running { ma: ma.to_owned() }.into());
        };
        // The MA's lease, against its runs in other processes, and the
        // sync's turn, against a sync of another MA provisioning onto this
        // very object meanwhile (waited for: a sync ends).
        if crate::lease::acquire(&self.leases, ma)?.is_err() {
            return Err(DiscardError::Running { ma: ma.to_owned() }.into());
        }
        let done = self.release_leased(ma, anchor);
        if let Err(e) = crate::lease::release(&self.leases, ma) {
            tracing::warn!(
                ma,
                "cannot release the MA's lease (the next run takes it over): {e}"
            );
        }
        done
    }

    fn release_leased(&self, ma: &str, anchor: &str) -> Result<(), ReleaseError> {
        let opts = crate::RunOptions::new(RunReason::Manual {
            by: "cs release".into(),
        });
        let Some(_turn) = crate::sync_turn::take(self, ma, 0, &opts, 0, StepType::DeltaSync)?
        else {
            return Err(DiscardError::Running { ma: ma.to_owned() }.into());
        };
        let mut txn = self.store().begin()?;
        let Some(mut obj) = txn.cs_by_anchor(ma, anchor)? else {
            return Err(ReleaseError::NoObject {
                ma: ma.to_owned(),
                anchor: anchor.to_owned(),
            });
        };
        let state = match obj.connection {
            Connection::ExplicitDisconnector => None,
            Connection::Disconnector => Some("a normal disconnector"),
            Connection::Connector { .. } => Some("a connector"),
        };
        if let Some(state) = state {
            return Err(ReleaseError::NotExplicit {
                ma: ma.to_owned(),
                anchor: anchor.to_owned(),
                state,
            });
        }
        obj.connection = Connection::Disconnector;
        meet_join_rules_again(&mut obj);
        txn.cs_update(&obj)?;
        txn.commit()?;
        tracing::warn!(
            ma,
            anchor,
            "explicit disconnector released: a normal disconnector, which the MA's join rules meet at its next sync"
        );
        Ok(())
    }
}

/// Stage disconnector `obj` for its MA's next sync, which tries the join
/// rules on it again (as a change of its system would).
pub(crate) fn meet_join_rules_again(obj: &mut autosync_model::CsObject) {
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
