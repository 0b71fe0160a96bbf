//! The end of a sync step when flows copy references: the references that
//! waited for an object that is now there are worked out again, so that
//! what a sync gives does not depend on the order it took the objects in
//! (a report synchronised before its manager gets the manager in the same
//! step), and a reference waits no longer than the sync that brings its
//! object. Also: the references to a metaverse object this step deleted go
//! (its referrers' connectors are synchronised again: their anchors no
//! longer name a joined object), and the references to one whose connector
//! was renamed or is leaving are exported again.
//!
//! Each round is one transaction: the waits whose object came
//! (`ref_in_ready`: a connector-space object to synchronise again;
//! `ref_out_ready`: a metaverse object whose outbound flows run again,
//! among the waits for objects whose connectors were written since the
//! round before),
//! plus the referrers of what the round before deleted, renamed or
//! deprovisioned. An object is taken at most once per step by the waits
//! (one whose wait cannot end is not taken again and again).

use super::{Fail, MvWork, Syncer, add_counters};
use crate::history::StepErrors;
use crate::rules::{MaRules, Rules};
use crate::run::StepCtx;
use autosync_model::{CsId, ErrorStage, MvId, SyncCounters, Value};
use autosync_store::{RefName, StoreResult, StoreTxn};
use rustc_hash::{FxHashMap, FxHashSet};

/// At most this many rounds per step: each round can only come from the
/// one before (a reference resolved, an object provisioned).
const ROUNDS: usize = 8;

