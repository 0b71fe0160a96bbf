//! The frequent writes of a synchronisation (connector-space inserts and
//! updates, metaverse inserts with their join keys), written so that a run
//! of them shares its prepared statements ([`Hot`]): rusqlite's statement
//! cache hashes the SQL text, copies it and moves the statement in and out
//! of its list at every use, which was about 7 % of the bulk writer
//! thread's time. A plain transaction writes one row with a fresh [`Hot`]
//! (the same cost as before); the bulk writer thread keeps one for each
//! run of such writes in a group it receives.

use super::codec::{Blob, CsColumns};
use super::error;
use super::fresh::Fresh;
use super::mvindex;
use super::schema::MaIds;
use super::write::{CsRow, KNOWN_MAX, Known};
use crate::api::{StoreErrorKind, StoreResult};
use autosync_model::MvId;
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

const CS_INSERT: &str = "INSERT INTO cs (id, ma, anchor, mv_id, has_pi, has_pe, has_ue, has_err, data) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const CS_UPDATE_DATA: &str = "UPDATE cs SET data = ?2 WHERE id = ?1 AND ma = ?3 AND anchor = ?4";
const CS_UPDATE_COLS: &str = "UPDATE cs SET mv_id = ?2, has_pi = ?3, has_pe = ?4, has_ue = ?5, has_err = ?6, data = ?7 \
                              WHERE id = ?1 AND ma = ?8 AND anchor = ?9";
const MV_INSERT: &str = "INSERT INTO mv (id, type, data) VALUES (?1, ?2, ?3)";
const NOTE_DUE: &str = "INSERT OR IGNORE INTO ref_out_due (target) \
                        SELECT ?1 WHERE EXISTS (SELECT 1 FROM ref_wait_out WHERE target = ?1)";

/// Statements of the frequent writes, prepared on first use and kept until
/// dropped (then they go back to the connection's cache).
#[derive(Default)]
pub(crate) struct Hot<'c> {
    cs_insert: Option<CachedStatement<'c>>,
    cs_update_data: Option<CachedStatement<'c>>,
    cs_update_cols: Option<CachedStatement<'c>>,
    mv_insert: Option<CachedStatement<'c>>,
    mv_key: Option<CachedStatement<'c>>,
    note_due: Option<CachedStatement<'c>>,
}

/// The statement in `slot`, prepared (from the connection's cache) if it
/// is not yet.
fn stmt<'s, 'c>(
    slot: &'s mut Option<CachedStatement<'c>>,
    conn: &'c Connection,
    sql: &str,
) -> rusqlite::Result<&'s mut CachedStatement<'c>> {
    let s = match slot.take() {
        Some(s) => s,
        None => conn.prepare_cached(sql)?,
    };
    Ok(slot.insert(s))
}

/// The writer's connection and, borrowed apart from it, the state the
/// frequent writes keep up to date ([`super::write::Writer::parts`]).
pub(crate) struct Parts<'w> {
    pub(crate) conn: &'w Connection,
    pub(crate) known: &'w mut FxHashMap<i64, Known>,
    pub(crate) ma_ids: &'w mut MaIds,
    pub(crate) fresh: &'w mut Option<Fresh>,
    pub(crate) dn_mas: &'w rustc_hash::FxHashSet<i64>,
    /// Whether outbound references may wait (`Writer::waits_out`).
    pub(crate) waits_out: bool,
}

