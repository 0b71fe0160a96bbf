//! A service that stops by itself tells an operator, once: its store file
//! deleted or replaced under it, or its service lease taken over by
//! another process, sends one `service-stopped` notice naming the cause
//! before the service ends; a stop an operator asked for sends none. The
//! service runs as `autosync run` makes it: under the store's service
//! lease, watching its store file, told of a lost lease.

use crate::support::*;
use autosync_service::service_lease::SERVICE_LEASE_KEY;
use autosync_service::{ServiceError, ServiceLease};
use autosync_store::lease::{Instance, LeaseTiming, Leases};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What `autosync run` says of a lost lease (its error and notice).
const LEASE_LOST: &str = "another process took over its lease on the store";

/// A service over the folder (notifying `hook`), run as `autosync run`
/// runs it; its store's path and its leases.
async fn start(dir: &Path, hook: &WebhookSink) -> (Running, PathBuf, Leases) {
    edit_config(dir, |t| global_controller(&t, &webhook_section(&hook.url)));
    let (mut service, store) = service(dir);
    let loaded = load(dir).unwrap();
    let path = loaded.system.base_dir.join(&loaded.system.store.path);
    let leases = Leases::new(store.clone(), Instance::current(), LeaseTiming::default());
    let lease = Arc::new(
        ServiceLease::take(
            leases.clone(),
            &path.display().to_string(),
            "run",
            Duration::ZERO,
        )
        .unwrap(),
    );
    service.watch_store_file(&lease);
    let held = lease.clone();
    service.stop_reason(Box::new(move || {
        held.is_lost().then(|| LEASE_LOST.to_owned())
    }));
    let stop = service.shutdown_token();
    let lost = stop.clone();
    lease.when_lost(Box::new(move || lost.cancel()));
    let svc = Running {
        commands: service.commands(),
        stop,
        store,
        handle: Some(tokio::spawn(service.run(false))),
        dir: dir.to_owned(),
    };
    svc.wait_quiet("start-up").await;
    (svc, path, leases)
}

/// Waits until the service ends by itself (nothing cancels it here).
async fn ended(mut svc: Running) -> Result<autosync_service::Summary, ServiceError> {
    let handle = svc.handle.take().unwrap();
    tokio::time::timeout(EVENT_TIMEOUT, handle)
        .await
        .expect("the service did not stop by itself")
        .unwrap()
}

/// The one `service-stopped` notice sent (all sent before the service
/// ended: the notifier delivers what it holds before it ends).
fn the_stop_notice(hook: &WebhookSink) -> serde_json::Value {
    let sent = hook.events("service-stopped");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    sent.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_deleted_under_the_service_should_be_notified_once_naming_the_file() {
    let dir = converged_quickstart().await;
    let hook = WebhookSink::start();
    let (svc, path, _leases) = start(dir.path(), &hook).await;

    std::fs::remove_file(&path).unwrap();
    // A change: the run it starts looks at the store file first.
    set_title(dir.path(), &first_active(dir.path()), "Keeper of Stores");
    let ended = ended(svc).await;

    let Err(ServiceError::StoreFile(error)) = ended else {
        panic!("{ended:?}")
    };
    let notice = the_stop_notice(&hook);
    let shown = path.display().to_string();
    let subject = notice["subject"].as_str().unwrap();
    assert_eq!(
        subject,
        format!(
            "[autosync] service stopped: the store file {shown} was deleted or moved away while the service ran"
        )
    );
    let message = notice["message"].as_str().unwrap();
    assert!(
        message.contains("saves what it held") && message.contains("the ERROR it ends its log"),
        "{message}"
    );
    // The ERROR it ended with says where the copy went.
    assert!(
        error.contains(&format!(
            "saved what it held (every change until it stopped) at {shown} again"
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_replaced_under_the_service_should_be_notified_once_naming_the_file() {
    let dir = converged_quickstart().await;
    let hook = WebhookSink::start();
    let (svc, path, _leases) = start(dir.path(), &hook).await;

    // A backup of the store, moved over it.
    let backup = dir.path().join("backup.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
        .unwrap();
    std::fs::rename(&backup, &path).unwrap();
    set_title(dir.path(), &first_active(dir.path()), "Keeper of Stores");
    let ended = ended(svc).await;

    assert!(
        matches!(ended, Err(ServiceError::StoreFile(_))),
        "{ended:?}"
    );
    let notice = the_stop_notice(&hook);
    let subject = notice["subject"].as_str().unwrap();
    assert_eq!(
        subject,
        format!(
            "[autosync] service stopped: the store file {} was replaced by another file while the service ran",
            path.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_lease_taken_over_should_be_notified_once() {
    let dir = converged_quickstart().await;
    let hook = WebhookSink::start();
    let (svc, _path, leases) = start(dir.path(), &hook).await;

    // Another process takes the lease over (this one was frozen past its
    // time to live); this one learns it at its next heartbeat, sent now.
    let other = Leases::new(
        svc.store.clone(),
        Instance::elsewhere("node-b", 4242),
        LeaseTiming::default(),
    );
    let claim = other.read(SERVICE_LEASE_KEY).unwrap();
    assert!(
        other
            .take(SERVICE_LEASE_KEY, claim.as_ref(), &serde_json::Map::new())
            .unwrap()
    );
    leases.renew_now().unwrap();
    let ended = ended(svc).await;

    assert!(ended.is_ok(), "the store file is fine: {ended:?}");
    let notice = the_stop_notice(&hook);
    assert_eq!(
        notice["subject"],
        format!("[autosync] service stopped: {LEASE_LOST}")
    );
    assert_eq!(notice["message"], LEASE_LOST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_an_operator_asked_for_should_not_be_notified() {
    let dir = converged_quickstart().await;
    let hook = WebhookSink::start();
    let (svc, _path, _leases) = start(dir.path(), &hook).await;

    svc.shutdown().await;

    assert_eq!(
        hook.events("service-stopped"),
        Vec::<serde_json::Value>::new()
    );
}
