//! References that wait for the object they name: a connector-space
//! object's ([`RefWait`], `ref_waits_set`, `ref_in_ready`), and the
//! metaverse objects noted for their referrers to be worked out again
//! (`ref_touched`); a metaverse object's on a target MA in `refs_out`.
//! Each check runs in a plain and in a bulk transaction, reads inside the
//! transaction (its own writes) and after the commit.

use super::ConformanceTarget;
use super::fixtures::*;
use crate::api::{RefWait, Store, StoreError, StoreErrorKind, StoreRead, StoreResult, StoreTxn};
use autosync_model::{Connection, CsId, CsObject, MvId};

/// The kinds of write transaction each check runs in.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// [`Store::begin`] and commit.
    Plain,
    /// [`Store::write_bulk`].
    Bulk,
}

pub(super) const KINDS: [Kind; 2] = [Kind::Plain, Kind::Bulk];

/// Runs `work` in one write transaction of `kind`: committed when it
/// returns `Ok`, rolled back on `Err` (returned).
pub(super) fn write(
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
pub(super) fn connector(ma: &str, anchor: &str, mv_id: MvId) -> CsObject {
    joined(cs(ma, anchor), mv_id)
}

/// Inserts `o` and returns it with its id.
pub(super) fn put(txn: &mut dyn StoreTxn, mut o: CsObject) -> StoreResult<CsObject> {
    txn.cs_insert(&mut o)?;
    Ok(o)
}

/// A new metaverse object's id.
pub(super) fn new_mv(txn: &mut dyn StoreTxn) -> StoreResult<MvId> {
    txn.mv_insert_owned(mv("person", &[]))
}

/// `ref_waiting_page` of `ma` read page by page (`limit` each), and
/// `ref_waiting_count`, which must agree.
fn waiting(r: &mut dyn StoreRead, ma: &str, limit: usize, at: &str) -> Vec<CsId> {
    paged(r, ma, limit, at, Waiting::In)
}

/// Which waiting objects [`paged`] reads.
#[derive(Clone, Copy)]
pub(super) enum Waiting {
    /// `ref_waiting_page` and `ref_waiting_count`.
    In,
    /// `ref_out_waiting_page` and `ref_out_waiting_count`.
    Out,
}

/// The waiting objects of `ma` read page by page (`limit` each), checked
/// in id order and against their count.
pub(super) fn paged(
    r: &mut dyn StoreRead,
    ma: &str,
    limit: usize,
    at: &str,
    which: Waiting,
) -> Vec<CsId> {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let page = match which {
            Waiting::In => r.ref_waiting_page(ma, after, limit),
            Waiting::Out => r.ref_out_waiting_page(ma, after, limit),
        }
        .unwrap();
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
    let count = match which {
        Waiting::In => r.ref_waiting_count(ma),
        Waiting::Out => r.ref_out_waiting_count(ma),
    };
    assert_eq!(
        count.unwrap(),
        all.len() as u64,
        "{at}: the count of {ma} and its pages disagree"
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
            // Names noted with them: sorted, each once.
            txn.ref_touched_names_add(7, &[name("dir", "E7", "cn=b"), name("app", "E7", "")])?;
            txn.ref_touched_names_add(7, &[name("dir", "E7", "cn=b")])?;
            txn.ref_touched_names_add(3, &[name("app", "E3", "")])?;
            assert_eq!(
                txn.ref_touched_names(7)?,
                [name("app", "E7", ""), name("dir", "E7", "cn=b")],
                "{at}: in the transaction"
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(
            store.read().unwrap().ref_touched_names(3).unwrap(),
            [name("app", "E3", "")],
            "{at}: committed"
        );
        let mut r = store.read().unwrap();
        assert_eq!(r.ref_touched_names_count("app").unwrap(), 2, "{at}");
        assert_eq!(r.ref_touched_names_count("dir").unwrap(), 1, "{at}");
        assert_eq!(r.ref_touched_names_count("hr").unwrap(), 0, "{at}");
        drop(r);
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
        // The names went with their note; the others stay.
        let mut r = store.read().unwrap();
        assert!(r.ref_touched_names(7).unwrap().is_empty(), "{at}");
        assert_eq!(r.ref_touched_names_count("dir").unwrap(), 0, "{at}");
        assert_eq!(r.ref_touched_names(3).unwrap().len(), 1, "{at}");
        drop(r);
        write(store, kind, &mut |txn| txn.ref_touched_clear(&[1, 3, 5])).unwrap();
        assert!(
            store
                .read()
                .unwrap()
                .ref_touched_names(3)
                .unwrap()
                .is_empty(),
            "{at}"
        );
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

fn name(ma: &str, anchor: &str, dn: &str) -> crate::api::RefName {
    crate::api::RefName {
        ma: ma.into(),
        anchor: anchor.into(),
        dn: dn.into(),
    }
}
