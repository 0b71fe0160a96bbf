//! Reloading the running service's configuration from its file, on SIGHUP
//! or `POST /api/v1/reload`: the file is loaded, validated and an engine
//! built for it off to the side ([`Reloader::prepare`]); only then is it
//! handed to the running service ([`Command::Reload`]), which plans what
//! changes. A file that does not load or validate (as `autosync check`
//! validates it: [`crate::validate`], a rule reading a name its source
//! lacks included), or that moves the store, is refused with its
//! diagnostics (file, line, key): the running configuration stays, and
//! operators are notified ([`Command::ReloadRejected`]).

use crate::adapter::EngineAdapter;
use crate::config::ControllerConfig;
use crate::wiring::Command;
use autosync_connector::Registry;
use autosync_controller::SyncEngine;
use autosync_engine::Engine;
use autosync_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What a refused reload keeps, as every refusal says it.
const KEEP: &str = "the running configuration stays; fix the file and reload again";

/// Reloads the configuration of a running service.
#[derive(Clone)]
pub struct Reloader {
    config_path: PathBuf,
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    store_path: PathBuf,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("config_path", &self.config_path)
            .field("store_path", &self.store_path)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of the file at `config_path` for the service listening
    /// on `commands`, whose store is `store` at `store_path` (a reload
    /// never moves it).
    pub fn new(
        config_path: PathBuf,
        registry: Arc<Registry>,
        store: Arc<dyn Store>,
        store_path: PathBuf,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Reloader {
        Reloader {
            config_path,
            registry,
            store,
            store_path,
            commands,
        }
    }

    /// Reloads: the answer says what changed, or why nothing did. A
    /// refusal is logged and sent to operators as a notice.
    pub async fn reload(&self) -> Result<String, String> {
        let stopping = || "the service is stopping".to_owned();
        // Building an engine reads and writes the store: off the event
        // loop, so that a store held by a long sync stalls no API answer.
        let this = self.clone();
        let prepared = tokio::task::spawn_blocking(move || this.prepare())
            .await
            .unwrap_or_else(|e| Err(format!("configuration reload failed: {e}")));
        match prepared {
            Ok((engine, config)) => {
                let (reply, answer) = oneshot::channel();
                let command = Command::Reload {
                    engine,
                    config: Box::new(config),
                    reply,
                };
                if self.commands.send(command).is_err() {
                    return Err(stopping());
                }
                let answer = answer.await.map_err(|_| stopping())?;
                match &answer {
                    Ok(m) => tracing::info!("{m}"),
                    Err(m) => tracing::error!("the reload failed: {m}"),
                }
                answer
            }
            Err(message) => {
                // The controller logs the refusal and notifies; logged here
                // only if it is gone.
                let sent = self.commands.send(Command::ReloadRejected {
                    message: message.clone(),
                });
                if sent.is_err() {
                    tracing::error!("{}", autosync_controller::machine::log_line(&message));
                }
                Err(message)
            }
        }
    }

    /// Reloads on every SIGHUP until `stop` (a signal handler that cannot
    /// be installed is a warning: the API's reload still works).
    pub async fn on_sighup(self, stop: CancellationToken) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hup = match signal(SignalKind::hangup()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGHUP (no reload on signal): {e}");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    got = hup.recv() => if got.is_none() { return },
                }
                tracing::info!(file = %self.config_path.display(), "SIGHUP: reloading the configuration");
                let _ = self.reload().await;
            }
        }
        #[cfg(not(unix))]
        {
            stop.cancelled().await;
        }
    }

    /// Loads, validates and builds everything the new configuration
    /// needs, or says why it cannot be used. Changes nothing.
    pub fn prepare(&self) -> Result<(Arc<dyn SyncEngine>, ControllerConfig), String> {
        let refused = |why: String| format!("configuration reload refused ({KEEP}):{why}");
        let loaded = autosync_config::load(&self.config_path, &self.registry)
            .map_err(|e| refused(format!("\n{e}")))?;
        let validated = crate::validate::validate(&loaded, &self.registry)
            .map_err(|e| refused(format!("\n{e}")))?;
        validated.log_warnings();
        let config = validated.config;
        let system = Arc::new(loaded.system);
        // An emptied or cut file validates (it names nothing): refused for
        // what it is, not for the store path it no longer names.
        if system.mas.is_empty() {
            return Err(refused(
                " the file names no management agent (is it empty, or cut short?)".to_owned(),
            ));
        }
        let new_store = system.base_dir.join(&system.store.path);
        if new_store != self.store_path {
            return Err(refused(format!(
                " the store moved from {} to {}; a new store needs a restart",
                self.store_path.display(),
                new_store.display()
            )));
        }
        let engine = Engine::new(system, self.store.clone(), self.registry.clone())
            .map_err(|e| refused(format!(" {e}")))?;
        Ok((Arc::new(EngineAdapter(Arc::new(engine))), config))
    }
}
