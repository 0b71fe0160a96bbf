//! Writing results to standard output. A reader that went away (`autosync
//! history --json | head -1`) is not an error: the rest of the output is
//! dropped quietly and the command ends with its own exit code (a run's
//! status still decides it); `print!` would panic there. Any other write
//! error is said on stderr and ends the program with code 4.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// The reader of standard output went away.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` (and a newline with `line`) to standard output, unless
/// its reader went away.
pub fn write(args: std::fmt::Arguments<'_>, line: bool) {
    if is_closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| if line { out.write_all(b"\n") } else { Ok(()) })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
        }
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(4);
        }
    }
}

/// Whether the reader of standard output went away (a command that
/// follows something forever stops then).
pub fn is_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}
