//! `autosync run`: the service in the foreground, until SIGINT/SIGTERM
//! (graceful: running profiles are cancelled at a safe point, the queue is
//! kept; the API answers until the service has stopped), or with `--once`
//! until nothing is left to do.

use crate::args::{Cli, RunArgs};
use crate::commands::{load, open_store};
use crate::exit::{Code, Failure};
use anyhow::Context as _;
use autosync_api::ApiFile;
use autosync_engine::Engine;
use autosync_service::CancellationToken;
use autosync_service::{EngineAdapter, Reloader, Service, validate};
use autosync_service::{ServiceLease, ServiceLeaseError};
use autosync_store::lease::{Instance, LeaseTiming, Leases};
use signals::wait_for_signal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long the API has, once the service stopped, to finish the answers
/// it is writing (the event streams end with the service).
const API_CLOSE: Duration = Duration::from_secs(5);

/// Why a service whose lease another process took over stopped (its
/// error, and its `service-stopped` notice).
/// Why a service whose lease was taken over stopped, naming its store and
/// what to do (the notice and the error said neither: a black-box review).
fn lease_lost(store: &std::path::Path) -> String {
    format!(
        "another process took over its lease on the store {} (this one was frozen or cut off from the store too long): make sure no other `autosync run` uses that store (`autosync status` names a service that runs on it), then start this service again",
        store.display()
    )
}

/// Takes the store's service lease (one service per store, on this host
/// or any other sharing it) for `command`, waiting `wait` for a command
/// that holds it briefly (`autosync queue` without a service).
pub(crate) fn take_service_lease(
    store: &Arc<dyn autosync_store::Store>,
    store_path: &Path,
    command: &str,
    wait: Duration,
) -> Result<ServiceLease, Failure> {
    let leases = Leases::new(store.clone(), Instance::current(), LeaseTiming::default());
    ServiceLease::take(leases, &store_path.display().to_string(), command, wait).map_err(
        |e| match e {
            ServiceLeaseError::Held { .. } => Failure::Usage(e.to_string()),
            ServiceLeaseError::Store(_) => anyhow::Error::new(e).into(),
        },
    )
}

