//! Tests that need the store's internals: a full disk, simulated with
//! `PRAGMA max_page_count` on the writer connection (SQLite then fails with
//! the same SQLITE_FULL error a full disk gives); the files' modes while
//! the store is open.

use super::SqliteStore;
use crate::api::{Store, StoreErrorKind};
use autosync_model::CsObject;

#[test]
fn a_full_disk_should_fail_the_write_as_full_and_keep_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut txn = store.begin().unwrap();
    let mut first = CsObject::new("hr", "first", "cn=first", "person");
    txn.cs_insert(&mut first).unwrap();
    txn.commit().unwrap();
    {
        let w = store.writer();
        let pages: i64 = w
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        w.conn
            .execute_batch(&format!("PRAGMA max_page_count = {}", pages + 4))
            .unwrap();
    }
    let mut txn = store.begin().unwrap();
    let mut err = None;
    for i in 0..10_000 {
        let mut o = CsObject::new("hr", &format!("a{i}"), &"x".repeat(500), "person");
        if let Err(e) = txn.cs_insert(&mut o) {
            err = Some(e);
            break;
        }
    }
    drop(txn);
    let err = err.expect("the store never filled up");
    assert_eq!(err.kind, StoreErrorKind::Full, "{}", err.message);
    assert!(
        err.message.contains(&path.display().to_string()),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("free some disk space"),
        "{}",
        err.message
    );
    let mut r = store.read().unwrap();
    assert!(r.cs_by_anchor("hr", "first").unwrap().is_some());
    assert_eq!(r.cs_counts("hr").unwrap().total, 1);
}

#[test]
fn every_filter_and_lookup_should_be_an_index_search_not_a_table_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let w = store.writer();
    let queries = [
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pi = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pe = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_ue = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_err = 1 AND id > ?2 ORDER BY id LIMIT ?3",
        "SELECT id, data FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND anchor = ?2",
        "SELECT count(*) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1) AND has_pe = 1",
        "SELECT id, data FROM cs WHERE mv_id = ?1 ORDER BY id",
        "SELECT id, data FROM cs WHERE mv_id IN (?1, ?2)",
        "SELECT mv_id FROM mv_key WHERE k = ?1 AND value = ?2 AND mv_id > ?3 ORDER BY mv_id LIMIT ?4",
        "SELECT id, data FROM run WHERE ma = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
        "SELECT count(*) FROM run WHERE ma = ?1",
        "SELECT mv_id FROM mv_key WHERE k = ?1 AND value = ?2",
        "SELECT type, data FROM mv WHERE id = ?1",
        "DELETE FROM mv_key WHERE k = ?1 AND value = ?2 AND mv_id = ?3",
        "SELECT id, data FROM run WHERE status = 'in-progress' ORDER BY id",
        "SELECT id, data FROM run_error WHERE run_id = ?1 ORDER BY id LIMIT ?2",
        "SELECT id, data FROM run_change WHERE id IN \
         (SELECT id FROM run_change WHERE run_id = ?1 ORDER BY id LIMIT ?2 OFFSET ?3) ORDER BY id",
        "SELECT count(*) FROM run_change WHERE run_id = ?1",
        "DELETE FROM run_change WHERE run_id IN (SELECT id FROM run WHERE ended_ms < ?1)",
    ];
    let rows = super::rows::queries();
    for sql in queries
        .iter()
        .copied()
        .chain(rows.iter().map(String::as_str))
    {
        if sql.starts_with("INSERT") {
            continue;
        }
        // `SELECT EXISTS (...)` reads its one constant row: no table.
        let plan = plan_of(&w.conn, sql).replace("SCAN CONSTANT ROW", "");
        assert!(plan.contains("SEARCH"), "{sql}: {plan}");
        assert!(
            !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
            "{sql}: {plan}"
        );
    }
}

/// The schema of version 2 (before MA numbers), enough of it to write a
/// store that version would have written.
const SCHEMA_V2: &str = "
CREATE TABLE cs (id INTEGER PRIMARY KEY, ma TEXT NOT NULL, anchor TEXT NOT NULL, mv_id INTEGER,
    has_pi INTEGER NOT NULL DEFAULT 0, has_pe INTEGER NOT NULL DEFAULT 0,
    has_ue INTEGER NOT NULL DEFAULT 0, has_err INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL);
