//! The autosync controller's pure core: deciding which run profiles follow a
//! finished run (`decide`, `reconcile`), queuing them per MA (`queue`),
//! choosing what may start now under the sync lock, run modes and lock
//! groups (`scheduler`), and the state machine that holds every policy of
//! the controller on top of them ([`machine::Machine`]: events in, effects
//! out). It sees the engine only through [`SyncEngine`]. Nothing here does
//! I/O, spawns threads or reads a clock: time is passed in.

mod because;
pub mod blackout;
pub mod control;
pub mod decide;
pub mod engine_api;
pub mod machine;
pub mod profiles;
pub mod queue;
pub mod request;
pub mod retry;
pub mod scheduler;
pub mod view;

/// Staging thresholds are the engine's (an import over one stops before the
/// sync); re-exported for the controller's users.
pub use autosync_model::threshold::{Exceeded, Limit, StagingThresholds};
pub use blackout::{BlackoutConfig, BlackoutWindow, Blackouts};
pub use control::Control;
pub use decide::{Decision, Report, decide, reconcile};
pub use engine_api::{
    CancelFlag, CsState, EngineCallError, MaInfo, ProgressState, RunProgress, SyncEngine,
    has_sync_step,
};
pub use machine::{
    Effect, Event, Machine, MachineConfig, Published, Refusal, RefusalCode, ServiceEvent,
};
pub use profiles::{
    FollowUpKind, ProfileError, ProfileOverrides, ResolvedProfiles, resolve_profiles,
};
pub use queue::{MaQueue, PushOutcome, QueuedRequest, Queues, RequestId};
pub use request::{ChainLink, Placement, Request};
pub use retry::{DEFAULT_RETRY_STATUSES, RetryDecision, RetryPolicy};
pub use scheduler::{
    LockGroup, MaState, Plan, RunMode, Running, Scheduler, Slot, Start, WaitReason,
};
pub use view::{ControllerView, DEFAULT_OSCILLATION_LIMIT, FollowUps, MaView};
