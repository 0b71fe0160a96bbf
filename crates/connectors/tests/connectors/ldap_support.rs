//! What the LDAP tests share: the test binary's slapd (the kit's, with a
//! test schema and two size-limited accounts), settings, LDIF reading,
//! and the compliance suite's view of the directory.
//!
//! Every test works in an organizational unit of its own (tests share the
//! server, in parallel). The compliance suite writes DNs like
//! `cn=User 1,ou=people` and anchors like `u0000001`, and its value-type
//! check attribute names like `number_like_text`, which no LDAP schema
//! can have (names are letters, digits and hyphens): [`Relocated`] puts
//! those DNs under the test's unit and maps those names to the test
//! schema's (`asNumberLikeText`), both ways, and nothing else.

use crate::common::{ctx, settings};
use autosync_connector::compliance::ComplianceTarget;
use autosync_connector::{
    Capabilities, Connector, ConnectorError, ConnectorFactory, ExportChange, ExportOutcome,
    ExportSession, ImportItem, ImportStream,
};
use autosync_connectors::ldap::LdapFactory;
use autosync_model::{Attributes, ObjectTypeDef, Value};
use autosync_testkit::{Slapd, SlapdBuilder};
use base64::Engine as _;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Attribute types for every value type, and a structural class that
/// allows them (with `uid` required: the tests' anchor).
pub const TEST_SCHEMA: &str = "
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'asText' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'asUnicode' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'asNumberLikeText' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'asLeadingZeroId' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.5 NAME 'asInteger' EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.6 NAME 'asIntegerInText' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.7 NAME 'asBooleanTrue' EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.8 NAME 'asBooleanFalse' EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.9 NAME 'asBinary' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.10 NAME 'asMultiText' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.55555.1.11 NAME 'asMultiInteger' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )
attributetype ( 1.3.6.1.4.1.55555.1.12 NAME 'asEmptyMulti' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'autosyncTest' SUP top STRUCTURAL MUST uid
  MAY ( cn $ description $ title $ l $ asText $ asUnicode $ asNumberLikeText $ asLeadingZeroId $
        asInteger $ asIntegerInText $ asBooleanTrue $ asBooleanFalse $ asBinary $ asMultiText $
        asMultiInteger $ asEmptyMulti ) )
";

/// An account that may page past its size limit of 50, and one that may
/// not.
pub const LIMITED: &str = "cn=limited,dc=example,dc=org";
pub const STRICT: &str = "cn=strict,dc=example,dc=org";
pub const ACCOUNT_PASSWORD: &str = "limited-secret";

/// The value-type check's names and the test schema's.
pub const TYPED_NAMES: &[(&str, &str)] = &[
    ("text", "asText"),
    ("unicode", "asUnicode"),
    ("number_like_text", "asNumberLikeText"),
    ("leading_zero_id", "asLeadingZeroId"),
    ("integer", "asInteger"),
    ("integer_in_text", "asIntegerInText"),
    ("boolean_true", "asBooleanTrue"),
    ("boolean_false", "asBooleanFalse"),
    ("binary", "asBinary"),
    ("multi_text", "asMultiText"),
    ("multi_integer", "asMultiInteger"),
    ("empty_multi", "asEmptyMulti"),
];

/// The test binary's slapd.
pub fn slapd() -> &'static Slapd {
    let s = SlapdBuilder::new()
        .schema(TEST_SCHEMA)
        .database_directive(&format!(
            "limits dn.exact=\"{LIMITED}\" size.soft=50 size.hard=50 size.prtotal=unlimited"
        ))
        .database_directive(&format!(
            "limits dn.exact=\"{STRICT}\" size.soft=50 size.hard=50"
        ))
        .shared()
        .unwrap();
    for account in [LIMITED, STRICT] {
        let cn = account.split([',', '=']).nth(1).unwrap();
        // Already there when another test of the binary made it.
        let _ = s.ldapadd(&format!(
            "dn: {account}\nobjectClass: person\ncn: {cn}\nsn: {cn}\nuserPassword: {ACCOUNT_PASSWORD}\n"
        ));
    }
    s
}

/// An object type anchored by `uid`, with its DN in attribute `dn`.
pub fn uid_type(name: &str) -> ObjectTypeDef {
    ObjectTypeDef {
        name: name.into(),
        anchor: "uid".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    }
}

/// Settings binding as the administrator, reading `base`.
pub fn admin_settings(s: &Slapd, base: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut m = settings(json!({
        "url": s.url(),
        "bind_dn": s.admin_dn(),
        "password": s.admin_password(),
        "base_dns": [base],
    }));
    m.extend(settings(extra));
    serde_json::Value::Object(m)
}

