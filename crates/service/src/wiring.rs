//! How the service meets the state machine: operators' commands to the
//! running service, the machine's view of the configuration, and the
//! triggers' requests and states as the machine takes them.

use crate::config::{ControllerConfig, MaControllerConfig};
use crate::status::Status;
use autosync_controller::machine::{MaConfig, MachineConfig, Refusal};
use autosync_controller::{PushOutcome, Request, SyncEngine};
use autosync_triggers::{BuildContext, TriggerConfig, TriggerRequest, TriggerSet, TriggerState};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// An operator's command to a running service.
pub enum Command {
    /// Queue `profile` on `ma` (back of the queue unless `run_immediate`).
    Queue {
        ma: String,
        profile: String,
        exclusive: bool,
        run_immediate: bool,
        by: String,
        reply: oneshot::Sender<Result<PushOutcome, Refusal>>,
    },
    /// Every MA's state and queue (from memory).
    Status { reply: oneshot::Sender<Status> },
    /// An operator's control (start, stop, cancel, clear-queue, pause,
    /// resume, approve, reject, maintenance) on one MA or, with `ma: None`,
    /// on every MA / the whole service. The reply says what was done, or
    /// why it was refused.
    Control {
        action: crate::Control,
        ma: Option<String>,
        by: String,
        reply: oneshot::Sender<Result<String, Refusal>>,
    },
    /// A new configuration was loaded and validated (and its engine built):
    /// switch to it. Running profiles finish on the engine they started on;
    /// MAs whose definition changed get new triggers; requests for MAs or
    /// profiles that no longer exist are dropped with a warning. The reply
    /// says what changed.
    Reload {
        engine: Arc<dyn SyncEngine>,
        config: Box<ControllerConfig>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// A configuration reload was refused (it did not load or validate):
    /// the running one stays; the notice goes to operators.
    ReloadRejected { message: String },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Queue { ma, profile, .. } => {
                write!(f, "Queue {{ ma: {ma:?}, profile: {profile:?} }}")
            }
            Command::Status { .. } => f.write_str("Status"),
            Command::Control { action, ma, by, .. } => {
                write!(f, "Control {{ action: {action}, ma: {ma:?}, by: {by:?} }}")
            }
            Command::Reload { .. } => f.write_str("Reload"),
            Command::ReloadRejected { message } => write!(f, "ReloadRejected({message:?})"),
        }
    }
}

/// The machine's view of the service's configuration.
pub(crate) fn machine_config(config: &ControllerConfig) -> MachineConfig {
    MachineConfig {
        scheduler: config.scheduler.clone(),
        start_stagger: config.start_stagger,
        oscillation_limit: config.oscillation_limit,
        reconcile_every: config.reconcile_every,
        keep_history: config.keep_history,
        full_sync_on_rule_change: config.full_sync_on_rule_change,
        metaverse_fingerprint: config.metaverse_fingerprint.clone(),
        // What the notifications ignore is no `run-failed` on the event
        // stream either (the notifications' default without a section).
        ignore_statuses: config.notifications.as_ref().map_or_else(
            || autosync_notify::NotifyConfig::default().ignored_statuses(),
            autosync_notify::NotifyConfig::ignored_statuses,
        ),
        mas: config
            .mas
            .iter()
            .map(|(name, m)| {
                let ma = MaConfig {
                    info: m.info.clone(),
                    follow_ups: m.follow_ups,
                    profiles: m.profiles.clone(),
                    auto_start: m.auto_start,
                    enabled: m.enabled,
                    retry: m.retry.clone(),
                    blackouts: m.blackouts.clone(),
                    imports: m.imports,
                    fingerprint: fingerprint(config, m),
                    rules_fingerprint: m.rules_fingerprint.clone(),
                };
                (name.clone(), ma)
            })
            .collect(),
    }
}

