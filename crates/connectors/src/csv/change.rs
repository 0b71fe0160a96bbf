//! How the CSV connector's changes are noticed: a file watch on its file,
//! read with the connector's delimiter for a watch's `ignore_attributes`
//! (a change only in ignored columns asks for no import).

use crate::settings::Settings;
use autosync_connector::{ChangeDetection, FileContent};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use super::config::CsvSettings;

/// The offer of a CSV MA whose settings are `s` (`shown`: as written).
pub fn detection(s: &CsvSettings, shown: &Settings) -> ChangeDetection {
    let content = CsvContent {
        path: s.path.clone(),
        delimiter: s.delimiter,
    };
    crate::watch::file_watch("csv", s.path.clone(), shown, Arc::new(content))
}

/// A CSV file read as the connector reads it: a header row, then records.
#[derive(Clone, Debug)]
pub struct CsvContent {
    pub path: PathBuf,
    pub delimiter: u8,
}

impl FileContent for CsvContent {
    /// The header's kept names, then each record's kept cells by position;
    /// a row's cells past the header are kept.
    fn fingerprint(&self, ignored: &dyn Fn(&str) -> bool) -> Result<u64, String> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .from_path(&self.path)
            .map_err(|e| e.to_string())?;
        let headers = reader.byte_headers().map_err(|e| e.to_string())?.clone();
        let keep: Vec<bool> = headers
            .iter()
            .map(|name| !ignored(&String::from_utf8_lossy(name)))
            .collect();
        for (name, _) in headers.iter().zip(&keep).filter(|(_, k)| **k) {
            name.hash(&mut h);
        }
        let mut record = ::csv::ByteRecord::new();
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
        Ok(h.finish())
    }
}
