//! Targets another process holds or no one may write: an SQLite database
//! locked by another process (the message names the file and says it is
//! locked, whichever statement met the lock, and never "cannot create
//! table" for a table that exists), and a target file or database made
//! read-only (refused as `stopped-server-down`, nothing written, even
//! when the process, as here, runs as root and could write it).
#![cfg(unix)]

use crate::common::{build, person};
use autosync_connector::{ConnectorError, ConnectorErrorKind, ExportChange, ImportStream};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::{ExportKind, Value};
use rusqlite::Connection;
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn add(id: &str, name: &str) -> ExportChange {
    ExportChange {
        values: Default::default(),
        object_type: "person".into(),
        anchor: id.into(),
        dn: id.into(),
        kind: ExportKind::Add,
        changes: [("name".to_owned(), Some(Value::String(name.into())))].into(),
        new_dn: None,
    }
}

/// An error of a step that met a lock another process holds on `path`.
fn assert_locked(e: &ConnectorError, path: &Path, step: &str) {
    let m = &e.message;
    assert_eq!(e.kind, ConnectorErrorKind::Deadlocked, "{m}");
    let said = format!(
        "database file {} is locked by another process",
        path.display()
    );
    assert!(m.contains(&said), "{m}");
    assert!(m.contains("busy"), "{m}");
    assert!(
        m.contains(&format!("the {step} stops and is retried")),
        "{m}"
    );
    assert!(!m.contains("cannot create"), "{m}");
}

/// The error of an import, when it starts or while it reads.
fn read_error(stream: Result<Box<dyn ImportStream + '_>, ConnectorError>) -> ConnectorError {
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => return e,
    };
    loop {
        match stream.next_batch() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the import read everything"),
            Err(e) => return e,
        }
    }
}

/// The reviewer's case: a database another process holds (`BEGIN
/// EXCLUSIVE` in the `sqlite3` shell) while an export of a `create_table`
/// MA opens it, its table (and child table) there. It read "cannot create
/// table `users`: database is locked", naming no file.
#[test]
fn a_database_locked_by_another_process_should_say_so_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let s = json!({"path": "app.db", "table": "users", "create_table": true,
        "columns": ["id", "name"], "busy_timeout_ms": 10,
        "child_tables": {"groups": {"table": "user_groups", "key": "user_id", "value": "grp"}}});
    // A first export makes the tables.
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s.clone());
    let mut session = conn.begin_export().unwrap();
    session.apply(&[add("1", "Ann")]).unwrap();
    drop(session);
    drop(conn);

    let locker = Connection::open(&path).unwrap();
    locker
        .execute_batch("BEGIN EXCLUSIVE; UPDATE users SET name = name WHERE 0;")
        .unwrap();
    for existing in [0, 1] {
        let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s.clone());
        conn.expect_existing(existing);
        let e = conn.begin_export().err().unwrap();
        assert_locked(&e, &path, "export");
        let e = conn.full_import(None).err().unwrap();
        assert_locked(&e, &path, "import");
        let e = conn.look_up(vec!["1".into()]).err().unwrap();
        assert_locked(&e, &path, "import");
    }
    // Locked after the database was opened: the export's transaction.
    locker.execute_batch("ROLLBACK").unwrap();
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let mut session = conn.begin_export().unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = session.apply(&[add("2", "Bo")]).unwrap_err();
    assert_locked(&e, &path, "export");
    locker.execute_batch("ROLLBACK").unwrap();
    session.apply(&[add("2", "Bo")]).unwrap();
    drop(session);
    // And the reads of an import on the database open.
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    assert_locked(&read_error(conn.full_import(None)), &path, "import");
    assert_locked(&read_error(conn.look_up(vec!["1".into()])), &path, "import");
    locker.execute_batch("ROLLBACK").unwrap();
}

/// A target file made read-only (`chmod 444`) was replaced anyway: the
/// export writes aside and renames over it, which only the folder's
/// permission governs (a new inode, still 0444), with no warning. The
/// export now stops `stopped-server-down` (as SQLite's for a read-only
/// database) naming the file, and writes nothing; an export with nothing
/// to write does not mind it.
#[test]
fn a_read_only_target_file_should_stop_the_export_and_be_left_as_it_is() {
    for (file, kept) in [
        ("directory.jsonl", "{\"id\":\"1\",\"name\":\"Ann\"}\n"),
        ("directory.csv", "id,name\n1,Ann\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, kept).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let s = json!({ "path": file });
        let mut conn = match file.ends_with(".csv") {
            true => build(&CsvFactory, dir.path(), vec![person()], s),
            false => build(&JsonlFactory, dir.path(), vec![person()], s),
        };
        let mut session = conn.begin_export().unwrap();
        session.apply(&[add("2", "Bo")]).unwrap();
        let e = session.commit().unwrap_err();
        assert_eq!(
            e.kind,
            ConnectorErrorKind::ServerDown,
            "{file}: {}",
            e.message
        );
        let said = format!("{} is read-only (mode 0444", path.display());
        assert!(e.message.contains(&said), "{file}: {}", e.message);
        assert!(e.message.contains("wrote nothing"), "{}", e.message);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), kept, "{file}");
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "{file}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{file}: no temporary file left");

        // Nothing to write: nothing refused.
        let mut session = conn.begin_export().unwrap();
        session.apply(&[add("1", "Ann")]).unwrap();
        session.commit().unwrap();

        // Writable again (only the owner): written.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut session = conn.begin_export().unwrap();
        session.apply(&[add("2", "Bo")]).unwrap();
        session.commit().unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("Bo"));
    }
}

/// A database file no one may write is refused to root as well, with the
/// status and the words of the file connectors; nothing is written.
#[test]
fn a_read_only_database_should_stop_the_export_even_for_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT);")
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let s = json!({"path": "app.db", "table": "users"});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let mut session = conn.begin_export().unwrap();
    let e = session.apply(&[add("1", "Ann")]).unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::ServerDown, "{}", e.message);
    let said = format!("database file {} is read-only (mode 0444", path.display());
    assert!(e.message.contains(&said), "{}", e.message);
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    session.apply(&[add("1", "Ann")]).unwrap();
}
