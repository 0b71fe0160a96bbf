//! Writes of the outbound references that wait (`ref_wait_out`): a group
//! whose members' adds are not yet sent waits for every member, so its
//! waits are written `BATCH` rows a statement.

use crate::api::StoreResult;
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

/// Insert the waits of metaverse object `mv_id` on target MA `ma`: each
/// referred object and the MA it waits for a connector on.
pub(super) fn insert(
    conn: &Connection,
    path: &Path,
    mv_id: MvId,
    ma: &str,
    targets: &[(MvId, String)],
) -> StoreResult<()> {
    let err = |e| {
        error::sql(
            path,
            format_args!("write the waiting references of metaverse object {mv_id}"),
            e,
        )
    };
    // By the MA waited on (most often one), then in batches.
    let mut sorted: Vec<(&str, MvId)> = targets.iter().map(|(t, v)| (v.as_str(), *t)).collect();
    sorted.sort_unstable();
    for group in sorted.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(via, _)) = group.first() else {
            continue;
        };
        let mut chunks = group.chunks_exact(BATCH);
        if group.len() >= BATCH {
            let mut stmt = conn.prepare_cached(&BATCH_SQL).map_err(err)?;
            stmt.raw_bind_parameter(1, mv_id).map_err(err)?;
            stmt.raw_bind_parameter(2, ma).map_err(err)?;
            stmt.raw_bind_parameter(3, via).map_err(err)?;
            for chunk in chunks.by_ref() {
                for (slot, (_, target)) in (4..).zip(chunk) {
                    stmt.raw_bind_parameter(slot, *target).map_err(err)?;
                }
                stmt.raw_execute().map_err(err)?;
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut stmt = conn.prepare_cached(ONE_SQL).map_err(err)?;
            for (_, target) in rest {
                stmt.execute(params![mv_id, ma, target, via]).map_err(err)?;
            }
        }
    }
    Ok(())
}
