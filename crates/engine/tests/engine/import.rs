//! Import staging.

use crate::fixture::*;
use autosync_model::{ImportKind, RunStatus};

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
