//! The read queries, shared by read views and write transactions (which see
//! their own writes). Every query is a cached prepared statement.
//!
//! Split by what they read: `cs` (connector spaces), `mv` (the metaverse
//! and its join index), `history` (runs, their errors, watermarks and
//! metadata); this file holds what they share and [`impl_store_read`].

mod cs;
mod history;
mod mv;
mod refs;

use super::bin;
use super::codec::{NameSrc, RawRows, decode_bin, decode_col, decode_rows};
use super::error;
use super::mvindex::IndexDefs;
use super::names::NameCache;
use super::rows;
use crate::api::StoreResult;
use autosync_model::{CsObject, MvObject, RunRecord};
use rusqlite::{Connection, Row};
use std::path::Path;

/// How many anchors or ids go into one `IN (...)` query.
pub(crate) const CHUNK: usize = 500;
/// The small `IN (...)` query used for short remainders.
const SMALL_CHUNK: usize = 16;

/// The next chunk of a batch lookup: up to `CHUNK` items for the big
/// statement, or the last few for the small one; `size` is the statement's
/// number of slots (the chunk is padded with NULLs up to it).
fn next_chunk<T>(rest: &[T]) -> (&[T], usize, &[T]) {
    let size = if rest.len() > SMALL_CHUNK {
        CHUNK
    } else {
        SMALL_CHUNK
    };
    let (chunk, tail) = rest.split_at(rest.len().min(size));
    (chunk, size, tail)
}

impl Ctx<'_> {
    /// The rows of a batch lookup by `keys`, a chunk at a time: `big` and
    /// `small` are the statements with `CHUNK` and `SMALL_CHUNK` slots for
    /// keys (padded with NULLs), after `fixed`, bound to `?1` when given.
    fn chunked_rows<K: rusqlite::ToSql>(
        &self,
        fixed: Option<&str>,
        keys: &[K],
        (big, small): (&str, &str),
        op: &dyn Fn() -> String,
    ) -> StoreResult<RawRows> {
        let mut raw = RawRows::with_capacity(keys.len());
        let first = if fixed.is_some() { 2 } else { 1 };
        let mut rest = keys;
        while !rest.is_empty() {
            let (chunk, size, tail) = next_chunk(rest);
            rest = tail;
            let sql = if size == CHUNK { big } else { small };
            let err = |e| error::sql(self.path, op(), e);
            let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
            if let Some(f) = fixed {
                stmt.raw_bind_parameter(1, f).map_err(err)?;
            }
            for i in 0..size {
                let slot = i + first;
                match chunk.get(i) {
                    Some(k) => stmt.raw_bind_parameter(slot, k).map_err(err)?,
                    None => stmt
                        .raw_bind_parameter(slot, rusqlite::types::Null)
                        .map_err(err)?,
                }
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(err)? {
                raw.push(row, self.path)?;
            }
        }
        Ok(raw)
    }
}

/// What a query needs: the connection, the store path (for messages), the
/// metaverse index definitions and the name dictionary.
pub(crate) struct Ctx<'a> {
    pub conn: &'a Connection,
    pub path: &'a Path,
    pub defs: &'a IndexDefs,
    pub names: &'a NameCache,
}

fn run_row(row: &Row<'_>, path: &Path) -> StoreResult<RunRecord> {
    let id: i64 = row
        .get(0)
        .map_err(|e| error::sql(path, "read run from store", e))?;
    let mut run: RunRecord = decode_col(row, 1, path, &|| format!("run {id}"))?;
    run.id = id;
    Ok(run)
}

