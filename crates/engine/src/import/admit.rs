//! What an imported object must pass before it is staged: no value (nor
//! its DN) larger than the MA's `max_value_size`, and its write-only
//! attributes dropped or sealed. Each failure is a record error.

use autosync_connector::{ImportRecordError, ImportedObject};
use autosync_model::Value;

use super::Importer;

impl Importer<'_, '_> {
    /// The object, or a `value-too-large` error when a value (or its DN) is
    /// larger than the MA's `max_value_size`: a length compare per value.
    pub(super) fn within_size(
        &self,
        obj: ImportedObject,
    ) -> Result<ImportedObject, ImportRecordError> {
        fn size(v: &Value) -> usize {
            match v {
                Value::String(s) => s.len(),
                Value::Binary(b) => b.len(),
                Value::Multi(vs) => vs.iter().map(size).max().unwrap_or(0),
                Value::Integer(_) | Value::Boolean(_) | Value::Reference(_) => 0,
            }
        }
        let max = self.max_value_size;
        // The label is built only for a value found too large: this runs
        // for every attribute of every imported object.
        let too_large = obj
            .attributes
            .iter()
            .find_map(|(name, v)| {
                let n = size(v);
                (n > max).then(|| (n, format!("attribute `{name}`")))
            })
            .or_else(|| {
                obj.values.iter().find_map(|(name, d)| {
                    let n = d.add.iter().map(size).max().unwrap_or(0);
                    (n > max).then(|| (n, format!("attribute `{name}`")))
                })
            })
            .or_else(|| {
                (obj.dn.len() > max).then(|| (obj.dn.len(), "the display key (DN)".into()))
            });
        let Some((bytes, what)) = too_large else {
            return Ok(obj);
        };
        let anchor_len = obj.anchor.len();
        let anchor = (anchor_len <= max).then_some(obj.anchor);
        Err(ImportRecordError {
            location: match &anchor {
                Some(a) => format!("{} object {a:?}", self.ctx.ma.name),
                None => format!(
                    "{} object with an anchor of {anchor_len} bytes",
                    self.ctx.ma.name
                ),
            },
            anchor,
            error_type: "value-too-large".to_owned(),
            detail: format!(
                "{what} holds a value of {bytes} bytes, more than the MA's max_value_size of {max} bytes"
            ),
        })
    }

    /// The object with its write-only attributes dropped and its sealed
    /// ones sealed (`write_only`); a store key that cannot be read makes
    /// it a record error.
    pub(super) fn write_only_in(
        &self,
        mut obj: ImportedObject,
    ) -> Result<ImportedObject, ImportRecordError> {
        let Some(rules) = self.rules() else {
            return Ok(obj);
        };
        match rules
            .write_only
            .on_import(&self.ctx.engine.rules.secrets, &mut obj)
        {
            Ok(()) => Ok(obj),
            Err(detail) => Err(ImportRecordError {
                location: format!("{} object {:?}", self.ctx.ma.name, obj.anchor),
                anchor: Some(obj.anchor),
                error_type: "secret-key-unavailable".to_owned(),
                detail,
            }),
        }
    }
}
