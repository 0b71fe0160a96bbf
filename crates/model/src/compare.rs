//! Comparing attribute values the way synchronisation needs, in one place
//! for the engine (is an export confirmed? did an import change anything?)
//! and for the connectors' compliance suite (does every value type read back
//! equal?):
//!
//! - an empty value (empty string, empty binary, empty list) is an absent
//!   one, and an empty value inside a list counts for nothing;
//! - values of different types that render to the same text are the same:
//!   a system without types (a CSV file, an SQLite TEXT column) gives back
//!   `"42"` for an exported `42`, `"true"` for `true`, base64 for binary;
//! - a multi-valued attribute is a **set** (MIM's multi-valued attributes
//!   are sets): order and repeated values do not count, unless the
//!   attribute is declared ordered ([`ValueOrder::Ordered`]); a list holding
//!   one distinct value is the same as that value.
//!
//! Comparing two single values never allocates.

use crate::value::{Attributes, Value};
use base64::Engine as _;
use std::borrow::Cow;

/// How the values of a multi-valued attribute compare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ValueOrder {
    /// As sets: order and repeated values do not count (the default).
    #[default]
    Unordered,
    /// As sequences: the order counts (an attribute declared `ordered`).
    Ordered,
}

/// The value, or `None` when it is absent or empty (a list whose values
/// are all empty is empty).
pub fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !blank(v))
}

/// Empty, or a list of nothing but empty values.
fn blank(v: &Value) -> bool {
    match v {
        Value::Multi(vs) => vs.iter().all(blank),
        other => other.is_empty(),
    }
}

/// Whether two optional values are the same for synchronisation.
pub fn same_value(a: Option<&Value>, b: Option<&Value>, order: ValueOrder) -> bool {
    match (present(a), present(b)) {
        (None, None) => true,
        (Some(x), Some(y)) => equivalent(x, y, order),
        _ => false,
    }
}

/// Whether two attribute sets are the same for synchronisation; `order`
/// says how each attribute's values compare.
pub fn same_attributes(a: &Attributes, b: &Attributes, order: impl Fn(&str) -> ValueOrder) -> bool {
    a.iter()
        .all(|(k, v)| same_value(Some(v), b.get(k), order(k)))
        && b.iter().all(|(k, v)| a.contains_key(k) || blank(v))
}

/// Two present values.
fn equivalent(x: &Value, y: &Value, order: ValueOrder) -> bool {
    match (x, y) {
        (Value::Multi(xs), Value::Multi(ys)) => match order {
            ValueOrder::Ordered => same_sequence(xs, ys),
            ValueOrder::Unordered => same_set(xs, ys),
        },
        (Value::Multi(xs), one) | (one, Value::Multi(xs)) => {
            let mut values = xs.iter().filter(|v| !blank(v));
            match order {
                // One value, in a list or not.
                ValueOrder::Ordered => {
                    values.next().is_some_and(|v| equivalent(v, one, order))
                        && values.next().is_none()
                }
                // Every value of the list is that one.
                ValueOrder::Unordered => values.all(|v| equivalent(v, one, order)),
            }
        }
        _ => scalars_equal(x, y),
    }
}

/// The non-empty values of two lists, pairwise, in order.
fn same_sequence(xs: &[Value], ys: &[Value]) -> bool {
    let mut a = xs.iter().filter(|v| !blank(v));
    let mut b = ys.iter().filter(|v| !blank(v));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if equivalent(x, y, ValueOrder::Ordered) => {}
            _ => return false,
        }
    }
}

/// Above this many pairs, two lists are compared by their sorted texts
/// rather than pair by pair.
const PAIRWISE_LIMIT: usize = 1024;

/// The non-empty values of two lists, as sets.
fn same_set(xs: &[Value], ys: &[Value]) -> bool {
    // Usually the very same list.
    if xs.len() == ys.len()
        && xs
            .iter()
            .zip(ys)
            .all(|(x, y)| equivalent(x, y, ValueOrder::Unordered))
    {
        return true;
    }
    let nested = |vs: &[Value]| vs.iter().any(|v| matches!(v, Value::Multi(_)));
    if xs.len().saturating_mul(ys.len()) <= PAIRWISE_LIMIT || nested(xs) || nested(ys) {
        let within = |vs: &[Value], x: &Value| {
            vs.iter()
                .any(|y| !blank(y) && equivalent(x, y, ValueOrder::Unordered))
        };
        return xs.iter().all(|x| blank(x) || within(ys, x))
            && ys.iter().all(|y| blank(y) || within(xs, y));
    }
    // Large lists: the same distinct texts (scalars with the same text are
    // the same value, see `scalars_equal`).
    fn texts(vs: &[Value]) -> Vec<Cow<'_, str>> {
        let mut t: Vec<Cow<'_, str>> = vs
            .iter()
            .filter(|v| !blank(v))
            .map(|v| match v {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_text()),
            })
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }
    texts(xs) == texts(ys)
}

