//! The store contract's writes ([`StoreTxn`]) and the store itself
//! ([`Store`]).

use super::{
    MvIndexDef, OutWaitTargets, RefName, RefWait, StoreError, StoreErrorKind, StoreRead,
    StoreResult, ValueRows,
};
use autosync_model::{
    CsId, CsObject, MvId, MvObject, RunChange, RunObjectError, RunRecord, ValueDelta,
};

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
    /// [`Self::ref_out_waits_set`] with the targets compact and handed
    /// over (a store may send them to another thread without a copy).
    fn ref_out_waits_take(
        &mut self,
        mv_id: MvId,
        ma: &str,
        targets: OutWaitTargets,
    ) -> StoreResult<()> {
        let vias: Vec<&str> = targets.vias().map(|(_, v)| v).collect();
        let pairs: Vec<(MvId, String)> = targets
            .targets()
            .iter()
            .map(|(t, i)| (*t, vias.get(*i).copied().unwrap_or_default().to_owned()))
            .collect();
        self.ref_out_waits_set(mv_id, ma, &pairs)
    }

    /// Note metaverse objects whose referrers are to be worked out again
    /// (`true`: it was deleted; a deletion noted stays noted).
    fn ref_touched_add(&mut self, touched: &[(MvId, bool)]) -> StoreResult<()>;
    /// Forget these noted objects (their referrers were worked out), and
    /// the names noted with them.
    fn ref_touched_clear(&mut self, ids: &[MvId]) -> StoreResult<()>;
    /// Note, with a noted object `id`, how a connector that left it was
    /// named: the references targets hold to it by that name may then go
    /// value by value. A store that keeps no names answers
    /// [`StoreRead::ref_touched_names`](super::StoreRead::ref_touched_names)
    /// with none, and the references go the ordinary way.
    fn ref_touched_names_add(&mut self, id: MvId, names: &[RefName]) -> StoreResult<()> {
        let _ = (id, names);
        Ok(())
    }
    /// Forget which referred objects had a connector written since the
    /// last call: the waits for them were looked at (see
    /// [`StoreRead::ref_out_ready`](super::StoreRead::ref_out_ready)).
    fn ref_out_due_clear(&mut self) -> StoreResult<()>;

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

    /// The identity of the file this store is, taken when it was opened:
    /// leases record it, and one read from another file (a copy of the
    /// store) is not held (see [`crate::lease`]). `None` (the default) for
    /// a store that is no file of this host.
    fn store_file(&self) -> Option<crate::lease::StoreFile> {
        None
    }

    /// Runs still marked `in-progress` (left by a crash); the caller closes
    /// them.
    fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>>;

    /// Delete run records (and their errors and changes) that ended before
    /// `before`.
    fn trim_runs(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64>;
}
