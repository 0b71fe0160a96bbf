//! Delta import by content synchronisation (RFC 4533, refreshOnly): one
//! search per base DN with the cookie the last import saved, read message
//! by message into batches of `page_size`.
//!
//! What the server sends becomes:
//!
//! * an entry whose state is *add* or *modify*: the object as it is now
//!   (`Full`; the protocol does not say which attributes changed);
//! * an entry whose state is *delete*, or a UUID of a `syncIdSet` with
//!   `refreshDeletes`: a `Delete` by anchor (the entryUUID);
//! * an entry whose state is *present*, or a UUID of a `syncIdSet`
//!   without `refreshDeletes`: an `Update` naming nothing (there,
//!   unchanged).
//!
//! With several base DNs, the deletes wait for the end of the last
//! refresh, and a delete of an entry another base's refresh sent is
//! dropped: slapd's session log tells the refresh of one base that an
//! entry renamed within another no longer matches it (as if it had been
//! in both), and an entry moved from one base to another is a delete in
//! one and an add in the other. So is a delete of an entry the directory
//! still has under a base, read by `entryUUID` at the end (one modified
//! in a base after that base's refresh and before another's: the other
//! says it no longer matches, and no refresh sent it).
//!
//! A refresh ends with a Sync Done control: with `refreshDeletes` the
//! server sent the changes and the deletes (the delete phase); without
//! it, it sent every entry, present or changed (the present phase), and
//! the stream is [complete](ImportStream::complete): the engine stages
//! the delete of every object it did not see.
//!
//! A cookie the server refuses (e-syncRefreshRequired, 4096; or
//! unwillingToPerform, as slapd answers a cookie newer than its state), a
//! refresh that comes back with an empty cookie (the server did not know
//! ours; no cookie at all means nothing changed), a limit the refresh
//! hit, or base DNs of which only some were
//! read in the present phase: the import reads everything instead with
//! the full import's paged search (after taking new cookies), and says it
//! is complete. Changes are never missed silently.

use super::ber;
use super::config::LdapSettings;
use super::controls::{self, EntryState, REFRESH_REQUIRED, SyncInfo, SyncMode};
use super::import::{LdapImport, Track, item, requested, scope, search_failure};
use super::session::{Session, Stream, describe};
use super::watermark;
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ImportChange, ImportItem, ImportStream, ImportedObject,
};
use ldap3::ResultEntry;
use std::collections::{HashSet, VecDeque};

/// The cookie of each base DN now, from a refresh that matches nothing
/// (`None` where the server gives none). Taken before a full read, so
/// that a change made during the read is read again by the next delta.
pub fn probe(session: &mut Session, s: &LdapSettings) -> Vec<Option<Vec<u8>>> {
    let filter = format!("(&{}(!(objectClass=*)))", s.search_filter());
    s.base_dns
        .iter()
        .map(|base| {
            let control = controls::sync_request(SyncMode::RefreshOnly, None);
            let found = session.search(base, scope(s.scope), &filter, &["1.1"], vec![control]);
            let cookie = match &found {
                Ok((_, r)) if r.rc == 0 => r
                    .ctrls
                    .iter()
                    .find(|c| c.1.ctype == controls::SYNC_DONE)
                    .and_then(|c| c.1.val.as_deref())
                    .and_then(|v| controls::sync_done(v).ok())
                    .and_then(|d| d.cookie)
                    .filter(|c| !c.is_empty()),
                _ => None,
            };
            if cookie.is_none() {
                let why = match &found {
                    Ok((_, r)) => describe(r),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(ma = %s.ma, base = %base, %why, "no content-synchronisation cookie: the next delta import reads everything");
            }
            cookie
        })
        .collect()
}

/// A full read in content-sync mode: new cookies, then the paged search.
pub fn full_read<'c>(session: &'c mut Session, s: &'c LdapSettings) -> LdapImport<'c> {
    let cookies = probe(session, s);
    let w = watermark::of_cookies(s, &cookies);
    LdapImport::new(session, s, Track::Cookies(w))
}

/// How the refresh of one base ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Changes and deletes.
    Deletes,
    /// Every entry, present or changed.
    Present,
}

/// A delta import by content synchronisation.
pub struct SyncImport<'c> {
    state: State<'c>,
}

