//! What the service tells whoever follows it (the CLI's live view, the web
//! console, metrics, a second node): one stream of typed events. The
//! machine decides what is published, where the policy happens (a queue
//! push, a start, a run's end, a trigger's request, a notice), and says it
//! with [`Effect::Publish`](super::Effect::Publish); the service numbers
//! each event ([`Published::seq`]) and broadcasts it.
//!
//! `state-changed` is computed in one place: after every event the machine
//! compares each MA's state, by the function the status uses, with the
//! state it last published, so the stream and the status never disagree.

use super::notice::Notice;
use super::status::MaStateName;
use crate::control::Control;
use crate::engine_api::ProgressState;
use crate::queue::RequestId;
use autosync_model::{RunId, RunReason, RunRecord, RunStatus, StepCounters, StepType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One event of the service's stream. Every event carries `at`, the time
/// the machine was given when it decided it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServiceEvent {
    /// The service started, began its graceful stop, or stopped.
    Service {
        at: DateTime<Utc>,
        state: ServiceState,
    },
    /// A trigger asked for a run (`deferred`: its MA's triggers are
    /// paused, so the request waits for resume instead of being queued).
    TriggerFired {
        at: DateTime<Utc>,
        ma: String,
        /// Which trigger asked, its kind first
        /// (`schedule hr-nightly (0 2 * * *, Europe/Paris)`).
        trigger: String,
        profile: String,
        deferred: bool,
    },
    /// A request was queued, or merged into an equal queued one
    /// (`merged`; `request` is then the id of that one).
    Queued {
        at: DateTime<Utc>,
        ma: String,
        profile: String,
        request: RequestId,
        reason: RunReason,
        merged: bool,
    },
    /// A run started: the controller's (with its request) or one started
    /// outside it, found in the store (without).
    RunStarted {
        at: DateTime<Utc>,
        ma: String,
        profile: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
        reason: RunReason,
    },
    /// A running profile moved on: its step, or the objects the step
    /// processed (sampled about once a second, published when it changed).
    StepProgress {
        at: DateTime<Utc>,
        ma: String,
        profile: String,
        /// 0-based index of the step (`None` while the run starts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_index: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<StepType>,
        processed: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<u64>,
    },
    /// A run ended. `run_id` and `status` are absent when it did not run
    /// (the before hook skipped it, the engine could not start it);
    /// `message` then says why, and for a stopped run why it stopped.
    RunEnded {
        at: DateTime<Utc>,
        ma: String,
        profile: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<RunId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<RunStatus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        counts: RunCounts,
    },
    /// An MA's state (as the status names it) changed. `from` is absent
    /// when the MA first appears (the service started, a reload added it);
    /// `to` is absent when a reload removed it. `detail` is what the
    /// status adds to the new state's name (the profile that runs, what it
    /// waits for, ...).
    StateChanged {
        at: DateTime<Utc>,
        ma: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<MaStateName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<MaStateName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Something operators should hear about: every notice that is also
    /// notified by email and webhooks (there with repeats suppressed,
    /// here each time).
    Notice {
        at: DateTime<Utc>,
        kind: NoticeKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ma: Option<String>,
        message: String,
    },
    /// An operator's control was carried out (`start`, `stop`, `pause`,
    /// `resume`, `maintenance`, `end-maintenance`, ...): who asked, on
    /// which MA (absent: every MA, or the whole service), and the
    /// service's answer. Maintenance mode and paused triggers are no MA
    /// state (the status shows them beside it): this is where the stream
    /// says they changed.
    Control {
        at: DateTime<Utc>,
        action: Control,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ma: Option<String>,
        by: String,
        message: String,
    },
}

/// Where the service is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    Started,
    Stopping,
    Stopped,
}

/// What a `notice` is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// A run ended in a status that is news (not ignored).
    RunFailed,
    /// A profile whose runs failed ran well again, and no threshold stop
    /// waits on its MA.
    Recovered,
    MaFailed,
    ThresholdExceeded,
    TriggerError,
    Oscillation,
    FullSyncNeeded,
    ReloadRejected,
    HookError,
}

/// What a run did, in the figures a one-line view shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Changes its imports staged.
    pub imported: u64,
    /// Metaverse changes of its syncs (projections, joins,
    /// disconnections, connectors whose values flowed, deletions).
    pub synced: u64,
    /// Changes its syncs staged for export to other MAs: provisioned
    /// adds, renames, disconnects and delete-adds, and export attribute
    /// flows (the name is the events API's; the CLI says "staged for
    /// export").
    pub provisioned: u64,
    /// Changes its exports sent.
    pub exported: u64,
    /// Per-object errors.
    pub errors: u64,
}

impl RunCounts {
    /// The figures of a finished run.
    pub fn of(record: &RunRecord) -> RunCounts {
        let mut counts = RunCounts::default();
        for step in &record.steps {
            counts.errors += step.errors;
            match &step.counters {
                StepCounters::Import(c) => counts.imported += c.staged(),
                StepCounters::Sync(c) => {
                    counts.synced += c.projections
                        + c.joins
                        + c.disconnections
                        + c.connectors_with_flow_updates
                        + c.deleted;
                    counts.provisioned += c.outbound.values().map(|o| o.staged()).sum::<u64>();
                }
                StepCounters::Export(c) => {
                    counts.exported += c.adds + c.updates + c.renames + c.deletes + c.delete_adds;
                }
            }
        }
        counts
    }
}

