//! Failures an operator can see and act on, tried as a new user would:
//! `run --once` exits non-zero when a run failed (cron and systemd
//! notice), a stopped run is logged at WARN with why, and the commands
//! that talk to the running service and its store (`status`, the
//! controls, `history`) keep working while `autosync.toml` is half-edited.

use super::controls::{NO_SERVICE, Service, history, refused, status};
use super::support::*;
use serde_json::Value;

/// A half-edited configuration: an `[[ma]]` being added, its string not
/// closed. Returns the line of the error.
fn break_config(w: &Workdir) -> usize {
    let text = std::fs::read_to_string(w.config()).unwrap();
    let line = text.lines().count() + 3;
    std::fs::write(
        w.config(),
        format!("{text}\n[[ma]]\nname = \"half-written\nconnector = {{ type = \n"),
    )
    .unwrap();
    line
}

/// Runs `autosync args...`, expecting exit code `code`; returns (stdout,
/// stderr).
fn outputs(w: &Workdir, args: &[&str], code: i32) -> (String, String) {
    let out = w.run(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "autosync {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// The warning of a command that goes on without the configuration: once,
/// naming the file and the line.
fn assert_warned_once(stderr: &str, line: usize) {
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("the configuration does not load"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&format!("autosync.toml:{line}:")),
        "{stderr}"
    );
    assert!(warnings[0].contains("autosync check"), "{stderr}");
}

/// What needs the whole configuration fails with its error (exit 2),
/// naming the file and line, and does not claim to go on.
fn assert_config_error(w: &Workdir, args: &[&str], line: usize) {
    let stderr = refused(w, args, 2);
    assert!(
        stderr.contains(&format!("autosync.toml:{line}:")) || stderr.contains(&format!(":{line}:")),
        "{args:?}: {stderr}"
    );
    assert!(stderr.contains("invalid TOML"), "{args:?}: {stderr}");
    assert!(
        !stderr.contains("going on with the store"),
        "{args:?}: {stderr}"
    );
}

#[test]
fn status_controls_and_history_should_reach_a_running_service_while_the_configuration_does_not_load()
 {
    let w = Workdir::quickstart();
    let service = Service::start(&w);
    let line = break_config(&w);

    let (out, stderr) = outputs(&w, &["status", "--json"], 0);
    assert_warned_once(&stderr, line);
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["service"], true, "{answer}");
    let (_, stderr) = outputs(&w, &["history", "--limit", "3"], 0);
    assert_warned_once(&stderr, line);
    assert!(!history(&w).is_empty());

    for args in [
        &["stop", "hr"][..],
        &["start", "hr"],
        &["pause", "app"],
        &["resume", "app"],
        &["maintenance", "on"],
        &["maintenance", "off"],
        &["clear-queue", "directory"],
    ] {
        let mut all = args.to_vec();
        all.push("--json");
        let (out, stderr) = outputs(&w, &all, 0);
        assert_warned_once(&stderr, line);
        let answer: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(answer["ok"], true, "{args:?}: {answer}");
    }
    assert_eq!(status(&w)["mas"]["hr"]["state"], "idle");
    let (out, stderr) = outputs(&w, &["queue", "app", "full-import"], 0);
    assert_warned_once(&stderr, line);
    assert!(out.contains("queued"), "{out}");
    // Refusals come from the service, which was reached: nothing to cancel,
    // approve or reject.
    for args in [&["cancel", "hr"][..], &["approve", "hr"], &["reject", "hr"]] {
        let stderr = refused(&w, args, 2);
        assert_warned_once(&stderr, line);
        let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
        assert!(error.contains("`hr`"), "{args:?}: {stderr}");
    }
    // What needs the whole configuration still fails with its errors.
    assert_config_error(&w, &["run-profile", "hr", "full-import"], line);
    assert_config_error(&w, &["check"], line);
    assert_config_error(&w, &["discover"], line);
    assert_eq!(service.terminate(), Some(0));
}

#[test]
fn status_and_history_should_read_the_store_while_the_configuration_does_not_load() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    let line = break_config(&w);

    let (out, stderr) = outputs(&w, &["status", "--json"], 0);
    assert_warned_once(&stderr, line);
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["service"], false, "{answer}");
    let mas: Vec<&String> = answer["mas"].as_object().unwrap().keys().collect();
    assert_eq!(mas, ["app", "directory", "hr"], "{answer}");
    assert_eq!(answer["mas"]["hr"]["state"], "idle", "{answer}");
    assert!(answer["mas"]["hr"]["last_run"]["id"].is_i64(), "{answer}");
    let (text, _) = outputs(&w, &["status"], 0);
    assert!(text.contains("the configuration does not load"), "{text}");

    let (out, stderr) = outputs(&w, &["history", "--ma", "hr", "--json"], 0);
    assert_warned_once(&stderr, line);
    let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        !runs.is_empty() && runs.iter().all(|r| r["ma"] == "hr"),
        "{out}"
    );
    let id = runs[0]["id"].to_string();
    outputs(&w, &["history", &id], 0);

    // The controls that need a service say that none runs (exit 5), not
    // that the file is broken.
    for args in [&["cancel", "hr"][..], &["pause", "hr"]] {
        let stderr = refused(&w, args, NO_SERVICE);
        assert_warned_once(&stderr, line);
        assert!(
            stderr.contains("no autosync service is running"),
            "{args:?}: {stderr}"
        );
    }
    // Without a service, queue, start, stop, maintenance, approve and
    // reject act on the store and need the configuration; so do run and
    // run-profile.
    assert_config_error(&w, &["queue", "hr", "full-import"], line);
    assert_config_error(&w, &["stop", "hr"], line);
    assert_config_error(&w, &["maintenance", "on"], line);
    assert_config_error(&w, &["approve", "hr"], line);
    assert_config_error(&w, &["reject", "hr"], line);
    assert_config_error(&w, &["run", "--once"], line);
    assert_config_error(&w, &["run-profile", "hr", "full-import"], line);
}

