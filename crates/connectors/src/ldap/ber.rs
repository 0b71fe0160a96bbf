//! Reading what the server sends, tolerantly: an entry, a post-read
//! control, a paged-results cookie. ldap3's own parsers panic on a
//! malformed message; these return an error instead, so a server that
//! sends nonsense fails the step, never the process.

use ldap3::asn1::{PL, StructureTag, parse_tag};

/// An entry as the server sent it: its DN and each attribute description
/// with its values, as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl RawEntry {
    /// The values of attribute `name` (ignoring case and options).
    pub fn values(&self, name: &str) -> Option<&Vec<Vec<u8>>> {
        self.attrs
            .iter()
            .find(|(a, _)| base_name(a).eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// An attribute description without its options (`userCertificate;binary`
/// is `userCertificate`).
pub fn base_name(description: &str) -> &str {
    description.split(';').next().unwrap_or(description)
}

fn primitive(t: Option<StructureTag>, what: &str) -> Result<Vec<u8>, String> {
    match t {
        Some(StructureTag {
            payload: PL::P(bytes),
            ..
        }) => Ok(bytes),
        _ => Err(format!("malformed {what}")),
    }
}

fn constructed(t: Option<StructureTag>, what: &str) -> Result<Vec<StructureTag>, String> {
    match t {
        Some(StructureTag {
            payload: PL::C(parts),
            ..
        }) => Ok(parts),
        _ => Err(format!("malformed {what}")),
    }
}

/// A SearchResultEntry (`[APPLICATION 4] SEQUENCE { objectName,
/// attributes }`).
pub fn entry(tag: StructureTag) -> Result<RawEntry, String> {
    let mut parts = constructed(Some(tag), "entry")?.into_iter();
    let dn = String::from_utf8(primitive(parts.next(), "entry DN")?)
        .map_err(|_| "an entry DN that is not UTF-8".to_owned())?;
    let mut attrs = Vec::new();
    for a in constructed(parts.next(), "attribute list")? {
        let mut pair = constructed(Some(a), "attribute")?.into_iter();
        let name = String::from_utf8(primitive(pair.next(), "attribute type")?)
            .map_err(|_| "an attribute type that is not UTF-8".to_owned())?;
        let values = constructed(pair.next(), "attribute values")?
            .into_iter()
            .map(|v| primitive(Some(v), "attribute value"))
            .collect::<Result<Vec<_>, _>>()?;
        attrs.push((name, values));
    }
    Ok(RawEntry { dn, attrs })
}

/// An entry encoded in a control's value (the post-read control).
pub fn entry_from_ber(bytes: &[u8]) -> Result<RawEntry, String> {
    let (_, tag) = parse_tag(bytes).map_err(|_| "a malformed entry in a control".to_owned())?;
    entry(tag)
}

/// The cookie of a paged-results response control (`SEQUENCE { size
/// INTEGER, cookie OCTET STRING }`); empty when the search is done.
pub fn paged_cookie(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (_, tag) = parse_tag(bytes).map_err(|_| "a malformed paged-results control".to_owned())?;
    let mut parts = constructed(Some(tag), "paged-results control")?.into_iter();
    parts.next();
    primitive(parts.next(), "paged-results cookie")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_messages_should_be_errors_not_panics() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x04, 0x00],
            &[0xff; 8],
        ] {
            assert!(paged_cookie(bad).is_err(), "{bad:?}");
            assert!(entry_from_ber(bad).is_err(), "{bad:?}");
        }
        // SEQUENCE { INTEGER 0, OCTET STRING "" }
        assert_eq!(
            paged_cookie(&[0x30, 0x05, 0x02, 0x01, 0x00, 0x04, 0x00]).unwrap(),
            Vec::<u8>::new()
        );
        // [APPLICATION 4] { "dc=x", { { "cn", { "a" } } } }
        let e = [
            0x64, 0x15, 0x04, 0x04, b'd', b'c', b'=', b'x', 0x30, 0x0d, 0x30, 0x0b, 0x04, 0x02,
            b'c', b'n', 0x31, 0x05, 0x04, 0x03, b'a', b'b', b'c',
        ];
        let entry = entry_from_ber(&e).unwrap();
        assert_eq!(entry.dn, "dc=x");
        assert_eq!(entry.values("CN"), Some(&vec![b"abc".to_vec()]));
    }
}
