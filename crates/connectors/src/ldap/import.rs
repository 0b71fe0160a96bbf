//! Full import (and the delta imports that read everything): a paged
//! search (RFC 2696) of each base DN in turn, one page per batch, so a
//! directory larger than the server's size limit is read whole and memory
//! stays bounded by the page size. Each entry is typed from its object
//! classes, anchored by the anchor attribute (or its DN) and shown by its
//! DN; an entry that cannot be read (no anchor, no known object class,
//! the classes of two types alike) is a record error that names its
//! anchor when it has one, and the import goes on.
//!
//! The same read serves a delta import by change stamps
//! ([`super::stamps`]: the filter narrowed to recent stamps), and leaves
//! the watermark of the mode the server allows ([`super::watermark`]).
//!
//! A search that the server cuts short (a size or time limit: paging
//! refused for this account) or whose base DN does not exist stops the
//! step: an import that read part of the directory would stage the
//! delete of the rest.

use super::ber::{self, RawEntry};
use super::config::{Anchor, LdapSettings, Scope as ConfigScope, TypeMap};
use super::schema::{DirSchema, Kind};
use super::session::{PAGED_RESULTS, Session, describe};
use super::stamps::Stamps;
use super::values;
use super::watermark::Watermark;
use autosync_connector::{
    ConnectorError, ConnectorErrorKind, ImportChange, ImportItem, ImportRecordError, ImportStream,
    ImportedObject,
};
use autosync_model::{Attributes, Value};
use ldap3::Scope;
use ldap3::controls::{PagedResults, RawControl};
use std::collections::HashSet;

pub fn scope(s: ConfigScope) -> Scope {
    match s {
        ConfigScope::Sub => Scope::Subtree,
        ConfigScope::One => Scope::OneLevel,
        ConfigScope::Base => Scope::Base,
    }
}

/// What a paged read keeps besides the entries.
#[derive(Debug)]
pub enum Track {
    /// The content-sync cookies taken before the read.
    Cookies(Watermark),
    /// The change stamps of what it reads (and, for a delta, only the
    /// entries changed since the watermark).
    Stamps(Stamps),
}

/// A running paged read.
pub struct LdapImport<'c> {
    session: &'c mut Session,
    s: &'c LdapSettings,
    filter: String,
    attrs: Vec<String>,
    /// Attributes asked for the connector's own use (a stamp): not given
    /// to the engine.
    own: Vec<String>,
    /// The base DN being read (index into `base_dns`).
    base: usize,
    /// The cookie of the next page of that base (`None`: its first page).
    cookie: Option<Vec<u8>>,
    /// Anchors already returned.
    seen: HashSet<String>,
    track: Track,
}

/// The attributes a search asks for: those configured (or every user
/// attribute), the object classes and the anchor.
pub fn requested(s: &LdapSettings) -> Vec<String> {
    let mut attrs = match &s.attributes {
        Some(list) => list.clone(),
        None => vec!["*".to_owned()],
    };
    attrs.push("objectClass".to_owned());
    if s.anchor != Anchor::Dn {
        attrs.push(s.anchor.name().to_owned());
    }
    attrs
}

impl<'c> LdapImport<'c> {
    pub fn new(session: &'c mut Session, s: &'c LdapSettings, track: Track) -> Self {
        let mut attrs = requested(s);
        let mut own = Vec::new();
        let filter = match &track {
            Track::Stamps(st) => {
                attrs.push(st.attribute().to_owned());
                let listed = s
                    .attributes
                    .iter()
                    .flatten()
                    .any(|a| a.eq_ignore_ascii_case(st.attribute()));
                if !listed {
                    own.push(st.attribute().to_owned());
                }
                st.filter(&s.search_filter())
            }
            _ => s.search_filter(),
        };
        LdapImport {
            filter,
            attrs,
            own,
            session,
            s,
            base: 0,
            cookie: None,
            seen: HashSet::new(),
            track,
        }
    }

    /// Read the next page of the current base DN; move to the next base
    /// when it is the last.
    fn page(&mut self) -> Result<Vec<ImportItem>, ConnectorError> {
        let Some(base) = self.s.base_dns.get(self.base) else {
            return Ok(Vec::new());
        };
        let control = page_control(self.s, self.cookie.take().unwrap_or_default());
        let attrs: Vec<&str> = self.attrs.iter().map(String::as_str).collect();
        let (entries, result) = self
            .session
            .search(
                base,
                scope(self.s.scope),
                &self.filter,
                &attrs,
                vec![control],
            )
            .map_err(|e| self.session.broken(self.s, &format!("search `{base}`"), &e))?;
        let fail = |kind, why: String| {
            ConnectorError::new(
                kind,
                format!("MA `{}`: search of `{base}`: {why}", self.s.ma),
            )
        };
        search_failure(self.s, base, &result)?;
        let next = next_page(&result).map_err(|e| fail(ConnectorErrorKind::Connectivity, e))?;
        if next.is_empty() {
            self.base += 1;
            if self.base == self.s.base_dns.len()
                && let Track::Stamps(st) = &mut self.track
            {
                st.finish();
            }
        } else {
            self.cookie = Some(next);
        }
        let mut items = Vec::with_capacity(entries.len());
        for e in entries {
            let raw = ber::entry(e.0).map_err(|why| {
                fail(
                    ConnectorErrorKind::Connectivity,
                    format!("the server sent {why}"),
                )
            })?;
            if let Track::Stamps(st) = &mut self.track {
                let anchor = anchor_of(self.s, self.session, &raw).ok();
                if st.observe(anchor.as_deref(), &raw) {
                    continue;
                }
            }
            items.push(item(self.s, self.session, &mut self.seen, &self.own, raw));
        }
        Ok(items)
    }
}

