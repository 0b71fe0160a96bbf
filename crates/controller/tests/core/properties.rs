//! Property tests of the controller's invariants, driving decide, the
//! queues and the scheduler together in the simulated loop of `sim`.

use crate::sim::{MAS, Sim};
use autosync_controller::{Request, RunMode};
use autosync_model::RunReason;
use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Action {
    /// A trigger (or an operator) asks for a profile.
    Trigger {
        ma: usize,
        profile: usize,
        run_immediate: bool,
        exclusive: bool,
    },
    /// The connected system changed `n` objects.
    Change { ma: usize, n: u64 },
    /// An operator stops or starts an MA.
    Toggle { ma: usize },
    /// One of the runs in progress ends.
    Complete { pick: usize, stopped: bool },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..MAS.len(), 0..8usize, prop::bool::weighted(0.15), prop::bool::weighted(0.1)).prop_map(
            |(ma, profile, run_immediate, exclusive)| Action::Trigger { ma, profile, run_immediate, exclusive }
        ),
        2 => (0..MAS.len(), 1..5u64).prop_map(|(ma, n)| Action::Change { ma, n }),
        4 => (any::<usize>(), prop::bool::weighted(0.15)).prop_map(|(pick, stopped)| Action::Complete { pick, stopped }),
        1 => (0..MAS.len()).prop_map(|ma| Action::Toggle { ma }),
    ]
}

fn run_mode() -> impl Strategy<Value = RunMode> {
    prop_oneof![
        Just(RunMode::Supported),
        Just(RunMode::Unsupported),
        Just(RunMode::Exclusive)
    ]
}

/// Plays the actions, scheduling after each (the invariants are checked
/// after every start).
fn play(sim: &mut Sim, actions: &[Action]) {
    for action in actions {
        match action {
            Action::Trigger {
                ma,
                profile,
                run_immediate,
                exclusive,
            } => {
                let ma = MAS[*ma];
                let profiles = sim.profiles(ma);
                let mut request =
                    Request::trigger(ma, &profiles[profile % profiles.len()], "storm");
                request.run_immediate = *run_immediate;
                request.exclusive = *exclusive;
                sim.push(request);
            }
            Action::Change { ma, n } => {
                *sim.world.source.entry(MAS[*ma].to_owned()).or_default() += n
            }
            Action::Complete { pick, stopped } => sim.complete(*pick, *stopped),
            Action::Toggle { ma } => {
                let queued = sim.queues.get(MAS[*ma]).map_or(0, |q| q.len());
                sim.toggle(MAS[*ma]);
                if sim.stopped_mas.contains(MAS[*ma]) {
                    sim.schedule();
                    let kept = sim.queues.get(MAS[*ma]).map_or(0, |q| q.len());
                    assert_eq!(kept, queued, "stopping an MA keeps its queue");
                }
            }
        }
        sim.schedule();
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
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_cycle_should_settle_with_every_rule_kept_when_counters_converge(
        mode in run_mode(),
        actions in vec(action(), 0..80),
        echoes in 0u32..6,
        seed in any::<u64>(),
        stops in any::<bool>(),
        lock_group in any::<bool>(),
    ) {
        let mut sim = Sim::new(mode, Some(echoes));
        if lock_group {
            sim = sim.with_lock_group();
        }
        play(&mut sim, &actions);
        sim.stopped_mas.clear();
        let mut picks = Picks(seed | 1);
        let steps = sim.settle(|| { let (pick, stop) = picks.next(); (pick, stop && stops) }, 5_000);
        prop_assert!(steps.is_some(), "the cycle did not settle");
        prop_assert!(sim.world.quiescent(), "connector spaces still hold work: {:?}", sim.world.cs);
        prop_assert_eq!(sim.oscillations(), 0, "reports: {:?}", sim.reports);
        prop_assert_eq!(sim.queues.total(), 0);
        if sim.stopped_runs == 0 {
            // Without stopped runs, the follow-ups alone finish the cycle:
            // reconciliation finds nothing left.
            prop_assert_eq!(sim.reconciled, 0);
        }
    }

    #[test]
    fn a_cycle_that_never_converges_should_be_reported_as_an_oscillation_not_looped(
        mode in run_mode(),
        actions in vec(action(), 0..40),
        seed in any::<u64>(),
    ) {
        let mut sim = Sim::new(mode, None);
        play(&mut sim, &actions);
        sim.stopped_mas.clear();
        *sim.world.source.entry("hr".into()).or_default() += 1;
        sim.push(Request::trigger("hr", "delta-import", "storm"));
        let mut picks = Picks(seed | 1);
        let steps = sim.settle(|| picks.next(), 10_000);
        prop_assert!(steps.is_some(), "the loop was never stopped");
        prop_assert!(sim.oscillations() > 0, "a loop that never converges must be reported");
        prop_assert_eq!(sim.queues.total(), 0);
    }

    #[test]
    fn no_request_should_be_lost_or_queued_twice_under_trigger_storms(
        mode in run_mode(),
        actions in vec(action(), 0..200),
    ) {
        let mut sim = Sim::new(mode, Some(2));
        play(&mut sim, &actions);
        // Every push is started, still queued, or merged into a queued one
        // (checked at the merge); `check_invariants` compared the queues
        // with the pushes' outcomes after every start.
        let accounted = sim.started.len() as u64 + sim.live.len() as u64 + sim.merged;
        prop_assert_eq!(sim.pushes, accounted);
        sim.check_invariants();
    }

    #[test]
    fn a_waiting_sync_should_not_starve_under_a_continuous_import_storm(
        seed in any::<u64>(),
        busy_first in vec(0..MAS.len(), 0..6),
    ) {
        let mut sim = Sim::new(RunMode::Supported, Some(0));
        for ma in &busy_first {
            sim.push(Request::trigger(MAS[*ma], "full-import", "storm"));
        }
        sim.schedule();
        let sync = sim.push(Request {
            reason: RunReason::FollowUp { run_id: 1, because: "staged 1 change (1 update)".into() },
            ..Request::trigger("hr", "delta-sync", "cycle")
        }).id();
        let mut picks = Picks(seed | 1);
        let bound = 2 * MAS.len() + 2;
        let mut started_after = None;
        for completions in 0..=bound {
            for ma in MAS {
                sim.push(Request::trigger(ma, "full-import", "storm"));
            }
            sim.schedule();
            if sim.started.iter().any(|(id, _, _)| *id == sync) {
                started_after = Some(completions);
                break;
            }
            let (pick, _) = picks.next();
            sim.complete(pick, false);
        }
        prop_assert!(started_after.is_some(), "the sync still waits after {} completions", bound);
    }
}
