//! Crash points: named places in the steps where a crash is most
//! interesting (just before or after a store commit, after a target accepted
//! a batch). They cost one atomic load when unused. The crash-safety test
//! sets `AUTOSYNC_CRASH_AFTER=n` to have the process SIGKILL itself at the
//! n-th point it passes, and `AUTOSYNC_CRASH_TRACE=file` to list the points
//! passed (so that a reference run can count them). With
//! `AUTOSYNC_CRASH_SIGNAL=STOP` the n-th point freezes the process (SIGSTOP)
//! instead: alive, holding what it holds there, until a SIGCONT, so a test
//! can show what other processes do meanwhile. Nothing else uses them.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Plan {
    kill_at: Option<u64>,
    /// SIGSTOP rather than SIGKILL at `kill_at`.
    stop: bool,
    trace: Option<std::sync::Mutex<std::fs::File>>,
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);

fn plan() -> &'static Option<Plan> {
    PLAN.get_or_init(|| {
        let kill_at = std::env::var("AUTOSYNC_CRASH_AFTER")
            .ok()
            .and_then(|v| v.parse().ok());
        let trace = std::env::var_os("AUTOSYNC_CRASH_TRACE").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
                .map(std::sync::Mutex::new)
        });
        let stop = std::env::var("AUTOSYNC_CRASH_SIGNAL").is_ok_and(|v| v == "STOP");
        if kill_at.is_none() && trace.is_none() {
            None
        } else {
            Some(Plan {
                kill_at,
                stop,
                trace,
            })
        }
    })
}

/// Pass the crash point `name`.
pub fn crash_point(name: &str) {
    let Some(plan) = plan() else { return };
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(trace) = &plan.trace
        && let Ok(mut f) = trace.lock()
    {
        let _ = writeln!(f, "{n} {name}");
    }
    if plan.kill_at == Some(n) && plan.stop {
        tracing::warn!(
            point = name,
            "crash point reached: freezing this process until SIGCONT (AUTOSYNC_CRASH_SIGNAL=STOP)"
        );
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
        return;
    }
    if plan.kill_at == Some(n) {
        tracing::warn!(
            point = name,
            "crash point reached: killing this process (AUTOSYNC_CRASH_AFTER)"
        );
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; if it somehow was not delivered, stop anyway.
        std::process::abort();
    }
}
