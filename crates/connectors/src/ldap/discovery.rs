//! What `autosync check` learns of the directory before any run
//! (`ConnectorFactory::schema`): it connects, binds and reads the
//! subschema entry, changing nothing. Each object type with object
//! classes has the attributes their `MUST` and `MAY` allow, superclasses
//! included (a type with `extensibleObject`, or without classes, may have
//! anything: it is left out), with the object classes, the anchor and
//! the DN attribute; attribute names as the import spells them (the
//! schema's first name, or as `attributes` writes it). An export into an
//! attribute the classes do not allow fails on every entry, so export
//! flows are checked too. A configured object class or attribute the
//! schema does not define is a problem at its key.

use super::classes::Allowed;
use super::config::{Anchor, LdapSettings};
use super::session::Session;
use autosync_connector::{ObjectTypeSchema, SchemaLookup, SettingError, SourceSchema};
use autosync_model::suggest;
use std::collections::BTreeMap;

/// The schema of the directory `s` names, or why it cannot be read.
pub fn read(s: &LdapSettings) -> SchemaLookup {
    let session = match Session::open(s) {
        Ok(session) => session,
        Err(e) => return SchemaLookup::Unavailable(e.message),
    };
    let schema = &session.schema;
    if schema.classes.is_empty() {
        return SchemaLookup::Unavailable(format!(
            "{} gave no object classes (its subschema entry cannot be read by this account)",
            s.url
        ));
    }
    let mut problems = Vec::new();
    for t in &s.types {
        for c in t.classes.iter().filter(|c| !schema.classes.has(c)) {
            problems.push(SettingError {
                key: "object_classes".into(),
                message: format!(
                    "object class `{c}` of object type `{}` is not in the schema of {}",
                    t.name, s.url
                ),
                help: suggest::did_you_mean(c, schema.classes.names()),
            });
        }
    }
    // Types whose entries are the same once superclasses count (an entry
    // given `person`, which its `inetOrgPerson` is anyway, would change
    // type): the configuration check catches only the same lists.
    let closures: Vec<_> = s
        .types
        .iter()
        .filter(|t| !t.classes.is_empty())
        .map(|t| (t, schema.classes.closure(&t.classes)))
        .collect();
    for (i, (a, ca)) in closures.iter().enumerate() {
        for (b, cb) in closures.iter().skip(i + 1) {
            let same_lists = {
                let low = |v: &[String]| -> std::collections::BTreeSet<String> {
                    v.iter().map(|c| c.to_ascii_lowercase()).collect()
                };
                low(&a.classes) == low(&b.classes)
            };
            if ca == cb && !same_lists {
                problems.push(SettingError {
                    key: "object_classes".into(),
                    message: format!(
                        "object types `{}` ({}) and `{}` ({}) are the same classes once their \
                         superclasses count in the schema of {}: an entry of one that lists a \
                         superclass it has anyway would be read as the other; give one of them \
                         a class the other has not (e.g. an auxiliary class)",
                        a.name,
                        a.classes.join(", "),
                        b.name,
                        b.classes.join(", "),
                        s.url
                    ),
                    help: None,
                });
            }
        }
    }
    let listed = s.attributes.iter().flatten();
    for a in listed.clone().filter(|a| schema.canonical(a).is_none()) {
        problems.push(SettingError {
            key: "attributes".into(),
            message: format!("`{a}` is not an attribute type of the schema of {}", s.url),
            help: suggest::did_you_mean(a, schema.attribute_names()),
        });
    }
    let mut object_types = BTreeMap::new();
    for t in s.types.iter().filter(|t| !t.classes.is_empty()) {
        let Allowed::Listed(allowed) = schema.classes.allowed(&t.classes) else {
            continue;
        };
        let mut names: Vec<String> = allowed
            .iter()
            .map(|a| schema.canonical(a).unwrap_or(a).to_owned())
            .collect();
        // As `attributes` writes them, when the import reads them so.
        for a in listed.clone() {
            let ok = schema.canonical(a).is_some_and(|c| {
                schema.is_operational(c) || allowed.iter().any(|x| schema.canonical(x) == Some(c))
            });
            if ok {
                names.push(a.clone());
            }
        }
        names.push("objectClass".into());
        let anchor = s.anchor.name().to_owned();
        if s.anchor == Anchor::Dn || schema.canonical(&anchor).is_some() {
            names.push(anchor.clone());
        }
        names.extend(t.dn_attr.clone());
        names.sort();
        names.dedup();
        object_types.insert(
            t.name.clone(),
            ObjectTypeSchema {
                attributes: names,
                anchor,
            },
        );
    }
    SchemaLookup::Known(SourceSchema {
        // Read whole even when the URL is hidden (a `${NAME}` value).
        source: format!("the schema of the directory at {}", s.url),
        object_types,
        export_adds_attributes: false,
        problems,
    })
}
