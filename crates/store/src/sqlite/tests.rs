//! Tests that need the store's internals: a full disk, simulated with
//! `PRAGMA max_page_count` on the writer connection (SQLite then fails with
//! the same SQLITE_FULL error a full disk gives).

use super::SqliteStore;
use crate::api::{Store, StoreErrorKind};
use autosync_model::CsObject;

#[test]
fn a_full_disk_should_fail_the_write_as_full_and_keep_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut txn = store.begin().unwrap();
    let mut first = CsObject::new("hr", "first", "cn=first", "person");
    txn.cs_insert(&mut first).unwrap();
    txn.commit().unwrap();
    {
        let w = store.writer();
        let pages: i64 = w
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        w.conn
            .execute_batch(&format!("PRAGMA max_page_count = {}", pages + 4))
            .unwrap();
    }
    let mut txn = store.begin().unwrap();
    let mut err = None;
    for i in 0..10_000 {
        let mut o = CsObject::new("hr", &format!("a{i}"), &"x".repeat(500), "person");
        if let Err(e) = txn.cs_insert(&mut o) {
            err = Some(e);
            break;
        }
    }
    drop(txn);
    let err = err.expect("the store never filled up");
    assert_eq!(err.kind, StoreErrorKind::Full, "{}", err.message);
    assert!(
        err.message.contains(&path.display().to_string()),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("free some disk space"),
        "{}",
        err.message
    );
    let mut r = store.read().unwrap();
    assert!(r.cs_by_anchor("hr", "first").unwrap().is_some());
    assert_eq!(r.cs_counts("hr").unwrap().total, 1);
}
