//! Rules scripts that decide more than a value: the engine's equivalent of
//! the rules-extension methods that take several arguments and return a
//! decision (MIM's `ResolveJoinSearch`, `Provision`, `Deprovision`,
//! `ShouldDeleteFromMV`). Like flow scripts they read an object's attributes
//! (`attrs`, `attr("x")`) and may make metaverse lookups; they also read
//! named variables given per call ([`Arg`]), and return any value a script
//! can build, as JSON (maps included, which no attribute can hold).

use crate::error::{CompileError, EvalError};
use crate::hook::dynamic_to_json;
use crate::lookups::{Context, attrs_map};
use crate::program::Lookup;
use crate::script::{ScriptLimits, ScriptProgram, compile_with};
use rhai::{Array, Dynamic, Map};
use serde_json::Value as Json;
use std::fmt;
use std::sync::Arc;

/// A value given to a rules script.
pub enum Arg<'a> {
    /// A plain value (numbers, strings, booleans, arrays, maps).
    Json(Json),
    /// Every attribute of an object, as a map of attribute values.
    Attrs(&'a dyn Lookup),
    List(Vec<Arg<'a>>),
    Map(Vec<(&'a str, Arg<'a>)>),
}

impl Arg<'_> {
    fn to_dynamic(&self) -> Dynamic {
        match self {
            Arg::Json(j) => crate::hook::json_to_dynamic(j),
            Arg::Attrs(view) => Dynamic::from_map(attrs_map(*view)),
            Arg::List(items) => {
                Dynamic::from_array(items.iter().map(Arg::to_dynamic).collect::<Array>())
            }
            Arg::Map(entries) => Dynamic::from_map(
                entries
                    .iter()
                    .map(|(k, v)| ((*k).into(), v.to_dynamic()))
                    .collect::<Map>(),
            ),
        }
    }
}

/// A compiled rules script. Cheap to clone; safe to run from many threads.
#[derive(Clone)]
pub struct RuleScript {
    script: Arc<ScriptProgram>,
    source: Arc<str>,
}

impl fmt::Debug for RuleScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleScript")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Compile a rules script that reads `attrs`, `mv` and `variables` (other
/// names are compile errors), sandboxed by `limits`.
pub fn compile_rule_script(
    src: &str,
    variables: &[&str],
    limits: &ScriptLimits,
) -> Result<RuleScript, CompileError> {
    Ok(RuleScript {
        script: Arc::new(compile_with(src, variables, limits)?),
        source: src.into(),
    })
}

impl RuleScript {
    /// Run over `attrs` (the object the script is about) with `variables`;
    /// lookups are answered by `ctx`. Returns the value of the last
    /// expression (`()` is `null`).
    pub fn run(
        &self,
        attrs: &dyn Lookup,
        variables: &[(&str, Arg<'_>)],
        ctx: &mut Context<'_>,
    ) -> Result<Json, EvalError> {
        let variables: Vec<(&str, Dynamic)> = variables
            .iter()
            .map(|(name, arg)| (*name, arg.to_dynamic()))
            .collect();
        let value = self.script.run(attrs, &variables, ctx)?;
        dynamic_to_json(value, "the script's result").map_err(|e| EvalError::from_script(e.message))
    }

    /// The attribute names the script reads literally from `attrs`.
    pub fn attributes(&self) -> &[String] {
        self.script.attributes()
    }

    /// Whether the script may read attributes not in
    /// [`attributes`](Self::attributes).
    pub fn reads_any_attribute(&self) -> bool {
        self.script.reads_any_attribute()
    }

    /// The (metaverse type, attribute) pairs its `mv_find` calls search.
    pub fn mv_finds(&self) -> &[(String, String)] {
        self.script.finds()
    }

    /// Whether the script reads `mv`.
    pub fn reads_mv(&self) -> bool {
        self.script.reads_mv()
    }

    /// Whether the script makes metaverse lookups.
    pub fn makes_lookups(&self) -> bool {
        self.script.makes_lookups()
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }
}
