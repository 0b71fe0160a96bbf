//! The log's writer: one event, one line. A value in an event (an
//! operator's name from the API, a script's `log()`, an anchor read from a
//! source) may hold a newline or a control character: written as is, it
//! would start a line that looks like another event, or move an
//! operator's cursor. Every control character of an event but its final
//! newline and tabs is written escaped (`\n`, `\r`, `\x1b`); on a terminal
//! the colours' escape character is kept.

use std::io::{self, Write};

/// Makes stderr writers that escape control characters.
pub struct EscapingStderr {
    /// Keep ESC (the log is coloured for a terminal).
    pub ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapingStderr {
    type Writer = Escaping;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping { ansi: self.ansi }
    }
}

pub struct Escaping {
    ansi: bool,
}

impl Write for Escaping {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let escaped = escape(buf, self.ansi);
        io::stderr().lock().write_all(&escaped)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `buf` (one formatted event) with its control characters escaped, but
/// a final newline, tabs, and with `ansi` the escape character.
pub fn escape(buf: &[u8], ansi: bool) -> std::borrow::Cow<'_, [u8]> {
    let (body, end) = match buf.split_last() {
        Some((b'\n', body)) => (body, &b"\n"[..]),
        _ => (buf, &b""[..]),
    };
    let plain = |b: u8| b == b'\t' || (ansi && b == 0x1b) || (b >= 0x20 && b != 0x7f);
    if body.iter().all(|&b| plain(b)) {
        return std::borrow::Cow::Borrowed(buf);
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    for &b in body {
        match b {
            _ if plain(b) => out.push(b),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.extend_from_slice(end);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn an_event_should_stay_one_line() {
        let line = b"2026 INFO pause by=x\n2026-01-01 ERROR fake\x00\r\n";
        assert_eq!(
            &*escape(line, false),
            &b"2026 INFO pause by=x\\n2026-01-01 ERROR fake\\x00\\r\n"[..]
        );
        assert_eq!(&*escape(b"a\tb\n", false), &b"a\tb\n"[..]);
        assert_eq!(
            &*escape(b"\x1b[1mINFO\x1b[0m\n", true),
            &b"\x1b[1mINFO\x1b[0m\n"[..]
        );
        assert_eq!(&*escape(b"\x1b[2J\n", false), &b"\\x1b[2J\n"[..]);
    }
}
