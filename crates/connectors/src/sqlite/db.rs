//! SQLite plumbing of the connector: opening the database, quoting
//! identifiers, mapping SQLite errors to whole-step or per-row failures,
//! reading the table's schema, converting values both ways.

use super::config::{DeltaConfig, SqliteSettings};
use autosync_connector::{ConnectorError, ConnectorErrorKind};
use autosync_model::Value;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::time::Duration;

/// A quoted identifier: `"` around, inner `"` doubled.
pub fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How an SQLite error stops a step.
pub fn step_error(e: &rusqlite::Error, what: &str) -> ConnectorError {
    let kind = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ConnectorErrorKind::Deadlocked,
        Some(ErrorCode::CannotOpen) => ConnectorErrorKind::ServerDown,
        Some(ErrorCode::SystemIoFailure | ErrorCode::FileLockingProtocolFailed) => {
            ConnectorErrorKind::Connectivity
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => ConnectorErrorKind::Data,
        Some(
            ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::AuthorizationForStatementDenied,
        ) => ConnectorErrorKind::Configuration,
        _ => ConnectorErrorKind::Other,
    };
    ConnectorError::new(kind, format!("{what}: {e}"))
}

/// A per-row rejection (error type), or `None` when the error stops the step.
pub fn row_rejection(e: &rusqlite::Error) -> Option<&'static str> {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => Some("constraint-violation"),
        Some(ErrorCode::TypeMismatch) => Some("type-mismatch"),
        Some(ErrorCode::TooBig) => Some("value-too-large"),
        _ => None,
    }
}

/// Open the database (creating it and the table only with `create_table`).
pub fn open(s: &SqliteSettings) -> Result<Connection, ConnectorError> {
    if s.create_table {
        return open_creating(s);
    }
    if !s.path.is_file() {
        return Err(ConnectorError::new(
            ConnectorErrorKind::ServerDown,
            format!("database file {} does not exist", s.path.display()),
        ));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let what = format!("cannot open {}", s.path.display());
    let conn = Connection::open_with_flags(&s.path, flags).map_err(|e| step_error(&e, &what))?;
    conn.busy_timeout(Duration::from_millis(s.busy_timeout_ms))
        .map_err(|e| step_error(&e, &what))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Open or create the database, and create the table when missing.
fn open_creating(s: &SqliteSettings) -> Result<Connection, ConnectorError> {
    let what = format!("cannot create {}", s.path.display());
    if let Some(parent) = s.path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            ConnectorError::new(ConnectorErrorKind::Configuration, format!("{what}: {e}"))
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&s.path, flags).map_err(|e| step_error(&e, &what))?;
    conn.busy_timeout(Duration::from_millis(s.busy_timeout_ms))
        .map_err(|e| step_error(&e, &what))?;
    conn.set_prepared_statement_cache_capacity(64);
    let mut cols = vec![format!("{} TEXT PRIMARY KEY NOT NULL", q(&s.anchor_column))];
    for c in s.columns.iter().flatten() {
        if c != &s.anchor_column {
            cols.push(q(c));
        }
    }
    if let Some(c) = &s.types.type_column {
        cols.push(q(c));
    }
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        q(&s.table),
        cols.join(", ")
    );
    conn.execute_batch(&ddl)
        .map_err(|e| step_error(&e, &format!("cannot create table `{}`", s.table)))?;
    Ok(conn)
}

/// What the connector knows of its table.
#[derive(Clone, Debug)]
pub struct Schema {
    /// The columns read on import and writable on export (anchor included,
    /// object type column excluded).
    pub columns: Vec<String>,
    /// Whether rows have a rowid (not a WITHOUT ROWID table).
    pub rowid: bool,
}

/// The names of a table's columns (none when the table does not exist).
pub fn table_columns(conn: &Connection, table: &str) -> Result<Vec<String>, ConnectorError> {
    let what = format!("cannot read the columns of table `{table}`");
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(|e| step_error(&e, &what))?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| step_error(&e, &what))?;
    Ok(names)
}

