//! The import schedule of a source without change notification, from its
//! run history; reading that history.

use super::*;
use autosync_model::{RunReason, RunRecord, RunStatus, StepCounters, StepRecord, StepType};
use autosync_store::Store;
use autosync_store::sqlite::SqliteStore;

#[test]
fn source_without_change_notification_or_history_should_import_every_15_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let people = ma(&p, "people");
    assert_eq!(
        people.triggers,
        vec![ProposedTrigger::Interval {
            every: "15m".into(),
            profile: "delta-import".into()
        }]
    );
    assert!(people.triggers_why.contains("no import in its run history"));
    round_trip(dir.path(), &text, &p);
}

fn history(ma: &str, times: &[&str]) -> History {
    let mut h = History::default();
    h.imports
        .insert(ma.into(), times.iter().map(|t| at(t)).collect());
    h
}

#[test]
fn source_with_history_should_import_at_the_median_gap_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let loaded = load(dir.path(), &text);
    // Gaps 28m, 31m, 29m, 2h (an outage): median 30m.
    let h = history(
        "people",
        &[
            "2026-11-01T08:00:00Z",
            "2026-11-01T08:28:00Z",
            "2026-11-01T08:59:00Z",
            "2026-11-01T09:28:00Z",
            "2026-11-01T11:28:00Z",
        ],
    );
    let p = propose(&loaded, &registry(), &h);
    let people = ma(&p, "people");
    assert_eq!(
        people.triggers,
        vec![ProposedTrigger::Interval {
            every: "30m".into(),
            profile: "delta-import".into()
        }]
    );
    assert!(
        people.triggers_why.contains("median 30m apart"),
        "{}",
        people.triggers_why
    );
    assert_eq!(people.history.as_ref().unwrap().imports, 5);
    round_trip(dir.path(), &text, &p);
}

#[test]
fn source_imported_daily_should_get_a_daily_schedule_at_its_usual_time() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let h = history(
        "people",
        &[
            "2026-11-01T02:05:00Z",
            "2026-11-02T02:00:00Z",
            "2026-11-03T02:10:00Z",
            "2026-11-04T02:00:00Z",
        ],
    );
    let p = propose(&load(dir.path(), &text), &registry(), &h);
    assert_eq!(
        ma(&p, "people").triggers,
        vec![ProposedTrigger::Schedule {
            cron: "5 2 * * *".into(),
            timezone: "UTC".into(),
            profile: "delta-import".into()
        }]
    );
    round_trip(dir.path(), &text, &p);
}

#[test]
fn source_imported_weekly_should_get_a_weekly_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    // Mondays at 06:00.
    let h = history(
        "people",
        &[
            "2026-11-02T06:00:00Z",
            "2026-11-09T06:00:00Z",
            "2026-11-16T06:00:00Z",
        ],
    );
    let p = propose(&load(dir.path(), &text), &registry(), &h);
    assert_eq!(
        ma(&p, "people").triggers,
        vec![ProposedTrigger::Schedule {
            cron: "0 6 * * 1".into(),
            timezone: "UTC".into(),
            profile: "delta-import".into()
        }]
    );
    round_trip(dir.path(), &text, &p);
}

#[test]
fn a_single_past_import_should_not_make_a_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let p = propose(
        &load(dir.path(), &text),
        &registry(),
        &history("people", &["2026-11-02T06:00:00Z"]),
    );
    let people = ma(&p, "people");
    assert!(
        people.triggers_why.contains("a single import"),
        "{}",
        people.triggers_why
    );
    assert!(
        matches!(&people.triggers[..], [ProposedTrigger::Interval { every, .. }] if every == "15m")
    );
}

#[test]
fn round_interval_should_pick_the_nearest_sensible_interval() {
    let m = |n: u64| Duration::from_secs(n * 60);
    assert_eq!(round_interval(Duration::from_secs(3)), m(1));
    assert_eq!(round_interval(m(14)), m(15));
    assert_eq!(round_interval(m(17)), m(15));
    assert_eq!(round_interval(m(19)), m(20));
    assert_eq!(round_interval(m(50)), m(60));
    assert_eq!(round_interval(m(23 * 60)), m(24 * 60));
    assert_eq!(round_interval(m(60 * 24 * 30)), m(60 * 24 * 7));
}

fn run(ma: &str, profile: &str, step: StepType, reason: RunReason, started: &str) -> RunRecord {
    let started_at = at(started);
    RunRecord {
        id: 0,
        ma: ma.into(),
        profile: profile.into(),
        status: RunStatus::Success,
        started_at,
        ended_at: Some(started_at + chrono::Duration::seconds(5)),
        reason,
        steps: vec![StepRecord {
            step_type: step,
            status: RunStatus::Success,
            started_at,
            ended_at: Some(started_at + chrono::Duration::seconds(5)),
            counters: StepCounters::for_step(step),
            errors: 0,
            message: None,
        }],
    }
}

#[test]
fn read_history_should_count_asked_imports_but_not_confirming_imports_or_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(dir.path(), &quickstart_text());
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let manual = || RunReason::Manual { by: "cli".into() };
    let mut runs = vec![
        run(
            "hr",
            "full-import",
            StepType::FullImport,
            manual(),
            "2026-11-01T08:00:00Z",
        ),
        run(
            "hr",
            "delta-import",
            StepType::DeltaImport,
            RunReason::Trigger {
                trigger: "interval (15m)".into(),
            },
            "2026-11-01T08:15:00Z",
        ),
        run(
            "hr",
            "delta-sync",
            StepType::DeltaSync,
            manual(),
            "2026-11-01T08:16:00Z",
        ),
        run(
            "app",
            "delta-import",
            StepType::DeltaImport,
            RunReason::FollowUp {
                run_id: 1,
                because: "confirming import".into(),
                confirming: true,
            },
            "2026-11-01T08:17:00Z",
        ),
        run(
            "app",
            "full-import",
            StepType::FullImport,
            manual(),
            "2026-11-01T07:00:00Z",
        ),
    ];
    let mut txn = store.begin().unwrap();
    for r in &mut runs {
        txn.run_insert(r).unwrap();
    }
    txn.commit().unwrap();
    let h = read_history(&loaded, &mut *store.read().unwrap()).unwrap();
    assert_eq!(
        h.imports["hr"],
        vec![at("2026-11-01T08:00:00Z"), at("2026-11-01T08:15:00Z")]
    );
    assert_eq!(h.imports["app"], vec![at("2026-11-01T07:00:00Z")]);
    assert!(h.imports["directory"].is_empty());

    let lines = summary_lines(&loaded, &registry(), &mut *store.read().unwrap());
    assert_eq!(lines.len(), 3, "one line per MA: {lines:#?}");
    assert!(
        lines[0].starts_with("discover: MA `hr` is a source"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("file watch on data/hr.csv"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("no trigger"), "{}", lines[1]);
}
