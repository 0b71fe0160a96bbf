//! Automatic configuration (`autosync discover`): a controller
//! configuration proposed from what exists, for the user to read, paste and
//! override. (`autosync run` without a controller section does not log it:
//! it logs the default triggers it runs, `autosync_service::trigger_lines`.)
//!
//! - An MA with more import flows than export flows is a *source*, else a
//!   *target*.
//! - A source gets an import trigger: what its connector offers to notice
//!   changes, asked through the connector registry
//!   (`ConnectorFactory::change_detection`: a file watch on a file
//!   connector's file, a change poll of a SQLite changelog or
//!   change-tracking column), else an interval (or a daily/weekly schedule)
//!   derived from the median gap between its past imports (`history`), else
//!   every 15 minutes. Discovery names no connector type: the connector's
//!   offer carries the sentence shown.
//! - Every MA's run profiles are matched to their roles by convention (delta
//!   import, full import, delta sync, export, confirming import; `roles`);
//!   missing roles are named.
//! - Settings the user already has under `[controller]` or `[ma.controller]`
//!   are kept as written and marked as theirs.
//! - Everything shown comes from the file as written ([`Loaded::written`]):
//!   `${ENV}` references and `X_file` keys stay as they are, so no secret
//!   they stand for is ever printed (the decisions use the values); a
//!   secret written in the file itself (a literal SMTP password, a
//!   webhook's URL or header) is hidden as the logs hide it (`redact`).
//!
//! [`propose`] is pure: the loaded configuration, the connector registry
//! and the run history ([`History`], read by [`read_history`]) in, a
//! [`Proposal`] out. Rendering (TOML with comments, JSON, one summary line
//! per MA) is in `render`.

mod history;
mod redact;
mod render;
mod roles;
#[cfg(test)]
mod tests;

pub use history::{
    DEFAULT_IMPORT_EVERY, HISTORY_RUNS, History, HistorySummary, read_history, round_interval,
};
pub use redact::HIDDEN;
pub use render::{summary_lines, summary_lines_of, to_toml};
pub use roles::{Role, RoleChoice};

use autosync_config::{Loaded, PathSegment};
use autosync_connector::{ChangeDetection, ChangeOfferKind, Registry};
use autosync_controller::{MaInfo, ProfileOverrides};
use autosync_model::MaDef;
use autosync_store::{StoreError, StoreRead};
use autosync_triggers::change_poll;
use autosync_triggers::duration::format_duration;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Reads the history and proposes.
pub fn discover(
    loaded: &Loaded,
    registry: &Registry,
    store: &mut dyn StoreRead,
) -> Result<Proposal, StoreError> {
    let history = read_history(loaded, store)?;
    Ok(propose(loaded, registry, &history))
}

/// The proposed controller configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Proposal {
    /// `[controller]`: the user's keys (there is nothing to propose there:
    /// the defaults fit).
    pub controller: Vec<KeptKey>,
    /// One per MA, in configuration order.
    pub mas: Vec<MaProposal>,
}

/// A setting the user already has, kept as written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeptKey {
    pub key: String,
    /// The value as written (`${ENV}` references and `X_file` keys as they
    /// are, never the values they stand for), with the secrets written in
    /// the file hidden ([`HIDDEN`], a URL as `https://host/…`).
    pub value: serde_json::Value,
    /// Some secret written in the file was hidden from `value`: the
    /// file's own value is to be kept.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secrets_hidden: bool,
    /// The value's TOML text as written in the file (or rendered from the
    /// value when the file's text cannot be reused).
    #[serde(skip)]
    pub toml: String,
}

/// Source or target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaKind {
    Source,
    Target,
}

impl MaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MaKind::Source => "source",
            MaKind::Target => "target",
        }
    }
}

/// What is proposed for one MA.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaProposal {
    pub name: String,
    /// The connector's type.
    pub connector: String,
    pub kind: MaKind,
    pub import_flows: usize,
    pub export_flows: usize,
    /// The proposed triggers (empty for a target), and why.
    pub triggers: Vec<ProposedTrigger>,
    pub triggers_why: String,
    /// The user has a `triggers` key: it is kept and `triggers` above is
    /// only what discover would have proposed.
    pub triggers_kept: bool,
    /// Which run profile plays which role.
    pub roles: Vec<RoleChoice>,
    /// A `profiles` key to add (only when the convention cannot choose on its
    /// own, and the user has no `profiles` key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profiles: Option<ProfileOverrides>,
    /// What the run history says, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistorySummary>,
    /// The user's `[ma.controller]` keys, kept.
    pub kept: Vec<KeptKey>,
    /// The `[ma.controller]` table to use: the user's keys (as written) plus
    /// what is proposed, in configuration form.
    pub controller: serde_json::Map<String, serde_json::Value>,
}

