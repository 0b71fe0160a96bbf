//! The state machine's policies, one test each, on the simulated world and
//! its controllable clock (`sim`): retries and the failed state, the
//! retry at once when a trigger fires while the source was unavailable,
//! per-object error retries, staging thresholds with approve and reject,
//! MAs busy with runs started elsewhere, blackout windows, maintenance
//! mode, the start stagger, the status's one precedence, and `--once`.

use crate::sim::{Setup, Sim};
use crate::support::at;
use autosync_controller::machine::{
    Answer, Event, MaStateView, Notice, Refusal, RefusalCode, RunEnd, RunFacts, RunOutcome,
    StateFacts, state_view,
};
use autosync_controller::machine::{Failed, HeldThreshold, MaControl};
use autosync_controller::{Control, RunMode};
use autosync_model::{RunReason, RunStatus};
use chrono::Duration;

fn state(sim: &Sim, ma: &str) -> MaStateView {
    sim.machine.status(|_| None).mas[ma].state.clone()
}

fn waiting_reason(sim: &Sim, ma: &str) -> String {
    match state(sim, ma) {
        MaStateView::Waiting { reason } => reason,
        other => panic!("{ma} does not wait: {other:?}"),
    }
}

fn running(sim: &Sim, ma: &str) -> bool {
    sim.flights.iter().any(|f| f.request.ma == ma)
}

/// Moves the clock from wake-up to wake-up (answering what the machine
/// asks) until `done` holds.
fn advance_until(sim: &mut Sim, what: &str, done: impl Fn(&Sim) -> bool) {
    for _ in 0..1_000 {
        if done(sim) {
            return;
        }
        let wake = sim.wake.unwrap_or_else(|| panic!("nothing is due: {what}"));
        sim.advance_to(wake);
        sim.deliver_all();
    }
    panic!("gave up waiting: {what}");
}

fn failed_notices(sim: &Sim) -> usize {
    sim.notices
        .iter()
        .filter(|n| matches!(n, Notice::MaFailed { .. }))
        .count()
}

#[test]
fn a_source_that_is_down_is_retried_with_backoff_then_failed_once_and_recovers_by_itself() {
    let mut sim = Sim::new(Setup::default());
    sim.world.down.insert("hr".into());
    sim.trigger("hr", "delta-import", false, false);
    sim.complete_on("hr", false);
    let reason = waiting_reason(&sim, "hr");
    assert!(
        reason.contains("retry 1 of 2 after `delta-import` ended stopped-server-down (run 1)"),
        "{reason}"
    );
    // Which error, not only which status.
    assert!(
        reason.contains("at step 1 delta-import: the system of `hr` is down"),
        "{reason}"
    );
    assert!(reason.contains("next try at"), "{reason}");
    // Not before the backoff (5 s ± 10 %).
    sim.advance(4);
    assert!(!running(&sim, "hr"));
    sim.advance(2);
    assert!(running(&sim, "hr"), "retried after the backoff");
    sim.complete_on("hr", false);
    advance_until(&mut sim, "the second retry", |s| running(s, "hr"));
    sim.complete_on("hr", false);
    // Attempts used up: failed, notified once, still retried.
    match state(&sim, "hr") {
        MaStateView::Failed {
            profile,
            status,
            attempts,
            next_retry,
            error,
            ..
        } => {
            assert_eq!(profile, "delta-import");
            assert_eq!(status, RunStatus::StoppedServerDown);
            assert_eq!(attempts, 2);
            assert_eq!(
                error.as_deref(),
                Some("step 1 delta-import: the system of `hr` is down")
            );
            assert!(next_retry.is_some_and(|t| t > sim.now));
        }
        other => panic!("not failed: {other:?}"),
    }
    assert_eq!(failed_notices(&sim), 1);
    for _ in 0..3 {
        advance_until(&mut sim, "a retry while failed", |s| running(s, "hr"));
        sim.complete_on("hr", false);
    }
    // Each failed retry repeats the notice: the notifier keeps repeats
    // quiet until its reminder, and sends one when the first reached no
    // one (it was lost for good: a black-box review).
    assert_eq!(failed_notices(&sim), 4, "repeated while failed");
    // The source is back: the next retry succeeds and the MA recovers.
    sim.world.down.clear();
    advance_until(&mut sim, "the retry after the outage", |s| running(s, "hr"));
    sim.complete_on("hr", false);
    assert_eq!(state(&sim, "hr"), MaStateView::Idle);
    assert_eq!(sim.machine.state().mas["hr"].attempts, 0);
}

