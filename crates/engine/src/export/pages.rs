//! The export's reader stage: the pages of pending exports, read and
//! decoded on a thread of their own while the page before is sent, in
//! the order of the object types' ranks (see `refs::ranks`), each made
//! the changes a connector is sent.

use super::{Sent, fingerprint};
use crate::run::PAGE;
use autosync_connector::ExportChange;
use autosync_model::{CsObject, ExportKind};
use autosync_store::{CsFilter, StoreResult};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One page to send: the changes and what is remembered of each.
pub(super) type Batch = (Vec<ExportChange>, Vec<Sent>);

/// How pages of pending exports are read and sent.
#[derive(Clone, Copy)]
pub(super) struct Pages<'a> {
    /// Read light: the MA keeps value rows (see `rows`).
    pub light: bool,
    /// The object types' ranks: the pending exports are read once per
    /// rank, lowest first (empty: once, every type).
    pub ranks: &'a rustc_hash::FxHashMap<String, usize>,
    /// The attributes the connector takes value-level changes of; the
    /// others' are sent as whole values.
    pub value_changes: &'a [String],
    /// How many pending exports a page holds (at most [`PAGE`]): the
    /// sender makes it smaller while pages take the connector over a
    /// second (a directory at a few hundred operations a second), so
    /// that a cancel is seen and progress shown within about a second.
    pub size: &'a AtomicUsize,
}

/// The page size after a page of `sent` changes took `took`, with pages
/// of `size` objects read: halved from what was sent (down to 50) while a
/// page takes over a second, doubled from `size` (up to [`PAGE`]) while it
/// takes under a quarter of one (a page may send fewer changes than it
/// read: another rank's objects, references held).
pub(super) fn next_size(size: usize, sent: usize, took: std::time::Duration) -> usize {
    if took > std::time::Duration::from_secs(1) {
        (sent / 2).max(50)
    } else if took < std::time::Duration::from_millis(250) {
        (size.max(50) * 2).min(PAGE)
    } else {
        size.clamp(50, PAGE)
    }
}

/// Read the pages of pending exports of `ma` until there are none or the
/// receiver hangs up.
pub(super) fn read_pages(
    store: &dyn autosync_store::Store,
    ma: &str,
    how: Pages<'_>,
    tx: &std::sync::mpsc::SyncSender<StoreResult<Batch>>,
) {
    let levels = how.ranks.values().copied().max().unwrap_or(0);
    for level in 0..=levels {
        if !read_level(store, ma, &how, level, tx) {
            return;
        }
    }
}

/// The pending exports of object types of rank `level` (all of them when
/// no type has a rank), page by page; `false` when reading stopped (an
/// error sent, or the receiver gone).
fn read_level(
    store: &dyn autosync_store::Store,
    ma: &str,
    how: &Pages<'_>,
    level: usize,
    tx: &std::sync::mpsc::SyncSender<StoreResult<Batch>>,
) -> bool {
    let of_level = |x: &CsObject| {
        how.ranks.is_empty() || how.ranks.get(&x.object_type).copied().unwrap_or(0) == level
    };
    let mut after = 0;
    loop {
        let size = how.size.load(Ordering::Relaxed).clamp(1, PAGE);
        let page = store.read().and_then(|mut r| {
            if !how.light {
                let mut page = r.cs_page(ma, CsFilter::PendingExport, after, size)?;
                let last = page.last().map(|x| x.id);
                page.retain(of_level);
                return Ok((page, Vec::new(), last));
            }
            let mut page = r.cs_page_light(ma, CsFilter::PendingExport, after, size)?;
            let last = page.last().map(|x| x.id);
            page.retain(of_level);
            // For a connector that replaces whole values: each value-level
            // change made whole (the fingerprint stays the pending one's).
            let mut wholes = Vec::new();
            // The changes made whole, as they were (for the history).
            for x in &page {
                if let Some(p) = x
                    .pending_export
                    .as_ref()
                    .filter(|p| p.values.keys().any(|a| !how.value_changes.contains(a)))
                {
                    let mut whole = p.clone();
                    whole.values.retain(|a, _| !how.value_changes.contains(a));
                    crate::rows::whole_export(r.as_mut(), x, &mut whole)?;
                    let mut values = p.values.clone();
                    values.retain(|a, _| how.value_changes.contains(a));
                    let mut made_whole = p.values.clone();
                    made_whole.retain(|a, _| !how.value_changes.contains(a));
                    wholes.push((x.id, whole.changes, values, made_whole));
                }
            }
            Ok((page, wholes, last))
        });
        let (page, wholes, last) = match page {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Err(e));
                return false;
            }
        };
        let Some(last) = last else { return true };
        after = last;
        if page.is_empty() {
            continue;
        }
        let (mut changes, mut sent) = changes_of(page);
        for (id, whole, values, made_whole) in wholes {
            if let Some(i) = sent.iter().position(|s| s.id == id)
                && let Some(c) = changes.get_mut(i)
            {
                c.values = values;
                c.changes = whole;
                sent[i].made_whole = Some(Box::new(made_whole));
            }
        }
        for (c, s) in changes.iter().zip(sent.iter_mut()) {
            s.values = c
                .values
                .values()
                .map(|d| (d.add.len() + d.remove.len()) as u64)
                .sum();
        }
        if tx.send(Ok((changes, sent))).is_err() {
            return false;
        }
    }
}

/// The changes to send for a page of objects with a pending export.
fn changes_of(page: Vec<CsObject>) -> (Vec<ExportChange>, Vec<Sent>) {
    let mut changes = Vec::with_capacity(page.len());
    let mut sent = Vec::with_capacity(page.len());
    for cs in page {
        let Some(p) = cs.pending_export else { continue };
        sent.push(Sent {
            change: None,
            made_whole: None,
            values: 0,
            id: cs.id,
            fingerprint: fingerprint(&p),
            kind: p.kind,
            outcome: None,
            held: None,
        });
        let dn = match p.kind {
            ExportKind::Add | ExportKind::DeleteAdd => p.new_dn.clone().unwrap_or(cs.dn),
            _ => cs.dn,
        };
        let new_dn = if p.kind == ExportKind::Rename || p.kind == ExportKind::Update {
            p.new_dn
        } else {
            None
        };
        changes.push(ExportChange {
            values: p.values,
            object_type: cs.object_type,
            anchor: cs.anchor,
            dn,
            kind: p.kind,
            changes: p.changes,
            new_dn,
        });
    }
    (changes, sent)
}

#[cfg(test)]
mod tests {
    use super::{PAGE, next_size};
    use std::time::Duration;

    #[test]
    fn a_page_slower_than_a_second_should_halve_and_a_fast_one_double_up_to_the_page() {
        assert_eq!(next_size(500, 500, Duration::from_secs(2)), 250);
        assert_eq!(next_size(500, 60, Duration::from_secs(9)), 50);
        assert_eq!(next_size(500, 500, Duration::from_millis(10)), 1000);
        assert_eq!(next_size(PAGE, PAGE, Duration::from_millis(10)), PAGE);
        // Few changes sent of a page read whole: it grows from its size.
        assert_eq!(next_size(1000, 0, Duration::from_millis(10)), 2000);
        assert_eq!(next_size(700, 700, Duration::from_millis(600)), 700);
    }
}
