//! What a dashboard shows per MA: its state (idle, running a profile,
//! waiting and why, stopped) and its queue. The running service answers
//! from memory; without a service, [`status_from_store`] reads the
//! persisted state.

use crate::config::ControllerConfig;
use crate::persist::{self, MaControl, PersistError, Since};
use autosync_controller::{QueuedRequest, Request};
use autosync_model::{RunId, RunRecord, RunStatus};
use autosync_store::Store;
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
    /// The MA is not in the configuration the service runs.
    Disabled,
    /// Retries are used up; the MA is still retried at the capped backoff.
    Failed {
        profile: String,
        status: RunStatus,
        run_id: RunId,
        attempts: u32,
        since: DateTime<Utc>,
    },
    /// An import went over a staging threshold: the MA's syncs wait for
    /// `autosync approve` or `autosync reject`.
    ThresholdExceeded {
        run_id: RunId,
        exceeded: Vec<String>,
        /// The held requests' profiles.
        held: Vec<String>,
    },
    /// Requests are queued but no service runs to start them.
    Queued,
}

impl MaStateView {
    /// The state an MA's persisted control shows, when it overrides the
    /// others: a held staging threshold, then the failed state.
    pub fn from_control(control: &MaControl) -> Option<MaStateView> {
        if let Some(t) = &control.threshold {
            return Some(MaStateView::ThresholdExceeded {
                run_id: t.run_id,
                exceeded: t.exceeded.clone(),
                held: t.held.iter().map(|r| r.profile.clone()).collect(),
            });
        }
        control.failed.as_ref().map(|f| MaStateView::Failed {
            profile: f.profile.clone(),
            status: f.status,
            run_id: f.run_id,
            attempts: f.attempts,
            since: f.since,
        })
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
}

/// The status of every MA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Whether a running service answered (else: read from the store).
    pub service: bool,
    /// Maintenance mode: who turned it on, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Since>,
    pub mas: BTreeMap<String, MaStatus>,
}

/// The status read from the store when no service runs.
pub fn status_from_store(
    store: &dyn Store,
    config: &ControllerConfig,
) -> Result<Status, PersistError> {
    let mas = config
        .mas
        .iter()
        .map(|(name, ma)| {
            let settings = Settings {
                enabled: ma.enabled,
                auto_start: ma.auto_start,
            };
            (name.clone(), settings)
        })
        .collect();
    from_store(store, persist::load(store)?, mas)
}

/// How many recent runs [`status_from_store_alone`] reads to find MAs.
const RECENT_RUNS: usize = 1000;

/// The status read from the store when no service runs and the
/// configuration does not load: the MAs are those the store knows (the
/// controller's persisted state, the recent run history), each shown as
/// enabled and auto-started (those settings are in the configuration;
/// an operator's start or stop, kept in the store, still shows).
pub fn status_from_store_alone(store: &dyn Store) -> Result<Status, PersistError> {
    let state = persist::load(store)?;
    let mut names: std::collections::BTreeSet<String> = state
        .queues
        .iter()
        .map(|(ma, _)| ma.to_owned())
        .chain(state.mas.keys().cloned())
        .chain(state.triggers.keys().cloned())
        .collect();
    let recent = store.read()?.runs(None, RECENT_RUNS)?;
    names.extend(recent.into_iter().map(|r| r.ma));
    let settings = || Settings {
        enabled: true,
        auto_start: true,
    };
    let mas = names.into_iter().map(|n| (n, settings())).collect();
    from_store(store, state, mas)
}

/// What the store's status needs of an MA's configuration.
struct Settings {
    enabled: bool,
    auto_start: bool,
}

fn from_store(
    store: &dyn Store,
    state: persist::PersistedState,
    configured: BTreeMap<String, Settings>,
) -> Result<Status, PersistError> {
    let mut read = store.read()?;
    let mut mas = BTreeMap::new();
    for (name, ma) in &configured {
        let queue: Vec<QueuedRequest> = state
            .queues
            .get(name)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        let control = state.mas.get(name);
        let started = control.and_then(|c| c.started).unwrap_or(ma.auto_start);
        let state_view = if !ma.enabled {
            MaStateView::Disabled
        } else if let Some(v) = control.and_then(MaStateView::from_control) {
            v
        } else if !started {
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
                paused: control.is_some_and(|c| c.paused),
                deferred: control.map(|c| c.deferred.clone()).unwrap_or_default(),
                last_run,
                full_sync_needed: None,
            },
        );
    }
    Ok(Status {
        service: false,
        maintenance: state.maintenance.clone(),
        mas,
    })
}
