//! Whether two display keys name the same entry as a directory sees it.
//!
//! A directory compares DNs by their parts (RFC 4514): attribute types
//! ignore case (`CN=` is `cn=`), the spaces around the separators (`, `
//! `=` `+`) mean nothing, an escape and its hex form (`\,`, `\2C`) are
//! one character, and the parts of a multi-valued RDN (`cn=Ann+uid=a`)
//! are a set, in any order; a server stores and returns its own spelling.
//! Synchronisation compares the DN it computes with the one the system
//! returned this way, so that `CN=Ann,OU=People` is not a rename of
//! `cn=Ann,ou=People` (which the system would answer with its own
//! spelling, again and again). Values keep their case: changing one's case
//! is a rename a directory carries out. A key that is not an LDAP DN (a
//! user name, a file's key) compares exactly.

/// Whether `a` and `b` are the same DN (see the module), or the same text.
pub fn same_dn(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (rdns(a), rdns(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether `text` is an LDAP DN (`cn=Ann,ou=People`), not a key of
/// another kind (a user name, a mail address).
pub fn is_dn(text: &str) -> bool {
    rdns(text).is_some()
}

/// Whether `a` and `b` name one entry and differ at most in the case of
/// their parent's values (`cn=Ann,ou=People` and `cn=Ann,ou=people`): a
/// directory keeps the parent's own spelling, which only that entry's
/// own rename changes, so such a difference is no rename of the child.
/// The entry's own RDN keeps its case, as in [`same_dn`].
pub fn same_entry(a: &str, b: &str) -> bool {
    if same_dn(a, b) {
        return true;
    }
    let (Some(x), Some(y)) = (rdns(a), rdns(b)) else {
        return false;
    };
    if x.len() != y.len() || x.first() != y.first() {
        return false;
    }
    x.iter()
        .zip(&y)
        .skip(1)
        .all(|(p, q)| lowered(p.clone()) == lowered(q.clone()))
}

/// The RDNs of `dn` in order, each its attribute-value assertions `(type
/// in lower case, value as read: escapes read, without its insignificant
/// spaces)` sorted by type then value (the parts of a multi-valued RDN are
/// a set); `None` when `dn` is not an LDAP DN.
fn rdns(dn: &str) -> Option<Vec<Rdn>> {
    let mut out: Vec<Rdn> = Vec::new();
    let mut new_rdn = true;
    for (ava, sep) in split_unescaped(dn, &[',', ';', '+']) {
        let (t, v) = split_once_unescaped(ava, '=')?;
        let t = t.trim();
        let valid = t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return None;
        }
        let part = (t.to_ascii_lowercase(), unescape(trim_value(v)));
        match out.last_mut() {
            Some(rdn) if !new_rdn => rdn.push(part),
            _ => out.push(vec![part]),
        }
        new_rdn = sep != Some('+');
    }
    for rdn in &mut out {
        rdn.sort_unstable();
    }
    (!out.is_empty()).then_some(out)
}

/// One RDN: its attribute-value assertions, sorted (see [`rdns`]).
type Rdn = Vec<(String, String)>;

/// `rdn` with its values in lower case, sorted again (two values of one
/// type may change places).
fn lowered(mut rdn: Rdn) -> Rdn {
    for (_, v) in &mut rdn {
        *v = v.to_lowercase();
    }
    rdn.sort_unstable();
    rdn
}

/// `s` cut at each separator not escaped by a backslash, each piece with
/// the separator that ended it.
fn split_unescaped<'a>(s: &'a str, seps: &[char]) -> Vec<(&'a str, Option<char>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if seps.contains(&c) {
            out.push((&s[start..i], Some(c)));
            start = i + c.len_utf8();
        }
    }
    out.push((&s[start..], None));
    out
}

fn split_once_unescaped(s: &str, sep: char) -> Option<(&str, &str)> {
    match split_unescaped(s, &[sep]).first() {
        Some((first, Some(_))) => Some((first, &s[first.len() + sep.len_utf8()..])),
        _ => None,
    }
}

