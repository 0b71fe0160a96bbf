//! Reads of the metaverse and its join index.

use super::{CHUNK, Ctx, SMALL_CHUNK, placeholders};
use crate::api::{MvQuery, StoreErrorKind, StoreResult};
use crate::sqlite::bin;
use crate::sqlite::codec::decode_rows;
use crate::sqlite::error;
use crate::sqlite::mvindex;
use crate::sqlite::rows;
use autosync_model::{MvId, MvObject, Value};
use rusqlite::params;
use rusqlite::types::Value as SqlValue;

impl Ctx<'_> {
    pub(crate) fn mv_get(&self, id: MvId, light: bool) -> StoreResult<Option<MvObject>> {
        self.one(
            "SELECT id, data FROM mv WHERE id = ?1",
            [id],
            &|| format!("read metaverse object {id} from store"),
            |r, p| self.mv_row_as(r, p, light),
        )
    }

    pub(crate) fn mv_get_many(&self, ids: &[MvId], light: bool) -> StoreResult<Vec<MvObject>> {
        let raw = self.chunked_rows(None, ids, (&MV_MANY_BIG, &MV_MANY_SMALL), &|| {
            format!("read {} metaverse objects from store", ids.len())
        })?;
        let decoded = decode_rows(
            &raw,
            self.path,
            "metaverse object",
            bin::decode_mv_marked,
            self.names(),
        )?;
        let mut out = Vec::with_capacity(decoded.len());
        for (mut o, marks) in decoded {
            self.rows_mv(&mut o, &marks, light)?;
            out.push(o);
        }
        Ok(out)
    }

    pub(crate) fn mv_find(
        &self,
        object_type: &str,
        attr: &str,
        value: &Value,
    ) -> StoreResult<Vec<MvId>> {
        if let Some(a) = self.defs.rows.mv_attr(object_type, attr) {
            let found = rows::find(
                self.conn,
                self.path,
                object_type,
                a,
                std::slice::from_ref(value),
            )?;
            return Ok(found.into_iter().map(|(_, id)| id).collect());
        }
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
        if let Some(a) = self.defs.rows.mv_attr(object_type, attr) {
            return rows::find(self.conn, self.path, object_type, a, values);
        }
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
        match (&query.object_type, &query.attribute, self.index_of(query)) {
            (Some(_), Some((_, v)), Some(k)) if !query.case_sensitive => self.collect(
                BY_KEY,
                params![k, crate::api::fold_case(v), after, lim],
                &op,
                |r, p| self.mv_row(r, p),
                &mut out,
            )?,
            (Some(_), Some((_, v)), Some(k)) => {
                // The index holds folded text: it narrows, then each value
                // is compared exactly.
                let folded = crate::api::fold_case(v);
                out = self.scan_filtered(
                    BY_KEY,
                    |after| (k, folded.clone(), after, SCAN),
                    |o| matches_query(o, None, query),
                    after,
                    limit,
                    &op,
                )?;
            }
            (Some(t), None, _) => self.collect(
                "SELECT id, data FROM mv WHERE type = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                params![t, after, lim],
                &op,
                |r, p| self.mv_row(r, p),
                &mut out,
            )?,
            (object_type, _, _) => {
                // Not indexed: scan in id order and filter here.
                out = self.scan_filtered(
                    "SELECT id, data FROM mv WHERE id > ?1 ORDER BY id LIMIT ?2",
                    |after| (after, SCAN),
                    |o| matches_query(o, object_type.as_deref(), query),
                    after,
                    limit,
                    &op,
                )?;
            }
        }
        Ok(out)
    }

    /// The objects `sql` (bound by `bind(after)`, `SCAN` at a time, in id
    /// order) returns after `after` that `keep` keeps, up to `limit`.
    fn scan_filtered<P: rusqlite::Params>(
        &self,
        sql: &str,
        bind: impl Fn(MvId) -> P,
        keep: impl Fn(&MvObject) -> bool,
        mut after: MvId,
        limit: usize,
        op: &dyn Fn() -> String,
    ) -> StoreResult<Vec<MvObject>> {
        let mut out = Vec::new();
        while out.len() < limit {
            let mut page = Vec::new();
            self.collect(sql, bind(after), op, |r, p| self.mv_row(r, p), &mut page)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            out.extend(page.into_iter().filter(|o| keep(o)));
        }
        out.truncate(limit);
        Ok(out)
    }

    /// The ids `mv_page` would return: from the table or the join index
    /// alone when no value must be compared exactly or without an index.
    pub(crate) fn mv_page_ids(
        &self,
        query: &MvQuery,
        after: MvId,
        limit: usize,
    ) -> StoreResult<Vec<MvId>> {
        let mut out = Vec::new();
        let op = || "list metaverse object ids from store".to_owned();
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let id = |row: &rusqlite::Row<'_>, path: &std::path::Path| {
            row.get(0)
                .map_err(|e| error::sql(path, "read metaverse object id from store", e))
        };
        match (&query.object_type, &query.attribute, self.index_of(query)) {
            (Some(_), Some((_, v)), Some(k)) if !query.case_sensitive => self.collect(
                "SELECT mv_id FROM mv_key WHERE k = ?1 AND value = ?2 AND mv_id > ?3 \
                 ORDER BY mv_id LIMIT ?4",
                params![k, crate::api::fold_case(v), after, lim],
                &op,
                id,
                &mut out,
            )?,
            (Some(t), None, _) => self.collect(
                "SELECT id FROM mv WHERE type = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                params![t, after, lim],
                &op,
                id,
                &mut out,
            )?,
            (None, None, _) => self.collect(
                "SELECT id FROM mv WHERE id > ?1 ORDER BY id LIMIT ?2",
                params![after, lim],
                &op,
                id,
                &mut out,
            )?,
            _ => {
                return Ok(self
                    .mv_page(query, after, limit)?
                    .into_iter()
                    .map(|o| o.id)
                    .collect());
            }
        }
        Ok(out)
    }

    /// The join index that serves `query`'s attribute (of its type).
    fn index_of(&self, query: &MvQuery) -> Option<i64> {
        match (&query.object_type, &query.attribute) {
            // An attribute kept as rows has no keys in the join index.
            (Some(t), Some((a, _))) if self.defs.rows.mv_attr(t, a).is_none() => {
                self.defs.attribute_key(t, a)
            }
            _ => None,
        }
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

/// The objects read per query when a page is filtered here.
const SCAN: i64 = 1000;

/// The objects of the join index `?1` holding text `?2`, after `?3`.
const BY_KEY: &str = "SELECT m.id, m.data FROM mv_key AS x JOIN mv AS m ON m.id = x.mv_id \
     WHERE x.k = ?1 AND x.value = ?2 AND x.mv_id > ?3 ORDER BY x.mv_id LIMIT ?4";

fn matches_query(obj: &MvObject, object_type: Option<&str>, query: &MvQuery) -> bool {
    if object_type.is_some_and(|t| t != obj.object_type) {
        return false;
    }
    match &query.attribute {
        None => true,
        Some((a, v)) if query.case_sensitive => obj.get(a).is_some_and(|val| exact_text(val, v)),
        Some((a, v)) => {
            let v = crate::api::fold_case(v);
            obj.get(a)
                .is_some_and(|val| mvindex::any_text(val, &mut |t| t == v))
        }
    }
}

/// Whether `value` (or any value of a multi-value) has text `text`, case
/// included.
fn exact_text(value: &Value, text: &str) -> bool {
    match value {
        Value::Multi(vs) => vs.iter().any(|v| exact_text(v, text)),
        Value::String(s) => s == text,
        other => other.to_text() == text,
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
