//! References an export holds back. A sync spells a reference to a
//! connector of the same MA whose add is still to be sent when that change
//! comes first in the export (ids in order). Should the add
//! fail, the name it gives belongs to no object, or to another one (an
//! existing account with that user name): the reference must not go. So a
//! page is sent in phases, each change after the adds of the same page
//! that its references name, and a reference value that names an add that
//! failed, or one not sent yet, is left out of what
//! is sent and kept pending for a later export: the target is never told
//! a name its system does not give the object meant. A change naming an
//! object by the DN it had before a rename of this export goes after the
//! rename, and names it by its new DN once the rename went (the old one
//! names no entry now); by the old one, should the rename fail. Renames
//! onto one another's DNs (a chain, two people who swap names) go in one
//! phase whatever they name, for the connector to order them in its
//! batch. A value one of them gives by the DN another of them leaves
//! cannot go with them (once they went, it names another entry): held,
//! then sent by the next phase by the DN that rename gave (see
//! `Held::again`); left pending, an export before any sync would send it
//! as it was. Refused there, it stays pending.

use autosync_connector::{ConnectorError, ExportChange, ExportOutcome, ExportSession};
use autosync_model::{ExportKind, PendingExport, RefBy, Value};
use rustc_hash::{FxHashMap, FxHashSet};

/// At most this many phases a page (a chain of reports past it waits for
/// the next export).
const PHASES: usize = 8;

/// How an object is named: by anchor (exactly) or by DN (ignoring case).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Anchor(String),
    Dn(String),
}

impl Key {
    pub(crate) fn of(by: RefBy, v: &Value) -> Option<Key> {
        match v {
            Value::Multi(_) | Value::Reference(_) => None,
            v if v.is_empty() => None,
            v => Some(match by {
                RefBy::Anchor => Key::Anchor(v.to_text()),
                RefBy::Dn => Key::Dn(autosync_model::dn::folded(&v.to_text())),
            }),
        }
    }
}

/// The names a change gives its object before the system has it under
/// them: an add's anchor and DN. Not a rename's new DN: a sync spells a
/// renamed object by the DN it has until its rename is sent, so a value
/// that is a rename's new DN names another object (the one that has it,
/// should the rename fail for it).
fn gives(c: &ExportChange) -> Vec<Key> {
    let fold = |dn: &str| Key::Dn(autosync_model::dn::folded(dn));
    match c.kind {
        ExportKind::Add | ExportKind::DeleteAdd => {
            vec![Key::Anchor(c.anchor.clone()), fold(&c.dn)]
        }
        _ => Vec::new(),
    }
}

/// The DN a rename takes from its object (the one it has until the rename
/// is sent, which a sync spells it by).
fn leaves(c: &ExportChange) -> Option<Key> {
    match c.kind {
        ExportKind::Add | ExportKind::DeleteAdd | ExportKind::Delete => None,
        _ => c
            .new_dn
            .as_ref()
            .map(|_| Key::Dn(autosync_model::dn::folded(&c.dn))),
    }
}

/// A page the connection failed in: why, and per change of the page its
/// outcome when the system answered it before (the rest stays pending).
#[derive(Debug)]
pub(super) struct Cut {
    pub error: ConnectorError,
    pub answered: Vec<Option<ExportOutcome>>,
    pub held: Vec<Option<Held>>,
}

impl Cut {
    /// A cut of a page sent in one batch.
    fn whole(error: ConnectorError, session: &mut dyn ExportSession, len: usize) -> Cut {
        let mut answered = session.answered_before_failure();
        answered.resize(len, None);
        Cut {
            error,
            answered,
            held: Vec::new(),
        }
    }
}

/// An export's references to its own MA's objects, and the names whose
/// add failed in it.
pub(super) struct Holds {
    /// The attributes whose values name objects of this MA, and how.
    attrs: Vec<(String, RefBy)>,
    failed: FxHashSet<Key>,
    /// The DNs of adds that failed while other objects of the MA have
    /// that DN (their anchors): a value newly given to a referrer is held
    /// unless the referrer's metaverse object refers to one of those (a
    /// report of a namesake whose add was refused must not get the other
    /// as manager; a group of both keeps the one there); one a
    /// referrer's whole list keeps stays (its membership).
    contested: FxHashMap<Key, Vec<String>>,
    /// The DNs renames of this export took from their objects, with the
    /// DN each gave its object instead.
    moved: FxHashMap<Key, String>,
}

