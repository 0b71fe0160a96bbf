//! What the crash test compares with the uninterrupted run: the end state
//! (the store's metaverse and connector spaces, every MA's watermark, every
//! table of the application database, the directory file) and the audit of
//! every write the application table received.
//!
//! Left out of the end state, because they legitimately differ between a
//! run that crashed and one that did not:
//! - store-assigned ids (`id` of CS and MV objects, the `mv_id` a connector
//!   points to, `run_id` of a kept error): ids come from sequences that a
//!   killed process and its re-run advance differently; a connector is
//!   instead tied to the MV object it joins by that object's connectors
//!   (`ma:anchor` of every CS object joined to it), which is what identifies
//!   a person across runs;
//! - the modification time inside a file watermark
//!   (`xxh3:<hash>:<size>:<mtime ns>`): it is informational (an import
//!   compares size and hash) and each test folder writes its files at its
//!   own moments; hash and size are compared;
//! - the run history and the store's `meta` (a crashed run stays in the
//!   history and its lease in `meta`, which is what a crash leaves).

use super::super::support::Workdir;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The application table's columns (the quickstart's `app` MA writes them all).
pub const USER_COLUMNS: [&str; 7] = [
    "employee_id",
    "username",
    "display_name",
    "email",
    "department",
    "title",
    "manager",
];

/// The application table, and triggers that record every write to it in
/// `audit_write` (the database's own record of what the connector did):
/// the operation, the object, and the row before and after it (all columns,
/// as a JSON array that keeps SQLite's types).
pub fn users_ddl() -> String {
    let image = |row: &str| {
        let cols: Vec<String> = USER_COLUMNS.iter().map(|c| format!("{row}.{c}")).collect();
        format!("json_array({})", cols.join(", "))
    };
    let (old, new) = (image("OLD"), image("NEW"));
    format!(
        "CREATE TABLE users (employee_id TEXT PRIMARY KEY, username TEXT, display_name TEXT,
           email TEXT, department TEXT, title TEXT, manager TEXT);
         CREATE TABLE audit_write (seq INTEGER PRIMARY KEY, op TEXT NOT NULL,
           employee_id TEXT NOT NULL, old TEXT, new TEXT);
         CREATE TRIGGER users_insert AFTER INSERT ON users BEGIN
           INSERT INTO audit_write (op, employee_id, new) VALUES ('insert', NEW.employee_id, {new});
         END;
         CREATE TRIGGER users_update AFTER UPDATE ON users BEGIN
           INSERT INTO audit_write (op, employee_id, old, new)
             VALUES ('update', NEW.employee_id, {old}, {new});
         END;
         CREATE TRIGGER users_delete AFTER DELETE ON users BEGIN
           INSERT INTO audit_write (op, employee_id, old) VALUES ('delete', OLD.employee_id, {old});
         END;"
    )
}

/// Replace every reference (`{"ref": id}`) in `v` by the referred
/// object's key.
fn refs_by_key(v: &mut Value, key: &dyn Fn(i64) -> Value) {
    match v {
        Value::Object(m) => {
            if m.len() == 1
                && let Some(id) = m.get("ref").and_then(Value::as_i64)
            {
                m.insert("ref".into(), key(id));
                return;
            }
            for x in m.values_mut() {
                refs_by_key(x, key);
            }
        }
        Value::Array(a) => {
            for x in a {
                refs_by_key(x, key);
            }
        }
        _ => {}
    }
}

/// Everything that must converge, with store-assigned ids replaced by
/// stable keys (see the module comment for what is left out and why).
pub fn end_state(w: &Workdir) -> Value {
    let (metaverse, spaces) = store_objects(w);
    json!({
        "metaverse": metaverse,
        "connector_spaces": spaces,
        "watermarks": watermarks(w.path()),
        "app_database": app_database(w.path()),
        "directory_file": std::fs::read_to_string(w.path().join("data/directory.jsonl")).unwrap(),
    })
}

fn cli_json(w: &Workdir, args: &[&str]) -> Vec<Value> {
    let text = w.expect(args, 0);
    match serde_json::from_str(&text).unwrap() {
        Value::Array(a) => a,
        other => panic!("autosync {args:?} did not print an array: {other}"),
    }
}

