//! Values between the model and the directory: an attribute's values
//! typed by its [`Kind`] on import (one value a scalar, several a list),
//! rendered to bytes on export; anchors as text and back into a filter.

use super::config::Anchor;
use super::schema::Kind;
use crate::change::Failure;
use autosync_model::Value;

/// The model value of an attribute's values (`None`: no value).
pub fn to_value(kind: Kind, values: &[Vec<u8>]) -> Option<Value> {
    let mut out: Vec<Value> = values.iter().map(|v| one(kind, v)).collect();
    match out.len() {
        0 => None,
        1 => out.pop(),
        _ => Some(Value::Multi(out)),
    }
}

fn one(kind: Kind, bytes: &[u8]) -> Value {
    let text = || std::str::from_utf8(bytes).ok();
    match kind {
        Kind::Binary | Kind::BinaryTransfer => Value::Binary(bytes.to_vec()),
        Kind::Integer => match text().and_then(|t| t.parse::<i64>().ok()) {
            Some(i) => Value::Integer(i),
            None => text_or_binary(bytes),
        },
        Kind::Boolean => match text() {
            Some("TRUE") => Value::Boolean(true),
            Some("FALSE") => Value::Boolean(false),
            _ => text_or_binary(bytes),
        },
        Kind::Text => text_or_binary(bytes),
    }
}

fn text_or_binary(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(t) => Value::String(t.to_owned()),
        Err(_) => Value::Binary(bytes.to_vec()),
    }
}

/// The values to write for `value` (empty values are no values).
pub fn to_ldap(name: &str, kind: Kind, value: &Value) -> Result<Vec<Vec<u8>>, Failure> {
    let mut out = Vec::new();
    let mut push = |v: &Value| -> Result<(), Failure> {
        if v.is_empty() {
            return Ok(());
        }
        out.push(match v {
            Value::String(s) if name.eq_ignore_ascii_case("unicodePwd") => unicode_pwd(s),
            // Binary data and its base64 text are one value (the engine
            // compares them so): a binary attribute gets the bytes, never
            // the characters of their base64 (a photo from a CSV column).
            Value::String(s) if matches!(kind, Kind::Binary | Kind::BinaryTransfer) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|e| {
                        (
                            "value-not-representable",
                            format!(
                                "`{name}` is binary: a text value must be the base64 of its bytes ({e})"
                            ),
                        )
                    })?
            }
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(i) => i.to_string().into_bytes(),
            Value::Boolean(b) => match (kind, b) {
                (Kind::Boolean, true) => b"TRUE".to_vec(),
                (Kind::Boolean, false) => b"FALSE".to_vec(),
                (_, b) => b.to_string().into_bytes(),
            },
            Value::Binary(b) if kind == Kind::Text && std::str::from_utf8(b).is_ok() => {
                // It would read back as text, not as these bytes.
                return Err((
                    "value-not-representable",
                    format!(
                        "`{name}`: binary data that is also text reads back as text; list `{name}` in binary_attributes"
                    ),
                ));
            }
            Value::Binary(b) => b.clone(),
            Value::Reference(_) | Value::Multi(_) => {
                return Err((
                    "value-not-representable",
                    format!(
                        "`{name}`: a directory value cannot be a list or an unresolved reference"
                    ),
                ));
            }
        });
        Ok(())
    };
    match value {
        Value::Multi(vs) => {
            for v in vs {
                push(v)?;
            }
        }
        v => push(v)?,
    }
    Ok(out)
}

/// Active Directory's `unicodePwd`: the password in double quotes,
/// UTF-16LE, sent as bytes (a replace, which is how an administrator sets
/// one; AD accepts it only over an encrypted connection).
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// The attribute description to write `name` under: with `;binary` when
/// its syntax travels so.
pub fn description(name: &str, kind: Kind) -> String {
    if kind == Kind::BinaryTransfer && !name.contains(';') {
        format!("{name};binary")
    } else {
        name.to_owned()
    }
}

/// An anchor value as the engine keeps it: objectGUID as a GUID string,
/// another binary value as lowercase hex, text as it is.
pub fn anchor_text(anchor: &Anchor, kind: Kind, bytes: &[u8]) -> String {
    if anchor.is_guid() && bytes.len() == 16 {
        return guid_text(bytes);
    }
    match (kind, std::str::from_utf8(bytes)) {
        (Kind::Text | Kind::Integer | Kind::Boolean, Ok(t)) => t.to_owned(),
        _ => hex(bytes),
    }
}

