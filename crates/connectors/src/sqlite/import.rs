//! Streaming import from an SQLite table: keyset pagination (by rowid, or by
//! anchor for WITHOUT ROWID tables) in batches, all inside one read
//! transaction so the watermark taken at the start matches the rows read.
//!
//! Watermarks are JSON: `{"column": <max value>}` for a change-tracking
//! column, `{"seq": <last sequence>}` for a changelog table.
//!
//! Attributes kept in child tables (`child_tables`) are read per batch
//! (`children`). A changelog delta gathers the changelog's rows per anchor
//! first (`changelog`): one value of a child table that changed is an
//! `Update` of that value, never a read of the object's other values.
//!
//! An anchor on more than one row is no object's: every row that has it
//! is a `duplicate-anchor` error naming them all, none is read (keeping
//! the first would let row order decide whose values an account takes).
//! A scan finds such anchors up front with one query (`repeats`); a read
//! by anchor (a changelog's, `look_up`) finds every row of the anchor as
//! that query judges it (an INTEGER 7 and a TEXT '7' are one anchor):
//! `db::anchor_forms`, `repeats::held`.

use super::changelog::{self, Changed};
use super::children::{attach_children, value_changes};
use super::config::{DeltaConfig, SqliteSettings};
use super::db::{Schema, anchor_forms, in_step, q, step_error};
use autosync_connector::{
    ConnectorError, ImportChange, ImportItem, ImportRecordError, ImportStream, ImportedObject,
};
use autosync_model::Attributes;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use std::collections::{HashMap, HashSet};

mod repeats;
mod row;

use row::item;

/// What a stream reads.
enum Mode {
    /// Rows of the table, optionally only those whose delta column is
    /// greater than `since`; `after` is the pagination key.
    Scan {
        since: Option<SqlValue>,
        after: Option<SqlValue>,
    },
    /// The changelog's entries after the watermark, gathered per anchor
    /// (`changelog`), not yet returned.
    Changelog(std::vec::IntoIter<Result<Changed, ImportRecordError>>),
    /// The rows of these anchors, not yet returned (`look_up`).
    Anchors(std::vec::IntoIter<String>),
}

/// What the rows of one anchor are (see `SqliteImport::anchor_rows`).
enum AnchorRows {
    None,
    One(ImportItem),
    Repeated(Vec<ImportItem>),
}

/// A running SQLite import.
pub struct SqliteImport<'c> {
    conn: &'c mut Connection,
    s: &'c SqliteSettings,
    schema: &'c Schema,
    mode: Mode,
    in_transaction: bool,
    done: bool,
    watermark: Option<String>,
    /// Anchors already returned (repeats in a changelog or in `look_up`).
    seen: HashSet<String>,
    /// Of a scan: the anchors (as their rows hold them, see `repeats`) on
    /// more than one row -> the detail of their `duplicate-anchor` errors.
    repeats: HashMap<String, String>,
    /// A delta import that reads everything instead (see `start`).
    complete: bool,
}

fn parse_watermark(text: Option<&str>, key: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text?).ok()?;
    let found = v.get(key).cloned();
    if found.is_none() {
        tracing::warn!(
            watermark = text,
            "watermark of another delta kind: reading everything"
        );
    }
    found
}

fn json_to_sql(v: &serde_json::Value) -> Option<SqlValue> {
    match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .or_else(|| n.as_f64().map(SqlValue::Real)),
        serde_json::Value::String(s) => Some(SqlValue::Text(s.clone())),
        _ => None,
    }
}

fn sql_to_json(v: SqlValue) -> Option<serde_json::Value> {
    match v {
        SqlValue::Integer(i) => Some(i.into()),
        SqlValue::Real(f) => serde_json::Number::from_f64(f).map(serde_json::Value::Number),
        SqlValue::Text(t) => Some(t.into()),
        _ => None,
    }
}

fn select_list(s: &SqliteSettings, schema: &Schema) -> String {
    let mut cols: Vec<String> = schema.columns.iter().map(|c| q(c)).collect();
    if let Some(t) = &s.types.type_column {
        cols.push(q(t));
    }
    cols.join(", ")
}

