//! `cs`, `mv` and `history`: lookups of one object, pages with `--offset`,
//! `mv --filter` (attribute names checked, values compared ignoring case
//! or exactly, through the join index or not) and each MV object's
//! connectors. And `check --json` on every kind of invalid file.

use super::support::*;
use serde_json::Value;

/// Two MAs: `hr` projects people (joined by employeeId, and by email: so
/// `person.email` is indexed, `displayName` is not); `dir` provisions
/// accounts (`cn` is their DN).
const CONFIG: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "displayName", "email", "status"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [
  { on = [{ cs = "id", mv = "employeeId" }] },
  { on = [{ cs = "email", mv = "email" }] },
]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "displayName", expr = "first + ' ' + last" },
  { mv = "email", from = "email" },
  { mv = "status", from = "status" },
]

[[ma]]
name = "dir"
connector = { type = "jsonl", path = "dir.jsonl" }
object_types = [{ name = "account", anchor = "id", dn = "cn" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
export_flows = [
  { cs = "cn", from = "displayName" },
  { cs = "mail", from = "email" },
]
provisioning = [{ condition = "status == 'active'", anchor = "employeeId", dn = "displayName" }]
"#;

const PEOPLE: &str = "id,first,last,email,status
1,Ada,Lovelace,Ada@Example.com,active
2,Alan,Turing,alan@example.com,active
3,Grace,Hopper,Grace@Example.com,active
4,Linus,Torvalds,linus@example.com,terminated
5,Barbara,Liskov,barbara@example.com,active
";

/// Imported, synchronised and exported: 5 people, 4 accounts.
fn synced() -> Workdir {
    let w = Workdir::with_config(CONFIG);
    std::fs::write(w.path().join("hr.csv"), PEOPLE).unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    w.expect(&["run-profile", "dir", "export", "--no-progress"], 0);
    w.expect(&["run-profile", "dir", "full-import", "--no-progress"], 0);
    w
}

fn json(w: &Workdir, args: &[&str]) -> Vec<Value> {
    let v: Value = serde_json::from_str(&w.expect(args, 0)).unwrap();
    v.as_array().unwrap().clone()
}

fn stderr_of(w: &Workdir, args: &[&str], code: i32) -> String {
    let out = w.run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "autosync {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn names(objects: &[Value]) -> Vec<&str> {
    objects
        .iter()
        .map(|o| o["attributes"]["displayName"]["value"].as_str().unwrap())
        .collect()
}

#[test]
fn mv_filter_should_name_an_unknown_attribute_or_type_with_the_closest_one() {
    let w = synced();
    let err = stderr_of(&w, &["mv", "--filter", "emial=x"], 2);
    assert!(
        err.contains("no metaverse type has an attribute `emial` (did you mean `email`?)"),
        "{err}"
    );
    let err = stderr_of(&w, &["mv", "--type", "person", "--filter", "xyzzy=1"], 2);
    assert!(
        err.contains(
            "metaverse type `person` has no attribute `xyzzy` (its attributes: displayName, email, employeeId, status)"
        ),
        "{err}"
    );
    let err = stderr_of(&w, &["mv", "--type", "persno"], 2);
    assert!(
        err.contains("no metaverse type `persno` (did you mean `person`?)"),
        "{err}"
    );
    let err = stderr_of(&w, &["mv", "--case-sensitive"], 2);
    assert!(err.contains("--filter"), "{err}");
}

#[test]
fn mv_filter_should_ignore_case_unless_asked_indexed_or_not() {
    let w = synced();
    // `email` is indexed (a join rule reads it), `displayName` is not.
    let db = rusqlite::Connection::open(w.path().join("state/autosync.db")).unwrap();
    let indexed: Vec<String> = db
        .prepare("SELECT attr FROM mv_index WHERE type = 'person' ORDER BY attr")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(indexed, ["email", "employeeId"]);
    for t in [&["--type", "person"][..], &[][..]] {
        let with = |rest: &[&str]| {
            let mut args = vec!["mv", "--json"];
            args.extend_from_slice(t);
            args.extend_from_slice(rest);
            names(&json(&w, &args))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            with(&["--filter", "email=GRACE@example.COM"]),
            ["Grace Hopper"]
        );
        assert_eq!(
            with(&["--filter", "displayName=grace HOPPER"]),
            ["Grace Hopper"]
        );
        let exact = ["--case-sensitive", "--filter"];
        assert!(with(&[&exact[..], &["email=grace@example.com"]].concat()).is_empty());
        assert_eq!(
            with(&[&exact[..], &["email=Grace@Example.com"]].concat()),
            ["Grace Hopper"]
        );
        assert!(with(&[&exact[..], &["displayName=grace hopper"]].concat()).is_empty());
        assert_eq!(
            with(&[&exact[..], &["displayName=Grace Hopper"]].concat()),
            ["Grace Hopper"]
        );
    }
}

#[test]
fn mv_should_show_each_objects_connectors_in_text_and_json() {
    let w = synced();
    let grace = json(&w, &["mv", "--filter", "employeeId=3", "--json"]);
    let connectors = grace[0]["connectors"].as_array().unwrap();
    let by_ma = |ma: &str| connectors.iter().find(|c| c["ma"] == ma).unwrap();
    assert_eq!(connectors.len(), 2, "{grace:#?}");
    let hr = by_ma("hr");
    assert_eq!(
        (
            &hr["object_type"],
            &hr["anchor"],
            &hr["dn"],
            &hr["provisioned"]
        ),
        (&"person".into(), &"3".into(), &Value::Null, &false.into())
    );
    let dir = by_ma("dir");
    assert_eq!(
        (&dir["object_type"], &dir["anchor"], &dir["dn"]),
        (&"account".into(), &"3".into(), &"Grace Hopper".into())
    );
    assert_eq!(
        (&dir["provisioned"], &dir["present"]),
        (&true.into(), &true.into())
    );
    assert!(dir["cs_id"].as_i64().unwrap() > 0);
    let text = w.expect(&["mv", "--filter", "employeeId=3"], 0);
    let lines: Vec<&str> = text.lines().skip_while(|l| *l != "  connectors:").collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1].starts_with("    hr ")
            && lines[1].contains("anchor 3  ")
            && lines[1].ends_with("joined or projected"),
        "{text}"
    );
    assert!(
        lines[2].contains("anchor 3, dn Grace Hopper") && lines[2].ends_with("provisioned"),
        "{text}"
    );
    // A terminated person: projected, never provisioned.
    let linus = w.expect(&["mv", "--filter", "employeeId=4"], 0);
    assert_eq!(linus.matches("    hr ").count(), 1, "{linus}");
    assert!(!linus.contains("dir "), "{linus}");
}

