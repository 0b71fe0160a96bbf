//! An import after one held at the staging threshold: what it leaves
//! staged never reached the metaverse, so it counts and records it against
//! the hologram (what the metaverse last saw), not against what the held
//! import staged. Found by a black-box review: the import that lifted a
//! hold and left one delete staged counted `stage-no-change` for every
//! object and recorded no change, and the next sync deleted the object
//! with no import's history showing it.

use crate::fixture::*;
use autosync_model::{ChangeKind, RunChange, RunId, RunRecord, RunStatus};
use autosync_store::Store;

const CONFIG: &str = r#"
[store]
path = "state.db"

[metaverse.person]
attributes = ["employeeId", "displayName"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "employee_id" }]
projection = [{ }]
import_flows = [
  { mv = "employeeId", from = "employee_id" },
  { mv = "displayName", from = "name" },
]
"#;

/// HR rows E`from`..=E`to`, each named `N<i>` but for `renamed` (named
/// `New<i>`).
fn rows(from: usize, to: usize, renamed: &[usize]) -> String {
    let mut text = String::from("employee_id,name\n");
    for i in from..=to {
        let name = match renamed.contains(&i) {
            true => format!("New{i}"),
            false => format!("N{i}"),
        };
        text.push_str(&format!("E{i},{name}\n"));
    }
    text
}

/// 30 people imported and synced, then a file of E20..E30 imported: its
/// 19 deletes are over the default staging threshold, held.
fn held() -> (World, RunRecord) {
    let w = World::new(CONFIG, &[("hr.csv", &rows(1, 30, &[]))]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.write("hr.csv", &rows(20, 30, &[]));
    let r = w.run_ok(
        "hr",
        "full-import",
        RunStatus::StoppedStagingThresholdExceeded,
    );
    let c = import_counters(&r);
    assert_eq!((c.stage_delete, c.stage_no_change), (19, 11), "{c:?}");
    (w, r)
}

fn changes(w: &World, run: &RunRecord) -> Vec<(String, ChangeKind)> {
    let mut out: Vec<(String, ChangeKind)> = w
        .store
        .read()
        .unwrap()
        .run_changes(run.id, 0, 100_000)
        .unwrap()
        .into_iter()
        .map(|c: RunChange| (c.object, c.kind))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn hold_run(w: &World) -> Option<RunId> {
    autosync_engine::thresholds::staging_hold(w.store.as_ref(), "hr")
        .unwrap()
        .map(|h| h.run_id)
}

#[test]
fn the_import_that_lifts_a_hold_should_count_and_record_the_delete_it_leaves() {
    let (w, _) = held();
    // E1 alone missing: E2..E19's held deletes are cancelled, E1's stays.
    w.write("hr.csv", &rows(2, 30, &[]));
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!(c.stage_delete, 1, "{c:?}");
    assert_eq!(c.stage_no_change, 29, "{c:?}");
    // Every object read (29) and every delete (1), counted once.
    assert_eq!(c.staged() + c.stage_no_change, 30, "{c:?}");
    assert_eq!(changes(&w, &r), vec![("E1".to_owned(), ChangeKind::Delete)]);
    assert_eq!(hold_run(&w), None);
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!(s.deleted, 1, "{s:?}");
}

#[test]
fn a_held_update_kept_by_the_lifting_import_should_be_counted_and_recorded() {
    let w = World::new(CONFIG, &[("hr.csv", &rows(1, 30, &[]))]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    // E25 renamed in the cut file, and still in the one after it.
    w.write("hr.csv", &rows(20, 30, &[25]));
    let held = w.run_ok(
        "hr",
        "full-import",
        RunStatus::StoppedStagingThresholdExceeded,
    );
    let c = import_counters(&held);
    assert_eq!((c.stage_delete, c.stage_update), (19, 1), "{c:?}");
    w.write("hr.csv", &rows(2, 30, &[25]));
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!(
        (c.stage_delete, c.stage_update, c.stage_no_change),
        (1, 1, 28),
        "{c:?}"
    );
    assert_eq!(
        changes(&w, &r),
        vec![
            ("E1".to_owned(), ChangeKind::Delete),
            ("E25".to_owned(), ChangeKind::Update)
        ]
    );
    w.run_ok("hr", "delta-sync", RunStatus::Success);
    assert_eq!(
        w.mv_text("hr", "E25", "displayName").as_deref(),
        Some("New25")
    );
}

#[test]
fn the_whole_file_back_should_cancel_every_held_delete_and_count_no_change() {
    let (w, _) = held();
    w.write("hr.csv", &rows(1, 30, &[]));
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!((c.staged(), c.stage_no_change), (0, 30), "{c:?}");
    assert_eq!(changes(&w, &r), vec![]);
    assert_eq!(hold_run(&w), None);
    w.run_ok("hr", "delta-sync", RunStatus::CompletedNoObjects);
}

#[test]
fn the_same_cut_file_again_should_count_as_the_held_import_and_stay_held() {
    let (w, first) = held();
    let r = w.run_ok(
        "hr",
        "full-import",
        RunStatus::StoppedStagingThresholdExceeded,
    );
    let c = import_counters(&r);
    assert_eq!((c.stage_delete, c.stage_no_change), (19, 11), "{c:?}");
    assert_eq!(changes(&w, &r), changes(&w, &first));
    assert_eq!(changes(&w, &r).len(), 19);
    // Still the first run's hold, with the figures of what is staged now.
    assert_eq!(hold_run(&w), Some(first.id));
    let message = r.steps[0].message.clone().unwrap_or_default();
    assert!(message.contains("still holds"), "{message}");
    w.run_ok(
        "hr",
        "delta-sync",
        RunStatus::StoppedStagingThresholdExceeded,
    );
}

#[test]
fn an_import_after_an_approval_should_count_against_what_is_staged() {
    // Approved, the held changes may flow: an import before the sync
    // stages nothing new (as any import after one that staged).
    let (w, _) = held();
    w.engine.approve("hr").unwrap();
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!((c.staged(), c.stage_no_change), (0, 30), "{c:?}");
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!(s.deleted, 19, "{s:?}");
}
