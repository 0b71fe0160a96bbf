//! The references to a metaverse object a sync deleted, dropped from a
//! large group at a cost proportional to the change: a person who leaves
//! is one value removed from each group that holds them (500,000 members
//! or not), not every group read, resolved and compared whole.
//!
//! When a sync deletes a metaverse object it notes how its connectors
//! were named (`GoneKey`: MA, anchor, DNs). At the step's end
//! (`refpass`), a referrer whose references to such objects are all kept
//! in value rows takes the value-level way here: each value is removed
//! from the metaverse rows; the value of the connector that contributes
//! the attribute (and of any other connector whose flow reads it) that
//! named the object becomes a wait for an object with that name (the
//! same as a sync of that connector would note); each target connector
//! whose export flow copies the attribute stages the removal of the
//! object's name there; the outbound waits for the object go.
//!
//! A connector that left an object that stays goes the same way: see
//! `left`.
//!
//! It applies only when the ordinary way would give the same result:
//! every referring attribute is kept in rows and would not empty; the
//! contributing connector holds the name in rows and it names nothing
//! now; every flow reading the attribute copies it as a reference into
//! rows of a connector with nothing unconfirmed of it. Anything else
//! returns `false`, and the referrer goes the ordinary way.

use super::{Fail, Syncer};
use crate::rows::{is_placeholder, stage_export_values};
use autosync_model::{
    Attributes, Connection, CsObject, ExportKind, MvId, MvObject, RefBy, SyncCounters, Value,
    ValueDelta,
};
use autosync_store::{RefWait, StoreTxn};

/// At most this many deleted objects' names are kept per step (a step
/// that deletes more takes the ordinary way for the rest).
pub(super) const GONE_KEYS_MAX: usize = 100_000;

/// How one connector of a deleted metaverse object was named.
#[derive(Clone, Debug)]
pub(crate) struct GoneKey {
    pub ma: String,
    pub anchor: String,
    /// Its DN, and the one a pending rename was to give it.
    pub dns: Vec<String>,
}

impl GoneKey {
    pub(super) fn of(x: &CsObject) -> GoneKey {
        let mut dns = vec![x.dn.clone()];
        if let Some(new) = x.pending_export.as_ref().and_then(|p| p.new_dn.clone()) {
            dns.push(new);
        }
        GoneKey {
            ma: x.ma.clone(),
            anchor: x.anchor.clone(),
            dns,
        }
    }

    /// The values a reference by `by` on `ma` held for this connector.
    fn spellings(&self, ma: &str, by: RefBy) -> Vec<String> {
        if self.ma != ma {
            return Vec::new();
        }
        match by {
            RefBy::Anchor => vec![self.anchor.clone()],
            RefBy::Dn => self.dns.iter().filter(|d| !d.is_empty()).cloned().collect(),
        }
    }
}

/// The names of deleted object `t` on `ma`, spelled `by`.
fn names_of(gone: &[(MvId, Vec<GoneKey>)], t: MvId, ma: &str, by: RefBy) -> Vec<String> {
    gone.iter()
        .filter(|(id, _)| *id == t)
        .flat_map(|(_, keys)| keys.iter().flat_map(|k| k.spellings(ma, by)))
        .collect()
}

/// One attribute of the referrer and the deleted objects it names.
pub(super) struct Dropped {
    pub attr: String,
    pub gone: Vec<MvId>,
}

