//! How one export change turns into a record's complete attributes, for the
//! connectors that rewrite whole records (JSON Lines): object type checks,
//! anchor immutability, DN attribute and renames, add-as-replace (of a
//! replayed add only: see each connector's export).

use crate::settings::ObjectTypes;
use autosync_connector::ExportChange;
use autosync_model::{Attributes, ExportKind, ObjectTypeDef, Value, value::apply_changes};

/// A per-object export failure: error type and detail.
pub type Failure = (&'static str, String);

/// The object type a change is for.
pub fn object_type<'t>(
    types: &'t ObjectTypes,
    c: &ExportChange,
) -> Result<&'t ObjectTypeDef, Failure> {
    match &types.type_column {
        Some(_) => types.get(&c.object_type),
        None => types.types.first(),
    }
    .ok_or_else(|| {
        (
            "unknown-object-type",
            format!("object type `{}` is not handled by this MA", c.object_type),
        )
    })
}

/// The record after `c` (not a delete): an add or delete-add replaces the
/// record (the caller lets an add for an existing anchor through only as
/// a replay: the record holds every value it sends), an update or rename
/// changes `existing` (which must exist).
pub fn apply(
    types: &ObjectTypes,
    c: &ExportChange,
    existing: Option<Attributes>,
) -> Result<Attributes, Failure> {
    let t = object_type(types, c)?;
    if let Some(Some(v)) = c.changes.get(&t.anchor)
        && v.to_text() != c.anchor
    {
        return Err((
            "anchor-mismatch",
            format!("`{}` is the anchor and cannot change", t.anchor),
        ));
    }
    let is_add = matches!(c.kind, ExportKind::Add | ExportKind::DeleteAdd);
    let mut attrs = match (is_add, existing) {
        (true, _) => Attributes::new(),
        (false, Some(a)) => a,
        (false, None) => {
            return Err((
                "object-not-found",
                format!("no record has anchor {:?}", c.anchor),
            ));
        }
    };
    if !attrs.contains_key(&t.anchor) {
        attrs.insert(t.anchor.clone(), Value::from(c.anchor.as_str()));
    }
    if let Some(col) = &types.type_column {
        attrs.insert(col.clone(), Value::from(c.object_type.as_str()));
    }
    let dn_attr = ObjectTypes::dn_attr(t);
    if let (true, Some(d)) = (is_add, dn_attr) {
        attrs.insert(d.to_owned(), Value::from(c.dn.as_str()));
    }
    if let Some(new_dn) = &c.new_dn {
        match dn_attr {
            Some(d) => {
                attrs.insert(d.to_owned(), Value::from(new_dn.as_str()));
            }
            None => {
                return Err((
                    "rename-not-supported",
                    format!("object type `{}` has no DN attribute", t.name),
                ));
            }
        }
    }
    apply_changes(&mut attrs, &c.changes);
    Ok(attrs)
}

/// Whether an attribute's name says it holds a secret (a password, a
/// token): an export error never shows its values. The connectors are not
/// told which attributes are write-only, and the engine sends their
/// values in clear.
pub use autosync_model::secret::secret_name;

/// A value's text as an error shows it: cut after 60 characters.
pub fn cut(text: String) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// Why an add over an object it did not write fails, after the values that
/// differ (see [`named_differences`]).
pub const OUTSIDE: &str = "an object made outside autosync is not overwritten; the confirming import reads it: when the MA's join rules join it to the person (or the provisioning rule adopts), the add becomes an update of the values that differ, and otherwise the add stays pending with this error";

/// The first three of `differ` (each `attribute: held, sent`), and how
/// many more, for an `already-exists` message.
pub fn named_differences(differ: &[String]) -> String {
    const NAMED: usize = 3;
    let mut text = differ
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if differ.len() > NAMED {
        text.push_str(&format!("; and {} more", differ.len() - NAMED));
    }
    text
}
