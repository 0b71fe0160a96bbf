//! The SQLite connector against real databases: the compliance suite with a
//! changelog table, a change-tracking column and no delta (on a WITHOUT
//! ROWID table), then deltas from outside changes, constraint violations,
//! injection attempts, types and whole-step errors; multi-valued
//! attributes in child tables in `children` (sqlite_children.rs).

use crate::common::{build, ctx, drain, person, settings};
use autosync_connector::compliance::ComplianceTarget;
use autosync_connector::{
    ConnectorErrorKind, ConnectorFactory, ExportChange, ExportOutcome, ImportChange, ImportItem,
};
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::{Attributes, ExportKind, ObjectTypeDef, Value};
use rusqlite::Connection;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const CHANGELOG_SCHEMA: &str = "
CREATE TABLE users (id TEXT PRIMARY KEY, dn TEXT, name TEXT, mail TEXT, title TEXT);
CREATE TABLE users_changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, op TEXT NOT NULL);
CREATE TRIGGER users_ai AFTER INSERT ON users BEGIN INSERT INTO users_changelog(id, op) VALUES (NEW.id, 'I'); END;
CREATE TRIGGER users_au AFTER UPDATE ON users BEGIN INSERT INTO users_changelog(id, op) VALUES (NEW.id, 'U'); END;
CREATE TRIGGER users_ad AFTER DELETE ON users BEGIN INSERT INTO users_changelog(id, op) VALUES (OLD.id, 'D'); END;
";

const COLUMN_SCHEMA: &str = "
CREATE TABLE users (id TEXT PRIMARY KEY, dn TEXT, name TEXT, mail TEXT, title TEXT, updated_at INTEGER);
CREATE TABLE clock (v INTEGER NOT NULL);
INSERT INTO clock VALUES (0);
CREATE TRIGGER users_ai AFTER INSERT ON users BEGIN
  UPDATE clock SET v = v + 1;
  UPDATE users SET updated_at = (SELECT v FROM clock) WHERE id = NEW.id;
END;
CREATE TRIGGER users_au AFTER UPDATE OF id, dn, name, mail, title ON users BEGIN
  UPDATE clock SET v = v + 1;
  UPDATE users SET updated_at = (SELECT v FROM clock) WHERE id = NEW.id;
END;
";

const PLAIN_SCHEMA: &str = "CREATE TABLE users (id TEXT PRIMARY KEY, dn TEXT, name TEXT, mail TEXT, title TEXT) WITHOUT ROWID;";

/// A table for every value type of the compliance suite, each column of
/// its declared type (SQLite keeps the name: BOOLEAN, JSON).
const TYPED_SCHEMA: &str = r#"
CREATE TABLE typed (
  "id" TEXT PRIMARY KEY, "text" TEXT, "unicode" VARCHAR(200), "number_like_text" TEXT,
  "leading_zero_id" TEXT, "integer" INTEGER, "integer_in_text" TEXT,
  "boolean_true" BOOLEAN, "boolean_false" BOOL, "binary" BLOB,
  "multi_text" JSON, "multi_integer" JSON, "empty_multi" JSON
);
"#;

/// The same table without declared types: the `column_types` setting
/// gives them.
const UNTYPED_SCHEMA: &str = r#"
CREATE TABLE typed (
  "id" TEXT PRIMARY KEY, "text", "unicode", "number_like_text", "leading_zero_id",
  "integer", "integer_in_text", "boolean_true", "boolean_false", "binary",
  "multi_text", "multi_integer", "empty_multi"
) WITHOUT ROWID;
"#;

fn database(dir: &Path, schema: &str) -> PathBuf {
    let path = dir.join("hr.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch(schema)
        .unwrap();
    path
}

fn target(
    schema: &'static str,
    extra: serde_json::Value,
    delta_sees_deletes: bool,
) -> (TempDir, ComplianceTarget) {
    target_typed(schema, extra, delta_sees_deletes, TYPED_SCHEMA, json!({}))
}

/// A target whose typed table is made by `typed_schema` and read with
/// the settings `typed_extra`.
fn target_typed(
    schema: &str,
    extra: serde_json::Value,
    delta_sees_deletes: bool,
    typed_schema: &'static str,
    typed_extra: serde_json::Value,
) -> (TempDir, ComplianceTarget) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_owned();
    let path = database(&base, &format!("{schema}{typed_schema}"));
    let object_type = ObjectTypeDef {
        dn: Some("dn".into()),
        ..person()
    };
    let ot = object_type.clone();
    let mut s = settings(json!({"path": "hr.db", "table": "users", "batch_size": 100}));
    s.extend(settings(extra));
    let (p1, p2) = (path.clone(), path);
    let mut typed = settings(json!({"path": "hr.db", "table": "typed"}));
    typed.extend(settings(typed_extra));
    let (typed_base, typed_type) = (base.clone(), ot.clone());
    let t = ComplianceTarget {
        name: "sqlite".into(),
        object_type,
        attributes: vec!["name".into(), "mail".into(), "title".into()],
        batch_size: 100,
        large_count: 1000,
        delta_sees_deletes,
        detects_unchanged: false,
        reset: Box::new(move || {
            Connection::open(&p1)
                .unwrap()
                .execute_batch("DELETE FROM users")
                .unwrap()
        }),
        make: Box::new(move || {
            SqliteFactory
                .build(&s, &ctx(&base, vec![ot.clone()]))
                .unwrap()
        }),
        read_back: Box::new(move || read_back(&p2)),
        make_typed: Box::new(move || {
            SqliteFactory
                .build(&typed, &ctx(&typed_base, vec![typed_type.clone()]))
                .unwrap()
        }),
    };
    (dir, t)
}

