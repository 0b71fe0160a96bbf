//! Reference attributes: the metaverse's (`[metaverse.T] references`,
//! attribute → the metaverse type it refers to, or `"any"`) and the
//! connected systems' (`object_types[i].references`, attribute → how the
//! system spells a reference: the referred object's anchor or DN, its
//! object type, the MA whose connector space holds it).
//!
//! A reference flows only by copy (`from`), from a reference to a
//! reference: inbound, each CS value is resolved to the referred MA's CS
//! object whose anchor (or DN, ignoring case) it is, then to that object's
//! MV object; outbound, each referred MV object becomes the anchor or DN
//! of its connector in the target MA (or in the MA the reference names). When the metaverse reference names a type, the referred
//! objects must be able to be of that type: some join or projection rule
//! of the referred MA makes their object type that metaverse type
//! (inbound), some provisioning, join or projection rule of the target MA connects
//! that metaverse type to the declared object type, or to one of its
//! object types when the declaration names none (outbound).

use super::metaverse::{rule_mv_type, rule_object_type};
use super::ref_targets::{check_some_type_connects, connects};
use super::{Checker, key_path};
use crate::diagnostic::PathSegment;
use autosync_model::suggest;
use autosync_model::{
    ANY_TYPE, CsReferenceDef, FlowSource, MaDef, MvTypeDef, ObjectTypeDef, SystemDef,
};

/// `[metaverse.T] references`: each key an attribute of T, each value a
/// declared metaverse type or `"any"`.
pub fn check_metaverse_references(c: &mut Checker<'_, '_>) {
    let decoded = c.decoded;
    let system = &decoded.system;
    let mut types: Vec<&str> = system.metaverse.keys().map(String::as_str).collect();
    types.extend(decoded.failed_mv_types.iter().map(String::as_str));
    types.push(ANY_TYPE);
    for (t, def) in &system.metaverse {
        let attributes: Vec<&str> = def.attributes.iter().map(String::as_str).collect();
        for (attribute, target) in &def.references {
            let at = key_path!["metaverse", t.as_str(), "references", attribute.as_str()];
            if !attributes.contains(&attribute.as_str()) {
                let help = match suggest::closest(attribute, attributes.iter().copied()) {
                    Some(close) => format!(
                        "did you mean `{close}`? or add `{attribute}` to [metaverse.{t}].attributes"
                    ),
                    None => format!("add `{attribute}` to [metaverse.{t}].attributes"),
                };
                let span = c.key_span(&at);
                c.push(
                    at.clone(),
                    span,
                    format!(
                        "`{attribute}` is declared a reference but is not an attribute of `{t}`"
                    ),
                    Some(help),
                    false,
                );
            }
            if !types.contains(&target.as_str()) {
                c.error(
                    at,
                    format!(
                        "reference `{attribute}` refers to metaverse type `{target}`, which is not declared"
                    ),
                    format!(
                        "{} (a metaverse type, or `\"{ANY_TYPE}\"` for an object of any type)",
                        suggest::hint(target, &types)
                    ),
                );
            }
        }
    }
}

/// `object_types[k].references` of MA `ma` (the file's `[[ma]]` number
/// `i`): not the anchor; `ma` an MA of the file; `object_type` an object
/// type of that MA (of this one when `ma` is absent).
pub fn check_object_type_references(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    let decoded = c.decoded;
    let system = &decoded.system;
    for (k, ot) in ma.object_types.iter().enumerate() {
        for (attribute, reference) in &ot.references {
            let at = key_path!["ma", i, "object_types", k, "references", attribute.as_str()];
            if *attribute == ot.anchor {
                let span = c.key_span(&at);
                c.push(
                    at.clone(),
                    span,
                    format!(
                        "`{attribute}` is the anchor of object type `{}`: the anchor is the object's own id, not a reference",
                        ot.name
                    ),
                    Some(
                        "remove it from `references`; a reference is an attribute that holds another object's anchor or DN"
                            .to_owned(),
                    ),
                    false,
                );
            }
            let referred = match reference.ma() {
                None => Some(ma),
                Some(name) => match system.ma(name) {
                    Some(other) => Some(other),
                    None if decoded.failed_mas.contains(name) => None,
                    None => {
                        let names: Vec<&str> = system.mas.iter().map(|m| m.name.as_str()).collect();
                        c.error(
                            with(&at, "ma"),
                            format!("there is no MA named `{name}`"),
                            suggest::hint(name, &names),
                        );
                        None
                    }
                },
            };
            if let (Some(referred), Some(name)) = (referred, reference.object_type())
                && referred.object_type(name).is_none()
            {
                let names: Vec<&str> = referred
                    .object_types
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect();
                let whose = if referred.name == ma.name {
                    "this MA's object_types".to_owned()
                } else {
                    format!("MA \"{}\"'s object_types", referred.name)
                };
                c.error(
                    with(&at, "object_type"),
                    format!("MA \"{}\" has no object type `{name}`", referred.name),
                    format!("{} ({whose})", suggest::hint(name, &names)),
                );
            }
        }
    }
}