/// The paged-results control of a page of `page_size` entries after
/// `cookie` (empty: the first page).
pub fn page_control(s: &LdapSettings, cookie: Vec<u8>) -> RawControl {
    PagedResults {
        size: i32::try_from(s.page_size).unwrap_or(i32::MAX),
        cookie,
    }
    .into()
}

/// The cookie of the page after the one `result` ends (empty: it was the
/// last).
pub fn next_page(result: &ldap3::LdapResult) -> Result<Vec<u8>, String> {
    Ok(result
        .ctrls
        .iter()
        .find(|c| c.1.ctype == PAGED_RESULTS)
        .and_then(|c| c.1.val.as_deref())
        .map(ber::paged_cookie)
        .transpose()?
        .unwrap_or_default())
}

/// The step error of a search result that is not a success, if it is
/// one.
pub fn search_failure(
    s: &LdapSettings,
    base: &str,
    result: &ldap3::LdapResult,
) -> Result<(), ConnectorError> {
    let fail = |kind, why: String| {
        Err(ConnectorError::new(
            kind,
            format!("MA `{}`: search of `{base}`: {why}", s.ma),
        ))
    };
    match result.rc {
        0 => Ok(()),
        32 => fail(
            ConnectorErrorKind::Configuration,
            format!(
                "the base DN does not exist ({}); nothing is imported rather than everything deleted",
                describe(result)
            ),
        ),
        3 | 4 | 11 => fail(
            ConnectorErrorKind::Other,
            format!(
                "the server stopped it at a limit ({}): it was cut short: the entries read before it are staged, but no delete is (the rest was not read); let this account read past the limit (OpenLDAP: limits ... size.prtotal=unlimited; a smaller page_size does not help: the limit counts every page)",
                describe(result)
            ),
        ),
        rc if super::session::server_trouble(rc) => {
            fail(ConnectorErrorKind::ServerDown, describe(result))
        }
        _ => fail(ConnectorErrorKind::Other, describe(result)),
    }
}

impl ImportStream for LdapImport<'_> {
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError> {
        while self.base < self.s.base_dns.len() {
            let items = self.page()?;
            if !items.is_empty() {
                return Ok(Some(items));
            }
        }
        Ok(None)
    }

    fn watermark(&self) -> Option<String> {
        match &self.track {
            Track::Cookies(w) => w.text(),
            Track::Stamps(st) => {
                if st.missing() > 0 {
                    tracing::warn!(ma = %self.s.ma, attribute = st.attribute(), entries = st.missing(), "entries without a readable change stamp: the next delta import reads everything");
                }
                st.watermark().and_then(|w| w.text())
            }
        }
    }

    /// Everything was read, unless only the entries of recent stamps were.
    fn complete(&self) -> bool {
        !matches!(&self.track, Track::Stamps(st) if st.is_delta())
    }
}

/// The object types an entry with object classes `classes` may be of:
/// of the types all of whose classes the entry has, those with the most
/// (`{a, b}` over `{a}`); the only type when none names classes. One is
/// the entry's type; several (a tie, e.g. `{a, b}` and `{a, c}` for an
/// entry of `a`, `b` and `c`) are an ambiguity no order of the MA's list
/// may settle: a guess would read an entry as a type it was not added as.
pub fn types_of<'s>(types: &'s [TypeMap], classes: &[String]) -> Vec<&'s TypeMap> {
    if let [only] = types
        && only.classes.is_empty()
    {
        return vec![only];
    }
    let mut best: Vec<&TypeMap> = Vec::new();
    for t in types.iter().filter(|t| !t.classes.is_empty()) {
        let all = t
            .classes
            .iter()
            .all(|c| classes.iter().any(|e| e.eq_ignore_ascii_case(c)));
        let most = best.first().map_or(0, |b| b.classes.len());
        if !all || t.classes.len() < most {
            continue;
        }
        if t.classes.len() > most {
            best.clear();
        }
        best.push(t);
    }
    best
}

/// How the import names attribute `name`, as the server sent it: as the
/// anchor or `attributes` spell it (LDAP names ignore case, and the server
/// answers an alias, `rfc822Mailbox`, with the schema's name, `mail`),
/// else as the server does; `None` when `attributes` does not list it.
fn spelling<'a>(s: &'a LdapSettings, schema: &DirSchema, name: &'a str) -> Option<&'a str> {
    if schema.same(s.anchor.name(), name) {
        return Some(s.anchor.name());
    }
    match &s.attributes {
        None => Some(name),
        Some(list) => list
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name))
            .or_else(|| list.iter().find(|a| schema.same(a, name)))
            .map(String::as_str),
    }
}

