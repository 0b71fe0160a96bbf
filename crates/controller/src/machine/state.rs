//! What the controller persists (in the store's meta table, as JSON, by the
//! service) and reads back at start: every MA's queue, the requests whose
//! run had started, the triggers' states, what operators and the controller
//! decided about each MA, maintenance mode, and the cursor of runs seen.
//! Round-trips through serde; the machine reconciles it with the store's
//! run history at start ([`Event::Started`](super::Event::Started)).

use crate::queue::{QueuedRequest, Queues};
use crate::request::Request;
use autosync_model::{RunId, RunStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the controller persists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    #[serde(default)]
    pub queues: Queues,
    /// Requests whose run had started when the state was written.
    #[serde(default)]
    pub running: Vec<QueuedRequest>,
    /// MA → trigger key → the trigger's own state (opaque to the
    /// controller: the triggers read and write it).
    #[serde(default)]
    pub triggers: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// What operators and the controller decided about each MA.
    #[serde(default)]
    pub mas: BTreeMap<String, MaControl>,
    /// Maintenance mode: no run starts anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Since>,
    /// The newest run the controller has seen (its own or not): runs after
    /// it were started by someone else while the service was not looking.
    #[serde(default)]
    pub last_seen_run: RunId,
}

/// Who did something, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    pub by: String,
    pub at: DateTime<Utc>,
}

/// One MA's controller state that survives a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaControl {
    /// An operator's start (`true`) or stop (`false`); it wins over the
    /// configuration's `auto_start` from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    /// Triggers paused: their requests wait in `deferred`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Trigger requests that came while paused (one per profile), queued on
    /// resume: a paused trigger never loses a change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Request>,
    /// Consecutive runs of this MA that ended in a retryable status.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Retries used up: the MA is failed (still retried, at the capped
    /// backoff, until a run succeeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failed>,
    /// An import went over a staging threshold: the cycle of this MA waits
    /// for an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<HeldThreshold>,
    /// The profiles whose runs failed (a `run-failed`), with when the
    /// first of those failures was seen, until one ends well while no
    /// threshold stop waits on the MA (a `recovered`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failing: BTreeMap<String, DateTime<Utc>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why an MA is failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub profile: String,
    pub status: RunStatus,
    pub run_id: RunId,
    pub attempts: u32,
    pub since: DateTime<Utc>,
    /// The error of the step that stopped the last run, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a staging threshold holds back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldThreshold {
    /// The import run that went over.
    pub run_id: RunId,
    pub profile: String,
    /// Each threshold exceeded, e.g. `deletes 120 > 10% (12.0% of 1000 objects)`.
    pub exceeded: Vec<String>,
    /// The follow-ups that wait for approval.
    pub held: Vec<Request>,
    pub since: DateTime<Utc>,
}

impl PersistedState {
    /// The MAs whose requests were running when the state was written: the
    /// store's recent runs of these tell which of them completed.
    pub fn interrupted_mas(&self) -> Vec<String> {
        let mut mas: Vec<String> = self.running.iter().map(|r| r.ma.clone()).collect();
        mas.sort();
        mas.dedup();
        mas
    }
}
