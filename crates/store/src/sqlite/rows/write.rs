//! Writes of value rows: what a write of an object does to its rows
//! ([`plan`], carried out by [`apply`]: values written `BATCH` a statement
//! from one buffer, only the difference with the rows there), deletes,
//! and value changes ([`change`]).

use super::{DELETE, DELETE_ALL, DELETE_BETWEEN, EXISTS, INSERT, Side, VALUES, attr_id};
use crate::api::{StoreErrorKind, StoreResult};
use crate::sqlite::{bin, error};
use autosync_model::{Value, ValueDelta};
use rusqlite::{Connection, params};
use std::path::Path;

/// What a write does to the rows of one object.
#[derive(Debug, Default)]
pub(crate) struct RowPlan {
    /// The attributes written with the marker, by number (sorted): their
    /// new values (canonical bytes, sorted, without duplicates), or `None`:
    /// rows kept as they are (the placeholder).
    marked: Vec<(i64, Option<Blobs>)>,
    /// Metaverse: the single values declared attributes keep in the body
    /// (number, bytes), indexed for `mv_find`.
    inline: Vec<(i64, Vec<u8>)>,
    /// Delete the rows of every attribute not marked (an update of an
    /// object whose scope may hold rows).
    clear: bool,
}

/// What writing attributes `attrs` of an object of a scope with declared
/// attributes `decl` does to its rows; `index_inline`: a metaverse object
/// (its single values are indexed); `clear`: an update of an object whose
/// scope may hold rows. `None`: nothing (most objects).
pub(crate) fn plan<'a>(
    decl: &[(String, i64)],
    attrs: impl Iterator<Item = (&'a String, &'a Value)>,
    index_inline: bool,
    clear: bool,
) -> Option<RowPlan> {
    if decl.is_empty() && !clear {
        return None;
    }
    let mut p = RowPlan {
        clear,
        ..RowPlan::default()
    };
    if decl.is_empty() {
        return Some(p);
    }
    for (k, v) in attrs {
        let Some(id) = decl
            .binary_search_by(|(n, _)| n.as_str().cmp(k))
            .ok()
            .and_then(|i| decl.get(i))
            .map(|(_, id)| *id)
        else {
            continue;
        };
        match v {
            Value::Multi(vs) if vs.is_empty() => p.marked.push((id, None)),
            Value::Multi(vs) => p.marked.push((id, Some(Blobs::of(vs)))),
            single if index_inline => {
                let mut b = Vec::new();
                bin::encode_value(&mut b, single);
                p.inline.push((id, b));
            }
            _ => {}
        }
    }
    p.marked.sort_unstable_by_key(|(id, _)| *id);
    Some(p)
}

/// Values as their canonical bytes in one buffer (a group of 500,000 is
/// two allocations, not 500,000), in the order SQLite sorts blobs (bytes,
/// then length), without duplicates.
#[derive(Debug, Default)]
pub(crate) struct Blobs {
    bytes: Vec<u8>,
    /// Where each value is in `bytes`.
    spans: Vec<(usize, usize)>,
}

impl Blobs {
    fn of(values: &[Value]) -> Blobs {
        let mut b = Blobs {
            bytes: Vec::with_capacity(values.len().saturating_mul(6)),
            spans: Vec::with_capacity(values.len()),
        };
        for v in values {
            let start = b.bytes.len();
            bin::append_value(&mut b.bytes, v);
            b.spans.push((start, b.bytes.len()));
        }
        b.sort();
        b
    }

    fn push(&mut self, value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.spans.push((start, self.bytes.len()));
    }

    fn get(&self, span: (usize, usize)) -> &[u8] {
        self.bytes.get(span.0..span.1).unwrap_or_default()
    }

    /// Sorted (a group read back from the store already is), without
    /// duplicates. Each value is compared by its first 8 bytes as a
    /// number first (most values are that short), then whole.
    fn sort(&mut self) {
        let bytes = &self.bytes;
        let at = |s: &(usize, usize)| bytes.get(s.0..s.1).unwrap_or_default();
        if !self.spans.is_sorted_by(|x, y| at(x) <= at(y)) {
            let prefix = |b: &[u8]| {
                let mut k = [0u8; 8];
                for (d, s) in k.iter_mut().zip(b) {
                    *d = *s;
                }
                u64::from_be_bytes(k)
            };
            let mut keyed: Vec<(u64, (usize, usize))> =
                self.spans.iter().map(|s| (prefix(at(s)), *s)).collect();
            keyed.sort_unstable_by(|(kx, x), (ky, y)| kx.cmp(ky).then_with(|| at(x).cmp(at(y))));
            self.spans = keyed.into_iter().map(|(_, s)| s).collect();
        }
        self.spans.dedup_by(|x, y| at(x) == at(y));
    }

    fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.spans.iter().map(|s| self.get(*s))
    }
}

/// Rows written per statement when many are.
const BATCH: usize = 128;

/// The statement writing `BATCH` rows of one object and attribute
/// (`?1`, `?2`) at once: an insert of values `?3...`, or a delete.
fn batch_sql(side: Side, insert: bool) -> String {
    let table = match side {
        Side::Cs => ("cs_val", "cs_id"),
        Side::Mv => ("mv_val", "mv_id"),
    };
    let slots = (3..BATCH + 3).map(|i| format!("?{i}"));
    if insert {
        let rows: Vec<String> = slots.map(|s| format!("(?1, ?2, {s})")).collect();
        format!(
            "INSERT OR IGNORE INTO {} ({}, attr, value) VALUES {}",
            table.0,
            table.1,
            rows.join(", ")
        )
    } else {
        let slots: Vec<String> = slots.collect();
        format!(
            "DELETE FROM {} WHERE {} = ?1 AND attr = ?2 AND value IN ({})",
            table.0,
            table.1,
            slots.join(", ")
        )
    }
}

pub(super) static BATCH_SQL: std::sync::LazyLock<[String; 4]> = std::sync::LazyLock::new(|| {
    [
        batch_sql(Side::Cs, true),
        batch_sql(Side::Cs, false),
        batch_sql(Side::Mv, true),
        batch_sql(Side::Mv, false),
    ]
});

/// Insert (`insert`) or delete the rows of `values` of attribute `attr`
/// of object `id`: `BATCH` a statement, the rest one by one.
fn write_many<'v>(
    conn: &Connection,
    side: Side,
    insert: bool,
    id: i64,
    attr: i64,
    values: impl ExactSizeIterator<Item = &'v [u8]>,
) -> rusqlite::Result<()> {
    let mut left = values.len();
    let mut values = values.peekable();
    if left >= BATCH {
        let i = (side as usize) * 2 + usize::from(!insert);
        let sql = BATCH_SQL.get(i).map_or("", String::as_str);
        let mut stmt = conn.prepare_cached(sql)?;
        stmt.raw_bind_parameter(1, id)?;
        stmt.raw_bind_parameter(2, attr)?;
        while left >= BATCH {
            for slot in 3..BATCH + 3 {
                let v = values.next().unwrap_or_default();
                stmt.raw_bind_parameter(slot, v)?;
            }
            stmt.raw_execute()?;
            left -= BATCH;
        }
    }
    if values.peek().is_some() {
        let sql = if insert {
            INSERT.of(side)
        } else {
            DELETE.of(side)
        };
        let mut stmt = conn.prepare_cached(sql)?;
        for v in values {
            stmt.execute(params![id, attr, v])?;
        }
    }
    Ok(())
}

