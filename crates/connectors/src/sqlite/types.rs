//! Column types of the SQLite connector: how each value type is stored in a
//! column and read back, so that what an export writes reads back equal on
//! the confirming import (the engine's comparison,
//! `autosync_model::compare`) and never loops.
//!
//! A column's type comes from its declared type (SQLite keeps the name a
//! table was created with): `BOOL...` is boolean (0/1), `JSON` holds any
//! value as JSON text (a multi-valued one as an array), and otherwise
//! SQLite's own affinity rules: `INT` integer, `CHAR`/`CLOB`/`TEXT` text,
//! `BLOB` binary, `REAL`/`FLOA`/`DOUB` real, no type at all: anything,
//! anything else numeric. The `column_types` setting overrides what a
//! column holds for a table whose declared types do not say (`enabled
//! INTEGER` holding 0/1); what SQLite itself does to a stored value (its
//! affinity) still comes from the declared type.
//!
//! Every value is checked before it is written: one that the column would
//! change (`"00123"` in an INTEGER column becomes 123, a boolean in an
//! INTEGER column reads back as 1, a list in a column holding one value)
//! fails its row with `value-not-representable`, naming the column and
//! what to declare, rather than being stored altered and exported again
//! on every cycle.

use autosync_model::compare::same_value;
use autosync_model::{Value, ValueOrder};
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde::Deserialize;

/// What a column holds, as the connector converts values for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// TEXT affinity: numbers are stored as their text.
    Text,
    /// INTEGER affinity.
    Integer,
    /// REAL affinity.
    Real,
    /// NUMERIC affinity (e.g. `DECIMAL`, `DATE`): like integer.
    #[serde(skip)]
    Numeric,
    /// Declared `BOOLEAN`: 0/1, read back as booleans.
    Boolean,
    /// Declared `BLOB`: stored as given.
    Binary,
    /// No declared type: stored as given.
    #[serde(skip)]
    Any,
    /// Declared `JSON`: any value as JSON text (lists as arrays, binary as
    /// `{"base64": ...}`).
    Json,
}

impl ColumnType {
    /// The type of a column declared as `declared` (SQLite's affinity rules,
    /// plus `BOOL` and `JSON`).
    pub fn from_declared(declared: &str) -> ColumnType {
        let d = declared.to_ascii_uppercase();
        let has = |s: &str| d.contains(s);
        if has("BOOL") {
            ColumnType::Boolean
        } else if has("JSON") {
            ColumnType::Json
        } else if has("INT") {
            ColumnType::Integer
        } else if has("CHAR") || has("CLOB") || has("TEXT") {
            ColumnType::Text
        } else if has("BLOB") {
            ColumnType::Binary
        } else if d.trim().is_empty() {
            ColumnType::Any
        } else if has("REAL") || has("FLOA") || has("DOUB") {
            ColumnType::Real
        } else {
            ColumnType::Numeric
        }
    }

    /// SQLite's affinity of a column declared as `declared`: what SQLite
    /// itself does to a value stored there (`Text`, `Integer`, `Real`,
    /// `Numeric`, or `Any` for BLOB affinity: stored as given).
    pub fn affinity(declared: &str) -> ColumnType {
        match ColumnType::from_declared(declared) {
            ColumnType::Boolean | ColumnType::Json => ColumnType::Numeric,
            ColumnType::Binary => ColumnType::Any,
            other => other,
        }
    }

    /// The declared type `create_table` gives a column of this type.
    pub fn declared(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::Real => "REAL",
            ColumnType::Numeric => "NUMERIC",
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Binary => "BLOB",
            ColumnType::Any => "",
            ColumnType::Json => "JSON",
        }
    }

    /// The setting's name for this type, for messages.
    fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Real => "real",
            ColumnType::Numeric => "numeric",
            ColumnType::Boolean => "boolean",
            ColumnType::Binary => "binary",
            ColumnType::Any => "untyped",
            ColumnType::Json => "json",
        }
    }
}

/// How the connector treats one column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// What it holds: its declared type, or its `column_types` entry.
    pub holds: ColumnType,
    /// What SQLite does to values stored in it (from the declared type).
    pub affinity: ColumnType,
}

impl Column {
    /// A column declared as `declared`, with `column_types`' entry if any.
    pub fn new(declared: &str, set: Option<ColumnType>) -> Column {
        Column {
            holds: set.unwrap_or_else(|| ColumnType::from_declared(declared)),
            affinity: ColumnType::affinity(declared),
        }
    }
}

