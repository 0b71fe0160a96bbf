//! Write-only and sealed attributes of an MA: a password policy that can
//! make a password, object types that exist, a flow for `on_change`, and
//! sealed attributes that are read by something.

use super::{Checker, key_path};
use autosync_model::MaDef;
use autosync_model::suggest;

pub fn check_write_only(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    let types: Vec<&str> = ma.object_types.iter().map(|t| t.name.as_str()).collect();
    for (attr, def) in &ma.write_only {
        if let Some(p) = &def.generate
            && let Some(problem) = p.problem()
        {
            c.error(
                key_path!["ma", i, "write_only", attr.as_str(), "generate"],
                format!("the password policy of write-only attribute `{attr}` cannot make a password: {problem}"),
                "e.g. `generate = { length = 20 }` (lower and upper case letters and digits)".to_owned(),
            );
        }
        for (k, t) in def.object_types.iter().enumerate() {
            if !types.contains(&t.as_str()) {
                c.error(
                    key_path!["ma", i, "write_only", attr.as_str(), "object_types", k],
                    format!("`{}` has no object type `{t}`", ma.name),
                    suggest::hint(t, &types),
                );
            }
        }
        if !def.object_types.is_empty() && def.generate.is_none() {
            c.warning(
                key_path!["ma", i, "write_only", attr.as_str(), "object_types"],
                format!("`object_types` of write-only attribute `{attr}` says which types `generate` is for, and there is no `generate`"),
                None::<String>,
            );
        }
        let flowed = ma
            .export_flows
            .iter()
            .any(|f| f.cs.eq_ignore_ascii_case(attr));
        if def.on_change && !flowed {
            c.warning(
                key_path!["ma", i, "write_only", attr.as_str(), "on_change"],
                format!("write-only attribute `{attr}` has no export flow, so `on_change` has nothing to follow"),
                Some(format!("add an export flow with `cs = \"{attr}\"`")),
            );
        }
        if !flowed && def.generate.is_none() {
            c.warning(
                key_path!["ma", i, "write_only", attr.as_str()],
                format!("write-only attribute `{attr}` has no export flow and no `generate`: it is never set"),
                None::<String>,
            );
        }
    }
    for (k, attr) in ma.sealed.iter().enumerate() {
        if ma.write_only.keys().any(|w| w.eq_ignore_ascii_case(attr)) {
            c.error(
                key_path!["ma", i, "sealed", k],
                format!("`{attr}` is both sealed and write-only"),
                "a sealed attribute is one this MA reads (a source's passwords); a write-only one it only writes".to_owned(),
            );
        }
        let read = ma
            .import_flows
            .iter()
            .any(|f| f.from.as_deref() == Some(attr));
        if !read {
            c.warning(
                key_path!["ma", i, "sealed", k],
                format!("no import flow copies sealed attribute `{attr}` (`from = \"{attr}\"`): its values are staged and never used"),
                None::<String>,
            );
        }
    }
}
