//! Per-MA queues of requested runs. A request equal to one already queued
//! (same profile, same `exclusive`) is not added twice; follow-ups go to the
//! front, trigger requests to the back unless `run_immediate`. Queues are
//! plain data (serde) so the executor can persist them.

use crate::request::{ChainLink, Placement, Request};
use autosync_model::{RunId, RunReason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Controller-assigned id of a queued request, unique across all queues.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A request waiting in its MA's queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRequest {
    pub id: RequestId,
    pub ma: String,
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
    pub reason: RunReason,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainLink>,
    pub enqueued_at: DateTime<Utc>,
    /// How many equal requests were merged into this one.
    #[serde(default)]
    pub merged: u64,
    /// When its run started (set while it runs: the persisted `running`
    /// requests carry it, so that after a crash the run that completed it
    /// is told from an earlier run of the same profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// The newest run that existed when its run started (set while it
    /// runs): the run that completed it has a greater id. Times alone
    /// cannot tell two runs of the same profile started within the same
    /// second (the store keeps whole seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_run: Option<RunId>,
}

impl QueuedRequest {
    /// The request as it was asked for.
    pub fn request(&self) -> Request {
        Request {
            ma: self.ma.clone(),
            profile: self.profile.clone(),
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
            reason: self.reason.clone(),
            chain: self.chain.clone(),
        }
    }
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Added as a new request.
    Queued { id: RequestId, placement: Placement },
    /// An equal request was already queued; it stays, under its own id, and
    /// moved to the front when the new request asked for the front.
    Merged {
        into: RequestId,
        moved_to_front: bool,
    },
}

impl PushOutcome {
    /// The id under which the pushed request now waits.
    pub fn id(&self) -> RequestId {
        match self {
            PushOutcome::Queued { id, .. } => *id,
            PushOutcome::Merged { into, .. } => *into,
        }
    }
}

/// The queue of one MA, front first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaQueue {
    items: VecDeque<QueuedRequest>,
}

impl MaQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `request` under `id`, or merges it into an equal queued one. A
    /// merge keeps the queued request's id and reason (but a confirming
    /// import's reason gives way to an ordinary import's), takes the longer
    /// causal chain (so oscillation is still seen), and moves it to the front
    /// when the new request goes to the front (`run_immediate` or a
    /// follow-up).
    pub fn push(
        &mut self,
        id: RequestId,
        request: Request,
        enqueued_at: DateTime<Utc>,
    ) -> PushOutcome {
        let placement = request.placement();
        let existing = self
            .items
            .iter()
            .position(|q| q.profile == request.profile && q.exclusive == request.exclusive);
        if let Some(index) = existing
            && let Some(queued) = self.items.get_mut(index)
        {
            queued.merged += 1;
            queued.run_immediate |= request.run_immediate;
            // A confirming import reads back only what was exported: a
            // request for an ordinary import merged into it makes it one.
            if queued.reason.confirming() && !request.reason.confirming() {
                queued.reason = request.reason;
            }
            if request.chain.len() > queued.chain.len() {
                queued.chain = request.chain;
            }
            let into = queued.id;
            let moved_to_front = placement == Placement::Front && index > 0;
            if moved_to_front && let Some(queued) = self.items.remove(index) {
                self.items.push_front(queued);
            }
            return PushOutcome::Merged {
                into,
                moved_to_front,
            };
        }
        let queued = QueuedRequest {
            id,
            ma: request.ma,
            profile: request.profile,
            exclusive: request.exclusive,
            run_immediate: request.run_immediate,
            reason: request.reason,
            chain: request.chain,
            enqueued_at,
            merged: 0,
            started_at: None,
            after_run: None,
        };
        match placement {
            Placement::Front => self.items.push_front(queued),
            Placement::Back => self.items.push_back(queued),
        }
        PushOutcome::Queued { id, placement }
    }

    pub fn pop(&mut self) -> Option<QueuedRequest> {
        self.items.pop_front()
    }

    pub fn peek(&self) -> Option<&QueuedRequest> {
        self.items.front()
    }

    /// Empties the queue and returns what it held.
    pub fn clear(&mut self) -> Vec<QueuedRequest> {
        self.items.drain(..).collect()
    }

    /// Removes one request (an operator cancelled it).
    pub fn remove(&mut self, id: RequestId) -> Option<QueuedRequest> {
        let index = self.items.iter().position(|q| q.id == id)?;
        self.items.remove(index)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Front first.
    pub fn iter(&self) -> impl Iterator<Item = &QueuedRequest> {
        self.items.iter()
    }
}

/// Every MA's queue, with the id counter: what the executor persists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queues {
    queues: BTreeMap<String, MaQueue>,
    /// The last id handed out.
    last_id: u64,
}

impl Queues {
    pub fn new() -> Self {
        Self::default()
    }

    fn next_id(&mut self) -> RequestId {
        self.last_id += 1;
        RequestId(self.last_id)
    }

    /// Queues one request on its MA.
    pub fn push(&mut self, request: Request, now: DateTime<Utc>) -> PushOutcome {
        let id = self.next_id();
        self.queues
            .entry(request.ma.clone())
            .or_default()
            .push(id, request, now)
    }

    /// Queues several requests (a decision's), so that those going to the
    /// front of one queue keep their order there. Outcomes are in the
    /// requests' order.
    pub fn push_all(&mut self, requests: Vec<Request>, now: DateTime<Utc>) -> Vec<PushOutcome> {
        let ids: Vec<RequestId> = requests.iter().map(|_| self.next_id()).collect();
        let (front, back): (Vec<_>, Vec<_>) = ids
            .into_iter()
            .zip(requests)
            .enumerate()
            .partition(|(_, (_, r))| r.placement() == Placement::Front);
        let mut outcomes = Vec::with_capacity(front.len() + back.len());
        for (i, (id, request)) in front.into_iter().rev().chain(back) {
            let outcome = self
                .queues
                .entry(request.ma.clone())
                .or_default()
                .push(id, request, now);
            outcomes.push((i, outcome));
        }
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, o)| o).collect()
    }

    pub fn get(&self, ma: &str) -> Option<&MaQueue> {
        self.queues.get(ma)
    }

    /// The queue of `ma`, created empty when it has none.
    pub fn get_mut(&mut self, ma: &str) -> &mut MaQueue {
        self.queues.entry(ma.to_owned()).or_default()
    }

    pub fn peek(&self, ma: &str) -> Option<&QueuedRequest> {
        self.queues.get(ma).and_then(MaQueue::peek)
    }

    pub fn pop(&mut self, ma: &str) -> Option<QueuedRequest> {
        self.queues.get_mut(ma).and_then(MaQueue::pop)
    }

    /// Every MA's queue, by MA name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MaQueue)> {
        self.queues.iter().map(|(ma, q)| (ma.as_str(), q))
    }

    /// Number of queued requests over all MAs.
    pub fn total(&self) -> usize {
        self.queues.values().map(MaQueue::len).sum()
    }
}
