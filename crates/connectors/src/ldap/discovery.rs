//! What `autosync check` learns of the directory before any run
//! (`ConnectorFactory::schema`): it connects, binds and reads the
//! subschema entry, changing nothing. Each object type with object
//! classes has the attributes their `MUST` and `MAY` allow, superclasses
//! included (a type with `extensibleObject`, or without classes, may have
//! anything: it is left out), with the object classes, the anchor and
//! the DN attribute; attribute names as the import spells them (the
//! schema's first name, or as `attributes` writes it). An export into an
//! attribute the classes do not allow fails on every entry, so export
//! flows are checked too; a flow naming an attribute of the schema that
//! the classes do not allow is told which classes would
//! ([`Restrictions`]). A configured object class or attribute the schema
//! does not define is a problem at its key; so is an `attributes` entry
//! that is not the schema's name (another case, an alias: the connector
//! space holds it as written, where a flow naming the schema's name finds
//! nothing), and an attribute `filter` names that the schema lacks or a
//! value `filter` compares one with that its syntax refuses (the
//! directory would match no entry: a full import would delete every
//! object). The schema's other names of its attribute types (aliases,
//! OIDs) go with it: a flow naming one is told the schema's name, which
//! the server answers with and the connector space holds.

use super::classes::Allowed;
use super::config::{Anchor, LdapSettings};
use super::schema::DirSchema;
use super::session::Session;
use autosync_connector::{
    ObjectTypeSchema, Restrictions, SchemaLookup, SettingError, SourceSchema,
};
use autosync_model::suggest;
use std::collections::{BTreeMap, BTreeSet};

/// `url` as messages show it: without a userinfo part, a query or a
/// fragment (`ldap://user:secret@host/?token=x` is `ldap://host/`).
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let host = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{scheme}{host}")
}

