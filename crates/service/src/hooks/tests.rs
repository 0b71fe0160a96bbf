#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use autosync_model::{
    ExportCounters, ImportCounters, OutboundCounters, RunStatus, StepCounters, StepType,
    SyncCounters,
};
use std::collections::BTreeMap;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn before_only(src: &str) -> Hooks {
    let config = HooksConfig {
        before: Some(src.into()),
        ..HooksConfig::default()
    };
    Hooks::compile(&config, Path::new(".")).unwrap()
}

fn after_only(src: &str) -> Hooks {
    let config = HooksConfig {
        after: Some(src.into()),
        ..HooksConfig::default()
    };
    Hooks::compile(&config, Path::new(".")).unwrap()
}

fn compile_errors(config: &HooksConfig) -> Vec<String> {
    Hooks::compile(config, Path::new(".")).unwrap_err()
}

fn trigger() -> RunReason {
    RunReason::Trigger {
        trigger: "hr-nightly".into(),
    }
}

fn step(step_type: StepType, counters: StepCounters) -> StepRecord {
    StepRecord {
        step_type,
        status: RunStatus::Success,
        started_at: at("2026-06-10T12:00:00Z"),
        ended_at: Some(at("2026-06-10T12:01:00Z")),
        counters,
        errors: 0,
        message: None,
    }
}

fn record(deletes: u64) -> RunRecord {
    let mut outbound = BTreeMap::new();
    outbound.insert(
        "ad-users".to_owned(),
        OutboundCounters {
            provisioned_adds: 4,
            ..OutboundCounters::default()
        },
    );
    RunRecord {
        id: 42,
        ma: "ad".into(),
        profile: "export".into(),
        status: RunStatus::CompletedExportErrors,
        started_at: at("2026-06-10T12:00:00Z"),
        ended_at: Some(at("2026-06-10T12:05:00Z")),
        reason: trigger(),
        steps: vec![
            step(
                StepType::Export,
                StepCounters::Export(ExportCounters {
                    deletes,
                    ..ExportCounters::default()
                }),
            ),
            step(
                StepType::DeltaImport,
                StepCounters::Import(ImportCounters {
                    stage_add: 7,
                    ..ImportCounters::default()
                }),
            ),
            step(
                StepType::DeltaSync,
                StepCounters::Sync(SyncCounters {
                    outbound,
                    ..SyncCounters::default()
                }),
            ),
        ],
    }
}

const NIGHT: &str = r#"
    if now.hour >= 22 || now.hour < 6 {
        #{ skip: true, reason: "maintenance window" }
    }
"#;

#[test]
fn a_before_hook_skips_by_time_of_day() {
    let hooks = before_only(NIGHT);
    let night = hooks.before("hr", "delta-import", &trigger(), at("2026-06-10T23:15:00Z"));
    assert_eq!(
        night,
        HookOutcome {
            decision: BeforeDecision::Skip {
                reason: "maintenance window".into()
            },
            error: None
        }
    );
    let day = hooks.before("hr", "delta-import", &trigger(), at("2026-06-10T12:00:00Z"));
    assert_eq!(day.decision, BeforeDecision::Run);
    assert_eq!(day.error, None);
}

#[test]
fn a_before_hook_sees_the_ma_profile_reason_and_now() {
    let hooks = before_only(
        r#"
        if ma == "hr" && profile == "full-import" && reason_kind == "trigger"
            && reason == "trigger hr-nightly" && now.weekday == "sat"
            && now.rfc3339 == "2026-06-13T08:30:00Z" && now.minute == 30 {
            "skip"
        } else {
            "run"
        }
        "#,
    );
    let sat = at("2026-06-13T08:30:00Z");
    assert_eq!(
        hooks.before("hr", "full-import", &trigger(), sat).decision,
        BeforeDecision::Skip {
            reason: "skipped by the before hook".into()
        }
    );
    assert_eq!(
        hooks.before("hr", "delta-import", &trigger(), sat).decision,
        BeforeDecision::Run
    );
}

