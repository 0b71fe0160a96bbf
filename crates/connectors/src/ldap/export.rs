//! Export: one LDAP operation (or two, for an update with a rename) per
//! change, durable as soon as the server answers. What the server refuses
//! for one entry (schema or object class violation, constraint, no such
//! entry, insufficient access, ...) fails that change alone with its
//! result code as the error type; an operation that gets no answer stops
//! the step. Changes that do not touch one another are sent together,
//! several in flight on the connection ([`pipeline`]).
//!
//! * **Add**: the entry at the change's DN (which must be under a base
//!   DN) with the object type's object classes, the change's attributes
//!   (not the DN attribute, nor an anchor the server assigns), the anchor
//!   attribute when the export writes it, and the RDN's values. An anchor
//!   the server assigns (entryUUID, ...) is read back with the post-read
//!   control (or a read of the entry) and given to the engine. An add
//!   whose DN exists fails with `already-exists`, the entry there left as
//!   it is, unless it is a replay of this add (its written anchor is the
//!   change's; with an assigned anchor or the DN, it holds every value the
//!   add sends): then it is updated in place ([`replay`]).
//! * **Update**: the entry is found by its anchor (a search with the
//!   anchor escaped into the filter; the DN is the anchor itself for
//!   `anchor_attribute = "dn"`; or, with an anchor the server assigns, the
//!   DN the engine knows with an assertion of the anchor: see
//!   [`pipeline`]); whole attributes are replaced
//!   (`changes`; `None` removes one) and multi-valued ones changed value
//!   by value (`values`: a member added to a group is one value sent). A
//!   replayed value change (a value already there, or already gone) is
//!   applied value by value, ignoring what is already done.
//! * **Rename and move** ([`rename`]): a modify DN with the new RDN (the old RDN value
//!   deleted) and, when the parent changes, the new superior. Renames of
//!   the batch onto one another's DNs (a swap of names, a chain) go in
//!   the order that frees each DN first, a cycle through a DN aside
//!   ([`swap`]).
//! * **Missing parents** (`create_parents`): an add or a move refused
//!   because the new parent is not there makes the missing `ou=` entries
//!   between a base DN and it, then is sent again (`parents`).
//! * **Delete**: the entry found by its anchor is deleted; one already
//!   gone is a success.

use super::ber;
use super::config::{Anchor, LdapSettings, TypeMap};
use super::dn::Dn;
use super::import::{anchor_of, kind, scope};
use super::session::{OpResult, POST_READ, Session, describe, server_trouble};
use super::values;
use crate::change::Failure;
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ExportChange, ExportOutcome, ExportSession,
};
use autosync_model::{ExportKind, Value};
use ldap3::controls::{PostRead, RawControl};
use ldap3::result::LdapError;
use ldap3::{LdapResult, Mod, Scope};
use std::collections::HashSet;

mod parents;
mod pipeline;
mod rename;
mod replay;
mod swap;

/// A running LDAP export.
pub struct LdapExport<'c> {
    session: &'c mut Session,
    s: &'c LdapSettings,
    bases: Vec<Dn>,
    /// The outcomes of the last batch's changes the server answered before
    /// the connection failed (see `answered_before_failure`).
    answered: Vec<Option<ExportOutcome>>,
    /// The renames of the batch being sent that wait for one another.
    swaps: swap::Swaps,
}

/// Why a change was not applied.
enum Stop {
    /// This change only.
    Failed(Failure),
    /// The step: no answer from the server.
    Step(ConnectorError),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Stop::Failed(f)
    }
}

type Done<T> = Result<T, Stop>;

/// An add ready to send: the entry's attributes, the anchor attribute the
/// server assigns (read back), the controls.
struct AddRequest {
    attrs: Vec<(String, HashSet<Vec<u8>>)>,
    assigned: Option<String>,
    controls: Vec<RawControl>,
}

impl AddRequest {
    fn entry(&self) -> Vec<(Vec<u8>, HashSet<Vec<u8>>)> {
        self.attrs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.clone()))
            .collect()
    }
}

/// The error type of a result code the server gave for one entry.
fn error_type(rc: u32) -> &'static str {
    match rc {
        16 => "no-such-attribute",
        17 | 18 | 21 | 69 => "schema-violation",
        19 => "constraint-violation",
        20 => "attribute-or-value-exists",
        32 => "object-not-found",
        34 => "invalid-dn",
        50 => "insufficient-access",
        53 => "unwilling-to-perform",
        64 => "naming-violation",
        65 => "object-class-violation",
        66 => "not-allowed-on-non-leaf",
        67 => "not-allowed-on-rdn",
        68 => "already-exists",
        _ => "ldap-error",
    }
}

