//! Staging one imported object: the pending import it becomes (a whole
//! object, a difference, a delete) and the errors it records (its checks
//! before: `admit`).

use crate::changes;
use crate::history::clear_error;
use crate::record_errors::RecordError;
use crate::rules::MaRules;
use crate::values::{same_attributes, same_in, without_empty};
use autosync_connector::{ImportChange, ImportRecordError, ImportedObject};
use autosync_model::dn::same_entry;
use autosync_model::{
    CsObject, ErrorStage, ExportKind, ImportKind, ObjectError, PendingImport, Value, ValueOrder,
    value::apply_changes,
};
use autosync_store::{StoreResult, StoreTxn};

use super::{Existing, Importer};

/// The warning of an object that does not hold what an export sent it.
const NOT_REIMPORTED: &str = "exported-change-not-reimported";

impl<'c> Importer<'_, 'c> {
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
                            &mut self.counters,
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
                                self.unchanged(cs);
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
        self.unchanged(cs);
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

    /// A delete read from a delta import, or of an object a full read did
    /// not see: whether `cs` changed (to be written).
    pub(super) fn stage_delete(&mut self, cs: &mut CsObject) -> bool {
        let known = cs.present || cs.unconfirmed_export.is_some() || cs.pending_import.is_some();
        let already = cs
            .pending_import
            .as_ref()
            .is_some_and(|p| p.kind == ImportKind::Delete);
        if !known || already {
            self.unchanged(cs);
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
    pub(super) fn rules(&self) -> Option<&'c MaRules> {
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
            let differ: Vec<&String> = unconfirmed
                .changes
                .iter()
                .filter(|(k, v)| !holds_sent(rules, k, attrs.get(*k), v.as_ref()))
                .map(|(k, _)| k)
                .collect();
            let values_match = unconfirmed.kind != ExportKind::Delete && differ.is_empty();
            let dn_matches = unconfirmed.kind != ExportKind::Rename
                || unconfirmed
                    .new_dn
                    .as_deref()
                    .is_some_and(|dn| same_entry(dn, &obj.dn));
            let altered = !values_match
                && dn_matches
                && unconfirmed.kind != ExportKind::Delete
                && unconfirmed.values.is_empty();
            // The export changed nothing of what differs: the system holds
            // what it held before (it was sent once more, and came back
            // altered the same way). A whole multi-valued attribute is not
            // kept (large groups go value by value): it is sent again.
            let stuck = altered
                && differ.iter().all(|k| {
                    holds_sent(rules, k, attrs.get(*k), cs.hologram.get(*k))
                        && !matches!(attrs.get(*k), Some(Value::Multi(_)))
                        && !matches!(unconfirmed.changes.get(*k), Some(Some(Value::Multi(_))))
                });
            // What the system did not take as sent.
            let kept = || -> autosync_model::AttrChanges {
                unconfirmed
                    .changes
                    .iter()
                    .filter(|(k, _)| differ.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            if altered && !stuck {
                // The system holds other values than were sent: MIM's
                // exported-change-not-reimported, a warning. Someone may
                // have changed it just after the export: the sync sends
                // the value once more.
                self.not_reimported(cs, &kept(), &attrs, true);
                force = true;
            } else if stuck {
                // Altered again, as sent again: the system changes or
                // refuses the value itself (a trigger, a server
                // normalising it). What it did not keep stays unconfirmed,
                // so the sync does not send it again (it would come back
                // altered every cycle: a loop) until the metaverse value
                // changes; the object says so at every import.
                let kept = kept();
                self.not_reimported(cs, &kept, &attrs, false);
                // What was confirmed is staged as read, below (the inbound
                // rules see it).
                cs.unconfirmed_export = Some(autosync_model::PendingExport {
                    kind: ExportKind::Update,
                    changes: kept,
                    new_dn: None,
                    values: Default::default(),
                });
                if let Some(dn) = &unconfirmed.new_dn {
                    cs.dn.clone_from(dn);
                }
            } else if values_match && dn_matches {
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
                    if cs.pending_import.is_none() && same_entry(&obj.dn, &cs.dn) {
                        // Confirmed, and nothing the inbound rules read
                        // changed; the DN kept in the system's spelling
                        // (OpenLDAP's `\2C` for the `\,` sent).
                        cs.hologram = attrs;
                        cs.dn = obj.dn;
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

    /// Values an export sent that the system does not hold (`kept`,
    /// against `held`, what it holds): an `exported-change-not-reimported`
    /// warning on the object and in the run, naming each attribute with
    /// both values (a write-only one without them).
    fn not_reimported(
        &mut self,
        cs: &mut CsObject,
        kept: &autosync_model::AttrChanges,
        held: &autosync_model::Attributes,
        again: bool,
    ) {
        self.counters.export_not_reimported += 1;
        let rules = self.rules();
        let show = |k: &str, v: Option<&Value>| -> String {
            if rules.is_some_and(|r| r.write_only.get(k).is_some()) {
                return "(write-only)".to_owned();
            }
            // A password a directory stores hashed comes back altered:
            // never shown.
            if autosync_model::secret::secret_name(k) {
                return "(secret)".to_owned();
            }
            match v {
                None => "(none)".to_owned(),
                Some(v) => {
                    let text = v.to_string();
                    match text.char_indices().nth(80) {
                        Some((at, _)) => format!("`{}…`", &text[..at]),
                        None => format!("`{text}`"),
                    }
                }
            }
        };
        let parts: Vec<String> = kept
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: sent {}, holds {}",
                    show(k, v.as_ref()),
                    show(k, held.get(k))
                )
            })
            .collect();
        let detail = if again {
            format!(
                "{} does not hold what its export sent ({}): changed since by someone else, or by the system itself; it is sent once more",
                self.ctx.ma.name,
                parts.join("; ")
            )
        } else {
            format!(
                "{} does not hold what its export sent, sent twice ({}): the system changes or refuses the value itself (a trigger, a server that normalises it); it is not sent again until the metaverse value changes; make the export flow give the value the system keeps",
                self.ctx.ma.name,
                parts.join("; ")
            )
        };
        let error = self.errors.push(&cs.anchor, NOT_REIMPORTED, detail);
        cs.error = Some(error);
    }

    /// Stage `attrs`/`dn` against what sync would see; `force` stages an
    /// update even when nothing differs from the hologram.
    ///
    /// A DN naming the stored one's entry in another spelling (`\2C` for
    /// `\,`, `CN=`: [`same_entry`]) is no rename: a directory returns its
    /// own spelling of what it was sent. The stored DN (or a pending
    /// rename's) takes it, written with the object so that the next
    /// import compares exactly; nothing is staged or counted for it.
    fn stage_difference(
        &mut self,
        cs: &mut CsObject,
        attrs: autosync_model::Attributes,
        dn: String,
        force: bool,
    ) -> bool {
        let pending_dn = cs.pending_import.as_mut().and_then(|p| p.dn.as_mut());
        let respelt =
            respell(&mut cs.dn, &dn) | pending_dn.is_some_and(|staged| respell(staged, &dn));
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
        let staged = match cs.pending_import.as_ref().map(|p| p.kind) {
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
                self.unchanged(cs);
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
        };
        staged || respelt
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
                self.counters.stage_values_removed += d.remove.len() as u64;
                values.insert(attr.clone(), d);
            }
        }
        (attrs, values)
    }
}

