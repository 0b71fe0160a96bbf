//! How objects are laid out in rows: a binary body (see `bin`) for
//! connector-space and metaverse objects, a JSON body for runs and their
//! errors (readable with the `sqlite3` CLI), plus the columns that filters
//! use (connection, flags).

use super::bin::BodyError;
use super::error;
use super::names::{NameCache, Names};
use autosync_model::CsObject;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;

/// JSON bytes bound as SQL text without a copy or a UTF-8 re-check
/// (serde_json only writes UTF-8).
pub(crate) struct JsonText<'a>(pub &'a [u8]);

impl rusqlite::ToSql for JsonText<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

/// Serialise `value` into `buf` (cleared first).
pub(crate) fn encode<T: serde::Serialize>(
    buf: &mut Vec<u8>,
    value: &T,
    path: &Path,
    what: impl std::fmt::Display,
) -> crate::api::StoreResult<()> {
    buf.clear();
    serde_json::to_writer(&mut *buf, value).map_err(|e| {
        crate::api::StoreError::new(
            crate::api::StoreErrorKind::Invalid,
            format!("cannot encode {what} for store {}: {e}", path.display()),
        )
    })
}

/// Decode the JSON body in column `col` of `row`.
pub(crate) fn decode_col<T: DeserializeOwned>(
    row: &Row<'_>,
    col: usize,
    path: &Path,
    what: &dyn Fn() -> String,
) -> crate::api::StoreResult<T> {
    let bytes = match row.get_ref(col) {
        Ok(ValueRef::Text(b)) | Ok(ValueRef::Blob(b)) => b,
        Ok(other) => {
            return Err(error::decode(
                path,
                what(),
                format!("expected JSON text, found {:?}", other.data_type()),
            ));
        }
        Err(e) => {
            return Err(error::sql(
                path,
                format_args!("read {} from store", what()),
                e,
            ));
        }
    };
    // One UTF-8 check of the whole body, then a parse that skips the check
    // of each string.
    let text = std::str::from_utf8(bytes).map_err(|e| error::decode(path, what(), e))?;
    serde_json::from_str(text).map_err(|e| error::decode(path, what(), e))
}

