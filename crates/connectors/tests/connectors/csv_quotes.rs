//! The CSV connector and quotes that span lines: a multi-line value
//! imports, an unclosed quote is one error at its first line and every row
//! after it is imported or reported on its own.

use crate::common::{ctx, drain, person, settings};
use autosync_connector::{Connector, ConnectorFactory, ImportItem};
use autosync_connectors::csv::CsvFactory;
use autosync_model::Value;
use serde_json::json;
use std::path::Path;

fn connector(dir: &Path, extra: serde_json::Value) -> Box<dyn Connector> {
    let mut s = settings(json!({"path": "users.csv"}));
    s.extend(settings(extra));
    CsvFactory.build(&s, &ctx(dir, vec![person()])).unwrap()
}

/// Import `data` (with `extra` settings): every item, and the watermark
/// (there only when the file-change check passed).
fn import(data: &[u8], extra: serde_json::Value) -> (Vec<ImportItem>, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), data).unwrap();
    let mut conn = connector(dir.path(), extra);
    let (batches, watermark) = drain(conn.full_import(None).unwrap());
    (batches.concat(), watermark)
}

fn anchors(items: &[ImportItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|o| o.anchor.clone())
        .collect()
}

/// (anchor, location, error type) of each error.
fn errors(items: &[ImportItem]) -> Vec<(Option<String>, String, String)> {
    items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| (e.anchor.clone(), e.location.clone(), e.error_type.clone()))
        .collect()
}

fn rows(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{i},User {i},u{i}@x\n")).collect()
}

#[test]
fn an_unclosed_quote_should_be_one_error_at_its_line_and_every_later_row_should_import() {
    let data = format!(
        "id,name,mail\n{}3,\"Smith, John,smith@x\n{}",
        rows(1..3),
        rows(4..8)
    );
    let (items, watermark) = import(data.as_bytes(), json!({}));
    assert_eq!(anchors(&items), ["1", "2", "4", "5", "6", "7"]);
    assert_eq!(
        errors(&items),
        [(
            Some("3".to_owned()),
            "users.csv line 4".to_owned(),
            "malformed-record".to_owned()
        )]
    );
    let detail = &items[2].as_ref().unwrap_err().detail;
    assert!(detail.contains("never closed"), "{detail}");
    assert!(watermark.is_some(), "the whole file was read once");
}

#[test]
fn a_stray_quote_closed_by_a_later_quote_should_not_swallow_the_rows_between() {
    // Leniently read, row 2's quote would end at the quote that opens a
    // field of row 5, swallowing rows 3 and 4.
    let data = "id,name,mail\r\n1,Ann,a@x\r\n2,\"Bob,b@x\r\n3,Cy,c@x\r\n4,Dee,d@x\r\n\
                5,\"Eve\",e@x\r\n6,Fay\",f@x,\r\n7,Gus,g@x\r\n";
    let (items, _) = import(data.as_bytes(), json!({}));
    assert_eq!(anchors(&items), ["1", "3", "4", "5", "7"]);
    assert_eq!(
        errors(&items),
        [
            (
                Some("2".to_owned()),
                "users.csv line 3".to_owned(),
                "malformed-record".to_owned()
            ),
            (
                Some("6".to_owned()),
                "users.csv line 7".to_owned(),
                "malformed-record".to_owned()
            ),
        ]
    );
}

#[test]
fn a_quoted_field_spanning_lines_should_still_import() {
    let data = "id,name,mail\n1,\"Ann\nof 12 Main St, Springfield\nIL\",\"a@x\"\r\n\
                2,\"Bob \"\"B\"\"\r\nSmith\",b@x\n3,Cy,c@x";
    let (items, _) = import(data.as_bytes(), json!({}));
    assert!(errors(&items).is_empty(), "{items:?}");
    assert_eq!(anchors(&items), ["1", "2", "3"]);
    let name = |i: usize| items[i].as_ref().unwrap().attributes["name"].clone();
    assert_eq!(name(0), Value::from("Ann\nof 12 Main St, Springfield\nIL"));
    assert_eq!(name(1), Value::from("Bob \"B\"\r\nSmith"));
}

#[test]
fn a_quoted_field_over_max_record_lines_should_be_judged_unclosed() {
    let data = "id,name,mail\n1,\"a\nb\nc\",a@x\n2,\"a\nb\nc\nd\",b@x\n3,Cy,c@x\n";
    let (items, _) = import(data.as_bytes(), json!({"max_record_lines": 3}));
    assert_eq!(anchors(&items)[..2], ["1", "3"]);
    let errors = errors(&items);
    assert_eq!(
        errors[0],
        (
            Some("2".to_owned()),
            "users.csv line 5".to_owned(),
            "malformed-record".to_owned()
        )
    );
    let detail = &items[1].as_ref().unwrap_err().detail;
    assert!(detail.contains("runs over 3 lines"), "{detail}");
    // With the default (100 lines) both records stand.
    let (items, _) = import(data.as_bytes(), json!({}));
    assert_eq!(anchors(&items), ["1", "2", "3"]);
}

