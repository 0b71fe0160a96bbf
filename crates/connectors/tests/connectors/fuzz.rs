//! Fuzzing the file connectors' import (reliability.md: "parsers of
//! untrusted input are fuzzed"), bounded so that it runs in CI.
//!
//! Files are written to a temporary folder and read through the real
//! connector's full import stream, batch by batch, as the engine reads them.
//! Inputs: arbitrary bytes, and valid files (quoted fields, embedded line
//! breaks, CRLF/LF/CR mixes, a BOM, huge fields, multi-valued cells) that are
//! then mutated: bytes flipped, inserted and deleted, lines truncated, joined,
//! duplicated, garbage lines added, invalid UTF-8 spliced in. Properties:
//!
//! - the import never panics and ends (a bounded number of batches);
//! - every record of the file comes back once, as an object or as a
//!   per-record error whose location is `<file> line <n>` with `n` inside
//!   the mutated part of the file;
//! - every record that was not mutated is imported with its exact values
//!   (CSV: unless a mutation before it left a quote open, which by CSV's
//!   grammar swallows what follows; then those before it still are).
//!
//! Case counts are fixed below and the seed is fixed, so CI runs the same
//! inputs every time; `PROPTEST_CASES=100000 PROPTEST_RNG_SEED=<n>` runs a
//! deeper search. Failing inputs are kept in `proptest-regressions/`.

use crate::common::{build, person};
use autosync_connector::{Connector, ImportItem};
use autosync_connectors::csv::CsvFactory;
use autosync_connectors::jsonl::JsonlFactory;
use autosync_model::{Attributes, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::RngSeed;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
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

/// Records of `bytes` as the csv crate reads them with the connector's
/// dialect, header included.
fn csv_records(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    rdr.byte_records()
        .map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect())
        .collect()
}

// ------------------------------------------------------- valid files

#[derive(Clone, Debug)]
struct CsvRow {
    id: String,
    name: String,
    mail: String,
    groups: String,
    /// Quote every field, needed or not.
    quote_all: bool,
}

/// A cell: mostly plain, sometimes with what needs quoting, any Unicode,
/// or longer than the reader's 64 KiB buffer.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[a-zA-Z0-9 .@_-]{0,12}",
        4 => "[a-z ,;\"'\r\n\té€😀]{0,10}",
        2 => "\\PC{0,8}",
        1 => Just("x".repeat(70_000)),
    ]
}

fn groups() -> impl Strategy<Value = String> {
    vec("[a-z0-9 ]{0,5}", 0..4).prop_map(|g| g.join(";"))
}

fn csv_rows() -> impl Strategy<Value = Vec<CsvRow>> {
    vec(
        (any::<u32>(), cell(), cell(), groups(), any::<bool>()),
        0..24,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (salt, name, mail, groups, quote_all))| CsvRow {
                // Unique, and too long for a random mutation to hit another.
                id: format!("u{i}-{salt:08x}"),
                name,
                mail,
                groups,
                quote_all,
            })
            .collect()
    })
}

fn csv_field(s: &str, quote: bool) -> String {
    if quote || s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// What the connector must import from a row.
fn csv_expected(row: &CsvRow) -> Attributes {
    let mut a = Attributes::new();
    a.insert("id".into(), Value::from(row.id.as_str()));
    for (k, v) in [("name", &row.name), ("mail", &row.mail)] {
        if !v.is_empty() {
            a.insert(k.into(), Value::from(v.as_str()));
        }
    }
    let groups: Vec<Value> = row
        .groups
        .split(';')
        .filter(|g| !g.is_empty())
        .map(Value::from)
        .collect();
    if !groups.is_empty() {
        a.insert("groups".into(), Value::Multi(groups));
    }
    a
}

/// One line (or, for CSV, one record) of a file and its terminator.
#[derive(Clone)]
struct Seg {
    bytes: Vec<u8>,
    term: Vec<u8>,
    /// The valid row it is, while not mutated.
    row: Option<usize>,
    mutated: bool,
}

impl std::fmt::Debug for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\"{}{}\" {:?}",
            if self.mutated { "mutated " } else { "" },
            self.bytes.escape_ascii(),
            self.term.escape_ascii(),
            self.row
        )
    }
}

