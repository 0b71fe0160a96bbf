//! The store's dictionary of names (table `name`, schema version 4):
//! attribute names, object types and management-agent names get a small
//! number, and an object body (format `0xB2`, see `bin`) carries the number
//! instead of the text. Every body repeats its attribute names; numbers
//! make a synchronised person about a fifth smaller, which the writer, the
//! WAL, the checkpoint and every decode pay for.
//!
//! Rules that keep every body readable:
//! - The dictionary only grows: a number, once committed, names the same
//!   text for ever (nothing updates or deletes a row of `name`).
//! - A number is used only once its row is committed ([`declare`] publishes
//!   after its commit), so any snapshot that holds a body also holds every
//!   number the body uses.
//! - A name without a number is written as text: an encoder may use an
//!   old copy of the dictionary.
//! - A reader that meets a number its copy lacks (another process declared
//!   it later) loads the dictionary again from its own snapshot and decodes
//!   once more ([`NameCache::reload`]).

use super::error;
use crate::api::StoreResult;
use rusqlite::Connection;
use rustc_hash::FxHashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Most names the dictionary takes (a guard against a configuration that
/// declares names without end; beyond it names stay text).
pub(crate) const MAX_NAMES: usize = 100_000;

/// One copy of the dictionary.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// `by_id[n - 1]` is the text of number `n`.
    by_id: Vec<Box<str>>,
    by_name: FxHashMap<Box<str>, u32>,
}

impl Names {
    /// The number of `name`, if it has one.
    #[inline]
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        if self.by_id.is_empty() {
            return None;
        }
        self.by_name.get(name).copied()
    }

    /// The text of number `id`.
    #[inline]
    pub(crate) fn name(&self, id: u64) -> Option<&str> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        self.by_id.get(i).map(|s| &**s)
    }

    /// A dictionary numbering `names` 1, 2, 3...
    #[cfg(test)]
    pub(crate) fn of(names: &[&str]) -> Names {
        let mut d = Names::default();
        for n in names {
            let id = u32::try_from(d.by_id.len() + 1).unwrap();
            d.by_name.insert((*n).into(), id);
            d.by_id.push((*n).into());
        }
        d
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Read the whole dictionary through `conn` (its snapshot).
    pub(crate) fn load(conn: &Connection, path: &Path) -> StoreResult<Names> {
        let err = |e| error::sql(path, "read the name dictionary of store", e);
        let mut stmt = conn
            .prepare_cached("SELECT id, name FROM name ORDER BY id")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut names = Names::default();
        while let Some(row) = rows.next().map_err(err)? {
            let id: i64 = row.get(0).map_err(err)?;
            let text: String = row.get(1).map_err(err)?;
            // Numbers are handed out 1, 2, 3... by SQLite and never deleted;
            // a gap would mean a damaged table.
            if usize::try_from(id).ok() != Some(names.by_id.len() + 1) {
                return Err(error::other(
                    crate::api::StoreErrorKind::Corrupt,
                    path,
                    format!(
                        "the name dictionary of the store is damaged: number {id} follows {}",
                        names.by_id.len()
                    ),
                ));
            }
            let text: Box<str> = text.into();
            names
                .by_name
                .insert(text.clone(), u32::try_from(id).unwrap_or(u32::MAX));
            names.by_id.push(text);
        }
        Ok(names)
    }
}

/// The copy of the dictionary every connection of one store uses.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    current: RwLock<Arc<Names>>,
}

impl NameCache {
    pub(crate) fn new(names: Names) -> Self {
        NameCache {
            current: RwLock::new(Arc::new(names)),
        }
    }

    /// The current copy.
    pub(crate) fn get(&self) -> Arc<Names> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Keep `names` if it knows more than the current copy (copies only
    /// grow, so the longer one is the newer).
    fn offer(&self, names: Names) -> Arc<Names> {
        let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
        if names.len() > cur.len() {
            *cur = Arc::new(names);
        }
        Arc::clone(&cur)
    }

    /// Read the dictionary again through `conn` (a body used a number this
    /// copy lacks) and return the newer copy.
    pub(crate) fn reload(&self, conn: &Connection, path: &Path) -> StoreResult<Arc<Names>> {
        let names = Names::load(conn, path)?;
        Ok(self.offer(names))
    }

    /// Publish a copy read inside a transaction that has committed.
    pub(crate) fn committed(&self, names: Names) -> Arc<Names> {
        self.offer(names)
    }
}

/// Give every name of `names` a number (inside the caller's write
/// transaction) and return the whole dictionary as this transaction sees
/// it; the caller publishes it once the transaction commits.
pub(crate) fn declare(conn: &Connection, path: &Path, names: &[&str]) -> StoreResult<Names> {
    let have = Names::load(conn, path)?;
    let mut room = MAX_NAMES.saturating_sub(have.len());
    let err = |e| error::sql(path, "add to the name dictionary of store", e);
    let mut added = false;
    {
        let mut stmt = conn
            .prepare_cached("INSERT OR IGNORE INTO name (name) VALUES (?1)")
            .map_err(err)?;
        for name in names {
            if room == 0 {
                tracing::warn!(store = %path.display(), limit = MAX_NAMES, "the name dictionary is full; further names are stored as text");
                break;
            }
            if have.id(name).is_some() {
                continue;
            }
            if stmt.execute([name]).map_err(err)? > 0 {
                room -= 1;
                added = true;
            }
        }
    }
    if added {
        Names::load(conn, path)
    } else {
        Ok(have)
    }
}
