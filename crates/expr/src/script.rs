//! Sandboxed Rhai scripts: the engine's equivalent of MIM's rules
//! extensions. A script is compiled once to an AST and evaluated per object;
//! it reads attributes through `attr("name")` (the value or `()`) or the
//! constant map `attrs`, and the value of its last expression is the result
//! (`()` = absent).
//!
//! The sandbox: no `eval`, no `import` (no module resolver, so no file
//! access), strict variables, and limits on operations, call depth,
//! expression depth and string/array/map sizes, plus a wall-clock time
//! budget checked from Rhai's progress callback.

use crate::error::{CompileError, EvalError};
use crate::lookups::{ANSWERS, Answers, Context, MAX_LOOKUPS, answer, attrs_map};
use crate::program::Lookup;
use crate::script_scan::{Reads, scan};
use autosync_model::Value;
use rhai::module_resolvers::DummyModuleResolver;
use rhai::{AST, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position, Scope};
use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The limits a script runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Wall-clock time one evaluation may take.
    pub time_budget: Duration,
    /// Rhai operations one evaluation may perform (0 = unlimited).
    pub max_operations: u64,
    /// How deeply script functions may call each other.
    pub max_call_levels: usize,
    /// How deeply expressions may nest.
    pub max_expr_depth: usize,
    /// Longest string, in bytes.
    pub max_string_size: usize,
    /// Most elements in one array.
    pub max_array_size: usize,
    /// Most entries in one map.
    pub max_map_size: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            time_budget: Duration::from_millis(100),
            max_operations: 50_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
        }
    }
}

/// How often (in operations) the time budget is checked.
const CLOCK_EVERY: u64 = 64;

thread_local! {
    /// When the evaluation running on this thread must stop.
    pub(crate) static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The attributes of the evaluation running on this thread (a shared
    /// map, also bound to `attrs`), for `attr("name")`.
    static CURRENT: RefCell<Option<Dynamic>> = const { RefCell::new(None) };
}

/// A compiled script.
pub(crate) struct ScriptProgram {
    engine: Arc<Engine>,
    ast: AST,
    limits: ScriptLimits,
    reads: Reads,
}

/// Engines built so far, one per distinct set of limits.
type EngineCache = Mutex<Vec<(ScriptLimits, Arc<Engine>)>>;

/// Engines are shared between scripts that have the same limits.
pub(crate) fn engine_for(limits: &ScriptLimits) -> Arc<Engine> {
    static ENGINES: OnceLock<EngineCache> = OnceLock::new();
    let engines = ENGINES.get_or_init(|| Mutex::new(Vec::new()));
    let mut engines = engines.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, engine)) = engines.iter().find(|(l, _)| l == limits) {
        return engine.clone();
    }
    let engine = Arc::new(build_engine(limits));
    engines.push((limits.clone(), engine.clone()));
    engine
}

fn build_engine(limits: &ScriptLimits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_module_resolver(DummyModuleResolver::new())
        .disable_symbol("eval")
        .disable_symbol("import")
        .set_strict_variables(true)
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size);
    engine.on_print(|text| tracing::info!(target: "autosync_expr::script", "{text}"));
    engine.on_debug(|text, _source, pos| {
        tracing::debug!(target: "autosync_expr::script", %pos, "{text}");
    });
    engine.on_progress(|ops| {
        if ops % CLOCK_EVERY != 0 {
            return None;
        }
        let deadline = DEADLINE.with(Cell::get)?;
        (Instant::now() >= deadline).then(|| Dynamic::from("time budget"))
    });
    crate::shared::register(&mut engine);
    crate::lookups::register(&mut engine);
    register_reference(&mut engine);
    engine.register_fn("attr", |name: ImmutableString| -> Dynamic {
        CURRENT.with(|current| {
            current
                .borrow()
                .as_ref()
                .and_then(|attrs| attrs.read_lock::<Map>()?.get(name.as_str()).cloned())
                .unwrap_or(Dynamic::UNIT)
        })
    });
    engine
}

pub(crate) fn compile_rhai(
    src: &str,
    limits: &ScriptLimits,
) -> Result<ScriptProgram, CompileError> {
    compile_with(src, &[], limits)
}

