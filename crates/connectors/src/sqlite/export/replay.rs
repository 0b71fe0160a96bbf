//! Whether an add over a row that is there already is a replay of this
//! add (a batch sent again after a crash), judged in SQL so that each
//! column's affinity applies, and the `already-exists` message that says
//! which values differ when it is not (see the module above). The row
//! and its child rows are found by both of the anchor's forms, as every
//! statement of the export finds them.

use super::{Forms, RowError, SqliteExport, ValueWrites};
use crate::change;
use crate::sqlite::db::{Fast, Stored, q};
use autosync_connector::ExportChange;
use rusqlite::types::Value as SqlValue;
use rusqlite::{ToSql, params_from_iter};
use std::collections::HashSet;

impl SqliteExport<'_> {
    /// An add whose anchor has a row already: `Ok` when it is a replay of
    /// this add, the row holding every value the add sends (`sets`,
    /// compared in SQL so that each column's affinity applies; the rows of
    /// each child table the add names, as a set; the values it adds and
    /// removes, there and not there); otherwise `already-exists`, naming
    /// the first values that differ, with nothing written. `anchor` is
    /// the forms of `c.anchor`.
    pub(super) fn replayed(
        &self,
        c: &ExportChange,
        anchor: &Forms,
        sets: &[(String, SqlValue)],
        children: &[(usize, Vec<Stored>)],
        values: &[ValueWrites],
    ) -> Result<(), RowError> {
        let mut differ: Vec<String> = Vec::new();
        let same = self.held_equal(anchor, sets)?;
        let columns: Vec<&(String, SqlValue)> = sets
            .iter()
            .zip(&same)
            .filter_map(|(set, same)| (!same).then_some(set))
            .collect();
        if !columns.is_empty() {
            let held = self.held(anchor, &columns)?;
            for ((name, sent), held) in columns.iter().zip(held) {
                differ.push(format!(
                    "`{name}`: the row holds {}, the add sends {}",
                    shown_stored(name, &held),
                    shown_stored(name, &Stored::from(sent.clone())),
                ));
            }
        }
        let rows_of = |i: usize| -> rusqlite::Result<HashSet<Stored, Fast>> {
            let mut held: HashSet<Stored, Fast> = HashSet::default();
            if let Some(sql) = self.children.get(i) {
                let mut stmt = self.conn.prepare_cached(&sql.select)?;
                let mut rows = stmt.query((&anchor[0], &anchor[1]))?;
                while let Some(row) = rows.next()? {
                    held.insert(Stored::from(row.get_ref(0)?));
                }
            }
            Ok(held)
        };
        for (i, wanted) in children {
            let held = rows_of(*i)?;
            let wanted: HashSet<&Stored, Fast> = wanted.iter().collect();
            if held.len() != wanted.len() || !held.iter().all(|v| wanted.contains(v)) {
                let Some(child) = self.schema.children.get(*i) else {
                    continue;
                };
                let name = child.attribute.as_str();
                differ.push(format!(
                    "`{name}`: the rows of table `{}` hold {}, the add sends {}",
                    child.table,
                    shown_set(name, held.iter()),
                    shown_set(name, wanted.iter().copied()),
                ));
            }
        }
        for (i, add, remove) in values {
            let held = rows_of(*i)?;
            let missing = add.iter().find(|v| !held.contains(*v));
            let left = remove.iter().find(|v| held.contains(*v));
            let Some(child) = self.schema.children.get(*i) else {
                continue;
            };
            let name = child.attribute.as_str();
            if let Some(v) = missing {
                differ.push(format!(
                    "`{name}`: the rows of table `{}` lack {}, which the add adds",
                    child.table,
                    shown_stored(name, v)
                ));
            } else if let Some(v) = left {
                differ.push(format!(
                    "`{name}`: the rows of table `{}` hold {}, which the add removes",
                    child.table,
                    shown_stored(name, v)
                ));
            }
        }
        if differ.is_empty() {
            return Ok(());
        }
        Err(RowError::Rejected((
            "already-exists",
            format!(
                "table `{}` has a row with anchor {:?} already, which this add did not write ({}): {}",
                self.s.table,
                c.anchor,
                change::named_differences(&differ),
                change::OUTSIDE
            ),
        )))
    }

    /// Per column of `sets`, whether the row of `anchor` holds its value
    /// (every row, should the anchor have several): one query, `IS` so
    /// that NULL equals NULL and the column's affinity applies to the
    /// value bound.
    fn held_equal(
        &self,
        anchor: &Forms,
        sets: &[(String, SqlValue)],
    ) -> rusqlite::Result<Vec<bool>> {
        let mut same = vec![true; sets.len()];
        if sets.is_empty() {
            return Ok(same);
        }
        let flags: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(i, (name, _))| format!("({} IS ?{})", q(name), i + 3))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} IN (?1, ?2)",
            flags.join(", "),
            q(&self.s.table),
            q(&self.s.anchor_column)
        );
        let bound = anchor
            .iter()
            .map(|v| v as &dyn ToSql)
            .chain(sets.iter().map(|(_, v)| v as &dyn ToSql));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(bound))?;
        while let Some(row) = rows.next()? {
            for (i, same) in same.iter_mut().enumerate() {
                if row.get::<_, Option<i64>>(i)? != Some(1) {
                    *same = false;
                }
            }
        }
        Ok(same)
    }

    /// The values the row of `anchor` holds in `columns`.
    fn held(
        &self,
        anchor: &Forms,
        columns: &[&(String, SqlValue)],
    ) -> rusqlite::Result<Vec<Stored>> {
        let names: Vec<String> = columns.iter().map(|(name, _)| q(name)).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} IN (?1, ?2) LIMIT 1",
            names.join(", "),
            q(&self.s.table),
            q(&self.s.anchor_column)
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query((&anchor[0], &anchor[1]))?;
        let mut out = Vec::with_capacity(columns.len());
        if let Some(row) = rows.next()? {
            for i in 0..columns.len() {
                out.push(Stored::from(row.get_ref(i)?));
            }
        }
        Ok(out)
    }
}

/// A stored value of attribute `name` for a message: cut short, never a
/// secret's (`(secret)` instead).
fn shown_stored(name: &str, v: &Stored) -> String {
    if change::secret_name(name) && !matches!(v, Stored::Null) {
        return "(secret)".to_owned();
    }
    match v {
        Stored::Null => "nothing".to_owned(),
        Stored::Integer(i) => i.to_string(),
        Stored::Real(bits) => f64::from_bits(*bits).to_string(),
        Stored::Text(t) => {
            let t = String::from_utf8_lossy(t);
            if t.starts_with("$autosync$") {
                return "(secret)".to_owned();
            }
            change::cut(serde_json::to_string(&t).unwrap_or_default())
        }
        Stored::Blob(b) => format!("{} bytes of binary", b.len()),
    }
}

/// The values of a child table for a message, in order, cut short.
fn shown_set<'v>(name: &str, values: impl Iterator<Item = &'v Stored>) -> String {
    let mut shown: Vec<String> = values.map(|v| shown_stored(name, v)).collect();
    if shown.is_empty() {
        return "none".to_owned();
    }
    shown.sort_unstable();
    let n = shown.len();
    let mut text = String::from("[");
    for (i, v) in shown.into_iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        if text.chars().count() + v.chars().count() > 60 {
            text.push_str(&format!("... ({n} values)"));
            break;
        }
        text.push_str(&v);
    }
    text.push(']');
    text
}
