//! A delta sync of a value-level change of a large multi-valued reference
//! (a member added to or removed from a group of 500,000), at a cost
//! proportional to the change: the values added and removed are resolved
//! alone, the metaverse object's rows and each target connector's pending
//! export change by those values only, and no object is read whole (see
//! `crate::rows`).
//!
//! It applies only when the ordinary way would give the same result: the
//! object is a connector whose pending import changes nothing but value
//! rows, every flow reading them copies a reference, this MA contributes
//! the metaverse value (so precedence keeps it), the metaverse value
//! neither appears nor empties, every added value can be spelled on every
//! target now, and no target connector holds the attribute otherwise than
//! in rows with nothing unconfirmed of it. Anything else returns the
//! object for the ordinary way, read whole.

use super::{Fail, Syncer};
use crate::rows::{is_placeholder, only_rows_changed, stage_export_values};
use autosync_model::{
    Connection, CsObject, ErrorStage, ExportKind, ImportKind, MvId, MvValue, SyncCounters, Value,
    ValueDelta,
};
use autosync_store::{RefWait, StoreTxn};

/// What became of an object offered to the fast path.
pub(super) enum Taken {
    /// Synchronised.
    Done,
    /// The ordinary way must take it (read whole).
    Whole,
}

/// A metaverse change: attribute and values.
struct MvChange {
    attr: String,
    delta: ValueDelta,
}

