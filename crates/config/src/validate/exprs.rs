//! Compiling the expressions and scripts of the configuration, so that a
//! typo in a flow is an error at start-up (with a caret at the exact
//! character) rather than a per-object error on every run.

use super::Checker;
use crate::diagnostic::PathSegment;
use crate::document::{lookup, string_content_start};
use autosync_expr::{CompileError, Program, ScriptLimits, compile_expr, compile_script};
use autosync_model::Value;

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

/// Compiles a script; reports a compile error at the offending character.
pub fn check_script(c: &mut Checker<'_, '_>, path: Vec<PathSegment>, src: &str) -> Option<Program> {
    match compile_script(src, &ScriptLimits::default()) {
        Ok(p) => Some(p),
        Err(e) => {
            report(c, path, src, &e, "script");
            None
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
                check_script(c, at("script"), script)
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
