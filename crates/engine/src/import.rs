//! Full and delta import: read the connected system batch by batch and stage
//! what changed as pending imports, one store transaction per batch; confirm
//! unconfirmed exports; on a full import, stage deletes for objects no longer
//! there; save the watermark in the same transaction as the last batch.

use crate::changes::{self, StepChanges};
use crate::crashpoint::crash_point;
use crate::history::{StepErrors, StepOutcome, clear_error, completed};
use crate::import_schema::FlowReads;
use crate::record_errors::{RecordError, RecordErrors};
use crate::rules::MaRules;
use crate::run::StepCtx;
use crate::values::{same_attributes, same_in, without_empty};
use autosync_connector::{ImportChange, ImportItem, ImportRecordError, ImportedObject};
use autosync_model::ValueOrder;
use autosync_model::{
    CsId, CsObject, ErrorStage, ExportKind, ImportCounters, ImportKind, ObjectError, PendingImport,
    RunStatus, StepCounters, Value, value::apply_changes,
};
use autosync_store::{CsFilter, StoreResult, StoreTxn};
use rustc_hash::FxHashSet;
use std::collections::HashMap;

/// Run an import step.
pub(crate) fn run(ctx: &StepCtx<'_>, full: bool) -> StoreResult<StepOutcome> {
    let mut imp = Importer {
        ctx,
        counters: ImportCounters::default(),
        errors: StepErrors::new(ctx.run_id, ctx.step_index, &ctx.ma.name, ErrorStage::Import),
        changes: StepChanges::new(ctx.run_id, ctx.step_index, &ctx.ma.name),
        seen: None,
        flow_reads: None,
        processed: 0,
        record_errors: RecordErrors::load(ctx.store(), &ctx.ma.name)?,
        max_value_size: usize::try_from(ctx.ma.max_value_size).unwrap_or(usize::MAX),
        read_whole: false,
        skipped: false,
        light: FxHashSet::default(),
    };
    let stopped = imp.stream(full)?;
    let processed = imp.processed;
    if !imp.skipped {
        let whole = imp.read_whole && stopped.is_none();
        imp.record_errors.save(ctx.store(), &ctx.ma.name, whole)?;
    }
    let (status, message) = match stopped {
        Some((status, message)) => (status, Some(message)),
        None if imp.counters.stage_failure > 0 => {
            // The watermark did not move past the failed records: the next
            // import reads them again (and anything after them).
            let (status, message) = crate::import_schema::settle(
                imp.flow_reads.as_ref(),
                &ctx.ma.name,
                completed(
                    imp.counters.stage_failure,
                    RunStatus::CompletedImportErrors,
                    processed,
                ),
            );
            let kept = format!(
                "{} record(s) could not be imported: the watermark stays where it was, so the next import reads them again",
                imp.counters.stage_failure
            );
            (
                status,
                Some(match message {
                    Some(m) => format!("{m}; {kept}"),
                    None => kept,
                }),
            )
        }
        None => crate::import_schema::settle(
            imp.flow_reads.as_ref(),
            &ctx.ma.name,
            completed(
                imp.counters.stage_failure,
                RunStatus::CompletedImportErrors,
                processed,
            ),
        ),
    };
    Ok(StepOutcome {
        status,
        counters: StepCounters::Import(imp.counters),
        errors: imp.errors.count,
        message,
    })
}

impl Importer<'_, '_> {
    /// Tell the run what is committed so far.
    fn committed(&self) {
        self.ctx.committed(
            StepCounters::Import(self.counters.clone()),
            self.errors.count,
        );
    }
}

struct Importer<'a, 'c> {
    ctx: &'a StepCtx<'c>,
    counters: ImportCounters,
    errors: StepErrors,
    /// The per-object changes recorded with the run.
    changes: StepChanges,
    /// CS objects seen by the import (a full one, or a delta stream that
    /// turns out complete).
    seen: Option<IdSet>,
    /// What a full read shows of the attributes import flows read.
    flow_reads: Option<FlowReads>,
    processed: u64,
    /// Errors of records that are no CS object.
    record_errors: RecordErrors,
    /// The MA's `max_value_size`.
    max_value_size: usize,
    /// A full import read the source to its end.
    read_whole: bool,
    /// The source was unchanged: nothing was read.
    skipped: bool,
    /// Anchors of this batch's objects read light (see `rows`).
    light: FxHashSet<String>,
}

type Stop = Option<(RunStatus, String)>;

/// A batch's connector-space objects by anchor: those found in the store
/// and those the batch adds.
type Existing = HashMap<String, CsObject>;

/// A set of CS ids as a bitmap (ids are dense and never reused: one bit
/// per id up to the highest seen, 125 KB per million).
#[derive(Default)]
struct IdSet(Vec<u64>);