CREATE UNIQUE INDEX cs_anchor ON cs (ma, anchor);
CREATE INDEX cs_ma ON cs (ma);
CREATE INDEX cs_pending_import ON cs (ma) WHERE has_pi = 1;
CREATE INDEX cs_pending_export ON cs (ma) WHERE has_pe = 1;
CREATE INDEX cs_unconfirmed_export ON cs (ma) WHERE has_ue = 1;
CREATE INDEX cs_error ON cs (ma) WHERE has_err = 1;
CREATE INDEX cs_mv ON cs (mv_id) WHERE mv_id IS NOT NULL;
CREATE TABLE mv (id INTEGER PRIMARY KEY, type TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX mv_type ON mv (type);
CREATE TABLE mv_index (k INTEGER PRIMARY KEY, type TEXT NOT NULL, attr TEXT NOT NULL, UNIQUE (type, attr));
CREATE TABLE mv_key (k INTEGER NOT NULL, value TEXT NOT NULL, mv_id INTEGER NOT NULL,
    PRIMARY KEY (k, value, mv_id)) WITHOUT ROWID;
CREATE INDEX mv_key_mv ON mv_key (mv_id);
CREATE TABLE watermark (ma TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE run (id INTEGER PRIMARY KEY, ma TEXT NOT NULL, profile TEXT NOT NULL, status TEXT NOT NULL,
    started_at TEXT NOT NULL, ended_ms INTEGER, data TEXT NOT NULL);
CREATE INDEX run_ma ON run (ma);
CREATE INDEX run_in_progress ON run (status) WHERE status = 'in-progress';
CREATE INDEX run_ended ON run (ended_ms) WHERE ended_ms IS NOT NULL;
CREATE TABLE run_error (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, ma TEXT NOT NULL,
    object TEXT NOT NULL, error_type TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX run_error_run ON run_error (run_id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE seq (name TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;
";

#[test]
fn a_version_2_store_should_be_migrated_in_place_keeping_every_object() {
    use crate::api::{CsFilter, MvQuery};
    use autosync_model::{Connection, MvObject, Value};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V2).unwrap();
        conn.pragma_update(None, "application_id", super::schema::APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        let mut buf = Vec::new();
        let mut mv = MvObject::new("person");
        mv.id = 7;
        mv.attributes.insert(
            "employeeId".into(),
            autosync_model::MvValue {
                value: Value::String("E1".into()),
                contributor: "hr".into(),
            },
        );
        super::bin::encode_mv_v1(&mut buf, &mv);
        conn.execute(
            "INSERT INTO mv (id, type, data) VALUES (7, 'person', ?1)",
            [&buf],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO mv_index (k, type, attr) VALUES (1, 'person', 'employeeId');
             INSERT INTO mv_key (k, value, mv_id) VALUES (1, 'E1', 7);
             INSERT INTO seq (name, next) VALUES ('cs', 10), ('mv', 8);",
        )
        .unwrap();
        for (id, ma, anchor, mv_id) in [(3, "hr", "E1", Some(7)), (5, "app", "E1", None)] {
            let mut cs = CsObject::new(ma, anchor, &format!("cn={anchor}"), "person");
            cs.id = id;
            if let Some(m) = mv_id {
                cs.connection = Connection::Connector { mv_id: m };
            }
            super::bin::encode_cs_v1(&mut buf, &cs);
            conn.execute(
                "INSERT INTO cs (id, ma, anchor, mv_id, has_pi, data) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                rusqlite::params![id, ma, anchor, mv_id, buf],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    {
        let w = store.writer();
        let v: i64 = w
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::SCHEMA_VERSION);
        let gone: i64 = w
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('mv_type', 'mv_key_mv', 'cs_v3')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(gone, 0);
    }
    let mut r = store.read().unwrap();
    let hr = r.cs_by_anchor("hr", "E1").unwrap().unwrap();
    assert_eq!(hr.id, 3);
    assert_eq!(hr.connection.mv_id(), Some(7));
    assert_eq!(r.cs_by_anchor("app", "E1").unwrap().unwrap().id, 5);
    assert_eq!(r.cs_counts("hr").unwrap().total, 1);
    let pending = r.cs_page("app", CsFilter::PendingImport, 0, 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(r.cs_by_mv(7).unwrap().len(), 1);
    assert_eq!(
        r.mv_find("person", "employeeId", &Value::String("E1".into()))
            .unwrap(),
        [7]
    );
    // The keys were built again, folded (schema version 5).
    assert_eq!(
        r.mv_find("person", "employeeId", &Value::String("e1".into()))
            .unwrap(),
        [7]
    );
    let people = MvQuery {
        object_type: Some("person".into()),
        ..MvQuery::default()
    };
    assert_eq!(r.mv_page(&people, 0, 10).unwrap().len(), 1);
    drop(r);
    // Writes after the migration: a new MA, ids after the old ones, keys
    // of an updated and a deleted object; with the (new) name dictionary,
    // so that new bodies carry numbers beside the old ones' text.
    store
        .declare_names(&["ad", "person", "employeeId", "hr"])
        .unwrap();
    let mut txn = store.begin().unwrap();
    let mut ad = CsObject::new("ad", "E1", "cn=E1", "person");
    txn.cs_insert(&mut ad).unwrap();
    assert_eq!(ad.id, 10);
    let mut mv = txn.mv_get(7).unwrap().unwrap();
    mv.attributes.insert(
        "employeeId".into(),
        autosync_model::MvValue {
            value: Value::String("E2".into()),
            contributor: "hr".into(),
        },
    );
    txn.mv_update(&mv).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_by_anchor("ad", "E1").unwrap().unwrap().id, 10);
    assert_eq!(r.mv_get(7).unwrap().unwrap(), mv);
    assert_eq!(r.cs_by_anchor("hr", "E1").unwrap().unwrap(), hr);
    let formats: Vec<u8> = store
        .writer()
        .conn
        .prepare("SELECT substr(data, 1, 1) FROM cs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| b.unwrap()[0])
        .collect();
    assert_eq!(
        formats,
        [
            super::bin::FORMAT_V1,
            super::bin::FORMAT_V1,
            super::bin::FORMAT
        ]
    );
    assert!(
        r.mv_find("person", "employeeId", &Value::String("E1".into()))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        r.mv_find("person", "employeeId", &Value::String("E2".into()))
            .unwrap(),
        [7]
    );
    drop(r);
    let mut txn = store.begin().unwrap();
    txn.mv_delete(7).unwrap();
    txn.commit().unwrap();
    let keys: i64 = store
        .writer()
        .conn
        .query_row("SELECT count(*) FROM mv_key", [], |r| r.get(0))
        .unwrap();
    assert_eq!(keys, 0);
}

#[test]
fn a_version_4_store_should_get_join_keys_that_ignore_case_in_the_migration() {
    use crate::api::MvIndexDef;
    use autosync_model::{MvObject, MvValue, Value};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let person = |id: &str, mail: &str| {
        let mut o = MvObject::new("person");
        for (k, v) in [("employeeId", id), ("mail", mail)] {
            let value = Value::String(v.into());
            o.attributes.insert(
                k.into(),
                MvValue {
                    value,
                    contributor: "hr".into(),
                },
            );
        }
        o
    };
    let (mut ada, mut alan) = (
        person("E1", "Ada@Example.com"),
        person("E2", "alan@example.com"),
    );
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .declare_names(&["person", "employeeId", "mail"])
            .unwrap();
        store
            .set_mv_index(&[
                MvIndexDef::attribute("person", "employeeId"),
                MvIndexDef::attribute("person", "mail"),
            ])
            .unwrap();
        let mut txn = store.begin().unwrap();
        txn.mv_insert(&mut ada).unwrap();
        txn.mv_insert(&mut alan).unwrap();
        txn.commit().unwrap();
    }
    // What version 4 wrote: the texts as they were, no `derived` column.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE mv_index DROP COLUMN derived;
             DELETE FROM mv_key;
             INSERT INTO mv_key (k, value, mv_id)
                 SELECT k, 'E1', 1 FROM mv_index WHERE attr = 'employeeId';
             INSERT INTO mv_key (k, value, mv_id)
                 SELECT k, 'Ada@Example.com', 1 FROM mv_index WHERE attr = 'mail';
             INSERT INTO mv_key (k, value, mv_id)
                 SELECT k, 'E2', 2 FROM mv_index WHERE attr = 'employeeId';
             INSERT INTO mv_key (k, value, mv_id)
                 SELECT k, 'alan@example.com', 2 FROM mv_index WHERE attr = 'mail';
             PRAGMA user_version = 4;",
        )
        .unwrap();
        assert_eq!((ada.id, alan.id), (1, 2));
    }
    let store = SqliteStore::open(&path).unwrap();
    let mut r = store.read().unwrap();
    for (attr, text, id) in [
        ("employeeId", "e1", ada.id),
        ("employeeId", "E2", alan.id),
        ("mail", "ada@example.com", ada.id),
        ("mail", "ALAN@EXAMPLE.COM", alan.id),
    ] {
        assert_eq!(
            r.mv_find("person", attr, &Value::from(text)).unwrap(),
            [id],
            "{attr} = {text}"
        );
    }
    drop(r);
    let texts: Vec<String> = store
        .writer()
        .conn
        .prepare("SELECT value FROM mv_key ORDER BY value")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(texts, ["ada@example.com", "alan@example.com", "e1", "e2"]);
}

/// The tables and indexes of the references that wait (schema version 6).
fn ref_tables(store: &SqliteStore) -> Vec<String> {
    store
        .writer()
        .conn
        .prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'ref%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_version_5_store_should_get_the_reference_tables_in_the_migration() {
    use crate::api::RefWait;
    use autosync_model::{Connection, MvObject};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let tables = [
        "ref_out_due",
        "ref_touched",
        "ref_touched_name",
        "ref_wait_in",
        "ref_wait_in_key",
        "ref_wait_out",
        "ref_wait_out_target",
    ];
    let (mut boss, mut referrer, mut p, mut target) = (
        CsObject::new("hr", "E1", "cn=E1", "person"),
        CsObject::new("hr", "E2", "cn=E2", "person"),
        MvObject::new("person"),
        MvObject::new("person"),
    );
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(ref_tables(&store), tables);
        let mut txn = store.begin().unwrap();
        txn.mv_insert(&mut p).unwrap();
        txn.mv_insert(&mut target).unwrap();
        txn.cs_insert(&mut boss).unwrap();
        txn.cs_insert(&mut referrer).unwrap();
        txn.commit().unwrap();
    }
    // What version 5 had: no reference tables.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE ref_out_due;
             DROP TABLE ref_wait_in;
             DROP TABLE ref_wait_out;
             DROP TABLE ref_touched;
             PRAGMA user_version = 5;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    {
        let w = store.writer();
        let v: i64 = w
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::SCHEMA_VERSION);
    }
    assert_eq!(ref_tables(&store), tables);
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_get(boss.id).unwrap().as_ref(), Some(&boss));
    assert_eq!(r.mv_get(p.id).unwrap().as_ref(), Some(&p));
    assert!(r.ref_waits_of(referrer.id).unwrap().is_empty());
    assert_eq!(r.ref_waiting_count("hr").unwrap(), 0);
    assert!(r.ref_in_ready().unwrap().is_empty());
    assert!(r.ref_out_ready().unwrap().is_empty());
    assert!(r.ref_touched().unwrap().is_empty());
    drop(r);
    // The reference methods work on the migrated store.
    let waits = [RefWait {
        attr: "manager".into(),
        ma: "hr".into(),
        key: "E1".into(),
        by_dn: false,
    }];
    let mut txn = store.begin().unwrap();
    txn.ref_waits_set(referrer.id, &waits).unwrap();
    txn.ref_out_waits_set(p.id, "ad", &[(target.id, "hr".into())])
        .unwrap();
    txn.ref_touched_add(&[(target.id, true)]).unwrap();
    // The object both wait for comes.
    boss.connection = Connection::Connector { mv_id: target.id };
    txn.cs_update(&boss).unwrap();
    txn.commit().unwrap();
    drop(store);
    // Kept, and read back by a store opened again (at the current version).
    let store = SqliteStore::open(&path).unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.ref_waits_of(referrer.id).unwrap(), waits);
    assert_eq!(r.ref_waiting_page("hr", 0, 10).unwrap(), [referrer.id]);
    assert_eq!(r.ref_waiting_count("hr").unwrap(), 1);
    assert_eq!(r.ref_in_ready().unwrap(), [referrer.id]);
    assert_eq!(r.ref_out_ready().unwrap(), [p.id]);
    assert_eq!(r.ref_out_sendable_count("hr").unwrap(), 1);
    assert_eq!(r.ref_touched().unwrap(), [(target.id, true)]);
    drop(r);
    store
        .write_bulk(&mut |txn| {
            txn.ref_waits_set(referrer.id, &[])?;
            txn.ref_out_waits_set(p.id, "", &[])?;
            txn.ref_touched_clear(&[target.id])
        })
        .unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.ref_waiting_count("hr").unwrap(), 0);
    assert!(r.ref_in_ready().unwrap().is_empty());
    assert!(r.ref_out_ready().unwrap().is_empty());
    assert!(r.ref_touched().unwrap().is_empty());
}

