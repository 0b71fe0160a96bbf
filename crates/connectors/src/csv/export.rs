//! Export to a CSV file: the session loads the current file (an output we
//! own) keyed by anchor, applies batches in memory, and `commit` replaces the
//! file atomically. Nothing is durable before `commit`. Row order is kept,
//! new rows go at the end; the header is kept, new attributes are appended
//! (or ordered by the `columns` setting).
//!
//! An add whose anchor has a row already is a replay of this add (a batch
//! sent again after a crash) only when that row holds every cell the add
//! writes, as the export writes them (the anchor, the object type and DN
//! columns, each attribute it names: the same text, a multi-valued
//! column's values joined the same way; an attribute it removes, an empty
//! cell): the row is then kept as it is, its other cells too. Any other
//! row (an account made before autosync under the anchor provisioning
//! gives) is never overwritten: the add fails with `already-exists`,
//! naming the first cells that differ, and the row is left as it is (and
//! no column it names is added). A delete-and-add replaces the row, as it
//! says.
//!
//! A DN is one object's, as in a directory: an add, rename or other change
//! that would give an object the DN (its type's `dn` column, ignoring
//! case) of another row fails with `already-exists`, naming the row's
//! object, and nothing of it is written (no column it names is added), so
//! that references by DN never name two objects. The file is written at
//! once: a DN freed by a delete or rename earlier in the batch may be
//! taken, and a change whose DN is held by an object whose own change
//! comes later in the batch waits for the batch's end, the waiting ones
//! applied together (two objects that swap their DNs, a rename onto the DN
//! of an object deleted later in the batch), as the JSON Lines export does
//! (`unique_dn`).
//!
//! An export that changes no row (nothing to send, or only values the file
//! already holds) and adds no column leaves an existing file untouched:
//! not rewritten, its modification time and inode unchanged.

use super::config::CsvSettings;
use super::import::{parse_header, reader};
use crate::change::Failure;
use crate::file;
use crate::settings::ObjectTypes;
use crate::unique_dn::{self, Dns, Prepared, Records};
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ExportChange, ExportOutcome, ExportSession,
};
use autosync_model::{ExportKind, ObjectTypeDef, Value};
use std::collections::HashMap;
use std::path::Path;

/// A running CSV export.
pub struct CsvExport<'a> {
    s: &'a CsvSettings,
    header: Vec<String>,
    columns: HashMap<String, usize>,
    /// Rows in file order; `None` once deleted. Cells may be fewer than the
    /// header (columns added later): missing cells are empty.
    rows: Vec<Option<Vec<Box<str>>>>,
    index: HashMap<Box<str>, usize>,
    /// The DNs the rows' types take from a column (folded) -> the anchor
    /// of the row that has it.
    dns: Dns,
    /// Whether the file must be written: a row changed, or there is no file
    /// yet (an export creates its target, empty when nothing to send).
    /// New columns are seen at `commit` (the header grew).
    dirty: bool,
    /// The header's length as read from the file.
    loaded_columns: usize,
}

