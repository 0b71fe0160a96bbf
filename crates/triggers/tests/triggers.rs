//! Integration tests: a whole MA's trigger set started, stopped and started
//! again; the file-watch trigger on a real file; a failing trigger next to
//! working ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use autosync_triggers::set::TriggerDeps;
use autosync_triggers::{
    BuildContext, Clock, NoScriptHost, TokioWallClock, TriggerConfig, TriggerEvent, TriggerRequest,
    TriggerSet, TriggerState, parse_triggers,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn configs(toml_text: &str) -> Vec<TriggerConfig> {
    let table: toml::Table = toml::from_str(toml_text).unwrap();
    parse_triggers("hr", &serde_json::to_value(&table["triggers"]).unwrap()).unwrap()
}

fn build(toml_text: &str, base_dir: &Path, states: &BTreeMap<String, TriggerState>) -> TriggerSet {
    let ctx = BuildContext {
        ma: "hr",
        base_dir,
        default_watch_path: None,
        profiles: &[],
    };
    TriggerSet::build(&ctx, &configs(toml_text), states).unwrap()
}

fn deps(clock: Arc<TokioWallClock>) -> (TriggerDeps, mpsc::UnboundedReceiver<TriggerEvent>) {
    let (tx, rx) = mpsc::unbounded_channel::<TriggerEvent>();
    let deps = TriggerDeps {
        sink: Arc::new(tx),
        clock,
        host: Arc::new(NoScriptHost),
        rng_seed: Some(1),
    };
    (deps, rx)
}

/// The next request. Under a paused clock the timeout (30 days of tokio
/// time) fires at once when nothing else is scheduled, so a trigger that
/// never asks fails the test instead of hanging it.
async fn next_request(rx: &mut mpsc::UnboundedReceiver<TriggerEvent>) -> TriggerRequest {
    let wait = async {
        loop {
            match rx.recv().await.expect("the trigger set is still sending") {
                TriggerEvent::Request(r) => return r,
                TriggerEvent::State { .. } | TriggerEvent::Error(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30 * 86_400), wait)
        .await
        .expect("a request")
}

const NIGHTLY: &str = r#"triggers = [{ type = "schedule", name = "hr-nightly", cron = "0 2 * * *", timezone = "Europe/Paris", profile = "full-import" }]"#;

#[tokio::test(start_paused = true)]
async fn schedule_triggers_should_fire_again_after_a_stop_then_start() {
    let clock = Arc::new(TokioWallClock::new(utc("2024-05-01T12:00:00Z")));
    let mut set = build(NIGHTLY, Path::new("."), &BTreeMap::new());
    let (deps, mut rx) = deps(clock.clone());
    set.start(&deps);
    let request = next_request(&mut rx).await;
    assert_eq!(
        request.trigger,
        "schedule hr-nightly (0 2 * * *, Europe/Paris)"
    );
    assert_eq!(clock.now(), utc("2024-05-02T00:00:00Z"));

    set.stop().await;
    assert!(!set.is_running());
    set.start(&deps);
    let request = next_request(&mut rx).await;
    assert_eq!(request.profile, "full-import");
    assert_eq!(
        clock.now(),
        utc("2024-05-03T00:00:00Z"),
        "the next night's slot, not the one already fired"
    );
    set.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_rebuilt_set_should_resume_from_the_persisted_state_and_catch_up_once() {
    let text = r#"triggers = [{ type = "schedule", name = "hr-nightly", cron = "0 2 * * *", timezone = "UTC", catch_up = true }]"#;
    let clock = Arc::new(TokioWallClock::new(utc("2024-05-01T01:00:00Z")));
    let mut set = build(text, Path::new("."), &BTreeMap::new());
    let (deps, mut rx) = deps(clock.clone());
    set.start(&deps);
    next_request(&mut rx).await;
    set.stop().await;
    let persisted = set.states();
    assert_eq!(
        persisted["schedule:hr-nightly"].last_fired_slot,
        Some(utc("2024-05-01T02:00:00Z"))
    );

    // Down for three nights; a new process builds the set from the persisted state.
    clock.set(utc("2024-05-04T09:00:00Z"));
    let mut set = build(text, Path::new("."), &persisted);
    set.start(&deps);
    let request = next_request(&mut rx).await;
    assert!(
        request
            .trigger
            .contains("catch-up of missed slot 2024-05-04 02:00:00 UTC"),
        "{}",
        request.trigger
    );
    assert_eq!(clock.now(), utc("2024-05-04T09:00:00Z"));
    next_request(&mut rx).await;
    assert_eq!(
        clock.now(),
        utc("2024-05-05T02:00:00Z"),
        "one catch-up only, then the next slot"
    );
    set.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_trigger_should_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"triggers = [
        { type = "file-watch", path = "missing-folder/hr.csv" },
        { type = "script", every = "1m", script = "throw \"boom\"", on_error = "stop" },
        { type = "interval", every = "15m", profile = "delta-import" },
    ]"#;
    let clock = Arc::new(TokioWallClock::new(utc("2024-05-01T12:00:00Z")));
    let mut set = build(text, dir.path(), &BTreeMap::new());
    let (deps, mut rx) = deps(clock.clone());
    set.start(&deps);
    let mut errors = Vec::new();
    let request = loop {
        match rx.recv().await.unwrap() {
            TriggerEvent::Request(r) => break r,
            TriggerEvent::Error(e) => errors.push(e),
            TriggerEvent::State { .. } => {}
        }
    };
    assert_eq!(request.trigger, "interval (every 15m)");
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("cannot watch folder") && !e.stopped)
    );
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("boom") && e.stopped)
    );
    next_request(&mut rx).await;
    assert_eq!(
        clock.now(),
        utc("2024-05-01T12:30:00Z"),
        "the interval goes on"
    );
    set.stop().await;
}

