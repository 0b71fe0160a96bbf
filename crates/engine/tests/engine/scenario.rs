//! End-to-end scenarios over several MAs.

use crate::fixture::*;
use autosync_model::RunStatus;
use autosync_store::CsFilter;

#[test]
fn hr_changes_should_flow_to_a_provisioned_csv_directory_and_be_confirmed() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.projections, 3);
    assert_eq!(s.outbound["dir"].provisioned_adds, 3);
    let e = export_counters(&w.run_ok("dir", "export", RunStatus::Success));
    assert_eq!(e.adds, 3);
    let dir = w.read("dir.csv");
    assert!(dir.contains("ada.1,R&D,1,Ada Lovelace"), "{dir}");
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!(c.export_confirmed, 3);
    assert_eq!(c.staged(), 0);
    assert!(w.cs_all("dir", CsFilter::UnconfirmedExport).is_empty());
    assert!(w.cs("dir", "ada.1").unwrap().present);
    w.run_ok("hr", "delta-sync", RunStatus::CompletedNoObjects);

    // An update flows through.
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Math\n2,Alan,Turing,R&D\n3,Grace,Hopper,Navy\n",
    );
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_update, c.stage_no_change), (1, 2));
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!(s.connectors_with_flow_updates, 1);
    assert_eq!(s.outbound["dir"].export_attribute_flow, 1);
    assert_eq!(
        export_counters(&w.run_ok("dir", "export", RunStatus::Success)).updates,
        1
    );
    assert!(w.read("dir.csv").contains("ada.1,Math,1,Ada Lovelace"));
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!((c.export_confirmed, c.staged()), (1, 0));

    // A delete deletes the person and deprovisions the directory entry.
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Math\n2,Alan,Turing,R&D\n",
    );
    assert_eq!(
        import_counters(&w.run_ok("hr", "full-import", RunStatus::Success)).stage_delete,
        1
    );
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!((s.disconnections, s.deleted), (1, 1));
    assert_eq!(s.outbound["dir"].provisioned_disconnects, 1);
    assert_eq!(w.mv_all().len(), 2);
    assert_eq!(
        export_counters(&w.run_ok("dir", "export", RunStatus::Success)).deletes,
        1
    );
    assert!(!w.read("dir.csv").contains("Hopper"));
    assert!(w.cs("dir", "grace.3").is_none());
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!(c.staged(), 0);
}
