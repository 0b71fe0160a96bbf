//! Fuzzing the expression parser and the script compiler (reliability.md:
//! "parsers of untrusted input are fuzzed"; expressions and scripts come
//! from configuration files), bounded so that it runs in CI.
//!
//! Inputs: arbitrary text (any Unicode, control characters, line breaks),
//! valid expressions mutated (text deleted, tokens inserted, truncated), and
//! pathological nesting. Properties: compiling never panics or overflows
//! the stack; a compile error is located (an expression's always, a
//! script's when Rhai knows where) at a byte offset inside the source, and
//! renders with its line and column; a compiled expression evaluates
//! without panicking. (`properties.rs` feeds expression-like text.)
//!
//! Case counts are fixed below and the seed is fixed, so CI runs the same
//! inputs every time; `PROPTEST_CASES=100000 PROPTEST_RNG_SEED=<n>` runs a
//! deeper search. Failing inputs are kept in `proptest-regressions/`.

use super::object;
use autosync_expr::{CompileError, ScriptLimits, compile_expr, compile_script};
use autosync_model::{Attributes, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::RngSeed;

/// `cases` unless `PROPTEST_CASES` says otherwise, a fixed seed unless
/// `PROPTEST_RNG_SEED` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0xE_4B12);
    }
    c
}

fn attrs() -> Attributes {
    object(&[
        ("first", "Ada".into()),
        ("last", "Lovelace".into()),
        ("email", "Ada@Example.COM".into()),
        ("age", Value::Integer(36)),
        ("n", Value::Integer(i64::MIN)),
        ("groups", Value::Multi(vec!["a".into(), Value::Integer(1)])),
        ("photo", Value::Binary(vec![0xFF, 0])),
        ("empty", "".into()),
        ("flag", Value::Boolean(true)),
        ("mail-nickname", "ada".into()),
    ])
}

/// A compile error points inside `src` and renders with line and column.
fn check_error(src: &str, e: &CompileError, always_located: bool) {
    assert!(
        !e.message.is_empty(),
        "an error without message for {src:?}"
    );
    match e.offset {
        Some(offset) => {
            assert!(offset <= src.len(), "offset {offset} beyond {src:?}");
            let rendered = e.render(src);
            assert!(rendered.contains(" at line "), "{rendered}");
        }
        None => assert!(!always_located, "an unlocated error for {src:?}: {e}"),
    }
}

fn check_expr(src: &str) {
    match compile_expr(src) {
        Ok(p) => {
            let a = attrs();
            let _ = p.eval(&a);
            let _ = p.eval_bool(&a);
            let _ = p.eval(&Attributes::new());
        }
        Err(e) => check_error(src, &e, true),
    }
}

fn check_script(src: &str) {
    let limits = ScriptLimits {
        time_budget: std::time::Duration::from_secs(5),
        max_operations: 10_000,
        ..ScriptLimits::default()
    };
    match compile_script(src, &limits) {
        Ok(p) => {
            let _ = p.eval(&attrs());
        }
        Err(e) => check_error(src, &e, false),
    }
}

/// Valid expressions, to be mutated.
const VALID: &[&str] = &[
    "first",
    "lower(email)",
    r#"lower(first + "." + last) + "@contoso.com""#,
    r#"age >= 18 ? "adult" : "minor""#,
    r#"!flag && (first == "Ada" || last != 'x')"#,
    "`mail-nickname` + \"\\n\\t\\\"\"",
    "-age + 1",
    "null",
    "9223372036854775807",
    r#"trim(upper(substring(first, 0, 2))) + join(split(email, "@"), ";")"#,
    r#"(((first)))"#,
];

/// Pieces of the language, and things near it.
const TOKENS: &[&str] = &[
    "(",
    ")",
    ",",
    "+",
    "-",
    "!",
    "?",
    ":",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "\"",
    "'",
    "`",
    "\\",
    "\\u{0}",
    "\n",
    "\r\n",
    "\t",
    " ",
    "null",
    "true",
    "false",
    "first",
    "lower(",
    "upper(",
    "substring(",
    "coalesce(",
    "split(",
    "é",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "😀",
    "9223372036854775808",
    "-9223372036854775808",
    "0x1F",
    "1e3",
    "..",
    ".",
    ";",
    "=",
    "{",
    "}",
    "[",
    "]",
    "$",
    "#",
];

#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: &'static str },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1usize..6).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, select(TOKENS)).prop_map(|(at, token)| Mutation::Insert { at, token }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(src: &mut String, m: &Mutation) {
    match m {
        Mutation::Delete { at, len } => {
            let start = boundary(src, *at);
            let end = boundary(src, (start + len).min(src.len())).max(start);
            src.replace_range(start..end, "");
        }
        Mutation::Insert { at, token } => {
            let at = boundary(src, *at);
            src.insert_str(at, token);
        }
        Mutation::Truncate { at } => {
            let at = boundary(src, *at);
            src.truncate(at);
        }
    }
}

fn mutated() -> impl Strategy<Value = String> {
    (select(VALID), vec(mutation(), 1..5)).prop_map(|(src, ms)| {
        let mut src = src.to_owned();
        for m in &ms {
            mutate(&mut src, m);
        }
        src
    })
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn compiling_arbitrary_text_should_not_panic_and_locate_every_error(
        src in prop_oneof!["(?s).{0,100}", "\\PC{0,100}"],
    ) {
        check_expr(&src);
    }

    #[test]
    fn compiling_a_mutated_valid_expression_should_not_panic_and_locate_every_error(
        src in mutated(),
    ) {
        check_expr(&src);
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn compiling_arbitrary_or_mutated_scripts_should_not_panic(
        src in prop_oneof!["(?s).{0,100}", mutated()],
    ) {
        check_script(&src);
    }
}

/// Nesting far deeper than any real expression: an error (or a value),
/// never a stack overflow.
#[test]
fn pathological_nesting_should_be_an_error_not_a_crash() {
    let n = 100_000;
    let cases = [
        format!("{}first{}", "(".repeat(n), ")".repeat(n)),
        format!("{}first", "!".repeat(n)),
        format!("{}age", "-".repeat(n)),
        format!("{}first", "- ".repeat(n)),
        format!("{}first{}", "lower(".repeat(n), ")".repeat(n)),
        format!("{}1{}", "flag ? ".repeat(n), " : 2".repeat(n)),
        format!("{}last", "first + ".repeat(n)),
        "(".repeat(n),
        "[".repeat(n),
        "\"".repeat(n),
    ];
    for src in &cases {
        check_expr(src);
        check_script(src);
    }
}

#[test]
fn the_expressions_that_are_mutated_should_compile() {
    for src in VALID {
        compile_expr(src).unwrap_or_else(|e| panic!("{}", e.render(src)));
    }
}
