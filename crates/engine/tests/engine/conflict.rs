//! A sync batch lost to a store `Conflict` (another process committed
//! between two parts of a bulk transaction) is done again, exactly once:
//! a store that fails chosen `commit_so_far` calls, and runs compared with
//! the same runs on a store without faults.
//!
//! End states are compared through the store's read API with the store's
//! ids left out (connections name the joined person's `employeeId`
//! instead): a rolled-back part may or may not give its ids back, and
//! nothing but the ids may differ.

use crate::fixture::*;
use autosync_engine::{EngineError, RunOptions};
use autosync_model::{
    Connection, CsId, CsObject, ExportKind, MvId, MvObject, RunRecord, RunStatus, SyncCounters,
    Value,
};
use autosync_store::sqlite::SqliteStore;
use autosync_store::{
    CsCounts, CsFilter, MvQuery, Store, StoreError, StoreErrorKind, StoreRead, StoreResult,
    StoreTxn,
};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which `commit_so_far` calls fail (numbered from 1 since the plan was
/// set).
#[derive(Clone, Debug)]
enum Plan {
    Never,
    At(Vec<u64>),
    /// This call and every one after it.
    From(u64),
    /// Every n-th call.
    Every(u64),
}

impl Plan {
    fn fails(&self, call: u64) -> bool {
        match self {
            Plan::Never => false,
            Plan::At(calls) => calls.contains(&call),
            Plan::From(first) => call >= *first,
            Plan::Every(n) => call.is_multiple_of(*n),
        }
    }
}

/// What the faulty store saw since its plan was set.
#[derive(Default, Debug)]
struct Seen {
    bulks: AtomicU64,
    commits_so_far: AtomicU64,
    conflicts: AtomicU64,
    /// Commits of plain transactions that wrote connector-space objects.
    cs_commits: AtomicU64,
}

/// The real store, except that the `commit_so_far` calls its plan names
/// return `Conflict` without committing: the part is rolled back when the
/// bulk transaction's work returns the error, as after a real conflict.
struct FaultyStore {
    inner: Arc<SqliteStore>,
    plan: Mutex<Plan>,
    /// Which commits of plain transactions that wrote connector-space
    /// objects fail with an I/O error instead (numbered from 1).
    commit_plan: Mutex<Plan>,
    seen: Seen,
}

impl FaultyStore {
    fn new(inner: Arc<SqliteStore>) -> Self {
        FaultyStore {
            inner,
            plan: Mutex::new(Plan::Never),
            commit_plan: Mutex::new(Plan::Never),
            seen: Seen::default(),
        }
    }

    fn set_plan(&self, plan: Plan) {
        *self.plan.lock().unwrap() = plan;
        self.seen.bulks.store(0, Ordering::SeqCst);
        self.seen.commits_so_far.store(0, Ordering::SeqCst);
        self.seen.conflicts.store(0, Ordering::SeqCst);
    }

    /// (bulk transactions, `commit_so_far` calls, conflicts injected).
    fn seen(&self) -> (u64, u64, u64) {
        (
            self.seen.bulks.load(Ordering::SeqCst),
            self.seen.commits_so_far.load(Ordering::SeqCst),
            self.seen.conflicts.load(Ordering::SeqCst),
        )
    }
}

impl Store for FaultyStore {
    fn read(&self) -> StoreResult<Box<dyn StoreRead + '_>> {
        self.inner.read()
    }

    fn begin(&self) -> StoreResult<Box<dyn StoreTxn + '_>> {
        Ok(Box::new(FaultyTxn {
            inner: Held::Own(self.inner.begin()?),
            store: self,
            wrote_cs: false,
        }))
    }

    fn write_bulk(
        &self,
        work: &mut dyn FnMut(&mut dyn StoreTxn) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.seen.bulks.fetch_add(1, Ordering::SeqCst);
        self.inner.write_bulk(&mut |txn| {
            let mut faulty = FaultyTxn {
                inner: Held::Lent(txn),
                store: self,
                wrote_cs: false,
            };
            work(&mut faulty)
        })
    }

    fn set_mv_index(&self, indexed: &[autosync_store::MvIndexDef]) -> StoreResult<()> {
        self.inner.set_mv_index(indexed)
    }
    fn set_dn_index(&self, mas: &[&str]) -> StoreResult<()> {
        self.inner.set_dn_index(mas)
    }
    fn set_value_rows(&self, rows: &autosync_store::ValueRows) -> StoreResult<()> {
        self.inner.set_value_rows(rows)
    }

    fn declare_names(&self, names: &[&str]) -> StoreResult<()> {
        self.inner.declare_names(names)
    }

    fn unfinished_runs(&self) -> StoreResult<Vec<RunRecord>> {
        self.inner.unfinished_runs()
    }

    fn trim_runs(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
        self.inner.trim_runs(before)
    }
}

