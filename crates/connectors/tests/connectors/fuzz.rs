//! Fuzzing the file connectors' import (reliability.md: "parsers of
//! untrusted input are fuzzed"), bounded so that it runs in CI.
//!
//! Files are written to a temporary folder and read through the real
//! connector's full import stream, batch by batch, as the engine reads them.
//! Inputs: arbitrary bytes, and valid files (quoted fields, embedded line
//! breaks, CRLF/LF/CR mixes, a BOM, huge fields, multi-valued cells) that are
//! then mutated: bytes flipped, inserted and deleted, lines truncated, joined,
//! duplicated, garbage lines added, invalid UTF-8 spliced in. The generator
//! knows every row it wrote, the lines it is on and whether a mutation
//! touched it; the properties are checked against that, never against
//! another reading of the file:
//!
//! - the import never panics and ends (a bounded number of batches), and
//!   the file-change check passes (a watermark comes);
//! - every row no mutation touched is imported with its exact values, or
//!   reported as an error on one of its own lines (never swallowed by a
//!   broken row before it: an open quote included); in a valid file every
//!   row is imported and nothing is an error;
//! - every error is located `<file> line <n>` on a mutated line (or on the
//!   lines of an untouched row it reports), in file order;
//! - every mutated stretch of the file that still holds text yields an
//!   item: its row imported, an error on its lines, or an object between
//!   the rows around it.
//!
//! Case counts are fixed below and the seed is fixed, so CI runs the same
//! inputs every time; `PROPTEST_CASES=100000 PROPTEST_RNG_SEED=<n>` runs a
//! deeper search. Failing inputs are kept in `proptest-regressions/`.

use crate::common::{build, person};
use crate::fuzz_files::{
    CsvRow, File, JsonRow, csv_expected, csv_file, jsonl_file, mutate, mutation,
};
use autosync_connector::{Connector, ImportItem};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_model::Attributes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::RngSeed;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Small batches, so that batch boundaries fall everywhere.
const BATCH: usize = 7;

/// The configuration of every property here: `cases` unless
/// `PROPTEST_CASES` says otherwise, a fixed seed unless `PROPTEST_RNG_SEED`
/// says otherwise.
pub fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x5EED_A570_5C1C);
    }
    c
}

// ---------------------------------------------------------------- running

/// The outcome of one full import: its items, or the whole-step error that
/// stopped it before the first record (a header problem).
fn import(conn: &mut dyn Connector, file_len: usize) -> Result<Vec<ImportItem>, String> {
    let mut stream = conn.full_import(None).map_err(|e| e.to_string())?;
    let mut items = Vec::new();
    // A file of n bytes has at most n + 1 records: more batches is a hang.
    let max_batches = file_len / BATCH + 3;
    for _ in 0..max_batches {
        match stream.next_batch() {
            Ok(Some(batch)) => {
                assert!(
                    !batch.is_empty() && batch.len() <= BATCH,
                    "batch of {} items",
                    batch.len()
                );
                items.extend(batch);
            }
            Ok(None) => {
                assert!(stream.watermark().is_some(), "no watermark at the end");
                assert!(
                    stream.next_batch().unwrap().is_none(),
                    "a batch after the end"
                );
                return Ok(items);
            }
            Err(e) => panic!("whole-step error in the middle of a readable file: {e}"),
        }
    }
    panic!("the import did not end after {max_batches} batches of a {file_len}-byte file");
}

fn csv_connector(dir: &Path) -> Box<dyn Connector> {
    build(
        &CsvFactory,
        dir,
        vec![person()],
        json!({
            "path": "f.csv",
            "batch_size": BATCH,
            "multi_valued": ["groups"],
            "multi_value_separator": ";",
        }),
    )
}

fn jsonl_connector(dir: &Path) -> Box<dyn Connector> {
    build(
        &JsonlFactory,
        dir,
        vec![person()],
        json!({"path": "f.jsonl", "batch_size": BATCH}),
    )
}

