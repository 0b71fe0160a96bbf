//! Reads of the references that wait for the object they name (tables
//! `ref_wait_in` and `ref_wait_out`).

use super::Ctx;
use crate::api::{RefWait, StoreResult};
use autosync_model::{CsId, ExportKind, MvId};
use rusqlite::params;

impl Ctx<'_> {
    pub(crate) fn ref_waits_of(&self, cs_id: CsId) -> StoreResult<Vec<RefWait>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT attr, ma, key, by_dn FROM ref_wait_in WHERE cs_id = ?1 ORDER BY attr, ma, key, by_dn",
            [cs_id],
            &|| format!("read the waiting references of connector-space object {cs_id}"),
            |r, p| {
                let get = |i| {
                    r.get::<_, String>(i)
                        .map_err(|e| crate::sqlite::error::sql(p, "read a waiting reference", e))
                };
                Ok(RefWait {
                    attr: get(0)?,
                    ma: get(1)?,
                    key: get(2)?,
                    by_dn: r.get::<_, bool>(3).map_err(|e| {
                        crate::sqlite::error::sql(p, "read a waiting reference", e)
                    })?,
                })
            },
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn ref_waiting_page(
        &self,
        ma: &str,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        let mut out = Vec::new();
        self.collect(
            // The waits drive (CROSS JOIN keeps them the outer loop): an
            // MA of a million objects with a few waits is not scanned.
            "SELECT DISTINCT w.cs_id FROM ref_wait_in AS w CROSS JOIN cs ON cs.id = w.cs_id \
             WHERE cs.ma = (SELECT id FROM ma WHERE name = ?1) AND w.cs_id > ?2 \
             ORDER BY w.cs_id LIMIT ?3",
            params![ma, after, limit as i64],
            &|| format!("read the objects of {ma} with waiting references"),
            id,
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn ref_waiting_count(&self, ma: &str) -> StoreResult<u64> {
        let n = self.one(
            "SELECT count(DISTINCT w.cs_id) FROM ref_wait_in AS w CROSS JOIN cs ON cs.id = w.cs_id \
             WHERE cs.ma = (SELECT id FROM ma WHERE name = ?1)",
            [ma],
            &|| format!("count the objects of {ma} with waiting references"),
            id,
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    pub(crate) fn ref_in_ready(&self) -> StoreResult<Vec<CsId>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT w.cs_id FROM ref_wait_in AS w \
             JOIN ma AS m ON m.name = w.ma \
             JOIN cs AS c ON c.ma = m.id AND c.anchor = w.key \
             WHERE w.by_dn = 0 AND c.mv_id IS NOT NULL \
             UNION \
             SELECT w.cs_id FROM ref_wait_in AS w \
             JOIN ma AS m ON m.name = w.ma \
             JOIN cs_dn AS d ON d.ma = m.id AND d.dn = w.key \
             JOIN cs AS c ON c.id = d.cs_id \
             WHERE w.by_dn = 1 AND c.mv_id IS NOT NULL \
             ORDER BY 1",
            [],
            &|| "read the waiting references whose object came".to_owned(),
            id,
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn ref_out_ready(&self) -> StoreResult<Vec<MvId>> {
        // A connector on the MA the reference is exported to may be named
        // once it is there; on another MA (whose export runs apart) once
        // its add was sent: only then is its pending export read.
        let op = || "read the waiting outbound references whose connector came".to_owned();
        let err = |e| crate::sqlite::error::sql(self.path, op(), e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.data, w.mv_id, w.via = w.ma FROM ref_out_due AS d \
                 JOIN ref_wait_out AS w ON w.target = d.target \
                 JOIN ma AS m ON m.name = w.via \
                 JOIN cs AS c ON c.mv_id = w.target AND c.ma = m.id \
                 WHERE w.via = w.ma OR c.has_pe = 1 \
                 ORDER BY w.mv_id",
            )
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut out: Vec<MvId> = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mv: MvId = row.get(2).map_err(err)?;
            if out.last() == Some(&mv) {
                continue;
            }
            let same_ma: bool = row.get(3).map_err(err)?;
            let adding = !same_ma && self.adding(row)?;
            if !adding {
                out.push(mv);
            }
        }
        // Those on another MA with nothing left to export.
        let mut settled = Vec::new();
        self.collect(
            "SELECT DISTINCT w.mv_id FROM ref_out_due AS d \
             JOIN ref_wait_out AS w ON w.target = d.target \
             JOIN ma AS m ON m.name = w.via \
             JOIN cs AS c ON c.mv_id = w.target AND c.ma = m.id \
             WHERE w.via <> w.ma AND c.has_pe = 0",
            [],
            &op,
            id,
            &mut settled,
        )?;
        out.extend(settled);
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl Ctx<'_> {
    pub(crate) fn ref_touched_names_count(&self, ma: &str) -> StoreResult<u64> {
        let n = self.one(
            "SELECT count(DISTINCT mv_id) FROM ref_touched_name WHERE ma = ?1",
            [ma],
            &|| format!("count the objects whose connector on {ma} left"),
            id,
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    pub(crate) fn ref_touched_names(&self, mv_id: MvId) -> StoreResult<Vec<crate::api::RefName>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT ma, anchor, dn FROM ref_touched_name WHERE mv_id = ?1 ORDER BY ma, anchor, dn",
            [mv_id],
            &|| format!("read the names noted with metaverse object {mv_id}"),
            |r, p| {
                let get = |i| {
                    r.get::<_, String>(i)
                        .map_err(|e| crate::sqlite::error::sql(p, "read a noted name", e))
                };
                Ok(crate::api::RefName {
                    ma: get(0)?,
                    anchor: get(1)?,
                    dn: get(2)?,
                })
            },
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn ref_touched(&self) -> StoreResult<Vec<(MvId, bool)>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT mv_id, gone FROM ref_touched ORDER BY mv_id",
            [],
            &|| "read the objects whose references are to be worked out again".to_owned(),
            |r, p| {
                let id = id(r, p)?;
                let gone = r
                    .get::<_, bool>(1)
                    .map_err(|e| crate::sqlite::error::sql(p, "read a noted object", e))?;
                Ok((id, gone))
            },
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn ref_out_waiting(&self) -> StoreResult<Vec<MvId>> {
        let mut out = Vec::new();
        self.collect(
            &format!("{}SELECT id FROM r WHERE id IS NOT NULL", Self::REFERRERS),
            [],
            &|| "read the objects with waiting outbound references".to_owned(),
            id,
            &mut out,
        )?;
        Ok(out)
    }

    /// The distinct referrers of `ref_wait_out`, as `r(id)`, each found by
    /// a seek past the one before (a scan of every wait is half a million
    /// rows for one group).
    pub(crate) const REFERRERS: &'static str = "WITH RECURSIVE r(id) AS ( \
           SELECT min(mv_id) FROM ref_wait_out \
           UNION ALL \
           SELECT (SELECT min(mv_id) FROM ref_wait_out WHERE mv_id > r.id) FROM r \
           WHERE r.id IS NOT NULL) ";

    /// The referrers whose references to `?1` wait, as the connectors of
    /// `?1` they export to.
    /// `CROSS JOIN`: the referrers drive, each connector found by the
    /// metaverse index (SQLite 3.50 otherwise reads every connector of the
    /// MA and scans the referrers for each: quadratic).
    pub(crate) const OUT_WAITING: &'static str = "SELECT c.id FROM r CROSS JOIN cs AS c ON c.mv_id = r.id \
         AND c.ma = (SELECT id FROM ma WHERE name = ?1) \
         WHERE r.id IS NOT NULL \
         AND EXISTS (SELECT 1 FROM ref_wait_out AS w WHERE w.mv_id = r.id AND w.ma = ?1)";

    pub(crate) fn ref_out_waiting_page(
        &self,
        ma: &str,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        let mut out = Vec::new();
        self.collect(
            &format!(
                "{}SELECT id FROM ({}) WHERE id > ?2 ORDER BY id LIMIT ?3",
                Self::REFERRERS,
                Self::OUT_WAITING
            ),
            params![ma, after, limit as i64],
            &|| format!("read the connectors of {ma} whose exported references wait"),
            id,
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn ref_out_waiting_count(&self, ma: &str) -> StoreResult<u64> {
        let n = self.one(
            &format!(
                "{}SELECT count(*) FROM ({})",
                Self::REFERRERS,
                Self::OUT_WAITING
            ),
            [ma],
            &|| format!("count the connectors of {ma} whose exported references wait"),
            id,
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    pub(crate) fn ref_out_waits_of(
        &self,
        mv_id: MvId,
        ma: &str,
    ) -> StoreResult<Vec<(MvId, String)>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT target, via FROM ref_wait_out WHERE mv_id = ?1 AND ma = ?2 ORDER BY target, via",
            params![mv_id, ma],
            &|| format!("read the waiting references of metaverse object {mv_id} to {ma}"),
            |r, p| {
                let target = id(r, p)?;
                let via = r
                    .get::<_, String>(1)
                    .map_err(|e| crate::sqlite::error::sql(p, "read a waiting reference", e))?;
                Ok((target, via))
            },
            &mut out,
        )?;
        Ok(out)
    }

    /// Whether the connector of `row` (its id and data first) has its add
    /// still to send: only its pending export's kind is decoded.
    fn adding(&self, row: &rusqlite::Row<'_>) -> StoreResult<bool> {
        let kind = crate::sqlite::codec::decode_bin(
            row,
            self.path,
            "connector-space object",
            crate::sqlite::bin::cs_pending_export_kind,
            self.names(),
        )?;
        Ok(matches!(
            kind,
            Some(ExportKind::Add | ExportKind::DeleteAdd)
        ))
    }

    pub(crate) fn ref_out_sendable_count(&self, via: &str) -> StoreResult<u64> {
        // A connector whose add was sent may be named, whatever else it
        // still has to export (a value held back, waiting for another
        // add): only its pending export's kind is read, and only then.
        let op = || format!("count the references waiting for objects of {via}");
        let err = |e| crate::sqlite::error::sql(self.path, op(), e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.data, w.mv_id, c.has_pe FROM ref_out_due AS d \
                 JOIN ref_wait_out AS w ON w.target = d.target \
                 JOIN ma AS m ON m.name = w.via \
                 JOIN cs AS c ON c.mv_id = w.target AND c.ma = m.id \
                 WHERE w.via = ?1 \
                 ORDER BY w.mv_id",
            )
            .map_err(err)?;
        let mut rows = stmt.query([via]).map_err(err)?;
        let mut n: u64 = 0;
        let mut last: Option<MvId> = None;
        while let Some(row) = rows.next().map_err(err)? {
            let mv: MvId = row.get(2).map_err(err)?;
            if last == Some(mv) {
                continue;
            }
            let pending: bool = row.get(3).map_err(err)?;
            let adding = pending && self.adding(row)?;
            if !adding {
                n += 1;
                last = Some(mv);
            }
        }
        Ok(n)
    }
}

fn id(r: &rusqlite::Row<'_>, p: &std::path::Path) -> StoreResult<i64> {
    r.get::<_, i64>(0)
        .map_err(|e| crate::sqlite::error::sql(p, "read an id", e))
}

impl Ctx<'_> {
    pub(crate) fn dn_indexed_mas(&self) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT m.name FROM cs_dn_ma AS d JOIN ma AS m ON m.id = d.ma ORDER BY m.name",
            [],
            &|| "read the MAs whose DNs are indexed".to_owned(),
            |r, p| {
                r.get::<_, String>(0)
                    .map_err(|e| crate::sqlite::error::sql(p, "read an MA name", e))
            },
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn cs_joined_by_dns(
        &self,
        ma: &str,
        dns: &[&str],
    ) -> StoreResult<Vec<(String, CsId, Option<MvId>)>> {
        let mut out = Vec::new();
        for dn in dns {
            let folded = crate::api::fold_dn(dn);
            self.collect(
                "SELECT d.dn, d.cs_id, c.mv_id FROM cs_dn AS d JOIN cs AS c ON c.id = d.cs_id \
                 WHERE d.ma = (SELECT id FROM ma WHERE name = ?1) AND d.dn = ?2 ORDER BY d.cs_id",
                params![ma, folded.as_ref()],
                &|| format!("find objects of {ma} by DN"),
                |r, p| {
                    let e = |e| crate::sqlite::error::sql(p, "read a DN", e);
                    Ok((
                        r.get::<_, String>(0).map_err(e)?,
                        r.get::<_, i64>(1).map_err(e)?,
                        r.get::<_, Option<i64>>(2).map_err(e)?,
                    ))
                },
                &mut out,
            )?;
        }
        Ok(out)
    }
}
