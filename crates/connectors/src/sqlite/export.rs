//! Export to an SQLite table: one transaction per batch (durable as soon as
//! `apply` returns), a SAVEPOINT per row so a row the database rejects (NOT
//! NULL, UNIQUE, CHECK, type) fails alone and the rest of the batch commits.
//! Identifiers are quoted and values always bound. Nothing to send opens
//! no write transaction, so an export with nothing to send leaves the
//! database file untouched.
//!
//! An add whose anchor has a row already is a replay of this add (a batch
//! sent again after a crash: the add was applied, the engine's store had
//! not recorded it) only when that row holds every value the add sends:
//! each column it sets, compared in SQL so that the column's affinity
//! applies (a bound `"42"` is the integer 42 an INTEGER column holds),
//! the object type and DN columns it writes, and the rows of each child
//! table it names, as a set. A replay is written again in place, changing
//! nothing (the table's own triggers see it); columns the add does not
//! name are left as they are. Any other row (an account made before
//! autosync under the anchor provisioning gives) is never overwritten: the
//! add fails with `already-exists`, naming the first columns that differ,
//! and the row is left as it is ([`SqliteExport::replayed`]). A
//! delete-and-add deletes the row first, as it says.
//!
//! An attribute kept in a child table is written as a difference: the
//! parent's rows are read (one query), the values no longer there deleted
//! and the new ones inserted, one statement per changed value, in the
//! parent's savepoint. A one-value change costs one read of the parent's
//! rows and one written row (two when a value replaces another); a replay
//! finds nothing to change and writes nothing to the child table. Removing the attribute deletes its rows; deleting
//! the object deletes its rows in every child table.
//!
//! Every statement that finds rows by anchor (the row itself, and a
//! parent's rows in a child table) matches `col IN (?a, ?b)` with both of
//! the anchor's forms bound (`db::anchor_forms`: the text the engine knows
//! it by, and the INTEGER of that decimal text): a column without a
//! declared type holds an account's 7 as the INTEGER 7, which the text
//! `'7'` alone never equals, so a delete would match nothing and an add
//! would miss the row and insert a second one. An index on the column
//! still serves an IN list. Inserts write the anchor as its text.
//!
//! Value-level changes (`ExportChange::values`, sent because the
//! capabilities say `value_changes` when the MA has child tables) write
//! only the values named, reading none: one `DELETE` per value removed,
//! one `INSERT` per value added unless its row is there (a replay writes
//! nothing). `values` on an attribute that is not in a child table fails
//! its change (`value-changes-not-supported`).

use super::config::SqliteSettings;
use super::db::{
    Child, Fast, Schema, Stored, anchor_forms, check_writable, in_step, q, row_rejection,
    step_error,
};
use super::types;
use crate::change::{self, Failure};
use crate::settings::ObjectTypes;
use autosync_connector::{ConnectorError, ExportChange, ExportOutcome, ExportSession};
use autosync_model::{ExportKind, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

mod replay;

/// A running SQLite export.
pub struct SqliteExport<'c> {
    pub conn: &'c mut Connection,
    pub s: &'c SqliteSettings,
    pub schema: &'c Schema,
    /// `SELECT 1 ... WHERE anchor IN (?1, ?2)` and `DELETE ... WHERE
    /// anchor IN (?1, ?2)`, bound with the anchor's [`Forms`].
    exists_sql: String,
    delete_sql: String,
    /// The last `INSERT` and `UPDATE` built, with the columns they set:
    /// the rows of a batch usually set the same columns, so the SQL text is
    /// built once, not per row.
    last_insert: RefCell<(Vec<String>, String)>,
    last_update: RefCell<(Vec<String>, String)>,
    /// Per child table (as `schema.children`), its statements.
    children: Vec<ChildSql>,
}

/// The two forms of an anchor a statement finding its rows binds
/// (`db::anchor_forms`): its text, and the INTEGER of that text or NULL.
type Forms = [SqlValue; 2];

/// The statements of one child table. Those finding the parent's rows
/// bind its [`Forms`] as `?1` and `?2` (then a value as `?3`); `insert`
/// binds the parent's anchor as text (`?1`) and a value (`?2`), and
/// `insert_new` writes `?1`, the text, too.
struct ChildSql {
    /// The parent's values.
    select: String,
    /// One value of the parent.
    insert: String,
    /// One value of the parent, unless its row is there.
    insert_new: String,
    /// One value of the parent.
    delete_one: String,
    /// Every value of the parent.
    delete_all: String,
}

