//! A service killed (`kill -KILL`) is gone at once for every command,
//! though its process is not yet reaped (a black-box review: a zombie left
//! to an init that does not reap kept its `/proc/<pid>/stat`, and for a
//! minute, until the heartbeat lapsed, `status` said a service ran without
//! its API, `pause` and `queue` were refused with exit 2 and `history`
//! showed the killed run `running`). The service is frozen in its first
//! run at a crash point (`AUTOSYNC_CRASH_SIGNAL=STOP`), then killed, and
//! never waited for until the end of the test: no timing is assumed.

#![cfg(target_os = "linux")]

use super::support::*;
use autosync_testkit::ServiceProcess;
use std::path::Path;
use std::time::{Duration, Instant};

/// The state letter of process `pid` (`R`, `S`, `T`, `Z`, ...).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Waits (at most 20 s, not a timing assertion) until `pid` is in `want`.
fn wait_state(pid: u32, want: char, what: &str, service: &ServiceProcess) {
    let start = Instant::now();
    while state(pid) != Some(want) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "gave up waiting for {what}; log:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_service_not_yet_reaped_should_be_gone_at_once_for_every_command() {
    let w = Workdir::quickstart();
    let service = ServiceProcess::start_with_env(
        Path::new(BIN),
        &w.config(),
        &[],
        &[
            ("AUTOSYNC_CRASH_AFTER", "1"),
            ("AUTOSYNC_CRASH_SIGNAL", "STOP"),
        ],
    )
    .unwrap();
    let pid = service.pid();
    wait_state(pid, 'T', "the service frozen in its first run", &service);
    service.signal("KILL").unwrap();
    // Not waited for: a zombie, its `/proc/<pid>/stat` still there.
    wait_state(pid, 'Z', "the killed service", &service);

    let status = w.run(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert!(
        !text.contains("an autosync service runs") && text.contains("no service running"),
        "{text}"
    );

    let history = w.expect(&["history"], 0);
    assert!(!history.contains("running"), "{history}");
    // The run the service was frozen in, when its record was in the store
    // by then (in about one start of ten the first crash point comes where
    // no run is recorded in progress, and the store shows only ended
    // runs): left by a process that ended, for status and history alike.
    if history.contains("process ended") {
        assert!(
            history.contains("left in progress by a process that ended"),
            "{history}"
        );
        assert!(
            text.contains("left in progress by a process that ended"),
            "{text}"
        );
    }

    let paused = w.run(&["pause", "hr"]);
    let err = String::from_utf8_lossy(&paused.stderr);
    assert_eq!(paused.status.code(), Some(5), "{err}");
    assert!(!err.contains("an autosync service runs"), "{err}");

    let queued = w.expect(&["queue", "hr", "full-import"], 0);
    assert!(queued.contains("no service running"), "{queued}");
    assert_eq!(state(pid), Some('Z'), "reaped before the end of the test");
    drop(service);
}