fn read_back(path: &Path) -> BTreeMap<String, Attributes> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, dn, name, mail, title FROM users")
        .unwrap();
    let names = ["id", "dn", "name", "mail", "title"];
    stmt.query_map([], |r| {
        let mut a = Attributes::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(v) = r.get::<_, Option<String>>(i)? {
                a.insert((*n).to_owned(), Value::String(v));
            }
        }
        Ok((a["id"].to_text(), a))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn changelog_target() -> (TempDir, ComplianceTarget) {
    changelog_target_with("", json!({}), TYPED_SCHEMA, json!({}))
}

/// The changelog target with more tables (`more_schema`) and settings
/// (`more`), its typed table made by `typed_schema` and read with
/// `typed_extra`.
fn changelog_target_with(
    more_schema: &str,
    more: serde_json::Value,
    typed_schema: &'static str,
    typed_extra: serde_json::Value,
) -> (TempDir, ComplianceTarget) {
    let mut extra = settings(
        json!({"delta": {"kind": "changelog", "table": "users_changelog", "sequence_column": "seq", "anchor_column": "id", "operation_column": "op"}}),
    );
    extra.extend(settings(more));
    target_typed(
        &format!("{CHANGELOG_SCHEMA}{more_schema}"),
        serde_json::Value::Object(extra),
        true,
        typed_schema,
        typed_extra,
    )
}

fn column_target() -> (TempDir, ComplianceTarget) {
    target(
        COLUMN_SCHEMA,
        json!({"delta": {"kind": "column", "column": "updated_at"}}),
        false,
    )
}

fn plain_target() -> (TempDir, ComplianceTarget) {
    let column_types = json!({"column_types": {
        "text": "text", "unicode": "text", "number_like_text": "text",
        "leading_zero_id": "text", "integer": "integer", "integer_in_text": "text",
        "boolean_true": "boolean", "boolean_false": "boolean", "binary": "binary",
        "multi_text": "json", "multi_integer": "json", "empty_multi": "json",
    }});
    target_typed(PLAIN_SCHEMA, json!({}), false, UNTYPED_SCHEMA, column_types)
}

crate::common::compliance_suite!(with_changelog, changelog_target);
crate::common::compliance_suite!(with_change_column, column_target);
crate::common::compliance_suite!(without_delta, plain_target);

/// Multi-valued attributes in child tables.
#[path = "sqlite_children.rs"]
mod children;

fn add(id: &str, attrs: &[(&str, Value)]) -> ExportChange {
    ExportChange {
        values: Default::default(),
        object_type: "person".into(),
        anchor: id.into(),
        dn: id.into(),
        kind: ExportKind::Add,
        changes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(v.clone())))
            .collect(),
        new_dn: None,
    }
}

fn failed_type(o: &ExportOutcome) -> Option<&str> {
    match o {
        ExportOutcome::Failed { error_type, .. } => Some(error_type),
        ExportOutcome::Applied { .. } => None,
    }
}

#[test]
fn a_constraint_violation_should_fail_only_its_row_and_the_rest_of_the_batch_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, mail TEXT UNIQUE, age INTEGER CHECK (age >= 0));",
    );
    let mut conn = build(
        &SqliteFactory,
        dir.path(),
        vec![person()],
        json!({"path": "hr.db", "table": "users"}),
    );
    let mut session = conn.begin_export().unwrap();
    assert!(session.durable_per_batch());
    let outcomes = session
        .apply(&[
            add("1", &[("name", "Ann".into()), ("mail", "a@x".into())]),
            add("2", &[("mail", "b@x".into())]),
            add("3", &[("name", "Cy".into()), ("mail", "a@x".into())]),
            add("4", &[("name", "Dee".into()), ("age", Value::Integer(-1))]),
            add("5", &[("name", "Eve".into()), ("nope", "x".into())]),
            add("6", &[("name", "Fay".into()), ("age", Value::Integer(30))]),
        ])
        .unwrap();
    let kinds: Vec<Option<&str>> = outcomes.iter().map(failed_type).collect();
    assert_eq!(
        kinds,
        vec![
            None,
            Some("constraint-violation"),
            Some("constraint-violation"),
            Some("constraint-violation"),
            Some("unknown-attribute"),
            None
        ]
    );
    let ExportOutcome::Failed { detail, .. } = &outcomes[1] else {
        unreachable!()
    };
    assert!(detail.contains("NOT NULL"), "{detail}");
    drop(session);
    let db = Connection::open(&path).unwrap();
    let ids: Vec<String> = db
        .prepare("SELECT id FROM users ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, vec!["1", "6"]);
}