/// A partial update made whole against what sync would see of the object
/// (its pending import, else its hologram): the attributes it names
/// replaced, its value-level changes applied.
pub(super) fn whole_from_update(cs: &CsObject, mut obj: ImportedObject) -> ImportedObject {
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

/// Whether `stored` named the entry `read` names in another spelling
/// (see [`same_entry`]): then it takes `read`'s, the system's own.
fn respell(stored: &mut String, read: &str) -> bool {
    if stored != read && same_entry(stored, read) {
        read.clone_into(stored);
        return true;
    }
    false
}

/// How the values of CS attribute `attr` compare on this MA.
pub(super) fn cs_order(rules: Option<&MaRules>, attr: &str) -> ValueOrder {
    rules.map_or(ValueOrder::Unordered, |r| r.cs_order(attr))
}

/// Whether the system holds `sent` as attribute `attr` (`held`): a
/// reference by DN compares as a directory compares DNs (a server answers
/// `cn=Smith\2C Jr.` for the `cn=Smith\, Jr.` it was sent), as the sync
/// compares it.
pub(super) fn holds_sent(
    rules: Option<&MaRules>,
    attr: &str,
    held: Option<&Value>,
    sent: Option<&Value>,
) -> bool {
    let order = cs_order(rules, attr);
    same_in(held, sent, order)
        || rules.is_some_and(|r| r.by_dn(attr))
            && same_in(
                crate::values::dn_folded(held).as_ref(),
                crate::values::dn_folded(sent).as_ref(),
                order,
            )
}
