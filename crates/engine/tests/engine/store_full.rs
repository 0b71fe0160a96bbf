//! A store that stops taking writes while a run goes on (its disk fills
//! up): the run whose end the engine could not write is written by its own
//! process once the store takes writes again, `stopped-error` and saying
//! why, never closed as if its process had ended; an export whose
//! recording failed after it sent changes says they may be in the system
//! uncounted.
//!
//! The store is the real one behind a wrapper whose write transactions
//! fail with `Full` from the first one that begins once the target has
//! the export's changes (until freed, or for one transaction).

use crate::fixture::*;
use autosync_engine::{Engine, EngineError, RunOptions};
use autosync_model::{RunRecord, RunStatus};
use autosync_store::sqlite::SqliteStore;
use autosync_store::{Store, StoreError, StoreErrorKind, StoreRead, StoreResult, StoreTxn};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// When the disk is full.
#[derive(Default)]
struct Disk {
    full: bool,
    /// Fills up at the first write transaction that begins once this says
    /// so.
    fills_when: Option<Box<dyn Fn() -> bool + Send>>,
    /// Once full, how many write transactions fail before space comes back
    /// by itself (`None`: until [`FillingStore::free`]).
    left: Option<u32>,
}

struct FillingStore {
    inner: Arc<SqliteStore>,
    disk: Mutex<Disk>,
}

impl FillingStore {
    fn fill_when(&self, when: impl Fn() -> bool + Send + 'static, left: Option<u32>) {
        let mut disk = self.disk.lock().unwrap();
        disk.fills_when = Some(Box::new(when));
        disk.left = left;
    }

    fn free(&self) {
        let mut disk = self.disk.lock().unwrap();
        disk.full = false;
        disk.fills_when = None;
    }

    /// A write refused by the full disk. A lease's compare-and-set (its
    /// keeper's heartbeat) never fills it, and fails only while it stays
    /// full.
    fn refuse(&self, lease: bool) -> StoreResult<()> {
        let mut disk = self.disk.lock().unwrap();
        if !disk.full && !lease && disk.fills_when.as_ref().is_some_and(|f| f()) {
            disk.full = true;
            disk.fills_when = None;
        }
        if !disk.full || (lease && disk.left.is_some()) {
            return Ok(());
        }
        if let Some(left) = &mut disk.left {
            *left = left.saturating_sub(1);
            if *left == 0 {
                disk.full = false;
            }
        }
        Err(StoreError::new(
            StoreErrorKind::Full,
            "database or disk is full (the test's)",
        ))
    }
}

impl Store for FillingStore {
    fn read(&self) -> StoreResult<Box<dyn StoreRead + '_>> {
        self.inner.read()
    }
    fn begin(&self) -> StoreResult<Box<dyn StoreTxn + '_>> {
        self.refuse(false)?;
        self.inner.begin()
    }
    fn write_bulk(
        &self,
        work: &mut dyn FnMut(&mut dyn StoreTxn) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.refuse(false)?;
        self.inner.write_bulk(work)
    }
    fn set_mv_index(&self, indexed: &[autosync_store::MvIndexDef]) -> StoreResult<()> {
        self.inner.set_mv_index(indexed)
    }
    fn set_dn_index(&self, mas: &[&str]) -> StoreResult<()> {
        self.inner.set_dn_index(mas)
    }
    fn set_value_rows(&self, rows: &autosync_store::ValueRows) -> StoreResult<()> {
        self.inner.set_value_rows(rows)
    }
    fn declare_names(&self, names: &[&str]) -> StoreResult<()> {
        self.inner.declare_names(names)
    }
    fn compare_and_set_meta(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> StoreResult<bool> {
        self.refuse(true)?;
        self.inner.compare_and_set_meta(key, expected, new)
    }
    fn store_file(&self) -> Option<autosync_store::lease::StoreFile> {
        self.inner.store_file()
    }
    fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        self.inner.unfinished_runs()
    }
    fn trim_runs(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
        self.inner.trim_runs(before)
    }
}

/// HR (CSV) to a directory in an SQLite table (durable per batch: what it
/// applied stays applied whatever the store does).
struct Setup {
    dir: tempfile::TempDir,
    store: Arc<FillingStore>,
    engine: Arc<Engine>,
}

