//! Triggers: the things that decide *when an import should run* and ask the
//! controller for it. A trigger never runs anything itself: it sends a
//! [`TriggerRequest`] to a [`RequestSink`] and goes on. A failing trigger
//! reports a [`TriggerError`] and never stops the others.
//!
//! Every decision is a pure function of (config, state, now), tested without
//! clocks; each trigger type also has a thin tokio runner around it:
//!
//! - [`interval`]: every N, with optional jitter;
//! - [`schedule`]: cron expression in an IANA time zone, DST-correct, at most
//!   once per slot, optional catch-up of one missed slot;
//! - [`auto_import`]: "import every N when nothing else imported";
//! - [`file_watch`]: a file changed (coalesced: debounce plus max delay);
//! - [`change_poll`]: the MA connector's probe says its data moved;
//! - [`change_notification`]: the MA connector's listener (an LDAP
//!   persistent search) tells each change as it happens;
//! - [`script`]: a sandboxed Rhai script returns the profiles to queue;
//! - [`change_filter`]: ignore changes that touch only listed attributes;
//! - [`set`]: all triggers of one MA, started and stopped together.
//!
//! Triggers know no connector type: what a connector provides (a file
//! watch's default file and its reader, a change poll's probe, a change
//! notification's listener, functions for scripts) comes through the connector contract
//! (`autosync_connector::change`), filled in by whoever reads the
//! configuration ([`provided`]).

pub mod auto_import;
pub mod change_filter;
pub mod change_notification;
pub mod change_poll;
pub mod clock;
pub mod coalescer;
pub mod config;
pub mod content_filter;
pub mod duration;
pub mod file_watch;
pub mod interval;
pub mod provided;
pub mod schedule;
pub mod script;
pub mod set;
pub mod sink;
mod throttle;

pub use change_filter::ChangeFilter;
pub use clock::{Clock, SystemClock, TokioWallClock};
pub use config::{TriggerConfig, TriggerConfigError, parse_triggers};
pub use duration::HumanDuration;
pub use provided::Provided;
pub use script::{NoScriptHost, ScriptHost};
pub use set::{BuildContext, Trigger, TriggerDeps, TriggerSet};
pub use sink::{RequestSink, SinkClosed, TriggerEvent};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a trigger asks for: run `profile` on MA `ma`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRequest {
    pub ma: String,
    pub profile: String,
    /// Run alone, whatever the run mode.
    pub exclusive: bool,
    /// Front of the MA's queue instead of the back.
    pub run_immediate: bool,
    /// Which trigger asked, for the run's reason, e.g.
    /// `schedule hr-nightly (0 2 * * *, Europe/Paris)`.
    pub trigger: String,
}

/// A trigger failed (a script error, a watch that could not be set up...).
/// The controller notifies about it; `stopped` says whether the trigger gave
/// up (`on_error = "stop"`) or carries on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("trigger {trigger} on MA `{ma}` failed: {message}{}", if *.stopped { " (trigger stopped)" } else { "" })]
pub struct TriggerError {
    pub ma: String,
    pub trigger: String,
    pub message: String,
    pub stopped: bool,
    pub at: DateTime<Utc>,
}

/// The state of a trigger that the controller persists and hands back when
/// it builds the trigger again (after a restart or a stop/start).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerState {
    /// Schedule triggers: the last slot fired, in UTC. A slot at or before
    /// it is never fired again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_slot: Option<DateTime<Utc>>,
}
