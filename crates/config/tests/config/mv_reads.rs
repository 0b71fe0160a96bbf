//! Names rules read from the metaverse (provisioning condition, anchor and
//! DN; export flows; a join condition's `mv_expr`) are checked against the metaverse type's attributes:
//! an undeclared one would always be empty (a provisioning condition never
//! true deprovisions everyone), so an expression reading one is an error
//! with the line and a suggestion; a script's literal read is a warning.

use crate::support::{VALID, errors, load};
use autosync_config::Severity;

fn replace(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "VALID should contain {from:?}");
    VALID.replacen(from, to, 1)
}

const ATTRIBUTES: &str = r#"attributes = ["employeeId", "displayName", "email"]"#;
const WITH_STATUS: &str = r#"attributes = ["employeeId", "displayName", "email", "status"]"#;
const PROVISIONING: &str =
    r#"provisioning = [{ anchor = "employeeId", dn = '"uid=" + employeeId' }]"#;

fn with_provisioning(rule: &str) -> String {
    replace(ATTRIBUTES, WITH_STATUS).replacen(PROVISIONING, rule, 1)
}

#[test]
fn a_provisioning_condition_naming_an_undeclared_attribute_should_be_an_error_with_a_suggestion() {
    let text = with_provisioning(
        r#"provisioning = [{ condition = "stat == 'active'", anchor = "employeeId" }]"#,
    );
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn a_provisioning_anchor_and_dn_naming_undeclared_attributes_should_each_be_an_error() {
    let text = with_provisioning(
        r#"provisioning = [{ anchor = "employeeID", dn = '"uid=" + lower(emial)' }]"#,
    );
    let err = errors(&text);
    assert!(
        err.contains("provisioning[0] > anchor: the provisioning anchor reads `employeeID`"),
        "{err}"
    );
    assert!(err.contains("help: did you mean `employeeId`?"), "{err}");
    assert!(
        err.contains("provisioning[0] > dn: the provisioning DN reads `emial`"),
        "{err}"
    );
    assert!(err.contains("help: did you mean `email`?"), "{err}");
}

#[test]
fn an_export_expression_reading_an_undeclared_attribute_should_be_an_error() {
    let text = replace(
        r#"{ cs = "cn", from = "displayName" }"#,
        r#"{ cs = "cn", expr = "upper(dispalyName)" }"#,
    );
    let err = errors(&text);
    assert!(
        err.contains("export_flows[1] > expr: export flow to `cn` reads `dispalyName`, which is not an attribute of metaverse type `person`"),
        "{err}"
    );
    assert!(err.contains("did you mean `displayName`?"), "{err}");
}

#[test]
fn the_error_should_point_at_the_name_inside_the_expression() {
    let text = with_provisioning(
        r#"provisioning = [{ condition = "status == 'active' && stat != ''", anchor = "employeeId" }]"#,
    );
    let err = load(&text).unwrap_err();
    let d = err.errors().next().unwrap();
    let line = text.lines().position(|l| l.contains("stat != ''")).unwrap() + 1;
    let column = text.lines().nth(line - 1).unwrap().find("stat !=").unwrap() + 1;
    let at = d.location.unwrap();
    assert_eq!((at.line, at.column), (line, column), "{d}");
}

#[test]
fn a_script_reading_an_undeclared_attribute_literally_should_only_be_a_warning() {
    let text = replace(
        r#"{ cs = "cn", from = "displayName" }"#,
        r#"{ cs = "cn", script = 'if attr("nickname") != () { attr("nickname") } else { attr("displayName") }' }"#,
    );
    let loaded = load(&text).unwrap();
    let warnings: Vec<String> = loaded
        .warnings
        .iter()
        .filter(|w| w.severity == Severity::Warning)
        .map(|w| w.to_string())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("export flow to `cn`: the script reads `nickname`"),
        "{warnings:?}"
    );
}

const DIRECTORY_JOIN: &str = r#"join = [{ on = [{ cs = "employeeNumber", mv = "employeeId" }] }]"#;

#[test]
fn a_join_with_an_mv_expression_and_case_sensitive_comparison_should_load() {
    let text = replace(
        DIRECTORY_JOIN,
        r#"join = [{ case_sensitive = true, on = [{ cs = "mail", mv_expr = 'lower(displayName) + "@x"' }] }]"#,
    );
    let loaded = load(&text).unwrap();
    let rule = &loaded.system.mas[1].join[0];
    assert!(rule.case_sensitive);
    assert_eq!(rule.on[0].mv, None);
    assert_eq!(
        rule.on[0].mv_expr.as_deref(),
        Some(r#"lower(displayName) + "@x""#)
    );
    // Not said: joins ignore case.
    assert!(!loaded.system.mas[0].join[0].case_sensitive);
}

#[test]
fn a_join_mv_expression_reading_an_undeclared_attribute_should_be_an_error_with_a_suggestion() {
    let text = replace(
        DIRECTORY_JOIN,
        r#"join = [{ on = [{ cs = "mail", mv_expr = "lower(emial)" }] }]"#,
    );
    let err = errors(&text);
    assert!(
        err.contains("join[0] > on[0] > mv_expr: the join condition's `mv_expr` reads `emial`, which is not an attribute of metaverse type `person`"),
        "{err}"
    );
    assert!(err.contains("did you mean `email`?"), "{err}");
}

#[test]
fn a_join_mv_expression_that_does_not_compile_should_be_an_error_at_its_key() {
    let text = replace(
        DIRECTORY_JOIN,
        r#"join = [{ on = [{ cs = "mail", mv_expr = "lower(email" }] }]"#,
    );
    let err = errors(&text);
    assert!(
        err.contains("join[0] > on[0] > mv_expr: invalid expression"),
        "{err}"
    );
}

#[test]
fn a_join_condition_should_have_exactly_one_of_mv_and_mv_expr() {
    let both = replace(
        DIRECTORY_JOIN,
        r#"join = [{ on = [{ cs = "mail", mv = "email", mv_expr = "lower(email)" }] }]"#,
    );
    let err = errors(&both);
    assert!(
        err.contains("join[0] > on[0] > mv_expr: this join condition has both `mv` and `mv_expr`"),
        "{err}"
    );
    let neither = replace(DIRECTORY_JOIN, r#"join = [{ on = [{ cs = "mail" }] }]"#);
    let err = errors(&neither);
    assert!(
        err.contains("join[0] > on[0]: this join condition has neither `mv` nor `mv_expr`"),
        "{err}"
    );
}
