//! What a provisioning rule asks for, for one metaverse object on one MA
//! (a [`Plan`] per object), and a provisioning script's decision (MIM's
//! `Provision`): keep what is there, out of scope, one object, or several
//! objects, each known by its anchor.

use super::Fail;
use crate::compute::MvView;
use crate::extensions::{eval_text, run_rule_script, script_failed};
use crate::rules::{MaRules, Provisioning};
use autosync_expr::{Arg, RuleScript};
use autosync_model::MvObject;
use autosync_store::StoreTxn;
use serde_json::{Value as Json, json};

/// One object a provisioning rule wants on its MA. What the script did not
/// give comes from the rule's keys (`object_type`, `anchor`, `dn`).
#[derive(Clone)]
pub(crate) struct Plan<'r> {
    pub rule: &'r Provisioning,
    pub object_type: Option<String>,
    pub anchor: Option<String>,
    pub dn: Option<String>,
}

impl<'r> Plan<'r> {
    /// The rule as its keys say.
    pub fn of(rule: &'r Provisioning) -> Self {
        Plan {
            rule,
            object_type: None,
            anchor: None,
            dn: None,
        }
    }

    pub fn object_type(&self) -> &str {
        self.object_type
            .as_deref()
            .unwrap_or(&self.rule.object_type)
    }
}

/// What a provisioning script decided.
pub(crate) enum Decision<'r> {
    /// Nothing (`()`): keep what is there.
    Keep,
    /// `false` or an empty array: out of scope of this rule.
    Out,
    /// `true` or one map: one object, as the rule provisions it.
    In(Plan<'r>),
    /// An array of maps: these objects, each known by its anchor.
    Several(Vec<Plan<'r>>),
}

/// Run `rule`'s script for `mv` on `target`.
pub(crate) fn decide<'r>(
    txn: &mut dyn StoreTxn,
    target: &MaRules,
    rule: &'r Provisioning,
    script: &RuleScript,
    mv: &MvObject,
) -> Result<Decision<'r>, Fail> {
    let what = || format!("provisioning script of `{}`", target.name);
    let view = MvView(&mv.attributes);
    let vars = [("id", Arg::Json(json!(mv.id)))];
    let answer = run_rule_script(txn, script, &view, &vars, what)?;
    match answer {
        Json::Null => Ok(Decision::Keep),
        Json::Bool(false) => Ok(Decision::Out),
        Json::Bool(true) => Ok(Decision::In(Plan::of(rule))),
        Json::Object(_) => Ok(Decision::In(plan(target, rule, &answer, &what)?)),
        Json::Array(items) if items.is_empty() => Ok(Decision::Out),
        Json::Array(items) => {
            let mut plans: Vec<Plan<'r>> = Vec::with_capacity(items.len());
            for item in &items {
                let mut p = plan(target, rule, item, &what)?;
                if p.anchor.is_none() {
                    let Some(anchor) = &rule.anchor else {
                        return Err(script_failed(
                            &what(),
                            "each object the script returns needs an `anchor` (the rule has none)"
                                .into(),
                        ));
                    };
                    p.anchor = eval_text(txn, anchor, &view, what)?;
                }
                let Some(anchor) = p.anchor.as_deref() else {
                    return Err(Fail::Object {
                        error_type: "provisioning-failed",
                        detail: format!("{}: an object has no anchor", what()),
                    });
                };
                if plans.iter().any(|o| o.anchor.as_deref() == Some(anchor)) {
                    return Err(script_failed(
                        &what(),
                        format!(
                            "two objects have the anchor `{anchor}`: each object needs its own"
                        ),
                    ));
                }
                plans.push(p);
            }
            Ok(Decision::Several(plans))
        }
        other => Err(script_failed(
            &what(),
            format!(
                "the script returned {other}; return true, false, nothing, a map #{{ anchor, dn, object_type }} or an array of them"
            ),
        )),
    }
}

/// One object of a script's answer: a map of `anchor`, `dn`, `object_type`.
fn plan<'r>(
    target: &MaRules,
    rule: &'r Provisioning,
    item: &Json,
    what: &dyn Fn() -> String,
) -> Result<Plan<'r>, Fail> {
    let Json::Object(map) = item else {
        return Err(script_failed(
            &what(),
            format!(
                "{item} is not an object: return maps such as #{{ anchor: \"u1\", dn: \"...\" }}"
            ),
        ));
    };
    let mut p = Plan::of(rule);
    for (key, value) in map {
        let text = match value {
            Json::Null => None,
            Json::String(s) if s.is_empty() => None,
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            other => {
                return Err(script_failed(
                    &what(),
                    format!("`{key}` is {other}; give text"),
                ));
            }
        };
        match key.as_str() {
            "anchor" => p.anchor = text,
            "dn" => p.dn = text,
            "object_type" => {
                if let Some(t) = &text
                    && !target.object_types.contains(t)
                {
                    return Err(script_failed(
                        &what(),
                        format!(
                            "`{}` has no object type `{t}` (it has: {})",
                            target.name,
                            target.object_types.join(", ")
                        ),
                    ));
                }
                p.object_type = text;
            }
            other => {
                return Err(script_failed(
                    &what(),
                    format!(
                        "unknown key `{other}` in an object: use `anchor`, `dn` and `object_type`"
                    ),
                ));
            }
        }
    }
    Ok(p)
}
