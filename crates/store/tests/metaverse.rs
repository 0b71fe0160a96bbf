//! Metaverse objects and the attribute index behind `mv_find` (join rules),
//! including multi-valued attributes and changes of the indexed set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use autosync_model::{MvObject, Value};
use autosync_store::sqlite::SqliteStore;
use autosync_store::{MvQuery, Store, StoreErrorKind};
use common::*;

fn pair(t: &str, a: &str) -> (String, String) {
    (t.to_owned(), a.to_owned())
}

fn insert(store: &dyn Store, objs: Vec<MvObject>) -> Vec<MvObject> {
    let mut txn = store.begin().unwrap();
    let mut out = Vec::new();
    for mut o in objs {
        txn.mv_insert(&mut o).unwrap();
        out.push(o);
    }
    txn.commit().unwrap();
    out
}

fn find(store: &dyn Store, t: &str, a: &str, v: Value) -> Vec<i64> {
    let mut ids = store.read().unwrap().mv_find(t, a, &v).unwrap();
    ids.sort();
    ids
}

#[test]
fn mv_objects_should_read_back_equal_singly_and_in_batches() {
    let t = store();
    let objs = insert(
        &t.store,
        vec![
            mv(
                "person",
                &[("mail", Value::from("a@x")), ("age", Value::from(40))],
            ),
            mv("group", &[("cn", Value::from("admins"))]),
        ],
    );
    let mut r = t.store.read().unwrap();
    assert_eq!(r.mv_get(objs[0].id).unwrap().as_ref(), Some(&objs[0]));
    assert_eq!(r.mv_get(12345).unwrap(), None);
    let ids: Vec<i64> = objs.iter().map(|o| o.id).chain([999]).collect();
    let mut many = r.mv_get_many(&ids).unwrap();
    many.sort_by_key(|o| o.id);
    assert_eq!(many, objs);
    assert_eq!(r.mv_count(None).unwrap(), 2);
    assert_eq!(r.mv_count(Some("person")).unwrap(), 1);
    assert_eq!(r.mv_count(Some("nobody")).unwrap(), 0);
}

#[test]
fn mv_get_many_should_handle_more_ids_than_one_query_takes() {
    let t = store();
    let objs = insert(
        &t.store,
        (0..1100)
            .map(|i| mv("person", &[("n", Value::from(i))]))
            .collect(),
    );
    let ids: Vec<i64> = objs.iter().map(|o| o.id).collect();
    assert_eq!(
        t.store.read().unwrap().mv_get_many(&ids).unwrap().len(),
        1100
    );
}

#[test]
fn mv_find_should_match_indexed_values_as_text_including_each_of_a_multi_value() {
    let t = store();
    t.store
        .set_mv_index(&[pair("person", "mail"), pair("person", "employeeId")])
        .unwrap();
    let objs = insert(
        &t.store,
        vec![
            mv(
                "person",
                &[
                    ("mail", Value::Multi(vec!["a@x".into(), "alias@x".into()])),
                    ("employeeId", Value::from(17)),
                ],
            ),
            mv(
                "person",
                &[
                    ("mail", Value::from("b@x")),
                    ("employeeId", Value::from("17")),
                ],
            ),
            mv("group", &[("mail", Value::from("a@x"))]),
        ],
    );
    assert_eq!(
        find(&t.store, "person", "mail", "alias@x".into()),
        [objs[0].id]
    );
    assert_eq!(find(&t.store, "person", "mail", "a@x".into()), [objs[0].id]);
    // Integers and strings compare as text.
    assert_eq!(
        find(&t.store, "person", "employeeId", Value::from(17)),
        [objs[0].id, objs[1].id]
    );
    // A multi-valued query matches any of its values.
    assert_eq!(
        find(
            &t.store,
            "person",
            "mail",
            Value::Multi(vec!["b@x".into(), "a@x".into()])
        ),
        [objs[0].id, objs[1].id]
    );
    assert!(find(&t.store, "person", "mail", "nobody@x".into()).is_empty());
}

