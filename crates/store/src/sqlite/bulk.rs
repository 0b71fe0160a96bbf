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
//! Ids of new objects are handed out by the caller's side (the counters
//! are read at begin, inside the transaction, and saved at commit), so an
//! insert returns its id at once.
//!
//! A write that fails on the background thread (disk full, a constraint)
//! makes every later write a no-op, and the failure is returned by the next
//! read that waits for the queue, by the next write, or by the commit,
//! which then rolls back: nothing of the transaction is kept.

use super::SqliteRead;
use super::SqliteStore;
use super::bin;
use super::codec::CsColumns;
use super::error;
use super::fresh::{Fresh, cs_key, mv_text_key};
use super::hot::Hot;
use super::mvindex::{self, IndexDefs};
use super::names::Names as Dict;
use super::write::{CsRow, KNOWN_MAX, Known, Seq, SqliteTxn, Writer, WriterRef};
use crate::api::{
    CsCounts, CsFilter, MvQuery, StoreError, StoreErrorKind, StoreRead, StoreResult, StoreTxn,
};
use autosync_model::{CsId, CsObject, MvId, MvObject, RunId, RunObjectError, RunRecord, Value};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// A queued write, run on the writer thread inside the transaction.
type Job = Box<dyn for<'a> FnOnce(&mut SqliteTxn<'a>) -> StoreResult<()> + Send>;

/// A call on the writer thread: gets the transaction and the first failure
/// so far (if any), and answers through its own channel.
type Call = Box<dyn for<'a> FnOnce(&mut SqliteTxn<'a>, Option<&StoreError>) + Send>;

/// A queued write: the frequent ones of a synchronisation as plain data
/// (no boxed closure to allocate, call and free per object), the rest as
/// a job.
enum Write {
    /// The next name (MA name or object type) of the transaction: later
    /// writes name it by its number, in order of arrival ([`Names`]).
    Name(String),
    CsInsert(OwnedRow),
    CsUpdate(OwnedRow, Option<Known>),
    MvInsert {
        id: MvId,
        object_type: u32,
        data: Vec<u8>,
        keys: Vec<(i64, String)>,
    },
    Job(Job),
}

/// The writer thread's names, by number.
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn get(&self, n: u32, path: &Path) -> StoreResult<&str> {
        usize::try_from(n)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(String::as_str)
            .ok_or_else(|| {
                error::other(
                    StoreErrorKind::Io,
                    path,
                    format!("the store's writer thread has no name number {n}"),
                )
            })
    }
}

enum Msg {
    Jobs(Vec<Write>),
    Call(Call),
}

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
            absent: FxHashSet::default(),
            keys: Vec::new(),
            empty_at_begin: FxHashMap::default(),
            fresh: Some(fresh),
            mv_empty_at_begin: FxHashMap::default(),
            mv_ks_written: FxHashSet::default(),
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

/// The writer thread: runs queued writes in order until the channel
/// closes; after the first failure it only answers calls. Dropping the
/// transaction at the end rolls back anything not committed. A run of
/// frequent writes in a group shares its prepared statements ([`Hot`]).
fn worker(
    w: &mut Writer,
    path: &Path,
    rx: Receiver<Msg>,
    abandon: &AtomicBool,
    failed_flag: &AtomicBool,
) {
    let mut txn = SqliteTxn {
        w: WriterRef::Lent(w),
        path,
    };
    let mut failed: Option<StoreError> = None;
    let mut names = Names::default();
    for msg in rx {
        match msg {
            Msg::Jobs(jobs) => {
                let mut jobs = jobs.into_iter();
                loop {
                    if failed.is_some() || abandon.load(Ordering::Relaxed) {
                        break;
                    }
                    let (job, res) = run_hot(&mut txn.w, path, &mut jobs, &mut names, abandon);
                    let res = match (res, job) {
                        (Ok(()), Some(job)) => job(&mut txn),
                        (res, _) => res,
                    };
                    if let Err(e) = res {
                        failed = Some(e);
                        failed_flag.store(true, Ordering::Release);
                    }
                    if jobs.len() == 0 {
                        break;
                    }
                }
            }
            Msg::Call(call) => call(&mut txn, failed.as_ref()),
        }
    }
}

