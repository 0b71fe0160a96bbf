//! Rhai scripts: results, attribute access, limits and the sandbox, and the
//! single entry point for every kind of flow source.

use super::{multi, object, s};
use autosync_expr::{ScriptLimits, compile_script, compile_source};
use autosync_model::{Attributes, FlowSource, Value};
use std::time::Duration;

fn person() -> Attributes {
    object(&[
        ("first", "Ada".into()),
        ("last", "Lovelace".into()),
        ("age", Value::Integer(36)),
        ("groups", multi(&["admins", "staff"])),
        ("photo", Value::Binary(vec![1, 2])),
        ("mail-nickname", "ada".into()),
    ])
}

fn run(src: &str) -> Option<Value> {
    compile_script(src, &ScriptLimits::default())
        .unwrap_or_else(|e| panic!("{}", e.render(src)))
        .eval(&person())
        .unwrap()
}

#[test]
fn the_last_expression_is_the_result_and_unit_is_absent() {
    assert_eq!(run("let x = 40; x + 2"), Some(Value::Integer(42)));
    assert_eq!(run(r#""a" + "b""#), s("ab"));
    assert_eq!(run("true"), Some(Value::Boolean(true)));
    assert_eq!(run("let x = 1;"), None);
    assert_eq!(run("()"), None);
    assert_eq!(run(r#"["a", "b"]"#), Some(multi(&["a", "b"])));
    assert_eq!(run("'c'"), s("c"));
}

#[test]
fn attributes_are_read_with_attr_or_the_attrs_map() {
    assert_eq!(
        run(r#"attr("first") + " " + attr("last")"#),
        s("Ada Lovelace")
    );
    assert_eq!(run(r#"attr("missing")"#), None);
    assert_eq!(
        run(r#"if attr("missing") == () { "none" } else { "some" }"#),
        s("none")
    );
    assert_eq!(run("attrs.first.to_upper()"), s("ADA"));
    assert_eq!(run(r#"attrs["mail-nickname"]"#), s("ada"));
    assert_eq!(run("attrs.age + 1"), Some(Value::Integer(37)));
    assert_eq!(run("attrs.groups.len()"), Some(Value::Integer(2)));
    assert_eq!(run("attrs.photo"), Some(Value::Binary(vec![1, 2])));
    assert_eq!(
        run(r#"attrs.groups.contains("staff")"#),
        Some(Value::Boolean(true))
    );
}

#[test]
fn computed_attribute_names_see_every_attribute() {
    assert_eq!(run(r#"let n = "la" + "st"; attr(n)"#), s("Lovelace"));
    assert_eq!(run("attrs.keys().len()"), Some(Value::Integer(6)));
}

#[test]
fn scripts_list_the_attributes_they_read_literally() {
    let p = compile_script(
        r#"let a = attr("first"); a + attrs.last + attrs["mail-nickname"]"#,
        &ScriptLimits::default(),
    )
    .unwrap();
    assert_eq!(p.attributes(), ["first", "last", "mail-nickname"]);
    assert!(!p.reads_any_attribute());
    let p = compile_script(r#"let n = "mail"; attr(n)"#, &ScriptLimits::default()).unwrap();
    assert!(p.reads_any_attribute());
    assert!(p.is_script());
    assert_eq!(p.as_attribute(), None);
}

#[test]
fn script_functions_work_and_deep_recursion_hits_the_call_limit() {
    assert_eq!(
        run(
            "fn initial(s) { s.sub_string(0, 1) } initial(attr(\"first\")) + initial(attr(\"last\"))"
        ),
        s("AL")
    );
    let p = compile_script("fn f(n) { f(n + 1) } f(0)", &ScriptLimits::default()).unwrap();
    let err = p.eval(&person()).unwrap_err();
    assert!(
        err.message.contains("call depth limit of 32"),
        "{}",
        err.message
    );
}

#[test]
fn an_endless_loop_stops_at_the_time_budget_with_a_clear_error() {
    // No operation limit: on a fast machine the default one (50 million)
    // can come first, and this test is about the time budget.
    let timed = ScriptLimits {
        max_operations: 0,
        ..ScriptLimits::default()
    };
    let p = compile_script("loop {}", &timed).unwrap();
    let err = p.eval(&person()).unwrap_err();
    assert_eq!(err.message, "script exceeded its time budget of 100 ms");
    assert!(err.script);

    let short = ScriptLimits {
        time_budget: Duration::from_millis(5),
        ..timed
    };
    let p = compile_script("fn spin() { loop {} } spin()", &short).unwrap();
    let err = p.eval(&person()).unwrap_err();
    assert_eq!(err.message, "script exceeded its time budget of 5 ms");
}

#[test]
fn the_operation_limit_stops_long_scripts() {
    let limits = ScriptLimits {
        max_operations: 1_000,
        ..ScriptLimits::default()
    };
    let p = compile_script("let x = 0; for i in 0..100000 { x += i; } x", &limits).unwrap();
    let err = p.eval(&person()).unwrap_err();
    assert!(
        err.message
            .starts_with("script exceeded its operation limit of 1000 operations"),
        "{}",
        err.message
    );
    // Within the limit, the same kind of script succeeds.
    let p = compile_script("let x = 0; for i in 0..10 { x += i; } x", &limits).unwrap();
    assert_eq!(p.eval(&person()).unwrap(), Some(Value::Integer(45)));
}

#[test]
fn strings_longer_than_the_limit_are_refused() {
    let limits = ScriptLimits {
        max_string_size: 100,
        ..ScriptLimits::default()
    };
    let p = compile_script(r#"let s = ""; for i in 0..1000 { s += "x"; } s"#, &limits).unwrap();
    let err = p.eval(&person()).unwrap_err();
    assert!(err.message.contains("script failed"), "{}", err.message);
    assert!(
        err.message.to_lowercase().contains("length of string"),
        "{}",
        err.message
    );
}

#[test]
fn eval_and_import_are_not_available() {
    let err = compile_script(r#"eval("40 + 2")"#, &ScriptLimits::default()).unwrap_err();
    assert!(err.message.contains("eval"), "{}", err.message);
    assert_eq!(
        err.help.as_deref(),
        Some("`eval` is disabled in autosync scripts")
    );

    let err = compile_script(r#"import "std" as s; 1"#, &ScriptLimits::default()).unwrap_err();
    assert!(err.message.contains("import"), "{}", err.message);
}

#[test]
fn unknown_variables_are_compile_errors_with_an_offset() {
    let err = compile_script("let a = 1;\nfirst + a", &ScriptLimits::default()).unwrap_err();
    assert_eq!(err.offset, Some(11));
    assert!(err.message.contains("first"), "{}", err.message);
    assert_eq!(
        err.help.as_deref(),
        Some("read attributes with attr(\"name\") or attrs.name")
    );
}

#[test]
fn runtime_errors_and_unsupported_results_are_evaluation_errors() {
    let p = compile_script(r#"throw "no manager""#, &ScriptLimits::default()).unwrap();
    let err = p.eval(&person()).unwrap_err();
    assert!(err.message.contains("no manager"), "{}", err.message);

    let p = compile_script("#{ a: 1 }", &ScriptLimits::default()).unwrap();
    let err = p.eval(&person()).unwrap_err();
    assert!(
        err.message.contains("no attribute can hold"),
        "{}",
        err.message
    );
}

#[test]
fn eval_bool_on_a_script_accepts_booleans_only() {
    let limits = ScriptLimits::default();
    assert!(
        compile_script(r#"attr("age") > 18"#, &limits)
            .unwrap()
            .eval_bool(&person())
            .unwrap()
    );
    assert!(
        !compile_script("()", &limits)
            .unwrap()
            .eval_bool(&person())
            .unwrap()
    );
    let err = compile_script("42", &limits)
        .unwrap()
        .eval_bool(&person())
        .unwrap_err();
    assert!(
        err.message.contains("must be true or false"),
        "{}",
        err.message
    );
}

#[test]
fn a_script_is_evaluated_many_times_from_many_threads() {
    let p = compile_script(r#"attr("n") * 2"#, &ScriptLimits::default()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for k in 0..50 {
                    let input = object(&[("n", Value::Integer(i * 100 + k))]);
                    results.push(p.eval(&input).unwrap());
                }
                results
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results[2].len(), 50);
    assert_eq!(results[2][0], Some(Value::Integer(2 * 200)));
    assert_eq!(results[2][49], Some(Value::Integer(2 * 249)));
}

#[test]
fn compile_source_covers_every_kind_of_flow_source() {
    let limits = ScriptLimits::default();
    let p = compile_source(&FlowSource::Attribute("mail-nickname"), &limits).unwrap();
    assert_eq!(p.as_attribute(), Some("mail-nickname"));
    assert_eq!(p.attributes(), ["mail-nickname"]);
    assert_eq!(p.eval(&person()).unwrap(), s("ada"));

    let value = Value::from("Contoso");
    let p = compile_source(&FlowSource::Constant(&value), &limits).unwrap();
    assert_eq!(p.as_constant(), Some(&value));
    assert_eq!(p.eval(&person()).unwrap(), s("Contoso"));

    let p = compile_source(&FlowSource::Expression("upper(first)"), &limits).unwrap();
    assert_eq!(p.eval(&person()).unwrap(), s("ADA"));

    let p = compile_source(&FlowSource::Script(r#"attr("last")"#), &limits).unwrap();
    assert_eq!(p.eval(&person()).unwrap(), s("Lovelace"));

    let err = compile_source(&FlowSource::Expression("lowr(x)"), &limits).unwrap_err();
    assert_eq!(err.help.as_deref(), Some("did you mean `lower`?"));
}

#[test]
fn the_readme_script_examples_work() {
    let o = object(&[("display_name", "Augusta Ada King".into())]);
    let limits = ScriptLimits::default();
    let p = compile_script(r#"attr("manager") ?? "none""#, &limits).unwrap();
    assert_eq!(p.eval(&o).unwrap(), s("none"));
    let p = compile_script(
        r#"let parts = attr("display_name").split(" ");
if parts.len() > 1 { parts[parts.len() - 1] } else { () }"#,
        &limits,
    )
    .unwrap();
    assert_eq!(p.eval(&o).unwrap(), s("King"));
    let single = object(&[("display_name", "Ada".into())]);
    assert_eq!(p.eval(&single).unwrap(), None);
}
