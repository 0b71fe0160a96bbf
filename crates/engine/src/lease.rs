//! Which process runs a profile of an MA, across processes that share a
//! store (the service and `autosync run-profile`, say): a lease in the
//! store's meta table, `lease:<ma>`, taken in a write transaction (so two
//! processes cannot both take it) and released when the run ends. A lease
//! whose process is gone (a crash, a SIGKILL) is taken over: the process is
//! identified by its pid *and* its start time, so a recycled pid does not
//! keep a dead lease alive.

use autosync_model::RunId;
use autosync_store::{Store, StoreResult};
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

    fn is_me(&self) -> bool {
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
