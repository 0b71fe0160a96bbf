//! Streaming import of a JSON Lines file: one reused line buffer, batches of
//! `batch_size` objects, per-line errors (invalid UTF-8, invalid JSON, a
//! line that is not an object, missing or duplicate anchor) that never stop
//! the rest, and the file's fingerprint computed in the same pass.
//!
//! An anchor on more than one line is no object's: a first pass over the
//! open file finds the repeated anchors (see [`find_repeats`]), and the
//! read reports every line that has one as `duplicate-anchor`, naming all
//! of them. Keeping the first (or the last) would let a line's place
//! decide whose values an account takes.
//!
//! Memory: constant in the file size except for the set of anchors the
//! first pass holds, roughly 60-70 MB per million short anchors; the read
//! itself keeps only the repeated ones.

use super::config::JsonlSettings;
use crate::change::Failure;
use crate::file::{self, Fingerprint, HashingReader};
use crate::repeated::repeated_detail;
use crate::settings::ObjectTypes;
use autosync_connector::{
    ConnectorError, ImportChange, ImportItem, ImportRecordError, ImportStream, ImportedObject,
};
use autosync_model::{Attributes, ObjectTypeDef, Value};
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};

/// Parse one line's text into attributes (`null` values dropped).
pub fn parse_line(text: &str) -> Result<Attributes, Failure> {
    match serde_json::from_str::<BTreeMap<String, Option<Value>>>(text) {
        Ok(map) => Ok(map
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()),
        Err(e) => {
            let valid = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            let kind = match (valid, text.trim_start().starts_with('{')) {
                (true, false) => {
                    return Err((
                        "not-an-object",
                        "the line is JSON but not an object".to_owned(),
                    ));
                }
                (true, true) => "invalid-value",
                (false, _) => "invalid-json",
            };
            Err((kind, e.to_string()))
        }
    }
}

/// The anchor of a line that cannot be imported, when it can still be
/// read: the line (with invalid UTF-8 replaced) is a JSON object whose
/// anchor attribute (of the first object type, as the CSV connector does)
/// is a non-empty string or an integer. A full import keeps the object
/// so named, with the error, instead of staging its delete.
pub(super) fn fallback_anchor(types: &ObjectTypes, text: &str) -> Option<String> {
    let t = types.types.first()?;
    let serde_json::Value::Object(map) = serde_json::from_str(text).ok()? else {
        return None;
    };
    match map.get(&t.anchor)? {
        serde_json::Value::String(a) if !a.is_empty() && !a.contains('\u{FFFD}') => Some(a.clone()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A record's object type, anchor and DN.
pub fn identify<'t>(
    types: &'t ObjectTypes,
    attrs: &Attributes,
) -> Result<(&'t ObjectTypeDef, String, String), Failure> {
    let type_value = types
        .type_column
        .as_ref()
        .map(|c| attrs.get(c).map(Value::to_text).unwrap_or_default());
    let t = types.for_row(type_value.as_deref())?;
    let anchor = match attrs.get(&t.anchor) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Integer(i)) => i.to_string(),
        Some(Value::String(_)) | None => {
            return Err((
                "missing-anchor",
                format!("no anchor: attribute `{}` is absent or empty", t.anchor),
            ));
        }
        Some(_) => {
            return Err((
                "invalid-anchor",
                format!(
                    "anchor attribute `{}` is not a string or an integer",
                    t.anchor
                ),
            ));
        }
    };
    let dn = ObjectTypes::dn_attr(t)
        .and_then(|d| attrs.get(d))
        .map(Value::to_text)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| anchor.clone());
    Ok((t, anchor, dn))
}

/// A line's object type, anchor and DN as the import reads them: as
/// [`identify`] does, and a string anchor of only spaces (an export padding
/// an empty value) is missing too. Read as an anchor, it would make a line
/// whose anchor was blanked a new object, and delete the line's real one.
/// An anchor with text is kept as it is, spaces around it included. Only
/// the import: the export reads its own file's lines with [`identify`], so
/// that a line an older import wrote under such an anchor can be removed.
fn identify_read<'t>(
    types: &'t ObjectTypes,
    attrs: &Attributes,
) -> Result<(&'t ObjectTypeDef, String, String), Failure> {
    let (t, anchor, dn) = identify(types, attrs)?;
    if anchor.trim().is_empty() {
        return Err((
            "missing-anchor",
            format!("no anchor: attribute `{}` holds only spaces", t.anchor),
        ));
    }
    Ok((t, anchor, dn))
}

