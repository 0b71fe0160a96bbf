//! Reads the (interpolated) document into `SystemDef`, one store, metaverse
//! type and MA at a time, so that a wrong value in one MA does not hide the
//! problems of the others. serde's messages are reworded for people and
//! located by the span the TOML deserializer reports.

use crate::diagnostic::PathSegment;
use crate::document::Problem;
use crate::suggest;
use autosync_model::{MaDef, MvTypeDef, StoreDef, SystemDef};
use serde::Deserialize;
use serde::de::IntoDeserializer;
use std::collections::BTreeSet;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// What could be read, and the names of the parts that could not (so later
/// checks do not report references to them as unknown).
#[derive(Debug, Default)]
pub struct Decoded {
    pub system: SystemDef,
    /// For each MA in `system.mas`, its index among the file's `[[ma]]`.
    pub ma_index: Vec<usize>,
    /// Names of MAs present in the file that could not be read.
    pub failed_mas: BTreeSet<String>,
    /// Metaverse types present in the file that could not be read.
    pub failed_mv_types: BTreeSet<String>,
    pub problems: Vec<Problem>,
}

impl Decoded {
    /// Whether everything was read.
    pub fn complete(&self) -> bool {
        self.failed_mas.is_empty() && self.failed_mv_types.is_empty() && self.problems.is_empty()
    }
}

/// Reads every part of the document; `text` is the file (to reword errors
/// about interpolated values without showing them).
pub fn decode(root: &Spanned<DeTable<'_>>, text: &str) -> Decoded {
    let mut out = Decoded::default();
    let table = root.get_ref();
    if let Some(store) = table.get("store") {
        match read::<StoreDef>(store, root, text) {
            Ok(s) => out.system.store = s,
            Err(p) => out.problems.push(p),
        }
    }
    if let Some(metaverse) = table.get("metaverse") {
        match metaverse.get_ref() {
            DeValue::Table(types) => {
                for (name, value) in types.iter() {
                    match read::<MvTypeDef>(value, root, text) {
                        Ok(t) => {
                            out.system.metaverse.insert(name.get_ref().to_string(), t);
                        }
                        Err(p) => {
                            out.failed_mv_types.insert(name.get_ref().to_string());
                            out.problems.push(p);
                        }
                    }
                }
            }
            _ => out.problems.push(
                Problem::error(
                    vec![PathSegment::key("metaverse")],
                    metaverse.span(),
                    "`metaverse` must be a table of object types",
                )
                .help("write `[metaverse.person]` with `attributes = [...]`"),
            ),
        }
    }
    if let Some(mas) = table.get("ma") {
        match mas.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match read::<MaDef>(item, root, text) {
                        Ok(ma) => {
                            out.system.mas.push(ma);
                            out.ma_index.push(i);
                        }
                        Err(p) => {
                            if let Some(name) = item
                                .get_ref()
                                .get("name")
                                .and_then(|n| n.get_ref().as_str())
                            {
                                out.failed_mas.insert(name.to_owned());
                            }
                            out.problems.push(p);
                        }
                    }
                }
            }
            _ => out.problems.push(
                Problem::error(
                    vec![PathSegment::key("ma")],
                    mas.span(),
                    "`ma` must be a list of management agents",
                )
                .help("write each management agent as a `[[ma]]` table"),
            ),
        }
    }
    if let Some(controller) = table.get("controller") {
        match read::<serde_json::Value>(controller, root, text) {
            Ok(c) => out.system.controller = Some(c),
            Err(p) => out.problems.push(p),
        }
    }
    out
}

fn read<T: for<'de> Deserialize<'de>>(
    value: &Spanned<DeValue<'_>>,
    root: &Spanned<DeTable<'_>>,
    text: &str,
) -> Result<T, Problem> {
    T::deserialize(value.clone().into_deserializer()).map_err(|e| {
        let span = e.span().unwrap_or_else(|| value.span());
        let path = path_of_span(root, &span);
        let (message, help) = reword(e.message(), text.get(span.clone()).unwrap_or(""), &path);
        let problem = Problem::error(path, span, message);
        match help {
            Some(h) => problem.help(h),
            None => problem,
        }
    })
}

