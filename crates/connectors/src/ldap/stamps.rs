//! Delta import by change stamps, for servers without content
//! synchronisation or anchors other than `entryUUID`: a paged search of
//! the entries whose stamp (`entryCSN` where the schema has it, else
//! `modifyTimestamp`) is at or after the watermark's `from`.
//!
//! An entry changed while a read runs may be passed by it with a stamp
//! older than the newest the read saw. So the next read starts earlier:
//! `from` is the newest stamp read, less the time the read took and one
//! second (stamps are whole seconds at worst). Every change made during a
//! read then has a stamp at or after it, whatever the order the server
//! sends entries in. Entries read again for that overlap are left out
//! when their stamp is unique to a change (`entryCSN`) and unchanged;
//! with `modifyTimestamp` (a second's changes share it) they are read
//! again, which changes nothing.
//!
//! Deletes leave no stamp: only a full import sees them. An entry without
//! the stamp (not readable by this account) makes the watermark empty, so
//! that the next delta import reads everything rather than miss changes.

use super::ber::RawEntry;
use super::watermark::Watermark;
use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

/// At most this many (stamp, anchor) pairs are kept to leave out next
/// time; beyond them, entries are only read again.
const SEEN_CAP: usize = 2_000;

/// What one read learns of the stamps.
#[derive(Debug)]
pub struct Stamps {
    attribute: String,
    /// A stamp names one change (`entryCSN`).
    unique: bool,
    search: String,
    /// The last read's latest stamp and its `from`.
    before: Option<(String, String)>,
    /// What the last read left out for next time.
    skip: HashSet<(String, String)>,
    started: Instant,
    finished: Option<Instant>,
    max: Option<String>,
    /// The latest (stamp, anchor) pairs read.
    recent: BTreeSet<(String, String)>,
    /// Entries read without a stamp.
    missing: u64,
}

impl Stamps {
    /// A read by `attribute`, from `before` (the saved watermark) or from
    /// the beginning; `search`: the fingerprint of the settings.
    pub fn new(attribute: &str, search: String, before: Option<Watermark>) -> Stamps {
        let mut out = Stamps {
            unique: attribute.eq_ignore_ascii_case("entryCSN"),
            attribute: attribute.to_owned(),
            search,
            before: None,
            skip: HashSet::new(),
            started: Instant::now(),
            finished: None,
            max: None,
            recent: BTreeSet::new(),
            missing: 0,
        };
        if let Some(Watermark::Stamp {
            max, from, seen, ..
        }) = before
        {
            out.before = Some((max, from));
            out.skip = seen.into_iter().collect();
        }
        out
    }

    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// Whether this read starts from a watermark (else it reads
    /// everything).
    pub fn is_delta(&self) -> bool {
        self.before.is_some()
    }

    /// `filter` narrowed to the entries changed since the watermark.
    pub fn filter(&self, filter: &str) -> String {
        match &self.before {
            Some((_, from)) => format!(
                "(&{filter}({}>={}))",
                self.attribute,
                ldap3::ldap_escape(from.as_str())
            ),
            None => filter.to_owned(),
        }
    }

    /// Takes entry `e` (anchored `anchor`); true when the last read
    /// already had it with this stamp: leave it out.
    pub fn observe(&mut self, anchor: Option<&str>, e: &RawEntry) -> bool {
        let stamp = e
            .values(&self.attribute)
            .and_then(|v| v.first())
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| seconds(v).is_some());
        let Some(stamp) = stamp else {
            self.missing += 1;
            return false;
        };
        if self.max.as_deref().is_none_or(|m| stamp > m) {
            self.max = Some(stamp.to_owned());
        }
        let Some(anchor) = anchor else {
            return false;
        };
        let pair = (anchor.to_owned(), stamp.to_owned());
        let known = self.unique && self.skip.contains(&pair);
        if self.unique {
            self.recent.insert((pair.1, pair.0));
            if self.recent.len() > SEEN_CAP {
                self.recent.pop_first();
            }
        }
        known
    }

    /// The read has ended.
    pub fn finish(&mut self) {
        self.finished.get_or_insert_with(Instant::now);
    }

    /// The watermark the read leaves; `None` when the next read must read
    /// everything (an entry without a stamp, or nothing ever read).
    pub fn watermark(&self) -> Option<Watermark> {
        if self.missing > 0 {
            return None;
        }
        let before = self.before.as_ref().map(|(m, _)| m.clone());
        let max = match (self.max.clone(), before) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b)?,
        };
        let took = self
            .finished
            .unwrap_or_else(Instant::now)
            .duration_since(self.started);
        let back = i64::try_from(took.as_secs()).unwrap_or(i64::MAX / 2)
            + i64::from(took.subsec_nanos() > 0)
            + 1;
        let from = stamp_at(seconds(&max)?.saturating_sub(back), self.unique)?;
        let seen = self
            .recent
            .iter()
            .filter(|(stamp, _)| *stamp >= from)
            .map(|(stamp, anchor)| (anchor.clone(), stamp.clone()))
            .collect();
        Some(Watermark::Stamp {
            search: self.search.clone(),
            attribute: self.attribute.clone(),
            max,
            from,
            seen,
        })
    }

    /// Entries read without a stamp (then the watermark is empty).
    pub fn missing(&self) -> u64 {
        self.missing
    }
}

