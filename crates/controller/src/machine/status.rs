//! What a dashboard shows per MA: its state (idle, running a profile,
//! waiting and why, stopped, disabled, failed, threshold exceeded) and its
//! queue. The running service answers from the machine's memory
//! ([`Machine::status`](super::Machine::status)); without a service, the
//! persisted state is shown. Both go through [`state_view`], so they agree.

use super::state::{MaControl, Since};
use crate::queue::QueuedRequest;
use crate::request::Request;
use autosync_model::{RunId, RunRecord, RunStatus};
use chrono::{DateTime, Utc};
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
        /// The current step (`None` while the run starts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_index: Option<usize>,
        /// Objects the step processed so far.
        #[serde(default)]
        processed: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<u64>,
    },
    Waiting {
        reason: String,
    },
    Stopped,
    /// The MA is disabled in the configuration (`enabled = false`).
    Disabled,
    /// Retries are used up; the MA is still retried at the capped backoff.
    Failed {
        profile: String,
        status: RunStatus,
        run_id: RunId,
        attempts: u32,
        since: DateTime<Utc>,
        /// The error of the step that stopped the last run, when it has one
        /// (`step 1 delta-import: cannot open ...`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// When the service tries again (a running service only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_retry: Option<DateTime<Utc>>,
    },
    /// An import went over a staging threshold (the MA's syncs wait), or
    /// an export stopped at the deletion threshold (its deletes wait, and
    /// `held` is empty): `autosync approve` or `autosync reject`.
    ThresholdExceeded {
        run_id: RunId,
        exceeded: Vec<String>,
        /// The held requests' profiles.
        held: Vec<String>,
    },
    /// Requests are queued but no service runs to start them.
    Queued,
}

/// The name of an MA's state, as the status names it (the `state` field
/// of [`MaStateView`]): what a `state-changed` event says an MA went from
/// and to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaStateName {
    Idle,
    Running,
    Waiting,
    Stopped,
    Disabled,
    Failed,
    ThresholdExceeded,
    Queued,
}

impl MaStateName {
    /// The name as serde writes it (`threshold-exceeded`).
    pub fn as_str(self) -> &'static str {
        match self {
            MaStateName::Idle => "idle",
            MaStateName::Running => "running",
            MaStateName::Waiting => "waiting",
            MaStateName::Stopped => "stopped",
            MaStateName::Disabled => "disabled",
            MaStateName::Failed => "failed",
            MaStateName::ThresholdExceeded => "threshold-exceeded",
            MaStateName::Queued => "queued",
        }
    }
}

impl std::fmt::Display for MaStateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MaStateView {
    /// The state's name.
    pub fn name(&self) -> MaStateName {
        match self {
            MaStateView::Idle => MaStateName::Idle,
            MaStateView::Running { .. } => MaStateName::Running,
            MaStateView::Waiting { .. } => MaStateName::Waiting,
            MaStateView::Stopped => MaStateName::Stopped,
            MaStateView::Disabled => MaStateName::Disabled,
            MaStateView::Failed { .. } => MaStateName::Failed,
            MaStateView::ThresholdExceeded { .. } => MaStateName::ThresholdExceeded,
            MaStateView::Queued => MaStateName::Queued,
        }
    }

    /// What a one-line view adds to the name: the profile that runs, what
    /// the MA waits for, why it failed, which threshold it went over.
    pub fn detail(&self) -> Option<String> {
        match self {
            MaStateView::Running { profile, .. } => Some(profile.clone()),
            MaStateView::Waiting { reason } => Some(reason.clone()),
            MaStateView::Failed {
                profile,
                status,
                attempts,
                ..
            } => Some(format!("{profile} {status} after {attempts} attempt(s)")),
            MaStateView::ThresholdExceeded { exceeded, .. } => Some(exceeded.join(", ")),
            MaStateView::Idle
            | MaStateView::Stopped
            | MaStateView::Disabled
            | MaStateView::Queued => None,
        }
    }
}