/// The value an escaped one stands for (RFC 4514): `\,` and `\2C` are
/// both a comma, as a directory reads them (a server returns its own
/// escapes: OpenLDAP `\2C` for the `\,` it was sent). An escape that is
/// neither is kept as written.
fn unescape(v: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = v.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() {
            let next = bytes[i + 1];
            if let (Some(h), Some(l)) = (hex(next), bytes.get(i + 2).and_then(|c| hex(*c))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            out.push(next);
            i += 2;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| v.to_owned())
}

/// The form in which two DNs that a directory takes for the same entry
/// ignoring case are equal: attribute types and values in lower case,
/// escapes read, spaces around separators dropped, the parts of each
/// multi-valued RDN in one order (by type, then value) (see [`same_dn`]);
/// a key that is not an LDAP DN, in lower case. For references by DN,
/// which a directory compares ignoring case. A folded DN folds to itself.
pub fn folded(dn: &str) -> String {
    let Some(rdns) = rdns(dn) else {
        return dn.to_lowercase();
    };
    let mut out = String::with_capacity(dn.len());
    for (i, rdn) in rdns.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, (t, v)) in lowered(rdn).iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(t);
            out.push('=');
            let last = v.chars().count().saturating_sub(1);
            for (k, c) in v.chars().enumerate() {
                // A space at either end is escaped: read again, it stays.
                if matches!(c, ',' | '+' | '=' | '\\' | ';') || (c == ' ' && (k == 0 || k == last))
                {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out
}

/// A value without the spaces around it, but an escaped trailing space
/// (`\ `) kept.
fn trim_value(v: &str) -> &str {
    let v = v.trim_start();
    let mut end = v.len();
    while end > 0 && v.as_bytes()[end - 1] == b' ' {
        // An odd run of backslashes before the space escapes it.
        let slashes = v.as_bytes()[..end - 1]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if slashes % 2 == 1 {
            break;
        }
        end -= 1;
    }
    &v[..end]
}

#[cfg(test)]
mod tests {
    use super::{same_dn, same_entry};

    #[test]
    fn a_parent_in_another_case_is_the_same_entry_and_the_rdn_keeps_its_case() {
        assert!(same_entry("cn=Ann,ou=People,dc=x", "cn=Ann,ou=people,DC=X"));
        assert!(same_entry("CN=Ann, ou=People", "cn=Ann,ou=people"));
        assert!(!same_entry("cn=ANN,ou=People", "cn=Ann,ou=People"));
        assert!(!same_entry("cn=Ann,ou=Staff", "cn=Ann,ou=People"));
        assert!(!same_entry("cn=Ann", "cn=ann"));
        assert!(!same_entry("cn=Ann+uid=a,ou=P", "cn=Ann+uid=A,ou=p"));
        assert!(same_entry("cn=Ann+uid=a,ou=P", "cn=Ann+uid=a,ou=p"));
        assert!(!same_entry("ann@x", "ANN@x"));
        assert!(!same_entry("cn=Ann,ou=a,ou=b", "cn=Ann,ou=a"));
    }

    #[test]
    fn types_ignore_case_and_spaces_around_separators_mean_nothing() {
        let stored = "cn=Alan Turing,ou=people,dc=example,dc=org";
        for computed in [
            "CN=Alan Turing,OU=people,DC=example,DC=org",
            "cn=Alan Turing, ou=people, dc=example, dc=org",
            "cn = Alan Turing ,ou=people;dc=example,dc=org",
        ] {
            assert!(same_dn(computed, stored), "{computed}");
        }
    }

    #[test]
    fn values_keep_their_case_and_their_escapes() {
        let stored = "cn=Alan Turing,ou=people,dc=example,dc=org";
        assert!(!same_dn(
            "cn=alan turing,ou=people,dc=example,dc=org",
            stored
        ));
        assert!(!same_dn(
            "cn=Alan Turing,ou=People,dc=example,dc=org",
            stored
        ));
        assert!(!same_dn("cn=Alan Turing,ou=people,dc=example", stored));
        // An escaped comma is part of the value, an escaped space too.
        assert!(same_dn(r"CN=Turing\, Alan,ou=x", r"cn=Turing\, Alan,ou=x"));
        assert!(!same_dn(r"cn=Turing\, Alan,ou=x", r"cn=Turing,Alan,ou=x"));
        assert!(!same_dn(r"cn=Ann\ ,ou=x", "cn=Ann,ou=x"));
        assert!(same_dn(r"cn=Ann\ ,ou=x", r"CN=Ann\ , ou=x"));
        // An escape and its hex form are the same character.
        assert!(same_dn(r"cn=Kim\, Jr,ou=x", r"cn=Kim\2C Jr,ou=x"));
        assert!(same_dn(r"cn=Kim\2c Jr,ou=x", r"CN=Kim\, Jr, ou=x"));
        assert!(same_dn(r"cn=A\+B,ou=x", r"cn=A\2BB,ou=x"));
        assert!(!same_dn(r"cn=Kim\2C Jr,ou=x", r"cn=Kim\2C JR,ou=x"));
        // A multi-valued RDN is not two RDNs.
        assert!(!same_dn("cn=A+uid=a,ou=x", "cn=A,uid=a,ou=x"));
        assert!(same_dn("cn=A+uid=a,ou=x", "CN=A + UID=a,ou=x"));
    }

    #[test]
    fn folded_dns_are_equal_when_a_directory_takes_them_for_one_ignoring_case() {
        use super::folded;
        assert_eq!(
            folded(r"CN=Bob Kim\, Jr, OU=Legal,dc=x"),
            folded(r"cn=bob kim\2C jr,ou=legal,dc=x")
        );
        assert_ne!(folded(r"cn=Kim\, Jr,ou=x"), folded(r"cn=Kim,cn=Jr,ou=x"));
        assert_eq!(folded("JSmith"), "jsmith");
    }

    #[test]
    fn the_parts_of_a_multi_valued_rdn_compare_in_any_order() {
        use super::folded;
        let held = "cn=Ann Lee+uid=alee,ou=p,dc=x";
        let computed = "uid=alee+cn=Ann Lee,ou=p,dc=x";
        assert!(same_dn(computed, held));
        assert!(same_dn("UID=alee + CN=Ann Lee, ou=p,dc=x", held));
        assert!(same_entry(computed, "cn=Ann Lee+uid=alee,OU=P,dc=X"));
        assert_eq!(folded(computed), folded(held));
        assert_eq!(folded(computed), "cn=ann lee+uid=alee,ou=p,dc=x");
        // A set, not a bag of parts: each part still counts, and its case.
        assert!(!same_dn(
            "uid=alee+cn=Ann Lee,ou=p,dc=x",
            "cn=Ann Lee,ou=p,dc=x"
        ));
        assert!(!same_dn(computed, "cn=ann lee+uid=alee,ou=p,dc=x"));
        assert!(!same_entry(computed, "cn=ann lee+uid=alee,ou=p,dc=x"));
        // The parts of one RDN only: RDNs keep their order.
        assert!(!same_dn("cn=a,ou=b,dc=x", "ou=b,cn=a,dc=x"));
        assert_ne!(folded("cn=a,ou=b,dc=x"), folded("ou=b,cn=a,dc=x"));
        // Two values of one type, in any order and case.
        assert_eq!(folded("cn=B+cn=a,dc=x"), folded("CN=A+cn=b,dc=x"));
        assert!(same_dn("cn=B+cn=a,dc=x", "cn=a+cn=B,dc=x"));
        // A parent's multi-valued RDN, its case ignored by `same_entry`.
        assert!(same_entry("cn=Ann,ou=B+l=A,dc=x", "cn=Ann,l=a+ou=b,dc=x"));
    }

    #[test]
    fn a_folded_dn_folds_to_itself() {
        use super::folded;
        for dn in [
            r"CN=Smith\, John, OU=People,dc=x",
            r"cn=Smith\2C John+UID=js,ou=People,dc=x",
            r"cn=\ Ann\ ,ou=x",
            r"cn=a\=b\+c\;d\\e,ou=x",
            r"cn=Ann\C3,ou=x",
            "cn= ,ou=x",
            "Smith, John",
            "JSmith",
            "",
        ] {
            let once = folded(dn);
            assert_eq!(folded(&once), once, "{dn}");
            assert!(same_dn(&once, &folded(&once)), "{dn}");
        }
        assert_eq!(folded(r"cn=\ Ann\ ,ou=x"), r"cn=\ ann\ ,ou=x");
        assert_ne!(folded(r"cn=\ Ann,ou=x"), folded("cn=Ann,ou=x"));
    }

    #[test]
    fn keys_that_are_not_dns_compare_exactly() {
        assert!(same_dn("jsmith", "jsmith"));
        assert!(!same_dn("jsmith", "JSmith"));
        assert!(!same_dn("Smith, John", "Smith,John"));
        assert!(!same_dn("", "cn=x"));
    }
}