impl<'a> CsvExport<'a> {
    /// Load the current target file (none yet: an empty one).
    pub fn begin(s: &'a CsvSettings) -> Result<CsvExport<'a>, ConnectorError> {
        file::check_target_folder(&s.path)?;
        let mut export = CsvExport {
            s,
            header: Vec::new(),
            columns: HashMap::new(),
            rows: Vec::new(),
            index: HashMap::new(),
            dns: Dns::default(),
            dirty: false,
            loaded_columns: 0,
        };
        let f = match std::fs::File::open(&s.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                export.dirty = true;
                return Ok(export);
            }
            Err(e) => return Err(file::io_error(&s.path, "cannot open", &e)),
        };
        let label = file::label(&s.path);
        let bad = |line: u64, what: &str| {
            ConnectorError::new(
                ConnectorErrorKind::Data,
                format!("cannot export to {label}: line {line}: {what}; fix or remove that line"),
            )
        };
        let mut rdr = reader(s, std::io::BufReader::new(f));
        let mut rec = ::csv::ByteRecord::new();
        let read = |rdr: &mut ::csv::Reader<_>, rec: &mut ::csv::ByteRecord| {
            rdr.read_byte_record(rec)
                .map_err(|e| file::io_error(&s.path, "cannot read", &std::io::Error::other(e)))
        };
        if !read(&mut rdr, &mut rec)? {
            return Ok(export);
        }
        for name in parse_header(&rec, &label)? {
            export.column(&name);
        }
        export.loaded_columns = export.header.len();
        while read(&mut rdr, &mut rec)? {
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            if rec.len() != export.header.len() {
                return Err(bad(
                    line,
                    &format!(
                        "expected {} fields, found {}",
                        export.header.len(),
                        rec.len()
                    ),
                ));
            }
            let mut cells = Vec::with_capacity(rec.len());
            for f in rec.iter() {
                let cell = std::str::from_utf8(f).map_err(|_| bad(line, "invalid UTF-8"))?;
                cells.push(Box::<str>::from(cell));
            }
            let anchor = export
                .row_anchor(&cells)
                .map_err(|(_, detail)| bad(line, &detail))?;
            // A file written before DNs were checked may hold one twice:
            // the first row keeps it.
            if let Some(dn) = export.row_dn(&cells) {
                export.dns.load(&dn, &anchor);
            }
            // A second row with an anchor (the import read the first, and
            // listed this one as `duplicate-anchor`) is kept as it is and
            // never changed: changes go to the first, as the import's
            // object is.
            if !export.index.contains_key(anchor.as_str()) {
                export.index.insert(anchor.into(), export.rows.len());
            }
            export.rows.push(Some(cells));
        }
        Ok(export)
    }

    /// The position of a column, appending it when new.
    fn column(&mut self, name: &str) -> usize {
        if let Some(&i) = self.columns.get(name) {
            return i;
        }
        self.header.push(name.to_owned());
        self.columns.insert(name.to_owned(), self.header.len() - 1);
        self.header.len() - 1
    }

