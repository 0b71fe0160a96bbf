//! [`Program`]: a compiled expression, attribute copy, constant or script,
//! evaluated the same way against any [`Lookup`] of attributes.

use crate::ast::Node;
use crate::error::{CompileError, EvalError};
use crate::eval::truth;
use crate::lookups::Context;
use crate::parser::parse;
use crate::script::{ScriptLimits, ScriptProgram, compile_rhai};
use autosync_model::{Attributes, FlowSource, Value};
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

/// Where a program reads attributes from: a CS object's hologram, an MV
/// object, a staged import, ...
pub trait Lookup {
    /// The value of `attr`, or `None` when the object does not have it.
    fn get(&self, attr: &str) -> Option<&Value>;

    /// Visit every attribute. Scripts that read attributes by a computed
    /// name (`attr(n)`) or use the `attrs` map as a whole see only what this
    /// visits; the default visits nothing, so implement it for any type that
    /// scripts evaluate against. Expressions never call it.
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        let _ = visit;
    }
}

impl Lookup for Attributes {
    fn get(&self, attr: &str) -> Option<&Value> {
        Attributes::get(self, attr)
    }
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        for (name, value) in self {
            visit(name, value);
        }
    }
}

impl<S: BuildHasher> Lookup for HashMap<String, Value, S> {
    fn get(&self, attr: &str) -> Option<&Value> {
        HashMap::get(self, attr)
    }
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        for (name, value) in self {
            visit(name, value);
        }
    }
}

/// No attributes at all.
impl Lookup for () {
    fn get(&self, _attr: &str) -> Option<&Value> {
        None
    }
}

/// A small fixed list of name/value pairs (handy in tests and examples).
impl<const N: usize> Lookup for [(&str, Value); N] {
    fn get(&self, attr: &str) -> Option<&Value> {
        self.iter().find(|(n, _)| *n == attr).map(|(_, v)| v)
    }
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        for (name, value) in self {
            visit(name, value);
        }
    }
}

/// A list of name/value pairs.
impl Lookup for Vec<(&str, Value)> {
    fn get(&self, attr: &str) -> Option<&Value> {
        self.iter().find(|(n, _)| *n == attr).map(|(_, v)| v)
    }
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        for (name, value) in self {
            visit(name, value);
        }
    }
}

/// A compiled expression or script. Cheap to clone (shared inside), and
/// safe to evaluate from many threads at once.
#[derive(Clone)]
pub struct Program {
    inner: Arc<Inner>,
}

// Programs are shared by the engine's worker threads.
const _: fn() = || {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Program>();
};

struct Inner {
    source: String,
    body: Body,
    attributes: Vec<String>,
}

enum Body {
    Expr(Node),
    Script(ScriptProgram),
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner.body {
            Body::Expr(_) => "expression",
            Body::Script(_) => "script",
        };
        f.debug_struct("Program")
            .field("kind", &kind)
            .field("source", &self.inner.source)
            .finish()
    }
}

/// Compile an expression of the expression language (see docs/src/reference/expressions.md).
pub fn compile_expr(src: &str) -> Result<Program, CompileError> {
    let parsed = parse(src)?;
    Ok(Program::new(
        src.to_owned(),
        Body::Expr(parsed.node),
        parsed.attributes,
    ))
}

/// Compile a Rhai script, sandboxed by `limits`.
pub fn compile_script(src: &str, limits: &ScriptLimits) -> Result<Program, CompileError> {
    let script = compile_rhai(src, limits)?;
    let attributes = script.attributes().to_vec();
    Ok(Program::new(
        src.to_owned(),
        Body::Script(script),
        attributes,
    ))
}

/// Compile whichever source a flow names: an attribute copy, a constant, an
/// expression or a script.
pub fn compile_source(
    def: &FlowSource<'_>,
    limits: &ScriptLimits,
) -> Result<Program, CompileError> {
    match def {
        FlowSource::Attribute(name) => Ok(Program::attribute(name)),
        FlowSource::Constant(value) => Ok(Program::constant((*value).clone())),
        FlowSource::Expression(src) => compile_expr(src),
        FlowSource::Script(src) => compile_script(src, limits),
    }
}

impl Program {
    fn new(source: String, body: Body, attributes: Vec<String>) -> Self {
        Program {
            inner: Arc::new(Inner {
                source,
                body,
                attributes,
            }),
        }
    }

