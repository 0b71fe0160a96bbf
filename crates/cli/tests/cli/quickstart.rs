//! The quickstart works end to end, from a copy of its folder anywhere.

use super::support::*;

#[test]
fn quickstart_cycle_should_give_every_active_person_an_account_in_both_targets() {
    let w = Workdir::quickstart();
    w.cycle();
    let active = hr_with_status(w.path(), "active");
    let users: Vec<String> = app_users(w.path()).into_iter().map(|u| u.0).collect();
    assert_eq!(users, active);
    let mut ids: Vec<String> = directory(w.path())
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, active);
    // Values flow through the expressions: e-mail trimmed and lower-cased.
    for o in directory(w.path()) {
        let mail = o["mail"].as_str().unwrap();
        assert_eq!(mail, mail.trim().to_lowercase());
    }
}

#[test]
fn quickstart_second_cycle_should_change_nothing_when_the_source_did_not_change() {
    let w = Workdir::quickstart();
    w.cycle();
    let before = (app_users(w.path()), directory(w.path()));
    w.cycle();
    assert_eq!((app_users(w.path()), directory(w.path())), before);
    let history: serde_json::Value =
        serde_json::from_str(&w.expect(&["history", "--limit", "8", "--json"], 0)).unwrap();
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 8);
    let mut checked = std::collections::BTreeSet::new();
    for run in runs {
        let status = run["status"].as_str().unwrap();
        assert!(
            status == "completed-no-objects" || status == "success",
            "second cycle run {} {} ended {status}",
            run["ma"],
            run["profile"]
        );
        for step in run["steps"].as_array().unwrap() {
            let c = &step["counters"];
            for key in [
                "stage-add",
                "stage-update",
                "stage-delete",
                "adds",
                "updates",
                "deletes",
                "projections",
            ] {
                if let Some(n) = c.get(key) {
                    assert_eq!(n.as_u64(), Some(0), "{key} in {run}");
                    checked.insert(key);
                }
            }
        }
    }
    // Every counter was found somewhere (a renamed key would skip its check).
    assert_eq!(checked.len(), 7, "counters checked: {checked:?}");
}

#[test]
fn quickstart_should_update_and_deprovision_after_hr_changes() {
    let w = Workdir::quickstart();
    w.cycle();
    let active = hr_with_status(w.path(), "active");
    let (changed, terminated) = (active[0].clone(), active[1].clone());
    w.edit("data/hr.csv", |text| {
        text.lines()
            .map(|l| {
                let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
                if f[0] == changed {
                    f[5] = "Chief Synchronisation Officer".into();
                }
                if f[0] == terminated {
                    f[7] = "terminated".into();
                }
                f.join(",")
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    w.cycle();
    let users = app_users(w.path());
    assert!(
        users.iter().all(|u| u.0 != terminated),
        "terminated person still in app"
    );
    let row = users.iter().find(|u| u.0 == changed).unwrap();
    assert_eq!(row.2, "Chief Synchronisation Officer");
    assert!(
        directory(w.path())
            .iter()
            .all(|o| o["id"] != terminated.as_str())
    );
    assert_eq!(users.len(), active.len() - 1);
}

#[test]
fn quickstart_folder_should_work_when_copied_elsewhere_and_run_from_another_directory() {
    let w = Workdir::quickstart();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .current_dir(elsewhere.path())
        .args([
            "-c",
            w.config().to_str().unwrap(),
            "run-profile",
            "hr",
            "full-import",
            "--no-progress",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w.path().join("state/autosync.db").exists());
    assert!(!elsewhere.path().join("state").exists());
}

/// Runs the copied folder's `demo.sh` (the README's first command) with
/// this build's binary, from another directory.
fn demo(w: &Workdir) -> String {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(w.path().join("demo.sh"))
        .current_dir(elsewhere.path())
        .env("AUTOSYNC", BIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "demo.sh failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The README's first command works on a copy of the folder: every active
/// person gets an account in both targets, the output shows the runs and
/// the history, and a second run changes nothing.
#[test]
fn the_quickstart_demo_script_should_run_end_to_end_and_change_nothing_the_second_time() {
    let w = Workdir::quickstart();
    let first = demo(&w);
    for shown in [
        "$ autosync run-profile hr full-import",
        "$ autosync run-profile app export",
        "$ autosync history",
        "accounts)",
    ] {
        assert!(first.contains(shown), "{shown:?} not shown:\n{first}");
    }
    let active = hr_with_status(w.path(), "active");
    let users: Vec<String> = app_users(w.path()).into_iter().map(|u| u.0).collect();
    assert_eq!(users, active);
    assert_eq!(directory(w.path()).len(), active.len());
    let before = (app_users(w.path()), directory(w.path()));
    let second = demo(&w);
    for quiet in [
        // A full import reads the file again, and stages nothing.
        "hr / full-import: success",
        "app / export: completed-no-objects",
        "directory / export: completed-no-objects",
    ] {
        assert!(second.contains(quiet), "{quiet:?} not shown:\n{second}");
    }
    for change in ["stage-add", "stage-update", "stage-delete"] {
        assert!(!second.contains(change), "{change:?} shown:\n{second}");
    }
    assert_eq!((app_users(w.path()), directory(w.path())), before);
}

/// The application's usernames by employee id.
fn usernames(w: &Workdir) -> std::collections::BTreeMap<String, String> {
    app_users(w.path())
        .into_iter()
        .map(|(id, username, _)| (id, username))
        .collect()
}

#[test]
fn quickstart_should_give_people_with_the_same_name_distinct_usernames_and_keep_them() {
    let w = Workdir::quickstart();
    let namesakes = "E99001,Zed,Quux,Zed.Quux@example.com,Sales,Rep,,active\n\
                     E99002,Zoe,Quux,Zoe.Quux@example.com,Sales,Rep,,active\n";
    w.edit("data/hr.csv", |text| text + namesakes);
    w.cycle();
    let names = usernames(&w);
    assert_eq!(names["E99001"], "zquux");
    assert_eq!(names["E99002"], "zquux2");
    // Nobody in the whole file shares a username (the file has namesakes
    // of its own: several people are `a` + the same last name).
    let mut all: Vec<&String> = names.values().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), names.len(), "usernames repeat");
    // A second cycle renames nobody.
    w.cycle();
    assert_eq!(usernames(&w), names);
    // Zed leaves and a third namesake arrives: Zoe keeps `zquux2`, the new
    // person gets the name that became free.
    w.edit("data/hr.csv", |text| {
        text.replace(
            "E99001,Zed,Quux,Zed.Quux@example.com,Sales,Rep,,active\n",
            "",
        ) + "E99003,Zack,Quux,Zack.Quux@example.com,Sales,Rep,,active\n"
    });
    w.cycle();
    let after = usernames(&w);
    assert!(!after.contains_key("E99001"));
    assert_eq!(after["E99002"], "zquux2");
    assert_eq!(after["E99003"], "zquux");
}