#[test]
fn values_and_names_from_data_or_config_should_never_be_run_as_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE \"we\"\"ird users\" (id TEXT PRIMARY KEY, \"full name\" TEXT, \"x\"\"; DROP TABLE keep; --\" TEXT);
         CREATE TABLE keep (v TEXT);",
    );
    let evil = "'); DROP TABLE users; --";
    let settings = json!({"path": "hr.db", "table": "we\"ird users"});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], settings);
    let mut session = conn.begin_export().unwrap();
    let attrs = [
        ("full name", Value::from(evil)),
        ("x\"; DROP TABLE keep; --", Value::from(evil)),
    ];
    let outcomes = session.apply(&[add(evil, &attrs)]).unwrap();
    assert_eq!(outcomes, vec![ExportOutcome::Applied { anchor: None }]);
    drop(session);
    let items = drain(conn.full_import(None).unwrap()).0.concat();
    let obj = items[0].as_ref().unwrap();
    assert_eq!(obj.anchor, evil);
    assert_eq!(obj.attributes["full name"], Value::from(evil));
    assert_eq!(
        obj.attributes["x\"; DROP TABLE keep; --"],
        Value::from(evil)
    );
    let db = Connection::open(&path).unwrap();
    let tables: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 2, "both tables are still there");
}

#[test]
fn sqlite_types_should_map_to_attribute_values_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, photo BLOB, n INTEGER, tags TEXT, flag BOOLEAN, groups JSON);
         INSERT INTO users VALUES (7, 'Ann', 0.1, x'0102', NULL, NULL, 0, '[\"x\"]');",
    );
    let mut conn = build(
        &SqliteFactory,
        dir.path(),
        vec![person()],
        json!({"path": "hr.db", "table": "users"}),
    );
    let items = drain(conn.full_import(None).unwrap()).0.concat();
    let obj = items[0].as_ref().unwrap();
    assert_eq!(obj.anchor, "7");
    let expected: Attributes = [
        ("id".to_owned(), Value::Integer(7)),
        ("name".to_owned(), Value::from("Ann")),
        ("score".to_owned(), Value::from("0.1")),
        ("photo".to_owned(), Value::Binary(vec![1, 2])),
        ("flag".to_owned(), Value::Boolean(false)),
        ("groups".to_owned(), Value::Multi(vec!["x".into()])),
    ]
    .into();
    assert_eq!(
        obj.attributes, expected,
        "NULL is absent, REAL is text with no rounding, BOOLEAN 0/1 a boolean, JSON its value"
    );
    let mut session = conn.begin_export().unwrap();
    let tags = Value::Multi(vec!["a".into(), "b".into()]);
    let outcomes = session
        .apply(&[
            add(
                "8",
                &[("flag", Value::Boolean(true)), ("groups", tags.clone())],
            ),
            add("9", &[("n", Value::Boolean(true))]),
            add("10", &[("tags", tags.clone())]),
        ])
        .unwrap();
    drop(session);
    assert!(matches!(outcomes[0], ExportOutcome::Applied { .. }));
    for (o, hint) in outcomes[1..]
        .iter()
        .zip(["n = \"boolean\"", "tags = \"json\""])
    {
        assert!(
            matches!(o, ExportOutcome::Failed { error_type, detail }
                if error_type == "value-not-representable" && detail.contains(hint)),
            "a value the column would alter is refused, saying what to declare: {o:?}"
        );
    }
    let db = Connection::open(&path).unwrap();
    let (flag, groups): (i64, String) = db
        .query_row("SELECT flag, groups FROM users WHERE id = 8", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((flag, groups.as_str()), (1, "[\"a\",\"b\"]"));
    let items = drain(conn.full_import(None).unwrap()).0.concat();
    let obj = items[1].as_ref().unwrap();
    assert_eq!(obj.attributes["flag"], Value::Boolean(true));
    assert_eq!(obj.attributes["groups"], tags);
}