fn config_error(message: String) -> ConnectorError {
    ConnectorError::new(ConnectorErrorKind::Configuration, message)
}

impl Schema {
    /// Read and check the table, the configured columns and the delta source.
    pub fn read(conn: &Connection, s: &SqliteSettings) -> Result<Schema, ConnectorError> {
        let all = table_columns(conn, &s.table)?;
        if all.is_empty() {
            return Err(config_error(format!(
                "table `{}` does not exist in {}",
                s.table,
                s.path.display()
            )));
        }
        let check = |col: &str, what: &str| {
            if all.iter().any(|c| c == col) {
                Ok(())
            } else {
                Err(config_error(format!(
                    "{what} `{col}` is not a column of table `{}` (columns: {})",
                    s.table,
                    all.join(", ")
                )))
            }
        };
        check(&s.anchor_column, "anchor_column")?;
        if let Some(c) = &s.types.type_column {
            check(c, "object_type_column")?;
        }
        let delta_column = match &s.delta {
            Some(DeltaConfig::Column { column }) => {
                check(column, "delta column")?;
                Some(column.as_str())
            }
            Some(DeltaConfig::Changelog {
                table,
                sequence_column,
                anchor_column,
                operation_column,
            }) => {
                let log = table_columns(conn, table)?;
                let wanted = [
                    Some(sequence_column),
                    anchor_column.as_ref(),
                    operation_column.as_ref(),
                ];
                let log_anchor = anchor_column.as_ref().unwrap_or(&s.anchor_column);
                for col in wanted.into_iter().flatten().chain([log_anchor]) {
                    if !log.iter().any(|c| c == col) {
                        return Err(config_error(format!(
                            "changelog table `{table}` has no column `{col}` (columns: {})",
                            log.join(", ")
                        )));
                    }
                }
                None
            }
            None => None,
        };
        let mut columns: Vec<String> = match &s.columns {
            Some(list) => {
                for c in list {
                    check(c, "column")?;
                }
                list.clone()
            }
            None => all
                .iter()
                .filter(|c| Some(c.as_str()) != delta_column)
                .cloned()
                .collect(),
        };
        if !columns.contains(&s.anchor_column) {
            columns.insert(0, s.anchor_column.clone());
        }
        columns.retain(|c| Some(c) != s.types.type_column.as_ref());
        let rowid = conn
            .prepare(&format!("SELECT _rowid_ FROM {} LIMIT 0", q(&s.table)))
            .is_ok();
        Ok(Schema { columns, rowid })
    }
}

/// An SQLite value as an attribute value; `None` for NULL. Text that is not
/// UTF-8 is an error (the caller makes it a record error).
pub fn to_value(v: ValueRef<'_>) -> Result<Option<Value>, std::str::Utf8Error> {
    Ok(match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(Value::Integer(i)),
        ValueRef::Real(f) => Some(Value::String(f.to_string())),
        ValueRef::Text(t) => Some(Value::String(std::str::from_utf8(t)?.to_owned())),
        ValueRef::Blob(b) => Some(Value::Binary(b.to_vec())),
    })
}

/// An attribute value as an SQLite value: booleans as 0/1, multi-valued
/// attributes as JSON text.
pub fn to_sql(v: Option<&Value>) -> SqlValue {
    match v {
        None => SqlValue::Null,
        Some(Value::String(s)) => SqlValue::Text(s.clone()),
        Some(Value::Integer(i)) => SqlValue::Integer(*i),
        Some(Value::Boolean(b)) => SqlValue::Integer(i64::from(*b)),
        Some(Value::Binary(b)) => SqlValue::Blob(b.clone()),
        Some(m @ Value::Multi(_)) => SqlValue::Text(serde_json::to_string(m).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_should_be_quoted_with_inner_quotes_doubled() {
        assert_eq!(q("users"), "\"users\"");
        assert_eq!(q("we\"ird\"; DROP"), "\"we\"\"ird\"\"; DROP\"");
    }
}
