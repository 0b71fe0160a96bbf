//! `check_schemas`: every name an MA's rules read from its connector space,
//! checked against the schema the real connector reads from the real file
//! or database (a CSV header, a table's columns). A name the schema lacks is
//! an error with file, line, key and a suggestion; a schema that cannot be
//! read yet is a warning; JSON lines declares none.

use autosync_config::{Diagnostic, Loaded, SchemaCheck, Severity, check_schemas, load_str};
use autosync_connector::{Registry, SchemaLookup};
use std::path::Path;
use tempfile::TempDir;

fn registry() -> Registry {
    let mut r = Registry::new();
    autosync_connectors::register_all(&mut r);
    r
}

const HR: &str = "employee_id,first_name,last_name,title,status\nE1,Ada,Lovelace,Countess,active\n";

const CONFIG: &str = r#"[metaverse.person]
attributes = ["employeeId", "displayName", "title", "status"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "data/hr.csv" }
object_types = [{ name = "person", anchor = "employee_id" }]
filters = [{ condition = "status == 'test'" }]
join = [{ on = [{ cs = "employee_id", mv = "employeeId" }] }]
projection = [{ mv_type = "person", condition = "status != 'terminated'" }]
import_flows = [
  { mv = "employeeId", from = "employee_id" },
  { mv = "displayName", expr = "first_name + ' ' + last_name" },
  { mv = "title", from = "title" },
  { mv = "status", from = "status" },
]
"#;

/// A folder with `data/hr.csv` and `autosync.toml` holding `config`.
fn folder(config: &str) -> (TempDir, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/hr.csv"), HR).unwrap();
    let loaded = load(dir.path(), config);
    (dir, loaded)
}

fn load(dir: &Path, config: &str) -> Loaded {
    let path = dir.join("autosync.toml");
    std::fs::write(&path, config).unwrap();
    match load_str(config, &path, &registry()) {
        Ok(loaded) => loaded,
        Err(e) => panic!("the configuration should load: {e}"),
    }
}

fn check(loaded: &Loaded) -> SchemaCheck {
    check_schemas(loaded, &registry())
}

/// Each diagnostic as `line:column: key: message (help)`, without the file.
fn lines(check: &SchemaCheck, severity: Severity) -> Vec<String> {
    check
        .diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d: &Diagnostic| {
            let at = d.location.map(|l| (l.line, l.column)).unwrap_or((0, 0));
            let help = d.help.clone().unwrap_or_default();
            format!("{}:{}: {}: {} ({help})", at.0, at.1, d.key, d.message)
        })
        .collect()
}

fn with(from: &str, to: &str) -> String {
    assert!(CONFIG.contains(from), "CONFIG should contain {from:?}");
    CONFIG.replacen(from, to, 1)
}