/// The filter that finds the entry whose anchor is `text`, its value
/// escaped (data never becomes filter syntax).
pub fn anchor_filter(anchor: &Anchor, kind: Kind, text: &str) -> Result<String, Failure> {
    let bytes = if anchor.is_guid() {
        Some(guid_bytes(text).ok_or_else(|| {
            (
                "invalid-anchor",
                format!("`{text}` is not a GUID (objectGUID anchors are)"),
            )
        })?)
    } else if matches!(kind, Kind::Binary | Kind::BinaryTransfer) {
        Some(unhex(text).ok_or_else(|| {
            (
                "invalid-anchor",
                format!("`{text}` is not hexadecimal (binary anchors are)"),
            )
        })?)
    } else {
        None
    };
    let value = match bytes {
        Some(b) => b.iter().map(|x| format!("\\{x:02x}")).collect(),
        None => ldap3::ldap_escape(text).into_owned(),
    };
    Ok(format!("({}={value})", anchor.name()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// AD's text form of a GUID: the first three fields little-endian.
fn guid_text(b: &[u8]) -> String {
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut out = String::with_capacity(36);
    for (n, i) in order.iter().enumerate() {
        if matches!(n, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{:02x}", b.get(*i).copied().unwrap_or(0)));
    }
    out
}

fn guid_bytes(text: &str) -> Option<Vec<u8>> {
    let plain: String = text
        .trim_matches(['{', '}'])
        .chars()
        .filter(|c| *c != '-')
        .collect();
    let b = unhex(&plain).filter(|b| b.len() == 16)?;
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    Some(order.iter().map(|i| b[*i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_should_be_the_quoted_password_in_utf16le() {
        // "Aé1" → "\"Aé1\"": each UTF-16 unit low byte first.
        assert_eq!(
            unicode_pwd("Aé1"),
            vec![0x22, 0, 0x41, 0, 0xE9, 0, 0x31, 0, 0x22, 0]
        );
        // Outside the BMP: a surrogate pair, each unit little-endian.
        assert_eq!(
            unicode_pwd("😀"),
            vec![0x22, 0, 0x3D, 0xD8, 0x00, 0xDE, 0x22, 0]
        );
        // Written so whatever the attribute's kind (AD's is binary), as a
        // string value given to the connector.
        for kind in [Kind::Text, Kind::Binary] {
            assert_eq!(
                to_ldap("unicodePwd", kind, &Value::from("x")).unwrap(),
                vec![vec![0x22, 0, 0x78, 0, 0x22, 0]]
            );
        }
        assert_eq!(
            to_ldap("userPassword", Kind::Text, &Value::from("x")).unwrap(),
            vec![b"x".to_vec()]
        );
    }

    #[test]
    fn guids_should_read_as_ad_writes_them_and_back() {
        let bytes: Vec<u8> = (0u8..16).collect();
        let guid = Anchor::Assigned("objectGUID".into());
        let text = anchor_text(&guid, Kind::Text, &bytes);
        assert_eq!(text, "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(guid_bytes(&text), Some(bytes.clone()));
        assert_eq!(
            guid_bytes(&format!("{{{}}}", text.to_uppercase())),
            Some(bytes)
        );
        let f = anchor_filter(&guid, Kind::Text, &text).unwrap();
        assert!(f.starts_with("(objectGUID=\\00\\01\\02\\03\\04"), "{f}");
        assert!(anchor_filter(&guid, Kind::Text, "*)(uid=*").is_err());
    }

    #[test]
    fn filter_values_from_data_should_be_escaped() {
        let uid = Anchor::Written("uid".into());
        assert_eq!(
            anchor_filter(&uid, Kind::Text, "*)(uid=*").unwrap(),
            "(uid=\\2a\\29\\28uid=\\2a)"
        );
        let bin = Anchor::Written("x".into());
        assert_eq!(anchor_text(&bin, Kind::Binary, &[0, 255]), "00ff");
        assert_eq!(
            anchor_filter(&bin, Kind::Binary, "00ff").unwrap(),
            "(x=\\00\\ff)"
        );
    }

    #[test]
    fn values_should_be_typed_by_kind() {
        assert_eq!(
            to_value(Kind::Integer, &[b"-5".to_vec()]),
            Some(Value::Integer(-5))
        );
        assert_eq!(
            to_value(Kind::Boolean, &[b"TRUE".to_vec()]),
            Some(Value::Boolean(true))
        );
        assert_eq!(
            to_value(Kind::Text, &[b"a".to_vec(), vec![0xff]]),
            Some(Value::Multi(vec![
                Value::from("a"),
                Value::Binary(vec![0xff])
            ]))
        );
        assert_eq!(to_value(Kind::Text, &[]), None);
        assert_eq!(
            to_ldap("f", Kind::Boolean, &Value::Boolean(false)).unwrap(),
            vec![b"FALSE".to_vec()]
        );
        assert!(
            to_ldap(
                "m",
                Kind::Text,
                &Value::Multi(vec![Value::Multi(vec![Value::from("x")])])
            )
            .is_err()
        );
        assert_eq!(
            description("userCertificate", Kind::BinaryTransfer),
            "userCertificate;binary"
        );
    }
}