/// A stored SQLite value as an attribute value of a column of type `t`;
/// `None` for NULL. Text that is not UTF-8 is an error (the caller makes it
/// a record error).
pub fn read(v: ValueRef<'_>, t: ColumnType) -> Result<Option<Value>, std::str::Utf8Error> {
    Ok(match (v, t) {
        (ValueRef::Null, _) => None,
        (ValueRef::Integer(i @ (0 | 1)), ColumnType::Boolean) => Some(Value::Boolean(i == 1)),
        (ValueRef::Text(b), ColumnType::Json) => {
            let text = std::str::from_utf8(b)?;
            // JSON null is no value; text that is not JSON (written by
            // something else) is kept as it is.
            match serde_json::from_str::<Option<Value>>(text) {
                Ok(v) => v,
                Err(_) => Some(Value::String(text.to_owned())),
            }
        }
        (ValueRef::Integer(i), _) => Some(Value::Integer(i)),
        (ValueRef::Real(f), _) => Some(Value::String(f.to_string())),
        (ValueRef::Text(t), _) => Some(Value::String(std::str::from_utf8(t)?.to_owned())),
        (ValueRef::Blob(b), _) => Some(Value::Binary(b.to_vec())),
    })
}

/// Why a value cannot be written to a column: (error type, detail).
pub type Unrepresentable = (&'static str, String);

/// The SQLite value to write for `v` into column `column`, checked to
/// read back equal.
pub fn write(column: &str, c: Column, v: Option<&Value>) -> Result<SqlValue, Unrepresentable> {
    let Some(v) = v else {
        return Ok(SqlValue::Null);
    };
    if let Some(plain) = plain(c, v) {
        return Ok(plain);
    }
    checked(column, c, v)
}

/// [`write`] for any value: bound, stored as the column's affinity makes
/// it, and compared with what reads back.
fn checked(column: &str, c: Column, v: &Value) -> Result<SqlValue, Unrepresentable> {
    let t = c.holds;
    let bound = bind(column, t, v)?;
    let stored = stored(c.affinity, bound);
    if stored_as_given(v, &stored, t) {
        return Ok(stored);
    }
    let back = read(ValueRef::from(&stored), t).ok().flatten();
    if same_value(Some(v), back.as_ref(), ValueOrder::Unordered) {
        return Ok(stored);
    }
    let hint = match (v, t) {
        (Value::Boolean(_), _) => format!(
            "declare the column BOOLEAN, or set column_types = {{ {column} = \"boolean\" }}"
        ),
        (_, ColumnType::Boolean) => {
            "a boolean column reads 0 and 1 as false and true: export booleans to it".to_owned()
        }
        _ => format!(
            "declare the column TEXT (or set column_types = {{ {column} = \"text\" }}) to keep the value as it is"
        ),
    };
    Err((
        "value-not-representable",
        format!(
            "column `{column}` ({}) cannot hold {}: it would read back as {}; {hint}",
            t.name(),
            shown(Some(v)),
            shown(back.as_ref()),
        ),
    ))
}

/// What [`write`] gives in the cases that surely read back as written,
/// without binding, storing and comparing: a string into a column that
/// holds and stores text (or anything), an integer into one that holds and
/// stores integers (or anything). Every value of an export goes through
/// here; `None` for the rest.
fn plain(c: Column, v: &Value) -> Option<SqlValue> {
    use ColumnType::{Any, Integer, Numeric, Text};
    match v {
        Value::String(s) if matches!(c.holds, Text | Any) && matches!(c.affinity, Text | Any) => {
            Some(SqlValue::Text(s.clone()))
        }
        Value::Integer(i)
            if matches!(c.holds, Integer | Numeric | Any)
                && matches!(c.affinity, Integer | Numeric | Any) =>
        {
            Some(SqlValue::Integer(*i))
        }
        _ => None,
    }
}

/// Whether `stored` plainly reads back as `v` (the usual case, checked
/// without building the value read back).
fn stored_as_given(v: &Value, stored: &SqlValue, t: ColumnType) -> bool {
    match (v, stored) {
        (Value::String(s), SqlValue::Text(x)) => t != ColumnType::Json && s == x,
        (Value::Integer(i), SqlValue::Integer(x)) => {
            i == x && !(t == ColumnType::Boolean && matches!(i, 0 | 1))
        }
        (Value::Binary(b), SqlValue::Blob(x)) => b == x,
        _ => false,
    }
}

/// A value for a message: its JSON form, cut short.
fn shown(v: Option<&Value>) -> String {
    let text = match v {
        None => "nothing".to_owned(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    };
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// The value bound for `v` before the column's affinity applies.
fn bind(column: &str, t: ColumnType, v: &Value) -> Result<SqlValue, Unrepresentable> {
    if t == ColumnType::Json {
        return Ok(match v {
            Value::Multi(vs) if vs.is_empty() => SqlValue::Null,
            other => SqlValue::Text(serde_json::to_string(other).unwrap_or_default()),
        });
    }
    Ok(match v {
        Value::Multi(vs) => {
            let mut values = vs.iter().filter(|x| !x.is_empty());
            let first = values.next();
            match first {
                None => SqlValue::Null,
                Some(one)
                    if values.all(|x| same_value(Some(x), Some(one), ValueOrder::Unordered)) =>
                {
                    bind(column, t, one)?
                }
                Some(_) => {
                    return Err((
                        "value-not-representable",
                        format!(
                            "column `{column}` holds one value, and this value has several; declare the column JSON (or set column_types = {{ {column} = \"json\" }}) to hold them all"
                        ),
                    ));
                }
            }
        }
        Value::String(s) if t == ColumnType::Boolean && matches!(s.as_str(), "true" | "false") => {
            SqlValue::Integer(i64::from(s == "true"))
        }
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Integer(i) if t == ColumnType::Text => SqlValue::Text(i.to_string()),
        Value::Integer(i) => SqlValue::Integer(*i),
        Value::Boolean(b) => match t {
            ColumnType::Boolean | ColumnType::Integer | ColumnType::Numeric | ColumnType::Real => {
                SqlValue::Integer(i64::from(*b))
            }
            _ => SqlValue::Text(b.to_string()),
        },
        Value::Binary(b) => SqlValue::Blob(b.clone()),
        // The engine turns references into the connected system's anchors
        // or DNs before an export: one reaching here is a defect upstream.
        Value::Reference(id) => {
            return Err((
                "value-not-representable",
                format!(
                    "column `{column}` was given a reference to metaverse object {id}; declare the attribute a reference of its object type so that it is exported as an anchor or DN"
                ),
            ));
        }
    })
}

/// What SQLite stores for `v` in a column of affinity `affinity`.
pub(super) fn stored(affinity: ColumnType, v: SqlValue) -> SqlValue {
    match (affinity, v) {
        (ColumnType::Text, SqlValue::Integer(i)) => SqlValue::Text(i.to_string()),
        (ColumnType::Text, SqlValue::Real(f)) => SqlValue::Text(f.to_string()),
        (ColumnType::Integer | ColumnType::Numeric, SqlValue::Text(s)) => {
            numeric(&s, true).unwrap_or(SqlValue::Text(s))
        }
        (ColumnType::Real, SqlValue::Text(s)) => numeric(&s, false).unwrap_or(SqlValue::Text(s)),
        (ColumnType::Real, SqlValue::Integer(i)) => SqlValue::Real(i as f64),
        (_, v) => v,
    }
}

/// The number SQLite makes of text stored in a column of numeric affinity
/// (a well-formed integer or real literal, spaces around allowed); `None`
/// when it keeps the text. A real with no fractional part becomes an
/// integer when `integral`.
fn numeric(text: &str, integral: bool) -> Option<SqlValue> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let literal = body
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !literal {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(if integral {
            SqlValue::Integer(i)
        } else {
            SqlValue::Real(i as f64)
        });
    }
    let f: f64 = t.parse().ok()?;
    if integral && f.fract() == 0.0 && f.abs() < 9.2e18 {
        return Some(SqlValue::Integer(f as i64));
    }
    Some(SqlValue::Real(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column declared with type `t`'s own name.
    fn col(t: ColumnType) -> Column {
        Column::new(t.declared(), None)
    }

    fn round_trip(t: ColumnType, v: Value) -> Result<Option<Value>, Unrepresentable> {
        let stored = write("c", col(t), Some(&v))?;
        Ok(read(ValueRef::from(&stored), t).unwrap())
    }

    #[test]
    fn the_plain_cases_should_write_what_the_checked_path_writes() {
        let types = [
            ColumnType::Text,
            ColumnType::Integer,
            ColumnType::Real,
            ColumnType::Numeric,
            ColumnType::Boolean,
            ColumnType::Binary,
            ColumnType::Any,
            ColumnType::Json,
        ];
        let values = [
            Value::from("text"),
            Value::from("00123"),
            Value::from("42"),
            Value::from(" 7 "),
            Value::from("1.50"),
            Value::from("true"),
            Value::from(""),
            Value::Integer(0),
            Value::Integer(1),
            Value::Integer(-42),
            Value::Integer(i64::MAX),
        ];
        let mut plain_cases = 0;
        for declared in types {
            for set in types.iter().copied().map(Some).chain([None]) {
                let c = Column::new(declared.declared(), set);
                for v in &values {
                    if let Some(fast) = plain(c, v) {
                        plain_cases += 1;
                        assert_eq!(
                            Ok(fast),
                            checked("c", c, v),
                            "{c:?} {v:?}: the plain case differs from the checked one"
                        );
                    }
                }
            }
        }
        assert!(plain_cases > 50, "only {plain_cases} plain cases");
    }

    #[test]
    fn declared_types_should_follow_sqlite_affinity_plus_boolean_and_json() {
        for (declared, t) in [
            ("BOOLEAN", ColumnType::Boolean),
            ("bool", ColumnType::Boolean),
            ("JSON", ColumnType::Json),
            ("BIGINT", ColumnType::Integer),
            ("VARCHAR(20)", ColumnType::Text),
            ("BLOB", ColumnType::Binary),
            ("", ColumnType::Any),
            ("DOUBLE PRECISION", ColumnType::Real),
            ("DECIMAL(10,2)", ColumnType::Numeric),
        ] {
            assert_eq!(ColumnType::from_declared(declared), t, "{declared}");
        }
    }

    #[test]
    fn booleans_should_be_stored_as_0_or_1_and_read_back_as_booleans() {
        let stored = write("c", col(ColumnType::Boolean), Some(&Value::Boolean(true))).unwrap();
        assert_eq!(stored, SqlValue::Integer(1));
        assert_eq!(
            round_trip(ColumnType::Boolean, Value::Boolean(false)).unwrap(),
            Some(Value::Boolean(false))
        );
    }

    #[test]
    fn a_boolean_in_a_text_column_should_be_stored_as_its_text() {
        let stored = write("c", col(ColumnType::Text), Some(&Value::Boolean(true))).unwrap();
        assert_eq!(stored, SqlValue::Text("true".into()));
    }

    #[test]
    fn a_boolean_in_an_integer_column_should_be_refused_with_what_to_declare() {
        let (kind, detail) = write(
            "enabled",
            col(ColumnType::Integer),
            Some(&Value::Boolean(true)),
        )
        .unwrap_err();
        assert_eq!(kind, "value-not-representable");
        assert!(
            detail.contains("column_types = { enabled = \"boolean\" }"),
            "{detail}"
        );
    }

    #[test]
    fn a_leading_zero_in_a_numeric_column_should_be_refused_not_stored_as_a_number() {
        let err = write("id", col(ColumnType::Integer), Some(&Value::from("00123"))).unwrap_err();
        assert!(err.1.contains("would read back as 123"), "{}", err.1);
        assert_eq!(
            round_trip(ColumnType::Integer, Value::from("42")).unwrap(),
            Some(Value::Integer(42))
        );
        assert_eq!(
            round_trip(ColumnType::Integer, Value::from("n/a")).unwrap(),
            Some(Value::from("n/a"))
        );
        assert!(write("x", col(ColumnType::Real), Some(&Value::from("1.50"))).is_err());
    }

    #[test]
    fn lists_should_be_json_arrays_in_a_json_column_and_refused_elsewhere() {
        let list = Value::Multi(vec![Value::from("a"), Value::Integer(2)]);
        assert_eq!(
            round_trip(ColumnType::Json, list.clone()).unwrap(),
            Some(list.clone())
        );
        assert_eq!(
            round_trip(ColumnType::Json, Value::Multi(vec![])).unwrap(),
            None
        );
        let err = write("tags", col(ColumnType::Text), Some(&list)).unwrap_err();
        assert!(
            err.1.contains("column_types = { tags = \"json\" }"),
            "{}",
            err.1
        );
        let one = Value::Multi(vec![Value::from("a")]);
        assert_eq!(
            round_trip(ColumnType::Text, one).unwrap(),
            Some(Value::from("a"))
        );
    }

    #[test]
    fn a_text_override_on_an_integer_column_should_still_refuse_what_sqlite_would_alter() {
        let c = Column::new("INTEGER", Some(ColumnType::Text));
        assert!(write("id", c, Some(&Value::from("00123"))).is_err());
        let untyped = Column::new("", Some(ColumnType::Integer));
        assert_eq!(
            write("id", untyped, Some(&Value::from("00123"))).unwrap(),
            SqlValue::Text("00123".into())
        );
    }

    #[test]
    fn text_that_is_not_json_in_a_json_column_should_be_kept_as_text() {
        let v = read(ValueRef::Text(b"plain words"), ColumnType::Json).unwrap();
        assert_eq!(v, Some(Value::from("plain words")));
    }
}
