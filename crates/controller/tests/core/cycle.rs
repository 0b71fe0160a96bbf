//! The rules of "The cycle" (autosync.md), one test each.

use crate::support::*;
use autosync_controller::{
    ChainLink, FollowUpKind, MaInfo, ProfileOverrides, Report, Request, decide, resolve_profiles,
};
use autosync_model::{
    ExportCounters, ImportCounters, RunReason, RunStatus, StepCounters, StepType,
};
use std::collections::BTreeMap;

fn steps_of(run: &autosync_model::RunRecord) -> Vec<StepType> {
    run.steps.iter().map(|s| s.step_type).collect()
}

fn targets(requests: &[Request]) -> Vec<(String, String)> {
    requests
        .iter()
        .map(|r| (r.ma.clone(), r.profile.clone()))
        .collect()
}

fn pair(ma: &str, profile: &str) -> (String, String) {
    (ma.to_owned(), profile.to_owned())
}

fn because(r: &Request) -> String {
    match &r.reason {
        RunReason::FollowUp { because, .. } | RunReason::Reconciliation { because } => {
            because.clone()
        }
        other => panic!("unexpected reason {other:?}"),
    }
}

#[test]
fn import_with_staged_changes_should_queue_a_delta_sync_on_the_same_ma() {
    let run = import_run(7, "hr", 2, 1);
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert_eq!(targets(&d.requests), vec![pair("hr", "delta-sync")]);
    assert_eq!(
        d.requests[0].reason,
        RunReason::FollowUp {
            run_id: 7,
            because: "staged 3 changes (2 adds, 1 update)".into(),
            confirming: false,
        }
    );
    assert!(!d.requests[0].exclusive && !d.requests[0].run_immediate);
    assert!(d.reports.is_empty());
}

#[test]
fn full_import_with_staged_changes_should_queue_a_delta_sync() {
    let run = run(
        1,
        "hr",
        "full-import",
        vec![step(
            StepType::FullImport,
            RunStatus::Success,
            imported(0, 4),
        )],
    );
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert_eq!(targets(&d.requests), vec![pair("hr", "delta-sync")]);
    assert_eq!(because(&d.requests[0]), "staged 4 changes (4 updates)");
}

#[test]
fn import_that_staged_no_change_should_queue_nothing() {
    let run = run(
        1,
        "hr",
        "delta-import",
        vec![step(
            StepType::DeltaImport,
            RunStatus::Success,
            StepCounters::Import(ImportCounters {
                stage_no_change: 9,
                stage_failure: 2,
                ..Default::default()
            }),
        )],
    );
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert!(d.requests.is_empty() && d.reports.is_empty());
}

/// An import that found objects whose adds were pending already there
/// (accounts made before autosync): their adds became updates, which the
/// next export sends, besides the delta sync of what it staged.
#[test]
fn an_import_that_found_pending_adds_already_made_should_queue_an_export() {
    let counters = ImportCounters {
        stage_update: 2,
        export_add_existing: 2,
        ..Default::default()
    };
    let run = run(
        1,
        "app",
        "full-import",
        vec![step(
            StepType::FullImport,
            RunStatus::Success,
            StepCounters::Import(counters),
        )],
    );
    let d = decide(&run, &steps_of(&run), &view(&["app"]));
    assert_eq!(
        targets(&d.requests),
        vec![pair("app", "delta-sync"), pair("app", "export")]
    );
    assert_eq!(
        because(&d.requests[1]),
        "2 adds found the object already there: sent as updates of what differs"
    );
}

#[test]
fn every_kind_of_staged_change_should_count_towards_the_delta_sync() {
    let counters = ImportCounters {
        stage_rename: 1,
        stage_delete: 2,
        stage_delete_add: 1,
        ..Default::default()
    };
    let run = run(
        1,
        "hr",
        "delta-import",
        vec![step(
            StepType::DeltaImport,
            RunStatus::Success,
            StepCounters::Import(counters),
        )],
    );
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert_eq!(
        because(&d.requests[0]),
        "staged 4 changes (1 rename, 2 deletes, 1 delete-add)"
    );
}

