//! `autosync events`: following a real running service's event stream,
//! as JSON lines and as text, bounded by `--count`; and its documented
//! failure without a service.

use super::controls::{NO_SERVICE, Service, refused};
use super::support::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous bound for waiting on an event (not a timing assertion).
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `autosync events ARGS` running in the background, its output lines
/// read as they come; killed when dropped.
struct Follower {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Follower {
    /// Starts it and waits until it follows the stream (it says so on
    /// stderr once the service answered).
    fn start(w: &Workdir, args: &[&str]) -> Follower {
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(w.config())
            .arg("events")
            .args(args)
            .env_remove("AUTOSYNC_CONFIG")
            .env_remove("AUTOSYNC_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        let line = stderr.recv_timeout(EVENT_TIMEOUT).unwrap();
        assert!(line.starts_with("following the events"), "{line}");
        Follower { child, stdout }
    }

    fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(EVENT_TIMEOUT)
            .expect("no event line within the bound")
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines `from` writes, as they come.
fn lines_of(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// An event of `app` in a word or two.
fn app_story(event: &Value) -> Option<String> {
    if event["ma"] != "app" {
        return None;
    }
    let kind = event["type"].as_str().unwrap();
    Some(match kind {
        "queued" | "run-started" | "run-ended" => {
            format!("{kind} {}", event["profile"].as_str().unwrap())
        }
        "state-changed" => format!(
            "state-changed {}->{}",
            event["from"].as_str().unwrap_or("none"),
            event["to"].as_str().unwrap_or("none")
        ),
        _ => return None,
    })
}

#[test]
fn events_should_follow_a_queued_runs_life_as_json_and_count_out_as_text() {
    let w = Workdir::quickstart();
    let service = Service::start(&w);
    let follower = Follower::start(&w, &["--json", "--count", "1000"]);
    w.expect(&["queue", "app", "full-import"], 0);
    let mut story = Vec::new();
    let mut seqs = Vec::new();
    while story.last().map(String::as_str) != Some("state-changed running->idle") {
        let event: Value = serde_json::from_str(&follower.next_line()).unwrap();
        seqs.push(event["seq"].as_u64().unwrap());
        story.extend(app_story(&event));
    }
    assert_eq!(
        story,
        [
            "queued full-import",
            "run-started full-import",
            "state-changed idle->running",
            "run-ended full-import",
            "state-changed running->idle",
        ]
    );
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "{seqs:?}");
    drop(follower);

    // `--count 1`: one event, then it exits by itself.
    let mut one = Follower::start(&w, &["--count", "1"]);
    w.expect(&["stop", "app"], 0);
    let line = one.next_line();
    // The control comes first, then the state it changed.
    assert!(line.contains(" app: stop by cli: stopped `app`"), "{line}");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = one.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < EVENT_TIMEOUT, "`--count 1` did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));

    // Maintenance mode and paused triggers are no MA state: the controls
    // that change them are published, with who asked (a review: a
    // follower could not see them).
    let two = Follower::start(&w, &["--count", "2"]);
    w.expect(&["maintenance", "on"], 0);
    w.expect(&["pause", "hr"], 0);
    let line = two.next_line();
    assert!(
        line.contains(" maintenance by cli: maintenance mode on"),
        "{line}"
    );
    let line = two.next_line();
    assert!(
        line.contains(" hr: pause by cli: paused the triggers of `hr`"),
        "{line}"
    );
    drop(two);
    assert_eq!(service.terminate(), Some(0));
}

#[test]
fn events_without_a_service_should_fail_as_the_controls_do() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    let stderr = refused(&w, &["events", "--json"], NO_SERVICE);
    assert!(
        stderr.contains("no autosync service is running for this configuration"),
        "{stderr}"
    );
}
