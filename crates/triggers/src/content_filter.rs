//! For a file watch with `ignore_attributes`: whether the file's content
//! changed in anything but those attributes. A change that touches only
//! ignored attributes (a last-logon timestamp, say) asks for no import.
//!
//! Which attributes a file holds is its connector's knowledge: a watch on
//! the MA connector's own file reads it with the connector's
//! [`FileContent`] (CSV columns with the connector's delimiter, JSON-lines
//! keys). Any other file is compared whole (no attribute can be told
//! apart). The fingerprint is a hash kept in memory; when the file cannot be
//! read or parsed, the change counts as relevant: a change is never dropped.

use crate::change_filter::ChangeFilter;
use autosync_connector::FileContent;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// The fingerprint of the watched file's content without the ignored
/// attributes (`content`: how its connector reads it; `None`: the whole
/// file), or why it could not be read.
pub fn fingerprint(
    path: &Path,
    filter: &ChangeFilter,
    content: Option<&dyn FileContent>,
) -> Result<u64, String> {
    match content {
        Some(content) => content.fingerprint(&|name| filter.ignores(name)),
        None => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(path).map_err(|e| e.to_string())?.hash(&mut h);
            Ok(h.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_reader_should_be_compared_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.csv");
        let filter = ChangeFilter::new(["last_logon"]);
        std::fs::write(&path, "id,last_logon\n1,2026-01-01\n").unwrap();
        let a = fingerprint(&path, &filter, None).unwrap();
        std::fs::write(&path, "id,last_logon\n1,2026-11-23\n").unwrap();
        let b = fingerprint(&path, &filter, None).unwrap();
        assert_ne!(a, b, "no reader: an ignored column cannot be told apart");
        assert_eq!(b, fingerprint(&path, &filter, None).unwrap());
    }

    #[test]
    fn an_unreadable_file_should_be_an_error_not_a_fingerprint() {
        let e = fingerprint(
            Path::new("/nonexistent/x.csv"),
            &ChangeFilter::default(),
            None,
        );
        assert!(e.is_err());
    }
}
