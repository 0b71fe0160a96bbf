//! A request to run a profile on an MA, as triggers, operators, the cycle
//! and reconciliation ask for it, with the causal chain that led to it.

use autosync_model::{RunId, RunReason, RunRecord};
use serde::{Deserialize, Serialize};

/// One run in a causal chain: which run caused the next request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    pub run_id: RunId,
    pub ma: String,
    pub profile: String,
}

impl ChainLink {
    pub fn of(run: &RunRecord) -> Self {
        ChainLink {
            run_id: run.id,
            ma: run.ma.clone(),
            profile: run.profile.clone(),
        }
    }
}

/// Where a request goes in its MA's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    Front,
    Back,
}

/// A request to run `profile` on `ma`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub ma: String,
    pub profile: String,
    /// Run alone, whatever the run mode.
    #[serde(default)]
    pub exclusive: bool,
    /// Go to the front of the queue.
    #[serde(default)]
    pub run_immediate: bool,
    pub reason: RunReason,
    /// The runs that led to this request, root cause first; empty for a
    /// trigger's or an operator's request. Its length is the request's
    /// generation, which the oscillation limit bounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainLink>,
}

impl Request {
    /// A request from a trigger (back of the queue).
    pub fn trigger(ma: &str, profile: &str, trigger: &str) -> Self {
        Request {
            ma: ma.to_owned(),
            profile: profile.to_owned(),
            exclusive: false,
            run_immediate: false,
            reason: RunReason::Trigger {
                trigger: trigger.to_owned(),
            },
            chain: Vec::new(),
        }
    }

    /// The same request, to run alone.
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// The same request, to the front of its queue.
    pub fn run_immediate(mut self) -> Self {
        self.run_immediate = true;
        self
    }

    /// Follow-ups and reconciliation go to the front of their queue (the
    /// cycle finishes what it started before new imports); triggers and
    /// operators go to the back unless they ask for `run_immediate`.
    pub fn placement(&self) -> Placement {
        match self.reason {
            _ if self.run_immediate => Placement::Front,
            RunReason::FollowUp { .. } | RunReason::Reconciliation { .. } => Placement::Front,
            RunReason::Manual { .. } | RunReason::Trigger { .. } => Placement::Back,
        }
    }

    /// Whether `other` asks for the same thing (same MA, profile and
    /// `exclusive`), so that it is not queued twice.
    pub fn same_as(&self, ma: &str, profile: &str, exclusive: bool) -> bool {
        self.ma == ma && self.profile == profile && self.exclusive == exclusive
    }
}
