//! The `autosync` command: argument parsing, dispatch and exit codes. The
//! work is done by the library crates; this binary only wires them together
//! and renders their results for people (tables, progress bars) and programs
//! (`--json`).

mod args;
mod commands;
mod exit;
mod progress;
mod render;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = args::Cli::parse();
    init_tracing(args.verbose);
    match commands::dispatch(&args) {
        Ok(code) => code.into(),
        Err(failure) => {
            failure.report();
            failure.code().into()
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTOSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
