//! `waits`' unit tests, on a real SQLite store.

#![allow(clippy::unwrap_used)]
use super::*;
use autosync_model::Connection;
use autosync_store::{SqliteStore, Store};

/// A source of groups whose members name a directory's people by DN,
/// and whose owner names one by anchor.
const SYSTEM: &str = r#"
[metaverse.person]
attributes = []

[metaverse.group]
attributes = ["members"]
references = { members = "person" }

[[ma]]
name = "groups"
connector = { type = "jsonl", path = "groups.jsonl" }
object_types = [{ name = "group", anchor = "gid", references = { member = { by = "dn", ma = "dir" }, owner = { by = "anchor", ma = "dir" } } }]
import_flows = [{ mv = "members", from = "member" }]

[[ma]]
name = "dir"
connector = { type = "jsonl", path = "dir.jsonl" }
object_types = [{ name = "person", anchor = "id", dn = "dn" }]
"#;

fn wait(attr: &str, key: &str, by_dn: bool) -> RefWait {
    RefWait {
        attr: attr.into(),
        ma: "dir".into(),
        key: key.into(),
        by_dn,
    }
}

#[test]
fn a_wait_by_dn_is_shown_as_the_referrer_holds_the_dn_under_dn() {
    let system: SystemDef = toml::from_str(SYSTEM).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    store.set_dn_index(&["dir"]).unwrap();
    let ken = r"CN=Thompson\, Ken, ou=People,dc=x";
    let ann = "uid=alee+cn=Ann Lee, ou=People,dc=x";
    let mut g = CsObject::new("groups", "G1", "", "group");
    g.hologram.insert(
        "member".into(),
        Value::Multi(vec![
            Value::from("cn=Bob,ou=People,dc=x"),
            Value::from(ken),
            Value::from(ann),
        ]),
    );
    g.hologram.insert("owner".into(), Value::from("E7"));
    let mut txn = store.begin().unwrap();
    txn.cs_insert(&mut g).unwrap();
    txn.ref_waits_set(
        g.id,
        &[
            wait("member", ken, true),
            wait("member", ann, true),
            wait("member", "cn=Gone,ou=People,dc=x", true),
            wait("owner", "E7", false),
        ],
    )
    .unwrap();
    // Ann Lee is there, joined, spelled her directory's way.
    let mut mv = autosync_model::MvObject::new("person");
    txn.mv_insert(&mut mv).unwrap();
    let mut lee = CsObject::new("dir", "3", "cn=Ann Lee+uid=alee,ou=People,dc=x", "person");
    lee.connection = Connection::Connector { mv_id: mv.id };
    txn.cs_insert(&mut lee).unwrap();
    txn.commit().unwrap();
    let mut read = store.read().unwrap();
    let w = waits_of(read.as_mut(), &system, "groups", &g).unwrap();
    let rows = found(read.as_mut(), &system, &g, w.listed).unwrap();
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    let named: Vec<(String, Option<&str>, Option<&str>)> = json
        .iter()
        .map(|j| {
            (
                j["attribute"].as_str().unwrap().to_owned(),
                j.get("dn").and_then(|v| v.as_str()),
                j.get("anchor").and_then(|v| v.as_str()),
            )
        })
        .collect();
    // The referrer's own spelling (in the order of the folded keys);
    // the folded key when it holds none that folds to it (a value gone
    // since).
    assert_eq!(
        named,
        [
            ("member".to_owned(), Some(ann), None),
            ("member".to_owned(), Some("cn=gone,ou=people,dc=x"), None),
            ("member".to_owned(), Some(ken), None),
            ("owner".to_owned(), None, Some("E7")),
        ]
    );
    // Ann Lee's is found there and joined.
    assert_eq!(json[0]["reason"], "ready", "{}", json[0]);
    assert_eq!(json[0]["mv_id"], mv.id, "{}", json[0]);
    assert!(json[2].get("reason").is_none(), "{}", json[2]);
    assert_eq!(
        rows[2].clone().wait_text(),
        format!("dir/{ken} (not there, or not joined)")
    );
}

impl Unresolved {
    fn wait_text(self) -> String {
        match self {
            Unresolved::Wait { wait, .. } => wait.waits_for(),
            Unresolved::Held(_) => String::new(),
        }
    }
}
