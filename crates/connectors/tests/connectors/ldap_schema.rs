//! What the LDAP connector tells `autosync check` before any run: the
//! attributes each object type's classes allow (superclasses included),
//! read from the kit's slapd; settings the schema contradicts; a server
//! that cannot be reached.

use crate::common::{ctx, settings};
use crate::ldap_support::*;
use autosync_connector::{ConnectorFactory, SchemaLookup};
use autosync_connectors::ldap::LdapFactory;
use autosync_model::ObjectTypeDef;
use serde_json::json;
use std::path::Path;

fn types() -> Vec<ObjectTypeDef> {
    let t = |name: &str| ObjectTypeDef {
        name: name.into(),
        anchor: "entryUUID".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    };
    vec![t("person"), t("group")]
}

fn lookup(extra: serde_json::Value) -> SchemaLookup {
    let s = slapd();
    let v = admin_settings(s, s.suffix(), extra);
    LdapFactory.schema(&settings(v), &ctx(Path::new("."), types()))
}

#[test]
fn each_object_type_should_have_what_its_classes_allow() {
    let SchemaLookup::Known(schema) = lookup(json!({
        "object_classes": { "person": "inetOrgPerson", "group": ["groupOfNames", "extensibleObject"] },
        "attributes": ["mail", "cn", "entryCSN"],
    })) else {
        panic!("the schema should be known")
    };
    assert!(schema.problems.is_empty(), "{:?}", schema.problems);
    assert!(!schema.export_adds_attributes);
    let person = &schema.object_types["person"];
    assert_eq!(person.anchor, "entryUUID");
    for a in [
        "cn",
        "sn",
        "mail",
        "uid",
        "title",
        "userPassword",
        "objectClass",
        "entryUUID",
        "dn",
        // An operational one `attributes` names.
        "entryCSN",
    ] {
        assert!(
            person.attributes.iter().any(|x| x == a),
            "{a}: {:?}",
            person.attributes
        );
    }
    for a in ["uidNumber", "commonName", "member", "entryDN"] {
        assert!(!person.attributes.iter().any(|x| x == a), "{a}");
    }
    assert!(
        !schema.object_types.contains_key("group"),
        "extensibleObject allows anything"
    );
    assert!(schema.source.ends_with(slapd().url()), "{}", schema.source);
}

#[test]
fn classes_and_attributes_the_schema_lacks_should_be_problems_at_their_keys() {
    let SchemaLookup::Known(schema) = lookup(json!({
        "object_classes": { "person": "inetOrgPersn", "group": "groupOfNames" },
        "attributes": ["mial", "cn"],
    })) else {
        panic!("the schema should be known")
    };
    let got: Vec<(&str, &str, Option<&str>)> = schema
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.message.as_str(), p.help.as_deref()))
        .collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].0, "object_classes");
    assert!(
        got[0].1.contains("`inetOrgPersn` of object type `person`"),
        "{}",
        got[0].1
    );
    assert_eq!(got[0].2, Some("did you mean `inetOrgPerson`?"));
    assert_eq!(got[1].0, "attributes[0]");
    assert!(got[1].1.contains("`mial`"), "{}", got[1].1);
    assert_eq!(got[1].2, Some("did you mean `mail`?"));
}

#[test]
fn a_server_that_cannot_be_reached_should_make_the_schema_unavailable() {
    let v = json!({
        "url": "ldap://127.0.0.1:1", "base_dns": ["dc=example,dc=org"],
        "object_classes": { "person": "inetOrgPerson", "group": "groupOfNames" },
        "connect_timeout_ms": 2000,
    });
    match LdapFactory.schema(&settings(v), &ctx(Path::new("."), types())) {
        SchemaLookup::Unavailable(why) => assert!(why.contains("cannot connect"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// `person` is a superclass of `inetOrgPerson`: an entry of either type is
/// the same classes, and one given `person` by hand would change type (a
/// review's directory disconnected it so).
#[test]
fn two_types_that_are_the_same_classes_once_superclasses_count_should_be_a_problem() {
    let SchemaLookup::Known(schema) = lookup(json!({
        "object_classes": { "person": "inetOrgPerson", "group": ["inetOrgPerson", "person", "top"] },
    })) else {
        panic!("the schema should be known")
    };
    let got: Vec<(&str, &str)> = schema
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "object_classes");
    assert!(
        got[0]
            .1
            .contains("`group` (inetOrgPerson, person, top) and `person` (inetOrgPerson)")
            || got[0]
                .1
                .contains("`person` (inetOrgPerson) and `group` (inetOrgPerson, person, top)"),
        "{}",
        got[0].1
    );
    // An auxiliary class tells them apart.
    let SchemaLookup::Known(schema) = lookup(json!({
        "object_classes": { "person": "inetOrgPerson", "group": ["inetOrgPerson", "extensibleObject"] },
    })) else {
        panic!("the schema should be known")
    };
    assert!(schema.problems.is_empty(), "{:?}", schema.problems);
}
