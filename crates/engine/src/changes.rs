//! Per-object changes recorded with a run (`autosync history RUN_ID`): what
//! an import step staged for each object (its pending import against its
//! hologram) and what an export step sent for it (the `ExportChange`, the
//! values replaced and the values added and removed), written with the
//! step's transactions like its errors.
//!
//! At most [`MAX_RECORDED_CHANGES`] are recorded per step, and nothing is
//! computed for a change past that: the step's counters count them all, so
//! the history says how many were left out. Values are capped per
//! attribute (`autosync_model::change::MAX_VALUES_SHOWN`), so a group of
//! 500,000 members replaced whole is a small record, and a one-member
//! change is one value.
//!
//! Sync steps record nothing (their counters say what they did).

use autosync_model::{
    AttrChange, Attributes, ChangeKind, CsObject, ImportKind, PendingExport, RunChange, RunId,
    Value, ValueOrder,
};
use autosync_store::{StoreResult, StoreTxn};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;

/// At most this many per-object changes are recorded per step (as many as
/// errors, [`crate::MAX_RECORDED_ERRORS`]).
pub const MAX_RECORDED_CHANGES: u64 = 10_000;

/// The changes of one step, flushed with each batch's transaction.
pub(crate) struct StepChanges {
    run_id: RunId,
    step_index: u32,
    ma: String,
    /// Changes recorded so far (flushed or not).
    recorded: u64,
    pending: Vec<RunChange>,
}

impl StepChanges {
    pub fn new(run_id: RunId, step_index: u32, ma: &str) -> Self {
        StepChanges {
            run_id,
            step_index,
            ma: ma.to_owned(),
            recorded: 0,
            pending: Vec::new(),
        }
    }

    /// Whether the next change is recorded: callers compute a change only
    /// when it is.
    pub fn wants(&self) -> bool {
        self.recorded < MAX_RECORDED_CHANGES
    }

