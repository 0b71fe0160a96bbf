//! DN functions: escaping a value for a DN (RFC 4514, and MIM's
//! `EscapeDNComponent` form), reading it back, and the values of a DN's
//! components; absent inputs, multi-values and the errors.

use super::{eval, eval0, multi, object, s};
use autosync_expr::compile_expr;
use autosync_model::{Attributes, Value};
use proptest::prelude::*;

fn o() -> Attributes {
    object(&[
        ("displayName", "Smith, John".into()),
        ("odd", "#1 <VIP>; a+b=c \"q\" \\ ".into()),
        (
            "manager",
            r"CN=Smith\, John,OU=People,DC=contoso,DC=com".into(),
        ),
        (
            "memberOf",
            multi(&[
                "CN=Admins,OU=Groups,DC=contoso,DC=com",
                "CN=Sales\\+Marketing,OU=Groups,DC=contoso,DC=com",
            ]),
        ),
        (
            "deep",
            "cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com".into(),
        ),
        ("blank", "".into()),
        ("broken", "CN=a,People".into()),
        ("spaced_name", "C N=x".into()),
        ("lone", "a\\".into()),
        ("not_utf8", "\\FF".into()),
    ])
}

fn err(src: &str) -> String {
    compile_expr(src).unwrap().eval(&o()).unwrap_err().message
}

#[test]
fn escape_dn_makes_a_value_safe_inside_a_dn() {
    let o = o();
    assert_eq!(
        eval(
            r#""CN=" + escape_dn(displayName) + ",OU=People,DC=example,DC=com""#,
            &o
        ),
        s(r"CN=Smith\, John,OU=People,DC=example,DC=com")
    );
    assert_eq!(
        eval("escape_dn(odd)", &o),
        s(r#"\#1 \<VIP\>\; a\+b\=c \"q\" \\\ "#)
    );
    assert_eq!(
        eval0(r#"escape_dn(" lead and trail ")"#),
        s(r"\ lead and trail\ ")
    );
    assert_eq!(eval0(r#"escape_dn("a#b")"#), s("a#b"));
    assert_eq!(eval0("escape_dn(\"nul\" + to_string(0))"), s("nul0"));
    assert_eq!(eval0("escape_dn(\"line\\nbreak\")"), s(r"line\0Abreak"));
    assert_eq!(eval0(r#"escape_dn("José Müller")"#), s("José Müller"));
}

#[test]
fn escape_dn_of_nothing_is_nothing_and_it_applies_to_each_value() {
    let o = o();
    assert_eq!(eval("escape_dn(missing)", &o), None);
    assert_eq!(eval(r#""CN=" + escape_dn(missing)"#, &o), None);
    assert_eq!(eval("escape_dn(blank)", &o), s(""));
    assert_eq!(
        eval(r#"escape_dn(split("a,b;c", ";"))"#, &o),
        Some(multi(&[r"a\,b", "c"]))
    );
}

#[test]
fn escape_dn_component_escapes_the_value_of_a_whole_component_as_mim_does() {
    let o = o();
    assert_eq!(
        eval(r#"escape_dn_component("CN=" + displayName)"#, &o),
        s(r"CN=Smith\, John")
    );
    assert_eq!(
        eval0(r#"escape_dn_component(" cn = a=b ")"#),
        s(r"cn=\ a\=b\ ")
    );
    assert_eq!(eval(r#"escape_dn_component("CN=" + missing)"#, &o), None);
    assert!(
        err(r#"escape_dn_component(displayName)"#)
            .starts_with("escape_dn_component: expects `name=value`")
    );
    assert!(err("escape_dn_component(spaced_name)").contains("attribute name before `=`"));
}

#[test]
fn unescape_dn_reads_an_escaped_value_back() {
    let o = o();
    assert_eq!(eval0(r#"unescape_dn("Smith\\, John")"#), s("Smith, John"));
    assert_eq!(eval0(r#"unescape_dn("Jos\\C3\\A9")"#), s("José"));
    assert_eq!(eval0(r#"unescape_dn("\\#1\\ ")"#), s("#1 "));
    assert_eq!(
        eval("unescape_dn(escape_dn(odd))", &o),
        o.get("odd").cloned()
    );
    assert_eq!(eval("unescape_dn(missing)", &o), None);
    assert_eq!(
        err("unescape_dn(lone)"),
        r#"unescape_dn: the value ends with a lone `\` (got string "a\\")"#
    );
    assert!(err("unescape_dn(not_utf8)").contains("valid UTF-8"));
}

#[test]
fn dn_component_gives_the_unescaped_value_counted_from_the_left() {
    let o = o();
    assert_eq!(eval("dn_component(manager, 1)", &o), s("Smith, John"));
    assert_eq!(eval("dn_component(manager, 2)", &o), s("People"));
    assert_eq!(eval("dn_component(manager, 5)", &o), None);
    assert_eq!(eval("dn_component(manager, 0)", &o), None);
    assert_eq!(eval("dn_component(missing, 1)", &o), None);
    assert_eq!(eval("dn_component(blank, 1)", &o), None);
    assert_eq!(eval(r#"dn_component(manager, "2")"#, &o), s("People"));
    assert_eq!(
        eval("dn_component(memberOf, 1)", &o),
        Some(multi(&["Admins", "Sales+Marketing"]))
    );
    assert_eq!(
        eval0(r#"dn_component("CN=a+UID=b,DC=x", 1)"#),
        Some(multi(&["a", "b"]))
    );
}

#[test]
fn dn_component_rev_counts_from_the_right_and_can_leave_out_dc() {
    let o = o();
    assert_eq!(eval("dn_component_rev(deep, 3)", &o), s("US"));
    assert_eq!(eval(r#"dn_component_rev(deep, 1, "DC")"#, &o), s("US"));
    assert_eq!(eval(r#"dn_component_rev(deep, 2, "dc")"#, &o), s("GA"));
    assert_eq!(eval("dn_component_rev(deep, 1)", &o), s("com"));
    assert!(err(r#"dn_component_rev(deep, 1, "OU")"#).contains(r#"the only option is "DC""#));
}

#[test]
fn a_text_that_is_not_a_dn_is_an_error_naming_the_component() {
    assert_eq!(
        err("dn_component(broken, 1)"),
        r#"dn_component: not a distinguished name: component 2 (string "People") has no `=` (got string "CN=a,People")"#
    );
    // A literal DN that can never work is caught when the expression compiles.
    let e = compile_expr(r#"dn_component("nonsense", 1)"#).unwrap_err();
    assert!(e.message.contains("has no `=`"), "{}", e.message);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn escaping_then_unescaping_gives_the_value_back(value in "\\PC{0,24}|[ #,+\"\\\\<>;=\\x00\\n]{0,8}") {
        let attrs = object(&[("v", Value::String(value.clone()))]);
        prop_assert_eq!(eval("unescape_dn(escape_dn(v))", &attrs), Some(Value::String(value.clone())));
        if !value.is_empty() {
            prop_assert_eq!(
                eval(r#"dn_component("CN=" + escape_dn(v) + ",OU=People,DC=x", 1)"#, &attrs),
                Some(Value::String(value.clone()))
            );
            prop_assert_eq!(
                eval(r#"dn_component_rev("CN=" + escape_dn(v) + ",OU=People,DC=x", 3)"#, &attrs),
                Some(Value::String(value))
            );
        }
    }
}
