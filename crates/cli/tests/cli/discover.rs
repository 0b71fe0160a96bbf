//! `autosync discover`: the proposal for the quickstart (with and without
//! run history), `--write`, and the round trip through `autosync check`.

use super::support::*;
use autosync_model::{RunReason, RunRecord, RunStatus, StepCounters, StepRecord, StepType};
use autosync_store::Store;
use autosync_store::sqlite::SqliteStore;

/// The quickstart with its controller sections (`[controller]` and every
/// `[ma.controller]`) taken out.
fn quickstart_without_controller() -> Workdir {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |text| {
        let mut out = String::new();
        let mut skipping = false;
        for line in text.lines() {
            let t = line.trim();
            if t == "[controller]" || t == "[ma.controller]" {
                skipping = true;
                continue;
            }
            if skipping && (t.is_empty() || t.starts_with('#') || t.starts_with('[')) {
                skipping = false;
            }
            if !skipping {
                out.push_str(line);
                out.push('\n');
            }
        }
        assert!(
            !out.lines()
                .any(|l| l.trim().ends_with("controller]") && !l.trim().starts_with('#')),
            "{out}"
        );
        out
    });
    w
}

/// Puts each `[ma.controller]` section of a proposal after its MA's keys and
/// the `[controller]` section at the end, as a user would.
fn merge(config: &str, proposal: &str) -> String {
    let mut parts = proposal.split("\n# ---- ma \"");
    let global = parts.next().unwrap();
    let sections: Vec<String> = parts.map(|p| format!("# ---- ma \"{p}")).collect();
    let mut out = String::new();
    let mut seen = 0;
    for line in config.lines() {
        if line.trim() == "[[ma]]" {
            if seen > 0 {
                out.push_str(&sections[seen - 1]);
                out.push('\n');
            }
            seen += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert_eq!(seen, sections.len(), "one section per MA");
    out.push_str(&sections[seen - 1]);
    out.push('\n');
    out.push_str(global);
    out
}

/// Past runs at fixed times: `hr` imported by hand about every 30 minutes,
/// each followed by a sync; `app` once, plus a confirming import.
fn add_history(w: &Workdir) {
    let store = SqliteStore::open(&w.path().join("state/autosync.db")).unwrap();
    let base: chrono::DateTime<chrono::Utc> = "2026-11-01T08:00:00Z".parse().unwrap();
    let run = |ma: &str, profile: &str, step: StepType, reason: RunReason, minutes: i64| {
        let started_at = base + chrono::Duration::minutes(minutes);
        let ended_at = Some(started_at + chrono::Duration::seconds(3));
        RunRecord {
            id: 0,
            ma: ma.into(),
            profile: profile.into(),
            status: RunStatus::Success,
            started_at,
            ended_at,
            reason,
            steps: vec![StepRecord {
                step_type: step,
                status: RunStatus::Success,
                started_at,
                ended_at,
                counters: StepCounters::for_step(step),
                errors: 0,
                message: None,
            }],
        }
    };
    let manual = || RunReason::Manual { by: "cli".into() };
    let mut runs = Vec::new();
    for (i, minutes) in [0, 29, 61, 90, 118, 150, 181].into_iter().enumerate() {
        let profile = if i == 0 {
            "full-import"
        } else {
            "delta-import"
        };
        let step = if i == 0 {
            StepType::FullImport
        } else {
            StepType::DeltaImport
        };
        runs.push(run("hr", profile, step, manual(), minutes));
        runs.push(run(
            "hr",
            "delta-sync",
            StepType::DeltaSync,
            manual(),
            minutes + 1,
        ));
    }
    runs.push(run("app", "full-import", StepType::FullImport, manual(), 2));
    runs.push(run(
        "app",
        "delta-import",
        StepType::DeltaImport,
        RunReason::FollowUp {
            run_id: 1,
            because: "confirming import".into(),
            confirming: true,
        },
        5,
    ));
    let mut txn = store.begin().unwrap();
    for r in &mut runs {
        txn.run_insert(r).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn discover_should_propose_a_file_watch_for_the_quickstart_source_and_no_trigger_for_targets() {
    let w = quickstart_without_controller();
    let out = w.expect(&["discover"], 0);
    assert!(
        out.contains(r#"{ type = "file-watch", path = "data/hr.csv", profile = "delta-import" }"#),
        "{out}"
    );
    assert!(out.contains("Run history: no import yet."), "{out}");
    assert!(
        !w.path().join("state").exists(),
        "discover reads the store only when it exists; it creates nothing"
    );
    insta::assert_snapshot!("discover_quickstart_text", out);
    let json = w.expect(&["discover", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mas"][0]["name"], "hr");
    assert_eq!(v["mas"][0]["kind"], "source");
    assert_eq!(
        v["mas"][0]["controller"]["triggers"][0]["type"],
        "file-watch"
    );
    assert_eq!(v["mas"][1]["kind"], "target");
    insta::assert_snapshot!("discover_quickstart_json", json);
}

#[test]
fn discover_should_sum_up_the_run_history_of_each_ma() {
    let w = quickstart_without_controller();
    add_history(&w);
    let out = w.expect(&["discover"], 0);
    assert!(
        out.contains("# Run history: 7 imports from 2026-11-01 08:00 to 2026-11-01 11:01 UTC, a median 30m apart."),
        "{out}"
    );
    assert!(
        out.contains("# Run history: 1 import from 2026-11-01 08:02"),
        "the confirming import is not counted: {out}"
    );
    insta::assert_snapshot!("discover_quickstart_history_text", out);
    let json = w.expect(&["discover", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mas"][0]["history"]["imports"], 7);
    assert_eq!(v["mas"][0]["history"]["median_gap"], "30m");
    insta::assert_snapshot!("discover_quickstart_history_json", json);
}

#[test]
fn discover_proposal_appended_to_the_quickstart_should_pass_check() {
    let w = quickstart_without_controller();
    let target = w.path().join("proposal.toml");
    let out = w.expect(&["discover", "--write", target.to_str().unwrap()], 0);
    assert!(
        out.starts_with("wrote the proposed controller configuration to /"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 4, "one line per MA: {out}");
    let proposal = std::fs::read_to_string(&target).unwrap();
    assert_eq!(
        proposal,
        w.expect(&["discover"], 0),
        "--write writes what is printed"
    );
    let config = std::fs::read_to_string(w.config()).unwrap();
    std::fs::write(w.config(), merge(&config, &proposal)).unwrap();
    let check = w.expect(&["check"], 0);
    assert!(check.contains("hr"), "{check}");

    // Discovering again keeps every setting, now the user's.
    let again = w.expect(&["discover"], 0);
    assert!(
        again.contains(
            r#"triggers = [
  { type = "file-watch", path = "data/hr.csv", profile = "delta-import" },
]  # yours"#
        ),
        "{again}"
    );
}

#[test]
fn discover_proposal_should_fail_check_when_merged_wrongly() {
    // The round trip can fail: every section appended at the end puts all of
    // them under the last MA, and check says so.
    let w = quickstart_without_controller();
    let proposal = w.expect(&["discover"], 0);
    let config = std::fs::read_to_string(w.config()).unwrap();
    std::fs::write(w.config(), config + proposal.as_str()).unwrap();
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn discover_write_should_refuse_to_overwrite_unless_forced() {
    let w = quickstart_without_controller();
    let target = w.path().join("proposal.toml");
    std::fs::write(&target, "keep me").unwrap();
    let out = w.run(&["discover", "--write", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("exists; pass --force"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    w.expect(
        &["discover", "--write", target.to_str().unwrap(), "--force"],
        0,
    );
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("[ma.controller]")
    );
}