#[test]
fn many_waits_of_one_object_should_be_written_whole_and_each_end_with_its_target() {
    use autosync_model::{Connection, MvObject};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let mut p = MvObject::new("group");
    let mut txn = store.begin().unwrap();
    txn.mv_insert(&mut p).unwrap();
    let mut targets = Vec::new();
    for i in 0..200 {
        let mut t = MvObject::new("person");
        txn.mv_insert(&mut t).unwrap();
        // Batches of 64 on ad, the rest (and two on ldap) one by one.
        let via = if i % 100 == 7 { "ldap" } else { "ad" };
        targets.push((t.id, via.to_owned()));
    }
    txn.ref_out_waits_set(p.id, "ad", &targets).unwrap();
    txn.commit().unwrap();
    let rows: Vec<(i64, String)> = store
        .writer()
        .conn
        .prepare(
            "SELECT target, via FROM ref_wait_out WHERE mv_id = ?1 AND ma = 'ad' ORDER BY target",
        )
        .unwrap()
        .query_map([p.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, targets);
    assert!(store.read().unwrap().ref_out_ready().unwrap().is_empty());
    // The last target of a full batch, and one on ldap, come.
    for (i, ma) in [(63, "ad"), (107, "ldap")] {
        let mut txn = store.begin().unwrap();
        txn.ref_out_due_clear().unwrap();
        let mut c = CsObject::new(ma, &format!("T{i}"), "", "person");
        c.connection = Connection::Connector {
            mv_id: targets[i].0,
        };
        txn.cs_insert(&mut c).unwrap();
        assert_eq!(txn.ref_out_ready().unwrap(), [p.id], "target {i} on {ma}");
        txn.commit().unwrap();
    }
}

#[test]
fn a_version_8_store_should_note_every_target_waited_for_in_the_migration() {
    use autosync_model::{Connection, MvObject};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let (mut p, mut target) = (MvObject::new("person"), MvObject::new("person"));
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = store.begin().unwrap();
        txn.mv_insert(&mut p).unwrap();
        txn.mv_insert(&mut target).unwrap();
        // The target's connector, then a wait for it (as version 8 could
        // leave it: a wait that ended when it was not looked at).
        let mut t = CsObject::new("ad", "T", "cn=T", "person");
        t.connection = Connection::Connector { mv_id: target.id };
        txn.cs_insert(&mut t).unwrap();
        txn.ref_out_waits_set(p.id, "ad", &[(target.id, "ad".into())])
            .unwrap();
        txn.commit().unwrap();
        assert!(store.read().unwrap().ref_out_ready().unwrap().is_empty());
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE ref_out_due;
             PRAGMA user_version = 8;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.read().unwrap().ref_out_ready().unwrap(), [p.id]);
    // A connector written after a wait notes it.
    let mut q = MvObject::new("person");
    let mut other = MvObject::new("person");
    let mut txn = store.begin().unwrap();
    txn.mv_insert(&mut q).unwrap();
    txn.mv_insert(&mut other).unwrap();
    txn.ref_out_waits_set(q.id, "ad", &[(other.id, "ad".into())])
        .unwrap();
    let mut o = CsObject::new("ad", "O", "cn=O", "person");
    o.connection = Connection::Connector { mv_id: other.id };
    txn.cs_insert(&mut o).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.read().unwrap().ref_out_ready().unwrap(), [p.id, q.id]);
}

