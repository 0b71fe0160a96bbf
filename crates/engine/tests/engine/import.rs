//! Import staging: adds, updates, no-change, deletes, delete-adds, renames,
//! the unchanged-watermark skip of a delta import, every kind of per-record error, delta
//! imports of a file and of a SQLite changelog, and watermarks.

use crate::fixture::*;
use autosync_engine::{CancelFlag, ProgressSink, RunOptions};
use autosync_model::{ImportKind, RunStatus, StepRecord, StepType};
use autosync_store::{CsFilter, Store as _};
use std::sync::Arc;

#[test]
fn full_import_should_stage_an_add_per_new_row() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!(c.stage_add, 3);
    let ada = w.cs("hr", "1").unwrap();
    let p = ada.pending_import.unwrap();
    assert_eq!(p.kind, ImportKind::Add);
    assert_eq!(p.attributes["first"].to_text(), "Ada");
    assert!(ada.present);
}

/// HR imported and synchronised: every object has a hologram.
fn synced_hr() -> World {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w
}

#[test]
fn full_import_should_stage_an_update_for_a_changed_row_and_no_change_for_the_rest() {
    let w = synced_hr();
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Math\n2,Alan,Turing,R&D\n3,Grace,Hopper,Navy\n",
    );
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_update, c.stage_no_change, c.stage_add), (1, 2, 0));
    let p = w.cs("hr", "1").unwrap().pending_import.unwrap();
    assert_eq!(p.kind, ImportKind::Update);
    assert_eq!(p.attributes["dept"].to_text(), "Math");
    assert!(w.cs("hr", "2").unwrap().pending_import.is_none());
}

#[test]
fn reimporting_identical_rows_should_stage_no_change() {
    let w = synced_hr();
    // Same rows in another order: the file changed, the objects did not.
    w.write(
        "hr.csv",
        "id,first,last,dept\n3,Grace,Hopper,Navy\n2,Alan,Turing,R&D\n1,Ada,Lovelace,R&D\n",
    );
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_no_change, c.staged()), (3, 0));
}

/// A full import reads the source every time (its errors are seen again);
/// a delta import skips a source its watermark shows unchanged.
#[test]
fn an_unchanged_source_should_be_read_by_a_full_import_and_skipped_by_a_delta_import() {
    let w = synced_hr();
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!((c.stage_no_change, c.staged()), (3, 0));
    let r = w.run_ok("hr", "delta-import", RunStatus::CompletedNoObjects);
    assert_eq!(import_counters(&r), Default::default());
}

#[test]
fn full_import_should_stage_deletes_for_rows_no_longer_there() {
    let w = synced_hr();
    w.write("hr.csv", "id,first,last,dept\n1,Ada,Lovelace,R&D\n");
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_delete, c.stage_no_change), (2, 1));
    assert_eq!(
        w.cs("hr", "2").unwrap().pending_import.unwrap().kind,
        ImportKind::Delete
    );
}

#[test]
fn a_reimport_that_brings_an_object_back_to_its_hologram_should_clear_its_pending_import() {
    let w = synced_hr();
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Math\n2,Alan,Turing,R&D\n3,Grace,Hopper,Navy\n",
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    assert!(w.cs("hr", "1").unwrap().pending_import.is_some());
    w.write("hr.csv", HR_CSV);
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_no_change, c.staged()), (3, 0));
    assert!(w.cs("hr", "1").unwrap().pending_import.is_none());
}

const TYPED: &str = r#"
[metaverse.person]
attributes = ["employeeId", "name"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv", object_type_column = "kind" }
object_types = [{ name = "employee", anchor = "id", dn = "login" }, { name = "contractor", anchor = "id", dn = "login" }]
projection = [{ object_type = "employee", mv_type = "person" }, { object_type = "contractor", mv_type = "person" }]
import_flows = [
  { object_type = "employee", mv = "employeeId", from = "id" },
  { object_type = "contractor", mv = "employeeId", from = "id" },
]
"#;

const WITH_DN: &str = r#"
[metaverse.person]
attributes = ["employeeId"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "employee", anchor = "id", dn = "login" }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv = "employeeId", from = "id" }]
"#;

