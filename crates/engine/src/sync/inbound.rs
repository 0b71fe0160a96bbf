//! Rules 1 to 3 of synchronisation for one CS object: a pending delete
//! disconnects (and the deletion rule may delete the metaverse object and
//! deprovision its other connectors); a disconnector is filtered, joined or
//! projected (the join and projection rules in `join`); a connector's
//! inbound flows update its metaverse object under the precedence rules.

use super::deprovision::Deprovision;
use super::precedence::fill_new;
use super::{Action, Fail, MvWork, Syncer, Work};
use crate::compute::{AttrView, CsView, MvView};
use crate::extensions::{eval_condition, eval_source, should_delete};
use crate::rules::{Deletion, MaRules, Rules};
use crate::values::same_in;
use autosync_model::{Attributes, Connection, CsId, CsObject, ExportKind, ImportKind, MvObject};
use autosync_store::{StoreResult, StoreTxn};
use rustc_hash::FxHashSet;
use std::borrow::Cow;

/// Move the pending import into the hologram; returns the old hologram.
pub(super) fn accept(cs: &mut CsObject) -> Option<Attributes> {
    let p = cs.pending_import.take()?;
    if let Some(dn) = p.dn {
        cs.dn = dn;
    }
    if let Some(t) = p.object_type {
        cs.object_type = t;
    }
    Some(std::mem::replace(&mut cs.hologram, p.attributes))
}

/// Whether import flows' references name objects of `ma` by DN.
fn named_by_dn(rules: &Rules, ma: &str) -> bool {
    rules.mas.iter().any(|m| {
        m.inbound.iter().any(|f| {
            f.reference
                .as_ref()
                .is_some_and(|r| r.ma == ma && r.by == autosync_model::RefBy::Dn)
        })
    })
}

/// Whether export flows' references spell objects of `ma` by DN (on `ma`
/// itself, or naming it from another MA).
fn spelled_by_dn(rules: &Rules, ma: &str) -> bool {
    rules.mas.iter().any(|m| {
        m.outbound.iter().any(|f| {
            f.reference.as_ref().is_some_and(|r| {
                r.by == autosync_model::RefBy::Dn && r.ma.as_deref().unwrap_or(&m.name) == ma
            })
        })
    })
}

