//! Automatic configuration (`autosync discover`, and the first start of
//! `autosync run` without a controller section): a controller configuration
//! proposed from what exists, for the user to read, paste and override.
//!
//! - An MA with more import flows than export flows is a *source*, else a
//!   *target*.
//! - A source gets an import trigger: a change notification when its
//!   connector has one (file connectors: a file watch on their file; SQLite
//!   with a changelog or change-tracking column: a script trigger polling
//!   that column), else an interval (or a daily/weekly schedule) derived from
//!   the median gap between its past imports, else every 15 minutes.
//! - Every MA's run profiles are matched to their roles by convention (delta
//!   import, full import, delta sync, export, confirming import); missing
//!   roles are named.
//! - Settings the user already has under `[controller]` or `[ma.controller]`
//!   are kept as written and marked as theirs.
//! - Everything shown comes from the file as written ([`Loaded::written`]):
//!   `${ENV}` references and `X_file` keys stay as they are, so no secret
//!   they stand for is ever printed (the decisions use the values).
//!
//! [`propose`] is pure: the loaded configuration and the run history
//! ([`History`], read by [`read_history`]) in, a [`Proposal`] out. Rendering
//! (TOML with comments, JSON, one summary line per MA) is in `render`.

mod render;
#[cfg(test)]
mod tests;

pub use render::{summary_lines, summary_lines_of, to_toml};

use autosync_config::{Loaded, PathSegment};
use autosync_controller::{
    FollowUpKind, MaInfo, ProfileError, ProfileOverrides, ResolvedProfiles, resolve_profiles,
};
use autosync_model::{MaDef, RunReason, RunStatus, StepType};
use autosync_store::{StoreError, StoreRead};
use autosync_triggers::duration::format_duration;
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Import interval of a source with no change notification and no usable
/// run history.
pub const DEFAULT_IMPORT_EVERY: Duration = Duration::from_secs(15 * 60);
/// How often a poll trigger asks its database whether anything changed.
pub const POLL_EVERY: Duration = Duration::from_secs(30);
/// At most this many past runs per MA are read.
pub const HISTORY_RUNS: usize = 1000;

/// Intervals a history-derived import schedule is rounded to.
const SENSIBLE_INTERVALS: &[u64] = &[
    60,
    2 * 60,
    5 * 60,
    10 * 60,
    15 * 60,
    20 * 60,
    30 * 60,
    3600,
    2 * 3600,
    3 * 3600,
    4 * 3600,
    6 * 3600,
    8 * 3600,
    12 * 3600,
    DAY,
    WEEK,
];
const DAY: u64 = 86_400;
const WEEK: u64 = 7 * DAY;

/// The past imports of each MA: the start times of runs with an import step
/// that a trigger or an operator asked for (not confirming imports, not
/// reconciliation), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub imports: BTreeMap<String, Vec<DateTime<Utc>>>,
}

/// Reads the import history of every MA of `loaded` (at most
/// [`HISTORY_RUNS`] runs each).
pub fn read_history(loaded: &Loaded, store: &mut dyn StoreRead) -> Result<History, StoreError> {
    let mut imports = BTreeMap::new();
    for ma in &loaded.system.mas {
        let info = MaInfo::from_def(ma);
        let mut times: Vec<DateTime<Utc>> = store
            .runs(Some(&ma.name), HISTORY_RUNS)?
            .into_iter()
            .filter(|r| {
                matches!(
                    r.reason,
                    RunReason::Manual { .. } | RunReason::Trigger { .. }
                ) && r.status != RunStatus::NoStartMaAlreadyRunning
                    && (r.steps.iter().any(|s| s.step_type.is_import())
                        || info
                            .steps(&r.profile)
                            .is_some_and(|s| s.iter().any(|t| t.is_import())))
            })
            .map(|r| r.started_at)
            .collect();
        times.sort();
        imports.insert(ma.name.clone(), times);
    }
    Ok(History { imports })
}

