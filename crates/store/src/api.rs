//! The store contract.

use autosync_model::{
    CsId, CsObject, ExportKind, MvId, MvObject, RunChange, RunId, RunObjectError, RunRecord, Value,
    ValueDelta,
};
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

/// A reference of a connector-space object that names an object not there
/// (yet), or not joined: attribute `attr` names the object of MA `ma`
/// whose anchor is `key` (or, `by_dn`, whose DN is `key`, folded as
/// [`fold_case`] folds it). Kept until the referrer's references are
/// worked out again; [`StoreRead::ref_in_ready`] finds those whose object
/// came.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefWait {
    pub attr: String,
    pub ma: String,
    pub key: String,
    pub by_dn: bool,
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

/// Reads. Available on the store itself (a consistent snapshot per call) and
/// inside a transaction (sees the transaction's own writes).
pub trait StoreRead {
    fn cs_get(&mut self, id: CsId) -> StoreResult<Option<CsObject>>;
    fn cs_by_anchor(&mut self, ma: &str, anchor: &str) -> StoreResult<Option<CsObject>>;
    /// Batch lookup by anchor; objects that do not exist are absent from the
    /// result (order not guaranteed).
    fn cs_by_anchors(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>>;
    /// Objects of `ma` matching `filter` with `id > after`, in id order, at
    /// most `limit`.
    fn cs_page(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>>;
    /// The ids [`StoreRead::cs_page`] would return, without reading the
    /// objects (cheap: a store may serve it from an index alone).
    fn cs_page_ids(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        Ok(self
            .cs_page(ma, filter, after, limit)?
            .into_iter()
            .map(|o| o.id)
            .collect())
    }
    /// The metaverse objects the objects of `ma` with these anchors are
    /// joined to (`(anchor, mv_id)`; an object not there or not joined is
    /// absent), read from the index alone: what resolving a reference needs.
    fn cs_joined_by_anchors(
        &mut self,
        ma: &str,
        anchors: &[&str],
    ) -> StoreResult<Vec<(String, MvId)>> {
        Ok(self
            .cs_by_anchors(ma, anchors)?
            .into_iter()
            .filter_map(|o| match o.connection.mv_id() {
                Some(id) => Some((o.anchor, id)),
                None => None,
            })
            .collect())
    }
    /// The objects of `ma` (an MA with a DN index, see
    /// [`Store::set_dn_index`]) whose DN is one of `dns`, ignoring case:
    /// each `(folded DN, object, the metaverse object it is joined to)`.
    /// Two objects of one DN are both listed.
    fn cs_joined_by_dns(
        &mut self,
        ma: &str,
        dns: &[&str],
    ) -> StoreResult<Vec<(String, CsId, Option<MvId>)>>;
    /// Every object of `ma` joined to a metaverse object, as `(anchor,
    /// mv_id)`, read from the index alone: what resolving many references
    /// at once needs (one pass instead of one lookup each).
    fn cs_joined_of_ma(&mut self, ma: &str) -> StoreResult<Vec<(String, MvId)>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.cs_page(ma, CsFilter::All, after, 10_000)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = last.id;
            out.extend(
                page.into_iter()
                    .filter_map(|o| o.connection.mv_id().map(|m| (o.anchor, m))),
            );
        }
    }
    /// How references spell every connector of `ma` (see
    /// [`StoreRead::cs_spellings_by_mvs`]), in no particular order.
    fn cs_spellings_of_ma(&mut self, ma: &str) -> StoreResult<Vec<CsSpelling>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.cs_page(ma, CsFilter::All, after, 10_000)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = last.id;
            out.extend(page.into_iter().filter_map(|o| {
                Some(CsSpelling {
                    mv_id: o.connection.mv_id()?,
                    id: o.id,
                    pending: o.pending_export.map(|p| (p.kind, p.new_dn)),
                    anchor: o.anchor,
                    dn: o.dn,
                })
            }));
        }
    }
    /// How references spell the connectors of `ma` joined to any of
    /// `mv_ids`, without reading their attributes: each [`CsSpelling`], in
    /// no particular order.
    fn cs_spellings_by_mvs(&mut self, ma: &str, mv_ids: &[MvId]) -> StoreResult<Vec<CsSpelling>> {
        Ok(self
            .cs_by_mvs(mv_ids)?
            .into_iter()
            .filter(|o| o.ma == ma)
            .filter_map(|o| {
                let mv_id = o.connection.mv_id()?;
                Some(CsSpelling {
                    mv_id,
                    id: o.id,
                    pending: o.pending_export.map(|p| (p.kind, p.new_dn)),
                    anchor: o.anchor,
                    dn: o.dn,
                })
            })
            .collect())
    }
    /// Every connector (on any MA) joined to this MV object.
    fn cs_by_mv(&mut self, mv_id: MvId) -> StoreResult<Vec<CsObject>>;
    /// [`StoreRead::cs_by_mv`] for many MV objects at once (a page of
    /// them): every connector joined to any of `mv_ids`, in id order.
    fn cs_by_mvs(&mut self, mv_ids: &[MvId]) -> StoreResult<Vec<CsObject>> {
        let mut out = Vec::new();
        for id in mv_ids {
            out.extend(self.cs_by_mv(*id)?);
        }
        out.sort_unstable_by_key(|o| o.id);
        Ok(out)
    }
    fn cs_counts(&mut self, ma: &str) -> StoreResult<CsCounts>;
    /// One figure of [`StoreRead::cs_counts`]: the objects of `ma` that
    /// `filter` lists (a store may count one for a fraction of the cost of
    /// all five).
    fn cs_count(&mut self, ma: &str, filter: CsFilter) -> StoreResult<u64> {
        let c = self.cs_counts(ma)?;
        Ok(match filter {
            CsFilter::All => c.total,
            CsFilter::PendingImport => c.pending_import,
            CsFilter::PendingExport => c.pending_export,
            CsFilter::UnconfirmedExport => c.unconfirmed_export,
            CsFilter::Errors => c.errors,
        })
    }
    /// The objects of `ma` whose pending export is of kind `kind` (a store
    /// may count them without reading whole objects).
    fn cs_pending_export_count(&mut self, ma: &str, kind: ExportKind) -> StoreResult<u64> {
        const PAGE: usize = 1000;
        let (mut after, mut n) = (0, 0);
        loop {
            let page = self.cs_page(ma, CsFilter::PendingExport, after, PAGE)?;
            let Some(last) = page.last() else {
                return Ok(n);
            };
            after = last.id;
            n += page
                .iter()
                .filter(|o| o.pending_export.as_ref().is_some_and(|p| p.kind == kind))
                .count() as u64;
        }
    }

    /// [`StoreRead::cs_get`], light: a hologram attribute the store keeps
    /// as rows ([`Store::set_value_rows`]) that has rows is the placeholder
    /// `Value::Multi(vec![])`, its rows not read (see
    /// [`StoreRead::cs_values`]); one without rows is absent; one still in
    /// the body (a single value, or written before it was declared) is
    /// whole. Writing a light object back with the ordinary update keeps
    /// the rows as they are. A store without rows returns the whole object.
    fn cs_get_light(&mut self, id: CsId) -> StoreResult<Option<CsObject>> {
        self.cs_get(id)
    }
    /// [`StoreRead::cs_by_anchors`], light (see [`StoreRead::cs_get_light`]).
    fn cs_by_anchors_light(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>> {
        self.cs_by_anchors(ma, anchors)
    }
    /// [`StoreRead::cs_page`], light (see [`StoreRead::cs_get_light`]).
    fn cs_page_light(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        self.cs_page(ma, filter, after, limit)
    }
    /// [`StoreRead::cs_by_mvs`], light (see [`StoreRead::cs_get_light`]).
    fn cs_by_mvs_light(&mut self, mv_ids: &[MvId]) -> StoreResult<Vec<CsObject>> {
        self.cs_by_mvs(mv_ids)
    }
    /// The values of hologram attribute `attr` of object `id` kept as rows,
    /// in a stable order (none when it has no rows: an attribute held in
    /// the body is read with the object). A store without rows lists the
    /// attribute's values from the body.
    fn cs_values(&mut self, id: CsId, attr: &str) -> StoreResult<Vec<Value>> {
        Ok(self
            .cs_get(id)?
            .map(|o| listed(o.hologram.get(attr)))
            .unwrap_or_default())
    }
    /// Whether each of `values` is one of [`StoreRead::cs_values`]
    /// (compared exactly), without reading the others.
    fn cs_values_present(
        &mut self,
        id: CsId,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<bool>> {
        let have = self.cs_values(id, attr)?;
        Ok(values.iter().map(|v| have.contains(v)).collect())
    }
    /// How many values [`StoreRead::cs_values`] lists, without reading them.
    fn cs_values_count(&mut self, id: CsId, attr: &str) -> StoreResult<u64> {
        Ok(self.cs_values(id, attr)?.len() as u64)
    }

    fn mv_get(&mut self, id: MvId) -> StoreResult<Option<MvObject>>;
    /// [`StoreRead::mv_get`], light: a metaverse attribute kept as rows
    /// ([`Store::set_value_rows`]) that has rows is the placeholder
    /// `MvValue { value: Value::Multi(vec![]), contributor }`, its rows not
    /// read (see [`StoreRead::mv_values`]); otherwise as
    /// [`StoreRead::cs_get_light`].
    fn mv_get_light(&mut self, id: MvId) -> StoreResult<Option<MvObject>> {
        self.mv_get(id)
    }
    /// [`StoreRead::mv_get_many`], light (see [`StoreRead::mv_get_light`]).
    fn mv_get_many_light(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>> {
        self.mv_get_many(ids)
    }
    /// The values of attribute `attr` of metaverse object `id` kept as
    /// rows (see [`StoreRead::cs_values`]).
    fn mv_values(&mut self, id: MvId, attr: &str) -> StoreResult<Vec<Value>> {
        Ok(self
            .mv_get(id)?
            .map(|o| listed(o.get(attr)))
            .unwrap_or_default())
    }
    /// Whether each of `values` is one of [`StoreRead::mv_values`].
    fn mv_values_present(
        &mut self,
        id: MvId,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<bool>> {
        let have = self.mv_values(id, attr)?;
        Ok(values.iter().map(|v| have.contains(v)).collect())
    }
    /// How many values [`StoreRead::mv_values`] lists.
    fn mv_values_count(&mut self, id: MvId, attr: &str) -> StoreResult<u64> {
        Ok(self.mv_values(id, attr)?.len() as u64)
    }
    /// Batch lookup; missing ids are absent from the result.
    fn mv_get_many(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>>;
    /// MV objects of `object_type` whose join index `attr` (an attribute,
    /// or a derived index's name) holds `value`: compared as text, strings
    /// ignoring case ([`join_texts`]); any value of a multi-valued
    /// attribute or of `value` matches. `attr` must be indexed (see
    /// [`Store::set_mv_index`]), or an attribute of `object_type` kept as
    /// rows ([`Store::set_value_rows`]): then the rows answer, index or
    /// not, and values compare exactly (as stored; each value of a
    /// multi-valued `value`), whether the object holds `value` as a row or
    /// as a single value in its body.
    fn mv_find(&mut self, object_type: &str, attr: &str, value: &Value) -> StoreResult<Vec<MvId>>;
    /// [`StoreRead::mv_find`] for many values at once: `(i, id)` for each
    /// metaverse object `id` that `values[i]` finds (order not guaranteed).
    fn mv_find_many(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            out.extend(
                self.mv_find(object_type, attr, v)?
                    .into_iter()
                    .map(|id| (i, id)),
            );
        }
        Ok(out)
    }
    /// MV objects matching `query` with `id > after`, in id order, at
    /// most `limit`.
    fn mv_page(&mut self, query: &MvQuery, after: MvId, limit: usize)
    -> StoreResult<Vec<MvObject>>;
    /// The ids [`StoreRead::mv_page`] would return (a store may serve them
    /// without reading the objects, as to skip the first pages of a
    /// listing).
    fn mv_page_ids(
        &mut self,
        query: &MvQuery,
        after: MvId,
        limit: usize,
    ) -> StoreResult<Vec<MvId>> {
        Ok(self
            .mv_page(query, after, limit)?
            .into_iter()
            .map(|o| o.id)
            .collect())
    }
    fn mv_count(&mut self, object_type: Option<&str>) -> StoreResult<u64>;

    fn watermark(&mut self, ma: &str) -> StoreResult<Option<String>>;

    fn run_get(&mut self, id: RunId) -> StoreResult<Option<RunRecord>>;
    /// Most recent first.
    fn runs(&mut self, ma: Option<&str>, limit: usize) -> StoreResult<Vec<RunRecord>>;
    /// [`StoreRead::runs`] without the `offset` most recent: a page of the
    /// history. The default reads the skipped runs too; a store should
    /// skip them without decoding them (the SQLite store does).
    fn runs_page(
        &mut self,
        ma: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<RunRecord>> {
        let mut runs = self.runs(ma, offset.saturating_add(limit))?;
        runs.drain(..offset.min(runs.len()));
        Ok(runs)
    }
    /// How many runs [`StoreRead::runs`] can list (of `ma`, or of all).
    /// The default lists them; a store should count them.
    fn run_count(&mut self, ma: Option<&str>) -> StoreResult<u64> {
        Ok(self.runs(ma, usize::MAX)?.len() as u64)
    }
    /// Per-object errors recorded with a run, at most `limit`.
    fn run_errors(&mut self, run_id: RunId, limit: usize) -> StoreResult<Vec<RunObjectError>>;
    /// Per-object changes recorded with a run, in the order they were
    /// recorded, without the first `offset`, at most `limit`.
    fn run_changes(
        &mut self,
        run_id: RunId,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<RunChange>>;
    /// How many per-object changes are recorded with a run.
    fn run_change_count(&mut self, run_id: RunId) -> StoreResult<u64>;

    /// A small named value (approvals, configuration fingerprints, ...).
    fn meta(&mut self, key: &str) -> StoreResult<Option<String>>;

    /// The references of connector-space object `cs_id` that wait for the
    /// object they name, sorted.
    fn ref_waits_of(&mut self, cs_id: CsId) -> StoreResult<Vec<RefWait>>;
    /// The objects of `ma` with a reference that waits, `id > after` in id
    /// order, at most `limit`.
    fn ref_waiting_page(&mut self, ma: &str, after: CsId, limit: usize) -> StoreResult<Vec<CsId>>;
    /// How many objects of `ma` have a reference that waits.
    fn ref_waiting_count(&mut self, ma: &str) -> StoreResult<u64>;
    /// The connector-space objects with a waiting reference whose object is
    /// now there and joined (its wait is over), in id order.
    fn ref_in_ready(&mut self) -> StoreResult<Vec<CsId>>;
    /// The metaverse objects with a reference that waits for a connector on
    /// a target MA that the referred object now has, in id order: on the
    /// MA the reference is exported to, any; on another MA (whose export
    /// runs apart), one whose add was sent.
    fn ref_out_ready(&mut self) -> StoreResult<Vec<MvId>>;
    /// How many metaverse objects have a reference that waits for a
    /// connector on `via` that is there with nothing left to export (its
    /// add was sent).
    fn ref_out_sendable_count(&mut self, via: &str) -> StoreResult<u64>;
    /// The metaverse objects whose referrers are to be worked out again,
    /// each with whether it was deleted, in id order (see
    /// [`StoreTxn::ref_touched_add`]).
    fn ref_touched(&mut self) -> StoreResult<Vec<(MvId, bool)>>;
    /// The metaverse objects with a reference that waits on some target
    /// MA, in id order.
    fn ref_out_waiting(&mut self) -> StoreResult<Vec<MvId>>;
}

/// Writes, all or nothing.
pub trait StoreTxn: StoreRead {
    /// Insert; sets `obj.id`. Fails if (ma, anchor) exists.
    fn cs_insert(&mut self, obj: &mut CsObject) -> StoreResult<()>;
    /// Replace the stored object with this id.
    fn cs_update(&mut self, obj: &CsObject) -> StoreResult<()>;
    fn cs_delete(&mut self, id: CsId) -> StoreResult<()>;

    /// [`StoreTxn::cs_insert`] of an object the caller gives away: returns
    /// its id. A store that queues writes keeps the object without a copy.
    fn cs_insert_owned(&mut self, mut obj: CsObject) -> StoreResult<CsId> {
        self.cs_insert(&mut obj)?;
        Ok(obj.id)
    }
    /// [`StoreTxn::cs_update`] of an object the caller gives away.
    fn cs_update_owned(&mut self, obj: CsObject) -> StoreResult<()> {
        self.cs_update(&obj)
    }

    /// Insert; sets `obj.id`.
    fn mv_insert(&mut self, obj: &mut MvObject) -> StoreResult<()>;
    fn mv_update(&mut self, obj: &MvObject) -> StoreResult<()>;
    fn mv_delete(&mut self, id: MvId) -> StoreResult<()>;

    /// [`StoreTxn::mv_insert`] of an object the caller gives away: returns
    /// its id.
    fn mv_insert_owned(&mut self, mut obj: MvObject) -> StoreResult<MvId> {
        self.mv_insert(&mut obj)?;
        Ok(obj.id)
    }
    /// [`StoreTxn::mv_update`] of an object the caller gives away.
    fn mv_update_owned(&mut self, obj: MvObject) -> StoreResult<()> {
        self.mv_update(&obj)
    }

    /// Change the rows of hologram attribute `attr` of object `id` (an
    /// attribute some [`Store::set_value_rows`] declared): insert each value
    /// of `delta.add` (one already there stays one), delete each of
    /// `delta.remove` (one not there is ignored), at a cost in proportion
    /// to the change. Only the rows: the body is not read or written, so
    /// the caller keeps the placeholder of its light object in step (there
    /// iff rows are left) and writes the object back. An attribute held in
    /// the body (a single value) is changed by writing its whole value.
    /// A store without rows changes the attribute in the body.
    fn cs_values_change(&mut self, id: CsId, attr: &str, delta: &ValueDelta) -> StoreResult<()> {
        let Some(mut o) = self.cs_get(id)? else {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("connector-space object {id} does not exist"),
            ));
        };
        match delta.apply_to(o.hologram.get(attr)) {
            Some(v) => o.hologram.insert(attr.to_owned(), v),
            None => o.hologram.remove(attr),
        };
        self.cs_update_owned(o)
    }
    /// [`StoreTxn::cs_values_change`] of metaverse attribute `attr`.
    fn mv_values_change(&mut self, id: MvId, attr: &str, delta: &ValueDelta) -> StoreResult<()> {
        let Some(mut o) = self.mv_get(id)? else {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("metaverse object {id} does not exist"),
            ));
        };
        let contributor = o
            .attributes
            .get(attr)
            .map(|v| v.contributor.clone())
            .unwrap_or_default();
        match delta.apply_to(o.get(attr)) {
            Some(value) => o.attributes.insert(
                attr.to_owned(),
                autosync_model::MvValue { value, contributor },
            ),
            None => o.attributes.remove(attr),
        };
        self.mv_update_owned(o)
    }

    fn set_watermark(&mut self, ma: &str, watermark: Option<&str>) -> StoreResult<()>;

    /// Insert; sets `run.id`.
    fn run_insert(&mut self, run: &mut RunRecord) -> StoreResult<()>;
    fn run_update(&mut self, run: &RunRecord) -> StoreResult<()>;
    fn run_errors_insert(&mut self, errors: &[RunObjectError]) -> StoreResult<()>;
    /// Record per-object changes with their runs (each `RunChange::run_id`).
    fn run_changes_insert(&mut self, changes: &[RunChange]) -> StoreResult<()>;

    fn set_meta(&mut self, key: &str, value: Option<&str>) -> StoreResult<()>;

    /// Replace the waiting references of connector-space object `cs_id`
    /// (none: it has none).
    fn ref_waits_set(&mut self, cs_id: CsId, waits: &[RefWait]) -> StoreResult<()>;
    /// Replace the references of metaverse object `mv_id` that wait on
    /// target MA `ma` (`ma` empty: on every MA, as when the object is
    /// deleted): each referred metaverse object and the MA it waits for a
    /// connector on (the target itself, or the MA the reference names).
    fn ref_out_waits_set(
        &mut self,
        mv_id: MvId,
        ma: &str,
        targets: &[(MvId, String)],
    ) -> StoreResult<()>;

    /// Note metaverse objects whose referrers are to be worked out again
    /// (`true`: it was deleted; a deletion noted stays noted).
    fn ref_touched_add(&mut self, touched: &[(MvId, bool)]) -> StoreResult<()>;
    /// Forget these noted objects (their referrers were worked out).
    fn ref_touched_clear(&mut self, ids: &[MvId]) -> StoreResult<()>;

    /// Make every write so far durable and go on in a new transaction
    /// (this same object): if anything later fails or the transaction is
    /// dropped, only the writes after the last `commit_so_far` are lost.
    ///
    /// A store may queue the commit and return at once (the SQLite store
    /// does in a bulk transaction, see [`Store::write_bulk`]). Then a
    /// failure of that commit, or a [`StoreErrorKind::Conflict`] (another
    /// process committed between the two parts, so what the next part read
    /// may be stale), is returned while the caller works on the next part:
    /// by a later call, at the latest by the next `commit_so_far` or by
    /// [`StoreTxn::commit`]. Either way the part the caller is working on
    /// when the error comes is the one lost; the parts before it are kept.
    fn commit_so_far(&mut self) -> StoreResult<()>;

    /// Make every write of this transaction durable. Dropping a transaction
    /// without committing discards its writes.
    fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// A store.
pub trait Store: Send + Sync {
    /// A read view (each call of its methods sees committed data).
    fn read(&self) -> StoreResult<Box<dyn StoreRead + '_>>;

    /// Begin a write transaction. Writers are serialised: keep
    /// transactions short (one batch).
    fn begin(&self) -> StoreResult<Box<dyn StoreTxn + '_>>;

    /// Run `work` in one write transaction, committed when `work` returns
    /// `Ok` and rolled back on `Err`: for large batches (a full
    /// synchronisation). A store may run the transaction's writes in the
    /// background while `work` goes on (the SQLite store does, on a second
    /// thread): reads inside `work` still see every earlier write of the
    /// transaction, but a write's failure may be returned by a later call
    /// or by the commit instead of by the write itself.
    fn write_bulk(
        &self,
        work: &mut dyn FnMut(&mut dyn StoreTxn) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut txn = self.begin()?;
        work(txn.as_mut())?;
        txn.commit()
    }

    /// Declare the join indexes `mv_find` must serve (every other is
    /// dropped). The store builds a new index from the existing objects
    /// and maintains it. A store opened by a process that has not declared
    /// its derived indexes refuses to write objects of their types.
    fn set_mv_index(&self, indexed: &[MvIndexDef]) -> StoreResult<()>;
    /// Keep an index of the DNs (ignoring case) of the objects of exactly
    /// these MAs, the ones references name by DN: built from what is
    /// stored when an MA is added, then kept with every write
    /// ([`StoreRead::cs_joined_by_dns`]).
    fn set_dn_index(&self, mas: &[&str]) -> StoreResult<()>;

    /// Declare the multi-valued attributes to keep one row per value, every
    /// other keeping its values in the object's body (called once at start,
    /// as [`Store::set_mv_index`]). A declared attribute whose value is a
    /// `Value::Multi` is written as rows: a non-empty one replaces its rows,
    /// the placeholder `Value::Multi(vec![])` (what light reads return)
    /// keeps them as they are, a single value or no value deletes them;
    /// deleting the object deletes them. Reads do not depend on the
    /// declaration: an object written with rows reads back whole after the
    /// declaration changed. A store may ignore it (keep every value in the
    /// body); the SQLite store keeps them.
    fn set_value_rows(&self, rows: &ValueRows) -> StoreResult<()> {
        let _ = rows;
        Ok(())
    }

    /// Names the configuration uses (attribute names, object types, MA
    /// names): a store may keep them in a dictionary and write a number in
    /// place of each in every object it stores. Only a hint: objects may
    /// hold any other name too, and a store may ignore it.
    fn declare_names(&self, names: &[&str]) -> StoreResult<()> {
        let _ = names;
        Ok(())
    }

    /// Sets meta value `key` to `new` (`None`: removes it) if it is
    /// `expected` now (`None`: absent), atomically: no write of `key` by
    /// any handle or process comes between the comparison and the set.
    /// `Ok(false)`, changing nothing, when it is not. Leases are built on
    /// it (see [`crate::lease`]).
    ///
    /// The default is one write transaction, right for a store whose
    /// writers are serialised from [`Store::begin`] on (SQLite's `BEGIN
    /// IMMEDIATE`); a store with concurrent writers compares in the write
    /// itself.
    fn compare_and_set_meta(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> StoreResult<bool> {
        let mut txn = self.begin()?;
        if txn.meta(key)?.as_deref() != expected {
            return Ok(false);
        }
        txn.set_meta(key, new)?;
        txn.commit()?;
        Ok(true)
    }

    /// Runs still marked `in-progress` (left by a crash); the caller closes
    /// them.
    fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>>;

    /// Delete run records (and their errors and changes) that ended before
    /// `before`.
    fn trim_runs(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64>;
}

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