impl MaProposal {
    /// The user's value of `key`, when kept.
    pub fn kept(&self, key: &str) -> Option<&KeptKey> {
        self.kept.iter().find(|k| k.key == key)
    }
}

/// One proposed trigger, in its configuration form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ProposedTrigger {
    /// A file watch on the connector's file (as the configuration writes
    /// it; `None`: the connector's file, the trigger's default).
    FileWatch {
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        profile: String,
    },
    /// A poll of the connector's change probe.
    ChangePoll {
        every: String,
        profile: String,
    },
    /// The connector's notification channel, listened to.
    ChangeNotification {
        profile: String,
    },
    Interval {
        every: String,
        profile: String,
    },
    Schedule {
        cron: String,
        timezone: String,
        profile: String,
    },
}

impl ProposedTrigger {
    /// The keys in the order they are written (`type` first).
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            ProposedTrigger::FileWatch { path, profile } => {
                let mut fields = vec![("type", "file-watch")];
                if let Some(path) = path {
                    fields.push(("path", path.as_str()));
                }
                fields.push(("profile", profile));
                fields
            }
            ProposedTrigger::ChangePoll { every, profile } => vec![
                ("type", "change-poll"),
                ("every", every),
                ("profile", profile),
            ],
            ProposedTrigger::ChangeNotification { profile } => {
                vec![("type", "change-notification"), ("profile", profile)]
            }
            ProposedTrigger::Interval { every, profile } => {
                vec![("type", "interval"), ("every", every), ("profile", profile)]
            }
            ProposedTrigger::Schedule {
                cron,
                timezone,
                profile,
            } => vec![
                ("type", "schedule"),
                ("cron", cron),
                ("timezone", timezone),
                ("profile", profile),
            ],
        }
    }

    /// The configuration value (a JSON object, as the config holds it).
    pub fn to_value(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect();
        serde_json::Value::Object(map)
    }
}

