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
