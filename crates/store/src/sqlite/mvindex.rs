//! The metaverse join indexes that serve `mv_find` (join rules): for each
//! declared index (an MV type and an attribute, or a key the engine
//! derives from the object: `MvKeyDerive`), one `mv_key` row per value
//! (each value of a multi-valued attribute), as text, strings folded to
//! lower case (`api::join_texts`), so that a lookup is one probe and
//! ignores case. The declared indexes are persisted in `mv_index` (a
//! derived one with `derived = 1`: its computation is known only to the
//! process that declared it); `set_mv_index` adds and drops indexes and
//! builds the keys of existing objects. The store computes a derived key
//! whenever it writes an object of its type, so a process that has not
//! declared a derived index is refused such writes.
//!
//! An attribute kept as value rows (see `rows`) has no keys here: its rows
//! answer `mv_find` (a light object's placeholder would otherwise drop
//! them). [`IndexDefs`] carries the row declaration for that; a derived
//! index must not read such an attribute (it would see the placeholder
//! of a light object).

use super::bin::BodyError;
use super::codec;
use super::error;
use super::names::{NameCache, Names};
use super::rows::RowDecl;
use crate::api::{MvIndexDef, MvKeyDerive, StoreError, StoreErrorKind, StoreResult, join_texts};
use autosync_model::{MvId, MvObject, MvValue, Value};
use rusqlite::{Connection, Statement, params};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// One declared index of a type.
#[derive(Clone)]
struct IndexKey {
    /// The attribute, or the derived index's name.
    name: String,
    /// Its number in `mv_key`.
    k: i64,
    derived: bool,
    /// How a derived index's keys are computed: `None` until the process
    /// declares it (`set_mv_index`).
    derive: Option<Arc<dyn MvKeyDerive>>,
}

impl IndexKey {
    /// Push the texts of `obj` under this index into `out`.
    fn push(&self, obj: &MvObject, path: &Path, out: &mut Vec<(i64, String)>) -> StoreResult<()> {
        self.push_unless(obj, path, out, &RowDecl::default())
    }

    /// [`IndexKey::push`], nothing for an attribute kept as rows.
    fn push_unless(
        &self,
        obj: &MvObject,
        path: &Path,
        out: &mut Vec<(i64, String)>,
        rows: &RowDecl,
    ) -> StoreResult<()> {
        if !self.derived {
            if rows.mv_attr(&obj.object_type, &self.name).is_some() {
                return Ok(());
            }
            if let Some(v) = obj.get(&self.name) {
                push_texts(self.k, v, out);
            }
            return Ok(());
        }
        let Some(derive) = &self.derive else {
            return Err(undeclared(path, &obj.object_type, &self.name));
        };
        if let Some(v) = derive.derive(obj) {
            push_texts(self.k, &v, out);
        }
        Ok(())
    }
}

/// The error of writing an object whose derived index this process cannot
/// compute.
fn undeclared(path: &Path, object_type: &str, name: &str) -> StoreError {
    error::other(
        StoreErrorKind::Invalid,
        path,
        format!(
            "cannot write a metaverse object of type {object_type}: its join index `{name}` is computed by the engine, and this process has not declared it (set_mv_index)"
        ),
    )
}

/// The declared indexes, by MV type, and the declared value rows (what
/// the store was told to keep apart from bodies, in one place).
#[derive(Default, Clone)]
pub(crate) struct IndexDefs {
    by_type: FxHashMap<String, Vec<IndexKey>>,
    pub(crate) rows: Arc<RowDecl>,
}

impl std::fmt::Debug for IndexDefs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (ty, keys) in &self.by_type {
            let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
            m.entry(ty, &names);
        }
        m.finish()
    }
}

impl IndexDefs {
    /// The persisted definitions (derived ones without their computation;
    /// no value rows: see [`IndexDefs::with_rows`]).
    pub(crate) fn load(conn: &Connection, path: &Path) -> StoreResult<Self> {
        let op = |e| error::sql(path, "read the metaverse index definitions of store", e);
        let mut stmt = conn
            .prepare("SELECT k, type, attr, derived FROM mv_index ORDER BY k")
            .map_err(op)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(op)?;
        let mut defs = IndexDefs::default();
        for (k, ty, name, derived) in rows {
            defs.by_type.entry(ty).or_default().push(IndexKey {
                name,
                k,
                derived,
                derive: None,
            });
        }
        Ok(defs)
    }

