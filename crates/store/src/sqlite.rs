//! The embedded store: one SQLite file in WAL mode.
//!
//! One writer connection sits behind a mutex: [`Store::begin`] takes it and
//! runs `BEGIN IMMEDIATE`, and the transaction holds it until `commit` (or
//! rolls back when dropped). Reads go through a small pool of reader
//! connections, which WAL lets run while a write transaction is open; each
//! read call sees the data committed when it starts. Every query is a cached
//! prepared statement; connector-space and metaverse objects are compact
//! binary bodies (see `bin`; runs and their errors stay JSON), with the
//! columns filters use (MV connection, pending import/export, unconfirmed
//! export, error) beside them so that every filter is an index lookup.
//!
//! Schema and versions (see `schema`, whose `SCHEMA_VERSION` says what each
//! version changed): version 7; a version-2 to -6 store is migrated in
//! place when opened, version 1 (JSON bodies) is refused with a clear
//! error, and bodies of the older format `0xB1` are still read.
//!
//! Durability (see `schema`): WAL with `synchronous=NORMAL` keeps every
//! committed transaction across a crash of the process; a power loss may
//! lose the last few commits, never part of one. A store that is damaged,
//! unreadable, read-only or written by a newer autosync makes
//! [`SqliteStore::open`] fail: the store never silently starts empty. So
//! does a store file that exists but is empty (0 bytes: truncated by a
//! disk incident, or a copy that failed), with or without a `-wal` beside
//! it (SQLite would delete that log and start an empty store).
//!
//! A new store is built whole in a private temporary file beside its path
//! (mode 0600: its `-wal` and `-shm` follow it, SQLite gives them the
//! database file's mode), then linked in place: the path never holds a
//! half-made store, and of processes creating it at once one wins and the
//! others open its store. New stores use 8 KiB pages
//! ([`SqliteOptions::page_size`]). [`SqliteStore::open_existing`] opens a
//! store only if it exists, creating nothing (commands that only read).
//!
//! One process at a time should write a store: the metaverse index
//! definitions and the value rows declared are cached in memory (another
//! process would see `Busy` while a write transaction is open anyway).
//!
//! Where the speed of a large synchronisation comes from, each told in
//! its module:
//! - `bulk`: [`Store::write_bulk`] runs a transaction's writes on a second
//!   thread while the caller computes the next ones; reads that touch
//!   nothing it wrote go to a reader connection (one read snapshot per
//!   part), the others wait for the queue and run on the writer;
//!   `commit_so_far` commits a part without waiting, and another process's
//!   commit between two parts fails the part after it with `Conflict`.
//!   The frequent writes travel to the writer thread as plain data, with
//!   MA names and object types sent once per transaction, then by number.
//! - `hot`: a run of frequent writes shares its prepared statements.
//! - `fresh`: the writer connection remembers, across bulk transactions,
//!   the anchors an MA it filled from empty may hold and the texts of each
//!   join-index key it filled from empty (hashes, valid while
//!   `PRAGMA data_version` is unchanged; `set_mv_index` drops them), so an
//!   initial provisioning or sync need not ask SQLite for each new object.
//! - `bin` and `names`: binary bodies, whose names are numbers of the
//!   store's append-only name dictionary ([`Store::declare_names`], format
//!   `0xB2`, bodies about a third smaller); a reader that meets a number
//!   its copy lacks reads the dictionary again.
//! - `mvindex`: the join index (table `mv_key`), one text per value of
//!   each declared index, strings folded to lower case (`fold_case`,
//!   `join_texts`: joins ignore case) and lookups folded the same way, so a
//!   join is one index probe. An index is an MV attribute or a key the
//!   engine derives (`MvKeyDerive`: a join condition's `mv_expr`), computed
//!   by the store whenever it writes an object of that type.
//! - `rows`: value rows. The multi-valued attributes declared with
//!   [`Store::set_value_rows`] (a group's members) keep one row per value
//!   (`cs_val`, `mv_val`) behind a marker in the body, so that a
//!   one-member change of a large group writes one row
//!   (`StoreTxn::cs_values_change`), light reads (`cs_get_light`, ...)
//!   skip the rows, and `mv_find` of such an attribute is one index probe
//!   of `mv_val_value`; objects without a marker read as before.
//! - `read`: long pages (`cs_page`, `cs_by_anchors`, `mv_get_many`) copy
//!   their rows into one buffer, then decode them on the caller's thread
//!   (`codec::RawRows`).

