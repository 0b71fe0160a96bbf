//! Attribute names as the directory's schema spells them, against the
//! kit's slapd: `autosync check` reports an `attributes` entry that is not
//! the schema's name (the connector space holds it as written, where a
//! flow naming the schema's name finds nothing), an attribute `filter`
//! names that the schema lacks (nothing would match: a full import would
//! delete every object), and says which classes allow an attribute the
//! object type's do not; an import maps what the server sends to the
//! configured spelling, aliases included, and refuses a filter naming an
//! attribute the schema lacks.

use crate::common::{ctx, drain, settings};
use crate::ldap_support::*;
use autosync_connector::{ConnectorErrorKind, ConnectorFactory, SchemaLookup};
use autosync_connectors::ldap::LdapFactory;
use autosync_model::{ObjectTypeDef, Value};
use serde_json::json;
use std::path::Path;

fn person() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "person".into(),
        anchor: "entryUUID".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    }
}

/// What the connector tells `check` of people (`inetOrgPerson`) under
/// `base`, with `extra` settings.
fn lookup(base: &str, extra: serde_json::Value) -> autosync_connector::SourceSchema {
    let s = slapd();
    let mut v = admin_settings(
        s,
        base,
        json!({ "object_classes": { "person": "inetOrgPerson" } }),
    );
    for (k, x) in settings(extra) {
        v[k] = x;
    }
    match LdapFactory.schema(&settings(v), &ctx(Path::new("."), vec![person()])) {
        SchemaLookup::Known(schema) => schema,
        other => panic!("the schema should be known: {other:?}"),
    }
}

fn problems(schema: &autosync_connector::SourceSchema) -> Vec<(String, String, Option<String>)> {
    schema
        .problems
        .iter()
        .map(|p| (p.key.clone(), p.message.clone(), p.help.clone()))
        .collect()
}

#[test]
fn an_attributes_entry_spelt_otherwise_than_the_schema_should_be_a_problem_at_its_place() {
    let base = slapd().suffix().to_owned();
    let schema = lookup(
        &base,
        json!({ "attributes": ["cn", "telephonenumber", "rfc822Mailbox", "mail", "2.5.4.4", "entryUUID"] }),
    );
    let got = problems(&schema);
    assert_eq!(got.len(), 3, "{got:#?}");
    let url = slapd().url();
    assert_eq!(got[0].0, "attributes[1]");
    assert_eq!(
        got[0].1,
        format!(
            "`telephonenumber` is written `telephoneNumber` in the schema of the directory at {url}"
        )
    );
    assert_eq!(
        got[0].2.as_deref(),
        Some(
            "write `telephoneNumber`, the schema's name: flows and the connector space use the name as written"
        )
    );
    assert_eq!(got[1].0, "attributes[2]");
    assert!(
        got[1]
            .1
            .starts_with("`rfc822Mailbox` is another name of `mail` in the schema"),
        "{}",
        got[1].1
    );
    assert!(got[1].2.as_deref().unwrap().starts_with("write `mail`, "));
    assert_eq!(got[2].0, "attributes[4]");
    assert!(got[2].1.contains("another name of `sn`"), "{}", got[2].1);
}

#[test]
fn a_filter_naming_an_attribute_the_schema_lacks_should_be_a_problem_with_a_suggestion() {
    let base = slapd().suffix().to_owned();
    let schema = lookup(
        &base,
        json!({ "filter": "(&(objectclass=inetOrgPerson)(!(employeType=contractor))(MAIL=*))" }),
    );
    let got = problems(&schema);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "filter");
    assert!(
        got[0].1.starts_with(&format!(
            "`employeType` is not an attribute type of the schema of the directory at {}",
            slapd().url()
        )),
        "{}",
        got[0].1
    );
    assert!(got[0].1.contains("delete every object"), "{}", got[0].1);
    assert_eq!(got[0].2.as_deref(), Some("did you mean `employeeType`?"));
    let fine = lookup(&base, json!({ "filter": "(!(employeeType=contractor))" }));
    assert!(fine.problems.is_empty(), "{:?}", fine.problems);
}

#[test]
fn an_attribute_the_classes_do_not_allow_should_say_which_classes_would() {
    let base = slapd().suffix().to_owned();
    let r = lookup(&base, json!({})).restrictions;
    assert_eq!(
        r.object_types["person"],
        "object class `inetOrgPerson` and its superclasses"
    );
    let uid_number = r.names["uidNumber"].as_deref().unwrap();
    assert!(
        uid_number.contains("`posixAccount` (auxiliary)"),
        "{uid_number}"
    );
    assert!(
        r.why_not(&["person"], "uidNumber").is_some(),
        "uidNumber is the schema's"
    );
    assert!(r.why_not(&["person"], "uidNumbr").is_none());
    assert!(
        !r.names.contains_key("entryUUID"),
        "operational attributes are no class's to allow"
    );
}

