use crate::peers::t;
use autosync_notify::{Decision, EventKind, SuppressionKey, SuppressionState};
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

fn key(ma: &str, profile: &str) -> SuppressionKey {
    SuppressionKey::new(EventKind::RunFailed, ma, profile)
}

fn sent(d: &Decision) -> bool {
    matches!(d, Decision::Send { .. })
}

#[test]
fn repeats_should_be_suppressed_and_a_reminder_sent_after_the_period() {
    let mut s = SuppressionState::new();
    let k = key("hr", "Delta Import");
    assert!(sent(&s.observe(
        &k,
        "stopped-connectivity|",
        t(8, 0),
        4 * HOUR
    )));
    assert_eq!(
        s.observe(&k, "stopped-connectivity|", t(8, 15), 4 * HOUR),
        Decision::Suppress {
            last_sent: t(8, 0),
            suppressed: 1
        }
    );
    assert!(!sent(&s.observe(
        &k,
        "stopped-connectivity|",
        t(11, 59),
        4 * HOUR
    )));
    assert_eq!(
        s.observe(&k, "stopped-connectivity|", t(12, 0), 4 * HOUR),
        Decision::Send {
            reminder: true,
            suppressed: 2,
            first_seen: t(8, 0)
        }
    );
    assert!(!sent(&s.observe(
        &k,
        "stopped-connectivity|",
        t(12, 1),
        4 * HOUR
    )));
}

#[test]
fn a_different_failure_or_another_profile_should_be_notified_at_once() {
    let mut s = SuppressionState::new();
    let k = key("hr", "Delta Import");
    assert!(sent(&s.observe(
        &k,
        "completed-import-errors|duplicate-anchor",
        t(8, 0),
        HOUR
    )));
    assert!(sent(&s.observe(
        &k,
        "completed-import-errors|bad-value",
        t(8, 1),
        HOUR
    )));
    assert!(sent(&s.observe(&k, "stopped-connectivity|", t(8, 2), HOUR)));
    assert!(sent(&s.observe(
        &key("hr", "Full Import"),
        "stopped-connectivity|",
        t(8, 3),
        HOUR
    )));
    assert!(sent(&s.observe(
        &key("ldap", "Delta Import"),
        "stopped-connectivity|",
        t(8, 4),
        HOUR
    )));
    assert!(!sent(&s.observe(
        &k,
        "stopped-connectivity|",
        t(8, 5),
        HOUR
    )));
    let e = s.get(&k).unwrap();
    assert_eq!(e.failing_since, t(8, 0));
    assert_eq!(e.first_seen, t(8, 2));
    assert_eq!(e.occurrences, 4);
}

#[test]
fn a_success_should_reset_so_the_same_error_is_notified_again() {
    // The original never re-notified a repeated error after a recovery.
    let mut s = SuppressionState::new();
    let k = key("hr", "Delta Import");
    assert!(sent(&s.observe(
        &k,
        "stopped-server-down|",
        t(8, 0),
        24 * HOUR
    )));
    assert!(!sent(&s.observe(
        &k,
        "stopped-server-down|",
        t(8, 10),
        24 * HOUR
    )));
    let cleared = s.clear_run("hr", "Delta Import");
    assert_eq!(cleared.len(), 1);
    assert!(s.is_empty());
    assert!(sent(&s.observe(
        &k,
        "stopped-server-down|",
        t(8, 20),
        24 * HOUR
    )));
}

#[test]
fn an_undelivered_notice_should_be_sent_again_on_the_next_repeat() {
    let mut s = SuppressionState::new();
    let k = key("hr", "Delta Import");
    assert!(sent(&s.observe(&k, "x|", t(8, 0), HOUR)));
    s.undelivered(&k);
    assert!(matches!(
        s.observe(&k, "x|", t(8, 1), HOUR),
        Decision::Send {
            reminder: false,
            ..
        }
    ));
    assert!(!sent(&s.observe(&k, "x|", t(8, 2), HOUR)));
}