#[test]
fn a_changelog_delta_should_return_each_changed_row_once_in_its_current_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), CHANGELOG_SCHEMA);
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO users (id, name) VALUES ('1', 'Ann'), ('2', 'Bob'), ('3', 'Cy');",
    )
    .unwrap();
    let delta = json!({"kind": "changelog", "table": "users_changelog", "sequence_column": "seq"});
    let s = json!({"path": "hr.db", "table": "users", "delta": delta, "batch_size": 2});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (_, wm) = drain(conn.full_import(None).unwrap());
    assert_eq!(wm.as_deref(), Some("{\"seq\":3}"));
    db.execute_batch(
        "UPDATE users SET name = 'Ann 1' WHERE id = '1';
         UPDATE users SET name = 'Ann 2' WHERE id = '1';
         DELETE FROM users WHERE id = '2';
         INSERT INTO users (id, name) VALUES ('4', 'Dee');
         INSERT INTO users (id, name) VALUES ('5', 'Gone');
         DELETE FROM users WHERE id = '5';",
    )
    .unwrap();
    let (batches, wm2) = drain(conn.delta_import(wm.as_deref()).unwrap());
    assert!(batches.iter().all(|b| b.len() <= 2));
    let got: Vec<(String, ImportChange, Option<Value>)> = batches
        .concat()
        .into_iter()
        .map(|i| i.unwrap())
        .map(|o| (o.anchor, o.change, o.attributes.get("name").cloned()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("1".into(), ImportChange::Full, Some("Ann 2".into())),
            ("2".into(), ImportChange::Delete, None),
            ("4".into(), ImportChange::Full, Some("Dee".into())),
            ("5".into(), ImportChange::Delete, None),
        ]
    );
    assert_eq!(wm2.as_deref(), Some("{\"seq\":9}"));
}

/// A changelog whose last sequence is below the watermark (a database
/// restored from a backup, the changelog made again): its rows after the
/// watermark would miss every change since, so the delta import reads
/// everything and says the stream is complete (the engine then stages
/// the deletes of what it did not see).
#[test]
fn a_changelog_gone_back_below_the_watermark_should_make_the_delta_read_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), CHANGELOG_SCHEMA);
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO users (id, name) VALUES ('1', 'Ann'), ('2', 'Bob'), ('3', 'Cy');",
    )
    .unwrap();
    let delta = json!({"kind": "changelog", "table": "users_changelog", "sequence_column": "seq"});
    let s = json!({"path": "hr.db", "table": "users", "delta": delta});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (_, wm) = drain(conn.full_import(None).unwrap());
    assert_eq!(wm.as_deref(), Some("{\"seq\":3}"));
    // The changelog made again: one change, sequence 1.
    db.execute_batch(
        "DROP TABLE users_changelog;
         CREATE TABLE users_changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, op TEXT NOT NULL);
         UPDATE users SET name = 'Bob 2' WHERE id = '2';",
    )
    .unwrap();
    let mut stream = conn.delta_import(wm.as_deref()).unwrap();
    let mut names = Vec::new();
    while let Some(b) = stream.next_batch().unwrap() {
        names.extend(
            b.into_iter()
                .map(|i| i.unwrap())
                .map(|o| (o.anchor, o.attributes.get("name").map(Value::to_text))),
        );
    }
    assert!(stream.complete(), "the stream holds every object");
    let wm = stream.watermark();
    assert_eq!(wm.as_deref(), Some("{\"seq\":1}"));
    names.sort();
    assert_eq!(
        names,
        [
            ("1".to_owned(), Some("Ann".to_owned())),
            ("2".to_owned(), Some("Bob 2".to_owned())),
            ("3".to_owned(), Some("Cy".to_owned())),
        ]
    );
    drop(stream);
    // The next delta is a delta again.
    db.execute_batch("UPDATE users SET name = 'Cy 2' WHERE id = '3';")
        .unwrap();
    let mut stream = conn.delta_import(wm.as_deref()).unwrap();
    let mut got = Vec::new();
    while let Some(b) = stream.next_batch().unwrap() {
        got.extend(b.into_iter().map(|i| i.unwrap().anchor));
    }
    assert!(!stream.complete());
    assert_eq!(got, ["3"]);
}

#[test]
fn a_column_delta_should_return_rows_changed_after_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, updated_at TEXT);",
    );
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO users VALUES ('1', 'Ann', '2024-01-01T10:00:00Z'), ('2', 'Bob', '2024-01-02T10:00:00Z');",
    )
    .unwrap();
    let s = json!({"path": "hr.db", "table": "users", "delta": {"kind": "column", "column": "updated_at"}});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (items, wm) = drain(conn.full_import(None).unwrap());
    assert!(
        !items.concat()[0]
            .as_ref()
            .unwrap()
            .attributes
            .contains_key("updated_at")
    );
    assert_eq!(wm.as_deref(), Some("{\"column\":\"2024-01-02T10:00:00Z\"}"));
    db.execute_batch(
        "UPDATE users SET name = 'Ann 2', updated_at = '2024-01-03T00:00:00Z' WHERE id = '1';",
    )
    .unwrap();
    let (items, wm2) = drain(conn.delta_import(wm.as_deref()).unwrap());
    let anchors: Vec<String> = items
        .concat()
        .into_iter()
        .map(|i| i.unwrap().anchor)
        .collect();
    assert_eq!(anchors, vec!["1"]);
    assert_eq!(
        wm2.as_deref(),
        Some("{\"column\":\"2024-01-03T00:00:00Z\"}")
    );
}

