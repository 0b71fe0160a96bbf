//! A sync step's turn: only one synchronisation step runs at a time in the
//! whole engine. Inside one process the engine's `sync_lock` orders them;
//! across processes that share a store (the service, `autosync run-profile`
//! from a shell) the sync lease does ([`crate::lease::SYNC_LEASE_KEY`]).
//!
//! A sync step that finds another process's sync running *waits* for it:
//! it reads the lease again after a short, growing pause (up to
//! [`MAX_POLL`]), says once per holder who it waits for (an INFO log line
//! and [`ProgressSink::waiting`](crate::ProgressSink::waiting)), and takes
//! the lease as soon as that sync ends, or its holder is gone (a process
//! of this host that ended, by a crash or a SIGKILL, at once; any other
//! once its heartbeat lapsed: the lease is taken over). There is no bound
//! on the wait: a
//! sync ends, a dead holder is seen at the next read, and the waiting run
//! can be cancelled (its cancel flag is read at every pause: the service's
//! `autosync cancel`, or Ctrl-C from a shell).

use crate::Engine;
use crate::lease::{self, SyncHolder};
use crate::options::RunOptions;
use autosync_model::{RunId, StepType};
use autosync_store::StoreResult;
use std::sync::MutexGuard;
use std::time::Duration;

/// The first pause between two reads of the lease.
const FIRST_POLL: Duration = Duration::from_millis(10);
/// The longest pause: how late a waiting sync may start after the one it
/// waits for ended, and how late it sees its cancel flag.
pub(crate) const MAX_POLL: Duration = Duration::from_millis(200);

/// This process's turn to sync: the in-process lock and the store's sync
/// lease, both released when it is dropped (the step ended, failed or was
/// cancelled).
pub(crate) struct SyncTurn<'a> {
    engine: &'a Engine,
    _in_process: MutexGuard<'a, ()>,
}

impl Drop for SyncTurn<'_> {
    fn drop(&mut self) {
        if let Err(e) = lease::release_sync(&self.engine.leases) {
            tracing::warn!(
                "cannot release the sync lease (the next sync takes it over once this run has ended): {e}"
            );
        }
    }
}

/// Waits for the turn of the sync of `ma` in run `run_id` (step `index`,
/// `step`): `Ok(None)` when the run was cancelled while it waited (a run
/// cancelled before gets its turn at once when nobody holds it, and its
/// step stops as any cancelled step does).
pub(crate) fn take<'a>(
    engine: &'a Engine,
    ma: &str,
    run_id: RunId,
    opts: &RunOptions,
    index: usize,
    step: StepType,
) -> StoreResult<Option<SyncTurn<'a>>> {
    let in_process = engine.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
    let leases = &engine.leases;
    let mut pause = FIRST_POLL;
    let mut told: Option<SyncHolder> = None;
    loop {
        // Read first, write only to take a free lease: a read never waits
        // for the holder's write transactions; a write would.
        let holder = match lease::sync_holder(leases)? {
            Some(holder) => holder,
            None => match lease::acquire_sync(leases, ma, run_id)? {
                Ok(()) => {
                    let cancel = opts.cancel.clone();
                    leases.on_lost(lease::SYNC_LEASE_KEY, Box::new(move || cancel.cancel()));
                    if let Some(holder) = told {
                        tracing::info!(
                            holder_ma = %holder.ma,
                            pid = holder.owner.holder.pid,
                            holder_run_id = holder.owner.run_id,
                            "{holder} has ended; this sync starts"
                        );
                    }
                    return Ok(Some(SyncTurn {
                        engine,
                        _in_process: in_process,
                    }));
                }
                Err(holder) => holder,
            },
        };
        if !told.as_ref().is_some_and(|t| t.is_same_sync(&holder)) {
            tracing::info!(
                holder_ma = %holder.ma,
                pid = holder.owner.holder.pid,
                holder_run_id = holder.owner.run_id,
                "waiting for {holder}"
            );
            if let Some(p) = &opts.progress {
                p.waiting(index, step, &format!("waiting for {holder}"));
            }
            told = Some(holder);
            pause = FIRST_POLL;
        }
        if opts.cancel.is_cancelled() {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL);
    }
}
