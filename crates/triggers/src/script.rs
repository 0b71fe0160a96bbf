//! The script trigger: a user's Rhai script, run every `every` (default 60 s,
//! first run one interval after start), returns what to queue:
//!
//! - `()` (nothing), a profile name `"delta-import"`,
//! - a map `#{ profile: "delta-import", exclusive: true, run_immediate: true }`,
//! - or an array of names and maps.
//!
//! State between calls: the variable `state` (a map, initially `#{}`) keeps
//! whatever the script puts in it; other top-level variables start afresh at
//! each call. Functions the script can call are in [`api`]: `last_run(ma)`,
//! `http_get(url)`, `now()`, `log(msg)`, and those connector types lend
//! (`sql_scalar(sqlite_path, query)` of the SQLite connector).
//!
//! Sandboxed: a maximum number of operations, a wall-time budget per call,
//! no `eval`, no `import` of modules, bounded strings, arrays, maps and call
//! depth. Errors (syntax found at validation; run-time errors, a bad return
//! value, exceeding a limit) are reported as [`crate::TriggerError`]; then
//! `on_error = "continue"` (default) runs again at the next tick and
//! `on_error = "stop"` ends this trigger (the MA's other triggers go on).

pub mod api;

#[cfg(test)]
mod tests;

use crate::clock::Clock;
use crate::config::{Ask, Common, check_positive, key_error};
use crate::duration::HumanDuration;
use crate::sink::RequestSink;
use crate::{TriggerError, TriggerRequest};
use rhai::{AST, Dynamic, Engine, Map, Scope};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use api::{NoScriptHost, ScriptHost};

/// `{ type = "script", every = "30s", file = "triggers/hr.rhai", on_error = "stop" }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_every")]
    pub every: HumanDuration,
    /// The script's source, inline (or use `file`).
    #[serde(default)]
    pub script: Option<String>,
    /// A file holding the script, relative to the configuration's folder.
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default = "default_max_operations")]
    pub max_operations: u64,
    /// Wall time one call may take.
    #[serde(default = "default_time_budget")]
    pub time_budget: HumanDuration,
}

fn default_every() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_max_operations() -> u64 {
    1_000_000
}
fn default_time_budget() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// What a script error does to the trigger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Report, and run again at the next tick.
    #[default]
    Continue,
    /// Report, and stop this trigger.
    Stop,
}

/// The sandbox's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_operations: u64,
    pub time_budget: Duration,
}

/// A validated (compiled) script trigger.
#[derive(Clone, Debug)]
pub struct ScriptTrigger {
    /// `ask.profile` is unused: the script names the profiles.
    pub ask: Ask,
    pub ast: Arc<AST>,
    pub every: Duration,
    pub on_error: OnError,
    pub limits: Limits,
    /// Relative paths given to functions connector types lend (the file
    /// of `sql_scalar`) resolve against it.
    pub base_dir: PathBuf,
}

/// An engine with the sandbox's limits and without `eval` and modules, but
/// without the host functions (enough to compile).
pub fn sandboxed_engine(limits: Limits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(32)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(1 << 20)
        .set_max_array_size(10_000)
        .set_max_map_size(10_000)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new())
        .disable_symbol("eval");
    engine
}

impl ScriptConfig {
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
        base_dir: &Path,
    ) -> Result<ScriptTrigger, crate::TriggerConfigError> {
        let kind = "script";
        check_positive(ma, index, kind, "every", self.every.0)?;
        if self.max_operations == 0 {
            return Err(key_error(
                ma,
                index,
                kind,
                "max_operations",
                "must be at least 1",
            ));
        }
        check_positive(ma, index, kind, "time_budget", self.time_budget.0)?;
        let (source, key, origin) = match (&self.script, &self.file) {
            (Some(s), None) => (s.clone(), "script", "inline".to_owned()),
            (None, Some(f)) => {
                let path = base_dir.join(f);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    key_error(
                        ma,
                        index,
                        kind,
                        "file",
                        format!("cannot read `{}`: {e}", path.display()),
                    )
                })?;
                (text, "file", f.display().to_string())
            }
            _ => {
                return Err(key_error(
                    ma,
                    index,
                    kind,
                    "script",
                    "give exactly one of `script` (inline) or `file`",
                ));
            }
        };
        let limits = Limits {
            max_operations: self.max_operations,
            time_budget: self.time_budget.0,
        };
        let ast = sandboxed_engine(limits).compile(&source).map_err(|e| {
            // A file's error names the file: its line is that file's.
            let what = match &self.file {
                Some(f) => format!("the script `{}`", base_dir.join(f).display()),
                None => "the script".to_owned(),
            };
            key_error(
                ma,
                index,
                kind,
                key,
                format!("{what} does not compile: {e}"),
            )
        })?;
        let details = format!("every {}, {origin}", self.every);
        let common = Common {
            profile: "",
            exclusive: false,
            run_immediate: false,
        };
        Ok(ScriptTrigger {
            ask: Ask::new(ma, kind, self.name.as_deref(), &details, common),
            ast: Arc::new(ast),
            every: self.every.0,
            on_error: self.on_error,
            limits,
            base_dir: base_dir.to_path_buf(),
        })
    }
}