#[test]
fn an_object_type_change_should_stage_a_delete_add() {
    let w = World::new(
        TYPED,
        &[("hr.csv", "id,kind,login,name\n1,employee,ada,Ada\n")],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.write("hr.csv", "id,kind,login,name\n1,contractor,ada,Ada\n");
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!(c.stage_delete_add, 1);
    let p = w.cs("hr", "1").unwrap().pending_import.unwrap();
    assert_eq!(
        (p.kind, p.object_type.as_deref()),
        (ImportKind::DeleteAdd, Some("contractor"))
    );
    // Sync: the old MV object goes with its only connector, a new one comes.
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!((s.deleted, s.projections), (1, 1));
    assert_eq!(w.cs("hr", "1").unwrap().object_type, "contractor");
    assert_eq!(w.mv_all().len(), 1);
}

#[test]
fn a_display_key_change_should_stage_a_rename() {
    let w = World::new(WITH_DN, &[("hr.csv", "id,login,name\n1,ada,Ada\n")]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    assert_eq!(w.cs("hr", "1").unwrap().dn, "ada");
    w.write("hr.csv", "id,login,name\n1,ada.l,Ada\n");
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_rename, c.stage_update), (1, 0));
    w.run_ok("hr", "delta-sync", RunStatus::Success);
    assert_eq!(w.cs("hr", "1").unwrap().dn, "ada.l");
}

#[test]
fn a_malformed_row_should_be_a_per_object_error_and_the_rest_should_carry_on() {
    let w = World::new(
        HR_DIR,
        &[(
            "hr.csv",
            "id,first,last,dept\n1,Ada,Lovelace,R&D\n2,Alan\n3,Grace,Hopper,Navy\n",
        )],
    );
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!((c.stage_add, c.stage_failure), (2, 1));
    assert_eq!(r.steps[0].errors, 1);
    let errors = w.store.read().unwrap().run_errors(r.id, 10).unwrap();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].object.contains("line 3") || errors[0].object == "2",
        "{errors:?}"
    );
}

#[test]
fn an_unreadable_row_of_a_known_object_should_keep_the_object_and_carry_the_error() {
    let w = synced_hr();
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,R&D\n2,Alan\n3,Grace,Hopper,Navy\n",
    );
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    // The connector reads the anchor of the short row: the object is kept
    // with the error, and no delete is staged.
    assert_eq!((c.stage_failure, c.stage_delete), (1, 0), "{r:#?}");
    let alan = w.cs("hr", "2").unwrap();
    assert!(alan.pending_import.is_none(), "{alan:#?}");
    assert_eq!(alan.error.unwrap().error_type, "malformed-record");
    w.write("hr.csv", HR_CSV);
    w.run_ok("hr", "full-import", RunStatus::Success);
    assert!(w.cs("hr", "2").unwrap().error.is_none());
}

/// Cancels its run at the first progress report.
struct CancelOnFirstBatch(CancelFlag);

impl ProgressSink for CancelOnFirstBatch {
    fn step_started(&self, _: usize, _: StepType, _: Option<u64>) {}
    fn advanced(&self, _: u64) {
        self.0.cancel();
    }
    fn step_finished(&self, _: usize, _: &StepRecord) {}
}

fn cancelling_run(w: &World, ma: &str, profile: &str) -> autosync_model::RunRecord {
    cancelling_run_in_batches_of(w, ma, profile, None)
}

/// A run cancelled at its first progress report; `sync_batch`: objects per
/// sync batch (one commit each).
fn cancelling_run_in_batches_of(
    w: &World,
    ma: &str,
    profile: &str,
    sync_batch: Option<usize>,
) -> autosync_model::RunRecord {
    let cancel = CancelFlag::new();
    let mut opts = RunOptions::manual("test");
    opts.cancel = cancel.clone();
    opts.progress = Some(Arc::new(CancelOnFirstBatch(cancel)));
    opts.sync_batch = sync_batch.and_then(std::num::NonZeroUsize::new);
    w.engine.run_profile(ma, profile, opts).unwrap()
}

const SMALL_BATCHES: &str = r#"
[metaverse.person]
attributes = ["employeeId"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv", batch_size = 1 }
object_types = [{ name = "person", anchor = "id" }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv = "employeeId", from = "id" }]
"#;

