//! Bulk transactions ([`crate::Store::write_bulk`]): the same transaction
//! as [`crate::Store::begin`] (`BEGIN IMMEDIATE` on the writer connection,
//! committed at the end, all or nothing), but its writes run on a
//! background thread while the caller goes on computing the next ones: a
//! full synchronisation spends about half its time in SQLite, and this puts
//! that half on the second core.
//!
//! How reads stay exact while writes are still queued: the transaction
//! notes what it wrote (connector-space ids, their anchors and metaverse
//! objects, metaverse ids and their join keys; keys as 64-bit hashes; ids
//! it handed out itself count as written by range, without a note). A
//! read answers from a reader connection when it touches nothing written:
//! that reader sees exactly the data committed when the transaction began,
//! since the transaction holds SQLite's write lock from its begin and
//! nobody else can commit in between. A read that touches something
//! written (or whose answer does) waits for the queue to drain and runs on
//! the writer connection itself, inside the transaction. A hash that
//! matches by chance only costs that wait. In a full synchronisation the
//! reads of each object touch nothing the earlier objects wrote, so the two
//! threads rarely wait for each other.
//!
//! The transaction is committed in parts ([`StoreTxn::commit_so_far`],
//! see `txn`): a part's commit and the next part's begin are queued and
//! the caller goes on at once. The reader takes a new snapshot for each
//! part (it sees the data as of the part's begin); another process's
//! commit between two parts is caught at the next begin (`PRAGMA
//! data_version`) and fails the part after it with `Conflict`.
//!
//! Ids of new objects are handed out by the caller's side (the counters
//! are read at begin, inside the transaction, and saved at commit), so an
//! insert returns its id at once.
//!
//! A write that fails on the background thread (disk full, a constraint)
//! makes every later write a no-op, and the failure is returned by the next
//! read that waits for the queue, by the next write, or by the commit,
//! which then rolls back: nothing of the transaction is kept.
//!
//! Parts: this file starts the transaction ([`run`]) and holds the
//! caller's side ([`BulkTxn`], what it wrote in [`Touched`], the queue
//! plumbing); `writer` is the writer thread and the writes queued to it;
//! `reads` decides which reads the reader connection can answer; `txn` is
//! the [`StoreRead`](crate::StoreRead)/[`StoreTxn`] API on top.

mod reads;
mod txn;
mod txn_read;
mod writer;

use super::SqliteRead;
use super::SqliteStore;
use super::error;
use super::fresh::Fresh;
use super::mvindex::IndexDefs;
use super::names::Names as Dict;
use super::write::{Known, Seq, SqliteTxn, Writer};
use crate::api::{StoreError, StoreErrorKind, StoreResult, StoreTxn};
use autosync_model::{CsId, MvId};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use writer::{Job, Msg, Write, worker};

/// Queued writes are sent in groups of this many.
const GROUP: usize = 256;
/// Groups in flight before the caller waits for the writer thread.
const GROUPS_IN_FLIGHT: usize = 32;

