//! Per-object changes in the run history: a manager change and a
//! one-member change of a group of 20,000 are recorded as one value each,
//! by the imports that stage them and by the exports that send them; a
//! target that takes whole lists gets a record of 100 values and the
//! count; a step records at most `MAX_RECORDED_CHANGES`, its counters
//! count them all.

use crate::fixture::*;
use autosync_engine::MAX_RECORDED_CHANGES;
use autosync_model::{AttrChange, ChangeKind, RunChange, RunRecord, RunStatus, Value};
use autosync_store::Store;

const CONFIG: &str = r#"
[metaverse.person]
attributes = ["employeeId", "name", "manager"]
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
  { mv_type = "person", mv = "name", from = "name" },
  { mv_type = "person", mv = "manager", from = "manager_id" },
]
staging_thresholds = { deletes = "off" }

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
connector = { type = "sqlite", path = "app.db", table = "users", create_table = true, columns = ["employee_id", "name", "manager"] }
object_types = [{ name = "user", anchor = "employee_id", references = { manager = "anchor" } }]
join = [{ mv_type = "person", on = [{ cs = "employee_id", mv = "employeeId" }] }]
export_flows = [
  { mv_type = "person", cs = "name", from = "name" },
  { mv_type = "person", cs = "manager", from = "manager" },
]
provisioning = [{ mv_type = "person", anchor = "employeeId" }]

[[ma]]
name = "dst"
connector = { type = "sqlite", path = "app.db", table = "groups", create_table = true, columns = ["group_id"], child_tables = { members = { table = "group_members", key = "group_id", value = "employee_id" } } }
object_types = [{ name = "group", anchor = "group_id", references = { members = { by = "anchor", ma = "app" } } }]
join = [{ mv_type = "group", on = [{ cs = "group_id", mv = "groupId" }] }]
export_flows = [{ mv_type = "group", cs = "members", from = "members" }]
provisioning = [{ mv_type = "group", anchor = "groupId" }]

[[ma]]
name = "file"
connector = { type = "jsonl", path = "groups.jsonl" }
object_types = [{ name = "group", anchor = "group_id", references = { members = { by = "anchor", ma = "app" } } }]
join = [{ mv_type = "group", on = [{ cs = "group_id", mv = "groupId" }] }]
export_flows = [{ mv_type = "group", cs = "members", from = "members" }]
provisioning = [{ mv_type = "group", anchor = "groupId" }]
"#;

fn person(i: u64) -> String {
    format!("E{i:06}")
}

/// HR with people `0..people`, person 5 managed by person 4.
fn hr(people: u64, manager_of_5: u64) -> String {
    let mut hr = String::from("employee_id,name,manager_id\n");
    for i in 0..people {
        let manager = if i == 5 {
            person(manager_of_5)
        } else {
            String::new()
        };
        hr.push_str(&format!("{},Person {i},{manager}\n", person(i)));
    }
    hr
}

