//! Export to a JSON Lines file: the session loads the current file (an
//! output we own) keyed by anchor, applies batches in memory, and `commit`
//! replaces the file atomically with lines sorted by anchor (stable diffs).
//! Untouched lines are written back as they were; changed ones as compact
//! JSON with sorted keys. An add whose anchor has a line already is a
//! replay of this add (a batch sent again after a crash) only when that
//! line holds every value the add sends (each attribute it names, its
//! object type and DN attributes, compared as JSON values read back; an
//! attribute it removes, absent): the line is then kept as it is, keys the
//! add does not name too. Any other line (an account made before autosync
//! under the anchor provisioning gives) is never overwritten: the add
//! fails with `already-exists`, naming the first attributes that differ,
//! and the line is left as it is. A delete-and-add replaces the line, as
//! it says.
//!
//! A DN is one object's, as in a directory: a change that would give an
//! object the DN (its type's `dn` attribute, ignoring case) of another
//! line fails with `already-exists` and leaves the file as it was, so
//! that references by DN never name two objects. Unlike a directory, the
//! file is written at once: a change whose DN is held by an object whose
//! own change comes later in the batch waits for the batch's end, and the
//! waiting ones are applied together (two objects that swap their DNs, a
//! rename onto the DN of an object deleted in the same batch); see
//! `unique_dn`, which the CSV export shares.
//! An export that changes no line (nothing to send, or only changes the
//! file already holds) leaves an existing file untouched: not rewritten,
//! its modification time and inode unchanged, so nothing watching it sees a
//! change that did not happen.

use super::config::JsonlSettings;
use super::import::{fallback_anchor, identify, parse_line};
use crate::change::{self, Failure};
use crate::file;
use crate::settings::ObjectTypes;
use crate::unique_dn::{self, Dns, Prepared, Records};
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ExportChange, ExportOutcome, ExportSession,
};
use autosync_model::{Attributes, ExportKind, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

/// A running JSON Lines export.
pub struct JsonlExport<'a> {
    s: &'a JsonlSettings,
    /// Anchor -> the line's JSON text.
    lines: BTreeMap<Box<str>, Box<str>>,
    /// The DNs the lines' types take from an attribute (folded) -> the
    /// anchor of the line that has it.
    dns: Dns,
    /// Whether the file must be written: a line changed, or there is no
    /// file yet (an export creates its target, empty when nothing to send).
    dirty: bool,
}

impl<'a> JsonlExport<'a> {
    /// Load the current target file (none yet: an empty one).
    pub fn begin(s: &'a JsonlSettings) -> Result<JsonlExport<'a>, ConnectorError> {
        file::check_target_folder(&s.path)?;
        let mut lines = BTreeMap::new();
        let f = match std::fs::File::open(&s.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(JsonlExport {
                    s,
                    lines,
                    dns: Dns::default(),
                    dirty: true,
                });
            }
            Err(e) => return Err(file::io_error(&s.path, "cannot open", &e)),
        };
        let label = file::label(&s.path);
        let mut dns = Dns::default();
        let bad = |n: usize, what: &str| {
            ConnectorError::new(
                ConnectorErrorKind::Data,
                format!("cannot export to {label}: line {n}: {what}; fix or remove that line"),
            )
        };
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => bad(i + 1, "invalid UTF-8"),
                _ => file::io_error(&s.path, "cannot read", &e),
            })?;
            let text = line.trim_end_matches('\r');
            if text.trim().is_empty() {
                continue;
            }
            let attrs = match parse_line(text) {
                Ok(attrs) => attrs,
                // A JSON object with a value autosync does not read (a
                // nested object of its own) but an anchor: kept as it is,
                // untouched; a change of that object fails alone, naming
                // the value.
                Err(("invalid-value", d)) => match fallback_anchor(&s.types, text) {
                    Some(anchor) => {
                        if lines.insert(anchor.as_str().into(), text.into()).is_some() {
                            return Err(bad(i + 1, &format!("anchor {anchor:?} appears twice")));
                        }
                        continue;
                    }
                    None => return Err(bad(i + 1, &d)),
                },
                Err((_, d)) => return Err(bad(i + 1, &d)),
            };
            let (t, anchor, dn) = identify(&s.types, &attrs).map_err(|(_, d)| bad(i + 1, &d))?;
            if has_dn(t, &attrs) {
                // A file written before DNs were checked may hold one
                // twice: the first line keeps it.
                dns.load(&dn, &anchor);
            }
            if lines.insert(anchor.as_str().into(), text.into()).is_some() {
                return Err(bad(i + 1, &format!("anchor {anchor:?} appears twice")));
            }
        }
        Ok(JsonlExport {
            s,
            lines,
            dns,
            dirty: false,
        })
    }

    /// The DN that `attrs` give their object, when its type takes one
    /// from an attribute.
    fn dn_of(&self, attrs: &autosync_model::Attributes) -> Option<String> {
        let (t, _, dn) = identify(&self.s.types, attrs).ok()?;
        has_dn(t, attrs).then_some(dn)
    }

    /// The line `c` makes of its object's (`None`: the file holds it as
    /// it is), with the DN the object had in the file.
    fn prepare_line(&self, c: &ExportChange) -> Result<Option<Prepared<String>>, Failure> {
        change::object_type(&self.s.types, c)?;
        let existing = match self.lines.get(c.anchor.as_str()) {
            Some(text) => Some(parse_line(text)?),
            None => None,
        };
        if let (ExportKind::Add, Some(held)) = (c.kind, &existing) {
            // A replay: the line holds every value the add sends, and
            // keeps the others.
            self.replayed(c, held)?;
            return Ok(None);
        }
        let before = existing.clone();
        let attrs = change::apply(&self.s.types, c, existing)?;
        // A change that leaves the object as the file holds it (the same
        // attributes and values) keeps the line as it is.
        if before.as_ref() == Some(&attrs) {
            return Ok(None);
        }
        let text = serde_json::to_string(&attrs)
            .map_err(|e| ("value-not-representable", e.to_string()))?;
        let old_dn = before.as_ref().and_then(|b| self.dn_of(b));
        Ok(Some(Prepared::new(
            text,
            self.dn_of(&attrs),
            old_dn.as_deref(),
        )))
    }

    /// An add whose anchor has a line already, holding `held`: `Ok` when
    /// it is a replay of this add (the line holds each value the add sends,
    /// as the export would write it, and none of the attributes it
    /// removes; the anchor found it), otherwise `already-exists`, naming
    /// the first attributes that differ, the line left as it is.
    fn replayed(&self, c: &ExportChange, held: &Attributes) -> Result<(), Failure> {
        let t = change::object_type(&self.s.types, c)?;
        let sent = change::apply(&self.s.types, c, None)?;
        let removed = c
            .changes
            .iter()
            .filter(|(name, v)| v.is_none() && !sent.contains_key(*name))
            .map(|(name, _)| name);
        let differ: Vec<String> = sent
            .keys()
            .chain(removed)
            .filter(|name| **name != t.anchor && held.get(*name) != sent.get(*name))
            .map(|name| {
                format!(
                    "`{name}`: the line holds {}, the add sends {}",
                    shown(name, held.get(name)),
                    shown(name, sent.get(name))
                )
            })
            .collect();
        if differ.is_empty() {
            return Ok(());
        }
        let named = change::named_differences(&differ);
        Err((
            "already-exists",
            format!(
                "file `{}` has a line with anchor {:?} already, which this add did not write ({named}): {}",
                file::label(&self.s.path),
                c.anchor,
                change::OUTSIDE
            ),
        ))
    }
}

