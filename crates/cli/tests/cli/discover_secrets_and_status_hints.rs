//! `autosync discover` hides every secret written in the file (text,
//! `--json` and `--write`), and `autosync status` names the MA's own run
//! profiles in its hints (a black-box review: a literal SMTP password, a
//! webhook's URL and header were printed; `autosync queue app export`
//! was suggested for an MA whose export is `Export`).

use super::support::*;

/// Secrets written in the configuration file itself.
const SECRETS: [&str; 8] = [
    "LiteralSmtpPw123",
    "XXXXSECRETXXXX",
    "LiteralHeaderTok",
    "DefaultUrlSecret",
    "DefaultApiKey123",
    "LdapUrlPw123",
    "LdapBindPw123",
    "DefaultLdapPw123",
];

/// The quickstart with notifications holding literal secrets (an SMTP
/// password, a webhook's URL and header, defaults of `${ENV}`
/// references) and an LDAP source with a password in its URL and a
/// bind password.
fn quickstart_with_literal_secrets() -> Workdir {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |text| {
        // The quickstart ends with its [controller] table.
        text + r#"
[[ma]]
name = "dir"
object_types = [{ name = "person", anchor = "entryUUID", dn = "dn" }]
join = [{ mv_type = "person", on = [{ cs = "employeeNumber", mv = "employeeId" }] }]
import_flows = [{ mv_type = "person", mv = "title", from = "title" }]
[ma.connector]
type = "ldap"
url = "${DIR_URL:-ldap://binder:LdapUrlPw123@127.0.0.1:1/}"
bind_dn = "cn=binder,dc=example,dc=org"
password = "LdapBindPw123"
base_dns = ["dc=example,dc=org"]
object_classes = { person = "inetOrgPerson" }
attributes = ["title", "employeeNumber"]
[ma.controller]
auto_start = true

[controller.notifications.smtp]
host = "smtp.example.org"
username = "autosync"
password = "${SMTP_PASSWORD:-DefaultLdapPw123}"
from = "Autosync <autosync@example.org>"
to = ["ops@example.org"]

[[controller.notifications.webhooks]]
url = "https://hooks.example.org/services/T000/B000/XXXXSECRETXXXX"
headers = { Authorization = "Bearer LiteralHeaderTok" }

[[controller.notifications.webhooks]]
url = "${HOOK_URL:-https://hooks.example.org/services/T1/B1/DefaultUrlSecret}"
headers = { X-Api-Key = "${API_KEY:-DefaultApiKey123}" }

[[controller.notifications.webhooks]]
url = "https://user:LiteralSmtpPw123@hooks.example.org/"
headers = { Authorization = "Basic LiteralHeaderTok" }
"#
    });
    w
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