/// The anchors of the joined objects of the MA other than the one with
/// anchor `anchor` that have DN `dn` (folded) in the system already (not
/// an add still to be sent): a value spelling it names one of them.
pub(super) type Taken<'a> = dyn FnMut(&str, &str) -> Vec<String> + 'a;

/// Whether the metaverse object of the MA's object with anchor
/// `referrer` refers, in what the export flow into CS attribute `attr`
/// reads, to the metaverse object of one of the MA's objects `anchors`.
pub(super) type Refers<'a> = dyn FnMut(&str, &str, &[String]) -> bool + 'a;

impl Holds {
    pub fn new(attrs: Vec<(String, RefBy)>) -> Holds {
        Holds {
            attrs,
            failed: FxHashSet::default(),
            contested: FxHashMap::default(),
            moved: FxHashMap::default(),
        }
    }

    /// After an export cut short: the values of a pending export not sent
    /// that name the DN a rename of this export took away name its new
    /// DN (as they would have gone), and a DN then added and removed as one
    /// entry goes. Sent as they were by the next export (a retry, which
    /// runs before any sync), they named an entry no longer there, and
    /// a member left its group (a review). `true` when anything changed.
    pub fn respell(&self, p: &mut PendingExport) -> bool {
        if self.moved.is_empty() {
            return false;
        }
        let mut changed = false;
        for (attr, by) in &self.attrs {
            if *by != RefBy::Dn {
                continue;
            }
            let mut swap = |v: &mut Value| {
                if let Some(new) = Key::of(*by, v).and_then(|k| self.moved.get(&k)) {
                    *v = Value::String(new.clone());
                    changed = true;
                }
            };
            match p.changes.get_mut(attr) {
                Some(Some(Value::Multi(vs))) => vs.iter_mut().for_each(&mut swap),
                Some(Some(v)) => swap(v),
                _ => {}
            }
            if let Some(d) = p.values.get_mut(attr) {
                d.add.iter_mut().for_each(&mut swap);
                if !d.add.is_empty()
                    && !d.remove.is_empty()
                    && !crate::sync::cancel_same_dns(d).is_empty()
                {
                    changed = true;
                }
                if d.is_empty() {
                    p.values.remove(attr);
                }
            }
        }
        changed
    }

    /// Whether a rename of this export took a DN away.
    pub fn moved_any(&self) -> bool {
        !self.moved.is_empty()
    }

    /// The names change `c`'s references give, with where each is.
    fn names(&self, c: &ExportChange) -> Vec<Key> {
        let mut out = Vec::new();
        for (attr, by) in &self.attrs {
            match c.changes.get(attr) {
                Some(Some(Value::Multi(vs))) => {
                    out.extend(vs.iter().filter_map(|v| Key::of(*by, v)));
                }
                Some(Some(v)) => out.extend(Key::of(*by, v)),
                _ => {}
            }
            if let Some(d) = c.values.get(attr) {
                out.extend(d.add.iter().filter_map(|v| Key::of(*by, v)));
            }
        }
        out
    }

    /// Note the outcome of change `j` of the page: the names a failed add
    /// would have given are held from now on. When another object has the
    /// name (an add of this page that went, or one the system had
    /// already: two people given one DN, the second's add refused), a
    /// value is held only where it is new to its referrer (a manager, a
    /// value-level member add, a new group's list: it may mean the one
    /// refused, and would name the other); a list an update replaces
    /// whole keeps it (the first keeps its memberships). `went`: the adds of the page that
    /// went so far (those of earlier pages are the system's by the time
    /// they are asked for, or held until the next export). Names are
    /// worked out only when an add failed, or one that failed before may
    /// now have gone.
    fn outcome(
        &mut self,
        changes: &[ExportChange],
        j: usize,
        o: &ExportOutcome,
        went: &mut Vec<(usize, Option<String>)>,
        taken: &mut Taken<'_>,
    ) {
        let Some(c) = changes.get(j) else {
            return;
        };
        if let Some(k) = leaves(c) {
            // A rename that went: its old DN names nothing now, the new
            // one the object. One that failed leaves the object where it
            // is, and its name good.
            if !matches!(o, ExportOutcome::Failed { .. })
                && let Some(new) = &c.new_dn
            {
                self.moved.insert(k, new.clone());
            }
            return;
        }
        if !matches!(c.kind, ExportKind::Add | ExportKind::DeleteAdd) {
            return;
        }
        if !matches!(o, ExportOutcome::Failed { .. }) {
            if !self.failed.is_empty() || !self.contested.is_empty() {
                for k in gives(c) {
                    self.failed.remove(&k);
                    self.contested.remove(&k);
                }
            }
            // The anchor the system gave it, if any: the store has one
            // or the other, as the outcome is recorded meanwhile.
            let given = match o {
                ExportOutcome::Applied { anchor } => anchor.clone(),
                _ => None,
            };
            went.push((j, given));
            return;
        }
        for k in gives(c) {
            let others: Vec<String> = match &k {
                Key::Dn(dn) => went
                    .iter()
                    .filter_map(|(i, given)| Some((changes.get(*i)?, given)))
                    .filter(|(g, _)| gives(g).contains(&k))
                    .flat_map(|(g, given)| std::iter::once(g.anchor.clone()).chain(given.clone()))
                    .chain(taken(dn, &c.anchor))
                    .collect(),
                Key::Anchor(_) => Vec::new(),
            };
            if others.is_empty() {
                self.failed.insert(k);
            } else {
                self.contested.insert(k, others);
            }
        }
    }

