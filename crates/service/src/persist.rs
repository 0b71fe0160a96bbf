//! The controller's state kept in the store's meta table as JSON, written
//! after every change (off the event loop, by the executor's writer) and
//! read at start: the per-MA queues, the requests that were running
//! (queued again after a crash, so no requested run is lost), the
//! triggers' persisted states and what was decided about each MA. The
//! state itself is the machine's ([`PersistedState`]).

pub use autosync_controller::machine::{Failed, HeldThreshold, MaControl, PersistedState, Since};
use autosync_store::{Store, StoreError};

/// The meta key of the controller's state.
pub const STATE_KEY: &str = "controller.state";

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read or write the controller's state in the store: {0}")]
    Store(StoreError),
    #[error("the controller's state in the store (meta `{STATE_KEY}`) cannot be decoded: {0}")]
    Decode(serde_json::Error),
}

impl From<serde_json::Error> for PersistError {
    fn from(e: serde_json::Error) -> Self {
        PersistError::Decode(e)
    }
}

/// Not `#[from]` (here and for `Decode`): the message carries the inner
/// error's, so there is no `source` and a chain printed with `{:#}` says
/// it once.
impl From<StoreError> for PersistError {
    fn from(e: StoreError) -> Self {
        PersistError::Store(e)
    }
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
