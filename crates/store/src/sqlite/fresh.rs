//! What the writer connection knows about management agents whose
//! connector space it filled itself, starting from empty: the anchors they
//! can hold. An initial provisioning into a new target asks, for every
//! object it adds, whether the target already has one with that anchor;
//! at a million objects those lookups cost more than a tenth of the
//! synchronisation's time, and for an MA filled only by this connection
//! the answer is known without asking SQLite.
//!
//! The knowledge is a superset: a hash of (MA, anchor) of every object
//! written to the MA since it was seen empty (inserts, and updates that
//! may move an object into it). An anchor whose hash is not there has no
//! object; one whose hash is there (written, or a chance match) is looked
//! up as usual. Deletes and rolled-back writes leave hashes behind, which
//! only costs a lookup.
//!
//! The same holds for the metaverse's join index (`mv_key`): per key id
//! (a declared join index) seen empty, a hash of every (key id, text)
//! written since, so that the join lookups of an initial synchronisation
//! into an empty metaverse need not ask SQLite either. The texts are the
//! index's own (strings folded to lower case, `mvindex::texts`), and a
//! lookup hashes its values folded the same way (`mvindex::any_text`).
//! Plain transactions add the keys they write (`SqliteTxn::mv_insert_at`
//! and `mv_update`); `set_mv_index` drops the knowledge.
//!
//! It holds while no other connection commits: a bulk transaction takes
//! it at its begin only if `PRAGMA data_version` is what it was when the
//! knowledge was last handed back, and drops it on any failure. Writes of
//! plain transactions on the same connection add their hashes
//! (`SqliteTxn::cs_insert_row` and `cs_update_row`).

use rustc_hash::{FxHashSet, FxHasher};
use std::hash::{Hash, Hasher};

/// Hashes kept at most; past this the knowledge is dropped (lookups go to
/// SQLite again). Two million hashes take about 36 MiB.
const KEYS_MAX: usize = 2_000_000;

/// Hash of a connector-space object's (MA, anchor).
pub(crate) fn cs_key(ma: &str, anchor: &str) -> u64 {
    let mut h = FxHasher::default();
    ma.hash(&mut h);
    anchor.hash(&mut h);
    h.finish()
}

/// Hash of a metaverse index key (key id, text as the index holds it:
/// folded).
pub(crate) fn mv_text_key(k: i64, text: &str) -> u64 {
    let mut h = FxHasher::default();
    k.hash(&mut h);
    text.hash(&mut h);
    h.finish()
}

/// MAs known to hold no object but those written since they were empty,
/// and metaverse index keys known to hold no text but those written since.
#[derive(Default)]
pub(crate) struct Fresh {
    /// The writer's `PRAGMA data_version` when this was last valid.
    pub(crate) version: i64,
    mas: FxHashSet<String>,
    keys: FxHashSet<u64>,
    /// Metaverse index key ids known.
    mv_ks: FxHashSet<i64>,
    /// Hashes of (key id, text) written to known key ids.
    mv_texts: FxHashSet<u64>,
}

impl Fresh {
    /// A new, empty knowledge, valid at `version`.
    pub(crate) fn at(version: i64) -> Self {
        Fresh {
            version,
            ..Fresh::default()
        }
    }

    /// Whether `ma` is known (filled only by this connection).
    pub(crate) fn knows(&self, ma: &str) -> bool {
        self.mas.contains(ma)
    }

    /// `ma` had no object just now (and this transaction has written none
    /// to it yet).
    pub(crate) fn add_empty(&mut self, ma: &str) {
        if !self.mas.contains(ma) {
            self.mas.insert(ma.to_owned());
        }
    }

    /// Whether an object with this (MA, anchor) hash may exist in a known
    /// MA (`false`: it surely does not).
    pub(crate) fn may_hold(&self, key: u64) -> bool {
        self.keys.contains(&key)
    }

    /// An object of `ma` with this (MA, anchor) hash was written. Returns
    /// `false` when the knowledge grew too large and must be dropped.
    #[must_use]
    pub(crate) fn wrote(&mut self, ma: &str, key: u64) -> bool {
        if self.mas.contains(ma) {
            self.keys.insert(key);
        }
        self.keys.len() <= KEYS_MAX
    }

    /// Whether metaverse index key `k` is known (filled only by this
    /// connection).
    pub(crate) fn knows_mv(&self, k: i64) -> bool {
        self.mv_ks.contains(&k)
    }

    /// Index key `k` had no text just now (and this transaction has written
    /// none to it yet).
    pub(crate) fn add_empty_mv(&mut self, k: i64) {
        self.mv_ks.insert(k);
    }

    /// Whether a text with this (key id, text) hash may be in a known key
    /// (`false`: it surely is not).
    pub(crate) fn may_hold_mv(&self, key: u64) -> bool {
        self.mv_texts.contains(&key)
    }

    /// A metaverse object with this (key id, text) hash was written.
    /// Returns `false` when the knowledge grew too large and must be
    /// dropped.
    #[must_use]
    pub(crate) fn wrote_mv(&mut self, k: i64, key: u64) -> bool {
        if self.mv_ks.contains(&k) {
            self.mv_texts.insert(key);
        }
        self.mv_texts.len() <= KEYS_MAX
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn only_written_anchors_of_known_mas_may_exist() {
        let mut f = Fresh::at(7);
        assert!(!f.knows("target"));
        f.add_empty("target");
        assert!(f.knows("target"));
        assert!(f.wrote("target", cs_key("target", "a")));
        assert!(f.wrote("source", cs_key("source", "b")));
        assert!(f.may_hold(cs_key("target", "a")));
        assert!(!f.may_hold(cs_key("target", "b")));
        // Not remembered: `source` is not known.
        assert!(!f.may_hold(cs_key("source", "b")));
        assert_eq!(f.version, 7);
    }

    #[test]
    fn only_written_texts_of_known_index_keys_may_exist() {
        let mut f = Fresh::at(1);
        assert!(!f.knows_mv(3));
        f.add_empty_mv(3);
        assert!(f.knows_mv(3));
        assert!(f.wrote_mv(3, mv_text_key(3, "E1")));
        assert!(f.wrote_mv(4, mv_text_key(4, "E2")));
        assert!(f.may_hold_mv(mv_text_key(3, "E1")));
        assert!(!f.may_hold_mv(mv_text_key(3, "E2")));
        // Not remembered: key 4 is not known.
        assert!(!f.may_hold_mv(mv_text_key(4, "E2")));
    }
}