mod bin;
mod bulk;
mod codec;
mod dnindex;
mod error;
mod files;
mod fresh;
mod hot;
mod mvindex;
mod names;
mod read;
mod rows;
mod schema;
mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dn;
#[cfg(test)]
mod tests_history;

use crate::api::{Store, StoreRead, StoreResult, StoreTxn};
use autosync_model::RunRecord;
use files::{create_store, file_identity, refuse_empty, sibling};
use mvindex::IndexDefs;
use names::{NameCache, Names};
use read::{Ctx, impl_store_read};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use write::{SqliteTxn, Writer};

pub use files::{FileState, SavedCopy, StoreFileWatch};
pub use schema::SCHEMA_VERSION;

/// Tuning of a [`SqliteStore`]. The defaults suit a store of a few million
/// objects on a small machine.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Page cache of the writer connection, in KiB (default 64 MiB).
    pub cache_kib: u64,
    /// Page cache of each reader connection, in KiB (default 16 MiB).
    pub reader_cache_kib: u64,
    /// How much of the file SQLite maps into memory (default 0: none, every
    /// page is read with `pread` into the page cache). A mapped store file
    /// that is truncated under the process (`: > autosync.db`, a disk
    /// incident) kills it with SIGBUS at the next read of a page past the
    /// new end, with nothing logged and nothing saved; unmapped, that read
    /// fails with an I/O or "malformed" error that the service reports and
    /// stops on. The page caches (`cache_kib`, `reader_cache_kib`) keep the
    /// hot pages in memory either way. Set it only for a store no one can
    /// truncate (a benchmark: `STORE_MMAP` in `examples/store_ops.rs`).
    pub mmap_bytes: u64,
    /// Page size of a new store, in bytes (default 8192: a commit writes
    /// each dirty page to the WAL with two system calls, and a synchronised
    /// person dirties about as many pages of 8 KiB as of 4 KiB; full sync
    /// +9 % at 200k objects, +3 % at 1M against 4096). An existing store
    /// keeps the page size it was made with.
    pub page_size: u32,
    /// Pages in the WAL after a commit that start a checkpoint (default
    /// 8192, 64 MiB with 8 KiB pages: fewer checkpoints rewrite hot pages
    /// less). The checkpoint runs on a background thread with its own
    /// connection, off the writer's path; when the WAL reaches four times
    /// this size anyway, the committing writer checkpoints itself.
    pub wal_autocheckpoint_pages: u32,
    /// How long to wait for another process's lock before failing with
    /// `Busy` (default 10 s).
    pub busy_timeout: Duration,
    /// Reader connections opened with the store and reused by reads
    /// (default 4; a read when all are busy opens a short-lived one).
    pub readers: usize,
    /// Run `PRAGMA quick_check` when opening (default true).
    pub quick_check: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            cache_kib: 64 * 1024,
            reader_cache_kib: 16 * 1024,
            mmap_bytes: 0,
            page_size: 8192,
            wal_autocheckpoint_pages: 8192,
            busy_timeout: Duration::from_secs(10),
            readers: 4,
            quick_check: true,
        }
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Writer>,
    readers: Vec<Mutex<Connection>>,
    /// The metaverse index definitions readers use (the writer has its own
    /// copy, changed under its lock by `set_mv_index`).
    defs: RwLock<Arc<IndexDefs>>,
    /// The name dictionary every connection decodes and encodes with.
    names: Arc<NameCache>,
    /// The store file's identity when it was opened (leases record it).
    file: Option<crate::lease::StoreFile>,
    /// The background checkpoint thread (declared last: dropped after the
    /// writer, which holds its wake-up sender).
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Dropping the writer's sender ends the thread.
        self.writer().ckpt = None;
        if let Some(h) = self.checkpointer.take()
            && h.join().is_err()
        {
            tracing::warn!(store = %self.path.display(), "the checkpoint thread failed");
        }
    }
}

