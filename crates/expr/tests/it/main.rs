//! Integration tests of autosync-expr: one test binary, one module per area.
// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bits;
mod dates;
mod dn;
mod functions;
mod fuzz;
mod language;
mod lookups;
mod parsing;
mod patterns;
mod properties;
mod script_functions;
mod scripts;

use autosync_model::{Attributes, Value};

/// An object with the given attributes.
pub fn object(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect()
}

/// A multi-valued attribute of strings.
pub fn multi(items: &[&str]) -> Value {
    Value::Multi(items.iter().map(|s| Value::from(*s)).collect())
}

/// Compile `src` and evaluate it against `attrs`.
pub fn eval(src: &str, attrs: &Attributes) -> Option<Value> {
    let program = autosync_expr::compile_expr(src).unwrap_or_else(|e| panic!("{}", e.render(src)));
    program.eval(attrs).unwrap()
}

/// Evaluate against an object without attributes.
pub fn eval0(src: &str) -> Option<Value> {
    eval(src, &Attributes::new())
}

/// The string result.
pub fn s(v: &str) -> Option<Value> {
    Some(Value::from(v))
}
