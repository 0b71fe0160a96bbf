//! The value-type check of the compliance suite: an object holding every
//! value type the model has is exported, then imported back, and must read
//! back the same under the engine's comparison
//! (`autosync_model::compare`), so that the confirming import confirms it
//! and stages nothing: no export loop, whatever the system stores natively.

use super::{ComplianceTarget, drain};
use crate::{ExportChange, ExportOutcome, ImportedObject};
use autosync_model::compare::{same_attributes, same_value};
use autosync_model::{AttrChanges, Attributes, ExportKind, Value, ValueOrder};

/// The attributes of the check and the kind of value each holds. A typed
/// system (`ComplianceTarget::make_typed`) has one attribute (column) per
/// name, of the fitting type where the system has types: text for the
/// texts and `integer_in_text`, an integer, a boolean (two), binary, and
/// three multi-valued ones (the last one exported empty).
pub const VALUE_TYPES: &[(&str, &str)] = &[
    ("text", "text"),
    ("unicode", "text"),
    ("number_like_text", "text"),
    ("leading_zero_id", "text"),
    ("integer", "integer"),
    ("integer_in_text", "text"),
    ("boolean_true", "boolean"),
    ("boolean_false", "boolean"),
    ("binary", "binary"),
    ("multi_text", "multi-valued text"),
    ("multi_integer", "multi-valued integer"),
    ("empty_multi", "multi-valued text"),
];

pub(super) fn texts(vs: &[&str]) -> Value {
    Value::Multi(vs.iter().map(|v| Value::from(*v)).collect())
}

/// The values of the first export.
pub(super) fn first_values() -> Attributes {
    let mut a = Attributes::new();
    a.insert("text".into(), Value::from("plain text"));
    a.insert(
        "unicode".into(),
        Value::from("Zoë Ødegård, 名前 \u{1F642} \"quoted\"\nsecond line"),
    );
    a.insert("number_like_text".into(), Value::from("42"));
    a.insert("leading_zero_id".into(), Value::from("00123"));
    a.insert("integer".into(), Value::Integer(-1_234_567_890_123));
    a.insert("integer_in_text".into(), Value::Integer(42));
    a.insert("boolean_true".into(), Value::Boolean(true));
    a.insert("boolean_false".into(), Value::Boolean(false));
    a.insert(
        "binary".into(),
        Value::Binary(vec![0, 1, 2, 0xfe, 0xff, b';', b',']),
    );
    a.insert(
        "multi_text".into(),
        texts(&[
            "smtp:b@example.com",
            "SMTP:a@example.com",
            "semi;colon",
            "back\\slash",
            "comma, \"quote\"",
        ]),
    );
    a.insert(
        "multi_integer".into(),
        Value::Multi(vec![
            Value::Integer(3),
            Value::Integer(1),
            Value::Integer(20),
        ]),
    );
    a.insert("empty_multi".into(), Value::Multi(Vec::new()));
    a
}

/// The changes of the second export: other values of each type, the lists
/// in another order and one value shorter.
fn second_values() -> AttrChanges {
    let mut c = AttrChanges::new();
    c.insert("text".into(), Some(Value::from("changed")));
    c.insert("number_like_text".into(), Some(Value::from("-7")));
    c.insert("integer".into(), Some(Value::Integer(0)));
    c.insert("integer_in_text".into(), Some(Value::Integer(-5)));
    c.insert("boolean_true".into(), Some(Value::Boolean(false)));
    c.insert("boolean_false".into(), Some(Value::Boolean(true)));
    c.insert("binary".into(), Some(Value::Binary(vec![0x80; 100])));
    c.insert(
        "multi_text".into(),
        Some(texts(&["semi;colon", "SMTP:a@example.com"])),
    );
    c.insert(
        "multi_integer".into(),
        Some(Value::Multi(vec![Value::Integer(20), Value::Integer(3)])),
    );
    c.insert("empty_multi".into(), Some(texts(&["now one"])));
    c
}

impl ComplianceTarget {
    pub(super) const TYPED: &'static str = "t0000001";

