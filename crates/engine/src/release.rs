//! Releasing an explicit disconnector (MIM's Joiner, for one object): an
//! operator makes an object that deprovisioning or a rejected delete made
//! an explicit disconnector (never joined again) a normal disconnector,
//! which the person's next provisioning takes back (the person came
//! back).

use crate::Engine;
use crate::discard::DiscardError;
use crate::run::MaGuard;
use autosync_model::{Connection, RunReason, StepType};

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
    /// normal disconnector. Refused while the MA runs a profile, here or
    /// in another process.
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
        // Not staged for its MA's join rules: the person's metaverse object
        // may still be what the failed provisioning left it (a sync of the
        // source failed on it as a whole), and a join now would be
        // deprovisioned again at once (a second review). The source's
        // next sync of the person provisions onto it (taking it back when
        // provisioning made it, joining it by the MA's join rules when
        // they match); a full sync of the MA meets it too.
        obj.connection = Connection::Disconnector;
        txn.cs_update(&obj)?;
        txn.commit()?;
        tracing::warn!(
            ma,
            anchor,
            "explicit disconnector released: a normal disconnector, which the next provisioning of its person takes back"
        );
        Ok(())
    }
}
