//! The per-MA queues of "Queues and concurrency" (autosync.md).

use crate::support::at;
use autosync_controller::{ChainLink, MaQueue, Placement, PushOutcome, Queues, Request, RequestId};
use autosync_model::RunReason;

fn follow_up(ma: &str, profile: &str) -> Request {
    Request {
        ma: ma.into(),
        profile: profile.into(),
        exclusive: false,
        run_immediate: false,
        reason: RunReason::FollowUp {
            run_id: 1,
            because: "staged 1 change (1 add)".into(),
            confirming: false,
        },
        chain: Vec::new(),
    }
}

fn profiles(q: &MaQueue) -> Vec<&str> {
    q.iter().map(|r| r.profile.as_str()).collect()
}

fn queue_of(q: &Queues, ma: &str) -> Vec<String> {
    q.get(ma)
        .map(|q| profiles(q).into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn trigger_requests_should_go_to_the_back_of_the_queue() {
    let mut q = Queues::new();
    q.push(
        Request::trigger("hr", "delta-import", "every 15 min"),
        at(0),
    );
    let outcome = q.push(Request::trigger("hr", "full-import", "nightly"), at(1));
    assert!(matches!(
        outcome,
        PushOutcome::Queued {
            placement: Placement::Back,
            ..
        }
    ));
    assert_eq!(queue_of(&q, "hr"), ["delta-import", "full-import"]);
}

#[test]
fn follow_ups_should_go_to_the_front_of_the_queue() {
    let mut q = Queues::new();
    q.push(
        Request::trigger("hr", "delta-import", "every 15 min"),
        at(0),
    );
    let outcome = q.push(follow_up("hr", "delta-sync"), at(1));
    assert!(matches!(
        outcome,
        PushOutcome::Queued {
            placement: Placement::Front,
            ..
        }
    ));
    assert_eq!(queue_of(&q, "hr"), ["delta-sync", "delta-import"]);
}

#[test]
fn run_immediate_trigger_requests_should_go_to_the_front() {
    let mut q = Queues::new();
    q.push(
        Request::trigger("hr", "delta-import", "every 15 min"),
        at(0),
    );
    q.push(
        Request::trigger("hr", "full-import", "operator").run_immediate(),
        at(1),
    );
    assert_eq!(queue_of(&q, "hr"), ["full-import", "delta-import"]);
}

#[test]
fn an_equal_request_should_not_be_queued_twice() {
    let mut q = Queues::new();
    let first = q.push(Request::trigger("hr", "delta-import", "a"), at(0));
    let second = q.push(Request::trigger("hr", "delta-import", "b"), at(1));
    assert_eq!(
        second,
        PushOutcome::Merged {
            into: first.id(),
            moved_to_front: false
        }
    );
    let queued = q.peek("hr").expect("queued");
    assert_eq!(
        (q.total(), queued.merged, queued.enqueued_at),
        (1, 1, at(0))
    );
    assert_eq!(
        queued.reason,
        RunReason::Trigger {
            trigger: "a".into()
        },
        "the first request's reason stays"
    );
}

#[test]
fn the_same_profile_with_another_exclusive_flag_should_be_a_different_request() {
    let mut q = Queues::new();
    q.push(Request::trigger("hr", "full-import", "a"), at(0));
    let outcome = q.push(
        Request::trigger("hr", "full-import", "a").exclusive(),
        at(1),
    );
    assert!(matches!(outcome, PushOutcome::Queued { .. }));
    assert_eq!(q.total(), 2);
}

#[test]
fn a_run_immediate_duplicate_should_move_the_queued_request_to_the_front() {
    let mut q = Queues::new();
    q.push(Request::trigger("hr", "delta-import", "a"), at(0));
    let queued = q.push(Request::trigger("hr", "full-import", "a"), at(1));
    let outcome = q.push(
        Request::trigger("hr", "full-import", "operator").run_immediate(),
        at(2),
    );
    assert_eq!(
        outcome,
        PushOutcome::Merged {
            into: queued.id(),
            moved_to_front: true
        }
    );
    assert_eq!(queue_of(&q, "hr"), ["full-import", "delta-import"]);
    assert!(q.peek("hr").expect("head").run_immediate);
}

#[test]
fn a_follow_up_equal_to_a_queued_trigger_request_should_move_it_to_the_front() {
    let mut q = Queues::new();
    q.push(Request::trigger("app", "delta-import", "a"), at(0));
    q.push(Request::trigger("app", "export", "nightly"), at(1));
    let outcome = q.push(follow_up("app", "export"), at(2));
    assert!(matches!(
        outcome,
        PushOutcome::Merged {
            moved_to_front: true,
            ..
        }
    ));
    assert_eq!(queue_of(&q, "app"), ["export", "delta-import"]);
}

#[test]
fn a_merged_request_should_keep_the_longer_causal_chain() {
    let mut q = Queues::new();
    q.push(follow_up("app", "delta-sync"), at(0));
    let mut longer = follow_up("app", "delta-sync");
    longer.chain = vec![
        ChainLink {
            run_id: 1,
            ma: "hr".into(),
            profile: "delta-import".into(),
        },
        ChainLink {
            run_id: 2,
            ma: "app".into(),
            profile: "delta-import".into(),
        },
    ];
    q.push(longer, at(1));
    assert_eq!(q.peek("app").expect("head").chain.len(), 2);
}

#[test]
fn push_all_should_keep_a_decisions_order_at_the_front_of_one_queue() {
    let mut q = Queues::new();
    q.push(Request::trigger("app", "delta-import", "a"), at(0));
    let outcomes = q.push_all(
        vec![
            follow_up("app", "delta-sync"),
            follow_up("app", "export"),
            Request::trigger("app", "full-import", "b"),
        ],
        at(1),
    );
    assert_eq!(
        queue_of(&q, "app"),
        ["delta-sync", "export", "delta-import", "full-import"]
    );
    let ids: Vec<RequestId> = outcomes.iter().map(PushOutcome::id).collect();
    let queued: Vec<RequestId> = q.get("app").expect("queue").iter().map(|r| r.id).collect();
    assert_eq!((ids[0], ids[1], ids[2]), (queued[0], queued[1], queued[3]));
}

#[test]
fn ids_should_be_unique_across_queues() {
    let mut q = Queues::new();
    let a = q
        .push(Request::trigger("hr", "delta-import", "a"), at(0))
        .id();
    let b = q
        .push(Request::trigger("ad", "delta-import", "a"), at(0))
        .id();
    assert_ne!(a, b);
}

#[test]
fn pop_peek_clear_and_remove_should_work_front_first() {
    let mut q = Queues::new();
    let a = q
        .push(Request::trigger("hr", "delta-import", "a"), at(0))
        .id();
    let b = q
        .push(Request::trigger("hr", "full-import", "a"), at(1))
        .id();
    let c = q.push(Request::trigger("hr", "export", "a"), at(2)).id();
    assert_eq!(q.peek("hr").map(|r| r.id), Some(a));
    assert_eq!(q.get_mut("hr").remove(b).map(|r| r.id), Some(b));
    assert_eq!(q.pop("hr").map(|r| r.id), Some(a));
    assert_eq!(q.get("hr").map(MaQueue::len), Some(1));
    let cleared: Vec<RequestId> = q.get_mut("hr").clear().iter().map(|r| r.id).collect();
    assert_eq!(cleared, vec![c]);
    assert!(q.get("hr").is_some_and(MaQueue::is_empty));
    assert_eq!(q.pop("hr"), None);
}

#[test]
fn queues_should_survive_a_round_trip_through_json_and_keep_handing_out_new_ids() {
    let mut q = Queues::new();
    let a = q
        .push(
            Request::trigger("hr", "delta-import", "a").exclusive(),
            at(0),
        )
        .id();
    q.push(follow_up("ad", "delta-sync"), at(1));
    let json = serde_json::to_string(&q).expect("serialize");
    let mut back: Queues = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, q);
    let next = back
        .push(Request::trigger("hr", "full-import", "a"), at(2))
        .id();
    assert!(
        next > a && next.0 == 3,
        "ids continue after a restart: {next}"
    );
}

#[test]
fn an_ordinary_import_merged_into_a_queued_confirming_one_should_make_it_read_everything() {
    let confirming = || Request {
        reason: RunReason::FollowUp {
            run_id: 4,
            because: "export sent 1 change".into(),
            confirming: true,
        },
        ..follow_up("app", "delta-import")
    };
    // A confirming import, then a trigger's import of the same profile.
    let mut q = Queues::new();
    q.push(confirming(), at(0));
    q.push(
        Request::trigger("app", "delta-import", "every 5 min"),
        at(1),
    );
    let queued: Vec<&RunReason> = q.get("app").unwrap().iter().map(|r| &r.reason).collect();
    assert_eq!(queued.len(), 1);
    assert!(!queued[0].confirming(), "{:?}", queued[0]);

    // The other way round: the ordinary import stays ordinary.
    let mut q = Queues::new();
    q.push(
        Request::trigger("app", "delta-import", "every 5 min"),
        at(0),
    );
    q.push(confirming(), at(1));
    let queued: Vec<&RunReason> = q.get("app").unwrap().iter().map(|r| &r.reason).collect();
    assert_eq!(queued.len(), 1);
    assert!(!queued[0].confirming(), "{:?}", queued[0]);

    // Two confirming imports stay one confirming import.
    let mut q = Queues::new();
    q.push(confirming(), at(0));
    q.push(confirming(), at(1));
    assert!(q.get("app").unwrap().iter().all(|r| r.reason.confirming()));
}
