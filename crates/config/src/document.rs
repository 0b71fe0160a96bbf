//! The parsed TOML document with the byte span of every key and value: TOML
//! syntax errors become diagnostics, and key paths (`ma[1].connector.path`)
//! find the place in the file that a later problem is about.

use crate::diagnostic::{Diagnostic, PathSegment};
use miette::SourceSpan;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Parses `text`; every syntax error as a diagnostic.
pub fn parse(text: &str) -> Result<Spanned<DeTable<'_>>, Vec<Diagnostic>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Ok(root);
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for error in errors {
        let span = error.span().unwrap_or(text.len()..text.len());
        // Recovery can report the same place twice; once is enough.
        if seen.contains(&span.start) {
            continue;
        }
        seen.push(span.start);
        out.push(syntax_diagnostic(text, error.message(), span));
    }
    Err(out)
}

fn syntax_diagnostic(text: &str, message: &str, span: Range<usize>) -> Diagnostic {
    let at_end = text[span.start.min(text.len())..].trim().is_empty();
    let message = format!("invalid TOML: {message}");
    let help = if at_end {
        "the file ends in the middle of a value or table: it may be truncated (was it written completely?)"
    } else {
        "see https://toml.io for the syntax; strings need quotes, tables need `[name]` headers"
    };
    Diagnostic::error("", message)
        .with_span(Some(to_span(span)))
        .with_label("here")
        .with_help(help)
}

/// A problem found while walking the document, before its key path is
/// rendered (rendering needs the whole document, which may be borrowed
/// mutably while problems are found).
#[derive(Clone, Debug)]
pub struct Problem {
    pub path: Vec<PathSegment>,
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
    pub warning: bool,
}

impl Problem {
    pub fn error(path: Vec<PathSegment>, span: Range<usize>, message: impl Into<String>) -> Self {
        Problem {
            path,
            span,
            message: message.into(),
            help: None,
            warning: false,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn into_diagnostic(self, root: &Spanned<DeTable<'_>>) -> Diagnostic {
        let key = render_key(root, &self.path);
        let d = if self.warning {
            Diagnostic::warning(key, self.message)
        } else {
            Diagnostic::error(key, self.message)
        };
        let d = d.with_span(Some(to_span(self.span)));
        match self.help {
            Some(h) => d.with_help(h),
            None => d,
        }
    }
}

/// A byte range as a miette span.
pub fn to_span(range: Range<usize>) -> SourceSpan {
    SourceSpan::new(range.start.into(), range.end.saturating_sub(range.start))
}

/// Where one key path is in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The key's own span (absent for array items).
    pub key: Option<Range<usize>>,
    /// The value's span.
    pub value: Range<usize>,
}

/// Finds a key path in the document.
pub fn lookup(root: &Spanned<DeTable<'_>>, path: &[PathSegment]) -> Option<Found> {
    let mut current = Found {
        key: None,
        value: root.span(),
    };
    let mut value: Option<&DeValue<'_>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    for segment in path {
        match segment {
            PathSegment::Key(name) => {
                let t = match (table, value) {
                    (Some(t), _) => t,
                    (None, Some(DeValue::Table(t))) => t,
                    _ => return None,
                };
                let (k, v) = t.get_key_value(name.as_str())?;
                current = Found {
                    key: Some(k.span()),
                    value: v.span(),
                };
                value = Some(v.get_ref());
            }
            PathSegment::Index(i) => {
                let Some(DeValue::Array(items)) = value else {
                    return None;
                };
                let v = items.get(*i)?;
                current = Found {
                    key: None,
                    value: v.span(),
                };
                value = Some(v.get_ref());
            }
        }
        table = None;
    }
    Some(current)
}

/// The value at a key path.
pub fn value_at<'a, 'i>(
    root: &'a Spanned<DeTable<'i>>,
    path: &[PathSegment],
) -> Option<&'a DeValue<'i>> {
    let mut value: Option<&DeValue<'i>> = None;
    let mut table = Some(root.get_ref());
    for segment in path {
        match segment {
            PathSegment::Key(name) => {
                let t = match (table, value) {
                    (Some(t), _) => t,
                    (None, Some(DeValue::Table(t))) => t,
                    _ => return None,
                };
                value = Some(t.get(name.as_str())?.get_ref());
            }
            PathSegment::Index(i) => {
                let Some(DeValue::Array(items)) = value else {
                    return None;
                };
                value = Some(items.get(*i)?.get_ref());
            }
        }
        table = None;
    }
    value
}

/// The value at a key path, with its span (`None` for the root or a path
/// that is not in the document).
pub fn spanned_at<'a, 'i>(
    root: &'a Spanned<DeTable<'i>>,
    path: &[PathSegment],
) -> Option<&'a Spanned<DeValue<'i>>> {
    let mut value: Option<&Spanned<DeValue<'i>>> = None;
    for segment in path {
        value = match (segment, value.map(Spanned::get_ref)) {
            (PathSegment::Key(name), None) => Some(root.get_ref().get(name.as_str())?),
            (PathSegment::Key(name), Some(DeValue::Table(t))) => Some(t.get(name.as_str())?),
            (PathSegment::Index(i), Some(DeValue::Array(items))) => Some(items.get(*i)?),
            _ => return None,
        };
    }
    value
}

