//! The controller's typed configuration, read from the raw `[controller]`
//! table (global) and each `[ma.controller]` table of a loaded
//! configuration. Every problem becomes a located [`Diagnostic`] (file,
//! line, key), so `autosync check` and `autosync run` report them alike.
//!
//! Defaults: a *source* MA (more import flows than export flows) with no
//! `triggers` key gets what its connector offers ([`crate::changes`]): a
//! file-watch trigger on its connector's file when it has one, so a simple
//! file-to-targets setup needs no controller section at all. Targets need
//! no trigger: the cycle exports to them and confirms. What connectors
//! offer and lend comes from the connector registry.

use crate::changes;
use crate::hooks::{Hooks, HooksConfig};
use autosync_config::keys::{KeyPath, Shape};
use autosync_config::{Diagnostic, Loaded, PathSegment};
use autosync_connector::{Registry, ScriptFunction};
use autosync_controller::{
    BlackoutConfig, Blackouts, DEFAULT_OSCILLATION_LIMIT, FollowUps, LockGroup, MaInfo,
    ProfileError, ProfileOverrides, RetryPolicy, RunMode, Scheduler, resolve_profiles,
};
use autosync_model::{MaDef, RunStatus};
use autosync_notify::{KeySegment, NotifyConfig, SmtpConfig, WebhookConfig};
use autosync_triggers::{BuildContext, HumanDuration, TriggerConfig, TriggerSet, parse_triggers};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// Global keys of `[controller]`.
const GLOBAL_KEYS: &[&str] = &[
    "run_mode",
    "start_stagger",
    "lock_groups",
    "oscillation_limit",
    "auto_start",
    "reconcile_every",
    "retry",
    "keep_history",
    "notifications",
    "full_sync_on_rule_change",
];
/// Keys of `[ma.controller]`.
const MA_KEYS: &[&str] = &[
    "triggers",
    "follow_ups",
    "profiles",
    "auto_start",
    "retry",
    "blackouts",
    "hooks",
    "enabled",
];

pub use autosync_controller::machine::{
    DEFAULT_KEEP_HISTORY, DEFAULT_RECONCILE_EVERY, DEFAULT_START_STAGGER,
};

/// The whole controller configuration.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    pub scheduler: Scheduler,
    /// Minimum time between two starts while something runs (0: none).
    pub start_stagger: Duration,
    pub oscillation_limit: usize,
    /// Period of reconciliation (±10 %).
    pub reconcile_every: Duration,
    /// Run history older than this is trimmed in the background.
    pub keep_history: Duration,
    /// `[controller.notifications]`, validated (none when absent).
    pub notifications: Option<NotifyConfig>,
    /// On a reload that changes an MA's sync rules, queue the full sync
    /// the affected MAs need (else the controller only says so).
    pub full_sync_on_rule_change: bool,
    /// Per MA, in configuration order.
    pub mas: BTreeMap<String, MaControllerConfig>,
    /// A digest of the metaverse's definition (object types, references,
    /// precedence, deletion rules): a reload names a change of it.
    pub metaverse_fingerprint: String,
    /// Folder of the configuration file (trigger paths resolve against it).
    pub base_dir: PathBuf,
    /// Functions the connector types lend to trigger scripts (the
    /// registry's).
    pub script_functions: Vec<ScriptFunction>,
}

