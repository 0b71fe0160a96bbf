//! Attribute values and attribute sets.
//!
//! A value is a string, an integer, a boolean, binary data, or a list of those
//! (a multi-valued attribute). An absent attribute is simply not in the map:
//! there is no null value. JSON form: strings, numbers and booleans as
//! themselves, a multi-valued attribute as an array, binary data as
//! `{"base64": "..."}`.

use base64::Engine as _;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// Attributes of an object, sorted by name so that every rendering is stable.
pub type Attributes = BTreeMap<String, Value>;

/// A set of attribute replacements: `Some(v)` sets the attribute to `v`,
/// `None` removes it.
pub type AttrChanges = BTreeMap<String, Option<Value>>;

/// One attribute value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    String(String),
    Integer(i64),
    Boolean(bool),
    Binary(Vec<u8>),
    /// A reference to a metaverse object (its id): a metaverse attribute
    /// declared a reference holds these (a person's manager, a group's
    /// members). Connected systems never see one: synchronisation turns a
    /// connector-space reference (an anchor or DN of another object) into
    /// this and back (see the engine's `refs`). JSON form `{"ref": id}`.
    Reference(i64),
    /// A multi-valued attribute. Order is kept as the source gave it, but
    /// synchronisation compares it as a set unless its attribute is
    /// declared ordered (see [`crate::compare`]).
    Multi(Vec<Value>),
}

