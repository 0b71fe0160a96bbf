//! Every built-in function: ordinary use, absent inputs, multi-values,
//! clamping, and the errors that name the function and the value.

use super::{eval, eval0, multi, object, s};
use autosync_expr::{compile_expr, function_names};
use autosync_model::{Attributes, Value};

fn o() -> Attributes {
    object(&[
        ("name", "  Ada Lovelace ".into()),
        ("mail", "Ada@Example.COM".into()),
        ("groups", multi(&["Admins", " Staff "])),
        ("n", Value::Integer(3)),
        ("digits", " 42 ".into()),
        ("blank", "".into()),
        ("empty_list", Value::Multi(vec![])),
        ("photo", Value::Binary(vec![0xff])),
        ("flag", Value::Boolean(true)),
    ])
}

fn err(src: &str) -> String {
    compile_expr(src).unwrap().eval(&o()).unwrap_err().message
}

fn b(v: bool) -> Option<Value> {
    Some(Value::Boolean(v))
}

fn i(v: i64) -> Option<Value> {
    Some(Value::Integer(v))
}

#[test]
fn lower_upper_and_trim_change_text_and_apply_to_each_value_of_a_multi_value() {
    let o = o();
    assert_eq!(eval("lower(mail)", &o), s("ada@example.com"));
    assert_eq!(eval("upper(mail)", &o), s("ADA@EXAMPLE.COM"));
    assert_eq!(eval("trim(name)", &o), s("Ada Lovelace"));
    assert_eq!(
        eval("lower(groups)", &o),
        Some(multi(&["admins", " staff "]))
    );
    assert_eq!(
        eval("upper(trim(groups))", &o),
        Some(multi(&["ADMINS", "STAFF"]))
    );
    assert_eq!(eval("lower(missing)", &o), None);
    assert_eq!(eval("lower(n)", &o), s("3"));
    assert!(err("lower(photo)").starts_with("lower: cannot use binary data as text"));
}

