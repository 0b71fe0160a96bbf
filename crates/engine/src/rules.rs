//! The rules of every management agent compiled once per engine: filters,
//! join and projection rules, inbound and outbound attribute flows,
//! provisioning, precedence and the metaverse deletion rule, with object and
//! metaverse types resolved up front so that a sync step does no per-object
//! work that can be done once. Rules scripts (MIM's rules extensions) are
//! compiled here too, and the metaverse attributes their lookups search
//! are gathered for the store's index (`scripted`).

mod scripted;

use crate::compute::Compute;
use crate::error::EngineError;
use autosync_expr::{Program, RuleScript};
use autosync_model::{DeletionRule, DeprovisionAction, PrecedenceDef, SystemDef, ValueOrder};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashSet;

mod compile;
mod join;
use compile::MaCompiler;
pub(crate) use join::{JoinRule, texts, values_match};

/// Every MA's rules plus the metaverse's. The maps are looked up per object
/// by sync, with short keys: they use the Fx hasher (the keys come from the
/// configuration, not from connected systems).
pub(crate) struct Rules {
    pub mas: Vec<MaRules>,
    pub ma_index: FxHashMap<String, usize>,
    pub mv_types: FxHashMap<String, MvTypeRules>,
    /// The (MV type, attribute) pairs scripts' `mv_find` calls search.
    pub lookups: Vec<(String, String)>,
    /// Whether any metaverse type declares an ordered attribute (when not,
    /// [`Rules::mv_order`] answers without a lookup).
    pub any_ordered: bool,
    /// Whether any flow copies a reference (then every sync step ends with
    /// the references that waited, see `sync::refpass`).
    pub has_refs: bool,
    /// The reference attributes of the metaverse, `(type, attribute)`:
    /// each is indexed, so the objects referring to one are found.
    pub mv_refs: Vec<(String, String)>,
    /// The MAs whose objects import flows' references name, and those
    /// whose connectors export flows' references spell.
    pub ref_mas: (Vec<String>, Vec<String>),
    /// The attributes kept one row per value in the store (see `rows`):
    /// per MA, its unordered reference attributes; per metaverse type, its
    /// unordered reference attributes.
    pub rows: crate::rows::RowAttrs,
    /// The store's key for write-only and sealed values (`secrets`).
    pub secrets: crate::secrets::Secrets,
}

/// Rules of one metaverse type.
pub(crate) struct MvTypeRules {
    /// Attributes with an explicit precedence.
    pub precedence: FxHashMap<String, Precedence>,
    pub deletion: Deletion,
    /// MAs that have an outbound flow or a provisioning rule for this type,
    /// in file order.
    pub targets: Vec<usize>,
    /// Attributes declared `ordered`: their values compare as sequences.
    pub ordered: FxHashSet<String>,
}

pub(crate) enum Precedence {
    /// Last writer wins.
    Equal,
    /// MA indexes, highest first.
    Ranked(Vec<usize>),
}

pub(crate) enum Deletion {
    /// Delete when the last connector from one of these MAs goes.
    LastAuthoritative(FxHashSet<usize>),
    /// Delete when a connector from any of these MAs goes, whatever
    /// connectors remain (MIM's "any of the following MAs").
    AnyConnectorFrom(FxHashSet<usize>),
    LastConnector,
    Never,
    /// A script decides (MIM's `ShouldDeleteFromMV`).
    Script(RuleScript),
}

pub(crate) struct Filter {
    pub object_type: Option<String>,
    pub condition: Program,
}

pub(crate) struct Projection {
    pub object_type: Option<String>,
    /// `None`: a script that names the type (the metaverse has several).
    pub mv_type: Option<String>,
    pub condition: Option<Program>,
    /// Decides instead of `condition` (MIM's `ShouldProjectToMV`): a
    /// boolean, or the name of the metaverse type to project as.
    pub script: Option<Program>,
}

pub(crate) struct InboundFlow {
    pub object_type: Option<String>,
    /// `None`: every metaverse type that has the attribute.
    pub mv_type: Option<String>,
    pub mv_attr: String,
    pub source: Compute,
    /// The MA's rank for `mv_attr` under each metaverse type (as
    /// [`Rules::rank`] gives it), worked out once when the rules are
    /// compiled; see [`Rules::inbound_rank`].
    pub ranks: Ranks,
    /// How the values of `mv_attr` compare (ordered when it is declared so).
    pub order: ValueOrder,
    /// The flow copies a reference: its values are resolved to metaverse
    /// objects (see `refs`).
    pub reference: Option<crate::refs::InRef>,
}

/// Ranks by metaverse type name.
pub(crate) type Ranks = Vec<(String, Option<usize>)>;

