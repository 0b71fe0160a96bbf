//! The metaverse attribute index that serves `mv_find` (join rules): for
//! each declared (MV type, attribute) pair, one `mv_key` row per value (each
//! value of a multi-valued attribute), compared as text. The declared pairs
//! are persisted in `mv_index`; `set_mv_index` adds and drops pairs and
//! builds the keys of existing objects.

use super::bin::BodyError;
use super::codec;
use super::error;
use super::names::NameCache;
use crate::api::{StoreError, StoreResult};
use autosync_model::{MvId, MvObject, Value};
use rusqlite::{Connection, Statement, params};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::path::Path;

/// The declared index pairs, by MV type: (attribute, key id).
#[derive(Debug, Default, Clone)]
pub(crate) struct IndexDefs {
    by_type: FxHashMap<String, Vec<(String, i64)>>,
}

impl IndexDefs {
    pub(crate) fn load(conn: &Connection, path: &Path) -> StoreResult<Self> {
        let op = |e| error::sql(path, "read the metaverse index definitions of store", e);
        let mut stmt = conn
            .prepare("SELECT k, type, attr FROM mv_index ORDER BY k")
            .map_err(op)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(op)?;
        let mut defs = IndexDefs::default();
        for (k, ty, attr) in rows {
            defs.by_type.entry(ty).or_default().push((attr, k));
        }
        Ok(defs)
    }

    /// The key id of an indexed pair.
    pub(crate) fn key(&self, object_type: &str, attr: &str) -> Option<i64> {
        self.by_type
            .get(object_type)?
            .iter()
            .find(|(a, _)| a == attr)
            .map(|(_, k)| *k)
    }

    pub(crate) fn has_type(&self, object_type: &str) -> bool {
        self.by_type.contains_key(object_type)
    }

