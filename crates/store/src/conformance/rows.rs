//! Value rows ([`Store::set_value_rows`]): declared multi-valued
//! attributes read back whole by every full read, as the placeholder by
//! light reads; `mv_find` answered from the rows; changed declarations;
//! and the pending values of a connector-space object's body. What writes
//! do to the rows is in `rows_write`.

use super::ConformanceTarget;
use super::fixtures::*;
use crate::api::{CsFilter, MvQuery, Store, ValueRows};
use autosync_model::{
    CsObject, ExportKind, ImportKind, MvObject, MvValue, PendingExport, PendingImport, Value,
    ValueDelta,
};

/// `members` of MA `ad` and of metaverse type `group` as rows.
pub(super) fn declared() -> ValueRows {
    let mut rows = ValueRows::default();
    rows.cs
        .entry("ad".into())
        .or_default()
        .insert("members".into());
    rows.mv
        .entry("group".into())
        .or_default()
        .insert("members".into());
    rows
}

pub(super) fn refs(range: std::ops::Range<i64>) -> Value {
    Value::Multi(range.map(Value::Reference).collect())
}

/// A value's values as a sorted list (rows come back in any stable order).
pub(super) fn set(v: Option<&Value>) -> Vec<Value> {
    let mut out = match v {
        Some(Value::Multi(vs)) => vs.clone(),
        Some(v) => vec![v.clone()],
        None => Vec::new(),
    };
    out.sort();
    out
}

/// `o` with its multi-values sorted, to compare with what a store read.
pub(super) fn cs_sorted(mut o: CsObject) -> CsObject {
    for v in o.hologram.values_mut() {
        if let Value::Multi(vs) = v {
            vs.sort();
        }
    }
    o
}

pub(super) fn mv_sorted(mut o: MvObject) -> MvObject {
    for v in o.attributes.values_mut() {
        if let Value::Multi(vs) = &mut v.value {
            vs.sort();
        }
    }
    o
}

pub(super) fn group(members: Value) -> CsObject {
    let mut o = cs("ad", "g1");
    o.object_type = "group".into();
    o.hologram.insert("members".into(), members);
    o
}

pub(super) fn mv_group(members: Value) -> MvObject {
    mv("group", &[("cn", Value::from("g")), ("members", members)])
}

pub(super) fn insert(store: &dyn Store, cs: &mut [&mut CsObject], mvs: &mut [&mut MvObject]) {
    let mut txn = store.begin().unwrap();
    for m in mvs {
        txn.mv_insert(m).unwrap();
    }
    for o in cs {
        txn.cs_insert(o).unwrap();
    }
    txn.commit().unwrap();
}

pub fn a_row_attribute_of_5000_values_should_read_back_whole_by_every_read(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let (mut m, mut o) = (mv_group(refs(0..5000)), group(refs(0..5000)));
    let mut other = cs("ad", "u1");
    insert(store, &mut [], &mut [&mut m]);
    o = joined(o, m.id);
    other = joined(other, m.id);
    insert(store, &mut [&mut o, &mut other], &mut []);
    let (o, m) = (cs_sorted(o), mv_sorted(m));
    let mut r = store.read().unwrap();
    let name = &t.name;
    assert_eq!(
        r.cs_get(o.id).unwrap().map(cs_sorted),
        Some(o.clone()),
        "{name}: cs_get"
    );
    assert_eq!(
        r.cs_by_anchor("ad", "g1").unwrap().map(cs_sorted),
        Some(o.clone()),
        "{name}: cs_by_anchor"
    );
    for (what, list) in [
        (
            "cs_by_anchors",
            r.cs_by_anchors("ad", &["g1", "u1"]).unwrap(),
        ),
        ("cs_page", r.cs_page("ad", CsFilter::All, 0, 10).unwrap()),
        ("cs_by_mv", r.cs_by_mv(m.id).unwrap()),
        ("cs_by_mvs", r.cs_by_mvs(&[m.id]).unwrap()),
    ] {
        let mut list: Vec<CsObject> = list.into_iter().map(cs_sorted).collect();
        list.sort_by_key(|x| x.id);
        assert_eq!(list, [o.clone(), other.clone()], "{name}: {what}");
    }
    assert_eq!(
        r.mv_get(m.id).unwrap().map(mv_sorted),
        Some(m.clone()),
        "{name}: mv_get"
    );
    let many: Vec<MvObject> = r
        .mv_get_many(&[m.id])
        .unwrap()
        .into_iter()
        .map(mv_sorted)
        .collect();
    assert_eq!(many, std::slice::from_ref(&m), "{name}: mv_get_many");
    let q = MvQuery {
        object_type: Some("group".into()),
        ..MvQuery::default()
    };
    let page: Vec<MvObject> = r
        .mv_page(&q, 0, 10)
        .unwrap()
        .into_iter()
        .map(mv_sorted)
        .collect();
    assert_eq!(page, std::slice::from_ref(&m), "{name}: mv_page");
    assert_eq!(r.cs_values_count(o.id, "members").unwrap(), 5000, "{name}");
    assert_eq!(r.mv_values_count(m.id, "members").unwrap(), 5000, "{name}");
    // Counted up to a cap, a large group is not counted whole.
    assert_eq!(
        r.cs_values_count_upto(o.id, "members", 10).unwrap(),
        10,
        "{name}"
    );
    assert_eq!(
        r.mv_values_count_upto(m.id, "members", 1).unwrap(),
        1,
        "{name}"
    );
    assert_eq!(
        r.mv_values_count_upto(m.id, "members", 9000).unwrap(),
        5000,
        "{name}"
    );
    assert_eq!(
        set(Some(&Value::Multi(r.mv_values(m.id, "members").unwrap()))),
        set(m.get("members")),
        "{name}: mv_values"
    );
}

