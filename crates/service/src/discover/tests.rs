#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use autosync_config::Loaded;
use autosync_connector::Registry;
use autosync_model::{RunRecord, StepCounters, StepRecord};
use autosync_store::Store;
use autosync_store::sqlite::SqliteStore;
use autosync_triggers::script::ScriptRunner;
use autosync_triggers::{NoScriptHost, SystemClock, TriggerConfig, parse_triggers};
use std::path::Path;
use std::sync::Arc;

fn registry() -> Registry {
    let mut r = Registry::new();
    autosync_connectors::register_all(&mut r);
    r
}

fn load(dir: &Path, text: &str) -> Loaded {
    autosync_config::load_str(text, &dir.join("autosync.toml"), &registry())
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// The quickstart's configuration without its controller sections
/// (`[controller]` and every `[ma.controller]`).
fn quickstart_text() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/autosync.toml");
    let out = without_controller(&std::fs::read_to_string(path).unwrap());
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

fn round_trip(dir: &Path, config: &str, proposal: &Proposal) -> crate::ControllerConfig {
    let merged = merge(config, &to_toml(proposal));
    let loaded = load(dir, &merged);
    crate::controller_config(&loaded)
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
    let p = propose(&load(dir.path(), &text), &History::default());
    let hr = ma(&p, "hr");
    assert_eq!(hr.kind, MaKind::Source);
    assert_eq!(
        hr.triggers,
        vec![ProposedTrigger::FileWatch {
            path: "data/hr.csv".into(),
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
    let p = propose(&load(dir.path(), &text), &History::default());
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
    let p = propose(&load(dir.path(), &text), &History::default());
    let people = ma(&p, "people");
    let [ProposedTrigger::Script { name, every, .. }] = people.triggers.as_slice() else {
        panic!("{:?}", people.triggers);
    };
    assert_eq!((name.as_str(), every.as_str()), ("people-poll", "30s"));
    assert!(
        people.triggers_why.contains("changelog"),
        "{}",
        people.triggers_why
    );

    let config = round_trip(dir.path(), &text, &p);
    let triggers = &config.mas["people"].triggers;
    let [TriggerConfig::Script(script)] = triggers.as_slice() else {
        panic!("{triggers:?}");
    };
    let trigger = script.validate("people", 0, dir.path()).unwrap();
    let mut runner = ScriptRunner::new(&trigger, Arc::new(NoScriptHost), Arc::new(SystemClock));
    assert!(
        runner.call().unwrap().is_unit(),
        "first call: nothing to compare with"
    );
    assert!(runner.call().unwrap().is_unit(), "no change: no request");
    conn.execute("insert into people_log(id, op) values ('1', 'I')", [])
        .unwrap();
    assert_eq!(
        runner.call().unwrap().into_string().unwrap(),
        "delta-import",
        "the changelog grew: a delta import is asked for"
    );
    assert!(runner.call().unwrap().is_unit(), "asked once per change");
}

#[test]
fn sqlite_source_with_a_change_tracking_column_should_poll_that_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source(r#"{ kind = "column", column = "updated_at" }"#);
    let p = propose(&load(dir.path(), &text), &History::default());
    let [ProposedTrigger::Script { script, .. }] = ma(&p, "people").triggers.as_slice() else {
        panic!();
    };
    assert!(
        script.contains(r#"SELECT max(\"updated_at\") FROM \"people\""#),
        "{script}"
    );
    round_trip(dir.path(), &text, &p);
}

#[test]
fn source_without_change_notification_or_history_should_import_every_15_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let p = propose(&load(dir.path(), &text), &History::default());
    let people = ma(&p, "people");
    assert_eq!(
        people.triggers,
        vec![ProposedTrigger::Interval {
            every: "15m".into(),
            profile: "delta-import".into()
        }]
    );
    assert!(people.triggers_why.contains("no import in its run history"));
    round_trip(dir.path(), &text, &p);
}

fn history(ma: &str, times: &[&str]) -> History {
    let mut h = History::default();
    h.imports
        .insert(ma.into(), times.iter().map(|t| at(t)).collect());
    h
}

#[test]
fn source_with_history_should_import_at_the_median_gap_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let loaded = load(dir.path(), &text);
    // Gaps 28m, 31m, 29m, 2h (an outage): median 30m.
    let h = history(
        "people",
        &[
            "2026-11-01T08:00:00Z",
            "2026-11-01T08:28:00Z",
            "2026-11-01T08:59:00Z",
            "2026-11-01T09:28:00Z",
            "2026-11-01T11:28:00Z",
        ],
    );
    let p = propose(&loaded, &h);
    let people = ma(&p, "people");
    assert_eq!(
        people.triggers,
        vec![ProposedTrigger::Interval {
            every: "30m".into(),
            profile: "delta-import".into()
        }]
    );
    assert!(
        people.triggers_why.contains("median 30m apart"),
        "{}",
        people.triggers_why
    );
    assert_eq!(people.history.as_ref().unwrap().imports, 5);
    round_trip(dir.path(), &text, &p);
}

#[test]
fn source_imported_daily_should_get_a_daily_schedule_at_its_usual_time() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let h = history(
        "people",
        &[
            "2026-11-01T02:05:00Z",
            "2026-11-02T02:00:00Z",
            "2026-11-03T02:10:00Z",
            "2026-11-04T02:00:00Z",
        ],
    );
    let p = propose(&load(dir.path(), &text), &h);
    assert_eq!(
        ma(&p, "people").triggers,
        vec![ProposedTrigger::Schedule {
            cron: "5 2 * * *".into(),
            timezone: "UTC".into(),
            profile: "delta-import".into()
        }]
    );
    round_trip(dir.path(), &text, &p);
}

#[test]
fn source_imported_weekly_should_get_a_weekly_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    // Mondays at 06:00.
    let h = history(
        "people",
        &[
            "2026-11-02T06:00:00Z",
            "2026-11-09T06:00:00Z",
            "2026-11-16T06:00:00Z",
        ],
    );
    let p = propose(&load(dir.path(), &text), &h);
    assert_eq!(
        ma(&p, "people").triggers,
        vec![ProposedTrigger::Schedule {
            cron: "0 6 * * 1".into(),
            timezone: "UTC".into(),
            profile: "delta-import".into()
        }]
    );
    round_trip(dir.path(), &text, &p);
}

#[test]
fn a_single_past_import_should_not_make_a_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("");
    let p = propose(
        &load(dir.path(), &text),
        &history("people", &["2026-11-02T06:00:00Z"]),
    );
    let people = ma(&p, "people");
    assert!(
        people.triggers_why.contains("a single import"),
        "{}",
        people.triggers_why
    );
    assert!(
        matches!(&people.triggers[..], [ProposedTrigger::Interval { every, .. }] if every == "15m")
    );
}

