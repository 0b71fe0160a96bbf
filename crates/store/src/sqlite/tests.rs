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

#[test]
fn every_filter_and_lookup_should_be_an_index_search_not_a_table_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let w = store.writer();
    let queries = [
        "SELECT id, data FROM cs WHERE ma = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = ?1 AND has_pi = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = ?1 AND has_pe = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = ?1 AND has_ue = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = ?1 AND has_err = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = ?1 AND anchor = ?2",
        "SELECT id, data FROM cs WHERE mv_id = ?1 ORDER BY id",
        "SELECT mv_id FROM mv_key WHERE k = ?1 AND value = ?2",
        "SELECT k, value FROM mv_key WHERE mv_id = ?1",
        "SELECT id, data FROM mv WHERE type = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM run WHERE status = 'in-progress' ORDER BY id",
        "SELECT id, data FROM run_error WHERE run_id = ?1 ORDER BY id LIMIT ?2",
    ];
    for sql in queries {
        let mut stmt = w
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let mut rows = stmt.raw_query();
        let mut plan = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            plan.push(row.get::<_, String>(3).unwrap());
        }
        let plan = plan.join(" | ");
        assert!(plan.contains("SEARCH"), "{sql}: {plan}");
        assert!(
            !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
            "{sql}: {plan}"
        );
    }
}
