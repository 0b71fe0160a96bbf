//! Large multi-valued attributes as value-level changes.
//!
//! A group of 500,000 members is one object whose `members` attribute the
//! store keeps one row per value (its *value rows*, declared here: every
//! unordered reference attribute, of connector spaces and of the
//! metaverse). A one-member change then travels as one value: the
//! connector's delta import sends an `Update` with `values`, the import
//! stages it as `PendingImport::values` on the object read *light* (its
//! row attributes as the placeholder `Multi([])`, their rows not read),
//! the delta sync resolves that one value and changes one metaverse row
//! and one pending export value (`sync::rows`), and the export sends it as
//! a value-level change to a connector that takes them (the whole new
//! value to one that does not).
//!
//! Whatever this fast path does not handle (a first value or the last
//! one, another MA contributing the attribute, an unconfirmed export of
//! it, a rename, a full sync...) goes the ordinary way: the object is read
//! whole (the store reassembles its rows and makes value-level pending
//! changes whole), at a cost proportional to the group.

use crate::rules::MaRules;
use autosync_model::{
    Attributes, CsObject, ExportKind, ImportKind, PendingExport, PendingImport, SystemDef, Value,
    ValueDelta,
};
use autosync_store::{StoreResult, StoreTxn, ValueRows};
use rustc_hash::{FxHashMap, FxHashSet};

/// The attributes kept as value rows.
#[derive(Clone, Debug, Default)]
pub(crate) struct RowAttrs {
    /// Per MA name.
    pub cs: FxHashMap<String, FxHashSet<String>>,
    /// Per metaverse object type.
    pub mv: FxHashMap<String, FxHashSet<String>>,
}

impl RowAttrs {
    pub(crate) fn of(system: &SystemDef, mas: &[MaRules]) -> RowAttrs {
        let mut out = RowAttrs::default();
        for (name, def) in &system.metaverse {
            let attrs: FxHashSet<String> = def
                .references
                .keys()
                .filter(|a| !def.ordered.contains(a))
                .cloned()
                .collect();
            if !attrs.is_empty() {
                out.mv.insert(name.clone(), attrs);
            }
        }
        for ma in &system.mas {
            let ordered = mas
                .iter()
                .find(|m| m.name == ma.name)
                .map(|m| &m.ordered_cs);
            let attrs: FxHashSet<String> = ma
                .object_types
                .iter()
                .flat_map(|t| t.references.keys())
                .filter(|a| ordered.is_none_or(|o| !o.contains(*a)))
                .cloned()
                .collect();
            if !attrs.is_empty() {
                out.cs.insert(ma.name.clone(), attrs);
            }
        }
        out
    }

    /// The declaration the store takes.
    pub(crate) fn declaration(&self) -> ValueRows {
        ValueRows {
            cs: self
                .cs
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
            mv: self
                .mv
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
        }
    }

    pub(crate) fn cs_of(&self, ma: &str) -> Option<&FxHashSet<String>> {
        self.cs.get(ma)
    }

    pub(crate) fn mv_has(&self, mv_type: &str, attr: &str) -> bool {
        self.mv.get(mv_type).is_some_and(|s| s.contains(attr))
    }
}

/// Whether `v` is the store's placeholder for a row attribute whose rows
/// were not read (a light read).
pub(crate) fn is_placeholder(v: &Value) -> bool {
    matches!(v, Value::Multi(vs) if vs.is_empty())
}

/// Whether a light object read of `ma` holds anything the ordinary path
/// would misread: a placeholder in its hologram or value-level pending
/// changes. Such an object is read again whole before the ordinary path
/// takes it.
pub(crate) fn needs_whole(cs: &CsObject) -> bool {
    cs.hologram.values().any(is_placeholder)
        || cs
            .pending_import
            .as_ref()
            .is_some_and(|p| !p.values.is_empty())
        || cs
            .pending_export
            .as_ref()
            .is_some_and(|p| !p.values.is_empty())
        || cs
            .unconfirmed_export
            .as_ref()
            .is_some_and(|p| !p.values.is_empty())
}

/// `attrs` without the placeholders of `rows`.
fn plain(attrs: &Attributes) -> impl Iterator<Item = (&String, &Value)> {
    attrs.iter().filter(|(_, v)| !is_placeholder(v))
}

