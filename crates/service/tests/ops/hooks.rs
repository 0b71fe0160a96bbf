//! Controller hooks: a before hook skipping a profile, an after hook
//! stopping its MA over a custom threshold, and one ending the service.

use crate::support::*;
use autosync_service::{MaStateView, status_from_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_before_hook_skips_the_profile_it_names_and_lets_others_run() {
    let dir = converged_quickstart().await;
    edit_config(dir.path(), |t| {
        target_controller(
            &t,
            "app",
            r#"hooks = { before = 'if profile == "full-import" { #{ skip: true, reason: "no full imports here" } }' }"#,
        )
    });
    let svc = Running::start(dir.path());
    let before = svc.runs(Some("app")).len();
    svc.queue("app", "full-import").await.unwrap();
    svc.wait_quiet("the skipped request handled").await;
    assert_eq!(
        svc.runs(Some("app")).len(),
        before,
        "the skipped profile ran"
    );
    svc.queue("app", "delta-import").await.unwrap();
    svc.wait_quiet("the delta import ran").await;
    let app = svc.runs(Some("app"));
    assert_eq!(app.len(), before + 1);
    assert_eq!(app.last().unwrap().profile, "delta-import");
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_after_hook_stops_its_ma_when_a_counter_exceeds_its_limit() {
    let dir = quickstart();
    edit_config(dir.path(), |t| {
        target_controller(
            &t,
            "app",
            r#"hooks = { after = 'let e = run.steps.filter(|s| s.type == "export"); if e.len() > 0 && e[0].counters.adds > 5 { #{ action: "stop-ma", reason: "too many adds" } }' }"#,
        )
    });
    let (service, store) = service(dir.path());
    let summary = service.run(true).await.unwrap();
    let app: Vec<&str> = summary
        .runs
        .iter()
        .filter(|r| r.ma == "app")
        .map(|r| r.profile.as_str())
        .collect();
    assert_eq!(
        app,
        vec!["export"],
        "the confirming import waits: app is stopped"
    );
    assert!(
        summary
            .runs
            .iter()
            .any(|r| r.ma == "directory" && r.profile == "delta-import"),
        "the other target carried on"
    );
    assert!(summary.queued >= 1);
    let (_, config) = build(dir.path(), &store);
    let status = status_from_store(store.as_ref(), &config).unwrap();
    assert_eq!(status.mas["app"].state, MaStateView::Stopped);
    assert_eq!(status.mas["app"].queue[0].profile, "delta-import");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_after_hook_can_end_the_service() {
    let dir = converged_quickstart().await;
    edit_config(dir.path(), |t| {
        hr_controller(
            &t,
            r#"triggers = []
hooks = { after = 'if run.profile == "full-import" { "stop-service" }' }"#,
        )
    });
    let mut svc = Running::start(dir.path());
    svc.queue("hr", "delta-import").await.unwrap();
    svc.wait_quiet("the delta import ran").await;
    assert!(!svc.handle.as_ref().unwrap().is_finished());
    svc.queue("hr", "full-import").await.unwrap();
    let handle = svc.handle.take().unwrap();
    let summary = tokio::time::timeout(EVENT_TIMEOUT, handle)
        .await
        .expect("the after hook did not end the service")
        .unwrap()
        .unwrap();
    assert!(
        summary
            .runs
            .iter()
            .any(|r| r.ma == "hr" && r.profile == "full-import")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_before_hook_lets_the_run_go_ahead_and_is_notified() {
    let dir = converged_quickstart().await;
    let hook = WebhookSink::start();
    edit_config(dir.path(), |t| {
        let t = target_controller(
            &t,
            "app",
            r#"hooks = { before = 'if profile == "full-import" { throw "broken hook" }' }"#,
        );
        global_controller(&t, &webhook_section(&hook.url))
    });
    let svc = Running::start(dir.path());
    let before = svc.runs(Some("app")).len();
    svc.queue("app", "full-import").await.unwrap();
    svc.wait_quiet("the run went ahead").await;
    let app = svc.runs(Some("app"));
    assert_eq!(app.len(), before + 1);
    assert_eq!(app.last().unwrap().profile, "full-import");
    let sent = hook.wait_events("trigger-error", 1).await;
    assert_eq!(sent[0]["ma"], "app");
    let message = sent[0]["message"].as_str().unwrap();
    assert!(message.contains("broken hook"), "{message}");
    svc.shutdown().await;
}
