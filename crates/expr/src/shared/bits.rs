//! Bit operations on integers, for flag attributes such as AD's
//! `userAccountControl` (`set_bits(uac, 0x2)` disables an account,
//! `has_bits(uac, 0x2)` tests it). Integers given as text (a CSV column)
//! are read as `to_int` reads them.

use super::{Call, boolean, integer};
use crate::error::EvalError;
use autosync_model::Value;

/// A function of two integers; absent when either is absent.
pub(super) fn binary(
    c: &Call<'_>,
    op: impl Fn(i64, i64) -> i64,
) -> Result<Option<Value>, EvalError> {
    let a = integer(c.name, c.arg(0))?;
    let b = integer(c.name, c.arg(1))?;
    Ok(a.zip(b).map(|(a, b)| Value::Integer(op(a, b))))
}

/// `bit_not(n)`: every bit flipped.
pub(super) fn not(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    Ok(integer(c.name, c.arg(0))?.map(|n| Value::Integer(!n)))
}

/// `has_bits(value, mask)`: whether every bit of `mask` is set in `value`;
/// `false` when either is absent.
pub(super) fn has_bits(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let value = integer(c.name, c.arg(0))?;
    let mask = integer(c.name, c.arg(1))?;
    Ok(boolean(
        value
            .zip(mask)
            .is_some_and(|(value, mask)| value & mask == mask),
    ))
}
