//! Dates. The attribute model has no date type, so a date is text in
//! RFC 3339, in UTC: `2024-03-01T09:30:00Z` (fractions of a second only
//! when there are some). Functions that take a date also read
//! `2024-03-01`, `2024-03-01 09:30[:00]` (both UTC) and RFC 3339 with any
//! offset. Formats are strftime specifiers (`%Y-%m-%d`), checked when the
//! expression compiles when they are literals. AD's FILETIME (100-ns
//! intervals since 1601-01-01 UTC; `0` and `9223372036854775807` mean
//! never) and Unix seconds convert both ways. Nothing reads the clock.

use super::{Call, Form, LiteralError, boolean, each, integer};
use crate::error::{EvalError, describe};
use crate::eval::text;
use autosync_model::Value;
use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{
    DateTime, FixedOffset, Months, NaiveDate, NaiveDateTime, SecondsFormat, TimeDelta, Utc,
};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01 (Unix's).
const FILETIME_EPOCH_OFFSET: i64 = 11_644_473_600;
/// FILETIME ticks per second.
const TICKS_PER_SECOND: i64 = 10_000_000;
/// The FILETIME AD writes for "never" (besides 0).
const FILETIME_NEVER: i64 = i64::MAX;

const FORMAT_HELP: &str = "formats use strftime specifiers: %Y year, %m month, %d day, %H hour, %M minute, %S second, %z offset, %% a percent sign (https://docs.rs/chrono/latest/chrono/format/strftime/)";

/// Compile a literal date format.
pub(super) fn compile_format(
    name: &str,
    format: &str,
) -> Result<Box<[Item<'static>]>, LiteralError> {
    parse_format(name, format).map_err(|e| LiteralError {
        message: e.message,
        help: FORMAT_HELP.to_owned(),
    })
}

fn parse_format(name: &str, format: &str) -> Result<Box<[Item<'static>]>, EvalError> {
    StrftimeItems::new(format)
        .parse_to_owned()
        .map(Vec::into_boxed_slice)
        .map_err(|e| EvalError::new(format!("{name}: invalid date format {format:?} ({e})")))
}

/// The format of the call (its second argument): compiled with the
/// expression, or now; `None` when absent.
fn format_of<'c>(c: &'c Call<'_>) -> Result<Option<Cow<'c, [Item<'static>]>>, EvalError> {
    if let Some(Form::DateFormat(items)) = c.prepared.map(|p| &p.form) {
        return Ok(Some(Cow::Borrowed(items)));
    }
    match c.arg(1) {
        None => Ok(None),
        Some(v) => Ok(Some(Cow::Owned(
            parse_format(c.name, &text(c.name, v)?)?.into_vec(),
        ))),
    }
}

/// A date as the value the functions give.
fn date_value(d: DateTime<Utc>) -> Value {
    Value::String(d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Read a date in one of the forms every date function accepts.
pub(super) fn read(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    // Years past 9999 (`+35357-07-01T00:00:00Z`), which RFC 3339 cannot
    // write but the functions give.
    if let Ok(d) = s.parse::<DateTime<FixedOffset>>() {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.fZ"] {
        if let Ok(d) = DateTime::parse_from_str(s, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, format) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// A date argument: absent or blank text is `None`; anything else must be
/// a date.
fn date(name: &str, v: &Value) -> Result<Option<DateTime<Utc>>, EvalError> {
    match v {
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => read(s).map(Some).ok_or_else(|| {
            EvalError::in_function(name, "expects a date such as \"2024-03-01T09:30:00Z\"", v)
        }),
        Value::Integer(_) => Err(EvalError::in_function(
            name,
            "expects a date, not a number (read numbers with from_unix or from_filetime)",
            v,
        )),
        other => Err(EvalError::in_function(name, "expects a date", other)),
    }
}

/// Parse `s` with a format: with an offset in the format it is honoured,
/// without one the time is UTC, without a time it is midnight.
fn parse_with(s: &str, items: &[Item<'static>]) -> Result<DateTime<Utc>, chrono::ParseError> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s.trim(), items.iter())?;
    if let Ok(d) = parsed.to_datetime() {
        return Ok(d.with_timezone(&Utc));
    }
    match parsed.to_naive_datetime_with_offset(0) {
        Ok(d) => Ok(d.and_utc()),
        Err(e) => match parsed.to_naive_date() {
            Ok(d) if parsed.hour_div_12().is_none() && parsed.minute().is_none() => {
                Ok(d.and_time(chrono::NaiveTime::MIN).and_utc())
            }
            _ => Err(e),
        },
    }
}

/// `parse_date(text [, format])`: the date the text holds.
pub(super) fn parse_date(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let format = format_of(c)?;
    if c.args.len() > 1 && format.is_none() {
        return Ok(None);
    }
    each(c.arg(0), |v| {
        let s = text(c.name, v)?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        let parsed = match &format {
            Some(items) => parse_with(&s, items).map_err(|e| {
                let format = c.arg(1).map(Value::to_text).unwrap_or_default();
                EvalError::new(format!(
                    "{}: {} is not a date in the format {format:?}: {e}",
                    c.name,
                    describe(v)
                ))
            })?,
            None => date(c.name, v)?
                .ok_or_else(|| EvalError::in_function(c.name, "expects a date", v))?,
        };
        Ok(Some(date_value(parsed)))
    })
}

/// `is_date(text [, format])`: whether `parse_date` would succeed.
pub(super) fn is_date(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let format = format_of(c)?;
    let Some(v) = c.arg(0) else {
        return Ok(boolean(false));
    };
    let ok = match (v, &format) {
        (Value::String(s), Some(items)) => parse_with(s, items).is_ok(),
        (Value::String(s), None) if c.args.len() < 2 => read(s).is_some(),
        _ => false,
    };
    Ok(boolean(ok))
}

/// `format_date(date, format)`: the date, in UTC, as text.
pub(super) fn format_date(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let Some(items) = format_of(c)? else {
        return Ok(None);
    };
    each(c.arg(0), |v| {
        let Some(d) = date(c.name, v)? else {
            return Ok(None);
        };
        let mut out = String::new();
        write!(out, "{}", d.format_with_items(items.iter())).map_err(|_| {
            EvalError::in_function(c.name, "cannot write this date in that format", v)
        })?;
        Ok(Some(Value::String(out)))
    })
}

/// The units of the `add_*` functions.
#[derive(Clone, Copy)]
pub(super) enum Unit {
    Days,
    Hours,
    Minutes,
    Months,
}

/// `add_days(date, n)` and the like; `n` may be negative.
pub(super) fn add(c: &Call<'_>, unit: Unit) -> Result<Option<Value>, EvalError> {
    let Some(n) = integer(c.name, c.arg(1))? else {
        return Ok(None);
    };
    each(c.arg(0), |v| {
        let Some(d) = date(c.name, v)? else {
            return Ok(None);
        };
        let shifted = match unit {
            Unit::Days => TimeDelta::try_days(n).and_then(|t| d.checked_add_signed(t)),
            Unit::Hours => TimeDelta::try_hours(n).and_then(|t| d.checked_add_signed(t)),
            Unit::Minutes => TimeDelta::try_minutes(n).and_then(|t| d.checked_add_signed(t)),
            Unit::Months => u32::try_from(n.unsigned_abs()).ok().and_then(|m| {
                if n < 0 {
                    d.checked_sub_months(Months::new(m))
                } else {
                    d.checked_add_months(Months::new(m))
                }
            }),
        };
        shifted.map(|d| Some(date_value(d))).ok_or_else(|| {
            EvalError::in_function(c.name, &format!("adding {n} gives a date out of range"), v)
        })
    })
}

/// `from_filetime(n)`: the date of a FILETIME; absent for 0 and
/// 9223372036854775807 ("never").
pub(super) fn from_filetime(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let Some(ticks) = integer(c.name, c.arg(0))? else {
        return Ok(None);
    };
    if ticks == 0 || ticks == FILETIME_NEVER {
        return Ok(None);
    }
    if ticks < 0 {
        return Err(EvalError::in_function(
            c.name,
            "a FILETIME cannot be negative",
            &Value::Integer(ticks),
        ));
    }
    let seconds = ticks / TICKS_PER_SECOND - FILETIME_EPOCH_OFFSET;
    let nanos = u32::try_from((ticks % TICKS_PER_SECOND) * 100).unwrap_or(0);
    DateTime::from_timestamp(seconds, nanos)
        .map(|d| Some(date_value(d)))
        .ok_or_else(|| {
            EvalError::in_function(
                c.name,
                "the FILETIME is out of range",
                &Value::Integer(ticks),
            )
        })
}

/// `to_filetime(date)`: the FILETIME of a date.
pub(super) fn to_filetime(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    each(c.arg(0), |v| {
        let Some(d) = date(c.name, v)? else {
            return Ok(None);
        };
        let ticks = d
            .timestamp()
            .checked_add(FILETIME_EPOCH_OFFSET)
            .filter(|s| *s >= 0)
            .ok_or_else(|| {
                EvalError::in_function(c.name, "FILETIME cannot hold dates before 1601", v)
            })?
            .checked_mul(TICKS_PER_SECOND)
            .and_then(|t| {
                t.checked_add(i64::from(d.timestamp_subsec_nanos().min(999_999_999) / 100))
            })
            .ok_or_else(|| {
                EvalError::in_function(c.name, "FILETIME cannot hold dates after 30828", v)
            })?;
        Ok(Some(Value::Integer(ticks)))
    })
}

/// `from_unix(seconds)`: the date that many seconds after 1970-01-01 UTC.
pub(super) fn from_unix(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    let Some(seconds) = integer(c.name, c.arg(0))? else {
        return Ok(None);
    };
    DateTime::from_timestamp(seconds, 0)
        .map(|d| Some(date_value(d)))
        .ok_or_else(|| {
            EvalError::in_function(c.name, "the date is out of range", &Value::Integer(seconds))
        })
}

/// `to_unix(date)`: whole seconds since 1970-01-01 UTC.
pub(super) fn to_unix(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    each(c.arg(0), |v| {
        Ok(date(c.name, v)?.map(|d| Value::Integer(d.timestamp())))
    })
}