/// A valid file: its segments; `segs[0]` is the CSV header.
#[derive(Clone, Debug)]
struct File {
    bom: bool,
    segs: Vec<Seg>,
}

impl File {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        for s in &self.segs {
            out.extend_from_slice(&s.bytes);
            out.extend_from_slice(&s.term);
        }
        out
    }

    /// Maximal runs of consecutive mutated segments, as ranges of indexes.
    fn mutated_regions(&self) -> Vec<std::ops::Range<usize>> {
        let mut out: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, s) in self.segs.iter().enumerate() {
            if !s.mutated {
                continue;
            }
            match out.last_mut() {
                Some(r) if r.end == i => r.end = i + 1,
                _ => out.push(i..i + 1),
            }
        }
        out
    }

    /// The line each segment starts on, and the line after the file.
    fn start_lines(&self) -> Vec<u64> {
        let mut line = 1;
        let mut out = Vec::with_capacity(self.segs.len() + 1);
        for s in &self.segs {
            out.push(line);
            line += s
                .bytes
                .iter()
                .chain(&s.term)
                .filter(|b| **b == b'\n')
                .count() as u64;
        }
        out.push(line);
        out
    }
}

/// How a line ends: mostly LF, often CRLF, for CSV sometimes a lone CR.
fn terminator(lone_cr: bool) -> impl Strategy<Value = Vec<u8>> {
    let cr = if lone_cr { 1 } else { 0 };
    prop_oneof![
        6 => Just(b"\n".to_vec()),
        3 => Just(b"\r\n".to_vec()),
        cr => Just(b"\r".to_vec()),
    ]
}

fn csv_file() -> impl Strategy<Value = (Vec<CsvRow>, File)> {
    csv_rows()
        .prop_flat_map(|rows| {
            let n = rows.len();
            (
                Just(rows),
                vec(terminator(true), n + 1),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(rows, terms, bom, last_term)| {
            let mut segs = vec![Seg {
                bytes: b"id,name,mail,groups".to_vec(),
                term: terms[0].clone(),
                row: None,
                mutated: false,
            }];
            for (i, r) in rows.iter().enumerate() {
                let q = r.quote_all;
                let line = [
                    csv_field(&r.id, q),
                    csv_field(&r.name, q),
                    csv_field(&r.mail, q),
                    csv_field(&r.groups, q),
                ]
                .join(",");
                segs.push(Seg {
                    bytes: line.into_bytes(),
                    term: terms[i + 1].clone(),
                    row: Some(i),
                    mutated: false,
                });
            }
            if !last_term && let Some(s) = segs.last_mut() {
                s.term.clear();
            }
            (rows, File { bom, segs })
        })
}

#[derive(Clone, Debug)]
struct JsonRow {
    id: String,
    attrs: Attributes,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => "\\PC{0,10}".prop_map(Value::String),
        1 => "[\"\\\\/\u{0}-\u{1f}\u{2028}]{0,4}".prop_map(Value::String),
        2 => any::<i64>().prop_map(Value::Integer),
        1 => any::<bool>().prop_map(Value::Boolean),
        1 => vec(any::<u8>(), 0..6).prop_map(Value::Binary),
        1 => Just(Value::String("y".repeat(70_000))),
    ];
    prop_oneof![
        4 => leaf.clone(),
        1 => vec(leaf, 0..4).prop_map(Value::Multi),
    ]
}

fn jsonl_file() -> impl Strategy<Value = (Vec<JsonRow>, File)> {
    let row = (
        any::<u32>(),
        vec(("[a-z]{1,6}", json_value()), 0..5),
        vec("[a-z]{1,6}", 0..2),
        (0usize..3, 0usize..3),
    );
    vec(row, 0..24)
        .prop_flat_map(|rows| {
            let n = rows.len();
            (
                Just(rows),
                vec(terminator(false), n),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(rows, terms, bom, last_term)| {
            let mut out = Vec::new();
            let mut segs = Vec::new();
            for (i, ((salt, pairs, nulls, pad), term)) in rows.into_iter().zip(terms).enumerate() {
                let id = format!("u{i}-{salt:08x}");
                let mut attrs: Attributes = pairs.into_iter().collect();
                attrs.insert("id".into(), Value::from(id.as_str()));
                let nulls: Vec<String> = nulls
                    .into_iter()
                    .filter(|k| !attrs.contains_key(k))
                    .collect();
                let mut obj = serde_json::to_value(&attrs).unwrap();
                for k in &nulls {
                    obj[k] = serde_json::Value::Null;
                }
                let text = format!(
                    "{}{}{}",
                    " ".repeat(pad.0),
                    serde_json::to_string(&obj).unwrap(),
                    " ".repeat(pad.1)
                );
                segs.push(Seg {
                    bytes: text.into_bytes(),
                    term,
                    row: Some(i),
                    mutated: false,
                });
                out.push(JsonRow { id, attrs });
            }
            if !last_term && let Some(s) = segs.last_mut() {
                s.term.clear();
            }
            (out, File { bom, segs })
        })
}

// ---------------------------------------------------------- mutations

#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        seg: usize,
        pos: usize,
        mask: u8,
    },
    Insert {
        seg: usize,
        pos: usize,
        bytes: Vec<u8>,
    },
    Delete {
        seg: usize,
        pos: usize,
        len: usize,
    },
    Truncate {
        seg: usize,
        pos: usize,
    },
    /// Remove a line's terminator, joining it with the next.
    Join {
        seg: usize,
    },
    /// Repeat a line right after itself.
    Duplicate {
        seg: usize,
    },
    /// A line of garbage after a line.
    Garbage {
        seg: usize,
        bytes: Vec<u8>,
    },
    InvalidUtf8 {
        seg: usize,
        pos: usize,
        which: usize,
    },
}

/// Bytes that matter to the parsers, and any others.
fn nasty_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let special = select(b"\",;{}[]:\\ \t\r\n\0\xEF\xBB\xBF\xFF\xC3\x80".to_vec());
    vec(prop_oneof![any::<u8>(), special], 1..max)
}

