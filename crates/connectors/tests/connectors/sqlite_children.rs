//! Multi-valued attributes in child tables (`child_tables`), against real
//! SQLite files: the compliance suite with the typed system's lists in
//! child tables, import of parents with none, one or many rows, export as
//! differences (a one-value change writes one row, counted by audit
//! triggers), replays, deletes and removals, a delta through a changelog
//! fed by the child table's triggers, `create_table`, the schema and the
//! settings' errors.

use super::{changelog_target_with, database};
use crate::common::{build, ctx, drain, person, settings};
use autosync_connector::compliance::ComplianceTarget;
use autosync_connector::{
    Connector, ConnectorErrorKind, ConnectorFactory, ExportChange, ExportOutcome, ImportChange,
    ImportedObject, SchemaLookup,
};
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::{AttrChanges, ExportKind, ObjectTypeDef, Value};
use rusqlite::Connection;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use tempfile::TempDir;

/// Groups and their members, one row per member, with the changelog the
/// triggers of both tables fill with the group's anchor.
const GROUPS_SCHEMA: &str = "
CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL, UNIQUE (group_id, member));
CREATE TABLE groups_changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL);
CREATE TRIGGER groups_ai AFTER INSERT ON groups BEGIN INSERT INTO groups_changelog(id) VALUES (NEW.id); END;
CREATE TRIGGER groups_au AFTER UPDATE ON groups BEGIN INSERT INTO groups_changelog(id) VALUES (NEW.id); END;
CREATE TRIGGER groups_ad AFTER DELETE ON groups BEGIN INSERT INTO groups_changelog(id) VALUES (OLD.id); END;
CREATE TRIGGER group_members_ai AFTER INSERT ON group_members BEGIN INSERT INTO groups_changelog(id) VALUES (NEW.group_id); END;
CREATE TRIGGER group_members_au AFTER UPDATE ON group_members BEGIN
  INSERT INTO groups_changelog(id) VALUES (OLD.group_id);
  INSERT INTO groups_changelog(id) VALUES (NEW.group_id);
END;
CREATE TRIGGER group_members_ad AFTER DELETE ON group_members BEGIN INSERT INTO groups_changelog(id) VALUES (OLD.group_id); END;
";

/// What the audit triggers count: every row written to either table.
const AUDIT: &str = "
CREATE TABLE audit (tbl TEXT, op TEXT);
CREATE TRIGGER audit_gi AFTER INSERT ON groups BEGIN INSERT INTO audit VALUES ('groups', 'I'); END;
CREATE TRIGGER audit_gu AFTER UPDATE ON groups BEGIN INSERT INTO audit VALUES ('groups', 'U'); END;
CREATE TRIGGER audit_gd AFTER DELETE ON groups BEGIN INSERT INTO audit VALUES ('groups', 'D'); END;
CREATE TRIGGER audit_mi AFTER INSERT ON group_members BEGIN INSERT INTO audit VALUES ('group_members', 'I'); END;
CREATE TRIGGER audit_mu AFTER UPDATE ON group_members BEGIN INSERT INTO audit VALUES ('group_members', 'U'); END;
CREATE TRIGGER audit_md AFTER DELETE ON group_members BEGIN INSERT INTO audit VALUES ('group_members', 'D'); END;
";

fn group() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "group".into(),
        ..person()
    }
}

fn members_setting() -> serde_json::Value {
    json!({"members": {"table": "group_members", "key": "group_id", "value": "member"}})
}

fn groups(dir: &Path, extra: serde_json::Value) -> Box<dyn Connector> {
    let mut s =
        settings(json!({"path": "hr.db", "table": "groups", "child_tables": members_setting()}));
    s.extend(settings(extra));
    SqliteFactory
        .build(&s, &ctx(dir, vec![group()]))
        .unwrap_or_else(|e| panic!("build failed: {e}"))
}

fn with_changelog() -> serde_json::Value {
    json!({"delta": {"kind": "changelog", "table": "groups_changelog", "sequence_column": "seq"}})
}

fn texts(vs: &[&str]) -> Value {
    Value::Multi(vs.iter().map(|v| Value::from(*v)).collect())
}

