//! Exit codes (documented in docs/src/reference/exit-codes.md and in `autosync --help`) and the
//! one failure type of the binary.

use autosync_model::{RunRecord, RunStatus};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// The exit codes as `autosync --help` lists them.
pub const HELP: &str = "\
Exit codes:
  0  success (also `completed-no-objects`, `completed-warnings`)
  1  a run completed with per-object errors (`completed-*-errors`)
  2  usage or configuration error, or a control the service refused
  3  a run stopped (`stopped-*`, `no-start-*`)
  4  the store or the system failed
  5  a control found no running service
`run-profile` exits with its run's code; `run --once` with the worst
code among the last run of each MA's profiles (a run that a retry
redid counts as the retry ended), and 3 while an MA's syncs wait for
`approve` or `reject`, maintenance is on, or a stopped MA has requests
queued; `run` without `--once` exits 0 when stopped by a signal.";

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

impl Code {
    /// The exit code of a finished run.
    pub fn of_run(status: RunStatus) -> Code {
        match status {
            RunStatus::Success | RunStatus::CompletedNoObjects | RunStatus::CompletedWarnings => {
                Code::Ok
            }
            RunStatus::CompletedExportErrors
            | RunStatus::CompletedImportErrors
            | RunStatus::CompletedSyncErrors => Code::ObjectErrors,
            _ => Code::Stopped,
        }
    }

    /// The exit code of `run --once`: the worst of the last run of each
    /// MA's profile, so that cron and systemd see a source that stayed
    /// unreachable (3) or objects left in error (1), not a failure a retry
    /// then made good.
    pub fn of_runs(runs: &[RunRecord]) -> Code {
        last_runs(runs)
            .into_iter()
            .map(|r| Code::of_run(r.status))
            .max_by_key(|c| c.rank())
            .unwrap_or(Code::Ok)
    }

    /// The worse of `self` and `other`.
    pub fn max_rank(self, other: Code) -> Code {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// How bad a code is (stopped is worse than object errors).
    fn rank(self) -> u8 {
        match self {
            Code::Ok => 0,
            Code::ObjectErrors => 1,
            _ => 2,
        }
    }
}

/// The last runs of each MA's profile that did not end well, as
/// `MA PROFILE STATUS (run ID)`.
pub fn not_ok(runs: &[RunRecord]) -> Vec<String> {
    last_runs(runs)
        .into_iter()
        .filter(|r| Code::of_run(r.status) != Code::Ok)
        .map(|r| format!("{} {} {} (run {})", r.ma, r.profile, r.status, r.id))
        .collect()
}

/// The last of `runs` (in the order they ended) of each MA's profile.
fn last_runs(runs: &[RunRecord]) -> Vec<&RunRecord> {
    let mut last: BTreeMap<(&str, &str), &RunRecord> = BTreeMap::new();
    for run in runs {
        last.insert((&run.ma, &run.profile), run);
    }
    last.into_values().collect()
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
                    errln!("{}", e.render_fancy(true));
                } else {
                    errln!("{e}");
                }
            }
            Failure::Usage(m) | Failure::NoService(m) => errln!("error: {m}"),
            Failure::Other(e) => errln!("error: {e:#}"),
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
