//! The docs test (issue 19): the book in `docs/` and the repository's other
//! Markdown files must hold together.
//!
//! * Every relative link of every Markdown file of the repository resolves
//!   to a file or folder of the repository, and a `#fragment` into a
//!   Markdown file to one of its headings (mdBook/GitHub slugs); no file
//!   points outside the repository; the book's outline (SUMMARY.md) and its
//!   pages agree.
//! * The configuration reference documents every key the code accepts
//!   (`autosync_service::config::accepted_keys`, read from the code), under
//!   the heading of its table, and no key the code does not accept.
//! * Every complete example (```` ```toml ````) passes `autosync check`;
//!   every fragment (```` ```toml,fragment ````) parses and uses only keys
//!   the code accepts.
//! * Where `mdbook` is installed, the book builds.
//!
//! The checks are functions over a folder, unit-tested on small fixtures
//! below; the tests at the top run them over the repository.

use super::support::BIN;
use autosync_config::SECRET_TABLES;
use autosync_config::keys::{KeyPath, Shape};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

const SUMMARY: &str = "docs/src/SUMMARY.md";
const REFERENCE: &str = "docs/src/reference/configuration.md";

// ---------------------------------------------------------------------------
// The tests of the repository.

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The repository's files (tracked, and new ones not ignored), relative,
/// with `/` separators.
fn repo_files(root: &Path) -> BTreeSet<String> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()
        .expect("the docs test lists the repository's files with git");
    assert!(
        out.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|f| !f.is_empty())
        // A file deleted from the work tree but not yet from the index.
        .filter(|f| root.join(f).exists())
        .map(str::to_owned)
        .collect()
}

fn registry() -> autosync_connector::Registry {
    let mut registry = autosync_connector::Registry::new();
    autosync_connectors::register_all(&mut registry);
    registry
}

fn accepted_keys() -> Vec<KeyPath> {
    autosync_service::config::accepted_keys(&registry())
}

fn config_shape() -> Shape {
    autosync_config::keys::shape(
        &registry(),
        &autosync_service::config::controller_shape(),
        &autosync_service::config::ma_controller_shape(),
    )
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_relative_link_in_the_repository_should_resolve() {
    let root = repo_root();
    assert_no_problems(
        "links of the repository's Markdown files",
        &check_links(&root, &repo_files(&root)),
    );
}

#[test]
fn the_repository_should_not_point_outside_itself() {
    let root = repo_root();
    assert_no_problems(
        "text that points outside the repository",
        &check_no_outside_references(&root, &repo_files(&root)),
    );
}

#[test]
fn the_book_outline_and_its_pages_should_agree() {
    let root = repo_root();
    assert_no_problems(
        "the book's outline (docs/src/SUMMARY.md)",
        &check_summary(&root, &repo_files(&root)),
    );
}

#[test]
fn the_reference_should_document_every_key_the_code_accepts() {
    let text = read_reference(&repo_root());
    let documented = documented_keys(&text);
    assert_no_problems(
        "keys the code accepts but the reference does not document",
        &missing_keys(&accepted_keys(), &documented, REFERENCE),
    );
}

#[test]
fn the_reference_should_document_no_key_the_code_does_not_accept() {
    let text = read_reference(&repo_root());
    let documented = documented_keys(&text);
    assert_no_problems(
        "keys the reference documents but the code does not accept",
        &stale_keys(&accepted_keys(), &documented, REFERENCE),
    );
}

#[test]
fn every_example_in_the_docs_should_pass_check() {
    let root = repo_root();
    let pages: Vec<String> = repo_files(&root)
        .into_iter()
        .filter(|f| f.ends_with(".md") && (f.starts_with("docs/src/") || f == "README.md"))
        .collect();
    assert_no_problems(
        "examples of the docs",
        &check_examples(&root, &pages, &config_shape()),
    );
    // Checking nothing passes too: the reference must have examples.
    let reference = parse_markdown(&read_reference(&root));
    let complete = reference.blocks.iter().filter(|b| b.info == "toml").count();
    assert!(
        complete > 0,
        "{REFERENCE} has no complete example (```toml) for the test to check"
    );
}

#[test]
fn the_book_should_build_where_mdbook_is_installed() {
    let root = repo_root();
    let out_dir = tempfile::tempdir().unwrap();
    let run = Command::new("mdbook")
        .arg("build")
        .arg(root.join("docs"))
        .arg("--dest-dir")
        .arg(out_dir.path())
        .output();
    match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: mdbook is not installed (cargo install mdbook to build the book)");
        }
        Err(e) => panic!("cannot run mdbook: {e}"),
        Ok(out) => assert!(
            out.status.success(),
            "mdbook build docs failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn read_reference(root: &Path) -> String {
    std::fs::read_to_string(root.join(REFERENCE))
        .unwrap_or_else(|e| panic!("{REFERENCE}: {e} (the configuration reference is missing)"))
}

// ---------------------------------------------------------------------------
// Reading Markdown.

/// A fenced code block: its info string, the line of its opening fence
/// (1-based) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CodeBlock {
    info: String,
    line: usize,
    text: String,
}

