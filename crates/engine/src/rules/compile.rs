//! One MA's rules compiled (`MaCompiler::compile`): its filters, join and
//! projection rules, flows with their types checked against the
//! metaverse, provisioning and deprovisioning; the errors name the MA and
//! the rule.

use super::{InboundFlow, MaRules, OutboundFlow, by_attr};
use crate::compute::{Compute, compile_expression, program_reads};
use crate::error::EngineError;
use crate::order;
use autosync_expr::Program;
use autosync_model::{FlowSource, MaDef, SystemDef, script_variables};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashSet;

pub(super) struct MaCompiler<'a> {
    pub def: &'a MaDef,
    pub system: &'a SystemDef,
    pub only_mv_type: Option<&'a str>,
}

impl MaCompiler<'_> {
    pub(super) fn err(&self, rule: String, message: impl Into<String>) -> EngineError {
        EngineError::Rules {
            ma: self.def.name.clone(),
            rule,
            message: message.into(),
        }
    }

    pub(super) fn expr(&self, rule: &str, text: &str) -> Result<Program, EngineError> {
        compile_expression(text).map_err(|m| self.err(rule.to_owned(), m))
    }

    pub(super) fn source(
        &self,
        rule: &str,
        source: Option<FlowSource<'_>>,
    ) -> Result<Compute, EngineError> {
        let source = source.ok_or_else(|| {
            self.err(
                rule.to_owned(),
                "exactly one of `from`, `constant`, `expr` or `script` must be set",
            )
        })?;
        Compute::compile(source).map_err(|m| self.err(rule.to_owned(), m))
    }

    /// A metaverse type named by a rule, or the metaverse's only type.
    pub(super) fn mv_type(
        &self,
        rule: &str,
        named: &Option<String>,
    ) -> Result<String, EngineError> {
        match named {
            Some(t) if self.system.metaverse.contains_key(t) => Ok(t.clone()),
            Some(t) => Err(self.err(rule.to_owned(), format!("there is no metaverse type `{t}`"))),
            None => self.only_mv_type.map(str::to_owned).ok_or_else(|| {
                self.err(
                    rule.to_owned(),
                    "`mv_type` is needed because the metaverse has several types (or none)",
                )
            }),
        }
    }

    pub(super) fn object_type(
        &self,
        rule: &str,
        named: &Option<String>,
    ) -> Result<Option<String>, EngineError> {
        match named {
            Some(t) if self.def.object_type(t).is_some() => Ok(Some(t.clone())),
            Some(t) => Err(self.err(rule.to_owned(), format!("the MA has no object type `{t}`"))),
            None => Ok(None),
        }
    }

    pub(super) fn mv_attr(&self, rule: &str, mv_type: &str, attr: &str) -> Result<(), EngineError> {
        match self.system.metaverse.get(mv_type) {
            Some(t) if t.attributes.iter().any(|a| a == attr) => Ok(()),
            _ => Err(self.err(
                rule.to_owned(),
                format!("metaverse type `{mv_type}` has no attribute `{attr}`"),
            )),
        }
    }

    pub(super) fn compile(&self, index: usize) -> Result<MaRules, EngineError> {
        let d = self.def;
        let filters = self.filters()?;
        let joins = self.joins()?;
        let projections = self.projections()?;
        let mut inbound = Vec::new();
        for f in &d.import_flows {
            let rule = format!("import flow to `{}`", f.mv);
            let mv_type = match &f.mv_type {
                Some(_) => Some(self.mv_type(&rule, &f.mv_type)?),
                None => None,
            };
            match &mv_type {
                Some(t) => self.mv_attr(&rule, t, &f.mv)?,
                None if !self
                    .system
                    .metaverse
                    .values()
                    .any(|t| t.attributes.contains(&f.mv)) =>
                {
                    return Err(self.err(
                        rule,
                        format!("no metaverse type has an attribute `{}`", f.mv),
                    ));
                }
                None => {}
            }
            let order = order::declared(self.system, mv_type.as_deref(), &f.mv);
            let object_type = self.object_type(&rule, &f.object_type)?;
            let source = self.source(&rule, f.source())?;
            let reference = crate::refs::compile_in(
                self.system,
                self.def,
                object_type.as_deref(),
                mv_type.as_deref(),
                &f.mv,
                &source,
            )
            .map_err(|m| self.err(rule.clone(), m))?;
            inbound.push(InboundFlow {
                object_type,
                mv_type,
                mv_attr: f.mv.clone(),
                source,
                ranks: Vec::new(),
                order,
                reference,
            });
        }
        let mut outbound = Vec::new();
        for f in &d.export_flows {
            let rule = format!("export flow to `{}`", f.cs);
            let mv_type = match &f.mv_type {
                Some(_) => Some(self.mv_type(&rule, &f.mv_type)?),
                None => None,
            };
            let source = self.source(&rule, f.source())?;
            let order = order::of_outbound(self.system, mv_type.as_deref(), &source);
            let object_type = self.object_type(&rule, &f.object_type)?;
            let reference = crate::refs::compile_out(
                self.system,
                self.def,
                object_type.as_deref(),
                mv_type.as_deref(),
                &f.cs,
                &source,
            )
            .map_err(|m| self.err(rule.clone(), m))?;
            outbound.push(OutboundFlow {
                object_type,
                mv_type,
                cs_attr: f.cs.clone(),
                source,
                initial_only: f.initial_only,
                order,
                reference,
            });
        }
        let mut ref_flows: Vec<crate::refs::RefFlow<'_>> = outbound
            .iter_mut()
            .filter_map(|f| {
                let OutboundFlow {
                    object_type,
                    reference,
                    ..
                } = f;
                reference.as_mut().map(|r| (object_type.as_deref(), r))
            })
            .collect();
        let export_ranks = crate::refs::export_ranks(self.def, &mut ref_flows);
        drop(ref_flows);
        let outbound_by_attr = by_attr(outbound.iter().map(|f| f.cs_attr.as_str()));
        let distinct = inbound
            .iter()
            .map(|f| &f.mv_attr)
            .collect::<HashSet<_>>()
            .len()
            == inbound.len();
        let reads_mv = inbound
            .iter()
            .any(|f| matches!(&f.source, Compute::Program(p) if p.needs_context()));
        // References are resolved one by one (`inbound`), with their waits.
        let refs = inbound.iter().any(|f| f.reference.is_some());
        let inbound_by_attr = (distinct && !reads_mv && !refs)
            .then(|| by_attr(inbound.iter().map(|f| f.mv_attr.as_str())));
        let provisioning = self.provisioning()?;
        let mut reads = Some(HashSet::new());
        let all = inbound
            .iter()
            .map(|f| f.source.reads())
            .chain(filters.iter().map(|f| program_reads(&f.condition)));
        for r in all {
            match (r, &mut reads) {
                (Some(names), Some(set)) => set.extend(names),
                _ => reads = None,
            }
        }
        let mut flows_into: FxHashMap<String, FxHashMap<String, FxHashSet<String>>> =
            FxHashMap::default();
        for t in &d.object_types {
            let by_mv = flows_into.entry(t.name.clone()).or_default();
            for mv_type in self.system.metaverse.keys() {
                let attrs: FxHashSet<String> = inbound
                    .iter()
                    .filter(|f| f.applies(&t.name, mv_type))
                    .map(|f| f.mv_attr.clone())
                    .collect();
                by_mv.insert(mv_type.clone(), attrs);
            }
        }
        Ok(MaRules {
            write_only: Default::default(),
            export_ranks,
            flows_into,
            ordered_cs: order::ordered_cs(&inbound, &outbound),
            inbound_reads: reads,
            index,
            name: d.name.clone(),
            object_types: d.object_types.iter().map(|t| t.name.clone()).collect(),
            filters,
            joins,
            projections,
            inbound,
            outbound,
            outbound_by_attr,
            inbound_by_attr,
            provisioning,
            deprovisioning: d.deprovisioning,
            deprovisioning_script: d
                .deprovisioning_script
                .as_deref()
                .map(|s| {
                    self.rule_script("deprovisioning script", s, script_variables::DEPROVISIONING)
                })
                .transpose()?,
            deprovision_joined: d.deprovision_joined,
        })
    }
}
