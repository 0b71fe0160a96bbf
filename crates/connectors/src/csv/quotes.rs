//! Judging a record whose quoted field spans lines: a multi-line address
//! is a record, an unclosed quote that swallowed the rows after it is not.
//!
//! The csv reader is lenient: a quote opened at the start of a field runs
//! until the next quote, across any number of lines, and a quote followed
//! by other text simply ends the quoted part. That is what a stray quote
//! needs to swallow every row after it without a trace. So a record that
//! holds a line break inside a quoted field is read again here, strictly,
//! from its raw bytes, and it stands only if:
//!
//! * every quote is where RFC 4180 puts it: opening a field, doubled inside
//!   one, or closing one right before a delimiter, a line break or the end
//!   of the file (and the file does not end inside the quotes);
//! * it has the header's number of fields;
//! * it spans at most `max_lines` lines;
//! * no line inside it, read on its own from its start, is a complete
//!   record with the header's number of fields (a row the quote swallowed).
//!
//! Otherwise the quote that opened it is judged unclosed: the import reports
//! the record at its first line and reads on from the next line. The record
//! right after one that stands is checked for misplaced quotes
//! ([`misplaced_quote`]): what is left of a row whose first line a stray
//! quote swallowed. Any other record on one line is never judged here (the
//! lenient reading stands), and this costs nothing for the records that
//! hold no line break.

/// Where a strict reading of one record stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// A whole record of `fields` fields, ending at `end` (the offset of its
    /// terminator, or of the end of the input).
    Complete { fields: usize, end: usize },
    /// A quote at `at` is misplaced: inside an unquoted field, or closing a
    /// quoted field but followed by other text.
    Misplaced { at: usize },
    /// The input ended inside a quoted field.
    Unclosed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: doubled, or the end of the field.
    QuoteInQuoted,
}

fn is_break(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// Read one record strictly from the start of `raw`.
fn scan(raw: &[u8], delimiter: u8) -> Scan {
    let mut fields = 1;
    let mut state = State::FieldStart;
    for (i, &b) in raw.iter().enumerate() {
        state = match state {
            State::FieldStart | State::Unquoted if is_break(b) => {
                return Scan::Complete { fields, end: i };
            }
            State::FieldStart | State::Unquoted if b == delimiter => {
                fields += 1;
                State::FieldStart
            }
            State::FieldStart if b == b'"' => State::Quoted,
            State::Unquoted if b == b'"' => return Scan::Misplaced { at: i },
            State::FieldStart | State::Unquoted => State::Unquoted,
            State::Quoted if b == b'"' => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if b == b'"' => State::Quoted,
            State::QuoteInQuoted if b == delimiter => {
                fields += 1;
                State::FieldStart
            }
            State::QuoteInQuoted if is_break(b) => return Scan::Complete { fields, end: i },
            State::QuoteInQuoted => return Scan::Misplaced { at: i - 1 },
        };
    }
    match state {
        State::Quoted => Scan::Unclosed,
        _ => Scan::Complete {
            fields,
            end: raw.len(),
        },
    }
}

/// Line breaks in `bytes`: `\n`, `\r\n` and a lone `\r` count one each.
pub fn line_breaks(bytes: &[u8]) -> u64 {
    let lf = bytes.iter().filter(|b| **b == b'\n').count();
    let cr = bytes.iter().filter(|b| **b == b'\r').count();
    lf.max(cr) as u64
}

/// Lines `\n` ends in `bytes` (how the csv reader and error locations count
/// lines).
pub fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// The rules a record spanning lines must meet.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub delimiter: u8,
    /// The header's number of fields.
    pub fields: usize,
    /// How many lines a record may span.
    pub max_lines: u64,
}

/// A record judged to start with an unclosed quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unclosed {
    /// Why, for the error's detail.
    pub why: String,
    /// Offset in `raw` where reading goes on: the start of the record's
    /// second line.
    pub resume: usize,
}

/// The offset of the first byte of the record in `raw` (the reader places a
/// record before the line breaks it skipped).
pub fn content_start(raw: &[u8]) -> usize {
    raw.iter().position(|b| !is_break(*b)).unwrap_or(raw.len())
}

