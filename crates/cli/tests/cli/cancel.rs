//! Ctrl-C during `run-profile`: the run stops at its next safe point and
//! is recorded `stopped-user-requested` (exit 3), not left in progress.

use super::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const CONFIG: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "name"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv", batch_size = 1000 }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "name", from = "name" },
]
"#;

#[test]
fn ctrl_c_should_stop_a_run_at_its_next_safe_point_and_record_it() {
    let w = Workdir::with_config(CONFIG);
    // Large enough that the import is still running when the signal comes.
    let mut csv = String::from("id,name\n");
    for i in 0..600_000 {
        csv.push_str(&format!("E{i:07},Person {i}\n"));
    }
    std::fs::write(w.path().join("hr.csv"), csv).unwrap();
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(w.config())
        .args(["run-profile", "hr", "full-import"])
        .env_remove("AUTOSYNC_CONFIG")
        .env_remove("AUTOSYNC_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // The step's start line: the run is under way, the handler in place.
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no step started: {seen}"
        );
        seen.push_str(&line);
        if line.contains("step 1") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {seen}{rest}\nstdout: {stdout}"
    );
    assert!(
        rest.contains("cancelling the run at its next safe point"),
        "{rest}"
    );
    assert!(stdout.contains("stopped-user-requested"), "{stdout}");
    let history = w.expect(&["history", "--json"], 0);
    let runs: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(runs[0]["status"], "stopped-user-requested", "{history}");
}
