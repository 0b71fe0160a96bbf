//! The [`StoreRead`] and [`StoreTxn`] API of a bulk transaction: reads go
//! to the reader connection when nothing the transaction wrote could change
//! their answer (see `reads`), else to the writer thread; writes are
//! queued.

use super::BulkTxn;
use super::writer::{OwnedRow, Write};
use crate::api::{
    CsCounts, CsFilter, MvQuery, OutWaitTargets, StoreErrorKind, StoreRead, StoreResult, StoreTxn,
};
use crate::sqlite::bin;
use crate::sqlite::error;
use crate::sqlite::fresh::cs_key;
use crate::sqlite::write::Seq;
use autosync_model::{
    CsId, CsObject, ExportKind, MvId, MvObject, RunId, RunObjectError, RunRecord, Value, ValueDelta,
};
use std::sync::mpsc::sync_channel;

impl StoreRead for BulkTxn<'_, '_> {
    fn cs_get(&mut self, id: CsId) -> StoreResult<Option<CsObject>> {
        if self.touched.cs_written(id) {
            return self.call(move |t| t.cs_get(id));
        }
        let o = self.reader.cs_get(id)?;
        self.note_db(o.as_slice());
        Ok(o)
    }

    fn cs_by_anchor(&mut self, ma: &str, anchor: &str) -> StoreResult<Option<CsObject>> {
        let key = cs_key(ma, anchor);
        if !self.touched.cs_keys.contains(&key) {
            if self.surely_absent(ma, key)? {
                return Ok(None);
            }
            match self.reader.cs_by_anchor(ma, anchor)? {
                None => {
                    self.absent.insert(key);
                    return Ok(None);
                }
                Some(o) if !self.touched.cs_written(o.id) => {
                    self.note_db(std::slice::from_ref(&o));
                    return Ok(Some(o));
                }
                Some(_) => {}
            }
        }
        let (ma, anchor) = (ma.to_owned(), anchor.to_owned());
        self.call(move |t| t.cs_by_anchor(&ma, &anchor))
    }

