//! Streaming import of a CSV file: one reused `ByteRecord`, batches of
//! `batch_size` objects, per-record errors that never stop the rest, and the
//! file's fingerprint computed in the same pass as the watermark.
//!
//! An anchor on more than one record is no object's: a first pass over the
//! file finds the repeated anchors (`repeats`), and the read reports every record that has one as `duplicate-anchor`,
//! naming all their lines. Keeping the first (or the last) would let a
//! row's place decide whose values an account takes: an old terminated
//! record of a rehired person put first would delete the account.
//!
//! Memory: constant in the file size except for the set of anchors the
//! first pass holds: about 70 bytes per row plus the anchor's length, i.e.
//! roughly 70-80 MB for a million rows with short anchors; the read itself
//! keeps only the repeated ones.

use super::config::CsvSettings;
use super::quotes;
use super::source::Source;
use crate::file::{self, Fingerprint, HashingReader};
use crate::repeated::repeated_detail;
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ImportChange, ImportItem, ImportRecordError, ImportStream,
    ImportedObject,
};
use autosync_model::{Attributes, ObjectTypeDef, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

mod repeats;

/// Column positions, computed once from the header.
#[derive(Debug)]
pub struct Layout {
    pub header: Vec<String>,
    pub type_col: Option<usize>,
    /// Per object type (in `types` order): the anchor and DN columns.
    pub per_type: Vec<(usize, Option<usize>)>,
    pub multi: Vec<bool>,
    /// The columns in the order of their names. A record's attributes are
    /// inserted in the reverse of this order: each new name is then the
    /// smallest, found after one comparison (the map of a record is one
    /// node, searched from its start).
    pub by_name: Vec<usize>,
}

impl Layout {
    pub fn new(
        header: Vec<String>,
        s: &CsvSettings,
        label: &str,
    ) -> Result<Layout, ConnectorError> {
        let pos = |name: &str| header.iter().position(|h| h == name);
        let data_err =
            |msg: String| ConnectorError::new(ConnectorErrorKind::Data, format!("{label}: {msg}"));
        let type_col =
            match &s.types.type_column {
                Some(c) => Some(pos(c).ok_or_else(|| {
                    data_err(format!("the header has no object type column `{c}`"))
                })?),
                None => None,
            };
        let mut per_type = Vec::with_capacity(s.types.types.len());
        for t in &s.types.types {
            let anchor = pos(&t.anchor).ok_or_else(|| {
                data_err(format!(
                    "the header has no column `{}` (the anchor of object type `{}`); columns: {}",
                    t.anchor,
                    t.name,
                    header.join(", ")
                ))
            })?;
            let dn = crate::settings::ObjectTypes::dn_attr(t).and_then(pos);
            per_type.push((anchor, dn));
        }
        let multi = header.iter().map(|h| s.is_multi_valued(h)).collect();
        let mut by_name: Vec<usize> = (0..header.len()).collect();
        by_name.sort_by(|a, b| header.get(*a).cmp(&header.get(*b)));
        Ok(Layout {
            header,
            type_col,
            per_type,
            multi,
            by_name,
        })
    }
}

/// Read and check the header row: UTF-8, no empty or repeated name.
pub fn parse_header(
    record: &::csv::ByteRecord,
    label: &str,
) -> Result<Vec<String>, ConnectorError> {
    let mut header = Vec::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let field = if i == 0 {
            field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
        } else {
            field
        };
        let name = std::str::from_utf8(field).map_err(|_| {
            ConnectorError::new(
                ConnectorErrorKind::Data,
                format!(
                    "{label} line 1: column {} of the header is not valid UTF-8",
                    i + 1
                ),
            )
        })?;
        let name = name.trim();
        if name.is_empty() || header.iter().any(|h| h == name) {
            return Err(ConnectorError::new(
                ConnectorErrorKind::Data,
                format!(
                    "{label} line 1: column {} of the header is empty or repeated ({name:?})",
                    i + 1
                ),
            ));
        }
        header.push(name.to_owned());
    }
    Ok(header)
}

