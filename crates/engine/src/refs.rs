//! Reference attributes: a connector-space value that names another object
//! (its anchor) becomes, on import, a reference to that object's metaverse
//! object ([`resolve_in`]); a metaverse reference becomes, on export, the
//! anchor or DN of the referred object's connector on the target MA
//! ([`resolve_out`]).
//!
//! A value that cannot be resolved yet (the object is not there, or not
//! joined; the referred object has no connector on the target) is left
//! out, never guessed, and its wait is kept in the store
//! (`ref_wait_in`, `ref_wait_out`): the end of every sync step resolves
//! the waits whose object came (`sync::refpass`), so the result does not
//! depend on the order objects are synchronised in.

use crate::sync::Fail;
use autosync_model::{Attributes, CsId, CsObject, ExportKind, MvId, RefBy, Value};
use autosync_store::{RefWait, StoreResult, StoreTxn};
use rustc_hash::FxHashMap;

mod compile;
mod loaded;
mod out;
mod ranks;

pub(crate) use compile::{InRef, OutRef, compile_in, compile_out, summary};
pub(crate) use out::{Referrer, resolve_out};
pub(crate) use ranks::{RefFlow, export_ranks};

/// What a sync step knows of the objects it wrote of the MAs references
/// name: per MA, anchor → the metaverse object it is joined to (`None`:
/// not joined, or gone); and per (metaverse object, MA) the connector's
/// spelling. Answers before the store, which a bulk transaction would
/// have to ask past every write still queued. Past a point, the MAs
/// references ask most of are read whole ([`loaded`]).
#[derive(Default)]
pub(crate) struct Joined {
    /// Per MA: anchor → the metaverse object it is joined to.
    anchors: FxHashMap<String, FxHashMap<String, Option<MvId>>>,
    /// Per MA: metaverse object → its connector's spelling there.
    connectors: FxHashMap<String, FxHashMap<MvId, Option<Spelling>>>,
    /// Entries in both, against `JOINED_MAX`.
    entries: usize,
    /// MAs read whole (kept current with every write noted here).
    loaded: std::cell::RefCell<loaded::Loaded>,
    /// Per MA, read once when first asked: the DNs (folded) its joined
    /// objects have in the system, with their anchors (see
    /// [`Joined::dn_of_another`]).
    dns: std::cell::RefCell<FxHashMap<String, std::collections::HashMap<String, Vec<String>>>>,
}

/// A connector as references to its metaverse object spell it.
#[derive(Clone)]
pub(crate) struct Spelling {
    pub id: CsId,
    pub anchor: String,
    pub dn: String,
    pub adding: bool,
    /// A rename waits to be sent (`dn` is the new DN).
    pub renaming: bool,
}

/// Most entries a step keeps (then it asks the store).
const JOINED_MAX: usize = 2_000_000;

impl Joined {
    /// Whether an object of `ma` other than the one with anchor `anchor`
    /// has DN `dn` in the system (joined, not an add still to be sent):
    /// a name an add not sent yet gives, that another object has (two
    /// people given one name). Read once per step and MA, and only when
    /// asked (a referrer holding such a name already).
    pub(crate) fn dn_of_another(
        &self,
        txn: &mut dyn autosync_store::StoreTxn,
        ma: &str,
        dn: &str,
        anchor: &str,
    ) -> autosync_store::StoreResult<bool> {
        let mut dns = self.dns.borrow_mut();
        if !dns.contains_key(ma) {
            let read = crate::export::held::dns_taken(txn, ma)?;
            dns.insert(ma.to_owned(), read);
        }
        Ok(dns
            .get(ma)
            .and_then(|m| m.get(&autosync_model::dn::folded(dn)))
            .is_some_and(|anchors| anchors.iter().any(|a| a != anchor)))
    }