impl<'c> SqliteImport<'c> {
    /// Start a read transaction and take the watermark. `delta`: read only
    /// changes since `watermark` (when the connector has delta support).
    pub fn start(
        conn: &'c mut Connection,
        s: &'c SqliteSettings,
        schema: &'c Schema,
        watermark: Option<&str>,
        delta: bool,
    ) -> Result<SqliteImport<'c>, ConnectorError> {
        conn.execute_batch("BEGIN")
            .map_err(|e| step_error(&e, s, "cannot start a read transaction"))?;
        let mut import = SqliteImport {
            conn,
            s,
            schema,
            mode: Mode::Scan {
                since: None,
                after: None,
            },
            in_transaction: true,
            done: false,
            watermark: None,
            seen: HashSet::new(),
            repeats: HashMap::new(),
            complete: false,
        };
        let what = "cannot read the delta watermark";
        match &s.delta {
            None => {}
            Some(DeltaConfig::Column { column }) => {
                let sql = format!("SELECT max({}) FROM {}", q(column), q(&s.table));
                let max: SqlValue = import
                    .conn
                    .query_row(&sql, [], |r| r.get(0))
                    .map_err(|e| step_error(&e, s, what))?;
                let since = parse_watermark(watermark, "column");
                import.watermark = sql_to_json(max)
                    .or_else(|| since.clone())
                    .map(|v| serde_json::json!({ "column": v }).to_string());
                if delta {
                    import.mode = Mode::Scan {
                        since: since.as_ref().and_then(json_to_sql),
                        after: None,
                    };
                }
            }
            Some(DeltaConfig::Changelog {
                table,
                sequence_column,
                ..
            }) => {
                let sql = format!("SELECT max({}) FROM {}", q(sequence_column), q(table));
                let max: Option<i64> = import
                    .conn
                    .query_row(&sql, [], |r| r.get(0))
                    .map_err(|e| step_error(&e, s, what))?;
                let after = parse_watermark(watermark, "seq").and_then(|v| v.as_i64());
                import.watermark = max
                    .or(after)
                    .map(|m| serde_json::json!({ "seq": m }).to_string());
                match (delta, after) {
                    (true, Some(after))
                        if max.is_some_and(|m| m >= after) || max.is_none() && after == 0 =>
                    {
                        let upto = max.unwrap_or(after);
                        let pending =
                            changelog::collect(import.conn, s, after, upto).map_err(|e| {
                                step_error(&e, s, &format!("cannot read changelog table `{table}`"))
                            })?;
                        import.mode = Mode::Changelog(pending.into_iter());
                    }
                    (true, Some(after)) => {
                        // The changelog went back: a database restored from
                        // a backup, the table made again, its sequence
                        // reset. Its rows after the watermark would miss
                        // every change since: read everything instead.
                        tracing::warn!(
                            table = %s.table,
                            changelog = %table,
                            watermark = after,
                            last = ?max,
                            "the changelog's last {sequence_column} is below the watermark of the last import (a database restored from a backup, the changelog made again or its sequence reset): this delta import reads everything"
                        );
                        import.complete = true;
                        import.watermark =
                            Some(serde_json::json!({ "seq": max.unwrap_or(0) }).to_string());
                    }
                    _ => {}
                }
            }
        }
        if let Mode::Scan { since, .. } = &import.mode {
            import.repeats =
                repeats::find(import.conn, s, schema, since.as_ref()).map_err(|e| {
                    step_error(
                        &e,
                        s,
                        &format!("cannot look for repeated anchors in `{}`", s.table),
                    )
                })?;
        }
        Ok(import)
    }

    /// A read of the rows of `anchors` (see `Connector::look_up`).
    pub fn look_up(
        conn: &'c mut Connection,
        s: &'c SqliteSettings,
        schema: &'c Schema,
        anchors: Vec<String>,
    ) -> Result<SqliteImport<'c>, ConnectorError> {
        conn.execute_batch("BEGIN")
            .map_err(|e| step_error(&e, s, "cannot start a read transaction"))?;
        Ok(SqliteImport {
            conn,
            s,
            schema,
            mode: Mode::Anchors(anchors.into_iter()),
            in_transaction: true,
            done: false,
            watermark: None,
            seen: HashSet::new(),
            repeats: HashMap::new(),
            complete: false,
        })
    }

    /// The next anchors' rows: each found one whole (with its child
    /// tables), each missing one a delete.
    fn anchors_page(
        &mut self,
        mut pending: std::vec::IntoIter<String>,
    ) -> rusqlite::Result<Vec<ImportItem>> {
        let row_sql = self.anchor_sql();
        let mut batch = Vec::new();
        while batch.len() < self.s.batch_size {
            let Some(anchor) = pending.next() else { break };
            if self.seen.contains(&anchor) {
                continue;
            }
            let location = format!("table {}", self.s.table);
            match self.anchor_rows(&row_sql, &anchor, location)? {
                AnchorRows::One(read) => batch.push(read),
                AnchorRows::Repeated(errors) => {
                    self.seen.insert(anchor);
                    batch.extend(errors);
                }
                AnchorRows::None => {
                    self.seen.insert(anchor.clone());
                    batch.push(Ok(ImportedObject {
                        values: Default::default(),
                        object_type: self
                            .s
                            .types
                            .types
                            .first()
                            .map(|t| t.name.clone())
                            .unwrap_or_default(),
                        dn: anchor.clone(),
                        anchor,
                        change: ImportChange::Delete,
                        attributes: Attributes::new(),
                    }));
                }
            }
        }
        if pending.len() == 0 {
            self.done = true;
        }
        self.mode = Mode::Anchors(pending);
        attach_children(self.conn, self.s, self.schema, &mut batch)?;
        Ok(batch)
    }

    fn scan_page(
        &mut self,
        since: Option<SqlValue>,
        after: Option<SqlValue>,
    ) -> rusqlite::Result<Vec<ImportItem>> {
        let table = q(&self.s.table);
        let key = if self.schema.rowid {
            "_rowid_".to_owned()
        } else {
            q(&self.s.anchor_column)
        };
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(v) = since.clone() {
            let column = match &self.s.delta {
                Some(DeltaConfig::Column { column }) => q(column),
                _ => "NULL".to_owned(),
            };
            conds.push(format!("{column} > ?{}", params.len() + 1));
            params.push(v);
        }
        if let Some(v) = after {
            conds.push(format!("{key} > ?{}", params.len() + 1));
            params.push(v);
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {key}, {} FROM {table} {filter} ORDER BY {key} LIMIT {}",
            select_list(self.s, self.schema),
            self.s.batch_size
        );
        let conn = &*self.conn;
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        let mut batch = Vec::with_capacity(self.s.batch_size.min(16_384));
        let mut last = None;
        while let Some(row) = rows.next()? {
            let k: SqlValue = row.get(0)?;
            let location = match &k {
                SqlValue::Integer(i) if self.schema.rowid => {
                    format!("table {} rowid {i}", self.s.table)
                }
                _ => format!("table {}", self.s.table),
            };
            let read = item(
                self.s,
                self.schema,
                &mut self.seen,
                &self.repeats,
                row,
                1,
                location,
            );
            batch.push(read?);
            last = Some(k);
        }
        if batch.len() < self.s.batch_size {
            self.done = true;
        }
        self.mode = Mode::Scan { since, after: last };
        drop(rows);
        drop(stmt);
        attach_children(conn, self.s, self.schema, &mut batch)?;
        Ok(batch)
    }

    /// The next objects of the changelog's anchors: each read as it is now
    /// (see `changelog`), the values of the whole ones from their child
    /// tables.
    fn changelog_page(
        &mut self,
        mut pending: std::vec::IntoIter<Result<Changed, ImportRecordError>>,
    ) -> rusqlite::Result<Vec<ImportItem>> {
        let row_sql = self.anchor_sql();
        let mut batch = Vec::new();
        while batch.len() < self.s.batch_size {
            match pending.next() {
                Some(Ok(c)) => batch.extend(self.changed(c, &row_sql)?),
                Some(Err(e)) => batch.push(Err(e)),
                None => break,
            }
        }
        if pending.len() == 0 {
            self.done = true;
        }
        self.mode = Mode::Changelog(pending);
        attach_children(self.conn, self.s, self.schema, &mut batch)?;
        Ok(batch)
    }

    /// The query of the rows that may hold an anchor: its rowid (NULL in
    /// a WITHOUT ROWID table), then the columns of `select_list`; `?1` and
    /// `?2` are the anchor's forms (`db::anchor_forms`). Two equalities on
    /// the column itself, not a comparison of its text, so that an index
    /// on it serves the query.
    fn anchor_sql(&self) -> String {
        let anchor = q(&self.s.anchor_column);
        format!(
            "SELECT {}, {} FROM {} WHERE {anchor} = ?1 OR {anchor} = ?2",
            if self.schema.rowid { "_rowid_" } else { "NULL" },
            select_list(self.s, self.schema),
            q(&self.s.table),
        )
    }

    /// The rows of the anchor the engine knows as `text` (`row_sql`, from
    /// `anchor_sql`): its item when it has one row (at `location`), and
    /// when it has several a `duplicate-anchor` error per row, none read.
    fn anchor_rows(
        &mut self,
        row_sql: &str,
        text: &str,
        location: String,
    ) -> rusqlite::Result<AnchorRows> {
        // Where the anchor is in a row (after its rowid).
        let at = self
            .schema
            .columns
            .iter()
            .position(|c| *c == self.s.anchor_column)
            .map(|i| i + 1);
        let conn = &*self.conn;
        let mut stmt = conn.prepare_cached(row_sql)?;
        let mut rows = stmt.query(anchor_forms(text))?;
        let mut rowids: Vec<Option<i64>> = Vec::new();
        let mut read = None;
        while let Some(row) = rows.next()? {
            // `=` also meets other anchors: a TEXT '07' for an INTEGER
            // column's 7, an `E1` for `e1` in a NOCASE column.
            if let Some(at) = at
                && repeats::held(row.get_ref(at)?).as_deref() != Some(text)
            {
                continue;
            }
            rowids.push(row.get(0)?);
            if read.is_none() {
                let location = location.clone();
                read = Some(item(
                    self.s,
                    self.schema,
                    &mut self.seen,
                    &self.repeats,
                    row,
                    1,
                    location,
                )?);
            }
        }
        let Some(read) = read else {
            return Ok(AnchorRows::None);
        };
        if rowids.len() == 1 {
            return Ok(AnchorRows::One(read));
        }
        // In rowid order, as a scan names them (an index gives them in
        // its own).
        rowids.sort_unstable();
        let known: Vec<i64> = rowids.iter().flatten().copied().collect();
        let detail = repeats::detail(text, &known, rowids.len(), &self.s.table);
        let errors = rowids
            .into_iter()
            .map(|rowid| {
                Err(ImportRecordError {
                    anchor: Some(text.to_owned()),
                    location: repeats::location(&self.s.table, rowid),
                    error_type: "duplicate-anchor".to_owned(),
                    detail: detail.clone(),
                })
            })
            .collect();
        Ok(AnchorRows::Repeated(errors))
    }

    /// One anchor of the changelog as import items: a delete when its
    /// row is gone, the row read whole when it changed (or a value could
    /// not be named), else an update of the values named; an error per row
    /// when it has several. `row_sql` reads the rows of an anchor
    /// (`anchor_sql`).
    fn changed(&mut self, c: Changed, row_sql: &str) -> rusqlite::Result<Vec<ImportItem>> {
        if let Some((attribute, seq)) = &c.unknown {
            let why = changelog::unknown_attribute(self.s, attribute, *seq);
            tracing::warn!(table = %self.s.table, anchor = %c.text, "{why}");
        }
        let location = changelog::location(self.s, c.seq);
        let read = match self.anchor_rows(row_sql, &c.text, location)? {
            AnchorRows::One(read) => read,
            AnchorRows::Repeated(errors) => {
                self.seen.insert(c.text);
                return Ok(errors);
            }
            AnchorRows::None => {
                self.seen.insert(c.text.clone());
                let object_type = self
                    .s
                    .types
                    .types
                    .first()
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                return Ok(vec![Ok(ImportedObject {
                    values: Default::default(),
                    object_type,
                    dn: c.text.clone(),
                    anchor: c.text,
                    change: ImportChange::Delete,
                    attributes: Attributes::new(),
                })]);
            }
        };
        let mut o = match read {
            Ok(o) if !c.whole => o,
            other => return Ok(vec![other]),
        };
        Ok(vec![
            match value_changes(self.conn, self.s, self.schema, &o, c.values)? {
                Ok(values) => {
                    o.attributes = Attributes::new();
                    o.values = values;
                    o.change = ImportChange::Update;
                    Ok(o)
                }
                Err(e) => Err(e),
            },
        ])
    }

    fn end_transaction(&mut self) {
        if self.in_transaction {
            self.in_transaction = false;
            if let Err(e) = self.conn.execute_batch("COMMIT") {
                tracing::warn!(error = %e, "ending the read transaction failed");
            }
        }
    }
}

impl ImportStream for SqliteImport<'_> {
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError> {
        if self.done {
            self.end_transaction();
            return Ok(None);
        }
        let mode = std::mem::replace(
            &mut self.mode,
            Mode::Scan {
                since: None,
                after: None,
            },
        );
        let page = match mode {
            Mode::Scan { since, after } => self.scan_page(since, after),
            Mode::Changelog(pending) => self.changelog_page(pending),
            Mode::Anchors(pending) => self.anchors_page(pending),
        };
        let batch = page.map_err(|e| {
            self.end_transaction();
            let what = format!("cannot read table `{}`", self.s.table);
            in_step(step_error(&e, self.s, &what), "import")
        })?;
        if batch.is_empty() {
            self.end_transaction();
            return Ok(None);
        }
        Ok(Some(batch))
    }

    fn watermark(&self) -> Option<String> {
        self.watermark.clone()
    }

    fn complete(&self) -> bool {
        self.complete
    }
}

impl Drop for SqliteImport<'_> {
    fn drop(&mut self) {
        self.end_transaction();
    }
}

#[cfg(test)]
mod tests;