/// Run `work` in one bulk transaction and commit it if `work` succeeds.
pub(crate) fn run(
    store: &SqliteStore,
    work: &mut dyn FnMut(&mut dyn StoreTxn) -> StoreResult<()>,
) -> StoreResult<()> {
    let path = store.path.as_path();
    let mut guard = store.writer();
    guard.begin(path)?;
    let start = (|| -> StoreResult<_> {
        let next_cs = guard.peek_id(Seq::Cs, path)?;
        let next_mv = guard.peek_id(Seq::Mv, path)?;
        let version = guard.data_version(path)?;
        let reader = store.reader()?;
        reader.hold_snapshot()?;
        Ok((next_cs, next_mv, version, reader))
    })();
    let (next_cs, next_mv, data_version, reader) = match start {
        Ok(v) => v,
        Err(e) => {
            guard.reset(path);
            guard.fresh = None;
            return Err(e);
        }
    };
    // What an earlier bulk transaction learnt about MAs it filled holds
    // if nobody else committed since.
    let fresh = guard
        .fresh
        .take()
        .filter(|f| f.version == data_version)
        .unwrap_or_else(|| Fresh::at(data_version));
    let defs = store.defs();
    let (tx, rx) = sync_channel::<Msg>(GROUPS_IN_FLIGHT);
    let abandon = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    let writer: &mut Writer = &mut guard;
    let outcome = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("autosync-store-bulk".into())
            .spawn_scoped(scope, || worker(writer, path, rx, &abandon, &failed));
        let handle = match spawned {
            Ok(h) => h,
            Err(e) => {
                return Err(error::other(
                    StoreErrorKind::Io,
                    path,
                    format!("cannot start the store's writer thread: {e}"),
                ));
            }
        };
        let mut txn = BulkTxn {
            path,
            tx: Some(tx),
            queue: Vec::with_capacity(GROUP),
            failed: &failed,
            names: FxHashMap::default(),
            dict: store.names.get(),
            reader,
            defs,
            wrote: false,
            next_cs,
            next_mv,
            data_version,
            last_commit: None,
            touched: Touched {
                cs_start: next_cs,
                mv_start: next_mv,
                ..Touched::default()
            },
            db_known: FxHashMap::default(),
            values_changed: FxHashSet::default(),
            absent: FxHashSet::default(),
            keys: Vec::new(),
            empty_at_begin: FxHashMap::default(),
            fresh: Some(fresh),
            mv_empty_at_begin: FxHashMap::default(),
            mv_ks_written: FxHashSet::default(),
            mv_rows_written: false,
        };
        let result = work(&mut txn).and_then(|()| txn.commit_now());
        let fresh = txn.fresh.take().filter(|_| result.is_ok());
        if result.is_err() {
            // A part committed with `commit_so_far` stays committed even
            // when the work fails after it: let its queued commit run
            // (its own failure, if any, was or will be the one reported).
            let _ = txn.confirm_last_commit();
            abandon.store(true, Ordering::Relaxed);
        }
        // Closing the channel ends the writer thread, which rolls back
        // whatever was not committed.
        drop(txn);
        match handle.join() {
            Ok(()) => result.map(|()| fresh),
            Err(_) => Err(error::other(
                StoreErrorKind::Io,
                path,
                "the store's writer thread failed; the transaction was rolled back",
            )),
        }
    });
    match outcome {
        Ok(fresh) => {
            guard.fresh = fresh;
            Ok(())
        }
        Err(e) => {
            guard.fresh = None;
            Err(e)
        }
    }
}
/// What the transaction wrote, for deciding which reads need the writer.
/// Ids from `cs_start` / `mv_start` on are all the transaction's own (it
/// hands them out), so only writes of older objects are kept in sets.
#[derive(Default)]
struct Touched {
    cs_start: CsId,
    mv_start: MvId,
    /// Older connector-space objects written.
    cs: FxHashSet<CsId>,
    /// Hashes of (MA, anchor) written.
    cs_keys: FxHashSet<u64>,
    /// Older metaverse objects that written connector-space objects join.
    cs_mv: FxHashSet<MvId>,
    /// Older metaverse objects written.
    mv: FxHashSet<MvId>,
    /// Hashes of (key id, text) of metaverse objects written.
    mv_keys: FxHashSet<u64>,
    /// Per hash of an MA name: the highest id of a connector-space object
    /// of that MA written (inserted, or updated, as it is now).
    cs_ma_max: FxHashMap<u64, CsId>,
}

impl Touched {
    fn cs_written(&self, id: CsId) -> bool {
        id >= self.cs_start || self.cs.contains(&id)
    }

    fn mv_written(&self, id: MvId) -> bool {
        id >= self.mv_start || self.mv.contains(&id)
    }

    /// Whether a written connector-space object joins `mv` (every object
    /// joining a new metaverse object was written by the transaction).
    fn joins_written(&self, mv: MvId) -> bool {
        mv >= self.mv_start || self.cs_mv.contains(&mv)
    }

    fn note_cs(&mut self, id: CsId) {
        if id < self.cs_start {
            self.cs.insert(id);
        }
    }

    fn note_mv(&mut self, id: MvId) {
        if id < self.mv_start {
            self.mv.insert(id);
        }
    }

    /// Whether a page of `ma` after `after` could miss an object inside
    /// the transaction that the reader does not see: one the transaction
    /// inserted into `ma` past `after`, or updated so that it is in `ma` or
    /// matches the page's filter now. What the reader does return is
    /// checked by the caller against every id written (deleted, updated,
    /// moved out of `ma`).
    fn cs_page_differs(&self, ma: &str, after: CsId) -> bool {
        self.cs_ma_max
            .get(&ma_key(ma))
            .is_some_and(|max| *max > after)
    }
}