/// A transaction of the real store, lent by `write_bulk` or owned (a
/// plain one).
enum Held<'a> {
    Lent(&'a mut dyn StoreTxn),
    Own(Box<dyn StoreTxn + 'a>),
}

impl<'a> std::ops::Deref for Held<'a> {
    type Target = dyn StoreTxn + 'a;
    fn deref(&self) -> &Self::Target {
        match self {
            Held::Lent(t) => &**t,
            Held::Own(t) => &**t,
        }
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Held::Lent(t) => &mut **t,
            Held::Own(t) => &mut **t,
        }
    }
}

/// A transaction of the real store; every call is forwarded (the
/// provided methods too, which the real store overrides).
struct FaultyTxn<'a> {
    inner: Held<'a>,
    store: &'a FaultyStore,
    wrote_cs: bool,
}

impl StoreRead for FaultyTxn<'_> {
    fn cs_get_light(&mut self, id: CsId) -> StoreResult<Option<CsObject>> {
        self.inner.cs_get_light(id)
    }
    fn cs_by_anchors_light(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>> {
        self.inner.cs_by_anchors_light(ma, anchors)
    }
    fn cs_page_light(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        self.inner.cs_page_light(ma, filter, after, limit)
    }
    fn cs_by_mvs_light(&mut self, mv_ids: &[MvId]) -> StoreResult<Vec<CsObject>> {
        self.inner.cs_by_mvs_light(mv_ids)
    }
    fn mv_get_light(&mut self, id: MvId) -> StoreResult<Option<MvObject>> {
        self.inner.mv_get_light(id)
    }
    fn mv_get_many_light(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>> {
        self.inner.mv_get_many_light(ids)
    }
    fn cs_values(&mut self, id: CsId, attr: &str) -> StoreResult<Vec<Value>> {
        self.inner.cs_values(id, attr)
    }
    fn cs_values_present(&mut self, id: CsId, attr: &str, v: &[Value]) -> StoreResult<Vec<bool>> {
        self.inner.cs_values_present(id, attr, v)
    }
    fn cs_values_count(&mut self, id: CsId, attr: &str) -> StoreResult<u64> {
        self.inner.cs_values_count(id, attr)
    }
    fn mv_values(&mut self, id: MvId, attr: &str) -> StoreResult<Vec<Value>> {
        self.inner.mv_values(id, attr)
    }
    fn mv_values_present(&mut self, id: MvId, attr: &str, v: &[Value]) -> StoreResult<Vec<bool>> {
        self.inner.mv_values_present(id, attr, v)
    }
    fn mv_values_count(&mut self, id: MvId, attr: &str) -> StoreResult<u64> {
        self.inner.mv_values_count(id, attr)
    }
    fn cs_get(&mut self, id: CsId) -> StoreResult<Option<CsObject>> {
        self.inner.cs_get(id)
    }
    fn cs_by_anchor(&mut self, ma: &str, anchor: &str) -> StoreResult<Option<CsObject>> {
        self.inner.cs_by_anchor(ma, anchor)
    }
    fn cs_by_anchors(&mut self, ma: &str, anchors: &[&str]) -> StoreResult<Vec<CsObject>> {
        self.inner.cs_by_anchors(ma, anchors)
    }
    fn cs_spellings_by_mvs(
        &mut self,
        ma: &str,
        mv_ids: &[MvId],
    ) -> StoreResult<Vec<autosync_store::CsSpelling>> {
        self.inner.cs_spellings_by_mvs(ma, mv_ids)
    }
    fn cs_spellings_of_ma(&mut self, ma: &str) -> StoreResult<Vec<autosync_store::CsSpelling>> {
        self.inner.cs_spellings_of_ma(ma)
    }
    fn cs_joined_of_ma(&mut self, ma: &str) -> StoreResult<Vec<(String, MvId)>> {
        self.inner.cs_joined_of_ma(ma)
    }
    fn cs_joined_by_dns(
        &mut self,
        ma: &str,
        dns: &[&str],
    ) -> StoreResult<Vec<(String, CsId, Option<MvId>)>> {
        self.inner.cs_joined_by_dns(ma, dns)
    }
    fn cs_joined_by_anchors(
        &mut self,
        ma: &str,
        anchors: &[&str],
    ) -> StoreResult<Vec<(String, MvId)>> {
        self.inner.cs_joined_by_anchors(ma, anchors)
    }
    fn cs_page(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsObject>> {
        self.inner.cs_page(ma, filter, after, limit)
    }
    fn cs_page_ids(
        &mut self,
        ma: &str,
        filter: CsFilter,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        self.inner.cs_page_ids(ma, filter, after, limit)
    }
    fn cs_by_mv(&mut self, mv_id: MvId) -> StoreResult<Vec<CsObject>> {
        self.inner.cs_by_mv(mv_id)
    }
    fn cs_counts(&mut self, ma: &str) -> StoreResult<CsCounts> {
        self.inner.cs_counts(ma)
    }
    fn mv_get(&mut self, id: MvId) -> StoreResult<Option<MvObject>> {
        self.inner.mv_get(id)
    }
    fn mv_get_many(&mut self, ids: &[MvId]) -> StoreResult<Vec<MvObject>> {
        self.inner.mv_get_many(ids)
    }
    fn mv_find(&mut self, object_type: &str, attr: &str, value: &Value) -> StoreResult<Vec<MvId>> {
        self.inner.mv_find(object_type, attr, value)
    }
    fn mv_find_many(
        &mut self,
        object_type: &str,
        attr: &str,
        values: &[Value],
    ) -> StoreResult<Vec<(usize, MvId)>> {
        self.inner.mv_find_many(object_type, attr, values)
    }
    fn mv_page(
        &mut self,
        query: &MvQuery,
        after: MvId,
        limit: usize,
    ) -> StoreResult<Vec<MvObject>> {
        self.inner.mv_page(query, after, limit)
    }
    fn mv_count(&mut self, object_type: Option<&str>) -> StoreResult<u64> {
        self.inner.mv_count(object_type)
    }
    fn watermark(&mut self, ma: &str) -> StoreResult<Option<String>> {
        self.inner.watermark(ma)
    }
    fn run_get(&mut self, id: i64) -> StoreResult<Option<RunRecord>> {
        self.inner.run_get(id)
    }
    fn runs(&mut self, ma: Option<&str>, limit: usize) -> StoreResult<Vec<RunRecord>> {
        self.inner.runs(ma, limit)
    }
    fn run_errors(
        &mut self,
        run_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<autosync_model::RunObjectError>> {
        self.inner.run_errors(run_id, limit)
    }
    fn run_changes(
        &mut self,
        run_id: i64,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<autosync_model::RunChange>> {
        self.inner.run_changes(run_id, offset, limit)
    }
    fn run_change_count(&mut self, run_id: i64) -> StoreResult<u64> {
        self.inner.run_change_count(run_id)
    }
    fn meta(&mut self, key: &str) -> StoreResult<Option<String>> {
        self.inner.meta(key)
    }
    fn ref_waits_of(&mut self, cs_id: CsId) -> StoreResult<Vec<autosync_store::RefWait>> {
        self.inner.ref_waits_of(cs_id)
    }
    fn ref_waiting_page(&mut self, ma: &str, after: CsId, limit: usize) -> StoreResult<Vec<CsId>> {
        self.inner.ref_waiting_page(ma, after, limit)
    }
    fn ref_out_waiting_page(
        &mut self,
        ma: &str,
        after: CsId,
        limit: usize,
    ) -> StoreResult<Vec<CsId>> {
        self.inner.ref_out_waiting_page(ma, after, limit)
    }
    fn ref_out_waiting_count(&mut self, ma: &str) -> StoreResult<u64> {
        self.inner.ref_out_waiting_count(ma)
    }
    fn ref_out_waits_of(&mut self, mv_id: MvId, ma: &str) -> StoreResult<Vec<(MvId, String)>> {
        self.inner.ref_out_waits_of(mv_id, ma)
    }
    fn ref_waiting_count(&mut self, ma: &str) -> StoreResult<u64> {
        self.inner.ref_waiting_count(ma)
    }
    fn ref_in_ready(&mut self) -> StoreResult<Vec<CsId>> {
        self.inner.ref_in_ready()
    }
    fn ref_out_ready(&mut self) -> StoreResult<Vec<MvId>> {
        self.inner.ref_out_ready()
    }
    fn ref_out_sendable_count(&mut self, via: &str) -> StoreResult<u64> {
        self.inner.ref_out_sendable_count(via)
    }
    fn ref_touched(&mut self) -> StoreResult<Vec<(MvId, bool)>> {
        self.inner.ref_touched()
    }
    fn ref_out_waiting(&mut self) -> StoreResult<Vec<MvId>> {
        self.inner.ref_out_waiting()
    }
}

impl StoreTxn for FaultyTxn<'_> {
    fn cs_values_change(
        &mut self,
        id: CsId,
        attr: &str,
        d: &autosync_model::ValueDelta,
    ) -> StoreResult<()> {
        self.wrote_cs = true;
        self.inner.cs_values_change(id, attr, d)
    }
    fn mv_values_change(
        &mut self,
        id: MvId,
        attr: &str,
        d: &autosync_model::ValueDelta,
    ) -> StoreResult<()> {
        self.inner.mv_values_change(id, attr, d)
    }
    fn cs_insert(&mut self, obj: &mut CsObject) -> StoreResult<()> {
        self.wrote_cs = true;
        self.inner.cs_insert(obj)
    }
    fn cs_update(&mut self, obj: &CsObject) -> StoreResult<()> {
        self.wrote_cs = true;
        self.inner.cs_update(obj)
    }
    fn cs_delete(&mut self, id: CsId) -> StoreResult<()> {
        self.wrote_cs = true;
        self.inner.cs_delete(id)
    }
    fn cs_insert_owned(&mut self, obj: CsObject) -> StoreResult<CsId> {
        self.wrote_cs = true;
        self.inner.cs_insert_owned(obj)
    }
    fn cs_update_owned(&mut self, obj: CsObject) -> StoreResult<()> {
        self.wrote_cs = true;
        self.inner.cs_update_owned(obj)
    }
    fn mv_insert(&mut self, obj: &mut MvObject) -> StoreResult<()> {
        self.inner.mv_insert(obj)
    }
    fn mv_update(&mut self, obj: &MvObject) -> StoreResult<()> {
        self.inner.mv_update(obj)
    }
    fn mv_delete(&mut self, id: MvId) -> StoreResult<()> {
        self.inner.mv_delete(id)
    }
    fn mv_insert_owned(&mut self, obj: MvObject) -> StoreResult<MvId> {
        self.inner.mv_insert_owned(obj)
    }
    fn mv_update_owned(&mut self, obj: MvObject) -> StoreResult<()> {
        self.inner.mv_update_owned(obj)
    }
    fn set_watermark(&mut self, ma: &str, watermark: Option<&str>) -> StoreResult<()> {
        self.inner.set_watermark(ma, watermark)
    }
    fn ref_touched_add(&mut self, touched: &[(MvId, bool)]) -> StoreResult<()> {
        self.inner.ref_touched_add(touched)
    }
    fn ref_touched_clear(&mut self, ids: &[MvId]) -> StoreResult<()> {
        self.inner.ref_touched_clear(ids)
    }
    fn ref_out_due_clear(&mut self) -> StoreResult<()> {
        self.inner.ref_out_due_clear()
    }
    fn ref_waits_set(&mut self, cs_id: CsId, waits: &[autosync_store::RefWait]) -> StoreResult<()> {
        self.inner.ref_waits_set(cs_id, waits)
    }
    fn ref_out_waits_set(
        &mut self,
        mv_id: MvId,
        ma: &str,
        targets: &[(MvId, String)],
    ) -> StoreResult<()> {
        self.inner.ref_out_waits_set(mv_id, ma, targets)
    }
    fn run_insert(&mut self, run: &mut RunRecord) -> StoreResult<()> {
        self.inner.run_insert(run)
    }
    fn run_update(&mut self, run: &RunRecord) -> StoreResult<()> {
        self.inner.run_update(run)
    }
    fn run_errors_insert(&mut self, errors: &[autosync_model::RunObjectError]) -> StoreResult<()> {
        self.inner.run_errors_insert(errors)
    }
    fn run_changes_insert(&mut self, changes: &[autosync_model::RunChange]) -> StoreResult<()> {
        self.inner.run_changes_insert(changes)
    }
    fn set_meta(&mut self, key: &str, value: Option<&str>) -> StoreResult<()> {
        self.inner.set_meta(key, value)
    }

    fn commit_so_far(&mut self) -> StoreResult<()> {
        let seen = &self.store.seen;
        let call = seen.commits_so_far.fetch_add(1, Ordering::SeqCst) + 1;
        if self.store.plan.lock().unwrap().fails(call) {
            seen.conflicts.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::new(
                StoreErrorKind::Conflict,
                format!("injected conflict at commit_so_far call {call}"),
            ));
        }
        self.inner.commit_so_far()
    }

    fn commit(self: Box<Self>) -> StoreResult<()> {
        let FaultyTxn {
            inner,
            store,
            wrote_cs,
        } = *self;
        match inner {
            // The work of `write_bulk` gets a `&mut`: it never commits
            // itself.
            Held::Lent(_) => Err(StoreError::new(
                StoreErrorKind::Invalid,
                "a bulk transaction is committed by write_bulk",
            )),
            Held::Own(txn) => {
                if wrote_cs {
                    let call = store.seen.cs_commits.fetch_add(1, Ordering::SeqCst) + 1;
                    if store.commit_plan.lock().unwrap().fails(call) {
                        // Dropped uncommitted: rolled back.
                        return Err(StoreError::new(
                            StoreErrorKind::Io,
                            format!("injected failure of commit {call}"),
                        ));
                    }
                }
                txn.commit()
            }
        }
    }
}

/// People in HR; every 17th (from the 4th) has a phone number the import
/// flow cannot read: a per-object error.
const PEOPLE: usize = 250;
/// Objects per sync batch: 7 batches, 5 in the first bulk transaction.
const BATCH: usize = 40;
/// The engine's `CONFLICTS_MAX`.
const CONFLICTS_MAX: u64 = 10;
/// The engine's `BATCHES_PER_BULK`.
const BATCHES_PER_BULK: u64 = 5;

const CONFIG: &str = r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "lastName", "department", "phone"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "firstName", from = "first" },
  { mv = "lastName", from = "last" },
  { mv = "department", from = "dept" },
  { mv = "phone", expr = "to_string(to_int(phone))" },
]

