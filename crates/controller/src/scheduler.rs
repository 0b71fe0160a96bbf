//! The pure "what may start now": given every MA's queue head and what is
//! running, the run mode, lock groups, MA states and blackout windows, which
//! requests start now and what each waiting MA waits for. No clock: the
//! caller evaluates blackout windows into `in_blackout`.
//!
//! Fairness: heads are considered oldest first, and while a request that
//! must run alone (a sync in `supported` mode, an `exclusive` request, any
//! request in `exclusive` mode) waits for the engine to go idle, nothing
//! newer starts ahead of it, so a sync never starves under an import storm.

use crate::queue::{QueuedRequest, RequestId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How runs of different MAs may overlap (the meanings MIM administrators
/// know).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunMode {
    /// A profile with a sync step runs alone; imports and exports of
    /// different MAs overlap each other.
    #[default]
    Supported,
    /// Only the global sync lock: imports and exports may overlap a sync.
    Unsupported,
    /// Nothing overlaps anything.
    Exclusive,
}

/// MAs that must never run together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockGroup {
    pub name: String,
    pub mas: BTreeSet<String>,
}

/// Whether an MA may start runs. Stopped and disabled MAs keep their queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaState {
    #[default]
    Active,
    Stopped,
    Disabled,
}

/// A run in progress, the controller's own or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub ma: String,
    pub profile: String,
    /// The profile has a sync step (it holds the global sync lock).
    pub has_sync: bool,
    pub exclusive: bool,
}

/// One MA as the scheduler sees it.
#[derive(Clone, Copy, Debug)]
pub struct Slot<'a> {
    pub ma: &'a str,
    pub state: MaState,
    pub in_blackout: bool,
    pub head: Option<&'a QueuedRequest>,
    /// The head's profile has a sync step.
    pub head_has_sync: bool,
}

/// A request to start now (the caller pops it from its queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub ma: String,
    pub request: RequestId,
    pub profile: String,
    pub has_sync: bool,
    pub exclusive: bool,
}

impl Start {
    pub fn running(&self) -> Running {
        Running {
            ma: self.ma.clone(),
            profile: self.profile.clone(),
            has_sync: self.has_sync,
            exclusive: self.exclusive,
        }
    }
}

/// What a waiting MA waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitReason {
    /// Another run holds the global sync lock (in `supported` mode a
    /// running sync also keeps imports and exports from starting).
    SyncLock { held_by: String },
    /// This request must run alone and waits for these runs to end.
    WaitingForIdle { running: Vec<String> },
    /// A sync on `sync_ma` waits for the engine to go idle and goes first.
    DrainingForSync { sync_ma: String },
    /// `held_by` runs (or waits to run) alone: an exclusive request, or the
    /// `exclusive` run mode.
    Exclusive { held_by: String },
    /// An MA of the same lock group is running.
    LockGroup { group: String, held_by: String },
    /// The MA is in a blackout window.
    Blackout,
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::SyncLock { held_by } => {
                write!(f, "waiting for the sync lock (held by `{held_by}`)")
            }
            WaitReason::WaitingForIdle { running } => {
                write!(f, "waiting to run alone (running: {})", running.join(", "))
            }
            WaitReason::DrainingForSync { sync_ma } => {
                write!(f, "the sync of `{sync_ma}` goes first")
            }
            WaitReason::Exclusive { held_by } => write!(f, "`{held_by}` runs alone"),
            WaitReason::LockGroup { group, held_by } => {
                write!(f, "waiting for lock group `{group}` (held by `{held_by}`)")
            }
            WaitReason::Blackout => write!(f, "in a blackout window"),
        }
    }
}

/// What starts now, and what every other MA with a queued request waits
/// for (MAs that are running, stopped or disabled are in neither).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub start: Vec<Start>,
    pub waiting: BTreeMap<String, WaitReason>,
}

/// The scheduling rules of one deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduler {
    #[serde(default)]
    pub mode: RunMode,
    #[serde(default)]
    pub lock_groups: Vec<LockGroup>,
}

