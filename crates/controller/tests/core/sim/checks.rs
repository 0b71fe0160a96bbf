//! What must hold while the simulation runs (the rules of "Queues and
//! concurrency", blackout windows, operators' stops) and at its end (no
//! request the test made was lost), and settling: running until nothing
//! is left to do.

use super::Sim;
use autosync_controller::machine::{Event, RunOutcome};
use autosync_controller::{Control, RunMode};
use autosync_model::RunStatus;
use std::collections::BTreeSet;

impl Sim {
    /// The rules of "Queues and concurrency", checked after every start.
    pub fn check_invariants(&self, started: &str) {
        let mut per_ma = BTreeSet::new();
        for f in &self.flights {
            assert!(
                per_ma.insert(f.request.ma.clone()),
                "two runs at once on {}",
                f.request.ma
            );
        }
        let syncs = self.flights.iter().filter(|f| f.has_sync).count();
        assert!(syncs <= 1, "{syncs} syncs at once");
        let alone = self.setup.mode == RunMode::Exclusive
            || self.flights.iter().any(|f| f.request.exclusive)
            || (self.setup.mode == RunMode::Supported && syncs > 0);
        if alone {
            assert!(
                self.flights.len() <= 1,
                "a run that must run alone overlaps another: {:?}",
                self.flights
                    .iter()
                    .map(|f| (&f.request.ma, &f.request.profile))
                    .collect::<Vec<_>>()
            );
        }
        if self.setup.lock_group {
            let group = self
                .flights
                .iter()
                .filter(|f| f.request.ma == "ad" || f.request.ma == "app")
                .count();
            assert!(group <= 1, "two MAs of a lock group run together");
        }
        if let Some(ma) = self.machine.config().mas.get(started) {
            assert!(
                !ma.blackouts.active_at(self.now),
                "{started} started in its blackout window at {}",
                self.now
            );
        }
        assert!(
            !self.stopped_mas.iter().any(|m| m == started),
            "{started} started while an operator stopped it"
        );
        if let Some(state) = self.persisted_maintenance() {
            panic!("a run started in maintenance mode (since {state})");
        }
    }

    fn persisted_maintenance(&self) -> Option<String> {
        self.machine
            .state()
            .maintenance
            .as_ref()
            .map(|m| m.at.to_rfc3339())
    }

    /// Every request the test made ran after it was made (a run that a
    /// crash killed does not count: its request must run again), or still
    /// waits (queued, deferred, held by a threshold), or the test allowed
    /// it to be dropped. Checked against the test's own list, not the
    /// machine's.
    pub fn check_no_request_lost(&self) {
        let state = self.machine.state();
        for m in &self.made {
            if m.may_drop {
                continue;
            }
            let ran = self.starts.iter().any(|s| {
                s.seq >= m.seq
                    && s.ma == m.ma
                    && s.profile == m.profile
                    && s.exclusive == m.exclusive
                    && self
                        .runs
                        .get(&s.run_id)
                        .is_none_or(|r| r.status != RunStatus::StoppedServer)
            }) || self
                .flights
                .iter()
                .any(|f| f.request.ma == m.ma && f.request.profile == m.profile);
            let queued = state.queues.get(&m.ma).is_some_and(|q| {
                q.iter()
                    .any(|r| r.profile == m.profile && r.exclusive == m.exclusive)
            });
            let control = state.mas.get(&m.ma);
            let deferred = control.is_some_and(|c| {
                c.deferred
                    .iter()
                    .any(|r| r.profile == m.profile && r.exclusive == m.exclusive)
            });
            let held = control.and_then(|c| c.threshold.as_ref()).is_some_and(|t| {
                t.held
                    .iter()
                    .any(|r| r.profile == m.profile && r.exclusive == m.exclusive)
            });
            // Bounced by the engine (the MA was busy), the answer not yet
            // back: the machine queues it again when it comes.
            let bounced = self.answers.iter().any(|a| match a {
                Event::RunEnded(end) if end.ma == m.ma => match &end.outcome {
                    RunOutcome::Ran(r) => r.profile == m.profile,
                    _ => true,
                },
                _ => false,
            });
            assert!(
                ran || queued || deferred || held || bounced,
                "request lost: {m:?}; queue: {:?}",
                state
                    .queues
                    .get(&m.ma)
                    .map(|q| q.iter().map(|r| r.profile.clone()).collect::<Vec<_>>())
            );
        }
    }

    /// Operators end what keeps the cycle from settling: outages end,
    /// stopped MAs start, paused triggers resume.
    pub fn operators_step_in(&mut self) {
        self.world.down.clear();
        for ma in std::mem::take(&mut self.stopped_mas) {
            let _ = self.control(Control::Start, Some(&ma));
        }
        for ma in std::mem::take(&mut self.paused_mas) {
            let _ = self.control(Control::Resume, Some(&ma));
        }
        if self.machine.state().maintenance.is_some() {
            let _ = self.control(Control::EndMaintenance, None);
        }
        // A failed MA with nothing queued (its retry was cleared) waits for
        // an operator's start; one with its retry queued recovers by itself.
        let state = self.machine.state();
        let failed: Vec<String> = (state.mas.iter())
            .filter(|(ma, c)| {
                c.failed.is_some() && state.queues.get(ma).is_none_or(|q| q.is_empty())
            })
            .map(|(ma, _)| ma.clone())
            .collect();
        for ma in failed {
            let _ = self.control(Control::Start, Some(&ma));
        }
    }

    /// Runs until nothing runs or is due and the world is quiescent (or a
    /// reconciliation found nothing to start); `next` picks (run index,
    /// stopped) for each completion. Operators approve what thresholds
    /// hold. Returns the number of steps, or `None` past `max_steps`.
    pub fn settle(
        &mut self,
        mut next: impl FnMut() -> (usize, bool),
        max_steps: usize,
    ) -> Option<usize> {
        let mut idle = self.idle_reconciles;
        for steps in 0..max_steps {
            self.deliver_all();
            let mut held: Vec<String> = self.world.held.iter().cloned().collect();
            held.extend(
                (self.machine.state().mas.iter())
                    .filter(|(_, c)| c.threshold.is_some())
                    .map(|(ma, _)| ma.clone()),
            );
            held.dedup();
            for ma in held {
                let _ = self.control(Control::Approve, Some(&ma));
            }
            if !self.flights.is_empty() {
                let (pick, stop) = next();
                self.complete(pick, stop);
                idle = self.idle_reconciles;
                continue;
            }
            if !self.external.is_empty() {
                self.external_end(0);
                idle = self.idle_reconciles;
                continue;
            }
            if self.machine.quiescent()
                && self.answers.is_empty()
                && (self.world.quiescent() || self.idle_reconciles > idle)
            {
                return Some(steps);
            }
            match self.wake {
                Some(at) => self.advance_to(at),
                None => panic!(
                    "stuck: nothing runs and nothing is due; queues: {:?}",
                    self.machine.state().queues
                ),
            }
        }
        None
    }
}
