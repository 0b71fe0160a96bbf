//! Staging one imported object: its checks (value sizes, write-only
//! attributes), the pending import it becomes (a whole object, a
//! difference, a delete) and the errors it records.

use crate::changes;
use crate::history::clear_error;
use crate::record_errors::RecordError;
use crate::rules::MaRules;
use crate::values::{same_attributes, same_in, without_empty};
use autosync_connector::{ImportChange, ImportRecordError, ImportedObject};
use autosync_model::{
    AttrChanges, Attributes, CsObject, ErrorStage, ExportKind, ImportKind, ObjectError,
    PendingExport, PendingImport, Value, ValueOrder, value::apply_changes,
};
use autosync_store::{StoreResult, StoreTxn};

use super::{Existing, Importer};

impl<'c> Importer<'_, 'c> {
    /// The object, or a `value-too-large` error when a value (or its DN) is
    /// larger than the MA's `max_value_size`: a length compare per value.
    pub(super) fn within_size(
        &self,
        obj: ImportedObject,
    ) -> Result<ImportedObject, ImportRecordError> {
        fn size(v: &Value) -> usize {
            match v {
                Value::String(s) => s.len(),
                Value::Binary(b) => b.len(),
                Value::Multi(vs) => vs.iter().map(size).max().unwrap_or(0),
                Value::Integer(_) | Value::Boolean(_) | Value::Reference(_) => 0,
            }
        }
        let max = self.max_value_size;
        // The label is built only for a value found too large: this runs
        // for every attribute of every imported object.
        let too_large = obj
            .attributes
            .iter()
            .find_map(|(name, v)| {
                let n = size(v);
                (n > max).then(|| (n, format!("attribute `{name}`")))
            })
            .or_else(|| {
                obj.values.iter().find_map(|(name, d)| {
                    let n = d.add.iter().map(size).max().unwrap_or(0);
                    (n > max).then(|| (n, format!("attribute `{name}`")))
                })
            })
            .or_else(|| {
                (obj.dn.len() > max).then(|| (obj.dn.len(), "the display key (DN)".into()))
            });
        let Some((bytes, what)) = too_large else {
            return Ok(obj);
        };
        let anchor_len = obj.anchor.len();
        let anchor = (anchor_len <= max).then_some(obj.anchor);
        Err(ImportRecordError {
            location: match &anchor {
                Some(a) => format!("{} object {a:?}", self.ctx.ma.name),
                None => format!(
                    "{} object with an anchor of {anchor_len} bytes",
                    self.ctx.ma.name
                ),
            },
            anchor,
            error_type: "value-too-large".to_owned(),
            detail: format!(
                "{what} holds a value of {bytes} bytes, more than the MA's max_value_size of {max} bytes"
            ),
        })
    }

    /// The object with its write-only attributes dropped and its sealed
    /// ones sealed (`write_only`); a store key that cannot be read makes
    /// it a record error.
    pub(super) fn write_only_in(
        &self,
        mut obj: ImportedObject,
    ) -> Result<ImportedObject, ImportRecordError> {
        let Some(rules) = self.rules() else {
            return Ok(obj);
        };
        match rules
            .write_only
            .on_import(&self.ctx.engine.rules.secrets, &mut obj)
        {
            Ok(()) => Ok(obj),
            Err(detail) => Err(ImportRecordError {
                location: format!("{} object {:?}", self.ctx.ma.name, obj.anchor),
                anchor: Some(obj.anchor),
                error_type: "secret-key-unavailable".to_owned(),
                detail,
            }),
        }
    }

    pub(super) fn record_failure(
        &mut self,
        txn: &mut dyn StoreTxn,
        existing: &mut Existing,
        e: ImportRecordError,
    ) -> StoreResult<()> {
        self.counters.stage_failure += 1;
        let object = e.anchor.as_deref().unwrap_or(&e.location);
        let error = self.errors.push(
            object,
            &e.error_type,
            format!("{}: {}", e.location, e.detail),
        );
        if let Some(cs) = e.anchor.as_ref().and_then(|a| existing.get_mut(a)) {
            // The object is still there, only unreadable: never delete it.
            if let Some(seen) = &mut self.seen {
                seen.insert(cs.id);
            }
            self.record_errors.staged(&cs.anchor);
            cs.error = Some(error);
            txn.cs_update(cs)?;
        } else {
            // No object to keep the error on: the MA's list keeps it.
            self.record_errors.push(RecordError {
                anchor: e.anchor,
                location: e.location,
                error: ObjectError {
                    detail: e.detail,
                    ..error
                },
            });
        }
        Ok(())
    }

    pub(super) fn stage_object(
        &mut self,
        txn: &mut dyn StoreTxn,
        existing: &mut Existing,
        obj: ImportedObject,
    ) -> StoreResult<()> {
        let ma = self.ctx.ma.name.as_str();
        if obj.change == ImportChange::Update && obj.attributes.is_empty() && obj.values.is_empty()
        {
            return self.stage_present(txn, existing, obj);
        }
        self.record_errors.staged(&obj.anchor);
        let Some(cs) = existing.get_mut(&obj.anchor) else {
            if obj.change == ImportChange::Delete {
                self.counters.stage_no_change += 1;
                return Ok(());
            }
            // An update of an object never seen: what it says is all there is.
            let obj = if obj.change == ImportChange::Update {
                whole_from_update(&CsObject::new(ma, "", "", ""), obj)
            } else {
                obj
            };
            // The object's texts are moved in, not copied (the anchor also
            // keys `existing`).
            let mut cs = CsObject::new(ma, "", "", "");
            cs.anchor = obj.anchor.clone();
            cs.dn = obj.dn;
            cs.object_type = obj.object_type;
            cs.present = true;
            cs.pending_import = Some(PendingImport {
                values: Default::default(),
                kind: ImportKind::Add,
                attributes: without_empty(obj.attributes),
                dn: None,
                object_type: None,
            });
            txn.cs_insert(&mut cs)?;
            if let Some(seen) = &mut self.seen {
                seen.insert(cs.id);
            }
            self.counters.stage_add += 1;
            existing.insert(obj.anchor, cs);
            return Ok(());
        };
        if let Some(seen) = &mut self.seen {
            seen.insert(cs.id);
        }
        if obj.change != ImportChange::Update && self.light.remove(&obj.anchor) {
            // Read light for an update earlier in the batch: whole now.
            if let Some(whole) = txn.cs_get(cs.id)? {
                *cs = whole;
            }
        }
        if obj.change != ImportChange::Delete && self.foreign_before_add(txn, cs, &obj)? {
            txn.cs_update(cs)?;
            return Ok(());
        }
        let changed = match obj.change {
            ImportChange::Delete => self.stage_delete(cs),
            ImportChange::Full => self.stage_full(cs, obj),
            ImportChange::Update => {
                if self.light.contains(&obj.anchor) {
                    let rows = self.ctx.engine.rules.rows.cs_of(ma);
                    let staged = match rows {
                        Some(rows) => crate::rows::stage_update(
                            txn,
                            rows,
                            cs,
                            &obj.attributes,
                            &obj.values,
                            &mut self.counters.stage_values,
                        )?,
                        None => Err(()),
                    };
                    match staged {
                        Ok(changed) => {
                            if changed {
                                clear_error(cs, ErrorStage::Import);
                                self.counters.stage_update += 1;
                                txn.cs_update(cs)?;
                            } else {
                                self.counters.stage_no_change += 1;
                            }
                            return Ok(());
                        }
                        Err(()) => {
                            // The ordinary way, on the object read whole.
                            self.light.remove(&obj.anchor);
                            if let Some(whole) = txn.cs_get(cs.id)? {
                                *cs = whole;
                            }
                        }
                    }
                }
                let whole = whole_from_update(cs, obj);
                self.stage_full(cs, whole)
            }
        };
        if changed {
            txn.cs_update(cs)?;
        }
        Ok(())
    }

    /// An `Update` naming nothing: the object is there, unchanged. Seen;
    /// nothing staged. The connector space lacking it is a record error:
    /// only a full import can read it.
    fn stage_present(
        &mut self,
        txn: &mut dyn StoreTxn,
        existing: &mut Existing,
        obj: ImportedObject,
    ) -> StoreResult<()> {
        let Some(cs) = existing.get(&obj.anchor) else {
            let location = format!("{} object {:?}", self.ctx.ma.name, obj.anchor);
            return self.record_failure(
                txn,
                existing,
                ImportRecordError {
                    anchor: Some(obj.anchor),
                    location,
                    error_type: "unknown-object".into(),
                    detail: "the source says it is there and unchanged, but the connector space does not have it: run a full import to read it".into(),
                },
            );
        };
        self.record_errors.staged(&obj.anchor);
        if let Some(seen) = &mut self.seen {
            seen.insert(cs.id);
        }
        self.counters.stage_no_change += 1;
        Ok(())
    }

    /// Record the change staged on `cs` in the run's history.
    pub(super) fn record_change(&mut self, cs: &CsObject) {
        let rules = self.rules();
        let rows = self.ctx.engine.rules.rows.cs_of(&self.ctx.ma.name);
        let order = |a: &str| cs_order(rules, a);
        if let Some(change) = changes::of_import(&self.changes, cs, rows, &order) {
            self.changes.push(change);
        }
    }

    /// A delete read from a delta import.
    pub(super) fn stage_delete(&mut self, cs: &mut CsObject) -> bool {
        let known = cs.present || cs.unconfirmed_export.is_some() || cs.pending_import.is_some();
        let already = cs
            .pending_import
            .as_ref()
            .is_some_and(|p| p.kind == ImportKind::Delete);
        if !known || already {
            self.counters.stage_no_change += 1;
            return false;
        }
        cs.pending_import = Some(PendingImport {
            values: Default::default(),
            kind: ImportKind::Delete,
            attributes: Default::default(),
            dn: None,
            object_type: None,
        });
        self.counters.stage_delete += 1;
        true
    }

    /// The compiled rules of this step's MA.
    fn rules(&self) -> Option<&'c MaRules> {
        self.ctx.engine.rules.mas.get(self.ctx.ma_index)
    }

    /// The complete current state of an object already in the CS.
    fn stage_full(&mut self, cs: &mut CsObject, obj: ImportedObject) -> bool {
        let mut attrs = without_empty(obj.attributes);
        if let Some(rules) = self.rules() {
            // What was set of write-only attributes stands for them: never
            // read, never compared.
            rules.write_only.with_markers(cs, &mut attrs);
        }
        let mut changed = clear_error(cs, ErrorStage::Import);
        if !cs.present {
            self.found_before_add(cs, &attrs, &obj.dn);
            cs.present = true;
            changed = true;
        }
        let staged_type = cs
            .pending_import
            .as_ref()
            .and_then(|p| p.object_type.as_deref())
            .unwrap_or(&cs.object_type);
        if obj.object_type != staged_type {
            cs.pending_import = Some(PendingImport {
                values: Default::default(),
                kind: ImportKind::DeleteAdd,
                attributes: attrs,
                dn: Some(obj.dn),
                object_type: Some(obj.object_type),
            });
            cs.unconfirmed_export = None;
            self.counters.stage_delete_add += 1;
            return true;
        }
        // Confirming import: was the unconfirmed export applied as sent?
        let mut force = false;
        let rules = self.rules();
        if let Some(unconfirmed) = cs.unconfirmed_export.take() {
            changed = true;
            let values_match = unconfirmed.kind != ExportKind::Delete
                && unconfirmed
                    .changes
                    .iter()
                    .all(|(k, v)| same_in(attrs.get(k), v.as_ref(), cs_order(rules, k)));
            let dn_matches = unconfirmed.kind != ExportKind::Rename
                || unconfirmed.new_dn.as_deref() == Some(obj.dn.as_str());
            if values_match && dn_matches {
                self.counters.export_confirmed += 1;
                // Compared with what inbound rules last saw (the hologram
                // before the export): exported values they read must sync.
                let reads = rules.map(|m| &m.inbound_reads);
                let nothing_to_sync = match reads {
                    Some(Some(names)) => names
                        .iter()
                        .all(|n| same_in(attrs.get(n), cs.hologram.get(n), cs_order(rules, n))),
                    _ => false,
                };
                if nothing_to_sync {
                    apply_changes(&mut cs.hologram, &unconfirmed.changes);
                    if let Some(dn) = &unconfirmed.new_dn {
                        cs.dn.clone_from(dn);
                    }
                    if cs.pending_import.is_none() && obj.dn == cs.dn {
                        // Confirmed, and nothing the inbound rules read changed.
                        cs.hologram = attrs;
                        return true;
                    }
                }
            } else {
                // The system stored something else: let sync look again.
                force = true;
            }
        }
        changed | self.stage_difference(cs, attrs, obj.dn, force)
    }

    /// Whether the system's object under the anchor of an add provisioning
    /// staged (never confirmed) is another's: it holds other values than
    /// the add sends, and the MA's join rules do not join it to the
    /// add's metaverse object (a namesake's account under the username
    /// provisioning gives). It is left as it is and not read (the
    /// connector space holds one object per anchor: the add's); the add
    /// stays pending, with an error that says why, and fails again
    /// (`already-exists`) until the account or the anchor changes. An MA
    /// without join rules takes the anchor for the object's identity (the
    /// add becomes an update, as in MIM).
    fn foreign_before_add(
        &mut self,
        txn: &mut dyn StoreTxn,
        cs: &mut CsObject,
        obj: &ImportedObject,
    ) -> StoreResult<bool> {
        if cs.present
            || cs.unconfirmed_export.is_some()
            || !cs
                .pending_export
                .as_ref()
                .is_some_and(|p| p.kind == ExportKind::Add)
        {
            return Ok(false);
        }
        let Some(rules) = self.rules().filter(|r| !r.joins.is_empty()) else {
            return Ok(false);
        };
        let Some(mv_id) = cs.connection.mv_id() else {
            return Ok(false);
        };
        let whole = match obj.change {
            ImportChange::Update => whole_from_update(cs, obj.clone()),
            _ => obj.clone(),
        };
        let attrs = without_empty(whole.attributes);
        let replay = cs.pending_export.as_ref().is_some_and(|add| {
            add.changes.iter().all(|(k, v)| {
                rules.write_only.get(k).is_some()
                    || same_in(attrs.get(k.as_str()), v.as_ref(), cs_order(Some(rules), k))
            })
        }) && autosync_model::dn::same_dn(&cs.dn, &whole.dn);
        if replay {
            return Ok(false);
        }
        let Some(mv) = txn.mv_get(mv_id)? else {
            return Ok(false);
        };
        let mut x = CsObject::new(&cs.ma, &cs.anchor, &whole.dn, &whole.object_type);
        x.hologram = attrs;
        let joins = match crate::sync::joins_to(txn, rules, &x, &mv) {
            Ok(joins) => joins,
            Err(crate::sync::Fail::Store(e)) => return Err(e),
            Err(crate::sync::Fail::Object { .. }) => false,
        };
        if joins {
            return Ok(false);
        }
        self.counters.stage_failure += 1;
        let detail = format!(
            "{} has an object with anchor `{}` that this MA's join rules do not join to metaverse object {mv_id}, which provisioning made this add for: another's (a namesake's account under the anchor provisioning gives); it is left as it is and not read, and the add stays pending: remove or rename that object, or give provisioning another anchor",
            self.ctx.ma.name, cs.anchor
        );
        let error = self.errors.push(&cs.anchor, "already-exists", detail);
        cs.error = Some(error);
        if let Some(seen) = &mut self.seen {
            seen.insert(cs.id);
        }
        Ok(true)
    }

    /// An object provisioning made in the connector space, whose add the
    /// system never confirmed, read from the system: either this add,
    /// applied before the store could record it (a crash between the two:
    /// every value it sends is there), which the confirming below takes as
    /// sent; or an object that was there before the add (an account made
    /// before autosync, under the anchor provisioning gives), which the
    /// connector refused to overwrite (`already-exists`). That one is the
    /// system's own: the add becomes an update of the values that differ,
    /// and the object is joined, not taken over (never deprovisioned,
    /// unless the provisioning rule says `adopt`).
    fn found_before_add(&mut self, cs: &mut CsObject, attrs: &Attributes, dn: &str) {
        if cs.unconfirmed_export.is_some()
            || !cs
                .pending_export
                .as_ref()
                .is_some_and(|p| p.kind == ExportKind::Add)
        {
            return;
        }
        let Some(add) = cs.pending_export.take() else {
            return;
        };
        let rules = self.rules();
        let adopt = rules.is_some_and(|r| {
            r.provisioning
                .iter()
                .any(|p| p.adopt && p.object_type == cs.object_type)
        });
        let same =
            |k: &str, v: &Option<Value>| same_in(attrs.get(k), v.as_ref(), cs_order(rules, k));
        // A write-only value (a password) is never read back: not compared.
        let readable = |k: &str| rules.is_none_or(|r| r.write_only.get(k).is_none());
        let same_dn = autosync_model::dn::same_dn(&cs.dn, dn);
        if same_dn && add.changes.iter().all(|(k, v)| !readable(k) || same(k, v)) {
            cs.unconfirmed_export = Some(add);
            return;
        }
        self.counters.export_add_existing += 1;
        cs.provisioned = adopt;
        // What only a new object gets (initial-only flows, write-only
        // values) is not sent to an object that was there, unless the rule
        // takes it over.
        let differ: AttrChanges = add
            .changes
            .iter()
            .filter(|(k, v)| {
                let new_only = rules.is_some_and(|r| new_only(r, &cs.object_type, k));
                if new_only && !adopt {
                    return false;
                }
                !readable(k) || !same(k, v)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        clear_error(cs, ErrorStage::Export);
        let kind = if same_dn {
            ExportKind::Update
        } else {
            ExportKind::Rename
        };
        cs.pending_export = (!differ.is_empty() || !same_dn).then(|| PendingExport {
            kind,
            changes: differ,
            new_dn: (!same_dn).then(|| cs.dn.clone()),
            values: Default::default(),
        });
    }

    /// Stage `attrs`/`dn` against what sync would see; `force` stages an
    /// update even when nothing differs from the hologram.
    fn stage_difference(
        &mut self,
        cs: &mut CsObject,
        attrs: autosync_model::Attributes,
        dn: String,
        force: bool,
    ) -> bool {
        let dn_changed = dn != cs.dn;
        let rules = self.rules();
        let order = |k: &str| cs_order(rules, k);
        let back_to_hologram =
            !force && !dn_changed && same_attributes(&attrs, &cs.hologram, order);
        let same_as_pending = cs.pending_import.as_ref().is_some_and(|p| {
            p.kind != ImportKind::Delete
                && same_attributes(&attrs, &p.attributes, order)
                && p.dn.as_deref().unwrap_or(&cs.dn) == dn
        });
        match cs.pending_import.as_ref().map(|p| p.kind) {
            None if back_to_hologram => {
                self.counters.stage_no_change += 1;
                false
            }
            Some(ImportKind::Update | ImportKind::Delete) if back_to_hologram => {
                cs.pending_import = None;
                // What a sync failed on was that change, which is gone.
                clear_error(cs, ErrorStage::Sync);
                self.counters.stage_no_change += 1;
                true
            }
            Some(_) if same_as_pending && !force => {
                self.counters.stage_no_change += 1;
                false
            }
            Some(kind @ (ImportKind::Add | ImportKind::DeleteAdd)) => {
                // Not yet synchronised: still an add, with the new state.
                let object_type = cs
                    .pending_import
                    .as_mut()
                    .and_then(|p| p.object_type.take());
                if kind == ImportKind::Add {
                    cs.dn = dn.clone();
                }
                cs.pending_import = Some(PendingImport {
                    values: Default::default(),
                    kind,
                    attributes: attrs,
                    dn: (kind == ImportKind::DeleteAdd).then_some(dn),
                    object_type,
                });
                self.counters.stage_update += 1;
                true
            }
            _ => {
                if dn_changed {
                    self.counters.stage_rename += 1;
                } else {
                    self.counters.stage_update += 1;
                }
                let (attributes, values) = self.as_values(cs, attrs);
                cs.pending_import = Some(PendingImport {
                    values,
                    kind: ImportKind::Update,
                    attributes,
                    dn: dn_changed.then_some(dn),
                    object_type: None,
                });
                true
            }
        }
    }

    /// An update's row attributes (see `rows`) as the values added and
    /// removed against the hologram (read whole), so that the sync and the
    /// export can take them value by value; any other attribute whole.
    fn as_values(
        &mut self,
        cs: &CsObject,
        mut attrs: autosync_model::Attributes,
    ) -> (autosync_model::Attributes, autosync_model::ValueChanges) {
        let mut values = autosync_model::ValueChanges::new();
        let Some(rows) = self.ctx.engine.rules.rows.cs_of(&self.ctx.ma.name) else {
            return (attrs, values);
        };
        let listed = |v: Option<&Value>| v.is_none_or(|v| matches!(v, Value::Multi(_)));
        for attr in rows {
            let (old, new) = (cs.hologram.get(attr), attrs.get(attr));
            if (old.is_none() && new.is_none()) || !listed(old) || !listed(new) {
                continue;
            }
            let d = autosync_model::ValueDelta::between(old, new);
            attrs.remove(attr);
            if !d.is_empty() {
                self.counters.stage_values += (d.add.len() + d.remove.len()) as u64;
                values.insert(attr.clone(), d);
            }
        }
        (attrs, values)
    }
}

/// A partial update made whole against what sync would see of the object
/// (its pending import, else its hologram): the attributes it names
/// replaced, its value-level changes applied.
fn whole_from_update(cs: &CsObject, mut obj: ImportedObject) -> ImportedObject {
    let mut attrs = match &cs.pending_import {
        Some(p) if p.kind != ImportKind::Delete => {
            let mut a = p.attributes.clone();
            for (name, d) in &p.values {
                match d.apply_to(cs.hologram.get(name)) {
                    Some(v) => a.insert(name.clone(), v),
                    None => a.remove(name),
                };
            }
            a
        }
        Some(_) => Default::default(),
        None => cs.hologram.clone(),
    };
    attrs.append(&mut obj.attributes);
    for (name, d) in std::mem::take(&mut obj.values) {
        match d.apply_to(attrs.get(&name)) {
            Some(v) => attrs.insert(name, v),
            None => attrs.remove(&name),
        };
    }
    obj.attributes = attrs;
    obj.change = ImportChange::Full;
    obj
}

/// How the values of CS attribute `attr` compare on this MA.
fn cs_order(rules: Option<&MaRules>, attr: &str) -> ValueOrder {
    rules.map_or(ValueOrder::Unordered, |r| r.cs_order(attr))
}

/// Whether attribute `attr` of an object of type `object_type` is only a
/// new object's: write-only (a password; never read back), or written by
/// initial-only flows alone.
fn new_only(rules: &MaRules, object_type: &str, attr: &str) -> bool {
    if rules.write_only.get(attr).is_some() {
        return true;
    }
    let mut flows = rules.outbound.iter().filter(|f| {
        f.cs_attr.eq_ignore_ascii_case(attr)
            && f.object_type.as_deref().is_none_or(|t| t == object_type)
    });
    let mut any = false;
    let all_initial = flows.all(|f| {
        any = true;
        f.initial_only
    });
    any && all_initial
}
