//! A `filter` whose assertion value the attribute's syntax refuses
//! (`(modifyTimestamp<=yesterday)`, `(uidNumber>=abc)`), against the
//! kit's slapd: the server treats the item as Undefined and matches
//! nothing, so a full import would stage the delete of every object.
//! `autosync check` names the attribute, the value and the syntax; an
//! import stops before it searches. And the schema's other names of its
//! attribute types (aliases, OIDs) go with what `check` is told.

use crate::common::{ctx, drain, settings};
use crate::ldap_support::*;
use autosync_connector::{ConnectorErrorKind, ConnectorFactory, SchemaLookup, SourceSchema};
use autosync_connectors::ldap::LdapFactory;
use autosync_model::ObjectTypeDef;
use serde_json::json;
use std::path::Path;

fn account() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "account".into(),
        anchor: "entryUUID".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    }
}

/// A unit with two entries of the test class, each with an integer 5 and
/// a boolean `TRUE`: its DN.
fn accounts(prefix: &str) -> String {
    let s = slapd();
    let base = s.new_ou(prefix).unwrap();
    for uid in ["ada", "grace"] {
        s.ldapadd(&format!(
            "dn: uid={uid},{base}\nobjectClass: autosyncTest\nuid: {uid}\n\
             asInteger: 5\nasBooleanTrue: TRUE\n"
        ))
        .unwrap();
    }
    base
}

fn with(base: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut v = admin_settings(
        slapd(),
        base,
        json!({ "object_classes": { "account": "autosyncTest" } }),
    );
    for (k, x) in settings(extra) {
        v[k] = x;
    }
    v
}

fn lookup(base: &str, extra: serde_json::Value) -> SourceSchema {
    let v = settings(with(base, extra));
    match LdapFactory.schema(&v, &ctx(Path::new("."), vec![account()])) {
        SchemaLookup::Known(schema) => schema,
        other => panic!("the schema should be known: {other:?}"),
    }
}

/// How many entries under `base` the server matches with `filter`.
fn matched(base: &str, filter: &str) -> usize {
    let ldif = slapd().ldapsearch(base, filter, &["1.1"]).unwrap();
    ldif.lines().filter(|l| l.starts_with("dn:")).count()
}

/// Values `check` takes and refuses, each with the attribute, operator
/// and syntax it is asserted with.
const CASES: &[(&str, &str, &str, bool)] = &[
    ("asInteger", ">=", "5", true),
    ("asInteger", ">=", "-7", true),
    ("asInteger", ">=", "0", true),
    ("asInteger", ">=", "\\35", true),
    ("asInteger", ">=", "abc", false),
    ("asInteger", ">=", "007", false),
    ("asInteger", ">=", "-0", false),
    ("asInteger", ">=", "+5", false),
    ("asInteger", ">=", "5 ", false),
    ("asInteger", "=", "five", false),
    ("uidNumber", ">=", "abc", false),
    ("modifyTimestamp", ">=", "20000101000000Z", true),
    ("modifyTimestamp", ">=", "2000010100Z", true),
    ("modifyTimestamp", ">=", "200001010000.5+0130", true),
    ("modifyTimestamp", ">=", "20001231235960Z", true),
    ("modifyTimestamp", ">=", "20000229000000,25-05", true),
    ("modifyTimestamp", "<=", "yesterday", false),
    ("modifyTimestamp", ">=", "20000101000000.Z", false),
    ("modifyTimestamp", ">=", "20000101240000Z", false),
    ("modifyTimestamp", ">=", "20000101000000", false),
    ("modifyTimestamp", ">=", "20000230000000Z", false),
    ("modifyTimestamp", ">=", "2000-01-01T00:00:00Z", false),
    ("asBooleanTrue", "=", "TRUE", true),
    ("asBooleanTrue", "=", "FALSE", true),
    ("asBooleanTrue", "=", "true", false),
    ("asBooleanTrue", "=", "yes", false),
];

