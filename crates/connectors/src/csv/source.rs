//! The CSV file as the import's csv reader reads it: every byte hashed once
//! for the watermark (however often it is parsed), and the bytes of the
//! record being read kept, so that a record judged to start with an
//! unclosed quote can be read again from its second line (`Seek` within the
//! kept bytes). A record that runs over the line limit is cut: the source
//! pretends the file ended, so a stray quote never pulls the rest of a
//! large file into memory.

use crate::file::HashingReader;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read from the file at a time.
const CHUNK: usize = 1 << 16;

/// See the module documentation.
pub struct Source {
    inner: HashingReader<File>,
    /// The file's bytes from offset `base` on, as far as they were read.
    kept: Vec<u8>,
    base: u64,
    /// The offset of the next byte handed to the reader.
    pos: u64,
    /// Where the record being read starts: bytes before it are forgotten.
    record_start: u64,
    /// Line breaks counted in `record_start..counted`.
    lines: u64,
    counted: u64,
    max_lines: u64,
    capped: bool,
}

impl Source {
    /// `max_lines`: the most lines a record may span.
    pub fn new(inner: HashingReader<File>, max_lines: u64) -> Self {
        Source {
            inner,
            kept: Vec::with_capacity(CHUNK),
            base: 0,
            pos: 0,
            record_start: 0,
            lines: 0,
            counted: 0,
            max_lines,
            capped: false,
        }
    }

    /// The bytes at offsets `start..end`, when still kept (always, for the
    /// record just read).
    pub fn bytes(&self, start: u64, end: u64) -> Option<&[u8]> {
        let from = usize::try_from(start.checked_sub(self.base)?).ok()?;
        let to = usize::try_from(end.checked_sub(self.base)?).ok()?;
        self.kept.get(from..to)
    }

    /// The reader finished a record and the next one starts at `offset`.
    pub fn record_done(&mut self, offset: u64) {
        self.record_start = offset;
        self.counted = offset;
        self.lines = 0;
    }

    /// Whether the source stopped handing out bytes because the record
    /// being read ran over the line limit.
    pub fn capped(&self) -> bool {
        self.capped
    }

    pub fn into_inner(self) -> HashingReader<File> {
        self.inner
    }

    /// Whether the record being read (what was handed out since it started)
    /// runs over the line limit. Blank lines before it do not count: the
    /// reader skips them, so they are forgotten instead.
    fn over_limit(&mut self) -> bool {
        let (Some(from), Some(to)) = (
            self.counted.checked_sub(self.base),
            self.pos.checked_sub(self.base),
        ) else {
            return false;
        };
        let new = self
            .kept
            .get(from as usize..to as usize)
            .unwrap_or_default();
        self.lines += super::quotes::line_breaks(new);
        self.counted = self.pos;
        if self.lines < self.max_lines {
            return false;
        }
        let since_start = self
            .kept
            .get((self.record_start - self.base) as usize..to as usize)
            .unwrap_or_default();
        if since_start.iter().all(|b| *b == b'\n' || *b == b'\r') {
            self.record_done(self.pos);
            return false;
        }
        true
    }

    /// Read the next chunk of the file into `kept`, forgetting what comes
    /// before the record being read. `Ok(0)` at the end of the file.
    fn fill(&mut self) -> io::Result<usize> {
        let forget = usize::try_from(self.record_start.saturating_sub(self.base)).unwrap_or(0);
        if forget > 0 {
            self.kept.drain(..forget.min(self.kept.len()));
            self.base += forget as u64;
        }
        let old = self.kept.len();
        self.kept.resize(old + CHUNK, 0);
        let read = loop {
            match self.inner.read(&mut self.kept[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.kept.truncate(old + *read.as_ref().unwrap_or(&0));
        read
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.capped {
            return Ok(0);
        }
        let end = self.base + self.kept.len() as u64;
        if self.pos >= end {
            // Everything handed out so far belongs to the record being read
            // (the reader asks for more only when it has parsed it all).
            if self.over_limit() {
                self.capped = true;
                return Ok(0);
            }
            if self.fill()? == 0 {
                return Ok(0);
            }
        }
        let from = (self.pos - self.base) as usize;
        let available = self.kept.get(from..).unwrap_or_default();
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Source {
    /// Only back to a kept byte (or forward to the end of what was read).
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let end = self.base + self.kept.len() as u64;
        match to {
            SeekFrom::Start(offset) if (self.base..=end).contains(&offset) => {
                self.pos = offset;
                self.capped = false;
                self.record_done(offset);
                Ok(offset)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a CSV source seeks only to a byte it still keeps",
            )),
        }
    }
}