/// The import and export flows of MA `ma` (the file's `[[ma]]` number
/// `i`) that involve a reference on either side.
pub fn check_reference_flows(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    let decoded = c.decoded;
    let system = &decoded.system;
    for (r, flow) in ma.import_flows.iter().enumerate() {
        let Some(t) = rule_mv_type(system, &flow.mv_type) else {
            continue;
        };
        let Some(mv_def) = system.metaverse.get(t) else {
            continue;
        };
        let rule = key_path!["ma", i, "import_flows", r];
        let types = applies_to(ma, &flow.object_type);
        let mv_ref = mv_def.references.get(&flow.mv).map(String::as_str);
        match (flow.source(), mv_ref) {
            (Some(FlowSource::Attribute(from)), _) => {
                let inbound = Inbound {
                    system,
                    ma,
                    rule: &rule,
                    t,
                    mv: &flow.mv,
                    from,
                    types: &types,
                };
                check_import_copy(c, &inbound, mv_ref);
            }
            (Some(source), Some(_)) => {
                let mv = &flow.mv;
                c.error(
                    with(&rule, source_key(&source)),
                    format!(
                        "`{mv}` is a reference attribute of metaverse type `{t}`: only a copy (`from`) of a connector-space reference flows into it"
                    ),
                    "write `from = \"...\"` naming an attribute declared in the object type's `references` (an expression or a script gives text, not a reference)"
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    for (r, flow) in ma.export_flows.iter().enumerate() {
        let rule = key_path!["ma", i, "export_flows", r];
        let types = applies_to(ma, &flow.object_type);
        let declared: Vec<(&ObjectTypeDef, &CsReferenceDef)> = types
            .iter()
            .filter_map(|ot| ot.references.get(&flow.cs).map(|d| (*ot, d)))
            .collect();
        let cs = &flow.cs;
        let Some(t) = rule_mv_type(system, &flow.mv_type) else {
            continue;
        };
        let Some(mv_def) = system.metaverse.get(t) else {
            continue;
        };
        match flow.source() {
            Some(FlowSource::Attribute(from)) => {
                let outbound = Outbound {
                    system,
                    ma,
                    rule: &rule,
                    t,
                    mv_def,
                    cs,
                    from,
                    types: &types,
                    declared: &declared,
                };
                check_export_copy(c, &outbound);
            }
            Some(source) => {
                if let Some((ot, _)) = declared.first() {
                    c.error(
                        with(&rule, source_key(&source)),
                        format!(
                            "`{cs}` is a reference of object type `{}`: only a copy (`from`) of a metaverse reference flows into it",
                            ot.name
                        ),
                        format!(
                            "write `from = \"...\"` naming an attribute declared in [metaverse.{t}].references (an expression or a script gives text, not a reference)"
                        ),
                    );
                }
            }
            None => {}
        }
    }
}

/// An import flow that copies `from` into `mv`.
struct Inbound<'a> {
    system: &'a SystemDef,
    ma: &'a MaDef,
    rule: &'a [PathSegment],
    /// The metaverse type written.
    t: &'a str,
    mv: &'a str,
    from: &'a str,
    /// The object types the flow reads.
    types: &'a [&'a ObjectTypeDef],
}

/// An import flow's copy: into a metaverse reference only from a CS
/// reference (declared on every object type the flow reads), resolved by
/// anchor, whose referred objects can become the referred metaverse type;
/// a CS reference only into a metaverse reference.
fn check_import_copy(c: &mut Checker<'_, '_>, f: &Inbound<'_>, mv_ref: Option<&str>) {
    let (t, mv, from) = (f.t, f.mv, f.from);
    if from.is_empty() {
        return;
    }
    let from_at = with(f.rule, "from");
    let declared: Vec<(&ObjectTypeDef, &CsReferenceDef)> = f
        .types
        .iter()
        .filter_map(|ot| ot.references.get(from).map(|d| (*ot, d)))
        .collect();
    let Some(target) = mv_ref else {
        if let Some((ot, _)) = declared.first() {
            c.error(
                from_at,
                format!(
                    "`{from}` is a reference of object type `{}`, but `{mv}` is not a reference attribute of metaverse type `{t}`: a reference flows only into a reference",
                    ot.name
                ),
                format!(
                    "declare `{mv}` in [metaverse.{t}].references with the type it refers to (e.g. `references = {{ {mv} = \"{t}\" }}`, or `\"{ANY_TYPE}\"`)"
                ),
            );
        }
        return;
    };
    let missing: Vec<&ObjectTypeDef> = f
        .types
        .iter()
        .copied()
        .filter(|ot| !ot.references.contains_key(from))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|ot| ot.name.as_str()).collect();
        let declared_names: Vec<&str> = missing
            .iter()
            .flat_map(|ot| ot.references.keys().map(String::as_str))
            .collect();
        let declare = format!(
            "declare it in the object type's `references` (e.g. `references = {{ {from} = \"anchor\" }}`: the value holds the referred object's anchor)"
        );
        let help = match suggest::closest(from, declared_names.iter().copied()) {
            Some(close) => format!("did you mean `{close}`? or {declare}"),
            None => declare,
        };
        c.error(
            from_at.clone(),
            format!(
                "import flow to reference `{mv}` copies `{from}`, which is not declared a reference of object type {}",
                quoted(&names)
            ),
            help,
        );
    }
    // An undeclared type is reported at its declaration.
    if target == ANY_TYPE || !f.system.metaverse.contains_key(target) {
        return;
    }
    for (_, reference) in &declared {
        let referred_name = reference.ma().unwrap_or(&f.ma.name);
        let Some(referred) = f.system.ma(referred_name) else {
            continue;
        };
        let candidates: Vec<&str> = match reference.object_type() {
            Some(o) if referred.object_type(o).is_some() => vec![o],
            Some(_) => continue,
            None => referred
                .object_types
                .iter()
                .map(|ot| ot.name.as_str())
                .collect(),
        };
        let (fit, misfit): (Vec<&str>, Vec<&str>) = candidates
            .iter()
            .partition(|o| becomes(f.system, referred, o, target));
        if misfit.is_empty() {
            continue;
        }
        let m = &referred.name;
        let help = match (reference.object_type(), fit.first()) {
            (None, Some(good)) => format!(
                "name the referred object type in the declaration of `{from}` (`{{ by = \"{}\", object_type = \"{good}\" }}`), or add a join or projection rule of MA `{m}` from {} to `{target}`",
                match reference.by() {
                    autosync_model::RefBy::Anchor => "anchor",
                    autosync_model::RefBy::Dn => "dn",
                },
                quoted(&misfit)
            ),
            _ => {
                // The usual slip: the declaration names (or defaults to)
                // the wrong MA; the MAs whose objects become the type come
                // first in the help (a black-box review: it advised a
                // projection from groups to persons).
                let others: Vec<&str> = f
                    .system
                    .mas
                    .iter()
                    .filter(|x| x.name != *m)
                    .filter(|x| {
                        x.object_types
                            .iter()
                            .any(|ot| becomes(f.system, x, &ot.name, target))
                    })
                    .map(|x| x.name.as_str())
                    .collect();
                let rule = format!(
                    "add a join or projection rule of MA `{m}` from {} to `{target}`, correct the reference's `object_type`, or declare `{mv}` as `\"{ANY_TYPE}\"`",
                    quoted(&misfit)
                );
                match (fit.is_empty(), others.first()) {
                    (true, Some(first)) => format!(
                        "write `ma = \"{first}\"` in the declaration of `{from}` (`{{ by = \"{}\", ma = \"{first}\" }}`): the MA whose objects are the `{target}`s{}; or {rule}",
                        match reference.by() {
                            autosync_model::RefBy::Anchor => "anchor",
                            autosync_model::RefBy::Dn => "dn",
                        },
                        if others.len() > 1 {
                            format!(" (or another that makes them: {})", quoted(&others[1..]))
                        } else {
                            String::new()
                        }
                    ),
                    _ => rule,
                }
            }
        };
        c.error(
            with(f.rule, "mv"),
            format!(
                "mismatched types: `{mv}` refers to metaverse type `{target}`, but `{from}` refers to object type {} of MA `{m}`, and no join or projection rule of `{m}` makes {} a `{target}`",
                quoted(&misfit),
                if misfit.len() == 1 { "it" } else { "them" }
            ),
            help,
        );
        return;
    }
}

