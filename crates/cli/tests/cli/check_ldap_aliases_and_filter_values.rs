//! `autosync check` against the kit's slapd, through the real binary, on
//! two gaps: a flow naming an attribute by one of the schema's other names
//! (`rfc822Mailbox` for `mail`, `surname` for `sn`), which the run reads
//! nothing under (the server answers with the schema's name, which the
//! connector space holds: an import stops, an export is never confirmed),
//! is told the schema's name; and a `filter` comparing an attribute with a
//! value its syntax refuses (`(modifyTimestamp<=yesterday)`), which the
//! server matches nothing on, is refused by `check` and stops an import
//! before it stages the delete of every object.

use super::support::*;
use autosync_testkit::{Slapd, SlapdBuilder};

fn slapd() -> &'static Slapd {
    SlapdBuilder::new().shared().unwrap()
}

/// An HR file of two people projected into the metaverse, and a
/// directory MA under `base` (`inetOrgPerson`, joined by `uid`) with
/// `rules` and `connector` lines added.
fn config(s: &Slapd, base: &str, rules: &str, connector: &str) -> Workdir {
    let w = Workdir::with_config(&format!(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["uid", "mail", "surname", "dirMail"]

[[ma]]
name = "hr"
connector = {{ type = "csv", path = "hr.csv" }}
object_types = [{{ name = "person", anchor = "id" }}]
join = [{{ on = [{{ cs = "id", mv = "uid" }}] }}]
projection = [{{ mv_type = "person" }}]
import_flows = [{{ mv = "uid", from = "id" }}, {{ mv = "mail", from = "email" }}, {{ mv = "surname", from = "last" }}]

[[ma]]
name = "directory"
object_types = [{{ name = "person", anchor = "entryUUID", dn = "dn" }}]
join = [{{ on = [{{ cs = "uid", mv = "uid" }}] }}]
{rules}

[ma.connector]
type = "ldap"
url = "{url}"
bind_dn = "{dn}"
password = "{pw}"
base_dns = ["{base}"]
object_classes = {{ person = "inetOrgPerson" }}
{connector}
"#,
        url = s.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
    ));
    std::fs::write(
        w.path().join("hr.csv"),
        "id,email,last\nada,ada@example.org,Lovelace\ngrace,grace@example.org,Hopper\n",
    )
    .unwrap();
    w
}

/// Two people in a unit of their own: its DN.
fn people(s: &Slapd, prefix: &str) -> String {
    let base = s.new_ou(prefix).unwrap();
    for (uid, sn) in [("ada", "Lovelace"), ("grace", "Hopper")] {
        s.ldapadd(&format!(
            "dn: uid={uid},{base}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n\
             sn: {sn}\nmail: {uid}@example.org\n"
        ))
        .unwrap();
    }
    base
}

