#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod history;

use super::*;
use autosync_config::Loaded;
use autosync_connector::Registry;
use autosync_triggers::change_poll::Seen;
use autosync_triggers::{TriggerConfig, parse_triggers};
use std::path::Path;
use std::time::Duration;

fn registry() -> Registry {
    let mut r = Registry::new();
    autosync_connectors::register_all(&mut r);
    r
}

fn load(dir: &Path, text: &str) -> Loaded {
    autosync_config::load_str(text, &dir.join("autosync.toml"), &registry())
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

#[path = "../../service/tests/common/people.rs"]
mod people;

/// The quickstart's configuration without its groups and its controller
/// sections (`[controller]` and every `[ma.controller]`).
fn quickstart_text() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/autosync.toml");
    let text = people::without_groups(&std::fs::read_to_string(path).unwrap());
    let out = without_controller(&text);
    assert!(
        !out.lines()
            .any(|l| l.trim().ends_with("controller]") && !l.trim().starts_with('#')),
        "{out}"
    );
    out
}

/// `text` without its `[controller]` and `[ma.controller]` sections.
fn without_controller(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t == "[controller]" || t == "[ma.controller]" {
            skipping = true;
            continue;
        }
        if skipping && (t.is_empty() || t.starts_with('#') || t.starts_with('[')) {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Puts each `[ma.controller]` section of the proposal after its MA's keys
/// and the `[controller]` section at the end: what a user does by hand.
fn merge(config: &str, proposal: &str) -> String {
    let mut parts = proposal.split("\n# ---- ma \"");
    let global = parts.next().unwrap();
    let sections: Vec<String> = parts.map(|p| format!("# ---- ma \"{p}")).collect();
    let lines: Vec<&str> = config.lines().collect();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[ma]]")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), sections.len(), "one section per MA");
    let mut out = String::new();
    let mut next = 0;
    for (i, line) in lines.iter().enumerate() {
        if next > 0 && starts.get(next) == Some(&i) {
            out.push_str(&sections[next - 1]);
            out.push('\n');
        }
        if starts.get(next) == Some(&i) {
            next += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&sections[next - 1]);
    out.push('\n');
    out.push_str(global);
    out
}

fn round_trip(dir: &Path, config: &str, proposal: &Proposal) -> autosync_service::ControllerConfig {
    let merged = merge(config, &to_toml(proposal));
    let loaded = load(dir, &merged);
    autosync_service::controller_config(&loaded, &registry())
        .unwrap_or_else(|d| panic!("{}\n---\n{merged}", loaded.error(d)))
}

fn ma<'a>(p: &'a Proposal, name: &str) -> &'a MaProposal {
    p.mas.iter().find(|m| m.name == name).unwrap()
}

fn role(m: &MaProposal, r: Role) -> &RoleChoice {
    m.roles.iter().find(|c| c.role == r).unwrap()
}

#[test]
fn quickstart_should_watch_the_hr_file_and_give_the_targets_no_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let text = quickstart_text();
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let hr = ma(&p, "hr");
    assert_eq!(hr.kind, MaKind::Source);
    assert_eq!(
        hr.triggers,
        vec![ProposedTrigger::FileWatch {
            path: Some("data/hr.csv".into()),
            profile: "delta-import".into()
        }]
    );
    for target in ["app", "directory"] {
        let t = ma(&p, target);
        assert_eq!(t.kind, MaKind::Target);
        assert!(t.triggers.is_empty());
        assert_eq!(role(t, Role::Export).profile.as_deref(), Some("export"));
        assert_eq!(
            role(t, Role::ConfirmingImport).profile.as_deref(),
            Some("delta-import")
        );
    }
    assert_eq!(
        role(hr, Role::DeltaSync).profile.as_deref(),
        Some("delta-sync")
    );
    assert!(p.controller.is_empty());
}