enum State<'c> {
    Sync(Refresh<'c>),
    /// Reading everything instead.
    Whole(LdapImport<'c>),
    /// Switching (never seen from outside).
    Gone,
}

struct Refresh<'c> {
    session: &'c mut Session,
    s: &'c LdapSettings,
    filter: String,
    attrs: Vec<String>,
    /// The cookies given, one per base.
    given: Vec<Vec<u8>>,
    /// The cookies the server gave back.
    cookies: Vec<Option<Vec<u8>>>,
    phases: Vec<Phase>,
    base: usize,
    stream: Option<Stream>,
    pending: VecDeque<ImportItem>,
    seen: HashSet<String>,
    first_type: String,
    /// With several base DNs: the deletes, held until every base is read
    /// (see `hold`), and the anchors a refresh said are there.
    held: Vec<String>,
    there: HashSet<String>,
}

/// Why a refresh cannot be trusted to hold every change.
struct ReadAll(String);

impl<'c> SyncImport<'c> {
    /// A refresh from `cookies` (one per base DN).
    pub fn new(session: &'c mut Session, s: &'c LdapSettings, cookies: Vec<Vec<u8>>) -> Self {
        SyncImport {
            state: State::Sync(Refresh {
                filter: s.search_filter(),
                attrs: requested(s),
                cookies: vec![None; cookies.len()],
                phases: Vec::new(),
                given: cookies,
                base: 0,
                stream: None,
                pending: VecDeque::new(),
                seen: HashSet::new(),
                first_type: s.types.first().map(|t| t.name.clone()).unwrap_or_default(),
                held: Vec::new(),
                there: HashSet::new(),
                session,
                s,
            }),
        }
    }

    /// Give up the refresh and read everything.
    fn read_all(&mut self, why: &str) {
        if let State::Sync(r) = std::mem::replace(&mut self.state, State::Gone) {
            let Refresh {
                session,
                s,
                mut stream,
                ..
            } = r;
            if let Some(st) = &mut stream {
                session.finish(st);
            }
            tracing::info!(ma = %s.ma, why, "the content-synchronisation refresh cannot be trusted: the delta import reads everything");
            self.state = State::Whole(full_read(session, s));
        }
    }
}

impl ImportStream for SyncImport<'_> {
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError> {
        loop {
            let step = match &mut self.state {
                State::Whole(w) => return w.next_batch(),
                State::Gone => return Ok(None),
                State::Sync(r) => r.next_batch()?,
            };
            match step {
                Ok(batch) => return Ok(batch),
                Err(ReadAll(why)) => self.read_all(&why),
            }
        }
    }

    fn watermark(&self) -> Option<String> {
        match &self.state {
            State::Whole(w) => w.watermark(),
            State::Sync(r) => watermark::of_cookies(r.s, &r.cookies).text(),
            State::Gone => None,
        }
    }

    fn complete(&self) -> bool {
        match &self.state {
            State::Whole(_) => true,
            State::Sync(r) => !r.phases.is_empty() && r.phases.iter().all(|p| *p == Phase::Present),
            State::Gone => false,
        }
    }
}

type Step = Result<Option<Vec<ImportItem>>, ReadAll>;

