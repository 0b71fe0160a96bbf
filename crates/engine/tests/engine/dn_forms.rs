//! References by DN compared as a directory compares DNs: a source of
//! groups whose members name people by DN written with spaces after the
//! commas, upper-case attribute types, `\,` for the `\2C` of the people's
//! own DNs, and a multi-valued RDN with its parts in the other order
//! resolves every member, whether the people are there when the groups
//! are synchronised, come after them, or come later; and a person's real
//! rename updates the groups that name them.

use crate::fixture::*;
use autosync_model::{MvId, RunStatus, Value};
use autosync_store::Store;
use std::collections::BTreeSet;

const CONFIG: &str = r#"
[metaverse.person]
attributes = ["employeeId"]

[metaverse.group]
attributes = ["groupId", "members"]
references = { members = "person" }

[[ma]]
name = "people"
connector = { type = "jsonl", path = "people.jsonl" }
object_types = [{ name = "person", anchor = "id", dn = "dn" }]
join = [{ mv_type = "person", on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv_type = "person", mv = "employeeId", from = "id" }]
staging_thresholds = { deletes = "off" }

[[ma]]
name = "groups"
connector = { type = "jsonl", path = "groups.jsonl" }
object_types = [{ name = "group", anchor = "gid", references = { member = { by = "dn", ma = "people" } } }]
join = [{ mv_type = "group", on = [{ cs = "gid", mv = "groupId" }] }]
projection = [{ mv_type = "group" }]
import_flows = [
  { mv_type = "group", mv = "groupId", from = "gid" },
  { mv_type = "group", mv = "members", from = "member" },
]
staging_thresholds = { deletes = "off" }
"#;

/// The people as their source writes their DNs: plainly, the escaped
/// comma in its hex form, a multi-valued RDN `cn` first.
const ANN: (&str, &str) = ("1", "cn=Ann,ou=People,dc=x");
const SMITH: (&str, &str) = ("2", r"cn=Smith\2C John,ou=People,dc=x");
const LEE: (&str, &str) = ("3", "cn=Ann Lee+uid=alee,ou=People,dc=x");
const DEE: (&str, &str) = ("4", "cn=Dee,ou=People,dc=x");

/// The same DNs as the groups' source writes them.
const MEMBERS: [&str; 4] = [
    "cn=Ann, ou=People, dc=x",
    r"CN=Smith\, John,OU=People,DC=x",
    "uid=alee+cn=Ann Lee,ou=People,dc=x",
    "CN=Dee, ou=people,dc=x",
];

fn people(rows: &[(&str, &str)]) -> String {
    rows.iter()
        .map(|(id, dn)| format!("{}\n", serde_json::json!({ "id": id, "dn": dn })))
        .collect()
}

fn groups(rows: &[(&str, &[&str])]) -> String {
    rows.iter()
        .map(|(gid, members)| format!("{}\n", serde_json::json!({ "gid": gid, "member": members })))
        .collect()
}

fn sync(w: &World, ma: &str, profile: &str) {
    w.run_ok(ma, "full-import", RunStatus::Success);
    w.run_ok(ma, profile, RunStatus::Success);
}

/// The metaverse objects group `gid`'s members resolved to.
fn members(w: &World, gid: &str) -> BTreeSet<MvId> {
    match w
        .mv_of("groups", gid)
        .and_then(|g| g.get("members").cloned())
    {
        Some(Value::Multi(vs)) => vs
            .iter()
            .map(|v| match v {
                Value::Reference(id) => *id,
                other => panic!("not a reference: {other:?}"),
            })
            .collect(),
        None => BTreeSet::new(),
        Some(other) => panic!("members: {other:?}"),
    }
}

fn person(w: &World, id: &str) -> MvId {
    w.mv_of("people", id).unwrap().id
}

fn people_of(w: &World, ids: &[&str]) -> BTreeSet<MvId> {
    ids.iter().map(|id| person(w, id)).collect()
}

