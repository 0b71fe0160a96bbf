//! What a change holds back (`Held`) and how its reference values are
//! left out of what is sent, or re-spelled by the DN a rename of the
//! export gave (`strip`).

use super::Key;
use autosync_connector::ExportChange;
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
        // What went under a new DN is what the system has.
        for (attr, old, new) in &self.renamed {
            let swap = |v: &mut Value| {
                if v == old {
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
