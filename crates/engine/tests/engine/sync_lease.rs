//! One sync at a time across processes: a sync step waits while another
//! live process's sync holds the store's sync lease (saying who it waits
//! for), can be cancelled while it waits, starts once that process is gone,
//! does not wait for a lease whose run has ended, and releases its own
//! lease however its step ends. The other process is a real one (`sleep`),
//! named in the lease with its pid and start time. And two nodes in this
//! process (two engines with their own store handles and instance ids):
//! the second neither runs an MA the first runs nor syncs while the first
//! does.

use crate::fixture::*;
use autosync_engine::lease::{LeaseOwner, SYNC_LEASE_KEY, SyncHolder};
use autosync_engine::{ProgressSink, RunOptions};
use autosync_model::{RunReason, RunRecord, RunStatus, StepRecord, StepType};
use autosync_store::Store as _;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Generous bound for waiting on an event (not a timing assertion).
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A live process that holds the sync lease for the sync of `dir` in a run
/// in progress; killed when dropped.
struct OtherProcess {
    child: Child,
    holder: SyncHolder,
}

impl OtherProcess {
    /// `run_status`: the status of the run named in the lease.
    fn hold(w: &World, run_status: RunStatus) -> OtherProcess {
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        let mut run = RunRecord {
            id: 0,
            ma: "dir".into(),
            profile: "full-sync".into(),
            status: run_status,
            started_at: chrono::Utc::now(),
            ended_at: (run_status != RunStatus::InProgress).then(chrono::Utc::now),
            reason: RunReason::Manual {
                by: "another process".into(),
            },
            steps: Vec::new(),
        };
        let mut txn = w.store.begin().unwrap();
        txn.run_insert(&mut run).unwrap();
        let holder = SyncHolder {
            ma: "dir".into(),
            owner: LeaseOwner::of_process(child.id(), run.id).unwrap(),
        };
        txn.set_meta(
            SYNC_LEASE_KEY,
            Some(&serde_json::to_string(&holder).unwrap()),
        )
        .unwrap();
        txn.commit().unwrap();
        OtherProcess { child, holder }
    }

    /// SIGKILL: the process is gone, its lease stays in the store.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends what a run waits for; cancels the run when it waits, if asked.
struct Waiting {
    told: Mutex<mpsc::Sender<String>>,
    cancel: Option<autosync_engine::CancelFlag>,
}

impl ProgressSink for Waiting {
    fn step_started(&self, _: usize, _: StepType, _: Option<u64>) {}
    fn advanced(&self, _: u64) {}
    fn step_finished(&self, _: usize, _: &StepRecord) {}
    fn waiting(&self, index: usize, step: StepType, why: &str) {
        let _ = self
            .told
            .lock()
            .unwrap()
            .send(format!("step {}: {step}: {why}", index + 1));
        if let Some(cancel) = &self.cancel {
            cancel.cancel();
        }
    }
}

/// Options whose progress sends what the run waits for to the receiver.
fn telling(cancel_when_waiting: bool) -> (RunOptions, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let mut opts = RunOptions::manual("test");
    opts.progress = Some(Arc::new(Waiting {
        told: Mutex::new(tx),
        cancel: cancel_when_waiting.then(|| opts.cancel.clone()),
    }));
    (opts, rx)
}

fn sync_lease(w: &World) -> Option<String> {
    w.store.read().unwrap().meta(SYNC_LEASE_KEY).unwrap()
}

#[test]
fn a_sync_should_wait_for_another_processs_sync_and_start_once_that_process_is_gone() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let mut other = OtherProcess::hold(&w, RunStatus::InProgress);
    let (opts, told) = telling(false);
    let engine = w.engine.clone();
    let syncing = std::thread::spawn(move || engine.run_profile("hr", "full-sync", opts).unwrap());
    let said = told.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert_eq!(
        said,
        format!(
            "step 1: full-sync: waiting for the sync of `dir` in process {} (run {})",
            other.holder.owner.holder.pid, other.holder.owner.run_id
        )
    );
    assert_eq!(
        said,
        format!("step 1: full-sync: waiting for {}", other.holder)
    );
    // While it waits, its sync has not started.
    let runs = w.store.read().unwrap().runs(Some("hr"), 1).unwrap();
    assert_eq!(runs[0].status, RunStatus::InProgress);
    assert!(runs[0].steps.is_empty(), "{:?}", runs[0].steps);
    assert!(w.mv_all().is_empty(), "nothing was synchronised yet");

    other.kill();
    let killed_at = chrono::Utc::now();
    let run = syncing.join().unwrap();
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    assert!(run.steps[0].started_at >= killed_at, "{run:#?}");
    assert_eq!(w.mv_all().len(), 3);
    assert_eq!(sync_lease(&w), None, "released when the step ended");
    assert!(told.try_recv().is_err(), "said once");
}

#[test]
fn a_sync_waiting_for_another_processs_sync_should_stop_when_cancelled() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let other = OtherProcess::hold(&w, RunStatus::InProgress);
    let before = sync_lease(&w);
    let (opts, told) = telling(true);
    let run = w.engine.run_profile("hr", "full-sync", opts).unwrap();
    assert!(told.try_recv().is_ok());
    assert_eq!(run.status, RunStatus::StoppedUserRequested, "{run:#?}");
    assert_eq!(run.steps.len(), 1);
    assert_eq!(run.steps[0].status, RunStatus::StoppedUserRequested);
    assert!(
        run.steps[0]
            .message
            .as_deref()
            .unwrap()
            .contains("while waiting for another process's sync"),
        "{run:#?}"
    );
    let stored = w.store.read().unwrap().run_get(run.id).unwrap().unwrap();
    assert_eq!(stored, run);
    assert!(w.mv_all().is_empty());
    assert_eq!(
        sync_lease(&w),
        before,
        "the other process's lease is left alone"
    );
    drop(other);
}

