//! The store contract.

use autosync_model::{CsId, ExportKind, MvId, MvObject, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Another process holds the store (busy/locked past the timeout).
    Busy,
    /// Another process committed between two commits of a bulk
    /// transaction ([`StoreTxn::commit_so_far`]): the part after the last
    /// commit was rolled back, the parts before it are kept, and doing
    /// the rolled-back part again is safe.
    Conflict,
    /// The store cannot be written (read-only file or folder).
    ReadOnly,
    /// The disk is full.
    Full,
    /// The store's file is damaged or not a store at all.
    Corrupt,
    /// The store was written by a newer autosync.
    Version,
    /// A stored record could not be decoded.
    Decode,
    /// The operation is not possible (e.g. an attribute that is not indexed).
    Invalid,
    /// Any other I/O or database failure.
    Io,
}

/// A store failure. The message names the store and what was being done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which connector-space objects to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsFilter {
    All,
    /// Objects with a pending import.
    PendingImport,
    /// Objects with a pending export.
    PendingExport,
    /// Objects with an unconfirmed export.
    UnconfirmedExport,
    /// Objects with an error.
    Errors,
    /// Objects joined to no metaverse object (disconnectors, normal and
    /// explicit): what provisioning looks at before it adds an object.
    Unjoined,
}

/// Which metaverse objects to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MvQuery {
    pub object_type: Option<String>,
    /// Attribute name and value that must match (compared as text, and
    /// ignoring case, as [`fold_case`] does: as join rules compare; any
    /// value of a multi-valued attribute matches).
    pub attribute: Option<(String, String)>,
    /// Compare the attribute's value exactly, case included (strings only:
    /// other values compare as their text either way).
    pub case_sensitive: bool,
}

/// The text a join index holds for `text`, and that lookups compare: its
/// lower case (Unicode's, as `str::to_lowercase`; no allocation for text
/// without upper-case letters). Joins ignore case as MIM's do; a rule that
/// must not compares the values again itself.
///
/// Only string values are folded: the text of binary data (base64),
/// integers and booleans is compared as it is (see [`join_texts`]).
pub fn fold_case(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        let lower = text.to_lowercase();
        if lower == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(lower)
        }
    }
}

/// The text the DN index (`Store::set_dn_index`) and the references
/// waiting for a DN ([`RefWait::by_dn`]) hold for `text`, and that a
/// lookup by DN compares: [`autosync_model::dn::folded`], so that DNs a
/// directory takes for one entry ignoring case are one key (types' and
/// values' case, spaces around separators, `\,` and `\2C`, the order of
/// a multi-valued RDN's parts do not count); a text that is not a DN, in
/// lower case as [`fold_case`] gives it. A key folds to itself.
pub fn fold_dn(text: &str) -> Cow<'_, str> {
    if plain_dn(text) {
        return Cow::Borrowed(text);
    }
    let folded = autosync_model::dn::folded(text);
    if folded == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(folded)
    }
}

/// Whether `text` is its own [`fold_dn`], seen without parsing it: lower
/// case ASCII letters, digits and `,=.-_@` only, at most one `=` between
/// two commas (no space, escape, multi-valued RDN nor `=` in a value).
/// The usual folded key, as the engine asks and the index holds it.
fn plain_dn(text: &str) -> bool {
    text.bytes().all(|b| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b',' | b'=' | b'.' | b'-' | b'_' | b'@')
    }) && text
        .split(',')
        .all(|part| part.bytes().filter(|b| *b == b'=').count() <= 1)
}

/// Call `f` with each text a join index holds for `value` (and that a
/// lookup of `value` compares): each value of a multi-value; a string
/// folded by [`fold_case`], any other value as [`Value::to_text`] renders
/// it. Stops at the first `false`; returns `None` when there was no text
/// (an empty multi-value), else whether every call returned `true`.
pub fn join_texts(value: &Value, f: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
    match value {
        Value::String(s) => Some(with_folded(s, f)),
        Value::Multi(vs) => {
            let mut any = None;
            for v in vs {
                match join_texts(v, f) {
                    Some(false) => return Some(false),
                    Some(true) => any = Some(true),
                    None => {}
                }
            }
            any
        }
        other => Some(f(&other.to_text())),
    }
}

