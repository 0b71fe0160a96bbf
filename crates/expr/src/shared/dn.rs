//! Distinguished names (RFC 4514): escaping a value for use in a DN
//! (`escape_dn`, and MIM's `EscapeDNComponent` form `escape_dn_component`),
//! reading an escaped value back (`unescape_dn`), and the values of a DN's
//! components counted from the left or the right (MIM's `DNComponent` and
//! `DNComponentRev`).

use super::{Call, each, integer};
use crate::error::{EvalError, describe};
use crate::eval::text;
use autosync_model::Value;
use std::fmt::Write as _;

/// `escape_dn(value)`: the value escaped for use as an attribute value in a
/// DN.
pub(super) fn escape_dn(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    each(c.arg(0), |v| {
        Ok(Some(Value::String(escape(&text(c.name, v)?))))
    })
}

/// `escape_dn_component("CN=" + value)`: a whole `name=value` component,
/// its value escaped and blanks around its name removed.
pub(super) fn escape_dn_component(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    each(c.arg(0), |v| {
        let component = text(c.name, v)?;
        let Some((name, value)) = component.split_once('=') else {
            return Err(EvalError::in_function(
                c.name,
                "expects `name=value`, such as \"CN=\" + displayName",
                v,
            ));
        };
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.');
        if !valid_name {
            return Err(EvalError::in_function(
                c.name,
                "the attribute name before `=` must be letters, digits, `-` or an OID",
                v,
            ));
        }
        Ok(Some(Value::String(format!("{name}={}", escape(value)))))
    })
}

/// `unescape_dn(value)`: an escaped DN value read back.
pub(super) fn unescape_dn(c: &Call<'_>) -> Result<Option<Value>, EvalError> {
    each(c.arg(0), |v| {
        let escaped = text(c.name, v)?;
        unescape(&escaped)
            .map(|s| Some(Value::String(s)))
            .map_err(|why| EvalError::in_function(c.name, &why, v))
    })
}

/// `dn_component(dn, n)` and `dn_component_rev(dn, n [, "DC"])`: the value
/// of the `n`-th component (from 1) from the left or from the right.
pub(super) fn dn_component(c: &Call<'_>, from_right: bool) -> Result<Option<Value>, EvalError> {
    let Some(n) = integer(c.name, c.arg(1))? else {
        return Ok(None);
    };
    let skip_dc = match c.arg(2) {
        None => false,
        Some(v) if text(c.name, v)?.eq_ignore_ascii_case("dc") => true,
        Some(v) => {
            return Err(EvalError::in_function(
                c.name,
                "the only option is \"DC\" (leave out the dc= components)",
                v,
            ));
        }
    };
    let Some(n) = usize::try_from(n).ok().filter(|n| *n >= 1) else {
        return Ok(None);
    };
    each(c.arg(0), |v| {
        let dn = text(c.name, v)?;
        if dn.trim().is_empty() {
            return Ok(None);
        }
        let rdns = parse(&dn).map_err(|why| EvalError::in_function(c.name, &why, v))?;
        let mut wanted = rdns.into_iter().filter(|rdn| {
            !(skip_dc
                && rdn
                    .first()
                    .is_some_and(|(t, _)| t.eq_ignore_ascii_case("dc")))
        });
        let rdn = if from_right {
            wanted.rev().nth(n - 1)
        } else {
            wanted.nth(n - 1)
        };
        Ok(rdn.map(|mut values| {
            if values.len() == 1 {
                Value::String(values.remove(0).1)
            } else {
                Value::Multi(values.into_iter().map(|(_, v)| Value::String(v)).collect())
            }
        }))
    })
}