#[test]
fn a_sync_lease_whose_run_has_ended_should_not_be_waited_for() {
    // A service that lives on after its release failed: its run ended.
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let _other = OtherProcess::hold(&w, RunStatus::Success);
    let (opts, told) = telling(false);
    let run = w.engine.run_profile("hr", "full-sync", opts).unwrap();
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    assert!(told.try_recv().is_err(), "it did not wait");
    assert_eq!(sync_lease(&w), None);
}

/// Cancels the run as soon as its step starts.
struct CancelAtStart(autosync_engine::CancelFlag);

impl ProgressSink for CancelAtStart {
    fn step_started(&self, _: usize, _: StepType, _: Option<u64>) {
        self.0.cancel();
    }
    fn advanced(&self, _: u64) {}
    fn step_finished(&self, _: usize, _: &StepRecord) {}
}

#[test]
fn a_sync_should_hold_the_lease_while_it_runs_and_release_it_however_it_ends() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    // Cancelled inside the step: released.
    let mut opts = RunOptions::manual("test");
    opts.progress = Some(Arc::new(CancelAtStart(opts.cancel.clone())));
    let run = w.engine.run_profile("hr", "full-sync", opts).unwrap();
    assert_eq!(run.status, RunStatus::StoppedUserRequested, "{run:#?}");
    assert_eq!(sync_lease(&w), None);

    /// Reads the lease while the step runs.
    struct Peek(
        Arc<autosync_store::sqlite::SqliteStore>,
        Mutex<Option<String>>,
    );
    impl ProgressSink for Peek {
        fn step_started(&self, _: usize, _: StepType, _: Option<u64>) {
            *self.1.lock().unwrap() = self.0.read().unwrap().meta(SYNC_LEASE_KEY).unwrap();
        }
        fn advanced(&self, _: u64) {}
        fn step_finished(&self, _: usize, _: &StepRecord) {}
    }
    let peek = Arc::new(Peek(w.store.clone(), Mutex::new(None)));
    let mut opts = RunOptions::manual("test");
    opts.progress = Some(peek.clone());
    let run = w.engine.run_profile("hr", "full-sync", opts).unwrap();
    assert_eq!(run.status, RunStatus::Success);
    let held: SyncHolder =
        serde_json::from_str(peek.1.lock().unwrap().as_deref().unwrap()).unwrap();
    assert_eq!(held.ma, "hr");
    assert_eq!(held.owner.holder.pid, std::process::id());
    assert_eq!(held.owner.run_id, run.id);
    assert_eq!(sync_lease(&w), None);
    // An import takes no sync lease.
    let (opts, _told) = telling(false);
    let mut opts = opts;
    opts.progress = Some(peek.clone());
    *peek.1.lock().unwrap() = None;
    w.engine.run_profile("hr", "full-import", opts).unwrap();
    assert_eq!(*peek.1.lock().unwrap(), None);
}

/// Holds a run inside its first step until told to go on.
struct HoldAtStart {
    started: Mutex<mpsc::Sender<()>>,
    go: Mutex<mpsc::Receiver<()>>,
}

impl ProgressSink for HoldAtStart {
    fn step_started(&self, _: usize, _: StepType, _: Option<u64>) {
        self.started.lock().unwrap().send(()).unwrap();
        self.go.lock().unwrap().recv().unwrap();
    }
    fn advanced(&self, _: u64) {}
    fn step_finished(&self, _: usize, _: &StepRecord) {}
}

#[test]
fn a_second_node_should_neither_run_an_ma_nor_sync_while_the_first_node_holds_them() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let second = w.second_node();
    assert_ne!(
        second.leases().instance().id(),
        w.engine.leases().instance().id()
    );
    // The first node: a sync of `hr`, held inside its step.
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let mut opts = RunOptions::manual("node 1");
    opts.progress = Some(Arc::new(HoldAtStart {
        started: Mutex::new(started_tx),
        go: Mutex::new(go_rx),
    }));
    let engine = w.engine.clone();
    let first = std::thread::spawn(move || engine.run_profile("hr", "full-sync", opts).unwrap());
    started.recv_timeout(EVENT_TIMEOUT).unwrap();
    let first_run = w
        .store
        .read()
        .unwrap()
        .runs(Some("hr"), 1)
        .unwrap()
        .remove(0);

    // The second node: `hr` runs on the first; its run there is left alone.
    let run = second
        .run_profile("hr", "full-import", RunOptions::manual("node 2"))
        .unwrap();
    assert_eq!(run.status, RunStatus::NoStartMaAlreadyRunning, "{run:#?}");
    assert!(second.close_unfinished_runs().unwrap().is_empty());
    // Its sync of `dir` waits for the first node's sync.
    let (opts, told) = telling(false);
    let node = second.clone();
    let syncing = std::thread::spawn(move || node.run_profile("dir", "full-sync", opts).unwrap());
    let said = told.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert_eq!(
        said,
        format!(
            "step 1: full-sync: waiting for the sync of `hr` in process {} (run {})",
            std::process::id(),
            first_run.id
        )
    );
    go.send(()).unwrap();
    let first = first.join().unwrap();
    assert_eq!(first.status, RunStatus::Success, "{first:#?}");
    let run = syncing.join().unwrap();
    assert!(
        run.steps[0].started_at >= first.ended_at.unwrap(),
        "{run:#?}"
    );
    assert_eq!(sync_lease(&w), None);
    assert!(told.try_recv().is_err(), "said once");
}
