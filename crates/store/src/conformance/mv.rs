//! Metaverse objects and the join index behind `mv_find`: multi-valued
//! attributes, changes of the indexed set, strings compared ignoring case,
//! derived indexes.

use super::ConformanceTarget;
use super::fixtures::*;
use crate::api::{MvIndexDef, MvKeyDerive, MvQuery, Store, StoreErrorKind};
use autosync_model::{MvObject, Value};
use std::sync::Arc;

fn pair(t: &str, a: &str) -> MvIndexDef {
    MvIndexDef::attribute(t, a)
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

/// A derived index: the object's `givenName.sn`, as the engine's
/// `mv_expr` would compute it.
struct DottedName(Vec<String>);

impl DottedName {
    fn def() -> MvIndexDef {
        let reads = vec!["givenName".to_owned(), "sn".to_owned()];
        MvIndexDef::derived("person", "mv_expr:dotted", Arc::new(DottedName(reads)))
    }
}

impl MvKeyDerive for DottedName {
    fn reads(&self) -> &[String] {
        &self.0
    }
    fn derive(&self, obj: &MvObject) -> Option<Value> {
        let text = |a: &str| obj.get(a).map(Value::to_text);
        Some(Value::from(
            format!("{}.{}", text("givenName")?, text("sn")?).as_str(),
        ))
    }
}

fn person(given: &str, sn: &str) -> MvObject {
    mv(
        "person",
        &[("givenName", Value::from(given)), ("sn", Value::from(sn))],
    )
}

pub fn mv_objects_should_read_back_equal_singly_and_in_batches(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let objs = insert(
        store,
        vec![
            mv(
                "person",
                &[("mail", Value::from("a@x")), ("age", Value::from(40))],
            ),
            mv("group", &[("cn", Value::from("admins"))]),
        ],
    );
    let mut r = store.read().unwrap();
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

pub fn mv_get_many_should_handle_more_ids_than_one_query_takes(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let objs = insert(
        store,
        (0..1100)
            .map(|i| mv("person", &[("n", Value::from(i))]))
            .collect(),
    );
    let ids: Vec<i64> = objs.iter().map(|o| o.id).collect();
    assert_eq!(store.read().unwrap().mv_get_many(&ids).unwrap().len(), 1100);
}

pub fn mv_find_should_match_indexed_values_as_text_including_each_of_a_multi_value(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    store
        .set_mv_index(&[pair("person", "mail"), pair("person", "employeeId")])
        .unwrap();
    let objs = insert(
        store,
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
        find(store, "person", "mail", "alias@x".into()),
        [objs[0].id]
    );
    assert_eq!(find(store, "person", "mail", "a@x".into()), [objs[0].id]);
    // Integers and strings compare as text.
    assert_eq!(
        find(store, "person", "employeeId", Value::from(17)),
        [objs[0].id, objs[1].id]
    );
    // A multi-valued query matches any of its values.
    assert_eq!(
        find(
            store,
            "person",
            "mail",
            Value::Multi(vec!["b@x".into(), "a@x".into()])
        ),
        [objs[0].id, objs[1].id]
    );
    assert!(find(store, "person", "mail", "nobody@x".into()).is_empty());
}

pub fn mv_find_on_an_attribute_that_is_not_indexed_should_fail_as_invalid(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let err = store
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

pub fn mv_update_and_delete_should_keep_the_index_in_step(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let mut o = insert(store, vec![mv("person", &[("mail", Value::from("old@x"))])]).remove(0);
    o.attributes.get_mut("mail").unwrap().value = Value::from("new@x");
    let mut txn = store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    // The transaction finds its own write.
    assert_eq!(
        txn.mv_find("person", "mail", &"new@x".into()).unwrap(),
        [o.id]
    );
    txn.commit().unwrap();
    assert!(find(store, "person", "mail", "old@x".into()).is_empty());
    assert_eq!(find(store, "person", "mail", "new@x".into()), [o.id]);
    assert_eq!(store.read().unwrap().mv_get(o.id).unwrap(), Some(o.clone()));

    // An update that changes the object type moves it out of the index.
    o.object_type = "contact".into();
    let mut txn = store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert!(find(store, "person", "mail", "new@x".into()).is_empty());
    assert_eq!(store.read().unwrap().mv_count(Some("contact")).unwrap(), 1);

    let mut p = insert(store, vec![mv("person", &[("mail", Value::from("p@x"))])]).remove(0);
    let mut txn = store.begin().unwrap();
    txn.mv_delete(p.id).unwrap();
    txn.commit().unwrap();
    assert!(find(store, "person", "mail", "p@x".into()).is_empty());
    assert_eq!(store.read().unwrap().mv_get(p.id).unwrap(), None);
    p.id = 4242;
    let err = store.begin().unwrap().mv_update(&p).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
}

pub fn set_mv_index_should_build_new_pairs_from_existing_objects_and_drop_removed_ones(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    let objs = insert(
        store,
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
    store.set_mv_index(&[pair("person", "uid")]).unwrap();
    assert_eq!(find(store, "person", "uid", "bee".into()), [objs[1].id]);
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    assert_eq!(find(store, "person", "mail", "a@x".into()), [objs[0].id]);
    let err = store
        .read()
        .unwrap()
        .mv_find("person", "uid", &"a".into())
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
}

pub fn the_index_set_should_be_kept_for_another_handle(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let o = insert(store, vec![mv("person", &[("mail", Value::from("a@x"))])]).remove(0);
    let again = (s.open_again)();
    assert_eq!(find(&*again, "person", "mail", "a@x".into()), [o.id]);
}

pub fn mv_page_should_filter_by_type_and_attribute_indexed_or_not(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let objs = insert(
        store,
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
        store
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
        ..MvQuery::default()
    };
    assert_eq!(ids(people, 0, 10), [objs[0].id, objs[2].id]);
    let by_mail = MvQuery {
        object_type: Some("person".into()),
        attribute: Some(("mail".into(), "b@x".into())),
        ..MvQuery::default()
    };
    assert_eq!(ids(by_mail, 0, 10), [objs[2].id]);
    let it_anything = MvQuery {
        object_type: None,
        attribute: Some(("dept".into(), "IT".into())),
        ..MvQuery::default()
    };
    assert_eq!(
        ids(it_anything.clone(), 0, 10),
        [objs[0].id, objs[1].id, objs[2].id]
    );
    assert_eq!(ids(it_anything, objs[0].id, 1), [objs[1].id]);
}

pub fn mv_find_many_should_say_which_value_found_which_object_across_chunks(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let objs = insert(
        store,
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
    let mut r = store.read().unwrap();
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

pub fn an_update_should_write_only_the_keys_that_changed_and_follow_type_changes(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let multi = |vs: &[&str]| Value::Multi(vs.iter().map(|v| Value::from(*v)).collect());
    let mut o = insert(
        store,
        vec![mv("contact", &[("mail", multi(&["a@x", "b@x"]))])],
    )
    .remove(0);
    assert!(find(store, "person", "mail", "a@x".into()).is_empty());
    // Unindexed type to indexed: keys appear.
    o.object_type = "person".into();
    let mut txn = store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert_eq!(find(store, "person", "mail", "a@x".into()), [o.id]);
    // One value kept, one gone, one new.
    o.attributes.get_mut("mail").unwrap().value = multi(&["b@x", "c@x"]);
    let mut txn = store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert!(find(store, "person", "mail", "a@x".into()).is_empty());
    assert_eq!(find(store, "person", "mail", "b@x".into()), [o.id]);
    assert_eq!(find(store, "person", "mail", "c@x".into()), [o.id]);
    // The attribute removed: no keys left.
    o.attributes.remove("mail");
    let mut txn = store.begin().unwrap();
    txn.mv_update(&o).unwrap();
    txn.commit().unwrap();
    assert!(find(store, "person", "mail", "b@x".into()).is_empty());
    assert!(find(store, "person", "mail", "c@x".into()).is_empty());
}

pub fn mv_find_should_ignore_the_case_of_strings_but_not_of_binary_data(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store
        .set_mv_index(&[pair("person", "mail"), pair("person", "badge")])
        .unwrap();
    let badge = Value::Binary(b"AB".to_vec());
    let objs = insert(
        store,
        vec![
            mv(
                "person",
                &[
                    ("mail", Value::from("Ada.Lovelace@Example.com")),
                    ("badge", badge.clone()),
                ],
            ),
            mv(
                "person",
                &[(
                    "mail",
                    Value::Multi(vec!["Ünal@Example.com".into(), "alias@x".into()]),
                )],
            ),
        ],
    );
    for text in ["ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM"] {
        assert_eq!(
            find(store, "person", "mail", text.into()),
            [objs[0].id],
            "{text}"
        );
    }
    assert_eq!(
        find(store, "person", "mail", "ünal@example.com".into()),
        [objs[1].id]
    );
    let mut r = store.read().unwrap();
    let values = [Value::from("ÜNAL@EXAMPLE.COM"), Value::from("Alias@X")];
    let mut found = r.mv_find_many("person", "mail", &values).unwrap();
    found.sort();
    assert_eq!(found, [(0, objs[1].id), (1, objs[1].id)]);
    // Binary data is found by its text (base64, `QUI=`) as it is.
    assert_eq!(r.mv_find("person", "badge", &badge).unwrap(), [objs[0].id]);
    assert!(
        r.mv_find("person", "badge", &Value::from("qui="))
            .unwrap()
            .is_empty()
    );
    // Listing by an attribute ignores case too, through the index (with a
    // type) or not.
    for object_type in [Some("person".to_owned()), None] {
        let q = MvQuery {
            object_type: object_type.clone(),
            attribute: Some(("mail".into(), "ALIAS@X".into())),
            ..MvQuery::default()
        };
        let page = r.mv_page(&q, 0, 10).unwrap();
        assert_eq!(
            page.iter().map(|o| o.id).collect::<Vec<_>>(),
            [objs[1].id],
            "{object_type:?}"
        );
    }
}

pub fn a_derived_index_should_find_objects_by_the_key_it_computes_as_they_change(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    // Stored before the index is declared: its keys are built from them.
    let mut ada = insert(store, vec![person("Ada", "Lovelace")]).remove(0);
    store.set_mv_index(&[DottedName::def()]).unwrap();
    let key = "mv_expr:dotted";
    assert_eq!(find(store, "person", key, "ada.lovelace".into()), [ada.id]);
    let alan = insert(store, vec![person("Alan", "Turing")]).remove(0);
    assert_eq!(find(store, "person", key, "ALAN.TURING".into()), [alan.id]);
    // An update changes the key; a delete removes it.
    ada.attributes.get_mut("sn").unwrap().value = Value::from("King");
    let mut txn = store.begin().unwrap();
    txn.mv_update(&ada).unwrap();
    txn.mv_delete(alan.id).unwrap();
    txn.commit().unwrap();
    assert!(find(store, "person", key, "ada.lovelace".into()).is_empty());
    assert_eq!(find(store, "person", key, "ada.king".into()), [ada.id]);
    assert!(find(store, "person", key, "alan.turing".into()).is_empty());
    // The same in a bulk transaction.
    let mut found = Vec::new();
    store
        .write_bulk(&mut |txn| {
            let mut grace = person("Grace", "Hopper");
            txn.mv_insert(&mut grace)?;
            found = txn.mv_find("person", key, &"grace.hopper".into())?;
            assert_eq!(found, [grace.id]);
            Ok(())
        })
        .unwrap();
    assert_eq!(find(store, "person", key, "Grace.Hopper".into()), found);
    // `mv_page` lists by attributes, not by a derived index's name.
    let q = MvQuery {
        object_type: Some("person".into()),
        attribute: Some((key.into(), "ada.king".into())),
        ..MvQuery::default()
    };
    assert!(store.read().unwrap().mv_page(&q, 0, 10).unwrap().is_empty());
}

pub fn a_handle_that_did_not_declare_a_derived_index_should_refuse_to_write_its_type(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[DottedName::def()]).unwrap();
    let ada = insert(store, vec![person("Ada", "Lovelace")]).remove(0);
    let again = (s.open_again)();
    let again = &*again;
    // Reads need no computation.
    assert_eq!(
        find(again, "person", "mv_expr:dotted", "ada.lovelace".into()),
        [ada.id]
    );
    let mut txn = again.begin().unwrap();
    let err = txn.mv_insert(&mut person("Alan", "Turing")).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert!(
        err.message.contains("mv_expr:dotted") && err.message.contains("set_mv_index"),
        "{}",
        err.message
    );
    // Other types are written as usual.
    txn.mv_insert(&mut mv("group", &[("cn", Value::from("admins"))]))
        .unwrap();
    drop(txn);
    let err = again
        .write_bulk(&mut |txn| txn.mv_insert(&mut person("Alan", "Turing")))
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    // Declared again, it writes, and the index was kept.
    again.set_mv_index(&[DottedName::def()]).unwrap();
    let alan = insert(again, vec![person("Alan", "Turing")]).remove(0);
    assert_eq!(
        find(again, "person", "mv_expr:dotted", "alan.turing".into()),
        [alan.id]
    );
}

pub fn mv_page_should_compare_exactly_when_case_sensitive_and_mv_page_ids_should_agree(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_mv_index(&[pair("person", "mail")]).unwrap();
    let objs = insert(
        store,
        vec![
            mv(
                "person",
                &[("mail", Value::from("Ada@X")), ("dept", Value::from("IT"))],
            ),
            mv(
                "person",
                &[("mail", Value::from("ada@x")), ("dept", Value::from("it"))],
            ),
            mv(
                "person",
                &[
                    ("mail", Value::Multi(vec!["b@x".into(), "Ada@X".into()])),
                    ("dept", Value::Multi(vec!["HR".into(), "IT".into()])),
                ],
            ),
            mv("group", &[("dept", Value::from("IT"))]),
        ],
    );
    let ids = |q: &MvQuery, after: i64, limit: usize| -> Vec<i64> {
        let mut r = store.read().unwrap();
        let page: Vec<i64> = r
            .mv_page(q, after, limit)
            .unwrap()
            .into_iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(
            r.mv_page_ids(q, after, limit).unwrap(),
            page,
            "mv_page_ids of {q:?} after {after}"
        );
        page
    };
    let q = |t: Option<&str>, a: &str, v: &str, case_sensitive: bool| MvQuery {
        object_type: t.map(str::to_owned),
        attribute: Some((a.into(), v.into())),
        case_sensitive,
    };
    let [a, b, c, g] = [objs[0].id, objs[1].id, objs[2].id, objs[3].id];
    // Through the index (mail of person) and by a scan (dept, or no type).
    assert_eq!(
        ids(&q(Some("person"), "mail", "ADA@x", false), 0, 10),
        [a, b, c]
    );
    assert_eq!(
        ids(&q(Some("person"), "mail", "Ada@X", true), 0, 10),
        [a, c]
    );
    assert_eq!(ids(&q(Some("person"), "mail", "Ada@X", true), a, 1), [c]);
    assert!(ids(&q(Some("person"), "mail", "ADA@X", true), 0, 10).is_empty());
    assert_eq!(ids(&q(None, "mail", "Ada@X", true), 0, 10), [a, c]);
    assert_eq!(
        ids(&q(Some("person"), "dept", "it", false), 0, 10),
        [a, b, c]
    );
    assert_eq!(ids(&q(Some("person"), "dept", "IT", true), 0, 10), [a, c]);
    assert_eq!(ids(&q(None, "dept", "IT", true), 0, 10), [a, c, g]);
    assert_eq!(ids(&q(None, "dept", "IT", true), a, 2), [c, g]);
    // Without an attribute, by type or not.
    let people = MvQuery {
        object_type: Some("person".into()),
        ..MvQuery::default()
    };
    assert_eq!(ids(&people, 0, 10), [a, b, c]);
    assert_eq!(ids(&people, a, 1), [b]);
    assert_eq!(ids(&MvQuery::default(), b, 10), [c, g]);
}
