//! What a delta import starts from, and how the connector tells changes.
//!
//! * **Content synchronisation** (RFC 4533, [`Mode::ContentSync`]): when
//!   the server offers it (OpenLDAP's syncprov) and the anchor is
//!   `entryUUID` (the UUID the protocol names entries by, deletes
//!   included). The watermark holds the server's cookie of each base DN.
//! * **Change stamps** ([`Mode::Stamp`]): otherwise, the entries whose
//!   `entryCSN` (or `modifyTimestamp`) is at or after a time, see
//!   [`super::stamps`]. Deletes are seen by full imports only.
//!
//! The watermark is JSON and names the search it was made for (base DNs,
//! scope, filter, anchor, attributes: [`fingerprint`]): one made for
//! another search (the settings changed) is not used, and the next delta
//! import reads everything.

use super::config::{Anchor, LdapSettings};
use super::controls::SYNC_REQUEST;
use super::session::Session;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// How a delta import reads the changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    ContentSync,
    /// By the change stamp in this attribute.
    Stamp(String),
}

impl Mode {
    /// The mode for `s` on this server.
    pub fn of(session: &Session, s: &LdapSettings) -> Mode {
        let uuid = matches!(&s.anchor, Anchor::Assigned(a) if a.eq_ignore_ascii_case("entryUUID"));
        if uuid && session.supports(SYNC_REQUEST) {
            Mode::ContentSync
        } else if session.schema.has("entryCSN") {
            Mode::Stamp("entryCSN".into())
        } else {
            Mode::Stamp("modifyTimestamp".into())
        }
    }
}

/// A saved watermark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Watermark {
    /// The cookie of each base DN, in order, as base64 (`None`: the server
    /// gave none).
    ContentSync {
        search: String,
        cookies: Vec<Option<String>>,
    },
    Stamp {
        search: String,
        /// The stamp attribute.
        attribute: String,
        /// The latest stamp read.
        max: String,
        /// The next read asks for stamps at or after this.
        from: String,
        /// Entries read with a stamp at or after `from` (anchor, stamp):
        /// not read again unless their stamp moved. Only for stamps
        /// unique to a change (`entryCSN`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        seen: Vec<(String, String)>,
    },
}

impl Watermark {
    /// The watermark as the engine stores it.
    pub fn text(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }

    /// A stored watermark, if it was made for this search in this mode.
    pub fn read(text: Option<&str>, s: &LdapSettings, mode: &Mode) -> Option<Watermark> {
        let w: Watermark = serde_json::from_str(text?).ok()?;
        let search = fingerprint(s);
        let usable = match (&w, mode) {
            (Watermark::ContentSync { search: f, cookies }, Mode::ContentSync) => {
                *f == search && cookies.len() == s.base_dns.len()
            }
            (
                Watermark::Stamp {
                    search: f,
                    attribute,
                    ..
                },
                Mode::Stamp(a),
            ) => *f == search && attribute == a,
            _ => false,
        };
        if !usable {
            tracing::info!(ma = %s.ma, "the saved watermark was made for other settings: the delta import reads everything");
        }
        usable.then_some(w)
    }

    /// Content-sync cookies, decoded; `None` unless every base has one.
    pub fn cookies(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            Watermark::ContentSync { cookies, .. } => cookies
                .iter()
                .map(|c| c.as_deref().and_then(|c| STANDARD.decode(c).ok()))
                .collect(),
            Watermark::Stamp { .. } => None,
        }
    }
}

/// A content-sync watermark of `cookies` (one per base DN).
pub fn of_cookies(s: &LdapSettings, cookies: &[Option<Vec<u8>>]) -> Watermark {
    Watermark::ContentSync {
        search: fingerprint(s),
        cookies: cookies
            .iter()
            .map(|c| c.as_ref().map(|c| STANDARD.encode(c)))
            .collect(),
    }
}

/// What names the search a watermark was made for.
pub fn fingerprint(s: &LdapSettings) -> String {
    let mut text = String::new();
    for b in &s.base_dns {
        text.push_str(&b.to_lowercase());
        text.push('\n');
    }
    text.push_str(&format!(
        "{:?}\n{}\n{}\n{:?}\n",
        s.scope,
        s.search_filter(),
        s.anchor.name(),
        s.attributes
    ));
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}