pub(super) fn run(ctx: &StepCtx<'_>, s: &mut Syncer<'_>) -> StoreResult<()> {
    let rules = s.rules;
    // Outbound rules for a metaverse object alone: every MA is a target.
    let nobody = MaRules::retired("", usize::MAX);
    let mut seen_in: FxHashSet<CsId> = FxHashSet::default();
    let mut seen_out: FxHashSet<MvId> = FxHashSet::default();
    // A DN two objects had may name one now: what failed on it is tried
    // again, once.
    let mut ambiguous = if s.dn_moved {
        let mut a = std::mem::take(&mut s.ambiguous);
        a.extend(ambiguous_before(ctx, rules, &s.ma.name)?);
        a
    } else {
        Vec::new()
    };
    let retry: FxHashSet<CsId> = ambiguous.iter().copied().collect();
    // MAs whose imports a staging threshold holds: what they staged must
    // not reach the metaverse through a referrer synchronised again here
    // (a held groups file cut short went out when a member left HR: a
    // black-box review); their objects with a staged change wait.
    let mut held: FxHashSet<String> = FxHashSet::default();
    for m in &rules.mas {
        if m.name != s.ma.name && crate::thresholds::staging_hold(ctx.store(), &m.name)?.is_some() {
            held.insert(m.name.clone());
        }
    }
    for _ in 0..ROUNDS {
        if ctx.cancelled() {
            break;
        }
        let mut txn = ctx.store().begin()?;
        let mut resync: Vec<CsId> = txn
            .ref_in_ready()?
            .into_iter()
            .chain(ambiguous.drain(..))
            .filter(|id| seen_in.insert(*id))
            .collect();
        let ready = txn.ref_out_ready()?;
        let taken = ready.len();
        let mut refresh: Vec<MvId> = ready
            .into_iter()
            .filter(|id| seen_out.insert(*id))
            .collect();
        // The objects whose connectors were written are looked at; kept
        // noted only if a referrer ready now was taken before in this
        // step (the next step takes it).
        if refresh.len() == taken {
            txn.ref_out_due_clear()?;
        }
        // Taken now: what this round notes again comes in the next one.
        let noted = txn.ref_touched()?;
        let ids: Vec<MvId> = noted.iter().map(|(id, _)| *id).collect();
        // How the connectors that left objects still there were named.
        let mut left_names: FxHashMap<MvId, Vec<RefName>> = FxHashMap::default();
        for (t, gone) in &noted {
            if !gone {
                let names = txn.ref_touched_names(*t)?;
                if !names.is_empty() {
                    left_names.insert(*t, names);
                }
            }
        }
        txn.ref_touched_clear(&ids)?;
        // Referrers of deleted objects whose names are known: value by
        // value if they can (see `gone`).
        let mut dropping: FxHashMap<MvId, Vec<MvId>> = FxHashMap::default();
        let mut leaving: FxHashMap<MvId, Vec<MvId>> = FxHashMap::default();
        let mut slow: Vec<(MvId, bool)> = Vec::new();
        for (t, gone) in noted {
            let by_value = gone && s.gone.contains_key(&t);
            let left = !gone && left_names.contains_key(&t);
            for (mv_type, attr) in &rules.mv_refs {
                for r in txn.mv_find(mv_type, attr, &Value::Reference(t))? {
                    if by_value {
                        dropping.entry(r).or_default().push(t);
                    } else if left {
                        leaving.entry(r).or_default().push(t);
                    } else {
                        slow.push((r, gone));
                    }
                }
            }
        }
        let mut leaving: Vec<(MvId, Vec<MvId>)> = leaving.into_iter().collect();
        leaving.sort_unstable_by_key(|(r, _)| *r);
        for (r, mut ts) in leaving {
            ts.sort_unstable();
            ts.dedup();
            let named: Vec<_> = ts
                .iter()
                .filter_map(|t| left_names.get(t).map(|n| (*t, n.clone())))
                .collect();
            let mut sub = s.sub(&nobody);
            let done = sub.drop_left(txn.as_mut(), r, &named);
            s.merge(sub);
            match done {
                Ok(true) => s.processed += 1,
                Ok(false) | Err(Fail::Object { .. }) => slow.push((r, false)),
                Err(Fail::Store(e)) => return Err(e),
            }
        }
        let mut dropping: Vec<(MvId, Vec<MvId>)> = dropping.into_iter().collect();
        dropping.sort_unstable_by_key(|(r, _)| *r);
        for (r, mut ts) in dropping {
            ts.sort_unstable();
            ts.dedup();
            let named: Vec<_> = ts
                .iter()
                .filter_map(|t| s.gone.get(t).map(|k| (*t, k.clone())))
                .collect();
            let mut sub = s.sub(&nobody);
            let done = sub.drop_gone(txn.as_mut(), r, &named);
            s.merge(sub);
            match done {
                Ok(true) => s.processed += 1,
                Ok(false) | Err(Fail::Object { .. }) => slow.push((r, true)),
                Err(Fail::Store(e)) => return Err(e),
            }
        }
        for (r, gone) in slow {
            if gone {
                for x in txn.cs_by_mv(r)? {
                    let with_refs = rules
                        .ma_index
                        .get(&x.ma)
                        .and_then(|&i| rules.mas.get(i))
                        .is_some_and(|m| m.inbound.iter().any(|f| f.reference.is_some()));
                    if with_refs {
                        resync.push(x.id);
                    }
                }
            }
            refresh.push(r);
        }
        resync.sort_unstable();
        resync.dedup();
        refresh.sort_unstable();
        refresh.dedup();
        if resync.is_empty() && refresh.is_empty() {
            // Noted objects nobody refers to, and connectors written that
            // ended no wait: forgotten (with what the drops above did).
            s.flush_counted(ctx, txn.as_mut())?;
            txn.commit()?;
            break;
        }
        tracing::debug!(
            resync = resync.len(),
            refresh = refresh.len(),
            "references worked out again"
        );
        // Objects taken again count as processed: a step that only
        // resolved references did something.
        s.processed += (resync.len() + refresh.len()) as u64;
        for id in resync {
            s.sync_again(txn.as_mut(), id, !retry.contains(&id), &held)?;
        }
        for id in refresh {
            s.refresh_refs(txn.as_mut(), id, &nobody)?;
        }
        s.flush_counted(ctx, txn.as_mut())?;
        crate::crashpoint::crash_point("sync.refs.before-commit");
        txn.commit()?;
        crate::crashpoint::crash_point("sync.refs.committed");
        ctx.renew_leases();
    }
    Ok(())
}

impl Syncer<'_> {
    /// The step's errors and its counters so far (into its run's record),
    /// written in `txn`, which commits what they count.
    fn flush_counted(&mut self, ctx: &StepCtx<'_>, txn: &mut dyn StoreTxn) -> StoreResult<()> {
        self.errors.flush(txn)?;
        ctx.record_counters(
            txn,
            autosync_model::StepCounters::Sync(self.counters.clone()),
            self.errors.count,
        )
    }
}

