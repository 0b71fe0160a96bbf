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
//!
//! The lease of `autosync run` also watches the store file the service
//! opened (`StoreWatch`): SQLite goes on writing into a file deleted,
//! moved away or replaced under it, which nobody will open again. The
//! service looks with every heartbeat of the lease, when a run starts,
//! and (reading the whole store) when a run ended with an error naming
//! the store; it stops on a file that is gone, another one, or damaged,
//! and saves what it holds first (`Service::run`). The lease is taken
//! before the service is made, by whoever made the store, and hands the
//! watch to it (`Service::watch_store_file`).

use autosync_store::StoreError;
use autosync_store::lease::{Claim, Leases};
use autosync_store::sqlite::{FileState, StoreFileWatch};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
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
    /// The store file's watch (`autosync run` only), handed to the
    /// service with [`crate::Service::watch_store_file`].
    watch: Option<Arc<StoreWatch>>,
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
                Ok(()) => {
                    let watch = (command == "run")
                        .then(|| StoreWatch::start(&leases, store))
                        .flatten();
                    return Ok(ServiceLease { leases, watch });
                }
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

    /// The store file's watch, for the service that runs under it.
    pub(crate) fn store_watch(&self) -> Option<Arc<StoreWatch>> {
        self.watch.clone()
    }

    /// Whether the lease was found taken over.
    pub fn is_lost(&self) -> bool {
        self.leases.lost(SERVICE_LEASE_KEY)
    }

    /// For a service whose lease was lost: what is wrong with its store
    /// file, if anything, as the message the service ends with (the whole
    /// store read). A store overwritten in place by a copy holds the
    /// copy's lease, not this process's: the lease looks taken over, and
    /// the file, not another process, is the cause.
    pub fn store_problem(&self) -> Option<String> {
        let watch = self.watch.as_ref()?;
        let state = match watch.found() {
            Some(state) => state,
            None => match watch.file.check() {
                FileState::Same => return None,
                state => state,
            },
        };
        Some(watch.conclude(&state))
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

/// Deep checks (the whole store read) come at most this often.
const DEEP_EVERY: Duration = Duration::from_secs(60);

/// A service's watch on its store file (see the module's documentation):
/// what it found, and the means to save what the process holds.
#[derive(Debug)]
pub(crate) struct StoreWatch {
    /// The path as messages show it (as the store's own errors name it).
    shown: String,
    file: StoreFileWatch,
    /// How often the service looks: the lease's heartbeat.
    every: Duration,
    found: Mutex<Option<FileState>>,
    last_deep: Mutex<Option<Instant>>,
}

impl StoreWatch {
    /// Watches the file of the store `leases` are on, at `path` (shown so
    /// in messages); `None`, said, when it cannot.
    fn start(leases: &Leases, path: &str) -> Option<Arc<StoreWatch>> {
        let identity = leases.store().store_file()?;
        let file = match StoreFileWatch::open(Path::new(path), identity) {
            Ok(Some(file)) => file,
            Ok(None) => {
                tracing::warn!(store = %path, "the store file is not watched: its path names another file than the one opened (a file deleted or replaced under the service is not noticed)");
                return None;
            }
            Err(e) => {
                tracing::warn!(store = %path, "the store file is not watched (a file deleted or replaced under the service is not noticed): {e}");
                return None;
            }
        };
        let watch = Arc::new(StoreWatch {
            shown: path.to_owned(),
            file,
            every: leases.timing().renew_every,
            found: Mutex::new(None),
            last_deep: Mutex::new(None),
        });
        Some(watch)
    }

    /// How often to look.
    pub(crate) fn every(&self) -> Duration {
        self.every
    }

    /// The store file's path as messages show it.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether `message` (a run's) is an error of this store that may
    /// tell of a damaged file.
    pub(crate) fn names_store(&self, message: &str) -> bool {
        message.contains(&self.shown) && StoreFileWatch::may_tell_of_damage(message)
    }

    /// Looks at the file (`deep`: reads the whole store too, at most once
    /// a minute); what is wrong with it, also kept for
    /// [`StoreWatch::found`].
    pub(crate) fn look(&self, deep: bool) -> Option<FileState> {
        let deep = deep && {
            let mut last = self.last_deep.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= DEEP_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        let state = if deep {
            self.file.check()
        } else {
            self.file.look()
        };
        if state == FileState::Same {
            return None;
        }
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        Some(found.get_or_insert(state).clone())
    }

    /// What was found wrong with the file, if anything.
    pub(crate) fn found(&self) -> Option<FileState> {
        self.found.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What was seen, in a few words.
    pub(crate) fn seen(state: &FileState) -> String {
        match state {
            FileState::Same => "unchanged".into(),
            FileState::Missing => "deleted or moved away".into(),
            FileState::Replaced => "replaced by another file".into(),
            FileState::Damaged(what) => format!("damaged ({what})"),
        }
    }

    /// For a service that stopped on `state`: saves what the process holds
    /// when the file is gone or replaced ([`StoreFileWatch::save_copy`]),
    /// and says what happened and what to do (the ERROR the service ends
    /// with). After the service's last write.
    pub(crate) fn conclude(&self, state: &FileState) -> String {
        const RESTORE: &str = "docs/src/operations/backup-and-restore.md#restore";
        let path = &self.shown;
        let seen = Self::seen(state);
        if let FileState::Damaged(_) = state {
            return format!(
                "the store file {path} is {seen}: the service stopped; restore the store from a backup (see {RESTORE})"
            );
        }
        let what = format!("the store file {path} was {seen} while the service ran");
        match self.file.save_copy(chrono::Utc::now()) {
            Ok(copy) if copy.in_place => format!(
                "{what}: the service stopped and saved what it held (every change until it stopped) at {path} again; the next start goes on from it"
            ),
            Ok(copy) if *state == FileState::Missing => format!(
                "{what}: the service stopped and saved what it held (every change until it stopped) as {}; move it to {path}, then start the service",
                copy.at.display()
            ),
            Ok(copy) => format!(
                "{what}: the service stopped, left the file now at {path} as it is, and saved what it held (every change until it stopped) as {}; to go on from that copy, move {path} aside and the copy to {path}, then start the service (see {RESTORE}); to go on from the file now there, start the service",
                copy.at.display()
            ),
            Err(e) => format!(
                "{what}: the service stopped, but could not save what it held ({e}); restore the store from a backup (see {RESTORE})"
            ),
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
