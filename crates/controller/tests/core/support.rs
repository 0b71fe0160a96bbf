//! Builders for run records, counters and views used by the tests.

use autosync_controller::{ControllerView, CsState, MaView, ResolvedProfiles};
use autosync_model::{
    ExportCounters, ImportCounters, OutboundCounters, RunReason, RunRecord, RunStatus,
    StepCounters, StepRecord, StepType, SyncCounters,
};
use chrono::{DateTime, TimeZone, Utc};

/// A fixed instant plus `secs` seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .expect("valid timestamp")
}

pub fn step(step_type: StepType, status: RunStatus, counters: StepCounters) -> StepRecord {
    StepRecord {
        step_type,
        status,
        started_at: at(0),
        ended_at: Some(at(1)),
        counters,
        errors: 0,
        message: None,
    }
}

/// A finished run; its status is the worst of its steps'.
pub fn run(id: i64, ma: &str, profile: &str, steps: Vec<StepRecord>) -> RunRecord {
    let status = steps
        .iter()
        .map(|s| s.status)
        .max_by_key(|s| s.severity())
        .unwrap_or(RunStatus::CompletedNoObjects);
    RunRecord {
        id,
        ma: ma.to_owned(),
        profile: profile.to_owned(),
        status,
        started_at: at(0),
        ended_at: Some(at(1)),
        reason: RunReason::Trigger {
            trigger: "test".into(),
        },
        steps,
    }
}

pub fn imported(adds: u64, updates: u64) -> StepCounters {
    StepCounters::Import(ImportCounters {
        stage_add: adds,
        stage_update: updates,
        ..Default::default()
    })
}

pub fn synced(outbound: &[(&str, OutboundCounters)]) -> StepCounters {
    StepCounters::Sync(SyncCounters {
        outbound: outbound
            .iter()
            .map(|(ma, c)| ((*ma).to_owned(), c.clone()))
            .collect(),
        ..Default::default()
    })
}

pub fn provisioned(adds: u64) -> OutboundCounters {
    OutboundCounters {
        provisioned_adds: adds,
        ..Default::default()
    }
}

pub fn exported(updates: u64, failures: u64) -> StepCounters {
    StepCounters::Export(ExportCounters {
        updates,
        failures,
        ..Default::default()
    })
}

/// One-step runs with the conventional profile names.
pub fn import_run(id: i64, ma: &str, adds: u64, updates: u64) -> RunRecord {
    run(
        id,
        ma,
        "delta-import",
        vec![step(
            StepType::DeltaImport,
            RunStatus::Success,
            imported(adds, updates),
        )],
    )
}

pub fn sync_run(id: i64, ma: &str, outbound: &[(&str, OutboundCounters)]) -> RunRecord {
    run(
        id,
        ma,
        "delta-sync",
        vec![step(
            StepType::DeltaSync,
            RunStatus::Success,
            synced(outbound),
        )],
    )
}

pub fn export_run(id: i64, ma: &str, status: RunStatus, updates: u64, failures: u64) -> RunRecord {
    run(
        id,
        ma,
        "export",
        vec![step(StepType::Export, status, exported(updates, failures))],
    )
}

/// A view of MAs with the conventional profiles, every follow-up on and
/// connector spaces unknown.
pub fn view(mas: &[&str]) -> ControllerView {
    let mut v = ControllerView::default();
    for ma in mas {
        v.mas.insert(
            (*ma).to_owned(),
            MaView::new(ResolvedProfiles::named(
                "delta-sync",
                "export",
                "delta-import",
            )),
        );
    }
    v
}

pub fn set_cs(
    v: &mut ControllerView,
    ma: &str,
    pending_import: u64,
    pending_export: u64,
    unconfirmed_export: u64,
) {
    if let Some(m) = v.mas.get_mut(ma) {
        m.cs = Some(CsState {
            pending_import,
            pending_export,
            unconfirmed_export,
            references_ready: 0,
        });
    }
}
