//! Join rules compiled: each condition's CS side (an attribute or `expr`)
//! and MV side (an attribute, or `mv_expr`, whose values the store keeps
//! in a derived join index), the join indexes they need, and how values
//! compare: as text, ignoring the case of strings unless the rule is
//! `case_sensitive` (the store's index always holds folded texts, so a
//! case-sensitive rule compares its candidates again).

use super::{MaCompiler, Rules, applies};
use crate::compute::{Compute, MvView};
use crate::error::EngineError;
use autosync_expr::Program;
use autosync_model::{FlowSource, MvObject, Value};
use autosync_store::{MvIndexDef, MvKeyDerive, fold_case};
use std::borrow::Cow;
use std::sync::Arc;

/// The MV side of a join condition.
pub(crate) enum JoinMv {
    /// The values of an MV attribute.
    Attribute(String),
    /// The values an expression over the MV object computes (`mv_expr`).
    Expression(MvExpr),
}

/// An `mv_expr`: its program and the name of its derived join index.
#[derive(Clone)]
pub(crate) struct MvExpr {
    pub index: String,
    pub program: Program,
}

impl MvExpr {
    /// Its value for `obj`; `None` when absent, empty, or when it fails
    /// (an object whose key cannot be computed is found by no join; the
    /// store's index holds no key for it either).
    fn eval(&self, obj: &MvObject) -> Option<Value> {
        self.program
            .eval(&MvView(&obj.attributes))
            .ok()
            .flatten()
            .filter(|v| !v.is_empty())
    }
}

impl MvKeyDerive for MvExpr {
    fn reads(&self) -> &[String] {
        self.program.attributes()
    }
    fn derive(&self, obj: &MvObject) -> Option<Value> {
        self.eval(obj)
    }
}

impl JoinMv {
    /// The join index lookups of this side use: the attribute, or the
    /// derived index's name.
    pub fn index(&self) -> &str {
        match self {
            JoinMv::Attribute(a) => a,
            JoinMv::Expression(e) => &e.index,
        }
    }

    /// The value of this side for `obj`.
    pub fn value<'a>(&self, obj: &'a MvObject) -> Option<Cow<'a, Value>> {
        match self {
            JoinMv::Attribute(a) => obj.get(a).map(Cow::Borrowed),
            JoinMv::Expression(e) => e.eval(obj).map(Cow::Owned),
        }
    }

    /// The MV attributes it reads.
    pub fn reads(&self) -> Vec<String> {
        match self {
            JoinMv::Attribute(a) => vec![a.clone()],
            JoinMv::Expression(e) => e.program.attributes().to_vec(),
        }
    }
}

pub(crate) struct JoinCondition {
    pub cs: Compute,
    pub mv: JoinMv,
}

pub(crate) struct JoinRule {
    pub object_type: Option<String>,
    pub mv_type: String,
    pub conditions: Vec<JoinCondition>,
    /// Strings compare exactly (the default ignores case, as MIM does).
    pub case_sensitive: bool,
    /// Picks one of the candidates (MIM's `ResolveJoinSearch`).
    pub resolve: Option<autosync_expr::RuleScript>,
}

impl JoinRule {
    pub fn applies(&self, object_type: &str) -> bool {
        applies(&self.object_type, object_type)
    }
}

/// The name of the derived join index of an `mv_expr`: its text, so that
/// an edited expression is a new index, built from the stored objects.
fn mv_expr_index(source: &str) -> String {
    format!("mv_expr:{source}")
}

/// Whether a CS value and an MV value match: some text of one equals some
/// text of the other (each value of a multi-value; values of any type as
/// text), strings ignoring case unless `case_sensitive`. An absent or
/// empty value matches nothing.
pub(crate) fn values_match(cs: Option<&Value>, mv: Option<&Value>, case_sensitive: bool) -> bool {
    let (Some(cs), Some(mv)) = (cs.filter(|v| !v.is_empty()), mv.filter(|v| !v.is_empty())) else {
        return false;
    };
    let mut wanted: Vec<Cow<'_, str>> = Vec::new();
    texts(cs, case_sensitive, &mut |t| wanted.push(t));
    let mut found = false;
    texts(mv, case_sensitive, &mut |t| {
        found = found || wanted.contains(&t);
    });
    found
}

/// Each text of `v` (see [`values_match`]).
pub(crate) fn texts<'a>(v: &'a Value, case_sensitive: bool, f: &mut dyn FnMut(Cow<'a, str>)) {
    match v {
        Value::Multi(vs) => vs.iter().for_each(|v| texts(v, case_sensitive, f)),
        Value::String(s) if case_sensitive => f(Cow::Borrowed(s)),
        Value::String(s) => f(fold_case(s)),
        other => f(Cow::Owned(other.to_text())),
    }
}