/// The anchor a record error of the import names ([`fallback_anchor`]),
/// none when it holds only spaces (see [`identify_read`]): an error naming
/// no anchor keeps every object absent from the read.
fn error_anchor(types: &ObjectTypes, text: &str) -> Option<String> {
    fallback_anchor(types, text).filter(|a| !a.trim().is_empty())
}

/// A line's content: without its line break, nor a byte order mark on the
/// first line (Windows tools write one; it is not data).
fn content(buf: &[u8], line: u64) -> &[u8] {
    let mut bytes = buf;
    while let [rest @ .., b'\n' | b'\r'] = bytes {
        bytes = rest;
    }
    if line == 1 {
        bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    }
    bytes
}

/// The attributes of a line that decide its anchor: the object type
/// attribute's and the anchor attributes' values (a repeated key's last,
/// as `parse_line` reads it), every other value skipped unread.
struct Deciding<'n>(&'n [&'n str]);

impl<'de> Visitor<'de> for Deciding<'_> {
    type Value = Attributes;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
        let mut attrs = Attributes::new();
        while let Some(key) = map.next_key::<String>()? {
            if !self.0.contains(&key.as_str()) {
                map.next_value::<IgnoredAny>()?;
            } else if let Some(v) = map.next_value::<Option<Value>>()? {
                attrs.insert(key, v);
            } else {
                attrs.remove(&key);
            }
        }
        Ok(attrs)
    }
}

/// The anchor a line names, read only as far as that needs: the object
/// type and anchor attributes (`deciding`: their names). It is the anchor
/// of the object the line is, or the one its record error names; a line
/// that is a JSON object but holds another value the engine cannot read
/// (`invalid-value`) counts under the anchor of its object type.
fn named_anchor(types: &ObjectTypes, deciding: &[&str], bytes: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return error_anchor(types, &String::from_utf8_lossy(bytes));
    };
    if text.trim().is_empty() {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let attrs = de
        .deserialize_map(Deciding(deciding))
        .and_then(|attrs| de.end().map(|()| attrs));
    match attrs.map(|attrs| identify_read(types, &attrs).map(|(_, anchor, _)| anchor)) {
        Ok(Ok(anchor)) => Some(anchor),
        Ok(Err(f)) if !f.0.ends_with("object-type") => None,
        _ => error_anchor(types, text),
    }
}

/// The first pass: every line of the open file `f` read as far as its
/// anchor (see [`named_anchor`]); the anchors on more than one line, with
/// those lines. The file is left at its start for the read.
fn find_repeats(
    s: &JsonlSettings,
    mut f: &File,
) -> Result<HashMap<Box<str>, Vec<u64>>, ConnectorError> {
    let io = |e: std::io::Error| file::io_error(&s.path, "cannot read", &e);
    let mut deciding: Vec<&str> = s.types.types.iter().map(|t| t.anchor.as_str()).collect();
    deciding.extend(s.types.type_column.as_deref());
    let mut reader = BufReader::with_capacity(1 << 16, f);
    let (mut buf, mut line) = (Vec::new(), 0);
    let mut first: HashMap<Box<str>, u64> = HashMap::new();
    let mut repeats: HashMap<Box<str>, Vec<u64>> = HashMap::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        line += 1;
        let Some(anchor) = named_anchor(&s.types, &deciding, content(&buf, line)) else {
            continue;
        };
        match first.entry(anchor.into_boxed_str()) {
            Entry::Occupied(seen) => repeats
                .entry(seen.key().clone())
                .or_insert_with(|| vec![*seen.get()])
                .push(line),
            Entry::Vacant(new) => {
                new.insert(line);
            }
        }
    }
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(repeats)
}

