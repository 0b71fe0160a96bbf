//! Concurrency the SQLite store adds to the conformance suite's (readers
//! beside a writer, dropped transactions, writers on two handles: see
//! `conformance.rs`): a thread that panics mid-transaction does not wedge
//! the store, processes opening a fresh store at once all succeed, and an
//! existing store opens while another process holds its write lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use autosync_store::Store;
use common::*;
use std::sync::Arc;

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

#[test]
fn an_existing_store_should_open_and_read_while_another_process_holds_its_write_lock() {
    // `autosync history` or `status` during a long sync: opening a store of
    // this version only reads, so it does not wait for the write lock.
    let t = store();
    let path = t.dir.path().join("state").join("store.db");
    {
        let mut txn = t.store.begin().unwrap();
        let mut o = cs("hr", "before");
        txn.cs_insert(&mut o).unwrap();
        txn.commit().unwrap();
    }
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let opened = std::time::Instant::now();
    let other = autosync_store::SqliteStore::open(&path).unwrap();
    assert!(
        opened.elapsed() < std::time::Duration::from_secs(5),
        "the open waited for the write lock: {:?}",
        opened.elapsed()
    );
    assert!(
        other
            .read()
            .unwrap()
            .cs_by_anchor("hr", "before")
            .unwrap()
            .is_some()
    );
    holder.execute_batch("ROLLBACK").unwrap();
}