/// People `0..people` in HR; group `G1` with members `0..members` in the
/// source, its changelog filled by triggers.
fn world(people: u64, members: u64) -> World {
    let w = World::new(CONFIG, &[("hr.csv", &hr(people, 4)), ("groups.jsonl", "")]);
    let mut conn = rusqlite::Connection::open(w.path("src.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE groups (group_id TEXT PRIMARY KEY);
         CREATE TABLE group_members (group_id TEXT NOT NULL, member TEXT NOT NULL,
           UNIQUE (group_id, member));
         CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id TEXT NOT NULL,
           attr TEXT, member TEXT);
         CREATE TRIGGER member_added AFTER INSERT ON group_members BEGIN
           INSERT INTO changes (group_id, attr, member) VALUES (NEW.group_id, 'members', NEW.member); END;
         CREATE TRIGGER member_removed AFTER DELETE ON group_members BEGIN
           INSERT INTO changes (group_id, attr, member) VALUES (OLD.group_id, 'members', OLD.member); END;
         INSERT INTO groups (group_id) VALUES ('G1');",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..members {
        tx.execute(
            "INSERT INTO group_members (group_id, member) VALUES ('G1', ?1)",
            [person(i)],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    w
}

fn ok(w: &World, ma: &str, profile: &str) -> RunRecord {
    let r = w.run(ma, profile);
    assert!(
        matches!(r.status, RunStatus::Success | RunStatus::CompletedNoObjects),
        "{ma} {profile}: {r:#?}"
    );
    r
}

fn changes(w: &World, run: &RunRecord) -> Vec<RunChange> {
    w.store
        .read()
        .unwrap()
        .run_changes(run.id, 0, 100_000)
        .unwrap()
}

/// The one change of a run, with its one attribute.
fn one(w: &World, run: &RunRecord, object: &str, attr: &str) -> AttrChange {
    let all = changes(w, run);
    assert_eq!(all.len(), 1, "{} {}: {all:#?}", run.ma, run.profile);
    let c = &all[0];
    assert_eq!(
        (c.object.as_str(), c.kind),
        (object, ChangeKind::Update),
        "{c:#?}"
    );
    assert_eq!(
        c.attributes.keys().collect::<Vec<_>>(),
        [attr],
        "{} {}: {c:#?}",
        run.ma,
        run.profile
    );
    c.attributes[attr].clone()
}

fn v(i: u64) -> Value {
    Value::from(person(i))
}

#[test]
fn a_manager_change_and_a_one_member_change_are_recorded_as_one_value_each() {
    const N: u64 = 20_000;
    let w = world(N + 10, N);
    ok(&w, "src", "full-import");
    // The first import of N + 10 people: the history keeps the cap, the
    // counters count them all.
    let first = ok(&w, "hr", "full-import");
    assert_eq!(import_counters(&first).stage_add, N + 10);
    assert_eq!(first.steps[0].changed_objects(), N + 10);
    let recorded = w.store.read().unwrap().run_change_count(first.id).unwrap();
    assert_eq!(recorded, MAX_RECORDED_CHANGES);
    let sample = &w.store.read().unwrap().run_changes(first.id, 5, 1).unwrap()[0];
    assert_eq!(
        (sample.object.as_str(), sample.kind),
        ("E000005", ChangeKind::Add)
    );
    assert_eq!(
        sample.attributes["manager_id"],
        AttrChange::replace(Some(&v(4)), None)
    );
    ok(&w, "hr", "delta-sync");
    ok(&w, "app", "export");
    ok(&w, "app", "full-import");
    ok(&w, "app", "delta-sync");
    ok(&w, "src", "delta-sync");
    for ma in ["dst", "file"] {
        let r = ok(&w, ma, "export");
        // The group's add: its 20,000 members kept as the first 100 and
        // the count, a small record.
        let all = changes(&w, &r);
        let g1 = all.iter().find(|c| c.object == "G1").unwrap();
        assert_eq!(g1.kind, ChangeKind::Add);
        let AttrChange::Replace {
            new: Some(Value::Multi(shown)),
            new_total,
            ..
        } = &g1.attributes["members"]
        else {
            panic!("{ma}: not a whole list: {g1:#?}");
        };
        assert_eq!((shown.len(), *new_total), (100, N), "{ma}");
        let size = serde_json::to_string(g1).unwrap().len();
        assert!(size < 4_000, "{ma}: a record of {size} bytes");
        ok(&w, ma, "full-import");
        ok(&w, ma, "delta-sync");
    }

    // Person 5 gets person 1 as manager; person N + 1 joins the group.
    w.write("hr.csv", &hr(N + 10, 1));
    rusqlite::Connection::open(w.path("src.db"))
        .unwrap()
        .execute(
            "INSERT INTO group_members (group_id, member) VALUES ('G1', ?1)",
            [person(N + 1)],
        )
        .unwrap();
    let manager = AttrChange::replace(Some(&v(1)), Some(&v(4)));
    let member = AttrChange::values(&[v(N + 1)], &[]);

    let r = ok(&w, "hr", "full-import");
    assert_eq!(one(&w, &r, "E000005", "manager_id"), manager);
    let r = ok(&w, "src", "delta-import");
    assert_eq!(one(&w, &r, "G1", "members"), member);
    ok(&w, "hr", "delta-sync");
    ok(&w, "src", "delta-sync");

    // The exports: the manager as the app's anchor, old and new; the
    // member as one value to the table that takes values.
    let r = ok(&w, "app", "export");
    assert_eq!(one(&w, &r, "E000005", "manager"), manager);
    let r = ok(&w, "dst", "export");
    assert_eq!(one(&w, &r, "G1", "members"), member);
    // A file takes whole lists: it was sent the whole list, recorded as
    // the one value added and the size of what was sent.
    let r = ok(&w, "file", "export");
    let AttrChange::Values {
        add,
        remove,
        sent_whole,
        ..
    } = one(&w, &r, "G1", "members")
    else {
        panic!("not values");
    };
    assert_eq!(add, [v(N + 1)]);
    assert!(remove.is_empty());
    assert_eq!(sent_whole, Some(N + 1));
}

#[test]
fn a_member_who_leaves_with_their_account_is_one_value_removed_from_the_group() {
    const N: u64 = 2_000;
    let w = world(N, N);
    for (ma, profile) in [
        ("src", "full-import"),
        ("hr", "full-import"),
        ("hr", "delta-sync"),
        ("app", "export"),
        ("app", "full-import"),
        ("app", "delta-sync"),
        ("src", "delta-sync"),
        ("dst", "export"),
        ("dst", "full-import"),
        ("dst", "delta-sync"),
    ] {
        ok(&w, ma, profile);
    }
    let rows = || -> i64 {
        rusqlite::Connection::open(w.path("app.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM group_members", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(), N as i64);

    // Person 7 leaves HR: the account goes, then the membership.
    let hr_now: String = hr(N, 4)
        .lines()
        .filter(|l| !l.starts_with(&person(7)))
        .map(|l| format!("{l}\n"))
        .collect();
    w.write("hr.csv", &hr_now);
    ok(&w, "hr", "full-import");
    ok(&w, "hr", "delta-sync");
    ok(&w, "app", "export");
    ok(&w, "app", "full-import");
    ok(&w, "app", "delta-sync");
    // One value removed is what is pending and sent, not the group's
    // whole list (a full read shows pending values whole: the export's
    // counters and history tell what was pending).
    let r = ok(&w, "dst", "export");
    let c = export_counters(&r);
    assert_eq!((c.updates, c.values), (1, 1), "{c:?}");
    assert_eq!(
        one(&w, &r, "G1", "members"),
        AttrChange::values(&[], &[v(7)])
    );
    assert_eq!(rows(), N as i64 - 1);
    ok(&w, "dst", "full-import");
    ok(&w, "dst", "delta-sync");
    assert!(w.cs("dst", "G1").unwrap().pending_export.is_none());
}

/// The group's export to `ma` (after the syncs), then its confirmation.
fn export_and_confirm(w: &World, ma: &str) -> RunRecord {
    let r = ok(w, ma, "export");
    ok(w, ma, "full-import");
    ok(w, ma, "delta-sync");
    r
}

#[test]
fn a_small_group_sent_whole_shows_the_values_added_and_removed_and_an_emptied_one_what_it_held() {
    let w = world(10, 3);
    for (ma, profile) in [
        ("src", "full-import"),
        ("hr", "full-import"),
        ("hr", "delta-sync"),
        ("app", "export"),
        ("app", "full-import"),
        ("app", "delta-sync"),
        ("src", "delta-sync"),
    ] {
        ok(&w, ma, profile);
    }
    export_and_confirm(&w, "dst");
    export_and_confirm(&w, "file");
    let src = rusqlite::Connection::open(w.path("src.db")).unwrap();
    // Two of three members change: more than a few, the whole list is
    // staged; what the history shows is what changed in it.
    src.execute_batch(
        "DELETE FROM group_members WHERE member = 'E000000';
         INSERT INTO group_members (group_id, member) VALUES ('G1', 'E000007'), ('G1', 'E000008');",
    )
    .unwrap();
    ok(&w, "src", "delta-import");
    ok(&w, "src", "delta-sync");
    for ma in ["dst", "file"] {
        let r = export_and_confirm(&w, ma);
        assert_eq!(
            one(&w, &r, "G1", "members"),
            AttrChange::Values {
                add: vec![v(7), v(8)],
                remove: vec![v(0)],
                add_total: 0,
                remove_total: 0,
                // The table takes values; the file the whole list.
                sent_whole: (ma == "file").then_some(4),
            },
            "{ma}"
        );
    }
    // Every member leaves: what the group held, each value removed.
    src.execute("DELETE FROM group_members", []).unwrap();
    ok(&w, "src", "delta-import");
    ok(&w, "src", "delta-sync");
    for ma in ["dst", "file"] {
        let r = export_and_confirm(&w, ma);
        let AttrChange::Values {
            add,
            mut remove,
            sent_whole,
            ..
        } = one(&w, &r, "G1", "members")
        else {
            panic!("{ma}: not values");
        };
        remove.sort_by_key(Value::to_text);
        assert!(add.is_empty(), "{ma}");
        assert_eq!(remove, [v(1), v(2), v(7), v(8)], "{ma}");
        assert_eq!(sent_whole, Some(0), "{ma}");
    }
}