/// An anchor cell empty or of only spaces (an export padding an empty
/// cell): no anchor, else a blanked row would be a new object under ` `
/// and its own deleted. An anchor with text is read as it is.
fn blank(anchor: &str) -> bool {
    anchor.trim().is_empty()
}

/// The anchor (of the first object type) among a record's fields, when it
/// is there, valid UTF-8 and not blank: what a record error names.
fn anchor_in<'f>(layout: &Layout, field: impl Fn(usize) -> Option<&'f [u8]>) -> Option<String> {
    let (column, _) = layout.per_type.first()?;
    std::str::from_utf8(field(*column)?)
        .ok()
        .filter(|a| !blank(a))
        .map(str::to_owned)
}

/// A CSV reader with the connector's dialect.
pub fn reader<R: std::io::Read>(s: &CsvSettings, inner: R) -> ::csv::Reader<R> {
    ::csv::ReaderBuilder::new()
        .delimiter(s.delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(inner)
}

/// Where the csv reader says a record is (see [`CsvImport::line`]).
#[derive(Clone, Copy, Debug)]
struct At {
    line: u64,
    byte: u64,
}

/// What the file holds next: a record (in `CsvImport::record`) or a record
/// error (at the record's place).
enum Next {
    Record(At),
    Error(At, ImportRecordError),
}

/// A record that reads as an object: its text (the record's bytes), its
/// object type, its anchor and its DN column.
struct Row<'r, 's> {
    text: &'r str,
    otype: &'s ObjectTypeDef,
    anchor: &'r str,
    dn_col: Option<usize>,
}

impl At {
    fn of(pos: Option<&::csv::Position>) -> At {
        pos.map_or(At { line: 0, byte: 0 }, |p| At {
            line: p.line(),
            byte: p.byte(),
        })
    }
}

/// A running CSV import.
pub struct CsvImport<'a> {
    s: &'a CsvSettings,
    label: String,
    reader: Option<::csv::Reader<Source>>,
    layout: Option<Layout>,
    record: ::csv::ByteRecord,
    /// A second handle on the open file (sharing its offset), for the
    /// first pass that finds the repeated anchors; none once it is done.
    twin: Option<File>,
    /// The anchors on more than one record -> the lines of those records.
    repeats: HashMap<Box<str>, Vec<u64>>,
    /// A second handle on the file, to find the line of a record in error.
    lookup: RefCell<Option<File>>,
    mtime_ns: u128,
    /// The file's size when opened (see `file::check_read_whole`).
    size: u64,
    watermark: Option<String>,
    unchanged: bool,
    /// The last record read spans lines (see `check_quotes`).
    after_multi_line: bool,
    /// Whether a repeated anchor is a `duplicate-anchor` error (not when
    /// rows are read to be grouped: see `group`).
    unique: bool,
}

