//! Which run profile plays which role on an MA (delta import, full import,
//! delta sync, export, confirming import), by the controller's convention,
//! and the `profiles` overrides to propose where the convention alone
//! cannot choose.

use super::MaKind;
use autosync_controller::{
    FollowUpKind, MaInfo, ProfileError, ProfileOverrides, ResolvedProfiles, resolve_profiles,
};
use autosync_model::{MaDef, StepType};
use serde::Serialize;

/// The roles run profiles play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    DeltaImport,
    FullImport,
    DeltaSync,
    Export,
    ConfirmingImport,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DeltaImport => "delta import",
            Role::FullImport => "full import",
            Role::DeltaSync => "delta sync",
            Role::Export => "export",
            Role::ConfirmingImport => "confirming import",
        }
    }
}

/// The profile that plays a role on an MA, or why none does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleChoice {
    pub role: Role,
    pub profile: Option<String>,
    /// Why, when it is not plain convention (missing, chosen among several,
    /// named by the user, not needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The profile whose only step is `step` (several: the one named like the
/// step, else the first by name), and a note when there were several.
fn single_step(info: &MaInfo, step: StepType) -> (Option<String>, Option<String>) {
    let fitting: Vec<&String> = info
        .profiles
        .iter()
        .filter(|(_, steps)| steps.as_slice() == [step])
        .map(|(name, _)| name)
        .collect();
    match fitting.as_slice() {
        [] => (None, None),
        [only] => (Some((*only).clone()), None),
        several => {
            let chosen = several
                .iter()
                .find(|n| n.as_str() == step.as_str())
                .or(several.first())
                .map(|n| (*n).clone());
            let names: Vec<String> = several.iter().map(|n| format!("`{n}`")).collect();
            (
                chosen.clone(),
                Some(format!(
                    "several fit ({}): `{}` chosen",
                    names.join(", "),
                    chosen.unwrap_or_default()
                )),
            )
        }
    }
}

/// The key of a follow-up under `follow_ups` and `profiles`.
pub(super) fn follow_up_key(kind: FollowUpKind) -> &'static str {
    match kind {
        FollowUpKind::DeltaSync => "delta_sync",
        FollowUpKind::Export => "export",
        FollowUpKind::ConfirmingImport => "confirming_import",
    }
}

/// Which profile plays each role, and the `profiles` overrides the
/// controller needs where the convention alone cannot choose. `off`: the
/// follow-ups the user switched off (`follow_ups`): none is needed.
pub(super) fn roles(
    ma: &MaDef,
    kind: MaKind,
    info: &MaInfo,
    user: Option<&ProfileOverrides>,
    off: &dyn Fn(FollowUpKind) -> bool,
) -> (Vec<RoleChoice>, Option<ProfileOverrides>) {
    let exports = !ma.export_flows.is_empty() || !ma.provisioning.is_empty();
    let (delta_import, delta_note) = single_step(info, StepType::DeltaImport);
    let (full_import, full_note) = single_step(info, StepType::FullImport);
    let mut out = Vec::new();
    out.push(RoleChoice {
        role: Role::DeltaImport,
        note: match (&delta_import, &full_import) {
            (None, Some(full)) => Some(format!("none: the full import `{full}` is used")),
            (None, None) => Some("none, and no full import either: nothing can import".into()),
            _ => delta_note,
        },
        profile: delta_import.clone(),
    });
    out.push(RoleChoice {
        role: Role::FullImport,
        note: match full_import {
            None => Some("none (needed after a change of rules or to re-read everything)".into()),
            Some(_) => full_note,
        },
        profile: full_import.clone(),
    });
    let no_overrides = ProfileOverrides::default();
    let resolved: ResolvedProfiles = resolve_profiles(info, user.unwrap_or(&no_overrides));
    let mut overrides = ProfileOverrides::default();
    for (role, kind_) in [
        (Role::DeltaSync, FollowUpKind::DeltaSync),
        (Role::Export, FollowUpKind::Export),
        (Role::ConfirmingImport, FollowUpKind::ConfirmingImport),
    ] {
        let needed = match kind_ {
            FollowUpKind::DeltaSync => true,
            FollowUpKind::Export | FollowUpKind::ConfirmingImport => {
                exports || kind == MaKind::Target
            }
        };
        let named_by_user = user.is_some_and(|u| match kind_ {
            FollowUpKind::DeltaSync => u.delta_sync.is_some(),
            FollowUpKind::Export => u.export.is_some(),
            FollowUpKind::ConfirmingImport => u.confirming_import.is_some(),
        });
        let (profile, note) = match resolved.get(kind_) {
            Ok(p) if named_by_user => (Some(p.clone()), Some("yours (`profiles`)".to_owned())),
            Ok(p) if kind_ == FollowUpKind::ConfirmingImport && delta_import.is_none() => (
                Some(p.clone()),
                Some("the full import: there is no delta import".to_owned()),
            ),
            Ok(p) => (Some(p.clone()), None),
            Err(ProfileError::Ambiguous { candidates, .. }) => {
                let step = match kind_ {
                    FollowUpKind::DeltaSync => StepType::DeltaSync,
                    FollowUpKind::Export => StepType::Export,
                    FollowUpKind::ConfirmingImport => {
                        if delta_import.is_some() {
                            StepType::DeltaImport
                        } else {
                            StepType::FullImport
                        }
                    }
                };
                let (chosen, _) = single_step(info, step);
                if let Some(c) = &chosen {
                    match kind_ {
                        FollowUpKind::DeltaSync => overrides.delta_sync = Some(c.clone()),
                        FollowUpKind::Export => overrides.export = Some(c.clone()),
                        FollowUpKind::ConfirmingImport => {
                            overrides.confirming_import = Some(c.clone())
                        }
                    }
                }
                (
                    chosen.clone(),
                    Some(format!(
                        "several fit ({candidates}): `{}` chosen and named under `profiles`",
                        chosen.unwrap_or_default()
                    )),
                )
            }
            Err(ProfileError::OverrideMissing { profile, .. }) => (
                None,
                Some(format!(
                    "yours (`profiles`) names `{profile}`, which does not exist"
                )),
            ),
            Err(ProfileError::NoneFits { .. }) if off(kind_) => (
                None,
                Some(format!(
                    "none (not needed: the follow-up is off, follow_ups = {{ {} = false }})",
                    follow_up_key(kind_)
                )),
            ),
            Err(ProfileError::NoneFits { .. }) if needed => (
                None,
                Some(format!(
                    "MISSING: add a run profile whose only step is {}, or switch the follow-up off with follow_ups = {{ {} = false }}",
                    match kind_ {
                        FollowUpKind::DeltaSync => "delta-sync",
                        FollowUpKind::Export => "export",
                        FollowUpKind::ConfirmingImport => "delta-import or full-import",
                    },
                    follow_up_key(kind_)
                )),
            ),
            Err(ProfileError::NoneFits { .. }) => (
                None,
                Some("none (not needed: nothing is exported to this MA)".into()),
            ),
        };
        out.push(RoleChoice {
            role,
            profile,
            note,
        });
    }
    let overrides = (overrides != ProfileOverrides::default()).then_some(overrides);
    (out, overrides)
}