const INVALID_UTF8: &[&[u8]] = &[
    b"\xFF",
    b"\xC3",
    b"\xE2\x82",
    b"\xED\xA0\x80", // a surrogate
    b"\xC0\x80",     // overlong
    b"\x80\x80",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let seg = any::<usize>();
    let pos = any::<usize>();
    prop_oneof![
        (seg, pos, 1u8..).prop_map(|(seg, pos, mask)| Mutation::Flip { seg, pos, mask }),
        (seg, pos, nasty_bytes(8)).prop_map(|(seg, pos, bytes)| Mutation::Insert {
            seg,
            pos,
            bytes
        }),
        (seg, pos, 1usize..12).prop_map(|(seg, pos, len)| Mutation::Delete { seg, pos, len }),
        (seg, pos).prop_map(|(seg, pos)| Mutation::Truncate { seg, pos }),
        seg.prop_map(|seg| Mutation::Join { seg }),
        seg.prop_map(|seg| Mutation::Duplicate { seg }),
        (seg, nasty_bytes(40)).prop_map(|(seg, bytes)| Mutation::Garbage { seg, bytes }),
        (seg, pos, 0..INVALID_UTF8.len())
            .prop_map(|(seg, pos, which)| { Mutation::InvalidUtf8 { seg, pos, which } }),
    ]
}

