//! Crash safety: a SIGKILL at any crash point of any step, followed by the
//! same runs again, gives the same end state as an uninterrupted run, and
//! the application table receives the same changes, none applied twice.
//!
//! The engine has named crash points (before and after each batch's store
//! commit, after each export batch is applied, ...). With
//! `AUTOSYNC_CRASH_TRACE=file` it appends each point it passes to `file`;
//! with `AUTOSYNC_CRASH_AFTER=n` it SIGKILLs itself at the n-th point. A
//! reference run lists the points; the test crashes once at each kind of
//! point of each kind of step of each MA (a random instance of it), then at
//! random points up to `AUTOSYNC_CRASH_SEEDS` (default 24). The scenario
//! has full and delta cycles, and every import reads its source in batches
//! of 100 (a few commits per step).
//!
//! What is compared with the uninterrupted run ([`state`] says what is left
//! out and why): after every run (the crashed one run again included), the
//! store's watermarks and each connector-space object's state (pending
//! import, pending export, unconfirmed export, error, joined) and the
//! number of metaverse objects, so a watermark saved ahead of the changes
//! it covers (the next import skips an unchanged file) is seen at once,
//! before a later full read of a changed file hides it; at the end, the
//! store's metaverse and connector spaces (every field of every object),
//! every MA's watermark, the application database whole (its schema and
//! every column of every row), and the directory file whole (its export
//! rewrites it whole, so the file is its own record).
//!
//! The application table's writes are audited by SQLite triggers the test
//! creates (the database's own record: every INSERT, UPDATE and DELETE, with
//! the row before and after). What counts as a change applied twice: the
//! architecture promises that exports are replayable, and that a pending
//! export becomes unconfirmed only after the target accepted it. So a crash
//! after the target accepted an export batch and before the engine recorded
//! its outcomes (`export.batch.applied`, `export.record.before-commit` of
//! the `app` export) re-sends that batch, once: an add of an existing row
//! updates it in place with the values it already has, an update sets them
//! again, a delete finds nothing to delete. Such a replay is a write that
//! changes nothing. The rule is therefore: for every row, the writes that
//! changed it (INSERT, DELETE, an UPDATE that changed a column) are exactly
//! those of the uninterrupted run, in the same order; writes that changed
//! nothing appear as often as in the uninterrupted run (which has none),
//! plus at most one per row when the crash hit one of those two points,
//! and none otherwise. An add sent again as an insert, a change re-sent
//! after a later one, a row deleted and re-created, or a replay after any
//! other crash point all fail the test.

mod state;

use super::support::*;
use state::{Audit, end_state, first_difference};
use std::collections::HashMap;
use std::path::Path;

/// Crash points of the `app` export after which the batch in flight is
/// sent again: the target accepted it, the store does not know yet.
const REPLAYING_POINTS: [&str; 2] = ["export.batch.applied", "export.record.before-commit"];

/// Objects per import batch in the test's configuration.
const IMPORT_BATCH: &str = "batch_size = 100";

fn prepare() -> Workdir {
    let w = Workdir::quickstart_with_groups();
    let conn = rusqlite::Connection::open(w.path().join("data/app.db")).unwrap();
    conn.execute_batch(&state::users_ddl()).unwrap();
    w.edit("autosync.toml", |text| {
        let mut text = text;
        for connector in [
            r#"path = "data/hr.csv""#,
            r#"table = "users""#,
            r#"path = "data/directory.jsonl""#,
        ] {
            assert!(
                text.contains(connector),
                "the quickstart has no `{connector}`"
            );
            text = text.replace(connector, &format!("{connector}, {IMPORT_BATCH}"));
        }
        text
    });
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
            // A new hire managed by the first person of the file.
            lines.push(format!(
                "N{round}{n:03},New,Hire{round}x{n},new.hire{round}x{n}@example.com,Engineering,Engineer,E10001,active"
            ));
        }
        lines.join("\n") + "\n"
    });
    // Each group loses its first member and gains a new hire (whose
    // connectors are made in the same run: the ordinary way), every other
    // group also a person already there (one value: the fast way, see the
    // engine's `rows`).
    w.edit("data/groups.csv", |text| {
        let mut lines: Vec<String> = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if i == 0 {
                lines.push(l.to_owned());
                continue;
            }
            let f: Vec<&str> = l.splitn(3, ',').collect();
            let mut members: Vec<String> = f[2].split(';').skip(1).map(str::to_owned).collect();
            let existing = format!("E{}", 10_200 + round * 11 + i);
            if i % 2 == 1 && !members.contains(&existing) {
                members.push(existing);
            } else {
                members.push(format!("N{round}{:03}", i % 6));
            }
            lines.push(format!("{},{},{}", f[0], f[1], members.join(";")));
        }
        lines.join("\n") + "\n"
    });
}