fn ma_key(ma: &str) -> u64 {
    let mut h = FxHasher::default();
    ma.hash(&mut h);
    h.finish()
}
/// The caller's side of a bulk transaction.
struct BulkTxn<'s, 'f> {
    path: &'s Path,
    /// `None` once closed.
    tx: Option<SyncSender<Msg>>,
    queue: Vec<Write>,
    failed: &'f AtomicBool,
    /// MA names and object types handed to the writer thread, by number
    /// ([`Write::Name`]).
    names: FxHashMap<String, u32>,
    /// The store's name dictionary as the transaction began (bodies use
    /// its numbers; see `names`).
    dict: Arc<Dict>,
    reader: SqliteRead<'s>,
    defs: Arc<IndexDefs>,
    /// Whether anything was written yet (until then every read goes to the
    /// reader).
    wrote: bool,
    next_cs: i64,
    next_mv: i64,
    /// The writer's `PRAGMA data_version` at the begin: another process's
    /// commit between two parts ([`StoreTxn::commit_so_far`]) changes it.
    data_version: i64,
    /// Signalled when the last queued `commit_so_far` succeeded (dropped
    /// unsignalled when it failed or was skipped after a failure).
    last_commit: Option<Receiver<()>>,
    touched: Touched,
    /// The stored columns of objects read from the reader (what the writer
    /// thread's `cs_update` would otherwise `SELECT`).
    db_known: FxHashMap<CsId, Known>,
    /// Connector-space objects whose value rows this transaction changed:
    /// an update of one clears its rows whatever a read of it said.
    values_changed: FxHashSet<CsId>,
    /// Hashes of (MA, anchor) the reader found no object for (an insert
    /// of one needs no check; a chance match is caught by the unique index
    /// at commit).
    absent: FxHashSet<u64>,
    keys: Vec<(i64, String)>,
    /// Per MA asked about: whether it had no connector-space object when
    /// the transaction began (its anchors need no lookup then: an initial
    /// provisioning into a new target looks up every anchor it adds).
    empty_at_begin: FxHashMap<String, bool>,
    /// The same across transactions (see `fresh`): handed back to the
    /// writer when this transaction commits; `None` once too large.
    fresh: Option<Fresh>,
    /// Per metaverse index key asked about: whether it held no text when
    /// the transaction began.
    mv_empty_at_begin: FxHashMap<i64, bool>,
    /// Metaverse index keys this transaction wrote texts to.
    mv_ks_written: FxHashSet<i64>,
    /// Whether this transaction wrote value rows of metaverse objects (a
    /// lookup by value rows then asks the writer).
    mv_rows_written: bool,
}

fn lost(path: &Path) -> StoreError {
    error::other(
        StoreErrorKind::Io,
        path,
        "the store's writer thread stopped; the transaction was rolled back",
    )
}

impl BulkTxn<'_, '_> {
    fn send(&mut self, msg: Msg) -> StoreResult<()> {
        let Some(tx) = &self.tx else {
            return Err(lost(self.path));
        };
        tx.send(msg).map_err(|_| lost(self.path))
    }

    /// Send the queued writes; if the writer thread failed, return its
    /// error.
    fn flush(&mut self) -> StoreResult<()> {
        if self.failed.load(Ordering::Acquire) {
            return self.call(|_| Ok(()));
        }
        if !self.queue.is_empty() {
            let jobs = std::mem::replace(&mut self.queue, Vec::with_capacity(GROUP));
            self.send(Msg::Jobs(jobs))?;
        }
        Ok(())
    }

    /// The number the writer thread knows `name` by: a name travels once
    /// per transaction, then only its number (no string, no shared
    /// counter touched by both threads per object).
    fn name(&mut self, name: &str) -> StoreResult<u32> {
        if let Some(n) = self.names.get(name) {
            return Ok(*n);
        }
        let n = u32::try_from(self.names.len()).map_err(|_| {
            error::other(
                StoreErrorKind::Invalid,
                self.path,
                "too many distinct names in one bulk transaction",
            )
        })?;
        self.names.insert(name.to_owned(), n);
        self.push(Write::Name(name.to_owned()))?;
        Ok(n)
    }

    fn push_job(&mut self, job: Job) -> StoreResult<()> {
        self.push(Write::Job(job))
    }

    fn push(&mut self, job: Write) -> StoreResult<()> {
        self.wrote = true;
        self.queue.push(job);
        if self.queue.len() >= GROUP {
            self.flush()?;
        }
        Ok(())
    }

    /// Run `f` on the writer thread after every queued write, and return
    /// its answer (or the first failure of the queue).
    fn call<R: Send + 'static>(
        &mut self,
        f: impl for<'a> FnOnce(&mut SqliteTxn<'a>) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        if !self.queue.is_empty() {
            let jobs = std::mem::take(&mut self.queue);
            self.send(Msg::Jobs(jobs))?;
        }
        let (rtx, rrx) = sync_channel::<StoreResult<R>>(1);
        self.send(Msg::Call(Box::new(move |t, failed| {
            let r = match failed {
                Some(e) => Err(e.clone()),
                None => f(t),
            };
            let _ = rtx.send(r);
        })))?;
        rrx.recv().map_err(|_| lost(self.path))?
    }

    /// Wait for the last queued `commit_so_far` and return its failure
    /// (or the first failure before it), if any.
    fn confirm_last_commit(&mut self) -> StoreResult<()> {
        if let Some(done) = self.last_commit.take()
            && done.recv().is_err()
        {
            // The writer failed: `call` returns its first failure.
            self.call(|_| Ok(()))?;
            return Err(lost(self.path));
        }
        Ok(())
    }

    fn commit_now(&mut self) -> StoreResult<()> {
        // The reader's snapshot ends first: a checkpoint right after the
        // commit can then copy everything, and the WAL start over.
        self.reader.release_snapshot();
        let (cs, mv) = (self.next_cs, self.next_mv);
        self.call(move |t| {
            t.w.ids_taken_below(Seq::Cs, cs);
            t.w.ids_taken_below(Seq::Mv, mv);
            let path = t.path;
            t.w.commit(path)
        })?;
        self.tx = None;
        Ok(())
    }
}