/// Write `bytes` as `name` in a new folder and import it.
fn run(name: &str, bytes: &[u8]) -> Result<Vec<ImportItem>, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let mut conn = if name.ends_with(".csv") {
        csv_connector(dir.path())
    } else {
        jsonl_connector(dir.path())
    };
    import(conn.as_mut(), bytes.len())
}

/// The line an error names; panics unless the location is `<file> line <n>`
/// with `n` a line of the file.
fn error_line(file: &str, location: &str, bytes: &[u8]) -> u64 {
    let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let n: u64 = location
        .strip_prefix(&format!("{file} line "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("location {location:?} does not name {file} and a line"));
    assert!(
        (1..=lines).contains(&n),
        "location {location:?} is outside the file's {lines} lines"
    );
    n
}

/// Checks every item (located errors, unique anchors of objects); returns
/// the objects by anchor and the lines of the errors.
fn check_items(
    file: &str,
    bytes: &[u8],
    items: &[ImportItem],
) -> (BTreeMap<String, Attributes>, Vec<u64>) {
    let mut objects = BTreeMap::new();
    let mut error_lines = Vec::new();
    for item in items {
        match item {
            Ok(o) => {
                assert!(!o.anchor.is_empty(), "an object without anchor");
                assert_eq!(o.object_type, "person");
                let prev = objects.insert(o.anchor.clone(), o.attributes.clone());
                assert!(prev.is_none(), "anchor {:?} imported twice", o.anchor);
            }
            Err(e) => {
                assert!(!e.error_type.is_empty() && !e.detail.is_empty(), "{e:?}");
                error_lines.push(error_line(file, &e.location, bytes));
            }
        }
    }
    (objects, error_lines)
}

/// Non-blank lines of `bytes`, a line ending at `\n`, `\r\n` or a lone
/// `\r`: no reading of a file yields more records.
fn physical_lines(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'\n' || *b == b'\r')
        .filter(|l| !l.is_empty())
        .count()
}

// ------------------------------------------------------------ properties

impl File {
    /// The lines of segment `i`: from the line it starts on to the line its
    /// terminator ends (the next segment's first line when it ends without
    /// `\n`).
    fn own_lines(&self, i: usize, lines: &[u64]) -> std::ops::RangeInclusive<u64> {
        let ends_line = self.segs[i].term.ends_with(b"\n")
            || (self.segs[i].term.is_empty() && self.segs[i].bytes.ends_with(b"\n"));
        lines[i]..=(lines[i + 1] - u64::from(ends_line))
    }
}