pub(crate) struct OutboundFlow {
    pub object_type: Option<String>,
    pub mv_type: Option<String>,
    pub cs_attr: String,
    pub source: Compute,
    pub initial_only: bool,
    /// How the values of `cs_attr` compare: ordered when the flow reads a
    /// metaverse attribute declared ordered.
    pub order: ValueOrder,
    /// The flow copies a reference: each referred metaverse object becomes
    /// its connector's anchor or DN on this MA (see `refs`).
    pub reference: Option<crate::refs::OutRef>,
}

pub(crate) struct Provisioning {
    pub mv_type: String,
    pub object_type: String,
    pub condition: Option<Program>,
    /// The metaverse attributes the condition reads: while one of them has
    /// no value the condition is undecided (unless `evaluate_absent`).
    pub condition_reads: Vec<String>,
    /// `when_absent = "evaluate"`: the condition decides with values absent.
    pub evaluate_absent: bool,
    /// `None` only with a script (whose objects give it).
    pub anchor: Option<Program>,
    pub dn: Option<Program>,
    /// Decides after `condition` (MIM's `Provision`): in or out of scope,
    /// undecided, or the objects to provision.
    pub script: Option<RuleScript>,
    /// Join an existing, unjoined object with the new object's anchor
    /// instead of reporting `object-already-exists`.
    pub adopt: bool,
}

/// Rules of one MA.
pub(crate) struct MaRules {
    pub index: usize,
    pub name: String,
    /// The MA's object types.
    pub object_types: Vec<String>,
    pub filters: Vec<Filter>,
    pub joins: Vec<JoinRule>,
    pub projections: Vec<Projection>,
    pub inbound: Vec<InboundFlow>,
    pub outbound: Vec<OutboundFlow>,
    /// A new object's attributes go into maps searched from the smallest
    /// name, so they are added from the greatest name (see `by_attr`).
    /// `outbound` by `cs_attr`, the same attribute as configured.
    pub outbound_by_attr: Vec<usize>,
    /// `inbound` by `mv_attr`, when the order a new metaverse object is
    /// filled in does not matter: each flow writes an attribute of its own
    /// and none reads the metaverse object.
    pub inbound_by_attr: Option<Vec<usize>>,
    pub provisioning: Vec<Provisioning>,
    pub deprovisioning: DeprovisionAction,
    /// Decides the action per connector (MIM's `Deprovision`).
    pub deprovisioning_script: Option<RuleScript>,
    /// Also deprovision joined (not provisioned) connectors when the
    /// provisioning condition turns false.
    pub deprovision_joined: bool,
    /// The CS attributes a connector's inbound rules (flows, filters) read;
    /// `None` when a script may read any.
    pub inbound_reads: Option<HashSet<String>>,
    /// The metaverse attributes this MA's inbound flows set, by CS object
    /// type and then metaverse type.
    pub flows_into: FxHashMap<String, FxHashMap<String, FxHashSet<String>>>,
    /// The CS attributes whose values compare in order: those an outbound
    /// flow fills from an ordered metaverse attribute, and those an inbound
    /// flow reads into one. Usually empty.
    pub ordered_cs: FxHashSet<String>,
    /// Write-only and sealed attributes (`write_only`); set by the engine,
    /// which knows the connector type's own.
    pub write_only: crate::write_only::WriteOnly,
    /// The rank of each object type in the export's order (types whose
    /// references name another type's objects go after them); empty when
    /// the ids alone give the order.
    pub export_ranks: FxHashMap<String, usize>,
}

impl MaRules {
    /// Whether an export flow writes CS attribute `attr` as a reference
    /// by DN.
    pub fn by_dn(&self, attr: &str) -> bool {
        self.outbound.iter().any(|f| {
            f.cs_attr == attr
                && f.reference
                    .as_ref()
                    .is_some_and(|r| r.by == autosync_model::RefBy::Dn)
        })
    }

    /// The rules of an MA no longer in the configuration: none (its
    /// connector space can still be deleted; `index` is outside the
    /// configured MAs, so no deletion rule counts it as authoritative).
    pub fn retired(name: &str, index: usize) -> MaRules {
        MaRules {
            index,
            name: name.to_owned(),
            object_types: Vec::new(),
            deprovisioning_script: None,
            filters: Vec::new(),
            joins: Vec::new(),
            projections: Vec::new(),
            inbound: Vec::new(),
            outbound: Vec::new(),
            outbound_by_attr: Vec::new(),
            inbound_by_attr: Some(Vec::new()),
            provisioning: Vec::new(),
            deprovisioning: DeprovisionAction::Disconnect,
            deprovision_joined: false,
            inbound_reads: Some(HashSet::new()),
            flows_into: FxHashMap::default(),
            ordered_cs: FxHashSet::default(),
            write_only: Default::default(),
            export_ranks: FxHashMap::default(),
        }
    }

