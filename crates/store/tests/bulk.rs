//! Bulk transactions (`Store::write_bulk`): their writes run on a second
//! thread while reads inside the transaction answer from an overlay merged
//! with a reader connection. The same random operations, run in a plain
//! transaction on one store and in a bulk transaction on another, must give
//! the same answer to every read and the same committed data, value rows
//! included (light reads, value reads and changes, lookups by value).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use autosync_model::{Connection, CsObject, MvObject, MvValue, Value, ValueDelta};
use autosync_store::{
    CsFilter, MvQuery, Store, StoreError, StoreErrorKind, StoreResult, StoreTxn, ValueRows,
};
use common::{cs, joined, mv, with_pending_export, with_pending_import};
use proptest::prelude::*;

/// The MAs of the random steps; the last one has no objects when the
/// transaction begins.
const MAS: [&str; 3] = ["hr", "app", "new"];

/// One step of a random transaction; numbers pick among existing objects
/// or anchors by index (modulo), so every generated step applies.
#[derive(Clone, Debug)]
enum Op {
    CsInsert {
        ma: usize,
        anchor: u8,
        mv: Option<usize>,
        pi: bool,
    },
    CsUpdate {
        pick: usize,
        anchor: Option<u8>,
        mv: Option<Option<usize>>,
        pe: bool,
        /// Read light (and write the placeholder back).
        light: bool,
        /// `members` set as [`members`] says.
        members: Option<u8>,
    },
    CsDelete {
        pick: usize,
    },
    MvInsert {
        email: u8,
    },
    MvUpdate {
        pick: usize,
        email: Option<u8>,
        light: bool,
        members: Option<u8>,
    },
    ValuesChange {
        cs: bool,
        pick: usize,
        add: Vec<u8>,
        remove: Vec<u8>,
    },
    ReadLight {
        cs: bool,
        pick: usize,
    },
    ReadValues {
        cs: bool,
        pick: usize,
        probe: Vec<u8>,
    },
    ReadMvFindMember {
        member: u8,
    },
    MvDelete {
        pick: usize,
    },
    ReadCsGet {
        pick: usize,
    },
    ReadCsByAnchor {
        ma: usize,
        anchor: u8,
    },
    ReadCsByAnchors {
        ma: usize,
        anchors: Vec<u8>,
    },
    ReadCsByMv {
        pick: usize,
    },
    ReadMvGet {
        pick: usize,
    },
    ReadMvGetMany {
        picks: Vec<usize>,
    },
    ReadMvFind {
        email: u8,
    },
    ReadMvFindMany {
        emails: Vec<u8>,
    },
    ReadCsPage {
        ma: usize,
        pi: bool,
        /// Start after this object (an index into the known ids; `None`:
        /// from the start).
        after: Option<usize>,
        limit: usize,
    },
    ReadCsCounts {
        ma: usize,
    },
    ReadMvCount,
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0usize..64;
    prop_oneof![
        3 => (0usize..3, 0u8..24, proptest::option::of(0usize..64), any::<bool>())
            .prop_map(|(ma, anchor, mv, pi)| Op::CsInsert { ma, anchor, mv, pi }),
        3 => (n.clone(), proptest::option::of(0u8..24), proptest::option::of(proptest::option::of(0usize..64)), any::<bool>(), any::<bool>(), proptest::option::of(0u8..6))
            .prop_map(|(pick, anchor, mv, pe, light, members)| Op::CsUpdate { pick, anchor, mv, pe, light, members }),
        1 => n.clone().prop_map(|pick| Op::CsDelete { pick }),
        2 => (0u8..12).prop_map(|email| Op::MvInsert { email }),
        2 => (n.clone(), proptest::option::of(0u8..12), any::<bool>(), proptest::option::of(0u8..6))
            .prop_map(|(pick, email, light, members)| Op::MvUpdate { pick, email, light, members }),
        2 => (any::<bool>(), n.clone(), proptest::collection::vec(0u8..8, 0..3), proptest::collection::vec(0u8..8, 0..3))
            .prop_map(|(cs, pick, add, remove)| Op::ValuesChange { cs, pick, add, remove }),
        2 => (any::<bool>(), n.clone()).prop_map(|(cs, pick)| Op::ReadLight { cs, pick }),
        2 => (any::<bool>(), n.clone(), proptest::collection::vec(0u8..8, 0..3))
            .prop_map(|(cs, pick, probe)| Op::ReadValues { cs, pick, probe }),
        2 => (0u8..8).prop_map(|member| Op::ReadMvFindMember { member }),
        1 => n.clone().prop_map(|pick| Op::MvDelete { pick }),
        2 => n.clone().prop_map(|pick| Op::ReadCsGet { pick }),
        2 => (0usize..3, 0u8..24).prop_map(|(ma, anchor)| Op::ReadCsByAnchor { ma, anchor }),
        1 => (0usize..3, proptest::collection::vec(0u8..24, 0..6)).prop_map(|(ma, anchors)| Op::ReadCsByAnchors { ma, anchors }),
        2 => n.clone().prop_map(|pick| Op::ReadCsByMv { pick }),
        1 => n.clone().prop_map(|pick| Op::ReadMvGet { pick }),
        1 => proptest::collection::vec(0usize..64, 0..6).prop_map(|picks| Op::ReadMvGetMany { picks }),
        2 => (0u8..12).prop_map(|email| Op::ReadMvFind { email }),
        1 => proptest::collection::vec(0u8..12, 0..5).prop_map(|emails| Op::ReadMvFindMany { emails }),
        2 => (0usize..3, any::<bool>(), proptest::option::of(0usize..64), 1usize..8)
            .prop_map(|(ma, pi, after, limit)| Op::ReadCsPage { ma, pi, after, limit }),
        1 => (0usize..3).prop_map(|ma| Op::ReadCsCounts { ma }),
        1 => Just(Op::ReadMvCount),
    ]
}

