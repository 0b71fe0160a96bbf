//! Full and delta import: read the connected system batch by batch and stage
//! what changed as pending imports, one store transaction per batch; confirm
//! unconfirmed exports; on a full import, stage deletes for objects no longer
//! there; save the watermark in the same transaction as the last batch.

use crate::changes::StepChanges;
use crate::crashpoint::crash_point;
use crate::history::{StepErrors, StepOutcome, completed};
use crate::import_schema::FlowReads;
use crate::record_errors::RecordErrors;
use crate::run::StepCtx;
use autosync_connector::{ImportChange, ImportItem};
use autosync_model::{
    CsId, CsObject, ErrorStage, ImportCounters, ImportKind, RunStatus, StepCounters,
};
use autosync_store::{CsFilter, StoreResult, StoreTxn};
use rustc_hash::FxHashSet;
use std::collections::HashMap;

mod admit;
mod held;
mod pending_add;
mod stage;

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
        rebuilt: Default::default(),
        anchorless: 0,
        kept_absent: 0,
        held: held::under_hold(ctx)?,
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
    let message = match imp.kept_absent {
        0 => message,
        n => {
            let warning = format!(
                "{n} object(s) absent from this read were not deleted: {} record(s) could not be read and name no anchor (fix them and import again)",
                imp.anchorless
            );
            tracing::warn!(ma = %ctx.ma.name, "{warning}");
            Some(match message {
                Some(m) => format!("{m}; {warning}"),
                None => warning,
            })
        }
    };
    let (status, message) = match imp.counters.export_not_reimported {
        0 => (status, message),
        n => {
            let warning = format!(
                "{n} object(s) do not hold what an export sent them (exported-change-not-reimported): sent once more, then left as the system keeps it until the metaverse value changes; `autosync cs {} --errors` names them",
                ctx.ma.name
            );
            tracing::warn!(ma = %ctx.ma.name, "{warning}");
            let status = match status {
                RunStatus::Success => RunStatus::CompletedWarnings,
                other => other,
            };
            let message = match message {
                Some(m) => format!("{m}; {warning}"),
                None => warning,
            };
            (status, Some(message))
        }
    };
    Ok(StepOutcome {
        status,
        counters: StepCounters::Import(imp.counters),
        errors: imp.errors.count,
        message,
    })
}

impl Importer<'_, '_> {
    /// The counters so far into the run's record, in the transaction
    /// that commits what they count (see [`StepCtx::record_counters`]).
    fn record_counters(&self, txn: &mut dyn StoreTxn) -> StoreResult<()> {
        self.ctx.record_counters(
            txn,
            StepCounters::Import(self.counters.clone()),
            self.errors.count,
        )
    }

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
    /// What provisioning made before the connector space was deleted.
    rebuilt: crate::rebuilt::Rebuilt,
    /// Records read that could not be imported and name no anchor: any
    /// object absent from the read may be one of them, so none is deleted.
    anchorless: u64,
    /// Objects absent from a read with anchorless records, left as they
    /// are instead of deleted.
    kept_absent: u64,
    /// An earlier run's import holds the MA's syncs (staging threshold):
    /// what stays staged is counted against the hologram (`held`).
    held: bool,
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
        // A connector that makes its system when missing makes it only
        // when nothing was read from it or exported to it yet: lost after
        // that, made again empty, every object would be taken for deleted.
        connector.expect_existing(crate::export::held_already(ctx.store(), ma)?);
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
            // its watermark shows unchanged, unless exports wait for it to
            // confirm them (an export that found the file holding what it
            // sent left it as it was: read, it confirms them).
            let skippable = delta_step
                && ctx
                    .store()
                    .read()?
                    .cs_count(ma, CsFilter::UnconfirmedExport)?
                    == 0;
            connector.full_import(watermark.as_deref().filter(|_| skippable))
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
            if let Some(missing) = self
                .flow_reads
                .as_ref()
                .and_then(FlowReads::missing_from_schema)
            {
                tracing::error!(ma, "{missing}");
                return Ok(Some((RunStatus::StoppedConfiguration, missing)));
            }
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
            self.record_counters(txn.as_mut())?;
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
            if let Some(stop) = self.stage_deletes(watermark.as_deref(), full && !native_delta)? {
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
                Err(e) => {
                    if e.anchor.is_none() {
                        self.anchorless += 1;
                    }
                    self.record_failure(txn, &mut existing, e)?;
                }
            }
        }
        Ok(())
    }

    /// After a full import: stage deletes for objects it did not see, and
    /// save the watermark with the last page.
    /// `read_all`: a source without change tracking was read whole (its
    /// watermark is what it held, a file's fingerprint: see below).
    /// A read with a record it could not import and whose anchor it does
    /// not know (an unclosed quote, a line that is no JSON) cannot tell
    /// which absent object that record was: it deletes none of them
    /// (counted in `kept_absent`); once the record is fixed, a read stages
    /// the deletes of those truly gone.
    fn stage_deletes(&mut self, watermark: Option<&str>, read_all: bool) -> StoreResult<Stop> {
        let ctx = self.ctx;
        let ma = ctx.ma.name.as_str();
        let Some(seen) = self.seen.take() else {
            return Ok(None);
        };
        let keep_absent = self.anchorless > 0;
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
                if cs.present && keep_absent {
                    let staged = cs
                        .pending_import
                        .as_ref()
                        .is_some_and(|p| p.kind == ImportKind::Delete);
                    if !staged {
                        self.kept_absent += 1;
                    }
                    continue;
                }
                if !cs.present {
                    continue;
                }
                // Counted staged: new, or kept from a held import.
                let staged = self.counters.staged();
                let changed = self.stage_delete(&mut cs);
                if self.counters.staged() > staged {
                    self.processed += 1;
                    if self.changes.wants() {
                        self.record_change(&cs);
                    }
                }
                if changed {
                    txn.cs_update(&cs)?;
                }
            }
            if last && self.counters.stage_failure == 0 {
                txn.set_watermark(ma, watermark)?;
            } else if last && read_all {
                // Records failed: the connector space now holds what this
                // read staged (deletes of the objects after a cut line
                // included), which the old watermark (what the source held
                // at the import before) does not describe. Forgotten, so
                // that the next import reads the source whatever it holds:
                // the good file put back is read, not skipped as unchanged.
                // (A change stream's position stays: read again from it,
                // the stream gives the same changes.)
                txn.set_watermark(ma, None)?;
            }
            // Not when deletes were skipped: a confirming import that
            // looked up only the objects it exported would never stage
            // them; reading the source whole, it does once it is fixed.
            if last && !keep_absent {
                crate::confirm::note_whole_read(txn.as_mut(), ma)?;
            }
            self.changes.flush(txn.as_mut())?;
            self.record_counters(txn.as_mut())?;
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
