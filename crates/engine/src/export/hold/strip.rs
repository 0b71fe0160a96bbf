//! What a change holds back (`Held`) and how its reference values are
//! left out of what is sent, or re-spelled by the DN a rename of the
//! export gave (`strip`).

use super::Key;
use autosync_connector::{ExportChange, ExportOutcome};
use autosync_model::{ExportKind, PendingExport, RefBy, Value, ValueDelta};

/// What a change held back: it stays pending, for a later export.
#[derive(Debug, Default, PartialEq)]
pub(in crate::export) struct Held {
    /// Whole attributes: what was sent (`None`: not sent at all) and what
    /// the pending export holds.
    whole: Vec<(String, Option<Option<Value>>, Option<Value>)>,
    /// Values sent under the new DN of an object a rename of this export
    /// moved: (attribute, the old DN as the value had it, the new DN).
    renamed: Vec<(String, Value, Value)>,
    /// Value-level additions held back, per attribute.
    added: Vec<(String, Vec<Value>)>,
    /// Values added and removed by one change that name one entry (a DN
    /// in another case, or the old DN of a rename of this export once
    /// spelled as the new one): neither was sent. Per attribute, the
    /// values as the pending export holds them (after `renamed`).
    cancelled: Vec<(String, ValueDelta)>,
    /// Whole attributes held back that a later phase sent in full (see
    /// [`Held::again`]): the value the system has.
    later_whole: Vec<(String, Option<Value>)>,
    /// Value-level additions held back that a later phase sent: as the
    /// pending export holds them (after `renamed`), and as sent.
    later_added: Vec<(String, Value, Value)>,
    /// Nothing was left to send: the change was not sent.
    pub empty: bool,
}

impl Held {
    /// Every value of the change was held back (nothing was sent): its
    /// pending export waits as it is. Not so when nothing was left to
    /// send because what it added and removed named one entry: it is
    /// done.
    pub fn all(&self) -> bool {
        self.empty && (!self.whole.is_empty() || !self.added.is_empty())
    }

    /// The values held back.
    pub fn count(&self) -> u64 {
        let whole = self.whole.iter().map(|(_, sent, held)| {
            let n = |v: &Option<Value>| match v {
                Some(Value::Multi(vs)) => vs.len(),
                Some(_) => 1,
                None => 0,
            };
            n(held).saturating_sub(sent.as_ref().map_or(0, n)).max(1) as u64
        });
        let added = self.added.iter().map(|(_, vs)| vs.len() as u64);
        whole.sum::<u64>() + added.sum::<u64>()
    }

    /// Split what was sent (`done`, the pending export as it was read)
    /// into what the system now has, left in `done`, and what is still to
    /// be sent (returned as a pending update; `None`: nothing).
    pub fn split(&self, done: &mut PendingExport) -> Option<PendingExport> {
        // What went under a new DN is what the system has: each value
        // once (two renames that swap DNs give a list both ways).
        let mut attrs: Vec<&String> = self.renamed.iter().map(|(a, ..)| a).collect();
        attrs.dedup();
        for attr in attrs {
            let swap = |v: &mut Value| {
                if let Some((_, _, new)) = self
                    .renamed
                    .iter()
                    .find(|(a, old, _)| a == attr && old == v)
                {
                    *v = new.clone();
                }
            };
            match done.changes.get_mut(attr) {
                Some(Some(Value::Multi(vs))) => vs.iter_mut().for_each(swap),
                Some(Some(v)) => swap(v),
                _ => {}
            }
            if let Some(d) = done.values.get_mut(attr) {
                d.add.iter_mut().for_each(swap);
            }
        }
        // What a later phase sent of what was held.
        for (attr, v) in &self.later_whole {
            done.changes.insert(attr.clone(), v.clone());
        }
        for (attr, old, new) in &self.later_added {
            if let Some(d) = done.values.get_mut(attr)
                && let Some(v) = d.add.iter_mut().find(|v| *v == old)
            {
                *v = new.clone();
            }
        }
        // Not sent, and the system holds what it held.
        for (attr, gone) in &self.cancelled {
            if let Some(d) = done.values.get_mut(attr) {
                let first = |vs: &mut Vec<Value>, of: &[Value]| {
                    for v in of {
                        if let Some(i) = vs.iter().position(|x| x == v) {
                            vs.remove(i);
                        }
                    }
                };
                first(&mut d.add, &gone.add);
                first(&mut d.remove, &gone.remove);
                if d.is_empty() {
                    done.values.remove(attr);
                }
            }
        }
        if self.whole.is_empty() && self.added.is_empty() {
            return None;
        }
        let mut kept = PendingExport {
            kind: ExportKind::Update,
            changes: Default::default(),
            new_dn: None,
            values: Default::default(),
        };
        for (attr, sent, held) in &self.whole {
            match sent {
                Some(v) => {
                    done.changes.insert(attr.clone(), v.clone());
                }
                None => {
                    done.changes.remove(attr);
                }
            }
            kept.changes.insert(attr.clone(), held.clone());
        }
        for (attr, vs) in &self.added {
            if let Some(d) = done.values.get_mut(attr) {
                d.add.retain(|v| !vs.contains(v));
                if d.is_empty() {
                    done.values.remove(attr);
                }
            }
            kept.values.insert(
                attr.clone(),
                ValueDelta {
                    add: vs.clone(),
                    remove: Vec::new(),
                },
            );
        }
        Some(kept)
    }
}