[[ma]]
name = "dir"
connector = { type = "csv", path = "dir.csv" }
object_types = [{ name = "user", anchor = "uid" }]
deprovisioning = "delete"
export_flows = [
  { cs = "name", expr = 'firstName + " " + lastName' },
  { cs = "dept", from = "department" },
  { cs = "employee", from = "employeeId" },
  { cs = "phone", from = "phone" },
]
provisioning = [{ mv_type = "person", object_type = "user", anchor = 'lower(firstName) + "." + employeeId' }]
"#;

fn fails(i: usize) -> bool {
    i % 17 == 3
}

fn failing() -> u64 {
    (0..PEOPLE).filter(|i| fails(*i)).count() as u64
}

fn hr_csv(dept: &str) -> String {
    let mut csv = String::from("id,first,last,dept,phone\n");
    for i in 0..PEOPLE {
        let phone = if fails(i) {
            "n/a".to_owned()
        } else {
            format!("555{i:04}")
        };
        csv.push_str(&format!("{i},F{i},L{i},{dept}{},{phone}\n", i % 7));
    }
    csv
}

/// A world whose engine runs over a faulty store (no faults yet), with HR
/// imported.
fn world() -> (World, Arc<FaultyStore>) {
    let mut w = World::new(CONFIG, &[("hr.csv", &hr_csv("D"))]);
    let store = Arc::new(FaultyStore::new(w.store.clone()));
    w.engine = World::engine_for(&w.dir, CONFIG, store.clone());
    w.run_ok("hr", "full-import", RunStatus::Success);
    (w, store)
}