    fn cell<'c>(&self, cells: &'c [Box<str>], column: &str) -> &'c str {
        self.columns
            .get(column)
            .and_then(|&i| cells.get(i))
            .map(|c| &**c)
            .unwrap_or("")
    }

    /// The object type of a loaded row.
    fn row_type(&self, cells: &[Box<str>]) -> Result<&ObjectTypeDef, Failure> {
        let type_value = self
            .s
            .types
            .type_column
            .as_deref()
            .map(|c| self.cell(cells, c));
        self.s.types.for_row(type_value)
    }

    /// The anchor of a loaded row.
    fn row_anchor(&self, cells: &[Box<str>]) -> Result<String, Failure> {
        let t = self.row_type(cells)?;
        let anchor = self.cell(cells, &t.anchor);
        if anchor.is_empty() {
            return Err(("missing-anchor", format!("column `{}` is empty", t.anchor)));
        }
        Ok(anchor.to_owned())
    }

    /// The DN a loaded row gives its object, when its type takes one from
    /// a column and that cell is not empty.
    fn row_dn(&self, cells: &[Box<str>]) -> Option<String> {
        let t = self.row_type(cells).ok()?;
        let dn = self.cell(cells, ObjectTypes::dn_attr(t)?);
        (!dn.is_empty()).then(|| dn.to_owned())
    }

    /// The text of one value in `column`: in a multi-valued column, its
    /// values escaped and joined (see `multi`).
    fn render(&self, column: &str, v: &Value) -> Result<String, Failure> {
        let sep = match &self.s.separator {
            Some(sep) if self.s.is_multi_valued(column) => sep.as_str(),
            _ => return render_single(column, v),
        };
        let values: &[Value] = match v {
            Value::Multi(values) => values,
            one => std::slice::from_ref(one),
        };
        let mut cell = String::new();
        for x in values.iter().filter(|x| !x.is_empty()) {
            if let Value::Multi(_) = x {
                return Err((
                    "value-not-representable",
                    format!("a value of multi-valued column `{column}` is itself a list"),
                ));
            }
            if !cell.is_empty() {
                cell.push_str(sep);
            }
            cell.push_str(&super::multi::escape(&x.to_text(), sep));
        }
        Ok(cell)
    }

    /// The object type of `c`, whose anchor column it does not change.
    fn object_type(&self, c: &ExportChange) -> Result<ObjectTypeDef, Failure> {
        let t = crate::change::object_type(&self.s.types, c)?.clone();
        if let Some(Some(v)) = c.changes.get(&t.anchor)
            && v.to_text() != c.anchor
        {
            return Err((
                "anchor-mismatch",
                format!("`{}` is the anchor and cannot change", t.anchor),
            ));
        }
        Ok(t)
    }

    /// The row `c` (not a delete) makes of its object's, not written yet
    /// (no column added): `None` when the file holds it as it is.
    fn prepare_row(&mut self, c: &ExportChange) -> Result<Option<Prepared<Row>>, Failure> {
        let types = &self.s.types;
        let t = self.object_type(c)?;
        let existing = self.index.get(c.anchor.as_str()).copied();
        let is_add = matches!(c.kind, ExportKind::Add | ExportKind::DeleteAdd);
        // The cells the change writes, in order (a later one for the same
        // column wins).
        let mut writes: Vec<(String, String)> = Vec::with_capacity(c.changes.len() + 3);
        writes.push((t.anchor.clone(), c.anchor.clone()));
        if let Some(col) = &types.type_column {
            writes.push((col.clone(), c.object_type.clone()));
        }
        let dn_attr = ObjectTypes::dn_attr(&t);
        if let (true, Some(d)) = (is_add, dn_attr) {
            writes.push((d.to_owned(), c.dn.clone()));
        }
        if let Some(new_dn) = &c.new_dn {
            match dn_attr {
                Some(d) => writes.push((d.to_owned(), new_dn.clone())),
                None => {
                    return Err((
                        "rename-not-supported",
                        format!("object type `{}` has no DN attribute", t.name),
                    ));
                }
            }
        }
        for (name, value) in &c.changes {
            let text = match value {
                Some(v) => self.render(name, v)?,
                None => String::new(),
            };
            writes.push((name.clone(), text));
        }
        if let (ExportKind::Add, Some(i)) = (c.kind, existing) {
            // A replay: the row holds every cell the add writes, and
            // keeps the others.
            self.replayed(c, i, &writes)?;
            return Ok(None);
        }
        let old = existing
            .and_then(|i| self.rows.get(i))
            .and_then(Option::as_deref);
        let cells: Vec<String> = match (is_add, old) {
            (true, _) => Vec::new(),
            (false, Some(old)) => old.iter().map(|c| c.to_string()).collect(),
            (false, None) => {
                return Err((
                    "object-not-found",
                    format!("no row has anchor {:?}", c.anchor),
                ));
            }
        };
        let mut row = Row {
            cells,
            new: Vec::new(),
        };
        for (name, text) in writes {
            row.set(&self.columns, name, text);
        }
        if let Some(old) = old
            && same_cells(old, &row.cells, self.header.len())
            && row.new.iter().all(|(_, text)| text.is_empty())
        {
            // The row already holds these values: nothing to write (the
            // columns it names are added, empty).
            for (name, _) in &row.new {
                self.column(name);
            }
            return Ok(None);
        }
        if row.texts().any(|c| c.contains(['\n', '\r'])) {
            self.reads_back(&row)?;
        }
        let dn = dn_attr
            .map(|d| row.get(&self.columns, d))
            .filter(|dn| !dn.is_empty())
            .map(str::to_owned);
        let old_dn = old.and_then(|old| self.row_dn(old));
        Ok(Some(Prepared::new(row, dn, old_dn.as_deref())))
    }

    /// An add whose anchor has row `i` already: `Ok` when it is a replay
    /// of this add (the row holds each of `writes`, the cells the add
    /// writes: a column it does not have is an empty cell), the row kept
    /// as it is; otherwise `already-exists`, naming the first cells that
    /// differ, the row left as it is.
    fn replayed(
        &self,
        c: &ExportChange,
        i: usize,
        writes: &[(String, String)],
    ) -> Result<(), Failure> {
        let Some(row) = self.rows.get(i).and_then(Option::as_deref) else {
            return Err((
                "already-exists",
                format!(
                    "a row has anchor {:?} and then did not: try again",
                    c.anchor
                ),
            ));
        };
        let mut differ: Vec<String> = Vec::new();
        for (at, (name, sent)) in writes.iter().enumerate() {
            if writes[at + 1..].iter().any(|(later, _)| later == name) {
                continue;
            }
            let held = self.cell(row, name);
            if held != sent {
                differ.push(format!(
                    "`{name}`: the row holds {}, the add sends {}",
                    shown_cell(name, held),
                    shown_cell(name, sent)
                ));
            }
        }
        if differ.is_empty() {
            return Ok(());
        }
        let named = crate::change::named_differences(&differ);
        Err((
            "already-exists",
            format!(
                "file `{}` has a row with anchor {:?} already, which this add did not write ({named}): {}",
                file::label(&self.s.path),
                c.anchor,
                crate::change::OUTSIDE
            ),
        ))
    }

    /// A row whose values hold line breaks is written only when the import
    /// reads it back as one record: a line inside a quoted value that
    /// reads as a row of its own (`first\n9,Evil,x\nlast`), or a value
    /// over `max_record_lines` lines, is taken by the import for a quote
    /// left open, and the row would come back as an error and a stray
    /// object (the same judge as the import's, `quotes`).
    ///
    /// `row` is judged as the file would hold it, its new columns and
    /// those of the `columns` setting appended to the header (which is
    /// left as it is: a row refused adds no column).
    fn reads_back(&self, row: &Row) -> Result<(), Failure> {
        let mut header = self.header.clone();
        let mut cells: Vec<&str> = row.cells.iter().map(String::as_str).collect();
        cells.resize(header.len(), "");
        for (name, text) in &row.new {
            header.push(name.clone());
            cells.push(text);
        }
        let configured = self.s.columns.as_deref().unwrap_or_default();
        for name in configured {
            if !header.contains(name) {
                header.push(name.clone());
            }
        }
        let order = order_in(&header, configured);
        let mut w = ::csv::WriterBuilder::new()
            .delimiter(self.s.delimiter)
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let written = w.write_record(order.iter().map(|&i| cells.get(i).copied().unwrap_or("")));
        let raw = match (written, w.into_inner()) {
            (Ok(()), Ok(raw)) => raw,
            _ => return Ok(()),
        };
        let rules = super::quotes::Rules {
            delimiter: self.s.delimiter,
            fields: header.len(),
            max_lines: self.s.max_record_lines,
        };
        match super::quotes::judge(&raw, &rules, false, 1) {
            None => Ok(()),
            Some(u) => Err((
                "value-not-representable",
                format!(
                    "a value with line breaks would not read back from a CSV file as it is (the \
                     import would take its quote for one left open: {}); the row is not written",
                    u.why
                ),
            )),
        }
    }

    /// Output column order: `columns` first (added to the header when
    /// new), then the rest in header order.
    fn order(&mut self) -> Vec<usize> {
        let s = self.s;
        let configured = s.columns.as_deref().unwrap_or_default();
        for name in configured {
            self.column(name);
        }
        order_in(&self.header, configured)
    }
}

