//! A connector's pending export as outbound rules stage it: what the
//! connected system will hold once the pending and unconfirmed exports are
//! applied (`effective`), what it holds once the sent ones are confirmed
//! (`confirmed`), changes and renames staged onto what is pending, and a
//! change taken back when the value returned to what the system holds.

use super::Fail;
use crate::rules::MaRules;
use crate::secrets::Secrets;
use crate::values::merge_changes;
use autosync_model::{AttrChanges, CsObject, ExportKind, PendingExport, Value, ValueDelta};
use std::borrow::Cow;

pub(super) fn write_only_failed(detail: String) -> Fail {
    Fail::Object {
        error_type: "write-only-failed",
        detail,
    }
}

/// The sealed value to stage for write-only `attr` of `x` (a flow with
/// `on_change`) when the flowed value `d` differs, by tag, from what was
/// set or is pending. No value flowed never clears it.
pub(super) fn write_only_change(
    secrets: &Secrets,
    target: &MaRules,
    x: &CsObject,
    attr: &str,
    d: Option<Cow<'_, Value>>,
) -> Result<Option<Value>, Fail> {
    let Some(d) = d.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let sealed = target
        .write_only
        .sealed_value(secrets, d.into_owned())
        .map_err(write_only_failed)?;
    let now = effective(x, attr).and_then(autosync_model::secret::tag);
    Ok((now != autosync_model::secret::tag(&sealed)).then_some(sealed))
}

/// What the connected system will hold for `attr` once the pending and
/// unconfirmed exports are applied.
pub(super) fn effective<'a>(x: &'a CsObject, attr: &str) -> Option<&'a Value> {
    if let Some(p) = &x.pending_export {
        if let Some(c) = p.changes.get(attr) {
            return c.as_ref();
        }
        if matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd) {
            return None;
        }
    }
    if let Some(u) = &x.unconfirmed_export
        && let Some(c) = u.changes.get(attr)
    {
        return c.as_ref();
    }
    x.hologram.get(attr)
}

/// What the connected system holds for `attr` once the exports already
/// sent are confirmed (the pending export left out).
pub(super) fn confirmed<'a>(x: &'a CsObject, attr: &str) -> Option<&'a Value> {
    if let Some(u) = &x.unconfirmed_export
        && let Some(c) = u.changes.get(attr)
    {
        return c.as_ref();
    }
    x.hologram.get(attr)
}

/// Whether the pending export is an update (or rename) that changes `attr`.
pub(super) fn pending_update_of(x: &CsObject, attr: &str) -> bool {
    x.pending_export.as_ref().is_some_and(|p| {
        matches!(p.kind, ExportKind::Update | ExportKind::Rename) && p.changes.contains_key(attr)
    })
}

/// Drop the pending changes of `attrs` (an update left with nothing to
/// send goes).
pub(super) fn drop_changes(x: &mut CsObject, attrs: &[String]) {
    if let Some(p) = &mut x.pending_export {
        for a in attrs {
            p.changes.remove(a);
        }
        if p.kind == ExportKind::Update && p.changes.is_empty() && p.new_dn.is_none() {
            x.pending_export = None;
        }
    }
}

pub(super) fn stage_changes(x: &mut CsObject, changes: AttrChanges) {
    match &mut x.pending_export {
        Some(p) if matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd) => {
            for (k, v) in changes {
                match v {
                    Some(v) => p.changes.insert(k, Some(v)),
                    None => p.changes.remove(&k),
                };
            }
        }
        Some(p) => merge_changes(&mut p.changes, &changes),
        None => {
            x.pending_export = Some(PendingExport {
                values: Default::default(),
                kind: ExportKind::Update,
                changes,
                new_dn: None,
            });
        }
    }
}

pub(super) fn stage_rename(x: &mut CsObject, dn: String) {
    match &mut x.pending_export {
        Some(p) if matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd) => {
            p.new_dn = Some(dn.clone());
            x.dn = dn;
        }
        Some(p) => {
            p.new_dn = Some(dn);
            if p.kind == ExportKind::Update {
                p.kind = ExportKind::Rename;
            }
        }
        None => {
            x.pending_export = Some(PendingExport {
                values: Default::default(),
                kind: ExportKind::Rename,
                changes: AttrChanges::new(),
                new_dn: Some(dn),
            });
        }
    }
}

/// Drop the rename `x`'s pending export holds (not an add's DN): the
/// pending export goes with it when nothing else is in it.
pub(super) fn cancel_rename(x: &mut CsObject) {
    let Some(p) = &mut x.pending_export else {
        return;
    };
    if matches!(
        p.kind,
        ExportKind::Add | ExportKind::DeleteAdd | ExportKind::Delete
    ) {
        return;
    }
    p.new_dn = None;
    if p.kind == ExportKind::Rename {
        p.kind = ExportKind::Update;
    }
    if p.changes.is_empty() && p.values.is_empty() {
        x.pending_export = None;
    }
}

