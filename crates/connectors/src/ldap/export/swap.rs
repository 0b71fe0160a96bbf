//! Renames of one batch that free one another's DNs: two people who swap
//! names (`cn=Cy Renamed` and `cn=Cy CycleBee`), or a chain (A takes B's
//! name while B takes a new one). Sent one by one in the batch's order,
//! the first would find the other entry still at its new DN and fail with
//! `already-exists`, and a swap would fail both ways in every export, for
//! ever (a review).
//!
//! So the renames whose new DN is the DN of another entry the same batch
//! renames away are sent in another order: the one moving away first (a
//! chain). A cycle (a swap, or A→B→C→A) is broken by moving one of its
//! entries aside first, to a DN under the same parent that no entry has
//! (its RDN's value followed by ` (autosync rename N)`, escaped), then the
//! others, then that one from there to its new DN. A new DN held by an
//! entry the batch does not rename away is a real clash: the change fails
//! with `already-exists` as before, nothing of it sent.
//!
//! The renames of one such set are sent when the first of them comes in
//! the batch; the outcomes of the others wait for their turn. Should the
//! last move of a cycle fail (another rename of it failed and still holds
//! the DN), the entry goes back to its own DN when that is still free;
//! otherwise it stays aside, and its change fails naming where it is:
//! found there by its anchor, or, with the DN as the anchor, at the DN the
//! failure gives (its old one now names the entry renamed to it).

use super::{Done, LdapExport, Stop};
use crate::ldap::config::Anchor;
use crate::ldap::dn::Dn;
use autosync_connector::ExportChange;
use autosync_model::ExportKind;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// Tries at a free DN to move an entry aside to (` (autosync rename 1)`,
/// ` 2`, ...): one taken is a leftover of an export cut short.
const ASIDE_TRIES: usize = 5;

/// One step of a set of renames, by index in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Move the entry out of the way of the rename that takes its DN.
    Aside(usize),
    /// The change itself (from where the entry was put aside, if it was).
    Move(usize),
}

/// The renames of a batch that wait for one another, each set's steps,
/// and the outcomes of those sent ahead of their turn.
#[derive(Default)]
pub(super) struct Swaps {
    /// (object type, anchor) of each rename of a set: its index.
    index: HashMap<(String, String), usize>,
    /// Index in the batch: its set.
    set_of: HashMap<usize, usize>,
    /// The sets not sent yet.
    sets: Vec<Option<Set>>,
    /// Outcomes of renames sent ahead of their turn, by index.
    results: HashMap<usize, Done<Option<String>>>,
}

/// A set's changes (copied: an outcome is given when the batch's loop
/// reaches each of them) and its steps.
pub(super) struct Set {
    changes: HashMap<usize, ExportChange>,
    steps: Vec<Step>,
}

/// Where an entry was put aside: its DN before, and the one it has.
struct Aside {
    from: String,
    at: String,
}

impl Swaps {
    pub fn new(batch: &[ExportChange]) -> Swaps {
        let mut swaps = Swaps::default();
        for steps in plan(batch) {
            let n = swaps.sets.len();
            let mut changes = HashMap::new();
            for step in &steps {
                let (Step::Aside(i) | Step::Move(i)) = *step;
                let Some(c) = batch.get(i) else { continue };
                swaps
                    .index
                    .insert((c.object_type.clone(), c.anchor.clone()), i);
                swaps.set_of.insert(i, n);
                changes.entry(i).or_insert_with(|| c.clone());
            }
            swaps.sets.push(Some(Set { changes, steps }));
        }
        swaps
    }

    /// The index of `c` when it is a rename of a set.
    fn index_of(&self, c: &ExportChange) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        self.index
            .get(&(c.object_type.clone(), c.anchor.clone()))
            .copied()
    }

    /// The outcomes of renames sent ahead of a turn the batch never
    /// reached (the connection failed first) into `done`: they are done
    /// in the directory, and told as answered.
    pub fn unreached(&mut self, done: &mut [Option<Done<Option<String>>>]) {
        for (i, r) in self.results.drain() {
            if let Some(slot) = done.get_mut(i)
                && slot.is_none()
            {
                *slot = Some(r);
            }
        }
    }
}

