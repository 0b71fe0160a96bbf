//! The controller's state kept in the store's meta table as JSON, written
//! after every change and read at start: the per-MA queues, the requests
//! that were running (queued again after a crash, so no requested run is
//! lost) and the triggers' persisted states.

use autosync_controller::{QueuedRequest, Queues};
use autosync_store::{Store, StoreError};
use autosync_triggers::TriggerState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The meta key of the controller's state.
pub const STATE_KEY: &str = "controller.state";

/// What the controller persists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    #[serde(default)]
    pub queues: Queues,
    /// Requests whose run had started when the state was written.
    #[serde(default)]
    pub running: Vec<QueuedRequest>,
    /// MA → trigger key → state.
    #[serde(default)]
    pub triggers: BTreeMap<String, BTreeMap<String, TriggerState>>,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read or write the controller's state in the store: {0}")]
    Store(#[from] StoreError),
    #[error("the controller's state in the store (meta `{STATE_KEY}`) cannot be decoded: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Reads the persisted state (empty when there is none).
pub fn load(store: &dyn Store) -> Result<PersistedState, PersistError> {
    match store.read()?.meta(STATE_KEY)? {
        None => Ok(PersistedState::default()),
        Some(text) => Ok(serde_json::from_str(&text)?),
    }
}

/// Writes the state.
pub fn save(store: &dyn Store, state: &PersistedState) -> Result<(), PersistError> {
    let text = serde_json::to_string(state)?;
    let mut txn = store.begin()?;
    txn.set_meta(STATE_KEY, Some(&text))?;
    txn.commit()?;
    Ok(())
}
