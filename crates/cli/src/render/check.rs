//! `autosync check`: the summary of a valid configuration (with what each
//! MA's connector said of its schema, and every warning), or the located
//! diagnostics of an invalid one; as text or JSON.

use autosync_config::{ConfigError, Loaded, SchemaCheck};
use autosync_connector::SchemaLookup;
use std::fmt::Write as _;

/// `autosync check`: a summary of a valid configuration, with what each
/// MA's connector said of its schema, and every warning.
pub fn check(loaded: &Loaded, schemas: &SchemaCheck, json: bool) -> String {
    let s = &loaded.system;
    let schema_of = |ma: &str| {
        schemas
            .schemas
            .iter()
            .find(|(name, _)| name == ma)
            .map(|(_, answer)| answer)
    };
    let warnings: Vec<String> = loaded
        .warnings
        .iter()
        .chain(&schemas.diagnostics)
        .map(|w| w.to_string())
        .collect();
    if json {
        let mas: Vec<_> = s
            .mas
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "connector": m.connector.kind,
                    "object_types": m.object_types.iter().map(|t| &t.name).collect::<Vec<_>>(),
                    "run_profiles": m.profile_names(),
                    "schema": schema_of(&m.name).map(schema_json),
                })
            })
            .collect();
        let v = serde_json::json!({
            "config": loaded.path.display().to_string(),
            "valid": true,
            "store": s.base_dir.join(&s.store.path).display().to_string(),
            "metaverse_types": s.metaverse.keys().collect::<Vec<_>>(),
            "management_agents": mas,
            "warnings": warnings,
        });
        return format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}: configuration is valid", loaded.path.display());
    let _ = writeln!(out, "store: {}", s.base_dir.join(&s.store.path).display());
    if s.mas.is_empty() {
        let _ = writeln!(
            out,
            "warning: the configuration names no management agent: nothing to run (is the file empty, or cut short?)"
        );
    }
    for (name, t) in &s.metaverse {
        let _ = writeln!(
            out,
            "metaverse type {name}: {} attributes",
            t.attributes.len()
        );
    }
    for m in &s.mas {
        let _ = writeln!(
            out,
            "management agent {} ({}): {} join rules, {} projection rules, {} import flows, {} export flows, {} provisioning rules; run profiles: {}",
            m.name,
            m.connector.kind,
            m.join.len(),
            m.projection.len(),
            m.import_flows.len(),
            m.export_flows.len(),
            m.provisioning.len(),
            m.profile_names().join(", ")
        );
        let checked = match schema_of(&m.name) {
            Some(SchemaLookup::Known(schema)) => {
                format!("checked against {}", schema.source)
            }
            Some(SchemaLookup::Unavailable(_)) => "not checked (see the warning)".to_owned(),
            Some(SchemaLookup::Undeclared) | None => format!(
                "not checked ({} declares no schema: a full import warns about an import flow whose attribute no object had)",
                m.connector.kind
            ),
        };
        let _ = writeln!(out, "  names read from the connector space: {checked}");
    }
    // Each reads `file:line:column: warning: key: message`.
    for w in &warnings {
        let _ = writeln!(out, "{w}");
    }
    out
}

/// A connector's answer about its schema, for `check --json`.
fn schema_json(answer: &SchemaLookup) -> serde_json::Value {
    match answer {
        SchemaLookup::Known(schema) => serde_json::json!({
            "status": "known",
            "source": schema.source,
            "object_types": schema
                .object_types
                .iter()
                .map(|(t, s)| (t.clone(), serde_json::json!(s.attributes)))
                .collect::<serde_json::Map<_, _>>(),
        }),
        SchemaLookup::Undeclared => serde_json::json!({ "status": "undeclared" }),
        SchemaLookup::Unavailable(why) => {
            serde_json::json!({ "status": "unavailable", "reason": why })
        }
    }
}

/// `autosync check --json` of a configuration with errors: every error and
/// warning as the text `check` prints (file:line:column: key: message).
pub fn check_invalid(e: &ConfigError) -> String {
    let (errors, warnings): (Vec<_>, Vec<_>) = e.diagnostics().iter().partition(|d| d.is_error());
    let v = serde_json::json!({
        "config": e.path().display().to_string(),
        "valid": false,
        "errors": errors.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "warnings": warnings.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    });
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}
