//! Export: send pending exports to the connected system in batches, check
//! the deletion threshold first, and record each object's outcome (applied:
//! the pending export becomes unconfirmed; failed: a per-object error, the
//! pending export kept for the next run). Outcomes are recorded after each
//! batch when the connector makes batches durable, else after its commit.
//! Reading the next page, sending the current one and recording the
//! previous one's outcomes run on three threads (two cores): a crash between
//! sending a batch and recording it replays that batch, as it always could.

use crate::changes::{self, StepChanges};
use crate::crashpoint::crash_point;
use crate::history::{StepErrors, StepOutcome, completed};
use crate::run::{PAGE, StepCtx};
use autosync_connector::{ExportChange, ExportOutcome};
use autosync_model::{
    CsId, ErrorStage, ExportCounters, ExportKind, PendingExport, RunChange, RunStatus, StepCounters,
};
use autosync_store::{CsFilter, StoreResult};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

pub(crate) mod held;
mod hold;
pub mod in_flight;
mod pages;
mod record;

use pages::{Batch, Pages, read_pages};
use record::Recorder;

/// One object sent: its id, a fingerprint of the pending export sent (to
/// notice a sync that changed it meanwhile), its kind and the outcome.
struct Sent {
    id: CsId,
    fingerprint: u64,
    kind: ExportKind,
    /// Values sent as value-level changes.
    values: u64,
    /// `None` for the common case, applied with no new anchor (kept small:
    /// a non-durable export holds one of these per object until commit).
    outcome: Option<Box<ExportOutcome>>,
    /// What was sent, for the run's history (applied changes up to the
    /// cap; `None` past it).
    change: Option<Box<RunChange>>,
    /// The value-level changes sent as whole values (to a connector that
    /// takes none), for the history.
    made_whole: Option<Box<autosync_model::ValueChanges>>,
    /// The reference values held back (see `hold`).
    held: Option<Box<hold::Held>>,
}

const APPLIED: ExportOutcome = ExportOutcome::Applied { anchor: None };

/// Compared only within one export (never stored), so a fast hash does:
/// SipHash over every value, twice per object, was a twelfth of an export.
fn fingerprint(p: &PendingExport) -> u64 {
    let mut h = FxHasher::default();
    std::mem::discriminant(&p.kind).hash(&mut h);
    p.changes.hash(&mut h);
    p.new_dn.hash(&mut h);
    for (attr, d) in &p.values {
        attr.hash(&mut h);
        d.add.hash(&mut h);
        d.remove.hash(&mut h);
    }
    h.finish()
}

/// The DNs of an MA's joined objects the system has (not an add still to
/// be sent), folded as directories compare them, with their anchors: read
/// once per export, when an add of a DN first fails (two people given one
/// DN: the value that spells it names the one the system has).
#[derive(Default)]
struct DnsThere(Option<std::collections::HashMap<String, Vec<String>>>);

impl DnsThere {
    /// The anchors of the objects of `ma` other than the one with anchor
    /// `anchor` that have DN `dn` (folded) in the system already. A read
    /// that fails says none: the value waits for the next export.
    fn others(
        &mut self,
        store: &dyn autosync_store::Store,
        ma: &str,
        dn: &str,
        anchor: &str,
    ) -> Vec<String> {
        if self.0.is_none() {
            self.0 = store
                .read()
                .and_then(|mut read| held::dns_taken(read.as_mut(), ma))
                .ok();
        }
        self.0
            .as_ref()
            .and_then(|m| m.get(dn))
            .map(|anchors| anchors.iter().filter(|a| *a != anchor).cloned().collect())
            .unwrap_or_default()
    }
}

