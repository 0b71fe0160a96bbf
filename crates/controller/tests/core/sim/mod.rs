//! A simulated world driving the real state machine ([`Machine`]) the way
//! the service does: every effect is carried out against the simulated
//! engine and store ([`world`]), answers come back as events (in whatever
//! order the test picks), and the clock moves only when the test moves it.
//! Crashes and restarts round-trip the persisted state through JSON, as the
//! store keeps it.

mod checks;
mod life;
pub mod world;

use crate::support::at;
use autosync_controller::machine::{
    Answer, Effect, Event, MaConfig, MaStateName, Machine, MachineConfig, Notice, Options,
    PersistedState, Refusal, ReplyId, RunEnd, RunFacts, RunOutcome, SeenRun, ServiceEvent,
    ServiceState, Stops, facts_wanted,
};
use autosync_controller::{
    BlackoutConfig, Blackouts, Control, EngineCallError, LockGroup, QueuedRequest, Request,
    RetryPolicy, RunMode, Scheduler, has_sync_step,
};
use autosync_model::{RunId, RunReason, RunRecord, RunStatus, StepRecord};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, VecDeque};
pub use world::{MAS, World, infos};

/// How the simulated deployment is configured.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    pub mode: RunMode,
    pub echoes: Option<u32>,
    /// `ad` and `app` never run together.
    pub lock_group: bool,
    /// A one-second start stagger.
    pub stagger: bool,
    /// `app` is blacked out ten minutes of every hour.
    pub blackout: bool,
    /// Imports staging more than this are held at a staging threshold.
    pub threshold: Option<u64>,
    /// `hr` has no `import-sync` profile.
    pub without_import_sync: bool,
}

impl Setup {
    pub fn mode(mode: RunMode) -> Self {
        Setup {
            mode,
            ..Setup::default()
        }
    }

    /// The machine's configuration of this setup.
    pub fn config(&self, generation: u32) -> MachineConfig {
        let mut config = MachineConfig {
            scheduler: Scheduler {
                mode: self.mode,
                lock_groups: Vec::new(),
            },
            start_stagger: std::time::Duration::from_secs(u64::from(self.stagger)),
            reconcile_every: std::time::Duration::from_secs(60),
            ..MachineConfig::default()
        };
        if self.lock_group {
            config.scheduler.lock_groups.push(LockGroup {
                name: "directory".into(),
                mas: ["ad".to_owned(), "app".to_owned()].into(),
            });
        }
        for (name, info) in infos(self.without_import_sync) {
            let mut ma = MaConfig::new(info);
            ma.retry = RetryPolicy {
                max_attempts: 2,
                backoff: std::time::Duration::from_secs(5),
                max_backoff: std::time::Duration::from_secs(30),
                ..RetryPolicy::default()
            };
            ma.imports = name == "hr";
            ma.fingerprint = format!("{name}-{generation}");
            ma.rules_fingerprint = format!("{name}-rules");
            if self.blackout && name == "app" {
                let window = BlackoutConfig {
                    cron: Some("0 * * * *".into()),
                    duration: Some("10m".into()),
                    ..BlackoutConfig::default()
                };
                ma.blackouts = Blackouts::from_configs(&[window]).expect("a valid window");
            }
            config.mas.insert(name, ma);
        }
        config
    }
}

/// A run the machine started, in progress.
#[derive(Clone, Debug)]
pub struct Flight {
    pub request: QueuedRequest,
    pub run_id: RunId,
    pub cancelled: bool,
    pub has_sync: bool,
}

/// A request the test made, and whether the test allows it to be dropped
/// (a clear-queue, a rejection or a reload that removed its profile).
#[derive(Clone, Debug)]
pub struct Made {
    pub seq: u64,
    pub ma: String,
    pub profile: String,
    pub exclusive: bool,
    pub may_drop: bool,
}

