//! Value rows: the multi-valued attributes declared with
//! [`Store::set_value_rows`](crate::Store::set_value_rows) (a group's
//! `members`) keep one row per value (`cs_val`, `mv_val`: object id,
//! attribute number, the value's canonical bytes as `bin::encode_value`
//! writes them), so that a one-member change of a group of 500,000 writes
//! one row ([`change`]), where a body would be written and read whole.
//!
//! What says an attribute has rows: a marker in the object's body (see
//! `bin`: the value tag `T_ROWS` in place of the value), not the current
//! declaration, so an object written with rows reads back whole after the
//! declaration changed, and an object without markers (every object of an
//! MA or type without row attributes) costs a read nothing extra. A full
//! read puts each marked attribute's rows in ([`fill_cs`], [`fill_mv`]); a
//! light read leaves the placeholder `Value::Multi([])` where there are
//! rows, one index probe each, and drops the attribute where there are none
//! ([`light_cs`], [`light_mv`]).
//!
//! Writes ([`plan`], [`apply`]): a declared attribute whose value is a
//! non-empty multi-value gets the marker and its rows are made exactly its
//! values (the rows already there are read and only the difference is
//! written: replaying a 500k group unchanged writes nothing); the
//! placeholder gets the marker and leaves the rows as they are (the caller
//! says it has rows: a light object written back); any other value stays
//! in the body. An update of an object of a scope (MA or type) that was
//! ever declared ([`RowDecl`] keeps every declaration seen) deletes the
//! rows of every attribute it does not mark: absent, single, or no longer
//! declared. A delete deletes them all.
//!
//! Lookups: `mv_find` of a declared metaverse attribute answers from
//! `mv_val_value` (attribute, value → object), exactly. A single value the
//! body keeps is indexed there too, under the attribute's number negated
//! (a row of its own kind: never read as a value). Declaring a metaverse
//! attribute moves the values of the existing objects of its type into
//! rows (`Store::set_value_rows`), so that every object is found.

use super::bin::{self, Marks};
use super::error;
use crate::api::{StoreErrorKind, StoreResult, ValueRows};
use autosync_model::{CsObject, MvObject, Value, ValueDelta};
use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::{FxHashMap, FxHashSet};
use std::path::Path;

/// Which objects' rows: connector space (`cs_val`) or metaverse (`mv_val`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Cs = 0,
    Mv = 1,
}

impl Side {
    fn what(self) -> &'static str {
        match self {
            Side::Cs => "connector-space object",
            Side::Mv => "metaverse object",
        }
    }
}

/// One statement per side.
struct Sql {
    cs: &'static str,
    mv: &'static str,
}

impl Sql {
    fn of(&self, side: Side) -> &'static str {
        match side {
            Side::Cs => self.cs,
            Side::Mv => self.mv,
        }
    }
}