/// Start the thread that checkpoints the WAL when the writer asks (one
/// request at a time; requests while it works are merged).
fn start_checkpointer(
    path: &Path,
    options: &SqliteOptions,
) -> StoreResult<(std::sync::mpsc::SyncSender<()>, std::thread::JoinHandle<()>)> {
    let conn = open_conn(path, options, false)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let shown = path.display().to_string();
    let handle = std::thread::Builder::new()
        .name("autosync-store-checkpoint".into())
        .spawn(move || {
            for () in rx {
                if let Err(e) = write::checkpoint(&conn) {
                    tracing::warn!(store = %shown, error = %e, "WAL checkpoint failed");
                }
            }
        })
        .map_err(|e| {
            crate::api::StoreError::new(
                crate::api::StoreErrorKind::Io,
                format!(
                    "cannot open store {}: cannot start the checkpoint thread: {e}",
                    path.display()
                ),
            )
        })?;
    Ok((tx, handle))
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open the store at `path`, creating the file (and its folder) when
    /// missing, with the default [`SqliteOptions`]. An existing file that
    /// is empty (0 bytes) is refused ([`StoreErrorKind::Corrupt`]): it is
    /// not a new store.
    ///
    /// [`StoreErrorKind::Corrupt`]: crate::api::StoreErrorKind::Corrupt
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Open the store at `path` with the given tuning.
    pub fn open_with(path: &Path, options: SqliteOptions) -> StoreResult<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
                crate::api::StoreErrorKind::ReadOnly
            } else {
                crate::api::StoreErrorKind::Io
            };
            return Err(crate::api::StoreError::new(
                kind,
                format!(
                    "cannot open store {}: cannot create folder {}: {e}",
                    path.display(),
                    dir.display()
                ),
            ));
        }
        let new = create_store(path, &options)?;
        Self::open_file(path, options, new, true)
    }

    /// Open the store at `path` only if its file exists: `Ok(None)` when
    /// it does not, and then nothing is created (neither the file nor its
    /// folder). It is never built nor migrated either: a store of another
    /// schema version is refused (commands that only read). With the
    /// default [`SqliteOptions`].
    pub fn open_existing(path: &Path) -> StoreResult<Option<SqliteStore>> {
        Self::open_existing_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open_existing`] with the given tuning.
    pub fn open_existing_with(
        path: &Path,
        options: SqliteOptions,
    ) -> StoreResult<Option<SqliteStore>> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // No store file, but its log: the store was deleted or
                // moved with changes in its log; not "nothing has run".
                let wal = sibling(path, "-wal");
                match std::fs::metadata(&wal) {
                    Ok(m) if m.len() > 0 => Err(error::other(
                        crate::api::StoreErrorKind::Corrupt,
                        path,
                        format!(
                            "cannot read store: there is no store file, but its write-ahead log {} ({} bytes) is there: the store file was deleted or moved with changes still in its log; put it back (or restore it from a backup)",
                            wal.display(),
                            m.len()
                        ),
                    )),
                    _ => Ok(None),
                }
            }
            _ => Self::open_file(path, options, false, false).map(Some),
        }
    }

    /// Open the store file at `path`, which exists (SQLite is never asked
    /// to create it). `new`: created just now, empty, by this open.
    /// `may_change`: it may be migrated (`false` for commands that only
    /// read: a store of another version is refused).
    fn open_file(
        path: &Path,
        options: SqliteOptions,
        new: bool,
        may_change: bool,
    ) -> StoreResult<SqliteStore> {
        if !new {
            refuse_empty(path)?;
        }
        let conn = open_conn(path, &options, true)?;
        schema::prepare(&conn, path, &options, new, may_change)?;
        let file = file_identity(path);
        let rows = Arc::new(rows::RowDecl::load(&conn, path)?);
        let defs = IndexDefs::load(&conn, path)?.with_rows(rows);
        let names = Arc::new(NameCache::new(Names::load(&conn, path)?));
        let readers = (0..options.readers)
            .map(|_| open_conn(path, &options, false).map(Mutex::new))
            .collect::<StoreResult<Vec<_>>>()?;
        let (ckpt, checkpointer) = start_checkpointer(path, &options)?;
        let mut writer = Writer::new(conn, defs, Arc::clone(&names));
        writer.watch_wal(ckpt, options.wal_autocheckpoint_pages);
        tracing::info!(store = %path.display(), "store opened");
        Ok(SqliteStore {
            path: path.to_path_buf(),
            defs: RwLock::new(Arc::new(writer.defs.clone())),
            writer: Mutex::new(writer),
            names,
            readers,
            options,
            file,
            checkpointer: Some(checkpointer),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn defs(&self) -> Arc<IndexDefs> {
        Arc::clone(&self.defs.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn reader(&self) -> StoreResult<SqliteRead<'_>> {
        let pooled = self.readers.iter().find_map(|slot| match slot.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        });
        let conn = match pooled {
            Some(guard) => ReaderConn::Pooled(guard),
            None => ReaderConn::Owned(open_conn(&self.path, &self.options, false)?),
        };
        Ok(SqliteRead {
            path: &self.path,
            conn,
            defs: self.defs(),
            names: &self.names,
        })
    }
}

/// Run `f` in a write transaction of the writer connection and commit it;
/// roll back when `f` or the commit fails.
fn in_txn<T>(
    w: &mut Writer,
    path: &Path,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    w.begin(path)?;
    let out = f(&w.conn).and_then(|out| w.commit(path).map(|()| out));
    if out.is_err() {
        w.reset(path);
    }
    out
}

/// Open one connection to the existing file `path` (SQLite never creates
/// it: a file removed meanwhile fails to open) and refuse a read-only file.
fn open_conn(path: &Path, options: &SqliteOptions, writer: bool) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| error::sql(path, "open store", e))?;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(error::other(
            crate::api::StoreErrorKind::ReadOnly,
            path,
            "cannot open store: the file is read-only (check the permissions of the store file and of its folder)",
        ));
    }
    schema::configure(&conn, path, options, writer)?;
    Ok(conn)
}

/// A reader connection: one of the store's, or a short-lived extra one
/// when all are busy.
enum ReaderConn<'s> {
    Pooled(MutexGuard<'s, Connection>),
    Owned(Connection),
}

/// A read view over one reader connection.
struct SqliteRead<'s> {
    path: &'s Path,
    conn: ReaderConn<'s>,
    defs: Arc<IndexDefs>,
    names: &'s NameCache,
}

impl SqliteRead<'_> {
    fn conn(&self) -> &Connection {
        match &self.conn {
            ReaderConn::Pooled(g) => g,
            ReaderConn::Owned(c) => c,
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            conn: self.conn(),
            path: self.path,
            defs: &self.defs,
            names: self.names,
        }
    }

    /// Read every later query from one snapshot (a read transaction, taken
    /// at the first query and ended when the reader is dropped): each
    /// query then skips the locking and checks of a snapshot of its own.
    /// Only for callers that know nothing commits in between, or want the
    /// snapshot: a bulk transaction, which holds the write lock.
    fn hold_snapshot(&self) -> StoreResult<()> {
        self.conn()
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| error::sql(self.path, "begin a read transaction in store", e))?;
        Ok(())
    }

    /// End the snapshot [`SqliteRead::hold_snapshot`] took (if any): a
    /// reader on an old snapshot keeps a checkpoint from copying, and the
    /// WAL from starting over, past that snapshot.
    fn release_snapshot(&self) {
        let conn = self.conn();
        if !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(store = %self.path.display(), error = %e, "ending a read transaction failed");
        }
    }
}

impl Drop for SqliteRead<'_> {
    /// A reader goes back to the pool without a read transaction.
    fn drop(&mut self) {
        self.release_snapshot();
    }
}

impl SqliteRead<'_> {
    #[inline]
    fn note_cs(&mut self, _: &[autosync_model::CsObject]) {}
}

impl_store_read!(SqliteRead<'_>);

impl Store for SqliteStore {
    fn read(&self) -> StoreResult<Box<dyn StoreRead + '_>> {
        Ok(Box::new(self.reader()?))
    }

    fn store_file(&self) -> Option<crate::lease::StoreFile> {
        self.file
    }

    fn begin(&self) -> StoreResult<Box<dyn StoreTxn + '_>> {
        let mut w = self.writer();
        w.begin(&self.path)?;
        Ok(Box::new(SqliteTxn {
            w: write::WriterRef::Guard(w),
            path: &self.path,
        }))
    }

    fn write_bulk(
        &self,
        work: &mut dyn FnMut(&mut dyn StoreTxn) -> StoreResult<()>,
    ) -> StoreResult<()> {
        bulk::run(self, work)
    }

    fn set_mv_index(&self, indexed: &[crate::api::MvIndexDef]) -> StoreResult<()> {
        let mut w = self.writer();
        // Building the keys of a new pair fills its index behind the fresh
        // knowledge's back.
        w.fresh = None;
        let rows = Arc::clone(&w.defs.rows);
        let defs = in_txn(&mut w, &self.path, |conn| {
            mvindex::set_index(conn, &self.path, &self.names, indexed, &rows)
        })?;
        *self.defs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(defs.clone());
        w.defs = defs;
        Ok(())
    }

    fn set_value_rows(&self, rows: &crate::api::ValueRows) -> StoreResult<()> {
        // Nothing to write when it is declared so (the usual case).
        if self.defs().rows.declares(rows) {
            return Ok(());
        }
        let mut w = self.writer();
        w.fresh = None;
        w.begin(&self.path)?;
        let old = w.defs.clone();
        let mut txn = SqliteTxn {
            w: write::WriterRef::Guard(w),
            path: &self.path,
        };
        let path = self.path.as_path();
        let res = txn
            .declare_rows(&self.names, rows)
            .and_then(|()| txn.w.commit(path));
        if let Err(e) = res {
            // Dropping the transaction rolls it back.
            txn.w.defs = old;
            return Err(e);
        }
        *self.defs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(txn.w.defs.clone());
        Ok(())
    }

    fn set_dn_index(&self, mas: &[&str]) -> StoreResult<()> {
        let mut wanted: Vec<&str> = mas.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        // Nothing to write when the index is as wanted (the usual case).
        {
            let r = self.reader()?;
            let have: Vec<String> = r.ctx().dn_indexed_mas()?;
            if have.iter().map(String::as_str).eq(wanted.iter().copied()) {
                return Ok(());
            }
        }
        let names = self.names.get();
        let mut w = self.writer();
        w.fresh = None;
        in_txn(&mut w, &self.path, |conn| {
            dnindex::set(conn, &self.path, &names, &wanted)
        })
    }

    fn declare_names(&self, names: &[&str]) -> StoreResult<()> {
        // Nothing to do when every name has its number already (the usual
        // case: the same configuration as last time).
        let have = self.names.get();
        if names.iter().all(|n| have.id(n).is_some()) {
            return Ok(());
        }
        let dict = in_txn(&mut self.writer(), &self.path, |conn| {
            names::declare(conn, &self.path, names)
        })?;
        // Only now, committed, may bodies use the new numbers.
        self.names.committed(dict);
        Ok(())
    }

    fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        self.reader()?.ctx().unfinished_runs()
    }

    fn trim_runs(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
        let cutoff = before.timestamp_millis();
        let n = in_txn(&mut self.writer(), &self.path, |conn| {
            conn.execute(
                "DELETE FROM run_error WHERE run_id IN (SELECT id FROM run WHERE ended_ms < ?1)",
                [cutoff],
            )
            .and_then(|_| {
                conn.execute(
                    "DELETE FROM run_change WHERE run_id IN (SELECT id FROM run WHERE ended_ms < ?1)",
                    [cutoff],
                )
            })
            .and_then(|_| conn.execute("DELETE FROM run WHERE ended_ms < ?1", [cutoff]))
            .map_err(|e| error::sql(&self.path, "trim the run history of store", e))
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
