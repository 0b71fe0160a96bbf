//! What the directory's schema says of its attributes, read once per
//! connection from the subschema entry (`attributeTypes`,
//! `ldapSyntaxes`, `objectClasses`): which hold integers, booleans or
//! binary data, which need the `;binary` transfer option, which have a
//! syntax whose values' form a `filter` is checked against ([`Syntax`]),
//! and each attribute type's other names (aliases, OID). Values are
//! typed from it on import and written from it on export, so that what is
//! exported reads back equal. A schema that cannot be read leaves every
//! attribute text (or binary when not UTF-8, or listed in
//! `binary_attributes`). The object classes say which attributes an
//! object type's entries may have ([`super::classes`], for `autosync
//! check`).

use super::classes::ObjectClasses;
use std::collections::{HashMap, HashSet};

const INTEGER: &str = "1.3.6.1.4.1.1466.115.121.1.27";
const BOOLEAN: &str = "1.3.6.1.4.1.1466.115.121.1.7";
const GENERALIZED_TIME: &str = "1.3.6.1.4.1.1466.115.121.1.24";
/// Not human-readable syntaxes, when the server does not list its syntaxes.
const BINARY: &[&str] = &[
    "1.3.6.1.4.1.1466.115.121.1.4",
    "1.3.6.1.4.1.1466.115.121.1.5",
    "1.3.6.1.4.1.1466.115.121.1.8",
    "1.3.6.1.4.1.1466.115.121.1.9",
    "1.3.6.1.4.1.1466.115.121.1.10",
    "1.3.6.1.4.1.1466.115.121.1.23",
    "1.3.6.1.4.1.1466.115.121.1.28",
    "1.3.6.1.4.1.1466.115.121.1.49",
];
/// Syntaxes whose values travel with `;binary`.
const TRANSFER: &[&str] = &[
    "1.3.6.1.4.1.1466.115.121.1.8",
    "1.3.6.1.4.1.1466.115.121.1.9",
    "1.3.6.1.4.1.1466.115.121.1.10",
    "1.3.6.1.4.1.1466.115.121.1.49",
];

/// How an attribute's values are read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text (binary when a value is not UTF-8).
    Text,
    Integer,
    /// `TRUE` / `FALSE`.
    Boolean,
    /// Bytes, always.
    Binary,
    /// Bytes, sent and asked for with `;binary`.
    BinaryTransfer,
}

/// A syntax whose values have a form this connector checks (RFC 4517):
/// a filter's assertion value of another form matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `1.3.6.1.4.1.1466.115.121.1.27`: `0`, `42`, `-7`.
    Integer,
    /// `1.3.6.1.4.1.1466.115.121.1.7`: `TRUE` or `FALSE`.
    Boolean,
    /// `1.3.6.1.4.1.1466.115.121.1.24`: `20240131235959Z`.
    GeneralizedTime,
}

impl Syntax {
    /// Its name in RFC 4517.
    pub fn name(self) -> &'static str {
        match self {
            Syntax::Integer => "Integer",
            Syntax::Boolean => "Boolean",
            Syntax::GeneralizedTime => "Generalized Time",
        }
    }
}

/// One attribute type.
#[derive(Clone, Debug, Default)]
struct AttrType {
    names: Vec<String>,
    sup: Option<String>,
    syntax: Option<String>,
    /// `USAGE` other than `userApplications`.
    operational: bool,
}

/// The attribute types of a directory, by lowercased name and OID, and
/// its object classes.
#[derive(Clone, Debug, Default)]
pub struct DirSchema {
    kinds: HashMap<String, Kind>,
    /// The checked syntax of each name and OID that has one.
    syntaxes: HashMap<String, Syntax>,
    /// Each name and OID's canonical name (the first `NAME`).
    canonical: HashMap<String, String>,
    /// Operational attributes (lowercased names and OIDs).
    operational: HashSet<String>,
    pub classes: ObjectClasses,
    /// Each matching rule's lowercased names and OID, with its name
    /// (empty when the subschema entry gave none: nothing is checked).
    rules: HashMap<String, String>,
}

impl DirSchema {
    /// With the subschema entry's `matchingRules` values.
    pub fn with_matching_rules(mut self, matching_rules: &[String]) -> DirSchema {
        for (oid, fields) in matching_rules.iter().filter_map(|d| fields(d)) {
            let names = fields
                .into_iter()
                .find(|(k, _)| k == "NAME")
                .map(|(_, names)| names)
                .unwrap_or_default();
            let shown = names.first().unwrap_or(&oid).clone();
            self.rules.insert(oid.to_ascii_lowercase(), shown.clone());
            for n in names {
                self.rules.insert(n.to_ascii_lowercase(), shown.clone());
            }
        }
        self
    }

    /// Whether matching rule `name` (a name or an OID) is the schema's;
    /// `None` when no matching rule was read.
    pub fn has_matching_rule(&self, name: &str) -> Option<bool> {
        (!self.rules.is_empty()).then(|| self.rules.contains_key(&name.to_ascii_lowercase()))
    }