#[test]
fn delta_sync_should_queue_export_on_each_target_with_outbound_changes() {
    let flows_only = autosync_model::OutboundCounters {
        export_attribute_flow: 2,
        provisioned_disconnects: 1,
        ..Default::default()
    };
    let nothing = autosync_model::OutboundCounters {
        export_no_flow: 12,
        ..Default::default()
    };
    let run = sync_run(
        3,
        "hr",
        &[
            ("app", provisioned(5)),
            ("ad", flows_only),
            ("ldap", nothing),
        ],
    );
    let d = decide(&run, &steps_of(&run), &view(&["hr", "app", "ad", "ldap"]));
    assert_eq!(
        targets(&d.requests),
        vec![pair("ad", "export"), pair("app", "export")]
    );
    assert_eq!(
        because(&d.requests[0]),
        "outbound changes for `ad` (1 provisioned disconnect, 2 export attribute flows)"
    );
    assert_eq!(
        because(&d.requests[1]),
        "outbound changes for `app` (5 provisioned adds)"
    );
}

#[test]
fn export_should_be_skipped_when_the_targets_connector_space_has_no_pending_export_left() {
    let mut v = view(&["hr", "app", "ad"]);
    set_cs(&mut v, "app", 0, 0, 3);
    set_cs(&mut v, "ad", 0, 4, 0);
    let run = sync_run(3, "hr", &[("app", provisioned(5)), ("ad", provisioned(4))]);
    let d = decide(&run, &steps_of(&run), &v);
    assert_eq!(targets(&d.requests), vec![pair("ad", "export")]);
}

#[test]
fn export_should_be_queued_when_the_targets_connector_space_is_unknown() {
    let run = sync_run(3, "hr", &[("app", provisioned(1))]);
    let d = decide(&run, &steps_of(&run), &view(&["hr", "app"]));
    assert_eq!(targets(&d.requests), vec![pair("app", "export")]);
}

#[test]
fn export_that_sent_changes_should_queue_a_confirming_import_on_that_ma() {
    let run = export_run(9, "app", RunStatus::Success, 5, 0);
    let d = decide(&run, &steps_of(&run), &view(&["app"]));
    assert_eq!(targets(&d.requests), vec![pair("app", "delta-import")]);
    assert_eq!(
        d.requests[0].reason,
        RunReason::FollowUp {
            run_id: 9,
            because: "export sent 5 changes".into(),
            confirming: true,
        }
    );
}

#[test]
fn completed_export_errors_export_should_still_queue_its_confirming_import() {
    let failed_only = export_run(9, "app", RunStatus::CompletedExportErrors, 0, 2);
    let d = decide(&failed_only, &steps_of(&failed_only), &view(&["app"]));
    assert_eq!(targets(&d.requests), vec![pair("app", "delta-import")]);
    assert_eq!(because(&d.requests[0]), "export failed on 2 objects");

    let mixed = export_run(10, "app", RunStatus::CompletedExportErrors, 1, 1);
    let d = decide(&mixed, &steps_of(&mixed), &view(&["app"]));
    assert_eq!(
        because(&d.requests[0]),
        "export sent 1 change and failed on 1 object"
    );
}

#[test]
fn export_that_sent_nothing_should_queue_nothing() {
    let run = export_run(9, "app", RunStatus::CompletedNoObjects, 0, 0);
    let d = decide(&run, &steps_of(&run), &view(&["app"]));
    assert!(d.requests.is_empty());
}

#[test]
fn every_kind_of_export_activity_should_count_towards_the_confirming_import() {
    let counters = ExportCounters {
        adds: 1,
        renames: 1,
        deletes: 1,
        delete_adds: 1,
        ..Default::default()
    };
    let run = run(
        1,
        "app",
        "export",
        vec![step(
            StepType::Export,
            RunStatus::Success,
            StepCounters::Export(counters),
        )],
    );
    let d = decide(&run, &steps_of(&run), &view(&["app"]));
    assert_eq!(because(&d.requests[0]), "export sent 4 changes");
}