/// A change of a multi-valued attribute that target `target` keeps in
/// rows, from what the connector has (`effective`) to `new`, as values
/// added and removed, when it is a few values of many (a member that left
/// with its account, of a group of 500,000) and nothing sent or pending of
/// the attribute stands in the way; `None`: stage the whole value.
pub(super) fn few_values(
    rules: &crate::rules::Rules,
    target: &crate::rules::MaRules,
    x: &CsObject,
    f: &crate::rules::OutboundFlow,
    new: Option<&Value>,
) -> Option<ValueDelta> {
    if f.order == autosync_model::ValueOrder::Ordered
        || !rules
            .rows
            .cs_of(&target.name)
            .is_some_and(|r| r.contains(&f.cs_attr))
    {
        return None;
    }
    match &x.pending_export {
        Some(p)
            if p.kind != ExportKind::Update
                || p.changes.contains_key(&f.cs_attr)
                || p.values.contains_key(&f.cs_attr) =>
        {
            return None;
        }
        _ => {}
    }
    let unconfirmed = x.unconfirmed_export.as_ref();
    if unconfirmed.is_some_and(|u| u.changes.contains_key(&f.cs_attr)) {
        return None;
    }
    // Values an export sent and no import confirmed yet: the system has
    // them (a joiner's add waiting for its confirmation while a leaver
    // goes is one value removed, not the group sent whole).
    let sent = unconfirmed.and_then(|u| u.values.get(&f.cs_attr));
    let (Some(Value::Multi(old)), Some(Value::Multi(new))) = (x.hologram.get(&f.cs_attr), new)
    else {
        return None;
    };
    // Values compare as the sync compares them: exactly, as stored.
    let mut before: rustc_hash::FxHashSet<&Value> = old.iter().collect();
    if let Some(sent) = sent {
        sent.remove.iter().for_each(|v| {
            before.remove(v);
        });
        before.extend(&sent.add);
    }
    let after: rustc_hash::FxHashSet<&Value> = new.iter().collect();
    let mut d = ValueDelta::default();
    d.add
        .extend(new.iter().filter(|v| !before.contains(v)).cloned());
    // In the order the system has them: the hologram's, then the values
    // sent and not confirmed; each once.
    let mut removed: rustc_hash::FxHashSet<&Value> = Default::default();
    let held = old.iter().chain(sent.into_iter().flat_map(|s| &s.add));
    d.remove.extend(
        held.filter(|v| before.contains(v) && !after.contains(v) && removed.insert(v))
            .cloned(),
    );
    d.add.dedup();
    // A DN spelled in another case is the same entry (as the directory
    // compares it): added and removed in one change, the directory would
    // take the add as the value it has, then remove it (a member renamed
    // only in case left the group). Neither goes.
    if f.reference
        .as_ref()
        .is_some_and(|r| r.by == autosync_model::RefBy::Dn)
        && !d.add.is_empty()
        && !d.remove.is_empty()
    {
        cancel_same_dns(&mut d);
    }
    // A value sent and not confirmed that changes again: whole.
    if sent.is_some_and(|s| {
        d.add
            .iter()
            .chain(&d.remove)
            .any(|v| s.add.contains(v) || s.remove.contains(v))
    }) {
        return None;
    }
    let changed = d.add.len() + d.remove.len();
    (changed > 0 && changed.saturating_mul(4) <= old.len()).then_some(d)
}

/// Drop from `d` each added DN that a removed one names too (ignoring
/// case and spacing, as directories compare DNs), and that removed one;
/// returns what was dropped.
pub(crate) fn cancel_same_dns(d: &mut ValueDelta) -> ValueDelta {
    let fold = |v: &Value| autosync_model::dn::folded(&v.to_text());
    let removed: rustc_hash::FxHashSet<String> = d.remove.iter().map(fold).collect();
    let mut gone = ValueDelta::default();
    let mut names: rustc_hash::FxHashSet<String> = Default::default();
    for v in std::mem::take(&mut d.add) {
        let k = fold(&v);
        if removed.contains(&k) {
            names.insert(k);
            gone.add.push(v);
        } else {
            d.add.push(v);
        }
    }
    if !names.is_empty() {
        for v in std::mem::take(&mut d.remove) {
            if names.contains(&fold(&v)) {
                gone.remove.push(v);
            } else {
                d.remove.push(v);
            }
        }
    }
    gone
}

/// Stage value-level changes (see [`few_values`]) onto `x`'s pending
/// export (an update, or none).
pub(super) fn stage_values(x: &mut CsObject, values: Vec<(String, ValueDelta)>) {
    if values.is_empty() {
        return;
    }
    let p = x.pending_export.get_or_insert_with(|| PendingExport {
        values: Default::default(),
        kind: ExportKind::Update,
        changes: AttrChanges::new(),
        new_dn: None,
    });
    for (attr, d) in values {
        p.values.entry(attr).or_default().merge(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    /// A member renamed only in case (the group holds the old spelling)
    /// while another member changes: one value-level change adds the new
    /// spelling and removes the old; the directory takes them as one
    /// value, so the member left the group (an LDAP review).
    #[test]
    fn a_dn_added_and_removed_in_another_case_is_neither() {
        let mut d = ValueDelta {
            add: vec![s("cn=Nils SCHMIDT13,ou=Sales"), s("cn=Paul,ou=Sales")],
            remove: vec![s("cn=Nils Schmidt13, ou=sales"), s("cn=Old,ou=Sales")],
        };
        let gone = cancel_same_dns(&mut d);
        assert_eq!(d.add, vec![s("cn=Paul,ou=Sales")]);
        assert_eq!(d.remove, vec![s("cn=Old,ou=Sales")]);
        assert_eq!(gone.add, vec![s("cn=Nils SCHMIDT13,ou=Sales")]);
        assert_eq!(gone.remove, vec![s("cn=Nils Schmidt13, ou=sales")]);
    }
}
