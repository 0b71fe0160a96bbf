//! References that wait for the object they name: a connector-space
//! object's ([`RefWait`], `ref_waits_set`, `ref_in_ready`), a metaverse
//! object's on a target MA (`ref_out_waits_set`, `ref_out_ready`,
//! `ref_out_sendable_count`), and the metaverse objects noted for their
//! referrers to be worked out again (`ref_touched`). Each check runs in a
//! plain and in a bulk transaction, reads inside the transaction (its own
//! writes) and after the commit.

use super::ConformanceTarget;
use super::fixtures::*;
use crate::api::{RefWait, Store, StoreError, StoreErrorKind, StoreRead, StoreResult, StoreTxn};
use autosync_model::{Connection, CsId, CsObject, MvId};

/// The kinds of write transaction each check runs in.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// [`Store::begin`] and commit.
    Plain,
    /// [`Store::write_bulk`].
    Bulk,
}

const KINDS: [Kind; 2] = [Kind::Plain, Kind::Bulk];

/// Runs `work` in one write transaction of `kind`: committed when it
/// returns `Ok`, rolled back on `Err` (returned).
fn write(
    store: &dyn Store,
    kind: Kind,
    work: &mut dyn FnMut(&mut dyn StoreTxn) -> StoreResult<()>,
) -> StoreResult<()> {
    match kind {
        Kind::Plain => {
            let mut txn = store.begin()?;
            work(txn.as_mut())?;
            txn.commit()
        }
        Kind::Bulk => store.write_bulk(work),
    }
}

fn wait(attr: &str, ma: &str, key: &str) -> RefWait {
    RefWait {
        attr: attr.to_owned(),
        ma: ma.to_owned(),
        key: key.to_owned(),
        by_dn: false,
    }
}

fn sorted(waits: &[RefWait]) -> Vec<RefWait> {
    let mut v = waits.to_vec();
    v.sort();
    v
}

/// A connector-space object of `ma` joined to `mv_id`.
fn connector(ma: &str, anchor: &str, mv_id: MvId) -> CsObject {
    joined(cs(ma, anchor), mv_id)
}

/// Inserts `o` and returns it with its id.
fn put(txn: &mut dyn StoreTxn, mut o: CsObject) -> StoreResult<CsObject> {
    txn.cs_insert(&mut o)?;
    Ok(o)
}

/// A new metaverse object's id.
fn new_mv(txn: &mut dyn StoreTxn) -> StoreResult<MvId> {
    txn.mv_insert_owned(mv("person", &[]))
}

/// `ref_waiting_page` of `ma` read page by page (`limit` each), and
/// `ref_waiting_count`, which must agree.
fn waiting(r: &mut dyn StoreRead, ma: &str, limit: usize, at: &str) -> Vec<CsId> {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let page = r.ref_waiting_page(ma, after, limit).unwrap();
        assert!(page.len() <= limit, "{at}: a page of {ma} over its limit");
        let Some(&last) = page.last() else { break };
        assert!(
            page.first().is_some_and(|&first| first > after)
                && page.windows(2).all(|w| w[0] < w[1]),
            "{at}: a page of {ma} after {after} not in id order: {page:?}"
        );
        after = last;
        all.extend(page);
    }
    assert_eq!(
        r.ref_waiting_count(ma).unwrap(),
        all.len() as u64,
        "{at}: ref_waiting_count of {ma} and its pages disagree"
    );
    all
}