    /// The index keys of `obj`, sorted and without duplicates, into `out`.
    pub(crate) fn keys_of(&self, obj: &MvObject, out: &mut Vec<(i64, String)>) {
        out.clear();
        let Some(attrs) = self.by_type.get(&obj.object_type) else {
            return;
        };
        for (attr, k) in attrs {
            if let Some(v) = obj.get(attr) {
                push_texts(*k, v, out);
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// The texts a value is found by: itself, or each of its values.
pub(crate) fn texts(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    push_texts(0, v, &mut out);
    out.into_iter().map(|(_, t)| t).collect()
}

/// Call `f` with each text a value is found by (see [`texts`]), borrowing
/// strings; stops at the first `true` and returns whether there was one.
pub(crate) fn any_text(v: &Value, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Multi(vs) => vs.iter().any(|v| any_text(v, f)),
        other => f(&other.to_text()),
    }
}

fn push_texts(k: i64, v: &Value, out: &mut Vec<(i64, String)>) {
    match v {
        Value::Multi(vs) => vs.iter().for_each(|v| push_texts(k, v, out)),
        other => out.push((k, other.to_text())),
    }
}

/// The statement that inserts one index key.
pub(crate) const KEY_INSERT: &str =
    "INSERT OR IGNORE INTO mv_key (k, value, mv_id) VALUES (?1, ?2, ?3)";

/// The error of indexing metaverse object `mv_id`.
pub(crate) fn index_error(path: &Path, mv_id: MvId, e: rusqlite::Error) -> StoreError {
    error::sql(
        path,
        format_args!("index metaverse object {mv_id} in store"),
        e,
    )
}

/// Insert the keys of a new object.
pub(crate) fn insert_keys(
    conn: &Connection,
    path: &Path,
    mv_id: MvId,
    keys: &[(i64, String)],
) -> StoreResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached(KEY_INSERT)
        .map_err(|e| index_error(path, mv_id, e))?;
    insert_keys_with(&mut stmt, path, mv_id, keys)
}

/// Insert the keys of a new object with `stmt` (prepared from
/// [`KEY_INSERT`]).
pub(crate) fn insert_keys_with(
    stmt: &mut Statement<'_>,
    path: &Path,
    mv_id: MvId,
    keys: &[(i64, String)],
) -> StoreResult<()> {
    for (k, value) in keys {
        stmt.execute(params![k, value, mv_id])
            .map_err(|e| index_error(path, mv_id, e))?;
    }
    Ok(())
}

/// The index keys of stored metaverse object `mv_id`, sorted, into `out`
/// (computed from its stored body: the keys are a function of the body and
/// the definitions, which `set_index` keeps them in step with). `None` if
/// the object does not exist, else whether its type is indexed.
pub(crate) fn stored_keys(
    conn: &Connection,
    path: &Path,
    defs: &IndexDefs,
    names: &NameCache,
    mv_id: MvId,
    out: &mut Vec<(i64, String)>,
) -> StoreResult<Option<bool>> {
    out.clear();
    let op = |e| {
        error::sql(
            path,
            format_args!("read metaverse object {mv_id} from store"),
            e,
        )
    };
    let mut stmt = conn
        .prepare_cached("SELECT type, data FROM mv WHERE id = ?1")
        .map_err(op)?;
    let mut rows = stmt.query([mv_id]).map_err(op)?;
    let Some(row) = rows.next().map_err(op)? else {
        return Ok(None);
    };
    let ty = row
        .get_ref(0)
        .map_err(op)?
        .as_str()
        .map_err(|e| op(e.into()))?;
    let Some(attrs) = defs.by_type.get(ty) else {
        return Ok(Some(false));
    };
    let body = row
        .get_ref(1)
        .map_err(op)?
        .as_bytes()
        .map_err(|e| op(e.into()))?;
    let pick = |name: &str| attrs.iter().any(|(a, _)| a == name);
    let mut found = |name: &str, v: &Value| {
        if let Some((_, k)) = attrs.iter().find(|(a, _)| a == name) {
            push_texts(*k, v, out);
        }
    };
    let mut res = super::bin::mv_attrs(body, &names.get(), &pick, &mut found);
    if let Err(BodyError::UnknownName(_)) = res {
        // A number declared after this copy was read: read it again.
        let newer = names.reload(conn, path)?;
        out.clear();
        let mut found = |name: &str, v: &Value| {
            if let Some((_, k)) = attrs.iter().find(|(a, _)| a == name) {
                push_texts(*k, v, out);
            }
        };
        res = super::bin::mv_attrs(body, &newer, &pick, &mut found);
    }
    res.map_err(|e| error::decode(path, format!("metaverse object {mv_id}"), e))?;
    out.sort_unstable();
    out.dedup();
    Ok(Some(true))
}

/// Change the keys of object `mv_id` from `old` to `new` (both sorted and
/// without duplicates), writing only the keys that differ (the usual case
/// is a join attribute that stays the same: no write at all).
pub(crate) fn change_keys(
    conn: &Connection,
    path: &Path,
    mv_id: MvId,
    old: &[(i64, String)],
    new: &[(i64, String)],
) -> StoreResult<()> {
    if old == new {
        return Ok(());
    }
    let op = |e| {
        error::sql(
            path,
            format_args!("index metaverse object {mv_id} in store"),
            e,
        )
    };
    let gone = old.iter().filter(|k| new.binary_search(k).is_err());
    let mut del = None;
    for (k, value) in gone {
        let stmt = match &mut del {
            Some(s) => s,
            None => del.insert(
                conn.prepare_cached(
                    "DELETE FROM mv_key WHERE k = ?1 AND value = ?2 AND mv_id = ?3",
                )
                .map_err(op)?,
            ),
        };
        stmt.execute(params![k, value, mv_id]).map_err(op)?;
    }
    let added: Vec<(i64, String)> = new
        .iter()
        .filter(|k| old.binary_search(k).is_err())
        .cloned()
        .collect();
    insert_keys(conn, path, mv_id, &added)
}

/// Make the declared pairs exactly `wanted`: drop the keys of pairs no longer
/// wanted, build the keys of new pairs from the stored objects. Runs inside
/// the caller's write transaction; returns the new definitions.
pub(crate) fn set_index(
    conn: &Connection,
    path: &Path,
    names: &NameCache,
    wanted: &[(String, String)],
) -> StoreResult<IndexDefs> {
    let op = |e| error::sql(path, "change the metaverse index of store", e);
    let current = IndexDefs::load(conn, path)?;
    let wanted: BTreeSet<(&str, &str)> = wanted
        .iter()
        .map(|(t, a)| (t.as_str(), a.as_str()))
        .collect();
    for (ty, attrs) in &current.by_type {
        for (attr, k) in attrs {
            if !wanted.contains(&(ty.as_str(), attr.as_str())) {
                conn.execute("DELETE FROM mv_key WHERE k = ?1", [k])
                    .map_err(op)?;
                conn.execute("DELETE FROM mv_index WHERE k = ?1", [k])
                    .map_err(op)?;
                tracing::info!(store = %path.display(), mv_type = %ty, attr = %attr, "metaverse index dropped");
            }
        }
    }
    let mut buf = Vec::new();
    for (ty, attr) in wanted {
        if current.key(ty, attr).is_some() {
            continue;
        }
        conn.execute(
            "INSERT INTO mv_index (type, attr) VALUES (?1, ?2)",
            params![ty, attr],
        )
        .map_err(op)?;
        let k = conn.last_insert_rowid();
        let mut stmt = conn
            .prepare("SELECT id, data FROM mv WHERE type = ?1")
            .map_err(op)?;
        let mut rows = stmt.query([ty]).map_err(op)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(op)? {
            let id: i64 = row.get(0).map_err(op)?;
            let obj: MvObject = codec::decode_bin(
                row,
                path,
                "metaverse object",
                super::bin::decode_mv,
                codec::NameSrc { cache: names, conn },
            )?;
            if let Some(v) = obj.get(attr) {
                buf.clear();
                push_texts(k, v, &mut buf);
                buf.sort_unstable();
                buf.dedup();
                insert_keys(conn, path, id, &buf)?;
                n += 1;
            }
        }
        tracing::info!(store = %path.display(), mv_type = %ty, attr = %attr, objects = n, "metaverse index built");
    }
    IndexDefs::load(conn, path)
}