#[test]
fn a_trigger_that_fires_while_the_source_was_unavailable_retries_at_once() {
    let mut sim = Sim::new(Setup::default());
    sim.world.down.insert("hr".into());
    sim.trigger("hr", "delta-import", false, false);
    sim.complete_on("hr", false);
    assert!(!running(&sim, "hr"), "held for the backoff");
    sim.world.down.clear();
    // The file came back: its watch fires; no waiting out the backoff.
    sim.trigger("hr", "delta-import", false, false);
    assert!(running(&sim, "hr"), "retried at once");
    sim.complete_on("hr", false);
    assert_eq!(sim.machine.state().mas["hr"].attempts, 0);
}

#[test]
fn a_trigger_does_not_cut_short_the_backoff_of_other_failures() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "delta-import", false, false);
    let request = sim.flights[0].request.clone();
    sim.flights.clear();
    let mut record = sim.runs[&1].clone();
    record.status = RunStatus::StoppedDeadlocked;
    record.ended_at = Some(sim.now);
    sim.handle(Event::RunEnded(Box::new(RunEnd {
        ma: request.ma.clone(),
        outcome: RunOutcome::Ran(record),
        after: Default::default(),
        facts: RunFacts::default(),
    })));
    sim.trigger("hr", "delta-import", false, false);
    assert!(sim.flights.is_empty(), "a deadlock waits out its backoff");
    assert!(waiting_reason(&sim, "hr").contains("stopped-deadlocked"));
}

#[test]
fn export_errors_are_retried_after_the_backoff_without_holding_the_ma_back() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("app", "export", false, false);
    let mut record = sim.runs[&1].clone();
    sim.flights.clear();
    record.status = RunStatus::CompletedExportErrors;
    record.ended_at = Some(sim.now);
    sim.handle(Event::RunEnded(Box::new(RunEnd {
        ma: "app".into(),
        outcome: RunOutcome::Ran(record),
        after: Default::default(),
        facts: RunFacts::default(),
    })));
    assert_eq!(
        state(&sim, "app"),
        MaStateView::Idle,
        "not held, not failed"
    );
    // Other requests of the MA go on meanwhile.
    sim.trigger("app", "delta-import", false, false);
    assert!(running(&sim, "app"));
    sim.complete_on("app", false);
    advance_until(&mut sim, "the retry of the export", |s| running(s, "app"));
    let retry = &sim.flights[0].request;
    assert_eq!(
        (retry.ma.as_str(), retry.profile.as_str()),
        ("app", "export")
    );
    assert!(
        matches!(&retry.reason, RunReason::Reconciliation { because } if because.contains("retry 1 of run 1 that ended completed-export-errors")),
        "{:?}",
        retry.reason
    );
}

