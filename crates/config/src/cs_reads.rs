//! Every name an MA's rules read from its connector space, with the rule
//! and the key it is written at: connector filters, join conditions,
//! projection conditions, import flows and the DN attribute of each object
//! type. Expressions say exactly what they read; a script only what it reads
//! literally (`attr("x")`, `attrs.x`), marked so that it can be reported
//! more gently.

use crate::diagnostic::PathSegment;
use crate::validate::key_path;
use autosync_expr::{ScriptLimits, compile_expr, compile_rule_script, compile_script};
use autosync_model::MaDef;

/// One name read from the connector space.
#[derive(Clone, Debug)]
pub struct CsRead<'a> {
    /// The key of the value that reads it.
    pub at: Vec<PathSegment>,
    /// The rule, for messages: ``import flow to `title` ``.
    pub rule: String,
    /// The CS object type the rule applies to; `None`: every type.
    pub object_type: Option<&'a str>,
    pub name: String,
    /// The expression or script text the name is read in (to point at it).
    pub source: Option<&'a str>,
    /// Read literally by a script (which may test for it on purpose).
    pub by_script: bool,
}

/// Every name MA `ma` (the `index`-th `[[ma]]`) reads from its connector
/// space. Expressions and scripts that do not compile are left out (the
/// configuration's validation reports them).
pub fn cs_reads(ma: &MaDef, index: usize) -> Vec<CsRead<'_>> {
    let mut out = Vec::new();
    let mut add = |at, rule: &str, object_type, value| push(&mut out, at, rule, object_type, value);
    for (r, f) in ma.filters.iter().enumerate() {
        let (key, value) = match (&f.condition, &f.script) {
            (Some(c), None) => ("condition", Value::Expression(c)),
            (None, Some(s)) => ("script", Value::Script(s)),
            _ => continue,
        };
        let at = key_path!["ma", index, "filters", r, key];
        let rule = format!("filter #{}", r + 1);
        add(at, &rule, f.object_type.as_deref(), value);
    }
    for (r, j) in ma.join.iter().enumerate() {
        let rule = format!("join rule #{}", r + 1);
        for (k, on) in j.on.iter().enumerate() {
            let (key, value) = match (&on.cs, &on.expr, &on.script) {
                (Some(cs), None, None) => ("cs", Value::Attribute(cs)),
                (None, Some(e), None) => ("expr", Value::Expression(e)),
                (None, None, Some(s)) => ("script", Value::Script(s)),
                _ => continue,
            };
            let at = key_path!["ma", index, "join", r, "on", k, key];
            add(at, &rule, j.object_type.as_deref(), value);
        }
        if let Some(resolve) = &j.resolve {
            let at = key_path!["ma", index, "join", r, "resolve"];
            let value = Value::RuleScript(resolve, autosync_model::script_variables::JOIN_RESOLVE);
            add(at, &rule, j.object_type.as_deref(), value);
        }
    }
    for (r, p) in ma.projection.iter().enumerate() {
        if let Some(condition) = &p.condition {
            let at = key_path!["ma", index, "projection", r, "condition"];
            let rule = format!("projection rule #{}", r + 1);
            let value = Value::Expression(condition);
            add(at, &rule, p.object_type.as_deref(), value);
        }
        if let Some(script) = &p.script {
            let at = key_path!["ma", index, "projection", r, "script"];
            let rule = format!("projection rule #{}", r + 1);
            add(at, &rule, p.object_type.as_deref(), Value::Script(script));
        }
    }
    for (r, f) in ma.import_flows.iter().enumerate() {
        let (key, value) = match (&f.from, &f.constant, &f.expr, &f.script) {
            (Some(a), None, None, None) => ("from", Value::Attribute(a)),
            (None, None, Some(e), None) => ("expr", Value::Expression(e)),
            (None, None, None, Some(s)) => ("script", Value::Script(s)),
            _ => continue,
        };
        let at = key_path!["ma", index, "import_flows", r, key];
        let rule = format!("import flow to `{}`", f.mv);
        add(at, &rule, f.object_type.as_deref(), value);
    }
    for (k, t) in ma.object_types.iter().enumerate() {
        if let Some(dn) = t.dn.as_deref().filter(|d| *d != t.anchor) {
            let at = key_path!["ma", index, "object_types", k, "dn"];
            let rule = format!("the DN of object type `{}`", t.name);
            add(at, &rule, Some(t.name.as_str()), Value::Attribute(dn));
        }
    }
    out
}

fn push<'a>(
    out: &mut Vec<CsRead<'a>>,
    at: Vec<PathSegment>,
    rule: &str,
    object_type: Option<&'a str>,
    value: Value<'a>,
) {
    let (names, source, by_script) = match value {
        Value::Attribute(name) => (vec![name.to_owned()], None, false),
        Value::Expression(src) => match compile_expr(src) {
            Ok(p) => (p.attributes().to_vec(), Some(src), false),
            Err(_) => return,
        },
        Value::Script(src) => match compile_script(src, &ScriptLimits::default()) {
            Ok(p) => (p.attributes().to_vec(), Some(src), true),
            Err(_) => return,
        },
        Value::RuleScript(src, variables) => {
            match compile_rule_script(src, variables, &ScriptLimits::default()) {
                Ok(p) => (p.attributes().to_vec(), Some(src), true),
                Err(_) => return,
            }
        }
    };
    for name in names {
        out.push(CsRead {
            at: at.clone(),
            rule: rule.to_owned(),
            object_type,
            name,
            source,
            by_script,
        });
    }
}

/// How a rule gives a value.
enum Value<'a> {
    Attribute(&'a str),
    Expression(&'a str),
    Script(&'a str),
    /// A rules script reading these variables besides `attrs`.
    RuleScript(&'a str, &'static [&'static str]),
}
