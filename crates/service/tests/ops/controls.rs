//! Operators' controls through `Command::Control` on a running service:
//! stop/start (queue kept), pause/resume (trigger requests deferred, none
//! lost), cancel, clear-queue, maintenance, and clear refusals.

use crate::support::*;
use autosync_model::{RunStatus, StepCounters};
use autosync_service::{Control, MaStateView, RefusalCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_ma_keeps_its_queue_and_runs_it_when_started() {
    let dir = converged_quickstart().await;
    let svc = Running::start(dir.path());
    svc.wait_quiet("start-up").await;
    let before = svc.runs(Some("app")).len();
    let answer = svc.control(Control::Stop, Some("app")).await.unwrap();
    assert!(answer.contains("queued requests are kept"), "{answer}");
    svc.queue("app", "full-import").await.unwrap();
    let status = svc.status().await;
    assert_eq!(Running::state(&status, "app"), MaStateView::Stopped);
    assert_eq!(status.mas["app"].queue.len(), 1);
    assert_eq!(status.mas["app"].queue[0].profile, "full-import");
    assert_eq!(svc.runs(Some("app")).len(), before, "a stopped MA ran");
    // Other MAs still run.
    svc.queue("directory", "full-import").await.unwrap();
    svc.wait("directory ran", |s| {
        s.mas["directory"].queue.is_empty() && quiet(s)
    })
    .await;
    assert_eq!(svc.runs(Some("app")).len(), before);

    svc.control(Control::Start, Some("app")).await.unwrap();
    svc.wait("app ran its queue", |s| {
        quiet(s) && Running::state(s, "app") == MaStateView::Idle
    })
    .await;
    let app = svc.runs(Some("app"));
    assert_eq!(app.len(), before + 1);
    assert_eq!(app.last().unwrap().profile, "full-import");
    // Stop and start every MA at once.
    let all = svc.control(Control::Stop, None).await.unwrap();
    assert!(all.contains("3 management agents"), "{all}");
    let status = svc.status().await;
    assert!(status.mas.values().all(|m| m.state == MaStateView::Stopped));
    svc.control(Control::Start, None).await.unwrap();
    let status = svc.status().await;
    assert!(status.mas.values().all(|m| m.state == MaStateView::Idle));
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_triggers_defer_their_requests_and_resume_queues_them_without_loss() {
    let dir = converged_quickstart().await;
    let svc = Running::start(dir.path());
    svc.wait_quiet("start-up").await;
    let hr_runs = svc.runs(Some("hr")).len();
    let answer = svc.control(Control::Pause, Some("hr")).await.unwrap();
    assert!(answer.contains("paused"), "{answer}");
    let active = hr_active(dir.path());
    set_title(dir.path(), &active[0], "Paused One");
    let status = svc
        .wait("the file-watch request deferred", |s| {
            !s.mas["hr"].deferred.is_empty()
        })
        .await;
    assert!(status.mas["hr"].paused);
    assert!(status.mas["hr"].queue.is_empty());
    assert_eq!(svc.runs(Some("hr")).len(), hr_runs, "a paused trigger ran");
    // A second change while paused: still one deferred request per profile.
    set_title(dir.path(), &active[1], "Paused Two");
    // Follow-ups and manual requests still run while paused.
    svc.queue("app", "full-import").await.unwrap();
    svc.wait("app ran while hr paused", |s| {
        quiet(s) && s.mas["app"].queue.is_empty()
    })
    .await;
    let status = svc.status().await;
    assert_eq!(status.mas["hr"].deferred.len(), 1, "{status:#?}");
    assert_eq!(svc.runs(Some("hr")).len(), hr_runs);

    let answer = svc.control(Control::Resume, Some("hr")).await.unwrap();
    assert!(answer.contains("1 request(s)"), "{answer}");
    svc.wait("both changes flowed", |_| {
        let titles = app_titles(dir.path());
        titles.contains(&(active[0].clone(), "Paused One".into()))
            && titles.contains(&(active[1].clone(), "Paused Two".into()))
    })
    .await;
    let status = svc.wait_quiet("quiet after resume").await;
    assert!(!status.mas["hr"].paused);
    assert!(status.mas["hr"].deferred.is_empty());
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_import_and_clear_queue_drops_what_waits() {
    let dir = quickstart();
    // A source big enough that the import is still running when cancelled.
    let (header, _) = hr_lines(dir.path());
    let lines: Vec<String> = (0..200_000)
        .map(|i| format!("E{i:07},Ann,Lee{i},ann.lee{i}@example.com,Ops,Clerk,,active"))
        .collect();
    write_hr(dir.path(), &header, &lines);
    let svc = Running::start(dir.path());
    svc.wait("the import running", |s| {
        matches!(Running::state(s, "hr"), MaStateView::Running { .. })
    })
    .await;
    let answer = svc.control(Control::Stop, Some("hr")).await.unwrap();
    assert!(answer.contains("still running"), "{answer}");
    let answer = svc.control(Control::Cancel, Some("hr")).await.unwrap();
    assert!(answer.contains("cancelling `delta-import`"), "{answer}");
    svc.wait("the import stopped", |s| {
        Running::state(s, "hr") == MaStateView::Stopped
    })
    .await;
    let last = svc.runs(Some("hr")).pop().unwrap();
    assert_eq!(last.status, RunStatus::StoppedUserRequested);
    // Stopped between batches: not every row was read, and what its
    // committed batches staged is kept, as pending imports.
    let StepCounters::Import(c) = &last.steps[0].counters else {
        panic!("not an import: {last:?}");
    };
    assert!(c.stage_add < 200_000, "the import was not cut short: {c:?}");
    let hr = svc.store.read().unwrap().cs_counts("hr").unwrap();
    assert_eq!((hr.total, hr.pending_import), (c.stage_add, c.stage_add));
    // Requests wait while the MA is stopped; clear-queue drops them.
    svc.queue("hr", "full-import").await.unwrap();
    let status = svc.status().await;
    let queued = status.mas["hr"].queue.len();
    assert!(queued >= 1);
    let answer = svc.control(Control::ClearQueue, Some("hr")).await.unwrap();
    assert!(
        answer.contains(&format!("dropped {queued} queued request(s)")),
        "{answer}"
    );
    let status = svc.status().await;
    assert!(status.mas["hr"].queue.is_empty());
    // Cancelling an idle MA is refused.
    let refused = svc.control(Control::Cancel, Some("hr")).await.unwrap_err();
    assert!(refused.contains("is not running"), "{refused}");
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_mode_holds_every_start_until_it_ends() {
    let dir = converged_quickstart().await;
    let svc = Running::start(dir.path());
    svc.wait_quiet("start-up").await;
    let before = svc.runs(None).len();
    let answer = svc.control(Control::Maintenance, None).await.unwrap();
    assert!(answer.contains("maintenance mode on"), "{answer}");
    svc.queue("app", "full-import").await.unwrap();
    svc.queue("hr", "full-import").await.unwrap();
    let status = svc.status().await;
    assert!(status.maintenance.is_some());
    for ma in ["app", "hr"] {
        assert_eq!(
            Running::state(&status, ma),
            MaStateView::Waiting {
                reason: "maintenance mode".into()
            }
        );
    }
    assert_eq!(svc.runs(None).len(), before);
    svc.control(Control::EndMaintenance, None).await.unwrap();
    svc.wait_quiet("the queued runs ran").await;
    let after = svc.runs(None);
    assert!(
        after
            .iter()
            .any(|r| r.id > before as i64 && r.ma == "app" && r.profile == "full-import")
    );
    assert!(
        after
            .iter()
            .any(|r| r.id > before as i64 && r.ma == "hr" && r.profile == "full-import")
    );
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_controls_say_what_is_wrong() {
    let dir = converged_quickstart().await;
    let svc = Running::start(dir.path());
    let cases: [(Control, Option<&str>, RefusalCode, &str); 7] = [
        (
            Control::Start,
            Some("payroll"),
            RefusalCode::UnknownMa,
            "no management agent named `payroll` (one of: `app`, `directory`, `hr`)",
        ),
        (
            Control::Cancel,
            None,
            RefusalCode::NeedsMa,
            "`cancel` needs a management agent",
        ),
        (
            Control::Cancel,
            Some("app"),
            RefusalCode::NotRunning,
            "`app` is not running a profile",
        ),
        (
            Control::Maintenance,
            Some("app"),
            RefusalCode::GlobalOnly,
            "applies to the whole service",
        ),
        (
            Control::EndMaintenance,
            None,
            RefusalCode::NotInMaintenance,
            "maintenance mode is not on",
        ),
        (
            Control::Approve,
            Some("hr"),
            RefusalCode::NothingToApprove,
            "waits for no approval",
        ),
        // The engine's own refusal: nothing to reject, not a failure.
        (
            Control::Reject,
            Some("hr"),
            RefusalCode::NothingToReject,
            "waits for no approval",
        ),
    ];
    for (action, ma, code, expected) in cases {
        let refused = svc.control_refusal(action, ma).await.unwrap_err();
        assert_eq!(refused.code, code, "{action} {ma:?}: {refused}");
        assert!(
            refused.message.contains(expected),
            "{action} {ma:?}: {refused}"
        );
        assert!(!refused.message.contains("failed"), "{refused}");
    }
    let unknown = svc.queue("app", "nightly").await.unwrap_err();
    assert_eq!(unknown.code, RefusalCode::UnknownProfile);
    assert!(
        unknown.message.contains("has no run profile `nightly`"),
        "{unknown}"
    );
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_deferred_requests_and_maintenance_survive_a_restart() {
    let dir = converged_quickstart().await;
    let svc = Running::start(dir.path());
    svc.wait_quiet("start-up").await;
    svc.control(Control::Pause, Some("hr")).await.unwrap();
    let id = first_active(dir.path());
    set_title(dir.path(), &id, "Deferred Across Restart");
    svc.wait("the request deferred", |s| !s.mas["hr"].deferred.is_empty())
        .await;
    svc.control(Control::Maintenance, None).await.unwrap();
    svc.shutdown().await;

    let svc = Running::start(dir.path());
    let status = svc.status().await;
    assert!(status.maintenance.is_some(), "maintenance forgotten");
    assert!(status.mas["hr"].paused, "pause forgotten");
    assert_eq!(status.mas["hr"].deferred.len(), 1, "{status:#?}");
    let runs = svc.runs(None).len();
    svc.control(Control::Resume, Some("hr")).await.unwrap();
    let status = svc.status().await;
    assert!(!status.mas["hr"].queue.is_empty());
    assert_eq!(
        svc.runs(None).len(),
        runs,
        "a run started in maintenance mode"
    );
    svc.control(Control::EndMaintenance, None).await.unwrap();
    svc.wait("the deferred change flowed", |s| {
        quiet(s) && app_titles(dir.path()).contains(&(id.clone(), "Deferred Across Restart".into()))
    })
    .await;
    svc.shutdown().await;
}
