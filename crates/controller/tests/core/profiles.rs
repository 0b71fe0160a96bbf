//! Which profile each follow-up runs: by convention, or by override.

use autosync_controller::{FollowUpKind, MaInfo, ProfileError, ProfileOverrides, resolve_profiles};
use autosync_model::{MaDef, StepType};
use std::collections::BTreeMap;

fn ma(profiles: &[(&str, &[StepType])]) -> MaInfo {
    MaInfo {
        name: "hr".into(),
        profiles: profiles
            .iter()
            .map(|(n, s)| ((*n).to_owned(), s.to_vec()))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn single_step_profiles_should_be_found_by_convention_whatever_their_names() {
    let hr = ma(&[
        ("DI", &[StepType::DeltaImport]),
        ("FI", &[StepType::FullImport]),
        ("DS", &[StepType::DeltaSync]),
        ("EX", &[StepType::Export]),
        ("DI+DS", &[StepType::DeltaImport, StepType::DeltaSync]),
    ]);
    let r = resolve_profiles(&hr, &ProfileOverrides::default());
    assert_eq!(r.delta_sync, Ok("DS".into()));
    assert_eq!(r.export, Ok("EX".into()));
    assert_eq!(r.confirming_import, Ok("DI".into()));
}

#[test]
fn the_conventional_profiles_of_a_definition_without_run_profiles_should_resolve() {
    let def: MaDef = serde_json::from_value(serde_json::json!({
        "name": "hr",
        "connector": { "type": "csv", "path": "hr.csv" },
        "object_types": [{ "name": "person", "anchor": "id" }]
    }))
    .expect("valid MA definition");
    let r = resolve_profiles(&MaInfo::from_def(&def), &ProfileOverrides::default());
    assert_eq!(r.delta_sync, Ok("delta-sync".into()));
    assert_eq!(r.export, Ok("export".into()));
    assert_eq!(r.confirming_import, Ok("delta-import".into()));
}

#[test]
fn an_override_should_win_over_the_convention() {
    let hr = ma(&[
        ("DS", &[StepType::DeltaSync]),
        ("DS-and-export", &[StepType::DeltaSync, StepType::Export]),
    ]);
    let overrides = ProfileOverrides {
        delta_sync: Some("DS-and-export".into()),
        ..Default::default()
    };
    assert_eq!(
        resolve_profiles(&hr, &overrides).delta_sync,
        Ok("DS-and-export".into())
    );
}

#[test]
fn an_override_naming_a_missing_profile_should_say_which_and_list_the_profiles() {
    let hr = ma(&[("DS", &[StepType::DeltaSync])]);
    let overrides = ProfileOverrides {
        delta_sync: Some("Delta Sync".into()),
        ..Default::default()
    };
    let err = resolve_profiles(&hr, &overrides)
        .delta_sync
        .expect_err("missing override");
    assert_eq!(
        err.to_string(),
        "management agent `hr`: the delta sync override names run profile `Delta Sync`, which does not exist (profiles: `DS`)"
    );
}

#[test]
fn no_fitting_profile_should_give_a_clear_error_per_follow_up() {
    let hr = ma(&[(
        "all",
        &[StepType::DeltaImport, StepType::DeltaSync, StepType::Export],
    )]);
    let r = resolve_profiles(&hr, &ProfileOverrides::default());
    let err = r.confirming_import.expect_err("no import profile");
    assert_eq!(
        err.to_string(),
        "management agent `hr` has no run profile for the confirming import: wanted a profile whose only step is \
         delta-import, else a profile whose only step is full-import (profiles: `all`); name one in the configuration"
    );
    assert!(matches!(
        r.export,
        Err(ProfileError::NoneFits {
            role: FollowUpKind::Export,
            ..
        })
    ));
}

#[test]
fn several_fitting_profiles_should_be_ambiguous_unless_one_is_named_like_its_step() {
    let two = ma(&[("a", &[StepType::Export]), ("b", &[StepType::Export])]);
    let err = resolve_profiles(&two, &ProfileOverrides::default())
        .export
        .expect_err("ambiguous");
    assert_eq!(
        err.to_string(),
        "management agent `hr` has several run profiles that could be the export: `a`, `b`; name one in the configuration"
    );
    let named = ma(&[("a", &[StepType::Export]), ("export", &[StepType::Export])]);
    assert_eq!(
        resolve_profiles(&named, &ProfileOverrides::default()).export,
        Ok("export".into())
    );
}

#[test]
fn confirming_import_should_fall_back_to_the_full_import_when_there_is_no_delta_import() {
    let hr = ma(&[
        ("full", &[StepType::FullImport]),
        ("sync", &[StepType::DeltaSync]),
    ]);
    assert_eq!(
        resolve_profiles(&hr, &ProfileOverrides::default()).confirming_import,
        Ok("full".into())
    );
}

#[test]
fn overrides_should_read_from_kebab_case_configuration() {
    let o: ProfileOverrides =
        serde_json::from_value(serde_json::json!({ "confirming-import": "Full Import" }))
            .expect("valid overrides");
    assert_eq!(o.confirming_import.as_deref(), Some("Full Import"));
    let bad = serde_json::from_value::<ProfileOverrides>(serde_json::json!({ "sync": "x" }));
    assert!(bad.is_err());
}
