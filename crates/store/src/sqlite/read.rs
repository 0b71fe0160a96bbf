//! The read queries, shared by read views and write transactions (which see
//! their own writes). Every query is a cached prepared statement.

use super::bin;
use super::codec::{NameSrc, RawRows, RunErrorRow, decode_bin, decode_col, decode_rows};
use super::error;
use super::mvindex::{self, IndexDefs};
use super::names::NameCache;
use crate::api::{CsCounts, CsFilter, MvQuery, StoreErrorKind, StoreResult};
use autosync_model::{CsId, CsObject, MvId, MvObject, RunId, RunObjectError, RunRecord, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params};
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

    fn cs_row(&self, row: &Row<'_>, path: &Path) -> StoreResult<CsObject> {
        decode_bin(
            row,
            path,
            "connector-space object",
            bin::decode_cs,
            self.names(),
        )
    }

    /// Decode connector-space rows read into `raw`.
    fn cs_objects(&self, raw: &RawRows) -> StoreResult<Vec<CsObject>> {
        decode_rows(
            raw,
            self.path,
            "connector-space object",
            bin::decode_cs,
            self.names(),
        )
    }

    fn mv_row(&self, row: &Row<'_>, path: &Path) -> StoreResult<MvObject> {
        decode_bin(row, path, "metaverse object", bin::decode_mv, self.names())
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

    pub(crate) fn cs_get(&self, id: CsId) -> StoreResult<Option<CsObject>> {
        self.one(
            "SELECT id, data FROM cs WHERE id = ?1",
            [id],
            &|| format!("read connector-space object {id} from store"),
            |r, p| self.cs_row(r, p),
        )
    }

    pub(crate) fn cs_by_anchor(&self, ma: &str, anchor: &str) -> StoreResult<Option<CsObject>> {
        self.one(
            "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND anchor = ?2",
            [ma, anchor],
            &|| format!("read connector-space object {ma}/{anchor} from store"),
            |r, p| self.cs_row(r, p),
        )
    }

    pub(crate) fn cs_by_anchors(&self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>> {
        let mut raw = RawRows::with_capacity(anchors.len());
        let op = || {
            format!(
                "read {} connector-space objects of {ma} from store",
                anchors.len()
            )
        };
        let mut rest = anchors;
        while !rest.is_empty() {
            let (chunk, size, tail) = next_chunk(rest);
            rest = tail;
            let sql = if size == CHUNK {
                &*BY_ANCHORS_BIG
            } else {
                &*BY_ANCHORS_SMALL
            };
            let err = |e| error::sql(self.path, op(), e);
            let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
            stmt.raw_bind_parameter(1, ma).map_err(err)?;
            for i in 0..size {
                let slot = i + 2;
                match chunk.get(i) {
                    Some(a) => stmt.raw_bind_parameter(slot, *a).map_err(err)?,
                    None => stmt.raw_bind_parameter(slot, SqlValue::Null).map_err(err)?,
                }
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(err)? {
                raw.push(row, self.path)?;
            }
        }
        self.cs_objects(&raw)
    }

    pub(crate) fn cs_page(
        &self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        let sql = match filter {
            CsFilter::All => {
                "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::PendingImport => {
                "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::PendingExport => {
                "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pe = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::UnconfirmedExport => {
                "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_ue = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::Errors => {
                "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_err = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut raw = RawRows::with_capacity(usize::try_from(limit).unwrap_or(0).min(PAGE_ROOM));
        let err = |e| {
            error::sql(
                self.path,
                format_args!("list connector-space objects of {ma} from store"),
                e,
            )
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let mut rows = stmt.query(params![ma, after, limit]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            raw.push(row, self.path)?;
        }
        self.cs_objects(&raw)
    }

    pub(crate) fn cs_page_ids(
        &self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        let sql = match filter {
            CsFilter::All => {
                "SELECT id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::PendingImport => {
                "SELECT id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::PendingExport => {
                "SELECT id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pe = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::UnconfirmedExport => {
                "SELECT id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_ue = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            CsFilter::Errors => {
                "SELECT id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_err = 1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        self.collect(
            sql,
            params![ma, after, limit],
            &|| format!("list connector-space object ids of {ma} from store"),
            |row, path| {
                row.get(0)
                    .map_err(|e| error::sql(path, "read connector-space object id from store", e))
            },
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn cs_by_mv(&self, mv_id: MvId) -> StoreResult<Vec<CsObject>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT id, data FROM cs WHERE mv_id = ?1 ORDER BY id",
            [mv_id],
            &|| format!("read the connectors of metaverse object {mv_id} from store"),
            |r, p| self.cs_row(r, p),
            &mut out,
        )?;
        Ok(out)
    }

    /// Whether metaverse index key `k` holds any text.
    pub(crate) fn mv_key_any(&self, k: i64) -> StoreResult<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM mv_key WHERE k = ?1)")
            .and_then(|mut s| s.query_row([k], |r| r.get(0)))
            .map_err(|e| error::sql(self.path, "look for metaverse index keys in store", e))
    }

    /// Whether `ma` has any connector-space object.
    pub(crate) fn cs_any(&self, ma: &str) -> StoreResult<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1))",
            )
            .and_then(|mut s| s.query_row([ma], |r| r.get(0)))
            .map_err(|e| {
                error::sql(
                    self.path,
                    format_args!("look for connector-space objects of {ma} in store"),
                    e,
                )
            })
    }

    pub(crate) fn cs_counts(&self, ma: &str) -> StoreResult<CsCounts> {
        let err = |e| {
            error::sql(
                self.path,
                format_args!("count connector-space objects of {ma} in store"),
                e,
            )
        };
        let count = |sql: &str| -> StoreResult<u64> {
            let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
            let n: i64 = stmt.query_row([ma], |r| r.get(0)).map_err(err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(CsCounts {
            total: count("SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1)")?,
            pending_import: count(
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1",
            )?,
            pending_export: count(
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pe = 1",
            )?,
            unconfirmed_export: count(
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_ue = 1",
            )?,
            errors: count(
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_err = 1",
            )?,
        })
    }

    pub(crate) fn mv_get(&self, id: MvId) -> StoreResult<Option<MvObject>> {
        self.one(
            "SELECT id, data FROM mv WHERE id = ?1",
            [id],
            &|| format!("read metaverse object {id} from store"),
            |r, p| self.mv_row(r, p),
        )
    }

    pub(crate) fn mv_get_many(&self, ids: &[MvId]) -> StoreResult<Vec<MvObject>> {
        let mut raw = RawRows::with_capacity(ids.len());
        let op = || format!("read {} metaverse objects from store", ids.len());
        let mut rest = ids;
        while !rest.is_empty() {
            let (chunk, size, tail) = next_chunk(rest);
            rest = tail;
            let sql = if size == CHUNK {
                &*MV_MANY_BIG
            } else {
                &*MV_MANY_SMALL
            };
            let err = |e| error::sql(self.path, op(), e);
            let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
            for i in 0..size {
                match chunk.get(i) {
                    Some(id) => stmt.raw_bind_parameter(i + 1, *id).map_err(err)?,
                    None => stmt
                        .raw_bind_parameter(i + 1, SqlValue::Null)
                        .map_err(err)?,
                }
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(err)? {
                raw.push(row, self.path)?;
            }
        }
        decode_rows(
            &raw,
            self.path,
            "metaverse object",
            bin::decode_mv,
            self.names(),
        )
    }

    pub(crate) fn mv_find(
        &self,
        object_type: &str,
        attr: &str,
        value: &Value,
    ) -> StoreResult<Vec<MvId>> {
        let Some(k) = self.defs.key(object_type, attr) else {
            return Err(error::other(
                StoreErrorKind::Invalid,
                self.path,
                format!(
                    "cannot find {object_type} objects by {attr}: that attribute is not indexed (declare it with set_mv_index)"
                ),
            ));
        };
        let err = |e| {
            error::sql(
                self.path,
                format_args!("find {object_type} objects by {attr} in store"),
                e,
            )
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT mv_id FROM mv_key WHERE k = ?1 AND value = ?2")
            .map_err(err)?;
        let mut out = Vec::new();
        let mut find = |text: &str| -> StoreResult<()> {
            let mut rows = stmt.query(params![k, text]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                out.push(row.get::<_, i64>(0).map_err(err)?);
            }
            Ok(())
        };
        match value {
            Value::String(s) => find(&crate::api::fold_case(s))?,
            Value::Multi(_) => {
                for t in mvindex::texts(value) {
                    find(&t)?;
                }
            }
            other => find(&other.to_text())?,
        }
        if matches!(value, Value::Multi(_)) {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    pub(crate) fn mv_find_many(
        &self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        let Some(k) = self.defs.key(object_type, attr) else {
            return Err(error::other(
                StoreErrorKind::Invalid,
                self.path,
                format!(
                    "cannot find {object_type} objects by {attr}: that attribute is not indexed (declare it with set_mv_index)"
                ),
            ));
        };
        let err = |e| {
            error::sql(
                self.path,
                format_args!("find {object_type} objects by {attr} in store"),
                e,
            )
        };
        // Each text a value is found by, with the values it comes from.
        let mut by_text: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, v) in values.iter().enumerate() {
            for t in mvindex::texts(v) {
                let ix = by_text.entry(t).or_default();
                if ix.last() != Some(&i) {
                    ix.push(i);
                }
            }
        }
        let texts: Vec<&str> = by_text.keys().map(String::as_str).collect();
        let mut out = Vec::new();
        for chunk in texts.chunks(CHUNK) {
            let mut stmt = self.conn.prepare_cached(&MV_FIND_BIG).map_err(err)?;
            stmt.raw_bind_parameter(1, k).map_err(err)?;
            for i in 0..CHUNK {
                match chunk.get(i) {
                    Some(t) => stmt.raw_bind_parameter(i + 2, *t).map_err(err)?,
                    None => stmt
                        .raw_bind_parameter(i + 2, SqlValue::Null)
                        .map_err(err)?,
                }
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(err)? {
                let text = row
                    .get_ref(0)
                    .map_err(err)?
                    .as_str()
                    .map_err(|e| err(e.into()))?;
                let id: i64 = row.get(1).map_err(err)?;
                for &i in by_text.get(text).map(Vec::as_slice).unwrap_or_default() {
                    out.push((i, id));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    pub(crate) fn mv_page(
        &self,
        query: &MvQuery,
        after: MvId,
        limit: usize,
    ) -> StoreResult<Vec<MvObject>> {
        let mut out = Vec::new();
        let op = || "list metaverse objects from store".to_owned();
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let indexed = match (&query.object_type, &query.attribute) {
            (Some(t), Some((a, _))) => self.defs.attribute_key(t, a),
            _ => None,
        };
        match (&query.object_type, &query.attribute, indexed) {
            (Some(_), Some((_, v)), Some(k)) => self.collect(
                "SELECT m.id, m.data FROM mv_key AS x JOIN mv AS m ON m.id = x.mv_id \
                 WHERE x.k = ?1 AND x.value = ?2 AND x.mv_id > ?3 ORDER BY x.mv_id LIMIT ?4",
                params![k, crate::api::fold_case(v), after, lim],
                &op,
                |r, p| self.mv_row(r, p),
                &mut out,
            )?,
            (Some(t), None, _) => self.collect(
                "SELECT id, data FROM mv WHERE type = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                params![t, after, lim],
                &op,
                |r, p| self.mv_row(r, p),
                &mut out,
            )?,
            (_, attr, _) => {
                // Not indexed: scan in id order and filter here.
                let mut after = after;
                while out.len() < limit {
                    let mut page = Vec::new();
                    self.collect(
                        "SELECT id, data FROM mv WHERE id > ?1 ORDER BY id LIMIT 1000",
                        [after],
                        &op,
                        |r, p| self.mv_row(r, p),
                        &mut page,
                    )?;
                    let Some(last) = page.last() else { break };
                    after = last.id;
                    out.extend(
                        page.into_iter().filter(|o| {
                            matches_query(o, query.object_type.as_deref(), attr.as_ref())
                        }),
                    );
                }
                out.truncate(limit);
            }
        }
        Ok(out)
    }

    pub(crate) fn mv_count(&self, object_type: Option<&str>) -> StoreResult<u64> {
        let err = |e| error::sql(self.path, "count metaverse objects in store", e);
        let n: i64 = match object_type {
            Some(t) => self
                .conn
                .prepare_cached("SELECT count(*) FROM mv WHERE type = ?1")
                .and_then(|mut s| s.query_row([t], |r| r.get(0))),
            None => self
                .conn
                .prepare_cached("SELECT count(*) FROM mv")
                .and_then(|mut s| s.query_row([], |r| r.get(0))),
        }
        .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn text_value(&self, sql: &str, key: &str, what: &str) -> StoreResult<Option<String>> {
        self.one(
            sql,
            [key],
            &|| format!("read {what} {key} from store"),
            |row, path| {
                row.get(0)
                    .map_err(|e| error::sql(path, format_args!("read {what} {key} from store"), e))
            },
        )
    }

    pub(crate) fn watermark(&self, ma: &str) -> StoreResult<Option<String>> {
        self.text_value(
            "SELECT value FROM watermark WHERE ma = ?1",
            ma,
            "the watermark of",
        )
    }

    pub(crate) fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.text_value("SELECT value FROM meta WHERE key = ?1", key, "meta value")
    }

    pub(crate) fn run_get(&self, id: RunId) -> StoreResult<Option<RunRecord>> {
        self.one(
            "SELECT id, data FROM run WHERE id = ?1",
            [id],
            &|| format!("read run {id} from store"),
            run_row,
        )
    }

    pub(crate) fn runs(&self, ma: Option<&str>, limit: usize) -> StoreResult<Vec<RunRecord>> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let op = || "list runs from store".to_owned();
        match ma {
            Some(ma) => self.collect(
                "SELECT id, data FROM run WHERE ma = ?1 ORDER BY id DESC LIMIT ?2",
                params![ma, lim],
                &op,
                run_row,
                &mut out,
            )?,
            None => self.collect(
                "SELECT id, data FROM run ORDER BY id DESC LIMIT ?1",
                [lim],
                &op,
                run_row,
                &mut out,
            )?,
        }
        Ok(out)
    }

    pub(crate) fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT id, data FROM run WHERE status = 'in-progress' ORDER BY id",
            [],
            &|| "list unfinished runs from store".to_owned(),
            run_row,
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn run_errors(
        &self,
        run_id: RunId,
        limit: usize,
    ) -> StoreResult<Vec<RunObjectError>> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        self.collect(
            "SELECT id, data FROM run_error WHERE run_id = ?1 ORDER BY id LIMIT ?2",
            params![run_id, lim],
            &|| format!("list the errors of run {run_id} from store"),
            |row, path| {
                decode_col::<RunErrorRow>(row, 1, path, &|| format!("an error of run {run_id}"))
                    .map(|e| e.into_error(run_id))
            },
            &mut out,
        )?;
        Ok(out)
    }
}

fn matches_query(
    obj: &MvObject,
    object_type: Option<&str>,
    attr: Option<&(String, String)>,
) -> bool {
    if object_type.is_some_and(|t| t != obj.object_type) {
        return false;
    }
    match attr {
        None => true,
        Some((a, v)) => {
            let v = crate::api::fold_case(v);
            obj.get(a)
                .is_some_and(|val| mvindex::any_text(val, &mut |t| t == v))
        }
    }
}

static BY_ANCHORS_BIG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND anchor IN ({})",
        placeholders(CHUNK)
    )
});
static BY_ANCHORS_SMALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND anchor IN ({})",
        placeholders(SMALL_CHUNK)
    )
});
static MV_FIND_BIG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT value, mv_id FROM mv_key WHERE k = ?1 AND value IN ({})",
        placeholders(CHUNK)
    )
});

