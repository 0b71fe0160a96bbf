//! The service with the real engine on a copy of the quickstart (temp
//! files): it converges by itself, keeps the causal chain, persists its
//! queues across a restart, and reports bad controller keys where they are.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use autosync_config::Loaded;
use autosync_connector::Registry;
use autosync_engine::Engine;
use autosync_model::RunReason;
use autosync_service::{Command, EngineAdapter, Service, Summary, controller_config, persist};
use autosync_store::Store;
use autosync_store::sqlite::SqliteStore;
use std::path::Path;
use std::sync::Arc;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[path = "common/people.rs"]
mod people;

/// A fresh copy of the quickstart without its groups, its configuration
/// changed by `edit`.
fn quickstart(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    copy_dir(&source, dir.path());
    for generated in [
        "state",
        "data/app.db",
        "data/directory.jsonl",
        "data/groups.csv",
    ] {
        let p = dir.path().join(generated);
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
    }
    let config = dir.path().join("autosync.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(people::without_groups(&text))).unwrap();
    dir
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    autosync_connectors::register_all(&mut registry);
    registry
}

fn load(dir: &Path) -> Result<Loaded, autosync_config::ConfigError> {
    autosync_config::load(&dir.join("autosync.toml"), &registry())
}

/// A service over the folder's configuration, with its store.
fn start_service(dir: &Path) -> (Service, Arc<dyn Store>) {
    let loaded = load(dir).unwrap();
    let config = controller_config(&loaded, &registry()).unwrap();
    let system = Arc::new(loaded.system);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&system.base_dir.join(&system.store.path)).unwrap());
    let mut registry = Registry::new();
    autosync_connectors::register_all(&mut registry);
    let engine = Engine::new(system, store.clone(), Arc::new(registry)).unwrap();
    let adapter = EngineAdapter(Arc::new(engine));
    (
        Service::new(Arc::new(adapter), store.clone(), config),
        store,
    )
}