/// A start the machine asked for.
#[derive(Clone, Debug)]
pub struct Started {
    pub seq: u64,
    pub ma: String,
    pub profile: String,
    pub exclusive: bool,
    pub run_id: RunId,
}

/// The machine, the world, the store's run history and the clock.
pub struct Sim {
    pub setup: Setup,
    pub world: World,
    pub machine: Machine,
    pub now: DateTime<Utc>,
    pub runs: BTreeMap<RunId, RunRecord>,
    pub flights: Vec<Flight>,
    /// Runs started outside the machine, in progress.
    pub external: Vec<RunId>,
    /// Answers of the engine and store not yet delivered.
    pub answers: VecDeque<Event>,
    pub replies: BTreeMap<ReplyId, Answer>,
    /// The state last persisted, as the store keeps it (JSON).
    pub persisted: Option<String>,
    pub wake: Option<DateTime<Utc>>,
    pub notices: Vec<Notice>,
    /// Every event the machine published, in order.
    pub published: Vec<ServiceEvent>,
    /// Each MA's state as the published `state-changed` events say, replayed
    /// from the last `service started`.
    pub replayed: BTreeMap<String, MaStateName>,
    pub made: Vec<Made>,
    pub starts: Vec<Started>,
    /// Operators' stops in force.
    pub stopped_mas: Vec<String>,
    pub paused_mas: Vec<String>,
    pub restarts: u32,
    pub trigger_restarts: u32,
    /// Reconciliations that found nothing to start.
    pub idle_reconciles: u32,
    generation: u32,
    rules_changed: bool,
    seq: u64,
    last_reply: u64,
    seed: u64,
}

impl Sim {
    pub fn new(setup: Setup) -> Sim {
        let config = setup.config(0);
        let machine = Machine::new(
            config,
            Options {
                once: false,
                seed: 7,
            },
        );
        let mut sim = Sim {
            world: World::new(setup.echoes),
            setup,
            machine,
            now: at(0),
            runs: BTreeMap::new(),
            flights: Vec::new(),
            external: Vec::new(),
            answers: VecDeque::new(),
            replies: BTreeMap::new(),
            persisted: None,
            wake: None,
            notices: Vec::new(),
            published: Vec::new(),
            replayed: BTreeMap::new(),
            made: Vec::new(),
            starts: Vec::new(),
            stopped_mas: Vec::new(),
            paused_mas: Vec::new(),
            restarts: 0,
            trigger_restarts: 0,
            idle_reconciles: 0,
            generation: 0,
            rules_changed: false,
            seq: 0,
            last_reply: 0,
            seed: 7,
        };
        sim.world.staging_threshold = sim.setup.threshold;
        let startup = sim.startup(PersistedState::default());
        sim.handle(Event::Started(Box::new(startup)));
        sim
    }

    /// Hands one event to the machine and carries out its effects.
    pub fn handle(&mut self, event: Event) {
        self.seq += 1;
        let effects = self.machine.handle(event, self.now);
        self.wake = None;
        for effect in effects {
            self.carry_out(effect);
        }
        self.check_replayed_states();
    }

    /// Replays one published event: a `state-changed` must start from the
    /// state last published for its MA (none missed, none twice).
    fn replay(&mut self, event: &ServiceEvent) {
        match event {
            ServiceEvent::Service {
                state: ServiceState::Started,
                ..
            } => self.replayed.clear(),
            ServiceEvent::StateChanged {
                ma,
                from,
                to,
                detail,
                ..
            } => {
                // Running on to another profile is the one change of a
                // state into itself.
                let next_profile = *to == Some(MaStateName::Running) && detail.is_some();
                assert!(
                    from != to || next_profile,
                    "a state-changed that changes nothing: {event:?}"
                );
                assert_eq!(
                    self.replayed.get(ma).copied(),
                    *from,
                    "a state change of {ma} was missed or published twice: {event:?}"
                );
                match to {
                    Some(to) => self.replayed.insert(ma.clone(), *to),
                    None => self.replayed.remove(ma),
                };
            }
            _ => {}
        }
    }

