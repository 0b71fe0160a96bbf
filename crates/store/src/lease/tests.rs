//! Two nodes sharing a store: two handles on one SQLite file, each with
//! its own instance id (same host, same process). A live lease is not
//! taken; one whose heartbeat lapsed is; one its holder keeps renewing
//! never is; a holder whose lease was taken over is told.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use super::*;
use crate::SqliteStore;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;

const KEY: &str = "lease:hr";

/// A clock both nodes read, moved by the test.
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn clock(&self) -> Clock {
        let secs = Arc::clone(&self.0);
        Arc::new(move || {
            DateTime::from_timestamp(1_750_000_000 + secs.load(Ordering::SeqCst), 0)
                .unwrap_or_default()
        })
    }
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

struct Nodes {
    _dir: tempfile::TempDir,
    a: Leases,
    b: Leases,
}

/// Two nodes on one store file, each with its own handle, on `clock`.
fn nodes(clock: &TestClock, timing: LeaseTiming) -> Nodes {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let node = |instance| {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        Leases::with_clock(store, instance, timing, clock.clock())
    };
    Nodes {
        a: node(Instance::fresh()),
        b: node(Instance::fresh()),
        _dir: dir,
    }
}

fn fields(run: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("run_id".into(), Value::from(run));
    m
}

fn still_held(_: &Claim) -> StoreResult<bool> {
    Ok(true)
}

#[test]
fn a_second_node_should_not_take_a_live_lease() {
    let clock = TestClock::default();
    let n = nodes(&clock, LeaseTiming::default());
    n.a.acquire(KEY, &fields(1), &mut still_held)
        .unwrap()
        .unwrap();
    let held = n.b.acquire(KEY, &fields(2), &mut still_held).unwrap();
    let claim = held.expect_err("b took a's live lease");
    assert_eq!(claim.holder.as_ref().unwrap().instance, n.a.instance().id());
    assert_eq!(claim.value["run_id"], 1);
    assert!(n.b.live_holder(KEY).unwrap().is_some());
    assert!(n.a.live_holder(KEY).unwrap().is_none(), "a's own lease");
    // 59 s later, still within its time to live.
    clock.advance(59);
    assert!(
        n.b.acquire(KEY, &fields(2), &mut still_held)
            .unwrap()
            .is_err()
    );
    // b releasing leaves a's lease alone.
    n.b.release(KEY).unwrap();
    assert_eq!(n.b.read(KEY).unwrap(), Some(claim));
}

#[test]
fn a_second_node_should_take_a_lease_whose_heartbeat_lapsed() {
    let clock = TestClock::default();
    let n = nodes(&clock, LeaseTiming::default());
    n.a.acquire(KEY, &fields(1), &mut still_held)
        .unwrap()
        .unwrap();
    clock.advance(61);
    n.b.acquire(KEY, &fields(2), &mut still_held)
        .unwrap()
        .unwrap();
    let claim = n.a.read(KEY).unwrap().unwrap();
    assert_eq!(claim.holder.unwrap().instance, n.b.instance().id());
    // a is told at its next renewal, and can no longer change it.
    let (tx, rx) = mpsc::channel();
    n.a.on_lost(KEY, Box::new(move || tx.send(()).unwrap()));
    n.a.renew_now().unwrap();
    rx.try_recv().expect("a was not told it lost the lease");
    assert!(n.a.lost(KEY));
    assert!(!n.a.update(KEY, &fields(3)).unwrap());
    n.a.release(KEY).unwrap();
    assert_eq!(n.b.read(KEY).unwrap().unwrap().value["run_id"], 2);
}

#[test]
fn a_second_node_should_never_take_a_lease_its_holder_keeps_renewing() {
    let clock = TestClock::default();
    let n = nodes(&clock, LeaseTiming::default());
    n.a.acquire(KEY, &fields(1), &mut still_held)
        .unwrap()
        .unwrap();
    for _ in 0..10 {
        clock.advance(40);
        n.a.renew_now().unwrap();
        clock.advance(40);
        // 80 s after the take, 40 s after the last heartbeat.
        assert!(
            n.b.acquire(KEY, &fields(2), &mut still_held)
                .unwrap()
                .is_err()
        );
    }
    assert!(!n.a.lost(KEY));
    // Its fields survive the heartbeats.
    assert_eq!(n.b.read(KEY).unwrap().unwrap().value["run_id"], 1);
    n.a.release(KEY).unwrap();
    assert_eq!(n.b.read(KEY).unwrap(), None);
    n.b.acquire(KEY, &fields(2), &mut still_held)
        .unwrap()
        .unwrap();
}

