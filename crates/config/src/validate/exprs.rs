//! Compiling the expressions and scripts of the configuration, so that a
//! typo in a flow is an error at start-up (with a caret at the exact
//! character) rather than a per-object error on every run.

use super::Checker;
use crate::diagnostic::PathSegment;
use crate::document::{lookup, name_span, string_content_start};
use autosync_expr::{
    CompileError, Program, RuleScript, ScriptLimits, compile_expr, compile_rule_script,
    compile_script,
};
use autosync_model::Value;
use autosync_model::suggest;

/// Compiles an expression; reports a compile error at the offending character.
pub fn check_expr(c: &mut Checker<'_, '_>, path: Vec<PathSegment>, src: &str) -> Option<Program> {
    match compile_expr(src) {
        Ok(p) => Some(p),
        Err(e) => {
            report(c, path, src, &e, "expression");
            None
        }
    }
}

/// Compiles a script; reports a compile error at the offending character,
/// and checks what it does beyond reading `attrs` (see
/// [`check_script_extras`]).
pub fn check_script(
    c: &mut Checker<'_, '_>,
    path: Vec<PathSegment>,
    src: &str,
    mv_allowed: bool,
) -> Option<Program> {
    match compile_script(src, &ScriptLimits::default()) {
        Ok(p) => {
            check_script_extras(c, &path, src, &p, mv_allowed);
            Some(p)
        }
        Err(e) => {
            report(c, path, src, &e, "script");
            None
        }
    }
}

/// Compiles a rules script that reads `variables` besides `attrs`;
/// reports a compile error at the offending character, and checks its
/// lookups (see [`check_lookups`]).
pub fn check_rule_script(
    c: &mut Checker<'_, '_>,
    path: Vec<PathSegment>,
    src: &str,
    variables: &[&str],
) -> Option<RuleScript> {
    match compile_rule_script(src, variables, &ScriptLimits::default()) {
        Ok(p) => {
            if p.reads_mv() {
                mv_outside_import_flow(c, path.clone(), src);
            }
            check_lookups(c, &path, src, p.mv_finds());
            Some(p)
        }
        Err(e) => {
            report(c, path, src, &e, "script");
            None
        }
    }
}

/// What a compiled script does beyond reading `attrs`, checked: `mv` only
/// where there is a metaverse object being written (import flows), lookups
/// only of declared attributes.
pub fn check_script_extras(
    c: &mut Checker<'_, '_>,
    path: &[PathSegment],
    src: &str,
    program: &Program,
    mv_allowed: bool,
) {
    if program.reads_mv() && !mv_allowed {
        mv_outside_import_flow(c, path.to_vec(), src);
    }
    check_lookups(c, path, src, program.mv_finds());
}

fn mv_outside_import_flow(c: &mut Checker<'_, '_>, path: Vec<PathSegment>, src: &str) {
    let value = c.span(&path);
    let span = name_span(c.text, &value, src, "mv");
    c.push(
        path,
        span,
        "this script reads `mv`, which only an import flow's script has (the metaverse object it writes to)".into(),
        Some("read this object's attributes with `attrs`, or look metaverse objects up with `mv_find`".into()),
        false,
    );
}

/// Every `mv_find("type", "attribute", ...)` of a script must search a
/// declared attribute of a declared metaverse type.
pub fn check_lookups(
    c: &mut Checker<'_, '_>,
    path: &[PathSegment],
    src: &str,
    finds: &[(String, String)],
) {
    for (t, attr) in finds {
        let value = c.span(path);
        let types: Vec<&str> = c.system().metaverse.keys().map(String::as_str).collect();
        let problem = match c.system().metaverse.get(t) {
            None if c.decoded.failed_mv_types.contains(t) => None,
            None => Some((
                name_span(c.text, &value, src, t),
                format!("mv_find searches metaverse type `{t}`, which is not declared"),
                Some(suggest::hint(t, &types)),
            )),
            Some(def) if !def.attributes.contains(attr) => {
                let names: Vec<&str> = def.attributes.iter().map(String::as_str).collect();
                Some((
                    name_span(c.text, &value, src, attr),
                    format!(
                        "mv_find searches `{attr}`, which is not an attribute of metaverse type `{t}`"
                    ),
                    Some(format!(
                        "{} (mv_find searches a declared attribute, which autosync indexes)",
                        suggest::hint(attr, &names)
                    )),
                ))
            }
            Some(_) => None,
        };
        if let Some((span, message, help)) = problem {
            c.push(path.to_vec(), span, message, help, false);
        }
    }
}

fn report(
    c: &mut Checker<'_, '_>,
    path: Vec<PathSegment>,
    src: &str,
    e: &CompileError,
    what: &str,
) {
    let value = c.span(&path);
    let span = match (e.offset, string_content_start(c.text, &value, src)) {
        (Some(offset), Some(start)) => {
            let offset = offset.min(src.len());
            let width = src[offset..].chars().next().map_or(0, char::len_utf8);
            start + offset..start + offset + width
        }
        _ => value,
    };
    c.push(
        path,
        span,
        format!("invalid {what}: {}", e.message),
        e.help.clone(),
        false,
    );
}

/// The sources a flow names, checked: exactly one of `from`, `constant`,
/// `expr`, `script`; expressions and scripts compile. Returns the program
/// (for an expression or script) when all is well.
pub struct FlowSources<'a> {
    pub from: &'a Option<String>,
    pub constant: &'a Option<Value>,
    pub expr: &'a Option<String>,
    pub script: &'a Option<String>,
    /// Whether a script may read `mv` (an import flow's).
    pub mv_allowed: bool,
}

pub fn check_flow_source(
    c: &mut Checker<'_, '_>,
    flow: &[PathSegment],
    s: &FlowSources<'_>,
) -> Option<Program> {
    let given: Vec<&str> = [
        ("from", s.from.is_some()),
        ("constant", s.constant.is_some()),
        ("expr", s.expr.is_some()),
        ("script", s.script.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k)
    .collect();
    match given.as_slice() {
        [] => {
            c.error(
                flow.to_vec(),
                "this flow has no source",
                "give exactly one of `from` (an attribute), `constant`, `expr` or `script`"
                    .to_owned(),
            );
            None
        }
        [_] => {
            let at = |key: &str| {
                let mut p = flow.to_vec();
                p.push(PathSegment::key(key));
                p
            };
            if let Some(from) = s.from {
                if from.is_empty() {
                    c.error(
                        at("from"),
                        "`from` is empty: name the attribute to copy",
                        None,
                    );
                }
                None
            } else if let Some(expr) = s.expr {
                check_expr(c, at("expr"), expr)
            } else if let Some(script) = s.script {
                check_script(c, at("script"), script, s.mv_allowed)
            } else {
                None
            }
        }
        several => {
            let names: Vec<String> = several.iter().map(|k| format!("`{k}`")).collect();
            let mut second = flow.to_vec();
            second.push(PathSegment::key(several[1]));
            let span = lookup(c.root, &second)
                .and_then(|f| f.key)
                .unwrap_or_else(|| c.span(flow));
            c.push(
                flow.to_vec(),
                span,
                format!(
                    "this flow has {} sources: {}",
                    several.len(),
                    names.join(" and ")
                ),
                Some(format!("keep exactly one of {}", names.join(", "))),
                false,
            );
            None
        }
    }
}