fn objects(conn: &mut dyn Connector) -> BTreeMap<String, ImportedObject> {
    crate::common::import_all(conn)
        .into_iter()
        .map(|i| i.unwrap())
        .map(|o| (o.anchor.clone(), o))
        .collect()
}

fn group_change(id: &str, kind: ExportKind, changes: &[(&str, Option<Value>)]) -> ExportChange {
    ExportChange {
        values: Default::default(),
        object_type: "group".into(),
        anchor: id.into(),
        dn: id.into(),
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

/// The members of `id` in the table, sorted.
fn members(db: &Connection, id: &str) -> Vec<String> {
    db.prepare("SELECT member FROM group_members WHERE group_id = ?1 ORDER BY member")
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The rows the audit triggers counted since the last call, per table and
/// operation, then forget them.
fn audited(db: &Connection) -> Vec<(String, String, i64)> {
    let counted = db
        .prepare("SELECT tbl, op, count(*) FROM audit GROUP BY tbl, op ORDER BY tbl, op")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    db.execute_batch("DELETE FROM audit").unwrap();
    counted
}

fn row(tbl: &str, op: &str, n: i64) -> (String, String, i64) {
    (tbl.to_owned(), op.to_owned(), n)
}

// ---------------------------------------------------------------------------
// The compliance suite.

/// The typed table with its three lists in child tables, each value column
/// of its type.
const TYPED_CHILD_SCHEMA: &str = r#"
CREATE TABLE typed (
  "id" TEXT PRIMARY KEY, "text" TEXT, "unicode" VARCHAR(200), "number_like_text" TEXT,
  "leading_zero_id" TEXT, "integer" INTEGER, "integer_in_text" TEXT,
  "boolean_true" BOOLEAN, "boolean_false" BOOL, "binary" BLOB
);
CREATE TABLE typed_multi_text (id TEXT NOT NULL, v TEXT NOT NULL, UNIQUE (id, v));
CREATE TABLE typed_multi_integer (id TEXT NOT NULL, v INTEGER NOT NULL, UNIQUE (id, v));
CREATE TABLE typed_empty_multi (owner TEXT NOT NULL, value TEXT NOT NULL);
"#;

/// The users of the changelog target with a child table of groups (its
/// triggers write the user's anchor into the changelog), and the typed
/// system's lists in child tables.
fn child_target() -> (TempDir, ComplianceTarget) {
    let children = json!({"child_tables": {
        "multi_text": {"table": "typed_multi_text", "key": "id", "value": "v"},
        "multi_integer": {"table": "typed_multi_integer", "key": "id", "value": "v"},
        "empty_multi": {"table": "typed_empty_multi", "key": "owner", "value": "value"},
    }});
    let users_children = "
CREATE TABLE user_groups (user_id TEXT NOT NULL, grp TEXT NOT NULL, UNIQUE (user_id, grp));
CREATE TRIGGER user_groups_ai AFTER INSERT ON user_groups BEGIN INSERT INTO users_changelog(id, op) VALUES (NEW.user_id, 'U'); END;
CREATE TRIGGER user_groups_ad AFTER DELETE ON user_groups BEGIN INSERT INTO users_changelog(id, op) VALUES (OLD.user_id, 'U'); END;
";
    let groups = json!({"child_tables": {"groups": {"table": "user_groups", "key": "user_id", "value": "grp"}}});
    changelog_target_with(users_children, groups, TYPED_CHILD_SCHEMA, children)
}

crate::common::compliance_suite!(with_child_tables, child_target);

// ---------------------------------------------------------------------------
// Import.

#[test]
fn import_should_give_each_parent_its_child_rows_as_one_multi_valued_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), GROUPS_SCHEMA);
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "INSERT INTO groups VALUES ('g0', 'none'), ('g1', 'one'), ('g2', 'many'), ('g3', 'one too');
             INSERT INTO group_members VALUES ('g2', 'u3'), ('g1', 'u1'), ('g2', 'u1'), ('g2', 'u2'), ('g3', 'u9'),
                                              ('orphan', 'u5');",
        )
        .unwrap();
    // Batches of two: the child rows of each batch come from one query.
    let mut conn = groups(dir.path(), json!({"batch_size": 2}));
    let (batches, _) = drain(conn.full_import(None).unwrap());
    assert_eq!(batches.len(), 2);
    let got: Vec<(String, Option<Value>, Value)> = batches
        .concat()
        .into_iter()
        .map(|i| i.unwrap())
        .map(|o| {
            (
                o.anchor.clone(),
                o.attributes.get("members").cloned(),
                o.attributes["name"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("g0".into(), None, "none".into()),
            ("g1".into(), Some(texts(&["u1"])), "one".into()),
            ("g2".into(), Some(texts(&["u1", "u2", "u3"])), "many".into()),
            ("g3".into(), Some(texts(&["u9"])), "one too".into()),
        ],
        "no rows: no attribute; one row: a list of one; values ordered by value; orphan rows ignored"
    );
}

#[test]
fn child_values_should_be_typed_by_the_value_column_and_keys_match_integer_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE group_members (group_id INTEGER NOT NULL, member INTEGER NOT NULL);
         CREATE TABLE group_flags (group_id TEXT NOT NULL, flag);
         INSERT INTO groups VALUES (7, 'seven'), (8, 'eight');
         INSERT INTO group_members VALUES (7, 30), (7, 4), (8, 1);
         INSERT INTO group_flags VALUES ('7', 1), ('7', 0);",
    );
    let children = json!({
        "members": {"table": "group_members", "key": "group_id", "value": "member"},
        "flags": {"table": "group_flags", "key": "group_id", "value": "flag"},
    });
    let mut conn = groups(
        dir.path(),
        json!({"child_tables": children, "column_types": {"flags": "boolean"}}),
    );
    let got = objects(&mut *conn);
    assert_eq!(
        got["7"].attributes["members"],
        Value::Multi(vec![Value::Integer(4), Value::Integer(30)])
    );
    assert_eq!(
        got["7"].attributes["flags"],
        Value::Multi(vec![Value::Boolean(false), Value::Boolean(true)]),
        "column_types names the attribute for its value column"
    );
    assert_eq!(
        got["8"].attributes["members"],
        Value::Multi(vec![Value::Integer(1)])
    );
    assert!(!got["8"].attributes.contains_key("flags"));
    // Exported integers go back as integers, keyed by the integer anchor.
    let outcomes = export(
        &mut *conn,
        &[group_change(
            "8",
            ExportKind::Update,
            &[("members", Some(Value::Multi(vec![Value::Integer(2)])))],
        )],
    );
    applied(&outcomes);
    let db = Connection::open(&path).unwrap();
    let rows: Vec<(i64, i64)> = db
        .prepare("SELECT group_id, member FROM group_members WHERE group_id = 8")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![(8, 2)]);
}

