//! The anchors on more than one row, found by one query before a scan
//! reads any row: the rows grouped by their anchor as they hold it (an
//! INTEGER as its decimal text, what the engine knows it by), compared
//! byte for byte whatever the column's collation (`e1` and `E1` are two
//! objects). Only INTEGER and TEXT anchors are looked at, and not empty
//! text or text of only spaces (a missing anchor to the import): a BLOB is no
//! anchor, and a REAL one, which no table should have, meets only the
//! import's own check of anchors already read. A delta scan looks only at
//! the anchors of the rows it reads, across the whole table.

use super::super::config::{DeltaConfig, SqliteSettings};
use super::super::db::{Schema, q};
use super::super::types::ColumnType;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, params_from_iter};
use std::borrow::Cow;
use std::collections::HashMap;

/// The most rowids a `duplicate-anchor` error lists (an anchor on
/// thousands of rows would otherwise make each of its errors that long).
const ROWIDS_SHOWN: usize = 10;

/// The anchors (as their rows hold them) on more than one row of the
/// table, or, with `since` (a delta column's watermark), of those of the
/// rows changed since -> the detail of their `duplicate-anchor` errors.
pub(super) fn find(
    conn: &Connection,
    s: &SqliteSettings,
    schema: &Schema,
    since: Option<&SqlValue>,
) -> rusqlite::Result<HashMap<String, String>> {
    let (anchor, table) = (q(&s.anchor_column), q(&s.table));
    let text = schema
        .columns
        .iter()
        .position(|c| *c == s.anchor_column)
        .and_then(|i| schema.types.get(i))
        .is_some_and(|c| c.affinity == ColumnType::Text);
    // A column of TEXT affinity holds text already: grouping the column
    // itself can go through its index.
    let key = if text {
        format!("{anchor} COLLATE BINARY")
    } else {
        format!("CAST({anchor} AS TEXT) COLLATE BINARY")
    };
    let mut params = Vec::new();
    let mut changed = String::new();
    if let (Some(since), Some(DeltaConfig::Column { column })) = (since, &s.delta) {
        changed = format!(
            " AND {key} IN (SELECT {key} FROM {table} WHERE {} > ?1)",
            q(column)
        );
        params.push(since.clone());
    }
    let sql = format!(
        "SELECT {key}, count(*), group_concat({}) FROM {table} \
         WHERE typeof({anchor}) IN ('integer', 'text') AND trim({anchor}) <> ''{changed} \
         GROUP BY 1 HAVING count(*) > 1",
        if schema.rowid { "_rowid_" } else { "NULL" },
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    let mut repeats = HashMap::new();
    while let Some(row) = rows.next()? {
        // An anchor that is not UTF-8 is no object's anyway.
        let ValueRef::Text(held) = row.get_ref(0)? else {
            continue;
        };
        let Ok(held) = std::str::from_utf8(held) else {
            continue;
        };
        // Nor is one of only whitespace (SQLite's `trim` takes only
        // spaces): the import reads it as a missing anchor.
        if held.trim().is_empty() {
            continue;
        }
        let count: i64 = row.get(1)?;
        let listed: Option<String> = row.get(2)?;
        let mut rowids: Vec<i64> = listed
            .iter()
            .flat_map(|l| l.split(','))
            .filter_map(|r| r.parse().ok())
            .collect();
        rowids.sort_unstable();
        let rows = usize::try_from(count).unwrap_or(usize::MAX);
        let detail = detail(held, &rowids, rows, &s.table);
        repeats.insert(held.to_owned(), detail);
    }
    Ok(repeats)
}

/// The anchor a row's anchor column holds, as the import reads it (an
/// INTEGER, or a REAL, as its decimal text; text as it is), to tell the
/// rows a query by `db::anchor_forms` finds that are another anchor's (`07` for 7 in
/// a column of INTEGER affinity, `E1` for `e1` in a NOCASE one).
pub(super) fn held(v: ValueRef<'_>) -> Option<Cow<'_, str>> {
    match v {
        ValueRef::Integer(n) => Some(Cow::Owned(n.to_string())),
        ValueRef::Real(f) => Some(Cow::Owned(f.to_string())),
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(Cow::Borrowed),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

/// The detail of a `duplicate-anchor` error: the anchor is on `rows` rows
/// of `table`, whose `rowids` are known (none in a WITHOUT ROWID table);
/// none of them is read.
pub(super) fn detail(anchor: &str, rowids: &[i64], rows: usize, table: &str) -> String {
    let on = if rowids.len() == rows {
        let mut shown: Vec<String> = rowids
            .iter()
            .take(ROWIDS_SHOWN)
            .map(i64::to_string)
            .collect();
        let more = rows.saturating_sub(ROWIDS_SHOWN);
        let last = if more > 0 {
            shown.push("...".to_owned());
            format!("{more} more")
        } else {
            shown.pop().unwrap_or_default()
        };
        format!("rowids {} and {last}", shown.join(", "))
    } else {
        format!("{rows} rows")
    };
    let (none, until) = if rows > 2 {
        ("none", "all but one are removed")
    } else {
        ("neither", "one is removed")
    };
    format!(
        "anchor {anchor:?} is on {on} of table {table}: {none} is read; the object is kept as \
         it was until {until}"
    )
}

/// Where a row is, for messages (as a scan names it).
pub(super) fn location(table: &str, rowid: Option<i64>) -> String {
    match rowid {
        Some(rowid) => format!("table {table} rowid {rowid}"),
        None => format!("table {table}"),
    }
}
