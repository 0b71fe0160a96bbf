//! An export that changes nothing leaves its target as it is: with nothing
//! to send, the file (a JSON Lines file, a CSV file, an SQLite database) is
//! not opened for writing, not replaced by a renamed temporary file, its
//! modification time and inode stay, and a file watcher on its folder sees
//! no event. The same for the file connectors when every change is one the
//! file already holds; SQLite writes such changes again (a batch replayed
//! after a crash stays visible to the table's triggers: the CLI's crash
//! test counts on it).

use crate::common::{build, person};
use autosync_connector::{Connector, ExportChange, ExportOutcome};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::{ExportKind, Value};
use notify::event::{AccessKind, MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

fn change(id: &str, kind: ExportKind, attrs: &[(&str, &str)]) -> ExportChange {
    ExportChange {
        values: Default::default(),
        object_type: "person".into(),
        anchor: id.into(),
        dn: id.into(),
        kind,
        changes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(Value::from(*v))))
            .collect(),
        new_dn: None,
    }
}

/// Two people, as every connector is first given them.
fn people() -> Vec<ExportChange> {
    vec![
        change("1", ExportKind::Add, &[("name", "Ann"), ("mail", "ann@x")]),
        change("2", ExportKind::Add, &[("name", "Bob"), ("mail", "bob@x")]),
    ]
}

/// Changes the target already holds: the same add again, an update to the
/// values it has, a delete of an object it does not have.
fn no_ops() -> Vec<ExportChange> {
    vec![
        change("1", ExportKind::Add, &[("name", "Ann"), ("mail", "ann@x")]),
        change("2", ExportKind::Update, &[("name", "Bob")]),
        change("9", ExportKind::Delete, &[]),
    ]
}

/// One export session: `batches` applied (each change applied), committed.
fn export(conn: &mut dyn Connector, batches: &[Vec<ExportChange>]) {
    let mut session = conn.begin_export().unwrap();
    for batch in batches {
        for outcome in session.apply(batch).unwrap() {
            assert_eq!(outcome, ExportOutcome::Applied { anchor: None });
        }
    }
    session.commit().unwrap();
}

/// The three connectors, each on a target file in `dir`.
fn targets(dir: &Path) -> Vec<(&'static str, PathBuf, Box<dyn Connector>)> {
    vec![
        (
            "jsonl",
            dir.join("users.jsonl"),
            build(
                &JsonlFactory,
                dir,
                vec![person()],
                json!({"path": "users.jsonl"}),
            ),
        ),
        (
            "csv",
            dir.join("users.csv"),
            build(
                &CsvFactory,
                dir,
                vec![person()],
                json!({"path": "users.csv", "columns": ["id", "name", "mail"]}),
            ),
        ),
        (
            "sqlite",
            dir.join("users.db"),
            build(
                &SqliteFactory,
                dir,
                vec![person()],
                json!({"path": "users.db", "table": "users", "create_table": true,
                       "columns": ["id", "name", "mail"]}),
            ),
        ),
    ]
}

/// What shows that a file was written: its bytes, inode, size and
/// modification time.
#[derive(Debug, PartialEq)]
struct Seen {
    bytes: Vec<u8>,
    inode: u64,
    mtime: SystemTime,
    ctime: (i64, i64),
}

fn seen(path: &Path) -> Seen {
    let meta = std::fs::metadata(path).unwrap();
    Seen {
        bytes: std::fs::read(path).unwrap(),
        inode: meta.ino(),
        mtime: meta.modified().unwrap(),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    }
}

/// Put the file's modification time an hour back, so that any write
/// (which sets it to now) shows, however coarse the file system's clock.
fn age(path: &Path) {
    let past = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(past)
        .unwrap();
}

