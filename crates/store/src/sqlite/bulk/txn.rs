//! The [`StoreTxn`] API of a bulk transaction: writes are queued for the
//! writer thread (its reads are in `txn_read`).

use super::BulkTxn;
use super::writer::{OwnedRow, Write};
use crate::api::{OutWaitTargets, StoreErrorKind, StoreRead, StoreResult, StoreTxn};
use crate::sqlite::bin;
use crate::sqlite::error;
use crate::sqlite::fresh::cs_key;
use crate::sqlite::write::{Known, Seq};
use autosync_model::{CsId, CsObject, MvId, MvObject, RunObjectError, RunRecord, ValueDelta};
use std::sync::mpsc::sync_channel;

impl StoreTxn for BulkTxn<'_, '_> {
    fn cs_insert(&mut self, obj: &mut CsObject) -> StoreResult<()> {
        obj.id = self.cs_insert_owned(obj.clone())?;
        Ok(())
    }

    fn cs_insert_owned(&mut self, mut obj: CsObject) -> StoreResult<CsId> {
        let key = cs_key(&obj.ma, &obj.anchor);
        let exists = if self.touched.cs_keys.contains(&key) {
            self.cs_by_anchor(&obj.ma, &obj.anchor)?.is_some()
        } else if self.absent.contains(&key) || self.surely_absent(&obj.ma, key)? {
            false
        } else {
            self.cs_by_anchor(&obj.ma, &obj.anchor)?.is_some()
        };
        // Like a plain transaction, an insert uses up its id even when it
        // fails.
        let id = self.next_cs;
        self.next_cs += 1;
        if exists {
            return Err(error::other(
                StoreErrorKind::Invalid,
                self.path,
                format!(
                    "connector-space object {}/{} already exists",
                    obj.ma, obj.anchor
                ),
            ));
        }
        obj.id = id;
        self.note_cs_written(&obj, key);
        let ma = self.name(&obj.ma)?;
        let row = OwnedRow::of(&mut obj, ma, key, &self.dict, &self.defs.rows, false);
        drop(obj);
        self.push(Write::CsInsert(row))?;
        Ok(id)
    }

    fn cs_update(&mut self, obj: &CsObject) -> StoreResult<()> {
        self.cs_update_owned(obj.clone())
    }

    fn cs_update_owned(&mut self, mut obj: CsObject) -> StoreResult<()> {
        let id = obj.id;
        let known = self.db_known.remove(&id);
        let key = cs_key(&obj.ma, &obj.anchor);
        self.note_cs_written(&obj, key);
        let ma = self.name(&obj.ma)?;
        let clears = self.values_changed.contains(&id) || Known::clears(known.as_ref());
        let row = OwnedRow::of(&mut obj, ma, key, &self.dict, &self.defs.rows, clears);
        drop(obj);
        self.push(Write::CsUpdate(row, known))
    }

    fn cs_values_change(&mut self, id: CsId, attr: &str, delta: &ValueDelta) -> StoreResult<()> {
        self.db_known.remove(&id);
        self.values_changed.insert(id);
        self.touched.note_cs(id);
        let (attr, delta) = (attr.to_owned(), delta.clone());
        self.push_job(Box::new(move |t| t.cs_values_change(id, &attr, &delta)))
    }

    fn mv_values_change(&mut self, id: MvId, attr: &str, delta: &ValueDelta) -> StoreResult<()> {
        self.touched.note_mv(id);
        self.mv_rows_written = true;
        let (attr, delta) = (attr.to_owned(), delta.clone());
        self.push_job(Box::new(move |t| t.mv_values_change(id, &attr, &delta)))
    }

    fn cs_delete(&mut self, id: CsId) -> StoreResult<()> {
        self.db_known.remove(&id);
        self.touched.note_cs(id);
        self.push_job(Box::new(move |t| t.cs_delete(id)))
    }

    fn mv_insert(&mut self, obj: &mut MvObject) -> StoreResult<()> {
        obj.id = self.mv_insert_owned(obj.clone())?;
        Ok(())
    }

    fn mv_insert_owned(&mut self, mut obj: MvObject) -> StoreResult<MvId> {
        let id = self.next_mv;
        obj.id = id;
        self.note_mv_written(&obj)?;
        self.next_mv += 1;
        // `note_mv_written` left the object's index keys in `self.keys`.
        let keys = if self.defs.has_type(&obj.object_type) {
            std::mem::take(&mut self.keys)
        } else {
            Vec::new()
        };
        let attrs = self.defs.rows.mv_attrs(&obj.object_type);
        let mut data = Vec::with_capacity(256);
        bin::encode_mv_rows(&mut data, &self.dict, &obj, attrs);
        let values = obj.attributes.iter().map(|(k, v)| (k, &v.value));
        let rows = crate::sqlite::rows::plan(attrs, values, true, false).map(Box::new);
        self.mv_rows_written |= rows.is_some();
        let object_type = self.name(&obj.object_type)?;
        drop(obj);
        self.push(Write::MvInsert {
            id,
            object_type,
            data,
            keys,
            rows,
        })?;
        Ok(id)
    }

    fn mv_update(&mut self, obj: &MvObject) -> StoreResult<()> {
        self.mv_update_owned(obj.clone())
    }

    fn mv_update_owned(&mut self, obj: MvObject) -> StoreResult<()> {
        self.note_mv_written(&obj)?;
        self.mv_rows_written |= !self.defs.rows.mv_attrs(&obj.object_type).is_empty();
        self.push_job(Box::new(move |t| t.mv_update(&obj)))
    }