const VALUES: Sql = Sql {
    cs: "SELECT value FROM cs_val WHERE cs_id = ?1 AND attr = ?2 ORDER BY value",
    mv: "SELECT value FROM mv_val WHERE mv_id = ?1 AND attr = ?2 ORDER BY value",
};
const INSERT: Sql = Sql {
    cs: "INSERT OR IGNORE INTO cs_val (cs_id, attr, value) VALUES (?1, ?2, ?3)",
    mv: "INSERT OR IGNORE INTO mv_val (mv_id, attr, value) VALUES (?1, ?2, ?3)",
};
const DELETE: Sql = Sql {
    cs: "DELETE FROM cs_val WHERE cs_id = ?1 AND attr = ?2 AND value = ?3",
    mv: "DELETE FROM mv_val WHERE mv_id = ?1 AND attr = ?2 AND value = ?3",
};
const DELETE_BETWEEN: Sql = Sql {
    cs: "DELETE FROM cs_val WHERE cs_id = ?1 AND attr > ?2 AND attr < ?3",
    mv: "DELETE FROM mv_val WHERE mv_id = ?1 AND attr > ?2 AND attr < ?3",
};
const DELETE_ALL: Sql = Sql {
    cs: "DELETE FROM cs_val WHERE cs_id = ?1",
    mv: "DELETE FROM mv_val WHERE mv_id = ?1",
};
const PRESENT: Sql = Sql {
    cs: "SELECT EXISTS (SELECT 1 FROM cs_val WHERE cs_id = ?1 AND attr = ?2 AND value = ?3)",
    mv: "SELECT EXISTS (SELECT 1 FROM mv_val WHERE mv_id = ?1 AND attr = ?2 AND value = ?3)",
};
const COUNT: Sql = Sql {
    cs: "SELECT count(*) FROM cs_val WHERE cs_id = ?1 AND attr = ?2",
    mv: "SELECT count(*) FROM mv_val WHERE mv_id = ?1 AND attr = ?2",
};
const ANY: Sql = Sql {
    cs: "SELECT EXISTS (SELECT 1 FROM cs_val WHERE cs_id = ?1 \
         AND attr = (SELECT id FROM val_attr WHERE name = ?2))",
    mv: "SELECT EXISTS (SELECT 1 FROM mv_val WHERE mv_id = ?1 \
         AND attr = (SELECT id FROM val_attr WHERE name = ?2))",
};
const EXISTS: Sql = Sql {
    cs: "SELECT EXISTS (SELECT 1 FROM cs WHERE id = ?1)",
    mv: "SELECT EXISTS (SELECT 1 FROM mv WHERE id = ?1)",
};
/// The objects of type `?3` whose attribute `?1` holds value `?2`, as a
/// row or as the single value of its body.
const FIND: &str = "SELECT v.mv_id FROM mv_val AS v JOIN mv AS m ON m.id = v.mv_id \
     WHERE v.attr IN (?1, -?1) AND v.value = ?2 AND m.type = ?3";

/// Every statement on the rows, for the test that each is an index search.
#[cfg(test)]
pub(crate) fn queries() -> Vec<String> {
    let mut out: Vec<String> = [
        VALUES,
        INSERT,
        DELETE,
        DELETE_BETWEEN,
        DELETE_ALL,
        PRESENT,
        COUNT,
    ]
    .iter()
    .flat_map(|q| [q.cs.to_owned(), q.mv.to_owned()])
    .collect();
    out.push(FIND.to_owned());
    out.push("SELECT id FROM val_attr WHERE name = ?1".to_owned());
    out.extend(BATCH_SQL.iter().cloned());
    out
}

/// The declared row attributes (as this process last declared or loaded
/// them) and the scopes ever declared.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RowDecl {
    /// Per MA: the declared hologram attributes and their numbers, by name.
    cs: FxHashMap<String, Vec<(String, i64)>>,
    /// Per metaverse object type, likewise.
    mv: FxHashMap<String, Vec<(String, i64)>>,
    /// MAs and types ever declared: their objects may hold rows.
    cs_ever: FxHashSet<String>,
    mv_ever: FxHashSet<String>,
}

impl RowDecl {
    /// As `val_decl` says.
    pub(crate) fn load(conn: &Connection, path: &Path) -> StoreResult<RowDecl> {
        let err = |e| error::sql(path, "read the value rows declared in store", e);
        let mut stmt = conn
            .prepare(
                "SELECT d.side, d.scope, d.attr, d.declared, a.id FROM val_decl AS d \
                 JOIN val_attr AS a ON a.name = d.attr ORDER BY d.side, d.scope, d.attr",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err)?;
        let mut d = RowDecl::default();
        for (side, scope, attr, declared, id) in rows {
            let (now, ever) = if side == Side::Cs as i64 {
                (&mut d.cs, &mut d.cs_ever)
            } else {
                (&mut d.mv, &mut d.mv_ever)
            };
            if declared {
                now.entry(scope.clone()).or_default().push((attr, id));
            }
            ever.insert(scope);
        }
        Ok(d)
    }

    /// The declared attributes of MA `ma`, sorted by name.
    pub(crate) fn cs_attrs(&self, ma: &str) -> &[(String, i64)] {
        self.cs.get(ma).map_or(&[], Vec::as_slice)
    }

    /// The declared attributes of metaverse type `ty`, sorted by name.
    pub(crate) fn mv_attrs(&self, ty: &str) -> &[(String, i64)] {
        self.mv.get(ty).map_or(&[], Vec::as_slice)
    }

