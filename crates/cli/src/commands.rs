//! One function per subcommand: load what it needs, call the library, render.

use crate::args::{Cli, Command, RunProfileArgs};
use crate::control::control;
use crate::exit::{Code, Failure};
use crate::locate::Located;
use crate::{progress, render};
use anyhow::Context as _;
use autosync_config::Loaded;
use autosync_connector::Registry;
use autosync_engine::{CancelFlag, Engine, RunOptions};
use autosync_model::{RunReason, SystemDef};
use autosync_service::Control;
use autosync_store::{Store, sqlite::SqliteStore};
use std::sync::Arc;

pub fn dispatch(cli: &Cli) -> Result<Code, Failure> {
    match &cli.command {
        Command::Check(a) => check(cli, a.json),
        Command::RunProfile(a) => run_profile(cli, a),
        Command::History(a) => crate::listing::history(cli, a),
        Command::Cs(a) => crate::listing::cs(cli, a),
        Command::Mv(a) => crate::listing::mv(cli, a),
        Command::Approve(a) => crate::control::approve(cli, a),
        Command::Run(a) => crate::service::run(cli, a),
        Command::Status(a) => crate::status::status(cli, a.json),
        Command::Queue(a) => crate::control::queue(cli, a),
        Command::Discover(a) => crate::discover::discover(cli, a),
        Command::Start(a) => control(cli, Control::Start, a.ma.as_deref(), a.json),
        Command::Stop(a) => control(cli, Control::Stop, a.ma.as_deref(), a.json),
        Command::Cancel(a) => control(cli, Control::Cancel, Some(&a.ma), a.json),
        Command::ClearQueue(a) => control(cli, Control::ClearQueue, Some(&a.ma), a.json),
        Command::Pause(a) => control(cli, Control::Pause, a.ma.as_deref(), a.json),
        Command::Resume(a) => control(cli, Control::Resume, a.ma.as_deref(), a.json),
        Command::Reject(a) => crate::control::reject(cli, a),
        Command::Maintenance(a) => crate::control::maintenance(cli, a.mode, a.json),
        Command::Events(a) => crate::events::events(cli, a),
    }
}

pub fn registry() -> Registry {
    let mut r = Registry::new();
    autosync_connectors::register_all(&mut r);
    r
}

pub fn load(cli: &Cli) -> Result<(Loaded, Arc<Registry>), Failure> {
    let registry = registry();
    let loaded = autosync_config::load(&cli.config, &registry).map_err(Failure::Config)?;
    Ok((loaded, Arc::new(registry)))
}

/// [`load`] for a command that only reads the store: a connector setting
/// whose `${ENV}` is not set is a warning (see
/// [`autosync_config::load_to_read`]).
pub fn load_to_read(cli: &Cli) -> Result<(Loaded, Arc<Registry>), Failure> {
    let registry = registry();
    let loaded = autosync_config::load_to_read(&cli.config, &registry).map_err(Failure::Config)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok((loaded, Arc::new(registry)))
}

/// The store, for a command that runs or changes something: created (and
/// its folder) when missing. A command that only reads uses
/// [`crate::locate::read_store`], which never creates it.
/// A store made anew is said at WARN: with a wrong `[store] path` every
/// object would be imported as new beside the real store, and accounts
/// already in the targets joined rather than provisioned (never
/// deprovisioned).
pub fn open_store(system: &SystemDef) -> Result<Arc<dyn Store>, Failure> {
    let path = crate::locate::store_path_of(system);
    let existed = std::fs::symlink_metadata(&path).is_ok();
    let store = SqliteStore::open(&path)?;
    if !existed {
        tracing::warn!(
            store = %path.display(),
            "made a new, empty store: every object is imported as new; if this configuration has run before, its store is elsewhere: check `[store] path` (a relative path is read from the configuration's folder)"
        );
    }
    Ok(Arc::new(store))
}

pub(crate) fn engine(cli: &Cli) -> Result<Engine, Failure> {
    engine_of(load(cli)?)
}

/// The engine over a loaded configuration, with the runs a crash left
/// unfinished closed.
fn engine_of((loaded, registry): (Loaded, Arc<Registry>)) -> Result<Engine, Failure> {
    let system = Arc::new(loaded.system);
    let store = open_store(&system)?;
    let engine = Engine::new(system, store, registry).context("cannot start the engine")?;
    engine
        .close_unfinished_runs()
        .context("cannot close runs left unfinished by an earlier crash")?;
    Ok(engine)
}

