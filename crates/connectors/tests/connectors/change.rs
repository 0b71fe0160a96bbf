//! What each connector offers to notice its system's changes
//! (`ConnectorFactory::change_detection`), from its settings alone: the
//! file connectors a file watch read with their own reader (for
//! `ignore_attributes`), SQLite with `delta` a poll whose token moves with
//! the changelog or the tracking column, and `sql_scalar`, the function the
//! SQLite connector lends to trigger scripts (read-only).

use crate::common::{ctx, person, settings};
use autosync_connector::{
    ChangeDetection, ChangeOfferKind, ConnectorFactory, FileContent, Registry, ScriptValue,
};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_connectors::sqlite::SqliteFactory;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn detect(
    factory: &dyn ConnectorFactory,
    dir: &Path,
    values: serde_json::Value,
    shown: serde_json::Value,
) -> ChangeDetection {
    factory.change_detection(
        &settings(values),
        &settings(shown),
        &ctx(dir, vec![person()]),
    )
}

fn reader(d: &ChangeDetection) -> Arc<dyn FileContent> {
    d.file_watch().unwrap().content.clone().unwrap()
}

#[test]
fn a_csv_file_should_be_watched_and_named_as_the_configuration_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = detect(
        &CsvFactory,
        dir.path(),
        json!({ "path": "data/hr.csv" }),
        json!({ "type": "csv", "path": "${HR_DIR}/hr.csv" }),
    );
    let offer = d.proposed().unwrap();
    assert_eq!(
        offer.sentence,
        "csv connector: a file watch on ${HR_DIR}/hr.csv"
    );
    let watch = d.file_watch().unwrap();
    assert_eq!(
        watch.path,
        dir.path().join("data/hr.csv"),
        "the value, resolved"
    );
    assert_eq!(watch.shown_path.as_deref(), Some("${HR_DIR}/hr.csv"));
    assert!(d.poll().is_none());
}

fn fingerprint(content: &dyn FileContent, ignored: &[&str]) -> u64 {
    content
        .fingerprint(&|name| ignored.contains(&name))
        .unwrap()
}

#[test]
fn a_csv_change_only_in_ignored_columns_should_keep_the_fingerprint_with_the_connectors_delimiter()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hr.csv");
    let d = detect(
        &CsvFactory,
        dir.path(),
        json!({ "path": "hr.csv", "delimiter": ";" }),
        json!({ "path": "hr.csv" }),
    );
    let content = reader(&d);
    let ignore = ["last_logon"];
    std::fs::write(&path, "id;title;last_logon\n1;Dev;2026-01-01\n").unwrap();
    let a = fingerprint(content.as_ref(), &ignore);
    std::fs::write(&path, "id;title;last_logon\n1;Dev;2026-11-23\n").unwrap();
    let b = fingerprint(content.as_ref(), &ignore);
    assert_eq!(a, b, "only the ignored column changed");
    assert_ne!(
        a,
        fingerprint(content.as_ref(), &[]),
        "not ignored: it counts"
    );
    std::fs::write(&path, "id;title;last_logon\n1;Ops;2026-11-23\n").unwrap();
    assert_ne!(a, fingerprint(content.as_ref(), &ignore));
    std::fs::write(&path, "id;title;last_logon\n1;Ops;2026-11-23\n2;Dev;x\n").unwrap();
    let added = fingerprint(content.as_ref(), &ignore);
    std::fs::write(&path, "id;title;last_logon\n1;Ops;2026-11-23\n").unwrap();
    assert_ne!(added, fingerprint(content.as_ref(), &ignore), "rows count");
    std::fs::remove_file(&path).unwrap();
    assert!(
        content.fingerprint(&|_| false).is_err(),
        "unreadable: an error"
    );
}

#[test]
fn a_jsonl_change_only_in_ignored_keys_should_keep_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let d = detect(
        &JsonlFactory,
        dir.path(),
        json!({ "path": "d.jsonl" }),
        json!({ "path": "d.jsonl" }),
    );
    assert_eq!(
        d.proposed().unwrap().sentence,
        "jsonl connector: a file watch on d.jsonl"
    );
    let content = reader(&d);
    std::fs::write(&path, "{\"id\":\"1\",\"seen\":1}\n").unwrap();
    let a = fingerprint(content.as_ref(), &["seen"]);
    std::fs::write(&path, "{\"seen\":2,\"id\":\"1\"}\n").unwrap();
    assert_eq!(a, fingerprint(content.as_ref(), &["seen"]), "key order too");
    std::fs::write(&path, "{\"id\":\"2\",\"seen\":2}\n").unwrap();
    assert_ne!(a, fingerprint(content.as_ref(), &["seen"]));
}

