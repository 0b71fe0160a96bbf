//! Computed values: an attribute copy, a constant, an expression or a script,
//! compiled once per engine and evaluated over a view of a connector-space
//! object or a metaverse object.

use autosync_expr::{EvalError, Lookup, Program};
use autosync_model::{Attributes, CsObject, FlowSource, MvValue, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A compiled value source.
pub(crate) enum Compute {
    Attribute(String),
    Constant(Value),
    Program(Program),
}

impl Compute {
    /// Compile a flow source; `Err` carries the compile error, rendered.
    pub(crate) fn compile(source: FlowSource<'_>) -> Result<Compute, String> {
        match source {
            FlowSource::Attribute(a) => Ok(Compute::Attribute(a.to_owned())),
            FlowSource::Constant(c) => Ok(Compute::Constant(c.clone())),
            FlowSource::Expression(e) => compile_expression(e).map(Compute::from_program),
            FlowSource::Script(s) => {
                autosync_expr::compile_script(s, &autosync_expr::ScriptLimits::default())
                    .map(Compute::Program)
                    .map_err(|e| e.render(s))
            }
        }
    }

    fn from_program(p: Program) -> Compute {
        match p.as_attribute() {
            Some(a) => Compute::Attribute(a.to_owned()),
            None => Compute::Program(p),
        }
    }

    /// The attributes it reads; `None` when a script may read any.
    pub(crate) fn reads(&self) -> Option<Vec<String>> {
        match self {
            Compute::Attribute(a) => Some(vec![a.clone()]),
            Compute::Constant(_) => Some(Vec::new()),
            Compute::Program(p) => program_reads(p),
        }
    }

    /// Evaluate; an empty result is no value.
    pub(crate) fn eval(&self, view: &dyn Lookup) -> Result<Option<Value>, EvalError> {
        Ok(self.eval_ref(view)?.map(Cow::into_owned))
    }

    /// Evaluate, borrowing the value from the view or the constant when the
    /// source is an attribute copy or a constant (no copy is made until the
    /// caller keeps the value); an empty result is no value.
    pub(crate) fn eval_ref<'a>(
        &'a self,
        view: &'a dyn Lookup,
    ) -> Result<Option<Cow<'a, Value>>, EvalError> {
        let v = match self {
            Compute::Attribute(a) => view.get(a).map(Cow::Borrowed),
            Compute::Constant(c) => Some(Cow::Borrowed(c)),
            Compute::Program(p) => p.eval(view)?.map(Cow::Owned),
        };
        Ok(v.filter(|v| !v.is_empty()))
    }
}

/// A program's value as text, `None` when it is absent or empty (a bare
/// attribute reference renders the attribute without copying it first).
pub(crate) fn eval_text(p: &Program, view: &dyn Lookup) -> Result<Option<String>, EvalError> {
    let text = match p.as_attribute() {
        Some(a) => view.get(a).filter(|v| !v.is_empty()).map(Value::to_text),
        None => p.eval(view)?.filter(|v| !v.is_empty()).map(|v| match v {
            Value::String(s) => s,
            other => other.to_text(),
        }),
    };
    Ok(text)
}

/// The attributes a program reads; `None` when it is a script (which may
/// read attributes by computed names).
pub(crate) fn program_reads(p: &Program) -> Option<Vec<String>> {
    (!p.is_script()).then(|| p.attributes().to_vec())
}

/// Compile an expression, rendering the error with its source.
pub(crate) fn compile_expression(text: &str) -> Result<Program, String> {
    autosync_expr::compile_expr(text).map_err(|e| e.render(text))
}

/// A connector-space object as synchronisation sees it (pending import if
/// any, else hologram).
pub(crate) struct CsView<'a>(pub &'a CsObject);

impl Lookup for CsView<'_> {
    fn get(&self, attr: &str) -> Option<&Value> {
        self.0.current(attr)
    }
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        let attrs = match &self.0.pending_import {
            Some(p) => &p.attributes,
            None => &self.0.hologram,
        };
        attrs.for_each_attr(visit);
    }
}

/// A plain attribute set (a hologram, imported attributes).
pub(crate) struct AttrView<'a>(pub &'a Attributes);

impl Lookup for AttrView<'_> {
    fn get(&self, attr: &str) -> Option<&Value> {
        self.0.get(attr)
    }
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        self.0.for_each_attr(visit);
    }
}

/// A metaverse object's attributes.
pub(crate) struct MvView<'a>(pub &'a BTreeMap<String, MvValue>);

impl Lookup for MvView<'_> {
    fn get(&self, attr: &str) -> Option<&Value> {
        self.0.get(attr).map(|v| &v.value)
    }
    fn for_each_attr(&self, visit: &mut dyn FnMut(&str, &Value)) {
        for (name, v) in self.0 {
            visit(name, &v.value);
        }
    }
}