#[test]
fn an_after_hook_stops_the_ma_on_a_counter() {
    let hooks = after_only(r#"if run.steps[0].counters.deletes > 10 { "stop-ma" }"#);
    let outcome = hooks.after(&record(11), at("2026-06-10T12:05:00Z"));
    assert_eq!(
        outcome,
        HookOutcome {
            decision: AfterDecision::StopMa {
                reason: "stopped by the after hook".into()
            },
            error: None
        }
    );
    let outcome = hooks.after(&record(10), at("2026-06-10T12:05:00Z"));
    assert_eq!(outcome.decision, AfterDecision::Continue);
    assert_eq!(outcome.error, None);
}

#[test]
fn an_after_hook_stops_the_service_with_a_reason() {
    let hooks = after_only(
        r#"
        let adds = run.steps[1].counters.stage_add;
        let provisioned = run.steps[2].counters.outbound["ad-users"].provisioned_adds;
        if run.status == "completed-export-errors" && run.id == 42 && adds == 7 && provisioned == 4 {
            #{ action: "stop-service", reason: `export errors on ${run.ma} (${run.profile})` }
        }
        "#,
    );
    assert_eq!(
        hooks.after(&record(0), at("2026-06-10T12:05:00Z")),
        HookOutcome {
            decision: AfterDecision::StopService {
                reason: "export errors on ad (export)".into()
            },
            error: None
        }
    );
}

#[test]
fn a_runaway_loop_is_stopped_by_the_time_budget_and_the_run_goes_ahead() {
    let config = HooksConfig {
        before: Some("let n = 0; loop { n += 1; }".into()),
        after: Some("while true {}".into()),
        timeout: HumanDuration(Duration::from_millis(100)),
        ..HooksConfig::default()
    };
    let hooks = Hooks::compile(&config, Path::new(".")).unwrap();
    let before = hooks.before("hr", "delta-import", &trigger(), at("2026-06-10T12:00:00Z"));
    assert_eq!(before.decision, BeforeDecision::Run);
    let error = before.error.unwrap();
    assert_eq!(error.hook, HookKind::Before);
    assert_eq!(
        error.to_string(),
        "the before hook of MA `hr` failed: script exceeded its time budget of 100 ms; the run goes ahead"
    );
    let after = hooks.after(&record(0), at("2026-06-10T12:05:00Z"));
    assert_eq!(after.decision, AfterDecision::Continue);
    assert!(
        after
            .error
            .unwrap()
            .message
            .starts_with("script exceeded its time budget of 100 ms")
    );
}

#[test]
fn a_syntax_error_is_located() {
    let errors = compile_errors(&HooksConfig {
        before: Some("let x = 1;\nif x > { \"skip\" }".into()),
        ..HooksConfig::default()
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("before hook (`before`): script error:"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("at line 2, column"), "{}", errors[0]);
    assert!(
        errors[0].contains("\n  if x > { \"skip\" }\n"),
        "{}",
        errors[0]
    );
}

#[test]
fn an_unknown_variable_names_what_the_hook_can_read() {
    let errors = compile_errors(&HooksConfig {
        after: Some("if runs.status == \"success\" { \"stop-ma\" }".into()),
        ..HooksConfig::default()
    });
    assert!(
        errors[0].starts_with("after hook (`after`): "),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("at line 1, column 4"), "{}", errors[0]);
    assert!(
        errors[0].ends_with("help: this script can read: `run`, `now`"),
        "{}",
        errors[0]
    );
}

#[test]
fn hooks_are_read_from_files_relative_to_the_base_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hooks")).unwrap();
    std::fs::write(dir.path().join("hooks/before.rhai"), NIGHT).unwrap();
    std::fs::write(dir.path().join("hooks/after.rhai"), "\n\n  \"stop-ma\" +\n").unwrap();
    let config = HooksConfig {
        before_file: Some("hooks/before.rhai".into()),
        ..HooksConfig::default()
    };
    let hooks = Hooks::compile(&config, dir.path()).unwrap();
    assert!(hooks.has_before() && !hooks.has_after());
    assert!(matches!(
        hooks
            .before("hr", "p", &trigger(), at("2026-06-10T02:00:00Z"))
            .decision,
        BeforeDecision::Skip { .. }
    ));
    let config = HooksConfig {
        after_file: Some("hooks/after.rhai".into()),
        before_file: Some("hooks/missing.rhai".into()),
        ..HooksConfig::default()
    };
    let errors = Hooks::compile(&config, dir.path()).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("before hook: cannot read `before_file`"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("missing.rhai"), "{}", errors[0]);
    assert!(errors[1].starts_with("after hook (`"), "{}", errors[1]);
    assert!(
        errors[1].contains("after.rhai`): script error"),
        "{}",
        errors[1]
    );
}

#[test]
fn a_hook_set_twice_is_refused() {
    let errors = compile_errors(&HooksConfig {
        before: Some("\"skip\"".into()),
        before_file: Some("before.rhai".into()),
        timeout: HumanDuration(Duration::ZERO),
        ..HooksConfig::default()
    });
    assert_eq!(
        errors,
        vec![
            "hooks: `timeout` must be longer than 0 (e.g. \"2s\")".to_owned(),
            "before hook: set either `before` or `before_file`, not both".to_owned(),
        ]
    );
}

#[test]
fn a_bad_return_value_is_explained_and_the_safe_default_kept() {
    let now = at("2026-06-10T12:00:00Z");
    let cases = [
        (
            "42",
            "the hook returned 42; expected nothing (run), \"run\", \"skip\" or #{ skip: true, reason: \"...\" }",
        ),
        (
            "now.hour > 3",
            "the hook returned `true`, which is ambiguous",
        ),
        (
            "#{ skp: true }",
            "the hook returned a map with the unknown key `skp`",
        ),
        (
            "#{ skip: true, reason: 5 }",
            "the hook returned `reason: 5`; a reason must be a string",
        ),
        ("\"later\"", "the hook returned \"later\"; expected"),
    ];
    for (src, expected) in cases {
        let outcome = before_only(src).before("hr", "p", &trigger(), now);
        assert_eq!(outcome.decision, BeforeDecision::Run, "{src}");
        let message = outcome.error.unwrap().message;
        assert!(message.starts_with(expected), "{src}: {message}");
        assert!(
            message.ends_with("; the run goes ahead"),
            "{src}: {message}"
        );
    }
    let cases = [
        (
            "\"stop\"",
            "the hook returned \"stop\"; expected nothing (continue), \"stop-ma\", \"stop-service\"",
        ),
        (
            "#{ action: \"halt\" }",
            "the hook returned `action: \"halt\"`",
        ),
        (
            "#{ reason: \"x\" }",
            "the hook returned a map without a text `action`",
        ),
        ("[1, 2]", "the hook returned [1,2]; expected"),
        (
            "|| 1",
            "the script's result is a Fn, which the script cannot return",
        ),
    ];
    for (src, expected) in cases {
        let outcome = after_only(src).after(&record(0), now);
        assert_eq!(outcome.decision, AfterDecision::Continue, "{src}");
        let message = outcome.error.unwrap().message;
        assert!(message.starts_with(expected), "{src}: {message}");
        assert!(
            message.ends_with("; nothing is stopped"),
            "{src}: {message}"
        );
    }
}

#[test]
fn a_script_error_at_run_time_names_its_position() {
    let outcome =
        after_only("\nrun.steps[5].counters").after(&record(0), at("2026-06-10T12:00:00Z"));
    assert_eq!(outcome.decision, AfterDecision::Continue);
    let message = outcome.error.unwrap().message;
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn without_hooks_runs_go_ahead() {
    let hooks = Hooks::compile(&HooksConfig::default(), Path::new(".")).unwrap();
    assert!(!hooks.has_before() && !hooks.has_after());
    let now = at("2026-06-10T12:00:00Z");
    assert_eq!(
        hooks.before("hr", "p", &trigger(), now),
        HookOutcome {
            decision: BeforeDecision::Run,
            error: None
        }
    );
    assert_eq!(
        hooks.after(&record(99), now).decision,
        AfterDecision::Continue
    );
}

#[test]
fn the_config_reads_from_toml_with_a_default_timeout() {
    let config: HooksConfig =
        toml::from_str("before = '\"skip\"'\nafter_file = \"after.rhai\"\n").unwrap();
    assert_eq!(config.timeout, HumanDuration(Duration::from_secs(2)));
    assert_eq!(config.after_file, Some(PathBuf::from("after.rhai")));
    let config: HooksConfig = toml::from_str("timeout = \"500ms\"").unwrap();
    assert_eq!(config.timeout, HumanDuration(Duration::from_millis(500)));
    let err = toml::from_str::<HooksConfig>("befor = \"x\"").unwrap_err();
    assert!(err.to_string().contains("unknown field `befor`"), "{err}");
}

#[test]
fn the_readme_threshold_example_works() {
    let hooks = after_only(
        r#"
        // a custom threshold
        let exports = run.steps.filter(|s| s.type == "export");
        if exports.len() > 0 && exports[0].counters.deletes > 10 {
            #{ action: "stop-ma", reason: `${exports[0].counters.deletes} deletes on ${run.ma}` }
        }
        "#,
    );
    let now = at("2026-06-10T12:05:00Z");
    assert_eq!(
        hooks.after(&record(12), now),
        HookOutcome {
            decision: AfterDecision::StopMa {
                reason: "12 deletes on ad".into()
            },
            error: None
        }
    );
    assert_eq!(
        hooks.after(&record(3), now).decision,
        AfterDecision::Continue
    );
}