#[test]
fn check_should_refuse_exactly_the_values_the_server_cannot_compare() {
    let base = accounts("filter-values");
    for &(attribute, op, value, valid) in CASES {
        let item = format!("({attribute}{op}{value})");
        // An item the server can compare is true or false for every entry
        // (the unit and its two); one it cannot is Undefined, and so is
        // its negation: nothing matches.
        let either = format!("(|{item}(!{item}))");
        let expected = if valid { 3 } else { 0 };
        assert_eq!(matched(&base, &either), expected, "the server on {item}");
        let problems = lookup(&base, json!({ "filter": item })).problems;
        if valid {
            assert!(problems.is_empty(), "{item}: {problems:?}");
            continue;
        }
        assert_eq!(problems.len(), 1, "{item}: {problems:?}");
        assert_eq!(problems[0].key, "filter");
        let syntax = match attribute {
            "modifyTimestamp" => "Generalized Time",
            "asBooleanTrue" => "Boolean",
            _ => "Integer",
        };
        assert_eq!(
            problems[0].message,
            format!(
                "`{value}` is not a value of `{attribute}`'s syntax, {syntax}, in the schema of the directory at {}: \
                 the directory matches no entry on it, and a full import would read none and delete every object",
                slapd().url()
            ),
            "{item}"
        );
        let help = problems[0].help.as_deref().unwrap();
        assert!(
            help.starts_with(&format!("a {syntax} ")) || help.starts_with(&format!("an {syntax} ")),
            "{item}: {help}"
        );
    }
}

#[test]
fn an_import_whose_filter_gives_a_value_its_syntax_refuses_should_stop_before_searching() {
    let base = accounts("filter-values-import");
    for filter in [
        "(modifyTimestamp<=yesterday)",
        "(&(objectClass=autosyncTest)(!(uidNumber>=abc)))",
    ] {
        let mut conn = build(vec![account()], with(&base, json!({ "filter": filter })));
        for delta in [false, true] {
            let err = match if delta {
                conn.delta_import(None)
            } else {
                conn.full_import(None)
            } {
                Ok(_) => panic!("{filter} (delta {delta}): the import must not read nothing"),
                Err(e) => e,
            };
            assert_eq!(err.kind, ConnectorErrorKind::Configuration, "{err}");
            assert!(
                err.message.contains("`filter` compares `")
                    && err.message.contains("which is not a value of its syntax, ")
                    && err.message.contains("so nothing is read; correct `filter`"),
                "{err}"
            );
        }
    }
    let mut conn = build(
        vec![account()],
        with(&base, json!({ "filter": "(modifyTimestamp<=yesterday)" })),
    );
    let err = match conn.full_import(None) {
        Ok(_) => panic!("the import must stop"),
        Err(e) => e,
    };
    assert_eq!(
        err.message,
        format!(
            "MA `{}`: `filter` compares `modifyTimestamp` with `yesterday`, which is not a value of its syntax, Generalized Time, in the schema of the directory at {} ({}): the search would match no entry (and the import would delete every object), so nothing is read; correct `filter`",
            ctx(Path::new("."), vec![]).ma,
            slapd().url(),
            "a Generalized Time is a UTC or offset time down to the hour at least, `YYYYMMDDHH[MM[SS]][.fraction]` then `Z` or `+HHMM`/`-HHMM` (`20240131000000Z`); words such as `yesterday` are no time",
        )
    );
    // A value of the syntax reads what it matches.
    let mut good = build(
        vec![account()],
        with(
            &base,
            json!({ "filter": "(&(modifyTimestamp>=20000101000000Z)(asInteger>=5)(asBooleanTrue=TRUE))" }),
        ),
    );
    let (batches, _) = drain(good.full_import(None).unwrap());
    assert_eq!(batches.into_iter().flatten().count(), 2);
}

#[test]
fn the_schemas_other_names_should_go_with_what_check_is_told() {
    let base = slapd().suffix().to_owned();
    let schema = lookup(&base, json!({}));
    for (other, name) in [
        ("rfc822mailbox", "mail"),
        ("surname", "sn"),
        ("2.5.4.4", "sn"),
        ("commonname", "cn"),
        ("0.9.2342.19200300.100.1.3", "mail"),
    ] {
        assert_eq!(schema.aliases.get(other).map(String::as_str), Some(name));
    }
    assert_eq!(schema.alias_of("RFC822Mailbox"), Some("mail"));
    for own in ["mail", "MAIL", "sn", "cn", "asInteger", "nothing"] {
        assert_eq!(schema.alias_of(own), None, "{own}");
    }
}