#[test]
fn a_child_value_that_is_not_utf8_should_make_its_object_an_error_and_the_rest_import() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), GROUPS_SCHEMA);
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "INSERT INTO groups VALUES ('g1', 'one'), ('g2', 'two');
             INSERT INTO group_members VALUES ('g1', CAST(X'43FF' AS TEXT)), ('g2', 'u2');",
        )
        .unwrap();
    let mut conn = groups(dir.path(), json!({}));
    let items = crate::common::import_all(&mut *conn);
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(
        (e.error_type.as_str(), e.anchor.as_deref()),
        ("invalid-utf8", Some("g1"))
    );
    assert!(e.detail.contains("`members`"), "{}", e.detail);
    assert_eq!(
        items[1].as_ref().unwrap().attributes["members"],
        texts(&["u2"])
    );
}

// ---------------------------------------------------------------------------
// Export.

#[test]
fn export_should_write_child_rows_as_differences() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), &format!("{GROUPS_SCHEMA}{AUDIT}"));
    let db = Connection::open(&path).unwrap();
    let mut conn = groups(dir.path(), json!({}));

    // An add inserts every row.
    let add_g1 = group_change(
        "g1",
        ExportKind::Add,
        &[
            ("name", Some("one".into())),
            ("members", Some(texts(&["u1", "u2", "u3", "u2", ""]))),
        ],
    );
    applied(&export(&mut *conn, std::slice::from_ref(&add_g1)));
    assert_eq!(members(&db, "g1"), ["u1", "u2", "u3"]);
    assert_eq!(
        audited(&db),
        [row("group_members", "I", 3), row("groups", "I", 1)],
        "repeated and empty values are not rows"
    );

    // The same add again (a replay): nothing new in the child table.
    applied(&export(&mut *conn, std::slice::from_ref(&add_g1)));
    assert_eq!(members(&db, "g1"), ["u1", "u2", "u3"]);
    assert_eq!(audited(&db), [row("groups", "U", 1)]);

    // An update: only the difference.
    let update = group_change(
        "g1",
        ExportKind::Update,
        &[("members", Some(texts(&["u3", "u4", "u1"])))],
    );
    applied(&export(&mut *conn, std::slice::from_ref(&update)));
    assert_eq!(members(&db, "g1"), ["u1", "u3", "u4"]);
    assert_eq!(
        audited(&db),
        [row("group_members", "D", 1), row("group_members", "I", 1)],
        "one value gone, one new; the parent row is not written"
    );
    // The same update again: nothing written.
    applied(&export(&mut *conn, &[update]));
    assert_eq!(audited(&db), []);

    // A single value (not a list) is one row.
    applied(&export(
        &mut *conn,
        &[group_change(
            "g1",
            ExportKind::Update,
            &[("members", Some("u4".into()))],
        )],
    ));
    assert_eq!(members(&db, "g1"), ["u4"]);
    audited(&db);

    // Removing the attribute deletes its rows; so does an empty list.
    applied(&export(
        &mut *conn,
        &[
            group_change(
                "g2",
                ExportKind::Add,
                &[("members", Some(texts(&["u1", "u2"])))],
            ),
            group_change("g1", ExportKind::Update, &[("members", None)]),
            group_change(
                "g2",
                ExportKind::Update,
                &[("members", Some(Value::Multi(Vec::new())))],
            ),
        ],
    ));
    assert!(members(&db, "g1").is_empty());
    assert!(members(&db, "g2").is_empty());
    audited(&db);

    // A delete deletes the parent's rows with the parent.
    applied(&export(
        &mut *conn,
        &[group_change(
            "g3",
            ExportKind::Add,
            &[("members", Some(texts(&["u1", "u2"])))],
        )],
    ));
    applied(&export(
        &mut *conn,
        &[group_change("g3", ExportKind::Delete, &[])],
    ));
    let left: i64 = db
        .query_row("SELECT count(*) FROM group_members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    let parents: i64 = db
        .query_row("SELECT count(*) FROM groups WHERE id = 'g3'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(parents, 0);

    // What was exported reads back.
    applied(&export(
        &mut *conn,
        &[group_change(
            "g4",
            ExportKind::Add,
            &[("members", Some(texts(&["b", "a"])))],
        )],
    ));
    assert_eq!(
        objects(&mut *conn)["g4"].attributes["members"],
        texts(&["a", "b"])
    );
}

#[test]
fn a_one_member_change_of_a_large_group_should_write_one_child_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), &format!("{GROUPS_SCHEMA}{AUDIT}"));
    let db = Connection::open(&path).unwrap();
    let n = 20_000;
    db.execute_batch("BEGIN; INSERT INTO groups VALUES ('big', 'big');")
        .unwrap();
    {
        let mut insert = db
            .prepare("INSERT INTO group_members VALUES ('big', ?1)")
            .unwrap();
        for i in 0..n {
            insert.execute([format!("u{i:06}")]).unwrap();
        }
    }
    db.execute_batch("COMMIT; DELETE FROM audit;").unwrap();
    let mut conn = groups(dir.path(), json!({}));
    let list: Vec<Value> = (1..=n).map(|i| Value::from(format!("u{i:06}"))).collect();
    let outcomes = export(
        &mut *conn,
        &[group_change(
            "big",
            ExportKind::Update,
            &[("members", Some(Value::Multi(list.clone())))],
        )],
    );
    applied(&outcomes);
    assert_eq!(
        audited(&db),
        [row("group_members", "D", 1), row("group_members", "I", 1)],
        "u000000 left, u020000 came: two rows written, nothing else"
    );
    // One member added only: one row.
    let mut more = list;
    more.push(Value::from("new"));
    applied(&export(
        &mut *conn,
        &[group_change(
            "big",
            ExportKind::Update,
            &[("members", Some(Value::Multi(more)))],
        )],
    ));
    assert_eq!(audited(&db), [row("group_members", "I", 1)]);
}