/// How the import names description `description`, which has options
/// (`title;lang-fr`): as `attributes` writes it, when it lists it.
fn with_options<'a>(s: &'a LdapSettings, description: &str) -> Option<&'a str> {
    s.attributes
        .iter()
        .flatten()
        .find(|a| a.eq_ignore_ascii_case(description))
        .map(String::as_str)
}

/// The kind of attribute `name`'s values: `binary_attributes` and the
/// objectGUID anchor first, then the schema.
pub fn kind(s: &LdapSettings, session: &Session, name: &str) -> Kind {
    let base = ber::base_name(name);
    if s.is_binary(base) || (s.anchor.is_guid() && s.anchor.name().eq_ignore_ascii_case(base)) {
        match session.schema.kind(base) {
            Kind::BinaryTransfer => Kind::BinaryTransfer,
            _ => Kind::Binary,
        }
    } else {
        session.schema.kind(base)
    }
}

/// The anchor of entry `e`, as text.
pub fn anchor_of(s: &LdapSettings, session: &Session, e: &RawEntry) -> Result<String, String> {
    if s.anchor == Anchor::Dn {
        return Ok(e.dn.clone());
    }
    let name = s.anchor.name();
    match e.values(name).map(Vec::as_slice) {
        Some([one]) => Ok(values::anchor_text(&s.anchor, kind(s, session, name), one)),
        Some([]) | None => Err(format!("the entry has no `{name}`")),
        Some(_) => Err(format!("the entry has several `{name}` values")),
    }
}

/// One entry as an import item; `own`: attributes asked for the
/// connector's own use, left out.
pub fn item(
    s: &LdapSettings,
    session: &Session,
    seen: &mut HashSet<String>,
    own: &[String],
    e: RawEntry,
) -> ImportItem {
    let err = |anchor: Option<String>, kind: &str, detail: String| {
        Err(ImportRecordError {
            anchor,
            location: e.dn.clone(),
            error_type: kind.to_owned(),
            detail: format!("{}: {detail}", e.dn),
        })
    };
    let anchor = match anchor_of(s, session, &e) {
        Ok(a) => a,
        Err(why) => return err(None, "missing-anchor", why),
    };
    let classes: Vec<String> = e
        .values("objectClass")
        .map(|vs| {
            vs.iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let t = match types_of(&s.types, &classes).as_slice() {
        [one] => *one,
        [] => {
            let known: Vec<String> = s
                .types
                .iter()
                .map(|t| format!("{} = {}", t.name, t.classes.join("+")))
                .collect();
            return err(
                Some(anchor),
                "unknown-object-type",
                format!(
                    "its object classes ({}) are those of no object type ({})",
                    classes.join(", "),
                    known.join("; ")
                ),
            );
        }
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|t| format!("`{}` ({})", t.name, t.classes.join("+")))
                .collect();
            return err(
                Some(anchor),
                "ambiguous-object-type",
                format!(
                    "its object classes ({}) fit object types {} alike (as many classes each): it is read as neither rather than guessed; give the entry the classes of one type only, or the types of MA `{}` classes that tell them apart",
                    classes.join(", "),
                    names.join(" and "),
                    s.ma
                ),
            );
        }
    };
    let mut attributes = Attributes::new();
    for (description, vals) in &e.attrs {
        let (name, key) = match ber::attribute_of(description) {
            Some(name) => (name, spelling(s, &session.schema, name)),
            // With an option (`title;lang-fr`): not the attribute's values.
            None => (description.as_str(), with_options(s, description)),
        };
        if own.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            continue;
        }
        let Some(key) = key else {
            continue;
        };
        let Some(v) = values::to_value(kind(s, session, name), vals) else {
            continue;
        };
        let key = key.to_owned();
        match attributes.remove(&key) {
            // The same attribute under two descriptions (with options).
            Some(earlier) => {
                let mut all = match earlier {
                    Value::Multi(vs) => vs,
                    one => vec![one],
                };
                match v {
                    Value::Multi(vs) => all.extend(vs),
                    one => all.push(one),
                }
                attributes.insert(key, Value::Multi(all));
            }
            None => {
                attributes.insert(key, v);
            }
        }
    }
    if let Some(d) = &t.dn_attr {
        attributes.insert(d.clone(), Value::String(e.dn.clone()));
    }
    if !seen.insert(anchor.clone()) {
        return err(
            Some(anchor.clone()),
            "duplicate-anchor",
            format!("anchor {anchor:?} was already read; the first is kept"),
        );
    }
    Ok(ImportedObject {
        object_type: t.name.clone(),
        anchor,
        dn: e.dn,
        change: ImportChange::Full,
        attributes,
        values: Default::default(),
    })
}