#[test]
fn a_stopped_import_should_not_advance_the_watermark() {
    let w = World::new(SMALL_BATCHES, &[("hr.csv", HR_CSV)]);
    let r = cancelling_run(&w, "hr", "delta-import");
    assert_eq!(r.status, RunStatus::StoppedUserRequested);
    // One row per batch: the first was staged, the other two never read.
    assert_eq!(import_counters(&r).stage_add, 1);
    assert_eq!(w.cs_all("hr", CsFilter::PendingImport).len(), 1);
    assert_eq!(w.store.read().unwrap().watermark("hr").unwrap(), None);
    // The next import reads everything again and saves the watermark.
    w.run_ok("hr", "delta-import", RunStatus::Success);
    assert!(w.store.read().unwrap().watermark("hr").unwrap().is_some());
    assert_eq!(w.cs_all("hr", CsFilter::PendingImport).len(), 3);
}

#[test]
fn a_cancelled_sync_should_stop_with_stopped_user_requested_and_keep_its_committed_batches() {
    let w = World::new(SMALL_BATCHES, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    assert_eq!(w.cs_all("hr", CsFilter::PendingImport).len(), 3);
    // One object per sync batch: the run is cancelled during the first of
    // three batches.
    let r = cancelling_run_in_batches_of(&w, "hr", "full-sync", Some(1));
    assert_eq!(r.status, RunStatus::StoppedUserRequested);
    assert_eq!(r.steps[0].status, RunStatus::StoppedUserRequested);
    assert_eq!(sync_counters(&r).projections, 1);
    // The first batch was committed; the other two are still pending.
    assert_eq!(w.mv_all().len(), 1);
    let pending: Vec<String> = w
        .cs_all("hr", CsFilter::PendingImport)
        .into_iter()
        .map(|o| o.anchor)
        .collect();
    assert_eq!(pending, ["2", "3"]);
    assert_eq!(w.mv_text("hr", "1", "employeeId").as_deref(), Some("1"));
    // A later sync finishes the rest.
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!(s.projections, 2);
    assert_eq!(w.mv_all().len(), 3);
    assert!(w.cs_all("hr", CsFilter::PendingImport).is_empty());
}

/// Every kind of bad record of a file in one import: each is a per-object
/// error of its own kind that names its line, every good row is staged,
/// and the sync that follows projects the good rows. Both rows of an
/// anchor on two are errors: neither is staged.
#[test]
fn each_kind_of_bad_record_should_be_its_own_error_and_the_rest_should_import_and_sync() {
    let w = World::new(HR_DIR, &[]);
    let data: &[u8] = b"id,first,last,dept\n\
        1,Ada,Lovelace,R&D\n\
        2,Alan,Turing,R&D,extra\n\
        3,Gr\xffce,Hopper,Navy\n\
        ,No,Anchor,Ops\n\
        1,Ada,Again,Ops\n\
        4,Linus,Torvalds,Kernel\n";
    std::fs::write(w.path("hr.csv"), data).unwrap();
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!((c.stage_add, c.stage_failure), (1, 5), "{r:#?}");
    assert_eq!(r.steps[0].errors, 5);
    let mut errors: Vec<(String, String)> = w
        .store
        .read()
        .unwrap()
        .run_errors(r.id, 10)
        .unwrap()
        .into_iter()
        .map(|e| (e.error.error_type, e.error.detail))
        .collect();
    errors.sort();
    let kinds: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "duplicate-anchor",
            "duplicate-anchor",
            "invalid-utf8",
            "malformed-record",
            "missing-anchor"
        ]
    );
    let lines: Vec<bool> = errors
        .iter()
        .zip(["line 2", "line 6", "line 4", "line 3", "line 5"])
        .map(|((_, detail), line)| detail.contains(&format!("hr.csv {line}")))
        .collect();
    assert_eq!(lines, [true; 5], "{errors:#?}");
    // Neither of two rows with one anchor is read: no object.
    assert!(w.cs("hr", "1").is_none());
    assert!(w.cs("hr", "4").unwrap().pending_import.is_some());

    let r = w.run_ok("hr", "full-sync", RunStatus::Success);
    assert_eq!(sync_counters(&r).projections, 1);
    let mut people: Vec<String> = w
        .mv_all()
        .iter()
        .map(|m| m.get("employeeId").unwrap().to_text())
        .collect();
    people.sort();
    assert_eq!(people, ["4"]);
}