#[test]
fn the_references_an_export_made_ready_should_say_what_it_did_to_their_objects() {
    let reason = |counters: ExportCounters| {
        let run = run(
            1,
            "app",
            "export",
            vec![step(
                StepType::Export,
                RunStatus::Success,
                StepCounters::Export(ExportCounters {
                    references_ready: 2,
                    ..counters
                }),
            )],
        );
        let d = decide(&run, &steps_of(&run), &view(&["app"]));
        let sync = d
            .requests
            .iter()
            .find(|r| r.profile == "delta-sync")
            .expect("a delta sync");
        because(sync)
    };
    let c = |adds, renames, deletes, updates| ExportCounters {
        adds,
        renames,
        deletes,
        updates,
        ..Default::default()
    };
    assert_eq!(
        reason(c(1, 0, 0, 0)),
        "2 references waited for objects this export added"
    );
    assert_eq!(
        reason(c(0, 1, 0, 0)),
        "2 references waited for objects this export renamed"
    );
    assert_eq!(
        reason(c(1, 1, 0, 0)),
        "2 references waited for objects this export added or renamed"
    );
    assert_eq!(
        reason(c(0, 0, 0, 1)),
        "2 references waited for objects this export sent"
    );
    assert_eq!(
        reason(c(0, 0, 1, 0)),
        "2 references to objects this export deleted"
    );
    assert_eq!(
        reason(c(0, 1, 1, 0)),
        "2 references to objects this export renamed or deleted"
    );
}

#[test]
fn references_an_export_held_while_it_added_should_ask_for_another_export() {
    let export = |adds, references_held| {
        let run = run(
            1,
            "app",
            "export",
            vec![step(
                StepType::Export,
                RunStatus::Success,
                StepCounters::Export(ExportCounters {
                    adds,
                    references_held,
                    ..Default::default()
                }),
            )],
        );
        decide(&run, &steps_of(&run), &view(&["app"]))
    };
    let d = export(9, 1);
    let again = d
        .requests
        .iter()
        .find(|r| r.ma == "app" && r.profile == "export")
        .expect("another export");
    assert_eq!(
        because(again),
        "1 reference held back until the objects this export added or renamed were there"
    );
    // Held for an add that failed again, nothing added: the chain ends.
    let d = export(0, 1);
    assert!(
        !d.requests.iter().any(|r| r.profile == "export"),
        "{:?}",
        d.requests
    );
}

#[test]
fn confirming_import_that_staged_changes_should_go_back_to_delta_sync_and_extend_the_chain() {
    let mut v = view(&["app"]);
    v.mas.get_mut("app").expect("app").chain = vec![ChainLink::of(&import_run(1, "hr", 1, 0))];
    let confirm = import_run(10, "app", 0, 1);
    let d = decide(&confirm, &steps_of(&confirm), &v);
    assert_eq!(targets(&d.requests), vec![pair("app", "delta-sync")]);
    let chain: Vec<i64> = d.requests[0].chain.iter().map(|l| l.run_id).collect();
    assert_eq!(
        chain,
        vec![1, 10],
        "the follow-up carries its causes, root first"
    );
}

#[test]
fn follow_ups_should_be_decided_for_a_stopped_run() {
    let run = run(
        4,
        "hr",
        "delta-import",
        vec![step(
            StepType::DeltaImport,
            RunStatus::StoppedConnectivity,
            imported(3, 0),
        )],
    );
    assert!(run.status.is_stopped());
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert_eq!(targets(&d.requests), vec![pair("hr", "delta-sync")]);
}

#[test]
fn follow_ups_of_every_stopped_status_should_be_decided() {
    for status in [
        RunStatus::StoppedServerDown,
        RunStatus::StoppedDeadlocked,
        RunStatus::StoppedExtensionDllException,
        RunStatus::StoppedUserRequested,
        RunStatus::StoppedDeletionThresholdExceeded,
        RunStatus::StoppedServer,
        RunStatus::StoppedError,
    ] {
        let run = export_run(4, "app", status, 2, 0);
        let d = decide(&run, &steps_of(&run), &view(&["app"]));
        assert_eq!(
            targets(&d.requests),
            vec![pair("app", "delta-import")],
            "{status}"
        );
    }
}

#[test]
fn delta_sync_should_be_skipped_when_the_profile_already_ends_with_a_delta_sync() {
    let run = run(
        5,
        "hr",
        "import-sync",
        vec![
            step(StepType::DeltaImport, RunStatus::Success, imported(3, 0)),
            step(StepType::DeltaSync, RunStatus::Success, synced(&[])),
        ],
    );
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert!(d.requests.is_empty(), "{:?}", d.requests);
}

#[test]
fn a_sync_step_that_stopped_should_not_count_as_the_delta_sync_of_the_import_before_it() {
    let run = run(
        5,
        "hr",
        "import-sync",
        vec![
            step(StepType::DeltaImport, RunStatus::Success, imported(3, 0)),
            step(
                StepType::DeltaSync,
                RunStatus::StoppedServerDown,
                synced(&[]),
            ),
        ],
    );
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert_eq!(targets(&d.requests), vec![pair("hr", "delta-sync")]);
}

