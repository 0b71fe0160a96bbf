//! Comparing attribute values the way synchronisation needs (the rules live
//! in `autosync_model::compare`, shared with the connectors' compliance
//! suite): an empty value is an absent one, values of different types that
//! render to the same text are the same (a CSV file gives back `"5"` for an
//! exported `5`), and multi-valued values are sets unless their attribute
//! is declared ordered, so that an export confirmed by a system that keeps
//! no types or no order never loops.

use autosync_model::compare;
use autosync_model::{AttrChanges, Attributes, Value, ValueOrder};

/// Whether two optional values are the same for synchronisation, their
/// multi-valued values compared as `order` says (the attribute's, from the
/// compiled rules).
pub(crate) fn same_in(a: Option<&Value>, b: Option<&Value>, order: ValueOrder) -> bool {
    compare::same_value(a, b, order)
}

/// Whether two attribute sets are the same for synchronisation; `order`
/// gives each attribute's order (see `MaRules::cs_order`).
pub(crate) fn same_attributes(
    a: &Attributes,
    b: &Attributes,
    order: impl Fn(&str) -> ValueOrder,
) -> bool {
    compare::same_attributes(a, b, order)
}

/// Attributes without their empty values.
pub(crate) fn without_empty(attrs: Attributes) -> Attributes {
    if attrs.values().any(Value::is_empty) {
        attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
    } else {
        attrs
    }
}

/// `v` with its texts as DNs compare (ignoring case, escapes read).
pub(crate) fn dn_folded(v: Option<&Value>) -> Option<Value> {
    let fold = |v: &Value| match v {
        Value::String(t) => Value::String(autosync_model::dn::folded(t)),
        other => other.clone(),
    };
    v.map(|v| match v {
        Value::Multi(vs) => Value::Multi(vs.iter().map(fold).collect()),
        one => fold(one),
    })
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

    fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
        same_in(a, b, ValueOrder::Unordered)
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
    fn multi_valued_values_should_be_sets_unless_the_order_is_kept() {
        let ab = Value::Multi(vec![Value::from("a"), Value::from("b")]);
        let ba = Value::Multi(vec![Value::from("b"), Value::from("a")]);
        assert!(same(Some(&ab), Some(&ba)));
        assert!(!same_in(Some(&ab), Some(&ba), ValueOrder::Ordered));
    }
}
