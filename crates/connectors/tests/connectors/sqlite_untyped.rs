//! An anchor column without a declared type (BLOB affinity: `CREATE TABLE
//! users (id, name TEXT)`) holding an account's anchor as the INTEGER 7,
//! which the engine knows as the text "7": the export finds the row by
//! both forms, so a delete removes it, an update changes it and an add
//! over it is a replay or `already-exists`, never a second row; a child
//! table whose key column has no type and holds the parent's integer key
//! is changed, replaced and deleted on its existing rows. Rows whose
//! anchor is text are left alone.

use crate::common::{build, person};
use autosync_connector::{Connector, ExportChange, ExportOutcome};
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::{AttrChanges, ExportKind, ObjectTypeDef, Value, ValueChanges, ValueDelta};
use rusqlite::Connection;
use serde_json::json;
use tempfile::TempDir;

/// Users keyed by an untyped column (with an index on it): 7 as an
/// INTEGER, and a neighbour whose anchor is the text '8'.
const USERS: &str = "
CREATE TABLE users (id, name TEXT);
CREATE INDEX users_id ON users (id);
INSERT INTO users VALUES (7, 'Ann'), ('8', 'Eve');
";

/// Groups and their members, both keyed by untyped columns holding the
/// INTEGER 7, and a neighbour group '8' whose rows are text.
const GROUPS: &str = "
CREATE TABLE groups (id, name TEXT);
CREATE TABLE group_members (group_id, member TEXT);
INSERT INTO groups VALUES (7, 'seven'), ('8', 'eight');
INSERT INTO group_members VALUES (7, 'a'), (7, 'b'), ('8', 'a');
";

/// A database made by `schema` and a connector on its `table` (groups
/// with their `members` child table).
fn world(schema: &str, table: &str) -> (TempDir, Connection, Box<dyn Connector>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Connection::open(dir.path().join("hr.db")).unwrap();
    db.execute_batch(schema).unwrap();
    let (types, settings) = if table == "groups" {
        (
            vec![ObjectTypeDef {
                name: "group".into(),
                ..person()
            }],
            json!({"path": "hr.db", "table": "groups", "child_tables":
                {"members": {"table": "group_members", "key": "group_id", "value": "member"}}}),
        )
    } else {
        (vec![person()], json!({"path": "hr.db", "table": table}))
    };
    let conn = build(&SqliteFactory, dir.path(), types, settings);
    (dir, db, conn)
}

fn change(
    object_type: &str,
    anchor: &str,
    kind: ExportKind,
    changes: &[(&str, Option<Value>)],
) -> ExportChange {
    ExportChange {
        values: Default::default(),
        object_type: object_type.into(),
        anchor: anchor.into(),
        dn: anchor.into(),
        kind,
        changes: changes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<AttrChanges>(),
        new_dn: None,
    }
}

fn export(conn: &mut dyn Connector, batch: &[ExportChange]) -> Vec<ExportOutcome> {
    let mut session = conn.begin_export().unwrap();
    let outcomes = session.apply(batch).unwrap();
    session.commit().unwrap();
    outcomes
}

fn applied(outcomes: &[ExportOutcome]) {
    for o in outcomes {
        assert_eq!(o, &ExportOutcome::Applied { anchor: None });
    }
}