/// One MA's controller settings.
#[derive(Clone, Debug)]
pub struct MaControllerConfig {
    pub info: MaInfo,
    pub triggers: Vec<TriggerConfig>,
    /// The triggers came from the default (no `triggers` key).
    pub default_triggers: bool,
    pub follow_ups: FollowUps,
    pub profiles: ProfileOverrides,
    /// Start this MA's triggers and runs at service start.
    pub auto_start: bool,
    /// `false`: the MA is disabled: no trigger, no run, whatever operators
    /// do; its queue is kept for when it is enabled again.
    pub enabled: bool,
    /// The connector's file, when it offers a file watch (the default
    /// file-watch path).
    pub connector_path: Option<PathBuf>,
    /// Retries of runs that end in a retryable status (`[controller.retry]`
    /// with this MA's `retry` keys over it).
    pub retry: RetryPolicy,
    /// Times when no run of this MA starts.
    pub blackouts: Blackouts,
    /// Scripts run before and after each run of this MA.
    pub hooks: Hooks,
    /// The MA has import flows (a full sync of it recomputes what it
    /// contributes).
    pub imports: bool,
    /// A digest of the MA's whole definition (connector, rules, profiles)
    /// and controller section: a reload restarts the MA when it changes.
    pub fingerprint: String,
    /// A digest of the MA's synchronisation rules only (join, projection,
    /// flows, provisioning): when it changes, the MA needs a full sync.
    pub rules_fingerprint: String,
}

/// A stable digest of a JSON value (its canonical text: serde_json's maps
/// are ordered).
fn digest(value: &serde_json::Value) -> String {
    use std::hash::{Hash, Hasher};
    let text = value.to_string();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016x}-{}", h.finish(), text.len())
}

/// The digests of an MA: of everything, and of its sync rules.
fn fingerprints(ma: &MaDef) -> (String, String) {
    let whole = serde_json::to_value(ma).unwrap_or(serde_json::Value::Null);
    let mut rules = whole.clone();
    if let Some(map) = rules.as_object_mut() {
        for key in [
            "connector",
            "controller",
            "run_profiles",
            "profiles",
            "name",
        ] {
            map.remove(key);
        }
    }
    (digest(&whole), digest(&rules))
}

/// `retry = { ... }`, globally or per MA (an MA's keys override the
/// global ones).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryToml {
    #[serde(default)]
    statuses: Option<Vec<RunStatus>>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    backoff: Option<HumanDuration>,
    #[serde(default)]
    max_backoff: Option<HumanDuration>,
}

