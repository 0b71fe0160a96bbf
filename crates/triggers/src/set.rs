//! All the triggers of one MA, built from its configuration and started and
//! stopped together. The controller owns one `TriggerSet` per MA: `start`
//! spawns every trigger on the tokio runtime under a fresh cancellation
//! token, `stop` cancels them and waits for them, and a later `start` builds
//! the runners again from the validated configuration and the latest trigger
//! state, so a stop/start leaves working triggers (the original's schedules
//! were dead after a controller stop/start). Each trigger is its own task: a
//! failing one never stops the others.

use crate::TriggerState;
use crate::auto_import::AutoImportTrigger;
use crate::change_notification::ChangeNotificationTrigger;
use crate::change_poll::ChangePollTrigger;
use crate::clock::Clock;
use crate::config::{TriggerConfig, TriggerConfigError};
use crate::file_watch::FileWatchTrigger;
use crate::interval::IntervalTrigger;
use crate::schedule::ScheduleTrigger;
use crate::script::{ScriptHost, ScriptTrigger};
use crate::sink::RequestSink;
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What building an MA's triggers needs besides their configuration.
#[derive(Clone, Copy, Debug)]
pub struct BuildContext<'a> {
    pub ma: &'a str,
    /// The configuration file's folder (relative paths resolve against it).
    pub base_dir: &'a Path,
    /// The MA connector's file (its file-watch offer), the default for
    /// file-watch triggers.
    pub default_watch_path: Option<&'a Path>,
    /// The MA's run profile names: a trigger asking for another one is a
    /// configuration error. Empty: not checked.
    pub profiles: &'a [String],
}

/// What running triggers talk to.
#[derive(Clone)]
pub struct TriggerDeps {
    pub sink: Arc<dyn RequestSink>,
    pub clock: Arc<dyn Clock>,
    pub host: Arc<dyn ScriptHost>,
    /// Seeds the interval triggers' jitter (tests); `None`: from the OS.
    pub rng_seed: Option<u64>,
}

/// One validated trigger.
#[derive(Clone, Debug)]
pub enum Trigger {
    Interval(IntervalTrigger),
    Schedule(Box<ScheduleTrigger>),
    AutoImport(AutoImportTrigger),
    FileWatch(FileWatchTrigger),
    ChangePoll(ChangePollTrigger),
    ChangeNotification(ChangeNotificationTrigger),
    Script(ScriptTrigger),
}

impl Trigger {
    fn ask(&self) -> &crate::config::Ask {
        match self {
            Trigger::Interval(t) => &t.ask,
            Trigger::Schedule(t) => &t.ask,
            Trigger::AutoImport(t) => &t.ask,
            Trigger::FileWatch(t) => &t.ask,
            Trigger::ChangePoll(t) => &t.ask,
            Trigger::ChangeNotification(t) => &t.ask,
            Trigger::Script(t) => &t.ask,
        }
    }

    /// Stable key of the trigger within its MA (for its persisted state).
    pub fn key(&self) -> &str {
        &self.ask().key
    }

    /// How requests name the trigger.
    pub fn description(&self) -> &str {
        &self.ask().trigger
    }

    /// The run profile the trigger asks for.
    pub fn profile(&self) -> &str {
        &self.ask().profile
    }
}

fn check_known_profile(
    ctx: &BuildContext<'_>,
    index: usize,
    kind: &str,
    trigger: Trigger,
) -> Result<Trigger, TriggerConfigError> {
    let profile = &trigger.ask().profile;
    let scripted = matches!(trigger, Trigger::Script(_));
    if scripted || ctx.profiles.is_empty() || ctx.profiles.contains(profile) {
        return Ok(trigger);
    }
    Err(TriggerConfigError {
        ma: ctx.ma.to_owned(),
        index,
        kind: kind.to_owned(),
        key: "profile".into(),
        message: autosync_model::suggest::unknown_profile(
            ctx.ma,
            profile,
            ctx.profiles.iter().map(String::as_str),
        ),
    })
}

