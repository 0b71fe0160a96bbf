//! Checks of the metaverse schema against the MAs: attributes declared once,
//! precedence naming real attributes and MAs that flow into them, ordered
//! attributes naming real attributes, deletion rules naming real MAs, equal-precedence flow loops, and attributes that
//! nothing flows into.

use super::{Checker, key_path};
use autosync_model::suggest;
use autosync_model::{DeletionRule, MaDef, PrecedenceDef, SystemDef};

pub fn check_metaverse(c: &mut Checker<'_, '_>) {
    let system = c.system().clone();
    let has_rules = system.mas.iter().any(|m| {
        !m.join.is_empty()
            || !m.projection.is_empty()
            || !m.import_flows.is_empty()
            || !m.export_flows.is_empty()
            || !m.provisioning.is_empty()
    });
    if system.metaverse.is_empty() && c.decoded.failed_mv_types.is_empty() && has_rules {
        c.error(
            key_path!["metaverse"],
            "the MAs have rules but the metaverse has no object type",
            "declare one, e.g. `[metaverse.person]` with `attributes = [\"employeeId\", \"displayName\"]`".to_owned(),
        );
    }
    for (t, def) in &system.metaverse {
        let mut seen: Vec<&str> = Vec::new();
        for (k, attribute) in def.attributes.iter().enumerate() {
            let at = key_path!["metaverse", t.as_str(), "attributes", k];
            if attribute.is_empty() {
                c.error(at, "an attribute name is empty", None);
            } else if seen.contains(&attribute.as_str()) {
                c.error(
                    at,
                    format!("attribute `{attribute}` is listed twice"),
                    "list each attribute once".to_owned(),
                );
            }
            seen.push(attribute);
        }
        for (attribute, precedence) in &def.precedence {
            let at = key_path!["metaverse", t.as_str(), "precedence", attribute.as_str()];
            if !def.attributes.contains(attribute) {
                let span = c.key_span(&at);
                c.push(
                    at,
                    span,
                    format!(
                        "precedence is given for `{attribute}`, which is not an attribute of `{t}`"
                    ),
                    Some(suggest::hint(attribute, &seen)),
                    false,
                );
                continue;
            }
            let PrecedenceDef::Ranked(mas) = precedence else {
                continue;
            };
            for (k, name) in mas.iter().enumerate() {
                let at = key_path!["metaverse", t.as_str(), "precedence", attribute.as_str(), k];
                if !c.ma_exists(name) {
                    let names: Vec<&str> = system.mas.iter().map(|m| m.name.as_str()).collect();
                    c.error(
                        at,
                        format!("there is no MA named `{name}`"),
                        suggest::hint(name, &names),
                    );
                } else if let Some(ma) = system.ma(name)
                    && !imports_into(&system, ma, t, attribute)
                {
                    c.warning(
                        at,
                        format!("MA `{name}` is ranked for `{attribute}` but has no import flow into it"),
                        format!("add an import flow with `mv = \"{attribute}\"` to MA `{name}`, or remove it from this list"),
                    );
                }
            }
        }
        if let DeletionRule::Script { script } = &def.deletion {
            let at = key_path!["metaverse", t.as_str(), "deletion", "script"];
            let vars = autosync_model::script_variables::MV_DELETION;
            if let Some(program) = super::exprs::check_rule_script(c, at.clone(), script, vars) {
                let what = "the deletion script";
                let names = program.attributes();
                super::mv_reads::check_mv_reads_of(c, Some(t), &at, what, names, true, script);
            }
        }
        let mut ordered: Vec<&str> = Vec::new();
        for (k, attribute) in def.ordered.iter().enumerate() {
            let at = key_path!["metaverse", t.as_str(), "ordered", k];
            if !def.attributes.contains(attribute) {
                c.error(
                    at,
                    format!("`{attribute}` is declared ordered but is not an attribute of `{t}`"),
                    suggest::hint(attribute, &seen),
                );
            } else if ordered.contains(&attribute.as_str()) {
                c.error(
                    at,
                    format!("`{attribute}` is listed twice in `ordered`"),
                    "list each attribute once".to_owned(),
                );
            }
            ordered.push(attribute);
        }
        if let DeletionRule::AnyConnectorFrom { mas } = &def.deletion
            && mas.is_empty()
        {
            c.error(
                key_path!["metaverse", t.as_str(), "deletion", "mas"],
                "rule `any-connector-from` needs `mas`: the MAs whose connector leaving deletes the object",
                "e.g. `deletion = { rule = \"any-connector-from\", mas = [\"hr\"] }`".to_owned(),
            );
        }
        // `mas` where the rule reads none: written, it says something the
        // rule does not do (a MIM admin reads `last-connector` with `mas`
        // as "the last of these"): refused; an empty list with the
        // default rule means the default, said (a black-box review).
        let mas_at = key_path!["metaverse", t.as_str(), "deletion", "mas"];
        let mas_written = crate::document::lookup(c.root, &mas_at).is_some();
        match &def.deletion {
            DeletionRule::LastConnector | DeletionRule::Never | DeletionRule::Script { .. }
                if mas_written =>
            {
                let rule = match &def.deletion {
                    DeletionRule::LastConnector => "last-connector",
                    DeletionRule::Never => "never",
                    _ => "script",
                };
                c.error(
                    mas_at.clone(),
                    format!("rule `{rule}` reads no `mas`: the listed MAs would change nothing"),
                    "remove `mas`, or use `rule = \"any-connector-from\"` (delete when a connector from any listed MA goes) or `\"last-authoritative-connector\"` (when the last of theirs goes)".to_owned(),
                );
            }
            DeletionRule::LastAuthoritativeConnector { mas } if mas_written && mas.is_empty() => {
                c.warning(
                    mas_at.clone(),
                    "`mas` is empty: the MAs that project this type are the authoritative ones, as without `mas`",
                    "list the authoritative MAs, or remove `mas`".to_owned(),
                );
            }
            _ => {}
        }
        if let DeletionRule::LastAuthoritativeConnector { mas }
        | DeletionRule::AnyConnectorFrom { mas } = &def.deletion
        {
            for (k, name) in mas.iter().enumerate() {
                if !c.ma_exists(name) {
                    let names: Vec<&str> = system.mas.iter().map(|m| m.name.as_str()).collect();
                    c.error(
                        key_path!["metaverse", t.as_str(), "deletion", "mas", k],
                        format!("there is no MA named `{name}`"),
                        suggest::hint(name, &names),
                    );
                }
            }
        }
        if c.decoded.complete() {
            for attribute in &def.attributes {
                let fed = system
                    .mas
                    .iter()
                    .any(|m| imports_into(&system, m, t, attribute));
                if !fed && !attribute.is_empty() {
                    let k = def
                        .attributes
                        .iter()
                        .position(|a| a == attribute)
                        .unwrap_or(0);
                    c.warning(
                        key_path!["metaverse", t.as_str(), "attributes", k],
                        format!("nothing flows into `{attribute}`: no MA has an import flow with `mv = \"{attribute}\"`"),
                        "add an import flow, or remove the attribute".to_owned(),
                    );
                }
            }
        }
    }
    check_flow_loops(c, &system);
}