fn ran(summary: &Summary) -> Vec<(String, String)> {
    summary
        .runs
        .iter()
        .map(|r| (r.ma.clone(), r.profile.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_should_run_the_whole_cycle_from_the_source_change_and_leave_nothing_queued() {
    let dir = quickstart(|t| t);
    let (service, store) = start_service(dir.path());
    let summary = service.run(true).await.unwrap();
    let runs = ran(&summary);
    assert_eq!(runs[0], ("hr".into(), "delta-import".into()));
    assert_eq!(runs[1], ("hr".into(), "delta-sync".into()));
    for target in ["app", "directory"] {
        assert!(runs.contains(&(target.into(), "export".into())), "{runs:?}");
        assert!(
            runs.contains(&(target.into(), "delta-import".into())),
            "{runs:?}"
        );
    }
    assert_eq!(summary.queued, 0);
    let state = persist::load(store.as_ref()).unwrap();
    assert_eq!(state.queues.total(), 0);
    assert!(state.running.is_empty());
    // Every follow-up names the run that caused it, and that run ran before.
    for (i, run) in summary.runs.iter().enumerate().skip(1) {
        let RunReason::FollowUp { run_id, .. } = &run.reason else {
            panic!(
                "run {} {} is not a follow-up: {:?}",
                run.ma, run.profile, run.reason
            );
        };
        assert!(summary.runs[..i].iter().any(|r| r.id == *run_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_queued_on_a_stopped_ma_should_survive_a_restart_and_run_after_it() {
    let stopped = |t: String| {
        t.replacen(
            "deprovisioning = \"delete\"",
            "deprovisioning = \"delete\"\ncontroller = { auto_start = false }",
            1,
        )
    };
    let dir = quickstart(stopped);
    let (service, store) = start_service(dir.path());
    let commands = service.commands();
    let stop = service.shutdown_token();
    let running = tokio::spawn(service.run(false));
    let (reply, answer) = tokio::sync::oneshot::channel();
    commands
        .send(Command::Queue {
            ma: "app".into(),
            profile: "full-import".into(),
            exclusive: false,
            run_immediate: false,
            by: "test".into(),
            reply,
        })
        .unwrap();
    answer.await.unwrap().unwrap();
    stop.cancel();
    let summary = running.await.unwrap().unwrap();
    assert!(
        !ran(&summary).iter().any(|(ma, _)| ma == "app"),
        "a stopped MA ran: {:?}",
        ran(&summary)
    );
    let queued: Vec<String> = persist::load(store.as_ref())
        .unwrap()
        .queues
        .get("app")
        .map(|q| q.iter().map(|r| r.profile.clone()).collect())
        .unwrap_or_default();
    assert!(queued.contains(&"full-import".to_owned()), "{queued:?}");
    drop(store);

    // Restart with the MA started: the queued request runs.
    std::fs::write(
        dir.path().join("autosync.toml"),
        std::fs::read_to_string(dir.path().join("autosync.toml"))
            .unwrap()
            .replace("controller = { auto_start = false }", ""),
    )
    .unwrap();
    let (service, _store) = start_service(dir.path());
    let summary = service.run(true).await.unwrap();
    let manual = summary
        .runs
        .iter()
        .find(|r| r.ma == "app" && r.profile == "full-import")
        .expect("the queued request ran after the restart");
    assert_eq!(manual.reason, RunReason::Manual { by: "test".into() });
}

#[test]
fn bad_controller_keys_should_be_reported_with_their_line_and_key() {
    let dir = quickstart(|t| {
        t.replacen(
            "deprovisioning = \"delete\"",
            "deprovisioning = \"delete\"\ncontroller = { follow_ups = { exprot = false }, triggers = [{ type = \"schedule\", cron = \"61 * * * *\" }] }",
            1,
        )
        .replace("start_stagger = \"0s\"", "start_stagger = \"0s\"\nrun_mode = \"fastest\"")
    });
    let loaded = load(dir.path()).unwrap();
    let errors = loaded
        .error(controller_config(&loaded, &registry()).unwrap_err())
        .to_string();
    let text = std::fs::read_to_string(dir.path().join("autosync.toml")).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (key, needle) in [
        ("follow_ups", "exprot"),
        ("cron", "exprot"),
        ("run_mode", "fastest"),
    ] {
        let line = line_of(needle);
        assert!(
            errors
                .lines()
                .any(|l| l.contains(key) && l.contains(&format!(":{line}:"))),
            "no error for `{key}` at line {line} in:\n{errors}"
        );
    }
}

#[test]
fn a_source_file_ma_without_triggers_should_watch_its_file_and_targets_nothing() {
    let dir = quickstart(|t| {
        t.replace(
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]"#,
            "",
        )
    });
    let config = controller_config(&load(dir.path()).unwrap(), &registry()).unwrap();
    let hr = &config.mas["hr"];
    assert!(hr.default_triggers);
    assert_eq!(hr.triggers.len(), 1);
    assert_eq!(hr.triggers[0].kind(), "file-watch");
    assert!(config.mas["app"].triggers.is_empty());
    assert!(config.mas["directory"].triggers.is_empty());
    assert!(config.start_stagger.is_zero());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_an_import_should_cancel_it_and_queue_it_again_for_the_next_start() {
    let dir = quickstart(|t| t);
    // A source big enough that the import is still running when we stop.
    let mut text =
        String::from("employee_id,first_name,last_name,email,department,title,manager_id,status\n");
    for i in 0..300_000 {
        text.push_str(&format!(
            "E{i:07},Ann,Lee{i},ann.lee{i}@example.com,Ops,Clerk,,active\n"
        ));
    }
    std::fs::write(dir.path().join("data/hr.csv"), text).unwrap();
    let (service, store) = start_service(dir.path());
    let stop = service.shutdown_token();
    let running = tokio::spawn(service.run(false));
    // The state is persisted when a run starts: wait for the import to start.
    let started = std::time::Instant::now();
    while persist::load(store.as_ref()).unwrap().running.is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the import never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.cancel();
    let summary = running.await.unwrap().unwrap();
    let import = &summary.runs[0];
    assert_eq!(
        (import.ma.as_str(), import.profile.as_str()),
        ("hr", "delta-import")
    );
    assert_eq!(
        import.status,
        autosync_model::RunStatus::StoppedUserRequested
    );
    // Cancelled between batches, not after reading every row.
    let autosync_model::StepCounters::Import(c) = &import.steps[0].counters else {
        panic!("not an import: {import:?}");
    };
    assert!(c.stage_add < 300_000, "the import was not cut short: {c:?}");
    let state = persist::load(store.as_ref()).unwrap();
    assert!(state.running.is_empty());
    let hr: Vec<String> = state
        .queues
        .get("hr")
        .map(|q| q.iter().map(|r| r.profile.clone()).collect())
        .unwrap_or_default();
    assert!(hr.contains(&"delta-import".to_owned()), "hr queue: {hr:?}");
}

/// After a kill, the requests the state says were running go back to their
/// queues, except one whose run had completed before the kill (its run is
/// in the history with the request's reason): it is not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_only_requests_whose_run_did_not_complete_should_run_again() {
    use autosync_controller::{QueuedRequest, RequestId};
    let dir = quickstart(|t| t);
    let (service, store) = start_service(dir.path());
    service.run(true).await.unwrap();

    let reason = RunReason::Trigger {
        trigger: "schedule (test)".into(),
    };
    let request = |at| QueuedRequest {
        id: RequestId(9001),
        ma: "hr".into(),
        profile: "full-import".into(),
        exclusive: false,
        run_immediate: false,
        reason: reason.clone(),
        chain: Vec::new(),
        enqueued_at: at,
        merged: 0,
        started_at: None,
        after_run: None,
    };
    let write_running = |r: QueuedRequest| {
        let mut state = persist::load(store.as_ref()).unwrap();
        state.running = vec![r];
        persist::save(store.as_ref(), &state).unwrap();
    };

    // The request's run completed, then the process died before writing
    // its state.
    let queued_at = chrono::Utc::now();
    {
        let loaded = load(dir.path()).unwrap();
        let mut registry = Registry::new();
        autosync_connectors::register_all(&mut registry);
        let engine =
            Engine::new(Arc::new(loaded.system), store.clone(), Arc::new(registry)).unwrap();
        let opts = autosync_engine::RunOptions::new(reason.clone());
        let record = engine.run_profile("hr", "full-import", opts).unwrap();
        assert_eq!(record.reason, reason);
    }
    write_running(request(queued_at));
    let (service, _) = start_service(dir.path());
    let summary = service.run(true).await.unwrap();
    assert!(
        !ran(&summary).contains(&("hr".into(), "full-import".into())),
        "a completed run ran again: {:?}",
        ran(&summary)
    );

    // A request whose run never completed (queued after that run) runs.
    write_running(request(chrono::Utc::now()));
    let (service, _) = start_service(dir.path());
    let summary = service.run(true).await.unwrap();
    assert!(
        ran(&summary).contains(&("hr".into(), "full-import".into())),
        "{:?}",
        ran(&summary)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_ma_should_run_nothing_and_show_disabled() {
    let dir = quickstart(|t| {
        t.replace(
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]"#,
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]
enabled = false"#,
        )
    });
    let (service, store) = start_service(dir.path());
    let summary = service.run(true).await.unwrap();
    assert!(
        summary.runs.iter().all(|r| r.ma != "hr"),
        "{:?}",
        ran(&summary)
    );
    let config = controller_config(&load(dir.path()).unwrap(), &registry()).unwrap();
    let status = autosync_service::status_from_store(store.as_ref(), &config).unwrap();
    assert_eq!(
        status.mas["hr"].state,
        autosync_service::MaStateView::Disabled
    );
    assert_ne!(
        status.mas["app"].state,
        autosync_service::MaStateView::Disabled
    );
}