/// Emails `n` and `n + 6` differ only in case: the join index finds both
/// by either.
fn email(n: u8) -> Value {
    if n >= 6 {
        Value::from(format!("P{}@Example.ORG", n - 6).as_str())
    } else {
        Value::from(format!("p{n}@example.org").as_str())
    }
}

/// `members` as an update sets it: `0` absent, `1` a single reference,
/// `2` the placeholder (rows kept), more: references `0..n`.
fn members(n: u8) -> Option<Value> {
    match n {
        0 => None,
        1 => Some(Value::Reference(1)),
        2 => Some(Value::Multi(vec![])),
        n => Some(Value::Multi(
            (0..i64::from(n)).map(Value::Reference).collect(),
        )),
    }
}

fn refs(ns: &[u8]) -> Vec<Value> {
    ns.iter().map(|n| Value::Reference(i64::from(*n))).collect()
}

/// The ids of live objects, as both sides know them (ids agree because
/// both stores hand out the same ids in the same order).
#[derive(Default)]
struct Ids {
    cs: Vec<i64>,
    mv: Vec<i64>,
}

fn pick(ids: &[i64], i: usize) -> Option<i64> {
    (!ids.is_empty()).then(|| ids[i % ids.len()])
}

/// What a read answered, in a form that compares across the two stores.
#[derive(Debug, PartialEq)]
enum Answer {
    Cs(Option<Box<CsObject>>),
    CsList(Vec<CsObject>),
    Mv(Option<MvObject>),
    MvList(Vec<MvObject>),
    Ids(Vec<i64>),
    Pairs(Vec<(usize, i64)>),
    Count(u64),
    Counts(String),
    Write(Result<Option<i64>, StoreErrorKind>),
}

fn sorted_cs(mut v: Vec<CsObject>) -> Vec<CsObject> {
    v.sort_by_key(|o| o.id);
    v
}

fn sorted_mv(mut v: Vec<MvObject>) -> Vec<MvObject> {
    v.sort_by_key(|o| o.id);
    v
}

