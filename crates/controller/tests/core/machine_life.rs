//! The state machine's life: start-up after a crash (the persisted state
//! round-tripped and reconciled with the store's runs), reload planning,
//! the graceful stop, quiescence for `--once`, the hooks' decisions, and
//! full syncs after a rule change.

use crate::sim::{Setup, Sim};
use autosync_controller::machine::{
    AfterDecision, Effect, Event, Machine, Notice, Options, RunEnd, RunFacts, RunOutcome, Startup,
    WatchedFile,
};
use autosync_controller::{Control, EngineCallError, Request};
use autosync_model::{RunReason, RunRecord, RunStatus};

fn ran(sim: &Sim, ma: &str, profile: &str) -> usize {
    sim.starts
        .iter()
        .filter(|s| s.ma == ma && s.profile == profile)
        .count()
}

#[test]
fn a_request_whose_run_died_with_the_service_runs_again_after_the_restart() {
    let mut sim = Sim::new(Setup::default());
    *sim.world.source.get_mut("hr").unwrap() = 1;
    sim.trigger("hr", "delta-import", false, false);
    assert_eq!(ran(&sim, "hr", "delta-import"), 1);
    sim.crash(false);
    assert_eq!(sim.runs[&1].status, RunStatus::StoppedServer);
    assert_eq!(
        ran(&sim, "hr", "delta-import"),
        2,
        "queued again and started"
    );
    sim.check_no_request_lost();
}

#[test]
fn a_request_whose_run_died_is_not_mistaken_for_an_earlier_run_of_the_same_second() {
    // The store keeps whole seconds: an earlier run of the same profile,
    // for the same reason, that started and ended in the second the dead
    // run started in, must not count as the dead run's completion.
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "delta-import", false, false);
    // The service dies just after the run ended (nothing staged: nothing
    // follows it).
    sim.crash(true);
    assert_eq!(sim.runs[&1].status, RunStatus::Success);
    assert!(sim.flights.is_empty());
    sim.trigger("hr", "delta-import", false, false);
    let dead = sim.starts.last().unwrap().run_id;
    assert_eq!(sim.runs[&dead].profile, "delta-import");
    assert_eq!(
        sim.runs[&1].started_at, sim.runs[&dead].started_at,
        "both runs start in the same second"
    );
    sim.crash(false);
    assert_eq!(sim.runs[&dead].status, RunStatus::StoppedServer);
    assert_eq!(
        ran(&sim, "hr", "delta-import"),
        3,
        "the dead run's request is queued again and started"
    );
    sim.check_no_request_lost();
}

#[test]
fn a_request_whose_run_completed_before_the_crash_is_not_run_again_and_its_follow_ups_are_found() {
    let mut sim = Sim::new(Setup::default());
    *sim.world.source.get_mut("hr").unwrap() = 1;
    sim.trigger("hr", "delta-import", false, false);
    sim.crash(true);
    assert_eq!(ran(&sim, "hr", "delta-import"), 1, "not run twice");
    // Reconciliation at start found the staged change: the sync follows.
    assert_eq!(ran(&sim, "hr", "delta-sync"), 1);
    let sync = &sim.flights[0].request;
    assert!(matches!(sync.reason, RunReason::Reconciliation { .. }));
}

#[test]
fn the_persisted_state_keeps_queues_stops_pauses_and_thresholds_across_a_restart() {
    let mut sim = Sim::new(Setup {
        threshold: Some(1),
        ..Setup::default()
    });
    *sim.world.source.get_mut("hr").unwrap() = 5;
    sim.control(Control::Stop, Some("app")).unwrap();
    sim.stopped_mas.push("app".into());
    sim.trigger("app", "full-import", false, false);
    sim.control(Control::Pause, Some("ad")).unwrap();
    sim.trigger("ad", "delta-import", false, false);
    sim.trigger("hr", "delta-import", false, false);
    sim.complete_on("hr", false);
    sim.crash(false);
    let status = sim.machine.status(|_| None);
    assert_eq!(status.mas["app"].queue.len(), 1);
    assert!(status.mas["ad"].paused);
    assert_eq!(status.mas["ad"].deferred.len(), 1);
    assert!(matches!(
        status.mas["hr"].state,
        autosync_controller::machine::MaStateView::ThresholdExceeded { .. }
    ));
    assert_eq!(sim.restarts, 1);
    sim.check_no_request_lost();
}