/// The renames of `batch` that must go in another order than the batch's,
/// as sets of steps (sets in the order of their first change). A rename
/// waits for the one whose entry is at its new DN (ignoring case and
/// escaping), when that one moves its entry away.
pub(super) fn plan(batch: &[ExportChange]) -> Vec<Vec<Step>> {
    // The renames that move an entry away from its DN, by that DN.
    let mut moving: Vec<(usize, Dn, Dn)> = Vec::new();
    let mut anchors: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, c) in batch.iter().enumerate() {
        if !matches!(c.kind, ExportKind::Update | ExportKind::Rename) {
            continue;
        }
        let Some(new_dn) = &c.new_dn else { continue };
        let (Ok(now), Ok(new)) = (Dn::parse(&c.dn), Dn::parse(new_dn)) else {
            continue;
        };
        if now.same(&new) || now.is_root() || new.is_root() {
            continue;
        }
        *anchors.entry((&c.object_type, &c.anchor)).or_default() += 1;
        moving.push((i, now, new));
    }
    // An object twice in a batch (never sent so) is left to the batch's
    // order: its outcomes are found by object.
    moving.retain(|(i, _, _)| {
        batch
            .get(*i)
            .is_some_and(|c| anchors.get(&(&c.object_type, &c.anchor)) == Some(&1))
    });
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, now, _) in &moving {
        at.entry(now.key_text()).or_insert(*i);
    }
    let blocker: HashMap<usize, usize> = moving
        .iter()
        .filter_map(|(i, _, new)| {
            at.get(&new.key_text())
                .filter(|j| *j != i)
                .map(|j| (*i, *j))
        })
        .collect();
    // Sets: the renames joined by waiting, in batch order.
    let mut root: HashMap<usize, usize> = HashMap::new();
    for (&i, &j) in &blocker {
        root.entry(i).or_insert(i);
        root.entry(j).or_insert(j);
        let (a, b) = (find(&root, i), find(&root, j));
        if a != b {
            root.insert(a.max(b), a.min(b));
        }
    }
    // A set's root is its first change: sets come in the batch's order.
    let mut sets: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for &i in root.keys() {
        sets.entry(find(&root, i)).or_default().insert(i);
    }
    sets.values().map(|set| steps(set, &blocker)).collect()
}

/// The first of the set of `i` (union-find, without path shortening: the
/// sets are small).
fn find(root: &HashMap<usize, usize>, mut i: usize) -> usize {
    while let Some(&r) = root.get(&i) {
        if r == i {
            break;
        }
        i = r;
    }
    i
}

/// The steps of one set: each rename after the one it waits for; when
/// all that are left wait in a cycle, the cycle's first (in the batch)
/// aside.
fn steps(set: &BTreeSet<usize>, blocker: &HashMap<usize, usize>) -> Vec<Step> {
    let mut waiting: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in set {
        if let Some(&j) = blocker.get(&i) {
            waiting.entry(j).or_default().push(i);
        }
    }
    let mut queue: VecDeque<usize> = set
        .iter()
        .copied()
        .filter(|i| !blocker.contains_key(i))
        .collect();
    let mut left = set.clone();
    let mut away: HashSet<usize> = HashSet::new();
    let mut out = Vec::new();
    // Each round puts one entry aside: at most one per member.
    for _ in 0..=set.len() {
        while let Some(i) = queue.pop_front() {
            out.push(Step::Move(i));
            left.remove(&i);
            if away.insert(i) {
                queue.extend(waiting.get(&i).into_iter().flatten());
            }
        }
        let Some(&first) = left.first() else { break };
        // Every rename left waits, through others, on a cycle.
        let mut seen: Vec<usize> = Vec::new();
        let mut at = first;
        while !seen.contains(&at) {
            seen.push(at);
            match blocker.get(&at) {
                Some(&j) => at = j,
                None => break,
            }
        }
        let cycle_from = seen.iter().position(|&i| i == at).unwrap_or(0);
        let Some(&aside) = seen.get(cycle_from..).and_then(|c| c.iter().min()) else {
            break;
        };
        out.push(Step::Aside(aside));
        away.insert(aside);
        queue.extend(waiting.get(&aside).into_iter().flatten());
    }
    out
}