fn run(w: &World, ma: &str, profile: &str) -> Result<RunRecord, EngineError> {
    run_batch(w, ma, profile, BATCH)
}

fn run_batch(w: &World, ma: &str, profile: &str, batch: usize) -> Result<RunRecord, EngineError> {
    let mut opts = RunOptions::manual("test");
    opts.sync_batch = NonZeroUsize::new(batch);
    w.engine.run_profile(ma, profile, opts)
}

/// The end state, without the store's ids.
#[derive(Debug, PartialEq)]
struct State {
    /// By `employeeId`.
    mv: BTreeMap<String, MvObject>,
    /// By MA and anchor, with the `employeeId` of the person joined.
    cs: BTreeMap<(String, String), (CsObject, Option<String>)>,
}

fn state(w: &World) -> State {
    let mut key_of = HashMap::new();
    let mut mv = BTreeMap::new();
    for mut o in w.mv_all() {
        let key = o.get("employeeId").unwrap().to_text();
        key_of.insert(o.id, key.clone());
        o.id = 0;
        assert!(mv.insert(key, o).is_none(), "one person per employeeId");
    }
    let mut cs = BTreeMap::new();
    for ma in ["hr", "dir"] {
        for mut o in w.cs_all(ma, CsFilter::All) {
            let joined = o.connection.mv_id().map(|id| {
                key_of
                    .get(&id)
                    .unwrap_or_else(|| panic!("{ma} {} joined to a missing person", o.anchor))
                    .clone()
            });
            if joined.is_some() {
                o.connection = Connection::Connector { mv_id: 0 };
            }
            o.id = 0;
            if let Some(e) = &mut o.error {
                e.run_id = None;
            }
            cs.insert((ma.to_owned(), o.anchor.clone()), (o, joined));
        }
    }
    State { mv, cs }
}