pub(crate) fn check_ma(system: &SystemDef, ma: &str) -> Result<(), Failure> {
    if system.ma(ma).is_some() {
        return Ok(());
    }
    let names = system.mas.iter().map(|m| m.name.as_str());
    Err(Failure::Usage(autosync_model::suggest::unknown_ma(
        ma, names,
    )))
}

fn check(cli: &Cli, json: bool) -> Result<Code, Failure> {
    let registry = registry();
    let invalid = |e: autosync_config::ConfigError| -> Result<Code, Failure> {
        if json {
            out!("{}", render::check_invalid(&e));
            return Ok(Code::Config);
        }
        Err(Failure::Config(e))
    };
    let loaded = match autosync_config::load(&cli.config, &registry) {
        Ok(loaded) => loaded,
        Err(e) => return invalid(e),
    };
    // What the service refuses at start and on reload, and nothing else.
    let validated = match autosync_service::validate(&loaded, &registry) {
        Ok(validated) => validated,
        Err(e) => return invalid(e),
    };
    out!("{}", render::check(&loaded, &validated.schemas, json));
    Ok(Code::Ok)
}

/// The connector spaces the store holds of MAs the configuration does not
/// name (removed, or renamed: a new name is a new MA), with how many
/// objects each holds.
pub(crate) fn left_behind(
    store: &dyn autosync_store::Store,
    system: &SystemDef,
) -> Result<Vec<(String, u64)>, Failure> {
    let mut read = store.read()?;
    let mut out = Vec::new();
    for ma in read.cs_mas()? {
        if system.ma(&ma).is_none() {
            let n = read.cs_count(&ma, autosync_store::CsFilter::All)?;
            out.push((ma, n));
        }
    }
    Ok(out)
}

/// What `status` says of a connector space [`left_behind`].
pub(crate) fn left_behind_warning(ma: &str, objects: u64) -> String {
    format!(
        "warning: the store holds the connector space of `{ma}` ({objects} objects), which the configuration no longer names: its objects stay joined to the metaverse (an MA renamed is a new MA, with an empty connector space); `autosync cs delete {ma}` removes it\n"
    )
}

fn run_profile(cli: &Cli, a: &RunProfileArgs) -> Result<Code, Failure> {
    let engine = engine(cli)?;
    check_ma(engine.system(), &a.ma)?;
    let ma = engine
        .system()
        .ma(&a.ma)
        .ok_or_else(|| Failure::Usage(a.ma.clone()))?;
    if ma.profile(&a.profile).is_none() {
        let names = ma.profile_names();
        return Err(Failure::Usage(autosync_model::suggest::unknown_profile(
            &a.ma,
            &a.profile,
            names.iter().map(String::as_str),
        )));
    }
    let sink = progress::sink(a.no_progress || a.json);
    let cancel = CancelFlag::default();
    cancel_on_signal(&cancel);
    let opts = RunOptions {
        reason: RunReason::Manual { by: "cli".into() },
        progress: Some(sink.clone()),
        cancel,
        sync_batch: None,
    };
    let record = engine
        .run_profile(&a.ma, &a.profile, opts)
        .with_context(|| format!("run profile `{}` of `{}` could not run", a.profile, a.ma))?;
    sink.finish();
    if a.json {
        // As `history RUN_ID --json` gives it: its first changes and
        // errors with the record (they were missing: a black-box review).
        let mut read = engine.store().read()?;
        let changes = read.run_changes(record.id, 0, SHOWN)?;
        let errors = read.run_errors(record.id, SHOWN)?;
        let mut v = render::run_json(&record);
        v["changes"] = serde_json::to_value(&changes).context("cannot encode the changes")?;
        v["errors"] = serde_json::to_value(&errors).context("cannot encode the errors")?;
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).context("cannot encode the run")?
        );
        return Ok(Code::of_run(record.status));
    }
    out!("{}", run_as_history(&engine, &record)?);
    Ok(Code::of_run(record.status))
}

/// How many of a run's changes and errors `run-profile` prints (what
/// `history RUN_ID` shows without `--limit`).
const SHOWN: usize = 20;

