//! Wrong HR files, tried as a new user would on the quickstart: a truncated
//! export, a renamed column, a mass termination. Nobody is deleted by
//! mistake: the import or the export stops and asks for `approve` or
//! `reject` (which work without a running service), and a reverted
//! termination cancels the pending deletes.

use super::support::*;

/// Rewrite the quickstart's HR file row by row (`f` gets the fields of
/// each data row).
fn edit_rows(w: &Workdir, mut f: impl FnMut(&mut Vec<String>)) {
    w.edit("data/hr.csv", |text| {
        let mut lines = text.lines();
        let mut out = vec![lines.next().unwrap().to_owned()];
        for l in lines {
            let mut fields: Vec<String> = l.split(',').map(str::to_owned).collect();
            f(&mut fields);
            out.push(fields.join(","));
        }
        out.join("\n") + "\n"
    });
}

fn run_profile(w: &Workdir, ma: &str, profile: &str, code: i32) -> String {
    w.expect(&["run-profile", ma, profile, "--no-progress"], code)
}

/// The stderr of a run that must exit `code`.
fn run_profile_err(w: &Workdir, ma: &str, profile: &str, code: i32) -> String {
    let out = w.run(&["run-profile", ma, profile, "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
    stdout + stderr.as_str()
}

/// A terminated person's status in `count` active rows.
fn terminate(w: &Workdir, count: usize) -> Vec<String> {
    let mut done = Vec::new();
    edit_rows(w, |f| {
        if done.len() < count && f[7] == "active" {
            f[7] = "terminated".into();
            done.push(f[0].clone());
        }
    });
    done
}

#[test]
fn a_header_only_hr_file_should_stop_before_the_sync_and_a_rejection_should_recover() {
    let w = Workdir::quickstart();
    w.cycle();
    let users = app_users(w.path());
    let original = std::fs::read_to_string(w.path().join("data/hr.csv")).unwrap();
    let header = original.lines().next().unwrap().to_owned();
    std::fs::write(w.path().join("data/hr.csv"), header + "\n").unwrap();
    let out = run_profile_err(&w, "hr", "full-import", 3);
    assert!(out.contains("stopped-staging-threshold-exceeded"), "{out}");
    assert!(out.contains("autosync approve hr"), "{out}");
    // A sync is refused, whoever asks.
    let out = run_profile_err(&w, "hr", "delta-sync", 3);
    assert!(out.contains("staging threshold"), "{out}");
    run_profile_err(&w, "hr", "full-sync", 3);
    assert_eq!(app_users(w.path()), users);
    // Rejected without a service: the staged deletes are gone, and the
    // fixed file flows as if nothing happened.
    let said = w.expect(&["reject", "hr"], 0);
    assert!(said.contains("discarded"), "{said}");
    std::fs::write(w.path().join("data/hr.csv"), original).unwrap();
    w.cycle();
    assert_eq!(app_users(w.path()), users);
    assert_eq!(directory(w.path()).len(), users.len());
}

#[test]
fn a_renamed_status_column_should_delete_nobody() {
    let w = Workdir::quickstart();
    w.cycle();
    let users = app_users(w.path());
    let accounts = directory(w.path()).len();
    w.edit("data/hr.csv", |t| {
        t.replacen(",manager_id,status\n", ",manager_id,state\n", 1)
    });
    // The import that finds the header changed stops before it stages
    // anything (reading on would blank `status` on every person).
    let out = w.run(&["run-profile", "hr", "full-import", "--no-progress"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("stopped-configuration") && text.contains("which data/hr.csv does not have"),
        "{text}"
    );
    w.run(&["run", "--once"]);
    assert_eq!(app_users(w.path()), users);
    assert_eq!(directory(w.path()).len(), accounts);
}

#[test]
fn an_empty_status_cell_should_keep_the_account() {
    let w = Workdir::quickstart();
    w.cycle();
    let users = app_users(w.path());
    let mut emptied = None;
    edit_rows(&w, |f| {
        if emptied.is_none() && f[7] == "active" {
            f[7] = String::new();
            emptied = Some(f[0].clone());
        }
    });
    w.cycle();
    assert_eq!(app_users(w.path()), users);
}

#[test]
fn a_mass_termination_should_stop_at_the_export_until_rejected_or_approved() {
    let w = Workdir::quickstart();
    w.cycle();
    let users = app_users(w.path());
    let gone = terminate(&w, 50);
    run_profile(&w, "hr", "full-import", 0);
    run_profile(&w, "hr", "delta-sync", 0);
    let out = run_profile_err(&w, "app", "export", 3);
    assert!(out.contains("stopped-deletion-threshold-exceeded"), "{out}");
    assert_eq!(app_users(w.path()), users, "nothing was sent");
    // The app's deletes are rejected: every account stays.
    let said = w.expect(&["reject", "app"], 0);
    assert!(said.contains("dropped 50 pending export delete"), "{said}");
    run_profile(&w, "app", "export", 0);
    assert_eq!(app_users(w.path()), users);
    // The directory's are approved: its next export deletes them, once.
    run_profile_err(&w, "directory", "export", 3);
    let state = |w: &Workdir| -> String {
        let status: serde_json::Value =
            serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
        status["mas"]["directory"]["state"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        state(&w),
        "threshold-exceeded",
        "the stop waits for an operator"
    );
    let said = w.expect(&["approve", "directory"], 0);
    assert!(said.contains("may delete 50 objects"), "{said}");
    assert_eq!(state(&w), "idle", "approved: nothing waits for an operator");
    run_profile(&w, "directory", "export", 0);
    let left: Vec<String> = directory(w.path())
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left.len(), users.len() - 50);
    assert!(gone.iter().all(|id| !left.contains(id)));
}

#[test]
fn a_mass_termination_reverted_before_the_export_should_delete_nobody() {
    let w = Workdir::quickstart();
    w.cycle();
    let users = app_users(w.path());
    let original = std::fs::read_to_string(w.path().join("data/hr.csv")).unwrap();
    terminate(&w, 50);
    run_profile(&w, "hr", "full-import", 0);
    run_profile(&w, "hr", "delta-sync", 0);
    std::fs::write(w.path().join("data/hr.csv"), original).unwrap();
    run_profile(&w, "hr", "full-import", 0);
    run_profile(&w, "hr", "delta-sync", 0);
    let cs: serde_json::Value =
        serde_json::from_str(&w.expect(&["cs", "app", "--pending-export", "--json"], 0)).unwrap();
    assert_eq!(cs.as_array().unwrap().len(), 0, "{cs}");
    run_profile(&w, "app", "export", 0);
    run_profile(&w, "directory", "export", 0);
    assert_eq!(app_users(w.path()), users);
    assert_eq!(directory(w.path()).len(), users.len());
}

#[test]
fn an_approval_with_nothing_waiting_should_be_refused_and_arm_nothing() {
    let w = Workdir::quickstart();
    w.cycle();
    let out = w.run(&["approve", "app"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("management agent `app` waits for no approval or rejection"),
        "{stderr}"
    );
    // No approval was recorded: a mass delete still stops at the threshold.
    terminate(&w, 50);
    run_profile(&w, "hr", "full-import", 0);
    run_profile(&w, "hr", "delta-sync", 0);
    let out = run_profile_err(&w, "app", "export", 3);
    assert!(out.contains("stopped-deletion-threshold-exceeded"), "{out}");
}

#[test]
fn a_rejection_with_nothing_waiting_should_be_refused() {
    let w = Workdir::quickstart();
    w.cycle();
    let out = w.run(&["reject", "app"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waits for no approval"), "{stderr}");
}

#[test]
fn a_staging_stop_from_a_shell_should_show_in_the_status_read_from_the_store() {
    let w = Workdir::quickstart();
    w.cycle();
    let header = std::fs::read_to_string(w.path().join("data/hr.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(w.path().join("data/hr.csv"), format!("{header}\n")).unwrap();
    run_profile_err(&w, "hr", "full-import", 3);
    let state = |w: &Workdir| -> serde_json::Value {
        let status: serde_json::Value =
            serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
        assert_eq!(status["service"], false);
        status["mas"]["hr"].clone()
    };
    let held = state(&w);
    assert_eq!(held["state"], "threshold-exceeded", "{held}");
    assert!(
        held["exceeded"][0]
            .as_str()
            .unwrap()
            .contains("staging threshold"),
        "{held}"
    );
    w.expect(&["reject", "hr"], 0);
    assert_eq!(state(&w)["state"], "idle");
}

/// The controller's way (`run --once`, no service between runs): an
/// import over the staging threshold stops; `approve` (or `reject`) acts
/// on the store; the next `run --once` runs the held syncs (found by a
/// black-box review: the controller's saved state still held the MA, for
/// good, and `run --once` ran nothing and exited 0).
#[test]
fn run_once_after_an_offline_approval_or_rejection_should_run_the_held_syncs() {
    for approve in [true, false] {
        let w = Workdir::quickstart();
        w.expect(&["run", "--once"], 0);
        let users = app_users(w.path());
        let original = std::fs::read_to_string(w.path().join("data/hr.csv")).unwrap();
        // A third of the people gone: over the 10 % of deletes.
        let kept: Vec<&str> = original
            .lines()
            .enumerate()
            .filter(|(i, _)| *i == 0 || i % 3 != 0)
            .map(|(_, l)| l)
            .collect();
        std::fs::write(w.path().join("data/hr.csv"), kept.join("\n") + "\n").unwrap();
        let out = w.run(&["run", "--once"]);
        assert_eq!(out.status.code(), Some(3), "{approve}");
        assert_eq!(app_users(w.path()), users, "{approve}: held");
        if approve {
            w.expect(&["approve", "hr"], 0);
        } else {
            std::fs::write(w.path().join("data/hr.csv"), &original).unwrap();
            w.expect(&["reject", "hr"], 0);
        }
        if approve {
            // The deletes now stop at the targets' export deletion
            // threshold, the second safety net: approved there too.
            let out = w.run(&["run", "--once"]);
            assert_eq!(out.status.code(), Some(3));
            let text = String::from_utf8_lossy(&out.stderr);
            assert!(text.contains("deletion"), "{text}");
            w.expect(&["approve", "app"], 0);
            w.expect(&["approve", "directory"], 0);
        }
        w.expect(&["run", "--once"], 0);
        let status: serde_json::Value =
            serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
        assert_ne!(
            status["mas"]["hr"]["state"], "threshold-exceeded",
            "{approve}: {status}"
        );
        if approve {
            assert!(
                app_users(w.path()).len() < users.len(),
                "the approved deletes flowed"
            );
        } else {
            assert_eq!(app_users(w.path()), users);
        }
        // The MA is not held: a title change flows with the next run.
        w.edit("data/hr.csv", |t| {
            t.replacen(",Facilities Coordinator,", ",Facilities Lead,", 1)
        });
        w.expect(&["run", "--once"], 0);
        assert!(
            app_users(w.path())
                .iter()
                .any(|(id, _, title)| id == "E10001" && title == "Facilities Lead"),
            "{approve}: the change after the decision flowed"
        );
    }
}

/// The quickstart's groups file emptied (its header left): the import
/// stops before the sync, and no group leaves either target (found by a
/// black-box review: with a share, 7 deletes were under the share's
/// floor of 10, and every group went).
#[test]
fn an_emptied_groups_file_should_stop_before_the_sync() {
    let w = Workdir::quickstart_with_groups();
    w.expect(&["run", "--once"], 0);
    let count = |w: &Workdir| -> i64 {
        let db = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
        db.query_row("SELECT count(*) FROM groups", [], |r| r.get(0))
            .unwrap()
    };
    let before = count(&w);
    assert!(before >= 7, "{before}");
    w.edit("data/groups.csv", |t| {
        t.lines().next().unwrap().to_owned() + "\n"
    });
    let out = w.run(&["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(count(&w), before);
}

/// A header-only HR file stops the import; the file is fixed, with a
/// title change, and imported while the hold waits; the rejection
/// discards all that was staged, the title change with it: the next
/// `run --once` reads the source again, and the title change flows
/// (found by a black-box review: it was lost until the file changed).
#[test]
fn a_rejection_should_read_the_source_again_so_nothing_fixed_meanwhile_is_lost() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    let original = std::fs::read_to_string(w.path().join("data/hr.csv")).unwrap();
    let header = original.lines().next().unwrap().to_owned();
    std::fs::write(w.path().join("data/hr.csv"), header + "\n").unwrap();
    assert_eq!(w.run(&["run", "--once"]).status.code(), Some(3));
    let fixed = original.replacen(",Facilities Coordinator,", ",Facilities Lead,", 1);
    // Half the file back, the fix in it: still over the threshold.
    let half: Vec<&str> = fixed.lines().collect();
    let half = half[..half.len() / 2].join("\n") + "\n";
    std::fs::write(w.path().join("data/hr.csv"), half).unwrap();
    // Still held: the import runs, nothing flows, and `run --once` says so
    // (it exited 0 and logged nothing: found by a black-box review).
    let out = w.run(&["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("syncs of `hr` are held") && err.contains("autosync reject hr"),
        "{err}"
    );
    w.expect(&["reject", "hr"], 0);
    std::fs::write(w.path().join("data/hr.csv"), fixed).unwrap();
    // Settled: the status read from the store no longer asks for a
    // decision both commands would refuse.
    let status: serde_json::Value =
        serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
    assert_ne!(
        status["mas"]["hr"]["state"], "threshold-exceeded",
        "{status}"
    );
    w.expect(&["run", "--once"], 0);
    assert!(
        app_users(w.path())
            .iter()
            .any(|(id, _, title)| id == "E10001" && title == "Facilities Lead"),
        "the fix made while the hold waited flowed"
    );
}

/// The source fixed while a staging threshold holds its MA: the next
/// import reads it, nothing over a threshold is staged any more, and the
/// hold goes by itself (it stayed until `approve` or `reject`, and the
/// status, `approve` and the next sync's reason spoke of deletes that no
/// longer existed: found by a black-box review).
#[test]
fn the_source_fixed_while_held_should_lift_the_hold_and_flow() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    let original = std::fs::read_to_string(w.path().join("data/hr.csv")).unwrap();
    let header = original.lines().next().unwrap().to_owned();
    std::fs::write(w.path().join("data/hr.csv"), header + "\n").unwrap();
    assert_eq!(w.run(&["run", "--once"]).status.code(), Some(3));
    let fixed = original.replacen(",Facilities Coordinator,", ",Facilities Lead,", 1);
    std::fs::write(w.path().join("data/hr.csv"), fixed).unwrap();
    let out = w.run(&["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("no longer staged"), "{err}");
    assert!(
        app_users(w.path())
            .iter()
            .any(|(id, _, title)| id == "E10001" && title == "Facilities Lead"),
        "the fix flowed"
    );
    let status: serde_json::Value =
        serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
    assert_ne!(
        status["mas"]["hr"]["state"], "threshold-exceeded",
        "{status}"
    );
}

/// Some of the people the stopped export would have deleted come back in
/// scope before the operator approves: `approve` says how many deletes
/// wait now, and how many when it stopped (found by a black-box review:
/// it quoted the stop's 40 when 35 were pending).
#[test]
fn approve_should_count_the_deletes_pending_now() {
    let w = Workdir::quickstart();
    w.cycle();
    let gone = terminate(&w, 50);
    run_profile(&w, "hr", "full-import", 0);
    run_profile(&w, "hr", "delta-sync", 0);
    run_profile_err(&w, "app", "export", 3);
    let back: Vec<String> = gone.iter().take(5).cloned().collect();
    edit_rows(&w, |f| {
        if back.contains(&f[0]) {
            f[7] = "active".into();
        }
    });
    run_profile(&w, "hr", "full-import", 0);
    run_profile(&w, "hr", "delta-sync", 0);
    let said = w.expect(&["approve", "app"], 0);
    assert!(
        said.contains("may delete 45 objects") && said.contains("50 when it stopped"),
        "{said}"
    );
}

/// Four people, and `app` provisioned for the active ones, its deletion
/// threshold one object.
const ONE_DELETE: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "name", "status"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "name", from = "name" },
  { mv = "status", from = "status" },
]
staging_thresholds = { deletes = "off" }

[[ma]]
name = "app"
connector = { type = "csv", path = "app.csv" }
object_types = [{ name = "user", anchor = "uid" }]
join = [{ on = [{ cs = "employee", mv = "employeeId" }] }]
deprovisioning = "delete"
export_deletion_threshold = 1
export_flows = [
  { cs = "name", from = "name" },
  { cs = "employee", from = "employeeId" },
]
provisioning = [{ condition = "status == 'active'", anchor = '"u" + employeeId' }]
"#;

/// A stop whose deletes a sync cancelled (the people back in scope) waits
/// for nobody: the status shows no threshold, `approve` and `reject` are
/// refused, and a later mass delete stops at the threshold (found by a
/// black-box review: the status still asked for a decision, `approve`
/// recorded one for "0 objects", and the next export deleted 3).
#[test]
fn a_stop_whose_deletes_a_sync_cancelled_should_not_be_approved() {
    let w = Workdir::with_config(ONE_DELETE);
    let hr = |out: &[usize]| {
        let mut text = String::from("id,name,status\n");
        for i in 1..=4 {
            let status = if out.contains(&i) {
                "terminated"
            } else {
                "active"
            };
            text.push_str(&format!("E{i},P{i},{status}\n"));
        }
        std::fs::write(w.path().join("hr.csv"), text).unwrap();
    };
    let state = || -> serde_json::Value {
        let status: serde_json::Value =
            serde_json::from_str(&w.expect(&["status", "--json"], 0)).unwrap();
        status["mas"]["app"]["state"].clone()
    };
    let users = || std::fs::read_to_string(w.path().join("app.csv")).unwrap();
    hr(&[]);
    std::fs::write(w.path().join("app.csv"), "uid,name,employee\n").unwrap();
    w.expect(&["run", "--once"], 0);
    assert_eq!(users().lines().count(), 5, "{}", users());
    hr(&[2, 3]);
    assert_eq!(w.run(&["run", "--once"]).status.code(), Some(3));
    assert_eq!(state(), "threshold-exceeded");
    hr(&[]);
    // The cycle's export stops again (the deletes still pending at its
    // start), then its sync cancels them: nothing waits, and the exit
    // says so (0, not 3).
    let out = w.run(&["run", "--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cs: serde_json::Value =
        serde_json::from_str(&w.expect(&["cs", "app", "--pending-export", "--json"], 0)).unwrap();
    assert_eq!(cs.as_array().unwrap().len(), 0, "{cs}");
    assert_eq!(state(), "idle");
    for command in ["approve", "reject"] {
        let out = w.run(&[command, "app"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("waits for no approval"), "{stderr}");
    }
    // A later mass delete stops at the threshold: nothing was approved.
    let before = users();
    hr(&[2, 3, 4]);
    let out = w.run(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stopped-deletion-threshold-exceeded"),
        "{stderr}"
    );
    assert_eq!(users(), before);
    assert_eq!(state(), "threshold-exceeded");
}