    pub(super) fn typed_change(&self, kind: ExportKind, changes: AttrChanges) -> ExportChange {
        ExportChange {
            values: Default::default(),
            object_type: self.object_type.name.clone(),
            anchor: Self::TYPED.to_owned(),
            dn: Self::TYPED.to_owned(),
            kind,
            changes,
            new_dn: None,
        }
    }

    /// Export one change on the typed system and check it was applied.
    pub(super) fn export_typed(&self, change: ExportChange, what: &str) {
        let mut conn = (self.make_typed)();
        let mut session = conn
            .begin_export()
            .unwrap_or_else(|e| panic!("[{}] {what}: begin_export: {e}", self.name));
        let outcomes = session
            .apply(std::slice::from_ref(&change))
            .unwrap_or_else(|e| panic!("[{}] {what}: apply: {e}", self.name));
        assert!(
            matches!(outcomes.as_slice(), [ExportOutcome::Applied { .. }]),
            "[{}] {what}: the export should be applied, got {outcomes:?}",
            self.name
        );
        session
            .commit()
            .unwrap_or_else(|e| panic!("[{}] {what}: commit: {e}", self.name));
    }

    /// The typed object as a full import of the typed system reads it.
    pub(super) fn import_typed(&self, what: &str) -> ImportedObject {
        let mut conn = (self.make_typed)();
        let stream = conn
            .full_import(None)
            .unwrap_or_else(|e| panic!("[{}] {what}: full_import: {e}", self.name));
        let imported = drain(&self.name, stream);
        let mut found = None;
        for item in imported.batches.into_iter().flatten() {
            match item {
                Ok(o) if o.anchor == Self::TYPED => found = Some(o),
                Ok(o) => panic!("[{}] {what}: unexpected object {}", self.name, o.anchor),
                Err(e) => panic!("[{}] {what}: record error {e:?}", self.name),
            }
        }
        found.unwrap_or_else(|| panic!("[{}] {what}: the object was not imported", self.name))
    }

    /// The imported object holds `want` (and nothing else but its anchor
    /// and DN) as the engine compares values.
    pub(super) fn assert_reads_back(&self, want: &Attributes, got: &ImportedObject, what: &str) {
        let mut read = got.attributes.clone();
        read.remove(&self.object_type.anchor);
        if let Some(dn) = self.dn_attr() {
            read.remove(dn);
        }
        let mismatches: Vec<String> = want
            .iter()
            .map(|(k, v)| (k, Some(v), read.get(k)))
            .chain(
                read.iter()
                    .filter(|(k, _)| !want.contains_key(*k))
                    .map(|(k, v)| (k, None, Some(v))),
            )
            .filter(|(_, w, g)| !same_value(*w, *g, ValueOrder::Unordered))
            .map(|(k, w, g)| format!("`{k}`: exported {w:?}, read back {g:?}"))
            .collect();
        assert!(
            mismatches.is_empty() && same_attributes(want, &read, |_| ValueOrder::Unordered),
            "[{}] {what}: values that do not read back equal (the confirming import would stage an update and export again):\n  {}",
            self.name,
            mismatches.join("\n  ")
        );
    }
}

/// Every value type reads back equal after an add, after an update (other
/// values, lists reordered and shorter), and is gone after it is removed.
pub fn every_value_type_reads_back_equal(t: &ComplianceTarget) {
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
        "an add of every value type",
    );
    let got = t.import_typed("after the add");
    t.assert_reads_back(&want, &got, "an add of every value type");

    let update = second_values();
    t.export_typed(
        t.typed_change(ExportKind::Update, update.clone()),
        "an update of every value type",
    );
    autosync_model::value::apply_changes(&mut want, &update);
    let got = t.import_typed("after the update");
    t.assert_reads_back(&want, &got, "an update of every value type");

    let removal: AttrChanges = VALUE_TYPES
        .iter()
        .map(|(k, _)| ((*k).to_owned(), None))
        .collect();
    t.export_typed(
        t.typed_change(ExportKind::Update, removal),
        "removing every value",
    );
    let got = t.import_typed("after removing every value");
    t.assert_reads_back(&Attributes::new(), &got, "removing every value");
}