#[test]
fn quickstart_proposal_merged_into_the_config_should_pass_the_controller_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = quickstart_text();
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let config = round_trip(dir.path(), &text, &p);
    let hr = &config.mas["hr"];
    assert!(!hr.default_triggers, "the proposal's triggers are used");
    assert!(matches!(
        hr.triggers.as_slice(),
        [TriggerConfig::FileWatch(_)]
    ));
    assert!(config.mas["app"].triggers.is_empty());
}

const SQLITE_SOURCE: &str = r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "name"]

[[ma]]
name = "people"
connector = { type = "sqlite", path = "people.db", table = "people", create_table = true, columns = ["id", "name", "updated_at"], DELTA }
object_types = [{ name = "person", anchor = "id" }]
projection = [{ mv_type = "person" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
import_flows = [{ mv = "employeeId", from = "id" }, { mv = "name", from = "name" }]
"#;

fn sqlite_source(delta: &str) -> String {
    let delta = if delta.is_empty() {
        String::new()
    } else {
        format!("delta = {delta}")
    };
    SQLITE_SOURCE.replace(
        ", DELTA",
        &if delta.is_empty() {
            String::new()
        } else {
            format!(", {delta}")
        },
    )
}

#[test]
fn sqlite_source_with_a_changelog_should_get_a_poll_that_asks_only_when_the_changelog_grew() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("people.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "create table people(id text primary key, name text, updated_at integer);
         create table people_log(seq integer primary key, id text, op text);",
    )
    .unwrap();
    let text = sqlite_source(
        r#"{ kind = "changelog", table = "people_log", sequence_column = "seq", anchor_column = "id" }"#,
    );
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let people = ma(&p, "people");
    assert_eq!(
        people.triggers,
        vec![ProposedTrigger::ChangePoll {
            every: "30s".into(),
            profile: "delta-import".into()
        }]
    );
    assert_eq!(
        people.triggers_why,
        "sqlite connector with a changelog: a change poll asks people.db for \
         `SELECT max(\"seq\") FROM \"people_log\"` every 30s and asks for `delta-import` \
         when the answer moved"
    );

    // The proposal, pasted, polls the connector's own probe.
    let config = round_trip(dir.path(), &text, &p);
    let triggers = &config.mas["people"].triggers;
    let [TriggerConfig::ChangePoll(poll)] = triggers.as_slice() else {
        panic!("{triggers:?}");
    };
    let trigger = poll.validate("people", 0).unwrap();
    let mut seen = Seen::default();
    let mut moved = || seen.moved(trigger.probe.token().unwrap());
    assert!(!moved(), "first read: nothing to compare with");
    assert!(!moved(), "no change: no request");
    conn.execute("insert into people_log(id, op) values ('1', 'I')", [])
        .unwrap();
    assert!(moved(), "the changelog grew: a delta import is asked for");
    assert!(!moved(), "asked once per change");
}

#[test]
fn sqlite_source_with_a_change_tracking_column_should_poll_that_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source(r#"{ kind = "column", column = "updated_at" }"#);
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let people = ma(&p, "people");
    assert!(
        matches!(&people.triggers[..], [ProposedTrigger::ChangePoll { .. }]),
        "{:?}",
        people.triggers
    );
    assert!(
        people
            .triggers_why
            .contains(r#"SELECT max("updated_at") FROM "people""#),
        "{}",
        people.triggers_why
    );
    round_trip(dir.path(), &text, &p);
}

#[test]
fn an_ma_with_only_a_full_import_should_say_the_full_import_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("").replace(
        "import_flows =",
        "run_profiles = { full-import = [\"full-import\"], delta-sync = [\"delta-sync\"] }\nimport_flows =",
    );
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let people = ma(&p, "people");
    let delta = role(people, Role::DeltaImport);
    assert_eq!(delta.profile, None);
    assert_eq!(
        delta.note.as_deref(),
        Some("none: the full import `full-import` is used")
    );
    assert!(
        matches!(&people.triggers[..], [ProposedTrigger::Interval { profile, .. }] if profile == "full-import")
    );
    assert_eq!(
        role(people, Role::ConfirmingImport).profile.as_deref(),
        Some("full-import")
    );
    let export = role(people, Role::Export);
    assert_eq!(export.profile, None);
    assert!(export.note.as_deref().unwrap().contains("not needed"));
    round_trip(dir.path(), &text, &p);
}

/// A target whose export is no profile alone (`check` refuses it unless
/// its export follow-up is off): none is named, and with the follow-up
/// off none is missing.
#[test]
fn a_target_without_an_export_profile_should_be_told_it_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let directory = r#"connector = { type = "jsonl", path = "data/directory.jsonl", object_type_column = "kind" }"#;
    let text = quickstart_text();
    assert!(text.contains(directory));
    let text = text.replace(
        directory,
        &format!("{directory}\nrun_profiles = {{ full-import = [\"full-import\"], delta-sync = [\"delta-sync\"], sync-and-export = [\"delta-sync\", \"export\"] }}"),
    );
    let text = format!("{text}\n[ma.controller]\nfollow_ups = {{ export = false }}\n");
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let export = role(ma(&p, "directory"), Role::Export);
    assert_eq!(export.profile, None);
    assert_eq!(
        export.note.as_deref(),
        Some("none (not needed: the follow-up is off, follow_ups = { export = false })"),
        "{export:?}"
    );
}