    /// The metaverse attributes this MA's inbound flows set on a metaverse
    /// object of `mv_type` from a CS object of `object_type`.
    pub fn flows_into(&self, object_type: &str, mv_type: &str) -> Option<&FxHashSet<String>> {
        self.flows_into.get(object_type)?.get(mv_type)
    }
}

/// The indexes of flows writing `attrs`, the greatest name first and one
/// name's flows as configured: inserted in this order, each name goes in
/// front of the map's node after one comparison, and of one name's values
/// the last configured stays (as when inserted as configured).
fn by_attr<'a>(attrs: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let mut order: Vec<(&str, usize)> = attrs.enumerate().map(|(i, a)| (a, i)).collect();
    order.sort_by(|(a, i), (b, j)| b.cmp(a).then(i.cmp(j)));
    order.into_iter().map(|(_, i)| i).collect()
}

fn applies(rule_type: &Option<String>, actual: &str) -> bool {
    rule_type.as_deref().is_none_or(|t| t == actual)
}

impl Filter {
    pub fn applies(&self, object_type: &str) -> bool {
        applies(&self.object_type, object_type)
    }
}
impl Projection {
    pub fn applies(&self, object_type: &str) -> bool {
        applies(&self.object_type, object_type)
    }
}
impl InboundFlow {
    pub fn applies(&self, object_type: &str, mv_type: &str) -> bool {
        applies(&self.object_type, object_type) && applies(&self.mv_type, mv_type)
    }
}
impl OutboundFlow {
    pub fn applies(&self, object_type: &str, mv_type: &str) -> bool {
        applies(&self.object_type, object_type) && applies(&self.mv_type, mv_type)
    }
}

impl Rules {
    /// Rank of `ma` for `attr` of `mv_type` (lower is higher); `None` for
    /// equal precedence.
    pub fn rank(&self, mv_type: &str, attr: &str, ma: usize) -> Option<usize> {
        match self
            .mv_types
            .get(mv_type)
            .and_then(|t| t.precedence.get(attr))
        {
            Some(Precedence::Equal) => None,
            Some(Precedence::Ranked(list)) => Some(
                list.iter()
                    .position(|m| *m == ma)
                    .unwrap_or(list.len() + ma),
            ),
            None => Some(ma),
        }
    }

    /// [`rank`](Self::rank) of MA `ma` for the attribute inbound flow `f`
    /// (one of that MA's) sets on a metaverse object of type `mv_type`.
    pub fn inbound_rank(&self, f: &InboundFlow, mv_type: &str, ma: usize) -> Option<usize> {
        match f.ranks.iter().find(|(t, _)| t == mv_type) {
            Some((_, rank)) => *rank,
            None => self.rank(mv_type, &f.mv_attr, ma),
        }
    }

    /// The (MV type, attribute) pairs scripts look metaverse objects up by:
    /// the store must index them, like the join attributes.
    pub fn lookup_index(&self) -> Vec<(String, String)> {
        self.lookups.clone()
    }

