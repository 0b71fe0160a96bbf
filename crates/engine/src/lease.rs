//! Which process runs a profile of an MA, across processes and hosts that
//! share a store (the service and `autosync run-profile`, say): a lease in
//! the store's meta table, `lease:<ma>`, taken when a run starts, renewed
//! by a heartbeat while it runs and released when it ends (see
//! [`autosync_store::lease`]: the holder is an instance id, not a pid; a
//! lease whose holder's process ended on this host is taken over at once,
//! any other once its heartbeat is older than its time to live).
//!
//! The same for *the* sync: one synchronisation step at a time in the whole
//! engine, across processes ([`SYNC_LEASE_KEY`], held for one sync step
//! with the MA and the run; see `sync_turn`). A sync lease whose run has
//! ended (its release failed) is taken over too.
//!
//! A run whose lease is taken over while it runs (its process was frozen
//! or cut off from the store past the time to live) is cancelled.

use autosync_model::{RunId, RunStatus};
use autosync_store::lease::{Claim, Holder, Instance, LeaseTiming, Leases};
use autosync_store::{Store, StoreResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The meta key of an MA's lease.
pub fn lease_key(ma: &str) -> String {
    format!("lease:{ma}")
}

/// Who holds an MA's lease.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseOwner {
    #[serde(flatten)]
    pub holder: Holder,
    /// The run holding it, once recorded.
    #[serde(default)]
    pub run_id: RunId,
}

impl LeaseOwner {
    /// Process `pid` of this host (under an instance id of its own), while
    /// it runs (`None` when it does not), holding run `run_id`: the lease
    /// another local process would write (tests).
    pub fn of_process(pid: u32, run_id: RunId) -> Option<LeaseOwner> {
        let instance = Instance::local_process(pid)?;
        Some(LeaseOwner {
            holder: instance.holder(chrono::Utc::now(), LeaseTiming::default().ttl),
            run_id,
        })
    }
}

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Whether `run`, recorded in progress, was left so by a process that
/// ended (killed, crashed, its host lost): no live process holds its MA's
/// lease for it. The next start of an engine on the store closes such a
/// run `stopped-server` ([`crate::Engine::close_unfinished_runs`]); until
/// then listings say so rather than "running".
pub fn left_by_an_ended_process(
    store: std::sync::Arc<dyn Store>,
    run: &autosync_model::RunRecord,
) -> StoreResult<bool> {
    if run.status != RunStatus::InProgress || run.ended_at.is_some() {
        return Ok(false);
    }
    let leases = Leases::new(store, Instance::current(), LeaseTiming::default());
    Ok(match holder(&leases, &run.ma)? {
        None => true,
        // Held for another run (0: the run not yet recorded with it).
        Some(owner) => owner.run_id != 0 && owner.run_id != run.id,
    })
}

/// The live owner of `ma`'s lease in another instance, if any.
pub(crate) fn holder(leases: &Leases, ma: &str) -> StoreResult<Option<LeaseOwner>> {
    Ok(leases
        .live_holder(&lease_key(ma))?
        .map(|c| c.get().unwrap_or_default()))
}

/// Whether this process holds `ma`'s lease: a run of another engine of
/// this process (the one a configuration reload replaced, whose runs
/// finish on it), not one left by a process that ended.
pub(crate) fn held_here(leases: &Leases, ma: &str) -> StoreResult<bool> {
    Ok(leases
        .read(&lease_key(ma))?
        .is_some_and(|c| leases.standing(&c) == autosync_store::lease::Standing::Mine))
}

/// Takes `ma`'s lease for this instance, unless another live one holds it
/// (then returns that owner).
pub(crate) fn acquire(leases: &Leases, ma: &str) -> StoreResult<Result<(), LeaseOwner>> {
    let taken = leases.acquire(
        &lease_key(ma),
        &fields(&[("run_id", Value::from(0))]),
        &mut |_| Ok(true),
    )?;
    Ok(taken.map_err(|c| c.get().unwrap_or_default()))
}

/// Records the run holding this instance's lease of `ma`; `false` when the
/// lease was taken over meanwhile.
pub(crate) fn record_run(leases: &Leases, ma: &str, run_id: RunId) -> StoreResult<bool> {
    leases.update(&lease_key(ma), &fields(&[("run_id", Value::from(run_id))]))
}

