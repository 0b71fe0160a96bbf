//! Write transactions: the single writer connection (behind the store's
//! mutex) and the [`StoreTxn`] that holds it from `BEGIN IMMEDIATE` to
//! `COMMIT`, or rolls back when dropped.

use super::bin;
use super::codec::{Blob, CsColumns, JsonText, RunErrorBody, encode};
use super::error;
use super::fresh::{self, Fresh};
use super::hot::{Hot, Parts};
use super::mvindex::{self, IndexDefs};
use super::names::{NameCache, Names};
use super::read::{Ctx, impl_store_read};
use super::schema::MaIds;
use crate::api::{StoreErrorKind, StoreResult, StoreTxn};
use autosync_model::{CsId, CsObject, MvId, MvObject, RunObjectError, RunRecord};
use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;
use std::path::Path;
use std::sync::{Arc, MutexGuard};

/// Tables whose ids come from the `seq` table (never reused).
#[derive(Clone, Copy)]
pub(crate) enum Seq {
    Cs = 0,
    Mv = 1,
    Run = 2,
}

const SEQ_NAMES: [&str; 3] = ["cs", "mv", "run"];
const SEQ_MAX: [&str; 3] = [
    "SELECT coalesce(max(id), 0) + 1 FROM cs",
    "SELECT coalesce(max(id), 0) + 1 FROM mv",
    "SELECT coalesce(max(id), 0) + 1 FROM run",
];

thread_local! {
    /// Frames in the WAL after the last commit on this thread (set by the
    /// writer's WAL hook, which runs inside `COMMIT` on the committing
    /// thread).
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn note_wal(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|c| c.set(pages));
    Ok(())
}

/// A passive checkpoint (never blocks the writer or readers).
pub(crate) fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// The writer connection and its scratch space.
pub(crate) struct Writer {
    pub conn: Connection,
    pub defs: IndexDefs,
    /// The store's name dictionary (shared with its readers).
    pub names: Arc<NameCache>,
    /// The copy of it this transaction's bodies are encoded with, taken at
    /// `begin` (not once per object; an older copy only writes a few more
    /// names as text).
    dict: Arc<Names>,
    buf: Vec<u8>,
    keys: Vec<(i64, String)>,
    /// Next id per [`Seq`], loaded on first use in a transaction.
    seq: [Option<i64>; 3],
    seq_dirty: [bool; 3],
    /// The stored filter columns and key of connector-space objects this
    /// transaction read or wrote: `cs_update` then needs no `SELECT` of
    /// them (cleared at every begin and commit).
    known: FxHashMap<i64, Known>,
    /// Wakes the checkpoint thread.
    pub ckpt: Option<std::sync::mpsc::SyncSender<()>>,
    /// WAL frames after a commit that ask for a checkpoint.
    ckpt_pages: i32,
    /// Management-agent numbers (`cs.ma`).
    ma_ids: MaIds,
    /// Scratch: the index keys a metaverse object had before a write.
    old_keys: Vec<(i64, String)>,
    /// MAs this connection filled from empty and the anchors they may
    /// hold (see `fresh`); taken by a bulk transaction while it runs.
    pub fresh: Option<Fresh>,
}

impl Writer {
    /// Ask `ckpt` for a checkpoint whenever a commit leaves `pages` frames
    /// or more in the WAL.
    pub(crate) fn watch_wal(&mut self, ckpt: std::sync::mpsc::SyncSender<()>, pages: u32) {
        self.conn.wal_hook(Some(note_wal));
        self.ckpt = Some(ckpt);
        self.ckpt_pages = i32::try_from(pages.max(1)).unwrap_or(i32::MAX);
    }

    pub(crate) fn new(conn: Connection, defs: IndexDefs, names: Arc<NameCache>) -> Self {
        Writer {
            conn,
            defs,
            dict: names.get(),
            names,
            buf: Vec::with_capacity(4096),
            keys: Vec::new(),
            seq: [None; 3],
            seq_dirty: [false; 3],
            known: FxHashMap::default(),
            ckpt: None,
            ckpt_pages: i32::MAX,
            ma_ids: MaIds::default(),
            old_keys: Vec::new(),
            fresh: None,
        }
    }

