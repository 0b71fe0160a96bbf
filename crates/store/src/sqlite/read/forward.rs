//! `impl_store_read!`: the [`crate::api::StoreRead`] methods of a read
//! view or a write transaction, each forwarded to its query on `Ctx`.

/// The read methods of [`crate::api::StoreRead`], forwarded to `Ctx`.
/// The type has a `note_cs(&mut self, &[CsObject])` that sees every
/// connector-space object read (a write transaction remembers their filter
/// columns; a read view ignores them).
macro_rules! impl_store_read {
    ($ty:ty) => {
        impl $crate::api::StoreRead for $ty {
            fn cs_get(
                &mut self,
                id: autosync_model::CsId,
            ) -> $crate::api::StoreResult<Option<autosync_model::CsObject>> {
                let o = self.ctx().cs_get(id, false)?;
                self.note_cs(o.as_slice());
                Ok(o)
            }
            fn cs_by_anchor(
                &mut self,
                ma: &str,
                anchor: &str,
            ) -> $crate::api::StoreResult<Option<autosync_model::CsObject>> {
                let o = self.ctx().cs_by_anchor(ma, anchor)?;
                self.note_cs(o.as_slice());
                Ok(o)
            }
            fn cs_by_anchors(
                &mut self,
                ma: &str,
                anchors: &[&str],
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_by_anchors(ma, anchors, false)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_page(
                &mut self,
                ma: &str,
                filter: $crate::api::CsFilter,
                after: autosync_model::CsId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_page(ma, filter, after, limit, false)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_mas(&mut self) -> $crate::api::StoreResult<Vec<String>> {
                self.ctx().cs_mas()
            }
            fn cs_page_ids(
                &mut self,
                ma: &str,
                filter: $crate::api::CsFilter,
                after: autosync_model::CsId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsId>> {
                self.ctx().cs_page_ids(ma, filter, after, limit)
            }
            fn cs_joined_by_anchors(
                &mut self,
                ma: &str,
                anchors: &[&str],
            ) -> $crate::api::StoreResult<Vec<(String, autosync_model::MvId)>> {
                self.ctx().cs_joined_by_anchors(ma, anchors)
            }
            fn cs_joined_of_ma(
                &mut self,
                ma: &str,
            ) -> $crate::api::StoreResult<Vec<(String, autosync_model::MvId)>> {
                self.ctx().cs_joined_of_ma(ma)
            }
            fn cs_anchors_ignoring_case(
                &mut self,
                ma: &str,
                anchors: &[&str],
            ) -> $crate::api::StoreResult<Vec<String>> {
                self.ctx().cs_anchors_ignoring_case(ma, anchors)
            }
            fn cs_spellings_of_ma(
                &mut self,
                ma: &str,
            ) -> $crate::api::StoreResult<Vec<$crate::api::CsSpelling>> {
                self.ctx().cs_spellings_of_ma(ma)
            }
            fn cs_spellings_by_mvs(
                &mut self,
                ma: &str,
                mv_ids: &[autosync_model::MvId],
            ) -> $crate::api::StoreResult<Vec<$crate::api::CsSpelling>> {
                self.ctx().cs_spellings_by_mvs(ma, mv_ids)
            }
            fn cs_joined_by_dns(
                &mut self,
                ma: &str,
                dns: &[&str],
            ) -> $crate::api::StoreResult<
                Vec<(String, autosync_model::CsId, Option<autosync_model::MvId>)>,
            > {
                self.ctx().cs_joined_by_dns(ma, dns)
            }
            fn cs_by_mv(
                &mut self,
                mv_id: autosync_model::MvId,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_by_mv(mv_id)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_by_mvs(
                &mut self,
                mv_ids: &[autosync_model::MvId],
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_by_mvs(mv_ids, false)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_get_light(
                &mut self,
                id: autosync_model::CsId,
            ) -> $crate::api::StoreResult<Option<autosync_model::CsObject>> {
                let o = self.ctx().cs_get(id, true)?;
                self.note_cs(o.as_slice());
                Ok(o)
            }
            fn cs_by_anchors_light(
                &mut self,
                ma: &str,
                anchors: &[&str],
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_by_anchors(ma, anchors, true)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_page_light(
                &mut self,
                ma: &str,
                filter: $crate::api::CsFilter,
                after: autosync_model::CsId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_page(ma, filter, after, limit, true)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_by_mvs_light(
                &mut self,
                mv_ids: &[autosync_model::MvId],
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_by_mvs(mv_ids, true)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_values(
                &mut self,
                id: autosync_model::CsId,
                attr: &str,
            ) -> $crate::api::StoreResult<Vec<autosync_model::Value>> {
                self.ctx().values($crate::sqlite::rows::Side::Cs, id, attr)
            }
            fn cs_values_present(
                &mut self,
                id: autosync_model::CsId,
                attr: &str,
                values: &[autosync_model::Value],
            ) -> $crate::api::StoreResult<Vec<bool>> {
                self.ctx()
                    .values_present($crate::sqlite::rows::Side::Cs, id, attr, values)
            }
            fn cs_values_count(
                &mut self,
                id: autosync_model::CsId,
                attr: &str,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx()
                    .values_count($crate::sqlite::rows::Side::Cs, id, attr)
            }
            fn cs_values_count_upto(
                &mut self,
                id: autosync_model::CsId,
                attr: &str,
                cap: u64,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx()
                    .values_count_upto($crate::sqlite::rows::Side::Cs, id, attr, cap)
            }
            fn mv_get_light(
                &mut self,
                id: autosync_model::MvId,
            ) -> $crate::api::StoreResult<Option<autosync_model::MvObject>> {
                self.ctx().mv_get(id, true)
            }
            fn mv_get_many_light(
                &mut self,
                ids: &[autosync_model::MvId],
            ) -> $crate::api::StoreResult<Vec<autosync_model::MvObject>> {
                self.ctx().mv_get_many(ids, true)
            }
            fn mv_values(
                &mut self,
                id: autosync_model::MvId,
                attr: &str,
            ) -> $crate::api::StoreResult<Vec<autosync_model::Value>> {
                self.ctx().values($crate::sqlite::rows::Side::Mv, id, attr)
            }
            fn mv_values_present(
                &mut self,
                id: autosync_model::MvId,
                attr: &str,
                values: &[autosync_model::Value],
            ) -> $crate::api::StoreResult<Vec<bool>> {
                self.ctx()
                    .values_present($crate::sqlite::rows::Side::Mv, id, attr, values)
            }
            fn mv_values_count(
                &mut self,
                id: autosync_model::MvId,
                attr: &str,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx()
                    .values_count($crate::sqlite::rows::Side::Mv, id, attr)
            }
            fn mv_values_count_upto(
                &mut self,
                id: autosync_model::MvId,
                attr: &str,
                cap: u64,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx()
                    .values_count_upto($crate::sqlite::rows::Side::Mv, id, attr, cap)
            }
            fn cs_counts(&mut self, ma: &str) -> $crate::api::StoreResult<$crate::api::CsCounts> {
                self.ctx().cs_counts(ma)
            }
            fn cs_count(
                &mut self,
                ma: &str,
                filter: $crate::api::CsFilter,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx().cs_count(ma, filter)
            }
            fn cs_ma_values_count(&mut self, ma: &str) -> $crate::api::StoreResult<u64> {
                self.ctx().cs_ma_values_count(ma)
            }
            fn cs_pending_export_count(
                &mut self,
                ma: &str,
                kind: autosync_model::ExportKind,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx().cs_pending_export_count(ma, kind)
            }
            fn cs_pending_export_ids(
                &mut self,
                ma: &str,
                kind: autosync_model::ExportKind,
                after: autosync_model::CsId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsId>> {
                self.ctx().cs_pending_export_ids(ma, kind, after, limit)
            }
            fn mv_get(
                &mut self,
                id: autosync_model::MvId,
            ) -> $crate::api::StoreResult<Option<autosync_model::MvObject>> {
                self.ctx().mv_get(id, false)
            }
            fn mv_get_many(
                &mut self,
                ids: &[autosync_model::MvId],
            ) -> $crate::api::StoreResult<Vec<autosync_model::MvObject>> {
                self.ctx().mv_get_many(ids, false)
            }
            fn mv_find(
                &mut self,
                object_type: &str,
                attr: &str,
                value: &autosync_model::Value,
            ) -> $crate::api::StoreResult<Vec<autosync_model::MvId>> {
                self.ctx().mv_find(object_type, attr, value)
            }
            fn mv_find_many(
                &mut self,
                object_type: &str,
                attr: &str,
                values: &[autosync_model::Value],
            ) -> $crate::api::StoreResult<Vec<(usize, autosync_model::MvId)>> {
                self.ctx().mv_find_many(object_type, attr, values)
            }
            fn mv_page(
                &mut self,
                query: &$crate::api::MvQuery,
                after: autosync_model::MvId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::MvObject>> {
                self.ctx().mv_page(query, after, limit)
            }
            fn mv_page_ids(
                &mut self,
                query: &$crate::api::MvQuery,
                after: autosync_model::MvId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::MvId>> {
                self.ctx().mv_page_ids(query, after, limit)
            }
            fn mv_count(&mut self, object_type: Option<&str>) -> $crate::api::StoreResult<u64> {
                self.ctx().mv_count(object_type)
            }
            fn watermark(&mut self, ma: &str) -> $crate::api::StoreResult<Option<String>> {
                self.ctx().watermark(ma)
            }
            fn run_get(
                &mut self,
                id: autosync_model::RunId,
            ) -> $crate::api::StoreResult<Option<autosync_model::RunRecord>> {
                self.ctx().run_get(id)
            }
            fn runs(
                &mut self,
                ma: Option<&str>,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::RunRecord>> {
                self.ctx().runs(ma, limit)
            }
            fn runs_page(
                &mut self,
                ma: Option<&str>,
                offset: usize,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::RunRecord>> {
                self.ctx().runs_page(ma, offset, limit)
            }
            fn run_count(&mut self, ma: Option<&str>) -> $crate::api::StoreResult<u64> {
                self.ctx().run_count(ma)
            }
            fn run_errors(
                &mut self,
                run_id: autosync_model::RunId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::RunObjectError>> {
                self.ctx().run_errors(run_id, limit)
            }
            fn run_changes(
                &mut self,
                run_id: autosync_model::RunId,
                offset: usize,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::RunChange>> {
                self.ctx().run_changes(run_id, offset, limit)
            }
            fn run_change_count(
                &mut self,
                run_id: autosync_model::RunId,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx().run_change_count(run_id)
            }
            fn meta(&mut self, key: &str) -> $crate::api::StoreResult<Option<String>> {
                self.ctx().meta(key)
            }
            fn ref_waits_of(
                &mut self,
                cs_id: autosync_model::CsId,
            ) -> $crate::api::StoreResult<Vec<$crate::api::RefWait>> {
                self.ctx().ref_waits_of(cs_id)
            }
            fn ref_waiting_page(
                &mut self,
                ma: &str,
                after: autosync_model::CsId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsId>> {
                self.ctx().ref_waiting_page(ma, after, limit)
            }
            fn ref_waiting_count(&mut self, ma: &str) -> $crate::api::StoreResult<u64> {
                self.ctx().ref_waiting_count(ma)
            }
            fn ref_out_waiting_page(
                &mut self,
                ma: &str,
                after: autosync_model::CsId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsId>> {
                self.ctx().ref_out_waiting_page(ma, after, limit)
            }
            fn ref_out_waiting_count(&mut self, ma: &str) -> $crate::api::StoreResult<u64> {
                self.ctx().ref_out_waiting_count(ma)
            }
            fn ref_out_waits_of(
                &mut self,
                mv_id: autosync_model::MvId,
                ma: &str,
            ) -> $crate::api::StoreResult<Vec<(autosync_model::MvId, String)>> {
                self.ctx().ref_out_waits_of(mv_id, ma)
            }
            fn ref_in_ready(&mut self) -> $crate::api::StoreResult<Vec<autosync_model::CsId>> {
                self.ctx().ref_in_ready()
            }
            fn ref_out_ready(&mut self) -> $crate::api::StoreResult<Vec<autosync_model::MvId>> {
                self.ctx().ref_out_ready()
            }
            fn ref_out_sendable_count(&mut self, via: &str) -> $crate::api::StoreResult<u64> {
                self.ctx().ref_out_sendable_count(via)
            }
            fn ref_touched(
                &mut self,
            ) -> $crate::api::StoreResult<Vec<(autosync_model::MvId, bool)>> {
                self.ctx().ref_touched()
            }
            fn ref_touched_names(
                &mut self,
                id: autosync_model::MvId,
            ) -> $crate::api::StoreResult<Vec<$crate::api::RefName>> {
                self.ctx().ref_touched_names(id)
            }
            fn ref_touched_names_count(&mut self, ma: &str) -> $crate::api::StoreResult<u64> {
                self.ctx().ref_touched_names_count(ma)
            }
            fn ref_out_waiting(&mut self) -> $crate::api::StoreResult<Vec<autosync_model::MvId>> {
                self.ctx().ref_out_waiting()
            }
        }
    };
}
pub(crate) use impl_store_read;
