//! What a dashboard shows per MA. The running service answers from the
//! machine's memory ([`autosync_controller::Machine::status`]); without a
//! service, [`status_from_store`] reads the persisted state. Both decide
//! each MA's state with the machine's one precedence
//! ([`autosync_controller::machine::state_view`]).

use crate::config::ControllerConfig;
use crate::persist::{self, PersistError};
use autosync_controller::QueuedRequest;
pub use autosync_controller::machine::{MaStateView, MaStatus, Status};
use autosync_controller::machine::{StateFacts, state_view};
use autosync_store::Store;
use std::collections::BTreeMap;

/// The status read from the store when no service runs.
pub fn status_from_store(
    store: &dyn Store,
    config: &ControllerConfig,
) -> Result<Status, PersistError> {
    let mas = config
        .mas
        .iter()
        .map(|(name, ma)| {
            let settings = Settings {
                enabled: ma.enabled,
                auto_start: ma.auto_start,
            };
            (name.clone(), settings)
        })
        .collect();
    from_store(store, persist::load(store)?, mas)
}

/// How many recent runs [`status_from_store_alone`] reads to find MAs.
const RECENT_RUNS: usize = 1000;

/// The status read from the store when no service runs and the
/// configuration does not load: the MAs are those the store knows (the
/// controller's persisted state, the recent run history), each shown as
/// enabled and auto-started (those settings are in the configuration;
/// an operator's start or stop, kept in the store, still shows).
pub fn status_from_store_alone(store: &dyn Store) -> Result<Status, PersistError> {
    let state = persist::load(store)?;
    let mut names: std::collections::BTreeSet<String> = state
        .queues
        .iter()
        .map(|(ma, _)| ma.to_owned())
        .chain(state.mas.keys().cloned())
        .chain(state.triggers.keys().cloned())
        .collect();
    let recent = store.read()?.runs(None, RECENT_RUNS)?;
    names.extend(recent.into_iter().map(|r| r.ma));
    let settings = || Settings {
        enabled: true,
        auto_start: true,
    };
    let mas = names.into_iter().map(|n| (n, settings())).collect();
    from_store(store, state, mas)
}

/// What the store's status needs of an MA's configuration.
struct Settings {
    enabled: bool,
    auto_start: bool,
}

fn from_store(
    store: &dyn Store,
    state: persist::PersistedState,
    configured: BTreeMap<String, Settings>,
) -> Result<Status, PersistError> {
    let mut read = store.read()?;
    let mut mas = BTreeMap::new();
    for (name, ma) in &configured {
        let queue: Vec<QueuedRequest> = state
            .queues
            .get(name)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        let control = state.mas.get(name);
        // What a threshold stopped and the store records: the persisted
        // state knows only the service's own runs, not an import or an
        // export run from a shell.
        let threshold_stop = match autosync_engine::thresholds::staging_hold(store, name)? {
            Some(h) => Some((
                h.run_id,
                format!("an import went over a staging threshold: {}", h.summary()),
            )),
            None => autosync_engine::thresholds::deletion_stop_waiting(store, name)?
                .map(|d| (d.run_id, d.summary())),
        };
        // A hold the saved state still has but the store no longer does
        // was settled without the service (`approve` or `reject`): it is
        // gone, as the service's start will find.
        let settled;
        let control = match (control, &threshold_stop) {
            (Some(c), None) if c.threshold.is_some() => {
                settled = autosync_controller::machine::MaControl {
                    threshold: None,
                    ..c.clone()
                };
                Some(&settled)
            }
            (c, _) => c,
        };
        let state_view = state_view(StateFacts {
            running: None,
            enabled: ma.enabled,
            control,
            started: control.and_then(|c| c.started).unwrap_or(ma.auto_start),
            queued: !queue.is_empty(),
            maintenance: state.maintenance.is_some(),
            waiting: None,
            next_retry: None,
            service: false,
            threshold_stop: threshold_stop
                .as_ref()
                .map(|(run, what)| (*run, what.as_str())),
        });
        let last_run = read.runs(Some(name), 1)?.into_iter().next();
        mas.insert(
            name.clone(),
            MaStatus {
                state: state_view,
                queue,
                paused: control.is_some_and(|c| c.paused),
                deferred: control.map(|c| c.deferred.clone()).unwrap_or_default(),
                last_run,
                full_sync_needed: None,
                objects_with_errors: 0,
                pending_exports: 0,
                // The service's memory: none without a service.
                trigger_errors: Vec::new(),
            },
        );
    }
    drop(read);
    let mut status = Status {
        service: false,
        stopping: false,
        maintenance: state.maintenance.clone(),
        mas,
    };
    count_errors(store, &mut status);
    Ok(status)
}

/// Fills each MA's `objects_with_errors` and `pending_exports` from the
/// store (an index count each); a store that cannot say leaves them at 0,
/// the rest of the status is still shown.
pub fn count_errors(store: &dyn Store, status: &mut Status) {
    let Ok(mut read) = store.read() else {
        return;
    };
    for (name, ma) in status.mas.iter_mut() {
        match read.cs_count(name, autosync_store::CsFilter::Errors) {
            Ok(n) => ma.objects_with_errors = n,
            Err(e) => tracing::debug!(ma = %name, "cannot count the objects with errors: {e}"),
        }
        match read.cs_count(name, autosync_store::CsFilter::PendingExport) {
            Ok(n) => ma.pending_exports = n,
            Err(e) => tracing::debug!(ma = %name, "cannot count the pending exports: {e}"),
        }
    }
}
