//! An anchor of only spaces is a missing anchor in every connector that
//! reads anchors from text (found by a black-box review: an HR export
//! padding an empty cell made `E3,Cat` read as ` ,Cat`, which deleted E3's
//! account and made a new one under ` `). The error names no anchor, so a
//! full import keeps every object absent from the read; an anchor with
//! text is read as it is, spaces around it included.

use crate::common::{build, drain, import_all, person};
use autosync_connector::{ExportChange, ExportOutcome, ImportItem};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_connectors::sqlite::SqliteFactory;
use autosync_model::{ExportKind, ObjectTypeDef};
use rusqlite::Connection;
use serde_json::json;
use std::path::Path;

fn anchors(items: &[ImportItem]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|o| o.anchor.as_str())
        .collect()
}

/// (error type, anchor named, location: detail) of each record error.
fn errors(items: &[ImportItem]) -> Vec<(&str, Option<&str>, String)> {
    items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| {
            (
                e.error_type.as_str(),
                e.anchor.as_deref(),
                format!("{}: {}", e.location, e.detail),
            )
        })
        .collect()
}

fn import_file(
    factory: &dyn autosync_connector::ConnectorFactory,
    name: &str,
    data: &str,
) -> Vec<ImportItem> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), data).unwrap();
    import_all(&mut *build(
        factory,
        dir.path(),
        vec![person()],
        json!({ "path": name }),
    ))
}

/// Two rows whose anchor cell holds only spaces (one with a tab) are each
/// a missing anchor naming no anchor, not one object ` ` (nor a repeated
/// anchor); ` 3` is an anchor and stays as it is.
#[test]
fn a_csv_anchor_cell_of_only_spaces_should_be_a_missing_anchor() {
    let items = import_file(
        &CsvFactory,
        "users.csv",
        "id,name\n1,Ann\n ,Cat\n \t ,Dee\n ,Eli\n 3,Fay\n",
    );
    assert_eq!(anchors(&items), ["1", " 3"]);
    let spaces = "no anchor: column `id` holds only spaces";
    assert_eq!(
        errors(&items),
        [
            (
                "missing-anchor",
                None,
                format!("users.csv line 3: {spaces}")
            ),
            (
                "missing-anchor",
                None,
                format!("users.csv line 4: {spaces}")
            ),
            (
                "missing-anchor",
                None,
                format!("users.csv line 5: {spaces}")
            ),
        ]
    );
}

/// A row in error for another reason whose anchor cell holds only spaces
/// (a wrong field count, a quote never closed) names no anchor either.
#[test]
fn a_csv_row_in_error_with_an_anchor_cell_of_only_spaces_should_name_no_anchor() {
    let items = import_file(
        &CsvFactory,
        "users.csv",
        "id,name,mail\n1,Ann,ann@x\n  ,Bob,bob@x,extra\n ,\"Smith, John,smith@x\n2,Cy,cy@x\n",
    );
    assert_eq!(anchors(&items), ["1", "2"]);
    let named: Vec<(&str, Option<&str>)> = errors(&items)
        .into_iter()
        .map(|(kind, anchor, _)| (kind, anchor))
        .collect();
    assert_eq!(
        named,
        [("malformed-record", None), ("malformed-record", None)]
    );
}

/// A group cell of only spaces puts its row in no group, as an empty one
/// does: no group ` `.
#[test]
fn a_csv_group_cell_of_only_spaces_should_be_no_group_anchor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hr.csv"),
        "employee_id,department\nE1,Sales\nE2,  \nE3,Sales\n",
    )
    .unwrap();
    let department = ObjectTypeDef {
        name: "department".into(),
        anchor: "department".into(),
        dn: None,
        references: Default::default(),
    };
    let settings = json!({
        "path": "hr.csv",
        "group_by": "department",
        "group_values": { "members": "employee_id" },
    });
    let items = import_all(&mut *build(
        &CsvFactory,
        dir.path(),
        vec![department],
        settings,
    ));
    assert_eq!(anchors(&items), ["Sales"]);
    assert_eq!(errors(&items), []);
}

/// A JSON-lines anchor of only spaces is a missing anchor naming no
/// anchor (twice: not a repeated anchor); ` 3` stays as it is.
#[test]
fn a_json_lines_anchor_of_only_spaces_should_be_a_missing_anchor() {
    let items = import_file(
        &JsonlFactory,
        "users.jsonl",
        "{\"id\":\"1\"}\n{\"id\":\"  \",\"name\":\"Cat\"}\n{\"id\":\" \\t\"}\n\
         {\"id\":\"  \",\"name\":\"Eli\"}\n{\"id\":\" 3\"}\n",
    );
    assert_eq!(anchors(&items), ["1", " 3"]);
    let spaces = "no anchor: attribute `id` holds only spaces";
    assert_eq!(
        errors(&items),
        [
            (
                "missing-anchor",
                None,
                format!("users.jsonl line 2: {spaces}")
            ),
            (
                "missing-anchor",
                None,
                format!("users.jsonl line 3: {spaces}")
            ),
            (
                "missing-anchor",
                None,
                format!("users.jsonl line 4: {spaces}")
            ),
        ]
    );
}

