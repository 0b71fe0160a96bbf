//! The store's files: how a new store is made (built whole in a private
//! temporary file beside its path, then linked in place), what is refused
//! before SQLite opens a file (an empty store file, a log without its
//! store), what a killed build left, the file's identity that leases
//! record, and [`StoreFileWatch`]: a running process's watch on the file
//! it opened (deleted, replaced or damaged under it), which can still save
//! what the process holds.

use super::{SqliteOptions, error, open_conn, schema};
use crate::api::StoreResult;
use std::path::{Path, PathBuf};

/// `path` with `suffix` added to its file name (`-wal`, `-shm`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Makes a new store at `path` when no file is there (its folder exists):
/// built whole in a private temporary file beside it, then hard-linked in
/// place, which fails when another process linked its own first (its
/// store is then opened). `true` only where the folder's file system has
/// no hard links: the store file was then created empty in place, for
/// this open to build (another process opening it meanwhile finds it
/// empty and is refused).
///
/// A `-wal` with content where no store file is refuses: the store file
/// was deleted or moved with changes still in its log, and a new store
/// beside that log would take the log's pages for its own.
pub(super) fn create_store(path: &Path, options: &SqliteOptions) -> StoreResult<bool> {
    if std::fs::metadata(path).is_ok() {
        return Ok(false);
    }
    // A dangling symbolic link: the store is made where it points (at
    // most 40 links, as the kernel follows).
    let mut target = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&target) {
                Ok(to) if to.is_relative() => {
                    target = target.parent().map_or(to.clone(), |dir| dir.join(&to));
                }
                Ok(to) => target = to,
                Err(_) => break,
            },
            _ => break,
        }
    }
    let path = target.as_path();
    let wal = sibling(path, "-wal");
    if let Ok(m) = std::fs::metadata(&wal)
        && m.len() > 0
        // Another process may have made the store just now (its log
        // beside it): then it is there.
        && std::fs::metadata(path).is_err()
    {
        return Err(error::other(
            crate::api::StoreErrorKind::Corrupt,
            path,
            format!(
                "cannot create store: there is no store file, but its write-ahead log {} ({} bytes) is there: the store file was deleted or moved with changes still in its log; put it back (or restore it from a backup), or remove {} and {} to start a new store",
                wal.display(),
                m.len(),
                wal.display(),
                sibling(path, "-shm").display()
            ),
        ));
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    remove_stale_builds(path, &name);
    let tmp = path.with_file_name(format!(".{name}.new-{:016x}", rand::random::<u64>()));
    let linked = build_store(&tmp, path, options).and_then(|()| {
        match std::fs::hard_link(&tmp, path) {
            // Linked; or another process linked its store first.
            Ok(()) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => {
                tracing::info!(store = %path.display(), "cannot link the new store in place ({e}): creating it in place");
                create_private(path)
            }
        }
    });
    for file in [sibling(&tmp, "-wal"), sibling(&tmp, "-shm"), tmp] {
        if let Err(e) = std::fs::remove_file(&file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %file.display(), "cannot remove a temporary file of the new store: {e}");
        }
    }
    linked
}

/// Removes what a process killed while building a new store at `path`
/// left beside it (`.NAME.new-<16 hex digits>` and its `-wal`, `-shm`),
/// once it is a minute old: one younger may be another process's build
/// under way.
fn remove_stale_builds(path: &Path, name: &str) {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.new-");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let hex = rest
            .strip_suffix("-wal")
            .or_else(|| rest.strip_suffix("-shm"))
            .unwrap_or(rest);
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let old = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= std::time::Duration::from_secs(60));
        if old && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed what an interrupted creation of the store left");
        }
    }
}

/// Builds a new, empty store in the file `tmp` (named `path` in messages),
/// and closes it: SQLite then writes its log into the file and removes it.
fn build_store(tmp: &Path, path: &Path, options: &SqliteOptions) -> StoreResult<()> {
    if !create_private(tmp)? {
        return Err(error::other(
            crate::api::StoreErrorKind::Io,
            path,
            format!(
                "cannot create store: its temporary file {} exists already",
                tmp.display()
            ),
        ));
    }
    let conn = open_conn(tmp, options, true)?;
    schema::prepare(&conn, path, options, true, true)?;
    conn.close()
        .map_err(|(_, e)| error::sql(path, "create store", e))
}