#[test]
fn a_graceful_stop_cancels_what_runs_and_keeps_its_request_for_the_next_start() {
    let mut sim = Sim::new(Setup::default());
    *sim.world.source.get_mut("hr").unwrap() = 4;
    sim.trigger("hr", "delta-import", false, false);
    sim.trigger("app", "full-import", false, false);
    sim.stop_and_start();
    let cancelled = sim.runs[&1].clone();
    assert_eq!(cancelled.status, RunStatus::StoppedUserRequested);
    // The service's own stop is no failure: nobody is paged for it (an
    // operations review: every planned restart sent run-failed).
    assert!(
        !sim.notices
            .iter()
            .any(|n| matches!(n, Notice::RunFailed(r) if r.id == cancelled.id)),
        "{:?}",
        sim.notices
    );
    let kept = sim.machine.state().queues.get("hr").is_some_and(|q| {
        q.iter()
            .any(|r| r.profile == "delta-import" && r.run_immediate)
    }) || sim
        .flights
        .iter()
        .any(|f| f.request.profile == "delta-import");
    assert!(kept, "{:?}", sim.machine.state().queues);
    let mut n = 0;
    sim.settle(
        || {
            n += 1;
            (n, false)
        },
        1_000,
    )
    .expect("settles");
    assert_eq!(ran(&sim, "hr", "delta-import"), 2);
    sim.check_no_request_lost();
}

#[test]
fn a_reload_drops_only_the_requests_it_cannot_run_and_restarts_changed_triggers() {
    let mut sim = Sim::new(Setup::default());
    sim.control(Control::Stop, Some("hr")).unwrap();
    sim.trigger("hr", "import-sync", false, false);
    sim.trigger("hr", "full-import", false, false);
    let message = sim.reload(true, false);
    assert!(message.contains("changed: ad, app, hr, ldap"), "{message}");
    assert!(
        message.contains("dropped queued requests: hr import-sync"),
        "{message}"
    );
    assert_eq!(sim.trigger_restarts, 4);
    let queue: Vec<String> = sim
        .machine
        .state()
        .queues
        .get("hr")
        .unwrap()
        .iter()
        .map(|r| r.profile.clone())
        .collect();
    assert_eq!(queue, vec!["full-import".to_owned()]);
}

/// A request waiting for resume (paused triggers) for a profile the new
/// configuration removed is dropped and named too, not queued on resume.
#[test]
fn a_reload_drops_a_waiting_request_for_a_removed_profile_and_says_so() {
    let mut sim = Sim::new(Setup::default());
    sim.control(Control::Pause, Some("hr")).unwrap();
    sim.trigger("hr", "import-sync", false, false);
    sim.trigger("hr", "full-import", false, false);
    assert_eq!(sim.machine.state().mas["hr"].deferred.len(), 2);
    let message = sim.reload(true, false);
    assert!(message.contains("hr import-sync"), "{message}");
    let deferred: Vec<&str> = sim.machine.state().mas["hr"]
        .deferred
        .iter()
        .map(|r| r.profile.as_str())
        .collect();
    assert_eq!(deferred, vec!["full-import"]);
    sim.control(Control::Resume, Some("hr")).unwrap();
    sim.deliver_all();
    assert_eq!(ran(&sim, "hr", "import-sync"), 0);
    assert_eq!(ran(&sim, "hr", "full-import"), 1);
}

#[test]
fn a_reload_that_changes_sync_rules_says_which_full_syncs_are_needed() {
    let mut sim = Sim::new(Setup::default());
    let message = sim.reload(false, true);
    assert!(
        message.contains("these need a full sync") && message.contains("hr full-sync"),
        "{message}"
    );
    sim.deliver_all();
    assert!(
        sim.notices
            .iter()
            .any(|n| matches!(n, Notice::FullSyncNeeded { ma, .. } if ma == "hr"))
    );
    let status = sim.machine.status(|_| None);
    assert!(status.mas["hr"].full_sync_needed.is_some());
    sim.trigger("hr", "full-sync", false, false);
    // The import the reload asked for (hr's triggers restarted), then the
    // full sync.
    for _ in 0..4 {
        if sim.flights.iter().any(|f| f.request.ma == "hr") {
            sim.complete_on("hr", false);
            sim.deliver_all();
        }
    }
    let status = sim.machine.status(|_| None);
    assert_eq!(status.mas["hr"].full_sync_needed, None, "the full sync ran");
}