    /// The replayed `state-changed` events give every MA's state as the
    /// status names it.
    pub fn check_replayed_states(&self) {
        let status: BTreeMap<String, MaStateName> = self
            .machine
            .status(|_| None)
            .mas
            .into_iter()
            .map(|(ma, s)| (ma, s.state.name()))
            .collect();
        assert_eq!(
            self.replayed, status,
            "the published states are not the status's"
        );
    }

    fn reply_id(&mut self) -> ReplyId {
        self.last_reply += 1;
        ReplyId(self.last_reply)
    }

    fn carry_out(&mut self, effect: Effect) {
        match effect {
            Effect::Start(request) => self.start(request),
            Effect::Cancel { ma } => {
                for f in self.flights.iter_mut().filter(|f| f.request.ma == ma) {
                    f.cancelled = true;
                }
            }
            Effect::Persist(state) => {
                self.persisted = Some(serde_json::to_string(&state).expect("the state encodes"));
            }
            Effect::Notify(notice) => self.notices.push(notice),
            Effect::Publish(event) => {
                self.replay(&event);
                self.published.push(event);
            }
            Effect::CheckApproval { reply, ma } => {
                let found = Ok(Stops {
                    stopped_export: self.world.deletion_stopped.contains(&ma),
                    held_staging: self.world.held.contains(&ma),
                });
                self.answers
                    .push_back(Event::ApprovalChecked { reply, ma, found });
            }
            Effect::Approve {
                reply,
                ma,
                stopped_export,
            } => {
                let result = self.world.approve(&ma);
                self.answers.push_back(Event::Approved {
                    reply,
                    ma,
                    stopped_export,
                    result,
                });
            }
            Effect::Reject { reply, ma } => {
                let result = self.world.reject(&ma);
                self.answers
                    .push_back(Event::Rejected { reply, ma, result });
            }
            Effect::RestartTriggers { .. } => self.trigger_restarts += 1,
            Effect::ImportSeen { .. } | Effect::TrimHistory { .. } => {}
            Effect::ReadCounts { .. } => self.answers.push_back(Event::Counts(self.counts())),
            Effect::LookForRuns { after, known, .. } => {
                let seen = self
                    .runs
                    .range(after + 1..)
                    .map(|(id, r)| {
                        let ended = r.status != RunStatus::InProgress;
                        let facts = if ended && !known.contains(id) {
                            self.facts(r)
                        } else {
                            RunFacts::default()
                        };
                        SeenRun {
                            record: r.clone(),
                            facts,
                        }
                    })
                    .collect();
                self.answers.push_back(Event::RunsSeen(Ok(seen)));
            }
            Effect::CheckRules => self
                .answers
                .push_back(Event::RulesChecked(Ok(self.full_syncs_needed()))),
            Effect::Reply { reply, answer } => {
                self.replies.insert(reply, answer);
            }
            Effect::StopService { .. } => self.answers.push_back(Event::Shutdown),
            Effect::Stopped => {}
            Effect::WakeAt(at) => self.wake = Some(at),
        }
    }

    /// What the store says after `record` ended.
    fn facts(&self, record: &RunRecord) -> RunFacts {
        let (mas, hold) = facts_wanted(record);
        RunFacts {
            cs: mas
                .into_iter()
                .map(|ma| {
                    let cs = self.world.cs.get(&ma).copied();
                    (ma, cs)
                })
                .collect(),
            deletion_stop: None,
            staging_exceeded: if hold {
                vec![format!("updates > {}", self.setup.threshold.unwrap_or(0))]
            } else {
                Vec::new()
            },
            // The simulated store lifts no hold by itself.
            staging_hold_gone: false,
            deletion_stops_gone: Vec::new(),
        }
    }

    fn next_run_id(&self) -> RunId {
        self.runs.keys().next_back().copied().unwrap_or(0) + 1
    }

