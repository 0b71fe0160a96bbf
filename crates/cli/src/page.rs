//! Pages of a listing (`cs`, `mv`, `history`): where a page starts
//! (`--offset`), and the line that says what it showed and where the next
//! one starts.
//!
//! An offset is skipped through ids in chunks (or by the store, for the
//! history), so an offset of 100,000 never holds 100,000 objects.

use autosync_model::{CsId, MvId};
use autosync_store::{CsFilter, MvQuery, StoreRead, StoreResult};

/// How many ids one step of a skip reads.
const SKIP_CHUNK: usize = 10_000;

/// The id after which the page that skips `offset` objects of `ma`
/// (matching `filter`) starts.
pub fn cs_after(
    read: &mut dyn StoreRead,
    ma: &str,
    filter: CsFilter,
    offset: usize,
) -> StoreResult<CsId> {
    skip(offset, |after, n| read.cs_page_ids(ma, filter, after, n))
}

/// The id after which the page that skips `offset` metaverse objects
/// matching `query` starts.
pub fn mv_after(read: &mut dyn StoreRead, query: &MvQuery, offset: usize) -> StoreResult<MvId> {
    skip(offset, |after, n| read.mv_page_ids(query, after, n))
}

/// Skips `offset` ids in id order, `SKIP_CHUNK` at a time (`ids(after, n)`:
/// at most `n` ids after `after`); the last id skipped (0: none).
fn skip(
    offset: usize,
    mut ids: impl FnMut(i64, usize) -> StoreResult<Vec<i64>>,
) -> StoreResult<i64> {
    let (mut after, mut left) = (0, offset);
    while left > 0 {
        let chunk = ids(after, left.min(SKIP_CHUNK))?;
        let Some(last) = chunk.last() else { break };
        after = *last;
        left -= chunk.len();
    }
    Ok(after)
}

/// What a page showed: it read one item more than `--limit` to know
/// whether more remain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Items skipped before it (`--offset`).
    pub offset: usize,
    /// Items it shows.
    pub shown: usize,
    /// Items in all, when the store counts them cheaply.
    pub total: Option<u64>,
    /// Whether items remain after it.
    pub more: bool,
}

impl Page {
    /// The page of `items` read with `limit + 1`: cut to `limit`.
    pub fn cut<T>(items: &mut Vec<T>, offset: usize, limit: usize, total: Option<u64>) -> Page {
        let more = items.len() > limit;
        items.truncate(limit);
        Page {
            offset,
            shown: items.len(),
            total,
            more,
        }
    }

    /// The line after a page of `what` (e.g. `runs`): empty when the page
    /// is the whole listing; else `showing 21-40 of 1,234; next: --offset
    /// 40`.
    pub fn footer(&self, what: &str) -> String {
        if self.offset == 0 && !self.more {
            return String::new();
        }
        let of = self
            .total
            .map(|t| format!(" of {}", thousands(t)))
            .unwrap_or_default();
        if self.shown == 0 {
            return format!(
                "no {what} after the first {}{of}\n",
                thousands(self.offset as u64)
            );
        }
        let first = self.offset + 1;
        let last = self.offset + self.shown;
        let mut line = format!(
            "showing {what} {}-{}{of}",
            thousands(first as u64),
            thousands(last as u64)
        );
        if self.more {
            line.push_str(&format!("; next: --offset {last}"));
        }
        line.push('\n');
        line
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_should_group_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn a_page_should_say_what_it_shows_and_where_the_next_starts() {
        let page = |offset, len: usize, limit, total| {
            let mut items: Vec<usize> = (0..len).collect();
            Page::cut(&mut items, offset, limit, total)
        };
        // The whole listing on one page: nothing to say.
        assert_eq!(page(0, 5, 20, Some(5)).footer("objects"), "");
        assert_eq!(
            page(20, 21, 20, Some(1234)).footer("objects"),
            "showing objects 21-40 of 1,234; next: --offset 40\n"
        );
        assert_eq!(
            page(0, 3, 2, None).footer("objects"),
            "showing objects 1-2; next: --offset 2\n"
        );
        assert_eq!(
            page(1220, 14, 20, Some(1234)).footer("runs"),
            "showing runs 1,221-1,234 of 1,234\n"
        );
        assert_eq!(
            page(5000, 0, 20, Some(1234)).footer("runs"),
            "no runs after the first 5,000 of 1,234\n"
        );
    }
}
