//! A configuration edited while nothing ran is noticed: the engine records
//! the rules each sync ran under, and names the MAs whose rules (or, for a
//! source, the metaverse schema and other MAs' outbound rules) changed
//! since their last full sync.

use crate::fixture::*;
use autosync_model::RunStatus;

fn needed(w: &World) -> Vec<(String, String)> {
    w.engine
        .full_syncs_needed()
        .unwrap()
        .into_iter()
        .map(|n| (n.ma, n.because))
        .collect()
}

fn names(w: &World) -> Vec<String> {
    needed(w).into_iter().map(|(ma, _)| ma).collect()
}

fn synced() -> World {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    assert!(names(&w).is_empty(), "a new store needs nothing");
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run_ok("dir", "export", RunStatus::Success);
    w.run_ok("dir", "full-import", RunStatus::Success);
    w.run_ok("dir", "delta-sync", RunStatus::CompletedNoObjects);
    assert!(names(&w).is_empty());
    w
}

#[test]
fn an_edited_import_flow_should_ask_for_a_full_sync_of_its_ma_until_one_ran() {
    let mut w = synced();
    w.reconfigure(&HR_DIR.replace(
        r#"{ mv = "department", from = "dept" }"#,
        r#"{ mv = "department", expr = "upper(dept)" }"#,
    ));
    let n = needed(&w);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].0, "hr");
    assert!(n[0].1.contains("rules changed"), "{n:?}");
    // A delta sync does not re-apply the rules.
    w.run_ok("hr", "delta-sync", RunStatus::CompletedNoObjects);
    assert_eq!(names(&w), ["hr"]);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    assert!(names(&w).is_empty());
}

#[test]
fn an_edited_export_flow_should_ask_for_full_syncs_of_its_ma_and_of_the_sources() {
    let mut w = synced();
    w.reconfigure(&HR_DIR.replace(
        r#"{ cs = "dept", from = "department" }"#,
        r#"{ cs = "dept", expr = "lower(department)" }"#,
    ));
    assert_eq!(names(&w), ["hr", "dir"]);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    assert_eq!(names(&w), ["dir"]);
}

#[test]
fn a_precedence_or_deletion_rule_change_should_count_as_a_rules_change() {
    let mut w = synced();
    w.reconfigure(&HR_DIR.replace(
        "[[ma]]\nname = \"hr\"",
        "deletion = { rule = \"never\" }\n\n[[ma]]\nname = \"hr\"",
    ));
    let n = needed(&w);
    assert_eq!(names(&w), ["hr"], "{n:?}");
    assert!(n[0].1.contains("metaverse schema"), "{n:?}");
}

#[test]
fn a_threshold_or_connector_setting_change_should_not_ask_for_a_full_sync() {
    let mut w = synced();
    w.reconfigure(&HR_DIR.replace(
        "deprovisioning = \"delete\"",
        "deprovisioning = \"delete\"\nexport_deletion_threshold = 7\nstaging_thresholds = { adds = 3 }",
    ));
    assert!(names(&w).is_empty(), "{:?}", needed(&w));
}