/// stdout of `autosync ARGS` (exit 0), neither stream showing a secret.
fn secret_free(w: &Workdir, args: &[&str]) -> String {
    let out = w.run(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_no_secret(&format!("{args:?} (stdout)"), &stdout);
    assert_no_secret(&format!("{args:?} (stderr)"), &stderr);
    stdout
}

#[test]
fn discover_should_hide_every_secret_written_in_the_file() {
    let w = quickstart_with_literal_secrets();
    let toml = secret_free(&w, &["discover"]);
    // Hidden as the logs hide them; what is no secret is still there.
    assert!(
        toml.contains(r#"password = "${SMTP_PASSWORD:-(hidden)}""#),
        "{toml}"
    );
    assert!(toml.contains(r#"Authorization = "(hidden)""#), "{toml}");
    assert!(
        toml.contains(r#"url = "https://hooks.example.org/…""#),
        "{toml}"
    );
    assert!(
        toml.contains(r#"X-Api-Key = "${API_KEY:-(hidden)}""#),
        "{toml}"
    );
    assert!(
        toml.contains(r#"url = "${HOOK_URL:-https://hooks.example.org/…}""#),
        "{toml}"
    );
    assert!(toml.contains(r#"username = "autosync""#), "{toml}");
    assert!(
        toml.contains("# yours, its secrets hidden: keep the values your file writes"),
        "{toml}"
    );
    assert!(toml.contains("ldap://127.0.0.1:1/"), "{toml}");

    let json = secret_free(&w, &["discover", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let kept = v["controller"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "notifications")
        .unwrap_or_else(|| panic!("no kept `notifications`: {json}"));
    assert_eq!(kept["secrets_hidden"], true, "{json}");
    assert_eq!(
        kept["value"]["smtp"]["password"],
        "${SMTP_PASSWORD:-(hidden)}"
    );
    assert_eq!(
        kept["value"]["webhooks"][0]["headers"]["Authorization"],
        "(hidden)"
    );

    let target = w.path().join("proposal.toml");
    secret_free(&w, &["discover", "--write", target.to_str().unwrap()]);
    let written = std::fs::read_to_string(&target).unwrap();
    assert_no_secret("the --write file", &written);
    assert!(
        written.contains(r#"Authorization = "(hidden)""#),
        "{written}"
    );
}

/// The quickstart with `app`'s profiles named otherwise (`Export`, `Full
/// Import`, `Delta Sync`) and its export follow-up off; `directory` with
/// no profile that is an export alone (`Sync and Export`); `hr`'s with a
/// full sync named `Full Sync`.
fn quickstart_with_named_profiles() -> Workdir {
    let w = Workdir::quickstart();
    w.edit("autosync.toml", |text| {
        let threshold = "export_deletion_threshold = { count = 500, share = \"10%\" }\n";
        let app = text.find(threshold).unwrap() + threshold.len();
        let directory = text.rfind(threshold).unwrap() + threshold.len();
        assert!(app < directory);
        let mut out = String::new();
        out.push_str(&text[..app]);
        out.push_str(
            r#"[ma.run_profiles]
Export = ["export"]
"Full Import" = ["full-import"]
"Delta Sync" = ["delta-sync"]
[ma.controller]
follow_ups = { export = false }
"#,
        );
        out.push_str(&text[app..directory]);
        out.push_str(
            r#"[ma.run_profiles]
"Full Import" = ["full-import"]
"Delta Sync" = ["delta-sync"]
"Sync and Export" = ["delta-sync", "export"]
[ma.controller]
follow_ups = { export = false }
"#,
        );
        out.push_str(&text[directory..]);
        let hr = "staging_thresholds = { deletes = \"10%\" }\n";
        assert!(out.contains(hr));
        out.replacen(
            hr,
            &format!(
                "{hr}run_profiles = {{ delta-import = [\"delta-import\"], \"Full Import\" = [\"full-import\"], \"Full Sync\" = [\"full-sync\"], \"Delta Sync\" = [\"delta-sync\"] }}\n"
            ),
            1,
        )
    });
    w
}

#[test]
fn status_hints_should_name_the_mas_own_profiles_or_say_it_has_none() {
    let w = quickstart_with_named_profiles();
    w.expect(&["check"], 0);
    w.expect(&["run-profile", "hr", "Full Import", "--no-progress"], 0);
    w.expect(&["run-profile", "hr", "Full Sync", "--no-progress"], 0);
    // hr's rules change: it needs a full sync.
    w.edit("autosync.toml", |text| {
        let flow = r#"{ mv_type = "person", mv = "source", constant = "hr" }"#;
        assert!(text.contains(flow));
        text.replacen(
            flow,
            r#"{ mv_type = "person", mv = "source", constant = "hr-export" }"#,
            1,
        )
    });
    let status = w.expect(&["status"], 0);
    assert!(
        status.contains(
            "with an export pending: sent by the MA's next export (queue one: `autosync queue app Export`; list them: `autosync cs app --pending-export`)"
        ),
        "{status}"
    );
    assert!(
        status.contains("(queue one: `autosync queue hr 'Full Sync'`)"),
        "{status}"
    );
    // No profile is its export alone: the one with an export step.
    assert!(
        status.contains("(queue one: `autosync queue directory 'Sync and Export'`;"),
        "{status}"
    );
    // Every command a hint gives works.
    assert!(!status.contains("queue app export`"), "{status}");
    w.expect(&["queue", "app", "Export"], 0);
    w.expect(&["queue", "hr", "Full Sync"], 0);
    w.expect(&["queue", "directory", "Sync and Export"], 0);
}
