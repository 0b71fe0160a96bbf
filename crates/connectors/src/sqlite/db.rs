//! SQLite plumbing of the connector: opening the database, quoting
//! identifiers, mapping SQLite errors to whole-step or per-row failures,
//! reading the table's schema (its columns and their types).

use super::config::{DeltaConfig, SqliteSettings};
use super::types::Column;
use autosync_connector::{ConnectorError, ConnectorErrorKind};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};
use std::path::Path;
use std::time::Duration;

/// A quoted identifier: `"` around, inner `"` doubled.
pub fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How an SQLite error on the database of `s` stops a step: the message
/// names the file. A lock another process held past `busy_timeout_ms`
/// says so (the SQLite text alone, "database is locked", named neither
/// the file nor the reason); [`in_step`] adds what the step does then.
pub fn step_error(e: &rusqlite::Error, s: &SqliteSettings, what: &str) -> ConnectorError {
    file_error(e, &s.path, s.busy_timeout_ms, what)
}

/// [`step_error`] for a statement on the database file `path`, which
/// waits `busy_ms` for a lock.
pub fn file_error(e: &rusqlite::Error, path: &Path, busy_ms: u64, what: &str) -> ConnectorError {
    let kind = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            return ConnectorError::new(
                ConnectorErrorKind::Deadlocked,
                format!(
                    "database file {} is locked by another process (busy: still locked after \
                     busy_timeout_ms = {busy_ms} ms): {what}",
                    path.display()
                ),
            );
        }
        Some(ErrorCode::CannotOpen) => ConnectorErrorKind::ServerDown,
        Some(ErrorCode::SystemIoFailure | ErrorCode::FileLockingProtocolFailed) => {
            ConnectorErrorKind::Connectivity
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => ConnectorErrorKind::Data,
        // A database made read-only, a file or folder without permission,
        // a full disk: the system is not there to write to, as when the
        // file is missing; retried until someone frees it.
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::DiskFull) => {
            ConnectorErrorKind::ServerDown
        }
        Some(ErrorCode::AuthorizationForStatementDenied) => ConnectorErrorKind::Configuration,
        _ => ConnectorErrorKind::Other,
    };
    ConnectorError::new(kind, format!("{}: {what}: {e}", path.display()))
}

/// A whole-step error of the `step` (`export`, `import`): a lock says
/// that the step stops there and is retried (the `stopped-deadlocked`
/// run, which the service retries by default); other errors are as they
/// are.
pub fn in_step(e: ConnectorError, step: &str) -> ConnectorError {
    match e.kind {
        ConnectorErrorKind::Deadlocked => ConnectorError::new(
            e.kind,
            format!("{}; the {step} stops and is retried later", e.message),
        ),
        _ => e,
    }
}

