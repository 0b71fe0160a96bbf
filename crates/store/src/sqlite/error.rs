//! Turning SQLite and JSON failures into [`StoreError`]s whose kind says what
//! went wrong (full disk, read-only file, damaged file, busy, ...) and whose
//! message names the store file and the operation, with a hint at the fix.

use crate::api::{StoreError, StoreErrorKind};
use rusqlite::ErrorCode;
use std::fmt::Display;
use std::path::Path;

/// The kind of a SQLite failure. `path` is the store file, used to tell a
/// read-only file or folder from any other failure to open it.
pub(crate) fn kind_of(e: &rusqlite::Error, path: &Path) -> StoreErrorKind {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreErrorKind::Full,
        Some(ErrorCode::ReadOnly) => StoreErrorKind::ReadOnly,
        Some(ErrorCode::PermissionDenied) => StoreErrorKind::ReadOnly,
        Some(ErrorCode::CannotOpen) if !writable(path) => StoreErrorKind::ReadOnly,
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => StoreErrorKind::Corrupt,
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreErrorKind::Busy,
        Some(ErrorCode::ConstraintViolation) => StoreErrorKind::Invalid,
        // SQLite says "disk I/O error" when the disk is full as it opens
        // the file (its journal or WAL cannot grow).
        Some(ErrorCode::SystemIoFailure) if no_space(path) => StoreErrorKind::Full,
        _ => match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..) => StoreErrorKind::Decode,
            _ => StoreErrorKind::Io,
        },
    }
}

/// Whether the store's folder has no room for a few kilobytes. Only called
/// on the error path.
fn no_space(path: &Path) -> bool {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = dir.join(format!(".autosync-space-probe-{}", std::process::id()));
    let full = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(mut f) => f
            .write_all(&[0u8; 16 * 1024])
            .and_then(|()| f.sync_all())
            .is_err_and(|e| e.kind() == std::io::ErrorKind::StorageFull),
        Err(e) => e.kind() == std::io::ErrorKind::StorageFull,
    };
    let _ = std::fs::remove_file(&probe);
    full
}

/// Whether the store file (when it exists) and its folder can be written.
/// Only called on the error path.
pub(crate) fn writable(path: &Path) -> bool {
    if path.exists() && std::fs::OpenOptions::new().append(true).open(path).is_err() {
        return false;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = dir.join(format!(".autosync-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::AlreadyExists,
    }
}

fn hint(kind: StoreErrorKind, e: &rusqlite::Error) -> &'static str {
    match kind {
        StoreErrorKind::Full => " (free some disk space, then retry)",
        StoreErrorKind::ReadOnly => " (check the permissions of the store file and of its folder)",
        StoreErrorKind::Corrupt if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            " (is it an autosync store?)"
        }
        StoreErrorKind::Corrupt => {
            " (the file is damaged: restore it from a backup or move it away)"
        }
        StoreErrorKind::Busy => " (another process is using the store)",
        _ => "",
    }
}

/// A store error for a failed SQLite call: "cannot {op} {path}: {detail}".
/// `op` ends with the words that lead to the path, e.g. "open store" or
/// "insert connector-space object hr/42 into store".
pub(crate) fn sql(path: &Path, op: impl Display, e: rusqlite::Error) -> StoreError {
    let kind = kind_of(&e, path);
    let detail = match &e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    };
    let hint = hint(kind, &e);
    StoreError::new(
        kind,
        format!("cannot {op} {}: {detail}{hint}", path.display()),
    )
}

/// A store error for a stored record that does not decode.
pub(crate) fn decode(path: &Path, what: impl Display, e: impl Display) -> StoreError {
    StoreError::new(
        StoreErrorKind::Decode,
        format!("cannot decode {what} in store {}: {e}", path.display()),
    )
}

/// A store error of a given kind with a message about this store.
pub(crate) fn other(kind: StoreErrorKind, path: &Path, msg: impl Display) -> StoreError {
    StoreError::new(kind, format!("store {}: {msg}", path.display()))
}