impl<'c> LdapExport<'c> {
    pub fn new(session: &'c mut Session, s: &'c LdapSettings) -> Self {
        let bases = s
            .base_dns
            .iter()
            .filter_map(|b| Dn::parse(b).ok())
            .collect();
        LdapExport {
            session,
            s,
            bases,
            answered: Vec::new(),
            swaps: swap::Swaps::default(),
        }
    }

    /// An operation's answer: `Ok` on success, the change's failure on a
    /// refusal, the step's error when no answer came or the server is
    /// unwell.
    fn check(&self, what: &str, dn: &str, r: Result<LdapResult, LdapError>) -> Done<LdapResult> {
        let r =
            r.map_err(|e| Stop::Step(self.session.broken(self.s, &format!("{what} `{dn}`"), &e)))?;
        if r.rc == 0 {
            return Ok(r);
        }
        if server_trouble(r.rc) {
            return Err(Stop::Step(ConnectorError::new(
                ConnectorErrorKind::ServerDown,
                format!("MA `{}`: {what} `{dn}`: {}", self.s.ma, describe(&r)),
            )));
        }
        Err(Stop::Failed((
            error_type(r.rc),
            format!("{what} `{dn}`: {}", describe(&r)),
        )))
    }

    fn object_type(&self, c: &ExportChange) -> Result<&'c TypeMap, Failure> {
        self.s
            .types
            .iter()
            .find(|t| t.name == c.object_type)
            .ok_or_else(|| {
                (
                    "unknown-object-type",
                    format!("object type `{}` is not handled by this MA", c.object_type),
                )
            })
    }

    /// `dn` parsed, and under a base DN.
    fn in_scope(&self, dn: &str) -> Result<Dn, Failure> {
        let parsed =
            Dn::parse(dn).map_err(|e| ("invalid-dn", format!("`{dn}` is not a DN: {e}")))?;
        if parsed.is_root() || !self.bases.iter().any(|b| parsed.is_within(b)) {
            return Err((
                "dn-out-of-scope",
                format!(
                    "`{dn}` is under none of the base DNs ({}): the import would never see it",
                    self.s.base_dns.join("; ")
                ),
            ));
        }
        Ok(parsed)
    }

    /// The description and values of `name` = `value`.
    fn ldap_values(
        &self,
        name: &str,
        value: &Value,
    ) -> Result<(String, HashSet<Vec<u8>>), Failure> {
        let k = kind(self.s, self.session, name);
        let vals = values::to_ldap(name, k, value)?;
        Ok((values::description(name, k), vals.into_iter().collect()))
    }

    /// Whether attribute `name` is not written as an attribute: the type's
    /// DN attribute, or an anchor the server assigns or that is the DN.
    fn skipped(&self, t: &TypeMap, name: &str) -> bool {
        t.dn_attr
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(name))
            || (!matches!(self.s.anchor, Anchor::Written(_))
                && self.s.anchor.name().eq_ignore_ascii_case(name))
    }

    /// The DN of the entry whose anchor is `c.anchor`, if there is one.
    fn locate(&mut self, c: &ExportChange) -> Done<Option<String>> {
        if self.s.anchor == Anchor::Dn {
            return self.exists(&c.anchor).map(|e| e.then(|| c.anchor.clone()));
        }
        let name = self.s.anchor.name();
        let filter =
            values::anchor_filter(&self.s.anchor, kind(self.s, self.session, name), &c.anchor)?;
        let mut found: Vec<String> = Vec::new();
        for base in &self.s.base_dns {
            let r = self
                .session
                .search(base, scope(self.s.scope), &filter, &["1.1"], Vec::new());
            let r = r.map_err(|e| {
                Stop::Step(self.session.broken(self.s, &format!("search `{base}`"), &e))
            })?;
            if r.1.rc != 0 && r.1.rc != 32 {
                self.check("search", base, Ok(r.1))?;
                continue;
            }
            for e in r.0 {
                let raw = ber::entry(e.0).map_err(|why| {
                    Stop::Step(ConnectorError::new(
                        ConnectorErrorKind::Connectivity,
                        format!("MA `{}`: the server sent {why}", self.s.ma),
                    ))
                })?;
                found.push(raw.dn);
            }
        }
        match found.len() {
            0 | 1 => Ok(found.pop()),
            n => Err(Stop::Failed((
                "duplicate-anchor",
                format!(
                    "{n} entries have `{name}` = {:?}: {}",
                    c.anchor,
                    found.join("; ")
                ),
            ))),
        }
    }

    /// Whether an entry is at `dn`.
    fn exists(&mut self, dn: &str) -> Done<bool> {
        Ok(self.read(dn, &["1.1"])?.is_some())
    }

    /// The entry at `dn` with attributes `attrs` (`None`: none there).
    fn read(&mut self, dn: &str, attrs: &[&str]) -> Done<Option<ber::RawEntry>> {
        let r = self
            .session
            .search(dn, Scope::Base, "(objectClass=*)", attrs, Vec::new())
            .map_err(|e| Stop::Step(self.session.broken(self.s, &format!("read `{dn}`"), &e)))?;
        if r.1.rc == 32 {
            return Ok(None);
        }
        self.check("read", dn, Ok(r.1))?;
        match r.0.into_iter().next() {
            None => Ok(None),
            Some(e) => ber::entry(e.0).map(Some).map_err(|why| {
                Stop::Step(ConnectorError::new(
                    ConnectorErrorKind::Connectivity,
                    format!("MA `{}`: the server sent {why}", self.s.ma),
                ))
            }),
        }
    }

    /// The add of `c`, ready to send: everything but the server's answer.
    fn add_request(&self, c: &ExportChange) -> Done<AddRequest> {
        let t = self.object_type(c)?;
        let dn = self.in_scope(&c.dn)?;
        let mut attrs: Vec<(String, HashSet<Vec<u8>>)> = Vec::new();
        let put =
            |attrs: &mut Vec<(String, HashSet<Vec<u8>>)>, name: String, vals: HashSet<Vec<u8>>| {
                match attrs
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                {
                    Some((_, existing)) => existing.extend(vals),
                    None => attrs.push((name, vals)),
                }
            };
        let classes: HashSet<Vec<u8>> = t.classes.iter().map(|c| c.as_bytes().to_vec()).collect();
        if !classes.is_empty() {
            put(&mut attrs, "objectClass".to_owned(), classes);
        }
        for (name, value) in &c.changes {
            let Some(value) = value else { continue };
            if self.skipped(t, name) {
                continue;
            }
            if let Anchor::Written(a) = &self.s.anchor
                && a.eq_ignore_ascii_case(name)
                && value.to_text() != c.anchor
            {
                return Err(Stop::Failed((
                    "anchor-mismatch",
                    format!(
                        "`{name}` is the anchor ({:?}) and cannot differ from it",
                        c.anchor
                    ),
                )));
            }
            let (description, vals) = self.ldap_values(name, value)?;
            if !vals.is_empty() {
                put(&mut attrs, description, vals);
            }
        }
        if let Anchor::Written(a) = &self.s.anchor
            && !attrs.iter().any(|(n, _)| n.eq_ignore_ascii_case(a))
        {
            put(&mut attrs, a.clone(), [c.anchor.as_bytes().to_vec()].into());
        }
        // The RDN's values belong to the entry.
        for (a, v) in dn.rdn().map(|r| r.avas.clone()).unwrap_or_default() {
            let present = attrs
                .iter()
                .find(|(n, _)| ber::base_name(n).eq_ignore_ascii_case(&a))
                .is_some_and(|(_, vs)| {
                    vs.iter()
                        .any(|x| String::from_utf8_lossy(x).to_lowercase() == v.to_lowercase())
                });
            if !present {
                put(&mut attrs, a, [v.into_bytes()].into());
            }
        }
        if !attrs
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("objectClass"))
        {
            return Err(Stop::Failed((
                "missing-object-class",
                format!(
                    "object type `{}` has no object_classes entry and the change sets no objectClass",
                    t.name
                ),
            )));
        }
        let assigned = match &self.s.anchor {
            Anchor::Assigned(a) => Some(a.clone()),
            _ => None,
        };
        let controls = match &assigned {
            Some(a) if self.session.supports(POST_READ) => vec![PostRead::new(vec![a.as_str()])],
            _ => Vec::new(),
        };
        Ok(AddRequest {
            attrs,
            assigned,
            controls,
        })
    }

    fn add(&mut self, c: &ExportChange) -> Done<Option<String>> {
        let mut req = self.add_request(c)?;
        let controls = std::mem::take(&mut req.controls);
        let r = self.session.add(&c.dn, req.entry(), controls);
        self.add_answered(c, req, r)
    }

    /// What an add's answer makes of it: the anchor the server assigned,
    /// a replay when the entry exists, or the change's failure.
    fn add_answered(
        &mut self,
        c: &ExportChange,
        req: AddRequest,
        r: OpResult<LdapResult>,
    ) -> Done<Option<String>> {
        let AddRequest {
            attrs, assigned, ..
        } = req;
        let r = match self.check("add", &c.dn, r) {
            Ok(r) => r,
            Err(Stop::Failed(("already-exists", _))) => return self.replay_add(c, attrs),
            // The parent is missing: made when the settings say so.
            Err(Stop::Failed(("object-not-found", why))) => {
                let dn = self.in_scope(&c.dn)?;
                self.make_parents(&dn, why)?;
                let controls = match &assigned {
                    Some(a) if self.session.supports(POST_READ) => {
                        vec![PostRead::new(vec![a.as_str()])]
                    }
                    _ => Vec::new(),
                };
                let entry = attrs
                    .iter()
                    .map(|(n, v)| (n.as_bytes().to_vec(), v.clone()))
                    .collect();
                let r = self.session.add(&c.dn, entry, controls);
                self.check("add", &c.dn, r)?
            }
            Err(e) => return Err(e),
        };
        match (&self.s.anchor, assigned) {
            (Anchor::Dn, _) => Ok((c.anchor != c.dn).then(|| c.dn.clone())),
            (_, Some(a)) => {
                let read = r
                    .ctrls
                    .iter()
                    .find(|x| x.1.ctype == POST_READ)
                    .and_then(|x| x.1.val.as_deref())
                    .and_then(|v| ber::entry_from_ber(v).ok());
                let entry = match read {
                    Some(e) => Some(e),
                    None => self.read(&c.dn, &[a.as_str()])?,
                };
                self.assigned_anchor(c, entry).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The anchor the server gave the entry just added.
    fn assigned_anchor(&self, c: &ExportChange, entry: Option<ber::RawEntry>) -> Done<String> {
        entry
            .and_then(|e| anchor_of(self.s, self.session, &e).ok())
            .ok_or_else(|| {
                Stop::Failed((
                    "anchor-not-readable",
                    format!(
                        "`{}` was added but its `{}` cannot be read (the next import finds it)",
                        c.dn,
                        self.s.anchor.name()
                    ),
                ))
            })
    }

    fn update(&mut self, c: &ExportChange) -> Done<Option<String>> {
        let (replace, by_value) = self.update_mods(c)?;
        let Some(dn) = self.locate(c)? else {
            return Err(Stop::Failed((
                "object-not-found",
                format!(
                    "no entry has `{}` = {:?} under {}",
                    self.s.anchor.name(),
                    c.anchor,
                    self.s.base_dns.join("; ")
                ),
            )));
        };
        if let Some(new_dn) = &c.new_dn {
            self.rename_possible(&dn, new_dn)?;
        }
        if !replace.is_empty() || !by_value.is_empty() {
            let one: Vec<Mod<Vec<u8>>> = replace
                .iter()
                .cloned()
                .chain(by_value.iter().cloned())
                .collect();
            let r = self.session.modify(&dn, one);
            self.update_answered(&dn, replace, by_value, r)?;
        }
        match &c.new_dn {
            Some(new_dn) => self.rename(&dn, new_dn),
            None => Ok(None),
        }
    }

    /// What the answer to an update's modify of `dn` makes of it: done, a
    /// replay of its value changes one by one, or the change's failure.
    fn update_answered(
        &mut self,
        dn: &str,
        replace: Vec<Mod<Vec<u8>>>,
        by_value: Vec<Mod<Vec<u8>>>,
        r: OpResult<LdapResult>,
    ) -> Done<()> {
        match self.check("update", dn, r) {
            Ok(_) => Ok(()),
            Err(Stop::Failed((kind @ ("attribute-or-value-exists" | "no-such-attribute"), _)))
                if !by_value.is_empty() =>
            {
                tracing::debug!(dn = %dn, kind, "value changes already (partly) applied: applying them one by one");
                self.replay_values(dn, replace, by_value)
            }
            Err(e) => Err(e),
        }
    }

    /// An update's modifications: whole attributes replaced, and values
    /// added and removed.
    #[allow(clippy::type_complexity)]
    fn update_mods(&self, c: &ExportChange) -> Done<(Vec<Mod<Vec<u8>>>, Vec<Mod<Vec<u8>>>)> {
        let t = self.object_type(c)?;
        let mut replace: Vec<Mod<Vec<u8>>> = Vec::new();
        for (name, value) in &c.changes {
            if self.skipped(t, name) {
                continue;
            }
            if let Anchor::Written(a) = &self.s.anchor
                && a.eq_ignore_ascii_case(name)
            {
                if value.as_ref().map(Value::to_text).as_deref() == Some(c.anchor.as_str()) {
                    continue;
                }
                return Err(Stop::Failed((
                    "anchor-mismatch",
                    format!("`{name}` is the anchor and cannot change"),
                )));
            }
            let (description, vals) = match value {
                Some(v) => self.ldap_values(name, v)?,
                None => (
                    values::description(name, kind(self.s, self.session, name)),
                    HashSet::new(),
                ),
            };
            replace.push(Mod::Replace(description.into_bytes(), vals));
        }
        let mut by_value: Vec<Mod<Vec<u8>>> = Vec::new();
        for (name, delta) in &c.values {
            if self.skipped(t, name) || delta.is_empty() {
                continue;
            }
            let (description, add) = self.ldap_values(name, &Value::Multi(delta.add.clone()))?;
            let (_, remove) = self.ldap_values(name, &Value::Multi(delta.remove.clone()))?;
            if !add.is_empty() {
                by_value.push(Mod::Add(description.clone().into_bytes(), add));
            }
            if !remove.is_empty() {
                by_value.push(Mod::Delete(description.into_bytes(), remove));
            }
        }
        Ok((replace, by_value))
    }

    fn delete(&mut self, c: &ExportChange) -> Done<()> {
        self.object_type(c)?;
        let dn = match self.locate(c)? {
            Some(dn) => dn,
            None => match self.own_add_at(c)? {
                Some(dn) => dn,
                None => return Ok(()),
            },
        };
        let r = self.session.delete(&dn);
        match self.check("delete", &dn, r) {
            Ok(_) | Err(Stop::Failed(("object-not-found", _))) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn apply_one(&mut self, c: &ExportChange) -> Done<Option<String>> {
        match c.kind {
            ExportKind::Add => self.add(c),
            ExportKind::DeleteAdd => {
                self.delete(c)?;
                self.add(c)
            }
            ExportKind::Update | ExportKind::Rename => self.update_in_order(c),
            ExportKind::Delete => self.delete(c).map(|()| None),
        }
    }
}

impl ExportSession for LdapExport<'_> {
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        self.answered.clear();
        // With the DN as the anchor, renames that exchange DNs exchange
        // anchors, which the engine records one outcome at a time and
        // refuses while another object holds the anchor: the two would be
        // recorded as failed, each under the other's entry. Such renames
        // are left to fail as a clash (nothing sent) until that changes.
        self.swaps = if self.s.anchor == Anchor::Dn {
            swap::Swaps::default()
        } else {
            swap::Swaps::new(batch)
        };
        let (done, failure) = match self.apply_grouped(batch) {
            Ok(done) => (done.into_iter().map(Some).collect(), None),
            Err((e, mut done)) => {
                self.swaps.unreached(&mut done);
                (done, Some(e))
            }
        };
        self.swaps = swap::Swaps::default();
        // Each change the server answered is done, in it, whatever
        // follows: should the connection fail later in the batch, they are
        // told as answered (a stopped export recorded none of the entries
        // it had added, and sent them again as replays).
        let mut outcomes: Vec<Option<ExportOutcome>> = Vec::with_capacity(batch.len());
        let mut failure = failure;
        for (c, done) in batch.iter().zip(done) {
            outcomes.push(match done {
                Some(Ok(anchor)) => Some(ExportOutcome::Applied {
                    anchor: anchor.filter(|a| *a != c.anchor),
                }),
                Some(Err(Stop::Failed((kind, detail)))) => {
                    tracing::debug!(anchor = %c.anchor, dn = %c.dn, error_type = kind, %detail, "change refused");
                    Some(ExportOutcome::Failed {
                        error_type: kind.to_owned(),
                        detail,
                    })
                }
                Some(Err(Stop::Step(e))) => {
                    failure.get_or_insert(e);
                    None
                }
                None => None,
            });
        }
        match failure {
            Some(e) => {
                self.answered = outcomes;
                Err(e)
            }
            None => Ok(outcomes.into_iter().flatten().collect()),
        }
    }

    fn answered_before_failure(&mut self) -> Vec<Option<ExportOutcome>> {
        std::mem::take(&mut self.answered)
    }

    fn durable_per_batch(&self) -> bool {
        true
    }

    fn commit(self: Box<Self>) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn result_codes_should_have_error_types() {
        assert_eq!(super::error_type(65), "object-class-violation");
        assert_eq!(super::error_type(68), "already-exists");
        assert_eq!(super::error_type(999), "ldap-error");
        assert_eq!(
            super::super::session::code_name(50),
            "insufficientAccessRights"
        );
    }
}
