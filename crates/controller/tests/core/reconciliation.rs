//! Reconciliation: what connector spaces still hold becomes requests.

use crate::support::*;
use autosync_controller::{ChainLink, FollowUpKind, Report, reconcile};
use autosync_model::RunReason;

#[test]
fn reconcile_should_queue_delta_sync_export_and_confirming_import_for_what_each_connector_space_holds()
 {
    let mut v = view(&["ad", "app", "hr"]);
    set_cs(&mut v, "ad", 3, 0, 0);
    set_cs(&mut v, "app", 0, 1, 2);
    let d = reconcile(&v);
    let got: Vec<(String, String, RunReason)> = d
        .requests
        .iter()
        .map(|r| (r.ma.clone(), r.profile.clone(), r.reason.clone()))
        .collect();
    let want = |ma: &str, profile: &str, because: &str| {
        (
            ma.to_owned(),
            profile.to_owned(),
            RunReason::Reconciliation {
                because: because.to_owned(),
            },
        )
    };
    assert_eq!(
        got,
        vec![
            want(
                "ad",
                "delta-sync",
                "3 pending imports in the connector space"
            ),
            want("app", "export", "1 pending export in the connector space"),
            want(
                "app",
                "delta-import",
                "2 unconfirmed exports in the connector space"
            ),
        ]
    );
    assert!(d.reports.is_empty());
}

/// An export run outside the controller (`autosync run-profile app
/// export`) sent the adds or deletes some references wait for: the delta
/// sync it would have asked for is asked at start-up.
#[test]
fn reconcile_should_queue_a_delta_sync_for_references_ready_to_send() {
    let mut v = view(&["app", "hr"]);
    set_cs(&mut v, "app", 0, 0, 0);
    set_cs(&mut v, "hr", 0, 0, 0);
    if let Some(cs) = v.mas.get_mut("app").and_then(|m| m.cs.as_mut()) {
        cs.references_ready = 2;
    }
    let d = reconcile(&v);
    let got: Vec<(String, String, RunReason)> = d
        .requests
        .iter()
        .map(|r| (r.ma.clone(), r.profile.clone(), r.reason.clone()))
        .collect();
    assert_eq!(
        got,
        vec![(
            "app".to_owned(),
            "delta-sync".to_owned(),
            RunReason::Reconciliation {
                because: "2 objects whose references are ready to send in the connector space"
                    .to_owned()
            }
        )]
    );
}

#[test]
fn reconcile_should_ask_nothing_of_quiescent_or_unknown_connector_spaces() {
    let mut v = view(&["ad", "app"]);
    set_cs(&mut v, "ad", 0, 0, 0);
    assert_eq!(reconcile(&v), Default::default());
}

#[test]
fn reconcile_should_respect_follow_ups_switched_off() {
    let mut v = view(&["app"]);
    set_cs(&mut v, "app", 0, 4, 0);
    v.mas.get_mut("app").expect("app").follow_ups.export = false;
    let d = reconcile(&v);
    assert!(d.requests.is_empty());
    assert!(matches!(
        &d.reports[..],
        [Report::SwitchedOff {
            follow_up: FollowUpKind::Export,
            ..
        }]
    ));
}

#[test]
fn reconcile_should_continue_the_chain_of_the_mas_last_run() {
    let mut v = view(&["app"]);
    set_cs(&mut v, "app", 1, 0, 0);
    let link = ChainLink {
        run_id: 5,
        ma: "hr".into(),
        profile: "delta-sync".into(),
    };
    v.mas.get_mut("app").expect("app").chain = vec![link.clone()];
    let d = reconcile(&v);
    assert_eq!(d.requests[0].chain, vec![link]);
}

#[test]
fn reconcile_should_report_not_restart_an_ma_whose_chain_was_stopped_at_the_oscillation_limit() {
    let mut v = view(&["app", "ad"]);
    v.oscillation_limit = 3;
    set_cs(&mut v, "app", 1, 0, 0);
    set_cs(&mut v, "ad", 1, 0, 0);
    v.mas.get_mut("app").expect("app").chain = (0..3)
        .map(|i| ChainLink {
            run_id: i,
            ma: "app".into(),
            profile: "delta-sync".into(),
        })
        .collect();
    let d = reconcile(&v);
    assert_eq!(d.requests.len(), 1);
    assert_eq!(d.requests[0].ma, "ad");
    assert!(matches!(&d.reports[..], [Report::Oscillation { ma, .. }] if ma == "app"));
}
