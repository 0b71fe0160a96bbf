//! A confirming import of a target without change tracking (an SQLite
//! table) reads back only the objects whose export is unconfirmed, when
//! they are few; an ordinary import, or a confirming import of many
//! objects, reads the whole table.

use crate::fixture::*;
use autosync_engine::RunOptions;
use autosync_model::{RunReason, RunRecord, RunStatus};
use autosync_store::{CsFilter, Store as _};

const CONFIG: &str = r#"
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

[[ma]]
name = "app"
connector = { type = "sqlite", path = "app.db", table = "users", columns = ["uid", "name", "dept"], create_table = true }
object_types = [{ name = "user", anchor = "uid" }]
deprovisioning = "delete"
export_flows = [
  { cs = "name", from = "firstName" },
  { cs = "dept", from = "department" },
]
provisioning = [{ mv_type = "person", object_type = "user", anchor = '"u" + employeeId' }]
"#;

fn hr_csv(people: &[(u32, &str)]) -> String {
    let mut out = "id,first,dept\n".to_owned();
    for (id, dept) in people {
        out.push_str(&format!("{id},P{id},{dept}\n"));
    }
    out
}

/// A hundred people: more than a confirming import reads one by one
/// whatever the connector space's size.
fn hundred() -> Vec<(u32, &'static str)> {
    (1..=100).map(|i| (i, "R&D")).collect()
}

/// The import an export's follow-up runs.
fn confirming(w: &World, export: &RunRecord) -> RunRecord {
    let reason = RunReason::FollowUp {
        run_id: export.id,
        because: "export sent changes".into(),
        confirming: true,
    };
    let r = w
        .engine
        .run_profile("app", "delta-import", RunOptions::new(reason))
        .unwrap();
    assert!(!r.status.is_stopped(), "{r:#?}");
    r
}

fn app_sql(w: &World, sql: &str) {
    let c = rusqlite::Connection::open(w.path("app.db")).unwrap();
    c.execute_batch(sql).unwrap();
}

fn unconfirmed(w: &World) -> usize {
    w.cs_all("app", CsFilter::UnconfirmedExport).len()
}

/// A hundred people provisioned to the application and confirmed.
fn exported_and_confirmed() -> World {
    let w = World::new(CONFIG, &[("hr.csv", &hr_csv(&hundred()))]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let export = w.run_ok("app", "export", RunStatus::Success);
    confirming(&w, &export);
    w
}

/// HR now says `people`: imported, synchronised and exported.
fn hr_changes(w: &World, people: &[(u32, &str)]) -> RunRecord {
    w.write("hr.csv", &hr_csv(people));
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "delta-sync", RunStatus::Success);
    w.run_ok("app", "export", RunStatus::Success)
}

