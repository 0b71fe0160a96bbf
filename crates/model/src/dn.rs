//! Whether two display keys name the same entry as a directory sees it.
//!
//! A directory compares DNs by their parts (RFC 4514): attribute types
//! ignore case (`CN=` is `cn=`), and the spaces around the separators
//! (`, ` `=` `+`) mean nothing; a server stores and returns its own
//! spelling. Synchronisation compares the DN it computes with the one the
//! system returned this way, so that `CN=Ann,OU=People` is not a rename of
//! `cn=Ann,ou=People` (which the system would answer with its own
//! spelling, again and again). Values keep their case: changing one's case
//! is a rename a directory carries out. A key that is not an LDAP DN (a
//! user name, a file's key) compares exactly.

/// Whether `a` and `b` are the same DN (see the module), or the same text.
pub fn same_dn(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (parts(a), parts(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether `text` is an LDAP DN (`cn=Ann,ou=People`), not a key of
/// another kind (a user name, a mail address).
pub fn is_dn(text: &str) -> bool {
    parts(text).is_some()
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
    let (Some(x), Some(y)) = (parts(a), parts(b)) else {
        return false;
    };
    if x.len() != y.len() {
        return false;
    }
    // The first RDN: up to the second part that starts a new RDN.
    let rdn_len = |p: &[(bool, String, String)]| {
        p.iter()
            .skip(1)
            .position(|(new_rdn, _, _)| *new_rdn)
            .map_or(p.len(), |i| i + 1)
    };
    let n = rdn_len(&x);
    if n != rdn_len(&y) || n == x.len() {
        return false;
    }
    x.iter().zip(&y).enumerate().all(|(i, (p, q))| {
        p.0 == q.0
            && p.1 == q.1
            && if i < n {
                p.2 == q.2
            } else {
                p.2.to_lowercase() == q.2.to_lowercase()
            }
    })
}

/// The attribute-value assertions of `dn` in order, each `(type in lower
/// case, value as written without its insignificant spaces)`, with a
/// marker where a new RDN starts; `None` when `dn` is not an LDAP DN.
fn parts(dn: &str) -> Option<Vec<(bool, String, String)>> {
    let mut out = Vec::new();
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
        out.push((new_rdn, t.to_ascii_lowercase(), unescape(trim_value(v))));
        new_rdn = sep != Some('+');
    }
    (!out.is_empty()).then_some(out)
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
/// escapes read, spaces around separators dropped (see [`same_dn`]); a
/// key that is not an LDAP DN, in lower case. For references by DN,
/// which a directory compares ignoring case.
pub fn folded(dn: &str) -> String {
    match parts(dn) {
        Some(parts) => {
            let mut out = String::with_capacity(dn.len());
            for (i, (new_rdn, t, v)) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(if *new_rdn { ',' } else { '+' });
                }
                out.push_str(t);
                out.push('=');
                for c in v.to_lowercase().chars() {
                    if matches!(c, ',' | '+' | '=' | '\\' | ';') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            out
        }
        None => dn.to_lowercase(),
    }
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
    fn keys_that_are_not_dns_compare_exactly() {
        assert!(same_dn("jsmith", "jsmith"));
        assert!(!same_dn("jsmith", "JSmith"));
        assert!(!same_dn("Smith, John", "Smith,John"));
        assert!(!same_dn("", "cn=x"));
    }
}
