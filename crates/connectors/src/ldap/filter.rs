//! The attributes a configured `filter` names, checked against the
//! directory's schema. A server treats a filter item on an attribute it
//! does not define as Undefined: it matches nothing, so a misspelt name
//! (`employeType`) makes a full import read no entry and stage the delete
//! of every object. So does an assertion value the attribute's syntax
//! refuses (`(modifyTimestamp<=yesterday)`, `(uidNumber>=abc)`): the
//! server cannot compare with it, the item is Undefined. `autosync check`
//! reports such a name or value ([`super::discovery`]); an import whose
//! session read the schema stops before it searches ([`check_import`]).

use super::config::LdapSettings;
use super::schema::{DirSchema, Syntax};
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

/// One item of a filter that compares an attribute with a value:
/// equality, ordering, approximate match, or an extensible match that
/// names no matching rule (the attribute's own then compares).
struct Assertion<'f> {
    attribute: &'f str,
    /// As the filter writes it (escapes kept).
    value: &'f str,
}

/// The items of filter `f` that assert a value of an attribute with its
/// own matching rules (presence and substrings assert none, an extensible
/// match naming a rule is that rule's), in order. `f` parses.
fn assertions(f: &str) -> Vec<Assertion<'_>> {
    let mut out = Vec::new();
    let mut rest = f;
    while let Some(open) = rest.find('(') {
        rest = &rest[open + 1..];
        if rest.starts_with(['&', '|', '!']) {
            continue;
        }
        let close = rest.find(')').unwrap_or(rest.len());
        let item = &rest[..close];
        rest = &rest[close..];
        let Some(eq) = item.find('=') else { continue };
        let (head, value) = (&item[..eq], &item[eq + 1..]);
        let attribute = match head.strip_suffix(':') {
            // `attr:dn:=v` (no rule) compares by the attribute's rules.
            Some(ext) => {
                let mut parts = ext.split(':');
                let attribute = parts.next().unwrap_or_default();
                if parts.any(|p| !p.trim().eq_ignore_ascii_case("dn")) {
                    continue;
                }
                attribute
            }
            None => {
                let attribute = head.trim_end_matches(['~', '<', '>']);
                // Presence and substrings: an unescaped `*`.
                if attribute.len() == head.len() && value.contains('*') {
                    continue;
                }
                attribute
            }
        };
        let attribute = super::ber::base_name(attribute.trim());
        if !attribute.is_empty() {
            out.push(Assertion { attribute, value });
        }
    }
    out
}

/// The value a filter writes `v` for (`\2a` is `*`); `None` when an
/// escape is not two hexadecimal digits or the bytes are not UTF-8.
fn unescape(v: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(v.len());
    let mut rest = v.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'\\' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Whether `v` is a value of `syntax` as RFC 4517 writes it.
pub fn is_of(syntax: Syntax, v: &str) -> bool {
    match syntax {
        Syntax::Integer => is_integer(v),
        Syntax::Boolean => v == "TRUE" || v == "FALSE",
        Syntax::GeneralizedTime => is_generalized_time(v),
    }
}

/// How values of `syntax` are written, for messages.
pub fn form(syntax: Syntax) -> &'static str {
    match syntax {
        Syntax::Integer => {
            "an Integer is written in decimal digits, without a leading zero or `+` (`42`, `-7`, `0`)"
        }
        Syntax::Boolean => "a Boolean is `TRUE` or `FALSE`, in capitals",
        Syntax::GeneralizedTime => {
            "a Generalized Time is a UTC or offset time down to the hour at least, `YYYYMMDDHH[MM[SS]][.fraction]` then `Z` or `+HHMM`/`-HHMM` (`20240131000000Z`); words such as `yesterday` are no time"
        }
    }
}

/// RFC 4517 3.3.16: `( "-" LDIGIT *DIGIT ) / DIGIT / ( LDIGIT 1*DIGIT )`.
fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let all = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    all && ((digits == v && digits == "0") || !digits.starts_with('0'))
}

