//! Connector-space objects: insert, read back by id and anchor, update,
//! delete, filters, paging and counts.

use super::ConformanceTarget;
use super::fixtures::*;
use crate::api::{CsCounts, CsFilter, Store, StoreErrorKind};
use autosync_model::{Connection, CsId, CsObject, ExportKind, PendingExport};

fn insert(store: &dyn Store, objs: Vec<CsObject>) -> Vec<CsObject> {
    let mut txn = store.begin().unwrap();
    let mut out = Vec::new();
    for mut o in objs {
        txn.cs_insert(&mut o).unwrap();
        out.push(o);
    }
    txn.commit().unwrap();
    out
}

pub fn inserted_objects_should_read_back_equal_by_id_and_by_anchor(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let objs = insert(
        store,
        vec![with_pending_import(cs("hr", "a1")), cs("hr", "a2")],
    );
    assert!(objs.iter().all(|o| o.id > 0));
    assert_ne!(objs[0].id, objs[1].id);
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_get(objs[0].id).unwrap().as_ref(), Some(&objs[0]));
    assert_eq!(r.cs_by_anchor("hr", "a2").unwrap().as_ref(), Some(&objs[1]));
    assert_eq!(r.cs_by_anchor("ad", "a2").unwrap(), None);
    assert_eq!(r.cs_get(9999).unwrap(), None);
}

pub fn inserting_an_existing_anchor_should_fail_as_invalid_and_name_it(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    insert(store, vec![cs("hr", "a1")]);
    let mut txn = store.begin().unwrap();
    let mut dup = cs("hr", "a1");
    let err = txn.cs_insert(&mut dup).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert!(err.message.contains("hr/a1"), "{}", err.message);
    assert_eq!(dup.id, 0);
    // The same anchor on another MA is another object.
    let mut other = cs("ad", "a1");
    txn.cs_insert(&mut other).unwrap();
    txn.commit().unwrap();
}

pub fn cs_by_anchors_should_return_every_existing_object_across_chunks(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let objs: Vec<CsObject> = (0..1234).map(|i| cs("hr", &format!("a{i}"))).collect();
    insert(store, objs);
    let wanted: Vec<String> = (0..1300).step_by(2).map(|i| format!("a{i}")).collect();
    let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let mut got: Vec<String> = store
        .read()
        .unwrap()
        .cs_by_anchors("hr", &refs)
        .unwrap()
        .into_iter()
        .map(|o| o.anchor)
        .collect();
    got.sort();
    let mut expected: Vec<String> = (0..1234).step_by(2).map(|i| format!("a{i}")).collect();
    expected.sort();
    assert_eq!(got, expected);
    let few = store
        .read()
        .unwrap()
        .cs_by_anchors("hr", &["a1", "nope"])
        .unwrap();
    assert_eq!(few.len(), 1);
    assert!(
        store
            .read()
            .unwrap()
            .cs_by_anchors("hr", &[])
            .unwrap()
            .is_empty()
    );
}

pub fn cs_update_should_replace_the_object_and_move_it_between_filters(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let mut o = insert(store, vec![with_pending_import(cs("hr", "a1"))]).remove(0);
    o.pending_import = None;
    o.hologram = attrs(&[("name", "changed")]);
    o = with_pending_export(joined(o, 7));
    let mut txn = store.begin().unwrap();
    txn.cs_update(&o).unwrap();
    // The transaction sees its own write.
    assert_eq!(txn.cs_get(o.id).unwrap().as_ref(), Some(&o));
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_get(o.id).unwrap().as_ref(), Some(&o));
    assert!(
        r.cs_page("hr", CsFilter::PendingImport, 0, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        r.cs_page("hr", CsFilter::PendingExport, 0, 10).unwrap(),
        vec![o.clone()]
    );
    assert_eq!(r.cs_by_mv(7).unwrap(), vec![o]);
}

pub fn cs_update_of_a_missing_object_should_fail_as_invalid(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let mut o = cs("hr", "a1");
    o.id = 42;
    let mut txn = store.begin().unwrap();
    let err = txn.cs_update(&o).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert!(err.message.contains("42"), "{}", err.message);
}

pub fn cs_update_that_changes_the_anchor_should_be_found_by_the_new_anchor(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let mut o = insert(store, vec![cs("hr", "old")]).remove(0);
    o.anchor = "new".into();
    let mut txn = store.begin().unwrap();
    txn.cs_update(&o).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(
        r.cs_by_anchor("hr", "new").unwrap().map(|o| o.id),
        Some(o.id)
    );
    assert_eq!(r.cs_by_anchor("hr", "old").unwrap(), None);
}