impl LdapExport<'_> {
    /// An update with a new DN: sent now, or, for a rename of a set
    /// ([`Swaps`]), its set sent the first time one of them comes and its
    /// outcome given.
    pub(super) fn update_in_order(&mut self, c: &ExportChange) -> Done<Option<String>> {
        let Some(i) = self.swaps.index_of(c) else {
            return self.update(c);
        };
        if let Some(r) = self.swaps.results.remove(&i) {
            return r;
        }
        let set = self
            .swaps
            .set_of
            .get(&i)
            .copied()
            .and_then(|n| self.swaps.sets.get_mut(n))
            .and_then(Option::take);
        match set {
            Some(set) => self.send_set(set),
            None => return self.update(c),
        }
        match self.swaps.results.remove(&i) {
            Some(r) => r,
            None => self.update(c),
        }
    }

    fn send_set(&mut self, set: Set) {
        let mut aside: HashMap<usize, Aside> = HashMap::new();
        for step in set.steps {
            let (Step::Aside(i) | Step::Move(i)) = step;
            let Some(c) = set.changes.get(&i) else {
                continue;
            };
            if self.swaps.results.contains_key(&i) {
                continue;
            }
            match step {
                Step::Aside(_) => match self.put_aside(c) {
                    Ok(Some(a)) => {
                        aside.insert(i, a);
                    }
                    // Already at its new DN (a replay): its turn renames
                    // nothing.
                    Ok(None) => {}
                    Err(e) => {
                        self.swaps.results.insert(i, Err(e));
                    }
                },
                Step::Move(_) => {
                    let r = match aside.remove(&i) {
                        Some(a) => self.rename_from_aside(c, &a),
                        None => self.update(c),
                    };
                    self.swaps.results.insert(i, r);
                }
            }
        }
    }

    /// Move the entry of `c` out of the way, to a free DN under its
    /// parent; `None` when it is at its new DN already. What would refuse
    /// the change (an unknown type, a new DN out of scope, an anchor
    /// written anew) refuses it now, the entry left where it is.
    fn put_aside(&mut self, c: &ExportChange) -> Done<Option<Aside>> {
        let Some(new_dn) = c.new_dn.as_deref() else {
            return Ok(None);
        };
        self.update_mods(c)?;
        let new = self.in_scope(new_dn)?;
        let Some(dn) = self.locate(c)? else {
            // Its turn tells it is not found.
            return Ok(None);
        };
        let now = Dn::parse(&dn).map_err(|e| ("invalid-dn", format!("`{dn}`: {e}")))?;
        if now.same(&new) {
            return Ok(None);
        }
        let at = self.free_aside(&now)?;
        self.rename(&dn, &at)?;
        tracing::debug!(ma = %self.s.ma, from = %dn, at = %at, "entry moved aside for a swap of DNs");
        Ok(Some(Aside { from: dn, at }))
    }

    /// A DN under the parent of `now` that no entry has: its RDN's first
    /// value followed by ` (autosync rename N)`, its other values kept.
    fn free_aside(&mut self, now: &Dn) -> Done<String> {
        let Some(rdn) = now.rdn() else {
            return Err(Stop::Failed(("invalid-dn", format!("`{now}` has no RDN"))));
        };
        let parent = now.parent_text();
        for n in 1..=ASIDE_TRIES {
            let avas: Vec<String> = rdn
                .avas
                .iter()
                .enumerate()
                .map(|(k, (a, v))| {
                    let v = if k == 0 {
                        format!("{v} (autosync rename {n})")
                    } else {
                        v.clone()
                    };
                    format!("{a}={}", ldap3::dn_escape(v))
                })
                .collect();
            let at = format!("{},{parent}", avas.join("+"));
            if !self.exists(&at)? {
                return Ok(at);
            }
        }
        Err(Stop::Failed((
            "already-exists",
            format!(
                "`{now}` is renamed in a cycle of renames (a swap of names) and must first be moved aside, but entries are at each of the {ASIDE_TRIES} DNs it could go to under `{parent}` (left by an export cut short?): nothing of this change was sent"
            ),
        )))
    }

    /// The change of an entry put aside, from there: its attributes and
    /// the move to its new DN. A refusal moves it back to its DN when that
    /// is free; otherwise the failure says where it is.
    fn rename_from_aside(&mut self, c: &ExportChange, a: &Aside) -> Done<Option<String>> {
        let (kind, why) = match self.finish_aside(c, &a.at) {
            Err(Stop::Failed(f)) => f,
            done => return done,
        };
        let back = match self.exists(&a.from) {
            Ok(false) => self.rename(&a.at, &a.from).is_ok(),
            _ => false,
        };
        let (at, from) = (&a.at, &a.from);
        let now = if back {
            format!("it was moved back to `{from}`")
        } else if self.s.anchor == Anchor::Dn {
            format!(
                "it stays there: its DN, its anchor, is `{at}` now (`{from}` is the entry renamed to it)"
            )
        } else {
            format!("it stays there, found by its `{}`", self.s.anchor.name())
        };
        Err(Stop::Failed((
            kind,
            format!(
                "{why}; the entry had been moved aside from `{from}` to `{at}` to free its DN for another rename of the batch (a cycle of renames, as in a swap of names), and {now}"
            ),
        )))
    }

    /// The change of an entry put aside at `at`: its new DN must be free
    /// (the rename that frees it went), then its attributes and the move.
    fn finish_aside(&mut self, c: &ExportChange, at: &str) -> Done<Option<String>> {
        let Some(new_dn) = c.new_dn.as_deref() else {
            return Ok(None);
        };
        if self.exists(new_dn)? {
            return Err(Stop::Failed((
                "already-exists",
                format!(
                    "rename `{}` to `{new_dn}`: another entry is still there (its own rename in this batch did not go)",
                    c.dn
                ),
            )));
        }
        let (replace, by_value) = self.update_mods(c)?;
        if !replace.is_empty() || !by_value.is_empty() {
            let one = replace.iter().chain(&by_value).cloned().collect();
            let r = self.session.modify(at, one);
            self.update_answered(at, replace, by_value, r)?;
        }
        self.rename(at, new_dn)
    }
}