    /// Roll back whatever a panicking holder left open.
    pub(crate) fn reset(&mut self, path: &Path) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(store = %path.display(), error = %e, "rollback failed");
        }
        self.seq = [None; 3];
        self.seq_dirty = [false; 3];
        self.known.clear();
        self.ma_ids.rolled_back();
    }

    /// `PRAGMA data_version`: changes when another connection commits (not
    /// for this connection's own commits).
    pub(crate) fn data_version(&self, path: &Path) -> StoreResult<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| error::sql(path, "read the store's data version", e))
    }

    /// An object of `ma` with `anchor` was written (inserted, or updated
    /// and perhaps moved): keep what `fresh` knows a superset.
    /// The connection and, borrowed apart from it, what the frequent
    /// writes update (so that statements borrowed from the connection can
    /// live across many writes: see [`Hot`]).
    pub(crate) fn parts(&mut self) -> Parts<'_> {
        Parts {
            conn: &self.conn,
            known: &mut self.known,
            ma_ids: &mut self.ma_ids,
            fresh: &mut self.fresh,
        }
    }

    /// Note the metaverse index keys in `self.keys` (just written by a
    /// plain transaction) in the fresh knowledge.
    fn fresh_wrote_mv(&mut self) {
        if let Some(f) = &mut self.fresh
            && !self
                .keys
                .iter()
                .all(|(k, text)| f.wrote_mv(*k, fresh::mv_text_key(*k, text)))
        {
            self.fresh = None;
        }
    }

    pub(crate) fn begin(&mut self, path: &Path) -> StoreResult<()> {
        self.reset(path);
        self.dict = self.names.get();
        self.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| error::sql(path, "begin a transaction in store", e))?;
        Ok(())
    }

    pub(crate) fn commit(&mut self, path: &Path) -> StoreResult<()> {
        for (i, name) in SEQ_NAMES.iter().enumerate() {
            if let (true, Some(next)) = (self.seq_dirty[i], self.seq[i]) {
                self.conn
                    .prepare_cached(
                        "INSERT INTO seq (name, next) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET next = excluded.next",
                    )
                    .and_then(|mut s| s.execute(params![name, next]))
                    .map_err(|e| error::sql(path, "save id counters in store", e))?;
            }
        }
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| error::sql(path, "commit a transaction to store", e))?;
        self.ma_ids.committed();
        self.seq = [None; 3];
        self.seq_dirty = [false; 3];
        self.known.clear();
        let pages = WAL_PAGES.with(|c| c.replace(0));
        if pages >= self.ckpt_pages {
            if let Some(tx) = &self.ckpt {
                // Full: a checkpoint is already asked for.
                let _ = tx.try_send(());
            }
            if pages / 4 >= self.ckpt_pages
                && let Err(e) = checkpoint(&self.conn)
            {
                tracing::warn!(store = %path.display(), error = %e, "WAL checkpoint failed");
            }
        }
        Ok(())
    }

    /// The next id of `which` this transaction would hand out, without
    /// taking it.
    pub(crate) fn peek_id(&mut self, which: Seq, path: &Path) -> StoreResult<i64> {
        let next = self.next_id(which, path)?;
        self.seq[which as usize] = Some(next);
        Ok(next)
    }

    /// Ids of `which` below `next` are taken (by a bulk transaction that
    /// handed them out itself).
    pub(crate) fn ids_taken_below(&mut self, which: Seq, next: i64) {
        let i = which as usize;
        if self.seq[i].is_none_or(|n| n < next) {
            self.seq[i] = Some(next);
            self.seq_dirty[i] = true;
        }
    }

    fn next_id(&mut self, which: Seq, path: &Path) -> StoreResult<i64> {
        let i = which as usize;
        let next = match self.seq[i] {
            Some(n) => n,
            None => {
                let err = |e| error::sql(path, "read id counters from store", e);
                let saved: Option<i64> = self
                    .conn
                    .prepare_cached("SELECT next FROM seq WHERE name = ?1")
                    .and_then(|mut s| s.query_row([SEQ_NAMES[i]], |r| r.get(0)).optional())
                    .map_err(err)?;
                let max: i64 = self
                    .conn
                    .prepare_cached(SEQ_MAX[i])
                    .and_then(|mut s| s.query_row([], |r| r.get(0)))
                    .map_err(err)?;
                saved.unwrap_or(1).max(max)
            }
        };
        self.seq[i] = Some(next + 1);
        self.seq_dirty[i] = true;
        Ok(next)
    }
}

