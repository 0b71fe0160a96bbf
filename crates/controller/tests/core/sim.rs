//! A small simulated world that drives `decide`, the queues and the
//! scheduler together, the way the executor will: connector spaces with
//! pending counts, runs that complete in whatever order the test picks, with
//! counters computed from the world. It simulates the pure core; it stands
//! in for no server.

use crate::support::at;
use autosync_controller::{
    ControllerView, CsState, LockGroup, MaInfo, MaState, MaView, ProfileOverrides, PushOutcome,
    QueuedRequest, Queues, Report, Request, RequestId, RunMode, Running, Scheduler, Slot, decide,
    reconcile, resolve_profiles,
};
use autosync_model::{
    ExportCounters, ImportCounters, OutboundCounters, RunRecord, RunStatus, StepCounters,
    StepRecord, StepType, SyncCounters,
};
use std::collections::{BTreeMap, BTreeSet};

pub const MAS: [&str; 4] = ["hr", "ad", "app", "ldap"];

/// Every MA's profiles; `ldap` has no delta import, `hr` also has an
/// import-and-sync profile.
fn infos() -> BTreeMap<String, MaInfo> {
    use StepType::*;
    MAS.iter()
        .map(|ma| {
            let mut profiles = BTreeMap::from([
                ("full-import".to_owned(), vec![FullImport]),
                ("delta-sync".to_owned(), vec![DeltaSync]),
                ("full-sync".to_owned(), vec![FullSync]),
                ("export".to_owned(), vec![Export]),
            ]);
            if *ma != "ldap" {
                profiles.insert("delta-import".into(), vec![DeltaImport]);
            }
            if *ma == "hr" {
                profiles.insert("import-sync".into(), vec![DeltaImport, DeltaSync]);
            }
            (
                (*ma).to_owned(),
                MaInfo {
                    name: (*ma).to_owned(),
                    profiles,
                },
            )
        })
        .collect()
}

/// The connected systems and the engine's connector spaces, as counts.
pub struct World {
    pub cs: BTreeMap<String, CsState>,
    /// Changes waiting in each connected system for its next import.
    pub source: BTreeMap<String, u64>,
    /// Where a sync of each MA sends outbound changes.
    pub flows: BTreeMap<String, Vec<String>>,
    /// How many more confirming imports may find the target changed what it
    /// was sent (an "echo" that needs another sync); `None`: forever.
    pub echoes: Option<u32>,
}

impl World {
    fn new(echoes: Option<u32>) -> Self {
        let flows = [
            ("hr", vec!["ad", "app"]),
            ("ad", vec!["app"]),
            ("app", vec!["ad"]),
            ("ldap", vec!["hr"]),
        ]
        .into_iter()
        .map(|(ma, to)| (ma.to_owned(), to.into_iter().map(str::to_owned).collect()))
        .collect();
        World {
            cs: MAS
                .iter()
                .map(|m| ((*m).to_owned(), CsState::default()))
                .collect(),
            source: MAS.iter().map(|m| ((*m).to_owned(), 0)).collect(),
            flows,
            echoes: echoes.map(|n| n.min(1_000)),
        }
    }

    pub fn quiescent(&self) -> bool {
        self.cs.values().all(CsState::is_quiescent)
    }

    /// Does one step on `ma`; a stopped step does half its work (rounded up).
    fn step(&mut self, ma: &str, step: StepType, stopped: bool) -> StepCounters {
        let part = |n: u64| if stopped { n - n / 2 } else { n };
        if step.is_import() {
            let cs = self.cs.entry(ma.to_owned()).or_default();
            let confirmed = part(cs.unconfirmed_export);
            cs.unconfirmed_export -= confirmed;
            let source = self.source.entry(ma.to_owned()).or_default();
            let mut staged = part(*source);
            *source -= staged;
            if confirmed > 0 {
                match &mut self.echoes {
                    None => staged += 1,
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        staged += 1;
                    }
                    Some(_) => {}
                }
            }
            cs.pending_import += staged;
            StepCounters::Import(ImportCounters {
                stage_update: staged,
                export_confirmed: confirmed,
                ..Default::default()
            })
        } else if step.is_sync() {
            let cs = self.cs.entry(ma.to_owned()).or_default();
            let n = part(cs.pending_import);
            cs.pending_import -= n;
            let mut outbound = BTreeMap::new();
            if n > 0 {
                for target in self.flows.get(ma).into_iter().flatten() {
                    self.cs.entry(target.clone()).or_default().pending_export += n;
                    let counters = OutboundCounters {
                        export_attribute_flow: n,
                        ..Default::default()
                    };
                    outbound.insert(target.clone(), counters);
                }
            }
            StepCounters::Sync(SyncCounters {
                outbound,
                ..Default::default()
            })
        } else {
            let cs = self.cs.entry(ma.to_owned()).or_default();
            let sent = part(cs.pending_export);
            cs.pending_export -= sent;
            cs.unconfirmed_export += sent;
            StepCounters::Export(ExportCounters {
                updates: sent,
                ..Default::default()
            })
        }
    }
}