pub fn a_light_read_should_give_the_placeholder_and_a_light_object_written_back_should_keep_the_rows(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let (mut m, mut o) = (mv_group(refs(0..50)), group(refs(0..50)));
    // A single value of a declared attribute stays whole.
    let mut single = group(Value::Reference(9));
    single.anchor = "g2".into();
    insert(store, &mut [&mut o, &mut single], &mut [&mut m]);
    let name = &t.name;
    let mut r = store.read().unwrap();
    let light = r.cs_get_light(o.id).unwrap().unwrap();
    assert_eq!(
        light.hologram.get("members"),
        Some(&Value::Multi(vec![])),
        "{name}"
    );
    assert_eq!(light.hologram.get("name"), o.hologram.get("name"), "{name}");
    for list in [
        r.cs_by_anchors_light("ad", &["g1"]).unwrap(),
        r.cs_page_light("ad", CsFilter::All, 0, 1).unwrap(),
    ] {
        assert_eq!(list, std::slice::from_ref(&light), "{name}");
    }
    let single_light = r.cs_get_light(single.id).unwrap().unwrap();
    assert_eq!(single_light, single, "{name}: a single value is whole");
    drop(r);
    // The placeholder of an attribute without rows (a new object, or every
    // value removed) reads as no value, light or whole.
    let mut empty = group(Value::Multi(vec![]));
    empty.anchor = "g3".into();
    insert(store, &mut [&mut empty], &mut []);
    let mut txn = store.begin().unwrap();
    let all = ValueDelta {
        add: vec![],
        remove: (0..50).map(Value::Reference).collect(),
    };
    txn.mv_values_change(m.id, "members", &all).unwrap();
    assert!(
        txn.mv_get_light(m.id)
            .unwrap()
            .unwrap()
            .get("members")
            .is_none(),
        "{name}"
    );
    drop(txn);
    let mut r = store.read().unwrap();
    for o in [
        r.cs_get_light(empty.id).unwrap(),
        r.cs_get(empty.id).unwrap(),
    ] {
        assert_eq!(o.unwrap().hologram.get("members"), None, "{name}: no rows");
    }
    let mlight = r.mv_get_light(m.id).unwrap().unwrap();
    assert_eq!(
        mlight.attributes.get("members"),
        Some(&MvValue {
            value: Value::Multi(vec![]),
            contributor: "hr".into()
        }),
        "{name}"
    );
    assert_eq!(
        r.mv_get_many_light(&[m.id]).unwrap(),
        std::slice::from_ref(&mlight),
        "{name}"
    );
    drop(r);
    // Written back (another attribute changed): the rows stay.
    let (mut light, mut mlight) = (light, mlight);
    light.hologram.insert("name".into(), Value::from("renamed"));
    mlight.attributes.insert(
        "cn".into(),
        MvValue {
            value: Value::from("renamed"),
            contributor: "hr".into(),
        },
    );
    let mut txn = store.begin().unwrap();
    txn.cs_update(&light).unwrap();
    txn.mv_update(&mlight).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    let back = r.cs_get(o.id).unwrap().unwrap();
    assert_eq!(
        back.hologram.get("name"),
        Some(&Value::from("renamed")),
        "{name}"
    );
    assert_eq!(
        set(back.hologram.get("members")),
        set(o.hologram.get("members")),
        "{name}"
    );
    let mback = r.mv_get(m.id).unwrap().unwrap();
    assert_eq!(mback.get("cn"), Some(&Value::from("renamed")), "{name}");
    assert_eq!(set(mback.get("members")), set(m.get("members")), "{name}");
}