/// An export cut short after renames went: the pending exports of `ma`
/// not sent name the entries by the DNs those renames gave (see
/// `Holds::respell`). Each object is read again in the transaction that
/// writes it (a sync may stage changes to it meanwhile).
fn respell_pending(ctx: &StepCtx<'_>, ma: &str, holds: &hold::Holds) -> StoreResult<()> {
    let store = ctx.store();
    let mut after = 0;
    loop {
        let page = store
            .read()?
            .cs_page_light(ma, CsFilter::PendingExport, after, PAGE)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id;
        let mut txn = store.begin()?;
        for id in page.iter().map(|o| o.id) {
            let Some(mut o) = txn.cs_get(id)? else {
                continue;
            };
            let Some(p) = o.pending_export.as_mut() else {
                continue;
            };
            if holds.respell(p) {
                if p.kind == ExportKind::Update
                    && p.changes.is_empty()
                    && p.values.is_empty()
                    && p.new_dn.is_none()
                {
                    o.pending_export = None;
                }
                txn.cs_update(&o)?;
            }
        }
        txn.commit()?;
    }
}

/// Whether the metaverse object of the MA's object with anchor `referrer`
/// refers, in what an export flow into CS attribute `attr` reads, to the
/// metaverse object of one of the MA's objects `anchors` (see
/// `held::refers_to`). Read only when such an add failed.
fn refers_to(
    ctx: &StepCtx<'_>,
    referrer: &str,
    attr: &str,
    anchors: &[String],
) -> StoreResult<bool> {
    let mut read = ctx.store().read()?;
    let Some(o) = read.cs_by_anchor(&ctx.ma.name, referrer)? else {
        return Ok(false);
    };
    let anchors: Vec<&str> = anchors.iter().map(String::as_str).collect();
    held::refers_to(read.as_mut(), ctx.ma, &o, attr, &anchors)
}

pub(crate) fn run(ctx: &StepCtx<'_>) -> StoreResult<StepOutcome> {
    let mut exp = Exporter {
        ctx,
        counters: ExportCounters::default(),
        errors: StepErrors::new(ctx.run_id, ctx.step_index, &ctx.ma.name, ErrorStage::Export),
        processed: 0,
    };
    let stop = exp.export()?;
    // References waited for the adds and renames this export sent.
    let c = &exp.counters;
    if ctx.engine.rules.has_refs && c.adds + c.delete_adds + c.renames + c.updates > 0 {
        exp.counters.references_ready +=
            ctx.store().read()?.ref_out_sendable_count(&ctx.ma.name)?;
    }
    let (status, message) = match stop {
        Some((s, m)) => (s, Some(m)),
        None => (
            completed(
                exp.counters.failures,
                RunStatus::CompletedExportErrors,
                exp.processed,
            ),
            None,
        ),
    };
    Ok(StepOutcome {
        status,
        counters: StepCounters::Export(exp.counters),
        errors: exp.errors.count,
        message,
    })
}

struct Exporter<'a, 'c> {
    ctx: &'a StepCtx<'c>,
    counters: ExportCounters,
    errors: StepErrors,
    processed: u64,
}

type Stop = Option<(RunStatus, String)>;

