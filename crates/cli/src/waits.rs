//! `autosync cs MA --unresolved`: the references of MA's objects that wait.
//!
//! Two kinds: a connector-space reference that names an object not there
//! or not joined yet (inbound, `ref_wait_in`), and a metaverse reference
//! exported to MA whose referred object has no connector on the MA that
//! spells it yet, or one whose add or rename is not exported yet
//! (outbound, `ref_wait_out`). An outbound wait's value is left out of
//! what MA is sent until it ends.

pub use autosync_engine::HeldValue;
use autosync_model::{CsId, CsObject, ExportKind, MvId, RefBy, SystemDef, Value};
use autosync_store::{RefWait, StoreRead, StoreResult, fold_case, fold_dn};
use serde::Serialize;
use serde::ser::SerializeMap;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// At most this many waits of one object are listed (the rest counted),
/// as a run's recorded changes cap their value lists.
pub const LISTED: usize = 100;

/// The ids of the objects of `ma` with a wait of either kind, in id order
/// (each once), and how many there are.
pub fn waiting_ids(read: &mut dyn StoreRead, ma: &str) -> StoreResult<Vec<CsId>> {
    let mut ids = Vec::new();
    for outbound in [false, true] {
        let mut after = 0;
        loop {
            let page = if outbound {
                read.ref_out_waiting_page(ma, after, 10_000)?
            } else {
                read.ref_waiting_page(ma, after, 10_000)?
            };
            let Some(&last) = page.last() else { break };
            after = last;
            ids.extend(page);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// One wait of a listed object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "direction", rename_all = "kebab-case")]
pub enum Wait {
    /// The object's reference names an object of `ma` (by anchor or DN)
    /// that is not there, or not joined.
    In {
        attribute: String,
        ma: String,
        /// The anchor or DN named (JSON: `anchor` or `dn`).
        #[serde(flatten)]
        anchor: Named,
    },
    /// The metaverse reference exported to this object names `mv_id`,
    /// which has no usable connector on `via` yet.
    Out {
        /// The attribute of this MA the reference flows to (the metaverse
        /// attribute, when no export flow copies it).
        attribute: String,
        mv_id: MvId,
        object_type: String,
        via: String,
        /// `no-connector`, `add-not-exported`, `add-failed` (the add was
        /// sent and refused: `error`), `rename-not-exported`, or `ready`
        /// (the next sync resolves it).
        reason: &'static str,
        /// The error the connector's add failed with (`add-failed`).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// What an inbound wait names: an anchor, or a DN as the referrer holds
/// it (the store keeps the DN folded, `fold_dn`: one of the referrer's
/// values of the attribute that folds to it, else that key). Shown as
/// its text; in JSON under `anchor` or `dn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub text: String,
    pub by_dn: bool,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Named {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(if self.by_dn { "dn" } else { "anchor" }, &self.text)?;
        map.end()
    }
}

impl Wait {
    /// The `WAITS FOR` column.
    pub fn waits_for(&self) -> String {
        match self {
            Wait::In { ma, anchor, .. } => format!("{ma}/{anchor} (not there, or not joined)"),
            Wait::Out {
                mv_id,
                object_type,
                via,
                reason,
                error,
                ..
            } => {
                let why = match *reason {
                    "no-connector" => format!("has no connector in {via}"),
                    "add-not-exported" => format!("its add to {via} is not exported yet"),
                    "add-failed" => format!(
                        "its add to {via} failed ({}): it waits until the add goes",
                        error.as_deref().unwrap_or("error")
                    ),
                    "rename-not-exported" => format!("its rename in {via} is not exported yet"),
                    _ => format!("its connector in {via} is there: the next sync sends it"),
                };
                format!("{object_type} #{mv_id}: {why}")
            }
        }
    }

    pub fn attribute(&self) -> &str {
        match self {
            Wait::In { attribute, .. } | Wait::Out { attribute, .. } => attribute,
        }
    }
}

/// The waits of one listed object, at most [`LISTED`], and how many more.
#[derive(Clone, Debug, Default)]
pub struct Waits {
    pub listed: Vec<Wait>,
    pub more: usize,
}

/// The waits of `o` (an object of `ma`) of both kinds.
pub fn waits_of(
    read: &mut dyn StoreRead,
    system: &SystemDef,
    ma: &str,
    o: &CsObject,
) -> StoreResult<Waits> {
    let inbound: Vec<RefWait> = read.ref_waits_of(o.id)?;
    let outbound = match o.connection.mv_id() {
        Some(mv) => read.ref_out_waits_of(mv, ma)?,
        None => Vec::new(),
    };
    let total = inbound.len() + outbound.len();
    let inbound: Vec<RefWait> = inbound.into_iter().take(LISTED).collect();
    let mut spelled = spellings(o, &inbound);
    let mut listed: Vec<Wait> = inbound
        .into_iter()
        .map(|w| Wait::In {
            anchor: Named {
                text: if w.by_dn {
                    spelled
                        .remove(&(w.attr.clone(), w.key.clone()))
                        .unwrap_or(w.key)
                } else {
                    w.key
                },
                by_dn: w.by_dn,
            },
            attribute: w.attr,
            ma: w.ma,
        })
        .collect();
    let room = LISTED.saturating_sub(listed.len());
    if room > 0 && !outbound.is_empty() {
        // The attribute each value flows to: the one reference flow to
        // this object's type, without reading the referrer (a group of
        // half a million members); else found in the referrer's values.
        let flows = reference_flows(system, ma, &o.object_type);
        let referrer = match (flows.as_slice(), o.connection.mv_id()) {
            ([_], _) | (_, None) => None,
            (_, Some(mv)) => read.mv_get(mv)?,
        };
        for (target, via) in outbound.into_iter().take(room) {
            let attribute = match (flows.as_slice(), &referrer) {
                ([(cs, _)], _) => cs.clone(),
                (_, Some(r)) => r
                    .attributes
                    .iter()
                    .find(|(_, v)| names(&v.value, target))
                    .map(|(name, _)| {
                        flows
                            .iter()
                            .find(|(_, from)| from == name)
                            .map_or_else(|| name.clone(), |(cs, _)| cs.clone())
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            listed.push(out_wait(read, attribute, target, via)?);
        }
    }
    let more = total - listed.len();
    Ok(Waits { listed, more })
}

/// The DNs waits by DN name as `o` holds them: per (attribute, folded
/// key) of `waits`, the first of `o`'s values of that attribute that
/// folds to the key (the store keeps the key folded). Each attribute's
/// values are read once, and no further than the last key found.
fn spellings(o: &CsObject, waits: &[RefWait]) -> HashMap<(String, String), String> {
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for w in waits.iter().filter(|w| w.by_dn) {
        wanted.entry(&w.attr).or_default().insert(&w.key);
    }
    let mut out = HashMap::new();
    for (attr, mut keys) in wanted {
        let Some(v) = o.hologram.get(attr) else {
            continue;
        };
        let values = match v {
            Value::Multi(vs) => vs.as_slice(),
            one => std::slice::from_ref(one),
        };
        for v in values {
            if keys.is_empty() {
                break;
            }
            let text = v.to_text();
            let key = fold_dn(&text);
            if keys.remove(key.as_ref()) {
                out.insert((attr.to_owned(), key.into_owned()), text);
            }
        }
    }
    out
}

/// The export flows of `ma` to objects of `object_type` that copy a
/// metaverse reference: `(CS attribute, metaverse attribute)` each.
fn reference_flows(system: &SystemDef, ma: &str, object_type: &str) -> Vec<(String, String)> {
    let is_reference = |mv_type: Option<&str>, attr: &str| {
        system
            .metaverse
            .iter()
            .filter(|(t, _)| mv_type.is_none_or(|m| m == t.as_str()))
            .any(|(_, d)| d.references.contains_key(attr))
    };
    let mut flows: Vec<(String, String)> = system
        .ma(ma)
        .map(|m| {
            m.export_flows
                .iter()
                .filter(|f| f.object_type.as_deref().is_none_or(|t| t == object_type))
                .filter_map(|f| {
                    let from = f.from.as_deref()?;
                    is_reference(f.mv_type.as_deref(), from)
                        .then(|| (f.cs.clone(), from.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    flows.dedup();
    flows
}

/// Why the reference to `target` waits for a connector on `via`, read
/// from the connectors' spellings (no attributes decoded).
fn out_wait(
    read: &mut dyn StoreRead,
    attribute: String,
    target: MvId,
    via: String,
) -> StoreResult<Wait> {
    let object_type = read
        .mv_get_light(target)?
        .map(|m| m.object_type)
        .unwrap_or_else(|| "deleted object".to_owned());
    let mut connectors = read.cs_spellings_by_mvs(&via, &[target])?;
    connectors.sort_unstable_by_key(|c| c.id);
    let mut error = None;
    let reason = match connectors.first() {
        None => "no-connector",
        Some(c) => match &c.pending {
            Some((ExportKind::Add | ExportKind::DeleteAdd, _)) => {
                // Sent and refused: its error says why (a name taken).
                error = read
                    .cs_get_light(c.id)?
                    .and_then(|o| o.error)
                    .filter(|e| e.stage == autosync_model::ErrorStage::Export)
                    .map(|e| e.error_type);
                if error.is_some() {
                    "add-failed"
                } else {
                    "add-not-exported"
                }
            }
            Some((_, Some(_))) => "rename-not-exported",
            _ => "ready",
        },
    };
    Ok(Wait::Out {
        attribute,
        mv_id: target,
        object_type,
        via,
        reason,
        error,
    })
}

/// Whether `v` is, or holds, a reference to `target`.
fn names(v: &Value, target: MvId) -> bool {
    match v {
        Value::Reference(id) => *id == target,
        Value::Multi(vs) => vs.iter().any(|v| names(v, target)),
        _ => false,
    }
}

/// One row of `cs MA --unresolved`: a wait the store keeps (see `waits`),
/// with what this listing found of the object it names; or a reference
/// value an export holds back.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Unresolved {
    Wait {
        #[serde(flatten)]
        wait: Wait,
        #[serde(flatten)]
        found: Found,
    },
    Held(HeldValue),
}

impl Unresolved {
    pub fn attribute(&self) -> &str {
        match self {
            Unresolved::Wait { wait, .. } => wait.attribute(),
            Unresolved::Held(h) => &h.attribute,
        }
    }
}

/// The rows of one listed object, at most [`LISTED`], and how many more.
#[derive(Clone, Debug)]
pub struct UnresolvedOf<T = Unresolved> {
    pub listed: Vec<T>,
    pub more: usize,
}

/// What the listing found of the object a wait names.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Found {
    /// An inbound wait's object is there and joined (the wait is over, or
    /// cannot end as it is).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub joined: Option<Joined>,
    /// A connector of an outbound wait's referred object on another MA:
    /// which object it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_as: Option<KnownAs>,
    /// An inbound wait by anchor whose object is not there: the anchor of
    /// an object of that MA that differs from it only in case (a reference
    /// by anchor compares exactly, as an anchor is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differs_in_case: Option<String>,
}

/// The metaverse object an inbound wait's object is joined to.
#[derive(Clone, Debug, Serialize)]
pub struct Joined {
    /// `type-mismatch`: the reference names an object of another type than
    /// its metaverse attribute holds (the sync fails with
    /// `reference-type-mismatch`); `ready`: the next sync resolves it.
    pub reason: &'static str,
    pub mv_id: MvId,
    pub object_type: String,
    /// The type the metaverse attribute holds references to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_type: Option<String>,
}

/// A connector of a metaverse object: its MA, anchor and DN.
#[derive(Clone, Debug, Serialize)]
pub struct KnownAs {
    pub ma: String,
    pub anchor: String,
    pub dn: String,
}

/// The rows of waits `waits` of object `o`, with what the store says of
/// the objects they name: an inbound wait's object that is there and
/// joined (of another type than the reference holds, or to be resolved by
/// the next sync) or, named by anchor and not there, an object whose
/// anchor differs from it only in case; and a connector of an outbound
/// wait's referred object (its anchor or DN on a source), read in a few
/// batches per object.
pub fn found(
    read: &mut dyn StoreRead,
    system: &SystemDef,
    o: &CsObject,
    waits: Vec<Wait>,
) -> StoreResult<Vec<Unresolved>> {
    let references = system
        .ma(&o.ma)
        .and_then(|m| m.object_types.iter().find(|t| t.name == o.object_type))
        .map(|t| &t.references);
    let by_of = |attr: &str| references.and_then(|r| r.get(attr)).map(|r| r.by());
    // Inbound: the named objects that are there and joined, by (MA, name).
    // (MA, by DN): the names asked.
    let mut asked: BTreeMap<(&str, bool), Vec<&str>> = BTreeMap::new();
    for w in &waits {
        if let Wait::In {
            attribute,
            ma,
            anchor,
        } = w
            && let Some(by) = by_of(attribute)
        {
            asked
                .entry((ma, by == RefBy::Dn))
                .or_default()
                .push(&anchor.text);
        }
    }
    let mut joined: HashMap<(String, String), MvId> = HashMap::new();
    for ((ma, by_dn), keys) in &asked {
        match by_dn {
            false => {
                for (anchor, mv) in read.cs_joined_by_anchors(ma, keys)? {
                    if mv != 0 {
                        joined.insert(((*ma).to_owned(), anchor), mv);
                    }
                }
            }
            true => {
                // One object of the DN, joined (two are ambiguous).
                let mut of: HashMap<String, Vec<(CsId, Option<MvId>)>> = HashMap::new();
                for (dn, id, mv) in read.cs_joined_by_dns(ma, keys)? {
                    of.entry(fold_dn(&dn).into_owned())
                        .or_default()
                        .push((id, mv));
                }
                for (dn, mut objects) in of {
                    objects.dedup_by_key(|(id, _)| *id);
                    if let [(_, Some(mv))] = objects.as_slice()
                        && *mv != 0
                    {
                        joined.insert(((*ma).to_owned(), dn), *mv);
                    }
                }
            }
        }
    }
    // Inbound by anchor, the object not there or not joined: the anchors
    // of that MA's objects that differ from it only in case, by (MA,
    // folded anchor).
    let mut cased: HashMap<(String, String), Vec<String>> = HashMap::new();
    for ((ma, by_dn), keys) in &asked {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !joined.contains_key(&((*ma).to_owned(), (*k).to_owned())))
            .collect();
        if *by_dn || missing.is_empty() {
            continue;
        }
        for anchor in read.cs_anchors_ignoring_case(ma, &missing)? {
            cased
                .entry(((*ma).to_owned(), fold_case(&anchor).into_owned()))
                .or_default()
                .push(anchor);
        }
    }
    let mut types: HashMap<MvId, String> = HashMap::new();
    if !joined.is_empty() {
        let ids: BTreeSet<MvId> = joined.values().copied().collect();
        let ids: Vec<MvId> = ids.into_iter().collect();
        for m in read.mv_get_many_light(&ids)? {
            types.insert(m.id, m.object_type);
        }
    }
    // Outbound: a connector of each referred object, on an MA other than
    // the one it waits for (the first MA in the configuration's order).
    let targets: BTreeSet<MvId> = waits
        .iter()
        .filter_map(|w| match w {
            Wait::Out { mv_id, .. } => Some(*mv_id),
            Wait::In { .. } => None,
        })
        .collect();
    let mut known: HashMap<MvId, Vec<KnownAs>> = HashMap::new();
    if !targets.is_empty() {
        let targets: Vec<MvId> = targets.into_iter().collect();
        for m in &system.mas {
            let mut found = read.cs_spellings_by_mvs(&m.name, &targets)?;
            found.sort_unstable_by_key(|c| c.id);
            for c in found {
                known.entry(c.mv_id).or_default().push(KnownAs {
                    ma: m.name.clone(),
                    anchor: c.anchor,
                    dn: c.dn,
                });
            }
        }
    }
    Ok(waits
        .into_iter()
        .map(|wait| {
            let found = match &wait {
                Wait::In {
                    attribute,
                    ma,
                    anchor,
                } => {
                    let key = match by_of(attribute) {
                        Some(RefBy::Dn) => fold_dn(&anchor.text).into_owned(),
                        _ => anchor.text.clone(),
                    };
                    let joined = joined.get(&(ma.clone(), key)).map(|&mv_id| {
                        let object_type = types
                            .get(&mv_id)
                            .cloned()
                            .unwrap_or_else(|| "deleted object".to_owned());
                        let expected = expected_type(system, o, attribute);
                        let reason = match &expected {
                            Some(t) if *t != object_type => "type-mismatch",
                            _ => "ready",
                        };
                        Joined {
                            reason,
                            mv_id,
                            object_type,
                            expected_type: expected,
                        }
                    });
                    // Only when no object has the anchor as named.
                    let differs_in_case = match (&joined, by_of(attribute)) {
                        (None, Some(RefBy::Anchor)) => cased
                            .get(&(ma.clone(), fold_case(&anchor.text).into_owned()))
                            .filter(|found| !found.contains(&anchor.text))
                            .and_then(|found| found.iter().min().cloned()),
                        _ => None,
                    };
                    Found {
                        joined,
                        known_as: None,
                        differs_in_case,
                    }
                }
                Wait::Out { mv_id, via, .. } => Found {
                    joined: None,
                    differs_in_case: None,
                    known_as: known
                        .get(mv_id)
                        .and_then(|cs| cs.iter().find(|c| c.ma != *via))
                        .cloned(),
                },
            };
            Unresolved::Wait { wait, found }
        })
        .collect())
}

/// The metaverse type the import flows of `o`'s MA that copy reference
/// `attr` say its values name (one, not `any`), if they say one.
fn expected_type(system: &SystemDef, o: &CsObject, attr: &str) -> Option<String> {
    let ma = system.ma(&o.ma)?;
    let mut types = ma
        .import_flows
        .iter()
        .filter(|f| f.from.as_deref() == Some(attr))
        .filter(|f| f.object_type.as_deref().is_none_or(|t| t == o.object_type))
        .flat_map(|f| {
            system
                .metaverse
                .iter()
                .filter(|(t, _)| f.mv_type.as_deref().is_none_or(|m| m == t.as_str()))
                .filter_map(|(_, d)| d.references.get(&f.mv))
        });
    let first = types.next()?;
    (first != autosync_model::ANY_TYPE && types.all(|t| t == first)).then(|| first.clone())
}

#[cfg(test)]
mod tests;
