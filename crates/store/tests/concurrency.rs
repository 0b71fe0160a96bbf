//! Transactions and concurrency: readers run while a write transaction is
//! open, a dropped transaction leaves nothing behind, writers from several
//! threads are serialised, and a thread that panics mid-transaction does not
//! wedge the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use autosync_store::{CsFilter, Store};
use common::*;
use std::sync::Arc;

#[test]
fn a_reader_should_see_committed_data_while_a_write_transaction_is_open() {
    let t = store();
    let mut txn = t.store.begin().unwrap();
    let mut committed = cs("hr", "committed");
    txn.cs_insert(&mut committed).unwrap();
    txn.commit().unwrap();

    let mut open = t.store.begin().unwrap();
    let mut pending = cs("hr", "pending");
    open.cs_insert(&mut pending).unwrap();
    open.set_watermark("hr", Some("w2")).unwrap();
    // Same thread, other connection: this would deadlock if reads waited for
    // the writer.
    let mut r = t.store.read().unwrap();
    assert!(r.cs_get(committed.id).unwrap().is_some());
    assert_eq!(r.cs_get(pending.id).unwrap(), None);
    assert_eq!(r.watermark("hr").unwrap(), None);
    // And from another thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut r = t.store.read().unwrap();
            assert_eq!(r.cs_page("hr", CsFilter::All, 0, 10).unwrap().len(), 1);
        });
    });
    open.commit().unwrap();
    assert!(r.cs_get(pending.id).unwrap().is_some());
    assert_eq!(r.watermark("hr").unwrap().as_deref(), Some("w2"));
}

#[test]
fn dropping_a_transaction_without_commit_should_discard_all_its_writes() {
    let t = store();
    t.store
        .set_mv_index(&[autosync_store::MvIndexDef::attribute("person", "mail")])
        .unwrap();
    {
        let mut txn = t.store.begin().unwrap();
        let mut o = cs("hr", "a");
        txn.cs_insert(&mut o).unwrap();
        let mut m = mv("person", &[("mail", "a@x".into())]);
        txn.mv_insert(&mut m).unwrap();
        txn.set_watermark("hr", Some("w")).unwrap();
        txn.set_meta("k", Some("v")).unwrap();
        assert_eq!(txn.cs_counts("hr").unwrap().total, 1);
    }
    let mut r = t.store.read().unwrap();
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
    let mut txn = t.store.begin().unwrap();
    let mut o = cs("hr", "a");
    txn.cs_insert(&mut o).unwrap();
    txn.commit().unwrap();
    assert_eq!(t.store.read().unwrap().cs_counts("hr").unwrap().total, 1);
}

#[test]
fn writers_on_several_threads_should_all_land_in_short_batches() {
    let t = store();
    let store: Arc<dyn Store> = Arc::new(t.store);
    let handles: Vec<_> = ["hr", "ad", "crm"]
        .into_iter()
        .map(|ma| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for batch in 0..30 {
                    let mut txn = store.begin().unwrap();
                    for i in 0..50 {
                        let mut o = cs(ma, &format!("{batch}-{i}"));
                        txn.cs_insert(&mut o).unwrap();
                    }
                    txn.set_watermark(ma, Some(&batch.to_string())).unwrap();
                    txn.commit().unwrap();
                    // Readers interleave with the other threads' writes.
                    assert!(store.read().unwrap().cs_counts(ma).unwrap().total >= (batch + 1) * 50);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut r = store.read().unwrap();
    for ma in ["hr", "ad", "crm"] {
        assert_eq!(r.cs_counts(ma).unwrap().total, 1500);
        assert_eq!(r.watermark(ma).unwrap().as_deref(), Some("29"));
    }
}

#[test]
fn a_thread_that_panics_inside_a_transaction_should_leave_no_writes_and_a_usable_store() {
    let t = store();
    let store = Arc::new(t.store);
    let s2 = Arc::clone(&store);
    let res = std::thread::spawn(move || {
        let mut txn = s2.begin().unwrap();
        let mut o = cs("hr", "half");
        txn.cs_insert(&mut o).unwrap();
        panic!("rules script blew up");
    })
    .join();
    assert!(res.is_err());
    assert_eq!(
        store.read().unwrap().cs_by_anchor("hr", "half").unwrap(),
        None
    );
    let mut txn = store.begin().unwrap();
    let mut o = cs("hr", "after");
    txn.cs_insert(&mut o).unwrap();
    txn.commit().unwrap();
    assert!(
        store
            .read()
            .unwrap()
            .cs_by_anchor("hr", "after")
            .unwrap()
            .is_some()
    );
}

#[test]
fn processes_opening_a_fresh_store_at_once_should_all_succeed() {
    // The service and `autosync status` may open a store that does not
    // exist yet at the same moment: only one creates it, the others see it.
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fresh-{round}.db"));
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    autosync_store::SqliteStore::open(&path).map(|_| ())
                })
            })
            .collect();
        for o in openers {
            if let Err(e) = o.join().unwrap() {
                panic!("round {round}: {e}");
            }
        }
    }
}