#[test]
fn an_import_over_a_staging_threshold_holds_the_syncs_until_approved() {
    let mut sim = Sim::new(Setup {
        threshold: Some(3),
        ..Setup::default()
    });
    *sim.world.source.get_mut("hr").unwrap() = 10;
    sim.trigger("hr", "delta-import", false, false);
    sim.complete_on("hr", false);
    match state(&sim, "hr") {
        MaStateView::ThresholdExceeded { held, exceeded, .. } => {
            assert_eq!(held, vec!["delta-sync".to_owned()]);
            assert_eq!(exceeded, vec!["updates > 3".to_owned()]);
        }
        other => panic!("not held: {other:?}"),
    }
    assert!(
        sim.notices
            .iter()
            .any(|n| matches!(n, Notice::ThresholdExceeded { ma, .. } if ma == "hr"))
    );
    match sim.queue("hr", "delta-sync") {
        Answer::Queued(Err(e)) => {
            assert_eq!(e.code, RefusalCode::HeldByThreshold);
            assert!(e.message.contains("autosync approve hr"), "{e}");
        }
        other => panic!("a held sync was queued: {other:?}"),
    }
    sim.made.clear();
    assert!(sim.flights.is_empty());
    let answer = sim.control(Control::Approve, Some("hr")).unwrap();
    assert!(answer.contains("1 request(s) queued"), "{answer}");
    assert_eq!(sim.flights[0].request.profile, "delta-sync");
    assert!(sim.flights[0].request.run_immediate);
}

#[test]
fn a_rejected_threshold_drops_the_held_syncs_and_a_second_reject_is_refused() {
    let mut sim = Sim::new(Setup {
        threshold: Some(3),
        ..Setup::default()
    });
    *sim.world.source.get_mut("hr").unwrap() = 10;
    sim.trigger("hr", "delta-import", false, false);
    sim.complete_on("hr", false);
    let answer = sim.control(Control::Reject, Some("hr")).unwrap();
    assert!(answer.contains("rejected 10 staged changes"), "{answer}");
    // Nothing synchronised: the source is read again (what the held import
    // read, a fix made meanwhile included, was discarded).
    assert_eq!(sim.flights.len(), 1, "{:?}", sim.flights);
    assert_eq!(sim.flights[0].request.profile, "delta-import");
    assert!(matches!(
        &sim.flights[0].request.reason,
        RunReason::Manual { by } if by == "reject"
    ));
    assert_eq!(sim.world.source["hr"], 10, "the source gives them again");
    // The source fixed meanwhile: read again, nothing is held.
    *sim.world.source.get_mut("hr").unwrap() = 0;
    sim.complete_on("hr", false);
    assert_eq!(state(&sim, "hr"), MaStateView::Idle);
    let again = sim.control(Control::Reject, Some("hr")).unwrap_err();
    assert_eq!(again.code, RefusalCode::NothingToReject);
    assert!(again.message.contains("waits for no approval"), "{again}");
    assert!(!again.message.contains("failed"), "{again}");
}

#[test]
fn an_approval_the_engine_refuses_keeps_the_threshold_waiting() {
    let mut sim = Sim::new(Setup {
        threshold: Some(3),
        ..Setup::default()
    });
    *sim.world.source.get_mut("hr").unwrap() = 10;
    sim.trigger("hr", "delta-import", false, false);
    sim.complete_on("hr", false);
    // The store cannot be written now.
    sim.world.down.insert("hr".into());
    let refused = sim.control(Control::Approve, Some("hr")).unwrap_err();
    assert_eq!(refused.code, RefusalCode::EngineFailed);
    assert!(refused.message.contains("unavailable"), "{refused}");
    assert!(matches!(
        state(&sim, "hr"),
        MaStateView::ThresholdExceeded { .. }
    ));
}

#[test]
fn a_run_that_finds_its_ma_busy_waits_and_the_status_says_why() {
    let mut sim = Sim::new(Setup::default());
    sim.external_start("hr", "full-import");
    sim.trigger("hr", "delta-import", false, false);
    sim.deliver_all();
    let reason = waiting_reason(&sim, "hr");
    assert!(reason.contains("did not start"), "{reason}");
    sim.external_end(0);
    advance_until(&mut sim, "the held request", |s| running(s, "hr"));
}