impl<'w> Parts<'w> {
    /// Keep the DN index of row `r` (of MA number `ma`), when its MA has
    /// one: `replace` drops what it held for the object first.
    fn dn_index(&self, path: &Path, ma: i64, r: &CsRow<'_>, replace: bool) -> StoreResult<()> {
        if !self.dn_mas.contains(&ma) {
            return Ok(());
        }
        let err = |e| {
            error::sql(
                path,
                format_args!("index the DN of connector-space object {}", r.id),
                e,
            )
        };
        if replace {
            self.conn
                .prepare_cached("DELETE FROM cs_dn WHERE cs_id = ?1")
                .and_then(|mut s| s.execute([r.id]))
                .map_err(err)?;
        }
        let folded = crate::api::fold_dn(r.dn);
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO cs_dn (ma, dn, cs_id) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![ma, folded.as_ref(), r.id]))
            .map_err(err)?;
        Ok(())
    }

    /// Note the metaverse object `mv_id` due (`ref_out_due`) if a
    /// reference waits for it: a connector of it was written that may end
    /// the wait. `old`: the row's columns before (`None`: inserted);
    /// `moved`: its MA or anchor changed.
    fn note_due(
        &self,
        hot: &mut Hot<'w>,
        path: &Path,
        c: CsColumns,
        old: Option<CsColumns>,
        moved: bool,
    ) -> StoreResult<()> {
        let Some(mv_id) = c.mv_id else {
            return Ok(());
        };
        let may_end = match old {
            None => true,
            Some(o) => moved || o.mv_id != c.mv_id || o.has_pe != c.has_pe || c.has_pe,
        };
        if !self.waits_out || !may_end {
            return Ok(());
        }
        stmt(&mut hot.note_due, self.conn, NOTE_DUE)
            .and_then(|s| s.execute([mv_id]))
            .map_err(|e| {
                error::sql(
                    path,
                    format_args!("note metaverse object {mv_id} for the references waiting for it"),
                    e,
                )
            })?;
        Ok(())
    }

    /// Note row `r` written, in the fresh knowledge (dropped when it grew
    /// too large).
    fn fresh_wrote(&mut self, r: &CsRow<'_>) {
        if let Some(f) = self.fresh.as_mut()
            && !f.wrote(r.ma, r.key)
        {
            *self.fresh = None;
        }
    }

    /// Insert a connector-space object already encoded.
    pub(crate) fn cs_insert_row(
        &mut self,
        hot: &mut Hot<'w>,
        path: &Path,
        r: &CsRow<'_>,
    ) -> StoreResult<()> {
        let conn = self.conn;
        let id = r.id;
        let what = || format!("connector-space object {}/{}", r.ma, r.anchor);
        let ma = self.ma_ids.get(conn, path, r.ma)?;
        self.fresh_wrote(r);
        let c = r.cols;
        let res = stmt(&mut hot.cs_insert, conn, CS_INSERT).and_then(|s| {
            s.execute(params![
                id,
                ma,
                r.anchor,
                c.mv_id,
                c.has_pi,
                c.has_pe,
                c.has_ue,
                c.has_err,
                Blob(r.data)
            ])
        });
        if let Err(e) = res {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                return Err(error::other(
                    StoreErrorKind::Invalid,
                    path,
                    format!("{} already exists", what()),
                ));
            }
            return Err(error::sql(
                path,
                format_args!("insert {} into store", what()),
                e,
            ));
        }
        if self.known.len() < KNOWN_MAX {
            self.known.insert(id, r.known());
        }
        self.note_due(hot, path, c, None, false)?;
        self.dn_index(path, ma, r, false)
    }

    /// Replace a connector-space object with one already encoded. `known`:
    /// what the stored row holds, as another connection of the same
    /// transaction read it (else what this connection remembers, if
    /// anything).
    pub(crate) fn cs_update_row(
        &mut self,
        hot: &mut Hot<'w>,
        path: &Path,
        r: &CsRow<'_>,
        known: Option<Known>,
    ) -> StoreResult<()> {
        let conn = self.conn;
        let id = r.id;
        let err = |e| {
            error::sql(
                path,
                format_args!("update connector-space object {id} in store"),
                e,
            )
        };
        let c = r.cols;
        self.fresh_wrote(r);
        let data = Blob(r.data);
        // Known columns and a key that is probably the same: write with a
        // check of the key, which fails only on a chance hash match.
        if let Some(k) = known.or_else(|| self.known.get(&id).copied())
            && k.key == r.key
        {
            let ma = self.ma_ids.get(conn, path, r.ma)?;
            let changed = if k.cols == c {
                stmt(&mut hot.cs_update_data, conn, CS_UPDATE_DATA)
                    .and_then(|s| s.execute(params![id, data, ma, r.anchor]))
            } else {
                stmt(&mut hot.cs_update_cols, conn, CS_UPDATE_COLS).and_then(|s| {
                    s.execute(params![
                        id, c.mv_id, c.has_pi, c.has_pe, c.has_ue, c.has_err, data, ma, r.anchor
                    ])
                })
            }
            .map_err(err)?;
            if changed == 1 {
                self.note_due(hot, path, c, Some(k.cols), false)?;
                self.dn_index(path, ma, r, true)?;
                let now = Known {
                    cols: c,
                    key: k.key,
                    rows: true,
                };
                let room = self.known.len() < KNOWN_MAX;
                match self.known.entry(id) {
                    Entry::Occupied(mut e) => *e.get_mut() = now,
                    Entry::Vacant(e) if room => {
                        e.insert(now);
                    }
                    Entry::Vacant(_) => {}
                }
                return Ok(());
            }
        }
        let ma = self.ma_ids.get(conn, path, r.ma)?;
        let old = conn
            .prepare_cached(
                "SELECT mv_id, has_pi, has_pe, has_ue, has_err, ma = ?2 AND anchor = ?3 FROM cs WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![id, ma, r.anchor], |r| {
                    Ok((
                        CsColumns {
                            mv_id: r.get(0)?,
                            has_pi: r.get(1)?,
                            has_pe: r.get(2)?,
                            has_ue: r.get(3)?,
                            has_err: r.get(4)?,
                        },
                        r.get::<_, bool>(5)?,
                    ))
                })
                .optional()
            })
            .map_err(err)?;
        let Some((old_cols, same_key)) = old else {
            return Err(error::other(
                StoreErrorKind::Invalid,
                path,
                format!("cannot update connector-space object {id}: it does not exist"),
            ));
        };
        if same_key && old_cols == c {
            conn.prepare_cached("UPDATE cs SET data = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, data]))
                .map_err(err)?;
        } else if same_key {
            conn.prepare_cached(
                "UPDATE cs SET mv_id = ?2, has_pi = ?3, has_pe = ?4, has_ue = ?5, has_err = ?6, data = ?7 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![id, c.mv_id, c.has_pi, c.has_pe, c.has_ue, c.has_err, data])
            })
            .map_err(err)?;
        } else {
            conn.prepare_cached(
                "UPDATE cs SET ma = ?2, anchor = ?3, mv_id = ?4, has_pi = ?5, has_pe = ?6, has_ue = ?7, \
                 has_err = ?8, data = ?9 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id, ma, r.anchor, c.mv_id, c.has_pi, c.has_pe, c.has_ue, c.has_err, data
                ])
            })
            .map_err(err)?;
        }
        if self.known.len() < KNOWN_MAX {
            self.known.insert(id, r.known());
        }
        self.note_due(hot, path, c, Some(old_cols), !same_key)?;
        self.dn_index(path, ma, r, true)
    }

    /// Insert a metaverse object already encoded, with its index keys.
    pub(crate) fn mv_insert_row(
        &mut self,
        hot: &mut Hot<'w>,
        path: &Path,
        id: MvId,
        object_type: &str,
        data: &[u8],
        keys: &[(i64, String)],
    ) -> StoreResult<()> {
        let conn = self.conn;
        stmt(&mut hot.mv_insert, conn, MV_INSERT)
            .and_then(|s| s.execute(params![id, object_type, Blob(data)]))
            .map_err(|e| {
                error::sql(
                    path,
                    format_args!("insert metaverse object {id} into store"),
                    e,
                )
            })?;
        if keys.is_empty() {
            return Ok(());
        }
        let s = stmt(&mut hot.mv_key, conn, mvindex::KEY_INSERT)
            .map_err(|e| mvindex::index_error(path, id, e))?;
        mvindex::insert_keys_with(s, path, id, keys)
    }
}