#[test]
fn with_full_sync_on_rule_change_the_full_sync_is_queued_at_start() {
    let mut config = Setup::default().config(0);
    config.full_sync_on_rule_change = true;
    let mut machine = Machine::new(config, Options::default());
    let startup = Startup {
        full_syncs_needed: Ok(vec![("hr".into(), "the rules changed".into())]),
        ..Startup::default()
    };
    let effects = machine.handle(Event::Started(Box::new(startup)), crate::support::at(0));
    let started: Vec<(String, String)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Start(r) => Some((r.ma.clone(), r.profile.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![("hr".to_owned(), "full-sync".to_owned())]);
}

/// Handles `event`, answering the reads it asks for (nothing found).
fn answer_reads(
    machine: &mut Machine,
    event: Event,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Effect> {
    let effects = machine.handle(event, now);
    for e in &effects {
        let answer = match e {
            Effect::ReadCounts { .. } => Event::Counts(Default::default()),
            Effect::LookForRuns { .. } => Event::RunsSeen(Ok(Vec::new())),
            Effect::CheckRules => Event::RulesChecked(Ok(Vec::new())),
            _ => continue,
        };
        machine.handle(answer, now);
    }
    effects
}

/// Changes made while the service was stopped: a watched file written
/// after its MA's last import (or whose MA never imported) asks for its
/// import at start; one written before does not; an MA that does not
/// start by itself (`auto_start = false`) is left to its operator.
#[test]
fn a_watched_file_written_while_the_service_was_stopped_asks_for_its_import_at_start() {
    let mut config = Setup::default().config(0);
    config.mas.get_mut("ad").unwrap().auto_start = false;
    let mut machine = Machine::new(config, Options::default());
    let now = crate::support::at(100);
    // The simulated `ldap` has no delta import.
    let profile = |ma: &str| {
        if ma == "ldap" {
            "full-import"
        } else {
            "delta-import"
        }
    };
    let file = |ma: &str, modified: i64, last: Option<i64>| WatchedFile {
        request: Request::trigger(ma, profile(ma), "file"),
        modified: crate::support::at(modified),
        last_import: last.map(crate::support::at),
    };
    let startup = Startup {
        watched: vec![
            file("hr", 50, Some(40)),  // written after the last import
            file("app", 30, Some(40)), // written before it
            file("ldap", 30, None),    // never imported
            file("ad", 50, Some(40)),  // does not start by itself
        ],
        ..Startup::default()
    };
    let effects = machine.handle(Event::Started(Box::new(startup)), now);
    let mut started: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Start(r) => Some(r.ma.clone()),
            _ => None,
        })
        .collect();
    let queued = |ma: &str| {
        machine
            .state()
            .queues
            .get(ma)
            .is_some_and(|q| q.iter().any(|r| r.profile == profile(ma)))
    };
    for ma in ["hr", "ldap"] {
        if queued(ma) {
            started.push(ma.to_owned());
        }
    }
    assert!(started.contains(&"hr".to_owned()), "{started:?}");
    assert!(started.contains(&"ldap".to_owned()), "{started:?}");
    assert!(
        !started.contains(&"app".to_owned()) && !queued("app"),
        "{started:?}"
    );
    assert!(
        !started.contains(&"ad".to_owned()) && !queued("ad"),
        "{started:?}"
    );
}

#[test]
fn once_ends_when_nothing_is_left_but_not_while_a_retry_waits_unless_the_ma_failed() {
    let config = Setup::default().config(0);
    let mut machine = Machine::new(
        config,
        Options {
            once: true,
            seed: 1,
        },
    );
    let now = crate::support::at(0);
    assert!(!machine.quiescent(), "not before the start");
    let startup = Startup {
        initial: vec![Request::trigger("hr", "delta-import", "file")],
        ..Startup::default()
    };
    machine.handle(Event::Started(Box::new(startup)), now);
    assert!(!machine.quiescent(), "a run is in flight");
    let mut record = autosync_model::RunRecord {
        id: 1,
        ma: "hr".into(),
        profile: "delta-import".into(),
        status: RunStatus::StoppedServerDown,
        started_at: now,
        ended_at: Some(now),
        reason: RunReason::Trigger {
            trigger: "file".into(),
        },
        steps: Vec::new(),
    };
    let end = |record: &autosync_model::RunRecord| {
        Event::RunEnded(Box::new(RunEnd {
            ma: "hr".into(),
            outcome: RunOutcome::Ran(record.clone()),
            after: AfterDecision::Continue,
            facts: RunFacts::default(),
        }))
    };
    let mut t = now;
    for attempt in 1..=3 {
        answer_reads(&mut machine, end(&record), t);
        if attempt <= 2 {
            assert!(!machine.quiescent(), "a retry waits (attempt {attempt})");
            t += chrono::Duration::seconds(60);
            let effects = answer_reads(&mut machine, Event::Tick, t);
            assert!(effects.iter().any(|e| matches!(e, Effect::Start(_))));
            record.id += 1;
        }
    }
    assert!(
        machine.quiescent(),
        "a failed MA does not keep --once running"
    );
    let effects = machine.handle(Event::Shutdown, t);
    assert!(effects.contains(&Effect::Stopped));
    assert_eq!(machine.summary().queued, 1, "its request stays queued");
}