/// Refuses an existing store file that is empty (0 bytes): autosync never
/// leaves one so (a new store is linked in place whole), so it was
/// truncated or a copy of it failed. Opening it would start an empty store
/// and import everything again as new; SQLite would even delete a `-wal`
/// beside it, so that is refused too (and left as it is).
pub(super) fn refuse_empty(path: &Path) -> StoreResult<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => {}
        _ => return Ok(()),
    }
    let log = match std::fs::metadata(sibling(path, "-wal")) {
        Ok(m) if m.len() > 0 => format!(
            "; its write-ahead log {} ({} bytes) is left as it is: SQLite cannot rebuild a store from its log alone",
            sibling(path, "-wal").display(),
            m.len()
        ),
        _ => String::new(),
    };
    Err(error::other(
        crate::api::StoreErrorKind::Corrupt,
        path,
        format!(
            "cannot open store: the file is empty (0 bytes), which autosync never leaves a store: it was truncated (a disk incident) or a copy of it failed{log}; restore it from a backup, or remove it to start a new store (every object is then imported again as new)"
        ),
    ))
}

/// The identity (device, inode, and a hash of the path) of the file at
/// `path`; `None` where it cannot be read or there is none (not unix).
pub(super) fn file_identity(path: &Path) -> Option<crate::lease::StoreFile> {
    #[cfg(unix)]
    {
        use std::hash::{Hash as _, Hasher as _};
        use std::os::unix::fs::MetadataExt as _;
        let at = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut h = rustc_hash::FxHasher::default();
        at.hash(&mut h);
        std::fs::metadata(path)
            .ok()
            .map(|m| crate::lease::StoreFile {
                dev: m.dev(),
                ino: m.ino(),
                path: h.finish().max(1),
            })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Creates a missing file empty, readable and writable by its owner only
/// (0600), before SQLite opens it: a store holds identities. SQLite gives
/// the `-wal` and `-shm` files it creates the database file's mode, so they
/// are 0600 too. An existing file keeps its mode (an administrator may have
/// chosen a group), and so do its `-wal` and `-shm`. `true` when it created
/// the file.
fn create_private(path: &Path) -> StoreResult<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
                crate::api::StoreErrorKind::ReadOnly
            } else {
                crate::api::StoreErrorKind::Io
            };
            Err(crate::api::StoreError::new(
                kind,
                format!(
                    "cannot create store {}: {e} (check the permissions of its folder)",
                    path.display()
                ),
            ))
        }
    }
}

/// What the path of an open store names now, as a [`StoreFileWatch`] sees
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    /// The file the store opened, whole as far as was looked.
    Same,
    /// No file at the path: the store file was deleted or moved away.
    Missing,
    /// Another file at the path (another device or inode): the store file
    /// was replaced (a backup moved over it).
    Replaced,
    /// The file is damaged: what was seen (truncated, what `quick_check`
    /// or SQLite said).
    Damaged(String),
}

/// Where [`StoreFileWatch::save_copy`] saved the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedCopy {
    /// The copy.
    pub at: PathBuf,
    /// It is at the store's path (which was free): the next open uses it.
    pub in_place: bool,
}

/// A watch on the file an open store uses, for a process that must learn
/// when the store's path no longer names it: deleted, moved away, replaced
/// by another file, or damaged in place. SQLite goes on writing into a
/// file deleted or moved under it, which nobody will open again, and
/// leaves its `-wal` beside the path, where it would be applied to
/// whatever file is put there.
///
/// It holds a connection of its own to the file, opened while the path
/// still named it: that connection still reads the store (the file and
/// its log, by the descriptors it holds) after the path changed, so
/// [`StoreFileWatch::save_copy`] can save what the process holds. The
/// store file is never opened otherwise (closing any other descriptor of
/// it would drop the locks SQLite holds on it).
pub struct StoreFileWatch {
    path: PathBuf,
    file: crate::lease::StoreFile,
    /// Its `-wal` and `-shm` files and their identities when opened: they
    /// are this store's for as long as it is open.
    wal: Option<(PathBuf, crate::lease::StoreFile)>,
    shm: Option<(PathBuf, crate::lease::StoreFile)>,
    conn: std::sync::Mutex<rusqlite::Connection>,
}

impl std::fmt::Debug for StoreFileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreFileWatch")
            .field("path", &self.path)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Device and inode alike (the hash of the path aside).
fn same_file(a: &crate::lease::StoreFile, b: &crate::lease::StoreFile) -> bool {
    a.dev == b.dev && a.ino == b.ino
}

/// Below this a file is no SQLite database (the smallest page).
const SMALLEST_STORE: u64 = 512;

