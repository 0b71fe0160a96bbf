//! Value-level changes of child tables: a changelog whose rows name the
//! value that changed (`attribute_column`, `value_column`) makes a delta
//! import an `Update` of that value (add when its row is there now,
//! remove when it is not), a main-row change still `Full` and a gone
//! group a `Delete`; exported `values` are one row each (counted by the
//! audit triggers); a group of 100,000 members changes by one value
//! without its other rows being read or written.

use super::*;
use autosync_connector::ImportItem;
use autosync_model::{ValueChanges, ValueDelta};

/// `GROUPS_SCHEMA`'s tables with a changelog whose child-table rows name
/// the member that came or went; the main table's triggers write the
/// anchor alone.
const VALUES_SCHEMA: &str = "
CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL, UNIQUE (group_id, member));
CREATE TABLE groups_changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, attr TEXT, value);
CREATE TRIGGER groups_ai AFTER INSERT ON groups BEGIN INSERT INTO groups_changelog (id) VALUES (NEW.id); END;
CREATE TRIGGER groups_au AFTER UPDATE ON groups BEGIN INSERT INTO groups_changelog (id) VALUES (NEW.id); END;
CREATE TRIGGER groups_ad AFTER DELETE ON groups BEGIN INSERT INTO groups_changelog (id) VALUES (OLD.id); END;
CREATE TRIGGER group_members_ai AFTER INSERT ON group_members BEGIN
  INSERT INTO groups_changelog (id, attr, value) VALUES (NEW.group_id, 'members', NEW.member);
END;
CREATE TRIGGER group_members_au AFTER UPDATE ON group_members BEGIN
  INSERT INTO groups_changelog (id, attr, value) VALUES (OLD.group_id, 'members', OLD.member);
  INSERT INTO groups_changelog (id, attr, value) VALUES (NEW.group_id, 'members', NEW.member);
END;
CREATE TRIGGER group_members_ad AFTER DELETE ON group_members BEGIN
  INSERT INTO groups_changelog (id, attr, value) VALUES (OLD.group_id, 'members', OLD.member);
END;
";

fn value_changelog() -> serde_json::Value {
    json!({"delta": {"kind": "changelog", "table": "groups_changelog", "sequence_column": "seq",
        "attribute_column": "attr", "value_column": "value"}})
}

fn delta(add: &[&str], remove: &[&str]) -> ValueDelta {
    ValueDelta {
        add: add.iter().map(|v| Value::from(*v)).collect(),
        remove: remove.iter().map(|v| Value::from(*v)).collect(),
    }
}

fn members_delta(add: &[&str], remove: &[&str]) -> ValueChanges {
    [("members".to_owned(), delta(add, remove))].into()
}

/// An update of `id` with value-level changes only.
fn values_change(id: &str, values: ValueChanges) -> ExportChange {
    ExportChange {
        values,
        ..group_change(id, ExportKind::Update, &[])
    }
}

/// Every item of a delta import from `wm`, and the new watermark.
fn delta_items(conn: &mut dyn Connector, wm: Option<&str>) -> (Vec<ImportItem>, Option<String>) {
    let (batches, wm) = drain(conn.delta_import(wm).unwrap());
    (batches.concat(), wm)
}

/// A database of `VALUES_SCHEMA` with `setup` run, a connector on it with
/// the value-level changelog, and the watermark of a full import.
fn value_world(setup: &str) -> (TempDir, Connection, Box<dyn Connector>, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), VALUES_SCHEMA);
    let db = Connection::open(&path).unwrap();
    db.execute_batch(setup).unwrap();
    let mut conn = groups(dir.path(), value_changelog());
    let (_, wm) = drain(conn.full_import(None).unwrap());
    (dir, db, conn, wm)
}

// ---------------------------------------------------------------------------
// Delta import.

