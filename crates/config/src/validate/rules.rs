//! Checks of one MA's rules: filters, join rules, projection, import and
//! export flows, provisioning. Each rule's `object_type` and `mv_type` must
//! exist (and may be left out only when there is one to choose from); every
//! metaverse attribute a rule names or reads must be declared; expressions
//! compile.

use super::exprs::{FlowSources, check_expr, check_flow_source, check_rule_script, check_script};
use super::mv_reads::{check_mv_reads, check_mv_reads_of};
use super::{Checker, key_path};
use crate::diagnostic::PathSegment;
use autosync_model::suggest;
use autosync_model::{MaDef, script_variables};

pub fn check_rules(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    for (r, filter) in ma.filters.iter().enumerate() {
        let rule = key_path!["ma", i, "filters", r];
        object_type(c, ma, &rule, &filter.object_type);
        match (&filter.condition, &filter.script) {
            (Some(condition), None) => {
                check_expr(c, with(&rule, "condition"), condition);
            }
            (None, Some(script)) => {
                check_script(c, with(&rule, "script"), script, false);
            }
            (Some(_), Some(_)) => c.error(
                with(&rule, "script"),
                "this filter has both `condition` and `script`",
                "keep one: `condition` is an expression, `script` a Rhai script; either is true for the objects to filter out".to_owned(),
            ),
            (None, None) => c.error(
                rule.clone(),
                "this filter has neither `condition` nor `script`",
                "add `condition = \"...\"`, an expression that is true for the objects to filter out (or `script = '...'`)".to_owned(),
            ),
        }
    }
    for (r, join) in ma.join.iter().enumerate() {
        let rule = key_path!["ma", i, "join", r];
        object_type(c, ma, &rule, &join.object_type);
        let mv_type = mv_type(c, &rule, &join.mv_type);
        if join.on.is_empty() {
            c.error(
                with(&rule, "on"),
                "a join rule needs at least one condition in `on`",
                "e.g. `on = [{ cs = \"employee_id\", mv = \"employeeId\" }]`".to_owned(),
            );
        }
        for (k, cond) in join.on.iter().enumerate() {
            let at = key_path!["ma", i, "join", r, "on", k];
            let given: Vec<&str> = [
                ("cs", cond.cs.is_some()),
                ("expr", cond.expr.is_some()),
                ("script", cond.script.is_some()),
            ]
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| k)
            .collect();
            match (given.as_slice(), &cond.cs, &cond.expr, &cond.script) {
                ([_, second, ..], ..) => c.error(
                    with(&at, second),
                    format!("this join condition has both `{}` and `{second}`", given[0]),
                    "keep one: `cs` names a CS attribute, `expr` (an expression) or `script` computes a value from CS attributes".to_owned(),
                ),
                ([], ..) => c.error(
                    at.clone(),
                    "this join condition has neither `cs` nor `expr`",
                    "add `cs = \"attribute\"` or `expr = \"...\"` to say what to match".to_owned(),
                ),
                (_, Some(cs), ..) if cs.is_empty() => {
                    c.error(with(&at, "cs"), "`cs` is empty: name the CS attribute to match", None)
                }
                (_, _, Some(expr), _) => {
                    check_expr(c, with(&at, "expr"), expr);
                }
                (_, _, _, Some(script)) => {
                    check_script(c, with(&at, "script"), script, false);
                }
                _ => {}
            }
            join_mv(c, mv_type.as_deref(), &at, cond);
        }
        if let Some(resolve) = &join.resolve {
            check_rule_script(
                c,
                with(&rule, "resolve"),
                resolve,
                script_variables::JOIN_RESOLVE,
            );
        }
    }
    for (r, projection) in ma.projection.iter().enumerate() {
        let rule = key_path!["ma", i, "projection", r];
        object_type(c, ma, &rule, &projection.object_type);
        // A script may name the type itself.
        if projection.script.is_none() || projection.mv_type.is_some() {
            mv_type(c, &rule, &projection.mv_type);
        }
        match (&projection.condition, &projection.script) {
            (Some(_), Some(_)) => c.error(
                with(&rule, "script"),
                "this projection rule has both `condition` and `script`",
                "keep one: a `script` decides on its own (and may name the metaverse type)"
                    .to_owned(),
            ),
            (Some(condition), None) => {
                check_expr(c, with(&rule, "condition"), condition);
            }
            (None, Some(script)) => {
                check_script(c, with(&rule, "script"), script, false);
            }
            (None, None) => {}
        }
    }
    for (r, flow) in ma.import_flows.iter().enumerate() {
        let rule = key_path!["ma", i, "import_flows", r];
        object_type(c, ma, &rule, &flow.object_type);
        let mv_type = mv_type(c, &rule, &flow.mv_type);
        mv_attribute(c, mv_type.as_deref(), with(&rule, "mv"), &flow.mv);
        let sources = FlowSources {
            from: &flow.from,
            constant: &flow.constant,
            expr: &flow.expr,
            script: &flow.script,
            mv_allowed: true,
        };
        check_flow_source(c, &rule, &sources);
    }
    for (r, flow) in ma.export_flows.iter().enumerate() {
        let rule = key_path!["ma", i, "export_flows", r];
        object_type(c, ma, &rule, &flow.object_type);
        let mv_type = mv_type(c, &rule, &flow.mv_type);
        if flow.cs.is_empty() {
            c.error(
                with(&rule, "cs"),
                "`cs` is empty: name the attribute to write",
                None,
            );
        }
        let sources = FlowSources {
            from: &flow.from,
            constant: &flow.constant,
            expr: &flow.expr,
            script: &flow.script,
            mv_allowed: false,
        };
        let program = check_flow_source(c, &rule, &sources);
        if let (Some(from), true) = (&flow.from, flow.expr.is_none() && flow.script.is_none()) {
            mv_attribute(c, mv_type.as_deref(), with(&rule, "from"), from);
        }
        let text = match (&flow.expr, &flow.script) {
            (Some(expr), _) => Some(("expr", expr)),
            (None, Some(script)) => Some(("script", script)),
            (None, None) => None,
        };
        if let (Some(program), Some((key, src))) = (program, text) {
            let what = format!("export flow to `{}`", flow.cs);
            check_mv_reads(
                c,
                mv_type.as_deref(),
                &with(&rule, key),
                &what,
                &program,
                src,
            );
        }
    }
    for (r, rule_def) in ma.provisioning.iter().enumerate() {
        let rule = key_path!["ma", i, "provisioning", r];
        object_type(c, ma, &rule, &rule_def.object_type);
        let mv_type = mv_type(c, &rule, &rule_def.mv_type);
        let expressions = [
            ("condition", "condition", rule_def.condition.as_ref()),
            ("anchor", "anchor", rule_def.anchor.as_ref()),
            ("dn", "DN", rule_def.dn.as_ref()),
        ];
        if rule_def.anchor.is_none() && rule_def.script.is_none() {
            c.error(
                rule.clone(),
                "this provisioning rule has no `anchor`",
                "add `anchor = \"...\"`, an expression over metaverse attributes giving the new object's unique id (or a `script` whose objects give it)".to_owned(),
            );
        }
        if let Some(src) = &rule_def.script {
            let at = with(&rule, "script");
            let vars = script_variables::PROVISIONING;
            if let Some(script) = check_rule_script(c, at.clone(), src, vars) {
                let what = "the provisioning script";
                let names = script.attributes();
                check_mv_reads_of(c, mv_type.as_deref(), &at, what, names, true, src);
            }
        }
        for (key, name, src) in expressions {
            let Some(src) = src else { continue };
            let at = with(&rule, key);
            if let Some(program) = check_expr(c, at.clone(), src) {
                let what = format!("the provisioning {name}");
                check_mv_reads(c, mv_type.as_deref(), &at, &what, &program, src);
            }
        }
    }
}