#[test]
fn lookups_should_find_one_object_by_anchor_dn_or_id_and_say_when_none() {
    let w = synced();
    let one = json(&w, &["cs", "dir", "--anchor", "3", "--json"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["dn"], "Grace Hopper");
    let mv_id = one[0]["connection"]["mv_id"].as_i64().unwrap();
    // A DN compares ignoring case.
    let by_dn = json(&w, &["cs", "dir", "--dn", "grace HOPPER", "--json"]);
    assert_eq!(by_dn, one);
    let text = w.expect(&["cs", "dir", "--dn", "GRACE HOPPER"], 0);
    assert!(text.contains("Grace Hopper  account"), "{text}");
    // The MV object of a connector, and by id.
    let by_connector = json(&w, &["mv", "--connector", "dir", "--anchor", "3", "--json"]);
    assert_eq!(by_connector[0]["id"].as_i64(), Some(mv_id));
    let by_dn = json(
        &w,
        &["mv", "--connector", "dir", "--dn", "grace hopper", "--json"],
    );
    assert_eq!(by_dn, by_connector);
    let by_id = json(&w, &["mv", "--id", &mv_id.to_string(), "--json"]);
    assert_eq!(by_id, by_connector);
    // Nothing found: an empty answer (exit 0) that says what was looked for.
    assert!(json(&w, &["cs", "dir", "--anchor", "99", "--json"]).is_empty());
    let text = w.expect(&["cs", "dir", "--anchor", "99"], 0);
    assert_eq!(
        text,
        "no object with anchor `99` in the connector space of dir (4 objects)\n"
    );
    assert!(json(&w, &["mv", "--id", "999", "--json"]).is_empty());
    assert_eq!(
        w.expect(&["mv", "--id", "999"], 0),
        "no metaverse object 999\n"
    );
    let text = w.expect(&["mv", "--connector", "dir", "--anchor", "4"], 0);
    assert_eq!(
        text,
        "no object with anchor `4` in the connector space of dir\n"
    );
    // Names that do not exist are usage errors.
    let err = stderr_of(&w, &["mv", "--connector", "dri", "--anchor", "3"], 2);
    assert!(err.contains("did you mean `dir`?"), "{err}");
    let err = stderr_of(&w, &["cs", "dri", "--anchor", "3"], 2);
    assert!(err.contains("did you mean `dir`?"), "{err}");
    stderr_of(&w, &["mv", "--connector", "dir"], 2);
    stderr_of(&w, &["mv", "--anchor", "3"], 2);
    stderr_of(&w, &["cs", "dir", "--anchor", "3", "--offset", "1"], 2);
}

/// A disconnector (the `dir` account of someone HR does not know) is
/// found in the connector space but joins no MV object.
#[test]
fn mv_by_connector_should_say_when_the_object_is_a_disconnector() {
    let w = synced();
    let dir = std::fs::read_to_string(w.path().join("dir.jsonl")).unwrap();
    std::fs::write(
        w.path().join("dir.jsonl"),
        format!("{dir}{{\"id\":\"77\",\"cn\":\"Stranger\",\"mail\":\"s@x\"}}\n"),
    )
    .unwrap();
    w.expect(&["run-profile", "dir", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "dir", "full-sync", "--no-progress"], 0);
    let text = w.expect(&["mv", "--connector", "dir", "--anchor", "77"], 0);
    assert!(text.contains("is a disconnector"), "{text}");
    assert!(
        json(
            &w,
            &["mv", "--connector", "dir", "--anchor", "77", "--json"]
        )
        .is_empty()
    );
}

#[test]
fn offset_should_page_cs_mv_and_history_and_say_where_the_next_page_starts() {
    let w = synced();
    // Text: where the page is, and the next offset.
    let text = w.expect(&["cs", "hr", "--limit", "2", "--offset", "2"], 0);
    assert!(
        text.ends_with("showing objects 3-4 of 5; next: --offset 4\n"),
        "{text}"
    );
    let text = w.expect(&["mv", "--limit", "2", "--offset", "4"], 0);
    assert!(text.ends_with("showing objects 5-5 of 5\n"), "{text}");
    assert!(text.contains("person #5"), "{text}");
    let text = w.expect(&["mv", "--filter", "status=active", "--limit", "2"], 0);
    assert!(
        text.ends_with("showing objects 1-2; next: --offset 2\n"),
        "{text}"
    );
    let text = w.expect(&["history", "--limit", "1", "--offset", "1"], 0);
    assert!(
        text.ends_with("showing runs 2-2 of 4; next: --offset 2\n"),
        "{text}"
    );
    assert!(text.contains(" export "), "{text}");
    let text = w.expect(&["cs", "hr", "--offset", "50"], 0);
    assert!(text.starts_with("hr: 5 objects, "), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.ends_with("\nno objects after the first 50 of 5\n"),
        "{text}"
    );
    let text = w.expect(&["history", "--offset", "10"], 0);
    assert_eq!(text, "no runs after the first 10 of 4\n");
    // The whole listing on one page: no line about pages.
    let text = w.expect(&["history"], 0);
    assert!(!text.contains("showing"), "{text}");
    // JSON: arrays whose concatenation is the whole listing.
    for (args, total) in [
        (&["cs", "hr"][..], 5),
        (&["mv"][..], 5),
        (&["mv", "--filter", "status=active"][..], 4),
        (&["history"][..], 4),
    ] {
        let whole = json(&w, &[args, &["--json"]].concat());
        assert_eq!(whole.len(), total, "{args:?}");
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let o = offset.to_string();
            let page = json(
                &w,
                &[args, &["--json", "--limit", "2", "--offset", &o]].concat(),
            );
            if page.is_empty() {
                break;
            }
            offset += page.len();
            paged.extend(page);
        }
        assert_eq!(paged, whole, "{args:?}");
    }
}