/// The per-object errors recorded with a run: (object, type, detail).
fn run_errors(w: &World, run: &RunRecord) -> Vec<(String, String, String)> {
    let mut errors: Vec<_> = w
        .store
        .read()
        .unwrap()
        .run_errors(run.id, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| (e.object, e.error.error_type, e.error.detail))
        .collect();
    errors.sort();
    errors
}

/// What a full sync on a store without faults ends with.
struct Baseline {
    batch: usize,
    run: RunRecord,
    counters: SyncCounters,
    errors: Vec<(String, String, String)>,
    state: State,
    bulks: u64,
    commits_so_far: u64,
}

fn baseline(batch: usize) -> Baseline {
    let (w, store) = world();
    let run = run_batch(&w, "hr", "full-sync", batch).unwrap();
    let (bulks, commits_so_far, conflicts) = store.seen();
    assert_eq!(conflicts, 0);
    let counters = sync_counters(&run);
    // What the scenario is: every batch committed, several per bulk.
    let projected = PEOPLE as u64 - failing();
    assert_eq!(run.status, RunStatus::CompletedSyncErrors, "{run:#?}");
    assert_eq!(counters.projections, projected);
    assert_eq!(counters.failures, failing());
    assert_eq!(counters.outbound["dir"].provisioned_adds, projected);
    assert_eq!(run.steps[0].errors, failing());
    // Bulk transactions of BATCHES_PER_BULK batches, the last one ending
    // with the empty page; each batch but a bulk transaction's last is
    // committed with commit_so_far.
    let batches = PEOPLE.div_ceil(batch) as u64;
    assert_eq!(bulks, batches / BATCHES_PER_BULK + 1);
    assert_eq!(commits_so_far, batches - batches / BATCHES_PER_BULK);
    assert!(commits_so_far >= 6, "several commits per bulk transaction");
    let state = state(&w);
    assert_eq!(state.mv.len() as u64, projected);
    Baseline {
        batch,
        counters,
        errors: run_errors(&w, &run),
        state,
        run,
        bulks,
        commits_so_far,
    }
}

