//! Each command's human and JSON output, snapshotted, and its exit codes.

use super::support::*;

const SMALL: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "displayName", "email", "status"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "displayName", expr = "first + ' ' + last" },
  { mv = "email", expr = "lower(email)" },
  { mv = "status", from = "status" },
]

[[ma]]
name = "dir"
connector = { type = "jsonl", path = "dir.jsonl" }
object_types = [{ name = "account", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
export_flows = [
  { cs = "cn", from = "displayName" },
  { cs = "mail", from = "email" },
]
provisioning = [{ condition = "status == 'active'", anchor = "employeeId" }]
deprovisioning = "delete"
export_deletion_threshold = 2
"#;

const PEOPLE: &str = "id,first,last,email,status
1,Ada,Lovelace,Ada@Example.com,active
2,Alan,Turing,alan@example.com,active
3,Grace,Hopper,GRACE@example.com,active
4,Linus,Torvalds,linus@example.com,terminated
5,bad,row
6,Barbara,Liskov,barbara@example.com,active
";

fn small() -> Workdir {
    let w = Workdir::with_config(SMALL);
    std::fs::write(w.path().join("hr.csv"), PEOPLE).unwrap();
    w
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)?",
        "[time]",
    );
    s.add_filter(r"\d+\.\d{3} s", "[duration]");
    s.add_filter(r"/tmp/[^/\s]+/", "[dir]/");
    s.add_filter(r"/tmp/[^/\s]+", "[dir]");
    s
}

#[test]
fn check_should_summarise_a_valid_configuration() {
    let w = small();
    let out = w.expect(&["check"], 0);
    settings().bind(|| insta::assert_snapshot!(out));
    let json = w.expect(&["check", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.is_object(), "{json}");
    settings().bind(|| insta::assert_snapshot!("check_json", json));
}

#[test]
fn check_should_name_file_line_and_key_of_a_configuration_error_and_exit_2() {
    let w = Workdir::with_config(&SMALL.replace(
        "{ mv = \"status\", from = \"status\" }",
        "{ mv = \"state\", from = \"status\" }",
    ));
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("autosync.toml:"), "{err}");
    assert!(err.contains("state"), "{err}");
    settings().bind(|| insta::assert_snapshot!(err));
}

#[test]
fn run_profile_should_print_counters_and_first_errors_and_exit_1_on_object_errors() {
    let w = small();
    let out = w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    assert!(out.contains("completed-import-errors"), "{out}");
    assert!(out.contains("stage-add 5"), "{out}");
    settings().bind(|| insta::assert_snapshot!(out));
}