    fn start(&mut self, request: QueuedRequest) {
        let ma = request.ma.clone();
        let steps = infos(self.setup.without_import_sync)
            .get(&ma)
            .and_then(|i| i.steps(&request.profile).map(<[_]>::to_vec));
        let Some(steps) = steps else {
            let error = EngineCallError::UnknownProfile {
                ma: ma.clone(),
                profile: request.profile.clone(),
            };
            self.answers.push_back(Event::RunEnded(Box::new(RunEnd {
                ma,
                outcome: RunOutcome::NotStarted(error),
                after: Default::default(),
                facts: RunFacts::default(),
            })));
            return;
        };
        let id = self.next_run_id();
        let mut record = RunRecord {
            id,
            ma: ma.clone(),
            profile: request.profile.clone(),
            status: RunStatus::InProgress,
            started_at: self.now,
            ended_at: None,
            reason: request.reason.clone(),
            steps: Vec::new(),
        };
        let busy = self
            .external
            .iter()
            .any(|e| self.runs.get(e).is_some_and(|r| r.ma == ma));
        if busy {
            // The engine's lease: the MA runs a profile someone else started.
            record.status = RunStatus::NoStartMaAlreadyRunning;
            record.ended_at = Some(self.now);
            self.runs.insert(id, record.clone());
            self.answers.push_back(Event::RunEnded(Box::new(RunEnd {
                ma,
                outcome: RunOutcome::Ran(record),
                after: Default::default(),
                facts: RunFacts::default(),
            })));
            return;
        }
        self.runs.insert(id, record);
        self.starts.push(Started {
            seq: self.seq,
            ma: ma.clone(),
            profile: request.profile.clone(),
            exclusive: request.exclusive,
            run_id: id,
        });
        self.flights.push(Flight {
            has_sync: has_sync_step(&steps),
            request,
            run_id: id,
            cancelled: false,
        });
        self.check_invariants(&ma);
    }

    /// Runs the steps of run `id` on the world; returns its status.
    fn run_steps(&mut self, id: RunId, stop: Option<RunStatus>) -> RunRecord {
        let mut record = self.runs.get(&id).cloned().expect("a recorded run");
        let steps = infos(self.setup.without_import_sync)
            .get(&record.ma)
            .and_then(|i| i.steps(&record.profile).map(<[_]>::to_vec))
            .unwrap_or_default();
        for (i, step) in steps.iter().enumerate() {
            let done = self.world.step(&record.ma, *step, stop.filter(|_| i == 0));
            record.steps.push(StepRecord {
                step_type: *step,
                status: done.status,
                started_at: self.now,
                ended_at: Some(self.now),
                counters: done.counters,
                errors: 0,
                message: (done.status == RunStatus::StoppedServerDown)
                    .then(|| format!("the system of `{}` is down", record.ma)),
            });
            if done.last {
                break;
            }
        }
        record.status = record
            .steps
            .iter()
            .map(|s| s.status)
            .max_by_key(|s| s.severity())
            .unwrap_or(RunStatus::CompletedNoObjects);
        record.ended_at = Some(self.now);
        self.runs.insert(id, record.clone());
        record
    }

    /// Ends the run in flight at `pick` (modulo): cancelled runs stop
    /// `stopped-user-requested`, `stop` ones `stopped-connectivity`, both
    /// after half their first step.
    pub fn complete(&mut self, pick: usize, stop: bool) {
        if self.flights.is_empty() {
            return;
        }
        let flight = self.flights.remove(pick % self.flights.len());
        self.now += Duration::seconds(1);
        let status = if flight.cancelled {
            Some(RunStatus::StoppedUserRequested)
        } else {
            stop.then_some(RunStatus::StoppedConnectivity)
        };
        let record = self.run_steps(flight.run_id, status);
        let facts = self.facts(&record);
        self.handle(Event::RunEnded(Box::new(RunEnd {
            ma: record.ma.clone(),
            outcome: RunOutcome::Ran(record),
            after: Default::default(),
            facts,
        })));
    }