/// The attributes of a light object other than its row placeholders equal
/// `attrs` (the pending import's): nothing but value rows changed.
pub(crate) fn only_rows_changed(hologram: &Attributes, attrs: &Attributes) -> bool {
    plain(hologram).eq(plain(attrs))
}

/// Stage a value-level `Update` from a delta import onto a light object
/// of `ma`. `Ok(None)` when staged (`Some(true)` changed, `Some(false)`
/// nothing to stage); `Err(())` when the ordinary way must take it (the
/// caller reads the object whole).
pub(crate) fn stage_update(
    txn: &mut dyn StoreTxn,
    rows: &FxHashSet<String>,
    cs: &mut CsObject,
    attributes: &Attributes,
    values: &autosync_model::ValueChanges,
    counters: &mut autosync_model::ImportCounters,
) -> StoreResult<Result<bool, ()>> {
    if !cs.present || values.keys().any(|a| !rows.contains(a)) {
        return Ok(Err(()));
    }
    // Row attributes replaced whole, or a value still kept inline (a body
    // from before the declaration): the ordinary way.
    if attributes.keys().any(|a| rows.contains(a))
        || values
            .keys()
            .any(|a| cs.hologram.get(a).is_some_and(|v| !is_placeholder(v)))
    {
        return Ok(Err(()));
    }
    // A confirming import of an export of these attributes compares whole
    // values: the ordinary way.
    if let Some(u) = &cs.unconfirmed_export
        && values
            .keys()
            .any(|a| u.changes.contains_key(a) || u.values.contains_key(a))
    {
        return Ok(Err(()));
    }
    let mut pending = match cs.pending_import.take() {
        None => PendingImport {
            kind: ImportKind::Update,
            attributes: plain(&cs.hologram)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            dn: None,
            object_type: None,
            values: Default::default(),
        },
        // A pending update holding these attributes whole (a sync that
        // failed wrote it back read whole): the values change that.
        Some(p)
            if p.kind == ImportKind::Update
                && !values.keys().any(|a| p.attributes.contains_key(a)) =>
        {
            p
        }
        Some(p) => {
            cs.pending_import = Some(p);
            return Ok(Err(()));
        }
    };
    let mut changed = false;
    for (k, v) in attributes {
        if v.is_empty() {
            changed |= pending.attributes.remove(k).is_some();
        } else if pending.attributes.get(k) != Some(v) {
            pending.attributes.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    for (attr, d) in values {
        // Only what differs from the hologram's rows, given what is
        // already pending.
        let earlier = pending.values.remove(attr).unwrap_or_default();
        let mut net = earlier.clone();
        net.merge(d.clone());
        let net = net_of_rows(txn, cs.id, attr, net)?;
        if net != earlier {
            changed = true;
            let size = |d: &ValueDelta| (d.add.len() + d.remove.len()) as i64;
            counters.stage_values += (size(&net) - size(&earlier)).unsigned_abs();
            let removed = net.remove.len() as i64 - earlier.remove.len() as i64;
            counters.stage_values_removed =
                counters.stage_values_removed.saturating_add_signed(removed);
        }
        if !net.is_empty() {
            pending.values.insert(attr.clone(), net);
        }
    }
    let nothing = pending.values.is_empty()
        && pending.dn.is_none()
        && only_rows_changed(&cs.hologram, &pending.attributes);
    cs.pending_import = (!nothing).then_some(pending);
    Ok(Ok(changed))
}

/// `d` without the additions of values the rows already hold and the
/// removals of values they lack.
pub(crate) fn net_of_rows(
    txn: &mut dyn StoreTxn,
    id: autosync_model::CsId,
    attr: &str,
    d: ValueDelta,
) -> StoreResult<ValueDelta> {
    net_of(d, |values| txn.cs_values_present(id, attr, values))
}

/// `d` without the additions of values `present` says are there and the
/// removals of values it says are not.
pub(crate) fn net_of(
    mut d: ValueDelta,
    mut present: impl FnMut(&[Value]) -> StoreResult<Vec<bool>>,
) -> StoreResult<ValueDelta> {
    for (values, keep_present) in [(&mut d.add, false), (&mut d.remove, true)] {
        if values.is_empty() {
            continue;
        }
        let there = present(values)?;
        let mut i = 0;
        values.retain(|_| {
            let keep = there.get(i).copied().unwrap_or(false) == keep_present;
            i += 1;
            keep
        });
    }
    Ok(d)
}

/// Stage a value-level change `d` of `attr` onto the pending export of
/// light connector `x` (whose hologram keeps `attr` in rows). `Err(())`
/// when the ordinary way must take it. Returns whether the pending export
/// changed.
pub(crate) fn stage_export_values(
    txn: &mut dyn StoreTxn,
    x: &mut CsObject,
    attr: &str,
    d: ValueDelta,
) -> StoreResult<Result<bool, ()>> {
    if x.hologram.get(attr).is_some_and(|v| !is_placeholder(v)) {
        return Ok(Err(()));
    }
    // What an export sent and no import confirmed yet: a whole value of
    // the attribute stands in the way; values sent stand in the way only
    // of changes of those same values (a member who leaves while another
    // one's add waits for its confirmation is one value removed, not the
    // group sent whole).
    if let Some(u) = &x.unconfirmed_export {
        if u.changes.contains_key(attr) {
            return Ok(Err(()));
        }
        if let Some(sent) = u.values.get(attr) {
            let touched = |v: &Value| sent.add.contains(v) || sent.remove.contains(v);
            if d.add.iter().chain(&d.remove).any(touched) {
                return Ok(Err(()));
            }
        }
    }
    let mut p = match x.pending_export.take() {
        None => PendingExport {
            kind: ExportKind::Update,
            changes: Default::default(),
            new_dn: None,
            values: Default::default(),
        },
        Some(p) => p,
    };
    let changed = match p.kind {
        ExportKind::Delete | ExportKind::Rename => {
            x.pending_export = Some(p);
            return Ok(Err(()));
        }
        ExportKind::Add | ExportKind::DeleteAdd => {
            // The add sends whole values.
            let before = p.changes.get(attr).cloned().flatten();
            let after = d.apply_to(before.as_ref());
            let changed = before != after;
            p.changes.insert(attr.to_owned(), after);
            changed
        }
        ExportKind::Update => {
            if let Some(whole) = p.changes.get_mut(attr) {
                let after = d.apply_to(whole.as_ref());
                let changed = *whole != after;
                *whole = after;
                changed
            } else {
                let earlier = p.values.remove(attr).unwrap_or_default();
                let mut net = earlier.clone();
                net.merge(d);
                let net = net_of_rows(txn, x.id, attr, net)?;
                let changed = net != earlier;
                if !net.is_empty() {
                    p.values.insert(attr.to_owned(), net);
                }
                changed
            }
        }
    };
    let empty = p.kind == ExportKind::Update
        && p.changes.is_empty()
        && p.values.is_empty()
        && p.new_dn.is_none();
    x.pending_export = (!empty).then_some(p);
    Ok(Ok(changed))
}

/// An export's value-level changes made whole, for a connector that only
/// replaces whole values: each attribute's rows with the unconfirmed and
/// the pending changes applied.
pub(crate) fn whole_export(
    txn: &mut dyn autosync_store::StoreRead,
    x: &CsObject,
    p: &mut PendingExport,
) -> StoreResult<()> {
    for (attr, d) in std::mem::take(&mut p.values) {
        let rows = txn.cs_values(x.id, &attr)?;
        let mut whole = (!rows.is_empty()).then_some(Value::Multi(rows));
        if let Some(u) = &x.unconfirmed_export {
            if let Some(c) = u.changes.get(&attr) {
                whole.clone_from(c);
            } else if let Some(ud) = u.values.get(&attr) {
                whole = ud.apply_to(whole.as_ref());
            }
        }
        p.changes.insert(attr, d.apply_to(whole.as_ref()));
    }
    Ok(())
}

/// The unconfirmed export once `done` was sent after `earlier`.
pub(crate) fn merge_sent(earlier: &mut PendingExport, done: PendingExport) {
    crate::values::merge_changes(&mut earlier.changes, &done.changes);
    for attr in done.changes.keys() {
        earlier.values.remove(attr);
    }
    for (attr, d) in done.values {
        if let Some(whole) = earlier.changes.get_mut(&attr) {
            *whole = d.apply_to(whole.as_ref());
        } else {
            earlier.values.entry(attr).or_default().merge(d);
        }
    }
    if done.new_dn.is_some() {
        earlier.new_dn = done.new_dn;
    }
}