/// A line in error for another reason whose anchor holds only spaces (a
/// value autosync does not read, invalid UTF-8) names no anchor.
#[test]
fn a_json_lines_line_in_error_with_an_anchor_of_only_spaces_should_name_no_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"{\"id\":\"1\"}\n{\"id\":\"  \",\"name\":{\"first\":\"E\"}}\n".to_vec();
    data.extend_from_slice(b"{\"id\":\" \",\"name\":\"C\xff\"}\n");
    std::fs::write(dir.path().join("users.jsonl"), data).unwrap();
    let settings = json!({ "path": "users.jsonl" });
    let items = import_all(&mut *build(
        &JsonlFactory,
        dir.path(),
        vec![person()],
        settings,
    ));
    assert_eq!(anchors(&items), ["1"]);
    let named: Vec<(&str, Option<&str>)> = errors(&items)
        .into_iter()
        .map(|(kind, anchor, _)| (kind, anchor))
        .collect();
    assert_eq!(named, [("invalid-value", None), ("invalid-utf8", None)]);
}

/// The export still loads a file holding a line under an anchor of only
/// spaces (written before the import read it as missing), and can delete
/// that line: the account made by mistake can go.
#[test]
fn a_json_lines_export_should_delete_a_line_whose_anchor_is_only_spaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    std::fs::write(
        &path,
        "{\"id\":\" \",\"name\":\"Cat\"}\n{\"id\":\"3\",\"name\":\"Cat\"}\n",
    )
    .unwrap();
    let settings = json!({ "path": "users.jsonl" });
    let mut conn = build(&JsonlFactory, dir.path(), vec![person()], settings);
    let mut session = conn.begin_export().unwrap();
    let delete = ExportChange {
        values: Default::default(),
        object_type: "person".into(),
        anchor: " ".into(),
        dn: " ".into(),
        kind: ExportKind::Delete,
        changes: Default::default(),
        new_dn: None,
    };
    let outcomes = session.apply(&[delete]).unwrap();
    assert_eq!(outcomes, [ExportOutcome::Applied { anchor: None }]);
    session.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"id\":\"3\",\"name\":\"Cat\"}\n"
    );
}

fn sqlite_items(dir: &Path, rows: &str) -> Vec<ImportItem> {
    let db = Connection::open(dir.join("hr.db")).unwrap();
    db.execute_batch(&format!(
        "CREATE TABLE users (id TEXT, name TEXT); INSERT INTO users (rowid, id, name) VALUES {rows};"
    ))
    .unwrap();
    drop(db);
    let settings = json!({ "path": "hr.db", "table": "users" });
    let mut conn = build(&SqliteFactory, dir, vec![person()], settings);
    let (batches, _) = drain(conn.full_import(None).unwrap());
    batches.concat()
}

/// A TEXT anchor of only spaces is a missing anchor naming no anchor, as
/// `''` is (twice: not a repeated anchor); ` 3` stays as it is.
#[test]
fn an_sqlite_anchor_of_only_spaces_should_be_a_missing_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let items = sqlite_items(
        dir.path(),
        "(1, '1', 'Ann'), (2, '  ', 'Cat'), (3, ' ' || char(9), 'Dee'), (4, '  ', 'Eli'), \
         (5, '', 'Fay'), (6, ' 3', 'Gus')",
    );
    assert_eq!(anchors(&items), ["1", " 3"]);
    let spaces = "no anchor: column `id` holds only spaces";
    assert_eq!(
        errors(&items),
        [
            (
                "missing-anchor",
                None,
                format!("table users rowid 2: {spaces}")
            ),
            (
                "missing-anchor",
                None,
                format!("table users rowid 3: {spaces}")
            ),
            (
                "missing-anchor",
                None,
                format!("table users rowid 4: {spaces}")
            ),
            (
                "missing-anchor",
                None,
                "table users rowid 5: no anchor: column `id` is empty".to_owned()
            ),
        ]
    );
}

/// A row in error for another reason whose anchor holds only spaces names
/// no anchor.
#[test]
fn an_sqlite_row_in_error_with_an_anchor_of_only_spaces_should_name_no_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let items = sqlite_items(
        dir.path(),
        "(1, '1', 'Ann'), (2, '  ', CAST(X'43FF' AS TEXT))",
    );
    assert_eq!(anchors(&items), ["1"]);
    let named: Vec<(&str, Option<&str>)> = errors(&items)
        .into_iter()
        .map(|(kind, anchor, _)| (kind, anchor))
        .collect();
    assert_eq!(named, [("invalid-utf8", None)]);
}