#[test]
fn a_value_level_changelog_should_make_each_changed_group_an_update_delete_or_whole_object() {
    let (_dir, db, mut conn, wm) = value_world(
        "INSERT INTO groups VALUES ('g1', 'one'), ('g2', 'two'), ('g3', 'three'), ('g4', 'four'),
                                   ('g5', 'five'), ('g6', 'six');
         INSERT INTO group_members VALUES ('g1', 'u1'), ('g2', 'u1'), ('g2', 'u2'), ('g4', 'u1'),
                                          ('g5', 'u1'), ('g6', 'u1'), ('g6', 'u2');",
    );
    db.execute_batch(
        "INSERT INTO group_members VALUES ('g1', 'u9');
         DELETE FROM group_members WHERE group_id = 'g2' AND member = 'u1';
         INSERT INTO group_members VALUES ('g3', 'u8');
         DELETE FROM group_members WHERE group_id = 'g3' AND member = 'u8';
         INSERT INTO group_members VALUES ('g4', 'u4');
         UPDATE groups SET name = 'FOUR' WHERE id = 'g4';
         DELETE FROM group_members WHERE group_id = 'g5';
         DELETE FROM groups WHERE id = 'g5';
         UPDATE group_members SET member = 'u7' WHERE group_id = 'g6' AND member = 'u1';
         INSERT INTO group_members VALUES ('g1', 'u5');
         DELETE FROM group_members WHERE group_id = 'g1' AND member = 'u5';
         INSERT INTO group_members VALUES ('g1', 'u5');
         INSERT INTO groups VALUES ('g7', 'seven');
         INSERT INTO group_members VALUES ('g7', 'u1');",
    )
    .unwrap();
    let (items, wm2) = delta_items(&mut *conn, wm.as_deref());
    let got: Vec<(String, ImportChange, Option<Value>, ValueChanges)> = items
        .into_iter()
        .map(|i| i.unwrap())
        .map(|o| {
            (
                o.anchor,
                o.change,
                o.attributes.get("members").cloned(),
                o.values,
            )
        })
        .collect();
    let update = |id: &str, add: &[&str], remove: &[&str]| {
        (
            id.to_owned(),
            ImportChange::Update,
            None,
            members_delta(add, remove),
        )
    };
    assert_eq!(
        got,
        vec![
            update("g1", &["u5", "u9"], &[]),
            update("g2", &[], &["u1"]),
            update("g3", &[], &["u8"]),
            (
                "g4".into(),
                ImportChange::Full,
                Some(texts(&["u1", "u4"])),
                ValueChanges::new()
            ),
            ("g5".into(), ImportChange::Delete, None, ValueChanges::new()),
            update("g6", &["u7"], &["u1"]),
            (
                "g7".into(),
                ImportChange::Full,
                Some(texts(&["u1"])),
                ValueChanges::new()
            ),
        ],
        "a value added (several rows of one value: its state now), removed, added then removed \
         (removed: it is not there now); a main-row change reads the group whole; a gone group is \
         a delete; a changed row is a value removed and one added; a new group is whole"
    );
    // An update carries nothing but its values (and its anchor and DN).
    let (items, _) = delta_items(&mut *conn, wm.as_deref());
    let g1 = items[0].as_ref().unwrap();
    assert!(g1.attributes.is_empty(), "{:?}", g1.attributes);
    assert_eq!((g1.dn.as_str(), g1.object_type.as_str()), ("g1", "group"));
    // Nothing since: nothing.
    let (items, _) = delta_items(&mut *conn, wm2.as_deref());
    assert!(items.is_empty(), "{items:?}");
}

#[test]
fn changelog_rows_of_one_group_in_different_batches_should_still_make_one_object() {
    let (dir, db, _conn, wm) = value_world(
        "INSERT INTO groups VALUES ('g1', 'one'), ('g2', 'two'), ('g3', 'three');
         INSERT INTO group_members VALUES ('g1', 'u1');",
    );
    // g1's rows far apart, its main row changed last; batches of one.
    db.execute_batch(
        "INSERT INTO group_members VALUES ('g1', 'u2');
         INSERT INTO group_members VALUES ('g2', 'u2');
         INSERT INTO group_members VALUES ('g3', 'u2');
         UPDATE groups SET name = 'ONE' WHERE id = 'g1';",
    )
    .unwrap();
    let mut conn = groups(
        dir.path(),
        json!({"batch_size": 1, "delta": value_changelog()["delta"]}),
    );
    let (batches, _) = drain(conn.delta_import(wm.as_deref()).unwrap());
    assert_eq!(batches.len(), 3);
    let got: Vec<(String, ImportChange)> = batches
        .concat()
        .into_iter()
        .map(|i| i.unwrap())
        .map(|o| (o.anchor, o.change))
        .collect();
    assert_eq!(
        got,
        [
            ("g1".to_owned(), ImportChange::Full),
            ("g2".to_owned(), ImportChange::Update),
            ("g3".to_owned(), ImportChange::Update),
        ]
    );
}