/// Compile a script that reads `attrs`, `mv` and `variables` (other names
/// are compile errors).
pub(crate) fn compile_with(
    src: &str,
    variables: &[&str],
    limits: &ScriptLimits,
) -> Result<ScriptProgram, CompileError> {
    let engine = engine_for(limits);
    // Variables, not constants, while compiling: the optimiser would
    // otherwise fold `attrs["x"]` against this empty map.
    let mut scope = Scope::new();
    scope.push_dynamic("attrs", Dynamic::from_map(Map::new()));
    scope.push_dynamic("mv", Dynamic::from_map(Map::new()));
    for name in variables {
        scope.push_dynamic(*name, Dynamic::UNIT);
    }
    let ast = engine.compile_with_scope(&scope, src).map_err(|e| {
        let (message, help) = parse_message(&e.0.to_string());
        let help = match help {
            Some(h) if !variables.is_empty() && message.contains("ndefined variable") => {
                Some(format!(
                    "{h}; this script can also read: {}",
                    variables
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            other => other,
        };
        CompileError {
            message,
            offset: byte_offset(src, e.1),
            help,
        }
    })?;
    let reads = scan(src);
    if let Some(at) = reads.computed_find {
        return Err(CompileError::at(
            at,
            "mv_find must name its metaverse type and attribute as literal strings",
        )
        .with_help(
            "write e.g. mv_find(\"person\", \"accountName\", name): autosync indexes what lookups search before the sync",
        ));
    }
    Ok(ScriptProgram {
        engine,
        ast,
        limits: limits.clone(),
        reads,
    })
}
pub(crate) fn parse_message(message: &str) -> (String, Option<String>) {
    let lower = message.to_lowercase();
    let help = if lower.contains("eval") {
        Some("`eval` is disabled in autosync scripts".to_owned())
    } else if lower.contains("import") {
        Some("scripts cannot import modules or read files".to_owned())
    } else if lower.contains("undefined variable") {
        Some("read attributes with attr(\"name\") or attrs.name".to_owned())
    } else {
        None
    };
    (format!("script error: {message}"), help)
}

/// The byte offset of a Rhai position (1-based line and character).
pub(crate) fn byte_offset(src: &str, pos: Position) -> Option<usize> {
    let line = pos.line()?;
    let line_start = if line <= 1 {
        0
    } else {
        src.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let column = pos.position().unwrap_or(1).saturating_sub(1);
    let rest = &src[line_start..];
    Some(
        line_start
            + rest
                .char_indices()
                .nth(column)
                .map_or(rest.len(), |(i, _)| i),
    )
}

impl ScriptProgram {
    /// The attribute names the script reads literally.
    pub(crate) fn attributes(&self) -> &[String] {
        &self.reads.names
    }

    pub(crate) fn reads_any_attribute(&self) -> bool {
        self.reads.all
    }

    /// Whether the script reads `mv`.
    pub(crate) fn reads_mv(&self) -> bool {
        self.reads.mv
    }

    /// Whether the script makes metaverse lookups.
    pub(crate) fn makes_lookups(&self) -> bool {
        self.reads.lookups
    }

    /// The (metaverse type, attribute) pairs `mv_find` searches.
    pub(crate) fn finds(&self) -> &[(String, String)] {
        &self.reads.finds
    }

    pub(crate) fn eval(
        &self,
        input: &dyn Lookup,
        ctx: &mut Context<'_>,
    ) -> Result<Option<Value>, EvalError> {
        let value = self.run(input, &[], ctx)?;
        from_dynamic(value, "the script's result").map_err(|e| EvalError::from_script(e.message))
    }

    /// Run the script over `input` (`attrs`) with these other variables;
    /// lookups are answered by `ctx` (see `lookups`: by replay).
    pub(crate) fn run(
        &self,
        input: &dyn Lookup,
        variables: &[(&str, Dynamic)],
        ctx: &mut Context<'_>,
    ) -> Result<Dynamic, EvalError> {
        let mut map = Map::new();
        if self.reads.all {
            input.for_each_attr(&mut |name, value| {
                map.insert(name.into(), to_dynamic(value));
            });
        }
        for name in &self.reads.names {
            if let Some(value) = input.get(name) {
                map.insert(name.as_str().into(), to_dynamic(value));
            }
        }
        let attrs = Dynamic::from_map(map).into_shared();
        let mv = match ctx.mv {
            Some(view) if self.reads.mv => Dynamic::from_map(attrs_map(view)),
            _ => Dynamic::from_map(Map::new()),
        };
        let mut known = Vec::new();
        let mut spent = Duration::ZERO;
        loop {
            let Some(left) = self.limits.time_budget.checked_sub(spent) else {
                return Err(limit_error(
                    EvalAltResult::ErrorTerminated(Dynamic::UNIT, Position::NONE),
                    &self.limits,
                ));
            };
            let mut scope = Scope::new();
            scope.push_constant_dynamic("attrs", attrs.clone());
            scope.push_constant_dynamic("mv", mv.clone());
            for (name, value) in variables {
                scope.push_constant_dynamic(*name, value.clone());
            }
            let previous_answers = self.reads.lookups.then(|| {
                let answers = Answers {
                    enabled: ctx.metaverse.is_some(),
                    known: std::mem::take(&mut known),
                    asked: None,
                };
                ANSWERS.with(|a| a.replace(Some(answers)))
            });
            let previous_attrs = CURRENT.with(|c| c.replace(Some(attrs.clone())));
            let started = Instant::now();
            let previous_deadline = DEADLINE.with(|d| d.replace(started.checked_add(left)));
            let result = self
                .engine
                .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast);
            spent += started.elapsed();
            DEADLINE.with(|d| d.set(previous_deadline));
            CURRENT.with(|c| c.replace(previous_attrs));
            let asked = match previous_answers {
                Some(previous) => {
                    let answers = ANSWERS.with(|a| a.replace(previous)).unwrap_or_default();
                    known = answers.known;
                    answers.asked
                }
                None => None,
            };
            // A question without an answer: answer it and run again, even
            // when the script caught the stop (`try { } catch { }`).
            if let (Some(question), Some(metaverse)) = (asked, ctx.metaverse.as_deref_mut()) {
                if known.len() >= MAX_LOOKUPS {
                    return Err(EvalError::from_script(format!(
                        "script made more than {MAX_LOOKUPS} metaverse lookups"
                    )));
                }
                let answer = answer(metaverse, &question)?;
                known.push((question, answer));
                continue;
            }
            return result.map_err(|e| limit_error(*e, &self.limits));
        }
    }
}

/// A failed evaluation as an [`EvalError`], naming the limit it hit.
pub(crate) fn limit_error(e: EvalAltResult, limits: &ScriptLimits) -> EvalError {
    // A limit hit inside a script function arrives wrapped.
    let mut root = &e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
    | EvalAltResult::ErrorInModule(_, inner, _) = root
    {
        root = inner;
    }
    let message = match root {
        EvalAltResult::ErrorTerminated(..) => format!(
            "script exceeded its time budget of {} ms",
            limits.time_budget.as_millis()
        ),
        EvalAltResult::ErrorTooManyOperations(pos) => format!(
            "script exceeded its operation limit of {} operations ({pos})",
            limits.max_operations
        ),
        EvalAltResult::ErrorStackOverflow(pos) => format!(
            "script exceeded its call depth limit of {} ({pos})",
            limits.max_call_levels
        ),
        _ => format!("script failed: {e}"),
    };
    EvalError::from_script(message)
}

/// A reference to a metaverse object as a script sees it (type
/// `reference`): `.id` is the object's id, `mv_connectors` takes it, and
/// it compares equal to another reference to the same object or to that
/// id. It stays a reference: a flow that returns one into an attribute
/// that is not a reference fails (never the id as text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MvRef(pub i64);

/// Register the `reference` type and what works on it.
fn register_reference(engine: &mut Engine) {
    engine
        .register_type_with_name::<MvRef>("reference")
        .register_get("id", |r: &mut MvRef| r.0)
        .register_fn("to_string", |r: &mut MvRef| {
            format!("reference to metaverse object {}", r.0)
        })
        .register_fn("to_debug", |r: &mut MvRef| {
            format!("reference to metaverse object {}", r.0)
        })
        .register_fn("==", |a: MvRef, b: MvRef| a == b)
        .register_fn("!=", |a: MvRef, b: MvRef| a != b)
        .register_fn("==", |a: MvRef, b: rhai::INT| a.0 == b)
        .register_fn("!=", |a: MvRef, b: rhai::INT| a.0 != b)
        .register_fn("==", |a: rhai::INT, b: MvRef| a == b.0)
        .register_fn("!=", |a: rhai::INT, b: MvRef| a != b.0);
}

/// An attribute value as a Rhai value.
pub(crate) fn to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Integer(i) => Dynamic::from_int(*i),
        Value::Boolean(b) => Dynamic::from_bool(*b),
        Value::Binary(b) => Dynamic::from_blob(b.clone()),
        // A script sees a reference as its own type: `.id` gives the
        // metaverse object's id, `mv_connectors` takes it.
        Value::Reference(id) => Dynamic::from(MvRef(*id)),
        Value::Multi(vs) => Dynamic::from_array(vs.iter().map(to_dynamic).collect()),
    }
}

/// A Rhai value as an attribute value; `()` is absent.
pub(crate) fn from_dynamic(value: Dynamic, what: &str) -> Result<Option<Value>, EvalError> {
    let value = value.flatten();
    let type_name = value.type_name();
    if value.is_unit() {
        return Ok(None);
    }
    let converted = if value.is_string() {
        value
            .into_immutable_string()
            .ok()
            .map(|s| Value::String(s.to_string()))
    } else if value.is_int() {
        value.as_int().ok().map(Value::Integer)
    } else if value.is_bool() {
        value.as_bool().ok().map(Value::Boolean)
    } else if value.is_char() {
        value.as_char().ok().map(|c| Value::String(c.to_string()))
    } else if value.is_float() {
        value.as_float().ok().map(|f| Value::String(f.to_string()))
    } else if value.is_blob() {
        value.into_blob().ok().map(Value::Binary)
    } else if value.is::<MvRef>() {
        value.try_cast::<MvRef>().map(|r| Value::Reference(r.0))
    } else if value.is_array() {
        let items = value.into_array().unwrap_or_default();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match from_dynamic(item, "an element of the script's result")? {
                Some(Value::Multi(_)) => {
                    return Err(EvalError::new(format!(
                        "{what} holds a list inside a list, which no attribute can hold"
                    )));
                }
                Some(v) => out.push(v),
                None => {}
            }
        }
        Some(Value::Multi(out))
    } else {
        None
    };
    converted.map(Some).ok_or_else(|| {
        EvalError::new(format!(
            "{what} is a {type_name}, which no attribute can hold (use a string, integer, boolean, blob or array)"
        ))
    })
}
