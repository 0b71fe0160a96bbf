//! Which process runs a profile of an MA, across processes that share a
//! store (the service and `autosync run-profile`, say): a lease in the
//! store's meta table, `lease:<ma>`, taken in a write transaction (so two
//! processes cannot both take it) and released when the run ends. A lease
//! whose process is gone (a crash, a SIGKILL) is taken over: the process is
//! identified by its pid *and* its start time, so a recycled pid does not
//! keep a dead lease alive.
//!
//! The same for *the* sync: one synchronisation step at a time in the whole
//! engine, across processes ([`SYNC_LEASE_KEY`], held for one sync step
//! with the MA and the run; see `sync_turn`). A sync lease whose run has
//! ended (its release failed) is taken over too.

use autosync_model::{RunId, RunStatus};
use autosync_store::{Store, StoreRead, StoreResult};
use serde::{Deserialize, Serialize};

/// The meta key of an MA's lease.
pub fn lease_key(ma: &str) -> String {
    format!("lease:{ma}")
}

/// Who holds a lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseOwner {
    pub pid: u32,
    /// The process's start time (clock ticks since boot, from
    /// `/proc/<pid>/stat`); 0 where unknown.
    pub started: u64,
    /// The run holding it, once recorded.
    #[serde(default)]
    pub run_id: RunId,
}

/// The start time of process `pid`, from `/proc/<pid>/stat` (field 22).
/// `None` when the process does not exist.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

impl LeaseOwner {
    /// This process.
    pub fn me(run_id: RunId) -> LeaseOwner {
        let pid = std::process::id();
        LeaseOwner {
            pid,
            started: process_start(pid).unwrap_or(0),
            run_id,
        }
    }

    /// Process `pid`, while it runs (`None` when it does not).
    pub fn of_process(pid: u32, run_id: RunId) -> Option<LeaseOwner> {
        Some(LeaseOwner {
            pid,
            started: process_start(pid)?,
            run_id,
        })
    }

    /// Whether the owning process still runs. Without `/proc` (not Linux)
    /// a lease is taken as alive.
    pub fn is_alive(&self) -> bool {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return true;
        }
        match process_start(self.pid) {
            None => false,
            Some(started) => self.started == 0 || started == self.started,
        }
    }

    pub(crate) fn is_me(&self) -> bool {
        self.pid == std::process::id()
    }
}

/// The live owner of `ma`'s lease in another process, if any.
pub fn holder(store: &dyn Store, ma: &str) -> StoreResult<Option<LeaseOwner>> {
    let text = store.read()?.meta(&lease_key(ma))?;
    Ok(text
        .and_then(|t| serde_json::from_str::<LeaseOwner>(&t).ok())
        .filter(|o| !o.is_me() && o.is_alive()))
}

/// Takes `ma`'s lease for this process, unless another live process holds
/// it (then returns that owner).
pub(crate) fn acquire(store: &dyn Store, ma: &str) -> StoreResult<Result<(), LeaseOwner>> {
    let key = lease_key(ma);
    let mut txn = store.begin()?;
    if let Some(text) = txn.meta(&key)?
        && let Ok(owner) = serde_json::from_str::<LeaseOwner>(&text)
        && !owner.is_me()
        && owner.is_alive()
    {
        return Ok(Err(owner));
    }
    let me = serde_json::to_string(&LeaseOwner::me(0)).unwrap_or_default();
    txn.set_meta(&key, Some(&me))?;
    txn.commit()?;
    Ok(Ok(()))
}

/// Records the run holding this process's lease of `ma`.
pub(crate) fn record_run(store: &dyn Store, ma: &str, run_id: RunId) -> StoreResult<()> {
    let me = serde_json::to_string(&LeaseOwner::me(run_id)).unwrap_or_default();
    let mut txn = store.begin()?;
    txn.set_meta(&lease_key(ma), Some(&me))?;
    txn.commit()
}