#[test]
fn round_interval_should_pick_the_nearest_sensible_interval() {
    let m = |n: u64| Duration::from_secs(n * 60);
    assert_eq!(round_interval(Duration::from_secs(3)), m(1));
    assert_eq!(round_interval(m(14)), m(15));
    assert_eq!(round_interval(m(17)), m(15));
    assert_eq!(round_interval(m(19)), m(20));
    assert_eq!(round_interval(m(50)), m(60));
    assert_eq!(round_interval(m(23 * 60)), m(24 * 60));
    assert_eq!(round_interval(m(60 * 24 * 30)), m(60 * 24 * 7));
}

#[test]
fn an_ma_with_only_a_full_import_should_say_the_full_import_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let text = sqlite_source("").replace(
        "import_flows =",
        "run_profiles = { full-import = [\"full-import\"], delta-sync = [\"delta-sync\"] }\nimport_flows =",
    );
    let p = propose(&load(dir.path(), &text), &History::default());
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

#[test]
fn a_target_without_an_export_profile_should_be_told_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let text = quickstart_text().replace(
        "provisioning = [{ condition = \"status == 'active'\", anchor = \"employeeId\", dn = \"email\" }]",
        "provisioning = [{ condition = \"status == 'active'\", anchor = \"employeeId\", dn = \"email\" }]\nrun_profiles = { full-import = [\"full-import\"], delta-sync = [\"delta-sync\"] }",
    );
    let p = propose(&load(dir.path(), &text), &History::default());
    let export = role(ma(&p, "directory"), Role::Export);
    assert_eq!(export.profile, None);
    assert!(
        export.note.as_deref().unwrap().starts_with("MISSING"),
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
    let p = propose(&load(dir.path(), &text), &History::default());
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
        "  { mv = \"source\", constant = \"hr\" },\n]\n",
        "  { mv = \"source\", constant = \"hr\" },\n]\n[ma.controller]\ntriggers = [\n  { type = \"interval\", every = \"5m\" },   # every five minutes\n]\nfollow_ups = { export = false }\n",
    ) + "\n[controller]\nstart_stagger = \"0s\"\nrun_mode = \"exclusive\"\n";
    let loaded = load(dir.path(), &text);
    let p = propose(&loaded, &History::default());
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
    let config = crate::controller_config(&load(dir.path(), &merged)).unwrap();
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
            path: "a.csv".into(),
            profile: "delta-import".into(),
        },
        ProposedTrigger::Script {
            name: "p".into(),
            every: "30s".into(),
            script: "()".into(),
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
        ["file-watch", "script", "interval", "schedule"]
    );
}

