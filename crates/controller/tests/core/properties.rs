//! Property tests of the controller's invariants, driving the real state
//! machine in the simulated world of `sim`, in every run mode, with the
//! hard cases in the mix: crashes and restarts mid-cycle (the persisted
//! state round-tripped through JSON, then reconciled with the store), runs
//! started outside the service, blackout windows opening and closing,
//! cancels, outages that fail an MA and end, staging thresholds approved
//! or rejected, reloads, and `run_immediate` storms against a waiting sync.

use crate::sim::{MAS, Setup, Sim};
use autosync_controller::machine::{Answer, MaStateName, RefusalCode, ServiceEvent, ServiceState};
use autosync_controller::{Control, Request, RunMode};
use autosync_model::RunReason;
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Action {
    /// A trigger asks for a profile.
    Trigger {
        ma: usize,
        profile: usize,
        run_immediate: bool,
        exclusive: bool,
    },
    /// An operator queues a profile.
    Queue {
        ma: usize,
        profile: usize,
    },
    /// The connected system changed `n` objects.
    Change {
        ma: usize,
        n: u64,
    },
    /// One of the runs in progress ends.
    Complete {
        pick: usize,
        stopped: bool,
    },
    /// One answer of the engine or store comes back (in any order).
    Deliver {
        pick: usize,
    },
    /// Time passes.
    Advance {
        secs: i64,
    },
    /// An operator cancels the MA's run.
    Cancel {
        ma: usize,
    },
    /// An operator stops or starts an MA.
    Toggle {
        ma: usize,
    },
    /// An operator pauses or resumes an MA's triggers.
    Pause {
        ma: usize,
    },
    /// Another process runs a profile (the CLI, without the service).
    External {
        ma: usize,
        profile: usize,
    },
    ExternalEnd {
        pick: usize,
    },
    /// A connected system goes down, or comes back.
    Outage {
        ma: usize,
    },
    Approve {
        ma: usize,
    },
    Reject {
        ma: usize,
    },
    ClearQueue {
        ma: usize,
    },
    /// The service dies (runs in flight die, or had completed) and starts.
    Crash {
        completed_first: bool,
    },
    /// A graceful stop and a start.
    Restart,
    Reload {
        without_import_sync: bool,
        rules_changed: bool,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let ma = || 0..MAS.len();
    prop_oneof![
        6 => (ma(), 0..8usize, prop::bool::weighted(0.15), prop::bool::weighted(0.1)).prop_map(
            |(ma, profile, run_immediate, exclusive)| Action::Trigger { ma, profile, run_immediate, exclusive }
        ),
        1 => (ma(), 0..8usize).prop_map(|(ma, profile)| Action::Queue { ma, profile }),
        4 => (ma(), 1..5u64).prop_map(|(ma, n)| Action::Change { ma, n }),
        8 => (any::<usize>(), prop::bool::weighted(0.15)).prop_map(|(pick, stopped)| Action::Complete { pick, stopped }),
        4 => any::<usize>().prop_map(|pick| Action::Deliver { pick }),
        2 => (1..1200i64).prop_map(|secs| Action::Advance { secs }),
        1 => ma().prop_map(|ma| Action::Cancel { ma }),
        1 => ma().prop_map(|ma| Action::Toggle { ma }),
        1 => ma().prop_map(|ma| Action::Pause { ma }),
        1 => (ma(), 0..8usize).prop_map(|(ma, profile)| Action::External { ma, profile }),
        1 => any::<usize>().prop_map(|pick| Action::ExternalEnd { pick }),
        1 => ma().prop_map(|ma| Action::Outage { ma }),
        1 => ma().prop_map(|ma| Action::Approve { ma }),
        1 => ma().prop_map(|ma| Action::Reject { ma }),
        1 => ma().prop_map(|ma| Action::ClearQueue { ma }),
        1 => any::<bool>().prop_map(|completed_first| Action::Crash { completed_first }),
        1 => Just(Action::Restart),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(without_import_sync, rules_changed)| Action::Reload { without_import_sync, rules_changed }),
    ]
}

