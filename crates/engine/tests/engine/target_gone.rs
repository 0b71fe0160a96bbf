//! A target lost after objects were exported to it (a JSON-lines or CSV
//! file deleted by hand, an SQLite table dropped with `create_table`): the
//! export stops as `stopped-server-down` instead of making it again empty,
//! and an import of it creates nothing and stages no deletes; put back, the
//! MA goes on with nobody deleted (found by a black-box review: the next
//! export made the target again empty and the confirming import staged the
//! delete of every account).

use crate::fixture::*;
use autosync_engine::RunOptions;
use autosync_model::{RunReason, RunStatus};
use autosync_store::CsFilter;

const HR: &str = r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "department"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "firstName", from = "first" },
  { mv = "department", from = "dept" },
]
"#;

const APP: &str = r#"
[[ma]]
name = "app"
connector = CONNECTOR
object_types = [{ name = "user", anchor = "uid" }]
deprovisioning = "delete"
export_flows = [
  { cs = "name", from = "firstName" },
  { cs = "dept", from = "department" },
]
provisioning = [{ mv_type = "person", object_type = "user", anchor = '"u" + employeeId' }]
"#;

const SQLITE: &str = r#"{ type = "sqlite", path = "app.db", table = "users", columns = ["uid", "name", "dept"], create_table = true }"#;

fn config(connector: &str) -> String {
    format!("{HR}{}", APP.replace("CONNECTOR", connector))
}

fn hr_csv(depts: [&str; 3]) -> String {
    let mut out = "id,first,dept\n".to_owned();
    for (i, dept) in depts.iter().enumerate() {
        out.push_str(&format!("{},P{},{dept}\n", i + 1, i + 1));
    }
    out
}

/// Three people provisioned to `app`, exported and confirmed.
fn provisioned(connector: &str) -> World {
    let w = World::new(
        &config(connector),
        &[("hr.csv", &hr_csv(["R&D", "Ops", "R&D"]))],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run_ok("app", "export", RunStatus::Success);
    w.run_ok("app", "full-import", RunStatus::Success);
    w.run("app", "delta-sync");
    assert_eq!(w.cs_all("app", CsFilter::All).len(), 3);
    w
}

/// One person changed in HR and synchronised: an export pending to `app`.
fn change_one(w: &World) {
    w.write("hr.csv", &hr_csv(["Sales", "Ops", "R&D"]));
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "delta-sync", RunStatus::Success);
}

fn message(r: &autosync_model::RunRecord) -> String {
    r.steps
        .iter()
        .find_map(|s| s.message.clone())
        .unwrap_or_default()
}

/// Once the target is back: the export goes, the import confirms it and
/// stages no delete, and nobody is deleted.
fn converges(w: &World) {
    let r = w.run("app", "export");
    assert!(!r.status.is_stopped(), "{r:#?}");
    let c = import_counters(&w.run_ok("app", "full-import", RunStatus::Success));
    assert_eq!(c.stage_delete, 0, "{c:?}");
    w.run("app", "delta-sync");
    assert_eq!(w.cs_all("app", CsFilter::All).len(), 3);
    assert!(w.cs_all("app", CsFilter::PendingExport).is_empty());
    assert!(w.cs_all("app", CsFilter::PendingImport).is_empty());
}

#[test]
fn a_target_file_deleted_after_objects_went_to_it_should_stop_the_export_not_be_made_empty() {
    for (file, connector) in [
        ("app.jsonl", r#"{ type = "jsonl", path = "app.jsonl" }"#),
        ("app.csv", r#"{ type = "csv", path = "app.csv" }"#),
    ] {
        let w = provisioned(connector);
        let path = w.path(file);
        let saved = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        change_one(&w);
        let r = w.run_ok("app", "export", RunStatus::StoppedServerDown);
        let m = message(&r);
        assert!(
            m.contains("does not exist") && m.contains("lost or moved") && m.contains(file),
            "{file}: {m}"
        );
        assert!(m.contains("cs delete"), "{m}");
        assert!(!path.exists(), "{file}: not made again empty");
        // An import of the missing file stops too, staging nothing.
        let r = w.run_ok("app", "full-import", RunStatus::StoppedServerDown);
        assert!(message(&r).contains("cannot open"), "{}", message(&r));
        assert!(w.cs_all("app", CsFilter::PendingImport).is_empty());
        std::fs::write(&path, saved).unwrap();
        converges(&w);
        assert!(w.read(file).contains("Sales"), "{file}");
    }
}

fn users_table(w: &World) -> bool {
    rusqlite::Connection::open(w.path("app.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

/// The `app` table dropped; returns the database as it was, to put back.
fn drop_table(w: &World) -> Vec<u8> {
    let db = w.path("app.db");
    let saved = std::fs::read(&db).unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE users")
        .unwrap();
    assert!(!users_table(w));
    saved
}

#[test]
fn a_target_table_dropped_after_objects_went_to_it_should_stop_the_export_not_be_made_empty() {
    let w = provisioned(SQLITE);
    let saved = drop_table(&w);
    change_one(&w);
    let r = w.run_ok("app", "export", RunStatus::StoppedServerDown);
    let m = message(&r);
    assert!(
        m.contains("table `users` does not exist") && m.contains("dropped"),
        "{m}"
    );
    assert!(m.contains("cs delete"), "{m}");
    assert!(!users_table(&w), "not made again empty");
    std::fs::write(w.path("app.db"), saved).unwrap();
    converges(&w);
    let dept: String = rusqlite::Connection::open(w.path("app.db"))
        .unwrap()
        .query_row("SELECT dept FROM users WHERE uid = 'u1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dept, "Sales");
}

#[test]
fn an_import_of_a_target_table_dropped_should_not_create_it_nor_stage_deletes() {
    let w = provisioned(SQLITE);
    // An export sent, unconfirmed: the confirming import looks it up.
    change_one(&w);
    let export = w.run_ok("app", "export", RunStatus::Success);
    let saved = drop_table(&w);
    let reason = RunReason::FollowUp {
        run_id: export.id,
        because: "export sent changes".into(),
        confirming: true,
    };
    let confirming = w
        .engine
        .run_profile("app", "delta-import", RunOptions::new(reason))
        .unwrap();
    assert_eq!(
        confirming.status,
        RunStatus::StoppedServerDown,
        "{confirming:#?}"
    );
    assert!(message(&confirming).contains("dropped"), "{confirming:#?}");
    let r = w.run_ok("app", "full-import", RunStatus::StoppedServerDown);
    assert!(message(&r).contains("dropped"), "{}", message(&r));
    assert!(!users_table(&w), "not made again empty");
    assert!(w.cs_all("app", CsFilter::PendingImport).is_empty());
    std::fs::write(w.path("app.db"), saved).unwrap();
    converges(&w);
}
