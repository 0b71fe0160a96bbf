//! Join lookups of a sync batch, answered in one store call per join rule.
//!
//! Before a batch, the first join condition of every disconnector in the
//! page is evaluated and looked up with `mv_find_many`; the objects whose
//! value found nothing are remembered, per join rule. During the batch,
//! every metaverse object written records the texts it now has under each
//! join rule (its first condition's MV side, folded as the store's join
//! index folds them: `autosync_store::join_texts`) in a small bit filter
//! (which may say "maybe written" for a text that was not, never the other
//! way round). The join of a remembered
//! object whose texts the filter has surely not seen finds nothing without
//! asking the store (no copy of the value, no lookup in a large table); any
//! other join asks the store as before, so the answer is always exact (the
//! usual first sync, where nothing joins, then costs no lookup per object).

use super::Syncer;
use crate::compute::CsView;
use autosync_model::{Connection, CsId, CsObject, ImportKind, MvObject, Value};
use autosync_store::{StoreResult, StoreTxn, join_texts};
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

/// 64-bit words of a join rule's filter of written texts (64 KiB). A text
/// sets two bits of one word, so that noting or testing it touches one cache
/// line: with the 20,000 objects of a full batch all written, about 1 % of
/// the other texts are "maybe written" (and then looked up in the store).
const FILTER_WORDS: usize = 1 << 13;

/// What the batch knows of one join rule.
#[derive(Default)]
struct RulePrefetch {
    /// Objects of the page whose first join value found no metaverse
    /// object at the start of the batch, by id (ascending).
    absent: Vec<CsId>,
    /// Bit filter of the texts of metaverse objects written since (two bits
    /// of one word per text); empty until the first write.
    written: Vec<u64>,
}

impl RulePrefetch {
    /// The filter's word and bits for a text.
    fn slot(text: &str) -> (usize, u64) {
        let h = FxBuildHasher.hash_one(text);
        let word = (h as usize) & (FILTER_WORDS - 1);
        let bits = (1u64 << ((h >> 40) & 63)) | (1u64 << ((h >> 52) & 63));
        (word, bits)
    }

    fn note_written(&mut self, text: &str) {
        if self.written.is_empty() {
            self.written.resize(FILTER_WORDS, 0);
        }
        let (word, bits) = Self::slot(text);
        if let Some(w) = self.written.get_mut(word) {
            *w |= bits;
        }
    }

    fn surely_not_written(&self, text: &str) -> bool {
        if self.written.is_empty() {
            return true;
        }
        let (word, bits) = Self::slot(text);
        self.written.get(word).is_some_and(|w| w & bits != bits)
    }
}

/// What the batch knows of its join lookups, per join rule (by index).
#[derive(Default)]
pub(crate) struct JoinPrefetch {
    rules: Vec<RulePrefetch>,
}

/// Call `f` with every text a value is found by, exactly as the store's
/// join index compares them (each value of a multi-valued one, rendered as
/// text, strings folded to lower case: `autosync_store::join_texts`), so
/// that a text written in one case is never "surely absent" in another;
/// stops at the first `false`. Returns whether every call returned `true`,
/// `None` when there was none.
fn all_texts(v: &Value, f: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
    join_texts(v, f)
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
        let rules = &mut self.joins.rules;
        rules.resize_with(self.ma.joins.len(), RulePrefetch::default);
        for r in rules.iter_mut() {
            r.absent.clear();
            r.written.clear();
        }
        let mut ids = Vec::new();
        for (rule, known) in self.ma.joins.iter().zip(rules.iter_mut()) {
            let Some(first) = rule.conditions.first() else {
                continue;
            };
            // A value that fails to evaluate here fails again in the join,
            // which reports it.
            ids.clear();
            let values: Vec<Value> = page
                .iter()
                .filter(|cs| may_join(cs) && rule.applies(&cs.object_type))
                .filter_map(|cs| {
                    let v = first.cs.eval(&CsView(cs)).ok().flatten()?;
                    ids.push(cs.id);
                    Some(v)
                })
                .collect();
            if values.is_empty() {
                continue;
            }
            let found = txn.mv_find_many(&rule.mv_type, first.mv.index(), &values)?;
            let mut hit = vec![false; values.len()];
            for (i, _) in found {
                if let Some(h) = hit.get_mut(i) {
                    *h = true;
                }
            }
            known.absent.extend(
                ids.iter()
                    .zip(&hit)
                    .filter(|(_, hit)| !**hit)
                    .map(|(id, _)| *id),
            );
            known.absent.sort_unstable();
        }
        Ok(())
    }

    /// Whether join rule `ri` surely finds nothing for `value`, the value
    /// of its first condition for object `cs` (as it was when the batch
    /// started: sync changes no join value of the page's objects).
    pub(crate) fn join_surely_absent(&self, ri: usize, cs: CsId, value: &Value) -> bool {
        let Some(known) = self.joins.rules.get(ri) else {
            return false;
        };
        known.absent.binary_search(&cs).is_ok()
            && all_texts(value, &mut |t| known.surely_not_written(t)) == Some(true)
    }

    /// Note a metaverse object written in this batch: its join texts may
    /// now find it.
    pub(crate) fn note_mv_written(&mut self, obj: &MvObject) {
        for (rule, known) in self.ma.joins.iter().zip(self.joins.rules.iter_mut()) {
            if rule.mv_type != obj.object_type || known.absent.is_empty() {
                continue;
            }
            let Some(v) = rule.conditions.first().and_then(|c| c.mv.value(obj)) else {
                continue;
            };
            all_texts(&v, &mut |t| {
                known.note_written(t);
                true
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_text_is_never_surely_absent_and_others_mostly_are() {
        let mut r = RulePrefetch::default();
        assert!(r.surely_not_written("E00000001"));
        for i in 0..20_000 {
            r.note_written(&format!("E{i:08}"));
        }
        for i in 0..20_000 {
            assert!(!r.surely_not_written(&format!("E{i:08}")));
        }
        let maybe = (20_000..120_000)
            .filter(|i| !r.surely_not_written(&format!("E{i:08}")))
            .count();
        assert!(
            maybe < 2_000,
            "{maybe} of 100000 texts never written are maybe written"
        );
    }

    #[test]
    fn a_text_written_in_one_case_should_never_be_surely_absent_in_another() {
        let mut r = RulePrefetch::default();
        all_texts(&Value::from("Ada.Lovelace@Example.com"), &mut |t| {
            r.note_written(t);
            true
        });
        let other_case = Value::from("ADA.LOVELACE@EXAMPLE.COM");
        assert_eq!(
            all_texts(&other_case, &mut |t| r.surely_not_written(t)),
            Some(false)
        );
    }

    #[test]
    fn every_text_of_a_value_is_visited() {
        let v = Value::Multi(vec![
            Value::from("a"),
            Value::Integer(5),
            Value::Multi(vec![]),
        ]);
        let mut seen = Vec::new();
        let all = all_texts(&v, &mut |t| {
            seen.push(t.to_owned());
            true
        });
        assert_eq!(all, Some(true));
        assert_eq!(seen, ["a", "5"]);
        let mut seen = Vec::new();
        all_texts(&Value::from("E10001"), &mut |t| {
            seen.push(t.to_owned());
            true
        });
        assert_eq!(seen, ["e10001"], "as the store's index holds it");
        assert_eq!(all_texts(&Value::Multi(vec![]), &mut |_| true), None);
        assert_eq!(all_texts(&Value::from("x"), &mut |_| false), Some(false));
    }
}