impl<'a> Syncer<'a> {
    pub(crate) fn sync_object(
        &mut self,
        txn: &mut dyn StoreTxn,
        cs: CsObject,
    ) -> Result<Work, Fail> {
        let mut w = Work {
            source: cs,
            source_dirty: false,
            source_delete: false,
            mv: None,
            left: None,
            previous: None,
            inserts: Vec::new(),
            counters: std::mem::take(&mut self.spare_counters),
            in_waits: None,
        };
        self.ref_notes.get_mut().out_waits.clear();
        let pending = w.source.pending_import.as_ref().map(|p| p.kind);
        match pending {
            Some(ImportKind::Delete) => {
                if self.rules.has_refs && named_by_dn(self.rules, &w.source.ma) {
                    self.dn_moved = true;
                }
                self.disconnect(txn, &mut w, true)?;
                w.source_delete = true;
                return Ok(w);
            }
            Some(ImportKind::DeleteAdd) if self.rejoins(txn, &w.source)? => {
                // The same object under another object type (its type
                // column changed) that joins the metaverse object it is
                // joined to: it stays that object's connector, an update
                // (the person did not change: nothing is deleted and made
                // again, in the metaverse or in the targets).
                if let Some(p) = w.source.pending_import.as_mut() {
                    p.kind = ImportKind::Update;
                }
            }
            Some(ImportKind::DeleteAdd) => {
                self.disconnect(txn, &mut w, false)?;
                w.source.hologram.clear();
            }
            _ => {}
        }
        if pending.is_some() {
            // A new DN as a directory compares DNs (not only its case,
            // its spaces, its escapes or the order of its RDN's parts), as
            // the system gives it: the one references by DN fold alike.
            let dn_changed = self.rules.has_refs
                && w.source.pending_import.as_ref().is_some_and(|p| {
                    p.dn.as_deref().is_some_and(|dn| {
                        autosync_store::fold_dn(dn) != autosync_store::fold_dn(&w.source.dn)
                    })
                });
            // Of an object that references name by DN: those naming the
            // old one no longer name it.
            let renamed = dn_changed && named_by_dn(self.rules, &w.source.ma);
            // Of a connector whose DN targets spell: what they hold names
            // the old DN, and is spelled again.
            let spelled = dn_changed && spelled_by_dn(self.rules, &w.source.ma);
            w.previous = accept(&mut w.source);
            w.source_dirty = true;
            self.dn_moved |= renamed;
            if let Some(mv) = w.source.connection.mv_id().filter(|id| *id != 0) {
                let notes = self.ref_notes.get_mut();
                if renamed {
                    notes.renamed.insert(mv);
                }
                if spelled {
                    notes.touched.insert(mv);
                }
            }
        }
        let joined_now = match w.source.connection {
            Connection::ExplicitDisconnector => return Ok(w),
            Connection::Disconnector => {
                let leaving = w
                    .source
                    .pending_export
                    .as_ref()
                    .is_some_and(|p| p.kind == ExportKind::Delete);
                if leaving {
                    // Its delete was staged (its person left) before the
                    // MA's filter matched it: the filter wins, an account
                    // held out of sync is not deleted either.
                    if self.filtered(txn, &w.source)? {
                        w.counters.filtered_disconnectors += 1;
                        drop_staged(&mut w.source);
                        w.source_dirty = true;
                    }
                    return Ok(w);
                }
                if self.filtered(txn, &w.source)? {
                    w.counters.filtered_disconnectors += 1;
                    return Ok(w);
                }
                if let Some(mv) = self.join(txn, &w.source)? {
                    w.counters.joins += 1;
                    w.source.connection = Connection::Connector { mv_id: mv.id };
                    self.made_before(txn, &mut w.source)?;
                    let mut work = MvWork::existing(mv);
                    self.drop_placeholder(txn, &mut work, &w.source)?;
                    w.mv = Some(work);
                } else if let Some(mv_type) = self.projection(txn, &w.source)? {
                    w.counters.projections += 1;
                    w.source.connection = Connection::Connector { mv_id: 0 };
                    w.mv = Some(MvWork {
                        obj: MvObject::new(mv_type),
                        is_new: true,
                        delete: false,
                        dirty: true,
                        others: Some(Vec::new()),
                    });
                } else {
                    return Ok(w);
                }
                w.source_dirty = true;
                true
            }
            Connection::Connector { mv_id } => {
                if self.filtered(txn, &w.source)? {
                    w.counters.filtered_disconnectors += 1;
                    // What another MA's sync staged on it before (an
                    // update, a delete) is not sent to an object the
                    // filter now holds out.
                    drop_staged(&mut w.source);
                    self.disconnect(txn, &mut w, false)?;
                    return Ok(w);
                }
                if self.made_before(txn, &mut w.source)? {
                    w.source_dirty = true;
                }
                match self.mv_load(txn, mv_id)? {
                    Some(mv) => w.mv = Some(MvWork::existing(mv)),
                    None => {
                        tracing::warn!(
                            cs = w.source.id,
                            mv_id,
                            "connector joined to a missing metaverse object"
                        );
                        w.source.connection = Connection::Disconnector;
                        w.source_dirty = true;
                        return Ok(w);
                    }
                }
                false
            }
        };
        let changed = self.inbound(txn, &mut w, joined_now)?;
        if !joined_now {
            if changed {
                w.counters.connectors_with_flow_updates += 1;
            } else {
                w.counters.connectors_without_flow_updates += 1;
            }
        }
        let to_others = changed || joined_now || self.full;
        let to_self = pending.is_some() || joined_now || self.full;
        if let Some(mv) = w.mv.as_mut() {
            match self.outbound(
                txn,
                mv,
                Some(&mut w.source),
                &mut w.inserts,
                &mut w.counters,
                (to_others, to_self),
            )? {
                Action::Keep => {}
                Action::Update => w.source_dirty = true,
                Action::Delete => w.source_delete = true,
            }
        }
        Ok(w)
    }

    /// Load the metaverse object's connectors other than `source`.
    pub(crate) fn load_others(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &mut MvWork,
        source: CsId,
    ) -> StoreResult<()> {
        if mv.others.is_none() {
            let others = if mv.is_new {
                Vec::new()
            } else {
                txn.cs_by_mv(mv.obj.id)?
                    .into_iter()
                    .filter(|x| x.id != source)
                    .map(|x| (x, Action::Keep))
                    .collect()
            };
            mv.others = Some(others);
        }
        Ok(())
    }