/// The checks of a mutated (or intact) valid file, against what the
/// generator wrote (see the module documentation).
fn check_file<R>(
    name: &str,
    rows: &[R],
    file: &File,
    expected: impl Fn(&R) -> (String, Attributes),
    first: usize,
) {
    let bytes = file.bytes();
    let items = run(name, &bytes).unwrap_or_else(|e| panic!("whole-step error: {e}"));
    let (objects, _) = check_items(name, &bytes, &items);
    let lines = file.start_lines();
    let regions = file.mutated_regions();
    let anchor_of = |i: usize| file.segs[i].row.map(|r| expected(&rows[r]));

    // Untouched rows: imported exactly, or an error on their own lines.
    let mut intact_at: BTreeMap<String, u64> = BTreeMap::new();
    let mut reported = Vec::new();
    for i in first..file.segs.len() {
        let (false, Some((anchor, attrs))) = (file.segs[i].mutated, anchor_of(i)) else {
            continue;
        };
        match objects.get(&anchor) {
            Some(got) if *got == attrs => {
                intact_at.insert(anchor, lines[i]);
            }
            got => {
                assert!(
                    got.is_none(),
                    "row {anchor} (line {}) was not mutated but is imported as {got:?}",
                    lines[i]
                );
                reported.push(file.own_lines(i, &lines));
            }
        }
    }

    // Errors: located on mutated lines, or on the lines of an untouched row
    // that is not imported; every such row has one; in file order.
    let in_region = |line: u64| {
        regions
            .iter()
            .any(|r| (lines[r.start]..=lines[r.end]).contains(&line))
    };
    let mut last = 0;
    let mut located = Vec::new(); // (line, item index) of errors and intact rows
    for (k, item) in items.iter().enumerate() {
        let line = match item {
            Err(e) => error_line(name, &e.location, &bytes),
            Ok(o) => match intact_at.get(&o.anchor) {
                Some(line) => *line,
                None => continue,
            },
        };
        assert!(
            line >= last,
            "item on line {line} after one on line {last}: {items:?}"
        );
        last = line;
        located.push((line, k));
        if item.is_err() {
            assert!(
                in_region(line) || reported.iter().any(|r| r.contains(&line)),
                "an error on line {line}, outside the mutated lines {:?} and the rows it could report",
                regions
                    .iter()
                    .map(|r| lines[r.start]..=lines[r.end])
                    .collect::<Vec<_>>()
            );
        }
    }
    let error_lines: Vec<u64> = items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| error_line(name, &e.location, &bytes))
        .collect();
    for r in &reported {
        assert!(
            error_lines.iter().any(|l| r.contains(l)),
            "the untouched row on lines {r:?} is neither imported nor reported: {items:?}"
        );
    }

    // Mutated stretches that still hold text: each yields an item.
    for r in &regions {
        let text = r.clone().any(|i| {
            let s = &file.segs[i];
            s.bytes.iter().any(|b| !b.is_ascii_whitespace())
        });
        if !text {
            continue;
        }
        let span = lines[r.start]..=lines[r.end];
        let own_row_imported = r.clone().any(|i| {
            file.segs[i]
                .row
                .is_some_and(|row| objects.contains_key(&expected(&rows[row]).0))
        });
        let error_on_it = error_lines.iter().any(|l| span.contains(l));
        // An object no untouched row claims, between the located items
        // around the stretch.
        let before = located
            .iter()
            .filter(|(l, _)| *l < lines[r.start])
            .map(|(_, k)| *k)
            .max();
        let after = located
            .iter()
            .filter(|(l, _)| *l > lines[r.end])
            .map(|(_, k)| *k)
            .min();
        let between = items.iter().enumerate().any(|(k, item)| {
            item.as_ref()
                .is_ok_and(|o| !intact_at.contains_key(&o.anchor))
                && before.is_none_or(|b| k > b)
                && after.is_none_or(|a| k < a)
        });
        assert!(
            own_row_imported || error_on_it || between,
            "the mutated lines {span:?} yield nothing: {items:?}"
        );
    }

    assert!(
        items.len() <= physical_lines(&bytes),
        "{} items from {} lines",
        items.len(),
        physical_lines(&bytes)
    );
    if regions.is_empty() {
        assert_eq!(intact_at.len(), rows.len(), "{items:?}");
        assert!(error_lines.is_empty(), "errors in a valid file: {items:?}");
    }
}

/// Lines that are not blank (a leading BOM is not part of the first line):
/// one record each.
fn jsonl_record_count(bytes: &[u8]) -> usize {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| std::str::from_utf8(l).map_or(true, |t| !t.trim().is_empty()))
        .count()
}

fn check_csv(rows: &[CsvRow], file: &File) {
    check_file("f.csv", rows, file, |r| (r.id.clone(), csv_expected(r)), 1);
}

