//! How the JSON Lines connector's changes are noticed: a file watch on its
//! file, read line by line for a watch's `ignore_attributes` (a change only
//! in ignored keys asks for no import).

use super::config::JsonlSettings;
use crate::settings::Settings;
use autosync_connector::{ChangeDetection, FileContent};
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

/// The offer of a JSON Lines MA whose settings are `s` (`shown`: as written).
pub fn detection(s: &JsonlSettings, shown: &Settings) -> ChangeDetection {
    let content = JsonlContent {
        path: s.path.clone(),
    };
    crate::watch::file_watch("jsonl", s.path.clone(), shown, Arc::new(content))
}

/// A JSON Lines file: one object per line.
#[derive(Clone, Debug)]
pub struct JsonlContent {
    pub path: PathBuf,
}

impl FileContent for JsonlContent {
    /// Each line's object without the ignored keys, in canonical form (key
    /// order does not count); a line that is not an object, as it is.
    fn fingerprint(&self, ignored: &dyn Fn(&str) -> bool) -> Result<u64, String> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let file = std::fs::File::open(&self.path).map_err(|e| e.to_string())?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| e.to_string())?;
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(serde_json::Value::Object(mut map)) => {
                    map.retain(|k, _| !ignored(k));
                    // serde_json's map is ordered: the text is canonical.
                    serde_json::Value::Object(map).to_string().hash(&mut h);
                }
                _ => line.hash(&mut h),
            }
        }
        Ok(h.finish())
    }
}