/// Run the frequent writes at the head of `jobs` with shared statements,
/// up to the first job (returned, not run), failure or abandon.
fn run_hot(
    w: &mut Writer,
    path: &Path,
    jobs: &mut std::vec::IntoIter<Write>,
    names: &mut Names,
    abandon: &AtomicBool,
) -> (Option<Job>, StoreResult<()>) {
    let mut p = w.parts();
    let mut hot = Hot::default();
    for write in jobs.by_ref() {
        if abandon.load(Ordering::Relaxed) {
            break;
        }
        let res = match write {
            Write::Job(job) => return (Some(job), Ok(())),
            Write::Name(name) => {
                names.0.push(name);
                Ok(())
            }
            Write::CsInsert(row) => names
                .get(row.ma, path)
                .and_then(|ma| p.cs_insert_row(&mut hot, path, &row.row(ma))),
            Write::CsUpdate(row, known) => names
                .get(row.ma, path)
                .and_then(|ma| p.cs_update_row(&mut hot, path, &row.row(ma), known)),
            Write::MvInsert {
                id,
                object_type,
                data,
                keys,
            } => names.get(object_type, path).and_then(|object_type| {
                p.mv_insert_row(&mut hot, path, id, object_type, &data, &keys)
            }),
        };
        if res.is_err() {
            return (None, res);
        }
    }
    (None, Ok(()))
}

/// A connector-space object encoded on the caller's thread: the writer
/// thread only runs the SQL and frees the body and the anchor, not an
/// object (the rest of the object is freed on the thread that made it).
struct OwnedRow {
    id: CsId,
    /// The MA's name by number ([`Write::Name`]).
    ma: u32,
    anchor: String,
    /// `cs_key(ma, anchor)`, computed once on the caller's thread.
    key: u64,
    cols: CsColumns,
    data: Vec<u8>,
}

impl OwnedRow {
    fn of(obj: &mut CsObject, ma: u32, key: u64, dict: &Dict) -> Self {
        let mut data = Vec::with_capacity(512);
        bin::encode_cs(&mut data, dict, obj);
        OwnedRow {
            id: obj.id,
            cols: CsColumns::of(obj),
            ma,
            key,
            anchor: std::mem::take(&mut obj.anchor),
            data,
        }
    }

