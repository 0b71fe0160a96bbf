//! What the rules say of references: which flows copy one ([`InRef`],
//! [`OutRef`], checked against the metaverse's and the MAs' declarations
//! when the rules are compiled), and the engine-wide [`summary`].

use crate::compute::Compute;
use autosync_model::{MaDef, RefBy, SystemDef};

/// What the rules say of references, for the whole engine: whether any
/// flow copies one; the metaverse's reference attributes `(type,
/// attribute)`; the MAs whose objects import flows' references name, and
/// those whose connectors export flows' references spell.
pub(crate) type Summary = (bool, Vec<(String, String)>, (Vec<String>, Vec<String>));

pub(crate) fn summary(system: &SystemDef, mas: &[crate::rules::MaRules]) -> Summary {
    let has_refs = mas.iter().any(|m| {
        m.inbound.iter().any(|f| f.reference.is_some())
            || m.outbound.iter().any(|f| f.reference.is_some())
    });
    let mv_refs = system
        .metaverse
        .iter()
        .flat_map(|(t, d)| d.references.keys().map(move |a| (t.clone(), a.clone())))
        .collect();
    let mut ref_in: Vec<String> = mas
        .iter()
        .flat_map(|m| m.inbound.iter().filter_map(|f| f.reference.as_ref()))
        .map(|r| r.ma.clone())
        .collect();
    ref_in.sort();
    ref_in.dedup();
    let mut ref_out: Vec<String> = mas
        .iter()
        .flat_map(|m| {
            m.outbound
                .iter()
                .filter_map(|f| f.reference.as_ref())
                .map(|r| r.ma.clone().unwrap_or_else(|| m.name.clone()))
        })
        .collect();
    ref_out.sort();
    ref_out.dedup();
    (has_refs, mv_refs, (ref_in, ref_out))
}

/// An import flow that copies a reference.
#[derive(Clone, Debug)]
pub(crate) struct InRef {
    /// The connector-space attribute holding the anchors (or DNs).
    pub cs_attr: String,
    /// The MA whose connector space holds the referred objects.
    pub ma: String,
    /// Whether a value is an anchor or a DN (compared ignoring case).
    pub by: RefBy,
    /// The metaverse type the attribute's references must name, when the
    /// objects of `ma` may be of another (each is then checked).
    pub check_type: Option<String>,
}

/// An export flow that copies a reference.
#[derive(Clone, Debug)]
pub(crate) struct OutRef {
    /// The metaverse attribute holding the references.
    pub mv_attr: String,
    /// How the target spells a reference.
    pub by: RefBy,
    /// The MA whose connectors the references name, when not the target
    /// itself (a table of groups naming the users of another table).
    pub ma: Option<String>,
    /// The metaverse type the references name, when declared (not `"any"`).
    pub names_type: Option<String>,
    /// The target's connectors that the references name are of object
    /// types its export sends before the referrer's (people before the
    /// groups that hold them, see [`super::export_ranks`]): one whose add
    /// is still to be sent is spelled whatever its id.
    pub sent_before: bool,
}

/// Whether `attr` is a reference of metaverse type `mv_type` (of any type
/// that has the attribute, when `None`). `Err` when the types disagree.
fn mv_reference(system: &SystemDef, mv_type: Option<&str>, attr: &str) -> Result<bool, String> {
    match mv_type {
        Some(t) => Ok(system
            .metaverse
            .get(t)
            .is_some_and(|d| d.references.contains_key(attr))),
        None => {
            let with: Vec<(&String, bool)> = system
                .metaverse
                .iter()
                .filter(|(_, d)| d.attributes.iter().any(|a| a == attr))
                .map(|(n, d)| (n, d.references.contains_key(attr)))
                .collect();
            let refs = with.iter().filter(|(_, r)| *r).count();
            if refs > 0 && refs < with.len() {
                return Err(format!(
                    "`{attr}` is a reference in some metaverse types and not in others: give the flow an `mv_type`"
                ));
            }
            Ok(refs > 0)
        }
    }
}

/// The reference declarations of `attr` on the object types a flow
/// applies to; `Err` when some declare it and others do not, or they
/// differ.
fn cs_reference(
    ma: &MaDef,
    object_type: Option<&str>,
    attr: &str,
) -> Result<Option<(RefBy, Option<String>)>, String> {
    let mut found: Option<(RefBy, Option<String>)> = None;
    let mut plain = false;
    for t in ma
        .object_types
        .iter()
        .filter(|t| object_type.is_none_or(|o| o == t.name))
    {
        match t.references.get(attr) {
            Some(r) => {
                let this = (r.by(), r.ma().map(str::to_owned));
                if found.as_ref().is_some_and(|f| *f != this) {
                    return Err(format!(
                        "object types of `{}` declare reference `{attr}` differently: give the flow an `object_type`",
                        ma.name
                    ));
                }
                found = Some(this);
            }
            None => plain = true,
        }
    }
    if found.is_some() && plain {
        return Err(format!(
            "`{attr}` is a reference in some object types of `{}` and not in others: give the flow an `object_type`",
            ma.name
        ));
    }
    Ok(found)
}

