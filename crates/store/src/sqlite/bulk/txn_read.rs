//! The [`StoreRead`] API of a bulk transaction: reads go to the reader
//! connection when nothing the transaction wrote could change their answer
//! (see `reads`), else to the writer thread (`call`).

use super::BulkTxn;
use crate::api::{CsCounts, CsFilter, MvQuery, StoreRead, StoreResult};
use crate::sqlite::fresh::cs_key;
use autosync_model::{
    CsId, CsObject, ExportKind, MvId, MvObject, RunId, RunObjectError, RunRecord, Value,
};

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
        self.cs_by_anchors_as(ma, anchors, false)
    }

    fn cs_page(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        self.cs_page_as(ma, filter, after, limit, false)
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
        self.cs_by_anchors_as(ma, anchors, true)
    }

    fn cs_page_light(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        self.cs_page_as(ma, filter, after, limit, true)
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

    fn cs_values_count_upto(&mut self, id: CsId, attr: &str, cap: u64) -> StoreResult<u64> {
        if !self.touched.cs_written(id) {
            return self.reader.cs_values_count_upto(id, attr, cap);
        }
        let attr = attr.to_owned();
        self.call(move |t| t.cs_values_count_upto(id, &attr, cap))
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

    fn mv_values_count_upto(&mut self, id: MvId, attr: &str, cap: u64) -> StoreResult<u64> {
        if !self.touched.mv_written(id) {
            return self.reader.mv_values_count_upto(id, attr, cap);
        }
        let attr = attr.to_owned();
        self.call(move |t| t.mv_values_count_upto(id, &attr, cap))
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

    fn cs_ma_values_count(&mut self, ma: &str) -> StoreResult<u64> {
        if !self.wrote {
            return self.reader.cs_ma_values_count(ma);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_ma_values_count(&ma))
    }

    fn cs_pending_export_count(&mut self, ma: &str, kind: ExportKind) -> StoreResult<u64> {
        if !self.wrote {
            return self.reader.cs_pending_export_count(ma, kind);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_pending_export_count(&ma, kind))
    }

    fn cs_pending_export_ids(
        &mut self,
        ma: &str,
        kind: ExportKind,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        if !self.wrote {
            return self.reader.cs_pending_export_ids(ma, kind, after, limit);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_pending_export_ids(&ma, kind, after, limit))
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
    fn ref_out_waiting_page(
        &mut self,
        ma: &str,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        let ma = ma.to_owned();
        self.call(move |t| t.ref_out_waiting_page(&ma, after, limit))
    }
    fn ref_out_waiting_count(&mut self, ma: &str) -> StoreResult<u64> {
        let ma = ma.to_owned();
        self.call(move |t| t.ref_out_waiting_count(&ma))
    }
    fn ref_out_waits_of(&mut self, mv_id: MvId, ma: &str) -> StoreResult<Vec<(MvId, String)>> {
        let ma = ma.to_owned();
        self.call(move |t| t.ref_out_waits_of(mv_id, &ma))
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
    fn ref_touched_names(&mut self, id: MvId) -> StoreResult<Vec<crate::api::RefName>> {
        self.call(move |t| t.ref_touched_names(id))
    }
    fn ref_touched_names_count(&mut self, ma: &str) -> StoreResult<u64> {
        let ma = ma.to_owned();
        self.call(move |t| t.ref_touched_names_count(&ma))
    }
    fn ref_out_waiting(&mut self) -> StoreResult<Vec<MvId>> {
        self.call(|t| t.ref_out_waiting())
    }
}