/// Refuse to write a database file whose mode gives no one write
/// permission (`chmod a-w`), as the file connectors refuse such a file:
/// SQLite refuses it to a user without permission, but root writes it.
pub fn check_writable(s: &SqliteSettings) -> Result<(), ConnectorError> {
    let meta = std::fs::metadata(&s.path).ok();
    let Some(why) = meta.as_ref().and_then(crate::file::no_write_bit) else {
        return Ok(());
    };
    Err(ConnectorError::new(
        ConnectorErrorKind::ServerDown,
        format!(
            "database file {} is read-only ({why}): nothing was written; the export stops and \
             is retried once the file is writable",
            s.path.display()
        ),
    ))
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
/// `existing` (see `Connector::expect_existing`): objects were exported to
/// the table or read from it before, so a database file or table missing
/// was lost, and is refused rather than made again empty.
pub fn open(s: &SqliteSettings, existing: u64) -> Result<Connection, ConnectorError> {
    if s.create_table {
        if existing > 0 {
            check_not_lost(s)?;
        }
        return open_creating(s);
    }
    if !s.path.is_file() {
        return Err(ConnectorError::new(
            ConnectorErrorKind::ServerDown,
            format!("database file {} does not exist", s.path.display()),
        ));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let what = "cannot open the database";
    let conn = Connection::open_with_flags(&s.path, flags).map_err(|e| step_error(&e, s, what))?;
    conn.busy_timeout(Duration::from_millis(s.busy_timeout_ms))
        .map_err(|e| step_error(&e, s, what))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// With `create_table`, refuse a database file or table that is missing
/// although objects were exported to it or read from it: made again empty,
/// the next import would take every object for deleted. One look at the
/// schema, on a connection that creates nothing.
fn check_not_lost(s: &SqliteSettings) -> Result<(), ConnectorError> {
    const AGAIN: &str =
        "If it was removed on purpose, `autosync cs delete` of this MA starts it again";
    let lost = |what: String, how: &str| {
        ConnectorError::new(
            ConnectorErrorKind::ServerDown,
            format!(
                "{what}, yet objects were exported to it or read from it: it was {how}; restore it (it is not made again empty: the next import would take every object for deleted). {AGAIN}"
            ),
        )
    };
    if !s.path.is_file() {
        let what = format!("database file {} does not exist", s.path.display());
        return Err(lost(what, "lost or moved"));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let what = "cannot open the database";
    let conn = Connection::open_with_flags(&s.path, flags).map_err(|e| step_error(&e, s, what))?;
    conn.busy_timeout(Duration::from_millis(s.busy_timeout_ms))
        .map_err(|e| step_error(&e, s, what))?;
    let tables = std::iter::once(("table", &s.table))
        .chain(s.child_tables.values().map(|c| ("child table", &c.table)));
    for (kind, table) in tables {
        if table_columns(&conn, s, table)?.is_empty() {
            let what = format!("{kind} `{table}` does not exist in {}", s.path.display());
            return Err(lost(what, "dropped"));
        }
    }
    Ok(())
}

/// Open or create the database, and create the table when missing.
fn open_creating(s: &SqliteSettings) -> Result<Connection, ConnectorError> {
    let what = "cannot open or create the database";
    if let Some(parent) = s.path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            ConnectorError::new(
                ConnectorErrorKind::Configuration,
                format!("cannot create {}: {e}", s.path.display()),
            )
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&s.path, flags).map_err(|e| step_error(&e, s, what))?;
    conn.busy_timeout(Duration::from_millis(s.busy_timeout_ms))
        .map_err(|e| step_error(&e, s, what))?;
    conn.set_prepared_statement_cache_capacity(64);
    // Made only when missing: a statement that makes a table needs the
    // write lock even when the table is there, and a lock another process
    // holds read as "cannot create table" a table that exists.
    if table_columns(&conn, s, &s.table)?.is_empty() {
        create_table(&conn, s)?;
    }
    for (attr, child) in &s.child_tables {
        if table_columns(&conn, s, &child.table)?.is_empty() {
            create_child_table(&conn, s, attr, child)?;
        }
    }
    Ok(conn)
}

/// Make the table of `s`, its columns those of `columns`.
fn create_table(conn: &Connection, s: &SqliteSettings) -> Result<(), ConnectorError> {
    let mut cols = vec![format!("{} TEXT PRIMARY KEY NOT NULL", q(&s.anchor_column))];
    // A DN is one object's (references by DN name one row): the DN
    // column of a table made here is UNIQUE, so a second account given a
    // name another has is refused (`constraint-violation`), as a
    // directory refuses it.
    let dn_columns: std::collections::BTreeSet<&str> = s
        .types
        .types
        .iter()
        .filter_map(crate::settings::ObjectTypes::dn_attr)
        .collect();
    for c in s.columns.iter().flatten() {
        if c != &s.anchor_column {
            let unique = if dn_columns.contains(c.as_str()) {
                " UNIQUE"
            } else {
                ""
            };
            match s.column_types.get(c) {
                Some(t) => cols.push(format!("{} {}{unique}", q(c), t.declared())),
                None => cols.push(format!("{}{unique}", q(c))),
            }
        }
    }
    // The object type column once, whether `columns` lists it or not.
    if let Some(c) = &s.types.type_column
        && c != &s.anchor_column
        && !s.columns.iter().flatten().any(|x| x == c)
    {
        cols.push(q(c));
    }
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        q(&s.table),
        cols.join(", ")
    );
    conn.execute_batch(&ddl)
        .map_err(|e| step_error(&e, s, &format!("cannot create table `{}`", s.table)))
}

/// Make the child table of the multi-valued attribute `attr`.
fn create_child_table(
    conn: &Connection,
    s: &SqliteSettings,
    attr: &str,
    child: &super::config::ChildTable,
) -> Result<(), ConnectorError> {
    let value = match s.column_types.get(attr) {
        Some(t) => format!("{} {} NOT NULL", q(&child.value), t.declared()),
        None => format!("{} NOT NULL", q(&child.value)),
    };
    // UNIQUE (key, value): a value is there once, and its index, led
    // by the key, is the index on the key that reads a parent's values.
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {} ({} TEXT NOT NULL, {value}, UNIQUE ({}, {}))",
        q(&child.table),
        q(&child.key),
        q(&child.key),
        q(&child.value)
    );
    let what = format!("cannot create child table `{}` (of `{attr}`)", child.table);
    conn.execute_batch(&ddl)
        .map_err(|e| step_error(&e, s, &what))
}

/// What the connector knows of its table.
#[derive(Clone, Debug)]
pub struct Schema {
    /// The columns read on import and writable on export (anchor included,
    /// object type column excluded).
    pub columns: Vec<String>,
    /// How each of `columns` is treated (its declared type, or
    /// `column_types`).
    pub types: Vec<Column>,
    /// Whether rows have a rowid (not a WITHOUT ROWID table).
    pub rowid: bool,
    /// The attributes held in child tables (`child_tables`).
    pub children: Vec<Child>,
}

/// A multi-valued attribute held in a child table, one row per value.
#[derive(Clone, Debug)]
pub struct Child {
    pub attribute: String,
    pub table: String,
    /// The column holding the parent's anchor.
    pub key: String,
    /// The column holding one value.
    pub value: String,
    /// How the value column is treated (its declared type, or the
    /// attribute's `column_types` entry).
    pub column: Column,
}

/// The values a statement finding rows by anchor binds for the anchor the
/// engine knows as `text`: the text, and the INTEGER whose decimal form it
/// is exactly (NULL when none: `07`, `+7` and `e1` are no integer's). A
/// column without affinity holds either and compares neither with the
/// other, so such a statement matches `col IN (?a, ?b)` (an index on the
/// column serves an IN list); in a column of INTEGER or TEXT affinity both
/// forms are one value. The import's duplicate check groups them as one
/// anchor too (`import::repeats`).
pub fn anchor_forms(text: &str) -> [SqlValue; 2] {
    let integer = text
        .parse::<i64>()
        .ok()
        .filter(|n| n.to_string() == text)
        .map_or(SqlValue::Null, SqlValue::Integer);
    [SqlValue::Text(text.to_owned()), integer]
}

/// A stored SQLite value, comparable and hashable (a REAL by its bits,
/// TEXT by its bytes), bound as it is.
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum Stored {
    Null,
    Integer(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl From<SqlValue> for Stored {
    fn from(v: SqlValue) -> Stored {
        match v {
            SqlValue::Null => Stored::Null,
            SqlValue::Integer(i) => Stored::Integer(i),
            SqlValue::Real(f) => Stored::Real(f.to_bits()),
            SqlValue::Text(t) => Stored::Text(t.into_bytes()),
            SqlValue::Blob(b) => Stored::Blob(b),
        }
    }
}

impl From<ValueRef<'_>> for Stored {
    fn from(v: ValueRef<'_>) -> Stored {
        match v {
            ValueRef::Null => Stored::Null,
            ValueRef::Integer(i) => Stored::Integer(i),
            ValueRef::Real(f) => Stored::Real(f.to_bits()),
            ValueRef::Text(t) => Stored::Text(t.to_vec()),
            ValueRef::Blob(b) => Stored::Blob(b.to_vec()),
        }
    }
}

impl Stored {
    /// The value as rusqlite's owned value; `None` for text that is not
    /// UTF-8.
    pub fn into_sql(self) -> Option<SqlValue> {
        Some(match self {
            Stored::Null => SqlValue::Null,
            Stored::Integer(i) => SqlValue::Integer(i),
            Stored::Real(bits) => SqlValue::Real(f64::from_bits(bits)),
            Stored::Text(t) => SqlValue::Text(String::from_utf8(t).ok()?),
            Stored::Blob(b) => SqlValue::Blob(b),
        })
    }
}

impl ToSql for Stored {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Stored::Null => ValueRef::Null,
            Stored::Integer(i) => ValueRef::Integer(*i),
            Stored::Real(bits) => ValueRef::Real(f64::from_bits(*bits)),
            Stored::Text(t) => ValueRef::Text(t),
            Stored::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A set or map of stored values, hashed fast (a group's values can be
/// hundreds of thousands).
pub type Fast = xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// The names of a table's columns (none when the table does not exist).
pub fn table_columns(
    conn: &Connection,
    s: &SqliteSettings,
    table: &str,
) -> Result<Vec<String>, ConnectorError> {
    Ok(declared_columns(conn, s, table)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// A table's columns with their declared types (none when the table does
/// not exist).
pub fn declared_columns(
    conn: &Connection,
    s: &SqliteSettings,
    table: &str,
) -> Result<Vec<(String, String)>, ConnectorError> {
    let what = format!("cannot read the columns of table `{table}`");
    let mut stmt = conn
        .prepare("SELECT name, type FROM pragma_table_info(?1)")
        .map_err(|e| step_error(&e, s, &what))?;
    let names = stmt
        .query_map([table], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| step_error(&e, s, &what))?;
    Ok(names)
}

fn config_error(message: String) -> ConnectorError {
    ConnectorError::new(ConnectorErrorKind::Configuration, message)
}

impl Schema {
    /// Read and check the table, the configured columns and the delta source.
    pub fn read(conn: &Connection, s: &SqliteSettings) -> Result<Schema, ConnectorError> {
        let declared = declared_columns(conn, s, &s.table)?;
        let all: Vec<String> = declared.iter().map(|(n, _)| n.clone()).collect();
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
                attribute_column,
                value_column,
            }) => {
                let log = table_columns(conn, s, table)?;
                if log.is_empty() {
                    return Err(config_error(format!(
                        "the changelog table `{table}` does not exist in {}",
                        s.path.display()
                    )));
                }
                let wanted = [
                    Some(sequence_column),
                    anchor_column.as_ref(),
                    operation_column.as_ref(),
                    attribute_column.as_ref(),
                    value_column.as_ref(),
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
        let mut children = Vec::with_capacity(s.child_tables.len());
        for (attr, child) in &s.child_tables {
            if columns.contains(attr) {
                return Err(config_error(format!(
                    "`{attr}` is a column of table `{}` and in child_tables: list `columns` without it",
                    s.table
                )));
            }
            let declared = declared_columns(conn, s, &child.table)?;
            if declared.is_empty() {
                return Err(config_error(format!(
                    "child table `{}` (of `{attr}`) does not exist in {}",
                    child.table,
                    s.path.display()
                )));
            }
            for (what, col) in [("key", &child.key), ("value", &child.value)] {
                if !declared.iter().any(|(n, _)| n == col) {
                    let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(config_error(format!(
                        "child table `{}` (of `{attr}`) has no {what} column `{col}` (columns: {})",
                        child.table,
                        names.join(", ")
                    )));
                }
            }
            let d = declared
                .iter()
                .find(|(n, _)| n == &child.value)
                .map_or("", |(_, d)| d);
            children.push(Child {
                attribute: attr.clone(),
                table: child.table.clone(),
                key: child.key.clone(),
                value: child.value.clone(),
                column: Column::new(d, s.column_types.get(attr).copied()),
            });
        }
        for c in s.column_types.keys() {
            if !columns.contains(c) && !s.child_tables.contains_key(c) {
                return Err(config_error(format!(
                    "column_types names `{c}`, which is not a column this MA reads and writes (columns: {})",
                    columns.join(", ")
                )));
            }
        }
        let types = columns
            .iter()
            .map(|c| {
                let d = declared.iter().find(|(n, _)| n == c).map_or("", |(_, d)| d);
                Column::new(d, s.column_types.get(c).copied())
            })
            .collect();
        let rowid = conn
            .prepare(&format!("SELECT _rowid_ FROM {} LIMIT 0", q(&s.table)))
            .is_ok();
        Ok(Schema {
            columns,
            types,
            rowid,
            children,
        })
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

    #[test]
    fn a_read_only_or_full_database_should_stop_the_step_as_a_server_down_and_be_retried() {
        use autosync_connector::ConnectorErrorKind;
        let err = |code: i32| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        for code in [
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_PERM,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_CANTOPEN,
        ] {
            assert_eq!(
                super::file_error(&err(code), Path::new("x.db"), 10, "x").kind,
                ConnectorErrorKind::ServerDown,
                "{code}"
            );
        }
        assert_eq!(
            super::file_error(&err(rusqlite::ffi::SQLITE_AUTH), Path::new("x.db"), 10, "x").kind,
            ConnectorErrorKind::Configuration
        );
    }
}