/// Every person has exactly one directory object, with one pending add.
fn assert_one_pending_add_per_person(w: &World) {
    let people = w.mv_all();
    let dir = w.cs_all("dir", CsFilter::All);
    assert_eq!(dir.len(), people.len());
    let mut per_person: HashMap<MvId, usize> = HashMap::new();
    for o in &dir {
        assert_eq!(
            o.pending_export.as_ref().map(|p| p.kind),
            Some(ExportKind::Add),
            "{o:#?}"
        );
        *per_person.entry(o.connection.mv_id().unwrap()).or_default() += 1;
    }
    assert!(people.iter().all(|p| per_person.get(&p.id) == Some(&1)));
    assert_eq!(w.cs_all("dir", CsFilter::PendingExport).len(), people.len());
}

/// A full sync whose `commit_so_far` calls fail as `plan` says ends as one
/// without faults: same status, counters, errors and objects.
fn assert_full_sync_converges(plan: Plan, base: &Baseline) {
    let (w, store) = world();
    store.set_plan(plan.clone());
    let run =
        run_batch(&w, "hr", "full-sync", base.batch).unwrap_or_else(|e| panic!("{plan:?}: {e}"));
    let (bulks, commits_so_far, conflicts) = store.seen();
    assert!(conflicts > 0, "{plan:?}: no fault was injected");
    // Each conflict ends a bulk transaction and redoes a batch.
    assert!(bulks > base.bulks, "{plan:?}");
    assert!(commits_so_far > base.commits_so_far, "{plan:?}");
    assert_eq!(run.status, base.run.status, "{plan:?}: {run:#?}");
    assert_eq!(sync_counters(&run), base.counters, "{plan:?}");
    assert_eq!(run.steps[0].errors, base.run.steps[0].errors, "{plan:?}");
    assert_eq!(run_errors(&w, &run), base.errors, "{plan:?}");
    assert_eq!(state(&w), base.state, "{plan:?}");
    assert_one_pending_add_per_person(&w);
}