/// A finished run as `history RUN_ID` shows it: its counters, its first
/// per-object changes and errors, and where the rest are.
fn run_as_history(engine: &Engine, record: &autosync_model::RunRecord) -> Result<String, Failure> {
    let mut read = engine.store().read()?;
    let mut changes = read.run_changes(record.id, 0, SHOWN + 1)?;
    let recorded = read.run_change_count(record.id)?;
    let page = crate::page::Page::cut(&mut changes, 0, SHOWN, Some(recorded));
    let errors = read.run_errors(record.id, SHOWN)?;
    let mut text = render::run(record, &[]);
    let changes_text = render::run_changes(record, &changes, &page);
    // The page's footer names `history`'s own option: said whole here.
    let changes_text = changes_text.replace(
        &format!("next: --offset {SHOWN}"),
        &format!("next: `autosync history {} --offset {SHOWN}`", record.id),
    );
    text.push_str(&changes_text);
    let errors_text = render::run_errors(record, &errors).replace(
        "--limit shows more",
        &format!(
            "`autosync history {} --errors --limit N` shows more",
            record.id
        ),
    );
    text.push_str(&errors_text);
    Ok(text)
}

/// Ctrl-C (SIGINT) or SIGTERM cancels the run at its next safe point: it
/// ends `stopped-user-requested`, what it committed kept (also while it
/// waits for another process's sync). A second one ends the process at
/// once (the run is then closed `stopped-server` by the next start). The
/// handlers are in place when this returns.
pub(crate) fn cancel_on_signal(cancel: &CancelFlag) {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!("cannot listen for Ctrl-C (the run cannot be cancelled): {e}");
            return;
        }
    };
    let streams = {
        let _entered = runtime.enter();
        signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
    };
    let (mut interrupt, mut terminate) = match streams {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for Ctrl-C (the run cannot be cancelled): {e}");
            return;
        }
    };
    let cancel = cancel.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                errln!("cancelling the run at its next safe point (Ctrl-C again to quit at once)");
                cancel.cancel();
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                std::process::exit(Code::Stopped as i32);
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot listen for Ctrl-C (the run cannot be cancelled): {e}");
    }
}

/// Prints a finished run (as JSON, or as text with its first errors) and
/// gives its exit code.
pub(crate) fn print_run(
    engine: &Engine,
    record: &autosync_model::RunRecord,
    json: bool,
) -> Result<Code, Failure> {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&render::run_json(record))
                .context("cannot encode the run record")?
        );
    } else {
        let errors = engine.store().read()?.run_errors(record.id, 10)?;
        out!("{}", render::run(record, &errors));
    }
    Ok(Code::of_run(record.status))
}

/// Approves in the store what a threshold stopped on `ma` (no service
/// runs): the syncs a staging threshold held may run, and the next export
/// may exceed the deletion threshold once. Returns the sentence to print.
pub(crate) fn approve_in_store(located: Located, ma: &str) -> Result<String, Failure> {
    let engine = engine_of(located.into_loaded()?)?;
    check_ma(engine.system(), ma)?;
    let store = engine.store();
    let waits = autosync_engine::thresholds::staging_hold(store.as_ref(), ma)
        .and_then(|h| {
            Ok(h.is_some()
                || autosync_engine::thresholds::deletion_stop_waiting(store.as_ref(), ma)?
                    .is_some())
        })
        .with_context(|| format!("cannot read what waits for an approval on `{ma}`"))?;
    if !waits {
        return Err(Failure::Usage(autosync_model::threshold::nothing_waits(ma)));
    }
    let approval = engine
        .approve(ma)
        .with_context(|| format!("cannot record the approval for `{ma}`"))?;
    Ok(approval.describe(ma))
}

/// Rejects in the store what a threshold stopped on `ma` (no service
/// runs). Returns the sentence to print; a rejection with nothing to
/// reject, or while the MA runs, is refused (exit 2).
pub(crate) fn reject_in_store(located: Located, ma: &str) -> Result<String, Failure> {
    let engine = engine_of(located.into_loaded()?)?;
    check_ma(engine.system(), ma)?;
    match engine.reject(ma) {
        Ok(r) => Ok(r.describe(ma)),
        Err(autosync_engine::RejectError::Discard(autosync_engine::DiscardError::Engine(e))) => {
            Err(anyhow::Error::new(e)
                .context(format!("cannot reject for `{ma}`"))
                .into())
        }
        Err(e) => Err(Failure::Usage(e.to_string())),
    }
}
