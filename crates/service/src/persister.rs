//! Writes the controller's state to the store off the event loop: one task
//! writes the newest state it was given (on a blocking thread), in order,
//! skipping states a newer one replaced; a failed write is tried again
//! after a second (logged the first time, then once a minute while it
//! goes on: `Repeated`). Each write has a generation, so a reply can wait
//! until the state that holds its change is written.

use crate::persist::{self, PersistedState};
use autosync_model::repeated::{Repeated, Say};
use autosync_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a failed write waits before it is tried again (unless a newer
/// state comes first).
const RETRY_AFTER: Duration = Duration::from_secs(1);

type Latest = Option<(u64, Arc<PersistedState>)>;

/// The writer's handle.
pub(crate) struct Persister {
    latest: watch::Sender<Latest>,
    written: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
    generation: u64,
}

/// Logs a failed write: the first, then one a minute while they go on.
fn log_failure(failing: &mut Repeated, e: &dyn std::fmt::Display) {
    match failing.failed(Instant::now()) {
        Say::Log { failures: 1, .. } => tracing::error!("{e}"),
        Say::Log { failures, for_ } => tracing::error!(
            "{e} (still failing: {failures} attempts in {} s, tried again every second; logged once a minute)",
            for_.as_secs()
        ),
        Say::Quiet => tracing::debug!("{e}"),
    }
}

impl Persister {
    /// Starts the writer.
    pub(crate) fn spawn(store: Arc<dyn Store>) -> Persister {
        let (latest, mut rx) = watch::channel::<Latest>(None);
        let (done, written) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            // The last generation written; `closed`: no more states come.
            let (mut last, mut closed) = (0u64, false);
            let mut failing = Repeated::default();
            loop {
                let next = rx.borrow_and_update().clone();
                let Some((generation, state)) = next.filter(|(g, _)| *g > last) else {
                    if closed {
                        return;
                    }
                    closed = rx.changed().await.is_err();
                    continue;
                };
                let store = store.clone();
                let result =
                    tokio::task::spawn_blocking(move || persist::save(store.as_ref(), &state))
                        .await;
                let ok = match result {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        log_failure(&mut failing, &e);
                        false
                    }
                    Err(e) => {
                        log_failure(
                            &mut failing,
                            &format_args!("the controller's state was not written: {e}"),
                        );
                        false
                    }
                };
                if ok && let Some((failures, over)) = failing.worked(Instant::now()) {
                    tracing::info!(
                        "the controller's state was written again, after {failures} failed attempts over {} s",
                        over.as_secs()
                    );
                }
                // Replies wait for this write, done or failed (a failure is
                // logged, and the newest state is written again).
                done.send_replace(generation);
                if ok {
                    last = generation;
                } else if closed {
                    return;
                } else if let Ok(changed) = tokio::time::timeout(RETRY_AFTER, rx.changed()).await {
                    closed = changed.is_err();
                }
            }
        });
        Persister {
            latest,
            written,
            task,
            generation: 0,
        }
    }

    /// Hands the writer a new state; returns its generation.
    pub(crate) fn write(&mut self, state: PersistedState) -> u64 {
        self.generation += 1;
        self.latest
            .send_replace(Some((self.generation, Arc::new(state))));
        self.generation
    }

    /// Resolves once the write of `generation` (or a later one) was done.
    pub(crate) fn written(&self, generation: u64) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.written.clone();
        async move {
            let _ = rx.wait_for(|w| *w >= generation).await;
        }
    }

    /// Writes what is left and ends the writer.
    pub(crate) async fn finish(self) {
        drop(self.latest);
        if let Err(e) = self.task.await {
            tracing::warn!("the state writer ended abnormally: {e}");
        }
    }
}