/// The UTC seconds of a generalized time or CSN
/// (`20240105120000Z`, `20240105120000.123456Z#000000#000#000000`).
fn seconds(stamp: &str) -> Option<i64> {
    let digits = stamp.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// The stamp of UTC second `secs`, written as a CSN or a generalized time.
fn stamp_at(secs: i64, csn: bool) -> Option<String> {
    let t = chrono::DateTime::from_timestamp(secs, 0)?;
    let digits = t.format("%Y%m%d%H%M%S");
    Some(if csn {
        format!("{digits}.000000Z#000000#000#000000")
    } else {
        format!("{digits}Z")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stamp: Option<&str>) -> RawEntry {
        RawEntry {
            dn: "uid=a".into(),
            attrs: stamp
                .map(|s| vec![("entryCSN".to_owned(), vec![s.as_bytes().to_vec()])])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn stamps_should_parse_and_write_back() {
        assert_eq!(seconds("19700101000010Z"), Some(10));
        assert_eq!(
            seconds("20240105120000.123456Z#000000#000#000000"),
            seconds("20240105120000Z")
        );
        assert_eq!(seconds("2024"), None);
        assert_eq!(seconds("2024010512000xZ"), None);
        assert_eq!(seconds("20241305120000Z"), None);
        assert_eq!(stamp_at(10, false).unwrap(), "19700101000010Z");
        assert_eq!(
            stamp_at(10, true).unwrap(),
            "19700101000010.000000Z#000000#000#000000"
        );
    }

    #[test]
    fn the_next_read_should_start_before_the_latest_stamp_and_leave_out_what_it_had() {
        let csn = |s: &str| format!("20240105{s}.000001Z#000000#000#000000");
        let mut first = Stamps::new("entryCSN", "f".into(), None);
        assert!(!first.is_delta());
        assert_eq!(first.filter("(x=1)"), "(x=1)");
        assert!(!first.observe(Some("a"), &entry(Some(&csn("120000")))));
        assert!(!first.observe(Some("b"), &entry(Some(&csn("120005")))));
        first.finish();
        let w = first.watermark().unwrap();
        let Watermark::Stamp {
            max, from, seen, ..
        } = &w
        else {
            panic!("{w:?}")
        };
        assert_eq!(max, &csn("120005"));
        // Read in well under a second: one second back, and a second for
        // the read.
        assert_eq!(from, "20240105120003.000000Z#000000#000#000000");
        assert_eq!(seen, &vec![("b".to_owned(), csn("120005"))]);

        let mut next = Stamps::new("entryCSN", "f".into(), Some(w));
        assert!(next.is_delta());
        assert_eq!(
            next.filter("(x=1)"),
            "(&(x=1)(entryCSN>=20240105120003.000000Z#000000#000#000000))"
        );
        assert!(
            next.observe(Some("b"), &entry(Some(&csn("120005")))),
            "unchanged"
        );
        assert!(
            !next.observe(Some("c"), &entry(Some(&csn("120004")))),
            "new"
        );
        next.finish();
        let Some(Watermark::Stamp { max, seen, .. }) = next.watermark() else {
            panic!()
        };
        assert_eq!(max, csn("120005"), "the latest stamp is kept");
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn an_entry_without_a_stamp_should_empty_the_watermark() {
        let mut s = Stamps::new("entryCSN", "f".into(), None);
        s.observe(
            Some("a"),
            &entry(Some("20240105120000.000001Z#000000#000#000000")),
        );
        s.observe(Some("b"), &entry(None));
        assert_eq!(s.missing(), 1);
        assert_eq!(s.watermark(), None);
        // Nothing read, nothing to start from.
        assert_eq!(Stamps::new("entryCSN", "f".into(), None).watermark(), None);
    }

    #[test]
    fn modify_timestamps_should_be_read_again_not_left_out() {
        let mut s = Stamps::new("modifyTimestamp", "f".into(), None);
        let e = RawEntry {
            dn: "uid=a".into(),
            attrs: vec![("modifyTimestamp".into(), vec![b"20240105120000Z".to_vec()])],
        };
        s.observe(Some("a"), &e);
        let w = s.watermark().unwrap();
        let mut next = Stamps::new("modifyTimestamp", "f".into(), Some(w));
        assert!(!next.observe(Some("a"), &e));
    }
}