/// (anchor, location) of each `duplicate-anchor` error of `items`, the
/// detail of the first, and the anchors read.
fn repeats(items: &[ImportItem]) -> (Vec<(String, String)>, String, Vec<String>) {
    let dups: Vec<_> = items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .filter(|e| e.error_type == "duplicate-anchor")
        .collect();
    let at = dups
        .iter()
        .map(|e| (e.anchor.clone().unwrap_or_default(), e.location.clone()))
        .collect();
    let detail = dups.first().map(|e| e.detail.clone()).unwrap_or_default();
    let read = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|o| o.anchor.clone())
        .collect();
    (at, detail, read)
}

fn rowid(anchor: &str, rowid: u32) -> (String, String) {
    (anchor.to_owned(), format!("table users rowid {rowid}"))
}

/// Every way the import reads rows meets an anchor on two rows the same
/// way: an error per row naming both, neither read. A column delta that
/// reads one of them (the other unchanged) does too, and one that reads
/// neither does not look at them.
#[test]
fn a_repeated_anchor_should_be_read_from_no_row_by_a_scan_a_delta_or_a_look_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE users (id TEXT, name TEXT, updated_at INTEGER);",
    );
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO users (rowid, id, name, updated_at) VALUES
           (1, 'E1', 'Old Ann', 1), (2, 'E2', 'Bob', 1), (3, 'E1', 'Ann', 1);",
    )
    .unwrap();
    let delta = json!({"kind": "column", "column": "updated_at"});
    let s = json!({"path": "hr.db", "table": "users", "delta": delta});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (batches, wm) = drain(conn.full_import(None).unwrap());
    let (at, detail, read) = repeats(&batches.concat());
    assert_eq!(at, [rowid("E1", 1), rowid("E1", 3)]);
    assert_eq!(
        detail,
        "anchor \"E1\" is on rowids 1 and 3 of table users: neither is read; the object is \
         kept as it was until one is removed"
    );
    assert_eq!(read, ["E2"]);

    db.execute_batch("UPDATE users SET name = 'Ann 2', updated_at = 2 WHERE rowid = 3;")
        .unwrap();
    let (batches, wm) = drain(conn.delta_import(wm.as_deref()).unwrap());
    let (at, detail, read) = repeats(&batches.concat());
    assert_eq!((at, read.len()), (vec![rowid("E1", 3)], 0));
    assert!(detail.contains("rowids 1 and 3"), "{detail}");
    db.execute_batch("UPDATE users SET name = 'Bob 2', updated_at = 3 WHERE id = 'E2';")
        .unwrap();
    let (batches, _) = drain(conn.delta_import(wm.as_deref()).unwrap());
    assert_eq!(repeats(&batches.concat()).2, ["E2"]);

    let (batches, _) = drain(conn.look_up(vec!["E1".into(), "E2".into()]).unwrap());
    let (at, _, read) = repeats(&batches.concat());
    assert_eq!(
        (at, read),
        (vec![rowid("E1", 1), rowid("E1", 3)], vec!["E2".to_owned()])
    );
}

/// A changelog delta reads an anchor's rows by anchor: two rows are an
/// error each, neither read.
#[test]
fn a_changelog_delta_should_read_no_row_of_an_anchor_on_two_rows() {
    let dir = tempfile::tempdir().unwrap();
    let schema = CHANGELOG_SCHEMA.replace("id TEXT PRIMARY KEY", "id TEXT");
    let path = database(dir.path(), &schema);
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO users (rowid, id, name) VALUES (1, '1', 'Ann'), (2, '2', 'Bob');",
    )
    .unwrap();
    let delta = json!({"kind": "changelog", "table": "users_changelog", "sequence_column": "seq"});
    let s = json!({"path": "hr.db", "table": "users", "delta": delta});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (_, wm) = drain(conn.full_import(None).unwrap());
    db.execute_batch(
        "INSERT INTO users (rowid, id, name) VALUES (3, '1', 'Old Ann');
         UPDATE users SET name = 'Bob 2' WHERE id = '2';",
    )
    .unwrap();
    let (batches, _) = drain(conn.delta_import(wm.as_deref()).unwrap());
    let (at, detail, read) = repeats(&batches.concat());
    assert_eq!(
        (at, read),
        (vec![rowid("1", 1), rowid("1", 3)], vec!["2".to_owned()])
    );
    assert!(detail.contains("rowids 1 and 3 of table users"), "{detail}");
}