    /// Rule 1: disconnect the source from its metaverse object; the deletion
    /// rule decides whether that object goes.
    /// Disconnect the source from its metaverse object. `deleted`: the
    /// object was deleted in its system (and goes from the connector
    /// space with this work); when the metaverse object stays and is still
    /// in the scope of this MA's provisioning, the object is provisioned
    /// again, in this sync, as MIM's provisioning does for a metaverse
    /// object that lost a connector.
    fn disconnect(
        &mut self,
        txn: &mut dyn StoreTxn,
        w: &mut Work,
        deleted: bool,
    ) -> Result<(), Fail> {
        let Some(mv_id) = w.source.connection.mv_id() else {
            return Ok(());
        };
        w.source.connection = Connection::Disconnector;
        w.source_dirty = true;
        w.counters.disconnections += 1;
        let Some(obj) = self.mv_load(txn, mv_id)? else {
            self.note_left(mv_id, &w.source);
            return Ok(());
        };
        let mut mv = MvWork::existing(obj);
        self.load_others(txn, &mut mv, w.source.id)?;
        let rules = self.rules;
        let others = mv.others.as_deref().unwrap_or_default();
        // An MA no longer configured whose connector space goes (`cs
        // delete`): its objects were the source of those no configured
        // listed MA holds (it projected them); they go with it, as MIM's
        // rule deletes them, instead of staying blank in every target (a
        // black-box review).
        let retired = self.delete_all && !rules.ma_index.contains_key(&self.ma.name);
        let none_left = |set: &FxHashSet<usize>| {
            !others
                .iter()
                .any(|(x, _)| rules.ma_index.get(&x.ma).is_some_and(|i| set.contains(i)))
        };
        let delete = match rules.mv_types.get(&mv.obj.object_type).map(|t| &t.deletion) {
            Some(Deletion::LastAuthoritative(set)) => {
                (set.contains(&self.ma.index) || retired) && none_left(set)
            }
            // A retired MA is not known to have been listed (the file no
            // longer names it): it deletes only what no listed MA holds,
            // never a person a listed source still has.
            Some(Deletion::AnyConnectorFrom(set)) => {
                set.contains(&self.ma.index) || (retired && none_left(set))
            }
            Some(Deletion::LastConnector) => others.is_empty(),
            Some(Deletion::Never) | None => false,
            Some(Deletion::Script(script)) => {
                should_delete(txn, script, &mv.obj, &w.source, others)?
            }
        };
        if delete {
            self.note_left(mv_id, &w.source);
            w.counters.deleted += 1;
            mv.delete = true;
            for (x, action) in mv.others.iter_mut().flatten() {
                *action = self.deprovision(txn, x, Deprovision::MvDeleted, &mut w.counters)?;
            }
            w.left = Some(mv);
            return Ok(());
        }
        // Recall what this MA contributed; lower-ranked values come back.
        let me = self.ma.name.as_str();
        let mine: Vec<String> = mv
            .obj
            .attributes
            .iter()
            .filter(|(_, v)| v.contributor == me)
            .map(|(k, _)| k.clone())
            .collect();
        for attr in &mine {
            mv.obj.attributes.remove(attr);
            mv.dirty = true;
            if let Some(v) = self.fallback(txn, &mv, attr, true)? {
                mv.obj.attributes.insert(attr.clone(), v);
            }
        }
        if !mine.is_empty() || deleted {
            self.deleted_source = deleted.then_some(w.source.id);
            let done = self.outbound(
                txn,
                &mut mv,
                None,
                &mut w.inserts,
                &mut w.counters,
                // A connector space deleted whole makes nothing again on
                // its own MA (every object it made would be deleted in
                // turn, for ever).
                (!mine.is_empty(), deleted && !self.delete_all),
            );
            self.deleted_source = None;
            done?;
        }
        // Made again with the same name (deleted in its system, in scope):
        // the references that spell it stay as they are.
        let again = deleted
            && w.inserts
                .iter()
                .any(|x| x.ma == w.source.ma && x.anchor == w.source.anchor && x.dn == w.source.dn);
        // A connector space deleted to rebuild it (its MA still
        // configured): its objects come back under the same names, and the
        // references other targets spell by them stay as they are
        // meanwhile instead of being emptied and filled again (every
        // group of an application lost its members until the rebuild;
        // found by a black-box review).
        let rebuilding =
            self.delete_all && !mv.delete && self.rules.ma_index.contains_key(&self.ma.name);
        if !again && !rebuilding {
            self.note_left(mv_id, &w.source);
        }
        w.left = Some(mv);
        Ok(())
    }

    /// Note that connector `source` left metaverse object `mv_id`: the
    /// references that targets spell by its name go (value by value, by
    /// the name it had).
    fn note_left(&mut self, mv_id: autosync_model::MvId, source: &CsObject) {
        if !self.rules.has_refs {
            return;
        }
        let notes = self.ref_notes.get_mut();
        notes.touched.insert(mv_id);
        notes.names.push((
            mv_id,
            autosync_store::RefName {
                ma: source.ma.clone(),
                anchor: source.anchor.clone(),
                dn: source.dn.clone(),
            },
        ));
    }

