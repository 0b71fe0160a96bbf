//! Evaluation of compiled expressions against one object's attributes.
//!
//! Values are borrowed from the input or the program whenever possible
//! ([`Val::Ref`]); only results that are new (a lowered string, a
//! concatenation) allocate.

use crate::ast::{CmpOp, Node};
use crate::builtins;
use crate::error::{EvalError, describe};
use crate::program::Lookup;
use autosync_model::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// An intermediate value: absent, borrowed, or computed.
#[derive(Debug)]
pub(crate) enum Val<'a> {
    Absent,
    Ref(&'a Value),
    Own(Value),
}

impl<'a> Val<'a> {
    pub(crate) fn get(&self) -> Option<&Value> {
        match self {
            Val::Absent => None,
            Val::Ref(v) => Some(v),
            Val::Own(v) => Some(v),
        }
    }

    pub(crate) fn into_value(self) -> Option<Value> {
        match self {
            Val::Absent => None,
            Val::Ref(v) => Some(v.clone()),
            Val::Own(v) => Some(v),
        }
    }

    fn from_option(v: Option<&'a Value>) -> Self {
        v.map_or(Val::Absent, Val::Ref)
    }

    /// Absent, or an empty string/list.
    pub(crate) fn is_blank(&self) -> bool {
        self.get().is_none_or(Value::is_empty)
    }
}

impl Node {
    pub(crate) fn eval<'a>(&'a self, input: &'a dyn Lookup) -> Result<Val<'a>, EvalError> {
        match self {
            Node::Const(v) => Ok(Val::from_option(v.as_ref())),
            Node::Attr(name) => Ok(Val::from_option(input.get(name))),
            Node::Add(parts) => add(parts, input),
            Node::Cmp(op, a, b) => {
                let a = a.eval(input)?;
                let b = b.eval(input)?;
                Ok(bool_val(compare(*op, a.get(), b.get())?))
            }
            Node::And(a, b) => Ok(bool_val(
                a.eval_bool(input, "an operand of `&&`")?
                    && b.eval_bool(input, "an operand of `&&`")?,
            )),
            Node::Or(a, b) => Ok(bool_val(
                a.eval_bool(input, "an operand of `||`")?
                    || b.eval_bool(input, "an operand of `||`")?,
            )),
            Node::Not(a) => Ok(bool_val(!a.eval_bool(input, "the operand of `!`")?)),
            Node::Neg(a) => match a.eval(input)?.get() {
                None => Ok(Val::Absent),
                Some(Value::Integer(i)) => i
                    .checked_neg()
                    .map(|n| Val::Own(Value::Integer(n)))
                    .ok_or_else(|| EvalError::new(format!("-{i} does not fit in an integer"))),
                Some(other) => Err(EvalError::new(format!(
                    "`-` applies to integers only (got {})",
                    describe(other)
                ))),
            },
            Node::Cond(c, a, b) => {
                if c.eval_bool(input, "the condition")? {
                    a.eval(input)
                } else {
                    b.eval(input)
                }
            }
            Node::Call(func, args) => builtins::call(*func, args, input),
            Node::Prepared(p) => Ok(Val::Ref(&p.literal)),
        }
    }

    /// Evaluate in a boolean context: absent is false, anything but a
    /// boolean is an error naming `what` was expected to be one.
    pub(crate) fn eval_bool(&self, input: &dyn Lookup, what: &str) -> Result<bool, EvalError> {
        truth(self.eval(input)?.get(), what)
    }
}

fn bool_val(b: bool) -> Val<'static> {
    Val::Own(Value::Boolean(b))
}

/// The truth of a value: absent is false; only booleans are accepted.
pub(crate) fn truth(v: Option<&Value>, what: &str) -> Result<bool, EvalError> {
    match v {
        None => Ok(false),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(Value::Multi(vs)) if vs.len() == 1 => truth(vs.first(), what),
        Some(other) => Err(EvalError::new(format!(
            "{what} must be true or false (got {})",
            describe(other)
        ))),
    }
}

/// The running result of a `+` chain.
enum Sum {
    Start,
    Int(i64),
    Text(String),
}

/// `a + b + ...`: integer addition while both sides are integers, otherwise
/// text concatenation where absent counts as "". When the chain reads
/// something (it is not all literals) and every such operand is absent or
/// empty, the result is absent.
fn add<'a>(parts: &'a [Node], input: &'a dyn Lookup) -> Result<Val<'a>, EvalError> {
    let mut sum = Sum::Start;
    let mut reads = false;
    let mut any_present = false;
    for part in parts {
        let v = part.eval(input)?;
        if !part.is_const() {
            reads = true;
            any_present |= !v.is_blank();
        }
        let v = match v.get() {
            Some(v) => scalar("+", v)?,
            None => None,
        };
        sum = match (sum, v) {
            (Sum::Start, Some(Value::Integer(i))) => Sum::Int(*i),
            (Sum::Int(a), Some(Value::Integer(b))) => {
                Sum::Int(a.checked_add(*b).ok_or_else(|| {
                    EvalError::new(format!("{a} + {b} does not fit in an integer"))
                })?)
            }
            (Sum::Start, v) => {
                let mut s = String::with_capacity(32);
                push_text(&mut s, v)?;
                Sum::Text(s)
            }
            (Sum::Int(a), v) => {
                let mut s = a.to_string();
                push_text(&mut s, v)?;
                Sum::Text(s)
            }
            (Sum::Text(mut s), v) => {
                push_text(&mut s, v)?;
                Sum::Text(s)
            }
        };
    }
    if reads && !any_present {
        return Ok(Val::Absent);
    }
    Ok(match sum {
        Sum::Start => Val::Absent,
        Sum::Int(i) => Val::Own(Value::Integer(i)),
        Sum::Text(s) => Val::Own(Value::String(s)),
    })
}

