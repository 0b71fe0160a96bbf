//! An export add whose anchor the target has already, against real SQLite
//! databases, CSV files and JSON Lines files in temporary folders: a row
//! or line autosync did not write (an account made before autosync, under
//! the anchor provisioning gives) is never overwritten, the add fails with
//! `already-exists` naming what differs and the rest of the batch goes on;
//! the same add sent again (a replay after a crash) is applied, the target
//! holding its values once, and keeps what the add does not name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use autosync_connector::{BuildContext, Connector, ConnectorFactory, ExportChange, ExportOutcome};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::{AttrChanges, ExportKind, ObjectTypeDef, Value};
use rusqlite::Connection;
use serde_json::json;
use std::path::Path;

/// The explanation every `already-exists` detail ends with.
const OUTSIDE: &str = "an object made outside autosync is not overwritten; the confirming import reads it: when the MA's join rules join it to the person (or the provisioning rule adopts), the add becomes an update of the values that differ, and otherwise the add stays pending with this error";

fn person() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "person".into(),
        anchor: "employee_id".into(),
        dn: None,
        references: Default::default(),
    }
}

fn group() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "group".into(),
        anchor: "id".into(),
        dn: None,
        references: Default::default(),
    }
}

fn build(
    factory: &dyn ConnectorFactory,
    dir: &Path,
    t: ObjectTypeDef,
    v: serde_json::Value,
) -> Box<dyn Connector> {
    let serde_json::Value::Object(settings) = v else {
        panic!("settings must be an object");
    };
    let ctx = BuildContext {
        ma: "test".into(),
        base_dir: dir.to_owned(),
        object_types: vec![t],
    };
    factory
        .build(&settings, &ctx)
        .unwrap_or_else(|e| panic!("build failed: {e}"))
}

fn add(object_type: &str, anchor: &str, attrs: &[(&str, Option<Value>)]) -> ExportChange {
    ExportChange {
        values: Default::default(),
        object_type: object_type.into(),
        anchor: anchor.into(),
        dn: format!("cn={anchor}"),
        kind: ExportKind::Add,
        changes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<AttrChanges>(),
        new_dn: None,
    }
}

fn person_add(anchor: &str, attrs: &[(&str, &str)]) -> ExportChange {
    let attrs: Vec<(&str, Option<Value>)> = attrs
        .iter()
        .map(|(k, v)| (*k, Some(Value::from(*v))))
        .collect();
    add("person", anchor, &attrs)
}

/// One export session: `batch` applied, committed; its outcomes.
fn export(conn: &mut dyn Connector, batch: &[ExportChange]) -> Vec<ExportOutcome> {
    let mut session = conn.begin_export().unwrap();
    let outcomes = session.apply(batch).unwrap();
    session.commit().unwrap();
    outcomes
}

fn applied(outcome: &ExportOutcome) {
    assert_eq!(outcome, &ExportOutcome::Applied { anchor: None });
}

/// The detail of an `already-exists` failure.
fn already_exists(outcome: &ExportOutcome) -> &str {
    match outcome {
        ExportOutcome::Failed { error_type, detail } if error_type == "already-exists" => {
            assert!(detail.ends_with(OUTSIDE), "{detail}");
            detail
        }
        other => panic!("expected already-exists, got {other:?}"),
    }
}