#[test]
fn a_replayed_add_should_not_duplicate_rows_in_a_child_table_without_unique() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
         CREATE TABLE group_members (group_id TEXT, member TEXT);",
    );
    let mut conn = groups(dir.path(), json!({}));
    let add = group_change(
        "g1",
        ExportKind::Add,
        &[("members", Some(texts(&["a", "b"])))],
    );
    for _ in 0..3 {
        applied(&export(&mut *conn, std::slice::from_ref(&add)));
    }
    let db = Connection::open(&path).unwrap();
    assert_eq!(members(&db, "g1"), ["a", "b"]);
    // A DeleteAdd replaces the rows.
    let again = ExportChange {
        kind: ExportKind::DeleteAdd,
        ..group_change("g1", ExportKind::Add, &[("members", Some(texts(&["c"])))])
    };
    applied(&export(&mut *conn, &[again.clone(), again]));
    assert_eq!(members(&db, "g1"), ["c"]);
    // Rows left by a parent deleted outside are replaced by an add, not
    // added to.
    db.execute_batch("DELETE FROM groups WHERE id = 'g1'")
        .unwrap();
    applied(&export(
        &mut *conn,
        &[group_change(
            "g1",
            ExportKind::Add,
            &[("members", Some(texts(&["d"])))],
        )],
    ));
    assert_eq!(members(&db, "g1"), ["d"]);
}

