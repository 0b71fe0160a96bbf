//! The file-watch trigger (file connectors): asks for an import when the
//! watched file changes. It watches the file's **folder**, so an atomic
//! replace (write a temporary file, rename it over) is seen, and keeps only
//! the events that name the file. Events are coalesced
//! ([`crate::coalescer`]): debounce window (default 1 s) plus max delay
//! (default 5 s), never dropped. Reads of the file (our own imports open it)
//! are not changes. If the folder cannot be watched, the error is reported
//! and the watch is retried every 30 s (and as soon as the folder exists:
//! looked for every 5 s). When the watched folder is removed, moved away or
//! replaced (its own events, and a check every 5 s that the folder at the
//! path is still the watched one), this is reported once and the folder at
//! the path is watched again. Every watch set up after a failure or a loss
//! asks for an import, since the file may have changed meanwhile; the first
//! one at start does not.
//!
//! Its default file is the MA connector's (`BuildContext::default_watch_path`,
//! from the connector's file-watch offer), and on that file
//! `ignore_attributes` reads records as the connector does
//! ([`FileWatchConfig::content`], see [`crate::content_filter`]).

use crate::change_filter::ChangeFilter;
use crate::config::{Ask, Common, check_positive, check_profile, default_profile, key_error};
use crate::duration::HumanDuration;
use crate::provided::Provided;
use autosync_connector::FileContent;
use notify::event::{MetadataKind, ModifyKind};
use notify::{Event, EventKind};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `{ type = "file-watch", path = "data/hr.csv", debounce = "1s", max_delay = "5s" }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWatchConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_profile")]
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
    /// The file to watch, relative to the configuration file's folder.
    /// Defaults to the MA connector's file (given by the controller).
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default = "default_debounce")]
    pub debounce: HumanDuration,
    #[serde(default = "default_max_delay")]
    pub max_delay: HumanDuration,
    /// Columns (CSV) or keys (JSON lines) whose changes ask for no import,
    /// e.g. a last-logon timestamp that changes all day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_attributes: Vec<String>,
    /// How the MA's connector reads the watched file (for
    /// `ignore_attributes`): provided when the watch is on the connector's
    /// own file; other files are compared whole. Not a key of the file.
    #[serde(skip)]
    pub content: Provided<dyn FileContent>,
}

fn default_debounce() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_max_delay() -> HumanDuration {
    HumanDuration::from_secs(5)
}

/// A validated file-watch trigger.
#[derive(Clone, Debug)]
pub struct FileWatchTrigger {
    pub ask: Ask,
    /// The watched folder and the file's name in it.
    pub folder: PathBuf,
    pub file_name: OsString,
    pub debounce: Duration,
    pub max_delay: Duration,
    /// Attributes whose changes ask for no import (empty: every change asks).
    pub ignore: ChangeFilter,
    /// How the connector reads the file (`None`: compared whole).
    pub content: Option<Arc<dyn FileContent>>,
    /// How often a folder that cannot be watched is tried again, the
    /// failure reported each time (30 s; not a key of the file).
    pub retry: Duration,
    /// How often the watched folder is checked to still be the one at its
    /// path, and a missing one looked for (5 s; not a key of the file).
    pub recheck: Duration,
}

impl FileWatchConfig {
    /// `base_dir` resolves a relative path; `default_path` is the connector's
    /// file when `path` is not given.
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
        base_dir: &Path,
        default_path: Option<&Path>,
    ) -> Result<FileWatchTrigger, crate::TriggerConfigError> {
        let kind = "file-watch";
        check_profile(ma, index, kind, &self.profile)?;
        let Some(path) = self.path.as_deref().or(default_path) else {
            return Err(key_error(
                ma,
                index,
                kind,
                "path",
                "is required (this MA's connector has no file to default to)",
            ));
        };
        let path = base_dir.join(path);
        // A file that is a symbolic link is watched as the link: its
        // folder sees the link replaced (`ln -sfn`, the usual deployment),
        // not writes to the file it points to in another folder (the docs
        // say so).
        let shown = path.clone();
        let (Some(folder), Some(file_name)) = (path.parent(), path.file_name()) else {
            return Err(key_error(
                ma,
                index,
                kind,
                "path",
                format!("`{}` does not name a file", path.display()),
            ));
        };
        check_positive(ma, index, kind, "debounce", self.debounce.0)?;
        if self.max_delay.0 < self.debounce.0 {
            return Err(key_error(
                ma,
                index,
                kind,
                "max_delay",
                format!(
                    "must be at least `debounce` ({} < {})",
                    self.max_delay, self.debounce
                ),
            ));
        }
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        let common = Common {
            profile: &self.profile,
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
        };
        Ok(FileWatchTrigger {
            ask: Ask::new(
                ma,
                kind,
                self.name.as_deref(),
                &shown.display().to_string(),
                common,
            ),
            folder: folder.to_path_buf(),
            file_name: file_name.to_os_string(),
            debounce: self.debounce.0,
            max_delay: self.max_delay.0,
            ignore: ChangeFilter::new(self.ignore_attributes.iter().cloned()),
            content: self.content.get().cloned(),
            retry: RETRY,
            recheck: RECHECK,
        })
    }
}

/// Whether a filesystem event is a change of the watched file: it names the
/// file, and it is a creation, a modification of content or metadata (not
/// of the access time), a removal or a rename. Reads, opens and closes are
/// not changes, not even the close of a file opened for writing: a process
/// that opens a file read-write and writes nothing (SQLite opens its
/// database so, our own import of it included) changes nothing, and every
/// write that does change it is seen as a modification before the close.
/// An event saying events were lost is relevant.
pub fn is_change_of(event: &Event, file_name: &OsString) -> bool {
    if event.need_rescan() {
        return true;
    }
    let kind_is_change = match event.kind {
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Other => false,
    };
    kind_is_change
        && event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(file_name.as_os_str()))
}

mod watching;
pub use watching::ActiveWatch;
use watching::{RECHECK, RETRY};

#[cfg(test)]
mod tests;
