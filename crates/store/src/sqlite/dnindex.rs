//! The DN index (`cs_dn`): the DNs, folded as `fold_dn` folds them, of the
//! objects of the MAs listed in `cs_dn_ma`, so that a reference that names
//! an object by its DN (a directory's `manager` or `member`) finds it.
//! Kept by every write of those MAs' objects (`hot`, `cs_delete`); built
//! from the stored bodies when an MA is added (`set`).

use super::bin;
use super::error;
use super::names::Names;
use crate::api::{StoreResult, fold_dn};
use rusqlite::{Connection, params};
use std::path::Path;

/// Index exactly the MAs `mas`: an MA added gets its objects' DNs from
/// their stored bodies, an MA left out loses its rows.
pub(crate) fn set(conn: &Connection, path: &Path, names: &Names, mas: &[&str]) -> StoreResult<()> {
    let err = |what: &str, e| error::sql(path, format_args!("{what} (DN index)"), e);
    let mut wanted = Vec::with_capacity(mas.len());
    for name in mas {
        conn.execute("INSERT OR IGNORE INTO ma (name) VALUES (?1)", [name])
            .map_err(|e| err("number an MA", e))?;
        let id: i64 = conn
            .query_row("SELECT id FROM ma WHERE name = ?1", [name], |r| r.get(0))
            .map_err(|e| err("number an MA", e))?;
        wanted.push(id);
    }
    let have = super::write::load_dn_mas(conn, path)?;
    for ma in have.iter().filter(|m| !wanted.contains(m)) {
        conn.execute("DELETE FROM cs_dn WHERE ma = ?1", [ma])
            .map_err(|e| err("drop an MA", e))?;
        conn.execute("DELETE FROM cs_dn_ma WHERE ma = ?1", [ma])
            .map_err(|e| err("drop an MA", e))?;
    }
    for &ma in wanted.iter().filter(|m| !have.contains(m)) {
        conn.execute("INSERT INTO cs_dn_ma (ma) VALUES (?1)", [ma])
            .map_err(|e| err("add an MA", e))?;
        let mut read = conn
            .prepare("SELECT id, data FROM cs WHERE ma = ?1")
            .map_err(|e| err("read the objects of an MA", e))?;
        let mut rows = read
            .query([ma])
            .map_err(|e| err("read the objects of an MA", e))?;
        let mut insert = conn
            .prepare_cached("INSERT OR IGNORE INTO cs_dn (ma, dn, cs_id) VALUES (?1, ?2, ?3)")
            .map_err(|e| err("index a DN", e))?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(|e| err("read an object", e))? {
            let id: i64 = row.get(0).map_err(|e| err("read an object", e))?;
            let data: Vec<u8> = row.get(1).map_err(|e| err("read an object", e))?;
            let obj = bin::decode_cs(id, &data, names).map_err(|e| {
                error::decode(path, format!("connector-space object {id}"), e.to_string())
            })?;
            insert
                .execute(params![ma, fold_dn(&obj.dn).as_ref(), id])
                .map_err(|e| err("index a DN", e))?;
            n += 1;
        }
        tracing::info!(store = %path.display(), ma, objects = n, "DN index built");
    }
    Ok(())
}