#[test]
fn mv_find_on_an_attribute_that_is_not_indexed_should_fail_as_invalid() {
    let t = store();
    t.store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let err = t
        .store
        .read()
        .unwrap()
        .mv_find("person", "sn", &"x".into())
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert!(
        err.message.contains("sn") && err.message.contains("not indexed"),
        "{}",
        err.message
    );
}

#[test]
fn mv_update_and_delete_should_keep_the_index_in_step() {
    let t = store();
    t.store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let mut o = insert(
        &t.store,
        vec![mv("person", &[("mail", Value::from("old@x"))])],
    )
    .remove(0);
    o.attributes.get_mut("mail").unwrap().value = Value::from("new@x");
    let mut txn = t.store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    // The transaction finds its own write.
    assert_eq!(
        txn.mv_find("person", "mail", &"new@x".into()).unwrap(),
        [o.id]
    );
    txn.commit().unwrap();
    assert!(find(&t.store, "person", "mail", "old@x".into()).is_empty());
    assert_eq!(find(&t.store, "person", "mail", "new@x".into()), [o.id]);
    assert_eq!(
        t.store.read().unwrap().mv_get(o.id).unwrap(),
        Some(o.clone())
    );

    // An update that changes the object type moves it out of the index.
    o.object_type = "contact".into();
    let mut txn = t.store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert!(find(&t.store, "person", "mail", "new@x".into()).is_empty());
    assert_eq!(
        t.store.read().unwrap().mv_count(Some("contact")).unwrap(),
        1
    );

    let mut p = insert(
        &t.store,
        vec![mv("person", &[("mail", Value::from("p@x"))])],
    )
    .remove(0);
    let mut txn = t.store.begin().unwrap();
    txn.mv_delete(p.id).unwrap();
    txn.commit().unwrap();
    assert!(find(&t.store, "person", "mail", "p@x".into()).is_empty());
    assert_eq!(t.store.read().unwrap().mv_get(p.id).unwrap(), None);
    p.id = 4242;
    let err = t.store.begin().unwrap().mv_update(&p).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
}

#[test]
fn set_mv_index_should_build_new_pairs_from_existing_objects_and_drop_removed_ones() {
    let t = store();
    let objs = insert(
        &t.store,
        vec![
            mv(
                "person",
                &[("mail", Value::from("a@x")), ("uid", Value::from("a"))],
            ),
            mv(
                "person",
                &[("uid", Value::Multi(vec!["b".into(), "bee".into()]))],
            ),
        ],
    );
    t.store.set_mv_index(&[pair("person", "uid")]).unwrap();
    assert_eq!(find(&t.store, "person", "uid", "bee".into()), [objs[1].id]);
    t.store.set_mv_index(&[pair("person", "mail")]).unwrap();
    assert_eq!(find(&t.store, "person", "mail", "a@x".into()), [objs[0].id]);
    let err = t
        .store
        .read()
        .unwrap()
        .mv_find("person", "uid", &"a".into())
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
}

#[test]
fn the_index_set_should_persist_across_reopening() {
    let t = store();
    let path = t.store.path().to_path_buf();
    t.store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let o = insert(
        &t.store,
        vec![mv("person", &[("mail", Value::from("a@x"))])],
    )
    .remove(0);
    drop(t.store);
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(find(&again, "person", "mail", "a@x".into()), [o.id]);
}

