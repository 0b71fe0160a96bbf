//! Deprovisioning: what becomes of a connector whose metaverse object was
//! deleted, or left a target's provisioning condition (its MA's action or
//! deprovisioning script), and what references note of it.

use super::outbound::{count_outbound, leaving};
use super::{Action, Fail, Syncer};
use crate::extensions::deprovision_action;
use autosync_model::{
    AttrChanges, Connection, CsObject, DeprovisionAction, ExportKind, PendingExport, SyncCounters,
};
use autosync_store::StoreTxn;

/// Why a connector is deprovisioned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deprovision {
    /// Its metaverse object was deleted.
    MvDeleted,
    /// Its metaverse object no longer meets the provisioning condition
    /// (the object stays joined while its delete is pending, so that it
    /// can come back in scope before the export runs).
    OutOfScope,
}

impl Syncer<'_> {
    /// Whether an operator rejected the delete of connector `x` (see
    /// `thresholds::rejected_deletes`): not when this is a full sync of
    /// its MA, which decides again.
    pub(crate) fn delete_rejected(
        &self,
        txn: &mut dyn StoreTxn,
        x: &CsObject,
    ) -> Result<bool, Fail> {
        if self.full && self.ma.name == x.ma {
            return Ok(false);
        }
        let mut rejected = self.rejected.borrow_mut();
        if !rejected.contains_key(&x.ma) {
            let ids = crate::thresholds::rejected_deletes(txn, &x.ma)?;
            rejected.insert(x.ma.clone(), ids);
        }
        Ok(rejected.get(&x.ma).is_some_and(|ids| ids.contains(&x.id)))
    }

    /// Whether the add pending on connector `x` (never confirmed) may be
    /// in the system: an export of its MA stopped between sending adds and
    /// recording them (see `export::in_flight`). Read once per MA.
    fn add_maybe_sent(&self, txn: &mut dyn StoreTxn, x: &CsObject) -> Result<bool, Fail> {
        let add = x
            .pending_export
            .as_ref()
            .is_some_and(|p| matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd));
        if !add {
            return Ok(false);
        }
        let mut known = self.in_flight.borrow_mut();
        if let Some(&marked) = known.get(&x.ma) {
            return Ok(marked);
        }
        let marked = crate::export::in_flight::marked(txn, &x.ma)?;
        known.insert(x.ma.clone(), marked);
        Ok(marked)
    }

    /// Connector `x` is in its MA's provisioning scope: a delete of it an
    /// operator rejected no longer stands in the way of a later one.
    pub(crate) fn in_scope_again(&self, txn: &mut dyn StoreTxn, x: &CsObject) -> Result<(), Fail> {
        if self.delete_rejected(txn, x)? {
            self.unrejected.borrow_mut().push((x.ma.clone(), x.id));
            if let Some(ids) = self.rejected.borrow_mut().get_mut(&x.ma) {
                ids.remove(&x.id);
            }
        }
        Ok(())
    }

    /// Write the rejected deletes that this batch found in scope again.
    pub(crate) fn flush_unrejected(
        &self,
        txn: &mut dyn StoreTxn,
    ) -> autosync_store::StoreResult<()> {
        let done = std::mem::take(&mut *self.unrejected.borrow_mut());
        if done.is_empty() {
            return Ok(());
        }
        let mut mas: Vec<&str> = done.iter().map(|(ma, _)| ma.as_str()).collect();
        mas.sort_unstable();
        mas.dedup();
        for ma in mas {
            let mut ids = crate::thresholds::rejected_deletes(txn, ma)?;
            for (_, id) in done.iter().filter(|(m, _)| m == ma) {
                ids.remove(id);
            }
            crate::thresholds::set_rejected_deletes(txn, ma, &ids)?;
        }
        Ok(())
    }

    /// Deprovision a connector per its MA's action (or its deprovisioning
    /// script): an object never exported leaves the CS; otherwise delete
    /// (pending export delete), disconnect, or make it an explicit
    /// disconnector. Returns what becomes of it.
    pub(crate) fn deprovision(
        &self,
        txn: &mut dyn StoreTxn,
        x: &mut CsObject,
        why: Deprovision,
        counters: &mut SyncCounters,
    ) -> Result<Action, Fail> {
        let ma = self
            .rules
            .ma_index
            .get(&x.ma)
            .and_then(|&i| self.rules.mas.get(i));
        // An operator rejected its delete (an export over the deletion
        // threshold): no delete of it is staged again, so that a rejected
        // mass delete never goes out in parts under the threshold (out of
        // scope, it stays joined: `keep_in_step`); one whose metaverse
        // object goes is only disconnected.
        let rejected = x.present && !leaving(x) && self.delete_rejected(txn, x)?;
        if !leaving(x) {
            count_outbound(counters, &x.ma, |c| c.provisioned_disconnects += 1);
        }
        // References to it on this MA go when it leaves (now, or when its
        // delete is exported: the export notes it then), value by value by
        // the name it had.
        let note = |x: &CsObject, id: Option<autosync_model::MvId>| {
            if let Some(id) = id.filter(|_| self.rules.has_refs) {
                let mut notes = self.ref_notes.borrow_mut();
                notes.touched.insert(id);
                notes.names.push((
                    id,
                    autosync_store::RefName {
                        ma: x.ma.clone(),
                        anchor: x.anchor.clone(),
                        dn: x.dn.clone(),
                    },
                ));
            }
        };
        let referred = x.connection.mv_id();
        let never_confirmed = !x.present && x.unconfirmed_export.is_none();
        if never_confirmed && !self.add_maybe_sent(txn, x)? {
            note(x, referred);
            return Ok(Action::Delete);
        }
        // An add that may be in the system: its delete carries the add's
        // values, so that a connector that cannot find the entry by an
        // anchor its system assigns knows it at its DN.
        let sent_add = if never_confirmed {
            x.pending_export
                .as_ref()
                .map(|p| p.changes.clone())
                .unwrap_or_default()
        } else {
            AttrChanges::new()
        };
        let reason = match why {
            Deprovision::MvDeleted => "mv-deleted",
            Deprovision::OutOfScope => "out-of-scope",
        };
        let how = match ma {
            Some(_) if rejected => DeprovisionAction::Disconnect,
            Some(ma) => deprovision_action(txn, ma, x, reason)?,
            None => DeprovisionAction::Disconnect,
        };
        match how {
            DeprovisionAction::Delete => {
                if why == Deprovision::MvDeleted {
                    x.connection = Connection::Disconnector;
                    note(x, referred);
                }
                x.pending_export = Some(PendingExport {
                    values: Default::default(),
                    kind: ExportKind::Delete,
                    changes: sent_add,
                    new_dn: None,
                });
            }
            DeprovisionAction::Disconnect => {
                note(x, referred);
                x.connection = Connection::Disconnector;
                x.pending_export = None;
            }
            DeprovisionAction::ExplicitDisconnector => {
                note(x, referred);
                x.connection = Connection::ExplicitDisconnector;
                x.pending_export = None;
            }
        }
        Ok(Action::Update)
    }
}
