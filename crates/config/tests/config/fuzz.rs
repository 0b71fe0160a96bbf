//! Fuzzing configuration loading (reliability.md: "parsers of untrusted
//! input are fuzzed"), bounded so that it runs in CI.
//!
//! Inputs: arbitrary text, TOML-like token soup, and the valid test
//! configuration mutated (text deleted, tokens inserted, lines duplicated,
//! swapped and truncated, `${ENV}` references spliced in); arbitrary bytes
//! through a real file. Properties: loading never panics; it either
//! succeeds or fails with errors that each name `config.toml:line:col`
//! inside the input, and the same for warnings; rendering never panics; an
//! environment value (here a fake secret) never appears in a message.
//!
//! Case counts are fixed below and the seed is fixed, so CI runs the same
//! inputs every time; `PROPTEST_CASES=100000 PROPTEST_RNG_SEED=<n>` runs a
//! deeper search. Failing inputs are kept in `proptest-regressions/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{VALID, load, registry};
use autosync_config::{ConfigError, Diagnostic};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::RngSeed;
use std::path::Path;

/// `cases` unless `PROPTEST_CASES` says otherwise, a fixed seed unless
/// `PROPTEST_RNG_SEED` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0xC0_4F16);
    }
    c
}

/// The value of `SECRET_THRESHOLD` in the test environment.
const SECRET: &str = "hunter2";

/// A connector password from the environment: a secret. (Environment
/// values used elsewhere, e.g. as an attribute name, may be echoed.)
const SECRET_SETTING: &str = "password = \"${SECRET_THRESHOLD}\"";

/// Checks one diagnostic of `text` loaded as `file`.
fn check_diagnostic(d: &Diagnostic, file: &Path, text: &str) {
    assert_eq!(d.file.as_deref(), Some(file), "{d}");
    assert!(!d.message.is_empty(), "{d:?}");
    let span = d
        .span
        .unwrap_or_else(|| panic!("a diagnostic without a place: {d}"));
    assert!(
        span.offset() + span.len() <= text.len(),
        "span {span:?} beyond the {}-byte input: {d}",
        text.len()
    );
    let loc = d
        .location
        .unwrap_or_else(|| panic!("a diagnostic without line and column: {d}"));
    let line = text
        .split('\n')
        .nth(loc.line - 1)
        .unwrap_or_else(|| panic!("line {} beyond the input: {d}", loc.line));
    assert!(
        (1..=line.chars().count() + 1).contains(&loc.column),
        "column {} beyond line {} ({line:?}): {d}",
        loc.column,
        loc.line
    );
    let rendered = d.to_string();
    let prefix = format!("{}:{}:{}: ", file.display(), loc.line, loc.column);
    assert!(
        rendered.starts_with(&prefix),
        "{rendered:?} does not start with {prefix:?}"
    );
    if text.contains(SECRET_SETTING) {
        assert!(
            !rendered.contains(SECRET),
            "a secret in a message: {rendered}"
        );
    }
}

fn check_error(e: &ConfigError, file: &Path, text: &str) {
    assert!(e.errors().count() >= 1, "an error without errors");
    assert_eq!(e.path(), file);
    for d in e.diagnostics() {
        check_diagnostic(d, file, text);
    }
    let fancy = e.render_fancy(false);
    let _ = e.summary();
    if text.contains(SECRET_SETTING) {
        assert!(!fancy.contains(SECRET), "a secret in a message: {fancy}");
    }
}

/// Load `text` as `config.toml`: Ok (with located warnings) or located errors.
fn check(text: &str) {
    let file = Path::new("config.toml");
    match load(text) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                check_diagnostic(w, file, text);
            }
        }
        Err(e) => check_error(&e, file, text),
    }
}

