//! Import errors of records that are no connector-space object (a new row
//! without anchor, with invalid UTF-8, a value too large, ...): the object
//! error of a known object is kept on it, but these have no object to be
//! kept on. So each MA keeps their list in the store's meta, where
//! `autosync cs MA --errors` finds them, until an import reads the record
//! (its anchor staged) or a full import that read the whole source no
//! longer meets it.
//!
//! A full import that completes replaces the list with its own; a delta
//! import, or a full import that stopped before the end, adds its errors
//! and drops those of the anchors it staged. An import that skipped an
//! unchanged source leaves the list as it is.

use crate::history::MAX_RECORDED_ERRORS;
use autosync_model::ObjectError;
use autosync_store::{Store, StoreRead, StoreResult};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The meta key holding the list of `ma`.
fn key(ma: &str) -> String {
    format!("import-record-errors:{ma}")
}

/// An import error of a record that is no connector-space object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// The record's anchor, when it could be read.
    pub anchor: Option<String>,
    /// Where the record is in the source, e.g. `hr.csv line 17`.
    pub location: String,
    /// The error (stage `import`, its type, the detail without the
    /// location, and the run that raised it).
    pub error: ObjectError,
}

/// The record errors of `ma` as the last imports left them, in source order
/// of each import. A list the store cannot decode (written by another
/// version) reads as empty.
pub fn record_errors(read: &mut dyn StoreRead, ma: &str) -> StoreResult<Vec<RecordError>> {
    let Some(text) = read.meta(&key(ma))? else {
        return Ok(Vec::new());
    };
    Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
        tracing::warn!(ma, error = %e, "the list of record errors cannot be read; ignored");
        Vec::new()
    }))
}

/// The record errors of one import as it runs.
pub(crate) struct RecordErrors {
    /// The list before this import.
    before: Vec<RecordError>,
    /// Anchors of `before`: an anchor staged by this import leaves the list.
    before_anchors: HashSet<String>,
    staged: HashSet<String>,
    new: Vec<RecordError>,
}

impl RecordErrors {
    pub fn load(store: &dyn Store, ma: &str) -> StoreResult<RecordErrors> {
        let before = record_errors(store.read()?.as_mut(), ma)?;
        let before_anchors = before.iter().filter_map(|e| e.anchor.clone()).collect();
        Ok(RecordErrors {
            before,
            before_anchors,
            staged: HashSet::new(),
            new: Vec::new(),
        })
    }

    /// A record error of this import (kept up to [`MAX_RECORDED_ERRORS`]).
    pub fn push(&mut self, error: RecordError) {
        if (self.new.len() as u64) < MAX_RECORDED_ERRORS {
            self.new.push(error);
        }
    }

    /// This import staged (or kept) the object of `anchor`. Cheap unless
    /// the list held that anchor.
    pub fn staged(&mut self, anchor: &str) {
        if !self.before_anchors.is_empty() && self.before_anchors.contains(anchor) {
            self.staged.insert(anchor.to_owned());
        }
    }

    /// Save the list: this import's errors alone when it was a full import
    /// that read the whole source (`whole`), else merged with the list
    /// before. Writes nothing when nothing changes.
    pub fn save(self, store: &dyn Store, ma: &str, whole: bool) -> StoreResult<()> {
        let RecordErrors {
            before,
            staged,
            new,
            ..
        } = self;
        if before.is_empty() && new.is_empty() {
            return Ok(());
        }
        let list = if whole {
            new
        } else {
            // An entry this import replaced: the same anchor, or the same
            // location without an anchor.
            let anchors: HashSet<&str> = new.iter().filter_map(|e| e.anchor.as_deref()).collect();
            let locations: HashSet<&str> = new
                .iter()
                .filter(|e| e.anchor.is_none())
                .map(|e| e.location.as_str())
                .collect();
            let mut list: Vec<RecordError> = before
                .into_iter()
                .filter(|e| match &e.anchor {
                    Some(a) => !staged.contains(a) && !anchors.contains(a.as_str()),
                    None => !locations.contains(e.location.as_str()),
                })
                .collect();
            list.extend(new);
            let excess = list.len().saturating_sub(MAX_RECORDED_ERRORS as usize);
            list.drain(..excess);
            list
        };
        let value = if list.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&list).unwrap_or_default())
        };
        let mut txn = store.begin()?;
        txn.set_meta(&key(ma), value.as_deref())?;
        txn.commit()
    }
}
