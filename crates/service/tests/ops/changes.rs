//! Triggers fed by what the MA's connector provides, in the running
//! service: a `change-poll` reads the SQLite connector's probe of its
//! changelog, a `script` calls `sql_scalar`, the function the SQLite
//! connector lends; a change poll on a connector that offers none is a
//! located configuration error.

use crate::support::*;
use autosync_model::{RunReason, RunRecord};
use autosync_service::controller_config;
use std::path::Path;

/// A SQLite source (`people`, changelog `people_log`) and its triggers.
fn sqlite_source(dir: &Path, triggers: &str) {
    let conn = rusqlite::Connection::open(dir.join("people.db")).unwrap();
    conn.execute_batch(
        "create table people(id text primary key, name text);
         create table people_log(seq integer primary key, id text, op text);
         insert into people values ('1', 'Ann');
         insert into people_log(id, op) values ('1', 'I');",
    )
    .unwrap();
    let text = format!(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "name"]

[[ma]]
name = "people"
connector = {{ type = "sqlite", path = "people.db", table = "people", delta = {{ kind = "changelog", table = "people_log", sequence_column = "seq", anchor_column = "id" }} }}
object_types = [{{ name = "person", anchor = "id" }}]
projection = [{{ mv_type = "person" }}]
join = [{{ on = [{{ cs = "id", mv = "employeeId" }}] }}]
import_flows = [{{ mv = "employeeId", from = "id" }}, {{ mv = "name", from = "name" }}]
controller = {{ triggers = [{triggers}] }}

[controller]
start_stagger = "0s"
"#
    );
    std::fs::write(dir.join("autosync.toml"), text).unwrap();
}

fn add_person(dir: &Path, id: &str) {
    let conn = rusqlite::Connection::open(dir.join("people.db")).unwrap();
    conn.execute_batch(&format!(
        "insert into people values ('{id}', 'Someone'); insert into people_log(id, op) values ('{id}', 'I');"
    ))
    .unwrap();
}

/// Asked by a trigger of `kind` while running (not the one request a
/// change poll makes at start).
fn asked_by(run: &RunRecord, kind: &str) -> bool {
    matches!(&run.reason, RunReason::Trigger { trigger } if trigger.starts_with(kind) && !trigger.ends_with("(at start)"))
}

