//! Controller hooks per MA: Rhai scripts (autosync-expr's sandbox) run
//! before a run starts (may skip it) and after a run ends (may stop the MA
//! or the whole service).
//!
//! A hook never panics and never blocks longer than its `timeout`. When a
//! hook fails (script error, time budget, a return value it cannot mean),
//! the error comes back in [`HookOutcome::error`] alongside a safe default:
//!
//! - **before → `Run`**: a broken hook must not silently stop an MA's
//!   synchronisation (a typo would otherwise halt every run with nothing in
//!   the run history to show why); the executor logs and notifies the error
//!   and the run goes ahead. Use blackout windows or maintenance mode for
//!   guarantees that no run starts.
//! - **after → `Continue`**: stopping an MA or the service needs a decision,
//!   not an accident.
//!
//! Hooks evaluate synchronously (up to `timeout`): call them from
//! `spawn_blocking` or a blocking section, not on the async executor thread.

use autosync_expr::{HookScript, ScriptLimits, compile_hook};
use autosync_model::{RunReason, RunRecord, StepRecord};
use autosync_triggers::HumanDuration;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[ma.controller.hooks]`: `before` / `after` inline scripts or
/// `before_file` / `after_file` paths (relative to the configuration file's
/// directory), and the time budget of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_file: Option<PathBuf>,
    /// Wall-clock budget of one evaluation (`"2s"`, `"500ms"`); default 2 s.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            before: None,
            before_file: None,
            after: None,
            after_file: None,
            timeout: default_timeout(),
        }
    }
}

/// Which hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookKind {
    Before,
    After,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Before => "before",
            HookKind::After => "after",
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the before hook decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeforeDecision {
    Run,
    Skip { reason: String },
}

/// What the after hook decided (the controller's machine acts on it).
pub use autosync_controller::machine::AfterDecision;

/// A hook that failed; the decision next to it is the safe default.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {hook} hook of MA `{ma}` failed: {message}")]
pub struct HookError {
    pub hook: HookKind,
    pub ma: String,
    pub message: String,
}

/// A hook's decision, and its error when it failed (the decision is then
/// the safe default: `Run` / `Continue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookOutcome<D> {
    pub decision: D,
    pub error: Option<HookError>,
}

/// One MA's compiled hooks. Cheap to clone; `Hooks::default()` has none.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    before: Option<HookScript>,
    after: Option<HookScript>,
    /// A digest of the scripts' texts as read (a file's included): a
    /// reload compares it to tell an edited hook file.
    digest: u64,
}

/// What the before hook can read.
const BEFORE_VARIABLES: [&str; 5] = ["ma", "profile", "reason", "reason_kind", "now"];
/// What the after hook can read.
const AFTER_VARIABLES: [&str; 2] = ["run", "now"];

const DEFAULT_SKIP_REASON: &str = "skipped by the before hook";
const DEFAULT_STOP_REASON: &str = "stopped by the after hook";

impl Hooks {
    /// Reads and compiles the configured hooks. Every problem is reported,
    /// each naming the hook and, for script errors, the line and column.
    pub fn compile(config: &HooksConfig, base_dir: &Path) -> Result<Hooks, Vec<String>> {
        let mut errors = Vec::new();
        let timeout = config.timeout.0;
        if timeout.is_zero() {
            errors.push("hooks: `timeout` must be longer than 0 (e.g. \"2s\")".to_owned());
        }
        // The hook's `timeout` is its limit: the default operation limit
        // would stop a long hook early on a fast machine (50 million
        // operations can take less than 100 ms), whatever the timeout says.
        let limits = ScriptLimits {
            time_budget: timeout,
            max_operations: 0,
            ..ScriptLimits::default()
        };
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        let before = compile_one(
            &mut digest,
            HookKind::Before,
            (config.before.as_deref(), config.before_file.as_deref()),
            base_dir,
            &BEFORE_VARIABLES,
            &limits,
            &mut errors,
        );
        let after = compile_one(
            &mut digest,
            HookKind::After,
            (config.after.as_deref(), config.after_file.as_deref()),
            base_dir,
            &AFTER_VARIABLES,
            &limits,
            &mut errors,
        );
        if errors.is_empty() {
            use std::hash::Hasher;
            Ok(Hooks {
                before,
                after,
                digest: digest.finish(),
            })
        } else {
            Err(errors)
        }
    }

    pub fn has_before(&self) -> bool {
        self.before.is_some()
    }

    pub fn has_after(&self) -> bool {
        self.after.is_some()
    }