pub fn mv_find_on_a_row_attribute_should_answer_from_the_rows_exactly(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let (mut a, mut b, mut c) = (
        mv_group(refs(0..100)),
        mv_group(refs(50..60)),
        mv_group(Value::Reference(7)),
    );
    // Another type with the same attribute is not found.
    let mut other = mv("role", &[("members", refs(0..100))]);
    insert(store, &mut [], &mut [&mut a, &mut b, &mut c, &mut other]);
    let name = &t.name;
    let mut r = store.read().unwrap();
    let find = |r: &mut Box<dyn crate::api::StoreRead + '_>, v: Value| {
        let mut ids = r.mv_find("group", "members", &v).unwrap();
        ids.sort();
        ids
    };
    assert_eq!(find(&mut r, Value::Reference(55)), [a.id, b.id], "{name}");
    assert_eq!(
        find(&mut r, Value::Reference(7)),
        [a.id, c.id],
        "{name}: a single value"
    );
    assert!(find(&mut r, Value::Reference(500)).is_empty(), "{name}");
    assert!(
        find(&mut r, Value::from("mv:55")).is_empty(),
        "{name}: exactly"
    );
    assert_eq!(
        find(
            &mut r,
            Value::Multi(vec![Value::Reference(7), Value::Reference(99)])
        ),
        [a.id, c.id],
        "{name}: any value of a multi-value"
    );
    let mut many = r
        .mv_find_many(
            "group",
            "members",
            &[
                Value::Reference(55),
                Value::Reference(500),
                Value::Reference(7),
            ],
        )
        .unwrap();
    many.sort();
    assert_eq!(many, [(0, a.id), (0, b.id), (2, a.id), (2, c.id)], "{name}");
    drop(r);
    // Changes are found at once, in the transaction too.
    let mut txn = store.begin().unwrap();
    txn.mv_values_change(
        b.id,
        "members",
        &ValueDelta {
            add: vec![Value::Reference(500)],
            remove: vec![Value::Reference(55)],
        },
    )
    .unwrap();
    assert_eq!(
        txn.mv_find("group", "members", &Value::Reference(500))
            .unwrap(),
        [b.id],
        "{name}"
    );
    assert_eq!(
        txn.mv_find("group", "members", &Value::Reference(55))
            .unwrap(),
        [a.id],
        "{name}"
    );
    txn.commit().unwrap();
}

pub fn an_object_should_read_whole_whatever_the_declaration_said_when_it_was_written(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    let name = &t.name;
    // Written before the declaration: in the body.
    let (mut before_m, mut before_o) = (mv_group(refs(0..5)), group(refs(0..5)));
    before_o.anchor = "old".into();
    insert(store, &mut [&mut before_o], &mut [&mut before_m]);
    store.set_value_rows(&declared()).unwrap();
    let (mut m, mut o) = (mv_group(refs(0..30)), group(refs(0..30)));
    insert(store, &mut [&mut o], &mut [&mut m]);
    {
        let mut r = store.read().unwrap();
        assert_eq!(
            r.cs_get_light(before_o.id).unwrap().unwrap(),
            before_o,
            "{name}: whole"
        );
        // Metaverse values declared later are found by value.
        let mut found = r.mv_find("group", "members", &Value::Reference(3)).unwrap();
        found.sort();
        assert_eq!(found, [before_m.id, m.id], "{name}");
        assert_eq!(
            set(r.mv_get(before_m.id).unwrap().unwrap().get("members")),
            set(before_m.get("members")),
            "{name}"
        );
    }
    // No longer declared: what has rows still reads whole.
    store.set_value_rows(&ValueRows::default()).unwrap();
    let other = (s.open_again)();
    for st in [store, &*other] {
        let mut r = st.read().unwrap();
        let got = r.cs_get(o.id).unwrap().unwrap();
        assert_eq!(
            set(got.hologram.get("members")),
            set(o.hologram.get("members")),
            "{name}"
        );
        let got = r.mv_get(m.id).unwrap().unwrap();
        assert_eq!(set(got.get("members")), set(m.get("members")), "{name}");
    }
    // Written again, undeclared: in the body, the rows gone.
    o.hologram.insert("members".into(), refs(0..2));
    let mut txn = store.begin().unwrap();
    txn.cs_update(&o).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_get_light(o.id).unwrap().unwrap(), o, "{name}");
    assert_eq!(r.cs_values_count(o.id, "members").unwrap(), 0, "{name}");
    assert_eq!(
        r.cs_values_count_upto(o.id, "members", 5).unwrap(),
        0,
        "{name}"
    );
}