/// A black-box review (HIGH): the first of two rows with one employee id
/// was kept, so an old terminated record of a rehired person put first
/// changed the person (and deleted the account). An anchor on two rows of
/// a full import now leaves its object as it was (values, no pending
/// change, no delete, the error on it) and adds no new object; the file
/// put right flows as usual.
#[test]
fn an_anchor_on_two_rows_should_leave_its_object_as_it_was_and_add_none() {
    let w = synced_hr();
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Terminated\n1,Ada,Lovelace,R&D\n\
         2,Alan,Turing,R&D\n3,Grace,Hopper,Navy\n5,New,One,Ops\n5,Other,Two,Ops\n",
    );
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!(
        (c.stage_failure, c.staged(), c.stage_no_change),
        (4, 0, 2),
        "{c:?}"
    );
    let ada = w.cs("hr", "1").unwrap();
    assert!(ada.pending_import.is_none() && ada.present);
    assert_eq!(ada.hologram["dept"].to_text(), "R&D");
    let error = ada.error.unwrap();
    assert_eq!(error.error_type, "duplicate-anchor");
    assert!(
        error.detail.contains("lines 2 and 3 of hr.csv"),
        "{}",
        error.detail
    );
    assert!(w.cs("hr", "5").is_none());
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.projections, 0);
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("R&D"));

    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Math\n2,Alan,Turing,R&D\n3,Grace,Hopper,Navy\n\
         5,New,One,Ops\n",
    );
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_update, c.stage_add, c.stage_failure), (1, 1, 0));
    assert!(w.cs("hr", "1").unwrap().error.is_none());
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!(s.projections, 1);
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("Math"));
}

/// A delta import of a file compares it with the connector space: one row
/// changed, one gone and one new stage an update, a delete and an add, and
/// the unchanged row stages nothing.
#[test]
fn a_delta_import_of_a_file_should_stage_what_differs_from_the_connector_space() {
    let w = synced_hr();
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Math\n3,Grace,Hopper,Navy\n4,Linus,Torvalds,Kernel\n",
    );
    let r = w.run_ok("hr", "delta-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!(
        (
            c.stage_add,
            c.stage_update,
            c.stage_delete,
            c.stage_no_change
        ),
        (1, 1, 1, 1),
        "{r:#?}"
    );
    let kind = |anchor: &str| w.cs("hr", anchor).unwrap().pending_import.map(|p| p.kind);
    assert_eq!(kind("1"), Some(ImportKind::Update));
    assert_eq!(kind("2"), Some(ImportKind::Delete));
    assert_eq!(kind("3"), None);
    assert_eq!(kind("4"), Some(ImportKind::Add));
    // The delta sync applies exactly those.
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!((s.projections, s.disconnections), (1, 1), "{s:#?}");
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("Math"));
}

/// `HR_DIR` with HR in a SQLite table whose changelog triggers fill.
fn sqlite_config() -> String {
    HR_DIR.replace(
        r#"connector = { type = "csv", path = "hr.csv" }"#,
        r#"connector = { type = "sqlite", path = "hr.db", table = "people", delta = { kind = "changelog", table = "people_changelog", sequence_column = "seq", anchor_column = "id", operation_column = "op" } }"#,
    )
}

/// HR in a SQLite table with a changelog filled by triggers: three people,
/// imported and synchronised.
fn sqlite_hr() -> (World, rusqlite::Connection) {
    let w = World::new(&sqlite_config(), &[]);
    let db = rusqlite::Connection::open(w.path("hr.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE people (id TEXT PRIMARY KEY, first TEXT, last TEXT, dept TEXT);
         CREATE TABLE people_changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, op TEXT NOT NULL);
         CREATE TRIGGER people_ai AFTER INSERT ON people BEGIN INSERT INTO people_changelog(id, op) VALUES (NEW.id, 'I'); END;
         CREATE TRIGGER people_au AFTER UPDATE ON people BEGIN INSERT INTO people_changelog(id, op) VALUES (NEW.id, 'U'); END;
         CREATE TRIGGER people_ad AFTER DELETE ON people BEGIN INSERT INTO people_changelog(id, op) VALUES (OLD.id, 'D'); END;
         INSERT INTO people VALUES ('1', 'Ada', 'Lovelace', 'R&D'), ('2', 'Alan', 'Turing', 'R&D'),
           ('3', 'Grace', 'Hopper', 'Navy');",
    )
    .unwrap();
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!(c.stage_add, 3);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    (w, db)
}

