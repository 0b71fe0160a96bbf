//! One row of the table as an import item: its columns read by their
//! types, its object type, its anchor (a blank or binary anchor is no
//! object's; one of the scan's repeated anchors an error naming them all),
//! and its DN.

use super::super::config::SqliteSettings;
use super::super::db::Schema;
use super::super::types;
use autosync_connector::{ImportChange, ImportItem, ImportRecordError, ImportedObject};
use autosync_model::{Attributes, Value};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use std::collections::{HashMap, HashSet};

/// A row (columns as in `select_list`, from `offset`) as an import item:
/// an error when its anchor is one of `repeats`.
pub(super) fn item(
    s: &SqliteSettings,
    schema: &Schema,
    seen: &mut HashSet<String>,
    repeats: &HashMap<String, String>,
    row: &Row<'_>,
    offset: usize,
    location: String,
) -> rusqlite::Result<ImportItem> {
    let err = |anchor: Option<String>, kind: &str, detail: String| {
        Ok(Err(ImportRecordError {
            anchor,
            detail,
            location: location.clone(),
            error_type: kind.to_owned(),
        }))
    };
    // The anchor, when its column is readable: a row that fails for
    // another reason still names its object, which a full import then
    // keeps (with the error) instead of staging its delete.
    let anchor_hint = || {
        let i = schema.columns.iter().position(|c| *c == s.anchor_column)?;
        match row.get_ref(offset + i).ok()? {
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .filter(|a| !a.trim().is_empty())
                .map(str::to_owned),
            ValueRef::Integer(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut attrs = Attributes::new();
    for (i, (name, t)) in schema.columns.iter().zip(&schema.types).enumerate() {
        match types::read(row.get_ref(offset + i)?, t.holds) {
            Ok(Some(v)) => {
                attrs.insert(name.clone(), v);
            }
            Ok(None) => {}
            Err(_) => {
                return err(
                    anchor_hint(),
                    "invalid-utf8",
                    format!("column `{name}` is not valid UTF-8"),
                );
            }
        }
    }
    let type_value = match &s.types.type_column {
        Some(_) => match row.get_ref(offset + schema.columns.len())? {
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            _ => Some(String::new()),
        },
        None => None,
    };
    let t = match s.types.for_row(type_value.as_deref()) {
        Ok(t) => t,
        Err((kind, detail)) => return err(anchor_hint(), kind, detail),
    };
    // Text of only spaces (an export padding an empty value) is no anchor
    // either: read as one, a row whose anchor was blanked would be a new
    // object and its real one would be deleted. An anchor with text is
    // kept as it is, spaces around it included.
    let anchor = match attrs.get(&s.anchor_column) {
        Some(Value::String(a)) if !a.trim().is_empty() => a.clone(),
        Some(Value::Integer(i)) => i.to_string(),
        Some(Value::String(a)) if !a.is_empty() => {
            let detail = format!("no anchor: column `{}` holds only spaces", s.anchor_column);
            return err(None, "missing-anchor", detail);
        }
        Some(Value::String(_)) | None => {
            let detail = format!("no anchor: column `{}` is empty", s.anchor_column);
            return err(None, "missing-anchor", detail);
        }
        Some(_) => {
            let detail = format!("anchor column `{}` holds binary data", s.anchor_column);
            return err(None, "invalid-anchor", detail);
        }
    };
    if let Some(detail) = anchor_hint().and_then(|held| repeats.get(&held)) {
        return err(Some(anchor), "duplicate-anchor", detail.clone());
    }
    if !seen.insert(anchor.clone()) {
        // Only when two rows hold one anchor as different types (a REAL
        // 1.0 and an INTEGER 1), or a changelog names it in both: the
        // query of `repeats` sees neither.
        let detail = format!(
            "anchor {anchor:?} was already read from another row (one holding it as another \
             type) or changelog entry; this one is not read"
        );
        return err(Some(anchor), "duplicate-anchor", detail);
    }
    let dn = crate::settings::ObjectTypes::dn_attr(t)
        .and_then(|d| attrs.get(d))
        .map(Value::to_text)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| anchor.clone());
    Ok(Ok(ImportedObject {
        values: Default::default(),
        object_type: t.name.clone(),
        anchor,
        dn,
        change: ImportChange::Full,
        attributes: attrs,
    }))
}