struct Running {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// The triggers of one MA.
pub struct TriggerSet {
    ma: String,
    triggers: Vec<Trigger>,
    states: BTreeMap<String, Arc<Mutex<TriggerState>>>,
    last_import: watch::Sender<Option<DateTime<Utc>>>,
    running: Option<Running>,
}

impl std::fmt::Debug for TriggerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerSet")
            .field("ma", &self.ma)
            .field(
                "triggers",
                &self
                    .triggers
                    .iter()
                    .map(Trigger::description)
                    .collect::<Vec<_>>(),
            )
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl TriggerSet {
    /// Validates every trigger (reporting every bad one) and prepares them;
    /// `states` are the persisted trigger states by key.
    pub fn build(
        ctx: &BuildContext<'_>,
        configs: &[TriggerConfig],
        states: &BTreeMap<String, TriggerState>,
    ) -> Result<TriggerSet, Vec<TriggerConfigError>> {
        let ma = ctx.ma;
        let mut triggers = Vec::with_capacity(configs.len());
        let mut errors = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (index, config) in configs.iter().enumerate() {
            let built = match config {
                TriggerConfig::Interval(c) => c.validate(ma, index).map(Trigger::Interval),
                TriggerConfig::Schedule(c) => c
                    .validate(ma, index)
                    .map(|t| Trigger::Schedule(Box::new(t))),
                TriggerConfig::AutoImport(c) => c.validate(ma, index).map(Trigger::AutoImport),
                TriggerConfig::FileWatch(c) => c
                    .validate(ma, index, ctx.base_dir, ctx.default_watch_path)
                    .map(Trigger::FileWatch),
                TriggerConfig::ChangePoll(c) => c.validate(ma, index).map(Trigger::ChangePoll),
                TriggerConfig::ChangeNotification(c) => {
                    c.validate(ma, index).map(Trigger::ChangeNotification)
                }
                TriggerConfig::Script(c) => {
                    c.validate(ma, index, ctx.base_dir).map(Trigger::Script)
                }
            };
            let built = built.and_then(|t| check_known_profile(ctx, index, config.kind(), t));
            match built {
                Ok(trigger) => {
                    // Schedules keep state by key: two with one key would share it.
                    let keyed = matches!(trigger, Trigger::Schedule(_));
                    if keyed && let Some(first) = seen.insert(trigger.key().to_owned(), index) {
                        errors.push(TriggerConfigError {
                            ma: ma.to_owned(),
                            index,
                            kind: config.kind().to_owned(),
                            key: "name".into(),
                            message: format!("same trigger as triggers[{first}]; give one of them a different `name`"),
                        });
                    }
                    triggers.push(trigger);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let states = triggers
            .iter()
            .filter(|t| matches!(t, Trigger::Schedule(_)))
            .map(|t| {
                let state = states.get(t.key()).cloned().unwrap_or_default();
                (t.key().to_owned(), Arc::new(Mutex::new(state)))
            })
            .collect();
        Ok(TriggerSet {
            ma: ma.to_owned(),
            triggers,
            states,
            last_import: watch::Sender::new(None),
            running: None,
        })
    }

    pub fn ma(&self) -> &str {
        &self.ma
    }

    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    /// The current state of every trigger that has one, by key.
    pub fn states(&self) -> BTreeMap<String, TriggerState> {
        self.states
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    s.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                )
            })
            .collect()
    }

    /// The MA imported at `at` (any import, whatever caused it): auto-import
    /// triggers count from there. Kept across stop/start.
    pub fn record_import(&self, at: DateTime<Utc>) {
        self.last_import.send_modify(|last| {
            if last.is_none_or(|l| l < at) {
                *last = Some(at);
            }
        });
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Spawns every trigger (inside a tokio runtime). Does nothing when
    /// already running.
    pub fn start(&mut self, deps: &TriggerDeps) {
        if self.running.is_some() {
            return;
        }
        let cancel = CancellationToken::new();
        let mut tasks = Vec::with_capacity(self.triggers.len());
        for (index, trigger) in self.triggers.iter().enumerate() {
            let token = cancel.child_token();
            let sink = deps.sink.clone();
            let clock = deps.clock.clone();
            let task = match trigger.clone() {
                Trigger::Interval(t) => {
                    let rng = match deps.rng_seed {
                        Some(seed) => StdRng::seed_from_u64(seed.wrapping_add(index as u64)),
                        None => IntervalTrigger::os_rng(),
                    };
                    tokio::spawn(t.run(sink, token, rng))
                }
                Trigger::Schedule(t) => {
                    let state = self.states.entry(t.ask.key.clone()).or_default().clone();
                    tokio::spawn((*t).run(state, clock, sink, token))
                }
                Trigger::AutoImport(t) => {
                    tokio::spawn(t.run(self.last_import.subscribe(), clock, sink, token))
                }
                // The watch is armed before `start` returns, so a change made
                // after it is seen (a failure is retried by `run`).
                Trigger::FileWatch(t) => match t.watch() {
                    Ok(active) => tokio::spawn(async move {
                        t.run_on(active, clock.as_ref(), sink.as_ref(), &token)
                            .await;
                    }),
                    Err(_) => tokio::spawn(t.run(clock, sink, token)),
                },
                Trigger::ChangePoll(t) => tokio::spawn(t.run(clock, sink, token)),
                Trigger::ChangeNotification(t) => tokio::spawn(t.run(clock, sink, token)),
                Trigger::Script(t) => tokio::spawn(t.run(deps.host.clone(), clock, sink, token)),
            };
            tasks.push(task);
        }
        tracing::info!(ma = %self.ma, triggers = tasks.len(), "triggers started");
        self.running = Some(Running { cancel, tasks });
    }

    /// Cancels every trigger and waits until they have ended (a script call
    /// in progress finishes first, within its time budget).
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.cancel.cancel();
        for task in running.tasks {
            if let Err(e) = task.await
                && e.is_panic()
            {
                tracing::error!(ma = %self.ma, "a trigger panicked: {e}");
            }
        }
        tracing::info!(ma = %self.ma, "triggers stopped");
    }
}

impl Drop for TriggerSet {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.cancel.cancel();
        }
    }
}
