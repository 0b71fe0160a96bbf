//! The SQLite connector's schema before any run: the columns the import
//! would read (those of `columns`, or every column but the delta one; the
//! anchor column; not the object type column), read from the table opened
//! read-only, or taken from `columns` when the connector will create the
//! table; then the attributes of `child_tables`. Settings the database
//! contradicts (a listed column the table does not have, a child table or
//! column that is missing) are reported as problems at their key. Nothing
//! is created or changed.

use super::config::{DeltaConfig, SqliteSettings};
use super::db::table_columns;
use crate::settings::error;
use autosync_connector::{SchemaLookup, SettingError, SourceSchema};
use rusqlite::{Connection, OpenFlags};
use std::time::Duration;

/// The columns of `s.table` as the attributes of every object type, each
/// type's anchor read from `anchor_column`. `written` is the database path
/// as the settings give it, for messages.
pub fn read(s: &SqliteSettings, written: &str) -> SchemaLookup {
    let known = |columns: Vec<String>, problems: Vec<SettingError>| {
        let mut schema = SourceSchema::uniform(
            format!("table `{}` of {written}", s.table),
            &s.types.types,
            &columns,
            |_| s.anchor_column.clone(),
            false,
        );
        schema.problems = problems;
        SchemaLookup::Known(schema)
    };
    if !s.path.is_file() {
        return match s.create_table {
            true => known(with_children(s, created_columns(s)), Vec::new()),
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
    let all = match table_columns(&conn, s, &s.table) {
        Ok(all) => all,
        Err(e) => return SchemaLookup::Unavailable(e.message),
    };
    if all.is_empty() {
        return match s.create_table {
            true => known(with_children(s, created_columns(s)), Vec::new()),
            false => SchemaLookup::Unavailable(format!(
                "table `{}` does not exist in {written}",
                s.table
            )),
        };
    }
    let (columns, mut problems) = read_columns(s, &all);
    problems.extend(child_problems(s, &conn, &columns));
    problems.extend(changelog_problems(s, &conn));
    known(with_children(s, columns), problems)
}

/// The changelog the database contradicts: a table that does not exist,
/// a column named by `delta` (the sequence, anchor, operation, attribute
/// or value column) that it lacks.
fn changelog_problems(s: &SqliteSettings, conn: &Connection) -> Vec<SettingError> {
    let Some(DeltaConfig::Changelog {
        table,
        sequence_column,
        anchor_column,
        operation_column,
        attribute_column,
        value_column,
    }) = &s.delta
    else {
        return Vec::new();
    };
    let cols = match table_columns(conn, s, table) {
        Ok(cols) => cols,
        Err(e) => return vec![error("delta", &e.message, None)],
    };
    if cols.is_empty() {
        return vec![error(
            "delta",
            &format!("the changelog table `{table}` does not exist"),
            Some("create it with the triggers that fill it (see the SQLite connector's docs), or correct `delta.table`".into()),
        )];
    }
    let anchor = anchor_column.as_ref().unwrap_or(&s.anchor_column);
    [
        ("sequence_column", Some(sequence_column)),
        ("anchor_column", Some(anchor)),
        ("operation_column", operation_column.as_ref()),
        ("attribute_column", attribute_column.as_ref()),
        ("value_column", value_column.as_ref()),
    ]
    .into_iter()
    .filter_map(|(key, col)| col.map(|c| (key, c)))
    .filter(|(_, col)| !cols.contains(col))
    .map(|(key, col)| {
        error(
            "delta",
            &format!("the changelog's {key} `{col}` is not a column of table `{table}`"),
            Some(format!("table `{table}` has: {}", cols.join(", "))),
        )
    })
    .collect()
}

/// The columns, then the attributes of `child_tables` (each multi-valued:
/// its child table's rows).
fn with_children(s: &SqliteSettings, mut columns: Vec<String>) -> Vec<String> {
    for attr in s.child_tables.keys() {
        if !columns.contains(attr) {
            columns.push(attr.clone());
        }
    }
    columns
}

/// The child tables the database contradicts: an attribute that is also a
/// column read, a missing child table (unless `create_table` makes it), a
/// key or value column the child table lacks.
fn child_problems(s: &SqliteSettings, conn: &Connection, columns: &[String]) -> Vec<SettingError> {
    let mut problems = Vec::new();
    for (attr, child) in &s.child_tables {
        if columns.contains(attr) {
            problems.push(error(
                "child_tables",
                &format!(
                    "`{attr}` is a column of table `{}` and in child_tables",
                    s.table
                ),
                Some("list `columns` without it".into()),
            ));
        }
        let cols = match table_columns(conn, s, &child.table) {
            Ok(cols) => cols,
            Err(e) => {
                problems.push(error("child_tables", &e.message, None));
                continue;
            }
        };
        if cols.is_empty() {
            if !s.create_table {
                problems.push(error(
                    "child_tables",
                    &format!("child table `{}` (of `{attr}`) does not exist", child.table),
                    Some("create it, or set create_table = true".into()),
                ));
            }
            continue;
        }
        for (what, col) in [("key", &child.key), ("value", &child.value)] {
            if !cols.contains(col) {
                problems.push(error(
                    "child_tables",
                    &format!(
                        "the {what} column `{col}` is not a column of child table `{}`",
                        child.table
                    ),
                    Some(format!("table `{}` has: {}", child.table, cols.join(", "))),
                ));
            }
        }
    }
    problems
}

/// The columns an import of a table with columns `all` reads, and the
/// settings naming a column it does not have.
fn read_columns(s: &SqliteSettings, all: &[String]) -> (Vec<String>, Vec<SettingError>) {
    let has = |c: &str| all.iter().any(|a| a == c);
    let missing = |key: &str, what: &str, column: &str| {
        error(
            key,
            &format!("{what} `{column}` is not a column of table `{}`", s.table),
            Some(format!("table `{}` has: {}", s.table, all.join(", "))),
        )
    };
    let mut problems = Vec::new();
    let delta_column = match &s.delta {
        Some(DeltaConfig::Column { column }) => Some(column.as_str()),
        _ => None,
    };
    if let Some(c) = delta_column.filter(|c| !has(c)) {
        problems.push(missing("delta", "the delta column", c));
    }
    if let Some(c) = s.types.type_column.as_deref().filter(|c| !has(c)) {
        problems.push(missing("object_type_column", "the object type column", c));
    }
    let mut columns: Vec<String> = match &s.columns {
        Some(list) => {
            for c in list.iter().filter(|c| !has(c)) {
                problems.push(missing("columns", "column", c));
            }
            list.iter().filter(|c| has(c)).cloned().collect()
        }
        None => all
            .iter()
            .filter(|c| Some(c.as_str()) != delta_column)
            .cloned()
            .collect(),
    };
    // A missing anchor column is left for the caller to report where the
    // anchor is named (`anchor_column`, or the object type's `anchor`).
    if has(&s.anchor_column) && !columns.contains(&s.anchor_column) {
        columns.insert(0, s.anchor_column.clone());
    }
    columns.retain(|c| Some(c) != s.types.type_column.as_ref());
    for c in s
        .column_types
        .keys()
        .filter(|c| !columns.contains(c) && !s.child_tables.contains_key(*c))
    {
        problems.push(error(
            "column_types",
            &format!("column_types names `{c}`, which is not a column this MA reads and writes"),
            Some(format!("the MA reads and writes: {}", columns.join(", "))),
        ));
    }
    (columns, problems)
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
