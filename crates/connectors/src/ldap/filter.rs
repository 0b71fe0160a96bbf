//! The attributes a configured `filter` names, checked against the
//! directory's schema. A server treats a filter item on an attribute it
//! does not define as Undefined: it matches nothing, so a misspelt name
//! (`employeType`) makes a full import read no entry and stage the delete
//! of every object. `autosync check` reports such a name
//! ([`super::discovery`]); an import whose session read the schema stops
//! before it searches ([`check_import`]).

use super::config::LdapSettings;
use super::schema::DirSchema;
use autosync_connector::{ConnectorError, ConnectorErrorKind};
use autosync_model::suggest;

/// The attribute descriptions the items of filter `f` name, options
/// removed, each once, in order (an extensible match without one, e.g.
/// `(:dn:2.4.6.8.10:=x)`, names none). `f` parses
/// ([`super::config::check_filter`]): a value holds no unescaped
/// parenthesis, so each item ends at the next `)`.
pub fn attributes(f: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut rest = f;
    while let Some(open) = rest.find('(') {
        rest = &rest[open + 1..];
        if rest.starts_with(['&', '|', '!']) {
            continue;
        }
        let end = rest
            .find(['=', '~', '<', '>', ':', ')'])
            .unwrap_or(rest.len());
        let name = super::ber::base_name(rest[..end].trim());
        if !name.is_empty() && !out.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            out.push(name);
        }
        // The value: up to the item's end.
        rest = rest.find(')').map_or("", |close| &rest[close + 1..]);
    }
    out
}

/// The matching rules the extensible-match items of filter `f` name
/// (`(cn:caseExactMatch:=x)`, `(:dn:2.5.13.5:=x)`), each once, in order.
pub fn matching_rules(f: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut rest = f;
    while let Some(open) = rest.find('(') {
        rest = &rest[open + 1..];
        if rest.starts_with(['&', '|', '!']) {
            continue;
        }
        let close = rest.find(')').unwrap_or(rest.len());
        // `attr:dn:rule:=` before the value: an extensible match.
        if let Some(head) = rest[..close]
            .find('=')
            .and_then(|eq| rest[..eq].strip_suffix(':'))
        {
            let rules = head
                .split(':')
                .skip(1)
                .map(str::trim)
                .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("dn"));
            for rule in rules {
                if !out.iter().any(|n| n.eq_ignore_ascii_case(rule)) {
                    out.push(rule);
                }
            }
        }
        rest = &rest[close..];
    }
    out
}

/// The matching rules `filter` names that `schema` does not define (none
/// when it gave no matching rule), each with a suggestion when one is
/// close.
pub fn unknown_rules(filter: &str, schema: &DirSchema) -> Vec<(String, Option<String>)> {
    matching_rules(filter)
        .into_iter()
        .filter(|r| schema.has_matching_rule(r) == Some(false))
        .map(|r| {
            let help = suggest::did_you_mean(r, schema.matching_rule_names());
            (r.to_owned(), help)
        })
        .collect()
}

/// The attributes `filter` names that `schema` does not define, each with
/// a suggestion when one is close.
pub fn undefined(filter: &str, schema: &DirSchema) -> Vec<(String, Option<String>)> {
    attributes(filter)
        .into_iter()
        .filter(|a| !schema.has(a))
        .map(|a| {
            let help = suggest::did_you_mean(a, schema.attribute_names());
            (a.to_owned(), help)
        })
        .collect()
}

/// Stops an import whose `filter` names an attribute the schema its
/// session read does not define (nothing checked when it could not be
/// read): the search would match nothing and the import would stage the
/// delete of every object.
pub fn check_import(s: &LdapSettings, schema: &DirSchema) -> Result<(), ConnectorError> {
    if schema.is_empty() {
        return Ok(());
    }
    let url = super::discovery::shown_url(&s.url);
    let (what, name, help) = match undefined(&s.filter, schema).into_iter().next() {
        Some((name, help)) => ("", name, help),
        None => match unknown_rules(&s.filter, schema).into_iter().next() {
            Some((name, help)) => ("the matching rule ", name, help),
            None => return Ok(()),
        },
    };
    let help = help.map(|h| format!(" ({h})")).unwrap_or_default();
    Err(ConnectorError::new(
        ConnectorErrorKind::Configuration,
        format!(
            "MA `{}`: `filter` names {what}`{name}`, which the schema of the directory at {url} does not define{help}: the search would match no entry (and the import would delete every object), so nothing is read; correct `filter`",
            s.ma,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_should_give_its_attribute_once() {
        assert_eq!(attributes("(objectClass=*)"), ["objectClass"]);
        assert_eq!(
            attributes(
                "(&(objectClass=person)(|(mail=*a\\28b\\29*)(!(employeeType=contractor)))(cn;lang-en~=x)(uidNumber>=5)(OBJECTCLASS=top))"
            ),
            ["objectClass", "mail", "employeeType", "cn", "uidNumber"]
        );
        assert_eq!(
            attributes("(&(cn:caseExactMatch:=Fred)(:dn:2.4.6.8.10:=Dino)(sn:dn:=x))"),
            ["cn", "sn"]
        );
        assert_eq!(attributes(""), Vec::<&str>::new());
    }

    #[test]
    fn every_extensible_match_should_give_its_matching_rule_once() {
        assert_eq!(
            matching_rules(
                "(&(cn:caseExactMatch:=a:b=c)(:dn:2.4.6.8.10:=Dino)(sn:dn:=x)(mail=a:=b)(!(employeeType:CASEEXACTMATCH:=y)))"
            ),
            ["caseExactMatch", "2.4.6.8.10"]
        );
        assert_eq!(matching_rules("(cn=x)(sn>=y)"), Vec::<&str>::new());
    }

    #[test]
    fn names_the_schema_lacks_should_be_undefined_with_a_suggestion() {
        let types = [
            "( 2.16.840.1.113730.3.1.4 NAME 'employeeType' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
            "( 2.5.4.0 NAME 'objectClass' SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )",
        ]
        .map(String::from);
        let schema = DirSchema::parse(&types, &[], &[]);
        assert_eq!(
            undefined(
                "(&(objectclass=person)(!(employeType=contractor))(2.5.4.0=top))",
                &schema
            ),
            [(
                "employeType".to_owned(),
                Some("did you mean `employeeType`?".to_owned())
            )]
        );
        assert!(undefined("(!(EMPLOYEETYPE=x))", &schema).is_empty());
    }
}
