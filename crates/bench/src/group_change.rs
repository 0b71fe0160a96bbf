//! Scenario `group-change` (issue 20): a group of G members in a SQLite
//! source (members in a child table, changes in a changelog filled by
//! triggers), its members 2G people from a CSV source, exported to a
//! SQLite target (members in a child table). Times the propagation of one
//! member changed (delta import, delta sync, export) against the same
//! three steps after every member of the group is replaced, in the same
//! run: `one_member_ms`, `whole_group_ms`, `one_vs_whole`.

use crate::engine_scenario::run_step;
use anyhow::{Context, bail};
use autosync_engine::Engine;
use std::io::Write;
use std::path::Path;

const CONFIG: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "name"]

[metaverse.group]
attributes = ["groupId", "members"]
references = { members = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "employee_id" }]
join = [{ mv_type = "person", on = [{ cs = "employee_id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv_type = "person", mv = "employeeId", from = "employee_id" },
  { mv_type = "person", mv = "name", from = "name" },
]

[[ma]]
name = "src"
connector = { type = "sqlite", path = "src.db", table = "groups", columns = ["group_id"], child_tables = { members = { table = "group_members", key = "group_id", value = "member" } }, delta = { kind = "changelog", table = "changes", sequence_column = "seq", attribute_column = "attr", value_column = "member" } }
object_types = [{ name = "group", anchor = "group_id", references = { members = { by = "anchor", ma = "hr" } } }]
join = [{ mv_type = "group", on = [{ cs = "group_id", mv = "groupId" }] }]
projection = [{ mv_type = "group" }]
import_flows = [
  { mv_type = "group", mv = "groupId", from = "group_id" },
  { mv_type = "group", mv = "members", from = "members" },
]

[[ma]]
name = "app"
connector = { type = "sqlite", path = "app.db", table = "users", create_table = true, columns = ["employee_id", "name"] }
object_types = [{ name = "user", anchor = "employee_id" }]
join = [{ mv_type = "person", on = [{ cs = "employee_id", mv = "employeeId" }] }]
export_flows = [{ mv_type = "person", cs = "name", from = "name" }]
provisioning = [{ mv_type = "person", anchor = "employeeId", condition = "name != 'gone'" }]
deprovisioning = "delete"

[[ma]]
name = "dst"
connector = { type = "sqlite", path = "app.db", table = "groups", create_table = true, columns = ["group_id"], child_tables = { members = { table = "group_members", key = "group_id", value = "employee_id" } } }
object_types = [{ name = "group", anchor = "group_id", references = { members = { by = "anchor", ma = "app" } } }]
join = [{ mv_type = "group", on = [{ cs = "group_id", mv = "groupId" }] }]
export_flows = [{ mv_type = "group", cs = "members", from = "members" }]
provisioning = [{ mv_type = "group", anchor = "groupId" }]
"#;

fn person(i: u64) -> String {
    format!("E{i:08}")
}

/// The source: group `G1` with members `first..first + size`, and the
/// changelog its triggers fill.
fn write_source(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE groups (group_id TEXT PRIMARY KEY);
         CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL,
           UNIQUE (group_id, member));
         CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id TEXT NOT NULL,
           attr TEXT, member TEXT);
         CREATE TRIGGER member_added AFTER INSERT ON group_members BEGIN
           INSERT INTO changes (group_id, attr, member) VALUES (NEW.group_id, 'members', NEW.member); END;
         CREATE TRIGGER member_removed AFTER DELETE ON group_members BEGIN
           INSERT INTO changes (group_id, attr, member) VALUES (OLD.group_id, 'members', OLD.member); END;
         INSERT INTO groups (group_id) VALUES ('G1');",
    )?;
    let tx = conn.transaction()?;
    {
        let mut add =
            tx.prepare("INSERT INTO group_members (group_id, member) VALUES ('G1', ?1)")?;
        for i in 0..size {
            add.execute([person(i)])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn write_people(path: &Path, n: u64) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "employee_id,name")?;
    for i in 0..n {
        writeln!(w, "{},Person {i}", person(i))?;
    }
    w.flush()?;
    Ok(())
}

/// `hr.csv` without person `gone`.
fn write_people_but(path: &Path, n: u64, gone: u64) -> anyhow::Result<()> {
    write_people_as(path, n, gone, u64::MAX)
}

/// `hr.csv` without person `gone`, person `out` named `gone` (out of the
/// application's scope).
fn write_people_as(path: &Path, n: u64, gone: u64, out: u64) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "employee_id,name")?;
    for i in (0..n).filter(|i| *i != gone) {
        if i == out {
            writeln!(w, "{},gone", person(i))?;
        } else {
            writeln!(w, "{},Person {i}", person(i))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// The members the target holds for `G1`.
fn target_members(app: &Path) -> anyhow::Result<i64> {
    let conn = rusqlite::Connection::open(app)?;
    Ok(conn.query_row(
        "SELECT count(*) FROM group_members WHERE group_id = 'G1'",
        [],
        |r| r.get(0),
    )?)
}

/// Propagate what the source's changelog holds: delta import, delta sync,
/// export; seconds of each. Then (not timed) the confirming import the
/// controller would run after the export.
fn propagate(engine: &Engine) -> anyhow::Result<[f64; 3]> {
    let (_, import_s) = run_step(engine, "src", "delta-import")?;
    let (_, sync_s) = run_step(engine, "src", "delta-sync")?;
    let (_, export_s) = run_step(engine, "dst", "export")?;
    confirm(engine)?;
    Ok([import_s, sync_s, export_s])
}

/// The target's confirming import and sync.
fn confirm(engine: &Engine) -> anyhow::Result<()> {
    run_step(engine, "dst", "full-import")?;
    run_step(engine, "dst", "delta-sync")?;
    Ok(())
}

fn ms(s: f64) -> f64 {
    (s * 1000.0 * 10.0).round() / 10.0
}

/// Run the scenario with a group of `size` members.
pub fn run(size: u64, keep: bool) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::Builder::new()
        .prefix("autosync-bench-group-")
        .tempdir()?;
    let root = dir.path();
    write_people(&root.join("hr.csv"), 2 * size)?;
    write_source(&root.join("src.db"), size)?;
    let (engine, _store) = crate::engine_scenario::engine_for(root, CONFIG)?;
    // The starting point: everyone in the application, the group in the
    // target with its members.
    run_step(&engine, "hr", "full-import")?;
    run_step(&engine, "hr", "full-sync")?;
    run_step(&engine, "app", "export")?;
    run_step(&engine, "src", "full-import")?;
    run_step(&engine, "src", "full-sync")?;
    run_step(&engine, "dst", "export")?;
    confirm(&engine)?;
    let app = root.join("app.db");
    if target_members(&app)? != size as i64 {
        bail!(
            "the target's group has {} members, not {size}",
            target_members(&app)?
        );
    }

    // One member replaced by another.
    let src = rusqlite::Connection::open(root.join("src.db"))?;
    src.execute("DELETE FROM group_members WHERE member = ?1", [person(0)])?;
    src.execute(
        "INSERT INTO group_members (group_id, member) VALUES ('G1', ?1)",
        [person(size)],
    )?;
    let one = propagate(&engine)?;
    let one_s: f64 = one.iter().sum();
    let conn = rusqlite::Connection::open(&app)?;
    let swapped: i64 = conn.query_row(
        "SELECT count(*) FROM group_members WHERE group_id = 'G1' AND employee_id IN (?1, ?2)",
        [person(0), person(size)],
        |r| r.get(0),
    )?;
    if swapped != 1 || target_members(&app)? != size as i64 {
        bail!("the one-member change did not reach the target as one change");
    }

    // Every member replaced by another person.
    {
        let mut src = rusqlite::Connection::open(root.join("src.db"))?;
        let tx = src.transaction()?;
        tx.execute("DELETE FROM group_members WHERE group_id = 'G1'", [])?;
        {
            let mut add =
                tx.prepare("INSERT INTO group_members (group_id, member) VALUES ('G1', ?1)")?;
            for i in size + 1..2 * size {
                add.execute([person(i)])?;
            }
        }
        tx.commit()?;
    }
    let whole = propagate(&engine)?;
    let whole_s: f64 = whole.iter().sum();
    let kept: i64 = conn.query_row(
        "SELECT count(*) FROM group_members WHERE group_id = 'G1' AND employee_id < ?1",
        [person(size)],
        |r| r.get(0),
    )?;
    if kept != 0 {
        bail!("{kept} old members stayed in the target after the whole group was replaced");
    }
    // A member leaves: their HR record goes, so does their person; the
    // group loses them in the metaverse and in the target. Timed: the
    // delta sync that deletes the person, the application's export (their
    // account's delete), the confirming sync after it, and the group's
    // export. Reported, no bar: what one leaver costs beside a 500k group.
    let leaver = size + 1;
    write_people_but(&root.join("hr.csv"), 2 * size, leaver)?;
    run_step(&engine, "hr", "full-import")?;
    let mut leaves = [0.0; 4];
    leaves[0] = run_step(&engine, "hr", "delta-sync")?.1;
    leaves[1] = run_step(&engine, "app", "export")?.1;
    run_step(&engine, "app", "full-import")?;
    leaves[2] = run_step(&engine, "app", "delta-sync")?.1;
    leaves[3] = run_step(&engine, "dst", "export")?.1;
    let left: i64 = conn.query_row(
        "SELECT count(*) FROM group_members WHERE group_id = 'G1' AND employee_id = ?1",
        [person(leaver)],
        |r| r.get(0),
    )?;
    if left != 0 || target_members(&app)? != size as i64 - 2 {
        bail!(
            "the leaver is still in the target's group ({left}), or it holds {} members",
            target_members(&app)?
        );
    }
    let leaves_s: f64 = leaves.iter().sum();
    // The confirming import of the group's export (not timed), as the
    // controller runs it.
    confirm(&engine)?;

    // A member's account leaves the application (out of its scope: the
    // account is deleted): once the delete is exported, the group in the
    // target loses them. Timed: the delta sync that stages the delete, the
    // application's export, the confirming sync after it (whose end drops
    // them from the group), the group's export.
    let out = size + 2;
    write_people_as(&root.join("hr.csv"), 2 * size, leaver, out)?;
    run_step(&engine, "hr", "full-import")?;
    let mut deleted = [0.0; 4];
    deleted[0] = run_step(&engine, "hr", "delta-sync")?.1;
    deleted[1] = run_step(&engine, "app", "export")?.1;
    run_step(&engine, "app", "full-import")?;
    deleted[2] = run_step(&engine, "app", "delta-sync")?.1;
    deleted[3] = run_step(&engine, "dst", "export")?.1;
    let still: i64 = conn.query_row(
        "SELECT count(*) FROM group_members WHERE group_id = 'G1' AND employee_id = ?1",
        [person(out)],
        |r| r.get(0),
    )?;
    if still != 0 || target_members(&app)? != size as i64 - 3 {
        bail!(
            "the member whose account went is still in the target's group ({still}), or it holds {} members",
            target_members(&app)?
        );
    }
    let deleted_s: f64 = deleted.iter().sum();
    let results = serde_json::json!({
        "group_size": size,
        "member_leaves_ms": ms(leaves_s),
        // Delta sync, the application's export, its confirming sync, the
        // group's export.
        "member_leaves_steps_ms": leaves.map(ms),
        "member_leaves_vs_whole": (leaves_s / whole_s * 10000.0).round() / 10000.0,
        "account_deleted_ms": ms(deleted_s),
        // Delta sync, the application's export, its confirming sync, the
        // group's export.
        "account_deleted_steps_ms": deleted.map(ms),
        "one_member_ms": ms(one_s),
        "whole_group_ms": ms(whole_s),
        // Delta import, delta sync, export.
        "one_member_steps_ms": one.map(ms),
        "whole_group_steps_ms": whole.map(ms),
        "one_vs_whole": (one_s / whole_s * 10000.0).round() / 10000.0,
        "peak_rss_bytes": crate::machine::peak_rss_bytes(),
    });
    if keep {
        let kept = dir.keep();
        eprintln!("working folder kept: {}", kept.display());
    }
    Ok(results)
}

/// The bar: one member in at most 1/100 of the whole group's time.
pub fn bars(results: &serde_json::Value) -> serde_json::Value {
    let ratio = results["one_vs_whole"].as_f64().unwrap_or(f64::MAX);
    serde_json::json!({
        "one_vs_whole": { "bar": 0.01, "at_most": true, "met": ratio <= 0.01 },
    })
}