pub fn cs_delete_should_remove_the_object_everywhere(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let o = insert(store, vec![with_error(joined(cs("hr", "a1"), 3))]).remove(0);
    let mut txn = store.begin().unwrap();
    txn.cs_delete(o.id).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_get(o.id).unwrap(), None);
    assert!(r.cs_by_mv(3).unwrap().is_empty());
    assert_eq!(r.cs_counts("hr").unwrap(), CsCounts::default());
}

pub fn cs_page_should_filter_by_ma_and_flag_in_id_order_with_paging(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let objs = insert(
        store,
        vec![
            with_pending_import(cs("hr", "pi1")),
            with_pending_export(cs("hr", "pe1")),
            with_unconfirmed_export(cs("hr", "ue1")),
            with_error(cs("hr", "err1")),
            with_pending_import(cs("hr", "pi2")),
            with_pending_import(cs("ad", "other-ma")),
            with_pending_import(with_pending_export(cs("hr", "both"))),
        ],
    );
    let anchors = |v: Vec<CsObject>| v.into_iter().map(|o| o.anchor).collect::<Vec<_>>();
    let mut r = store.read().unwrap();
    assert_eq!(
        anchors(r.cs_page("hr", CsFilter::PendingImport, 0, 10).unwrap()),
        ["pi1", "pi2", "both"]
    );
    assert_eq!(
        anchors(r.cs_page("hr", CsFilter::PendingExport, 0, 10).unwrap()),
        ["pe1", "both"]
    );
    assert_eq!(
        anchors(r.cs_page("hr", CsFilter::UnconfirmedExport, 0, 10).unwrap()),
        ["ue1"]
    );
    assert_eq!(
        anchors(r.cs_page("hr", CsFilter::Errors, 0, 10).unwrap()),
        ["err1"]
    );
    assert_eq!(r.cs_page("hr", CsFilter::All, 0, 100).unwrap().len(), 6);
    // Paging: limit, then continue after the last id.
    let first = r.cs_page("hr", CsFilter::PendingImport, 0, 2).unwrap();
    assert_eq!(anchors(first.clone()), ["pi1", "pi2"]);
    let rest = r
        .cs_page("hr", CsFilter::PendingImport, first[1].id, 2)
        .unwrap();
    assert_eq!(anchors(rest), ["both"]);
    assert_eq!(
        r.cs_counts("hr").unwrap(),
        CsCounts {
            total: 6,
            pending_import: 3,
            pending_export: 2,
            unconfirmed_export: 1,
            errors: 1
        }
    );
    assert!(objs.windows(2).all(|w| w[0].id < w[1].id));
}

pub fn one_count_and_the_pending_deletes_should_agree_with_the_objects(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let delete = |mut o: CsObject| {
        o.pending_export = Some(PendingExport {
            values: Default::default(),
            kind: ExportKind::Delete,
            changes: Default::default(),
            new_dn: None,
        });
        o
    };
    let objs = insert(
        store,
        vec![
            with_pending_import(cs("hr", "pi1")),
            with_pending_export(cs("hr", "pe1")),
            delete(with_pending_import(cs("hr", "gone1"))),
            delete(with_error(cs("hr", "gone2"))),
            with_unconfirmed_export(cs("hr", "ue1")),
            delete(cs("ad", "other-ma")),
        ],
    );
    let mut r = store.read().unwrap();
    let counts = r.cs_counts("hr").unwrap();
    for (filter, n) in [
        (CsFilter::All, counts.total),
        (CsFilter::PendingImport, counts.pending_import),
        (CsFilter::PendingExport, counts.pending_export),
        (CsFilter::UnconfirmedExport, counts.unconfirmed_export),
        (CsFilter::Errors, counts.errors),
    ] {
        assert_eq!(r.cs_count("hr", filter).unwrap(), n, "{filter:?}");
    }
    assert_eq!(counts.total, 5);
    assert_eq!(
        r.cs_pending_export_count("hr", ExportKind::Delete).unwrap(),
        2
    );
    assert_eq!(
        r.cs_pending_export_count("hr", ExportKind::Update).unwrap(),
        1
    );
    assert_eq!(r.cs_pending_export_count("hr", ExportKind::Add).unwrap(), 0);
    assert_eq!(
        r.cs_pending_export_count("ad", ExportKind::Delete).unwrap(),
        1
    );
    assert_eq!(
        r.cs_pending_export_count("none", ExportKind::Delete)
            .unwrap(),
        0
    );
    // Their ids, in id order and paged, as a transaction sees them.
    let (gone1, gone2) = (objs[2].id, objs[3].id);
    let ids = |r: &mut dyn crate::api::StoreRead, kind, after, limit| {
        r.cs_pending_export_ids("hr", kind, after, limit).unwrap()
    };
    assert_eq!(ids(&mut *r, ExportKind::Delete, 0, 10), [gone1, gone2]);
    assert_eq!(ids(&mut *r, ExportKind::Delete, 0, 1), [gone1]);
    assert_eq!(ids(&mut *r, ExportKind::Delete, gone1, 10), [gone2]);
    assert_eq!(
        ids(&mut *r, ExportKind::Delete, gone2, 10),
        Vec::<CsId>::new()
    );
    assert_eq!(ids(&mut *r, ExportKind::Update, 0, 10), [objs[1].id]);
    assert_eq!(ids(&mut *r, ExportKind::Add, 0, 10), Vec::<CsId>::new());
    assert_eq!(
        r.cs_pending_export_ids("ad", ExportKind::Delete, 0, 10)
            .unwrap(),
        [objs[5].id]
    );
    drop(r);
    let mut txn = store.begin().unwrap();
    let mut kept = objs[2].clone();
    kept.pending_export = None;
    txn.cs_update(&kept).unwrap();
    assert_eq!(ids(txn.as_mut(), ExportKind::Delete, 0, 10), [gone2]);
}

