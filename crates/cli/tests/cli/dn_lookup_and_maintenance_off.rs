//! `maintenance off` while maintenance mode is not on is a success saying
//! so, as a second `maintenance on` is (with a service and without), and
//! `cs --dn` / `mv --connector MA --dn` find an object by its DN as a
//! directory compares DNs (spaces after separators, an escape's spelling,
//! attribute types' and values' case do not count).

use super::controls::{Service, status};
use super::support::*;
use serde_json::Value;

/// `maintenance off` twice, and once more with a service running: each
/// exits 0; the ones with nothing to end say that maintenance mode is not
/// on and change nothing (a review: without a service it exited 2, with
/// one the API's `not-in-maintenance` refusal exited 2, while a second
/// `maintenance on` exited 0).
#[test]
fn maintenance_off_when_not_on_should_succeed_and_say_so_with_and_without_a_service() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);

    // No service: the controller's saved state.
    let said = w.expect(&["maintenance", "off"], 0);
    assert_eq!(
        said.trim_end(),
        "maintenance mode is not on: nothing changed (no service running)"
    );
    w.expect(&["maintenance", "on"], 0);
    let said = w.expect(&["maintenance", "off"], 0);
    assert!(said.starts_with("maintenance mode off"), "{said}");
    let answer: Value =
        serde_json::from_str(&w.expect(&["maintenance", "off", "--json"], 0)).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        answer["message"],
        "maintenance mode is not on: nothing changed (no service running)"
    );
    assert!(status(&w)["maintenance"].is_null());

    // A service running: through its API.
    let service = Service::start(&w);
    let said = w.expect(&["maintenance", "off"], 0);
    assert_eq!(
        said.trim_end(),
        "maintenance mode is not on: nothing changed"
    );
    let answer: Value =
        serde_json::from_str(&w.expect(&["maintenance", "off", "--json"], 0)).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({ "ok": true, "message": "maintenance mode is not on: nothing changed" })
    );
    assert!(status(&w)["maintenance"].is_null());
    w.expect(&["maintenance", "on"], 0);
    assert_eq!(status(&w)["maintenance"]["by"], "cli");
    let said = w.expect(&["maintenance", "off"], 0);
    assert!(said.starts_with("maintenance mode off"), "{said}");
    assert!(status(&w)["maintenance"].is_null());
    assert_eq!(service.terminate(), Some(0));
}

/// One MA whose objects' DNs are LDAP DNs, each projected to a person.
const DN_CONFIG: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId"]

[[ma]]
name = "dir"
connector = { type = "jsonl", path = "dir.jsonl" }
object_types = [{ name = "account", anchor = "id", dn = "dn" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv = "employeeId", from = "id" }]
"#;

/// As a directory returns them: OpenLDAP's `\2C` for an escaped comma.
const DN_OBJECTS: &str = r#"{"id": "1", "dn": "cn=Ann Lee,ou=People,dc=example,dc=com"}
{"id": "2", "dn": "cn=Smith\\2C John,ou=People,dc=example,dc=com"}
"#;

fn dn_synced() -> Workdir {
    let w = Workdir::with_config(DN_CONFIG);
    std::fs::write(w.path().join("dir.jsonl"), DN_OBJECTS).unwrap();
    w.expect(&["run-profile", "dir", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "dir", "full-sync", "--no-progress"], 0);
    w
}

/// The anchors `cs dir --dn DN --json` finds.
fn cs_anchors(w: &Workdir, dn: &str) -> Vec<String> {
    let text = w.expect(&["cs", "dir", "--dn", dn, "--json"], 0);
    let found: Value = serde_json::from_str(&text).unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["anchor"].as_str().unwrap().to_owned())
        .collect()
}

/// `cs --dn` and `mv --connector --dn` compare DNs as the rest of the
/// product does (`autosync_model::dn::folded`): a DN written with spaces
/// after its commas, an escape spelt otherwise or attribute types in
/// upper case finds the object (a review: compared as lower-cased text,
/// none of them was found).
#[test]
fn a_dn_lookup_should_compare_dns_as_a_directory_does() {
    let w = dn_synced();
    assert_eq!(
        cs_anchors(&w, "cn=Ann Lee,ou=People,dc=example,dc=com"),
        ["1"]
    );
    assert_eq!(
        cs_anchors(&w, "cn=Ann Lee, ou=People, dc=example, dc=com"),
        ["1"]
    );
    assert_eq!(
        cs_anchors(&w, "CN=ann lee,OU=people,DC=Example,DC=com"),
        ["1"]
    );
    assert_eq!(
        cs_anchors(&w, r"cn=Smith\, John,ou=People,dc=example,dc=com"),
        ["2"]
    );
    assert_eq!(
        cs_anchors(&w, r"CN=smith\2c John , ou=People,dc=example,dc=com"),
        ["2"]
    );
    let text = w.expect(
        &[
            "cs",
            "dir",
            "--dn",
            r"cn=Smith\, John, ou=People,dc=example,dc=com",
        ],
        0,
    );
    assert!(text.contains(r"cn=Smith\2C John,ou=People"), "{text}");
    // Another entry is still another entry.
    assert!(cs_anchors(&w, "cn=Ann Lee,ou=Staff,dc=example,dc=com").is_empty());
    let text = w.expect(
        &["cs", "dir", "--dn", "cn=Ann,ou=People,dc=example,dc=com"],
        0,
    );
    assert!(text.starts_with("no object with DN"), "{text}");

    // The metaverse object joined to it, by the same lookup.
    let text = w.expect(
        &[
            "mv",
            "--connector",
            "dir",
            "--dn",
            r"CN=Smith\, John, OU=People, DC=example, DC=com",
            "--json",
        ],
        0,
    );
    let found: Value = serde_json::from_str(&text).unwrap();
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1, "{text}");
    assert_eq!(found[0]["attributes"]["employeeId"]["value"], "2", "{text}");
}