#[test]
fn a_confirming_import_of_a_few_exports_should_read_back_only_those_objects() {
    let w = World::new(CONFIG, &[("hr.csv", &hr_csv(&hundred()))]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let export = w.run_ok("app", "export", RunStatus::Success);
    assert_eq!(export_counters(&export).adds, 100);
    // A hundred of a hundred unconfirmed: the whole table is read, and a
    // row someone else added is seen.
    app_sql(
        &w,
        "INSERT INTO users (uid, name, dept) VALUES ('x1', 'Other', 'Ops')",
    );
    let c = import_counters(&confirming(&w, &export));
    assert_eq!((c.export_confirmed, c.stage_add), (100, 1), "{c:?}");
    assert_eq!(unconfirmed(&w), 0);

    // One person moves, one leaves: an update and a delete exported.
    let mut people = hundred();
    people[0].1 = "Sales";
    people.retain(|(id, _)| *id != 2);
    let export = hr_changes(&w, &people);
    let e = export_counters(&export);
    assert_eq!((e.updates, e.deletes), (1, 1), "{e:?}");
    // The delete leaves no object to confirm.
    assert_eq!(unconfirmed(&w), 1);
    // Someone else changes another row meanwhile.
    app_sql(&w, "UPDATE users SET dept = 'Elsewhere' WHERE uid = 'u5'");

    // The confirming import reads the one object only: confirmed, nothing
    // else read, the other change not seen.
    let c = import_counters(&confirming(&w, &export));
    assert_eq!(c.export_confirmed, 1, "{c:?}");
    assert_eq!((c.stage_no_change, c.stage_update), (0, 0), "{c:?}");
    assert_eq!(unconfirmed(&w), 0);
    assert!(w.cs("app", "u2").is_none_or(|o| !o.present));
    assert_eq!(
        w.cs("app", "u1").unwrap().hologram["dept"].to_text(),
        "Sales"
    );
    assert_eq!(w.cs("app", "u5").unwrap().hologram["dept"].to_text(), "R&D");

    // An ordinary delta import of the same profile reads the whole table
    // (the table has no change tracking) and sees the other change.
    let c = import_counters(&w.run_ok("app", "delta-import", RunStatus::Success));
    assert_eq!(c.stage_update, 1, "{c:?}");
    let staged = w.cs("app", "u5").unwrap().pending_import.unwrap();
    assert_eq!(staged.attributes["dept"].to_text(), "Elsewhere");
}

#[test]
fn a_confirming_import_should_read_the_table_whole_when_it_was_not_read_so_for_a_minute() {
    let w = exported_and_confirmed();
    let mut people = hundred();
    people[0].1 = "Sales";
    let export = hr_changes(&w, &people);
    app_sql(&w, "UPDATE users SET dept = 'Elsewhere' WHERE uid = 'u5'");
    // The last whole read was two minutes ago.
    let key = autosync_engine::whole_read_key("app");
    let old = (chrono::Utc::now().timestamp_millis() - 120_000).to_string();
    let mut txn = w.store.begin().unwrap();
    txn.set_meta(&key, Some(&old)).unwrap();
    txn.commit().unwrap();
    let c = import_counters(&confirming(&w, &export));
    assert_eq!((c.export_confirmed, c.stage_update), (1, 1), "{c:?}");
    assert!(c.stage_no_change > 90, "the whole table was read: {c:?}");
    // And that whole read counts: the next one looks up again.
    let stamp: i64 = w
        .store
        .read()
        .unwrap()
        .meta(&key)
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(stamp > chrono::Utc::now().timestamp_millis() - 60_000);
}

#[test]
fn a_confirming_import_should_see_an_exported_row_that_is_gone_or_changed_since() {
    let w = exported_and_confirmed();
    let mut people = hundred();
    people[2].1 = "Sales";
    people[3].1 = "Sales";
    let export = hr_changes(&w, &people);
    assert_eq!(export_counters(&export).updates, 2);
    // Before the confirming import: one exported row deleted, the other
    // changed again by someone else.
    app_sql(
        &w,
        "DELETE FROM users WHERE uid = 'u3'; UPDATE users SET dept = 'Ops' WHERE uid = 'u4'",
    );
    let c = import_counters(&confirming(&w, &export));
    assert_eq!(
        (c.stage_delete, c.stage_update, c.export_confirmed),
        (1, 1, 0),
        "{c:?}"
    );
    assert_eq!(c.stage_no_change, 0, "{c:?}");
    // The sync puts the changed one back (the deleted one is
    // disconnected, as after a full import).
    w.run_ok("app", "delta-sync", RunStatus::Success);
    w.run_ok("app", "export", RunStatus::Success);
    let c = rusqlite::Connection::open(w.path("app.db")).unwrap();
    let dept: String = c
        .query_row("SELECT dept FROM users WHERE uid = 'u4'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dept, "Sales");
}

/// The target's database deleted after objects were exported to it: with
/// `create_table`, an export no longer makes it again empty (whose
/// updates failed one by one, and whose import would take everyone for
/// deleted); it stops as `stopped-server-down`, retried, and goes on once
/// the database is back (found by a black-box review).
#[test]
fn a_target_database_lost_after_objects_went_to_it_should_stop_the_export_not_be_made_empty() {
    let w = World::new(CONFIG, &[("hr.csv", &hr_csv(&[(1, "R&D"), (2, "Ops")]))]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run_ok("app", "export", RunStatus::Success);
    w.run_ok("app", "full-import", RunStatus::Success);
    w.run("app", "delta-sync");
    let db = w.path("app.db");
    let saved = std::fs::read(&db).unwrap();
    std::fs::remove_file(&db).unwrap();
    w.write("hr.csv", &hr_csv(&[(1, "Sales"), (2, "Ops")]));
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "delta-sync", RunStatus::Success);
    let r = w.run_ok("app", "export", RunStatus::StoppedServerDown);
    let message = r.steps[0].message.clone().unwrap_or_default();
    assert!(
        message.contains("does not exist") && message.contains("lost or moved"),
        "{message}"
    );
    assert!(!db.exists(), "not made again empty");
    // Restored: the change goes.
    std::fs::write(&db, saved).unwrap();
    w.run_ok("app", "export", RunStatus::Success);
    let dept: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT dept FROM users WHERE uid = 'u1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dept, "Sales");
}

/// A target that stores another value than the one sent (a trigger that
/// upper-cases it; a server that normalises it): the confirming import
/// warns (`exported-change-not-reimported`), the value is sent once more
/// (someone may have changed it just after the export), and when it comes
/// back altered again it is not sent again until the metaverse value
/// changes: no export loop (found by a black-box review: 17 rounds of
/// export, import and sync until the oscillation guard, again at every
/// change in the source).
#[test]
fn a_value_the_target_keeps_altered_should_be_sent_twice_then_left_with_a_warning() {
    let w = exported_and_confirmed();
    app_sql(
        &w,
        "CREATE TRIGGER up AFTER UPDATE OF dept ON users BEGIN \
         UPDATE users SET dept = upper(new.dept) WHERE uid = new.uid AND dept <> upper(new.dept); END;",
    );
    let mut people = hundred();
    people[4].1 = "Sales";
    let mut export = hr_changes(&w, &people);
    let mut sent = Vec::new();
    for _ in 0..4 {
        sent.push(export_counters(&export).updates);
        let r = confirming(&w, &export);
        assert_eq!(r.status, RunStatus::CompletedWarnings, "{r:#?}");
        assert_eq!(import_counters(&r).export_not_reimported, 1, "{r:#?}");
        w.run("app", "delta-sync");
        export = w.run("app", "export");
        assert!(!export.status.is_stopped(), "{export:#?}");
    }
    assert_eq!(sent, [1, 1, 0, 0], "sent, sent once more, then left");
    let u5 = w.cs("app", "u5").unwrap();
    let error = u5.error.expect("the object says why");
    assert_eq!(error.error_type, "exported-change-not-reimported");
    assert!(
        error.detail.contains("dept: sent `Sales`, holds `SALES`"),
        "{error:?}"
    );
    // A new value in the metaverse is sent, and once more when it comes
    // back altered too (a reviewer found it kept at once: the guard was
    // the warning left on the object), then left.
    people[4].1 = "Ops";
    let mut export = hr_changes(&w, &people);
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(export_counters(&export).updates);
        confirming(&w, &export);
        w.run("app", "delta-sync");
        export = w.run("app", "export");
    }
    assert_eq!(sent, [1, 1, 0]);
    let c = rusqlite::Connection::open(w.path("app.db")).unwrap();
    let dept: String = c
        .query_row("SELECT dept FROM users WHERE uid = 'u5'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dept, "OPS");
}
