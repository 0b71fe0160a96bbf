//! The write transaction ([`StoreTxn`]): holds the writer from `BEGIN
//! IMMEDIATE` until committed, or rolls back when dropped.

use super::{CsRow, KNOWN_MAX, Known, Seq, WriterRef};
use crate::api::{OutWaitTargets, StoreErrorKind, StoreResult, StoreTxn};
use crate::sqlite::bin;
use crate::sqlite::codec::{Blob, JsonText, RunErrorBody, encode};
use crate::sqlite::error;
use crate::sqlite::hot::Hot;
use crate::sqlite::mvindex;
use crate::sqlite::read::{Ctx, impl_store_read};
use crate::sqlite::rows::{self, Side};
use autosync_model::{CsId, CsObject, MvId, MvObject, RunObjectError, RunRecord, ValueDelta};
use rusqlite::params;
use std::path::Path;
use std::sync::Arc;

/// A write transaction; holds the writer until committed or dropped.
pub(crate) struct SqliteTxn<'s> {
    pub(crate) w: WriterRef<'s>,
    pub(crate) path: &'s Path,
}

impl SqliteTxn<'_> {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            conn: &self.w.conn,
            path: self.path,
            defs: &self.w.defs,
            names: &self.w.names,
        }
    }
}

impl SqliteTxn<'_> {
    /// Remember the columns of objects read (they are what is stored).
    fn note_cs(&mut self, objs: &[CsObject]) {
        let known = &mut self.w.known;
        if known.len() + objs.len() > KNOWN_MAX {
            return;
        }
        for o in objs {
            known.insert(o.id, Known::of(o));
        }
    }
}

impl Drop for SqliteTxn<'_> {
    fn drop(&mut self) {
        self.w.reset(self.path);
    }
}

