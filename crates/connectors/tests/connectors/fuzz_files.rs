//! The valid files the connector fuzzing starts from (CSV and JSON lines,
//! with what each row should import as) and the mutations applied to them;
//! the properties are in `fuzz.rs`.

use autosync_model::{Attributes, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

// ------------------------------------------------------- valid files

#[derive(Clone, Debug)]
pub(crate) struct CsvRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) mail: String,
    pub(crate) groups: String,
    /// Quote every field, needed or not.
    pub(crate) quote_all: bool,
}

/// A cell: mostly plain, sometimes with what needs quoting, any Unicode,
/// or longer than the reader's 64 KiB buffer.
pub(crate) fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[a-zA-Z0-9 .@_-]{0,12}",
        4 => "[a-z ,;\"'\r\n\té€😀]{0,10}",
        2 => "\\PC{0,8}",
        1 => Just("x".repeat(70_000)),
    ]
}

/// [`cell`], with no delimiter or quote in a cell that spans lines: a
/// quoted field whose inner lines could read as rows of their own is
/// judged an unclosed quote (connectors README), and a valid file must be
/// unambiguous.
pub(crate) fn plain_cell() -> impl Strategy<Value = String> {
    cell().prop_map(|c| {
        if c.contains(['\r', '\n']) {
            c.replace([',', '"'], "")
        } else {
            c
        }
    })
}

pub(crate) fn groups() -> impl Strategy<Value = String> {
    vec("[a-z0-9 ]{0,5}", 0..4).prop_map(|g| g.join(";"))
}

pub(crate) fn csv_rows(plain: bool) -> impl Strategy<Value = Vec<CsvRow>> {
    let cell = move || {
        if plain {
            plain_cell().boxed()
        } else {
            cell().boxed()
        }
    };
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

pub(crate) fn csv_field(s: &str, quote: bool) -> String {
    if quote || s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// What the connector must import from a row.
pub(crate) fn csv_expected(row: &CsvRow) -> Attributes {
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
pub(crate) struct Seg {
    pub(crate) bytes: Vec<u8>,
    pub(crate) term: Vec<u8>,
    /// The valid row it is, while not mutated.
    pub(crate) row: Option<usize>,
    pub(crate) mutated: bool,
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
pub(crate) struct File {
    pub(crate) bom: bool,
    pub(crate) segs: Vec<Seg>,
}

impl File {
    pub(crate) fn bytes(&self) -> Vec<u8> {
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
    pub(crate) fn mutated_regions(&self) -> Vec<std::ops::Range<usize>> {
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
    pub(crate) fn start_lines(&self) -> Vec<u64> {
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
pub(crate) fn terminator(lone_cr: bool) -> impl Strategy<Value = Vec<u8>> {
    let cr = if lone_cr { 1 } else { 0 };
    prop_oneof![
        6 => Just(b"\n".to_vec()),
        3 => Just(b"\r\n".to_vec()),
        cr => Just(b"\r".to_vec()),
    ]
}

/// A valid CSV file; `plain`: no delimiter or quote in cells that span
/// lines (see [`plain_cell`]).
pub(crate) fn csv_file(plain: bool) -> impl Strategy<Value = (Vec<CsvRow>, File)> {
    csv_rows(plain)
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
pub(crate) struct JsonRow {
    pub(crate) id: String,
    pub(crate) attrs: Attributes,
}

pub(crate) fn json_value() -> impl Strategy<Value = Value> {
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

pub(crate) fn jsonl_file() -> impl Strategy<Value = (Vec<JsonRow>, File)> {
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
pub(crate) enum Mutation {
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
pub(crate) fn nasty_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let special = select(b"\",;{}[]:\\ \t\r\n\0\xEF\xBB\xBF\xFF\xC3\x80".to_vec());
    vec(prop_oneof![any::<u8>(), special], 1..max)
}

pub(crate) const INVALID_UTF8: &[&[u8]] = &[
    b"\xFF",
    b"\xC3",
    b"\xE2\x82",
    b"\xED\xA0\x80", // a surrogate
    b"\xC0\x80",     // overlong
    b"\x80\x80",
];

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
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
pub(crate) fn mutate(file: &mut File, first: usize, m: &Mutation) {
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