    /// These definitions with the computations of the derived indexes of
    /// `declared`.
    fn with_derives(mut self, declared: &[MvIndexDef]) -> Self {
        for d in declared {
            let Some(derive) = &d.derive else { continue };
            if let Some(key) = self
                .by_type
                .get_mut(&d.object_type)
                .and_then(|keys| keys.iter_mut().find(|k| k.derived && k.name == d.key))
            {
                key.derive = Some(Arc::clone(derive));
            }
        }
        self
    }

    /// These definitions with the row declaration `rows`.
    pub(crate) fn with_rows(mut self, rows: Arc<RowDecl>) -> Self {
        self.rows = rows;
        self
    }

    /// The non-derived indexes of attributes kept as rows by `rows` or by
    /// these definitions' declaration, but not by both: their keys are to
    /// be dropped or built (`(type, key id)`).
    pub(crate) fn row_changes(&self, rows: &RowDecl) -> Vec<(String, i64, bool)> {
        let mut out = Vec::new();
        for (ty, keys) in &self.by_type {
            for key in keys.iter().filter(|k| !k.derived) {
                let before = self.rows.mv_attr(ty, &key.name).is_some();
                let after = rows.mv_attr(ty, &key.name).is_some();
                if before != after {
                    out.push((ty.clone(), key.k, after));
                }
            }
        }
        out
    }

    /// The key id of an index (an attribute, or a derived index's name).
    pub(crate) fn key(&self, object_type: &str, name: &str) -> Option<i64> {
        self.by_type
            .get(object_type)?
            .iter()
            .find(|key| key.name == name)
            .map(|key| key.k)
    }

    /// The key id of the index of attribute `attr` (not a derived one).
    pub(crate) fn attribute_key(&self, object_type: &str, attr: &str) -> Option<i64> {
        self.by_type
            .get(object_type)?
            .iter()
            .find(|key| !key.derived && key.name == attr)
            .map(|key| key.k)
    }

    pub(crate) fn has_type(&self, object_type: &str) -> bool {
        self.by_type.contains_key(object_type)
    }

