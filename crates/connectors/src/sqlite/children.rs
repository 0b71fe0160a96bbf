//! The import side of child tables (`child_tables`): an attribute kept in a
//! child table is read once per batch and child table, one query over the
//! batch's anchors (passed as one JSON array), its rows ordered by key then
//! value, each object's values gathered into one multi-valued value. An
//! object without rows has no such attribute.

use super::config::SqliteSettings;
use super::db::{Child, Schema, q};
use super::types;
use autosync_connector::{ImportChange, ImportItem, ImportRecordError};
use autosync_model::Value;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use std::collections::HashMap;

#[cfg(test)]
thread_local! {
    /// Queries of child tables run on this thread (tests count them).
    pub static CHILD_QUERIES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
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
    use super::CHILD_QUERIES;
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
}
