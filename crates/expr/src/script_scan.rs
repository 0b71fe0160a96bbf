//! A light scan of a Rhai script's text for the attributes it reads
//! literally: `attr("name")`, `attrs.name`, `attrs["name"]`. Comments and
//! string contents are skipped. Anything it cannot see through (a computed
//! name, `attrs` passed around whole) marks the script as reading every
//! attribute. The scan also notes whether the script reads the metaverse
//! object of an import flow (`mv`) and which metaverse lookups it makes
//! (`mv_find("type", "attribute", ...)`, `mv_connectors(id)`), so that the
//! engine indexes what the lookups search and sets up lookups only for the
//! scripts that make them.

/// What a script reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    /// Names read literally, in first-use order.
    pub names: Vec<String>,
    /// Whether the script may read attributes not in `names`.
    pub all: bool,
    /// Whether the script reads `mv` (the metaverse object of an import
    /// flow).
    pub mv: bool,
    /// Whether the script calls `mv_find` or `mv_connectors`.
    pub lookups: bool,
    /// The (metaverse type, attribute) pairs `mv_find` searches.
    pub finds: Vec<(String, String)>,
    /// Where an `mv_find` names its type or attribute other than by a
    /// literal string (the byte offset of the call).
    pub computed_find: Option<usize>,
}

pub(crate) fn scan(src: &str) -> Reads {
    let b = src.as_bytes();
    let mut reads = Reads::default();
    let mut i = 0;
    let mut prev_dot = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'"' | b'\'' => {
                i = skip_string(b, i).0;
                prev_dot = false;
            }
            b'`' => {
                // An interpolated string may hold code: be safe.
                let end = skip_string(b, i).0;
                if src.get(i..end).is_some_and(|s| s.contains("attr")) {
                    reads.all = true;
                }
                i = end;
                prev_dot = false;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let ident = &src[start..i];
                if !prev_dot {
                    match ident {
                        "attr" => i = after_attr_call(src, i, &mut reads),
                        "attrs" => i = after_attrs(src, i, &mut reads),
                        "mv" => reads.mv = true,
                        "mv_connectors" => reads.lookups = true,
                        "mv_find" => {
                            reads.lookups = true;
                            after_mv_find(src, start, i, &mut reads);
                        }
                        _ => {}
                    }
                } else if ident == "attr" {
                    // `"name".attr()` method-call style.
                    reads.all = true;
                }
                prev_dot = false;
            }
            b'.' => {
                prev_dot = true;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                prev_dot = false;
                i += 1;
            }
        }
    }
    reads
}

fn add(reads: &mut Reads, name: &str) {
    if !reads.names.iter().any(|n| n == name) {
        reads.names.push(name.to_owned());
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The end of the string starting at `i` and, when it has no escapes, its
/// contents.
fn skip_string(b: &[u8], i: usize) -> (usize, Option<(usize, usize)>) {
    let quote = b[i];
    let mut j = i + 1;
    let mut escaped = false;
    while j < b.len() && b[j] != quote {
        if b[j] == b'\\' {
            escaped = true;
            j += 1;
        }
        j += 1;
    }
    let end = (j + 1).min(b.len());
    let contents = (!escaped && j < b.len() && quote == b'"').then_some((i + 1, j));
    (end, contents)
}

/// A `"literal"` at `i` (after blanks), then `close`: the literal and the
/// position after `close`.
fn literal_then(src: &str, i: usize, close: u8) -> Option<(&str, usize)> {
    let b = src.as_bytes();
    let i = skip_ws(b, i);
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, contents) = skip_string(b, i);
    let (s, e) = contents?;
    let j = skip_ws(b, end);
    (b.get(j) == Some(&close)).then(|| (&src[s..e], j + 1))
}

fn after_attr_call(src: &str, i: usize, reads: &mut Reads) -> usize {
    let b = src.as_bytes();
    let j = skip_ws(b, i);
    if b.get(j) != Some(&b'(') {
        // `attr` as a variable name or function pointer: be safe.
        reads.all = true;
        return i;
    }
    match literal_then(src, j + 1, b')') {
        Some((name, next)) => {
            add(reads, name);
            next
        }
        None => {
            reads.all = true;
            j + 1
        }
    }
}

/// `mv_find("type", "attribute", ...)`: note the pair, or where the call
/// names them otherwise.
fn after_mv_find(src: &str, start: usize, i: usize, reads: &mut Reads) {
    let b = src.as_bytes();
    let j = skip_ws(b, i);
    let pair = (b.get(j) == Some(&b'('))
        .then(|| literal_then(src, j + 1, b','))
        .flatten()
        .and_then(|(ty, next)| Some((ty, literal_then(src, next, b',')?.0)));
    match pair {
        Some((ty, attr)) => {
            let pair = (ty.to_owned(), attr.to_owned());
            if !reads.finds.contains(&pair) {
                reads.finds.push(pair);
            }
        }
        None => {
            reads.computed_find.get_or_insert(start);
        }
    }
}

fn after_attrs(src: &str, i: usize, reads: &mut Reads) -> usize {
    let b = src.as_bytes();
    let mut j = skip_ws(b, i);
    if b.get(j) == Some(&b'?') {
        j += 1;
    }
    match b.get(j) {
        Some(b'.') => {
            let k = skip_ws(b, j + 1);
            let start = k;
            let mut end = k;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            if end > start {
                let name = &src[start..end];
                let after = skip_ws(b, end);
                if b.get(after) == Some(&b'(') {
                    // A method on the map (`attrs.keys()`): reads them all.
                    reads.all = true;
                } else {
                    add(reads, name);
                }
                return end;
            }
            reads.all = true;
            j + 1
        }
        Some(b'[') => match literal_then(src, j + 1, b']') {
            Some((name, next)) => {
                add(reads, name);
                next
            }
            None => {
                reads.all = true;
                j + 1
            }
        },
        _ => {
            reads.all = true;
            i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_reads_are_found_and_comments_and_strings_are_skipped() {
        let r = scan(
            r#"// attr("commented")
            let a = attr("givenName"); /* attrs.hidden */
            let s = "attr(\"in a string\")";
            a + attrs.sn + attrs["mail"] + attr( "givenName" )"#,
        );
        assert_eq!(r.names, vec!["givenName", "sn", "mail"]);
        assert!(!r.all);
    }

    #[test]
    fn metaverse_reads_and_lookups_are_found() {
        let r = scan(
            r#"if mv.accountName != () { return mv.accountName; }
            let n = attrs.last; // mv_find("x", "y", 1)
            while mv_find( "person" , "accountName", n).len() > 0 { n += "2" }
            mv_find("person", "accountName", n); n"#,
        );
        assert!(r.mv && r.lookups);
        assert_eq!(
            r.finds,
            vec![("person".to_owned(), "accountName".to_owned())]
        );
        assert_eq!(r.computed_find, None);
        let r = scan(r#"let t = "person"; mv_find(t, "mail", 1)"#);
        assert_eq!(r.computed_find, Some(18));
        let r = scan("attrs.mv + mv_connectors(1)");
        assert!(!r.mv && r.lookups && r.finds.is_empty());
    }

    #[test]
    fn computed_names_mark_the_script_as_reading_everything() {
        assert!(scan(r#"let n = "mail"; attr(n)"#).all);
        assert!(scan("attrs.keys()").all);
        assert!(scan("let m = attrs; m.mail").all);
        assert!(scan(r#""mail".attr()"#).all);
    }
}