fn run(ma: &str, profile: &str, step: StepType, reason: RunReason, started: &str) -> RunRecord {
    let started_at = at(started);
    RunRecord {
        id: 0,
        ma: ma.into(),
        profile: profile.into(),
        status: RunStatus::Success,
        started_at,
        ended_at: Some(started_at + chrono::Duration::seconds(5)),
        reason,
        steps: vec![StepRecord {
            step_type: step,
            status: RunStatus::Success,
            started_at,
            ended_at: Some(started_at + chrono::Duration::seconds(5)),
            counters: StepCounters::for_step(step),
            errors: 0,
            message: None,
        }],
    }
}

#[test]
fn read_history_should_count_asked_imports_but_not_confirming_imports_or_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(dir.path(), &quickstart_text());
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let manual = || RunReason::Manual { by: "cli".into() };
    let mut runs = vec![
        run(
            "hr",
            "full-import",
            StepType::FullImport,
            manual(),
            "2026-11-01T08:00:00Z",
        ),
        run(
            "hr",
            "delta-import",
            StepType::DeltaImport,
            RunReason::Trigger {
                trigger: "interval (15m)".into(),
            },
            "2026-11-01T08:15:00Z",
        ),
        run(
            "hr",
            "delta-sync",
            StepType::DeltaSync,
            manual(),
            "2026-11-01T08:16:00Z",
        ),
        run(
            "app",
            "delta-import",
            StepType::DeltaImport,
            RunReason::FollowUp {
                run_id: 1,
                because: "confirming import".into(),
            },
            "2026-11-01T08:17:00Z",
        ),
        run(
            "app",
            "full-import",
            StepType::FullImport,
            manual(),
            "2026-11-01T07:00:00Z",
        ),
    ];
    let mut txn = store.begin().unwrap();
    for r in &mut runs {
        txn.run_insert(r).unwrap();
    }
    txn.commit().unwrap();
    let h = read_history(&loaded, &mut *store.read().unwrap()).unwrap();
    assert_eq!(
        h.imports["hr"],
        vec![at("2026-11-01T08:00:00Z"), at("2026-11-01T08:15:00Z")]
    );
    assert_eq!(h.imports["app"], vec![at("2026-11-01T07:00:00Z")]);
    assert!(h.imports["directory"].is_empty());

    let lines = summary_lines(&loaded, &mut *store.read().unwrap());
    assert_eq!(lines.len(), 3, "one line per MA: {lines:#?}");
    assert!(
        lines[0].starts_with("discover: MA `hr` is a source"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("file watch on data/hr.csv"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("no trigger"), "{}", lines[1]);
}