#[test]
fn a_child_row_the_database_rejects_should_fail_its_object_with_its_parent_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
         CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL CHECK (member <> 'bad'));",
    );
    let mut conn = groups(dir.path(), json!({}));
    let outcomes = export(
        &mut *conn,
        &[
            group_change(
                "g1",
                ExportKind::Add,
                &[
                    ("name", Some("one".into())),
                    ("members", Some(texts(&["ok", "bad"]))),
                ],
            ),
            group_change("g2", ExportKind::Add, &[("members", Some(texts(&["ok"])))]),
            group_change(
                "g3",
                ExportKind::Update,
                &[("members", Some(texts(&["ok"])))],
            ),
            group_change(
                "g2",
                ExportKind::Update,
                &[("members", Some(Value::Multi(vec![texts(&["nested"])])))],
            ),
        ],
    )
    .into_iter()
    .map(|o| match o {
        ExportOutcome::Failed { error_type, .. } => Some(error_type),
        ExportOutcome::Applied { .. } => None,
    })
    .collect::<Vec<_>>();
    assert_eq!(
        outcomes,
        [
            Some("constraint-violation".to_owned()),
            None,
            Some("object-not-found".to_owned()),
            Some("value-not-representable".to_owned()),
        ]
    );
    let db = Connection::open(&path).unwrap();
    let groups: i64 = db
        .query_row("SELECT count(*) FROM groups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(groups, 1, "g1's parent row went with its failed child row");
    assert!(members(&db, "g1").is_empty());
    assert!(members(&db, "g3").is_empty());
    assert_eq!(members(&db, "g2"), ["ok"]);
}

// ---------------------------------------------------------------------------
// Delta import.

