//! Smoke tests of the controller scenarios: each runs with tiny sizes
//! against the real `autosync` binary and prints one valid JSON object with
//! its result fields. Nothing here is timed: figures come from the
//! benchmark program run by hand (BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `autosync` binary: `$AUTOSYNC` when set, else the one of this
/// build's profile: a workspace test run (`scripts/test.sh`) has built it
/// already; only when it is missing (this package's tests run alone) is it
/// built here. (Building it here when it exists would re-resolve features
/// for one package and rebuild much of the tree: minutes on a clean CI.)
fn autosync() -> PathBuf {
    if let Some(given) = std::env::var_os("AUTOSYNC") {
        return PathBuf::from(given);
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_autosync-bench"));
    let bin_dir = bench.parent().unwrap();
    let built = bin_dir.join(format!("autosync{}", std::env::consts::EXE_SUFFIX));
    if built.is_file() {
        return built;
    }
    let target_dir = bin_dir.parent().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "autosync", "--bin", "autosync"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if bin_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cannot run cargo");
    assert!(status.success(), "cargo build -p autosync failed");
    let bin = bin_dir.join(format!("autosync{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// Runs `autosync-bench ARGS --json` and returns its one JSON object.
fn report(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_autosync-bench"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "autosync-bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON object on one line");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["scenario"], args[0]);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    report
}

/// Runs a controller scenario against the `autosync` binary.
fn bench(args: &[&str]) -> Value {
    let binary = autosync();
    let mut all = args.to_vec();
    all.extend(["--autosync", binary.to_str().unwrap()]);
    let report = report(&all);
    assert_eq!(report["objects"], 320, "people in the quickstart's hr.csv");
    report
}

fn number(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

#[test]
fn quickstart_should_measure_every_change_in_both_targets_and_the_follow_ups() {
    let report = bench(&["quickstart", "--changes", "3", "--interval-ms", "200"]);
    let r = &report["results"];
    assert_eq!(r["changes"], 3);
    for kind in ["add", "change", "terminate"] {
        assert_eq!(r["by_kind"][kind]["changes"], 1, "{kind}: {r}");
    }
    let (p50, p99, max) = (
        number(r, "p50_ms"),
        number(r, "p99_ms"),
        number(r, "max_ms"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{r}");
    // Each change needs at least an import, a sync and an export to each
    // target (several changes may share runs).
    assert!(number(r, "run_profiles") >= 4.0, "{r}");
    assert!(number(r, "follow_ups") >= 3.0, "{r}");
    assert!(number(r, "follow_up_p50_ms") <= number(r, "follow_up_p99_ms"));
    assert!(report["bars"]["p99_ms"]["met"].is_boolean());
    assert!(report["bars"]["follow_up_p99_ms"]["met"].is_boolean());
}

#[test]
fn idle_should_run_nothing_when_nothing_changes() {
    let report = bench(&["idle", "--seconds", "2"]);
    let r = &report["results"];
    assert_eq!(r["run_profiles"], 0, "runs while idle: {}", r["runs"]);
    assert_eq!(report["bars"]["run_profiles"]["met"], true);
    let cpu = number(r, "cpu_fraction");
    assert!((0.0..=2.0).contains(&cpu), "{r}");
    assert!(number(r, "seconds") >= 2.0);
}

#[test]
fn vs_fixed_order_should_measure_both_schedulers_on_the_same_workload() {
    let report = bench(&[
        "vs-fixed-order",
        "--changes",
        "3",
        "--interval-ms",
        "200",
        "--fixed-interval-ms",
        "500",
    ]);
    let r = &report["results"];
    assert_eq!(r["changes"], 3);
    assert!(number(r, "controller_runs") >= 4.0, "{r}");
    // At least one whole cycle (3 MAs x import, sync, export) ran.
    assert!(number(r, "fixed_runs") >= 9.0, "{r}");
    assert!(number(r, "controller_p50_ms") > 0.0);
    assert!(number(r, "fixed_p50_ms") > 0.0);
    assert!(r["p50_ratio_fixed_to_controller"].is_number(), "{r}");
}

/// The `engine` scenario (in-process, no `autosync` binary): one JSON
/// object with the keys, each figure a positive number, and each
/// bar with whether the run met it.
#[test]
fn engine_should_report_every_figure_and_bar() {
    let report = report(&["engine", "--objects", "2000"]);
    assert_eq!(report["objects"], 2000);
    assert_eq!(report["machine"]["cores"].as_u64(), Some(num_cores()));
    let results = &report["results"];
    for key in [
        "full_import_objects_per_s",
        "full_sync_plain_objects_per_s",
        "refs_vs_plain",
        "sync_vs_raw",
        "export_objects_per_s",
        "peak_rss_bytes",
    ] {
        let v = results[key].as_f64();
        assert!(v.is_some_and(|v| v > 0.0), "{key}: {results}");
        assert!(
            report["bars"][key]["met"].is_boolean(),
            "{key}: {}",
            report["bars"]
        );
    }
    // The store's own limit with the references' rows, and what the bar
    // leaves them (figures only, no bar).
    for key in ["sync_vs_raw_refs", "raw_refs_rows_s", "refs_allowance_s"] {
        assert!(results[key].is_f64(), "{key}: {results}");
    }
}

/// The `status-under-load` scenario at a small size: the service answered
/// status requests in both windows (a full sync, the store locked), and
/// each window says its percentiles and whether the bar was met.
#[test]
fn status_under_load_should_measure_both_windows() {
    let binary = autosync();
    let report = report(&[
        "status-under-load",
        "--objects",
        "500",
        "--autosync",
        binary.to_str().unwrap(),
    ]);
    assert_eq!(report["objects"], 500);
    let r = &report["results"];
    for window in ["during_full_sync", "while_store_locked"] {
        let w = &r[window];
        assert!(number(w, "requests") >= 1.0, "{window}: {r}");
        assert_eq!(w["failed"], 0, "{window}: {r}");
        let (p50, p99, max) = (
            number(w, "p50_ms"),
            number(w, "p99_ms"),
            number(w, "max_ms"),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{window}: {r}");
    }
    // The store was locked for the whole window (four seconds).
    assert!(number(&r["while_store_locked"], "seconds") >= 4.0, "{r}");
    for bar in [
        "status_p99_ms_during_full_sync",
        "status_p99_ms_while_store_locked",
    ] {
        assert!(
            report["bars"][bar]["met"].is_boolean(),
            "{bar}: {}",
            report["bars"]
        );
    }
}

fn num_cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// The `group-change` scenario at a small size: both figures and their
/// ratio, and the bar with whether the run met it.
#[test]
fn group_change_should_report_one_member_against_the_whole_group() {
    let report = report(&["group-change", "--objects", "300"]);
    assert_eq!(report["objects"], 300);
    let r = &report["results"];
    assert_eq!(r["group_size"], 300);
    for key in ["one_member_ms", "whole_group_ms", "one_vs_whole"] {
        assert!(number(r, key) > 0.0, "{key}: {r}");
    }
    assert!(
        report["bars"]["one_vs_whole"]["met"].is_boolean(),
        "{report}"
    );
}

/// The `ldap-export` scenario on a few entries (its own slapd): every
/// rate and ratio a positive number, and each bar with whether it was met.
#[test]
fn ldap_export_should_report_each_operation_against_the_raw_tools() {
    let report = report(&["ldap-export", "--objects", "25"]);
    assert_eq!(report["objects"], 25);
    let r = &report["results"];
    for op in ["add", "modify", "delete"] {
        for key in [
            format!("export_{op}_per_s"),
            format!("raw_{op}_per_s"),
            format!("{op}_ratio"),
        ] {
            assert!(number(r, &key) > 0.0, "{key}: {r}");
        }
        let bar = format!("{op}_ratio");
        assert!(report["bars"][&bar]["met"].is_boolean(), "{report}");
    }
}

/// The `ldap-propagation` scenario, briefly: every steady change reached
/// the target (one latency each), the burst too, and the raw rate.
#[test]
fn ldap_propagation_should_measure_each_change_and_the_burst() {
    let binary = autosync();
    let report = report(&[
        "ldap-propagation",
        "--seconds",
        "1",
        "--burst",
        "40",
        "--autosync",
        binary.to_str().unwrap(),
    ]);
    let r = &report["results"];
    assert_eq!(r["changes"], 20, "{r}");
    assert_eq!(r["burst"], 40, "{r}");
    let (p50, p99, max) = (
        number(r, "p50_ms"),
        number(r, "p99_ms"),
        number(r, "max_ms"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{r}");
    assert!(number(r, "burst_seconds") >= number(r, "burst_written_seconds"));
    assert!(number(r, "raw_modify_per_s") > 0.0, "{r}");
    assert!(number(r, "steady_run_profiles") >= 3.0, "{r}");
    for bar in ["p50_ms", "p99_ms", "burst_seconds"] {
        assert!(report["bars"][bar]["met"].is_boolean(), "{report}");
    }
}