/// Without a terminal (a pipe, a CI log) progress is plain lines on
/// stderr: the step's start, then its end with status, objects and rate;
/// stdout keeps only the run's report.
#[test]
fn run_profile_without_a_terminal_should_print_plain_progress_lines_on_stderr() {
    let w = small();
    let out = w.run(&["run-profile", "hr", "full-import"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("step 1:")).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(lines[0], "step 1: full-import started");
    assert!(
        lines[1]
            .starts_with("step 1: full-import finished: completed-import-errors, 6 objects in "),
        "{err}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("step 1: full-import started"), "{stdout}");
    assert!(stdout.contains("stage-add 5"), "{stdout}");
}

#[test]
fn run_profile_json_should_print_the_run_record() {
    let w = small();
    let out = w.expect(&["run-profile", "hr", "full-import", "--json"], 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ma"], "hr");
    assert_eq!(v["steps"][0]["type"], "full-import");
    assert_eq!(v["steps"][0]["counters"]["stage-add"], 5);
    // Its changes and errors, as `history RUN_ID --json` gives them.
    assert_eq!(v["changes"].as_array().map(Vec::len), Some(5), "{out}");
    assert!(v["errors"].is_array(), "{out}");
    settings().bind(|| insta::assert_snapshot!(out));
}

#[test]
fn history_should_list_runs_most_recent_first_in_text_and_json() {
    let w = small();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    w.expect(&["run-profile", "dir", "export", "--no-progress"], 0);
    let text = w.expect(&["history"], 0);
    let json = w.expect(&["history", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["profile"], "export");
    for key in [
        "id",
        "ma",
        "profile",
        "status",
        "started_at",
        "ended_at",
        "reason",
        "steps",
    ] {
        assert!(runs[0].get(key).is_some(), "history --json lacks `{key}`");
    }
    assert_eq!(
        runs[1]["steps"][0]["counters"]["outbound"]["dir"]["provisioned-adds"],
        4
    );
    let limited = w.expect(&["history", "--ma", "hr", "--limit", "1", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&limited).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["profile"], "full-sync");
    settings().bind(|| {
        insta::assert_snapshot!("history_text", text);
        insta::assert_snapshot!("history_json", json);
    });
}

#[test]
fn cs_should_show_pending_exports_and_errors() {
    let w = small();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    let pending = w.expect(&["cs", "dir", "--pending-export"], 0);
    assert!(pending.contains("4 pending export"), "{pending}");
    let json = w.expect(&["cs", "dir", "--pending-export", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    settings().bind(|| insta::assert_snapshot!("cs_pending_export", pending));
    settings().bind(|| insta::assert_snapshot!("cs_pending_export_json", json));
}

/// The other connector-space filters, human and JSON: pending imports
/// before a sync, unconfirmed exports after an export.
#[test]
fn cs_should_show_pending_imports_and_unconfirmed_exports() {
    let w = small();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    let pending = w.expect(&["cs", "hr", "--pending-import"], 0);
    assert!(pending.contains("5 pending import"), "{pending}");
    let json = w.expect(&["cs", "hr", "--pending-import", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 5);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|o| o["pending_import"]["kind"] == "add")
    );
    settings().bind(|| insta::assert_snapshot!("cs_pending_import", pending));

    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    w.expect(&["run-profile", "dir", "export", "--no-progress"], 0);
    let unconfirmed = w.expect(&["cs", "dir", "--unconfirmed-export"], 0);
    assert!(
        unconfirmed.contains("4 unconfirmed export"),
        "{unconfirmed}"
    );
    let json = w.expect(&["cs", "dir", "--unconfirmed-export", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|o| o.get("pending_export").is_none())
    );
    settings().bind(|| insta::assert_snapshot!("cs_unconfirmed_export", unconfirmed));
    settings().bind(|| insta::assert_snapshot!("cs_unconfirmed_export_json", json));
}

#[test]
fn cs_errors_should_show_the_error_kept_with_the_object_while_the_rest_synchronise() {
    // Person 4's status cannot be turned into a number: a per-object sync
    // error on that object only.
    let w = Workdir::with_config(&SMALL.replace(
        "{ mv = \"status\", from = \"status\" }",
        "{ mv = \"status\", expr = \"id == '4' ? to_int(status) : status\" }",
    ));
    std::fs::write(w.path().join("hr.csv"), PEOPLE).unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    let out = w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 1);
    assert!(out.contains("completed-sync-errors"), "{out}");
    assert!(out.contains("projections 4"), "{out}");
    let errors = w.expect(&["cs", "hr", "--errors"], 0);
    assert!(errors.contains("1 with errors"), "{errors}");
    assert!(errors.contains("expression-failed"), "{errors}");
    let json: serde_json::Value =
        serde_json::from_str(&w.expect(&["cs", "hr", "--errors", "--json"], 0)).unwrap();
    assert_eq!(json[0]["anchor"], "4");
    assert!(
        json[0]["pending_import"].is_object(),
        "the object keeps its pending import for the next sync"
    );
    settings().bind(|| insta::assert_snapshot!(errors));
    settings().bind(|| {
        insta::assert_snapshot!(
            "cs_errors_json",
            w.expect(&["cs", "hr", "--errors", "--json"], 0)
        )
    });
}

/// A row that never became a connector-space object (row 5 of `PEOPLE` is
/// short and new) is listed after the objects with its location, error type
/// and detail, in text and JSON, until an import reads it.
#[test]
fn cs_errors_should_list_the_rows_that_never_became_objects() {
    let w = small();
    let out = w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    let run_id = out.split_whitespace().nth(1).unwrap().trim_end_matches(':');
    let text = w.expect(&["cs", "hr", "--errors"], 0);
    assert!(
        text.contains("records the import could not read, not in the connector space: 1"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("hr.csv line 6"))
        .unwrap();
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "hr.csv line 6",
            "5",
            run_id,
            "malformed-record: expected 5 fields, found 3"
        ],
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&w.expect(&["cs", "hr", "--errors", "--json"], 0)).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "anchor": "5",
            "location": "hr.csv line 6",
            "error": {
                "stage": "import",
                "error_type": "malformed-record",
                "detail": "expected 5 fields, found 3",
                "run_id": run_id.parse::<i64>().unwrap(),
            }
        }])
    );
    // Fixed in the file: the next import reads it, and it is no longer listed.
    w.edit("hr.csv", |t| {
        t.replace("5,bad,row", "5,Bad,Row,bad@example.com,active")
    });
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    let text = w.expect(&["cs", "hr", "--errors"], 0);
    assert!(
        !text.contains("records the import could not read"),
        "{text}"
    );
    assert!(w.expect(&["cs", "hr", "--errors", "--json"], 0).trim() == "[]");
}