/// Apply `m` to a segment at or after `first` (the CSV header is not
/// mutated here; it has its own tests).
fn mutate(file: &mut File, first: usize, m: &Mutation) {
    let n = file.segs.len();
    if n <= first {
        return;
    }
    let pick = |seg: usize| first + seg % (n - first);
    let at = |pos: usize, len: usize| pos % (len + 1);
    match m {
        Mutation::Flip { seg, pos, mask } => {
            let s = &mut file.segs[pick(*seg)];
            if !s.bytes.is_empty() {
                let p = pos % s.bytes.len();
                s.bytes[p] ^= mask;
                s.mutated = true;
            }
        }
        Mutation::Insert { seg, pos, bytes } => {
            let s = &mut file.segs[pick(*seg)];
            let p = at(*pos, s.bytes.len());
            s.bytes.splice(p..p, bytes.iter().copied());
            s.mutated = true;
        }
        Mutation::Delete { seg, pos, len } => {
            let s = &mut file.segs[pick(*seg)];
            let p = at(*pos, s.bytes.len());
            let end = (p + len).min(s.bytes.len());
            s.bytes.drain(p..end);
            s.mutated = true;
        }
        Mutation::Truncate { seg, pos } => {
            let s = &mut file.segs[pick(*seg)];
            let p = at(*pos, s.bytes.len());
            s.bytes.truncate(p);
            s.mutated = true;
        }
        Mutation::Join { seg } => {
            let i = pick(*seg);
            file.segs[i].term.clear();
            file.segs[i].mutated = true;
            if let Some(next) = file.segs.get_mut(i + 1) {
                next.mutated = true;
            }
        }
        Mutation::Duplicate { seg } => {
            let i = pick(*seg);
            let mut copy = file.segs[i].clone();
            copy.mutated = true;
            if copy.term.is_empty() {
                // The last line without terminator: the copy needs one to
                // stay a line of its own, and so does the original.
                file.segs[i].term = b"\n".to_vec();
                file.segs[i].mutated = true;
            }
            file.segs.insert(i + 1, copy);
        }
        Mutation::Garbage { seg, bytes } => {
            let i = pick(*seg);
            if file.segs[i].term.is_empty() {
                file.segs[i].term = b"\n".to_vec();
                file.segs[i].mutated = true;
            }
            file.segs.insert(
                i + 1,
                Seg {
                    bytes: bytes.clone(),
                    term: b"\n".to_vec(),
                    row: None,
                    mutated: true,
                },
            );
        }
        Mutation::InvalidUtf8 { seg, pos, which } => {
            let s = &mut file.segs[pick(*seg)];
            let p = at(*pos, s.bytes.len());
            s.bytes.splice(p..p, INVALID_UTF8[*which].iter().copied());
            s.mutated = true;
        }
    }
}

/// Whether a mutated CSV region leaves the reader at the start of a record
/// (no quote left open): a sentinel record after it is read back intact.
fn csv_contained(region: &[u8]) -> bool {
    let mut text = region.to_vec();
    text.extend_from_slice(b"\nSENTINEL,s,s,s\n");
    csv_records(&text)
        .last()
        .is_some_and(|r| r.len() == 4 && r[0] == b"SENTINEL" && r[1..].iter().all(|f| f == b"s"))
}

// ------------------------------------------------------------ properties

/// The checks of a mutated (or intact) valid file.
fn check_file<R>(
    name: &str,
    rows: &[R],
    file: &File,
    expected: impl Fn(&R) -> (String, Attributes),
    contained: impl Fn(&[u8]) -> bool,
    record_count: impl Fn(&[u8]) -> usize,
) {
    let bytes = file.bytes();
    let items = run(name, &bytes).unwrap_or_else(|e| panic!("whole-step error: {e}"));
    let (objects, error_lines) = check_items(name, &bytes, &items);
    assert_eq!(
        items.len(),
        record_count(&bytes),
        "records in, items out ({} objects, errors on lines {error_lines:?})",
        objects.len()
    );

    let lines = file.start_lines();
    let regions = file.mutated_regions();
    // Rows at or after this segment may be swallowed by an open quote.
    let open_from = regions
        .iter()
        .find(|r| {
            let mut region = Vec::new();
            for s in &file.segs[r.start..r.end] {
                region.extend_from_slice(&s.bytes);
                region.extend_from_slice(&s.term);
            }
            !contained(&region)
        })
        .map(|r| r.start);

    // Errors point into a mutated region (or past an open quote).
    for line in &error_lines {
        let in_region = regions
            .iter()
            .any(|r| (lines[r.start]..=lines[r.end]).contains(line));
        let past_open = open_from.is_some_and(|s| *line >= lines[s]);
        assert!(
            in_region || past_open,
            "an error on line {line}, outside the mutated lines {:?}",
            regions
                .iter()
                .map(|r| lines[r.start]..=lines[r.end])
                .collect::<Vec<_>>()
        );
    }

    // Every row not mutated is imported with its exact values.
    let mut intact = BTreeSet::new();
    for (i, s) in file.segs.iter().enumerate() {
        if open_from.is_some_and(|o| i >= o) {
            break;
        }
        if let (Some(r), false) = (s.row, s.mutated) {
            let (anchor, attrs) = expected(&rows[r]);
            let got = objects.get(&anchor);
            assert_eq!(
                got,
                Some(&attrs),
                "row {r} (line {}) was not mutated but is not imported as written",
                lines[i]
            );
            intact.insert(anchor);
        }
    }
    if regions.is_empty() {
        assert_eq!(intact.len(), rows.len());
        assert!(error_lines.is_empty(), "errors in a valid file: {items:?}");
    }
}

