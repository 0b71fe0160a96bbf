//! Helpers shared by the store's integration tests: a store in a temporary
//! folder, and the suite's object builders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(dead_code)]

pub use autosync_store::conformance::fixtures::*;
use autosync_store::sqlite::SqliteStore;

pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: SqliteStore,
}

pub fn store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state").join("store.db")).unwrap();
    TestStore { dir, store }
}
