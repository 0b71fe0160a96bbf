//! Text and JSON renderings of configuration summaries (`check`), run records,
//! connector spaces and metaverse objects. Text is for people: aligned,
//! short, zero counters left out; JSON is for programs: everything.

use autosync_engine::FilterState;
use autosync_model::{
    CsObject, MvObject, RunObjectError, RunRecord, StepCounters, SystemDef, Value,
};
use autosync_store::CsCounts;
use std::fmt::Write as _;

mod changes;
mod check;
mod stated;
mod unresolved;
pub use changes::run_changes;
pub use check::{check, check_invalid};
pub use stated::Stated;
pub use unresolved::unresolved;

/// The JSON form of a run record (what `history --json` lists).
pub fn run_json(run: &RunRecord) -> serde_json::Value {
    serde_json::to_value(run).unwrap_or(serde_json::Value::Null)
}

/// Named counters of a step, in MIM's order.
pub fn counters(c: &StepCounters) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = Vec::new();
    match c {
        StepCounters::Import(i) => {
            v.push(("stage-no-change".into(), i.stage_no_change));
            v.push(("stage-add".into(), i.stage_add));
            v.push(("stage-update".into(), i.stage_update));
            v.push(("stage-rename".into(), i.stage_rename));
            v.push(("stage-delete".into(), i.stage_delete));
            v.push(("stage-delete-add".into(), i.stage_delete_add));
            v.push(("stage-failure".into(), i.stage_failure));
            v.push(("export-confirmed".into(), i.export_confirmed));
            v.push(("stage-values".into(), i.stage_values));
            v.push(("export-add-existing".into(), i.export_add_existing));
            v.push(("export-not-reimported".into(), i.export_not_reimported));
        }
        StepCounters::Sync(s) => {
            v.push(("projections".into(), s.projections));
            v.push(("joins".into(), s.joins));
            v.push(("filtered-disconnectors".into(), s.filtered_disconnectors));
            v.push(("disconnections".into(), s.disconnections));
            v.push((
                "connectors-with-flow-updates".into(),
                s.connectors_with_flow_updates,
            ));
            v.push((
                "connectors-without-flow-updates".into(),
                s.connectors_without_flow_updates,
            ));
            v.push(("deleted".into(), s.deleted));
            v.push(("failures".into(), s.failures));
            for (ma, o) in &s.outbound {
                v.push((format!("{ma}: provisioned-adds"), o.provisioned_adds));
                v.push((format!("{ma}: provisioned-renames"), o.provisioned_renames));
                v.push((
                    format!("{ma}: provisioned-disconnects"),
                    o.provisioned_disconnects,
                ));
                v.push((
                    format!("{ma}: provisioned-delete-adds"),
                    o.provisioned_delete_adds,
                ));
                v.push((
                    format!("{ma}: export-attribute-flow"),
                    o.export_attribute_flow,
                ));
                v.push((format!("{ma}: export-no-flow"), o.export_no_flow));
            }
        }
        StepCounters::Export(e) => {
            v.push(("adds".into(), e.adds));
            v.push(("updates".into(), e.updates));
            v.push(("renames".into(), e.renames));
            v.push(("deletes".into(), e.deletes));
            v.push(("delete-adds".into(), e.delete_adds));
            v.push(("references-ready".into(), e.references_ready));
            v.push(("references-held".into(), e.references_held));
            v.push(("values".into(), e.values));
            v.push(("failures".into(), e.failures));
        }
    }
    v
}

fn duration(run: &RunRecord) -> String {
    match run.ended_at {
        Some(end) => {
            let ms = (end - run.started_at).num_milliseconds().max(0);
            format!("{}.{:03} s", ms / 1000, ms % 1000)
        }
        None => "running".into(),
    }
}