fn asked_at_start(run: &RunRecord) -> bool {
    matches!(&run.reason, RunReason::Trigger { trigger } if trigger.starts_with("change-poll") && trigger.ends_with("(at start)"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_should_import_a_polled_source_never_imported_and_one_changed_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    sqlite_source(dir.path(), "");
    let text = std::fs::read_to_string(dir.path().join("autosync.toml"))
        .unwrap()
        .replace("controller = { triggers = [] }\n", "");
    std::fs::write(dir.path().join("autosync.toml"), text).unwrap();
    let (svc, store) = service(dir.path());
    let summary = svc.run(true).await.unwrap();
    let people: Vec<&RunRecord> = summary.runs.iter().filter(|r| r.ma == "people").collect();
    assert!(
        people.first().is_some_and(|r| asked_at_start(r)),
        "a source never imported is imported by `run --once`: {people:?}"
    );
    assert_eq!(store.read().unwrap().cs_counts("people").unwrap().total, 1);
    drop(store);

    // Changed while no service ran: the next `run --once` imports it.
    add_person(dir.path(), "2");
    let (svc, store) = service(dir.path());
    let summary = svc.run(true).await.unwrap();
    assert!(
        summary
            .runs
            .iter()
            .any(|r| r.ma == "people" && asked_at_start(r)),
        "{:?}",
        summary.runs
    );
    assert_eq!(store.read().unwrap().cs_counts("people").unwrap().total, 2);
}

/// Starts the service with `triggers` on the source, then changes the
/// source until the trigger of `kind` asks for an import. The trigger
/// learns the source's state some time after start (a poll's first read, a
/// script's first call), and a change made before that is its baseline:
/// so the test changes the source again every 200 ms until asked, and then
/// checks that it never asked more often than the source changed.
async fn imported_when_the_source_changed(triggers: &str, kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    sqlite_source(dir.path(), triggers);
    let svc = Running::start(dir.path());
    svc.wait_quiet("start-up").await;
    let mut polls = 0;
    let mut changes = 0;
    svc.wait(&format!("an import asked by the {kind} trigger"), |s| {
        if polls % 10 == 0 {
            changes += 1;
            add_person(dir.path(), &format!("p{changes}"));
        }
        polls += 1;
        quiet(s) && svc.runs(Some("people")).iter().any(|r| asked_by(r, kind))
    })
    .await;
    let asked: Vec<RunRecord> = svc
        .runs(Some("people"))
        .into_iter()
        .filter(|r| asked_by(r, kind))
        .collect();
    assert!(
        (1..=changes).contains(&asked.len()),
        "{changes} changes, {} requests: {asked:?}",
        asked.len()
    );
    assert!(asked.iter().all(|r| r.profile == "delta-import"));
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_poll_should_import_a_sqlite_source_when_its_changelog_grows() {
    imported_when_the_source_changed(
        r#"{ type = "change-poll", every = "100ms" }"#,
        "change-poll",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_should_call_sql_scalar_lent_by_the_sqlite_connector() {
    let script = r#"let n = sql_scalar(\"people.db\", \"select count(*) from people\"); let before = if state.contains(\"n\") { state.n } else { n }; state.n = n; if n != before { \"delta-import\" }"#;
    imported_when_the_source_changed(
        &format!(r#"{{ type = "script", every = "100ms", script = "{script}" }}"#),
        "script",
    )
    .await;
}

#[test]
fn a_change_poll_on_a_connector_that_offers_none_should_be_a_located_error() {
    let dir = quickstart();
    edit_config(dir.path(), |t| {
        hr_controller(&t, r#"triggers = [{ type = "change-poll" }]"#)
    });
    let loaded = load(dir.path()).unwrap();
    let errors = loaded
        .error(controller_config(&loaded, &registry()).unwrap_err())
        .to_string();
    assert!(
        errors.contains("triggers[0] (change-poll)") && errors.contains("offers nothing to poll"),
        "{errors}"
    );
}

#[test]
fn an_sqlite_source_with_a_changelog_and_no_triggers_should_be_polled_not_watched() {
    // In WAL mode a write reaches the database file only at a checkpoint:
    // the default trigger is the change poll the connector proposes.
    let dir = tempfile::tempdir().unwrap();
    sqlite_source(dir.path(), "");
    let path = dir.path().join("autosync.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("controller = { triggers = [] }\n", "");
    std::fs::write(&path, text).unwrap();
    let loaded = load(dir.path()).unwrap();
    let config = controller_config(&loaded, &registry()).unwrap();
    let people = &config.mas["people"];
    assert!(people.default_triggers);
    assert!(
        matches!(
            people.triggers.as_slice(),
            [autosync_triggers::TriggerConfig::ChangePoll(c)] if c.probe.get().is_some()
        ),
        "{:?}",
        people.triggers
    );
}

#[test]
fn the_start_up_lines_should_name_the_triggers_the_service_builds_not_a_proposal() {
    // An SQLite source without `delta`: discover would propose an interval,
    // the service watches the database file. The lines say what runs.
    let dir = tempfile::tempdir().unwrap();
    sqlite_source(dir.path(), "");
    let path = dir.path().join("autosync.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("delta = {").unwrap();
    let end = start + text[start..].find("} }").unwrap() + 2;
    let text = format!("{}{}", &text[..start - 2], &text[end..])
        .replace("controller = { triggers = [] }\n", "");
    assert!(!text.contains("delta"), "{text}");
    std::fs::write(&path, text).unwrap();
    let loaded = load(dir.path()).unwrap();
    let config = controller_config(&loaded, &registry()).unwrap();
    let lines = autosync_service::trigger_lines(&config);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("MA `people` triggers (default): file-watch")
            && lines[0].contains("people.db")
            && lines[0].ends_with("asks for `delta-import`")
            && !lines[0].contains("interval"),
        "{lines:?}"
    );
}

/// A CSV source watched by its default file watch, for `run --once`.
fn csv_source(dir: &Path) {
    std::fs::write(dir.join("hr.csv"), "id,name\n1,Ann\n").unwrap();
    let text = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "name"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
projection = [{ mv_type = "person" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
import_flows = [{ mv = "employeeId", from = "id" }, { mv = "name", from = "name" }]

[controller]
start_stagger = "0s"
retry = { max_attempts = 1 }
"#;
    std::fs::write(dir.join("autosync.toml"), text).unwrap();
}

/// Waits until a file made in `dir` is stamped later than `t` (the file
/// system's clock is coarse: a tick behind the wall clock).
fn file_clock_past(dir: &std::path::Path, t: chrono::DateTime<chrono::Utc>) {
    use std::os::unix::fs::MetadataExt as _;
    let probe = dir.join(".clock-probe");
    let start = std::time::Instant::now();
    loop {
        std::fs::write(&probe, b"").unwrap();
        let m = std::fs::metadata(&probe).unwrap();
        let ctime = chrono::DateTime::<chrono::Utc>::from_timestamp(
            m.ctime(),
            u32::try_from(m.ctime_nsec()).unwrap(),
        )
        .unwrap();
        if ctime > t {
            std::fs::remove_file(&probe).unwrap();
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "the file system's clock never passed {t}"
        );
        std::thread::yield_now();
    }
}

/// `run --once` after a source file was put in place keeping an older
/// modification time (`cp -p`, `rsync -a`, `tar x`) imports it (its change
/// time is new); with the source file gone, it imports it anyway, so that
/// the run says so (`stopped-server-down`) instead of nothing running and
/// the exit code saying all is well (found by two black-box reviews).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_should_import_a_file_copied_in_with_an_old_time_and_report_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    csv_source(dir.path());
    let (svc, store) = service(dir.path());
    svc.run(true).await.unwrap();
    assert_eq!(store.read().unwrap().cs_counts("hr").unwrap().total, 1);
    // Copied in while stopped, dated an hour ago: after the last run, as
    // the file system's clock tells (it stamps files with a coarse clock,
    // a tick behind the one runs are stamped with: a file put in place
    // within a tick of the import's start looks older than it; the CI
    // failed so once).
    let started = store.read().unwrap().runs(Some("hr"), 1).unwrap()[0].started_at;
    drop(store);
    file_clock_past(dir.path(), started);
    let new = dir.path().join("new.csv");
    std::fs::write(&new, "id,name\n1,Ann\n2,Bob\n").unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&new)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    std::fs::rename(&new, dir.path().join("hr.csv")).unwrap();
    let (svc, store) = service(dir.path());
    let summary = svc.run(true).await.unwrap();
    assert!(
        summary.runs.iter().any(|r| r.ma == "hr"),
        "{:?}",
        summary.runs
    );
    assert_eq!(store.read().unwrap().cs_counts("hr").unwrap().total, 2);
    drop(store);

    // Gone: imported, to say so.
    std::fs::remove_file(dir.path().join("hr.csv")).unwrap();
    let (svc, store) = service(dir.path());
    let summary = svc.run(true).await.unwrap();
    assert!(
        summary
            .runs
            .iter()
            .any(|r| r.ma == "hr" && r.status == autosync_model::RunStatus::StoppedServerDown),
        "{:?}",
        summary.runs
    );
    assert_eq!(
        store.read().unwrap().cs_counts("hr").unwrap().total,
        2,
        "nothing deleted"
    );
}