#[test]
fn a_changelog_fed_by_the_child_tables_triggers_should_bring_the_parent_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), GROUPS_SCHEMA);
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO groups VALUES ('g1', 'one'), ('g2', 'two'), ('g3', 'three');
         INSERT INTO group_members VALUES ('g1', 'u1'), ('g2', 'u1');",
    )
    .unwrap();
    let mut conn = groups(dir.path(), with_changelog());
    let (_, wm) = drain(conn.full_import(None).unwrap());
    db.execute_batch(
        "INSERT INTO group_members VALUES ('g1', 'u2');
         DELETE FROM group_members WHERE group_id = 'g2';
         UPDATE group_members SET member = 'u7' WHERE group_id = 'g1' AND member = 'u1';",
    )
    .unwrap();
    let (batches, _) = drain(conn.delta_import(wm.as_deref()).unwrap());
    let got: Vec<(String, ImportChange, Option<Value>)> = batches
        .concat()
        .into_iter()
        .map(|i| i.unwrap())
        .map(|o| (o.anchor, o.change, o.attributes.get("members").cloned()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("g1".into(), ImportChange::Full, Some(texts(&["u2", "u7"]))),
            ("g2".into(), ImportChange::Full, None),
        ],
        "each changed group once, with all its members now; g3 did not change"
    );
    // What the connector exports reaches the changelog the same way.
    let (_, wm) = drain(conn.delta_import(None).unwrap());
    applied(&export(
        &mut *conn,
        &[group_change(
            "g3",
            ExportKind::Update,
            &[("members", Some(texts(&["u3"])))],
        )],
    ));
    let (batches, _) = drain(conn.delta_import(wm.as_deref()).unwrap());
    let got: Vec<String> = batches
        .concat()
        .into_iter()
        .map(|i| i.unwrap().anchor)
        .collect();
    assert_eq!(got, ["g3"]);
}

// ---------------------------------------------------------------------------
// create_table, the schema, the settings.

#[test]
fn create_table_should_create_the_child_tables_with_a_unique_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let s = json!({"path": "new/app.db", "table": "groups", "create_table": true,
        "columns": ["id", "name"], "child_tables": {
            "members": {"table": "group_members", "key": "group_id", "value": "member"},
            "codes": {"table": "group_codes", "key": "gid", "value": "code"}},
        "column_types": {"codes": "integer"}});
    let mut conn = build(&SqliteFactory, dir.path(), vec![group()], s);
    let outcomes = export(
        &mut *conn,
        &[group_change(
            "g1",
            ExportKind::Add,
            &[
                ("members", Some(texts(&["a", "b"]))),
                (
                    "codes",
                    Some(Value::Multi(vec![Value::Integer(2), Value::Integer(10)])),
                ),
            ],
        )],
    );
    applied(&outcomes);
    let db = Connection::open(dir.path().join("new/app.db")).unwrap();
    let declared: Vec<(String, String, i64)> = db
        .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info('group_codes')")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        declared,
        [
            ("gid".to_owned(), "TEXT".to_owned(), 1),
            ("code".to_owned(), "INTEGER".to_owned(), 1)
        ]
    );
    let unique: Vec<String> = db
        .prepare(
            "SELECT ii.name FROM pragma_index_list('group_members') AS il, pragma_index_info(il.name) AS ii WHERE il.\"unique\" = 1 ORDER BY ii.seqno",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(unique, ["group_id", "member"]);
    let duplicate = db.execute("INSERT INTO group_members VALUES ('g1', 'a')", []);
    assert!(duplicate.is_err(), "UNIQUE (key, value)");
    let got = objects(&mut *conn);
    assert_eq!(got["g1"].attributes["members"], texts(&["a", "b"]));
    assert_eq!(
        got["g1"].attributes["codes"],
        Value::Multi(vec![Value::Integer(2), Value::Integer(10)])
    );
}