/// With `--once`, an MA whose runs cannot start time after time (the
/// store's disk full) is given up on, as a failed MA is: `run --once`
/// ends and says why (found by a black-box review: it logged an error a
/// second for as long as the disk stayed full, from cron). Each try waits
/// the retry policy's growing backoff (it was every 5 s, with three log
/// lines each, for as long as the disk stayed full).
#[test]
fn once_gives_up_on_an_ma_whose_runs_cannot_start_again_and_again() {
    let config = Setup::default().config(0);
    let mut machine = Machine::new(
        config,
        Options {
            once: true,
            seed: 1,
        },
    );
    let now = crate::support::at(0);
    let startup = Startup {
        initial: vec![Request::trigger("hr", "delta-import", "file")],
        ..Startup::default()
    };
    machine.handle(Event::Started(Box::new(startup)), now);
    let not_started = || {
        Event::RunEnded(Box::new(RunEnd {
            ma: "hr".into(),
            outcome: RunOutcome::NotStarted(EngineCallError::Unavailable {
                message: "store: database or disk is full".into(),
            }),
            after: AfterDecision::Continue,
            facts: RunFacts::default(),
        }))
    };
    let mut t = now;
    for attempt in 1..=5 {
        answer_reads(&mut machine, not_started(), t);
        if attempt < 5 {
            assert!(!machine.quiescent(), "tried again (attempt {attempt})");
            assert!(machine.summary().unavailable.is_empty());
            // The retry policy's backoff (5 s × attempt ± 10 %): not
            // before it, and once it is over.
            t += chrono::Duration::seconds(4 * i64::from(attempt));
            let early = answer_reads(&mut machine, Event::Tick, t);
            assert!(
                !early.iter().any(|e| matches!(e, Effect::Start(_))),
                "attempt {attempt} waits its backoff: {early:?}"
            );
            t += chrono::Duration::seconds(2 * i64::from(attempt));
            let effects = answer_reads(&mut machine, Event::Tick, t);
            assert!(
                effects.iter().any(|e| matches!(e, Effect::Start(_))),
                "{effects:?}"
            );
        }
    }
    assert!(machine.quiescent(), "given up: --once ends");
    assert_eq!(
        machine.summary().unavailable,
        vec![(
            "hr".to_owned(),
            "the engine is unavailable: store: database or disk is full".to_owned()
        )]
    );
}

#[test]
fn the_after_hook_may_stop_the_ma_or_the_service_and_a_skipped_run_has_no_follow_ups() {
    let config = Setup::default().config(0);
    let mut machine = Machine::new(config, Options::default());
    let now = crate::support::at(0);
    let startup = Startup {
        initial: vec![
            Request::trigger("hr", "delta-import", "file"),
            Request::trigger("app", "delta-import", "file"),
        ],
        ..Startup::default()
    };
    machine.handle(Event::Started(Box::new(startup)), now);
    let skipped = machine.handle(
        Event::RunEnded(Box::new(RunEnd {
            ma: "app".into(),
            outcome: RunOutcome::Skipped("maintenance window".into()),
            after: AfterDecision::Continue,
            facts: RunFacts::default(),
        })),
        now,
    );
    assert!(!skipped.iter().any(|e| matches!(e, Effect::Start(_))));
    let record = autosync_model::RunRecord {
        id: 1,
        ma: "hr".into(),
        profile: "delta-import".into(),
        status: RunStatus::Success,
        started_at: now,
        ended_at: Some(now),
        reason: RunReason::Trigger {
            trigger: "file".into(),
        },
        steps: Vec::new(),
    };
    let effects = machine.handle(
        Event::RunEnded(Box::new(RunEnd {
            ma: "hr".into(),
            outcome: RunOutcome::Ran(record),
            after: AfterDecision::StopService {
                reason: "too many deletes".into(),
            },
            facts: RunFacts::default(),
        })),
        now,
    );
    assert!(effects.contains(&Effect::StopService {
        reason: "too many deletes".into()
    }));
}