pub fn ref_waits_set_should_replace_the_waits_and_ref_waiting_page_should_list_referrers_of_one_ma(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        // Given out of order; read back sorted (attribute, MA, key; text
        // compared as Rust compares it: by its bytes).
        let first = vec![
            wait("manager", "hr", "E9"),
            wait("groups", "ad", "cn=Users"),
            wait("Groups", "ad", "cn=admins"),
            wait("groups", "ad", "cn=Admins"),
            wait("groups", "AD", "cn=admins"),
            wait("groups", "ad", "cn=Ünal"),
        ];
        let mut hr: Vec<CsId> = Vec::new();
        let mut x = 0;
        write(store, kind, &mut |txn| {
            hr = (0..4)
                .map(|i| txn.cs_insert_owned(cs("hr", &format!("r{i}"))))
                .collect::<StoreResult<_>>()?;
            x = txn.cs_insert_owned(cs("ad", "x"))?;
            // Written out of id order.
            txn.ref_waits_set(
                hr[3],
                &[wait("manager", "hr", "E1"), wait("member", "ad", "g")],
            )?;
            txn.ref_waits_set(hr[0], &first)?;
            txn.ref_waits_set(x, &[wait("manager", "hr", "r1")])?;
            txn.ref_waits_set(hr[2], &[wait("manager", "hr", "E2")])?;
            txn.ref_waits_set(hr[1], &[wait("manager", "hr", "E3")])?;
            // Read in the transaction.
            assert_eq!(
                txn.ref_waits_of(hr[0])?,
                sorted(&first),
                "{at}: in the transaction"
            );
            assert_eq!(waiting(txn, "hr", 100, at), hr, "{at}: in the transaction");
            Ok(())
        })
        .unwrap();
        {
            let mut r = store.read().unwrap();
            assert_eq!(r.ref_waits_of(hr[0]).unwrap(), sorted(&first), "{at}");
            assert_eq!(
                r.ref_waits_of(hr[3]).unwrap(),
                [wait("manager", "hr", "E1"), wait("member", "ad", "g")],
                "{at}"
            );
            // By the referrer's MA, not the MA its references name; each
            // referrer once, however many waits it has.
            for limit in [1, 2, 3, 100] {
                assert_eq!(waiting(&mut *r, "hr", limit, at), hr, "{at}: limit {limit}");
            }
            assert_eq!(waiting(&mut *r, "ad", 10, at), [x], "{at}");
            assert!(waiting(&mut *r, "crm", 10, at).is_empty(), "{at}");
            assert_eq!(r.ref_waiting_page("hr", 0, 2).unwrap(), hr[..2], "{at}");
            assert_eq!(
                r.ref_waiting_page("hr", hr[1], 10).unwrap(),
                hr[2..],
                "{at}"
            );
            assert_eq!(
                r.ref_waiting_page("hr", hr[0], 2).unwrap(),
                hr[1..3],
                "{at}"
            );
            assert!(
                r.ref_waiting_page("hr", hr[3], 10).unwrap().is_empty(),
                "{at}"
            );
            // An object without waits.
            assert!(r.ref_waits_of(hr[3] + x + 100).unwrap().is_empty(), "{at}");
        }
        // Replaced, not added to; none clears.
        let second = [wait("manager", "hr", "E7")];
        let check = |r: &mut dyn StoreRead, when: &str| {
            assert_eq!(r.ref_waits_of(hr[0]).unwrap(), second, "{at}: {when}");
            assert!(r.ref_waits_of(hr[1]).unwrap().is_empty(), "{at}: {when}");
            assert_eq!(
                r.ref_waits_of(hr[2]).unwrap(),
                [wait("manager", "hr", "E2")],
                "{at}: {when}: another referrer's waits"
            );
            assert_eq!(
                waiting(r, "hr", 2, at),
                [hr[0], hr[2], hr[3]],
                "{at}: {when}"
            );
            assert!(waiting(r, "ad", 2, at).is_empty(), "{at}: {when}");
        };
        write(store, kind, &mut |txn| {
            txn.ref_waits_set(hr[0], &second)?;
            txn.ref_waits_set(hr[1], &[])?;
            txn.ref_waits_set(x, &[])?;
            check(txn, "in the transaction");
            Ok(())
        })
        .unwrap();
        check(&mut *store.read().unwrap(), "committed");
    }
}

