//! What each built-in function does at evaluation time. Absent inputs give
//! absent results (except where noted in docs/src/reference/expressions.md); text functions apply
//! element-wise to multi-values; positions and counts are clamped, never
//! errors.

use crate::ast::Node;
use crate::error::{EvalError, describe};
use crate::eval::{Val, equals, scalar, text};
use crate::functions::Func;
use crate::program::Lookup;
use crate::shared::{Call, MAX_ARGS, Shared};
use autosync_model::Value;

pub(crate) fn call<'a>(
    func: Func,
    args: &'a [Node],
    input: &'a dyn Lookup,
) -> Result<Val<'a>, EvalError> {
    let name = func.name();
    let arg = |i: usize| -> Result<Val<'a>, EvalError> {
        match args.get(i) {
            Some(node) => node.eval(input),
            None => Ok(Val::Absent),
        }
    };
    match func {
        Func::Lower => match arg(0)? {
            // A string computed just now (`lower(a + b)`) is lowered in
            // place when it is ASCII (the same result as `to_lowercase`).
            Val::Own(Value::String(mut s)) if s.is_ascii() => {
                s.make_ascii_lowercase();
                Ok(Val::Own(Value::String(s)))
            }
            v => map_text(name, v, |s| s.to_lowercase()),
        },
        Func::Upper => match arg(0)? {
            Val::Own(Value::String(mut s)) if s.is_ascii() => {
                s.make_ascii_uppercase();
                Ok(Val::Own(Value::String(s)))
            }
            v => map_text(name, v, |s| s.to_uppercase()),
        },
        Func::Trim => map_text(name, arg(0)?, |s| s.trim().to_owned()),
        Func::Left => {
            let n = count(name, &arg(1)?)?;
            map_text(name, arg(0)?, |s| s.chars().take(n).collect())
        }
        Func::Right => {
            let n = count(name, &arg(1)?)?;
            map_text(name, arg(0)?, |s| {
                let total = s.chars().count();
                s.chars().skip(total.saturating_sub(n)).collect()
            })
        }
        Func::Substring => {
            let start = count(name, &arg(1)?)?;
            let len = count(name, &arg(2)?)?;
            map_text(name, arg(0)?, |s| s.chars().skip(start).take(len).collect())
        }
        Func::Replace => {
            let from = arg(1)?;
            let to = arg(2)?;
            let from = opt_text(name, &from)?;
            let to = opt_text(name, &to)?;
            map_text(name, arg(0)?, |s| {
                if from.is_empty() {
                    s.to_owned()
                } else {
                    s.replace(from.as_str(), &to)
                }
            })
        }
        Func::Concat => concat(name, args, input),
        Func::Coalesce => {
            for node in args {
                let v = node.eval(input)?;
                if !v.is_blank() {
                    return Ok(v);
                }
            }
            Ok(Val::Absent)
        }
        Func::Split => split(name, arg(0)?, arg(1)?),
        Func::Join => join(name, arg(0)?, arg(1)?),
        Func::Len => {
            let n = match arg(0)?.get() {
                None => 0,
                Some(Value::String(s)) => s.chars().count(),
                Some(Value::Multi(vs)) => vs.len(),
                Some(Value::Binary(b)) => b.len(),
                Some(other) => other.to_text().chars().count(),
            };
            Ok(Val::Own(Value::Integer(
                i64::try_from(n).unwrap_or(i64::MAX),
            )))
        }
        Func::IsPresent => Ok(Val::Own(Value::Boolean(arg(0)?.get().is_some()))),
        Func::IsEmpty => Ok(Val::Own(Value::Boolean(arg(0)?.is_blank()))),
        Func::ToString => {
            let v = arg(0)?;
            let rendered = match v.get() {
                None | Some(Value::String(_)) => None,
                Some(other) => Some(other.to_text()),
            };
            Ok(rendered.map_or(v, |s| Val::Own(Value::String(s))))
        }
        Func::ToInt => to_int(name, arg(0)?),
        Func::StartsWith => text_test(name, arg(0)?, arg(1)?, |s, p| s.starts_with(p)),
        Func::EndsWith => text_test(name, arg(0)?, arg(1)?, |s, p| s.ends_with(p)),
        Func::Contains => {
            let hay = arg(0)?;
            let needle = arg(1)?;
            if let Some(Value::Multi(vs)) = hay.get() {
                let found = vs.iter().any(|v| equals(Some(v), needle.get()));
                return Ok(Val::Own(Value::Boolean(found)));
            }
            text_test(name, hay, needle, |s, p| s.contains(p))
        }
        Func::If => {
            let (Some(c), Some(a), Some(b)) = (args.first(), args.get(1), args.get(2)) else {
                return Ok(Val::Absent);
            };
            if c.eval_bool(input, "the condition of `if`")? {
                a.eval(input)
            } else {
                b.eval(input)
            }
        }
        Func::First => Ok(match arg(0)? {
            Val::Ref(Value::Multi(vs)) => vs.first().map_or(Val::Absent, Val::Ref),
            Val::Own(Value::Multi(vs)) => vs.into_iter().next().map_or(Val::Absent, Val::Own),
            other => other,
        }),
        Func::Shared(shared) => call_shared(shared, name, args, input),
    }
}