    /// The metaverse object the object of `ma` with `anchor` is joined to,
    /// if known (`Some(None)`: not there, not joined, or gone).
    fn get(&self, ma: &str, anchor: &str) -> Option<Option<MvId>> {
        if let Some(x) = self.anchors.get(ma).and_then(|m| m.get(anchor)) {
            return Some(*x);
        }
        self.loaded.borrow().anchor(ma, anchor)
    }

    /// Note that `n` objects of `ma` (their joins, or, `spellings`, their
    /// connectors) are to be asked of the store; reads `ma` whole instead
    /// when that is cheaper. Returns whether `ma` is read whole.
    fn read_whole(
        &self,
        txn: &mut dyn StoreTxn,
        ma: &str,
        spellings: bool,
        n: usize,
    ) -> StoreResult<bool> {
        self.loaded.borrow_mut().ask(txn, ma, spellings, n)
    }

    fn spelling(&self, mv: MvId, ma: &str) -> Option<&Option<Spelling>> {
        self.connectors.get(ma)?.get(&mv)
    }

    /// Whether objects of `ma` are noted at all (references name them).
    pub(crate) fn notes(ma: &str, (in_mas, out_mas): (&[String], &[String])) -> bool {
        in_mas.iter().any(|m| m == ma) || out_mas.iter().any(|m| m == ma)
    }

    /// Note connector-space object `x` as written with id `id` (or,
    /// `gone`, deleted), when its MA is one references name.
    pub(crate) fn wrote(
        &mut self,
        x: &CsObject,
        id: CsId,
        gone: bool,
        (in_mas, out_mas): (&[String], &[String]),
    ) {
        let room = self.entries < JOINED_MAX;
        let joined = if gone {
            None
        } else {
            x.connection.mv_id().filter(|id| *id != 0)
        };
        if out_mas.contains(&x.ma) && self.loaded.get_mut().has_spellings(&x.ma) {
            let now = joined.map(|mv| {
                (
                    mv,
                    Spelling {
                        id,
                        anchor: x.anchor.clone(),
                        dn: spelling(x, RefBy::Dn),
                        adding: adding(x),
                        renaming: renaming(x),
                    },
                )
            });
            self.loaded.get_mut().wrote_connector(&x.ma, id, now);
        }
        if in_mas.contains(&x.ma) {
            self.loaded.get_mut().wrote_anchor(&x.ma, &x.anchor, joined);
            let m = self.anchors.entry(x.ma.clone()).or_default();
            if room || m.contains_key(&x.anchor) {
                if m.insert(x.anchor.clone(), joined).is_none() {
                    self.entries += 1;
                }
            } else if m.remove(&x.anchor).is_some() {
                self.entries -= 1;
            }
        }
        if out_mas.contains(&x.ma)
            && let Some(mv) = x.connection.mv_id().filter(|id| *id != 0)
        {
            let m = self.connectors.entry(x.ma.clone()).or_default();
            let now = (!gone).then(|| Spelling {
                id,
                anchor: x.anchor.clone(),
                dn: spelling(x, RefBy::Dn),
                adding: adding(x),
                renaming: renaming(x),
            });
            if gone || room || m.contains_key(&mv) {
                if m.insert(mv, now).is_none() {
                    self.entries += 1;
                }
            } else if m.remove(&mv).is_some() {
                self.entries -= 1;
            }
        }
    }
}

/// Whether `x`'s pending export renames it (not an add).
fn renaming(x: &CsObject) -> bool {
    x.pending_export.as_ref().is_some_and(|p| {
        p.new_dn.is_some() && !matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd)
    })
}

/// Whether `x`'s pending export adds it to its system.
fn adding(x: &CsObject) -> bool {
    x.pending_export
        .as_ref()
        .is_some_and(|p| matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd))
}