impl<'a> CsvImport<'a> {
    pub fn start(
        s: &'a CsvSettings,
        watermark: Option<&str>,
    ) -> Result<CsvImport<'a>, ConnectorError> {
        let label = file::label(&s.path);
        if let Some(fp) = watermark.and_then(Fingerprint::parse)
            && fp.matches(&s.path)?
        {
            tracing::debug!(file = %s.path.display(), "file unchanged since the watermark");
            return Ok(CsvImport {
                s,
                label,
                reader: None,
                layout: None,
                record: ::csv::ByteRecord::new(),
                twin: None,
                repeats: HashMap::new(),
                lookup: RefCell::new(None),
                mtime_ns: fp.mtime_ns,
                size: fp.size,
                watermark: Some(fp.to_watermark()),
                unchanged: true,
                after_multi_line: false,
                unique: true,
            });
        }
        let (f, meta) = file::open_source(&s.path)?;
        let twin = f
            .try_clone()
            .map_err(|e| file::io_error(&s.path, "cannot open", &e))?;
        let mut reader = reader(s, Source::new(HashingReader::new(f), s.max_record_lines));
        let mut record = ::csv::ByteRecord::new();
        let layout = match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let end = reader.position().byte();
                reader.get_mut().record_done(end);
                Some(Layout::new(parse_header(&record, &label)?, s, &label)?)
            }
            Ok(false) => None, // an empty file: no objects
            Err(e) => {
                return Err(file::io_error(
                    &s.path,
                    "cannot read",
                    &std::io::Error::other(e),
                ));
            }
        };
        Ok(CsvImport {
            s,
            label,
            reader: Some(reader),
            layout,
            record,
            twin: Some(twin),
            repeats: HashMap::new(),
            lookup: RefCell::new(None),
            mtime_ns: file::mtime_ns(&meta),
            size: meta.len(),
            watermark: None,
            unchanged: false,
            after_multi_line: false,
            unique: true,
        })
    }

    /// Rows whose anchors may repeat (read to be grouped).
    pub fn repeating_anchors(mut self) -> Self {
        self.unique = false;
        self.twin = None;
        self
    }

    /// The file was read to its end: check it was not changed meanwhile,
    /// and make the watermark.
    fn finish(&mut self) -> Result<(), ConnectorError> {
        if let Some(reader) = self.reader.take() {
            let inner = reader.into_inner().into_inner();
            self.watermark =
                Some(inner.whole_file_watermark(&self.label, self.size, self.mtime_ns)?);
        }
        self.repeats = HashMap::new();
        self.lookup = RefCell::new(None);
        Ok(())
    }

    /// The line a record starts on. The csv reader positions a record
    /// before the line breaks it skips (blank lines, the `\n` of the `\r\n`
    /// that ended the previous record), so those are counted from the file;
    /// only for messages, so only on errors.
    fn line(&self, at: At) -> u64 {
        let skipped = || -> std::io::Result<u64> {
            let mut lookup = self.lookup.borrow_mut();
            let f = match lookup.as_mut() {
                Some(f) => f,
                None => lookup.insert(File::open(&self.s.path)?),
            };
            f.seek(SeekFrom::Start(at.byte))?;
            let mut newlines = 0;
            let mut buf = [0u8; 512];
            loop {
                let n = f.read(&mut buf)?;
                for b in buf.get(..n).unwrap_or_default() {
                    match b {
                        b'\n' => newlines += 1,
                        b'\r' => {}
                        _ => return Ok(newlines),
                    }
                }
                if n == 0 {
                    return Ok(newlines);
                }
            }
        };
        at.line + skipped().unwrap_or(0)
    }

    fn record_error(
        &self,
        at: At,
        anchor: Option<String>,
        error_type: &str,
        detail: String,
    ) -> ImportItem {
        Err(self.error_at(at, anchor, error_type, detail))
    }

    fn error_at(
        &self,
        at: At,
        anchor: Option<String>,
        error_type: &str,
        detail: String,
    ) -> ImportRecordError {
        ImportRecordError {
            anchor,
            location: format!("{} line {}", self.label, self.line(at)),
            error_type: error_type.to_owned(),
            detail,
        }
    }

    /// Check the quotes of the current record (at `at`, ending at `end`)
    /// where the lenient csv reader could hide an unclosed one (see
    /// [`quotes`]): a record holding a line break in a quoted field (or cut
    /// at the line limit) is judged, and one judged unclosed is a
    /// `malformed-record` error at its first line, with its anchor when its
    /// first line holds it, and reading goes on from its second line; the
    /// record right after one spanning lines must have its quotes in place.
    fn check_quotes(
        &mut self,
        layout: &Layout,
        at: At,
        end: u64,
        spans_lines: bool,
    ) -> Result<Option<ImportRecordError>, ConnectorError> {
        let after_multi_line = std::mem::take(&mut self.after_multi_line);
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let source = reader.get_ref();
        let Some(raw) = source.bytes(at.byte, end) else {
            return Ok(None);
        };
        let first_line = at.line + quotes::newlines(&raw[..quotes::content_start(raw)]);
        let error = |anchor: Option<String>, detail: String| {
            Some(ImportRecordError {
                anchor,
                location: format!("{} line {first_line}", self.label),
                error_type: "malformed-record".to_owned(),
                detail,
            })
        };
        if !spans_lines && !source.capped() {
            // The record right after one that spans lines.
            let Some(quote) =
                quotes::misplaced_quote(raw, self.s.delimiter).filter(|_| after_multi_line)
            else {
                return Ok(None);
            };
            let detail = format!(
                "a quote stands inside a field on line {}: the record before spans lines, so this \
                 one is read strictly (a quote left open earlier may have ended that record inside \
                 this row)",
                at.line + quotes::newlines(raw.get(..quote).unwrap_or_default())
            );
            let item = error(anchor_in(layout, |i| self.record.get(i)), detail);
            reader.get_mut().record_done(end);
            return Ok(item);
        }
        let rules = quotes::Rules {
            delimiter: self.s.delimiter,
            fields: layout.header.len(),
            max_lines: self.s.max_record_lines,
        };
        let Some(unclosed) = quotes::judge(raw, &rules, source.capped(), first_line) else {
            self.after_multi_line = true;
            return Ok(None);
        };
        let fields = quotes::first_line_fields(raw, self.s.delimiter);
        let anchor = anchor_in(layout, |i| fields.get(i).map(Vec::as_slice));
        let item = error(anchor, unclosed.why);
        let resume = raw.get(..unclosed.resume).unwrap_or(raw);
        let mut pos = ::csv::Position::new();
        pos.set_byte(at.byte + resume.len() as u64)
            .set_line(at.line + quotes::newlines(resume))
            .set_record(reader.position().record());
        let byte = pos.byte();
        reader
            .seek_raw(SeekFrom::Start(byte), pos)
            .map_err(|e| file::io_error(&self.s.path, "cannot read", &std::io::Error::other(e)))?;
        Ok(item)
    }

    /// The current record's object type and anchor, or the record error
    /// it is (naming its anchor when it can be read).
    fn identify(&self, layout: &Layout, at: At) -> Result<Row<'_, 'a>, ImportRecordError> {
        let rec = &self.record;
        let field_str = |i: usize| rec.get(i).and_then(|f| std::str::from_utf8(f).ok());
        let fallback_anchor = || {
            layout
                .per_type
                .first()
                .and_then(|(a, _)| field_str(*a))
                .filter(|a| !blank(a))
                .map(str::to_owned)
        };
        if rec.len() != layout.header.len() {
            let detail = format!(
                "expected {} fields, found {}",
                layout.header.len(),
                rec.len()
            );
            return Err(self.error_at(at, fallback_anchor(), "malformed-record", detail));
        }
        let text = match std::str::from_utf8(rec.as_slice()) {
            Ok(t)
                if (0..rec.len())
                    .all(|i| rec.range(i).is_some_and(|r| t.is_char_boundary(r.end))) =>
            {
                t
            }
            _ => {
                let col = (0..rec.len())
                    .find(|i| field_str(*i).is_none())
                    .unwrap_or(0);
                let name = layout.header.get(col).map(String::as_str).unwrap_or("?");
                let detail = format!("column `{name}` is not valid UTF-8");
                return Err(self.error_at(at, fallback_anchor(), "invalid-utf8", detail));
            }
        };
        let field = |i: usize| rec.range(i).and_then(|r| text.get(r)).unwrap_or("");
        let type_value = layout.type_col.map(field);
        let types = &self.s.types;
        let (ti, otype) = match types.for_row(type_value) {
            Ok(t) => (
                types
                    .types
                    .iter()
                    .position(|x| x.name == t.name)
                    .unwrap_or(0),
                t,
            ),
            Err((kind, detail)) => return Err(self.error_at(at, fallback_anchor(), kind, detail)),
        };
        let Some(&(anchor_col, dn_col)) = layout.per_type.get(ti) else {
            return Err(self.error_at(at, None, "unknown-object-type", otype.name.clone()));
        };
        let anchor = field(anchor_col);
        if blank(anchor) {
            let detail = if anchor.is_empty() {
                format!("no anchor: column `{}` is empty", otype.anchor)
            } else {
                format!("no anchor: column `{}` holds only spaces", otype.anchor)
            };
            return Err(self.error_at(at, None, "missing-anchor", detail));
        }
        Ok(Row {
            text,
            otype,
            anchor,
            dn_col,
        })
    }

    /// Turn the current record into an object or a record error.
    fn item(&self, layout: &Layout, at: At) -> ImportItem {
        let row = self.identify(layout, at)?;
        let anchor = row.anchor;
        if let Some(lines) = self.repeats.get(anchor) {
            let detail = repeated_detail(anchor, lines, &self.label);
            return self.record_error(at, Some(anchor.to_owned()), "duplicate-anchor", detail);
        }
        let rec = &self.record;
        let field = |i: usize| rec.range(i).and_then(|r| row.text.get(r)).unwrap_or("");
        let mut attributes = Attributes::new();
        for &i in layout.by_name.iter().rev() {
            let cell = field(i);
            if cell.is_empty() || Some(i) == layout.type_col {
                continue;
            }
            let Some(name) = layout.header.get(i) else {
                continue;
            };
            let value = match (&self.s.separator, layout.multi.get(i)) {
                (Some(sep), Some(true)) => {
                    let values: Vec<Value> = super::multi::split(cell, sep)
                        .into_iter()
                        .map(|v| Value::String(v.into_owned()))
                        .collect();
                    if values.is_empty() {
                        continue;
                    }
                    Value::Multi(values)
                }
                _ => Value::from(cell),
            };
            attributes.insert(name.clone(), value);
        }
        let dn = row
            .dn_col
            .map(field)
            .filter(|d| !d.is_empty())
            .unwrap_or(anchor);
        Ok(ImportedObject {
            values: Default::default(),
            object_type: row.otype.name.clone(),
            anchor: anchor.to_owned(),
            dn: dn.to_owned(),
            change: ImportChange::Full,
            attributes,
        })
    }

    /// Read the next record (`None` at the end of the file), with the
    /// quote checks; a record is left in `self.record`.
    fn next_record(&mut self, layout: &Layout) -> Result<Option<Next>, ConnectorError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        match reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                let at = At::of(self.record.position());
                let end = reader.position().byte();
                let spans_lines = memchr::memchr2(b'\n', b'\r', self.record.as_slice()).is_some();
                if (spans_lines || self.after_multi_line || reader.get_ref().capped())
                    && let Some(error) = self.check_quotes(layout, at, end, spans_lines)?
                {
                    return Ok(Some(Next::Error(at, error)));
                }
                if let Some(reader) = self.reader.as_mut() {
                    reader.get_mut().record_done(end);
                }
                Ok(Some(Next::Record(at)))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                let at = At::of(e.position());
                if let ::csv::ErrorKind::Io(io) = e.kind() {
                    return Err(file::io_error(&self.s.path, "cannot read", io));
                }
                let error = self.error_at(at, None, "malformed-record", e.to_string());
                Ok(Some(Next::Error(at, error)))
            }
        }
    }
}

impl ImportStream for CsvImport<'_> {
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError> {
        let Some(layout) = self.layout.take() else {
            self.finish()?;
            return Ok(None);
        };
        if self.unique {
            self.find_repeats(&layout)?;
        }
        let mut batch = Vec::with_capacity(self.s.batch_size.min(16_384));
        let mut done = false;
        while batch.len() < self.s.batch_size {
            match self.next_record(&layout)? {
                Some(Next::Record(at)) => batch.push(self.item(&layout, at)),
                Some(Next::Error(_, error)) => batch.push(Err(error)),
                None => {
                    done = true;
                    break;
                }
            }
        }
        if done {
            self.finish()?;
        } else {
            self.layout = Some(layout);
        }
        Ok(if batch.is_empty() { None } else { Some(batch) })
    }

    fn watermark(&self) -> Option<String> {
        self.watermark.clone()
    }

    fn unchanged(&self) -> bool {
        self.unchanged
    }
}
