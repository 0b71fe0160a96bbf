//! Provisioning, export and confirming imports against a CSV directory.

use crate::fixture::*;
use autosync_engine::deletion_approval_key;
use autosync_model::{ExportKind, RunStatus};
use autosync_store::{CsFilter, Store as _};

/// HR imported, synchronised, exported to the directory and confirmed.
fn exported(config: &str) -> World {
    let w = World::new(config, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run_ok("dir", "export", RunStatus::Success);
    w.run_ok("dir", "full-import", RunStatus::Success);
    w
}

fn hr_round(w: &World, hr_csv: &str) -> autosync_model::SyncCounters {
    w.write("hr.csv", hr_csv);
    w.run_ok("hr", "full-import", RunStatus::Success);
    sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success))
}

#[test]
fn provisioning_should_stage_an_export_add_with_every_flow_value() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.outbound["dir"].provisioned_adds, 3);
    let ada = w.cs("dir", "ada.1").unwrap();
    assert!(!ada.present);
    let p = ada.pending_export.unwrap();
    assert_eq!(p.kind, ExportKind::Add);
    assert_eq!(
        p.changes["name"].as_ref().unwrap().to_text(),
        "Ada Lovelace"
    );
    assert_eq!(p.changes["employee"].as_ref().unwrap().to_text(), "1");
    assert_eq!(
        ada.connection.mv_id(),
        w.cs("hr", "1").unwrap().connection.mv_id()
    );
}

#[test]
fn export_should_move_pending_exports_to_unconfirmed_and_a_confirming_import_should_clear_them() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let e = export_counters(&w.run_ok("dir", "export", RunStatus::Success));
    assert_eq!(e.adds, 3);
    let ada = w.cs("dir", "ada.1").unwrap();
    assert!(ada.pending_export.is_none());
    assert_eq!(ada.unconfirmed_export.unwrap().kind, ExportKind::Add);
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!((c.export_confirmed, c.staged()), (3, 0));
    let ada = w.cs("dir", "ada.1").unwrap();
    assert!(ada.unconfirmed_export.is_none() && ada.pending_import.is_none() && ada.present);
    assert_eq!(ada.hologram["name"].to_text(), "Ada Lovelace");
    // Nothing left to do anywhere.
    w.run_ok("dir", "delta-sync", RunStatus::CompletedNoObjects);
    w.run_ok("dir", "export", RunStatus::CompletedNoObjects);
}

#[test]
fn a_confirming_import_that_sees_other_values_should_stage_them_and_sync_should_export_again() {
    let w = exported(HR_DIR);
    hr_round(
        &w,
        &HR_CSV.replace("2,Alan,Turing,R&D", "2,Alan,Turing,Research"),
    );
    w.run_ok("dir", "export", RunStatus::Success);
    // Someone changes the row before the confirming import.
    let edited = w.read("dir.csv").replace("alan.2,Research", "alan.2,Sales");
    w.write("dir.csv", &edited);
    // A warning (MIM's exported-change-not-reimported); sent once more.
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::CompletedWarnings));
    assert_eq!(
        (c.export_confirmed, c.stage_update, c.export_not_reimported),
        (0, 1, 1)
    );
    assert!(w.cs("dir", "alan.2").unwrap().unconfirmed_export.is_none());
    let s = sync_counters(&w.run_ok("dir", "delta-sync", RunStatus::Success));
    assert_eq!(s.outbound["dir"].export_attribute_flow, 1);
    w.run_ok("dir", "export", RunStatus::Success);
    assert!(w.read("dir.csv").contains("alan.2,Research"));
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!((c.export_confirmed, c.staged()), (1, 0));
}

#[test]
fn a_failed_export_should_keep_its_pending_export_and_succeed_on_a_later_run_once_fixed() {
    let w = exported(HR_DIR);
    // Someone removes Ada's row; we do not import the directory.
    let original = w.read("dir.csv");
    let without_ada: String = original
        .lines()
        .filter(|l| !l.starts_with("ada.1"))
        .map(|l| format!("{l}\n"))
        .collect();
    w.write("dir.csv", &without_ada);
    hr_round(
        &w,
        &HR_CSV.replace("1,Ada,Lovelace,R&D", "1,Ada,Lovelace,Math"),
    );
    let r = w.run_ok("dir", "export", RunStatus::CompletedExportErrors);
    assert_eq!(export_counters(&r).failures, 1);
    let ada = w.cs("dir", "ada.1").unwrap();
    assert!(ada.pending_export.is_some());
    assert_eq!(ada.error.as_ref().unwrap().error_type, "object-not-found");
    assert_eq!(
        w.store.read().unwrap().run_errors(r.id, 10).unwrap().len(),
        1
    );
    // The row comes back: the next export applies the update.
    w.write("dir.csv", &original);
    let e = export_counters(&w.run_ok("dir", "export", RunStatus::Success));
    assert_eq!(e.updates, 1);
    let ada = w.cs("dir", "ada.1").unwrap();
    assert!(ada.pending_export.is_none() && ada.error.is_none());
    assert!(w.read("dir.csv").contains("ada.1,Math"));
}

const RENAMING: &str = r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "lastName", "department"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "firstName", from = "first" },
  { mv = "lastName", from = "last" },
  { mv = "department", from = "dept" },
]

[[ma]]
name = "dir"
connector = { type = "csv", path = "dir.csv" }
object_types = [{ name = "user", anchor = "uid", dn = "cn" }]
deprovisioning = "delete"
export_threshold_placeholder = 0
export_flows = [{ cs = "dept", from = "department" }]
provisioning = [{ mv_type = "person", object_type = "user", anchor = '"u" + employeeId', dn = 'firstName + " " + lastName', condition = 'department != "Gone"' }]
"#;

