//! What needs an operator's attention.

use autosync_model::{ErrorStage, RunId, RunObjectError, RunRecord, RunStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One per-object error of a run, as shown in a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectErrorSummary {
    /// Index of the run's step that raised it (0-based).
    pub step_index: u32,
    /// The object's anchor, or where in the source the bad record was.
    pub object: String,
    pub stage: ErrorStage,
    /// Stable kebab-case error type, e.g. `duplicate-anchor`.
    pub error_type: String,
    pub detail: String,
}

impl From<&RunObjectError> for ObjectErrorSummary {
    fn from(e: &RunObjectError) -> Self {
        ObjectErrorSummary {
            step_index: e.step_index,
            object: e.object.clone(),
            stage: e.error.stage,
            error_type: e.error.error_type.clone(),
            detail: e.error.detail.clone(),
        }
    }
}

impl From<RunObjectError> for ObjectErrorSummary {
    fn from(e: RunObjectError) -> Self {
        ObjectErrorSummary {
            step_index: e.step_index,
            object: e.object,
            stage: e.error.stage,
            error_type: e.error.error_type,
            detail: e.error.detail,
        }
    }
}

/// Something that needs an operator's attention.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A run ended in a status that is not ignored.
    RunFailed {
        run: RunRecord,
        /// Its first per-object errors (at most 10 are shown).
        first_errors: Vec<ObjectErrorSummary>,
    },
    /// Retries are exhausted: the MA is marked failed.
    MaFailed {
        ma: String,
        profile: String,
        attempts: u32,
        last_status: RunStatus,
        message: String,
    },
    /// A staging threshold stopped the MA's cycle before syncing.
    ThresholdExceeded {
        ma: String,
        run_id: RunId,
        /// e.g. `deletes 120 > 10% (12.0% of 1000 objects)`.
        what: String,
    },
    /// A trigger failed (it keeps running).
    TriggerError {
        ma: String,
        trigger: String,
        message: String,
    },
    /// The controller saw runs of an MA keep causing each other.
    Oscillation { ma: String, detail: String },
    /// The synchronisation rules changed since the MA's connector space
    /// was last fully synchronised: a full sync re-applies them.
    FullSyncNeeded { ma: String, because: String },
    /// A new configuration was not applied; the old one still runs.
    ConfigReloadRejected { message: String },
    /// A notified failure of an MA and profile cleared: a run ended in an
    /// ignored status.
    Recovered {
        ma: String,
        profile: String,
        /// When the failure was first seen.
        failing_since: DateTime<Utc>,
        /// Failures seen since then (notified or suppressed).
        failures: u64,
        /// The status of the last failure.
        last_status: Option<RunStatus>,
    },
    /// The service stopped by itself (not at an operator's stop): its
    /// store file was deleted, replaced or damaged under it, or another
    /// process took over its store lease. Sent once per stop, never
    /// suppressed.
    ServiceStopped {
        /// What happened, what was done and what to do (what the ERROR
        /// the service ends with says, or as much of it as is known when
        /// the notice goes).
        message: String,
    },
}

/// The kind of an [`Event`] (the `event` field of the webhook JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    RunFailed,
    MaFailed,
    ThresholdExceeded,
    TriggerError,
    Oscillation,
    FullSyncNeeded,
    ConfigReloadRejected,
    Recovered,
    ServiceStopped,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunFailed => "run-failed",
            EventKind::MaFailed => "ma-failed",
            EventKind::ThresholdExceeded => "threshold-exceeded",
            EventKind::TriggerError => "trigger-error",
            EventKind::Oscillation => "oscillation",
            EventKind::FullSyncNeeded => "full-sync-needed",
            EventKind::ConfigReloadRejected => "config-reload-rejected",
            EventKind::Recovered => "recovered",
            EventKind::ServiceStopped => "service-stopped",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What repeats of a failure share: the same key is one ongoing problem.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SuppressionKey {
    pub kind: EventKind,
    /// Empty for events not tied to an MA.
    pub ma: String,
    /// The run profile (run-failed, ma-failed), the trigger (trigger-error),
    /// else empty.
    pub scope: String,
}

