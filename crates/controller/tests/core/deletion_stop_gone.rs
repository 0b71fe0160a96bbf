//! An export stopped at the deletion threshold whose pending deletes a
//! sync cancelled (the person reinstated before anyone approved): the
//! store no longer has the stop standing, and the status must stop
//! saying one waits — after the run that cancelled them, or when an
//! operator's approve or reject finds nothing to settle (a review found
//! the status stale, and neither control able to clear it).

use crate::sim::{Setup, Sim};
use autosync_controller::Control;
use autosync_controller::machine::{Event, MaStateName, MaStateView, RunEnd, RunFacts, RunOutcome};
use autosync_model::{RunRecord, RunStatus, StepCounters, StepRecord, StepType};

fn state(sim: &Sim) -> MaStateView {
    sim.machine.status(|_| None).mas["app"].state.clone()
}

/// The export of `app` stops at the deletion threshold.
fn stopped(sim: &mut Sim) {
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
        message: Some("2 pending export deletes exceed the deletion threshold".into()),
    });
    sim.runs.insert(record.id, record.clone());
    sim.world.deletion_stopped.insert("app".into());
    sim.handle(Event::RunEnded(Box::new(RunEnd {
        ma: "app".into(),
        outcome: RunOutcome::Ran(record),
        after: Default::default(),
        facts: RunFacts {
            deletion_stop: Some("export stopped at the deletion threshold: 2 pending deletes, at most 1 of 4 objects".into()),
            ..RunFacts::default()
        },
    })));
    sim.deliver_all();
    assert_eq!(state(sim).name(), MaStateName::ThresholdExceeded);
}

/// A sync of `hr` ends whose facts say `app`'s stop is gone.
fn sync_cancelled_the_deletes(sim: &mut Sim) {
    sim.world.deletion_stopped.remove("app");
    sim.queue("hr", "delta-sync");
    let flight = sim
        .flights
        .iter()
        .position(|f| f.request.ma == "hr")
        .expect("the sync runs");
    let flight = sim.flights.remove(flight);
    let mut record: RunRecord = sim.runs[&flight.run_id].clone();
    record.status = RunStatus::Success;
    record.ended_at = Some(sim.now);
    sim.runs.insert(record.id, record.clone());
    sim.handle(Event::RunEnded(Box::new(RunEnd {
        ma: "hr".into(),
        outcome: RunOutcome::Ran(record),
        after: Default::default(),
        facts: RunFacts {
            deletion_stops_gone: vec!["hr".into(), "app".into()],
            ..RunFacts::default()
        },
    })));
    sim.deliver_all();
}

#[test]
fn a_stop_whose_deletes_a_sync_cancelled_should_leave_the_status() {
    let mut sim = Sim::new(Setup::default());
    stopped(&mut sim);
    sync_cancelled_the_deletes(&mut sim);
    assert_ne!(state(&sim).name(), MaStateName::ThresholdExceeded);
}

#[test]
fn an_approve_or_reject_finding_no_stop_should_clear_a_stale_status() {
    for control in [Control::Approve, Control::Reject] {
        let mut sim = Sim::new(Setup::default());
        stopped(&mut sim);
        // The store lost the stop without a run the machine saw end.
        sim.world.deletion_stopped.remove("app");
        let answer = sim.control(control, Some("app"));
        sim.deliver_all();
        assert!(answer.is_err(), "{control:?}: nothing waits: {answer:?}");
        assert_ne!(
            state(&sim).name(),
            MaStateName::ThresholdExceeded,
            "{control:?}"
        );
    }
}
