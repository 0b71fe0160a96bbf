//! `autosync cs`: the state of each object as the sync sees it (a filtered
//! disconnector is worked out from the MA's filters, not stored), and what
//! `--unresolved` says of a reference by anchor that misses an object only
//! by case.

use super::support::Workdir;
use serde_json::{Value, json};

/// `hr` holds out test accounts (filter #1), fails to evaluate filter #2
/// on a row whose `note` is text (a condition must be true or false), and
/// projects everyone but the pending.
const HR: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "status", "manager"]
references = { manager = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id", references = { mgr = "anchor" } }]
filters = [{ condition = 'status == "test"' }, { condition = 'note' }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person", condition = 'status != "pending"' }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "status", from = "status" },
  { mv = "manager", from = "mgr" },
]
"#;

fn json_of(w: &Workdir, args: &[&str]) -> Vec<Value> {
    serde_json::from_str(&w.expect(args, 0)).unwrap()
}

/// The row of the object anchored `anchor` in `cs`'s table.
fn row<'t>(text: &'t str, anchor: &str) -> &'t str {
    text.lines()
        .find(|l| l.starts_with(&format!("{anchor} ")))
        .unwrap_or_else(|| panic!("no row of {anchor}:\n{text}"))
}

/// A test account the filter holds out is a filtered disconnector, told
/// apart from one that waits for a join; an object whose pending import
/// the filter matches is shown as the next sync will see it.
#[test]
fn cs_should_show_an_object_the_filter_matches_as_a_filtered_disconnector() {
    let w = Workdir::with_config(HR);
    let hr = w.path().join("hr.csv");
    std::fs::write(
        &hr,
        "id,status,mgr,note\nE1,active,,\nE2,pending,,\nE3,test,,\n",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    let sync = w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    assert!(sync.contains("filtered-disconnectors 1"), "{sync}");

    let text = w.expect(&["cs", "hr"], 0);
    assert!(row(&text, "E1").contains("connector (mv "), "{text}");
    assert!(
        row(&text, "E2")
            .split_whitespace()
            .any(|w| w == "disconnector")
            && !row(&text, "E2").contains("filtered"),
        "{text}"
    );
    assert!(
        row(&text, "E3").contains("filtered-disconnector (filter #1)"),
        "{text}"
    );
    // Only the state changes: the object's keys keep their order.
    let raw = w.expect(&["cs", "hr", "--anchor", "E3", "--json"], 0);
    assert!(
        raw.contains(
            "\"present\": true,\n    \"connection\": {\n      \"state\": \"filtered-disconnector\",\n      \"filter\": 1\n    }\n  }"
        ),
        "{raw}"
    );
    let e3 = json_of(&w, &["cs", "hr", "--anchor", "E3", "--json"]);
    assert_eq!(
        e3[0]["connection"],
        json!({ "state": "filtered-disconnector", "filter": 1 }),
        "{e3:#?}"
    );
    let e2 = json_of(&w, &["cs", "hr", "--anchor", "E2", "--json"]);
    assert_eq!(e2[0]["connection"], json!({ "state": "disconnector" }));
    let e1 = json_of(&w, &["cs", "hr", "--anchor", "E1", "--json"]);
    assert_eq!(e1[0]["connection"]["state"], "connector", "{e1:#?}");

    // E2 becomes a test account: imported, not synchronised yet.
    std::fs::write(
        &hr,
        "id,status,mgr,note\nE1,active,,\nE2,test,,\nE3,test,,\n",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    let text = w.expect(&["cs", "hr", "--pending-import"], 0);
    assert!(
        row(&text, "E2").contains("filtered-disconnector (filter #1)"),
        "{text}"
    );
    let listed = json_of(&w, &["cs", "hr", "--json"]);
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|o| {
            (
                o["anchor"].as_str().unwrap(),
                o["connection"]["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("E1", "connector"),
            ("E2", "filtered-disconnector"),
            ("E3", "filtered-disconnector"),
        ]
    );
}

/// A filter that cannot be evaluated on an object leaves it a
/// disconnector, and the listing says why instead of failing.
#[test]
fn cs_should_say_why_a_filter_cannot_be_evaluated_on_an_object() {
    let w = Workdir::with_config(HR);
    std::fs::write(
        w.path().join("hr.csv"),
        "id,status,mgr,note\nE1,active,,\nE4,active,,text\n",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);

    let text = w.expect(&["cs", "hr"], 0);
    let e4 = row(&text, "E4");
    assert!(
        e4.contains("disconnector (filter #2 cannot be evaluated)")
            && e4.contains("filter #2 of `hr`: the condition must be true or false"),
        "{text}"
    );
    assert!(!row(&text, "E1").contains("filter"), "{text}");
    // The sync records the same failure as the object's error: said once.
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 1);
    let text = w.expect(&["cs", "hr"], 0);
    let e4 = row(&text, "E4");
    assert!(
        e4.contains("disconnector (filter #2 cannot be evaluated)")
            && e4.contains("expression-failed: filter #2 of `hr`: ")
            && e4.matches("filter #2 of `hr`").count() == 1,
        "{text}"
    );
    let listed = json_of(&w, &["cs", "hr", "--anchor", "E4", "--json"]);
    let connection = &listed[0]["connection"];
    assert_eq!(connection["state"], "disconnector", "{connection:#?}");
    assert!(
        connection["filter_error"]
            .as_str()
            .unwrap()
            .starts_with("filter #2 of `hr`: "),
        "{connection:#?}"
    );
}

/// A manager id `e1` does not name the person anchored `E1` (a reference
/// by anchor compares exactly): `--unresolved` says that an object
/// differs only in case, and says nothing more of an id no object has.
#[test]
fn cs_unresolved_should_say_an_anchor_reference_differs_only_in_case() {
    let w = Workdir::with_config(HR);
    std::fs::write(
        w.path().join("hr.csv"),
        "id,status,mgr,note\nE1,active,,\nE2,active,e1,\nE3,active,E8,\n",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);

    let text = w.expect(&["cs", "hr", "--unresolved"], 0);
    let waits: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E2 ") || l.starts_with("E3 "))
        .filter(|l| l.contains(" mgr "))
        .collect();
    assert_eq!(waits.len(), 2, "{text}");
    assert!(
        waits[0].ends_with(
            "hr/e1 (not there, or not joined; `E1` differs only in case: anchor references are exact)"
        ),
        "{text}"
    );
    assert!(
        waits[1].ends_with("hr/E8 (not there, or not joined)"),
        "{text}"
    );
    let listed = json_of(&w, &["cs", "hr", "--unresolved", "--json"]);
    let unresolved: Vec<&Value> = listed.iter().map(|o| &o["unresolved"][0]).collect();
    assert_eq!(
        unresolved,
        [
            &json!({ "direction": "in", "attribute": "mgr", "ma": "hr", "anchor": "e1", "differs_in_case": "E1" }),
            &json!({ "direction": "in", "attribute": "mgr", "ma": "hr", "anchor": "E8" }),
        ],
        "{listed:#?}"
    );
}

/// `mv --connector` of an unjoined object says which kind of disconnector
/// it is, as `cs` shows it (it said only "a disconnector": a black-box
/// review).
#[test]
fn mv_connector_should_name_the_kind_of_disconnector() {
    let w = Workdir::with_config(HR);
    std::fs::write(
        w.path().join("hr.csv"),
        "id,status,mgr,note\nE1,active,,\nE2,pending,,\nE3,test,,\n",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    let said = |anchor: &str| {
        let out = w.run(&["mv", "--connector", "hr", "--anchor", anchor]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let filtered = said("E3");
    assert!(
        filtered.contains("is a filtered disconnector (filter #1 of hr holds it out)"),
        "{filtered}"
    );
    let plain = said("E2");
    assert!(plain.contains("is a disconnector:"), "{plain}");
}