/// What a reload compares to tell whether MA `ma` changed: the digest of
/// its definition, the text of its hooks as compiled, and the text of
/// every file its triggers read as they are built (a script trigger's
/// `file`), read now. An edited script is a
/// changed MA, whose triggers are built again (it kept running the old
/// script until a restart, found by a black-box review); one that does
/// not compile was refused by the reload's validation, as at start.
fn fingerprint(config: &ControllerConfig, ma: &MaControllerConfig) -> String {
    use std::hash::{Hash, Hasher};
    let files: Vec<&std::path::Path> = ma
        .triggers
        .iter()
        .filter_map(TriggerConfig::file_read_at_build)
        .collect();
    // A hook read from a file: its text as compiled (an edited hook file
    // is a changed MA: the reload said "no management agent changed",
    // found by a black-box review).
    let hooks = ma.hooks.digest();
    if files.is_empty() && hooks == 0 {
        return ma.fingerprint.clone();
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    hooks.hash(&mut h);
    for file in files {
        let path = config.base_dir.join(file);
        match std::fs::read(&path) {
            Ok(text) => text.hash(&mut h),
            // Unreadable now (validation read it): changed, and the
            // rebuild says why.
            Err(e) => e.to_string().hash(&mut h),
        }
    }
    format!("{} files:{:016x}", ma.fingerprint, h.finish())
}

/// A trigger's request as the controller queues it.
pub(crate) fn request_of(t: TriggerRequest) -> Request {
    let mut request = Request::trigger(&t.ma, &t.profile, &t.trigger);
    request.exclusive = t.exclusive;
    request.run_immediate = t.run_immediate;
    request
}

/// The triggers' persisted states (opaque to the machine) as they read them.
pub(crate) fn trigger_states(
    ma: &str,
    values: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, TriggerState> {
    values
        .iter()
        .filter_map(|(key, value)| match serde_json::from_value(value.clone()) {
            Ok(state) => Some((key.clone(), state)),
            Err(e) => {
                tracing::warn!(ma, trigger = %key, "the trigger's saved state cannot be read ({e}); starting afresh");
                None
            }
        })
        .collect()
}

/// Builds MA `name`'s triggers from the configuration with their saved
/// states (not started); the errors as one sentence.
pub(crate) fn build_trigger_set(
    config: &ControllerConfig,
    name: &str,
    states: &BTreeMap<String, serde_json::Value>,
) -> Result<TriggerSet, String> {
    let Some(ma) = config.mas.get(name) else {
        return Err(format!("no management agent named `{name}`"));
    };
    let profiles: Vec<String> = ma.info.profiles.keys().cloned().collect();
    let ctx = BuildContext {
        ma: name,
        base_dir: &config.base_dir,
        default_watch_path: ma.connector_path.as_deref(),
        profiles: &profiles,
    };
    TriggerSet::build(&ctx, &ma.triggers, &trigger_states(name, states)).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// What each MA's triggers are, one line per MA in name order, as the
/// service builds them (defaults included): what `autosync run` logs when
/// the configuration has no controller section.
pub fn trigger_lines(config: &ControllerConfig) -> Vec<String> {
    config
        .mas
        .iter()
        .map(|(name, ma)| {
            let what = match build_trigger_set(config, name, &BTreeMap::new()) {
                Err(e) => format!("its triggers cannot be built: {e}"),
                Ok(set) if set.triggers().is_empty() => {
                    "none (it runs when the cycle or an operator asks for it)".to_owned()
                }
                Ok(set) => set
                    .triggers()
                    .iter()
                    .map(|t| format!("{} asks for `{}`", t.description(), t.profile()))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let default = if ma.default_triggers {
                " (default)"
            } else {
                ""
            };
            let start = if !ma.enabled {
                "; disabled"
            } else if !ma.auto_start {
                "; not started (auto_start = false)"
            } else {
                ""
            };
            format!("MA `{name}` triggers{default}: {what}{start}")
        })
        .collect()
}
