//! The name dictionary (`Store::declare_names`): bodies carry numbers for
//! declared names, every store that opens the file reads them back (also
//! one that opened it before the names were declared), a name keeps its
//! number, and undeclared names still round-trip as text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use autosync_model::{MvObject, MvValue, Value};
use autosync_store::sqlite::SqliteStore;
use autosync_store::{CsFilter, Store};
use common::*;

/// The stored size of every body, in bytes.
fn body_bytes(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT (SELECT coalesce(sum(length(data)), 0) FROM cs) + (SELECT coalesce(sum(length(data)), 0) FROM mv)",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn numbers(path: &std::path::Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, name FROM name ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn person(i: usize) -> (autosync_model::CsObject, MvObject) {
    let mut c = cs("hr", &format!("E{i}"));
    c.hologram = attrs(&[
        ("employee_id", &format!("E{i}")),
        ("first_name", "Ada"),
        ("department", "Engineering"),
    ]);
    let m = mv(
        "person",
        &[
            ("employeeId", Value::from(format!("E{i}"))),
            ("firstName", Value::from("Ada")),
        ],
    );
    (c, m)
}

fn write(store: &dyn Store, objs: &mut [(autosync_model::CsObject, MvObject)]) {
    let mut txn = store.begin().unwrap();
    for (c, m) in objs.iter_mut() {
        txn.mv_insert(m).unwrap();
        txn.cs_insert(c).unwrap();
    }
    txn.commit().unwrap();
}

const NAMES: [&str; 8] = [
    "hr",
    "person",
    "employee_id",
    "first_name",
    "department",
    "employeeId",
    "firstName",
    "mail",
];

#[test]
fn declared_names_should_make_bodies_smaller_and_read_back_equal() {
    let plain = store();
    let numbered = store();
    numbered.store.declare_names(&NAMES).unwrap();
    let mut a: Vec<_> = (0..20).map(person).collect();
    let mut b = a.clone();
    write(&plain.store, &mut a);
    write(&numbered.store, &mut b);
    let path = |t: &TestStore| t.dir.path().join("state").join("store.db");
    let (big, small) = (body_bytes(&path(&plain)), body_bytes(&path(&numbered)));
    // hr, person, 3 + 2 attribute names and the contributor: 60 bytes of
    // names per person in text, 8 bytes as numbers.
    assert!(
        big - small >= 20 * 50,
        "bodies should shrink by about 52 bytes a person: {big} -> {small}"
    );
    let mut r = numbered.store.read().unwrap();
    let page = r.cs_page("hr", CsFilter::All, 0, 100).unwrap();
    assert_eq!(page, b.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>());
    for (_, m) in &b {
        assert_eq!(r.mv_get(m.id).unwrap().as_ref(), Some(m));
    }
}

#[test]
fn a_store_opened_before_names_were_declared_should_read_bodies_that_use_them() {
    let t = store();
    let path = t.dir.path().join("state").join("store.db");
    t.store
        .set_mv_index(&[autosync_store::MvIndexDef::attribute(
            "person",
            "employeeId",
        )])
        .unwrap();
    // Other processes' views: opened now, with an empty dictionary.
    let writer = SqliteStore::open(&path).unwrap();
    let reader = SqliteStore::open(&path).unwrap();
    t.store.declare_names(&NAMES).unwrap();
    let mut objs: Vec<_> = (0..3).map(person).collect();
    write(&t.store, &mut objs);
    assert_eq!(numbers(&path).len(), NAMES.len());
    // A writer decodes stored metaverse bodies first of all (the index keys
    // of an object it updates or deletes).
    let mut txn = writer.begin().unwrap();
    let mut m = objs[0].1.clone();
    m.attributes.insert(
        "employeeId".into(),
        MvValue {
            value: Value::from("E100"),
            contributor: "hr".into(),
        },
    );
    txn.mv_update(&m).unwrap();
    txn.mv_delete(objs[1].1.id).unwrap();
    txn.commit().unwrap();
    let mut r = t.store.read().unwrap();
    let find = |r: &mut Box<dyn autosync_store::StoreRead + '_>, v: &str| {
        r.mv_find("person", "employeeId", &Value::from(v)).unwrap()
    };
    assert_eq!(find(&mut r, "E100"), vec![m.id]);
    assert_eq!(find(&mut r, "E0"), Vec::<i64>::new());
    assert_eq!(find(&mut r, "E1"), Vec::<i64>::new());
    assert_eq!(find(&mut r, "E2"), vec![objs[2].1.id]);
    drop(r);
    // A reader decodes single objects and pages.
    let mut r = reader.read().unwrap();
    for (c, _) in &objs {
        assert_eq!(r.cs_get(c.id).unwrap().as_ref(), Some(c));
    }
    assert_eq!(r.mv_get(m.id).unwrap().as_ref(), Some(&m));
    assert_eq!(r.mv_get(objs[1].1.id).unwrap(), None);
    assert_eq!(
        r.cs_page("hr", CsFilter::All, 0, 10).unwrap().len(),
        objs.len()
    );
}

#[test]
fn a_name_should_keep_its_number_across_declarations_and_stores() {
    let t = store();
    let path = t.dir.path().join("state").join("store.db");
    t.store.declare_names(&["hr", "person"]).unwrap();
    let other = SqliteStore::open(&path).unwrap();
    // Declared again in another order with new names, from another store.
    other
        .declare_names(&["mail", "person", "hr", "app"])
        .unwrap();
    t.store.declare_names(&["app", "cn"]).unwrap();
    assert_eq!(
        numbers(&path),
        ["hr", "person", "mail", "app", "cn"]
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64 + 1, (*n).to_owned()))
            .collect::<Vec<_>>()
    );
    // Each store reads what the other wrote with numbers the writer knew
    // and the reader learnt later.
    let mut a = vec![person(1)];
    write(&other, &mut a);
    let mut b = vec![person(2)];
    write(&t.store, &mut b);
    for s in [&t.store, &other] {
        let mut r = s.read().unwrap();
        assert_eq!(r.cs_get(a[0].0.id).unwrap().as_ref(), Some(&a[0].0));
        assert_eq!(r.cs_get(b[0].0.id).unwrap().as_ref(), Some(&b[0].0));
    }
    // A reopened store loads the dictionary.
    drop(other);
    let again = SqliteStore::open(&path).unwrap();
    let mut r = again.read().unwrap();
    assert_eq!(r.mv_get(a[0].1.id).unwrap().as_ref(), Some(&a[0].1));
}

#[test]
fn a_damaged_name_number_should_be_a_clear_error_naming_the_object() {
    let t = store();
    let path = t.dir.path().join("state").join("store.db");
    t.store.declare_names(&NAMES).unwrap();
    let mut objs = vec![person(1)];
    write(&t.store, &mut objs);
    // Point the body's MA name at a number nobody declared.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let id = objs[0].0.id;
    let mut body: Vec<u8> = conn
        .query_row("SELECT data FROM cs WHERE id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert_eq!(
        body[1],
        1 << 1 | 1,
        "number 1 (hr) right after the format byte"
    );
    body[1] = 60 << 1 | 1;
    conn.execute(
        "UPDATE cs SET data = ?1 WHERE id = ?2",
        rusqlite::params![body, id],
    )
    .unwrap();
    let err = t.store.read().unwrap().cs_get(id).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("connector-space object {id}")) && msg.contains("name number 60"),
        "{msg}"
    );
}