/// A person's version of serde's message, and a suggestion.
fn reword(message: &str, raw: &str, path: &[PathSegment]) -> (String, Option<String>) {
    if let Some(field) = between(message, "missing field `", "`") {
        return (
            format!("missing key `{field}`"),
            Some(format!("add `{field} = ...` to this table")),
        );
    }
    if let Some(variant) = between(message, "unknown variant `", "`") {
        let expected = backticked_list(message.split_once("expected").map_or("", |(_, e)| e));
        let valid: Vec<&str> = expected.iter().map(String::as_str).collect();
        return (
            format!("unknown value `{variant}`"),
            Some(suggest::hint(variant, &valid)),
        );
    }
    if let Some(field) = between(message, "unknown field `", "`") {
        let expected = backticked_list(message.split_once("expected").map_or("", |(_, e)| e));
        let valid: Vec<&str> = expected.iter().map(String::as_str).collect();
        return (
            format!("unknown key `{field}`"),
            Some(suggest::hint(field, &valid)),
        );
    }
    if message.contains("untagged enum PrecedenceDef") {
        return (
            "precedence must be \"equal\" or a list of MA names".into(),
            Some(
                "e.g. `email = [\"directory\", \"hr\"]` (highest first) or `email = \"equal\"`"
                    .into(),
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let rest = if raw.contains("${") {
            // The value came from the environment: say so, do not show it.
            match rest.split_once(", expected") {
                Some((_, expected)) => format!("an interpolated value, expected{expected}"),
                None => "an interpolated value".to_owned(),
            }
        } else {
            rest.to_owned()
        };
        let help = match path.last() {
            Some(PathSegment::Key(k)) => Some(format!("check the value of `{k}`")),
            _ => None,
        };
        return (format!("wrong type of value: found {rest}"), help);
    }
    (message.to_owned(), None)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn backticked_list(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The deepest key path whose key or value contains `span`.
pub fn path_of_span(root: &Spanned<DeTable<'_>>, span: &Range<usize>) -> Vec<PathSegment> {
    let mut path = Vec::new();
    let mut current: &DeValue<'_> = &DeValue::Boolean(false);
    let mut table = Some(root.get_ref());
    loop {
        let children: Vec<(
            PathSegment,
            Range<usize>,
            Option<Range<usize>>,
            &DeValue<'_>,
        )> = match (table, current) {
            (Some(t), _) | (None, DeValue::Table(t)) => t
                .iter()
                .map(|(k, v)| {
                    (
                        PathSegment::key(k.get_ref().as_ref()),
                        v.span(),
                        Some(k.span()),
                        v.get_ref(),
                    )
                })
                .collect(),
            (None, DeValue::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (PathSegment::Index(i), v.span(), None, v.get_ref()))
                .collect(),
            _ => return path,
        };
        let inside = |r: &Range<usize>| r.start <= span.start && span.end <= r.end && r != &(0..0);
        let next = children
            .into_iter()
            .find(|(_, v, k, _)| inside(v) || k.as_ref().is_some_and(inside));
        match next {
            Some((segment, _, _, value)) => {
                path.push(segment);
                current = value;
                table = None;
            }
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reword_should_suggest_the_closest_variant() {
        let (message, help) = reword(
            "unknown variant `delet`, expected one of `delete`, `disconnect`, `explicit-disconnector`",
            "\"delet\"",
            &[],
        );
        assert_eq!(message, "unknown value `delet`");
        assert_eq!(help.as_deref(), Some("did you mean `delete`?"));
    }

    #[test]
    fn reword_should_not_show_an_interpolated_value() {
        let (message, _) = reword(
            "invalid type: string \"s3cret\", expected u64",
            "\"${THRESHOLD}\"",
            &[],
        );
        assert!(!message.contains("s3cret"), "{message}");
    }
}
