//! What the machine publishes, on the simulated world and its clock: a
//! run's life in order (queued, run-started, state-changed, run-ended),
//! a threshold's notice and state, progress only when it moved, trigger
//! requests deferred while paused, runs started outside the controller,
//! and the service's own start and stop. (That the published
//! `state-changed` events always replay to the status is checked after
//! every event by the simulation itself, and by a property test.)

use crate::sim::{Setup, Sim};
use autosync_controller::machine::{
    Event, MaStateName, Notice, NoticeKind, ServiceEvent, ServiceState,
};
use autosync_controller::{Control, ProgressState, RequestId};
use autosync_model::{RunReason, RunStatus, StepType};

/// One MA's published events, in a word or three each.
fn story(sim: &Sim, ma: &str) -> Vec<String> {
    sim.published
        .iter()
        .filter(|e| e.ma() == Some(ma))
        .map(|e| match e {
            ServiceEvent::TriggerFired {
                profile, deferred, ..
            } => format!(
                "trigger-fired {profile}{}",
                if *deferred { " deferred" } else { "" }
            ),
            ServiceEvent::Queued {
                profile, merged, ..
            } => format!("queued {profile}{}", if *merged { " merged" } else { "" }),
            ServiceEvent::RunStarted { profile, .. } => format!("run-started {profile}"),
            ServiceEvent::StepProgress {
                profile, processed, ..
            } => format!("step-progress {profile} {processed}"),
            ServiceEvent::RunEnded {
                profile, status, ..
            } => format!(
                "run-ended {profile} {}",
                status.map_or("not-run".to_owned(), |s| s.to_string())
            ),
            ServiceEvent::StateChanged { from, to, .. } => format!(
                "state-changed {}->{}",
                from.map_or("none", |s| s.as_str()),
                to.map_or("none", |s| s.as_str())
            ),
            ServiceEvent::Notice { kind, .. } => format!("notice {kind:?}"),
            ServiceEvent::Control { action, .. } => format!("control {action}"),
            ServiceEvent::Service { state, .. } => format!("service {state:?}"),
        })
        .collect()
}

#[test]
fn a_runs_life_is_published_in_order_with_its_state_changes() {
    let mut sim = Sim::new(Setup::default());
    assert_eq!(story(&sim, "hr"), ["state-changed none->idle"]);
    sim.published.clear();
    *sim.world.source.get_mut("hr").unwrap() = 2;
    sim.trigger("hr", "delta-import", false, false);
    let started_at = sim.now;
    sim.complete_on("hr", false);
    let ended_at = sim.now;
    sim.complete_on("hr", false);
    assert_eq!(
        story(&sim, "hr"),
        [
            "trigger-fired delta-import",
            "queued delta-import",
            "run-started delta-import",
            "state-changed idle->running",
            "run-ended delta-import success",
            // The follow-up starts at once: the MA stays running, on
            // another profile (a review: replaying the state changes gave
            // `delta-import` while `status` said `delta-sync`).
            "queued delta-sync",
            "run-started delta-sync",
            "state-changed running->running",
            "run-ended delta-sync success",
            "state-changed running->idle",
        ]
    );
    let mut request = None;
    let mut running = Vec::new();
    for event in &sim.published {
        match event {
            ServiceEvent::Queued {
                ma,
                profile,
                request: id,
                reason,
                merged,
                at,
            } if ma == "hr" && profile == "delta-import" => {
                assert_eq!(*at, started_at);
                assert!(!merged);
                assert_eq!(
                    *reason,
                    RunReason::Trigger {
                        trigger: "sim".into()
                    }
                );
                request = Some(*id);
            }
            ServiceEvent::RunStarted {
                ma,
                profile,
                request: id,
                ..
            } if ma == "hr" && profile == "delta-import" => {
                assert_eq!(*id, request, "the run names its request");
            }
            ServiceEvent::RunEnded {
                ma,
                profile,
                run_id,
                counts,
                at,
                request: id,
                ..
            } if ma == "hr" && profile == "delta-import" => {
                assert_eq!(*at, ended_at);
                assert_eq!(*run_id, Some(1));
                assert_eq!(*id, request);
                assert_eq!(counts.imported, 2);
            }
            ServiceEvent::StateChanged { ma, to, detail, .. }
                if ma == "hr" && *to == Some(MaStateName::Running) =>
            {
                running.extend(detail.clone());
            }
            _ => {}
        }
    }
    assert_eq!(running, ["delta-import", "delta-sync"]);
    assert!(request.is_some_and(|r| r != RequestId(0)));
    // The sync's changes went on to the targets: their runs are published
    // too, each starting from idle.
    assert_eq!(
        story(&sim, "app")[..2],
        ["queued export", "run-started export"]
    );
}

