//! Crash safety: a SIGKILL at any crash point of any step, followed by the
//! same runs again, gives the same end state as an uninterrupted run (MV,
//! every CS, every target), and never inserts an object twice in a target.
//!
//! The engine has named crash points (before and after each batch's store
//! commit, after each export batch is applied, ...). With
//! `AUTOSYNC_CRASH_TRACE=file` it appends each point it passes to `file`;
//! with `AUTOSYNC_CRASH_AFTER=n` it SIGKILLs itself at the n-th point. A
//! reference run lists the points; the test crashes once at each kind of
//! point of each kind of step of each MA (a random instance of it), then at
//! random points up to `AUTOSYNC_CRASH_SEEDS` (default 24). The scenario
//! has full and delta cycles, so a watermark saved ahead of the changes it
//! covers (a delta import would then skip them) shows up as a divergence.

use super::support::*;
use std::path::Path;

const USERS_DDL: &str = "
CREATE TABLE users (employee_id TEXT PRIMARY KEY, username TEXT, display_name TEXT,
  email TEXT, department TEXT, title TEXT, manager_id TEXT);
CREATE TABLE audit_insert (employee_id TEXT);
CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN
  INSERT INTO audit_insert VALUES (NEW.employee_id);
END;";

fn prepare() -> Workdir {
    let w = Workdir::quickstart();
    let conn = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
    conn.execute_batch(USERS_DDL).unwrap();
    w
}

/// Change the HR file (change number `round`): new titles, terminations,
/// new hires, removed rows.
fn change_hr(w: &Workdir, round: usize) {
    w.edit("data/hr.csv", |text| {
        let mut lines: Vec<String> = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if i == 0 {
                lines.push(l.to_owned());
                continue;
            }
            let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
            match i % 40 {
                3 => f[5] = format!("{} II", f[5]),
                7 => f[7] = "terminated".into(),
                11 => continue,
                _ => {}
            }
            lines.push(f.join(","));
        }
        for n in 0..6 {
            lines.push(format!(
                "N{round}{n:03},New,Hire{round}x{n},new.hire{round}x{n}@example.com,Engineering,Engineer,,active"
            ));
        }
        lines.join("\n") + "\n"
    });
}

/// The quickstart's cycle with delta steps: the HR file compared with the
/// connector space (its watermark skips an unchanged file, so a watermark
/// saved ahead of its staged changes would lose them), a delta sync of the
/// pending imports only, and delta confirming imports.
const DELTA_CYCLE: [(&str, &str); 8] = [
    ("hr", "delta-import"),
    ("hr", "delta-sync"),
    ("app", "export"),
    ("directory", "export"),
    ("app", "delta-import"),
    ("directory", "delta-import"),
    ("app", "delta-sync"),
    ("directory", "delta-sync"),
];

/// The runs of the scenario: a full cycle, a change, a delta cycle, a
/// change, a full cycle, a delta cycle.
fn commands() -> Vec<(&'static str, &'static str)> {
    let mut v = CYCLE.to_vec();
    v.push(("--change--", ""));
    v.extend(DELTA_CYCLE);
    v.push(("--change--", ""));
    v.extend(CYCLE);
    v.extend(DELTA_CYCLE);
    v
}

