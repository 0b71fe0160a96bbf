//! What the state machine needs to know of the configuration: scheduling,
//! timing, and per MA its profiles, follow-ups, start state, retries,
//! blackout windows and the digests a reload compares. Triggers, hooks and
//! notifications are the service's: the machine only says when an MA's
//! triggers must be built again.

use crate::blackout::Blackouts;
use crate::engine_api::MaInfo;
use crate::profiles::ProfileOverrides;
use crate::retry::RetryPolicy;
use crate::scheduler::Scheduler;
use crate::view::{DEFAULT_OSCILLATION_LIMIT, FollowUps};
use autosync_model::RunStatus;
use std::collections::BTreeMap;
use std::time::Duration;

/// Default time between two starts that would overlap.
pub const DEFAULT_START_STAGGER: Duration = Duration::from_secs(1);
/// Default period of reconciliation.
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(3600);
/// Default time run history is kept.
pub const DEFAULT_KEEP_HISTORY: Duration = Duration::from_secs(90 * 24 * 3600);
/// The run statuses that are no news by default (the notifications'
/// default `ignore_statuses`).
pub const DEFAULT_IGNORE_STATUSES: [RunStatus; 2] =
    [RunStatus::Success, RunStatus::CompletedNoObjects];

/// The controller's configuration, as the machine uses it.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub scheduler: Scheduler,
    /// Minimum time between two starts while something runs (0: none).
    pub start_stagger: Duration,
    pub oscillation_limit: usize,
    /// Period of reconciliation (±10 %).
    pub reconcile_every: Duration,
    /// Run history older than this is trimmed (every 6 hours).
    pub keep_history: Duration,
    /// On a reload that changes an MA's sync rules (or at start, when they
    /// changed while the service was stopped), queue the full syncs needed
    /// instead of only saying so.
    pub full_sync_on_rule_change: bool,
    /// A digest of the metaverse's definition: a reload says when it
    /// changed (precedence, deletion rules), which no MA's digest shows.
    pub metaverse_fingerprint: String,
    /// Run statuses that are no news (the notifications'
    /// `ignore_statuses`): a run ending in one is no `run-failed`, and ends
    /// its profile's failure (`recovered`); any other is a `run-failed`.
    pub ignore_statuses: Vec<RunStatus>,
    pub mas: BTreeMap<String, MaConfig>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            scheduler: Scheduler::default(),
            start_stagger: DEFAULT_START_STAGGER,
            oscillation_limit: DEFAULT_OSCILLATION_LIMIT,
            reconcile_every: DEFAULT_RECONCILE_EVERY,
            keep_history: DEFAULT_KEEP_HISTORY,
            full_sync_on_rule_change: false,
            metaverse_fingerprint: String::new(),
            ignore_statuses: DEFAULT_IGNORE_STATUSES.to_vec(),
            mas: BTreeMap::new(),
        }
    }
}

/// One MA's controller settings.
#[derive(Clone, Debug)]
pub struct MaConfig {
    pub info: MaInfo,
    pub follow_ups: FollowUps,
    pub profiles: ProfileOverrides,
    /// Runs start without an operator's start.
    pub auto_start: bool,
    /// `false`: no trigger, no run, whatever operators do; the queue is kept.
    pub enabled: bool,
    pub retry: RetryPolicy,
    pub blackouts: Blackouts,
    /// The MA has import flows (a full sync of it recomputes what it
    /// contributes).
    pub imports: bool,
    /// A digest of the MA's whole definition: a reload restarts the MA's
    /// triggers when it changes.
    pub fingerprint: String,
    /// A digest of the MA's synchronisation rules: when it changes, the
    /// MA needs a full sync.
    pub rules_fingerprint: String,
}

impl MaConfig {
    /// An enabled, auto-started MA with these profiles and every default.
    pub fn new(info: MaInfo) -> Self {
        MaConfig {
            info,
            follow_ups: FollowUps::default(),
            profiles: ProfileOverrides::default(),
            auto_start: true,
            enabled: true,
            retry: RetryPolicy::default(),
            blackouts: Blackouts::default(),
            imports: false,
            fingerprint: String::new(),
            rules_fingerprint: String::new(),
        }
    }

    /// The MA's first run profile with a full sync step, if any.
    pub fn full_sync_profile(&self) -> Option<String> {
        self.info
            .profiles
            .iter()
            .find(|(_, steps)| steps.contains(&autosync_model::StepType::FullSync))
            .map(|(p, _)| p.clone())
    }
}