impl RetryToml {
    fn over(&self, base: &RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            statuses: self
                .statuses
                .clone()
                .unwrap_or_else(|| base.statuses.clone()),
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            backoff: self.backoff.map_or(base.backoff, |d| d.0),
            max_backoff: self.max_backoff.map_or(base.max_backoff, |d| d.0),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUpsToml {
    #[serde(default = "yes")]
    delta_sync: bool,
    #[serde(default = "yes")]
    export: bool,
    #[serde(default = "yes")]
    confirming_import: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesToml {
    #[serde(default)]
    delta_sync: Option<String>,
    #[serde(default)]
    export: Option<String>,
    #[serde(default)]
    confirming_import: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockGroupToml {
    name: String,
    mas: BTreeSet<String>,
}

fn yes() -> bool {
    true
}

/// The shape of the `[controller]` table: the keys [`controller_config`]
/// reads (the others are errors), with the tables they hold, read from
/// the serde types that decode them.
pub fn controller_shape() -> Shape {
    let webhooks = Shape::of::<WebhookConfig>().with("headers", Shape::Leaf.map("header"));
    let notifications = Shape::of::<NotifyConfig>()
        .with("smtp", Shape::of::<SmtpConfig>())
        .with("webhooks", webhooks.array());
    Shape::leaves(GLOBAL_KEYS)
        .with("retry", Shape::of::<RetryToml>())
        .with("lock_groups", Shape::of::<LockGroupToml>().array())
        .with("notifications", notifications)
}

/// The shape of an MA's `[ma.controller]` table (see [`controller_shape`]).
pub fn ma_controller_shape() -> Shape {
    Shape::leaves(MA_KEYS)
        .with(
            "triggers",
            Shape::tagged_of::<TriggerConfig>("type").array(),
        )
        .with("follow_ups", Shape::of::<FollowUpsToml>())
        .with("profiles", Shape::of::<ProfilesToml>())
        .with("retry", Shape::of::<RetryToml>())
        .with("blackouts", Shape::of::<BlackoutConfig>().array())
        .with("hooks", Shape::of::<HooksConfig>())
}

/// Every key the configuration file accepts, the controller's included
/// (see [`autosync_config::keys`]); the connector types' keys come from
/// `registry`.
pub fn accepted_keys(registry: &Registry) -> Vec<KeyPath> {
    autosync_config::keys::accepted(registry, &controller_shape(), &ma_controller_shape())
}

/// Collects diagnostics while reading.
struct Reader<'a> {
    loaded: &'a Loaded,
    diagnostics: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, path: &[PathSegment], message: impl Into<String>) {
        let d = self.loaded.diagnostic_at(path, message);
        self.diagnostics.push(d);
    }

    /// Decodes `table[key]` when present.
    fn get<T: DeserializeOwned>(
        &mut self,
        table: &serde_json::Map<String, serde_json::Value>,
        base: &[PathSegment],
        key: &str,
    ) -> Option<T> {
        let value = table.get(key)?;
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                // At the key inside the value that is wrong
                // (`retry.max_attempts`, `triggers[1].every`), not only at
                // the value's own key.
                let mut path = base.to_vec();
                path.push(PathSegment::key(key));
                for seg in e.path().iter() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => {
                            path.push(PathSegment::Index(*index));
                        }
                        serde_path_to_error::Segment::Map { key } => {
                            path.push(PathSegment::key(key.as_str()));
                        }
                        serde_path_to_error::Segment::Enum { .. }
                        | serde_path_to_error::Segment::Unknown => {}
                    }
                }
                self.error(&path, e.into_inner().to_string());
                None
            }
        }
    }

    /// The table at `base` (an error when the value is not a table).
    fn table<'v>(
        &mut self,
        value: Option<&'v serde_json::Value>,
        base: &[PathSegment],
        known: &[&str],
    ) -> Option<&'v serde_json::Map<String, serde_json::Value>> {
        let value = value?;
        let Some(table) = value.as_object() else {
            self.error(base, "must be a table");
            return None;
        };
        for key in table.keys().filter(|k| !known.contains(&k.as_str())) {
            let mut path = base.to_vec();
            path.push(PathSegment::key(key.as_str()));
            self.error(
                &path,
                format!("unknown key `{key}` (known keys: {})", known.join(", ")),
            );
        }
        Some(table)
    }

    fn duration(
        &mut self,
        table: &serde_json::Map<String, serde_json::Value>,
        base: &[PathSegment],
        key: &str,
        default: Duration,
    ) -> Duration {
        self.get::<HumanDuration>(table, base, key)
            .map(|d| d.0)
            .unwrap_or(default)
    }
}

/// `[controller.notifications]`, decoded and validated.
fn notifications(
    r: &mut Reader<'_>,
    global: &serde_json::Map<String, serde_json::Value>,
    base_dir: &std::path::Path,
) -> Option<NotifyConfig> {
    let base = [
        PathSegment::key("controller"),
        PathSegment::key("notifications"),
    ];
    let value = global.get("notifications")?;
    // A decode error is at its key (`webhooks[0].timeout`), as the
    // checks' problems are; files (`smtp.ca_file`) are checked where
    // they are, relative to the configuration's folder.
    let mut config = match NotifyConfig::decode(value) {
        Ok(c) => c,
        Err(p) => {
            let mut path = base.to_vec();
            path.extend(p.path.iter().map(|seg| match seg {
                KeySegment::Key(k) => PathSegment::key(k.as_str()),
                KeySegment::Index(i) => PathSegment::Index(*i),
            }));
            r.error(&path, p.message);
            return None;
        }
    };
    config.resolve_paths(base_dir);
    if let Err(problems) = config.validate() {
        for p in problems {
            let mut path = base.to_vec();
            for seg in &p.path {
                path.push(match seg {
                    KeySegment::Key(k) => PathSegment::key(k.as_str()),
                    KeySegment::Index(i) => PathSegment::Index(*i),
                });
            }
            r.error(&path, p.message);
        }
        return None;
    }
    Some(config)
}