fn push_text(out: &mut String, v: Option<&Value>) -> Result<(), EvalError> {
    match v {
        None => {}
        Some(v) => out.push_str(&text("+", v)?),
    }
    Ok(())
}

/// A single value: a multi-value with one element is that element, an empty
/// one is absent, a longer one is an error.
pub(crate) fn scalar<'v>(func: &str, v: &'v Value) -> Result<Option<&'v Value>, EvalError> {
    match v {
        Value::Multi(vs) => match vs.as_slice() {
            [] => Ok(None),
            [one] => scalar(func, one),
            _ => Err(EvalError::in_function(
                func,
                "expects a single value; use first(x) or join(x, sep)",
                v,
            )),
        },
        other => Ok(Some(other)),
    }
}

/// A value as text: strings as themselves, integers and booleans rendered;
/// binary data is refused (use `to_string` for its base64 form).
pub(crate) fn text<'v>(func: &str, v: &'v Value) -> Result<Cow<'v, str>, EvalError> {
    match v {
        Value::String(s) => Ok(Cow::Borrowed(s)),
        Value::Integer(i) => Ok(Cow::Owned(i.to_string())),
        Value::Boolean(b) => Ok(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Binary(_) => Err(EvalError::in_function(
            func,
            "cannot use binary data as text; use to_string(x) for its base64 form",
            v,
        )),
        Value::Reference(_) => Err(EvalError::in_function(
            func,
            "cannot use a reference as text: copy it with `from` to a reference attribute",
            v,
        )),
        Value::Multi(_) => match scalar(func, v)? {
            Some(one) => text(func, one),
            None => Ok(Cow::Borrowed("")),
        },
    }
}

/// The integer a value stands for: an integer, or text holding one.
fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Equality as the language defines it: absent equals absent and "";
/// integers equal text holding the same integer; a multi-value equals a
/// single value when one of its values does.
pub(crate) fn equals(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (None, Some(v)) | (Some(v), None) => v.is_empty(),
        (Some(Value::Multi(x)), Some(Value::Multi(y))) => x == y,
        (Some(Value::Multi(xs)), Some(v)) | (Some(v), Some(Value::Multi(xs))) => {
            xs.iter().any(|x| equals(Some(x), Some(v)))
        }
        (Some(Value::Integer(x)), Some(Value::Integer(y))) => x == y,
        (Some(Value::Integer(i)), Some(Value::String(s)))
        | (Some(Value::String(s)), Some(Value::Integer(i))) => {
            s.trim().parse::<i64>().is_ok_and(|n| n == *i)
        }
        (Some(Value::Boolean(x)), Some(Value::String(s)))
        | (Some(Value::String(s)), Some(Value::Boolean(x))) => {
            s.eq_ignore_ascii_case(if *x { "true" } else { "false" })
        }
        (Some(x), Some(y)) => x == y,
    }
}

fn compare(op: CmpOp, a: Option<&Value>, b: Option<&Value>) -> Result<bool, EvalError> {
    let order = match op {
        CmpOp::Eq => return Ok(equals(a, b)),
        CmpOp::Ne => return Ok(!equals(a, b)),
        _ => {
            let sym = op.symbol();
            let (Some(a), Some(b)) = (a, b) else {
                return Ok(false);
            };
            let (Some(a), Some(b)) = (scalar(sym, a)?, scalar(sym, b)?) else {
                return Ok(false);
            };
            ordering(sym, a, b)?
        }
    };
    Ok(match op {
        CmpOp::Lt => order == Ordering::Less,
        CmpOp::Le => order != Ordering::Greater,
        CmpOp::Gt => order == Ordering::Greater,
        _ => order != Ordering::Less,
    })
}

fn ordering(sym: &str, a: &Value, b: &Value) -> Result<Ordering, EvalError> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Integer(x), Value::Integer(y)) => Ok(x.cmp(y)),
        (Value::Integer(_), Value::String(_)) | (Value::String(_), Value::Integer(_)) => {
            match (as_int(a), as_int(b)) {
                (Some(x), Some(y)) => Ok(x.cmp(&y)),
                _ => Err(EvalError::new(format!(
                    "`{sym}` cannot compare {} with {}",
                    describe(a),
                    describe(b)
                ))),
            }
        }
        _ => Err(EvalError::new(format!(
            "`{sym}` compares text or integers only (got {} and {})",
            describe(a),
            describe(b)
        ))),
    }
}