/// The output column order of `header`: the `columns` setting's first
/// (those it has), then the rest in header order.
fn order_in(header: &[String], columns: &[String]) -> Vec<usize> {
    let mut order = Vec::with_capacity(header.len());
    for name in columns {
        if let Some(i) = header.iter().position(|h| h == name)
            && !order.contains(&i)
        {
            order.push(i);
        }
    }
    for i in 0..header.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    order
}

/// A row a change makes, worked out before it is written: its cells in
/// the header's columns (fewer when the last are empty), then the cells of
/// columns the header does not have yet, in the order the change names
/// them (added to the header when the row is written).
pub struct Row {
    cells: Vec<String>,
    new: Vec<(String, String)>,
}

impl Row {
    /// Set the cell of column `name` (positions: `columns`).
    fn set(&mut self, columns: &HashMap<String, usize>, name: String, text: String) {
        if let Some(&i) = columns.get(&name) {
            if self.cells.len() <= i {
                self.cells.resize(i + 1, String::new());
            }
            if let Some(cell) = self.cells.get_mut(i) {
                *cell = text;
            }
            return;
        }
        match self.new.iter_mut().find(|(n, _)| *n == name) {
            Some((_, cell)) => *cell = text,
            None => self.new.push((name, text)),
        }
    }

    /// The cell of column `name` (positions: `columns`).
    fn get<'r>(&'r self, columns: &HashMap<String, usize>, name: &str) -> &'r str {
        match columns.get(name) {
            Some(&i) => self.cells.get(i).map_or("", String::as_str),
            None => self
                .new
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, text)| text.as_str()),
        }
    }

    /// Every cell's text.
    fn texts(&self) -> impl Iterator<Item = &str> {
        self.cells
            .iter()
            .chain(self.new.iter().map(|(_, text)| text))
            .map(String::as_str)
    }
}

