//! A connector-space object as its stored row, and what a transaction
//! remembers of rows it read.

use crate::sqlite::codec::CsColumns;
use crate::sqlite::fresh;
use autosync_model::{CsId, CsObject, Value};

/// What a row of `cs` holds in its filter columns, and a hash of its key
/// (MA, anchor): an update whose key has the same hash is written with a
/// check that the key is indeed the same (`WHERE ma = .. AND anchor = ..`)
/// and done again the long way if it was not, so a chance match costs
/// one more statement, never a wrong row. No strings: a full sync notes
/// every object it reads.
#[derive(Clone, Copy)]
pub(crate) struct Known {
    pub(crate) cols: CsColumns,
    pub(crate) key: u64,
    /// Whether the object may hold value rows: false when it was read with
    /// no multi-valued attribute (an attribute whose values are rows reads
    /// as a multi-value, whole or the placeholder). An object whose rows
    /// the transaction changed (`cs_values_change`, which does not touch
    /// the body) is cleared whatever this says. An update of an object that holds none has no
    /// rows to clear (a sync writes every source object it reads: for an
    /// MA with a declared reference, a range delete each that finds
    /// nothing).
    pub(crate) rows: bool,
}

impl Known {
    /// A remembered row whose key hash is `key` (tests: a chance match).
    #[cfg(test)]
    pub(crate) fn claiming(obj: &CsObject, key: u64) -> Self {
        Known {
            cols: CsColumns::of(obj),
            key,
            rows: may_hold_rows(obj),
        }
    }

    pub(crate) fn of(obj: &CsObject) -> Self {
        Known {
            cols: CsColumns::of(obj),
            key: fresh::cs_key(&obj.ma, &obj.anchor),
            rows: may_hold_rows(obj),
        }
    }
}

/// Whether `obj`, as read from the store, may hold value rows.
fn may_hold_rows(obj: &CsObject) -> bool {
    obj.hologram.values().any(|v| matches!(v, Value::Multi(_)))
}

impl Known {
    /// Whether an update of the object this knows of (`None`: nothing
    /// known) is to clear the rows of attributes it no longer marks.
    pub(crate) fn clears(known: Option<&Known>) -> bool {
        known.is_none_or(|k| k.rows)
    }
}

/// A connector-space object as its row: key, filter columns and encoded
/// body (a bulk transaction encodes on the caller's thread).
pub(crate) struct CsRow<'a> {
    pub id: CsId,
    pub ma: &'a str,
    pub anchor: &'a str,
    /// Kept in the DN index when the MA has one.
    pub dn: &'a str,
    /// `fresh::cs_key(ma, anchor)`, computed once per row (a bulk
    /// transaction computes it on the caller's thread).
    pub key: u64,
    pub cols: CsColumns,
    pub data: &'a [u8],
}

impl<'a> CsRow<'a> {
    pub(crate) fn new(obj: &'a CsObject, data: &'a [u8]) -> Self {
        CsRow {
            id: obj.id,
            ma: &obj.ma,
            anchor: &obj.anchor,
            dn: &obj.dn,
            key: fresh::cs_key(&obj.ma, &obj.anchor),
            cols: CsColumns::of(obj),
            data,
        }
    }

    pub(crate) fn known(&self) -> Known {
        Known {
            cols: self.cols,
            key: self.key,
            rows: true,
        }
    }
}

/// Most objects a transaction remembers the columns of (beyond that,
/// `cs_update` reads them).
pub(crate) const KNOWN_MAX: usize = 100_000;
