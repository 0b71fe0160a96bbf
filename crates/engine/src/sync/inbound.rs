//! Rules 1 to 3 of synchronisation for one CS object: a pending delete
//! disconnects (and the deletion rule may delete the metaverse object and
//! deprovision its other connectors); a disconnector is filtered, joined or
//! projected; a connector's inbound flows update its metaverse object under
//! the precedence rules.

use super::outbound::Deprovision;
use super::{Action, Fail, MvWork, Syncer, Work, expression_failed};
use crate::compute::{AttrView, CsView};
use crate::rules::{Deletion, MaRules};
use crate::values::{same, same_in};
use autosync_model::{
    Attributes, Connection, CsId, CsObject, ExportKind, ImportKind, MvObject, MvValue, Value,
};
use autosync_store::{StoreResult, StoreTxn};
use std::borrow::Cow;
use std::collections::btree_map::Entry;

/// Move the pending import into the hologram; returns the old hologram.
fn accept(cs: &mut CsObject) -> Option<Attributes> {
    let p = cs.pending_import.take()?;
    if let Some(dn) = p.dn {
        cs.dn = dn;
    }
    if let Some(t) = p.object_type {
        cs.object_type = t;
    }
    Some(std::mem::replace(&mut cs.hologram, p.attributes))
}