/// Proposes a controller configuration for `loaded`, given its run history;
/// each source's connector is asked through `registry` what it offers to
/// notice changes.
pub fn propose(loaded: &Loaded, registry: &Registry, history: &History) -> Proposal {
    let base = [PathSegment::key("controller")];
    let controller = kept_keys(loaded, &base, &written_table(loaded, &base));
    let mas = loaded
        .system
        .mas
        .iter()
        .enumerate()
        .map(|(index, ma)| {
            let times = history
                .imports
                .get(&ma.name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            propose_ma(loaded, registry, index, ma, times)
        })
        .collect();
    Proposal { controller, mas }
}

/// The table at `path` as the file writes it (empty when there is none).
fn written_table(
    loaded: &Loaded,
    path: &[PathSegment],
) -> serde_json::Map<String, serde_json::Value> {
    match loaded.written(path) {
        Some(serde_json::Value::Object(table)) => table,
        _ => serde_json::Map::new(),
    }
}

/// The user's keys of a table (as written, secrets hidden), with their
/// text from the file (rendered from the value shown when a secret was
/// hidden).
fn kept_keys(
    loaded: &Loaded,
    base: &[PathSegment],
    table: &serde_json::Map<String, serde_json::Value>,
) -> Vec<KeptKey> {
    table
        .iter()
        .map(|(key, value)| {
            let mut path = base.to_vec();
            path.push(PathSegment::key(key.as_str()));
            let shown = redact::hide_secrets(value);
            let secrets_hidden = shown != *value;
            let toml = if secrets_hidden {
                render::toml_value(&shown)
            } else {
                render::kept_text(loaded, &path, value)
            };
            KeptKey {
                key: key.clone(),
                value: shown,
                secrets_hidden,
                toml,
            }
        })
        .collect()
}

fn propose_ma(
    loaded: &Loaded,
    registry: &Registry,
    index: usize,
    ma: &MaDef,
    imports: &[DateTime<Utc>],
) -> MaProposal {
    let kind = if autosync_service::changes::is_source(ma) {
        MaKind::Source
    } else {
        MaKind::Target
    };
    let user = ma
        .controller
        .as_ref()
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default();
    let base = [
        PathSegment::key("ma"),
        PathSegment::Index(index),
        PathSegment::key("controller"),
    ];
    let written = written_table(loaded, &base);
    let kept = kept_keys(loaded, &base, &written);
    let info = MaInfo::from_def(ma);
    let user_profiles = user.get("profiles").map(|p| ProfileOverrides {
        delta_sync: string_at(p, "delta_sync"),
        export: string_at(p, "export"),
        confirming_import: string_at(p, "confirming_import"),
    });
    let off = |kind: autosync_controller::FollowUpKind| {
        user.get("follow_ups")
            .and_then(|f| f.get(roles::follow_up_key(kind)))
            .and_then(serde_json::Value::as_bool)
            == Some(false)
    };
    let (roles, overrides) = roles::roles(ma, kind, &info, user_profiles.as_ref(), &off);
    let import_profile = roles
        .iter()
        .filter(|r| matches!(r.role, Role::DeltaImport | Role::FullImport))
        .find_map(|r| r.profile.clone());
    let history = history::summarise(imports);
    let (triggers, triggers_why) = match (kind, import_profile) {
        (MaKind::Target, _) => (
            Vec::new(),
            "a target needs no trigger: the cycle exports to it and confirms the exports".into(),
        ),
        (MaKind::Source, None) => (
            Vec::new(),
            "no trigger: the MA has no import profile to ask for (add one whose only step is delta-import or full-import)".into(),
        ),
        (MaKind::Source, Some(profile)) => {
            let changes = autosync_service::changes::change_detection(loaded, registry, index);
            source_triggers(ma, &changes, &profile, imports, &history)
        }
    };
    let triggers_kept = user.contains_key("triggers");
    let mut controller = match redact::hide_secrets(&serde_json::Value::Object(written)) {
        serde_json::Value::Object(shown) => shown,
        _ => serde_json::Map::new(),
    };
    if !triggers_kept && !triggers.is_empty() {
        controller.insert(
            "triggers".into(),
            serde_json::Value::Array(triggers.iter().map(ProposedTrigger::to_value).collect()),
        );
    }
    let profiles = if user_profiles.is_none() {
        overrides
    } else {
        None
    };
    if let Some(p) = &profiles {
        let mut table = serde_json::Map::new();
        for (key, value) in [
            ("delta_sync", &p.delta_sync),
            ("export", &p.export),
            ("confirming_import", &p.confirming_import),
        ] {
            if let Some(v) = value {
                table.insert(key.into(), serde_json::Value::String(v.clone()));
            }
        }
        controller.insert("profiles".into(), serde_json::Value::Object(table));
    }
    MaProposal {
        name: ma.name.clone(),
        connector: ma.connector.kind.clone(),
        kind,
        import_flows: ma.import_flows.len(),
        export_flows: ma.export_flows.len(),
        triggers,
        triggers_why,
        triggers_kept,
        roles,
        profiles,
        history,
        kept,
        controller,
    }
}

fn string_at(table: &serde_json::Value, key: &str) -> Option<String> {
    table.get(key)?.as_str().map(str::to_owned)
}

/// The triggers of a source, and why: the first offer of its connector
/// that discovery proposes (a file watch, a change poll, a change
/// notification), else an import schedule from its history.
fn source_triggers(
    ma: &MaDef,
    changes: &ChangeDetection,
    profile: &str,
    imports: &[DateTime<Utc>],
    history: &Option<HistorySummary>,
) -> (Vec<ProposedTrigger>, String) {
    if let Some(offer) = changes.proposed() {
        let sentence = &offer.sentence;
        return match &offer.kind {
            ChangeOfferKind::FileWatch(watch) => (
                vec![ProposedTrigger::FileWatch {
                    path: watch.shown_path.clone(),
                    profile: profile.to_owned(),
                }],
                format!("{sentence} asks for `{profile}` when the file changes"),
            ),
            ChangeOfferKind::Poll(_) => {
                let every = format_duration(change_poll::DEFAULT_EVERY);
                (
                    vec![ProposedTrigger::ChangePoll {
                        every: every.clone(),
                        profile: profile.to_owned(),
                    }],
                    format!(
                        "{sentence} every {every} and asks for `{profile}` when the answer moved"
                    ),
                )
            }
            ChangeOfferKind::Notification(_) => (
                vec![ProposedTrigger::ChangeNotification {
                    profile: profile.to_owned(),
                }],
                format!(
                    "{sentence}: the server tells each change as it is made, and a change-notification trigger asks for `{profile}` at once"
                ),
            ),
        };
    }
    let why_not = changes
        .why_none
        .clone()
        .unwrap_or_else(|| format!("{} connector: no change notification", ma.connector.kind));
    history::import_schedule(&why_not, profile, imports, history)
}
