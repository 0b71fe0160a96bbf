//! One sync at a time across processes, through the real binary: a
//! `run-profile ... full-sync` started while another process's sync runs on
//! the same store waits for it (and says so on stderr), then runs; a sync
//! lease left by a SIGKILLed process is taken over.
//!
//! The first process is held inside its sync step by the crash harness
//! (`AUTOSYNC_CRASH_SIGNAL=STOP` freezes it at the first
//! `sync.batch.committed` point, found by a traced reference run) and
//! resumed with SIGCONT: no timing is assumed.

use super::support::*;
use autosync_store::Store as _;
use autosync_store::sqlite::SqliteStore;
use serde_json::Value;
use std::io::BufRead as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous bound for waiting on an event (not a timing assertion).
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `autosync run-profile MA PROFILE` with `env`, stderr piped.
fn spawn(w: &Workdir, ma: &str, profile: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c")
        .arg(w.config())
        .args(["run-profile", ma, profile])
        .env_remove("AUTOSYNC_CONFIG")
        .env_remove("AUTOSYNC_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The number of the first `sync.batch.committed` crash point of
/// `hr full-sync`: a traced run of it (a full sync passes the same points
/// each time).
fn first_sync_commit_point(w: &Workdir) -> u64 {
    let trace = w.path().join("trace.txt");
    let out = w.run_env(
        &["run-profile", "hr", "full-sync", "--no-progress"],
        &[("AUTOSYNC_CRASH_TRACE", trace.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&trace).unwrap();
    std::fs::remove_file(&trace).unwrap();
    text.lines()
        .find_map(|l| {
            let (n, name) = l.split_once(' ')?;
            (name == "sync.batch.committed").then(|| n.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no sync.batch.committed point in\n{text}"))
}

/// Waits until `done` holds (an event another process causes).
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < EVENT_TIMEOUT,
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is stopped (SIGSTOP): state `T` in its stat.
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The latest run of `ma` with `profile`, from `history --json`.
fn last_run(w: &Workdir, ma: &str, profile: &str) -> Value {
    let text = w.expect(&["history", "--ma", ma, "--json"], 0);
    let runs: Vec<Value> = serde_json::from_str(&text).unwrap();
    runs.into_iter()
        .find(|r| r["profile"] == profile)
        .unwrap_or_else(|| panic!("no {ma} {profile} run in {text}"))
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The sync lease in the store (meta `sync-lease`), if any.
fn sync_lease(w: &Workdir) -> Option<Value> {
    let store = SqliteStore::open(&w.path().join("state/autosync.db")).unwrap();
    let text = store.read().unwrap().meta("sync-lease").unwrap()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// Kills the child when dropped (a frozen process must not outlive a failed
/// test).
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_sync_from_the_shell_should_wait_for_another_processs_sync_and_run_after_it() {
    let w = Workdir::quickstart();
    w.cycle();
    let point = first_sync_commit_point(&w);

    // The first process: frozen inside its sync step, holding the sync.
    let trace = w.path().join("frozen.txt");
    let first = spawn(
        &w,
        "hr",
        "full-sync",
        &[
            ("AUTOSYNC_CRASH_AFTER", point.to_string()),
            ("AUTOSYNC_CRASH_SIGNAL", "STOP".into()),
            ("AUTOSYNC_CRASH_TRACE", trace.to_str().unwrap().into()),
        ],
    );
    let first_pid = first.id();
    let mut first = KillOnDrop(Some(first));
    wait_for("the first sync to freeze inside its step", || {
        is_stopped(first_pid)
    });
    let frozen_at = std::fs::read_to_string(&trace).unwrap();
    assert!(
        frozen_at.ends_with(&format!("{point} sync.batch.committed\n")),
        "{frozen_at}"
    );
    let first_run = last_run(&w, "hr", "full-sync");
    assert_eq!(first_run["status"], "in-progress");

    // The second process: a sync of another MA on the same store.
    let mut second = spawn(&w, "app", "full-sync", &[]);
    let stderr = second.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            all.push_str(&line);
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    let waiting = format!(
        "step 1: full-sync: waiting for the sync of `hr` in process {first_pid} (run {})",
        first_run["id"]
    );
    let start = Instant::now();
    loop {
        let left = EVENT_TIMEOUT.saturating_sub(start.elapsed());
        match lines.recv_timeout(left) {
            Ok(line) if line == waiting => break,
            Ok(_) => {}
            Err(_) => panic!("the second sync never said `{waiting}`"),
        }
    }
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second process ended while the first sync was frozen"
    );

    signal(first_pid, "CONT");
    let first_out = first.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(first_out.status.code(), Some(0), "{first_out:?}");
    let second_status = second.wait().unwrap();
    let second_stderr = reader.join().unwrap();
    assert_eq!(second_status.code(), Some(0), "{second_stderr}");
    assert_eq!(
        second_stderr.matches("waiting for").count(),
        1,
        "said once: {second_stderr}"
    );

    // The run records: the second sync started after the first ended,
    // although the second run began while the first synced.
    let first_run = last_run(&w, "hr", "full-sync");
    let second_run = last_run(&w, "app", "full-sync");
    assert_eq!(first_run["status"], "success", "{first_run}");
    assert_eq!(second_run["status"], "success", "{second_run}");
    let first_sync_ended = time(&first_run["steps"][0]["ended_at"]);
    assert!(
        time(&second_run["steps"][0]["started_at"]) >= first_sync_ended,
        "the syncs overlapped:\n{first_run}\n{second_run}"
    );
    assert!(
        time(&second_run["started_at"]) < first_sync_ended,
        "the second run began while the first synced:\n{first_run}\n{second_run}"
    );
    assert!(sync_lease(&w).is_none(), "both released the sync lease");
}

#[test]
fn a_sync_lease_left_by_a_sigkilled_process_should_be_taken_over() {
    let w = Workdir::quickstart();
    w.cycle();
    let point = first_sync_commit_point(&w);
    let killed = spawn(
        &w,
        "hr",
        "full-sync",
        &[("AUTOSYNC_CRASH_AFTER", point.to_string())],
    );
    let killed_pid = killed.id();
    let out = killed.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    let left = sync_lease(&w).expect("the killed process's sync lease is still in the store");
    assert_eq!(left["ma"], "hr", "{left}");
    assert_eq!(left["pid"], killed_pid, "{left}");

    let out = w.run(&["run-profile", "app", "full-sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("waiting"), "{stderr}");
    assert!(sync_lease(&w).is_none());
    // The killed run is closed, and the MA syncs again.
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
}
