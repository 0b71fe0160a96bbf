//! Reads of run history, watermarks and metadata.

use super::{Ctx, run_row};
use crate::api::StoreResult;
use crate::sqlite::codec::{RunErrorRow, decode_col};
use crate::sqlite::error;
use autosync_model::{RunId, RunObjectError, RunRecord};
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
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let op = || "list runs from store".to_owned();
        match ma {
            Some(ma) => self.collect(
                "SELECT id, data FROM run WHERE ma = ?1 ORDER BY id DESC LIMIT ?2",
                params![ma, lim],
                &op,
                run_row,
                &mut out,
            )?,
            None => self.collect(
                "SELECT id, data FROM run ORDER BY id DESC LIMIT ?1",
                [lim],
                &op,
                run_row,
                &mut out,
            )?,
        }
        Ok(out)
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
}