#[test]
fn concat_joins_any_number_of_arguments_as_text() {
    let o = o();
    assert_eq!(eval(r#"concat(n, n, "x")"#, &o), s("33x"));
    assert_eq!(eval(r#"concat(missing, "x", n)"#, &o), s("x3"));
    assert_eq!(eval("concat(missing, blank)", &o), None);
}

#[test]
fn coalesce_gives_the_first_present_non_empty_argument() {
    let o = o();
    assert_eq!(
        eval(r#"coalesce(missing, blank, empty_list, mail, "x")"#, &o),
        s("Ada@Example.COM")
    );
    assert_eq!(eval("coalesce(missing, blank)", &o), None);
    // Later arguments are not evaluated once one is found.
    assert_eq!(
        eval(r#"coalesce(mail, to_int(mail))"#, &o),
        s("Ada@Example.COM")
    );
}

#[test]
fn left_right_and_substring_count_characters_and_clamp() {
    let o = o();
    assert_eq!(eval("left(mail, 3)", &o), s("Ada"));
    assert_eq!(eval("right(mail, 3)", &o), s("COM"));
    assert_eq!(eval("left(mail, 100)", &o), s("Ada@Example.COM"));
    assert_eq!(eval("left(mail, -1)", &o), s(""));
    assert_eq!(eval("right(mail, 100)", &o), s("Ada@Example.COM"));
    assert_eq!(eval("substring(mail, 4, 7)", &o), s("Example"));
    assert_eq!(eval("substring(mail, 100, 7)", &o), s(""));
    assert_eq!(eval("substring(mail, -5, 3)", &o), s("Ada"));
    assert_eq!(eval0(r#"left("héllo wörld", 2)"#), s("hé"));
    assert_eq!(eval0(r#"right("héllo wörld", 3)"#), s("rld"));
    assert_eq!(eval("left(groups, 1)", &o), Some(multi(&["A", " "])));
    assert_eq!(eval("left(missing, 1)", &o), None);
    assert_eq!(eval("left(mail, digits)", &o), s("Ada@Example.COM"));
    assert!(err("left(mail, mail)").contains("left: expects an integer"));
}

#[test]
fn replace_substitutes_every_occurrence() {
    let o = o();
    assert_eq!(eval0(r#"replace("a.b.c", ".", "-")"#), s("a-b-c"));
    assert_eq!(eval0(r#"replace("abc", "", "-")"#), s("abc"));
    assert_eq!(eval0(r#"replace("a.b", ".", null)"#), s("ab"));
    assert_eq!(
        eval(r#"replace(groups, " ", "")"#, &o),
        Some(multi(&["Admins", "Staff"]))
    );
}

#[test]
fn split_makes_a_multi_value_and_join_makes_text() {
    let o = o();
    assert_eq!(
        eval0(r#"split("a;b;;c", ";")"#),
        Some(multi(&["a", "b", "", "c"]))
    );
    assert_eq!(eval(r#"split(missing, ";")"#, &o), None);
    assert_eq!(eval(r#"split(blank, ";")"#, &o), None);
    assert!(err(r#"split(mail, "")"#).starts_with("split: the separator is empty"));
    assert_eq!(eval(r#"join(groups, "|")"#, &o), s("Admins| Staff "));
    assert_eq!(eval(r#"join(split("x,y", ","), "+")"#, &o), s("x+y"));
    assert_eq!(eval(r#"join(mail, ",")"#, &o), s("Ada@Example.COM"));
    assert_eq!(eval(r#"join(empty_list, ",")"#, &o), None);
    assert_eq!(eval(r#"join(missing, ",")"#, &o), None);
}

#[test]
fn len_counts_characters_or_values_and_absent_is_zero() {
    let o = o();
    assert_eq!(eval0(r#"len("héllo")"#), i(5));
    assert_eq!(eval("len(groups)", &o), i(2));
    assert_eq!(eval("len(missing)", &o), i(0));
    assert_eq!(eval("len(photo)", &o), i(1));
}

#[test]
fn is_present_and_is_empty_tell_absent_empty_and_present_apart() {
    let o = o();
    assert_eq!(eval("is_present(mail)", &o), b(true));
    assert_eq!(eval("is_present(blank)", &o), b(true));
    assert_eq!(eval("is_present(missing)", &o), b(false));
    assert_eq!(eval("is_empty(blank)", &o), b(true));
    assert_eq!(eval("is_empty(empty_list)", &o), b(true));
    assert_eq!(eval("is_empty(missing)", &o), b(true));
    assert_eq!(eval("is_empty(mail)", &o), b(false));
}

#[test]
fn to_string_renders_values_and_to_int_parses_text() {
    let o = o();
    assert_eq!(eval("to_string(n)", &o), s("3"));
    assert_eq!(eval("to_string(flag)", &o), s("true"));
    assert_eq!(eval("to_string(photo)", &o), s("/w=="));
    assert_eq!(eval("to_string(groups)", &o), s("Admins; Staff "));
    assert_eq!(eval("to_string(missing)", &o), None);
    assert_eq!(eval("to_int(digits)", &o), i(42));
    assert_eq!(eval("to_int(n) + 1", &o), i(4));
    assert_eq!(eval("to_int(blank)", &o), None);
    assert_eq!(eval("to_int(missing)", &o), None);
    assert_eq!(
        err("to_int(mail)"),
        r#"to_int: the value is not an integer (got string "Ada@Example.COM")"#
    );
    assert!(err("to_int(flag)").contains("boolean true"));
}

#[test]
fn text_tests_check_prefixes_suffixes_and_parts() {
    let o = o();
    assert_eq!(eval(r#"starts_with(mail, "Ada@")"#, &o), b(true));
    assert_eq!(eval(r#"starts_with(mail, "ada@")"#, &o), b(false));
    assert_eq!(eval(r#"ends_with(lower(mail), ".com")"#, &o), b(true));
    assert_eq!(eval(r#"contains(mail, "@Ex")"#, &o), b(true));
    assert_eq!(eval(r#"contains(missing, "x")"#, &o), b(false));
    assert_eq!(eval(r#"starts_with(groups, " St")"#, &o), b(true));
    assert_eq!(eval(r#"ends_with(groups, "nothing")"#, &o), b(false));
}

#[test]
fn contains_on_a_multi_value_tests_membership() {
    let o = o();
    assert_eq!(eval(r#"contains(groups, "Admins")"#, &o), b(true));
    assert_eq!(eval(r#"contains(groups, "Adm")"#, &o), b(false));
}

#[test]
fn if_is_the_conditional_as_a_function() {
    let o = o();
    assert_eq!(eval(r#"if(flag, "on", "off")"#, &o), s("on"));
    assert_eq!(eval(r#"if(missing, "on", "off")"#, &o), s("off"));
    assert_eq!(eval(r#"if(n > 5, "big", null)"#, &o), None);
    assert!(err(r#"if(mail, 1, 2)"#).contains("must be true or false"));
}

#[test]
fn first_takes_the_first_value_of_a_multi_value() {
    let o = o();
    assert_eq!(eval("first(groups)", &o), s("Admins"));
    assert_eq!(eval("first(mail)", &o), s("Ada@Example.COM"));
    assert_eq!(eval("first(empty_list)", &o), None);
    assert_eq!(eval(r#"first(split("x,y", ","))"#, &o), s("x"));
}

#[test]
fn every_listed_function_compiles() {
    let names: Vec<_> = function_names().collect();
    assert_eq!(names.len(), 47);
    for name in names {
        let compiles = ["x", "x, y", "x, y, z"]
            .iter()
            .any(|args| compile_expr(&format!("{name}({args})")).is_ok());
        assert!(compiles, "{name}");
    }
}

#[test]
fn the_readme_expression_examples_work() {
    let o = object(&[
        ("first", "Ada".into()),
        ("last", "Lovelace".into()),
        ("first_name", "Ada".into()),
        ("last_name", "Lovelace".into()),
        ("display_name", "Ada Lovelace".into()),
        ("department", "Sales".into()),
        ("manager", "Charles".into()),
        ("employee_number", "999".into()),
        ("proxy-addresses", "a@x;b@x".into()),
        ("userAccountControl", Value::Integer(0x202)),
        ("accountExpires", Value::Integer(133_537_824_000_000_000)),
        ("display_name_odd", "Smith, John".into()),
    ]);
    assert_eq!(
        eval(
            r#""CN=" + escape_dn(display_name_odd) + ",OU=People,DC=contoso,DC=com""#,
            &o
        ),
        s(r"CN=Smith\, John,OU=People,DC=contoso,DC=com")
    );
    assert_eq!(
        eval(
            r#"has_bits(userAccountControl, 0x2) ? "disabled" : "enabled""#,
            &o
        ),
        s("disabled")
    );
    assert_eq!(
        eval(
            r#"format_date(from_filetime(accountExpires), "%Y-%m-%d")"#,
            &o
        ),
        s("2024-03-01")
    );
    assert_eq!(
        eval(
            "coalesce(preferred_name, first_name) + \" \" + upper(last_name)",
            &o
        ),
        s("Ada LOVELACE")
    );
    assert_eq!(
        eval(r#"lower(left(first, 1) + last) + "@contoso.com""#, &o),
        s("alovelace@contoso.com")
    );
    assert_eq!(
        eval(
            r#""CN=" + display_name + ",OU=" + department + ",DC=contoso,DC=com""#,
            &o
        ),
        s("CN=Ada Lovelace,OU=Sales,DC=contoso,DC=com")
    );
    assert_eq!(
        eval(r#"department == "Sales" && !is_empty(manager)"#, &o),
        b(true)
    );
    assert_eq!(
        eval(
            r#"to_int(employee_number) >= 1000 ? "staff" : "founder""#,
            &o
        ),
        s("founder")
    );
    assert_eq!(
        eval(r#"join(split(`proxy-addresses`, ";"), ",")"#, &o),
        s("a@x,b@x")
    );
}