fn csv_record_count(bytes: &[u8]) -> usize {
    csv_records(bytes).len().saturating_sub(1)
}

/// Lines that are not blank (a leading BOM is not part of the first line).
fn jsonl_record_count(bytes: &[u8]) -> usize {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| std::str::from_utf8(l).map_or(true, |t| !t.trim().is_empty()))
        .count()
}

fn check_csv(rows: &[CsvRow], file: &File) {
    check_file(
        "f.csv",
        rows,
        file,
        |r| (r.id.clone(), csv_expected(r)),
        csv_contained,
        csv_record_count,
    );
}

fn check_jsonl(rows: &[JsonRow], file: &File) {
    check_file(
        "f.jsonl",
        rows,
        file,
        |r| (r.id.clone(), r.attrs.clone()),
        |_| true, // every line stands alone
        jsonl_record_count,
    );
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn csv_import_of_a_valid_file_should_return_every_row_exactly((rows, file) in csv_file()) {
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
    fn csv_import_of_a_mutated_file_should_keep_every_intact_row_and_locate_the_rest(
        (rows, mut file) in csv_file(),
        mutations in vec(mutation(), 1..4),
    ) {
        for m in &mutations {
            mutate(&mut file, 1, m);
        }
        check_csv(&rows, &file);
    }

    #[test]
    fn jsonl_import_of_a_mutated_file_should_keep_every_intact_line_and_locate_the_rest(
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

/// Arbitrary bytes through a connector: no panic, an end, every record
/// counted once, errors located; a whole-step error names the file.
fn check_arbitrary(name: &str, bytes: &[u8], record_count: impl Fn(&[u8]) -> usize) {
    match run(name, bytes) {
        Ok(items) => {
            check_items(name, bytes, &items);
            assert_eq!(items.len(), record_count(bytes), "records in, items out");
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
        check_arbitrary("f.csv", &bytes, csv_record_count);
    }

    #[test]
    fn jsonl_import_of_arbitrary_bytes_should_not_panic_and_locate_every_error(
        body in arbitrary_file(JSON_ALPHABET),
    ) {
        check_arbitrary("f.jsonl", &body, jsonl_record_count);
    }

    #[test]
    fn csv_import_with_a_mutated_header_should_fail_whole_or_locate_every_error(
        (_rows, mut file) in csv_file(),
        mutations in vec(mutation(), 1..3),
    ) {
        // Mutate the header only (segment 0).
        let rest = file.segs.split_off(1);
        for m in &mutations {
            mutate(&mut file, 0, m);
        }
        file.segs.extend(rest);
        check_arbitrary("f.csv", &file.bytes(), csv_record_count);
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
                ("f.csv line 5", "line 2"),
                ("f.csv line 6", "expected 2 fields"),
            ],
        ),
        (
            b"id,name\n\n1,a\n\n1,b\nbad",
            [
                ("f.csv line 5", "line 3"),
                ("f.csv line 6", "expected 2 fields"),
            ],
        ),
        (
            b"id,name\r\n\"1\",\"a\r\nb\"\r\n1,b\r\n\r\nbad\r\n",
            [
                ("f.csv line 4", "line 2"),
                ("f.csv line 6", "expected 2 fields"),
            ],
        ),
    ] {
        let items = run("f.csv", bytes).unwrap();
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.len(), 2, "{bytes:?}: {items:?}");
        for (e, (location, detail)) in errors.iter().zip(expected) {
            assert_eq!(e.location, location, "{bytes:?}: {e:?}");
            assert!(e.detail.contains(detail), "{bytes:?}: {e:?}");
        }
    }
}