/// The metaverse (each object keyed by its connectors) and the connector
/// space of every MA, as `autosync mv --json` and `cs MA --json` print
/// them (every field of the objects), without store-assigned ids.
fn store_objects(w: &Workdir) -> (Value, Value) {
    let mut spaces: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut joined: HashMap<i64, Vec<String>> = HashMap::new();
    for ma in ["hr", "groups", "app", "app-groups", "directory"] {
        let objects = cli_json(w, &["cs", ma, "--json", "--limit", "1000000"]);
        for o in &objects {
            if let Some(id) = o["connection"]["mv_id"].as_i64() {
                let anchor = o["anchor"].as_str().unwrap();
                joined.entry(id).or_default().push(format!("{ma}:{anchor}"));
            }
        }
        spaces.insert(ma, objects);
    }
    for v in joined.values_mut() {
        v.sort();
    }
    let key = |id: i64| -> Value {
        joined
            .get(&id)
            .map_or_else(|| json!("(no connector)"), |v| json!(v.join(" ")))
    };
    let mut metaverse: Vec<Value> = cli_json(w, &["mv", "--json", "--limit", "1000000"])
        .into_iter()
        .map(|mut o| {
            let id = o["id"].as_i64().unwrap();
            let m = o.as_object_mut().unwrap();
            m.remove("id");
            m.insert("connectors".into(), key(id));
            // References hold ids too: each stands for its object's key.
            refs_by_key(&mut o, &key);
            o
        })
        .collect();
    metaverse.sort_by_key(|o| o.to_string());
    let mut cs = serde_json::Map::new();
    for (ma, objects) in spaces {
        let mut objects: Vec<Value> = objects
            .into_iter()
            .map(|mut o| {
                let m = o.as_object_mut().unwrap();
                m.remove("id");
                if let Some(id) = m["connection"].get("mv_id").and_then(Value::as_i64) {
                    let c = m["connection"].as_object_mut().unwrap();
                    c.remove("mv_id");
                    c.insert("mv".into(), key(id));
                }
                if let Some(e) = m.get_mut("error").and_then(Value::as_object_mut) {
                    e.remove("run_id");
                }
                o
            })
            .collect();
        objects.sort_by_key(|o| o.to_string());
        cs.insert(ma.into(), Value::Array(objects));
    }
    (Value::Array(metaverse), Value::Object(cs))
}

/// The store's state after one run, cheap enough to take after every run:
/// every MA's watermark, and one line per connector-space object (MA,
/// anchor, whether it holds a pending import, a pending export, an
/// unconfirmed export, an error, and whether it is joined) and the number
/// of metaverse objects. Read from the store's tables (schema version 4):
/// after a crashed run is run again, the store must be where the
/// uninterrupted run left it, not only at the end (a later full import can
/// hide an import that skipped changes behind a watermark saved too early).
pub fn after_run(dir: &Path) -> Vec<String> {
    let store = rusqlite::Connection::open(dir.join("state/autosync.db")).unwrap();
    let mut lines: Vec<String> = watermarks(dir)
        .as_object()
        .unwrap()
        .iter()
        .map(|(ma, v)| format!("watermark {ma} {v}"))
        .collect();
    let mut stmt = store
        .prepare(
            "SELECT m.name, c.anchor, c.has_pi, c.has_pe, c.has_ue, c.has_err, c.mv_id IS NOT NULL
             FROM cs c JOIN ma m ON m.id = c.ma ORDER BY m.name, c.anchor",
        )
        .unwrap();
    let objects = stmt
        .query_map([], |r| {
            let flag = |i: usize, name: &'static str| -> rusqlite::Result<&'static str> {
                Ok(if r.get::<_, i64>(i)? != 0 { name } else { "-" })
            };
            Ok(format!(
                "cs {} {} {} {} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                flag(2, "pending-import")?,
                flag(3, "pending-export")?,
                flag(4, "unconfirmed-export")?,
                flag(5, "error")?,
                flag(6, "joined")?,
            ))
        })
        .unwrap()
        .map(Result::unwrap);
    lines.extend(objects);
    let mv: i64 = store
        .query_row("SELECT count(*) FROM mv", [], |r| r.get(0))
        .unwrap();
    lines.push(format!("metaverse objects {mv}"));
    lines
}

/// Every MA's watermark as the store holds it, a file fingerprint without
/// its modification time (`xxh3:<hash>:<size>`).
fn watermarks(dir: &Path) -> Value {
    let store = rusqlite::Connection::open(dir.join("state/autosync.db")).unwrap();
    let mut stmt = store
        .prepare("SELECT ma, value FROM watermark ORDER BY ma")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap);
    let mut map = serde_json::Map::new();
    for (ma, value) in rows {
        let value = match value
            .strip_prefix("xxh3:")
            .map(|v| v.split(':').collect::<Vec<_>>())
        {
            Some(parts) if parts.len() == 3 => format!("xxh3:{}:{}", parts[0], parts[1]),
            _ => value,
        };
        map.insert(ma, Value::String(value));
    }
    Value::Object(map)
}

fn sql_json(v: Sql) -> Value {
    match v {
        Sql::Null => Value::Null,
        Sql::Integer(i) => json!({ "integer": i }),
        Sql::Real(f) => json!({ "real": f }),
        Sql::Text(s) => Value::String(s),
        Sql::Blob(b) => json!({ "blob": b }),
    }
}