#[test]
fn a_version_9_store_should_get_the_names_of_connectors_that_left_in_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = store.begin().unwrap();
        txn.ref_touched_add(&[(4, false)]).unwrap();
        txn.commit().unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE ref_touched_name;
             PRAGMA user_version = 9;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(ref_tables(&store).contains(&"ref_touched_name".to_owned()));
    let name = crate::api::RefName {
        ma: "app".into(),
        anchor: "E4".into(),
        dn: String::new(),
    };
    let mut txn = store.begin().unwrap();
    assert_eq!(txn.ref_touched().unwrap(), [(4, false)], "the note stays");
    txn.ref_touched_names_add(4, std::slice::from_ref(&name))
        .unwrap();
    txn.commit().unwrap();
    assert_eq!(store.read().unwrap().ref_touched_names(4).unwrap(), [name]);
}

/// A store path that is a symbolic link to a file not made yet gets its
/// store where the link points (a code review: the new creation took the
/// link for another process's store and failed), and a build a killed
/// process left beside the store, once a minute old, is removed.
#[cfg(unix)]
#[test]
fn a_store_path_linking_to_no_file_yet_should_get_its_store_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let link = dir.path().join("store.db");
    std::os::unix::fs::symlink("real/store.db", &link).unwrap();
    let left = dir.path().join("real/.store.db.new-0123456789abcdef");
    std::fs::write(&left, b"half").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&left)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let store = SqliteStore::open(&link).unwrap();
    let mut txn = store.begin().unwrap();
    txn.set_watermark("hr", Some("w")).unwrap();
    txn.commit().unwrap();
    drop(store);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::metadata(dir.path().join("real/store.db"))
            .unwrap()
            .len()
            > 0
    );
    assert!(!left.exists(), "the killed build's file is removed");
    let again = SqliteStore::open(&link).unwrap();
    assert_eq!(
        again.read().unwrap().watermark("hr").unwrap().as_deref(),
        Some("w")
    );
}