/// One MA in the status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaStatus {
    #[serde(flatten)]
    pub state: MaStateView,
    pub queue: Vec<QueuedRequest>,
    /// Triggers paused (their requests wait in `deferred`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Request>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRecord>,
    /// Why the MA needs a full sync (its rules changed since its last
    /// one), while none has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_sync_needed: Option<String>,
    /// Objects of its connector space with an error that stands (an
    /// export refused, a record that could not be read, ...): read from
    /// the store by whoever shows the status (`autosync cs MA --errors`
    /// lists them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub objects_with_errors: u64,
    /// Objects of its connector space with an export pending, read from
    /// the store as `objects_with_errors` is: what a cancelled or failed
    /// export left, or what waits for the next export.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending_exports: u64,
    /// The MA's triggers that fail and have not asked for a run since (a
    /// change listener that cannot listen retries for ever, and its
    /// notification is sent once: the state alone says `idle`). A running
    /// service only: it is the service's memory, not persisted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trigger_errors: Vec<TriggerProblem>,
}

/// A trigger that failed, as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerProblem {
    /// The trigger's name (`change-notification (every change)`).
    pub trigger: String,
    /// Its last error, without the trigger's and the MA's names.
    pub message: String,
    /// Its first error since it last asked for a run (or since the
    /// service started, or its triggers were rebuilt).
    pub since: DateTime<Utc>,
    /// Its last error.
    pub last: DateTime<Utc>,
    /// How many errors since `since`.
    pub count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The status of every MA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Whether a running service answered (else: read from the store).
    pub service: bool,
    /// The service is stopping (a graceful stop): nothing starts any
    /// more; the queues and retries shown wait for its next start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopping: bool,
    /// Maintenance mode: who turned it on, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Since>,
    pub mas: BTreeMap<String, MaStatus>,
}

/// Everything one MA's state is decided from.
#[derive(Clone, Debug, Default)]
pub struct StateFacts<'a> {
    /// What runs on the MA now (a running service only).
    pub running: Option<MaStateView>,
    /// Enabled in the configuration.
    pub enabled: bool,
    pub control: Option<&'a MaControl>,
    /// Runs may start: an operator's start, or `auto_start`.
    pub started: bool,
    /// Requests are queued.
    pub queued: bool,
    /// Maintenance mode is on.
    pub maintenance: bool,
    /// What a queued request waits for (a running service only).
    pub waiting: Option<&'a str>,
    /// When a failed MA is tried again (a running service only).
    pub next_retry: Option<DateTime<Utc>>,
    /// A running service answers (else the persisted state is shown).
    pub service: bool,
    /// A threshold stop the store records and no operator decided yet:
    /// an export at the deletion threshold, or (read from the store, no
    /// service running) an import over a staging threshold run from a
    /// shell. The run and what the stop says.
    pub threshold_stop: Option<(RunId, &'a str)>,
}

/// One MA's state, by one precedence everywhere: running, then disabled
/// (the configuration's word: nothing runs or retries, whatever else is
/// recorded), then a staging threshold waiting for an operator, then a
/// threshold stop the store records (an export stopped at the deletion
/// threshold; also `threshold-exceeded`: `approve` or `reject` ends both),
/// then the
/// failed state, then stopped; then, from a running service, waiting
/// (maintenance mode, or what the scheduler said) or idle, and from the
/// store, queued or idle.
pub fn state_view(facts: StateFacts<'_>) -> MaStateView {
    if let Some(running) = facts.running {
        return running;
    }
    if !facts.enabled {
        return MaStateView::Disabled;
    }
    if let Some(t) = facts.control.and_then(|c| c.threshold.as_ref()) {
        return MaStateView::ThresholdExceeded {
            run_id: t.run_id,
            exceeded: t.exceeded.clone(),
            held: t.held.iter().map(|r| r.profile.clone()).collect(),
        };
    }
    if let Some((run_id, what)) = facts.threshold_stop {
        return MaStateView::ThresholdExceeded {
            run_id,
            exceeded: vec![what.to_owned()],
            held: Vec::new(),
        };
    }
    if let Some(f) = facts.control.and_then(|c| c.failed.as_ref()) {
        return MaStateView::Failed {
            profile: f.profile.clone(),
            status: f.status,
            run_id: f.run_id,
            attempts: f.attempts,
            since: f.since,
            error: f.error.clone(),
            next_retry: facts.next_retry,
        };
    }
    if !facts.started {
        return MaStateView::Stopped;
    }
    if !facts.service {
        return if facts.queued {
            MaStateView::Queued
        } else {
            MaStateView::Idle
        };
    }
    if facts.maintenance && facts.queued {
        return MaStateView::Waiting {
            reason: "maintenance mode".to_owned(),
        };
    }
    match facts.waiting {
        Some(reason) => MaStateView::Waiting {
            reason: reason.to_owned(),
        },
        None => MaStateView::Idle,
    }
}