/// Pieces of TOML and of this configuration's language.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "=",
    ",",
    ".",
    "#",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "\\",
    "\\u00e9",
    "\\uD800",
    "\\U0010FFFF",
    "é",
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
    "[store]\n",
    "[[ma]]\n",
    "[metaverse.person]\n",
    "[ma.connector]\n",
    "name = \"hr\"\n",
    "name = \"directory\"\n",
    "type = \"csv\"",
    "type = \"ldap\"",
    "ma",
    "connector",
    "object_types",
    "anchor",
    "join",
    "projection",
    "import_flows",
    "export_flows",
    "provisioning",
    "run_profiles",
    "precedence",
    "mv",
    "cs",
    "from",
    "expr",
    "expr = 'lower('",
    "expr = \"a +\"",
    "script = \"loop {}\"",
    "path = \"\"",
    "password_file = \"/nonexistent/pw\"",
    "${HR_FILE}",
    "${MISSING}",
    "${",
    "$${X}",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "inf",
    "nan",
    "-0",
    "0x10",
    "1e400",
    "99999999999999999999999",
    "-9223372036854775809",
    "true",
    "false",
    "[]",
    "{}",
    "a.b.c = 1",
    "\"a\".\"b\" = 2",
    "x = [1, \"a\"]",
    "export_deletion_threshold = -1",
];

fn token_soup() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![3 => select(TOKENS).prop_map(str::to_owned), 1 => "\\PC{0,4}"],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete {
        at: usize,
        len: usize,
    },
    Insert {
        at: usize,
        token: &'static str,
    },
    InsertText {
        at: usize,
        text: String,
    },
    DuplicateLine {
        line: usize,
    },
    SwapLines {
        a: usize,
        b: usize,
    },
    DeleteLine {
        line: usize,
    },
    Truncate {
        at: usize,
    },
    /// Replace the text of the `nth` string (`"..."` or `'...'`).
    ReplaceString {
        nth: usize,
        value: &'static str,
    },
    /// Replace the `nth` key (a word before ` =`).
    ReplaceKey {
        nth: usize,
        key: &'static str,
    },
    /// Give a connector a password from the environment.
    Secret {
        nth: usize,
    },
}

/// Values that mean something somewhere in a configuration.
const VALUES: &[&str] = &[
    "",
    " ",
    "hr",
    "directory",
    "person",
    "user",
    "employeeId",
    "employee_id",
    "mail",
    "uid",
    "csv",
    "jsonl",
    "sqlite",
    "ldap",
    "full-import",
    "delta-import",
    "delta-sync",
    "full-sync",
    "export",
    "lower(",
    "lower(email",
    "a +",
    "a + b",
    "\"x\"",
    "upper(mail)",
    "unknown_function(x)",
    "${MISSING}",
    "${HR_FILE}",
    "${",
    "data/hr.csv",
    "../../../etc/passwd",
    "/",
    "*/5 * * * *",
    "61 * * * *",
    "Europe/Nowhere",
    "1s",
    "-1",
    "\\u0000",
    "é",
    "\u{202e}",
];

/// Keys of the configuration (and near misses).
const KEYS: &[&str] = &[
    "name",
    "type",
    "path",
    "store",
    "ma",
    "connector",
    "object_types",
    "anchor",
    "dn",
    "join",
    "on",
    "cs",
    "mv",
    "projection",
    "mv_type",
    "import_flows",
    "export_flows",
    "from",
    "expr",
    "script",
    "constant",
    "provisioning",
    "run_profiles",
    "precedence",
    "attributes",
    "export_deletion_threshold",
    "staging_threshold",
    "delimiter",
    "password",
    "password_file",
    "table",
    "nme",
    "Name",
    "pth",
    "unknown",
];

/// Byte ranges of the contents of the strings of `text`, line by line.
fn strings(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut open: Option<(u8, usize)> = None;
    for (i, b) in text.bytes().enumerate() {
        match (open, b) {
            (_, b'\n') => open = None,
            (None, b'"' | b'\'') => open = Some((b, i + 1)),
            (Some((q, start)), _) if b == q => {
                out.push(start..i);
                open = None;
            }
            _ => {}
        }
    }
    out
}