/// The texts a connector-space reference value holds (each value of a
/// multi-value, without repeats), and whether it is multi-valued.
fn keys_of(r: &InRef, v: &Value) -> Result<(Vec<String>, bool), Fail> {
    Ok(match v {
        Value::Multi(vs) => {
            let mut keys: Vec<String> = Vec::with_capacity(vs.len());
            let mut seen = rustc_hash::FxHashSet::default();
            for x in vs.iter().filter(|x| !x.is_empty()) {
                let k = key_of(r, x)?;
                if seen.insert(k.clone()) {
                    keys.push(k);
                }
            }
            (keys, true)
        }
        other if other.is_empty() => (Vec::new(), false),
        other => (vec![key_of(r, other)?], false),
    })
}

/// The anchor or DN one value of a connector-space reference holds: text,
/// or a whole number (an integer key column); anything else names no
/// object, and is the object's error rather than a wait that cannot end.
fn key_of(r: &InRef, v: &Value) -> Result<String, Fail> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        other => {
            let kind = match other {
                Value::Boolean(_) => "a boolean",
                Value::Binary(_) => "binary data",
                Value::Reference(_) => "a metaverse reference",
                _ => "a list inside a list",
            };
            Err(Fail::Object {
                error_type: "invalid-reference",
                detail: format!(
                    "`{}` holds {kind} (`{}`): a reference holds the {} of the object of `{}` it names, as text or a whole number",
                    r.cs_attr,
                    other.to_text(),
                    match r.by {
                        RefBy::Anchor => "anchor",
                        RefBy::Dn => "DN",
                    },
                    r.ma
                ),
            })
        }
    }
}

/// The metaverse references the connector-space reference `r` of an
/// object with attributes `attrs` stands for: each anchor names the
/// object of `r.ma` with that anchor; one that is there and joined gives
/// its metaverse object; any other is left out and, with `waits`, noted.
pub(crate) fn resolve_in(
    txn: &mut dyn StoreTxn,
    r: &InRef,
    attrs: &Attributes,
    waits: Option<&mut Vec<RefWait>>,
    known: Option<&Joined>,
) -> Result<Option<Value>, Fail> {
    let resolved = resolve_in_any(txn, r, attrs, waits, known)?;
    if let (Some(want), Some(v)) = (&r.check_type, &resolved) {
        // The objects of `r.ma` may be of other types: each named one must
        // be of the type the metaverse attribute declares.
        for id in referred(v) {
            if let Some(mv) = txn.mv_get_light(id)?
                && mv.object_type != *want
            {
                return Err(Fail::Object {
                    error_type: "reference-type-mismatch",
                    detail: format!(
                        "`{}` names an object of `{}` joined to metaverse object {id}, a `{}`: the metaverse attribute holds references to `{want}` objects (its type's `references`)",
                        r.cs_attr, r.ma, mv.object_type
                    ),
                });
            }
        }
    }
    Ok(resolved)
}