/// What a row of `cs` holds in its filter columns, and a hash of its key
/// (MA, anchor): an update whose key has the same hash is written with a
/// check that the key is indeed the same (`WHERE ma = .. AND anchor = ..`)
/// and done again the long way if it was not, so a chance match costs
/// one more statement, never a wrong row. No strings: a full sync notes
/// every object it reads.
#[derive(Clone, Copy)]
pub(crate) struct Known {
    pub(crate) cols: CsColumns,
    pub(crate) key: u64,
}

impl Known {
    /// A remembered row whose key hash is `key` (tests: a chance match).
    #[cfg(test)]
    pub(crate) fn claiming(obj: &CsObject, key: u64) -> Self {
        Known {
            cols: CsColumns::of(obj),
            key,
        }
    }

    pub(crate) fn of(obj: &CsObject) -> Self {
        Known {
            cols: CsColumns::of(obj),
            key: fresh::cs_key(&obj.ma, &obj.anchor),
        }
    }
}

/// A connector-space object as its row: key, filter columns and encoded
/// body (a bulk transaction encodes on the caller's thread).
pub(crate) struct CsRow<'a> {
    pub id: CsId,
    pub ma: &'a str,
    pub anchor: &'a str,
    /// `fresh::cs_key(ma, anchor)`, computed once per row (a bulk
    /// transaction computes it on the caller's thread).
    pub key: u64,
    pub cols: CsColumns,
    pub data: &'a [u8],
}

impl<'a> CsRow<'a> {
    pub(crate) fn new(obj: &'a CsObject, data: &'a [u8]) -> Self {
        CsRow {
            id: obj.id,
            ma: &obj.ma,
            anchor: &obj.anchor,
            key: fresh::cs_key(&obj.ma, &obj.anchor),
            cols: CsColumns::of(obj),
            data,
        }
    }

    pub(crate) fn known(&self) -> Known {
        Known {
            cols: self.cols,
            key: self.key,
        }
    }
}

/// Most objects a transaction remembers the columns of (beyond that,
/// `cs_update` reads them).
pub(crate) const KNOWN_MAX: usize = 100_000;

/// The writer, held for a transaction: through the store's mutex, or lent
/// to the background thread of a bulk transaction (see `bulk`).
pub(crate) enum WriterRef<'s> {
    Guard(MutexGuard<'s, Writer>),
    Lent(&'s mut Writer),
}

impl std::ops::Deref for WriterRef<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        match self {
            WriterRef::Guard(g) => g,
            WriterRef::Lent(w) => w,
        }
    }
}

impl std::ops::DerefMut for WriterRef<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        match self {
            WriterRef::Guard(g) => g,
            WriterRef::Lent(w) => w,
        }
    }
}

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
        let mut buf = std::mem::take(&mut self.w.buf);
        bin::encode_cs(&mut buf, &self.w.dict, obj);
        let res = self.cs_insert_row(&CsRow::new(obj, &buf));
        self.w.buf = buf;
        res
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
        bin::encode_mv(&mut w.buf, &w.dict, obj);
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
        let mut buf = std::mem::take(&mut self.w.buf);
        bin::encode_cs(&mut buf, &self.w.dict, obj);
        let res = self.cs_update_row(&CsRow::new(obj, &buf));
        self.w.buf = buf;
        res
    }

    fn cs_delete(&mut self, id: CsId) -> StoreResult<()> {
        self.w.known.remove(&id);
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
        let Some(old_indexed) = old_indexed else {
            return Err(error::other(
                StoreErrorKind::Invalid,
                path,
                format!("cannot update metaverse object {id}: it does not exist"),
            ));
        };
        bin::encode_mv(&mut w.buf, &w.dict, obj);
        w.conn
            .prepare_cached("UPDATE mv SET type = ?3, data = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, Blob(&w.buf), obj.object_type]))
            .map_err(err)?;
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