fn renaming(threshold: Option<u64>) -> String {
    let line = threshold
        .map(|t| format!("export_deletion_threshold = {t}"))
        .unwrap_or_default();
    RENAMING.replace("export_threshold_placeholder = 0", &line)
}

#[test]
fn a_provisioned_display_key_change_should_stage_and_export_a_rename() {
    let w = exported(&renaming(None));
    assert_eq!(w.cs("dir", "u1").unwrap().dn, "Ada Lovelace");
    let s = hr_round(&w, &HR_CSV.replace("1,Ada,Lovelace", "1,Ada,King"));
    assert_eq!(s.outbound["dir"].provisioned_renames, 1);
    assert_eq!(
        w.cs("dir", "u1").unwrap().pending_export.unwrap().kind,
        ExportKind::Rename
    );
    assert_eq!(
        export_counters(&w.run_ok("dir", "export", RunStatus::Success)).renames,
        1
    );
    assert!(w.read("dir.csv").contains("Ada King"));
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!((c.export_confirmed, c.staged()), (1, 0));
    assert_eq!(w.cs("dir", "u1").unwrap().dn, "Ada King");
}

#[test]
fn an_object_that_no_longer_meets_the_provisioning_condition_should_be_deprovisioned() {
    let w = exported(&renaming(None));
    let s = hr_round(
        &w,
        &HR_CSV.replace("1,Ada,Lovelace,R&D", "1,Ada,Lovelace,Gone"),
    );
    assert_eq!(s.outbound["dir"].provisioned_disconnects, 1);
    assert_eq!(
        w.cs("dir", "u1").unwrap().pending_export.unwrap().kind,
        ExportKind::Delete
    );
    assert_eq!(
        export_counters(&w.run_ok("dir", "export", RunStatus::Success)).deletes,
        1
    );
    assert!(!w.read("dir.csv").contains("u1,"));
    assert!(w.cs("dir", "u1").is_none());
    // The person stays in the metaverse.
    assert!(w.mv_of("hr", "1").is_some());
}

#[test]
fn an_export_over_the_deletion_threshold_should_stop_until_approved_once() {
    let w = exported(&renaming(Some(1)));
    hr_round(&w, "id,first,last,dept\n3,Grace,Hopper,Navy\n");
    let before = w.read("dir.csv");
    let r = w.run_ok("dir", "export", RunStatus::StoppedDeletionThresholdExceeded);
    assert!(
        r.steps[0]
            .message
            .as_deref()
            .unwrap()
            .contains("2 pending export deletes")
    );
    assert_eq!(w.read("dir.csv"), before, "nothing was sent");
    assert_eq!(w.cs_all("dir", CsFilter::PendingExport).len(), 2);
    w.engine.approve_deletions("dir").unwrap();
    let e = export_counters(&w.run_ok("dir", "export", RunStatus::Success));
    assert_eq!(e.deletes, 2);
    assert_eq!(
        w.store
            .read()
            .unwrap()
            .meta(&deletion_approval_key("dir"))
            .unwrap(),
        None
    );
    // The approval was consumed: the next mass deletion stops again.
    hr_round(&w, HR_CSV);
    w.run_ok("dir", "export", RunStatus::Success);
    w.run_ok("dir", "full-import", RunStatus::Success);
    hr_round(&w, "id,first,last,dept\n");
    w.run_ok("dir", "export", RunStatus::StoppedDeletionThresholdExceeded);
}

#[test]
fn a_provisioned_object_should_take_each_attribute_from_its_last_flow_that_gives_a_value() {
    // Flows in no particular order of their attributes; two write `dept`,
    // and of two that write `title` the later gives nothing.
    let flows = r#"export_flows = [
  { cs = "zeta", from = "lastName" },
  { cs = "dept", from = "department" },
  { cs = "title", expr = 'firstName + "!"' },
  { cs = "alpha", from = "firstName" },
  { cs = "dept", expr = '"x-" + department' },
  { cs = "title", from = "nothing" },
]"#;
    let config = renaming(None)
        .replace(
            r#"export_flows = [{ cs = "dept", from = "department" }]"#,
            flows,
        )
        .replace(
            r#"attributes = ["employeeId", "firstName", "lastName", "department"]"#,
            r#"attributes = ["employeeId", "firstName", "lastName", "department", "nothing"]"#,
        );
    let w = World::new(&config, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let p = w.cs("dir", "u1").unwrap().pending_export.unwrap();
    assert_eq!(p.kind, ExportKind::Add);
    let changes: Vec<(String, String)> = p
        .changes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_ref().map(|v| v.to_text()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("alpha".to_owned(), "Ada".to_owned()),
            ("dept".to_owned(), "x-R&D".to_owned()),
            ("title".to_owned(), "Ada!".to_owned()),
            ("zeta".to_owned(), "Lovelace".to_owned()),
        ]
    );
}

#[test]
fn of_several_failing_export_flows_the_first_configured_should_be_the_objects_error() {
    let flows = r#"export_flows = [
  { cs = "alpha", expr = 'to_string(to_int(firstName))' },
  { cs = "zeta", expr = 'to_string(to_int(lastName))' },
]"#;
    let config = renaming(None).replace(
        r#"export_flows = [{ cs = "dept", from = "department" }]"#,
        flows,
    );
    let w = World::new(&config, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::CompletedSyncErrors);
    let error = w.cs("hr", "1").unwrap().error.unwrap();
    assert_eq!(error.error_type, "expression-failed");
    assert!(
        error.detail.contains("export flow of `dir` to `alpha`"),
        "{}",
        error.detail
    );
}
