//! One service per store: `autosync run` holds the store's service lease
//! ([`SERVICE_LEASE_KEY`], a [`autosync_store::lease`] with this process's
//! instance id and a heartbeat) for its whole life, so a second service,
//! on this host or another sharing the store, is refused. `autosync queue`
//! takes it for the moment it writes the persisted queue, so no service
//! overwrites a request queued behind its back.
//!
//! A service that ends however it ends frees it: released when it stops,
//! taken over at once when its process is gone (this host), or once its
//! heartbeat lapsed (another host). A service that finds its lease taken
//! over (it was frozen past the time to live) is told and stops.

use autosync_store::StoreError;
use autosync_store::lease::{Claim, Leases};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// The meta key of the service lease.
pub const SERVICE_LEASE_KEY: &str = "service-lease";

/// How often a waiting take looks again.
const POLL: Duration = Duration::from_millis(100);

/// Why the service lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ServiceLeaseError {
    /// Another live instance holds it.
    #[error(
        "another autosync service runs on the store {store} ({holder}): one service per store; stop it first"
    )]
    Held {
        store: String,
        /// Who: `autosync run, process 1234 on host-b, since ...`.
        holder: String,
    },
    #[error("cannot take the service lease of the store: {0}")]
    Store(StoreError),
}

/// Not `#[from]`: the message carries the store's, so the error has no
/// `source` and a chain printed with `{:#}` says it once.
impl From<StoreError> for ServiceLeaseError {
    fn from(e: StoreError) -> Self {
        ServiceLeaseError::Store(e)
    }
}

/// The service lease, held until dropped (then released).
#[derive(Debug)]
pub struct ServiceLease {
    leases: Leases,
}

impl ServiceLease {
    /// Takes the service lease of the store `leases` are on (named `store`
    /// in messages) for `command` (`run`, `queue`), waiting up to `wait`
    /// for a holder to let it go (a command that holds it briefly).
    pub fn take(
        leases: Leases,
        store: &str,
        command: &str,
        wait: Duration,
    ) -> Result<ServiceLease, ServiceLeaseError> {
        let deadline = Instant::now() + wait;
        let mut fields = Map::new();
        fields.insert("command".into(), Value::from(command));
        fields.insert("since".into(), Value::from(chrono::Utc::now().to_rfc3339()));
        loop {
            match leases.acquire(SERVICE_LEASE_KEY, &fields, &mut |_| Ok(true))? {
                Ok(()) => return Ok(ServiceLease { leases }),
                Err(claim) if Instant::now() >= deadline => {
                    return Err(ServiceLeaseError::Held {
                        store: store.to_owned(),
                        holder: describe(&leases, &claim),
                    });
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// Calls `f` if the lease is found taken over while held.
    pub fn when_lost(&self, f: Box<dyn FnOnce() + Send>) {
        self.leases.on_lost(SERVICE_LEASE_KEY, f);
    }

    /// Whether the lease was found taken over.
    pub fn is_lost(&self) -> bool {
        self.leases.lost(SERVICE_LEASE_KEY)
    }
}

impl Drop for ServiceLease {
    fn drop(&mut self) {
        if let Err(e) = self.leases.release(SERVICE_LEASE_KEY) {
            tracing::warn!(
                "cannot release the store's service lease (the next service takes it over once this process has ended): {e}"
            );
        }
    }
}

/// The service that runs on the store `leases` are on, whether or not it
/// serves its API: a live `autosync run` holding the service lease, as
/// `autosync run, process 1234 on host-b, since ...`; `None` when none
/// does (`autosync queue`, which holds it a moment without a service, is
/// no service). What every command asks to tell a service that runs
/// without its API (`--no-api`) from no service.
pub fn running_service(leases: &Leases) -> Result<Option<String>, StoreError> {
    let Some(claim) = leases.live_holder(SERVICE_LEASE_KEY)? else {
        return Ok(None);
    };
    if claim.value["command"]
        .as_str()
        .is_some_and(|command| command != "run")
    {
        return Ok(None);
    }
    Ok(Some(describe(leases, &claim)))
}

/// `autosync run, process 1234 on host-b, since 2025-06-01T12:00:00+00:00`.
fn describe(leases: &Leases, claim: &Claim) -> String {
    let mut parts = Vec::new();
    if let Some(command) = claim.value["command"].as_str() {
        parts.push(format!("autosync {command}"));
    }
    if let Some(h) = &claim.holder {
        parts.push(h.describe(leases.instance()));
    }
    if let Some(since) = claim.value["since"].as_str() {
        parts.push(format!("since {since}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use autosync_store::Store;
    use autosync_store::lease::{Instance, LeaseTiming};
    use autosync_store::sqlite::SqliteStore;
    use std::sync::Arc;

    fn leases(path: &std::path::Path, instance: Instance) -> Leases {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path).unwrap());
        Leases::new(store, instance, LeaseTiming::default())
    }

    #[test]
    fn a_second_service_should_be_refused_on_this_host_and_from_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let first = ServiceLease::take(
            leases(&path, Instance::fresh()),
            "store.db",
            "run",
            Duration::ZERO,
        )
        .unwrap();
        for second in [Instance::fresh(), Instance::elsewhere("node-b", 1)] {
            let err =
                ServiceLease::take(leases(&path, second), "store.db", "run", POLL).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(
                    "another autosync service runs on the store store.db (autosync run, process "
                ),
                "{text}"
            );
            assert!(text.contains(", since "), "{text}");
        }
        // What the commands see of it, from this host and another.
        for looker in [Instance::fresh(), Instance::elsewhere("node-b", 1)] {
            let seen = running_service(&leases(&path, looker)).unwrap().unwrap();
            assert!(seen.starts_with("autosync run, process "), "{seen}");
        }
        // Released when dropped: the next one takes it.
        drop(first);
        assert_eq!(
            running_service(&leases(&path, Instance::fresh())).unwrap(),
            None
        );
        let again = ServiceLease::take(
            leases(&path, Instance::elsewhere("node-b", 1)),
            "store.db",
            "run",
            Duration::ZERO,
        )
        .unwrap();
        assert!(!again.is_lost());
    }

    #[test]
    fn a_take_should_wait_for_a_holder_that_lets_go_within_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let queue = ServiceLease::take(
            leases(&path, Instance::fresh()),
            "store.db",
            "queue",
            Duration::ZERO,
        )
        .unwrap();
        let (taking_tx, taking) = std::sync::mpsc::channel();
        let looked = path.clone();
        let waiter = std::thread::spawn(move || {
            taking_tx.send(()).unwrap();
            ServiceLease::take(
                leases(&path, Instance::fresh()),
                "store.db",
                "run",
                Duration::from_secs(30),
            )
        });
        taking.recv().unwrap();
        // A queue holding it a moment is no service.
        assert_eq!(
            running_service(&leases(&looked, Instance::fresh())).unwrap(),
            None
        );
        drop(queue);
        waiter.join().unwrap().unwrap();
    }
}
