//! A reference that names two objects: the error kept with the referrer
//! names them as commands take them (review of session 47).

use crate::fixture::*;
use autosync_model::RunStatus;

/// A DN two objects have (they differ in case) names neither: the error
/// kept with the referrer names them as commands take them, by anchor
/// and DN, never by internal ids.
#[test]
fn an_ambiguous_reference_names_the_objects_by_anchor_and_dn() {
    const BY_DN: &str = r#"
[metaverse.person]
attributes = ["employeeId", "manager"]
references = { manager = "person" }

[[ma]]
name = "ad"
connector = { type = "jsonl", path = "ad.jsonl" }
object_types = [{ name = "person", anchor = "id", dn = "dn", references = { manager = "dn" } }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "manager", from = "manager" },
]
"#;
    let lines = [
        r#"{"id":"a1","dn":"cn=Ann,ou=p","manager":"cn=bob,ou=p"}"#,
        r#"{"id":"x9","dn":"cn=Bob,ou=p"}"#,
        r#"{"id":"y8","dn":"CN=bob,ou=p"}"#,
    ];
    let w = World::new(BY_DN, &[("ad.jsonl", &format!("{}\n", lines.join("\n")))]);
    w.run_ok("ad", "full-import", RunStatus::Success);
    w.run_ok("ad", "full-sync", RunStatus::CompletedSyncErrors);
    let error = w
        .cs("ad", "a1")
        .unwrap()
        .error
        .expect("the referrer's error");
    assert_eq!(error.error_type, "ambiguous-reference");
    assert!(
        error.detail.contains("names 2 objects of `ad`")
            && error.detail.contains("x9 (cn=Bob,ou=p)")
            && error.detail.contains("y8 (CN=bob,ou=p)"),
        "{}",
        error.detail
    );
    assert!(
        !error.detail.contains("connector-space id"),
        "{}",
        error.detail
    );
}