impl SuppressionKey {
    pub fn new(kind: EventKind, ma: &str, scope: &str) -> Self {
        SuppressionKey {
            kind,
            ma: ma.to_owned(),
            scope: scope.to_owned(),
        }
    }
}

impl fmt::Display for SuppressionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.ma.is_empty() {
            write!(f, " {}", self.ma)?;
        }
        if !self.scope.is_empty() {
            write!(f, "/{}", self.scope)?;
        }
        Ok(())
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::RunFailed { .. } => EventKind::RunFailed,
            Event::MaFailed { .. } => EventKind::MaFailed,
            Event::ThresholdExceeded { .. } => EventKind::ThresholdExceeded,
            Event::TriggerError { .. } => EventKind::TriggerError,
            Event::Oscillation { .. } => EventKind::Oscillation,
            Event::FullSyncNeeded { .. } => EventKind::FullSyncNeeded,
            Event::ConfigReloadRejected { .. } => EventKind::ConfigReloadRejected,
            Event::Recovered { .. } => EventKind::Recovered,
            Event::ServiceStopped { .. } => EventKind::ServiceStopped,
        }
    }

    /// The MA the event is about, if any.
    pub fn ma(&self) -> Option<&str> {
        match self {
            Event::RunFailed { run, .. } => Some(&run.ma),
            Event::MaFailed { ma, .. }
            | Event::ThresholdExceeded { ma, .. }
            | Event::TriggerError { ma, .. }
            | Event::Oscillation { ma, .. }
            | Event::FullSyncNeeded { ma, .. }
            | Event::Recovered { ma, .. } => Some(ma),
            Event::ConfigReloadRejected { .. } | Event::ServiceStopped { .. } => None,
        }
    }

    /// The run profile the event is about, if any.
    pub fn profile(&self) -> Option<&str> {
        match self {
            Event::RunFailed { run, .. } => Some(&run.profile),
            Event::MaFailed { profile, .. } | Event::Recovered { profile, .. } => Some(profile),
            _ => None,
        }
    }

    /// The ongoing problem this event is a repeat of, and what identifies
    /// "the same failure" within it; `None` for events never suppressed
    /// (recovered notices; a service's stop: each is news).
    ///
    /// - run-failed: MA + profile; same status and first per-object error type
    /// - ma-failed: MA + profile; same last status
    /// - threshold-exceeded: MA; same run (each new run is notified)
    /// - trigger-error: MA + trigger; same message
    /// - oscillation: MA; any detail
    /// - full-sync-needed: MA; same reason
    /// - config-reload-rejected: same message
    pub fn suppression(&self) -> Option<(SuppressionKey, String)> {
        let kind = self.kind();
        match self {
            Event::RunFailed { run, first_errors } => {
                let first = first_errors
                    .first()
                    .map(|e| e.error_type.as_str())
                    .unwrap_or("");
                Some((
                    SuppressionKey::new(kind, &run.ma, &run.profile),
                    format!("{}|{first}", run.status),
                ))
            }
            Event::MaFailed {
                ma,
                profile,
                last_status,
                ..
            } => Some((
                SuppressionKey::new(kind, ma, profile),
                last_status.to_string(),
            )),
            Event::ThresholdExceeded { ma, run_id, .. } => {
                Some((SuppressionKey::new(kind, ma, ""), run_id.to_string()))
            }
            Event::TriggerError {
                ma,
                trigger,
                message,
            } => Some((SuppressionKey::new(kind, ma, trigger), message.clone())),
            Event::Oscillation { ma, .. } => {
                Some((SuppressionKey::new(kind, ma, ""), String::new()))
            }
            Event::FullSyncNeeded { ma, because } => {
                Some((SuppressionKey::new(kind, ma, ""), because.clone()))
            }
            Event::ConfigReloadRejected { message } => {
                Some((SuppressionKey::new(kind, "", ""), message.clone()))
            }
            Event::Recovered { .. } | Event::ServiceStopped { .. } => None,
        }
    }
}