#[test]
fn a_sync_step_the_run_never_reached_should_not_count_as_the_delta_sync() {
    // The profile has a sync step, but the run stopped in its import.
    let run = run(
        5,
        "hr",
        "import-sync",
        vec![step(
            StepType::DeltaImport,
            RunStatus::StoppedConnectivity,
            imported(3, 0),
        )],
    );
    let d = decide(
        &run,
        &[StepType::DeltaImport, StepType::DeltaSync],
        &view(&["hr"]),
    );
    assert_eq!(targets(&d.requests), vec![pair("hr", "delta-sync")]);
}

#[test]
fn an_import_after_the_profiles_sync_step_should_still_need_a_delta_sync() {
    let run = run(
        5,
        "hr",
        "weird",
        vec![
            step(StepType::DeltaImport, RunStatus::Success, imported(1, 0)),
            step(StepType::DeltaSync, RunStatus::Success, synced(&[])),
            step(StepType::DeltaImport, RunStatus::Success, imported(0, 2)),
        ],
    );
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert_eq!(targets(&d.requests), vec![pair("hr", "delta-sync")]);
    assert_eq!(because(&d.requests[0]), "staged 2 changes (2 updates)");
}

#[test]
fn export_on_the_same_ma_should_be_skipped_when_a_later_export_step_of_the_profile_ran() {
    let run = run(
        6,
        "ad",
        "sync-export",
        vec![
            step(
                StepType::DeltaSync,
                RunStatus::Success,
                synced(&[("ad", provisioned(2)), ("app", provisioned(1))]),
            ),
            step(StepType::Export, RunStatus::Success, exported(0, 0)),
        ],
    );
    let d = decide(&run, &steps_of(&run), &view(&["ad", "app"]));
    assert_eq!(targets(&d.requests), vec![pair("app", "export")]);
}

#[test]
fn confirming_import_should_be_skipped_when_the_profile_imports_after_its_export() {
    let run = run(
        6,
        "app",
        "export-confirm",
        vec![
            step(StepType::Export, RunStatus::Success, exported(3, 0)),
            step(StepType::DeltaImport, RunStatus::Success, imported(0, 0)),
        ],
    );
    let d = decide(&run, &steps_of(&run), &view(&["app"]));
    assert!(d.requests.is_empty(), "{:?}", d.requests);
}

fn switched_off(v: &mut autosync_controller::ControllerView, ma: &str, kind: FollowUpKind) {
    let f = &mut v.mas.get_mut(ma).expect("ma").follow_ups;
    match kind {
        FollowUpKind::DeltaSync => f.delta_sync = false,
        FollowUpKind::Export => f.export = false,
        FollowUpKind::ConfirmingImport => f.confirming_import = false,
    }
}

#[test]
fn delta_sync_should_not_be_queued_when_switched_off_for_the_ma() {
    let mut v = view(&["hr"]);
    switched_off(&mut v, "hr", FollowUpKind::DeltaSync);
    let run = import_run(1, "hr", 1, 0);
    let d = decide(&run, &steps_of(&run), &v);
    assert!(d.requests.is_empty());
    assert_eq!(
        d.reports,
        vec![Report::SwitchedOff {
            ma: "hr".into(),
            follow_up: FollowUpKind::DeltaSync,
            because: "staged 1 change (1 add)".into()
        }]
    );
}

#[test]
fn export_should_not_be_queued_on_an_ma_that_switched_it_off_while_other_targets_still_get_theirs()
{
    let mut v = view(&["hr", "app", "ad"]);
    switched_off(&mut v, "app", FollowUpKind::Export);
    let run = sync_run(2, "hr", &[("app", provisioned(1)), ("ad", provisioned(1))]);
    let d = decide(&run, &steps_of(&run), &v);
    assert_eq!(targets(&d.requests), vec![pair("ad", "export")]);
    assert!(
        matches!(&d.reports[..], [Report::SwitchedOff { ma, follow_up: FollowUpKind::Export, .. }] if ma == "app")
    );
    assert_eq!(
        d.reports[0].to_string(),
        "management agent `app`: export needed (outbound changes for `app` (1 provisioned add)) but switched off"
    );
}