/// Placeholders "?2, ?3, ..., ?{n+1}" for an `IN` list after one fixed parameter.
fn placeholders(n: usize) -> String {
    (2..n + 2)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most rows a page read makes room for up front.
const PAGE_ROOM: usize = 50_000;

impl Ctx<'_> {
    /// Where decodes through this context find names.
    pub(crate) fn names(&self) -> NameSrc<'_> {
        NameSrc {
            cache: self.names,
            conn: self.conn,
        }
    }

    /// A connector-space object of a row, whole or `light` (see `rows`).
    fn cs_row(&self, row: &Row<'_>, path: &Path, light: bool) -> StoreResult<CsObject> {
        let (mut o, marks) = decode_bin(
            row,
            path,
            "connector-space object",
            bin::decode_cs_marked,
            self.names(),
        )?;
        self.rows_cs(&mut o, &marks, light)?;
        Ok(o)
    }

    /// Decode connector-space rows read into `raw`, whole or `light`.
    fn cs_objects(&self, raw: &RawRows, light: bool) -> StoreResult<Vec<CsObject>> {
        let decoded = decode_rows(
            raw,
            self.path,
            "connector-space object",
            bin::decode_cs_marked,
            self.names(),
        )?;
        let mut out = Vec::with_capacity(decoded.len());
        for (mut o, marks) in decoded {
            self.rows_cs(&mut o, &marks, light)?;
            out.push(o);
        }
        Ok(out)
    }

    /// A metaverse object of a row, whole.
    fn mv_row(&self, row: &Row<'_>, path: &Path) -> StoreResult<MvObject> {
        self.mv_row_as(row, path, false)
    }

    /// A metaverse object of a row, whole or `light`.
    fn mv_row_as(&self, row: &Row<'_>, path: &Path, light: bool) -> StoreResult<MvObject> {
        let (mut o, marks) = decode_bin(
            row,
            path,
            "metaverse object",
            bin::decode_mv_marked,
            self.names(),
        )?;
        self.rows_mv(&mut o, &marks, light)?;
        Ok(o)
    }

    /// The value rows of the `marks` of `o`: put in, or (`light`) the
    /// placeholder kept where there are some (nothing to do without marks).
    /// A whole read also makes value-level pending changes whole
    /// (`CsObject::make_whole`): code that reads whole never sees them.
    fn rows_cs(&self, o: &mut CsObject, marks: &bin::Marks, light: bool) -> StoreResult<()> {
        match (marks.is_empty(), light) {
            (true, true) => Ok(()),
            (true, false) => {
                o.make_whole();
                Ok(())
            }
            (false, false) => {
                rows::fill_cs(self.conn, self.path, o, marks)?;
                o.make_whole();
                Ok(())
            }
            (false, true) => rows::light_cs(self.conn, self.path, o, marks),
        }
    }

    /// [`Ctx::rows_cs`] of a metaverse object.
    pub(crate) fn rows_mv(
        &self,
        o: &mut MvObject,
        marks: &bin::Marks,
        light: bool,
    ) -> StoreResult<()> {
        match (marks.is_empty(), light) {
            (true, _) => Ok(()),
            (false, false) => rows::fill_mv(self.conn, self.path, o, marks),
            (false, true) => rows::light_mv(self.conn, self.path, o, marks),
        }
    }

    /// Run `sql` (bound with `params`) and decode each row with `f`.
    fn collect<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        op: &dyn Fn() -> String,
        f: impl Fn(&Row<'_>, &Path) -> StoreResult<T>,
        out: &mut Vec<T>,
    ) -> StoreResult<()> {
        let err = |e| error::sql(self.path, op(), e);
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let mut rows = stmt.query(params).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            out.push(f(row, self.path)?);
        }
        Ok(())
    }

    fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        op: &dyn Fn() -> String,
        f: impl Fn(&Row<'_>, &Path) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let err = |e| error::sql(self.path, op(), e);
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let mut rows = stmt.query(params).map_err(err)?;
        match rows.next().map_err(err)? {
            Some(row) => f(row, self.path).map(Some),
            None => Ok(None),
        }
    }
}

impl Ctx<'_> {
    pub(crate) fn values(
        &self,
        side: rows::Side,
        id: i64,
        attr: &str,
    ) -> StoreResult<Vec<autosync_model::Value>> {
        rows::values(self.conn, self.path, side, id, attr)
    }

    pub(crate) fn values_present(
        &self,
        side: rows::Side,
        id: i64,
        attr: &str,
        values: &[autosync_model::Value],
    ) -> StoreResult<Vec<bool>> {
        rows::present(self.conn, self.path, side, id, attr, values)
    }

    pub(crate) fn values_count(&self, side: rows::Side, id: i64, attr: &str) -> StoreResult<u64> {
        rows::count(self.conn, self.path, side, id, attr)
    }

    pub(crate) fn values_count_upto(
        &self,
        side: rows::Side,
        id: i64,
        attr: &str,
        cap: u64,
    ) -> StoreResult<u64> {
        rows::count_upto(self.conn, self.path, side, id, attr, cap)
    }
}

/// The read methods of [`crate::api::StoreRead`], forwarded to [`Ctx`].
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
            fn cs_pending_export_count(
                &mut self,
                ma: &str,
                kind: autosync_model::ExportKind,
            ) -> $crate::api::StoreResult<u64> {
                self.ctx().cs_pending_export_count(ma, kind)
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
