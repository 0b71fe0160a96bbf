//! The detail of a `duplicate-anchor` error of a file source (CSV, JSON
//! lines): an anchor on several records of one read is read from none of
//! them, and every occurrence says where the others are.

/// The most lines a `duplicate-anchor` error lists (an anchor on thousands
/// of rows would otherwise make each of its errors that long).
const LINES_SHOWN: usize = 10;

/// The detail of a `duplicate-anchor` error: every line that has the
/// anchor (the first [`LINES_SHOWN`] of them), none of which is read.
pub(crate) fn repeated_detail(anchor: &str, lines: &[u64], label: &str) -> String {
    let mut shown: Vec<String> = lines.iter().take(LINES_SHOWN).map(u64::to_string).collect();
    let more = lines.len().saturating_sub(LINES_SHOWN);
    let last = if more > 0 {
        shown.push("...".to_owned());
        format!("{more} more")
    } else {
        shown.pop().unwrap_or_default()
    };
    let (none, until) = if lines.len() > 2 {
        ("none", "all but one are removed")
    } else {
        ("neither", "one is removed")
    };
    format!(
        "anchor {anchor:?} is on lines {} and {last} of {label}: {none} is read; the object is \
         kept as it was until {until}",
        shown.join(", ")
    )
}