    /// A program that copies attribute `name` (any name, no quoting needed).
    pub fn attribute(name: &str) -> Self {
        Program::new(
            name.to_owned(),
            Body::Expr(Node::Attr(name.into())),
            vec![name.to_owned()],
        )
    }

    /// A program that always gives `value`.
    pub fn constant(value: Value) -> Self {
        Program::new(
            value.to_text(),
            Body::Expr(Node::Const(Some(value))),
            Vec::new(),
        )
    }

    /// The value for one input; `None` means absent.
    pub fn eval(&self, input: &dyn Lookup) -> Result<Option<Value>, EvalError> {
        self.eval_in(input, &mut Context::default())
    }

    /// The value for one input, in a context: the metaverse object a
    /// script reads as `mv`, and what answers its metaverse lookups
    /// (needed only when [`needs_context`](Self::needs_context)).
    pub fn eval_in(
        &self,
        input: &dyn Lookup,
        ctx: &mut Context<'_>,
    ) -> Result<Option<Value>, EvalError> {
        match &self.inner.body {
            Body::Expr(node) => Ok(node.eval(input)?.into_value()),
            Body::Script(script) => script.eval(input, ctx),
        }
    }

    /// The value as a condition: absent is false, a non-boolean value is an
    /// error.
    pub fn eval_bool(&self, input: &dyn Lookup) -> Result<bool, EvalError> {
        self.eval_bool_in(input, &mut Context::default())
    }

    /// [`eval_bool`](Self::eval_bool) in a context (see
    /// [`eval_in`](Self::eval_in)).
    pub fn eval_bool_in(
        &self,
        input: &dyn Lookup,
        ctx: &mut Context<'_>,
    ) -> Result<bool, EvalError> {
        match &self.inner.body {
            Body::Expr(node) => node.eval_bool(input, "the condition"),
            Body::Script(script) => truth(script.eval(input, ctx)?.as_ref(), "the script's result")
                .map_err(|e| EvalError::from_script(e.message)),
        }
    }

    /// Whether the program needs a [`Context`]: a script that reads `mv` or
    /// makes metaverse lookups.
    pub fn needs_context(&self) -> bool {
        self.reads_mv() || self.makes_lookups()
    }

    /// Whether the program is a script that reads `mv` (the metaverse
    /// object of an import flow).
    pub fn reads_mv(&self) -> bool {
        matches!(&self.inner.body, Body::Script(s) if s.reads_mv())
    }

    /// Whether the program is a script that makes metaverse lookups.
    pub fn makes_lookups(&self) -> bool {
        matches!(&self.inner.body, Body::Script(s) if s.makes_lookups())
    }

    /// The (metaverse type, attribute) pairs the script's `mv_find` calls
    /// search (they must be indexed).
    pub fn mv_finds(&self) -> &[(String, String)] {
        match &self.inner.body {
            Body::Expr(_) => &[],
            Body::Script(s) => s.finds(),
        }
    }

    /// The attribute names the program reads, in first-use order. For a
    /// script: the names it reads literally (`attr("x")`, `attrs.x`,
    /// `attrs["x"]`).
    pub fn attributes(&self) -> &[String] {
        &self.inner.attributes
    }

    /// Whether the program may read attributes not in
    /// [`attributes`](Self::attributes): a script that computes names
    /// (`attr(n)`) or uses the `attrs` map as a whole.
    pub fn reads_any_attribute(&self) -> bool {
        match &self.inner.body {
            Body::Expr(_) => false,
            Body::Script(script) => script.reads_any_attribute(),
        }
    }

    /// The attribute name when the program is a bare attribute reference.
    pub fn as_attribute(&self) -> Option<&str> {
        match &self.inner.body {
            Body::Expr(Node::Attr(name)) => Some(name),
            _ => None,
        }
    }

    /// The value when the program is a constant (after folding: `"a" + "b"`
    /// is the constant `"ab"`). `null` is not a constant value: it is absent.
    pub fn as_constant(&self) -> Option<&Value> {
        match &self.inner.body {
            Body::Expr(Node::Const(v)) => v.as_ref(),
            _ => None,
        }
    }

    /// Whether this is a script (as opposed to an expression).
    pub fn is_script(&self) -> bool {
        matches!(self.inner.body, Body::Script(_))
    }

    /// The source text the program was compiled from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }
}