impl_store_read!(SqliteTxn<'_>);

fn changed(n: usize, path: &Path, what: impl FnOnce() -> String) -> StoreResult<()> {
    if n == 0 {
        return Err(error::other(
            StoreErrorKind::Invalid,
            path,
            format!("{} does not exist", what()),
        ));
    }
    Ok(())
}

impl SqliteTxn<'_> {
    /// Insert a connector-space object whose id (`obj.id`) is already
    /// taken from the id counter.
    pub(crate) fn cs_insert_at(&mut self, obj: &CsObject) -> StoreResult<()> {
        self.cs_write(obj, false)
    }

    /// Insert or update (`update`) a connector-space object, with its
    /// value rows.
    fn cs_write(&mut self, obj: &CsObject, update: bool) -> StoreResult<()> {
        let decl = Arc::clone(&self.w.defs.rows);
        // Read before the row's write notes what it wrote.
        let clear = update
            && decl.cs_may_hold(&obj.ma)
            && (self.w.values_changed.contains(&obj.id)
                || Known::clears(self.w.known.get(&obj.id)));
        let attrs = decl.cs_attrs(&obj.ma);
        let mut buf = std::mem::take(&mut self.w.buf);
        bin::encode_cs_rows(&mut buf, &self.w.dict, obj, attrs);
        let res = if update {
            self.cs_update_row(&CsRow::new(obj, &buf))
        } else {
            self.cs_insert_row(&CsRow::new(obj, &buf))
        };
        self.w.buf = buf;
        res?;
        match rows::plan(attrs, obj.hologram.iter(), false, clear) {
            Some(p) => rows::apply(&self.w.conn, self.path, Side::Cs, obj.id, &p),
            None => Ok(()),
        }
    }

    /// Insert a connector-space object already encoded.
    pub(crate) fn cs_insert_row(&mut self, r: &CsRow<'_>) -> StoreResult<()> {
        let path = self.path;
        self.w.parts().cs_insert_row(&mut Hot::default(), path, r)
    }

    /// Replace a connector-space object with one already encoded.
    pub(crate) fn cs_update_row(&mut self, r: &CsRow<'_>) -> StoreResult<()> {
        let path = self.path;
        self.w
            .parts()
            .cs_update_row(&mut Hot::default(), path, r, None)
    }

    /// Insert a metaverse object whose id (`obj.id`) is already taken from
    /// the id counter.
    pub(crate) fn mv_insert_at(&mut self, obj: &MvObject) -> StoreResult<()> {
        let path = self.path;
        let w = &mut *self.w;
        let id = obj.id;
        let decl = Arc::clone(&w.defs.rows);
        let attrs = decl.mv_attrs(&obj.object_type);
        bin::encode_mv_rows(&mut w.buf, &w.dict, obj, attrs);
        w.conn
            .prepare_cached("INSERT INTO mv (id, type, data) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![id, obj.object_type, Blob(&w.buf)]))
            .map_err(|e| {
                error::sql(
                    path,
                    format_args!("insert metaverse object {id} into store"),
                    e,
                )
            })?;
        let values = obj.attributes.iter().map(|(k, v)| (k, &v.value));
        if let Some(p) = rows::plan(attrs, values, true, false) {
            rows::apply(&w.conn, path, Side::Mv, id, &p)?;
        }
        if w.defs.has_type(&obj.object_type) {
            w.defs.keys_of(obj, path, &mut w.keys)?;
            w.fresh_wrote_mv();
            mvindex::insert_keys(&w.conn, path, id, &w.keys)?;
        }
        Ok(())
    }

    /// Remember what the stored row of a connector-space object holds (its
    /// columns as read by another connection of the same transaction).
    #[cfg(test)]
    pub(crate) fn know(&mut self, id: CsId, known: Known) {
        if self.w.known.len() < KNOWN_MAX {
            self.w.known.insert(id, known);
        }
    }
}

impl SqliteTxn<'_> {
    /// Make the value rows declaration `rows` (`Store::set_value_rows`),
    /// inside this transaction: the join-index keys of attributes that
    /// became, or stopped being, row attributes are dropped or built, and
    /// the values of metaverse attributes declared now are moved into rows
    /// (so that `mv_find` finds every object by them). The caller commits,
    /// or puts the old definitions back.
    pub(crate) fn declare_rows(
        &mut self,
        names: &crate::sqlite::names::NameCache,
        wanted: &crate::api::ValueRows,
    ) -> StoreResult<()> {
        let path = self.path;
        let new = Arc::new(rows::declare(&self.w.conn, path, wanted)?);
        let before = self.w.defs.clone();
        let added = new.mv_added(&before.rows);
        let changed = before.row_changes(&new);
        self.w.defs = before.with_rows(Arc::clone(&new));
        for (ty, k, _) in changed {
            mvindex::rebuild_one(&self.w.conn, path, names, &self.w.defs, &ty, k)?;
        }
        for (ty, attrs) in added {
            let ids: Vec<MvId> = self
                .w
                .conn
                .prepare("SELECT id FROM mv WHERE type = ?1 ORDER BY id")
                .and_then(|mut s| s.query_map([&ty], |r| r.get(0))?.collect())
                .map_err(|e| error::sql(path, "read the metaverse objects of a type", e))?;
            let mut moved = 0u64;
            for id in ids {
                let Some(obj) = self.ctx().mv_get(id, false)? else {
                    continue;
                };
                if attrs.iter().any(|a| obj.attributes.contains_key(a)) {
                    self.mv_update(&obj)?;
                    moved += 1;
                }
            }
            tracing::info!(store = %path.display(), mv_type = %ty, objects = moved, "values moved into value rows");
        }
        Ok(())
    }

    /// `StoreTxn::ref_out_waits_take`, by reference (as a bulk
    /// transaction's writer thread runs it).
    pub(crate) fn ref_out_waits_write(
        &mut self,
        mv_id: MvId,
        ma: &str,
        waits: &OutWaitTargets,
    ) -> StoreResult<()> {
        let op = || format!("write the waiting references of metaverse object {mv_id}");
        if ma.is_empty() {
            self.exec("DELETE FROM ref_wait_out WHERE mv_id = ?1", [mv_id], &op)?;
        } else {
            self.exec(
                "DELETE FROM ref_wait_out WHERE mv_id = ?1 AND ma = ?2",
                params![mv_id, ma],
                &op,
            )?;
        }
        if waits.is_empty() {
            return Ok(());
        }
        self.w.waits_out = true;
        super::waits::insert(&self.w.conn, self.path, mv_id, ma, waits)
    }

    fn exec(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        op: &dyn Fn() -> String,
    ) -> StoreResult<()> {
        self.w
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map_err(|e| error::sql(self.path, op(), e))?;
        Ok(())
    }
}