/// A command that only reads (`status`, `history`) never migrates a
/// store: under a running service of the older version that would stop
/// it (a code review). It says what migrates it; the store is left as it
/// was; a store that needs nothing opens.
#[test]
fn a_store_opened_only_to_read_should_never_be_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    assert!(SqliteStore::open_existing(&path).unwrap().is_some());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE ref_touched_name; PRAGMA user_version = 9;")
            .unwrap();
    }
    let err = SqliteStore::open_existing(&path).err().unwrap();
    assert_eq!(err.kind, crate::api::StoreErrorKind::Version, "{err}");
    assert!(
        err.to_string().contains("schema version 9") && err.to_string().contains("never migrates"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9, "left as it was");
    drop(conn);
    // A command that runs migrates it.
    drop(SqliteStore::open(&path).unwrap());
    assert!(SqliteStore::open_existing(&path).unwrap().is_some());
}

#[test]
fn a_version_6_store_should_get_the_value_row_tables_in_the_migration() {
    use crate::api::ValueRows;
    use autosync_model::{MvObject, MvValue, Value};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let tables = |store: &SqliteStore| -> Vec<String> {
        store
            .writer()
            .conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE name IN \
                 ('val_attr', 'val_decl', 'cs_val', 'mv_val', 'mv_val_value') ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let all = ["cs_val", "mv_val", "mv_val_value", "val_attr", "val_decl"];
    let members = Value::Multi((0..4).map(Value::Reference).collect());
    let mut group = CsObject::new("ad", "g", "cn=g", "group");
    group.hologram.insert("members".into(), members.clone());
    let mut m = MvObject::new("group");
    m.attributes.insert(
        "members".into(),
        MvValue {
            value: members.clone(),
            contributor: "ad".into(),
        },
    );
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(tables(&store), all);
        let mut txn = store.begin().unwrap();
        txn.cs_insert(&mut group).unwrap();
        txn.mv_insert(&mut m).unwrap();
        txn.commit().unwrap();
    }
    // What version 6 had: no value row tables.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE val_attr; DROP TABLE val_decl; DROP TABLE cs_val; DROP TABLE mv_val;
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    {
        let v: i64 = store
            .writer()
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::SCHEMA_VERSION);
    }
    assert_eq!(tables(&store), all);
    assert_eq!(
        store.read().unwrap().cs_get(group.id).unwrap(),
        Some(group.clone())
    );
    // Declared on the migrated store: the metaverse values move into rows
    // (found by value), the connector-space ones on their next write.
    let mut rows = ValueRows::default();
    rows.cs
        .entry("ad".into())
        .or_default()
        .insert("members".into());
    rows.mv
        .entry("group".into())
        .or_default()
        .insert("members".into());
    store.set_value_rows(&rows).unwrap();
    let mut txn = store.begin().unwrap();
    txn.cs_update(&group).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_values_count(group.id, "members").unwrap(), 4);
    assert_eq!(r.mv_values_count(m.id, "members").unwrap(), 4);
    assert_eq!(
        r.mv_find("group", "members", &Value::Reference(2)).unwrap(),
        [m.id]
    );
    assert_eq!(r.cs_get(group.id).unwrap(), Some(group));
    assert_eq!(r.mv_get(m.id).unwrap(), Some(m));
}

