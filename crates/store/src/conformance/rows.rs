//! Value rows ([`Store::set_value_rows`]): declared multi-valued
//! attributes read back whole by every full read, as the placeholder by
//! light reads; what each kind of value written does to the rows; value
//! reads and changes; `mv_find` answered from the rows; deletes, changed
//! declarations, rollbacks; and the pending values of a connector-space
//! object's body.

use super::ConformanceTarget;
use super::fixtures::*;
use crate::api::{CsFilter, MvQuery, Store, StoreErrorKind, ValueRows};
use autosync_model::{
    CsObject, ExportKind, ImportKind, MvObject, MvValue, PendingExport, PendingImport, Value,
    ValueDelta,
};

/// `members` of MA `ad` and of metaverse type `group` as rows.
fn declared() -> ValueRows {
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

fn refs(range: std::ops::Range<i64>) -> Value {
    Value::Multi(range.map(Value::Reference).collect())
}

/// A value's values as a sorted list (rows come back in any stable order).
fn set(v: Option<&Value>) -> Vec<Value> {
    let mut out = match v {
        Some(Value::Multi(vs)) => vs.clone(),
        Some(v) => vec![v.clone()],
        None => Vec::new(),
    };
    out.sort();
    out
}

/// `o` with its multi-values sorted, to compare with what a store read.
fn cs_sorted(mut o: CsObject) -> CsObject {
    for v in o.hologram.values_mut() {
        if let Value::Multi(vs) = v {
            vs.sort();
        }
    }
    o
}

fn mv_sorted(mut o: MvObject) -> MvObject {
    for v in o.attributes.values_mut() {
        if let Value::Multi(vs) = &mut v.value {
            vs.sort();
        }
    }
    o
}

fn group(members: Value) -> CsObject {
    let mut o = cs("ad", "g1");
    o.object_type = "group".into();
    o.hologram.insert("members".into(), members);
    o
}

fn mv_group(members: Value) -> MvObject {
    mv("group", &[("cn", Value::from("g")), ("members", members)])
}

fn insert(store: &dyn Store, cs: &mut [&mut CsObject], mvs: &mut [&mut MvObject]) {
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

pub fn a_multi_value_should_replace_the_rows_and_a_single_or_absent_one_delete_them(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let (mut m, mut o) = (mv_group(refs(0..20)), group(refs(0..20)));
    insert(store, &mut [&mut o], &mut [&mut m]);
    let name = &t.name;
    let update = |o: &CsObject, m: &MvObject| {
        let mut txn = store.begin().unwrap();
        txn.cs_update(o).unwrap();
        txn.mv_update(m).unwrap();
        txn.commit().unwrap();
    };
    let read = || {
        let mut r = store.read().unwrap();
        let o = r.cs_get(o.id).unwrap().unwrap();
        let m = r.mv_get(m.id).unwrap().unwrap();
        (
            o.hologram.get("members").cloned(),
            m.get("members").cloned(),
            r.cs_values_count(o.id, "members").unwrap(),
            r.mv_values_count(m.id, "members").unwrap(),
        )
    };
    // Replaced: some values kept, some gone, some new.
    o.hologram.insert("members".into(), refs(10..30));
    m.attributes.get_mut("members").unwrap().value = refs(10..30);
    update(&o, &m);
    let (cv, mv, cn, mn) = read();
    assert_eq!(
        set(cv.as_ref()),
        set(Some(&refs(10..30))),
        "{name}: replaced"
    );
    assert_eq!(
        set(mv.as_ref()),
        set(Some(&refs(10..30))),
        "{name}: replaced"
    );
    assert_eq!((cn, mn), (20, 20), "{name}");
    // Every value replaced.
    o.hologram.insert("members".into(), refs(100..105));
    m.attributes.get_mut("members").unwrap().value = refs(100..105);
    update(&o, &m);
    let (cv, mv, cn, mn) = read();
    assert_eq!(
        set(cv.as_ref()),
        set(Some(&refs(100..105))),
        "{name}: all replaced"
    );
    assert_eq!(
        set(mv.as_ref()),
        set(Some(&refs(100..105))),
        "{name}: all replaced"
    );
    assert_eq!((cn, mn), (5, 5), "{name}");
    // A single value: in the body, no rows.
    o.hologram.insert("members".into(), Value::Reference(3));
    m.attributes.get_mut("members").unwrap().value = Value::Reference(3);
    update(&o, &m);
    assert_eq!(
        read(),
        (Some(Value::Reference(3)), Some(Value::Reference(3)), 0, 0),
        "{name}: single"
    );
    // Rows again, then none at all.
    o.hologram.insert("members".into(), refs(0..3));
    m.attributes.get_mut("members").unwrap().value = refs(0..3);
    update(&o, &m);
    assert_eq!(read().2, 3, "{name}");
    o.hologram.remove("members");
    m.attributes.remove("members");
    update(&o, &m);
    assert_eq!(read(), (None, None, 0, 0), "{name}: absent");
}

pub fn value_changes_should_add_and_remove_values_and_be_idempotent(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let (mut m, mut o) = (mv_group(refs(0..10)), group(refs(0..10)));
    insert(store, &mut [&mut o], &mut [&mut m]);
    let name = &t.name;
    let delta = ValueDelta {
        add: vec![Value::Reference(100), Value::Reference(5)],
        remove: vec![Value::Reference(0), Value::Reference(1000)],
    };
    for _ in 0..2 {
        let mut txn = store.begin().unwrap();
        txn.cs_values_change(o.id, "members", &delta).unwrap();
        txn.mv_values_change(m.id, "members", &delta).unwrap();
        // Seen inside the transaction.
        assert_eq!(txn.cs_values_count(o.id, "members").unwrap(), 10, "{name}");
        assert_eq!(
            txn.mv_values_present(
                m.id,
                "members",
                &[Value::Reference(100), Value::Reference(0)]
            )
            .unwrap(),
            [true, false],
            "{name}"
        );
        txn.commit().unwrap();
    }
    let want = set(Some(&Value::Multi(
        (1..10).chain([100]).map(Value::Reference).collect(),
    )));
    let mut r = store.read().unwrap();
    let cs_values = r.cs_values(o.id, "members").unwrap();
    assert_eq!(
        set(Some(&Value::Multi(cs_values))),
        want,
        "{name}: cs_values"
    );
    assert_eq!(
        set(r.mv_get(m.id).unwrap().unwrap().get("members")),
        want,
        "{name}: the whole object"
    );
    assert_eq!(
        r.cs_values_present(
            o.id,
            "members",
            &[Value::Reference(100), Value::Reference(0)]
        )
        .unwrap(),
        [true, false],
        "{name}"
    );
    assert_eq!(r.mv_values_count(m.id, "members").unwrap(), 10, "{name}");
    // Values compare exactly: a string is not the reference it reads like.
    assert_eq!(
        r.cs_values_present(o.id, "members", &[Value::from("mv:5")])
            .unwrap(),
        [false],
        "{name}"
    );
    drop(r);
    let mut txn = store.begin().unwrap();
    let err = txn
        .cs_values_change(o.id, "undeclared", &delta)
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid, "{name}: {}", err.message);
    let err = txn
        .mv_values_change(987_654, "members", &delta)
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid, "{name}: {}", err.message);
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

pub fn deleting_an_object_should_delete_its_rows(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let (mut m, mut o) = (mv_group(refs(0..10)), group(refs(0..10)));
    insert(store, &mut [&mut o], &mut [&mut m]);
    let mut txn = store.begin().unwrap();
    txn.cs_delete(o.id).unwrap();
    txn.mv_delete(m.id).unwrap();
    txn.commit().unwrap();
    let name = &t.name;
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_values_count(o.id, "members").unwrap(), 0, "{name}");
    assert_eq!(r.mv_values_count(m.id, "members").unwrap(), 0, "{name}");
    assert!(
        r.mv_find("group", "members", &Value::Reference(3))
            .unwrap()
            .is_empty(),
        "{name}"
    );
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

pub fn a_rolled_back_transaction_should_leave_the_rows_as_they_were(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store.set_value_rows(&declared()).unwrap();
    let (mut m, mut o) = (mv_group(refs(0..10)), group(refs(0..10)));
    insert(store, &mut [&mut o], &mut [&mut m]);
    let delta = ValueDelta {
        add: vec![Value::Reference(77)],
        remove: vec![Value::Reference(1)],
    };
    let mut changed = o.clone();
    changed.hologram.insert("members".into(), refs(5..8));
    {
        let mut txn = store.begin().unwrap();
        txn.cs_update(&changed).unwrap();
        txn.mv_values_change(m.id, "members", &delta).unwrap();
        // Dropped without a commit.
    }
    let failed = store.write_bulk(&mut |txn| {
        txn.cs_values_change(o.id, "members", &delta)?;
        txn.mv_delete(m.id)?;
        Err(crate::api::StoreError::new(StoreErrorKind::Io, "stop"))
    });
    assert!(failed.is_err());
    let name = &t.name;
    let mut r = store.read().unwrap();
    assert_eq!(
        r.cs_get(o.id).unwrap().map(cs_sorted),
        Some(cs_sorted(o)),
        "{name}"
    );
    assert_eq!(
        r.mv_get(m.id).unwrap().map(mv_sorted),
        Some(mv_sorted(m.clone())),
        "{name}"
    );
    assert_eq!(
        r.mv_find("group", "members", &Value::Reference(1)).unwrap(),
        [m.id],
        "{name}"
    );
    assert!(
        r.mv_find("group", "members", &Value::Reference(77))
            .unwrap()
            .is_empty(),
        "{name}"
    );
}

pub fn an_update_should_clear_the_rows_an_object_gained_since_it_was_read(t: &ConformanceTarget) {
    use super::refs::{KINDS, write};
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        store.set_value_rows(&declared()).unwrap();
        let name = format!("{} {kind:?}", t.name);
        // One without rows (a single member), one with.
        let (mut single, mut multi) = (group(Value::Reference(3)), group(refs(0..5)));
        multi.anchor = "g2".into();
        insert(store, &mut [&mut single, &mut multi], &mut []);
        let delta = ValueDelta {
            add: vec![Value::Reference(10), Value::Reference(11)],
            remove: Vec::new(),
        };
        write(store, kind, &mut |txn| {
            // Read without rows, given rows, written without the attribute.
            let mut o = txn.cs_get_light(single.id)?.unwrap();
            txn.cs_values_change(o.id, "members", &delta)?;
            o.hologram.remove("members");
            o.hologram.insert("cn".into(), Value::from("a"));
            txn.cs_update_owned(o)?;
            // Read with rows, written with a single value.
            let mut o = txn.cs_get_light(multi.id)?.unwrap();
            o.hologram.insert("members".into(), Value::Reference(4));
            txn.cs_update_owned(o)
        })
        .unwrap();
        let mut r = store.read().unwrap();
        for (o, members) in [(&single, None), (&multi, Some(Value::Reference(4)))] {
            assert_eq!(r.cs_values_count(o.id, "members").unwrap(), 0, "{name}");
            let got = r.cs_get(o.id).unwrap().unwrap();
            assert_eq!(got.hologram.get("members"), members.as_ref(), "{name}");
        }
        // Read without rows and written again without: still none, and the
        // object as written.
        write(store, kind, &mut |txn| {
            let mut o = txn.cs_get_light(multi.id)?.unwrap();
            o.hologram.insert("members".into(), Value::Reference(5));
            txn.cs_update_owned(o)
        })
        .unwrap();
        let got = store.read().unwrap().cs_get(multi.id).unwrap().unwrap();
        assert_eq!(
            got.hologram.get("members"),
            Some(&Value::Reference(5)),
            "{name}"
        );
    }
}