impl Value {
    /// The value as a string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A canonical text rendering used for joins, comparisons with text from
    /// sources that have no types (CSV), and human output.
    pub fn to_text(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            Value::Integer(i) => i.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
            Value::Reference(id) => format!("mv:{id}"),
            Value::Multi(vs) => vs.iter().map(Value::to_text).collect::<Vec<_>>().join(";"),
        }
    }

    /// Whether this is an empty string or an empty list: such values are
    /// treated as absent by flows.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::String(s) => s.is_empty(),
            Value::Multi(v) => v.is_empty(),
            Value::Binary(b) => b.is_empty(),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(v) => s.serialize_str(v),
            Value::Integer(v) => s.serialize_i64(*v),
            Value::Boolean(v) => s.serialize_bool(*v),
            Value::Binary(v) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "base64",
                    &base64::engine::general_purpose::STANDARD.encode(v),
                )?;
                m.end()
            }
            Value::Reference(id) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("ref", id)?;
                m.end()
            }
            Value::Multi(vs) => {
                let mut seq = s.serialize_seq(Some(vs.len()))?;
                for v in vs {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, integer, boolean, list, {\"base64\": ...} or {\"ref\": id}")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v).map(Value::Integer).map_err(|_| {
            E::custom(format!(
                "integer {v} is larger than the largest supported integer"
            ))
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // Floating point numbers are kept as text so that nothing is rounded.
        Ok(Value::String(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Value::Multi(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut data = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "ref" {
                let id: i64 = map.next_value()?;
                return Ok(Value::Reference(id));
            }
            if key == "base64" {
                let text: String = map.next_value()?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|e| de::Error::custom(format!("invalid base64 value: {e}")))?;
                data = Some(bytes);
            } else {
                return Err(de::Error::custom(format!(
                    "unexpected key `{key}` in a value object: only {{\"base64\": ...}} and {{\"ref\": id}} are allowed"
                )));
            }
        }
        data.map(Value::Binary)
            .ok_or_else(|| de::Error::custom("a value object needs a `base64` key"))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Value-level changes of one multi-valued attribute: the values added and
/// the values removed, every other value unchanged. A one-member change of
/// a group of 500,000 is one of these with one value, from the connector's
/// delta import through the connector space, the metaverse and the pending
/// export to the target system. Values compare exactly (as stored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueDelta {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<Value>,
}

/// Value-level changes per attribute name.
pub type ValueChanges = BTreeMap<String, ValueDelta>;

impl ValueDelta {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Add `value` (cancelling an earlier removal of it).
    pub fn add(&mut self, value: Value) {
        if let Some(i) = self.remove.iter().position(|v| *v == value) {
            self.remove.swap_remove(i);
        } else if !self.add.contains(&value) {
            self.add.push(value);
        }
    }

    /// Remove `value` (cancelling an earlier addition of it).
    pub fn remove(&mut self, value: Value) {
        if let Some(i) = self.add.iter().position(|v| *v == value) {
            self.add.swap_remove(i);
        } else if !self.remove.contains(&value) {
            self.remove.push(value);
        }
    }

    /// This delta followed by `later`: a value added then removed is
    /// neither, removed then added is neither (it was there before).
    pub fn merge(&mut self, later: ValueDelta) {
        use std::collections::HashSet;
        // add = (A1 \ R2) ∪ (A2 \ R1), remove = (R1 \ A2) ∪ (R2 \ A1).
        let (a1, r1) = (
            std::mem::take(&mut self.add),
            std::mem::take(&mut self.remove),
        );
        let (a2, r2) = (later.add, later.remove);
        let set = |xs: &[Value]| -> HashSet<Value> { xs.iter().cloned().collect() };
        let (sa1, sr1, sa2, sr2) = (set(&a1), set(&r1), set(&a2), set(&r2));
        let mut taken = HashSet::new();
        for v in a1.into_iter().filter(|v| !sr2.contains(v)) {
            if taken.insert(v.clone()) {
                self.add.push(v);
            }
        }
        for v in a2.into_iter().filter(|v| !sr1.contains(v)) {
            if taken.insert(v.clone()) {
                self.add.push(v);
            }
        }
        for v in r1.into_iter().filter(|v| !sa2.contains(v)) {
            if taken.insert(v.clone()) {
                self.remove.push(v);
            }
        }
        for v in r2.into_iter().filter(|v| !sa1.contains(v)) {
            if taken.insert(v.clone()) {
                self.remove.push(v);
            }
        }
    }

    /// The whole value after this delta, from the whole value before it
    /// (`None`: absent). The result is `None` when no value is left.
    pub fn apply_to(&self, before: Option<&Value>) -> Option<Value> {
        let mut values: Vec<Value> = match before {
            None => Vec::new(),
            Some(Value::Multi(vs)) => vs.clone(),
            Some(v) if v.is_empty() => Vec::new(),
            Some(v) => vec![v.clone()],
        };
        if !self.remove.is_empty() {
            let removed: std::collections::HashSet<&Value> = self.remove.iter().collect();
            values.retain(|v| !removed.contains(v));
        }
        if !self.add.is_empty() {
            let mut there: std::collections::HashSet<Value> = values.iter().cloned().collect();
            for v in &self.add {
                if there.insert(v.clone()) {
                    values.push(v.clone());
                }
            }
        }
        (!values.is_empty()).then_some(Value::Multi(values))
    }

    /// The delta that turns `before` into `after` (both whole values,
    /// `None`: absent), comparing values exactly.
    pub fn between(before: Option<&Value>, after: Option<&Value>) -> ValueDelta {
        fn items(v: Option<&Value>) -> Vec<&Value> {
            match v {
                None => Vec::new(),
                Some(Value::Multi(vs)) => vs.iter().collect(),
                Some(v) if v.is_empty() => Vec::new(),
                Some(v) => vec![v],
            }
        }
        let old = items(before);
        let new = items(after);
        let old_set: std::collections::HashSet<&Value> = old.iter().copied().collect();
        let new_set: std::collections::HashSet<&Value> = new.iter().copied().collect();
        let mut d = ValueDelta::default();
        let mut taken = std::collections::HashSet::new();
        for v in new {
            if !old_set.contains(v) && taken.insert(v) {
                d.add.push(v.clone());
            }
        }
        for v in old {
            if !new_set.contains(v) && taken.insert(v) {
                d.remove.push(v.clone());
            }
        }
        d
    }
}

/// Apply replacements to an attribute set.
pub fn apply_changes(attrs: &mut Attributes, changes: &AttrChanges) {
    for (name, change) in changes {
        match change {
            Some(v) => {
                attrs.insert(name.clone(), v.clone());
            }
            None => {
                attrs.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            ".*".prop_map(Value::String),
            any::<i64>().prop_map(Value::Integer),
            any::<bool>().prop_map(Value::Boolean),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
            any::<i64>().prop_map(Value::Reference),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::Multi)
        })
    }

    proptest! {
        #[test]
        fn every_value_round_trips_through_json(v in value()) {
            let text = serde_json::to_string(&v).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(v, back);
        }
    }

    #[test]
    fn a_value_added_then_removed_is_neither_and_removed_then_added_is_neither() {
        let mut d = ValueDelta::default();
        d.add(Value::from("a"));
        d.merge(ValueDelta {
            add: vec![Value::from("b")],
            remove: vec![Value::from("a")],
        });
        assert_eq!(d.add, vec![Value::from("b")]);
        assert!(d.remove.is_empty());
        d.remove(Value::from("c"));
        d.add(Value::from("c"));
        assert_eq!(d.add, vec![Value::from("b")]);
        assert!(d.remove.is_empty());
    }

    proptest! {
        #[test]
        fn between_then_apply_gives_the_new_value_as_a_set(
            old in proptest::collection::vec(0i64..20, 0..12),
            new in proptest::collection::vec(0i64..20, 0..12),
        ) {
            let whole = |xs: &[i64]| {
                let vs: Vec<Value> = xs.iter().map(|x| Value::Integer(*x)).collect();
                (!vs.is_empty()).then_some(Value::Multi(vs))
            };
            let (before, after) = (whole(&old), whole(&new));
            let d = ValueDelta::between(before.as_ref(), after.as_ref());
            let got = d.apply_to(before.as_ref());
            let set = |v: Option<Value>| -> std::collections::BTreeSet<Value> {
                match v { Some(Value::Multi(vs)) => vs.into_iter().collect(), _ => Default::default() }
            };
            prop_assert_eq!(set(got), set(after));
        }
    }

    #[test]
    fn binary_values_are_written_as_base64_objects() {
        let v = Value::Binary(vec![1, 2, 3]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"base64":"AQID"}"#);
    }

    #[test]
    fn unknown_keys_in_value_objects_are_rejected() {
        let err = serde_json::from_str::<Value>(r#"{"hex":"00"}"#).unwrap_err();
        assert!(err.to_string().contains("unexpected key `hex`"));
    }
}