/// A stray quote near the start of a file far larger than the reader's
/// buffer: the rest is read once, not pulled into one record, and every
/// row after it is imported.
#[test]
fn an_unclosed_quote_in_a_large_file_should_cost_one_error() {
    let data = format!(
        "id,name,mail\n1,\"Ann,a@x\n{}last,\"L\nL\",l@x\n",
        rows(2..100_000)
    );
    let (items, watermark) = import(data.as_bytes(), json!({}));
    assert!(watermark.is_some());
    assert_eq!(items.len(), 100_000);
    assert_eq!(
        errors(&items),
        [(
            Some("1".to_owned()),
            "users.csv line 2".to_owned(),
            "malformed-record".to_owned()
        )]
    );
    let detail = &items[0].as_ref().unwrap_err().detail;
    assert!(detail.contains("runs over 100 lines"), "{detail}");
    assert_eq!(anchors(&items).last().map(String::as_str), Some("last"));
}

#[test]
fn an_error_after_an_unclosed_quote_should_name_its_own_line() {
    let data = "id,name,mail\n\n1,\"Ann,a@x\n2,Bob\n\n3,Cy,c@x\n";
    let (items, _) = import(data.as_bytes(), json!({}));
    assert_eq!(anchors(&items), ["3"]);
    let locations: Vec<String> = errors(&items).into_iter().map(|e| e.1).collect();
    assert_eq!(locations, ["users.csv line 3", "users.csv line 4"]);
}

#[test]
fn an_unclosed_quote_before_the_anchor_should_be_an_error_without_anchor() {
    let data = "name,id,mail\n\"Ann,1,a@x\nBob,2,b@x\n";
    let (items, _) = import(data.as_bytes(), json!({}));
    assert_eq!(anchors(&items), ["2"]);
    assert_eq!(
        errors(&items),
        [(
            None,
            "users.csv line 2".to_owned(),
            "malformed-record".to_owned()
        )]
    );
}

/// The limit of what can be told: a quote left open on row 1 that the
/// opening quote of row 2's multi-line field closes makes one sound record
/// of row 1 and the first line of row 2. What is left of row 2 is then read
/// strictly: an error on its line, not a row imported from its remains.
#[test]
fn the_rest_of_a_row_swallowed_in_part_should_be_an_error_not_an_object() {
    let data = "id,name,mail,x\n1,x,\"xyz\n2,\",\nb,c\",m,g\n3,Cy,c@x,y\n";
    let (items, _) = import(data.as_bytes(), json!({}));
    assert_eq!(anchors(&items), ["1", "3"]);
    assert_eq!(
        errors(&items),
        [(
            Some("b".to_owned()),
            "users.csv line 4".to_owned(),
            "malformed-record".to_owned()
        )]
    );
    let detail = &items[1].as_ref().unwrap_err().detail;
    assert!(
        detail.contains("a quote stands inside a field on line 4"),
        "{detail}"
    );
}

/// A value the import would take for a quote left open (a line inside it
/// reads as a whole row) is refused at export, not written to come back as
/// an error and a stray object; a multi-line address is written and reads
/// back as it was (found by a black-box review: a note with such a line
/// made a phantom row, and export and import corrected each other for
/// ever).
#[test]
fn an_export_should_refuse_a_value_that_would_not_read_back_and_write_one_that_does() {
    use autosync_connector::{ExportChange, ExportOutcome};
    use autosync_model::ExportKind;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), "id,name,mail\n").unwrap();
    let mut conn = connector(dir.path(), json!({}));
    let add = |id: &str, name: &str| ExportChange {
        values: Default::default(),
        object_type: "person".into(),
        anchor: id.into(),
        dn: id.into(),
        kind: ExportKind::Add,
        changes: [
            ("name".to_owned(), Some(Value::from(name))),
            ("mail".to_owned(), Some(Value::from("m@x"))),
        ]
        .into_iter()
        .collect(),
        new_dn: None,
    };
    let mut session = conn.begin_export().unwrap();
    let out = session
        .apply(&[
            add("1", "first\n9,Evil,x\nlast"),
            add("2", "Ann\nof 12 Main St, Springfield\nIL"),
        ])
        .unwrap();
    session.commit().unwrap();
    match &out[0] {
        ExportOutcome::Failed { error_type, detail } => {
            assert_eq!(error_type, "value-not-representable");
            assert!(detail.contains("read back"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out[1], ExportOutcome::Applied { anchor: None });
    let (batches, _) = drain(conn.full_import(None).unwrap());
    let items = batches.concat();
    assert!(errors(&items).is_empty(), "{items:?}");
    assert_eq!(anchors(&items), ["2"]);
    assert_eq!(
        items[0].as_ref().unwrap().attributes["name"],
        Value::from("Ann\nof 12 Main St, Springfield\nIL")
    );
}