    /// A digest of the hooks' texts as read at compile time (0 without
    /// hooks): a hook file edited since gives another.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Runs the before hook (none: `Run`). It reads `ma`, `profile`,
    /// `reason` (text), `reason_kind` and `now`.
    pub fn before(
        &self,
        ma: &str,
        profile: &str,
        reason: &RunReason,
        now: DateTime<Utc>,
    ) -> HookOutcome<BeforeDecision> {
        let Some(script) = &self.before else {
            return HookOutcome {
                decision: BeforeDecision::Run,
                error: None,
            };
        };
        let result = script
            .run(&[
                ("ma", json!(ma)),
                ("profile", json!(profile)),
                ("reason", json!(reason.to_string())),
                ("reason_kind", json!(reason_kind(reason))),
                ("now", now_value(now)),
            ])
            .map_err(|e| e.message)
            .and_then(before_decision);
        match result {
            Ok(decision) => HookOutcome {
                decision,
                error: None,
            },
            Err(message) => HookOutcome {
                decision: BeforeDecision::Run,
                error: Some(HookError {
                    hook: HookKind::Before,
                    ma: ma.to_owned(),
                    message: format!("{message}; the run goes ahead"),
                }),
            },
        }
    }

    /// Runs the after hook (none: `Continue`) on a finished run's record;
    /// `now` is when it runs. It reads `run` and `now`.
    pub fn after(&self, record: &RunRecord, now: DateTime<Utc>) -> HookOutcome<AfterDecision> {
        let Some(script) = &self.after else {
            return HookOutcome {
                decision: AfterDecision::Continue,
                error: None,
            };
        };
        let result = script
            .run(&[("run", run_value(record)), ("now", now_value(now))])
            .map_err(|e| e.message)
            .and_then(after_decision);
        match result {
            Ok(decision) => HookOutcome {
                decision,
                error: None,
            },
            Err(message) => HookOutcome {
                decision: AfterDecision::Continue,
                error: Some(HookError {
                    hook: HookKind::After,
                    ma: record.ma.clone(),
                    message: format!("{message}; nothing is stopped"),
                }),
            },
        }
    }
}

fn compile_one(
    digest: &mut std::collections::hash_map::DefaultHasher,
    kind: HookKind,
    (inline, file): (Option<&str>, Option<&Path>),
    base_dir: &Path,
    variables: &[&str],
    limits: &ScriptLimits,
    errors: &mut Vec<String>,
) -> Option<HookScript> {
    let (source, origin) = match (inline, file) {
        (None, None) => return None,
        (Some(_), Some(_)) => {
            errors.push(format!(
                "{kind} hook: set either `{kind}` or `{kind}_file`, not both"
            ));
            return None;
        }
        (Some(src), None) => (src.to_owned(), format!("`{kind}`")),
        (None, Some(path)) => {
            let full = base_dir.join(path);
            match std::fs::read_to_string(&full) {
                Ok(src) => (src, format!("`{}`", full.display())),
                Err(e) => {
                    errors.push(format!(
                        "{kind} hook: cannot read `{kind}_file` `{}`: {e}",
                        full.display()
                    ));
                    return None;
                }
            }
        }
    };
    {
        use std::hash::Hash;
        (kind.to_string(), &source).hash(digest);
    }
    match compile_hook(&source, variables, limits) {
        Ok(script) => Some(script),
        Err(e) => {
            errors.push(format!("{kind} hook ({origin}): {}", e.render(&source)));
            None
        }
    }
}

fn reason_kind(reason: &RunReason) -> &'static str {
    match reason {
        RunReason::Manual { .. } => "manual",
        RunReason::Trigger { .. } => "trigger",
        RunReason::FollowUp { .. } => "follow-up",
        RunReason::Reconciliation { .. } => "reconciliation",
    }
}

fn weekday(t: DateTime<Utc>) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][t.weekday().num_days_from_monday() as usize]
}

/// `now`: RFC 3339 and its parts, in UTC.
fn now_value(now: DateTime<Utc>) -> Json {
    json!({
        "rfc3339": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "unix": now.timestamp(),
        "year": now.year(),
        "month": now.month(),
        "day": now.day(),
        "hour": now.hour(),
        "minute": now.minute(),
        "second": now.second(),
        "weekday": weekday(now),
    })
}

fn rfc3339(t: DateTime<Utc>) -> Json {
    json!(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `run`: the record with counters as maps of snake_case names.
fn run_value(record: &RunRecord) -> Json {
    json!({
        "id": record.id,
        "ma": record.ma,
        "profile": record.profile,
        "status": record.status.as_str(),
        "reason": record.reason.to_string(),
        "reason_kind": reason_kind(&record.reason),
        "started_at": rfc3339(record.started_at),
        "ended_at": record.ended_at.map_or(Json::Null, rfc3339),
        "errors": record.steps.iter().map(|s| s.errors).sum::<u64>(),
        "steps": record.steps.iter().map(step_value).collect::<Vec<_>>(),
    })
}

fn step_value(step: &StepRecord) -> Json {
    let counters = serde_json::to_value(&step.counters).unwrap_or(Json::Null);
    json!({
        "type": step.step_type.as_str(),
        "status": step.status.as_str(),
        "errors": step.errors,
        "message": step.message,
        "started_at": rfc3339(step.started_at),
        "ended_at": step.ended_at.map_or(Json::Null, rfc3339),
        "counters": snake_keys(counters),
    })
}

/// Counter names with `_` for `-` (`stage_add`), so scripts can write
/// `counters.stage_add`; the keys of `outbound` are MA names, kept as is.
fn snake_keys(value: Json) -> Json {
    match value {
        Json::Object(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let value = if key == "outbound" {
                        match value {
                            Json::Object(per_ma) => Json::Object(
                                per_ma
                                    .into_iter()
                                    .map(|(ma, counters)| (ma, snake_keys(counters)))
                                    .collect(),
                            ),
                            other => other,
                        }
                    } else {
                        snake_keys(value)
                    };
                    (key.replace('-', "_"), value)
                })
                .collect(),
        ),
        other => other,
    }
}

