//! The controls and messages of change tracking, encoded and read here
//! (ldap3's own parsers panic on a malformed value; these return an
//! error, so a server that sends nonsense fails the step or the trigger,
//! never the process):
//!
//! * content synchronisation (RFC 4533): the Sync Request control, the
//!   Sync State and Sync Done controls and the Sync Info message;
//! * persistent search (draft-ietf-ldapext-psearch-03): the request
//!   control and the Entry Change Notification control, for servers
//!   without content synchronisation (389-ds);
//! * Active Directory's change notification (1.2.840.113556.1.4.528,
//!   used by the listener on a server that offers only it) and DirSync
//!   (1.2.840.113556.1.4.841, encoded for a later AD delta import; used by
//!   nothing yet) request controls, by OID. No Active Directory runs here:
//!   both are tested for their encoding only.
//!
//! Public so that tools (and later connectors) can encode the same
//! controls.

use ldap3::asn1::{PL, StructureTag, TagClass, parse_tag};
use ldap3::controls::RawControl;

pub const SYNC_REQUEST: &str = "1.3.6.1.4.1.4203.1.9.1.1";
pub const SYNC_STATE: &str = "1.3.6.1.4.1.4203.1.9.1.2";
pub const SYNC_DONE: &str = "1.3.6.1.4.1.4203.1.9.1.3";
pub const SYNC_INFO: &str = "1.3.6.1.4.1.4203.1.9.1.4";
pub const PERSISTENT_SEARCH: &str = "2.16.840.1.113730.3.4.3";
pub const ENTRY_CHANGE: &str = "2.16.840.1.113730.3.4.7";
pub const AD_NOTIFICATION: &str = "1.2.840.113556.1.4.528";
pub const AD_DIRSYNC: &str = "1.2.840.113556.1.4.841";

/// e-syncRefreshRequired: the cookie is too old, read everything.
pub const REFRESH_REQUIRED: u32 = 4096;

// ---------------------------------------------------------------------------
// Encoding (DER: definite lengths, what every server reads).

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn integer(tag: u8, v: i64) -> Vec<u8> {
    // Two's complement, shortest form.
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(tag, &bytes[start..])
}

fn boolean(v: bool) -> Vec<u8> {
    tlv(0x01, &[if v { 0xff } else { 0x00 }])
}

fn octets(v: &[u8]) -> Vec<u8> {
    tlv(0x04, v)
}

fn control(oid: &str, crit: bool, val: Option<Vec<u8>>) -> RawControl {
    RawControl {
        ctype: oid.to_owned(),
        crit,
        val,
    }
}

/// A content-synchronisation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Send what changed since the cookie, then end.
    RefreshOnly,
    /// The same, then keep the search open and send each change.
    RefreshAndPersist,
}

/// The Sync Request control (critical: a server that cannot honour it
/// must refuse the search rather than answer a plain one).
pub fn sync_request(mode: SyncMode, cookie: Option<&[u8]>) -> RawControl {
    let mut parts = vec![integer(
        0x0a,
        match mode {
            SyncMode::RefreshOnly => 1,
            SyncMode::RefreshAndPersist => 3,
        },
    )];
    if let Some(c) = cookie {
        parts.push(octets(c));
    }
    control(SYNC_REQUEST, true, Some(sequence(&parts)))
}

/// The persistent-search control: every change type, changes only, with
/// Entry Change Notification controls.
pub fn persistent_search() -> RawControl {
    let value = sequence(&[integer(0x02, 1 | 2 | 4 | 8), boolean(true), boolean(true)]);
    control(PERSISTENT_SEARCH, true, Some(value))
}

/// Active Directory's change-notification control (no value).
pub fn ad_notification() -> RawControl {
    control(AD_NOTIFICATION, true, None)
}

/// Active Directory's DirSync control: `flags` (e.g. 0x80000000,
/// incremental values), at most `max_bytes` per answer, from `cookie`
/// (empty: from the beginning).
pub fn ad_dirsync(flags: u32, max_bytes: u32, cookie: &[u8]) -> RawControl {
    let value = sequence(&[
        // The flags are a 32-bit word sent as a signed INTEGER.
        integer(0x02, i64::from(flags as i32)),
        integer(0x02, i64::from(max_bytes)),
        octets(cookie),
    ]);
    control(AD_DIRSYNC, true, Some(value))
}

// ---------------------------------------------------------------------------
// Reading.

fn tag(bytes: &[u8], what: &str) -> Result<StructureTag, String> {
    match parse_tag(bytes) {
        Ok(([], t)) => Ok(t),
        _ => Err(format!("a malformed {what}")),
    }
}