/// The rows of a query, each as its columns' text (NULL as `None`).
fn rows(db: &Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = db.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get_ref(i).map(|v| match v {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(i) => Some(format!("int {i}")),
                    rusqlite::types::ValueRef::Real(f) => Some(format!("real {f}")),
                    rusqlite::types::ValueRef::Text(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => Some(format!("blob {b:?}")),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

// ---------------------------------------------------------------------------
// SQLite.

const USERS: &str = "
CREATE TABLE users (employee_id TEXT PRIMARY KEY, username TEXT, mail TEXT, password TEXT, age INTEGER, phone TEXT);
CREATE TABLE audit (op TEXT, id TEXT);
CREATE TRIGGER users_ai AFTER INSERT ON users BEGIN INSERT INTO audit VALUES ('I', NEW.employee_id); END;
CREATE TRIGGER users_au AFTER UPDATE ON users BEGIN INSERT INTO audit VALUES ('U', NEW.employee_id); END;
";

fn users_db(dir: &Path) -> (Connection, Box<dyn Connector>) {
    let db = Connection::open(dir.join("hr.db")).unwrap();
    db.execute_batch(USERS).unwrap();
    let conn = build(
        &SqliteFactory,
        dir,
        person(),
        json!({"path": "hr.db", "table": "users",
               "columns": ["employee_id", "username", "mail", "password", "age"]}),
    );
    (db, conn)
}

#[test]
fn sqlite_an_add_over_a_row_made_outside_autosync_should_fail_and_leave_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let (db, mut conn) = users_db(dir.path());
    db.execute_batch(
        "INSERT INTO users VALUES ('E10001', 'preexisting', 'pre@x', 'old-pass', 30, '555-0100');
         DELETE FROM audit;",
    )
    .unwrap();
    let before = rows(&db, "SELECT * FROM users WHERE employee_id = 'E10001'");
    let outcomes = export(
        &mut *conn,
        &[
            person_add(
                "E10001",
                &[
                    ("username", "fpetrova"),
                    ("mail", "pre@x"),
                    ("password", "new-pass"),
                ],
            ),
            person_add("E10002", &[("username", "jdoe"), ("mail", "j@x")]),
        ],
    );
    let detail = already_exists(&outcomes[0]);
    assert_eq!(
        detail,
        format!(
            "table `users` has a row with anchor \"E10001\" already, which this add did not write \
             (`password`: the row holds (secret), the add sends (secret); \
             `username`: the row holds \"preexisting\", the add sends \"fpetrova\"): {OUTSIDE}"
        )
    );
    assert!(
        !detail.contains("pass\""),
        "no secret in a message: {detail}"
    );
    applied(&outcomes[1]);
    assert_eq!(
        rows(&db, "SELECT * FROM users WHERE employee_id = 'E10001'"),
        before,
        "the row is left as it is"
    );
    assert_eq!(
        rows(
            &db,
            "SELECT employee_id, username, mail FROM users WHERE employee_id = 'E10002'"
        ),
        [[
            Some("E10002".into()),
            Some("jdoe".into()),
            Some("j@x".into())
        ]]
    );
    assert_eq!(
        rows(&db, "SELECT op, id FROM audit"),
        [[Some("I".into()), Some("E10002".into())]],
        "nothing written to the row made outside"
    );
}

#[test]
fn sqlite_the_same_add_twice_should_be_a_replay_that_keeps_other_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (db, mut conn) = users_db(dir.path());
    let add = person_add("E10001", &[("username", "fpetrova"), ("mail", "f@x")]);
    applied(&export(&mut *conn, std::slice::from_ref(&add))[0]);
    // Something else sets a column the add does not name.
    db.execute_batch("UPDATE users SET phone = '555-0100'; DELETE FROM audit;")
        .unwrap();
    applied(&export(&mut *conn, std::slice::from_ref(&add))[0]);
    assert_eq!(
        rows(&db, "SELECT employee_id, username, mail, phone FROM users"),
        [[
            Some("E10001".into()),
            Some("fpetrova".into()),
            Some("f@x".into()),
            Some("555-0100".into())
        ]]
    );
    assert_eq!(
        rows(&db, "SELECT op, id FROM audit"),
        [[Some("U".into()), Some("E10001".into())]],
        "a replay is written again in place (the table's triggers see it)"
    );
}

#[test]
fn sqlite_an_integer_column_should_compare_as_sqlite_stores_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let (db, mut conn) = users_db(dir.path());
    db.execute_batch(
        "INSERT INTO users (employee_id, username, age) VALUES ('E10001', 'fpetrova', 42)",
    )
    .unwrap();
    let replay = add(
        "person",
        "E10001",
        &[
            ("username", Some("fpetrova".into())),
            ("age", Some(Value::from("42"))),
            ("mail", None),
        ],
    );
    applied(&export(&mut *conn, &[replay])[0]);
    assert_eq!(
        rows(&db, "SELECT username, age, mail FROM users"),
        [[Some("fpetrova".into()), Some("int 42".into()), None]]
    );
    // 43 is not what the row holds; a removed attribute the row has is
    // not either.
    let outcomes = export(
        &mut *conn,
        &[
            add(
                "person",
                "E10001",
                &[
                    ("username", Some("fpetrova".into())),
                    ("age", Some(Value::from("43"))),
                ],
            ),
            add(
                "person",
                "E10001",
                &[("username", None), ("age", Some(Value::Integer(42)))],
            ),
        ],
    );
    let detail = already_exists(&outcomes[0]);
    assert!(
        detail.contains("(`age`: the row holds 42, the add sends 43)"),
        "{detail}"
    );
    let detail = already_exists(&outcomes[1]);
    assert!(
        detail.contains("(`username`: the row holds \"fpetrova\", the add sends nothing)"),
        "{detail}"
    );
    assert_eq!(
        rows(&db, "SELECT username, age, mail FROM users"),
        [[Some("fpetrova".into()), Some("int 42".into()), None]]
    );
}

/// Groups with their members in a child table without a UNIQUE
/// constraint: a duplicate row would show.
const GROUPS: &str = "
CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL);
";

