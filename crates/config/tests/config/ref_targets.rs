//! An outbound reference that can never be spelled: the MA whose connectors
//! spell its values (the referrer's own, or its `ma`) connects no object
//! type to the referred metaverse type. Found by a newcomer's slip in the
//! quickstart (dropping `ma = "app"` from `app-groups`' members): `check`
//! said the file was valid, and every run succeeded with no member ever
//! exported. The quickstart's own file, loaded with the real connectors'
//! settings checks.

use autosync_config::{ConfigError, Diagnostic, Loaded, load_str_with_env};
use autosync_connector::Registry;
use std::path::Path;

const QUICKSTART: &str = include_str!("../../../../examples/quickstart/autosync.toml");

/// `app-groups`' members, as the quickstart declares them.
const MEMBERS: &str = r#"references = { members = { by = "dn", ma = "app" } }"#;

fn load(text: &str) -> Result<Loaded, ConfigError> {
    let mut registry = Registry::new();
    autosync_connectors::register_all(&mut registry);
    let no_env = |_: &str| None;
    load_str_with_env(text, Path::new("autosync.toml"), &registry, &no_env)
}

/// The quickstart with `from` replaced by `to` (once; `from` must be there).
fn quickstart_with(from: &str, to: &str) -> String {
    assert!(QUICKSTART.contains(from), "the quickstart has no {from:?}");
    QUICKSTART.replacen(from, to, 1)
}

/// The one error of `text`: at `key`, on the line of `at`.
fn the_error(text: &str, key: &str, at: &str) -> Diagnostic {
    let err = load(text).expect_err("the configuration should be refused");
    let errors: Vec<&Diagnostic> = err.errors().collect();
    assert_eq!(errors.len(), 1, "{err}");
    let d = errors[0].clone();
    assert_eq!(d.key, key, "{d}");
    let line = text.lines().position(|l| l.contains(at)).map(|n| n + 1);
    assert_eq!(d.location.map(|l| l.line), line, "{d}");
    assert!(d.to_string().starts_with("autosync.toml:"), "{d}");
    d
}

fn help(d: &Diagnostic) -> &str {
    d.help.as_deref().unwrap_or("")
}

#[test]
fn the_quickstart_should_load_without_warnings() {
    let loaded = load(QUICKSTART).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn an_export_reference_without_ma_to_an_ma_that_connects_no_referred_type_should_be_refused() {
    let text = quickstart_with(MEMBERS, r#"references = { members = "dn" }"#);
    let d = the_error(
        &text,
        r#"ma "app-groups" > export_flows[1] > cs"#,
        r#"cs = "members", from = "members""#,
    );
    assert_eq!(
        d.message,
        "`members` refers to metaverse type `person`, but `members` of object type `group` names objects of MA `app-groups` (its own: the declaration names no `ma`), and no provisioning, join or projection rule of `app-groups` connects a `person` to any of its object types (`group`): no value of `members` could ever be exported",
        "{d}"
    );
    assert_eq!(
        help(&d),
        "add `ma = \"app\"` to the declaration of `members` (`members = { by = \"dn\", ma = \"app\" }`): the MA whose objects are the `person`s (or another that connects them: `directory`, `hr`); or add a provisioning, join or projection rule of MA `app-groups` from `person` to `group`",
        "{d}"
    );
}

#[test]
fn an_export_reference_whose_ma_connects_no_referred_type_should_be_refused() {
    let text = quickstart_with(
        MEMBERS,
        r#"references = { members = { by = "dn", ma = "groups" } }"#,
    );
    let d = the_error(
        &text,
        r#"ma "app-groups" > export_flows[1] > cs"#,
        r#"cs = "members", from = "members""#,
    );
    assert!(
        d.message.contains(
            "names objects of MA `groups`, and no provisioning, join or projection rule of `groups` connects a `person` to any of its object types (`group`)"
        ),
        "{d}"
    );
    assert!(
        help(&d).starts_with(
            "write `ma = \"app\"` instead of `ma = \"groups\"` in the declaration of `members`"
        ),
        "{d}"
    );
    // Naming the object type too keeps the mismatched-types error.
    let text = quickstart_with(
        MEMBERS,
        r#"references = { members = { by = "dn", ma = "groups", object_type = "group" } }"#,
    );
    let d = the_error(
        &text,
        r#"ma "app-groups" > export_flows[1] > cs"#,
        r#"cs = "members", from = "members""#,
    );
    assert!(
        d.message.starts_with("mismatched types: ")
            && d.message.contains(
                "no provisioning, join or projection rule of MA `groups` connects a `person` to a `group`"
            ),
        "{d}"
    );
}

#[test]
fn the_help_should_say_to_remove_an_ma_that_names_another_when_the_own_one_fits() {
    let text = quickstart_with(
        r#"references = { manager = "dn" } }]"#,
        r#"references = { manager = { by = "dn", ma = "app-groups" } } }]"#,
    );
    let d = the_error(
        &text,
        r#"ma "app" > export_flows[5] > cs"#,
        r#"cs = "manager", from = "manager""#,
    );
    assert!(
        help(&d).starts_with(
            "remove `ma = \"app-groups\"` from the declaration of `manager` (`manager = \"dn\"`)"
        ),
        "{d}"
    );
}

/// A reference spelt by the anchors of a source that projects the
/// referred type (and joins nothing): valid, the projection connects its
/// objects (a black-box review: the check refused it).
#[test]
fn a_reference_to_a_source_that_projects_the_type_should_be_valid() {
    let text = r#"
[store]
path = "state/autosync.db"
[metaverse.person]
attributes = ["employeeId", "name"]
[metaverse.group]
attributes = ["groupId", "members"]
references = { members = "person" }
[[ma]]
name = "hr"
connector = { type = "csv", path = "data/hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv_type = "person", mv = "employeeId", from = "id" }, { mv_type = "person", mv = "name", from = "name" }]
[[ma]]
name = "groups"
connector = { type = "csv", path = "data/groups.csv", multi_valued = ["members"], multi_value_separator = ";" }
object_types = [{ name = "group", anchor = "gid", references = { members = { by = "anchor", ma = "hr" } } }]
projection = [{ mv_type = "group" }]
import_flows = [{ mv_type = "group", mv = "groupId", from = "gid" }, { mv_type = "group", mv = "members", from = "members" }]
[[ma]]
name = "out"
connector = { type = "jsonl", path = "data/out.jsonl" }
object_types = [{ name = "grp", anchor = "gid", references = { members = { by = "anchor", ma = "hr" } } }]
export_flows = [{ mv_type = "group", cs = "members", from = "members" }]
provisioning = [{ mv_type = "group", anchor = "groupId" }]
deprovisioning = "delete"
"#;
    if let Err(e) = load(text) {
        panic!("a source that projects persons connects them: {e}");
    }
}