impl Held {
    /// An update of the object of change `c` (answered `o`) sending what
    /// it held back that names a DN `moved` says a rename of the export
    /// took away (the rename went: its object has a new DN, which the
    /// update's phase spells): each whole attribute holding such a value
    /// as the pending export has it, and the value-level additions of an
    /// attribute with one. A phase holds back a value naming the DN
    /// another rename of that phase leaves (two people who swap names,
    /// each the other's manager); the next one sends it, and no export
    /// leaves pending a DN a rename moved (an export before any sync
    /// would send it, naming the entry renamed to it). `None`: nothing to
    /// send, or `c` failed.
    pub fn again(
        &self,
        c: &ExportChange,
        o: &ExportOutcome,
        attrs: &[(String, RefBy)],
        moved: &dyn Fn(&Key) -> bool,
    ) -> Option<ExportChange> {
        let anchor = match o {
            ExportOutcome::Failed { .. } => return None,
            ExportOutcome::Applied { anchor: Some(a) } => a.clone(),
            _ => c.anchor.clone(),
        };
        let by = |attr: &str| attrs.iter().find(|(a, _)| a == attr).map(|(_, by)| *by);
        let sendable = |attr: &str, v: &Value| {
            by(attr)
                .and_then(|by| Key::of(by, v))
                .is_some_and(|k| moved(&k))
        };
        let mut u = ExportChange {
            object_type: c.object_type.clone(),
            anchor,
            dn: match (&c.kind, &c.new_dn) {
                (ExportKind::Add | ExportKind::DeleteAdd, _) | (_, None) => c.dn.clone(),
                (_, Some(new)) => new.clone(),
            },
            kind: ExportKind::Update,
            changes: Default::default(),
            values: Default::default(),
            new_dn: None,
        };
        for (attr, _, pending) in &self.whole {
            let any = match pending {
                Some(Value::Multi(vs)) => vs.iter().any(|v| sendable(attr, v)),
                Some(v) => sendable(attr, v),
                None => false,
            };
            if any {
                u.changes.insert(attr.clone(), pending.clone());
            }
        }
        for (attr, vs) in &self.added {
            if vs.iter().any(|v| sendable(attr, v)) {
                u.values.insert(
                    attr.clone(),
                    ValueDelta {
                        add: vs.clone(),
                        remove: Vec::new(),
                    },
                );
            }
        }
        (!u.changes.is_empty() || !u.values.is_empty()).then_some(u)
    }

    /// Update `u` (see [`Held::again`]) went as sent, holding back `h` of
    /// it still: what it sent is no longer held.
    pub fn resent(&mut self, u: &ExportChange, h: Option<Held>) {
        let h = h.unwrap_or_default();
        let mut later = Vec::new();
        self.whole.retain_mut(|(attr, sent, _)| {
            if let Some((_, again, _)) = h.whole.iter().find(|(a, ..)| a == attr) {
                // Part of it went (a list without what is held still).
                if again.is_some() {
                    sent.clone_from(again);
                }
                true
            } else if let Some(v) = u.changes.get(attr) {
                later.push((attr.clone(), v.clone()));
                false
            } else {
                true
            }
        });
        self.later_whole.extend(later);
        for (attr, vs) in &mut self.added {
            let Some(d) = u.values.get(attr) else {
                continue;
            };
            let still: &[Value] = h
                .added
                .iter()
                .find(|(a, _)| a == attr)
                .map_or(&[], |(_, vs)| vs.as_slice());
            vs.retain(|v| {
                let as_sent = h
                    .renamed
                    .iter()
                    .find(|(a, old, _)| a == attr && old == v)
                    .map_or(v, |(_, _, new)| new);
                let went = d.add.contains(as_sent) && !still.contains(as_sent);
                if went {
                    self.later_added
                        .push((attr.clone(), v.clone(), as_sent.clone()));
                }
                !went
            });
        }
        self.added.retain(|(_, vs)| !vs.is_empty());
    }
}

