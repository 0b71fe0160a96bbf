//! `autosync run`: the service in the foreground, until SIGINT/SIGTERM
//! (graceful: running profiles are cancelled at a safe point, the queue is
//! kept), or with `--once` until nothing is left to do.

use crate::args::{Cli, RunArgs};
use crate::commands::{load, open_store};
use crate::exit::{Code, Failure};
use anyhow::Context as _;
use autosync_engine::Engine;
use autosync_service::{EngineAdapter, Service, controller_config};
use signals::wait_for_signal;
use std::sync::Arc;

pub fn run(cli: &Cli, a: &RunArgs) -> Result<Code, Failure> {
    let (loaded, registry) = load(cli)?;
    let config = controller_config(&loaded).map_err(|d| Failure::Config(loaded.error(d)))?;
    let system = Arc::new(loaded.system);
    let store = open_store(&system)?;
    let engine = Engine::new(system, store.clone(), registry).context("cannot start the engine")?;
    engine
        .close_unfinished_runs()
        .context("cannot close runs left unfinished by an earlier crash")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let summary = runtime.block_on(async {
        let service = Service::new(Arc::new(EngineAdapter(Arc::new(engine))), store, config);
        let token = service.shutdown_token();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop requested; stopping gracefully");
            token.cancel();
        });
        service.run(a.once).await
    });
    let summary = summary.context("the service failed")?;
    tracing::info!(runs = summary.runs.len(), queued = summary.queued, "done");
    Ok(Code::Ok)
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