/// A Markdown file split into its fenced code blocks and the rest, in
/// which fences and code blocks are blanked (newlines kept, so offsets
/// give lines).
struct Markdown {
    prose: String,
    blocks: Vec<CodeBlock>,
}

fn fence_of(line: &str) -> Option<(char, usize, &str)> {
    let t = line.trim_start();
    let c = t.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = t.chars().take_while(|x| *x == c).count();
    if n < 3 {
        return None;
    }
    let info = t[n..].trim();
    if c == '`' && info.contains('`') {
        return None;
    }
    Some((c, n, info))
}

fn blank(line: &str) -> String {
    " ".repeat(line.len())
}

fn parse_markdown(text: &str) -> Markdown {
    let mut prose = String::with_capacity(text.len());
    let mut blocks = Vec::new();
    let mut open: Option<(char, usize, CodeBlock, usize)> = None;
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            prose.push('\n');
        }
        match &mut open {
            None => match fence_of(line) {
                Some((c, n, info)) => {
                    let indent = line.len() - line.trim_start().len();
                    open = Some((
                        c,
                        n,
                        CodeBlock {
                            info: info.to_owned(),
                            line: i + 1,
                            text: String::new(),
                        },
                        indent,
                    ));
                    prose.push_str(&blank(line));
                }
                None => prose.push_str(line),
            },
            Some((c, n, block, indent)) => {
                let closes = matches!(fence_of(line), Some((c2, n2, "")) if c2 == *c && n2 >= *n);
                if closes {
                    if let Some((_, _, block, _)) = open.take() {
                        blocks.push(block);
                    }
                } else {
                    let cut = line
                        .char_indices()
                        .take_while(|(j, ch)| *j < *indent && *ch == ' ')
                        .count();
                    block.text.push_str(&line[cut..]);
                    block.text.push('\n');
                }
                prose.push_str(&blank(line));
            }
        }
    }
    // An unclosed block runs to the end of the file (CommonMark).
    if let Some((_, _, block, _)) = open {
        blocks.push(block);
    }
    Markdown {
        prose: blank_code_spans(&prose),
        blocks,
    }
}

/// `text` with the content of every code span (`` `x` ``) blanked.
fn blank_code_spans(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = bytes[i..].iter().take_while(|b| **b == b'`').count();
        // The closing run of exactly n backticks.
        let mut j = i + n;
        let mut close = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let m = bytes[j..].iter().take_while(|b| **b == b'`').count();
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for b in &mut out[i..j + n] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
                i = j + n;
            }
            None => i += n,
        }
    }
    // Only ASCII bytes were replaced by ASCII: still UTF-8.
    String::from_utf8(out).unwrap()
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// A link target written in a file, with its line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Link {
    line: usize,
    target: String,
}

/// Every link target of the prose: `[..](target)`, `![..](target)`,
/// `[id]: target`, `<target>` (when it looks like a path or URL),
/// `href="target"` and `src="target"`.
fn links(prose: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let bytes = prose.as_bytes();
    // Inline links and images.
    let mut from = 0;
    while let Some(at) = prose[from..].find("](") {
        let start = from + at + 2;
        if let Some((target, end)) = link_destination(&prose[start..]) {
            out.push(Link {
                line: line_at(prose, start),
                target,
            });
            from = start + end;
        } else {
            from = start;
        }
    }
    // Reference definitions.
    let mut offset = 0;
    for line in prose.split('\n') {
        let t = line.trim_start();
        if line.len() - t.len() <= 3
            && t.starts_with('[')
            && let Some(close) = t.find("]:")
            && !t[1..close].contains(']')
        {
            let rest = t[close + 2..].trim();
            if let Some(target) = rest.split_whitespace().next() {
                let target = target.trim_start_matches('<').trim_end_matches('>');
                out.push(Link {
                    line: line_at(prose, offset),
                    target: target.to_owned(),
                });
            }
        }
        offset += line.len() + 1;
    }
    // Autolinks.
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<'
            && let Some(len) = prose[i + 1..].find('>')
        {
            let inner = &prose[i + 1..i + 1 + len];
            let looks_like_link = !inner.is_empty()
                && !inner.contains(char::is_whitespace)
                && (inner.contains("://")
                    || inner.starts_with("mailto:")
                    || inner.starts_with("./")
                    || inner.starts_with("../")
                    || inner.ends_with(".md")
                    || inner.contains(".md#"));
            if looks_like_link {
                out.push(Link {
                    line: line_at(prose, i),
                    target: inner.to_owned(),
                });
            }
            i += 1 + len;
        } else {
            i += 1;
        }
    }
    // HTML attributes.
    for attr in ["href=\"", "src=\""] {
        let mut from = 0;
        while let Some(at) = prose[from..].find(attr) {
            let start = from + at + attr.len();
            match prose[start..].find('"') {
                Some(len) => {
                    out.push(Link {
                        line: line_at(prose, start),
                        target: prose[start..start + len].to_owned(),
                    });
                    from = start + len;
                }
                None => break,
            }
        }
    }
    out.sort_by_key(|l| l.line);
    out
}