/// The values of reference attribute `attr` change `c` sends: its whole
/// value, and its value-level additions.
pub(super) fn values_of<'c>(c: &'c ExportChange, attr: &str) -> Vec<&'c Value> {
    let mut out: Vec<&Value> = match c.changes.get(attr) {
        Some(Some(Value::Multi(vs))) => vs.iter().collect(),
        Some(Some(v)) => vec![v],
        _ => Vec::new(),
    };
    if let Some(d) = c.values.get(attr) {
        out.extend(&d.add);
    }
    out
}

/// Leave out of `c` the reference values `new` says must wait (per
/// attribute and name: `hold`, or a name another object has that the
/// referrer does not refer to); what was left out, if anything.
pub(super) fn strip(
    c: &mut ExportChange,
    attrs: &[(String, RefBy)],
    new: &dyn Fn(&str, &Key) -> bool,
    renamed: &dyn Fn(&Key) -> Option<String>,
) -> Option<Held> {
    let mut h = Held::default();
    // Values naming an object a rename of this export moved: its new DN.
    for (attr, by) in attrs {
        let mut swap = |v: &mut Value| {
            if let Some(new) = Key::of(*by, v).and_then(|k| renamed(&k)) {
                let new = Value::String(new);
                h.renamed
                    .push((attr.clone(), std::mem::replace(v, new.clone()), new));
            }
        };
        match c.changes.get_mut(attr) {
            Some(Some(Value::Multi(vs))) => vs.iter_mut().for_each(&mut swap),
            Some(Some(v)) => swap(v),
            _ => {}
        }
        if let Some(d) = c.values.get_mut(attr) {
            d.add.iter_mut().for_each(&mut swap);
        }
    }
    // A DN added and removed by one change naming one entry (a rename's
    // old DN spelled as its new one, or a DN in another case): the
    // directory would take the add as the value it has, then remove it.
    // Neither goes.
    for (attr, by) in attrs {
        if *by != RefBy::Dn {
            continue;
        }
        let Some(d) = c.values.get_mut(attr) else {
            continue;
        };
        if d.add.is_empty() || d.remove.is_empty() {
            continue;
        }
        let gone = crate::sync::cancel_same_dns(d);
        if !gone.is_empty() {
            if d.is_empty() {
                c.values.remove(attr);
            }
            h.cancelled.push((attr.clone(), gone));
        }
    }
    let adding = matches!(c.kind, ExportKind::Add | ExportKind::DeleteAdd);
    // A name another object has too goes where the referrer refers to
    // that object (a list an update replaces keeps the one a member),
    // whatever kind of value holds it.
    let held_new = |attr: &str, by: RefBy, v: &Value| Key::of(by, v).is_some_and(|k| new(attr, &k));
    for (attr, by) in attrs {
        if let Some(Some(v)) = c.changes.get(attr) {
            // What is sent instead (`None`: the attribute is not sent), when
            // anything is held.
            let sent: Option<Option<Option<Value>>> = match v {
                Value::Multi(vs) if vs.iter().any(|x| held_new(attr, *by, x)) => {
                    let rest: Vec<Value> = vs
                        .iter()
                        .filter(|x| !held_new(attr, *by, x))
                        .cloned()
                        .collect();
                    Some(if !rest.is_empty() {
                        Some(Some(Value::Multi(rest)))
                    } else if adding {
                        None
                    } else {
                        Some(None)
                    })
                }
                Value::Multi(_) => None,
                one if held_new(attr, *by, one) => Some(None),
                _ => None,
            };
            if let Some(sent) = sent {
                let original = c.changes.remove(attr).flatten();
                if let Some(v) = &sent {
                    c.changes.insert(attr.clone(), v.clone());
                }
                h.whole.push((attr.clone(), sent, original));
            }
        }
        if let Some(d) = c.values.get_mut(attr)
            && d.add.iter().any(|x| held_new(attr, *by, x))
        {
            let (out, keep): (Vec<Value>, Vec<Value>) =
                d.add.drain(..).partition(|x| held_new(attr, *by, x));
            d.add = keep;
            if d.is_empty() {
                c.values.remove(attr);
            }
            h.added.push((attr.clone(), out));
        }
    }
    if h.whole.is_empty() && h.added.is_empty() && h.renamed.is_empty() && h.cancelled.is_empty() {
        return None;
    }
    h.empty = c.kind == ExportKind::Update
        && c.changes.is_empty()
        && c.values.is_empty()
        && c.new_dn.is_none();
    Some(h)
}
