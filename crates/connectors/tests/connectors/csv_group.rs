//! The CSV connector reading a file as groups of rows (`group_by`,
//! `group_values`): one object per department of an HR file, its people's
//! ids as members.

use crate::common::{build, ctx, drain, import_all, settings};
use autosync_connector::{ConnectorFactory, ImportItem, SchemaLookup};
use autosync_connectors::csv::CsvFactory;
use autosync_model::{ObjectTypeDef, Value};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

fn department() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "department".into(),
        anchor: "department".into(),
        dn: None,
        references: Default::default(),
    }
}

fn grouped() -> serde_json::Value {
    json!({
        "path": "hr.csv",
        "group_by": "department",
        "group_values": { "members": "employee_id", "titles": "title" },
    })
}

/// Department -> (members, titles), from a full import; the record errors
/// apart.
type Groups = BTreeMap<String, (Vec<String>, Vec<String>)>;

fn groups(items: Vec<ImportItem>) -> (Groups, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let list = |v: Option<&Value>| match v {
        Some(Value::Multi(vs)) => vs.iter().map(Value::to_text).collect(),
        None => Vec::new(),
        Some(other) => panic!("not a multi-value: {other:?}"),
    };
    for item in items {
        match item {
            Ok(o) => {
                assert_eq!(o.object_type, "department");
                assert_eq!(o.dn, o.anchor);
                assert_eq!(o.attributes["department"], Value::from(o.anchor.as_str()));
                assert_eq!(o.attributes.len(), 3, "{o:?}");
                let members = list(o.attributes.get("members"));
                let titles = list(o.attributes.get("titles"));
                out.insert(o.anchor, (members, titles));
            }
            Err(e) => errors.push(format!("{} {} {:?}", e.error_type, e.location, e.anchor)),
        }
    }
    (out, errors)
}

fn write(dir: &Path, text: &str) {
    std::fs::write(dir.join("hr.csv"), text).unwrap();
}

const HR: &str = "employee_id,name,department,title\n\
    E1,Ann,Sales,Rep\n\
    E2,Bob,Finance,Clerk\n\
    E3,Cid,Sales,Lead\n\
    E4,Dee,,Rep\n\
    E5,Eve,Sales,Rep\n";

#[test]
fn a_grouped_file_should_give_one_object_per_value_with_its_rows_values() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), HR);
    let mut c = build(&CsvFactory, dir.path(), vec![department()], grouped());
    let (g, errors) = groups(import_all(c.as_mut()));
    assert!(errors.is_empty(), "{errors:?}");
    // Dee has no department: in no group. Values are distinct and sorted.
    assert_eq!(
        g,
        BTreeMap::from([
            ("Finance".into(), (vec!["E2".into()], vec!["Clerk".into()])),
            (
                "Sales".into(),
                (
                    vec!["E1".into(), "E3".into(), "E5".into()],
                    vec!["Lead".into(), "Rep".into()]
                )
            ),
        ])
    );

    // Cid moves to Finance: one group loses him, the other gains him.
    write(dir.path(), &HR.replace("E3,Cid,Sales", "E3,Cid,Finance"));
    let (g, _) = groups(import_all(c.as_mut()));
    assert_eq!(g["Sales"].0, ["E1", "E5"]);
    assert_eq!(g["Finance"].0, ["E2", "E3"]);

    // The last person of Finance goes: so does the group.
    write(dir.path(), &HR.replace("E2,Bob,Finance,Clerk\n", ""));
    let (g, _) = groups(import_all(c.as_mut()));
    assert_eq!(g.keys().collect::<Vec<_>>(), ["Sales"]);
}

#[test]
fn a_grouped_file_should_report_bad_rows_and_skip_an_unchanged_file() {
    let dir = tempfile::tempdir().unwrap();
    // A row with a field too few: reported, naming its group; its person
    // is in no group until it is fixed. A repeated employee id is not an
    // error here: rows are not objects.
    write(
        dir.path(),
        "employee_id,name,department,title\nE1,Ann,Sales,Rep\nE2,Bob,Sales\nE1,Ann,Sales,Rep\n",
    );
    let mut c = build(&CsvFactory, dir.path(), vec![department()], grouped());
    let (batches, watermark) = drain(c.full_import(None).unwrap());
    let (g, errors) = groups(batches.into_iter().flatten().collect());
    assert_eq!(g["Sales"].0, ["E1"]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("malformed-record hr.csv line 3 Some(\"Sales\")"),
        "{errors:?}"
    );
    // The fingerprint watermark: an unchanged file is not read again.
    let stream = c.delta_import(watermark.as_deref()).unwrap();
    assert!(stream.unchanged());
    let (batches, _) = drain(stream);
    assert!(batches.is_empty());
}

#[test]
fn a_grouped_file_should_not_be_exported_to() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), HR);
    let mut c = build(&CsvFactory, dir.path(), vec![department()], grouped());
    assert!(!c.capabilities().export);
    let e = c.begin_export().err().unwrap();
    assert!(e.message.contains("only imported"), "{}", e.message);
}

#[test]
fn grouping_settings_should_be_checked() {
    let dir = tempfile::tempdir().unwrap();
    let errors = |types: Vec<ObjectTypeDef>, v: serde_json::Value| -> Vec<String> {
        match CsvFactory.validate(&settings(v), &ctx(dir.path(), types)) {
            Ok(()) => Vec::new(),
            Err(es) => es
                .into_iter()
                .map(|e| format!("{}: {}", e.key, e.message))
                .collect(),
        }
    };
    assert!(errors(vec![department()], grouped()).is_empty());
    // The anchor must be the group column.
    let person = crate::common::person();
    let e = errors(vec![person], grouped());
    assert!(
        e[0].starts_with("group_by: the anchor of object type `person` is `id`"),
        "{e:?}"
    );
    // Values without a column to group by.
    let e = errors(
        vec![department()],
        json!({"path": "hr.csv", "group_values": {"members": "employee_id"}}),
    );
    assert!(
        e[0].starts_with("group_values: `group_values` needs `group_by`"),
        "{e:?}"
    );
    // Not with an object type column.
    let e = errors(
        vec![department()],
        json!({"path": "hr.csv", "group_by": "department", "object_type_column": "kind"}),
    );
    assert!(e.iter().any(|m| m.contains("object_type_column")), "{e:?}");
    // An attribute named like the group column.
    let e = errors(
        vec![department()],
        json!({"path": "hr.csv", "group_by": "department", "group_values": {"department": "x"}}),
    );
    assert!(e[0].starts_with("group_values:"), "{e:?}");
}

#[test]
fn a_grouped_file_schema_should_be_the_group_and_its_values() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), HR);
    let c = ctx(dir.path(), vec![department()]);
    let SchemaLookup::Known(schema) = CsvFactory.schema(&settings(grouped()), &c) else {
        panic!("schema not read");
    };
    assert!(schema.problems.is_empty(), "{:?}", schema.problems);
    let text = format!("{schema:?}");
    for name in ["department", "members", "titles"] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
    assert!(!text.contains("employee_id"), "{text}");
    // A column the file lacks is a problem at its key.
    let bad = json!({"path": "hr.csv", "group_by": "department", "group_values": {"members": "staff_id"}});
    let SchemaLookup::Known(schema) = CsvFactory.schema(&settings(bad), &c) else {
        panic!("schema not read");
    };
    assert_eq!(schema.problems.len(), 1, "{:?}", schema.problems);
    assert_eq!(schema.problems[0].key, "group_values");
}