impl Records for CsvExport<'_> {
    type Record = Row;

    fn dns(&self) -> &Dns {
        &self.dns
    }

    fn dns_mut(&mut self) -> &mut Dns {
        &mut self.dns
    }

    fn has(&self, anchor: &str) -> bool {
        self.index.contains_key(anchor)
    }

    fn path(&self) -> &Path {
        &self.s.path
    }

    fn delete(&mut self, c: &ExportChange) -> Result<Option<String>, Failure> {
        self.object_type(c)?;
        let Some(i) = self.index.remove(c.anchor.as_str()) else {
            return Ok(None);
        };
        self.dirty = true;
        let old = self.rows.get_mut(i).and_then(Option::take);
        Ok(old.and_then(|cells| self.row_dn(&cells)))
    }

    fn prepare(&mut self, c: &ExportChange) -> Result<Option<Prepared<Row>>, Failure> {
        self.prepare_row(c)
    }

    fn put(&mut self, anchor: &str, row: Row) {
        let Row { mut cells, new } = row;
        for (name, text) in new {
            let i = self.column(&name);
            if cells.len() <= i {
                cells.resize(i + 1, String::new());
            }
            if let Some(cell) = cells.get_mut(i) {
                *cell = text;
            }
        }
        self.dirty = true;
        let row = Some(cells.into_iter().map(String::into_boxed_str).collect());
        match self.index.get(anchor).copied() {
            Some(i) => {
                if let Some(slot) = self.rows.get_mut(i) {
                    *slot = row;
                }
            }
            None => {
                self.index.insert(anchor.into(), self.rows.len());
                self.rows.push(row);
            }
        }
    }
}

/// A cell of column `name` for a message: cut short, never a secret's
/// (`(secret)` for a value in a secret's form, or any value of a column
/// whose name says it holds one: the connector is not told which
/// attributes are write-only, and the engine sends their values in clear).
fn shown_cell(name: &str, text: &str) -> String {
    if text.is_empty() {
        return "nothing".to_owned();
    }
    if crate::change::secret_name(name) || text.starts_with("$autosync$") {
        return "(secret)".to_owned();
    }
    crate::change::cut(serde_json::to_string(text).unwrap_or_default())
}

/// Whether two rows read the same in a file of `width` columns (a missing
/// cell is an empty one).
fn same_cells(old: &[Box<str>], new: &[String], width: usize) -> bool {
    (0..width).all(|i| old.get(i).map_or("", |c| &**c) == new.get(i).map_or("", String::as_str))
}

/// The text of a value in a column holding one value (a list of one
/// distinct value is that value).
fn render_single(column: &str, v: &Value) -> Result<String, Failure> {
    match v {
        Value::Multi(values) => {
            let mut present = values.iter().filter(|x| !x.is_empty());
            let first = present.next();
            match first {
                None => Ok(String::new()),
                Some(one) if present.all(|x| x.to_text() == one.to_text()) => {
                    render_single(column, one)
                }
                Some(_) => Err((
                    "value-not-representable",
                    format!(
                        "column `{column}` is not listed in `multi_valued`, so it cannot hold several values"
                    ),
                )),
            }
        }
        other => Ok(other.to_text()),
    }
}

impl ExportSession for CsvExport<'_> {
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        Ok(unique_dn::apply(self, batch))
    }

    fn durable_per_batch(&self) -> bool {
        false
    }

    fn commit(mut self: Box<Self>) -> Result<(), ConnectorError> {
        let order = self.order();
        let s = self.s;
        if !self.dirty && self.header.len() == self.loaded_columns {
            tracing::debug!(file = %s.path.display(), "CSV export changed nothing; the file is left as it is");
            return Ok(());
        }
        file::write_atomically(&s.path, |out| {
            if order.is_empty() {
                return Ok(());
            }
            let mut w = ::csv::WriterBuilder::new()
                .delimiter(s.delimiter)
                .terminator(::csv::Terminator::Any(b'\n'))
                .from_writer(out);
            w.write_record(order.iter().map(|&i| self.header[i].as_str()))?;
            for cells in self.rows.iter().flatten() {
                w.write_record(
                    order
                        .iter()
                        .map(|&i| cells.get(i).map(|c| &**c).unwrap_or("")),
                )?;
            }
            w.flush()
        })?;
        tracing::debug!(file = %s.path.display(), rows = self.index.len(), "CSV export committed");
        Ok(())
    }
}
