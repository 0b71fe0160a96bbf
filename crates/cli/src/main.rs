//! The `autosync` command: argument parsing, dispatch and exit codes. The
//! work is done by the library crates; this binary only wires them together
//! and renders their results for people (tables, progress bars) and programs
//! (`--json`).

// A command-line program prints its results.
#![allow(clippy::print_stdout)]
// `eprintln!` panics on a closed stderr (`autosync run 2>&1 | head -1`):
// `errln!` instead.
#![deny(clippy::print_stderr)]

/// `print!` that ends the program quietly when its output is closed (a
/// pipe whose reader is gone: `autosync history --json | head -1`), where
/// `print!` would panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), false) };
}

/// `println!` that ends the program quietly when its output is closed.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), true) };
}

/// `eprintln!` that drops what it cannot write (stderr closed: `autosync
/// run 2>&1 | head -1`), where `eprintln!` would panic.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::write_err(format_args!($($arg)*)) };
}

mod args;
mod commands;
mod control;
mod cs_delete;
mod discover;
mod events;
mod exit;
mod listing;
mod locate;
mod logline;
mod output;
mod page;
mod private_file;
mod progress;
mod render;
mod service;
mod status;
mod status_text;
mod waits;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: the engine allocates and frees many small values per object;
/// the benchmark measured import +40 % and export +25 % over the system
/// allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    end_on_panic();
    let args = args::Cli::parse();
    let service = matches!(args.command, args::Command::Run(_));
    init_tracing(args.verbose, service);
    match commands::dispatch(&args) {
        Ok(code) => code.into(),
        Err(failure) => {
            failure.report();
            failure.code().into()
        }
    }
}

/// The exit code of a process a panic ended (Rust's own for a panic of
/// the main thread).
const PANICKED: i32 = 101;

/// A panic in any thread ends the process, exit 101, after the default
/// hook said where (it ignores a closed stderr). Without this, a panic in
/// a thread or task that others wait for (a run's blocking job, whose
/// answer the service's loop waits for; the task that listens for
/// SIGTERM) would leave the process waiting for ever, the store's leases
/// held and its runs in progress. The runs it leaves are closed
/// `stopped-server` by the next start.
fn end_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        errln!(
            "error: autosync ended on an internal error (a bug; exit {PANICKED}); the next `autosync run` or `run-profile` closes the runs it left in progress as stopped-server"
        );
        std::process::exit(PANICKED);
    }));
}

/// The service logs what it does (info) by default; commands only warn.
/// The log is a courtesy: a stderr that cannot be written (a closed pipe)
/// loses it, and nothing else happens (`logline`'s writer drops what it
/// cannot write; the subscriber's own report of a failed write would be
/// an `eprintln!`, which panics there: off).
fn init_tracing(verbose: u8, service: bool) {
    let default = match verbose {
        0 if service => "info",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTOSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(logline::EscapingStderr { ansi })
        .with_ansi(ansi)
        .log_internal_errors(false)
        .init();
}
