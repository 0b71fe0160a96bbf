//! Convergence: HR CSV -> SQLite accounts + JSON Lines phone book, run until
//! nothing is left to do, and a property test that any history of edits and
//! run orders converges to what a from-scratch run gives.

use crate::fixture::*;
use autosync_model::{MvId, RunRecord, RunStatus, StepCounters};
use autosync_store::CsFilter;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

pub const HR_SQL_JSONL: &str = r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "lastName", "department", "email"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "firstName", from = "first" },
  { mv = "lastName", from = "last" },
  { mv = "department", from = "dept" },
]

[[ma]]
name = "accounts"
connector = { type = "sqlite", path = "accounts.db", table = "accounts", columns = ["uid", "name", "mail", "dept"], create_table = true }
object_types = [{ name = "account", anchor = "uid" }]
deprovisioning = "delete"
import_flows = [{ mv = "email", from = "mail" }]
export_flows = [
  { cs = "name", expr = 'firstName + " " + lastName' },
  { cs = "mail", expr = 'lower(firstName + "." + lastName) + "@example.com"' },
  { cs = "dept", from = "department" },
]
provisioning = [{ mv_type = "person", object_type = "account", anchor = '"a" + employeeId' }]

[[ma]]
name = "phonebook"
connector = { type = "jsonl", path = "phonebook.jsonl" }
object_types = [{ name = "entry", anchor = "id" }]
deprovisioning = "delete"
export_flows = [
  { cs = "name", expr = 'firstName + " " + lastName' },
  { cs = "email", from = "email" },
]
provisioning = [{ mv_type = "person", object_type = "entry", anchor = "employeeId", condition = 'department != "Navy"' }]
"#;

const MAS: [&str; 3] = ["hr", "accounts", "phonebook"];

fn activity(r: &RunRecord) -> u64 {
    r.steps
        .iter()
        .map(|s| match &s.counters {
            StepCounters::Import(c) => c.staged() + c.export_confirmed,
            StepCounters::Sync(c) => {
                c.outbound.values().map(|o| o.staged()).sum::<u64>()
                    + c.projections
                    + c.joins
                    + c.deleted
            }
            StepCounters::Export(c) => c.activity(),
        })
        .sum()
}

/// Import, sync and export every MA until a whole cycle does nothing;
/// returns the number of cycles.
pub fn converge(w: &World) -> usize {
    for cycle in 1..=8 {
        let mut work = 0;
        for ma in MAS {
            for profile in ["full-import", "delta-sync", "export"] {
                let r = w.run(ma, profile);
                assert!(
                    !r.status.is_stopped() && r.status.severity() < 3,
                    "{ma} {profile}: {r:#?}"
                );
                work += activity(&r);
            }
        }
        if work == 0 {
            assert_one_metaverse_object_per_person(w);
            return cycle;
        }
    }
    panic!("did not converge in 8 cycles");
}

fn accounts(w: &World) -> Vec<(String, String, String, String)> {
    let db = rusqlite::Connection::open(w.path("accounts.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT uid, name, mail, dept FROM accounts ORDER BY uid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The phone book's entries by id (an id on two lines fails: a map would
/// hide the second).
fn phonebook(w: &World) -> BTreeMap<String, serde_json::Value> {
    let mut entries = BTreeMap::new();
    for line in w.read("phonebook.jsonl").lines() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_owned();
        assert!(
            !entries.contains_key(&id),
            "two phone book entries for {id}"
        );
        entries.insert(id, v);
    }
    entries
}

/// One metaverse object: its connectors (`ma:anchor`, sorted) and its
/// attributes as texts.
type MvEntry = (Vec<String>, BTreeMap<String, String>);

/// The metaverse as a sorted list of its objects, each with the connectors
/// joined to it: two objects for one person stay two entries (keyed by
/// `employeeId`, the second would replace the first).
fn metaverse(w: &World) -> Vec<MvEntry> {
    let mut connectors: HashMap<MvId, Vec<String>> = HashMap::new();
    for ma in MAS {
        for cs in w.cs_all(ma, CsFilter::All) {
            if let Some(id) = cs.connection.mv_id() {
                connectors
                    .entry(id)
                    .or_default()
                    .push(format!("{ma}:{}", cs.anchor));
            }
        }
    }
    let mut objects: Vec<MvEntry> = w
        .mv_all()
        .into_iter()
        .map(|m| {
            let mut joined = connectors.remove(&m.id).unwrap_or_default();
            joined.sort();
            let attrs = m
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.value.to_text()))
                .collect();
            (joined, attrs)
        })
        .collect();
    objects.sort();
    objects
}