/// Where the line after the one starting at `from` starts.
fn next_line(raw: &[u8], from: usize) -> usize {
    match raw.iter().skip(from).position(|b| is_break(*b)) {
        None => raw.len(),
        Some(i) => {
            let at = from + i;
            if raw.get(at) == Some(&b'\r') && raw.get(at + 1) == Some(&b'\n') {
                at + 2
            } else {
                at + 1
            }
        }
    }
}

/// Judge one record read by the csv reader: `raw` is its bytes, from its
/// position to the position after it, `first_line` the line its first byte
/// is on; `capped` says the reader stopped handing out bytes because the
/// record ran over `max_lines`. `None`: the record stands.
///
/// Only the record's own bytes are read: a row that the record swallowed
/// whole shows as a line inside it, while one it swallowed in part (the
/// record ends inside that row's quoted field) shows in the record after
/// it, which [`misplaced_quote`] then finds.
pub fn judge(raw: &[u8], rules: &Rules, capped: bool, first_line: u64) -> Option<Unclosed> {
    let start = content_start(raw);
    let resume = next_line(raw, start);
    let unclosed = |why: String| Some(Unclosed { why, resume });
    let body = raw.get(start..).unwrap_or_default();
    let line = |at: usize| first_line + newlines(body.get(..at).unwrap_or(body));
    if capped || line_breaks(body.trim_ascii_end()) >= rules.max_lines {
        return unclosed(format!(
            "a quoted field that starts on this line runs over {} lines, the most a record may span \
             (`max_record_lines`): its closing quote is missing",
            rules.max_lines
        ));
    }
    let end = match scan(body, rules.delimiter) {
        Scan::Unclosed => {
            return unclosed(
                "a quoted field that starts on this line is never closed (the file ends inside it)"
                    .to_owned(),
            );
        }
        Scan::Misplaced { at } => {
            return unclosed(format!(
                "a quoted field that starts on this line is not closed properly: the quote on line \
                 {} stands inside a field, so the field's closing quote is missing",
                line(at)
            ));
        }
        Scan::Complete { fields, end } if fields != rules.fields => {
            return unclosed(format!(
                "a quoted field that starts on this line runs to line {} and leaves the record with \
                 {fields} fields instead of {}: its closing quote is missing or misplaced",
                line(end),
                rules.fields
            ));
        }
        Scan::Complete { end, .. } => end,
    };
    // A line inside the record that is a whole record of its own: a row the
    // quote swallowed.
    let mut at = next_line(body, 0);
    while at < end {
        let rest = body.get(at..end).unwrap_or_default();
        if rest.first().is_some_and(|b| !is_break(*b))
            && matches!(scan(rest, rules.delimiter), Scan::Complete { fields, .. } if fields == rules.fields)
        {
            return unclosed(format!(
                "line {} reads as a row of its own inside a quoted field that starts on this line: \
                 the field's closing quote is missing",
                line(at)
            ));
        }
        at = next_line(body, at);
    }
    None
}

/// Whether a record (its raw bytes) holds a quote that strict quoting does
/// not allow, and where (the offset in `raw`). The record right after one
/// that spans lines is read this way: when the record before ended inside
/// a quoted field of this row (a quote opened rows earlier and closed by
/// this row's opening quote), what is left of the row shows such a quote.
pub fn misplaced_quote(raw: &[u8], delimiter: u8) -> Option<usize> {
    let start = content_start(raw);
    match scan(raw.get(start..).unwrap_or_default(), delimiter) {
        Scan::Misplaced { at } => Some(start + at),
        _ => None,
    }
}

