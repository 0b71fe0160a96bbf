//! Join lookups of a sync batch, answered in one store call per join rule.
//!
//! Before a batch, the first join condition of every disconnector in the
//! page is evaluated and looked up with `mv_find_many`; the texts that
//! found nothing are remembered. During the batch, every metaverse object
//! written records the texts it now has under each join rule. A join whose
//! texts all found nothing at the start of the batch, and that no object
//! written since has, finds nothing without asking the store; any other
//! join asks the store as before, so the answer is always exact (the usual
//! first sync, where nothing joins, then costs no lookup per object).

use super::Syncer;
use crate::compute::CsView;
use autosync_model::{Connection, CsObject, ImportKind, MvObject, Value};
use autosync_store::{StoreResult, StoreTxn};
use std::collections::HashSet;

/// What the batch knows of its join lookups.
#[derive(Default)]
pub(crate) struct JoinPrefetch {
    /// (join rule index, text) that found no metaverse object at the start.
    absent: HashSet<(usize, String)>,
    /// (join rule index, text) of metaverse objects written since.
    written: HashSet<(usize, String)>,
}

/// The texts a value is found by (as the store's index compares them).
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Multi(vs) => vs.iter().for_each(|v| texts(v, out)),
        other => out.push(other.to_text()),
    }
}

/// Whether sync may try to join `cs` (a disconnector, or one that a
/// delete-add will disconnect).
fn may_join(cs: &CsObject) -> bool {
    cs.connection == Connection::Disconnector
        || cs
            .pending_import
            .as_ref()
            .is_some_and(|p| p.kind == ImportKind::DeleteAdd)
}

impl Syncer<'_> {
    /// Look up the join values of the page's disconnectors in bulk.
    pub(crate) fn prefetch_joins(
        &mut self,
        txn: &mut dyn StoreTxn,
        page: &[CsObject],
    ) -> StoreResult<()> {
        self.joins.absent.clear();
        self.joins.written.clear();
        let mut buf = Vec::new();
        for (ri, rule) in self.ma.joins.iter().enumerate() {
            let Some(first) = rule.conditions.first() else {
                continue;
            };
            // A value that fails to evaluate here fails again in the join,
            // which reports it.
            let values: Vec<Value> = page
                .iter()
                .filter(|cs| may_join(cs) && rule.applies(&cs.object_type))
                .filter_map(|cs| first.cs.eval(&CsView(cs)).ok().flatten())
                .collect();
            if values.is_empty() {
                continue;
            }
            let found = txn.mv_find_many(&rule.mv_type, &first.mv, &values)?;
            let mut hit = vec![false; values.len()];
            for (i, _) in found {
                if let Some(h) = hit.get_mut(i) {
                    *h = true;
                }
            }
            for (v, hit) in values.iter().zip(hit) {
                if !hit {
                    buf.clear();
                    texts(v, &mut buf);
                    self.joins.absent.extend(buf.drain(..).map(|t| (ri, t)));
                }
            }
        }
        Ok(())
    }

    /// Whether join rule `ri` surely finds nothing for `value`.
    pub(crate) fn join_surely_absent(&self, ri: usize, value: &Value) -> bool {
        let mut buf = Vec::new();
        texts(value, &mut buf);
        !buf.is_empty()
            && buf.into_iter().all(|t| {
                let key = (ri, t);
                self.joins.absent.contains(&key) && !self.joins.written.contains(&key)
            })
    }

    /// Note a metaverse object written in this batch.
    pub(crate) fn note_mv_written(&mut self, obj: &MvObject) {
        let mut buf = Vec::new();
        for (ri, rule) in self.ma.joins.iter().enumerate() {
            if rule.mv_type != obj.object_type {
                continue;
            }
            let Some(v) = rule.conditions.first().and_then(|c| obj.get(&c.mv)) else {
                continue;
            };
            buf.clear();
            texts(v, &mut buf);
            self.joins.written.extend(buf.drain(..).map(|t| (ri, t)));
        }
    }
}
