//! The writer thread of a bulk transaction and the writes queued to it:
//! the frequent writes of a synchronisation travel as plain data
//! ([`Write`]: no boxed closure to allocate, call and free per object),
//! with MA names and object types sent once per transaction and then by
//! number; the rest travel as boxed jobs. A run of frequent writes shares
//! its prepared statements ([`Hot`]).

use crate::api::{StoreError, StoreErrorKind, StoreResult};
use crate::sqlite::bin;
use crate::sqlite::codec::CsColumns;
use crate::sqlite::error;
use crate::sqlite::hot::Hot;
use crate::sqlite::names::Names as Dict;
use crate::sqlite::rows::{self, RowDecl, RowPlan, Side};
use crate::sqlite::write::{CsRow, Known, SqliteTxn, Writer, WriterRef};
use autosync_model::{CsId, CsObject, MvId};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

/// A queued write, run on the writer thread inside the transaction.
pub(super) type Job = Box<dyn for<'a> FnOnce(&mut SqliteTxn<'a>) -> StoreResult<()> + Send>;

/// A call on the writer thread: gets the transaction and the first failure
/// so far (if any), and answers through its own channel.
pub(super) type Call = Box<dyn for<'a> FnOnce(&mut SqliteTxn<'a>, Option<&StoreError>) + Send>;

/// A queued write: the frequent ones of a synchronisation as plain data
/// (no boxed closure to allocate, call and free per object), the rest as
/// a job.
pub(super) enum Write {
    /// The next name (MA name or object type) of the transaction: later
    /// writes name it by its number, in order of arrival ([`Names`]).
    Name(String),
    CsInsert(OwnedRow),
    CsUpdate(OwnedRow, Option<Known>),
    MvInsert {
        id: MvId,
        object_type: u32,
        data: Vec<u8>,
        keys: Vec<(i64, String)>,
        /// Its value rows (see `rows`), if any.
        rows: Option<Box<RowPlan>>,
    },
    Job(Job),
}

/// The writer thread's names, by number.
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn get(&self, n: u32, path: &Path) -> StoreResult<&str> {
        usize::try_from(n)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(String::as_str)
            .ok_or_else(|| {
                error::other(
                    StoreErrorKind::Io,
                    path,
                    format!("the store's writer thread has no name number {n}"),
                )
            })
    }
}

pub(super) enum Msg {
    Jobs(Vec<Write>),
    Call(Call),
}
/// The writer thread: runs queued writes in order until the channel
/// closes; after the first failure it only answers calls. Dropping the
/// transaction at the end rolls back anything not committed. A run of
/// frequent writes in a group shares its prepared statements ([`Hot`]).
pub(super) fn worker(
    w: &mut Writer,
    path: &Path,
    rx: Receiver<Msg>,
    abandon: &AtomicBool,
    failed_flag: &AtomicBool,
) {
    let mut txn = SqliteTxn {
        w: WriterRef::Lent(w),
        path,
    };
    let mut failed: Option<StoreError> = None;
    let mut names = Names::default();
    for msg in rx {
        match msg {
            Msg::Jobs(jobs) => {
                let mut jobs = jobs.into_iter();
                loop {
                    if failed.is_some() || abandon.load(Ordering::Relaxed) {
                        break;
                    }
                    let (job, res) = run_hot(&mut txn.w, path, &mut jobs, &mut names, abandon);
                    let res = match (res, job) {
                        (Ok(()), Some(job)) => job(&mut txn),
                        (res, _) => res,
                    };
                    if let Err(e) = res {
                        failed = Some(e);
                        failed_flag.store(true, Ordering::Release);
                    }
                    if jobs.len() == 0 {
                        break;
                    }
                }
            }
            Msg::Call(call) => call(&mut txn, failed.as_ref()),
        }
    }
}

/// Run the frequent writes at the head of `jobs` with shared statements,
/// up to the first job (returned, not run), failure or abandon.
fn run_hot(
    w: &mut Writer,
    path: &Path,
    jobs: &mut std::vec::IntoIter<Write>,
    names: &mut Names,
    abandon: &AtomicBool,
) -> (Option<Job>, StoreResult<()>) {
    let mut p = w.parts();
    let mut hot = Hot::default();
    for write in jobs.by_ref() {
        if abandon.load(Ordering::Relaxed) {
            break;
        }
        let res = match write {
            Write::Job(job) => return (Some(job), Ok(())),
            Write::Name(name) => {
                names.0.push(name);
                Ok(())
            }
            Write::CsInsert(row) => names
                .get(row.ma, path)
                .and_then(|ma| p.cs_insert_row(&mut hot, path, &row.row(ma)))
                .and_then(|()| row.write_rows(p.conn, path)),
            Write::CsUpdate(row, known) => names
                .get(row.ma, path)
                .and_then(|ma| p.cs_update_row(&mut hot, path, &row.row(ma), known))
                .and_then(|()| row.write_rows(p.conn, path)),
            Write::MvInsert {
                id,
                object_type,
                data,
                keys,
                rows: plan,
            } => names
                .get(object_type, path)
                .and_then(|object_type| {
                    p.mv_insert_row(&mut hot, path, id, object_type, &data, &keys)
                })
                .and_then(|()| match &plan {
                    Some(plan) => rows::apply(p.conn, path, Side::Mv, id, plan),
                    None => Ok(()),
                }),
        };
        if res.is_err() {
            return (None, res);
        }
    }
    (None, Ok(()))
}

/// A connector-space object encoded on the caller's thread: the writer
/// thread only runs the SQL and frees the body and the anchor, not an
/// object (the rest of the object is freed on the thread that made it).
pub(super) struct OwnedRow {
    id: CsId,
    /// The MA's name by number ([`Write::Name`]).
    ma: u32,
    anchor: String,
    dn: String,
    /// `cs_key(ma, anchor)`, computed once on the caller's thread.
    key: u64,
    cols: CsColumns,
    data: Vec<u8>,
    /// Its value rows (see `rows`), if any.
    rows: Option<Box<RowPlan>>,
}

impl OwnedRow {
    /// The row of `obj`, encoded with the value rows `decl` declares;
    /// `old_rows`: an update of an object that may hold rows (they are
    /// cleared but for the attributes it marks).
    pub(super) fn of(
        obj: &mut CsObject,
        ma: u32,
        key: u64,
        dict: &Dict,
        decl: &RowDecl,
        old_rows: bool,
    ) -> Self {
        let attrs = decl.cs_attrs(&obj.ma);
        let mut data = Vec::with_capacity(512);
        bin::encode_cs_rows(&mut data, dict, obj, attrs);
        let clear = old_rows && decl.cs_may_hold(&obj.ma);
        OwnedRow {
            id: obj.id,
            cols: CsColumns::of(obj),
            ma,
            key,
            anchor: std::mem::take(&mut obj.anchor),
            dn: std::mem::take(&mut obj.dn),
            data,
            rows: rows::plan(attrs, obj.hologram.iter(), false, clear).map(Box::new),
        }
    }

    /// Write its value rows, if it has any.
    fn write_rows(&self, conn: &rusqlite::Connection, path: &Path) -> StoreResult<()> {
        match &self.rows {
            Some(plan) => rows::apply(conn, path, Side::Cs, self.id, plan),
            None => Ok(()),
        }
    }

    fn row<'r>(&'r self, ma: &'r str) -> CsRow<'r> {
        CsRow {
            id: self.id,
            ma,
            anchor: &self.anchor,
            dn: &self.dn,
            key: self.key,
            cols: self.cols,
            data: &self.data,
        }
    }
}
