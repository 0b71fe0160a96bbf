//! Per-object changes recorded with a run: what an import step staged for
//! an object, what an export step sent for it, attribute by attribute (as
//! MIM's run details show a connector-space object's changes). Values are
//! capped ([`MAX_VALUES_SHOWN`] per attribute, with the count of all), so a
//! group of 500,000 members replaced whole stays a small record.

use crate::object::{ExportKind, ImportKind, RunId};
use crate::run::{StepCounters, StepRecord};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// At most this many values of one attribute are kept in a change record
/// (each list: the new value, the old one, the values added, removed); the
/// record counts all of them.
pub const MAX_VALUES_SHOWN: usize = 100;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Add,
    Update,
    Rename,
    Delete,
    DeleteAdd,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Add => "add",
            ChangeKind::Update => "update",
            ChangeKind::Rename => "rename",
            ChangeKind::Delete => "delete",
            ChangeKind::DeleteAdd => "delete-add",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Add,
            ChangeKind::Update,
            ChangeKind::Rename,
            ChangeKind::Delete,
            ChangeKind::DeleteAdd,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ImportKind> for ChangeKind {
    fn from(k: ImportKind) -> Self {
        match k {
            ImportKind::Add => ChangeKind::Add,
            ImportKind::Update => ChangeKind::Update,
            ImportKind::Delete => ChangeKind::Delete,
            ImportKind::DeleteAdd => ChangeKind::DeleteAdd,
        }
    }
}

impl From<ExportKind> for ChangeKind {
    fn from(k: ExportKind) -> Self {
        match k {
            ExportKind::Add => ChangeKind::Add,
            ExportKind::Update => ChangeKind::Update,
            ExportKind::Rename => ChangeKind::Rename,
            ExportKind::Delete => ChangeKind::Delete,
            ExportKind::DeleteAdd => ChangeKind::DeleteAdd,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The change of one attribute. JSON: `{"op": "replace", "new": ..,
/// "old": ..}` or `{"op": "values", "add": [..], "remove": [..]}`, with
/// `*_total` only when a list shows fewer values than it had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AttrChange {
    /// The whole value replaced: `new` absent means the attribute was
    /// removed, `old` absent that it had none (or, for an export, that
    /// what the target held is not known).
    Replace {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Value>,
        /// The number of values of a multi-valued `new` that shows only
        /// the first [`MAX_VALUES_SHOWN`] (0: it shows them all).
        #[serde(default, skip_serializing_if = "is_zero")]
        new_total: u64,
        /// The same for `old`.
        #[serde(default, skip_serializing_if = "is_zero")]
        old_total: u64,
    },
    /// Values added to and removed from a multi-valued attribute, every
    /// other value unchanged.
    Values {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add: Vec<Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<Value>,
        /// The number of values added when `add` shows only the first
        /// [`MAX_VALUES_SHOWN`] (0: it shows them all).
        #[serde(default, skip_serializing_if = "is_zero")]
        add_total: u64,
        /// The same for `remove`.
        #[serde(default, skip_serializing_if = "is_zero")]
        remove_total: u64,
        /// Set when an export sent these as the whole new value (to a
        /// connector that takes no value-level changes): how many values
        /// it had.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_whole: Option<u64>,
    },
}

/// A value with at most [`MAX_VALUES_SHOWN`] of its values, and the count
/// of all when some were left out (0 otherwise). Copies only what it keeps.
fn capped(v: Option<&Value>) -> (Option<Value>, u64) {
    match v {
        Some(Value::Multi(vs)) if vs.len() > MAX_VALUES_SHOWN => (
            Some(Value::Multi(vs[..MAX_VALUES_SHOWN].to_vec())),
            vs.len() as u64,
        ),
        Some(v) if v.is_empty() => (None, 0),
        other => (other.cloned(), 0),
    }
}

/// The first [`MAX_VALUES_SHOWN`] of `values`, and the count of all when
/// some were left out.
fn capped_list<'a>(values: impl ExactSizeIterator<Item = &'a Value>) -> (Vec<Value>, u64) {
    let n = values.len();
    let kept = values.take(MAX_VALUES_SHOWN).cloned().collect();
    (kept, if n > MAX_VALUES_SHOWN { n as u64 } else { 0 })
}

impl AttrChange {
    /// A whole value replaced (`new` `None`: removed; `old` `None`: none
    /// before, or not known).
    pub fn replace(new: Option<&Value>, old: Option<&Value>) -> AttrChange {
        let (new, new_total) = capped(new);
        let (old, old_total) = capped(old);
        AttrChange::Replace {
            new,
            old,
            new_total,
            old_total,
        }
    }

    /// Set what a replacement replaced (capped); a change of values keeps
    /// no old value.
    pub fn set_old(&mut self, before: Option<&Value>) {
        if let AttrChange::Replace { old, old_total, .. } = self {
            (*old, *old_total) = capped(before);
        }
    }

    /// Values added and removed.
    pub fn values(add: &[Value], remove: &[Value]) -> AttrChange {
        let (add, add_total) = capped_list(add.iter());
        let (remove, remove_total) = capped_list(remove.iter());
        AttrChange::Values {
            add,
            remove,
            add_total,
            remove_total,
            sent_whole: None,
        }
    }

