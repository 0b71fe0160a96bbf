//! Writing one object's work (`Syncer::apply`): the source connector, the
//! metaverse object (a new one first, to learn its id), its other
//! connectors and the objects provisioned for it, and what references
//! note of each (waits, the step's knowledge of what it wrote).

use super::{Action, MvWork, Syncer, Work, add_counters, zeroed};
use crate::history::clear_error;
use autosync_model::{Connection, CsObject, ErrorStage, MvId, MvObject, PendingExport};
use autosync_store::{StoreResult, StoreTxn};

impl Syncer<'_> {
    /// Write one object's work.
    pub(crate) fn apply(&mut self, txn: &mut dyn StoreTxn, mut w: Work) -> StoreResult<()> {
        let source_dirty = clear_error(&mut w.source, ErrorStage::Sync) | w.source_dirty;
        if w.source_delete {
            // Deleted in its system: the connector goes first, as the
            // object provisioning may make again in its place has its
            // anchor.
            let left = w.left.take();
            let inserts = std::mem::take(&mut w.inserts);
            if let Some(left) = &left {
                self.note_gone(left, Some(&w.source));
            }
            self.write_source(txn, w, false, None)?;
            if let Some(left) = left {
                self.write_mv(txn, left, inserts)?;
            }
            return Ok(());
        }
        if let Some(left) = w.left.take() {
            self.note_gone(&left, Some(&w.source));
            // What provisioning created for the object the source left
            // (a value recalled brought it into a target's scope) is
            // written with it, when the source joins no other object.
            let inserts = if w.mv.is_none() {
                std::mem::take(&mut w.inserts)
            } else {
                Vec::new()
            };
            self.write_mv(txn, left, inserts)?;
        }
        let mut mv = w.mv.take();
        if let Some(mv) = &mv {
            self.note_gone(mv, Some(&w.source));
        }
        if let Some(mv) = &mut mv
            && mv.is_new
        {
            self.note_mv_written(&mv.obj);
            // The store keeps the object itself (no copy); what stays here
            // is its id.
            let placeholder = MvObject::new(&mv.obj.object_type);
            let id = txn.mv_insert_owned(std::mem::replace(&mut mv.obj, placeholder))?;
            mv.obj.id = id;
            fix_new_mv(&mut w.source, id);
            for x in &mut w.inserts {
                fix_new_mv(x, id);
            }
            for (x, _) in mv.others.iter_mut().flatten() {
                fix_new_mv(x, id);
            }
        }
        let inserts = std::mem::take(&mut w.inserts);
        let new_id = mv.as_ref().filter(|m| m.is_new).map(|m| m.obj.id);
        self.write_source(txn, w, source_dirty, new_id)?;
        if let Some(mv) = mv {
            self.write_mv(txn, mv, inserts)?;
        }
        Ok(())
    }

    /// Write the source of one object's work (deleted, changed or kept),
    /// its counters and what references note of it. `new_id`: the
    /// metaverse object it projected.
    fn write_source(
        &mut self,
        txn: &mut dyn StoreTxn,
        mut w: Work,
        source_dirty: bool,
        new_id: Option<MvId>,
    ) -> StoreResult<()> {
        add_counters(&mut self.counters, &w.counters);
        self.spare_counters = zeroed(std::mem::take(&mut w.counters));
        if self.in_refs {
            let waits = if w.source_delete {
                Vec::new()
            } else {
                w.in_waits.take().unwrap_or_default()
            };
            // Written only when something waits now or waited before.
            let write = match &mut self.waiting {
                None => true,
                Some((cs, _)) if !waits.is_empty() => {
                    cs.insert(w.source.id);
                    true
                }
                Some((cs, _)) => cs.remove(&w.source.id),
            };
            if write {
                txn.ref_waits_set(w.source.id, &waits)?;
            }
        }
        if let Some(j) = &mut self.joined {
            let mas = (&self.rules.ref_mas.0[..], &self.rules.ref_mas.1[..]);
            j.wrote(&w.source, w.source.id, w.source_delete, mas);
        }
        self.write_out_waits(txn, new_id)?;
        self.write_touched(txn)?;
        if w.source_delete {
            txn.cs_delete(w.source.id)?;
        } else if source_dirty {
            txn.cs_update_owned(w.source)?;
        }
        Ok(())
    }

    /// Write a metaverse object's work: its other connectors, the objects
    /// provisioned for it, then the object itself (a new one is written
    /// already). The objects go to the store without copies.
    pub(crate) fn write_mv(
        &mut self,
        txn: &mut dyn StoreTxn,
        mut mv: MvWork,
        inserts: Vec<CsObject>,
    ) -> StoreResult<()> {
        let mas = (&self.rules.ref_mas.0[..], &self.rules.ref_mas.1[..]);
        for (x, action) in mv.others.take().into_iter().flatten() {
            if let Some(j) = &mut self.joined
                && action != Action::Keep
            {
                j.wrote(&x, x.id, action == Action::Delete, mas);
            }
            match action {
                Action::Keep => {}
                Action::Update => txn.cs_update_owned(x)?,
                Action::Delete => txn.cs_delete(x.id)?,
            }
        }
        for x in inserts {
            match &mut self.joined {
                Some(j) if crate::refs::Joined::notes(&x.ma, mas) => {
                    // Noted with the id the store gives it.
                    let mut noted = CsObject::new(&x.ma, &x.anchor, &x.dn, &x.object_type);
                    noted.connection = x.connection;
                    noted.pending_export = x.pending_export.as_ref().map(|p| PendingExport {
                        values: Default::default(),
                        kind: p.kind,
                        changes: Default::default(),
                        new_dn: p.new_dn.clone(),
                    });
                    let id = txn.cs_insert_owned(x)?;
                    j.wrote(&noted, id, false, mas);
                }
                _ => {
                    txn.cs_insert_owned(x)?;
                }
            }
        }
        if mv.delete {
            txn.mv_delete(mv.obj.id)?;
            self.mv_cache.remove(&mv.obj.id);
            if self.rules.has_refs {
                // The references to it go (at the end of the step, or of
                // the next one should this process die first).
                txn.ref_out_waits_set(mv.obj.id, "", &[])?;
                txn.ref_touched_add(&[(mv.obj.id, true)])?;
            }
        } else if !mv.is_new {
            if let Some(cached) = self.mv_cache.get_mut(&mv.obj.id) {
                cached.clone_from(&mv.obj);
            }
            if mv.dirty {
                self.note_mv_written(&mv.obj);
                txn.mv_update_owned(mv.obj)?;
            }
        }
        Ok(())
    }
}

impl Syncer<'_> {
    /// Note how the connectors of `mv` (and `source`, the object being
    /// synchronised) were named, if `mv` is being deleted: the references
    /// to it may then go value by value (see `gone`).
    fn note_gone(&mut self, mv: &MvWork, source: Option<&CsObject>) {
        if !mv.delete || !self.rules.has_refs || self.gone.len() >= super::gone::GONE_KEYS_MAX {
            return;
        }
        let others = mv.others.iter().flatten().map(|(x, _)| x);
        let keys = source
            .into_iter()
            .chain(others)
            .map(super::gone::GoneKey::of)
            .collect();
        self.gone.insert(mv.obj.id, keys);
    }
}

fn fix_new_mv(cs: &mut CsObject, id: MvId) {
    if cs.connection == (Connection::Connector { mv_id: 0 }) {
        cs.connection = Connection::Connector { mv_id: id };
    }
}