#[test]
fn the_schema_should_list_child_attributes_and_report_missing_child_tables() {
    let dir = tempfile::tempdir().unwrap();
    database(
        dir.path(),
        "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
         CREATE TABLE group_members (group_id TEXT, member TEXT);",
    );
    let context = ctx(dir.path(), vec![group()]);
    let s =
        settings(json!({"path": "hr.db", "table": "groups", "child_tables": members_setting()}));
    let SchemaLookup::Known(schema) = SqliteFactory.schema(&s, &context) else {
        panic!("the schema should be known")
    };
    assert_eq!(
        schema.object_types["group"].attributes,
        ["id", "name", "members"]
    );
    assert!(schema.problems.is_empty(), "{:?}", schema.problems);

    let s = settings(json!({"path": "hr.db", "table": "groups", "child_tables": {
        "members": {"table": "group_members", "key": "gid", "value": "member"},
        "owners": {"table": "group_owners", "key": "gid", "value": "owner"},
        "name": {"table": "group_names", "key": "gid", "value": "name"}}}));
    let SchemaLookup::Known(schema) = SqliteFactory.schema(&s, &context) else {
        panic!("the schema should be known")
    };
    let problems: Vec<(&str, &str)> = schema
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (
                "child_tables",
                "the key column `gid` is not a column of child table `group_members`"
            ),
            (
                "child_tables",
                "`name` is a column of table `groups` and in child_tables"
            ),
            (
                "child_tables",
                "child table `group_names` (of `name`) does not exist"
            ),
            (
                "child_tables",
                "child table `group_owners` (of `owners`) does not exist"
            ),
        ]
    );
    // With create_table and no database yet: the columns and the children.
    let s = settings(
        json!({"path": "new.db", "table": "groups", "create_table": true,
        "columns": ["id", "name"], "child_tables": members_setting()}),
    );
    let SchemaLookup::Known(schema) = SqliteFactory.schema(&s, &context) else {
        panic!("the schema should be known")
    };
    assert_eq!(
        schema.object_types["group"].attributes,
        ["id", "name", "members"]
    );
}

#[test]
fn a_missing_child_table_or_column_should_stop_the_step_as_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    database(
        dir.path(),
        "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT, members JSON);
         CREATE TABLE group_members (group_id TEXT, member TEXT);",
    );
    for (children, extra, want) in [
        (
            json!({"owners": {"table": "group_owners", "key": "group_id", "value": "owner"}}),
            json!({"columns": ["id", "name"]}),
            "child table `group_owners` (of `owners`) does not exist",
        ),
        (
            members_setting(),
            json!({"columns": ["id", "name"], "child_tables": {"members": {"table": "group_members", "key": "group_id", "value": "who"}}}),
            "child table `group_members` (of `members`) has no value column `who`",
        ),
        (
            members_setting(),
            json!({}),
            "`members` is a column of table `groups` and in child_tables",
        ),
    ] {
        let mut s = json!({"path": "hr.db", "table": "groups", "child_tables": children});
        for (k, v) in settings(extra) {
            s[k] = v;
        }
        let mut conn = build(&SqliteFactory, dir.path(), vec![group()], s);
        let err = conn.full_import(None).err().unwrap();
        assert_eq!(err.kind, ConnectorErrorKind::Configuration);
        assert!(err.message.contains(want), "{}", err.message);
    }
}

#[test]
fn child_tables_validation_should_name_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let typed = ObjectTypeDef {
        dn: Some("dn".into()),
        ..group()
    };
    let s = settings(json!({"path": "hr.db", "table": "groups",
    "columns": ["id", "name", "members"],
    "object_type_column": "kind",
    "delta": {"kind": "changelog", "table": "log", "sequence_column": "seq"},
    "child_tables": {
        "members": {"table": "group_members", "key": "group_id", "value": "member"},
        "id": {"table": "ids", "key": "k", "value": "v"},
        "dn": {"table": "dns", "key": "k", "value": "v"},
        "kind": {"table": "kinds", "key": "k", "value": "v"},
        "self": {"table": "groups", "key": "k", "value": "v"},
        "log": {"table": "log", "key": "k", "value": "v"},
        "same": {"table": "same", "key": "k", "value": "k"},
        "twice": {"table": "group_members", "key": "group_id", "value": "member"},
        "blank": {"table": "", "key": "k", "value": "v"},
    }}));
    let errs = SqliteFactory
        .validate(&s, &ctx(dir.path(), vec![typed]))
        .unwrap_err();
    let messages: Vec<&str> = errs
        .iter()
        .filter(|e| e.key == "child_tables")
        .map(|e| e.message.as_str())
        .collect();
    for want in [
        "`child_tables.blank.table` is empty",
        "`dn` is the DN attribute of object type `group`",
        "`id` is the anchor column",
        "`kind` is the object_type_column",
        "`child_tables.log.table` is `log`, the changelog table",
        "`members` is in `columns` and in `child_tables`",
        "`child_tables.same` has `key` and `value` both `k`",
        "`child_tables.self.table` is `groups`, the table of the objects",
        "`members` and `twice` both use child table `group_members`",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(want)),
            "missing {want:?} in {messages:#?}"
        );
    }
    assert_eq!(messages.len(), 9, "{messages:#?}");
    assert!(
        errs[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("child_tables = {")),
        "{errs:?}"
    );
    // A misspelt key inside is named.
    let s = settings(json!({"path": "hr.db", "table": "groups",
        "child_tables": {"members": {"tabel": "group_members", "key": "group_id", "value": "member"}}}));
    let errs = SqliteFactory
        .validate(&s, &ctx(dir.path(), vec![group()]))
        .unwrap_err();
    assert_eq!(errs[0].key, "child_tables");
    assert!(errs[0].message.contains("tabel"), "{}", errs[0].message);
}