/// A changelog row naming an attribute without a child table (a trigger
/// writing the wrong name) says only that the group changed: it is read
/// whole, not refused (a refusal held the watermark, and every later
/// change of the group with it).
#[test]
fn a_changelog_naming_an_attribute_without_a_child_table_should_read_its_group_whole() {
    let (_dir, db, mut conn, wm) = value_world(
        "INSERT INTO groups VALUES ('g1', 'one'), ('g2', 'two'), ('g3', 'three');
         INSERT INTO group_members VALUES ('g1', 'u1');",
    );
    db.execute_batch(
        "INSERT INTO group_members VALUES ('g1', 'u2');
         INSERT INTO groups_changelog (id, attr, value) VALUES ('g2', 'owners', 'u1');
         INSERT INTO groups_changelog (id, attr, value) VALUES ('g2', 'members', 'u1');
         UPDATE groups SET name = 'two 2' WHERE id = 'g2';
         INSERT INTO groups_changelog (id, attr, value) VALUES ('g3', 'members', NULL);",
    )
    .unwrap();
    let (items, _) = delta_items(&mut *conn, wm.as_deref());
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].as_ref().unwrap().values,
        members_delta(&["u2"], &[])
    );
    let g2 = items[1].as_ref().unwrap();
    assert_eq!((g2.anchor.as_str(), g2.change), ("g2", ImportChange::Full));
    assert_eq!(g2.attributes["name"], Value::from("two 2"));
    // A row naming an attribute but no value: the group is read whole.
    let g3 = items[2].as_ref().unwrap();
    assert_eq!(g3.change, ImportChange::Full);
}

#[test]
fn values_should_be_typed_by_the_value_column_and_found_under_integer_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE group_members (group_id INTEGER NOT NULL, member INTEGER NOT NULL, UNIQUE (group_id, member));
         CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, attr TEXT, value TEXT);
         CREATE TRIGGER m_ai AFTER INSERT ON group_members BEGIN
           INSERT INTO log (id, attr, value) VALUES (NEW.group_id, 'members', NEW.member); END;
         CREATE TRIGGER m_ad AFTER DELETE ON group_members BEGIN
           INSERT INTO log (id, attr, value) VALUES (OLD.group_id, 'members', OLD.member); END;
         INSERT INTO groups VALUES (7, 'seven');
         INSERT INTO group_members VALUES (7, 4);",
    );
    let db = Connection::open(&path).unwrap();
    let mut conn = groups(
        dir.path(),
        json!({"delta": {"kind": "changelog", "table": "log", "sequence_column": "seq",
            "attribute_column": "attr", "value_column": "value"}}),
    );
    let (_, wm) = drain(conn.full_import(None).unwrap());
    // The changelog holds text ('30'); the member column holds integers.
    db.execute_batch(
        "INSERT INTO group_members VALUES (7, 30); DELETE FROM group_members WHERE member = 4;",
    )
    .unwrap();
    let (items, _) = delta_items(&mut *conn, wm.as_deref());
    let o = items[0].as_ref().unwrap();
    assert_eq!((o.anchor.as_str(), &o.change), ("7", &ImportChange::Update));
    assert_eq!(
        o.values["members"],
        ValueDelta {
            add: vec![Value::Integer(30)],
            remove: vec![Value::Integer(4)],
        }
    );
}

// ---------------------------------------------------------------------------
// Settings.

