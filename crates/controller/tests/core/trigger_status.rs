//! Failing triggers in the status (a black-box review: a change listener
//! that could not listen retried for ever, one notification was sent, and
//! `autosync status` showed the MA `idle`, nothing saying that nothing
//! listened): each failing trigger is shown under its MA until it asks
//! for a run again, or its triggers are built again.

use crate::sim::{Setup, Sim};
use autosync_controller::Request;
use autosync_controller::machine::{Event, MaStateView, TriggerProblem};

const LISTENER: &str = "change-notification (every change)";

fn problems(sim: &Sim, ma: &str) -> Vec<TriggerProblem> {
    sim.machine.status(|_| None).mas[ma].trigger_errors.clone()
}

/// What the executor hands the machine when the listener cannot listen
/// (the trigger's error as it displays itself).
fn listener_failed(sim: &mut Sim, ma: &str, why: &str) {
    sim.handle(Event::TriggerFailed {
        ma: ma.into(),
        trigger: LISTENER.into(),
        message: format!(
            "trigger {LISTENER} on MA `{ma}` failed: not listening to changes: {why}; listening again after a backoff, then asking for a catch-up import"
        ),
    });
}

fn asks(sim: &mut Sim, ma: &str, trigger: &str) {
    sim.handle(Event::Triggered(Request::trigger(
        ma,
        "delta-import",
        trigger,
    )));
}

#[test]
fn a_failing_trigger_should_show_in_the_status_until_it_asks_for_a_run_again() {
    let mut sim = Sim::new(Setup::default());
    assert!(problems(&sim, "hr").is_empty());
    let first = sim.now;
    listener_failed(&mut sim, "hr", "connection refused");
    let p = problems(&sim, "hr");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].trigger, LISTENER);
    assert!(
        p[0].message
            .starts_with("not listening to changes: connection refused"),
        "the trigger and the MA are named once: {p:?}"
    );
    assert_eq!((p[0].since, p[0].last, p[0].count), (first, first, 1));
    // The state stays as it is.
    assert_eq!(
        sim.machine.status(|_| None).mas["hr"].state,
        MaStateView::Idle
    );

    // Repeats: the count and the last time grow, `since` stays.
    sim.advance(30);
    listener_failed(&mut sim, "hr", "timed out");
    sim.advance(60);
    listener_failed(&mut sim, "hr", "timed out again");
    let p = problems(&sim, "hr");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].since, p[0].last, p[0].count), (first, sim.now, 3));
    assert!(p[0].message.contains("timed out again"), "{p:?}");

    // The JSON of the status carries it; an MA without one has none.
    let json = serde_json::to_value(sim.machine.status(|_| None)).unwrap();
    assert_eq!(json["mas"]["hr"]["trigger_errors"][0]["count"], 3);
    assert_eq!(json["mas"]["hr"]["trigger_errors"][0]["trigger"], LISTENER);
    assert!(json["mas"]["ad"].get("trigger_errors").is_none(), "{json}");

    // Another trigger's request, or the same trigger on another MA, says
    // nothing of this one.
    asks(&mut sim, "hr", "interval (every 15m)");
    asks(&mut sim, "ad", LISTENER);
    asks(&mut sim, "hr", "change-notification (every change)x");
    assert_eq!(problems(&sim, "hr").len(), 1);

    // Its catch-up once listening again: it works.
    asks(
        &mut sim,
        "hr",
        "change-notification (every change) (catch-up after listening again)",
    );
    assert!(problems(&sim, "hr").is_empty());
    let json = serde_json::to_value(sim.machine.status(|_| None)).unwrap();
    assert!(json["mas"]["hr"].get("trigger_errors").is_none(), "{json}");

    // Failing again starts anew, and its own name clears it too.
    listener_failed(&mut sim, "hr", "connection refused");
    assert_eq!(problems(&sim, "hr")[0].count, 1);
    assert_eq!(problems(&sim, "hr")[0].since, sim.now);
    asks(&mut sim, "hr", LISTENER);
    assert!(problems(&sim, "hr").is_empty());
}

/// A script trigger asking for a profile its MA does not have fails too
/// (notified, never queued), each time.
#[test]
fn a_trigger_asking_for_a_missing_profile_should_show_as_failing() {
    let mut sim = Sim::new(Setup::default());
    for _ in 0..3 {
        sim.handle(Event::Triggered(Request::trigger("hr", "nope", "script s")));
        sim.advance(2);
    }
    let p = problems(&sim, "hr");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].trigger.as_str(), p[0].count), ("script s", 3));
    assert!(p[0].message.contains("nope"), "{p:?}");
    // It asks for a profile that exists: it works.
    asks(&mut sim, "hr", "script s");
    assert!(problems(&sim, "hr").is_empty());
}

/// A reload that builds an MA's triggers again: the new ones have not
/// failed.
#[test]
fn a_reload_that_rebuilds_the_triggers_should_forget_their_failures() {
    let mut sim = Sim::new(Setup::default());
    listener_failed(&mut sim, "hr", "connection refused");
    assert_eq!(problems(&sim, "hr").len(), 1);
    sim.reload(false, false);
    assert!(problems(&sim, "hr").is_empty());
}