/// [`resolve_in`] without the check of the referred objects' type.
pub(crate) fn resolve_in_any(
    txn: &mut dyn StoreTxn,
    r: &InRef,
    attrs: &Attributes,
    waits: Option<&mut Vec<RefWait>>,
    known: Option<&Joined>,
) -> Result<Option<Value>, Fail> {
    let Some(v) = attrs.get(&r.cs_attr) else {
        return Ok(None);
    };
    let (keys, multi) = keys_of(r, v)?;
    if keys.is_empty() {
        return Ok(None);
    }
    if r.by == RefBy::Dn {
        return resolve_dns(txn, r, keys, multi, waits);
    }
    if let [k] = keys.as_slice() {
        // One anchor (a manager): no map for one answer.
        let joined = match known.and_then(|j| j.get(&r.ma, k)) {
            Some(id) => id,
            None if known
                .map(|j| j.read_whole(txn, &r.ma, false, 1))
                .transpose()?
                == Some(true) =>
            {
                known.and_then(|j| j.get(&r.ma, k)).flatten()
            }
            None => txn
                .cs_joined_by_anchors(&r.ma, &[k.as_str()])?
                .into_iter()
                .next()
                .map(|(_, id)| id),
        };
        return Ok(match joined.filter(|id| *id != 0) {
            Some(id) if multi => Some(Value::Multi(vec![Value::Reference(id)])),
            Some(id) => Some(Value::Reference(id)),
            None => {
                if let Some(w) = waits {
                    w.push(RefWait {
                        attr: r.cs_attr.clone(),
                        ma: r.ma.clone(),
                        key: k.clone(),
                        by_dn: false,
                    });
                }
                None
            }
        });
    }
    // What this sync step knows first (the store would have to be asked
    // past what it still writes), then the store's index, or the MA read
    // whole when many are asked.
    let ask: Vec<&str> = keys
        .iter()
        .filter(|k| known.and_then(|j| j.get(&r.ma, k)).is_none())
        .map(String::as_str)
        .collect();
    let mut from_store: FxHashMap<String, MvId> = FxHashMap::default();
    if !ask.is_empty()
        && known
            .map(|j| j.read_whole(txn, &r.ma, false, ask.len()))
            .transpose()?
            != Some(true)
    {
        for (anchor, id) in txn.cs_joined_by_anchors(&r.ma, &ask)? {
            if id != 0 {
                from_store.insert(anchor, id);
            }
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut waits = waits;
    for k in &keys {
        let id = known
            .and_then(|j| j.get(&r.ma, k))
            .flatten()
            .or_else(|| from_store.get(k.as_str()).copied());
        match id {
            Some(id) => out.push(Value::Reference(id)),
            None => {
                if let Some(w) = waits.as_deref_mut() {
                    w.push(RefWait {
                        attr: r.cs_attr.clone(),
                        ma: r.ma.clone(),
                        key: k.clone(),
                        by_dn: false,
                    });
                }
            }
        }
    }
    Ok(if multi {
        (!out.is_empty()).then_some(Value::Multi(out))
    } else {
        out.pop()
    })
}

/// [`resolve_in`] of DNs: each names the object of `r.ma` whose DN it is,
/// ignoring case (the store's DN index); one DN that two objects have is
/// the referrer's error (`ambiguous-reference`), never a guess.
fn resolve_dns(
    txn: &mut dyn StoreTxn,
    r: &InRef,
    keys: Vec<String>,
    multi: bool,
    mut waits: Option<&mut Vec<RefWait>>,
) -> Result<Option<Value>, Fail> {
    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found = txn.cs_joined_by_dns(&r.ma, &asked)?;
    let mut by_dn: FxHashMap<&str, Vec<(CsId, Option<MvId>)>> = FxHashMap::default();
    for (dn, id, mv) in &found {
        let e = by_dn.entry(dn.as_str()).or_default();
        if !e.iter().any(|(x, _)| x == id) {
            e.push((*id, *mv));
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut seen = rustc_hash::FxHashSet::default();
    for k in &keys {
        let folded = autosync_store::fold_dn(k);
        match by_dn.get(folded.as_ref()).map(Vec::as_slice) {
            Some([(_, Some(mv))]) if *mv != 0 => {
                if seen.insert(*mv) {
                    out.push(Value::Reference(*mv));
                }
            }
            Some(many) if many.len() > 1 => {
                // Named as commands take them: anchor, and the DN as the
                // system writes it (read only for this error).
                let mut named = Vec::with_capacity(many.len());
                for (id, _) in many {
                    named.push(match txn.cs_get_light(*id)? {
                        Some(x) => format!("{} ({})", x.anchor, x.dn),
                        None => format!("connector-space object {id} (gone)"),
                    });
                }
                return Err(Fail::Object {
                    error_type: "ambiguous-reference",
                    detail: format!(
                        "`{}` = `{k}` names {} objects of `{}` (DNs compare ignoring case): {}",
                        r.cs_attr,
                        many.len(),
                        r.ma,
                        named.join(", ")
                    ),
                });
            }
            _ => {
                if let Some(w) = waits.as_deref_mut() {
                    w.push(RefWait {
                        attr: r.cs_attr.clone(),
                        ma: r.ma.clone(),
                        key: folded.into_owned(),
                        by_dn: true,
                    });
                }
            }
        }
    }
    Ok(if multi {
        (!out.is_empty()).then_some(Value::Multi(out))
    } else {
        out.pop()
    })
}

/// The metaverse objects that `removed`, values that leave the
/// connector-space reference `r` of a referrer, had resolved to, found
/// without resolving them again: a value that leaves never fails its
/// referrer. A DN names every object of `r.ma` that has it, ignoring case:
/// when a second object came with it after the value resolved (a case
/// double: the value would be `ambiguous-reference` now), both of their
/// metaverse objects are given, and since an object of `r.ma` is joined to
/// one metaverse object and a metaverse object has at most one connector
/// in `r.ma`, the one of them the referrer's metaverse value holds is the
/// one this value resolved to (a value that never resolved holds neither).
/// A value that names nothing (not there, not joined), or that is not a
/// name at all, gives nothing. `unresolved` gets the wait, as
/// [`resolve_in`] notes it, of each value that names no one object (the
/// caller drops those waits: a value that waited, or that two objects
/// came for while it waited).
pub(crate) fn resolved_before(
    txn: &mut dyn StoreTxn,
    r: &InRef,
    removed: &[Value],
    unresolved: &mut Vec<RefWait>,
    known: Option<&Joined>,
) -> Result<Vec<MvId>, Fail> {
    // A value that cannot be a name resolved to nothing.
    let names: Vec<Value> = removed
        .iter()
        .filter(|v| !v.is_empty() && key_of(r, v).is_ok())
        .cloned()
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if r.by == RefBy::Anchor {
        // An anchor names one object: resolving it cannot fail.
        let mut attrs = Attributes::new();
        attrs.insert(r.cs_attr.clone(), Value::Multi(names));
        return Ok(resolve_in_any(txn, r, &attrs, Some(unresolved), known)?
            .map(|v| referred(&v))
            .unwrap_or_default());
    }
    let mut folded: Vec<String> = names
        .iter()
        .filter_map(|v| key_of(r, v).ok())
        .map(|k| autosync_store::fold_dn(&k).into_owned())
        .collect();
    folded.sort_unstable();
    folded.dedup();
    let asked: Vec<&str> = folded.iter().map(String::as_str).collect();
    // Per DN: the objects that have it, and the metaverse objects they
    // are joined to.
    let mut by_dn: FxHashMap<String, (Vec<CsId>, Vec<MvId>)> = FxHashMap::default();
    for (dn, id, mv) in txn.cs_joined_by_dns(&r.ma, &asked)? {
        let (ids, mvs) = by_dn.entry(dn).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
        if let Some(mv) = mv.filter(|mv| *mv != 0)
            && !mvs.contains(&mv)
        {
            mvs.push(mv);
        }
    }
    let mut out = Vec::new();
    for k in folded {
        let (ids, mvs) = by_dn.remove(&k).unwrap_or_default();
        // Only a DN that names one object, joined, resolved: any other
        // may have waited.
        if ids.len() != 1 || mvs.len() != 1 {
            unresolved.push(RefWait {
                attr: r.cs_attr.clone(),
                ma: r.ma.clone(),
                key: k,
                by_dn: true,
            });
        }
        out.extend(mvs);
    }
    Ok(out)
}

/// The metaverse objects a reference value refers to.
pub(crate) fn referred(v: &Value) -> Vec<MvId> {
    match v {
        Value::Reference(id) => vec![*id],
        Value::Multi(vs) => vs
            .iter()
            .filter_map(|x| match x {
                Value::Reference(id) => Some(*id),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// How target `ma` spells a reference to the object `x` is the connector
/// of: its anchor, or its DN (the one a pending rename gives it).
fn spelling(x: &CsObject, by: RefBy) -> String {
    match by {
        RefBy::Anchor => x.anchor.clone(),
        RefBy::Dn => x
            .pending_export
            .as_ref()
            .and_then(|p| p.new_dn.clone())
            .unwrap_or_else(|| x.dn.clone()),
    }
}