/// Whether an event says the folder's content changed (as the file-watch
/// trigger counts them: reads and access times do not).
fn is_change(e: &Event) -> bool {
    match e.kind {
        EventKind::Access(AccessKind::Close(notify::event::AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}

/// The changes a watcher on `dir` sees while `f` runs. No sleep: after `f`,
/// a marker file is written and the events are read up to the marker's
/// (a watcher reports the events of one folder in order).
fn watched(dir: &Path, f: impl FnOnce()) -> Vec<Event> {
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |e: notify::Result<Event>| {
        let _ = tx.send(e);
    })
    .unwrap();
    watcher.watch(dir, RecursiveMode::NonRecursive).unwrap();
    f();
    let marker = dir.join("marker");
    std::fs::write(&marker, b"done").unwrap();
    let mut changes = Vec::new();
    loop {
        let e = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        if e.paths.iter().any(|p| p.ends_with("marker")) {
            break;
        }
        if is_change(&e) {
            changes.push(e);
        }
    }
    std::fs::remove_file(&marker).unwrap();
    changes
}

#[test]
fn an_export_with_nothing_to_send_should_leave_each_target_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path, mut conn) in targets(dir.path()) {
        export(conn.as_mut(), &[people()]);
        age(&path);
        let before = seen(&path);
        let events = watched(dir.path(), || {
            export(conn.as_mut(), &[]);
            // The engine may hand over an empty batch too.
            export(conn.as_mut(), &[vec![]]);
        });
        assert_eq!(seen(&path), before, "{name}: the target file changed");
        assert!(events.is_empty(), "{name}: a watcher saw {events:?}");
    }
}

#[test]
fn an_export_of_changes_the_file_already_holds_should_leave_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path, mut conn) in targets(dir.path()) {
        if name == "sqlite" {
            continue;
        }
        export(conn.as_mut(), &[people()]);
        age(&path);
        let before = seen(&path);
        let events = watched(dir.path(), || export(conn.as_mut(), &[no_ops()]));
        assert_eq!(seen(&path), before, "{name}: the target file changed");
        assert!(events.is_empty(), "{name}: a watcher saw {events:?}");
    }
}

/// The other side: a real change is written, and seen (else the two tests
/// above could pass on a connector that never writes, or a blind watcher).
#[test]
fn an_export_with_one_real_change_should_write_the_file_and_be_seen() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path, mut conn) in targets(dir.path()) {
        export(conn.as_mut(), &[people()]);
        age(&path);
        let before = seen(&path);
        let mut batch = no_ops();
        batch.push(change("2", ExportKind::Update, &[("mail", "BOB@x")]));
        let events = watched(dir.path(), || export(conn.as_mut(), &[batch]));
        let after = seen(&path);
        assert_ne!(after.mtime, before.mtime, "{name}: not written");
        assert_ne!(after.bytes, before.bytes, "{name}: not written");
        assert!(!events.is_empty(), "{name}: the watcher saw nothing");
        let text = String::from_utf8_lossy(&after.bytes);
        if name != "sqlite" {
            assert!(text.contains("BOB@x"), "{name}: {text}");
        }
    }
    // A change of case only is a change.
    let db = rusqlite::Connection::open(dir.path().join("users.db")).unwrap();
    let mail: String = db
        .query_row("SELECT mail FROM users WHERE id = '2'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mail, "BOB@x");
}

/// A file the export never wrote keeps lines written by others as they
/// are (spacing, key order) when the object they hold does not change.
#[test]
fn a_jsonl_line_written_by_another_program_should_stay_as_written_when_its_object_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    let text = "{ \"name\": \"Ann\", \"id\": \"1\", \"mail\": \"ann@x\" }\n";
    std::fs::write(&path, text).unwrap();
    let mut conn = build(
        &JsonlFactory,
        dir.path(),
        vec![person()],
        json!({"path": "users.jsonl"}),
    );
    age(&path);
    let before = seen(&path);
    export(
        conn.as_mut(),
        &[vec![change(
            "1",
            ExportKind::Update,
            &[("name", "Ann"), ("mail", "ann@x")],
        )]],
    );
    assert_eq!(seen(&path), before);
}
