//! Writes of the outbound references that wait (`ref_wait_out`): a group
//! whose members' adds are not yet sent waits for every member (a million
//! in the `engine` benchmark), so its waits come compact
//! ([`OutWaitTargets`], handed to the writer thread without a copy) and
//! are written `BATCH` rows a statement.

use crate::api::{OutWaitTargets, StoreResult};
use crate::sqlite::error;
use autosync_model::MvId;
use rusqlite::{Connection, params};
use std::path::Path;

/// Rows a statement.
const BATCH: usize = 64;

static BATCH_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rows: Vec<String> = (4..BATCH + 4)
        .map(|i| format!("(?1, ?2, ?{i}, ?3)"))
        .collect();
    format!(
        "INSERT OR IGNORE INTO ref_wait_out (mv_id, ma, target, via) VALUES {}",
        rows.join(", ")
    )
});

const ONE_SQL: &str =
    "INSERT OR IGNORE INTO ref_wait_out (mv_id, ma, target, via) VALUES (?1, ?2, ?3, ?4)";

/// Insert `waits` of metaverse object `mv_id` on target MA `ma`.
pub(super) fn insert(
    conn: &Connection,
    path: &Path,
    mv_id: MvId,
    ma: &str,
    waits: &OutWaitTargets,
) -> StoreResult<()> {
    let err = |e| {
        error::sql(
            path,
            format_args!("write the waiting references of metaverse object {mv_id}"),
            e,
        )
    };
    let mut batch = [0 as MvId; BATCH];
    for (i, via) in waits.vias() {
        let mut n = 0;
        let mut full: Option<rusqlite::CachedStatement<'_>> = None;
        for (target, _) in waits.targets().iter().filter(|(_, v)| *v == i) {
            if let Some(slot) = batch.get_mut(n) {
                *slot = *target;
            }
            n += 1;
            if n < BATCH {
                continue;
            }
            n = 0;
            let stmt = match full.as_mut() {
                Some(s) => s,
                None => {
                    let mut s = conn.prepare_cached(&BATCH_SQL).map_err(err)?;
                    s.raw_bind_parameter(1, mv_id).map_err(err)?;
                    s.raw_bind_parameter(2, ma).map_err(err)?;
                    s.raw_bind_parameter(3, via).map_err(err)?;
                    full.insert(s)
                }
            };
            for (slot, target) in (4..).zip(&batch) {
                stmt.raw_bind_parameter(slot, *target).map_err(err)?;
            }
            stmt.raw_execute().map_err(err)?;
        }
        drop(full);
        if n > 0 {
            let mut stmt = conn.prepare_cached(ONE_SQL).map_err(err)?;
            for target in batch.iter().take(n) {
                stmt.execute(params![mv_id, ma, target, via]).map_err(err)?;
            }
        }
    }
    Ok(())
}
