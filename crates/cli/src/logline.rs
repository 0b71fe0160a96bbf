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

/// Never fails: an event that cannot be written (stderr a closed pipe,
/// `autosync run 2>&1 | head -1`; a full disk) is dropped, and the
/// program goes on to its normal end. An error here would reach the
/// subscriber, whose report of it is an `eprintln!` that panics in the
/// thread that logged.
impl Write for Escaping {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let escaped = escape(buf, self.ansi);
        let _ = io::stderr().lock().write_all(&escaped);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
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
    // Line separators some viewers break lines at: NEL (U+0085, C2 85),
    // LS and PS (U+2028, U+2029: E2 80 A8, E2 80 A9).
    let separator = |at: usize| -> usize {
        match body.get(at..) {
            Some([0xc2, 0x85, ..]) => 2,
            Some([0xe2, 0x80, 0xa8 | 0xa9, ..]) => 3,
            _ => 0,
        }
    };
    if body.iter().all(|&b| plain(b)) && !(0..body.len()).any(|i| separator(i) > 0) {
        return std::borrow::Cow::Borrowed(buf);
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    let mut at = 0;
    while let Some(&b) = body.get(at) {
        let n = separator(at);
        if n > 0 {
            let c = match n {
                2 => "\\u{85}",
                _ if body.get(at + 2) == Some(&0xa8) => "\\u{2028}",
                _ => "\\u{2029}",
            };
            out.extend_from_slice(c.as_bytes());
            at += n;
            continue;
        }
        at += 1;
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
        assert_eq!(
            &*escape("a\u{2028}b\u{85}c\u{e9}\n".as_bytes(), false),
            "a\\u{2028}b\\u{85}c\u{e9}\n".as_bytes()
        );
    }
}