impl Setup {
    /// Converged, then every department changed in HR and synchronised:
    /// three updates wait to be exported to the directory.
    fn new() -> Setup {
        let config = HR_DIR.replace(
            r#"connector = { type = "csv", path = "dir.csv" }"#,
            r#"connector = { type = "sqlite", path = "dir.db", table = "users", columns = ["uid", "name", "dept", "employee"], create_table = true }"#,
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hr.csv"), HR_CSV).unwrap();
        let inner = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let store = Arc::new(FillingStore {
            inner,
            disk: Mutex::new(Disk::default()),
        });
        let engine = World::engine_for(&dir, &config, store.clone());
        let s = Setup { dir, store, engine };
        s.run_ok("hr", "full-import", RunStatus::Success);
        s.run_ok("hr", "full-sync", RunStatus::Success);
        s.run("dir", "full-import").unwrap();
        s.run_ok("dir", "export", RunStatus::Success);
        let changed = HR_CSV
            .replace("R&D\n", "R&D 2\n")
            .replace("Navy\n", "Navy 2\n");
        std::fs::write(s.dir.path().join("hr.csv"), changed).unwrap();
        s.run_ok("hr", "full-import", RunStatus::Success);
        s.run_ok("hr", "full-sync", RunStatus::Success);
        s
    }

    fn run(&self, ma: &str, profile: &str) -> Result<RunRecord, EngineError> {
        self.engine
            .run_profile(ma, profile, RunOptions::manual("test"))
    }

    fn run_ok(&self, ma: &str, profile: &str, status: RunStatus) -> RunRecord {
        let r = self.run(ma, profile).unwrap();
        assert_eq!(r.status, status, "{ma} {profile}: {r:#?}");
        r
    }

    /// The disk fills up once the directory has the changes.
    fn full_once_sent(&self, left: Option<u32>) {
        let db = self.target();
        self.store.fill_when(move || changed_in(&db) > 0, left);
    }

    fn target(&self) -> PathBuf {
        self.dir.path().join("dir.db")
    }

    /// The last run of `ma` as stored.
    fn last_run(&self, ma: &str) -> RunRecord {
        let mut runs = self.store.inner.read().unwrap().runs(Some(ma), 1).unwrap();
        runs.pop().unwrap()
    }

    fn stored(&self, id: autosync_model::RunId) -> RunRecord {
        self.store
            .inner
            .read()
            .unwrap()
            .run_get(id)
            .unwrap()
            .unwrap()
    }
}

/// How many directory rows have the changed departments.
fn changed_in(db: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT count(*) FROM users WHERE dept LIKE '% 2'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

const NOT_RECORDED: &str = "the store could not record this run's end";
const UNCOUNTED: &str =
    "changes it sent after its last recorded batch may be in the system and are not counted here";

/// The export's step, as stored once its end is written: stopped by the
/// full store, saying that its end could not be recorded when it ended and
/// that what it sent may be uncounted, and not that its process ended.
fn assert_written_truthfully(run: &RunRecord) {
    assert_eq!(run.status, RunStatus::StoppedError, "{run:#?}");
    assert!(run.ended_at.is_some(), "{run:#?}");
    let step = &run.steps[0];
    assert_eq!(step.status, RunStatus::StoppedError, "{run:#?}");
    let message = step.message.as_deref().unwrap_or_default();
    assert!(
        message.contains(NOT_RECORDED) && message.contains("disk is full"),
        "{message}"
    );
    assert!(message.contains(UNCOUNTED), "{message}");
    assert!(!message.contains("process ended"), "{message}");
    // Its counters are what it committed: nothing.
    assert_eq!(export_counters(run).updates, 0, "{run:#?}");
}

/// The disk fills up while the export records what it sent; its end cannot
/// be written. Closing the runs left in progress (the service does, every
/// second, while one shows in progress) leaves it in progress while the
/// store takes no writes, then writes its end as it was, not as a run
/// whose process ended; the next export sends the changes again.
#[test]
fn a_run_whose_end_the_full_store_refused_should_be_closed_by_its_process_saying_so() {
    let s = Setup::new();
    s.full_once_sent(None);
    let err = s.run("dir", "export").unwrap_err();
    assert!(
        matches!(&err, EngineError::Store(e) if e.kind == StoreErrorKind::Full),
        "{err:?}"
    );
    assert_eq!(changed_in(&s.target()), 3, "the directory has every change");
    let run = s.last_run("dir");
    assert_eq!(run.status, RunStatus::InProgress, "{run:#?}");

    // Nothing can be closed while the store takes no writes; the run is
    // not taken for one whose process ended, and is given as it ended.
    let closed = s.engine.close_unfinished_runs().unwrap();
    assert_eq!(closed.iter().map(|r| r.id).collect::<Vec<_>>(), [run.id]);
    assert_eq!(closed[0].status, RunStatus::StoppedError, "{closed:#?}");
    assert_eq!(s.stored(run.id).status, RunStatus::InProgress);

    s.store.free();
    let closed = s.engine.close_unfinished_runs().unwrap();
    assert_eq!(closed.iter().map(|r| r.id).collect::<Vec<_>>(), [run.id]);
    assert_written_truthfully(&s.stored(run.id));
    assert!(s.engine.close_unfinished_runs().unwrap().is_empty());

    let again = s.run_ok("dir", "export", RunStatus::Success);
    assert_eq!(export_counters(&again).updates, 3, "{again:#?}");
}

/// The same, with nothing closing runs left in progress: the next run of
/// the MA writes the earlier one's end before it starts.
#[test]
fn the_next_run_of_the_ma_should_first_write_the_end_the_full_store_refused() {
    let s = Setup::new();
    s.full_once_sent(None);
    assert!(s.run("dir", "export").is_err());
    let run = s.last_run("dir");
    assert_eq!(run.status, RunStatus::InProgress, "{run:#?}");

    s.store.free();
    let again = s.run_ok("dir", "export", RunStatus::Success);
    assert_eq!(export_counters(&again).updates, 3, "{again:#?}");
    assert_written_truthfully(&s.stored(run.id));
}

/// The store refuses only the transaction that records what the export
/// sent: the step's end is written at once, and says that the changes it
/// sent may be in the system uncounted.
#[test]
fn an_export_whose_recording_failed_after_it_sent_should_say_its_changes_may_be_uncounted() {
    let s = Setup::new();
    s.full_once_sent(Some(1));
    let err = s.run("dir", "export").unwrap_err();
    assert!(matches!(&err, EngineError::Store(_)), "{err:?}");
    assert_eq!(changed_in(&s.target()), 3);
    let run = s.last_run("dir");
    assert_eq!(run.status, RunStatus::StoppedError, "{run:#?}");
    let message = run.steps[0].message.as_deref().unwrap_or_default();
    assert!(message.starts_with("store: "), "{message}");
    assert!(message.contains(UNCOUNTED), "{message}");
    assert!(!message.contains(NOT_RECORDED), "{message}");
    assert_eq!(export_counters(&run).updates, 0, "{run:#?}");
}

/// The runs after `after` as the service looks for runs started outside
/// it (`EngineAdapter::runs_since`): the history, with the runs
/// `close_unfinished_runs` gives in place of those it shows in progress.
fn runs_since(engine: &Engine, after: autosync_model::RunId) -> Vec<RunRecord> {
    let mut runs = engine.store().read().unwrap().runs(None, 1000).unwrap();
    runs.retain(|r| r.id > after);
    if runs.iter().any(|r| r.status == RunStatus::InProgress) {
        let closed = engine.close_unfinished_runs().unwrap();
        for run in &mut runs {
            if let Some(c) = closed.iter().find(|c| c.id == run.id) {
                *run = c.clone();
            }
        }
    }
    runs
}

/// `run --once` ends once nothing runs: the service looks at the run
/// history for runs started outside it and waits for those in progress. A
/// run of this process whose end the full store refused is no such run:
/// it is seen ended (`stopped-error`, its end written later), so `run
/// --once` gives up on the full store and exits (it waited as long as the
/// disk stayed full).
#[test]
fn a_run_whose_end_the_full_store_refused_should_not_be_seen_in_progress_by_the_service() {
    let s = Setup::new();
    let before = s.last_run("dir").id;
    s.full_once_sent(None);
    assert!(s.run("dir", "export").is_err());
    let run = s.last_run("dir");
    assert_eq!(run.status, RunStatus::InProgress, "{run:#?}");

    for _ in 0..3 {
        let seen = runs_since(&s.engine, before);
        assert!(
            seen.iter().all(|r| r.status != RunStatus::InProgress),
            "{seen:#?}"
        );
        let kept = seen.iter().find(|r| r.id == run.id).unwrap();
        assert_eq!(kept.status, RunStatus::StoppedError, "{kept:#?}");
        assert!(kept.ended_at.is_some(), "{kept:#?}");
        // Not written: the store takes no writes.
        assert_eq!(s.stored(run.id).status, RunStatus::InProgress);
    }

    // Its next run cannot start while the disk is full (what `run --once`
    // counts to give up).
    let err = s.run("dir", "export").unwrap_err();
    assert!(
        matches!(&err, EngineError::Store(e) if e.kind == StoreErrorKind::Full),
        "{err:?}"
    );

    s.store.free();
    let seen = runs_since(&s.engine, before);
    assert!(
        seen.iter().all(|r| r.status != RunStatus::InProgress),
        "{seen:#?}"
    );
    assert_written_truthfully(&s.stored(run.id));
}
