//! The `engine` scenario's references part (issue 20): the same N people
//! with a manager reference each (the application gets the manager's
//! username) and groups (1,000 groups holding 100,000 memberships in all,
//! plus one group of all N people) exported to a groups table; and the
//! store's own limit, measured in the same run (`raw_store_objects_per_s`:
//! a plain loop of prepared statements writing the rows a sync writes).

use anyhow::Context;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The configuration with references: `hr` as in the plain one (its
/// manager a reference), a `groups` source naming HR's people, and the
/// targets `app` (manager by username) and `app-groups` (members as the
/// users' usernames, in a JSON column).
pub const CONFIG: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "firstName", "lastName", "displayName", "email",
  "department", "title", "manager", "status", "accountName"]
references = { manager = "person" }

[metaverse.group]
attributes = ["groupId", "members"]
references = { members = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "employee_id", references = { manager_id = "anchor" } }]
join = [{ mv_type = "person", on = [{ cs = "employee_id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv_type = "person", mv = "employeeId", from = "employee_id" },
  { mv_type = "person", mv = "firstName", from = "first_name" },
  { mv_type = "person", mv = "lastName", from = "last_name" },
  { mv_type = "person", mv = "displayName", expr = "first_name + ' ' + last_name" },
  { mv_type = "person", mv = "email", expr = "lower(email)" },
  { mv_type = "person", mv = "department", from = "department" },
  { mv_type = "person", mv = "title", from = "title" },
  { mv_type = "person", mv = "manager", from = "manager_id" },
  { mv_type = "person", mv = "status", expr = "lower(status)" },
  { mv_type = "person", mv = "accountName", expr = "lower(left(first_name, 1) + last_name)" },
]

[[ma]]
name = "groups"
connector = { type = "csv", path = "groups.csv", multi_valued = ["members"], multi_value_separator = ";" }
object_types = [{ name = "group", anchor = "group_id", references = { members = { by = "anchor", ma = "hr" } } }]
join = [{ mv_type = "group", on = [{ cs = "group_id", mv = "groupId" }] }]
projection = [{ mv_type = "group" }]
import_flows = [
  { mv_type = "group", mv = "groupId", from = "group_id" },
  { mv_type = "group", mv = "members", from = "members" },
]

[[ma]]
name = "app"
connector = { type = "sqlite", path = "app.db", table = "users", create_table = true, columns = ["employee_id", "username", "display_name", "first_name", "last_name", "email", "department", "title", "manager", "status"] }
object_types = [{ name = "user", anchor = "employee_id", dn = "username", references = { manager = "dn" } }]
join = [{ mv_type = "person", on = [{ cs = "employee_id", mv = "employeeId" }] }]
export_flows = [
  { mv_type = "person", cs = "username", from = "accountName" },
  { mv_type = "person", cs = "display_name", from = "displayName" },
  { mv_type = "person", cs = "first_name", from = "firstName" },
  { mv_type = "person", cs = "last_name", from = "lastName" },
  { mv_type = "person", cs = "email", from = "email" },
  { mv_type = "person", cs = "department", from = "department" },
  { mv_type = "person", cs = "title", from = "title" },
  { mv_type = "person", cs = "manager", from = "manager" },
  { mv_type = "person", cs = "status", from = "status" },
  { mv_type = "person", cs = "employee_id", from = "employeeId" },
]
provisioning = [{ mv_type = "person", anchor = "employeeId", dn = "accountName" }]

[[ma]]
name = "app-groups"
connector = { type = "sqlite", path = "app.db", table = "groups", create_table = true, columns = ["group_id", "members"], column_types = { members = "json" } }
object_types = [{ name = "group", anchor = "group_id", references = { members = { by = "dn", ma = "app" } } }]
join = [{ mv_type = "group", on = [{ cs = "group_id", mv = "groupId" }] }]
export_flows = [{ mv_type = "group", cs = "members", from = "members" }]
provisioning = [{ mv_type = "group", anchor = "groupId" }]
"#;

/// Groups in all: `GROUPS` of `PER_GROUP` members each, and one of all.
pub const GROUPS: u64 = 1_000;
const MEMBERSHIPS: u64 = 100_000;

/// `groups.csv`: 1,000 groups holding 100,000 memberships in all (each
/// person in turn, wrapping when N is smaller), and group `ALL` of every
/// person.
pub fn write_groups(path: &Path, people: u64) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "group_id,members")?;
    let per = MEMBERSHIPS / GROUPS;
    let mut next = 0u64;
    for g in 0..GROUPS {
        write!(w, "G{g:05},")?;
        for m in 0..per {
            if m > 0 {
                write!(w, ";")?;
            }
            write!(w, "E{:08}", next % people.max(1))?;
            next += 1;
        }
        writeln!(w)?;
    }
    write!(w, "ALL,")?;
    for i in 0..people {
        if i > 0 {
            write!(w, ";")?;
        }
        write!(w, "E{i:08}")?;
    }
    writeln!(w)?;
    w.flush()?;
    Ok(())
}

/// The average size in bytes of the bodies a sync wrote: metaverse
/// objects, and the target's connector-space objects (with their pending
/// export).
pub fn body_sizes(store: &Path, target: &str) -> anyhow::Result<(usize, usize)> {
    let conn = rusqlite::Connection::open(store)?;
    let mv: f64 = conn.query_row("SELECT avg(length(data)) FROM mv", [], |r| r.get(0))?;
    let cs: f64 = conn.query_row(
        "SELECT avg(length(data)) FROM cs WHERE ma = (SELECT id FROM ma WHERE name = ?1)",
        [target],
        |r| r.get(0),
    )?;
    Ok((mv.round() as usize, cs.round() as usize))
}

/// The store's own limit: objects per second a plain loop of prepared
/// statements writes into a fresh SQLite file in WAL mode (synchronous
/// NORMAL, as the store), in transactions of `batch` objects: per object
/// the metaverse object (`mv_bytes`), its join index entry, and the
/// target's connector-space object (`cs_bytes`, its pending export
/// flagged), with the store's tables and indexes.
///
/// `refs`: also the rows the references and groups need at the least,
/// one per value as issue 20 asks (a change of one member is one row):
/// per person its manager's row in `mv_val` (with the index that finds
/// an object's referrers), and the 1,001 groups (the metaverse object,
/// its join key and the target's connector-space object), with, per
/// membership, the metaverse value row and the target's value row of its
/// pending export. The objects counted are then N + 1,001, as the sync
/// with references counts them: the rate the store allows that sync.
pub fn raw_store_rate(
    dir: &Path,
    objects: u64,
    batch: u64,
    (mv_bytes, cs_bytes): (usize, usize),
    refs: bool,
) -> anyhow::Result<f64> {
    let path = dir.join(if refs { "raw-refs.db" } else { "raw.db" });
    let _ = std::fs::remove_file(&path);
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE cs (id INTEGER PRIMARY KEY, ma INTEGER NOT NULL, anchor TEXT NOT NULL,
           mv_id INTEGER, has_pi INTEGER NOT NULL DEFAULT 0, has_pe INTEGER NOT NULL DEFAULT 0,
           has_ue INTEGER NOT NULL DEFAULT 0, has_err INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL);
         CREATE UNIQUE INDEX cs_anchor ON cs (ma, anchor);
         CREATE INDEX cs_ma ON cs (ma);
         CREATE INDEX cs_pending_export ON cs (ma) WHERE has_pe = 1;
         CREATE INDEX cs_mv ON cs (mv_id) WHERE mv_id IS NOT NULL;
         CREATE TABLE mv (id INTEGER PRIMARY KEY, type TEXT NOT NULL, data BLOB NOT NULL);
         CREATE TABLE mv_key (k INTEGER NOT NULL, value TEXT NOT NULL, mv_id INTEGER NOT NULL,
           PRIMARY KEY (k, value, mv_id)) WITHOUT ROWID;
         CREATE TABLE cs_val (cs_id INTEGER NOT NULL, attr INTEGER NOT NULL, value BLOB NOT NULL,
           PRIMARY KEY (cs_id, attr, value)) WITHOUT ROWID;
         CREATE TABLE mv_val (mv_id INTEGER NOT NULL, attr INTEGER NOT NULL, value BLOB NOT NULL,
           PRIMARY KEY (mv_id, attr, value)) WITHOUT ROWID;
         CREATE INDEX mv_val_value ON mv_val (attr, value);",
    )?;
    let mv_body = vec![0x5a_u8; mv_bytes];
    let cs_body = vec![0xa5_u8; cs_bytes];
    // A reference value as the store keeps it: a tag and an id.
    let value = |id: u64| {
        let mut v = vec![0x07_u8];
        v.extend_from_slice(&id.to_be_bytes());
        v
    };
    let members = |g: u64| -> Vec<u64> {
        if g == GROUPS {
            (0..objects).collect()
        } else {
            let per = MEMBERSHIPS / GROUPS;
            (g * per..(g + 1) * per)
                .map(|m| m % objects.max(1))
                .collect()
        }
    };
    let started = Instant::now();
    let mut i = 0u64;
    while i < objects {
        let tx = conn.transaction()?;
        {
            let mut mv =
                tx.prepare_cached("INSERT INTO mv (id, type, data) VALUES (?1, 'person', ?2)")?;
            let mut key =
                tx.prepare_cached("INSERT INTO mv_key (k, value, mv_id) VALUES (1, ?1, ?2)")?;
            let mut cs = tx.prepare_cached(
                "INSERT INTO cs (id, ma, anchor, mv_id, has_pe, data) VALUES (?1, 2, ?2, ?3, 1, ?4)",
            )?;
            let mut manager =
                tx.prepare_cached("INSERT INTO mv_val (mv_id, attr, value) VALUES (?1, -1, ?2)")?;
            let end = (i + batch).min(objects);
            for n in i..end {
                let id = n as i64 + 1;
                let anchor = format!("e{n:08}");
                mv.execute(rusqlite::params![id, mv_body])?;
                key.execute(rusqlite::params![anchor, id])?;
                cs.execute(rusqlite::params![id, anchor, id, cs_body])?;
                if refs && n >= 10 {
                    manager.execute(rusqlite::params![id, value(n / 10 + 1)])?;
                }
            }
            i = end;
        }
        tx.commit()?;
    }
    if refs {
        // The groups, a transaction per `batch` memberships at most.
        let mut g = 0u64;
        while g <= GROUPS {
            let tx = conn.transaction()?;
            {
                let mut mv =
                    tx.prepare_cached("INSERT INTO mv (id, type, data) VALUES (?1, 'group', ?2)")?;
                let mut key =
                    tx.prepare_cached("INSERT INTO mv_key (k, value, mv_id) VALUES (2, ?1, ?2)")?;
                let mut cs = tx.prepare_cached(
                    "INSERT INTO cs (id, ma, anchor, mv_id, has_pe, data) VALUES (?1, 3, ?2, ?3, 1, ?4)",
                )?;
                let mut mv_val = tx
                    .prepare_cached("INSERT INTO mv_val (mv_id, attr, value) VALUES (?1, 2, ?2)")?;
                let mut cs_val = tx
                    .prepare_cached("INSERT INTO cs_val (cs_id, attr, value) VALUES (?1, 3, ?2)")?;
                let mut written = 0u64;
                while g <= GROUPS && written < batch {
                    let id = (objects + g) as i64 + 1;
                    let anchor = format!("G{g:05}");
                    mv.execute(rusqlite::params![id, mv_body])?;
                    key.execute(rusqlite::params![anchor, id])?;
                    cs.execute(rusqlite::params![id, anchor, id, cs_body])?;
                    for m in members(g) {
                        mv_val.execute(rusqlite::params![id, value(m + 1)])?;
                        // The target's value: the member's spelling there.
                        cs_val.execute(rusqlite::params![id, format!("user{m:08}")])?;
                        written += 1;
                    }
                    g += 1;
                }
            }
            tx.commit()?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let counted = if refs { objects + GROUPS + 1 } else { objects };
    Ok(counted as f64 / secs)
}