fn check_jsonl(rows: &[JsonRow], file: &File) {
    check_file(
        "f.jsonl",
        rows,
        file,
        |r| (r.id.clone(), r.attrs.clone()),
        0,
    );
    let bytes = file.bytes();
    let items = run("f.jsonl", &bytes).unwrap_or_else(|e| panic!("whole-step error: {e}"));
    assert_eq!(
        items.len(),
        jsonl_record_count(&bytes),
        "lines in, items out"
    );
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn csv_import_of_a_valid_file_should_return_every_row_exactly((rows, file) in csv_file(true)) {
        check_csv(&rows, &file);
    }

    #[test]
    fn jsonl_import_of_a_valid_file_should_return_every_line_exactly((rows, file) in jsonl_file()) {
        check_jsonl(&rows, &file);
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn csv_import_of_a_mutated_file_should_import_or_report_every_row_on_its_lines(
        (rows, mut file) in csv_file(false),
        mutations in vec(mutation(), 1..4),
    ) {
        for m in &mutations {
            mutate(&mut file, 1, m);
        }
        check_csv(&rows, &file);
    }

    #[test]
    fn jsonl_import_of_a_mutated_file_should_import_or_report_every_line_on_its_own(
        (rows, mut file) in jsonl_file(),
        mutations in vec(mutation(), 1..4),
    ) {
        for m in &mutations {
            mutate(&mut file, 0, m);
        }
        check_jsonl(&rows, &file);
    }
}

// ------------------------------------------------------- arbitrary bytes

/// Bytes that are mostly CSV- or JSON-like, or anything at all.
fn arbitrary_file(alphabet: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..600),
        vec(select(alphabet.to_vec()), 0..600),
    ]
}

const CSV_ALPHABET: &[u8] = b"id,name\"\r\n;ab \xEF\xBB\xBF\xFF\xC3\xA9";
const JSON_ALPHABET: &[u8] =
    b"{}[]\":,\\ \r\nidnulltruefalse0123456789-+.eE\xEF\xBB\xBF\xFF\xC3\xA9u";

