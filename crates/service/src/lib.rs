//! The autosync service (`autosync run`): the thin shell around the
//! controller's state machine (`autosync_controller::Machine`), wiring it
//! to the triggers, the engine, the store and the notifier.
//!
//! - [`config`]: the controller's typed configuration from the raw
//!   `[controller]` and `[ma.controller]` tables, with located diagnostics;
//! - [`adapter`]: [`EngineAdapter`], our engine behind the controller's
//!   `SyncEngine` trait;
//! - [`changes`]: what each MA's connector offers to notice changes (asked
//!   through the connector registry), made into default triggers and
//!   given to the triggers that use it;
//! - `executor`: the event loop: events in, the machine's effects carried
//!   out (`jobs` on blocking threads, `persister` writing the state, what
//!   the machine publishes numbered and broadcast); once the machine has
//!   stopped, it still answers the status and keeps the event stream open
//!   until the notifier has sent what it holds;
//!   `wiring`: the commands and the machine's view of the configuration;
//! - [`persist`]: the controller's state in the store's meta table;
//! - [`status`]: per-MA state and queue, from the service or the store;
//! - [`service`]: [`Service`], start-up (reconciliation, changes made while
//!   stopped), triggers, the executor, and graceful stop; its published
//!   events ([`Service::subscribe`], [`EventFeed`]);
//! - [`service_lease`]: one service per store, across hosts;
//! - [`reload`]: [`Reloader`], a new configuration loaded, validated and
//!   built beside the running one, then handed to the service (SIGHUP and
//!   `POST /api/v1/reload`);
//! - [`validate`]: what `autosync check` refuses, refused at start and on
//!   reload too (the names rules read, against each connector's schema).

pub mod adapter;
pub mod changes;
pub mod config;
mod executor;
pub mod hooks;
mod jobs;
mod notices;
pub mod persist;
mod persister;
pub mod reload;
pub mod service;
pub mod service_lease;
pub mod status;
pub mod validate;
mod wiring;

pub use adapter::EngineAdapter;
pub use autosync_controller::machine::{
    MaStateName, NoticeKind, Published, Refusal, RefusalCode, RunCounts, ServiceEvent,
    ServiceState, Summary,
};
pub use autosync_controller::{Control, PushOutcome, SyncEngine};
pub use config::{ControllerConfig, MaControllerConfig, controller_config};
pub use persist::{PersistedState, STATE_KEY};
pub use reload::Reloader;
pub use service::{EVENTS_KEPT, EventFeed, Service, ServiceError};
pub use service_lease::{ServiceLease, ServiceLeaseError, running_service};
pub use status::{MaStateView, MaStatus, Status, status_from_store, status_from_store_alone};
pub use tokio_util::sync::CancellationToken;
pub use validate::{Validated, validate};
pub use wiring::{Command, trigger_lines};