/// The keys the references of group `gid` wait for.
fn waits(w: &World, gid: &str) -> Vec<String> {
    let g = w.cs("groups", gid).unwrap();
    let mut r = w.store.read().unwrap();
    r.ref_waits_of(g.id)
        .unwrap()
        .into_iter()
        .map(|x| x.key)
        .collect()
}

#[test]
fn members_named_by_dn_in_another_spelling_resolve_in_the_same_sync_and_when_they_come_later() {
    let w = World::new(
        CONFIG,
        &[
            ("people.jsonl", &people(&[ANN, SMITH, LEE])),
            ("groups.jsonl", &groups(&[("G1", &MEMBERS)])),
        ],
    );
    sync(&w, "people", "full-sync");
    // The people are there: the group's sync resolves them itself.
    sync(&w, "groups", "full-sync");
    assert_eq!(members(&w, "G1"), people_of(&w, &["1", "2", "3"]));
    // Dee is not there yet: that member waits, folded as the index is.
    assert_eq!(waits(&w, "G1"), ["cn=dee,ou=people,dc=x"]);
    // Dee comes: the end of the people's sync resolves the wait.
    w.write("people.jsonl", &people(&[ANN, SMITH, LEE, DEE]));
    sync(&w, "people", "delta-sync");
    assert_eq!(members(&w, "G1"), people_of(&w, &["1", "2", "3", "4"]));
    assert!(waits(&w, "G1").is_empty());
}

#[test]
fn members_named_by_dn_in_another_spelling_that_wait_for_their_people_resolve_when_they_come() {
    let w = World::new(
        CONFIG,
        &[
            ("people.jsonl", &people(&[ANN, SMITH, LEE, DEE])),
            ("groups.jsonl", &groups(&[("G1", &MEMBERS)])),
        ],
    );
    // The groups first: every member waits.
    sync(&w, "groups", "full-sync");
    assert!(members(&w, "G1").is_empty());
    assert_eq!(waits(&w, "G1").len(), 4);
    sync(&w, "people", "full-sync");
    assert_eq!(members(&w, "G1"), people_of(&w, &["1", "2", "3", "4"]));
    assert!(waits(&w, "G1").is_empty());
}

#[test]
fn a_person_renamed_leaves_the_groups_naming_the_old_dn_and_joins_those_naming_the_new_one() {
    let w = World::new(
        CONFIG,
        &[
            ("people.jsonl", &people(&[ANN, SMITH, LEE])),
            (
                "groups.jsonl",
                &groups(&[
                    ("G1", &["cn=Ann, ou=People, dc=x", MEMBERS[1]]),
                    ("G2", &["CN=Anne, OU=people,dc=x"]),
                ]),
            ),
        ],
    );
    sync(&w, "people", "full-sync");
    sync(&w, "groups", "full-sync");
    assert_eq!(members(&w, "G1"), people_of(&w, &["1", "2"]));
    assert!(members(&w, "G2").is_empty());
    // A real rename: another value, not another spelling.
    w.write(
        "people.jsonl",
        &people(&[("1", "cn=Anne,ou=People,dc=x"), SMITH, LEE]),
    );
    sync(&w, "people", "delta-sync");
    assert_eq!(members(&w, "G1"), people_of(&w, &["2"]));
    assert_eq!(waits(&w, "G1"), ["cn=ann,ou=people,dc=x"]);
    assert_eq!(members(&w, "G2"), people_of(&w, &["1"]));
    assert!(waits(&w, "G2").is_empty());
    // Another spelling of the same DN (the source writes it its own way
    // now) is no rename: nothing leaves.
    w.write(
        "people.jsonl",
        &people(&[
            ("1", "CN=Anne, ou=People,dc=x"),
            SMITH,
            ("3", "uid=alee+cn=Ann Lee,ou=People,dc=x"),
        ]),
    );
    sync(&w, "people", "delta-sync");
    assert_eq!(members(&w, "G2"), people_of(&w, &["1"]));
    sync(&w, "groups", "full-sync");
    assert_eq!(members(&w, "G1"), people_of(&w, &["2"]));
    assert_eq!(members(&w, "G2"), people_of(&w, &["1"]));
}