#[test]
fn mv_page_should_filter_by_type_and_attribute_indexed_or_not() {
    let t = store();
    t.store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let objs = insert(
        &t.store,
        vec![
            mv(
                "person",
                &[("mail", Value::from("a@x")), ("dept", Value::from("IT"))],
            ),
            mv("group", &[("dept", Value::from("IT"))]),
            mv(
                "person",
                &[
                    ("mail", Value::from("b@x")),
                    ("dept", Value::Multi(vec!["HR".into(), "IT".into()])),
                ],
            ),
        ],
    );
    let ids = |q: MvQuery, after: i64, limit: usize| -> Vec<i64> {
        t.store
            .read()
            .unwrap()
            .mv_page(&q, after, limit)
            .unwrap()
            .into_iter()
            .map(|o| o.id)
            .collect()
    };
    assert_eq!(
        ids(MvQuery::default(), 0, 10),
        [objs[0].id, objs[1].id, objs[2].id]
    );
    assert_eq!(ids(MvQuery::default(), objs[0].id, 1), [objs[1].id]);
    let people = MvQuery {
        object_type: Some("person".into()),
        attribute: None,
    };
    assert_eq!(ids(people, 0, 10), [objs[0].id, objs[2].id]);
    let by_mail = MvQuery {
        object_type: Some("person".into()),
        attribute: Some(("mail".into(), "b@x".into())),
    };
    assert_eq!(ids(by_mail, 0, 10), [objs[2].id]);
    let it_anything = MvQuery {
        object_type: None,
        attribute: Some(("dept".into(), "IT".into())),
    };
    assert_eq!(
        ids(it_anything.clone(), 0, 10),
        [objs[0].id, objs[1].id, objs[2].id]
    );
    assert_eq!(ids(it_anything, objs[0].id, 1), [objs[1].id]);
}

#[test]
fn mv_find_many_should_say_which_value_found_which_object_across_chunks() {
    let t = store();
    t.store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let objs = insert(
        &t.store,
        (0..700)
            .map(|i| mv("person", &[("mail", Value::from(format!("p{i}@x")))]))
            .chain([mv(
                "person",
                &[(
                    "mail",
                    Value::Multi(vec![Value::from("m1@x"), Value::from("m2@x")]),
                )],
            )])
            .collect(),
    );
    let mut values: Vec<Value> = (0..700)
        .rev()
        .map(|i| Value::from(format!("p{i}@x")))
        .collect();
    values.push(Value::from("nobody@x"));
    values.push(Value::Multi(vec![Value::from("m2@x"), Value::from("zz")]));
    let mut r = t.store.read().unwrap();
    let mut found = r.mv_find_many("person", "mail", &values).unwrap();
    found.sort();
    assert_eq!(found.len(), 701);
    for (i, id) in &found[..700] {
        assert_eq!(*id, objs[699 - i].id, "value {i}");
    }
    assert_eq!(found[700], (701, objs[700].id));
    let err = r.mv_find_many("person", "age", &values).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
}

#[test]
fn an_update_should_write_only_the_keys_that_changed_and_follow_type_changes() {
    let t = store();
    t.store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let multi = |vs: &[&str]| Value::Multi(vs.iter().map(|v| Value::from(*v)).collect());
    let mut o = insert(
        &t.store,
        vec![mv("contact", &[("mail", multi(&["a@x", "b@x"]))])],
    )
    .remove(0);
    assert!(find(&t.store, "person", "mail", "a@x".into()).is_empty());
    // Unindexed type to indexed: keys appear.
    o.object_type = "person".into();
    let mut txn = t.store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert_eq!(find(&t.store, "person", "mail", "a@x".into()), [o.id]);
    // One value kept, one gone, one new.
    o.attributes.get_mut("mail").unwrap().value = multi(&["b@x", "c@x"]);
    let mut txn = t.store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert!(find(&t.store, "person", "mail", "a@x".into()).is_empty());
    assert_eq!(find(&t.store, "person", "mail", "b@x".into()), [o.id]);
    assert_eq!(find(&t.store, "person", "mail", "c@x".into()), [o.id]);
    // The attribute removed: no keys left.
    o.attributes.remove("mail");
    let mut txn = t.store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert!(find(&t.store, "person", "mail", "b@x".into()).is_empty());
    assert!(find(&t.store, "person", "mail", "c@x".into()).is_empty());
}