    fn row<'r>(&'r self, ma: &'r str) -> CsRow<'r> {
        CsRow {
            id: self.id,
            ma,
            anchor: &self.anchor,
            key: self.key,
            cols: self.cols,
            data: &self.data,
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

    /// Whether `ma` had no connector-space object at the begin (asked once
    /// per transaction and MA, on the reader, which sees the begin state).
    fn empty_at_begin(&mut self, ma: &str) -> StoreResult<bool> {
        if let Some(empty) = self.empty_at_begin.get(ma) {
            return Ok(*empty);
        }
        let empty = !self.reader.ctx().cs_any(ma)?;
        self.empty_at_begin.insert(ma.to_owned(), empty);
        // Known from now on only if this transaction wrote nothing to it
        // yet (what it wrote before is in `touched`, not in `fresh`).
        if empty
            && !self.touched.cs_ma_max.contains_key(&ma_key(ma))
            && let Some(f) = &mut self.fresh
        {
            f.add_empty(ma);
        }
        Ok(empty)
    }

    /// Whether `ma` surely holds no object whose (MA, anchor) hash is
    /// `key`, other than one this transaction wrote (the caller checks
    /// `touched` first).
    fn surely_absent(&mut self, ma: &str, key: u64) -> StoreResult<bool> {
        match &self.fresh {
            Some(f) if f.knows(ma) => Ok(!f.may_hold(key)),
            _ => self.empty_at_begin(ma),
        }
    }

    fn note_db(&mut self, objs: &[CsObject]) {
        if self.db_known.len() + objs.len() > KNOWN_MAX {
            return;
        }
        for o in objs {
            self.db_known.insert(o.id, Known::of(o));
        }
    }

    fn any_cs_touched(&self, objs: &[CsObject]) -> bool {
        objs.iter().any(|o| self.touched.cs_written(o.id))
    }

    /// Note `obj` (whose `cs_key` is `key`) written.
    fn note_cs_written(&mut self, obj: &CsObject, key: u64) {
        self.touched.note_cs(obj.id);
        self.touched.cs_keys.insert(key);
        if let Some(f) = &mut self.fresh
            && !f.wrote(&obj.ma, key)
        {
            self.fresh = None;
        }
        let max = self.touched.cs_ma_max.entry(ma_key(&obj.ma)).or_default();
        *max = (*max).max(obj.id);
        if let Some(m) = obj.connection.mv_id()
            && m < self.touched.mv_start
        {
            self.touched.cs_mv.insert(m);
        }
    }

    fn note_mv_written(&mut self, obj: &MvObject) -> StoreResult<()> {
        self.touched.note_mv(obj.id);
        if self.defs.has_type(&obj.object_type) {
            self.defs.keys_of(obj, self.path, &mut self.keys)?;
            for (k, text) in &self.keys {
                let key = mv_text_key(*k, text);
                self.touched.mv_keys.insert(key);
                self.mv_ks_written.insert(*k);
                if let Some(f) = &mut self.fresh
                    && !f.wrote_mv(*k, key)
                {
                    self.fresh = None;
                }
            }
        }
        Ok(())
    }

    /// Whether every text metaverse index key `k` holds, in the store or
    /// written by this transaction, is in the fresh knowledge (asked once
    /// per transaction and key, on the reader, which sees the begin state).
    fn mv_known(&mut self, k: i64) -> StoreResult<bool> {
        if self.fresh.as_ref().is_some_and(|f| f.knows_mv(k)) {
            return Ok(true);
        }
        let empty = match self.mv_empty_at_begin.get(&k) {
            Some(e) => *e,
            None => {
                let e = !self.reader.ctx().mv_key_any(k)?;
                self.mv_empty_at_begin.insert(k, e);
                e
            }
        };
        // Known from now on only if this transaction wrote nothing to it
        // yet (what it wrote before is in `touched`, not in `fresh`).
        if empty
            && !self.mv_ks_written.contains(&k)
            && let Some(f) = &mut self.fresh
        {
            f.add_empty_mv(k);
            return Ok(true);
        }
        Ok(false)
    }

    /// The values of a search of `attr` that may find something: the
    /// indexes of `values` whose texts the fresh knowledge may hold, or
    /// `None` when it does not know the key (every value may).
    fn mv_maybe(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Option<Vec<usize>>> {
        let Some(k) = self.defs.key(object_type, attr) else {
            return Ok(None);
        };
        if !self.mv_known(k)? {
            return Ok(None);
        }
        let Some(f) = &self.fresh else {
            return Ok(None);
        };
        let maybe = values
            .iter()
            .enumerate()
            .filter(|(_, v)| mvindex::any_text(v, &mut |t| f.may_hold_mv(mv_text_key(k, t))))
            .map(|(i, _)| i)
            .collect();
        Ok(Some(maybe))
    }

    /// `mv_find_many` of every value: on the reader unless the search
    /// could find something this transaction wrote.
    fn mv_find_many_all(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        if !self.mv_search_touched(object_type, attr, values) {
            let found = self.reader.mv_find_many(object_type, attr, values)?;
            if !found.iter().any(|(_, id)| self.touched.mv_written(*id)) {
                return Ok(found);
            }
        }
        let (object_type, attr, values) =
            (object_type.to_owned(), attr.to_owned(), values.to_vec());
        self.call(move |t| t.mv_find_many(&object_type, &attr, &values))
    }

    /// Whether a search of `attr` for `values` could find an object this
    /// transaction wrote.
    fn mv_search_touched(&self, object_type: &str, attr: &str, values: &[Value]) -> bool {
        if self.touched.mv_keys.is_empty() {
            return false;
        }
        let Some(k) = self.defs.key(object_type, attr) else {
            return false;
        };
        values.iter().any(|v| {
            mvindex::texts(v)
                .iter()
                .any(|t| self.touched.mv_keys.contains(&mv_text_key(k, t)))
        })
    }
}

impl StoreRead for BulkTxn<'_, '_> {
    fn cs_get(&mut self, id: CsId) -> StoreResult<Option<CsObject>> {
        if self.touched.cs_written(id) {
            return self.call(move |t| t.cs_get(id));
        }
        let o = self.reader.cs_get(id)?;
        self.note_db(o.as_slice());
        Ok(o)
    }

    fn cs_by_anchor(&mut self, ma: &str, anchor: &str) -> StoreResult<Option<CsObject>> {
        let key = cs_key(ma, anchor);
        if !self.touched.cs_keys.contains(&key) {
            if self.surely_absent(ma, key)? {
                return Ok(None);
            }
            match self.reader.cs_by_anchor(ma, anchor)? {
                None => {
                    self.absent.insert(key);
                    return Ok(None);
                }
                Some(o) if !self.touched.cs_written(o.id) => {
                    self.note_db(std::slice::from_ref(&o));
                    return Ok(Some(o));
                }
                Some(_) => {}
            }
        }
        let (ma, anchor) = (ma.to_owned(), anchor.to_owned());
        self.call(move |t| t.cs_by_anchor(&ma, &anchor))
    }

    fn cs_by_anchors(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>> {
        if !anchors
            .iter()
            .any(|a| self.touched.cs_keys.contains(&cs_key(ma, a)))
        {
            if self.empty_at_begin(ma)? {
                return Ok(Vec::new());
            }
            let found = self.reader.cs_by_anchors(ma, anchors)?;
            if !self.any_cs_touched(&found) {
                self.note_db(&found);
                return Ok(found);
            }
        }
        let ma = ma.to_owned();
        let anchors: Vec<String> = anchors.iter().map(|a| (*a).to_owned()).collect();
        self.call(move |t| {
            let refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
            t.cs_by_anchors(&ma, &refs)
        })
    }

    fn cs_page(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        // After writes too, the reader answers when none of them could
        // change the page.
        if !self.touched.cs_page_differs(ma, after) {
            let page = self.reader.cs_page(ma, filter, after, limit)?;
            if !self.any_cs_touched(&page) {
                self.note_db(&page);
                return Ok(page);
            }
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_page(&ma, filter, after, limit))
    }

    fn cs_page_ids(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        if !self.touched.cs_page_differs(ma, after) {
            let ids = self.reader.cs_page_ids(ma, filter, after, limit)?;
            if !ids.iter().any(|id| self.touched.cs_written(*id)) {
                return Ok(ids);
            }
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_page_ids(&ma, filter, after, limit))
    }

    fn cs_by_mv(&mut self, mv_id: MvId) -> StoreResult<Vec<CsObject>> {
        if !self.touched.joins_written(mv_id) {
            let found = self.reader.cs_by_mv(mv_id)?;
            if !self.any_cs_touched(&found) {
                self.note_db(&found);
                return Ok(found);
            }
        }
        self.call(move |t| t.cs_by_mv(mv_id))
    }

    fn cs_counts(&mut self, ma: &str) -> StoreResult<CsCounts> {
        if !self.wrote {
            return self.reader.cs_counts(ma);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.cs_counts(&ma))
    }

    fn mv_get(&mut self, id: MvId) -> StoreResult<Option<MvObject>> {
        if self.touched.mv_written(id) {
            return self.call(move |t| t.mv_get(id));
        }
        self.reader.mv_get(id)
    }

    fn mv_get_many(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>> {
        let (written, rest): (Vec<MvId>, Vec<MvId>) =
            ids.iter().partition(|id| self.touched.mv_written(**id));
        let mut out = if rest.is_empty() {
            Vec::new()
        } else {
            self.reader.mv_get_many(&rest)?
        };
        if !written.is_empty() {
            out.extend(self.call(move |t| t.mv_get_many(&written))?);
        }
        Ok(out)
    }

    fn mv_find(&mut self, object_type: &str, attr: &str, value: &Value) -> StoreResult<Vec<MvId>> {
        if self
            .mv_maybe(object_type, attr, std::slice::from_ref(value))?
            .is_some_and(|m| m.is_empty())
        {
            return Ok(Vec::new());
        }
        if !self.mv_search_touched(object_type, attr, std::slice::from_ref(value)) {
            let found = self.reader.mv_find(object_type, attr, value)?;
            if !found.iter().any(|id| self.touched.mv_written(*id)) {
                return Ok(found);
            }
        }
        let (object_type, attr, value) = (object_type.to_owned(), attr.to_owned(), value.clone());
        self.call(move |t| t.mv_find(&object_type, &attr, &value))
    }

    fn mv_find_many(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        // Only the values the fresh knowledge may hold are looked up.
        match self.mv_maybe(object_type, attr, values)? {
            Some(maybe) if maybe.is_empty() => return Ok(Vec::new()),
            Some(maybe) if maybe.len() < values.len() => {
                let subset: Vec<Value> = maybe
                    .iter()
                    .filter_map(|&i| values.get(i).cloned())
                    .collect();
                let found = self.mv_find_many_all(object_type, attr, &subset)?;
                return Ok(found
                    .into_iter()
                    .filter_map(|(i, id)| maybe.get(i).map(|&orig| (orig, id)))
                    .collect());
            }
            _ => {}
        }
        self.mv_find_many_all(object_type, attr, values)
    }

    fn mv_page(
        &mut self,
        query: &MvQuery,
        after: MvId,
        limit: usize,
    ) -> StoreResult<Vec<MvObject>> {
        if !self.wrote {
            return self.reader.mv_page(query, after, limit);
        }
        let query = query.clone();
        self.call(move |t| t.mv_page(&query, after, limit))
    }

    fn mv_count(&mut self, object_type: Option<&str>) -> StoreResult<u64> {
        if !self.wrote {
            return self.reader.mv_count(object_type);
        }
        let object_type = object_type.map(str::to_owned);
        self.call(move |t| t.mv_count(object_type.as_deref()))
    }

    fn watermark(&mut self, ma: &str) -> StoreResult<Option<String>> {
        if !self.wrote {
            return self.reader.watermark(ma);
        }
        let ma = ma.to_owned();
        self.call(move |t| t.watermark(&ma))
    }

    fn run_get(&mut self, id: RunId) -> StoreResult<Option<RunRecord>> {
        if !self.wrote {
            return self.reader.run_get(id);
        }
        self.call(move |t| t.run_get(id))
    }

    fn runs(&mut self, ma: Option<&str>, limit: usize) -> StoreResult<Vec<RunRecord>> {
        if !self.wrote {
            return self.reader.runs(ma, limit);
        }
        let ma = ma.map(str::to_owned);
        self.call(move |t| t.runs(ma.as_deref(), limit))
    }

    fn run_errors(&mut self, run_id: RunId, limit: usize) -> StoreResult<Vec<RunObjectError>> {
        if !self.wrote {
            return self.reader.run_errors(run_id, limit);
        }
        self.call(move |t| t.run_errors(run_id, limit))
    }

    fn meta(&mut self, key: &str) -> StoreResult<Option<String>> {
        if !self.wrote {
            return self.reader.meta(key);
        }
        let key = key.to_owned();
        self.call(move |t| t.meta(&key))
    }
}

impl StoreTxn for BulkTxn<'_, '_> {
    fn cs_insert(&mut self, obj: &mut CsObject) -> StoreResult<()> {
        obj.id = self.cs_insert_owned(obj.clone())?;
        Ok(())
    }

    fn cs_insert_owned(&mut self, mut obj: CsObject) -> StoreResult<CsId> {
        let key = cs_key(&obj.ma, &obj.anchor);
        let exists = if self.touched.cs_keys.contains(&key) {
            self.cs_by_anchor(&obj.ma, &obj.anchor)?.is_some()
        } else if self.absent.contains(&key) || self.surely_absent(&obj.ma, key)? {
            false
        } else {
            self.cs_by_anchor(&obj.ma, &obj.anchor)?.is_some()
        };
        // Like a plain transaction, an insert uses up its id even when it
        // fails.
        let id = self.next_cs;
        self.next_cs += 1;
        if exists {
            return Err(error::other(
                StoreErrorKind::Invalid,
                self.path,
                format!(
                    "connector-space object {}/{} already exists",
                    obj.ma, obj.anchor
                ),
            ));
        }
        obj.id = id;
        self.note_cs_written(&obj, key);
        let ma = self.name(&obj.ma)?;
        let row = OwnedRow::of(&mut obj, ma, key, &self.dict);
        drop(obj);
        self.push(Write::CsInsert(row))?;
        Ok(id)
    }

    fn cs_update(&mut self, obj: &CsObject) -> StoreResult<()> {
        self.cs_update_owned(obj.clone())
    }

    fn cs_update_owned(&mut self, mut obj: CsObject) -> StoreResult<()> {
        let id = obj.id;
        let known = self.db_known.remove(&id);
        let key = cs_key(&obj.ma, &obj.anchor);
        self.note_cs_written(&obj, key);
        let ma = self.name(&obj.ma)?;
        let row = OwnedRow::of(&mut obj, ma, key, &self.dict);
        drop(obj);
        self.push(Write::CsUpdate(row, known))
    }

    fn cs_delete(&mut self, id: CsId) -> StoreResult<()> {
        self.db_known.remove(&id);
        self.touched.note_cs(id);
        self.push_job(Box::new(move |t| t.cs_delete(id)))
    }

    fn mv_insert(&mut self, obj: &mut MvObject) -> StoreResult<()> {
        obj.id = self.mv_insert_owned(obj.clone())?;
        Ok(())
    }

    fn mv_insert_owned(&mut self, mut obj: MvObject) -> StoreResult<MvId> {
        let id = self.next_mv;
        obj.id = id;
        self.note_mv_written(&obj)?;
        self.next_mv += 1;
        // `note_mv_written` left the object's index keys in `self.keys`.
        let keys = if self.defs.has_type(&obj.object_type) {
            std::mem::take(&mut self.keys)
        } else {
            Vec::new()
        };
        let mut data = Vec::with_capacity(256);
        bin::encode_mv(&mut data, &self.dict, &obj);
        let object_type = self.name(&obj.object_type)?;
        drop(obj);
        self.push(Write::MvInsert {
            id,
            object_type,
            data,
            keys,
        })?;
        Ok(id)
    }

    fn mv_update(&mut self, obj: &MvObject) -> StoreResult<()> {
        self.mv_update_owned(obj.clone())
    }

    fn mv_update_owned(&mut self, obj: MvObject) -> StoreResult<()> {
        self.note_mv_written(&obj)?;
        self.push_job(Box::new(move |t| t.mv_update(&obj)))
    }

    fn mv_delete(&mut self, id: MvId) -> StoreResult<()> {
        self.touched.note_mv(id);
        self.push_job(Box::new(move |t| t.mv_delete(id)))
    }

    fn set_watermark(&mut self, ma: &str, watermark: Option<&str>) -> StoreResult<()> {
        let ma = ma.to_owned();
        let watermark = watermark.map(str::to_owned);
        self.push_job(Box::new(move |t| {
            t.set_watermark(&ma, watermark.as_deref())
        }))
    }

    fn run_insert(&mut self, run: &mut RunRecord) -> StoreResult<()> {
        self.wrote = true;
        let mut copy = run.clone();
        run.id = self.call(move |t| {
            t.run_insert(&mut copy)?;
            Ok(copy.id)
        })?;
        Ok(())
    }

    fn run_update(&mut self, run: &RunRecord) -> StoreResult<()> {
        let run = run.clone();
        self.push_job(Box::new(move |t| t.run_update(&run)))
    }

    fn run_errors_insert(&mut self, errors: &[RunObjectError]) -> StoreResult<()> {
        let errors = errors.to_vec();
        self.push_job(Box::new(move |t| t.run_errors_insert(&errors)))
    }

    fn set_meta(&mut self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let key = key.to_owned();
        let value = value.map(str::to_owned);
        self.push_job(Box::new(move |t| t.set_meta(&key, value.as_deref())))
    }

    /// Queue a commit and the begin of the next part, and go on at once:
    /// the next objects are read and worked out while the writer thread
    /// still writes and commits the last ones. Reads stay exact as before
    /// (what the transaction wrote is remembered across its parts) as long
    /// as no other process commits between two parts: the writer checks
    /// that at the next begin (`PRAGMA data_version`), and if one did, the
    /// part after it fails with a `Conflict` error. Before queueing its own
    /// commit, a part waits for the outcome of the one before it (long done
    /// unless the part is small), so the error always comes while the
    /// caller works on the part that was lost.
    fn commit_so_far(&mut self) -> StoreResult<()> {
        self.confirm_last_commit()?;
        let (cs, mv, version) = (self.next_cs, self.next_mv, self.data_version);
        let (done_tx, done_rx) = sync_channel::<()>(1);
        self.push_job(Box::new(move |t| {
            t.w.ids_taken_below(Seq::Cs, cs);
            t.w.ids_taken_below(Seq::Mv, mv);
            let path = t.path;
            t.w.commit(path)?;
            #[cfg(test)]
            super::tests::between_parts(path);
            t.w.begin(path)?;
            if t.w.data_version(path)? != version {
                return Err(error::other(
                    StoreErrorKind::Conflict,
                    path,
                    "another process wrote to the store between two commits of a bulk transaction; the part after the last commit was rolled back (doing it again is safe)",
                ));
            }
            let _ = done_tx.send(());
            Ok(())
        }))?;
        self.last_commit = Some(done_rx);
        self.flush()?;
        // A new snapshot from the next read on: an old one would keep the
        // checkpoints from copying what the parts committed.
        self.reader.release_snapshot();
        self.reader.hold_snapshot()
    }

    fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.commit_now()
    }
}
