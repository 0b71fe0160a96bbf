//! A [`Proposal`] as TOML with comments (to read and paste), and as one
//! summary line per MA (`autosync discover --write` prints them).

use super::{KeptKey, MaKind, MaProposal, Proposal, ProposedTrigger, Role, RoleChoice};
use autosync_config::{Loaded, PathSegment};
use autosync_connector::Registry;
use autosync_controller::DEFAULT_OSCILLATION_LIMIT;
use autosync_service::config::{DEFAULT_RECONCILE_EVERY, DEFAULT_START_STAGGER};
use autosync_store::StoreRead;
use autosync_triggers::duration::format_duration;
use std::fmt::Write as _;

/// The TOML text of a value kept from the user's file: as written when the
/// file's text parses as a value on its own, else rendered from the value.
pub(super) fn kept_text(
    loaded: &Loaded,
    path: &[PathSegment],
    value: &serde_json::Value,
) -> String {
    let written = loaded.span_of(path).and_then(|span| {
        loaded
            .source
            .get(span.offset()..span.offset() + span.len())
            .map(str::to_owned)
    });
    if let Some(text) = written
        && toml::from_str::<toml::Table>(&format!("v = {text}\n")).is_ok()
    {
        return text;
    }
    toml_value(value)
}

/// A JSON value (from the configuration) as a TOML value.
pub(super) fn toml_value(value: &serde_json::Value) -> String {
    match toml::Value::try_from(value) {
        Ok(v) => v.to_string(),
        // Only `null` cannot be TOML, and a TOML file holds none.
        Err(_) => "\"\"".into(),
    }
}

/// A TOML string literal.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A trigger as a TOML inline table, keys in their usual order.
fn trigger_toml(trigger: &ProposedTrigger) -> String {
    let fields: Vec<String> = trigger
        .fields()
        .into_iter()
        .map(|(k, v)| format!("{k} = {}", toml_string(v)))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

/// `# ` before every line of `text`, wrapped at about 78 columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 78 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The proposal as TOML: `[controller]`, then one `[ma.controller]` per MA,
/// each with comments saying why.
pub fn to_toml(p: &Proposal) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        "Controller configuration proposed by `autosync discover`. Change anything: \
         it is only a starting point. Put the [controller] section anywhere at the top \
         level of the configuration, and each [ma.controller] section after the keys of \
         the [[ma]] it names (a [ma.controller] header belongs to the [[ma]] above it). \
         Settings marked `yours` are kept from the configuration.",
    );
    out.push_str("\n[controller]\n");
    for kept in &p.controller {
        let _ = writeln!(out, "{} = {}  # {}", kept.key, kept.toml, yours(kept));
    }
    let defaults = [
        (
            "run_mode",
            "\"supported\"".to_owned(),
            "a profile with a sync step runs alone; imports and exports of different MAs overlap",
        ),
        (
            "start_stagger",
            toml_string(&format_duration(DEFAULT_START_STAGGER)),
            "time between two starts while something runs",
        ),
        (
            "oscillation_limit",
            DEFAULT_OSCILLATION_LIMIT.to_string(),
            "follow-ups in one chain before it is reported as oscillating",
        ),
        (
            "auto_start",
            "true".to_owned(),
            "start every MA with the service",
        ),
        (
            "reconcile_every",
            toml_string(&format_duration(DEFAULT_RECONCILE_EVERY)),
            "look for pending imports and exports this often",
        ),
        (
            "lock_groups",
            "[]".to_owned(),
            "MAs that must never run together",
        ),
    ];
    let unset: Vec<_> = defaults
        .iter()
        .filter(|(key, _, _)| !p.controller.iter().any(|k| k.key == *key))
        .collect();
    if !unset.is_empty() {
        out.push_str("# The defaults fit; they are:\n");
        for (key, value, what) in unset {
            let _ = writeln!(out, "# {key} = {value}  ({what})");
        }
    }
    for ma in &p.mas {
        out.push('\n');
        ma_toml(&mut out, ma);
    }
    out
}