fn run_mode() -> impl Strategy<Value = RunMode> {
    prop_oneof![
        Just(RunMode::Supported),
        Just(RunMode::Unsupported),
        Just(RunMode::Exclusive)
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        run_mode(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(2..8u64),
    )
        .prop_map(|(mode, lock_group, stagger, blackout, threshold)| Setup {
            mode,
            lock_group,
            stagger,
            blackout,
            threshold,
            ..Setup::default()
        })
}

/// The MA's profile at `index` (modulo).
fn profile_of(sim: &Sim, ma: &str, index: usize) -> String {
    let profiles: Vec<String> = sim
        .machine
        .config()
        .mas
        .get(ma)
        .map(|m| m.info.profiles.keys().cloned().collect())
        .unwrap_or_default();
    profiles[index % profiles.len()].clone()
}

/// Plays the actions (the invariants are checked after every start).
fn play(sim: &mut Sim, actions: &[Action]) {
    for action in actions {
        match action {
            Action::Trigger {
                ma,
                profile,
                run_immediate,
                exclusive,
            } => {
                let p = profile_of(sim, MAS[*ma], *profile);
                sim.trigger(MAS[*ma], &p, *run_immediate, *exclusive);
            }
            Action::Queue { ma, profile } => {
                let p = profile_of(sim, MAS[*ma], *profile);
                let answer = sim.queue(MAS[*ma], &p);
                if let Answer::Queued(Err(e)) = answer {
                    // Only a sync held by a staging threshold is refused.
                    assert_eq!(e.code, RefusalCode::HeldByThreshold, "{e}");
                    assert!(e.message.contains("staging threshold"), "{e}");
                    sim.made.pop();
                }
            }
            Action::Change { ma, n } => {
                *sim.world.source.entry(MAS[*ma].to_owned()).or_default() += n;
            }
            Action::Complete { pick, stopped } => sim.complete(*pick, *stopped),
            Action::Deliver { pick } => sim.deliver(*pick),
            Action::Advance { secs } => sim.advance(*secs),
            Action::Cancel { ma } => {
                let _ = sim.control(Control::Cancel, Some(MAS[*ma]));
            }
            Action::Toggle { ma } => {
                let ma = MAS[*ma];
                if let Some(i) = sim.stopped_mas.iter().position(|m| m == ma) {
                    sim.stopped_mas.remove(i);
                    sim.control(Control::Start, Some(ma)).unwrap();
                } else {
                    let queued = sim.machine.state().queues.get(ma).map_or(0, |q| q.len());
                    sim.control(Control::Stop, Some(ma)).unwrap();
                    sim.stopped_mas.push(ma.to_owned());
                    let kept = sim.machine.state().queues.get(ma).map_or(0, |q| q.len());
                    assert_eq!(kept, queued, "stopping an MA keeps its queue");
                }
            }
            Action::Pause { ma } => {
                let ma = MAS[*ma];
                if let Some(i) = sim.paused_mas.iter().position(|m| m == ma) {
                    sim.paused_mas.remove(i);
                    sim.control(Control::Resume, Some(ma)).unwrap();
                } else {
                    sim.control(Control::Pause, Some(ma)).unwrap();
                    sim.paused_mas.push(ma.to_owned());
                }
            }
            Action::External { ma, profile } => {
                let p = profile_of(sim, MAS[*ma], *profile);
                sim.external_start(MAS[*ma], &p);
            }
            Action::ExternalEnd { pick } => sim.external_end(*pick),
            Action::Outage { ma } => {
                let ma = MAS[*ma].to_owned();
                if !sim.world.down.remove(&ma) {
                    sim.world.down.insert(ma);
                }
            }
            Action::Approve { ma } => {
                let _ = sim.control(Control::Approve, Some(MAS[*ma]));
            }
            Action::Reject { ma } => {
                let ma = MAS[*ma];
                if sim.control(Control::Reject, Some(ma)).is_ok() {
                    sim.allow_drops(ma, true);
                }
            }
            Action::ClearQueue { ma } => {
                sim.allow_drops(MAS[*ma], false);
                sim.control(Control::ClearQueue, Some(MAS[*ma])).unwrap();
            }
            Action::Crash { completed_first } => sim.crash(*completed_first),
            Action::Restart => sim.stop_and_start(),
            Action::Reload {
                without_import_sync,
                rules_changed,
            } => {
                sim.reload(*without_import_sync, *rules_changed);
            }
        }
    }
}

/// Completion order and stops for the settling phase (xorshift).
struct Picks(u64);

impl Picks {
    fn next(&mut self) -> (usize, bool) {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 8) as usize, self.0.is_multiple_of(6))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn the_cycle_should_settle_with_every_rule_kept_and_no_request_lost(
        setup in setup(),
        actions in vec(action(), 0..80),
        echoes in 0u32..6,
        seed in any::<u64>(),
        stops in any::<bool>(),
    ) {
        let mut sim = Sim::new(Setup { echoes: Some(echoes), ..setup });
        play(&mut sim, &actions);
        sim.check_no_request_lost();
        sim.operators_step_in();
        let mut picks = Picks(seed | 1);
        let steps = sim.settle(|| { let (pick, stop) = picks.next(); (pick, stop && stops) }, 50_000);
        prop_assert!(steps.is_some(), "the cycle did not settle");
        prop_assert!(sim.world.quiescent(), "connector spaces still hold work: {:?}", sim.world.cs);
        prop_assert_eq!(sim.oscillations(), 0, "notices: {:?}", sim.notices);
        prop_assert_eq!(sim.machine.state().queues.total(), 0);
        prop_assert!(sim.machine.state().mas.values().all(|c| c.failed.is_none() && c.threshold.is_none()),
            "an MA is still failed or held: {:?}", sim.machine.state().mas);
        sim.check_no_request_lost();
    }

    #[test]
    fn a_cycle_that_never_converges_should_be_reported_as_an_oscillation_not_looped(
        mode in run_mode(),
        actions in vec(action(), 0..40),
        seed in any::<u64>(),
    ) {
        let mut sim = Sim::new(Setup::mode(mode));
        play(&mut sim, &actions);
        sim.operators_step_in();
        *sim.world.source.entry("hr".into()).or_default() += 1;
        sim.trigger("hr", "delta-import", false, false);
        let mut picks = Picks(seed | 1);
        let steps = sim.settle(|| picks.next(), 50_000);
        prop_assert!(steps.is_some(), "the loop was never stopped");
        prop_assert!(sim.oscillations() > 0, "a loop that never converges must be reported");
        prop_assert_eq!(sim.machine.state().queues.total(), 0);
    }

    #[test]
    fn no_request_should_be_lost_or_queued_twice_under_storms_crashes_and_restarts(
        setup in setup(),
        actions in vec(action(), 0..200),
    ) {
        let mut sim = Sim::new(Setup { echoes: Some(2), ..setup });
        play(&mut sim, &actions);
        sim.check_no_request_lost();
        for (ma, q) in sim.machine.state().queues.iter() {
            let mut keys = std::collections::BTreeSet::new();
            for r in q.iter() {
                prop_assert!(keys.insert((r.profile.clone(), r.exclusive)), "duplicate {} queued on {}", r.profile, ma);
            }
        }
    }

    #[test]
    fn replaying_the_published_state_changes_should_give_the_status_of_every_ma(
        setup in setup(),
        actions in vec(action(), 0..120),
    ) {
        let mut sim = Sim::new(Setup { echoes: Some(2), ..setup });
        play(&mut sim, &actions);
        // From the start, as a follower that saw every event would: a
        // service start begins afresh, each change starts where the last
        // one of its MA ended.
        let mut replayed = BTreeMap::new();
        for event in &sim.published {
            match event {
                ServiceEvent::Service { state: ServiceState::Started, .. } => replayed.clear(),
                ServiceEvent::StateChanged { ma, from, to, detail, .. } => {
                    // Only a running MA's next profile changes a state
                    // into itself.
                    prop_assert!(from != to || (*to == Some(MaStateName::Running) && detail.is_some()));
                    prop_assert_eq!(replayed.get(ma).copied(), *from, "missed or repeated: {:?}", event);
                    match to {
                        Some(to) => replayed.insert(ma.clone(), *to),
                        None => replayed.remove(ma),
                    };
                }
                _ => {}
            }
        }
        let status: BTreeMap<String, MaStateName> = sim
            .machine
            .status(|_| None)
            .mas
            .into_iter()
            .map(|(ma, s)| (ma, s.state.name()))
            .collect();
        prop_assert_eq!(replayed, status);
    }

    #[test]
    fn a_waiting_sync_should_not_starve_under_a_run_immediate_storm(
        mode in run_mode(),
        busy_first in vec(0..MAS.len(), 0..6),
        run_immediate in any::<bool>(),
    ) {
        let mut sim = Sim::new(Setup { echoes: Some(0), ..Setup::mode(mode) });
        for ma in &busy_first {
            sim.trigger(MAS[*ma], "full-import", false, false);
        }
        let sync = Request {
            reason: RunReason::FollowUp { run_id: 1, because: "staged 1 change (1 update)".into(), confirming: false },
            ..Request::trigger("hr", "delta-sync", "cycle")
        };
        sim.handle(autosync_controller::machine::Event::Triggered(sync));
        let bound = 2 * MAS.len() + 2;
        let mut started_after = None;
        for completions in 0..=bound {
            if sim.starts.iter().any(|s| s.ma == "hr" && s.profile == "delta-sync") {
                started_after = Some(completions);
                break;
            }
            // The storm asks on every other MA (on the sync's own MA a
            // `run_immediate` request goes before it, by definition).
            for ma in MAS.iter().filter(|m| **m != "hr") {
                sim.trigger(ma, "full-import", run_immediate, false);
            }
            if sim.flights.is_empty() {
                match sim.wake { Some(at) => sim.advance_to(at), None => break }
                continue;
            }
            // Runs end in the order they started.
            sim.complete(0, false);
        }
        prop_assert!(started_after.is_some(), "the sync still waits after {} completions", bound);
    }
}
