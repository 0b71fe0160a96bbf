//! Regular expressions, with the `regex` crate: matching takes time linear
//! in the text whatever the pattern (no backtracking, so no catastrophic
//! patterns). A literal pattern is compiled once with the expression; any
//! other pattern is compiled when evaluated, under a size limit, and kept in
//! a small per-thread cache so that a pattern read from an attribute is not
//! compiled again for every object.

use super::{Call, Form, LiteralError, boolean, each, opt_text};
use crate::error::EvalError;
use crate::eval::text;
use autosync_model::Value;
use regex::{Regex, RegexBuilder};
use std::cell::RefCell;

/// The compiled size a pattern computed at evaluation may reach.
const DYNAMIC_SIZE_LIMIT: usize = 1 << 20;
/// How deeply a pattern computed at evaluation may nest.
const DYNAMIC_NEST_LIMIT: u32 = 64;
/// How many patterns computed at evaluation each thread keeps compiled.
const CACHED_PATTERNS: usize = 16;

const SYNTAX_HELP: &str = "patterns use the syntax of the Rust `regex` crate (https://docs.rs/regex/latest/regex/#syntax): no look-around and no backreferences; `(?i)` at the start ignores case";

thread_local! {
    /// Patterns computed at evaluation, most recently compiled last.
    static RECENT: RefCell<Vec<(Box<str>, Regex)>> = const { RefCell::new(Vec::new()) };
}

/// Compile a literal pattern (the regex crate's own limits apply).
pub(super) fn compile_literal(name: &str, pattern: &str) -> Result<Regex, LiteralError> {
    Regex::new(pattern).map_err(|e| LiteralError {
        message: invalid(name, pattern, &e),
        help: SYNTAX_HELP.to_owned(),
    })
}

/// `name: invalid regular expression "(a": unclosed group`.
fn invalid(name: &str, pattern: &str, e: &regex::Error) -> String {
    let why = match e {
        // "regex parse error:\n    (a\n    ^\nerror: unclosed group"
        regex::Error::Syntax(full) => full
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(full)
            .to_owned(),
        other => other.to_string(),
    };
    format!("{name}: invalid regular expression {pattern:?}: {why}")
}

/// Run `f` with the compiled pattern of the call (its second argument), or
/// give absent when the pattern is absent.
fn with_pattern<T>(
    c: &Call<'_>,
    f: impl FnOnce(&Regex) -> Result<T, EvalError>,
) -> Result<Option<T>, EvalError> {
    if let Some(Form::Pattern(re)) = c.prepared.map(|p| &p.form) {
        return f(re).map(Some);
    }
    let Some(pattern) = c.arg(1) else {
        return Ok(None);
    };
    let pattern = text(c.name, pattern)?;
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        let found = recent.iter().position(|(p, _)| **p == *pattern);
        let index = match found {
            Some(i) => i,
            None => {
                let re = RegexBuilder::new(&pattern)
                    .size_limit(DYNAMIC_SIZE_LIMIT)
                    .dfa_size_limit(DYNAMIC_SIZE_LIMIT)
                    .nest_limit(DYNAMIC_NEST_LIMIT)
                    .build()
                    .map_err(|e| EvalError::new(invalid(c.name, &pattern, &e)))?;
                if recent.len() == CACHED_PATTERNS {
                    recent.remove(0);
                }
                recent.push((pattern.into(), re));
                recent.len() - 1
            }
        };
        match recent.get(index) {
            Some((_, re)) => f(re).map(Some),
            None => Ok(None),
        }
    })
}

/// `regex_match(text, pattern)`: whether the pattern matches somewhere in
/// the text (in any value of a multi-value); `false` when the text is
/// absent.
pub(super) fn regex_match(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let Some(subject) = c.arg(0) else {
        return Ok(boolean(false));
    };
    let found = with_pattern(c, |re| match subject {
        Value::Multi(vs) => {
            for v in vs {
                if re.is_match(&text(c.name, v)?) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        v => Ok(re.is_match(&text(c.name, v)?)),
    })?;
    Ok(boolean(found.unwrap_or(false)))
}

/// `regex_replace(text, pattern, with)`: every match replaced; `$1`,
/// `${name}` in the replacement are groups, `$$` is a dollar sign.
pub(super) fn regex_replace(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let replacement = opt_text(c.name, c.arg(2))?;
    let subject = c.arg(0);
    if subject.is_none() {
        return Ok(None);
    }
    Ok(with_pattern(c, |re| {
        each(subject, |v| {
            let s = text(c.name, v)?;
            Ok(Some(Value::String(
                re.replace_all(&s, replacement.as_str()).into_owned(),
            )))
        })
    })?
    .flatten())
}

/// `regex_extract(text, pattern [, group])`: the text of a group of the
/// first match (group 1 when the pattern has groups, else the whole match;
/// or the group given by number or name); absent when nothing matches.
pub(super) fn regex_extract(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let subject = c.arg(0);
    if subject.is_none() {
        return Ok(None);
    }
    Ok(with_pattern(c, |re| {
        let group = group(c.name, re, c.arg(2))?;
        each(subject, |v| {
            let s = text(c.name, v)?;
            let Some(caps) = re.captures(&s) else {
                return Ok(None);
            };
            let m = match &group {
                Group::Index(i) => caps.get(*i),
                Group::Name(n) => caps.name(n),
            };
            Ok(m.map(|m| Value::String(m.as_str().to_owned())))
        })
    })?
    .flatten())
}

/// Which group `regex_extract` gives.
pub(super) enum Group {
    Index(usize),
    Name(String),
}

/// The group asked for: a number, a name, or (absent) the default.
pub(super) fn group(name: &str, re: &Regex, asked: Option<&Value>) -> Result<Group, EvalError> {
    let groups = re.captures_len() - 1;
    let Some(asked) = asked else {
        return Ok(Group::Index(usize::from(groups > 0)));
    };
    match asked {
        Value::Integer(i) => match usize::try_from(*i) {
            Ok(i) if i <= groups => Ok(Group::Index(i)),
            _ => Err(EvalError::new(format!(
                "{name}: the pattern {:?} has {groups} group{}, so there is no group {i}",
                re.as_str(),
                if groups == 1 { "" } else { "s" }
            ))),
        },
        Value::String(n) if re.capture_names().flatten().any(|g| g == n) => {
            Ok(Group::Name(n.clone()))
        }
        Value::String(n) => Err(EvalError::new(format!(
            "{name}: the pattern {:?} has no group named {n:?}",
            re.as_str()
        ))),
        other => Err(EvalError::in_function(
            name,
            "expects a group number or name",
            other,
        )),
    }
}