#[test]
fn a_management_agent_numbered_by_a_rolled_back_transaction_should_be_numbered_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let mut txn = store.begin().unwrap();
    let mut a = CsObject::new("gone", "a", "cn=a", "person");
    txn.cs_insert(&mut a).unwrap();
    drop(txn);
    let mut txn = store.begin().unwrap();
    let mut b = CsObject::new("hr", "b", "cn=b", "person");
    txn.cs_insert(&mut b).unwrap();
    let mut c = CsObject::new("gone", "c", "cn=c", "person");
    txn.cs_insert(&mut c).unwrap();
    txn.commit().unwrap();
    let mut r = store.read().unwrap();
    assert_eq!(r.cs_counts("hr").unwrap().total, 1);
    assert_eq!(r.cs_counts("gone").unwrap().total, 1);
    assert!(r.cs_by_anchor("hr", "c").unwrap().is_none());
    assert!(r.cs_by_anchor("gone", "b").unwrap().is_none());
    assert_eq!(r.cs_by_anchor("gone", "c").unwrap().unwrap().id, c.id);
}

/// Stores (by path) where another connection commits between two parts of
/// a bulk transaction, as another process could.
static FOREIGN_WRITER_AT: std::sync::Mutex<Vec<std::path::PathBuf>> =
    std::sync::Mutex::new(Vec::new());

/// Called by a bulk transaction's writer thread between a part's commit and
/// the next part's begin.
pub(super) fn between_parts(path: &std::path::Path) {
    let wanted = FOREIGN_WRITER_AT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|p| p == path);
    if wanted {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('foreign', 'x') ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [],
        )
        .unwrap();
    }
}