/// The quickstart's full cycle with its groups, twice over the exports (a
/// reference to an object added by the same export follows in the next).
const FULL_CYCLE: [(&str, &str); 19] = [
    ("hr", "full-import"),
    ("groups", "full-import"),
    ("hr", "full-sync"),
    ("groups", "full-sync"),
    ("app", "export"),
    ("app-groups", "export"),
    ("directory", "export"),
    ("app", "full-import"),
    ("app-groups", "full-import"),
    ("directory", "full-import"),
    ("app", "delta-sync"),
    ("app-groups", "delta-sync"),
    ("directory", "delta-sync"),
    ("app", "export"),
    ("app-groups", "export"),
    ("directory", "export"),
    ("app", "full-import"),
    ("app-groups", "full-import"),
    ("directory", "full-import"),
];

/// The quickstart's cycle with delta steps: the HR file compared with the
/// connector space (its watermark skips an unchanged file, so a watermark
/// saved ahead of its staged changes would lose them), a delta sync of the
/// pending imports only, and delta confirming imports.
const DELTA_CYCLE: [(&str, &str); 19] = [
    ("hr", "delta-import"),
    ("groups", "delta-import"),
    ("hr", "delta-sync"),
    ("groups", "delta-sync"),
    ("app", "export"),
    ("app-groups", "export"),
    ("directory", "export"),
    ("app", "delta-import"),
    ("app-groups", "delta-import"),
    ("directory", "delta-import"),
    ("app", "delta-sync"),
    ("app-groups", "delta-sync"),
    ("directory", "delta-sync"),
    ("app", "export"),
    ("app-groups", "export"),
    ("directory", "export"),
    ("app", "delta-import"),
    ("app-groups", "delta-import"),
    ("directory", "delta-import"),
];

/// The runs of the scenario: a full cycle, a change, a delta cycle, a
/// change, a full cycle, a delta cycle.
fn commands() -> Vec<(&'static str, &'static str)> {
    let mut v = FULL_CYCLE.to_vec();
    v.push(("--change--", ""));
    v.extend(DELTA_CYCLE);
    v.push(("--change--", ""));
    v.extend(FULL_CYCLE);
    v.extend(DELTA_CYCLE);
    v
}

/// What a run of the scenario did: whether it crashed, and the store's
/// state after each command (index, [`state::after_run`]).
struct Scenario {
    crashed: bool,
    after_each: Vec<(usize, Vec<String>)>,
}

/// Run the scenario; `crash` = (command index, n-th crash point in it).
fn scenario(w: &Workdir, crash: Option<(usize, u64)>, trace: Option<&Path>) -> Scenario {
    let mut crashed = false;
    let mut after_each = Vec::new();
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
        after_each.push((i, state::after_run(w.path())));
    }
    Scenario {
        crashed,
        after_each,
    }
}

/// The first command after which the store's state differs.
fn first_step_difference(expected: &Scenario, got: &Scenario) -> Option<String> {
    for ((i, want), (_, have)) in expected.after_each.iter().zip(&got.after_each) {
        if want != have {
            let (ma, profile) = commands()[*i];
            let line = want.iter().zip(have).find(|(a, b)| a != b).map_or_else(
                || format!("{} lines, expected {}", have.len(), want.len()),
                |(a, b)| format!("expected `{a}`, got `{b}`"),
            );
            return Some(format!("after command {i} ({ma} {profile}): {line}"));
        }
    }
    None
}

