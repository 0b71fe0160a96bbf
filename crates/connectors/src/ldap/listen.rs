//! Change notification: a persistent search per base DN on a connection
//! of its own, whose messages become [`ChangeEvent`]s (the listener the
//! `change-notification` trigger runs).
//!
//! * **Content synchronisation** (RFC 4533, refreshAndPersist) where the
//!   server offers it: the search starts from a cookie taken just before
//!   (so its refresh sends only what changed since, and nothing is lost
//!   between the two), then the server sends each change as it is made.
//! * **Persistent search** (draft-ietf-ldapext-psearch, 389-ds) where it
//!   does not: every change, with an Entry Change Notification control.
//! * **Active Directory's change notification** (1.2.840.113556.1.4.528)
//!   where the server offers neither: each changed entry is sent (AD
//!   takes it on a base or one-level search, or a subtree search of a
//!   naming context's root, filter `(objectClass=*)`; not tried against an
//!   AD here).
//!
//! Which attributes a change touched is not in either protocol. When the
//! trigger wants them (`ignore_attributes`), the listener keeps a hash of
//! each attribute's values per entry, and a change names the attributes
//! whose hash moved. The content-sync searches still start from a cookie
//! (a refresh without one is a single unpaged search, which a server's
//! size limit ends on a large directory); the hashes come from a paged
//! search of each base read meanwhile ([`snapshot`]), as a full import
//! reads. A change told before that read is complete names none (the
//! read may or may not hold it), and its message gives the entry's hashes.
//! Adds, deletes, renames, and every change of a persistent search, name
//! none (they always ask). A base the server gives no cookie for is read
//! by its refresh, as content.
//!
//! The searches are read by tasks on the session's runtime, which run
//! while [`ChangeListener::next_change`] waits. A message that cannot be
//! read, a search the server ends and a lost connection are errors: the
//! trigger opens another listener.

mod snapshot;

use super::ber;
use super::config::LdapSettings;
use super::content_sync::probe;
use super::controls::{self, EntryState, REFRESH_REQUIRED, SyncInfo, SyncMode};
use super::import::{requested, scope};
use super::session::{Session, describe};
use autosync_connector::{
    ChangeEvent, ChangeListener, ChangeSource, ConnectorError, ConnectorErrorKind,
};
use ldap3::result::LdapError;
use ldap3::{LdapResult, ResultEntry};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The LDAP connector's notification channel.
#[derive(Debug)]
pub struct LdapChanges {
    settings: LdapSettings,
}

impl LdapChanges {
    pub fn new(settings: LdapSettings) -> Self {
        LdapChanges { settings }
    }
}

