//! Distinguished names (RFC 4514): parsed to tell a DN's RDN, its parent,
//! whether it is under a base DN, and whether two DNs name the same entry
//! ignoring case (as the engine compares DNs) and escaping (`\,` and
//! `\2C` are the same comma). DNs are never built here from data: they
//! come whole from the engine; values that go into one are escaped with
//! `ldap3::dn_escape` by whoever builds it.

use std::fmt;

/// A parsed DN: its text as given and its RDNs, the entry's own first.
#[derive(Clone, Debug)]
pub struct Dn {
    text: String,
    rdns: Vec<Rdn>,
}

/// One RDN: its text as written and its attribute-value pairs (values
/// unescaped).
#[derive(Clone, Debug)]
pub struct Rdn {
    pub raw: String,
    pub avas: Vec<(String, String)>,
}

impl Rdn {
    /// Whether both are the same RDN with every value written alike (case
    /// included): a directory keeps a value's case, so `cn=Grace HOPPER`
    /// is a rename of `cn=Grace Hopper` even though both name one entry.
    pub fn same_case(&self, other: &Rdn) -> bool {
        let exact = |r: &Rdn| {
            let mut k: Vec<(String, String)> = r
                .avas
                .iter()
                .map(|(a, v)| (a.to_ascii_lowercase(), v.clone()))
                .collect();
            k.sort();
            k
        };
        exact(self) == exact(other)
    }

    /// The comparison key: types and values lowercased, runs of spaces
    /// made one, pairs sorted.
    fn key(&self) -> Vec<(String, String)> {
        let mut k: Vec<(String, String)> = self
            .avas
            .iter()
            .map(|(a, v)| (a.to_ascii_lowercase(), fold(v)))
            .collect();
        k.sort();
        k
    }
}