fn short(value: &Json) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn map_reason(entries: &Map<String, Json>, default: &str) -> Result<String, String> {
    match entries.get("reason") {
        None | Some(Json::Null) => Ok(default.to_owned()),
        Some(Json::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "the hook returned `reason: {}`; a reason must be a string",
            short(other)
        )),
    }
}

fn check_keys(entries: &Map<String, Json>, allowed: &[&str], expected: &str) -> Result<(), String> {
    match entries.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "the hook returned a map with the unknown key `{key}`; expected {expected}"
        )),
        None => Ok(()),
    }
}

const BEFORE_EXPECTED: &str =
    "nothing (run), \"run\", \"skip\" or #{ skip: true, reason: \"...\" }";

fn before_decision(value: Json) -> Result<BeforeDecision, String> {
    let skip = |reason: String| BeforeDecision::Skip { reason };
    match value {
        Json::Null => Ok(BeforeDecision::Run),
        Json::String(s) if s == "run" => Ok(BeforeDecision::Run),
        Json::String(s) if s == "skip" => Ok(skip(DEFAULT_SKIP_REASON.to_owned())),
        Json::Bool(b) => Err(format!(
            "the hook returned `{b}`, which is ambiguous; expected {BEFORE_EXPECTED} (write `if cond {{ \"skip\" }}`)"
        )),
        Json::Object(entries) => {
            check_keys(&entries, &["skip", "action", "reason"], BEFORE_EXPECTED)?;
            let skipping = match (entries.get("skip"), entries.get("action")) {
                (Some(Json::Bool(b)), None) => *b,
                (None, Some(Json::String(a))) if a == "skip" => true,
                (None, Some(Json::String(a))) if a == "run" => false,
                (None, None) => {
                    return Err(format!(
                        "the hook returned a map without `skip`; expected {BEFORE_EXPECTED}"
                    ));
                }
                _ => {
                    return Err(format!(
                        "the hook returned {}; expected {BEFORE_EXPECTED}",
                        short(&Json::Object(entries.clone()))
                    ));
                }
            };
            if skipping {
                Ok(skip(map_reason(&entries, DEFAULT_SKIP_REASON)?))
            } else {
                Ok(BeforeDecision::Run)
            }
        }
        other => Err(format!(
            "the hook returned {}; expected {BEFORE_EXPECTED}",
            short(&other)
        )),
    }
}

const AFTER_EXPECTED: &str = "nothing (continue), \"stop-ma\", \"stop-service\" or #{ action: \"stop-ma\", reason: \"...\" }";

fn after_action(action: &str, reason: String) -> Option<AfterDecision> {
    match action {
        "continue" => Some(AfterDecision::Continue),
        "stop-ma" => Some(AfterDecision::StopMa { reason }),
        "stop-service" => Some(AfterDecision::StopService { reason }),
        _ => None,
    }
}

fn after_decision(value: Json) -> Result<AfterDecision, String> {
    match value {
        Json::Null => Ok(AfterDecision::Continue),
        Json::String(s) => after_action(&s, DEFAULT_STOP_REASON.to_owned()).ok_or_else(|| {
            format!(
                "the hook returned {}; expected {AFTER_EXPECTED}",
                short(&Json::String(s.clone()))
            )
        }),
        Json::Object(entries) => {
            check_keys(&entries, &["action", "reason"], AFTER_EXPECTED)?;
            let reason = map_reason(&entries, DEFAULT_STOP_REASON)?;
            match entries.get("action") {
                Some(Json::String(a)) => after_action(a, reason).ok_or_else(|| {
                    format!("the hook returned `action: \"{a}\"`; expected {AFTER_EXPECTED}")
                }),
                _ => Err(format!(
                    "the hook returned a map without a text `action`; expected {AFTER_EXPECTED}"
                )),
            }
        }
        other => Err(format!(
            "the hook returned {}; expected {AFTER_EXPECTED}",
            short(&other)
        )),
    }
}

#[cfg(test)]
mod tests;
