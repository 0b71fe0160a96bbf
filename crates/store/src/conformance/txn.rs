//! Transactions: all or nothing (dropped, failed, bulk or plain), the
//! parts of a bulk transaction, readers beside an open writer, writers on
//! two handles of one store (as two processes), and leases between them.

use super::ConformanceTarget;
use super::fixtures::*;
use crate::api::{CsFilter, MvIndexDef, Store, StoreError, StoreErrorKind};
use crate::lease::{Instance, LeaseTiming, Leases};
use autosync_model::CsObject;
use std::sync::Arc;

/// Every connector-space object of `ma`, by anchor.
fn anchors(store: &dyn Store, ma: &str) -> Vec<String> {
    let mut v: Vec<String> = store
        .read()
        .unwrap()
        .cs_page(ma, CsFilter::All, 0, 1_000_000)
        .unwrap()
        .into_iter()
        .map(|o| o.anchor)
        .collect();
    v.sort();
    v
}

pub fn a_reader_should_see_committed_data_while_a_write_transaction_is_open(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    // Opened first: opening may itself write (a schema check).
    let again = (s.open_again)();
    let mut txn = store.begin().unwrap();
    let mut committed = cs("hr", "committed");
    txn.cs_insert(&mut committed).unwrap();
    txn.commit().unwrap();

    let mut open = store.begin().unwrap();
    let mut pending = cs("hr", "pending");
    open.cs_insert(&mut pending).unwrap();
    open.set_watermark("hr", Some("w2")).unwrap();
    // Same thread: this would deadlock if reads waited for the writer.
    let mut r = store.read().unwrap();
    assert!(r.cs_get(committed.id).unwrap().is_some());
    assert_eq!(r.cs_get(pending.id).unwrap(), None);
    assert_eq!(r.watermark("hr").unwrap(), None);
    // And from another thread, and another handle.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut r = store.read().unwrap();
            assert_eq!(r.cs_page("hr", CsFilter::All, 0, 10).unwrap().len(), 1);
            assert_eq!(anchors(&*again, "hr"), ["committed"]);
        });
    });
    open.commit().unwrap();
    assert!(r.cs_get(pending.id).unwrap().is_some());
    assert_eq!(r.watermark("hr").unwrap().as_deref(), Some("w2"));
    assert_eq!(anchors(&*again, "hr"), ["committed", "pending"]);
}

pub fn dropping_a_transaction_without_commit_should_discard_all_its_writes(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    store
        .set_mv_index(&[MvIndexDef::attribute("person", "mail")])
        .unwrap();
    {
        let mut txn = store.begin().unwrap();
        let mut o = cs("hr", "a");
        txn.cs_insert(&mut o).unwrap();
        let mut m = mv("person", &[("mail", "a@x".into())]);
        txn.mv_insert(&mut m).unwrap();
        txn.set_watermark("hr", Some("w")).unwrap();
        txn.set_meta("k", Some("v")).unwrap();
        assert_eq!(txn.cs_counts("hr").unwrap().total, 1);
    }
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_counts("hr").unwrap().total, 0);
    assert_eq!(r.mv_count(None).unwrap(), 0);
    assert!(
        r.mv_find("person", "mail", &"a@x".into())
            .unwrap()
            .is_empty()
    );
    assert_eq!(r.watermark("hr").unwrap(), None);
    assert_eq!(r.meta("k").unwrap(), None);
    drop(r);
    // The writer is free again.
    let mut txn = store.begin().unwrap();
    let mut o = cs("hr", "a");
    txn.cs_insert(&mut o).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.read().unwrap().cs_counts("hr").unwrap().total, 1);
}

pub fn a_failed_bulk_transaction_should_leave_nothing(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let mut txn = store.begin().unwrap();
    txn.cs_insert(&mut cs("hr", "before")).unwrap();
    txn.commit().unwrap();
    // Work that returns an error after many writes.
    let err = store
        .write_bulk(&mut |t| {
            for i in 0..2000 {
                t.cs_insert(&mut cs("hr", &format!("bulk{i}")))?;
            }
            t.set_watermark("hr", Some("w"))?;
            Err(StoreError::new(StoreErrorKind::Io, "stop here"))
        })
        .unwrap_err();
    assert_eq!(err.message, "stop here");
    assert_eq!(anchors(store, "hr"), ["before"]);
    assert_eq!(store.read().unwrap().watermark("hr").unwrap(), None);
    // A write the store refuses (an update of an object that does not
    // exist): reported by the write or later, and nothing is kept.
    let err = store
        .write_bulk(&mut |t| {
            t.cs_insert(&mut cs("hr", "new-one"))?;
            let mut ghost = cs("hr", "ghost");
            ghost.id = 999_999;
            t.cs_update(&ghost)?;
            t.mv_insert(&mut mv("person", &[("mail", "m@x".into())]))?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid, "{}: {err}", t.name);
    assert!(err.message.contains("999999"), "{}: {err}", t.name);
    assert_eq!(anchors(store, "hr"), ["before"]);
    assert_eq!(store.read().unwrap().mv_count(None).unwrap(), 0);
    // The store is usable afterwards, in both kinds of transaction.
    let mut txn = store.begin().unwrap();
    txn.cs_insert(&mut cs("hr", "later")).unwrap();
    txn.commit().unwrap();
    store
        .write_bulk(&mut |t| t.cs_insert(&mut cs("hr", "later-bulk")))
        .unwrap();
    assert_eq!(anchors(store, "hr"), ["before", "later", "later-bulk"]);
}

pub fn parts_of_a_bulk_transaction_should_commit_one_by_one_and_read_their_own_writes(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    let res = store.write_bulk(&mut |t| {
        for part in 0..3 {
            for i in 0..300 {
                t.cs_insert(&mut CsObject::new(
                    "hr",
                    &format!("p{part}-{i}"),
                    "cn=x",
                    "person",
                ))?;
            }
            // What the earlier parts wrote is read back exactly, committed
            // or still queued.
            let page = t.cs_page("hr", CsFilter::All, 0, 100_000)?;
            assert_eq!(page.len(), 300 * (part + 1));
            t.commit_so_far()?;
        }
        t.cs_insert(&mut CsObject::new("hr", "lost", "cn=x", "person"))?;
        Err(StoreError::new(
            StoreErrorKind::Invalid,
            "stop after three parts",
        ))
    });
    assert_eq!(res.unwrap_err().kind, StoreErrorKind::Invalid);
    // The three committed parts stay; nothing came after them.
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_counts("hr").unwrap().total, 900);
    assert_eq!(r.cs_by_anchor("hr", "lost").unwrap(), None);
}