    /// Every name the configuration uses: MA names, object and MV types,
    /// attribute names (of the MV schema, of flows, joins, provisioning and
    /// what their expressions read). The store may number them (see
    /// `Store::declare_names`).
    pub fn store_names(&self, system: &SystemDef) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (ty, def) in &system.metaverse {
            out.push(ty.clone());
            out.extend(def.attributes.iter().cloned());
        }
        for ma in &system.mas {
            out.push(ma.name.clone());
            for t in &ma.object_types {
                out.push(t.name.clone());
                out.push(t.anchor.clone());
                out.extend(t.dn.iter().cloned());
            }
        }
        let program = |p: &Program, out: &mut Vec<String>| {
            out.extend(p.attributes().iter().cloned());
        };
        let compute = |c: &Compute, out: &mut Vec<String>| {
            out.extend(c.reads().into_iter().flatten());
        };
        for ma in &self.mas {
            for f in &ma.filters {
                program(&f.condition, &mut out);
            }
            for j in &ma.joins {
                for c in &j.conditions {
                    compute(&c.cs, &mut out);
                    out.extend(c.mv.reads());
                }
            }
            for p in &ma.projections {
                for c in p.condition.iter().chain(p.script.iter()) {
                    program(c, &mut out);
                }
            }
            for f in &ma.inbound {
                out.push(f.mv_attr.clone());
                compute(&f.source, &mut out);
            }
            for f in &ma.outbound {
                out.push(f.cs_attr.clone());
                compute(&f.source, &mut out);
            }
            for p in &ma.provisioning {
                out.push(p.object_type.clone());
                for c in p.condition.iter().chain(&p.anchor).chain(p.dn.iter()) {
                    program(c, &mut out);
                }
            }
        }
        let mut seen = FxHashSet::default();
        out.retain(|n| seen.insert(n.clone()));
        out
    }

    pub fn compile(system: &SystemDef) -> Result<Rules, EngineError> {
        let ma_index: FxHashMap<String, usize> = system
            .mas
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        let only_mv_type = if system.metaverse.len() == 1 {
            system.metaverse.keys().next().cloned()
        } else {
            None
        };
        let mut mas = Vec::with_capacity(system.mas.len());
        for (index, def) in system.mas.iter().enumerate() {
            let c = MaCompiler {
                def,
                system,
                only_mv_type: only_mv_type.as_deref(),
            };
            mas.push(c.compile(index)?);
        }
        let mut mv_types = FxHashMap::default();
        let mut deletion_scripts = Vec::new();
        for (name, def) in &system.metaverse {
            let mut precedence = FxHashMap::default();
            for (attr, p) in &def.precedence {
                let p = match p {
                    PrecedenceDef::Equal(_) => Precedence::Equal,
                    PrecedenceDef::Ranked(list) => {
                        let mut ranked = Vec::with_capacity(list.len());
                        for m in list {
                            let i = ma_index.get(m).copied().ok_or_else(|| EngineError::Rules {
                                ma: m.clone(),
                                rule: format!("precedence of metaverse attribute `{name}.{attr}`"),
                                message: format!("there is no management agent `{m}`"),
                            })?;
                            ranked.push(i);
                        }
                        Precedence::Ranked(ranked)
                    }
                };
                precedence.insert(attr.clone(), p);
            }
            let deletion = match &def.deletion {
                DeletionRule::LastConnector => Deletion::LastConnector,
                DeletionRule::Never => Deletion::Never,
                DeletionRule::LastAuthoritativeConnector { mas: listed } => {
                    let set: FxHashSet<usize> = if listed.is_empty() {
                        mas.iter()
                            .filter(|m| {
                                m.projections
                                    .iter()
                                    .any(|p| p.mv_type.as_ref().is_none_or(|t| t == name))
                            })
                            .map(|m| m.index)
                            .collect()
                    } else {
                        listed
                            .iter()
                            .filter_map(|m| ma_index.get(m).copied())
                            .collect()
                    };
                    Deletion::LastAuthoritative(set)
                }
                DeletionRule::AnyConnectorFrom { mas: listed } => {
                    let mut set = FxHashSet::default();
                    for m in listed {
                        let i = ma_index.get(m).copied().ok_or_else(|| EngineError::Rules {
                            ma: m.clone(),
                            rule: format!("deletion rule of metaverse type `{name}`"),
                            message: format!("there is no management agent `{m}`"),
                        })?;
                        set.insert(i);
                    }
                    Deletion::AnyConnectorFrom(set)
                }
                DeletionRule::Script { script } => {
                    let compiled = scripted::deletion_script(name, script)?;
                    deletion_scripts.push(compiled.clone());
                    Deletion::Script(compiled)
                }
            };
            let targets = mas
                .iter()
                .filter(|m| {
                    m.provisioning.iter().any(|p| &p.mv_type == name)
                        || m.outbound.iter().any(|f| applies(&f.mv_type, name))
                })
                .map(|m| m.index)
                .collect();
            mv_types.insert(
                name.clone(),
                MvTypeRules {
                    precedence,
                    deletion,
                    targets,
                    ordered: def.ordered.iter().cloned().collect(),
                },
            );
        }
        let lookups = scripted::lookup_pairs(&mas, &deletion_scripts);
        let (has_refs, mv_refs, ref_mas) = crate::refs::summary(system, &mas);
        let rows = crate::rows::RowAttrs::of(system, &mas);
        let mut rules = Rules {
            secrets: crate::secrets::Secrets::beside(&system.store.path),
            rows,
            has_refs,
            mv_refs,
            ref_mas,
            any_ordered: mv_types.values().any(|t| !t.ordered.is_empty()),
            mas,
            ma_index,
            mv_types,
            lookups,
        };
        let mut types: Vec<&String> = rules.mv_types.keys().collect();
        types.sort();
        let ranks: Vec<Vec<Ranks>> = rules
            .mas
            .iter()
            .map(|ma| {
                ma.inbound
                    .iter()
                    .map(|f| {
                        types
                            .iter()
                            .map(|&t| (t.clone(), rules.rank(t, &f.mv_attr, ma.index)))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        for (ma, ranks) in rules.mas.iter_mut().zip(ranks) {
            for (f, ranks) in ma.inbound.iter_mut().zip(ranks) {
                f.ranks = ranks;
            }
        }
        Ok(rules)
    }
}
