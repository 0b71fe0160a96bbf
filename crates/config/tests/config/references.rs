//! Reference attributes (issue 20): the metaverse's and the object types'
//! declarations, and the flows that carry references. A reference flows
//! only by copy, from a reference to a reference, between types that fit;
//! inbound by anchor only (no DN index yet); an export writes references to
//! the target MA's own objects. Each refused configuration names the file,
//! line and key, and what to do.

use crate::support::load;
use autosync_config::Diagnostic;
use autosync_model::{CsReferenceDef, RefBy};

/// HR brings people (each with a manager, by employee id); a groups file
/// names HR's people as members; the directory gets users (manager by DN)
/// and groups (members by DN).
const VALID: &str = r#"[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "displayName", "manager"]
references = { manager = "person" }

[metaverse.group]
attributes = ["name", "members"]
references = { members = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "data/hr.csv" }
object_types = [{ name = "person", anchor = "employee_id", references = { manager_id = "anchor" } }]
join = [{ mv_type = "person", on = [{ cs = "employee_id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv_type = "person", mv = "employeeId", from = "employee_id" },
  { mv_type = "person", mv = "displayName", expr = 'first_name + " " + last_name' },
  { mv_type = "person", mv = "manager", from = "manager_id" },
]

[[ma]]
name = "groups"
connector = { type = "csv", path = "data/groups.csv" }
object_types = [{ name = "group", anchor = "group_id", references = { member_ids = { by = "anchor", object_type = "person", ma = "hr" } } }]
projection = [{ mv_type = "group" }]
import_flows = [
  { mv_type = "group", mv = "name", from = "group_name" },
  { mv_type = "group", mv = "members", from = "member_ids" },
]

[[ma]]
name = "directory"
connector = { type = "jsonl", path = "data/directory.jsonl" }
object_types = [
  { name = "user", anchor = "uid", references = { manager = "dn" } },
  { name = "group", anchor = "gid", references = { member = { by = "dn", object_type = "user" } } },
]
join = [{ object_type = "user", mv_type = "person", on = [{ cs = "employeeNumber", mv = "employeeId" }] }]
export_flows = [
  { object_type = "user", mv_type = "person", cs = "employeeNumber", from = "employeeId" },
  { object_type = "user", mv_type = "person", cs = "manager", from = "manager" },
  { object_type = "group", mv_type = "group", cs = "cn", from = "name" },
  { object_type = "group", mv_type = "group", cs = "member", from = "members" },
]
provisioning = [
  { mv_type = "person", object_type = "user", anchor = "employeeId", dn = '"uid=" + employeeId' },
  { mv_type = "group", object_type = "group", anchor = "name", dn = '"cn=" + name' },
]
"#;

fn replace(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "VALID should contain {from:?}");
    VALID.replacen(from, to, 1)
}

/// The line (1-based) of `text`'s first line that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line contains {needle:?}"))
        + 1
}

/// The one error of `text`; it must be at `key`, on the line that holds
/// `at`, and its message must contain `message`. Returns it for more.
fn the_error(text: &str, key: &str, at: &str, message: &str) -> Diagnostic {
    let err = load(text).expect_err("the configuration should be refused");
    let errors: Vec<&Diagnostic> = err.errors().collect();
    assert_eq!(errors.len(), 1, "{err}");
    let d = errors[0].clone();
    assert_eq!(d.key, key, "{d}");
    assert!(d.message.contains(message), "{d}");
    let line = d.location.map(|l| l.line);
    assert_eq!(line, Some(line_of(text, at)), "{d}");
    assert!(d.to_string().starts_with("config.toml:"), "{d}");
    d
}

fn help(d: &Diagnostic) -> &str {
    d.help.as_deref().unwrap_or("")
}

#[test]
fn a_configuration_with_references_should_load() {
    let loaded = load(VALID).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    let system = &loaded.system;
    assert_eq!(system.metaverse["person"].references["manager"], "person");
    let groups = &system.ma("groups").unwrap().object_types[0];
    let members = &groups.references["member_ids"];
    assert_eq!(members.by(), RefBy::Anchor);
    assert_eq!(members.object_type(), Some("person"));
    assert_eq!(members.ma(), Some("hr"));
    let directory = system.ma("directory").unwrap();
    assert_eq!(
        directory.object_types[0].references["manager"],
        CsReferenceDef::By(RefBy::Dn)
    );
}

#[test]
fn references_to_any_type_and_expressions_and_scripts_reading_a_cs_reference_should_load() {
    let text = replace(r#"members = "person""#, r#"members = "any""#)
        .replacen(
            r#"expr = 'first_name + " " + last_name'"#,
            r#"expr = 'first_name + " " + last_name + manager_id'"#,
            1,
        )
        .replacen(
            r#"{ mv_type = "group", mv = "name", from = "group_name" }"#,
            r#"{ mv_type = "group", mv = "name", script = 'attrs["group_name"] + attrs["member_ids"]' }"#,
            1,
        )
        // A reference by anchor on export; `ma` naming the MA itself.
        .replacen(
            r#"{ name = "user", anchor = "uid", references = { manager = "dn" } }"#,
            r#"{ name = "user", anchor = "uid", references = { manager = { by = "anchor", ma = "directory" } } }"#,
            1,
        );
    let loaded = load(&text).unwrap();
    assert_eq!(
        loaded.system.metaverse["group"].references["members"],
        "any"
    );
}

// 1. `[metaverse.T] references`.

#[test]
fn a_metaverse_reference_that_is_not_an_attribute_should_suggest_the_closest() {
    let text = replace(
        r#"references = { manager = "person" }"#,
        r#"references = { manager = "person", managr2 = "person" }"#,
    );
    let d = the_error(
        &text,
        "metaverse > person > references > managr2",
        "managr2",
        "`managr2` is declared a reference but is not an attribute of `person`",
    );
    assert!(help(&d).contains("did you mean `manager`?"), "{d}");
}

#[test]
fn a_metaverse_reference_to_an_undeclared_type_should_suggest_the_closest() {
    let text = replace(r#"members = "person""#, r#"members = "persn""#);
    let d = the_error(
        &text,
        "metaverse > group > references > members",
        r#"members = "persn""#,
        "reference `members` refers to metaverse type `persn`, which is not declared",
    );
    assert!(help(&d).contains("did you mean `person`?"), "{d}");
}

// 2. `object_types[i].references`.

#[test]
fn the_anchor_declared_a_reference_should_be_refused() {
    let text = replace(
        r#"references = { manager = "dn" }"#,
        r#"references = { manager = "dn", uid = "dn" }"#,
    );
    the_error(
        &text,
        r#"ma "directory" > object_types[0] > references > uid"#,
        r#"uid = "dn""#,
        "`uid` is the anchor of object type `user`: the anchor is the object's own id, not a reference",
    );
}

#[test]
fn a_reference_naming_an_unknown_ma_should_suggest_the_closest() {
    let text = replace(r#"ma = "hr""#, r#"ma = "hrr""#);
    let d = the_error(
        &text,
        r#"ma "groups" > object_types[0] > references > member_ids > ma"#,
        r#"ma = "hrr""#,
        "there is no MA named `hrr`",
    );
    assert!(help(&d).contains("did you mean `hr`?"), "{d}");
}

#[test]
fn a_reference_naming_an_object_type_the_referred_ma_lacks_should_suggest_the_closest() {
    let text = replace(
        r#"object_type = "person", ma = "hr""#,
        r#"object_type = "persn", ma = "hr""#,
    );
    let d = the_error(
        &text,
        r#"ma "groups" > object_types[0] > references > member_ids > object_type"#,
        r#"object_type = "persn""#,
        "MA \"hr\" has no object type `persn`",
    );
    assert!(help(&d).contains("did you mean `person`?"), "{d}");
    // Without `ma`, the object type is one of this MA's.
    let text = replace(
        r#"member = { by = "dn", object_type = "user" }"#,
        r#"member = { by = "dn", object_type = "usr" }"#,
    );
    let d = the_error(
        &text,
        r#"ma "directory" > object_types[1] > references > member > object_type"#,
        r#"object_type = "usr""#,
        "MA \"directory\" has no object type `usr`",
    );
    assert!(help(&d).contains("did you mean `user`?"), "{d}");
}

// 3. Import flows.

#[test]
fn an_import_flow_into_a_metaverse_reference_must_copy() {
    let text = replace(
        r#"mv = "manager", from = "manager_id""#,
        r#"mv = "manager", expr = "manager_id""#,
    );
    the_error(
        &text,
        r#"ma "hr" > import_flows[2] > expr"#,
        r#"expr = "manager_id""#,
        "`manager` is a reference attribute of metaverse type `person`: only a copy (`from`) of a connector-space reference flows into it",
    );
}

#[test]
fn an_import_flow_into_a_metaverse_reference_must_copy_a_declared_cs_reference() {
    let text = replace(
        r#"mv = "manager", from = "manager_id""#,
        r#"mv = "manager", from = "manager_idx""#,
    );
    let d = the_error(
        &text,
        r#"ma "hr" > import_flows[2] > from"#,
        r#"from = "manager_idx""#,
        "import flow to reference `manager` copies `manager_idx`, which is not declared a reference of object type `person`",
    );
    assert!(help(&d).contains("did you mean `manager_id`?"), "{d}");
}

#[test]
fn an_import_flow_from_a_cs_reference_into_a_plain_attribute_should_point_at_declaring_it() {
    let text = replace(
        r#"mv = "displayName", expr = 'first_name + " " + last_name'"#,
        r#"mv = "displayName", from = "manager_id""#,
    );
    let d = the_error(
        &text,
        r#"ma "hr" > import_flows[1] > from"#,
        r#"mv = "displayName", from = "manager_id""#,
        "`manager_id` is a reference of object type `person`, but `displayName` is not a reference attribute of metaverse type `person`",
    );
    assert!(help(&d).contains("[metaverse.person].references"), "{d}");
}

#[test]
fn an_import_flow_from_a_reference_by_dn_should_load() {
    // The store keeps a DN index of the referred MA's objects.
    let text = replace(
        r#"by = "anchor", object_type = "person", ma = "hr""#,
        r#"by = "dn", object_type = "person", ma = "hr""#,
    );
    assert!(text.contains(r#"by = "dn""#));
    load(&text).unwrap();
}

// 4. Export flows.

#[test]
fn an_export_flow_into_a_cs_reference_must_copy() {
    let text = replace(
        r#"cs = "manager", from = "manager""#,
        r#"cs = "manager", expr = "employeeId""#,
    );
    the_error(
        &text,
        r#"ma "directory" > export_flows[1] > expr"#,
        r#"cs = "manager", expr"#,
        "`manager` is a reference of object type `user`: only a copy (`from`) of a metaverse reference flows into it",
    );
}

#[test]
fn an_export_flow_into_a_cs_reference_must_copy_a_metaverse_reference() {
    let text = replace(
        r#"cs = "manager", from = "manager""#,
        r#"cs = "manager", from = "displayName""#,
    );
    the_error(
        &text,
        r#"ma "directory" > export_flows[1] > from"#,
        r#"cs = "manager", from = "displayName""#,
        "export flow to reference `manager` of object type `user` copies `displayName`, which is not a reference attribute of metaverse type `person`",
    );
}

#[test]
fn an_export_flow_from_a_metaverse_reference_into_a_plain_attribute_should_be_refused() {
    let text = replace(
        r#"cs = "manager", from = "manager""#,
        r#"cs = "managerName", from = "manager""#,
    );
    let d = the_error(
        &text,
        r#"ma "directory" > export_flows[1] > cs"#,
        r#"cs = "managerName""#,
        "export flow to `managerName` copies `manager`, a reference attribute of metaverse type `person`, but `managerName` is not declared a reference of object type `user`",
    );
    assert!(
        help(&d).contains("references = { managerName = \"dn\" }"),
        "{d}"
    );
}

#[test]
fn an_export_flow_into_a_cs_reference_of_another_ma_should_check_the_types_there() {
    // The directory's groups name objects of `groups` (a deliberate
    // difference: MIM's references stay within one MA): the types are
    // checked against that MA's rules, where no person becomes a group.
    let text = replace(
        r#"member = { by = "dn", object_type = "user" }"#,
        r#"member = { by = "dn", ma = "groups", object_type = "group" }"#,
    );
    the_error(
        &text,
        r#"ma "directory" > export_flows[3] > cs"#,
        r#"cs = "member""#,
        "no provisioning, join or projection rule of MA `groups` connects a `person` to a `group`",
    );
}

// 5. Types.

#[test]
fn an_import_flow_should_refuse_a_reference_flow_between_mismatched_types() {
    // The groups file's members are groups of its own now, but the
    // metaverse's members are people.
    let text = replace(
        r#"member_ids = { by = "anchor", object_type = "person", ma = "hr" }"#,
        r#"member_ids = { by = "anchor", object_type = "group" }"#,
    );
    let d = the_error(
        &text,
        r#"ma "groups" > import_flows[1] > mv"#,
        r#"mv = "members""#,
        "mismatched types: `members` refers to metaverse type `person`, but `member_ids` refers to object type `group` of MA `groups`, and no join or projection rule of `groups` makes it a `person`",
    );
    assert!(
        help(&d).contains("add a join or projection rule of MA `groups` from `group` to `person`"),
        "{d}"
    );
}

/// The groups' members declared without `ma` (they default to the groups'
/// own MA): the help says to name HR, whose objects are the persons, before
/// the rules (it advised a projection from groups to persons).
#[test]
fn a_reference_without_its_ma_should_be_told_to_name_the_ma_that_makes_the_type() {
    let text = replace(
        r#"member_ids = { by = "anchor", object_type = "person", ma = "hr" }"#,
        r#"member_ids = "anchor""#,
    );
    let err = load(&text).expect_err("the configuration should be refused");
    let d = err
        .errors()
        .find(|d| d.message.contains("mismatched types"))
        .cloned()
        .unwrap_or_else(|| panic!("no mismatched types error: {err}"));
    assert!(
        help(&d).starts_with(
            "write `ma = \"hr\"` in the declaration of `member_ids` (`{ by = \"anchor\", ma = \"hr\" }`): the MA whose objects are the `person`s"
        ),
        "{d}"
    );
}

/// HR also has departments, which become no person; the groups' members
/// name HR's objects as `members` says (`by`, without an object type): a
/// reference that does not say which of HR's types it names could name a
/// department. The error, and its help.
fn members_of_any_hr_type(members: &str) -> (Diagnostic, String) {
    let text = replace(
        r#"object_types = [{ name = "person", anchor = "employee_id", references = { manager_id = "anchor" } }]"#,
        r#"object_types = [{ name = "person", anchor = "employee_id", references = { manager_id = { by = "anchor", object_type = "person" } } }, { name = "dept", anchor = "dept_id" }]
filters = [{ object_type = "dept", condition = "true" }]"#,
    )
    .replacen(
        r#"projection = [{ mv_type = "person" }]"#,
        r#"projection = [{ object_type = "person", mv_type = "person" }]"#,
        1,
    )
    .replacen(
        r#"join = [{ mv_type = "person", on"#,
        r#"join = [{ object_type = "person", mv_type = "person", on"#,
        1,
    )
    .replace(r#"{ mv_type = "person", mv = "#, r#"{ object_type = "person", mv_type = "person", mv = "#)
    .replacen(r#"by = "anchor", object_type = "person", ma = "hr""#, members, 1);
    let d = the_error(
        &text,
        r#"ma "groups" > import_flows[1] > mv"#,
        r#"mv = "members""#,
        "mismatched types: `members` refers to metaverse type `person`, but `member_ids` refers to object type `dept` of MA `hr`",
    );
    let help = help(&d).to_owned();
    (d, help)
}

#[test]
fn an_import_reference_without_object_type_should_fit_every_object_type_of_the_referred_ma() {
    let (d, help) = members_of_any_hr_type(r#"by = "anchor", ma = "hr""#);
    assert!(
        help.contains(r#"{ by = "anchor", object_type = "person" }"#),
        "{d}"
    );
}

#[test]
fn the_help_for_a_dn_reference_without_object_type_should_keep_it_by_dn() {
    let (d, help) = members_of_any_hr_type(r#"by = "dn", ma = "hr""#);
    assert!(
        help.contains(r#"{ by = "dn", object_type = "person" }"#),
        "{d}"
    );
}

#[test]
fn an_export_flow_should_refuse_a_reference_flow_between_mismatched_types() {
    let text = replace(
        r#"member = { by = "dn", object_type = "user" }"#,
        r#"member = { by = "dn", object_type = "group" }"#,
    );
    the_error(
        &text,
        r#"ma "directory" > export_flows[3] > cs"#,
        r#"cs = "member""#,
        "mismatched types: `members` refers to metaverse type `person`, but `member` of object type `group` refers to object type `group`, and no provisioning, join or projection rule of MA `directory` connects a `person` to a `group`",
    );
}

// 6. Expressions do not read references.

#[test]
fn an_export_expression_reading_a_metaverse_reference_should_be_refused_at_the_name() {
    let text = replace(
        r#"cs = "employeeNumber", from = "employeeId""#,
        r#"cs = "employeeNumber", expr = "employeeId + manager""#,
    );
    let d = the_error(
        &text,
        r#"ma "directory" > export_flows[0] > expr"#,
        "employeeId + manager",
        "export flow to `employeeNumber` reads `manager`, a reference attribute of metaverse type `person`: a reference is not text",
    );
    let line = text
        .lines()
        .nth(line_of(&text, "employeeId + manager") - 1)
        .unwrap();
    let column = line.find("manager\"").unwrap() + 1;
    assert_eq!(d.location.unwrap().column, column, "{d}");
}

#[test]
fn provisioning_and_join_expressions_reading_a_metaverse_reference_should_be_refused() {
    let text = replace(
        r#"anchor = "employeeId", dn = '"uid=" + employeeId'"#,
        r#"condition = "manager != ''", anchor = "employeeId", dn = '"uid=" + employeeId'"#,
    );
    the_error(
        &text,
        r#"ma "directory" > provisioning[0] > condition"#,
        "manager != ''",
        "the provisioning condition reads `manager`, a reference attribute of metaverse type `person`",
    );
    let text = replace(
        r#"mv = "employeeId" }] }]
export_flows"#,
        r#"mv_expr = "manager" }] }]
export_flows"#,
    );
    the_error(
        &text,
        r#"ma "directory" > join[0] > on[0] > mv_expr"#,
        r#"mv_expr = "manager""#,
        "the join condition's `mv_expr` reads `manager`, a reference attribute of metaverse type `person`",
    );
}

#[test]
fn a_script_reading_a_metaverse_reference_should_load() {
    let text = replace(
        r#"cs = "employeeNumber", from = "employeeId""#,
        r#"cs = "employeeNumber", script = 'attrs["employeeId"]'"#,
    )
    .replacen(
        r#"anchor = "employeeId", dn = '"uid=" + employeeId'"#,
        r#"anchor = "employeeId", script = 'attrs["manager"] != ()'"#,
        1,
    );
    let loaded = load(&text).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_misspelt_reference_declaration_should_say_what_is_wrong_in_either_form() {
    let text = replace(r#"manager_id = "anchor""#, r#"manager_id = "anchr""#);
    let d = the_error(
        &text,
        r#"ma "hr" > object_types[0] > references > manager_id"#,
        r#"manager_id = "anchr""#,
        "unknown value `anchr`",
    );
    assert!(help(&d).contains("did you mean `anchor`?"), "{d}");
    let text = replace(
        r#"by = "anchor", object_type = "person", ma = "hr""#,
        r#"by = "anchor", objecttype = "person", ma = "hr""#,
    );
    let d = the_error(
        &text,
        r#"ma "groups" > object_types[0] > references > member_ids > objecttype"#,
        "objecttype",
        "unknown key `objecttype`",
    );
    assert_eq!(d.message, "unknown key `objecttype`", "{d}");
    assert!(help(&d).contains("did you mean `object_type`?"), "{d}");
    let text = replace(r#"manager_id = "anchor""#, "manager_id = 1");
    let d = the_error(
        &text,
        r#"ma "hr" > object_types[0] > references > manager_id"#,
        "manager_id = 1",
        r#"a reference is `"anchor"`, `"dn"` or a table"#,
    );
    assert!(help(&d).contains(r#"member_ids = { by = "anchor""#), "{d}");
}