/// Reads the history and proposes.
pub fn discover(loaded: &Loaded, store: &mut dyn StoreRead) -> Result<Proposal, StoreError> {
    let history = read_history(loaded, store)?;
    Ok(propose(loaded, &history))
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
    /// are, never the values they stand for).
    pub value: serde_json::Value,
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
    /// A file watch on the connector's file.
    FileWatch {
        path: String,
        profile: String,
    },
    /// A poll: a script asking the database whether anything changed.
    Script {
        name: String,
        every: String,
        script: String,
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
                vec![("type", "file-watch"), ("path", path), ("profile", profile)]
            }
            ProposedTrigger::Script {
                name,
                every,
                script,
            } => vec![
                ("type", "script"),
                ("name", name),
                ("every", every),
                ("script", script),
            ],
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

/// The roles run profiles play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    DeltaImport,
    FullImport,
    DeltaSync,
    Export,
    ConfirmingImport,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DeltaImport => "delta import",
            Role::FullImport => "full import",
            Role::DeltaSync => "delta sync",
            Role::Export => "export",
            Role::ConfirmingImport => "confirming import",
        }
    }
}

/// The profile that plays a role on an MA, or why none does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleChoice {
    pub role: Role,
    pub profile: Option<String>,
    /// Why, when it is not plain convention (missing, chosen among several,
    /// named by the user, not needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An MA's import history, summed up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistorySummary {
    pub imports: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// Median time between two imports (with at least two).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_gap: Option<String>,
}

/// Proposes a controller configuration for `loaded`, given its run history.
pub fn propose(loaded: &Loaded, history: &History) -> Proposal {
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
            propose_ma(loaded, index, ma, times)
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

/// The user's keys of a table (as written), with their text from the file.
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
            KeptKey {
                key: key.clone(),
                value: value.clone(),
                toml: render::kept_text(loaded, &path, value),
            }
        })
        .collect()
}

fn propose_ma(loaded: &Loaded, index: usize, ma: &MaDef, imports: &[DateTime<Utc>]) -> MaProposal {
    let kind = if ma.import_flows.len() > ma.export_flows.len() {
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
    let connector = written_table(
        loaded,
        &[
            PathSegment::key("ma"),
            PathSegment::Index(index),
            PathSegment::key("connector"),
        ],
    );
    let info = MaInfo::from_def(ma);
    let user_profiles = user.get("profiles").map(|p| ProfileOverrides {
        delta_sync: string_at(p, "delta_sync"),
        export: string_at(p, "export"),
        confirming_import: string_at(p, "confirming_import"),
    });
    let (roles, overrides) = roles(ma, kind, &info, user_profiles.as_ref());
    let import_profile = roles
        .iter()
        .filter(|r| matches!(r.role, Role::DeltaImport | Role::FullImport))
        .find_map(|r| r.profile.clone());
    let history = summarise(imports);
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
            source_triggers(ma, &connector, &profile, imports, &history)
        }
    };
    let triggers_kept = user.contains_key("triggers");
    let mut controller = written;
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

/// The connector setting `key` as written (`None` when it is read from a
/// file: its value is not shown).
fn setting<'a>(
    written: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a str> {
    written.get(key)?.as_str()
}