/// The fields of a record's first line that end on it, unquoted: what can
/// still be read of a record judged unclosed (its anchor, say).
pub fn first_line_fields(raw: &[u8], delimiter: u8) -> Vec<Vec<u8>> {
    let body = raw.get(content_start(raw)..).unwrap_or_default();
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut state = State::FieldStart;
    for &b in body {
        match state {
            State::Quoted if b == b'"' => state = State::QuoteInQuoted,
            State::Quoted if is_break(b) => return fields,
            State::Quoted => field.push(b),
            State::QuoteInQuoted if b == b'"' => {
                field.push(b);
                state = State::Quoted;
            }
            _ if is_break(b) => break,
            _ if b == delimiter => {
                fields.push(std::mem::take(&mut field));
                state = State::FieldStart;
            }
            State::FieldStart if b == b'"' => state = State::Quoted,
            _ => {
                field.push(b);
                state = State::Unquoted;
            }
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        delimiter: b',',
        fields: 4,
        max_lines: 100,
    };

    fn stands(raw: &str) -> bool {
        judge(raw.as_bytes(), &RULES, false, 1).is_none()
    }

    #[test]
    fn a_multi_line_address_should_stand() {
        assert!(stands("1,\"12 Main St\nSpringfield, IL 62701\",x,y\n"));
        assert!(stands("\n1,\"12 Main St\r\nApt 4\r\nSpringfield\",x,y\r"));
        assert!(stands("1,\"a \"\"b\"\"\nc\",\"\",y"));
    }

    #[test]
    fn a_quote_the_file_ends_inside_should_be_unclosed() {
        let u = judge(b"1,\"Smith, John\n2,a,b,c\n", &RULES, false, 1).unwrap();
        assert!(u.why.contains("never closed"), "{u:?}");
        assert_eq!(u.resume, 15);
    }

    #[test]
    fn a_quote_closed_by_a_later_row_should_be_unclosed() {
        // The stray quote ends at the quote that opens a field of row 3.
        let raw = "1,\"Smith\n2,a,b,c\n3,\"q\",r,s\n";
        let u = judge(raw.as_bytes(), &RULES, false, 1).unwrap();
        assert!(u.why.contains("the quote on line 3"), "{u:?}");
        assert_eq!(u.resume, 9);
    }

    #[test]
    fn a_quote_closed_by_a_second_stray_quote_should_be_unclosed_by_the_row_it_swallowed() {
        // Strict quoting and the right field count: only the row inside
        // gives it away.
        let raw = "1,\"xyz\n2,b,c,d\n5,abc\",def,g\n";
        let u = judge(raw.as_bytes(), &RULES, false, 1).unwrap();
        assert!(u.why.contains("line 2 reads as a row of its own"), "{u:?}");
    }

    #[test]
    fn a_record_that_ends_inside_a_row_it_swallowed_should_leave_a_misplaced_quote() {
        // Read strictly, the record ends at the line break inside row 2's
        // quoted field: it stands, and what is left of row 2 does not.
        let record = "1,x,\"xyz\n2,\",\n";
        assert!(judge(record.as_bytes(), &RULES, false, 1).is_none());
        assert_eq!(misplaced_quote(b"b,c\",m,g\n", b','), Some(3));
        assert_eq!(misplaced_quote(b"\r\nb,\"c\",m,g\n", b','), None);
    }

    #[test]
    fn a_multi_line_record_with_the_wrong_field_count_should_be_unclosed() {
        let u = judge(b"1,\"a\nb\",c\n", &RULES, false, 7).unwrap();
        assert!(u.why.contains("runs to line 8"), "{u:?}");
        assert!(u.why.contains("3 fields instead of 4"), "{u:?}");
    }

    #[test]
    fn a_record_over_the_line_limit_should_be_unclosed() {
        let raw = format!("1,\"{}\",c,d\n", "a\n".repeat(100));
        assert!(!stands(&raw));
        let raw = format!("1,\"{}\",c,d\n", "a\n".repeat(98));
        assert!(stands(&raw));
        assert!(judge(b"1,\"a\nb\",c,d\n", &RULES, true, 1).is_some());
    }

    #[test]
    fn the_fields_of_the_first_line_should_be_readable() {
        let f = first_line_fields(b"\r\n7,\"a\"\"b\",\"open\nrest", b',');
        assert_eq!(f, [b"7".to_vec(), b"a\"b".to_vec()]);
        let f = first_line_fields(b"7,x\n", b',');
        assert_eq!(f, [b"7".to_vec(), b"x".to_vec()]);
    }
}
