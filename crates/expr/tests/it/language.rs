//! Operators: concatenation and its absent rule, integer addition,
//! comparisons, boolean logic and conditions.

use super::{eval, eval0, multi, object, s};
use autosync_expr::compile_expr;
use autosync_model::{Attributes, Value};

fn person() -> Attributes {
    object(&[
        ("first", "Ada".into()),
        ("last", "Lovelace".into()),
        ("age", Value::Integer(36)),
        ("employeeId", "0042".into()),
        ("active", Value::Boolean(true)),
        ("blank", "".into()),
        ("groups", multi(&["admins", "staff"])),
        ("one", multi(&["only"])),
        ("photo", Value::Binary(vec![1, 2, 3])),
    ])
}

#[test]
fn plus_joins_text_and_renders_integers_and_booleans() {
    let p = person();
    assert_eq!(eval(r#"first + " " + last"#, &p), s("Ada Lovelace"));
    assert_eq!(eval(r#"first + age"#, &p), s("Ada36"));
    assert_eq!(eval(r#""active=" + active"#, &p), s("active=true"));
}

#[test]
fn plus_adds_when_both_operands_are_integers() {
    let p = person();
    assert_eq!(eval("age + 1", &p), Some(Value::Integer(37)));
    // Text holding digits is still text.
    assert_eq!(eval("employeeId + 1", &p), s("00421"));
}

#[test]
fn an_absent_operand_counts_as_empty_text() {
    let p = object(&[("first", "Ada".into())]);
    assert_eq!(eval(r#"first + " " + last"#, &p), s("Ada "));
    assert_eq!(eval(r#"missing + 1 + first"#, &p), s("1Ada"));
    assert_eq!(eval(r#"missing + 1"#, &p), None);
}

#[test]
fn a_concatenation_whose_attributes_are_all_absent_is_absent() {
    let none = Attributes::new();
    assert_eq!(eval(r#"first + " " + last"#, &none), None);
    assert_eq!(eval(r#"concat(first, " ", last)"#, &none), None);
    // Empty values count as absent for this rule.
    let blank = object(&[("first", "".into()), ("last", "".into())]);
    assert_eq!(eval(r#"first + " " + last"#, &blank), None);
    // A chain of literals only is never absent.
    assert_eq!(eval0(r#""a" + null"#), s("a"));
}

#[test]
fn integer_overflow_is_an_evaluation_error() {
    let p = object(&[("big", Value::Integer(i64::MAX))]);
    let err = compile_expr("big + 1").unwrap().eval(&p).unwrap_err();
    assert!(err.message.contains("does not fit"), "{}", err.message);
    assert!(!err.script);
}

#[test]
fn multi_values_in_concatenation_need_a_single_value() {
    let p = person();
    assert_eq!(eval(r#"one + "!""#, &p), s("only!"));
    let err = compile_expr(r#"groups + "!""#)
        .unwrap()
        .eval(&p)
        .unwrap_err();
    assert!(
        err.message.contains("first(x) or join(x, sep)"),
        "{}",
        err.message
    );
    let err = compile_expr(r#"photo + "!""#)
        .unwrap()
        .eval(&p)
        .unwrap_err();
    assert!(err.message.contains("binary"), "{}", err.message);
}

#[test]
fn equality_compares_integers_with_digit_text_and_absent_with_empty() {
    let p = person();
    assert_eq!(eval("employeeId == 42", &p), Some(Value::Boolean(true)));
    assert_eq!(eval(r#"age == "36""#, &p), Some(Value::Boolean(true)));
    assert_eq!(eval(r#"first == "Ada""#, &p), Some(Value::Boolean(true)));
    assert_eq!(eval(r#"first == "ada""#, &p), Some(Value::Boolean(false)));
    assert_eq!(eval(r#"first != "ada""#, &p), Some(Value::Boolean(true)));
    assert_eq!(eval("missing == null", &p), Some(Value::Boolean(true)));
    assert_eq!(eval(r#"missing == """#, &p), Some(Value::Boolean(true)));
    assert_eq!(eval("blank == null", &p), Some(Value::Boolean(true)));
    assert_eq!(eval("first == null", &p), Some(Value::Boolean(false)));
    assert_eq!(eval(r#"active == "true""#, &p), Some(Value::Boolean(true)));
}

#[test]
fn a_multi_value_equals_any_of_its_values() {
    let p = person();
    assert_eq!(eval(r#"groups == "staff""#, &p), Some(Value::Boolean(true)));
    assert_eq!(
        eval(r#"groups == "guests""#, &p),
        Some(Value::Boolean(false))
    );
}

#[test]
fn ordering_compares_integers_numerically_and_text_lexically() {
    let p = person();
    assert_eq!(eval("age > 30", &p), Some(Value::Boolean(true)));
    assert_eq!(eval("age <= 35", &p), Some(Value::Boolean(false)));
    assert_eq!(eval(r#""9" < 10"#, &p), Some(Value::Boolean(true)));
    assert_eq!(eval(r#""9" < "10""#, &p), Some(Value::Boolean(false)));
    assert_eq!(eval(r#"first >= "Ada""#, &p), Some(Value::Boolean(true)));
}

#[test]
fn ordering_with_an_absent_operand_is_false_and_with_other_kinds_an_error() {
    let p = person();
    assert_eq!(eval("missing < 3", &p), Some(Value::Boolean(false)));
    assert_eq!(eval("missing >= 3", &p), Some(Value::Boolean(false)));
    let err = compile_expr("active < 3").unwrap().eval(&p).unwrap_err();
    assert!(err.message.contains("`<`"), "{}", err.message);
    let err = compile_expr("first < 3").unwrap().eval(&p).unwrap_err();
    assert!(err.message.contains("string \"Ada\""), "{}", err.message);
}

#[test]
fn boolean_operators_short_circuit_and_treat_absent_as_false() {
    let p = person();
    assert_eq!(eval("active && !missing", &p), Some(Value::Boolean(true)));
    assert_eq!(eval("missing || false", &p), Some(Value::Boolean(false)));
    // The right side is never evaluated, so its type error does not occur.
    assert_eq!(eval("false && first", &p), Some(Value::Boolean(false)));
    assert_eq!(eval("true || first", &p), Some(Value::Boolean(true)));
    let err = compile_expr("true && first").unwrap().eval(&p).unwrap_err();
    assert!(
        err.message.contains("must be true or false"),
        "{}",
        err.message
    );
}

#[test]
fn eval_bool_treats_absent_as_false_and_rejects_text() {
    let p = person();
    assert!(compile_expr("active").unwrap().eval_bool(&p).unwrap());
    assert!(!compile_expr("missing").unwrap().eval_bool(&p).unwrap());
    assert!(
        compile_expr(r#"first == "Ada" && age > 18"#)
            .unwrap()
            .eval_bool(&p)
            .unwrap()
    );
    let err = compile_expr("first").unwrap().eval_bool(&p).unwrap_err();
    assert_eq!(
        err.message,
        "the condition must be true or false (got string \"Ada\")"
    );
}

#[test]
fn conditions_pick_a_branch_and_only_evaluate_that_branch() {
    let p = person();
    assert_eq!(eval(r#"active ? "enabled" : "disabled""#, &p), s("enabled"));
    assert_eq!(
        eval(r#"missing ? "enabled" : "disabled""#, &p),
        s("disabled")
    );
    assert_eq!(eval(r#"active ? first : to_int(first)"#, &p), s("Ada"));
    let err = compile_expr(r#"first ? 1 : 2"#)
        .unwrap()
        .eval(&p)
        .unwrap_err();
    assert!(err.message.contains("the condition"), "{}", err.message);
}

#[test]
fn unary_minus_negates_integers_only() {
    let p = person();
    assert_eq!(eval("-age", &p), Some(Value::Integer(-36)));
    assert_eq!(eval("-missing", &p), None);
    let err = compile_expr("-first").unwrap().eval(&p).unwrap_err();
    assert!(err.message.contains("integers only"), "{}", err.message);
}

#[test]
fn a_bare_attribute_returns_the_value_unchanged() {
    let p = person();
    assert_eq!(eval("groups", &p), Some(multi(&["admins", "staff"])));
    assert_eq!(eval("photo", &p), Some(Value::Binary(vec![1, 2, 3])));
    assert_eq!(eval("missing", &p), None);
}

#[test]
fn programs_evaluate_against_other_lookups_and_from_many_threads() {
    let program = compile_expr(r#"lower(first) + "@example.com""#).unwrap();
    let pairs = [("first", Value::from("ADA"))];
    assert_eq!(program.eval(&pairs).unwrap(), s("ada@example.com"));
    let map: std::collections::HashMap<String, Value> =
        [("first".to_owned(), Value::from("Bob"))].into();
    assert_eq!(program.eval(&map).unwrap(), s("bob@example.com"));
    // Every attribute operand absent: the whole concatenation is absent.
    assert_eq!(program.eval(&()).unwrap(), None);

    let handles: Vec<_> = (0..4)
        .map(|i| {
            let program = program.clone();
            std::thread::spawn(move || {
                let o = object(&[("first", format!("U{i}").into())]);
                program.eval(&o).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results[3], s("u3@example.com"));
}
