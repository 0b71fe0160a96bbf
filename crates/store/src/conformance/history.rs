//! Run history (insert, update, listing, errors, unfinished runs,
//! trimming), watermarks, meta values and their compare-and-set.

use super::ConformanceTarget;
use crate::api::{Store, StoreErrorKind};
use autosync_model::{
    AttrChange, ChangeKind, ErrorStage, ObjectError, RunChange, RunObjectError, RunReason,
    RunRecord, RunStatus, Value,
};
use chrono::{Duration, TimeZone, Utc};
use std::sync::Arc;

fn run(ma: &str, status: RunStatus, ended_days_ago: Option<i64>) -> RunRecord {
    let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
    RunRecord {
        id: 0,
        ma: ma.into(),
        profile: "full-import".into(),
        status,
        started_at: now - Duration::days(ended_days_ago.unwrap_or(0)) - Duration::minutes(5),
        ended_at: ended_days_ago.map(|d| now - Duration::days(d)),
        reason: RunReason::Manual { by: "test".into() },
        steps: vec![],
    }
}

fn insert_runs(store: &dyn Store, runs: Vec<RunRecord>) -> Vec<RunRecord> {
    let mut txn = store.begin().unwrap();
    let out = runs
        .into_iter()
        .map(|mut r| {
            txn.run_insert(&mut r).unwrap();
            r
        })
        .collect();
    txn.commit().unwrap();
    out
}

fn object_error(run_id: i64, object: &str) -> RunObjectError {
    RunObjectError {
        run_id,
        step_index: 0,
        ma: "hr".into(),
        object: object.into(),
        error: ObjectError {
            stage: ErrorStage::Import,
            error_type: "duplicate-anchor".into(),
            detail: format!("{object} twice"),
            run_id: Some(run_id),
        },
    }
}

pub fn runs_should_read_back_and_list_most_recent_first_per_ma(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let runs = insert_runs(
        store,
        vec![
            run("hr", RunStatus::Success, Some(3)),
            run("ad", RunStatus::Success, Some(2)),
            run("hr", RunStatus::CompletedImportErrors, Some(1)),
        ],
    );
    let mut r = store.read().unwrap();
    assert_eq!(r.run_get(runs[1].id).unwrap().as_ref(), Some(&runs[1]));
    assert_eq!(r.run_get(777).unwrap(), None);
    let ids = |v: Vec<RunRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(r.runs(None, 10).unwrap()),
        [runs[2].id, runs[1].id, runs[0].id]
    );
    assert_eq!(
        ids(r.runs(Some("hr"), 10).unwrap()),
        [runs[2].id, runs[0].id]
    );
    assert_eq!(ids(r.runs(None, 1).unwrap()), [runs[2].id]);
}

pub fn run_update_should_replace_the_record_and_fail_for_a_missing_one(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let mut r = insert_runs(store, vec![run("hr", RunStatus::InProgress, None)]).remove(0);
    assert_eq!(store.unfinished_runs().unwrap(), vec![r.clone()]);
    r.status = RunStatus::Success;
    r.ended_at = Some(Utc::now());
    let mut txn = store.begin().unwrap();
    txn.run_update(&r).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        store.read().unwrap().run_get(r.id).unwrap(),
        Some(r.clone())
    );
    assert!(store.unfinished_runs().unwrap().is_empty());
    r.id = 999;
    let err = store.begin().unwrap().run_update(&r).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
}

pub fn run_errors_should_be_listed_per_run_in_order_up_to_the_limit(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let runs = insert_runs(
        store,
        vec![
            run("hr", RunStatus::CompletedImportErrors, Some(0)),
            run("hr", RunStatus::Success, Some(0)),
        ],
    );
    let errors: Vec<RunObjectError> = (0..5)
        .map(|i| object_error(runs[0].id, &format!("o{i}")))
        .collect();
    let mut txn = store.begin().unwrap();
    txn.run_errors_insert(&errors).unwrap();
    txn.run_errors_insert(&[object_error(runs[1].id, "other")])
        .unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.run_errors(runs[0].id, 100).unwrap(), errors);
    assert_eq!(r.run_errors(runs[0].id, 2).unwrap(), errors[..2].to_vec());
    assert_eq!(r.run_errors(runs[1].id, 100).unwrap().len(), 1);
}