/// RFC 4514 escaping of one attribute value: `,` `+` `"` `\` `<` `>` `;`
/// `=` with a backslash, a leading `#` or space and a trailing space with a
/// backslash, and control characters (NUL, CR, LF, ...) as `\XX`.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for (i, ch) in value.char_indices() {
        let first = i == 0;
        let last = i + ch.len_utf8() == value.len();
        match ch {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(ch);
            }
            '#' if first => out.push_str("\\#"),
            ' ' if first || last => out.push_str("\\ "),
            ch if ch.is_ascii_control() => {
                let _ = write!(out, "\\{:02X}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    out
}

/// The inverse of [`escape`]: `\` followed by two hexadecimal digits is
/// that byte (bytes join into UTF-8 characters), `\` followed by any other
/// character is that character.
pub(crate) fn unescape(value: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            let mut buf = [0; 4];
            bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(next) = chars.next() else {
            return Err("the value ends with a lone `\\`".to_owned());
        };
        let pair = next
            .to_digit(16)
            .zip(chars.peek().and_then(|c| c.to_digit(16)));
        match pair {
            Some((high, low)) => {
                chars.next();
                bytes.push(u8::try_from(high * 16 + low).unwrap_or(0));
            }
            None => {
                let mut buf = [0; 4];
                bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| "the `\\XX` escapes do not make valid UTF-8 text".to_owned())
}

/// One relative DN: its `(type, value)` pairs (several for `CN=a+UID=b`),
/// values unescaped.
type Rdn = Vec<(String, String)>;

/// The components of a DN, left to right. Blanks around names and around
/// values (unless escaped) are ignored, as directories do.
fn parse(dn: &str) -> Result<Vec<Rdn>, String> {
    split_unescaped(dn, b',')
        .into_iter()
        .enumerate()
        .map(|(i, rdn)| {
            split_unescaped(rdn, b'+')
                .into_iter()
                .map(|ava| {
                    let Some((name, value)) = ava.split_once('=') else {
                        return Err(format!(
                            "not a distinguished name: component {} ({}) has no `=`",
                            i + 1,
                            describe(&Value::String(rdn.trim().to_owned()))
                        ));
                    };
                    let value = unescape(trim_unescaped(value))
                        .map_err(|why| format!("component {}: {why}", i + 1))?;
                    Ok((name.trim().to_owned(), value))
                })
                .collect()
        })
        .collect()
}

/// `s` cut at every `sep` that is not escaped with a backslash.
fn split_unescaped(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == sep => {
                parts.push(&s[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(&s[start.min(s.len())..]);
    parts
}

/// `value` without leading blanks and without trailing blanks that are not
/// escaped (`a\ ` keeps its space).
fn trim_unescaped(value: &str) -> &str {
    let mut v = value.trim_start_matches(' ');
    while let Some(rest) = v.strip_suffix(' ') {
        let backslashes = rest.bytes().rev().take_while(|b| *b == b'\\').count();
        if backslashes % 2 == 1 {
            break;
        }
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn escaping_follows_rfc_4514() {
        assert_eq!(escape("Smith, John"), r"Smith\, John");
        assert_eq!(escape("#1 "), r"\#1\ ");
        assert_eq!(escape(" a#b "), r"\ a#b\ ");
        assert_eq!(escape("a=b+c<d>e;f\"g\\h"), r#"a\=b\+c\<d\>e\;f\"g\\h"#);
        assert_eq!(escape("nul\0cr\r"), r"nul\00cr\0D");
        assert_eq!(escape("José"), "José");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn unescaping_reads_backslash_pairs_and_hex_bytes() {
        assert_eq!(unescape(r"Smith\, John").unwrap(), "Smith, John");
        assert_eq!(unescape(r"Jos\C3\A9").unwrap(), "José");
        assert_eq!(unescape(r"\00").unwrap(), "\0");
        assert!(unescape(r"a\").is_err());
        assert!(unescape(r"\FF").is_err());
    }

    #[test]
    fn a_dn_splits_at_unescaped_commas_and_pluses() {
        let rdns = parse(r"CN=Smith\, John+UID=js , OU=People,DC=x").unwrap();
        assert_eq!(rdns.len(), 3);
        assert_eq!(
            rdns[0],
            vec![
                ("CN".to_owned(), "Smith, John".to_owned()),
                ("UID".to_owned(), "js".to_owned())
            ]
        );
        assert_eq!(rdns[1], vec![("OU".to_owned(), "People".to_owned())]);
        assert_eq!(parse(r"CN=a\ ,DC=x").unwrap()[0][0].1, "a ");
        assert_eq!(parse(r"CN=a\\ ,DC=x").unwrap()[0][0].1, "a\\");
        assert!(parse("CN=a,People").is_err());
    }
}