    fn cs_by_anchors(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>> {
        if !anchors
            .iter()
            .any(|a| self.touched.cs_keys.contains(&cs_key(ma, a)))
        {
            if self.empty_at_begin(ma)? {
                return Ok(Vec::new());
            }
            let found = self.reader.cs_by_anchors(ma, anchors)?;
            if !self.any_cs_touched(&found) {
                self.note_db(&found);
                return Ok(found);
            }
        }
        let ma = ma.to_owned();
        let anchors: Vec<String> = anchors.iter().map(|a| (*a).to_owned()).collect();
        self.call(move |t| {
            let refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
            t.cs_by_anchors(&ma, &refs)
        })
    }

    fn cs_page(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        // After writes too, the reader answers when none of them could
        // change the page.
        if !self.touched.cs_page_differs(ma, after) {
            let page = self.reader.cs_page(ma, filter, after, limit)?;
            if !self.any_cs_touched(&page) {
                self.note_db(&page);
                return Ok(page);
            }
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_page(&ma, filter, after, limit))
    }

    fn cs_page_ids(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        if !self.touched.cs_page_differs(ma, after) {
            let ids = self.reader.cs_page_ids(ma, filter, after, limit)?;
            if !ids.iter().any(|id| self.touched.cs_written(*id)) {
                return Ok(ids);
            }
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_page_ids(&ma, filter, after, limit))
    }

    fn cs_joined_by_anchors(
        &mut self,
        ma: &str,
        anchors: &[&str],
    ) -> StoreResult<Vec<(String, MvId)>> {
        if !anchors
            .iter()
            .any(|a| self.touched.cs_keys.contains(&cs_key(ma, a)))
        {
            if self.empty_at_begin(ma)? {
                return Ok(Vec::new());
            }
            return self.reader.cs_joined_by_anchors(ma, anchors);
        }
        let ma = ma.to_owned();
        let anchors: Vec<String> = anchors.iter().map(|a| (*a).to_owned()).collect();
        self.call(move |t| {
            let refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
            t.cs_joined_by_anchors(&ma, &refs)
        })
    }

    fn cs_joined_of_ma(&mut self, ma: &str) -> StoreResult<Vec<(String, MvId)>> {
        // An MA this transaction wrote is asked of the writer.
        if !self.touched.cs_ma_max.contains_key(&super::ma_key(ma)) {
            return self.reader.cs_joined_of_ma(ma);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_joined_of_ma(&ma))
    }

    fn cs_spellings_of_ma(&mut self, ma: &str) -> StoreResult<Vec<crate::api::CsSpelling>> {
        if !self.touched.cs_ma_max.contains_key(&super::ma_key(ma)) {
            return self.reader.cs_spellings_of_ma(ma);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_spellings_of_ma(&ma))
    }

    fn cs_spellings_by_mvs(
        &mut self,
        ma: &str,
        mv_ids: &[MvId],
    ) -> StoreResult<Vec<crate::api::CsSpelling>> {
        // An MA this transaction wrote is asked of the writer.
        if !self.touched.cs_ma_max.contains_key(&super::ma_key(ma)) {
            return self.reader.cs_spellings_by_mvs(ma, mv_ids);
        }
        let ma = ma.to_owned();
        let ids = mv_ids.to_vec();
        self.call(move |t| t.cs_spellings_by_mvs(&ma, &ids))
    }

    fn cs_joined_by_dns(
        &mut self,
        ma: &str,
        dns: &[&str],
    ) -> StoreResult<Vec<(String, CsId, Option<MvId>)>> {
        // DNs are not remembered per write: an MA this transaction wrote
        // is asked of the writer.
        if !self.touched.cs_ma_max.contains_key(&super::ma_key(ma)) {
            return self.reader.cs_joined_by_dns(ma, dns);
        }
        let ma = ma.to_owned();
        let dns: Vec<String> = dns.iter().map(|d| (*d).to_owned()).collect();
        self.call(move |t| {
            let refs: Vec<&str> = dns.iter().map(String::as_str).collect();
            t.cs_joined_by_dns(&ma, &refs)
        })
    }

    fn cs_by_mv(&mut self, mv_id: MvId) -> StoreResult<Vec<CsObject>> {
        if !self.touched.joins_written(mv_id) {
            let found = self.reader.cs_by_mv(mv_id)?;
            if !self.any_cs_touched(&found) {
                self.note_db(&found);
                return Ok(found);
            }
        }
        self.call(move |t| t.cs_by_mv(mv_id))
    }

    fn cs_get_light(&mut self, id: CsId) -> StoreResult<Option<CsObject>> {
        if self.touched.cs_written(id) {
            return self.call(move |t| t.cs_get_light(id));
        }
        let o = self.reader.cs_get_light(id)?;
        self.note_db(o.as_slice());
        Ok(o)
    }

    fn cs_by_anchors_light(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>> {
        if !anchors
            .iter()
            .any(|a| self.touched.cs_keys.contains(&cs_key(ma, a)))
        {
            if self.empty_at_begin(ma)? {
                return Ok(Vec::new());
            }
            let found = self.reader.cs_by_anchors_light(ma, anchors)?;
            if !self.any_cs_touched(&found) {
                self.note_db(&found);
                return Ok(found);
            }
        }
        let ma = ma.to_owned();
        let anchors: Vec<String> = anchors.iter().map(|a| (*a).to_owned()).collect();
        self.call(move |t| {
            let refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
            t.cs_by_anchors_light(&ma, &refs)
        })
    }

    fn cs_page_light(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        if !self.touched.cs_page_differs(ma, after) {
            let page = self.reader.cs_page_light(ma, filter, after, limit)?;
            if !self.any_cs_touched(&page) {
                self.note_db(&page);
                return Ok(page);
            }
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_page_light(&ma, filter, after, limit))
    }

    fn cs_by_mvs_light(&mut self, mv_ids: &[MvId]) -> StoreResult<Vec<CsObject>> {
        if !mv_ids.iter().any(|m| self.touched.joins_written(*m)) {
            let found = self.reader.cs_by_mvs_light(mv_ids)?;
            if !self.any_cs_touched(&found) {
                self.note_db(&found);
                return Ok(found);
            }
        }
        let ids = mv_ids.to_vec();
        self.call(move |t| t.cs_by_mvs_light(&ids))
    }

    fn cs_values(&mut self, id: CsId, attr: &str) -> StoreResult<Vec<Value>> {
        if !self.touched.cs_written(id) {
            return self.reader.cs_values(id, attr);
        }
        let attr = attr.to_owned();
        self.call(move |t| t.cs_values(id, &attr))
    }

    fn cs_values_present(
        &mut self,
        id: CsId,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<bool>> {
        if !self.touched.cs_written(id) {
            return self.reader.cs_values_present(id, attr, values);
        }
        let (attr, values) = (attr.to_owned(), values.to_vec());
        self.call(move |t| t.cs_values_present(id, &attr, &values))
    }

    fn cs_values_count(&mut self, id: CsId, attr: &str) -> StoreResult<u64> {
        if !self.touched.cs_written(id) {
            return self.reader.cs_values_count(id, attr);
        }
        let attr = attr.to_owned();
        self.call(move |t| t.cs_values_count(id, &attr))
    }

    fn mv_get_light(&mut self, id: MvId) -> StoreResult<Option<MvObject>> {
        if self.touched.mv_written(id) {
            return self.call(move |t| t.mv_get_light(id));
        }
        self.reader.mv_get_light(id)
    }

    fn mv_get_many_light(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>> {
        let (written, rest): (Vec<MvId>, Vec<MvId>) =
            ids.iter().partition(|id| self.touched.mv_written(**id));
        let mut out = if rest.is_empty() {
            Vec::new()
        } else {
            self.reader.mv_get_many_light(&rest)?
        };
        if !written.is_empty() {
            out.extend(self.call(move |t| t.mv_get_many_light(&written))?);
        }
        Ok(out)
    }

    fn mv_values(&mut self, id: MvId, attr: &str) -> StoreResult<Vec<Value>> {
        if !self.touched.mv_written(id) {
            return self.reader.mv_values(id, attr);
        }
        let attr = attr.to_owned();
        self.call(move |t| t.mv_values(id, &attr))
    }

    fn mv_values_present(
        &mut self,
        id: MvId,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<bool>> {
        if !self.touched.mv_written(id) {
            return self.reader.mv_values_present(id, attr, values);
        }
        let (attr, values) = (attr.to_owned(), values.to_vec());
        self.call(move |t| t.mv_values_present(id, &attr, &values))
    }

    fn mv_values_count(&mut self, id: MvId, attr: &str) -> StoreResult<u64> {
        if !self.touched.mv_written(id) {
            return self.reader.mv_values_count(id, attr);
        }
        let attr = attr.to_owned();
        self.call(move |t| t.mv_values_count(id, &attr))
    }

    fn cs_counts(&mut self, ma: &str) -> StoreResult<CsCounts> {
        if !self.wrote {
            return self.reader.cs_counts(ma);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_counts(&ma))
    }

    fn cs_count(&mut self, ma: &str, filter: CsFilter) -> StoreResult<u64> {
        if !self.wrote {
            return self.reader.cs_count(ma, filter);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_count(&ma, filter))
    }

    fn cs_pending_export_count(&mut self, ma: &str, kind: ExportKind) -> StoreResult<u64> {
        if !self.wrote {
            return self.reader.cs_pending_export_count(ma, kind);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_pending_export_count(&ma, kind))
    }

    fn mv_get(&mut self, id: MvId) -> StoreResult<Option<MvObject>> {
        if self.touched.mv_written(id) {
            return self.call(move |t| t.mv_get(id));
        }
        self.reader.mv_get(id)
    }

    fn mv_get_many(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>> {
        let (written, rest): (Vec<MvId>, Vec<MvId>) =
            ids.iter().partition(|id| self.touched.mv_written(**id));
        let mut out = if rest.is_empty() {
            Vec::new()
        } else {
            self.reader.mv_get_many(&rest)?
        };
        if !written.is_empty() {
            out.extend(self.call(move |t| t.mv_get_many(&written))?);
        }
        Ok(out)
    }

    fn mv_find(&mut self, object_type: &str, attr: &str, value: &Value) -> StoreResult<Vec<MvId>> {
        if self.defs.rows.mv_attr(object_type, attr).is_some() {
            let found = self.mv_find_rows(object_type, attr, std::slice::from_ref(value))?;
            return Ok(found.into_iter().map(|(_, id)| id).collect());
        }
        if self
            .mv_maybe(object_type, attr, std::slice::from_ref(value))?
            .is_some_and(|m| m.is_empty())
        {
            return Ok(Vec::new());
        }
        if !self.mv_search_touched(object_type, attr, std::slice::from_ref(value)) {
            let found = self.reader.mv_find(object_type, attr, value)?;
            if !found.iter().any(|id| self.touched.mv_written(*id)) {
                return Ok(found);
            }
        }
        let (object_type, attr, value) = (object_type.to_owned(), attr.to_owned(), value.clone());
        self.call(move |t| t.mv_find(&object_type, &attr, &value))
    }

    fn mv_find_many(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        if self.defs.rows.mv_attr(object_type, attr).is_some() {
            return self.mv_find_rows(object_type, attr, values);
        }
        // Only the values the fresh knowledge may hold are looked up.
        match self.mv_maybe(object_type, attr, values)? {
            Some(maybe) if maybe.is_empty() => return Ok(Vec::new()),
            Some(maybe) if maybe.len() < values.len() => {
                let subset: Vec<Value> = maybe
                    .iter()
                    .filter_map(|&i| values.get(i).cloned())
                    .collect();
                let found = self.mv_find_many_all(object_type, attr, &subset)?;
                return Ok(found
                    .into_iter()
                    .filter_map(|(i, id)| maybe.get(i).map(|&orig| (orig, id)))
                    .collect());
            }
            _ => {}
        }
        self.mv_find_many_all(object_type, attr, values)
    }

    fn mv_page(
        &mut self,
        query: &MvQuery,
        after: MvId,
        limit: usize,
    ) -> StoreResult<Vec<MvObject>> {
        if !self.wrote {
            return self.reader.mv_page(query, after, limit);
        }
        let query = query.clone();
        self.call(move |t| t.mv_page(&query, after, limit))
    }

    fn mv_count(&mut self, object_type: Option<&str>) -> StoreResult<u64> {
        if !self.wrote {
            return self.reader.mv_count(object_type);
        }
        let object_type = object_type.map(str::to_owned);
        self.call(move |t| t.mv_count(object_type.as_deref()))
    }

    fn watermark(&mut self, ma: &str) -> StoreResult<Option<String>> {
        if !self.wrote {
            return self.reader.watermark(ma);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.watermark(&ma))
    }

    fn run_get(&mut self, id: RunId) -> StoreResult<Option<RunRecord>> {
        if !self.wrote {
            return self.reader.run_get(id);
        }
        self.call(move |t| t.run_get(id))
    }

    fn runs(&mut self, ma: Option<&str>, limit: usize) -> StoreResult<Vec<RunRecord>> {
        if !self.wrote {
            return self.reader.runs(ma, limit);
        }
        let ma = ma.map(str::to_owned);
        self.call(move |t| t.runs(ma.as_deref(), limit))
    }

    fn run_errors(&mut self, run_id: RunId, limit: usize) -> StoreResult<Vec<RunObjectError>> {
        if !self.wrote {
            return self.reader.run_errors(run_id, limit);
        }
        self.call(move |t| t.run_errors(run_id, limit))
    }

    fn run_changes(
        &mut self,
        run_id: RunId,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<autosync_model::RunChange>> {
        if !self.wrote {
            return self.reader.run_changes(run_id, offset, limit);
        }
        self.call(move |t| t.run_changes(run_id, offset, limit))
    }

    fn run_change_count(&mut self, run_id: RunId) -> StoreResult<u64> {
        if !self.wrote {
            return self.reader.run_change_count(run_id);
        }
        self.call(move |t| t.run_change_count(run_id))
    }

    fn meta(&mut self, key: &str) -> StoreResult<Option<String>> {
        if !self.wrote {
            return self.reader.meta(key);
        }
        let key = key.to_owned();
        self.call(move |t| t.meta(&key))
    }

    // The waiting references are few and read by the end of a sync, after
    // its writes: asked of the writer thread, which sees them all.
    fn ref_waits_of(&mut self, cs_id: CsId) -> StoreResult<Vec<crate::api::RefWait>> {
        self.call(move |t| t.ref_waits_of(cs_id))
    }
    fn ref_waiting_page(&mut self, ma: &str, after: CsId, limit: usize) -> StoreResult<Vec<CsId>> {
        let ma = ma.to_owned();
        self.call(move |t| t.ref_waiting_page(&ma, after, limit))
    }
    fn ref_waiting_count(&mut self, ma: &str) -> StoreResult<u64> {
        let ma = ma.to_owned();
        self.call(move |t| t.ref_waiting_count(&ma))
    }
    fn ref_in_ready(&mut self) -> StoreResult<Vec<CsId>> {
        self.call(|t| t.ref_in_ready())
    }
    fn ref_out_ready(&mut self) -> StoreResult<Vec<MvId>> {
        self.call(|t| t.ref_out_ready())
    }
    fn ref_out_sendable_count(&mut self, via: &str) -> StoreResult<u64> {
        let via = via.to_owned();
        self.call(move |t| t.ref_out_sendable_count(&via))
    }
    fn ref_touched(&mut self) -> StoreResult<Vec<(MvId, bool)>> {
        self.call(|t| t.ref_touched())
    }
    fn ref_out_waiting(&mut self) -> StoreResult<Vec<MvId>> {
        self.call(|t| t.ref_out_waiting())
    }
}

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
        let row = OwnedRow::of(&mut obj, ma, key, &self.dict, &self.defs.rows, true);
        drop(obj);
        self.push(Write::CsUpdate(row, known))
    }

    fn cs_values_change(&mut self, id: CsId, attr: &str, delta: &ValueDelta) -> StoreResult<()> {
        self.db_known.remove(&id);
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