    /// Leave out of change `j` of the page (or a later phase's update of
    /// its object) the reference values phase `p` must not send, and
    /// spell those a rename of this export moved by their new DN: what
    /// it held back, if anything.
    fn strip_for(
        &self,
        c: &mut ExportChange,
        j: usize,
        p: usize,
        plan: &Plan,
        refers: &mut Refers<'_>,
    ) -> Option<Held> {
        // A name this change must not send yet: one whose add failed, or
        // one the page gives or takes away in this phase or a later one
        // (another change's). One a rename of this export took away goes
        // as the new DN.
        let hold = |k: &Key| self.failed.contains(k) || plan.pending(k, j, p);
        // Contested names this change's object refers to.
        let mut meant: FxHashSet<(&str, Key)> = FxHashSet::default();
        if !self.contested.is_empty() {
            for (attr, by) in &self.attrs {
                for v in values_of(c, attr) {
                    let Some(k) = Key::of(*by, v) else {
                        continue;
                    };
                    if let Some(others) = self.contested.get(&k)
                        && !meant.contains(&(attr.as_str(), k.clone()))
                        && refers(&c.anchor, attr, others)
                    {
                        meant.insert((attr.as_str(), k));
                    }
                }
            }
        }
        let new = |attr: &str, k: &Key| {
            hold(k) || self.contested.contains_key(k) && !meant.contains(&(attr, k.clone()))
        };
        let renamed = |k: &Key| self.moved.get(k).cloned();
        strip(c, &self.attrs, &new, &renamed)
    }