thread_local! {
    /// The buffer [`with_folded`] folds ASCII text in.
    static FOLDED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// `f` of [`fold_case`]`(text)`; short ASCII text is folded in a buffer
/// kept by the thread, without an allocation or a UTF-8 check (the join
/// lookups of a sync do this several times per object).
fn with_folded(text: &str, f: &mut dyn FnMut(&str) -> bool) -> bool {
    /// Longer text is folded in a buffer of its own (the thread's stays small).
    const KEPT: usize = 256;
    if text.len() > KEPT || !text.is_ascii() {
        return f(&fold_case(text));
    }
    FOLDED.with(|buf| match buf.try_borrow_mut() {
        Ok(mut folded) => {
            folded.clear();
            folded.push_str(text);
            folded.make_ascii_lowercase();
            f(&folded)
        }
        // `f` folds a text itself.
        Err(_) => f(&text.to_ascii_lowercase()),
    })
}

/// How the keys of a derived join index are computed from a metaverse
/// object (the engine's `mv_expr` of a join condition). The store calls it
/// whenever it writes an object of the index's type, and for every stored
/// object when the index is declared.
pub trait MvKeyDerive: Send + Sync {
    /// The attributes it reads: the store decodes only these when it
    /// computes the keys a stored object had.
    fn reads(&self) -> &[String];
    /// The key value of `obj` (each value of a multi-value is a key; the
    /// store folds them as [`join_texts`] says); `None`: no key.
    fn derive(&self, obj: &MvObject) -> Option<Value>;
}

/// One join index [`StoreRead::mv_find`] serves: the metaverse objects of
/// `object_type` by the values of attribute `key`, or, with `derive`, by
/// the values it computes (then `key` is only the index's name, unique per
/// type, that lookups give; a changed computation needs a new name).
#[derive(Clone)]
pub struct MvIndexDef {
    pub object_type: String,
    pub key: String,
    pub derive: Option<Arc<dyn MvKeyDerive>>,
}

impl MvIndexDef {
    /// An index of an attribute's own values.
    pub fn attribute(object_type: &str, attr: &str) -> Self {
        MvIndexDef {
            object_type: object_type.to_owned(),
            key: attr.to_owned(),
            derive: None,
        }
    }

    /// An index of the values `derive` computes, named `key`.
    pub fn derived(object_type: &str, key: &str, derive: Arc<dyn MvKeyDerive>) -> Self {
        MvIndexDef {
            object_type: object_type.to_owned(),
            key: key.to_owned(),
            derive: Some(derive),
        }
    }
}

impl std::fmt::Debug for MvIndexDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MvIndexDef")
            .field("object_type", &self.object_type)
            .field("key", &self.key)
            .field("derived", &self.derive.is_some())
            .finish()
    }
}

impl PartialEq for MvIndexDef {
    /// Same type, name and kind (two derived indexes of one name are
    /// taken to compute the same keys).
    fn eq(&self, other: &Self) -> bool {
        self.object_type == other.object_type
            && self.key == other.key
            && self.derive.is_some() == other.derive.is_some()
    }
}

/// How references spell a connector (see [`StoreRead::cs_spellings_by_mvs`]):
/// the metaverse object it is joined to, its id, anchor and DN, and its
/// pending export's kind and new DN, if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsSpelling {
    pub mv_id: MvId,
    pub id: CsId,
    pub anchor: String,
    pub dn: String,
    pub pending: Option<(ExportKind, Option<String>)>,
}

/// Counts of one MA's connector space, for reconciliation and status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsCounts {
    pub total: u64,
    pub pending_import: u64,
    pub pending_export: u64,
    pub unconfirmed_export: u64,
    pub errors: u64,
}

