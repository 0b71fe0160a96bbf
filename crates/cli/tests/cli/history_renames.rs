//! `history RUN_ID` of an import that read a source object under another
//! DN: the change is a `rename` (as the step's `stage-rename` counts it,
//! and as an export's rename shows), with one `dn: old -> new` line (the
//! source's `dn` column, which changed with it, is not shown again) and a
//! line for each attribute it changed too; `--json` says `"kind":
//! "rename"` with `new_dn`. For a CSV and a JSON lines source.

use super::support::*;
use serde_json::{Value, json};

/// A source MA `M` of `connector`, its DN read from the column `dn`.
fn config(connector: &str) -> String {
    format!(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["uid", "mail"]

[[ma]]
name = "M"
connector = {connector}
object_types = [{{ name = "u", anchor = "id", dn = "dn" }}]
projection = [{{ mv_type = "person" }}]
import_flows = [
  {{ mv_type = "person", mv = "uid", from = "id" }},
  {{ mv_type = "person", mv = "mail", from = "mail" }},
]
"#
    )
}

/// A source format: its connector table and the file of one object.
struct Source {
    connector: &'static str,
    file: &'static str,
    object: fn(dn: &str, mail: &str) -> String,
}

const CSV: Source = Source {
    connector: r#"{ type = "csv", path = "s.csv" }"#,
    file: "s.csv",
    object: |dn, mail| format!("id,dn,mail\n1,{dn},{mail}\n"),
};

const JSONL: Source = Source {
    connector: r#"{ type = "jsonl", path = "s.jsonl" }"#,
    file: "s.jsonl",
    object: |dn, mail| format!("{}\n", json!({ "id": "1", "dn": dn, "mail": mail })),
};

fn run(w: &Workdir, profile: &str) -> String {
    w.expect(&["run-profile", "M", profile, "--no-progress"], 0)
}

/// The id of the last run of `M`.
fn last(w: &Workdir) -> String {
    let v: Value = serde_json::from_str(&w.expect(&["history", "--ma", "M", "--json"], 0)).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .max()
        .unwrap()
        .to_string()
}

/// The one change of `M`'s last run, from `history RUN --json`.
fn json_change(w: &Workdir) -> Value {
    let v: Value = serde_json::from_str(&w.expect(&["history", &last(w), "--json"], 0)).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v:#}");
    changes[0].clone()
}

/// Import `cn=a` (mail `a@x`), synchronise, then the source changes to
/// `(dn, mail)`: the delta import (whose counters show `counter`), its
/// history as text and its one change from the JSON.
fn changed(source: &Source, dn: &str, mail: &str, counter: &str) -> (String, Value) {
    let w = Workdir::with_config(&config(source.connector));
    std::fs::write(w.path().join(source.file), (source.object)("cn=a", "a@x")).unwrap();
    run(&w, "full-import");
    run(&w, "full-sync");
    std::fs::write(w.path().join(source.file), (source.object)(dn, mail)).unwrap();
    let out = run(&w, "delta-import");
    assert!(out.contains(&format!("    {counter}\n")), "{out}");
    let text = w.expect(&["history", &last(&w)], 0);
    (text, json_change(&w))
}

fn a_rename_should_show_as_rename_with_one_dn_line(source: &Source) {
    let (text, change) = changed(source, "cn=b", "a@x", "stage-rename 1");
    assert!(
        text.ends_with("  changes:\n    cn=a (1)  rename  dn: cn=a -> cn=b\n"),
        "{}: {text}",
        source.file
    );
    assert_eq!(change["kind"], "rename", "{change:#}");
    assert_eq!(change["dn"], "cn=a", "{change:#}");
    assert_eq!(change["new_dn"], "cn=b", "{change:#}");
}

fn a_rename_with_an_attribute_changed_should_show_both(source: &Source) {
    let (text, change) = changed(source, "cn=b", "b@x", "stage-rename 1");
    assert!(
        text.ends_with(
            "  changes:\n    cn=a (1)  rename  dn: cn=a -> cn=b\n                      mail: a@x -> b@x\n"
        ),
        "{}: {text}",
        source.file
    );
    assert_eq!(change["kind"], "rename", "{change:#}");
    assert_eq!(change["new_dn"], "cn=b", "{change:#}");
    assert_eq!(
        change["attributes"]["mail"],
        json!({ "op": "replace", "new": "b@x", "old": "a@x" }),
        "{change:#}"
    );
}

fn an_attribute_change_alone_should_stay_an_update(source: &Source) {
    let (text, change) = changed(source, "cn=a", "b@x", "stage-update 1");
    assert!(
        text.ends_with("  changes:\n    cn=a (1)  update  mail: a@x -> b@x\n"),
        "{}: {text}",
        source.file
    );
    assert_eq!(change["kind"], "update", "{change:#}");
    assert!(
        change.get("new_dn").is_none_or(Value::is_null),
        "{change:#}"
    );
}

#[test]
fn a_csv_rename_should_show_as_rename_with_one_dn_line() {
    a_rename_should_show_as_rename_with_one_dn_line(&CSV);
}

#[test]
fn a_jsonl_rename_should_show_as_rename_with_one_dn_line() {
    a_rename_should_show_as_rename_with_one_dn_line(&JSONL);
}

#[test]
fn a_csv_rename_with_an_attribute_changed_should_show_both() {
    a_rename_with_an_attribute_changed_should_show_both(&CSV);
}

#[test]
fn a_jsonl_rename_with_an_attribute_changed_should_show_both() {
    a_rename_with_an_attribute_changed_should_show_both(&JSONL);
}

#[test]
fn a_csv_attribute_change_alone_should_stay_an_update() {
    an_attribute_change_alone_should_stay_an_update(&CSV);
}

#[test]
fn a_jsonl_attribute_change_alone_should_stay_an_update() {
    an_attribute_change_alone_should_stay_an_update(&JSONL);
}