static MV_MANY_BIG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT id, data FROM mv WHERE id IN ({})",
        (1..=CHUNK)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
});
static MV_MANY_SMALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT id, data FROM mv WHERE id IN ({})",
        (1..=SMALL_CHUNK)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
});

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
                let o = self.ctx().cs_get(id)?;
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
                let o = self.ctx().cs_by_anchors(ma, anchors)?;
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
                let o = self.ctx().cs_page(ma, filter, after, limit)?;
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
            fn cs_by_mv(
                &mut self,
                mv_id: autosync_model::MvId,
            ) -> $crate::api::StoreResult<Vec<autosync_model::CsObject>> {
                let o = self.ctx().cs_by_mv(mv_id)?;
                self.note_cs(&o);
                Ok(o)
            }
            fn cs_counts(&mut self, ma: &str) -> $crate::api::StoreResult<$crate::api::CsCounts> {
                self.ctx().cs_counts(ma)
            }
            fn mv_get(
                &mut self,
                id: autosync_model::MvId,
            ) -> $crate::api::StoreResult<Option<autosync_model::MvObject>> {
                self.ctx().mv_get(id)
            }
            fn mv_get_many(
                &mut self,
                ids: &[autosync_model::MvId],
            ) -> $crate::api::StoreResult<Vec<autosync_model::MvObject>> {
                self.ctx().mv_get_many(ids)
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
            fn run_errors(
                &mut self,
                run_id: autosync_model::RunId,
                limit: usize,
            ) -> $crate::api::StoreResult<Vec<autosync_model::RunObjectError>> {
                self.ctx().run_errors(run_id, limit)
            }
            fn meta(&mut self, key: &str) -> $crate::api::StoreResult<Option<String>> {
                self.ctx().meta(key)
            }
        }
    };
}
pub(crate) use impl_store_read;