#[test]
fn the_state_should_round_trip_through_serde() {
    let mut s = SuppressionState::new();
    s.observe(&key("hr", "Delta Import"), "a|b", t(8, 0), HOUR);
    s.observe(&key("hr", "Delta Import"), "a|b", t(8, 5), HOUR);
    s.observe(
        &SuppressionKey::new(EventKind::TriggerError, "ldap", "nightly"),
        "cron failed",
        t(8, 6),
        HOUR,
    );
    let json = serde_json::to_string(&s).unwrap();
    let back: SuppressionState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["entries"][0]["key"]["kind"], "run-failed");
    assert_eq!(value["entries"][0]["entry"]["suppressed"], 1);
}

#[derive(Clone, Debug)]
enum Op {
    /// A failure of key `k` with fingerprint `f`, `minutes` after the last op.
    Fail { k: usize, f: usize, minutes: i64 },
    /// A success of key `k`.
    Success { k: usize, minutes: i64 },
    /// The last send of key `k` failed on every channel.
    Undelivered { k: usize },
    /// Persist and restore.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..2usize, 0..200i64).prop_map(|(k, f, minutes)| Op::Fail { k, f, minutes }),
        2 => (0..3usize, 0..200i64).prop_map(|(k, minutes)| Op::Success { k, minutes }),
        1 => (0..3usize).prop_map(|k| Op::Undelivered { k }),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    /// Over any sequence of failures, successes, failed deliveries and
    /// restarts (time moving forward):
    /// - the first failure after a start or a success is always sent;
    /// - a new fingerprint is always sent;
    /// - a repeat is sent exactly when the last delivered notice is at
    ///   least `reminder_after` old (or the last one was not delivered);
    /// - notices of a key never come closer than `reminder_after` for one
    ///   fingerprint unless a delivery failed in between.
    #[test]
    fn suppression_should_follow_its_rules_over_any_sequence(
        ops in proptest::collection::vec(op(), 1..80),
        reminder_minutes in 1..300u64,
    ) {
        let reminder = Duration::from_secs(reminder_minutes * 60);
        let keys = [key("hr", "DI"), key("hr", "FI"), key("ldap", "DI")];
        let mut s = SuppressionState::new();
        let mut now: DateTime<Utc> = t(0, 0);
        // Reference model: per key, the fingerprint and the last delivered send.
        let mut model: Vec<Option<(usize, Option<DateTime<Utc>>)>> = vec![None; 3];
        for op in ops {
            match op {
                Op::Fail { k, f, minutes } => {
                    now += TimeDelta::minutes(minutes);
                    let d = s.observe(&keys[k], &format!("fp{f}"), now, reminder);
                    let expected = match model[k] {
                        None => true,
                        Some((mf, _)) if mf != f => true,
                        Some((_, None)) => true,
                        Some((_, Some(last))) => now - last >= TimeDelta::from_std(reminder).unwrap(),
                    };
                    prop_assert_eq!(sent(&d), expected, "{:?} at {}", d, now);
                    if let Decision::Send { reminder: is_reminder, .. } = d {
                        let was_repeat = matches!(model[k], Some((mf, Some(_))) if mf == f);
                        prop_assert_eq!(is_reminder, was_repeat);
                        model[k] = Some((f, Some(now)));
                    }
                }
                Op::Success { k, minutes } => {
                    now += TimeDelta::minutes(minutes);
                    let cleared = s.clear_run(&keys[k].ma, &keys[k].scope);
                    prop_assert_eq!(cleared.is_empty(), model[k].is_none());
                    model[k] = None;
                }
                Op::Undelivered { k } => {
                    s.undelivered(&keys[k]);
                    if let Some((f, _)) = model[k] {
                        model[k] = Some((f, None));
                    }
                }
                Op::Restart => {
                    let json = serde_json::to_string(&s).unwrap();
                    let back: SuppressionState = serde_json::from_str(&json).unwrap();
                    prop_assert_eq!(&back, &s);
                    s = back;
                }
            }
        }
    }
}