/// The triggers of a source, and why. `connector` is its connector table
/// as written: what is shown comes from it.
fn source_triggers(
    ma: &MaDef,
    connector: &serde_json::Map<String, serde_json::Value>,
    profile: &str,
    imports: &[DateTime<Utc>],
    history: &Option<HistorySummary>,
) -> (Vec<ProposedTrigger>, String) {
    let kind = ma.connector.kind.as_str();
    if matches!(kind, "csv" | "jsonl")
        && let Some(path) = setting(connector, "path")
    {
        return (
            vec![ProposedTrigger::FileWatch {
                path: path.to_owned(),
                profile: profile.to_owned(),
            }],
            format!(
                "{kind} connector: a file watch on {path} asks for `{profile}` when the file changes"
            ),
        );
    }
    if kind == "sqlite"
        && let Some(poll) = sqlite_poll(ma, connector, profile)
    {
        return poll;
    }
    let why_not = if kind == "sqlite" {
        "sqlite connector without `delta` (no changelog or change-tracking column to poll; the database file is not watched: in WAL mode its writes land in the -wal file)".to_owned()
    } else {
        format!("{kind} connector: no change notification")
    };
    match (imports, history) {
        (
            [first, .., last],
            Some(HistorySummary {
                median_gap: Some(gap_text),
                ..
            }),
        ) => {
            let gap = median_gap(imports);
            let every = round_interval(gap);
            let n = imports.len();
            let span = format!(
                "{} to {} UTC",
                first.format("%Y-%m-%d %H:%M"),
                last.format("%Y-%m-%d %H:%M")
            );
            let basis =
                format!("{why_not}; its {n} past imports ({span}) came a median {gap_text} apart");
            let (trigger, how) = history_trigger(imports, every, profile);
            (vec![trigger], format!("{basis}: {how}"))
        }
        _ => {
            let every = format_duration(DEFAULT_IMPORT_EVERY);
            let because = match imports.len() {
                0 => "no import in its run history".to_owned(),
                _ => "a single import in its run history".to_owned(),
            };
            (
                vec![ProposedTrigger::Interval {
                    every: every.clone(),
                    profile: profile.to_owned(),
                }],
                format!("{why_not}; {because}: `{profile}` every {every} (the default)"),
            )
        }
    }
}

/// A poll of a SQLite source's changelog or change-tracking column (names
/// as written in `connector`).
fn sqlite_poll(
    ma: &MaDef,
    connector: &serde_json::Map<String, serde_json::Value>,
    profile: &str,
) -> Option<(Vec<ProposedTrigger>, String)> {
    let path = setting(connector, "path")?;
    let kind = ma.connector.settings.get("delta")?.get("kind")?.as_str()?;
    let delta = connector.get("delta")?;
    let (table, column, what) = match kind {
        "changelog" => (
            delta.get("table")?.as_str()?,
            delta.get("sequence_column")?.as_str()?,
            "changelog",
        ),
        "column" => (
            setting(connector, "table")?,
            delta.get("column")?.as_str()?,
            "change-tracking column",
        ),
        _ => return None,
    };
    let query = format!(
        "SELECT max({}) FROM {}",
        sql_ident(column),
        sql_ident(table)
    );
    let script = format!(
        "let v = sql_scalar({}, {}); let before = if state.contains(\"v\") {{ state.v }} else {{ v }}; state.v = v; if v != before {{ {} }}",
        rhai_string(path),
        rhai_string(&query),
        rhai_string(profile),
    );
    let every = format_duration(POLL_EVERY);
    Some((
        vec![ProposedTrigger::Script {
            name: format!("{}-poll", ma.name),
            every: every.clone(),
            script,
        }],
        format!(
            "sqlite connector with a {what}: every {every} a script asks {path} for `{query}` and asks for `{profile}` when the answer moved"
        ),
    ))
}

/// An SQL identifier, quoted.
fn sql_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A Rhai string literal.
fn rhai_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn summarise(imports: &[DateTime<Utc>]) -> Option<HistorySummary> {
    let (first, last) = (imports.first()?, imports.last()?);
    Some(HistorySummary {
        imports: imports.len(),
        first: *first,
        last: *last,
        median_gap: (imports.len() >= 2).then(|| format_duration(median_gap(imports))),
    })
}

/// The median time between consecutive imports (sorted, at least two),
/// to the second.
fn median_gap(imports: &[DateTime<Utc>]) -> Duration {
    let mut gaps: Vec<i64> = imports
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds().max(0))
        .collect();
    gaps.sort_unstable();
    let n = gaps.len();
    let median = match n {
        0 => 0,
        _ if n % 2 == 1 => gaps[n / 2],
        _ => (gaps[n / 2 - 1] + gaps[n / 2]) / 2,
    };
    Duration::from_secs(u64::try_from(median).unwrap_or(0))
}

