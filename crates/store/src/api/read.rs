//! The store contract's reads ([`StoreRead`]).

use super::{CsCounts, CsFilter, CsSpelling, MvQuery, RefName, RefWait, StoreResult, listed};
use autosync_model::{
    CsId, CsObject, ExportKind, MvId, MvObject, RunChange, RunId, RunObjectError, RunRecord, Value,
};

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
    /// [`Store::set_dn_index`](super::Store::set_dn_index)) whose DN is one of `dns`, ignoring case:
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
    /// The anchors of the objects of `ma` that are one of `anchors`
    /// ignoring case ([`fold_case`](crate::fold_case)), each once, in no
    /// particular order (an anchor asked that is there is listed too): what
    /// says that a reference by anchor, which compares exactly, misses an
    /// object only by case. A store may read them from its index alone.
    fn cs_anchors_ignoring_case(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<String>> {
        let wanted: std::collections::HashSet<String> = anchors
            .iter()
            .map(|a| crate::fold_case(a).into_owned())
            .collect();
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.cs_page_light(ma, CsFilter::All, after, 10_000)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = last.id;
            out.extend(
                page.into_iter()
                    .filter(|o| wanted.contains(crate::fold_case(&o.anchor).as_ref()))
                    .map(|o| o.anchor),
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
    /// The values the connector-space objects of `ma` keep in value rows
    /// (their multi-valued references); a store without value rows
    /// answers 0.
    fn cs_ma_values_count(&mut self, _ma: &str) -> StoreResult<u64> {
        Ok(0)
    }
    /// The names of the MAs that have a connector space (any object), in
    /// name order: what a configuration that no longer names one left
    /// behind. A store that cannot list them answers none.
    fn cs_mas(&mut self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
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
            CsFilter::Unjoined => {
                let (mut after, mut n) = (0, 0u64);
                loop {
                    let ids = self.cs_page_ids(ma, filter, after, 10_000)?;
                    let Some(last) = ids.last() else {
                        return Ok(n);
                    };
                    after = *last;
                    n += ids.len() as u64;
                }
            }
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
    /// The ids of the objects of `ma` whose pending export is of kind
    /// `kind`, `id > after` in id order, at most `limit` (a store may read
    /// each object only as far as its pending export's kind): what an
    /// approval of an export's deletes records.
    fn cs_pending_export_ids(
        &mut self,
        ma: &str,
        kind: ExportKind,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        const PAGE: usize = 1000;
        let (mut after, mut out) = (after, Vec::new());
        while out.len() < limit {
            let page = self.cs_page(ma, CsFilter::PendingExport, after, PAGE)?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            out.extend(
                page.iter()
                    .filter(|o| o.pending_export.as_ref().is_some_and(|p| p.kind == kind))
                    .map(|o| o.id),
            );
        }
        out.truncate(limit);
        Ok(out)
    }

    /// [`StoreRead::cs_get`], light: a hologram attribute the store keeps
    /// as rows ([`Store::set_value_rows`](super::Store::set_value_rows)) that has rows is the placeholder
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
    /// [`Self::cs_values_count`], counted up to `cap` at most: whether
    /// a large group has more values than some, without counting it whole.
    fn cs_values_count_upto(&mut self, id: CsId, attr: &str, cap: u64) -> StoreResult<u64> {
        Ok(self.cs_values_count(id, attr)?.min(cap))
    }

    fn mv_get(&mut self, id: MvId) -> StoreResult<Option<MvObject>>;
    /// [`StoreRead::mv_get`], light: a metaverse attribute kept as rows
    /// ([`Store::set_value_rows`](super::Store::set_value_rows)) that has rows is the placeholder
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
    /// [`Self::mv_values_count`], counted up to `cap` at most.
    fn mv_values_count_upto(&mut self, id: MvId, attr: &str, cap: u64) -> StoreResult<u64> {
        Ok(self.mv_values_count(id, attr)?.min(cap))
    }
    /// Batch lookup; missing ids are absent from the result.
    fn mv_get_many(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>>;
    /// MV objects of `object_type` whose join index `attr` (an attribute,
    /// or a derived index's name) holds `value`: compared as text, strings
    /// ignoring case ([`join_texts`](super::join_texts)); any value of a multi-valued
    /// attribute or of `value` matches. `attr` must be indexed (see
    /// [`Store::set_mv_index`](super::Store::set_mv_index)), or an attribute of `object_type` kept as
    /// rows ([`Store::set_value_rows`](super::Store::set_value_rows)): then the rows answer, index or
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
    /// The connectors of `ma` whose metaverse object's references exported
    /// to `ma` wait (for a connector of the object they name),
    /// `id > after` in id order, at most `limit`.
    fn ref_out_waiting_page(
        &mut self,
        ma: &str,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>>;
    /// How many connectors of `ma` [`Self::ref_out_waiting_page`] lists.
    fn ref_out_waiting_count(&mut self, ma: &str) -> StoreResult<u64>;
    /// What the references of metaverse object `mv_id` exported to `ma`
    /// wait for: each referred metaverse object and the MA it waits for a
    /// connector on, sorted.
    fn ref_out_waits_of(&mut self, mv_id: MvId, ma: &str) -> StoreResult<Vec<(MvId, String)>>;
    /// The connector-space objects with a waiting reference whose object is
    /// now there and joined (its wait is over), in id order.
    fn ref_in_ready(&mut self) -> StoreResult<Vec<CsId>>;
    /// The metaverse objects with a reference that waits for a connector on
    /// a target MA that the referred object now has, in id order: on the
    /// MA the reference is exported to, any; on another MA (whose export
    /// runs apart), one whose add was sent.
    ///
    /// Only the waits for objects one of whose connectors was written
    /// (added, joined, its pending export changed or sent) since the wait
    /// was, and since the last
    /// [`StoreTxn::ref_out_due_clear`](super::StoreTxn::ref_out_due_clear),
    /// are looked at: a wait is written only for an object with no such
    /// connector yet, and its end comes with a write of one.
    fn ref_out_ready(&mut self) -> StoreResult<Vec<MvId>>;
    /// How many metaverse objects have a reference that waits for a
    /// connector on `via` that is there with nothing left to export (its
    /// add was sent); among the waits `ref_out_ready` looks at.
    fn ref_out_sendable_count(&mut self, via: &str) -> StoreResult<u64>;
    /// The metaverse objects whose referrers are to be worked out again,
    /// each with whether it was deleted, in id order (see
    /// [`StoreTxn::ref_touched_add`](super::StoreTxn::ref_touched_add)).
    fn ref_touched(&mut self) -> StoreResult<Vec<(MvId, bool)>>;
    /// The names noted with noted object `id`
    /// ([`StoreTxn::ref_touched_names_add`](super::StoreTxn::ref_touched_names_add)),
    /// sorted.
    fn ref_touched_names(&mut self, id: MvId) -> StoreResult<Vec<RefName>> {
        let _ = id;
        Ok(Vec::new())
    }
    /// How many noted objects have a name noted on `ma` (a connector of
    /// theirs there left, and no sync has worked out their referrers yet).
    fn ref_touched_names_count(&mut self, ma: &str) -> StoreResult<u64> {
        let _ = ma;
        Ok(0)
    }
    /// The metaverse objects with a reference that waits on some target
    /// MA, in id order.
    fn ref_out_waiting(&mut self) -> StoreResult<Vec<MvId>>;
}