/// Two people with a phone and a mail address.
fn people(prefix: &str) -> String {
    let s = slapd();
    let base = s.new_ou(prefix).unwrap();
    for (cn, phone) in [("Ada", "+1 555 0100"), ("Grace", "+1 555 0101")] {
        s.ldapadd(&format!(
            "dn: cn={cn},{base}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\n\
             mail: {cn}@example.org\ntelephoneNumber: {phone}\n"
        ))
        .unwrap();
    }
    base
}

fn build_people(base: &str, extra: serde_json::Value) -> Box<dyn autosync_connector::Connector> {
    let s = slapd();
    let mut v = admin_settings(
        s,
        base,
        json!({ "object_classes": { "person": "inetOrgPerson" } }),
    );
    for (k, x) in settings(extra) {
        v[k] = x;
    }
    build(vec![person()], v)
}

#[test]
fn an_import_should_hold_what_the_server_sends_under_the_configured_spelling_aliases_included() {
    let base = people("spelling");
    let mut conn = build_people(
        &base,
        json!({ "attributes": ["CN", "telephonenumber", "rfc822Mailbox"] }),
    );
    let mut got: Vec<_> = import(conn.as_mut())
        .into_iter()
        .map(|i| i.unwrap_or_else(|e| panic!("record error: {e:?}")))
        .collect();
    got.sort_by(|a, b| a.dn.cmp(&b.dn));
    assert_eq!(got.len(), 2);
    let ada = &got[0].attributes;
    assert_eq!(ada.get("CN"), Some(&Value::from("Ada")), "{ada:?}");
    assert_eq!(
        ada.get("telephonenumber"),
        Some(&Value::from("+1 555 0100"))
    );
    // The server answers `rfc822Mailbox` with `mail`.
    assert_eq!(
        ada.get("rfc822Mailbox"),
        Some(&Value::from("Ada@example.org")),
        "{ada:?}"
    );
    for absent in ["cn", "telephoneNumber", "mail", "sn"] {
        assert!(!ada.contains_key(absent), "{absent}: {ada:?}");
    }
}

#[test]
fn an_import_whose_filter_names_an_attribute_the_schema_lacks_should_fail_not_read_nothing() {
    let base = people("misspelt-filter");
    let mut conn = build_people(&base, json!({ "filter": "(!(employeType=contractor))" }));
    for delta in [false, true] {
        let err = match if delta {
            conn.delta_import(None)
        } else {
            conn.full_import(None)
        } {
            Ok(_) => panic!("delta {delta}: the import must not read nothing"),
            Err(e) => e,
        };
        assert_eq!(err.kind, ConnectorErrorKind::Configuration, "{err}");
        assert!(
            err.message
                .contains("`filter` names `employeType`, which the schema of the directory at"),
            "{err}"
        );
        assert!(
            err.message.contains("did you mean `employeeType`?"),
            "{err}"
        );
    }
    let mut good = build_people(&base, json!({ "filter": "(!(employeeType=contractor))" }));
    let (batches, _) = drain(good.full_import(None).unwrap());
    assert_eq!(batches.into_iter().flatten().count(), 2);
}

/// The kit's URL with a userinfo part and a query, both secret.
fn secret_url(url: &str) -> String {
    format!(
        "{}/?token=QSECRET",
        url.replacen("://", "://admin:S3CRETPW@", 1)
    )
}

fn assert_hidden(what: &str, message: &str) {
    for secret in ["S3CRETPW", "QSECRET", "admin:"] {
        assert!(
            !message.contains(secret),
            "{what} shows {secret}: {message}"
        );
    }
}

