//! Scripts run once with named variables rather than once per object: the
//! controller's hooks. They share the flow scripts' sandbox (same engine
//! set-up, limits and time budget); data goes in and out as JSON values, so
//! callers need no Rhai types.

use crate::error::{CompileError, EvalError};
use crate::script::{DEADLINE, ScriptLimits, byte_offset, engine_for, limit_error, parse_message};
use rhai::{AST, Array, Dynamic, Engine, Map, Scope};
use serde_json::{Number, Value as Json};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// A compiled script that reads named variables (e.g. `ma`, `run`) and
/// returns a value. Cheap to clone; safe to run from many threads.
#[derive(Clone)]
pub struct HookScript {
    engine: Arc<Engine>,
    ast: Arc<AST>,
    limits: ScriptLimits,
}

impl fmt::Debug for HookScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookScript")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Compile a Rhai script that may read `variables` (and nothing else: other
/// names are compile errors, as in flow scripts), sandboxed by `limits`.
pub fn compile_hook(
    src: &str,
    variables: &[&str],
    limits: &ScriptLimits,
) -> Result<HookScript, CompileError> {
    let engine = engine_for(limits);
    // Variables, not constants, while compiling: the optimiser would
    // otherwise fold them against these placeholders.
    let mut scope = Scope::new();
    for name in variables {
        scope.push_dynamic(*name, Dynamic::UNIT);
    }
    let ast = engine.compile_with_scope(&scope, src).map_err(|e| {
        let (message, help) = parse_message(&e.0.to_string());
        let help = if message.contains("ndefined variable") {
            Some(format!(
                "this script can read: {}",
                variables
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else {
            help
        };
        CompileError {
            message,
            offset: byte_offset(src, e.1),
            help,
        }
    })?;
    Ok(HookScript {
        engine,
        ast: Arc::new(ast),
        limits: limits.clone(),
    })
}

impl HookScript {
    /// Run the script with these variables (read-only in the script) and
    /// return the value of its last expression (`()` is `null`). Errors name
    /// the limit hit or the script's error and its position; a result that
    /// JSON cannot hold (a function pointer, a blob, NaN) is an error too.
    pub fn run(&self, variables: &[(&str, Json)]) -> Result<Json, EvalError> {
        let mut scope = Scope::new();
        for (name, value) in variables {
            scope.push_constant_dynamic(*name, json_to_dynamic(value));
        }
        let previous =
            DEADLINE.with(|d| d.replace(Instant::now().checked_add(self.limits.time_budget)));
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast);
        DEADLINE.with(|d| d.set(previous));
        match result {
            Ok(value) => dynamic_to_json(value, "the script's result"),
            Err(e) => Err(limit_error(*e, &self.limits)),
        }
    }
}

pub(crate) fn json_to_dynamic(value: &Json) -> Dynamic {
    match value {
        Json::Null => Dynamic::UNIT,
        Json::Bool(b) => Dynamic::from_bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::MAX)),
        },
        Json::String(s) => Dynamic::from(s.clone()),
        Json::Array(items) => {
            Dynamic::from_array(items.iter().map(json_to_dynamic).collect::<Array>())
        }
        Json::Object(entries) => Dynamic::from_map(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect::<Map>(),
        ),
    }
}

pub(crate) fn dynamic_to_json(value: Dynamic, what: &str) -> Result<Json, EvalError> {
    let value = value.flatten();
    let type_name = value.type_name();
    if value.is_unit() {
        return Ok(Json::Null);
    }
    let converted = if value.is_string() {
        value
            .into_immutable_string()
            .ok()
            .map(|s| Json::String(s.to_string()))
    } else if value.is_int() {
        value.as_int().ok().map(|i| Json::Number(i.into()))
    } else if value.is_bool() {
        value.as_bool().ok().map(Json::Bool)
    } else if value.is_char() {
        value.as_char().ok().map(|c| Json::String(c.to_string()))
    } else if value.is_float() {
        value
            .as_float()
            .ok()
            .and_then(Number::from_f64)
            .map(Json::Number)
    } else if value.is_array() {
        let items = value.into_array().unwrap_or_default();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(dynamic_to_json(item, "an element of the script's result")?);
        }
        Some(Json::Array(out))
    } else if value.is_map() {
        let entries = value.cast::<Map>();
        let mut out = serde_json::Map::new();
        for (key, item) in entries {
            let item = dynamic_to_json(item, "a value in the script's result")?;
            out.insert(key.to_string(), item);
        }
        Some(Json::Object(out))
    } else {
        None
    };
    converted.ok_or_else(|| {
        EvalError::from_script(format!(
            "{what} is a {type_name}, which the script cannot return (use a string, integer, boolean, array, map or nothing)"
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn a_hook_reads_its_variables_and_returns_a_map() {
        let hook = compile_hook(
            r#"if run.steps[0].counters.deletes > 10 { #{ action: "stop-ma", n: run.steps[0].counters.deletes } }"#,
            &["run"],
            &ScriptLimits::default(),
        )
        .unwrap();
        let run = json!({"steps": [{"counters": {"deletes": 11}}]});
        assert_eq!(
            hook.run(&[("run", run)]).unwrap(),
            json!({"action": "stop-ma", "n": 11})
        );
        let run = json!({"steps": [{"counters": {"deletes": 3}}]});
        assert_eq!(hook.run(&[("run", run)]).unwrap(), Json::Null);
    }

    #[test]
    fn an_unknown_variable_is_a_compile_error_listing_the_known_ones() {
        let err = compile_hook(
            "profil == \"x\"",
            &["ma", "profile"],
            &ScriptLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.offset, Some(0));
        assert_eq!(
            err.help.as_deref(),
            Some("this script can read: `ma`, `profile`")
        );
    }

    #[test]
    fn a_runaway_hook_is_stopped_by_its_time_budget() {
        let limits = ScriptLimits {
            time_budget: Duration::from_millis(50),
            ..ScriptLimits::default()
        };
        let hook = compile_hook("loop {}", &[], &limits).unwrap();
        let err = hook.run(&[]).unwrap_err();
        assert_eq!(err.message, "script exceeded its time budget of 50 ms");
    }

    #[test]
    fn a_result_json_cannot_hold_is_explained() {
        let hook = compile_hook("blob(2)", &[], &ScriptLimits::default()).unwrap();
        let err = hook.run(&[]).unwrap_err();
        assert!(err.message.contains("cannot return"), "{}", err.message);
    }
}