#[test]
fn several_fitting_profiles_should_be_resolved_and_named_under_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("").replace(
        "import_flows =",
        "run_profiles = { delta-import = [\"delta-import\"], sync-a = [\"delta-sync\"], sync-b = [\"delta-sync\"] }\nimport_flows =",
    );
    let p = propose(&load(dir.path(), &text), &registry(), &History::default());
    let people = ma(&p, "people");
    assert_eq!(
        people.profiles,
        Some(ProfileOverrides {
            delta_sync: Some("sync-a".into()),
            export: None,
            confirming_import: None
        })
    );
    let config = round_trip(dir.path(), &text, &p);
    assert_eq!(
        config.mas["people"].profiles.delta_sync.as_deref(),
        Some("sync-a")
    );
}

#[test]
fn user_settings_should_be_kept_as_written_and_marked_as_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let text = quickstart_text().replace(
        "  { mv_type = \"person\", mv = \"source\", constant = \"hr\" },\n]\n",
        "  { mv_type = \"person\", mv = \"source\", constant = \"hr\" },\n]\n[ma.controller]\ntriggers = [\n  { type = \"interval\", every = \"5m\" },   # every five minutes\n]\nfollow_ups = { export = false }\n",
    ) + "\n[controller]\nstart_stagger = \"0s\"\nrun_mode = \"exclusive\"\n";
    let loaded = load(dir.path(), &text);
    let p = propose(&loaded, &registry(), &History::default());
    let hr = ma(&p, "hr");
    assert!(hr.triggers_kept);
    let kept = hr.kept("triggers").unwrap();
    assert!(
        kept.toml.contains("# every five minutes"),
        "as written: {}",
        kept.toml
    );
    let rendered = to_toml(&p);
    assert!(
        rendered.contains("follow_ups = { export = false }  # yours"),
        "{rendered}"
    );
    assert!(
        rendered.contains("start_stagger = \"0s\"  # yours"),
        "{rendered}"
    );
    assert!(
        rendered.contains("run_mode = \"exclusive\"  # yours"),
        "{rendered}"
    );
    assert!(
        !rendered.contains("# run_mode ="),
        "a user key is not listed as a default"
    );
    assert!(rendered.contains("discover would propose"), "{rendered}");
    assert_eq!(
        hr.controller.get("triggers").unwrap(),
        &serde_json::json!([{ "type": "interval", "every": "5m" }])
    );

    // The user's sections replace nothing: merge into the text without them.
    let bare = quickstart_text();
    let merged = merge(&bare, &rendered);
    let config =
        autosync_service::controller_config(&load(dir.path(), &merged), &registry()).unwrap();
    let hr = &config.mas["hr"];
    assert!(matches!(
        hr.triggers.as_slice(),
        [TriggerConfig::Interval(_)]
    ));
    assert!(!hr.follow_ups.export);
    assert_eq!(config.start_stagger, Duration::ZERO);
}

