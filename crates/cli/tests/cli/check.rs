//! `autosync check` catches the typos that delete data, through the real
//! binary on the quickstart: a provisioning condition naming an undeclared
//! attribute (which would deprovision everyone) and an import flow reading
//! a column the HR file does not have (which would blank a field
//! everywhere). Both exit 2 with file, line, key and a suggestion. Against
//! the kit's slapd: a flow reading an attribute the object classes do not
//! allow.

use super::support::*;

const TITLE: &str = r#"{ mv_type = "person", mv = "title", from = "title" }"#;
const CONDITION: &str =
    r#"condition = "status == 'active'", anchor = "employeeId", dn = "accountName""#;

fn quickstart_with(from: &str, to: &str) -> Workdir {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |text| {
        assert!(
            text.contains(from),
            "the quickstart should contain {from:?}"
        );
        text.replacen(from, to, 1)
    });
    w
}

/// The 1-based line and column of the first `needle` in the configuration.
fn position(w: &Workdir, needle: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(w.config()).unwrap();
    let at = text.find(needle).unwrap();
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn stderr_of_check(w: &Workdir) -> String {
    let out = w.run(&["check"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

#[test]
fn check_should_reject_an_import_flow_reading_a_column_the_hr_file_lacks() {
    let w = quickstart_with(
        TITLE,
        r#"{ mv_type = "person", mv = "title", from = "titel" }"#,
    );
    let err = stderr_of_check(&w);
    let (line, column) = position(&w, r#""titel""#);
    let expected = format!(
        "{}:{line}:{column}: ma \"hr\" > import_flows[6] > from: import flow to `title` reads `titel`, which data/hr.csv does not have\n  help: did you mean `title`?\n",
        w.config().display()
    );
    assert_eq!(err, expected);
}

/// The service refuses to start on what `check` refuses (found by a
/// black-box review: it started without a word, and its first export
/// removed `title` everywhere): exit 2 with the same located message,
/// before the store is made or anything runs.
#[test]
fn run_should_refuse_to_start_with_an_import_flow_reading_a_column_the_hr_file_lacks() {
    let w = quickstart_with(
        TITLE,
        r#"{ mv_type = "person", mv = "title", from = "titel" }"#,
    );
    let out = w.run(&["run", "--once"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    let (line, column) = position(&w, r#""titel""#);
    let expected = format!(
        "{}:{line}:{column}: ma \"hr\" > import_flows[6] > from: import flow to `title` reads `titel`, which data/hr.csv does not have\n  help: did you mean `title`?",
        w.config().display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(
        !w.path().join("state/autosync.db").exists(),
        "no store made"
    );
    assert!(!w.path().join("data/app.db").exists(), "nothing ran");
}

/// What cannot be checked does not stop a start: with the HR file not
/// there yet, the service says so at WARN and runs.
#[test]
fn run_should_start_with_a_warning_when_the_source_file_does_not_exist_yet() {
    let w = Workdir::quickstart();
    std::fs::remove_file(w.path().join("data/hr.csv")).unwrap();
    let mut svc = autosync_testkit::ServiceProcess::start(
        std::path::Path::new(BIN),
        &w.config(),
        &["--no-api"],
    )
    .unwrap();
    svc.wait_log("the warning", std::time::Duration::from_secs(30), |log| {
        log.contains("cannot be checked")
    })
    .unwrap();
    let log = svc.log();
    let warning = log
        .lines()
        .find(|l| l.contains("cannot be checked"))
        .unwrap();
    assert!(
        warning.contains("WARN") && warning.contains("data/hr.csv does not exist yet"),
        "{warning}"
    );
    // It runs: the import of the missing file stops, to be retried.
    svc.wait_log("the import", std::time::Duration::from_secs(30), |log| {
        log.contains("stopped-server-down")
    })
    .unwrap();
    let (code, log) = svc.terminate().unwrap();
    assert_eq!(code, Some(0), "it ran until stopped; log:\n{log}");
}

#[test]
fn check_should_reject_a_provisioning_condition_naming_an_undeclared_attribute() {
    let w = quickstart_with(CONDITION, &CONDITION.replace("status ==", "stat =="));
    let err = stderr_of_check(&w);
    let (line, column) = position(&w, "stat ==");
    let expected = format!(
        "{}:{line}:{column}: ma \"app\" > provisioning[0] > condition: the provisioning condition reads `stat`, which is not an attribute of metaverse type `person`: it would always be empty\n  help: did you mean `status`? or add `stat` to [metaverse.person].attributes\n",
        w.config().display()
    );
    assert_eq!(err, expected);
}

#[test]
fn check_json_should_carry_the_errors_and_exit_2() {
    let w = quickstart_with(
        TITLE,
        r#"{ mv_type = "person", mv = "title", from = "titel" }"#,
    );
    let out = w.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v:#}");
    let error = errors[0].as_str().unwrap();
    assert!(
        error.contains("reads `titel`, which data/hr.csv does not have"),
        "{error}"
    );
    assert!(error.contains("help: did you mean `title`?"), "{error}");
}

#[test]
fn check_should_only_warn_when_the_source_file_does_not_exist_yet() {
    let w = Workdir::quickstart();
    std::fs::remove_file(w.path().join("data/hr.csv")).unwrap();
    let out = w.expect(&["check"], 0);
    assert!(
        out.contains("warning: ") && out.contains("data/hr.csv does not exist yet"),
        "{out}"
    );
    let json = w.expect(&["check", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let hr = &v["management_agents"][0];
    assert_eq!(hr["schema"]["status"], "unavailable", "{v:#}");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v:#}");
}

#[test]
fn check_should_pass_the_quickstart_and_say_what_each_source_was_checked_against() {
    let w = Workdir::quickstart();
    let out = w.expect(&["check"], 0);
    assert!(out.contains("checked against data/hr.csv"), "{out}");
    assert!(
        out.contains("checked against table `users` of data/app.db"),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");
    assert!(
        !w.path().join("data/app.db").exists(),
        "check creates nothing"
    );
}

/// The complete example of the configuration reference passes the real
/// `autosync check` (with the real connectors, not the config crate's test
/// doubles): a reader who copies it gets a configuration that loads.
#[test]
fn the_configuration_references_complete_example_should_pass_check() {
    let readme = include_str!("../../../../docs/src/reference/configuration.md");
    let start = readme.find("## A complete example").unwrap();
    let block = &readme[start..];
    let block = &block[block.find("```toml\n").unwrap() + 8..];
    let example = &block[..block.find("```").unwrap()];
    let w = Workdir::with_config(example);
    let out = w.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory MA reading `attr` from people (`inetOrgPerson`).
fn directory_reading(attr: &str) -> Workdir {
    let s = autosync_testkit::SlapdBuilder::new().shared().unwrap();
    Workdir::with_config(&format!(
        r#"
[metaverse.person]
attributes = ["uid", "phone"]

[[ma]]
name = "directory"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{base}"], object_classes = {{ person = "inetOrgPerson" }} }}
object_types = [{{ name = "person", anchor = "entryUUID", dn = "dn" }}]
join = [{{ on = [{{ cs = "uid", mv = "uid" }}] }}]
projection = [{{ mv_type = "person" }}]
import_flows = [{{ mv = "uid", from = "uid" }}, {{ mv = "phone", from = "{attr}" }}]
"#,
        url = s.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
        base = s.suffix(),
    ))
}

#[test]
fn check_should_reject_a_flow_reading_an_attribute_the_object_classes_do_not_allow() {
    let w = directory_reading("uidNumber");
    let err = stderr_of_check(&w);
    assert!(
        err.contains("ma \"directory\" > import_flows[1] > from: import flow to `phone` reads `uidNumber`, which the schema of the directory at ldap://127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains(" defines, but object type `person` cannot have: object class `inetOrgPerson` and its superclasses do not allow it"),
        "{err}"
    );
    let w = directory_reading("telephonenumber");
    let err = stderr_of_check(&w);
    assert!(
        err.contains("reads `telephonenumber`, which is written `telephoneNumber` in the schema"),
        "{err}"
    );
    assert!(err.contains("help: write `telephoneNumber`"), "{err}");
    let w = directory_reading("telephoneNumber");
    let out = w.expect(&["check"], 0);
    assert!(
        out.contains("checked against the schema of the directory at ldap://127.0.0.1:"),
        "{out}"
    );
}

/// An export flow into the attribute the DN comes from, from another
/// source than the provisioning rule's `dn`, renames the object back and
/// forth on every change (found by a black-box review): a warning at the
/// flow (the quickstart's own, which agree, give none: see above).
#[test]
fn check_should_warn_of_a_flow_into_the_dn_attribute_that_disagrees_with_provisioning() {
    let w = quickstart_with(
        r#"anchor = "employeeId", dn = "email" }"#,
        r#"anchor = "employeeId", dn = "accountName + '@corp.example.com'" }"#,
    );
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err =
        String::from_utf8(out.stdout).unwrap() + String::from_utf8(out.stderr).unwrap().as_str();
    assert_eq!(err.matches("takes its DN from").count(), 1, "{err}");
    assert!(
        err.contains(r#"warning: ma "directory" > export_flows[0]: this flow writes `mail`"#),
        "{err}"
    );
}

/// An export flow into the anchor: an object joined under another anchor
/// fails every update (found by a black-box review): a warning at the flow.
#[test]
fn check_should_warn_of_a_flow_into_the_anchor() {
    let w = quickstart_with(
        r#"  { mv_type = "person", cs = "username", from = "accountName" },"#,
        r#"  { mv_type = "person", cs = "username", from = "accountName" },
  { mv_type = "person", cs = "employee_id", from = "employeeId" },"#,
    );
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text =
        String::from_utf8(out.stdout).unwrap() + String::from_utf8(out.stderr).unwrap().as_str();
    assert!(
        text.contains(r#"warning: ma "app" > export_flows[1]: this flow writes `employee_id`, the anchor of object type `user`"#),
        "{text}"
    );
}

/// An MA renamed is a new MA: the old name's connector space stays in the
/// store, its objects joined. `status` says so, with what to do (`check`
/// does not open the store: a new binary's check would upgrade it)
/// (found by a black-box review: nothing said it, and the new MA added
/// every account again).
#[test]
fn status_should_name_the_connector_space_of_an_ma_no_longer_configured() {
    let w = Workdir::quickstart();
    w.expect(&["run", "--once"], 0);
    assert!(!w.expect(&["status"], 0).contains("no longer names"));
    w.edit("autosync.toml", |text| {
        text.replacen(r#"name = "directory""#, r#"name = "dir""#, 1)
    });
    let expected = "warning: the store holds the connector space of `directory` (288 objects), which the configuration no longer names";
    let status = w.expect(&["status"], 0);
    assert!(status.contains(expected), "{status}");
    assert!(
        status.contains("`autosync cs delete directory` removes it"),
        "{status}"
    );
}

/// The quickstart with `[controller.notifications]` tables `extra` at its end.
fn quickstart_notifying(extra: &str) -> Workdir {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |text| format!("{text}\n{extra}"));
    w
}

/// A bad value or key of the notifications' settings is reported at its
/// key's line and column, naming the key, as every other error is (it was
/// reported at the `[controller.notifications]` table).
#[test]
fn check_should_report_a_bad_notification_setting_at_its_key() {
    for (extra, needle, key, says) in [
        (
            "[[controller.notifications.webhooks]]\nurl = \"https://h.example.org/x\"\ntimeout = \"abc\"\n",
            "\"abc\"",
            "controller > notifications > webhooks[0] > timeout",
            "invalid duration `abc`",
        ),
        (
            "[controller.notifications.smtp]\nhost = \"mx\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\ntimout = \"5s\"\n",
            "\"5s\"",
            "controller > notifications > smtp > timout",
            "unknown key `timout` (did you mean `timeout`?)",
        ),
        (
            "[controller.notifications]\nnotify_recovered = \"yes\"\n",
            "\"yes\"",
            "controller > notifications > notify_recovered",
            "wrong type of value",
        ),
    ] {
        let w = quickstart_notifying(extra);
        let err = stderr_of_check(&w);
        let (line, column) = position(&w, needle);
        let at = format!("{}:{line}:{column}: {key}: ", w.config().display());
        assert!(err.starts_with(&at), "expected {at}…\n{err}");
        assert!(err.contains(says), "{err}");
    }
}

/// The SMTP `ca_file` is read relative to the configuration file's folder
/// (it was read relative to the working directory); one that cannot be
/// read is an error at the key, naming the file.
#[test]
fn check_should_read_the_smtp_ca_file_beside_the_configuration_and_reject_a_missing_one() {
    let smtp = "[controller.notifications.smtp]\nhost = \"mx\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\nca_file = \"certs/ca.pem\"\n";
    let w = quickstart_notifying(smtp);
    std::fs::create_dir(w.path().join("certs")).unwrap();
    std::fs::write(
        w.path().join("certs/ca.pem"),
        autosync_testkit::tls::other_ca_pem().unwrap(),
    )
    .unwrap();
    let out = w.expect(&["check"], 0);
    assert!(!out.contains("warning"), "{out}");
    std::fs::remove_file(w.path().join("certs/ca.pem")).unwrap();
    let err = stderr_of_check(&w);
    let (line, column) = position(&w, "\"certs/ca.pem\"");
    let at = format!(
        "{}:{line}:{column}: controller > notifications > smtp > ca_file: CA file {}: cannot be read",
        w.config().display(),
        w.path().join("certs/ca.pem").display()
    );
    assert!(err.starts_with(&at), "expected {at}…\n{err}");
}

/// An LDAP MA's `ca_file` that cannot be read fails every connection: an
/// error at the key, naming the file (`check` only warned that the schema
/// could not be read).
#[test]
fn check_should_reject_an_ldap_ca_file_that_cannot_be_read() {
    let w = Workdir::with_config(
        r#"
[metaverse.person]
attributes = ["uid"]

[[ma]]
name = "directory"
object_types = [{ name = "person", anchor = "entryUUID", dn = "dn" }]
join = [{ on = [{ cs = "uid", mv = "uid" }] }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv = "uid", from = "uid" }]

[ma.connector]
type = "ldap"
url = "ldaps://127.0.0.1:1"
ca_file = "certs/ca.pem"
base_dns = ["dc=example,dc=org"]
object_classes = { person = "inetOrgPerson" }
"#,
    );
    let err = stderr_of_check(&w);
    let (line, column) = position(&w, "\"certs/ca.pem\"");
    let expected = format!(
        "{}:{line}:{column}: ma \"directory\" > connector > ca_file: cannot read ca_file `certs/ca.pem` ({}): ",
        w.config().display(),
        w.path().join("certs/ca.pem").display()
    );
    assert!(err.starts_with(&expected), "expected {expected}…\n{err}");
}

/// A wrong value inside another controller setting is reported at its own
/// key too (`controller > retry > max_attempts`), not at the setting's
/// (a review: the notifications' were fixed, the others' still pointed at
/// their table).
#[test]
fn check_should_report_a_bad_controller_setting_at_the_key_inside_it() {
    let w = quickstart_notifying("[controller.retry]\nmax_attempts = \"three\"\n");
    let err = stderr_of_check(&w);
    let (line, column) = position(&w, "\"three\"");
    let at = format!(
        "{}:{line}:{column}: controller > retry > max_attempts: ",
        w.config().display()
    );
    assert!(err.starts_with(&at), "expected {at}…\n{err}");
    assert!(err.contains("expected u32"), "{err}");
}