fn groups_db(dir: &Path) -> (Connection, Box<dyn Connector>) {
    let db = Connection::open(dir.join("hr.db")).unwrap();
    db.execute_batch(GROUPS).unwrap();
    let conn = build(
        &SqliteFactory,
        dir,
        group(),
        json!({"path": "hr.db", "table": "groups", "child_tables":
               {"members": {"table": "group_members", "key": "group_id", "value": "member"}}}),
    );
    (db, conn)
}

fn members(db: &Connection, id: &str) -> Vec<String> {
    db.prepare("SELECT member FROM group_members WHERE group_id = ?1 ORDER BY member")
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn texts(vs: &[&str]) -> Value {
    Value::Multi(vs.iter().map(|v| Value::from(*v)).collect())
}

#[test]
fn sqlite_a_replayed_add_should_find_its_child_rows_and_write_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (db, mut conn) = groups_db(dir.path());
    let g1 = add(
        "group",
        "g1",
        &[
            ("name", Some("one".into())),
            ("members", Some(texts(&["b", "a", "b"]))),
        ],
    );
    for _ in 0..3 {
        applied(&export(&mut *conn, std::slice::from_ref(&g1))[0]);
    }
    assert_eq!(members(&db, "g1"), ["a", "b"]);
    assert_eq!(
        rows(&db, "SELECT id, name FROM groups"),
        [[Some("g1".into()), Some("one".into())]]
    );
}

#[test]
fn sqlite_an_add_over_a_parent_whose_child_rows_differ_should_fail_and_leave_them() {
    let dir = tempfile::tempdir().unwrap();
    let (db, mut conn) = groups_db(dir.path());
    db.execute_batch(
        "INSERT INTO groups VALUES ('g1', 'one');
         INSERT INTO group_members VALUES ('g1', 'a'), ('g1', 'x');",
    )
    .unwrap();
    let outcomes = export(
        &mut *conn,
        &[
            add(
                "group",
                "g1",
                &[
                    ("name", Some("one".into())),
                    ("members", Some(texts(&["a", "b"]))),
                ],
            ),
            add("group", "g2", &[("members", Some(texts(&["a"])))]),
        ],
    );
    let detail = already_exists(&outcomes[0]);
    assert!(
        detail.contains(
            "(`members`: the rows of table `group_members` hold [\"a\", \"x\"], the add sends [\"a\", \"b\"])"
        ),
        "{detail}"
    );
    applied(&outcomes[1]);
    assert_eq!(
        members(&db, "g1"),
        ["a", "x"],
        "the rows are left as they are"
    );
    assert_eq!(members(&db, "g2"), ["a"]);
    // A parent whose rows are the add's (in another order) is a replay.
    applied(
        &export(
            &mut *conn,
            &[add(
                "group",
                "g1",
                &[
                    ("name", Some("one".into())),
                    ("members", Some(texts(&["x", "a"]))),
                ],
            )],
        )[0],
    );
    assert_eq!(members(&db, "g1"), ["a", "x"]);
}

// ---------------------------------------------------------------------------
// CSV.

const CSV_BEFORE: &str = "employee_id,username,mail,password,groups,notes\n\
                          E10001,preexisting,pre@x,old-pass,a;b,keep me\n";

fn csv_connector(dir: &Path) -> Box<dyn Connector> {
    build(
        &CsvFactory,
        dir,
        person(),
        json!({"path": "users.csv", "multi_value_separator": ";", "multi_valued": ["groups"]}),
    )
}

#[test]
fn csv_an_add_over_a_row_made_outside_autosync_should_fail_and_leave_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, CSV_BEFORE).unwrap();
    let mut conn = csv_connector(dir.path());
    let outcomes = export(
        &mut *conn,
        &[
            person_add(
                "E10001",
                &[
                    ("username", "fpetrova"),
                    ("mail", "pre@x"),
                    ("password", "new-pass"),
                    ("title", "Engineer"),
                ],
            ),
            person_add("E10002", &[("username", "jdoe"), ("mail", "j@x")]),
        ],
    );
    let detail = already_exists(&outcomes[0]);
    assert_eq!(
        detail,
        format!(
            "file `users.csv` has a row with anchor \"E10001\" already, which this add did not write \
             (`password`: the row holds (secret), the add sends (secret); \
             `title`: the row holds nothing, the add sends \"Engineer\"; \
             `username`: the row holds \"preexisting\", the add sends \"fpetrova\"): {OUTSIDE}"
        )
    );
    applied(&outcomes[1]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{CSV_BEFORE}E10002,jdoe,j@x,,,\n"),
        "the row is left byte for byte, and no column the failed add named is added"
    );
}

