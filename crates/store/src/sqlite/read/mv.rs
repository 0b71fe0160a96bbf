//! Reads of the metaverse and its join index.

use super::{CHUNK, Ctx, SMALL_CHUNK, next_chunk, placeholders};
use crate::api::{MvQuery, StoreErrorKind, StoreResult};
use crate::sqlite::bin;
use crate::sqlite::codec::{RawRows, decode_rows};
use crate::sqlite::error;
use crate::sqlite::mvindex;
use autosync_model::{MvId, MvObject, Value};
use rusqlite::params;
use rusqlite::types::Value as SqlValue;

impl Ctx<'_> {
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