#[test]
fn a_sync_held_by_a_threshold_is_persisted_with_it_and_survives_a_crash() {
    let mut sim = Sim::new(Setup {
        threshold: Some(2),
        ..Setup::default()
    });
    *sim.world.source.get_mut("ad").unwrap() = 3;
    sim.trigger("ad", "delta-import", false, false);
    sim.complete_on("ad", false);
    sim.trigger("ad", "full-sync", false, true);
    sim.crash(false);
    let held: Vec<(String, bool)> = sim.machine.state().mas["ad"]
        .threshold
        .as_ref()
        .map(|t| {
            t.held
                .iter()
                .map(|r| (r.profile.clone(), r.exclusive))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        held,
        vec![
            ("delta-sync".to_owned(), false),
            ("full-sync".to_owned(), true)
        ]
    );
    sim.check_no_request_lost();
}

#[test]
fn a_run_started_outside_the_service_keeps_it_from_being_quiescent_until_it_ends() {
    // `--once` must not end while another process imports: the import's
    // follow-ups (the delta sync) are the service's to run.
    let mut sim = Sim::new(Setup {
        echoes: Some(0),
        ..Setup::default()
    });
    *sim.world.source.get_mut("app").unwrap() = 1;
    sim.external_start("app", "full-import");
    sim.advance(62);
    sim.deliver_all();
    assert!(
        sim.published.iter().any(|e| matches!(
            e,
            autosync_controller::machine::ServiceEvent::RunStarted { request: None, .. }
        )),
        "the machine saw the run in progress"
    );
    assert!(
        !sim.machine.quiescent(),
        "a run in progress outside the service"
    );
    sim.settle(|| (0, false), 1_000).expect("settles");
    assert!(
        sim.world.quiescent(),
        "the import's follow-ups ran: {:?}",
        sim.world.cs
    );
    assert_eq!(ran(&sim, "app", "delta-sync"), 1);
}

#[test]
fn an_export_stopped_at_the_deletion_threshold_shows_until_approved_or_rejected() {
    use autosync_controller::machine::{MaStateName, MaStateView, RunFacts};
    use autosync_model::{StepCounters, StepRecord, StepType};
    let mut sim = Sim::new(Setup::default());
    let state = |sim: &Sim| sim.machine.status(|_| None).mas["app"].state.clone();
    for answer in ["approve", "reject"] {
        sim.queue("app", "export");
        let flight = sim
            .flights
            .iter()
            .position(|f| f.request.ma == "app")
            .expect("the export runs");
        let flight = sim.flights.remove(flight);
        let mut record = sim.runs[&flight.run_id].clone();
        record.status = RunStatus::StoppedDeletionThresholdExceeded;
        record.ended_at = Some(sim.now);
        record.steps.push(StepRecord {
            step_type: StepType::Export,
            status: RunStatus::StoppedDeletionThresholdExceeded,
            started_at: sim.now,
            ended_at: Some(sim.now),
            counters: StepCounters::for_step(StepType::Export),
            errors: 0,
            message: Some("12 pending export deletes exceed the deletion threshold".into()),
        });
        sim.runs.insert(record.id, record.clone());
        sim.world.deletion_stopped.insert("app".into());
        let run_id = record.id;
        sim.handle(Event::RunEnded(Box::new(RunEnd {
            ma: "app".into(),
            outcome: RunOutcome::Ran(record),
            after: Default::default(),
            facts: RunFacts {
                deletion_stop: Some("export stopped at the deletion threshold: 12 pending deletes, at most 10 of 100 objects".into()),
                ..RunFacts::default()
            },
        })));
        sim.deliver_all();
        match state(&sim) {
            MaStateView::ThresholdExceeded {
                run_id: r,
                exceeded,
                held,
            } => {
                assert_eq!(r, run_id);
                assert!(exceeded[0].contains("12 pending deletes"), "{exceeded:?}");
                assert!(held.is_empty());
            }
            other => panic!("{answer}: expected threshold-exceeded, got {other:?}"),
        }
        assert!(
            sim.published.iter().any(|e| matches!(e, autosync_controller::machine::ServiceEvent::StateChanged { ma, to: Some(MaStateName::ThresholdExceeded), .. } if ma == "app")),
            "a state change says so"
        );
        let control = if answer == "approve" {
            Control::Approve
        } else {
            Control::Reject
        };
        sim.control(control, Some("app"))
            .unwrap_or_else(|e| panic!("{answer}: {e}"));
        sim.deliver_all();
        assert_ne!(
            state(&sim).name(),
            MaStateName::ThresholdExceeded,
            "after {answer}"
        );
        sim.settle(|| (0, false), 1_000).expect("settles");
    }
}

/// A reject of an export stopped at the deletion threshold drops its
/// deletes; the other changes it carried (6 updates here) are exported
/// now, as an approval's would be (they waited for the hourly
/// reconciliation: a black-box review).
#[test]
fn a_rejected_export_stop_sends_the_other_pending_exports() {
    use autosync_controller::machine::RunFacts;
    let mut sim = Sim::new(Setup::default());
    sim.queue("app", "export");
    let flight = sim
        .flights
        .iter()
        .position(|f| f.request.ma == "app")
        .expect("the export runs");
    let flight = sim.flights.remove(flight);
    let mut record = sim.runs[&flight.run_id].clone();
    record.status = RunStatus::StoppedDeletionThresholdExceeded;
    record.ended_at = Some(sim.now);
    record.steps.push(autosync_model::StepRecord {
        step_type: autosync_model::StepType::Export,
        status: RunStatus::StoppedDeletionThresholdExceeded,
        started_at: sim.now,
        ended_at: Some(sim.now),
        counters: autosync_model::StepCounters::for_step(autosync_model::StepType::Export),
        errors: 0,
        message: Some("12 pending export deletes exceed the deletion threshold".into()),
    });
    sim.runs.insert(record.id, record.clone());
    sim.world.deletion_stopped.insert("app".into());
    sim.handle(Event::RunEnded(Box::new(RunEnd {
        ma: "app".into(),
        outcome: RunOutcome::Ran(record),
        after: Default::default(),
        facts: RunFacts {
            deletion_stop: Some("export stopped at the deletion threshold: 12 pending deletes, at most 10 of 100 objects".into()),
            ..RunFacts::default()
        },
    })));
    sim.deliver_all();
    sim.world.cs.entry("app".into()).or_default().pending_export = 6;
    let answer = sim.control(Control::Reject, Some("app")).expect("rejected");
    sim.deliver_all();
    assert!(answer.contains("export is queued"), "{answer}");
    let exporting = sim
        .flights
        .iter()
        .any(|f| f.request.ma == "app" && f.request.profile == "export")
        || sim.machine.status(|_| None).mas["app"]
            .queue
            .iter()
            .any(|q| q.profile == "export");
    assert!(exporting, "the export of what is left runs or waits");
}

#[test]
fn a_long_running_service_keeps_a_bounded_summary_of_its_runs() {
    use autosync_controller::machine::SUMMARY_RUNS;
    let mut sim = Sim::new(Setup::default());
    let n = SUMMARY_RUNS + 5;
    for _ in 0..n {
        sim.trigger("ldap", "full-import", false, false);
        sim.settle(|| (0, false), 100).expect("settles");
    }
    sim.handle(Event::Shutdown);
    sim.deliver_all();
    let summary = sim.machine.summary();
    assert!(summary.ended >= n as u64, "{}", summary.ended);
    assert_eq!(summary.runs.len(), SUMMARY_RUNS);
    let newest = sim
        .runs
        .values()
        .filter(|r| r.ended_at.is_some())
        .map(|r| r.id)
        .max();
    assert_eq!(
        summary.runs.last().map(|r| r.id),
        newest,
        "the newest runs are kept"
    );
}

/// A reload that changes a source restarts its triggers: a change the old
/// ones had seen and not yet asked for (a debounce window, a poll between
/// two reads) is asked for by one import, never lost (found by a
/// black-box review: a file changed half a second before the reload stayed
/// out of the targets until the next change).
#[test]
fn a_reload_that_restarts_a_sources_triggers_should_ask_for_one_import() {
    let mut config = Setup::default().config(0);
    for (name, m) in &mut config.mas {
        m.imports = name == "hr";
        m.fingerprint = format!("{name}-1");
    }
    let mut machine = Machine::new(config.clone(), Options::default());
    let now = crate::support::at(100);
    answer_reads(&mut machine, Event::Started(Box::default()), now);
    let queued = |machine: &Machine, ma: &str| {
        machine
            .state()
            .queues
            .get(ma)
            .is_some_and(|q| q.iter().any(|r| r.profile == "delta-import"))
    };
    let started = |effects: &[Effect], ma: &str| {
        effects
            .iter()
            .any(|e| matches!(e, Effect::Start(r) if r.ma == ma))
    };
    // Every MA's definition changes; only the source imports.
    for m in config.mas.values_mut() {
        m.fingerprint.push_str("-2");
    }
    let effects = machine.handle(
        Event::Reload {
            reply: autosync_controller::machine::ReplyId(1),
            config: Box::new(config),
        },
        crate::support::at(110),
    );
    assert!(
        started(&effects, "hr") || queued(&machine, "hr"),
        "{effects:?}"
    );
    assert!(!started(&effects, "app") && !queued(&machine, "app"));
}

/// An MA added by a reload (back after being removed) gets what its
/// connector space holds reconciled at once: its pending exports go out
/// now, not at the next hourly reconciliation (found by a black-box
/// review: 30,000 pending exports waited).
#[test]
fn a_reload_that_adds_an_ma_should_reconcile_at_once() {
    let full = Setup::default().config(0);
    let mut without = full.clone();
    without.mas.remove("app");
    let mut machine = Machine::new(without, Options::default());
    let now = crate::support::at(100);
    answer_reads(&mut machine, Event::Started(Box::default()), now);
    let effects = machine.handle(
        Event::Reload {
            reply: autosync_controller::machine::ReplyId(1),
            config: Box::new(full),
        },
        crate::support::at(110),
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::ReadCounts { mas } if mas.contains(&"app".to_owned()))),
        "{effects:?}"
    );
}

