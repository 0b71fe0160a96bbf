//! The import side of child tables (`child_tables`): an attribute kept in a
//! child table is read once per batch and child table, one query over the
//! batch's anchors (passed as one JSON array), its rows ordered by key then
//! value, each object's values gathered into one multi-valued value. An
//! object without rows has no such attribute.
//!
//! A value-level delta (`value_changes`) reads no object's values: each
//! value the changelog names is looked up alone (one indexed probe of
//! `(key, value)`), added when its row exists and removed when it does not.

use super::config::SqliteSettings;
use super::db::{Child, Fast, Schema, Stored, q};
use super::types;
use autosync_connector::{ImportChange, ImportItem, ImportRecordError, ImportedObject};
use autosync_model::{Value, ValueChanges, ValueDelta};
use rusqlite::Connection;
use rusqlite::types::{Value as SqlValue, ValueRef};
use std::collections::{BTreeMap, HashMap, HashSet};

#[cfg(test)]
thread_local! {
    /// Queries of child tables run on this thread (tests count them).
    pub static CHILD_QUERIES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Virtual machine steps of the statements that look up or write one
    /// value of a child table (tests check that a one-value change does
    /// not cost the group's size).
    pub static VALUE_STEPS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Count the steps `stmt` ran since it was last counted (tests only).
#[cfg(test)]
pub(super) fn count_steps(stmt: &rusqlite::Statement<'_>) {
    let n = stmt.reset_status(rusqlite::StatementStatus::VmStep);
    VALUE_STEPS.with(|c| c.set(c.get() + i64::from(n)));
}

#[cfg(not(test))]
pub(super) fn count_steps(_: &rusqlite::Statement<'_>) {}

/// The value-level changes of object `o` from the values its changelog
/// rows name (`named`: per attribute of `child_tables`, as the changelog
/// holds them): each value as the child table's value column stores and
/// reads it, added when the object has a row with it now, removed when
/// it has none; one indexed lookup per value. `Err`: a value that cannot
/// be read (text that is not UTF-8), as the object's record error.
pub(super) fn value_changes(
    conn: &Connection,
    s: &SqliteSettings,
    schema: &Schema,
    o: &ImportedObject,
    named: BTreeMap<String, HashSet<Stored, Fast>>,
) -> rusqlite::Result<Result<ValueChanges, ImportRecordError>> {
    // The anchor as text, and an integer anchor also as the integer: a key
    // column of either type meets it.
    let as_integer = match o.attributes.get(&s.anchor_column) {
        Some(Value::Integer(n)) => SqlValue::Integer(*n),
        _ => SqlValue::Text(o.anchor.clone()),
    };
    let mut changes = ValueChanges::new();
    for (attribute, values) in named {
        let Some(child) = schema.children.iter().find(|c| c.attribute == attribute) else {
            continue;
        };
        let bad = |detail: String| ImportRecordError {
            anchor: Some(o.anchor.clone()),
            detail: format!("child table {}: {detail}", child.table),
            location: format!("child table {}", child.table),
            error_type: "invalid-utf8".to_owned(),
        };
        let (key, value) = (q(&child.key), q(&child.value));
        let sql = format!(
            "SELECT 1 FROM {} WHERE {key} IN (?1, ?2) AND {value} = ?3 LIMIT 1",
            q(&child.table)
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut delta = ValueDelta::default();
        for raw in values {
            let given = match raw.into_sql() {
                Some(v) => v,
                None => {
                    return Ok(Err(bad(format!(
                        "a value of `{attribute}` the changelog names is not valid UTF-8"
                    ))));
                }
            };
            // As the value column stores it (its affinity), then as an
            // import reads it.
            let stored = types::stored(child.column.affinity, given);
            let read = match types::read(ValueRef::from(&stored), child.column.holds) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(_) => {
                    return Ok(Err(bad(format!(
                        "a value of `{attribute}` the changelog names is not valid UTF-8"
                    ))));
                }
            };
            let there = stmt.exists((&o.anchor, &as_integer, &stored))?;
            count_steps(&stmt);
            match there {
                true => delta.add.push(read),
                false => delta.remove.push(read),
            }
        }
        // Sorted, each value once (two forms the changelog holds can be
        // one stored value: 7 and '7' in an INTEGER column).
        for list in [&mut delta.add, &mut delta.remove] {
            list.sort_unstable();
            list.dedup();
        }
        if !delta.is_empty() {
            changes.insert(attribute, delta);
        }
    }
    Ok(Ok(changes))
}

/// Give the batch's objects their child tables' attributes: per child
/// table, one query over the anchors of the batch's objects. A value that
/// cannot be read (text that is not UTF-8) makes its object an error.
pub(super) fn attach_children(
    conn: &Connection,
    s: &SqliteSettings,
    schema: &Schema,
    batch: &mut [ImportItem],
) -> rusqlite::Result<()> {
    if schema.children.is_empty() {
        return Ok(());
    }
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut keys = Vec::new();
    for (i, item) in batch.iter().enumerate() {
        if let Ok(o) = item
            && o.change == ImportChange::Full
        {
            // The anchor as text, and an integer anchor also as the
            // integer: a key column of either type meets it.
            if let Some(Value::Integer(n)) = o.attributes.get(&s.anchor_column) {
                keys.push(serde_json::Value::from(*n));
            }
            keys.push(serde_json::Value::from(o.anchor.as_str()));
            at.insert(o.anchor.clone(), i);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let list = serde_json::Value::Array(keys).to_string();
    for child in &schema.children {
        let bad = read_child(conn, child, &list, &at, batch)?;
        for (i, detail) in bad {
            if let Some(item) = batch.get_mut(i)
                && let Ok(o) = item
            {
                *item = Err(ImportRecordError {
                    anchor: Some(o.anchor.clone()),
                    detail: format!("child table {}: {detail}", child.table),
                    location: format!("child table {}", child.table),
                    error_type: "invalid-utf8".to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// One child table's values for the objects at `at` (anchor -> index in
/// `batch`), whose anchors are the JSON array `list`; the objects whose
/// values cannot be read, with why.
fn read_child(
    conn: &Connection,
    child: &Child,
    list: &str,
    at: &HashMap<String, usize>,
    batch: &mut [ImportItem],
) -> rusqlite::Result<Vec<(usize, String)>> {
    let (key, value) = (q(&child.key), q(&child.value));
    let sql = format!(
        "SELECT {key}, {value} FROM {} WHERE {key} IN (SELECT value FROM json_each(?1)) ORDER BY {key}, {value}",
        q(&child.table)
    );
    #[cfg(test)]
    CHILD_QUERIES.with(|n| n.set(n.get() + 1));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([list])?;
    let mut bad = Vec::new();
    // The rows come grouped by key: gather one object's values, then give
    // them to it.
    let mut current: Option<(String, Option<usize>)> = None;
    let mut values: Vec<Value> = Vec::new();
    let mut give = |object: Option<usize>, values: &mut Vec<Value>| {
        let taken = std::mem::take(values);
        if let Some(i) = object
            && !taken.is_empty()
            && let Some(Ok(o)) = batch.get_mut(i)
        {
            // Keys of two types meeting one anchor (7 and '7' in an
            // untyped column) come as two groups: both are the object's.
            match o.attributes.get_mut(&child.attribute) {
                Some(Value::Multi(had)) => had.extend(taken),
                _ => {
                    o.attributes
                        .insert(child.attribute.clone(), Value::Multi(taken));
                }
            }
        }
    };
    while let Some(row) = rows.next()? {
        let same = match (row.get_ref(0)?, &current) {
            (ValueRef::Text(t), Some((k, _))) => t == k.as_bytes(),
            (ValueRef::Integer(n), Some((k, _))) => n.to_string() == *k,
            _ => false,
        };
        if !same {
            let k = match row.get_ref(0)? {
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Integer(n) => n.to_string(),
                _ => continue,
            };
            if let Some((_, object)) = current.take() {
                give(object, &mut values);
            }
            let object = at.get(&k).copied();
            current = Some((k, object));
        }
        let Some((_, Some(i))) = &current else {
            continue;
        };
        match types::read(row.get_ref(1)?, child.column.holds) {
            Ok(Some(v)) => values.push(v),
            Ok(None) => {}
            Err(_) => {
                if !bad.iter().any(|(b, _)| b == i) {
                    bad.push((
                        *i,
                        format!("a value of `{}` is not valid UTF-8", child.attribute),
                    ));
                }
            }
        }
    }
    if let Some((_, object)) = current.take() {
        give(object, &mut values);
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::{CHILD_QUERIES, VALUE_STEPS};
    use crate::sqlite::SqliteFactory;
    use autosync_connector::{BuildContext, ConnectorFactory};
    use autosync_model::{ObjectTypeDef, Value};
    use rusqlite::Connection;

    /// 100,000 child rows for one parent and a few for 2,000 others: one
    /// child query per import batch (never one per object), every value
    /// read.
    #[test]
    fn a_large_child_table_should_import_with_one_query_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.db");
        let db = Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
             CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL, UNIQUE (group_id, member));
             BEGIN;",
        )
        .unwrap();
        {
            let mut parent = db.prepare("INSERT INTO groups VALUES (?1, ?1)").unwrap();
            let mut child = db
                .prepare("INSERT INTO group_members VALUES (?1, ?2)")
                .unwrap();
            parent.execute(["big"]).unwrap();
            for i in 0..100_000 {
                child.execute(["big", &format!("u{i:06}")]).unwrap();
            }
            for g in 0..2_000 {
                let id = format!("g{g:04}");
                parent.execute([&id]).unwrap();
                for m in 0..(g % 3) {
                    child.execute([&id, &format!("m{m}")]).unwrap();
                }
            }
        }
        db.execute_batch("COMMIT").unwrap();
        let settings = serde_json::json!({"path": "big.db", "table": "groups", "batch_size": 500,
            "child_tables": {"members": {"table": "group_members", "key": "group_id", "value": "member"}}});
        let serde_json::Value::Object(settings) = settings else {
            unreachable!()
        };
        let ctx = BuildContext {
            ma: "test".into(),
            base_dir: dir.path().to_owned(),
            object_types: vec![ObjectTypeDef {
                name: "group".into(),
                anchor: "id".into(),
                dn: None,
                references: Default::default(),
            }],
        };
        let mut conn = SqliteFactory.build(&settings, &ctx).unwrap();
        CHILD_QUERIES.with(|n| n.set(0));
        let mut stream = conn.full_import(None).unwrap();
        let (mut batches, mut objects, mut values) = (0, 0, 0);
        while let Some(batch) = stream.next_batch().unwrap() {
            batches += 1;
            for item in batch {
                let o = item.unwrap();
                objects += 1;
                match o.attributes.get("members") {
                    Some(Value::Multi(vs)) => values += vs.len(),
                    Some(other) => panic!("{} members: {other:?}", o.anchor),
                    None => {}
                }
                if o.anchor == "big" {
                    let Some(Value::Multi(vs)) = o.attributes.get("members") else {
                        panic!("big has members")
                    };
                    assert_eq!(vs.len(), 100_000);
                    assert_eq!(vs[0], Value::from("u000000"));
                    assert_eq!(vs[99_999], Value::from("u099999"));
                }
            }
        }
        drop(stream);
        assert_eq!(objects, 2_001);
        assert_eq!(values, 100_000 + (0..2_000).map(|g| g % 3).sum::<usize>());
        assert_eq!(batches, 5);
        assert_eq!(
            CHILD_QUERIES.with(|n| n.get()),
            batches,
            "one child query per batch"
        );
    }

    fn steps() -> i64 {
        VALUE_STEPS.with(|n| n.replace(0))
    }

    /// A group of 100,000 members (their unique index a named one, so
    /// that it can be dropped): a delta import of one member added and
    /// one removed, then an export of one added and one removed, each
    /// costs a few dozen steps of the virtual machine, not the group's
    /// size; without the index the same delta costs a scan of the rows
    /// (what the count would show if the lookups read the group).
    #[test]
    fn a_one_value_change_of_a_large_group_should_cost_steps_independent_of_its_size() {
        use autosync_connector::{ExportChange, ExportOutcome, ImportChange};
        use autosync_model::{ExportKind, ValueDelta};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.db");
        let db = Connection::open(&path).unwrap();
        let n: i64 = 100_000;
        db.execute_batch(
            "CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT);
             CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL);
             CREATE UNIQUE INDEX group_members_key ON group_members (group_id, member);
             CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, attr TEXT, value);
             CREATE TRIGGER m_ai AFTER INSERT ON group_members BEGIN
               INSERT INTO log (id, attr, value) VALUES (NEW.group_id, 'members', NEW.member); END;
             CREATE TRIGGER m_ad AFTER DELETE ON group_members BEGIN
               INSERT INTO log (id, attr, value) VALUES (OLD.group_id, 'members', OLD.member); END;
             BEGIN;
             INSERT INTO groups VALUES ('big', 'big');",
        )
        .unwrap();
        {
            let mut child = db
                .prepare("INSERT INTO group_members VALUES ('big', ?1)")
                .unwrap();
            for i in 0..n {
                child.execute([&format!("u{i:06}")]).unwrap();
            }
        }
        db.execute_batch("COMMIT").unwrap();
        let settings = serde_json::json!({"path": "big.db", "table": "groups",
            "child_tables": {"members": {"table": "group_members", "key": "group_id", "value": "member"}},
            "delta": {"kind": "changelog", "table": "log", "sequence_column": "seq",
                "attribute_column": "attr", "value_column": "value"}});
        let serde_json::Value::Object(settings) = settings else {
            unreachable!()
        };
        let ctx = BuildContext {
            ma: "test".into(),
            base_dir: dir.path().to_owned(),
            object_types: vec![ObjectTypeDef {
                name: "group".into(),
                anchor: "id".into(),
                dn: None,
                references: Default::default(),
            }],
        };
        let mut conn = SqliteFactory.build(&settings, &ctx).unwrap();
        let seq: i64 = db
            .query_row("SELECT max(seq) FROM log", [], |r| r.get(0))
            .unwrap();
        let wm = serde_json::json!({ "seq": seq }).to_string();
        db.execute_batch(
            "INSERT INTO group_members VALUES ('big', 'joiner');
             DELETE FROM group_members WHERE member = 'u050000';",
        )
        .unwrap();
        let delta =
            |conn: &mut Box<dyn autosync_connector::Connector>, add: &[&str], remove: &[&str]| {
                let mut stream = conn.delta_import(Some(&wm)).unwrap();
                let batch = stream.next_batch().unwrap().unwrap();
                assert!(stream.next_batch().unwrap().is_none());
                let o = batch.into_iter().next().unwrap().unwrap();
                assert_eq!(o.change, ImportChange::Update);
                assert_eq!(
                    o.values["members"],
                    ValueDelta {
                        add: add.iter().map(|v| Value::from(*v)).collect(),
                        remove: remove.iter().map(|v| Value::from(*v)).collect(),
                    }
                );
            };
        steps();
        CHILD_QUERIES.with(|n| n.set(0));
        delta(&mut conn, &["joiner"], &["u050000"]);
        let import_steps = steps();
        assert!(
            import_steps < 200,
            "two indexed lookups, {import_steps} steps"
        );
        assert_eq!(
            CHILD_QUERIES.with(|n| n.get()),
            0,
            "no object's rows are read"
        );

        let change = ExportChange {
            values: [(
                "members".to_owned(),
                ValueDelta {
                    add: vec![Value::from("u100000")],
                    remove: vec![Value::from("u000001")],
                },
            )]
            .into(),
            object_type: "group".into(),
            anchor: "big".into(),
            dn: "big".into(),
            kind: ExportKind::Update,
            changes: Default::default(),
            new_dn: None,
        };
        let mut session = conn.begin_export().unwrap();
        let outcomes = session.apply(std::slice::from_ref(&change)).unwrap();
        session.commit().unwrap();
        assert_eq!(outcomes, [ExportOutcome::Applied { anchor: None }]);
        let export_steps = steps();
        assert!(
            export_steps < 400,
            "one indexed delete, one indexed probe and insert (their triggers included), {export_steps} steps"
        );
        let count: i64 = db
            .query_row("SELECT count(*) FROM group_members", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, n);

        // Without the index, the lookups scan the group: the count shows it.
        drop(conn);
        db.execute_batch("DROP INDEX group_members_key").unwrap();
        let mut conn = SqliteFactory.build(&settings, &ctx).unwrap();
        steps();
        // (The export's rows are in the changelog too.)
        delta(&mut conn, &["joiner", "u100000"], &["u000001", "u050000"]);
        let scanned = steps();
        assert!(scanned > n, "a scan of the group: {scanned} steps");
    }
}
