//! What a connector can tell of its system's schema before any run (a CSV
//! header, a table's columns), and whether an MA's rules can find a name in
//! it: `autosync check` reports a rule reading a name the schema lacks, and
//! a full import warns about one.

use crate::SettingError;
use autosync_model::{MaDef, ObjectTypeDef};
use std::collections::BTreeMap;

/// What a connector can tell of its system's schema without importing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaLookup {
    /// The attributes are known (a CSV file's header, a table's columns).
    Known(SourceSchema),
    /// The system declares no schema (JSON lines: each object has the keys
    /// it has): only a run can tell.
    Undeclared,
    /// The system has a schema but it cannot be read now: why, naming what
    /// (a file that does not exist yet, a database that cannot be opened).
    Unavailable(String),
}

/// The attribute names a connected system's objects can have, as read from
/// the system itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSchema {
    /// Where the names were read, for messages: `data/hr.csv`, or
    /// ``table `users` of data/app.db``. No secret in it.
    pub source: String,
    /// Per object type of the MA (by name): its objects' attributes.
    pub object_types: BTreeMap<String, ObjectTypeSchema>,
    /// Whether an export may add attributes not listed (a CSV export adds
    /// a column): then what the MA's own exports write counts as present.
    pub export_adds_attributes: bool,
    /// Settings the system contradicts (a configured column the table does
    /// not have), each at its key in the `connector` table: errors.
    pub problems: Vec<SettingError>,
    /// Why an object type cannot have a name the system defines (an LDAP
    /// attribute type its object classes do not allow): said instead of
    /// "does not have". Empty where every object has the same names.
    pub restrictions: Restrictions,
    /// Other names the system gives the names it defines (an LDAP
    /// attribute type's aliases and OID: `rfc822Mailbox` for `mail`),
    /// lowercased, each with the name the system answers with and the
    /// connector space holds. A rule naming one reads nothing: it is told
    /// that name instead of "does not have". Empty where names have none.
    pub aliases: BTreeMap<String, String>,
}

/// Names a system defines that only some of its objects may have, and
/// what decides it, in the words of messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// Per object type (by name): what limits its names, a phrase that
    /// takes a plural verb (``object class `inetOrgPerson` and its
    /// superclasses``).
    pub object_types: BTreeMap<String, String>,
    /// Per name the system defines that some object types lack (as the
    /// system spells it): how an object could have it, a sentence
    /// (``object class `posixAccount` (auxiliary) allows it: ...``), or
    /// `None` when nothing in the system allows it.
    pub names: BTreeMap<String, Option<String>>,
}

impl Restrictions {
    /// For `name`, which object types `types` lack: why each lacks it, when
    /// the system defines it and limits every one of them.
    pub fn why_not<'a>(&'a self, types: &[&'a str], name: &str) -> Option<Vec<(&'a str, &'a str)>> {
        if types.is_empty() || !self.names.contains_key(name) {
            return None;
        }
        types
            .iter()
            .map(|t| self.object_types.get(*t).map(|why| (*t, why.as_str())))
            .collect()
    }
}

/// The attributes of one object type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectTypeSchema {
    /// Every attribute an imported object of this type can have.
    pub attributes: Vec<String>,
    /// The attribute the connector reads each object's anchor from: the
    /// object type's `anchor`, unless a setting names another (SQLite's
    /// `anchor_column`).
    pub anchor: String,
}

impl SourceSchema {
    /// A schema whose object types all have the same attributes (one CSV
    /// header, one table), each type's anchor read from `anchor(type)`.
    pub fn uniform(
        source: impl Into<String>,
        object_types: &[ObjectTypeDef],
        attributes: &[String],
        anchor: impl Fn(&ObjectTypeDef) -> String,
        export_adds_attributes: bool,
    ) -> SourceSchema {
        SourceSchema {
            source: source.into(),
            object_types: object_types
                .iter()
                .map(|t| {
                    let schema = ObjectTypeSchema {
                        attributes: attributes.to_vec(),
                        anchor: anchor(t),
                    };
                    (t.name.clone(), schema)
                })
                .collect(),
            export_adds_attributes,
            problems: Vec::new(),
            restrictions: Restrictions::default(),
            aliases: BTreeMap::new(),
        }
    }

    /// The name the system holds `name`'s values under, when `name` is
    /// another name of it (an alias or OID, in any case).
    pub fn alias_of(&self, name: &str) -> Option<&str> {
        self.aliases
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl SourceSchema {
    /// Whether objects of `object_type` of `ma` (the MA this schema is
    /// for) have attribute `name`: the schema lists it, or the MA's own
    /// exports write it into a system whose export adds attributes (it is
    /// there after the first export). An object type the schema does not
    /// list is unknown: anything may be there.
    pub fn has(&self, ma: &MaDef, object_type: &str, name: &str) -> bool {
        let listed = self
            .object_types
            .get(object_type)
            .is_none_or(|t| t.attributes.iter().any(|a| a == name));
        listed || (self.export_adds_attributes && exported(ma, object_type, name))
    }
}

/// Whether `ma`'s exports write `name` on objects of `object_type`: an
/// export flow's target, or the anchor or DN attribute of an object type
/// that is provisioned or exported to.
fn exported(ma: &MaDef, object_type: &str, name: &str) -> bool {
    let applies = |t: &Option<String>| t.as_deref().is_none_or(|t| t == object_type);
    let mut flows = ma
        .export_flows
        .iter()
        .filter(|f| applies(&f.object_type))
        .peekable();
    let exports = flows.peek().is_some() || ma.provisioning.iter().any(|p| applies(&p.object_type));
    let key = ma
        .object_type(object_type)
        .is_some_and(|t| t.anchor == name || t.dn.as_deref() == Some(name));
    (key && exports) || flows.any(|f| f.cs == name)
}