impl IdSet {
    fn insert(&mut self, id: CsId) {
        let Ok(i) = usize::try_from(id) else { return };
        let word = i / 64;
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (i % 64);
    }

    fn contains(&self, id: &CsId) -> bool {
        usize::try_from(*id)
            .ok()
            .and_then(|i| self.0.get(i / 64).map(|w| w & (1 << (i % 64)) != 0))
            .unwrap_or(false)
    }
}

/// Ids per transaction when a full import looks for objects it did not see.
const DELETE_SCAN_PAGE: usize = 20_000;

impl<'c> Importer<'_, 'c> {
    /// Stream the connector's batches; `Some` when the step stopped.
    fn stream(&mut self, full: bool) -> StoreResult<Stop> {
        let ctx = self.ctx;
        let ma = ctx.ma.name.as_str();
        let mut connector = match ctx.connector() {
            Ok(c) => c,
            Err(e) => return Ok(Some((e.kind.status(), e.message))),
        };
        let watermark = ctx.store().read()?.watermark(ma)?;
        let delta_step = !full;
        let native_delta = connector.capabilities().delta_import;
        // A confirming import of a source without change tracking reads
        // back only what the export sent, when the connector can.
        let looked_up = match delta_step && !native_delta && ctx.opts.reason.confirming() {
            true if connector.looks_up() => crate::confirm::unconfirmed_anchors(ctx.store(), ma)?,
            _ => None,
        };
        let full = looked_up.is_none() && (full || !native_delta);
        let keep_watermark = looked_up.is_some();
        let opened = if let Some(anchors) = looked_up {
            tracing::info!(
                ma,
                objects = anchors.len(),
                "confirming import: reading back the objects the export sent"
            );
            connector.look_up(anchors)
        } else if full {
            // A full import step reads the source every time, so that its
            // errors are seen again; a delta import step may skip a source
            // its watermark shows unchanged.
            connector.full_import(watermark.as_deref().filter(|_| delta_step))
        } else {
            connector.delta_import(watermark.as_deref())
        };
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => return Ok(Some((e.kind.status(), e.message))),
        };
        if stream.unchanged() {
            tracing::info!(
                ma,
                "source unchanged since the last import: nothing to read"
            );
            self.skipped = true;
            return Ok(None);
        }
        // A delta stream may turn out complete (`ImportStream::complete`,
        // known once it has ended): what it held is tracked from the start.
        self.seen = Some(IdSet::default());
        if full {
            self.flow_reads = FlowReads::for_step(ctx);
        }
        let mut current = match stream.next_batch() {
            Ok(b) => b,
            Err(e) => return Ok(Some((e.kind.status(), e.message))),
        };
        loop {
            if ctx.cancelled() {
                return Ok(Some((
                    RunStatus::StoppedUserRequested,
                    "stopped by request".into(),
                )));
            }
            let Some(batch) = current else { break };
            // Look one batch ahead so the last batch carries the watermark.
            let next = stream.next_batch();
            let last = matches!(next, Ok(None));
            let mut txn = ctx.store().begin()?;
            self.stage_batch(txn.as_mut(), batch)?;
            self.errors.flush(txn.as_mut())?;
            self.changes.flush(txn.as_mut())?;
            // A complete stream saves its watermark with its deletes.
            if last
                && !full
                && !keep_watermark
                && self.counters.stage_failure == 0
                && !stream.complete()
            {
                txn.set_watermark(ma, stream.watermark().as_deref())?;
            }
            crash_point("import.batch.before-commit");
            txn.commit()?;
            crash_point("import.batch.committed");
            self.committed();
            ctx.advanced(self.processed);
            current = match next {
                Ok(b) => b,
                Err(e) => return Ok(Some((e.kind.status(), e.message))),
            };
        }
        if full || stream.complete() {
            if !full {
                tracing::info!(
                    ma,
                    "the delta import read every object: objects it did not see are staged for deletion"
                );
            }
            let watermark = stream.watermark();
            drop(stream);
            if let Some(stop) = self.stage_deletes(watermark.as_deref())? {
                return Ok(Some(stop));
            }
        } else if self.processed == 0 && !keep_watermark {
            // An empty stream: no batch carried the watermark.
            let mut txn = ctx.store().begin()?;
            txn.set_watermark(ma, stream.watermark().as_deref())?;
            txn.commit()?;
        }
        Ok(None)
    }

    fn stage_batch(&mut self, txn: &mut dyn StoreTxn, items: Vec<ImportItem>) -> StoreResult<()> {
        let ma = self.ctx.ma.name.as_str();
        let anchors: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Ok(o) => Some(o.anchor.as_str()),
                Err(e) => e.anchor.as_deref(),
            })
            .collect();
        // Value-level updates read their objects light (row attributes
        // not read: see `rows`), the others whole.
        let rows = self.ctx.engine.rules.rows.cs_of(ma);
        let is_values = |i: &ImportItem| matches!(i, Ok(o) if o.change == ImportChange::Update && !o.values.is_empty());
        let (found, light) = match rows {
            Some(_) if items.iter().any(is_values) => {
                let light: Vec<&str> = items
                    .iter()
                    .filter(|i| is_values(i))
                    .filter_map(|i| i.as_ref().ok().map(|o| o.anchor.as_str()))
                    .collect();
                let whole: Vec<&str> = anchors
                    .iter()
                    .copied()
                    .filter(|a| !light.contains(a))
                    .collect();
                let mut found = txn.cs_by_anchors(ma, &whole)?;
                let light_found = txn.cs_by_anchors_light(ma, &light)?;
                let names: FxHashSet<String> =
                    light_found.iter().map(|o| o.anchor.clone()).collect();
                found.extend(light_found);
                (found, names)
            }
            _ => (txn.cs_by_anchors(ma, &anchors)?, FxHashSet::default()),
        };
        self.light = light;
        // Room for the objects this batch adds too: the map never grows.
        let mut existing: Existing = HashMap::with_capacity(found.len() + items.len());
        existing.extend(found.into_iter().map(|o| (o.anchor.clone(), o)));
        if let Some(reads) = &mut self.flow_reads {
            reads.observe(&items);
        }
        for item in items {
            self.processed += 1;
            let item = item
                .and_then(|obj| self.within_size(obj))
                .and_then(|obj| self.write_only_in(obj));
            match item {
                Ok(obj) => {
                    // Only a change the history keeps costs anything.
                    let anchor = self.changes.wants().then(|| obj.anchor.clone());
                    let staged = self.counters.staged();
                    self.stage_object(txn, &mut existing, obj)?;
                    if let Some(anchor) = anchor
                        && self.counters.staged() > staged
                        && let Some(cs) = existing.get(&anchor)
                    {
                        self.record_change(cs);
                    }
                }
                Err(e) => self.record_failure(txn, &mut existing, e)?,
            }
        }
        Ok(())
    }

    /// The object, or a `value-too-large` error when a value (or its DN) is
    /// larger than the MA's `max_value_size`: a length compare per value.
    fn within_size(&self, obj: ImportedObject) -> Result<ImportedObject, ImportRecordError> {
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
    fn write_only_in(&self, mut obj: ImportedObject) -> Result<ImportedObject, ImportRecordError> {
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

    fn record_failure(
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

    fn stage_object(
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
    fn record_change(&mut self, cs: &CsObject) {
        let rules = self.rules();
        let rows = self.ctx.engine.rules.rows.cs_of(&self.ctx.ma.name);
        let order = |a: &str| cs_order(rules, a);
        if let Some(change) = changes::of_import(&self.changes, cs, rows, &order) {
            self.changes.push(change);
        }
    }

    /// A delete read from a delta import.
    fn stage_delete(&mut self, cs: &mut CsObject) -> bool {
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

    /// After a full import: stage deletes for objects it did not see, and
    /// save the watermark with the last page.
    fn stage_deletes(&mut self, watermark: Option<&str>) -> StoreResult<Stop> {
        let ctx = self.ctx;
        let ma = ctx.ma.name.as_str();
        let Some(seen) = self.seen.take() else {
            return Ok(None);
        };
        let mut after = 0;
        loop {
            if ctx.cancelled() {
                return Ok(Some((
                    RunStatus::StoppedUserRequested,
                    "stopped by request".into(),
                )));
            }
            // Read inside the transaction: a sync may be staging exports on
            // these objects concurrently.
            // Ids only: the objects seen (usually all of them) are not read.
            let mut txn = ctx.store().begin()?;
            let ids = txn.cs_page_ids(ma, CsFilter::All, after, DELETE_SCAN_PAGE)?;
            let last = ids.len() < DELETE_SCAN_PAGE;
            for id in ids {
                after = id;
                if seen.contains(&id) {
                    continue;
                }
                let Some(mut cs) = txn.cs_get(id)? else {
                    continue;
                };
                if cs.present && self.stage_delete(&mut cs) {
                    self.processed += 1;
                    if self.changes.wants() {
                        self.record_change(&cs);
                    }
                    txn.cs_update(&cs)?;
                }
            }
            if last && self.counters.stage_failure == 0 {
                txn.set_watermark(ma, watermark)?;
            }
            if last {
                crate::confirm::note_whole_read(txn.as_mut(), ma)?;
            }
            self.changes.flush(txn.as_mut())?;
            crash_point("import.deletes.before-commit");
            txn.commit()?;
            crash_point("import.deletes.committed");
            self.committed();
            if last {
                self.read_whole = true;
                return Ok(None);
            }
        }
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