/// The MV side of join condition `cond` (at `at`): exactly one of `mv`
/// (a declared attribute) or `mv_expr` (an expression that compiles and
/// reads only declared attributes).
fn join_mv(
    c: &mut Checker<'_, '_>,
    mv_type: Option<&str>,
    at: &[PathSegment],
    cond: &autosync_model::JoinCondition,
) {
    match (&cond.mv, &cond.mv_expr) {
        (Some(_), Some(_)) => c.error(
            with(at, "mv_expr"),
            "this join condition has both `mv` and `mv_expr`",
            "keep one: `mv` names an MV attribute, `mv_expr` computes a value from MV attributes"
                .to_owned(),
        ),
        (None, None) => c.error(
            at.to_vec(),
            "this join condition has neither `mv` nor `mv_expr`",
            "add `mv = \"attribute\"` or `mv_expr = \"...\"` to say what to match in the metaverse"
                .to_owned(),
        ),
        (Some(mv), None) => mv_attribute(c, mv_type, with(at, "mv"), mv),
        (None, Some(expr)) => {
            let key = with(at, "mv_expr");
            if let Some(program) = check_expr(c, key.clone(), expr) {
                let what = "the join condition's `mv_expr`";
                check_mv_reads(c, mv_type, &key, what, &program, expr);
            }
        }
    }
}

