//! What `decide` and `reconcile` know about the system: per MA, the
//! profiles the follow-ups run, which follow-ups are switched on, the
//! connector space's pending counts and the causal chain of its last run.
//! The executor builds it; the deciding functions only read it.

use crate::engine_api::CsState;
use crate::profiles::{FollowUpKind, ResolvedProfiles};
use crate::request::ChainLink;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many follow-up generations one causal chain may produce before it
/// is reported as an oscillation instead.
pub const DEFAULT_OSCILLATION_LIMIT: usize = 50;

/// Which follow-ups the controller runs on one MA (each can be switched
/// off, e.g. "never export automatically to this MA; the operator does").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FollowUps {
    #[serde(default = "yes")]
    pub delta_sync: bool,
    #[serde(default = "yes")]
    pub export: bool,
    #[serde(default = "yes")]
    pub confirming_import: bool,
}

fn yes() -> bool {
    true
}

impl Default for FollowUps {
    fn default() -> Self {
        FollowUps {
            delta_sync: true,
            export: true,
            confirming_import: true,
        }
    }
}

impl FollowUps {
    pub fn allows(&self, kind: FollowUpKind) -> bool {
        match kind {
            FollowUpKind::DeltaSync => self.delta_sync,
            FollowUpKind::Export => self.export,
            FollowUpKind::ConfirmingImport => self.confirming_import,
        }
    }
}

/// One MA as the deciding functions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaView {
    pub profiles: ResolvedProfiles,
    pub follow_ups: FollowUps,
    /// The connector space's pending counts; `None` when unknown (then the
    /// counters alone decide).
    pub cs: Option<CsState>,
    /// The chain of the request whose run finished last on this MA (its
    /// causes, root first); empty when that run came from a trigger, an
    /// operator or outside the controller. `decide` extends it with the
    /// finished run; `reconcile` continues it.
    pub chain: Vec<ChainLink>,
}

impl MaView {
    pub fn new(profiles: ResolvedProfiles) -> Self {
        MaView {
            profiles,
            follow_ups: FollowUps::default(),
            cs: None,
            chain: Vec::new(),
        }
    }
}

/// Everything `decide` and `reconcile` need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerView {
    pub mas: BTreeMap<String, MaView>,
    /// Follow-up generations allowed in one causal chain.
    pub oscillation_limit: usize,
}

impl Default for ControllerView {
    fn default() -> Self {
        ControllerView {
            mas: BTreeMap::new(),
            oscillation_limit: DEFAULT_OSCILLATION_LIMIT,
        }
    }
}

impl ControllerView {
    pub fn ma(&self, name: &str) -> Option<&MaView> {
        self.mas.get(name)
    }

    /// The chain of the run that finished last on `ma` (empty if unknown).
    pub fn chain(&self, ma: &str) -> &[ChainLink] {
        self.mas.get(ma).map(|m| m.chain.as_slice()).unwrap_or(&[])
    }
}