#[test]
fn a_batch_lost_to_a_conflict_should_be_done_again_and_counted_once() {
    let base = baseline(BATCH);
    assert_full_sync_converges(Plan::At(vec![2]), &base);
}

#[test]
fn batches_lost_to_several_conflicts_in_a_row_should_be_done_again() {
    let base = baseline(BATCH);
    // Fewer than CONFLICTS_MAX in a row, in the first bulk transaction and
    // in a later one, and exactly CONFLICTS_MAX in a row (all redone).
    assert_full_sync_converges(Plan::At((2..=4).collect()), &base);
    assert_full_sync_converges(Plan::At(vec![1, 2, 6, 7, 8, 9]), &base);
    assert_full_sync_converges(Plan::At((2..2 + CONFLICTS_MAX).collect()), &base);
}

/// Another process that commits all the time makes every bulk
/// transaction lose its second batch: each batch is lost once, and the
/// sync goes on, one batch per bulk transaction. More batches (25) than
/// CONFLICTS_MAX + 1, so more conflicts than CONFLICTS_MAX in all.
#[test]
fn a_sync_that_goes_on_between_conflicts_should_not_stop() {
    let base = baseline(10);
    assert_full_sync_converges(Plan::Every(2), &base);
}

#[test]
fn a_batch_lost_to_conflicts_more_than_conflicts_max_times_should_stop_the_step() {
    let base = baseline(BATCH);
    for first in [1, 3] {
        let (w, store) = world();
        store.set_plan(Plan::From(first));
        let err = run(&w, "hr", "full-sync").unwrap_err();
        let EngineError::Store(e) = &err else {
            panic!("not a store error: {err:?}");
        };
        assert_eq!(e.kind, StoreErrorKind::Conflict, "{e}");
        let (bulks, _, conflicts) = store.seen();
        assert_eq!(conflicts, CONFLICTS_MAX + 1, "redone CONFLICTS_MAX times");
        assert_eq!(bulks, CONFLICTS_MAX + 1);
        let record = w.store.read().unwrap().runs(Some("hr"), 1).unwrap();
        assert_eq!(record[0].status, RunStatus::StoppedError, "{record:#?}");
        assert!(
            record[0].steps[0]
                .message
                .as_deref()
                .unwrap()
                .contains("injected conflict"),
            "{record:#?}"
        );

        // The batches committed before the conflicts are whole: the first
        // `first - 1` batches synced, the rest untouched.
        let done = (first as usize - 1) * BATCH;
        // The stopped step's record counts what it committed.
        let stopped = sync_counters(&record[0]);
        assert_eq!(
            stopped.projections,
            (0..done).filter(|i| !fails(*i)).count() as u64,
            "{record:#?}"
        );
        assert_eq!(
            record[0].steps[0].errors,
            (0..done).filter(|i| fails(*i)).count() as u64,
            "{record:#?}"
        );
        let hr = w.cs_all("hr", CsFilter::All);
        assert_eq!(hr.len(), PEOPLE);
        for (i, o) in hr.iter().enumerate() {
            let synced = o.pending_import.is_none() || o.error.is_some();
            assert_eq!(synced, i < done, "{o:#?}");
        }
        let projected = (0..done).filter(|i| !fails(*i)).count();
        assert_eq!(w.mv_all().len(), projected);
        assert_one_pending_add_per_person(&w);

        // A full sync without faults then ends where one without faults
        // ends.
        store.set_plan(Plan::Never);
        let again = run(&w, "hr", "full-sync").unwrap();
        assert_eq!(again.status, base.run.status, "{again:#?}");
        let s = sync_counters(&again);
        assert_eq!(s.projections + projected as u64, base.counters.projections);
        assert_eq!(s.failures, base.counters.failures);
        assert_eq!(state(&w), base.state);
        assert_one_pending_add_per_person(&w);
    }
}

/// A delta sync goes to bulk transactions after a full first batch; a
/// conflict there is redone the same way.
#[test]
fn a_batch_of_a_delta_sync_lost_to_a_conflict_should_be_done_again() {
    let prepare = || {
        let (w, store) = world();
        run(&w, "hr", "full-sync").unwrap();
        w.write("hr.csv", &hr_csv("Moved"));
        w.run_ok("hr", "full-import", RunStatus::Success);
        (w, store)
    };
    let (w, _) = prepare();
    let base_run = run(&w, "hr", "delta-sync").unwrap();
    let base_state = state(&w);
    let base_errors = run_errors(&w, &base_run);
    let counters = sync_counters(&base_run);
    let updated = PEOPLE as u64 - failing();
    assert_eq!(counters.connectors_with_flow_updates, updated);
    assert_eq!(counters.outbound["dir"].export_attribute_flow, updated);

    for plan in [Plan::At(vec![2]), Plan::At(vec![1, 2, 3])] {
        let (w, store) = prepare();
        store.set_plan(plan.clone());
        let r = run(&w, "hr", "delta-sync").unwrap();
        assert!(store.seen().2 > 0, "{plan:?}: no fault was injected");
        assert_eq!(r.status, base_run.status, "{plan:?}");
        assert_eq!(sync_counters(&r), counters, "{plan:?}");
        assert_eq!(run_errors(&w, &r), base_errors, "{plan:?}");
        assert_eq!(state(&w), base_state, "{plan:?}");
        assert_one_pending_add_per_person(&w);
    }
}