    fn mv_delete(&mut self, id: MvId) -> StoreResult<()> {
        self.touched.note_mv(id);
        self.push_job(Box::new(move |t| t.mv_delete(id)))
    }

    fn set_watermark(&mut self, ma: &str, watermark: Option<&str>) -> StoreResult<()> {
        let ma = ma.to_owned();
        let watermark = watermark.map(str::to_owned);
        self.push_job(Box::new(move |t| {
            t.set_watermark(&ma, watermark.as_deref())
        }))
    }

    fn run_insert(&mut self, run: &mut RunRecord) -> StoreResult<()> {
        self.wrote = true;
        let mut copy = run.clone();
        run.id = self.call(move |t| {
            t.run_insert(&mut copy)?;
            Ok(copy.id)
        })?;
        Ok(())
    }

    fn run_update(&mut self, run: &RunRecord) -> StoreResult<()> {
        let run = run.clone();
        self.push_job(Box::new(move |t| t.run_update(&run)))
    }

    fn run_errors_insert(&mut self, errors: &[RunObjectError]) -> StoreResult<()> {
        let errors = errors.to_vec();
        self.push_job(Box::new(move |t| t.run_errors_insert(&errors)))
    }

    fn run_changes_insert(&mut self, changes: &[autosync_model::RunChange]) -> StoreResult<()> {
        let changes = changes.to_vec();
        self.push_job(Box::new(move |t| t.run_changes_insert(&changes)))
    }

    fn ref_waits_set(&mut self, cs_id: CsId, waits: &[crate::api::RefWait]) -> StoreResult<()> {
        let waits = waits.to_vec();
        self.push_job(Box::new(move |t| t.ref_waits_set(cs_id, &waits)))
    }

    fn ref_out_waits_set(
        &mut self,
        mv_id: MvId,
        ma: &str,
        targets: &[(MvId, String)],
    ) -> StoreResult<()> {
        let targets: OutWaitTargets = targets.iter().map(|(t, v)| (*t, v)).collect();
        self.ref_out_waits_take(mv_id, ma, targets)
    }

    fn ref_out_waits_take(
        &mut self,
        mv_id: MvId,
        ma: &str,
        targets: OutWaitTargets,
    ) -> StoreResult<()> {
        let ma = ma.to_owned();
        self.push_job(Box::new(move |t| {
            t.ref_out_waits_write(mv_id, &ma, &targets)
        }))
    }

    fn ref_touched_add(&mut self, touched: &[(MvId, bool)]) -> StoreResult<()> {
        let touched = touched.to_vec();
        self.push_job(Box::new(move |t| t.ref_touched_add(&touched)))
    }

    fn ref_touched_clear(&mut self, ids: &[MvId]) -> StoreResult<()> {
        let ids = ids.to_vec();
        self.push_job(Box::new(move |t| t.ref_touched_clear(&ids)))
    }

    fn ref_touched_names_add(
        &mut self,
        id: MvId,
        names: &[crate::api::RefName],
    ) -> StoreResult<()> {
        let names = names.to_vec();
        self.push_job(Box::new(move |t| t.ref_touched_names_add(id, &names)))
    }

    fn ref_out_due_clear(&mut self) -> StoreResult<()> {
        self.push_job(Box::new(|t| t.ref_out_due_clear()))
    }

    fn set_meta(&mut self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let key = key.to_owned();
        let value = value.map(str::to_owned);
        self.push_job(Box::new(move |t| t.set_meta(&key, value.as_deref())))
    }

    /// Queue a commit and the begin of the next part, and go on at once:
    /// the next objects are read and worked out while the writer thread
    /// still writes and commits the last ones. Reads stay exact as before
    /// (what the transaction wrote is remembered across its parts) as long
    /// as no other process commits between two parts: the writer checks
    /// that at the next begin (`PRAGMA data_version`), and if one did, the
    /// part after it fails with a `Conflict` error. Before queueing its own
    /// commit, a part waits for the outcome of the one before it (long done
    /// unless the part is small), so the error always comes while the
    /// caller works on the part that was lost.
    fn commit_so_far(&mut self) -> StoreResult<()> {
        self.confirm_last_commit()?;
        let (cs, mv, version) = (self.next_cs, self.next_mv, self.data_version);
        let (done_tx, done_rx) = sync_channel::<()>(1);
        self.push_job(Box::new(move |t| {
            t.w.ids_taken_below(Seq::Cs, cs);
            t.w.ids_taken_below(Seq::Mv, mv);
            let path = t.path;
            t.w.commit(path)?;
            #[cfg(test)]
            crate::sqlite::tests::between_parts(path);
            t.w.begin(path)?;
            if t.w.data_version(path)? != version {
                return Err(error::other(
                    StoreErrorKind::Conflict,
                    path,
                    "another process wrote to the store between two commits of a bulk transaction; the part after the last commit was rolled back (doing it again is safe)",
                ));
            }
            let _ = done_tx.send(());
            Ok(())
        }))?;
        self.last_commit = Some(done_rx);
        self.flush()?;
        // A new snapshot from the next read on: an old one would keep the
        // checkpoints from copying what the parts committed.
        self.reader.release_snapshot();
        self.reader.hold_snapshot()
    }

    fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.commit_now()
    }
}
