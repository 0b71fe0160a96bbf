//! A run killed halfway (SIGKILL, the host lost) keeps in its history what
//! it committed: each step writes its counters into its run's record in the
//! transaction that commits what they count, and the next start closes the
//! run as `stopped-server` with them (MIM keeps a stopped run's counters).
//! Before, such a run showed "no changes" though its work was in the store.
//!
//! The kill comes from the crash harness (`AUTOSYNC_CRASH_AFTER=n`: the
//! process SIGKILLs itself at the n-th crash point), the point found by a
//! traced reference run of the same step: no timing is assumed. Until the
//! run is closed, `history` says its process ended, not that it runs.

use super::support::*;
use serde_json::Value;

/// The number of the `nth` (1-based) crash point named `name` passed by
/// `autosync run-profile MA PROFILE` in a copy of `w` taken now (the
/// reference run must not change `w`).
fn point_of(w: &Workdir, ma: &str, profile: &str, name: &str, nth: usize) -> u64 {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(w.path(), copy.path());
    let reference = Workdir { dir: copy };
    let trace = reference.path().join("trace.txt");
    let out = reference.run_env(
        &["run-profile", ma, profile, "--no-progress"],
        &[("AUTOSYNC_CRASH_TRACE", trace.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&trace).unwrap();
    text.lines()
        .filter_map(|l| {
            let (n, point) = l.split_once(' ')?;
            (point == name).then(|| n.parse::<u64>().unwrap())
        })
        .nth(nth - 1)
        .unwrap_or_else(|| panic!("no {name} point number {nth} in\n{text}"))
}

/// Runs `MA PROFILE` killed at crash point `point`, then lets the next
/// command close it; returns that run from `history --json`.
fn killed_run(w: &Workdir, ma: &str, profile: &str, point: u64) -> Value {
    let out = w.run_env(
        &["run-profile", ma, profile, "--no-progress"],
        &[("AUTOSYNC_CRASH_AFTER", &point.to_string())],
    );
    assert_eq!(out.status.code(), None, "the run should be killed: {out:?}");
    // Until then, the history says its process ended (not "running").
    let text = w.expect(&["history", "--ma", ma], 0);
    assert!(
        text.contains("process ended") && text.contains("left in progress by a process that ended"),
        "{text}"
    );
    assert!(!text.contains("running"), "{text}");
    let status = w.expect(&["status"], 0);
    assert!(
        status.contains(&format!("({ma}: its last run, {profile} "))
            && status.contains("left in progress by a process that ended"),
        "{status}"
    );
    let runs: Vec<Value> =
        serde_json::from_str(&w.expect(&["history", "--ma", ma, "--json"], 0)).unwrap();
    assert!(
        runs.iter()
            .any(|r| r["status"] == "in-progress" && r["process_ended"] == true),
        "{runs:?}"
    );
    let id = runs.iter().find(|r| r["status"] == "in-progress").unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let one = w.expect(&["history", &id], 0);
    assert!(
        one.contains("left in progress by a process that ended") && !one.contains("running"),
        "{one}"
    );
    // Any command that runs the engine closes the runs a crash left.
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    let text = w.expect(&["history", "--ma", ma, "--json"], 0);
    let runs: Vec<Value> = serde_json::from_str(&text).unwrap();
    runs.into_iter()
        .find(|r| r["profile"] == profile && r["status"] == "stopped-server")
        .unwrap_or_else(|| panic!("no stopped-server {ma} {profile} run in {text}"))
}

fn counter(run: &Value, name: &str) -> u64 {
    run["steps"][0]["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {run}"))
}

#[test]
fn an_import_killed_after_two_batches_should_show_what_those_batches_staged() {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |t| {
        t.replacen(
            r#"connector = { type = "csv", path = "data/hr.csv" }"#,
            r#"connector = { type = "csv", path = "data/hr.csv", batch_size = 2 }"#,
            1,
        )
    });
    let point = point_of(&w, "hr", "full-import", "import.batch.committed", 2);
    let run = killed_run(&w, "hr", "full-import", point);
    assert_eq!(counter(&run, "stage-add"), 4, "{run}");
    assert_eq!(run["steps"][0]["status"], "stopped-server", "{run}");
}

#[test]
fn a_sync_and_an_export_killed_after_their_commit_should_show_what_they_committed() {
    let w = Workdir::quickstart();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    let people = std::fs::read_to_string(w.path().join("data/hr.csv"))
        .unwrap()
        .lines()
        .count() as u64
        - 1;
    let point = point_of(&w, "hr", "full-sync", "sync.batch.committed", 1);
    let sync = killed_run(&w, "hr", "full-sync", point);
    assert_eq!(counter(&sync, "projections"), people, "{sync}");

    let point = point_of(&w, "app", "export", "export.record.committed", 1);
    let export = killed_run(&w, "app", "export", point);
    assert!(counter(&export, "adds") > 0, "{export}");
}

/// The quickstart's HR file with hire `E19001` (active) added, or not.
fn with_hire(w: &Workdir, hired: bool) {
    w.edit("data/hr.csv", |t| {
        let kept: String = t
            .lines()
            .filter(|l| !l.starts_with("E19001,"))
            .map(|l| format!("{l}\n"))
            .collect();
        if hired {
            format!("{kept}E19001,Nora,Quist,Nora.Quist@example.com,Operations,Planner,,active\n")
        } else {
            kept
        }
    });
}

#[test]
fn a_hire_whose_add_went_out_before_a_kill_should_lose_the_account_when_leaving() {
    let w = Workdir::quickstart();
    w.cycle();
    with_hire(&w, true);
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "delta-sync", "--no-progress"], 0);
    // Killed once the add is in the table, before the store records it.
    let point = point_of(&w, "app", "export", "export.batch.applied", 1);
    let out = w.run_env(
        &["run-profile", "app", "export", "--no-progress"],
        &[("AUTOSYNC_CRASH_AFTER", &point.to_string())],
    );
    assert_eq!(out.status.code(), None, "the run should be killed: {out:?}");
    let hired = |w: &Workdir| app_users(w.path()).iter().any(|(id, _, _)| id == "E19001");
    assert!(hired(&w), "the add went out before the kill");
    // The hire leaves HR before any export of `app` runs again.
    with_hire(&w, false);
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    // The killed export, closed by that command, says what it may have sent.
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&w.expect(&["history", "--ma", "app", "--json"], 0)).unwrap();
    let killed = runs
        .iter()
        .find(|r| r["status"] == "stopped-server")
        .expect("the killed export is closed");
    let message = killed["steps"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("may be in the system"), "{killed}");
    w.expect(&["run-profile", "hr", "delta-sync", "--no-progress"], 0);
    w.expect(&["run", "--once"], 0);
    assert!(!hired(&w), "{:?}", app_users(w.path()));
    let left = w.expect(&["cs", "app"], 0);
    assert!(left.contains("0 pending export"), "{left}");
    // Nothing is left in flight: the next leaver across no crash goes
    // as before (a pending add never sent leaves the connector space).
    with_hire(&w, true);
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "delta-sync", "--no-progress"], 0);
    with_hire(&w, false);
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    let sync = w.expect(&["run-profile", "hr", "delta-sync", "--no-progress"], 0);
    let exported = w.expect(&["run-profile", "app", "export", "--no-progress"], 0);
    assert!(!exported.contains("delete"), "{sync}\n{exported}");
    assert!(!hired(&w));
}