/// An export flow that copies `from` into `cs`.
pub(super) struct Outbound<'a> {
    pub(super) system: &'a SystemDef,
    pub(super) ma: &'a MaDef,
    pub(super) rule: &'a [PathSegment],
    /// The metaverse type read.
    t: &'a str,
    mv_def: &'a MvTypeDef,
    pub(super) cs: &'a str,
    pub(super) from: &'a str,
    /// The object types the flow writes.
    types: &'a [&'a ObjectTypeDef],
    /// Those of them that declare `cs` a reference, with the declaration.
    declared: &'a [(&'a ObjectTypeDef, &'a CsReferenceDef)],
}

/// An export flow's copy: into a CS reference only from a metaverse
/// reference; a metaverse reference only into a CS reference (declared on
/// every object type written) whose declared object type the MA can
/// connect to the referred metaverse type (without one, some object type
/// of that MA: `ref_targets`).
fn check_export_copy(c: &mut Checker<'_, '_>, f: &Outbound<'_>) {
    let (t, cs, from) = (f.t, f.cs, f.from);
    let Some(target) = f.mv_def.references.get(from) else {
        if let Some((ot, _)) = f.declared.first() {
            let references: Vec<&str> = f.mv_def.references.keys().map(String::as_str).collect();
            let declare = format!(
                "copy an attribute declared in [metaverse.{t}].references, or declare `{from}` there"
            );
            let help = match suggest::closest(from, references.iter().copied()) {
                Some(close) => format!("did you mean `{close}`? or {declare}"),
                None => declare,
            };
            c.error(
                with(f.rule, "from"),
                format!(
                    "export flow to reference `{cs}` of object type `{}` copies `{from}`, which is not a reference attribute of metaverse type `{t}`",
                    ot.name
                ),
                help,
            );
        }
        return;
    };
    let missing: Vec<&str> = f
        .types
        .iter()
        .filter(|ot| !ot.references.contains_key(cs))
        .map(|ot| ot.name.as_str())
        .collect();
    if !missing.is_empty() {
        c.error(
            with(f.rule, "cs"),
            format!(
                "export flow to `{cs}` copies `{from}`, a reference attribute of metaverse type `{t}`, but `{cs}` is not declared a reference of object type {}: a reference flows only into a reference",
                quoted(&missing)
            ),
            format!(
                "declare it in the object type's `references` (e.g. `references = {{ {cs} = \"dn\" }}`, or `\"anchor\"`: what the connected system holds for the referred object)"
            ),
        );
    }
    if target == ANY_TYPE || !f.system.metaverse.contains_key(target) {
        return;
    }
    for (ot, reference) in f.declared {
        // The connectors a reference names: of this MA, or of the MA it
        // names (a groups table naming another table's users).
        let referred = match reference.ma() {
            Some(m) => match f.system.ma(m) {
                Some(other) => other,
                None => continue,
            },
            None => f.ma,
        };
        let Some(o) = reference.object_type() else {
            // Any of the MA's object types may be the referred one: one of
            // them at least must be able to hold a `target`'s connector.
            if check_some_type_connects(c, f, ot, reference, referred, target) {
                continue;
            }
            return;
        };
        if referred.object_type(o).is_none() || connects(f.system, referred, target, o) {
            continue;
        }
        let m = &referred.name;
        c.error(
            with(f.rule, "cs"),
            format!(
                "mismatched types: `{from}` refers to metaverse type `{target}`, but `{cs}` of object type `{}` refers to object type `{o}`, and no provisioning, join or projection rule of MA `{m}` connects a `{target}` to a `{o}`",
                ot.name
            ),
            format!(
                "add a provisioning, join or projection rule of MA `{m}` from `{target}` to `{o}`, or correct the reference's `object_type`"
            ),
        );
        return;
    }
}