#[test]
fn a_commit_by_another_process_between_two_parts_should_fail_only_the_part_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    FOREIGN_WRITER_AT.lock().unwrap().push(path.clone());
    let mut at_next_part = None;
    let res = store.write_bulk(&mut |t| {
        t.cs_insert(&mut CsObject::new("hr", "first", "cn=first", "person"))?;
        // Queued: the other connection commits before the next part begins.
        t.commit_so_far()?;
        t.cs_insert(&mut CsObject::new("hr", "second", "cn=second", "person"))?;
        // Waits for the outcome of the first commit and the begin after it.
        let r = t.commit_so_far();
        at_next_part = Some(r.clone());
        r
    });
    let err = res.expect_err("the part after the foreign commit must fail");
    assert_eq!(err.kind, StoreErrorKind::Conflict, "{}", err.message);
    assert!(err.message.contains("rolled back"), "{}", err.message);
    let seen = at_next_part.expect("the work ran to its second commit");
    assert_eq!(
        seen.map_err(|e| e.kind),
        Err(StoreErrorKind::Conflict),
        "the error comes at the latest at the next part's commit"
    );
    let mut r = store.read().unwrap();
    assert!(r.cs_by_anchor("hr", "first").unwrap().is_some());
    assert!(r.cs_by_anchor("hr", "second").unwrap().is_none());
    assert_eq!(r.meta("foreign").unwrap().as_deref(), Some("x"));
    // The store goes on: the lost part is written again.
    let mut t = store.begin().unwrap();
    t.cs_insert(&mut CsObject::new("hr", "second", "cn=second", "person"))
        .unwrap();
    t.commit().unwrap();
    assert_eq!(store.read().unwrap().cs_counts("hr").unwrap().total, 2);
}

#[test]
fn an_update_whose_key_only_hashes_like_the_stored_one_should_still_move_the_object() {
    use super::fresh::cs_key;
    use super::write::{Known, SqliteTxn, WriterRef};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let mut txn = store.begin().unwrap();
    let mut o = CsObject::new("hr", "old", "cn=old", "person");
    txn.cs_insert(&mut o).unwrap();
    txn.commit().unwrap();
    let path = dir.path().join("store.db");
    {
        let mut w = store.writer();
        w.begin(&path).unwrap();
        let mut t = SqliteTxn {
            w: WriterRef::Guard(w),
            path: &path,
        };
        let mut moved = o.clone();
        moved.anchor = "new".into();
        // The writer believes the stored key hashes like the new one (a
        // chance match of the 64-bit hash).
        t.know(o.id, Known::claiming(&o, cs_key("hr", "new")));
        crate::api::StoreTxn::cs_update(&mut t, &moved).unwrap();
        crate::api::StoreTxn::commit(Box::new(t)).unwrap();
    }
    let mut r = store.read().unwrap();
    assert!(r.cs_by_anchor("hr", "old").unwrap().is_none());
    assert_eq!(r.cs_by_anchor("hr", "new").unwrap().unwrap().id, o.id);
}

/// The permission bits of `path`.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The store file and the `-wal` and `-shm` files beside it.
/// A store at `path` holding one connector-space object (committed, so
/// its write-ahead log is not empty while the store is open).
fn store_with_one_object(path: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(path).unwrap();
    let mut txn = store.begin().unwrap();
    let mut person = CsObject::new("hr", "1", "cn=one", "person");
    txn.cs_insert(&mut person).unwrap();
    txn.commit().unwrap();
    store
}

