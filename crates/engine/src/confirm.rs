//! Confirming imports of a source without change tracking: what a
//! confirming import asked for after an export (`RunReason::confirming`)
//! reads back, when the connector can look objects up by anchor, instead
//! of reading the whole source (see `import`).
//!
//! It looks up the objects whose export is unconfirmed when they are few
//! (at most [`LOOK_UP_MAX`], and past [`LOOK_UP_ANY`] a quarter of the
//! connector space) and the source was read whole in the last minute
//! ([`WHOLE_READ_EVERY_MS`]): changes made outside autosync to objects it
//! never exported are still seen at least that often while exports flow.

use autosync_store::{CsFilter, Store, StoreResult, StoreTxn};

/// A confirming import reads back at most this many objects one by one;
/// past it (or past a quarter of the connector space) it reads the source.
const LOOK_UP_MAX: u64 = 10_000;
/// Up to this many, a confirming import reads them one by one whatever
/// the connector space's size.
const LOOK_UP_ANY: u64 = 64;
/// A confirming import reads the source whole when the last whole read of
/// it is older than this (one minute).
const WHOLE_READ_EVERY_MS: i64 = 60_000;

/// The store's meta key of when the MA's source was last read whole (an
/// import that read everything and staged the deletes of the rest).
pub fn whole_read_key(ma: &str) -> String {
    format!("import.whole-read:{ma}")
}

/// Records, in the import's last transaction, that `ma`'s source was read
/// whole now.
pub(crate) fn note_whole_read(txn: &mut dyn StoreTxn, ma: &str) -> StoreResult<()> {
    let now = chrono::Utc::now().timestamp_millis().to_string();
    txn.set_meta(&whole_read_key(ma), Some(&now))
}

/// The anchors of `ma`'s objects whose export is unconfirmed, when a
/// confirming import should read those alone (see the module's text);
/// `None` when it should read the source whole. The connector space is
/// counted only past [`LOOK_UP_ANY`] (a count reads its whole index).
pub(crate) fn unconfirmed_anchors(store: &dyn Store, ma: &str) -> StoreResult<Option<Vec<String>>> {
    let mut read = store.read()?;
    let read_lately = read
        .meta(&whole_read_key(ma))?
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| {
            let age = chrono::Utc::now().timestamp_millis().saturating_sub(t);
            (0..WHOLE_READ_EVERY_MS).contains(&age)
        });
    if !read_lately {
        return Ok(None);
    }
    let unconfirmed = read.cs_count(ma, CsFilter::UnconfirmedExport)?;
    if unconfirmed > LOOK_UP_MAX
        || (unconfirmed > LOOK_UP_ANY && unconfirmed > read.cs_count(ma, CsFilter::All)? / 4)
    {
        return Ok(None);
    }
    let mut anchors = Vec::new();
    let mut after = 0;
    loop {
        let page = read.cs_page_light(ma, CsFilter::UnconfirmedExport, after, 1_000)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        anchors.extend(page.into_iter().map(|o| o.anchor));
    }
    // Adds the system refused (`already-exists`): the object under their
    // anchor is read too, so that the import makes the add an update when
    // the MA's join rules join it, as the error says (`import::pending_add`).
    let mut after = 0;
    loop {
        let page = read.cs_page_light(ma, CsFilter::Errors, after, 1_000)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        if anchors.len() as u64 > LOOK_UP_MAX {
            return Ok(None);
        }
        anchors.extend(
            page.into_iter()
                .filter(|o| {
                    o.unconfirmed_export.is_none()
                        && o.pending_export
                            .as_ref()
                            .is_some_and(|p| p.kind == autosync_model::ExportKind::Add)
                })
                .map(|o| o.anchor),
        );
    }
    Ok(Some(anchors))
}