#[test]
fn attribute_and_value_columns_should_go_together_and_exist() {
    let dir = tempfile::tempdir().unwrap();
    let context = ctx(dir.path(), vec![group()]);
    for (extra, want) in [
        (
            json!({"attribute_column": "attr"}),
            "`delta.attribute_column` is set without `delta.value_column`",
        ),
        (
            json!({"value_column": "value"}),
            "`delta.value_column` is set without `delta.attribute_column`",
        ),
        (
            json!({"attribute_column": "attr", "value_column": "attr"}),
            "`delta.attribute_column` and `delta.value_column` are both `attr`",
        ),
        (
            json!({"attribute_column": "", "value_column": "value"}),
            "`delta.attribute_column` is empty",
        ),
    ] {
        let mut delta =
            json!({"kind": "changelog", "table": "groups_changelog", "sequence_column": "seq"});
        for (k, v) in settings(extra) {
            delta[k] = v;
        }
        let s = settings(json!({"path": "hr.db", "table": "groups",
            "child_tables": members_setting(), "delta": delta}));
        let errs = SqliteFactory.validate(&s, &context).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "delta");
        assert!(errs[0].message.starts_with(want), "{}", errs[0].message);
        assert!(
            errs[0]
                .help
                .as_deref()
                .is_some_and(|h| h.contains("value_column")),
            "{errs:?}"
        );
    }
    // A changelog without the columns stops the step as a configuration
    // error naming them.
    database(dir.path(), GROUPS_SCHEMA);
    let mut conn = groups(dir.path(), value_changelog());
    let err = conn.delta_import(None).err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::Configuration);
    assert!(
        err.message
            .contains("changelog table `groups_changelog` has no column `attr`"),
        "{}",
        err.message
    );
}

#[test]
fn value_changes_should_be_a_capability_of_an_ma_with_child_tables_only() {
    let dir = tempfile::tempdir().unwrap();
    let with = groups(dir.path(), json!({}));
    assert!(with.capabilities().value_changes);
    let without = build(
        &SqliteFactory,
        dir.path(),
        vec![person()],
        json!({"path": "hr.db", "table": "users"}),
    );
    assert!(!without.capabilities().value_changes);
}

// ---------------------------------------------------------------------------
// Export.

#[test]
fn exported_values_should_write_one_row_each_and_nothing_on_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), &format!("{GROUPS_SCHEMA}{AUDIT}"));
    let db = Connection::open(&path).unwrap();
    let mut conn = groups(dir.path(), json!({}));
    applied(&export(
        &mut *conn,
        &[group_change(
            "g1",
            ExportKind::Add,
            &[
                ("name", Some("one".into())),
                ("members", Some(texts(&["u1", "u2"]))),
            ],
        )],
    ));
    audited(&db);

    // Add one, remove one: two rows, the parent untouched.
    let change = values_change("g1", members_delta(&["u3"], &["u1"]));
    applied(&export(&mut *conn, std::slice::from_ref(&change)));
    assert_eq!(members(&db, "g1"), ["u2", "u3"]);
    assert_eq!(
        audited(&db),
        [row("group_members", "D", 1), row("group_members", "I", 1)]
    );
    // The same change again (a replay): nothing written.
    applied(&export(&mut *conn, &[change]));
    assert_eq!(audited(&db), []);
    // An add of one already there and a removal of one never there:
    // nothing written; alone, an add is one row.
    applied(&export(
        &mut *conn,
        &[values_change("g1", members_delta(&["u2"], &["nobody"]))],
    ));
    assert_eq!(audited(&db), []);
    applied(&export(
        &mut *conn,
        &[values_change("g1", members_delta(&["u4"], &[]))],
    ));
    assert_eq!(audited(&db), [row("group_members", "I", 1)]);
    assert_eq!(members(&db, "g1"), ["u2", "u3", "u4"]);
    // Values with a whole value of another attribute in `changes`.
    applied(&export(
        &mut *conn,
        &[ExportChange {
            values: members_delta(&[], &["u2", "u3", "u4"]),
            ..group_change("g1", ExportKind::Update, &[("name", Some("ONE".into()))])
        }],
    ));
    assert!(members(&db, "g1").is_empty());
    assert_eq!(
        audited(&db),
        [row("group_members", "D", 3), row("groups", "U", 1)]
    );
    assert!(
        !objects(&mut *conn)["g1"].attributes.contains_key("members"),
        "no rows: no attribute"
    );
}

