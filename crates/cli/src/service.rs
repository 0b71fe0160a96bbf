//! `autosync run`: the service in the foreground, until SIGINT/SIGTERM
//! (graceful: running profiles are cancelled at a safe point, the queue is
//! kept), or with `--once` until nothing is left to do.

use crate::args::{Cli, RunArgs};
use crate::commands::{load, open_store};
use crate::exit::{Code, Failure};
use anyhow::Context as _;
use autosync_api::ApiFile;
use autosync_engine::Engine;
use autosync_service::CancellationToken;
use autosync_service::{EngineAdapter, Service, controller_config};
use signals::wait_for_signal;
use std::sync::Arc;

pub fn run(cli: &Cli, a: &RunArgs) -> Result<Code, Failure> {
    let (loaded, registry) = load(cli)?;
    let config = controller_config(&loaded).map_err(|d| Failure::Config(loaded.error(d)))?;
    let system = Arc::new(loaded.system);
    let store_path = system.base_dir.join(&system.store.path);
    let store = open_store(&system)?;
    let engine = Engine::new(system, store.clone(), registry).context("cannot start the engine")?;
    engine
        .close_unfinished_runs()
        .context("cannot close runs left unfinished by an earlier crash")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let api_file = ApiFile::path_for(&store_path);
    let summary = runtime.block_on(async {
        let service = Service::new(Arc::new(EngineAdapter(Arc::new(engine))), store, config);
        let token = service.shutdown_token();
        let stop = token.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop requested; stopping gracefully");
            stop.cancel();
        });
        if !a.once && !a.no_api {
            start_api(a.api, &api_file, service.commands(), token.clone()).await?;
        }
        let summary = service.run(a.once).await;
        token.cancel();
        Ok::<_, Failure>(summary)
    });
    if !a.once && !a.no_api {
        let _ = std::fs::remove_file(&api_file);
    }
    let summary = summary?.context("the service failed")?;
    tracing::info!(runs = summary.runs.len(), queued = summary.queued, "done");
    Ok(Code::Ok)
}

/// Serves the HTTP API on loopback and writes its URL and token next to
/// the store.
async fn start_api(
    addr: std::net::SocketAddr,
    api_file: &std::path::Path,
    commands: tokio::sync::mpsc::UnboundedSender<autosync_service::Command>,
    stop: CancellationToken,
) -> Result<(), Failure> {
    if !addr.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "--api {addr}: the API listens on loopback only (127.0.0.1 or ::1)"
        )));
    }
    let (listener, local) = autosync_api::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the API"))?;
    let token = autosync_api::new_token();
    ApiFile {
        url: format!("http://{local}"),
        token: token.clone(),
    }
    .write(api_file)
    .with_context(|| format!("cannot write {}", api_file.display()))?;
    tracing::info!(%local, file = %api_file.display(), "API listening");
    let router = autosync_api::router(commands, token);
    tokio::spawn(async move {
        if let Err(e) =
            autosync_api::serve(listener, router, async move { stop.cancelled().await }).await
        {
            tracing::error!("the API stopped: {e}");
        }
    });
    Ok(())
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