fn store_files(path: &std::path::Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.file_name().unwrap().to_os_string();
        name.push(suffix);
        path.with_file_name(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

#[cfg(unix)]
#[test]
fn a_new_store_and_its_wal_and_shm_files_should_be_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/store.db");
    let _open = store_with_one_object(&path);
    // Open, with a commit in the WAL: all three files exist.
    for file in store_files(&path) {
        assert!(file.exists(), "{} is missing", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[cfg(unix)]
#[test]
fn an_existing_store_should_keep_the_mode_its_administrator_gave_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let _open = store_with_one_object(&path);
    for file in store_files(&path) {
        assert_eq!(mode(&file), 0o640, "{}", file.display());
    }
}

/// The connectors whose exported references wait are found from the
/// waits (a few distinct referrers), each by the metaverse index: never
/// the whole connector space probed against every referrer (a review:
/// `autosync cs` took 10 s at 20,000 objects and 6 minutes at 100,000,
/// both for the count it shows).
#[test]
fn waiting_connectors_should_be_found_from_the_waits() {
    use crate::sqlite::read::Ctx;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let w = store.writer();
    for sql in [
        format!(
            "{}SELECT count(*) FROM ({})",
            Ctx::REFERRERS,
            Ctx::OUT_WAITING
        ),
        format!(
            "{}SELECT id FROM ({}) WHERE id > ?2 ORDER BY id LIMIT ?3",
            Ctx::REFERRERS,
            Ctx::OUT_WAITING
        ),
    ] {
        let plan = plan_of(&w.conn, &sql);
        let scan_r = plan.find("SCAN r").unwrap_or(usize::MAX);
        let search_c = plan
            .find("SEARCH c USING INDEX cs_mv")
            .unwrap_or(usize::MAX);
        assert!(scan_r < search_c && search_c < usize::MAX, "{plan}");
    }
}

/// SQLite's plan of `sql`, its steps joined by ` | `.
fn plan_of(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    plan.join(" | ")
}

/// An existing store file of 0 bytes is no new store: autosync never
/// leaves one so (a truncated file, a copy that failed). Opened as new, it
/// would import and provision everything again: it is refused, untouched.
#[test]
fn an_existing_empty_store_file_should_be_refused_not_started_anew() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(&path, b"").unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{}", err.message);
    for part in [
        path.display().to_string().as_str(),
        "the file is empty (0 bytes)",
        "restore it from a backup",
        "remove it to start a new store",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "written");
    for file in &store_files(&path)[1..] {
        assert!(!file.exists(), "{} was made", file.display());
    }
    // So does opening it only if it exists (a command that only reads).
    let err = SqliteStore::open_existing(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{}", err.message);
}

/// A 0-byte store file with a `-wal` beside it: SQLite does not recover a
/// store from its log (it deletes the log of an empty file and starts an
/// empty store), so it is refused too, and the log is left as it is.
#[test]
fn an_empty_store_file_with_a_wal_beside_it_should_be_refused_and_its_wal_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let _open = store_with_one_object(&path);
    // The log as it is while the store is open, beside a truncated file.
    let [_, wal, _] = store_files(&path);
    let log = std::fs::read(&wal).unwrap();
    assert!(!log.is_empty());
    let copy = dir.path().join("copy/store.db");
    std::fs::create_dir(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, b"").unwrap();
    let [_, copy_wal, _] = store_files(&copy);
    std::fs::write(&copy_wal, &log).unwrap();
    let err = SqliteStore::open(&copy).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{}", err.message);
    assert!(err.message.contains("the file is empty"), "{}", err.message);
    assert!(
        err.message.contains(&format!(
            "its write-ahead log {} ({} bytes) is left as it is",
            copy_wal.display(),
            log.len()
        )),
        "{}",
        err.message
    );
    assert_eq!(std::fs::read(&copy_wal).unwrap(), log, "the log changed");
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), 0);
}

/// A log where no store file is, opened only to read: refused too, not
/// answered as a store where nothing ran (a black-box review).
#[test]
fn a_wal_without_its_store_file_should_be_refused_when_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let _open = store_with_one_object(&path);
    let [_, wal, _] = store_files(&path);
    let log = std::fs::read(&wal).unwrap();
    let other = dir.path().join("other.db");
    let [_, other_wal, _] = store_files(&other);
    std::fs::write(&other_wal, &log).unwrap();
    let err = SqliteStore::open_existing(&other).err().unwrap();
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{}", err.message);
    assert!(err.message.contains("no store file"), "{}", err.message);
    assert!(!other.exists());
}

/// A log where no store file is (the file deleted or moved with changes
/// in its log): no new store is made beside it.
#[test]
fn a_wal_without_its_store_file_should_be_refused_not_joined_to_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let _open = store_with_one_object(&path);
    let [_, wal, _] = store_files(&path);
    let log = std::fs::read(&wal).unwrap();
    let other = dir.path().join("other.db");
    let [_, other_wal, _] = store_files(&other);
    std::fs::write(&other_wal, &log).unwrap();
    let err = SqliteStore::open(&other).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{}", err.message);
    assert!(
        err.message
            .contains("there is no store file, but its write-ahead log"),
        "{}",
        err.message
    );
    assert!(!other.exists(), "a store was made beside the log");
    assert_eq!(std::fs::read(&other_wal).unwrap(), log);
}

/// A new store appears whole at its path (built beside it, then linked):
/// no temporary file is left behind, and it is a store at once.
#[test]
fn a_new_store_should_leave_no_temporary_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/store.db");
    drop(SqliteStore::open(&path).unwrap());
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["store.db"]);
    let page_size: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 8192);
    // Opened again: the same store, not a new one.
    let _open = store_with_one_object(&path);
}

/// Opening only an existing store creates nothing when it is missing:
/// neither the file nor its folder.
#[test]
fn open_existing_should_create_nothing_for_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/store.db");
    assert!(SqliteStore::open_existing(&path).unwrap().is_none());
    assert!(!dir.path().join("state").exists(), "its folder was made");
    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open_existing(&path).unwrap().unwrap();
    assert!(
        store
            .read()
            .unwrap()
            .cs_by_anchor("hr", "1")
            .unwrap()
            .is_none()
    );
}