/// The schema of the directory `s` names, or why it cannot be read.
pub fn read(s: &LdapSettings) -> SchemaLookup {
    let session = match Session::open(s) {
        Ok(session) => session,
        Err(e) => return SchemaLookup::Unavailable(e.message),
    };
    let schema = &session.schema;
    let url = shown_url(&s.url);
    if schema.classes.is_empty() {
        return SchemaLookup::Unavailable(format!(
            "{url} gave no object classes (its subschema entry cannot be read by this account)"
        ));
    }
    let mut problems = Vec::new();
    for t in &s.types {
        for c in t.classes.iter().filter(|c| !schema.classes.has(c)) {
            problems.push(SettingError {
                key: "object_classes".into(),
                message: format!(
                    "object class `{c}` of object type `{}` is not in the schema of the directory at {url}",
                    t.name
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
                         superclasses count in the schema of the directory at {}: an entry of one that lists a \
                         superclass it has anyway would be read as the other; give one of them \
                         a class the other has not (e.g. an auxiliary class)",
                        a.name,
                        a.classes.join(", "),
                        b.name,
                        b.classes.join(", "),
                        url
                    ),
                    help: None,
                });
            }
        }
    }
    let listed = s.attributes.iter().flatten();
    problems.extend(attribute_problems(s, schema, &url));
    for (a, help) in super::filter::undefined(&s.filter, schema) {
        problems.push(SettingError {
            key: "filter".into(),
            message: format!(
                "`{a}` is not an attribute type of the schema of the directory at {url}: the directory matches no \
                 entry on it, and a full import would read none and delete every object"
            ),
            help,
        });
    }
    for (r, help) in super::filter::unknown_rules(&s.filter, schema) {
        problems.push(SettingError {
            key: "filter".into(),
            message: format!(
                "`{r}` is not a matching rule of the schema of the directory at {url}: the directory matches no \
                 entry on it, and a full import would read none and delete every object"
            ),
            help,
        });
    }
    for r in super::filter::refused_values(&s.filter, schema) {
        problems.push(SettingError {
            key: "filter".into(),
            message: format!(
                "`{}` is not a value of `{}`'s syntax, {}, in the schema of the directory at {url}: \
                 the directory matches no entry on it, and a full import would read none and delete every object",
                r.value,
                r.attribute,
                r.syntax.name()
            ),
            help: Some(super::filter::form(r.syntax).to_owned()),
        });
    }
    let mut object_types = BTreeMap::new();
    let mut restrictions = Restrictions::default();
    for t in s.types.iter().filter(|t| !t.classes.is_empty()) {
        let Allowed::Listed(allowed) = schema.classes.allowed(&t.classes) else {
            continue;
        };
        let (class, its) = match t.classes.as_slice() {
            [_] => ("object class", "its"),
            _ => ("object classes", "their"),
        };
        let classes: Vec<String> = t.classes.iter().map(|c| format!("`{c}`")).collect();
        restrictions.object_types.insert(
            t.name.clone(),
            format!("{class} {} and {its} superclasses", classes.join(", ")),
        );
        let mut names: Vec<String> = allowed
            .iter()
            .map(|a| schema.canonical(a).unwrap_or(a).to_owned())
            .collect();
        // As `attributes` writes them, when the import reads them so.
        for a in listed.clone() {
            let ok = schema.canonical(super::ber::base_name(a)).is_some_and(|c| {
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
    if !restrictions.object_types.is_empty() {
        restrictions.names = allowed_by(schema);
    }
    // The server answers an alias (`rfc822Mailbox`) or an OID with the
    // schema's name, which the connector space holds.
    let aliases = schema
        .other_names()
        .map(|(other, name)| (other.to_owned(), name.to_owned()))
        .collect();
    SchemaLookup::Known(SourceSchema {
        source: format!("the schema of the directory at {url}"),
        object_types,
        export_adds_attributes: false,
        problems,
        restrictions,
        aliases,
    })
}

/// The entries of `attributes` that are not the schema's name of an
/// attribute type, each at its place in the list: one the schema lacks,
/// and one it spells otherwise (another case, an alias or an OID). The
/// import keys values by the name as written, and flows name them so: a
/// flow naming the schema's name would find nothing.
fn attribute_problems(s: &LdapSettings, schema: &DirSchema, url: &str) -> Vec<SettingError> {
    let mut problems = Vec::new();
    for (i, written) in s.attributes.iter().flatten().enumerate() {
        let key = format!("attributes[{i}]");
        // `title;lang-fr`: the options as written, the name checked.
        let (a, options) = written.split_at(written.find(';').unwrap_or(written.len()));
        match schema.canonical(a) {
            None => problems.push(SettingError {
                key,
                message: format!(
                    "`{a}` is not an attribute type of the schema of the directory at {url}"
                ),
                help: suggest::did_you_mean(a, schema.attribute_names()),
            }),
            Some(c) if c == a => {}
            Some(c) => {
                let what = if c.eq_ignore_ascii_case(a) {
                    format!("is written `{c}` in the schema of the directory at {url}")
                } else {
                    format!("is another name of `{c}` in the schema of the directory at {url}")
                };
                problems.push(SettingError {
                    key,
                    message: format!("`{a}` {what}"),
                    help: Some(format!(
                        "write `{c}{options}`, the schema's name: flows and the connector space use the name as written"
                    )),
                });
            }
        }
    }
    problems
}

/// Per user attribute type of the schema (by its name): the object
/// classes that allow it, as a sentence (`None`: none does).
fn allowed_by(schema: &DirSchema) -> BTreeMap<String, Option<String>> {
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (a, class, kind) in schema.classes.allowing() {
        if let Some(c) = schema.canonical(a) {
            let shown = format!("`{class}` ({kind})");
            let classes = by.entry(c).or_default();
            if !classes.contains(&shown) {
                classes.push(shown);
            }
        }
    }
    let names: BTreeSet<&str> = schema
        .attribute_names()
        .filter(|a| !schema.is_operational(a))
        .collect();
    names
        .into_iter()
        .map(|a| {
            let sentence = by.get(a).map(|classes| {
                let (what, allow) = match classes.as_slice() {
                    [_] => ("object class", "allows"),
                    _ => ("object classes", "allow"),
                };
                let shown: Vec<&str> = classes.iter().map(String::as_str).collect();
                format!(
                    "{what} {} {allow} it: an object type whose `object_classes` include one may have it",
                    list(&shown)
                )
            });
            (a.to_owned(), sentence)
        })
        .collect()
}

/// `a, b, c` (at most 8, then how many more).
fn list(items: &[&str]) -> String {
    let mut shown: Vec<String> = items.iter().take(8).map(|s| (*s).to_owned()).collect();
    if items.len() > 8 {
        shown.push(format!("... ({} more)", items.len() - 8));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_should_have_no_userinfo() {
        assert_eq!(
            shown_url("ldap://sync:secret@ldap.example.org:389/"),
            "ldap://ldap.example.org:389/"
        );
        assert_eq!(shown_url("ldaps://h:636"), "ldaps://h:636");
        assert_eq!(
            shown_url("ldapi://%2Fvar%2Frun%2Fslapd.sock"),
            "ldapi://%2Fvar%2Frun%2Fslapd.sock"
        );
        assert_eq!(shown_url("ldap://h/?x@y"), "ldap://h/");
        assert_eq!(
            shown_url("ldap://a:pw@127.0.0.1:389?token=Q#f"),
            "ldap://127.0.0.1:389"
        );
        assert_eq!(shown_url("a:pw@h"), "h");
    }
}