/// The destination at the start of `s` (just after `](`) and where the
/// link ends; `None` when it is not a link destination.
fn link_destination(s: &str) -> Option<(String, usize)> {
    if let Some(rest) = s.strip_prefix('<') {
        let end = rest.find('>')?;
        let close = rest[end..].find(')')?;
        return Some((rest[..end].to_owned(), 1 + end + close + 1));
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                let dest = s[..i].split_whitespace().next().unwrap_or("");
                return Some((dest.to_owned(), i + 1));
            }
            ')' => depth -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    None
}

/// A heading: its line, its level and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Heading {
    line: usize,
    level: usize,
    text: String,
}

/// The headings of a file (ATX `## x` and setext), outside code blocks.
/// The text keeps its code spans (read from the original file).
fn headings(text: &str) -> Vec<Heading> {
    let md = parse_markdown(text);
    let originals: Vec<&str> = text.split('\n').collect();
    let prose: Vec<&str> = md.prose.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in prose.iter().enumerate() {
        let t = line.trim_start();
        if line.len() - t.len() > 3 {
            continue;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && (t.len() == level || t[level..].starts_with([' ', '\t'])) {
            let original = originals[i].trim_start()[level..].trim();
            // A closing run of #s.
            let original = original.trim_end_matches('#').trim_end();
            out.push(Heading {
                line: i + 1,
                level,
                text: original.to_owned(),
            });
            continue;
        }
        // Setext: a line of = or - under a paragraph line.
        if i > 0 && !t.is_empty() {
            let underline = t.trim_end();
            let previous = prose[i - 1].trim();
            let all = |c: char| underline.chars().all(|x| x == c);
            if (all('=') || all('-'))
                && !previous.is_empty()
                && !previous.starts_with(['#', '|', '-', '*', '>'])
            {
                out.push(Heading {
                    line: i,
                    level: if all('=') { 1 } else { 2 },
                    text: originals[i - 1].trim().to_owned(),
                });
            }
        }
    }
    out
}

/// mdBook's (and GitHub's) anchor of a heading: its text without markup,
/// lowercase, whitespace to `-`, every other character but letters,
/// digits, `-` and `_` removed. A `{#id}` at the end gives the id.
fn slug(heading: &str) -> String {
    let text = heading.trim();
    if let Some(open) = text.rfind("{#")
        && text.ends_with('}')
    {
        return text[open + 2..text.len() - 1].to_owned();
    }
    // Links: keep their text.
    let mut plain = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        plain.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match link_destination(after) {
            Some((_, end)) => rest = &after[end..],
            None => {
                rest = after;
            }
        }
    }
    plain.push_str(rest);
    plain
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The anchors of a file's headings (a repeated slug gets `-1`, `-2`...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for h in headings(text) {
        let s = slug(&h.text);
        let n = seen.entry(s.clone()).or_insert(0);
        if *n == 0 {
            out.insert(s);
        } else {
            out.insert(format!("{s}-{n}"));
        }
        *n += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Links.

fn is_external(target: &str) -> bool {
    let scheme: String = target
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .collect();
    !scheme.is_empty() && target[scheme.len()..].starts_with(':') && scheme.len() > 1
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `rel` (a repository-relative path) joined with `target` and normalised;
/// `None` when it leaves the repository.
fn resolve(from_dir: &str, target: &str) -> Option<String> {
    let mut parts: Vec<String> = from_dir
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    for c in Path::new(target).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Every folder holding one of `files`.
fn folders(files: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in files {
        let mut dir = parent_of(f);
        while !dir.is_empty() && out.insert(dir.to_owned()) {
            dir = parent_of(dir);
        }
    }
    out
}

/// Every relative link of every Markdown file among `files` (relative to
/// `root`) that does not resolve: to a file or folder among `files`, and
/// for a `#fragment` into a Markdown file, to one of its headings.
fn check_links(root: &Path, files: &BTreeSet<String>) -> Vec<String> {
    let dirs = folders(files);
    let mut anchor_cache: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut anchors_of = |rel: &str| -> BTreeSet<String> {
        anchor_cache
            .entry(rel.to_owned())
            .or_insert_with(|| {
                anchors(&std::fs::read_to_string(root.join(rel)).unwrap_or_default())
            })
            .clone()
    };
    let mut problems = Vec::new();
    for file in files.iter().filter(|f| f.ends_with(".md")) {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        let md = parse_markdown(&text);
        for link in links(&md.prose) {
            let at = format!("{file}:{}", link.line);
            let target = link.target.trim();
            if target.is_empty() || is_external(target) {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target, None),
            };
            let path = percent_decode(path);
            let resolved = if path.is_empty() {
                file.clone()
            } else if path.starts_with('/') {
                problems.push(format!(
                    "{at}: `{target}` is absolute: write it relative to this file"
                ));
                continue;
            } else {
                match resolve(parent_of(file), &path) {
                    Some(r) => r,
                    None => {
                        problems.push(format!("{at}: `{target}` points outside the repository"));
                        continue;
                    }
                }
            };
            let is_file = files.contains(&resolved);
            if !is_file && !dirs.contains(&resolved) && !resolved.is_empty() {
                problems.push(format!(
                    "{at}: `{target}`: {resolved} is not a file or folder of the repository"
                ));
                continue;
            }
            if let Some(fragment) = fragment
                && is_file
                && resolved.ends_with(".md")
            {
                let fragment = percent_decode(fragment);
                let known = anchors_of(&resolved);
                if !known.contains(&fragment) {
                    let near: Vec<&String> = known
                        .iter()
                        .filter(|a| a.contains(&fragment) || fragment.contains(a.as_str()))
                        .take(3)
                        .collect();
                    problems.push(format!(
                        "{at}: `{target}`: {resolved} has no heading whose anchor is `{fragment}`{}",
                        if near.is_empty() {
                            String::new()
                        } else {
                            format!(" (close: {near:?})")
                        }
                    ));
                }
            }
        }
    }
    problems
}

/// Files among `files` whose text names the folder next to the
/// repository (the spec and seeds the project was written from): the
/// repository must stand alone.
fn check_no_outside_references(root: &Path, files: &BTreeSet<String>) -> Vec<String> {
    // Written in pieces, so that this file does not name them.
    let needles = [["..", "/shared/"].concat(), ["shared", "/spec"].concat()];
    let mut problems = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue; // not text
        };
        for (i, line) in text.lines().enumerate() {
            for needle in &needles {
                if line.contains(needle.as_str()) {
                    problems.push(format!(
                        "{file}:{}: names `{needle}`, outside the repository: {}",
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    problems
}

/// The outline names files that exist, and every page of the book is in
/// the outline.
fn check_summary(root: &Path, files: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(text) = std::fs::read_to_string(root.join(SUMMARY)) else {
        return vec![format!("{SUMMARY} is missing")];
    };
    let src = parent_of(SUMMARY);
    let mut listed = BTreeSet::new();
    for link in links(&parse_markdown(&text).prose) {
        let path = link.target.split('#').next().unwrap_or("");
        if path.is_empty() || is_external(path) {
            continue;
        }
        match resolve(src, &percent_decode(path)) {
            Some(rel) => {
                if !files.contains(&rel) {
                    problems.push(format!(
                        "{SUMMARY}:{}: the outline names {rel}, which does not exist",
                        link.line
                    ));
                }
                listed.insert(rel);
            }
            None => problems.push(format!(
                "{SUMMARY}:{}: `{}` points outside the book",
                link.line, link.target
            )),
        }
    }
    for page in files
        .iter()
        .filter(|f| f.starts_with(&format!("{src}/")) && f.ends_with(".md"))
        .filter(|f| f.as_str() != SUMMARY)
    {
        if !listed.contains(page) {
            problems.push(format!(
                "{page} is a page of the book that {SUMMARY} does not list (mdBook would not build it)"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// The configuration reference.

/// A table heading of the reference: `` `[[ma.object_types]]` `` or
/// `` `[ma.connector]` with `type = "csv"` ``.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TableHeading {
    /// The header as written, brackets included: `[[ma.object_types]]`.
    header: String,
    variant: Option<(String, String)>,
}

/// A key the reference documents: a table row under a table heading.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DocumentedKey {
    heading: TableHeading,
    key: String,
    line: usize,
}

/// The code spans of a line, in order.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

fn table_heading(text: &str) -> Option<TableHeading> {
    let spans = code_spans(text);
    let header = spans.first()?.trim();
    if !(header.starts_with('[') && header.ends_with(']')) {
        return None;
    }
    let after = text.splitn(3, '`').nth(2).unwrap_or("");
    let variant = if after.trim_start().starts_with("with") {
        spans.get(1).and_then(|v| {
            let (tag, value) = v.split_once('=')?;
            Some((
                tag.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
    } else {
        None
    };
    Some(TableHeading {
        header: header.to_owned(),
        variant,
    })
}

/// The key in a table row's first cell, when the cell is exactly one code
/// span.
fn row_key(line: &str) -> Option<String> {
    let t = line.trim();
    let rest = t.strip_prefix('|')?;
    // The first cell ends at the first `|` outside a code span.
    let mut in_code = false;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '|' if !in_code => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let cell = rest[..end].trim();
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    if inner.is_empty() || inner.contains('`') {
        return None;
    }
    Some(inner.trim().to_owned())
}

/// Every key the reference documents, with its heading.
fn documented_keys(text: &str) -> Vec<DocumentedKey> {
    let heads = headings(text);
    let md = parse_markdown(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let prose: Vec<&str> = md.prose.split('\n').collect();
    let mut out = Vec::new();
    let mut current: Option<TableHeading> = None;
    let mut next_heading = heads.iter().peekable();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        // Setext headings are reported at their text's line.
        while let Some(h) = next_heading.peek() {
            if h.line > number {
                break;
            }
            current = table_heading(&h.text);
            next_heading.next();
        }
        // Rows in code blocks are not rows.
        if prose[i].trim().is_empty() {
            continue;
        }
        if let (Some(heading), Some(key)) = (&current, row_key(line)) {
            out.push(DocumentedKey {
                heading: heading.clone(),
                key,
                line: number,
            });
        }
    }
    out
}

/// A name with its user-chosen placeholders (`<type>`) made alike.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_placeholder = false;
    for c in path.chars() {
        match c {
            '<' => {
                in_placeholder = true;
                out.push('<');
            }
            '>' => {
                in_placeholder = false;
                out.push('>');
            }
            _ if in_placeholder => {}
            _ => out.push(c),
        }
    }
    out
}

/// Whether the documented key `d` documents `k`: same table, same key, and
/// the same variant, or the key is documented under the table's plain
/// heading (for every variant that has it), or `k` is common to every
/// variant (the tag itself) and is documented under one.
fn documents(d: &DocumentedKey, k: &KeyPath) -> bool {
    if normalise(&d.heading.header) != normalise(&k.header())
        || normalise(&d.key) != normalise(&k.key)
    {
        return false;
    }
    match (&d.heading.variant, k.variant()) {
        (None, _) | (_, None) => true,
        (Some((tag, value)), Some((ktag, kvalue))) => tag == ktag && value == kvalue,
    }
}

/// Every key of `accepted` that no row of the reference documents, grouped
/// under the heading it belongs under.
fn missing_keys(accepted: &[KeyPath], documented: &[DocumentedKey], file: &str) -> Vec<String> {
    let mut by_heading: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for k in accepted {
        if !documented.iter().any(|d| documents(d, k)) {
            by_heading
                .entry(k.heading())
                .or_default()
                .push(format!("| `{}` | ... |   ({k})", k.key));
        }
    }
    by_heading
        .into_iter()
        .map(|(heading, rows)| {
            format!(
                "{file}: under the heading  ### {heading}  (any level, ## to ####), add the rows:\n    {}",
                rows.join("\n    ")
            )
        })
        .collect()
}

/// The keys that hold tables, as keys of their parent table (`deletion`
/// of `[metaverse.<type>]`, `connector` of `[[ma]]`): a row may document
/// them too.
fn table_keys(accepted: &[KeyPath]) -> Vec<KeyPath> {
    let mut out: Vec<KeyPath> = Vec::new();
    for k in accepted {
        for i in 1..k.tables.len() {
            let t = KeyPath {
                tables: k.tables[..i].to_vec(),
                key: k.tables[i].name.clone(),
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Every row of the reference that documents a key the code does not
/// accept. A secret's `X_file` (in a `connector` or `smtp` table) is
/// accepted where `X` is.
fn stale_keys(accepted: &[KeyPath], documented: &[DocumentedKey], file: &str) -> Vec<String> {
    let tables = table_keys(accepted);
    let mut problems = Vec::new();
    for d in documented {
        let accepts = |d: &DocumentedKey| accepted.iter().chain(&tables).any(|k| documents(d, k));
        let secret = d.key.strip_suffix("_file").is_some_and(|base| {
            let table = d.heading.header.trim_matches(['[', ']']);
            let last = table.rsplit('.').next().unwrap_or(table);
            SECRET_TABLES.contains(&last)
                && accepts(&DocumentedKey {
                    key: base.to_owned(),
                    ..d.clone()
                })
        });
        if !accepts(d) && !secret {
            let variant = match &d.heading.variant {
                Some((tag, value)) => format!(" with `{tag} = \"{value}\"`"),
                None => String::new(),
            };
            let keys: Vec<&str> = accepted
                .iter()
                .filter(|k| normalise(&k.header()) == normalise(&d.heading.header))
                .map(|k| k.key.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            problems.push(format!(
                "{file}:{}: `{}` under `{}`{variant}: the code accepts no such key (that table's keys: {})",
                d.line,
                d.key,
                d.heading.header,
                if keys.is_empty() {
                    "none: no such table".to_owned()
                } else {
                    keys.join(", ")
                }
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Examples.

/// Every key of `table` (at `path`) that `shape` does not accept.
fn unknown_keys(table: &toml::Table, shape: &Shape, path: &str, out: &mut Vec<String>) {
    let name = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    let secret = SECRET_TABLES.contains(&path.rsplit('.').next().unwrap_or(path));
    let keys: Vec<(String, Shape)> = match shape {
        Shape::Table(keys) => keys.clone(),
        Shape::Tagged { tag, variants } => {
            let chosen = table.get(tag).and_then(|v| v.as_str());
            let mut keys = vec![(tag.clone(), Shape::Leaf)];
            match chosen {
                Some(value) => match variants.iter().find(|(v, _)| v == value) {
                    Some((_, vkeys)) => keys.extend(vkeys.iter().cloned()),
                    None => {
                        let known: Vec<&str> = variants.iter().map(|(v, _)| v.as_str()).collect();
                        out.push(format!(
                            "`{} = \"{value}\"` is not a {tag} the code knows ({})",
                            name(tag),
                            known.join(", ")
                        ));
                        return;
                    }
                },
                // No tag: a key of any variant will do.
                None => {
                    for (_, vkeys) in variants {
                        keys.extend(vkeys.iter().cloned());
                    }
                }
            }
            keys
        }
        Shape::Map(_, child) => {
            for (k, v) in table {
                check_value(v, child, &name(k), out);
            }
            return;
        }
        Shape::Leaf | Shape::Array(_) => return,
    };
    for (k, v) in table {
        match keys.iter().find(|(name, _)| name == k) {
            Some((_, child)) => check_value(v, child, &name(k), out),
            None => {
                let base_known = k
                    .strip_suffix("_file")
                    .is_some_and(|base| keys.iter().any(|(n, _)| n == base));
                if !(secret && base_known) {
                    let known: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
                    out.push(format!(
                        "`{}` is not a key the code accepts (keys here: {})",
                        name(k),
                        known.join(", ")
                    ));
                }
            }
        }
    }
}

fn check_value(value: &toml::Value, shape: &Shape, path: &str, out: &mut Vec<String>) {
    match value {
        // A fragment may write one table of an array of tables as a plain
        // table (`[ma.connector]` without `[[ma]]` above it).
        toml::Value::Table(t) => match shape {
            Shape::Array(child) => unknown_keys(t, child, path, out),
            _ => unknown_keys(t, shape, path, out),
        },
        toml::Value::Array(items) => {
            if let Shape::Array(child) = shape {
                for item in items {
                    check_value(item, child, path, out);
                }
            }
        }
        _ => {}
    }
}

/// Every example of the Markdown files `pages` (relative to `root`) that
/// fails: a complete one (`toml`) that `autosync check` rejects, a
/// fragment (`toml,fragment`) that does not parse or uses a key `shape`
/// (the whole file's) does not have.
fn check_examples(root: &Path, pages: &[String], shape: &Shape) -> Vec<String> {
    let mut problems = Vec::new();
    for page in pages {
        let Ok(text) = std::fs::read_to_string(root.join(page)) else {
            problems.push(format!("{page}: cannot be read"));
            continue;
        };
        for block in parse_markdown(&text).blocks {
            let at = format!("{page}:{}", block.line);
            let info: Vec<&str> = block
                .info
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .collect();
            match info.as_slice() {
                ["toml"] => {
                    if let Err(why) = check_complete(&block.text) {
                        problems.push(format!(
                            "{at}: this complete example (```toml) does not pass `autosync check` (a part of a file is written ```toml,fragment):\n{why}"
                        ));
                    }
                }
                ["toml", "fragment"] => match block.text.parse::<toml::Table>() {
                    Err(e) => problems.push(format!(
                        "{at}: this fragment (```toml,fragment) is not TOML: {e}"
                    )),
                    Ok(table) => {
                        let mut unknown = Vec::new();
                        unknown_keys(&table, shape, "", &mut unknown);
                        for u in unknown {
                            problems.push(format!(
                                "{at}: fragment: {u} (a fragment's keys are read from the top of a file: start it with its table's header, e.g. [[ma]] then [ma.connector])"
                            ));
                        }
                    }
                },
                ["toml", ..] => problems.push(format!(
                    "{at}: unknown kind of TOML block ```{}: write ```toml (a complete file that passes `autosync check`) or ```toml,fragment",
                    block.info
                )),
                _ => {}
            }
        }
    }
    problems
}

/// Runs `autosync check` on `text` as a configuration file of its own
/// folder; Err: the exit code and what it printed.
fn check_complete(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("autosync.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .arg("-c")
        .arg(&file)
        .current_dir(dir.path())
        .env_remove("AUTOSYNC_CONFIG")
        .env_remove("AUTOSYNC_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "    exit {:?}\n    {}\n    {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace('\n', "\n    "),
        String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', "\n    ")
    ))
}

// ---------------------------------------------------------------------------
// The checks on fixtures.

mod fixtures {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn files_of(dir: &Path) -> BTreeSet<String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    let rel = p.strip_prefix(root).unwrap();
                    out.insert(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(dir, dir, &mut out);
        out
    }

    #[test]
    fn slugs_should_follow_mdbook() {
        assert_eq!(slug("`[[ma.object_types]]`"), "maobject_types");
        assert_eq!(slug("`[metaverse.<type>]`"), "metaversetype");
        assert_eq!(
            slug("`[ma.connector]` with `type = \"csv\"`"),
            "maconnector-with-type--csv"
        );
        assert_eq!(slug("Backup and restore"), "backup-and-restore");
        assert_eq!(slug("What's [new](x.md)?"), "whats-new");
        assert_eq!(slug("Custom {#my-id}"), "my-id");
        let a = anchors("# Title\n\n## Same\n\n## Same\n\n```\n## not a heading\n```\n");
        assert_eq!(
            a,
            ["title", "same", "same-1"]
                .map(String::from)
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn links_in_code_should_not_count() {
        let text = "See [a](a.md) and `[b](b.md)`.\n\n```md\n[c](c.md)\n```\n<../d.md> <https://x.org> <not a link>\n[e]: e.md \"title\"\n";
        let md = parse_markdown(text);
        let targets: Vec<(usize, String)> = links(&md.prose)
            .into_iter()
            .map(|l| (l.line, l.target))
            .collect();
        assert_eq!(
            targets,
            [
                (1, "a.md"),
                (6, "../d.md"),
                (6, "https://x.org"),
                (7, "e.md")
            ]
            .map(|(l, t)| (l, t.to_owned()))
        );
        assert_eq!(md.blocks.len(), 1);
        assert_eq!(md.blocks[0].info, "md");
        assert_eq!(md.blocks[0].line, 3);
        assert_eq!(md.blocks[0].text, "[c](c.md)\n");
    }

    #[test]
    fn a_broken_link_or_fragment_should_be_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "README.md",
            "# Top\n\n[ok](docs/a.md#a-heading) [dir](crates/) [self](#top)\n\
             [gone](docs/missing.md)\n[bad anchor](docs/a.md#nope)\n\
             [out](../outside.md) [web](https://example.org/x.md)\n\
             `[in code](missing.md)`\n",
        );
        write(d, "docs/a.md", "## A heading\n\n[back](../README.md#top)\n");
        write(d, "crates/x/lib.rs", "");
        let problems = check_links(d, &files_of(d));
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("README.md:4: `docs/missing.md`"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with("README.md:5: `docs/a.md#nope`: docs/a.md has no heading"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].contains("README.md:6: `../outside.md` points outside the repository"),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn a_file_naming_the_folder_outside_should_be_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let outside = ["see ..", "/shared/", "spec/engine.md"].concat();
        write(d, "ok.md", "nothing here\n");
        write(d, "src/lib.rs", &format!("// fine\n// {outside}\n"));
        let problems = check_no_outside_references(d, &files_of(d));
        assert_eq!(problems.len(), 2, "{problems:#?}"); // both needles
        assert!(problems[0].starts_with("src/lib.rs:2: "), "{}", problems[0]);
    }

    #[test]
    fn the_outline_and_the_pages_should_be_compared() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            SUMMARY,
            "# Summary\n\n[Intro](intro.md)\n\n- [Gone](reference/gone.md)\n",
        );
        write(d, "docs/src/intro.md", "# Intro\n");
        write(d, "docs/src/unlisted.md", "# Unlisted\n");
        let problems = check_summary(d, &files_of(d));
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].contains("names docs/src/reference/gone.md"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with("docs/src/unlisted.md is a page"),
            "{}",
            problems[1]
        );
    }

    fn small_keys() -> (Shape, Vec<KeyPath>) {
        let shape = Shape::Table(vec![
            ("store".into(), Shape::leaves(&["kind", "path"])),
            (
                "ma".into(),
                Shape::Table(vec![
                    ("name".into(), Shape::Leaf),
                    (
                        "connector".into(),
                        Shape::Tagged {
                            tag: "type".into(),
                            variants: vec![
                                ("csv".into(), vec![("path".into(), Shape::Leaf)]),
                                (
                                    "sqlite".into(),
                                    vec![
                                        ("path".into(), Shape::Leaf),
                                        ("table".into(), Shape::Leaf),
                                        ("password".into(), Shape::Leaf),
                                    ],
                                ),
                            ],
                        },
                    ),
                    ("run_profiles".into(), Shape::Leaf.map("profile")),
                ])
                .array(),
            ),
        ]);
        let keys = autosync_config::keys::key_paths(&shape);
        (shape, keys)
    }

    const REFERENCE_TEXT: &str = r#"# Configuration

## `[store]`

| Key | Type | Default | Meaning |
|-----|------|---------|---------|
| `kind` | string | `"sqlite"` | the store |

```toml,fragment
[store]
| `path` | in a code block: not a row |
```

## `[[ma]]`

| Key | Type | Default | Meaning |
|---|---|---|---|
| `name` | string | required | the MA's name |
| `connector` | table | required | see below |
| `colour` | string | | a key the code does not have |

### `[ma.connector]`

| `type` | string | required | `csv` or `sqlite` |

#### `[ma.connector]` with `type = "csv"`

| `path` | string | required | the file |

#### `[ma.connector]` with `type = "sqlite"`

| `path` | string | required | the database |
| `password` | string | | the password |
| `password_file` | string | | a file holding the password |
| `delimiter` | string | | csv's, not sqlite's |

### `[ma.run_profiles]`

| `<name>` | array | | the steps |
"#;

    #[test]
    fn the_reference_should_be_read_by_heading_and_row() {
        let doc = documented_keys(REFERENCE_TEXT);
        let got: Vec<(String, Option<String>, String)> = doc
            .iter()
            .map(|d| {
                (
                    d.heading.header.clone(),
                    d.heading.variant.as_ref().map(|(t, v)| format!("{t}={v}")),
                    d.key.clone(),
                )
            })
            .collect();
        let row =
            |h: &str, v: Option<&str>, k: &str| (h.to_owned(), v.map(str::to_owned), k.to_owned());
        assert_eq!(
            got,
            [
                row("[store]", None, "kind"),
                row("[[ma]]", None, "name"),
                row("[[ma]]", None, "connector"),
                row("[[ma]]", None, "colour"),
                row("[ma.connector]", None, "type"),
                row("[ma.connector]", Some("type=csv"), "path"),
                row("[ma.connector]", Some("type=sqlite"), "path"),
                row("[ma.connector]", Some("type=sqlite"), "password"),
                row("[ma.connector]", Some("type=sqlite"), "password_file"),
                row("[ma.connector]", Some("type=sqlite"), "delimiter"),
                row("[ma.run_profiles]", None, "<name>"),
            ]
        );
    }

    #[test]
    fn a_missing_key_should_be_reported_under_its_heading() {
        let (_, keys) = small_keys();
        let doc = documented_keys(REFERENCE_TEXT);
        let problems = missing_keys(&keys, &doc, "ref.md");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].starts_with("ref.md: under the heading  ### `[ma.connector]` with `type = \"sqlite\"`  (any level")
                && problems[0].contains("| `table` | ... |   (ma.connector(sqlite).table)"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("`[store]`") && problems[1].contains("(store.path)"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_documented_key_the_code_does_not_accept_should_be_reported() {
        let (_, keys) = small_keys();
        let doc = documented_keys(REFERENCE_TEXT);
        let problems = stale_keys(&keys, &doc, "ref.md");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].starts_with("ref.md:20: `colour` under `[[ma]]`: the code accepts no such key (that table's keys: name)"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with(
                "ref.md:35: `delimiter` under `[ma.connector]` with `type = \"sqlite\"`"
            ),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_fragment_should_use_only_keys_the_code_accepts() {
        let (shape, _) = small_keys();
        let check = |text: &str| {
            let mut out = Vec::new();
            unknown_keys(&text.parse::<toml::Table>().unwrap(), &shape, "", &mut out);
            out
        };
        assert!(check("[store]\nkind = \"sqlite\"\n").is_empty());
        assert!(
            check("[[ma]]\nname = \"hr\"\n[ma.connector]\ntype = \"sqlite\"\npath = \"x.db\"\ntable = \"t\"\npassword_file = \"p\"\n[ma.run_profiles]\nnightly = []\n")
                .is_empty()
        );
        // Without its type, a connector key of any type will do.
        assert!(check("[[ma]]\nconnector = { table = \"t\" }\n").is_empty());
        // A table of an array of tables, without the array's header.
        assert_eq!(
            check("[ma.connector]\ntype = \"csv\"\ntable = \"t\"\n"),
            ["`ma.connector.table` is not a key the code accepts (keys here: type, path)"]
        );
        assert_eq!(
            check("[[ma]]\nconnector = { type = \"csv\", table = \"t\" }\n"),
            ["`ma.connector.table` is not a key the code accepts (keys here: type, path)"]
        );
        assert_eq!(
            check("[store]\nkinds = 1\n[[ma]]\nconnector = { type = \"ldap\" }\n"),
            [
                "`ma.connector.type = \"ldap\"` is not a type the code knows (csv, sqlite)",
                "`store.kinds` is not a key the code accepts (keys here: kind, path)",
            ]
        );
    }

    #[test]
    fn every_example_should_be_checked_and_failures_located() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (shape, _) = small_keys();
        let good = "[store]\npath = \"state.db\"\n\n[metaverse.person]\nattributes = [\"name\"]\n\n[[ma]]\nname = \"hr\"\nconnector = { type = \"csv\", path = \"data/hr.csv\" }\nobject_types = [{ name = \"person\", anchor = \"id\" }]\n";
        write(
            d,
            "docs/src/page.md",
            &format!(
                "# Page\n\n```toml\n{good}```\n\n```toml\n[[ma]]\nname = \"hr\"\nconnectr = {{ type = \"csv\" }}\n```\n\n\
                 ```toml,fragment\n[store]\nkind = \"sqlite\"\n```\n\n```toml,fragment\n[store]\nsize = 1\n```\n\n\
                 ```toml,fragment\n[store\n```\n\n```toml,ignore\n```\n\n```sh\nautosync check\n```\n"
            ),
        );
        let problems = check_examples(d, &["docs/src/page.md".to_owned()], &shape);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with("docs/src/page.md:16: this complete example (```toml) does not pass `autosync check`")
                && problems[0].contains("connectr"),
            "{}",
            problems[0]
        );
        let starts = |i: usize, text: &str| {
            assert!(
                problems[i].starts_with(text),
                "{}\n{problems:#?}",
                problems[i]
            );
        };
        starts(1, "docs/src/page.md:27: fragment: `store.size`");
        starts(
            2,
            "docs/src/page.md:32: this fragment (```toml,fragment) is not TOML",
        );
        starts(
            3,
            "docs/src/page.md:36: unknown kind of TOML block ```toml,ignore",
        );
    }
}
