//! Keys by DN (the DN index `cs_dn`, the references waiting for a DN)
//! folded as a directory compares DNs (`fold_dn`), and the migration that
//! folds those of an older store again (schema version 12).

use super::SqliteStore;
use crate::api::{RefWait, Store, StoreRead, fold_dn};
use autosync_model::{Connection, CsObject, MvObject};

/// The DNs of the people, as their MA holds them.
const DNS: [&str; 3] = [
    "cn=Ann,ou=People,dc=x",
    r"cn=Smith\2C John,ou=People,dc=x",
    "uid=alee+cn=Ann Lee,ou=People,dc=x",
];

/// The same DNs as a referrer may write them.
const SPELLED: [&str; 3] = [
    "CN=Ann, ou=People, dc=x",
    r"cn=smith\, john,OU=People,DC=x",
    "CN=Ann Lee + uid=alee,ou=people,dc=x",
];

/// A store with the people of `DNS` on MA `dir` (its DN index kept),
/// each joined to a metaverse object: the store, the people's ids and
/// their metaverse objects' ids.
fn people(path: &std::path::Path) -> (SqliteStore, Vec<i64>, Vec<i64>) {
    let store = SqliteStore::open(path).unwrap();
    store.set_dn_index(&["dir"]).unwrap();
    let mut txn = store.begin().unwrap();
    let (mut ids, mut mvs) = (Vec::new(), Vec::new());
    for (i, dn) in DNS.iter().enumerate() {
        let mut mv = MvObject::new("person");
        txn.mv_insert(&mut mv).unwrap();
        let mut o = CsObject::new("dir", &format!("P{i}"), dn, "person");
        o.connection = Connection::Connector { mv_id: mv.id };
        txn.cs_insert(&mut o).unwrap();
        ids.push(o.id);
        mvs.push(mv.id);
    }
    txn.commit().unwrap();
    (store, ids, mvs)
}

/// What `cs_joined_by_dns` answers for each of `dns`: the object and its
/// metaverse object, one each.
fn found(r: &mut dyn StoreRead, dns: &[&str]) -> Vec<(i64, Option<i64>)> {
    dns.iter()
        .map(|dn| {
            let got = r.cs_joined_by_dns("dir", &[dn]).unwrap();
            assert_eq!(got.len(), 1, "{dn}: {got:?}");
            (got[0].1, got[0].2)
        })
        .collect()
}

fn wait(key: &str, by_dn: bool) -> RefWait {
    RefWait {
        attr: "member".into(),
        ma: "dir".into(),
        key: key.into(),
        by_dn,
    }
}

#[test]
fn a_dn_in_another_spelling_should_find_its_object_by_the_dn_index() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids, mvs) = people(&dir.path().join("store.db"));
    let expected: Vec<(i64, Option<i64>)> =
        ids.iter().zip(&mvs).map(|(i, m)| (*i, Some(*m))).collect();
    let mut r = store.read().unwrap();
    assert_eq!(found(r.as_mut(), &SPELLED), expected);
    assert_eq!(found(r.as_mut(), &DNS), expected);
    // Answered folded, as the index holds them.
    let got = r.cs_joined_by_dns("dir", &[SPELLED[2]]).unwrap();
    assert_eq!(got[0].0, "cn=ann lee+uid=alee,ou=people,dc=x");
    // Another value is another DN.
    assert!(
        r.cs_joined_by_dns("dir", &["cn=Smith,cn=John,ou=People,dc=x"])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_wait_for_a_dn_should_be_kept_folded_and_end_when_the_object_comes_in_any_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    store.set_dn_index(&["dir"]).unwrap();
    let mut group = CsObject::new("groups", "G1", "", "group");
    let mut txn = store.begin().unwrap();
    txn.cs_insert(&mut group).unwrap();
    // The engine folds its keys already; a key written otherwise is
    // folded all the same. An anchor is kept as it is.
    txn.ref_waits_set(group.id, &[wait(SPELLED[1], true), wait("E1", false)])
        .unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(
        r.ref_waits_of(group.id).unwrap(),
        [
            wait("E1", false),
            wait(r"cn=smith\, john,ou=people,dc=x", true)
        ]
    );
    assert!(r.ref_in_ready().unwrap().is_empty());
    drop(r);
    // Smith comes, spelled the directory's way, and is joined.
    let mut mv = MvObject::new("person");
    let mut txn = store.begin().unwrap();
    txn.mv_insert(&mut mv).unwrap();
    let mut smith = CsObject::new("dir", "P1", DNS[1], "person");
    smith.connection = Connection::Connector { mv_id: mv.id };
    txn.cs_insert(&mut smith).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.read().unwrap().ref_in_ready().unwrap(), [group.id]);
}

#[test]
fn a_version_11_store_should_get_its_keys_by_dn_folded_again_in_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let (store, ids, mvs) = people(&path);
    let mut group = CsObject::new("groups", "G1", "", "group");
    let mut txn = store.begin().unwrap();
    txn.cs_insert(&mut group).unwrap();
    txn.commit().unwrap();
    drop(store);
    // What version 11 wrote: the DNs and the waits' keys in lower case
    // only; two waits that name one DN in two spellings, one that waits
    // for an object not there, one by anchor.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("UPDATE cs_dn SET dn = lower(dn); DELETE FROM ref_wait_in;")
            .unwrap();
        let waits = [
            ("cn=dee, ou=people,dc=x", 1),
            ("cn=dee,ou=people,dc=x", 1),
            (r"cn=kim\, jr,ou=people,dc=x", 1),
            ("E1", 0),
        ];
        for (key, by_dn) in waits {
            conn.execute(
                "INSERT INTO ref_wait_in (cs_id, attr, ma, key, by_dn) VALUES (?1, 'member', 'dir', ?2, ?3)",
                rusqlite::params![group.id, key, by_dn],
            )
            .unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 11;").unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    {
        let w = store.writer();
        let v: i64 = w
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::schema::SCHEMA_VERSION);
        let keys: Vec<String> = w
            .conn
            .prepare("SELECT dn FROM cs_dn ORDER BY cs_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let folded: Vec<String> = DNS.iter().map(|d| fold_dn(d).into_owned()).collect();
        assert_eq!(keys, folded);
    }
    let mut r = store.read().unwrap();
    let expected: Vec<(i64, Option<i64>)> =
        ids.iter().zip(&mvs).map(|(i, m)| (*i, Some(*m))).collect();
    assert_eq!(found(r.as_mut(), &SPELLED), expected);
    assert_eq!(
        r.ref_waits_of(group.id).unwrap(),
        [
            wait("E1", false),
            wait("cn=dee,ou=people,dc=x", true),
            wait(r"cn=kim\, jr,ou=people,dc=x", true),
        ]
    );
    drop(r);
    // Dee comes: the wait folded again ends.
    let mut mv = MvObject::new("person");
    let mut txn = store.begin().unwrap();
    txn.mv_insert(&mut mv).unwrap();
    let mut dee = CsObject::new("dir", "P9", "CN=Dee,OU=People,DC=x", "person");
    dee.connection = Connection::Connector { mv_id: mv.id };
    txn.cs_insert(&mut dee).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.read().unwrap().ref_in_ready().unwrap(), [group.id]);
}