#[test]
fn a_threshold_stop_publishes_its_notice_and_the_waiting_state() {
    let mut sim = Sim::new(Setup {
        threshold: Some(3),
        ..Setup::default()
    });
    *sim.world.source.get_mut("hr").unwrap() = 10;
    sim.trigger("hr", "delta-import", false, false);
    sim.published.clear();
    sim.complete_on("hr", false);
    assert_eq!(
        story(&sim, "hr"),
        [
            "run-ended delta-import stopped-staging-threshold-exceeded",
            "notice ThresholdExceeded",
            "notice RunFailed",
            "state-changed running->threshold-exceeded",
        ]
    );
    let notice = sim
        .published
        .iter()
        .find_map(|e| match e {
            ServiceEvent::Notice { kind, message, .. } => Some((*kind, message.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(notice.0, NoticeKind::ThresholdExceeded);
    assert!(notice.1.contains("autosync approve hr"), "{}", notice.1);
    let detail = sim.published.iter().find_map(|e| match e {
        ServiceEvent::StateChanged { detail, .. } => detail.clone(),
        _ => None,
    });
    assert_eq!(detail.as_deref(), Some("updates > 3"));
    sim.published.clear();
    sim.control(Control::Approve, Some("hr")).unwrap();
    assert_eq!(
        story(&sim, "hr"),
        [
            "queued delta-sync",
            "control approve",
            "run-started delta-sync",
            "state-changed threshold-exceeded->running",
        ]
    );
}

#[test]
fn progress_is_published_only_when_it_moved_and_only_for_a_run_in_progress() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "delta-import", false, false);
    sim.published.clear();
    let at = |processed| ProgressState {
        step_index: Some(0),
        step: Some(StepType::DeltaImport),
        processed,
        expected: Some(10),
    };
    let sample = |sim: &mut Sim, processed| {
        sim.handle(Event::Progress(vec![
            ("hr".into(), at(processed)),
            ("app".into(), at(processed)),
        ]));
    };
    sample(&mut sim, 5);
    sample(&mut sim, 5);
    sample(&mut sim, 9);
    assert_eq!(
        story(&sim, "hr"),
        [
            "step-progress delta-import 5",
            "step-progress delta-import 9"
        ]
    );
    assert!(story(&sim, "app").is_empty(), "app runs nothing");
    match &sim.published[0] {
        ServiceEvent::StepProgress {
            step,
            step_index,
            expected,
            ..
        } => {
            assert_eq!(*step, Some(StepType::DeltaImport));
            assert_eq!(*step_index, Some(0));
            assert_eq!(*expected, Some(10));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_trigger_request_while_paused_is_published_as_deferred_and_not_queued() {
    let mut sim = Sim::new(Setup::default());
    sim.control(Control::Pause, Some("hr")).unwrap();
    sim.published.clear();
    sim.trigger("hr", "delta-import", false, false);
    assert_eq!(story(&sim, "hr"), ["trigger-fired delta-import deferred"]);
    sim.control(Control::Resume, Some("hr")).unwrap();
    assert_eq!(
        story(&sim, "hr")[1..],
        [
            "queued delta-import",
            "control resume",
            "run-started delta-import",
            "state-changed idle->running",
        ]
    );
}

#[test]
fn a_run_started_outside_the_controller_is_published_when_found_and_when_ended() {
    let mut sim = Sim::new(Setup::default());
    sim.published.clear();
    sim.external_start("hr", "full-import");
    sim.advance(5);
    sim.deliver_all();
    sim.external_end(0);
    sim.advance(5);
    sim.deliver_all();
    let hr = story(&sim, "hr");
    assert_eq!(
        hr[..4],
        [
            "run-started full-import",
            "state-changed idle->running",
            "run-ended full-import success",
            "state-changed running->idle",
        ],
        "{hr:?}"
    );
    assert!(sim.published.iter().any(|e| matches!(
        e,
        ServiceEvent::RunEnded {
            request: None,
            run_id: Some(1),
            ..
        }
    )));
}

#[test]
fn the_service_publishes_its_start_and_its_graceful_stop_around_the_cancelled_run() {
    let mut sim = Sim::new(Setup::default());
    assert!(matches!(
        sim.published[0],
        ServiceEvent::Service {
            state: ServiceState::Started,
            ..
        }
    ));
    sim.trigger("hr", "delta-import", false, false);
    sim.published.clear();
    sim.stop_and_start();
    let service: Vec<ServiceState> = sim
        .published
        .iter()
        .filter_map(|e| match e {
            ServiceEvent::Service { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        service,
        [
            ServiceState::Stopping,
            ServiceState::Stopped,
            ServiceState::Started
        ]
    );
    let position =
        |pred: &dyn Fn(&ServiceEvent) -> bool| sim.published.iter().position(pred).unwrap();
    let cancelled = position(&|e| {
        matches!(
            e,
            ServiceEvent::RunEnded {
                status: Some(RunStatus::StoppedUserRequested),
                ..
            }
        )
    });
    let stopped = position(&|e| {
        matches!(
            e,
            ServiceEvent::Service {
                state: ServiceState::Stopped,
                ..
            }
        )
    });
    assert!(cancelled < stopped);
    // The new service starts from nothing known: every MA appears again.
    assert_eq!(
        story(&sim, "app")
            .into_iter()
            .filter(|s| s.starts_with("state-changed none->"))
            .count(),
        1
    );
}

#[test]
fn a_state_name_is_the_state_the_status_writes() {
    use autosync_controller::machine::MaStateView;
    let views = [
        MaStateView::Idle,
        MaStateView::Running {
            profile: "export".into(),
            reason: "manual (cli)".into(),
            step: None,
            step_index: None,
            processed: 0,
            expected: None,
        },
        MaStateView::Waiting {
            reason: "maintenance mode".into(),
        },
        MaStateView::Stopped,
        MaStateView::Disabled,
        MaStateView::Failed {
            profile: "export".into(),
            status: RunStatus::StoppedServerDown,
            run_id: 3,
            attempts: 5,
            since: crate::support::at(0),
            error: None,
            next_retry: None,
        },
        MaStateView::ThresholdExceeded {
            run_id: 2,
            exceeded: vec!["deletes > 10%".into()],
            held: Vec::new(),
        },
        MaStateView::Queued,
    ];
    for view in views {
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["state"], view.name().as_str(), "{view:?}");
        assert_eq!(
            serde_json::to_value(view.name()).unwrap(),
            json["state"],
            "{view:?}"
        );
    }
}

/// The messages of the published notices of `kind`, in order.
fn notices(sim: &Sim, kind: NoticeKind) -> Vec<String> {
    sim.published
        .iter()
        .filter_map(|e| match e {
            ServiceEvent::Notice {
                kind: k, message, ..
            } if *k == kind => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Ends runs (the clock moving to each wake-up when nothing runs) until
/// a run of `profile` on `ma` has ended; returns its status.
fn finish(sim: &mut Sim, ma: &str, profile: &str) -> RunStatus {
    for _ in 0..1_000 {
        let mine = sim
            .flights
            .iter()
            .position(|f| f.request.ma == ma && f.request.profile == profile);
        match mine {
            Some(pick) => {
                let id = sim.flights[pick].run_id;
                sim.complete(pick, false);
                return sim.runs[&id].status;
            }
            None if !sim.flights.is_empty() => sim.complete(0, false),
            None => {
                let wake = sim.wake.expect("something is due");
                sim.advance_to(wake);
                sim.deliver_all();
            }
        }
    }
    panic!("no run of {profile} on {ma} ended");
}

/// Every notice that goes out by email and webhooks is on the stream
/// too: a run that failed (`run-failed`) and the profile's recovery
/// (`recovered`), each time (a black-box review: a pager bridge following
/// the stream saw neither). A good run of a profile that did not fail is
/// no recovery.
#[test]
fn a_failed_run_and_its_recovery_are_published_as_notices() {
    let mut sim = Sim::new(Setup::default());
    sim.world.down.insert("hr".into());
    *sim.world.source.get_mut("hr").unwrap() = 2;
    sim.trigger("hr", "delta-import", false, false);
    sim.published.clear();
    sim.complete_on("hr", false);
    assert_eq!(
        notices(&sim, NoticeKind::RunFailed),
        [
            "run 1 of `delta-import` on `hr` ended stopped-server-down at step 1 delta-import: the system of `hr` is down"
        ]
    );
    sim.world.down.remove("hr");
    assert_eq!(finish(&mut sim, "hr", "delta-import"), RunStatus::Success);
    let recovered = notices(&sim, NoticeKind::Recovered);
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert!(
        recovered[0].starts_with("`delta-import` on `hr` recovered: run 2 ended success"),
        "{}",
        recovered[0]
    );
    // Its follow-ups end well too: no recovery, they never failed.
    assert_eq!(finish(&mut sim, "hr", "delta-sync"), RunStatus::Success);
    assert_eq!(notices(&sim, NoticeKind::Recovered).len(), 1);
    let event = sim
        .published
        .iter()
        .find(|e| {
            matches!(
                e,
                ServiceEvent::Notice {
                    kind: NoticeKind::Recovered,
                    ..
                }
            )
        })
        .unwrap();
    let json = serde_json::to_value(event).unwrap();
    assert_eq!(json["type"], "notice");
    assert_eq!(json["kind"], "recovered");
    assert_eq!(json["ma"], "hr");
}

/// An import over a staging threshold holds its MA's syncs until an
/// operator approves or rejects: a later run of the profile that ends
/// well (an import reading nothing new) is no recovery while the hold
/// waits (a black-box review: `recovered` went out while nothing of `hr`
/// could flow). The first good run once approved is.
#[test]
fn a_good_run_while_a_staging_threshold_waits_is_no_recovery() {
    let mut sim = Sim::new(Setup {
        threshold: Some(3),
        ..Setup::default()
    });
    *sim.world.source.get_mut("hr").unwrap() = 10;
    sim.trigger("hr", "delta-import", false, false);
    assert_eq!(
        finish(&mut sim, "hr", "delta-import"),
        RunStatus::StoppedStagingThresholdExceeded
    );
    assert_eq!(notices(&sim, NoticeKind::RunFailed).len(), 1);
    sim.trigger("hr", "delta-import", false, false);
    assert_eq!(finish(&mut sim, "hr", "delta-import"), RunStatus::Success);
    assert_eq!(
        sim.machine.status(|_| None).mas["hr"].state.name(),
        MaStateName::ThresholdExceeded
    );
    // (Good runs of other profiles tell the notifier too, to forget any
    // failure of theirs it may hold: not these.)
    let recovered = |sim: &Sim| {
        sim.notices
            .iter()
            .filter(|n| matches!(n, Notice::Recovered { profile, .. } if profile == "delta-import"))
            .count()
    };
    assert_eq!(recovered(&sim), 0, "{:?}", sim.notices);
    assert!(notices(&sim, NoticeKind::Recovered).is_empty());
    // Still failing, across a restart.
    sim.stop_and_start();
    sim.control(Control::Approve, Some("hr")).unwrap();
    assert_eq!(finish(&mut sim, "hr", "delta-sync"), RunStatus::Success);
    assert_eq!(recovered(&sim), 0, "the profile did not run yet");
    sim.trigger("hr", "delta-import", false, false);
    assert_eq!(finish(&mut sim, "hr", "delta-import"), RunStatus::Success);
    assert_eq!(recovered(&sim), 1, "{:?}", sim.notices);
    assert!(sim.notices.iter().any(|n| matches!(
        n,
        Notice::Recovered { ma, profile, .. } if ma == "hr" && profile == "delta-import"
    )));
}

/// Maintenance mode and paused triggers are no MA state: each control an
/// operator carried out is published (`control`) with who asked and the
/// service's answer; a refused one is not.
#[test]
fn maintenance_and_paused_triggers_are_published_as_controls() {
    let mut sim = Sim::new(Setup::default());
    sim.published.clear();
    sim.control(Control::Maintenance, None).unwrap();
    sim.control(Control::EndMaintenance, None).unwrap();
    sim.control(Control::EndMaintenance, None).unwrap_err();
    sim.control(Control::Pause, Some("hr")).unwrap();
    sim.control(Control::Resume, None).unwrap();
    let controls: Vec<(Control, Option<String>, String, String)> = sim
        .published
        .iter()
        .filter_map(|e| match e {
            ServiceEvent::Control {
                action,
                ma,
                by,
                message,
                ..
            } => Some((*action, ma.clone(), by.clone(), message.clone())),
            _ => None,
        })
        .collect();
    let actions: Vec<(Control, Option<&str>)> = controls
        .iter()
        .map(|(a, ma, _, _)| (*a, ma.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            (Control::Maintenance, None),
            (Control::EndMaintenance, None),
            (Control::Pause, Some("hr")),
            (Control::Resume, None),
        ]
    );
    assert!(controls.iter().all(|(_, _, by, _)| by == "sim"));
    assert!(
        controls[0].3.starts_with("maintenance mode on"),
        "{controls:?}"
    );
    assert!(
        controls[2].3.starts_with("paused the triggers of `hr`"),
        "{controls:?}"
    );
    let json = serde_json::to_value(
        sim.published
            .iter()
            .find(|e| e.kind() == "control")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["type"], "control");
    assert_eq!(json["action"], "maintenance");
    assert_eq!(json["by"], "sim");
    assert!(json.get("ma").is_none(), "{json}");
    assert_eq!(story(&sim, "hr"), ["control pause"]);
}

/// A trigger's error names its trigger once: the trigger's own message
/// (`trigger T on MA `hr` failed: why`) is not prefixed by the trigger
/// again (an API integrator's review); the notifier gets the why alone.
#[test]
fn a_trigger_error_names_its_trigger_once() {
    let mut sim = Sim::new(Setup::default());
    sim.published.clear();
    let trigger = "script throws (every 2s, throw.rhai)";
    sim.handle(Event::TriggerFailed {
        ma: "hr".into(),
        trigger: trigger.into(),
        message: format!("trigger {trigger} on MA `hr` failed: Runtime error: boom"),
    });
    assert_eq!(
        notices(&sim, NoticeKind::TriggerError),
        ["trigger script throws (every 2s, throw.rhai) failed: Runtime error: boom"]
    );
    assert!(sim.notices.iter().any(|n| matches!(
        n,
        Notice::TriggerError { message, .. } if message == "Runtime error: boom"
    )));
}

/// A good run tells the notifier even when the machine saw no failure of
/// its profile: the notifier may hold one the machine does not know
/// (noted before an upgrade, or before a crash between their two saves),
/// which it then forgets, saying it recovered if it notified it (a code
/// review: such a failure was never cleared, and its next occurrence was
/// suppressed as a repeat). Not published: the machine saw no failure.
#[test]
fn a_good_run_tells_the_notifier_even_of_a_failure_only_it_knows() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "delta-import", false, false);
    finish(&mut sim, "hr", "delta-import");
    assert!(
        sim.notices.iter().any(
            |n| matches!(n, Notice::Recovered { ma, profile, .. } if ma == "hr" && profile == "delta-import")
        ),
        "{:?}",
        sim.notices
    );
    assert!(notices(&sim, NoticeKind::Recovered).is_empty());
}
