//! Rules extensions as scripts in the configuration: every hook's key is
//! accepted and compiled when the file loads, a script that does not
//! compile is an error at its key (with the caret in the script), and
//! metaverse lookups must search declared attributes.

use crate::support::{VALID, errors, load};
use autosync_model::DeletionRule;

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the text should contain {from:?}");
    text.replacen(from, to, 1)
}

/// VALID with a script in every place a rules extension decides.
fn with_every_hook() -> String {
    let t = replace(
        VALID,
        "precedence = { email = [\"directory\", \"hr\"] }",
        "precedence = { email = [\"directory\", \"hr\"] }\n\
         deletion = { rule = \"script\", script = 'leaving.ma == \"hr\" && connectors.len() == 0' }",
    );
    let t = replace(
        &t,
        "join = [{ on = [{ cs = \"employee_id\", mv = \"employeeId\" }] }]",
        "filters = [{ script = 'attrs.status == \"test\"' }]\n\
         join = [{ on = [{ script = 'attr(\"employee_id\")', mv = \"employeeId\" }], \
         resolve = 'let c = candidates.filter(|m| m.attrs.email == attrs.email); if c.len() == 1 { c[0].id }' }]",
    );
    let t = replace(
        &t,
        "projection = [{ mv_type = \"person\" }]",
        "projection = [{ script = 'attrs.kind != \"test\"' }]",
    );
    let t = replace(
        &t,
        "{ mv = \"displayName\", expr = 'first_name + \" \" + last_name' },",
        "{ mv = \"displayName\", script = '''\n  if mv.displayName != () { return mv.displayName; }\n  \
         let n = attrs.first_name; let i = 1;\n  \
         while mv_find(\"person\", \"displayName\", n).len() > 0 { i += 1; n = attrs.first_name + i; }\n  n\n''' },",
    );
    replace(
        &t,
        "provisioning = [{ anchor = \"employeeId\", dn = '\"uid=\" + employeeId' }]",
        "provisioning = [{ script = '[#{ anchor: attrs.employeeId }, #{ anchor: \"x\" + attrs.employeeId }]' }]\n\
         deprovisioning_script = 'if reason == \"mv-deleted\" { \"delete\" } else if cs.provisioned { \"disconnect\" }'",
    )
}

#[test]
fn every_hook_should_be_accepted_as_a_script() {
    let text = with_every_hook();
    let loaded = match load(&text) {
        Ok(l) => l,
        Err(e) => panic!("{e}\n{text}"),
    };
    let system = &loaded.system;
    assert!(matches!(
        system.metaverse["person"].deletion,
        DeletionRule::Script { .. }
    ));
    let hr = &system.mas[0];
    assert!(hr.filters[0].script.is_some() && hr.filters[0].condition.is_none());
    assert!(hr.join[0].resolve.is_some() && hr.join[0].on[0].script.is_some());
    assert!(hr.projection[0].script.is_some());
    let directory = &system.mas[1];
    assert!(directory.provisioning[0].script.is_some());
    assert!(directory.provisioning[0].anchor.is_none());
    assert!(directory.deprovisioning_script.is_some());
}

#[test]
fn a_hook_script_that_does_not_compile_should_be_an_error_at_its_key() {
    let text = with_every_hook();
    let cases = [
        (
            "attrs.status == \"test\"'",
            "attrs.status == \"test\" +'",
            "filters[0] > script",
        ),
        (
            "if c.len() == 1 { c[0].id }'",
            "if c.len() == 1 { c[0].id '",
            "join[0] > resolve",
        ),
        ("candidates.filter", "candidate.filter", "join[0] > resolve"),
        (
            "'attrs.kind != \"test\"'",
            "'attrs.kind != '",
            "projection[0] > script",
        ),
        (
            "[#{ anchor: attrs.employeeId },",
            "[#{ anchor attrs.employeeId },",
            "provisioning[0] > script",
        ),
        (
            "if reason == \"mv-deleted\"",
            "if why == \"mv-deleted\"",
            "deprovisioning_script",
        ),
        (
            "leaving.ma == \"hr\"",
            "left.ma == \"hr\"",
            "deletion > script",
        ),
    ];
    for (from, to, key) in cases {
        let err = errors(&replace(&text, from, to));
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains("invalid script"), "{key}: {err}");
    }
    // An unknown variable names those the hook has.
    let err = errors(&replace(&text, "if reason ==", "if reasn =="));
    assert!(err.contains("`cs`, `reason`"), "{err}");
}

#[test]
fn a_lookup_of_an_undeclared_attribute_should_be_an_error_with_a_suggestion() {
    let text = replace(
        &with_every_hook(),
        "mv_find(\"person\", \"displayName\"",
        "mv_find(\"person\", \"displayname\"",
    );
    let err = errors(&text);
    assert!(
        err.contains(
            "mv_find searches `displayname`, which is not an attribute of metaverse type `person`"
        ),
        "{err}"
    );
    assert!(err.contains("did you mean `displayName`?"), "{err}");
    let text = replace(
        &with_every_hook(),
        "mv_find(\"person\"",
        "mv_find(\"persons\"",
    );
    assert!(errors(&text).contains("mv_find searches metaverse type `persons`"));
}

#[test]
fn a_lookup_by_a_computed_attribute_should_be_an_error() {
    let text = replace(
        &with_every_hook(),
        "mv_find(\"person\", \"displayName\", n)",
        "mv_find(\"person\", attrs.which, n)",
    );
    let err = errors(&text);
    assert!(err.contains("literal strings"), "{err}");
}

#[test]
fn mv_outside_an_import_flow_should_be_an_error() {
    let text = replace(
        &with_every_hook(),
        "'attrs.kind != \"test\"'",
        "'mv.kind != \"test\"'",
    );
    let err = errors(&text);
    assert!(
        err.contains("projection[0] > script: this script reads `mv`"),
        "{err}"
    );
}

#[test]
fn a_provisioning_rule_without_anchor_or_script_should_be_an_error() {
    let text = replace(
        VALID,
        "provisioning = [{ anchor = \"employeeId\", dn = '\"uid=\" + employeeId' }]",
        "provisioning = [{ dn = '\"uid=\" + employeeId' }]",
    );
    let err = errors(&text);
    assert!(
        err.contains("this provisioning rule has no `anchor`"),
        "{err}"
    );
}

#[test]
fn a_filter_needs_exactly_one_of_condition_and_script() {
    let both = replace(
        &with_every_hook(),
        "filters = [{ script =",
        "filters = [{ condition = \"true\", script =",
    );
    assert!(errors(&both).contains("both `condition` and `script`"));
    let neither = replace(
        &with_every_hook(),
        "filters = [{ script = 'attrs.status == \"test\"' }]",
        "filters = [{ object_type = \"person\" }]",
    );
    assert!(errors(&neither).contains("neither `condition` nor `script`"));
}