impl Records for JsonlExport<'_> {
    type Record = String;

    fn dns(&self) -> &Dns {
        &self.dns
    }

    fn dns_mut(&mut self) -> &mut Dns {
        &mut self.dns
    }

    fn has(&self, anchor: &str) -> bool {
        self.lines.contains_key(anchor)
    }

    fn path(&self) -> &Path {
        &self.s.path
    }

    fn delete(&mut self, c: &ExportChange) -> Result<Option<String>, Failure> {
        change::object_type(&self.s.types, c)?;
        let Some(text) = self.lines.remove(c.anchor.as_str()) else {
            return Ok(None);
        };
        self.dirty = true;
        Ok(parse_line(&text).ok().and_then(|old| self.dn_of(&old)))
    }

    fn prepare(&mut self, c: &ExportChange) -> Result<Option<Prepared<String>>, Failure> {
        self.prepare_line(c)
    }

    fn put(&mut self, anchor: &str, text: String) {
        self.lines.insert(anchor.into(), text.into());
        self.dirty = true;
    }
}

/// A value of attribute `name` for a message: its JSON form cut short,
/// never a secret's (`(secret)` for a value in a secret's form, or any
/// value of an attribute whose name says it holds one: the connector is
/// not told which attributes are write-only, and the engine sends their
/// values in clear).
fn shown(name: &str, v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "nothing".to_owned();
    };
    if change::secret_name(name) || secret_form(v) {
        return "(secret)".to_owned();
    }
    change::cut(serde_json::to_string(v).unwrap_or_default())
}

/// Whether `v` is (or holds) a value in a secret's form.
fn secret_form(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with("$autosync$"),
        Value::Multi(vs) => vs.iter().any(secret_form),
        _ => false,
    }
}

/// Whether type `t` takes the DN of `attrs` from an attribute they have.
fn has_dn(t: &autosync_model::ObjectTypeDef, attrs: &autosync_model::Attributes) -> bool {
    ObjectTypes::dn_attr(t)
        .and_then(|d| attrs.get(d))
        .is_some_and(|v| !v.to_text().is_empty())
}

impl ExportSession for JsonlExport<'_> {
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        Ok(unique_dn::apply(self, batch))
    }

    fn durable_per_batch(&self) -> bool {
        false
    }

    fn commit(self: Box<Self>) -> Result<(), ConnectorError> {
        if !self.dirty {
            tracing::debug!(file = %self.s.path.display(), "JSON Lines export changed nothing; the file is left as it is");
            return Ok(());
        }
        file::write_atomically(&self.s.path, |out| {
            for text in self.lines.values() {
                out.write_all(text.as_bytes())?;
                out.write_all(b"\n")?;
            }
            Ok(())
        })?;
        tracing::debug!(file = %self.s.path.display(), lines = self.lines.len(), "JSON Lines export committed");
        Ok(())
    }
}