#[test]
fn the_keeper_thread_should_renew_a_held_lease_on_its_own() {
    // Real time, short timing: a takes the lease; b sees its heartbeat
    // change several times (each later than the last) and cannot take it.
    let timing = LeaseTiming {
        ttl: Duration::from_secs(30),
        renew_every: Duration::from_millis(20),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let open = || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&path).unwrap()) };
    let a = Leases::new(open(), Instance::fresh(), timing);
    let b = Leases::new(open(), Instance::fresh(), timing);
    a.acquire(KEY, &fields(1), &mut still_held)
        .unwrap()
        .unwrap();
    let beat = |l: &Leases| l.read(KEY).unwrap().unwrap().holder.unwrap().renewed_at;
    let mut seen = vec![beat(&b)];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "no heartbeats: {seen:?}"
        );
        let now = beat(&b);
        if Some(&now) != seen.last() {
            assert!(now > *seen.last().unwrap());
            seen.push(now);
        }
        std::thread::yield_now();
    }
    assert!(
        b.acquire(KEY, &fields(2), &mut still_held)
            .unwrap()
            .is_err()
    );
    // Dropping a's leases stops its keeper, and releases nothing: the lease
    // lapses after its time to live.
    let a_id = a.instance().id().to_owned();
    drop(a);
    let left = b.read(KEY).unwrap().unwrap();
    assert_eq!(left.holder.unwrap().instance, a_id);
}

#[test]
fn a_lease_whose_holder_says_it_no_longer_holds_should_be_taken() {
    let clock = TestClock::default();
    let n = nodes(&clock, LeaseTiming::default());
    n.a.acquire(KEY, &fields(1), &mut still_held)
        .unwrap()
        .unwrap();
    // The caller's own rule (the run named in it has ended, say).
    let mut ended = |c: &Claim| Ok(c.value["run_id"] != 1);
    n.b.acquire(KEY, &fields(2), &mut ended).unwrap().unwrap();
    assert_eq!(n.a.read(KEY).unwrap().unwrap().value["run_id"], 2);
}

#[test]
fn a_lease_of_a_process_that_ended_on_this_host_should_be_taken_at_once() {
    let clock = TestClock::default();
    let n = nodes(&clock, LeaseTiming::default());
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = Instance::local_process(child.id()).unwrap();
    child.wait().unwrap();
    let text =
        serde_json::to_string(&gone.holder((clock.clock())(), Duration::from_secs(60))).unwrap();
    assert!(
        n.a.store()
            .compare_and_set_meta(KEY, None, Some(&text))
            .unwrap()
    );
    n.b.acquire(KEY, &fields(2), &mut still_held)
        .unwrap()
        .unwrap();
    // A lease of the old format (pid and start time only) likewise.
    let old = format!(r#"{{"pid":{},"started":1,"run_id":3}}"#, gone.pid());
    let current = n.a.read(KEY).unwrap().unwrap().text;
    assert!(
        n.a.store()
            .compare_and_set_meta(KEY, Some(&current), Some(&old))
            .unwrap()
    );
    n.a.acquire(KEY, &fields(4), &mut still_held)
        .unwrap()
        .unwrap();
    // Unreadable text is no lease.
    let current = n.a.read(KEY).unwrap().unwrap().text;
    assert!(
        n.a.store()
            .compare_and_set_meta(KEY, Some(&current), Some("junk"))
            .unwrap()
    );
    n.b.acquire(KEY, &fields(5), &mut still_held)
        .unwrap()
        .unwrap();
}

#[test]
fn a_take_should_fail_when_the_lease_changed_since_it_was_read() {
    let clock = TestClock::default();
    let n = nodes(&clock, LeaseTiming::default());
    let seen = n.b.read(KEY).unwrap();
    n.a.acquire(KEY, &fields(1), &mut still_held)
        .unwrap()
        .unwrap();
    // b judged it free before a took it: its take must not overwrite a's.
    assert!(!n.b.take(KEY, seen.as_ref(), &fields(2)).unwrap());
    assert_eq!(n.b.read(KEY).unwrap().unwrap().value["run_id"], 1);
}

/// A backup taken while a service runs (`VACUUM INTO`) holds the service's
/// leases; restored beside the original on the same host, the copy is
/// another file: its leases are free at once, and the original's still
/// held. Two handles on one file (the nodes above) share its identity.
#[test]
fn a_copy_of_the_store_should_not_hold_the_leases_of_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let copy = dir.path().join("restored/copy.db");
    let open = |p: &std::path::Path| -> Arc<dyn Store> { Arc::new(SqliteStore::open(p).unwrap()) };
    let timing = LeaseTiming::default();
    // A live holder: this very process, as the service would be.
    let service = Leases::new(open(&path), Instance::fresh(), timing);
    service
        .acquire(KEY, &fields(1), &mut still_held)
        .unwrap()
        .unwrap();
    std::fs::create_dir(copy.parent().unwrap()).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let restored = Leases::new(open(&copy), Instance::fresh(), timing);
    let claim = restored.read(KEY).unwrap().expect("the copy has no lease");
    assert_eq!(
        claim.holder.as_ref().unwrap().instance,
        service.instance().id()
    );
    assert_eq!(restored.standing(&claim), Standing::Gone(Gone::OtherFile));
    assert!(restored.live_holder(KEY).unwrap().is_none());
    restored
        .acquire(KEY, &fields(2), &mut still_held)
        .unwrap()
        .unwrap();
    // The original is still held, by the service, for another handle.
    let other = Leases::new(open(&path), Instance::fresh(), timing);
    let held = other.acquire(KEY, &fields(3), &mut still_held).unwrap();
    let claim = held.expect_err("a second handle took the original's live lease");
    assert_eq!(
        claim.holder.as_ref().unwrap().instance,
        service.instance().id()
    );
    assert_eq!(other.standing(&claim), Standing::Live);
    assert_eq!(service.read(KEY).unwrap().unwrap().value["run_id"], 1);
}
