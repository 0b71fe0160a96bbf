//! Parsing: precedence, literals and escapes, compile errors with offsets and
//! suggestions, and the program's description of itself.

use super::{eval, eval0, object, s};
use autosync_expr::{CompileError, compile_expr};
use autosync_model::Value;

fn error(src: &str) -> CompileError {
    compile_expr(src).expect_err(src)
}

#[test]
fn string_literals_accept_both_quotes_and_the_documented_escapes() {
    assert_eq!(eval0(r#""double""#), s("double"));
    assert_eq!(eval0("'single'"), s("single"));
    assert_eq!(eval0(r#""say \"hi\"""#), s("say \"hi\""));
    assert_eq!(eval0(r"'it\'s'"), s("it's"));
    assert_eq!(eval0(r#""a\\b""#), s("a\\b"));
    assert_eq!(eval0(r#""line\nnext""#), s("line\nnext"));
    assert_eq!(eval0(r#""it's""#), s("it's"));
    assert_eq!(eval0(r#"'say "hi"'"#), s("say \"hi\""));
}

#[test]
fn literals_true_false_integers_and_null_have_their_values() {
    assert_eq!(eval0("true"), Some(Value::Boolean(true)));
    assert_eq!(eval0("false"), Some(Value::Boolean(false)));
    assert_eq!(eval0("42"), Some(Value::Integer(42)));
    assert_eq!(eval0("-7"), Some(Value::Integer(-7)));
    assert_eq!(eval0("null"), None);
}

#[test]
fn back_quoted_names_may_hold_any_character() {
    let o = object(&[
        ("mail-nickname", "ada".into()),
        ("given name", "Ada".into()),
    ]);
    assert_eq!(eval("`mail-nickname`", &o), s("ada"));
    assert_eq!(eval("upper(`given name`)", &o), s("ADA"));
    let p = compile_expr("`mail-nickname`").unwrap();
    assert_eq!(p.as_attribute(), Some("mail-nickname"));
}

#[test]
fn plus_binds_tighter_than_comparison_which_binds_tighter_than_and_then_or() {
    // Parsed as ("a" + "b" == "ab") || (false && false).
    assert_eq!(
        eval0(r#""a" + "b" == "ab" || false && false"#),
        Some(Value::Boolean(true))
    );
    // && before ||: true || (false && false) is true, (true || false) && false is false.
    assert_eq!(eval0("true || false && false"), Some(Value::Boolean(true)));
    assert_eq!(
        eval0("(true || false) && false"),
        Some(Value::Boolean(false))
    );
    // ! binds tighter than &&.
    assert_eq!(eval0("!false && false"), Some(Value::Boolean(false)));
    assert_eq!(eval0("1 + 2 < 4"), Some(Value::Boolean(true)));
}

#[test]
fn the_conditional_operator_has_the_lowest_precedence_and_nests_to_the_right() {
    assert_eq!(eval0(r#"1 == 1 ? "yes" : "no""#), s("yes"));
    assert_eq!(eval0(r#"false ? "a" : true ? "b" : "c""#), s("b"));
    assert_eq!(eval0(r#"(false ? "a" : "b") + "!""#), s("b!"));
    assert_eq!(eval0(r#"false ? "a" : "b" + "!""#), s("b!"));
}

#[test]
fn plus_is_left_associative_so_integers_add_before_text_joins() {
    assert_eq!(eval0(r#"1 + 2 + "x""#), s("3x"));
    assert_eq!(eval0(r#""x" + 1 + 2"#), s("x12"));
    assert_eq!(eval0("1 + 2 + 3"), Some(Value::Integer(6)));
}

#[test]
fn unknown_functions_are_reported_with_a_suggestion_and_offset() {
    let e = error("  lowr(email)");
    assert_eq!(e.message, "unknown function `lowr`");
    assert_eq!(e.offset, Some(2));
    assert_eq!(e.help.as_deref(), Some("did you mean `lower`?"));
}

#[test]
fn now_is_refused_because_flows_must_be_deterministic() {
    let e = error("now()");
    assert!(e.help.unwrap().contains("same result every time"));
}

#[test]
fn wrong_argument_counts_name_the_function_and_its_signature() {
    let e = error(r#"x + left("abc")"#);
    assert_eq!(e.message, "`left` takes 2 arguments, but 1 were given");
    assert_eq!(e.offset, Some(4));
    assert_eq!(e.help.as_deref(), Some("use left(text, count)"));
    let e = error("concat()");
    assert!(e.message.contains("at least 1 argument"), "{}", e.message);
}

#[test]
fn syntax_errors_point_at_the_offending_byte() {
    let e = error(r#"lower(email"#);
    assert_eq!(e.offset, Some(11));
    assert!(e.message.contains("expected `,` or `)`"), "{}", e.message);

    let e = error(r#"first + "unterminated"#);
    assert_eq!(e.offset, Some(8));
    assert_eq!(e.message, "unterminated string");

    let e = error("a b");
    assert_eq!(e.offset, Some(2));
    assert!(e.help.unwrap().contains("`+`"));

    let e = error("a = b");
    assert_eq!(e.offset, Some(2));
    assert!(e.help.unwrap().contains("`==`"));

    let e = error("(a");
    assert!(
        e.message
            .contains("expected `)` to close the `(` at byte 0"),
        "{}",
        e.message
    );

    let e = error("");
    assert_eq!(e.message, "the expression is empty");
}

#[test]
fn unknown_escapes_are_reported_at_the_backslash() {
    let e = error(r#""a\qb""#);
    assert_eq!(e.offset, Some(2));
    assert!(e.message.contains("unknown escape `\\q`"), "{}", e.message);
}

#[test]
fn a_dash_in_a_bare_name_suggests_back_quotes() {
    let e = error("mail-nickname");
    assert_eq!(e.offset, Some(4));
    assert_eq!(e.message, "`-` is not allowed in a bare attribute name");
    assert_eq!(
        e.help.as_deref(),
        Some("write the name in back quotes: `mail-nickname`")
    );
}

#[test]
fn chained_comparisons_are_rejected() {
    let e = error("1 < 2 < 3");
    assert_eq!(e.offset, Some(6));
    assert!(e.help.unwrap().contains("&&"));
}

#[test]
fn deeply_nested_expressions_are_a_compile_error_not_a_stack_overflow() {
    let src = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = error(&src);
    assert!(e.message.contains("nests more than"), "{}", e.message);
    let src = format!("{}x", "!".repeat(10_000));
    assert!(compile_expr(&src).is_err());
}

#[test]
fn constant_sub_expressions_that_always_fail_are_compile_errors() {
    let e = error(r#"x + to_int("abc")"#);
    assert_eq!(e.offset, Some(4));
    assert!(e.message.contains("to_int"), "{}", e.message);
}

#[test]
fn render_shows_the_line_a_caret_and_the_help() {
    let src = "lower(email) +\n  lowr(x)";
    let e = error(src);
    assert_eq!(
        e.render(src),
        "unknown function `lowr` at line 2, column 3\n    lowr(x)\n    ^\nhelp: did you mean `lower`?"
    );
}

#[test]
fn programs_list_the_attributes_they_read_once_in_first_use_order() {
    let p = compile_expr(r#"coalesce(nick, first) + " " + last + `x-y` + nick"#).unwrap();
    assert_eq!(p.attributes(), ["nick", "first", "last", "x-y"]);
    assert!(compile_expr(r#""a" + 1"#).unwrap().attributes().is_empty());
}

#[test]
fn bare_attributes_and_constants_are_recognised() {
    let p = compile_expr(" employeeId ").unwrap();
    assert_eq!(p.as_attribute(), Some("employeeId"));
    assert_eq!(p.as_constant(), None);
    assert_eq!(p.source(), " employeeId ");

    let p = compile_expr(r#""Contoso" + " " + upper("ltd")"#).unwrap();
    assert_eq!(p.as_constant(), Some(&Value::from("Contoso LTD")));
    assert_eq!(p.as_attribute(), None);

    assert_eq!(compile_expr("lower(x)").unwrap().as_attribute(), None);
    assert_eq!(compile_expr("null").unwrap().as_constant(), None);
}

#[test]
fn keywords_followed_by_parentheses_and_digits_in_names_behave() {
    let o = object(&[("a1", "v".into())]);
    assert_eq!(eval("a1", &o), s("v"));
    let e = error("1abc");
    assert!(e.help.unwrap().contains("back quotes"));
}

#[test]
fn integers_too_large_are_compile_errors() {
    let e = error("99999999999999999999");
    assert_eq!(e.offset, Some(0));
    assert!(e.message.contains("too large"));
}