#[test]
fn a_broken_store_table_or_a_missing_store_should_stay_a_configuration_error() {
    // The store's own table is what is half-edited: where the store is
    // cannot be told, so nothing goes on.
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    w.edit("autosync.toml", |t| {
        t.replace("path = \"state/autosync.db\"", "path = \"state/autosync.db")
    });
    for args in [&["status"][..], &["history"], &["stop", "hr"]] {
        let stderr = refused(&w, args, 2);
        assert!(stderr.contains("invalid TOML"), "{args:?}: {stderr}");
    }
    // A broken file whose store does not exist yet: no store is created
    // from a guess.
    let w = Workdir::quickstart();
    break_config(&w);
    let stderr = refused(&w, &["status"], 2);
    assert!(stderr.contains("invalid TOML"), "{stderr}");
    assert!(!w.path().join("state/autosync.db").exists());
}

/// The quickstart with retries that give up at once (the test needs no
/// backoff).
fn quick_retries(w: &Workdir) {
    w.edit("autosync.toml", |t| {
        t.replace(
            "[controller]\n",
            "[controller]\nretry = { max_attempts = 1, backoff = \"50ms\", max_backoff = \"50ms\" }\n",
        )
    });
}

#[test]
fn run_once_should_exit_3_and_warn_with_the_reason_when_a_source_stays_unreachable() {
    let w = Workdir::quickstart();
    quick_retries(&w);
    w.expect(&["run", "--once"], 0);
    // The HR export is gone: each import stops `stopped-server-down`, is
    // retried, and the MA ends failed; `--once` does not wait for the
    // failed MA's next retry.
    std::fs::remove_file(w.path().join("data/hr.csv")).unwrap();
    w.expect(&["queue", "hr", "full-import"], 0);
    let (_, stderr) = outputs(&w, &["run", "--once"], 3);
    let stopped: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("run stopped: stopped-server-down at step 1 full-import: "))
        .collect();
    assert_eq!(stopped.len(), 2, "the run and its one retry: {stderr}");
    for l in &stopped {
        assert!(l.contains("WARN"), "{l}");
        assert!(l.contains("hr.csv"), "the reason names the file: {l}");
    }
    assert!(
        stderr.contains("exiting with code 3: hr full-import stopped-server-down"),
        "{stderr}"
    );
    let status = w.expect(&["status", "--json"], 0);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["mas"]["hr"]["state"], "failed", "{status}");
    // The long state keeps the table in line: each row's last run starts
    // under `LAST RUN`.
    let text = w.expect(&["status"], 0);
    let header = text.lines().find(|l| l.starts_with("MA ")).unwrap();
    let column = header.find("LAST RUN").unwrap();
    for ma in ["app ", "directory ", "hr "] {
        let row = text.lines().find(|l| l.starts_with(ma)).unwrap();
        assert!(row.len() > column, "{text}");
        assert_eq!(&row[column - 2..column], "  ", "{text}");
        assert_ne!(&row[column..=column], " ", "{text}");
    }

    // The next `--once` tries the failed MA again (once): still exit 3.
    outputs(&w, &["run", "--once"], 3);
    // Fixed, the next run ends well and exits 0.
    copy_dir(&quickstart_dir().join("data"), &w.path().join("data"));
    std::fs::remove_file(w.path().join("data/groups.csv")).unwrap();
    w.expect(&["run", "--once"], 0);
    let status = w.expect(&["status", "--json"], 0);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["mas"]["hr"]["state"], "idle", "{status}");
}

#[test]
fn run_once_should_exit_3_when_a_source_is_misconfigured() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    // The HR export is replaced by a folder: `stopped-configuration`, not
    // retried.
    std::fs::remove_file(w.path().join("data/hr.csv")).unwrap();
    std::fs::create_dir(w.path().join("data/hr.csv")).unwrap();
    let (_, stderr) = outputs(&w, &["run", "--once"], 3);
    assert!(
        stderr.lines().any(|l| l.contains("WARN")
            && l.contains("run stopped: stopped-configuration at step 1 ")
            && l.contains("is a folder")),
        "{stderr}"
    );
}

#[test]
fn run_once_should_exit_1_when_objects_are_left_in_error() {
    let w = Workdir::quickstart();
    quick_retries(&w);
    // One person's title cannot be made a number: a per-object sync error.
    w.edit("autosync.toml", |t| {
        t.replace(
            "{ mv_type = \"person\", mv = \"title\", from = \"title\" }",
            "{ mv_type = \"person\", mv = \"title\", expr = \"employee_id == 'E10001' ? to_int(title) : title\" }",
        )
    });
    let (_, stderr) = outputs(&w, &["run", "--once"], 1);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("per-object error")),
        "{stderr}"
    );
    assert!(stderr.contains("exiting with code 1: hr "), "{stderr}");
}