/// A delta import from a SQLite changelog stages only the rows changed
/// since the last import's watermark; a second one finds nothing.
#[test]
fn a_delta_import_from_a_sqlite_changelog_should_stage_only_the_changes_since_its_watermark() {
    let (w, db) = sqlite_hr();

    db.execute_batch(
        "UPDATE people SET dept = 'Math' WHERE id = '1';
         DELETE FROM people WHERE id = '2';
         INSERT INTO people VALUES ('4', 'Linus', 'Torvalds', 'Kernel');",
    )
    .unwrap();
    let r = w.run_ok("hr", "delta-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!(
        (c.stage_add, c.stage_update, c.stage_delete),
        (1, 1, 1),
        "{r:#?}"
    );
    assert!(w.cs("hr", "3").unwrap().pending_import.is_none());
    // The watermark moved with the staged rows: nothing is read twice.
    let again = w.run_ok("hr", "delta-import", RunStatus::CompletedNoObjects);
    assert_eq!(import_counters(&again), Default::default());

    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!((s.projections, s.disconnections), (1, 1), "{s:#?}");
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("Math"));
    assert_eq!(w.mv_text("hr", "4", "firstName").as_deref(), Some("Linus"));
}

/// A delta import whose records partly fail does not move its watermark
/// past them: the next delta import reads the failed record again (with
/// what came after it), until it can be imported.
#[test]
fn a_delta_import_with_a_failed_record_should_keep_its_watermark_and_read_it_again() {
    let (w, db) = sqlite_hr();
    let before = w.store.read().unwrap().watermark("hr").unwrap();
    db.execute_batch(
        "UPDATE people SET first = CAST(X'41FF' AS TEXT) WHERE id = '2';
         UPDATE people SET dept = 'Math' WHERE id = '1';",
    )
    .unwrap();
    let r = w.run_ok("hr", "delta-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!((c.stage_failure, c.stage_update), (1, 1), "{r:#?}");
    assert!(
        r.steps[0]
            .message
            .as_deref()
            .unwrap()
            .contains("reads them again"),
        "{r:#?}"
    );
    assert_eq!(w.store.read().unwrap().watermark("hr").unwrap(), before);
    // Read again: the failure is still there, the good change is staged
    // once (nothing new to stage).
    let r = w.run_ok("hr", "delta-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!((c.stage_failure, c.staged()), (1, 0), "{r:#?}");
    // Fixed at the source: imported, and the watermark moves on.
    db.execute_batch("UPDATE people SET first = 'Alan' WHERE id = '2';")
        .unwrap();
    let r = w.run_ok("hr", "delta-import", RunStatus::Success);
    assert_eq!(import_counters(&r).stage_failure, 0);
    assert_ne!(w.store.read().unwrap().watermark("hr").unwrap(), before);
    w.run_ok("hr", "delta-import", RunStatus::CompletedNoObjects);
}

/// A known person whose row can no longer be read (a column of invalid
/// UTF-8) keeps the object: the full import records the error on it and
/// stages no delete, so nothing downstream is deprovisioned. Once the row
/// is fixed, the error goes.
#[test]
fn a_known_sqlite_row_that_turns_unreadable_should_keep_its_object_and_carry_the_error() {
    let (w, db) = sqlite_hr();
    db.execute_batch("UPDATE people SET first = CAST(X'41FF' AS TEXT) WHERE id = '2';")
        .unwrap();
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!((c.stage_failure, c.stage_delete), (1, 0), "{r:#?}");
    let alan = w.cs("hr", "2").unwrap();
    assert!(alan.pending_import.is_none(), "{alan:#?}");
    assert_eq!(alan.error.unwrap().error_type, "invalid-utf8");

    db.execute_batch("UPDATE people SET first = 'Alan' WHERE id = '2';")
        .unwrap();
    w.run_ok("hr", "full-import", RunStatus::Success);
    assert!(w.cs("hr", "2").unwrap().error.is_none());
    assert_eq!(w.mv_all().len(), 3);
}

/// The same for a JSON-lines source: a line that is no longer valid but
/// still names its anchor keeps its object.
#[test]
fn a_known_json_line_that_turns_invalid_should_keep_its_object_and_carry_the_error() {
    let config = HR_DIR.replace(
        r#"connector = { type = "csv", path = "hr.csv" }"#,
        r#"connector = { type = "jsonl", path = "hr.jsonl" }"#,
    );
    let lines = |second: &str| {
        format!(
            "{{\"id\": \"1\", \"first\": \"Ada\", \"last\": \"Lovelace\", \"dept\": \"R&D\"}}\n{second}\n{{\"id\": \"3\", \"first\": \"Grace\"}}\n"
        )
    };
    let w = World::new(
        &config,
        &[("hr.jsonl", &lines(r#"{"id": "2", "first": "Alan"}"#))],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.write(
        "hr.jsonl",
        &lines(r#"{"id": "2", "first": {"given": "Alan"}}"#),
    );
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!((c.stage_failure, c.stage_delete), (1, 0), "{r:#?}");
    let alan = w.cs("hr", "2").unwrap();
    assert!(alan.pending_import.is_none(), "{alan:#?}");
    assert_eq!(alan.error.unwrap().error_type, "invalid-value");
}

/// A person whose object type changes in the source (a type column: an
/// employee becomes a contractor) and whom the join rules still join:
/// the same metaverse object, an update; the account provisioning made
/// stays (found by a black-box review: the person was deleted with their
/// account while the connector pointed at the deleted object, and with
/// references every later sync of the MA stopped on it).
#[test]
fn an_object_type_change_joined_to_the_same_person_should_keep_the_person_and_the_account() {
    let config = r#"
[metaverse.person]
attributes = ["employeeId", "name", "manager"]
references = { manager = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv", object_type_column = "kind" }
object_types = [
  { name = "employee", anchor = "id", references = { boss = "anchor" } },
  { name = "contractor", anchor = "id", references = { boss = "anchor" } },
]
join = [
  { object_type = "employee", mv_type = "person", on = [{ cs = "id", mv = "employeeId" }] },
  { object_type = "contractor", mv_type = "person", on = [{ cs = "id", mv = "employeeId" }] },
]
projection = [{ object_type = "employee", mv_type = "person" }, { object_type = "contractor", mv_type = "person" }]
import_flows = [
  { object_type = "employee", mv_type = "person", mv = "employeeId", from = "id" },
  { object_type = "employee", mv_type = "person", mv = "name", from = "name" },
  { object_type = "employee", mv_type = "person", mv = "manager", from = "boss" },
  { object_type = "contractor", mv_type = "person", mv = "employeeId", from = "id" },
  { object_type = "contractor", mv_type = "person", mv = "name", from = "name" },
  { object_type = "contractor", mv_type = "person", mv = "manager", from = "boss" },
]

[[ma]]
name = "app"
connector = { type = "csv", path = "app.csv" }
object_types = [{ name = "user", anchor = "uid" }]
deprovisioning = "delete"
export_deletion_threshold = "off"
export_flows = [{ mv_type = "person", cs = "name", from = "name" }]
provisioning = [{ mv_type = "person", object_type = "user", anchor = "employeeId" }]
"#;
    let w = World::new(
        config,
        &[(
            "hr.csv",
            "id,kind,name,boss\n1,employee,Ada,\n2,employee,Alan,1\n",
        )],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run_ok("app", "export", RunStatus::Success);
    w.run_ok("app", "full-import", RunStatus::Success);
    let ada = w.mv_of("hr", "1").unwrap().id;
    w.write(
        "hr.csv",
        "id,kind,name,boss\n1,contractor,Ada L,\n2,employee,Alan,1\n",
    );
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!(c.stage_delete_add, 1, "{c:?}");
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!((s.deleted, s.projections), (0, 0), "{s:?}");
    assert_eq!(w.mv_of("hr", "1").unwrap().id, ada, "the same person");
    assert_eq!(w.cs("hr", "1").unwrap().object_type, "contractor");
    w.run("app", "export");
    let app = w.read("app.csv");
    assert!(app.contains("1,Ada L"), "{app}");
    assert!(app.contains("2,Alan"), "{app}");
    // Later syncs go on.
    w.run_ok("hr", "full-sync", RunStatus::Success);
}
