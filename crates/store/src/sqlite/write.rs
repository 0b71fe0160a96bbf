//! Write transactions: the single writer connection (behind the store's
//! mutex) and the [`StoreTxn`](crate::StoreTxn) that holds it from `BEGIN IMMEDIATE` to
//! `COMMIT`, or rolls back when dropped.
//!
//! This file is the writer connection ([`Writer`]: id counters, begin and
//! commit, the scratch space writes share); `row` is a connector-space
//! object as its stored row; `txn` is the transaction API.

mod row;
mod txn;
mod waits;

pub(crate) use row::{CsRow, KNOWN_MAX, Known};
pub(crate) use txn::SqliteTxn;

use super::fresh::{self, Fresh};
use super::hot::Parts;
use super::mvindex::IndexDefs;
use super::names::{NameCache, Names};
use super::schema::MaIds;
use crate::api::StoreResult;
use crate::sqlite::error;
use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::{FxHashMap, FxHashSet};
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
    /// Connector-space objects whose value rows this transaction changed
    /// (`cs_values_change`): an update of one clears its rows whatever a
    /// read of it said (its body need not mark them yet).
    values_changed: FxHashSet<i64>,
    /// Wakes the checkpoint thread.
    pub ckpt: Option<std::sync::mpsc::SyncSender<()>>,
    /// WAL frames after a commit that ask for a checkpoint.
    ckpt_pages: i32,
    /// Management-agent numbers (`cs.ma`).
    ma_ids: MaIds,
    /// Scratch: the index keys a metaverse object had before a write.
    old_keys: Vec<(i64, String)>,
    /// The MAs (by number) whose objects' DNs are indexed (`cs_dn`), as
    /// the transaction began.
    pub(crate) dn_mas: rustc_hash::FxHashSet<i64>,
    /// MAs this connection filled from empty and the anchors they may
    /// hold (see `fresh`); taken by a bulk transaction while it runs.
    pub fresh: Option<Fresh>,
    /// Whether any outbound reference may wait (`ref_wait_out` was not
    /// empty as the transaction began, or it wrote a wait since): only
    /// then does a write of a connector note its object as due
    /// (`ref_out_due`, see `hot`).
    pub(crate) waits_out: bool,
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
            values_changed: FxHashSet::default(),
            ckpt: None,
            ckpt_pages: i32::MAX,
            ma_ids: MaIds::default(),
            old_keys: Vec::new(),
            fresh: None,
            dn_mas: Default::default(),
            waits_out: false,
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
        self.values_changed.clear();
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
    /// live across many writes: see [`Hot`](super::hot::Hot)).
    pub(crate) fn parts(&mut self) -> Parts<'_> {
        Parts {
            conn: &self.conn,
            known: &mut self.known,
            ma_ids: &mut self.ma_ids,
            fresh: &mut self.fresh,
            dn_mas: &self.dn_mas,
            waits_out: self.waits_out,
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
        self.dn_mas = load_dn_mas(&self.conn, path)?;
        self.waits_out = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM ref_wait_out)")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
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
        self.values_changed.clear();
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

/// The MAs whose objects' DNs are indexed (`cs_dn_ma`).
pub(crate) fn load_dn_mas(
    conn: &Connection,
    path: &Path,
) -> StoreResult<rustc_hash::FxHashSet<i64>> {
    let err = |e| error::sql(path, "read the MAs whose DNs are indexed", e);
    let mut stmt = conn
        .prepare_cached("SELECT ma FROM cs_dn_ma")
        .map_err(err)?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(err)?;
    let mut out = rustc_hash::FxHashSet::default();
    for r in rows {
        out.insert(r.map_err(err)?);
    }
    Ok(out)
}