/// Anchors repeat as the engine knows them: an INTEGER 7 and a TEXT '7'
/// in an untyped column are one anchor, `e1` and `E1` in a NOCASE column
/// two. A WITHOUT ROWID table counts its rows.
#[test]
fn repeats_should_be_the_anchors_the_engine_knows_whatever_the_column_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), "CREATE TABLE users (id, name);");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "INSERT INTO users (rowid, id, name) VALUES (1, 7, 'A'), (2, '7', 'B'), (3, 8, 'C');",
        )
        .unwrap();
    let s = json!({"path": "hr.db", "table": "users"});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (at, _, read) = repeats(&drain(conn.full_import(None).unwrap()).0.concat());
    assert_eq!(
        (at, read),
        (vec![rowid("7", 1), rowid("7", 2)], vec!["8".to_owned()])
    );

    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE users (id TEXT COLLATE NOCASE, name TEXT);
         CREATE TABLE keyed (k INTEGER PRIMARY KEY, id TEXT, name TEXT) WITHOUT ROWID;",
    );
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "INSERT INTO users (id, name) VALUES ('e1', 'A'), ('E1', 'B');
             INSERT INTO keyed VALUES (1, 'x', 'A'), (2, 'x', 'B'), (3, 'y', 'C');",
        )
        .unwrap();
    let s = json!({"path": "hr.db", "table": "users"});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (at, _, read) = repeats(&drain(conn.full_import(None).unwrap()).0.concat());
    assert_eq!(
        (at.len(), read),
        (0, vec!["e1".to_owned(), "E1".to_owned()])
    );
    let s = json!({"path": "hr.db", "table": "keyed", "columns": ["id", "name"]});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (at, detail, read) = repeats(&drain(conn.full_import(None).unwrap()).0.concat());
    assert_eq!((at.len(), read), (2, vec!["y".to_owned()]));
    assert!(
        detail.contains("is on 2 rows of table keyed: neither"),
        "{detail}"
    );
}

/// The review's case: an untyped anchor column holding INTEGER 7, then a
/// row holding TEXT '7' written by rowid -1 (the changelog holds the
/// integer). Every read by anchor (changelog delta, column delta,
/// look_up of either form's text) sees both rows as one anchor, as the
/// full import does, and reads neither: Mallory's values never reach
/// anchor 7. A TEXT '07' is another anchor, and so is `E1` of `e1` in
/// a NOCASE column. (That an index on the column
/// still serves these reads: `import::tests`.)
#[test]
fn a_read_by_anchor_should_see_every_row_of_an_anchor_whatever_its_storage_class() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE hr (id, name TEXT, status TEXT, title TEXT, updated_at INTEGER);
         CREATE INDEX hr_id ON hr (id);
         CREATE TABLE hr_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id);
         CREATE TRIGGER hr_ai AFTER INSERT ON hr BEGIN INSERT INTO hr_log(id) VALUES (new.id); END;
         CREATE TRIGGER hr_au AFTER UPDATE ON hr BEGIN INSERT INTO hr_log(id) VALUES (new.id); END;",
    );
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO hr (rowid, id, name, status, title, updated_at)
           VALUES (1, 7, 'Seven', 'active', 'Clerk', 1), (2, '07', 'Oh Seven', 'active', 'Clerk', 1);",
    )
    .unwrap();
    let hr_row = |anchor: &str, rowid: i32| (anchor.to_owned(), format!("table hr rowid {rowid}"));
    let changelog = json!({"kind": "changelog", "table": "hr_log", "sequence_column": "seq",
                           "anchor_column": "id"});
    let s = json!({"path": "hr.db", "table": "hr", "delta": changelog});
    let mut by_log = build(&SqliteFactory, dir.path(), vec![person()], s);
    let column = json!({"kind": "column", "column": "updated_at"});
    let s = json!({"path": "hr.db", "table": "hr", "delta": column});
    let mut by_column = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (batches, log_wm) = drain(by_log.full_import(None).unwrap());
    assert_eq!(repeats(&batches.concat()).2, ["7", "07"]);
    let (_, column_wm) = drain(by_column.full_import(None).unwrap());
    let (batches, _) = drain(by_log.look_up(vec!["7".into(), "07".into()]).unwrap());
    assert_eq!(repeats(&batches.concat()).2, ["7", "07"]);

    db.execute_batch(
        "INSERT INTO hr (rowid, id, name, status, title, updated_at)
           VALUES (-1, '7', 'Mallory', 'active', 'CEO', 2);
         UPDATE hr SET title = 'Senior Clerk' WHERE rowid = 1;",
    )
    .unwrap();
    let both = vec![hr_row("7", -1), hr_row("7", 1)];
    let (batches, _) = drain(by_log.full_import(None).unwrap());
    let (at, detail, read) = repeats(&batches.concat());
    assert_eq!((&at, read), (&both, vec!["07".to_owned()]));
    assert!(
        detail.contains("rowids -1 and 1 of table hr: neither is read"),
        "{detail}"
    );

    let (batches, _) = drain(by_log.delta_import(log_wm.as_deref()).unwrap());
    let (at, detail, read) = repeats(&batches.concat());
    assert_eq!((&at, read), (&both, Vec::<String>::new()), "{batches:?}");
    assert!(
        detail.contains("rowids -1 and 1 of table hr: neither is read"),
        "{detail}"
    );

    let (batches, _) = drain(by_column.delta_import(column_wm.as_deref()).unwrap());
    let (at, detail, read) = repeats(&batches.concat());
    assert_eq!((at, read), (vec![hr_row("7", -1)], vec![]), "{batches:?}");
    assert!(detail.contains("rowids -1 and 1 of table hr"), "{detail}");

    let (batches, _) = drain(by_log.look_up(vec!["7".into(), "07".into()]).unwrap());
    let (at, _, read) = repeats(&batches.concat());
    assert_eq!((&at, read), (&both, vec!["07".to_owned()]));

    // Text is compared exactly, whatever the column's collation.
    db.execute_batch(
        "CREATE TABLE names (id TEXT COLLATE NOCASE, name TEXT);
         INSERT INTO names VALUES ('e1', 'A'), ('E1', 'B');",
    )
    .unwrap();
    let s = json!({"path": "hr.db", "table": "names"});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let (batches, _) = drain(conn.look_up(vec!["e1".into(), "E1".into()]).unwrap());
    let (at, _, read) = repeats(&batches.concat());
    assert_eq!(
        (at.len(), read),
        (0, vec!["e1".to_owned(), "E1".to_owned()])
    );
}