fn parts(t: StructureTag, what: &str) -> Result<Vec<StructureTag>, String> {
    match t.payload {
        PL::C(p) => Ok(p),
        PL::P(_) => Err(format!("a malformed {what}")),
    }
}

fn bytes(t: &StructureTag, what: &str) -> Result<Vec<u8>, String> {
    match &t.payload {
        PL::P(b) => Ok(b.clone()),
        PL::C(_) => Err(format!("a malformed {what}")),
    }
}

fn universal(t: &StructureTag, id: u64) -> bool {
    t.class == TagClass::Universal && t.id == id
}

fn uint(t: &StructureTag, what: &str) -> Result<u64, String> {
    let b = bytes(t, what)?;
    if b.is_empty() || b.len() > 8 {
        return Err(format!("a malformed {what}"));
    }
    Ok(b.iter().fold(0, |n, x| (n << 8) | u64::from(*x)))
}

fn bool_of(t: &StructureTag, what: &str) -> Result<bool, String> {
    match bytes(t, what)?.as_slice() {
        [b] => Ok(*b != 0),
        _ => Err(format!("a malformed {what}")),
    }
}

/// A syncUUID as the entryUUID attribute writes it.
pub fn uuid_text(b: &[u8]) -> Result<String, String> {
    if b.len() != 16 {
        return Err(format!("a syncUUID of {} bytes, not 16", b.len()));
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// The state a Sync State control gives an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    Present,
    Add,
    Modify,
    Delete,
}

/// A Sync State control: the entry's state, its UUID (as text) and maybe
/// a cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncState {
    pub state: EntryState,
    pub uuid: String,
    pub cookie: Option<Vec<u8>>,
}

pub fn sync_state(value: &[u8]) -> Result<SyncState, String> {
    let what = "Sync State control";
    let p = parts(tag(value, what)?, what)?;
    let (Some(s), Some(u)) = (p.first(), p.get(1)) else {
        return Err(format!("a malformed {what}"));
    };
    let state = match uint(s, what)? {
        0 => EntryState::Present,
        1 => EntryState::Add,
        2 => EntryState::Modify,
        3 => EntryState::Delete,
        n => return Err(format!("a {what} with an unknown state {n}")),
    };
    let uuid = uuid_text(&bytes(u, what)?)?;
    let cookie = p.get(2).map(|c| bytes(c, what)).transpose()?;
    Ok(SyncState {
        state,
        uuid,
        cookie,
    })
}

/// A Sync Done control: the new cookie and whether the refresh sent the
/// deletes (`false`: the present phase, every entry not named is gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDone {
    pub cookie: Option<Vec<u8>>,
    pub refresh_deletes: bool,
}

pub fn sync_done(value: &[u8]) -> Result<SyncDone, String> {
    let what = "Sync Done control";
    let mut done = SyncDone {
        cookie: None,
        refresh_deletes: false,
    };
    for p in parts(tag(value, what)?, what)? {
        if universal(&p, 4) {
            done.cookie = Some(bytes(&p, what)?);
        } else if universal(&p, 1) {
            done.refresh_deletes = bool_of(&p, what)?;
        } else {
            return Err(format!("a malformed {what}"));
        }
    }
    Ok(done)
}

/// A Sync Info message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncInfo {
    NewCookie(Vec<u8>),
    /// The end of a refresh phase (refreshDelete or refreshPresent).
    RefreshDone {
        present: bool,
        cookie: Option<Vec<u8>>,
        done: bool,
    },
    /// UUIDs that are gone (`deletes`) or present.
    IdSet {
        cookie: Option<Vec<u8>>,
        deletes: bool,
        uuids: Vec<String>,
    },
}

