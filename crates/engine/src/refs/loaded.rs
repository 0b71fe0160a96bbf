//! Whole connector spaces a sync step reads at once for its references.
//!
//! Resolving a reference asks the store for the object it names, one
//! index lookup each. A step that resolves many references into one MA (a
//! full sync of 1,000 groups holding 100,000 memberships, a group of
//! everyone) would make as many lookups as it has values; past a point it
//! is cheaper to read that MA's joins (anchor → metaverse object) or its
//! connectors' spellings (metaverse object → anchor and DN) in one pass
//! and answer from memory. The step keeps what it read current with
//! everything it writes of that MA ([`Loaded::wrote_anchor`],
//! [`Loaded::wrote_connector`]), so an answer never misses a write of the
//! step still queued in a bulk transaction.

use super::Spelling;
use autosync_model::{CsId, ExportKind, MvId};
use autosync_store::{StoreResult, StoreTxn};
use rustc_hash::FxHashMap;

/// An MA is read whole once the step asked the store for this many of its
/// objects one by one...
const LOAD_AFTER: usize = 4_096;
/// ...and for at least this share (1/N) of its objects...
const LOAD_SHARE: u64 = 16;
/// ...when it holds no more than this many objects (the memory it takes).
const LOAD_MAX: u64 = 4_000_000;

/// The connectors of one MA by the metaverse object they are joined to.
#[derive(Default)]
struct Spellings {
    /// The connector with the lowest id.
    first: FxHashMap<MvId, Spelling>,
    /// The others, when a metaverse object has several on the MA.
    more: FxHashMap<MvId, Vec<Spelling>>,
    /// Connector id → the metaverse object it is noted under.
    mv_of: FxHashMap<CsId, MvId>,
}

impl Spellings {
    fn add(&mut self, s: Spelling, mv: MvId) {
        self.mv_of.insert(s.id, mv);
        match self.first.get_mut(&mv) {
            None => {
                self.first.insert(mv, s);
            }
            Some(first) if s.id < first.id => {
                let old = std::mem::replace(first, s);
                self.more.entry(mv).or_default().push(old);
            }
            Some(_) => self.more.entry(mv).or_default().push(s),
        }
    }

    fn remove(&mut self, id: CsId) {
        let Some(mv) = self.mv_of.remove(&id) else {
            return;
        };
        if self.first.get(&mv).is_some_and(|f| f.id == id) {
            self.first.remove(&mv);
            if let Some(mut rest) = self.more.remove(&mv) {
                rest.sort_unstable_by_key(|s| s.id);
                let mut rest = rest.into_iter();
                if let Some(next) = rest.next() {
                    self.first.insert(mv, next);
                }
                let rest: Vec<Spelling> = rest.collect();
                if !rest.is_empty() {
                    self.more.insert(mv, rest);
                }
            }
        } else if let Some(rest) = self.more.get_mut(&mv) {
            rest.retain(|s| s.id != id);
            if rest.is_empty() {
                self.more.remove(&mv);
            }
        }
    }
}

/// What a step read whole, per MA, and what it asked before.
#[derive(Default)]
pub(crate) struct Loaded {
    /// Per MA: anchor → the metaverse object its object is joined to
    /// (objects not joined are absent).
    anchors: FxHashMap<String, FxHashMap<String, MvId>>,
    spellings: FxHashMap<String, Spellings>,
    /// Per (MA, spellings?): objects asked of the store one by one, or
    /// `usize::MAX` once the MA was found too large to read whole.
    asked: FxHashMap<(String, bool), usize>,
    /// Per MA: how many objects it held when first counted.
    totals: FxHashMap<String, u64>,
}

impl Loaded {
    /// The metaverse object the object of `ma` with `anchor` is joined to,
    /// when `ma` was read whole (`Some(None)`: not there or not joined).
    pub(crate) fn anchor(&self, ma: &str, anchor: &str) -> Option<Option<MvId>> {
        Some(self.anchors.get(ma)?.get(anchor).copied())
    }

    /// A connector of `ma` joined to `mv` that a reference of connector
    /// `referrer` may name now (see `refs::resolve_out`), when `ma` was
    /// read whole (`Some(None)`: none).
    pub(crate) fn spelling(&self, ma: &str, mv: MvId, referrer: CsId) -> Option<Option<&Spelling>> {
        let s = self.spellings.get(ma)?;
        let ok = |x: &&Spelling| !x.adding || x.id < referrer;
        let found = s.first.get(&mv).filter(ok).or_else(|| {
            s.more
                .get(&mv)
                .and_then(|rest| rest.iter().filter(ok).min_by_key(|x| x.id))
        });
        Some(found)
    }