#[test]
fn a_locked_database_should_stop_the_export_as_deadlocked() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), PLAIN_SCHEMA);
    let s = json!({"path": "hr.db", "table": "users", "busy_timeout_ms": 10});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let mut session = conn.begin_export().unwrap();
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = session.apply(&[add("1", &[])]).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Deadlocked, "{}", err.message);
    locker.execute_batch("ROLLBACK").unwrap();
    let outcomes = session.apply(&[add("1", &[])]).unwrap();
    assert_eq!(
        outcomes,
        vec![ExportOutcome::Applied { anchor: None }],
        "the next batch works again"
    );
}

#[test]
fn a_missing_database_or_table_should_stop_the_step_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = json!({"path": "missing.db", "table": "users"});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let err = conn.full_import(None).err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::ServerDown);
    assert!(
        !dir.path().join("missing.db").exists(),
        "the database is never created"
    );
    database(dir.path(), PLAIN_SCHEMA);
    let mut conn = build(
        &SqliteFactory,
        dir.path(),
        vec![person()],
        json!({"path": "hr.db", "table": "people"}),
    );
    let err = conn.full_import(None).err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::Configuration);
    assert!(
        err.message.contains("table `people` does not exist"),
        "{}",
        err.message
    );
}

#[test]
fn sqlite_validation_should_name_every_bad_setting() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(json!({"path": "hr.db", "tabel": "users", "delta": {"kind": "trigger"}}));
    let errs = SqliteFactory
        .validate(&s, &ctx(dir.path(), vec![person()]))
        .unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["table", "tabel", "delta"]);
    assert!(
        errs[1]
            .help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `table`?")
    );
    assert!(errs[2].message.contains("trigger"), "{}", errs[1].message);
}

#[test]
fn create_table_should_create_the_database_and_table_then_export_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = json!({"path": "new/app.db", "table": "people", "create_table": true, "columns": ["id", "name"]});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[add("1", &[("name", Value::from("Ada"))])])
        .unwrap();
    assert_eq!(outcomes, vec![ExportOutcome::Applied { anchor: None }]);
    session.commit().unwrap();
    let db = Connection::open(dir.path().join("new/app.db")).unwrap();
    let name: String = db
        .query_row("SELECT name FROM people WHERE id = '1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "Ada");
}

/// A table made by `create_table` holds a DN once: a second account given
/// a user name another has is refused, as a directory refuses it
/// (references by DN name one row; a black-box review saw two).
#[test]
fn create_table_should_make_the_dn_column_unique() {
    let dir = tempfile::tempdir().unwrap();
    let s = json!({"path": "app.db", "table": "people", "create_table": true, "columns": ["id", "name"]});
    let mut t = person();
    t.dn = Some("name".into());
    let mut conn = build(&SqliteFactory, dir.path(), vec![t], s);
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[
            add("1", &[("name", Value::from("ann"))]),
            add("2", &[("name", Value::from("ann"))]),
            add("3", &[("name", Value::from("bob"))]),
        ])
        .unwrap();
    session.commit().unwrap();
    assert_eq!(outcomes[0], ExportOutcome::Applied { anchor: None });
    assert_eq!(
        failed_type(&outcomes[1]),
        Some("constraint-violation"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], ExportOutcome::Applied { anchor: None });
}

#[test]
fn create_table_without_columns_should_be_a_setting_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(json!({"path": "app.db", "table": "people", "create_table": true}));
    let errs = SqliteFactory
        .validate(&s, &ctx(dir.path(), vec![person()]))
        .unwrap_err();
    assert_eq!(errs[0].key, "create_table");
}