impl ChangeSource for LdapChanges {
    fn listen(&self, attributes: bool) -> Result<Box<dyn ChangeListener>, ConnectorError> {
        let session = Session::open(&self.settings)?;
        Ok(Box::new(Listener::open(
            session,
            self.settings.clone(),
            attributes,
        )?))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    ContentSync,
    Persistent,
    ActiveDirectory,
}

/// What a search's task reads.
enum Raw {
    Message(usize, ResultEntry),
    Ended(usize, LdapResult),
    Failed(usize, LdapError),
}

/// Where one base's search is.
#[derive(Clone, Copy, Debug)]
struct Base {
    /// In its refresh phase (content sync).
    refreshing: bool,
    /// Started from a cookie: its refresh sends changes (else content).
    from_cookie: bool,
}

/// What is known of an entry: its DN and a hash of each attribute.
struct Known {
    dn: String,
    attrs: HashMap<String, u64>,
}

struct Listener {
    session: Session,
    s: LdapSettings,
    how: How,
    attributes: bool,
    tx: mpsc::UnboundedSender<Raw>,
    rx: mpsc::UnboundedReceiver<Raw>,
    bases: Vec<Base>,
    ready: VecDeque<ChangeEvent>,
    known: HashMap<String, Known>,
    /// While the snapshot is read: the entries a message named (their
    /// hashes are the message's, newer than or as new as the snapshot's).
    named: Option<HashSet<String>>,
    /// `listen` returned: changes are being told.
    opened: bool,
}

impl Listener {
    fn open(
        session: Session,
        s: LdapSettings,
        attributes: bool,
    ) -> Result<Listener, ConnectorError> {
        let how = if session.supports(controls::SYNC_REQUEST) {
            How::ContentSync
        } else if session.supports(controls::PERSISTENT_SEARCH) {
            How::Persistent
        } else if session.supports(controls::AD_NOTIFICATION) {
            How::ActiveDirectory
        } else {
            return Err(ConnectorError::new(
                ConnectorErrorKind::Configuration,
                format!(
                    "MA `{}`: {} offers no change notification (content synchronisation, RFC 4533: OpenLDAP's syncprov overlay; the persistent-search control; Active Directory's): changes cannot be listened to; import on an interval or a schedule instead",
                    s.ma,
                    super::discovery::shown_url(&s.url)
                ),
            ));
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let mut l = Listener {
            bases: vec![
                Base {
                    refreshing: false,
                    from_cookie: false,
                };
                s.base_dns.len()
            ],
            session,
            s,
            how,
            attributes,
            tx,
            rx,
            ready: VecDeque::new(),
            known: HashMap::new(),
            named: None,
            opened: false,
        };
        // From a cookie of now: the refresh is short.
        let cookies = if how == How::ContentSync {
            probe(&mut l.session, &l.s)
        } else {
            vec![None; l.s.base_dns.len()]
        };
        let from: Vec<bool> = cookies.iter().map(Option::is_some).collect();
        for (i, cookie) in cookies.into_iter().enumerate() {
            l.start(i, cookie)?;
        }
        if how == How::ContentSync && attributes {
            l.named = Some(HashSet::new());
            for (i, _) in from.iter().enumerate().filter(|(_, f)| **f) {
                l.read_snapshot(i)?;
            }
            l.read_content()?;
            l.named = None;
        }
        l.opened = true;
        Ok(l)
    }

    fn fail(&self, kind: ConnectorErrorKind, why: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::new(
            kind,
            format!(
                "MA `{}`: listening to changes at {}: {why}",
                self.s.ma,
                super::discovery::shown_url(&self.s.url)
            ),
        )
    }

    /// Start the search of base `i` (from `cookie`), read by a task.
    fn start(&mut self, i: usize, cookie: Option<Vec<u8>>) -> Result<(), ConnectorError> {
        let base = self.s.base_dns[i].clone();
        let control = match self.how {
            How::ContentSync => {
                controls::sync_request(SyncMode::RefreshAndPersist, cookie.as_deref())
            }
            How::Persistent => controls::persistent_search(),
            How::ActiveDirectory => controls::ad_notification(),
        };
        let attrs = if self.attributes {
            requested(&self.s)
        } else {
            vec!["1.1".to_owned()]
        };
        // Active Directory takes no other filter.
        let filter = match self.how {
            How::ActiveDirectory => "(objectClass=*)".to_owned(),
            _ => self.s.search_filter(),
        };
        let mut stream = self
            .session
            .stream(
                &base,
                scope(self.s.scope),
                &filter,
                attrs,
                vec![control],
                false,
            )
            .map_err(|e| {
                self.session
                    .broken(&self.s, &format!("search `{base}`"), &e)
            })?;
        self.bases[i] = Base {
            refreshing: self.how == How::ContentSync,
            from_cookie: cookie.is_some(),
        };
        let tx = self.tx.clone();
        self.session.spawn(async move {
            loop {
                let raw = match stream.next().await {
                    Ok(Some(m)) => Raw::Message(i, m),
                    Ok(None) => Raw::Ended(i, stream.finish().await),
                    Err(e) => Raw::Failed(i, e),
                };
                let last = !matches!(raw, Raw::Message(..));
                if tx.send(raw).is_err() || last {
                    return;
                }
            }
        });
        Ok(())
    }

    /// Read every base's refresh (the changes since its cookie, or the
    /// entries' attributes where it had none) before listening starts.
    fn read_content(&mut self) -> Result<(), ConnectorError> {
        while self.bases.iter().any(|b| b.refreshing) {
            let (timeout, rx) = (self.s.timeout, &mut self.rx);
            let raw = self
                .session
                .block_on(async move { tokio::time::timeout(timeout, rx.recv()).await });
            match raw {
                Ok(Some(raw)) => self.handle(raw)?,
                Ok(None) => {
                    return Err(self.fail(ConnectorErrorKind::Connectivity, "the searches ended"));
                }
                Err(_) => {
                    return Err(self.fail(
                        ConnectorErrorKind::Connectivity,
                        "the entries were not all read within timeout_ms",
                    ));
                }
            }
        }
        Ok(())
    }

    fn handle(&mut self, raw: Raw) -> Result<(), ConnectorError> {
        match raw {
            Raw::Failed(i, e) => Err(self.fail(
                ConnectorErrorKind::Connectivity,
                format!("the search of `{}` broke: {e}", self.s.base_dns[i]),
            )),
            Raw::Ended(i, result) => {
                let b = self.bases[i];
                let refused = matches!(result.rc, REFRESH_REQUIRED | 53 | 2);
                if b.refreshing && b.from_cookie && refused {
                    // The cookie just taken was refused: from none, its
                    // refresh read as content.
                    return self.start(i, None);
                }
                Err(self.fail(
                    ConnectorErrorKind::Connectivity,
                    format!(
                        "the server ended the search of `{}`: {}",
                        self.s.base_dns[i],
                        describe(&result)
                    ),
                ))
            }
            Raw::Message(i, m) => match self.how {
                How::ContentSync => self.sync_message(i, m),
                How::Persistent | How::ActiveDirectory => self.persistent_message(m),
            },
        }
    }

    fn sent(&self, e: String) -> ConnectorError {
        self.fail(
            ConnectorErrorKind::Connectivity,
            format!("the server sent {e}"),
        )
    }

    fn sync_message(&mut self, i: usize, m: ResultEntry) -> Result<(), ConnectorError> {
        let b = self.bases[i];
        let tell = !b.refreshing || b.from_cookie;
        if m.is_ref() {
            return Ok(());
        }
        if m.is_intermediate() {
            match controls::sync_info(m.0).map_err(|e| self.sent(e))? {
                Some(SyncInfo::RefreshDone { done: true, .. }) => {
                    self.bases[i].refreshing = false;
                    if self.opened && !b.from_cookie {
                        // Listening again from no cookie: what changed
                        // during the refresh was not told.
                        self.ready.push_back(ChangeEvent {
                            object: self.s.base_dns[i].clone(),
                            attributes: None,
                        });
                    }
                }
                Some(SyncInfo::IdSet {
                    deletes: true,
                    uuids,
                    ..
                }) => {
                    for uuid in uuids {
                        self.known.remove(&uuid);
                        self.name(&uuid);
                        if tell {
                            self.ready.push_back(ChangeEvent {
                                object: uuid,
                                attributes: None,
                            });
                        }
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        let state =
            m.1.iter()
                .find(|c| c.1.ctype == controls::SYNC_STATE)
                .and_then(|c| c.1.val.as_deref())
                .map(controls::sync_state)
                .transpose()
                .map_err(|e| self.sent(e))?;
        let raw = ber::entry(m.0).map_err(|e| self.sent(e))?;
        let attributes = match &state {
            Some(st) if st.state == EntryState::Present => return Ok(()),
            Some(st) if st.state == EntryState::Delete => {
                self.known.remove(&st.uuid);
                self.name(&st.uuid);
                None
            }
            Some(st) if self.attributes => {
                let moved = self.changed(&st.uuid, &raw);
                // The snapshot may or may not hold this change.
                if tell && self.name(&st.uuid) {
                    None
                } else {
                    moved
                }
            }
            _ => None,
        };
        if tell {
            self.ready.push_back(ChangeEvent {
                object: raw.dn,
                attributes,
            });
        }
        Ok(())
    }

    /// A change of a persistent search or of Active Directory's
    /// notification: the entry as it is now.
    fn persistent_message(&mut self, m: ResultEntry) -> Result<(), ConnectorError> {
        if m.is_ref() || m.is_intermediate() {
            return Ok(());
        }
        if let Some(v) =
            m.1.iter()
                .find(|c| c.1.ctype == controls::ENTRY_CHANGE)
                .and_then(|c| c.1.val.as_deref())
        {
            controls::entry_change(v).map_err(|e| self.sent(e))?;
        }
        let raw = ber::entry(m.0).map_err(|e| self.sent(e))?;
        self.ready.push_back(ChangeEvent {
            object: raw.dn,
            attributes: None,
        });
        Ok(())
    }

    /// While the snapshot is read: remember that a message named entry
    /// `uuid`, and say so.
    fn name(&mut self, uuid: &str) -> bool {
        match &mut self.named {
            Some(named) => {
                named.insert(uuid.to_owned());
                true
            }
            None => false,
        }
    }

    /// The attributes of entry `uuid` whose values moved since it was last
    /// read (`None`: not read before, or renamed); remembers them.
    fn changed(&mut self, uuid: &str, e: &ber::RawEntry) -> Option<Vec<String>> {
        let (attrs, names) = hashes(e);
        let before = self.known.insert(
            uuid.to_owned(),
            Known {
                dn: e.dn.clone(),
                attrs: attrs.clone(),
            },
        )?;
        if before.dn != e.dn {
            return None;
        }
        let mut out: Vec<String> = attrs
            .iter()
            .filter(|(k, h)| before.attrs.get(*k) != Some(h))
            .map(|(k, _)| names.get(k).cloned().unwrap_or_else(|| k.clone()))
            .collect();
        out.extend(
            before
                .attrs
                .keys()
                .filter(|k| !attrs.contains_key(*k))
                .cloned(),
        );
        out.sort();
        Some(out)
    }
}

/// A hash of each attribute's values (by its name in lower case; the
/// values of its descriptions with options together) and each name as the
/// server spells it.
fn hashes(e: &ber::RawEntry) -> (HashMap<String, u64>, HashMap<String, String>) {
    let mut attrs: HashMap<String, u64> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for (description, values) in &e.attrs {
        // A description with options (`title;lang-fr`) is its own.
        let name = ber::attribute_of(description).unwrap_or(description);
        let key = name.to_ascii_lowercase();
        let mut sorted: Vec<&Vec<u8>> = values.iter().collect();
        sorted.sort();
        let mut bytes = Vec::new();
        for v in sorted {
            bytes.extend((v.len() as u64).to_le_bytes());
            bytes.extend(v);
        }
        let h = xxhash_rust::xxh3::xxh3_64(&bytes);
        let slot = attrs.entry(key.clone()).or_insert(0);
        *slot ^= h;
        names.entry(key).or_insert_with(|| name.to_owned());
    }
    (attrs, names)
}

impl ChangeListener for Listener {
    fn next_change(&mut self, wait: Duration) -> Result<Option<ChangeEvent>, ConnectorError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let rx = &mut self.rx;
            let raw = self
                .session
                .block_on(async move { tokio::time::timeout(left, rx.recv()).await });
            match raw {
                Err(_) => return Ok(None),
                Ok(None) => {
                    return Err(self.fail(ConnectorErrorKind::Connectivity, "the searches ended"));
                }
                Ok(Some(raw)) => self.handle(raw)?,
            }
        }
    }
}
