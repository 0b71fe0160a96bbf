//! The CSV connector's schema before any run: the file's header row, read
//! with the connector's dialect (delimiter, byte order mark, names trimmed).
//! A file that does not exist yet, or is empty, has no schema to read; an
//! object type column the header lacks is a problem at its key.

use super::config::CsvSettings;
use super::import::{parse_header, reader};
use crate::settings::error;
use autosync_connector::{SchemaLookup, SourceSchema};
use std::fs::File;
use std::io::ErrorKind;

/// The header of `s.path` as the attributes of every object type (the
/// object type column, which is not imported, left out). `written` is the
/// path as the settings give it, for messages.
pub fn read(s: &CsvSettings, written: &str) -> SchemaLookup {
    let file = match File::open(&s.path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return SchemaLookup::Unavailable(format!("{written} does not exist yet"));
        }
        Err(e) => return SchemaLookup::Unavailable(format!("cannot open {written}: {e}")),
    };
    let mut record = ::csv::ByteRecord::new();
    match reader(s, file).read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            return SchemaLookup::Unavailable(format!("{written} is empty: it has no header row"));
        }
        Err(e) => return SchemaLookup::Unavailable(format!("cannot read {written}: {e}")),
    }
    let mut header = match parse_header(&record, written) {
        Ok(h) => h,
        Err(e) => return SchemaLookup::Unavailable(e.message),
    };
    let mut problems = Vec::new();
    if let Some(c) = &s.types.type_column
        && !header.contains(c)
    {
        problems.push(error(
            "object_type_column",
            &format!("the object type column `{c}` is not a column of {written}"),
            Some(format!("{written} has: {}", header.join(", "))),
        ));
    }
    header.retain(|h| Some(h) != s.types.type_column.as_ref());
    if let Some(g) = &s.grouping {
        // A group's attributes: its column and what it collects.
        for (key, column) in std::iter::once(("group_by", &g.by))
            .chain(g.values.values().map(|c| ("group_values", c)))
        {
            if !header.contains(column) {
                problems.push(error(
                    key,
                    &format!("`{column}` is not a column of {written}"),
                    Some(format!("{written} has: {}", header.join(", "))),
                ));
            }
        }
        header = std::iter::once(g.by.clone())
            .chain(g.values.keys().cloned())
            .collect();
    }
    let mut schema =
        SourceSchema::uniform(written, &s.types.types, &header, |t| t.anchor.clone(), true);
    schema.problems = problems;
    SchemaLookup::Known(schema)
}