impl StoreTxn for SqliteTxn<'_> {
    fn cs_insert(&mut self, obj: &mut CsObject) -> StoreResult<()> {
        let id = self.w.next_id(Seq::Cs, self.path)?;
        obj.id = id;
        let res = self.cs_insert_at(obj);
        if res.is_err() {
            obj.id = 0;
        }
        res
    }
    fn cs_update(&mut self, obj: &CsObject) -> StoreResult<()> {
        self.cs_write(obj, true)
    }

    fn cs_values_change(&mut self, id: CsId, attr: &str, delta: &ValueDelta) -> StoreResult<()> {
        self.w.values_changed.insert(id);
        rows::change(&self.w.conn, self.path, Side::Cs, id, attr, delta)
    }

    fn mv_values_change(&mut self, id: MvId, attr: &str, delta: &ValueDelta) -> StoreResult<()> {
        rows::change(&self.w.conn, self.path, Side::Mv, id, attr, delta)
    }

    fn ref_waits_set(&mut self, cs_id: CsId, waits: &[crate::api::RefWait]) -> StoreResult<()> {
        let op = || format!("write the waiting references of connector-space object {cs_id}");
        self.exec("DELETE FROM ref_wait_in WHERE cs_id = ?1", [cs_id], &op)?;
        for w in waits {
            // A DN is kept as the DN index holds it (`fold_dn`).
            let key = if w.by_dn {
                crate::api::fold_dn(&w.key)
            } else {
                std::borrow::Cow::Borrowed(w.key.as_str())
            };
            self.exec(
                "INSERT OR IGNORE INTO ref_wait_in (cs_id, attr, ma, key, by_dn) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cs_id, w.attr, w.ma, key.as_ref(), w.by_dn],
                &op,
            )?;
        }
        Ok(())
    }

    fn ref_out_waits_set(
        &mut self,
        mv_id: MvId,
        ma: &str,
        targets: &[(MvId, String)],
    ) -> StoreResult<()> {
        let targets: OutWaitTargets = targets.iter().map(|(t, v)| (*t, v)).collect();
        self.ref_out_waits_write(mv_id, ma, &targets)
    }

    fn ref_out_waits_take(
        &mut self,
        mv_id: MvId,
        ma: &str,
        targets: OutWaitTargets,
    ) -> StoreResult<()> {
        self.ref_out_waits_write(mv_id, ma, &targets)
    }

    fn ref_touched_add(&mut self, touched: &[(MvId, bool)]) -> StoreResult<()> {
        let op = || "note objects whose references are to be worked out again".to_owned();
        for (id, gone) in touched {
            self.exec(
                "INSERT INTO ref_touched (mv_id, gone) VALUES (?1, ?2) \
                 ON CONFLICT (mv_id) DO UPDATE SET gone = max(gone, excluded.gone)",
                params![id, gone],
                &op,
            )?;
        }
        Ok(())
    }

    fn ref_touched_clear(&mut self, ids: &[MvId]) -> StoreResult<()> {
        let op = || "forget objects whose references were worked out again".to_owned();
        for id in ids {
            self.exec("DELETE FROM ref_touched WHERE mv_id = ?1", [id], &op)?;
            self.exec("DELETE FROM ref_touched_name WHERE mv_id = ?1", [id], &op)?;
        }
        Ok(())
    }

    fn ref_touched_names_add(
        &mut self,
        id: MvId,
        names: &[crate::api::RefName],
    ) -> StoreResult<()> {
        let op = || format!("note the names of a connector that left metaverse object {id}");
        for n in names {
            self.exec(
                "INSERT OR IGNORE INTO ref_touched_name (mv_id, ma, anchor, dn) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, n.ma, n.anchor, n.dn],
                &op,
            )?;
        }
        Ok(())
    }

    fn ref_out_due_clear(&mut self) -> StoreResult<()> {
        let op = || "forget the referred objects whose connectors were written".to_owned();
        self.exec("DELETE FROM ref_out_due", [], &op)?;
        Ok(())
    }

    fn cs_delete(&mut self, id: CsId) -> StoreResult<()> {
        self.w.known.remove(&id);
        if self.w.defs.rows.any_cs() {
            rows::delete_all(&self.w.conn, self.path, Side::Cs, id)?;
        }
        if !self.w.dn_mas.is_empty() {
            let op = || format!("drop the DN of connector-space object {id} from the index");
            self.exec("DELETE FROM cs_dn WHERE cs_id = ?1", [id], &op)?;
        }
        self.w
            .conn
            .prepare_cached("DELETE FROM cs WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(|e| {
                error::sql(
                    self.path,
                    format_args!("delete connector-space object {id} from store"),
                    e,
                )
            })?;
        Ok(())
    }

    fn mv_insert(&mut self, obj: &mut MvObject) -> StoreResult<()> {
        let id = self.w.next_id(Seq::Mv, self.path)?;
        obj.id = id;
        let res = self.mv_insert_at(obj);
        if res.is_err() {
            obj.id = 0;
        }
        res
    }

    fn mv_update(&mut self, obj: &MvObject) -> StoreResult<()> {
        let path = self.path;
        let w = &mut *self.w;
        let id = obj.id;
        let err = |e| {
            error::sql(
                path,
                format_args!("update metaverse object {id} in store"),
                e,
            )
        };
        // The keys the stored object has (from its stored body: there is
        // no index from an object to its keys).
        let old_indexed =
            mvindex::stored_keys(&w.conn, path, &w.defs, &w.names, id, &mut w.old_keys)?;
        let Some((old_indexed, old_rows)) = old_indexed else {
            return Err(error::other(
                StoreErrorKind::Invalid,
                path,
                format!("cannot update metaverse object {id}: it does not exist"),
            ));
        };
        let decl = Arc::clone(&w.defs.rows);
        let attrs = decl.mv_attrs(&obj.object_type);
        bin::encode_mv_rows(&mut w.buf, &w.dict, obj, attrs);
        w.conn
            .prepare_cached("UPDATE mv SET type = ?3, data = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, Blob(&w.buf), obj.object_type]))
            .map_err(err)?;
        let clear = old_rows || decl.mv_may_hold(&obj.object_type);
        let values = obj.attributes.iter().map(|(k, v)| (k, &v.value));
        if let Some(p) = rows::plan(attrs, values, true, clear) {
            rows::apply(&w.conn, path, Side::Mv, id, &p)?;
        }
        let new_indexed = w.defs.has_type(&obj.object_type);
        if !old_indexed && !new_indexed {
            return Ok(());
        }
        w.defs.keys_of(obj, path, &mut w.keys)?;
        w.fresh_wrote_mv();
        mvindex::change_keys(&w.conn, path, id, &w.old_keys, &w.keys)
    }

    fn mv_delete(&mut self, id: MvId) -> StoreResult<()> {
        let path = self.path;
        let w = &mut *self.w;
        let found = mvindex::stored_keys(&w.conn, path, &w.defs, &w.names, id, &mut w.old_keys)?;
        if found.is_none() {
            return Ok(());
        }
        if w.defs.rows.any_mv() {
            rows::delete_all(&w.conn, path, Side::Mv, id)?;
        }
        w.conn
            .prepare_cached("DELETE FROM mv WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(|e| {
                error::sql(
                    path,
                    format_args!("delete metaverse object {id} from store"),
                    e,
                )
            })?;
        mvindex::change_keys(&w.conn, path, id, &w.old_keys, &[])
    }

    fn set_watermark(&mut self, ma: &str, watermark: Option<&str>) -> StoreResult<()> {
        let res = match watermark {
            Some(v) => self
                .w
                .conn
                .prepare_cached(
                    "INSERT INTO watermark (ma, value) VALUES (?1, ?2) ON CONFLICT (ma) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute([ma, v])),
            None => self
                .w
                .conn
                .prepare_cached("DELETE FROM watermark WHERE ma = ?1")
                .and_then(|mut s| s.execute([ma])),
        };
        res.map_err(|e| {
            error::sql(
                self.path,
                format_args!("save the watermark of {ma} in store"),
                e,
            )
        })?;
        Ok(())
    }

    fn run_insert(&mut self, run: &mut RunRecord) -> StoreResult<()> {
        let path = self.path;
        let w = &mut *self.w;
        let id = w.next_id(Seq::Run, path)?;
        run.id = id;
        encode(&mut w.buf, run, path, format_args!("run {id}"))?;
        let res = w
            .conn
            .prepare_cached(
                "INSERT INTO run (id, ma, profile, status, started_at, ended_ms, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    run.ma,
                    run.profile,
                    run.status.as_str(),
                    run.started_at.to_rfc3339(),
                    run.ended_at.map(|t| t.timestamp_millis()),
                    JsonText(&w.buf)
                ])
            });
        if let Err(e) = res {
            run.id = 0;
            return Err(error::sql(
                path,
                format_args!("insert run {id} into store"),
                e,
            ));
        }
        Ok(())
    }

    fn run_update(&mut self, run: &RunRecord) -> StoreResult<()> {
        let path = self.path;
        let w = &mut *self.w;
        let id = run.id;
        encode(&mut w.buf, run, path, format_args!("run {id}"))?;
        let n = w
            .conn
            .prepare_cached(
                "UPDATE run SET ma = ?2, profile = ?3, status = ?4, started_at = ?5, ended_ms = ?6, data = ?7 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    run.ma,
                    run.profile,
                    run.status.as_str(),
                    run.started_at.to_rfc3339(),
                    run.ended_at.map(|t| t.timestamp_millis()),
                    JsonText(&w.buf)
                ])
            })
            .map_err(|e| error::sql(path, format_args!("update run {id} in store"), e))?;
        changed(n, path, || format!("cannot update run {id}: it"))
    }

    fn run_errors_insert(&mut self, errors: &[RunObjectError]) -> StoreResult<()> {
        let path = self.path;
        let w = &mut *self.w;
        for e in errors {
            let run_id = e.run_id;
            let body = RunErrorBody {
                step_index: e.step_index,
                ma: &e.ma,
                object: &e.object,
                error: &e.error,
            };
            encode(
                &mut w.buf,
                &body,
                path,
                format_args!("an error of run {run_id}"),
            )?;
            w.conn
                .prepare_cached(
                    "INSERT INTO run_error (run_id, ma, object, error_type, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| s.execute(params![run_id, e.ma, e.object, e.error.error_type, JsonText(&w.buf)]))
                .map_err(|err| error::sql(path, format_args!("record an error of run {run_id} in store"), err))?;
        }
        Ok(())
    }

    fn run_changes_insert(&mut self, changes: &[autosync_model::RunChange]) -> StoreResult<()> {
        let path = self.path;
        let w = &mut *self.w;
        for c in changes {
            let run_id = c.run_id;
            encode(
                &mut w.buf,
                c,
                path,
                format_args!("a change of run {run_id}"),
            )?;
            w.conn
                .prepare_cached(
                    "INSERT INTO run_change (run_id, step_index, ma, object, kind, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        run_id,
                        c.step_index,
                        c.ma,
                        c.object,
                        c.kind.as_str(),
                        JsonText(&w.buf)
                    ])
                })
                .map_err(|err| {
                    error::sql(path, format_args!("record a change of run {run_id} in store"), err)
                })?;
        }
        Ok(())
    }

    fn set_meta(&mut self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let res = match value {
            Some(v) => self
                .w
                .conn
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute([key, v])),
            None => self
                .w
                .conn
                .prepare_cached("DELETE FROM meta WHERE key = ?1")
                .and_then(|mut s| s.execute([key])),
        };
        res.map_err(|e| error::sql(self.path, format_args!("save meta value {key} in store"), e))?;
        Ok(())
    }

    fn commit_so_far(&mut self) -> StoreResult<()> {
        let path = self.path;
        self.w.commit(path)?;
        self.w.begin(path)
    }

    fn commit(mut self: Box<Self>) -> StoreResult<()> {
        let path = self.path;
        self.w.commit(path)
    }
}