/// Releases this process's lease of `ma` (another's is left alone).
pub(crate) fn release(store: &dyn Store, ma: &str) -> StoreResult<()> {
    let key = lease_key(ma);
    let mut txn = store.begin()?;
    let ours = txn
        .meta(&key)?
        .and_then(|t| serde_json::from_str::<LeaseOwner>(&t).ok())
        .is_some_and(|o| o.is_me());
    if ours {
        txn.set_meta(&key, None)?;
    }
    txn.commit()
}

/// The meta key of the sync lease (no MA's lease key, `lease:<ma>`, can be
/// it).
pub const SYNC_LEASE_KEY: &str = "sync-lease";

/// Who holds the sync lease: the MA whose sync step runs, in which process
/// and run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncHolder {
    pub ma: String,
    #[serde(flatten)]
    pub owner: LeaseOwner,
}

impl std::fmt::Display for SyncHolder {
    /// `the sync of `hr` in process 1234 (run 17)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the sync of `{}` in process {} (run {})",
            self.ma, self.owner.pid, self.owner.run_id
        )
    }
}

/// The sync lease's holder in `read`, when it is another process that
/// still runs the run that took it.
fn live_sync_holder(read: &mut dyn StoreRead) -> StoreResult<Option<SyncHolder>> {
    let Some(holder) = read
        .meta(SYNC_LEASE_KEY)?
        .and_then(|t| serde_json::from_str::<SyncHolder>(&t).ok())
    else {
        return Ok(None);
    };
    if holder.owner.is_me() || !holder.owner.is_alive() {
        return Ok(None);
    }
    // A process that lives on (a service) but whose run ended without
    // releasing the lease (the store failed then) holds nothing.
    let run_going_on = holder.owner.run_id == 0
        || read
            .run_get(holder.owner.run_id)?
            .is_some_and(|r| r.status == RunStatus::InProgress);
    Ok(run_going_on.then_some(holder))
}

/// The live holder of the sync lease in another process, if any.
pub fn sync_holder(store: &dyn Store) -> StoreResult<Option<SyncHolder>> {
    live_sync_holder(&mut *store.read()?)
}

/// Takes the sync lease for the sync of `ma` in run `run_id`, unless
/// another process's sync holds it (then returns who).
pub(crate) fn acquire_sync(
    store: &dyn Store,
    ma: &str,
    run_id: RunId,
) -> StoreResult<Result<(), SyncHolder>> {
    let mut txn = store.begin()?;
    if let Some(holder) = live_sync_holder(txn.as_mut())? {
        return Ok(Err(holder));
    }
    let me = SyncHolder {
        ma: ma.to_owned(),
        owner: LeaseOwner::me(run_id),
    };
    let text = serde_json::to_string(&me).unwrap_or_default();
    txn.set_meta(SYNC_LEASE_KEY, Some(&text))?;
    txn.commit()?;
    Ok(Ok(()))
}

/// Releases this process's sync lease (another's is left alone).
pub(crate) fn release_sync(store: &dyn Store) -> StoreResult<()> {
    let mut txn = store.begin()?;
    let ours = txn
        .meta(SYNC_LEASE_KEY)?
        .and_then(|t| serde_json::from_str::<SyncHolder>(&t).ok())
        .is_some_and(|h| h.owner.is_me());
    if ours {
        txn.set_meta(SYNC_LEASE_KEY, None)?;
    }
    txn.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_should_be_alive_and_a_dead_pid_should_not() {
        let me = LeaseOwner::me(3);
        assert!(me.is_alive());
        assert!(me.started > 0, "no start time read from /proc");
        let recycled = LeaseOwner {
            started: me.started + 1,
            ..me.clone()
        };
        assert!(!recycled.is_alive(), "a recycled pid must not keep a lease");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = LeaseOwner {
            pid,
            started: 1,
            run_id: 0,
        };
        assert!(!gone.is_alive());
    }
}