impl StoreFileWatch {
    /// Watches the store file `file` (a store's [`crate::Store::store_file`])
    /// at `path`: `None` when `path` does not name that file now.
    pub fn open(path: &Path, file: crate::lease::StoreFile) -> StoreResult<Option<StoreFileWatch>> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if !file_identity(&path).is_some_and(|now| same_file(&now, &file)) {
            return Ok(None);
        }
        let options = SqliteOptions {
            cache_kib: 2 * 1024,
            reader_cache_kib: 2 * 1024,
            ..SqliteOptions::default()
        };
        let conn = open_conn(&path, &options, false)?;
        // One read opens the log and its index, kept open from now on.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| error::sql(&path, "read store", e))?;
        // Opened on another file than the store's (replaced meanwhile):
        // no watch rather than a wrong one.
        if !file_identity(&path).is_some_and(|now| same_file(&now, &file)) {
            return Ok(None);
        }
        let log = |suffix| {
            let log = sibling(&path, suffix);
            file_identity(&log).map(|id| (log, id))
        };
        Ok(Some(StoreFileWatch {
            wal: log("-wal"),
            shm: log("-shm"),
            path,
            file,
            conn: std::sync::Mutex::new(conn),
        }))
    }

    /// Whether a store error's message may tell of a damaged file or a
    /// failing disk (SQLite's words for those errors): worth a
    /// [`StoreFileWatch::check`], which reads the whole store.
    pub fn may_tell_of_damage(message: &str) -> bool {
        ["malformed", "not a database", "I/O error"]
            .iter()
            .any(|w| message.contains(w))
    }

    /// The store file's path (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the path names now, from its metadata alone (cheap: one
    /// `stat`): the file, none, another, or a file too short to be a
    /// store (truncated).
    pub fn look(&self) -> FileState {
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileState::Missing,
            // Unknown (permissions, a file system gone): nothing seen.
            Err(_) => FileState::Same,
            Ok(m) => match file_identity(&self.path) {
                Some(now) if !same_file(&now, &self.file) => FileState::Replaced,
                _ if m.len() < SMALLEST_STORE => {
                    FileState::Damaged(format!("it was truncated to {} bytes", m.len()))
                }
                _ => FileState::Same,
            },
        }
    }

    /// [`StoreFileWatch::look`], then, when the path names the file, a
    /// read of the whole store (`PRAGMA quick_check`, through the watch's
    /// own connection, its cache dropped first): damaged when it finds a
    /// problem or fails as a damaged file or a failing disk fails. It
    /// reads every page: for when a store error was seen, not on a timer.
    pub fn check(&self) -> FileState {
        let looked = self.look();
        if looked != FileState::Same {
            return looked;
        }
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let problems = conn.execute_batch("PRAGMA shrink_memory").and_then(|()| {
            let mut stmt = conn.prepare("PRAGMA quick_check(3)")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        });
        match problems {
            Ok(p) if p.len() == 1 && p[0] == "ok" => FileState::Same,
            Ok(p) => FileState::Damaged(
                p.iter()
                    .flat_map(|r| r.lines())
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with("***"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(e) if damaged_by(&e, &self.path) => {
                let detail = match &e {
                    rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
                    other => other.to_string(),
                };
                FileState::Damaged(detail)
            }
            // Busy, a full disk, ...: not the file's fault.
            Err(_) => FileState::Same,
        }
    }

    /// Saves a copy of the store as this process sees it (`VACUUM INTO`,
    /// through the watch's connection: a deleted or replaced file is still
    /// read whole, its log included), made private (0600) and synced.
    /// Never overwrites a file: when the store's path is free (the file
    /// was deleted or moved away), the copy is linked there, so that the
    /// next open simply uses it; otherwise (another file was put there) it
    /// stays beside it as `<store>.recovered-<at>`. Either way this
    /// store's own `-wal` and `-shm`, still beside the path, are removed:
    /// SQLite would apply that log to the file at the path (it keeps it
    /// when the file it belongs to has moved). For a store that is done
    /// with: call it after the last write that must be in the copy.
    pub fn save_copy(&self, at: chrono::DateTime<chrono::Utc>) -> StoreResult<SavedCopy> {
        let stamp = at.format("%Y%m%dT%H%M%SZ").to_string();
        let failed = |e: std::io::Error, what: &str, file: &Path| {
            crate::api::StoreError::new(
                crate::api::StoreErrorKind::Io,
                format!(
                    "cannot save a copy of store {}: cannot {what} {}: {e}",
                    self.path.display(),
                    file.display()
                ),
            )
        };
        // A name no file has, made empty and private for `VACUUM INTO`.
        let mut copy = sibling(&self.path, &format!(".recovered-{stamp}"));
        let mut n = 1;
        while !create_private(&copy)? {
            n += 1;
            if n > 100 {
                return Err(failed(
                    std::io::ErrorKind::AlreadyExists.into(),
                    "find a free name for",
                    &copy,
                ));
            }
            copy = sibling(&self.path, &format!(".recovered-{stamp}-{n}"));
        }
        let Some(name) = copy.to_str() else {
            let _ = std::fs::remove_file(&copy);
            return Err(failed(
                std::io::ErrorKind::InvalidInput.into(),
                "name (not UTF-8)",
                &copy,
            ));
        };
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = conn.execute("VACUUM INTO ?1", [name]) {
            let _ = std::fs::remove_file(&copy);
            return Err(error::sql(&self.path, "save a copy of store", e));
        }
        drop(conn);
        std::fs::File::open(&copy)
            .and_then(|f| f.sync_all())
            .map_err(|e| failed(e, "sync", &copy))?;
        // This store's log, beside the path, is made inert first (its
        // header zeroed: a log whose header does not check is ignored),
        // then removed with its index once the copy is linked: a crash in
        // between leaves no log that would be applied to the copy, and
        // never a free path without a log (where the next open would start
        // an empty store; it refuses there, and the copy is kept).
        self.disarm_log();
        let in_place = matches!(
            std::fs::symlink_metadata(&self.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        ) && std::fs::hard_link(&copy, &self.path).is_ok();
        for (log, id) in self.wal.iter().chain(&self.shm) {
            if file_identity(log).is_some_and(|now| same_file(&now, id))
                && let Err(e) = std::fs::remove_file(log)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %log.display(), "cannot remove what is left of the store file that was there: {e}");
            }
        }
        let at = if in_place {
            if let Err(e) = std::fs::remove_file(&copy) {
                tracing::warn!(file = %copy.display(), "cannot remove the second name of the saved store: {e}");
            }
            self.path.clone()
        } else {
            copy
        };
        if let Some(dir) = at.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(SavedCopy { at, in_place })
    }
}