#[test]
fn sigkill_at_random_crash_points_should_converge_to_the_uninterrupted_end_state() {
    let reference = prepare();
    let trace = tempfile::tempdir().unwrap();
    let reference_run = scenario(&reference, None, Some(trace.path()));
    assert!(!reference_run.crashed);
    let expected = end_state(&reference);
    let expected_audit = Audit::read(reference.path());
    // The reference is worth comparing with: it inserted, updated and
    // deleted rows, and wrote nothing twice.
    for op in ["insert", "update", "delete"] {
        assert!(
            expected_audit.count(op) > 0,
            "the scenario never does an {op}"
        );
    }
    assert!(
        expected_audit.unchanged.is_empty(),
        "an uninterrupted run wrote rows without changing them: {:?}",
        expected_audit.unchanged
    );
    assert!(
        expected_audit.changes.values().all(|w| w[0].op == "insert"),
        "an uninterrupted run changed a row before inserting it"
    );
    assert!(
        expected["watermarks"]["hr"].is_string() && expected["watermarks"]["directory"].is_string()
    );

    // Crash points per command of the reference run, grouped by MA, kind
    // of step and the point's name.
    let mut points: Vec<(usize, u64)> = Vec::new();
    let mut names: HashMap<(usize, u64), String> = HashMap::new();
    let mut kinds: Kinds = Default::default();
    for (i, (ma, profile)) in commands().iter().enumerate() {
        let text =
            std::fs::read_to_string(trace.path().join(format!("{i:03}"))).unwrap_or_default();
        for (k, line) in text.lines().enumerate() {
            let point = (i, k as u64 + 1);
            points.push(point);
            let name = line.split_once(' ').map_or(line, |(_, n)| n).to_owned();
            names.insert(point, name.clone());
            kinds.entry((ma, profile, name)).or_default().push(point);
        }
    }
    assert!(
        points.len() > 40,
        "too few crash points to be meaningful: {}",
        points.len()
    );
    let batches = kinds
        .get(&("hr", "delta-import", "import.batch.committed".into()))
        .map_or(0, Vec::len);
    assert!(
        batches >= 3,
        "the HR delta import should read the file in several batches, not {batches}"
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
    while (picks.len() as u64) < seeds.max(kinds.len() as u64 + 4) {
        picks.push(points[(rng.next() % points.len() as u64) as usize]);
    }
    let mut replayed = 0;
    let mut replaying_picks = 0;
    for (seed, pick) in picks.into_iter().enumerate() {
        let name = &names[&pick];
        let replays = usize::from(
            commands()[pick.0] == ("app", "export") && REPLAYING_POINTS.contains(&name.as_str()),
        );
        replaying_picks += replays;
        let w = prepare();
        let run = scenario(&w, Some(pick), None);
        assert!(run.crashed, "seed {seed}: no crash at {pick:?} ({name})");
        if let Some(d) = first_step_difference(&reference_run, &run) {
            panic!("seed {seed}: crash at {pick:?} ({name}): the store diverged {d}");
        }
        let got = end_state(&w);
        assert!(
            got == expected,
            "seed {seed}: crash at {pick:?} ({name}) diverged from the uninterrupted run {}",
            first_difference(&expected, &got)
        );
        match Audit::read(w.path()).check_against(&expected_audit, replays) {
            Ok(n) => replayed += n,
            Err(e) => panic!("seed {seed}: crash at {pick:?} ({name}): {e}"),
        }
    }
    eprintln!(
        "{} crash points in the reference run; {replaying_picks} crashes replayed an app export \
         batch, {replayed} rows written again without a change",
        points.len()
    );
    // The audit sees the replays the crashes cause (it would see a change
    // applied twice): the export batches here all hold adds or updates.
    assert!(
        replaying_picks > 0,
        "no crash between an export's apply and its record"
    );
    assert!(
        replayed > 0,
        "{replaying_picks} crashes between the app export's apply and its record, and no row \
         written again: the audit does not see the replays"
    );
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
