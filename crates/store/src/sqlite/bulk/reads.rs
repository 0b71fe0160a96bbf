//! Which reads of a bulk transaction the reader connection can answer:
//! what the transaction wrote ([`super::Touched`]), what the reader
//! returned (`db_known`, `absent`), and what the writer connection knows of
//! MAs and join-index keys filled from empty (`fresh`).

use super::{BulkTxn, ma_key};
use crate::api::{CsFilter, StoreRead, StoreResult};
use crate::sqlite::fresh::{cs_key, mv_text_key};
use crate::sqlite::mvindex;
use crate::sqlite::write::{KNOWN_MAX, Known};
use autosync_model::{CsId, CsObject, MvId, MvObject, Value};

impl BulkTxn<'_, '_> {
    /// `cs_by_anchors` (or, `light`, `cs_by_anchors_light`): the reader
    /// answers unless this transaction wrote one of the anchors or one of
    /// the objects found.
    pub(super) fn cs_by_anchors_as(
        &mut self,
        ma: &str,
        anchors: &[&str],
        light: bool,
    ) -> StoreResult<Vec<CsObject>> {
        if !anchors
            .iter()
            .any(|a| self.touched.cs_keys.contains(&cs_key(ma, a)))
        {
            if self.empty_at_begin(ma)? {
                return Ok(Vec::new());
            }
            let found = if light {
                self.reader.cs_by_anchors_light(ma, anchors)?
            } else {
                self.reader.cs_by_anchors(ma, anchors)?
            };
            if !self.any_cs_touched(&found) {
                self.note_db(&found);
                return Ok(found);
            }
        }
        let ma = ma.to_owned();
        let anchors: Vec<String> = anchors.iter().map(|a| (*a).to_owned()).collect();
        self.call(move |t| {
            let refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
            if light {
                t.cs_by_anchors_light(&ma, &refs)
            } else {
                t.cs_by_anchors(&ma, &refs)
            }
        })
    }

    /// `cs_page` (or, `light`, `cs_page_light`): after writes too, the
    /// reader answers when none of them could change the page.
    pub(super) fn cs_page_as(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
        light: bool,
    ) -> StoreResult<Vec<CsObject>> {
        if !self.touched.cs_page_differs(ma, after) {
            let page = if light {
                self.reader.cs_page_light(ma, filter, after, limit)?
            } else {
                self.reader.cs_page(ma, filter, after, limit)?
            };
            if !self.any_cs_touched(&page) {
                self.note_db(&page);
                return Ok(page);
            }
        }
        let ma = ma.to_owned();
        self.call(move |t| {
            if light {
                t.cs_page_light(&ma, filter, after, limit)
            } else {
                t.cs_page(&ma, filter, after, limit)
            }
        })
    }

    /// Whether `ma` had no connector-space object at the begin (asked once
    /// per transaction and MA, on the reader, which sees the begin state).
    pub(super) fn empty_at_begin(&mut self, ma: &str) -> StoreResult<bool> {
        if let Some(empty) = self.empty_at_begin.get(ma) {
            return Ok(*empty);
        }
        let empty = !self.reader.ctx().cs_any(ma)?;
        self.empty_at_begin.insert(ma.to_owned(), empty);
        // Known from now on only if this transaction wrote nothing to it
        // yet (what it wrote before is in `touched`, not in `fresh`).
        if empty
            && !self.touched.cs_ma_max.contains_key(&ma_key(ma))
            && let Some(f) = &mut self.fresh
        {
            f.add_empty(ma);
        }
        Ok(empty)
    }

    /// Whether `ma` surely holds no object whose (MA, anchor) hash is
    /// `key`, other than one this transaction wrote (the caller checks
    /// `touched` first).
    pub(super) fn surely_absent(&mut self, ma: &str, key: u64) -> StoreResult<bool> {
        match &self.fresh {
            Some(f) if f.knows(ma) => Ok(!f.may_hold(key)),
            _ => self.empty_at_begin(ma),
        }
    }

    pub(super) fn note_db(&mut self, objs: &[CsObject]) {
        if self.db_known.len() + objs.len() > KNOWN_MAX {
            return;
        }
        for o in objs {
            self.db_known.insert(o.id, Known::of(o));
        }
    }

    pub(super) fn any_cs_touched(&self, objs: &[CsObject]) -> bool {
        objs.iter().any(|o| self.touched.cs_written(o.id))
    }