/// An MA's `deprovisioning_script`.
pub fn check_deprovisioning(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    if let Some(src) = &ma.deprovisioning_script {
        let at = key_path!["ma", i, "deprovisioning_script"];
        check_rule_script(c, at, src, script_variables::DEPROVISIONING);
    }
}

fn with(path: &[PathSegment], key: &str) -> Vec<PathSegment> {
    let mut p = path.to_vec();
    p.push(PathSegment::key(key));
    p
}

/// The rule's CS object type: the one named (which must exist), or the MA's
/// only one.
fn object_type(
    c: &mut Checker<'_, '_>,
    ma: &MaDef,
    rule: &[PathSegment],
    given: &Option<String>,
) -> Option<String> {
    let names: Vec<&str> = ma.object_types.iter().map(|t| t.name.as_str()).collect();
    match given {
        Some(name) if names.contains(&name.as_str()) => Some(name.clone()),
        Some(name) => {
            let help = if names.is_empty() {
                "declare it in this MA's `object_types`".to_owned()
            } else {
                format!("{} (this MA's object_types)", suggest::hint(name, &names))
            };
            c.error(
                with(rule, "object_type"),
                format!("MA \"{}\" has no object type `{name}`", ma.name),
                help,
            );
            None
        }
        None => match names.as_slice() {
            [] => None,
            [only] => Some((*only).to_owned()),
            several => {
                c.error(
                    rule.to_vec(),
                    "`object_type` is needed: this MA has several object types",
                    format!(
                        "add `object_type = ...`, one of: {}",
                        suggest::list(several)
                    ),
                );
                None
            }
        },
    }
}

/// The rule's metaverse type: the one named (which must exist), or the
/// metaverse's only one.
fn mv_type(
    c: &mut Checker<'_, '_>,
    rule: &[PathSegment],
    given: &Option<String>,
) -> Option<String> {
    let failed = &c.decoded.failed_mv_types;
    let mut names: Vec<&str> = c.system().metaverse.keys().map(String::as_str).collect();
    names.extend(failed.iter().map(String::as_str));
    match given {
        Some(name) if names.contains(&name.as_str()) => Some(name.clone()),
        Some(name) => {
            let help = if names.is_empty() {
                format!("declare it: `[metaverse.{name}]` with `attributes = [...]`")
            } else {
                suggest::hint(name, &names)
            };
            c.error(
                with(rule, "mv_type"),
                format!("there is no metaverse type `{name}`"),
                help,
            );
            None
        }
        None => match names.as_slice() {
            [] => None,
            [only] => Some((*only).to_owned()),
            several => {
                let help = format!("add `mv_type = ...`, one of: {}", suggest::list(several));
                c.error(
                    rule.to_vec(),
                    "`mv_type` is needed: the metaverse has several types",
                    help,
                );
                None
            }
        },
    }
}

