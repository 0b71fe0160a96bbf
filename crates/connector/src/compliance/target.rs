//! What the compliance suite knows of a connected system under test
//! ([`ComplianceTarget`]), its test objects and how an import stream is
//! read to the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{
    Connector, ExportChange, ExportOutcome, ImportChange, ImportItem, ImportStream, ImportedObject,
};
use autosync_model::{AttrChanges, Attributes, ExportKind, ObjectTypeDef, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A connected system under test, with everything the suite needs.
pub struct ComplianceTarget {
    /// Shown in every assertion message, e.g. `csv`.
    pub name: String,
    /// The object type the connector is configured with (anchor and optional
    /// DN attribute).
    pub object_type: ObjectTypeDef,
    /// Attributes (besides the anchor and DN ones) the system can store as
    /// strings; at least two.
    pub attributes: Vec<String>,
    /// The import batch size the connector is configured with.
    pub batch_size: usize,
    /// How many objects the streaming check writes and reads (several batches).
    pub large_count: usize,
    /// Whether a delta import reports deletes (a change-tracking column cannot).
    pub delta_sees_deletes: bool,
    /// Whether a full import with an unchanged system reports `unchanged()`.
    pub detects_unchanged: bool,
    /// Empty the system (an empty file, an empty table).
    pub reset: Box<dyn Fn()>,
    /// A new connector on the system as it is now.
    pub make: Box<dyn Fn() -> Box<dyn Connector>>,
    /// The system's objects read without the connector: anchor -> attributes
    /// (including the anchor and DN attributes).
    pub read_back: Box<dyn Fn() -> BTreeMap<String, Attributes>>,
    /// A new connector on an empty system (another file, another table)
    /// whose objects have, besides the anchor, one attribute per name of
    /// [`VALUE_TYPES`], each able to hold its kind of value (a column of
    /// the fitting type, multi-valued columns declared as such); same
    /// object type as `make`.
    pub make_typed: Box<dyn Fn() -> Box<dyn Connector>>,
}

/// What a full import should return for one object.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Expected {
    pub(super) object_type: String,
    pub(super) dn: String,
    pub(super) attributes: Attributes,
}

impl ComplianceTarget {
    pub(super) fn dn_attr(&self) -> Option<&str> {
        self.object_type
            .dn
            .as_deref()
            .filter(|d| *d != self.object_type.anchor)
    }

    pub(super) fn anchor(i: usize) -> String {
        format!("u{i:07}")
    }

    /// The attributes of test object `i`.
    pub(super) fn attrs(&self, i: usize) -> Attributes {
        let mut a = Attributes::new();
        a.insert(
            self.object_type.anchor.clone(),
            Value::from(Self::anchor(i)),
        );
        if let Some(dn) = self.dn_attr() {
            a.insert(dn.to_owned(), Value::from(format!("cn=User {i},ou=people")));
        }
        for (k, name) in self.attributes.iter().enumerate() {
            let v = if i == 1 && k == 0 {
                "O'Brien, \"Jr\" é\nsecond line".to_owned()
            } else {
                format!("{name} {i}")
            };
            a.insert(name.clone(), Value::from(v));
        }
        a
    }

    pub(super) fn expected(&self, attributes: Attributes) -> Expected {
        let anchor = attributes[&self.object_type.anchor].to_text();
        let dn = match self.dn_attr() {
            Some(d) => attributes.get(d).map(Value::to_text).unwrap_or(anchor),
            None => anchor,
        };
        Expected {
            object_type: self.object_type.name.clone(),
            dn,
            attributes,
        }
    }

    pub(super) fn add(&self, i: usize) -> ExportChange {
        self.add_with(i, self.attrs(i))
    }

    pub(super) fn add_with(&self, i: usize, attrs: Attributes) -> ExportChange {
        let e = self.expected(attrs.clone());
        ExportChange {
            values: Default::default(),
            object_type: self.object_type.name.clone(),
            anchor: Self::anchor(i),
            dn: e.dn,
            kind: ExportKind::Add,
            changes: attrs.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            new_dn: None,
        }
    }

    pub(super) fn update(&self, anchor: &str, changes: AttrChanges) -> ExportChange {
        ExportChange {
            values: Default::default(),
            object_type: self.object_type.name.clone(),
            anchor: anchor.to_owned(),
            dn: anchor.to_owned(),
            kind: ExportKind::Update,
            changes,
            new_dn: None,
        }
    }

    pub(super) fn delete(&self, anchor: &str) -> ExportChange {
        ExportChange {
            kind: ExportKind::Delete,
            ..self.update(anchor, AttrChanges::new())
        }
    }

    pub(super) fn attr(&self, k: usize) -> String {
        assert!(
            self.attributes.len() >= 2,
            "[{}] the compliance target needs at least two attributes",
            self.name
        );
        self.attributes[k].clone()
    }

