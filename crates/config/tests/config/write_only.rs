//! Write-only and sealed attributes (issue 21): a password policy that
//! cannot make a password, an object type the MA lacks, an attribute both
//! sealed and write-only are refused at their file, line and key; a
//! write-only attribute never set is a warning.

use crate::support::{VALID, load};
use autosync_config::Diagnostic;

/// VALID with `hr` sealing a password column and `directory` setting it.
fn with(hr: &str, directory: &str) -> String {
    VALID
        .replace("run_profiles = {", &format!("{hr}\nrun_profiles = {{"))
        .replace(
            "export_deletion_threshold = 200\n",
            &format!("export_deletion_threshold = 200\n{directory}\n"),
        )
}

const SEALED: &str = r#"sealed = ["initial_password"]"#;

fn errors(text: &str) -> Vec<Diagnostic> {
    let err = load(text).expect_err("the configuration should be refused");
    err.errors().cloned().collect()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_write_only_attribute_with_a_policy_should_load() {
    let text = with(
        SEALED,
        "[ma.write_only.userPassword]\ngenerate = { length = 16, symbols = true }\nobject_types = [\"user\"]",
    );
    let loaded = load(&text).unwrap();
    let ma = loaded.system.ma("directory").unwrap();
    let def = &ma.write_only["userPassword"];
    assert_eq!(def.generate.as_ref().unwrap().length, 16);
    assert!(def.generate.as_ref().unwrap().symbols);
    assert_eq!(loaded.system.ma("hr").unwrap().sealed, ["initial_password"]);
    // The sealed column is copied by no import flow: a warning.
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("no import flow copies sealed attribute `initial_password`"));
}

#[test]
fn a_policy_that_cannot_make_a_password_should_be_refused_at_its_key() {
    let text = with(
        "",
        "[ma.write_only.userPassword]\ngenerate = { length = 4 }",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        e[0].key, r#"ma "directory" > write_only > userPassword > generate"#,
        "{}",
        e[0]
    );
    assert!(
        e[0].message.contains("a length of 4 is outside 8..=256"),
        "{}",
        e[0]
    );
    assert_eq!(
        e[0].location.map(|l| l.line),
        Some(line_of(&text, "length = 4"))
    );

    let none = with(
        "",
        "[ma.write_only.userPassword.generate]\nlower = false\nupper = false\ndigits = false",
    );
    let e = errors(&none);
    assert!(
        e[0].message.contains("chooses no character class"),
        "{}",
        e[0]
    );
}

#[test]
fn an_unknown_object_type_and_a_sealed_write_only_attribute_should_be_refused() {
    let text = with(
        "",
        "sealed = [\"userPassword\"]\n[ma.write_only.userPassword]\ngenerate = {}\nobject_types = [\"usr\"]",
    );
    let e = errors(&text);
    let messages: Vec<String> = e.iter().map(|d| d.to_string()).collect();
    assert_eq!(e.len(), 2, "{messages:?}");
    let types = e
        .iter()
        .find(|d| d.key.ends_with("object_types[0]"))
        .unwrap();
    assert!(
        types.message.contains("has no object type `usr`"),
        "{types}"
    );
    assert_eq!(types.help.as_deref(), Some("did you mean `user`?"));
    let both = e
        .iter()
        .find(|d| d.key == r#"ma "directory" > sealed[0]"#)
        .unwrap();
    assert!(
        both.message.contains("both sealed and write-only"),
        "{both}"
    );
}

#[test]
fn a_write_only_attribute_never_set_should_be_a_warning() {
    let text = with("", "[ma.write_only.userPassword]\non_change = true");
    let loaded = load(&text).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("no export flow, so `on_change` has nothing to follow")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("no export flow and no `generate`: it is never set")),
        "{warnings:?}"
    );
}