/// A metaverse attribute a rule names must be declared in its type.
fn mv_attribute(
    c: &mut Checker<'_, '_>,
    mv_type: Option<&str>,
    at: Vec<PathSegment>,
    attribute: &str,
) {
    let Some(t) = mv_type else { return };
    let Some(def) = c.system().metaverse.get(t) else {
        return;
    };
    if def.attributes.iter().any(|a| a == attribute) {
        return;
    }
    let names: Vec<&str> = def.attributes.iter().map(String::as_str).collect();
    let help = match suggest::closest(attribute, names.iter().copied()) {
        Some(close) => {
            format!("did you mean `{close}`? or add `{attribute}` to [metaverse.{t}].attributes")
        }
        None => format!("add it to [metaverse.{t}].attributes"),
    };
    if attribute.is_empty() {
        c.error(at, "the metaverse attribute name is empty", help);
    } else {
        c.error(
            at,
            format!("`{attribute}` is not an attribute of metaverse type `{t}`"),
            help,
        );
    }
}

/// An export flow into the attribute an object type takes its DN from,
/// from another source than a provisioning rule's `dn` for the same type:
/// the two write the attribute in turn, and every change of the object
/// renames it back and forth (the DN, then the flow's value, then the DN
/// again), rippling to every reference to it. A warning: the two may agree
/// on every object (`from = "email"` and `dn = "lower(email)"`).
pub fn check_dn_flows(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    let one_type = (ma.object_types.len() == 1)
        .then(|| ma.object_types.first())
        .flatten();
    for (k, p) in ma.provisioning.iter().enumerate() {
        let Some(dn) = p.dn.as_deref().map(str::trim) else {
            continue;
        };
        let t = match &p.object_type {
            Some(name) => ma.object_types.iter().find(|t| &t.name == name),
            None => one_type,
        };
        let Some((t, dn_attr)) = t.and_then(|t| t.dn.as_deref().map(|d| (t, d))) else {
            continue;
        };
        for (j, f) in ma.export_flows.iter().enumerate() {
            let same_type = f.object_type.as_deref().is_none_or(|o| o == t.name);
            let same_mv = match (&f.mv_type, &p.mv_type) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if !f.cs.eq_ignore_ascii_case(dn_attr) || !same_type || !same_mv {
                continue;
            }
            let agree = f.from.as_deref().map(str::trim) == Some(dn)
                || f.expr.as_deref().map(str::trim) == Some(dn);
            if !agree {
                c.warning(
                    key_path!["ma", i, "export_flows", j],
                    format!(
                        "this flow writes `{dn_attr}`, which object type `{}` takes its DN from, and provisioning rule #{} computes that DN another way (`dn = {dn:?}`): where the two differ, every change of the object renames it back and forth",
                        t.name,
                        k + 1
                    ),
                    Some(format!(
                        "write `{dn_attr}` one way: remove this flow (the DN sets `{dn_attr}`), or give it the provisioning rule's expression (`expr = {dn:?}`)"
                    )),
                );
            }
        }
    }
}

/// An export flow into an object type's anchor: an anchor never changes,
/// so an object whose anchor is not the flow's value (an account joined
/// under its own key) fails every update with `anchor-mismatch`.
pub fn check_anchor_flows(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    for (j, f) in ma.export_flows.iter().enumerate() {
        let written = ma.object_types.iter().find(|t| {
            t.anchor.eq_ignore_ascii_case(&f.cs)
                && f.object_type.as_deref().is_none_or(|o| o == t.name)
        });
        if let Some(t) = written {
            c.warning(
                key_path!["ma", i, "export_flows", j],
                format!(
                    "this flow writes `{}`, the anchor of object type `{}`: an anchor never changes, so an object whose anchor is not the flow's value (an account joined under its own) fails every update with `anchor-mismatch`",
                    f.cs, t.name
                ),
                Some(
                    "remove this flow: provisioning's `anchor` gives a new object its anchor"
                        .to_owned(),
                ),
            );
        }
    }
}