fn ma_toml(out: &mut String, ma: &MaProposal) {
    let _ = writeln!(
        out,
        "# ---- ma \"{}\": {} ({} connector; {} import flows, {} export flows) ----",
        ma.name,
        ma.kind.as_str(),
        ma.connector,
        ma.import_flows,
        ma.export_flows
    );
    let _ = writeln!(out, "# After the keys of [[ma]] name = \"{}\".", ma.name);
    out.push_str("# Run profiles by role:\n");
    for r in &ma.roles {
        let _ = writeln!(
            out,
            "#   {:<18} {}",
            format!("{}:", r.role.as_str()),
            role_text(r)
        );
    }
    match &ma.history {
        None => out.push_str("# Run history: no import yet.\n"),
        Some(h) => {
            let gap = h
                .median_gap
                .as_ref()
                .map(|g| format!(", a median {g} apart"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "# Run history: {} import{} from {} to {} UTC{gap}.",
                h.imports,
                if h.imports == 1 { "" } else { "s" },
                h.first.format("%Y-%m-%d %H:%M"),
                h.last.format("%Y-%m-%d %H:%M"),
            );
        }
    }
    out.push_str("[ma.controller]\n");
    if let Some(kept) = ma.kept("triggers") {
        let _ = writeln!(out, "triggers = {}  # {}", kept.toml, yours(kept));
        if !ma.triggers.is_empty() {
            comment(
                out,
                &format!("discover would propose ({}):", ma.triggers_why),
            );
            for t in &ma.triggers {
                let _ = writeln!(out, "#   {}", trigger_toml(t));
            }
        }
    } else {
        comment(out, &format!("{}.", ma.triggers_why));
        if !ma.triggers.is_empty() {
            out.push_str("triggers = [\n");
            for t in &ma.triggers {
                let _ = writeln!(out, "  {},", trigger_toml(t));
            }
            out.push_str("]\n");
        }
    }
    if let Some(p) = &ma.profiles {
        let mut parts = Vec::new();
        for (key, value) in [
            ("delta_sync", &p.delta_sync),
            ("export", &p.export),
            ("confirming_import", &p.confirming_import),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key} = {}", toml_string(v)));
            }
        }
        out.push_str("# Several profiles fit a role: the one chosen is named.\n");
        let _ = writeln!(out, "profiles = {{ {} }}", parts.join(", "));
    }
    for kept in ma.kept.iter().filter(|k| k.key != "triggers") {
        let _ = writeln!(out, "{} = {}  # {}", kept.key, kept.toml, yours(kept));
    }
}

/// The comment of a kept setting.
fn yours(kept: &KeptKey) -> &'static str {
    if kept.secrets_hidden {
        "yours, its secrets hidden: keep the values your file writes"
    } else {
        "yours"
    }
}

fn role_text(r: &RoleChoice) -> String {
    match (&r.profile, &r.note) {
        (Some(p), Some(n)) => format!("{p} ({n})"),
        (Some(p), None) => p.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => "none".into(),
    }
}

/// One line per MA saying what discover proposes for it. The run history comes
/// from `store`; when it cannot be read, the proposal is made without it and
/// a last line says why.
pub fn summary_lines(
    loaded: &Loaded,
    registry: &Registry,
    store: &mut dyn StoreRead,
) -> Vec<String> {
    let (history, problem) = match super::read_history(loaded, store) {
        Ok(h) => (h, None),
        Err(e) => (super::History::default(), Some(e)),
    };
    let mut lines = summary_lines_of(&super::propose(loaded, registry, &history));
    if let Some(e) = problem {
        lines.push(format!(
            "discover: the run history could not be read ({e}); the proposal above ignores it"
        ));
    }
    lines
}

/// [`summary_lines`] of a proposal already made.
pub fn summary_lines_of(p: &Proposal) -> Vec<String> {
    p.mas
        .iter()
        .map(|ma| {
            let triggers = if ma.triggers_kept {
                "your triggers (kept)".to_owned()
            } else if ma.triggers.is_empty() {
                match ma.kind {
                    MaKind::Target => "no trigger".to_owned(),
                    MaKind::Source => "no trigger (no import profile)".to_owned(),
                }
            } else {
                ma.triggers
                    .iter()
                    .map(trigger_summary)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let profiles: Vec<String> = ma
                .roles
                .iter()
                .filter(|r| !matches!(r.role, Role::FullImport))
                .map(|r| match &r.profile {
                    Some(p) => format!("{} `{p}`", r.role.as_str()),
                    None => format!("{} none", r.role.as_str()),
                })
                .collect();
            format!(
                "discover: MA `{}` is a {} ({} import flows, {} export flows): {}; profiles: {}",
                ma.name,
                ma.kind.as_str(),
                ma.import_flows,
                ma.export_flows,
                triggers,
                profiles.join(", ")
            )
        })
        .collect()
}

fn trigger_summary(t: &ProposedTrigger) -> String {
    match t {
        ProposedTrigger::FileWatch { path, profile } => format!(
            "file watch on {} asking for `{profile}`",
            path.as_deref().unwrap_or("the connector's file")
        ),
        ProposedTrigger::ChangePoll { every, profile } => {
            format!("change poll every {every} asking for `{profile}`")
        }
        ProposedTrigger::ChangeNotification { profile } => {
            format!("change notification asking for `{profile}` at each change")
        }
        ProposedTrigger::Interval { every, profile } => format!("`{profile}` every {every}"),
        ProposedTrigger::Schedule {
            cron,
            timezone,
            profile,
        } => format!("`{profile}` on schedule `{cron}` ({timezone})"),
    }
}
