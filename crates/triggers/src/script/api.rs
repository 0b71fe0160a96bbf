//! The functions a trigger script can call:
//!
//! | function | returns |
//! | --- | --- |
//! | `last_run(ma)` | `#{ id, profile, status, started_at, ended_at }` of the MA's last run (times in unix seconds, `ended_at` is `()` while running), or `()` when it never ran |
//! | `http_get(url)` | the body of a plain-HTTP GET (10 s timeout; an error status or a failure is a script error) |
//! | `sql_scalar(sqlite_path, query)` | the first column of the first row of a query on an SQLite file opened read-only (`()` when no row) |
//! | `now()` | the current time in unix seconds (the controller's clock) |
//! | `log(msg)` | logs `msg` (as do `print` and `debug`) |

use crate::clock::Clock;
use crate::config::Ask;
use autosync_model::RunRecord;
use rhai::{Dynamic, Engine, EvalAltResult, Map};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the controller tells scripts about runs.
pub trait ScriptHost: Send + Sync {
    /// The last run of `ma` (finished or running), if any.
    fn last_run(&self, ma: &str) -> Option<RunRecord>;
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

    let base: PathBuf = base_dir.to_path_buf();
    engine.register_fn(
        "sql_scalar",
        move |path: &str, query: &str| -> FnResult<Dynamic> {
            sql_scalar(&base.join(path), query)
                .map_err(|e| script_error(format!("sql_scalar({path}): {e}")))
        },
    );

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

/// The first column of the first row, from a read-only connection.
pub fn sql_scalar(path: &Path, query: &str) -> Result<Dynamic, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut statement = conn.prepare(query)?;
    let mut rows = statement.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(Dynamic::UNIT);
    };
    Ok(match row.get_ref(0)? {
        ValueRef::Null => Dynamic::UNIT,
        ValueRef::Integer(i) => Dynamic::from_int(i),
        ValueRef::Real(f) => Dynamic::from_float(f),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => Dynamic::from_blob(b.to_vec()),
    })
}