impl Syncer<'_> {
    /// Remove the references of metaverse object `referrer` to the deleted
    /// objects `gone` (each with its connectors' names) value by value.
    /// `false` when the ordinary way must take the referrer (nothing was
    /// written then).
    pub(super) fn drop_gone(
        &mut self,
        txn: &mut dyn StoreTxn,
        referrer: MvId,
        gone: &[(MvId, Vec<GoneKey>)],
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let Some(mv) = txn.mv_get_light(referrer)? else {
            return Ok(false);
        };
        let ids: Vec<MvId> = gone.iter().map(|(t, _)| *t).collect();
        // A value that would empty goes the ordinary way (precedence
        // decides then).
        let Some(drops) = referring(txn, rules, &mv, &ids, true)? else {
            return Ok(false);
        };
        let mut connectors = txn.cs_by_mvs_light(&[referrer])?;
        connectors.retain(|x| x.connection == (Connection::Connector { mv_id: referrer }));
        // Inbound: the names the connectors held become waits.
        let mut waits: Vec<(usize, Vec<RefWait>)> = Vec::new();
        for d in &drops {
            let contributor = mv
                .attributes
                .get(&d.attr)
                .map(|v| v.contributor.as_str())
                .unwrap_or_default();
            let mut contributed = false;
            for (i, x) in connectors.iter().enumerate() {
                let Some(ma) = rules.ma_index.get(&x.ma).and_then(|&i| rules.mas.get(i)) else {
                    continue;
                };
                for f in &ma.inbound {
                    if f.mv_attr != d.attr || !f.applies(&x.object_type, &mv.object_type) {
                        continue;
                    }
                    let Some(r) = &f.reference else {
                        return Ok(false);
                    };
                    // A change of the group not synchronised yet: the
                    // ordinary way synchronises it now (as it does after a
                    // crash, when the names are no longer known).
                    if x.pending_import.is_some() {
                        return Ok(false);
                    }
                    if !rules
                        .rows
                        .cs_of(&x.ma)
                        .is_some_and(|s| s.contains(&r.cs_attr))
                    {
                        return Ok(false);
                    }
                    for t in &d.gone {
                        let found = self.named_wait(txn, x, r, &names_of(gone, *t, &r.ma, r.by))?;
                        match found {
                            Named::Waits(w) => {
                                contributed |= x.ma == contributor;
                                match waits.iter_mut().find(|(j, _)| *j == i) {
                                    Some((_, all)) => all.extend(w),
                                    None => waits.push((i, w)),
                                }
                            }
                            Named::Absent => {}
                            Named::Other => return Ok(false),
                        }
                    }
                }
            }
            if !contributed {
                return Ok(false);
            }
        }
        // Outbound: each target connector stages the removal of the names.
        let mut staged: Vec<CsObject> = Vec::new();
        let mut counters = SyncCounters::default();
        if !self.stage_gone(
            txn,
            &mv,
            &drops,
            gone,
            &mut connectors,
            &mut staged,
            &mut counters,
        )? {
            return Ok(false);
        }
        // Write: the waits in and out, the metaverse rows, the targets.
        for (i, add) in waits {
            let Some(x) = connectors.get(i) else {
                continue;
            };
            let mut all = txn.ref_waits_of(x.id)?;
            for w in add {
                if !all.contains(&w) {
                    all.push(w);
                }
            }
            if let Some((ids, _)) = &mut self.waiting {
                ids.insert(x.id);
            }
            txn.ref_waits_set(x.id, &all)?;
        }
        if let Some(t) = rules.mv_types.get(&mv.object_type) {
            for &m in &t.targets {
                let Some(target) = rules.mas.get(m) else {
                    continue;
                };
                let mut out = txn.ref_out_waits_of(referrer, &target.name)?;
                let before = out.len();
                out.retain(|(id, _)| !gone.iter().any(|(t, _)| t == id));
                if out.len() != before {
                    txn.ref_out_waits_set(referrer, &target.name, &out)?;
                }
            }
        }
        for d in &drops {
            let delta = ValueDelta {
                add: Vec::new(),
                remove: d.gone.iter().map(|t| Value::Reference(*t)).collect(),
            };
            txn.mv_values_change(referrer, &d.attr, &delta)?;
        }
        self.mv_cache.remove(&referrer);
        for x in staged {
            txn.cs_update_owned(x)?;
        }
        counters.connectors_with_flow_updates += 1;
        super::add_counters(&mut self.counters, &counters);
        Ok(true)
    }

    /// Whether connector `x` holds one of `names` in `r`'s attribute, and
    /// what it waits for then (`Other`: a name that names an object now).
    fn named_wait(
        &self,
        txn: &mut dyn StoreTxn,
        x: &CsObject,
        r: &crate::refs::InRef,
        names: &[String],
    ) -> Result<Named, Fail> {
        let mut values: Vec<Value> = names.iter().map(|n| Value::String(n.clone())).collect();
        values.extend(
            names
                .iter()
                .filter_map(|n| n.parse::<i64>().ok())
                .map(Value::Integer),
        );
        if values.is_empty() {
            return Ok(Named::Absent);
        }
        let there = txn.cs_values_present(x.id, &r.cs_attr, &values)?;
        let held: Vec<Value> = values
            .into_iter()
            .zip(there)
            .filter(|(_, t)| *t)
            .map(|(v, _)| v)
            .collect();
        if held.is_empty() {
            return Ok(Named::Absent);
        }
        let mut one = Attributes::new();
        one.insert(r.cs_attr.clone(), Value::Multi(held));
        let mut waits = Vec::new();
        let resolved =
            crate::refs::resolve_in_any(txn, r, &one, Some(&mut waits), self.joined.as_ref())?;
        if resolved.is_some_and(|v| !v.is_empty()) || waits.is_empty() {
            return Ok(Named::Other);
        }
        Ok(Named::Waits(waits))
    }

    /// Stage on every target connector of `mv` whose export flows copy a
    /// dropped attribute the removal of the deleted objects' names there.
    /// `false` when one cannot take it as values (nothing staged then).
    #[allow(clippy::too_many_arguments)]
    fn stage_gone(
        &self,
        txn: &mut dyn StoreTxn,
        mv: &MvObject,
        drops: &[Dropped],
        gone: &[(MvId, Vec<GoneKey>)],
        connectors: &mut [CsObject],
        staged: &mut Vec<CsObject>,
        counters: &mut SyncCounters,
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let Some(type_rules) = rules.mv_types.get(&mv.object_type) else {
            return Ok(true);
        };
        for &m in &type_rules.targets {
            let Some(target) = rules.mas.get(m) else {
                continue;
            };
            let flows: Vec<_> = target
                .outbound
                .iter()
                .filter(|f| {
                    f.source
                        .reads()
                        .is_none_or(|reads| drops.iter().any(|d| reads.contains(&d.attr)))
                })
                .collect();
            if flows.is_empty() {
                continue;
            }
            let target_rows = rules.rows.cs_of(&target.name);
            for x in connectors.iter_mut() {
                if x.ma != target.name {
                    continue;
                }
                if x.pending_export
                    .as_ref()
                    .is_some_and(|p| p.kind == ExportKind::Delete)
                {
                    continue;
                }
                let mut changed = false;
                for f in &flows {
                    if f.initial_only || !f.applies(&x.object_type, &mv.object_type) {
                        continue;
                    }
                    let Some(r) = &f.reference else {
                        return Ok(false);
                    };
                    let Some(d) = drops.iter().find(|d| d.attr == r.mv_attr) else {
                        continue;
                    };
                    if !target_rows.is_some_and(|rows| rows.contains(&f.cs_attr)) {
                        return Ok(false);
                    }
                    let via = r.ma.as_deref().unwrap_or(&target.name);
                    let remove: Vec<Value> = d
                        .gone
                        .iter()
                        .flat_map(|t| names_of(gone, *t, via, r.by))
                        .map(Value::String)
                        .collect();
                    if !removable(txn, x, &f.cs_attr, r.by, &remove)? {
                        return Ok(false);
                    }
                    let delta = ValueDelta {
                        add: Vec::new(),
                        remove,
                    };
                    match stage_export_values(txn, x, &f.cs_attr, delta)? {
                        Ok(c) => changed |= c,
                        Err(()) => return Ok(false),
                    }
                }
                super::outbound::count_outbound(counters, &target.name, |c| {
                    if changed {
                        c.export_attribute_flow += 1;
                    } else {
                        c.export_no_flow += 1;
                    }
                });
                if changed {
                    staged.push(x.clone());
                }
            }
        }
        Ok(true)
    }
}