pub fn ref_in_ready_should_list_a_referrer_once_the_object_it_names_is_there_and_joined(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        let manager = |key: &str| wait("manager", "hr", key);
        let member = |key: &str| wait("member", "ad", key);
        // Referrers of hr, each waiting for ...
        let (mut e2, mut e5) = (cs("hr", "E2"), cs("hr", "E5"));
        let mut g2 = cs("ad", "G2");
        let mut r = Vec::new();
        write(store, kind, &mut |txn| {
            let (m1, m2, m3) = (new_mv(txn)?, new_mv(txn)?, new_mv(txn)?);
            r = (0..8)
                .map(|i| txn.cs_insert_owned(cs("hr", &format!("r{i}"))))
                .collect::<StoreResult<_>>()?;
            // ... an object that is not there,
            txn.ref_waits_set(r[0], &[manager("E1")])?;
            // ... one that is not joined,
            e2 = put(txn, cs("hr", "E2"))?;
            txn.ref_waits_set(r[1], &[manager("E2")])?;
            // ... one that is never to be joined,
            let mut e3 = cs("hr", "E3");
            e3.connection = Connection::ExplicitDisconnector;
            put(txn, e3)?;
            txn.ref_waits_set(r[2], &[manager("E3")])?;
            // ... one whose anchor differs in case only,
            put(txn, connector("hr", "E4", m1))?;
            txn.ref_waits_set(r[3], &[manager("e4")])?;
            // ... one of another MA that has a connector of that anchor on
            // the referrer's MA only,
            put(txn, connector("hr", "G1", m1))?;
            txn.ref_waits_set(r[4], &[member("G1")])?;
            // ... a joined object of its own MA,
            e5 = put(txn, connector("hr", "E5", m2))?;
            txn.ref_waits_set(r[5], &[manager("E5")])?;
            // ... a joined object of another MA,
            g2 = put(txn, connector("ad", "G2", m3))?;
            txn.ref_waits_set(r[6], &[member("G2")])?;
            // ... and two joined objects and one never there (listed once).
            txn.ref_waits_set(r[7], &[manager("E5"), member("G2"), manager("E0")])?;
            assert_eq!(
                txn.ref_in_ready()?,
                [r[5], r[6], r[7]],
                "{at}: in the transaction"
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_in_ready().unwrap(),
            [r[5], r[6], r[7]],
            "{at}: committed"
        );
        // Objects come, are joined, leave or are disconnected; a cleared
        // referrer is not listed.
        let expect = [r[0], r[1], r[4], r[7]];
        write(store, kind, &mut |txn| {
            let m4 = new_mv(txn)?;
            put(txn, connector("hr", "E1", m4))?;
            txn.cs_update(&joined(e2.clone(), m4))?;
            put(txn, cs("hr", "e4"))?;
            put(txn, connector("ad", "G1", m4))?;
            let mut gone = e5.clone();
            gone.connection = Connection::Disconnector;
            txn.cs_update(&gone)?;
            txn.ref_waits_set(r[6], &[])?;
            assert_eq!(txn.ref_in_ready()?, expect, "{at}: in the transaction");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_in_ready().unwrap(),
            expect,
            "{at}: committed"
        );
        // The last object `r[7]` waited for goes.
        write(store, kind, &mut |txn| {
            txn.cs_delete(g2.id)?;
            assert_eq!(
                txn.ref_in_ready()?,
                [r[0], r[1], r[4]],
                "{at}: in the transaction"
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_in_ready().unwrap(),
            [r[0], r[1], r[4]],
            "{at}: committed"
        );
    }
}

/// `ref_out_sendable_count` of each of `vias`.
fn sendable(r: &mut dyn StoreRead, vias: &[&str]) -> Vec<u64> {
    vias.iter()
        .map(|via| r.ref_out_sendable_count(via).unwrap())
        .collect()
}

pub fn ref_out_waits_set_should_replace_only_the_waits_of_its_ma_and_an_empty_ma_should_clear_all(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        let (mut p, mut q, mut t1, mut t2, mut t3) = (0, 0, 0, 0, 0);
        for step in 0..5 {
            // What is done, and how many referrers are sendable on ad and
            // on ldap then.
            let (what, counts) = match step {
                // p: (ad: t1 via ad), (ldap: t2 via ldap); q: (ad: t1 via ad).
                0 => ("set", [2, 1]),
                // p's waits on ad replaced by t3 via ldap (t3 has no
                // connector there): its waits on ldap are kept.
                1 => ("replace p's waits on ad", [1, 1]),
                // p's waits on ldap cleared: those on ad are kept.
                2 => ("clear p's waits on ldap", [1, 0]),
                // t3 gets its connector on ldap: p's wait on ad is over.
                3 => ("connect t3 on ldap", [1, 1]),
                // Every wait of p cleared; q's are kept.
                _ => ("clear every wait of p", [1, 0]),
            };
            let only_q = step == 2 || step == 4;
            write(store, kind, &mut |txn| {
                match step {
                    0 => {
                        (p, q) = (new_mv(txn)?, new_mv(txn)?);
                        (t1, t2, t3) = (new_mv(txn)?, new_mv(txn)?, new_mv(txn)?);
                        txn.ref_out_waits_set(p, "ad", &[(t1, "ad".into())])?;
                        txn.ref_out_waits_set(p, "ldap", &[(t2, "ldap".into())])?;
                        txn.ref_out_waits_set(q, "ad", &[(t1, "ad".into())])?;
                        // The connectors come after the waits (a wait is
                        // written for an object without one).
                        put(txn, connector("ad", "t1", t1))?;
                        put(txn, connector("ldap", "t2", t2))?;
                    }
                    1 => txn.ref_out_waits_set(p, "ad", &[(t3, "ldap".into())])?,
                    2 => txn.ref_out_waits_set(p, "ldap", &[])?,
                    3 => {
                        put(txn, connector("ldap", "t3", t3))?;
                    }
                    _ => txn.ref_out_waits_set(p, "", &[])?,
                }
                let ready = if only_q { vec![q] } else { vec![p, q] };
                assert_eq!(
                    txn.ref_out_ready()?,
                    ready,
                    "{at}: {what}, in the transaction"
                );
                assert_eq!(
                    sendable(txn, &["ad", "ldap"]),
                    counts,
                    "{at}: {what}, in the transaction"
                );
                Ok(())
            })
            .unwrap();
            let mut r = store.read().unwrap();
            let ready = if only_q { vec![q] } else { vec![p, q] };
            assert_eq!(r.ref_out_ready().unwrap(), ready, "{at}: {what}, committed");
            assert_eq!(
                sendable(&mut *r, &["ad", "ldap"]),
                counts,
                "{at}: {what}, committed"
            );
        }
    }
}

pub fn ref_out_ready_should_list_a_referrer_once_its_target_has_a_connector_on_the_ma_it_waits_for(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        let mut r = Vec::new();
        let mut tg = Vec::new();
        let mut t2_ad = cs("ad", "t2");
        write(store, kind, &mut |txn| {
            r = (0..4).map(|_| new_mv(txn)).collect::<StoreResult<_>>()?;
            tg = (0..4).map(|_| new_mv(txn)).collect::<StoreResult<_>>()?;
            // The waits, then the connectors (a wait is written for an
            // object without one; its end comes with a write of one).
            txn.ref_out_waits_set(r[0], "ad", &[(tg[0], "ad".into())])?;
            txn.ref_out_waits_set(r[1], "ad", &[(tg[1], "ad".into())])?;
            txn.ref_out_waits_set(r[2], "ad", &[(tg[2], "ad".into())])?;
            txn.ref_out_waits_set(r[3], "ad", &[(tg[2], "ad".into())])?;
            txn.ref_out_waits_set(r[3], "ldap", &[(tg[3], "ldap".into())])?;
            // r[0] waits for t0 on ad: t0 has no connector yet.
            // r[1] waits for t1 on ad: t1 has a connector on ldap only,
            // and a connector-space object on ad that is not joined.
            put(txn, connector("ldap", "t1", tg[1]))?;
            put(txn, cs("ad", "t1"))?;
            // r[2] waits for t2 on ad, which has its connector (with an
            // export still to send: ready all the same).
            t2_ad = put(txn, with_pending_export(connector("ad", "t2", tg[2])))?;
            // r[3] waits, on two target MAs, for t2 and t3, both there:
            // listed once.
            put(txn, connector("ldap", "t3", tg[3]))?;
            assert_eq!(
                txn.ref_out_ready()?,
                [r[2], r[3]],
                "{at}: in the transaction"
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_out_ready().unwrap(),
            [r[2], r[3]],
            "{at}: committed"
        );
        // t0 and t1 get their connectors on ad; t2's leaves ad.
        let expect = [r[0], r[1], r[3]];
        write(store, kind, &mut |txn| {
            put(txn, connector("ad", "t0", tg[0]))?;
            let mut t1_ad = txn
                .cs_by_anchor("ad", "t1")?
                .ok_or_else(|| StoreError::new(StoreErrorKind::Invalid, "ad/t1 is gone"))?;
            t1_ad.connection = Connection::Connector { mv_id: tg[1] };
            txn.cs_update(&t1_ad)?;
            txn.cs_delete(t2_ad.id)?;
            assert_eq!(txn.ref_out_ready()?, expect, "{at}: in the transaction");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_out_ready().unwrap(),
            expect,
            "{at}: committed"
        );
        // Once the waits were looked at, only a connector written again
        // makes its referrers ready again (t0's, here).
        write(store, kind, &mut |txn| {
            txn.ref_out_due_clear()?;
            assert!(txn.ref_out_ready()?.is_empty(), "{at}: cleared");
            let mut t0_ad = txn
                .cs_by_anchor("ad", "t0")?
                .ok_or_else(|| StoreError::new(StoreErrorKind::Invalid, "ad/t0 is gone"))?;
            t0_ad = with_pending_export(t0_ad);
            txn.cs_update(&t0_ad)?;
            assert_eq!(txn.ref_out_ready()?, [r[0]], "{at}: t0 written again");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_out_ready().unwrap(),
            [r[0]],
            "{at}: cleared, then t0 written again, committed"
        );
    }
}

pub fn ref_out_sendable_count_should_count_referrers_whose_connector_on_via_has_nothing_to_export(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        let vias = ["ad", "ldap", "crm"];
        let (mut t1_ad, mut t2_ad) = (cs("ad", "t1"), cs("ad", "t2"));
        let mut r: Vec<MvId> = Vec::new();
        write(store, kind, &mut |txn| {
            r = (0..6).map(|_| new_mv(txn)).collect::<StoreResult<_>>()?;
            let tg: Vec<MvId> = (0..6).map(|_| new_mv(txn)).collect::<StoreResult<_>>()?;
            let on = |target: MvId, via: &str| vec![(target, via.to_owned())];
            // r0: t1 on ad has an export still to send: not counted.
            txn.ref_out_waits_set(r[0], "ad", &on(tg[1], "ad"))?;
            // r1: t2 on ad is sendable.
            txn.ref_out_waits_set(r[1], "ad", &on(tg[2], "ad"))?;
            // r2: t3 on ldap is sendable (counted for ldap only).
            txn.ref_out_waits_set(r[2], "ldap", &on(tg[3], "ldap"))?;
            // r3: t2 and t4 on ad, both sendable: counted once.
            txn.ref_out_waits_set(r[3], "ad", &[(tg[2], "ad".into()), (tg[4], "ad".into())])?;
            // r4: t5 has no connector.
            txn.ref_out_waits_set(r[4], "ad", &on(tg[5], "ad"))?;
            // r5: t3 on ad, where it has none (its ldap one does not count).
            txn.ref_out_waits_set(r[5], "ldap", &on(tg[3], "ad"))?;
            // The connectors, after the waits.
            t1_ad = put(txn, with_pending_export(connector("ad", "t1", tg[1])))?;
            t2_ad = put(txn, connector("ad", "t2", tg[2]))?;
            put(txn, connector("ldap", "t3", tg[3]))?;
            put(txn, connector("ad", "t4", tg[4]))?;
            assert_eq!(sendable(txn, &vias), [2, 1, 0], "{at}: in the transaction");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            sendable(&mut *store.read().unwrap(), &vias),
            [2, 1, 0],
            "{at}: committed"
        );
        // t1's export is sent; then t2 gets one to send (r3 still has t4).
        write(store, kind, &mut |txn| {
            let mut sent = t1_ad.clone();
            sent.pending_export = None;
            txn.cs_update(&sent)?;
            assert_eq!(sendable(txn, &vias), [3, 1, 0], "{at}: t1 sent");
            txn.cs_update(&with_pending_export(t2_ad.clone()))?;
            assert_eq!(sendable(txn, &vias), [2, 1, 0], "{at}: t2 to send");
            Ok(())
        })
        .unwrap();
        let mut rd = store.read().unwrap();
        assert_eq!(sendable(&mut *rd, &vias), [2, 1, 0], "{at}: committed");
        // Whether an export is left to send does not matter to
        // `ref_out_ready`.
        assert_eq!(rd.ref_out_ready().unwrap(), r[..4], "{at}");
    }
}

pub fn ref_touched_should_keep_a_deletion_noted_list_in_id_order_and_clear_only_the_given_ids(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        let first = [(3, true), (5, false), (7, true)];
        write(store, kind, &mut |txn| {
            txn.ref_touched_add(&[(7, false), (3, true)])?;
            txn.ref_touched_add(&[(5, false)])?;
            // A deletion noted later stays; an object noted again without
            // one keeps it.
            txn.ref_touched_add(&[(7, true)])?;
            txn.ref_touched_add(&[(3, false), (5, false)])?;
            txn.ref_touched_add(&[])?;
            assert_eq!(txn.ref_touched()?, first, "{at}: in the transaction");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_touched().unwrap(),
            first,
            "{at}: committed"
        );
        let second = [(1, false), (3, true), (5, false)];
        write(store, kind, &mut |txn| {
            // Only the ids given, whether noted or not.
            txn.ref_touched_clear(&[7, 5, 99])?;
            txn.ref_touched_clear(&[])?;
            // Cleared, then noted again: as noted now.
            txn.ref_touched_add(&[(5, false), (1, false)])?;
            assert_eq!(txn.ref_touched()?, second, "{at}: in the transaction");
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_touched().unwrap(),
            second,
            "{at}: committed"
        );
        write(store, kind, &mut |txn| txn.ref_touched_clear(&[1, 3, 5])).unwrap();
        assert!(
            store.read().unwrap().ref_touched().unwrap().is_empty(),
            "{at}"
        );
    }
}

/// What the reference tables hold, as reads show it.
#[derive(Debug, PartialEq)]
struct Refs {
    waits: Vec<RefWait>,
    in_ready: Vec<CsId>,
    out_ready: Vec<MvId>,
    sendable: u64,
    touched: Vec<(MvId, bool)>,
}

fn refs(r: &mut dyn StoreRead, referrer: CsId) -> Refs {
    Refs {
        waits: r.ref_waits_of(referrer).unwrap(),
        in_ready: r.ref_in_ready().unwrap(),
        out_ready: r.ref_out_ready().unwrap(),
        sendable: r.ref_out_sendable_count("ad").unwrap(),
        touched: r.ref_touched().unwrap(),
    }
}

pub fn reference_writes_should_be_read_in_their_transaction_and_kept_or_dropped_with_it(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        let (mut a, mut p, mut target) = (0, 0, 0);
        // Committed: `a` waits for hr/E1 (there and joined), `p` for
        // `target`'s connector on ad, and one object noted.
        write(store, kind, &mut |txn| {
            (p, target) = (new_mv(txn)?, new_mv(txn)?);
            a = txn.cs_insert_owned(cs("hr", "a"))?;
            put(txn, connector("hr", "E1", target))?;
            txn.ref_waits_set(a, &[wait("manager", "hr", "E1")])?;
            txn.ref_out_waits_set(p, "ad", &[(target, "ad".into())])?;
            put(txn, connector("ad", "t", target))?;
            txn.ref_touched_add(&[(p, false)])?;
            Ok(())
        })
        .unwrap();
        let before = Refs {
            waits: vec![wait("manager", "hr", "E1")],
            in_ready: vec![a],
            out_ready: vec![p],
            sendable: 1,
            touched: vec![(p, false)],
        };
        assert_eq!(refs(&mut *store.read().unwrap(), a), before, "{at}");
        let after = Refs {
            waits: vec![wait("manager", "hr", "E2")],
            in_ready: vec![],
            out_ready: vec![],
            sendable: 0,
            touched: vec![(target, true)],
        };
        let change = |txn: &mut dyn StoreTxn| -> StoreResult<()> {
            txn.ref_waits_set(a, &[wait("manager", "hr", "E2")])?;
            txn.ref_out_waits_set(p, "", &[])?;
            txn.ref_out_due_clear()?;
            txn.ref_touched_clear(&[p])?;
            txn.ref_touched_add(&[(target, true)])
        };
        // Seen by the transaction, not by readers beside it; dropped with
        // it when it fails.
        let err = write(store, kind, &mut |txn| {
            change(txn)?;
            assert_eq!(refs(txn, a), after, "{at}: in the transaction");
            assert_eq!(
                refs(&mut *store.read().unwrap(), a),
                before,
                "{at}: a reader beside the transaction"
            );
            Err(StoreError::new(StoreErrorKind::Invalid, "stop here"))
        })
        .unwrap_err();
        assert_eq!(err.message, "stop here", "{at}");
        assert_eq!(
            refs(&mut *store.read().unwrap(), a),
            before,
            "{at}: after a failed transaction"
        );
        // Kept by `commit_so_far`, and read back after it with the next
        // part's writes.
        let err = write(store, kind, &mut |txn| {
            change(txn)?;
            txn.commit_so_far()?;
            assert_eq!(refs(txn, a), after, "{at}: after commit_so_far");
            txn.ref_touched_add(&[(p, true)])?;
            let mut next = refs(txn, a);
            assert_eq!(next.touched, [(p, true), (target, true)], "{at}: next part");
            next.touched = after.touched.clone();
            assert_eq!(next, after, "{at}: next part");
            Err(StoreError::new(StoreErrorKind::Invalid, "stop here"))
        })
        .unwrap_err();
        assert_eq!(err.message, "stop here", "{at}");
        assert_eq!(
            refs(&mut *store.read().unwrap(), a),
            after,
            "{at}: the first part kept, the second dropped"
        );
    }
}