pub fn run(cli: &Cli, a: &RunArgs) -> Result<Code, Failure> {
    let (loaded, registry) = load(cli)?;
    // Refused as `check` refuses it (exit 2), before the store is opened.
    let validated = validate(&loaded, &registry).map_err(Failure::Config)?;
    validated.log_warnings();
    let config = validated.config;
    let no_controller_section = loaded.system.controller.is_none()
        && loaded.system.mas.iter().all(|m| m.controller.is_none());
    let store = open_store(&loaded.system)?;
    let lease = Arc::new(take_service_lease(
        &store,
        &loaded.system.base_dir.join(&loaded.system.store.path),
        "run",
        Duration::from_secs(2),
    )?);
    if no_controller_section {
        // Without a controller section: say what the service will do (the
        // triggers it builds by default), not what discover would propose.
        tracing::info!(
            "no controller section: running on defaults (`autosync discover` prints a configuration to start from)"
        );
        for line in autosync_service::trigger_lines(&config) {
            tracing::info!("{line}");
        }
    }
    let ma_names: Vec<String> = loaded.system.mas.iter().map(|m| m.name.clone()).collect();
    let system = Arc::new(loaded.system);
    let store_path = system.base_dir.join(&system.store.path);
    let registry_for_reload = registry.clone();
    let engine = Engine::new(system, store.clone(), registry).context("cannot start the engine")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let api_file = ApiFile::path_for(&store_path);
    let summary = runtime.block_on(async {
        let mut service = Service::new(
            Arc::new(EngineAdapter(Arc::new(engine))),
            store.clone(),
            config,
        );
        service.watch_store_file(&lease);
        let held = lease.clone();
        let lost_message = lease_lost(&store_path);
        service.stop_reason(Box::new(move || {
            held.is_lost().then(|| lost_message.clone())
        }));
        let token = service.shutdown_token();
        let lost = token.clone();
        lease.when_lost(Box::new(move || lost.cancel()));
        let stop = token.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop requested; stopping gracefully");
            stop.cancel();
        });
        let reloader = Reloader::new(
            cli.config.clone(),
            registry_for_reload,
            store.clone(),
            store_path.clone(),
            service.commands(),
        );
        // The API has its own stop: it keeps answering through the graceful
        // stop (the status and the events; what would start work answers
        // `service-stopping`), and closes once the service has stopped.
        let api_stop = CancellationToken::new();
        let api = if !a.once && !a.no_api {
            Some(
                start_api(
                    a.api,
                    &store_path,
                    service.commands(),
                    service.events(),
                    reloader.clone(),
                    token.clone(),
                    api_stop.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        if !a.once {
            tokio::spawn(reloader.on_sighup(token.clone()));
        }
        let summary = service.run(a.once).await;
        token.cancel();
        if let Some(api) = api {
            // The file first: no command finds a service that has stopped.
            let _ = std::fs::remove_file(&api_file);
            api_stop.cancel();
            if tokio::time::timeout(API_CLOSE, api).await.is_err() {
                tracing::warn!(
                    "the API did not close within {}s of the service's stop; closing it now",
                    API_CLOSE.as_secs()
                );
            }
        }
        Ok::<_, Failure>(summary)
    });
    if !a.once && !a.no_api {
        let _ = std::fs::remove_file(&api_file);
    }
    if lease.is_lost() {
        if let Some(message) = lease.store_problem() {
            tracing::error!("{message}");
            return Err(anyhow::anyhow!("the service stopped: {message}").into());
        }
        return Err(anyhow::anyhow!("the service stopped: {}", lease_lost(&store_path)).into());
    }
    let summary = summary?.context("the service failed")?;
    tracing::info!(runs = summary.ended, queued = summary.queued, "done");
    if !a.once {
        return Ok(Code::Ok);
    }
    // An export stopped at the deletion threshold whose stop no longer
    // stands (a later sync of this cycle cancelled the deletes) waits for
    // nobody: it does not make the exit say "stopped".
    let mut runs = summary.runs.clone();
    runs.retain(|r| {
        r.status != autosync_model::RunStatus::StoppedDeletionThresholdExceeded
            || !matches!(
                autosync_engine::thresholds::deletion_stop_waiting(store.as_ref(), &r.ma),
                Ok(None)
            )
    });
    let mut code = Code::of_runs(&runs);
    let mut why = crate::exit::not_ok(&runs);
    // A cycle stopped because it did not settle: its last runs may all
    // have succeeded, but what flows is not in step (a warning, as
    // per-object errors are).
    if !summary.oscillations.is_empty() {
        if code == Code::Ok {
            code = Code::ObjectErrors;
        }
        why.extend(
            summary
                .oscillations
                .iter()
                .map(|ma| format!("the cycle of {ma} did not settle (oscillation)")),
        );
    }
    // Runs that could not start, time after time (the store's disk
    // full): nothing of them ran.
    for (ma, reason) in &summary.unavailable {
        tracing::error!(ma = %ma, "the runs of `{ma}` could not start, time after time: {reason}");
        code = Code::Failure;
        why.push(format!("the runs of {ma} could not start ({reason})"));
    }
    // An MA whose syncs wait for an operator (an import went over a
    // staging threshold, in this run or an earlier one): its imports run
    // and succeed, but nothing they read flows until `approve` or
    // `reject`. A scheduled `run --once` says so every time, as a stopped
    // run (3), not as a success.
    for ma in &ma_names {
        let hold = autosync_engine::thresholds::staging_hold(store.as_ref(), ma)
            .with_context(|| format!("cannot read whether the syncs of `{ma}` are held"))?;
        if let Some(h) = hold {
            tracing::warn!(
                ma = %ma,
                "the syncs of `{ma}` are held: an import went over a staging threshold in run {} ({}); nothing `{ma}` imports flows until `autosync approve {ma}` or `autosync reject {ma}`",
                h.run_id,
                h.summary()
            );
            code = code.max_rank(Code::Stopped);
            why.push(format!(
                "the syncs of {ma} are held by a staging threshold (run {})",
                h.run_id
            ));
        }
    }
    // Work that waits for an operator's control: maintenance mode, or an
    // MA stopped with requests queued. Nothing of it ran.
    let state = autosync_service::persist::load(store.as_ref())
        .context("cannot read the controller's state")?;
    if state.maintenance.is_some() {
        tracing::warn!(
            "maintenance mode is on: no run starts until `autosync maintenance off` (which works without a service too)"
        );
        code = code.max_rank(Code::Stopped);
        why.push("maintenance mode is on".to_owned());
    }
    for (ma, control) in &state.mas {
        let queued = state.queues.get(ma).is_some_and(|q| !q.is_empty());
        if control.started == Some(false) && queued {
            tracing::warn!(
                ma = %ma,
                "`{ma}` is stopped with requests queued: they run after `autosync start {ma}` (which works without a service too)"
            );
            code = code.max_rank(Code::Stopped);
            why.push(format!("{ma} is stopped with requests queued"));
        }
    }
    if code != Code::Ok {
        tracing::warn!("exiting with code {}: {}", code as u8, why.join(", "));
    }
    Ok(code)
}

/// Serves the HTTP API on loopback until `stop`, and writes its URL and
/// token next to the store; `stopping` is the service's graceful stop (a
/// reload then answers `service-stopping`). Returns the task that serves
/// it.
async fn start_api(
    addr: std::net::SocketAddr,
    store_path: &std::path::Path,
    commands: tokio::sync::mpsc::UnboundedSender<autosync_service::Command>,
    events: autosync_service::EventFeed,
    reloader: Reloader,
    stopping: CancellationToken,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    if !addr.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "--api {addr}: the API listens on loopback only (127.0.0.1 or ::1)"
        )));
    }
    let (listener, local) = autosync_api::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the API"))?;
    let token = autosync_api::new_token();
    let api_file = ApiFile::path_for(store_path);
    let api_file = api_file.as_path();
    ApiFile {
        url: format!("http://{local}"),
        token: token.clone(),
        store: Some(ApiFile::store_name(store_path)),
    }
    .write(api_file)
    .with_context(|| format!("cannot write {}", api_file.display()))?;
    tracing::info!(%local, file = %api_file.display(), "API listening");
    let reload: autosync_api::Reload = Arc::new(move || {
        let reloader = reloader.clone();
        Box::pin(async move { reloader.reload().await })
    });
    let router =
        autosync_api::router_with_stop(commands, token, Some(reload), Some(events), stopping);
    Ok(tokio::spawn(async move {
        if let Err(e) =
            autosync_api::serve(listener, router, async move { stop.cancelled().await }).await
        {
            tracing::error!("the API stopped: {e}");
        }
    }))
}

mod signals {
    //! Waiting for the stop signals.

    /// Returns on SIGINT or SIGTERM (SIGINT only where there is no SIGTERM).
    pub async fn wait_for_signal() {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