/// Carry out `plan` for object `id` (inside the caller's transaction).
pub(crate) fn apply(
    conn: &Connection,
    path: &Path,
    side: Side,
    id: i64,
    plan: &RowPlan,
) -> StoreResult<()> {
    let err = |e| {
        error::sql(
            path,
            format_args!("write the value rows of {} {id}", side.what()),
            e,
        )
    };
    if plan.clear {
        // Every attribute number but the marked ones: the gaps between
        // them (index rows of single values, negative, included).
        let mut del = conn.prepare_cached(DELETE_BETWEEN.of(side)).map_err(err)?;
        let mut lo = i64::MIN;
        for (attr, _) in &plan.marked {
            del.execute(params![id, lo, attr]).map_err(err)?;
            lo = *attr;
        }
        del.execute(params![id, lo, i64::MAX]).map_err(err)?;
    }
    for (attr, values) in &plan.marked {
        let Some(values) = values else { continue };
        if !plan.clear {
            // A new object: no rows yet.
            write_many(conn, side, true, id, *attr, values.iter()).map_err(err)?;
            continue;
        }
        // The rows there, in order: write only the difference.
        let have = stored(conn, side, id, *attr).map_err(err)?;
        let (mut gone, mut new) = (Vec::new(), Vec::new());
        let (mut a, mut b) = (have.iter().peekable(), values.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x == y => {
                    a.next();
                    b.next();
                }
                (Some(x), y) if y.is_none_or(|y| x < y) => {
                    gone.push(*x);
                    a.next();
                }
                (_, Some(y)) => {
                    new.push(*y);
                    b.next();
                }
                (Some(_), None) | (None, None) => break,
            }
        }
        if gone.len() > have.spans.len() / 2 {
            // Mostly replaced: one range delete, then every value.
            conn.prepare_cached(DELETE_BETWEEN.of(side))
                .and_then(|mut s| s.execute(params![id, attr - 1, attr + 1]))
                .map_err(err)?;
            write_many(conn, side, true, id, *attr, values.iter()).map_err(err)?;
            continue;
        }
        write_many(conn, side, false, id, *attr, gone.into_iter()).map_err(err)?;
        write_many(conn, side, true, id, *attr, new.into_iter()).map_err(err)?;
    }
    if !plan.inline.is_empty() {
        let mut ins = conn.prepare_cached(INSERT.of(side)).map_err(err)?;
        for (attr, v) in &plan.inline {
            ins.execute(params![id, -attr, v]).map_err(err)?;
        }
    }
    Ok(())
}

/// The stored rows of attribute number `attr` of object `id`, in order.
fn stored(conn: &Connection, side: Side, id: i64, attr: i64) -> rusqlite::Result<Blobs> {
    let mut stmt = conn.prepare_cached(VALUES.of(side))?;
    let mut rows = stmt.query(params![id, attr])?;
    let mut out = Blobs::default();
    while let Some(row) = rows.next()? {
        out.push(row.get_ref(0)?.as_blob()?);
    }
    Ok(out)
}

/// Delete every row of object `id`.
pub(crate) fn delete_all(conn: &Connection, path: &Path, side: Side, id: i64) -> StoreResult<()> {
    conn.prepare_cached(DELETE_ALL.of(side))
        .and_then(|mut s| s.execute([id]))
        .map_err(|e| {
            error::sql(
                path,
                format_args!("delete the value rows of {} {id}", side.what()),
                e,
            )
        })?;
    Ok(())
}

/// Insert `delta.add` and delete `delta.remove` among the rows of
/// attribute `attr` of object `id` (which must exist; `attr` must have
/// been declared).
pub(crate) fn change(
    conn: &Connection,
    path: &Path,
    side: Side,
    id: i64,
    attr: &str,
    delta: &ValueDelta,
) -> StoreResult<()> {
    let err = |e| {
        error::sql(
            path,
            format_args!("change the value rows of {} {id}", side.what()),
            e,
        )
    };
    let Some(a) = attr_id(conn, path, attr)? else {
        return Err(error::other(
            StoreErrorKind::Invalid,
            path,
            format!(
                "cannot change the values of {attr} of {} {id} as rows: no MA or type declares it (set_value_rows)",
                side.what()
            ),
        ));
    };
    let exists: bool = conn
        .prepare_cached(EXISTS.of(side))
        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
        .map_err(err)?;
    if !exists {
        return Err(error::other(
            StoreErrorKind::Invalid,
            path,
            format!(
                "cannot change the values of {attr} of {} {id}: it does not exist",
                side.what()
            ),
        ));
    }
    let mut buf = Vec::new();
    if !delta.remove.is_empty() {
        let mut del = conn.prepare_cached(DELETE.of(side)).map_err(err)?;
        for v in &delta.remove {
            bin::encode_value(&mut buf, v);
            del.execute(params![id, a, buf]).map_err(err)?;
        }
    }
    if !delta.add.is_empty() {
        let mut ins = conn.prepare_cached(INSERT.of(side)).map_err(err)?;
        for v in &delta.add {
            bin::encode_value(&mut buf, v);
            ins.execute(params![id, a, buf]).map_err(err)?;
        }
    }
    Ok(())
}