/// The attributes of `mv` that name some of `ids`, each with those it
/// names; `None` when one keeps them in its body (not in rows), or, with
/// `not_emptied`, when one would be left empty: the ordinary way then.
pub(super) fn referring(
    txn: &mut dyn StoreTxn,
    rules: &crate::rules::Rules,
    mv: &MvObject,
    ids: &[MvId],
    not_emptied: bool,
) -> autosync_store::StoreResult<Option<Vec<Dropped>>> {
    let refs: Vec<Value> = ids.iter().map(|t| Value::Reference(*t)).collect();
    let mut drops: Vec<Dropped> = Vec::new();
    for (mv_type, attr) in &rules.mv_refs {
        if *mv_type != mv.object_type {
            continue;
        }
        let Some(v) = mv.attributes.get(attr) else {
            continue;
        };
        if !is_placeholder(&v.value) || !rules.rows.mv_has(&mv.object_type, attr) {
            if crate::refs::referred(&v.value)
                .iter()
                .any(|id| ids.contains(id))
            {
                return Ok(None);
            }
            continue;
        }
        let there = txn.mv_values_present(mv.id, attr, &refs)?;
        let named: Vec<MvId> = ids
            .iter()
            .zip(there)
            .filter(|(_, t)| *t)
            .map(|(id, _)| *id)
            .collect();
        if named.is_empty() {
            continue;
        }
        let n = named.len() as u64;
        if not_emptied && txn.mv_values_count_upto(mv.id, attr, n + 1)? <= n {
            return Ok(None);
        }
        drops.push(Dropped {
            attr: attr.clone(),
            gone: named,
        });
    }
    Ok((!drops.is_empty()).then_some(drops))
}

/// Whether removing `names` from attribute `attr` of target connector `x`
/// value by value gives what the ordinary way (the whole new list against
/// what the system holds) would: `x`'s hologram is current (no pending
/// import), nothing of `attr` is pending already (a name added, as a
/// rename not sent yet spells it, would stay), and a DN is held exactly as
/// named (a system may hold it in another case, or under a name a rename
/// since gave it: the ordinary way compares as the system does).
pub(super) fn removable(
    txn: &mut dyn StoreTxn,
    x: &CsObject,
    attr: &str,
    by: RefBy,
    names: &[Value],
) -> autosync_store::StoreResult<bool> {
    if x.pending_import.is_some() {
        return Ok(false);
    }
    if x.pending_export
        .as_ref()
        .is_some_and(|p| p.changes.contains_key(attr) || p.values.contains_key(attr))
    {
        return Ok(false);
    }
    if by == RefBy::Dn && !names.is_empty() {
        return Ok(txn.cs_values_present(x.id, attr, names)?.iter().all(|h| *h));
    }
    Ok(true)
}

/// What a connector held of a deleted object's names.
enum Named {
    /// None of them.
    Absent,
    /// One, which names nothing now: what it waits for.
    Waits(Vec<RefWait>),
    /// One that names an object now (the ordinary way decides).
    Other,
}