    /// Every matching rule's name.
    pub fn matching_rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.values().map(String::as_str)
    }

    /// From the subschema entry's `attributeTypes`, `ldapSyntaxes` and
    /// `objectClasses` values; what does not parse is left out.
    pub fn parse(
        attribute_types: &[String],
        ldap_syntaxes: &[String],
        object_classes: &[String],
    ) -> DirSchema {
        let mut binary: HashSet<String> = BINARY.iter().map(|s| (*s).to_owned()).collect();
        let mut transfer: HashSet<String> = TRANSFER.iter().map(|s| (*s).to_owned()).collect();
        if !ldap_syntaxes.is_empty() {
            binary.clear();
            transfer.clear();
            for s in ldap_syntaxes {
                let t = tokens(s);
                let Some(oid) = t.get(1) else { continue };
                let flag = |name: &str| {
                    t.windows(2).any(|w| {
                        w[0].eq_ignore_ascii_case(name) && w[1].eq_ignore_ascii_case("TRUE")
                    })
                };
                if flag("X-NOT-HUMAN-READABLE") {
                    binary.insert(oid.clone());
                }
                if flag("X-BINARY-TRANSFER-REQUIRED") {
                    transfer.insert(oid.clone());
                }
            }
        }
        let types: Vec<(String, AttrType)> = attribute_types
            .iter()
            .filter_map(|d| parse_attribute_type(d))
            .collect();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, (oid, t)) in types.iter().enumerate() {
            by_name.insert(oid.to_ascii_lowercase(), i);
            for n in &t.names {
                by_name.insert(n.to_ascii_lowercase(), i);
            }
        }
        let syntax_of = |mut i: usize| -> Option<&str> {
            // Follow SUP (bounded: a loop in a broken schema ends).
            for _ in 0..16 {
                let t = &types.get(i)?.1;
                if let Some(s) = &t.syntax {
                    return Some(s.as_str());
                }
                i = *by_name.get(&t.sup.as_deref()?.to_ascii_lowercase())?;
            }
            None
        };
        let mut kinds = HashMap::new();
        let mut syntaxes = HashMap::new();
        let mut canonical = HashMap::new();
        let mut operational = HashSet::new();
        for (name, &i) in &by_name {
            if let Some((oid, t)) = types.get(i) {
                canonical.insert(name.clone(), t.names.first().unwrap_or(oid).clone());
                if t.operational {
                    operational.insert(name.clone());
                }
            }
            let syntax = match syntax_of(i) {
                Some(INTEGER) => Some(Syntax::Integer),
                Some(BOOLEAN) => Some(Syntax::Boolean),
                Some(GENERALIZED_TIME) => Some(Syntax::GeneralizedTime),
                _ => None,
            };
            if let Some(syntax) = syntax {
                syntaxes.insert(name.clone(), syntax);
            }
            let kind = match syntax_of(i) {
                Some(s) if transfer.contains(s) => Kind::BinaryTransfer,
                Some(s) if binary.contains(s) => Kind::Binary,
                Some(INTEGER) => Kind::Integer,
                Some(BOOLEAN) => Kind::Boolean,
                _ => Kind::Text,
            };
            kinds.insert(name.clone(), kind);
        }
        DirSchema {
            kinds,
            syntaxes,
            canonical,
            operational,
            classes: ObjectClasses::parse(object_classes),
            rules: HashMap::new(),
        }
    }

    /// The canonical name of attribute `name` (its first `NAME`), if the
    /// schema defines it.
    pub fn canonical(&self, name: &str) -> Option<&str> {
        self.canonical
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Every attribute type's canonical name.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.canonical.values().map(String::as_str)
    }

    /// Whether attribute `name` is operational (the server keeps it).
    pub fn is_operational(&self, name: &str) -> bool {
        self.operational.contains(&name.to_ascii_lowercase())
    }

    /// Whether the schema defines attribute `name` (by name or OID).
    pub fn has(&self, name: &str) -> bool {
        self.kinds.contains_key(&name.to_ascii_lowercase())
    }

    /// Whether no attribute type was read (the schema could not be).
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Whether `a` and `b` name one attribute type: the same name in
    /// another case, or another of its names (an alias, its OID).
    pub fn same(&self, a: &str, b: &str) -> bool {
        a.eq_ignore_ascii_case(b)
            || self
                .canonical(a)
                .is_some_and(|c| self.canonical(b) == Some(c))
    }

    /// The syntax of attribute `name` (options ignored), when it is one
    /// whose values' form is checked.
    pub fn syntax(&self, name: &str) -> Option<Syntax> {
        let base = super::ber::base_name(name).to_ascii_lowercase();
        self.syntaxes.get(&base).copied()
    }

    /// Each other name of an attribute type (an alias, its OID),
    /// lowercased, with the type's canonical name.
    pub fn other_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.canonical
            .iter()
            .filter(|(k, c)| !k.eq_ignore_ascii_case(c))
            .map(|(k, c)| (k.as_str(), c.as_str()))
    }

    /// How attribute `name` (options ignored) is read and written.
    pub fn kind(&self, name: &str) -> Kind {
        let base = super::ber::base_name(name).to_ascii_lowercase();
        self.kinds.get(&base).copied().unwrap_or(Kind::Text)
    }
}

