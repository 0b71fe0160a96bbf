//! Reads the (interpolated) document into `SystemDef`, one store, metaverse
//! type and MA at a time, so that a wrong value in one MA does not hide the
//! problems of the others. serde's messages are reworded for people and
//! located by the span the TOML deserializer reports.

use crate::diagnostic::PathSegment;
use crate::document::Problem;
use autosync_model::suggest;
use autosync_model::{
    CsReferenceSpec, MaDef, MvTypeDef, RefBy, StagingThresholds, StoreDef, SystemDef,
};
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
                    match read::<MaDef>(item, root, text)
                        .and_then(|ma| staging_thresholds_of_controller(ma, item, root, text))
                    {
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

/// `[ma.controller] staging_thresholds`, where staging thresholds were
/// set before the engine enforced them, still sets the MA's thresholds
/// (`[[ma]] staging_thresholds`); both at once is an error.
fn staging_thresholds_of_controller(
    mut ma: MaDef,
    item: &Spanned<DeValue<'_>>,
    root: &Spanned<DeTable<'_>>,
    text: &str,
) -> Result<MaDef, Problem> {
    let Some(old) = item
        .get_ref()
        .get("controller")
        .and_then(|c| c.get_ref().get("staging_thresholds"))
    else {
        return Ok(ma);
    };
    if item.get_ref().get("staging_thresholds").is_some() {
        let path = path_of_span(root, &old.span());
        return Err(Problem::error(
            path,
            old.span(),
            "staging thresholds are set twice: under `[[ma]]` and under `[ma.controller]`",
        )
        .help("keep `staging_thresholds` under `[[ma]]` only"));
    }
    ma.staging_thresholds = read::<StagingThresholds>(old, root, text)?;
    if let Some(serde_json::Value::Object(c)) = &mut ma.controller {
        c.remove("staging_thresholds");
    }
    Ok(ma)
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
    if message.contains("untagged enum CsReferenceDef") {
        return reword_reference(raw, path);
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
        return (
            format!("wrong type of value: found {}", plain_types(&rest)),
            help,
        );
    }
    if raw.contains("${") {
        // The value came from the environment or a file: say so, and do
        // not show it (serde's message may quote it).
        return (
            "an interpolated value that is not valid here".to_owned(),
            Some(format!(
                "check the variable or file it comes from; expected: {}",
                message.split_once(": ").map_or(message, |(_, rest)| rest)
            )),
        );
    }
    (message.to_owned(), None)
}

/// A reference declaration (`object_types[i].references.<attribute>`) that
/// is neither form: what is wrong with the form it was written in (a
/// string: `"anchor"` or `"dn"`; a table: `by`, `object_type`, `ma`).
fn reword_reference(raw: &str, path: &[PathSegment]) -> (String, Option<String>) {
    let generic = || {
        (
            "a reference is `\"anchor\"`, `\"dn\"` or a table `{ by, object_type, ma }`".to_owned(),
            Some(
                "e.g. `manager_id = \"anchor\"` or `member_ids = { by = \"anchor\", object_type = \"person\", ma = \"hr\" }` (`by` is \"anchor\" or \"dn\"; `object_type` and `ma` are optional)"
                    .to_owned(),
            ),
        )
    };
    if raw.contains("${") {
        return generic();
    }
    let Ok(mut parsed) = format!("r = {raw}").parse::<toml::Table>() else {
        return generic();
    };
    let error = match parsed.remove("r") {
        Some(v @ toml::Value::String(_)) => RefBy::deserialize(v).err(),
        Some(v @ toml::Value::Table(_)) => CsReferenceSpec::deserialize(v).err(),
        _ => None,
    };
    match error {
        Some(e) if !e.message().contains("untagged enum") => {
            let (message, help) = reword(e.message(), raw, path);
            (format!("in this reference: {message}"), help)
        }
        _ => generic(),
    }
}

/// serde's type names in words.
fn plain_types(text: &str) -> String {
    let mut out = text.to_owned();
    for (from, to) in [
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected i64", "expected a whole number"),
        ("expected a sequence", "expected an array `[...]`"),
        ("expected a map", "expected a table"),
        ("expected a boolean", "expected `true` or `false`"),
        ("found sequence", "found an array"),
        ("found map", "found a table"),
    ] {
        out = out.replace(from, to);
    }
    if let Some(i) = out.find("expected struct ") {
        out.replace_range(i.., "expected a table");
    }
    out
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

/// The deepest key path whose key or value contains `span`. Tables written
/// as `[header]` or `[[array]]` sections have spans that do not cover their
/// contents, so every branch is searched.
pub fn path_of_span(root: &Spanned<DeTable<'_>>, span: &Range<usize>) -> Vec<PathSegment> {
    let mut path = Vec::new();
    search_table(root.get_ref(), span, &mut path);
    path
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.end > outer.start
}

fn search_table(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<PathSegment>) -> bool {
    for (key, value) in table.iter() {
        path.push(PathSegment::key(key.get_ref().as_ref()));
        if search_value(value, span, path) || covers(&key.span(), span) {
            return true;
        }
        path.pop();
    }
    false
}

fn search_value(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    path: &mut Vec<PathSegment>,
) -> bool {
    let found_inside = match value.get_ref() {
        DeValue::Table(t) => search_table(t, span, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(PathSegment::Index(i));
            let found = search_value(item, span, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    };
    found_inside || covers(&value.span(), span)
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
