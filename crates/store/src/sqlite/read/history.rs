//! Reads of run history, watermarks and metadata.

use super::{Ctx, run_row};
use crate::api::StoreResult;
use crate::sqlite::codec::{RunErrorRow, decode_col};
use crate::sqlite::error;
use autosync_model::{RunChange, RunId, RunObjectError, RunRecord};
use rusqlite::params;

impl Ctx<'_> {
    fn text_value(&self, sql: &str, key: &str, what: &str) -> StoreResult<Option<String>> {
        self.one(
            sql,
            [key],
            &|| format!("read {what} {key} from store"),
            |row, path| {
                row.get(0)
                    .map_err(|e| error::sql(path, format_args!("read {what} {key} from store"), e))
            },
        )
    }

    pub(crate) fn watermark(&self, ma: &str) -> StoreResult<Option<String>> {
        self.text_value(
            "SELECT value FROM watermark WHERE ma = ?1",
            ma,
            "the watermark of",
        )
    }

    pub(crate) fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.text_value("SELECT value FROM meta WHERE key = ?1", key, "meta value")
    }

    pub(crate) fn run_get(&self, id: RunId) -> StoreResult<Option<RunRecord>> {
        self.one(
            "SELECT id, data FROM run WHERE id = ?1",
            [id],
            &|| format!("read run {id} from store"),
            run_row,
        )
    }

    pub(crate) fn runs(&self, ma: Option<&str>, limit: usize) -> StoreResult<Vec<RunRecord>> {
        self.runs_page(ma, 0, limit)
    }

    /// Most recent first, without the `offset` most recent: SQLite steps
    /// over the skipped rows in the id order (of the `run_ma` index with an
    /// MA) without reading their records.
    pub(crate) fn runs_page(
        &self,
        ma: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<RunRecord>> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let off = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let op = || "list runs from store".to_owned();
        match ma {
            Some(ma) => self.collect(
                "SELECT id, data FROM run WHERE ma = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
                params![ma, lim, off],
                &op,
                run_row,
                &mut out,
            )?,
            None => self.collect(
                "SELECT id, data FROM run ORDER BY id DESC LIMIT ?1 OFFSET ?2",
                params![lim, off],
                &op,
                run_row,
                &mut out,
            )?,
        }
        Ok(out)
    }

    pub(crate) fn run_count(&self, ma: Option<&str>) -> StoreResult<u64> {
        let err = |e| error::sql(self.path, "count runs in store", e);
        let n: i64 = match ma {
            Some(ma) => self
                .conn
                .prepare_cached("SELECT count(*) FROM run WHERE ma = ?1")
                .and_then(|mut s| s.query_row([ma], |r| r.get(0))),
            None => self
                .conn
                .prepare_cached("SELECT count(*) FROM run")
                .and_then(|mut s| s.query_row([], |r| r.get(0))),
        }
        .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(crate) fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        let mut out = Vec::new();
        self.collect(
            "SELECT id, data FROM run WHERE status = 'in-progress' ORDER BY id",
            [],
            &|| "list unfinished runs from store".to_owned(),
            run_row,
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn run_errors(
        &self,
        run_id: RunId,
        limit: usize,
    ) -> StoreResult<Vec<RunObjectError>> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        self.collect(
            "SELECT id, data FROM run_error WHERE run_id = ?1 ORDER BY id LIMIT ?2",
            params![run_id, lim],
            &|| format!("list the errors of run {run_id} from store"),
            |row, path| {
                decode_col::<RunErrorRow>(row, 1, path, &|| format!("an error of run {run_id}"))
                    .map(|e| e.into_error(run_id))
            },
            &mut out,
        )?;
        Ok(out)
    }

    /// A page of a run's changes: the ids are stepped over in the
    /// `run_change_run` index, only the page's rows are read.
    pub(crate) fn run_changes(
        &self,
        run_id: RunId,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<RunChange>> {
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let off = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        self.collect(
            "SELECT id, data FROM run_change WHERE id IN \
             (SELECT id FROM run_change WHERE run_id = ?1 ORDER BY id LIMIT ?2 OFFSET ?3) \
             ORDER BY id",
            params![run_id, lim, off],
            &|| format!("list the changes of run {run_id} from store"),
            |row, path| {
                decode_col::<RunChange>(row, 1, path, &|| format!("a change of run {run_id}"))
                    .map(|c| RunChange { run_id, ..c })
            },
            &mut out,
        )?;
        Ok(out)
    }

    pub(crate) fn run_change_count(&self, run_id: RunId) -> StoreResult<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM run_change WHERE run_id = ?1")
            .and_then(|mut s| s.query_row([run_id], |r| r.get(0)))
            .map_err(|e| {
                error::sql(
                    self.path,
                    format_args!("count the changes of run {run_id} in store"),
                    e,
                )
            })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