#[test]
fn check_json_should_give_every_kind_of_invalid_file_as_diagnostics() {
    let w = Workdir::with_config("[store\npath = 1\n");
    let invalid = |w: &Workdir, args: &[&str]| -> Value {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["valid"], false, "{v:#}");
        assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v:#}");
        v
    };
    // A TOML syntax error, with its line and column.
    let v = invalid(&w, &["check", "--json"]);
    let error = v["errors"][0].as_str().unwrap();
    assert!(
        error.contains("autosync.toml:1:7: invalid TOML: unclosed table"),
        "{error}"
    );
    // A file that does not exist.
    let gone = Workdir::with_config("");
    std::fs::remove_file(gone.config()).unwrap();
    let v = invalid(&gone, &["check", "--json"]);
    let error = v["errors"][0].as_str().unwrap();
    assert!(
        error.contains("autosync.toml: cannot read the configuration file"),
        "{error}"
    );
    // A validation error: an import flow to an attribute the type lacks.
    let w = Workdir::with_config(&CONFIG.replace(
        r#"{ mv = "status", from = "status" }"#,
        r#"{ mv = "statsu", from = "status" }"#,
    ));
    std::fs::write(w.path().join("hr.csv"), PEOPLE).unwrap();
    let v = invalid(&w, &["check", "--json"]);
    let error = v["errors"][0].as_str().unwrap();
    assert!(
        error.contains("`statsu` is not an attribute of metaverse type `person`")
            && error.contains("did you mean `status`?"),
        "{error}"
    );
}