#[test]
fn csv_the_same_add_twice_should_be_a_replay_that_keeps_other_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let mut conn = csv_connector(dir.path());
    let with_groups = add(
        "person",
        "E10001",
        &[
            ("username", Some("fpetrova".into())),
            ("groups", Some(texts(&["a", "b"]))),
            ("mail", None),
        ],
    );
    applied(&export(&mut *conn, std::slice::from_ref(&with_groups))[0]);
    applied(&export(&mut *conn, std::slice::from_ref(&with_groups))[0]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "employee_id,groups,mail,username\nE10001,a;b,,fpetrova\n"
    );
    // A row holding the add's values and others (written by another
    // program, or the add applied and the row since given a note): kept
    // as it is, byte for byte.
    std::fs::write(&path, CSV_BEFORE).unwrap();
    let replay = add(
        "person",
        "E10001",
        &[
            ("username", Some("preexisting".into())),
            ("groups", Some(texts(&["a", "b"]))),
            ("title", None),
        ],
    );
    applied(&export(&mut *conn, &[replay])[0]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), CSV_BEFORE);
}

// ---------------------------------------------------------------------------
// JSON Lines.

const JSONL_BEFORE: &str = "{\"employee_id\":\"E10001\",\"username\":\"preexisting\",\"mail\":\"pre@x\",\"extra\":\"kept\",\"phone\":\"555-0100\"}\n";

fn jsonl_connector(dir: &Path) -> Box<dyn Connector> {
    let with_dn = ObjectTypeDef {
        dn: Some("dn".into()),
        ..person()
    };
    build(&JsonlFactory, dir, with_dn, json!({"path": "users.jsonl"}))
}

#[test]
fn jsonl_an_add_over_a_line_made_outside_autosync_should_fail_and_leave_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    std::fs::write(&path, JSONL_BEFORE).unwrap();
    let mut conn = jsonl_connector(dir.path());
    let outcomes = export(
        &mut *conn,
        &[
            person_add("E10001", &[("username", "fpetrova"), ("mail", "pre@x")]),
            person_add("E10002", &[("username", "jdoe")]),
        ],
    );
    let detail = already_exists(&outcomes[0]);
    assert_eq!(
        detail,
        format!(
            "file `users.jsonl` has a line with anchor \"E10001\" already, which this add did not write \
             (`dn`: the line holds nothing, the add sends \"cn=E10001\"; \
             `username`: the line holds \"preexisting\", the add sends \"fpetrova\"): {OUTSIDE}"
        )
    );
    applied(&outcomes[1]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!(
            "{JSONL_BEFORE}{{\"dn\":\"cn=E10002\",\"employee_id\":\"E10002\",\"username\":\"jdoe\"}}\n"
        ),
        "the line is left byte for byte"
    );
}

#[test]
fn jsonl_the_same_add_twice_should_be_a_replay_that_keeps_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    let mut conn = jsonl_connector(dir.path());
    let first = add(
        "person",
        "E10001",
        &[
            ("username", Some("fpetrova".into())),
            ("groups", Some(texts(&["a", "b"]))),
            ("mail", None),
        ],
    );
    applied(&export(&mut *conn, std::slice::from_ref(&first))[0]);
    applied(&export(&mut *conn, std::slice::from_ref(&first))[0]);
    let written = "{\"dn\":\"cn=E10001\",\"employee_id\":\"E10001\",\"groups\":[\"a\",\"b\"],\"username\":\"fpetrova\"}\n";
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
    // A line holding the add's values and keys it does not name, in
    // another spacing and order: kept as it is, byte for byte.
    let theirs = "{ \"phone\": \"555-0100\", \"username\": \"fpetrova\", \"dn\": \"cn=E10001\", \"employee_id\": \"E10001\", \"groups\": [\"a\", \"b\"], \"extra\": null }\n";
    std::fs::write(&path, theirs).unwrap();
    applied(&export(&mut *conn, &[first])[0]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);
}