/// Reads the controller configuration of `loaded`, reporting every problem;
/// what each MA's connector offers (default triggers, a file watch's
/// default file, a change poll's probe) and the functions connector types
/// lend to scripts come from `registry`.
pub fn controller_config(
    loaded: &Loaded,
    registry: &Registry,
) -> Result<ControllerConfig, Vec<Diagnostic>> {
    let system = &loaded.system;
    let mut r = Reader {
        loaded,
        diagnostics: Vec::new(),
    };
    let gbase = [PathSegment::key("controller")];
    let global = r
        .table(system.controller.as_ref(), &gbase, GLOBAL_KEYS)
        .cloned();
    let global = global.unwrap_or_default();
    let mode: RunMode = r.get(&global, &gbase, "run_mode").unwrap_or_default();
    let start_stagger = r.duration(&global, &gbase, "start_stagger", DEFAULT_START_STAGGER);
    let reconcile_every = r.duration(&global, &gbase, "reconcile_every", DEFAULT_RECONCILE_EVERY);
    let oscillation_limit = r
        .get::<usize>(&global, &gbase, "oscillation_limit")
        .unwrap_or(DEFAULT_OSCILLATION_LIMIT);
    let auto_start_all = r.get::<bool>(&global, &gbase, "auto_start").unwrap_or(true);
    let full_sync_on_rule_change = r
        .get::<bool>(&global, &gbase, "full_sync_on_rule_change")
        .unwrap_or(false);
    let keep_history = r.duration(&global, &gbase, "keep_history", DEFAULT_KEEP_HISTORY);
    let global_retry = r
        .get::<RetryToml>(&global, &gbase, "retry")
        .unwrap_or_default()
        .over(&RetryPolicy::default());
    let notifications = notifications(&mut r, &global, &system.base_dir);
    let groups: Vec<LockGroupToml> = r.get(&global, &gbase, "lock_groups").unwrap_or_default();
    let mut lock_groups = Vec::new();
    for (i, g) in groups.into_iter().enumerate() {
        for ma in g.mas.iter().filter(|m| system.ma(m).is_none()) {
            r.error(
                &[
                    PathSegment::key("controller"),
                    PathSegment::key("lock_groups"),
                    PathSegment::Index(i),
                    PathSegment::key("mas"),
                ],
                format!(
                    "lock group `{}` names `{ma}`, which is not a management agent",
                    g.name
                ),
            );
        }
        lock_groups.push(LockGroup {
            name: g.name,
            mas: g.mas,
        });
    }

    let mut mas = BTreeMap::new();
    for (index, ma) in system.mas.iter().enumerate() {
        let base = [
            PathSegment::key("ma"),
            PathSegment::Index(index),
            PathSegment::key("controller"),
        ];
        let table = r.table(ma.controller.as_ref(), &base, MA_KEYS).cloned();
        let table = table.unwrap_or_default();
        let info = MaInfo::from_def(ma);
        let offers = changes::change_detection(loaded, registry, index);
        let path = offers.file_watch().map(|w| w.path.clone());
        let (mut triggers, default) = match table.get("triggers") {
            None => (changes::default_triggers(ma, &offers), true),
            Some(value) => match parse_triggers(&ma.name, value) {
                Ok(t) => (t, false),
                Err(errors) => {
                    for e in errors {
                        let mut p = base.to_vec();
                        p.push(PathSegment::key("triggers"));
                        if e.key != "triggers" {
                            p.push(PathSegment::Index(e.index));
                        }
                        r.error(&p, e.to_string());
                    }
                    (Vec::new(), false)
                }
            },
        };
        changes::provide(&mut triggers, &offers, &system.base_dir);
        let names: Vec<String> = info.profiles.keys().cloned().collect();
        let ctx = BuildContext {
            ma: &ma.name,
            base_dir: &system.base_dir,
            default_watch_path: path.as_deref(),
            profiles: &names,
        };
        if let Err(errors) = TriggerSet::build(&ctx, &triggers, &BTreeMap::new()) {
            for e in errors {
                let mut p = base.to_vec();
                p.push(PathSegment::key("triggers"));
                p.push(PathSegment::Index(e.index));
                if !e.key.is_empty() && !default {
                    p.push(PathSegment::key(e.key.as_str()));
                }
                r.error(&p, e.to_string());
            }
        }
        let follow_ups = r
            .get::<FollowUpsToml>(&table, &base, "follow_ups")
            .map(|f| FollowUps {
                delta_sync: f.delta_sync,
                export: f.export,
                confirming_import: f.confirming_import,
            })
            .unwrap_or_default();
        let profiles = r
            .get::<ProfilesToml>(&table, &base, "profiles")
            .map(|p| ProfileOverrides {
                delta_sync: p.delta_sync,
                export: p.export,
                confirming_import: p.confirming_import,
            })
            .unwrap_or_default();
        let resolved = resolve_profiles(&info, &profiles);
        for (key, result) in [
            ("delta_sync", &resolved.delta_sync),
            ("export", &resolved.export),
            ("confirming_import", &resolved.confirming_import),
        ] {
            if let Err(e @ ProfileError::OverrideMissing { .. }) = result {
                let mut p = base.to_vec();
                p.push(PathSegment::key("profiles"));
                p.push(PathSegment::key(key));
                r.error(&p, e.to_string());
            }
        }
        let auto_start = r
            .get::<bool>(&table, &base, "auto_start")
            .unwrap_or(auto_start_all);
        let enabled = r.get::<bool>(&table, &base, "enabled").unwrap_or(true);
        let retry = r
            .get::<RetryToml>(&table, &base, "retry")
            .unwrap_or_default()
            .over(&global_retry);
        let blackouts = match r.get::<Vec<BlackoutConfig>>(&table, &base, "blackouts") {
            None => Blackouts::default(),
            Some(configs) => Blackouts::from_configs(&configs).unwrap_or_else(|errors| {
                let mut p = base.to_vec();
                p.push(PathSegment::key("blackouts"));
                for e in errors {
                    r.error(&p, e);
                }
                Blackouts::default()
            }),
        };
        let hooks = match r.get::<HooksConfig>(&table, &base, "hooks") {
            None => Hooks::default(),
            Some(config) => Hooks::compile(&config, &system.base_dir).unwrap_or_else(|errors| {
                let mut p = base.to_vec();
                p.push(PathSegment::key("hooks"));
                for e in errors {
                    r.error(&p, e);
                }
                Hooks::default()
            }),
        };
        let (fingerprint, rules_fingerprint) = fingerprints(ma);
        mas.insert(
            ma.name.clone(),
            MaControllerConfig {
                fingerprint,
                rules_fingerprint,
                imports: !ma.import_flows.is_empty(),
                info,
                triggers,
                default_triggers: default,
                follow_ups,
                profiles,
                auto_start,
                enabled,
                connector_path: path,
                retry,
                blackouts,
                hooks,
            },
        );
    }
    if !r.diagnostics.is_empty() {
        return Err(r.diagnostics);
    }
    Ok(ControllerConfig {
        scheduler: Scheduler { mode, lock_groups },
        start_stagger,
        oscillation_limit,
        reconcile_every,
        keep_history,
        notifications,
        full_sync_on_rule_change,
        mas,
        metaverse_fingerprint: digest(
            &serde_json::to_value(&system.metaverse).unwrap_or(serde_json::Value::Null),
        ),
        base_dir: system.base_dir.clone(),
        script_functions: registry.script_functions(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a secret table (`connector`, `smtp`), `X_file` reads secret `X`
    /// from a file, unless `X_file` is a setting of its own (a path the
    /// table uses, listed in `PATH_KEYS`): a new such setting that is not
    /// listed would be read as a secret's file and refused.
    #[test]
    fn every_accepted_key_ending_in_file_of_a_secret_table_is_a_path_key() {
        let mut registry = autosync_connector::Registry::new();
        autosync_connectors::register_all(&mut registry);
        for key in accepted_keys(&registry) {
            let secret_table = key
                .tables
                .last()
                .is_some_and(|t| autosync_config::SECRET_TABLES.contains(&t.name.as_str()));
            if secret_table && key.key.ends_with("_file") {
                assert!(
                    autosync_config::PATH_KEYS.contains(&key.key.as_str()),
                    "`{key}` would be read as the file of a secret `{}`: add it to PATH_KEYS",
                    key.key.trim_end_matches("_file")
                );
            }
        }
    }

    /// Every table of `shape`, by path, must list keys: an empty one is a
    /// struct serde does not list fields of (no `deny_unknown_fields`), or
    /// a `with` that named no key.
    fn assert_tables_have_keys(shape: &Shape, path: &str) {
        match shape {
            Shape::Table(keys) => {
                assert!(!keys.is_empty(), "`{path}` lists no key");
                for (k, child) in keys {
                    assert_tables_have_keys(child, &format!("{path}.{k}"));
                }
            }
            Shape::Tagged { variants, .. } => {
                assert!(!variants.is_empty(), "`{path}` lists no variant");
                for (v, keys) in variants {
                    assert!(!keys.is_empty(), "`{path}({v})` lists no key");
                    for (k, child) in keys {
                        assert_tables_have_keys(child, &format!("{path}({v}).{k}"));
                    }
                }
            }
            Shape::Array(inner) | Shape::Map(_, inner) => assert_tables_have_keys(inner, path),
            Shape::Leaf => {}
        }
    }

    #[test]
    fn the_controller_tables_should_list_their_keys() {
        assert_tables_have_keys(&controller_shape(), "controller");
        assert_tables_have_keys(&ma_controller_shape(), "ma.controller");
        // The keys that hold tables are tables.
        for (shape, keys) in [
            (
                controller_shape(),
                &["retry", "lock_groups", "notifications"][..],
            ),
            (
                ma_controller_shape(),
                &[
                    "triggers",
                    "follow_ups",
                    "profiles",
                    "retry",
                    "blackouts",
                    "hooks",
                ][..],
            ),
        ] {
            let Shape::Table(entries) = &shape else {
                panic!("{shape:?}");
            };
            for key in keys {
                let (_, child) = entries.iter().find(|(k, _)| k == key).unwrap();
                assert_ne!(child, &Shape::Leaf, "`{key}` holds a table");
            }
        }
    }

    #[test]
    fn the_accepted_keys_should_include_the_controllers() {
        let mut registry = Registry::new();
        autosync_connectors::register_all(&mut registry);
        let keys: Vec<String> = accepted_keys(&registry)
            .iter()
            .map(ToString::to_string)
            .collect();
        for expected in [
            "controller.run_mode",
            "controller.retry.max_attempts",
            "controller.lock_groups.mas",
            "controller.notifications.smtp.host",
            "controller.notifications.webhooks.headers.<header>",
            "ma.controller.enabled",
            "ma.controller.triggers.type",
            "ma.controller.triggers(interval).every",
            "ma.controller.triggers(file-watch).debounce",
            "ma.controller.triggers(script).time_budget",
            "ma.controller.blackouts.cron",
            "ma.controller.hooks.before_file",
            "ma.connector(csv).path",
            "store.path",
        ] {
            assert!(
                keys.contains(&expected.to_owned()),
                "{expected} in {keys:#?}"
            );
        }
    }
}