/// A value as caseIgnoreMatch sees it, near enough: lowercased, inner runs
/// of spaces made one, outer ones dropped.
fn fold(v: &str) -> String {
    v.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Dn {
    /// Parse `s`; the empty string is the root DN.
    pub fn parse(s: &str) -> Result<Dn, String> {
        let mut rdns = Vec::new();
        if s.trim().is_empty() {
            return Ok(Dn {
                text: s.to_owned(),
                rdns,
            });
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        loop {
            // One RDN: pairs separated by '+', ended by ',' or the end.
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            let start = i;
            let mut avas = Vec::new();
            loop {
                let eq = s[i..]
                    .find('=')
                    .map(|p| p + i)
                    .ok_or_else(|| format!("`{}` has no `=`", &s[start..]))?;
                let attr = s[i..eq].trim();
                if attr.is_empty() || !super::config::valid_attribute(attr) {
                    return Err(format!("`{attr}` is not an attribute type"));
                }
                i = eq + 1;
                let (value, next) = value(s, i)?;
                avas.push((attr.to_owned(), value));
                i = next;
                if i < bytes.len() && bytes[i] == b'+' {
                    i += 1;
                    continue;
                }
                break;
            }
            rdns.push(Rdn {
                raw: s[start..i].trim_end().to_owned(),
                avas,
            });
            if i >= bytes.len() {
                break;
            }
            // A separator ',' (or ';', the old form).
            i += 1;
            if i >= bytes.len() {
                return Err("it ends with a separator".into());
            }
        }
        Ok(Dn {
            text: s.to_owned(),
            rdns,
        })
    }

    pub fn is_root(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The entry's own RDN.
    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    /// The parent's DN as text (written as in this DN).
    pub fn parent_text(&self) -> String {
        self.rdns
            .iter()
            .skip(1)
            .map(|r| r.raw.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The parent's DN (`None` for the root).
    pub fn parent(&self) -> Option<Dn> {
        let rdns = self.rdns.get(1..)?.to_vec();
        Some(Dn {
            text: self.parent_text(),
            rdns,
        })
    }

    fn keys(&self) -> Vec<Vec<(String, String)>> {
        self.rdns.iter().map(Rdn::key).collect()
    }

    /// Whether this DN is `base` or under it.
    pub fn is_within(&self, base: &Dn) -> bool {
        let (mine, theirs) = (self.keys(), base.keys());
        mine.len() >= theirs.len() && mine[mine.len() - theirs.len()..] == theirs[..]
    }

    /// A text equal for two DNs exactly when they are [`same`](Dn::same).
    pub fn key_text(&self) -> String {
        format!("{:?}", self.keys())
    }

    /// The [`key_text`](Dn::key_text) of the parent (the root's for a DN
    /// of one RDN; `None` for the root).
    pub fn parent_key_text(&self) -> Option<String> {
        self.keys().get(1..).map(|k| format!("{k:?}"))
    }

    /// Whether both name the same entry, ignoring case and escaping.
    pub fn same(&self, other: &Dn) -> bool {
        self.keys() == other.keys()
    }

    /// Whether the parents are the same entry.
    pub fn same_parent(&self, other: &Dn) -> bool {
        self.keys().get(1..) == other.keys().get(1..)
    }
}

/// Read a value starting at byte `i`: unescaped text and where it ends
/// (at an unescaped `,`, `;`, `+` or the end).
fn value(s: &str, mut i: usize) -> Result<(String, usize), String> {
    let bytes = s.as_bytes();
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    let mut out: Vec<u8> = Vec::new();
    // Bytes up to here are escaped or inner: trailing plain spaces go.
    let mut kept = 0;
    if bytes.get(i) == Some(&b'#') {
        // A BER-encoded value in hex: kept as written.
        let end = s[i..].find([',', ';', '+']).map_or(bytes.len(), |p| p + i);
        return Ok((s[i..end].trim_end().to_owned(), end));
    }
    while i < bytes.len() {
        match bytes[i] {
            b',' | b';' | b'+' => break,
            b'\\' => {
                let hex = |b: u8| char::from(b).to_digit(16);
                match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                        let v = hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0);
                        out.push(u8::try_from(v).unwrap_or(0));
                        i += 3;
                    }
                    (Some(&c), _) => {
                        out.push(c);
                        i += 2;
                    }
                    (None, _) => return Err("it ends with a lone backslash".into()),
                }
                kept = out.len();
            }
            b => {
                out.push(b);
                if b != b' ' {
                    kept = out.len();
                }
                i += 1;
            }
        }
    }
    out.truncate(kept);
    let value = String::from_utf8(out).map_err(|_| "an escaped value is not UTF-8".to_owned())?;
    if value.is_empty() {
        return Err("an attribute has no value".into());
    }
    Ok((value, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_spaces_and_case_should_not_make_dns_differ() {
        let a = Dn::parse(r"CN=Doe\, Jane \2B \22JD\22,OU=People,DC=Example,DC=org").unwrap();
        let b = Dn::parse(r#"cn=doe\2c jane \+ \"jd\", ou=people,dc=example,dc=org"#).unwrap();
        assert!(a.same(&b));
        assert_eq!(a.rdn().unwrap().avas[0].1, "Doe, Jane + \"JD\"");
        assert_eq!(a.parent_text(), "OU=People,DC=Example,DC=org");
        assert!(a.is_within(&Dn::parse("dc=example,dc=org").unwrap()));
        assert!(!a.is_within(&Dn::parse("ou=groups,dc=example,dc=org").unwrap()));
        assert!(!a.same(&Dn::parse("cn=doe,ou=people,dc=example,dc=org").unwrap()));
    }

    #[test]
    fn multi_valued_rdns_and_errors() {
        let d = Dn::parse("cn=a+uid=b,dc=x").unwrap();
        assert_eq!(d.rdn().unwrap().avas.len(), 2);
        assert!(d.same(&Dn::parse("UID=b+cn=A,dc=X").unwrap()));
        assert!(d.same_parent(&Dn::parse("cn=z,dc=x").unwrap()));
        for bad in ["cn", "cn=a,", "=a", "cn=a\\", "cn=", "u0000001", "*)(uid=*"] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
        assert!(Dn::parse("").unwrap().is_root());
    }
}
