//! The DN, regular expression, date and bit functions inside Rhai scripts:
//! the same names as in expressions, with the same results and errors.

use super::{multi, object};
use autosync_expr::{ScriptLimits, compile_expr, compile_script};
use autosync_model::{Attributes, Value};

fn person() -> Attributes {
    object(&[
        ("display", "Smith, John".into()),
        (
            "manager",
            r"CN=Smith\, John,OU=People,DC=contoso,DC=com".into(),
        ),
        ("mail", "Ada.Lovelace@Contoso.com".into()),
        (
            "proxies",
            multi(&["SMTP:ada@contoso.com", "smtp:al@contoso.com"]),
        ),
        ("start", "01/09/2023".into()),
        ("pwdLastSet", Value::Integer(129_699_324_000_000_000)),
        ("uac", "512".into()),
    ])
}

/// Each expression and the script that says the same with `attr(...)`.
const SAME: &[(&str, &str)] = &[
    ("escape_dn(display)", r#"escape_dn(attr("display"))"#),
    (
        r#"escape_dn_component("CN=" + display)"#,
        r#"escape_dn_component("CN=" + attr("display"))"#,
    ),
    (
        "unescape_dn(escape_dn(display))",
        r#"unescape_dn(escape_dn(attr("display")))"#,
    ),
    (
        "dn_component(manager, 1)",
        r#"dn_component(attr("manager"), 1)"#,
    ),
    (
        r#"dn_component_rev(manager, 1, "DC")"#,
        r#"dn_component_rev(attr("manager"), 1, "DC")"#,
    ),
    (
        r#"regex_match(mail, "(?i)contoso")"#,
        r#"regex_match(attr("mail"), "(?i)contoso")"#,
    ),
    (
        r#"regex_replace(proxies, "(?i)^smtp:", "")"#,
        r#"regex_replace(attr("proxies"), "(?i)^smtp:", "")"#,
    ),
    (
        r#"regex_extract(mail, "@(.+)$")"#,
        r#"regex_extract(attr("mail"), "@(.+)$")"#,
    ),
    (
        r#"regex_extract(mail, "^(\\w+)\\.(\\w+)", 2)"#,
        r#"regex_extract(attr("mail"), "^(\\w+)\\.(\\w+)", 2)"#,
    ),
    (
        r#"regex_extract(mail, "^\\d+")"#,
        r#"regex_extract(attr("mail"), "^\\d+")"#,
    ),
    (
        r#"parse_date(start, "%d/%m/%Y")"#,
        r#"parse_date(attr("start"), "%d/%m/%Y")"#,
    ),
    (
        r#"format_date(add_months(parse_date(start, "%d/%m/%Y"), 6), "%Y-%m-%d")"#,
        r#"format_date(add_months(parse_date(attr("start"), "%d/%m/%Y"), 6), "%Y-%m-%d")"#,
    ),
    (
        "from_filetime(pwdLastSet)",
        r#"from_filetime(attr("pwdLastSet"))"#,
    ),
    (
        "to_filetime(add_days(from_filetime(pwdLastSet), 90))",
        r#"to_filetime(add_days(from_filetime(attr("pwdLastSet")), 90))"#,
    ),
    (
        "to_unix(from_filetime(pwdLastSet))",
        r#"to_unix(from_filetime(attr("pwdLastSet")))"#,
    ),
    ("is_date(start)", r#"is_date(attr("start"))"#),
    ("set_bits(uac, 0x2)", r#"set_bits(attr("uac"), 0x2)"#),
    (
        "has_bits(set_bits(uac, 0x2), 0x2)",
        r#"has_bits(set_bits(attr("uac"), 0x2), 0x2)"#,
    ),
    (
        "clear_bits(uac, 0x200)",
        r#"clear_bits(attr("uac"), 0x200)"#,
    ),
    (
        "bit_xor(bit_not(uac), 0xF)",
        r#"bit_xor(bit_not(attr("uac")), 0xF)"#,
    ),
    ("escape_dn(missing)", r#"escape_dn(attr("missing"))"#),
    (
        "has_bits(missing, 0x2)",
        r#"has_bits(attr("missing"), 0x2)"#,
    ),
];

#[test]
fn a_script_and_an_expression_agree_on_every_shared_function() {
    let person = person();
    for (expr, script) in SAME {
        let from_expr = compile_expr(expr)
            .unwrap_or_else(|e| panic!("{}", e.render(expr)))
            .eval(&person)
            .unwrap();
        let from_script = compile_script(script, &ScriptLimits::default())
            .unwrap_or_else(|e| panic!("{}", e.render(script)))
            .eval(&person)
            .unwrap();
        assert_eq!(from_expr, from_script, "{expr} against {script}");
    }
}

#[test]
fn a_failing_shared_function_fails_the_script_with_the_same_message() {
    let person = person();
    let cases = [
        (
            r#"regex_match(attr("mail"), "(unclosed")"#,
            r#"regex_match: invalid regular expression "(unclosed": unclosed group"#,
        ),
        (
            r#"parse_date(attr("start"), "%Y-%m-%d")"#,
            r#"parse_date: string "01/09/2023" is not a date in the format "%Y-%m-%d""#,
        ),
        (
            r#"set_bits(attr("display"), 2)"#,
            r#"set_bits: expects an integer (got string "Smith, John")"#,
        ),
        (
            r#"add_days("2024-03-01", 9223372036854775807)"#,
            "add_days: adding 9223372036854775807 gives a date out of range",
        ),
    ];
    for (script, message) in cases {
        let err = compile_script(script, &ScriptLimits::default())
            .unwrap()
            .eval(&person)
            .unwrap_err();
        assert!(err.script, "{script}");
        assert!(err.message.contains(message), "{script}: {}", err.message);
    }
}

#[test]
fn scripts_can_compute_patterns_and_use_the_results_as_rhai_values() {
    let script = r#"
        let domain = regex_extract(attr("mail"), "@(.+)$");
        let pattern = "(?i)@" + domain;
        if regex_match(attr("proxies"), pattern) { dn_component(attr("manager"), 2) } else { () }
    "#;
    let result = compile_script(script, &ScriptLimits::default())
        .unwrap()
        .eval(&person())
        .unwrap();
    assert_eq!(result, Some("People".into()));
}