/// Releases this instance's lease of `ma` (another's is left alone).
pub(crate) fn release(leases: &Leases, ma: &str) -> StoreResult<()> {
    leases.release(&lease_key(ma))
}

/// The meta key of the sync lease (no MA's lease key, `lease:<ma>`, can be
/// it).
pub const SYNC_LEASE_KEY: &str = "sync-lease";

/// Who holds the sync lease: the MA whose sync step runs, in which process
/// and run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncHolder {
    pub ma: String,
    #[serde(flatten)]
    pub owner: LeaseOwner,
}

impl SyncHolder {
    /// The same sync of the same holder (its heartbeat aside).
    pub fn is_same_sync(&self, other: &SyncHolder) -> bool {
        let (a, b) = (&self.owner, &other.owner);
        self.ma == other.ma
            && a.run_id == b.run_id
            && a.holder.instance == b.holder.instance
            && a.holder.pid == b.holder.pid
    }
}

impl std::fmt::Display for SyncHolder {
    /// `the sync of `hr` in process 1234 (run 17)`, with ` on host-b`
    /// after the pid when that process is on another host.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the sync of `{}` in {} (run {})",
            self.ma,
            self.owner.holder.describe(&Instance::current()),
            self.owner.run_id
        )
    }
}

/// Whether the run that took `holder` still runs (a process that lives on,
/// a service, whose run ended without releasing the lease holds nothing).
fn run_going_on(store: &dyn Store, holder: &SyncHolder) -> StoreResult<bool> {
    Ok(holder.owner.run_id == 0
        || store
            .read()?
            .run_get(holder.owner.run_id)?
            .is_some_and(|r| r.status == RunStatus::InProgress))
}

/// Whether the live holder of `claim` still runs the sync that took it.
fn still_syncing(store: &dyn Store, claim: &Claim) -> StoreResult<bool> {
    match claim.get::<SyncHolder>() {
        Some(holder) => run_going_on(store, &holder),
        None => Ok(false),
    }
}

/// The live holder of the sync lease in another instance, if any.
pub fn sync_holder(leases: &Leases) -> StoreResult<Option<SyncHolder>> {
    let Some(claim) = leases.live_holder(SYNC_LEASE_KEY)? else {
        return Ok(None);
    };
    if !still_syncing(leases.store().as_ref(), &claim)? {
        return Ok(None);
    }
    Ok(claim.get())
}

/// Takes the sync lease for the sync of `ma` in run `run_id`, unless
/// another instance's sync holds it (then returns who).
pub(crate) fn acquire_sync(
    leases: &Leases,
    ma: &str,
    run_id: RunId,
) -> StoreResult<Result<(), SyncHolder>> {
    let store = leases.store().clone();
    let taken = leases.acquire(
        SYNC_LEASE_KEY,
        &fields(&[("ma", Value::from(ma)), ("run_id", Value::from(run_id))]),
        &mut |claim| still_syncing(store.as_ref(), claim),
    )?;
    Ok(taken.map_err(|c| c.get().unwrap_or_default()))
}

/// Releases this instance's sync lease (another's is left alone).
pub(crate) fn release_sync(leases: &Leases) -> StoreResult<()> {
    leases.release(SYNC_LEASE_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_of_the_old_format_should_still_be_read() {
        let old: SyncHolder =
            serde_json::from_str(r#"{"ma":"hr","pid":42,"started":7,"run_id":3}"#).unwrap();
        assert_eq!(old.ma, "hr");
        assert_eq!(old.owner.holder.pid, 42);
        assert_eq!(old.owner.holder.started, 7);
        assert_eq!(old.owner.run_id, 3);
        assert!(old.owner.holder.instance.is_empty());
        assert_eq!(old.to_string(), "the sync of `hr` in process 42 (run 3)");
    }

    #[test]
    fn a_holder_on_another_host_should_be_named_with_its_host() {
        let other = Instance::elsewhere("node-b", 99);
        let holder = SyncHolder {
            ma: "hr".into(),
            owner: LeaseOwner {
                holder: other.holder(chrono::Utc::now(), LeaseTiming::default().ttl),
                run_id: 5,
            },
        };
        assert_eq!(
            holder.to_string(),
            "the sync of `hr` in process 99 on node-b (run 5)"
        );
    }
}