impl ChildSql {
    fn new(c: &Child) -> ChildSql {
        let (table, key, value) = (q(&c.table), q(&c.key), q(&c.value));
        ChildSql {
            select: format!("SELECT {value} FROM {table} WHERE {key} IN (?1, ?2)"),
            insert: format!("INSERT INTO {table} ({key}, {value}) VALUES (?1, ?2)"),
            // Not `INSERT OR IGNORE`: that would also ignore NOT NULL and
            // CHECK, and it needs a UNIQUE constraint to ignore anything.
            insert_new: format!(
                "INSERT INTO {table} ({key}, {value}) SELECT ?1, ?3 WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {key} IN (?1, ?2) AND {value} = ?3)"
            ),
            delete_one: format!("DELETE FROM {table} WHERE {key} IN (?1, ?2) AND {value} = ?3"),
            delete_all: format!("DELETE FROM {table} WHERE {key} IN (?1, ?2)"),
        }
    }
}

/// The value-level changes of one child table: its index in
/// `schema.children`, the values to add, the values to remove.
type ValueWrites = (usize, Vec<Stored>, Vec<Stored>);

/// Whether `names` are the columns of `sets`, in order.
fn same_columns(names: &[String], sets: &[(String, SqlValue)]) -> bool {
    names.len() == sets.len() && names.iter().zip(sets).all(|(a, (b, _))| a == b)
}

/// Why one change was not applied.
enum RowError {
    /// The database or the connector rejected this row only.
    Rejected(Failure),
    /// The step cannot go on (busy, I/O, ...).
    Fatal(rusqlite::Error),
}

impl From<rusqlite::Error> for RowError {
    fn from(e: rusqlite::Error) -> Self {
        match row_rejection(&e) {
            Some(kind) => RowError::Rejected((kind, e.to_string())),
            None => RowError::Fatal(e),
        }
    }
}

impl From<Failure> for RowError {
    fn from(f: Failure) -> Self {
        RowError::Rejected(f)
    }
}

impl<'c> SqliteExport<'c> {
    pub fn new(conn: &'c mut Connection, s: &'c SqliteSettings, schema: &'c Schema) -> Self {
        let (table, anchor) = (q(&s.table), q(&s.anchor_column));
        SqliteExport {
            exists_sql: format!("SELECT 1 FROM {table} WHERE {anchor} IN (?1, ?2) LIMIT 1"),
            delete_sql: format!("DELETE FROM {table} WHERE {anchor} IN (?1, ?2)"),
            conn,
            s,
            schema,
            last_insert: RefCell::new((Vec::new(), String::new())),
            last_update: RefCell::new((Vec::new(), String::new())),
            children: schema.children.iter().map(ChildSql::new).collect(),
        }
    }

    /// The child table holding attribute `name`, if any.
    fn child(&self, name: &str) -> Option<usize> {
        self.schema
            .children
            .iter()
            .position(|c| c.attribute == name)
    }

    /// The values a child table is to hold for `value` (`None`: none), as
    /// stored; empty values are no values. Repeats are left to
    /// [`Self::write_child`].
    fn child_values(&self, child: &Child, value: Option<&Value>) -> Result<Vec<Stored>, Failure> {
        match value {
            None => Ok(Vec::new()),
            Some(Value::Multi(vs)) => Self::child_list(child, vs),
            Some(v) => Self::child_list(child, std::slice::from_ref(v)),
        }
    }