/// RFC 4517 3.3.13: `century year month day hour [ minute [ second /
/// leap-second ] ] [ fraction ] g-time-zone`, with a day the month has
/// (February's 29th in a year divisible by 4, as OpenLDAP checks).
fn is_generalized_time(v: &str) -> bool {
    let b = v.as_bytes();
    let two = |i: usize| -> Option<u32> {
        let pair = b.get(i..i + 2)?;
        pair.iter()
            .all(u8::is_ascii_digit)
            .then(|| u32::from(pair[0] - b'0') * 10 + u32::from(pair[1] - b'0'))
    };
    let (Some(century), Some(year), Some(month), Some(day), Some(hour)) =
        (two(0), two(2), two(4), two(6), two(8))
    else {
        return false;
    };
    let leap = (century * 100 + year) % 4 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => 0,
    };
    if day == 0 || day > days || hour > 23 {
        return false;
    }
    let mut i = 10;
    if let Some(minute) = two(i) {
        if minute > 59 {
            return false;
        }
        i += 2;
        if let Some(second) = two(i) {
            if second > 60 {
                return false;
            }
            i += 2;
        }
    }
    if matches!(b.get(i), Some(b'.' | b',')) {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += 1 + digits;
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let hours = two(i + 1).is_some_and(|h| h <= 23);
            let end = match two(i + 3) {
                Some(m) if m <= 59 => i + 5,
                Some(_) => return false,
                None => i + 3,
            };
            hours && end == b.len()
        }
        _ => false,
    }
}

/// An assertion value of `filter` that its attribute's syntax refuses.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    /// As the filter writes it.
    pub attribute: String,
    /// As the filter writes it (escapes kept).
    pub value: String,
    pub syntax: Syntax,
}

/// The assertion values of `filter` whose attribute's syntax (Integer,
/// Boolean, Generalized Time) refuses them: the server matches nothing
/// on such an item.
pub fn refused_values(filter: &str, schema: &DirSchema) -> Vec<Refused> {
    assertions(filter)
        .into_iter()
        .filter_map(|a| {
            let syntax = schema.syntax(a.attribute)?;
            let ok = unescape(a.value).is_some_and(|v| is_of(syntax, &v));
            (!ok).then(|| Refused {
                attribute: a.attribute.to_owned(),
                value: a.value.to_owned(),
                syntax,
            })
        })
        .collect()
}