impl Rules {
    /// The join indexes join rules look up: the MV side of each rule's
    /// first condition (the others are compared on the candidates).
    pub fn join_index(&self) -> Vec<MvIndexDef> {
        let mut out: Vec<MvIndexDef> = Vec::new();
        for ma in &self.mas {
            for j in &ma.joins {
                let Some(first) = j.conditions.first() else {
                    continue;
                };
                let def = match &first.mv {
                    JoinMv::Attribute(a) => MvIndexDef::attribute(&j.mv_type, a),
                    JoinMv::Expression(e) => {
                        MvIndexDef::derived(&j.mv_type, &e.index, Arc::new(e.clone()))
                    }
                };
                if !out.contains(&def) {
                    out.push(def);
                }
            }
        }
        out
    }
}

impl MaCompiler<'_> {
    /// The MA's join rules.
    pub(super) fn joins(&self) -> Result<Vec<JoinRule>, EngineError> {
        let mut joins = Vec::new();
        for (i, j) in self.def.join.iter().enumerate() {
            let rule = format!("join rule #{}", i + 1);
            let mv_type = self.mv_type(&rule, &j.mv_type)?;
            let mut conditions = Vec::new();
            for c in &j.on {
                let cs = match (&c.cs, &c.expr, &c.script) {
                    (Some(a), None, None) => Compute::Attribute(a.clone()),
                    (None, Some(e), None) => self.source(&rule, Some(FlowSource::Expression(e)))?,
                    (None, None, Some(s)) => self.source(&rule, Some(FlowSource::Script(s)))?,
                    _ => {
                        return Err(self.err(
                            rule,
                            "each condition needs exactly one of `cs`, `expr` or `script`",
                        ));
                    }
                };
                let mv = match (&c.mv, &c.mv_expr) {
                    (Some(a), None) => JoinMv::Attribute(a.clone()),
                    (None, Some(e)) => {
                        let program = self.expr(&rule, e)?;
                        match program.as_attribute() {
                            Some(a) => JoinMv::Attribute(a.to_owned()),
                            None => JoinMv::Expression(MvExpr {
                                index: mv_expr_index(e),
                                program,
                            }),
                        }
                    }
                    _ => {
                        return Err(self.err(
                            rule,
                            "each condition needs exactly one of `mv` or `mv_expr`",
                        ));
                    }
                };
                for a in mv.reads() {
                    self.mv_attr(&rule, &mv_type, &a)?;
                }
                conditions.push(JoinCondition { cs, mv });
            }
            if conditions.is_empty() {
                return Err(self.err(rule, "a join rule needs at least one condition in `on`"));
            }
            let resolve = j
                .resolve
                .as_deref()
                .map(|s| self.rule_script(&rule, s, autosync_model::script_variables::JOIN_RESOLVE))
                .transpose()?;
            joins.push(JoinRule {
                object_type: self.object_type(&rule, &j.object_type)?,
                mv_type,
                conditions,
                case_sensitive: j.case_sensitive,
                resolve,
            });
        }
        Ok(joins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_should_match_ignoring_case_unless_the_rule_is_case_sensitive() {
        let a = Value::from("Ada.Lovelace@Example.com");
        let b = Value::from("ada.lovelace@example.com");
        assert!(values_match(Some(&a), Some(&b), false));
        assert!(!values_match(Some(&a), Some(&b), true));
        assert!(values_match(Some(&a), Some(&a), true));
        assert!(values_match(
            Some(&Value::from("ÜNAL")),
            Some(&Value::from("ünal")),
            false
        ));
    }

    #[test]
    fn any_value_of_a_multi_value_should_match_and_other_types_compare_as_text() {
        let mails = Value::Multi(vec![Value::from("a@x"), Value::from("B@X")]);
        assert!(values_match(Some(&Value::from("b@x")), Some(&mails), false));
        assert!(values_match(Some(&mails), Some(&Value::from("A@x")), false));
        assert!(!values_match(
            Some(&Value::from("c@x")),
            Some(&mails),
            false
        ));
        assert!(values_match(
            Some(&Value::Integer(17)),
            Some(&Value::from("17")),
            false
        ));
        // Binary data is compared exactly (its text is base64).
        let bin = Value::Binary(b"AB".to_vec());
        let lower = Value::from(bin.to_text().to_lowercase().as_str());
        assert!(!values_match(Some(&lower), Some(&bin), false));
    }

    #[test]
    fn absent_or_empty_values_should_match_nothing() {
        let empty = Value::from("");
        assert!(!values_match(Some(&empty), Some(&empty), false));
        assert!(!values_match(None, None, false));
        assert!(!values_match(Some(&Value::from("a")), None, false));
    }
}