    fn filtered(&self, txn: &mut dyn StoreTxn, cs: &CsObject) -> Result<bool, Fail> {
        Ok(self.ma.filter_matching(txn, cs)?.is_some())
    }

    /// Rule 3: inbound flows under precedence; returns whether a metaverse
    /// value changed.
    fn inbound(
        &mut self,
        txn: &mut dyn StoreTxn,
        w: &mut Work,
        joined_now: bool,
    ) -> Result<bool, Fail> {
        let ma = self.ma;
        let Some(mv) = w.mv.as_mut() else {
            return Ok(false);
        };
        if mv.is_new
            && let Some(by_attr) = &ma.inbound_by_attr
        {
            return fill_new(txn, ma, mv, &w.source, by_attr);
        }
        let mut changed = false;
        if self.full && !mv.is_new {
            changed |= self.recall_stale(txn, mv, &w.source)?;
        }
        let view = CsView(&w.source);
        for f in &ma.inbound {
            if !f.applies(&w.source.object_type, &mv.obj.object_type) {
                continue;
            }
            let what = || format!("import flow to `{}`", f.mv_attr);
            let current = MvView(&mv.obj.attributes);
            let v = match &f.reference {
                Some(r) => {
                    let waits = w.in_waits.get_or_insert_with(Vec::new);
                    crate::refs::resolve_in(
                        txn,
                        r,
                        &w.source.hologram,
                        Some(waits),
                        self.joined.as_ref(),
                    )?
                    .map(Cow::Owned)
                }
                None => eval_source(txn, &f.source, &view, Some(&current), what)?,
            };
            let rank = self.rules.inbound_rank(f, &mv.obj.object_type, ma.index);
            // A step's end working references out again applies them
            // whatever the precedence (their text did not change; what
            // it names did).
            let recheck = self.resolving && f.reference.is_some();
            if rank.is_none()
                && !joined_now
                && !self.full
                && !recheck
                && mv.obj.attributes.contains_key(&f.mv_attr)
            {
                // Equal precedence: a delta sync writes only a value that
                // changed, so the last writer keeps winning; a full sync
                // re-applies every flow (as MIM's does).
                if let Some(prev) = &w.previous {
                    if let Some(r) = &f.reference {
                        // The same anchors name the same objects.
                        if prev.get(&r.cs_attr) == w.source.hologram.get(&r.cs_attr) {
                            continue;
                        }
                    } else {
                        let prev = AttrView(prev);
                        let current = MvView(&mv.obj.attributes);
                        let before = eval_source(txn, &f.source, &prev, Some(&current), what)?;
                        if same_in(before.as_deref(), v.as_deref(), f.order) {
                            continue;
                        }
                    }
                } else {
                    // Without a previous hologram, the value is compared
                    // with itself: nothing changed.
                    continue;
                }
            }
            changed |= self.set_value(txn, mv, w.source.id, &f.mv_attr, v, rank)?;
        }
        Ok(changed)
    }
}

impl MaRules {
    /// The number (from 1, as the configuration lists them) of the first of
    /// this MA's connector filters that matches `cs` as its hologram holds
    /// it, or `None`. A matched object is a filtered disconnector: never
    /// joined nor projected by this MA's sync, and never taken, joined or
    /// adopted by provisioning to this MA, nor by an import as the object
    /// of an add provisioning staged. A filter that cannot be evaluated is
    /// the object's failure (`expression-failed`, naming the filter).
    pub(crate) fn filter_matching(
        &self,
        txn: &mut dyn StoreTxn,
        cs: &CsObject,
    ) -> Result<Option<usize>, Fail> {
        for (i, f) in self.filters.iter().enumerate() {
            if f.applies(&cs.object_type)
                && eval_condition(txn, &f.condition, &CsView(cs), || {
                    format!("filter #{} of `{}`", i + 1, self.name)
                })?
            {
                return Ok(Some(i + 1));
            }
        }
        Ok(None)
    }
}

impl MvWork {
    pub(crate) fn existing(obj: MvObject) -> Self {
        MvWork {
            obj,
            is_new: false,
            delete: false,
            dirty: false,
            others: None,
        }
    }
}

/// Drops the export staged on `cs`, an object its MA's filter now holds
/// out (a filtered disconnector is neither written to nor deleted).
fn drop_staged(cs: &mut CsObject) {
    if let Some(p) = cs.pending_export.take() {
        tracing::info!(ma = %cs.ma, anchor = %cs.anchor, kind = ?p.kind, "pending export dropped: a filter of the MA matches the object");
    }
}