pub fn build(types: Vec<ObjectTypeDef>, v: serde_json::Value) -> Box<dyn Connector> {
    LdapFactory
        .build(&settings(v), &ctx(Path::new("."), types))
        .unwrap_or_else(|e| panic!("build failed: {e}"))
}

/// One entry of an LDIF text: its DN and values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The text values of `name` (ignoring case), sorted.
    pub fn texts(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, vs)| vs.iter().map(|v| String::from_utf8_lossy(v).into_owned()))
            .collect();
        out.sort();
        out
    }
}

/// The entries of `ldapsearch -LLL -o ldif-wrap=no` output.
pub fn ldif(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut e = Entry::default();
        for line in block
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (name, value) = if let Some((n, v)) = line.split_once(":: ") {
                (
                    n,
                    base64::engine::general_purpose::STANDARD.decode(v).unwrap(),
                )
            } else if let Some((n, v)) = line.split_once(": ") {
                (n, v.as_bytes().to_vec())
            } else {
                let n = line.trim_end_matches(':');
                (n, Vec::new())
            };
            if name == "dn" {
                e.dn = String::from_utf8(value).unwrap();
            } else {
                e.attrs.entry(name.to_owned()).or_default().push(value);
            }
        }
        if !e.dn.is_empty() {
            out.push(e);
        }
    }
    out
}

/// The entries under `base` matching `filter`, as the administrator
/// reads them.
pub fn search(s: &Slapd, base: &str, filter: &str, attrs: &[&str]) -> Vec<Entry> {
    ldif(&s.ldapsearch(base, filter, attrs).unwrap())
}

/// Every item of a full import.
pub fn import(conn: &mut dyn Connector) -> Vec<ImportItem> {
    crate::common::import_all(conn)
}

// ---------------------------------------------------------------------------
// The compliance suite's view: DNs under a unit, names mapped.

/// How the suite's DNs and names are the directory's.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The unit the suite's DNs are under.
    pub unit: String,
    /// (suite name, directory name).
    pub names: Vec<(String, String)>,
}

impl Mapping {
    /// A suite DN in the directory: `cn=User 1,ou=people` under the unit;
    /// a suite "DN" that is none (an anchor) as `uid=<it>` there.
    pub fn out_dn(&self, dn: &str) -> String {
        if dn.contains('=') {
            format!("{dn},{}", self.unit)
        } else {
            format!("uid={},{}", ldap3::dn_escape(dn), self.unit)
        }
    }

    pub fn in_dn(&self, dn: &str) -> String {
        let suffix = format!(",{}", self.unit).to_lowercase();
        if dn.to_lowercase().ends_with(&suffix) {
            dn[..dn.len() - suffix.len()].to_owned()
        } else {
            dn.to_owned()
        }
    }

    fn out_name(&self, n: &str) -> String {
        self.names
            .iter()
            .find(|(a, _)| a == n)
            .map_or_else(|| n.to_owned(), |(_, b)| b.clone())
    }

    fn in_name(&self, n: &str) -> String {
        self.names
            .iter()
            .find(|(_, b)| b.eq_ignore_ascii_case(n))
            .map_or_else(|| n.to_owned(), |(a, _)| a.clone())
    }

    fn out_change(&self, c: &ExportChange) -> ExportChange {
        let mut c = c.clone();
        c.dn = self.out_dn(&c.dn);
        c.new_dn = c.new_dn.map(|d| self.out_dn(&d));
        c.changes = c
            .changes
            .into_iter()
            .map(|(k, v)| (self.out_name(&k), v))
            .collect();
        c.values = c
            .values
            .into_iter()
            .map(|(k, v)| (self.out_name(&k), v))
            .collect();
        c
    }

    fn in_attributes(&self, a: Attributes) -> Attributes {
        a.into_iter()
            .map(|(k, v)| {
                let v = match (k.as_str(), v) {
                    ("dn", Value::String(d)) => Value::String(self.in_dn(&d)),
                    (_, v) => v,
                };
                (self.in_name(&k), v)
            })
            .collect()
    }
}

/// A connector seen through a [`Mapping`].
pub struct Relocated {
    inner: Box<dyn Connector>,
    map: Mapping,
}

struct RelocatedStream<'a> {
    inner: Box<dyn ImportStream + 'a>,
    map: &'a Mapping,
}

struct RelocatedExport<'a> {
    inner: Box<dyn ExportSession + 'a>,
    map: &'a Mapping,
}

