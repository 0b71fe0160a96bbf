//! The scheduler's rules from "Queues and concurrency" (autosync.md).

use crate::support::at;
use autosync_controller::{
    LockGroup, MaState, Plan, QueuedRequest, Request, RequestId, RunMode, Running, Scheduler, Slot,
    WaitReason,
};

/// A queue head: `profile` on `ma`, enqueued at second `t`.
fn head(ma: &str, profile: &str, t: i64) -> QueuedRequest {
    let r = Request::trigger(ma, profile, "test");
    QueuedRequest {
        id: RequestId(t as u64 + 1),
        ma: r.ma,
        profile: r.profile,
        exclusive: false,
        run_immediate: false,
        reason: r.reason,
        chain: Vec::new(),
        enqueued_at: at(t),
        merged: 0,
        started_at: None,
        after_run: None,
    }
}

fn exclusive(mut h: QueuedRequest) -> QueuedRequest {
    h.exclusive = true;
    h
}

fn slot(h: &QueuedRequest) -> Slot<'_> {
    Slot {
        ma: &h.ma,
        state: MaState::Active,
        in_blackout: false,
        head: Some(h),
        head_has_sync: h.profile.contains("sync"),
    }
}

fn running(ma: &str, profile: &str) -> Running {
    Running {
        ma: ma.into(),
        profile: profile.into(),
        has_sync: profile.contains("sync"),
        exclusive: false,
    }
}

fn started(p: &Plan) -> Vec<&str> {
    p.start.iter().map(|s| s.ma.as_str()).collect()
}

fn mode(mode: RunMode) -> Scheduler {
    Scheduler {
        mode,
        lock_groups: Vec::new(),
    }
}

#[test]
fn an_ma_that_is_running_should_start_nothing_else_and_not_be_shown_waiting() {
    let h = head("hr", "delta-sync", 0);
    let p = mode(RunMode::Unsupported).plan(&[running("hr", "delta-import")], &[slot(&h)]);
    assert!(p.start.is_empty() && p.waiting.is_empty());
}

#[test]
fn only_one_sync_should_run_at_a_time_even_in_unsupported_mode() {
    let (a, b) = (head("hr", "delta-sync", 0), head("ad", "delta-sync", 1));
    let p = mode(RunMode::Unsupported).plan(&[], &[slot(&a), slot(&b)]);
    assert_eq!(started(&p), ["hr"]);
    assert_eq!(
        p.waiting["ad"],
        WaitReason::SyncLock {
            held_by: "hr".into()
        }
    );
}

#[test]
fn imports_and_exports_should_overlap_a_sync_in_unsupported_mode() {
    let (a, b) = (head("ad", "delta-import", 1), head("app", "export", 2));
    let p = mode(RunMode::Unsupported).plan(&[running("hr", "delta-sync")], &[slot(&a), slot(&b)]);
    assert_eq!(started(&p), ["ad", "app"]);
}

#[test]
fn imports_and_exports_of_different_mas_should_overlap_in_supported_mode() {
    let (a, b, c) = (
        head("hr", "delta-import", 0),
        head("ad", "export", 1),
        head("app", "full-import", 2),
    );
    let p = Scheduler::default().plan(&[], &[slot(&a), slot(&b), slot(&c)]);
    assert_eq!(started(&p), ["hr", "ad", "app"]);
}

#[test]
fn nothing_should_start_while_a_sync_runs_in_supported_mode() {
    let (a, b) = (head("ad", "delta-import", 1), head("app", "export", 2));
    let p = Scheduler::default().plan(&[running("hr", "delta-sync")], &[slot(&a), slot(&b)]);
    assert!(p.start.is_empty());
    assert_eq!(
        p.waiting["ad"],
        WaitReason::SyncLock {
            held_by: "hr".into()
        }
    );
    assert_eq!(
        p.waiting["app"].to_string(),
        "waiting for the sync lock (held by `hr`)"
    );
}

#[test]
fn a_sync_should_wait_until_every_ma_is_idle_in_supported_mode() {
    let s = head("hr", "delta-sync", 0);
    let p = Scheduler::default().plan(
        &[running("ad", "delta-import"), running("app", "export")],
        &[slot(&s)],
    );
    assert!(p.start.is_empty());
    assert_eq!(
        p.waiting["hr"],
        WaitReason::WaitingForIdle {
            running: vec!["ad".into(), "app".into()]
        }
    );
}

#[test]
fn a_sync_waiting_for_idle_should_keep_newer_imports_and_exports_from_starting() {
    let (s, i, e) = (
        head("hr", "delta-sync", 0),
        head("ldap", "delta-import", 1),
        head("app", "export", 2),
    );
    let p = Scheduler::default().plan(
        &[running("ad", "delta-import")],
        &[slot(&i), slot(&e), slot(&s)],
    );
    assert!(p.start.is_empty());
    assert_eq!(
        p.waiting["ldap"],
        WaitReason::DrainingForSync {
            sync_ma: "hr".into()
        }
    );
    assert_eq!(p.waiting["app"].to_string(), "the sync of `hr` goes first");
}

#[test]
fn a_sync_queued_behind_its_own_mas_run_should_already_hold_newer_requests_back() {
    let (s, i) = (head("hr", "delta-sync", 0), head("ad", "delta-import", 1));
    let p = Scheduler::default().plan(&[running("hr", "delta-import")], &[slot(&s), slot(&i)]);
    assert!(p.start.is_empty());
    assert_eq!(
        p.waiting["ad"],
        WaitReason::DrainingForSync {
            sync_ma: "hr".into()
        }
    );
    assert!(
        !p.waiting.contains_key("hr"),
        "a running MA is shown running, not waiting"
    );
}

