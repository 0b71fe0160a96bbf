//! A delta import through a changelog table (`delta = { kind =
//! "changelog" }`): the changelog's rows after the watermark, gathered per
//! anchor (in the order of each anchor's first row) before any object is
//! read, because what an object's change is depends on all of its rows.
//!
//! A row whose attribute is NULL or empty (or a changelog without
//! `attribute_column`) says the main row changed; a row naming an
//! attribute of `child_tables` says one value of it changed (its child
//! row was inserted or deleted). Per anchor, then, the current state
//! decides, as it does for rows: no main row is a `Delete`; a main row
//! that changed (or a row naming an attribute without a value) is read
//! whole (`Full`); otherwise the object is an `Update` whose values are
//! added when their child row exists now and removed when it does not,
//! each looked up alone (`children::value_changes`), never reading the
//! object's other values: one member changed in a group of 500,000 is one
//! value read. A row naming an attribute that is not in `child_tables`
//! (a trigger that writes the wrong name) says only that the object
//! changed: the object is read whole, and the import warns, naming the
//! row. (As a record error it held the watermark, so every later change
//! of that object was refused until a full import.)

use super::config::{DeltaConfig, SqliteSettings};
use super::db::{Fast, Stored, q};
use autosync_connector::ImportRecordError;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One anchor's rows of the changelog.
#[derive(Debug)]
pub(super) struct Changed {
    /// The anchor as text (what the engine knows it by; an INTEGER as its
    /// decimal text): its rows are read by it whatever their storage
    /// class (see `import::repeats::bound`).
    pub text: String,
    /// The sequence of its first row, for messages.
    pub seq: i64,
    /// The object is read whole: a row said the main row changed, or
    /// named an attribute without a value.
    pub whole: bool,
    /// The first row naming an attribute that is not in `child_tables`
    /// (the object is read whole): the attribute and the row's sequence.
    pub unknown: Option<(String, i64)>,
    /// Per attribute of `child_tables`, the values its rows name, each
    /// once, as the changelog holds them (none once `whole`).
    pub values: BTreeMap<String, HashSet<Stored, Fast>>,
}

/// What the changelog says between two sequences: per anchor its rows,
/// or a row that names no anchor the connector can read.
pub(super) type Pending = Vec<Result<Changed, ImportRecordError>>;

/// Where a changelog row is, for messages.
pub(super) fn location(s: &SqliteSettings, seq: i64) -> String {
    match &s.delta {
        Some(DeltaConfig::Changelog {
            table,
            sequence_column,
            ..
        }) => format!("changelog {table} {sequence_column} {seq}"),
        _ => format!("changelog sequence {seq}"),
    }
}

/// The changelog's rows in `(after, upto]` gathered per anchor, in one
/// pass ordered by sequence.
pub(super) fn collect(
    conn: &Connection,
    s: &SqliteSettings,
    after: i64,
    upto: i64,
) -> rusqlite::Result<Pending> {
    let Some(DeltaConfig::Changelog {
        table,
        sequence_column,
        anchor_column,
        attribute_column,
        value_column,
        ..
    }) = &s.delta
    else {
        return Ok(Vec::new());
    };
    let seq = q(sequence_column);
    let mut columns = vec![
        seq.clone(),
        q(anchor_column.as_ref().unwrap_or(&s.anchor_column)),
    ];
    let by_value = match (attribute_column, value_column) {
        (Some(a), Some(v)) => {
            columns.push(q(a));
            columns.push(q(v));
            true
        }
        _ => false,
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE {seq} > ?1 AND {seq} <= ?2 ORDER BY {seq}",
        columns.join(", "),
        q(table)
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([after, upto])?;
    let mut pending: Pending = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    while let Some(row) = rows.next()? {
        let n: i64 = row.get(0)?;
        let text = match row.get_ref(1)? {
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => t.to_owned(),
                Err(_) => {
                    let location = location(s, n);
                    pending.push(Err(ImportRecordError {
                        anchor: None,
                        detail: "the anchor is not valid UTF-8".to_owned(),
                        location,
                        error_type: "invalid-utf8".to_owned(),
                    }));
                    continue;
                }
            },
            // NULL, a number that is not an integer, binary: no anchor.
            _ => continue,
        };
        let i = match at.get(&text) {
            Some(i) => *i,
            None => {
                at.insert(text.clone(), pending.len());
                pending.push(Ok(Changed {
                    text,
                    seq: n,
                    whole: !by_value,
                    unknown: None,
                    values: BTreeMap::new(),
                }));
                pending.len() - 1
            }
        };
        let Some(Ok(c)) = pending.get_mut(i) else {
            continue;
        };
        if !by_value {
            continue;
        }
        let attribute = match row.get_ref(2)? {
            ValueRef::Null => None,
            ValueRef::Text([]) => None,
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
        };
        let Some(attribute) = attribute else {
            c.whole = true;
            c.values = BTreeMap::new();
            continue;
        };
        if !s.child_tables.contains_key(&attribute) {
            c.unknown.get_or_insert((attribute, n));
            c.whole = true;
            c.values = BTreeMap::new();
            continue;
        }
        match row.get_ref(3)? {
            // No value: what changed cannot be told; read the object whole.
            ValueRef::Null => {
                c.whole = true;
                c.values = BTreeMap::new();
            }
            v if !c.whole => {
                c.values
                    .entry(attribute)
                    .or_default()
                    .insert(Stored::from(v));
            }
            _ => {}
        }
    }
    Ok(pending)
}

/// The warning for an object whose changelog names an attribute that is
/// not in `child_tables` (the object is read whole).
pub(super) fn unknown_attribute(s: &SqliteSettings, attribute: &str, seq: i64) -> String {
    let location = location(s, seq);
    let known: Vec<&str> = s.child_tables.keys().map(String::as_str).collect();
    let known = match known.is_empty() {
        true => "none".to_owned(),
        false => known.join(", "),
    };
    format!(
        "{location}: the changelog names attribute `{attribute}`, which is not kept in a child table (child_tables: {known}): the object is read whole; a changelog row's attribute is empty for a change of the main row, or an attribute of child_tables (check the trigger that wrote it)"
    )
}