/// `autosync run-profile`: one run with its steps, non-zero counters and
/// first errors.
pub fn run(run: &RunRecord, errors: &[RunObjectError]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}: {} / {}: {} ({})",
        run.id,
        run.ma,
        run.profile,
        run.status,
        duration(run)
    );
    let _ = writeln!(out, "  reason: {}", run.reason);
    for (i, step) in run.steps.iter().enumerate() {
        let _ = writeln!(out, "  step {} {}: {}", i + 1, step.step_type, step.status);
        if let Some(m) = &step.message {
            let _ = writeln!(out, "    {m}");
        }
        let nonzero: Vec<String> = counters(&step.counters)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if nonzero.is_empty() {
            let _ = writeln!(out, "    no changes");
        } else {
            for line in nonzero {
                let _ = writeln!(out, "    {line}");
            }
        }
        if step.errors > 0 {
            let _ = writeln!(out, "    errors {}", step.errors);
        }
    }
    if !errors.is_empty() {
        let _ = writeln!(out, "  first errors:");
        for e in errors {
            let _ = writeln!(
                out,
                "    {}: {}: {}",
                e.object, e.error.error_type, e.error.detail
            );
        }
    }
    out
}

/// `autosync history RUN_ID`, after the run as `run-profile` shows it and
/// its changes: its recorded per-object errors.
pub fn run_errors(run: &RunRecord, errors: &[RunObjectError]) -> String {
    let mut out = String::new();
    let total: u64 = run.steps.iter().map(|s| s.errors).sum();
    if total == 0 {
        return out;
    }
    if (errors.len() as u64) < total {
        let _ = writeln!(
            out,
            "  errors ({} of {total}; --limit shows more):",
            errors.len()
        );
    } else {
        let _ = writeln!(out, "  errors:");
    }
    for e in errors {
        let step = if run.steps.len() > 1 {
            format!("step {}: ", e.step_index + 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    {step}{}: {}: {}",
            crate::output::one_line(&e.object),
            e.error.error_type,
            crate::output::one_line(&e.error.detail)
        );
    }
    out
}

/// `autosync cs MA --errors`, after the objects: the import errors of
/// records that are no connector-space object.
pub fn record_errors(records: &[autosync_engine::RecordError]) -> String {
    if records.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nrecords the import could not read, not in the connector space: {}\n",
        records.len()
    );
    let mut rows = vec![vec![
        "LOCATION".to_owned(),
        "ANCHOR".into(),
        "RUN".into(),
        "ERROR".into(),
    ]];
    for r in records {
        rows.push(vec![
            r.location.clone(),
            r.anchor.clone().unwrap_or_default(),
            r.error.run_id.map(|id| id.to_string()).unwrap_or_default(),
            format!("{}: {}", r.error.error_type, r.error.detail),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// `autosync history`.
/// `ended`: the runs in progress whose process has ended (see
/// `autosync_engine::lease::left_by_an_ended_process`).
pub fn history(runs: &[RunRecord], ended: &[autosync_model::RunId]) -> String {
    if runs.is_empty() {
        return "no runs yet\n".into();
    }
    let mut rows = vec![vec![
        "ID".to_owned(),
        "MA".into(),
        "PROFILE".into(),
        "STATUS".into(),
        "STARTED".into(),
        "DURATION".into(),
        "CHANGES".into(),
        "REASON".into(),
    ]];
    for r in runs {
        let changes: u64 = r
            .steps
            .iter()
            .map(|s| match &s.counters {
                StepCounters::Import(c) => c.staged(),
                StepCounters::Sync(c) => {
                    c.projections
                        + c.joins
                        + c.disconnections
                        + c.connectors_with_flow_updates
                        + c.deleted
                }
                StepCounters::Export(c) => {
                    c.adds + c.updates + c.renames + c.deletes + c.delete_adds
                }
            })
            .sum();
        rows.push(vec![
            r.id.to_string(),
            r.ma.clone(),
            r.profile.clone(),
            r.status.to_string(),
            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            if ended.contains(&r.id) {
                "process ended".to_owned()
            } else {
                duration(r)
            },
            changes.to_string(),
            r.reason.to_string(),
        ]);
    }
    let mut out = table(&rows);
    if !ended.is_empty() {
        let ids: Vec<String> = ended.iter().map(|id| id.to_string()).collect();
        let _ = writeln!(
            out,
            "(run{} {} {} left in progress by a process that ended (killed, or the host went down): the next `autosync run` or `run-profile` closes {} as stopped-server, with the counters of what {} committed)",
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", "),
            if ids.len() == 1 { "was" } else { "were" },
            if ids.len() == 1 { "it" } else { "them" },
            if ids.len() == 1 { "it" } else { "they" },
        );
    }
    out
}

fn attr_text(v: &Value) -> String {
    let t = v.to_text();
    if t.chars().count() > 40 {
        let cut: String = t.chars().take(39).collect();
        format!("{cut}…")
    } else {
        t
    }
}

/// A metaverse value for `autosync mv`: references as the objects they
/// name (`person #4`, the heading `mv --id 4` shows; `referred` is the
/// declared type, if any), a long multi-value cut with its count.
fn mv_value_text(v: &Value, referred: Option<&str>) -> String {
    let one = |x: &Value| match (x, referred) {
        (Value::Reference(id), Some(t)) if t != autosync_model::ANY_TYPE => format!("{t} #{id}"),
        (Value::Reference(id), _) => format!("#{id}"),
        (other, _) => other.to_text(),
    };
    match v {
        Value::Multi(vs) if vs.iter().any(|x| matches!(x, Value::Reference(_))) => {
            let shown: Vec<String> = vs.iter().take(4).map(one).collect();
            if vs.len() > shown.len() {
                format!("{}, … ({} values)", shown.join(", "), vs.len())
            } else {
                shown.join(", ")
            }
        }
        Value::Reference(_) => one(v),
        other => attr_text(other),
    }
}

/// `autosync cs`.
pub fn cs(
    ma: &str,
    objects: &[CsObject],
    filters: &[FilterState],
    counts: &CsCounts,
    unresolved: u64,
    unresolved_out: u64,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{ma}: {} objects, {} pending import, {} pending export, {} unconfirmed export, {} with errors",
        counts.total,
        counts.pending_import,
        counts.pending_export,
        counts.unconfirmed_export,
        counts.errors
    );
    if unresolved > 0 {
        let _ = write!(out, ", {unresolved} with unresolved references");
    }
    if unresolved_out > 0 {
        let _ = write!(
            out,
            ", {unresolved_out} with references held from export (waiting for the objects they name)"
        );
    }
    out.push('\n');
    let mut rows = vec![vec![
        "ANCHOR".to_owned(),
        "DN".into(),
        "TYPE".into(),
        "STATE".into(),
        "PENDING".into(),
        "ERROR".into(),
    ]];
    for (i, o) in objects.iter().enumerate() {
        let state = match (o.connection, filters.get(i)) {
            (autosync_model::Connection::Connector { mv_id }, _) => {
                format!("connector (mv {mv_id})")
            }
            (autosync_model::Connection::ExplicitDisconnector, _) => "explicit-disconnector".into(),
            (_, Some(FilterState::Filtered { filter })) => {
                format!("filtered-disconnector (filter #{filter})")
            }
            (
                _,
                Some(FilterState::Failed {
                    filter: Some(n), ..
                }),
            ) => {
                format!("disconnector (filter #{n} cannot be evaluated)")
            }
            (_, Some(FilterState::Failed { filter: None, .. })) => {
                "disconnector (its filters cannot be evaluated)".into()
            }
            (autosync_model::Connection::Disconnector, _) => "disconnector".into(),
        };
        let mut pending = Vec::new();
        if let Some(p) = &o.pending_import {
            pending.push(format!("import {}", kebab(&p.kind)));
        }
        if let Some(p) = &o.pending_export {
            pending.push(format!("export {}", kebab(&p.kind)));
        }
        if let Some(p) = &o.unconfirmed_export {
            pending.push(format!("unconfirmed {}", kebab(&p.kind)));
        }
        rows.push(vec![
            o.anchor.clone(),
            o.dn.clone(),
            o.object_type.clone(),
            state,
            pending.join(", "),
            error_of(o, filters.get(i)),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// The ERROR column of `cs`: the object's error and, when its filters
/// cannot be evaluated on it for another reason than that error says (the
/// sync's error is that same failure), why.
fn error_of(o: &CsObject, filter: Option<&FilterState>) -> String {
    let own = o.error.as_ref();
    let mut text = own
        .map(|e| format!("{}: {}", e.error_type, e.detail))
        .unwrap_or_default();
    if let Some(FilterState::Failed { error, .. }) = filter
        && own.is_none_or(|e| e.detail != *error)
    {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(error);
    }
    text
}

fn kebab<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// How a connector came to be joined, as far as the store records it.
fn how_joined(o: &CsObject) -> &'static str {
    match (o.provisioned, o.present) {
        (true, true) => "provisioned",
        (true, false) if o.unconfirmed_export.is_some() => {
            "provisioned, exported, awaiting confirmation"
        }
        (true, false) => "provisioned, not exported yet",
        (false, _) => "joined or projected",
    }
}

/// A connector's DN, when its object type has one (a type without one
/// has its anchor as DN); an MA no longer configured: when it differs.
fn dn_of<'a>(system: &SystemDef, o: &'a CsObject) -> Option<&'a str> {
    let declared = system
        .ma(&o.ma)
        .and_then(|m| m.object_types.iter().find(|t| t.name == o.object_type))
        .map(|t| t.dn.is_some());
    let has = declared.unwrap_or(o.dn != o.anchor);
    (has && !o.dn.is_empty()).then_some(o.dn.as_str())
}

/// The connectors of metaverse object `mv_id` among `connectors`.
fn connectors_of(connectors: &[CsObject], mv_id: i64) -> impl Iterator<Item = &CsObject> {
    connectors.iter().filter(move |o| {
        matches!(o.connection, autosync_model::Connection::Connector { mv_id: m } if m == mv_id)
    })
}

/// `autosync mv`: each object's attributes (with the MA that gave each),
/// then its connectors (MIM's Connectors tab): MA, object type, anchor
/// and DN, and whether provisioning created it.
pub fn mv(system: &SystemDef, objects: &[MvObject], connectors: &[CsObject]) -> String {
    if objects.is_empty() {
        return "no metaverse objects match\n".into();
    }
    let mut out = String::new();
    for o in objects {
        let _ = writeln!(out, "{} #{}", o.object_type, o.id);
        let references = system.metaverse.get(&o.object_type).map(|t| &t.references);
        for (name, v) in &o.attributes {
            let referred = references.and_then(|r| r.get(name)).map(String::as_str);
            let _ = writeln!(
                out,
                "  {name} = {}  ({})",
                mv_value_text(&v.value, referred),
                v.contributor
            );
        }
        let rows: Vec<Vec<String>> = connectors_of(connectors, o.id)
            .map(|c| {
                let mut key = format!("anchor {}", c.anchor);
                if let Some(dn) = dn_of(system, c) {
                    let _ = write!(key, ", dn {dn}");
                }
                vec![
                    c.ma.clone(),
                    c.object_type.clone(),
                    key,
                    how_joined(c).to_owned(),
                ]
            })
            .collect();
        if rows.is_empty() {
            let _ = writeln!(out, "  connectors: none");
            continue;
        }
        let _ = writeln!(out, "  connectors:");
        for line in table(&rows).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// `autosync mv --json`: one metaverse object as stored (`id`,
/// `object_type`, `attributes`) with its `connectors`.
#[derive(serde::Serialize)]
pub struct MvJson<'a> {
    #[serde(flatten)]
    object: &'a MvObject,
    connectors: Vec<ConnectorJson<'a>>,
}

/// A connector of a metaverse object, in `autosync mv --json`.
#[derive(serde::Serialize)]
struct ConnectorJson<'a> {
    ma: &'a str,
    object_type: &'a str,
    anchor: &'a str,
    /// `null` when the object type has no DN.
    dn: Option<&'a str>,
    /// Its id in the connector space.
    cs_id: i64,
    /// Created by provisioning (else joined or projected by a sync).
    provisioned: bool,
    /// In the connected system as far as the last import or export knows.
    present: bool,
}

/// `autosync mv --json`: each object with its connectors.
pub fn mv_json<'a>(
    system: &SystemDef,
    objects: &'a [MvObject],
    connectors: &'a [CsObject],
) -> Vec<MvJson<'a>> {
    objects
        .iter()
        .map(|o| MvJson {
            object: o,
            connectors: connectors_of(connectors, o.id)
                .map(|c| ConnectorJson {
                    ma: &c.ma,
                    object_type: &c.object_type,
                    anchor: &c.anchor,
                    dn: dn_of(system, c),
                    cs_id: c.id,
                    provisioned: c.provisioned,
                    present: c.present,
                })
                .collect(),
        })
        .collect()
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    // Each cell on one line (a value from a source may hold a newline).
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::output::one_line(c).into_owned())
                .collect()
        })
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                line.push_str(c);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
