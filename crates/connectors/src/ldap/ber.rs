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
    /// The values of attribute `name` (ignoring case and `;binary`; a
    /// description with another option, `title;lang-fr`, is not `title`).
    pub fn values(&self, name: &str) -> Option<&Vec<Vec<u8>>> {
        self.attrs
            .iter()
            .find(|(a, _)| match (attribute_of(a), attribute_of(name)) {
                (Some(a), Some(name)) => a.eq_ignore_ascii_case(name),
                (None, None) => a.eq_ignore_ascii_case(name),
                _ => false,
            })
            .map(|(_, v)| v)
    }
}

/// An attribute description without its options (`userCertificate;binary`
/// is `userCertificate`).
pub fn base_name(description: &str) -> &str {
    description.split(';').next().unwrap_or(description)
}

/// The attribute whose values an attribute description holds: its name
/// when it has no option or only `binary` (`userCertificate;binary` is
/// `userCertificate`, which travels so); `None` with any other option: a
/// language tag (`title;lang-fr`) or a range is a subtype, other values
/// than the attribute's own, read only where `attributes` names it.
pub fn attribute_of(description: &str) -> Option<&str> {
    let mut parts = description.split(';');
    let name = parts.next().unwrap_or(description);
    parts
        .all(|o| o.eq_ignore_ascii_case("binary"))
        .then_some(name)
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
