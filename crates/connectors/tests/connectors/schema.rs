//! `ConnectorFactory::schema`: what each connector says its objects'
//! attributes are before any run, read from the real file or database
//! without creating or changing anything.

use crate::common::{ctx, person, settings};
use autosync_connector::{ConnectorFactory, ObjectTypeSchema, SchemaLookup, SourceSchema};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::ObjectTypeDef;
use rusqlite::Connection;
use serde_json::json;
use std::path::Path;

fn lookup(factory: &dyn ConnectorFactory, dir: &Path, v: serde_json::Value) -> SchemaLookup {
    factory.schema(&settings(v), &ctx(dir, vec![person()]))
}

fn known(lookup: SchemaLookup) -> SourceSchema {
    match lookup {
        SchemaLookup::Known(s) => s,
        other => panic!("expected a known schema, got {other:?}"),
    }
}

fn unavailable(lookup: SchemaLookup) -> String {
    match lookup {
        SchemaLookup::Unavailable(why) => why,
        other => panic!("expected an unavailable schema, got {other:?}"),
    }
}

fn names(schema: &SourceSchema, object_type: &str) -> Vec<String> {
    schema.object_types[object_type].attributes.clone()
}

#[test]
fn a_csv_schema_should_be_its_header_row_named_as_the_settings_write_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/hr.csv"),
        "\u{feff}id; first_name ;title\n1;Ada;Countess\n",
    )
    .unwrap();
    let schema = known(lookup(
        &CsvFactory,
        dir.path(),
        json!({"path": "data/hr.csv", "delimiter": ";"}),
    ));
    assert_eq!(schema.source, "data/hr.csv");
    assert_eq!(names(&schema, "person"), ["id", "first_name", "title"]);
    assert_eq!(schema.object_types["person"].anchor, "id");
    assert!(schema.export_adds_attributes, "a CSV export adds columns");
}

#[test]
fn a_csv_schema_should_leave_out_the_object_type_column_for_every_type() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.csv"), "kind,id,name,members\n").unwrap();
    let group = ObjectTypeDef {
        name: "group".into(),
        anchor: "id".into(),
        dn: Some("name".into()),
        references: Default::default(),
    };
    let schema = known(CsvFactory.schema(
        &settings(json!({"path": "all.csv", "object_type_column": "kind"})),
        &ctx(dir.path(), vec![person(), group]),
    ));
    assert_eq!(names(&schema, "person"), ["id", "name", "members"]);
    assert_eq!(names(&schema, "group"), ["id", "name", "members"]);
}

#[test]
fn a_csv_file_that_does_not_exist_yet_or_is_empty_should_have_no_schema_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let why = unavailable(lookup(&CsvFactory, dir.path(), json!({"path": "out.csv"})));
    assert_eq!(why, "out.csv does not exist yet");
    assert!(!dir.path().join("out.csv").exists(), "nothing is created");
    std::fs::write(dir.path().join("out.csv"), "").unwrap();
    let why = unavailable(lookup(&CsvFactory, dir.path(), json!({"path": "out.csv"})));
    assert!(why.contains("out.csv is empty"), "{why}");
}

#[test]
fn a_csv_header_with_a_repeated_column_should_have_no_schema_and_say_where() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hr.csv"), "id,name,name\n").unwrap();
    let why = unavailable(lookup(&CsvFactory, dir.path(), json!({"path": "hr.csv"})));
    assert!(why.contains("hr.csv line 1"), "{why}");
}

#[test]
fn a_sqlite_schema_should_be_the_columns_an_import_reads() {
    let dir = tempfile::tempdir().unwrap();
    Connection::open(dir.path().join("app.db"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE users (uid TEXT PRIMARY KEY, name TEXT, mail TEXT, updated_at INTEGER);",
        )
        .unwrap();
    let all = known(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "app.db", "table": "users", "anchor_column": "uid",
               "delta": {"kind": "column", "column": "updated_at"}}),
    ));
    assert_eq!(all.source, "table `users` of app.db");
    assert_eq!(names(&all, "person"), ["uid", "name", "mail"]);
    assert_eq!(
        all.object_types["person"],
        ObjectTypeSchema {
            attributes: vec!["uid".into(), "name".into(), "mail".into()],
            anchor: "uid".into(),
        },
        "the anchor is read from `anchor_column`, not the object type's `id`"
    );
    assert!(!all.export_adds_attributes, "a table's columns are fixed");
    let some = known(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "app.db", "table": "users", "anchor_column": "uid", "columns": ["mail"]}),
    ));
    assert_eq!(names(&some, "person"), ["uid", "mail"]);
}