/// A reload that changes the rules while a full sync runs: that full sync
/// ran on the rules before, so the full sync is still needed after it (a
/// review: the flag went, and the new rules were never applied); the next
/// full sync clears it.
#[test]
fn a_full_sync_running_across_a_reload_leaves_the_full_sync_needed() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "full-sync", false, false);
    assert!(sim.flights.iter().any(|f| f.request.ma == "hr"));
    sim.advance(5);
    let message = sim.reload(false, true);
    assert!(message.contains("hr full-sync"), "{message}");
    sim.deliver_all();
    sim.complete_on("hr", false);
    sim.deliver_all();
    let status = sim.machine.status(|_| None);
    assert!(
        status.mas["hr"].full_sync_needed.is_some(),
        "the full sync that ran began before the reload"
    );
    sim.advance(5);
    sim.trigger("hr", "full-sync", false, false);
    for _ in 0..4 {
        if sim.flights.iter().any(|f| f.request.ma == "hr") {
            sim.complete_on("hr", false);
            sim.deliver_all();
        }
    }
    let status = sim.machine.status(|_| None);
    assert_eq!(status.mas["hr"].full_sync_needed, None, "the full sync ran");
}

/// The same when the reload changes the metaverse alone (precedence or
/// deletion rules, no MA's flows): the full sync running across it ran on
/// the metaverse before (a code review: only an MA's rules counted).
#[test]
fn a_full_sync_running_across_a_metaverse_only_reload_leaves_the_full_sync_needed() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "full-sync", false, false);
    assert!(sim.flights.iter().any(|f| f.request.ma == "hr"));
    sim.advance(5);
    let message = sim.reload_metaverse();
    assert!(message.contains("the metaverse changed"), "{message}");
    sim.deliver_all();
    sim.complete_on("hr", false);
    sim.deliver_all();
    let status = sim.machine.status(|_| None);
    assert!(
        status.mas["hr"].full_sync_needed.is_some(),
        "the full sync that ran began before the metaverse changed"
    );
}

