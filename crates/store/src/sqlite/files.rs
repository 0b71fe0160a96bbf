//! The store's files: how a new store is made (built whole in a private
//! temporary file beside its path, then linked in place), what is refused
//! before SQLite opens a file (an empty store file, a log without its
//! store), what a killed build left, and the file's identity that leases
//! record.

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
