//! The first pass of a CSV import: the anchors on more than one record
//! (why: see `import`), found before any record is read.

use super::{At, CsvImport, Layout, Next, Source, reader};
use crate::file::{self, HashingReader};
use autosync_connector::ConnectorError;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{Seek, SeekFrom};

impl CsvImport<'_> {
    /// The first pass: read the file as the import reads it (the same
    /// records, quote checks and resumptions, from the same open file),
    /// but only as far as each record's anchor, and keep the anchors on
    /// more than one record with their lines. A record in error that names its anchor counts: the
    /// object it names is not read from another record either.
    pub(super) fn find_repeats(&mut self, layout: &Layout) -> Result<(), ConnectorError> {
        let Some(mut twin) = self.twin.take() else {
            return Ok(());
        };
        let s = self.s;
        let io = |e: std::io::Error| file::io_error(&s.path, "cannot read", &e);
        // The handles share one offset: the real read goes on from here.
        let resume = twin.stream_position().map_err(io)?;
        twin.seek(SeekFrom::Start(0)).map_err(io)?;
        let pass = twin.try_clone().map_err(io)?;
        let mut pass = reader(s, Source::new(HashingReader::new(pass), s.max_record_lines));
        match pass.read_byte_record(&mut self.record) {
            Ok(true) => {
                let end = pass.position().byte();
                pass.get_mut().record_done(end);
            }
            Ok(false) => {}
            Err(e) => return Err(io(std::io::Error::other(e))),
        }
        let real = self.reader.replace(pass);
        let found = self.read_anchors(layout);
        self.reader = real;
        self.after_multi_line = false;
        twin.seek(SeekFrom::Start(resume)).map_err(io)?;
        let mut repeats = HashMap::with_capacity(found.as_ref().map_or(0, HashMap::len));
        for (anchor, ats) in found? {
            let lines = ats.into_iter().map(|at| self.line(at)).collect();
            repeats.insert(anchor, lines);
        }
        self.repeats = repeats;
        Ok(())
    }

    /// The rest of the file read for its records' anchors: those on more
    /// than one record, with where each of those records is.
    fn read_anchors(
        &mut self,
        layout: &Layout,
    ) -> Result<HashMap<Box<str>, Vec<At>>, ConnectorError> {
        let mut first: HashMap<Box<str>, At> = HashMap::new();
        let mut repeats: HashMap<Box<str>, Vec<At>> = HashMap::new();
        while let Some(next) = self.next_record(layout)? {
            let (at, anchor): (At, Option<Box<str>>) = match next {
                Next::Record(at) => match self.identify(layout, at) {
                    Ok(row) => (at, Some(row.anchor.into())),
                    Err(e) => (at, e.anchor.map(String::into_boxed_str)),
                },
                Next::Error(at, e) => (at, e.anchor.map(String::into_boxed_str)),
            };
            let Some(anchor) = anchor else {
                continue;
            };
            // One search: the anchor is copied before it is known to be new.
            match first.entry(anchor) {
                Entry::Occupied(seen) => repeats
                    .entry(seen.key().clone())
                    .or_insert_with(|| vec![*seen.get()])
                    .push(at),
                Entry::Vacant(new) => {
                    new.insert(at);
                }
            }
        }
        Ok(repeats)
    }
}