impl StoreFileWatch {
    /// Zeroes the header of this store's `-wal` beside the path (when it
    /// is still this store's): SQLite then ignores it, whatever file it
    /// finds at the path. Its own connections never read that header
    /// again (they hold the log's index in memory).
    fn disarm_log(&self) {
        use std::io::Write as _;
        let Some((log, id)) = &self.wal else {
            return;
        };
        let zeroed = std::fs::OpenOptions::new()
            .write(true)
            .open(log)
            .and_then(|mut f| {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt as _;
                    let m = f.metadata()?;
                    if m.dev() != id.dev || m.ino() != id.ino {
                        return Ok(());
                    }
                }
                f.write_all(&[0u8; WAL_HEADER])?;
                f.sync_all()
            });
        match zeroed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %log.display(), "cannot disarm the log of the store file that was there: {e}")
            }
        }
    }
}

/// The size of a WAL file's header.
const WAL_HEADER: usize = 32;

/// Whether `e` says the store's file is damaged or its disk fails: not a
/// database, malformed, an I/O error that is not a full disk.
fn damaged_by(e: &rusqlite::Error, path: &Path) -> bool {
    use crate::api::StoreErrorKind as K;
    match error::kind_of(e, path) {
        K::Corrupt => true,
        K::Io => e.sqlite_error_code() == Some(rusqlite::ErrorCode::SystemIoFailure),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::SqliteStore;
    use super::*;
    use crate::api::Store as _;

    fn read_all(store: &SqliteStore, n: usize) -> StoreResult<()> {
        let mut r = store.read()?;
        for i in 0..n {
            r.meta(&format!("k{i}"))?;
        }
        Ok(())
    }

    /// Mapped (`mmap_bytes` > 0), the next read of the store after its
    /// file was truncated kills the process with SIGBUS.
    #[test]
    fn a_store_truncated_under_its_process_should_not_kill_it_and_its_watch_should_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let n = 300;
        {
            let store = SqliteStore::open(&path).unwrap();
            let mut txn = store.begin().unwrap();
            for i in 0..n {
                txn.set_meta(&format!("k{i}"), Some(&"x".repeat(1024)))
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let watch = StoreFileWatch::open(&path, store.store_file().unwrap())
            .unwrap()
            .unwrap();
        // A commit (the log now says how long the store is, whatever the
        // file's length), then reads (which map the file).
        let mut txn = store.begin().unwrap();
        txn.set_meta("k0", Some("y")).unwrap();
        txn.commit().unwrap();
        read_all(&store, n).unwrap();
        assert_eq!(watch.look(), FileState::Same);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        // Served from the page cache or failing: either way, alive.
        let _ = read_all(&store, n);
        assert_eq!(
            watch.look(),
            FileState::Damaged("it was truncated to 0 bytes".into())
        );
    }
}
