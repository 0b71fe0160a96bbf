//! Exit codes (documented in the README) and the one failure type of the
//! binary.

use std::process::ExitCode;

/// The exit codes of `autosync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Success (also `completed-no-objects` and `completed-warnings`).
    Ok = 0,
    /// The run completed with per-object errors (`completed-*-errors`).
    ObjectErrors = 1,
    /// Usage or configuration error (nothing ran).
    Config = 2,
    /// The run stopped (`stopped-*`, `no-start-*`).
    Stopped = 3,
    /// The store or the system failed (nothing trustworthy to show).
    Failure = 4,
    /// A control needs the running service and none runs (or answers).
    NoService = 5,
}

impl From<Code> for ExitCode {
    fn from(c: Code) -> ExitCode {
        ExitCode::from(c as u8)
    }
}

/// Why a command failed.
pub enum Failure {
    /// A configuration error, already formatted (with file, line and key).
    Config(autosync_config::ConfigError),
    /// A usage error (unknown MA, bad filter, ...).
    Usage(String),
    /// No service runs (or answers) for a command that needs one.
    NoService(String),
    /// Anything else.
    Other(anyhow::Error),
}

impl Failure {
    pub fn code(&self) -> Code {
        match self {
            Failure::Config(_) | Failure::Usage(_) => Code::Config,
            Failure::Other(_) => Code::Failure,
            Failure::NoService(_) => Code::NoService,
        }
    }

    /// Print the failure on stderr: fancy on a terminal, plain otherwise.
    pub fn report(&self) {
        use std::io::IsTerminal;
        match self {
            Failure::Config(e) => {
                if std::io::stderr().is_terminal() {
                    eprintln!("{}", e.render_fancy(true));
                } else {
                    eprintln!("{e}");
                }
            }
            Failure::Usage(m) | Failure::NoService(m) => eprintln!("error: {m}"),
            Failure::Other(e) => eprintln!("error: {e:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<autosync_store::StoreError> for Failure {
    fn from(e: autosync_store::StoreError) -> Self {
        Failure::Other(e.into())
    }
}
