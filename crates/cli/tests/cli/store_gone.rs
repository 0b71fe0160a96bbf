//! The store file deleted, replaced or damaged under a running service:
//! it stops (exit 4) with an ERROR naming the file, what was seen and the
//! fix; what it held is saved at the store's path when that is free (the
//! next start goes on from it), else beside it as `.recovered-...`,
//! leaving the file put there as it is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use super::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generous bound for waiting on an event (not a timing assertion).
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `autosync run` on the folder, its log in a file; killed when dropped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(w: &Workdir) -> Running {
        let log = w.path().join("service.log");
        let child = Command::new(BIN)
            .arg("-c")
            .arg(w.config())
            .arg("run")
            .env_remove("AUTOSYNC_CONFIG")
            .env("AUTOSYNC_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Running { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until it ends by itself: its exit code and log.
    fn wait_exit(mut self, why: &str) -> (Option<i32>, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.log());
            }
            assert!(
                start.elapsed() < EVENT_TIMEOUT,
                "the service did not stop after {why}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

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

fn store(w: &Workdir) -> PathBuf {
    w.path().join("state/autosync.db")
}

/// Nothing queued, nothing running, as the persisted state says (only
/// while the store is the service's: opening a missing one would make it).
fn controller_idle(w: &Workdir) -> bool {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(store(w), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    let Ok(text) = conn.query_row(
        "SELECT value FROM meta WHERE key = 'controller.state'",
        [],
        |r| r.get::<_, String>(0),
    ) else {
        return false;
    };
    let state: Value = serde_json::from_str(&text).unwrap();
    let running = state["running"].as_array().is_none_or(Vec::is_empty);
    let queued = state["queues"]["queues"].as_object().is_some_and(|q| {
        q.values()
            .any(|q| q["items"].as_array().is_some_and(|i| !i.is_empty()))
    });
    running && !queued
}

/// Starts the service on a fresh quickstart and waits until it has
/// provisioned every active person and is idle.
fn converged() -> (Workdir, Running) {
    let w = Workdir::quickstart();
    let active = hr_with_status(w.path(), "active");
    let service = Running::start(&w);
    wait_for("the first convergence", || {
        let ids: Vec<String> = app_users_now(w.path()).into_iter().map(|u| u.0).collect();
        ids == active
    });
    wait_for("the cycle to end", || controller_idle(&w));
    (w, service)
}

/// The app table's (employee_id, username, title), empty while it cannot
/// be read.
fn app_users_now(dir: &Path) -> Vec<(String, String, String)> {
    let read = || -> rusqlite::Result<Vec<(String, String, String)>> {
        let conn = rusqlite::Connection::open_with_flags(
            dir.join("data/app.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut stmt =
            conn.prepare("SELECT employee_id, username, title FROM users ORDER BY employee_id")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    };
    read().unwrap_or_default()
}

/// Sets the title of HR row `id` (the service's file watch imports it).
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

/// The ids of the runs in the store.
fn run_ids(w: &Workdir) -> Vec<i64> {
    let text = w.expect(&["history", "--limit", "1000", "--json"], 0);
    let runs: Value = serde_json::from_str(&text).unwrap();
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// The ERROR line the service ended with.
fn error_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains(" ERROR ") && l.contains("the store file "))
        .unwrap_or_else(|| panic!("no ERROR about the store file; log:\n{log}"))
}

/// The files of the store's folder whose name starts with `prefix`.
fn named(w: &Workdir, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(w.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_store_deleted_under_the_service_should_be_saved_at_its_path_and_stop_it_with_4() {
    let (w, service) = converged();
    let before = run_ids(&w);
    let who = hr_with_status(w.path(), "active")[0].clone();

    std::fs::remove_file(store(&w)).unwrap();
    set_title(&w, &who, "Keeper of Stores");
    let (code, log) = service.wait_exit("its store file was deleted");

    assert_eq!(code, Some(4), "log:\n{log}");
    let error = error_line(&log);
    let path = store(&w).display().to_string();
    assert!(
        error.contains(&format!(
            "the store file {path} was deleted or moved away while the service ran"
        )) && error.contains(&format!(
            "saved what it held (every change until it stopped) at {path} again"
        )),
        "{error}"
    );
    // Back at its path, whole, with no log of the old file beside it.
    assert!(store(&w).exists());
    assert!(
        named(&w, "autosync.db-wal").is_empty(),
        "{:?}",
        named(&w, "")
    );
    let after = run_ids(&w);
    assert!(
        before.iter().all(|id| after.contains(id)),
        "runs before the delete: {before:?}, in the saved store: {after:?}"
    );
    // The next start goes on from it: the edit flows.
    w.expect(&["run", "--once"], 0);
    let users = app_users(w.path());
    assert!(
        users
            .iter()
            .any(|(id, _, title)| *id == who && title == "Keeper of Stores"),
        "{users:?}"
    );
}

#[test]
fn a_store_replaced_under_the_service_should_be_left_as_it_is_and_a_recovered_copy_written() {
    let (w, service) = converged();
    let before = run_ids(&w);
    let who = hr_with_status(w.path(), "active")[0].clone();

    // A backup of the store, moved over it.
    let backup = w.path().join("backup.db");
    rusqlite::Connection::open(store(&w))
        .unwrap()
        .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
        .unwrap();
    let replacement = std::fs::read(&backup).unwrap();
    std::fs::rename(&backup, store(&w)).unwrap();
    set_title(&w, &who, "Keeper of Stores");
    let (code, log) = service.wait_exit("its store file was replaced");

    assert_eq!(code, Some(4), "log:\n{log}");
    let error = error_line(&log);
    let path = store(&w).display().to_string();
    assert!(
        error.contains(&format!(
            "the store file {path} was replaced by another file while the service ran"
        )) && error.contains(&format!("left the file now at {path} as it is")),
        "{error}"
    );
    // The replacement untouched, without the old file's log beside it;
    // what the service held beside it.
    assert_eq!(std::fs::read(store(&w)).unwrap(), replacement);
    assert!(
        named(&w, "autosync.db-wal").is_empty(),
        "{:?}",
        named(&w, "")
    );
    let recovered = named(&w, "autosync.db.recovered-");
    assert_eq!(recovered.len(), 1, "{:?}", named(&w, ""));
    assert!(
        error.contains(&recovered[0].display().to_string()),
        "{error}"
    );
    let copy = rusqlite::Connection::open_with_flags(
        &recovered[0],
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let check: String = copy
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = copy.prepare("SELECT id FROM run").unwrap();
    let saved: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        before.iter().all(|id| saved.contains(id)),
        "runs before: {before:?}, in the copy: {saved:?}"
    );
    // The file put there works as a store.
    w.expect(&["run", "--once"], 0);
}

#[test]
fn a_store_overwritten_in_place_under_the_service_should_stop_it_with_4() {
    let (w, service) = converged();
    let who = hr_with_status(w.path(), "active")[0].clone();

    // The same file (inode) and size, other bytes: only reading it tells.
    let len = std::fs::metadata(store(&w)).unwrap().len();
    let garbage: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ 0x5a).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(store(&w))
        .unwrap();
    std::io::Write::write_all(&mut file, &garbage).unwrap();
    drop(file);
    set_title(&w, &who, "Keeper of Stores");
    let (code, log) = service.wait_exit("its store file was overwritten");

    assert_eq!(code, Some(4), "log:\n{log}");
    let error = error_line(&log);
    let path = store(&w).display().to_string();
    assert!(
        error.contains(&format!("the store file {path} is damaged ("))
            && error.contains("restore the store from a backup"),
        "{error}"
    );
    assert!(named(&w, "autosync.db.recovered-").is_empty());
}

/// A backup copied over the store in place while the service runs (`cp
/// backup.db autosync.db`: same file, the copy's content, the live
/// write-ahead log beside it), then a change: the service stops with exit
/// 4 on the damaged store, never blaming another process (a black-box
/// review: the copy's lease rows made the leases look taken over, and the
/// service ended saying it had been frozen or cut off from the store).
/// The run finds the damage here; when the lease's heartbeat finds it
/// first (nothing runs), `ServiceLease::store_problem` gives the same
/// ending (not tested: the heartbeat is 15 s).
#[test]
fn a_backup_copied_over_the_store_in_place_should_stop_the_service_on_the_store_not_a_lease() {
    let (w, service) = converged();
    let who = hr_with_status(w.path(), "active")[0].clone();
    let backup = w.path().join("backup.db");
    rusqlite::Connection::open(store(&w))
        .unwrap()
        .execute("VACUUM INTO ?1", [backup.display().to_string()])
        .unwrap();
    // As a backup taken while no service ran: no lease held in it.
    rusqlite::Connection::open(&backup)
        .unwrap()
        .execute("DELETE FROM meta WHERE key LIKE '%lease%'", [])
        .unwrap();
    set_title(&w, &who, "Keeper of Backups");
    wait_for("the change synchronised", || {
        app_users_now(w.path())
            .iter()
            .any(|(_, _, title)| title == "Keeper of Backups")
    });
    std::fs::copy(&backup, store(&w)).unwrap();
    set_title(&w, &who, "Keeper of Stores");
    let (code, log) = service.wait_exit("a backup was copied over its store");

    assert_eq!(code, Some(4), "log:\n{log}");
    assert!(!log.contains("frozen or cut off"), "log:\n{log}");
    let error = error_line(&log);
    assert!(error.contains("restore the store from a backup"), "{error}");
}
