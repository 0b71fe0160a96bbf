//! Reads of value rows: an attribute's values, whether some are there,
//! how many; the rows put into a full object, or the placeholder kept in a
//! light one; and lookups by value (`mv_find`).

use super::{ANY, COUNT, COUNT_UPTO, FIND, PRESENT, Side, VALUES, attr_id};
use crate::api::StoreResult;
use crate::sqlite::bin::{self, Marks};
use crate::sqlite::error;
use autosync_model::{CsObject, MvObject, Value};
use rusqlite::{Connection, params};
use std::path::Path;

/// The values of rows of attribute number `attr` of object `id`.
fn values_of(
    conn: &Connection,
    path: &Path,
    side: Side,
    id: i64,
    attr: i64,
) -> StoreResult<Vec<Value>> {
    let what = || format!("{} {id}", side.what());
    let err = |e| error::sql(path, format_args!("read the value rows of {}", what()), e);
    let mut stmt = conn.prepare_cached(VALUES.of(side)).map_err(err)?;
    let mut rows = stmt.query(params![id, attr]).map_err(err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(err)? {
        let b = row
            .get_ref(0)
            .map_err(err)?
            .as_blob()
            .map_err(|e| err(e.into()))?;
        out.push(bin::decode_value(b).map_err(|e| error::decode(path, what(), e))?);
    }
    Ok(out)
}

/// The values of the rows of attribute `attr` of object `id` (none when
/// it has none).
pub(crate) fn values(
    conn: &Connection,
    path: &Path,
    side: Side,
    id: i64,
    attr: &str,
) -> StoreResult<Vec<Value>> {
    match attr_id(conn, path, attr)? {
        Some(a) => values_of(conn, path, side, id, a),
        None => Ok(Vec::new()),
    }
}

/// Whether each of `values` is a row of attribute `attr` of object `id`.
pub(crate) fn present(
    conn: &Connection,
    path: &Path,
    side: Side,
    id: i64,
    attr: &str,
    values: &[Value],
) -> StoreResult<Vec<bool>> {
    let Some(a) = attr_id(conn, path, attr)? else {
        return Ok(vec![false; values.len()]);
    };
    let err = |e| {
        error::sql(
            path,
            format_args!("look for value rows of {} {id}", side.what()),
            e,
        )
    };
    let mut stmt = conn.prepare_cached(PRESENT.of(side)).map_err(err)?;
    let mut buf = Vec::new();
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        bin::encode_value(&mut buf, v);
        out.push(
            stmt.query_row(params![id, a, buf], |r| r.get::<_, bool>(0))
                .map_err(err)?,
        );
    }
    Ok(out)
}

/// How many rows attribute `attr` of object `id` has.
pub(crate) fn count(
    conn: &Connection,
    path: &Path,
    side: Side,
    id: i64,
    attr: &str,
) -> StoreResult<u64> {
    let Some(a) = attr_id(conn, path, attr)? else {
        return Ok(0);
    };
    let n: i64 = conn
        .prepare_cached(COUNT.of(side))
        .and_then(|mut s| s.query_row(params![id, a], |r| r.get(0)))
        .map_err(|e| {
            error::sql(
                path,
                format_args!("count the value rows of {} {id}", side.what()),
                e,
            )
        })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// How many rows attribute `attr` of object `id` has, counted up to
/// `cap` (a large group is not counted whole to learn it has more).
pub(crate) fn count_upto(
    conn: &Connection,
    path: &Path,
    side: Side,
    id: i64,
    attr: &str,
    cap: u64,
) -> StoreResult<u64> {
    let Some(a) = attr_id(conn, path, attr)? else {
        return Ok(0);
    };
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let n: i64 = conn
        .prepare_cached(COUNT_UPTO.of(side))
        .and_then(|mut s| s.query_row(params![id, a, cap], |r| r.get(0)))
        .map_err(|e| {
            error::sql(
                path,
                format_args!("count the value rows of {} {id}", side.what()),
                e,
            )
        })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Whether attribute `attr` of object `id` has any row.
fn any(conn: &Connection, path: &Path, side: Side, id: i64, attr: &str) -> StoreResult<bool> {
    conn.prepare_cached(ANY.of(side))
        .and_then(|mut s| s.query_row(params![id, attr], |r| r.get(0)))
        .map_err(|e| {
            error::sql(
                path,
                format_args!("look for the value rows of {} {id}", side.what()),
                e,
            )
        })
}

/// A light `obj`: each marked hologram attribute keeps its placeholder if
/// it has rows (one index probe, its rows not read), else is absent.
pub(crate) fn light_cs(
    conn: &Connection,
    path: &Path,
    obj: &mut CsObject,
    marks: &Marks,
) -> StoreResult<()> {
    for attr in marks {
        if !any(conn, path, Side::Cs, obj.id, attr)? {
            obj.hologram.remove(attr);
        }
    }
    Ok(())
}

/// [`light_cs`] of a metaverse object.
pub(crate) fn light_mv(
    conn: &Connection,
    path: &Path,
    obj: &mut MvObject,
    marks: &Marks,
) -> StoreResult<()> {
    for attr in marks {
        if !any(conn, path, Side::Mv, obj.id, attr)? {
            obj.attributes.remove(attr);
        }
    }
    Ok(())
}

/// Put the rows of the marked hologram attributes into `obj` (an attribute
/// without rows is absent).
pub(crate) fn fill_cs(
    conn: &Connection,
    path: &Path,
    obj: &mut CsObject,
    marks: &Marks,
) -> StoreResult<()> {
    for attr in marks {
        let vs = values(conn, path, Side::Cs, obj.id, attr)?;
        if vs.is_empty() {
            obj.hologram.remove(attr);
        } else if let Some(v) = obj.hologram.get_mut(attr) {
            *v = Value::Multi(vs);
        }
    }
    Ok(())
}

/// Put the rows of the marked attributes into `obj` (an attribute without
/// rows is absent).
pub(crate) fn fill_mv(
    conn: &Connection,
    path: &Path,
    obj: &mut MvObject,
    marks: &Marks,
) -> StoreResult<()> {
    for attr in marks {
        let vs = values(conn, path, Side::Mv, obj.id, attr)?;
        if vs.is_empty() {
            obj.attributes.remove(attr);
        } else if let Some(v) = obj.attributes.get_mut(attr) {
            v.value = Value::Multi(vs);
        }
    }
    Ok(())
}

/// The objects of type `ty` whose declared attribute number `attr` holds
/// one of `values` (`(i, id)`: `values[i]`, or one of its values if it is
/// a multi-value, finds object `id`), sorted, without duplicates.
pub(crate) fn find(
    conn: &Connection,
    path: &Path,
    ty: &str,
    attr: i64,
    values: &[Value],
) -> StoreResult<Vec<(usize, i64)>> {
    let err = |e| error::sql(path, format_args!("find {ty} objects by value rows"), e);
    let mut stmt = conn.prepare_cached(FIND).map_err(err)?;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut one = |i: usize, v: &Value, out: &mut Vec<(usize, i64)>| -> StoreResult<()> {
        bin::encode_value(&mut buf, v);
        let mut rows = stmt.query(params![attr, buf, ty]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            out.push((i, row.get::<_, i64>(0).map_err(err)?));
        }
        Ok(())
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Value::Multi(vs) => {
                for v in vs {
                    one(i, v, &mut out)?;
                }
            }
            v => one(i, v, &mut out)?,
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}