/// Stops an import whose `filter` names an attribute the schema its
/// session read does not define, or gives one a value its syntax refuses
/// (nothing checked when the schema could not be read): the search would
/// match nothing and the import would stage the delete of every object.
pub fn check_import(s: &LdapSettings, schema: &DirSchema) -> Result<(), ConnectorError> {
    if schema.is_empty() {
        return Ok(());
    }
    let url = super::discovery::shown_url(&s.url);
    let (what, name, help) = match undefined(&s.filter, schema).into_iter().next() {
        Some((name, help)) => ("", name, help),
        None => match unknown_rules(&s.filter, schema).into_iter().next() {
            Some((name, help)) => ("the matching rule ", name, help),
            None => match refused_values(&s.filter, schema).into_iter().next() {
                Some(r) => {
                    return Err(ConnectorError::new(
                        ConnectorErrorKind::Configuration,
                        format!(
                            "MA `{}`: `filter` compares `{}` with `{}`, which is not a value of its syntax, {}, in the schema of the directory at {url} ({}): the search would match no entry (and the import would delete every object), so nothing is read; correct `filter`",
                            s.ma,
                            r.attribute,
                            r.value,
                            r.syntax.name(),
                            form(r.syntax),
                        ),
                    ));
                }
                None => return Ok(()),
            },
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

    #[test]
    fn values_should_be_checked_against_rfc_4517_forms() {
        for ok in ["0", "7", "42", "-7", "-120", "1234567890123456789012345"] {
            assert!(is_of(Syntax::Integer, ok), "{ok}");
        }
        for bad in [
            "", "-", "-0", "007", "+5", "abc", " 5", "5 ", "1e3", "4.2", "--1",
        ] {
            assert!(!is_of(Syntax::Integer, bad), "{bad:?}");
        }
        assert!(is_of(Syntax::Boolean, "TRUE") && is_of(Syntax::Boolean, "FALSE"));
        for bad in ["true", "False", "1", "yes", ""] {
            assert!(!is_of(Syntax::Boolean, bad), "{bad:?}");
        }
        for ok in [
            "20240131235959Z",
            "2024013123Z",
            "202401312359Z",
            "20240131235960Z",
            "20240131235959.123Z",
            "20240131235959,5Z",
            "2024013123.5Z",
            "20240131235959+0130",
            "20240131235959-05",
            "20240229000000Z",
        ] {
            assert!(is_of(Syntax::GeneralizedTime, ok), "{ok}");
        }
        for bad in [
            "yesterday",
            "",
            "20240131235959",
            "20240131Z",
            "202401312Z",
            "20241301000000Z",
            "20240100000000Z",
            "20240132000000Z",
            "20230229000000Z",
            "20240431000000Z",
            "20240131240000Z",
            "20240131236000Z",
            "20240131235961Z",
            "20240131235959.Z",
            "20240131235959+2400",
            "20240131235959+0160",
            "20240131235959+1",
            "20240131235959Zx",
            "2024-01-31T23:59:59Z",
        ] {
            assert!(!is_of(Syntax::GeneralizedTime, bad), "{bad:?}");
        }
    }

    #[test]
    fn a_value_its_attributes_syntax_refuses_should_be_named_with_the_syntax() {
        let types = [
            "( 1.3.6.1.1.1.1.0 NAME 'uidNumber' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )",
            "( 2.5.18.2 NAME 'modifyTimestamp' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
            "( 9.9 NAME ( 'flag' 'flagAlias' ) SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )",
            "( 9.10 NAME 'subFlag' SUP flag )",
            "( 2.5.4.3 NAME 'cn' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        ]
        .map(String::from);
        let schema = DirSchema::parse(&types, &[], &[]);
        let refused = |f: &str| -> Vec<(String, String, Syntax)> {
            refused_values(f, &schema)
                .into_iter()
                .map(|r| (r.attribute, r.value, r.syntax))
                .collect()
        };
        assert_eq!(
            refused("(&(modifyTimestamp<=yesterday)(!(UIDNUMBER>=abc))(cn=abc)(flagAlias=true))"),
            [
                (
                    "modifyTimestamp".into(),
                    "yesterday".into(),
                    Syntax::GeneralizedTime
                ),
                ("UIDNUMBER".into(), "abc".into(), Syntax::Integer),
                ("flagAlias".into(), "true".into(), Syntax::Boolean),
            ]
        );
        assert_eq!(
            refused("(|(subFlag~=yes)(uidNumber:dn:=x)(uidNumber;x-opt=-0))"),
            [
                ("subFlag".into(), "yes".into(), Syntax::Boolean),
                ("uidNumber".into(), "x".into(), Syntax::Integer),
                ("uidNumber".into(), "-0".into(), Syntax::Integer),
            ]
        );
        // Good values (escaped ones too), presence, substrings and an
        // extensible match naming its rule are not the syntax's to refuse.
        assert!(
            refused(
                "(&(uidNumber>=\\34\\32)(uidNumber=*)(uidNumber=1*)(uidNumber:integerMatch:=x)(flag=TRUE)(modifyTimestamp>=20240131000000Z)(unknown=x))"
            )
            .is_empty()
        );
        assert_eq!(
            refused("(uidNumber=\\zz)"),
            [("uidNumber".into(), "\\zz".into(), Syntax::Integer)]
        );
    }
}