/// The reference an import flow copies, if any.
pub(crate) fn compile_in(
    system: &SystemDef,
    ma: &MaDef,
    object_type: Option<&str>,
    mv_type: Option<&str>,
    mv_attr: &str,
    source: &Compute,
) -> Result<Option<InRef>, String> {
    let mv_ref = mv_reference(system, mv_type, mv_attr)?;
    let from = match source {
        Compute::Attribute(a) => Some(a.as_str()),
        _ => None,
    };
    let cs_ref = match from {
        Some(a) => cs_reference(ma, object_type, a)?,
        None => None,
    };
    match (mv_ref, from, cs_ref) {
        (false, _, None) => Ok(None),
        (false, Some(a), Some(_)) => Err(format!(
            "`{a}` is a reference and `{mv_attr}` is not: declare `{mv_attr}` under `references` of its metaverse type, or read `{a}` with an expression to copy its text"
        )),
        (false, None, Some(_)) => Ok(None),
        (true, None, _) => Err(format!(
            "`{mv_attr}` is a reference: an import flow to it copies a reference attribute with `from`"
        )),
        (true, Some(a), None) => Err(format!(
            "`{mv_attr}` is a reference and `{a}` is not: declare `{a}` under `references` of the object type"
        )),
        (true, Some(a), Some((by, other))) => {
            let named = other.unwrap_or_else(|| ma.name.clone());
            let check_type =
                declared_type(system, mv_type, mv_attr).filter(|t| !only_type(system, &named, t));
            Ok(Some(InRef {
                cs_attr: a.to_owned(),
                ma: named,
                by,
                check_type,
            }))
        }
    }
}

/// The metaverse type `attr` (of `mv_type`, or of every type that has
/// it) declares its references name, if one (not `"any"`).
fn declared_type(system: &SystemDef, mv_type: Option<&str>, attr: &str) -> Option<String> {
    let mut types = system
        .metaverse
        .iter()
        .filter(|(t, _)| mv_type.is_none_or(|m| m == t.as_str()))
        .filter_map(|(_, d)| d.references.get(attr));
    let first = types.next()?;
    (first != "any" && types.all(|t| t == first)).then(|| first.clone())
}

/// Whether every object of MA `ma` that joins, projects or is provisioned
/// is a metaverse object of type `t` (references to its objects need no
/// check of their type).
fn only_type(system: &SystemDef, ma: &str, t: &str) -> bool {
    let Some(def) = system.mas.iter().find(|m| m.name == ma) else {
        return false;
    };
    let only = system.metaverse.len() == 1 && system.metaverse.contains_key(t);
    let is_t = |m: Option<&String>| m.map_or(only, |m| m == t);
    def.join.iter().all(|j| is_t(j.mv_type.as_ref()))
        && def.projection.iter().all(|p| is_t(p.mv_type.as_ref()))
        && def.provisioning.iter().all(|p| is_t(p.mv_type.as_ref()))
}

/// The reference an export flow copies, if any.
pub(crate) fn compile_out(
    system: &SystemDef,
    ma: &MaDef,
    object_type: Option<&str>,
    mv_type: Option<&str>,
    cs_attr: &str,
    source: &Compute,
) -> Result<Option<OutRef>, String> {
    let cs_ref = cs_reference(ma, object_type, cs_attr)?;
    let from = match source {
        Compute::Attribute(a) => Some(a.as_str()),
        _ => None,
    };
    let mv_ref = match from {
        Some(a) => mv_reference(system, mv_type, a)?,
        None => false,
    };
    match (cs_ref, from, mv_ref) {
        (None, _, false) => Ok(None),
        (None, Some(a), true) => Err(format!(
            "`{a}` is a reference and `{cs_attr}` is not: declare `{cs_attr}` under `references` of the object type"
        )),
        (None, None, true) => Ok(None),
        (Some(_), None, _) => Err(format!(
            "`{cs_attr}` is a reference: an export flow to it copies a metaverse reference with `from`"
        )),
        (Some(_), Some(a), false) => Err(format!(
            "`{cs_attr}` is a reference and `{a}` is not: declare `{a}` under `references` of its metaverse type"
        )),
        (Some((by, other)), Some(a), true) => Ok(Some(OutRef {
            mv_attr: a.to_owned(),
            by,
            ma: other.filter(|o| *o != ma.name),
            names_type: declared_type(system, mv_type, a),
            sent_before: false,
        })),
    }
}
