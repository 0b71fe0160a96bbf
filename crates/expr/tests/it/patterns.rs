//! Regular expressions: matching, replacing with groups, extracting a
//! group; literal patterns compiled (and refused) with the expression,
//! computed ones at evaluation under a size limit; linear time.

use super::{eval, multi, object, s};
use autosync_expr::compile_expr;
use autosync_model::{Attributes, Value};
use std::time::{Duration, Instant};

fn o() -> Attributes {
    object(&[
        ("mail", "Ada.Lovelace@Contoso.com".into()),
        ("phone", "+44 (20) 7946-0958".into()),
        (
            "proxies",
            multi(&["SMTP:ada@contoso.com", "smtp:al@contoso.com"]),
        ),
        ("pattern", "^\\+(\\d+)".into()),
        ("bad_pattern", "(unclosed".into()),
        ("huge_pattern", "\\w{1000}{1000}".into()),
        ("code", Value::Integer(4711)),
        ("blank", "".into()),
        ("one_group", "(a)".into()),
    ])
}

fn b(v: bool) -> Option<Value> {
    Some(Value::Boolean(v))
}

fn err(src: &str) -> String {
    compile_expr(src).unwrap().eval(&o()).unwrap_err().message
}

#[test]
fn regex_match_tells_whether_the_pattern_matches() {
    let o = o();
    assert_eq!(
        eval(r#"regex_match(mail, "@contoso\\.com$")"#, &o),
        b(false)
    );
    assert_eq!(
        eval(r#"regex_match(mail, "(?i)@contoso\\.com$")"#, &o),
        b(true)
    );
    assert_eq!(eval(r#"regex_match(code, "^47")"#, &o), b(true));
    assert_eq!(eval(r#"regex_match(proxies, "^SMTP:")"#, &o), b(true));
    assert_eq!(eval(r#"regex_match(proxies, "^X400:")"#, &o), b(false));
    assert_eq!(eval(r#"regex_match(missing, ".*")"#, &o), b(false));
    assert_eq!(eval(r#"regex_match(blank, "^$")"#, &o), b(true));
    assert_eq!(eval("regex_match(phone, pattern)", &o), b(true));
    assert_eq!(eval("regex_match(phone, missing)", &o), b(false));
}

#[test]
fn regex_replace_replaces_every_match_and_fills_in_groups() {
    let o = o();
    assert_eq!(
        eval(r#"regex_replace(phone, "[^0-9+]", "")"#, &o),
        s("+442079460958")
    );
    assert_eq!(
        eval(
            r#"regex_replace(mail, "^(\\w+)\\.(\\w+)@.*$", "$2, $1")"#,
            &o
        ),
        s("Lovelace, Ada")
    );
    assert_eq!(
        eval(
            r#"regex_replace(mail, "^(?P<first>\\w+)\\..*$", "${first}_x$$")"#,
            &o
        ),
        s("Ada_x$")
    );
    assert_eq!(
        eval(r#"regex_replace(proxies, "(?i)^smtp:", "")"#, &o),
        Some(multi(&["ada@contoso.com", "al@contoso.com"]))
    );
    assert_eq!(
        eval(r#"regex_replace(mail, "\\.", null)"#, &o),
        s("AdaLovelace@Contosocom")
    );
    assert_eq!(eval(r#"regex_replace(missing, "a", "b")"#, &o), None);
}

#[test]
fn regex_extract_gives_a_group_of_the_first_match_or_nothing() {
    let o = o();
    assert_eq!(
        eval(r#"regex_extract(mail, "@(.+)$")"#, &o),
        s("Contoso.com")
    );
    assert_eq!(eval(r#"regex_extract(mail, "[A-Z]\\w+")"#, &o), s("Ada"));
    assert_eq!(
        eval(r#"regex_extract(mail, "^(\\w+)\\.(\\w+)", 2)"#, &o),
        s("Lovelace")
    );
    assert_eq!(
        eval(r#"regex_extract(mail, "^(\\w+)\\.(\\w+)", 0)"#, &o),
        s("Ada.Lovelace")
    );
    assert_eq!(
        eval(r#"regex_extract(mail, "@(?P<domain>[^.]+)", "domain")"#, &o),
        s("Contoso")
    );
    assert_eq!(eval(r#"regex_extract(mail, "^\\d+")"#, &o), None);
    assert_eq!(eval(r#"regex_extract(mail, "x(y)?|A")"#, &o), None);
    assert_eq!(eval(r#"regex_extract(missing, ".")"#, &o), None);
    assert_eq!(eval("regex_extract(phone, pattern)", &o), s("44"));
    assert_eq!(
        eval(r#"regex_extract(proxies, "^SMTP:(.*)")"#, &o),
        Some(multi(&["ada@contoso.com"]))
    );
}

#[test]
fn a_bad_literal_pattern_is_a_compile_error_naming_the_pattern_and_the_cause() {
    let src = r#"regex_match(mail, "(unclosed")"#;
    let e = compile_expr(src).unwrap_err();
    assert_eq!(
        e.message,
        r#"regex_match: invalid regular expression "(unclosed": unclosed group"#
    );
    assert_eq!(e.offset, Some(18), "the caret points at the pattern");
    assert!(e.help.unwrap().contains("regex"));
    let e = compile_expr(r#"regex_replace(mail, "(?<=a)b", "")"#).unwrap_err();
    assert!(e.message.contains("look-around"), "{}", e.message);
    let e = compile_expr(r#"regex_extract(mail, "(a)(b)", 3)"#).unwrap_err();
    assert_eq!(
        e.message,
        r#"regex_extract: the pattern "(a)(b)" has 2 groups, so there is no group 3"#
    );
    assert_eq!(e.offset, Some(30), "the caret points at the group");
    let e = compile_expr(r#"regex_extract(mail, "(a)", "name")"#).unwrap_err();
    assert!(
        e.message.contains("no group named \"name\""),
        "{}",
        e.message
    );
}

#[test]
fn a_bad_computed_pattern_is_an_error_of_that_object_only() {
    assert_eq!(
        err("regex_match(mail, bad_pattern)"),
        r#"regex_match: invalid regular expression "(unclosed": unclosed group"#
    );
    let too_big = err("regex_replace(mail, huge_pattern, \"\")");
    assert!(
        too_big.starts_with("regex_replace: invalid regular expression")
            && too_big.contains("size limit"),
        "{too_big}"
    );
    assert!(
        err("regex_extract(mail, one_group, 2)").contains("has 1 group, so there is no group 2")
    );
    // The same program carries on for an object whose pattern is fine.
    let program = compile_expr("regex_match(phone, pattern)").unwrap();
    assert_eq!(program.eval(&o()).unwrap(), b(true));
}

#[test]
fn matching_takes_linear_time_even_for_patterns_that_backtrack_elsewhere() {
    let attrs = object(&[("v", Value::String(format!("{}!", "a".repeat(50_000))))]);
    let started = Instant::now();
    assert_eq!(eval(r#"regex_match(v, "^(a+)+$")"#, &attrs), b(false));
    assert_eq!(eval(r#"regex_match(v, "(a|aa)*b")"#, &attrs), b(false));
    assert!(started.elapsed() < Duration::from_secs(5));
}