/// The Sync Info message of an intermediate response
/// (`[APPLICATION 25] { [0] responseName, [1] responseValue }`); `None`
/// for another intermediate response.
pub fn sync_info(intermediate: StructureTag) -> Result<Option<SyncInfo>, String> {
    let what = "intermediate response";
    let mut name = None;
    let mut value = None;
    for p in parts(intermediate, what)? {
        match (p.class, p.id) {
            (TagClass::Context, 0) => name = Some(bytes(&p, what)?),
            (TagClass::Context, 1) => value = Some(bytes(&p, what)?),
            _ => return Err(format!("a malformed {what}")),
        }
    }
    if name.as_deref() != Some(SYNC_INFO.as_bytes()) {
        return Ok(None);
    }
    let Some(value) = value else {
        return Err("a Sync Info message without a value".into());
    };
    let what = "Sync Info message";
    let t = tag(&value, what)?;
    if t.class != TagClass::Context {
        return Err(format!("a malformed {what}"));
    }
    let info = match t.id {
        0 => SyncInfo::NewCookie(bytes(&t, what)?),
        1 | 2 => {
            let present = t.id == 2;
            let (mut cookie, mut done) = (None, true);
            for p in parts(t, what)? {
                if universal(&p, 4) {
                    cookie = Some(bytes(&p, what)?);
                } else if universal(&p, 1) {
                    done = bool_of(&p, what)?;
                } else {
                    return Err(format!("a malformed {what}"));
                }
            }
            SyncInfo::RefreshDone {
                present,
                cookie,
                done,
            }
        }
        3 => {
            let (mut cookie, mut deletes, mut uuids) = (None, false, Vec::new());
            for p in parts(t, what)? {
                if universal(&p, 4) {
                    cookie = Some(bytes(&p, what)?);
                } else if universal(&p, 1) {
                    deletes = bool_of(&p, what)?;
                } else if universal(&p, 17) {
                    for u in parts(p, what)? {
                        uuids.push(uuid_text(&bytes(&u, what)?)?);
                    }
                } else {
                    return Err(format!("a malformed {what}"));
                }
            }
            SyncInfo::IdSet {
                cookie,
                deletes,
                uuids,
            }
        }
        n => return Err(format!("a {what} of unknown kind {n}")),
    };
    Ok(Some(info))
}

/// What an Entry Change Notification control says (persistent search).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryChange {
    /// 1 add, 2 delete, 4 modify, 8 rename.
    pub change_type: u64,
    pub previous_dn: Option<String>,
}

