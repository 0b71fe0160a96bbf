//! Runs as a whole: records, statuses, locks, unknown names, crashed runs.

use crate::fixture::*;
use autosync_engine::{EngineError, ProgressSink, RunOptions};
use autosync_model::{RunReason, RunRecord, RunStatus, StepCounters, StepRecord, StepType};
use autosync_store::Store as _;
use std::sync::{Arc, Mutex, OnceLock};

#[test]
fn a_run_should_be_recorded_with_one_step_record_per_step() {
    let config = HR_DIR.replace(
        "projection = [{ mv_type = \"person\" }]",
        "projection = [{ mv_type = \"person\" }]\nrun_profiles = { full-import-full-sync = [\"full-import\", \"full-sync\"] }",
    );
    let w = World::new(&config, &[("hr.csv", HR_CSV)]);
    let r = w.run_ok("hr", "full-import-full-sync", RunStatus::Success);
    assert_eq!(r.steps.len(), 2);
    assert!(matches!(r.steps[1].counters, StepCounters::Sync(_)));
    let stored = w.store.read().unwrap().run_get(r.id).unwrap().unwrap();
    assert_eq!(stored, r);
    assert!(r.ended_at.is_some());
}

#[test]
fn a_stopped_step_should_stop_the_remaining_steps_of_its_profile() {
    let config = HR_DIR.replace(
        "deprovisioning = \"delete\"",
        "deprovisioning = \"delete\"\nexport_deletion_threshold = 1\nrun_profiles = { export-then-import = [\"export\", \"full-import\"] }",
    );
    let w = World::new(&config, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run_ok("dir", "export-then-import", RunStatus::Success);
    w.write("hr.csv", "id,first,last,dept\n");
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "delta-sync", RunStatus::Success);
    let r = w.run_ok(
        "dir",
        "export-then-import",
        RunStatus::StoppedDeletionThresholdExceeded,
    );
    assert_eq!(r.steps.len(), 1);
}

#[test]
fn a_missing_source_should_stop_the_import_with_stopped_server_down() {
    let w = World::new(HR_DIR, &[]);
    let r = w.run_ok("hr", "full-import", RunStatus::StoppedServerDown);
    assert!(r.steps[0].message.as_deref().unwrap().contains("hr.csv"));
}

#[test]
fn unknown_names_should_be_an_error_with_a_suggestion() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    let e = w
        .engine
        .run_profile("hrr", "full-import", RunOptions::manual("test"))
        .unwrap_err();
    assert!(matches!(e, EngineError::UnknownMa { .. }));
    assert!(e.to_string().contains("did you mean `hr`?"), "{e}");
    let e = w
        .engine
        .run_profile("hr", "ful-import", RunOptions::manual("test"))
        .unwrap_err();
    assert!(e.to_string().contains("did you mean `full-import`?"), "{e}");
}

/// Starts a second run of the same MA from inside the first.
struct Reentrant {
    world: OnceLock<Arc<autosync_engine::Engine>>,
    second: Mutex<Option<RunRecord>>,
}

impl ProgressSink for Reentrant {
    fn step_started(&self, _: usize, _: StepType, _: Option<u64>) {
        if let Some(engine) = self.world.get() {
            let r = engine
                .run_profile("hr", "full-sync", RunOptions::manual("second"))
                .unwrap();
            *self.second.lock().unwrap() = Some(r);
        }
    }
    fn advanced(&self, _: u64) {}
    fn step_finished(&self, _: usize, _: &StepRecord) {}
}

#[test]
fn a_second_run_of_a_running_ma_should_not_start_and_should_be_recorded() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    let sink = Arc::new(Reentrant {
        world: OnceLock::new(),
        second: Mutex::new(None),
    });
    let _ = sink.world.set(w.engine.clone());
    let mut opts = RunOptions::manual("first");
    opts.progress = Some(sink.clone());
    let first = w.engine.run_profile("hr", "full-import", opts).unwrap();
    assert_eq!(first.status, RunStatus::Success);
    let second = sink.second.lock().unwrap().take().unwrap();
    assert_eq!(second.status, RunStatus::NoStartMaAlreadyRunning);
    assert!(second.id > 0);
    let stored = w.store.read().unwrap().run_get(second.id).unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::NoStartMaAlreadyRunning);
    // Once the first run ended, the MA runs again.
    w.run_ok("hr", "full-sync", RunStatus::Success);
}