/// How a connector that left a metaverse object was named on its MA (see
/// [`StoreTxn::ref_touched_names_add`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefName {
    pub ma: String,
    pub anchor: String,
    pub dn: String,
}

/// A reference of a connector-space object that names an object not there
/// (yet), or not joined: attribute `attr` names the object of MA `ma`
/// whose anchor is `key` (or, `by_dn`, whose DN is `key`, folded as
/// [`fold_dn`] folds it; the store folds it when it writes the wait).
/// Kept until the referrer's references are worked out again;
/// [`StoreRead::ref_in_ready`] finds those whose object came.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefWait {
    pub attr: String,
    pub ma: String,
    pub key: String,
    pub by_dn: bool,
}

/// The objects the outbound references of one metaverse object to one
/// target MA wait for, each with the MA it waits for a connector on
/// ([`StoreTxn::ref_out_waits_take`]): an id and the MA's place in a short
/// list each, so that a group of a million members not yet exported waits
/// in 16 bytes a member, not in a string each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutWaitTargets {
    vias: Vec<String>,
    targets: Vec<(MvId, usize)>,
}

impl OutWaitTargets {
    /// Wait for `target` to have a connector on `via`.
    pub fn push(&mut self, target: MvId, via: &str) {
        let i = match self.vias.iter().position(|v| v == via) {
            Some(i) => i,
            None => {
                self.vias.push(via.to_owned());
                self.vias.len() - 1
            }
        };
        self.targets.push((target, i));
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// The MAs waited on, each with its place (as [`Self::targets`] names
    /// it).
    pub fn vias(&self) -> impl Iterator<Item = (usize, &str)> {
        self.vias.iter().map(String::as_str).enumerate()
    }

    /// Each target with the place of its MA in [`Self::vias`].
    pub fn targets(&self) -> &[(MvId, usize)] {
        &self.targets
    }
}

impl<S: AsRef<str>> FromIterator<(MvId, S)> for OutWaitTargets {
    fn from_iter<I: IntoIterator<Item = (MvId, S)>>(iter: I) -> Self {
        let mut out = OutWaitTargets::default();
        for (target, via) in iter {
            out.push(target, via.as_ref());
        }
        out
    }
}

/// The multi-valued attributes a store keeps one row per value
/// ([`Store::set_value_rows`]): a group's `members`, whose one-member
/// change then costs one row, not the whole group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueRows {
    /// Per MA: the hologram attributes kept as rows (never a pending
    /// import or export's, which stay in the body).
    pub cs: BTreeMap<String, BTreeSet<String>>,
    /// Per metaverse object type: the attributes kept as rows (the
    /// contributor stays in the body).
    pub mv: BTreeMap<String, BTreeSet<String>>,
}

/// The values of a multi-valued attribute as a list (a single value is a
/// list of one, an absent attribute or an empty value none): what the
/// default value methods of [`StoreRead`] read from whole objects.
fn listed(v: Option<&Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Multi(vs)) => vs.clone(),
        Some(v) if v.is_empty() => Vec::new(),
        Some(v) => vec![v.clone()],
    }
}

mod read;
mod write;

pub use read::StoreRead;
pub use write::{Store, StoreTxn};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_texts_should_fold_every_string_as_fold_case_does() {
        let long = "A".repeat(100);
        for text in [
            "E10001",
            "e10001",
            "Ada@Example.COM",
            "ÜNAL",
            "ΟΔΟΣ",
            &long,
            "",
        ] {
            let mut seen = Vec::new();
            join_texts(&Value::from(text), &mut |t| {
                seen.push(t.to_owned());
                true
            });
            assert_eq!(seen, [fold_case(text).into_owned()], "{text}");
            assert_eq!(fold_case(text), text.to_lowercase(), "{text}");
        }
        assert!(matches!(fold_case("already lower"), Cow::Borrowed(_)));
    }
}