#[test]
fn create_table_should_declare_the_column_types_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let s = json!({"path": "app.db", "table": "people", "create_table": true,
        "columns": ["id", "active", "groups", "note"],
        "column_types": {"active": "boolean", "groups": "json"}});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let groups = Value::Multi(vec!["b".into(), "a".into()]);
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[add(
            "1",
            &[("active", Value::Boolean(true)), ("groups", groups.clone())],
        )])
        .unwrap();
    assert_eq!(outcomes, vec![ExportOutcome::Applied { anchor: None }]);
    session.commit().unwrap();
    let db = Connection::open(dir.path().join("app.db")).unwrap();
    let declared: Vec<(String, String)> = db
        .prepare("SELECT name, type FROM pragma_table_info('people')")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let declared: Vec<(&str, &str)> = declared
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        declared,
        [
            ("id", "TEXT"),
            ("active", "BOOLEAN"),
            ("groups", "JSON"),
            ("note", "")
        ]
    );
    let items = crate::common::import_all(&mut *conn);
    let obj = items[0].as_ref().unwrap();
    assert_eq!(obj.attributes["active"], Value::Boolean(true));
    assert_eq!(obj.attributes["groups"], groups);
}

#[test]
fn column_types_should_name_columns_the_ma_handles_and_not_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(json!({"path": "app.db", "table": "people",
        "column_types": {"id": "integer"}}));
    let errs = SqliteFactory
        .validate(&s, &ctx(dir.path(), vec![person()]))
        .unwrap_err();
    assert_eq!(errs[0].key, "column_types");
    assert!(errs[0].message.contains("anchor"), "{}", errs[0].message);
    let s = settings(json!({"path": "app.db", "table": "people",
        "column_types": {"active": "bool"}}));
    let errs = SqliteFactory
        .validate(&s, &ctx(dir.path(), vec![person()]))
        .unwrap_err();
    assert_eq!(errs[0].key, "column_types");
    database(
        dir.path(),
        "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT);",
    );
    let mut conn = build(
        &SqliteFactory,
        dir.path(),
        vec![person()],
        json!({"path": "hr.db", "table": "people", "column_types": {"nmae": "text"}}),
    );
    let err = conn.full_import(None).err().unwrap();
    assert!(err.message.contains("`nmae`"), "{}", err.message);
}

/// Every kind of bad row in one import: each is an error of its kind, the
/// rest is imported, and a row that fails for another reason than its
/// anchor names its object (a full import then keeps that object). Two
/// rows with one anchor are both errors naming both rows: neither is read.
#[test]
fn each_bad_row_should_be_an_error_and_the_rest_of_the_table_imported() {
    let dir = tempfile::tempdir().unwrap();
    // No primary key: the table itself allows a missing or repeated id.
    let path = database(dir.path(), "CREATE TABLE users (id TEXT, name TEXT);");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "INSERT INTO users (rowid, id, name) VALUES
               (1, '1', 'Ann'),
               (2, NULL, 'No id'),
               (3, '', 'Empty id'),
               (4, '3', CAST(X'43FF' AS TEXT)),
               (5, X'0102', 'Binary id'),
               (6, '1', 'Again'),
               (7, '4', 'Dee');",
        )
        .unwrap();
    let mut conn = build(
        &SqliteFactory,
        dir.path(),
        vec![person()],
        json!({"path": "hr.db", "table": "users"}),
    );
    let (batches, _) = drain(conn.full_import(None).unwrap());
    let items: Vec<_> = batches.into_iter().flatten().collect();
    let ok: Vec<(&str, Value)> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|o| (o.anchor.as_str(), o.attributes["name"].clone()))
        .collect();
    assert_eq!(ok, [("4", Value::from("Dee"))]);
    let errors: Vec<(&str, Option<&str>)> = items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| (e.error_type.as_str(), e.anchor.as_deref()))
        .collect();
    assert_eq!(
        errors,
        [
            ("duplicate-anchor", Some("1")),
            ("missing-anchor", None),
            ("missing-anchor", None),
            ("invalid-utf8", Some("3")),
            ("invalid-anchor", None),
            ("duplicate-anchor", Some("1")),
        ]
    );
    let dup = items[5].as_ref().unwrap_err();
    assert_eq!(
        (dup.location.as_str(), dup.detail.as_str()),
        (
            "table users rowid 6",
            "anchor \"1\" is on rowids 1 and 6 of table users: neither is read; the object is \
             kept as it was until one is removed"
        )
    );
    let utf8 = items[3].as_ref().unwrap_err();
    assert!(utf8.detail.contains("column `name`"), "{}", utf8.detail);
}

#[test]
fn create_table_should_make_the_object_type_column_once_when_columns_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = json!({"path": "app.db", "table": "objs", "create_table": true,
        "columns": ["id", "name", "kind"], "object_type_column": "kind"});
    let mut conn = build(&SqliteFactory, dir.path(), vec![person()], s);
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[add("1", &[("name", Value::from("Ada"))])])
        .unwrap();
    assert_eq!(outcomes, vec![ExportOutcome::Applied { anchor: None }]);
    session.commit().unwrap();
    let db = Connection::open(dir.path().join("app.db")).unwrap();
    let (name, kind): (String, String) = db
        .query_row("SELECT name, kind FROM objs WHERE id = '1'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((name.as_str(), kind.as_str()), ("Ada", "person"));
}