/// A queue head that may start.
struct Candidate<'a> {
    ma: &'a str,
    head: &'a QueuedRequest,
    has_sync: bool,
    in_blackout: bool,
}

impl Scheduler {
    /// Whether this candidate must have the engine to itself.
    fn needs_idle(&self, c: &Candidate<'_>) -> bool {
        c.head.exclusive
            || self.mode == RunMode::Exclusive
            || (self.mode == RunMode::Supported && c.has_sync)
    }

    /// Why the runs in `active` keep `c` from starting.
    fn blocked_by(&self, c: &Candidate<'_>, active: &[Running]) -> Option<WaitReason> {
        let sync = active.iter().find(|r| r.has_sync);
        if let Some(r) = sync
            && c.has_sync
        {
            return Some(WaitReason::SyncLock {
                held_by: r.ma.clone(),
            });
        }
        if let Some(r) = active.iter().find(|r| r.exclusive) {
            return Some(WaitReason::Exclusive {
                held_by: r.ma.clone(),
            });
        }
        if self.mode == RunMode::Exclusive
            && let Some(r) = active.first()
        {
            return Some(WaitReason::Exclusive {
                held_by: r.ma.clone(),
            });
        }
        if let Some(r) = sync
            && self.mode == RunMode::Supported
        {
            return Some(WaitReason::SyncLock {
                held_by: r.ma.clone(),
            });
        }
        if self.needs_idle(c) && !active.is_empty() {
            return Some(WaitReason::WaitingForIdle {
                running: active.iter().map(|r| r.ma.clone()).collect(),
            });
        }
        for group in self.lock_groups.iter().filter(|g| g.mas.contains(c.ma)) {
            if let Some(r) = active
                .iter()
                .find(|r| r.ma != c.ma && group.mas.contains(&r.ma))
            {
                return Some(WaitReason::LockGroup {
                    group: group.name.clone(),
                    held_by: r.ma.clone(),
                });
            }
        }
        None
    }

    /// What may start now.
    pub fn plan(&self, running: &[Running], slots: &[Slot<'_>]) -> Plan {
        let mut active: Vec<Running> = running.to_vec();
        let mut candidates: Vec<Candidate<'_>> = slots
            .iter()
            .filter(|s| s.state == MaState::Active)
            .filter_map(|s| {
                s.head.map(|head| Candidate {
                    ma: s.ma,
                    head,
                    has_sync: s.head_has_sync,
                    in_blackout: s.in_blackout,
                })
            })
            .collect();
        candidates.sort_by_key(|c| (c.head.enqueued_at, c.head.id));

        let mut plan = Plan::default();
        // The oldest request that waits for the engine to go idle, and
        // whether it is a sync.
        let mut drainer: Option<(&str, bool)> = None;
        for c in candidates {
            if active.iter().any(|r| r.ma == c.ma) {
                // Waits for its own MA's run; if it must run alone, it
                // already holds newer requests back.
                if drainer.is_none() && self.needs_idle(&c) {
                    drainer = Some((c.ma, c.has_sync));
                }
                continue;
            }
            if c.in_blackout {
                plan.waiting.insert(c.ma.to_owned(), WaitReason::Blackout);
                continue;
            }
            if let Some(reason) = self.blocked_by(&c, &active) {
                if drainer.is_none() && self.needs_idle(&c) {
                    drainer = Some((c.ma, c.has_sync));
                }
                plan.waiting.insert(c.ma.to_owned(), reason);
                continue;
            }
            if let Some((ma, is_sync)) = drainer {
                let reason = if is_sync {
                    WaitReason::DrainingForSync {
                        sync_ma: ma.to_owned(),
                    }
                } else {
                    WaitReason::Exclusive {
                        held_by: ma.to_owned(),
                    }
                };
                plan.waiting.insert(c.ma.to_owned(), reason);
                continue;
            }
            let start = Start {
                ma: c.ma.to_owned(),
                request: c.head.id,
                profile: c.head.profile.clone(),
                has_sync: c.has_sync,
                exclusive: c.head.exclusive,
            };
            active.push(start.running());
            plan.start.push(start);
        }
        plan
    }
}
