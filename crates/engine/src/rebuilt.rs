//! What provisioning made in an MA whose connector space was deleted
//! (`autosync cs delete MA`, to rebuild it): the anchors of the objects
//! provisioning had created, kept in the store (`provisioned-before:<ma>`)
//! before the deletion removes them. When the rebuild joins an object
//! under one of those anchors again (the target's import and sync, or
//! provisioning finding the account), it is provisioned again, not merely
//! joined: deprovisioning goes on applying to the accounts autosync made,
//! whichever order the runs after the deletion take. Without it, the
//! accounts the import found first were joined only, and their people
//! kept them when they left (found by a black-box review).
//!
//! The list is merged, not replaced, by a later deletion (a deletion cut
//! short and run again still knows the objects the first one removed).

use autosync_store::{CsFilter, Store, StoreRead, StoreResult};
use rustc_hash::{FxHashMap, FxHashSet};
use std::cell::RefCell;

fn key(ma: &str) -> String {
    format!("provisioned-before:{ma}")
}

fn read_list(read: &mut dyn StoreRead, ma: &str) -> StoreResult<FxHashSet<String>> {
    Ok(read
        .meta(&key(ma))?
        .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// Before `ma`'s connector space is deleted: remembers the anchors of the
/// objects provisioning made in it.
pub(crate) fn remember(store: &dyn Store, ma: &str) -> StoreResult<()> {
    let mut txn = store.begin()?;
    let mut anchors = read_list(txn.as_mut(), ma)?;
    let before = anchors.len();
    let mut after = 0;
    loop {
        let page = txn.cs_page(ma, CsFilter::All, after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        anchors.extend(page.into_iter().filter(|x| x.provisioned).map(|x| x.anchor));
    }
    if anchors.len() == before {
        return Ok(());
    }
    let mut list: Vec<String> = anchors.into_iter().collect();
    list.sort_unstable();
    let text = serde_json::to_string(&list).map_err(|e| {
        autosync_store::StoreError::new(
            autosync_store::StoreErrorKind::Io,
            format!("cannot write the list of provisioned objects of `{ma}`: {e}"),
        )
    })?;
    txn.set_meta(&key(ma), Some(&text))?;
    txn.commit()
}

/// The lists of a step, read once per MA.
#[derive(Default)]
pub(crate) struct Rebuilt {
    lists: RefCell<FxHashMap<String, FxHashSet<String>>>,
}

impl Rebuilt {
    /// [`Rebuilt::made`] from the lists read so far only (`false` for an
    /// MA whose list was not read).
    pub(crate) fn made_read(&self, ma: &str, anchor: &str) -> bool {
        self.lists
            .borrow()
            .get(ma)
            .is_some_and(|l| l.contains(anchor))
    }

    /// Whether provisioning made the object `anchor` of `ma` before its
    /// connector space was deleted.
    pub(crate) fn made(
        &self,
        read: &mut dyn StoreRead,
        ma: &str,
        anchor: &str,
    ) -> StoreResult<bool> {
        if !self.lists.borrow().contains_key(ma) {
            let list = read_list(read, ma)?;
            self.lists.borrow_mut().insert(ma.to_owned(), list);
        }
        Ok(self
            .lists
            .borrow()
            .get(ma)
            .is_some_and(|l| l.contains(anchor)))
    }
}