/// Two single values: equal, or of different types with the same text.
fn scalars_equal(x: &Value, y: &Value) -> bool {
    if x == y {
        return true;
    }
    match (x, y) {
        // A reference is the same only as the same reference.
        (Value::Reference(_), _) | (_, Value::Reference(_)) => false,
        (Value::String(s), other) | (other, Value::String(s)) => text_is(other, s),
        (Value::Integer(i), other) | (other, Value::Integer(i)) => {
            let mut buf = [0u8; 20];
            text_is(other, integer_text(*i, &mut buf))
        }
        (Value::Boolean(b), other) | (other, Value::Boolean(b)) => text_is(other, bool_text(*b)),
        _ => false,
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The decimal text of `i`, written into `buf`.
fn integer_text(i: i64, buf: &mut [u8; 20]) -> &str {
    let mut n = i.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

/// Whether the text of `v` (as [`Value::to_text`] renders it) is `text`.
fn text_is(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Integer(i) => {
            let mut buf = [0u8; 20];
            integer_text(*i, &mut buf) == text
        }
        Value::Boolean(b) => bool_text(*b) == text,
        Value::Binary(bytes) => base64_is(bytes, text.as_bytes()),
        Value::Multi(_) => v.to_text() == text,
        Value::Reference(_) => false,
    }
}

/// Whether `text` is the (padded, standard) base64 of `bytes`, encoded
/// piece by piece on the stack.
fn base64_is(bytes: &[u8], text: &[u8]) -> bool {
    if text.len() != bytes.len().div_ceil(3) * 4 {
        return false;
    }
    let mut buf = [0u8; 64];
    for (chunk, expected) in bytes.chunks(48).zip(text.chunks(64)) {
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(chunk, &mut buf)
            .unwrap_or(0);
        if buf[..n] != *expected {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(a: &Value, b: &Value) -> bool {
        same_value(Some(a), Some(b), ValueOrder::Unordered)
    }

    fn ordered(a: &Value, b: &Value) -> bool {
        same_value(Some(a), Some(b), ValueOrder::Ordered)
    }

    fn list(vs: &[&str]) -> Value {
        Value::Multi(vs.iter().map(|v| Value::from(*v)).collect())
    }

    #[test]
    fn empty_values_should_be_the_same_as_absent_ones() {
        let order = ValueOrder::Unordered;
        assert!(same_value(Some(&Value::from("")), None, order));
        assert!(same_value(Some(&Value::Multi(vec![])), None, order));
        assert!(same_value(Some(&Value::Binary(vec![])), None, order));
        assert!(same_value(Some(&list(&["", ""])), None, order));
        assert!(!same_value(Some(&Value::from("a")), None, order));
    }

    #[test]
    fn values_of_different_types_with_the_same_text_should_be_the_same() {
        assert!(same(&Value::Integer(5), &Value::from("5")));
        assert!(same(&Value::Integer(-42), &Value::from("-42")));
        assert!(same(
            &Value::Integer(i64::MIN),
            &Value::from(i64::MIN.to_string().as_str())
        ));
        assert!(same(&Value::Boolean(true), &Value::from("true")));
        assert!(same(&Value::Binary(vec![1, 2, 3]), &Value::from("AQID")));
        assert!(!same(&Value::Integer(5), &Value::from("6")));
        assert!(!same(&Value::from("5"), &Value::from("05")));
        assert!(!same(&Value::Integer(123), &Value::from("00123")));
        assert!(!same(&Value::Boolean(true), &Value::Integer(1)));
    }

    #[test]
    fn multi_valued_values_should_compare_as_sets_unless_ordered() {
        let ab = list(&["a", "b"]);
        let ba = list(&["b", "a"]);
        assert!(same(&ab, &ba));
        assert!(!ordered(&ab, &ba));
        assert!(ordered(&ab, &ab.clone()));
        assert!(same(&list(&["a", "b", "a"]), &ab));
        assert!(!same(&list(&["a", "c"]), &ab));
        assert!(!same(&list(&["a"]), &ab));
    }

    #[test]
    fn a_list_of_one_distinct_value_should_be_that_value() {
        assert!(same(&list(&["a"]), &Value::from("a")));
        assert!(same(&list(&["a", "a"]), &Value::from("a")));
        assert!(!same(&list(&["a", "b"]), &Value::from("a")));
        assert!(ordered(&list(&["a"]), &Value::from("a")));
        assert!(!ordered(&list(&["a", "a"]), &Value::from("a")));
    }

    #[test]
    fn empty_values_inside_a_list_should_count_for_nothing() {
        assert!(same(&list(&["a", "", "b"]), &list(&["b", "a"])));
        assert!(ordered(&list(&["a", "", "b"]), &list(&["a", "b"])));
    }

    #[test]
    fn the_values_of_a_list_should_compare_loosely() {
        let ints = Value::Multi(vec![Value::Integer(2), Value::Integer(1)]);
        assert!(same(&ints, &list(&["1", "2"])));
        assert!(!ordered(&ints, &list(&["1", "2"])));
        assert!(ordered(&ints, &list(&["2", "1"])));
    }

    #[test]
    fn large_lists_should_compare_as_sets_too() {
        let a: Vec<Value> = (0..500).map(Value::Integer).collect();
        let mut b: Vec<Value> = (0..500).rev().map(|i| Value::from(i.to_string())).collect();
        assert!(same(&Value::Multi(a.clone()), &Value::Multi(b.clone())));
        b[0] = Value::from("x");
        assert!(!same(&Value::Multi(a), &Value::Multi(b)));
    }

    #[test]
    fn attribute_sets_should_ignore_empty_values_when_compared() {
        let unordered = |_: &str| ValueOrder::Unordered;
        let mut a = Attributes::new();
        a.insert("x".into(), Value::from("1"));
        let mut b = a.clone();
        b.insert("y".into(), Value::from(""));
        assert!(same_attributes(&a, &b, unordered));
        assert!(same_attributes(&b, &a, unordered));
        b.insert("z".into(), Value::from("2"));
        assert!(!same_attributes(&a, &b, unordered));
        assert!(!same_attributes(&b, &a, unordered));
    }

    #[test]
    fn attribute_sets_should_compare_each_attribute_in_its_order() {
        let mut a = Attributes::new();
        a.insert("lines".into(), list(&["1 Main St", "Springfield"]));
        a.insert("groups".into(), list(&["x", "y"]));
        let mut b = Attributes::new();
        b.insert("lines".into(), list(&["Springfield", "1 Main St"]));
        b.insert("groups".into(), list(&["y", "x"]));
        assert!(same_attributes(&a, &b, |_| ValueOrder::Unordered));
        let lines_ordered = |k: &str| match k {
            "lines" => ValueOrder::Ordered,
            _ => ValueOrder::Unordered,
        };
        assert!(!same_attributes(&a, &b, lines_ordered));
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-z0-9]{0,4}".prop_map(Value::String),
            (-20i64..20).prop_map(Value::Integer),
            any::<bool>().prop_map(Value::Boolean),
            proptest::collection::vec(any::<u8>(), 0..70).prop_map(Value::Binary),
        ]
    }

    proptest! {
        /// Single values are the same exactly when their texts are.
        #[test]
        fn scalars_should_be_the_same_when_their_texts_are(x in scalar(), y in scalar()) {
            let want = match (x.is_empty(), y.is_empty()) {
                (true, true) => true,
                (false, false) => x.to_text() == y.to_text(),
                _ => false,
            };
            prop_assert_eq!(same_value(Some(&x), Some(&y), ValueOrder::Unordered), want);
        }

        /// A shuffled list with repeats is the same set.
        #[test]
        fn lists_should_be_the_same_set_whatever_their_order(
            xs in proptest::collection::vec(scalar(), 0..40),
            seed in any::<u64>(),
        ) {
            let mut ys = xs.clone();
            ys.extend(xs.iter().take(3).cloned());
            let n = ys.len().max(1) as u64;
            ys.rotate_left((seed % n) as usize);
            prop_assert!(same_value(
                Some(&Value::Multi(xs)),
                Some(&Value::Multi(ys)),
                ValueOrder::Unordered
            ));
        }
    }
}
