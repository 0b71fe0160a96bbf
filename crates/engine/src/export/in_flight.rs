//! Adds that may be in the system though the store never recorded them
//! sent: an export writes a marker of its MA before it sends its first add
//! and takes it away when it ends having recorded every outcome. A crash
//! (or a connection cut) in between leaves it, and until an export of the
//! MA completes, an add still pending may have been applied: a sync that
//! deprovisions such a connector stages its delete (a delete of what is not
//! there is done at once) instead of forgetting it, which left the account
//! of a leaver hired and gone across a crash in the target for good.

use autosync_model::RunId;
use autosync_store::{Store, StoreRead, StoreResult};

/// What the record of an export says when it may have sent changes it
/// did not record (killed while sending, or the store failed).
pub(crate) const UNCOUNTED: &str = "changes it sent after its last recorded batch may be in the system and are not counted here (the next export sends them again and counts them)";

/// The store's meta key of `ma`'s export that may have sent adds it did
/// not record.
pub fn key(ma: &str) -> String {
    format!("export.in-flight:{ma}")
}

/// Before the first add of export run `run_id` of `ma` is sent.
pub(crate) fn mark(store: &dyn Store, ma: &str, run_id: RunId) -> StoreResult<()> {
    let mut txn = store.begin()?;
    txn.set_meta(&key(ma), Some(&run_id.to_string()))?;
    txn.commit()
}

/// An export of `ma` ended with every outcome recorded.
pub(crate) fn clear(store: &dyn Store, ma: &str) -> StoreResult<()> {
    let mut txn = store.begin()?;
    txn.set_meta(&key(ma), None)?;
    txn.commit()
}

/// Whether an export of `ma` may have sent adds it did not record.
pub(crate) fn marked(read: &mut dyn StoreRead, ma: &str) -> StoreResult<bool> {
    Ok(read.meta(&key(ma))?.is_some())
}