impl Exporter<'_, '_> {
    fn export(&mut self) -> StoreResult<Stop> {
        if let Some(stop) = crate::thresholds::check_export_deletions(self.ctx)? {
            return Ok(Some(stop));
        }
        let ctx = self.ctx;
        let mut connector = match ctx.connector() {
            Ok(c) => c,
            Err(e) => return Ok(Some((e.kind.status(), e.message))),
        };
        // The row attributes the connector takes value-level changes of.
        let rows = ctx.engine.rules.rows.cs_of(&ctx.ma.name);
        let connector_values: Vec<String> = rows
            .map(|r| {
                r.iter()
                    .filter(|a| connector.takes_values(a))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        // What the system holds already: objects with nothing to send
        // (whether there are any: counting every object of a large MA took
        // tens of milliseconds, the cost of a one-object export).
        connector.expect_existing(held_already(ctx.store(), &ctx.ma.name)?);
        let mut session = match connector.begin_export() {
            Ok(s) => s,
            Err(e) => return Ok(Some((e.kind.status(), e.message))),
        };
        let durable = session.durable_per_batch();
        let store = ctx.store();
        let ma = ctx.ma.name.as_str();
        // Adds an earlier export may have sent without recording them.
        let mut adds_in_flight = in_flight::marked(store.read()?.as_mut(), ma)?;
        // Three stages on two cores: a reader thread reads and decodes the
        // next page while this thread sends the current one, and (when the
        // connector makes batches durable) a recorder thread records the
        // outcomes of the previous one. A crash between a batch's apply and
        // its record replays it, exactly as without the pipeline.
        let mut slot = Some(Recorder {
            ctx,
            store,
            ma,
            counters: std::mem::take(&mut self.counters),
            errors: std::mem::replace(
                &mut self.errors,
                StepErrors::new(ctx.run_id, ctx.step_index, ma, ErrorStage::Export),
            ),
            changes: Vec::new(),
            recorded: 0,
        });
        // References to this MA's own objects, held back while the add or
        // rename that gives the name they spell is not sent.
        let mut holds = hold::Holds::new(own_references(ctx));
        let mut dns_there = DnsThere::default();
        let no_ranks = rustc_hash::FxHashMap::default();
        let ranks = ctx
            .engine
            .rules
            .mas
            .get(ctx.ma_index)
            .map_or(&no_ranks, |r| &r.export_ranks);
        // Counts the changes the history records (up to its cap): only
        // those are built.
        let mut history = StepChanges::new(ctx.run_id, ctx.step_index, ma);
        let processed = &mut self.processed;
        // Small at first: the size grows while pages go fast (see
        // `pages::next_size`), so a slow connector's first pages do not
        // keep a cancel waiting.
        let page_size = std::sync::atomic::AtomicUsize::new(500);
        // A session that is not durable per batch applied what it was sent.
        let mut session_committed = false;
        let result = std::thread::scope(|scope| {
            let (page_tx, page_rx) = std::sync::mpsc::sync_channel::<StoreResult<Batch>>(1);
            let how = Pages {
                light: rows.is_some(),
                value_changes: &connector_values,
                ranks,
                size: &page_size,
            };
            scope.spawn(move || read_pages(store, ma, how, &page_tx));
            let recorder = match (durable, slot.take()) {
                (true, Some(mut rec)) => {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Sent>>(1);
                    let handle = scope.spawn(move || {
                        for sent in rx {
                            if let Err(e) = rec.record(&sent) {
                                return (Err(e), rec);
                            }
                        }
                        (Ok(()), rec)
                    });
                    Some((tx, handle))
                }
                (_, rec) => {
                    slot = rec;
                    None
                }
            };
            let (rec_tx, rec_handle) = match recorder {
                Some((tx, h)) => (Some(tx), Some(h)),
                None => (None, None),
            };
            let mut log: Vec<Sent> = Vec::new();
            let mut stop: Stop = None;
            let mut failed: Option<StoreResult<()>> = None;
            loop {
                if ctx.cancelled() {
                    stop = Some((RunStatus::StoppedUserRequested, "stopped by request".into()));
                    break;
                }
                let (changes, mut sent) = match page_rx.recv() {
                    Ok(Ok(batch)) => batch,
                    Ok(Err(e)) => {
                        failed = Some(Err(e));
                        break;
                    }
                    Err(_) => break,
                };
                if !adds_in_flight
                    && sent
                        .iter()
                        .any(|s| matches!(s.kind, ExportKind::Add | ExportKind::DeleteAdd))
                {
                    if let Err(e) = in_flight::mark(store, ma, ctx.run_id) {
                        failed = Some(Err(e));
                        break;
                    }
                    adds_in_flight = true;
                }
                // Write-only values opened (or generated) in memory only.
                let (mut changes, refused) = reveal(ctx, changes);
                let began = std::time::Instant::now();
                // The connection failed halfway: what the system answered
                // is recorded (it is done there), the rest stays pending.
                let mut cut: Stop = None;
                let (outcomes, helds): (Vec<Option<ExportOutcome>>, _) = match holds.apply(
                    &mut *session,
                    &mut changes,
                    &mut |dn, anchor| dns_there.others(store, ma, dn, anchor),
                    &mut |referrer, attr, anchors| {
                        refers_to(ctx, referrer, attr, anchors).unwrap_or(false)
                    },
                ) {
                    Ok((o, h)) if o.len() == changes.len() => {
                        (o.into_iter().map(Some).collect(), h)
                    }
                    Ok((o, _)) => {
                        stop = Some((
                            RunStatus::StoppedError,
                            format!(
                                "the connector returned {} outcomes for {} changes",
                                o.len(),
                                changes.len()
                            ),
                        ));
                        break;
                    }
                    Err(c) => {
                        let why = Some((c.error.kind.status(), c.error.message));
                        if !durable || c.answered.iter().all(Option::is_none) {
                            stop = why;
                            break;
                        }
                        cut = why;
                        (c.answered, c.held)
                    }
                };
                crash_point("export.batch.applied");
                page_size.store(
                    pages::next_size(
                        page_size.load(std::sync::atomic::Ordering::Relaxed),
                        changes.len(),
                        began.elapsed(),
                    ),
                    std::sync::atomic::Ordering::Relaxed,
                );
                let mut outcomes = outcomes.into_iter();
                let mut refused = refused.into_iter().peekable();
                let mut kept = changes
                    .iter()
                    .zip(helds.into_iter().chain(std::iter::repeat_with(|| None)));
                let write_only = ctx
                    .engine
                    .rules
                    .mas
                    .get(ctx.ma_index)
                    .map(|r| &r.write_only)
                    .filter(|w| !w.is_empty());
                let mut unanswered: Vec<CsId> = Vec::new();
                for (i, s) in sent.iter_mut().enumerate() {
                    let (outcome, c) = match refused.next_if(|(j, _)| *j == i) {
                        Some((_, o)) => (Some(o), None),
                        None => match outcomes.next() {
                            Some(Some(o)) => (Some(o), kept.next()),
                            _ => {
                                kept.next();
                                unanswered.push(s.id);
                                continue;
                            }
                        },
                    };
                    let c = c.and_then(|(c, held)| {
                        s.held = held.map(Box::new);
                        // A change with nothing left to send was not sent.
                        (!s.held.as_ref().is_some_and(|h| h.empty)).then_some(c)
                    });
                    if let (Some(ExportOutcome::Applied { anchor }), Some(c)) = (&outcome, c)
                        && history.reserve()
                    {
                        let anchor = anchor.as_deref().unwrap_or(&c.anchor);
                        let whole = s.made_whole.as_deref();
                        let mut change = changes::of_export(&history, c, anchor, whole);
                        // What was sent of a write-only attribute is the
                        // value in clear: the history says only that it was.
                        if let Some(w) = write_only {
                            changes::hide_write_only(&mut change, |k| w.get(k).is_some());
                        }
                        s.change = Some(Box::new(change));
                    }
                    s.made_whole = None;
                    s.outcome = outcome.filter(|o| *o != APPLIED).map(Box::new);
                }
                drop(changes);
                if !unanswered.is_empty() {
                    sent.retain(|s| !unanswered.contains(&s.id));
                }
                *processed += sent.len() as u64;
                match &rec_tx {
                    Some(tx) => {
                        if tx.send(sent).is_err() {
                            // The recorder stopped on a store error.
                            break;
                        }
                    }
                    None => log.extend(sent),
                }
                ctx.advanced(*processed);
                if cut.is_some() {
                    stop = cut;
                    break;
                }
            }
            // Let the reader end, then wait for the recorder.
            drop(page_rx);
            drop(rec_tx);
            if let Some(h) = rec_handle {
                match h.join() {
                    Ok((res, rec)) => {
                        slot = Some(rec);
                        res?;
                    }
                    Err(_) => {
                        return Err(autosync_store::StoreError::new(
                            autosync_store::StoreErrorKind::Io,
                            format!("recording the export outcomes of {ma} failed unexpectedly"),
                        ));
                    }
                }
            }
            if let Some(Err(e)) = failed {
                return Err(e);
            }
            if stop.is_some() && holds.moved_any() {
                respell_pending(ctx, ma, &holds)?;
            }
            if durable {
                return Ok(stop);
            }
            let user_stop = matches!(stop, Some((RunStatus::StoppedUserRequested, _)));
            if stop.is_some() && !user_stop {
                // Nothing is durable: every object keeps its pending export.
                *processed = 0;
                return Ok(stop);
            }
            crash_point("export.session.before-commit");
            if let Err(e) = session.commit() {
                *processed = 0;
                return Ok(Some((e.kind.status(), e.message)));
            }
            crash_point("export.session.committed");
            session_committed = true;
            if let Some(rec) = slot.as_mut() {
                // Recorded in id order (the types' ranks sent them in
                // another).
                log.sort_unstable_by_key(|s| s.id);
                for chunk in log.chunks(PAGE) {
                    rec.record(chunk)?;
                }
            }
            Ok(stop)
        });
        let recorded = slot.as_ref().map_or(0, |r| r.recorded);
        if let Some(rec) = slot {
            self.counters = rec.counters;
            self.errors = rec.errors;
        }
        if result.is_err() && (durable || session_committed) && self.processed > recorded {
            // The store failed after changes went: the step's record says
            // they may be in the system uncounted.
            ctx.sent_unrecorded
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if adds_in_flight && matches!(result, Ok(None)) {
            // Every add sent is recorded, an earlier export's replayed.
            in_flight::clear(store, ma)?;
        }
        result
    }
}

/// `changes` with their write-only values opened or generated, and the
/// failures of those that could not be (by index in `changes`), which are
/// not sent.
fn reveal(
    ctx: &StepCtx<'_>,
    changes: Vec<ExportChange>,
) -> (Vec<ExportChange>, Vec<(usize, ExportOutcome)>) {
    let Some(rules) = ctx.engine.rules.mas.get(ctx.ma_index) else {
        return (changes, Vec::new());
    };
    if rules.write_only.is_empty() {
        return (changes, Vec::new());
    }
    let secrets = &ctx.engine.rules.secrets;
    let mut kept = Vec::with_capacity(changes.len());
    let mut refused = Vec::new();
    for (i, mut c) in changes.into_iter().enumerate() {
        match rules.write_only.reveal(secrets, &mut c) {
            Ok(()) => kept.push(c),
            Err(detail) => refused.push((
                i,
                ExportOutcome::Failed {
                    error_type: "write-only-failed".into(),
                    detail,
                },
            )),
        }
    }
    (kept, refused)
}

/// The attributes of this MA's export flows whose references name its own
/// objects, and how each spells one.
fn own_references(ctx: &StepCtx<'_>) -> Vec<(String, autosync_model::RefBy)> {
    let Some(rules) = ctx.engine.rules.mas.get(ctx.ma_index) else {
        return Vec::new();
    };
    let mut out: Vec<(String, autosync_model::RefBy)> = rules
        .outbound
        .iter()
        .filter_map(|f| {
            let r = f.reference.as_ref()?;
            let own = r.ma.as_deref().is_none_or(|m| m == rules.name);
            own.then(|| (f.cs_attr.clone(), r.by))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// How many of `ma`'s objects have nothing to send, at most one: the
/// pending exports are counted (an index of those alone), and the ids of
/// one more than that read; any beyond them is an object with nothing to
/// send. Told the connector before an import as well.
pub(crate) fn held_already(store: &dyn autosync_store::Store, ma: &str) -> StoreResult<u64> {
    let mut read = store.read()?;
    let pending = read.cs_count(ma, CsFilter::PendingExport)?;
    let want = usize::try_from(pending.saturating_add(1)).unwrap_or(usize::MAX);
    let ids = read.cs_page_ids(ma, CsFilter::All, 0, want)?;
    Ok(u64::from(ids.len() as u64 > pending))
}