    /// Send `changes` (a page, in id order) in phases; returns one outcome
    /// per change in order (fewer when the connector answered short), and
    /// what each change held back. `taken`: whether another object has a
    /// DN in the system already (asked when an add of that DN fails).
    pub fn apply(
        &mut self,
        session: &mut dyn ExportSession,
        changes: &mut [ExportChange],
        taken: &mut Taken<'_>,
        refers: &mut Refers<'_>,
    ) -> Result<(Vec<ExportOutcome>, Vec<Option<Held>>), Cut> {
        let whole = |session: &mut dyn ExportSession, changes: &[ExportChange]| {
            session
                .apply(changes)
                .map(|o| (o, Vec::new()))
                .map_err(|e| Cut::whole(e, session, changes.len()))
        };
        if self.attrs.is_empty() {
            return whole(session, changes);
        }
        let mut plan = Plan::new(changes);
        if plan.giver.is_empty()
            && plan.taker.is_empty()
            && self.failed.is_empty()
            && self.contested.is_empty()
            && self.moved.is_empty()
        {
            return whole(session, changes);
        }
        let names: Vec<Vec<Key>> = changes.iter().map(|c| self.names(c)).collect();
        plan.order(changes, &names);
        let last = plan.last();
        let mut went: Vec<(usize, Option<String>)> = Vec::new();
        let mut outcomes: Vec<Option<ExportOutcome>> = changes.iter().map(|_| None).collect();
        let mut held: Vec<Option<Held>> = changes.iter().map(|_| None).collect();
        // Updates sending what a change of the phase before held back
        // and a rename of that phase made sendable (by change).
        let mut again: Vec<(usize, ExportChange)> = Vec::new();
        // One more phase than the page's, for what its last one held.
        for p in 0..=last + 1 {
            let these: Vec<usize> = (0..changes.len())
                .filter(|j| plan.phase.get(*j) == Some(&p))
                .collect();
            let mut batch: Vec<ExportChange> = Vec::with_capacity(these.len());
            let mut sent: Vec<usize> = Vec::with_capacity(these.len());
            for &j in &these {
                let Some(c) = changes.get_mut(j) else {
                    continue;
                };
                let h = self.strip_for(c, j, p, &plan, refers);
                if h.as_ref().is_some_and(|h| h.empty) {
                    if let Some(o) = outcomes.get_mut(j) {
                        *o = Some(ExportOutcome::Applied { anchor: None });
                    }
                } else {
                    // Moved, not copied (a group's add may hold half a
                    // million members), and put back once sent.
                    batch.push(std::mem::replace(c, placeholder()));
                    sent.push(j);
                }
                if let Some(slot) = held.get_mut(j) {
                    *slot = h;
                }
            }
            // After the page's own changes: an update of an object whose
            // change is in the batch goes after it.
            let mut resent: Vec<(usize, Option<Held>)> = Vec::new();
            for (j, mut u) in std::mem::take(&mut again) {
                let h = self.strip_for(&mut u, j, p, &plan, refers);
                if !h.as_ref().is_some_and(|h| h.empty) {
                    batch.push(u);
                    resent.push((j, h));
                }
            }
            if batch.is_empty() {
                continue;
            }
            let answered = session.apply(&batch);
            let sent_len = batch.len();
            let mut batch = batch.into_iter();
            for (&j, c) in sent.iter().zip(batch.by_ref()) {
                if let Some(slot) = changes.get_mut(j) {
                    *slot = c;
                }
            }
            let answered = match answered {
                Ok(a) => a,
                Err(error) => {
                    // What the system answered of this phase is done too
                    // (of an update sending what was held: it stays
                    // held, and goes again).
                    let partial = session.answered_before_failure();
                    for (&j, o) in sent.iter().zip(partial) {
                        if let (Some(o), Some(slot)) = (o, outcomes.get_mut(j)) {
                            *slot = Some(o);
                        }
                    }
                    return Err(Cut {
                        error,
                        answered: outcomes,
                        held,
                    });
                }
            };
            let short = answered.len() != sent_len;
            let mut answered = answered.into_iter();
            for (&j, o) in sent.iter().zip(answered.by_ref()) {
                self.outcome(changes, j, &o, &mut went, taken);
                if let Some(slot) = outcomes.get_mut(j) {
                    *slot = Some(o);
                }
            }
            for ((j, h), (u, o)) in resent.into_iter().zip(batch.zip(answered)) {
                self.resent(changes, &mut held, j, u, h, o);
            }
            if short {
                // The caller reports the connector's short answer.
                return Ok((outcomes.into_iter().map_while(|o| o).collect(), held));
            }
            // What this phase's changes held back that one of its
            // renames made sendable goes in the next phase.
            if !self.moved.is_empty() {
                for &j in &sent {
                    if let (Some(Some(h)), Some(c), Some(Some(o))) =
                        (held.get(j), changes.get(j), outcomes.get(j))
                        && let Some(u) = h.again(c, o, &self.attrs, &|k| self.moved.contains_key(k))
                    {
                        again.push((j, u));
                    }
                }
            }
        }
        Ok((outcomes.into_iter().flatten().collect(), held))
    }

    /// The answer `o` to update `u`, which sent what change `j` of the
    /// page held back (holding back `h` of it still): what went is no
    /// longer held, and the page's change says it went (the history).
    /// Refused, it stays held, pending for the next export.
    fn resent(
        &self,
        changes: &mut [ExportChange],
        held: &mut [Option<Held>],
        j: usize,
        u: ExportChange,
        h: Option<Held>,
        o: ExportOutcome,
    ) {
        if let ExportOutcome::Failed { error_type, detail } = &o {
            tracing::warn!(
                dn = %u.dn,
                error_type = %error_type,
                detail = %detail,
                "the references held back while renames went were refused; they stay pending"
            );
            return;
        }
        let (Some(Some(before)), Some(c)) = (held.get_mut(j), changes.get_mut(j)) else {
            return;
        };
        before.resent(&u, h);
        for (attr, v) in u.changes {
            c.changes.insert(attr, v);
        }
        for (attr, d) in u.values {
            c.values.entry(attr).or_default().add.extend(d.add);
        }
    }
}

/// What stands in a page's slot while its change is in a phase's batch.
fn placeholder() -> ExportChange {
    ExportChange {
        object_type: String::new(),
        anchor: String::new(),
        dn: String::new(),
        kind: ExportKind::Update,
        changes: Default::default(),
        values: Default::default(),
        new_dn: None,
    }
}

mod phases;
mod strip;
use phases::Plan;
pub(super) use strip::Held;
use strip::{strip, values_of};

#[cfg(test)]
mod swap_tests;
#[cfg(test)]
mod tests;
