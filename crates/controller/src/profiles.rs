//! Which of an MA's run profiles the cycle uses for each follow-up: "the
//! delta sync", "the export" and "the confirming import", found by
//! convention (a profile whose only step is that step) or named by an
//! override in the configuration.

use crate::engine_api::MaInfo;
use autosync_model::StepType;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// The three follow-ups of the cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FollowUpKind {
    DeltaSync,
    Export,
    ConfirmingImport,
}

impl FollowUpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpKind::DeltaSync => "delta sync",
            FollowUpKind::Export => "export",
            FollowUpKind::ConfirmingImport => "confirming import",
        }
    }
}

impl fmt::Display for FollowUpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Profile names given in the configuration instead of the convention.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProfileOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_sync: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirming_import: Option<String>,
}

/// Why no profile could be chosen for a follow-up.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error(
        "management agent `{ma}`: the {role} override names run profile `{profile}`, which does not exist (profiles: {available})"
    )]
    OverrideMissing {
        ma: String,
        role: FollowUpKind,
        profile: String,
        available: String,
    },
    #[error(
        "management agent `{ma}` has no run profile for the {role}: wanted {wanted} (profiles: {available}); name one in the configuration"
    )]
    NoneFits {
        ma: String,
        role: FollowUpKind,
        wanted: String,
        available: String,
    },
    #[error(
        "management agent `{ma}` has several run profiles that could be the {role}: {candidates}; name one in the configuration"
    )]
    Ambiguous {
        ma: String,
        role: FollowUpKind,
        candidates: String,
    },
}

/// The profile each follow-up runs on one MA, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedProfiles {
    pub delta_sync: Result<String, ProfileError>,
    pub export: Result<String, ProfileError>,
    /// The delta import, or the full import when the MA has no delta import.
    pub confirming_import: Result<String, ProfileError>,
}

impl ResolvedProfiles {
    /// The same profile names on every MA, for tests and simple setups.
    pub fn named(delta_sync: &str, export: &str, confirming_import: &str) -> Self {
        ResolvedProfiles {
            delta_sync: Ok(delta_sync.to_owned()),
            export: Ok(export.to_owned()),
            confirming_import: Ok(confirming_import.to_owned()),
        }
    }

    pub fn get(&self, kind: FollowUpKind) -> &Result<String, ProfileError> {
        match kind {
            FollowUpKind::DeltaSync => &self.delta_sync,
            FollowUpKind::Export => &self.export,
            FollowUpKind::ConfirmingImport => &self.confirming_import,
        }
    }
}

/// Chooses the profile of each follow-up for one MA: the override when
/// given (it must exist), else the profile whose only step is the wanted
/// step (delta sync; export; delta import, else full import). When several
/// fit, the one named like its step (`delta-sync`, `export`, ...) wins.
pub fn resolve_profiles(ma: &MaInfo, overrides: &ProfileOverrides) -> ResolvedProfiles {
    ResolvedProfiles {
        delta_sync: resolve(
            ma,
            FollowUpKind::DeltaSync,
            overrides.delta_sync.as_deref(),
            &[StepType::DeltaSync],
        ),
        export: resolve(
            ma,
            FollowUpKind::Export,
            overrides.export.as_deref(),
            &[StepType::Export],
        ),
        confirming_import: resolve(
            ma,
            FollowUpKind::ConfirmingImport,
            overrides.confirming_import.as_deref(),
            &[StepType::DeltaImport, StepType::FullImport],
        ),
    }
}

/// `preferred` lists single steps in order of preference.
fn resolve(
    ma: &MaInfo,
    role: FollowUpKind,
    override_name: Option<&str>,
    preferred: &[StepType],
) -> Result<String, ProfileError> {
    let available = || {
        if ma.profiles.is_empty() {
            "none".to_owned()
        } else {
            ma.profiles
                .keys()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if let Some(name) = override_name {
        if ma.profiles.contains_key(name) {
            return Ok(name.to_owned());
        }
        return Err(ProfileError::OverrideMissing {
            ma: ma.name.clone(),
            role,
            profile: name.to_owned(),
            available: available(),
        });
    }
    for step in preferred {
        let fitting: Vec<&String> = ma
            .profiles
            .iter()
            .filter(|(_, steps)| steps.as_slice() == [*step])
            .map(|(name, _)| name)
            .collect();
        match fitting.as_slice() {
            [] => continue,
            [only] => return Ok((*only).clone()),
            several => {
                if let Some(named) = several.iter().find(|n| n.as_str() == step.as_str()) {
                    return Ok((*named).clone());
                }
                return Err(ProfileError::Ambiguous {
                    ma: ma.name.clone(),
                    role,
                    candidates: several
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    let wanted = preferred
        .iter()
        .map(|s| format!("a profile whose only step is {s}"))
        .collect::<Vec<_>>()
        .join(", else ");
    Err(ProfileError::NoneFits {
        ma: ma.name.clone(),
        role,
        wanted,
        available: available(),
    })
}