impl Syncer<'_> {
    pub(super) fn sync_rows(
        &mut self,
        txn: &mut dyn StoreTxn,
        mut cs: CsObject,
    ) -> Result<Taken, Fail> {
        let ma = self.ma;
        let Some(rows) = self.rules.rows.cs_of(&ma.name) else {
            return Ok(Taken::Whole);
        };
        let eligible = !self.full
            && !self.delete_all
            && !self.resolving
            && ma.filters.is_empty()
            && cs.pending_import.as_ref().is_some_and(|p| {
                p.kind == ImportKind::Update
                    && !p.values.is_empty()
                    && p.dn.is_none()
                    && p.object_type.is_none()
                    && p.values.keys().all(|a| rows.contains(a))
                    && only_rows_changed(&cs.hologram, &p.attributes)
                    // What this MA's export flows write (a target's own
                    // copy, changed in the system): the ordinary way
                    // compares it with what it should hold.
                    && !ma.outbound.iter().any(|f| p.values.contains_key(&f.cs_attr))
            })
            && cs.pending_export.is_none();
        let Connection::Connector { mv_id } = cs.connection else {
            return Ok(Taken::Whole);
        };
        if !eligible || mv_id == 0 {
            return Ok(Taken::Whole);
        }
        let Some(mv) = txn.mv_get_light(mv_id)? else {
            return Ok(Taken::Whole);
        };
        let Some(values) = cs.pending_import.as_ref().map(|p| p.values.clone()) else {
            return Ok(Taken::Whole);
        };
        // Every inbound flow reading a changed attribute copies it as a
        // reference into a metaverse value this MA contributes, in rows.
        let mut changes: Vec<MvChange> = Vec::new();
        let mut waits_add: Vec<RefWait> = Vec::new();
        let mut waits_drop: Vec<(String, String)> = Vec::new();
        for (attr, d) in &values {
            for f in &ma.inbound {
                if !f.applies(&cs.object_type, &mv.object_type) {
                    continue;
                }
                let Some(r) = f.reference.as_ref().filter(|r| r.cs_attr == *attr) else {
                    if f.source.reads().is_none_or(|reads| reads.contains(attr)) {
                        return Ok(Taken::Whole);
                    }
                    continue;
                };
                let ours = match mv.attributes.get(&f.mv_attr) {
                    Some(MvValue { value, contributor }) => {
                        is_placeholder(value) && *contributor == ma.name
                    }
                    None => false,
                };
                if !ours || !self.rules.rows.mv_has(&mv.object_type, &f.mv_attr) {
                    return Ok(Taken::Whole);
                }
                let one = |vs: &[Value]| {
                    let mut a = autosync_model::Attributes::new();
                    a.insert(attr.clone(), Value::Multi(vs.to_vec()));
                    a
                };
                let mut waits = Vec::new();
                let joined = self.joined.as_ref();
                let added =
                    crate::refs::resolve_in(txn, r, &one(&d.add), Some(&mut waits), joined)?;
                // A value removed takes away what it had resolved to (of
                // what its name gives, what the metaverse rows hold: see
                // `net_of_mv` below), and its wait, if it waited; it is
                // not resolved again (a DN that a case double since took
                // too would fail the group on a value it no longer has).
                let mut unresolved = Vec::new();
                let removed =
                    crate::refs::resolved_before(txn, r, &d.remove, &mut unresolved, joined)?;
                waits_add.extend(waits);
                waits_drop.extend(unresolved.into_iter().map(|w| (w.attr, w.key)));
                // A value removed and one added that name the same object
                // (its DN spelt in another case) are no change to it.
                let delta = cancel(ValueDelta {
                    add: added.map(|v| refs_of(&v)).unwrap_or_default(),
                    remove: removed.into_iter().map(Value::Reference).collect(),
                });
                changes.push(MvChange {
                    attr: f.mv_attr.clone(),
                    delta,
                });
            }
        }
        // Only what differs from the metaverse rows; a value that would
        // appear or empty goes the ordinary way (precedence decides then).
        for c in &mut changes {
            c.delta = net_of_mv(txn, mv_id, &c.attr, std::mem::take(&mut c.delta))?;
            if !c.delta.remove.is_empty()
                && c.delta.add.is_empty()
                && txn.mv_values_count_upto(mv_id, &c.attr, c.delta.remove.len() as u64 + 1)?
                    <= c.delta.remove.len() as u64
            {
                return Ok(Taken::Whole);
            }
        }
        changes.retain(|c| !c.delta.is_empty());
        // The targets: each connector's pending export gains the values,
        // spelled; one that cannot be spelled now sends all the ordinary
        // way (the wait is noted there).
        let mut staged: Vec<CsObject> = Vec::new();
        let mut w = SyncCounters::default();
        if !changes.is_empty() && !self.stage_targets(txn, &mv, &changes, &mut staged, &mut w)? {
            return Ok(Taken::Whole);
        }
        // Write: the source's rows and pending import, the metaverse rows,
        // the targets' pending exports, the waits.
        if changes.is_empty() {
            w.connectors_without_flow_updates += 1;
        } else {
            w.connectors_with_flow_updates += 1;
        }
        for (attr, d) in &values {
            txn.cs_values_change(cs.id, attr, d)?;
            let has = !d.add.is_empty() || txn.cs_values_count_upto(cs.id, attr, 1)? > 0;
            if has {
                cs.hologram.insert(attr.clone(), Value::Multi(Vec::new()));
            } else {
                cs.hologram.remove(attr);
            }
        }
        if let Some(p) = cs.pending_import.take() {
            // Nothing else changed (checked above): the other attributes
            // are the hologram's already.
            for (k, v) in p.attributes {
                cs.hologram.entry(k).or_insert(v);
            }
        }
        crate::history::clear_error(&mut cs, ErrorStage::Sync);
        if !waits_add.is_empty() || !waits_drop.is_empty() {
            let mut waits = txn.ref_waits_of(cs.id)?;
            waits.retain(|x| !waits_drop.iter().any(|(a, k)| *a == x.attr && *k == x.key));
            for x in waits_add {
                if !waits.contains(&x) {
                    waits.push(x);
                }
            }
            if let Some((ids, _)) = &mut self.waiting {
                if waits.is_empty() {
                    ids.remove(&cs.id);
                } else {
                    ids.insert(cs.id);
                }
            }
            txn.ref_waits_set(cs.id, &waits)?;
        }
        txn.cs_update_owned(cs)?;
        for c in &changes {
            txn.mv_values_change(mv_id, &c.attr, &c.delta)?;
        }
        if !changes.is_empty() {
            // The metaverse body is unchanged (the placeholder stays); a
            // cached whole copy is stale.
            self.mv_cache.remove(&mv_id);
        }
        for x in staged {
            txn.cs_update_owned(x)?;
        }
        super::add_counters(&mut self.counters, &w);
        Ok(Taken::Done)
    }

    /// Stage the metaverse `changes` onto every target connector of `mv`
    /// whose export flows copy them. `false` when one cannot take them
    /// as values (nothing is staged then).
    fn stage_targets(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &autosync_model::MvObject,
        changes: &[MvChange],
        staged: &mut Vec<CsObject>,
        counters: &mut SyncCounters,
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let Some(type_rules) = rules.mv_types.get(&mv.object_type) else {
            return Ok(true);
        };
        let mut connectors: Option<Vec<CsObject>> = None;
        for &t in &type_rules.targets {
            let target = &rules.mas[t];
            let flows: Vec<_> = target
                .outbound
                .iter()
                .filter(|f| {
                    f.source
                        .reads()
                        .is_none_or(|reads| changes.iter().any(|c| reads.contains(&c.attr)))
                })
                .collect();
            if flows.is_empty() {
                continue;
            }
            if t == self.ma.index {
                return Ok(false);
            }
            let target_rows = rules.rows.cs_of(&target.name);
            if connectors.is_none() {
                connectors = Some(txn.cs_by_mvs_light(&[mv.id])?);
            }
            for x in connectors.iter_mut().flatten() {
                if x.ma != target.name || x.connection != (Connection::Connector { mv_id: mv.id }) {
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
                    let Some(c) = changes.iter().find(|c| c.attr == r.mv_attr) else {
                        continue;
                    };
                    if !target_rows.is_some_and(|rows| rows.contains(&f.cs_attr)) {
                        return Ok(false);
                    }
                    let mut waits = autosync_store::OutWaitTargets::default();
                    let joined = self.joined.as_ref();
                    let added = crate::refs::resolve_out(
                        txn,
                        r,
                        &target.name,
                        crate::refs::Referrer {
                            id: x.id,
                            held: None,
                        },
                        Some(&Value::Multi(c.delta.add.clone())),
                        &mut waits,
                        joined,
                    )?;
                    if !waits.is_empty() {
                        return Ok(false);
                    }
                    let removed = crate::refs::resolve_out(
                        txn,
                        r,
                        &target.name,
                        crate::refs::Referrer {
                            id: x.id,
                            held: None,
                        },
                        Some(&Value::Multi(c.delta.remove.clone())),
                        &mut waits,
                        joined,
                    )?;
                    // A removed member that cannot be spelled now (its
                    // account there went, or is not sent yet) may still be
                    // in the target: the ordinary way compares whole.
                    if !waits.is_empty() {
                        return Ok(false);
                    }
                    let d = ValueDelta {
                        add: added.map(|v| texts_of(&v)).unwrap_or_default(),
                        remove: removed.map(|v| texts_of(&v)).unwrap_or_default(),
                    };
                    match stage_export_values(txn, x, &f.cs_attr, d)? {
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

/// The values of a multi-valued reference (or of one reference).
/// `d` without the values it both adds and removes (in time linear in
/// its size: a whole group replaced is a million values).
fn cancel(d: ValueDelta) -> ValueDelta {
    let removed: rustc_hash::FxHashSet<&Value> = d.remove.iter().collect();
    let both: rustc_hash::FxHashSet<Value> = d
        .add
        .iter()
        .filter(|v| removed.contains(v))
        .cloned()
        .collect();
    if both.is_empty() {
        return d;
    }
    ValueDelta {
        add: d.add.into_iter().filter(|v| !both.contains(v)).collect(),
        remove: d.remove.into_iter().filter(|v| !both.contains(v)).collect(),
    }
}

fn refs_of(v: &Value) -> Vec<Value> {
    match v {
        Value::Multi(vs) => vs.clone(),
        other => vec![other.clone()],
    }
}

/// The texts of a spelled reference value.
fn texts_of(v: &Value) -> Vec<Value> {
    refs_of(v)
}

/// `d` without the additions of values the metaverse rows already hold
/// and the removals of values they lack.
fn net_of_mv(
    txn: &mut dyn StoreTxn,
    id: MvId,
    attr: &str,
    d: ValueDelta,
) -> autosync_store::StoreResult<ValueDelta> {
    crate::rows::net_of(d, |values| txn.mv_values_present(id, attr, values))
}
