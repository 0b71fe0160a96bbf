//! Reload of the real binary on SIGHUP (#185 of the original): a truncated
//! configuration is refused with its location (file:line) while the service
//! keeps running on the last good one; a valid changed configuration is
//! then applied.

use super::support::{BIN, Workdir, app_users, hr_with_status};
use autosync_testkit::ServiceProcess;
use std::path::Path;
use std::time::{Duration, Instant};

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `autosync run --no-api` in the background (the kit's), its log
/// collected as it comes.
struct Service(ServiceProcess);

impl Service {
    fn start(w: &Workdir) -> Service {
        Service(ServiceProcess::start(Path::new(BIN), &w.config(), &["--no-api"]).unwrap())
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// Waits until `done` holds, failing with the log.
    fn wait(&mut self, what: &str, done: impl FnMut(&str) -> bool) {
        self.0.wait_log(what, EVENT_TIMEOUT, done).unwrap();
    }

    fn signal(&self, name: &str) {
        self.0.signal(name).unwrap();
    }
}

/// The application table holds every active person (the first cycle ran).
fn converged(w: &Workdir) -> bool {
    let rows = rusqlite::Connection::open_with_flags(
        w.path().join("data/app.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|c| c.query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0)));
    rows.is_ok_and(|n| n as usize == hr_with_status(w.path(), "active").len())
        && app_users(w.path()).len() == hr_with_status(w.path(), "active").len()
}

#[test]
fn sighup_with_a_truncated_config_keeps_running_and_says_where_then_applies_a_valid_one() {
    let w = Workdir::quickstart();
    let good = std::fs::read_to_string(w.config()).unwrap();
    let mut svc = Service::start(&w);
    // The first cycle has run: the SIGHUP handler is in place by then.
    let start = Instant::now();
    while !converged(&w) {
        assert!(
            start.elapsed() < EVENT_TIMEOUT,
            "no first cycle; log:\n{}",
            svc.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    svc.wait("the first cycle logged", |log| log.contains("run ended"));

    // A truncated file (cut inside the `app` MA's table).
    let cut = good.find("[[ma]]\nname = \"app\"").unwrap() + 30;
    std::fs::write(w.config(), &good[..cut]).unwrap();
    svc.signal("HUP");
    svc.wait("the refusal", |log| log.contains("reload refused"));
    let log = svc.log();
    let refusal = &log[log.find("reload refused").unwrap()..];
    assert!(
        refusal.contains("autosync.toml:"),
        "the refusal does not say where: {refusal}"
    );
    let located = refusal
        .split("autosync.toml:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(
        located.is_some_and(|line| line >= 1),
        "no line number: {refusal}"
    );
    assert!(svc.0.is_running(), "the service ended");
    // Logged once (not by the reloader and again by the controller), and
    // on one line: a log line with `\n` spelled out is unreadable.
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reload refused"))
        .collect();
    assert_eq!(refusals.len(), 1, "the refusal is not logged once:\n{log}");
    assert!(
        !refusals[0].contains("\\n"),
        "the refusal is not one readable line: {}",
        refusals[0]
    );

    // An emptied file validates (it names nothing): refused for that, not
    // for the store path it no longer names (a black-box review).
    std::fs::write(w.config(), "").unwrap();
    svc.signal("HUP");
    svc.wait("the refusal of an empty file", |log| {
        log.contains("names no management agent")
    });
    assert!(!svc.log().contains("the store moved"), "{}", svc.log());
    assert!(svc.0.is_running(), "the service ended");

    // A valid, changed configuration: an interval trigger on app.
    let changed = good.replacen(
        "deprovisioning = \"delete\"",
        "deprovisioning = \"delete\"\ncontroller = { triggers = [{ type = \"interval\", every = \"300ms\", name = \"after-reload\" }] }",
        1,
    );
    std::fs::write(w.config(), changed).unwrap();
    svc.signal("HUP");
    svc.wait("the reload", |log| log.contains("configuration reloaded"));
    let log = svc.log();
    let reloaded = &log[log.find("configuration reloaded").unwrap()..];
    assert!(reloaded.contains("changed: app"), "{reloaded}");
    svc.wait("a run of the new trigger", |log| {
        log.contains("after-reload")
    });

    let (code, log) = svc.0.terminate().unwrap();
    assert_eq!(code, Some(0), "log:\n{log}");
}
