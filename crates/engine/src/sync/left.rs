//! The references to an object whose connector on some MA left while
//! the object stays (its account deleted from a target by an export,
//! disconnected, or gone from its system as an import saw), dropped from
//! large groups value by value. The connector's name is noted with the
//! reference note (`RefName`, kept in the store: the export that deletes
//! it is another step than the sync that takes it); each target that
//! spelled the object through that MA stages the removal of the name and
//! waits for a connector there again, as the ordinary way would. What the
//! ordinary way could decide otherwise goes that way (see `gone`).

use super::gone::{Dropped, referring, removable};
use super::{Fail, Syncer};
use crate::rows::stage_export_values;
use autosync_model::{
    Connection, CsObject, ExportKind, MvId, RefBy, SyncCounters, Value, ValueDelta,
};
use autosync_store::{RefName, StoreTxn};

impl Syncer<'_> {
    /// Remove from the targets of metaverse object `referrer` the names of
    /// the connectors that left the objects it refers to (`left`: each
    /// object, with how its connectors that left were named on their MA),
    /// value by value: each target that spelled the object through such a
    /// MA stages the removal of that name, and the reference waits there
    /// (as the ordinary way would note it: the object has no connector on
    /// that MA now). `false` when the ordinary way must take the referrer
    /// (nothing was written then).
    pub(super) fn drop_left(
        &mut self,
        txn: &mut dyn StoreTxn,
        referrer: MvId,
        left: &[(MvId, Vec<RefName>)],
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let Some(mv) = txn.mv_get_light(referrer)? else {
            return Ok(false);
        };
        let ids: Vec<MvId> = left.iter().map(|(t, _)| *t).collect();
        let Some(drops) = referring(txn, rules, &mv, &ids, false)? else {
            return Ok(false);
        };
        // Each object has no connector left on the MAs named: otherwise
        // that one is spelled now (the ordinary way).
        for (t, names) in left {
            for n in names {
                if !txn.cs_spellings_by_mvs(&n.ma, &[*t])?.is_empty() {
                    return Ok(false);
                }
            }
        }
        let names = |t: MvId, via: &str, by: RefBy| -> Vec<String> {
            left.iter()
                .filter(|(id, _)| *id == t)
                .flat_map(|(_, ns)| ns.iter().filter(|n| n.ma == via))
                .filter_map(|n| match by {
                    RefBy::Anchor => Some(n.anchor.clone()),
                    RefBy::Dn => (!n.dn.is_empty()).then(|| n.dn.clone()),
                })
                .collect()
        };
        let Some(type_rules) = rules.mv_types.get(&mv.object_type) else {
            return Ok(false);
        };
        let mut connectors = txn.cs_by_mvs_light(&[referrer])?;
        connectors.retain(|x| x.connection == (Connection::Connector { mv_id: referrer }));
        let mut staged: Vec<CsObject> = Vec::new();
        let mut counters = SyncCounters::default();
        let mut waits: Vec<(String, Vec<(MvId, String)>)> = Vec::new();
        for &m in &type_rules.targets {
            let Some(target) = rules.mas.get(m) else {
                continue;
            };
            let target_rows = rules.rows.cs_of(&target.name);
            for x in connectors.iter_mut().filter(|x| x.ma == target.name) {
                if x.pending_export
                    .as_ref()
                    .is_some_and(|p| p.kind == ExportKind::Delete)
                {
                    continue;
                }
                let mut changed = false;
                let mut touched = false;
                for f in &target.outbound {
                    if f.initial_only || !f.applies(&x.object_type, &mv.object_type) {
                        continue;
                    }
                    let reads = |d: &Dropped| f.source.reads().is_none_or(|r| r.contains(&d.attr));
                    if !drops.iter().any(reads) {
                        continue;
                    }
                    let Some(r) = &f.reference else {
                        return Ok(false);
                    };
                    let Some(d) = drops.iter().find(|d| d.attr == r.mv_attr) else {
                        continue;
                    };
                    let via = r.ma.as_deref().unwrap_or(&target.name);
                    let mut remove = Vec::new();
                    for t in &d.gone {
                        let ns = names(*t, via, r.by);
                        if ns.is_empty() {
                            continue;
                        }
                        remove.extend(ns.into_iter().map(Value::String));
                        let w = match waits.iter_mut().find(|(ma, _)| *ma == target.name) {
                            Some((_, w)) => w,
                            None => {
                                waits.push((target.name.clone(), Vec::new()));
                                let Some((_, w)) = waits.last_mut() else {
                                    return Ok(false);
                                };
                                w
                            }
                        };
                        w.push((*t, via.to_owned()));
                    }
                    if remove.is_empty() {
                        continue;
                    }
                    touched = true;
                    if !target_rows.is_some_and(|rows| rows.contains(&f.cs_attr))
                        || !removable(txn, x, &f.cs_attr, r.by, &remove)?
                    {
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
                if touched {
                    super::outbound::count_outbound(&mut counters, &target.name, |c| {
                        if changed {
                            c.export_attribute_flow += 1;
                        } else {
                            c.export_no_flow += 1;
                        }
                    });
                }
                if changed {
                    staged.push(x.clone());
                }
            }
        }
        // Write: the waits out (the objects have no connector there now),
        // the targets' pending exports.
        for (ma, add) in waits {
            let mut all = txn.ref_out_waits_of(referrer, &ma)?;
            for w in add {
                if !all.contains(&w) {
                    all.push(w);
                }
            }
            all.sort();
            if let Some((_, mvs)) = &mut self.waiting {
                mvs.insert(referrer);
            }
            txn.ref_out_waits_set(referrer, &ma, &all)?;
        }
        for x in staged {
            txn.cs_update_owned(x)?;
        }
        super::add_counters(&mut self.counters, &counters);
        Ok(true)
    }
}