#[test]
fn a_run_started_outside_the_controller_holds_its_ma_and_is_followed_up_when_it_ends() {
    let mut sim = Sim::new(Setup::default());
    *sim.world.source.get_mut("hr").unwrap() = 2;
    sim.external_start("hr", "delta-import");
    sim.advance(5);
    sim.deliver_all();
    match state(&sim, "hr") {
        MaStateView::Running { reason, .. } => {
            assert!(
                reason.contains("started outside the controller"),
                "{reason}"
            )
        }
        other => panic!("the unmanaged run is not shown: {other:?}"),
    }
    sim.trigger("hr", "full-import", false, false);
    assert!(sim.flights.is_empty(), "the MA's lock is held");
    sim.external_end(0);
    sim.advance(5);
    sim.deliver_all();
    let sync = sim
        .flights
        .iter()
        .map(|f| f.request.clone())
        .chain(
            sim.machine
                .state()
                .queues
                .get("hr")
                .into_iter()
                .flat_map(|q| q.iter().cloned()),
        )
        .find(|r| r.profile == "delta-sync")
        .expect("the follow-up of the unmanaged import");
    assert!(matches!(sync.reason, RunReason::FollowUp { run_id: 1, .. }));
}

#[test]
fn a_queued_run_waits_out_a_blackout_window_and_starts_when_it_ends() {
    let mut sim = Sim::new(Setup {
        blackout: true,
        ..Setup::default()
    });
    // `at(0)` is 22:13:20 UTC; the window opens at 23:00 for ten minutes.
    let opens = at(0).date_naive().and_hms_opt(23, 0, 0).unwrap().and_utc();
    sim.advance_to(opens + Duration::seconds(30));
    sim.trigger("app", "full-import", false, false);
    sim.trigger("ad", "full-import", false, false);
    assert!(running(&sim, "ad"), "other MAs run");
    assert!(!running(&sim, "app"));
    assert_eq!(waiting_reason(&sim, "app"), "in a blackout window");
    advance_until(&mut sim, "the end of the window", |s| running(s, "app"));
    let ends = opens + Duration::minutes(10);
    assert!(sim.now >= ends, "started at {} in the window", sim.now);
    assert!(
        sim.now <= ends + Duration::seconds(1),
        "started late: {}",
        sim.now
    );
}

#[test]
fn maintenance_mode_holds_every_start_until_it_ends() {
    let mut sim = Sim::new(Setup::default());
    let answer = sim.control(Control::Maintenance, None).unwrap();
    assert!(answer.contains("maintenance mode on"), "{answer}");
    sim.trigger("hr", "delta-import", false, false);
    assert!(sim.flights.is_empty());
    assert_eq!(
        state(&sim, "hr"),
        MaStateView::Waiting {
            reason: "maintenance mode".into()
        }
    );
    sim.control(Control::EndMaintenance, None).unwrap();
    assert!(running(&sim, "hr"));
    let again = sim.control(Control::EndMaintenance, None).unwrap_err();
    assert_eq!(
        again,
        Refusal::new(RefusalCode::NotInMaintenance, "maintenance mode is not on")
    );
}

/// A second `maintenance` while it is on keeps who turned it on and since
/// when (a review: it overwrote them), and says so, as a success.
#[test]
fn maintenance_asked_again_keeps_who_and_since_of_the_first() {
    let mut sim = Sim::new(Setup::default());
    let first = sim.now;
    sim.control(Control::Maintenance, None).unwrap();
    sim.advance(3600);
    let reply = autosync_controller::machine::ReplyId(4242);
    sim.handle(Event::Control {
        reply,
        action: Control::Maintenance,
        ma: None,
        by: "bob".into(),
    });
    let answer = match sim.replies.remove(&reply) {
        Some(Answer::Done(Ok(answer))) => answer,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        answer,
        format!(
            "maintenance mode is already on since {} (by sim): nothing changed",
            first.format("%Y-%m-%d %H:%M:%S UTC")
        )
    );
    let since = sim.machine.state().maintenance.clone().unwrap();
    assert_eq!((since.by.as_str(), since.at), ("sim", first));
    assert_eq!(
        sim.machine.status(|_| None).maintenance.map(|m| m.by),
        Some("sim".to_owned())
    );
}

