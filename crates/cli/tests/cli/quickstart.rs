//! The quickstart works end to end, from a copy of its folder anywhere.

use super::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Every file of a folder, by path relative to it, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_owned();
                files.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// Runs the repository's `demo.sh` (the README's first command) with this
/// build's binary, from another directory, with `args` (`[--fresh] DIR`).
fn demo(args: &[&Path]) -> String {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(quickstart_dir().join("demo.sh"))
        .args(args)
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

/// The runs of `ma`/`profile` in the working copy's history after run
/// `after`: their steps' counters, added up.
fn counters_since(w: &Path, ma: &str, profile: &str, after: i64) -> BTreeMap<String, u64> {
    let out = std::process::Command::new(BIN)
        .arg("-c")
        .arg(w.join("autosync.toml"))
        .args(["history", "--ma", ma, "--limit", "100", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut sum = BTreeMap::new();
    for run in runs.as_array().unwrap() {
        if run["profile"] != profile || run["id"].as_i64().unwrap() <= after {
            continue;
        }
        for step in run["steps"].as_array().unwrap() {
            for (k, v) in step["counters"].as_object().unwrap() {
                if let Some(n) = v.as_u64() {
                    *sum.entry(k.clone()).or_default() += n;
                }
            }
        }
    }
    sum
}

/// The id of the latest run in the working copy's history.
fn last_run_id(w: &Path) -> i64 {
    let out = std::process::Command::new(BIN)
        .arg("-c")
        .arg(w.join("autosync.toml"))
        .args(["history", "--limit", "1", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    runs[0]["id"].as_i64().unwrap()
}

/// The counters of the latest run of `ma`/`profile` in the working copy's
/// history (its one step).
fn last_counters(w: &Path, ma: &str, profile: &str) -> serde_json::Value {
    let out = std::process::Command::new(BIN)
        .arg("-c")
        .arg(w.join("autosync.toml"))
        .args(["history", "--ma", ma, "--limit", "20", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["profile"] == profile)
        .unwrap_or_else(|| panic!("no {ma} {profile} run in {runs}"));
    run["steps"][0]["counters"].clone()
}

/// The README's first command: `demo.sh DIR` makes a working copy of the
/// example in DIR and runs it there, leaving the example folder byte for
/// byte as it was; a second run reuses the working copy (an edit of its HR
/// file stays, and only the difference flows); `--fresh` starts again from
/// the example.
#[test]
fn the_quickstart_demo_script_should_work_on_a_reused_copy_and_never_write_in_the_example() {
    let example = snapshot(&quickstart_dir());
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("work");
    let first = demo(&[&w]);
    for shown in [
        "made a working copy of the example in",
        "$ autosync run --once",
        "$ autosync history",
        "accounts, 7 groups)",
        "working copy:",
    ] {
        assert!(first.contains(shown), "{shown:?} not shown:\n{first}");
    }
    assert!(
        first.contains(w.to_str().unwrap()),
        "path not shown:\n{first}"
    );
    assert!(w.join("data/app.db").is_file() && w.join("data/directory.jsonl").is_file());
    let active = hr_with_status(&w, "active");
    let users: Vec<String> = app_users(&w).into_iter().map(|u| u.0).collect();
    assert_eq!(users, active);
    assert_eq!(directory(&w).len(), active.len());
    assert_eq!(
        snapshot(&quickstart_dir()),
        example,
        "demo.sh wrote in examples/"
    );

    // Every group reached both targets, with its members.
    let groups: Vec<serde_json::Value> = directory_groups(&w);
    assert_eq!(groups.len(), 7);
    assert!(
        groups
            .iter()
            .all(|g| g["member"].as_array().is_some_and(|m| !m.is_empty()))
    );

    // An edit of the working copy: one title changed, one person leaves
    // (one who manages nobody: then only their group changes besides).
    let text = std::fs::read_to_string(w.join("data/hr.csv")).unwrap();
    let managers: Vec<&str> = text.lines().filter_map(|l| l.split(',').nth(6)).collect();
    let changed = active[0].clone();
    let leaver = active[1..]
        .iter()
        .find(|a| !managers.contains(&a.as_str()))
        .unwrap()
        .clone();
    let hr = w.join("data/hr.csv");
    let text = std::fs::read_to_string(&hr).unwrap();
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
            if f[0] == changed {
                f[5] = "Chief Synchronisation Officer".into();
            }
            if f[0] == leaver {
                f[7] = "terminated".into();
            }
            f.join(",")
        })
        .collect();
    std::fs::write(&hr, edited.join("\n") + "\n").unwrap();
    let before = last_run_id(&w);
    let second = demo(&[&w]);
    assert!(second.contains("reusing the working copy in"), "{second}");
    // Only the difference flowed: two people staged as updated, one
    // account updated and one deleted in each target, and the leaver's
    // group updated (one member less, once the account's delete went out).
    let staged = last_counters(&w, "hr", "delta-import");
    assert_eq!(staged["stage-update"], 2, "{staged}");
    assert_eq!(
        staged.get("stage-add").map_or(0, |n| n.as_u64().unwrap()),
        0
    );
    for (target, updates) in [("app", 1), ("directory", 2)] {
        let exported = counters_since(&w, target, "export", before);
        assert_eq!(
            exported.get("updates"),
            Some(&updates),
            "{target}: {exported:?}"
        );
        assert_eq!(exported.get("deletes"), Some(&1), "{target}: {exported:?}");
        assert_eq!(exported.get("adds").copied().unwrap_or(0), 0);
    }
    let groups = counters_since(&w, "app-groups", "export", before);
    assert_eq!(groups.get("updates"), Some(&1), "{groups:?}");
    let users = app_users(&w);
    assert_eq!(users.len(), active.len() - 1);
    assert!(users.iter().all(|u| u.0 != leaver));
    assert!(
        users
            .iter()
            .any(|u| u.0 == changed && u.2 == "Chief Synchronisation Officer")
    );
    assert_eq!(
        snapshot(&quickstart_dir()),
        example,
        "demo.sh wrote in examples/"
    );

    // --fresh: the example again, every active person back.
    let third = demo(&[Path::new("--fresh"), &w]);
    assert!(
        third.contains("made a working copy of the example in"),
        "{third}"
    );
    assert_eq!(
        std::fs::read(&hr).unwrap(),
        example[Path::new("data/hr.csv")]
    );
    let users: Vec<String> = app_users(&w).into_iter().map(|u| u.0).collect();
    assert_eq!(users, active);
    assert_eq!(
        snapshot(&quickstart_dir()),
        example,
        "demo.sh wrote in examples/"
    );

    // A DIR inside the example folder is refused before anything is made.
    let inside = quickstart_dir().join("work/copy");
    let out = std::process::Command::new("bash")
        .arg(quickstart_dir().join("demo.sh"))
        .arg(&inside)
        .env("AUTOSYNC", BIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("inside the example folder"), "{stderr}");
    assert!(!quickstart_dir().join("work").exists());
    assert_eq!(
        snapshot(&quickstart_dir()),
        example,
        "demo.sh wrote in examples/"
    );
}

/// A file's identity and last write: inode and modification time.
fn stamp(path: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.modified().unwrap())
}

/// Exports with nothing to send leave the targets as they are: after a
/// second cycle on an unchanged HR file, the directory file and the
/// application database have the inode and modification time they had (a
/// watcher on them sees no change that did not happen).
#[test]
fn a_second_quickstart_cycle_should_leave_the_target_files_untouched() {
    let w = Workdir::quickstart();
    w.cycle();
    let files = [
        w.path().join("data/directory.jsonl"),
        w.path().join("data/app.db"),
    ];
    // An hour back, so that any write shows whatever the clock's grain.
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for f in &files {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    let before: Vec<_> = files.iter().map(|f| stamp(f)).collect();
    let bytes: Vec<_> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    w.cycle();
    let after: Vec<_> = files.iter().map(|f| stamp(f)).collect();
    assert_eq!(after, before, "{files:?}");
    let now: Vec<_> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(now, bytes);
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

/// `autosync mv` shows a reference as the object it names, the one
/// `mv --id` shows.
#[test]
fn mv_should_show_a_manager_as_the_person_it_names() {
    let w = Workdir::quickstart();
    w.cycle();
    let text = w.expect(&["mv", "--filter", "employeeId=E10012"], 0);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("manager = "))
        .unwrap_or_else(|| panic!("no manager in:\n{text}"));
    let id = line
        .split("person #")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("not a person: {line}"));
    let manager = w.expect(&["mv", "--id", id], 0);
    assert!(manager.contains("employeeId = E10001"), "{manager}");
    // `--filter manager=ID` lists the people that reference names (E10001's
    // reports, E10012 among them), in each spelling `mv` shows.
    let hr = std::fs::read_to_string(w.path().join("data/hr.csv")).unwrap();
    let reports = hr.lines().filter(|l| l.contains(",E10001,")).count();
    assert!(reports > 1, "{hr}");
    for filter in [format!("manager={id}"), format!("manager=person #{id}")] {
        let json: serde_json::Value = serde_json::from_str(
            &w.expect(&["mv", "--filter", &filter, "--limit", "1000", "--json"], 0),
        )
        .unwrap();
        let got = json.as_array().map_or(0, Vec::len);
        assert_eq!(got, reports, "{filter}: {json}");
        assert!(json.to_string().contains("E10012"), "{filter}");
    }
    let out = w.run(&["mv", "--filter", "manager=fpetrova"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("holds references"), "{err}");
}

/// The README's manager change and membership change, made by the service
/// as `demo.sh` runs it (`run --once`): `history RUN_ID` of each import
/// and export that carries one shows it as one value.
#[test]
fn the_readme_manager_and_membership_change_should_show_as_one_value_each_in_the_history() {
    let w = Workdir::quickstart_with_groups();
    w.expect(&["run", "--once"], 0);
    let before = last_run_id(w.path());
    // The README's two `sed` commands.
    w.edit("data/hr.csv", |t| {
        t.lines()
            .map(|l| match l.strip_suffix(",E10004,active") {
                Some(head) if l.starts_with("E10005,") => format!("{head},E10001,active"),
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    w.edit("data/groups.csv", |t| {
        t.lines()
            .map(|l| {
                if l.starts_with("G100,") {
                    format!("{l};E10006")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    w.expect(&["run", "--once"], 0);
    // Each run since, with its changes.
    let runs: serde_json::Value =
        serde_json::from_str(&w.expect(&["history", "--limit", "100", "--json"], 0)).unwrap();
    let mut shown = BTreeMap::new();
    for run in runs.as_array().unwrap() {
        let id = run["id"].as_i64().unwrap();
        if id <= before {
            continue;
        }
        let (ma, profile) = (
            run["ma"].as_str().unwrap(),
            run["profile"].as_str().unwrap(),
        );
        let text = w.expect(&["history", &id.to_string(), "--changes"], 0);
        let lines: Vec<String> = text
            .split("  changes:\n")
            .nth(1)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        if !lines.is_empty() {
            assert!(
                shown.insert(format!("{ma} {profile}"), lines).is_none(),
                "two {ma} {profile} runs with changes: {text}"
            );
        }
    }
    let expected: BTreeMap<String, Vec<String>> = [
        (
            "hr delta-import",
            "E10005  update  manager_id: E10004 -> E10001",
        ),
        ("groups delta-import", "G100  update  members: +E10006"),
        ("app export", "E10005  update  manager: fpetrova"),
        ("app-groups export", "G100  update  members: +ewirth"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), vec![format!("    {v}")]))
    .collect();
    for (run, lines) in &expected {
        assert_eq!(shown.get(run), Some(lines), "{shown:#?}");
    }
    // The directory gets both in one export: the manager's DN and the
    // member added to a whole list (a file takes no value-level changes).
    // Their order is the connectors' id order, which depends on which of
    // the two delta syncs ran first: compared in any order.
    let mut directory: Vec<&str> = shown["directory export"].iter().map(|l| l.trim()).collect();
    directory.sort_unstable();
    assert_eq!(
        directory,
        [
            "E10005      update  manager: fatima.petrova@example.com",
            "group-G100  update  member: +elena.wirth@example.com (sent as the whole value, 59 values)",
        ],
        "{shown:#?}"
    );
}

/// `cs MA --unresolved` of a target lists the members held from it and
/// why: a terminated member never gets an account in `app` (it waits for
/// good), an active one waits for its add to `app` to be sent, then for
/// the next sync, and is listed no more once sent.
#[test]
fn cs_unresolved_should_list_the_members_held_from_a_target_and_why() {
    let w = Workdir::quickstart_with_groups();
    for (ma, profile) in [
        ("hr", "full-import"),
        ("hr", "full-sync"),
        ("groups", "full-import"),
        ("groups", "full-sync"),
    ] {
        w.expect(&["run-profile", ma, profile, "--no-progress"], 0);
    }
    let mv_id = |employee: &str| -> i64 {
        let found: serde_json::Value = serde_json::from_str(&w.expect(
            &[
                "mv",
                "--filter",
                &format!("employeeId={employee}"),
                "--json",
            ],
            0,
        ))
        .unwrap();
        found[0]["id"].as_i64().unwrap()
    };
    let (terminated, active) = (mv_id("E10002"), mv_id("E10001"));
    // The waits of each listed group, by anchor: (member, reason).
    let waits = |w: &Workdir| -> BTreeMap<String, Vec<(i64, String)>> {
        let listed: serde_json::Value =
            serde_json::from_str(&w.expect(&["cs", "app-groups", "--unresolved", "--json"], 0))
                .unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let waits = o["unresolved"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| {
                        assert_eq!(u["direction"], "out", "{u}");
                        assert_eq!(u["attribute"], "members", "{u}");
                        assert_eq!(u["object_type"], "person", "{u}");
                        assert_eq!(u["via"], "app", "{u}");
                        (
                            u["mv_id"].as_i64().unwrap(),
                            u["reason"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                (o["anchor"].as_str().unwrap().to_owned(), waits)
            })
            .collect()
    };
    let before = waits(&w);
    // Every group waits: its active members' adds to app are not sent.
    assert_eq!(before.len(), 7, "{before:?}");
    assert!(
        before["G100"].contains(&(active, "add-not-exported".to_owned())),
        "{before:?}"
    );
    assert!(
        before["G200"].contains(&(terminated, "no-connector".to_owned())),
        "{before:?}"
    );
    let text = w.expect(&["cs", "app-groups", "--unresolved"], 0);
    assert!(
        text.contains("7 with references held from export")
            && text.contains(&format!("person #{terminated}: has no connector in app"))
            && text.contains(&format!(
                "person #{active}: its add to app is not exported yet"
            )),
        "{text}"
    );
    // Sent: the next sync resolves them.
    w.expect(&["run-profile", "app", "export", "--no-progress"], 0);
    let sent = waits(&w);
    assert!(
        sent["G100"].contains(&(active, "ready".to_owned())),
        "{sent:?}"
    );
    w.expect(&["run-profile", "app", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "app", "delta-sync", "--no-progress"], 0);
    let after = waits(&w);
    assert!(
        after
            .values()
            .flatten()
            .all(|(_, reason)| reason == "no-connector"),
        "{after:?}"
    );
    assert!(
        after["G200"].contains(&(terminated, "no-connector".to_owned())),
        "{after:?}"
    );
    assert!(
        after.values().flatten().all(|(m, _)| *m != active),
        "{after:?}"
    );
    // A source's own waits are listed too (inbound): none here.
    let hr: serde_json::Value =
        serde_json::from_str(&w.expect(&["cs", "hr", "--unresolved", "--json"], 0)).unwrap();
    assert_eq!(hr, serde_json::json!([]));
}

/// An export run by hand sends the delete of a member's account; the sync
/// that drops them from the groups is then due. `run --once` runs it (the
/// store says references are ready to send), and the application's group
/// loses the member.
#[test]
fn run_once_should_send_the_references_an_export_run_by_hand_made_ready() {
    let w = Workdir::quickstart_with_groups();
    w.expect(&["run", "--once"], 0);
    let members = |w: &Workdir| -> i64 {
        let conn = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
        conn.query_row(
            "SELECT count(*) FROM group_members WHERE group_id = 'G100'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = members(&w);
    assert!(before > 0);
    // E10001 (in G100) leaves: their account's delete is exported by hand.
    let hr_path = w.path().join("data/hr.csv");
    let hr = std::fs::read_to_string(&hr_path).unwrap();
    let line = hr.lines().find(|l| l.starts_with("E10001,")).unwrap();
    let hr = hr.replace(line, &line.replace(",active", ",terminated"));
    std::fs::write(&hr_path, hr).unwrap();
    for (ma, profile) in [
        ("hr", "full-import"),
        ("hr", "delta-sync"),
        ("app", "export"),
    ] {
        w.expect(&["run-profile", ma, profile, "--no-progress"], 0);
    }
    assert_eq!(members(&w), before, "the group still names them");
    w.expect(&["run", "--once"], 0);
    assert_eq!(members(&w), before - 1);
}

/// A group renamed in the groups file (its members unchanged) keeps its
/// members in both targets (they were emptied once, found by a black-box
/// review).
#[test]
fn a_group_whose_name_changes_should_keep_its_members_in_both_targets() {
    let w = Workdir::quickstart_with_groups();
    w.expect(&["run", "--once"], 0);
    let members = |w: &Workdir| -> (i64, usize) {
        let db = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
        let app: i64 = db
            .query_row(
                "SELECT count(*) FROM group_members WHERE group_id = 'G100'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let text = std::fs::read_to_string(w.path().join("data/directory.jsonl")).unwrap();
        let line = text.lines().find(|l| l.contains("\"group-G100\"")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let dir = v["member"].as_array().map_or(0, Vec::len);
        (app, dir)
    };
    let before = members(&w);
    assert!(before.0 > 50 && before.1 > 50, "{before:?}");
    w.edit("data/groups.csv", |t| {
        t.replace("G100,Operations team,", "G100,Operations,")
    });
    w.expect(&["run", "--once"], 0);
    assert_eq!(members(&w), before);
    let text = std::fs::read_to_string(w.path().join("data/directory.jsonl")).unwrap();
    assert!(text.contains("\"Operations\""), "the new name is there");
}

/// Memberships edited in the application's own tables: its full import
/// sees the difference, and the next run puts back what the groups file
/// says (found by a black-box review: the delta sync staged nothing).
#[test]
fn memberships_edited_in_the_application_should_be_put_back() {
    let w = Workdir::quickstart_with_groups();
    w.expect(&["run", "--once"], 0);
    let members = |w: &Workdir| -> Vec<(String, String)> {
        let db = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
        let mut q = db
            .prepare("SELECT group_id, username FROM group_members ORDER BY 1, 2")
            .unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = members(&w);
    let db = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
    let (g, u) = before[0].clone();
    db.execute(
        "DELETE FROM group_members WHERE group_id = ?1 AND username = ?2",
        [&g, &u],
    )
    .unwrap();
    let other = before.iter().find(|(og, _)| *og != g).unwrap().1.clone();
    if !before.contains(&(g.clone(), other.clone())) {
        db.execute(
            "INSERT INTO group_members (group_id, username) VALUES (?1, ?2)",
            [&g, &other],
        )
        .unwrap();
    }
    drop(db);
    w.expect(
        &["run-profile", "app-groups", "full-import", "--no-progress"],
        0,
    );
    w.expect(&["run", "--once"], 0);
    assert_eq!(members(&w), before);
}
