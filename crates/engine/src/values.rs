//! Comparing attribute values the way synchronisation needs: an empty value
//! is an absent one, and values of different types that render to the same
//! text are the same (a CSV file gives back `"5"` for an exported `5`), so
//! that an export confirmed by a text-only source never loops.

use autosync_model::{AttrChanges, Attributes, Value};

/// The value, or `None` when it is absent or empty.
pub(crate) fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_empty())
}

/// Whether two optional values are the same for synchronisation.
pub(crate) fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (present(a), present(b)) {
        (None, None) => true,
        (Some(x), Some(y)) => x == y || loosely_equal(x, y),
        _ => false,
    }
}

fn loosely_equal(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Multi(xs), Value::Multi(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|(a, b)| a == b || loosely_equal(a, b))
        }
        (Value::Multi(xs), other) | (other, Value::Multi(xs)) => {
            xs.len() == 1 && (xs[0] == *other || loosely_equal(&xs[0], other))
        }
        _ => std::mem::discriminant(x) != std::mem::discriminant(y) && x.to_text() == y.to_text(),
    }
}

/// Whether two attribute sets are the same for synchronisation.
pub(crate) fn same_attributes(a: &Attributes, b: &Attributes) -> bool {
    a.iter().all(|(k, v)| same(Some(v), b.get(k)))
        && b.iter()
            .all(|(k, v)| a.contains_key(k) || same(None, Some(v)))
}

/// Attributes without their empty values.
pub(crate) fn without_empty(attrs: Attributes) -> Attributes {
    if attrs.values().any(Value::is_empty) {
        attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
    } else {
        attrs
    }
}

/// Merge `later` replacements over `earlier` ones.
pub(crate) fn merge_changes(earlier: &mut AttrChanges, later: &AttrChanges) {
    for (k, v) in later {
        earlier.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_should_be_the_same_as_absent_ones() {
        assert!(same(Some(&Value::from("")), None));
        assert!(same(Some(&Value::Multi(vec![])), None));
        assert!(!same(Some(&Value::from("a")), None));
    }

    #[test]
    fn values_of_different_types_with_the_same_text_should_be_the_same() {
        assert!(same(Some(&Value::Integer(5)), Some(&Value::from("5"))));
        assert!(same(
            Some(&Value::Boolean(true)),
            Some(&Value::from("true"))
        ));
        assert!(!same(Some(&Value::Integer(5)), Some(&Value::from("6"))));
        assert!(!same(Some(&Value::from("5")), Some(&Value::from("05"))));
    }

    #[test]
    fn attribute_sets_should_ignore_empty_values_when_compared() {
        let mut a = Attributes::new();
        a.insert("x".into(), Value::from("1"));
        let mut b = a.clone();
        b.insert("y".into(), Value::from(""));
        assert!(same_attributes(&a, &b));
        assert!(same_attributes(&b, &a));
        b.insert("z".into(), Value::from("2"));
        assert!(!same_attributes(&a, &b));
        assert!(!same_attributes(&b, &a));
    }
}