pub fn cs_by_mv_should_return_connectors_of_every_ma(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    insert(
        store,
        vec![
            joined(cs("hr", "a"), 5),
            joined(cs("ad", "a"), 5),
            joined(cs("ad", "b"), 6),
            cs("ad", "c"),
        ],
    );
    let mut r = store.read().unwrap();
    let mut mas: Vec<String> = r.cs_by_mv(5).unwrap().into_iter().map(|o| o.ma).collect();
    mas.sort();
    assert_eq!(mas, ["ad", "hr"]);
    assert!(r.cs_by_mv(99).unwrap().is_empty());
    let disconnector = r.cs_by_anchor("ad", "c").unwrap().unwrap();
    assert_eq!(disconnector.connection, Connection::Disconnector);
}

pub fn ids_should_never_be_reused_after_a_delete(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let o = insert(store, vec![cs("hr", "a")]).remove(0);
    let mut txn = store.begin().unwrap();
    txn.cs_delete(o.id).unwrap();
    txn.commit().unwrap();
    let again = insert(store, vec![cs("hr", "a")]).remove(0);
    assert!(again.id > o.id);
}

pub fn cs_page_ids_should_list_the_ids_cs_page_returns(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let objs = insert(
        store,
        (0..600)
            .map(|i| {
                let o = cs("hr", &format!("a{i}"));
                if i % 3 == 0 {
                    with_pending_export(o)
                } else {
                    o
                }
            })
            .collect(),
    );
    let mut r = store.read().unwrap();
    // A long page (decoded on two threads) keeps id order and every body.
    let page = r.cs_page("hr", CsFilter::All, 0, 1000).unwrap();
    assert_eq!(page, objs);
    let ids = r
        .cs_page_ids("hr", CsFilter::PendingExport, objs[2].id, 100)
        .unwrap();
    let expected: Vec<i64> = r
        .cs_page("hr", CsFilter::PendingExport, objs[2].id, 100)
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids.len(), 100);
    assert_eq!(ids, expected);
    assert_eq!(ids[0], objs[3].id);
}

pub fn cs_by_mvs_should_return_the_connectors_of_every_listed_mv_object_in_id_order(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    // More objects than one query of the SQLite store takes (500).
    let objs = insert(
        store,
        (0..1200)
            .map(|i| {
                joined(
                    cs(if i % 2 == 0 { "hr" } else { "ad" }, &format!("a{i}")),
                    i / 2 + 1,
                )
            })
            .chain([cs("ad", "disconnector")])
            .collect(),
    );
    let mut r = store.read().unwrap();
    let all: Vec<i64> = (1..=600).collect();
    let found = r.cs_by_mvs(&all).unwrap();
    assert_eq!(found, objs[..1200], "every connector of 600 objects");
    let some = r.cs_by_mvs(&[3, 600, 9999]).unwrap();
    let anchors: Vec<&str> = some.iter().map(|o| o.anchor.as_str()).collect();
    assert_eq!(anchors, ["a4", "a5", "a1198", "a1199"]);
    assert!(r.cs_by_mvs(&[]).unwrap().is_empty());
    assert!(r.cs_by_mvs(&[9999]).unwrap().is_empty());
}