pub fn pending_values_should_round_trip(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let delta = |a: i64, r: i64| ValueDelta {
        add: vec![Value::Reference(a)],
        remove: vec![Value::Reference(r), Value::from("x")],
    };
    let mut o = group(refs(0..3));
    o.pending_import = Some(PendingImport {
        kind: ImportKind::Update,
        attributes: attrs(&[("name", "g1")]),
        dn: None,
        object_type: None,
        values: [("members".to_owned(), delta(1, 2))].into_iter().collect(),
    });
    let export = |values| PendingExport {
        kind: ExportKind::Update,
        changes: Default::default(),
        new_dn: None,
        values,
    };
    o.pending_export = Some(export(
        [("members".to_owned(), delta(3, 4))].into_iter().collect(),
    ));
    o.unconfirmed_export = Some(export(
        [("member".to_owned(), delta(5, 6))].into_iter().collect(),
    ));
    insert(store, &mut [&mut o], &mut []);
    let name = &t.name;
    // A light read keeps them; a whole read makes them whole.
    let mut whole = o.clone();
    whole.make_whole();
    assert_eq!(
        store.read().unwrap().cs_get_light(o.id).unwrap(),
        Some(o.clone()),
        "{name}: light"
    );
    assert_eq!(
        store.read().unwrap().cs_get(o.id).unwrap(),
        Some(whole.clone()),
        "{name}: whole"
    );
    store.set_value_rows(&declared()).unwrap();
    let mut txn = store.begin().unwrap();
    txn.cs_update(&o).unwrap();
    txn.commit().unwrap();
    let got = store.read().unwrap().cs_get(o.id).unwrap().unwrap();
    assert_eq!(cs_sorted(got), cs_sorted(whole), "{name}: with rows too");
    let light = store.read().unwrap().cs_get_light(o.id).unwrap().unwrap();
    assert_eq!(
        (
            &light.pending_import,
            &light.pending_export,
            &light.unconfirmed_export
        ),
        (&o.pending_import, &o.pending_export, &o.unconfirmed_export),
        "{name}: with rows, light"
    );
}

/// A pending `Update` that names a row attribute neither whole nor as
/// values leaves it unchanged: a whole read gives the pending import the
/// hologram's rows (a group whose name changed keeps its members), by
/// every whole read; a light read leaves it as written.
pub fn an_update_that_does_not_name_a_row_attribute_should_read_whole_with_it_unchanged(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let mut o = group(refs(0..3));
    let pending = PendingImport {
        kind: ImportKind::Update,
        attributes: attrs(&[("name", "renamed")]),
        dn: None,
        object_type: None,
        values: Default::default(),
    };
    o.pending_import = Some(pending.clone());
    insert(store, &mut [&mut o], &mut []);
    let name = &t.name;
    let whole = [
        store.read().unwrap().cs_get(o.id).unwrap().unwrap(),
        store
            .read()
            .unwrap()
            .cs_by_anchor("ad", "g1")
            .unwrap()
            .unwrap(),
        store
            .read()
            .unwrap()
            .cs_page("ad", CsFilter::PendingImport, 0, 10)
            .unwrap()
            .remove(0),
    ];
    for got in whole {
        let p = got.pending_import.unwrap();
        assert_eq!(
            set(p.attributes.get("members")),
            set(Some(&refs(0..3))),
            "{name}"
        );
        assert_eq!(
            p.attributes.get("name"),
            Some(&Value::from("renamed")),
            "{name}"
        );
    }
    let light = store.read().unwrap().cs_get_light(o.id).unwrap().unwrap();
    assert_eq!(light.pending_import, Some(pending), "{name}: light");
}