/// `autosync check`'s exit code and standard error.
fn check(w: &Workdir) -> (Option<i32>, String) {
    let out = w.run(&["check"]);
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

/// The `file:line:column` of the first `needle` in the configuration.
fn at(w: &Workdir, needle: &str) -> String {
    let text = std::fs::read_to_string(w.config()).unwrap();
    let i = text.find(needle).unwrap();
    let line = text[..i].matches('\n').count() + 1;
    let column = i - text[..i].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("{}:{line}:{column}", w.config().display())
}

/// `run-profile MA PROFILE`: its exit code and what it printed.
fn run(w: &Workdir, ma: &str, profile: &str) -> (Option<i32>, String) {
    let out = w.run(&["run-profile", ma, profile, "--no-progress"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn check_should_tell_a_flow_naming_an_alias_the_schemas_name_as_the_run_reads_none_under_it() {
    let s = slapd();
    let base = people(s, "alias-flows");
    let rules = r#"import_flows = [{ mv = "dirMail", from = "rfc822Mailbox" }]
export_flows = [{ mv_type = "person", cs = "surname", from = "surname" }]"#;
    let w = config(s, &base, rules, "");
    let (code, err) = check(&w);
    assert_eq!(code, Some(2), "{err}");
    let source = format!("the schema of the directory at {}", s.url());
    let expected = format!(
        "{}: ma \"directory\" > import_flows[0] > from: import flow to `dirMail` reads `rfc822Mailbox`, which is another name of `mail` in {source}: the connector space holds its values under `mail`\n  help: write `mail`, the schema's name: the system answers with it, and rules read and compare names as the connector space holds them\n",
        at(&w, "\"rfc822Mailbox\"")
    );
    assert!(err.contains(&expected), "{err}");
    let expected = format!(
        "{}: ma \"directory\" > export_flows[0] > cs: export flow to `surname` writes `surname`, which is another name of `sn` in {source}: the connector space holds its values under `sn`\n  help: write `sn`, ",
        at(&w, "\"surname\", from = \"surname\" }")
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("does not have"), "{err}");
    // The run agrees: the import reads nothing under the alias.
    let (_, out) = run(&w, "directory", "full-import");
    assert!(out.contains("stopped-configuration"), "{out}");
    assert!(
        out.contains("import flow to `dirMail` reads `rfc822Mailbox`"),
        "{out}"
    );
    // The schema's names pass, and read the values.
    let rules = r#"import_flows = [{ mv = "dirMail", from = "mail" }]
export_flows = [{ mv_type = "person", cs = "sn", from = "surname" }]"#;
    let w = config(s, &base, rules, "");
    assert_eq!(check(&w).0, Some(0));
    for (ma, profile) in [
        ("hr", "full-import"),
        ("hr", "full-sync"),
        ("directory", "full-import"),
        ("directory", "full-sync"),
    ] {
        let (code, out) = run(&w, ma, profile);
        assert_eq!(code, Some(0), "{ma} {profile}: {out}");
    }
    let mv = w.expect(&["mv", "--json"], 0);
    assert!(mv.contains("\"dirMail\""), "{mv}");
    assert!(mv.contains("grace@example.org"), "{mv}");
}

#[test]
fn a_filter_value_its_syntax_refuses_should_fail_check_and_stop_the_import_before_any_delete() {
    let s = slapd();
    let base = people(s, "filter-value");
    let rules = r#"import_flows = [{ mv = "dirMail", from = "mail" }]"#;
    let w = config(s, &base, rules, "");
    let (code, out) = run(&w, "directory", "full-import");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("stage-add 2"), "{out}");
    let (code, out) = run(&w, "directory", "full-sync");
    assert_eq!(code, Some(0), "{out}");
    // Meant: entries changed before yesterday; the server matches none.
    w.edit("autosync.toml", |t| {
        t + "filter = \"(modifyTimestamp<=yesterday)\"\n"
    });
    let (code, err) = check(&w);
    assert_eq!(code, Some(2), "{err}");
    let expected = format!(
        "{}: ma \"directory\" > connector > filter: `yesterday` is not a value of `modifyTimestamp`'s syntax, Generalized Time, in the schema of the directory at {}: the directory matches no entry on it, and a full import would read none and delete every object\n  help: a Generalized Time is ",
        at(&w, "\"(modifyTimestamp"),
        s.url()
    );
    assert!(err.contains(&expected), "{err}");
    // The import stops before it reads, and stages no delete.
    let (_, out) = run(&w, "directory", "full-import");
    assert!(out.contains("stopped-configuration"), "{out}");
    assert!(
        out.contains("`filter` compares `modifyTimestamp` with `yesterday`, which is not a value of its syntax, Generalized Time"),
        "{out}"
    );
    let pending = w.expect(&["cs", "directory", "--pending-import", "--json"], 0);
    assert_eq!(pending.trim(), "[]", "{pending}");
    // A time the syntax takes passes.
    let w = config(
        s,
        &base,
        rules,
        r#"filter = "(modifyTimestamp>=20000101000000Z)""#,
    );
    assert_eq!(check(&w).0, Some(0));
}