/// An `attributeTypes` value: its OID and what this module needs.
fn parse_attribute_type(d: &str) -> Option<(String, AttrType)> {
    let (oid, fields) = fields(d)?;
    let mut out = AttrType::default();
    for (key, args) in fields {
        match key.as_str() {
            "NAME" => out.names = args,
            "SUP" => out.sup = args.into_iter().next(),
            "SYNTAX" => {
                out.syntax = args
                    .into_iter()
                    .next()
                    .map(|s| s.split('{').next().unwrap_or_default().to_owned());
            }
            "USAGE" => {
                out.operational = args
                    .first()
                    .is_some_and(|u| !u.eq_ignore_ascii_case("userApplications"));
            }
            _ => {}
        }
    }
    Some((oid, out))
}

/// A keyword of a schema description and its argument.
pub type Field = (String, Vec<String>);

/// A schema description's OID and its fields: each keyword (upper case)
/// with its argument, one token or a parenthesised list (`$` left out);
/// flags have none. `None` when it is not a description.
pub fn fields(d: &str) -> Option<(String, Vec<Field>)> {
    let t = tokens(d);
    if t.first().map(String::as_str) != Some("(") {
        return None;
    }
    let oid = t.get(1)?.clone();
    let mut out = Vec::new();
    let mut i = 2;
    while i < t.len() {
        let key = t[i].to_ascii_uppercase();
        i += 1;
        let mut args = Vec::new();
        let flag = matches!(
            key.as_str(),
            "OBSOLETE"
                | "SINGLE-VALUE"
                | "COLLECTIVE"
                | "NO-USER-MODIFICATION"
                | "ABSTRACT"
                | "STRUCTURAL"
                | "AUXILIARY"
                | ")"
        );
        if !flag && i < t.len() {
            if t[i] == "(" {
                i += 1;
                while i < t.len() && t[i] != ")" {
                    if t[i] != "$" {
                        args.push(t[i].clone());
                    }
                    i += 1;
                }
                i += 1;
            } else {
                args.push(t[i].clone());
                i += 1;
            }
        }
        if key != ")" {
            out.push((key, args));
        }
    }
    Some((oid, out))
}

/// The tokens of a schema description: `(`, `)`, quoted strings (without
/// their quotes) and bare words.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                out.push(c.to_string());
                chars.next();
            }
            '\'' => {
                chars.next();
                let mut word = String::new();
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
                out.push(word);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '\'' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(word);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_should_follow_syntaxes_and_sup() {
        let types = [
            "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )",
            "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s)' SUP name )",
            "( 1.3.6.1.1.1.1.0 NAME 'uidNumber' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )",
            "( 9.9 NAME 'flag' SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )",
            "( 2.5.4.36 NAME 'userCertificate' SYNTAX 1.3.6.1.4.1.1466.115.121.1.8 )",
            "( 0.9.2342.19200300.100.1.60 NAME 'jpegPhoto' SYNTAX 1.3.6.1.4.1.1466.115.121.1.28 )",
            "( 1.1 NAME 'loop' SUP loop )",
            "garbage ( NAME",
        ]
        .map(String::from);
        let s = DirSchema::parse(&types, &[], &[]);
        assert_eq!(s.kind("CN"), Kind::Text);
        assert_eq!(s.kind("uidnumber"), Kind::Integer);
        assert_eq!(s.kind("flag"), Kind::Boolean);
        assert_eq!(s.kind("userCertificate;binary"), Kind::BinaryTransfer);
        assert_eq!(s.kind("jpegPhoto"), Kind::Binary);
        assert_eq!(s.kind("loop"), Kind::Text);
        assert_eq!(s.kind("unknown"), Kind::Text);
        assert_eq!(s.canonical("COMMONNAME"), Some("cn"));
        assert_eq!(s.canonical("2.5.4.3"), Some("cn"));
        assert_eq!(s.canonical("unknown"), None);
        assert!(s.same("commonName", "CN") && s.same("2.5.4.3", "cn") && s.same("x", "X"));
        assert!(!s.same("cn", "name") && !s.same("unknown", "cn"));
        let syntaxes =
            ["( 1.3.6.1.4.1.1466.115.121.1.28 DESC 'JPEG' X-NOT-HUMAN-READABLE 'TRUE' )"]
                .map(String::from);
        let s = DirSchema::parse(&types, &syntaxes, &[]);
        assert_eq!(s.kind("jpegPhoto"), Kind::Binary);
        assert_eq!(s.kind("userCertificate"), Kind::Text);
    }
}