#[test]
fn a_trigger_asking_for_a_profile_the_ma_does_not_have_should_be_rejected() {
    let profiles = ["delta-import".to_owned(), "full-import".to_owned()];
    let ctx = BuildContext {
        ma: "hr",
        base_dir: Path::new("."),
        default_watch_path: None,
        profiles: &profiles,
    };
    let text = r#"triggers = [{ type = "interval", profile = "delta-import" }, { type = "auto-import", profile = "delta-imprt" }]"#;
    let errors = TriggerSet::build(&ctx, &configs(text), &BTreeMap::new()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].index, errors[0].key.as_str()), (1, "profile"));
    assert!(
        errors[0]
            .message
            .contains("has no run profile `delta-imprt` (did you mean `delta-import`?)"),
        "{}",
        errors[0]
    );
}

#[test]
fn building_a_set_should_report_every_bad_trigger_and_duplicates() {
    let text = r#"triggers = [
        { type = "schedule", cron = "0 25 * * *" },
        { type = "interval", every = "1m", jitter = "2m" },
        { type = "schedule", cron = "0 2 * * *" },
        { type = "schedule", cron = "0 2 * * *" },
    ]"#;
    let ctx = BuildContext {
        ma: "hr",
        base_dir: Path::new("."),
        default_watch_path: None,
        profiles: &[],
    };
    let errors = TriggerSet::build(&ctx, &configs(text), &BTreeMap::new()).unwrap_err();
    let summary: Vec<_> = errors.iter().map(|e| (e.index, e.key.as_str())).collect();
    assert_eq!(summary, [(0, "cron"), (1, "jitter"), (3, "name")]);
    assert!(
        errors[0]
            .to_string()
            .starts_with("MA `hr`, triggers[0] (schedule): key `cron`: invalid cron expression"),
        "{}",
        errors[0]
    );
}

/// Real time here: events come from the operating system's watcher thread.
async fn expect_request(rx: &mut mpsc::UnboundedReceiver<TriggerEvent>) -> TriggerRequest {
    tokio::time::timeout(Duration::from_secs(20), next_request(rx))
        .await
        .expect("a request within 20 s")
}

#[tokio::test]
async fn file_watch_should_ask_for_an_import_when_the_file_is_written_or_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(&file, "id,name\n1,Ada\n").unwrap();
    let text = r#"triggers = [{ type = "file-watch", path = "hr.csv", debounce = "50ms", max_delay = "500ms" }]"#;
    let set = build(text, dir.path(), &BTreeMap::new());
    let autosync_triggers::Trigger::FileWatch(trigger) = set.triggers()[0].clone() else {
        panic!("not a file watch")
    };
    // Set the watch up before writing, so the write cannot be missed.
    let active = trigger.watch().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<TriggerEvent>();
    let cancel = tokio_util::sync::CancellationToken::new();
    let runner = {
        let cancel = cancel.clone();
        let clock = autosync_triggers::SystemClock;
        tokio::spawn(async move {
            trigger.run_on(active, &clock, &tx, &cancel).await;
        })
    };

    std::fs::write(&file, "id,name\n1,Ada\n2,Grace\n").unwrap();
    let request = expect_request(&mut rx).await;
    assert_eq!(request.profile, "delta-import");
    assert!(
        request.trigger.starts_with("file-watch ("),
        "{}",
        request.trigger
    );

    // An atomic replace: write a temporary file, rename it over the watched one.
    let tmp = dir.path().join(".hr.csv.tmp");
    std::fs::write(&tmp, "id,name\n3,Linus\n").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    expect_request(&mut rx).await;

    cancel.cancel();
    runner.await.unwrap();
}