#[test]
fn names_the_csv_header_has_should_pass() {
    let (_dir, loaded) = folder(CONFIG);
    let check = check(&loaded);
    assert!(check.diagnostics.is_empty(), "{:?}", check.diagnostics);
    match &check.schemas[..] {
        [(ma, SchemaLookup::Known(schema))] => {
            assert_eq!(ma, "hr");
            assert_eq!(schema.source, "data/hr.csv");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_import_flow_reading_a_column_the_csv_file_lacks_should_be_an_error_with_line_and_suggestion()
{
    let (dir, loaded) = folder(&with(r#"from = "title""#, r#"from = "titel""#));
    let check = check(&loaded);
    assert!(check.has_errors());
    assert_eq!(
        lines(&check, Severity::Error),
        [
            r#"14:26: ma "hr" > import_flows[2] > from: import flow to `title` reads `titel`, which data/hr.csv does not have (did you mean `title`?)"#
        ]
    );
    let shown = check.diagnostics[0].to_string();
    let file = dir.path().join("autosync.toml");
    assert!(
        shown.starts_with(&format!("{}:14:26: ", file.display())),
        "{shown}"
    );
}

#[test]
fn expressions_of_filters_joins_projections_and_flows_should_be_checked_at_the_name() {
    let text = with("status == 'test'", "stauts == 'test'")
        .replacen(r#"cs = "employee_id""#, r#"expr = "trim(employe_id)""#, 1)
        .replacen("status != 'terminated'", "state != 'terminated'", 1)
        .replacen("first_name + ' '", "firstname + ' '", 1);
    let (_dir, loaded) = folder(&text);
    let errors = lines(&check(&loaded), Severity::Error);
    assert_eq!(
        errors,
        [
            r#"8:27: ma "hr" > filters[0] > condition: filter #1 reads `stauts`, which data/hr.csv does not have (did you mean `status`?)"#,
            r#"9:32: ma "hr" > join[0] > on[0] > expr: join rule #1 reads `employe_id`, which data/hr.csv does not have (did you mean `employee_id`?)"#,
            r#"10:50: ma "hr" > projection[0] > condition: projection rule #1 reads `state`, which data/hr.csv does not have (did you mean `status`?)"#,
            r#"13:33: ma "hr" > import_flows[1] > expr: import flow to `displayName` reads `firstname`, which data/hr.csv does not have (did you mean `first_name`?)"#,
        ]
    );
}

#[test]
fn an_anchor_or_dn_column_the_file_lacks_should_be_an_error_at_the_object_type() {
    let text = with(
        r#"anchor = "employee_id" }"#,
        r#"anchor = "employeeid", dn = "mail" }"#,
    );
    let (_dir, loaded) = folder(&text);
    let errors = lines(&check(&loaded), Severity::Error);
    assert!(
        errors.contains(&r#"7:45: ma "hr" > object_types[0] > anchor: anchors of object type `person` are read from `employeeid`, which data/hr.csv does not have (did you mean `employee_id`?)"#.to_owned()),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.contains(
            "7:64: ma \"hr\" > object_types[0] > dn: the DN of object type `person` reads `mail`, which data/hr.csv does not have (data/hr.csv has: `employee_id`, `first_name`, `last_name`, `title`, `status`)"
        )),
        "{errors:#?}"
    );
}

#[test]
fn a_source_file_that_does_not_exist_yet_should_be_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(dir.path(), CONFIG);
    let check = check(&loaded);
    assert!(!check.has_errors(), "{:?}", check.diagnostics);
    assert_eq!(
        lines(&check, Severity::Warning),
        [
            r#"6:13: ma "hr" > connector: the names MA `hr` reads from its connector space cannot be checked: data/hr.csv does not exist yet (they are checked once it can be read; meanwhile a full import warns about an import flow whose attribute no object had)"#
        ]
    );
}

#[test]
fn a_column_the_mas_own_export_adds_to_a_csv_file_should_count_as_present() {
    let text = format!(
        "{CONFIG}export_flows = [{{ cs = \"display_name\", from = \"displayName\" }}]\n"
    )
    .replacen(
        r#"{ mv = "title", from = "title" },"#,
        r#"{ mv = "title", from = "title" }, { mv = "displayName", from = "display_name" },"#,
        1,
    );
    let (_dir, loaded) = folder(&text);
    let check = check(&loaded);
    assert!(check.diagnostics.is_empty(), "{:?}", check.diagnostics);
}

#[test]
fn a_script_reading_a_column_the_file_lacks_should_only_be_a_warning() {
    let text = with(
        r#"{ mv = "title", from = "title" }"#,
        r#"{ mv = "title", script = 'attr("job_title")' }"#,
    );
    let (_dir, loaded) = folder(&text);
    let check = check(&loaded);
    assert!(!check.has_errors(), "{:?}", check.diagnostics);
    let warnings = lines(&check, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(
            "import flow to `title`: the script reads `job_title`, which data/hr.csv does not have"
        ),
        "{warnings:?}"
    );
}

const APP: &str = r#"[metaverse.person]
attributes = ["employeeId", "accountName", "status"]

[[ma]]
name = "app"
connector = { type = "sqlite", path = "app.db", table = "users", anchor_column = "uid", object_type_column = "kind" }
object_types = [{ name = "user", anchor = "employeeId" }, { name = "admin", anchor = "adminId" }]
join = [{ object_type = "user", on = [{ cs = "employee_number", mv = "employeeId" }] }]
import_flows = [{ object_type = "user", mv = "accountName", from = "username" }]
"#;

#[test]
fn sqlite_reads_should_be_checked_against_the_tables_columns_and_anchors_against_anchor_column() {
    let dir = tempfile::tempdir().unwrap();
    rusqlite_table(
        &dir.path().join("app.db"),
        "CREATE TABLE users (uid TEXT PRIMARY KEY, kind TEXT, employee_no TEXT, username TEXT);",
    );
    let loaded = load(dir.path(), APP);
    let check = check(&loaded);
    assert_eq!(
        lines(&check, Severity::Error),
        [
            r#"8:46: ma "app" > join[0] > on[0] > cs: join rule #1 reads `employee_number`, which table `users` of app.db does not have (did you mean `employee_no`?)"#
        ],
        "the anchors are read from `anchor_column = \"uid\"`: no error about `employeeId` or `adminId`"
    );
    let text = APP.replace(r#"anchor_column = "uid""#, r#"anchor_column = "id""#);
    let loaded = load(dir.path(), &text);
    let errors = lines(&check_schemas(&loaded, &registry()), Severity::Error);
    assert!(
        errors.iter().any(|e| e.starts_with(r#"6:82: ma "app" > connector > anchor_column: anchors of object type `user` are read from `id`, which table `users` of app.db does not have"#)),
        "{errors:#?}"
    );
}

#[test]
fn a_sqlite_setting_naming_a_column_the_table_lacks_should_be_an_error_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    rusqlite_table(
        &dir.path().join("app.db"),
        "CREATE TABLE users (uid TEXT PRIMARY KEY, kind TEXT, employee_number TEXT, username TEXT);",
    );
    let text = APP.replace(
        r#"object_type_column = "kind" }"#,
        r#"object_type_column = "kind", columns = ["employee_number", "usrname"] }"#,
    );
    let loaded = load(dir.path(), &text);
    let errors = lines(&check(&loaded), Severity::Error);
    assert_eq!(
        errors,
        [
            r#"6:128: ma "app" > connector > columns: column `usrname` is not a column of table `users` (table `users` has: uid, kind, employee_number, username)"#,
            r#"9:68: ma "app" > import_flows[0] > from: import flow to `accountName` reads `username`, which table `users` of app.db does not have (table `users` of app.db has: `uid`, `employee_number`)"#,
        ]
    );
}

#[test]
fn an_export_flow_into_a_column_the_table_lacks_should_be_an_error_but_not_into_a_csv_file() {
    let dir = tempfile::tempdir().unwrap();
    rusqlite_table(
        &dir.path().join("app.db"),
        "CREATE TABLE users (uid TEXT PRIMARY KEY, kind TEXT, employee_number TEXT, username TEXT);",
    );
    let text = format!(
        "{APP}export_flows = [{{ object_type = \"user\", cs = \"usrname\", from = \"accountName\" }}]\n"
    );
    let loaded = load(dir.path(), &text);
    let errors = lines(&check(&loaded), Severity::Error);
    assert_eq!(
        errors,
        [
            r#"10:46: ma "app" > export_flows[0] > cs: export flow to `usrname` writes an attribute table `users` of app.db does not have (did you mean `username`?)"#
        ]
    );
    let text =
        format!("{CONFIG}export_flows = [{{ cs = \"nickname\", from = \"displayName\" }}]\n");
    let (_dir, loaded) = folder(&text);
    let check = check(&loaded);
    assert!(
        check.diagnostics.is_empty(),
        "a CSV export adds the column: {:?}",
        check.diagnostics
    );
}

#[test]
fn a_json_lines_source_should_be_left_to_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = CONFIG.replace(
        r#"{ type = "csv", path = "data/hr.csv" }"#,
        r#"{ type = "jsonl", path = "hr.jsonl" }"#,
    );
    let loaded = load(dir.path(), &text);
    let check = check(&loaded);
    assert!(check.diagnostics.is_empty(), "{:?}", check.diagnostics);
    assert_eq!(check.schemas[0].1, SchemaLookup::Undeclared);
}

fn rusqlite_table(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}
