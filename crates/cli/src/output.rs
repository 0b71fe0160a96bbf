//! Writing results to standard output. A reader that went away (`autosync
//! history --json | head -1`) is not an error: the rest of the output is
//! dropped quietly and the command ends with its own exit code (a run's
//! status still decides it); `print!` would panic there. Any other write
//! error is said on stderr and ends the program with code 4.
//!
//! Standard error (messages, notes, diagnostics; the log has its writer
//! in `logline`) is written by [`write_err`], which drops what it cannot
//! write: `autosync run 2>&1 | head -1` goes on to its normal end and exit
//! code, where `eprintln!` would panic.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// The reader of standard output went away.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` (and a newline with `line`) to standard output, unless
/// its reader went away. Control characters other than newlines and tabs
/// (an escape sequence in a value read from a source) are written escaped
/// (`\u{1b}`): data never moves the cursor, clears the screen or fakes a
/// line on an operator's terminal. JSON output has none (serde escapes
/// them).
pub fn write(args: std::fmt::Arguments<'_>, line: bool) {
    if is_closed() {
        return;
    }
    let text = match args.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(args.to_string()),
    };
    let text = inert(&text);
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| if line { out.write_all(b"\n") } else { Ok(()) })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
        }
        Err(e) => {
            errln!("error: cannot write to standard output: {e}");
            std::process::exit(4);
        }
    }
}

/// Writes `args` and a newline to standard error in one write; what
/// cannot be written (a closed pipe, a full disk) is dropped: a message
/// is never worth failing or stopping a command for.
pub fn write_err(args: std::fmt::Arguments<'_>) {
    let mut text = match args.as_str() {
        Some(s) => s.to_owned(),
        None => args.to_string(),
    };
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Whether the reader of standard output went away (a command that
/// follows something forever stops then).
pub fn is_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Whether `c` is a C0 control character other than a newline or a tab
/// (DEL and C1 characters are left: serde_json writes them raw in JSON
/// strings, and an escape there would make the JSON invalid).
fn c0(c: char) -> bool {
    c < ' ' && c != '\n' && c != '\t'
}

/// `text` with its C0 control characters but newlines and tabs escaped.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(c0) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c0(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A value shown in text output on one line: its newlines, carriage
/// returns and other line separators escaped (a value from a source or an
/// API caller cannot start a line that looks like output of its own).
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let breaks = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    if !text.chars().any(breaks) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if breaks(c) {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_should_stay_on_its_line() {
        assert_eq!(super::one_line("ops\nMA  STATE\r"), "ops\\nMA  STATE\\r");
        assert_eq!(super::one_line("plain"), "plain");
        // C1 and DEL are left to JSON as serde writes them.
        assert_eq!(super::inert("a\u{92}b\u{7f}"), "a\u{92}b\u{7f}");
    }

    #[test]
    fn control_characters_should_be_written_escaped() {
        assert_eq!(super::inert("a\tb\nc"), "a\tb\nc");
        assert_eq!(super::inert("x\u{1b}[2J\rFAKE"), "x\\u{1b}[2J\\u{d}FAKE");
    }
}