/// Removes the key at `path` (an unknown key, once reported, so the rest of
/// its table can still be read).
pub fn remove(root: &mut Spanned<DeTable<'_>>, path: &[PathSegment]) {
    let Some((PathSegment::Key(last), parent)) = path.split_last() else {
        return;
    };
    if parent.is_empty() {
        root.get_mut().remove(last.as_str());
        return;
    }
    let mut value: Option<&mut DeValue<'_>> = None;
    for (n, segment) in parent.iter().enumerate() {
        let next = match (n, segment, value) {
            (0, PathSegment::Key(k), _) => root.get_mut().get_mut(k.as_str()),
            (_, PathSegment::Key(k), Some(DeValue::Table(t))) => t.get_mut(k.as_str()),
            (_, PathSegment::Index(i), Some(DeValue::Array(items))) => items.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return };
        value = Some(next.get_mut());
    }
    if let Some(DeValue::Table(t)) = value {
        t.remove(last.as_str());
    }
}

/// A readable key path: `ma "hr" > import_flows[3] > mv`. An MA is named by
/// its `name` when it has one.
pub fn render_key(root: &Spanned<DeTable<'_>>, path: &[PathSegment]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < path.len() {
        let segment = &path[i];
        if !out.is_empty() && matches!(segment, PathSegment::Key(_)) {
            out.push_str(" > ");
        }
        match segment {
            PathSegment::Key(k) => {
                out.push_str(&display_key(k));
                if k == "ma"
                    && i == 0
                    && let Some(PathSegment::Index(n)) = path.get(1)
                {
                    {
                        let name = value_at(root, &path[..2])
                            .and_then(|v| match v {
                                DeValue::Table(t) => t.get("name"),
                                _ => None,
                            })
                            .and_then(|v| v.get_ref().as_str().map(str::to_owned));
                        match name {
                            Some(name) if !name.is_empty() => out.push_str(&format!(" {name:?}")),
                            _ => out.push_str(&format!("[{n}]")),
                        }
                        i += 1;
                    }
                }
            }
            PathSegment::Index(n) => out.push_str(&format!("[{n}]")),
        }
        i += 1;
    }
    out
}

/// A key as TOML would write it (quoted when it is not a bare key).
fn display_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// A string value's content span, and whether the source bytes of the string
/// equal its value (no escapes), so an offset inside the value maps to the
/// same offset in the file.
pub fn string_content_start(text: &str, value: &Range<usize>, decoded: &str) -> Option<usize> {
    let raw = text.get(value.clone())?;
    for quote in ["\"\"\"", "'''", "\"", "'"] {
        if let Some(inner) = raw.strip_prefix(quote).and_then(|r| r.strip_suffix(quote)) {
            let mut start = value.start + quote.len();
            let mut inner = inner;
            // A newline right after the opening delimiter of a multi-line
            // string is not part of the value.
            if quote.len() == 3 {
                if let Some(rest) = inner.strip_prefix("\r\n") {
                    inner = rest;
                    start += 2;
                } else if let Some(rest) = inner.strip_prefix('\n') {
                    inner = rest;
                    start += 1;
                }
            }
            return (inner == decoded).then_some(start);
        }
    }
    None
}

/// The span of attribute `name` inside the string value at `value` whose
/// decoded text is `src` (an expression or a script): its first occurrence
/// as a whole word (`` `name` `` first), else the whole value.
pub fn name_span(text: &str, value: &Range<usize>, src: &str, name: &str) -> Range<usize> {
    let Some(start) = string_content_start(text, value, src) else {
        return value.clone();
    };
    let quoted = format!("`{name}`");
    if let Some(i) = src.find(&quoted) {
        return start + i..start + i + quoted.len();
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let found = src.match_indices(name).find(|(i, _)| {
        let before = src[..*i].chars().next_back();
        let after = src[i + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    });
    match found {
        Some((i, _)) if !name.is_empty() => start + i..start + i + name.len(),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::parse_key_path;

    #[test]
    fn lookup_should_find_the_span_of_a_nested_value() {
        let text = "[[ma]]\nname = \"hr\"\nconnector = { type = \"csv\", path = \"a.csv\" }\n";
        let root = parse(text).unwrap();
        let found = lookup(&root, &parse_key_path("ma[0].connector.path")).unwrap();
        assert_eq!(&text[found.value], "\"a.csv\"");
        assert_eq!(&text[found.key.unwrap()], "path");
    }

    #[test]
    fn render_key_should_name_an_ma_by_its_name() {
        let text = "[[ma]]\nname = \"hr\"\nimport_flows = [{ mv = \"x\" }]\n";
        let root = parse(text).unwrap();
        let key = render_key(&root, &parse_key_path("ma[0].import_flows[0].mv"));
        assert_eq!(key, "ma \"hr\" > import_flows[0] > mv");
    }

    #[test]
    fn name_span_should_find_the_attribute_as_a_whole_word_inside_the_string() {
        let text = "a = \"status_code == stat\"\nb = \"x + `stat`\"\n";
        let root = parse(text).unwrap();
        let a = lookup(&root, &parse_key_path("a")).unwrap().value;
        let span = name_span(text, &a, "status_code == stat", "stat");
        assert_eq!(&text[span], "stat");
        assert_eq!(
            name_span(text, &a, "status_code == stat", "title"),
            a,
            "not found: the whole value"
        );
        let b = lookup(&root, &parse_key_path("b")).unwrap().value;
        assert_eq!(&text[name_span(text, &b, "x + `stat`", "stat")], "`stat`");
    }

    #[test]
    fn string_content_start_should_refuse_strings_with_escapes() {
        let text = "a = \"x\\ty\"\nb = 'lower(x)'\n";
        let root = parse(text).unwrap();
        let a = lookup(&root, &parse_key_path("a")).unwrap().value;
        assert_eq!(string_content_start(text, &a, "x\ty"), None);
        let b = lookup(&root, &parse_key_path("b")).unwrap().value;
        assert_eq!(
            string_content_start(text, &b, "lower(x)"),
            Some(b.start + 1)
        );
    }
}