    /// Note `obj` (whose `cs_key` is `key`) written.
    pub(super) fn note_cs_written(&mut self, obj: &CsObject, key: u64) {
        self.touched.note_cs(obj.id);
        self.touched.cs_keys.insert(key);
        if let Some(f) = &mut self.fresh
            && !f.wrote(&obj.ma, key)
        {
            self.fresh = None;
        }
        let max = self.touched.cs_ma_max.entry(ma_key(&obj.ma)).or_default();
        *max = (*max).max(obj.id);
        if let Some(m) = obj.connection.mv_id()
            && m < self.touched.mv_start
        {
            self.touched.cs_mv.insert(m);
        }
    }

    pub(super) fn note_mv_written(&mut self, obj: &MvObject) -> StoreResult<()> {
        self.touched.note_mv(obj.id);
        if self.defs.has_type(&obj.object_type) {
            self.defs.keys_of(obj, self.path, &mut self.keys)?;
            for (k, text) in &self.keys {
                let key = mv_text_key(*k, text);
                self.touched.mv_keys.insert(key);
                self.mv_ks_written.insert(*k);
                if let Some(f) = &mut self.fresh
                    && !f.wrote_mv(*k, key)
                {
                    self.fresh = None;
                }
            }
        }
        Ok(())
    }

    /// Whether every text metaverse index key `k` holds, in the store or
    /// written by this transaction, is in the fresh knowledge (asked once
    /// per transaction and key, on the reader, which sees the begin state).
    pub(super) fn mv_known(&mut self, k: i64) -> StoreResult<bool> {
        if self.fresh.as_ref().is_some_and(|f| f.knows_mv(k)) {
            return Ok(true);
        }
        let empty = match self.mv_empty_at_begin.get(&k) {
            Some(e) => *e,
            None => {
                let e = !self.reader.ctx().mv_key_any(k)?;
                self.mv_empty_at_begin.insert(k, e);
                e
            }
        };
        // Known from now on only if this transaction wrote nothing to it
        // yet (what it wrote before is in `touched`, not in `fresh`).
        if empty
            && !self.mv_ks_written.contains(&k)
            && let Some(f) = &mut self.fresh
        {
            f.add_empty_mv(k);
            return Ok(true);
        }
        Ok(false)
    }

    /// The values of a search of `attr` that may find something: the
    /// indexes of `values` whose texts the fresh knowledge may hold, or
    /// `None` when it does not know the key (every value may).
    pub(super) fn mv_maybe(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Option<Vec<usize>>> {
        let Some(k) = self.defs.key(object_type, attr) else {
            return Ok(None);
        };
        if !self.mv_known(k)? {
            return Ok(None);
        }
        let Some(f) = &self.fresh else {
            return Ok(None);
        };
        let maybe = values
            .iter()
            .enumerate()
            .filter(|(_, v)| mvindex::any_text(v, &mut |t| f.may_hold_mv(mv_text_key(k, t))))
            .map(|(i, _)| i)
            .collect();
        Ok(Some(maybe))
    }

    /// `mv_find_many` of every value: on the reader unless the search
    /// could find something this transaction wrote.
    pub(super) fn mv_find_many_all(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        if !self.mv_search_touched(object_type, attr, values) {
            let found = self.reader.mv_find_many(object_type, attr, values)?;
            if !found.iter().any(|(_, id)| self.touched.mv_written(*id)) {
                return Ok(found);
            }
        }
        let (object_type, attr, values) =
            (object_type.to_owned(), attr.to_owned(), values.to_vec());
        self.call(move |t| t.mv_find_many(&object_type, &attr, &values))
    }

    /// Whether a search of `attr` for `values` could find an object this
    /// transaction wrote.
    pub(super) fn mv_search_touched(
        &self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> bool {
        if self.touched.mv_keys.is_empty() {
            return false;
        }
        let Some(k) = self.defs.key(object_type, attr) else {
            return false;
        };
        values.iter().any(|v| {
            mvindex::texts(v)
                .iter()
                .any(|t| self.touched.mv_keys.contains(&mv_text_key(k, t)))
        })
    }

    /// `mv_find_many` of an attribute kept as value rows: on the reader
    /// unless this transaction wrote metaverse value rows or one of the
    /// objects found.
    pub(super) fn mv_find_rows(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        if !self.mv_rows_written {
            let found = self.reader.mv_find_many(object_type, attr, values)?;
            if !found.iter().any(|(_, id)| self.touched.mv_written(*id)) {
                return Ok(found);
            }
        }
        let (object_type, attr, values) =
            (object_type.to_owned(), attr.to_owned(), values.to_vec());
        self.call(move |t| t.mv_find_many(&object_type, &attr, &values))
    }
}