    /// Export batches in one session, commit, and return every outcome.
    pub(super) fn export(&self, batches: &[Vec<ExportChange>]) -> Vec<ExportOutcome> {
        let mut conn = (self.make)();
        let mut session = conn
            .begin_export()
            .unwrap_or_else(|e| panic!("[{}] begin_export failed: {e}", self.name));
        let mut out = Vec::new();
        for batch in batches {
            let outcomes = session
                .apply(batch)
                .unwrap_or_else(|e| panic!("[{}] export apply failed: {e}", self.name));
            assert_eq!(
                outcomes.len(),
                batch.len(),
                "[{}] export must return one outcome per change",
                self.name
            );
            out.extend(outcomes);
        }
        session
            .commit()
            .unwrap_or_else(|e| panic!("[{}] export commit failed: {e}", self.name));
        out
    }

    pub(super) fn assert_all_applied(&self, outcomes: &[ExportOutcome], what: &str) {
        for (i, o) in outcomes.iter().enumerate() {
            assert!(
                matches!(o, ExportOutcome::Applied { .. }),
                "[{}] {what}: change #{i} should be applied, got {o:?}",
                self.name
            );
        }
    }

    /// Seed the emptied system with objects `0..n`.
    pub(super) fn seed(&self, n: usize) -> BTreeMap<String, Expected> {
        (self.reset)();
        let adds: Vec<ExportChange> = (0..n).map(|i| self.add(i)).collect();
        let batches: Vec<Vec<ExportChange>> = adds.chunks(1000).map(<[_]>::to_vec).collect();
        let outcomes = self.export(&batches);
        self.assert_all_applied(&outcomes, "seeding adds");
        (0..n)
            .map(|i| (Self::anchor(i), self.expected(self.attrs(i))))
            .collect()
    }

    pub(super) fn full_import(&self, watermark: Option<&str>) -> Imported {
        let mut conn = (self.make)();
        let stream = conn
            .full_import(watermark)
            .unwrap_or_else(|e| panic!("[{}] full_import failed: {e}", self.name));
        drain(&self.name, stream)
    }

    pub(super) fn delta_import(&self, watermark: Option<&str>) -> Imported {
        let mut conn = (self.make)();
        let stream = conn
            .delta_import(watermark)
            .unwrap_or_else(|e| panic!("[{}] delta_import failed: {e}", self.name));
        drain(&self.name, stream)
    }

    pub(super) fn objects(&self, imported: &Imported) -> BTreeMap<String, ImportedObject> {
        let mut out = BTreeMap::new();
        for item in imported.batches.iter().flatten() {
            let obj = match item {
                Ok(o) => o.clone(),
                Err(e) => panic!("[{}] import returned a record error: {e:?}", self.name),
            };
            let anchor = obj.anchor.clone();
            assert!(
                out.insert(anchor.clone(), obj).is_none(),
                "[{}] import returned anchor {anchor} twice",
                self.name
            );
        }
        out
    }

    pub(super) fn assert_full_state(
        &self,
        imported: &Imported,
        expected: &BTreeMap<String, Expected>,
        what: &str,
    ) {
        let got = self.objects(imported);
        let got_anchors: BTreeSet<&String> = got.keys().collect();
        let want_anchors: BTreeSet<&String> = expected.keys().collect();
        assert_eq!(
            got_anchors, want_anchors,
            "[{}] {what}: anchors imported",
            self.name
        );
        for (anchor, want) in expected {
            let obj = &got[anchor];
            assert_eq!(
                obj.change,
                ImportChange::Full,
                "[{}] {what}: {anchor} change",
                self.name
            );
            assert_eq!(
                obj.object_type, want.object_type,
                "[{}] {what}: {anchor} object type",
                self.name
            );
            assert_eq!(obj.dn, want.dn, "[{}] {what}: {anchor} dn", self.name);
            assert_eq!(
                obj.attributes, want.attributes,
                "[{}] {what}: {anchor} attributes",
                self.name
            );
        }
    }

    pub(super) fn assert_read_back(&self, expected: &BTreeMap<String, Expected>, what: &str) {
        let got = (self.read_back)();
        let want: BTreeMap<String, Attributes> = expected
            .iter()
            .map(|(a, e)| (a.clone(), e.attributes.clone()))
            .collect();
        assert_eq!(
            got, want,
            "[{}] {what}: the system read back directly",
            self.name
        );
    }
}

/// Everything an import stream yielded.
pub(super) struct Imported {
    pub(super) batches: Vec<Vec<ImportItem>>,
    pub(super) watermark: Option<String>,
    pub(super) unchanged: bool,
}

pub(super) fn drain(name: &str, mut stream: Box<dyn ImportStream + '_>) -> Imported {
    let unchanged = stream.unchanged();
    let mut batches = Vec::new();
    while let Some(batch) = stream
        .next_batch()
        .unwrap_or_else(|e| panic!("[{name}] next_batch failed: {e}"))
    {
        batches.push(batch);
    }
    Imported {
        batches,
        watermark: stream.watermark(),
        unchanged,
    }
}