/// Whether a CS object of type `o` in MA `ma` can become a metaverse
/// object of type `t`: some join or projection rule of `ma` maps `o` to
/// `t` (a projection script may name any type).
fn becomes(system: &SystemDef, ma: &MaDef, o: &str, t: &str) -> bool {
    let joins = ma.join.iter().any(|j| {
        rule_object_type(ma, &j.object_type) == Some(o)
            && rule_mv_type(system, &j.mv_type) == Some(t)
    });
    let projects = ma.projection.iter().any(|p| {
        rule_object_type(ma, &p.object_type) == Some(o)
            && (p.script.is_some() || rule_mv_type(system, &p.mv_type) == Some(t))
    });
    joins || projects
}

/// The key of a flow's source.
fn source_key(source: &FlowSource<'_>) -> &'static str {
    match source {
        FlowSource::Attribute(_) => "from",
        FlowSource::Constant(_) => "constant",
        FlowSource::Expression(_) => "expr",
        FlowSource::Script(_) => "script",
    }
}

/// `` `a` `` or `` `a`, `b` ``.
pub(super) fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// The object types a flow applies to: the one it names, else all of the
/// MA's (several without `object_type` is reported elsewhere).
fn applies_to<'a>(ma: &'a MaDef, given: &Option<String>) -> Vec<&'a ObjectTypeDef> {
    match given {
        Some(name) => ma.object_type(name).into_iter().collect(),
        None => ma.object_types.iter().collect(),
    }
}

pub(super) fn with(path: &[PathSegment], key: &str) -> Vec<PathSegment> {
    let mut p = path.to_vec();
    p.push(PathSegment::key(key));
    p
}
