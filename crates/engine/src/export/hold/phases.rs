//! The phases a page is sent in: each change after the adds and renames
//! of the page whose names it gives, and renames onto one another's DNs
//! together.

use super::{Key, PHASES, gives, leaves};
use autosync_connector::ExportChange;
use rustc_hash::FxHashMap;

/// Which change of a page gives each name and which takes one away, and
/// each change's phase.
pub(super) struct Plan {
    /// The adds of the page, by the names they give.
    pub giver: FxHashMap<Key, usize>,
    /// The renames of the page, by the DN they take from their object
    /// (the changes naming it wait for them).
    pub taker: FxHashMap<Key, usize>,
    /// Per change of the page, its phase (from 0).
    pub phase: Vec<usize>,
}

impl Plan {
    /// The names `changes` give and take away, every change in phase 0.
    pub fn new(changes: &[ExportChange]) -> Plan {
        let mut giver: FxHashMap<Key, usize> = FxHashMap::default();
        let mut taker: FxHashMap<Key, usize> = FxHashMap::default();
        for (i, c) in changes.iter().enumerate() {
            for k in gives(c) {
                giver.insert(k, i);
            }
            if let Some(k) = leaves(c) {
                taker.insert(k, i);
            }
        }
        Plan {
            giver,
            taker,
            phase: vec![0; changes.len()],
        }
    }

    /// Each change's phase: after every change of the page it names
    /// (`names`, per change), but renames onto one another's DNs in one
    /// phase whatever they name (see [`together`]). A chain longer than
    /// [`PHASES`] ends in the last phase.
    pub fn order(&mut self, changes: &[ExportChange], names: &[Vec<Key>]) {
        let set = together(changes, &self.taker);
        let of = |j: usize| set.get(j).copied().unwrap_or(j);
        // Per set (by its first change): its phase.
        let mut phase = vec![0usize; changes.len()];
        for _ in 0..PHASES {
            let mut moved = false;
            for (j, ks) in names.iter().enumerate() {
                let sj = of(j);
                for k in ks {
                    if let Some(&i) = self.giver.get(k).or_else(|| self.taker.get(k))
                        && of(i) != sj
                        && phase.get(sj) <= phase.get(of(i))
                        && let Some(after) = phase.get(of(i)).map(|p| p + 1).filter(|p| *p < PHASES)
                        && let Some(pj) = phase.get_mut(sj)
                    {
                        *pj = after;
                        moved = true;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        self.phase = (0..changes.len())
            .map(|j| phase.get(of(j)).copied().unwrap_or(0))
            .collect();
    }

    /// The last phase.
    pub fn last(&self) -> usize {
        self.phase.iter().copied().max().unwrap_or(0)
    }

    /// Whether name `k` is one another change than `j` gives or takes
    /// away in phase `p` or a later one: a value spelling it must not go
    /// in phase `p`.
    pub fn pending(&self, k: &Key, j: usize, p: usize) -> bool {
        let pending = |i: &usize| *i != j && self.phase.get(*i) >= Some(&p);
        self.giver.get(k).is_some_and(pending) || self.taker.get(k).is_some_and(pending)
    }
}

/// Per change of a page, the first change of its set of renames onto one
/// another's DNs (itself when it is in none): a rename whose new DN is
/// the DN another rename of the page takes its object from, joined with
/// it (a chain, a swap, a cycle). The connector orders such renames
/// within one batch (a swap needs one entry moved aside first); sent in
/// two phases, the first finds the other entry still at its new DN and
/// fails, then the other fails the same way, in every export (a review:
/// two people who swap names, one naming the other as manager). A value
/// one of them gives by the DN another of the set leaves is held in
/// their phase, and sent by a later one (see `Held::again`).
fn together(changes: &[ExportChange], taker: &FxHashMap<Key, usize>) -> Vec<usize> {
    let mut first: Vec<usize> = (0..changes.len()).collect();
    if taker.len() < 2 {
        return first;
    }
    let root = |first: &[usize], mut i: usize| {
        while let Some(&f) = first.get(i) {
            if f == i {
                break;
            }
            i = f;
        }
        i
    };
    for (j, c) in changes.iter().enumerate() {
        let Some(new) = c.new_dn.as_ref().filter(|_| leaves(c).is_some()) else {
            continue;
        };
        let Some(&i) = taker.get(&Key::Dn(autosync_model::dn::folded(new))) else {
            continue;
        };
        let (a, b) = (root(&first, i), root(&first, j));
        if let Some(slot) = first.get_mut(a.max(b)) {
            *slot = a.min(b);
        }
    }
    (0..changes.len()).map(|j| root(&first, j)).collect()
}
