//! The human "because" of each follow-up, written from the counters that
//! caused it: "staged 3 changes (2 adds, 1 update)", "outbound changes for
//! `app` (5 provisioned adds)", "export sent 5 changes".

use autosync_model::{ExportCounters, ImportCounters, OutboundCounters};

/// `1 add`, `2 adds`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The non-zero parts, joined with commas.
fn parts(items: &[(u64, &str, &str)]) -> String {
    items
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| count(*n, one, many))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an import needs a delta sync.
pub fn staged(c: &ImportCounters) -> String {
    let detail = parts(&[
        (c.stage_add, "add", "adds"),
        (c.stage_update, "update", "updates"),
        (c.stage_rename, "rename", "renames"),
        (c.stage_delete, "delete", "deletes"),
        (c.stage_delete_add, "delete-add", "delete-adds"),
    ]);
    format!(
        "staged {} ({detail})",
        count(c.staged(), "change", "changes")
    )
}

/// Why a sync needs an export on `target`.
pub fn outbound(target: &str, c: &OutboundCounters) -> String {
    let detail = parts(&[
        (c.provisioned_adds, "provisioned add", "provisioned adds"),
        (
            c.provisioned_renames,
            "provisioned rename",
            "provisioned renames",
        ),
        (
            c.provisioned_disconnects,
            "provisioned disconnect",
            "provisioned disconnects",
        ),
        (
            c.provisioned_delete_adds,
            "provisioned delete-add",
            "provisioned delete-adds",
        ),
        (
            c.export_attribute_flow,
            "export attribute flow",
            "export attribute flows",
        ),
    ]);
    format!("outbound changes for `{target}` ({detail})")
}

/// Why an export needs a confirming import.
pub fn exported(c: &ExportCounters) -> String {
    let sent = c.activity() - c.failures;
    match (sent, c.failures) {
        (sent, 0) => format!("export sent {}", count(sent, "change", "changes")),
        (0, failed) => format!("export failed on {}", count(failed, "object", "objects")),
        (sent, failed) => format!(
            "export sent {} and failed on {}",
            count(sent, "change", "changes"),
            count(failed, "object", "objects")
        ),
    }
}

/// Why reconciliation asks for a follow-up: what the connector space holds.
pub fn pending(n: u64, what_one: &str, what_many: &str) -> String {
    format!("{} in the connector space", count(n, what_one, what_many))
}

/// Adds `b` to `a`, counter by counter.
pub fn add_import(a: &mut ImportCounters, b: &ImportCounters) {
    a.stage_no_change += b.stage_no_change;
    a.stage_add += b.stage_add;
    a.stage_update += b.stage_update;
    a.stage_rename += b.stage_rename;
    a.stage_delete += b.stage_delete;
    a.stage_delete_add += b.stage_delete_add;
    a.stage_failure += b.stage_failure;
    a.export_confirmed += b.export_confirmed;
    a.export_add_existing += b.export_add_existing;
}

/// Adds `b` to `a`, counter by counter.
pub fn add_outbound(a: &mut OutboundCounters, b: &OutboundCounters) {
    a.provisioned_adds += b.provisioned_adds;
    a.provisioned_renames += b.provisioned_renames;
    a.provisioned_disconnects += b.provisioned_disconnects;
    a.provisioned_delete_adds += b.provisioned_delete_adds;
    a.export_attribute_flow += b.export_attribute_flow;
    a.export_no_flow += b.export_no_flow;
}

/// Adds `b` to `a`, counter by counter.
pub fn add_export(a: &mut ExportCounters, b: &ExportCounters) {
    a.adds += b.adds;
    a.updates += b.updates;
    a.renames += b.renames;
    a.deletes += b.deletes;
    a.delete_adds += b.delete_adds;
    a.references_ready += b.references_ready;
    a.failures += b.failures;
}