/// Byte ranges of the words followed by ` =`.
fn keys(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for (i, _) in text.match_indices(" =") {
        let mut start = i;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            start -= 1;
        }
        if start < i {
            out.push(start..i);
        }
    }
    out
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        1 => (at, 1usize..20).prop_map(|(at, len)| Mutation::Delete { at, len }),
        3 => (at, select(TOKENS)).prop_map(|(at, token)| Mutation::Insert { at, token }),
        1 => (at, "\\PC{1,6}").prop_map(|(at, text)| Mutation::InsertText { at, text }),
        1 => at.prop_map(|line| Mutation::DuplicateLine { line }),
        1 => (at, any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        1 => at.prop_map(|line| Mutation::DeleteLine { line }),
        1 => at.prop_map(|at| Mutation::Truncate { at }),
        4 => (at, select(VALUES)).prop_map(|(nth, value)| Mutation::ReplaceString { nth, value }),
        3 => (at, select(KEYS)).prop_map(|(nth, key)| Mutation::ReplaceKey { nth, key }),
        1 => at.prop_map(|nth| Mutation::Secret { nth }),
    ]
}

/// A char boundary of `s` from any number.
fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(text: &mut String, m: &Mutation) {
    match m {
        Mutation::Delete { at, len } => {
            let start = boundary(text, *at);
            let end = boundary(text, (start + len).min(text.len()));
            text.replace_range(start..end.max(start), "");
        }
        Mutation::Insert { at, token } => {
            let at = boundary(text, *at);
            text.insert_str(at, token);
        }
        Mutation::InsertText { at, text: t } => {
            let at = boundary(text, *at);
            text.insert_str(at, t);
        }
        Mutation::DuplicateLine { line }
        | Mutation::DeleteLine { line }
        | Mutation::SwapLines { a: line, .. } => {
            let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
            let i = line % lines.len();
            match m {
                Mutation::DuplicateLine { .. } => lines.insert(i, lines[i].clone()),
                Mutation::DeleteLine { .. } => {
                    lines.remove(i);
                }
                Mutation::SwapLines { b, .. } => {
                    let j = b % lines.len();
                    lines.swap(i, j);
                }
                _ => {}
            }
            *text = lines.join("\n");
        }
        Mutation::Truncate { at } => {
            let at = boundary(text, *at);
            text.truncate(at);
        }
        Mutation::ReplaceString { nth, value } => {
            let all = strings(text);
            if !all.is_empty() {
                text.replace_range(all[nth % all.len()].clone(), value);
            }
        }
        Mutation::Secret { nth } => {
            let all: Vec<usize> = text
                .match_indices("connector = {")
                .map(|(i, m)| i + m.len())
                .collect();
            if !all.is_empty() {
                text.insert_str(all[nth % all.len()], &format!(" {SECRET_SETTING},"));
            }
        }
        Mutation::ReplaceKey { nth, key } => {
            let all = keys(text);
            if !all.is_empty() {
                text.replace_range(all[nth % all.len()].clone(), key);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn loading_arbitrary_text_should_not_panic_and_locate_every_error(text in "(?s).{0,300}") {
        check(&text);
    }

    #[test]
    fn loading_toml_like_token_soup_should_not_panic_and_locate_every_error(text in token_soup()) {
        check(&text);
    }

    #[test]
    fn loading_a_mutated_valid_configuration_should_not_panic_and_locate_every_error(
        mutations in vec(mutation(), 1..5),
    ) {
        let mut text = VALID.to_owned();
        for m in &mutations {
            mutate(&mut text, m);
        }
        check(&text);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Through a real file: bytes that are not UTF-8 are an error naming
    /// the file, never a panic.
    #[test]
    fn loading_a_file_of_arbitrary_bytes_should_not_panic_and_name_the_file(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..300),
            (vec(mutation(), 0..4), vec(any::<u8>(), 0..4)).prop_map(|(ms, junk)| {
                let mut text = VALID.to_owned();
                for m in &ms {
                    mutate(&mut text, m);
                }
                let mut bytes = text.into_bytes();
                let at = bytes.len() / 2;
                bytes.splice(at..at, junk);
                bytes
            }),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, &bytes).unwrap();
        match autosync_config::load(&file, &registry()) {
            Ok(_) => {}
            Err(e) => match std::str::from_utf8(&bytes) {
                Ok(text) => check_error(&e, &file, text),
                Err(_) => {
                    let msg = e.to_string();
                    prop_assert!(msg.starts_with(&format!("{}: ", file.display())), "{}", msg);
                    prop_assert!(msg.contains("cannot read the configuration file"), "{}", msg);
                }
            },
        }
    }
}

#[test]
fn the_valid_configuration_should_load() {
    check(VALID);
    assert!(load(VALID).is_ok());
}
