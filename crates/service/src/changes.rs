//! What an MA's connector says about noticing its system's changes, asked
//! through the connector registry (never read from its settings here: the
//! service names no connector type), and how it reaches the triggers:
//!
//! - the default triggers of a source without a `triggers` key
//!   ([`default_triggers`]);
//! - a file-watch trigger's default file and, on that file, the
//!   connector's reader for `ignore_attributes`; a change poll's probe; a
//!   change notification's listener ([`provide`]);
//! - `autosync discover`'s proposal (the `autosync-discover` crate).

use autosync_config::{Loaded, PathSegment};
use autosync_connector::{BuildContext, ChangeDetection, ChangeOfferKind, Registry};
use autosync_model::MaDef;
use autosync_triggers::{Provided, TriggerConfig};
use std::path::Path;

/// What the connector of the MA at `index` (in configuration order)
/// offers. Its sentences quote the connector table as the file writes it.
pub fn change_detection(loaded: &Loaded, registry: &Registry, index: usize) -> ChangeDetection {
    let Some(ma) = loaded.system.mas.get(index) else {
        return ChangeDetection::none(format!("no management agent at position {index}"));
    };
    let shown = match loaded.written(&[
        PathSegment::key("ma"),
        PathSegment::Index(index),
        PathSegment::key("connector"),
    ]) {
        Some(serde_json::Value::Object(table)) => table,
        _ => serde_json::Map::new(),
    };
    let ctx = BuildContext {
        ma: ma.name.clone(),
        base_dir: loaded.system.base_dir.clone(),
        object_types: ma.object_types.clone(),
    };
    registry.change_detection(&ma.connector.kind, &ma.connector.settings, &shown, &ctx)
}

/// Whether the MA is a *source*: more import flows than export flows.
pub fn is_source(ma: &MaDef) -> bool {
    ma.import_flows.len() > ma.export_flows.len()
}

/// The triggers of an MA with no `triggers` key: for a source, what its
/// connector proposes (a file watch on a CSV or JSON-lines file, a change
/// poll on an SQLite changelog or change-tracking column, a change
/// notification of an LDAP directory: the connector
/// knows which of its offers notices every change); without a proposal, a
/// file watch on its file when it offers one, as autosync always did (an
/// SQLite database without `delta`: a write in WAL mode reaches the file
/// at a checkpoint); nothing for a target (the cycle exports to it and
/// confirms).
pub fn default_triggers(ma: &MaDef, changes: &ChangeDetection) -> Vec<TriggerConfig> {
    if !is_source(ma) {
        return Vec::new();
    }
    let kind = match changes.proposed().map(|o| &o.kind) {
        Some(ChangeOfferKind::FileWatch(_)) => "file-watch",
        Some(ChangeOfferKind::Poll(_)) => "change-poll",
        Some(ChangeOfferKind::Notification(_)) => "change-notification",
        _ if changes.file_watch().is_some() => "file-watch",
        _ => return Vec::new(),
    };
    match serde_json::from_value(serde_json::json!({ "type": kind })) {
        Ok(t) => vec![t],
        Err(e) => {
            tracing::error!("the default {kind} trigger does not decode: {e}");
            Vec::new()
        }
    }
}

/// Gives the MA's triggers what its connector provides: a change poll its
/// probe; a file watch on the connector's own file (no `path`, or that
/// file) the connector's reader of it. `base_dir` resolves a watch's
/// `path`.
pub fn provide(triggers: &mut [TriggerConfig], changes: &ChangeDetection, base_dir: &Path) {
    for trigger in triggers {
        match trigger {
            TriggerConfig::ChangePoll(c) => {
                c.probe = Provided(changes.poll().map(|p| p.probe.clone()));
            }
            TriggerConfig::ChangeNotification(c) => {
                c.source = Provided(changes.notification().map(|n| n.source.clone()));
            }
            TriggerConfig::FileWatch(c) => {
                let own = changes
                    .file_watch()
                    .filter(|w| c.path.as_ref().is_none_or(|p| base_dir.join(p) == w.path));
                c.content = Provided(own.and_then(|w| w.content.clone()));
            }
            _ => {}
        }
    }
}