fn change(run_id: i64, object: &str) -> RunChange {
    let mut c = RunChange {
        run_id,
        step_index: 1,
        ma: "hr".into(),
        object: object.into(),
        dn: Some(format!("cn={object}")),
        kind: ChangeKind::Update,
        new_dn: None,
        attributes: Default::default(),
    };
    c.attributes.insert(
        "manager".into(),
        AttrChange::replace(Some(&Value::from("E1")), Some(&Value::from("E4"))),
    );
    c.attributes.insert(
        "members".into(),
        AttrChange::values(&[Value::Reference(7)], &[Value::from("E9")]),
    );
    c
}

pub fn run_changes_should_read_back_per_run_in_order_and_page_by_offset(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let runs = insert_runs(
        store,
        vec![
            run("hr", RunStatus::Success, Some(0)),
            run("hr", RunStatus::Success, Some(0)),
        ],
    );
    let changes: Vec<RunChange> = (0..7)
        .map(|i| change(runs[0].id, &format!("o{i}")))
        .collect();
    let mut txn = store.begin().unwrap();
    txn.run_changes_insert(&changes[..4]).unwrap();
    txn.run_changes_insert(&[change(runs[1].id, "other")])
        .unwrap();
    txn.run_changes_insert(&changes[4..]).unwrap();
    // The transaction sees its own writes.
    assert_eq!(txn.run_change_count(runs[0].id).unwrap(), 7);
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.run_changes(runs[0].id, 0, 100).unwrap(), changes);
    assert_eq!(r.run_changes(runs[0].id, 0, 2).unwrap(), changes[..2]);
    assert_eq!(r.run_changes(runs[0].id, 5, 10).unwrap(), changes[5..]);
    assert!(r.run_changes(runs[0].id, 7, 10).unwrap().is_empty());
    assert_eq!(r.run_change_count(runs[0].id).unwrap(), 7);
    assert_eq!(
        r.run_changes(runs[1].id, 0, 10).unwrap(),
        [change(runs[1].id, "other")]
    );
    assert_eq!(r.run_change_count(777).unwrap(), 0);
    assert!(r.run_changes(777, 0, 10).unwrap().is_empty());
    // A rolled-back transaction records nothing.
    let mut txn = store.begin().unwrap();
    txn.run_changes_insert(&[change(runs[1].id, "lost")])
        .unwrap();
    drop(txn);
    assert_eq!(
        store.read().unwrap().run_change_count(runs[1].id).unwrap(),
        1
    );
}

pub fn trim_runs_should_delete_runs_ended_before_the_cutoff_with_their_errors(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    let runs = insert_runs(
        store,
        vec![
            run("hr", RunStatus::Success, Some(40)),
            run("hr", RunStatus::Success, Some(10)),
            run("hr", RunStatus::InProgress, None),
        ],
    );
    let mut txn = store.begin().unwrap();
    txn.run_errors_insert(&[object_error(runs[0].id, "a"), object_error(runs[1].id, "b")])
        .unwrap();
    txn.run_changes_insert(&[change(runs[0].id, "a"), change(runs[1].id, "b")])
        .unwrap();
    txn.commit().unwrap();
    let cutoff = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap() - Duration::days(30);
    assert_eq!(store.trim_runs(cutoff).unwrap(), 1);
    let mut r = store.read().unwrap();
    assert_eq!(r.run_get(runs[0].id).unwrap(), None);
    assert!(r.run_errors(runs[0].id, 10).unwrap().is_empty());
    assert_eq!(r.run_errors(runs[1].id, 10).unwrap().len(), 1);
    assert_eq!(r.run_change_count(runs[0].id).unwrap(), 0);
    assert_eq!(r.run_change_count(runs[1].id).unwrap(), 1);
    // A run still in progress has no end and is never trimmed.
    assert_eq!(r.runs(None, 10).unwrap().len(), 2);
}

pub fn watermarks_and_meta_values_should_be_set_replaced_and_cleared(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let mut txn = store.begin().unwrap();
    txn.set_watermark("hr", Some("cookie-1")).unwrap();
    txn.set_meta("approval", Some("yes")).unwrap();
    txn.commit().unwrap();
    let mut txn = store.begin().unwrap();
    txn.set_watermark("hr", Some("cookie-2")).unwrap();
    assert_eq!(txn.watermark("hr").unwrap().as_deref(), Some("cookie-2"));
    txn.commit().unwrap();
    {
        let mut r = store.read().unwrap();
        assert_eq!(r.watermark("hr").unwrap().as_deref(), Some("cookie-2"));
        assert_eq!(r.watermark("ad").unwrap(), None);
        assert_eq!(r.meta("approval").unwrap().as_deref(), Some("yes"));
    }
    let mut txn = store.begin().unwrap();
    txn.set_watermark("hr", None).unwrap();
    txn.set_meta("approval", None).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.watermark("hr").unwrap(), None);
    assert_eq!(r.meta("approval").unwrap(), None);
}