    /// The number of metaverse attribute `attr` of type `ty`, if declared.
    pub(crate) fn mv_attr(&self, ty: &str, attr: &str) -> Option<i64> {
        let attrs = self.mv_attrs(ty);
        attrs
            .binary_search_by(|(n, _)| n.as_str().cmp(attr))
            .ok()
            .and_then(|i| attrs.get(i))
            .map(|(_, id)| *id)
    }

    /// Whether objects of MA `ma` may hold rows (it was ever declared).
    pub(crate) fn cs_may_hold(&self, ma: &str) -> bool {
        !self.cs_ever.is_empty() && self.cs_ever.contains(ma)
    }

    /// Whether objects of type `ty` may hold rows.
    pub(crate) fn mv_may_hold(&self, ty: &str) -> bool {
        !self.mv_ever.is_empty() && self.mv_ever.contains(ty)
    }

    /// Whether any connector-space object may hold rows.
    pub(crate) fn any_cs(&self) -> bool {
        !self.cs_ever.is_empty()
    }

    /// Whether any metaverse object may hold rows.
    pub(crate) fn any_mv(&self) -> bool {
        !self.mv_ever.is_empty()
    }

    /// The metaverse attributes declared here and not in `before`, per
    /// type.
    pub(crate) fn mv_added(&self, before: &RowDecl) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = self
            .mv
            .iter()
            .filter_map(|(ty, attrs)| {
                let added: Vec<String> = attrs
                    .iter()
                    .filter(|(a, _)| before.mv_attr(ty, a).is_none())
                    .map(|(a, _)| a.clone())
                    .collect();
                (!added.is_empty()).then(|| (ty.clone(), added))
            })
            .collect();
        out.sort();
        out
    }

    /// Whether the current declaration is `rows`.
    pub(crate) fn declares(&self, rows: &ValueRows) -> bool {
        fn same(
            have: &FxHashMap<String, Vec<(String, i64)>>,
            want: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        ) -> bool {
            let want: Vec<_> = want.iter().filter(|(_, a)| !a.is_empty()).collect();
            want.len() == have.len()
                && want.iter().all(|(scope, attrs)| {
                    have.get(*scope)
                        .is_some_and(|h| h.iter().map(|(n, _)| n).eq(attrs.iter()))
                })
        }
        same(&self.cs, &rows.cs) && same(&self.mv, &rows.mv)
    }
}

/// Make the declaration `rows` (inside the caller's transaction): number
/// new attribute names, mark what is declared now, keep the rest as ever
/// declared. Returns the new declaration.
pub(crate) fn declare(conn: &Connection, path: &Path, rows: &ValueRows) -> StoreResult<RowDecl> {
    let err = |e| error::sql(path, "declare the value rows of store", e);
    conn.execute("UPDATE val_decl SET declared = 0", [])
        .map_err(err)?;
    for (side, map) in [(Side::Cs, &rows.cs), (Side::Mv, &rows.mv)] {
        for (scope, attrs) in map {
            for attr in attrs {
                conn.prepare_cached("INSERT OR IGNORE INTO val_attr (name) VALUES (?1)")
                    .and_then(|mut s| s.execute([attr]))
                    .map_err(err)?;
                conn.prepare_cached(
                    "INSERT INTO val_decl (side, scope, attr, declared) VALUES (?1, ?2, ?3, 1) \
                     ON CONFLICT (side, scope, attr) DO UPDATE SET declared = 1",
                )
                .and_then(|mut s| s.execute(params![side as i64, scope, attr]))
                .map_err(err)?;
            }
        }
    }
    RowDecl::load(conn, path)
}

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

static BATCH_SQL: std::sync::LazyLock<[String; 4]> = std::sync::LazyLock::new(|| {
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

/// The number of attribute name `attr`, if it was ever declared.
fn attr_id(conn: &Connection, path: &Path, attr: &str) -> StoreResult<Option<i64>> {
    conn.prepare_cached("SELECT id FROM val_attr WHERE name = ?1")
        .and_then(|mut s| s.query_row([attr], |r| r.get(0)).optional())
        .map_err(|e| error::sql(path, "read the value rows' attribute names", e))
}

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
