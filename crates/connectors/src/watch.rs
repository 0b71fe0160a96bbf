//! What the connectors share to say how their system's changes are noticed
//! (`ConnectorFactory::change_detection`): the file watch of the file
//! connectors, and settings quoted as the configuration file writes them.

use crate::settings::Settings;
use autosync_connector::{
    ChangeDetection, ChangeOffer, ChangeOfferKind, FileContent, FileWatchOffer,
};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// The text setting at `key_path` of the `shown` table (as the file writes
/// it), or `None` when the file does not write it as text there.
pub fn shown_text(shown: &Settings, key_path: &[&str]) -> Option<String> {
    let (first, rest) = key_path.split_first()?;
    let mut value = shown.get(*first)?;
    for key in rest {
        value = value.get(*key)?;
    }
    match value {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// [`shown_text`], or the key path in backquotes (`delta.table`) when the
/// file does not write it as text: what a sentence quotes.
pub fn shown_or_key(shown: &Settings, key_path: &[&str]) -> String {
    shown_text(shown, key_path).unwrap_or_else(|| format!("`{}`", key_path.join(".")))
}

/// A file connector's offer: a file watch on its file (`path`, resolved),
/// read by `content` for `ignore_attributes`; proposed by discovery.
pub fn file_watch(
    kind: &str,
    path: PathBuf,
    shown: &Settings,
    content: Arc<dyn FileContent>,
) -> ChangeDetection {
    let shown_path = shown_text(shown, &["path"]);
    let sentence = format!(
        "{kind} connector: a file watch on {}",
        shown_path.as_deref().unwrap_or("its file")
    );
    ChangeDetection {
        offers: vec![ChangeOffer {
            kind: ChangeOfferKind::FileWatch(FileWatchOffer {
                path,
                shown_path,
                content: Some(content),
            }),
            proposed: true,
            sentence,
        }],
        why_none: None,
    }
}