#[test]
fn a_sqlite_table_the_connector_will_create_should_have_the_configured_columns_and_nothing_created()
{
    let dir = tempfile::tempdir().unwrap();
    let schema = known(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "data/app.db", "table": "users", "create_table": true,
               "columns": ["name", "mail"]}),
    ));
    assert_eq!(names(&schema, "person"), ["id", "name", "mail"]);
    assert!(!dir.path().join("data").exists(), "nothing is created");
    Connection::open(dir.path().join("other.db"))
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x TEXT);")
        .unwrap();
    let schema = known(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "other.db", "table": "users", "create_table": true, "columns": ["id", "cn"]}),
    ));
    assert_eq!(names(&schema, "person"), ["id", "cn"]);
}

#[test]
fn a_missing_sqlite_database_or_table_should_have_no_schema_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let why = unavailable(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "app.db", "table": "users"}),
    ));
    assert_eq!(why, "database file app.db does not exist");
    assert!(!dir.path().join("app.db").exists(), "nothing is created");
    Connection::open(dir.path().join("app.db"))
        .unwrap()
        .execute_batch("CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT);")
        .unwrap();
    let why = unavailable(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "app.db", "table": "accounts"}),
    ));
    assert_eq!(why, "table `accounts` does not exist in app.db");
}

#[test]
fn settings_naming_columns_a_sqlite_table_lacks_should_be_problems_at_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    Connection::open(dir.path().join("app.db"))
        .unwrap()
        .execute_batch("CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, kind TEXT);")
        .unwrap();
    let schema = known(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "app.db", "table": "users", "columns": ["nmae", "name"],
               "object_type_column": "type", "delta": {"kind": "column", "column": "changed"}}),
    ));
    let problems: Vec<(&str, &str)> = schema
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (
                "delta",
                "the delta column `changed` is not a column of table `users`"
            ),
            (
                "object_type_column",
                "the object type column `type` is not a column of table `users`"
            ),
            ("columns", "column `nmae` is not a column of table `users`"),
        ]
    );
    assert_eq!(
        schema.problems[2].help.as_deref(),
        Some("table `users` has: id, name, kind")
    );
    assert_eq!(
        names(&schema, "person"),
        ["id", "name"],
        "what exists is read"
    );
    let missing_anchor = known(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "app.db", "table": "users", "anchor_column": "uid"}),
    ));
    assert_eq!(names(&missing_anchor, "person"), ["id", "name", "kind"]);
    assert_eq!(
        missing_anchor.object_types["person"].anchor, "uid",
        "left for `check` to report where the anchor is named"
    );
}

#[test]
fn column_types_naming_a_column_the_ma_does_not_handle_should_be_a_problem_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    Connection::open(dir.path().join("app.db"))
        .unwrap()
        .execute_batch("CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, active INTEGER);")
        .unwrap();
    let schema = known(lookup(
        &SqliteFactory,
        dir.path(),
        json!({"path": "app.db", "table": "users",
               "column_types": {"active": "boolean", "activ": "boolean"}}),
    ));
    let problems: Vec<(&str, &str)> = schema
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        problems,
        [(
            "column_types",
            "column_types names `activ`, which is not a column this MA reads and writes"
        )]
    );
    assert_eq!(
        schema.problems[0].help.as_deref(),
        Some("the MA reads and writes: id, name, active")
    );
}

#[test]
fn a_csv_header_without_the_object_type_column_should_be_a_problem_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.csv"), "id,name\n").unwrap();
    let schema = known(lookup(
        &CsvFactory,
        dir.path(),
        json!({"path": "all.csv", "object_type_column": "kind"}),
    ));
    assert_eq!(schema.problems.len(), 1, "{:?}", schema.problems);
    assert_eq!(schema.problems[0].key, "object_type_column");
    assert_eq!(
        schema.problems[0].message,
        "the object type column `kind` is not a column of all.csv"
    );
}

#[test]
fn a_json_lines_file_should_declare_no_schema() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dir.jsonl"),
        "{\"id\": \"1\", \"mail\": \"a@b\"}\n",
    )
    .unwrap();
    let answer = lookup(&JsonlFactory, dir.path(), json!({"path": "dir.jsonl"}));
    assert_eq!(answer, SchemaLookup::Undeclared);
}