#[cfg(test)]
mod tests {
    use super::{Step, plan};
    use autosync_connector::ExportChange;
    use autosync_model::ExportKind;

    fn rename(anchor: &str, dn: &str, new_dn: &str) -> ExportChange {
        ExportChange {
            object_type: "person".into(),
            anchor: anchor.into(),
            dn: format!("cn={dn},ou=p,dc=x"),
            kind: ExportKind::Rename,
            changes: Default::default(),
            values: Default::default(),
            new_dn: Some(format!("cn={new_dn},ou=p,dc=x")),
        }
    }

    #[test]
    fn a_chain_should_go_from_its_end_and_a_cycle_should_put_one_aside() {
        // A takes B's name, B takes C's, C a new one; D is alone.
        let chain = [
            rename("a", "A", "b"),
            rename("b", "B", "C"),
            rename("c", "C", "new"),
            rename("d", "D", "E"),
        ];
        assert_eq!(
            plan(&chain),
            [vec![Step::Move(2), Step::Move(1), Step::Move(0)]]
        );
        // A swap, and a three-cycle with one hanging on it.
        let cycles = [
            rename("a", "A", "B"),
            rename("x", "X", "Y"),
            rename("b", "B", "A"),
            rename("y", "Y", "Z"),
            rename("z", "Z", "X"),
            rename("w", "W", "z"),
        ];
        assert_eq!(
            plan(&cycles),
            [
                vec![Step::Aside(0), Step::Move(2), Step::Move(0)],
                vec![
                    Step::Aside(1),
                    Step::Move(4),
                    Step::Move(3),
                    Step::Move(5),
                    Step::Move(1)
                ],
            ]
        );
        // A clash with an entry the batch does not rename away: no plan.
        assert!(plan(&[rename("a", "A", "Q")]).is_empty());
    }
}
