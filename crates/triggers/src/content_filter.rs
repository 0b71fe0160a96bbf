//! For a file watch with `ignore_attributes`: whether the file's content
//! changed in anything but those attributes (columns of a CSV file, keys of
//! a JSON-lines file). A change that touches only ignored attributes (a
//! last-logon timestamp, say) asks for no import. The fingerprint of the
//! relevant content is a hash kept in memory; when the file cannot be read
//! or parsed, the change counts as relevant: a change is never dropped.

use crate::change_filter::ChangeFilter;
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::path::Path;

/// The formats a file watch understands; anything else is compared whole
/// (no attribute can be told apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    JsonLines,
    Other,
}

impl FileFormat {
    /// From the file's extension.
    pub fn of(path: &Path) -> FileFormat {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => FileFormat::Csv,
            Some("jsonl" | "ndjson") => FileFormat::JsonLines,
            _ => FileFormat::Other,
        }
    }
}

/// The fingerprint of `path`'s content without the ignored attributes, or
/// why it could not be read.
pub fn fingerprint(path: &Path, filter: &ChangeFilter) -> Result<u64, String> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match FileFormat::of(path) {
        FileFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_path(path)
                .map_err(|e| e.to_string())?;
            let headers = reader.byte_headers().map_err(|e| e.to_string())?.clone();
            let keep: Vec<bool> = headers
                .iter()
                .map(|name| !filter.ignores(&String::from_utf8_lossy(name)))
                .collect();
            for (i, name) in headers.iter().enumerate() {
                if keep[i] {
                    name.hash(&mut h);
                }
            }
            let mut record = csv::ByteRecord::new();
            while reader
                .read_byte_record(&mut record)
                .map_err(|e| e.to_string())?
            {
                0xFFu8.hash(&mut h);
                for (i, field) in record.iter().enumerate() {
                    if keep.get(i).copied().unwrap_or(true) {
                        i.hash(&mut h);
                        field.hash(&mut h);
                    }
                }
            }
        }
        FileFormat::JsonLines => {
            let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(|e| e.to_string())?;
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(serde_json::Value::Object(mut map)) => {
                        map.retain(|k, _| !filter.ignores(k));
                        // serde_json's map is ordered: the text is canonical.
                        serde_json::Value::Object(map).to_string().hash(&mut h);
                    }
                    _ => line.hash(&mut h),
                }
            }
        }
        FileFormat::Other => {
            std::fs::read(path).map_err(|e| e.to_string())?.hash(&mut h);
        }
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(name: &str, text: &str, ignore: &[&str]) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        fingerprint(&path, &ChangeFilter::new(ignore.iter().copied())).unwrap()
    }

    #[test]
    fn a_csv_change_only_in_ignored_columns_should_keep_the_fingerprint() {
        let a = fp(
            "hr.csv",
            "id,title,last_logon\n1,Dev,2026-01-01\n",
            &["last_logon"],
        );
        let b = fp(
            "hr.csv",
            "id,title,last_logon\n1,Dev,2026-11-23\n",
            &["last_logon"],
        );
        let c = fp(
            "hr.csv",
            "id,title,last_logon\n1,Ops,2026-11-23\n",
            &["last_logon"],
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        let unfiltered = fp("hr.csv", "id,title,last_logon\n1,Dev,2026-11-23\n", &[]);
        assert_ne!(a, unfiltered);
    }

    #[test]
    fn rows_added_or_removed_should_change_the_fingerprint() {
        let a = fp("hr.csv", "id,x\n1,a\n", &["x"]);
        let b = fp("hr.csv", "id,x\n1,a\n2,b\n", &["x"]);
        assert_ne!(a, b);
    }

    #[test]
    fn a_jsonl_change_only_in_ignored_keys_should_keep_the_fingerprint() {
        let a = fp("d.jsonl", "{\"id\":\"1\",\"seen\":1}\n", &["seen"]);
        let b = fp("d.jsonl", "{\"seen\":2,\"id\":\"1\"}\n", &["seen"]);
        let c = fp("d.jsonl", "{\"id\":\"2\",\"seen\":2}\n", &["seen"]);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn an_unreadable_file_should_be_an_error_not_a_fingerprint() {
        let e = fingerprint(Path::new("/nonexistent/x.csv"), &ChangeFilter::default());
        assert!(e.is_err());
    }
}