#[test]
fn parse_triggers_should_read_every_proposed_trigger_kind() {
    let all = [
        ProposedTrigger::FileWatch {
            path: Some("a.csv".into()),
            profile: "delta-import".into(),
        },
        ProposedTrigger::FileWatch {
            path: None,
            profile: "delta-import".into(),
        },
        ProposedTrigger::ChangePoll {
            every: "30s".into(),
            profile: "delta-import".into(),
        },
        ProposedTrigger::ChangeNotification {
            profile: "delta-import".into(),
        },
        ProposedTrigger::Interval {
            every: "15m".into(),
            profile: "delta-import".into(),
        },
        ProposedTrigger::Schedule {
            cron: "0 2 * * *".into(),
            timezone: "UTC".into(),
            profile: "full-import".into(),
        },
    ];
    let value = serde_json::Value::Array(all.iter().map(ProposedTrigger::to_value).collect());
    let parsed = parse_triggers("hr", &value).unwrap();
    assert_eq!(
        parsed.iter().map(TriggerConfig::kind).collect::<Vec<_>>(),
        [
            "file-watch",
            "file-watch",
            "change-poll",
            "change-notification",
            "interval",
            "schedule"
        ]
    );
}

/// An LDAP source: discovery proposes listening to its changes (the
/// connector's offer, made from its settings alone: no server is asked),
/// quoting the file as written, and the proposal, pasted, gets the
/// connector's listener.
#[test]
fn ldap_source_should_get_a_change_notification_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[metaverse.person]
attributes = ["uid"]

[[ma]]
name = "directory"
connector = { type = "ldap", url = "${LDAP_URL}", base_dns = ["ou=people,dc=example,dc=org"], object_classes = { person = "inetOrgPerson" } }
object_types = [{ name = "person", anchor = "entryUUID", dn = "dn" }]
projection = [{ mv_type = "person" }]
join = [{ on = [{ cs = "uid", mv = "uid" }] }]
import_flows = [{ mv = "uid", from = "uid" }]
"#;
    // The variable names a server nobody contacts.
    let env = |name: &str| (name == "LDAP_URL").then(|| "ldap://127.0.0.1:1".to_owned());
    let with_env = |text: &str| {
        let file = dir.path().join("autosync.toml");
        autosync_config::load_str_with_env(text, &file, &registry(), &env).unwrap()
    };
    let p = propose(&with_env(text), &registry(), &History::default());
    let people = ma(&p, "directory");
    assert_eq!(
        people.triggers,
        vec![ProposedTrigger::ChangeNotification {
            profile: "delta-import".into()
        }]
    );
    assert_eq!(
        people.triggers_why,
        "ldap connector: a persistent search of ou=people,dc=example,dc=org on ${LDAP_URL} \
         (content synchronisation, or the persistent-search control): the server tells each \
         change as it is made, and a change-notification trigger asks for `delta-import` at once"
    );
    let merged = merge(text, &to_toml(&p));
    let config = autosync_service::controller_config(&with_env(&merged), &registry()).unwrap();
    let [TriggerConfig::ChangeNotification(n)] = config.mas["directory"].triggers.as_slice() else {
        panic!("{:?}", config.mas["directory"].triggers);
    };
    assert!(
        n.source.get().is_some(),
        "the connector's listener is provided"
    );
    n.validate("directory", 0).unwrap();
    // Without a `triggers` key, the service listens by default.
    let config = autosync_service::controller_config(&with_env(text), &registry()).unwrap();
    assert!(matches!(
        config.mas["directory"].triggers.as_slice(),
        [TriggerConfig::ChangeNotification(_)]
    ));
}