/// A running JSON Lines import.
pub struct JsonlImport<'a> {
    s: &'a JsonlSettings,
    label: String,
    reader: Option<BufReader<HashingReader<File>>>,
    line: u64,
    buf: Vec<u8>,
    /// The anchors on more than one line -> those lines.
    repeats: HashMap<Box<str>, Vec<u64>>,
    mtime_ns: u128,
    /// The file's size when opened (see `file::check_read_whole`).
    size: u64,
    watermark: Option<String>,
    unchanged: bool,
}

impl<'a> JsonlImport<'a> {
    pub fn start(
        s: &'a JsonlSettings,
        watermark: Option<&str>,
    ) -> Result<JsonlImport<'a>, ConnectorError> {
        let mut import = JsonlImport {
            s,
            label: file::label(&s.path),
            reader: None,
            line: 0,
            buf: Vec::new(),
            repeats: HashMap::new(),
            mtime_ns: 0,
            size: 0,
            watermark: None,
            unchanged: false,
        };
        if let Some(fp) = watermark.and_then(Fingerprint::parse)
            && fp.matches(&s.path)?
        {
            import.watermark = Some(fp.to_watermark());
            import.unchanged = true;
            return Ok(import);
        }
        let (f, meta) = file::open_source(&s.path)?;
        import.repeats = find_repeats(s, &f)?;
        import.mtime_ns = file::mtime_ns(&meta);
        import.size = meta.len();
        import.reader = Some(BufReader::with_capacity(1 << 16, HashingReader::new(f)));
        Ok(import)
    }

    fn item(&mut self) -> Option<ImportItem> {
        let line = self.line;
        let bytes = content(&self.buf, line);
        let err = |anchor: Option<String>, (kind, detail): Failure| {
            Err(ImportRecordError {
                anchor,
                location: format!("{} line {line}", self.label),
                error_type: kind.to_owned(),
                detail,
            })
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            let anchor = error_anchor(&self.s.types, &String::from_utf8_lossy(bytes));
            return Some(err(
                anchor,
                ("invalid-utf8", "the line is not valid UTF-8".into()),
            ));
        };
        if text.trim().is_empty() {
            return None;
        }
        let mut attrs = match parse_line(text) {
            Ok(a) => a,
            Err(f) => return Some(err(error_anchor(&self.s.types, text), f)),
        };
        let (t, anchor, dn) = match identify_read(&self.s.types, &attrs) {
            Ok(x) => x,
            // A missing or unusable anchor is the error itself; only an
            // unknown object type leaves an anchor to name.
            Err(f) if f.0.ends_with("object-type") => {
                return Some(err(error_anchor(&self.s.types, text), f));
            }
            Err(f) => return Some(err(None, f)),
        };
        if let Some(lines) = self.repeats.get(anchor.as_str()) {
            let detail = repeated_detail(&anchor, lines, &self.label);
            return Some(err(Some(anchor), ("duplicate-anchor", detail)));
        }
        if let Some(col) = &self.s.types.type_column {
            attrs.remove(col);
        }
        Some(Ok(ImportedObject {
            values: Default::default(),
            object_type: t.name.clone(),
            anchor,
            dn,
            change: ImportChange::Full,
            attributes: attrs,
        }))
    }

    /// The file was read to its end: check it was not changed meanwhile,
    /// and make the watermark.
    fn finish(&mut self) -> Result<(), ConnectorError> {
        if let Some(reader) = self.reader.take() {
            let inner = reader.into_inner();
            self.watermark =
                Some(inner.whole_file_watermark(&self.label, self.size, self.mtime_ns)?);
        }
        self.repeats = HashMap::new();
        Ok(())
    }
}

impl ImportStream for JsonlImport<'_> {
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError> {
        let mut batch = Vec::with_capacity(self.s.batch_size.min(16_384));
        while batch.len() < self.s.batch_size {
            let Some(reader) = self.reader.as_mut() else {
                break;
            };
            self.buf.clear();
            match reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.finish()?;
                    break;
                }
                Ok(_) => {
                    self.line += 1;
                    if let Some(item) = self.item() {
                        batch.push(item);
                    }
                }
                Err(e) => return Err(file::io_error(&self.s.path, "cannot read", &e)),
            }
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
