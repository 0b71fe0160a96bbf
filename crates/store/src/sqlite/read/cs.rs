//! Reads of connector spaces.

use super::{CHUNK, Ctx, PAGE_ROOM, SMALL_CHUNK, placeholders};
use crate::api::{CsCounts, CsFilter, CsSpelling, StoreResult};
use crate::sqlite::bin;
use crate::sqlite::codec::RawRows;
use crate::sqlite::codec::decode_bin;
use crate::sqlite::error;
use autosync_model::{CsId, CsObject, ExportKind, MvId};
use rusqlite::params;

impl Ctx<'_> {
    pub(crate) fn cs_get(&self, id: CsId, light: bool) -> StoreResult<Option<CsObject>> {
        self.one(
            "SELECT id, data FROM cs WHERE id = ?1",
            [id],
            &|| format!("read connector-space object {id} from store"),
            |r, p| self.cs_row(r, p, light),
        )
    }

    pub(crate) fn cs_by_anchor(&self, ma: &str, anchor: &str) -> StoreResult<Option<CsObject>> {
        self.one(
            "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND anchor = ?2",
            [ma, anchor],
            &|| format!("read connector-space object {ma}/{anchor} from store"),
            |r, p| self.cs_row(r, p, false),
        )
    }

    pub(crate) fn cs_by_anchors(
        &self,
        ma: &str,
        anchors: &[&str],
        light: bool,
    ) -> StoreResult<Vec<CsObject>> {
        let raw = self.chunked_rows(
            Some(ma),
            anchors,
            (&BY_ANCHORS_BIG, &BY_ANCHORS_SMALL),
            &|| {
                format!(
                    "read {} connector-space objects of {ma} from store",
                    anchors.len()
                )
            },
        )?;
        self.cs_objects(&raw, light)
    }

    pub(crate) fn cs_joined_of_ma(&self, ma: &str) -> StoreResult<Vec<(String, MvId)>> {
        let op = || format!("read the joins of every object of {ma}");
        let err = |e| error::sql(self.path, op(), e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT anchor, mv_id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND mv_id IS NOT NULL",
            )
            .map_err(err)?;
        let mut rows = stmt.query([ma]).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            out.push((row.get(0).map_err(err)?, row.get(1).map_err(err)?));
        }
        Ok(out)
    }

    /// See [`crate::api::StoreRead::cs_anchors_ignoring_case`]: the MA's
    /// anchors read from the index `cs_anchor` alone, folded here (SQLite's
    /// `NOCASE` folds ASCII only).
    pub(crate) fn cs_anchors_ignoring_case(
        &self,
        ma: &str,
        anchors: &[&str],
    ) -> StoreResult<Vec<String>> {
        let op = || format!("read the anchors of every object of {ma}");
        let err = |e| error::sql(self.path, op(), e);
        let wanted: std::collections::HashSet<String> = anchors
            .iter()
            .map(|a| crate::fold_case(a).into_owned())
            .collect();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT anchor FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1)")
            .map_err(err)?;
        let mut rows = stmt.query([ma]).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let anchor: String = row.get(0).map_err(err)?;
            if wanted.contains(crate::fold_case(&anchor).as_ref()) {
                out.push(anchor);
            }
        }
        Ok(out)
    }

    pub(crate) fn cs_spellings_of_ma(&self, ma: &str) -> StoreResult<Vec<CsSpelling>> {
        let op = || format!("read the spellings of every connector of {ma}");
        let err = |e| error::sql(self.path, op(), e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, data, mv_id, anchor FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND mv_id IS NOT NULL",
            )
            .map_err(err)?;
        let mut rows = stmt.query([ma]).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            out.push(self.spelling_row(row)?);
        }
        Ok(out)
    }

    fn spelling_row(&self, row: &rusqlite::Row<'_>) -> StoreResult<CsSpelling> {
        let err = |e| {
            error::sql(
                self.path,
                "read the spelling of a connector-space object",
                e,
            )
        };
        let (dn, pending) = decode_bin(
            row,
            self.path,
            "connector-space object",
            bin::cs_spelling,
            self.names(),
        )?;
        Ok(CsSpelling {
            id: row.get(0).map_err(err)?,
            mv_id: row.get(2).map_err(err)?,
            anchor: row.get(3).map_err(err)?,
            dn,
            pending,
        })
    }

    pub(crate) fn cs_spellings_by_mvs(
        &self,
        ma: &str,
        mv_ids: &[MvId],
    ) -> StoreResult<Vec<CsSpelling>> {
        let op = || format!("read the spellings of {} connectors of {ma}", mv_ids.len());
        let err = |e| error::sql(self.path, op(), e);
        let mut out = Vec::with_capacity(mv_ids.len());
        let mut rest = mv_ids;
        while !rest.is_empty() {
            let size = if rest.len() > SMALL_CHUNK {
                CHUNK
            } else {
                SMALL_CHUNK
            };
            let (chunk, tail) = rest.split_at(rest.len().min(size));
            rest = tail;
            let sql: &str = if size == CHUNK {
                &SPELLINGS_BY_MVS_BIG
            } else {
                &SPELLINGS_BY_MVS_SMALL
            };
            let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
            stmt.raw_bind_parameter(1, ma).map_err(err)?;
            for i in 0..size {
                match chunk.get(i) {
                    Some(id) => stmt.raw_bind_parameter(i + 2, id).map_err(err)?,
                    None => stmt
                        .raw_bind_parameter(i + 2, rusqlite::types::Null)
                        .map_err(err)?,
                }
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(err)? {
                out.push(self.spelling_row(row)?);
            }
        }
        Ok(out)
    }

    pub(crate) fn cs_joined_by_anchors(
        &self,
        ma: &str,
        anchors: &[&str],
    ) -> StoreResult<Vec<(String, MvId)>> {
        // The index alone answers: the metaverse id as the row's id, the
        // anchor as its body.
        let raw = self.chunked_rows(
            Some(ma),
            anchors,
            (&JOINED_BY_ANCHORS_BIG, &JOINED_BY_ANCHORS_SMALL),
            &|| format!("read the joins of {} objects of {ma}", anchors.len()),
        )?;
        let mut out = Vec::with_capacity(raw.len());
        for i in 0..raw.len() {
            if let Some((mv_id, anchor)) = raw.get(i) {
                out.push((String::from_utf8_lossy(anchor).into_owned(), mv_id));
            }
        }
        Ok(out)
    }

    pub(crate) fn cs_page(
        &self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
        light: bool,
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
            // Two partial indexes: synchronised (`cs_unjoined`) and with a
            // pending import (`cs_pending_import`).
            CsFilter::Unjoined => {
                "SELECT id, data FROM (SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND mv_id IS NULL AND has_pi = 0 AND id > ?2 UNION ALL SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1 AND mv_id IS NULL AND id > ?2) ORDER BY id LIMIT ?3"
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
        self.cs_objects(&raw, light)
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
            CsFilter::Unjoined => {
                "SELECT id FROM (SELECT id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND mv_id IS NULL AND has_pi = 0 AND id > ?2 UNION ALL SELECT id FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1 AND mv_id IS NULL AND id > ?2) ORDER BY id LIMIT ?3"
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
            |r, p| self.cs_row(r, p, false),
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn cs_by_mvs(&self, mv_ids: &[MvId], light: bool) -> StoreResult<Vec<CsObject>> {
        let raw = self.chunked_rows(None, mv_ids, (&BY_MVS_BIG, &BY_MVS_SMALL), &|| {
            format!(
                "read the connectors of {} metaverse objects from store",
                mv_ids.len()
            )
        })?;
        let mut out = self.cs_objects(&raw, light)?;
        out.sort_unstable_by_key(|o| o.id);
        Ok(out)
    }

    /// Whether metaverse index key `k` holds any text.
    pub(crate) fn mv_key_any(&self, k: i64) -> StoreResult<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM mv_key WHERE k = ?1)")
            .and_then(|mut s| s.query_row([k], |r| r.get(0)))
            .map_err(|e| error::sql(self.path, "look for metaverse index keys in store", e))
    }

    /// The names of the MAs with any connector-space object.
    pub(crate) fn cs_mas(&self) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT name FROM ma WHERE EXISTS (SELECT 1 FROM cs WHERE cs.ma = ma.id) ORDER BY name",
            [],
            &|| "list the management agents with a connector space in store".to_owned(),
            |row, path| {
                row.get(0)
                    .map_err(|e| error::sql(path, "read a management agent's name from store", e))
            },
            &mut out,
        )?;
        Ok(out)
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

    /// One of [`Ctx::cs_counts`]' counts.
    pub(crate) fn cs_count(&self, ma: &str, filter: CsFilter) -> StoreResult<u64> {
        let sql = match filter {
            CsFilter::All => {
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1)"
            }
            CsFilter::PendingImport => {
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1"
            }
            CsFilter::PendingExport => {
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pe = 1"
            }
            CsFilter::UnconfirmedExport => {
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_ue = 1"
            }
            CsFilter::Errors => {
                "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_err = 1"
            }
            CsFilter::Unjoined => {
                "SELECT (SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND mv_id IS NULL AND has_pi = 0) + (SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1 AND mv_id IS NULL)"
            }
        };
        let err = |e| {
            error::sql(
                self.path,
                format_args!("count connector-space objects of {ma} in store"),
                e,
            )
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let n: i64 = stmt.query_row([ma], |r| r.get(0)).map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The values the connector-space objects of `ma` hold in value rows
    /// (their multi-valued references: a group's members).
    pub(crate) fn cs_ma_values_count(&self, ma: &str) -> StoreResult<u64> {
        let err = |e| {
            error::sql(
                self.path,
                format_args!("count the values of connector-space objects of {ma} in store"),
                e,
            )
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM cs JOIN cs_val ON cs_val.cs_id = cs.id \
                 WHERE cs.ma = (SELECT id FROM ma WHERE name = ?1)",
            )
            .map_err(err)?;
        let n: i64 = stmt.query_row([ma], |r| r.get(0)).map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The objects of `ma` with a pending export of kind `kind`: each body
    /// is read only as far as its pending export's kind.
    pub(crate) fn cs_pending_export_count(&self, ma: &str, kind: ExportKind) -> StoreResult<u64> {
        let op = || format!("count pending exports of {ma} in store");
        let err = |e| error::sql(self.path, op(), e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pe = 1",
            )
            .map_err(err)?;
        let mut rows = stmt.query([ma]).map_err(err)?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(err)? {
            let found = decode_bin(
                row,
                self.path,
                "connector-space object",
                bin::cs_pending_export_kind,
                self.names(),
            )?;
            n += u64::from(found == Some(kind));
        }
        Ok(n)
    }

    /// The ids of the objects of `ma` with a pending export of kind `kind`,
    /// `id > after` in id order, at most `limit`: each body is read only as
    /// far as its pending export's kind (the kind has no index).
    pub(crate) fn cs_pending_export_ids(
        &self,
        ma: &str,
        kind: ExportKind,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        let op = || format!("list pending exports of {ma} in store");
        let err = |e| error::sql(self.path, op(), e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) \
                 AND has_pe = 1 AND id > ?2 ORDER BY id",
            )
            .map_err(err)?;
        let mut rows = stmt.query(params![ma, after]).map_err(err)?;
        let mut out = Vec::new();
        while out.len() < limit
            && let Some(row) = rows.next().map_err(err)?
        {
            let found = decode_bin(
                row,
                self.path,
                "connector-space object",
                bin::cs_pending_export_kind,
                self.names(),
            )?;
            if found == Some(kind) {
                let id: CsId = row.get(0).map_err(err)?;
                out.push(id);
            }
        }
        Ok(out)
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
static JOINED_BY_ANCHORS_BIG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT mv_id, anchor FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND anchor IN ({}) AND mv_id IS NOT NULL",
        placeholders(CHUNK)
    )
});
static JOINED_BY_ANCHORS_SMALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT mv_id, anchor FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND anchor IN ({}) AND mv_id IS NOT NULL",
        placeholders(SMALL_CHUNK)
    )
});
static SPELLINGS_BY_MVS_BIG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| spellings_by_mvs(CHUNK));
static SPELLINGS_BY_MVS_SMALL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| spellings_by_mvs(SMALL_CHUNK));

/// The connectors of one MA (`?1`) joined to `n` metaverse objects (the
/// `cs_mv` index serves it): id, body, metaverse object, anchor.
fn spellings_by_mvs(n: usize) -> String {
    format!(
        "SELECT id, data, mv_id, anchor FROM cs WHERE +ma = (SELECT id FROM ma WHERE name = ?1) AND mv_id IN ({})",
        placeholders(n)
    )
}
static BY_MVS_BIG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| by_mvs(CHUNK));
static BY_MVS_SMALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| by_mvs(SMALL_CHUNK));

/// The connectors of `n` metaverse objects (the `cs_mv` index serves it).
fn by_mvs(n: usize) -> String {
    format!(
        "SELECT id, data FROM cs WHERE mv_id IN ({})",
        (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