/// A step stopped by a store failure records what it committed before it:
/// an import of five batches whose third commit fails counts the first
/// two (the sync's case is checked above, with conflicts).
#[test]
fn an_import_stopped_by_a_store_failure_should_count_the_batches_it_committed() {
    let config = CONFIG.replace(
        r#"connector = { type = "csv", path = "hr.csv" }"#,
        r#"connector = { type = "csv", path = "hr.csv", batch_size = 50 }"#,
    );
    let mut w = World::new(&config, &[("hr.csv", &hr_csv("D"))]);
    let store = Arc::new(FaultyStore::new(w.store.clone()));
    w.engine = World::engine_for(&w.dir, &config, store.clone());
    *store.commit_plan.lock().unwrap() = Plan::At(vec![3]);
    let err = w
        .engine
        .run_profile("hr", "full-import", RunOptions::manual("test"))
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    let record = w.store.read().unwrap().runs(Some("hr"), 1).unwrap();
    assert_eq!(record[0].status, RunStatus::StoppedError, "{record:#?}");
    let counters = import_counters(&record[0]);
    // Every 17th person from the 4th fails nothing at import (the phone is
    // read by the sync's flow), so each batch stages 50 adds.
    assert_eq!(counters.stage_add, 100, "{record:#?}");
    assert_eq!(w.cs_all("hr", CsFilter::All).len(), 100);
}

/// An export whose outcomes cannot be recorded (the store fails the
/// commit) stops with the store's error and keeps every pending export:
/// nothing is counted as exported. The next export sends the same changes
/// again, and the target (a replayable CSV file) holds each person once.
#[test]
fn an_export_stopped_by_a_store_failure_should_keep_its_pending_exports_and_replay_them() {
    let (w, store) = world();
    run(&w, "hr", "full-sync").unwrap();
    let people = w.mv_all().len();
    assert_eq!(people as u64, PEOPLE as u64 - failing());
    // The export records its outcomes in the next plain commit that writes
    // connector-space objects.
    let next = store.seen.cs_commits.load(Ordering::SeqCst) + 1;
    *store.commit_plan.lock().unwrap() = Plan::At(vec![next]);
    let err = w
        .engine
        .run_profile("dir", "export", RunOptions::manual("test"))
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    let record = w.store.read().unwrap().runs(Some("dir"), 1).unwrap();
    assert_eq!(record[0].status, RunStatus::StoppedError, "{record:#?}");
    assert!(
        record[0].steps[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("injected failure")),
        "{record:#?}"
    );
    let stopped = export_counters(&record[0]);
    assert_eq!(stopped.adds, 0, "nothing recorded is counted: {record:#?}");
    // The file was written (the connector committed before the record
    // failed), but the store still has every add pending.
    let written = w.read("dir.csv");
    assert_eq!(written.lines().count(), people + 1, "{written}");
    assert_one_pending_add_per_person(&w);
    assert!(w.cs_all("dir", CsFilter::All).iter().all(|o| !o.present));

    // The next export replays the adds: counted once, and the file still
    // holds each person once.
    let again = w.run_ok("dir", "export", RunStatus::Success);
    assert_eq!(export_counters(&again).adds, people as u64, "{again:#?}");
    let text = w.read("dir.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let uid = header.iter().position(|c| *c == "uid").unwrap();
    let mut anchors: Vec<&str> = lines.map(|l| l.split(',').nth(uid).unwrap()).collect();
    assert_eq!(anchors.len(), people, "{text}");
    anchors.sort_unstable();
    anchors.dedup();
    assert_eq!(anchors.len(), people, "an anchor written twice: {text}");
    assert!(w.cs_all("dir", CsFilter::PendingExport).is_empty());
    assert_eq!(w.cs_all("dir", CsFilter::UnconfirmedExport).len(), people);
}
