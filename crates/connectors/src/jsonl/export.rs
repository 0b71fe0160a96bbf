//! Export to a JSON Lines file: the session loads the current file (an
//! output we own) keyed by anchor, applies batches in memory, and `commit`
//! replaces the file atomically with lines sorted by anchor (stable diffs).
//! Untouched lines are written back as they were; changed ones as compact
//! JSON with sorted keys. An add for an existing anchor replaces that line.
//! A DN is one object's, as in a directory: a change that would give an
//! object the DN (its type's `dn` attribute, ignoring case) of another
//! line fails with `already-exists` and leaves the file as it was, so
//! that references by DN never name two objects.
//! An export that changes no line (nothing to send, or only changes the
//! file already holds) leaves an existing file untouched: not rewritten,
//! its modification time and inode unchanged, so nothing watching it sees a
//! change that did not happen.

use super::config::JsonlSettings;
use super::import::{identify, parse_line};
use crate::change::{self, Failure};
use crate::file;
use crate::settings::ObjectTypes;
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ExportChange, ExportOutcome, ExportSession,
};
use autosync_model::ExportKind;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

/// A running JSON Lines export.
pub struct JsonlExport<'a> {
    s: &'a JsonlSettings,
    /// Anchor -> the line's JSON text.
    lines: BTreeMap<Box<str>, Box<str>>,
    /// The DNs the lines' types take from an attribute (folded to lower
    /// case) -> the anchor of the line that has it.
    dns: HashMap<String, Box<str>>,
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
                    dns: HashMap::new(),
                    dirty: true,
                });
            }
            Err(e) => return Err(file::io_error(&s.path, "cannot open", &e)),
        };
        let label = file::label(&s.path);
        let mut dns = HashMap::new();
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
            let attrs = parse_line(text).map_err(|(_, d)| bad(i + 1, &d))?;
            let (t, anchor, dn) = identify(&s.types, &attrs).map_err(|(_, d)| bad(i + 1, &d))?;
            if has_dn(t, &attrs) {
                // A file written before DNs were checked may hold one
                // twice: the first line keeps it.
                dns.entry(dn.to_lowercase())
                    .or_insert_with(|| anchor.as_str().into());
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

    /// The DN (folded) that `attrs` give their object, when its type takes
    /// one from an attribute.
    fn dn_of(&self, attrs: &autosync_model::Attributes) -> Option<(String, String)> {
        let (t, _, dn) = identify(&self.s.types, attrs).ok()?;
        has_dn(t, attrs).then(|| (dn.to_lowercase(), dn))
    }

    /// Forget the DN of `anchor`'s line `attrs`, if it holds it.
    fn forget_dn(&mut self, anchor: &str, attrs: &autosync_model::Attributes) {
        if let Some((folded, _)) = self.dn_of(attrs)
            && self.dns.get(&folded).is_some_and(|a| &**a == anchor)
        {
            self.dns.remove(&folded);
        }
    }

    fn apply_one(&mut self, c: &ExportChange) -> Result<(), Failure> {
        change::object_type(&self.s.types, c)?;
        if matches!(c.kind, ExportKind::Delete) {
            if let Some(text) = self.lines.remove(c.anchor.as_str()) {
                if let Ok(old) = parse_line(&text) {
                    self.forget_dn(&c.anchor, &old);
                }
                self.dirty = true;
            }
            return Ok(());
        }
        let existing = match self.lines.get(c.anchor.as_str()) {
            Some(text) => Some(parse_line(text)?),
            None => None,
        };
        let before = existing.clone();
        let attrs = change::apply(&self.s.types, c, existing)?;
        // A change that leaves the object as the file holds it (the same
        // attributes and values) keeps the line as it is.
        if before.as_ref() == Some(&attrs) {
            return Ok(());
        }
        let new_dn = self.dn_of(&attrs);
        if let Some((folded, dn)) = &new_dn
            && let Some(other) = self.dns.get(folded)
            && **other != *c.anchor
            && self.lines.contains_key(other)
        {
            return Err((
                "already-exists",
                format!(
                    "the DN `{dn}` is taken: object `{other}` of {} has it; nothing of this change was written",
                    file::label(&self.s.path)
                ),
            ));
        }
        if let Some(old) = &before {
            self.forget_dn(&c.anchor, old);
        }
        if let Some((folded, _)) = new_dn {
            self.dns.insert(folded, c.anchor.as_str().into());
        }
        let text = serde_json::to_string(&attrs)
            .map_err(|e| ("value-not-representable", e.to_string()))?;
        self.lines.insert(c.anchor.as_str().into(), text.into());
        self.dirty = true;
        Ok(())
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
        Ok(batch
            .iter()
            .map(|c| match self.apply_one(c) {
                Ok(()) => ExportOutcome::Applied { anchor: None },
                Err((error_type, detail)) => ExportOutcome::Failed {
                    error_type: error_type.to_owned(),
                    detail,
                },
            })
            .collect())
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
