//! Staging thresholds: over a threshold the MA's syncs are held (nothing
//! staged reaches the metaverse or the targets) and a notification goes
//! out; approve lets the staged changes flow, reject discards them and the
//! next import stages them again.

use crate::support::*;
use autosync_model::StepType;
use autosync_model::{RunReason, RunStatus};
use autosync_service::{Control, MaStateView};
use std::path::Path;

/// Removes `n` data lines of hr.csv; returns the active employees removed.
fn remove_rows(dir: &Path, n: usize) -> usize {
    let (header, lines) = hr_lines(dir);
    let active_before = hr_active(dir).len();
    write_hr(dir, &header, &lines[n..]);
    active_before - hr_active(dir).len()
}

/// A converged quickstart with `thresholds` on hr (no trigger: the test
/// queues the import) and a webhook.
async fn setup(thresholds: &str) -> (tempfile::TempDir, WebhookSink) {
    let dir = converged_quickstart().await;
    let hook = WebhookSink::start();
    edit_config(dir.path(), |t| {
        // The targets' export deletion thresholds are not what these tests
        // are about: an approved deletion goes all the way.
        let t = t.replace(
            "export_deletion_threshold = { count = 500, share = \"10%\" }",
            "export_deletion_threshold = \"off\"",
        );
        let t = t.replacen(
            QUICKSTART_STAGING,
            &format!("staging_thresholds = {thresholds}"),
            1,
        );
        let t = hr_controller(&t, "triggers = []");
        global_controller(&t, &webhook_section(&hook.url))
    });
    (dir, hook)
}

/// Runs of hr with a sync step after run `after`.
fn hr_syncs_after(svc: &Running, after: i64) -> usize {
    svc.runs(Some("hr"))
        .iter()
        .filter(|r| r.id > after && r.steps.iter().any(|s| s.step_type == StepType::DeltaSync))
        .count()
}

