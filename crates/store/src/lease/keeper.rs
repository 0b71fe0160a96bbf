//! The keeper: one thread per [`Leases`] that renews the leases it holds,
//! each every [`LeaseTiming::renew_every`](super::LeaseTiming), and says
//! when one was taken over. It waits on a condition variable (no polling)
//! and holds the leases only weakly: dropping the last [`Leases`] stops it.
//!
//! A renewal is a short write transaction of its own. It may wait for the
//! store (a bulk transaction of this process holds the writer for a few
//! batches; another process's transaction, up to the busy timeout), never
//! for the work the lease guards; a failed renewal is tried again after
//! [`RETRY`] (at most `renew_every`), well within the time to live.

use super::{Inner, Leases};
use crate::api::StoreResult;
use autosync_model::repeated::{Repeated, Say};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How soon a renewal that failed is tried again.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct Keeper {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    held: BTreeMap<String, Held>,
    /// Leases found taken over (until taken again).
    lost: BTreeSet<String>,
    stopped: bool,
    running: bool,
    generation: u64,
}

struct Held {
    /// Which take this is (a renewal of an earlier take, finishing late,
    /// must not touch it).
    generation: u64,
    due: Instant,
    on_lost: Vec<Box<dyn FnOnce() + Send>>,
    /// Renewals failed since the last that worked (logged once a minute).
    failing: Repeated,
}

impl Keeper {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts renewing `key` after `every`; `true` when the thread must be
    /// started.
    pub(super) fn keep(&self, key: &str, every: Duration) -> bool {
        let mut st = self.state();
        st.generation += 1;
        let held = Held {
            generation: st.generation,
            due: Instant::now() + every,
            on_lost: Vec::new(),
            failing: Repeated::default(),
        };
        st.held.insert(key.to_owned(), held);
        st.lost.remove(key);
        self.wake.notify_all();
        !std::mem::replace(&mut st.running, true)
    }

    pub(super) fn forget(&self, key: &str) {
        self.state().held.remove(key);
    }

    pub(super) fn on_lost(&self, key: &str, f: Box<dyn FnOnce() + Send>) {
        let mut st = self.state();
        if let Some(h) = st.held.get_mut(key) {
            h.on_lost.push(f);
        } else if st.lost.contains(key) {
            drop(st);
            f();
        }
    }

    pub(super) fn was_lost(&self, key: &str) -> bool {
        self.state().lost.contains(key)
    }

    pub(super) fn stop(&self) {
        self.state().stopped = true;
        self.wake.notify_all();
    }

    /// Waits until a lease is due; `false` once stopped.
    fn wait_until_due(&self) -> bool {
        let mut st = self.state();
        loop {
            if st.stopped {
                return false;
            }
            let now = Instant::now();
            st = match st.held.values().map(|h| h.due).min() {
                Some(due) if due <= now => return true,
                Some(due) => {
                    self.wake
                        .wait_timeout(st, due - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.wake.wait(st).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

/// Starts the keeper thread of `leases`.
pub(super) fn start(leases: &Leases) {
    let weak: Weak<Inner> = Arc::downgrade(&leases.inner);
    let keeper = Arc::clone(&leases.inner.keeper);
    let spawned = std::thread::Builder::new()
        .name("autosync-lease-keeper".into())
        .spawn(move || {
            while keeper.wait_until_due() {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                // Errors are logged per lease and tried again.
                let _ = renew_due(&Leases { inner }, false);
            }
        });
    if let Err(e) = spawned {
        leases.inner.keeper.state().running = false;
        tracing::error!(
            "cannot start the lease keeper thread (held leases lapse after their time to live): {e}"
        );
    }
}

/// Renews the leases that are due (`all`: every one held); the first
/// error, after trying every lease.
pub(super) fn renew_due(leases: &Leases, all: bool) -> StoreResult<()> {
    let keeper = &leases.inner.keeper;
    let every = leases.inner.timing.renew_every;
    let now = Instant::now();
    let due: Vec<(String, u64)> = keeper
        .state()
        .held
        .iter()
        .filter(|(_, h)| all || h.due <= now)
        .map(|(k, h)| (k.clone(), h.generation))
        .collect();
    let mut first_error = None;
    for (key, generation) in due {
        let renewed = leases.renew(&key);
        let mut st = keeper.state();
        let Some(held) = st.held.get_mut(&key).filter(|h| h.generation == generation) else {
            // Released (or taken again) meanwhile.
            continue;
        };
        match renewed {
            Ok(true) => {
                held.due = Instant::now() + every;
                if let Some((failures, over)) = held.failing.worked(Instant::now()) {
                    tracing::info!(
                        lease = %key,
                        "the lease was renewed again, after {failures} failed attempts over {} s",
                        over.as_secs()
                    );
                }
            }
            Ok(false) => {
                let callbacks = st.held.remove(&key).map(|h| h.on_lost).unwrap_or_default();
                st.lost.insert(key.clone());
                drop(st);
                let by = leases
                    .read(&key)
                    .ok()
                    .flatten()
                    .and_then(|c| c.holder)
                    .map(|h| h.describe(leases.instance()))
                    .unwrap_or_else(|| "nobody".into());
                if by == "nobody" {
                    // No holder at all: not another process's doing.
                    tracing::error!(
                        lease = %key,
                        "this process lost its lease `{key}`: the store no longer records it (held by nobody now): another process took it over while this one was frozen or cut off and has released it since (a `run --once`, a `run-profile`), or the store's content was replaced under this process (a copy put over its file?), or the lease was removed by hand"
                    );
                } else {
                    tracing::error!(
                        lease = %key,
                        "this process lost its lease `{key}`: it was taken over (now held by {by}); this process was frozen or cut off from the store longer than the lease's time to live"
                    );
                }
                for f in callbacks {
                    f();
                }
            }
            Err(e) => {
                held.due = Instant::now() + RETRY.min(every);
                let say = held.failing.failed(Instant::now());
                drop(st);
                match say {
                    Say::Log { failures: 1, .. } => tracing::warn!(
                        lease = %key,
                        "cannot renew the lease (tried again shortly): {e}"
                    ),
                    Say::Log { failures, for_ } => tracing::warn!(
                        lease = %key,
                        "cannot renew the lease (tried again shortly): {e} (still failing: {failures} attempts in {} s; logged once a minute)",
                        for_.as_secs()
                    ),
                    Say::Quiet => tracing::debug!(lease = %key, "cannot renew the lease: {e}"),
                }
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
