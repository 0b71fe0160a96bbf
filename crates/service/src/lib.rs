//! The autosync service (`autosync run`): wires the triggers, the
//! controller's pure core (queues, scheduler, `decide`, `reconcile`) and the
//! engine together.
//!
//! - [`config`]: the controller's typed configuration from the raw
//!   `[controller]` and `[ma.controller]` tables, with located diagnostics;
//! - [`adapter`]: [`EngineAdapter`], our engine behind the controller's
//!   `SyncEngine` trait;
//! - `executor`: the event loop that starts runs and queues follow-ups;
//! - [`persist`]: the queues and trigger states in the store's meta table;
//! - [`service`]: [`Service`], start-up (reconciliation, changes made while
//!   stopped), triggers, the executor, and graceful stop.

pub mod adapter;
pub mod config;
mod executor;
pub mod persist;
pub mod service;

pub use adapter::EngineAdapter;
pub use config::{ControllerConfig, MaControllerConfig, controller_config};
pub use executor::{Command, Summary};
pub use persist::{PersistedState, STATE_KEY};
pub use service::{Service, ServiceError};
