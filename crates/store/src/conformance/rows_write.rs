//! Value rows written ([`Store::set_value_rows`]): what each kind of
//! value written does to the rows, value changes, deletes, rollbacks, and
//! updates of objects whose rows changed since they were read. The
//! fixtures are `rows`'s.

use super::ConformanceTarget;
use super::rows::{cs_sorted, declared, group, insert, mv_group, mv_sorted, refs, set};
use crate::api::StoreErrorKind;
use autosync_model::{CsObject, MvObject, Value, ValueDelta};

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
        // Two without rows (a single member), one with.
        let (mut single, mut multi) = (group(Value::Reference(3)), group(refs(0..5)));
        multi.anchor = "g2".into();
        let mut later = group(Value::Reference(3));
        later.anchor = "g3".into();
        insert(store, &mut [&mut single, &mut multi, &mut later], &mut []);
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
            // Given rows, then read (its body does not mark them yet),
            // written without the attribute.
            txn.cs_values_change(later.id, "members", &delta)?;
            let mut o = txn.cs_get_light(later.id)?.unwrap();
            o.hologram.remove("members");
            txn.cs_update_owned(o)?;
            // Read with rows, written with a single value.
            let mut o = txn.cs_get_light(multi.id)?.unwrap();
            o.hologram.insert("members".into(), Value::Reference(4));
            txn.cs_update_owned(o)
        })
        .unwrap();
        let mut r = store.read().unwrap();
        for (o, members) in [
            (&single, None),
            (&later, None),
            (&multi, Some(Value::Reference(4))),
        ] {
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