#[test]
fn runs_left_in_progress_by_a_crash_should_be_closed_as_stopped_server() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    let mut run = RunRecord {
        id: 0,
        ma: "hr".into(),
        profile: "full-import".into(),
        status: RunStatus::InProgress,
        started_at: chrono::Utc::now(),
        ended_at: None,
        reason: RunReason::Manual { by: "test".into() },
        steps: vec![StepRecord {
            step_type: StepType::FullImport,
            status: RunStatus::InProgress,
            started_at: chrono::Utc::now(),
            ended_at: None,
            counters: StepCounters::for_step(StepType::FullImport),
            errors: 0,
            message: None,
        }],
    };
    let mut txn = w.store.begin().unwrap();
    txn.run_insert(&mut run).unwrap();
    txn.commit().unwrap();
    let closed = w.engine.close_unfinished_runs().unwrap();
    assert_eq!(closed.len(), 1);
    let stored = w.store.read().unwrap().run_get(run.id).unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::StoppedServer);
    assert_eq!(stored.steps[0].status, RunStatus::StoppedServer);
    assert!(w.engine.close_unfinished_runs().unwrap().is_empty());
}

/// A target database that another writer keeps locked past the
/// connector's busy timeout stops the export `stopped-deadlocked` (MIM's
/// status, retried by default), and the next export goes through.
#[test]
fn a_target_locked_by_another_writer_should_stop_the_export_deadlocked() {
    let config = HR_DIR.replace(
        r#"connector = { type = "csv", path = "dir.csv" }"#,
        r#"connector = { type = "sqlite", path = "dir.db", table = "users", columns = ["uid", "name", "dept", "employee"], create_table = true, busy_timeout_ms = 50 }"#,
    );
    let w = World::new(&config, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run("dir", "full-import");
    let other = rusqlite::Connection::open(w.path("dir.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = w.run_ok("dir", "export", RunStatus::StoppedDeadlocked);
    assert!(r.steps[0].message.is_some(), "{r:#?}");
    other.execute_batch("ROLLBACK").unwrap();
    let e = export_counters(&w.run_ok("dir", "export", RunStatus::Success));
    assert_eq!(e.adds, 3);
}

/// A run in progress whose MA's lease this process holds is another
/// engine's of this process (a configuration reload builds a new engine;
/// the runs of the old one finish on it): the new engine leaves it alone,
/// and closes it only once no one holds the lease (a black-box review: a
/// reload during an export closed the service's own running runs as
/// `stopped-server` for a second).
#[test]
fn a_run_of_another_engine_of_this_process_should_not_be_closed() {
    use autosync_store::lease::{Instance, LeaseTiming, Leases};
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    let leases = Leases::new(w.store.clone(), Instance::current(), LeaseTiming::default());
    let mut fields = serde_json::Map::new();
    fields.insert("run_id".into(), serde_json::Value::from(0));
    leases
        .acquire("lease:hr", &fields, &mut |_| Ok(true))
        .unwrap()
        .unwrap();
    let mut run = RunRecord {
        id: 0,
        ma: "hr".into(),
        profile: "full-import".into(),
        status: RunStatus::InProgress,
        started_at: chrono::Utc::now(),
        ended_at: None,
        reason: RunReason::Manual { by: "test".into() },
        steps: vec![],
    };
    let mut txn = w.store.begin().unwrap();
    txn.run_insert(&mut run).unwrap();
    txn.commit().unwrap();

    assert!(w.engine.close_unfinished_runs().unwrap().is_empty());
    let stored = w.store.read().unwrap().run_get(run.id).unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::InProgress);

    leases.release("lease:hr").unwrap();
    assert_eq!(w.engine.close_unfinished_runs().unwrap().len(), 1);
}