impl ServiceEvent {
    /// The event's type, as serde writes it (`run-started`).
    pub fn kind(&self) -> &'static str {
        match self {
            ServiceEvent::Service { .. } => "service",
            ServiceEvent::TriggerFired { .. } => "trigger-fired",
            ServiceEvent::Queued { .. } => "queued",
            ServiceEvent::RunStarted { .. } => "run-started",
            ServiceEvent::StepProgress { .. } => "step-progress",
            ServiceEvent::RunEnded { .. } => "run-ended",
            ServiceEvent::StateChanged { .. } => "state-changed",
            ServiceEvent::Notice { .. } => "notice",
            ServiceEvent::Control { .. } => "control",
        }
    }

    /// When the machine decided it.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ServiceEvent::Service { at, .. }
            | ServiceEvent::TriggerFired { at, .. }
            | ServiceEvent::Queued { at, .. }
            | ServiceEvent::RunStarted { at, .. }
            | ServiceEvent::StepProgress { at, .. }
            | ServiceEvent::RunEnded { at, .. }
            | ServiceEvent::StateChanged { at, .. }
            | ServiceEvent::Notice { at, .. }
            | ServiceEvent::Control { at, .. } => *at,
        }
    }

    /// The MA it is about, if one.
    pub fn ma(&self) -> Option<&str> {
        match self {
            ServiceEvent::Service { .. } => None,
            ServiceEvent::Notice { ma, .. } | ServiceEvent::Control { ma, .. } => ma.as_deref(),
            ServiceEvent::TriggerFired { ma, .. }
            | ServiceEvent::Queued { ma, .. }
            | ServiceEvent::RunStarted { ma, .. }
            | ServiceEvent::StepProgress { ma, .. }
            | ServiceEvent::RunEnded { ma, .. }
            | ServiceEvent::StateChanged { ma, .. } => Some(ma),
        }
    }

    /// The `run-ended` of a run that ran.
    pub(super) fn run_ended(
        at: DateTime<Utc>,
        record: &RunRecord,
        request: Option<RequestId>,
    ) -> ServiceEvent {
        ServiceEvent::RunEnded {
            at,
            ma: record.ma.clone(),
            profile: record.profile.clone(),
            request,
            run_id: Some(record.id),
            status: Some(record.status),
            message: record
                .status
                .is_stopped()
                .then(|| super::runs::stop_reason(record)),
            counts: RunCounts::of(record),
        }
    }

    /// The `step-progress` of a run on `ma`.
    pub(super) fn progress(
        at: DateTime<Utc>,
        ma: &str,
        profile: &str,
        p: &ProgressState,
    ) -> ServiceEvent {
        ServiceEvent::StepProgress {
            at,
            ma: ma.to_owned(),
            profile: profile.to_owned(),
            step_index: p.step_index,
            step: p.step,
            processed: p.processed,
            expected: p.expected,
        }
    }

    /// The `notice` of a notice.
    pub(super) fn notice(at: DateTime<Utc>, notice: &Notice) -> ServiceEvent {
        let (kind, ma, message) = match notice {
            Notice::RunFailed(run) => (
                NoticeKind::RunFailed,
                Some(&run.ma),
                super::notice::run_failed_message(run),
            ),
            Notice::Recovered {
                ma,
                profile,
                run_id,
                status,
                failing_since,
            } => (
                NoticeKind::Recovered,
                Some(ma),
                super::notice::recovered_message(ma, profile, *run_id, *status, *failing_since),
            ),
            Notice::MaFailed {
                ma,
                profile,
                attempts,
                status,
            } => (
                NoticeKind::MaFailed,
                Some(ma),
                super::notice::ma_failed_message(ma, profile, *attempts, *status),
            ),
            Notice::ThresholdExceeded {
                ma,
                run_id,
                exceeded,
            } => (
                NoticeKind::ThresholdExceeded,
                Some(ma),
                format!(
                    "run {run_id} of `{ma}` went over a staging threshold ({}): its syncs wait for `autosync approve {ma}` or `autosync reject {ma}`",
                    exceeded.join(", ")
                ),
            ),
            // The trigger's own error without what it repeats: the
            // message is what went wrong, the trigger named once here.
            Notice::TriggerError {
                ma,
                trigger,
                message,
            } => (
                NoticeKind::TriggerError,
                Some(ma),
                format!("trigger {trigger} failed: {message}"),
            ),
            Notice::Oscillation { ma, detail } => {
                (NoticeKind::Oscillation, Some(ma), detail.clone())
            }
            Notice::FullSyncNeeded { ma, because } => (
                NoticeKind::FullSyncNeeded,
                Some(ma),
                format!("{because}: a full sync re-applies the rules"),
            ),
            Notice::ReloadRejected { message } => {
                (NoticeKind::ReloadRejected, None, message.clone())
            }
            Notice::HookError { ma, message } => (NoticeKind::HookError, Some(ma), message.clone()),
        };
        ServiceEvent::Notice {
            at,
            kind,
            ma: ma.cloned(),
            message,
        }
    }
}

/// An event as the service broadcasts it: numbered from 1 in the order
/// the machine decided them (`seq` starts again when the service does).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub seq: u64,
    #[serde(flatten)]
    pub event: ServiceEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_should_round_trip_with_its_type_and_number() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let published = Published {
            seq: 7,
            event: ServiceEvent::StateChanged {
                at,
                ma: "hr".into(),
                from: Some(MaStateName::Idle),
                to: Some(MaStateName::ThresholdExceeded),
                detail: None,
            },
        };
        let json = serde_json::to_value(&published).unwrap_or_default();
        assert_eq!(json["type"], "state-changed");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["to"], "threshold-exceeded");
        assert_eq!(json["type"], published.event.kind());
        let back: Result<Published, _> = serde_json::from_value(json);
        assert_eq!(back.ok(), Some(published));
    }
}
