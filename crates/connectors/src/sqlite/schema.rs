//! The SQLite connector's schema before any run: the columns the import
//! would read (those of `columns`, or every column but the delta one; the
//! object type column left out), read from the table opened read-only, or
//! taken from `columns` when the connector will create the table. Nothing
//! is created or changed.

use super::config::SqliteSettings;
use super::db::{Schema, table_columns};
use autosync_connector::{SchemaLookup, SourceSchema};
use rusqlite::{Connection, OpenFlags};
use std::time::Duration;

/// The columns of `s.table` as the attributes of every object type, each
/// type's anchor read from `anchor_column`. `written` is the database path
/// as the settings give it, for messages.
pub fn read(s: &SqliteSettings, written: &str) -> SchemaLookup {
    let known = |columns: Vec<String>| {
        SchemaLookup::Known(SourceSchema::uniform(
            format!("table `{}` of {written}", s.table),
            &s.types.types,
            &columns,
            |_| s.anchor_column.clone(),
            false,
        ))
    };
    if !s.path.is_file() {
        return match s.create_table {
            true => known(created_columns(s)),
            false => SchemaLookup::Unavailable(format!("database file {written} does not exist")),
        };
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(&s.path, flags) {
        Ok(c) => c,
        Err(e) => return SchemaLookup::Unavailable(format!("cannot open {written}: {e}")),
    };
    if let Err(e) = conn.busy_timeout(Duration::from_millis(s.busy_timeout_ms)) {
        return SchemaLookup::Unavailable(format!("cannot open {written}: {e}"));
    }
    match table_columns(&conn, &s.table) {
        Ok(all) if all.is_empty() && s.create_table => known(created_columns(s)),
        Ok(_) => match Schema::read(&conn, s) {
            Ok(schema) => known(schema.columns),
            Err(e) => SchemaLookup::Unavailable(e.message),
        },
        Err(e) => SchemaLookup::Unavailable(e.message),
    }
}

/// The columns of the table `create_table` makes, as an import reads them:
/// the anchor column, then `columns`; not the object type column.
fn created_columns(s: &SqliteSettings) -> Vec<String> {
    let mut columns: Vec<String> = s.columns.clone().unwrap_or_default();
    if !columns.contains(&s.anchor_column) {
        columns.insert(0, s.anchor_column.clone());
    }
    columns.retain(|c| Some(c) != s.types.type_column.as_ref());
    columns
}
