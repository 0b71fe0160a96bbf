//! A directory's object classes (the subschema entry's `objectClasses`):
//! which attributes an entry of given classes may have, what their
//! `MUST` and `MAY` say, superclasses (`SUP`) included. `autosync check`
//! reads it through [`super::discovery`].

use super::schema::fields;
use std::collections::{BTreeSet, HashMap};

/// The class that allows every attribute (RFC 4512).
const EXTENSIBLE: &str = "extensibleObject";

/// One object class.
#[derive(Clone, Debug, Default)]
struct Class {
    name: String,
    sup: Vec<String>,
    must: Vec<String>,
    may: Vec<String>,
    /// `STRUCTURAL`, `AUXILIARY` or `ABSTRACT` (lower case); empty when
    /// the description says none (structural, RFC 4512).
    kind: String,
}

/// The object classes of a directory, by lowercased name and OID.
#[derive(Clone, Debug, Default)]
pub struct ObjectClasses {
    classes: Vec<Class>,
    by_name: HashMap<String, usize>,
}

/// What classes allow: the attributes named by their `MUST` and `MAY`
/// (as the schema writes them), or everything (`extensibleObject`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    Listed(BTreeSet<String>),
    Anything,
}

impl ObjectClasses {
    /// From the `objectClasses` values; what does not parse is left out.
    pub fn parse(descriptions: &[String]) -> ObjectClasses {
        let mut out = ObjectClasses::default();
        for d in descriptions {
            let Some((oid, fields)) = fields(d) else {
                continue;
            };
            let mut c = Class::default();
            let mut names = Vec::new();
            for (key, args) in fields {
                match key.as_str() {
                    "NAME" => names = args,
                    "SUP" => c.sup = args,
                    "MUST" => c.must = args,
                    "MAY" => c.may = args,
                    "STRUCTURAL" | "AUXILIARY" | "ABSTRACT" => c.kind = key.to_ascii_lowercase(),
                    _ => {}
                }
            }
            c.name = names.first().cloned().unwrap_or_else(|| oid.clone());
            let i = out.classes.len();
            out.by_name.insert(oid.to_ascii_lowercase(), i);
            for n in names {
                out.by_name.insert(n.to_ascii_lowercase(), i);
            }
            out.classes.push(c);
        }
        out
    }

    /// Whether the schema has no class at all (it could not be read).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Every class's name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.classes.iter().map(|c| c.name.as_str())
    }

    /// Whether class `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(&name.to_ascii_lowercase())
    }

    /// What an entry of `classes` may hold: their `MUST` and `MAY` and
    /// their superclasses'. A class the schema lacks adds nothing.
    pub fn allowed(&self, classes: &[String]) -> Allowed {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = classes.to_vec();
        let mut done: Vec<usize> = Vec::new();
        while let Some(name) = todo.pop() {
            let Some(&i) = self.by_name.get(&name.to_ascii_lowercase()) else {
                continue;
            };
            if done.contains(&i) {
                continue;
            }
            done.push(i);
            let Some(c) = self.classes.get(i) else {
                continue;
            };
            if c.name.eq_ignore_ascii_case(EXTENSIBLE) {
                return Allowed::Anything;
            }
            out.extend(c.must.iter().chain(&c.may).cloned());
            todo.extend(c.sup.iter().cloned());
        }
        Allowed::Listed(out)
    }

    /// Each attribute a class's own `MUST` or `MAY` names (as the schema
    /// writes it), with the class and its kind (`structural` or
    /// `auxiliary`; abstract classes left out), in the schema's order.
    pub fn allowing(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.classes
            .iter()
            .filter(|c| c.kind != "abstract")
            .flat_map(|c| {
                let kind = if c.kind.is_empty() {
                    "structural"
                } else {
                    c.kind.as_str()
                };
                c.must
                    .iter()
                    .chain(&c.may)
                    .map(move |a| (a.as_str(), c.name.as_str(), kind))
            })
    }

    /// `classes` with every superclass, by the schema's names (lowercased;
    /// `top` left out, every class has it; a class the schema lacks as it
    /// is written): what an entry of them is, whichever of them it lists.
    pub fn closure(&self, classes: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = classes.to_vec();
        while let Some(name) = todo.pop() {
            let Some(c) = self
                .by_name
                .get(&name.to_ascii_lowercase())
                .and_then(|&i| self.classes.get(i))
            else {
                out.insert(name.to_ascii_lowercase());
                continue;
            };
            if out.insert(c.name.to_ascii_lowercase()) {
                todo.extend(c.sup.iter().cloned());
            }
        }
        out.remove("top");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> ObjectClasses {
        ObjectClasses::parse(
            &[
                "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
                "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( userPassword $ telephoneNumber ) )",
                "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( title $ ou ) )",
                "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( mail $ uid ) )",
                "( 1.3.6.1.4.1.1466.101.120.111 NAME 'extensibleObject' SUP top AUXILIARY )",
                "( 9.9 NAME ( 'loopA' 'aliasA' ) SUP loopB MAY a )",
                "( 9.10 NAME 'loopB' SUP loopA MAY b )",
                "nonsense",
            ]
            .map(String::from),
        )
    }

    fn listed(a: Allowed) -> Vec<String> {
        match a {
            Allowed::Listed(s) => s.into_iter().collect(),
            Allowed::Anything => panic!("anything"),
        }
    }

    #[test]
    fn a_closure_should_hold_every_superclass_but_top() {
        let c = classes();
        let closure = |names: &[&str]| -> Vec<String> {
            c.closure(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .into_iter()
                .collect()
        };
        assert_eq!(
            closure(&["inetOrgPerson"]),
            ["inetorgperson", "organizationalperson", "person"]
        );
        assert_eq!(
            closure(&["inetOrgPerson"]),
            closure(&["person", "INETORGPERSON"])
        );
        assert_ne!(
            closure(&["inetOrgPerson"]),
            closure(&["inetOrgPerson", "extensibleObject"])
        );
        assert_eq!(closure(&["aliasA"]), ["loopa", "loopb"]);
        assert_eq!(closure(&["unknownClass"]), ["unknownclass"]);
    }

    #[test]
    fn a_class_should_allow_its_attributes_and_its_superclasses() {
        let c = classes();
        assert_eq!(
            listed(c.allowed(&["INETORGPERSON".into()])),
            [
                "cn",
                "mail",
                "objectClass",
                "ou",
                "sn",
                "telephoneNumber",
                "title",
                "uid",
                "userPassword"
            ]
        );
        assert_eq!(
            listed(c.allowed(&["aliasA".into()])),
            ["a", "b"],
            "loops end"
        );
        assert_eq!(listed(c.allowed(&["nope".into()])), Vec::<String>::new());
        assert_eq!(
            c.allowed(&["person".into(), "extensibleObject".into()]),
            Allowed::Anything
        );
        assert!(c.has("2.5.6.6") && c.has("Person") && !c.has("nope"));
        let by = |attr: &str| -> Vec<(&str, &str)> {
            c.allowing()
                .filter(|(a, _, _)| *a == attr)
                .map(|(_, class, kind)| (class, kind))
                .collect()
        };
        assert_eq!(by("mail"), [("inetOrgPerson", "structural")]);
        assert!(by("objectClass").is_empty(), "top is abstract");
        assert_eq!(by("a"), [("loopA", "structural")]);
    }
}
