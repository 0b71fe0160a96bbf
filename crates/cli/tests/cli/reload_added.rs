//! What a reload (SIGHUP) of the real binary does with the MAs it adds,
//! the full syncs its answer names and the scripts its triggers read from
//! files (three defects found by a black-box review of the release
//! binary): an added source is imported at once, as a start imports it;
//! the answer names the full syncs the status shows; an edited trigger
//! script is read again.

use super::controls::{history, status, wait_for};
use super::support::{BIN, Workdir};
use autosync_testkit::ServiceProcess;
use std::path::Path;
use std::time::Duration;

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `autosync run` (with its API) on the folder, once its first cycle ended.
fn start(w: &Workdir) -> ServiceProcess {
    let svc = ServiceProcess::start(Path::new(BIN), &w.config(), &[]).unwrap();
    let api_file = w.path().join("state/api.json");
    wait_for("the service's API file", || api_file.exists());
    wait_for("the first cycle to end", || {
        let status = status(w);
        status["service"] == true
            && !history(w).is_empty()
            && status["mas"]
                .as_object()
                .unwrap()
                .values()
                .all(|m| m["state"] == "idle" && m["queue"].as_array().is_none_or(Vec::is_empty))
    });
    svc
}

/// Sends SIGHUP and returns the reload's answer as the log says it (the
/// `nth` answer, counting from 1).
fn reload(svc: &mut ServiceProcess, nth: usize) -> String {
    svc.signal("HUP").unwrap();
    svc.wait_log("the reload's answer", EVENT_TIMEOUT, |log| {
        log.matches("configuration reload").count() >= nth
    })
    .unwrap();
    let log = svc.log();
    let line = log
        .lines()
        .filter(|l| l.contains("configuration reload"))
        .nth(nth - 1)
        .unwrap()
        .to_owned();
    line[line.find("configuration reload").unwrap()..].to_owned()
}

/// A CSV source and an SQLite source with a changelog polled for changes,
/// both with data already there, added by a reload: each is imported at
/// once, as a start imports a source that never imported (they waited,
/// never imported, until their data changed or the service restarted).
#[test]
fn sources_added_by_a_reload_should_be_imported_at_once() {
    let w = Workdir::quickstart();
    std::fs::write(w.path().join("data/extra.csv"), "id,name\nX1,One\nX2,Two\n").unwrap();
    let db = rusqlite::Connection::open(w.path().join("data/contractors.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE contractors (id TEXT PRIMARY KEY, status TEXT);
         CREATE TABLE contractors_changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT);
         CREATE TRIGGER c_ins AFTER INSERT ON contractors
           BEGIN INSERT INTO contractors_changelog(id) VALUES (NEW.id); END;
         INSERT INTO contractors VALUES ('C001', 'active');",
    )
    .unwrap();
    drop(db);
    let mut svc = start(&w);
    w.edit("autosync.toml", |text| {
        text + r#"
[[ma]]
name = "contractors"
connector = { type = "sqlite", path = "data/contractors.db", table = "contractors", delta = { kind = "changelog", table = "contractors_changelog", sequence_column = "seq", anchor_column = "id" } }
object_types = [{ name = "person", anchor = "id" }]
join = [{ mv_type = "person", on = [{ cs = "id", mv = "employeeId" }] }]
import_flows = [{ mv_type = "person", mv = "status", from = "status" }]
controller = { triggers = [{ type = "change-poll", every = "1s" }] }

[[ma]]
name = "extra"
connector = { type = "csv", path = "data/extra.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ mv_type = "person", on = [{ cs = "id", mv = "employeeId" }] }]
import_flows = [{ mv_type = "person", mv = "department", from = "name" }]
"#
    });
    let answer = reload(&mut svc, 1);
    assert!(answer.contains("added: contractors, extra"), "{answer}");
    wait_for("imports of the added sources", || {
        let runs = history(&w);
        ["contractors", "extra"].iter().all(|ma| {
            runs.iter()
                .any(|r| r["ma"] == *ma && r["profile"].as_str().unwrap_or("").contains("import"))
        })
    });
    let (code, log) = svc.terminate().unwrap();
    assert_eq!(code, Some(0), "log:\n{log}");
}

/// The title's export flow changed on both targets: the answer names the
/// full syncs the status shows, no more (it named the directory, a target
/// never synchronised, which the status and the notices never named).
#[test]
fn a_reloads_answer_should_name_the_full_syncs_the_status_shows() {
    let w = Workdir::quickstart_with_groups();
    let mut svc = start(&w);
    w.edit("autosync.toml", |text| {
        let edited = text.replace(
            r#"cs = "title", from = "title" }"#,
            r#"cs = "title", expr = "upper(title)" }"#,
        );
        assert_ne!(edited, text, "the quickstart's title flows");
        edited
    });
    let answer = reload(&mut svc, 1);
    let mut named: Vec<String> = answer
        .split("these need a full sync (queue them, or set `full_sync_on_rule_change = true`): ")
        .nth(1)
        .unwrap_or_else(|| panic!("no full sync named: {answer}"))
        .split(", ")
        .map(|item| item.split(' ').next().unwrap().to_owned())
        .collect();
    let status = status(&w);
    let shown: Vec<String> = status["mas"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, m)| !m["full_sync_needed"].is_null())
        .map(|(ma, _)| ma.clone())
        .collect();
    assert!(!shown.is_empty(), "{status}");
    named.sort();
    assert_eq!(named, shown, "the answer: {answer}\nthe status: {status}");
    let (code, log) = svc.terminate().unwrap();
    assert_eq!(code, Some(0), "log:\n{log}");
}

/// A script trigger's file edited, then a reload: the MA counts as changed
/// and its trigger runs the new script (it kept running the old one until
/// a restart); a script that no longer compiles refuses the reload, saying
/// where, and the last good one keeps running.
#[test]
fn a_reload_should_read_an_edited_trigger_script_again() {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |text| {
        text.replacen(
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]"#,
            r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }, { type = "script", name = "s", every = "200ms", file = "t.rhai" }]"#,
            1,
        )
    });
    std::fs::write(w.path().join("t.rhai"), "log(\"OLD script\"); ()\n").unwrap();
    let mut svc = start(&w);
    svc.wait_log("the old script", EVENT_TIMEOUT, |log| {
        log.contains("OLD script")
    })
    .unwrap();
    std::fs::write(w.path().join("t.rhai"), "log(\"NEW script\"); ()\n").unwrap();
    let answer = reload(&mut svc, 1);
    assert!(answer.contains("changed: hr"), "{answer}");
    svc.wait_log("the new script", EVENT_TIMEOUT, |log| {
        log.contains("NEW script")
    })
    .unwrap();

    std::fs::write(w.path().join("t.rhai"), "log(\"BAD script\"\n").unwrap();
    let refusal = reload(&mut svc, 2);
    assert!(
        refusal.contains("reload refused")
            && refusal.contains("autosync.toml:")
            && refusal.contains("t.rhai` does not compile")
            && refusal.contains("line 2"),
        "{refusal}"
    );
    let seen = svc.log().matches("NEW script").count();
    svc.wait_log("the new script still", EVENT_TIMEOUT, |log| {
        log.matches("NEW script").count() > seen
    })
    .unwrap();
    let (code, log) = svc.terminate().unwrap();
    assert_eq!(code, Some(0), "log:\n{log}");
}
