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
    /// Numbers by name: open addressing on [`Slot`]s, a power of two of
    /// them, at most half full (empty when there are no names).
    slots: Vec<Slot>,
}

/// A name's number beside its length and its first and last eight bytes:
/// a name of up to 16 bytes is found by comparing integers, with no call
/// to `memcmp` or hasher (every name of every body is looked up: a
/// general hash map took 60-70 instructions per name, more than the text
/// it saved cost).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// 0 for an empty slot.
    id: u32,
    len: u32,
    head: u64,
    tail: u64,
}

/// A name's first and last eight bytes (zero-padded when shorter; for up
/// to 16 bytes they cover the whole name).
#[inline]
fn words(b: &[u8]) -> (u64, u64) {
    match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(h), Some(t)) => (u64::from_le_bytes(*h), u64::from_le_bytes(*t)),
        _ => {
            let mut w = 0u64;
            for (i, byte) in b.iter().enumerate() {
                w |= u64::from(*byte) << (8 * i);
            }
            (w, 0)
        }
    }
}

#[inline]
fn slot_of(len: usize, head: u64, tail: u64, mask: usize) -> usize {
    let h = (head ^ tail.rotate_left(29) ^ (len as u64).rotate_right(8))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as usize & mask
}

impl Names {
    /// The number of `name`, if it has one.
    #[inline]
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let b = name.as_bytes();
        let (head, tail) = words(b);
        let mask = self.slots.len() - 1;
        let mut i = slot_of(b.len(), head, tail, mask);
        loop {
            let s = self.slots.get(i)?;
            if s.id == 0 {
                return None;
            }
            if s.len as usize == b.len()
                && s.head == head
                && s.tail == tail
                && (b.len() <= 16 || self.name(u64::from(s.id)) == Some(name))
            {
                return Some(s.id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Add `text` as number `by_id.len() + 1` (the caller checked it is
    /// new).
    fn push(&mut self, text: Box<str>) {
        let Ok(id) = u32::try_from(self.by_id.len() + 1) else {
            return;
        };
        self.by_id.push(text);
        if self.by_id.len() * 2 > self.slots.len() {
            self.rehash();
        } else if let Some(last) = self.by_id.last() {
            let (head, tail) = words(last.as_bytes());
            let len = last.len();
            place(&mut self.slots, id, len, head, tail);
        }
    }

    /// Rebuild the slots for the names there are, at most half full.
    fn rehash(&mut self) {
        let want = (self.by_id.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![Slot::default(); want];
        for (i, text) in self.by_id.iter().enumerate() {
            let Ok(id) = u32::try_from(i + 1) else { break };
            let (head, tail) = words(text.as_bytes());
            place(&mut slots, id, text.len(), head, tail);
        }
        self.slots = slots;
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
            d.push((*n).into());
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
            names.push(text.into());
        }
        Ok(names)
    }
}

/// Put number `id` in the first free slot of its probe sequence.
fn place(slots: &mut [Slot], id: u32, len: usize, head: u64, tail: u64) {
    let mask = slots.len().wrapping_sub(1);
    let mut i = slot_of(len, head, tail, mask);
    for _ in 0..slots.len() {
        match slots.get_mut(i) {
            Some(s) if s.id == 0 => {
                *s = Slot {
                    id,
                    len: u32::try_from(len).unwrap_or(u32::MAX),
                    head,
                    tail,
                };
                return;
            }
            _ => i = (i + 1) & mask,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_name_is_found_with_its_number_and_no_other_is(
            names in proptest::collection::btree_set(".{0,24}", 0..80),
            others in proptest::collection::vec(".{0,24}", 0..40),
        ) {
            let list: Vec<&str> = names.iter().map(String::as_str).collect();
            let d = Names::of(&list);
            for (i, n) in list.iter().enumerate() {
                prop_assert_eq!(d.id(n), Some(u32::try_from(i + 1).unwrap()));
                prop_assert_eq!(d.name(u64::try_from(i + 1).unwrap()), Some(*n));
            }
            for o in &others {
                if !names.contains(o) {
                    prop_assert_eq!(d.id(o), None);
                }
            }
        }
    }

    #[test]
    fn names_alike_in_length_head_and_tail_are_told_apart() {
        // Same length, same first and last eight bytes, different middles.
        let a = "employee_A_identifier";
        let b = "employee_B_identifier";
        let d = Names::of(&[a, "", "x", "x\0", "12345678", "123456789"]);
        assert_eq!(d.id(a), Some(1));
        assert_eq!(d.id(b), None);
        assert_eq!(d.id(""), Some(2));
        assert_eq!(d.id("x"), Some(3));
        assert_eq!(d.id("x\0"), Some(4));
        assert_eq!(d.id("x\0\0"), None);
        assert_eq!(d.id("12345678"), Some(5));
        assert_eq!(d.id("123456789"), Some(6));
        assert_eq!(d.id("12345679"), None);
        assert_eq!(Names::default().id("x"), None);
    }
}