/// The sensible interval nearest to `gap` (by ratio): 1m, 2m, 5m, 10m, 15m,
/// 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d or 7d.
pub fn round_interval(gap: Duration) -> Duration {
    let secs = gap.as_secs().max(1) as f64;
    let best = SENSIBLE_INTERVALS
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = (secs / *a as f64).ln().abs();
            let db = (secs / *b as f64).ln().abs();
            da.total_cmp(&db)
        })
        .unwrap_or(DEFAULT_IMPORT_EVERY.as_secs());
    Duration::from_secs(best)
}

/// An interval below a day; a daily (or weekly) schedule at the imports'
/// usual time otherwise. Returns the trigger and how it was chosen.
fn history_trigger(
    imports: &[DateTime<Utc>],
    every: Duration,
    profile: &str,
) -> (ProposedTrigger, String) {
    let secs = every.as_secs();
    if secs < DAY {
        let every = format_duration(every);
        return (
            ProposedTrigger::Interval {
                every: every.clone(),
                profile: profile.to_owned(),
            },
            format!("`{profile}` every {every} (rounded)"),
        );
    }
    let mut minutes: Vec<u32> = imports.iter().map(|t| t.hour() * 60 + t.minute()).collect();
    minutes.sort_unstable();
    let minute_of_day = minutes.get(minutes.len() / 2).copied().unwrap_or(0);
    let (h, m) = (minute_of_day / 60, minute_of_day % 60);
    if secs < WEEK {
        return (
            ProposedTrigger::Schedule {
                cron: format!("{m} {h} * * *"),
                timezone: "UTC".into(),
                profile: profile.to_owned(),
            },
            format!("`{profile}` daily at {h:02}:{m:02} UTC (their median time of day)"),
        );
    }
    let mut days: Vec<u32> = imports
        .iter()
        .map(|t| t.weekday().num_days_from_sunday())
        .collect();
    days.sort_unstable();
    let day = days.get(days.len() / 2).copied().unwrap_or(0);
    let day_name = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ]
    .get(day as usize)
    .copied()
    .unwrap_or("Sunday");
    (
        ProposedTrigger::Schedule {
            cron: format!("{m} {h} * * {day}"),
            timezone: "UTC".into(),
            profile: profile.to_owned(),
        },
        format!(
            "`{profile}` weekly on {day_name} at {h:02}:{m:02} UTC (their median day and time)"
        ),
    )
}

/// The profile whose only step is `step` (several: the one named like the
/// step, else the first by name), and a note when there were several.
fn single_step(info: &MaInfo, step: StepType) -> (Option<String>, Option<String>) {
    let fitting: Vec<&String> = info
        .profiles
        .iter()
        .filter(|(_, steps)| steps.as_slice() == [step])
        .map(|(name, _)| name)
        .collect();
    match fitting.as_slice() {
        [] => (None, None),
        [only] => (Some((*only).clone()), None),
        several => {
            let chosen = several
                .iter()
                .find(|n| n.as_str() == step.as_str())
                .or(several.first())
                .map(|n| (*n).clone());
            let names: Vec<String> = several.iter().map(|n| format!("`{n}`")).collect();
            (
                chosen.clone(),
                Some(format!(
                    "several fit ({}): `{}` chosen",
                    names.join(", "),
                    chosen.unwrap_or_default()
                )),
            )
        }
    }
}

