//! The functions a trigger script can call:
//!
//! | function | returns |
//! | --- | --- |
//! | `last_run(ma)` | `#{ id, profile, status, started_at, ended_at }` of the MA's last run (times in unix seconds, `ended_at` is `()` while running), or `()` when it never ran |
//! | `http_get(url)` | the body of a plain-HTTP GET (10 s timeout; an error status or a failure is a script error) |
//! | `now()` | the current time in unix seconds (the controller's clock) |
//! | `log(msg)` | logs `msg` (as do `print` and `debug`) |
//!
//! and the functions connector types lend ([`ScriptHost::functions`],
//! e.g. the SQLite connector's `sql_scalar(sqlite_path, query)`), which
//! the host gathers from its connector registry: this crate links no
//! database client.

use crate::clock::Clock;
use crate::config::Ask;
use autosync_connector::{ScriptFunction, ScriptValue};
use autosync_model::RunRecord;
use rhai::{Blob, Dynamic, Engine, EvalAltResult, Map};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the program running the triggers lends scripts: the run history,
/// and the functions its connector types lend.
pub trait ScriptHost: Send + Sync {
    /// The last run of `ma` (finished or running), if any.
    fn last_run(&self, ma: &str) -> Option<RunRecord>;

    /// Functions lent by connector types (`Registry::script_functions`),
    /// registered on every script. None by default.
    fn functions(&self) -> &[ScriptFunction] {
        &[]
    }
}

/// A host that knows no runs (for tests and tools without a controller).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoScriptHost;

impl ScriptHost for NoScriptHost {
    fn last_run(&self, _ma: &str) -> Option<RunRecord> {
        None
    }
}

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

type FnResult<T> = Result<T, Box<EvalAltResult>>;

fn script_error(message: String) -> Box<EvalAltResult> {
    message.into()
}

/// Registers the functions on `engine` for the trigger `ask`.
pub fn register(
    engine: &mut Engine,
    ask: &Ask,
    base_dir: &Path,
    host: Arc<dyn ScriptHost>,
    clock: Arc<dyn Clock>,
) {
    for function in host.functions() {
        register_lent(engine, *function, base_dir);
    }
    engine.register_fn("last_run", move |ma: &str| -> Dynamic {
        host.last_run(ma)
            .map_or(Dynamic::UNIT, |run| Dynamic::from_map(run_map(&run)))
    });

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .into();
    engine.register_fn("http_get", move |url: &str| -> FnResult<String> {
        let mut response = agent
            .get(url)
            .call()
            .map_err(|e| script_error(format!("http_get({url}): {e}")))?;
        response
            .body_mut()
            .read_to_string()
            .map_err(|e| script_error(format!("http_get({url}): reading the body: {e}")))
    });

    engine.register_fn("now", move || -> i64 { clock.now().timestamp() });

    let (ma, trigger) = (ask.ma.clone(), ask.trigger.clone());
    engine.register_fn("log", move |msg: &str| {
        tracing::info!(ma = %ma, trigger = %trigger, "script: {msg}");
    });
    let (ma, trigger) = (ask.ma.clone(), ask.trigger.clone());
    engine.on_print(move |msg| tracing::info!(ma = %ma, trigger = %trigger, "script: {msg}"));
    let (ma, trigger) = (ask.ma.clone(), ask.trigger.clone());
    engine.on_debug(
        move |msg, _, pos| tracing::debug!(ma = %ma, trigger = %trigger, "script {pos}: {msg}"),
    );
}

fn run_map(run: &RunRecord) -> Map {
    let mut map = Map::new();
    map.insert("id".into(), Dynamic::from_int(run.id));
    map.insert("profile".into(), run.profile.clone().into());
    map.insert("status".into(), run.status.as_str().into());
    map.insert(
        "started_at".into(),
        Dynamic::from_int(run.started_at.timestamp()),
    );
    map.insert(
        "ended_at".into(),
        run.ended_at
            .map_or(Dynamic::UNIT, |t| Dynamic::from_int(t.timestamp())),
    );
    map
}

/// Registers a function a connector type lends (one to three text
/// arguments); relative paths it is given resolve against `base_dir`.
fn register_lent(engine: &mut Engine, function: ScriptFunction, base_dir: &Path) {
    let base: PathBuf = base_dir.to_path_buf();
    let call = move |args: &[&str]| -> FnResult<Dynamic> {
        (function.call)(&base, args)
            .map(to_dynamic)
            .map_err(script_error)
    };
    match function.params.len() {
        1 => {
            engine.register_fn(function.name, move |a: &str| call(&[a]));
        }
        2 => {
            engine.register_fn(function.name, move |a: &str, b: &str| call(&[a, b]));
        }
        3 => {
            engine.register_fn(function.name, move |a: &str, b: &str, c: &str| {
                call(&[a, b, c])
            });
        }
        n => tracing::error!(
            function = function.name,
            "a script function with {n} parameters cannot be lent to scripts (one to three)"
        ),
    }
}

fn to_dynamic(value: ScriptValue) -> Dynamic {
    match value {
        ScriptValue::Unit => Dynamic::UNIT,
        ScriptValue::Integer(i) => Dynamic::from_int(i),
        ScriptValue::Float(f) => Dynamic::from_float(f),
        ScriptValue::Text(t) => t.into(),
        ScriptValue::Bytes(b) => Dynamic::from_blob(Blob::from(b)),
    }
}