/// Rules changed, then put back as they were at the last full sync (a
/// reload undone): no full sync is needed any more.
#[test]
fn a_reload_that_puts_the_rules_back_clears_the_full_sync_needed() {
    let mut sim = Sim::new(Setup::default());
    sim.reload(false, true);
    sim.deliver_all();
    assert!(
        sim.machine.status(|_| None).mas["hr"]
            .full_sync_needed
            .is_some()
    );
    sim.reload(false, false);
    sim.deliver_all();
    assert_eq!(
        sim.machine.status(|_| None).mas["hr"].full_sync_needed,
        None
    );
}

/// Runs an earlier process left in progress (a crash, a kill), closed at
/// start, are notified as runs ending `stopped-server` (an operations
/// review: a service killed and restarted told nobody).
#[test]
fn runs_closed_at_start_after_a_crash_are_notified() {
    let mut machine = Machine::new(Setup::default().config(0), Options::default());
    let closed = RunRecord {
        id: 4,
        ma: "hr".into(),
        profile: "delta-sync".into(),
        status: RunStatus::StoppedServer,
        started_at: crate::support::at(0),
        ended_at: Some(crate::support::at(1)),
        reason: RunReason::Manual { by: "cli".into() },
        steps: Vec::new(),
    };
    let startup = Startup {
        closed: vec![closed],
        ..Startup::default()
    };
    let effects = machine.handle(Event::Started(Box::new(startup)), crate::support::at(2));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Notify(Notice::RunFailed(r)) if r.id == 4 && r.status == RunStatus::StoppedServer
        )),
        "{effects:?}"
    );
}

