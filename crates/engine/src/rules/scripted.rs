//! The parts of rule compilation that scripts take part in: connector
//! filters, projection and provisioning rules (each a declarative form or a
//! script, MIM's rules extensions), the metaverse deletion script, and the
//! (metaverse type, attribute) pairs every script's lookups search, which
//! the store must index.

use super::{Compute, Filter, MaCompiler, MaRules, Projection, Provisioning};
use crate::error::EngineError;
use autosync_expr::{Program, RuleScript, ScriptLimits, compile_rule_script};
use autosync_model::{WhenAbsent, script_variables};

impl MaCompiler<'_> {
    pub(super) fn script(&self, rule: &str, text: &str) -> Result<Program, EngineError> {
        autosync_expr::compile_script(text, &ScriptLimits::default())
            .map_err(|e| self.err(rule.to_owned(), e.render(text)))
    }

    pub(super) fn rule_script(
        &self,
        rule: &str,
        text: &str,
        variables: &[&str],
    ) -> Result<RuleScript, EngineError> {
        compile_rule_script(text, variables, &ScriptLimits::default())
            .map_err(|e| self.err(rule.to_owned(), e.render(text)))
    }

    /// The MA's connector filters.
    pub(super) fn filters(&self) -> Result<Vec<Filter>, EngineError> {
        let d = self.def;
        let mut filters = Vec::new();
        for (i, f) in d.filters.iter().enumerate() {
            let rule = format!("filter #{}", i + 1);
            let condition = match (&f.condition, &f.script) {
                (Some(c), None) => self.expr(&rule, c)?,
                (None, Some(s)) => self.script(&rule, s)?,
                _ => {
                    return Err(
                        self.err(rule, "exactly one of `condition` or `script` must be set")
                    );
                }
            };
            filters.push(Filter {
                object_type: self.object_type(&rule, &f.object_type)?,
                condition,
            });
        }
        Ok(filters)
    }

    /// The MA's projection rules.
    pub(super) fn projections(&self) -> Result<Vec<Projection>, EngineError> {
        let d = self.def;
        let mut projections = Vec::new();
        for (i, p) in d.projection.iter().enumerate() {
            let rule = format!("projection rule #{}", i + 1);
            let script = p
                .script
                .as_deref()
                .map(|s| self.script(&rule, s))
                .transpose()?;
            // A script may name the type itself.
            let mv_type = match self.mv_type(&rule, &p.mv_type) {
                Ok(t) => Some(t),
                Err(_) if script.is_some() && p.mv_type.is_none() => None,
                Err(e) => return Err(e),
            };
            projections.push(Projection {
                object_type: self.object_type(&rule, &p.object_type)?,
                mv_type,
                condition: p
                    .condition
                    .as_deref()
                    .map(|c| self.expr(&rule, c))
                    .transpose()?,
                script,
            });
        }
        Ok(projections)
    }

    /// The MA's provisioning rules.
    pub(super) fn provisioning(&self) -> Result<Vec<Provisioning>, EngineError> {
        let d = self.def;
        let mut provisioning = Vec::new();
        for (i, p) in d.provisioning.iter().enumerate() {
            let rule = format!("provisioning rule #{}", i + 1);
            let object_type = match self.object_type(&rule, &p.object_type)? {
                Some(t) => t,
                None if d.object_types.len() == 1 => d.object_types[0].name.clone(),
                None => {
                    return Err(self.err(
                        rule,
                        "`object_type` is needed because the MA has several object types",
                    ));
                }
            };
            let condition = p
                .condition
                .as_deref()
                .map(|c| self.expr(&rule, c))
                .transpose()?;
            let condition_reads = condition
                .as_ref()
                .map(|c| c.attributes().to_vec())
                .unwrap_or_default();
            provisioning.push(Provisioning {
                mv_type: self.mv_type(&rule, &p.mv_type)?,
                object_type,
                condition,
                condition_reads,
                evaluate_absent: p.when_absent == WhenAbsent::Evaluate,
                anchor: match (&p.anchor, &p.script) {
                    (Some(a), _) => Some(self.expr(&rule, a)?),
                    (None, Some(_)) => None,
                    (None, None) => {
                        return Err(self.err(rule, "`anchor` is needed (or a `script`)"));
                    }
                },
                dn: p.dn.as_deref().map(|c| self.expr(&rule, c)).transpose()?,
                adopt: p.adopt,
                script: p
                    .script
                    .as_deref()
                    .map(|s| self.rule_script(&rule, s, script_variables::PROVISIONING))
                    .transpose()?,
            });
        }
        Ok(provisioning)
    }
}

/// A metaverse type's deletion script (MIM's `ShouldDeleteFromMV`).
pub(super) fn deletion_script(mv_type: &str, script: &str) -> Result<RuleScript, EngineError> {
    compile_rule_script(
        script,
        script_variables::MV_DELETION,
        &ScriptLimits::default(),
    )
    .map_err(|e| EngineError::Rules {
        ma: String::new(),
        rule: format!("deletion script of metaverse type `{mv_type}`"),
        message: e.render(script),
    })
}

/// The pairs every script's `mv_find` calls search, once each.
pub(super) fn lookup_pairs(mas: &[MaRules], deletion: &[RuleScript]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |pairs: &[(String, String)]| {
        for p in pairs {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    };
    let compute = |c: &Compute| match c {
        Compute::Program(p) => p.mv_finds().to_vec(),
        _ => Vec::new(),
    };
    for ma in mas {
        for f in &ma.filters {
            add(f.condition.mv_finds());
        }
        for j in &ma.joins {
            for c in &j.conditions {
                add(&compute(&c.cs));
            }
            if let Some(r) = &j.resolve {
                add(r.mv_finds());
            }
        }
        for p in &ma.projections {
            for c in p.condition.iter().chain(&p.script) {
                add(c.mv_finds());
            }
        }
        for f in &ma.inbound {
            add(&compute(&f.source));
        }
        for f in &ma.outbound {
            add(&compute(&f.source));
        }
        for p in &ma.provisioning {
            for c in p.condition.iter().chain(&p.anchor).chain(&p.dn) {
                add(c.mv_finds());
            }
            if let Some(s) = &p.script {
                add(s.mv_finds());
            }
        }
        if let Some(s) = &ma.deprovisioning_script {
            add(s.mv_finds());
        }
    }
    for s in deletion {
        add(s.mv_finds());
    }
    out
}
