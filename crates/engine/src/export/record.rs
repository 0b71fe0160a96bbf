//! Recording an export's outcomes in the store: per object, the pending
//! export made unconfirmed (or kept, with what was held back), a failure
//! as a per-object error, a delete as the object gone; one transaction
//! per page, with the run's history.

use super::{APPLIED, Sent, fingerprint};
use crate::changes::{self, StepChanges};
use crate::crashpoint::crash_point;
use crate::history::{StepErrors, clear_error};
use crate::run::{PAGE, StepCtx};
use autosync_connector::ExportOutcome;
use autosync_model::{CsObject, ErrorStage, ExportCounters, ExportKind, RunChange, StepCounters};
use autosync_store::{CsFilter, StoreResult};

/// Records export outcomes in the store.
pub(super) struct Recorder<'a> {
    pub ctx: &'a StepCtx<'a>,
    pub store: &'a dyn autosync_store::Store,
    pub ma: &'a str,
    pub counters: ExportCounters,
    pub errors: StepErrors,
    /// The changes of the history to write with the outcomes.
    pub changes: Vec<RunChange>,
    /// How many outcomes are recorded (committed).
    pub recorded: u64,
}

impl Recorder<'_> {
    /// Record outcomes (sorted by id) in one transaction per page.
    pub fn record(&mut self, sent: &[Sent]) -> StoreResult<()> {
        let ma = self.ma;
        let Some(first) = sent.first() else {
            return Ok(());
        };
        let mut txn = self.store.begin()?;
        let mut after = first.id - 1;
        let mut i = 0;
        let light = self.ctx.engine.rules.rows.cs_of(ma).is_some();
        while i < sent.len() {
            let page = if light {
                txn.cs_page_light(ma, CsFilter::PendingExport, after, PAGE)?
            } else {
                txn.cs_page(ma, CsFilter::PendingExport, after, PAGE)?
            };
            let Some(last) = page.last() else { break };
            after = last.id;
            for mut cs in page {
                while i < sent.len() && sent[i].id < cs.id {
                    i += 1;
                }
                if i < sent.len() && sent[i].id == cs.id {
                    self.apply_outcome(txn.as_mut(), &mut cs, &sent[i])?;
                    i += 1;
                }
            }
        }
        self.errors.flush(txn.as_mut())?;
        StepChanges::flush_these(txn.as_mut(), &mut self.changes)?;
        self.ctx.record_counters(
            txn.as_mut(),
            StepCounters::Export(self.counters.clone()),
            self.errors.count,
        )?;
        crash_point("export.record.before-commit");
        txn.commit()?;
        crash_point("export.record.committed");
        self.recorded += sent.len() as u64;
        self.ctx.committed(
            StepCounters::Export(self.counters.clone()),
            self.errors.count,
        );
        Ok(())
    }

    fn apply_outcome(
        &mut self,
        txn: &mut dyn autosync_store::StoreTxn,
        cs: &mut CsObject,
        sent: &Sent,
    ) -> StoreResult<()> {
        let unchanged = cs
            .pending_export
            .as_ref()
            .is_some_and(|p| fingerprint(p) == sent.fingerprint);
        match sent.outcome.as_deref().unwrap_or(&APPLIED) {
            ExportOutcome::Failed { error_type, detail } => {
                self.counters.failures += 1;
                let error = self.errors.push(&cs.anchor, error_type, detail.clone());
                cs.error = Some(error);
                txn.cs_update(cs)
            }
            ExportOutcome::Applied { .. } if sent.held.as_ref().is_some_and(|h| h.all()) => {
                // Nothing was sent: the pending export waits as it is.
                self.counters.references_held += sent.held.as_ref().map_or(0, |h| h.count());
                Ok(())
            }
            ExportOutcome::Applied { anchor } => {
                if let Some(a) = anchor.as_deref().filter(|a| *a != cs.anchor) {
                    // An anchor another object of this MA has: the system
                    // answered for that object's entry, not a new one.
                    if let Some(other) = txn.cs_by_anchor(&cs.ma, a)?
                        && other.id != cs.id
                    {
                        self.counters.failures += 1;
                        let detail = format!(
                            "the system answered the add of `{}` with anchor `{a}`, which object `{}` of this MA already has: the entry is that object's, not a new one; the add stays pending",
                            cs.dn, other.dn
                        );
                        let error = self.errors.push(&cs.anchor, "already-exists", detail);
                        cs.error = Some(error);
                        return txn.cs_update(cs);
                    }
                    cs.anchor = a.to_owned();
                }
                if let Some(change) = sent.change.as_deref() {
                    let mut change = change.clone();
                    changes::fill_old(&mut change, cs, txn)?;
                    self.changes.push(change);
                }
                // Nothing was left to send (what it added and removed
                // named one entry): done, not counted.
                let nothing_sent = sent.held.as_ref().is_some_and(|h| h.empty);
                match sent.kind {
                    _ if nothing_sent => {}
                    ExportKind::Add => self.counters.adds += 1,
                    ExportKind::Update => {
                        self.counters.updates += 1;
                        self.counters.values += sent.values;
                    }
                    ExportKind::Rename => self.counters.renames += 1,
                    ExportKind::Delete => self.counters.deletes += 1,
                    ExportKind::DeleteAdd => self.counters.delete_adds += 1,
                }
                clear_error(cs, ErrorStage::Export);
                if !unchanged {
                    // A sync changed the pending export since it was sent:
                    // keep it and send it again (exports are replayable).
                    return txn.cs_update(cs);
                }
                if sent.kind == ExportKind::Delete {
                    if let Some(mv_id) = cs.connection.mv_id()
                        && self.ctx.engine.rules.has_refs
                    {
                        // References to it on this MA stood while its
                        // delete waited; they go now (a sync's end), value
                        // by value by the name it had.
                        txn.ref_touched_add(&[(mv_id, false)])?;
                        let name = autosync_store::RefName {
                            ma: cs.ma.clone(),
                            anchor: cs.anchor.clone(),
                            dn: cs.dn.clone(),
                        };
                        txn.ref_touched_names_add(mv_id, &[name])?;
                        self.counters.references_ready += 1;
                    }
                    return txn.cs_delete(cs.id);
                }
                if let Some(mut done) = cs.pending_export.take() {
                    // What was held back stays pending.
                    let rest = sent.held.as_ref().and_then(|h| {
                        self.counters.references_held += h.count();
                        h.split(&mut done)
                    });
                    if let Some(rules) = self.ctx.engine.rules.mas.get(self.ctx.ma_index) {
                        // What was set, not the value, is kept.
                        let now =
                            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                        rules.write_only.sent(&mut done, &now);
                    }
                    if let Some(dn) = &done.new_dn {
                        cs.dn.clone_from(dn);
                    }
                    let nothing = done.changes.is_empty()
                        && done.values.is_empty()
                        && done.new_dn.is_none()
                        && done.kind == ExportKind::Update;
                    if !nothing {
                        cs.unconfirmed_export = Some(match cs.unconfirmed_export.take() {
                            Some(mut earlier) => {
                                crate::rows::merge_sent(&mut earlier, done);
                                earlier
                            }
                            None => done,
                        });
                    }
                    cs.pending_export = rest;
                }
                txn.cs_update(cs)
            }
        }
    }
}