/// `history RUN_ID` shows one run with every recorded error, in text and
/// JSON; an unknown id is a usage error.
#[test]
fn history_with_a_run_id_should_show_the_run_and_its_errors() {
    let w = Workdir::with_config(SMALL);
    std::fs::write(
        w.path().join("hr.csv"),
        format!("{PEOPLE}7,short\n,No,Anchor,none@example.com,active\n"),
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    let text = w.expect(&["history", "1"], 0);
    let listed: Vec<&str> = text
        .split("  errors:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .collect();
    assert_eq!(
        listed,
        [
            "    5: malformed-record: hr.csv line 6: expected 5 fields, found 3",
            "    7: malformed-record: hr.csv line 8: expected 5 fields, found 2",
            "    hr.csv line 9: missing-anchor: hr.csv line 9: no anchor: column `id` is empty",
        ],
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&w.expect(&["history", "1", "--json"], 0)).unwrap();
    assert_eq!(json["id"], 1);
    assert_eq!(json["errors"].as_array().unwrap().len(), 3);
    assert_eq!(json["errors"][2]["object"], "hr.csv line 9");
    assert_eq!(json["errors"][2]["error"]["error_type"], "missing-anchor");
    let limited = w.expect(&["history", "1", "--limit", "1"], 0);
    assert!(
        limited.contains("errors (1 of 3; --limit shows more):"),
        "{limited}"
    );
    settings().bind(|| insta::assert_snapshot!("history_run_text", text));
    let out = w.run(&["history", "42"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("there is no run 42 in the history"), "{err}");
}

#[test]
fn mv_should_filter_by_attribute_value() {
    let w = small();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    let out = w.expect(&["mv", "--filter", "email=grace@example.com"], 0);
    assert!(out.contains("Grace Hopper"), "{out}");
    assert!(!out.contains("Ada"), "{out}");
    let json = w.expect(&["mv", "--type", "person", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 5);
    settings().bind(|| insta::assert_snapshot!(out));
    settings().bind(|| insta::assert_snapshot!("mv_json", json));
}

#[test]
fn unknown_management_agent_should_be_a_usage_error_listing_the_known_ones() {
    let w = small();
    let out = w.run(&["run-profile", "hrr", "full-import"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("`hrr`") && err.contains("did you mean `hr`?"),
        "{err}"
    );
    // Too far from any name: the list, in alphabetical order.
    let out = w.run(&["run-profile", "payroll", "full-import"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("one of: `dir`, `hr`"), "{err}");
    let out = w.run(&["mv", "--filter", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn export_over_the_deletion_threshold_should_stop_until_approved() {
    let w = small();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    w.expect(&["run-profile", "dir", "export", "--no-progress"], 0);
    // Everyone but Ada leaves: three deletions, threshold two.
    std::fs::write(
        w.path().join("hr.csv"),
        "id,first,last,email,status\n1,Ada,Lovelace,Ada@Example.com,active\n",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    let out = w.expect(&["run-profile", "dir", "export", "--no-progress"], 3);
    assert!(out.contains("stopped-deletion-threshold-exceeded"), "{out}");
    assert_eq!(
        std::fs::read_to_string(w.path().join("dir.jsonl"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    w.expect(&["approve", "dir"], 0);
    w.expect(&["run-profile", "dir", "export", "--no-progress"], 0);
    assert_eq!(
        std::fs::read_to_string(w.path().join("dir.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    // The approval was used up.
    let history: serde_json::Value =
        serde_json::from_str(&w.expect(&["history", "--ma", "dir", "--limit", "1", "--json"], 0))
            .unwrap();
    assert_eq!(history[0]["steps"][0]["counters"]["deletes"], 3);
}

/// `autosync` with no `-c`, run in `cwd` with `env`.
fn bare(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("AUTOSYNC_CONFIG")
        .env_remove("AUTOSYNC_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The configuration comes from `-c`, else `$AUTOSYNC_CONFIG`, else
/// `./autosync.toml`; a missing one is exit 2 naming the path.
#[test]
fn the_configuration_should_come_from_the_flag_then_the_environment_then_the_current_folder() {
    let w = small();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = w.config();
    let config = config.to_str().unwrap();
    // ./autosync.toml
    let out = bare(w.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Nothing in the current folder.
    let out = bare(elsewhere.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("autosync.toml") && err.contains("--config"),
        "{err}"
    );
    // $AUTOSYNC_CONFIG
    let out = bare(elsewhere.path(), &["check"], &[("AUTOSYNC_CONFIG", config)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // -c wins over the environment.
    let missing = elsewhere.path().join("missing.toml");
    let out = bare(
        elsewhere.path(),
        &["-c", missing.to_str().unwrap(), "check"],
        &[("AUTOSYNC_CONFIG", config)],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

/// A configuration error stops `run-profile` before anything runs: exit 2,
/// and no store is created.
#[test]
fn run_profile_with_a_configuration_error_should_exit_2_and_run_nothing() {
    let w = Workdir::with_config(&SMALL.replace(
        "{ mv = \"status\", from = \"status\" }",
        "{ mv = \"state\", from = \"status\" }",
    ));
    let out = w.run(&["run-profile", "hr", "full-import", "--no-progress"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("autosync.toml:"));
    assert!(!w.path().join("state").exists(), "a store was created");
}

/// A store that cannot be opened (here a file that is not a database) is
/// exit 4, with the store's path in the message.
#[test]
fn a_store_that_cannot_be_opened_should_exit_4_naming_it() {
    let w = small();
    std::fs::create_dir_all(w.path().join("state")).unwrap();
    std::fs::write(
        w.path().join("state/autosync.db"),
        "not a database, not at all",
    )
    .unwrap();
    let out = w.run(&["run-profile", "hr", "full-import", "--no-progress"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state/autosync.db") && err.contains("not a database"),
        "{err}"
    );
}

#[test]
fn cs_delete_should_delete_the_connector_space_of_a_retired_ma_once_confirmed() {
    let w = Workdir::quickstart();
    w.cycle();
    let users = app_users(w.path());
    let accounts = std::fs::read_to_string(w.path().join("data/directory.jsonl")).unwrap();
    // The directory is retired: its MA leaves the configuration.
    w.edit("autosync.toml", |t| {
        let start = t.find("# --- Target: the directory").unwrap();
        let end = t.find("# --- Automation").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    });
    let out = w.run(&["cs", "delete", "directory"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--yes"), "{said}");
    assert!(said.contains("no longer in the configuration"), "{said}");
    let text = w.expect(&["cs", "delete", "directory", "--yes", "--no-progress"], 0);
    assert!(text.contains("delete-connector-space"), "{text}");
    let runs: serde_json::Value =
        serde_json::from_str(&w.expect(&["history", "--limit", "1", "--json"], 0)).unwrap();
    assert_eq!(runs[0]["ma"], "directory");
    assert_eq!(runs[0]["profile"], "delete-connector-space");
    assert_eq!(
        runs[0]["steps"][0]["counters"]["disconnections"],
        users.len()
    );
    // Nothing else moved: the people, their app accounts, the file.
    assert_eq!(app_users(w.path()), users);
    assert_eq!(
        std::fs::read_to_string(w.path().join("data/directory.jsonl")).unwrap(),
        accounts
    );
    // A second time there is nothing to delete.
    let out = w.run(&["cs", "delete", "directory", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    // Showing a connector space still needs a configured MA.
    w.expect(&["cs", "hr", "--limit", "1"], 0);
}

/// `cs delete` of a misspelt MA suggests the name, as every other command
/// does (a black-box review); a `--limit` of 0 is refused (it listed
/// nothing, then said there was nothing after the first 0).
#[test]
fn cs_delete_should_suggest_a_name_and_a_zero_limit_should_be_refused() {
    let w = Workdir::quickstart();
    w.cycle();
    let out = w.run(&["cs", "delete", "directroy"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("did you mean `directory`?"), "{said}");
    for args in [
        &["history", "--limit", "0"][..],
        &["cs", "hr", "--limit", "0"][..],
        &["mv", "--limit", "0"][..],
    ] {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("at least 1"), "{args:?}: {said}");
    }
    w.expect(&["history", "--limit", "1"], 0);
}

/// Runs `autosync ARGS` on `w` with a standard output nobody reads: its
/// reader is gone before the command writes.
fn unread(w: &Workdir, args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(BIN)
        .arg("-c")
        .arg(w.config())
        .args(args)
        .env_remove("AUTOSYNC_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// `autosync history --json | head -1`: a reader that goes away ends the
/// command quietly (its own exit code, nothing on stderr), never a panic;
/// a run's exit code survives it.
#[test]
fn a_closed_output_pipe_should_end_the_command_quietly() {
    let w = small();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 1);
    for args in [
        &["history", "--json"][..],
        &["history"][..],
        &["cs", "hr", "--json"][..],
    ] {
        let out = unread(&w, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    // A run whose output nobody reads still exits with its run's code (1:
    // the small HR file has a record in error).
    let out = unread(&w, &["run-profile", "hr", "full-import", "--no-progress"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
}

/// A store file that exists but is empty (0 bytes: truncated, or a copy
/// that failed) is not started anew (everything would be imported and
/// provisioned again as new): refused, exit 4, naming it, left as it is.
#[test]
fn an_empty_store_file_should_be_refused_not_started_anew() {
    let w = small();
    let store = w.path().join("state/autosync.db");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    std::fs::write(&store, b"").unwrap();
    for args in [
        &["run-profile", "hr", "full-import", "--no-progress"][..],
        &["status"][..],
        &["history"][..],
    ] {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&store.display().to_string())
                && err.contains("the file is empty (0 bytes)")
                && err.contains("restore it from a backup"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::metadata(&store).unwrap().len(), 0, "{args:?}");
    }
}

/// A command that makes a new store says so at WARN, with what to check:
/// a wrong `[store] path` otherwise starts an empty store beside the real
/// one in silence, and the accounts in the targets are joined again
/// rather than provisioned (a black-box review). Once made, it is quiet.
#[test]
fn a_command_that_makes_a_new_store_should_warn_and_name_store_path() {
    let w = Workdir::quickstart();
    let out = w.run(&["run-profile", "hr", "full-import", "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("made a new, empty store") && err.contains("check `[store] path`"),
        "{err}"
    );
    let out = w.run(&["run-profile", "hr", "full-sync", "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("made a new, empty store"), "{err}");
}

/// A person deprovisioned as an explicit disconnector comes back: their
/// provisioning fails, naming `cs release`; released, the account is
/// taken back (no second one).
#[test]
fn cs_release_should_let_a_returning_person_have_their_account_back() {
    let w = Workdir::with_config(&SMALL.replace(
        "deprovisioning = \"delete\"",
        "deprovisioning = \"explicit-disconnector\"",
    ));
    std::fs::write(w.path().join("hr.csv"), PEOPLE).unwrap();
    let go = |w: &Workdir, ma: &str, profile: &str| {
        w.run(&["run-profile", ma, profile, "--no-progress"])
    };
    for (ma, p) in [
        ("hr", "full-import"),
        ("hr", "full-sync"),
        ("dir", "export"),
    ] {
        go(&w, ma, p);
    }
    w.edit("hr.csv", |t| {
        t.replace("alan@example.com,active", "alan@example.com,terminated")
    });
    go(&w, "hr", "full-import");
    go(&w, "hr", "delta-sync");
    let out = w.expect(&["cs", "dir", "--anchor", "2"], 0);
    assert!(out.contains("explicit"), "{out}");
    w.edit("hr.csv", |t| {
        t.replace("alan@example.com,terminated", "alan@example.com,active")
    });
    go(&w, "hr", "full-import");
    let out = go(&w, "hr", "delta-sync");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("object-already-exists") && text.contains("autosync cs release dir 2"),
        "{text}"
    );
    // Refused: not there, not explicit, unknown MA.
    let err =
        String::from_utf8_lossy(&w.run(&["cs", "release", "dir", "nobody"]).stderr).into_owned();
    assert!(err.contains("no object with anchor `nobody`"), "{err}");
    assert_eq!(w.run(&["cs", "release", "dir", "1"]).status.code(), Some(2));
    assert_eq!(
        w.run(&["cs", "release", "nope", "2"]).status.code(),
        Some(2)
    );
    let text = w.expect(&["cs", "release", "dir", "2"], 0);
    assert!(text.contains("normal disconnector"), "{text}");
    // The target synchronised first (its join rules match): the person's
    // metaverse object is still what the failed provisioning left, and the
    // account must not be joined and deprovisioned again (a second review).
    go(&w, "dir", "delta-sync");
    let out = w.expect(&["cs", "dir", "--anchor", "2", "--json"], 0);
    assert!(!out.contains("explicit"), "{out}");
    let out = go(&w, "hr", "delta-sync");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = w.expect(&["cs", "dir", "--anchor", "2", "--json"], 0);
    assert!(out.contains("\"connector\""), "{out}");
    let lines = std::fs::read_to_string(w.path().join("dir.jsonl")).unwrap();
    assert_eq!(
        lines.lines().filter(|l| l.contains("\"2\"")).count(),
        1,
        "{lines}"
    );
}