    /// The connector of `mv` on `ma` with the lowest id, whatever it waits
    /// for (an add not sent yet included).
    pub(crate) fn first_spelling(&self, ma: &str, mv: MvId) -> Option<&Spelling> {
        let s = self.spellings.get(ma)?;
        let more = s.more.get(&mv).into_iter().flatten();
        s.first
            .get(&mv)
            .into_iter()
            .chain(more)
            .min_by_key(|x| x.id)
    }

    /// Whether the connectors of `ma` were read whole.
    pub(crate) fn has_spellings(&self, ma: &str) -> bool {
        self.spellings.contains_key(ma)
    }

    /// Note that `n` objects of `ma` are asked of the store; read `ma`'s
    /// joins (or, `spellings`, its connectors) whole when that is now
    /// cheaper. Returns whether `ma` is read whole.
    pub(crate) fn ask(
        &mut self,
        txn: &mut dyn StoreTxn,
        ma: &str,
        spellings: bool,
        n: usize,
    ) -> StoreResult<bool> {
        let loaded = if spellings {
            self.spellings.contains_key(ma)
        } else {
            self.anchors.contains_key(ma)
        };
        if loaded {
            return Ok(true);
        }
        let asked = self.asked.entry((ma.to_owned(), spellings)).or_default();
        if *asked == usize::MAX {
            return Ok(false);
        }
        *asked = asked.saturating_add(n);
        if *asked < LOAD_AFTER {
            return Ok(false);
        }
        let total = match self.totals.get(ma) {
            Some(t) => *t,
            None => {
                let t = txn.cs_counts(ma)?.total;
                self.totals.insert(ma.to_owned(), t);
                t
            }
        };
        if total > LOAD_MAX || (*asked as u64).saturating_mul(LOAD_SHARE) < total {
            if total > LOAD_MAX {
                *asked = usize::MAX;
            }
            return Ok(false);
        }
        if spellings {
            let rows = txn.cs_spellings_of_ma(ma)?;
            // Sized once (growing a map of a million costs more than
            // reading it).
            let mut s = Spellings {
                first: FxHashMap::with_capacity_and_hasher(rows.len(), Default::default()),
                mv_of: FxHashMap::with_capacity_and_hasher(rows.len(), Default::default()),
                more: FxHashMap::default(),
            };
            for row in rows {
                if row.mv_id == 0 {
                    continue;
                }
                let adding = matches!(
                    row.pending,
                    Some((ExportKind::Add | ExportKind::DeleteAdd, _))
                );
                let renaming = !adding && matches!(row.pending, Some((_, Some(_))));
                let dn = match row.pending {
                    Some((_, Some(new_dn))) => new_dn,
                    _ => row.dn,
                };
                let spelling = Spelling {
                    id: row.id,
                    anchor: row.anchor,
                    dn,
                    adding,
                    renaming,
                };
                s.add(spelling, row.mv_id);
            }
            self.spellings.insert(ma.to_owned(), s);
        } else {
            let rows = txn.cs_joined_of_ma(ma)?;
            let mut map = FxHashMap::with_capacity_and_hasher(rows.len(), Default::default());
            map.extend(rows.into_iter().filter(|(_, mv)| *mv != 0));
            self.anchors.insert(ma.to_owned(), map);
        }
        Ok(true)
    }

    /// The object of `ma` with `anchor` was written: joined to `joined`
    /// now (`None`: not joined, or deleted).
    pub(crate) fn wrote_anchor(&mut self, ma: &str, anchor: &str, joined: Option<MvId>) {
        if let Some(m) = self.anchors.get_mut(ma) {
            match joined {
                Some(mv) => {
                    m.insert(anchor.to_owned(), mv);
                }
                None => {
                    m.remove(anchor);
                }
            }
        }
    }

    /// Connector `id` of `ma` was written: spelled `now`, joined to `mv`
    /// (`None`: deleted, or no longer joined).
    pub(crate) fn wrote_connector(&mut self, ma: &str, id: CsId, now: Option<(MvId, Spelling)>) {
        if let Some(s) = self.spellings.get_mut(ma) {
            s.remove(id);
            if let Some((mv, spelling)) = now {
                s.add(spelling, mv);
            }
        }
    }
}
