//! Blackout windows: a queued run waits while its MA is in a window (the
//! status says so) and starts, by itself, once the window ends.

use crate::support::*;
use autosync_service::MaStateView;
use chrono::{Duration as ChronoDuration, DurationRound, Timelike, Utc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waits_while_its_ma_is_in_a_blackout_window_and_others_run() {
    let dir = converged_quickstart().await;
    let now = Utc::now();
    let start = now - ChronoDuration::minutes(1);
    let end = now + ChronoDuration::minutes(3);
    edit_config(dir.path(), |t| {
        target_controller(
            &t,
            "app",
            &format!(
                r#"blackouts = [{{ start = "{:02}:{:02}", end = "{:02}:{:02}" }}]"#,
                start.hour(),
                start.minute(),
                end.hour(),
                end.minute()
            ),
        )
    });
    let svc = Running::start(dir.path());
    let before = svc.runs(Some("app")).len();
    svc.queue("app", "full-import").await.unwrap();
    svc.queue("directory", "full-import").await.unwrap();
    let status = svc
        .wait("directory ran", |s| {
            s.mas["directory"].queue.is_empty()
                && Running::state(s, "directory") == MaStateView::Idle
        })
        .await;
    match Running::state(&status, "app") {
        MaStateView::Waiting { reason } => assert!(reason.contains("blackout"), "{reason}"),
        other => panic!("app is not waiting for its blackout: {other:?}"),
    }
    assert_eq!(status.mas["app"].queue.len(), 1);
    assert_eq!(
        svc.runs(Some("app")).len(),
        before,
        "app ran in its blackout"
    );
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_queued_in_a_window_starts_when_the_window_ends() {
    let dir = converged_quickstart().await;
    // A cron window that started a second ago and lasts 4 s.
    let start = Utc::now()
        .duration_trunc(ChronoDuration::seconds(1))
        .unwrap()
        - ChronoDuration::seconds(1);
    let end = start + ChronoDuration::seconds(4);
    let cron = format!(
        "{} {} {} {} {} *",
        start.second(),
        start.minute(),
        start.hour(),
        chrono::Datelike::day(&start),
        chrono::Datelike::month(&start)
    );
    edit_config(dir.path(), |t| {
        target_controller(
            &t,
            "app",
            &format!(r#"blackouts = [{{ cron = "{cron}", duration = "4s" }}]"#),
        )
    });
    let svc = Running::start(dir.path());
    svc.queue("app", "full-import").await.unwrap();
    let status = svc.status().await;
    match Running::state(&status, "app") {
        MaStateView::Waiting { reason } => assert!(reason.contains("blackout"), "{reason}"),
        other => panic!("app is not waiting for its blackout: {other:?}"),
    }
    let status = svc
        .wait("the run after the window", |s| {
            s.mas["app"].queue.is_empty() && Running::state(s, "app") == MaStateView::Idle
        })
        .await;
    let run = status.mas["app"].last_run.clone().unwrap();
    assert_eq!(run.profile, "full-import");
    assert!(
        run.started_at >= end,
        "started at {} in the window ending {end}",
        run.started_at
    );
    svc.shutdown().await;
}