/// A function shared with scripts: its arguments evaluated, the second one
/// already compiled when it was a literal pattern or format. (Not inlined:
/// its room for arguments would grow every call of [`call`].)
#[inline(never)]
fn call_shared<'a>(
    shared: Shared,
    name: &'static str,
    args: &'a [Node],
    input: &'a dyn Lookup,
) -> Result<Val<'a>, EvalError> {
    let mut values: [Val<'a>; MAX_ARGS] = std::array::from_fn(|_| Val::Absent);
    for (slot, node) in values.iter_mut().zip(args) {
        *slot = node.eval(input)?;
    }
    let refs = values.each_ref().map(Val::get);
    let prepared = match args.get(1) {
        Some(Node::Prepared(p)) => Some(&**p),
        _ => None,
    };
    let call = Call {
        name,
        args: &refs[..args.len().min(MAX_ARGS)],
        prepared,
    };
    Ok(shared.call(&call)?.map_or(Val::Absent, Val::Own))
}

/// Apply a text function to a value, element-wise on multi-values.
fn map_text<'a>(name: &str, v: Val<'a>, f: impl Fn(&str) -> String) -> Result<Val<'a>, EvalError> {
    Ok(match v.get() {
        None => Val::Absent,
        Some(Value::Multi(vs)) => Val::Own(Value::Multi(
            vs.iter()
                .map(|e| Ok(Value::String(f(&text(name, e)?))))
                .collect::<Result<_, EvalError>>()?,
        )),
        Some(v) => Val::Own(Value::String(f(&text(name, v)?))),
    })
}

/// An optional text argument: absent is "".
fn opt_text(name: &str, v: &Val<'_>) -> Result<String, EvalError> {
    match v.get() {
        None => Ok(String::new()),
        Some(v) => Ok(text(name, v)?.into_owned()),
    }
}

/// A count or position: absent and negative numbers are 0.
fn count(name: &str, v: &Val<'_>) -> Result<usize, EvalError> {
    let Some(v) = v.get() else { return Ok(0) };
    let n = match scalar(name, v)? {
        None => 0,
        Some(Value::Integer(i)) => *i,
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| EvalError::in_function(name, "expects an integer count or position", v))?,
        Some(other) => {
            return Err(EvalError::in_function(
                name,
                "expects an integer count or position",
                other,
            ));
        }
    };
    Ok(usize::try_from(n.max(0)).unwrap_or(usize::MAX))
}

fn concat<'a>(name: &str, args: &'a [Node], input: &'a dyn Lookup) -> Result<Val<'a>, EvalError> {
    let mut out = String::with_capacity(32);
    let mut reads = false;
    let mut any_present = false;
    for node in args {
        let v = node.eval(input)?;
        if !node.is_const() {
            reads = true;
            any_present |= !v.is_blank();
        }
        if let Some(v) = v.get() {
            out.push_str(&text(name, v)?);
        }
    }
    if reads && !any_present {
        return Ok(Val::Absent);
    }
    Ok(Val::Own(Value::String(out)))
}

fn split<'a>(name: &str, s: Val<'a>, sep: Val<'a>) -> Result<Val<'a>, EvalError> {
    let Some(s) = s.get() else {
        return Ok(Val::Absent);
    };
    let Some(s) = scalar(name, s)? else {
        return Ok(Val::Absent);
    };
    let s = text(name, s)?;
    if s.is_empty() {
        return Ok(Val::Absent);
    }
    let sep = opt_text(name, &sep)?;
    if sep.is_empty() {
        return Err(EvalError::new(format!(
            "{name}: the separator is empty (splitting {})",
            describe(&Value::String(s.into_owned()))
        )));
    }
    Ok(Val::Own(Value::Multi(
        s.split(sep.as_str())
            .map(|p| Value::String(p.to_owned()))
            .collect(),
    )))
}

fn join<'a>(name: &str, values: Val<'a>, sep: Val<'a>) -> Result<Val<'a>, EvalError> {
    let sep = opt_text(name, &sep)?;
    Ok(match values.get() {
        None => Val::Absent,
        Some(Value::Multi(vs)) if vs.is_empty() => Val::Absent,
        Some(Value::Multi(vs)) => {
            let mut out = String::new();
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    out.push_str(&sep);
                }
                out.push_str(&text(name, v)?);
            }
            Val::Own(Value::String(out))
        }
        Some(v) => Val::Own(Value::String(text(name, v)?.into_owned())),
    })
}

fn to_int<'a>(name: &str, v: Val<'a>) -> Result<Val<'a>, EvalError> {
    let Some(value) = v.get() else {
        return Ok(Val::Absent);
    };
    match scalar(name, value)? {
        None => Ok(Val::Absent),
        Some(Value::Integer(i)) => Ok(Val::Own(Value::Integer(*i))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Val::Absent),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|i| Val::Own(Value::Integer(i)))
            .map_err(|_| EvalError::in_function(name, "the value is not an integer", v)),
        Some(other) => Err(EvalError::in_function(
            name,
            "the value is not an integer",
            other,
        )),
    }
}

/// A text predicate; absent text is false, an absent pattern is "". On a
/// multi-value, true when any of its values passes.
fn text_test<'a>(
    name: &str,
    s: Val<'a>,
    pattern: Val<'a>,
    test: impl Fn(&str, &str) -> bool,
) -> Result<Val<'a>, EvalError> {
    let pattern = opt_text(name, &pattern)?;
    let result = match s.get() {
        None => false,
        Some(Value::Multi(vs)) => {
            let mut any = false;
            for v in vs {
                if test(&text(name, v)?, &pattern) {
                    any = true;
                    break;
                }
            }
            any
        }
        Some(v) => test(&text(name, v)?, &pattern),
    };
    Ok(Val::Own(Value::Boolean(result)))
}
