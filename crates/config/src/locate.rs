//! Where the store is, read from a configuration file that may not load.
//!
//! `autosync status`, the operators' controls and `autosync history` talk
//! to the running service (whose API file sits next to the store) and to
//! the store: they need the `[store]` table only, and keep working while
//! the rest of the file is half-edited. [`locate_store`] reads that table
//! alone, from a document parsed with recovery, and answers only when the
//! table is certainly what the file means: no syntax error inside it, its
//! values valid. Anything less is `None` (the caller then reports the
//! configuration's errors as usual).

use crate::base_dir_of;
use crate::interpolate::interpolate;
use autosync_model::def::StoreDef;
use serde::Deserialize as _;
use serde::de::IntoDeserializer as _;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// The store the configuration file at `path` names, with its path made
/// absolute as [`crate::load`] would (relative to the file's folder,
/// `${ENV}` substituted from the process environment); the default store
/// when the file names none. `None` when the file cannot be read or its
/// store cannot be told for sure: a syntax error in the `[store]` table
/// (or one that hides it), an invalid value there.
pub fn locate_store(path: &Path) -> Option<StoreDef> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut store = store_in(&text, &|name| std::env::var(name).ok())?;
    if store.path.is_relative() {
        store.path = base_dir_of(path).join(&store.path);
    }
    Some(store)
}

/// The `[store]` table of `text` (its path as written), when it can be
/// told for sure.
fn store_in(text: &str, env: crate::EnvLookup<'_>) -> Option<StoreDef> {
    let (root, errors) = DeTable::parse_recoverable(text);
    let sections = store_sections(text);
    let broken = errors.iter().any(|e| {
        let at = e.span().map_or(text.len(), |s| s.start);
        sections.iter().any(|s| s.contains(&at) || s.end == at)
    });
    if broken {
        return None;
    }
    let Some(value) = root.get_ref().get("store") else {
        // Written but not found: an error above hides it.
        return sections.is_empty().then(StoreDef::default);
    };
    if !matches!(value.get_ref(), DeValue::Table(_)) {
        return None;
    }
    let mut store = StoreDef::deserialize(value.clone().into_deserializer()).ok()?;
    let written = store.path.to_str()?;
    if written.contains('$') {
        store.path = interpolate(written, env).ok()?.into();
    }
    (crate::STORE_KINDS.contains(&store.kind.as_str()) && !store.path.as_os_str().is_empty())
        .then_some(store)
}

/// The byte ranges of `text` that write the store: the `[store]` table
/// (header to the next header) and top-level `store = ...` or
/// `store.path = ...` lines (before the first header).
fn store_sections(text: &str) -> Vec<Range<usize>> {
    let mut sections: Vec<Range<usize>> = Vec::new();
    let mut in_store = false;
    let mut seen_header = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            seen_header = true;
            let name = trimmed.trim_start_matches('[').trim_start();
            in_store = name.strip_prefix("store").is_some_and(|rest| {
                rest.trim_start().starts_with(']') || rest.trim_start().starts_with('.')
            });
            if in_store {
                sections.push(start..offset);
            }
            continue;
        }
        let top_level_store = !seen_header
            && trimmed.strip_prefix("store").is_some_and(|rest| {
                let rest = rest.trim_start();
                rest.starts_with('=') || rest.starts_with('.')
            });
        if top_level_store {
            sections.push(start..offset);
        } else if in_store && let Some(last) = sections.last_mut() {
            last.end = offset;
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn store(text: &str) -> Option<PathBuf> {
        store_in(text, &|name| {
            (name == "STATE").then(|| "/srv/state".to_owned())
        })
        .map(|s| s.path)
    }

    #[test]
    fn a_valid_store_table_should_be_read() {
        assert_eq!(
            store("[store]\npath = \"state/a.db\"\n[[ma]]\nname = \"hr\"\n"),
            Some("state/a.db".into())
        );
    }

    #[test]
    fn a_syntax_error_elsewhere_should_not_hide_the_store() {
        let text = "[store]\npath = \"state/a.db\"\n\n[[ma]]\nname = \"hr\nconnector = { type = \n";
        assert_eq!(store(text), Some("state/a.db".into()));
        let before = "[metaverse.person]\nattributes = [\"a\", \n[store]\npath = 'b.db'\n";
        // The unclosed array above may swallow the header: the store is
        // then unknown, never another one.
        assert!(store(before).is_none_or(|p| p == Path::new("b.db")));
        // An unclosed multi-line string holds the header: never the default.
        assert_eq!(store("x = \"\"\"\n[store]\npath = 'b.db'\n"), None);
    }

    #[test]
    fn a_syntax_error_in_the_store_table_should_give_nothing() {
        assert_eq!(store("[store]\npath = \"state/a.db\n[[ma]]\n"), None);
        assert_eq!(store("[store]\npath = \n"), None);
        assert_eq!(store("[store]\npath = 3\n"), None);
    }

    #[test]
    fn a_file_without_store_should_give_the_default() {
        assert_eq!(
            store("[[ma]]\nname = \"hr\nbroken"),
            Some("autosync.db".into())
        );
    }

    #[test]
    fn a_dotted_or_inline_store_should_be_read() {
        assert_eq!(store("store.path = \"x.db\"\n[[ma]\n"), Some("x.db".into()));
        assert_eq!(
            store("store = { path = \"y.db\" }\n[[ma]\n"),
            Some("y.db".into())
        );
    }

    #[test]
    fn an_environment_reference_should_be_substituted() {
        assert_eq!(
            store("[store]\npath = \"${STATE}/a.db\"\n[[ma\n"),
            Some("/srv/state/a.db".into())
        );
        assert_eq!(store("[store]\npath = \"${NOT_SET}/a.db\"\n"), None);
    }
}
