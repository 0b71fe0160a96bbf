//! What is wrong with an MA's `object_classes`: a type the MA does not
//! have, a type without classes, a type left out when the MA has several,
//! and two types with the same classes. The import types an entry by its
//! classes alone, so two types with the same set (as LDAP compares them:
//! ignoring case and repeats) cannot be told apart: an entry added as one
//! reads back as the other, and the next sync disconnects it, for ever
//! and silently (a review: `pgroup` groups read as `group`).

use super::{OneOrMany, valid_attribute};
use autosync_connector::BuildContext;
use autosync_model::suggest;
use std::collections::{BTreeMap, BTreeSet};

/// The problems of `table` (the MA's `object_classes`), each a message
/// at key `object_classes`.
pub fn problems(table: &BTreeMap<String, OneOrMany>, ctx: &BuildContext) -> Vec<String> {
    let mut out = Vec::new();
    let names: Vec<&str> = ctx.object_types.iter().map(|t| t.name.as_str()).collect();
    for (t, classes) in table {
        if !names.contains(&t.as_str()) {
            out.push(format!(
                "`{t}` is not an object type of MA `{}`{}",
                ctx.ma,
                suggest::did_you_mean(t, names.iter().copied())
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
        let values = classes.values();
        if values.is_empty() || values.iter().any(|c| !valid_attribute(c)) {
            out.push(format!(
                "`object_classes.{t}` must name one or more object classes"
            ));
        }
    }
    if ctx.object_types.len() > 1 {
        for t in ctx
            .object_types
            .iter()
            .filter(|t| !table.contains_key(&t.name))
        {
            out.push(format!(
                "MA `{}` has several object types: say the object class of `{}`, e.g. object_classes = {{ {} = \"inetOrgPerson\" }}",
                ctx.ma, t.name, t.name
            ));
        }
    }
    out.extend(same_classes(table, &ctx.ma));
    out
}

/// One message for each type whose classes are those of a type before it
/// (the table's order), naming both.
fn same_classes(table: &BTreeMap<String, OneOrMany>, ma: &str) -> Vec<String> {
    let mut seen: Vec<(&str, BTreeSet<String>)> = Vec::new();
    let mut out = Vec::new();
    for (t, classes) in table {
        let values = classes.values();
        let set: BTreeSet<String> = values.iter().map(|c| c.to_ascii_lowercase()).collect();
        if set.is_empty() {
            continue;
        }
        match seen.iter().find(|(_, s)| *s == set) {
            Some((first, _)) => out.push(format!(
                "object types `{first}` and `{t}` of MA `{ma}` have the same classes ({}): an entry read from the directory cannot be told to be one or the other; give one of them a class the other has not{}",
                values.join(", "),
                with_another(&values)
                    .map(|e| format!(" (e.g. {t} = {e})"))
                    .unwrap_or_default()
            )),
            None => seen.push((t, set)),
        }
    }
    out
}

/// `classes` with `extensibleObject` added, as the configuration writes
/// a list (the example of a set that differs), unless they have it.
fn with_another(classes: &[String]) -> Option<String> {
    const EXTRA: &str = "extensibleObject";
    if classes.iter().any(|c| c.eq_ignore_ascii_case(EXTRA)) {
        return None;
    }
    let all: Vec<String> = classes
        .iter()
        .map(String::as_str)
        .chain([EXTRA])
        .map(|c| format!("\"{c}\""))
        .collect();
    Some(format!("[{}]", all.join(", ")))
}