/// Arbitrary bytes through a connector: no panic, an end, errors located
/// in file order, no more records than lines (`record_count`, when given,
/// counts them exactly); a whole-step error names the file.
fn check_arbitrary(name: &str, bytes: &[u8], record_count: Option<fn(&[u8]) -> usize>) {
    match run(name, bytes) {
        Ok(items) => {
            let (_, error_lines) = check_items(name, bytes, &items);
            assert!(
                error_lines.windows(2).all(|w| w[0] <= w[1]),
                "errors out of file order: {error_lines:?}"
            );
            assert!(
                items.len() <= physical_lines(bytes),
                "more records than lines"
            );
            if let Some(count) = record_count {
                assert_eq!(items.len(), count(bytes), "records in, items out");
            }
        }
        Err(e) => assert!(e.contains(name), "whole-step error without the file: {e}"),
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn csv_import_of_arbitrary_bytes_should_not_panic_and_locate_every_error(
        header in any::<bool>(),
        body in arbitrary_file(CSV_ALPHABET),
    ) {
        let mut bytes = if header { b"id,name,mail,groups\n".to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&body);
        check_arbitrary("f.csv", &bytes, None);
    }

    #[test]
    fn jsonl_import_of_arbitrary_bytes_should_not_panic_and_locate_every_error(
        body in arbitrary_file(JSON_ALPHABET),
    ) {
        check_arbitrary("f.jsonl", &body, Some(jsonl_record_count));
    }

    #[test]
    fn csv_import_with_a_mutated_header_should_fail_whole_or_locate_every_error(
        (_rows, mut file) in csv_file(false),
        mutations in vec(mutation(), 1..3),
    ) {
        // Mutate the header only (segment 0).
        let rest = file.segs.split_off(1);
        for m in &mutations {
            mutate(&mut file, 0, m);
        }
        file.segs.extend(rest);
        check_arbitrary("f.csv", &file.bytes(), None);
    }
}

// ----------------------------------------------- the cases named in the brief

#[test]
fn csv_files_that_are_empty_or_only_a_header_should_import_nothing() {
    for bytes in [
        &b""[..],
        b"\xEF\xBB\xBF",
        b"id,name",
        b"id,name\n",
        b"id,name\r\n",
        b"\xEF\xBB\xBFid,name\r\n\r\n\n",
    ] {
        let items = run("f.csv", bytes).unwrap_or_else(|e| panic!("{bytes:?}: {e}"));
        assert!(items.is_empty(), "{bytes:?}: {items:?}");
    }
}

#[test]
fn csv_header_problems_should_fail_the_step_naming_file_line_and_column() {
    for (bytes, expected) in [
        (
            &b"id,name,id\n1,a,2\n"[..],
            "f.csv line 1: column 3 of the header is empty or repeated",
        ),
        (
            b"id,,name\n1,a,b\n",
            "f.csv line 1: column 2 of the header is empty or repeated",
        ),
        (
            b"id,n\xFFme\n1,a\n",
            "f.csv line 1: column 2 of the header is not valid UTF-8",
        ),
        (b"name,mail\na,b\n", "f.csv: the header has no column `id`"),
        (b"\"id\n1\n", "f.csv: the header has no column `id`"),
    ] {
        let err = run("f.csv", bytes).unwrap_err();
        assert!(err.contains(expected), "{bytes:?}: {err}");
    }
}

#[test]
fn csv_with_a_bom_and_crlf_should_import_the_first_column_by_its_name() {
    let items = run("f.csv", b"\xEF\xBB\xBFid,name\r\n1,a\r\n2,b\r\n").unwrap();
    let anchors: Vec<_> = items
        .iter()
        .map(|i| i.as_ref().unwrap().anchor.clone())
        .collect();
    assert_eq!(anchors, ["1", "2"]);
}

#[test]
fn jsonl_files_that_are_empty_or_blank_should_import_nothing() {
    for bytes in [
        &b""[..],
        b"\n",
        b"\r\n  \n\t\n",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF\n",
    ] {
        let items = run("f.jsonl", bytes).unwrap_or_else(|e| panic!("{bytes:?}: {e}"));
        assert!(items.is_empty(), "{bytes:?}: {items:?}");
    }
}

#[test]
fn jsonl_with_a_bom_should_import_the_first_line() {
    let items = run("f.jsonl", b"\xEF\xBB\xBF{\"id\":\"1\"}\r\n{\"id\":\"2\"}\n").unwrap();
    let anchors: Vec<_> = items
        .iter()
        .map(|i| i.as_ref().map(|o| o.anchor.clone()).map_err(Clone::clone))
        .collect();
    assert_eq!(anchors, [Ok("1".to_owned()), Ok("2".to_owned())]);
}

/// Found by the fuzzing above: the csv reader positions a record before the
/// line breaks it skips, so errors in CRLF files (and after blank lines)
/// named the line before.
#[test]
fn csv_errors_after_crlf_and_blank_lines_should_name_their_own_line() {
    for (bytes, expected) in [
        (
            &b"id,name\r\n1,a\r\n\r\n\r\n1,b\r\nbad\r\n"[..],
            [
                ("f.csv line 2", "lines 2 and 5"),
                ("f.csv line 5", "lines 2 and 5"),
                ("f.csv line 6", "expected 2 fields"),
            ],
        ),
        (
            b"id,name\n\n1,a\n\n1,b\nbad",
            [
                ("f.csv line 3", "lines 3 and 5"),
                ("f.csv line 5", "lines 3 and 5"),
                ("f.csv line 6", "expected 2 fields"),
            ],
        ),
        (
            b"id,name\r\n\"1\",\"a\r\nb\"\r\n1,b\r\n\r\nbad\r\n",
            [
                ("f.csv line 2", "lines 2 and 4"),
                ("f.csv line 4", "lines 2 and 4"),
                ("f.csv line 6", "expected 2 fields"),
            ],
        ),
    ] {
        let items = run("f.csv", bytes).unwrap();
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        // Both rows of the repeated anchor are errors (neither is read).
        assert_eq!(errors.len(), 3, "{bytes:?}: {items:?}");
        for (e, (location, detail)) in errors.iter().zip(expected) {
            assert_eq!(e.location, location, "{bytes:?}: {e:?}");
            assert!(e.detail.contains(detail), "{bytes:?}: {e:?}");
        }
    }
}
