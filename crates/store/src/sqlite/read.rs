//! The read queries, shared by read views and write transactions (which see
//! their own writes). Every query is a cached prepared statement.
//!
//! Split by what they read: `cs` (connector spaces), `mv` (the metaverse
//! and its join index), `history` (runs, their errors, watermarks and
//! metadata), `refs` (references that wait); this file holds what they
//! share, `forward` the macro that forwards the `StoreRead` methods of a
//! read view or transaction to them (`impl_store_read`).

mod cs;
mod forward;
mod history;
mod mv;
mod refs;
pub(crate) use forward::impl_store_read;

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
                unchanged_rows_into_pending(o, marks);
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

/// A pending `Update` names its row attributes (`marks`) only where they
/// change (as values, or whole): one it names neither way is unchanged,
/// and a whole read gives it as the hologram has it (a group whose name
/// changes keeps its members).
fn unchanged_rows_into_pending(o: &mut CsObject, marks: &bin::Marks) {
    let Some(p) = o
        .pending_import
        .as_mut()
        .filter(|p| p.kind == autosync_model::ImportKind::Update)
    else {
        return;
    };
    for attr in marks {
        if p.attributes.contains_key(attr) || p.values.contains_key(attr) {
            continue;
        }
        if let Some(v) = o.hologram.get(attr) {
            p.attributes.insert(attr.clone(), v.clone());
        }
    }
}