/// Every metaverse object stands for exactly one person: it has exactly one
/// HR connector, and no two objects share an `employeeId` (the join value).
fn assert_one_metaverse_object_per_person(w: &World) {
    let mut people: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (connectors, attrs) in metaverse(w) {
        let hr: Vec<&String> = connectors.iter().filter(|c| c.starts_with("hr:")).collect();
        assert_eq!(
            hr.len(),
            1,
            "a metaverse object without exactly one HR connector: {connectors:?} {attrs:?}"
        );
        let id = attrs.get("employeeId").cloned().unwrap_or_default();
        if let Some(other) = people.insert(id.clone(), connectors.clone()) {
            panic!("two metaverse objects for employee {id:?}: {other:?} and {connectors:?}");
        }
    }
}

#[test]
fn hr_people_should_converge_into_sqlite_accounts_and_a_jsonl_phone_book() {
    let w = World::new(HR_SQL_JSONL, &[("hr.csv", HR_CSV), ("phonebook.jsonl", "")]);
    converge(&w);
    let acc = accounts(&w);
    assert_eq!(acc.len(), 3);
    assert_eq!(
        acc[0],
        (
            "a1".into(),
            "Ada Lovelace".into(),
            "ada.lovelace@example.com".into(),
            "R&D".into()
        )
    );
    // The account's mail flowed back into the metaverse and on to the phone book.
    let pb = phonebook(&w);
    assert_eq!(pb.len(), 2, "Grace is in the Navy: {pb:?}");
    assert_eq!(pb["1"]["email"], "ada.lovelace@example.com");
    assert_eq!(
        w.mv_text("hr", "1", "email").as_deref(),
        Some("ada.lovelace@example.com")
    );

    // Ada moves to the Navy, Alan leaves, Linus arrives.
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,Navy\n3,Grace,Hopper,Navy\n4,Linus,Torvalds,Kernel\n",
    );
    converge(&w);
    let uids: Vec<String> = accounts(&w).into_iter().map(|a| a.0).collect();
    assert_eq!(uids, ["a1", "a3", "a4"]);
    let pb = phonebook(&w);
    assert_eq!(pb.keys().collect::<Vec<_>>(), ["4"]);
    assert_eq!(pb["4"]["email"], "linus.torvalds@example.com");
    assert_eq!(metaverse(&w).len(), 3);
    let again = converge(&w);
    assert_eq!(again, 1, "a converged system does nothing");
    assert_eq!(w.run("hr", "full-sync").status, RunStatus::Success);
}

fn hr_file() -> impl Strategy<Value = String> {
    let row = (
        prop::sample::select(vec!["Ada", "Alan", "Grace"]),
        prop::sample::select(vec!["Navy", "R&D", "Ops"]),
    );
    prop::collection::btree_map(1u8..6, row, 0..5).prop_map(|rows| {
        let mut text = String::from("id,first,last,dept\n");
        for (id, (first, dept)) in rows {
            text.push_str(&format!("{id},{first},L{id},{dept}\n"));
        }
        text
    })
}

#[derive(Clone, Debug)]
enum Action {
    Edit(String),
    Run(&'static str, &'static str),
}

fn action() -> impl Strategy<Value = Action> {
    let profiles = [
        "full-import",
        "delta-import",
        "full-sync",
        "delta-sync",
        "export",
    ];
    prop_oneof![
        hr_file().prop_map(Action::Edit),
        (
            prop::sample::select(MAS.to_vec()),
            prop::sample::select(profiles.to_vec())
        )
            .prop_map(|(m, p)| Action::Run(m, p)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12), ..ProptestConfig::default() })]

    #[test]
    fn any_history_of_edits_and_run_orders_should_converge_to_a_from_scratch_run(
        actions in prop::collection::vec(action(), 1..14),
    ) {
        let w = World::new(HR_SQL_JSONL, &[("hr.csv", "id,first,last,dept\n"), ("phonebook.jsonl", "")]);
        let mut last = String::from("id,first,last,dept\n");
        for a in &actions {
            match a {
                Action::Edit(text) => {
                    w.write("hr.csv", text);
                    last.clone_from(text);
                }
                Action::Run(ma, profile) => {
                    w.run(ma, profile);
                }
            }
        }
        converge(&w);
        let fresh = World::new(HR_SQL_JSONL, &[("hr.csv", &last), ("phonebook.jsonl", "")]);
        converge(&fresh);
        prop_assert_eq!(metaverse(&w), metaverse(&fresh));
        prop_assert_eq!(accounts(&w), accounts(&fresh));
        prop_assert_eq!(phonebook(&w), phonebook(&fresh));
    }
}