/// The application database whole: its schema, and every row (every
/// column, with its SQLite type) of every table but the audit's own.
fn app_database(dir: &Path) -> Value {
    let conn = rusqlite::Connection::open(dir.join("data/app.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .unwrap();
    let schema: Vec<(String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut tables = serde_json::Map::new();
    for (kind, name, _) in &schema {
        if kind != "table" || name == "audit_write" {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))
            .unwrap();
        let width = stmt.column_count();
        let mut rows: Vec<Value> = stmt
            .query_map([], |r| {
                (0..width)
                    .map(|i| r.get::<_, Sql>(i).map(sql_json))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .map(|r| Value::Array(r.unwrap()))
            .collect();
        rows.sort_by_key(|r| r.to_string());
        tables.insert(name.clone(), Value::Array(rows));
    }
    json!({ "schema": schema, "rows": tables })
}

/// One write to the application table as its trigger recorded it: the
/// operation and the row before and after (JSON arrays of every column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub op: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl Write {
    /// An update that left the row as it was: what re-sending a change the
    /// target already holds does (an add of an existing row updates it in
    /// place, an update sets the same values again).
    fn changed_nothing(&self) -> bool {
        self.op == "update" && self.old == self.new
    }
}

/// The audit of the application table, per object (employee id).
#[derive(Debug, Default, PartialEq)]
pub struct Audit {
    /// The writes that changed the row, in the order they happened.
    pub changes: BTreeMap<String, Vec<Write>>,
    /// How many writes left the row as it was.
    pub unchanged: BTreeMap<String, usize>,
}

impl Audit {
    pub fn read(dir: &Path) -> Audit {
        let conn = rusqlite::Connection::open(dir.join("data/app.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT employee_id, op, old, new FROM audit_write ORDER BY seq")
            .unwrap();
        let writes = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Write {
                        op: r.get(1)?,
                        old: r.get(2)?,
                        new: r.get(3)?,
                    },
                ))
            })
            .unwrap()
            .map(Result::unwrap);
        let mut audit = Audit::default();
        for (object, write) in writes {
            if write.changed_nothing() {
                *audit.unchanged.entry(object).or_default() += 1;
            } else {
                audit.changes.entry(object).or_default().push(write);
            }
        }
        audit
    }

    /// How many writes of each operation changed a row.
    pub fn count(&self, op: &str) -> usize {
        self.changes
            .values()
            .flatten()
            .filter(|w| w.op == op)
            .count()
    }

    /// Check these writes against those of the uninterrupted run
    /// (`expected`): every object received the same changes in the same
    /// order, and at most `replays` more writes that changed nothing. Returns
    /// how many such replays there were.
    pub fn check_against(&self, expected: &Audit, replays: usize) -> Result<usize, String> {
        let none = Vec::new();
        for object in expected.changes.keys().chain(self.changes.keys()) {
            let (want, got) = (
                expected.changes.get(object).unwrap_or(&none),
                self.changes.get(object).unwrap_or(&none),
            );
            if want != got {
                return Err(format!(
                    "the application row {object} received other changes than in the \
                     uninterrupted run (a change applied twice, lost or out of order)\n  \
                     expected: {want:#?}\n  got: {got:#?}"
                ));
            }
        }
        let mut extra = 0;
        for (object, n) in &self.unchanged {
            let before = expected.unchanged.get(object).copied().unwrap_or(0);
            if *n > before + replays {
                return Err(format!(
                    "the application row {object} was written {n} times without a change \
                     (the uninterrupted run: {before}; a crash may replay it {replays} time(s))"
                ));
            }
            extra += n.saturating_sub(before);
        }
        Ok(extra)
    }
}

/// Where two JSON values first differ, as a path and both values.
pub fn first_difference(a: &Value, b: &Value) -> String {
    fn walk(a: &Value, b: &Value, path: &mut String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys()) {
                    let len = path.len();
                    path.push_str(&format!(".{k}"));
                    let found = match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => walk(u, v, path),
                        (u, v) => Some(format!(
                            "at {path}:\n  expected: {}\n  got:      {}",
                            u.map_or("(absent)".into(), shorten),
                            v.map_or("(absent)".into(), shorten)
                        )),
                    };
                    if found.is_some() {
                        return found;
                    }
                    path.truncate(len);
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                for i in 0..x.len().max(y.len()) {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    let found = match (x.get(i), y.get(i)) {
                        (Some(u), Some(v)) => walk(u, v, path),
                        (u, v) => Some(format!(
                            "at {path}:\n  expected: {}\n  got:      {}",
                            u.map_or("(absent)".into(), shorten),
                            v.map_or("(absent)".into(), shorten)
                        )),
                    };
                    if found.is_some() {
                        return found;
                    }
                    path.truncate(len);
                }
                None
            }
            _ if a == b => None,
            _ => Some(format!(
                "at {path}:\n  expected: {}\n  got:      {}",
                shorten(a),
                shorten(b)
            )),
        }
    }
    walk(a, b, &mut String::from("$")).unwrap_or_else(|| "no difference".into())
}

fn shorten(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 2000 {
        s.truncate(2000);
        s.push_str("...");
    }
    s
}
