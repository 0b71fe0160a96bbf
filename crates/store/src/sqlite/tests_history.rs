//! The migration that adds the per-object changes of runs (version 8).

use super::SqliteStore;
use crate::api::Store;
use autosync_model::{AttrChange, ChangeKind, RunChange, RunReason, RunRecord, RunStatus, Value};

fn run() -> RunRecord {
    RunRecord {
        id: 0,
        ma: "hr".into(),
        profile: "delta-import".into(),
        status: RunStatus::Success,
        started_at: chrono::Utc::now(),
        ended_at: Some(chrono::Utc::now()),
        reason: RunReason::Manual { by: "test".into() },
        steps: vec![],
    }
}

#[test]
fn a_version_7_store_should_get_the_run_change_table_in_the_migration_and_keep_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut r = run();
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = store.begin().unwrap();
        txn.run_insert(&mut r).unwrap();
        txn.commit().unwrap();
    }
    // What version 7 had: no `run_change`.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE run_change; PRAGMA user_version = 7;")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let v: i64 = store
        .writer()
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, super::SCHEMA_VERSION);
    assert_eq!(
        store.read().unwrap().run_get(r.id).unwrap(),
        Some(r.clone())
    );
    // The table works on the migrated store.
    let mut change = RunChange {
        run_id: r.id,
        step_index: 0,
        ma: "hr".into(),
        object: "E5".into(),
        dn: None,
        kind: ChangeKind::Update,
        new_dn: None,
        attributes: Default::default(),
    };
    change.attributes.insert(
        "manager".into(),
        AttrChange::replace(Some(&Value::from("E1")), Some(&Value::from("E4"))),
    );
    let mut txn = store.begin().unwrap();
    txn.run_changes_insert(std::slice::from_ref(&change))
        .unwrap();
    txn.commit().unwrap();
    assert_eq!(
        store.read().unwrap().run_changes(r.id, 0, 10).unwrap(),
        [change]
    );
}
