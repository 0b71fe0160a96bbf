//! Whether an outbound reference can ever be spelled: the MA whose
//! connectors spell its values (the referrer's own, or the one its `ma`
//! names) must be able to hold a connector of the referred metaverse type.
//! A reference that names no `object_type` may name any of that MA's
//! object types, so one of them at least must be connected to the type;
//! else every value waits for ever and every run still succeeds.

use super::Checker;
use super::metaverse::{rule_mv_type, rule_object_type};
use super::references::{Outbound, quoted, with};
use autosync_model::{CsReferenceDef, MaDef, ObjectTypeDef, RefBy, SystemDef};

/// A reference declared without `object_type`, written by an export flow
/// from a metaverse reference to `target`: some object type of the MA it
/// names (`referred`: its own, or its `ma`) must be connected to `target`
/// by a provisioning, join or projection rule, or no value can ever be spelled (each
/// would wait for a connector that never comes). False when it reported.
pub(super) fn check_some_type_connects(
    c: &mut Checker<'_, '_>,
    f: &Outbound<'_>,
    ot: &ObjectTypeDef,
    reference: &CsReferenceDef,
    referred: &MaDef,
    target: &str,
) -> bool {
    let names: Vec<&str> = referred
        .object_types
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    if names
        .iter()
        .any(|o| connects(f.system, referred, target, o))
    {
        return true;
    }
    let (cs, from, m) = (f.cs, f.from, &referred.name);
    let whose = match reference.ma() {
        Some(_) => format!("MA `{m}`"),
        None => format!("MA `{m}` (its own: the declaration names no `ma`)"),
    };
    let message = format!(
        "`{from}` refers to metaverse type `{target}`, but `{cs}` of object type `{}` names objects of {whose}, and no provisioning, join or projection rule of `{m}` connects a `{target}` to any of its object types ({}): no value of `{cs}` could ever be exported",
        ot.name,
        quoted(&names)
    );
    let rule = format!(
        "a provisioning, join or projection rule of MA `{m}` from `{target}` to {}",
        if names.len() == 1 {
            quoted(&names)
        } else {
            "one of its object types".to_owned()
        }
    );
    // The MAs whose objects are `target`s: those that provision one first
    // (the targets a value is spelled for), then those that only join.
    let mut others: Vec<&MaDef> = f
        .system
        .mas
        .iter()
        .filter(|other| other.name != referred.name)
        .filter(|other| {
            other
                .object_types
                .iter()
                .any(|o| connects(f.system, other, target, &o.name))
        })
        .collect();
    others.sort_by_key(|other| !provisions(f.system, other, target));
    let by = match reference.by() {
        RefBy::Anchor => "anchor",
        RefBy::Dn => "dn",
    };
    let help = match others.split_first() {
        None => format!(
            "add {rule}, or name in the declaration of `{cs}` (`ma = \"...\"`) the MA whose objects are the `{target}`s"
        ),
        Some((best, rest)) => {
            let b = &best.name;
            let change = if *b == f.ma.name {
                format!("remove `ma = \"{m}\"` from the declaration of `{cs}` (`{cs} = \"{by}\"`)")
            } else {
                let declared = format!("`{cs} = {{ by = \"{by}\", ma = \"{b}\" }}`");
                match reference.ma() {
                    Some(_) => format!(
                        "write `ma = \"{b}\"` instead of `ma = \"{m}\"` in the declaration of `{cs}` ({declared})"
                    ),
                    None => format!("add `ma = \"{b}\"` to the declaration of `{cs}` ({declared})"),
                }
            };
            let also = if rest.is_empty() {
                String::new()
            } else {
                let rest: Vec<&str> = rest.iter().map(|o| o.name.as_str()).collect();
                format!(" (or another that connects them: {})", quoted(&rest))
            };
            format!("{change}: the MA whose objects are the `{target}`s{also}; or add {rule}")
        }
    };
    c.error(with(f.rule, "cs"), message, help);
    false
}

/// Whether some provisioning rule of `ma` gives a metaverse object of
/// type `t` a connector.
fn provisions(system: &SystemDef, ma: &MaDef, t: &str) -> bool {
    ma.provisioning
        .iter()
        .any(|p| rule_mv_type(system, &p.mv_type) == Some(t))
}

/// Whether a metaverse object of type `t` can have a connector of object
/// type `o` in MA `ma`: some provisioning rule of `ma` for `t` gives `o`
/// (a provisioning script may give any type), some join rule joins `o`
/// to `t`, or some projection rule projects `o` as `t`.
pub(super) fn connects(system: &SystemDef, ma: &MaDef, t: &str, o: &str) -> bool {
    let provisions = ma.provisioning.iter().any(|p| {
        rule_mv_type(system, &p.mv_type) == Some(t)
            && (p.script.is_some() || rule_object_type(ma, &p.object_type) == Some(o))
    });
    let joins = ma.join.iter().any(|j| {
        rule_object_type(ma, &j.object_type) == Some(o)
            && rule_mv_type(system, &j.mv_type) == Some(t)
    });
    // A source's objects are connected by its projection (a rule without
    // an object type applies to every type; a script may project to any
    // metaverse type): refusing those refused valid configurations (a
    // black-box review).
    let projects = ma.projection.iter().any(|p| {
        (p.object_type.is_none() || rule_object_type(ma, &p.object_type) == Some(o))
            && (p.script.is_some() || rule_mv_type(system, &p.mv_type) == Some(t))
    });
    provisions || joins || projects
}