    /// A change of this step, with its object and attributes filled in.
    pub fn blank(&self, object: &str, dn: &str, kind: ChangeKind) -> RunChange {
        RunChange {
            run_id: self.run_id,
            step_index: self.step_index,
            ma: self.ma.clone(),
            object: object.to_owned(),
            dn: (dn != object && !dn.is_empty()).then(|| dn.to_owned()),
            kind,
            new_dn: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Record a change (ignored past the cap).
    pub fn push(&mut self, change: RunChange) {
        if self.wants() {
            self.recorded += 1;
            self.pending.push(change);
        }
    }

    /// Count a change recorded elsewhere (an export's, recorded by its
    /// recorder thread).
    pub fn reserve(&mut self) -> bool {
        let wants = self.wants();
        if wants {
            self.recorded += 1;
        }
        wants
    }

    /// Write the changes gathered since the last flush.
    pub fn flush(&mut self, txn: &mut dyn StoreTxn) -> StoreResult<()> {
        if !self.pending.is_empty() {
            self.pending.iter_mut().for_each(hide_secrets);
            txn.run_changes_insert(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Write changes gathered by someone else (the export's recorder).
    pub fn flush_these(txn: &mut dyn StoreTxn, changes: &mut Vec<RunChange>) -> StoreResult<()> {
        if !changes.is_empty() {
            changes.iter_mut().for_each(hide_secrets);
            txn.run_changes_insert(changes)?;
            changes.clear();
        }
        Ok(())
    }
}

/// Whether `v` is the store's placeholder of value rows not read.
fn placeholder(v: &Value) -> bool {
    crate::rows::is_placeholder(v)
}

/// The change an import staged on `cs` (its pending import against its
/// hologram), or `None` when it has none. `rows`: the MA's attributes kept
/// as value rows (an update names their changes in `values` only);
/// `order`: how each attribute's values compare.
///
/// An update that gives the object another DN is a rename (the step's
/// `stage-rename`), with the attributes it changes too, as an export's.
pub(crate) fn of_import(
    changes: &StepChanges,
    cs: &CsObject,
    rows: Option<&FxHashSet<String>>,
    order: &dyn Fn(&str) -> ValueOrder,
) -> Option<RunChange> {
    let p = cs.pending_import.as_ref()?;
    let new_dn = p.dn.clone().filter(|dn| *dn != cs.dn);
    let kind = match p.kind {
        ImportKind::Update if new_dn.is_some() => ChangeKind::Rename,
        other => other.into(),
    };
    let mut change = changes.blank(&cs.anchor, &cs.dn, kind);
    change.new_dn = new_dn;
    let attrs = &mut change.attributes;
    match p.kind {
        ImportKind::Delete => {}
        ImportKind::Add | ImportKind::DeleteAdd => {
            for (name, v) in &p.attributes {
                attrs.insert(name.clone(), AttrChange::replace(Some(v), None));
            }
        }
        ImportKind::Update => {
            for (name, d) in &p.values {
                attrs.insert(name.clone(), AttrChange::values(&d.add, &d.remove));
            }
            // An update leaves out of `attributes` a row attribute held
            // as a list whose values did not change (see the import's
            // `as_values`).
            let unchanged_list = |name: &str, v: &Value| {
                matches!(v, Value::Multi(_)) && rows.is_some_and(|r| r.contains(name))
            };
            diff(attrs, &cs.hologram, &p.attributes, unchanged_list, order);
        }
    }
    Some(change)
}

/// The attributes that differ between `old` (a hologram, maybe light) and
/// `new` (a pending import's whole attributes). `unchanged` says which
/// attributes of `old` missing from `new` are not removed (`out` holds
/// the changes of value-level ones already).
fn diff(
    out: &mut BTreeMap<String, AttrChange>,
    old: &Attributes,
    new: &Attributes,
    unchanged: impl Fn(&str, &Value) -> bool,
    order: &dyn Fn(&str) -> ValueOrder,
) {
    for (name, v) in new {
        if out.contains_key(name) {
            continue;
        }
        let before = old.get(name).filter(|v| !placeholder(v));
        if autosync_model::compare::same_value(before, Some(v), order(name)) {
            continue;
        }
        if let Some(c) = AttrChange::between(before, Some(v)) {
            out.insert(name.clone(), c);
        }
    }
    for (name, v) in old {
        if new.contains_key(name) || out.contains_key(name) || placeholder(v) || unchanged(name, v)
        {
            continue;
        }
        if !v.is_empty() {
            out.insert(name.clone(), AttrChange::replace(None, Some(v)));
        }
    }
}

/// The change an export sent for an object: `anchor` (the one the system
/// gave an add, if it did) and `dn` as sent, the attributes replaced and
/// the values added and removed. `made_whole`: the value-level changes the
/// export sent as whole values (to a connector that takes none), recorded
/// as those values with the size of what was sent. What the object held
/// before is filled in later, from its connector-space object
/// ([`fill_old`]).
pub(crate) fn of_export(
    changes: &StepChanges,
    sent: &autosync_connector::ExportChange,
    anchor: &str,
    made_whole: Option<&autosync_model::ValueChanges>,
) -> RunChange {
    let mut change = changes.blank(anchor, &sent.dn, sent.kind.into());
    change.new_dn = sent.new_dn.clone();
    if sent.kind == autosync_model::ExportKind::Delete {
        // A delete's values (an add's, so the connector knows its entry)
        // are not changes.
        return change;
    }
    for (name, v) in &sent.changes {
        let c = match made_whole.and_then(|m| m.get(name)) {
            Some(d) => {
                let mut c = AttrChange::values(&d.add, &d.remove);
                if let AttrChange::Values { sent_whole, .. } = &mut c {
                    *sent_whole = Some(match v {
                        Some(Value::Multi(vs)) => vs.len() as u64,
                        Some(v) if v.is_empty() => 0,
                        Some(_) => 1,
                        None => 0,
                    });
                }
                c
            }
            None => AttrChange::replace(v.as_ref(), None),
        };
        change.attributes.insert(name.clone(), c);
    }
    for (name, d) in &sent.values {
        change
            .attributes
            .insert(name.clone(), AttrChange::values(&d.add, &d.remove));
    }
    change
}

/// Fill in the old value of each attribute an update replaced, from what
/// the connector space says the target holds: the unconfirmed export's
/// value, else the hologram's (value rows not read are read from `txn`).
/// A multi-valued attribute sent whole (to a connector that takes no
/// value-level changes) whose old and new values are both known shows as
/// the values added and removed, with the size of what was sent. An add
/// has none.
pub(crate) fn fill_old(
    change: &mut RunChange,
    cs: &CsObject,
    txn: &mut dyn StoreTxn,
) -> StoreResult<()> {
    if matches!(change.kind, ChangeKind::Add | ChangeKind::DeleteAdd) {
        return Ok(());
    }
    let unconfirmed: Option<&PendingExport> = cs.unconfirmed_export.as_ref();
    for (name, c) in change.attributes.iter_mut() {
        let AttrChange::Replace { new, new_total, .. } = c else {
            continue;
        };
        let read;
        let before = match unconfirmed.and_then(|u| u.changes.get(name)) {
            Some(v) => v.as_ref(),
            None => match cs.hologram.get(name) {
                Some(v) if placeholder(v) => {
                    read = Value::Multi(txn.cs_values(cs.id, name)?);
                    Some(&read)
                }
                other => other,
            },
        };
        let whole_list = |v: Option<&Value>| matches!(v, Some(Value::Multi(_)) | None);
        if *new_total == 0
            && (matches!(new, Some(Value::Multi(_))) || matches!(before, Some(Value::Multi(_))))
            && whole_list(new.as_ref())
            && whole_list(before)
        {
            let sent = match new {
                Some(Value::Multi(vs)) => vs.len() as u64,
                _ => 0,
            };
            if let Some(AttrChange::Values {
                add,
                remove,
                add_total,
                remove_total,
                ..
            }) = AttrChange::between(before, new.as_ref())
            {
                *c = AttrChange::Values {
                    add,
                    remove,
                    add_total,
                    remove_total,
                    sent_whole: Some(sent),
                };
                continue;
            }
        }
        if before.is_some() {
            c.set_old(before);
        }
    }
    Ok(())
}

/// Every value of `change` in a secret's form (a sealed value, a marker)
/// shown as `cs` shows it: the history never keeps a sealed text.
fn hide_secrets(change: &mut RunChange) {
    for a in change.attributes.values_mut() {
        match a {
            AttrChange::Replace { new, old, .. } => {
                new.iter_mut()
                    .chain(old.iter_mut())
                    .for_each(autosync_model::secret::hide);
            }
            AttrChange::Values { add, remove, .. } => {
                add.iter_mut()
                    .chain(remove.iter_mut())
                    .for_each(autosync_model::secret::hide);
            }
        }
    }
}

/// The attributes of `change` that `write_only` says are write-only, shown
/// as set, never as what was sent.
pub(crate) fn hide_write_only(change: &mut RunChange, write_only: impl Fn(&str) -> bool) {
    for (k, a) in change.attributes.iter_mut() {
        if write_only(k) {
            *a = AttrChange::Replace {
                new: Some(Value::String("(write-only, set)".into())),
                old: None,
                new_total: 0,
                old_total: 0,
            };
        }
    }
}
