//! A command whose stderr (and stdout) is a pipe its reader closed
//! (`autosync run 2>&1 | head -1`, `| grep -m1`, `| less` then q) goes on
//! to its normal end and exit code: the log and the messages it cannot
//! write are lost, nothing panics, nothing waits for ever, and no run is
//! left in progress. And who queued a request is recorded as who asked
//! (`autosync queue`: `cli`; the API: its `by`, else `api`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use super::controls::{Service, history, wait_for};
use super::support::*;
use serde_json::Value;
use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

/// Generous bound for a command to end (not a timing assertion: a
/// command that hangs never ends).
const END_WITHIN: Duration = Duration::from_secs(120);

/// Runs `autosync -c CONFIG args...` with stdout and stderr on one pipe
/// whose reader reads `read_first` bytes (0: none) and closes it; returns
/// the exit code, failing the test if the command has not ended within
/// [`END_WITHIN`] (it is then killed).
fn run_closed(w: &Workdir, args: &[&str], env: &[(&str, &str)], read_first: usize) -> i32 {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(w.config()).args(args);
    cmd.env_remove("AUTOSYNC_CONFIG").env_remove("AUTOSYNC_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    if read_first == 0 {
        drop(reader);
        let child = cmd.spawn().unwrap();
        drop(cmd);
        return wait_bounded(child, args);
    }
    let child = cmd.spawn().unwrap();
    // The parent's copies of the write end: the reader sees the end of
    // the output when the child's are closed.
    drop(cmd);
    let mut first = vec![0; read_first];
    let _ = reader.read_exact(&mut first);
    drop(reader);
    wait_bounded(child, args)
}

/// The exit code of `child`, waited for at most [`END_WITHIN`].
fn wait_bounded(mut child: std::process::Child, args: &[&str]) -> i32 {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(END_WITHIN) {
        Ok(status) => {
            let status = status.unwrap();
            status
                .code()
                .unwrap_or_else(|| panic!("autosync {args:?} ended by a signal: {status}"))
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "autosync {args:?} with its output closed has not ended within {}s (killed)",
                END_WITHIN.as_secs()
            );
        }
    }
}

/// The statuses of the store's runs, asserting none is in progress or
/// stopped (`stopped-server`: closed as left by a process that ended).
fn statuses(w: &Workdir) -> Vec<String> {
    let runs = history(w);
    let statuses: Vec<String> = runs
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !statuses
            .iter()
            .any(|s| s == "in-progress" || s.starts_with("stopped")),
        "runs left in progress or stopped: {runs:#?}"
    );
    statuses
}

#[test]
fn run_once_should_end_normally_when_its_output_is_closed() {
    let w = Workdir::quickstart_with_groups();
    // Closed from the start: the first log line (the new store's warning)
    // is written by the main thread.
    assert_eq!(run_closed(&w, &["run", "--once"], &[], 0), 0);
    let first = statuses(&w);
    assert!(!first.is_empty(), "nothing ran");
    // The first lines written by the runs' threads (the engine's log
    // alone): a panic there left the service waiting for ever.
    w.edit("data/hr.csv", |t| {
        t.replacen("Facilities Coordinator", "Facilities Lead", 1)
    });
    let env = [("AUTOSYNC_LOG", "autosync_engine=info")];
    assert_eq!(run_closed(&w, &["run", "--once"], &env, 0), 0);
    // Read a little first, as `| head -c 100` does: the pipe closes while
    // the service logs.
    w.edit("data/hr.csv", |t| {
        t.replacen("Facilities Lead", "Facilities Head", 1)
    });
    assert_eq!(run_closed(&w, &["-v", "run", "--once"], &[], 100), 0);
    let all = statuses(&w);
    assert!(all.len() > first.len(), "{all:?}");
    assert!(
        app_users(w.path())
            .iter()
            .any(|(_, _, title)| title == "Facilities Head"),
        "the last change did not reach the application"
    );
}

#[test]
fn run_profile_should_end_with_its_runs_code_when_its_output_is_closed() {
    let w = Workdir::quickstart();
    let args = ["-v", "run-profile", "hr", "full-import", "--no-progress"];
    assert_eq!(run_closed(&w, &args, &[], 0), 0);
    assert_eq!(run_closed(&w, &args, &[], 1), 0);
    // Progress lines (no terminal, no `--no-progress`) to the closed pipe.
    assert_eq!(
        run_closed(&w, &["run-profile", "hr", "full-sync"], &[], 0),
        0
    );
    assert_eq!(statuses(&w), ["success", "success", "success"]);
}

#[test]
fn check_should_exit_2_when_its_diagnostics_cannot_be_written() {
    let w = Workdir::quickstart();
    // Every metaverse attribute a flow names misspelt: many errors.
    w.edit("autosync.toml", |t| {
        let mut out = String::new();
        let mut rest = t.as_str();
        while let Some(at) = rest.find("mv = \"") {
            let (head, tail) = rest.split_at(at + "mv = \"".len());
            out.push_str(head);
            let end = tail.find('"').unwrap();
            out.push_str(&tail[..end]);
            out.push('X');
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    });
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let errors = String::from_utf8_lossy(&out.stderr)
        .matches(" > mv: ")
        .count();
    assert!(errors > 10, "{}", String::from_utf8_lossy(&out.stderr));
    for read_first in [0, 1] {
        assert_eq!(run_closed(&w, &["check"], &[], read_first), 2);
    }
    // A command refused before anything runs (an unknown MA), too.
    assert_eq!(
        run_closed(&w, &["run-profile", "nobody", "full-import"], &[], 0),
        2
    );
}

/// POSTs `body` to the running service's API.
fn post_api(w: &Workdir, path: &str, body: &str) -> (u16, Value) {
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("state/api.json")).unwrap())
            .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent
        .post(&format!("{}{path}", file["url"].as_str().unwrap()))
        .header(
            "Authorization",
            &format!("Bearer {}", file["token"].as_str().unwrap()),
        )
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let code = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().unwrap();
    (code, serde_json::from_str(&text).unwrap())
}

/// Whether a run of `ma`'s `profile` was queued by `by`.
fn ran_by(w: &Workdir, ma: &str, profile: &str, by: &str) -> bool {
    history(w).iter().any(|r| {
        r["ma"] == ma
            && r["profile"] == profile
            && r["reason"]["kind"] == "manual"
            && r["reason"]["by"] == by
    })
}

#[test]
fn a_queued_run_should_record_who_asked_for_it() {
    let w = Workdir::quickstart();
    let service = Service::start(&w);
    w.expect(&["queue", "app", "delta-sync"], 0);
    wait_for("the delta sync queued by the command line to run", || {
        ran_by(&w, "app", "delta-sync", "cli")
    });
    let (code, answer) = post_api(
        &w,
        "/api/v1/queue",
        r#"{"ma": "app", "profile": "full-import", "by": "ops-bot"}"#,
    );
    assert_eq!(code, 200, "{answer}");
    wait_for("the full import queued by ops-bot to run", || {
        ran_by(&w, "app", "full-import", "ops-bot")
    });
    let (code, answer) = post_api(
        &w,
        "/api/v1/queue",
        r#"{"ma": "directory", "profile": "full-import"}"#,
    );
    assert_eq!(code, 200, "{answer}");
    wait_for("the full import queued without `by` to run", || {
        ran_by(&w, "directory", "full-import", "api")
    });
    let text = w.expect(&["history", "--ma", "app"], 0);
    assert!(text.contains("manual (cli)"), "{text}");
    assert_eq!(service.terminate(), Some(0));
}