#[test]
fn a_listing_that_matches_nothing_should_say_so_not_print_an_empty_table() {
    let w = Workdir::quickstart();
    w.cycle();
    let out = w.expect(&["cs", "app", "--unconfirmed-export"], 0);
    assert!(out.contains("no objects match"), "{out}");
    assert!(!out.contains("ANCHOR"), "{out}");
    let all = w.expect(&["cs", "app", "--limit", "1"], 0);
    assert!(all.contains("ANCHOR"), "{all}");
}

/// The commands that only read never create the store, nor its folder: a
/// wrong `[store] path` (a typo, a configuration copied to a new host)
/// is said on stderr, with the store's absolute path, and the answer is
/// empty (valid JSON with `--json`); `status` still lists the MAs.
#[test]
fn reading_commands_on_a_missing_store_should_create_nothing_and_say_so() {
    let w = Workdir::with_config(CONFIG);
    let store = w.path().join("state/autosync.db");
    let note = format!(
        "note: there is no store at {} yet: nothing has run with this configuration",
        store.display()
    );
    let runs: [&[&str]; 10] = [
        &["status"],
        &["status", "--json"],
        &["history"],
        &["history", "--json"],
        &["cs", "hr"],
        &["cs", "hr", "--json"],
        &["cs", "hr", "--anchor", "1"],
        &["mv"],
        &["mv", "--json"],
        &["mv", "--id", "1", "--json"],
    ];
    for args in runs {
        let out = w.run(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}\n{stdout}\n{stderr}");
        assert!(stderr.contains(&note), "{args:?}: {stderr}");
        assert!(stderr.contains("check `[store] path` in"), "{stderr}");
        assert_eq!(stderr.matches("note: there is no store").count(), 1);
        assert!(
            !w.path().join("state").exists(),
            "{args:?} made the store's folder"
        );
        if args.contains(&"--json") {
            let v: Value =
                serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{stdout}"));
            match args[0] {
                "status" => {
                    assert!(v["mas"]["hr"].is_object(), "{v}");
                    assert!(v["mas"]["dir"].is_object(), "{v}");
                    assert_eq!(v["service"], false, "{v}");
                }
                _ => assert_eq!(v, Value::Array(Vec::new()), "{args:?}"),
            }
        }
        if args == ["status"] {
            assert!(stdout.contains("hr") && stdout.contains("dir"), "{stdout}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["autosync.toml"]);
    // A command that runs something creates it, as ever.
    std::fs::write(w.path().join("hr.csv"), PEOPLE).unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    assert!(store.is_file());
    let err = stderr_of(&w, &["history"], 0);
    assert!(!err.contains("no store"), "{err}");
}

/// `hr` projects people with a manager (by employee id); `app`, an SQLite
/// table whose trigger refuses an address with `bad` in it, is given
/// accounts naming their manager by user name (the DN).
const HELD: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "email", "status", "manager", "uname"]
references = { manager = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id", references = { mgr = "anchor" } }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "email", from = "email" },
  { mv = "uname", from = "uname" },
  { mv = "status", from = "status" },
  { mv = "manager", from = "mgr" },
]

[[ma]]
name = "app"
connector = { type = "sqlite", path = "app.db", table = "users", columns = ["eid", "username", "email", "manager"] }
object_types = [{ name = "user", anchor = "eid", dn = "username", references = { manager = "dn" } }]
join = [{ on = [{ cs = "eid", mv = "employeeId" }] }]
export_flows = [
  { cs = "email", from = "email" },
  { cs = "manager", from = "manager" },
]
provisioning = [{ condition = "status == 'active'", anchor = "employeeId", dn = "uname" }]
"#;

/// A manager's add fails: the report is added without the manager, whose
/// user name the export holds back (it names no account). `cs
/// --unresolved` lists that value, naming the manager's account and why,
/// beside a reference to a terminated manager (no account, named by their
/// connector in `hr`), and counts both; once the add goes, the value is
/// sent and listed no more.
#[test]
fn cs_unresolved_should_list_a_value_held_at_export_because_its_add_failed() {
    let w = Workdir::with_config(HELD);
    std::fs::write(
        w.path().join("hr.csv"),
        "id,uname,email,status,mgr\n\
         E1,boss,bad@example.com,active,\n\
         E2,report,r@example.com,active,E1\n\
         E3,other,o@example.com,active,E9\n\
         E9,gone,g@example.com,terminated,\n",
    )
    .unwrap();
    let db = rusqlite::Connection::open(w.path().join("app.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE users (eid TEXT PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT, manager TEXT);
         CREATE TRIGGER users_bad BEFORE INSERT ON users WHEN NEW.email LIKE '%bad%'
           BEGIN SELECT RAISE(ABORT, 'bad email'); END;",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    let export = w.expect(&["run-profile", "app", "export", "--no-progress"], 1);
    assert!(export.contains("references-held 1"), "{export}");

    let text = w.expect(&["cs", "app", "--unresolved"], 0);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(", 2 with references held from export (waiting for the objects they name)"),
        "{text}"
    );
    let row = |anchor: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{anchor} ")) && l.contains("manager"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("E2"),
        [
            "E2 manager app/boss (anchor E1): its add failed (constraint-violation); the value is held from export until the add goes"
        ],
        "{text}"
    );
    let e3 = row("E3");
    assert!(
        e3.len() == 1 && e3[0].ends_with(": has no connector in app (its connector in hr: E9)"),
        "{text}"
    );
    // The plain listing counts them alike.
    let all = w.expect(&["cs", "app"], 0);
    assert_eq!(all.lines().next(), text.lines().next(), "{all}");

    let listed = json(&w, &["cs", "app", "--unresolved", "--json"]);
    let of = |anchor: &str| -> Vec<Value> {
        listed
            .iter()
            .find(|o| o["anchor"] == anchor)
            .map(|o| o["unresolved"].as_array().unwrap().clone())
            .unwrap_or_default()
    };
    assert_eq!(
        of("E2"),
        [serde_json::json!({
            "direction": "held", "attribute": "manager", "value": "boss",
            "ma": "app", "anchor": "E1", "dn": "boss",
            "reason": "add-failed", "error_type": "constraint-violation",
        })],
        "{listed:#?}"
    );
    let e3 = of("E3");
    assert_eq!(e3.len(), 1, "{listed:#?}");
    assert_eq!(e3[0]["reason"], "no-connector");
    assert_eq!(
        e3[0]["known_as"],
        serde_json::json!({ "ma": "hr", "anchor": "E9", "dn": "E9" })
    );

    // The address is let through: the add goes, then the held manager.
    db.execute_batch("DROP TRIGGER users_bad;").unwrap();
    w.expect(&["run-profile", "app", "export", "--no-progress"], 0);
    let manager: Option<String> = db
        .query_row("SELECT manager FROM users WHERE eid = 'E2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(manager.as_deref(), Some("boss"));
    let listed = json(&w, &["cs", "app", "--unresolved", "--json"]);
    assert_eq!(
        listed
            .iter()
            .map(|o| o["anchor"].clone())
            .collect::<Vec<_>>(),
        ["E3"],
        "{listed:#?}"
    );
}

/// A manager's DN names a group, which is there and joined: the sync
/// fails with `reference-type-mismatch`. `cs --unresolved` says so (not
/// that the group is not there), as the ERROR column does.
#[test]
fn cs_unresolved_should_say_a_reference_names_an_object_of_another_type() {
    let w = Workdir::with_config(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["pid", "manager"]
references = { manager = "person" }

[metaverse.group]
attributes = ["gid"]

[[ma]]
name = "src"
connector = { type = "jsonl", path = "src.jsonl", object_type_column = "kind" }
object_types = [
  { name = "user", anchor = "id", dn = "dn", references = { manager = { by = "dn", object_type = "user" } } },
  { name = "group", anchor = "id", dn = "dn" },
]
projection = [{ object_type = "user", mv_type = "person" }, { object_type = "group", mv_type = "group" }]
import_flows = [
  { object_type = "user", mv_type = "person", mv = "pid", from = "id" },
  { object_type = "user", mv_type = "person", mv = "manager", from = "manager" },
  { object_type = "group", mv_type = "group", mv = "gid", from = "id" },
]
"#,
    );
    // The group comes after the person naming it.
    std::fs::write(
        w.path().join("src.jsonl"),
        r#"{"kind":"user","id":"1","dn":"cn=Ann,ou=p"}
{"kind":"user","id":"6","dn":"cn=Eve,ou=p","manager":"cn=Team,ou=g"}
{"kind":"group","id":"g1","dn":"cn=Team,ou=g"}
"#,
    )
    .unwrap();
    w.expect(&["run-profile", "src", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "src", "full-sync", "--no-progress"], 1);
    let group = json(&w, &["mv", "--type", "group", "--json"]);
    let group = group[0]["id"].as_i64().unwrap();

    let text = w.expect(&["cs", "src", "--unresolved"], 0);
    assert!(
        text.contains("reference-type-mismatch: `manager`"),
        "{text}"
    );
    assert!(!text.contains("not there"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("6 ")
            && l.ends_with(&format!(
                "src/cn=Team,ou=g is there, joined to group #{group}: not a person (reference-type-mismatch)"
            ))),
        "{text}"
    );
    let listed = json(&w, &["cs", "src", "--unresolved", "--json"]);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(
        listed[0]["unresolved"],
        serde_json::json!([{
            "direction": "in", "attribute": "manager", "ma": "src", "dn": "cn=Team,ou=g",
            "reason": "type-mismatch", "mv_id": group, "object_type": "group", "expected_type": "person",
        }]),
        "{listed:#?}"
    );
}

/// A new hire is given the user name another account has: their add
/// fails, and their report's manager (that user name) is held, as it would
/// name the other account. `cs --unresolved` names the new hire's account,
/// not the other one.
#[test]
fn cs_unresolved_should_name_the_namesake_whose_add_failed_for_a_held_value() {
    let w = Workdir::with_config(HELD);
    let hr = w.path().join("hr.csv");
    std::fs::write(
        &hr,
        "id,uname,email,status,mgr\nE1,ann,a@example.com,active,\n",
    )
    .unwrap();
    let db = rusqlite::Connection::open(w.path().join("app.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE users (eid TEXT PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT, manager TEXT);",
    )
    .unwrap();
    for (ma, profile, code) in [
        ("hr", "full-import", 0),
        ("hr", "full-sync", 0),
        ("app", "export", 0),
        ("app", "full-import", 0),
        ("app", "delta-sync", 0),
    ] {
        w.expect(&["run-profile", ma, profile, "--no-progress"], code);
    }
    std::fs::write(
        &hr,
        "id,uname,email,status,mgr\n\
         E1,ann,a@example.com,active,\n\
         E2,ann,a2@example.com,active,\n\
         E3,bob,b@example.com,active,E2\n",
    )
    .unwrap();
    w.expect(&["run-profile", "hr", "full-import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "full-sync", "--no-progress"], 0);
    let export = w.expect(&["run-profile", "app", "export", "--no-progress"], 1);
    assert!(export.contains("references-held 1"), "{export}");
    let manager: Option<String> = db
        .query_row("SELECT manager FROM users WHERE eid = 'E3'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(manager, None);

    let listed = json(&w, &["cs", "app", "--unresolved", "--json"]);
    let rows: Vec<(&Value, &Value)> = listed
        .iter()
        .flat_map(|o| {
            o["unresolved"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |u| (&o["anchor"], u))
        })
        .collect();
    assert_eq!(rows.len(), 1, "{listed:#?}");
    let (referrer, held) = rows[0];
    assert_eq!(referrer, "E3");
    assert_eq!(held["direction"], "held");
    assert_eq!(held["value"], "ann");
    assert_eq!(held["anchor"], "E2", "{held}");
    let text = w.expect(&["cs", "app", "--unresolved"], 0);
    assert!(
        text.contains("app/ann (anchor E2): its add failed ("),
        "{text}"
    );
}

/// A reference that waits for an add that was sent and refused says so,
/// with the add's error (a second review: it said "not exported yet").
#[test]
fn cs_unresolved_should_say_the_add_a_reference_waits_for_failed() {
    let w = Workdir::with_config(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["eid", "mail", "manager"]
references = { manager = "person" }

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "p", anchor = "id", references = { mgr = "anchor" } }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "eid", from = "id" },
  { mv = "mail", from = "mail" },
  { mv = "manager", from = "mgr" },
]

[[ma]]
name = "dir"
connector = { type = "jsonl", path = "dir.jsonl" }
object_types = [{ name = "acct", anchor = "id", dn = "mail", references = { manager = "dn" } }]
export_flows = [{ cs = "manager", from = "manager" }]
provisioning = [{ anchor = "eid", dn = "mail" }]
"#,
    );
    let hr = w.path().join("hr.csv");
    std::fs::write(w.path().join("dir.jsonl"), "").unwrap();
    std::fs::write(&hr, "id,mail,mgr\nE1,ann@x,\nE6,eve@x,E1\n").unwrap();
    w.run(&["run", "--once"]);
    std::fs::write(&hr, "id,mail,mgr\nE1,ann@x,\nE6,eve@x,E1\nE5,ann@x,\n").unwrap();
    w.run(&["run", "--once"]);
    std::fs::write(&hr, "id,mail,mgr\nE1,ann@x,\nE6,eve@x,E5\nE5,ann@x,\n").unwrap();
    w.run(&["run", "--once"]);
    let text = w.expect(&["cs", "dir", "--unresolved"], 0);
    assert!(
        text.contains("its add to dir failed (already-exists): it waits until the add goes"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&w.expect(&["cs", "dir", "--unresolved", "--json"], 0)).unwrap();
    assert!(
        json.to_string().contains(r#""reason":"add-failed""#),
        "{json}"
    );
}