#[test]
fn the_settings_shape_should_describe_child_tables_per_attribute() {
    let shape = SqliteFactory.settings_shape();
    let (_, child) = shape
        .iter()
        .find(|(k, _)| k == "child_tables")
        .expect("child_tables is a setting");
    let autosync_connector::Shape::Map(placeholder, inner) = child else {
        panic!("child_tables is a table of attributes: {child:?}")
    };
    assert_eq!(placeholder, "attribute");
    assert_eq!(inner.keys(), ["table", "key", "value"]);
}

/// Value-level changes of child tables.
#[path = "sqlite_values.rs"]
mod values;

#[test]
fn the_schema_should_report_a_missing_changelog_table_or_column_and_the_import_name_it() {
    let dir = tempfile::tempdir().unwrap();
    database(
        dir.path(),
        "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
         CREATE TABLE group_members (group_id TEXT, member TEXT);
         CREATE TABLE log (seq INTEGER PRIMARY KEY, id TEXT, attr TEXT, value);",
    );
    let context = ctx(dir.path(), vec![group()]);
    let problems = |delta: serde_json::Value| -> Vec<(String, String)> {
        let s = settings(json!({"path": "hr.db", "table": "groups",
            "child_tables": members_setting(), "delta": delta}));
        let SchemaLookup::Known(schema) = SqliteFactory.schema(&s, &context) else {
            panic!("the schema should be known")
        };
        schema
            .problems
            .iter()
            .map(|p| (p.key.clone(), p.message.clone()))
            .collect()
    };
    let good = json!({"kind": "changelog", "table": "log", "sequence_column": "seq",
        "anchor_column": "id", "attribute_column": "attr", "value_column": "value"});
    assert_eq!(problems(good), Vec::<(String, String)>::new());
    assert_eq!(
        problems(json!({"kind": "changelog", "table": "logz", "sequence_column": "seq"})),
        [(
            "delta".to_owned(),
            "the changelog table `logz` does not exist".to_owned()
        )]
    );
    assert_eq!(
        problems(
            json!({"kind": "changelog", "table": "log", "sequence_column": "sq",
            "anchor_column": "gid", "attribute_column": "attr", "value_column": "valu"})
        ),
        [
            (
                "delta".to_owned(),
                "the changelog's sequence_column `sq` is not a column of table `log`".to_owned()
            ),
            (
                "delta".to_owned(),
                "the changelog's anchor_column `gid` is not a column of table `log`".to_owned()
            ),
            (
                "delta".to_owned(),
                "the changelog's value_column `valu` is not a column of table `log`".to_owned()
            ),
        ]
    );
    // The import says the table is missing (not that it lacks a column).
    let mut conn = build(
        &SqliteFactory,
        dir.path(),
        vec![group()],
        json!({"path": "hr.db", "table": "groups", "child_tables": members_setting(),
            "delta": {"kind": "changelog", "table": "logz", "sequence_column": "seq"}}),
    );
    let err = conn.delta_import(None).err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::Configuration);
    assert!(
        err.message
            .contains("the changelog table `logz` does not exist"),
        "{}",
        err.message
    );
}