    /// The index keys of `obj`, sorted and without duplicates, into `out`.
    /// Fails when a derived index of its type was not declared by this
    /// process.
    pub(crate) fn keys_of(
        &self,
        obj: &MvObject,
        path: &Path,
        out: &mut Vec<(i64, String)>,
    ) -> StoreResult<()> {
        out.clear();
        let Some(keys) = self.by_type.get(&obj.object_type) else {
            return Ok(());
        };
        for key in keys {
            key.push_unless(obj, path, out, &self.rows)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    }
}

/// The texts a value is found by: itself, or each of its values, strings
/// folded (see `api::join_texts`).
pub(crate) fn texts(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    push_texts(0, v, &mut out);
    out.into_iter().map(|(_, t)| t).collect()
}

/// Call `f` with each text a value is found by (see [`texts`]), borrowing
/// strings when they need no folding; stops at the first `true` and returns
/// whether there was one.
pub(crate) fn any_text(v: &Value, f: &mut dyn FnMut(&str) -> bool) -> bool {
    join_texts(v, &mut |t| !f(t)) == Some(false)
}

/// The texts of `v` (as `api::join_texts` gives them), owned, under key
/// id `k`.
fn push_texts(k: i64, v: &Value, out: &mut Vec<(i64, String)>) {
    match v {
        Value::Multi(vs) => vs.iter().for_each(|v| push_texts(k, v, out)),
        Value::String(s) => out.push((k, crate::api::fold_case(s).into_owned())),
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
/// the object does not exist, else whether its type is indexed and whether
/// its type may hold value rows (see `rows`).
pub(crate) fn stored_keys(
    conn: &Connection,
    path: &Path,
    defs: &IndexDefs,
    names: &NameCache,
    mv_id: MvId,
    out: &mut Vec<(i64, String)>,
) -> StoreResult<Option<(bool, bool)>> {
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
    let may_hold = defs.rows.mv_may_hold(ty);
    let Some(keys) = defs.by_type.get(ty) else {
        return Ok(Some((false, may_hold)));
    };
    let body = row
        .get_ref(1)
        .map_err(op)?
        .as_bytes()
        .map_err(|e| op(e.into()))?;
    let at = Stored {
        conn,
        path,
        id: mv_id,
        rows: &defs.rows,
    };
    let mut res = stored_texts(ty, body, &names.get(), keys, &at, out);
    if let Err(Found::Body(BodyError::UnknownName(_))) = res {
        // A number declared after this copy was read: read it again.
        let newer = names.reload(conn, path)?;
        res = stored_texts(ty, body, &newer, keys, &at, out);
    }
    match res {
        Ok(()) => {}
        Err(Found::Body(e)) => {
            return Err(error::decode(path, format!("metaverse object {mv_id}"), e));
        }
        Err(Found::Store(e)) => return Err(e),
    }
    out.sort_unstable();
    out.dedup();
    Ok(Some((true, may_hold)))
}

/// Why the keys of a stored body could not be computed.
enum Found {
    Body(BodyError),
    Store(StoreError),
}

/// Where a stored body is: its object, for reading the rows of an
/// attribute its body marks.
struct Stored<'a> {
    conn: &'a Connection,
    path: &'a Path,
    id: MvId,
    rows: &'a RowDecl,
}

/// The texts of a stored body of type `ty` under `keys` into `out`
/// (cleared first), decoding only the attributes they read (and reading
/// the rows of one whose values are rows but that is not declared so any
/// more: its index was built from them).
fn stored_texts(
    ty: &str,
    body: &[u8],
    names: &Names,
    keys: &[IndexKey],
    at: &Stored<'_>,
    out: &mut Vec<(i64, String)>,
) -> Result<(), Found> {
    out.clear();
    let path = at.path;
    let derived = keys.iter().any(|k| k.derived);
    let pick = |name: &str| {
        keys.iter().any(|k| {
            if k.derived {
                k.derive
                    .as_ref()
                    .is_some_and(|d| d.reads().iter().any(|r| r == name))
            } else {
                k.name == name && at.rows.mv_attr(ty, name).is_none()
            }
        })
    };
    // What derived keys read, as an object of its own.
    let mut read = MvObject::new(ty);
    let mut failed = None;
    let mut found = |name: &str, v: &Value, marked: bool| {
        let whole;
        let v = if marked {
            match super::rows::values(at.conn, path, super::rows::Side::Mv, at.id, name) {
                Ok(vs) => {
                    whole = Value::Multi(vs);
                    &whole
                }
                Err(e) => {
                    failed = Some(e);
                    return;
                }
            }
        } else {
            v
        };
        for key in keys.iter().filter(|k| !k.derived && k.name == name) {
            push_texts(key.k, v, out);
        }
        if derived {
            read.attributes.insert(
                name.to_owned(),
                MvValue {
                    value: v.clone(),
                    contributor: String::new(),
                },
            );
        }
    };
    super::bin::mv_attrs(body, names, &pick, &mut found).map_err(Found::Body)?;
    if let Some(e) = failed {
        return Err(Found::Store(e));
    }
    for key in keys.iter().filter(|k| k.derived) {
        key.push(&read, path, out).map_err(Found::Store)?;
    }
    Ok(())
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

/// Make the declared indexes exactly `wanted`: drop the keys of indexes no
/// longer wanted, build the keys of new ones from the stored objects. Runs
/// inside the caller's write transaction; returns the new definitions.
pub(crate) fn set_index(
    conn: &Connection,
    path: &Path,
    names: &NameCache,
    wanted: &[MvIndexDef],
    rows: &Arc<RowDecl>,
) -> StoreResult<IndexDefs> {
    let op = |e| error::sql(path, "change the metaverse index of store", e);
    let current = IndexDefs::load(conn, path)?;
    let wanted_set: BTreeSet<(&str, &str, bool)> = wanted
        .iter()
        .map(|d| (d.object_type.as_str(), d.key.as_str(), d.derive.is_some()))
        .collect();
    for (ty, keys) in &current.by_type {
        for key in keys {
            if !wanted_set.contains(&(ty.as_str(), key.name.as_str(), key.derived)) {
                drop_index(conn, path, key.k)?;
                tracing::info!(store = %path.display(), mv_type = %ty, index = %key.name, "metaverse index dropped");
            }
        }
    }
    let mut added = BTreeSet::new();
    for d in wanted {
        let derived = d.derive.is_some();
        let present = current.by_type.get(&d.object_type).is_some_and(|keys| {
            keys.iter()
                .any(|key| key.derived == derived && key.name == d.key)
        });
        if present || !added.insert((d.object_type.as_str(), d.key.as_str())) {
            continue;
        }
        conn.execute(
            "INSERT INTO mv_index (type, attr, derived) VALUES (?1, ?2, ?3)",
            params![d.object_type, d.key, derived],
        )
        .map_err(op)?;
        let key = IndexKey {
            name: d.key.clone(),
            k: conn.last_insert_rowid(),
            derived,
            derive: d.derive.clone(),
        };
        build(conn, path, names, &d.object_type, &key, rows)?;
    }
    Ok(IndexDefs::load(conn, path)?
        .with_derives(wanted)
        .with_rows(Arc::clone(rows)))
}

/// Drop the keys of index `k` (of type `ty`, an attribute's) and, unless
/// its attribute is kept as rows now (`rows`), build them again from the
/// stored objects: its attribute became, or stopped being, a row
/// attribute.
pub(crate) fn rebuild_one(
    conn: &Connection,
    path: &Path,
    names: &NameCache,
    defs: &IndexDefs,
    ty: &str,
    k: i64,
) -> StoreResult<()> {
    conn.execute("DELETE FROM mv_key WHERE k = ?1", [k])
        .map_err(|e| error::sql(path, "change the metaverse index of store", e))?;
    let Some(key) = defs
        .by_type
        .get(ty)
        .and_then(|keys| keys.iter().find(|key| key.k == k))
    else {
        return Ok(());
    };
    build(conn, path, names, ty, key, &defs.rows)
}

fn drop_index(conn: &Connection, path: &Path, k: i64) -> StoreResult<()> {
    let op = |e| error::sql(path, "change the metaverse index of store", e);
    conn.execute("DELETE FROM mv_key WHERE k = ?1", [k])
        .map_err(op)?;
    conn.execute("DELETE FROM mv_index WHERE k = ?1", [k])
        .map_err(op)?;
    Ok(())
}

/// Build the keys of index `key` (of type `ty`, holding none yet) from the
/// stored objects.
fn build(
    conn: &Connection,
    path: &Path,
    names: &NameCache,
    ty: &str,
    key: &IndexKey,
    rows: &RowDecl,
) -> StoreResult<()> {
    let op = |e| error::sql(path, "build the metaverse index of store", e);
    if !key.derived && rows.mv_attr(ty, &key.name).is_some() {
        // Its rows answer `mv_find`.
        return Ok(());
    }
    let mut stmt = conn
        .prepare("SELECT id, data FROM mv WHERE type = ?1")
        .map_err(op)?;
    let mut rows = stmt.query([ty]).map_err(op)?;
    let mut buf = Vec::new();
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(op)? {
        let id: i64 = row.get(0).map_err(op)?;
        let (mut obj, marks) = codec::decode_bin(
            row,
            path,
            "metaverse object",
            super::bin::decode_mv_marked,
            codec::NameSrc { cache: names, conn },
        )?;
        super::rows::fill_mv(conn, path, &mut obj, &marks)?;
        buf.clear();
        key.push(&obj, path, &mut buf)?;
        if !buf.is_empty() {
            buf.sort_unstable();
            buf.dedup();
            insert_keys(conn, path, id, &buf)?;
            n += 1;
        }
    }
    tracing::info!(store = %path.display(), mv_type = %ty, index = %key.name, objects = n, "metaverse index built");
    Ok(())
}

/// Build the keys of every declared attribute index again from the stored
/// objects (the migration to folded keys: schema version 5); a derived
/// index, whose computation the store does not know, is dropped, to be
/// built again when the engine declares it. Runs inside the caller's
/// write transaction.
pub(crate) fn rebuild(conn: &Connection, path: &Path) -> StoreResult<()> {
    let names = NameCache::new(Names::load(conn, path)?);
    let defs = IndexDefs::load(conn, path)?;
    conn.execute("DELETE FROM mv_key", [])
        .map_err(|e| error::sql(path, "rebuild the metaverse index of store", e))?;
    for (ty, keys) in &defs.by_type {
        for key in keys {
            if key.derived {
                drop_index(conn, path, key.k)?;
            } else {
                build(conn, path, &names, ty, key, &defs.rows)?;
            }
        }
    }
    Ok(())
}