/// The engine a run uses is the one in force when the machine started it;
/// the run's record starts later (after its before hook). A reload in
/// between changed the rules after the run took its engine: the full sync
/// is still needed (a code review).
#[test]
fn a_full_sync_whose_record_starts_after_the_reload_but_began_before_leaves_the_need() {
    let mut sim = Sim::new(Setup::default());
    sim.trigger("hr", "full-sync", false, false);
    let run_id = sim
        .flights
        .iter()
        .find(|f| f.request.ma == "hr")
        .map(|f| f.run_id)
        .expect("the full sync runs");
    sim.advance(5);
    sim.reload(false, true);
    sim.deliver_all();
    sim.advance(5);
    // Its before hook took that long: the record starts after the reload.
    sim.runs.get_mut(&run_id).unwrap().started_at = sim.now;
    sim.complete_on("hr", false);
    sim.deliver_all();
    assert!(
        sim.machine.status(|_| None).mas["hr"]
            .full_sync_needed
            .is_some()
    );
}

#[test]
fn a_staging_hold_an_import_lifted_releases_the_held_syncs_for_what_is_staged_now() {
    use autosync_controller::machine::{MaStateView, RunFacts};
    use autosync_model::{RunReason, StepCounters, StepRecord, StepType};
    let mut sim = Sim::new(Setup {
        threshold: Some(3),
        ..Setup::default()
    });
    *sim.world.source.get_mut("hr").unwrap() = 10;
    sim.trigger("hr", "delta-import", false, false);
    sim.complete_on("hr", false);
    let state = |sim: &Sim| sim.machine.status(|_| None).mas["hr"].state.clone();
    assert!(
        matches!(state(&sim), MaStateView::ThresholdExceeded { .. }),
        "{:?}",
        state(&sim)
    );
    // The source fixed, an import reads it again: the engine lifted the
    // hold, and the store holds none.
    sim.queue("hr", "full-import");
    let flight = sim
        .flights
        .iter()
        .position(|f| f.request.ma == "hr")
        .expect("the import runs");
    let flight = sim.flights.remove(flight);
    let mut record = sim.runs[&flight.run_id].clone();
    record.status = RunStatus::Success;
    record.ended_at = Some(sim.now);
    record.steps.push(StepRecord {
        step_type: StepType::FullImport,
        status: RunStatus::Success,
        started_at: sim.now,
        ended_at: Some(sim.now),
        counters: StepCounters::for_step(StepType::FullImport),
        errors: 0,
        message: Some(
            "the changes run 1 staged over the staging threshold are no longer staged".into(),
        ),
    });
    sim.runs.insert(record.id, record.clone());
    sim.handle(Event::RunEnded(Box::new(RunEnd {
        ma: "hr".into(),
        outcome: RunOutcome::Ran(record),
        after: Default::default(),
        facts: RunFacts {
            staging_hold_gone: true,
            ..RunFacts::default()
        },
    })));
    assert!(
        !matches!(state(&sim), MaStateView::ThresholdExceeded { .. }),
        "{:?}",
        state(&sim)
    );
    let sync = sim
        .flights
        .iter()
        .find(|f| f.request.ma == "hr" && f.request.profile == "delta-sync")
        .expect("the held sync runs");
    match &sync.request.reason {
        RunReason::Reconciliation { because } => {
            assert!(because.contains("no longer staged"), "{because}")
        }
        other => panic!("{other:?}"),
    }
}