/// Object rows read but not decoded yet: their ids and bodies, the bodies
/// in one buffer (a page of 20,000 rows is one allocation, not 20,000).
#[derive(Default)]
pub(crate) struct RawRows {
    ids: Vec<i64>,
    /// Where each body ends in `bytes`.
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl RawRows {
    /// Room for `rows` rows (of a typical body size).
    pub(crate) fn with_capacity(rows: usize) -> Self {
        RawRows {
            ids: Vec::with_capacity(rows),
            ends: Vec::with_capacity(rows),
            bytes: Vec::with_capacity(rows.saturating_mul(320)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Copy the id (column 0) and body (column 1) of `row`.
    pub(crate) fn push(&mut self, row: &Row<'_>, path: &Path) -> crate::api::StoreResult<()> {
        let id: i64 = row
            .get(0)
            .map_err(|e| error::sql(path, "read object from store", e))?;
        match row.get_ref(1) {
            Ok(ValueRef::Text(b)) | Ok(ValueRef::Blob(b)) => self.bytes.extend_from_slice(b),
            Ok(other) => {
                return Err(error::decode(
                    path,
                    format!("object {id}"),
                    format!("expected a binary body, found {:?}", other.data_type()),
                ));
            }
            Err(e) => return Err(error::sql(path, "read object from store", e)),
        }
        self.ids.push(id);
        self.ends.push(self.bytes.len());
        Ok(())
    }

    /// Row `i`: its id and body.
    pub(crate) fn get(&self, i: usize) -> Option<(i64, &[u8])> {
        let id = *self.ids.get(i)?;
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => *self.ends.get(p)?,
            None => 0,
        };
        Some((id, self.bytes.get(start..end)?))
    }
}

/// How a binary body is decoded (see `bin`): the row id, the body and the
/// name dictionary in, the object or why not out.
pub(crate) type Decoder<T> = fn(i64, &[u8], &Names) -> Result<T, BodyError>;

/// Where a decode finds the names of a body: the store's copy of the
/// dictionary, and the connection whose snapshot the body was read from
/// (to read the dictionary again when a body uses a number the copy
/// lacks).
#[derive(Clone, Copy)]
pub(crate) struct NameSrc<'a> {
    pub cache: &'a NameCache,
    pub conn: &'a Connection,
}

/// Decode one body, reading the dictionary again (once) if the body uses a
/// number `names` lacks; `names` is then the newer copy.
fn decode_one<T>(
    src: NameSrc<'_>,
    names: &mut Arc<Names>,
    path: &Path,
    kind: &str,
    id: i64,
    body: &[u8],
    decode: Decoder<T>,
) -> crate::api::StoreResult<T> {
    let first = match decode(id, body, names) {
        Err(BodyError::UnknownName(_)) => {
            *names = src.cache.reload(src.conn, path)?;
            decode(id, body, names)
        }
        other => other,
    };
    first.map_err(|e| error::decode(path, format!("{kind} {id}"), e))
}

/// Decode rows read into [`RawRows`], in order, on the caller's thread.
/// (Decoding a long page on a second thread was a gain while the store's
/// writer left a core idle; with bulk writes on their own thread both
/// cores are busy during a sync, and a thread started per page only added
/// its start, fresh memory and frees across threads.)
pub(crate) fn decode_rows<T>(
    rows: &RawRows,
    path: &Path,
    kind: &str,
    decode: Decoder<T>,
    src: NameSrc<'_>,
) -> crate::api::StoreResult<Vec<T>> {
    let mut names = src.cache.get();
    let mut out = Vec::with_capacity(rows.len());
    for i in 0..rows.len() {
        let Some((id, body)) = rows.get(i) else {
            break;
        };
        out.push(decode_one(src, &mut names, path, kind, id, body, decode)?);
    }
    Ok(out)
}

/// Decode the binary body in column `col` of `row` (id in column 0).
pub(crate) fn decode_bin<T>(
    row: &Row<'_>,
    path: &Path,
    kind: &str,
    decode: Decoder<T>,
    src: NameSrc<'_>,
) -> crate::api::StoreResult<T> {
    let id: i64 = row
        .get(0)
        .map_err(|e| error::sql(path, format_args!("read {kind} from store"), e))?;
    match row.get_ref(1) {
        Ok(ValueRef::Blob(b)) | Ok(ValueRef::Text(b)) => {
            decode_one(src, &mut src.cache.get(), path, kind, id, b, decode)
        }
        Ok(other) => Err(error::decode(
            path,
            format!("{kind} {id}"),
            format!("expected a binary body, found {:?}", other.data_type()),
        )),
        Err(e) => Err(error::sql(
            path,
            format_args!("read {kind} {id} from store"),
            e,
        )),
    }
}

/// Bytes bound as an SQL BLOB without a copy.
pub(crate) struct Blob<'a>(pub &'a [u8]);

impl rusqlite::ToSql for Blob<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(self.0)))
    }
}

/// The filter columns of a connector-space object.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CsColumns {
    pub mv_id: Option<i64>,
    pub has_pi: bool,
    pub has_pe: bool,
    pub has_ue: bool,
    pub has_err: bool,
}

impl CsColumns {
    pub(crate) fn of(obj: &CsObject) -> Self {
        CsColumns {
            mv_id: obj.connection.mv_id(),
            has_pi: obj.pending_import.is_some(),
            has_pe: obj.pending_export.is_some(),
            has_ue: obj.unconfirmed_export.is_some(),
            has_err: obj.error.is_some(),
        }
    }
}

/// How a run's per-object error is stored. `RunObjectError` flattens its
/// `ObjectError`, and both have a `run_id`, so its own JSON form has that
/// field twice and does not read back: the store nests the error instead
/// (the run id is the row's `run_id` column).
#[derive(serde::Serialize)]
pub(crate) struct RunErrorBody<'a> {
    pub step_index: u32,
    pub ma: &'a str,
    pub object: &'a str,
    pub error: &'a autosync_model::ObjectError,
}

#[derive(serde::Deserialize)]
pub(crate) struct RunErrorRow {
    pub step_index: u32,
    pub ma: String,
    pub object: String,
    pub error: autosync_model::ObjectError,
}

impl RunErrorRow {
    pub(crate) fn into_error(self, run_id: i64) -> autosync_model::RunObjectError {
        autosync_model::RunObjectError {
            run_id,
            step_index: self.step_index,
            ma: self.ma,
            object: self.object,
            error: self.error,
        }
    }
}
