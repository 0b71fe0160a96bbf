//! A store that cannot be trusted refuses to open, with an error that says
//! what and where: a file that is not a database, a damaged one, a read-only
//! one, one written by a newer autosync, or another program's database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use autosync_store::sqlite::{SCHEMA_VERSION, SqliteStore};
use autosync_store::{Store, StoreErrorKind};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

fn fill(store: &SqliteStore, n: usize) {
    let mut txn = store.begin().unwrap();
    for i in 0..n {
        let mut o = autosync_model::CsObject::new("hr", &format!("a{i}"), "cn=x", "person");
        o.dn = "x".repeat(200);
        txn.cs_insert(&mut o).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_file_that_is_not_a_database_should_fail_to_open_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(&path, "name,mail\nalice,a@x\n".repeat(400)).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Corrupt);
    assert!(
        err.message.contains(&path.display().to_string()),
        "{}",
        err.message
    );
    assert!(err.message.contains("cannot open store"), "{}", err.message);
    assert!(
        err.message.contains("is it an autosync store?"),
        "{}",
        err.message
    );
}

#[test]
fn a_damaged_store_should_fail_to_open_as_corrupt_not_start_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        fill(&store, 3000);
    }
    // The last store has checkpointed and removed its WAL: the data is in
    // the main file. Overwrite pages in the middle with garbage.
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 64 * 4096, "store too small to damage: {len}");
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(&vec![0xA5; 16 * 4096]).unwrap();
    drop(f);
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{}", err.message);
    assert!(
        err.message.contains(&path.display().to_string()),
        "{}",
        err.message
    );
}

#[test]
fn another_programs_database_should_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Corrupt);
    assert!(
        err.message.contains("not an autosync store"),
        "{}",
        err.message
    );
}

#[test]
fn a_store_from_a_newer_autosync_should_be_refused_with_a_version_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Version);
    assert!(err.message.contains("newer autosync"), "{}", err.message);
    assert!(
        err.message
            .contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{}",
        err.message
    );
}

#[test]
fn a_store_of_schema_version_1_with_json_bodies_should_be_refused_with_a_version_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Version);
    assert!(err.message.contains("older autosync"), "{}", err.message);
    assert!(err.message.contains("schema version 1"), "{}", err.message);
    assert!(err.message.contains("full import"), "{}", err.message);
}

/// Make `path` unwritable even for root: permissions first, and when they do
/// not bind (root), the immutable attribute.
fn make_read_only(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    if std::fs::OpenOptions::new().append(true).open(path).is_err() {
        return false;
    }
    let ok = std::process::Command::new("chattr")
        .arg("+i")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cannot make {} read-only: permissions do not bind (root?) and chattr +i failed",
        path.display()
    );
    true
}

#[test]
fn a_read_only_store_file_should_fail_to_open_as_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        fill(&store, 10);
    }
    let immutable = make_read_only(&path);
    let res = SqliteStore::open(&path);
    if immutable {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&path)
            .status();
    }
    let err = res.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::ReadOnly, "{}", err.message);
    assert!(
        err.message.contains(&path.display().to_string()),
        "{}",
        err.message
    );
    assert!(err.message.contains("read-only"), "{}", err.message);
}
