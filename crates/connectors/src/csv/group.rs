//! A file read as groups of rows (`group_by`, `group_values`): one object
//! per distinct non-empty value of the `group_by` column, anchored by it,
//! holding that value and, per `group_values` attribute, the distinct
//! values of its column over the group's rows (sorted). A department
//! column gives the departments, each with its people's ids as members:
//! a person who changes department leaves one group and joins another in
//! the same import, from the same file.
//!
//! The rows are read by the ordinary import (quotes, UTF-8, field counts
//! checked alike), with the group column as their anchor and repeats
//! allowed; the groups are made once the file is read (memory: the
//! groups' values). A row with an empty group cell is in no group. A row
//! in error is reported as the ordinary import reports it, naming the
//! group when its cell could be read (a full import then keeps that group
//! rather than staging its delete), and its values are in no group until
//! it is fixed.

use super::config::{CsvSettings, Grouping};
use super::import::CsvImport;
use crate::settings::ObjectTypes;
use autosync_connector::{ConnectorError, ImportChange, ImportItem, ImportStream, ImportedObject};
use autosync_model::{Attributes, ObjectTypeDef, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The settings the rows are read with: one object type anchored by the
/// group column (the MA's own type, checked by the settings).
pub fn row_settings(s: &CsvSettings, g: &Grouping) -> CsvSettings {
    let mut rows = s.clone();
    rows.types = ObjectTypes {
        types: vec![ObjectTypeDef {
            name: type_name(s),
            anchor: g.by.clone(),
            dn: None,
            references: BTreeMap::new(),
        }],
        type_column: None,
    };
    rows
}

/// The MA's one object type.
fn type_name(s: &CsvSettings) -> String {
    s.types
        .types
        .first()
        .map_or_else(|| "group".to_owned(), |t| t.name.clone())
}

/// A running grouped import over the rows' import.
pub struct GroupedImport<'a> {
    rows: CsvImport<'a>,
    grouping: &'a Grouping,
    object_type: String,
    batch_size: usize,
    /// Group value -> attribute -> its values.
    groups: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// The groups made, once every row is read.
    made: Option<std::vec::IntoIter<ImportedObject>>,
}

impl<'a> GroupedImport<'a> {
    /// `rows` read with [`row_settings`] of the MA's settings `s`.
    pub fn new(rows: CsvImport<'a>, s: &CsvSettings, grouping: &'a Grouping) -> Self {
        GroupedImport {
            rows: rows.repeating_anchors(),
            grouping,
            object_type: type_name(s),
            batch_size: s.batch_size,
            groups: BTreeMap::new(),
            made: None,
        }
    }

    /// Add one row to its group.
    fn add(&mut self, row: ImportedObject) {
        let group = self.groups.entry(row.anchor).or_default();
        for (attr, column) in &self.grouping.values {
            let values = group.entry(attr.clone()).or_default();
            match row.attributes.get(column) {
                Some(Value::Multi(vs)) => values.extend(vs.iter().map(Value::to_string)),
                Some(v) => {
                    values.insert(v.to_string());
                }
                None => {}
            }
        }
    }

    fn make(&mut self) -> std::vec::IntoIter<ImportedObject> {
        let object_type = self.object_type.clone();
        std::mem::take(&mut self.groups)
            .into_iter()
            .map(|(key, values)| {
                let mut attributes = Attributes::new();
                attributes.insert(self.grouping.by.clone(), Value::String(key.clone()));
                for (attr, vs) in values.into_iter().filter(|(_, vs)| !vs.is_empty()) {
                    attributes.insert(
                        attr,
                        Value::Multi(vs.into_iter().map(Value::String).collect()),
                    );
                }
                ImportedObject {
                    object_type: object_type.clone(),
                    dn: key.clone(),
                    anchor: key,
                    change: ImportChange::Full,
                    attributes,
                    values: Default::default(),
                }
            })
            .collect::<Vec<_>>()
            .into_iter()
    }
}

impl ImportStream for GroupedImport<'_> {
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError> {
        if self.made.is_none() {
            // Read every row; what is not a row is passed on.
            let mut errors: Vec<ImportItem> = Vec::new();
            while let Some(batch) = self.rows.next_batch()? {
                for item in batch {
                    match item {
                        Ok(row) => self.add(row),
                        // An empty group cell: the row is in no group.
                        Err(e) if e.error_type == "missing-anchor" => {}
                        Err(e) => errors.push(Err(e)),
                    }
                }
                if errors.len() >= self.batch_size {
                    return Ok(Some(errors));
                }
            }
            self.made = Some(self.make());
            if !errors.is_empty() {
                return Ok(Some(errors));
            }
        }
        let Some(made) = self.made.as_mut() else {
            return Ok(None);
        };
        let batch: Vec<ImportItem> = made.by_ref().take(self.batch_size).map(Ok).collect();
        Ok(if batch.is_empty() { None } else { Some(batch) })
    }

    fn watermark(&self) -> Option<String> {
        self.rows.watermark()
    }

    fn unchanged(&self) -> bool {
        self.rows.unchanged()
    }
}