pub fn entry_change(value: &[u8]) -> Result<EntryChange, String> {
    let what = "Entry Change Notification control";
    let p = parts(tag(value, what)?, what)?;
    let Some(t) = p.first() else {
        return Err(format!("a malformed {what}"));
    };
    let change_type = uint(t, what)?;
    if !matches!(change_type, 1 | 2 | 4 | 8) {
        return Err(format!(
            "a {what} with an unknown change type {change_type}"
        ));
    }
    let previous_dn = p
        .iter()
        .skip(1)
        .find(|t| universal(t, 4))
        .map(|t| {
            bytes(t, what).and_then(|b| {
                String::from_utf8(b).map_err(|_| format!("a {what} whose DN is not UTF-8"))
            })
        })
        .transpose()?;
    Ok(EntryChange {
        change_type,
        previous_dn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_controls_should_encode_as_the_rfcs_say() {
        let c = sync_request(SyncMode::RefreshOnly, None);
        assert_eq!(c.ctype, SYNC_REQUEST);
        assert!(c.crit);
        assert_eq!(c.val.unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x01]);
        let c = sync_request(SyncMode::RefreshAndPersist, Some(b"ck"));
        assert_eq!(
            c.val.unwrap(),
            [0x30, 0x07, 0x0a, 0x01, 0x03, 0x04, 0x02, b'c', b'k']
        );
        let c = persistent_search();
        assert_eq!(
            (c.ctype.as_str(), c.val.unwrap()),
            (
                PERSISTENT_SEARCH,
                vec![
                    0x30, 0x09, 0x02, 0x01, 0x0f, 0x01, 0x01, 0xff, 0x01, 0x01, 0xff
                ]
            )
        );
        let c = ad_notification();
        assert_eq!(
            (c.ctype.as_str(), c.crit, c.val),
            (AD_NOTIFICATION, true, None)
        );
        let c = ad_dirsync(0x8000_0000, 1_048_576, b"");
        assert_eq!(c.ctype, AD_DIRSYNC);
        assert_eq!(
            c.val.unwrap(),
            [
                0x30, 0x0d, 0x02, 0x04, 0x80, 0x00, 0x00, 0x00, 0x02, 0x03, 0x10, 0x00, 0x00, 0x04,
                0x00
            ]
        );
        // Long lengths use the long form.
        let big = sync_request(SyncMode::RefreshOnly, Some(&[7; 300]));
        assert_eq!(&big.val.unwrap()[..6], [0x30, 0x82, 0x01, 0x33, 0x0a, 0x01]);
        assert_eq!(integer(0x02, 128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(0x02, -1), [0x02, 0x01, 0xff]);
    }

    const UUID: [u8; 16] = [
        0x8f, 0xaa, 0xd7, 0xa2, 0x85, 0x25, 0x10, 0x41, 0x95, 0x83, 0xb7, 0x3a, 0xb5, 0xf2, 0xff,
        0x6f,
    ];

    #[test]
    fn sync_controls_as_slapd_sends_them_should_read() {
        // Captured from slapd 2.5 (ldapsearch -E sync=ro).
        let state = [
            0x30, 0x15, 0x0a, 0x01, 0x01, 0x04, 0x10, 0x8f, 0xaa, 0xd7, 0xa2, 0x85, 0x25, 0x10,
            0x41, 0x95, 0x83, 0xb7, 0x3a, 0xb5, 0xf2, 0xff, 0x6f,
        ];
        let s = sync_state(&state).unwrap();
        assert_eq!(s.state, EntryState::Add);
        assert_eq!(s.uuid, "8faad7a2-8525-1041-9583-b73ab5f2ff6f");
        assert_eq!(s.cookie, None);
        let done = [0x30, 0x08, 0x04, 0x03, b'r', b'i', b'd', 0x01, 0x01, 0xff];
        assert_eq!(
            sync_done(&done).unwrap(),
            SyncDone {
                cookie: Some(b"rid".to_vec()),
                refresh_deletes: true
            }
        );
        assert_eq!(
            sync_done(&[0x30, 0x00]).unwrap(),
            SyncDone {
                cookie: None,
                refresh_deletes: false
            }
        );
    }

    fn intermediate(value: &[u8]) -> StructureTag {
        let mut oid = vec![0x80, SYNC_INFO.len() as u8];
        oid.extend(SYNC_INFO.as_bytes());
        let body = [oid, tlv(0x81, value)].concat();
        tag(&tlv(0x79, &body), "test").unwrap()
    }

    #[test]
    fn sync_info_messages_should_read() {
        let set = [
            &[0xa3, 0x17, 0x01, 0x01, 0xff, 0x31, 0x12, 0x04, 0x10][..],
            &UUID[..],
        ]
        .concat();
        assert_eq!(
            sync_info(intermediate(&set)).unwrap(),
            Some(SyncInfo::IdSet {
                cookie: None,
                deletes: true,
                uuids: vec!["8faad7a2-8525-1041-9583-b73ab5f2ff6f".into()]
            })
        );
        assert_eq!(
            sync_info(intermediate(&[0x80, 0x02, b'c', b'k'])).unwrap(),
            Some(SyncInfo::NewCookie(b"ck".to_vec()))
        );
        assert_eq!(
            sync_info(intermediate(&[0xa2, 0x03, 0x01, 0x01, 0x00])).unwrap(),
            Some(SyncInfo::RefreshDone {
                present: true,
                cookie: None,
                done: false
            })
        );
        // Another intermediate response is none of this.
        let other = tag(&tlv(0x79, &[0x80, 0x03, b'1', b'.', b'2']), "t").unwrap();
        assert_eq!(sync_info(other).unwrap(), None);
    }

    #[test]
    fn malformed_values_should_be_errors_not_panics() {
        let bad: &[&[u8]] = &[
            &[],
            &[0x30],
            &[0x30, 0x05, 0x0a],
            &[0x30, 0x03, 0x0a, 0x01, 0x09],
            &[0x04, 0x00],
            &[0xff; 9],
            &[0x30, 0x02, 0x02, 0x00],
            &[0x30, 0x03, 0x01, 0x02, 0x00],
        ];
        for b in bad {
            assert!(sync_state(b).is_err(), "{b:?}");
            assert!(entry_change(b).is_err(), "{b:?}");
            let _ = sync_done(b);
            let _ = sync_info(intermediate(b));
        }
        // A UUID of one byte.
        assert!(sync_state(&[0x30, 0x06, 0x0a, 0x01, 0x01, 0x04, 0x01, 0x00]).is_err());
        assert!(sync_done(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(sync_info(intermediate(&[0xa7, 0x00])).is_err());
        assert!(sync_info(intermediate(&[0xa3, 0x04, 0x31, 0x02, 0x04, 0x00])).is_err());
        let no_value = tag(
            &tlv(
                0x79,
                &[[0x80, 24].as_slice(), SYNC_INFO.as_bytes()].concat(),
            ),
            "t",
        )
        .unwrap();
        assert!(sync_info(no_value).is_err());
    }

    #[test]
    fn entry_change_notifications_should_read() {
        assert_eq!(
            entry_change(&[0x30, 0x03, 0x0a, 0x01, 0x04]).unwrap(),
            EntryChange {
                change_type: 4,
                previous_dn: None
            }
        );
        let renamed = [
            0x30, 0x09, 0x0a, 0x01, 0x08, 0x04, 0x04, b'c', b'n', b'=', b'a',
        ];
        assert_eq!(
            entry_change(&renamed).unwrap().previous_dn.as_deref(),
            Some("cn=a")
        );
    }
}
