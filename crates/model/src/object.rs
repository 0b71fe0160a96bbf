//! Connector-space and metaverse objects.

use crate::value::{AttrChanges, Attributes, Value, ValueChanges};
use serde::{Deserialize, Serialize};

/// Store-assigned id of a connector-space object (unique across all MAs).
pub type CsId = i64;
/// Store-assigned id of a metaverse object.
pub type MvId = i64;
/// Store-assigned id of a run.
pub type RunId = i64;

/// How a connector-space object relates to the metaverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Connection {
    /// Not joined; join and projection rules are tried on the next sync.
    Disconnector,
    /// Joined to a metaverse object.
    Connector { mv_id: MvId },
    /// Never joined again until an operator says otherwise.
    ExplicitDisconnector,
}

impl Connection {
    pub fn mv_id(&self) -> Option<MvId> {
        match self {
            Connection::Connector { mv_id } => Some(*mv_id),
            _ => None,
        }
    }
}

/// What an import staged for an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportKind {
    Add,
    Update,
    Delete,
    /// The object was deleted and re-added with the same anchor (its object
    /// type changed, or the source said so).
    DeleteAdd,
}

/// A change staged by an import and not yet synchronised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingImport {
    pub kind: ImportKind,
    /// The object's complete new attributes (empty for a delete).
    pub attributes: Attributes,
    /// The new display key, when it changed (a rename).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// The new object type, for a delete-add that changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    /// For an update: value-level changes of the hologram's large
    /// multi-valued attributes (the store's value rows), which `attributes`
    /// then does not hold: the new value is the hologram's with these
    /// values added and removed. Empty for every other attribute and kind.
    #[serde(default, skip_serializing_if = "ValueChanges::is_empty")]
    pub values: ValueChanges,
}

/// What synchronisation staged for an object on its target system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportKind {
    Add,
    Update,
    Rename,
    Delete,
    DeleteAdd,
}

/// A change staged by synchronisation and not yet sent (pending export), or
/// sent and not yet seen back by a confirming import (unconfirmed export).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingExport {
    pub kind: ExportKind,
    /// Attribute replacements. For an add, the complete attributes.
    pub changes: AttrChanges,
    /// The new display key of a rename (or an add's display key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_dn: Option<String>,
    /// For an update: value-level changes of multi-valued attributes not
    /// in `changes` (values added to and removed from the hologram's).
    #[serde(default, skip_serializing_if = "ValueChanges::is_empty")]
    pub values: ValueChanges,
}

/// Where a per-object error was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorStage {
    Import,
    Sync,
    Export,
}

/// A per-object error, kept with the object (until a later run succeeds on
/// it) and with the run that raised it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectError {
    pub stage: ErrorStage,
    /// A stable, kebab-case error type, e.g. `duplicate-anchor`,
    /// `ambiguous-join`, `expression-failed`, `export-rejected`.
    pub error_type: String,
    /// Human detail: what and where.
    pub detail: String,
    /// The run that raised it.
    pub run_id: Option<RunId>,
}

/// A connector-space object: the engine's staging copy of one object of a
/// connected system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsObject {
    /// 0 until the store assigns one.
    pub id: CsId,
    pub ma: String,
    /// Immutable unique id in the connected system.
    pub anchor: String,
    /// Distinguished name or other display key.
    pub dn: String,
    pub object_type: String,
    /// Attributes as last confirmed from the system and synchronised.
    pub hologram: Attributes,
    /// Whether the object exists in the connected system as far as we know
    /// (false for an object provisioned but not yet exported).
    pub present: bool,
    /// Created by provisioning (not imported and joined): only such
    /// connectors are deprovisioned when their metaverse object stops
    /// meeting the provisioning condition, unless the MA says otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisioned: bool,
    pub connection: Connection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_import: Option<PendingImport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_export: Option<PendingExport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconfirmed_export: Option<PendingExport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ObjectError>,
}

impl CsObject {
    /// A new object as an import first sees it.
    pub fn new(ma: &str, anchor: &str, dn: &str, object_type: &str) -> Self {
        CsObject {
            id: 0,
            ma: ma.to_owned(),
            anchor: anchor.to_owned(),
            dn: dn.to_owned(),
            object_type: object_type.to_owned(),
            hologram: Attributes::new(),
            present: false,
            provisioned: false,
            connection: Connection::Disconnector,
            pending_import: None,
            pending_export: None,
            unconfirmed_export: None,
            error: None,
        }
    }

    /// Make value-level pending changes whole (see `PendingImport::values`,
    /// `PendingExport::values`): each attribute's new value from the
    /// hologram's whole value (the unconfirmed export's for a pending
    /// export). What a whole read of the store gives: code that reads
    /// objects whole never sees value-level changes.
    pub fn make_whole(&mut self) {
        fn apply(
            changes: &mut crate::value::AttrChanges,
            values: &mut ValueChanges,
            base: &dyn Fn(&str) -> Option<Value>,
        ) {
            for (attr, d) in std::mem::take(values) {
                let before = match changes.get(&attr) {
                    Some(c) => c.clone(),
                    None => base(&attr),
                };
                changes.insert(attr, d.apply_to(before.as_ref()));
            }
        }
        if let Some(p) = &mut self.pending_import
            && !p.values.is_empty()
        {
            for (attr, d) in std::mem::take(&mut p.values) {
                let before = p
                    .attributes
                    .get(&attr)
                    .or_else(|| self.hologram.get(&attr))
                    .cloned();
                match d.apply_to(before.as_ref()) {
                    Some(v) => p.attributes.insert(attr, v),
                    None => p.attributes.remove(&attr),
                };
            }
        }
        let hologram = &self.hologram;
        let mut unconfirmed = self.unconfirmed_export.take();
        if let Some(u) = &mut unconfirmed
            && !u.values.is_empty()
        {
            let base = |a: &str| hologram.get(a).cloned();
            apply(&mut u.changes, &mut u.values, &base);
        }
        if let Some(p) = &mut self.pending_export
            && !p.values.is_empty()
        {
            let base = |a: &str| match unconfirmed.as_ref().and_then(|u| u.changes.get(a)) {
                Some(c) => c.clone(),
                None => hologram.get(a).cloned(),
            };
            apply(&mut p.changes, &mut p.values, &base);
        }
        self.unconfirmed_export = unconfirmed;
    }

    /// The value of an attribute as synchronisation sees it: the pending
    /// import when there is one, else the hologram.
    pub fn current(&self, attr: &str) -> Option<&Value> {
        match &self.pending_import {
            Some(p) if p.kind != ImportKind::Delete => p.attributes.get(attr),
            Some(_) => None,
            None => self.hologram.get(attr),
        }
    }
}

/// One metaverse attribute value with the MA that contributed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MvValue {
    pub value: Value,
    /// Name of the MA whose inbound flow set this value.
    pub contributor: String,
}

/// A metaverse object: the joined view of one identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MvObject {
    /// 0 until the store assigns one.
    pub id: MvId,
    pub object_type: String,
    pub attributes: std::collections::BTreeMap<String, MvValue>,
}

impl MvObject {
    pub fn new(object_type: &str) -> Self {
        MvObject {
            id: 0,
            object_type: object_type.to_owned(),
            attributes: Default::default(),
        }
    }

    pub fn get(&self, attr: &str) -> Option<&Value> {
        self.attributes.get(attr).map(|v| &v.value)
    }
}