/// Run the scenario; `crash` = (command index, n-th crash point in it).
fn scenario(w: &Workdir, crash: Option<(usize, u64)>, trace: Option<&Path>) -> bool {
    let mut crashed = false;
    let mut changes = 0;
    for (i, (ma, profile)) in commands().into_iter().enumerate() {
        if ma == "--change--" {
            changes += 1;
            change_hr(w, changes);
            continue;
        }
        let args = ["run-profile", ma, profile, "--no-progress", "--json"];
        let mut env: Vec<(&str, String)> = Vec::new();
        if let Some(t) = trace {
            env.push((
                "AUTOSYNC_CRASH_TRACE",
                t.join(format!("{i:03}")).display().to_string(),
            ));
        }
        if let Some((ci, n)) = crash
            && ci == i
        {
            env.push(("AUTOSYNC_CRASH_AFTER", n.to_string()));
        }
        let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = w.run_env(&args, &env_ref);
        if crash.map(|c| c.0) == Some(i) {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(9),
                "expected the crash point to kill {ma} {profile}"
            );
            crashed = true;
            // The same run again, without the crash.
            let again = w.run(&args);
            assert!(
                again.status.success(),
                "{ma} {profile} after crash: {}",
                String::from_utf8_lossy(&again.stderr)
            );
        } else {
            assert!(
                out.status.success(),
                "{ma} {profile}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    crashed
}

/// Everything that must converge, with store ids replaced by stable keys.
fn end_state(w: &Workdir) -> serde_json::Value {
    let mv: serde_json::Value =
        serde_json::from_str(&w.expect(&["mv", "--json", "--limit", "100000"], 0)).unwrap();
    let mut by_id = std::collections::HashMap::new();
    let mut people = Vec::new();
    for o in mv.as_array().unwrap() {
        let key = o["attributes"]["employeeId"]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        by_id.insert(o["id"].as_i64().unwrap(), key.clone());
        let mut o = o.clone();
        o.as_object_mut().unwrap().remove("id");
        people.push((key, o));
    }
    people.sort_by(|a, b| a.0.cmp(&b.0));
    let mut spaces = serde_json::Map::new();
    for ma in ["hr", "app", "directory"] {
        let cs: serde_json::Value =
            serde_json::from_str(&w.expect(&["cs", ma, "--json", "--limit", "100000"], 0)).unwrap();
        let mut objs: Vec<serde_json::Value> = cs
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let mut o = o.clone();
                let m = o.as_object_mut().unwrap();
                m.remove("id");
                if let Some(id) = m["connection"].get("mv_id").and_then(|v| v.as_i64()) {
                    m.insert(
                        "connection".into(),
                        serde_json::json!({"mv": by_id.get(&id)}),
                    );
                }
                if let Some(e) = m.get_mut("error") {
                    e.as_object_mut().unwrap().remove("run_id");
                }
                o
            })
            .collect();
        objs.sort_by(|a, b| a["anchor"].as_str().cmp(&b["anchor"].as_str()));
        spaces.insert(ma.into(), serde_json::Value::Array(objs));
    }
    let users = app_users(w.path());
    serde_json::json!({
        "mv": people.into_iter().map(|p| p.1).collect::<Vec<_>>(),
        "cs": spaces,
        "app": users,
        "directory": std::fs::read_to_string(w.path().join("data/directory.jsonl")).unwrap(),
    })
}

fn inserts(w: &Workdir) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT employee_id, count(*) FROM audit_insert GROUP BY employee_id ORDER BY employee_id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn sigkill_at_random_crash_points_should_converge_to_the_uninterrupted_end_state() {
    let reference = prepare();
    let trace = tempfile::tempdir().unwrap();
    assert!(!scenario(&reference, None, Some(trace.path())));
    let expected = end_state(&reference);
    let expected_inserts = inserts(&reference);
    assert!(expected_inserts.iter().all(|(_, n)| *n == 1));

    // Crash points per command of the reference run, grouped by MA, kind
    // of step and the point's name.
    let mut points: Vec<(usize, u64)> = Vec::new();
    let mut kinds: Kinds = Default::default();
    for (i, (ma, profile)) in commands().iter().enumerate() {
        let text =
            std::fs::read_to_string(trace.path().join(format!("{i:03}"))).unwrap_or_default();
        for (k, line) in text.lines().enumerate() {
            let point = (i, k as u64 + 1);
            points.push(point);
            let name = line.split_once(' ').map_or(line, |(_, n)| n).to_owned();
            kinds.entry((ma, profile, name)).or_default().push(point);
        }
    }
    assert!(
        points.len() > 40,
        "too few crash points to be meaningful: {}",
        points.len()
    );

    // One crash at each kind of point in each kind of step of each MA (a
    // random one of its instances), then random points up to the seed
    // count.
    let seeds: u64 = std::env::var("AUTOSYNC_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let mut rng = Lcg(0x5eed_2026_1123);
    let mut picks: Vec<(usize, u64)> = kinds
        .values()
        .map(|v| v[(rng.next() % v.len() as u64) as usize])
        .collect();
    while (picks.len() as u64) < seeds.max(kinds.len() as u64 + 8) {
        picks.push(points[(rng.next() % points.len() as u64) as usize]);
    }
    for (seed, pick) in picks.into_iter().enumerate() {
        let w = prepare();
        assert!(
            scenario(&w, Some(pick), None),
            "seed {seed}: no crash at {pick:?}"
        );
        let got = end_state(&w);
        assert!(
            got == expected,
            "seed {seed}: crash at {pick:?} diverged\n{}",
            diff(&expected, &got)
        );
        assert_eq!(
            inserts(&w),
            expected_inserts,
            "seed {seed}: crash at {pick:?} inserted an object twice"
        );
    }
}

/// Crash points by (MA, step, point name): (command index, n-th point).
type Kinds = std::collections::BTreeMap<(&'static str, &'static str, String), Vec<(usize, u64)>>;

/// A tiny deterministic generator: the seeds are reproducible.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn diff(a: &serde_json::Value, b: &serde_json::Value) -> String {
    let a = serde_json::to_string_pretty(a).unwrap();
    let b = serde_json::to_string_pretty(b).unwrap();
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("first difference at line {i}:\n  expected: {x}\n  got:      {y}");
        }
    }
    format!("lengths differ: {} vs {}", a.len(), b.len())
}