/// Threads on two handles of one store write short batches each with a
/// watermark; every batch lands whole, and each handle reads what the
/// other committed.
pub fn writers_on_two_handles_should_all_land(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let handles = [Arc::clone(&s.store), (s.open_again)()];
    std::thread::scope(|scope| {
        for (h, ma) in [(0, "hr"), (1, "ad"), (0, "crm"), (1, "app")] {
            let store = &handles[h];
            let other = &handles[1 - h];
            scope.spawn(move || {
                for batch in 0..20 {
                    let mut txn = store.begin().unwrap();
                    for i in 0..50 {
                        txn.cs_insert(&mut cs(ma, &format!("{batch}-{i}"))).unwrap();
                    }
                    txn.set_watermark(ma, Some(&batch.to_string())).unwrap();
                    txn.commit().unwrap();
                    let seen = other.read().unwrap().cs_counts(ma).unwrap().total;
                    assert!(seen >= (batch + 1) * 50, "the other handle saw {seen}");
                }
            });
        }
    });
    for store in &handles {
        let mut r = store.read().unwrap();
        for ma in ["hr", "ad", "crm", "app"] {
            assert_eq!(r.cs_counts(ma).unwrap().total, 1000, "{}: {ma}", t.name);
            assert_eq!(r.watermark(ma).unwrap().as_deref(), Some("19"));
        }
    }
}

/// A bulk transaction on one handle and a plain one on another: the plain
/// one waits (or is told the store is busy, and tries again) and lands
/// after; both are kept whole.
pub fn a_writer_on_another_handle_should_land_beside_a_bulk_transaction(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let again = (s.open_again)();
    std::thread::scope(|scope| {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let bulk = scope.spawn(move || {
            store
                .write_bulk(&mut |t| {
                    for i in 0..500 {
                        t.cs_insert(&mut cs("hr", &format!("bulk{i}")))?;
                    }
                    started_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        started_rx.recv().unwrap();
        let again = &again;
        let other = scope.spawn(move || {
            loop {
                let mut txn = match again.begin() {
                    Ok(txn) => txn,
                    Err(e) if e.kind == StoreErrorKind::Busy => continue,
                    Err(e) => panic!("{e}"),
                };
                txn.cs_insert(&mut cs("ad", "other")).unwrap();
                txn.commit().unwrap();
                return;
            }
        });
        go_tx.send(()).unwrap();
        bulk.join().unwrap();
        other.join().unwrap();
    });
    assert_eq!(store.read().unwrap().cs_counts("hr").unwrap().total, 500);
    assert_eq!(anchors(&*again, "ad"), ["other"]);
}

/// Leases (built on compare-and-set) between two handles with distinct
/// instances: a live lease is not taken, a released one is.
pub fn a_lease_should_have_one_holder_across_handles(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let timing = LeaseTiming::default();
    let a = Leases::new(Arc::clone(&s.store), Instance::fresh(), timing);
    let b = Leases::new((s.open_again)(), Instance::fresh(), timing);
    let fields = serde_json::Map::new();
    let mut held = |_: &crate::lease::Claim| Ok(true);
    a.acquire("lease:hr", &fields, &mut held).unwrap().unwrap();
    let claim = b
        .acquire("lease:hr", &fields, &mut held)
        .unwrap()
        .expect_err("a live lease was taken");
    assert_eq!(claim.holder.unwrap().instance, a.instance().id());
    assert!(a.renew("lease:hr").unwrap());
    assert!(!b.renew("lease:hr").unwrap(), "b renewed a's lease");
    a.release("lease:hr").unwrap();
    b.acquire("lease:hr", &fields, &mut held).unwrap().unwrap();
    assert!(!a.update("lease:hr", &fields).unwrap());
}
