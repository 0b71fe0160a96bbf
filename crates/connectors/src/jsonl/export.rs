//! Export to a JSON Lines file: the session loads the current file (an
//! output we own) keyed by anchor, applies batches in memory, and `commit`
//! replaces the file atomically with lines sorted by anchor (stable diffs).
//! Untouched lines are written back as they were; changed ones as compact
//! JSON with sorted keys. An add for an existing anchor replaces that line.
//! An export that changes no line (nothing to send, or only changes the
//! file already holds) leaves an existing file untouched: not rewritten,
//! its modification time and inode unchanged, so nothing watching it sees a
//! change that did not happen.

use super::config::JsonlSettings;
use super::import::{identify, parse_line};
use crate::change::{self, Failure};
use crate::file;
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ExportChange, ExportOutcome, ExportSession,
};
use autosync_model::ExportKind;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

/// A running JSON Lines export.
pub struct JsonlExport<'a> {
    s: &'a JsonlSettings,
    /// Anchor -> the line's JSON text.
    lines: BTreeMap<Box<str>, Box<str>>,
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
                    dirty: true,
                });
            }
            Err(e) => return Err(file::io_error(&s.path, "cannot open", &e)),
        };
        let label = file::label(&s.path);
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
            let (_, anchor, _) = identify(&s.types, &attrs).map_err(|(_, d)| bad(i + 1, &d))?;
            if lines.insert(anchor.as_str().into(), text.into()).is_some() {
                return Err(bad(i + 1, &format!("anchor {anchor:?} appears twice")));
            }
        }
        Ok(JsonlExport {
            s,
            lines,
            dirty: false,
        })
    }

    fn apply_one(&mut self, c: &ExportChange) -> Result<(), Failure> {
        change::object_type(&self.s.types, c)?;
        if matches!(c.kind, ExportKind::Delete) {
            if self.lines.remove(c.anchor.as_str()).is_some() {
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
        let text = serde_json::to_string(&attrs)
            .map_err(|e| ("value-not-representable", e.to_string()))?;
        self.lines.insert(c.anchor.as_str().into(), text.into());
        self.dirty = true;
        Ok(())
    }
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