/// Reads what the script returned into requests.
pub fn requests_from(value: Dynamic, ask: &Ask) -> Result<Vec<TriggerRequest>, String> {
    if value.is_unit() {
        return Ok(Vec::new());
    }
    if value.is_array() {
        let items = value.into_array().map_err(|t| format!("unexpected {t}"))?;
        return items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                one_request(item, ask).map_err(|e| format!("item {i} of the returned array: {e}"))
            })
            .collect();
    }
    one_request(value, ask).map(|r| vec![r])
}

fn one_request(value: Dynamic, ask: &Ask) -> Result<TriggerRequest, String> {
    let mut request = TriggerRequest {
        ma: ask.ma.clone(),
        profile: String::new(),
        exclusive: false,
        run_immediate: false,
        trigger: ask.trigger.clone(),
    };
    let type_name = value.type_name();
    if value.is_string() {
        request.profile = value.into_string().map_err(|t| format!("unexpected {t}"))?;
    } else if value.is_map() {
        let map = value.cast::<Map>();
        for (key, v) in map {
            match key.as_str() {
                "profile" => {
                    request.profile = v
                        .into_string()
                        .map_err(|t| format!("`profile` must be a string, not {t}"))?
                }
                "exclusive" => {
                    request.exclusive = v
                        .as_bool()
                        .map_err(|t| format!("`exclusive` must be true or false, not {t}"))?
                }
                "run_immediate" => {
                    request.run_immediate = v
                        .as_bool()
                        .map_err(|t| format!("`run_immediate` must be true or false, not {t}"))?;
                }
                other => {
                    return Err(format!(
                        "unknown key `{other}` (use profile, exclusive, run_immediate)"
                    ));
                }
            }
        }
    } else {
        return Err(format!(
            "the script returned a {type_name}; return (), a profile name, a map #{{ profile: \"...\" }} or an array of them"
        ));
    }
    if request.profile.trim().is_empty() {
        return Err("no profile named (give a non-empty `profile`)".into());
    }
    Ok(request)
}

/// One script call: the engine (with host functions), the compiled script
/// and the persistent scope.
pub struct ScriptRunner {
    engine: Arc<Engine>,
    ast: Arc<AST>,
    scope: Scope<'static>,
    deadline: Arc<Mutex<Option<Instant>>>,
    budget: Duration,
}

impl ScriptRunner {
    pub fn new(trigger: &ScriptTrigger, host: Arc<dyn ScriptHost>, clock: Arc<dyn Clock>) -> Self {
        let mut engine = sandboxed_engine(trigger.limits);
        let deadline: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let budget = trigger.limits.time_budget;
        let watch = deadline.clone();
        engine.on_progress(move |_| {
            let due = *watch.lock().unwrap_or_else(|e| e.into_inner());
            match due {
                Some(at) if Instant::now() >= at => Some(Dynamic::from(format!(
                    "time budget of {} exceeded",
                    crate::duration::format_duration(budget)
                ))),
                _ => None,
            }
        });
        api::register(&mut engine, &trigger.ask, &trigger.base_dir, host, clock);
        let mut scope = Scope::new();
        scope.push("state", Map::new());
        ScriptRunner {
            engine: Arc::new(engine),
            ast: trigger.ast.clone(),
            scope,
            deadline,
            budget,
        }
    }

    /// Runs the script once (blocking: call it off the async threads).
    pub fn call(&mut self) -> Result<Dynamic, String> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + self.budget);
        let kept = self.scope.len();
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &self.ast);
        self.scope.rewind(kept);
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = None;
        result.map_err(|e| match *e {
            rhai::EvalAltResult::ErrorTerminated(reason, pos) => format!("{reason} ({pos})"),
            other => other.to_string(),
        })
    }
}

impl ScriptTrigger {
    /// Calls the script every interval until cancelled, stopped by an error
    /// (`on_error = "stop"`), or the sink closes.
    pub async fn run(
        self,
        host: Arc<dyn ScriptHost>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn RequestSink>,
        cancel: CancellationToken,
    ) {
        let mut runner = Some(ScriptRunner::new(&self, host, clock.clone()));
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
            let Some(mut current) = runner.take() else {
                return;
            };
            let joined = tokio::task::spawn_blocking(move || {
                let result = current.call();
                (current, result)
            })
            .await;
            let outcome = match joined {
                Ok((back, result)) => {
                    runner = Some(back);
                    result.and_then(|value| requests_from(value, &self.ask))
                }
                Err(e) => Err(format!("the script's task failed: {e}")),
            };
            match outcome {
                Ok(requests) => {
                    for request in requests {
                        if sink.request(request).is_err() {
                            return;
                        }
                    }
                }
                Err(message) => {
                    let stop = self.on_error == OnError::Stop || runner.is_none();
                    sink.error(TriggerError {
                        ma: self.ask.ma.clone(),
                        trigger: self.ask.trigger.clone(),
                        message,
                        stopped: stop,
                        at: clock.now(),
                    });
                    if stop {
                        return;
                    }
                }
            }
        }
    }
}
