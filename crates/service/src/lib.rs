//! The autosync service (`autosync run`): wires the triggers, the
//! controller's pure core (queues, scheduler, `decide`, `reconcile`) and the
//! engine together.
//!
//! - [`config`]: the controller's typed configuration from the raw
//!   `[controller]` and `[ma.controller]` tables, with located diagnostics;
//! - [`adapter`]: [`EngineAdapter`], our engine behind the controller's
//!   `SyncEngine` trait;
//! - [`changes`]: what each MA's connector offers to notice changes (asked
//!   through the connector registry), made into default triggers and
//!   given to the triggers that use it;
//! - `executor`: the event loop that starts runs and queues follow-ups;
//! - [`persist`]: the queues and trigger states in the store's meta table;
//! - [`status`]: per-MA state and queue, from the service or the store;
//! - [`service`]: [`Service`], start-up (reconciliation, changes made while
//!   stopped), triggers, the executor, and graceful stop.

pub mod adapter;
pub mod changes;
pub mod config;
pub mod control;
pub mod discover;
mod executor;
pub mod hooks;
mod notices;
pub mod persist;
pub mod service;
pub mod status;

pub use adapter::EngineAdapter;
pub use autosync_controller::{PushOutcome, SyncEngine};
pub use config::{ControllerConfig, MaControllerConfig, controller_config};
pub use control::Control;
pub use executor::{Command, Summary};
pub use persist::{PersistedState, STATE_KEY};
pub use service::{Service, ServiceError};
pub use status::{MaStateView, MaStatus, Status, status_from_store};
pub use tokio_util::sync::CancellationToken;