/// A run in progress in the simulation.
pub struct InFlight {
    pub request: QueuedRequest,
    pub running: Running,
}

/// The controller's pure core plus the simulated world.
pub struct Sim {
    pub world: World,
    infos: BTreeMap<String, MaInfo>,
    pub view: ControllerView,
    pub queues: Queues,
    pub scheduler: Scheduler,
    pub in_flight: Vec<InFlight>,
    pub reports: Vec<Report>,
    /// Ids waiting in a queue, as the pushes' outcomes say.
    pub live: BTreeSet<RequestId>,
    /// Ids started, in start order, with their MA and profile.
    pub started: Vec<(RequestId, String, String)>,
    pub merged: u64,
    /// MAs an operator stopped: they start nothing and keep their queue.
    pub stopped_mas: BTreeSet<String>,
    /// Every push, merged or not.
    pub pushes: u64,
    /// Runs that ended stopped.
    pub stopped_runs: u64,
    /// Requests that reconciliation made.
    pub reconciled: u64,
    clock: i64,
    next_run_id: i64,
}

impl Sim {
    pub fn new(mode: RunMode, echoes: Option<u32>) -> Self {
        let infos = infos();
        let mut view = ControllerView::default();
        for (name, info) in &infos {
            view.mas.insert(
                name.clone(),
                MaView::new(resolve_profiles(info, &ProfileOverrides::default())),
            );
        }
        Sim {
            world: World::new(echoes),
            infos,
            view,
            queues: Queues::new(),
            scheduler: Scheduler {
                mode,
                lock_groups: Vec::new(),
            },
            in_flight: Vec::new(),
            reports: Vec::new(),
            live: BTreeSet::new(),
            started: Vec::new(),
            merged: 0,
            stopped_mas: BTreeSet::new(),
            pushes: 0,
            stopped_runs: 0,
            reconciled: 0,
            clock: 0,
            next_run_id: 0,
        }
    }

    /// Makes `ad` and `app` a lock group: they never run together.
    pub fn with_lock_group(mut self) -> Self {
        self.scheduler.lock_groups.push(LockGroup {
            name: "directory".into(),
            mas: ["ad".to_owned(), "app".to_owned()].into(),
        });
        self
    }

    /// An operator stops or starts an MA.
    pub fn toggle(&mut self, ma: &str) {
        if !self.stopped_mas.remove(ma) {
            self.stopped_mas.insert(ma.to_owned());
        }
    }