/// Which profile plays each role, and the `profiles` overrides the
/// controller needs where the convention alone cannot choose.
fn roles(
    ma: &MaDef,
    kind: MaKind,
    info: &MaInfo,
    user: Option<&ProfileOverrides>,
) -> (Vec<RoleChoice>, Option<ProfileOverrides>) {
    let exports = !ma.export_flows.is_empty() || !ma.provisioning.is_empty();
    let (delta_import, delta_note) = single_step(info, StepType::DeltaImport);
    let (full_import, full_note) = single_step(info, StepType::FullImport);
    let mut out = Vec::new();
    out.push(RoleChoice {
        role: Role::DeltaImport,
        note: match (&delta_import, &full_import) {
            (None, Some(full)) => Some(format!("none: the full import `{full}` is used")),
            (None, None) => Some("none, and no full import either: nothing can import".into()),
            _ => delta_note,
        },
        profile: delta_import.clone(),
    });
    out.push(RoleChoice {
        role: Role::FullImport,
        note: match full_import {
            None => Some("none (needed after a change of rules or to re-read everything)".into()),
            Some(_) => full_note,
        },
        profile: full_import.clone(),
    });
    let no_overrides = ProfileOverrides::default();
    let resolved: ResolvedProfiles = resolve_profiles(info, user.unwrap_or(&no_overrides));
    let mut overrides = ProfileOverrides::default();
    for (role, kind_) in [
        (Role::DeltaSync, FollowUpKind::DeltaSync),
        (Role::Export, FollowUpKind::Export),
        (Role::ConfirmingImport, FollowUpKind::ConfirmingImport),
    ] {
        let needed = match kind_ {
            FollowUpKind::DeltaSync => true,
            FollowUpKind::Export | FollowUpKind::ConfirmingImport => {
                exports || kind == MaKind::Target
            }
        };
        let named_by_user = user.is_some_and(|u| match kind_ {
            FollowUpKind::DeltaSync => u.delta_sync.is_some(),
            FollowUpKind::Export => u.export.is_some(),
            FollowUpKind::ConfirmingImport => u.confirming_import.is_some(),
        });
        let (profile, note) = match resolved.get(kind_) {
            Ok(p) if named_by_user => (Some(p.clone()), Some("yours (`profiles`)".to_owned())),
            Ok(p) if kind_ == FollowUpKind::ConfirmingImport && delta_import.is_none() => (
                Some(p.clone()),
                Some("the full import: there is no delta import".to_owned()),
            ),
            Ok(p) => (Some(p.clone()), None),
            Err(ProfileError::Ambiguous { candidates, .. }) => {
                let step = match kind_ {
                    FollowUpKind::DeltaSync => StepType::DeltaSync,
                    FollowUpKind::Export => StepType::Export,
                    FollowUpKind::ConfirmingImport => {
                        if delta_import.is_some() {
                            StepType::DeltaImport
                        } else {
                            StepType::FullImport
                        }
                    }
                };
                let (chosen, _) = single_step(info, step);
                if let Some(c) = &chosen {
                    match kind_ {
                        FollowUpKind::DeltaSync => overrides.delta_sync = Some(c.clone()),
                        FollowUpKind::Export => overrides.export = Some(c.clone()),
                        FollowUpKind::ConfirmingImport => {
                            overrides.confirming_import = Some(c.clone())
                        }
                    }
                }
                (
                    chosen.clone(),
                    Some(format!(
                        "several fit ({candidates}): `{}` chosen and named under `profiles`",
                        chosen.unwrap_or_default()
                    )),
                )
            }
            Err(ProfileError::OverrideMissing { profile, .. }) => (
                None,
                Some(format!(
                    "yours (`profiles`) names `{profile}`, which does not exist"
                )),
            ),
            Err(ProfileError::NoneFits { .. }) if needed => (
                None,
                Some(format!(
                    "MISSING: add a run profile whose only step is {}, or switch the follow-up off with follow_ups = {{ {} = false }}",
                    match kind_ {
                        FollowUpKind::DeltaSync => "delta-sync",
                        FollowUpKind::Export => "export",
                        FollowUpKind::ConfirmingImport => "delta-import or full-import",
                    },
                    match kind_ {
                        FollowUpKind::DeltaSync => "delta_sync",
                        FollowUpKind::Export => "export",
                        FollowUpKind::ConfirmingImport => "confirming_import",
                    }
                )),
            ),
            Err(ProfileError::NoneFits { .. }) => (
                None,
                Some("none (not needed: nothing is exported to this MA)".into()),
            ),
        };
        out.push(RoleChoice {
            role,
            profile,
            note,
        });
    }
    let overrides = (overrides != ProfileOverrides::default()).then_some(overrides);
    (out, overrides)
}