#[test]
fn an_idle_engine_should_start_the_oldest_sync_and_hold_newer_imports_in_supported_mode() {
    let (s, i) = (head("hr", "delta-sync", 0), head("ad", "delta-import", 1));
    let p = Scheduler::default().plan(&[], &[slot(&i), slot(&s)]);
    assert_eq!(started(&p), ["hr"]);
    assert_eq!(
        p.waiting["ad"],
        WaitReason::SyncLock {
            held_by: "hr".into()
        }
    );
}

#[test]
fn an_older_import_should_start_before_a_newer_sync_which_then_waits_for_it() {
    let (i, s) = (head("ad", "delta-import", 0), head("hr", "delta-sync", 1));
    let p = Scheduler::default().plan(&[], &[slot(&s), slot(&i)]);
    assert_eq!(started(&p), ["ad"]);
    assert_eq!(
        p.waiting["hr"],
        WaitReason::WaitingForIdle {
            running: vec!["ad".into()]
        }
    );
}

#[test]
fn nothing_should_overlap_anything_in_exclusive_mode() {
    let (a, b, c) = (
        head("hr", "delta-import", 0),
        head("ad", "export", 1),
        head("app", "full-import", 2),
    );
    let p = mode(RunMode::Exclusive).plan(&[], &[slot(&c), slot(&b), slot(&a)]);
    assert_eq!(started(&p), ["hr"]);
    assert_eq!(
        p.waiting["ad"],
        WaitReason::Exclusive {
            held_by: "hr".into()
        }
    );
    assert_eq!(
        p.waiting["app"],
        WaitReason::Exclusive {
            held_by: "hr".into()
        }
    );
}

#[test]
fn an_exclusive_request_should_wait_for_idle_and_hold_newer_requests_in_any_mode() {
    let (x, i) = (
        exclusive(head("hr", "full-import", 0)),
        head("app", "delta-import", 1),
    );
    let p = mode(RunMode::Unsupported).plan(&[running("ad", "export")], &[slot(&x), slot(&i)]);
    assert!(p.start.is_empty());
    assert_eq!(
        p.waiting["hr"],
        WaitReason::WaitingForIdle {
            running: vec!["ad".into()]
        }
    );
    assert_eq!(
        p.waiting["app"],
        WaitReason::Exclusive {
            held_by: "hr".into()
        }
    );
}

#[test]
fn a_running_exclusive_request_should_keep_everything_else_waiting() {
    let i = head("app", "delta-import", 1);
    let mut r = running("hr", "full-import");
    r.exclusive = true;
    let p = mode(RunMode::Unsupported).plan(&[r], &[slot(&i)]);
    assert!(p.start.is_empty());
    assert_eq!(p.waiting["app"].to_string(), "`hr` runs alone");
}

#[test]
fn mas_of_one_lock_group_should_never_run_together() {
    let sched = Scheduler {
        mode: RunMode::Unsupported,
        lock_groups: vec![LockGroup {
            name: "sap".into(),
            mas: ["sap-hr".to_owned(), "sap-fi".to_owned()].into(),
        }],
    };
    let (a, b, c) = (
        head("sap-hr", "delta-import", 0),
        head("sap-fi", "delta-import", 1),
        head("ad", "export", 2),
    );
    let p = sched.plan(&[], &[slot(&a), slot(&b), slot(&c)]);
    assert_eq!(started(&p), ["sap-hr", "ad"]);
    assert_eq!(
        p.waiting["sap-fi"],
        WaitReason::LockGroup {
            group: "sap".into(),
            held_by: "sap-hr".into()
        }
    );
    assert_eq!(
        p.waiting["sap-fi"].to_string(),
        "waiting for lock group `sap` (held by `sap-hr`)"
    );
}

#[test]
fn stopped_and_disabled_mas_should_start_nothing_and_keep_their_queue() {
    let (a, b) = (head("hr", "delta-import", 0), head("ad", "delta-import", 1));
    let mut stopped = slot(&a);
    stopped.state = MaState::Stopped;
    let mut disabled = slot(&b);
    disabled.state = MaState::Disabled;
    let p = Scheduler::default().plan(&[], &[stopped, disabled]);
    assert!(p.start.is_empty() && p.waiting.is_empty());
}

#[test]
fn an_ma_in_a_blackout_window_should_wait_without_holding_others() {
    let (a, b) = (head("hr", "delta-sync", 0), head("ad", "delta-import", 1));
    let mut blackout = slot(&a);
    blackout.in_blackout = true;
    let p = Scheduler::default().plan(&[running("app", "export")], &[blackout, slot(&b)]);
    assert_eq!(started(&p), ["ad"]);
    assert_eq!(p.waiting["hr"], WaitReason::Blackout);
}

#[test]
fn an_unmanaged_sync_should_hold_the_sync_lock_like_the_controllers_own() {
    let s = head("hr", "delta-sync", 0);
    let p = mode(RunMode::Unsupported).plan(&[running("ad", "delta-sync")], &[slot(&s)]);
    assert_eq!(
        p.waiting["hr"],
        WaitReason::SyncLock {
            held_by: "ad".into()
        }
    );
}

#[test]
fn run_modes_and_wait_reasons_should_serialize_for_configuration_and_status() {
    let m: RunMode = serde_json::from_value(serde_json::json!("unsupported")).expect("mode");
    assert_eq!(m, RunMode::Unsupported);
    assert_eq!(RunMode::default(), RunMode::Supported);
    let w = serde_json::to_value(WaitReason::DrainingForSync {
        sync_ma: "hr".into(),
    })
    .expect("json");
    assert_eq!(
        w,
        serde_json::json!({ "kind": "draining-for-sync", "sync_ma": "hr" })
    );
}