/// Every row of `table` as (type of its key, key as text, its other
/// column), in rowid order.
fn rows(db: &Connection, table: &str, key: &str, other: &str) -> Vec<(String, String, String)> {
    db.prepare(&format!(
        "SELECT typeof({key}), CAST({key} AS TEXT), {other} FROM {table} ORDER BY rowid"
    ))
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn row(kind: &str, key: &str, other: &str) -> (String, String, String) {
    (kind.to_owned(), key.to_owned(), other.to_owned())
}

fn users(db: &Connection) -> Vec<(String, String, String)> {
    rows(db, "users", "id", "name")
}

/// The members of the groups, sorted by group then member.
fn members(db: &Connection) -> Vec<(String, String, String)> {
    let mut all = rows(db, "group_members", "group_id", "member");
    all.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    all
}

fn texts(vs: &[&str]) -> Value {
    Value::Multi(vs.iter().map(|v| Value::from(*v)).collect())
}

#[test]
fn a_delete_should_remove_the_row_of_an_integer_anchor_in_an_untyped_column() {
    let (_dir, db, mut conn) = world(USERS, "users");
    applied(&export(
        &mut *conn,
        &[change("person", "7", ExportKind::Delete, &[])],
    ));
    assert_eq!(
        users(&db),
        [row("text", "8", "Eve")],
        "the deprovisioned account is gone, its neighbour kept"
    );
}

#[test]
fn an_update_should_change_the_row_of_an_integer_anchor_in_an_untyped_column() {
    let (_dir, db, mut conn) = world(USERS, "users");
    applied(&export(
        &mut *conn,
        &[change(
            "person",
            "7",
            ExportKind::Update,
            &[("name", Some(Value::from("Bob")))],
        )],
    ));
    assert_eq!(
        users(&db),
        [row("integer", "7", "Bob"), row("text", "8", "Eve")]
    );
}

#[test]
fn an_add_over_an_integer_anchor_in_an_untyped_column_should_be_a_replay_or_already_exists() {
    let (_dir, db, mut conn) = world(USERS, "users");
    let before = users(&db);
    // The same values: a replay, the row written again in place.
    let same = change(
        "person",
        "7",
        ExportKind::Add,
        &[
            ("id", Some(Value::from("7"))),
            ("name", Some(Value::from("Ann"))),
        ],
    );
    applied(&export(&mut *conn, &[same]));
    assert_eq!(users(&db), before, "no second row for anchor 7");
    // Other values: the row is someone else's, left as it is.
    let other = change(
        "person",
        "7",
        ExportKind::Add,
        &[("name", Some(Value::from("Bob")))],
    );
    let outcomes = export(&mut *conn, &[other]);
    let [ExportOutcome::Failed { error_type, detail }] = outcomes.as_slice() else {
        panic!("{outcomes:?}");
    };
    assert_eq!(error_type, "already-exists", "{detail}");
    assert!(detail.contains("`name`"), "{detail}");
    assert_eq!(users(&db), before, "no second row for anchor 7");
}

#[test]
fn value_changes_should_add_and_remove_child_rows_keyed_by_an_untyped_column() {
    let (_dir, db, mut conn) = world(GROUPS, "groups");
    let eight = row("text", "8", "a");
    // Value-level changes: `a` removed, `c` added, `b` (there) not again.
    let values: ValueChanges = [(
        "members".to_owned(),
        ValueDelta {
            add: vec![Value::from("b"), Value::from("c")],
            remove: vec![Value::from("a")],
        },
    )]
    .into();
    let by_values = ExportChange {
        values,
        ..change("group", "7", ExportKind::Update, &[])
    };
    applied(&export(&mut *conn, &[by_values]));
    assert_eq!(
        members(&db),
        [row("integer", "7", "b"), row("text", "7", "c"), eight]
    );
}

#[test]
fn a_child_table_keyed_by_an_untyped_column_should_be_replaced_replayed_and_deleted() {
    let (_dir, db, mut conn) = world(GROUPS, "groups");
    let eight = row("text", "8", "a");
    // The whole value replaced: `b` kept as it is, `a` gone, `d` new.
    let replaced = change(
        "group",
        "7",
        ExportKind::Update,
        &[("members", Some(texts(&["b", "d"])))],
    );
    applied(&export(&mut *conn, &[replaced]));
    assert_eq!(
        members(&db),
        [
            row("integer", "7", "b"),
            row("text", "7", "d"),
            eight.clone()
        ]
    );
    // An add of what the group holds is a replay: no second group row,
    // no member row written again.
    let replay = change(
        "group",
        "7",
        ExportKind::Add,
        &[
            ("name", Some(Value::from("seven"))),
            ("members", Some(texts(&["d", "b"]))),
        ],
    );
    applied(&export(&mut *conn, &[replay]));
    assert_eq!(
        rows(&db, "groups", "id", "name"),
        [row("integer", "7", "seven"), row("text", "8", "eight")]
    );
    assert_eq!(
        members(&db),
        [
            row("integer", "7", "b"),
            row("text", "7", "d"),
            eight.clone()
        ]
    );
    // Removing the attribute deletes the group's rows, of either form.
    let removed = change("group", "7", ExportKind::Update, &[("members", None)]);
    applied(&export(&mut *conn, &[removed]));
    assert_eq!(members(&db), std::slice::from_ref(&eight));
    // Deleting the group deletes its rows in the child table too.
    db.execute_batch("INSERT INTO group_members VALUES (7, 'e')")
        .unwrap();
    applied(&export(
        &mut *conn,
        &[change("group", "7", ExportKind::Delete, &[])],
    ));
    assert_eq!(
        rows(&db, "groups", "id", "name"),
        [row("text", "8", "eight")]
    );
    assert_eq!(members(&db), [eight]);
}