#[test]
fn values_of_an_attribute_without_a_child_table_should_fail_only_their_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT, tags JSON);
         CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL CHECK (member <> 'bad'), UNIQUE (group_id, member));
         INSERT INTO groups VALUES ('g1', 'one', NULL), ('g2', 'two', NULL);",
    );
    let mut conn = groups(dir.path(), json!({}));
    let outcomes = export(
        &mut *conn,
        &[
            ExportChange {
                values: [
                    ("members".to_owned(), delta(&["u1"], &[])),
                    ("tags".to_owned(), delta(&["a"], &[])),
                ]
                .into(),
                ..group_change("g1", ExportKind::Update, &[])
            },
            values_change("g2", members_delta(&["u1"], &[])),
            values_change("g9", members_delta(&["u1"], &[])),
            values_change("g2", members_delta(&["bad"], &[])),
            values_change(
                "g2",
                [(
                    "members".to_owned(),
                    ValueDelta {
                        add: vec![texts(&["nested"])],
                        remove: Vec::new(),
                    },
                )]
                .into(),
            ),
        ],
    );
    let kinds: Vec<Option<&str>> = outcomes
        .iter()
        .map(|o| match o {
            ExportOutcome::Failed { error_type, .. } => Some(error_type.as_str()),
            ExportOutcome::Applied { .. } => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            Some("value-changes-not-supported"),
            None,
            Some("object-not-found"),
            Some("constraint-violation"),
            Some("value-not-representable"),
        ]
    );
    let ExportOutcome::Failed { detail, .. } = &outcomes[0] else {
        unreachable!()
    };
    assert!(
        detail.contains("`tags` is not kept in a child table") && detail.contains("members"),
        "{detail}"
    );
    let db = Connection::open(&path).unwrap();
    assert!(
        members(&db, "g1").is_empty(),
        "nothing of a failed change is written"
    );
    assert_eq!(members(&db, "g2"), ["u1"]);
    assert!(members(&db, "g9").is_empty());
}

// ---------------------------------------------------------------------------
// A large group.

#[test]
fn a_one_member_change_of_a_100k_group_should_import_and_export_as_one_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), &format!("{VALUES_SCHEMA}{AUDIT}"));
    let db = Connection::open(&path).unwrap();
    let n = 100_000;
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
    let mut conn = groups(dir.path(), value_changelog());
    let (_, wm) = drain(conn.full_import(None).unwrap());

    // A member whose value cannot be read: reading the group's rows would
    // make the group an error. Written with the changelog's triggers off
    // (as if before the watermark).
    db.execute_batch(
        "DROP TRIGGER group_members_ai;
         INSERT INTO group_members VALUES ('big', CAST(X'43FF' AS TEXT));
         CREATE TRIGGER group_members_ai AFTER INSERT ON group_members BEGIN
           INSERT INTO groups_changelog (id, attr, value) VALUES (NEW.group_id, 'members', NEW.member);
         END;
         INSERT INTO group_members VALUES ('big', 'joiner');
         DELETE FROM audit;",
    )
    .unwrap();
    let (items, wm) = delta_items(&mut *conn, wm.as_deref());
    let [Ok(big)] = items.as_slice() else {
        panic!("one object: {items:?}")
    };
    assert_eq!(big.change, ImportChange::Update);
    assert_eq!(
        big.values,
        members_delta(&["joiner"], &[]),
        "the one value, none of the other 100,000 read"
    );
    let whole = crate::common::import_all(&mut *conn);
    assert!(
        whole[0].is_err(),
        "read whole, the group is an error: {:?}",
        whole[0].as_ref().map(|o| &o.anchor)
    );
    db.execute_batch("DELETE FROM group_members WHERE member = 'joiner'")
        .unwrap();
    let (items, _) = delta_items(&mut *conn, wm.as_deref());
    assert_eq!(
        items[0].as_ref().unwrap().values,
        members_delta(&[], &["joiner"])
    );
    audited(&db);

    // Export: one row written per value.
    applied(&export(
        &mut *conn,
        &[values_change("big", members_delta(&["u100000"], &[]))],
    ));
    assert_eq!(audited(&db), [row("group_members", "I", 1)]);
    applied(&export(
        &mut *conn,
        &[values_change("big", members_delta(&[], &["u000000"]))],
    ));
    assert_eq!(audited(&db), [row("group_members", "D", 1)]);
    let count: i64 = db
        .query_row(
            "SELECT count(*) FROM group_members WHERE group_id = 'big'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, n + 1, "100,000 - 1 + 1, and the unreadable one");
}
