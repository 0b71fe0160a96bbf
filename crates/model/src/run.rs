//! Run profiles' results: statuses, counters and run records, with the names
//! MIM administrators know.

use crate::object::{ObjectError, RunId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The type of one step of a run profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepType {
    FullImport,
    DeltaImport,
    FullSync,
    DeltaSync,
    Export,
}

impl StepType {
    pub const ALL: [StepType; 5] = [
        StepType::FullImport,
        StepType::DeltaImport,
        StepType::FullSync,
        StepType::DeltaSync,
        StepType::Export,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepType::FullImport => "full-import",
            StepType::DeltaImport => "delta-import",
            StepType::FullSync => "full-sync",
            StepType::DeltaSync => "delta-sync",
            StepType::Export => "export",
        }
    }

    pub fn parse(s: &str) -> Option<StepType> {
        StepType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn is_import(self) -> bool {
        matches!(self, StepType::FullImport | StepType::DeltaImport)
    }
    pub fn is_sync(self) -> bool {
        matches!(self, StepType::FullSync | StepType::DeltaSync)
    }
}

impl fmt::Display for StepType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a run or of one of its steps (MIM's run statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Still running (only seen while a run is in progress or was cut short
    /// by a crash).
    InProgress,
    Success,
    CompletedNoObjects,
    CompletedWarnings,
    CompletedExportErrors,
    CompletedSyncErrors,
    CompletedImportErrors,
    StoppedServerDown,
    StoppedConnectivity,
    StoppedDeadlocked,
    StoppedExtensionDllException,
    StoppedUserRequested,
    StoppedDeletionThresholdExceeded,
    /// An import staged more than the MA's staging thresholds allow: the
    /// changes are staged, and no sync of the MA runs until an operator
    /// approves or rejects them (not a MIM status: see the docs).
    StoppedStagingThresholdExceeded,
    /// The process ended while the run was in progress (found at start-up).
    StoppedServer,
    StoppedConfiguration,
    StoppedError,
    NoStartMaAlreadyRunning,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::InProgress => "in-progress",
            RunStatus::Success => "success",
            RunStatus::CompletedNoObjects => "completed-no-objects",
            RunStatus::CompletedWarnings => "completed-warnings",
            RunStatus::CompletedExportErrors => "completed-export-errors",
            RunStatus::CompletedSyncErrors => "completed-sync-errors",
            RunStatus::CompletedImportErrors => "completed-import-errors",
            RunStatus::StoppedServerDown => "stopped-server-down",
            RunStatus::StoppedConnectivity => "stopped-connectivity",
            RunStatus::StoppedDeadlocked => "stopped-deadlocked",
            RunStatus::StoppedExtensionDllException => "stopped-extension-dll-exception",
            RunStatus::StoppedUserRequested => "stopped-user-requested",
            RunStatus::StoppedDeletionThresholdExceeded => "stopped-deletion-threshold-exceeded",
            RunStatus::StoppedStagingThresholdExceeded => "stopped-staging-threshold-exceeded",
            RunStatus::StoppedServer => "stopped-server",
            RunStatus::StoppedConfiguration => "stopped-configuration",
            RunStatus::StoppedError => "stopped-error",
            RunStatus::NoStartMaAlreadyRunning => "no-start-ma-already-running",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// Whether the run stopped before completing its steps.
    pub fn is_stopped(self) -> bool {
        self.as_str().starts_with("stopped-") || self == RunStatus::NoStartMaAlreadyRunning
    }

    /// How bad a status is, to pick the worst of several steps.
    pub fn severity(self) -> u8 {
        match self {
            RunStatus::Success => 0,
            RunStatus::CompletedNoObjects => 0,
            RunStatus::InProgress => 1,
            RunStatus::CompletedWarnings => 2,
            RunStatus::CompletedImportErrors
            | RunStatus::CompletedSyncErrors
            | RunStatus::CompletedExportErrors => 3,
            _ => 4,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Import step counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImportCounters {
    pub stage_no_change: u64,
    pub stage_add: u64,
    pub stage_update: u64,
    pub stage_rename: u64,
    pub stage_delete: u64,
    pub stage_delete_add: u64,
    pub stage_failure: u64,
    /// Unconfirmed exports that this import saw applied as sent.
    #[serde(default)]
    pub export_confirmed: u64,
    /// Values added to or removed from multi-valued attributes by the
    /// value-level updates staged (a member added to a group: 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stage_values: u64,
    /// Of `stage_values`, the values removed (the staging threshold
    /// `values_removed` limits them, less those added).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stage_values_removed: u64,
    /// Objects provisioning was to add that this import found already in
    /// the system, with other values (an account there before autosync):
    /// their adds became updates of what differs, and they are joined.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub export_add_existing: u64,
    /// Objects that do not hold what an export sent them (MIM's
    /// exported-change-not-reimported): a warning each.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub export_not_reimported: u64,
}

impl ImportCounters {
    /// Changes staged: what makes a delta sync necessary.
    pub fn staged(&self) -> u64 {
        self.stage_add
            + self.stage_update
            + self.stage_rename
            + self.stage_delete
            + self.stage_delete_add
    }
}

/// Outbound counters of a sync step for one target MA.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutboundCounters {
    pub provisioned_adds: u64,
    pub provisioned_renames: u64,
    pub provisioned_disconnects: u64,
    pub provisioned_delete_adds: u64,
    pub export_attribute_flow: u64,
    pub export_no_flow: u64,
}

impl OutboundCounters {
    /// Outbound changes staged: what makes an export necessary.
    pub fn staged(&self) -> u64 {
        self.provisioned_adds
            + self.provisioned_renames
            + self.provisioned_disconnects
            + self.provisioned_delete_adds
            + self.export_attribute_flow
    }
}

/// Sync step counters: inbound, and outbound per target MA.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SyncCounters {
    pub projections: u64,
    pub joins: u64,
    pub filtered_disconnectors: u64,
    pub disconnections: u64,
    pub connectors_with_flow_updates: u64,
    pub connectors_without_flow_updates: u64,
    /// Metaverse objects deleted by the deletion rule.
    pub deleted: u64,
    pub failures: u64,
    /// Keyed by target MA name.
    pub outbound: BTreeMap<String, OutboundCounters>,
}

/// Export step counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExportCounters {
    pub adds: u64,
    pub updates: u64,
    pub renames: u64,
    pub deletes: u64,
    pub delete_adds: u64,
    pub failures: u64,
    /// References that waited for an object this export added (see the
    /// engine's `refs`): they can be exported now, after a sync.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub references_ready: u64,
    /// Reference values left out of what was sent: they name an object of
    /// this MA whose add or rename failed or is not sent yet (they stay
    /// pending for a later export).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub references_held: u64,
    /// Values sent as value-level changes (added to or removed from a
    /// multi-valued attribute: a member added to a group is 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub values: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ExportCounters {
    /// What makes a confirming import necessary.
    pub fn activity(&self) -> u64 {
        self.adds + self.updates + self.renames + self.deletes + self.delete_adds + self.failures
    }
}

/// The counters of one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StepCounters {
    Import(ImportCounters),
    Sync(SyncCounters),
    Export(ExportCounters),
}