impl<'a> Syncer<'a> {
    /// A syncer for `ma` that records its errors with this step's.
    fn sub<'b>(&mut self, ma: &'b MaRules) -> Syncer<'b>
    where
        'a: 'b,
    {
        let errors = std::mem::replace(
            &mut self.errors,
            StepErrors::new(0, 0, "", ErrorStage::Sync),
        );
        let mut sub = Syncer::new(self.rules, ma, false, errors);
        sub.resolving = true;
        // What the step knows of the objects references name (what it
        // wrote, the MAs it read whole) holds for the sub-step too, and
        // what the sub-step writes is noted there.
        if self.joined.is_some() {
            sub.joined = self.joined.take();
        }
        sub
    }

    /// Take back what `sub` counted (what it noted, it wrote).
    fn merge(&mut self, mut sub: Syncer<'_>) {
        add_counters(&mut self.counters, &sub.counters);
        for (id, keys) in sub.gone.drain() {
            if self.gone.len() < super::gone::GONE_KEYS_MAX {
                self.gone.insert(id, keys);
            }
        }
        self.errors = sub.errors;
        if sub.joined.is_some() {
            self.joined = sub.joined.take();
        }
    }

    /// Synchronise connector-space object `id` again (its references);
    /// `joined_only`: only a connector (what waited), else whatever it is
    /// (one whose sync failed on an ambiguous DN).
    fn sync_again(
        &mut self,
        txn: &mut dyn StoreTxn,
        id: CsId,
        joined_only: bool,
        held: &FxHashSet<String>,
    ) -> StoreResult<()> {
        let rules = self.rules;
        let found = txn.cs_get(id)?;
        let ma = found
            .as_ref()
            .and_then(|cs| rules.ma_index.get(&cs.ma))
            .and_then(|&i| rules.mas.get(i));
        let (Some(cs), Some(ma)) = (found, ma) else {
            return txn.ref_waits_set(id, &[]);
        };
        if joined_only && cs.connection.mv_id().is_none() {
            return txn.ref_waits_set(id, &[]);
        }
        if cs.pending_import.is_some() && held.contains(&cs.ma) {
            // Its MA's staged changes wait for an operator; its waits stay
            // for the sync that follows the decision.
            return Ok(());
        }
        let anchor = cs.anchor.clone();
        let mut sub = self.sub(ma);
        let res = match sub.sync_object(txn, cs) {
            Ok(work) => sub.apply(txn, work),
            Err(Fail::Store(e)) => Err(e),
            Err(Fail::Object { error_type, detail }) => {
                sub.object_failed(txn, id, &anchor, error_type, detail)
            }
        };
        self.merge(sub);
        res
    }

    /// Run the outbound flows of metaverse object `id` again, on every MA.
    fn refresh_refs(
        &mut self,
        txn: &mut dyn StoreTxn,
        id: MvId,
        nobody: &MaRules,
    ) -> StoreResult<()> {
        let Some(obj) = txn.mv_get(id)? else {
            return txn.ref_out_waits_set(id, "", &[]);
        };
        let mut sub = self.sub(nobody);
        let mut mv = MvWork::existing(obj);
        let mut inserts = Vec::new();
        let mut counters = SyncCounters::default();
        let res = match sub.outbound(
            txn,
            &mut mv,
            None,
            &mut inserts,
            &mut counters,
            (true, false),
        ) {
            Ok(_) => {
                add_counters(&mut sub.counters, &counters);
                sub.write_out_waits(txn, None)
                    .and_then(|()| sub.write_touched(txn))
                    .and_then(|()| sub.write_mv(txn, mv, inserts))
            }
            Err(Fail::Store(e)) => Err(e),
            Err(Fail::Object { error_type, detail }) => {
                // No connector-space object to keep it on: the run has it.
                sub.counters.failures += 1;
                sub.errors
                    .push(&format!("metaverse object {id}"), error_type, detail);
                Ok(())
            }
        };
        self.merge(sub);
        res
    }
}

/// The objects of the MAs whose references name `ma`'s objects by DN that
/// failed on an ambiguous reference in an earlier step (a full sync, or a
/// delta sync that leaves them be now): a DN that two objects had may name
/// one now. Objects with errors are few, and read from their index.
fn ambiguous_before(ctx: &StepCtx<'_>, rules: &Rules, ma: &str) -> StoreResult<Vec<CsId>> {
    let mut out = Vec::new();
    let mut read = ctx.store().read()?;
    let referrers = rules.mas.iter().filter(|m| {
        m.inbound.iter().any(|f| {
            f.reference
                .as_ref()
                .is_some_and(|r| r.ma == ma && r.by == autosync_model::RefBy::Dn)
        })
    });
    for m in referrers {
        let mut after = 0;
        loop {
            let page = read.cs_page(&m.name, autosync_store::CsFilter::Errors, after, 1_000)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            out.extend(
                page.iter()
                    .filter(|x| {
                        x.error.as_ref().is_some_and(|e| {
                            e.stage == ErrorStage::Sync && e.error_type == "ambiguous-reference"
                        })
                    })
                    .map(|x| x.id),
            );
        }
    }
    Ok(out)
}