#[test]
fn no_message_should_show_the_urls_userinfo_or_query() {
    let s = slapd();
    let base = s.suffix().to_owned();
    let types = || vec![person()];
    let with = |url: &str, password: &str| {
        let mut v = admin_settings(
            s,
            &base,
            json!({ "object_classes": { "person": "inetOrgPerson" } }),
        );
        v["url"] = json!(url);
        v["password"] = json!(password);
        settings(v)
    };
    let ctx = ctx(Path::new("."), types());
    // A refused bind: the import and `check`'s schema lookup.
    let wrong = with(&secret_url(s.url()), "wrong");
    let mut conn = LdapFactory.build(&wrong, &ctx).unwrap();
    let err = match conn.full_import(None) {
        Ok(_) => panic!("the bind must be refused"),
        Err(e) => e,
    };
    assert!(
        err.message
            .contains(&format!("{}/ refused the bind", s.url())),
        "{err}"
    );
    assert_hidden("a refused bind", &err.message);
    match LdapFactory.schema(&wrong, &ctx) {
        SchemaLookup::Unavailable(why) => assert_hidden("check", &why),
        other => panic!("the bind must be refused: {other:?}"),
    }
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = with(&secret_url(&format!("ldap://127.0.0.1:{port}")), "x");
    let err = match LdapFactory.build(&down, &ctx).unwrap().full_import(None) {
        Ok(_) => panic!("nothing listens on {port}"),
        Err(e) => e,
    };
    assert!(
        err.message
            .contains(&format!("cannot connect to ldap://127.0.0.1:{port}/:")),
        "{err}"
    );
    assert_hidden("a refused connection", &err.message);
    // The settings' check, and the change detection's sentence.
    let bad = with("ldap://admin:S3CRETPW@127.0.0.1:99999/?token=QSECRET", "x");
    let err = match LdapFactory.build(&bad, &ctx) {
        Ok(_) => panic!("99999 is no port"),
        Err(e) => e,
    };
    assert!(err.message.contains("`99999` is not a port"), "{err}");
    assert_hidden("the URL check", &err.message);
    let no_port = with("ldap://admin:S3CRETPW@127.0.0.1?token=QSECRET", "x");
    assert!(LdapFactory.build(&no_port, &ctx).is_ok());
    let ok = with(&secret_url(s.url()), s.admin_password());
    let detection = LdapFactory.change_detection(&ok, &ok, &ctx);
    let sentence = &detection.offers[0].sentence;
    assert!(
        sentence.contains(&format!("on {}/ ", s.url())),
        "{sentence}"
    );
    assert_hidden("the change detection", sentence);
}

#[test]
fn a_value_with_a_language_tag_should_not_be_read_as_the_attributes_own() {
    let s = slapd();
    let base = s.new_ou("lang-tag").unwrap();
    s.ldapadd(&format!(
        "dn: cn=Ada,{base}\nobjectClass: inetOrgPerson\ncn: Ada\nsn: Ada\n\
         title: Staff Engineer\ntitle;lang-fr: Ingenieur\n"
    ))
    .unwrap();
    let read = |extra: serde_json::Value| {
        let mut conn = build_people(&base, extra);
        let mut got: Vec<_> = import(conn.as_mut())
            .into_iter()
            .map(|i| i.unwrap_or_else(|e| panic!("record error: {e:?}")))
            .collect();
        assert_eq!(got.len(), 1);
        got.pop().unwrap().attributes
    };
    for extra in [json!({}), json!({ "attributes": ["cn", "title"] })] {
        let ada = read(extra.clone());
        assert_eq!(
            ada.get("title"),
            Some(&Value::from("Staff Engineer")),
            "{extra}: {ada:?}"
        );
        assert!(!ada.keys().any(|k| k.contains(';')), "{extra}: {ada:?}");
    }
    // Named exactly, it is read under that name.
    let ada = read(json!({ "attributes": ["cn", "title", "title;lang-fr"] }));
    assert_eq!(ada.get("title"), Some(&Value::from("Staff Engineer")));
    assert_eq!(
        ada.get("title;lang-fr"),
        Some(&Value::from("Ingenieur")),
        "{ada:?}"
    );
    // `check` takes the tagged name, as the schema's attribute.
    let schema = lookup(
        &base,
        json!({ "attributes": ["cn", "title", "title;lang-fr"] }),
    );
    assert!(schema.problems.is_empty(), "{:?}", schema.problems);
    assert!(
        schema.object_types["person"]
            .attributes
            .contains(&"title;lang-fr".to_owned())
    );
}

#[test]
fn a_filter_naming_a_matching_rule_the_schema_lacks_should_be_a_problem_and_stop_an_import() {
    let base = people("misspelt-rule");
    let filter = "(!(employeeType:caseExactMatc:=contractor))";
    let got = problems(&lookup(&base, json!({ "filter": filter })));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "filter");
    assert!(
        got[0].1.starts_with(&format!(
            "`caseExactMatc` is not a matching rule of the schema of the directory at {}",
            slapd().url()
        )),
        "{}",
        got[0].1
    );
    assert_eq!(got[0].2.as_deref(), Some("did you mean `caseExactMatch`?"));
    let mut conn = build_people(&base, json!({ "filter": filter }));
    let err = match conn.full_import(None) {
        Ok(_) => panic!("the import must not read nothing"),
        Err(e) => e,
    };
    assert_eq!(err.kind, ConnectorErrorKind::Configuration, "{err}");
    assert!(
        err.message
            .contains("`filter` names the matching rule `caseExactMatc`, which the schema"),
        "{err}"
    );
    // Names and OIDs the schema has pass, and match.
    for good in [
        "(!(employeeType:caseExactMatch:=contractor))",
        "(!(employeeType:2.5.13.5:=contractor))",
    ] {
        let fine = lookup(&base, json!({ "filter": good }));
        assert!(fine.problems.is_empty(), "{good}: {:?}", fine.problems);
        let mut good = build_people(&base, json!({ "filter": good }));
        let (batches, _) = drain(good.full_import(None).unwrap());
        assert_eq!(batches.into_iter().flatten().count(), 2);
    }
}