/// The metaverse type a rule applies to: the one named, or the only one.
pub(super) fn rule_mv_type<'a>(
    system: &'a SystemDef,
    given: &'a Option<String>,
) -> Option<&'a str> {
    match given {
        Some(t) => Some(t),
        None if system.metaverse.len() == 1 => system.metaverse.keys().next().map(String::as_str),
        None => None,
    }
}

/// The CS object type a rule applies to: the one named, or the MA's only one.
pub(super) fn rule_object_type<'a>(ma: &'a MaDef, given: &'a Option<String>) -> Option<&'a str> {
    match given {
        Some(t) => Some(t),
        None if ma.object_types.len() == 1 => ma.object_types.first().map(|t| t.name.as_str()),
        None => None,
    }
}

fn imports_into(system: &SystemDef, ma: &MaDef, mv_type: &str, attribute: &str) -> bool {
    ma.import_flows
        .iter()
        .any(|f| f.mv == attribute && rule_mv_type(system, &f.mv_type) == Some(mv_type))
}

/// An MA that copies CS attribute `a` into MV attribute `x` and copies `x`
/// back into `a`, where `x` has equal precedence, loops: with "last writer
/// wins", its own export comes back on the next import as a new write.
fn check_flow_loops(c: &mut Checker<'_, '_>, system: &SystemDef) {
    for (k, ma) in system.mas.iter().enumerate() {
        let i = c.decoded.ma_index.get(k).copied().unwrap_or(k);
        for (e, export) in ma.export_flows.iter().enumerate() {
            let (Some(x), None, None, None) =
                (&export.from, &export.constant, &export.expr, &export.script)
            else {
                continue;
            };
            let Some(t) = rule_mv_type(system, &export.mv_type) else {
                continue;
            };
            let equal = system
                .metaverse
                .get(t)
                .and_then(|d| d.precedence.get(x))
                .is_some_and(|p| matches!(p, PrecedenceDef::Equal(_)));
            if !equal {
                continue;
            }
            let ot = rule_object_type(ma, &export.object_type);
            let looped = ma.import_flows.iter().any(|f| {
                f.mv == *x
                    && f.from.as_deref() == Some(export.cs.as_str())
                    && f.constant.is_none()
                    && f.expr.is_none()
                    && f.script.is_none()
                    && rule_mv_type(system, &f.mv_type) == Some(t)
                    && rule_object_type(ma, &f.object_type) == ot
            });
            if looped {
                let cs = &export.cs;
                c.error(
                    key_path!["ma", i, "export_flows", e],
                    format!(
                        "flow loop: MA `{}` imports `{cs}` into `{x}` and exports `{x}` back to `{cs}`, and `{x}` has equal precedence; every change would be exported, re-imported as a new write and exported again",
                        ma.name
                    ),
                    format!("give `{x}` a ranked precedence in [metaverse.{t}].precedence, or remove one of the two flows"),
                );
            }
        }
    }
}