    /// The change from `old` to `new` (whole values, `None`: absent), or
    /// `None` when they are equal. A multi-valued value on either side
    /// gives the values added and removed (compared exactly, as sets),
    /// copying only the values kept; single values give a replacement.
    pub fn between(old: Option<&Value>, new: Option<&Value>) -> Option<AttrChange> {
        let old = old.filter(|v| !v.is_empty());
        let new = new.filter(|v| !v.is_empty());
        if old == new {
            return None;
        }
        let multi = |v: Option<&Value>| matches!(v, Some(Value::Multi(_)));
        if !multi(old) && !multi(new) {
            return Some(AttrChange::replace(new, old));
        }
        fn items(v: Option<&Value>) -> &[Value] {
            match v {
                None => &[],
                Some(Value::Multi(vs)) => vs,
                Some(v) => std::slice::from_ref(v),
            }
        }
        let (old, new) = (items(old), items(new));
        let old_set: HashSet<&Value> = old.iter().collect();
        let new_set: HashSet<&Value> = new.iter().collect();
        let mut taken = HashSet::new();
        let added: Vec<&Value> = new
            .iter()
            .filter(|v| !old_set.contains(v) && taken.insert(*v))
            .collect();
        let removed: Vec<&Value> = old
            .iter()
            .filter(|v| !new_set.contains(v) && taken.insert(*v))
            .collect();
        if added.is_empty() && removed.is_empty() {
            // The same values in another order, or repeated.
            return None;
        }
        let (add, add_total) = capped_list(added.into_iter());
        let (remove, remove_total) = capped_list(removed.into_iter());
        Some(AttrChange::Values {
            add,
            remove,
            add_total,
            remove_total,
            sent_whole: None,
        })
    }
}

impl StepRecord {
    /// The objects this step changed, as the history records them (up to
    /// its cap per step): an import's staged changes, an export's applied
    /// ones; a sync step records none.
    pub fn changed_objects(&self) -> u64 {
        match &self.counters {
            StepCounters::Import(c) => c.staged(),
            StepCounters::Export(c) => c.adds + c.updates + c.renames + c.deletes + c.delete_adds,
            StepCounters::Sync(_) => 0,
        }
    }
}

/// One object's change recorded with a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunChange {
    pub run_id: RunId,
    pub step_index: u32,
    pub ma: String,
    /// The object's anchor.
    pub object: String,
    /// Its display key (DN), when it is not the anchor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    pub kind: ChangeKind,
    /// The new display key of a rename (or of an update that renames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_dn: Option<String>,
    /// The attributes that changed (for an add, every attribute; none for
    /// a delete).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi(n: usize) -> Value {
        Value::Multi((0..n).map(|i| Value::from(format!("m{i}"))).collect())
    }

    #[test]
    fn a_value_of_many_values_should_keep_the_first_hundred_and_count_them_all() {
        let AttrChange::Replace { new, new_total, .. } =
            AttrChange::replace(Some(&multi(500)), None)
        else {
            panic!("not a replace");
        };
        assert_eq!(new, Some(multi(MAX_VALUES_SHOWN)));
        assert_eq!(new_total, 500);
        assert_eq!(
            AttrChange::replace(Some(&multi(3)), Some(&Value::from("x"))),
            AttrChange::Replace {
                new: Some(multi(3)),
                old: Some(Value::from("x")),
                new_total: 0,
                old_total: 0
            }
        );
    }

    #[test]
    fn between_should_give_one_value_for_one_member_and_nothing_for_the_same_set() {
        let old = multi(20_000);
        let Value::Multi(mut vs) = old.clone() else {
            unreachable!()
        };
        vs.push(Value::from("new"));
        vs.retain(|v| *v != Value::from("m7"));
        assert_eq!(
            AttrChange::between(Some(&old), Some(&Value::Multi(vs.clone()))),
            Some(AttrChange::values(
                &[Value::from("new")],
                &[Value::from("m7")]
            ))
        );
        vs.reverse();
        let same = Value::Multi(vs.clone());
        assert_eq!(AttrChange::between(Some(&same), Some(&same)), None);
        assert_eq!(
            AttrChange::between(Some(&Value::Multi(vs)), Some(&same)),
            None
        );
        assert_eq!(
            AttrChange::between(Some(&Value::from("E1")), Some(&Value::from("E2"))),
            Some(AttrChange::replace(
                Some(&Value::from("E2")),
                Some(&Value::from("E1"))
            ))
        );
        assert_eq!(AttrChange::between(None, Some(&Value::from(""))), None);
        // Every member replaced: the lists keep 100 values each.
        let Some(AttrChange::Values {
            add,
            remove,
            add_total,
            remove_total,
            ..
        }) = AttrChange::between(Some(&multi(1000)), Some(&Value::from("z")))
        else {
            panic!("not values")
        };
        assert_eq!((add.len(), add_total), (1, 0));
        assert_eq!((remove.len(), remove_total), (MAX_VALUES_SHOWN, 1000));
    }

    #[test]
    fn a_change_should_read_back_from_json() {
        let mut attributes = BTreeMap::new();
        attributes.insert(
            "members".to_owned(),
            AttrChange::values(&[Value::from("E6")], &[]),
        );
        attributes.insert(
            "manager".to_owned(),
            AttrChange::replace(Some(&Value::from("E1")), Some(&Value::from("E4"))),
        );
        let change = RunChange {
            run_id: 3,
            step_index: 0,
            ma: "hr".into(),
            object: "E5".into(),
            dn: None,
            kind: ChangeKind::Update,
            new_dn: None,
            attributes,
        };
        let text = serde_json::to_string(&change).unwrap();
        assert!(
            text.contains(r#""manager":{"op":"replace","new":"E1","old":"E4"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""members":{"op":"values","add":["E6"]}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<RunChange>(&text).unwrap(), change);
    }
}
