//! The simulation's life events: runs started outside the machine, the
//! service's crash and graceful stop with their restart (the persisted
//! state round-tripped through JSON and reconciled with the store's runs),
//! and reloads.

use super::{MAS, Sim, infos};
use autosync_controller::machine::{Answer, Event, Machine, Options, PersistedState, Startup};
use autosync_model::{RunReason, RunRecord, RunStatus};
use chrono::Duration;
use std::collections::BTreeMap;

impl Sim {
    /// What a start finds in the store for `state`.
    pub(super) fn startup(&self, state: PersistedState) -> Startup {
        let newest = |ma: &str| -> Vec<RunRecord> {
            self.runs
                .values()
                .rev()
                .filter(|r| r.ma == ma)
                .take(100)
                .cloned()
                .collect()
        };
        let recent_runs = state
            .interrupted_mas()
            .into_iter()
            .map(|ma| {
                let runs = newest(&ma);
                (ma, runs)
            })
            .collect();
        let last_runs = MAS
            .iter()
            .filter_map(|ma| newest(ma).into_iter().next().map(|r| ((*ma).to_owned(), r)))
            .collect();
        Startup {
            state,
            newest_run: self.runs.keys().next_back().copied().unwrap_or(0),
            recent_runs,
            last_runs,
            cs: self.counts(),
            full_syncs_needed: Ok(self.full_syncs_needed()),
            initial: Vec::new(),
            watched: Vec::new(),
            closed: Vec::new(),
            // The store's deletion stops, as the shell reads them at start.
            deletion_stops: (self.world.deletion_stopped.iter())
                .filter_map(|ma| {
                    let run = newest(ma).into_iter().next()?;
                    Some((
                        ma.clone(),
                        (
                            run.id,
                            "export stopped at the deletion threshold".to_owned(),
                        ),
                    ))
                })
                .collect(),
        }
    }

    pub(super) fn counts(&self) -> BTreeMap<String, Option<autosync_controller::CsState>> {
        self.world
            .cs
            .iter()
            .map(|(ma, cs)| (ma.clone(), Some(*cs)))
            .collect()
    }

    pub(super) fn full_syncs_needed(&self) -> Vec<(String, String)> {
        if self.rules_changed {
            vec![("hr".to_owned(), "the rules of `hr` changed".to_owned())]
        } else {
            Vec::new()
        }
    }

    /// Another process starts a profile on `ma` (if the MA is free).
    pub fn external_start(&mut self, ma: &str, profile: &str) {
        let busy = self.flights.iter().any(|f| f.request.ma == ma)
            || self
                .external
                .iter()
                .any(|e| self.runs.get(e).is_some_and(|r| r.ma == ma));
        let known = infos(self.setup.without_import_sync)
            .get(ma)
            .is_some_and(|i| i.steps(profile).is_some());
        if busy || !known {
            return;
        }
        let id = self.next_run_id();
        self.runs.insert(
            id,
            RunRecord {
                id,
                ma: ma.to_owned(),
                profile: profile.to_owned(),
                status: RunStatus::InProgress,
                started_at: self.now,
                ended_at: None,
                reason: RunReason::Manual { by: "cli".into() },
                steps: Vec::new(),
            },
        );
        self.external.push(id);
    }

    /// The external run at `pick` ends (the machine sees it when it looks).
    pub fn external_end(&mut self, pick: usize) {
        if self.external.is_empty() {
            return;
        }
        let id = self.external.remove(pick % self.external.len());
        self.now += Duration::seconds(1);
        self.run_steps(id, None);
    }

    /// The service dies: runs in flight die with it (their records are
    /// closed `stopped-server`), unless `completed_first`: they completed
    /// and the process died before it handled their end. Then it starts
    /// again from the persisted state.
    pub fn crash(&mut self, completed_first: bool) {
        for flight in std::mem::take(&mut self.flights) {
            if completed_first {
                self.run_steps(flight.run_id, None);
            } else if let Some(r) = self.runs.get_mut(&flight.run_id) {
                r.status = RunStatus::StoppedServer;
                r.ended_at = Some(self.now);
            }
        }
        self.answers.clear();
        self.replies.clear();
        self.restart();
    }

    /// A graceful stop (running profiles cancelled, their requests kept),
    /// then a start.
    pub fn stop_and_start(&mut self) {
        self.handle(Event::Shutdown);
        let mut guard = 0;
        while !self.machine.stopped() {
            guard += 1;
            assert!(guard < 1_000, "the graceful stop never ended");
            if !self.flights.is_empty() {
                self.complete(0, false);
            } else {
                self.deliver_all();
                self.handle(Event::Tick);
            }
        }
        self.answers.clear();
        self.restart();
    }

    /// A new machine from the persisted state, round-tripped through JSON.
    fn restart(&mut self) {
        let state = match &self.persisted {
            None => PersistedState::default(),
            Some(json) => {
                let state: PersistedState = serde_json::from_str(json).expect("the state decodes");
                assert_eq!(
                    &serde_json::to_string(&state).expect("the state encodes"),
                    json,
                    "the persisted state round-trips"
                );
                state
            }
        };
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let config = self.setup.config(self.generation);
        self.machine = Machine::new(
            config,
            Options {
                once: false,
                seed: self.seed,
            },
        );
        self.wake = None;
        self.restarts += 1;
        let startup = self.startup(state);
        self.handle(Event::Started(Box::new(startup)));
    }

    /// A reload: `hr`'s definition changes (its triggers restart), with
    /// or without its `import-sync` profile, its rules changed or not.
    pub fn reload(&mut self, without_import_sync: bool, rules_changed: bool) -> String {
        self.generation += 1;
        self.setup.without_import_sync = without_import_sync;
        let mut config = self.setup.config(self.generation);
        if rules_changed && let Some(hr) = config.mas.get_mut("hr") {
            hr.rules_fingerprint = format!("hr-rules-{}", self.generation);
        }
        self.reload_with(config, without_import_sync, rules_changed)
    }

    /// A reload that changes the metaverse only (its precedence or
    /// deletion rules): the engine says `hr` needs a full sync.
    pub fn reload_metaverse(&mut self) -> String {
        self.generation += 1;
        let mut config = self.setup.config(self.generation);
        config.metaverse_fingerprint = format!("metaverse-{}", self.generation);
        self.reload_with(config, false, true)
    }

    fn reload_with(
        &mut self,
        config: autosync_controller::MachineConfig,
        without_import_sync: bool,
        rules_changed: bool,
    ) -> String {
        self.setup.without_import_sync = without_import_sync;
        self.rules_changed = rules_changed;
        if without_import_sync {
            for m in self
                .made
                .iter_mut()
                .filter(|m| m.ma == "hr" && m.profile == "import-sync")
            {
                m.may_drop = true;
            }
        }
        let reply = self.reply_id();
        self.handle(Event::Reload {
            reply,
            config: Box::new(config),
        });
        // The answer waits for the engine's word on the full syncs needed
        // (the other answers stay in the order the test picks).
        while !self.replies.contains_key(&reply) {
            let Some(i) = (self.answers.iter()).position(|e| matches!(e, Event::RulesChecked(_)))
            else {
                break;
            };
            let checked = self.answers.remove(i).expect("the answer is there");
            self.handle(checked);
        }
        match self.replies.remove(&reply) {
            Some(Answer::Done(Ok(message))) => message,
            other => panic!("the reload was not answered: {other:?}"),
        }
    }
}