impl Refresh<'_> {
    fn fail(&self, kind: ConnectorErrorKind, why: impl std::fmt::Display) -> ConnectorError {
        let base = self.s.base_dns.get(self.base).map_or("", String::as_str);
        ConnectorError::new(
            kind,
            format!(
                "MA `{}`: content synchronisation of `{base}`: {why}",
                self.s.ma
            ),
        )
    }

    /// The next batch, or why the refresh must give way to a whole read.
    fn next_batch(&mut self) -> Result<Step, ConnectorError> {
        let size = self.s.page_size.max(1);
        loop {
            if self.pending.len() >= size {
                return Ok(Ok(Some(self.pending.drain(..size).collect())));
            }
            if self.stream.is_none() {
                if self.base >= self.s.base_dns.len() {
                    let mixed = self.phases.contains(&Phase::Present)
                        && self.phases.contains(&Phase::Deletes);
                    if mixed {
                        return Ok(Err(ReadAll(
                            "some base DNs were refreshed whole, others by their changes".into(),
                        )));
                    }
                    self.release_held()?;
                    if self.pending.is_empty() {
                        return Ok(Ok(None));
                    }
                    return Ok(Ok(Some(self.pending.drain(..).collect())));
                }
                if let Err(why) = self.start()? {
                    return Ok(Err(why));
                }
            }
            if let Err(why) = self.read_one()? {
                return Ok(Err(why));
            }
        }
    }

    /// Start the refresh of the current base.
    fn start(&mut self) -> Result<Result<(), ReadAll>, ConnectorError> {
        let base = self.s.base_dns[self.base].clone();
        let control = controls::sync_request(
            SyncMode::RefreshOnly,
            self.given.get(self.base).map(Vec::as_slice),
        );
        match self.session.stream(
            &base,
            scope(self.s.scope),
            &self.filter,
            self.attrs.clone(),
            vec![control],
            true,
        ) {
            Ok(st) => {
                self.stream = Some(st);
                Ok(Ok(()))
            }
            Err(e) => Err(self.session.broken(self.s, &format!("search `{base}`"), &e)),
        }
    }

    /// Read one message of the current refresh into `pending`.
    fn read_one(&mut self) -> Result<Result<(), ReadAll>, ConnectorError> {
        let Some(stream) = &mut self.stream else {
            return Ok(Ok(()));
        };
        let next = self.session.next(stream);
        let message = match next {
            Ok(m) => m,
            Err(e) => {
                let base = &self.s.base_dns[self.base];
                return Err(self.session.broken(self.s, &format!("search `{base}`"), &e));
            }
        };
        match message {
            Some(m) => self.message(m).map(Ok),
            None => {
                let result = self.session.finish(stream);
                self.stream = None;
                self.done(result)
            }
        }
    }

    /// An entry or an intermediate response.
    fn message(&mut self, m: ResultEntry) -> Result<(), ConnectorError> {
        if m.is_ref() {
            return Ok(());
        }
        if m.is_intermediate() {
            let info = controls::sync_info(m.0).map_err(|e| {
                self.fail(
                    ConnectorErrorKind::Connectivity,
                    format!("the server sent {e}"),
                )
            })?;
            if let Some(SyncInfo::IdSet { deletes, uuids, .. }) = info {
                for uuid in uuids {
                    let change = if deletes {
                        ImportChange::Delete
                    } else {
                        ImportChange::Update
                    };
                    self.push(Ok(self.bare(uuid, change)));
                }
            }
            return Ok(());
        }
        let state =
            m.1.iter()
                .find(|c| c.1.ctype == controls::SYNC_STATE)
                .and_then(|c| c.1.val.as_deref())
                .map(controls::sync_state)
                .transpose()
                .map_err(|e| {
                    self.fail(
                        ConnectorErrorKind::Connectivity,
                        format!("the server sent {e}"),
                    )
                })?;
        let raw = ber::entry(m.0).map_err(|e| {
            self.fail(
                ConnectorErrorKind::Connectivity,
                format!("the server sent {e}"),
            )
        })?;
        let item = match state.map(|st| (st.state, st.uuid)) {
            Some((EntryState::Delete, uuid)) => Ok(self.bare(uuid, ImportChange::Delete)),
            Some((EntryState::Present, uuid)) => {
                let mut o = self.bare(uuid, ImportChange::Update);
                o.dn = raw.dn;
                Ok(o)
            }
            _ => item(self.s, self.session, &mut self.seen, &[], raw),
        };
        self.push(item);
        Ok(())
    }

    /// Queue an item. With several base DNs, a delete waits for the end
    /// of the last refresh (`release_held`): slapd's session log tells
    /// the refresh of one base that an entry renamed or moved in another
    /// (or into another) no longer matches, and that entry is there.
    fn push(&mut self, item: ImportItem) {
        let hold = self.s.base_dns.len() > 1;
        match item {
            Ok(o) if hold && o.change == ImportChange::Delete => self.held.push(o.anchor),
            Ok(o) if hold => {
                self.there.insert(o.anchor.clone());
                self.pending.push_back(Ok(o));
            }
            other => self.pending.push_back(other),
        }
    }

    /// Once every base is read: the held deletes of the entries no
    /// refresh said are there, each once, and none of an entry the
    /// directory still has under a base: slapd tells the refresh of one
    /// base that an entry modified in another since that one's refresh no
    /// longer matches it, and such an entry is there (its change comes with
    /// that base's next refresh). A read that fails keeps the delete out
    /// too: the step stops, and the next import reads again.
    fn release_held(&mut self) -> Result<(), ConnectorError> {
        let mut done = HashSet::new();
        let mut candidates: Vec<String> = Vec::new();
        for uuid in std::mem::take(&mut self.held) {
            if !self.there.contains(&uuid) && done.insert(uuid.clone()) {
                candidates.push(uuid);
            }
        }
        self.there = HashSet::new();
        let still = self.still_there(&candidates)?;
        for uuid in candidates {
            if !still.contains(&uuid) {
                self.pending
                    .push_back(Ok(self.bare(uuid, ImportChange::Delete)));
            }
        }
        Ok(())
    }

    /// Which of `uuids` name an entry the MA's search finds under one of
    /// its bases now (read by `entryUUID`, 50 a search).
    fn still_there(&mut self, uuids: &[String]) -> Result<HashSet<String>, ConnectorError> {
        let mut found = HashSet::new();
        for chunk in uuids.chunks(50) {
            let any: String = chunk
                .iter()
                .filter(|u| u.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
                .map(|u| format!("(entryUUID={u})"))
                .collect();
            if any.is_empty() {
                continue;
            }
            let filter = format!("(&{}(|{any}))", self.filter);
            for base in self.s.base_dns.clone() {
                let (entries, result) = self
                    .session
                    .search(
                        &base,
                        scope(self.s.scope),
                        &filter,
                        &["entryUUID"],
                        Vec::new(),
                    )
                    .map_err(|e| self.session.broken(self.s, &format!("search `{base}`"), &e))?;
                if result.rc == 32 {
                    continue;
                }
                if result.rc != 0 {
                    return Err(ConnectorError::new(
                        autosync_connector::ConnectorErrorKind::Connectivity,
                        format!(
                            "MA `{}`: cannot tell whether entries the refresh of another base no longer sees are still under `{base}`: {}",
                            self.s.ma,
                            describe(&result)
                        ),
                    ));
                }
                for e in entries {
                    if let Ok(raw) = ber::entry(e.0) {
                        for (name, values) in &raw.attrs {
                            if name.eq_ignore_ascii_case("entryUUID") {
                                found.extend(
                                    values
                                        .iter()
                                        .map(|v| String::from_utf8_lossy(v).to_lowercase()),
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(uuids
            .iter()
            .filter(|u| found.contains(&u.to_lowercase()))
            .cloned()
            .collect())
    }

    /// An object known by its UUID only (a delete, a present one).
    fn bare(&self, uuid: String, change: ImportChange) -> ImportedObject {
        ImportedObject {
            object_type: self.first_type.clone(),
            dn: uuid.clone(),
            anchor: uuid,
            change,
            attributes: Default::default(),
            values: Default::default(),
        }
    }

    /// The refresh of the current base ended with `result`.
    fn done(&mut self, result: ldap3::LdapResult) -> Result<Result<(), ReadAll>, ConnectorError> {
        let base = self.s.base_dns[self.base].clone();
        let refused = |why: String| Ok(Err(ReadAll(format!("`{base}`: {why}"))));
        match result.rc {
            0 => {}
            REFRESH_REQUIRED => {
                return refused(
                    "the server asks for a full refresh (e-syncRefreshRequired)".into(),
                );
            }
            // A cookie the server cannot take; limits a refresh of many
            // changes hit (a paged read passes them); the control refused.
            2 | 3 | 4 | 11 | 12 | 53 => return refused(describe(&result)),
            _ => search_failure(self.s, &base, &result)?,
        }
        let done = result
            .ctrls
            .iter()
            .find(|c| c.1.ctype == controls::SYNC_DONE)
            .and_then(|c| c.1.val.as_deref())
            .map(controls::sync_done)
            .transpose()
            .map_err(|e| {
                self.fail(
                    ConnectorErrorKind::Connectivity,
                    format!("the server sent {e}"),
                )
            })?;
        let Some(done) = done else {
            return refused("the refresh ended without a Sync Done control".into());
        };
        // No cookie: nothing changed, ours stands. An empty one: the
        // server did not know ours (slapd then sends everything as if
        // there had been none, deletes unsaid).
        let cookie = match done.cookie {
            Some(c) if c.is_empty() => {
                return refused(
                    "the server answered with an empty cookie: it did not know ours".into(),
                );
            }
            Some(c) => c,
            None => self.given.get(self.base).cloned().unwrap_or_default(),
        };
        self.phases.push(if done.refresh_deletes {
            Phase::Deletes
        } else {
            Phase::Present
        });
        if let Some(slot) = self.cookies.get_mut(self.base) {
            *slot = Some(cookie);
        }
        self.base += 1;
        Ok(Ok(()))
    }
}
