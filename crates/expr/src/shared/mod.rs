//! The functions that expressions and scripts share, written once against
//! plain attribute values: DN escaping and reading (`dn`), regular
//! expressions (`pattern`), dates (`dates`) and bit operations (`bits`).
//! The expression language reaches them through `Func::Shared`; scripts
//! through the same names, registered once per Rhai engine (`register`), so
//! a script and an expression always agree.
//!
//! Each function takes its arguments as `Option<&Value>` (`None` = absent)
//! and gives `Option<Value>`. An argument that is a literal pattern or date
//! format is compiled once, with the expression, into a [`Prepared`] value.

mod bits;
mod dates;
mod dn;
mod pattern;
mod register;

pub(crate) use register::register;

use crate::error::EvalError;
use crate::eval::{scalar, text};
use autosync_model::Value;
use chrono::format::Item;
use std::fmt;

/// The most arguments a shared function takes.
pub(crate) const MAX_ARGS: usize = 3;

/// A function of the shared library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shared {
    EscapeDn,
    EscapeDnComponent,
    UnescapeDn,
    DnComponent,
    DnComponentRev,
    RegexMatch,
    RegexReplace,
    RegexExtract,
    ParseDate,
    FormatDate,
    IsDate,
    AddDays,
    AddHours,
    AddMinutes,
    AddMonths,
    FromFiletime,
    ToFiletime,
    FromUnix,
    ToUnix,
    BitAnd,
    BitOr,
    BitXor,
    BitNot,
    SetBits,
    ClearBits,
    HasBits,
}

/// What a literal second argument is compiled into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Literal {
    /// A regular expression.
    Pattern,
    /// A date format (strftime specifiers).
    DateFormat,
}

/// A literal argument compiled when the expression compiled: the literal
/// itself (what the argument evaluates to) and its compiled form.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub literal: Value,
    pub form: Form,
}

#[derive(Clone)]
pub(crate) enum Form {
    Pattern(regex::Regex),
    DateFormat(Box<[Item<'static>]>),
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Prepared").field(&self.literal).finish()
    }
}

/// Two prepared arguments are the same when their literals are.
impl PartialEq for Prepared {
    fn eq(&self, other: &Self) -> bool {
        self.literal == other.literal
    }
}

/// Why a literal argument cannot be compiled: the message and a hint.
pub(crate) struct LiteralError {
    pub message: String,
    pub help: String,
}

impl Prepared {
    /// Compile the literal second argument of function `name`.
    pub(crate) fn compile(kind: Literal, name: &str, literal: &str) -> Result<Self, LiteralError> {
        let form = match kind {
            Literal::Pattern => Form::Pattern(pattern::compile_literal(name, literal)?),
            Literal::DateFormat => Form::DateFormat(dates::compile_format(name, literal)?),
        };
        Ok(Prepared {
            literal: Value::String(literal.to_owned()),
            form,
        })
    }
}

/// One call of a shared function.
pub(crate) struct Call<'a> {
    /// The function's name, for messages.
    pub name: &'static str,
    /// The arguments; `None` is absent.
    pub args: &'a [Option<&'a Value>],
    /// The second argument, compiled, when it was a literal.
    pub prepared: Option<&'a Prepared>,
}

impl<'a> Call<'a> {
    fn arg(&self, i: usize) -> Option<&'a Value> {
        self.args.get(i).copied().flatten()
    }
}

impl Shared {
    /// Which literal second argument is compiled with the expression.
    pub(crate) fn literal(self) -> Option<Literal> {
        match self {
            Shared::RegexMatch | Shared::RegexReplace | Shared::RegexExtract => {
                Some(Literal::Pattern)
            }
            Shared::ParseDate | Shared::FormatDate | Shared::IsDate => Some(Literal::DateFormat),
            _ => None,
        }
    }

    /// The compile-time check of a literal group of `regex_extract` against
    /// its literal pattern (group 3 of a pattern with two groups).
    pub(crate) fn check_group(
        self,
        name: &str,
        pattern: &Prepared,
        group: Option<&Value>,
    ) -> Result<(), EvalError> {
        match (self, &pattern.form) {
            (Shared::RegexExtract, Form::Pattern(re)) => {
                pattern::group(name, re, group).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Run the function.
    pub(crate) fn call(self, c: &Call<'_>) -> Result<Option<Value>, EvalError> {
        match self {
            Shared::EscapeDn => dn::escape_dn(c),
            Shared::EscapeDnComponent => dn::escape_dn_component(c),
            Shared::UnescapeDn => dn::unescape_dn(c),
            Shared::DnComponent => dn::dn_component(c, false),
            Shared::DnComponentRev => dn::dn_component(c, true),
            Shared::RegexMatch => pattern::regex_match(c),
            Shared::RegexReplace => pattern::regex_replace(c),
            Shared::RegexExtract => pattern::regex_extract(c),
            Shared::ParseDate => dates::parse_date(c),
            Shared::FormatDate => dates::format_date(c),
            Shared::IsDate => dates::is_date(c),
            Shared::AddDays => dates::add(c, dates::Unit::Days),
            Shared::AddHours => dates::add(c, dates::Unit::Hours),
            Shared::AddMinutes => dates::add(c, dates::Unit::Minutes),
            Shared::AddMonths => dates::add(c, dates::Unit::Months),
            Shared::FromFiletime => dates::from_filetime(c),
            Shared::ToFiletime => dates::to_filetime(c),
            Shared::FromUnix => dates::from_unix(c),
            Shared::ToUnix => dates::to_unix(c),
            Shared::BitAnd => bits::binary(c, |a, b| a & b),
            Shared::BitOr => bits::binary(c, |a, b| a | b),
            Shared::BitXor => bits::binary(c, |a, b| a ^ b),
            Shared::SetBits => bits::binary(c, |value, mask| value | mask),
            Shared::ClearBits => bits::binary(c, |value, mask| value & !mask),
            Shared::BitNot => bits::not(c),
            Shared::HasBits => bits::has_bits(c),
        }
    }
}

/// Apply `f` to a value, or to each value of a multi-value (leaving out
/// the values for which it gives absent). Absent in, absent out.
fn each(
    v: Option<&Value>,
    f: impl Fn(&Value) -> Result<Option<Value>, EvalError>,
) -> Result<Option<Value>, EvalError> {
    match v {
        None => Ok(None),
        Some(Value::Multi(vs)) => {
            let mut out = Vec::with_capacity(vs.len());
            for v in vs {
                if let Some(r) = f(v)? {
                    out.push(r);
                }
            }
            Ok(Some(Value::Multi(out)))
        }
        Some(v) => f(v),
    }
}

/// An optional text argument (a separator, a replacement): absent is "".
fn opt_text(name: &str, v: Option<&Value>) -> Result<String, EvalError> {
    match v {
        None => Ok(String::new()),
        Some(v) => Ok(text(name, v)?.into_owned()),
    }
}

/// An integer argument: an integer, or text holding a decimal one (blanks
/// allowed, as `to_int` reads it). Absent and blank text are `None`.
fn integer(name: &str, v: Option<&Value>) -> Result<Option<i64>, EvalError> {
    let Some(v) = v else { return Ok(None) };
    match scalar(name, v)? {
        None => Ok(None),
        Some(Value::Integer(i)) => Ok(Some(*i)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| EvalError::in_function(name, "expects an integer", v)),
        Some(other) => Err(EvalError::in_function(name, "expects an integer", other)),
    }
}

fn boolean(b: bool) -> Option<Value> {
    Some(Value::Boolean(b))
}