async fn trip(svc: &Running) -> (i64, Vec<String>) {
    svc.queue("hr", "delta-import").await.unwrap();
    let status = svc
        .wait("threshold exceeded", |s| {
            matches!(
                Running::state(s, "hr"),
                MaStateView::ThresholdExceeded { .. }
            ) && s
                .mas
                .values()
                .all(|m| !matches!(m.state, MaStateView::Running { .. }))
        })
        .await;
    let MaStateView::ThresholdExceeded {
        run_id,
        exceeded,
        held,
    } = Running::state(&status, "hr")
    else {
        unreachable!()
    };
    assert_eq!(
        held,
        vec!["delta-sync".to_owned()],
        "the follow-up sync is held"
    );
    (run_id, exceeded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_over_a_percentage_hold_the_sync_until_approved_then_flow() {
    let (dir, hook) = setup(r#"{ deletes = "10%" }"#).await;
    let app_before = app_ids(dir.path());
    let dir_before = directory_ids(dir.path());
    let removed_active = remove_rows(dir.path(), 100);
    assert!(removed_active > 0);
    let svc = Running::start(dir.path());
    let (run_id, exceeded) = trip(&svc).await;
    assert!(
        exceeded.iter().any(|e| e.contains("deletes")),
        "{exceeded:?}"
    );
    assert_eq!(hr_syncs_after(&svc, run_id), 0, "no sync ran");
    assert_eq!(app_ids(dir.path()), app_before, "app unchanged");
    assert_eq!(directory_ids(dir.path()), dir_before, "directory unchanged");
    let notified = hook.wait_events("threshold-exceeded", 1).await;
    assert_eq!(notified[0]["ma"], "hr");
    assert_eq!(notified[0]["run_id"], run_id);
    // A manual sync is refused while the threshold waits.
    let refused = svc.queue("hr", "delta-sync").await.unwrap_err();
    assert_eq!(refused.code, autosync_service::RefusalCode::HeldByThreshold);
    assert!(refused.message.contains("approve"), "{refused}");

    let answer = svc.control(Control::Approve, Some("hr")).await.unwrap();
    assert!(answer.contains("approved"), "{answer}");
    svc.wait("the approved changes flowed", |s| {
        quiet(s) && matches!(Running::state(s, "hr"), MaStateView::Idle)
    })
    .await;
    assert_eq!(app_ids(dir.path()), hr_active(dir.path()));
    assert_eq!(app_ids(dir.path()).len(), app_before.len() - removed_active);
    assert_eq!(directory_ids(dir.path()), hr_active(dir.path()));
    assert_eq!(hr_syncs_after(&svc, run_id), 1);
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_changes_are_discarded_and_the_next_import_stages_and_trips_again() {
    let (dir, hook) = setup(r#"{ deletes = "10%" }"#).await;
    let app_before = app_ids(dir.path());
    remove_rows(dir.path(), 100);
    let svc = Running::start(dir.path());
    let (first, _) = trip(&svc).await;
    let answer = svc.control(Control::Reject, Some("hr")).await.unwrap();
    assert!(answer.contains("rejected"), "{answer}");
    assert_eq!(hr_syncs_after(&svc, first), 0);
    assert_eq!(app_ids(dir.path()), app_before, "targets unchanged");

    // The source is read again at once (what the held import read is
    // gone): the deletes are staged again and trip again.
    let status = svc
        .wait("the source read again, over the threshold again", |s| {
            matches!(
                Running::state(s, "hr"),
                MaStateView::ThresholdExceeded { run_id, .. } if run_id > first
            ) && s
                .mas
                .values()
                .all(|m| !matches!(m.state, MaStateView::Running { .. }))
        })
        .await;
    let MaStateView::ThresholdExceeded { exceeded, .. } = Running::state(&status, "hr") else {
        unreachable!()
    };
    assert!(
        exceeded.iter().any(|e| e.contains("deletes")),
        "{exceeded:?}"
    );
    let (engine, _) = build(dir.path(), &svc.store);
    let cs = engine.cs_state("hr").unwrap();
    assert!(cs.pending_import >= 100, "{cs:?}");
    hook.wait_events("threshold-exceeded", 2).await;
    assert_eq!(app_ids(dir.path()), app_before);
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_threshold_trips_on_updates_and_a_small_change_passes() {
    let (dir, _hook) = setup("{ updates = 3 }").await;
    let active = hr_active(dir.path());
    let svc = Running::start(dir.path());
    // Two updates: under the threshold, they flow.
    for id in &active[..2] {
        set_title(dir.path(), id, "Small Change");
    }
    svc.queue("hr", "delta-import").await.unwrap();
    svc.wait_quiet("the small change flowed").await;
    let status = svc.status().await;
    assert!(
        matches!(Running::state(&status, "hr"), MaStateView::Idle),
        "{status:#?}"
    );
    assert!(app_titles(dir.path()).contains(&(active[0].clone(), "Small Change".into())));
    // Five updates: over.
    for id in &active[2..7] {
        set_title(dir.path(), id, "Big Change");
    }
    let (run_id, exceeded) = trip(&svc).await;
    assert!(
        exceeded.iter().any(|e| e.contains("updates")),
        "{exceeded:?}"
    );
    assert!(!app_titles(dir.path()).contains(&(active[2].clone(), "Big Change".into())));
    svc.control(Control::Approve, Some("hr")).await.unwrap();
    svc.wait("approved", |s| {
        quiet(s) && matches!(Running::state(s, "hr"), MaStateView::Idle)
    })
    .await;
    assert!(app_titles(dir.path()).contains(&(active[6].clone(), "Big Change".into())));
    // The sync that ran names the held follow-up of the tripping import.
    let sync = svc
        .runs(Some("hr"))
        .into_iter()
        .find(|r| r.id > run_id && r.profile == "delta-sync")
        .unwrap();
    assert!(
        matches!(&sync.reason, RunReason::FollowUp { run_id: r, .. } if *r == run_id),
        "{:?}",
        sync.reason
    );
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_waiting_for_an_operator_survives_a_restart() {
    let (dir, _hook) = setup(r#"{ deletes = "10%" }"#).await;
    let app_before = app_ids(dir.path());
    remove_rows(dir.path(), 100);
    let svc = Running::start(dir.path());
    let (run_id, _) = trip(&svc).await;
    svc.shutdown().await;

    let svc = Running::start(dir.path());
    let status = svc.status().await;
    match Running::state(&status, "hr") {
        MaStateView::ThresholdExceeded {
            run_id: r, held, ..
        } => {
            assert_eq!(r, run_id);
            assert_eq!(held, vec!["delta-sync".to_owned()]);
        }
        other => panic!("the threshold was forgotten: {other:?}"),
    }
    // Reconciliation at start must not sync what waits for the operator.
    svc.wait_quiet("start-up").await;
    assert_eq!(hr_syncs_after(&svc, run_id), 0);
    assert_eq!(app_ids(dir.path()), app_before);
    svc.control(Control::Approve, Some("hr")).await.unwrap();
    svc.wait("approved after the restart", |s| {
        quiet(s) && matches!(Running::state(s, "hr"), MaStateView::Idle)
    })
    .await;
    assert_eq!(app_ids(dir.path()), hr_active(dir.path()));
    svc.shutdown().await;
}

/// While a staging threshold waits for an operator, an import that ends
/// well (it reads nothing new) is no recovery: nothing hr imports can
/// flow (a black-box review: `recovered` was notified then). The first
/// good import once the threshold is approved is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_should_be_notified_only_once_the_threshold_no_longer_waits() {
    let (dir, hook) = setup(r#"{ deletes = "10%" }"#).await;
    remove_rows(dir.path(), 100);
    let svc = Running::start(dir.path());
    let (tripped, _) = trip(&svc).await;
    let failed = hook.wait_events("run-failed", 1).await;
    assert_eq!(failed[0]["status"], "stopped-staging-threshold-exceeded");
    svc.queue("hr", "delta-import").await.unwrap();
    // A second import while the hold stands: it says so (the staged
    // deletes are still over the threshold), and nothing recovered.
    svc.wait("a second import under the hold", |s| {
        quiet(s)
            && s.mas["hr"].last_run.as_ref().is_some_and(|r| {
                r.id > tripped && r.status == RunStatus::StoppedStagingThresholdExceeded
            })
    })
    .await;
    assert!(matches!(
        Running::state(&svc.status().await, "hr"),
        MaStateView::ThresholdExceeded { .. }
    ));
    // Notices go out in order: once a later one arrived, a recovery
    // notified for the second import would have too.
    svc.commands
        .send(autosync_service::Command::ReloadRejected {
            message: "a marker".into(),
        })
        .unwrap();
    hook.wait_events("config-reload-rejected", 1).await;
    assert!(hook.events("recovered").is_empty(), "{:?}", hook.bodies());

    svc.control(Control::Approve, Some("hr")).await.unwrap();
    svc.wait("approved", |s| {
        quiet(s) && matches!(Running::state(s, "hr"), MaStateView::Idle)
    })
    .await;
    svc.queue("hr", "delta-import").await.unwrap();
    let recovered = hook.wait_events("recovered", 1).await;
    assert_eq!(recovered[0]["ma"], "hr");
    assert_eq!(recovered[0]["profile"], "delta-import");
    svc.shutdown().await;
}