pub fn compare_and_set_meta_should_change_only_the_value_it_expects(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let store = &*s.store;
    let get = || store.read().unwrap().meta("k").unwrap();
    // Absent is expected as `None`.
    assert!(
        !store
            .compare_and_set_meta("k", Some("x"), Some("1"))
            .unwrap()
    );
    assert_eq!(get(), None);
    assert!(store.compare_and_set_meta("k", None, Some("1")).unwrap());
    assert_eq!(get().as_deref(), Some("1"));
    assert!(!store.compare_and_set_meta("k", None, Some("2")).unwrap());
    assert!(
        !store
            .compare_and_set_meta("k", Some("0"), Some("2"))
            .unwrap()
    );
    assert_eq!(get().as_deref(), Some("1"));
    assert!(
        store
            .compare_and_set_meta("k", Some("1"), Some("2"))
            .unwrap()
    );
    assert_eq!(get().as_deref(), Some("2"));
    // `None` as the new value removes it.
    assert!(store.compare_and_set_meta("k", Some("2"), None).unwrap());
    assert_eq!(get(), None);
    // Other keys are untouched.
    let mut txn = store.begin().unwrap();
    txn.set_meta("other", Some("o")).unwrap();
    txn.commit().unwrap();
    assert!(store.compare_and_set_meta("k", None, Some("3")).unwrap());
    assert_eq!(
        store.read().unwrap().meta("other").unwrap().as_deref(),
        Some("o")
    );
}

/// Threads on two handles add one to a counter each, many times, by
/// compare-and-set: no increment is lost, so two writers never both
/// succeed from the same value.
pub fn compare_and_set_meta_should_have_one_winner_among_handles(t: &ConformanceTarget) {
    let s = (t.fresh)();
    let handles = [Arc::clone(&s.store), (s.open_again)()];
    const THREADS_PER_HANDLE: usize = 2;
    const INCREMENTS: usize = 25;
    std::thread::scope(|scope| {
        for store in &handles {
            for _ in 0..THREADS_PER_HANDLE {
                scope.spawn(move || {
                    for _ in 0..INCREMENTS {
                        loop {
                            let now = store.read().unwrap().meta("counter").unwrap();
                            let n: usize = now.as_deref().map_or(0, |t| t.parse().unwrap());
                            let next = (n + 1).to_string();
                            if store
                                .compare_and_set_meta("counter", now.as_deref(), Some(&next))
                                .unwrap()
                            {
                                break;
                            }
                        }
                    }
                });
            }
        }
    });
    let total = s.store.read().unwrap().meta("counter").unwrap();
    assert_eq!(
        total,
        Some((2 * THREADS_PER_HANDLE * INCREMENTS).to_string()),
        "{}: increments were lost",
        t.name
    );
}

pub fn runs_page_should_skip_the_most_recent_and_run_count_should_count_them(
    t: &ConformanceTarget,
) {
    let s = (t.fresh)();
    let store = &*s.store;
    let runs = insert_runs(
        store,
        (0..7)
            .map(|i| {
                run(
                    if i % 2 == 0 { "hr" } else { "ad" },
                    RunStatus::Success,
                    Some(10 - i),
                )
            })
            .collect(),
    );
    let mut r = store.read().unwrap();
    let ids = |v: Vec<RunRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(r.runs_page(None, 2, 3).unwrap()),
        [runs[4].id, runs[3].id, runs[2].id]
    );
    assert_eq!(
        ids(r.runs_page(None, 0, 2).unwrap()),
        ids(r.runs(None, 2).unwrap())
    );
    assert_eq!(
        ids(r.runs_page(Some("hr"), 1, 10).unwrap()),
        [runs[4].id, runs[2].id, runs[0].id]
    );
    assert!(r.runs_page(None, 7, 10).unwrap().is_empty());
    assert!(r.runs_page(Some("hr"), 100, 10).unwrap().is_empty());
    assert_eq!(r.run_count(None).unwrap(), 7);
    assert_eq!(r.run_count(Some("hr")).unwrap(), 4);
    assert_eq!(r.run_count(Some("ad")).unwrap(), 3);
    assert_eq!(r.run_count(Some("none")).unwrap(), 0);
}