impl StepCounters {
    pub fn for_step(step: StepType) -> Self {
        if step.is_import() {
            StepCounters::Import(Default::default())
        } else if step.is_sync() {
            StepCounters::Sync(Default::default())
        } else {
            StepCounters::Export(Default::default())
        }
    }
}

/// The record of one step of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(rename = "type")]
    pub step_type: StepType,
    pub status: RunStatus,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub counters: StepCounters,
    /// Number of per-object errors raised by this step.
    pub errors: u64,
    /// A step-level error message (connectivity, configuration, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why a run ran: the trigger, the operator, or the run whose counters
/// caused it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunReason {
    /// Started by hand (CLI without the service).
    Manual { by: String },
    /// Asked for by a trigger.
    Trigger { trigger: String },
    /// A follow-up of another run.
    FollowUp {
        run_id: RunId,
        because: String,
        /// The run reads back what an export sent (a confirming import):
        /// a connector without change tracking that can look objects up
        /// by anchor reads only the objects whose export is unconfirmed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        confirming: bool,
    },
    /// Found necessary by reconciliation of connector spaces.
    Reconciliation { because: String },
}

impl RunReason {
    /// Whether the run is a confirming import asked for by an export.
    pub fn confirming(&self) -> bool {
        matches!(
            self,
            RunReason::FollowUp {
                confirming: true,
                ..
            }
        )
    }
}

impl fmt::Display for RunReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunReason::Manual { by } => write!(f, "manual ({by})"),
            RunReason::Trigger { trigger } => write!(f, "trigger {trigger}"),
            RunReason::FollowUp {
                run_id, because, ..
            } => {
                write!(f, "follow-up of run {run_id}: {because}")
            }
            RunReason::Reconciliation { because } => write!(f, "reconciliation: {because}"),
        }
    }
}

/// One run of a run profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 0 until the store assigns one.
    pub id: RunId,
    pub ma: String,
    pub profile: String,
    pub status: RunStatus,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub reason: RunReason,
    pub steps: Vec<StepRecord>,
}

impl RunRecord {
    /// Sum of the import counters' staged changes over the run's import steps.
    pub fn staged_imports(&self) -> u64 {
        self.steps
            .iter()
            .filter_map(|s| match &s.counters {
                StepCounters::Import(c) => Some(c.staged()),
                _ => None,
            })
            .sum()
    }
}

/// A per-object error as recorded with a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunObjectError {
    pub run_id: RunId,
    pub step_index: u32,
    pub ma: String,
    /// The object's anchor, or where in the source the bad record was (file
    /// and line) when it has no usable anchor.
    pub object: String,
    /// The error (its `run_id` is this record's run).
    pub error: ObjectError,
}