#[test]
fn confirming_import_should_not_be_queued_when_switched_off_for_the_ma() {
    let mut v = view(&["app"]);
    switched_off(&mut v, "app", FollowUpKind::ConfirmingImport);
    let run = export_run(3, "app", RunStatus::Success, 1, 0);
    let d = decide(&run, &steps_of(&run), &v);
    assert!(d.requests.is_empty());
    assert!(matches!(
        &d.reports[..],
        [Report::SwitchedOff {
            follow_up: FollowUpKind::ConfirmingImport,
            ..
        }]
    ));
}

#[test]
fn full_import_should_be_used_for_confirmation_when_the_ma_has_no_delta_import() {
    let app = MaInfo {
        name: "app".into(),
        profiles: BTreeMap::from([
            ("full".into(), vec![StepType::FullImport]),
            ("sync".into(), vec![StepType::DeltaSync]),
            ("push".into(), vec![StepType::Export]),
        ]),
    };
    let mut v = view(&[]);
    v.mas.insert(
        "app".into(),
        autosync_controller::MaView::new(resolve_profiles(&app, &ProfileOverrides::default())),
    );
    let run = run(
        3,
        "app",
        "push",
        vec![step(StepType::Export, RunStatus::Success, exported(1, 0))],
    );
    let d = decide(&run, &steps_of(&run), &v);
    assert_eq!(targets(&d.requests), vec![pair("app", "full")]);
}

#[test]
fn outbound_changes_for_an_unknown_ma_should_be_reported() {
    let run = sync_run(2, "hr", &[("gone", provisioned(1))]);
    let d = decide(&run, &steps_of(&run), &view(&["hr"]));
    assert!(d.requests.is_empty());
    assert!(matches!(&d.reports[..], [Report::UnknownMa { ma, .. }] if ma == "gone"));
}

#[test]
fn a_follow_up_without_a_profile_should_be_reported_with_the_profile_error() {
    let app = MaInfo {
        name: "app".into(),
        profiles: BTreeMap::from([("delta-import".into(), vec![StepType::DeltaImport])]),
    };
    let mut v = view(&["hr"]);
    v.mas.insert(
        "app".into(),
        autosync_controller::MaView::new(resolve_profiles(&app, &ProfileOverrides::default())),
    );
    let run = sync_run(2, "hr", &[("app", provisioned(1))]);
    let d = decide(&run, &steps_of(&run), &v);
    assert!(d.requests.is_empty());
    assert_eq!(
        d.reports[0].to_string(),
        "management agent `app` has no run profile for the export: wanted a profile whose only step is export \
         (profiles: `delta-import`); name one in the configuration"
    );
}

fn chain_of(len: usize) -> Vec<ChainLink> {
    (0..len)
        .map(|i| ChainLink {
            run_id: i as i64 + 100,
            ma: if i % 2 == 0 {
                "ad".into()
            } else {
                "app".into()
            },
            profile: "delta-sync".into(),
        })
        .collect()
}

#[test]
fn follow_ups_past_the_oscillation_limit_should_be_reported_instead_of_requested() {
    let mut v = view(&["app"]);
    v.oscillation_limit = 4;
    v.mas.get_mut("app").expect("app").chain = chain_of(4);
    let run = import_run(200, "app", 0, 1);
    let d = decide(&run, &steps_of(&run), &v);
    assert!(d.requests.is_empty());
    match &d.reports[..] {
        [Report::Oscillation { ma, chain }] => {
            assert_eq!(ma, "app");
            assert_eq!(chain.len(), 5);
            assert_eq!(chain.last().map(|l| l.run_id), Some(200));
        }
        other => panic!("expected one oscillation report, got {other:?}"),
    }
    assert!(
        d.reports[0]
            .to_string()
            .contains("did not settle after 5 runs")
    );
}

#[test]
fn follow_ups_at_the_oscillation_limit_should_still_be_requested() {
    let mut v = view(&["app"]);
    v.oscillation_limit = 4;
    v.mas.get_mut("app").expect("app").chain = chain_of(3);
    let run = import_run(200, "app", 0, 1);
    let d = decide(&run, &steps_of(&run), &v);
    assert_eq!(d.requests.len(), 1);
    assert_eq!(d.requests[0].chain.len(), 4);
}

#[test]
fn a_run_that_needs_nothing_should_not_be_reported_as_oscillating_past_the_limit() {
    let mut v = view(&["app"]);
    v.oscillation_limit = 2;
    v.mas.get_mut("app").expect("app").chain = chain_of(10);
    let run = import_run(200, "app", 0, 0);
    let d = decide(&run, &steps_of(&run), &v);
    assert_eq!(d, Default::default());
}
