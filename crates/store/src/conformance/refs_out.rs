//! Outbound references that wait: a metaverse object's on a target MA for
//! a connector of the object it refers to (`ref_out_waits_set`,
//! `ref_out_ready`, `ref_out_due_clear`, `ref_out_sendable_count`). As in
//! `refs`, each check runs in a plain and in a bulk transaction.

use super::ConformanceTarget;
use super::fixtures::*;
use super::refs::{KINDS, connector, new_mv, put, write};
use crate::api::{StoreError, StoreErrorKind, StoreRead, StoreResult};
use autosync_model::{Connection, MvId};

/// `ref_out_sendable_count` of each of `vias`.
pub(super) fn sendable(r: &mut dyn StoreRead, vias: &[&str]) -> Vec<u64> {
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

pub fn ref_out_sendable_count_should_count_referrers_whose_connector_on_via_has_no_add_to_send(
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
            // r0: t1 on ad has its add still to send: not counted.
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
            t1_ad = put(txn, adding(connector("ad", "t1", tg[1])))?;
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
            // An update still to send (a value held for another add) does
            // not stop its object being named: still counted.
            txn.cs_update(&with_pending_export(t2_ad.clone()))?;
            assert_eq!(
                sendable(txn, &vias),
                [3, 1, 0],
                "{at}: t2 has an update to send"
            );
            txn.cs_update(&adding(t2_ad.clone()))?;
            assert_eq!(sendable(txn, &vias), [2, 1, 0], "{at}: t2 to add");
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

/// `ref_out_waiting_page` of `ma` read page by page, against its count.
fn out_waiting(
    r: &mut dyn StoreRead,
    ma: &str,
    limit: usize,
    at: &str,
) -> Vec<autosync_model::CsId> {
    super::refs::paged(r, ma, limit, at, super::refs::Waiting::Out)
}

pub fn ref_out_waiting_page_should_list_the_connectors_of_the_target_ma_whose_references_wait(
    t: &ConformanceTarget,
) {
    for kind in KINDS {
        let s = (t.fresh)();
        let store = &*s.store;
        let at = format!("{} ({kind:?})", t.name);
        let at = at.as_str();
        let (mut p, mut q, mut u, mut t1, mut t2) = (0, 0, 0, 0, 0);
        let (mut pc, mut qc) = (0, 0);
        write(store, kind, &mut |txn| {
            (p, q, u) = (new_mv(txn)?, new_mv(txn)?, new_mv(txn)?);
            (t1, t2) = (new_mv(txn)?, new_mv(txn)?);
            // q's connector on ad written before p's: listed in id order.
            qc = put(txn, connector("ad", "q", q))?.id;
            pc = put(txn, connector("ad", "p", p))?.id;
            put(txn, connector("ldap", "p", p))?;
            // u waits on ad but has no connector there: not listed.
            txn.ref_out_waits_set(u, "ad", &[(t1, "ad".into())])?;
            txn.ref_out_waits_set(p, "ad", &[(t2, "app".into()), (t1, "ad".into())])?;
            txn.ref_out_waits_set(p, "ldap", &[(t1, "ldap".into())])?;
            txn.ref_out_waits_set(q, "ad", &[(t2, "ad".into())])?;
            let mut want = vec![pc, qc];
            want.sort_unstable();
            assert_eq!(
                out_waiting(txn, "ad", 100, at),
                want,
                "{at}: in the transaction"
            );
            Ok(())
        })
        .unwrap();
        let mut r = store.read().unwrap();
        let mut want = vec![pc, qc];
        want.sort_unstable();
        for limit in [1, 2, 100] {
            assert_eq!(
                out_waiting(&mut *r, "ad", limit, at),
                want,
                "{at}: limit {limit}"
            );
        }
        assert_eq!(out_waiting(&mut *r, "ldap", 10, at).len(), 1, "{at}");
        assert!(
            out_waiting(&mut *r, "app", 10, at).is_empty(),
            "{at}: by the MA exported to, not the one waited on"
        );
        // Sorted by the referred object, then the MA waited on.
        assert_eq!(
            r.ref_out_waits_of(p, "ad").unwrap(),
            [(t1, "ad".to_owned()), (t2, "app".to_owned())],
            "{at}"
        );
        assert_eq!(
            r.ref_out_waits_of(p, "ldap").unwrap(),
            [(t1, "ldap".to_owned())],
            "{at}"
        );
        assert!(r.ref_out_waits_of(q, "ldap").unwrap().is_empty(), "{at}");
        drop(r);
        // Cleared: listed no more.
        write(store, kind, &mut |txn| txn.ref_out_waits_set(p, "", &[])).unwrap();
        let mut r = store.read().unwrap();
        assert_eq!(
            out_waiting(&mut *r, "ad", 10, at),
            [qc],
            "{at}: after p's waits are cleared"
        );
        assert!(out_waiting(&mut *r, "ldap", 10, at).is_empty(), "{at}");
    }
}

/// `o` with its add still to send.
fn adding(o: autosync_model::CsObject) -> autosync_model::CsObject {
    let mut o = with_pending_export(o);
    if let Some(p) = o.pending_export.as_mut() {
        p.kind = autosync_model::ExportKind::Add;
    }
    o
}