/// Whether a CS value matches an MV value (any value of a multi-valued one).
fn join_matches(cs: Option<&Value>, mv: Option<&Value>) -> bool {
    match mv {
        Some(Value::Multi(vs)) if !matches!(cs, Some(Value::Multi(_))) => {
            vs.iter().any(|v| same(cs, Some(v)))
        }
        _ => cs.is_some() && same(cs, mv),
    }
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
            counters: Default::default(),
        };
        let pending = w.source.pending_import.as_ref().map(|p| p.kind);
        match pending {
            Some(ImportKind::Delete) => {
                self.disconnect(txn, &mut w)?;
                w.source_delete = true;
                return Ok(w);
            }
            Some(ImportKind::DeleteAdd) => {
                self.disconnect(txn, &mut w)?;
                w.source.hologram.clear();
            }
            _ => {}
        }
        if pending.is_some() {
            w.previous = accept(&mut w.source);
            w.source_dirty = true;
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
                    return Ok(w);
                }
                if self.filtered(&w.source)? {
                    w.counters.filtered_disconnectors += 1;
                    return Ok(w);
                }
                if let Some(mv) = self.join(txn, &w.source)? {
                    w.counters.joins += 1;
                    w.source.connection = Connection::Connector { mv_id: mv.id };
                    w.mv = Some(MvWork::existing(mv));
                } else if let Some(mv_type) = self.projection(&w.source)? {
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
                if self.filtered(&w.source)? {
                    w.counters.filtered_disconnectors += 1;
                    self.disconnect(txn, &mut w)?;
                    return Ok(w);
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
    fn disconnect(&mut self, txn: &mut dyn StoreTxn, w: &mut Work) -> Result<(), Fail> {
        let Some(mv_id) = w.source.connection.mv_id() else {
            return Ok(());
        };
        w.source.connection = Connection::Disconnector;
        w.source_dirty = true;
        w.counters.disconnections += 1;
        let Some(obj) = self.mv_load(txn, mv_id)? else {
            return Ok(());
        };
        let mut mv = MvWork::existing(obj);
        self.load_others(txn, &mut mv, w.source.id)?;
        let rules = self.rules;
        let others = mv.others.as_deref().unwrap_or_default();
        let delete = match rules.mv_types.get(&mv.obj.object_type).map(|t| &t.deletion) {
            Some(Deletion::LastAuthoritative(set)) => {
                set.contains(&self.ma.index)
                    && !others
                        .iter()
                        .any(|(x, _)| rules.ma_index.get(&x.ma).is_some_and(|i| set.contains(i)))
            }
            Some(Deletion::LastConnector) => others.is_empty(),
            Some(Deletion::Never) | None => false,
        };
        if delete {
            w.counters.deleted += 1;
            mv.delete = true;
            for (x, action) in mv.others.iter_mut().flatten() {
                *action = self.deprovision(x, Deprovision::MvDeleted, &mut w.counters);
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
            if let Some(v) = self.fallback(&mv, attr)? {
                mv.obj.attributes.insert(attr.clone(), v);
            }
        }
        if !mine.is_empty() {
            self.outbound(
                txn,
                &mut mv,
                None,
                &mut w.inserts,
                &mut w.counters,
                (true, false),
            )?;
        }
        w.left = Some(mv);
        Ok(())
    }

    /// The value the highest-ranked other connector gives `attr`, computed
    /// from its hologram (ranked precedence only).
    fn fallback(&self, mv: &MvWork, attr: &str) -> Result<Option<MvValue>, Fail> {
        let rules = self.rules;
        let mv_type = mv.obj.object_type.as_str();
        let mut best: Option<(usize, MvValue)> = None;
        for (x, action) in mv.others.iter().flatten() {
            if *action == Action::Delete || x.connection.mv_id() != Some(mv.obj.id) {
                continue;
            }
            let Some(&mi) = rules.ma_index.get(&x.ma) else {
                continue;
            };
            let Some(rank) = rules.rank(mv_type, attr, mi) else {
                return Ok(None);
            };
            if best.as_ref().is_some_and(|(r, _)| *r <= rank) {
                continue;
            }
            let flows = rules.mas[mi].inbound.iter().filter(|f| f.mv_attr == attr);
            for f in flows.filter(|f| f.applies(&x.object_type, mv_type)) {
                let v = f.source.eval(&AttrView(&x.hologram)).map_err(|e| {
                    expression_failed(&format!("import flow of `{}` to `{attr}`", x.ma), e)
                })?;
                if let Some(value) = v {
                    best = Some((
                        rank,
                        MvValue {
                            value,
                            contributor: x.ma.clone(),
                        },
                    ));
                    break;
                }
            }
        }
        Ok(best.map(|(_, v)| v))
    }

    fn filtered(&self, cs: &CsObject) -> Result<bool, Fail> {
        for (i, f) in self.ma.filters.iter().enumerate() {
            if f.applies(&cs.object_type)
                && f.condition
                    .eval_bool(&CsView(cs))
                    .map_err(|e| expression_failed(&format!("filter #{}", i + 1), e))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Rule 2: the join rules in order; exactly one candidate joins.
    fn join(&mut self, txn: &mut dyn StoreTxn, cs: &CsObject) -> Result<Option<MvObject>, Fail> {
        let ma = self.ma;
        let view = CsView(cs);
        for (i, rule) in ma.joins.iter().enumerate() {
            if !rule.applies(&cs.object_type) {
                continue;
            }
            let what = || format!("join rule #{}", i + 1);
            let mut values = Vec::with_capacity(rule.conditions.len());
            for c in &rule.conditions {
                values.push(
                    c.cs.eval_ref(&view)
                        .map_err(|e| expression_failed(&what(), e))?,
                );
            }
            let Some(Some(first)) = values.first() else {
                continue;
            };
            if values.iter().any(Option::is_none) {
                continue;
            }
            let ids = if self.join_surely_absent(i, cs.id, first) {
                Vec::new()
            } else {
                txn.mv_find(&rule.mv_type, &rule.conditions[0].mv, first)?
            };
            let mut found = Vec::new();
            for id in ids {
                let Some(mv) = self.mv_load(txn, id)? else {
                    continue;
                };
                let rest = rule.conditions.iter().zip(&values).skip(1);
                if !rest
                    .into_iter()
                    .all(|(c, v)| join_matches(v.as_deref(), mv.get(&c.mv)))
                {
                    continue;
                }
                let taken = txn
                    .cs_by_mv(id)?
                    .iter()
                    .any(|x| x.ma == ma.name && x.id != cs.id);
                if !taken {
                    found.push(mv);
                }
            }
            match found.len() {
                0 => continue,
                1 => return Ok(found.pop()),
                n => {
                    let ids: Vec<String> = found.iter().map(|m| m.id.to_string()).collect();
                    return Err(Fail::Object {
                        error_type: "ambiguous-join",
                        detail: format!(
                            "{} matches {n} metaverse objects of type `{}` (ids {}) on `{}` = `{first}`",
                            what(),
                            rule.mv_type,
                            ids.join(", "),
                            rule.conditions[0].mv
                        ),
                    });
                }
            }
        }
        Ok(None)
    }

    /// Rule 2: the first projection rule that applies, if any (its
    /// metaverse type).
    fn projection(&self, cs: &CsObject) -> Result<Option<&'a str>, Fail> {
        let ma: &'a MaRules = self.ma;
        for (i, p) in ma.projections.iter().enumerate() {
            if !p.applies(&cs.object_type) {
                continue;
            }
            let met = match &p.condition {
                None => true,
                Some(c) => c
                    .eval_bool(&CsView(cs))
                    .map_err(|e| expression_failed(&format!("projection rule #{}", i + 1), e))?,
            };
            if met {
                return Ok(Some(&p.mv_type));
            }
        }
        Ok(None)
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
        let mut changed = false;
        let view = CsView(&w.source);
        for f in &ma.inbound {
            if !f.applies(&w.source.object_type, &mv.obj.object_type) {
                continue;
            }
            let what = || format!("import flow to `{}`", f.mv_attr);
            let v = f
                .source
                .eval_ref(&view)
                .map_err(|e| expression_failed(&what(), e))?;
            let rank = self.rules.inbound_rank(f, &mv.obj.object_type, ma.index);
            if rank.is_none() && !joined_now && mv.obj.attributes.contains_key(&f.mv_attr) {
                // Equal precedence: only a value that changed is written, so
                // that the last writer keeps winning over full syncs.
                if let Some(prev) = &w.previous {
                    let prev = AttrView(prev);
                    let before = f
                        .source
                        .eval_ref(&prev)
                        .map_err(|e| expression_failed(&what(), e))?;
                    if same_in(before.as_deref(), v.as_deref(), f.order) {
                        continue;
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

    /// Set `attr` of the metaverse object to `v` (the source's value)
    /// under precedence; the value is copied only when it is kept.
    fn set_value(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &mut MvWork,
        source: CsId,
        attr: &str,
        mut v: Option<Cow<'_, Value>>,
        rank: Option<usize>,
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let me = self.ma.name.as_str();
        if mv.is_new
            && let Some(value) = v
        {
            // An object projected just now usually lacks the attribute:
            // one search, with the name copied up front.
            match mv.obj.attributes.entry(attr.to_owned()) {
                Entry::Vacant(e) => {
                    e.insert(MvValue {
                        value: value.into_owned(),
                        contributor: me.to_owned(),
                    });
                    mv.dirty = true;
                    return Ok(true);
                }
                Entry::Occupied(_) => v = Some(value),
            }
        }
        let current = mv.obj.attributes.get_mut(attr);
        match (v, current) {
            (Some(value), None) => {
                mv.obj.attributes.insert(
                    attr.to_owned(),
                    MvValue {
                        value: value.into_owned(),
                        contributor: me.to_owned(),
                    },
                );
                mv.dirty = true;
                Ok(true)
            }
            (Some(value), Some(cur)) => {
                let order = rules.mv_order(&mv.obj.object_type, attr);
                let value_changed = !same_in(Some(&cur.value), Some(&value), order);
                let mine = cur.contributor == me;
                let wins = mine
                    || match rank {
                        None => value_changed,
                        Some(r) => {
                            let theirs = rules
                                .ma_index
                                .get(&cur.contributor)
                                .and_then(|&i| rules.rank(&mv.obj.object_type, attr, i))
                                .unwrap_or(usize::MAX);
                            r <= theirs
                        }
                    };
                if !wins || (!value_changed && mine) {
                    return Ok(false);
                }
                // Replace in place: the name (and this MA's name, when it
                // was already the contributor) are kept, not copied again.
                cur.value = value.into_owned();
                if !mine {
                    me.clone_into(&mut cur.contributor);
                }
                mv.dirty = true;
                Ok(value_changed)
            }
            (None, Some(cur)) if cur.contributor == me => {
                mv.obj.attributes.remove(attr);
                mv.dirty = true;
                self.load_others(txn, mv, source)?;
                if let Some(fallback) = self.fallback(mv, attr)? {
                    mv.obj.attributes.insert(attr.to_owned(), fallback);
                }
                Ok(true)
            }
            (None, _) => Ok(false),
        }
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