impl ImportStream for RelocatedStream<'_> {
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError> {
        Ok(self.inner.next_batch()?.map(|batch| {
            batch
                .into_iter()
                .map(|item| {
                    item.map(|mut o| {
                        o.dn = self.map.in_dn(&o.dn);
                        o.attributes = self.map.in_attributes(o.attributes);
                        o
                    })
                })
                .collect()
        }))
    }

    fn watermark(&self) -> Option<String> {
        self.inner.watermark()
    }

    fn unchanged(&self) -> bool {
        self.inner.unchanged()
    }

    fn complete(&self) -> bool {
        self.inner.complete()
    }
}

impl ExportSession for RelocatedExport<'_> {
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        let mapped: Vec<ExportChange> = batch.iter().map(|c| self.map.out_change(c)).collect();
        self.inner.apply(&mapped)
    }

    fn durable_per_batch(&self) -> bool {
        self.inner.durable_per_batch()
    }

    fn commit(self: Box<Self>) -> Result<(), ConnectorError> {
        self.inner.commit()
    }
}

impl Connector for Relocated {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn full_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        let Relocated { inner, map } = self;
        Ok(Box::new(RelocatedStream {
            inner: inner.full_import(watermark)?,
            map,
        }))
    }

    fn delta_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        let Relocated { inner, map } = self;
        Ok(Box::new(RelocatedStream {
            inner: inner.delta_import(watermark)?,
            map,
        }))
    }

    fn begin_export(&mut self) -> Result<Box<dyn ExportSession + '_>, ConnectorError> {
        let Relocated { inner, map } = self;
        Ok(Box::new(RelocatedExport {
            inner: inner.begin_export()?,
            map,
        }))
    }
}

/// The compliance target: a unit of its own with `ou=people` in it, and
/// another for the value types.
pub fn compliance_target() -> ((), ComplianceTarget) {
    let s = slapd();
    let unit = s.new_ou("compliance").unwrap();
    let typed_unit = s.new_ou("typed").unwrap();
    let people = format!("ou=people,{unit}");
    let add_people = move || {
        s.ldapadd(&format!(
            "dn: {people}\nobjectClass: organizationalUnit\nou: people\n"
        ))
        .unwrap()
    };
    add_people();
    let object_type = uid_type("person");
    let attributes = ["description", "title", "l"];
    let map = Mapping {
        unit: unit.clone(),
        names: Vec::new(),
    };
    let typed_map = Mapping {
        unit: typed_unit.clone(),
        names: TYPED_NAMES
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect(),
    };
    let main_settings = admin_settings(
        s,
        &unit,
        json!({
            "object_classes": { "person": "autosyncTest" },
            "attributes": attributes,
            "page_size": 100,
        }),
    );
    let typed_settings = admin_settings(
        s,
        &typed_unit,
        json!({
            "object_classes": { "person": "autosyncTest" },
            "attributes": TYPED_NAMES.iter().map(|(_, b)| *b).collect::<Vec<_>>(),
            "binary_attributes": ["asBinary"],
        }),
    );
    let (ot, ot2) = (object_type.clone(), object_type.clone());
    let (map2, unit2) = (map.clone(), unit.clone());
    let t = ComplianceTarget {
        name: "ldap".into(),
        object_type,
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        batch_size: 100,
        large_count: 1000,
        delta_sees_deletes: false,
        detects_unchanged: false,
        reset: Box::new(move || {
            s.delete_tree(&format!("ou=people,{unit}")).unwrap();
            add_people();
        }),
        make: Box::new(move || {
            Box::new(Relocated {
                inner: build(vec![ot.clone()], main_settings.clone()),
                map: map.clone(),
            })
        }),
        read_back: Box::new(move || {
            search(
                s,
                &unit2,
                "(objectClass=autosyncTest)",
                &["uid", "description", "title", "l"],
            )
            .into_iter()
            .map(|e| {
                let mut a = Attributes::new();
                for (k, vs) in &e.attrs {
                    let [v] = vs.as_slice() else {
                        panic!("{}: {k} has {} values", e.dn, vs.len())
                    };
                    a.insert(
                        k.clone(),
                        Value::String(String::from_utf8(v.clone()).unwrap()),
                    );
                }
                a.insert("dn".into(), Value::String(map2.in_dn(&e.dn)));
                (a["uid"].to_text(), a)
            })
            .collect()
        }),
        make_typed: Box::new(move || {
            Box::new(Relocated {
                inner: build(vec![ot2.clone()], typed_settings.clone()),
                map: typed_map.clone(),
            })
        }),
    };
    ((), t)
}
