//! What a dashboard shows per MA: its state (idle, running a profile,
//! waiting and why, stopped) and its queue. The running service answers
//! from memory; without a service, [`status_from_store`] reads the
//! persisted state.

use crate::config::ControllerConfig;
use crate::persist::{self, PersistError};
use autosync_controller::QueuedRequest;
use autosync_model::RunRecord;
use autosync_store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One MA's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum MaStateView {
    Idle,
    Running {
        profile: String,
        reason: String,
    },
    Waiting {
        reason: String,
    },
    Stopped,
    /// Requests are queued but no service runs to start them.
    Queued,
}

/// One MA in the status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaStatus {
    #[serde(flatten)]
    pub state: MaStateView,
    pub queue: Vec<QueuedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRecord>,
}

/// The status of every MA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Whether a running service answered (else: read from the store).
    pub service: bool,
    pub mas: BTreeMap<String, MaStatus>,
}

/// The status read from the store when no service runs.
pub fn status_from_store(
    store: &dyn Store,
    config: &ControllerConfig,
) -> Result<Status, PersistError> {
    let state = persist::load(store)?;
    let mut read = store.read()?;
    let mut mas = BTreeMap::new();
    for (name, ma) in &config.mas {
        let queue: Vec<QueuedRequest> = state
            .queues
            .get(name)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        let state_view = if !ma.auto_start {
            MaStateView::Stopped
        } else if queue.is_empty() {
            MaStateView::Idle
        } else {
            MaStateView::Queued
        };
        let last_run = read.runs(Some(name), 1)?.into_iter().next();
        mas.insert(
            name.clone(),
            MaStatus {
                state: state_view,
                queue,
                last_run,
            },
        );
    }
    Ok(Status {
        service: false,
        mas,
    })
}