fn people_db(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("people.db")).unwrap();
    conn.execute_batch(
        "create table people(id text primary key, name text, updated_at integer);
         create table people_log(seq integer primary key, id text, op text);",
    )
    .unwrap();
    conn
}

#[test]
fn sqlite_without_delta_should_offer_only_a_file_watch_that_discovery_does_not_propose() {
    let dir = tempfile::tempdir().unwrap();
    let s = json!({ "path": "people.db", "table": "people" });
    let d = detect(&SqliteFactory, dir.path(), s.clone(), s);
    assert!(d.proposed().is_none());
    assert!(d.poll().is_none());
    assert!(
        d.why_none
            .as_deref()
            .unwrap()
            .starts_with("sqlite connector without `delta`"),
        "{:?}",
        d.why_none
    );
    let watch = d.file_watch().unwrap();
    assert_eq!(watch.path, dir.path().join("people.db"));
    assert!(watch.content.is_none(), "a database file is compared whole");
}

#[test]
fn sqlite_with_a_changelog_should_offer_a_poll_that_moves_with_the_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let conn = people_db(dir.path());
    let s = json!({ "path": "people.db", "table": "people", "delta": {
        "kind": "changelog", "table": "people_log", "sequence_column": "seq", "anchor_column": "id" } });
    let d = detect(&SqliteFactory, dir.path(), s.clone(), s);
    let offer = d.proposed().unwrap();
    assert!(matches!(offer.kind, ChangeOfferKind::Poll(_)), "{offer:?}");
    assert_eq!(
        offer.sentence,
        r#"sqlite connector with a changelog: a change poll asks people.db for `SELECT max("seq") FROM "people_log"`"#
    );
    assert!(d.file_watch().is_some(), "the file watch is still offered");
    let probe = d.poll().unwrap().probe.clone();
    assert_eq!(probe.token().unwrap(), None, "an empty changelog");
    conn.execute("insert into people_log(id, op) values ('1', 'I')", [])
        .unwrap();
    let one = probe.token().unwrap();
    assert_eq!(one.as_deref(), Some("1"));
    assert_eq!(probe.token().unwrap(), one, "no change, same token");
    conn.execute("insert into people_log(id, op) values ('1', 'U')", [])
        .unwrap();
    assert_ne!(probe.token().unwrap(), one);
}

#[test]
fn sqlite_with_a_tracking_column_should_poll_its_largest_value_and_fail_when_the_database_is_gone()
{
    let dir = tempfile::tempdir().unwrap();
    let conn = people_db(dir.path());
    let s = json!({ "path": "people.db", "table": "people",
                    "delta": { "kind": "column", "column": "updated_at" } });
    let d = detect(&SqliteFactory, dir.path(), s.clone(), s);
    assert!(
        d.proposed()
            .unwrap()
            .sentence
            .contains(r#"`SELECT max("updated_at") FROM "people"`"#)
    );
    let probe = d.poll().unwrap().probe.clone();
    conn.execute("insert into people values ('1', 'Ann', 7)", [])
        .unwrap();
    assert_eq!(probe.token().unwrap().as_deref(), Some("7"));
    drop(conn);
    std::fs::remove_file(dir.path().join("people.db")).unwrap();
    let e = probe.token().unwrap_err();
    assert!(e.message.contains("cannot poll"), "{e}");
    assert!(
        !dir.path().join("people.db").exists(),
        "the probe never creates the database"
    );
}

#[test]
fn sql_scalar_should_be_lent_by_the_registry_and_read_one_value_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("source.db")).unwrap();
    conn.execute_batch(
        "create table changes(id integer); insert into changes values (1), (2), (3);",
    )
    .unwrap();
    let mut registry = Registry::new();
    autosync_connectors::register_all(&mut registry);
    let functions = registry.script_functions();
    let names: Vec<&str> = functions.iter().map(|f| f.name).collect();
    assert_eq!(names, ["sql_scalar"]);
    let sql_scalar = functions[0].call;
    assert_eq!(
        sql_scalar(dir.path(), &["source.db", "select count(*) from changes"]),
        Ok(ScriptValue::Integer(3))
    );
    assert_eq!(
        sql_scalar(dir.path(), &["source.db", "select null"]),
        Ok(ScriptValue::Unit)
    );
    let err = sql_scalar(dir.path(), &["source.db", "delete from changes"]).unwrap_err();
    assert!(
        err.contains("sql_scalar(source.db)") && err.contains("readonly"),
        "{err}"
    );
    let count: i64 = conn
        .query_row("select count(*) from changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3);
}
