//! Retries with backoff, the failed state, its single notification, and
//! recovery without an operator.

use crate::support::*;
use autosync_model::RunStatus;
use autosync_service::MaStateView;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_file_is_retried_then_failed_notified_once_and_recovers_by_itself() {
    let dir = converged_quickstart().await;
    let hook = WebhookSink::start();
    edit_config(dir.path(), |t| {
        let t = hr_controller(
            &t,
            r#"triggers = []
retry = { backoff = "50ms", max_backoff = "200ms", max_attempts = 2 }"#,
        );
        global_controller(&t, &webhook_section(&hook.url))
    });
    let before = app_titles(dir.path());
    // The source goes away: its import ends stopped-server-down.
    let hr = dir.path().join("data/hr.csv");
    let away = dir.path().join("hr.csv.away");
    std::fs::rename(&hr, &away).unwrap();

    let svc = Running::start(dir.path());
    svc.queue("hr", "delta-import").await.unwrap();
    let status = svc
        .wait("hr failed", |s| {
            matches!(Running::state(s, "hr"), MaStateView::Failed { .. })
        })
        .await;
    let MaStateView::Failed {
        profile,
        status: st,
        attempts,
        error,
        ..
    } = Running::state(&status, "hr")
    else {
        unreachable!()
    };
    // The status says which error, not only which status.
    let error = error.expect("the failed run's error");
    assert!(error.contains("hr.csv"), "{error}");
    assert_eq!(profile, "delta-import");
    assert_eq!(st, RunStatus::StoppedServerDown);
    assert_eq!(attempts, 2, "failed after the configured 2 retries");
    let failed_runs = svc
        .runs(Some("hr"))
        .iter()
        .filter(|r| r.status == RunStatus::StoppedServerDown)
        .count();
    assert!(failed_runs >= 3, "first run + 2 retries: {failed_runs}");
    let notified = hook.wait_events("ma-failed", 1).await;
    assert_eq!(notified[0]["ma"], "hr");
    assert_eq!(notified[0]["status"], "stopped-server-down");
    // It keeps being retried while failed, without notifying again.
    wait_for("more retries while failed", || {
        svc.runs(Some("hr"))
            .iter()
            .filter(|r| r.status == RunStatus::StoppedServerDown)
            .count()
            >= failed_runs + 3
    })
    .await;
    assert_eq!(hook.events("ma-failed").len(), 1, "{:#?}", hook.bodies());
    assert_eq!(
        app_titles(dir.path()),
        before,
        "nothing flowed while failing"
    );

    // The cause is fixed (with a change in it): the next retry succeeds,
    // the failed state clears and the change reaches the targets.
    std::fs::rename(&away, &hr).unwrap();
    let id = first_active(dir.path());
    set_title(dir.path(), &id, "Recovered Title");
    let status = svc
        .wait("recovered and quiet", |s| {
            quiet(s) && matches!(Running::state(s, "hr"), MaStateView::Idle)
        })
        .await;
    assert!(matches!(Running::state(&status, "app"), MaStateView::Idle));
    let titles = app_titles(dir.path());
    assert!(
        titles.contains(&(id.clone(), "Recovered Title".into())),
        "the change did not reach app"
    );
    let last_import = svc
        .runs(Some("hr"))
        .into_iter()
        .rev()
        .find(|r| r.profile == "delta-import")
        .unwrap();
    assert_eq!(last_import.status, RunStatus::Success);
    assert_eq!(hook.events("ma-failed").len(), 1);
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_folder_is_retried_and_the_export_runs_when_it_is_back() {
    let dir = quickstart();
    edit_config(dir.path(), |t| {
        let t = t.replace("data/directory.jsonl", "out/directory.jsonl");
        let t = hr_controller(&t, "triggers = []");
        target_controller(
            &t,
            "directory",
            r#"retry = { backoff = "50ms", max_backoff = "200ms", max_attempts = 2 }"#,
        )
    });
    let svc = Running::start(dir.path());
    svc.queue("hr", "delta-import").await.unwrap();
    let status = svc
        .wait("directory failed", |s| {
            matches!(Running::state(s, "directory"), MaStateView::Failed { .. })
        })
        .await;
    let MaStateView::Failed {
        profile,
        status: st,
        ..
    } = Running::state(&status, "directory")
    else {
        unreachable!()
    };
    assert_eq!(profile, "export");
    assert_eq!(st, RunStatus::StoppedServerDown);
    // The other target is not held back by the failing one.
    svc.wait("app converged", |s| {
        matches!(Running::state(s, "app"), MaStateView::Idle) && s.mas["app"].queue.is_empty()
    })
    .await;
    assert_eq!(app_ids(dir.path()), hr_active(dir.path()));
    std::fs::create_dir(dir.path().join("out")).unwrap();
    svc.wait("directory recovered", |s| {
        quiet(s) && matches!(Running::state(s, "directory"), MaStateView::Idle)
    })
    .await;
    let text = std::fs::read_to_string(dir.path().join("out/directory.jsonl")).unwrap();
    assert_eq!(text.lines().count(), hr_active(dir.path()).len());
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_start_clears_the_failed_state_and_retries_at_once() {
    let dir = converged_quickstart().await;
    edit_config(dir.path(), |t| {
        hr_controller(
            &t,
            r#"triggers = []
retry = { backoff = "50ms", max_backoff = "1h", max_attempts = 1 }"#,
        )
    });
    let hr = dir.path().join("data/hr.csv");
    let away = dir.path().join("hr.csv.away");
    std::fs::rename(&hr, &away).unwrap();
    let svc = Running::start(dir.path());
    svc.queue("hr", "delta-import").await.unwrap();
    let status = svc
        .wait("hr failed", |s| {
            matches!(Running::state(s, "hr"), MaStateView::Failed { .. })
        })
        .await;
    // The next automatic retry is an hour away; the request waits at the
    // front of the queue.
    assert_eq!(status.mas["hr"].queue.len(), 1);
    std::fs::rename(&away, &hr).unwrap();
    let id = first_active(dir.path());
    set_title(dir.path(), &id, "Started By Hand");
    let answer = svc
        .control(autosync_service::Control::Start, Some("hr"))
        .await
        .unwrap();
    assert!(answer.contains("started `hr`"), "{answer}");
    svc.wait("the retry ran at once and the change flowed", |s| {
        quiet(s)
            && Running::state(s, "hr") == MaStateView::Idle
            && app_titles(dir.path()).contains(&(id.clone(), "Started By Hand".into()))
    })
    .await;
    svc.shutdown().await;
}

/// An export that completed with a per-object error is run again after
/// the retry backoff, without a new change at the source and without
/// holding the MA back or marking it failed; once the target accepts the
/// object, the retries stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_error_is_retried_by_the_cycle_until_the_target_accepts_it() {
    let dir = converged_quickstart().await;
    edit_config(dir.path(), |t| {
        let t = hr_controller(&t, "triggers = []");
        global_controller(
            &t,
            r#"retry = { backoff = "100ms", max_backoff = "300ms", max_attempts = 50 }"#,
        )
    });
    // The application refuses one title, for now.
    let app = rusqlite::Connection::open(dir.path().join("data/app.db")).unwrap();
    app.execute_batch(
        "CREATE TRIGGER refuse_title BEFORE UPDATE ON users WHEN NEW.title = 'Refused Title'
         BEGIN SELECT RAISE(ABORT, 'this title is refused'); END;",
    )
    .unwrap();
    let who = first_active(dir.path());
    set_title(dir.path(), &who, "Refused Title");
    let svc = Running::start(dir.path());
    svc.queue("hr", "delta-import").await.unwrap();
    wait_for("the export to fail on the object", || {
        svc.runs(Some("app"))
            .iter()
            .any(|r| r.status == RunStatus::CompletedExportErrors)
    })
    .await;
    // Retried: more failing exports come, with no change at the source,
    // and the MA is neither held nor failed.
    wait_for("retries of the export", || {
        svc.runs(Some("app"))
            .iter()
            .filter(|r| r.status == RunStatus::CompletedExportErrors)
            .count()
            >= 3
    })
    .await;
    let status = svc.status().await;
    assert!(
        !matches!(Running::state(&status, "app"), MaStateView::Failed { .. }),
        "{status:#?}"
    );
    // The application accepts it now: the next retry exports it.
    app.execute_batch("DROP TRIGGER refuse_title").unwrap();
    wait_for("the title to reach the application", || {
        app_titles(dir.path())
            .iter()
            .any(|(id, title)| id == &who && title == "Refused Title")
    })
    .await;
    let status = svc.wait_quiet("the retries to end").await;
    assert_eq!(Running::state(&status, "app"), MaStateView::Idle);
    let last = svc.runs(Some("app"));
    assert_eq!(last[0].status, RunStatus::Success, "{:#?}", last[0]);
    svc.shutdown().await;
}