    /// Ends the run in flight on `ma`.
    pub fn complete_on(&mut self, ma: &str, stop: bool) {
        let pick = self
            .flights
            .iter()
            .position(|f| f.request.ma == ma)
            .unwrap_or_else(|| panic!("nothing runs on {ma}"));
        self.complete(pick, stop);
    }

    /// Delivers the answer at `pick` (modulo), out of order.
    pub fn deliver(&mut self, pick: usize) {
        if self.answers.is_empty() {
            return;
        }
        let event = self
            .answers
            .remove(pick % self.answers.len())
            .expect("an answer");
        let reconcile = matches!(event, Event::Counts(_));
        self.handle(event);
        if reconcile && self.flights.is_empty() && self.machine.quiescent() {
            self.idle_reconciles += 1;
        }
    }

    pub fn deliver_all(&mut self) {
        while !self.answers.is_empty() {
            self.deliver(0);
        }
    }

    /// Moves the clock to `to` and tells the machine.
    pub fn advance_to(&mut self, to: DateTime<Utc>) {
        if to > self.now {
            self.now = to;
        }
        self.handle(Event::Tick);
    }

    pub fn advance(&mut self, secs: i64) {
        let to = self.now + Duration::seconds(secs);
        self.advance_to(to);
    }

    /// A trigger asks for a profile.
    pub fn trigger(&mut self, ma: &str, profile: &str, run_immediate: bool, exclusive: bool) {
        let mut request = Request::trigger(ma, profile, "sim");
        request.run_immediate = run_immediate;
        request.exclusive = exclusive;
        self.note(&request);
        self.handle(Event::Triggered(request));
    }

    fn note(&mut self, request: &Request) {
        self.made.push(Made {
            seq: self.seq + 1,
            ma: request.ma.clone(),
            profile: request.profile.clone(),
            exclusive: request.exclusive,
            may_drop: false,
        });
    }

    /// An operator queues a profile; returns the answer.
    pub fn queue(&mut self, ma: &str, profile: &str) -> Answer {
        let request = Request {
            reason: RunReason::Manual { by: "sim".into() },
            ..Request::trigger(ma, profile, "sim")
        };
        let reply = self.reply_id();
        let answer_ok = infos(self.setup.without_import_sync)
            .get(ma)
            .is_some_and(|i| i.steps(profile).is_some());
        if answer_ok {
            self.note(&request);
        }
        self.handle(Event::Queue { reply, request });
        self.replies
            .remove(&reply)
            .expect("a queue request is answered at once")
    }

    /// An operator's control; answers that need the engine are delivered.
    pub fn control(&mut self, action: Control, ma: Option<&str>) -> Result<String, Refusal> {
        let reply = self.reply_id();
        self.handle(Event::Control {
            reply,
            action,
            ma: ma.map(str::to_owned),
            by: "sim".into(),
        });
        while !self.replies.contains_key(&reply) && !self.answers.is_empty() {
            self.deliver(0);
        }
        match self.replies.remove(&reply) {
            Some(Answer::Done(answer)) => answer,
            other => panic!("{action}: no answer ({other:?})"),
        }
    }

    /// The drops an operator's control allows (for "no request lost").
    pub fn allow_drops(&mut self, ma: &str, only_syncs: bool) {
        let infos = infos(self.setup.without_import_sync);
        for m in self.made.iter_mut().filter(|m| m.ma == ma) {
            let sync = infos
                .get(ma)
                .and_then(|i| i.steps(&m.profile))
                .is_none_or(has_sync_step);
            if !only_syncs || sync {
                m.may_drop = true;
            }
        }
    }

    pub fn oscillations(&self) -> usize {
        self.notices
            .iter()
            .filter(|n| matches!(n, Notice::Oscillation { .. }))
            .count()
    }
}