/// During the graceful stop (a run being cancelled), the status still
/// answers, what would start work (a queued request, `start`, `resume`,
/// `approve`, `reject`, `end-maintenance`) is refused `service-stopping`,
/// and what only holds work back (`pause`, `maintenance`, `stop`) is
/// carried out.
#[test]
fn during_the_graceful_stop_what_would_start_work_is_refused_as_stopping() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "delta-import", false, false);
    assert!(running(&sim, "hr"));
    sim.handle(Event::Shutdown);
    assert!(!sim.machine.stopped(), "the run is being cancelled");
    match sim.queue("app", "full-import") {
        Answer::Queued(Err(r)) => {
            assert_eq!(r.code, RefusalCode::ServiceStopping, "{r}");
            assert!(r.message.starts_with("the service is stopping"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    for (action, ma) in [
        (Control::Start, Some("app")),
        (Control::Resume, None),
        (Control::Approve, Some("hr")),
        (Control::Reject, Some("hr")),
        (Control::EndMaintenance, None),
    ] {
        let refused = sim.control(action, ma).unwrap_err();
        assert_eq!(
            refused.code,
            RefusalCode::ServiceStopping,
            "{action}: {refused}"
        );
    }
    sim.control(Control::Pause, Some("app")).unwrap();
    sim.control(Control::Maintenance, None).unwrap();
    assert!(sim.machine.status(|_| None).service);
    assert!(sim.machine.status(|_| None).maintenance.is_some());
    sim.complete_on("hr", false);
    assert!(sim.machine.stopped());
}

#[test]
fn the_start_stagger_spreads_starts_that_would_overlap() {
    let mut sim = Sim::new(Setup {
        stagger: true,
        ..Setup::mode(RunMode::Unsupported)
    });
    sim.trigger("hr", "delta-import", false, false);
    sim.trigger("ad", "delta-import", false, false);
    assert_eq!(sim.flights.len(), 1, "the second waits for the stagger");
    let wake = sim.wake.unwrap();
    assert_eq!(wake, sim.now + Duration::seconds(1));
    sim.advance_to(wake);
    assert_eq!(sim.flights.len(), 2);
}

#[test]
fn a_stopped_ma_keeps_its_queue_and_paused_triggers_defer_without_loss() {
    let mut sim = Sim::new(Setup::default());
    sim.control(Control::Stop, Some("app")).unwrap();
    sim.trigger("app", "full-import", false, false);
    assert_eq!(state(&sim, "app"), MaStateView::Stopped);
    sim.control(Control::Pause, Some("hr")).unwrap();
    sim.trigger("hr", "delta-import", false, false);
    sim.trigger("hr", "delta-import", false, false);
    let status = sim.machine.status(|_| None);
    assert_eq!(status.mas["hr"].deferred.len(), 1, "one per profile");
    assert!(status.mas["hr"].paused);
    assert!(sim.flights.is_empty());
    let answer = sim.control(Control::Resume, Some("hr")).unwrap();
    assert!(answer.contains("1 request(s)"), "{answer}");
    sim.control(Control::Start, Some("app")).unwrap();
    assert!(running(&sim, "hr") && running(&sim, "app"));
    sim.check_no_request_lost();
}

#[test]
fn refused_controls_say_what_is_wrong() {
    let mut sim = Sim::new(Setup::default());
    let cases: [(Control, Option<&str>, RefusalCode, &str); 6] = [
        (
            Control::Start,
            Some("payroll"),
            RefusalCode::UnknownMa,
            "no management agent named `payroll` (one of: `ad`, `app`, `hr`, `ldap`)",
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
            Control::Approve,
            Some("hr"),
            RefusalCode::NothingToApprove,
            "waits for no approval",
        ),
        (
            Control::Reject,
            Some("hr"),
            RefusalCode::NothingToReject,
            "waits for no approval or rejection",
        ),
    ];
    for (action, ma, code, expected) in cases {
        let refused = sim.control(action, ma).unwrap_err();
        assert_eq!(refused.code, code, "{action} {ma:?}: {refused}");
        assert!(
            refused.message.contains(expected),
            "{action} {ma:?}: {refused}"
        );
    }
    sim.trigger("hr", "delta-import", false, false);
    let refused = sim.control(Control::Reject, Some("hr")).unwrap_err();
    assert_eq!(refused.code, RefusalCode::Busy);
    assert!(
        refused.message.contains("reject again when it ends"),
        "{refused}"
    );
    for (ma, profile, code, expected) in [
        (
            "app",
            "nightly",
            RefusalCode::UnknownProfile,
            "has no run profile `nightly`",
        ),
        (
            "payroll",
            "export",
            RefusalCode::UnknownMa,
            "no management agent named `payroll`",
        ),
    ] {
        match sim.queue(ma, profile) {
            Answer::Queued(Err(e)) => {
                assert_eq!(e.code, code, "{e}");
                assert!(e.message.contains(expected), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_status_shows_a_disabled_ma_as_disabled_whatever_else_is_recorded() {
    let failed = MaControl {
        failed: Some(Failed {
            profile: "export".into(),
            status: RunStatus::StoppedServerDown,
            run_id: 3,
            attempts: 5,
            since: at(0),
            error: None,
        }),
        threshold: Some(HeldThreshold {
            run_id: 2,
            profile: "delta-import".into(),
            exceeded: Vec::new(),
            held: Vec::new(),
            since: at(0),
        }),
        ..MaControl::default()
    };
    for service in [true, false] {
        let facts = StateFacts {
            enabled: false,
            control: Some(&failed),
            started: true,
            service,
            ..StateFacts::default()
        };
        assert_eq!(state_view(facts), MaStateView::Disabled);
    }
    let facts = StateFacts {
        enabled: true,
        control: Some(&failed),
        started: false,
        service: false,
        ..StateFacts::default()
    };
    assert!(matches!(
        state_view(facts),
        MaStateView::ThresholdExceeded { .. }
    ));
    let mut sim = Sim::new(Setup::default());
    let mut config = sim.machine.config().clone();
    config.mas.get_mut("app").unwrap().enabled = false;
    sim.handle(Event::Reload {
        reply: autosync_controller::machine::ReplyId(999),
        config: Box::new(config),
    });
    assert_eq!(state(&sim, "app"), MaStateView::Disabled);
    let refused = sim.control(Control::Start, Some("app")).unwrap_err();
    assert_eq!(refused.code, RefusalCode::MaDisabled);
    assert!(
        refused.message.contains("disabled in the configuration"),
        "{refused}"
    );
    // A request for it is refused, not queued to wait for ever; starting
    // every MA says it left it (an API review).
    match sim.queue("app", "full-import") {
        Answer::Queued(Err(r)) => assert_eq!(r.code, RefusalCode::MaDisabled, "{r}"),
        other => panic!("{other:?}"),
    }
    let started = sim.control(Control::Start, None).unwrap();
    assert!(
        started.contains("1 disabled") && started.contains("`app`"),
        "{started}"
    );
}

/// A trigger (a script's answer) naming a profile its MA does not have:
/// the trigger's error, notified each time (the notifier keeps repeats
/// quiet), never queued as a run that cannot start (a black-box review: an
/// error logged every 2 s and nothing notified).
#[test]
fn a_trigger_asking_for_a_profile_its_ma_lacks_should_be_notified_not_queued() {
    let mut sim = Sim::new(Setup::default());
    let before = sim.machine.status(|_| None).mas["hr"].queue.len();
    for _ in 0..3 {
        sim.handle(Event::Triggered(autosync_controller::Request::trigger(
            "hr", "nope", "script s",
        )));
    }
    let errors: Vec<&Notice> = sim
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::TriggerError { ma, message, .. } if ma == "hr" && message.contains("nope")))
        .collect();
    assert_eq!(errors.len(), 3, "{:?}", sim.notices);
    assert_eq!(sim.machine.status(|_| None).mas["hr"].queue.len(), before);
    assert!(!running(&sim, "hr"));
}
