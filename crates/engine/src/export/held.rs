//! The reference values an export holds back, as `autosync cs MA
//! --unresolved` lists them: read from the store with the rule the export
//! applies (`hold`), without an export.

use super::hold::Key;
use autosync_model::{CsId, CsObject, ErrorStage, ExportKind, MvId, RefBy, SystemDef, Value};
use autosync_store::{CsFilter, StoreRead, StoreResult};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Objects read per page.
const PAGE: usize = 1000;

/// A reference value of a pending export that names an object of the same
/// MA whose add failed: an export leaves it out of what it sends (the
/// system would be given a name that is no object's, or another's), and
/// it stays pending until the add goes.
#[derive(Clone, Debug, Serialize)]
pub struct HeldValue {
    /// Always `held`.
    pub direction: &'static str,
    pub attribute: String,
    /// The value held, as the system spells it.
    pub value: String,
    /// The object it names: its MA, anchor and DN.
    pub ma: String,
    pub anchor: String,
    pub dn: String,
    /// Always `add-failed`.
    pub reason: &'static str,
    /// The error of the add (the object's error).
    pub error_type: String,
}

/// An object of the MA whose add failed.
struct Failed {
    id: CsId,
    anchor: String,
    dn: String,
    error_type: String,
}

/// The reference values of `ma`'s pending exports that an export holds
/// back because the object of `ma` they name has an add that failed (see
/// `export::hold`), per referrer: at most `listed` each,
/// and how many more. Read only when an object of `ma` has an error (its
/// errors are read, then, should an add have failed, the pending exports).
pub fn held_at_export(
    read: &mut dyn StoreRead,
    system: &SystemDef,
    ma: &str,
    errors: u64,
    listed: usize,
) -> StoreResult<BTreeMap<CsId, (Vec<HeldValue>, usize)>> {
    let mut out = BTreeMap::new();
    let Some(def) = system.ma(ma) else {
        return Ok(out);
    };
    // The attributes of each object type that name objects of this MA.
    let attrs: HashMap<&str, Vec<(&str, RefBy)>> = def
        .object_types
        .iter()
        .map(|t| {
            let own = t
                .references
                .iter()
                .filter(|(_, r)| r.ma().is_none_or(|m| m == ma))
                .map(|(a, r)| (a.as_str(), r.by()))
                .collect::<Vec<_>>();
            (t.name.as_str(), own)
        })
        .filter(|(_, own)| !own.is_empty())
        .collect();
    if attrs.is_empty() || errors == 0 {
        return Ok(out);
    }
    let mut failed: Vec<Failed> = Vec::new();
    let mut names: HashMap<Key, usize> = HashMap::new();
    let mut after = 0;
    loop {
        let page = read.cs_page_light(ma, CsFilter::Errors, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for o in page {
            let Some(e) = o.error.as_ref().filter(|e| e.stage == ErrorStage::Export) else {
                continue;
            };
            let Some(p) = o.pending_export.as_ref().filter(|_| adding(&o)) else {
                continue;
            };
            let dn = p.new_dn.clone().unwrap_or_else(|| o.dn.clone());
            let i = failed.len();
            names.insert(Key::Anchor(o.anchor.clone()), i);
            names.insert(Key::Dn(autosync_model::dn::folded(&dn)), i);
            failed.push(Failed {
                id: o.id,
                anchor: o.anchor.clone(),
                dn,
                error_type: e.error_type.clone(),
            });
        }
    }
    if failed.is_empty() {
        return Ok(out);
    }
    // The DNs joined objects of the MA have in the system (read once, when
    // a value names a failed add by DN): a value naming one of them may
    // be meant for that object (see `hold`).
    let mut taken: Option<HashMap<String, Vec<String>>> = None;
    let mut after = 0;
    loop {
        let page = read.cs_page_light(ma, CsFilter::PendingExport, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for o in page {
            let (Some(p), Some(own)) = (&o.pending_export, attrs.get(o.object_type.as_str()))
            else {
                continue;
            };
            let mut held: Vec<HeldValue> = Vec::new();
            for (attr, by) in own {
                // (value, whether an update's whole list holds it)
                let mut values: Vec<(&Value, bool)> = Vec::new();
                match p.changes.get(*attr) {
                    Some(Some(Value::Multi(vs))) => values.extend(vs.iter().map(|v| (v, false))),
                    Some(Some(v)) => values.push((v, false)),
                    _ => {}
                }
                if let Some(d) = p.values.get(*attr) {
                    values.extend(d.add.iter().map(|v| (v, false)));
                }
                for (v, in_list) in values {
                    let Some(name) = Key::of(*by, v) else {
                        continue;
                    };
                    let Some(f) = names.get(&name).and_then(|&i| failed.get(i)) else {
                        continue;
                    };
                    if f.id == o.id {
                        continue;
                    }
                    if let Key::Dn(dn) = &name {
                        // A name another object has too: a whole list an
                        // update replaces keeps it, and a value new to the
                        // referrer is held unless its metaverse object
                        // refers to one of the others.
                        let taken = match &mut taken {
                            Some(t) => t,
                            None => taken.insert(dns_taken(read, ma)?),
                        };
                        let others: Vec<&str> = taken
                            .get(dn)
                            .into_iter()
                            .flatten()
                            .filter(|a| **a != f.anchor)
                            .map(String::as_str)
                            .collect();
                        if !others.is_empty()
                            && (in_list || refers_to(read, def, &o, attr, &others)?)
                        {
                            continue;
                        }
                    }
                    let value = v.to_text();
                    if held
                        .iter()
                        .any(|h| h.attribute == *attr && h.value == value)
                    {
                        continue;
                    }
                    held.push(HeldValue {
                        direction: "held",
                        attribute: (*attr).to_owned(),
                        value,
                        ma: ma.to_owned(),
                        anchor: f.anchor.clone(),
                        dn: f.dn.clone(),
                        reason: "add-failed",
                        error_type: f.error_type.clone(),
                    });
                }
            }
            if !held.is_empty() {
                let more = held.len().saturating_sub(listed);
                held.truncate(listed);
                out.insert(o.id, (held, more));
            }
        }
    }
    Ok(out)
}

/// Whether the metaverse object of `o` (an object of MA `def`) refers, in
/// what an export flow into `attr` reads, to the metaverse object of one of
/// the objects of the MA with anchors `anchors` (a name two objects share,
/// one of whose adds failed: the value names the other rightly only then,
/// and the export sends it).
pub(crate) fn refers_to(
    read: &mut dyn StoreRead,
    def: &autosync_model::MaDef,
    o: &CsObject,
    attr: &str,
    anchors: &[&str],
) -> StoreResult<bool> {
    let Some(mv) = o.connection.mv_id() else {
        return Ok(false);
    };
    let targets: Vec<MvId> = read
        .cs_joined_by_anchors(&def.name, anchors)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    if targets.is_empty() {
        return Ok(false);
    }
    let Some(obj) = read.mv_get(mv)? else {
        return Ok(false);
    };
    let refers = |v: &Value| match v {
        Value::Reference(id) => targets.contains(id),
        Value::Multi(vs) => vs
            .iter()
            .any(|x| matches!(x, Value::Reference(id) if targets.contains(id))),
        _ => false,
    };
    Ok(def
        .export_flows
        .iter()
        .filter(|f| f.cs == attr)
        .filter(|f| f.object_type.as_deref().is_none_or(|t| t == o.object_type))
        .filter_map(|f| f.from.as_deref())
        .filter_map(|from| obj.attributes.get(from))
        .any(|v| refers(&v.value)))
}

/// Whether `o`'s pending export adds it to its system.
pub(crate) fn adding(o: &CsObject) -> bool {
    o.pending_export
        .as_ref()
        .is_some_and(|p| matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd))
}

/// The DNs (folded) of the joined objects of `ma` the system has, each
/// with the anchors of the objects that have it.
pub(crate) fn dns_taken(
    read: &mut dyn StoreRead,
    ma: &str,
) -> StoreResult<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = read.cs_page_light(ma, CsFilter::All, after, PAGE)?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.id;
        for o in page {
            // Only a joined object: a sync spells references to
            // connectors alone, so a value spelling a disconnector's DN
            // (an entry made by hand under the name a failed add gives)
            // names the failed add's object, never that entry.
            if !adding(&o) && o.present && o.connection.mv_id().is_some() {
                out.entry(autosync_model::dn::folded(&o.dn))
                    .or_default()
                    .push(o.anchor);
            }
        }
    }
}
