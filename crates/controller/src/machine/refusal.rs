//! Why the machine refused an operator's request: a stable code that
//! programs match on (the API turns it into an HTTP status, the CLI into
//! an exit code) and a sentence for people.

use crate::engine_api::EngineCallError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of refusal it is. The kebab-case names are part of the API:
/// a code once published keeps its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalCode {
    /// No management agent of that name is configured.
    UnknownMa,
    /// The management agent has no run profile of that name.
    UnknownProfile,
    /// A staging threshold holds the MA's syncs until an operator approves
    /// or rejects.
    HeldByThreshold,
    /// The MA is disabled in the configuration.
    MaDisabled,
    /// Nothing runs on the MA (nothing to cancel).
    NotRunning,
    /// The MA runs a profile; ask again when it ends.
    Busy,
    /// Nothing waits for an approval on the MA.
    NothingToApprove,
    /// Nothing waits for a rejection on the MA.
    NothingToReject,
    /// Maintenance mode is not on.
    NotInMaintenance,
    /// The action needs a management agent.
    NeedsMa,
    /// The action applies to the whole service, not to one MA.
    GlobalOnly,
    /// The engine or the store could not carry the action out.
    EngineFailed,
    /// The service is stopping.
    ServiceStopping,
    /// A new configuration was refused; the running one stays.
    ReloadRefused,
}

impl RefusalCode {
    /// Every code, for documentation and tests.
    pub const ALL: [RefusalCode; 14] = [
        RefusalCode::UnknownMa,
        RefusalCode::UnknownProfile,
        RefusalCode::HeldByThreshold,
        RefusalCode::MaDisabled,
        RefusalCode::NotRunning,
        RefusalCode::Busy,
        RefusalCode::NothingToApprove,
        RefusalCode::NothingToReject,
        RefusalCode::NotInMaintenance,
        RefusalCode::NeedsMa,
        RefusalCode::GlobalOnly,
        RefusalCode::EngineFailed,
        RefusalCode::ServiceStopping,
        RefusalCode::ReloadRefused,
    ];

    /// The code's name, as serde writes it (`unknown-ma`).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::UnknownMa => "unknown-ma",
            RefusalCode::UnknownProfile => "unknown-profile",
            RefusalCode::HeldByThreshold => "held-by-threshold",
            RefusalCode::MaDisabled => "ma-disabled",
            RefusalCode::NotRunning => "not-running",
            RefusalCode::Busy => "busy",
            RefusalCode::NothingToApprove => "nothing-to-approve",
            RefusalCode::NothingToReject => "nothing-to-reject",
            RefusalCode::NotInMaintenance => "not-in-maintenance",
            RefusalCode::NeedsMa => "needs-ma",
            RefusalCode::GlobalOnly => "global-only",
            RefusalCode::EngineFailed => "engine-failed",
            RefusalCode::ServiceStopping => "service-stopping",
            RefusalCode::ReloadRefused => "reload-refused",
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: its code and the sentence saying what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// No management agent named `ma`: the closest name, or the list of
    /// them (`autosync_model::suggest`, as every message naming something
    /// unknown).
    pub fn unknown_ma<'a>(ma: &str, names: impl IntoIterator<Item = &'a str>) -> Refusal {
        Refusal::new(
            RefusalCode::UnknownMa,
            autosync_model::suggest::unknown_ma(ma, names),
        )
    }

    /// `ma` has no run profile `profile`: the closest one, or the list.
    pub fn unknown_profile(ma: &str, profile: &str, info: &crate::MaInfo) -> Refusal {
        let names = info.profiles.keys().map(String::as_str);
        Refusal::new(
            RefusalCode::UnknownProfile,
            autosync_model::suggest::unknown_profile(ma, profile, names),
        )
    }

    /// The engine's refusal of an approval or rejection on `ma`
    /// (`nothing` is the code when it says nothing waits).
    pub(crate) fn of_engine(e: EngineCallError, nothing: RefusalCode) -> Refusal {
        let code = match &e {
            EngineCallError::UnknownMa { .. } => RefusalCode::UnknownMa,
            EngineCallError::UnknownProfile { .. } => RefusalCode::UnknownProfile,
            EngineCallError::AlreadyRunning { .. } => RefusalCode::Busy,
            EngineCallError::NothingWaits { .. } => nothing,
            EngineCallError::Unavailable { .. } | EngineCallError::Failed { .. } => {
                RefusalCode::EngineFailed
            }
        };
        Refusal::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_should_serialise_as_its_name() {
        for code in RefusalCode::ALL {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
