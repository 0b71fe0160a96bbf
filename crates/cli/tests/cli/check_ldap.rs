//! `autosync check` against the kit's slapd, through the real binary, on
//! what a black-box review found passing although it loses data: an
//! `attributes` entry spelt otherwise than the schema (the connector
//! space holds it as written, a flow naming the schema's name reads
//! nothing), a misspelt attribute in `filter` (nothing matches: a full
//! import deletes every object), an export flow into an attribute the
//! object class does not allow (which class would); each error names the
//! server as the summary does, though the URL comes from `${LDAP_URL}`.

use super::support::*;

/// A directory MA (people, `inetOrgPerson`) whose URL comes from
/// `${LDAP_URL}`, with `connector` lines and `rules` added.
fn directory(connector: &str, rules: &str) -> (Workdir, String) {
    let s = autosync_testkit::SlapdBuilder::new().shared().unwrap();
    let w = Workdir::with_config(&format!(
        r#"
[metaverse.person]
attributes = ["uid", "phone"]

[[ma]]
name = "directory"
object_types = [{{ name = "person", anchor = "entryUUID", dn = "dn" }}]
join = [{{ on = [{{ cs = "uid", mv = "uid" }}] }}]
projection = [{{ mv_type = "person" }}]
{rules}

[ma.connector]
type = "ldap"
url = "${{LDAP_URL}}"
bind_dn = "{dn}"
password = "{pw}"
base_dns = ["{base}"]
object_classes = {{ person = "inetOrgPerson" }}
{connector}
"#,
        dn = s.admin_dn(),
        pw = s.admin_password(),
        base = s.suffix(),
    ));
    (w, s.url().to_owned())
}

/// `autosync check`'s exit code and standard error, with `LDAP_URL` set.
fn check(w: &Workdir, url: &str) -> (Option<i32>, String) {
    let out = w.run_env(&["check"], &[("LDAP_URL", url)]);
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

const READS_PHONE: &str =
    r#"import_flows = [{ mv = "uid", from = "uid" }, { mv = "phone", from = "telephoneNumber" }]"#;

#[test]
fn check_should_reject_an_attributes_entry_not_spelt_as_the_schema() {
    let (w, url) = directory(
        r#"attributes = ["uid", "telephonenumber", "rfc822Mailbox"]"#,
        READS_PHONE,
    );
    let (code, err) = check(&w, &url);
    assert_eq!(code, Some(2), "{err}");
    let expected = format!(
        "{}: ma \"directory\" > connector > attributes[1]: `telephonenumber` is written `telephoneNumber` in the schema of the directory at {url}\n  help: write `telephoneNumber`, the schema's name: flows and the connector space use the name as written\n",
        at(&w, "\"telephonenumber\"")
    );
    assert!(err.contains(&expected), "{err}");
    let expected = format!(
        "{}: ma \"directory\" > connector > attributes[2]: `rfc822Mailbox` is another name of `mail` in the schema of the directory at {url}\n  help: write `mail`, the schema's name",
        at(&w, "\"rfc822Mailbox\"")
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("(hidden)"), "{err}");
    // The schema's names pass.
    let (w, url) = directory(
        r#"attributes = ["uid", "telephoneNumber", "mail"]"#,
        READS_PHONE,
    );
    let out = w.run_env(&["check"], &[("LDAP_URL", url.as_str())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{out:?}");
    assert!(
        stdout.contains(&format!(
            "checked against the schema of the directory at {url}"
        )),
        "{stdout}"
    );
}

#[test]
fn check_should_reject_a_filter_naming_an_attribute_the_schema_lacks() {
    let (w, url) = directory(r#"filter = "(!(employeType=contractor))""#, READS_PHONE);
    let (code, err) = check(&w, &url);
    assert_eq!(code, Some(2), "{err}");
    let expected = format!(
        "{}: ma \"directory\" > connector > filter: `employeType` is not an attribute type of the schema of the directory at {url}: the directory matches no entry on it, and a full import would read none and delete every object\n  help: did you mean `employeeType`?\n",
        at(&w, "\"(!(employeType")
    );
    assert!(err.contains(&expected), "{err}");
    let (w, url) = directory(r#"filter = "(!(employeeType=contractor))""#, READS_PHONE);
    assert_eq!(check(&w, &url).0, Some(0));
}

#[test]
fn check_should_say_which_object_class_allows_an_attribute_the_types_classes_do_not() {
    let (w, url) = directory(
        "",
        r#"import_flows = [{ mv = "uid", from = "uid" }]
export_flows = [{ mv_type = "person", cs = "uidNumber", from = "phone" }]"#,
    );
    let (code, err) = check(&w, &url);
    assert_eq!(code, Some(2), "{err}");
    let expected = format!(
        "{}: ma \"directory\" > export_flows[0] > cs: export flow to `uidNumber` writes `uidNumber`, which the schema of the directory at {url} defines, but object type `person` cannot have: object class `inetOrgPerson` and its superclasses do not allow it\n  help: object class",
        at(&w, "\"uidNumber\"")
    );
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("`posixAccount` (auxiliary)"), "{err}");
    assert!(
        err.contains("an object type whose `object_classes` include one may have it"),
        "{err}"
    );
}

#[test]
fn no_output_should_show_a_password_or_query_written_in_the_url() {
    let (w, url) = directory("", READS_PHONE);
    let s = autosync_testkit::SlapdBuilder::new().shared().unwrap();
    w.edit("autosync.toml", |t| {
        t.replace(
            &format!("password = \"{}\"", s.admin_password()),
            "password = \"wrong\"",
        )
    });
    let secret = format!(
        "{}/?token=QSECRET",
        url.replacen("://", "://admin:S3CRETPW@", 1)
    );
    let env = [("LDAP_URL", secret.as_str())];
    let mut seen = String::new();
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["run-profile", "directory", "full-import", "--no-progress"],
        &["history"],
        &["history", "1"],
        &["history", "--json"],
    ] {
        let out = w.run_env(args, &env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for hidden in ["S3CRETPW", "QSECRET", "admin:"] {
            assert!(!text.contains(hidden), "{args:?} shows {hidden}:\n{text}");
        }
        seen.push_str(&text);
    }
    // The messages still name the server.
    assert!(seen.contains(&format!("{url}/ refused the bind")), "{seen}");
}

#[test]
fn check_should_say_how_the_schema_writes_a_name_a_flow_spells_otherwise() {
    let (w, url) = directory(
        "",
        r#"import_flows = [{ mv = "uid", from = "uid" }, { mv = "phone", from = "TelephoneNumber" }]
export_flows = [{ mv_type = "person", cs = "UIDNumber", from = "phone" }]"#,
    );
    let (code, err) = check(&w, &url);
    assert_eq!(code, Some(2), "{err}");
    let source = format!("the schema of the directory at {url}");
    assert!(
        err.contains(&format!(
            "reads `TelephoneNumber`, which is written `telephoneNumber` in {source}\n  help: write `telephoneNumber`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "export flow to `UIDNumber` writes `UIDNumber`, which is written `uidNumber` in {source}"
        )),
        "{err}"
    );
}
