//! `history RUN_ID` shows the run's per-object changes: a manager change
//! as `old -> new`, a member added as `+value`, in the import that staged
//! them and in the export that sent them; `--json` adds `changes`;
//! `--changes`/`--errors` keep one of the two lists; `--limit` and
//! `--offset` page the changes.

use super::support::*;
use serde_json::Value;

const CONFIG: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "mail", "manager"]
references = { manager = "person" }

[metaverse.group]
attributes = ["groupId", "members"]
references = { members = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id", references = { manager_id = "anchor" } }]
join = [{ mv_type = "person", on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv_type = "person", mv = "employeeId", from = "id" },
  { mv_type = "person", mv = "mail", from = "mail" },
  { mv_type = "person", mv = "manager", from = "manager_id" },
]

[[ma]]
name = "groups"
connector = { type = "csv", path = "groups.csv", multi_valued = ["members"], multi_value_separator = ";" }
object_types = [{ name = "group", anchor = "gid", references = { members = { by = "anchor", ma = "hr" } } }]
join = [{ mv_type = "group", on = [{ cs = "gid", mv = "groupId" }] }]
projection = [{ mv_type = "group" }]
import_flows = [
  { mv_type = "group", mv = "groupId", from = "gid" },
  { mv_type = "group", mv = "members", from = "members" },
]

[[ma]]
name = "dir"
connector = { type = "jsonl", path = "dir.jsonl", object_type_column = "kind" }
object_types = [
  { name = "account", anchor = "id", dn = "mail", references = { manager = "dn" } },
  { name = "group", anchor = "id", references = { member = "dn" } },
]
export_flows = [
  { object_type = "account", mv_type = "person", cs = "mail", from = "mail" },
  { object_type = "account", mv_type = "person", cs = "manager", from = "manager" },
  { object_type = "group", mv_type = "group", cs = "member", from = "members" },
]
provisioning = [
  { mv_type = "person", object_type = "account", anchor = "employeeId", dn = "mail" },
  { mv_type = "group", object_type = "group", anchor = "groupId" },
]
"#;

const HR: &str = "id,mail,manager_id
E1,a@x,
E4,d@x,
E5,e@x,E4
E6,f@x,
";

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"\d+\.\d{3} s", "[duration]");
    s
}

/// The id of the last run of `ma` / `profile`.
fn last(w: &Workdir, ma: &str, profile: &str) -> String {
    let v: Value = serde_json::from_str(&w.expect(&["history", "--ma", ma, "--json"], 0)).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["profile"] == profile)
        .map(|r| r["id"].to_string())
        .unwrap()
}

fn run(w: &Workdir, ma: &str, profile: &str) {
    w.expect(&["run-profile", ma, profile, "--no-progress"], 0);
}

#[test]
fn history_of_a_run_should_show_a_manager_change_and_a_member_added_as_one_value_each() {
    let w = Workdir::with_config(CONFIG);
    std::fs::write(w.path().join("hr.csv"), HR).unwrap();
    std::fs::write(w.path().join("groups.csv"), "gid,members\nG1,E1;E4\n").unwrap();
    std::fs::write(w.path().join("dir.jsonl"), "").unwrap();
    for (ma, profile) in [
        ("hr", "full-import"),
        ("groups", "full-import"),
        ("hr", "full-sync"),
        ("groups", "full-sync"),
        ("dir", "export"),
        ("dir", "full-import"),
        ("dir", "delta-sync"),
    ] {
        run(&w, ma, profile);
    }
    // The first import: every person added, with their attributes.
    let first = w.expect(&["history", &last(&w, "hr", "full-import")], 0);
    assert!(first.contains("    E5  add  id: E5\n"), "{first}");
    assert!(first.contains("             manager_id: E4\n"), "{first}");

    // E5 gets E1 as manager; E6 joins G1.
    w.edit("hr.csv", |t| t.replace("E5,e@x,E4", "E5,e@x,E1"));
    std::fs::write(w.path().join("groups.csv"), "gid,members\nG1,E1;E4;E6\n").unwrap();
    run(&w, "hr", "full-import");
    run(&w, "groups", "full-import");
    run(&w, "hr", "delta-sync");
    run(&w, "groups", "delta-sync");
    run(&w, "dir", "export");
    let hr = w.expect(&["history", &last(&w, "hr", "full-import")], 0);
    let groups = w.expect(&["history", &last(&w, "groups", "full-import")], 0);
    let export = w.expect(&["history", &last(&w, "dir", "export")], 0);
    assert!(
        hr.ends_with("  changes:\n    E5  update  manager_id: E4 -> E1\n"),
        "{hr}"
    );
    assert!(
        groups.ends_with("  changes:\n    G1  update  members: +E6\n"),
        "{groups}"
    );
    assert!(
        export.contains("    E5  update  manager: d@x -> a@x\n"),
        "{export}"
    );
    // A file takes whole lists: it was sent three, one of them added.
    assert!(
        export.contains("    G1  update  member: +f@x (sent as the whole value, 3 values)\n"),
        "{export}"
    );
    settings().bind(|| insta::assert_snapshot!("history_run_changes_export", export));

    // JSON: `changes`, each with its attributes' operations.
    let id = last(&w, "dir", "export");
    let v: Value = serde_json::from_str(&w.expect(&["history", &id, "--json"], 0)).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{v:#}");
    let of = |object: &str| {
        changes
            .iter()
            .find(|c| c["object"] == object)
            .unwrap_or_else(|| panic!("no {object} in {v:#}"))
    };
    assert_eq!(
        of("E5")["attributes"]["manager"],
        serde_json::json!({ "op": "replace", "new": "a@x", "old": "d@x" })
    );
    assert_eq!(of("E5")["dn"], "e@x");
    assert_eq!(of("E5")["kind"], "update");
    assert_eq!(
        of("G1")["attributes"]["member"],
        serde_json::json!({ "op": "values", "add": ["f@x"], "sent_whole": 3 })
    );
    assert_eq!(v["errors"], serde_json::json!([]));
    let json = serde_json::to_string_pretty(&v["changes"]).unwrap();
    insta::assert_snapshot!("history_run_changes_export_json", json);

    // One list or the other; pages of changes.
    let only = w.expect(&["history", &id, "--errors", "--json"], 0);
    let only: Value = serde_json::from_str(&only).unwrap();
    assert!(only.get("changes").is_none() && only.get("errors").is_some());
    let only: Value =
        serde_json::from_str(&w.expect(&["history", &id, "--changes", "--json"], 0)).unwrap();
    assert!(only.get("errors").is_none() && only.get("changes").is_some());
    let page = w.expect(&["history", &id, "--limit", "1"], 0);
    assert!(
        page.ends_with("  showing changes 1-1 of 2; next: --offset 1\n"),
        "{page}"
    );
    let page = w.expect(&["history", &id, "--limit", "1", "--offset", "1"], 0);
    assert!(page.ends_with("  showing changes 2-2 of 2\n"), "{page}");
    let none = w.expect(&["history", &id, "--errors"], 0);
    assert!(!none.contains("changes"), "{none}");
}