    /// [`Self::child_values`] of a list of values.
    fn child_list(child: &Child, values: &[Value]) -> Result<Vec<Stored>, Failure> {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            if matches!(v, Value::Multi(_)) {
                return Err((
                    "value-not-representable",
                    format!(
                        "`{}` is kept in child table `{}`, one value per row: a value cannot be a list",
                        child.attribute, child.table
                    ),
                ));
            }
            if v.is_empty() {
                continue;
            }
            match types::write(&child.attribute, child.column, Some(v))? {
                SqlValue::Null => {}
                stored => out.push(Stored::from(stored)),
            }
        }
        Ok(out)
    }

    /// The value-level changes of `c` as (child table, values to add,
    /// values to remove), checked before anything is written: each names
    /// an attribute kept in a child table and values it can hold.
    fn value_changes(&self, c: &ExportChange) -> Result<Vec<ValueWrites>, Failure> {
        let mut out = Vec::with_capacity(c.values.len());
        for (name, delta) in &c.values {
            let Some((i, child)) = self
                .child(name)
                .and_then(|i| self.schema.children.get(i).map(|child| (i, child)))
            else {
                let kept: Vec<&str> = self
                    .schema
                    .children
                    .iter()
                    .map(|c| c.attribute.as_str())
                    .collect();
                return Err((
                    "value-changes-not-supported",
                    format!(
                        "values added to or removed from `{name}` cannot be applied: `{name}` is not kept in a child table of this MA (child_tables: {}); only an attribute of child_tables takes value-level changes, any other takes its whole value",
                        if kept.is_empty() {
                            "none".to_owned()
                        } else {
                            kept.join(", ")
                        }
                    ),
                ));
            };
            out.push((
                i,
                Self::child_list(child, &delta.add)?,
                Self::child_list(child, &delta.remove)?,
            ));
        }
        Ok(out)
    }

    /// Apply the value-level changes of child table `i` to the parent's
    /// rows, reading none of them: a `DELETE` per value removed, then an
    /// `INSERT` per value added unless its row is there.
    fn write_values(
        &self,
        i: usize,
        anchor: &Forms,
        add: Vec<Stored>,
        remove: Vec<Stored>,
    ) -> rusqlite::Result<()> {
        let Some(sql) = self.children.get(i) else {
            return Ok(());
        };
        if !remove.is_empty() {
            let mut delete = self.conn.prepare_cached(&sql.delete_one)?;
            for v in remove {
                delete.execute((&anchor[0], &anchor[1], &v))?;
                super::children::count_steps(&delete);
            }
        }
        if !add.is_empty() {
            let mut insert = self.conn.prepare_cached(&sql.insert_new)?;
            for v in add {
                insert.execute((&anchor[0], &anchor[1], &v))?;
                super::children::count_steps(&insert);
            }
        }
        Ok(())
    }

    /// Make the parent's rows of child table `i` hold `values`: one read of
    /// its rows (skipped when `fresh`: it has none), then an INSERT per
    /// value new and a DELETE per value gone; nothing else is written.
    fn write_child(
        &self,
        i: usize,
        anchor: &Forms,
        values: Vec<Stored>,
        fresh: bool,
    ) -> rusqlite::Result<()> {
        let Some(sql) = self.children.get(i) else {
            return Ok(());
        };
        if values.is_empty() {
            if !fresh {
                self.conn
                    .prepare_cached(&sql.delete_all)?
                    .execute((&anchor[0], &anchor[1]))?;
            }
            return Ok(());
        }
        // The rows there, each with whether it is still wanted.
        let mut current: HashMap<Stored, bool, Fast> = HashMap::default();
        if !fresh {
            let mut stmt = self.conn.prepare_cached(&sql.select)?;
            let mut rows = stmt.query((&anchor[0], &anchor[1]))?;
            while let Some(row) = rows.next()? {
                current.insert(Stored::from(row.get_ref(0)?), false);
            }
        }
        let mut inserted: HashSet<Stored, Fast> = HashSet::default();
        let mut insert = self.conn.prepare_cached(&sql.insert)?;
        for v in values {
            match current.get_mut(&v) {
                Some(wanted) => *wanted = true,
                None => {
                    if !inserted.contains(&v) {
                        insert.execute((&anchor[0], &v))?;
                        inserted.insert(v);
                    }
                }
            }
        }
        drop(insert);
        let mut gone = current
            .into_iter()
            .filter_map(|(v, wanted)| (!wanted).then_some(v))
            .peekable();
        if gone.peek().is_some() {
            let mut delete = self.conn.prepare_cached(&sql.delete_one)?;
            for v in gone {
                delete.execute((&anchor[0], &anchor[1], &v))?;
            }
        }
        Ok(())
    }

    /// Delete the parent's rows of every child table.
    fn delete_children(&self, anchor: &Forms) -> rusqlite::Result<()> {
        for sql in &self.children {
            self.conn
                .prepare_cached(&sql.delete_all)?
                .execute((&anchor[0], &anchor[1]))?;
        }
        Ok(())
    }

    /// The column values an add or update sets.
    fn assignments(&self, c: &ExportChange) -> Result<Vec<(String, SqlValue)>, Failure> {
        let t = change::object_type(&self.s.types, c)?;
        let column = |name: &str| self.schema.columns.iter().position(|col| col == name);
        let writable = |name: &str| column(name).is_some();
        let mut sets: Vec<(String, SqlValue)> = Vec::with_capacity(c.changes.len() + 2);
        for (name, value) in &c.changes {
            if name == &self.s.anchor_column {
                if value.as_ref().map(Value::to_text).as_deref() != Some(c.anchor.as_str()) {
                    return Err((
                        "anchor-mismatch",
                        format!("`{name}` is the anchor and cannot change"),
                    ));
                }
                continue;
            }
            if self.child(name).is_some() {
                continue;
            }
            let Some(i) = column(name) else {
                return Err((
                    "unknown-attribute",
                    format!(
                        "`{name}` is not a column of table `{}` handled by this MA",
                        self.s.table
                    ),
                ));
            };
            let t = self.schema.types[i];
            sets.push((name.clone(), types::write(name, t, value.as_ref())?));
        }
        let dn_attr = ObjectTypes::dn_attr(t).filter(|d| writable(d));
        let is_add = matches!(c.kind, ExportKind::Add | ExportKind::DeleteAdd);
        let new_dn = match (&c.new_dn, is_add) {
            (Some(n), _) => Some(n),
            (None, true) => Some(&c.dn),
            (None, false) => None,
        };
        if let Some(dn) = new_dn {
            match dn_attr {
                Some(d) if !c.changes.contains_key(d) => {
                    sets.push((d.to_owned(), SqlValue::Text(dn.clone())))
                }
                Some(_) => {}
                None if c.new_dn.is_some() => {
                    return Err((
                        "rename-not-supported",
                        format!("object type `{}` has no DN column", t.name),
                    ));
                }
                None => {}
            }
        }
        if let Some(col) = &self.s.types.type_column {
            sets.push((col.clone(), SqlValue::Text(c.object_type.clone())));
        }
        Ok(sets)
    }

    fn exists(&self, anchor: &Forms) -> rusqlite::Result<bool> {
        let mut stmt = self.conn.prepare_cached(&self.exists_sql)?;
        stmt.exists((&anchor[0], &anchor[1]))
    }

    fn delete(&self, anchor: &Forms) -> rusqlite::Result<usize> {
        self.conn
            .prepare_cached(&self.delete_sql)?
            .execute((&anchor[0], &anchor[1]))
    }

    fn insert(&self, anchor: &str, sets: Vec<(String, SqlValue)>) -> rusqlite::Result<usize> {
        let mut last = self.last_insert.borrow_mut();
        if !same_columns(&last.0, &sets) || last.1.is_empty() {
            let mut names = vec![q(&self.s.anchor_column)];
            names.extend(sets.iter().map(|(n, _)| q(n)));
            let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                q(&self.s.table),
                names.join(", "),
                marks.join(", ")
            );
            *last = (sets.iter().map(|(n, _)| n.clone()).collect(), sql);
        }
        let values = std::iter::once(SqlValue::Text(anchor.to_owned()))
            .chain(sets.into_iter().map(|(_, v)| v));
        self.conn
            .prepare_cached(&last.1)?
            .execute(params_from_iter(values))
    }

    fn update(&self, anchor: &Forms, sets: Vec<(String, SqlValue)>) -> rusqlite::Result<usize> {
        if sets.is_empty() {
            return Ok(usize::from(self.exists(anchor)?));
        }
        let mut last = self.last_update.borrow_mut();
        if !same_columns(&last.0, &sets) || last.1.is_empty() {
            let assigns: Vec<String> = sets
                .iter()
                .enumerate()
                .map(|(i, (n, _))| format!("{} = ?{}", q(n), i + 1))
                .collect();
            let sql = format!(
                "UPDATE {} SET {} WHERE {} IN (?{}, ?{})",
                q(&self.s.table),
                assigns.join(", "),
                q(&self.s.anchor_column),
                sets.len() + 1,
                sets.len() + 2
            );
            *last = (sets.iter().map(|(n, _)| n.clone()).collect(), sql);
        }
        let values = sets
            .into_iter()
            .map(|(_, v)| v)
            .chain(anchor.iter().cloned());
        self.conn
            .prepare_cached(&last.1)?
            .execute(params_from_iter(values))
    }

    fn apply_one(&self, c: &ExportChange) -> Result<(), RowError> {
        let forms = anchor_forms(&c.anchor);
        if matches!(c.kind, ExportKind::Delete) {
            change::object_type(&self.s.types, c)?;
            self.delete_children(&forms)?;
            self.delete(&forms)?;
            return Ok(());
        }
        let sets = self.assignments(c)?;
        // The child tables' values, checked before anything is written.
        let mut children = Vec::new();
        for (name, value) in &c.changes {
            if let Some(i) = self.child(name)
                && let Some(child) = self.schema.children.get(i)
            {
                children.push((i, self.child_values(child, value.as_ref())?));
            }
        }
        let values = self.value_changes(c)?;
        // Whether the parent has no child rows for sure (a new object).
        let fresh = match c.kind {
            ExportKind::DeleteAdd => {
                self.delete_children(&forms)?;
                self.delete(&forms)?;
                self.insert(&c.anchor, sets)?;
                true
            }
            ExportKind::Add if self.exists(&forms)? => {
                self.replayed(c, &forms, &sets, &children, &values)?;
                self.update(&forms, sets)?;
                // The child tables hold the add's values already.
                children.clear();
                false
            }
            ExportKind::Add => {
                self.insert(&c.anchor, sets)?;
                // Rows left by a parent deleted outside are read and
                // replaced, not added to.
                false
            }
            _ => {
                if self.update(&forms, sets)? == 0 {
                    let detail = format!(
                        "no row of table `{}` has anchor {:?}",
                        self.s.table, c.anchor
                    );
                    return Err(RowError::Rejected(("object-not-found", detail)));
                }
                false
            }
        };
        for (i, values) in children {
            self.write_child(i, &forms, values, fresh)?;
        }
        for (i, add, remove) in values {
            self.write_values(i, &forms, add, remove)?;
        }
        Ok(())
    }

    fn apply_batch(&self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, rusqlite::Error> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for c in batch {
            // Prepared once (parsing these per row was ~15 % of an export).
            self.conn
                .prepare_cached("SAVEPOINT autosync_row")?
                .execute([])?;
            match self.apply_one(c) {
                Ok(()) => {
                    self.conn
                        .prepare_cached("RELEASE autosync_row")?
                        .execute([])?;
                    outcomes.push(ExportOutcome::Applied { anchor: None });
                }
                Err(RowError::Rejected((kind, detail))) => {
                    self.conn
                        .execute_batch("ROLLBACK TO autosync_row; RELEASE autosync_row")?;
                    tracing::debug!(anchor = %c.anchor, error_type = kind, %detail, "row rejected");
                    outcomes.push(ExportOutcome::Failed {
                        error_type: kind.to_owned(),
                        detail,
                    });
                }
                Err(RowError::Fatal(e)) => return Err(e),
            }
        }
        Ok(outcomes)
    }
}

impl ExportSession for SqliteExport<'_> {
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        check_writable(self.s)?;
        let what = format!("cannot export to table `{}`", self.s.table);
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| in_step(step_error(&e, self.s, &what), "export"))?;
        let result = self
            .apply_batch(batch)
            .and_then(|outcomes| self.conn.execute_batch("COMMIT").map(|()| outcomes));
        result.map_err(|e| {
            if !self.conn.is_autocommit()
                && let Err(r) = self.conn.execute_batch("ROLLBACK")
            {
                tracing::warn!(error = %r, "rolling back a failed export batch failed");
            }
            in_step(step_error(&e, self.s, &what), "export")
        })
    }

    fn durable_per_batch(&self) -> bool {
        true
    }

    fn commit(self: Box<Self>) -> Result<(), ConnectorError> {
        Ok(())
    }
}