/// Apply one step to a transaction and say what it answered.
fn apply(t: &mut dyn StoreTxn, op: &Op, ids: &Ids) -> StoreResult<Answer> {
    let kind = |r: StoreResult<Option<i64>>| Answer::Write(r.map_err(|e| e.kind));
    Ok(match op {
        Op::CsInsert { ma, anchor, mv, pi } => {
            let mut o = cs(MAS[*ma], &format!("a{anchor}"));
            if let Some(m) = mv.and_then(|m| pick(&ids.mv, m)) {
                o = joined(o, m);
            }
            if *pi {
                o = with_pending_import(o);
            }
            kind(t.cs_insert(&mut o).map(|()| Some(o.id)))
        }
        Op::CsUpdate {
            pick: p,
            anchor,
            mv,
            pe,
            light,
            members: n,
        } => {
            let Some(id) = pick(&ids.cs, *p) else {
                return Ok(Answer::Write(Ok(None)));
            };
            let read = if *light {
                t.cs_get_light(id)?
            } else {
                t.cs_get(id)?
            };
            let Some(mut o) = read else {
                return Ok(Answer::Write(Ok(None)));
            };
            if let Some(n) = n {
                match members(*n) {
                    Some(v) => o.hologram.insert("members".into(), v),
                    None => o.hologram.remove("members"),
                };
            }
            if let Some(a) = anchor {
                o.anchor = format!("a{a}");
            }
            match mv {
                Some(Some(m)) => {
                    if let Some(m) = pick(&ids.mv, *m) {
                        o.connection = Connection::Connector { mv_id: m };
                    }
                }
                Some(None) => o.connection = Connection::Disconnector,
                None => {}
            }
            o.pending_import = None;
            if *pe {
                o = with_pending_export(o);
            } else {
                o.pending_export = None;
            }
            // An anchor another object holds makes the update fail at
            // commit in both (it is a constraint); keep the steps valid.
            if anchor.is_some()
                && let Some(other) = t.cs_by_anchor(&o.ma, &o.anchor)?
                && other.id != o.id
            {
                return Ok(Answer::Write(Ok(None)));
            }
            kind(t.cs_update(&o).map(|()| None))
        }
        Op::CsDelete { pick: p } => match pick(&ids.cs, *p) {
            Some(id) => kind(t.cs_delete(id).map(|()| None)),
            None => Answer::Write(Ok(None)),
        },
        Op::MvInsert { email: e } => {
            let mut m = mv("person", &[("email", email(*e))]);
            kind(t.mv_insert(&mut m).map(|()| Some(m.id)))
        }
        Op::MvUpdate {
            pick: p,
            email: e,
            light,
            members: n,
        } => {
            let Some(id) = pick(&ids.mv, *p) else {
                return Ok(Answer::Write(Ok(None)));
            };
            let read = if *light {
                t.mv_get_light(id)?
            } else {
                t.mv_get(id)?
            };
            let Some(mut m) = read else {
                return Ok(Answer::Write(Ok(None)));
            };
            if let Some(n) = n {
                match members(*n) {
                    Some(value) => m.attributes.insert(
                        "members".into(),
                        MvValue {
                            value,
                            contributor: "hr".into(),
                        },
                    ),
                    None => m.attributes.remove("members"),
                };
            }
            match e {
                Some(e) => {
                    if let Some(v) = m.attributes.get_mut("email") {
                        v.value = email(*e);
                    }
                }
                None => {
                    m.attributes.remove("email");
                }
            }
            kind(t.mv_update(&m).map(|()| None))
        }
        Op::MvDelete { pick: p } => match pick(&ids.mv, *p) {
            Some(id) => kind(t.mv_delete(id).map(|()| None)),
            None => Answer::Write(Ok(None)),
        },
        Op::ValuesChange {
            cs,
            pick: p,
            add,
            remove,
        } => {
            let delta = ValueDelta {
                add: refs(add),
                remove: refs(remove),
            };
            let list = if *cs { &ids.cs } else { &ids.mv };
            match pick(list, *p) {
                Some(id) if *cs => kind(t.cs_values_change(id, "members", &delta).map(|()| None)),
                Some(id) => kind(t.mv_values_change(id, "members", &delta).map(|()| None)),
                None => Answer::Write(Ok(None)),
            }
        }
        Op::ReadLight { cs: true, pick: p } => Answer::Cs(match pick(&ids.cs, *p) {
            Some(id) => t.cs_get_light(id)?.map(Box::new),
            None => None,
        }),
        Op::ReadLight { cs: false, pick: p } => {
            let wanted: Vec<i64> = pick(&ids.mv, *p)
                .into_iter()
                .chain(pick(&ids.mv, *p + 1))
                .collect();
            Answer::MvList(sorted_mv(t.mv_get_many_light(&wanted)?))
        }
        Op::ReadValues { cs, pick: p, probe } => {
            let list = if *cs { &ids.cs } else { &ids.mv };
            let Some(id) = pick(list, *p) else {
                return Ok(Answer::Count(0));
            };
            let probe = refs(probe);
            Answer::Counts(if *cs {
                format!(
                    "{:?} {:?} {}",
                    t.cs_values(id, "members")?,
                    t.cs_values_present(id, "members", &probe)?,
                    t.cs_values_count(id, "members")?
                )
            } else {
                format!(
                    "{:?} {:?} {}",
                    t.mv_values(id, "members")?,
                    t.mv_values_present(id, "members", &probe)?,
                    t.mv_values_count(id, "members")?
                )
            })
        }
        Op::ReadMvFindMember { member } => {
            Answer::Ids(t.mv_find("person", "members", &Value::Reference(i64::from(*member)))?)
        }
        Op::ReadCsGet { pick: p } => Answer::Cs(match pick(&ids.cs, *p) {
            Some(id) => t.cs_get(id)?.map(Box::new),
            None => None,
        }),
        Op::ReadCsByAnchor { ma, anchor } => Answer::Cs(
            t.cs_by_anchor(MAS[*ma], &format!("a{anchor}"))?
                .map(Box::new),
        ),
        Op::ReadCsByAnchors { ma, anchors } => {
            let names: Vec<String> = anchors.iter().map(|a| format!("a{a}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            Answer::CsList(sorted_cs(t.cs_by_anchors(MAS[*ma], &refs)?))
        }
        Op::ReadCsByMv { pick: p } => Answer::CsList(match pick(&ids.mv, *p) {
            Some(id) => t.cs_by_mv(id)?,
            None => Vec::new(),
        }),
        Op::ReadMvGet { pick: p } => Answer::Mv(match pick(&ids.mv, *p) {
            Some(id) => t.mv_get(id)?,
            None => None,
        }),
        Op::ReadMvGetMany { picks } => {
            let wanted: Vec<i64> = picks.iter().filter_map(|p| pick(&ids.mv, *p)).collect();
            Answer::MvList(sorted_mv(t.mv_get_many(&wanted)?))
        }
        Op::ReadMvFind { email: e } => Answer::Ids(t.mv_find("person", "email", &email(*e))?),
        Op::ReadMvFindMany { emails } => {
            let values: Vec<Value> = emails.iter().map(|e| email(*e)).collect();
            let mut found = t.mv_find_many("person", "email", &values)?;
            found.sort_unstable();
            Answer::Pairs(found)
        }
        Op::ReadCsPage {
            ma,
            pi,
            after,
            limit,
        } => {
            let filter = if *pi {
                CsFilter::PendingImport
            } else {
                CsFilter::All
            };
            let after = after.and_then(|i| pick(&ids.cs, i)).unwrap_or(0);
            Answer::CsList(t.cs_page(MAS[*ma], filter, after, *limit)?)
        }
        Op::ReadCsCounts { ma } => Answer::Counts(format!(
            "{:?} {} {} {}",
            t.cs_counts(MAS[*ma])?,
            t.cs_count(MAS[*ma], CsFilter::All)?,
            t.cs_count(MAS[*ma], CsFilter::PendingImport)?,
            t.cs_pending_export_count(MAS[*ma], autosync_model::ExportKind::Delete)?
        )),
        Op::ReadMvCount => Answer::Count(t.mv_count(Some("person"))?),
    })
}

/// Both stores with the same committed objects: a few of each kind, some
/// joined.
fn seeded() -> (common::TestStore, common::TestStore) {
    let a = common::store();
    let b = common::store();
    let mut rows = ValueRows::default();
    for ma in MAS {
        rows.cs
            .entry(ma.into())
            .or_default()
            .insert("members".into());
    }
    rows.mv
        .entry("person".into())
        .or_default()
        .insert("members".into());
    for s in [&a.store, &b.store] {
        s.set_mv_index(&[autosync_store::MvIndexDef::attribute("person", "email")])
            .unwrap();
        s.set_value_rows(&rows).unwrap();
        let mut t = s.begin().unwrap();
        for i in 0..6u8 {
            let mut m = mv("person", &[("email", email(i))]);
            if let Some(v) = members(i) {
                m.attributes.insert(
                    "members".into(),
                    MvValue {
                        value: v,
                        contributor: "hr".into(),
                    },
                );
            }
            t.mv_insert(&mut m).unwrap();
            for ma in &MAS[..2] {
                let mut o = with_pending_import(joined(cs(ma, &format!("a{i}")), m.id));
                if let Some(v) = members(i + 1) {
                    o.hologram.insert("members".into(), v);
                }
                t.cs_insert(&mut o).unwrap();
            }
        }
        t.commit().unwrap();
    }
    (a, b)
}

/// Every object of a store, for comparing the committed results.
fn dump(s: &dyn Store) -> (Vec<CsObject>, Vec<MvObject>) {
    let mut r = s.read().unwrap();
    let mut all = Vec::new();
    for ma in MAS {
        all.extend(r.cs_page(ma, CsFilter::All, 0, 10_000).unwrap());
    }
    let mvs = r.mv_page(&MvQuery::default(), 0, 10_000).unwrap();
    (sorted_cs(all), mvs)
}

fn initial_ids(s: &dyn Store) -> Ids {
    let (cs, mv) = dump(s);
    Ids {
        cs: cs.iter().map(|o| o.id).collect(),
        mv: mv.iter().map(|o| o.id).collect(),
    }
}

/// Track ids created and deleted by a write step.
fn track(ids: &mut Ids, op: &Op, answer: &Answer) {
    match (op, answer) {
        (Op::CsInsert { .. }, Answer::Write(Ok(Some(id)))) => ids.cs.push(*id),
        (Op::MvInsert { .. }, Answer::Write(Ok(Some(id)))) => ids.mv.push(*id),
        (Op::CsDelete { pick: p }, Answer::Write(Ok(_))) => {
            if let Some(id) = pick(&ids.cs, *p) {
                ids.cs.retain(|x| *x != id);
            }
        }
        (Op::MvDelete { pick: p }, Answer::Write(Ok(_))) => {
            if let Some(id) = pick(&ids.mv, *p) {
                ids.mv.retain(|x| *x != id);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_bulk_transaction_should_read_and_commit_exactly_like_a_plain_one(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        let (plain, bulk) = seeded();
        let mut ids = initial_ids(&plain.store);
        let mut plain_txn = plain.store.begin().unwrap();
        bulk.store
            .write_bulk(&mut |t| {
                for (i, op) in ops.iter().enumerate() {
                    let want = apply(plain_txn.as_mut(), op, &ids).unwrap();
                    let got = apply(t, op, &ids)?;
                    assert_eq!(got, want, "step {i}: {op:?}");
                    track(&mut ids, op, &want);
                }
                Ok(())
            })
            .unwrap();
        plain_txn.commit().unwrap();
        prop_assert_eq!(dump(&bulk.store), dump(&plain.store));
        // The id counters were saved: the next insert gets the same id.
        let mut next = Vec::new();
        for s in [&plain.store, &bulk.store] {
            let mut t = s.begin().unwrap();
            let mut o = cs("hr", "after");
            t.cs_insert(&mut o).unwrap();
            let mut m = mv("person", &[]);
            t.mv_insert(&mut m).unwrap();
            t.commit().unwrap();
            next.push((o.id, m.id));
        }
        prop_assert_eq!(next[0], next[1]);
    }
}

#[test]
fn inserting_an_anchor_that_exists_should_fail_at_once_as_invalid() {
    let (_, s) = seeded();
    s.store
        .write_bulk(&mut |t| {
            // Committed before the transaction.
            let mut dup = cs("hr", "a1");
            let e = t.cs_insert(&mut dup).unwrap_err();
            assert_eq!(e.kind, StoreErrorKind::Invalid);
            assert!(e.message.contains("hr/a1"), "{e}");
            // Written by this transaction, still queued.
            let mut o = cs("hr", "fresh");
            t.cs_insert(&mut o)?;
            let mut again = cs("hr", "fresh");
            assert_eq!(
                t.cs_insert(&mut again).unwrap_err().kind,
                StoreErrorKind::Invalid
            );
            // Freed by this transaction: the anchor can be taken again.
            let a2 = t.cs_by_anchor("hr", "a2")?.unwrap();
            t.cs_delete(a2.id)?;
            let mut reuse = cs("hr", "a2");
            t.cs_insert(&mut reuse)
        })
        .unwrap();
    let mut r = s.store.read().unwrap();
    assert!(r.cs_by_anchor("hr", "fresh").unwrap().is_some());
    assert!(r.cs_by_anchor("hr", "a2").unwrap().is_some());
}

#[test]
fn another_writer_should_wait_for_a_bulk_transaction_and_then_land() {
    let (_, s) = seeded();
    let store = &s.store;
    std::thread::scope(|scope| {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let bulk = scope.spawn(move || {
            store
                .write_bulk(&mut |t| {
                    let mut o = cs("hr", "from-bulk");
                    t.cs_insert(&mut o)?;
                    started_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        started_rx.recv().unwrap();
        let other = scope.spawn(move || {
            let mut t = store.begin().unwrap();
            // The bulk transaction's object is committed by now.
            assert!(t.cs_by_anchor("hr", "from-bulk").unwrap().is_some());
            let mut o = cs("hr", "from-other");
            t.cs_insert(&mut o).unwrap();
            t.commit().unwrap();
        });
        go_tx.send(()).unwrap();
        bulk.join().unwrap();
        other.join().unwrap();
    });
    let mut r = store.read().unwrap();
    assert!(r.cs_by_anchor("hr", "from-other").unwrap().is_some());
}

#[test]
fn a_committed_bulk_transaction_should_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let s = autosync_store::sqlite::SqliteStore::open(&path).unwrap();
        s.write_bulk(&mut |t| {
            for i in 0..3000 {
                let mut o = cs("hr", &format!("p{i}"));
                t.cs_insert(&mut o)?;
            }
            Ok(())
        })
        .unwrap();
    }
    let s = autosync_store::sqlite::SqliteStore::open(&path).unwrap();
    let counts = s.read().unwrap().cs_counts("hr").unwrap();
    assert_eq!(counts.total, 3000);
}

/// Fill the empty MA `target` in one bulk transaction (the store learns
/// which anchors it may hold) and return the store.
fn filled_target() -> common::TestStore {
    let s = common::store();
    s.store
        .write_bulk(&mut |t| {
            for i in 0..50 {
                let anchor = format!("t{i}");
                assert!(t.cs_by_anchor("target", &anchor)?.is_none());
                t.cs_insert(&mut cs("target", &anchor))?;
            }
            Ok(())
        })
        .unwrap();
    s
}

/// In a new bulk transaction: whether `target` has `anchor`, and whether
/// inserting it fails as a duplicate.
fn bulk_sees(store: &dyn Store, anchor: &str) -> (bool, bool) {
    let mut seen = (false, false);
    store
        .write_bulk(&mut |t| {
            seen.0 = t.cs_by_anchor("target", anchor)?.is_some();
            seen.1 = t
                .cs_insert(&mut cs("target", anchor))
                .is_err_and(|e| e.kind == StoreErrorKind::Invalid);
            Err(StoreError::new(StoreErrorKind::Io, "look only"))
        })
        .unwrap_err();
    seen
}

#[test]
fn a_later_bulk_transaction_should_find_what_earlier_ones_put_in_an_ma_they_filled() {
    let s = filled_target();
    assert_eq!(bulk_sees(&s.store, "t7"), (true, true));
    assert_eq!(bulk_sees(&s.store, "t49"), (true, true));
    assert_eq!(bulk_sees(&s.store, "nobody"), (false, false));
}

#[test]
fn a_bulk_transaction_should_find_what_a_plain_transaction_added_to_an_ma_bulk_filled() {
    let s = filled_target();
    let mut t = s.store.begin().unwrap();
    t.cs_insert(&mut cs("target", "plain")).unwrap();
    // Moved into `target` from another MA by an update.
    let mut moved = cs("other", "m");
    t.cs_insert(&mut moved).unwrap();
    moved.ma = "target".into();
    moved.anchor = "moved".into();
    t.cs_update(&moved).unwrap();
    t.commit().unwrap();
    assert_eq!(bulk_sees(&s.store, "plain"), (true, true));
    assert_eq!(bulk_sees(&s.store, "moved"), (true, true));
}

#[test]
fn a_bulk_transaction_should_find_what_another_process_added_to_an_ma_bulk_filled() {
    let s = filled_target();
    // Another connection (as another process would) adds an object.
    let other =
        autosync_store::sqlite::SqliteStore::open(&s.dir.path().join("state").join("store.db"))
            .unwrap();
    let mut t = other.begin().unwrap();
    t.cs_insert(&mut cs("target", "elsewhere")).unwrap();
    t.commit().unwrap();
    drop(other);
    assert_eq!(bulk_sees(&s.store, "elsewhere"), (true, true));
}

#[test]
fn after_a_failed_bulk_transaction_later_ones_should_find_exactly_what_was_committed() {
    let s = common::store();
    // Fails after learning `target` was empty and adding to it.
    s.store
        .write_bulk(&mut |t| {
            assert!(t.cs_by_anchor("target", "a")?.is_none());
            t.cs_insert(&mut cs("target", "a"))?;
            Err(StoreError::new(StoreErrorKind::Io, "stop"))
        })
        .unwrap_err();
    let mut t = s.store.begin().unwrap();
    t.cs_insert(&mut cs("target", "b")).unwrap();
    t.commit().unwrap();
    assert_eq!(bulk_sees(&s.store, "a"), (false, false));
    assert_eq!(bulk_sees(&s.store, "b"), (true, true));
}

/// Fill the empty join index of `person.employeeId` in one bulk transaction
/// (the store learns which texts it may hold) and return the store.
fn filled_index() -> common::TestStore {
    let s = common::store();
    s.store
        .set_mv_index(&[autosync_store::MvIndexDef::attribute(
            "person",
            "employeeId",
        )])
        .unwrap();
    s.store
        .write_bulk(&mut |t| {
            let values: Vec<Value> = (0..50).map(|i| Value::from(format!("E{i}"))).collect();
            assert!(t.mv_find_many("person", "employeeId", &values)?.is_empty());
            for v in values {
                t.mv_insert(&mut mv("person", &[("employeeId", v)]))?;
            }
            Ok(())
        })
        .unwrap();
    s
}

/// In a new bulk transaction: how many objects `mv_find` and
/// `mv_find_many` find for `text` (the latter among values that find
/// nothing).
fn bulk_finds(store: &dyn Store, text: &str) -> (usize, usize) {
    let mut found = (0, 0);
    store
        .write_bulk(&mut |t| {
            found.0 = t.mv_find("person", "employeeId", &Value::from(text))?.len();
            let values = [
                Value::from("nobody-1"),
                Value::from(text),
                Value::from("nobody-2"),
            ];
            let many = t.mv_find_many("person", "employeeId", &values)?;
            assert!(many.iter().all(|(i, _)| *i == 1), "{many:?}");
            found.1 = many.len();
            Err(StoreError::new(StoreErrorKind::Io, "look only"))
        })
        .unwrap_err();
    found
}

#[test]
fn a_later_bulk_transaction_should_find_what_earlier_ones_put_in_a_join_index_they_filled() {
    let s = filled_index();
    assert_eq!(bulk_finds(&s.store, "E7"), (1, 1));
    assert_eq!(bulk_finds(&s.store, "E49"), (1, 1));
    assert_eq!(bulk_finds(&s.store, "nobody"), (0, 0));
    // Written and read in the same bulk transaction, after the index was
    // known empty.
    let mut seen = 0;
    s.store
        .write_bulk(&mut |t| {
            t.mv_insert(&mut mv("person", &[("employeeId", Value::from("new"))]))?;
            seen = t
                .mv_find_many("person", "employeeId", &[Value::from("new")])?
                .len();
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 1);
    assert_eq!(bulk_finds(&s.store, "new"), (1, 1));
}

#[test]
fn a_bulk_transaction_should_find_a_text_of_a_join_index_it_filled_in_any_case() {
    let s = filled_index();
    assert_eq!(bulk_finds(&s.store, "e7"), (1, 1));
    // Written and read in other cases, in one bulk transaction and later.
    let mut seen = 0;
    s.store
        .write_bulk(&mut |t| {
            t.mv_insert(&mut mv("person", &[("employeeId", Value::from("Mixed"))]))?;
            seen = t
                .mv_find_many("person", "employeeId", &[Value::from("MIXED")])?
                .len();
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 1);
    assert_eq!(bulk_finds(&s.store, "mixed"), (1, 1));
    let mut t = s.store.begin().unwrap();
    t.mv_insert(&mut mv("person", &[("employeeId", Value::from("PLAIN"))]))
        .unwrap();
    t.commit().unwrap();
    assert_eq!(bulk_finds(&s.store, "Plain"), (1, 1));
}

#[test]
fn a_bulk_transaction_should_find_what_a_plain_transaction_added_to_a_join_index_bulk_filled() {
    let s = filled_index();
    let mut t = s.store.begin().unwrap();
    t.mv_insert(&mut mv("person", &[("employeeId", Value::from("plain"))]))
        .unwrap();
    // A text an update gives an existing object (and a multi-valued one).
    let mut changed = mv("person", &[("employeeId", Value::from("before"))]);
    t.mv_insert(&mut changed).unwrap();
    changed.attributes.get_mut("employeeId").unwrap().value =
        Value::Multi(vec![Value::from("after-1"), Value::from("after-2")]);
    t.mv_update(&changed).unwrap();
    t.commit().unwrap();
    assert_eq!(bulk_finds(&s.store, "plain"), (1, 1));
    assert_eq!(bulk_finds(&s.store, "after-2"), (1, 1));
    assert_eq!(bulk_finds(&s.store, "before"), (0, 0));
}

#[test]
fn a_bulk_transaction_should_find_what_another_process_added_to_a_join_index_bulk_filled() {
    let s = filled_index();
    let other =
        autosync_store::sqlite::SqliteStore::open(&s.dir.path().join("state").join("store.db"))
            .unwrap();
    let mut t = other.begin().unwrap();
    t.mv_insert(&mut mv(
        "person",
        &[("employeeId", Value::from("elsewhere"))],
    ))
    .unwrap();
    t.commit().unwrap();
    drop(other);
    assert_eq!(bulk_finds(&s.store, "elsewhere"), (1, 1));
}

#[test]
fn a_bulk_transaction_should_find_objects_indexed_by_a_pair_declared_after_it_learnt_the_index() {
    let s = filled_index();
    // Objects stored before `mail` is indexed; declaring it builds their
    // keys.
    let mut t = s.store.begin().unwrap();
    t.mv_insert(&mut mv("person", &[("mail", Value::from("a@x"))]))
        .unwrap();
    t.commit().unwrap();
    s.store
        .write_bulk(&mut |t| {
            // `mail` is not indexed yet: the search is refused.
            assert!(
                t.mv_find_many("person", "mail", &[Value::from("a@x")])
                    .is_err()
            );
            Ok(())
        })
        .unwrap();
    s.store
        .set_mv_index(&[
            autosync_store::MvIndexDef::attribute("person", "employeeId"),
            autosync_store::MvIndexDef::attribute("person", "mail"),
        ])
        .unwrap();
    let mut found = 0;
    s.store
        .write_bulk(&mut |t| {
            found = t
                .mv_find_many("person", "mail", &[Value::from("a@x")])?
                .len();
            Ok(())
        })
        .unwrap();
    assert_eq!(found, 1);
    assert_eq!(bulk_finds(&s.store, "E3"), (1, 1));
}

#[test]
fn a_bulk_transaction_should_find_objects_of_a_join_index_dropped_and_declared_again() {
    let s = filled_index();
    s.store.set_mv_index(&[]).unwrap();
    // Stored while the attribute is not indexed.
    let mut t = s.store.begin().unwrap();
    t.mv_insert(&mut mv("person", &[("employeeId", Value::from("late"))]))
        .unwrap();
    t.commit().unwrap();
    // Declared again (its key id may be the old one): the keys of every
    // stored object are built.
    s.store
        .set_mv_index(&[autosync_store::MvIndexDef::attribute(
            "person",
            "employeeId",
        )])
        .unwrap();
    assert_eq!(bulk_finds(&s.store, "late"), (1, 1));
    assert_eq!(bulk_finds(&s.store, "E3"), (1, 1));
}
