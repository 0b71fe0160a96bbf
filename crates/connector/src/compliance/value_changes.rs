//! The value-level check of the compliance suite: an update whose
//! `values` add and remove values of multi-valued attributes
//! ([`ExportChange::values`](crate::ExportChange::values)) must read back as
//! the whole value with the change applied, on the typed system
//! (`make_typed`), whose multi-valued attributes the connector keeps as it
//! keeps any (for SQLite: the typed system's lists in child tables).

use super::ComplianceTarget;
use super::value_types::{first_values, texts};
use autosync_model::{AttrChanges, ExportKind, Value, ValueChanges, ValueDelta};

/// For a connector whose capabilities say `value_changes`: after an add
/// of every value type, one update sets a single-valued attribute
/// (`changes`) and, in `values`, adds two values to `multi_text` and
/// removes one (the other values stay), adds one already there and
/// removes one never there (both change nothing: a replay after a crash
/// sends them), adds to `multi_integer` and removes from it, and gives
/// `empty_multi` its first value; the update then comes again, changing
/// nothing; a last update removes every value of `multi_integer`, which
/// then reads back absent. Each reads back as the whole value with the
/// change applied, under the engine's comparison. A connector without
/// the capability is never sent `values` (the engine sends whole values
/// instead) and passes this check without doing anything.
pub fn value_changes_read_back_as_the_whole_value(t: &ComplianceTarget) {
    if !(t.make_typed)().capabilities().value_changes {
        return;
    }
    let mut want = first_values();
    let mut add: AttrChanges = want
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    add.insert(
        t.object_type.anchor.clone(),
        Some(Value::from(ComplianceTarget::TYPED)),
    );
    t.export_typed(
        t.typed_change(ExportKind::Add, add),
        "an add before value-level changes",
    );

    let mut values = ValueChanges::new();
    values.insert(
        "multi_text".into(),
        ValueDelta {
            add: vec![
                Value::from("added, \"one\""),
                Value::from("added two"),
                Value::from("SMTP:a@example.com"),
            ],
            remove: vec![Value::from("semi;colon"), Value::from("never there")],
        },
    );
    values.insert(
        "multi_integer".into(),
        ValueDelta {
            add: vec![Value::Integer(7)],
            remove: vec![Value::Integer(1)],
        },
    );
    values.insert(
        "empty_multi".into(),
        ValueDelta {
            add: vec![Value::from("first")],
            remove: Vec::new(),
        },
    );
    let mut update = t.typed_change(
        ExportKind::Update,
        [("text".to_owned(), Some(Value::from("changed with values")))].into(),
    );
    update.values = values;
    want.insert("text".into(), Value::from("changed with values"));
    want.insert(
        "multi_text".into(),
        texts(&[
            "smtp:b@example.com",
            "SMTP:a@example.com",
            "back\\slash",
            "comma, \"quote\"",
            "added, \"one\"",
            "added two",
        ]),
    );
    want.insert(
        "multi_integer".into(),
        Value::Multi(vec![
            Value::Integer(3),
            Value::Integer(20),
            Value::Integer(7),
        ]),
    );
    want.insert("empty_multi".into(), texts(&["first"]));
    for what in [
        "an update adding and removing values",
        "the same update again",
    ] {
        t.export_typed(update.clone(), what);
        let got = t.import_typed(what);
        t.assert_reads_back(&want, &got, what);
    }

    let mut last = t.typed_change(ExportKind::Update, AttrChanges::new());
    last.values.insert(
        "multi_integer".into(),
        ValueDelta {
            add: Vec::new(),
            remove: vec![Value::Integer(3), Value::Integer(20), Value::Integer(7)],
        },
    );
    let what = "an update removing every value of an attribute";
    t.export_typed(last, what);
    want.remove("multi_integer");
    let got = t.import_typed(what);
    t.assert_reads_back(&want, &got, what);
}
