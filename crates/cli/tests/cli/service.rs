//! `autosync run`: the service converges the quickstart by itself (`--once`
//! and in the foreground), records why each run ran, runs nothing while
//! nothing changes, and stops cleanly on SIGTERM keeping its queue.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use super::support::*;
use autosync_testkit::ServiceProcess;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound for waiting on an event (not a timing assertion).
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn history(w: &Workdir) -> Vec<Value> {
    let text = w.expect(&["history", "--limit", "1000", "--json"], 0);
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The directory's objects sorted by id (line order is not part of the
/// contract).
fn directory_sorted(dir: &Path) -> Vec<Value> {
    let mut objects = directory(dir);
    objects.sort_by_key(|o| o["id"].as_str().unwrap_or_default().to_owned());
    objects
}

/// (employee_id, title) of the app table, or None while it cannot be read.
fn app_titles(dir: &Path) -> Option<Vec<(String, String)>> {
    let conn = rusqlite::Connection::open(dir.join("data/app.db")).ok()?;
    let mut stmt = conn
        .prepare("SELECT employee_id, title FROM users ORDER BY employee_id")
        .ok()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(rows)
}

/// Directory (id, title), or None while the file cannot be read whole.
fn directory_titles(dir: &Path) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(dir.join("data/directory.jsonl")).ok()?;
    let mut rows = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).ok()?;
        rows.push((
            v["id"].as_str()?.to_owned(),
            v["title"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    rows.sort();
    Some(rows)
}

/// Waits until `done` holds, checking when the target files change.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < EVENT_TIMEOUT,
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The service on the folder (the kit's), stopped when dropped.
struct Service(ServiceProcess);

impl Service {
    fn start(w: &Workdir) -> Service {
        Service::start_with(w, &[])
    }

    /// `autosync run ARGS`.
    fn start_with(w: &Workdir, args: &[&str]) -> Service {
        Service(ServiceProcess::start(Path::new(BIN), &w.config(), args).unwrap())
    }

    /// SIGTERM, then the exit code and the log.
    fn terminate(self) -> (Option<i32>, String) {
        self.0.terminate().unwrap()
    }
}

fn set_title(w: &Workdir, id: &str, title: &str) {
    w.edit("data/hr.csv", |text| {
        text.lines()
            .map(|l| {
                let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
                if f[0] == id {
                    f[5] = title.into();
                }
                f.join(",")
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
}

fn controller_state(dir: &Path) -> Option<String> {
    let conn = rusqlite::Connection::open(dir.join("state/autosync.db")).ok()?;
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'controller.state'",
        [],
        |r| r.get(0),
    )
    .ok()
}

/// The persisted controller state shows nothing queued and nothing running
/// (it is written after every change, so this is quiescence).
fn controller_idle(dir: &Path) -> bool {
    let Some(text) = controller_state(dir) else {
        return false;
    };
    let state: Value = serde_json::from_str(&text).unwrap();
    let running = state["running"].as_array().is_none_or(Vec::is_empty);
    let queued = state["queues"]["queues"]
        .as_object()
        .map(|q| {
            q.values()
                .any(|q| q["items"].as_array().is_some_and(|i| !i.is_empty()))
        })
        .unwrap_or(false);
    running && !queued
}

#[test]
fn run_once_on_a_fresh_quickstart_should_give_the_same_targets_as_the_manual_cycle() {
    let manual = Workdir::quickstart();
    manual.cycle();
    let service = Workdir::quickstart();
    service.expect(&["run", "--once"], 0);
    assert_eq!(app_users(service.path()), app_users(manual.path()));
    assert_eq!(
        directory_sorted(service.path()),
        directory_sorted(manual.path())
    );
    assert!(!app_users(service.path()).is_empty());
}

#[test]
fn run_once_should_record_that_each_export_followed_the_sync_that_caused_it() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    let runs = history(&w);
    let sync = runs
        .iter()
        .find(|r| r["ma"] == "hr" && r["profile"] == "delta-sync")
        .expect("a delta sync of hr ran");
    assert_eq!(sync["reason"]["kind"], "follow-up");
    let import_id = sync["reason"]["run_id"].as_i64().unwrap();
    let import = runs
        .iter()
        .find(|r| r["id"].as_i64() == Some(import_id))
        .unwrap();
    assert_eq!(import["ma"], "hr");
    assert_eq!(import["reason"]["kind"], "trigger");
    for target in ["app", "directory"] {
        let export = runs
            .iter()
            .find(|r| r["ma"] == target && r["profile"] == "export")
            .unwrap_or_else(|| panic!("an export of {target} ran"));
        assert_eq!(export["reason"]["kind"], "follow-up");
        assert_eq!(
            export["reason"]["run_id"], sync["id"],
            "{target} export: {export}"
        );
        let because = export["reason"]["because"].as_str().unwrap();
        assert!(because.contains("provisioned add"), "{because}");
    }
}

#[test]
fn run_once_again_with_nothing_changed_should_run_nothing() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    let before = history(&w).len();
    w.expect(&["run", "--once"], 0);
    assert_eq!(history(&w).len(), before);
}

#[test]
fn running_service_should_propagate_an_hr_edit_to_both_targets_and_stop_cleanly_on_sigterm() {
    let w = Workdir::quickstart();
    let active = hr_with_status(w.path(), "active");
    let service = Service::start(&w);
    let converged = |w: &Workdir| {
        let ids = |rows: Option<Vec<(String, String)>>| {
            rows.map(|r| r.into_iter().map(|(id, _)| id).collect::<Vec<_>>())
        };
        ids(app_titles(w.path())).as_ref() == Some(&active)
            && ids(directory_titles(w.path())).as_ref() == Some(&active)
    };
    wait_for("the first convergence", || converged(&w));
    wait_for("the cycle to end", || controller_idle(w.path()));

    // Nothing changes: nothing runs (a bounded wait, then the history).
    let settled = history(&w).len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(history(&w).len(), settled, "runs while nothing changed");

    let who = active[0].clone();
    set_title(&w, &who, "Head of Automation");
    let has_title = |rows: Option<Vec<(String, String)>>| {
        rows.is_some_and(|r| {
            r.iter()
                .any(|(id, t)| *id == who && t == "Head of Automation")
        })
    };
    wait_for("the edit in the app table", || {
        has_title(app_titles(w.path()))
    });
    wait_for("the edit in the directory", || {
        has_title(directory_titles(w.path()))
    });

    let (code, log) = service.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    let state: Value =
        serde_json::from_str(&controller_state(w.path()).expect("state persisted")).unwrap();
    assert!(state.get("queues").is_some(), "{state}");
    assert!(history(&w).iter().all(|r| r["status"] != "in-progress"));
}

#[test]
fn check_should_locate_a_bad_controller_key_by_line() {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |t| {
        t.replace("start_stagger = \"0s\"", "start_stagger = \"soon\"")
    });
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("start_stagger"), "{err}");
    assert!(err.contains("invalid duration"), "{err}");
    let line = std::fs::read_to_string(w.config())
        .unwrap()
        .lines()
        .position(|l| l.contains("soon"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(":{line}:")),
        "line {line} not in: {err}"
    );
}

#[test]
fn queue_without_a_service_should_wait_in_the_store_and_run_at_the_next_start() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    let out = w.expect(&["queue", "app", "full-import"], 0);
    assert!(out.contains("no service running"), "{out}");
    let status: Value = serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
    assert_eq!(status["service"], false);
    assert_eq!(status["mas"]["app"]["state"], "queued");
    assert_eq!(status["mas"]["app"]["queue"][0]["profile"], "full-import");
    w.expect(&["run", "--once"], 0);
    let runs = history(&w);
    let manual = runs
        .iter()
        .find(|r| r["ma"] == "app" && r["profile"] == "full-import")
        .expect("the queued run ran at the next start");
    assert_eq!(manual["reason"]["kind"], "manual");
    let status: Value = serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
    assert_eq!(status["mas"]["app"]["state"], "idle");
}

#[test]
fn status_and_queue_should_go_through_the_running_services_api() {
    let w = Workdir::quickstart();
    let service = Service::start(&w);
    let api_file = w.path().join("state/api.json");
    wait_for("the service's API file", || api_file.exists());
    wait_for("the first cycle to end", || controller_idle(w.path()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&api_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let status: Value = serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
    assert_eq!(status["service"], true);
    assert_eq!(status["mas"]["hr"]["state"], "idle");
    let answer: Value =
        serde_json::from_str(&w.expect(&["queue", "hr", "full-import", "--json"], 0)).unwrap();
    assert!(answer["request"].as_u64().is_some(), "{answer}");
    wait_for("the queued full import to run", || {
        history(&w).iter().any(|r| {
            r["ma"] == "hr" && r["profile"] == "full-import" && r["reason"]["kind"] == "manual"
        })
    });
    let bad = w.run(&["queue", "hr", "no-such-profile"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no-such-profile"));
    let (code, log) = service.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(!api_file.exists(), "the API file outlived the service");
}

#[test]
fn sigterm_should_keep_what_is_queued_for_the_next_start() {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |t| {
        t.replacen(
            "deprovisioning = \"delete\"",
            "deprovisioning = \"delete\"\ncontroller = { auto_start = false }",
            1,
        )
    });
    let service = Service::start(&w);
    let api_file = w.path().join("state/api.json");
    wait_for("the service's API file", || api_file.exists());
    let out = w.expect(&["queue", "app", "full-import"], 0);
    assert!(!out.contains("no service running"), "{out}");
    let (code, log) = service.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    let status: Value = serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
    assert_eq!(status["service"], false);
    assert_eq!(status["mas"]["app"]["state"], "stopped");
    let queued: Vec<&str> = status["mas"]["app"]["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["profile"].as_str().unwrap())
        .collect();
    assert!(queued.contains(&"full-import"), "{status}");
}

#[test]
fn a_run_started_outside_the_service_should_be_followed_up_as_its_own() {
    // No trigger on the source: only the operator's CLI run imports it.
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |t| {
        t.replace(
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]"#,
            "triggers = []",
        )
    });
    // A fresh folder: converge once with the service itself.
    w.expect(&["run-profile", "hr", "full-import"], 0);
    let service = Service::start(&w);
    let active = hr_with_status(w.path(), "active");
    wait_for("the first convergence", || {
        app_titles(w.path()).is_some_and(|r| r.len() == active.len())
            && directory_titles(w.path()).is_some_and(|r| r.len() == active.len())
    });
    wait_for("the cycle to end", || controller_idle(w.path()));

    // The operator imports by hand while the service runs: the service
    // sees that run end and runs its delta sync and the exports.
    let who = active[1].clone();
    set_title(&w, &who, "Chief Unmanaged Officer");
    let out = w.expect(&["run-profile", "hr", "delta-import"], 0);
    assert!(
        out.contains("stage-update") || out.contains("update"),
        "{out}"
    );
    let has_title = |rows: Option<Vec<(String, String)>>| {
        rows.is_some_and(|r| {
            r.iter()
                .any(|(id, t)| *id == who && t == "Chief Unmanaged Officer")
        })
    };
    wait_for("the edit in the app table", || {
        has_title(app_titles(w.path()))
    });
    wait_for("the edit in the directory", || {
        has_title(directory_titles(w.path()))
    });
    // The sync that followed names the unmanaged run as its cause.
    let runs = history(&w);
    let import = runs
        .iter()
        .find(|r| r["profile"] == "delta-import" && r["reason"]["kind"] == "manual")
        .expect("the CLI's import in the history");
    let sync = runs.iter().find(|r| {
        r["profile"] == "delta-sync"
            && r["reason"]["kind"] == "follow-up"
            && r["reason"]["run_id"] == import["id"]
    });
    assert!(
        sync.is_some(),
        "no delta sync followed run {}: {runs:#?}",
        import["id"]
    );
    let (code, log) = service.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(log.contains("started outside the controller"), "{log}");
}

#[test]
fn after_a_sigkill_the_service_should_resume_without_losing_or_repeating_a_run() {
    let w = Workdir::quickstart();
    let active = hr_with_status(w.path(), "active");
    let service = Service::start(&w);
    // Kill it in the middle of its first cycle: once some runs ended and
    // others are queued or running.
    wait_for("the cycle to be under way", || {
        history(&w)
            .iter()
            .filter(|r| r["status"] != "in-progress")
            .count()
            >= 2
    });
    service.0.kill().unwrap();

    // The restarted service (to quiescence) converges.
    w.expect(&["run", "--once"], 0);
    let ids = |rows: Option<Vec<(String, String)>>| {
        rows.map(|r| r.into_iter().map(|(id, _)| id).collect::<Vec<_>>())
    };
    assert_eq!(ids(app_titles(w.path())).as_ref(), Some(&active));
    assert_eq!(ids(directory_titles(w.path())).as_ref(), Some(&active));
    // No request ran to completion twice: a (MA, profile, reason) has at
    // most one run that was not cut short by the kill.
    let runs = history(&w);
    let mut seen = std::collections::BTreeMap::new();
    for r in &runs {
        if r["status"] == "stopped-server" || r["status"] == "in-progress" {
            continue;
        }
        let key = (
            r["ma"].to_string(),
            r["profile"].to_string(),
            r["reason"].to_string(),
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "ran twice: {repeated:?}\n{runs:#?}");
}

/// SIGTERM stops the service gracefully; while it waits for what runs to
/// end (here hr's before hook, which runs to its timeout), its API still
/// answers (a black-box review: it stopped at once, though the
/// documentation said it answers 503 then): the status, as the service
/// sees it, and `service-stopping` (503, exit 4) to what would start work.
/// It closes, its file gone, once the service has stopped.
#[test]
fn during_a_graceful_stop_the_api_should_answer_the_status_and_refuse_new_work() {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |t| {
        t.replacen(
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]"#,
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]
hooks = { before = "loop {}", timeout = "15s" }"#,
            1,
        )
    });
    let mut service = Service::start(&w);
    let api_file = w.path().join("state/api.json");
    service
        .0
        .wait_log("hr's first run", EVENT_TIMEOUT, |log| {
            log.lines()
                .any(|l| l.contains(" starting") && l.contains("ma=hr"))
        })
        .unwrap();
    assert!(api_file.exists());
    service.0.signal("TERM").unwrap();
    service
        .0
        .wait_log("the graceful stop", EVENT_TIMEOUT, |log| {
            log.contains("stop requested")
        })
        .unwrap();
    let status: Value = serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
    assert_eq!(status["service"], true, "{status}");
    assert_eq!(status["mas"]["hr"]["state"], "running", "{status}");
    let queued = w.run(&["queue", "app", "full-import"]);
    let err = String::from_utf8_lossy(&queued.stderr);
    assert_eq!(queued.status.code(), Some(4), "{err}");
    assert!(
        err.contains("503 service-stopping") && err.contains("the service is stopping"),
        "{err}"
    );
    let (code, log) = service.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(!api_file.exists(), "the API file outlived the service");
}

/// One service per store: a second `autosync run` is refused, and so is
/// `autosync queue` writing the store behind a service that runs without
/// its API (the service would overwrite the queue it saved). Once the
/// service stops, both work again.
#[test]
fn a_second_service_and_offline_queueing_should_be_refused_while_a_service_runs() {
    let w = Workdir::quickstart();
    let service = Service::start_with(&w, &["--no-api"]);
    wait_for("the first cycle to end", || controller_idle(w.path()));
    let second = w.run(&["run", "--once"]);
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another autosync service runs on the store"),
        "{err}"
    );
    let queued = w.run(&["queue", "hr", "full-import"]);
    assert_eq!(queued.status.code(), Some(2), "{queued:?}");
    let err = String::from_utf8_lossy(&queued.stderr);
    assert!(err.contains("its API is off"), "{err}");
    // Every command sees that service the same way (a review: `status`
    // said none ran while `queue` refused because one did): the status
    // is what it saved in the store, and says so; the controls and the
    // event stream, which need its API, say it is off (not "no service").
    let text = w.expect(&["status"], 0);
    assert!(
        text.contains("an autosync service runs on the store")
            && text.contains("its API is off")
            && text.contains("the state it last saved in the store"),
        "{text}"
    );
    // ...and never, in the same breath, that no service runs (an LDAP
    // review).
    assert!(
        !text.contains("no service running")
            && text.contains("from the store (as the running service last saved it)"),
        "{text}"
    );
    let json = w.run(&["status", "--json"]);
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let status: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["service"], false, "{status}");
    assert!(
        String::from_utf8_lossy(&json.stderr).contains("its API is off"),
        "{json:?}"
    );
    for args in [
        &["pause", "hr"][..],
        &["maintenance", "on"],
        &["approve", "hr"],
        &["events", "--count", "1"],
    ] {
        let out = w.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("an autosync service runs on the store") && err.contains("its API is off"),
            "{args:?}: {err}"
        );
    }
    let (code, log) = service.terminate();
    assert_eq!(code, Some(0), "log:\n{log}");
    let out = w.expect(&["queue", "hr", "full-import"], 0);
    assert!(out.contains("no service running"), "{out}");
    w.expect(&["run", "--once"], 0);
}

/// A cycle that never settles (the application's import flow appends to
/// the title the export sends it, and ranks first) is stopped by the
/// oscillation guard; `run --once` then exits 1, saying why, though its
/// last runs succeeded: what flows is not in step.
#[test]
fn run_once_should_exit_1_when_a_cycle_did_not_settle() {
    let w = Workdir::with_config(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "title"]
precedence = { title = ["app", "hr"] }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv = "employeeId", from = "id" }, { mv = "title", from = "title" }]

[[ma]]
name = "app"
connector = { type = "sqlite", path = "app.db", table = "users", create_table = true, columns = ["id", "title"] }
object_types = [{ name = "user", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
import_flows = [{ mv = "title", expr = "title + '!'" }]
export_flows = [{ cs = "title", from = "title" }]
provisioning = [{ anchor = "employeeId" }]

[controller]
start_stagger = "0s"
oscillation_limit = 6
"#,
    );
    std::fs::write(w.path().join("hr.csv"), "id,title\n1,Engineer\n").unwrap();
    let out = w.run(&["run", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("did not settle"), "{log}");
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("exiting with code 1") && log.contains("the cycle of"),
        "{log}"
    );
}
