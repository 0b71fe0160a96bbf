//! What the machine publishes, on the simulated world and its clock: a
//! run's life in order (queued, run-started, state-changed, run-ended),
//! a threshold's notice and state, progress only when it moved, trigger
//! requests deferred while paused, runs started outside the controller,
//! and the service's own start and stop. (That the published
//! `state-changed` events always replay to the status is checked after
//! every event by the simulation itself, and by a property test.)

use crate::sim::{Setup, Sim};
use autosync_controller::machine::{Event, MaStateName, NoticeKind, ServiceEvent, ServiceState};
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
            reason: "waiting: maintenance mode".into(),
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
