//! The entries' hashes a listener with attributes starts from: a paged
//! search (RFC 2696) of each base with the listener's filter, scope and
//! attributes, read while its content-sync search, started from a cookie
//! taken before, already runs. The search pages as a full import does, so
//! an account that may page past the server's size limit reads a
//! directory larger than it (an unpaged refresh would stop at it).
//!
//! Each entry is keyed by its `entryUUID`, in the form a Sync State
//! control's syncUUID is told ([`controls::uuid_text`]), and hashed on
//! the attributes the content-sync search sends (`entryUUID` left out
//! unless those include it). The messages that came meanwhile are read
//! between pages: an entry one named keeps the message's hashes (the
//! message is as new as the page or newer; a later change comes with a
//! message of its own), and its change is told naming no attribute. An
//! entry without an `entryUUID` is not kept: its first change names none.
//!
//! [`controls::uuid_text`]: super::controls::uuid_text

use super::super::ber;
use super::super::import::{next_page, page_control, requested, scope};
use super::super::session::{describe, server_trouble};
use super::{Known, Listener, hashes};
use autosync_connector::{ConnectorError, ConnectorErrorKind};
use tokio::sync::mpsc::error::TryRecvError;

/// The attribute that keys an entry as a syncUUID does.
const UUID: &str = "entryUUID";

impl Listener {
    /// Read base `i` page by page into `known`, and the messages that came
    /// meanwhile. A search that fails is the listener's error.
    pub(super) fn read_snapshot(&mut self, i: usize) -> Result<(), ConnectorError> {
        let base = self.s.base_dns[i].clone();
        let mut attrs = requested(&self.s);
        // Sent by the content-sync search too: hashed as it is there.
        let sent = attrs
            .iter()
            .any(|a| a.eq_ignore_ascii_case(UUID) || a == "+");
        if !sent {
            attrs.push(UUID.to_owned());
        }
        let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
        let filter = self.s.search_filter();
        let mut cookie = Vec::new();
        loop {
            let control = page_control(&self.s, std::mem::take(&mut cookie));
            let (entries, result) = self
                .session
                .search(&base, scope(self.s.scope), &filter, &attrs, vec![control])
                .map_err(|e| {
                    self.session
                        .broken(&self.s, &format!("read the entries of `{base}`"), &e)
                })?;
            if result.rc != 0 {
                return Err(self.refused(&base, &result));
            }
            cookie = next_page(&result).map_err(|e| self.sent(e))?;
            // First what came while the page was read: those entries keep
            // the message's hashes.
            self.drain()?;
            for e in entries {
                let mut raw = ber::entry(e.0).map_err(|e| self.sent(e))?;
                let Some(uuid) = raw
                    .values(UUID)
                    .and_then(|vs| vs.first())
                    .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
                else {
                    continue;
                };
                let named = self.named.as_ref().is_some_and(|n| n.contains(&uuid));
                if named {
                    continue;
                }
                if !sent {
                    raw.attrs
                        .retain(|(d, _)| !ber::base_name(d).eq_ignore_ascii_case(UUID));
                }
                let (attrs, _) = hashes(&raw);
                self.known.insert(uuid, Known { dn: raw.dn, attrs });
            }
            if cookie.is_empty() {
                return Ok(());
            }
        }
    }

    /// Handle the messages already received, without waiting.
    fn drain(&mut self) -> Result<(), ConnectorError> {
        loop {
            match self.rx.try_recv() {
                Ok(raw) => self.handle(raw)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    return Err(self.fail(ConnectorErrorKind::Connectivity, "the searches ended"));
                }
            }
        }
    }

    /// The error of a snapshot search the server did not complete.
    fn refused(&self, base: &str, result: &ldap3::LdapResult) -> ConnectorError {
        let (kind, hint) = match result.rc {
            3 | 4 | 11 => (
                ConnectorErrorKind::Other,
                ": ignore_attributes reads every entry page by page, as a full import does: let this account page past the limit (OpenLDAP: limits ... size.prtotal=unlimited)",
            ),
            32 => (ConnectorErrorKind::Configuration, ""),
            rc if server_trouble(rc) => (ConnectorErrorKind::ServerDown, ""),
            _ => (ConnectorErrorKind::Other, ""),
        };
        self.fail(
            kind,
            format!(
                "reading the entries of `{base}` (to tell which attributes a change touched): {}{hint}",
                describe(result)
            ),
        )
    }
}