    pub fn profiles(&self, ma: &str) -> Vec<String> {
        self.infos
            .get(ma)
            .map(|i| i.profiles.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn account(&mut self, ma: &str, outcome: PushOutcome) {
        self.pushes += 1;
        match outcome {
            PushOutcome::Queued { id, .. } => {
                assert!(self.live.insert(id), "id {id} handed out twice");
            }
            PushOutcome::Merged { into, .. } => {
                self.merged += 1;
                let queued = self
                    .queues
                    .get(ma)
                    .is_some_and(|q| q.iter().any(|r| r.id == into));
                assert!(queued, "merged into {into}, which is not queued on {ma}");
            }
        }
    }

    pub fn push(&mut self, request: Request) -> PushOutcome {
        let ma = request.ma.clone();
        let outcome = self.queues.push(request, at(self.clock));
        self.account(&ma, outcome);
        outcome
    }

    fn push_all(&mut self, requests: Vec<Request>) {
        let mas: Vec<String> = requests.iter().map(|r| r.ma.clone()).collect();
        let outcomes = self.queues.push_all(requests, at(self.clock));
        for (ma, outcome) in mas.iter().zip(outcomes) {
            self.account(ma, outcome);
        }
    }

    /// Starts what the scheduler says may start; returns how many started.
    pub fn schedule(&mut self) -> usize {
        let running: Vec<Running> = self.in_flight.iter().map(|f| f.running.clone()).collect();
        let plan = {
            let slots: Vec<Slot<'_>> = MAS
                .iter()
                .map(|ma| {
                    let head = self.queues.peek(ma);
                    Slot {
                        ma,
                        state: if self.stopped_mas.contains(*ma) {
                            MaState::Stopped
                        } else {
                            MaState::Active
                        },
                        in_blackout: false,
                        head,
                        head_has_sync: head.is_some_and(|h| self.infos[*ma].has_sync(&h.profile)),
                    }
                })
                .collect();
            self.scheduler.plan(&running, &slots)
        };
        for start in &plan.start {
            let request = self
                .queues
                .pop(&start.ma)
                .expect("the planned head is queued");
            assert_eq!(
                request.id, start.request,
                "the scheduler started the queue's head"
            );
            assert!(self.live.remove(&request.id));
            self.started
                .push((request.id, request.ma.clone(), request.profile.clone()));
            self.in_flight.push(InFlight {
                request,
                running: start.running(),
            });
        }
        self.check_invariants();
        plan.start.len()
    }

    /// Completes the in-flight run at `pick` (modulo), stopped or not, and
    /// queues what `decide` says.
    pub fn complete(&mut self, pick: usize, stopped: bool) {
        if self.in_flight.is_empty() {
            return;
        }
        let InFlight { request, .. } = self.in_flight.remove(pick % self.in_flight.len());
        self.clock += 1;
        self.next_run_id += 1;
        self.stopped_runs += u64::from(stopped);
        let steps = self.infos[&request.ma]
            .steps(&request.profile)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let mut records = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let stop_here = stopped && i == 0;
            let counters = self.world.step(&request.ma, *step, stop_here);
            let status = if stop_here {
                RunStatus::StoppedConnectivity
            } else {
                RunStatus::Success
            };
            records.push(StepRecord {
                step_type: *step,
                status,
                started_at: at(self.clock),
                ended_at: Some(at(self.clock)),
                counters,
                errors: 0,
                message: None,
            });
            if stop_here {
                break;
            }
        }
        let record = RunRecord {
            id: self.next_run_id,
            ma: request.ma.clone(),
            profile: request.profile.clone(),
            status: if stopped {
                RunStatus::StoppedConnectivity
            } else {
                RunStatus::Success
            },
            started_at: at(self.clock),
            ended_at: Some(at(self.clock)),
            reason: request.reason.clone(),
            steps: records,
        };
        self.refresh_view();
        if let Some(m) = self.view.mas.get_mut(&request.ma) {
            m.chain = request.chain.clone();
        }
        let decision = decide(&record, &steps, &self.view);
        self.reports.extend(decision.reports);
        self.push_all(decision.requests);
    }

    fn refresh_view(&mut self) {
        for (ma, m) in self.view.mas.iter_mut() {
            m.cs = self.world.cs.get(ma).copied();
        }
    }

    /// Queues what reconciliation finds; returns how many requests it made.
    pub fn reconcile(&mut self) -> usize {
        self.refresh_view();
        let decision = reconcile(&self.view);
        let n = decision.requests.len();
        self.reconciled += n as u64;
        self.reports.extend(decision.reports);
        self.push_all(decision.requests);
        n
    }

    pub fn oscillations(&self) -> usize {
        self.reports
            .iter()
            .filter(|r| matches!(r, Report::Oscillation { .. }))
            .count()
    }

    /// Runs until nothing runs, nothing is queued and reconciliation finds
    /// nothing; `next` picks (run index, stopped) for each completion.
    /// Returns the number of completions, or `None` past `max_steps`.
    pub fn settle(
        &mut self,
        mut next: impl FnMut() -> (usize, bool),
        max_steps: usize,
    ) -> Option<usize> {
        for steps in 0..max_steps {
            self.schedule();
            if self.in_flight.is_empty() {
                if self.queues.total() > 0 && self.stopped_mas.is_empty() {
                    panic!("an idle engine with queued requests started nothing");
                }
                if self.reconcile() == 0 {
                    return Some(steps);
                }
                continue;
            }
            let (pick, stopped) = next();
            self.complete(pick, stopped);
        }
        None
    }

    /// The rules of "Queues and concurrency", checked after every start.
    pub fn check_invariants(&self) {
        let mut per_ma = BTreeSet::new();
        for f in &self.in_flight {
            assert!(
                per_ma.insert(f.running.ma.clone()),
                "two runs at once on {}",
                f.running.ma
            );
        }
        let syncs = self.in_flight.iter().filter(|f| f.running.has_sync).count();
        assert!(syncs <= 1, "{syncs} syncs at once");
        let alone = self.scheduler.mode == RunMode::Exclusive
            || self.in_flight.iter().any(|f| f.running.exclusive)
            || (self.scheduler.mode == RunMode::Supported && syncs > 0);
        if alone {
            assert!(
                self.in_flight.len() <= 1,
                "a run that must run alone overlaps another"
            );
        }
        let mut queued = BTreeSet::new();
        for (ma, q) in self.queues.iter() {
            let mut keys = BTreeSet::new();
            for r in q.iter() {
                assert!(
                    keys.insert((r.profile.clone(), r.exclusive)),
                    "duplicate {} queued on {ma}",
                    r.profile
                );
                assert_eq!(r.ma, ma);
                queued.insert(r.id);
            }
        }
        assert_eq!(
            queued, self.live,
            "every pushed request is queued or started, none lost"
        );
    }
}
