//! Rules extensions as scripts: what the engine gives a script besides the
//! object it is about. Metaverse lookups (`mv_find`, `mv_connectors`) are
//! answered from the sync's own store transaction, so a script sees the
//! metaverse objects written earlier in the same sync (two people with the
//! same name in one batch get different account names); the attributes
//! lookups search are gathered once, when the rules compile, for the
//! store's index. Programs that make no lookup and read no `mv` are
//! evaluated without any of this (no store read, no set-up per object).

use crate::compute::{AttrView, Compute, CsView, MvView};
use crate::rules::MaRules;
use crate::sync::{Action, Fail, expression_failed};
use autosync_expr::{Arg, Context, EvalError, FoundMv, Lookup, Metaverse, MvConnector, RuleScript};
use autosync_model::{CsObject, DeprovisionAction, MvObject, Value};
use autosync_store::{StoreError, StoreRead, StoreTxn};
use serde_json::{Value as Json, json};
use std::borrow::Cow;

/// Lookups answered from the store (a sync's transaction, or a read view
/// for `cs`'s filtered disconnectors). A store failure is kept aside: it
/// stops the step, it is not the object's error.
pub(crate) struct StoreMetaverse<'r> {
    pub read: &'r mut dyn StoreRead,
    pub failed: Option<StoreError>,
}

impl StoreMetaverse<'_> {
    fn store<T>(&mut self, r: Result<T, StoreError>) -> Result<T, EvalError> {
        r.map_err(|e| {
            let message = format!("the store failed: {e}");
            self.failed = Some(e);
            EvalError {
                message,
                script: true,
            }
        })
    }
}

impl Metaverse for StoreMetaverse<'_> {
    fn find(
        &mut self,
        object_type: &str,
        attr: &str,
        value: &Value,
    ) -> Result<Vec<FoundMv>, EvalError> {
        let r = self.read.mv_find(object_type, attr, value);
        let ids = self.store(r)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let r = self.read.mv_get_many(&ids);
        let mut found: Vec<FoundMv> = self
            .store(r)?
            .into_iter()
            .map(|mv| FoundMv {
                id: mv.id,
                object_type: mv.object_type,
                attributes: mv
                    .attributes
                    .into_iter()
                    .map(|(k, v)| (k, v.value))
                    .collect(),
            })
            .collect();
        found.sort_by_key(|f| f.id);
        Ok(found)
    }

    fn connectors(&mut self, id: i64) -> Result<Vec<MvConnector>, EvalError> {
        let r = self.read.cs_by_mv(id);
        let mut found: Vec<MvConnector> = self
            .store(r)?
            .into_iter()
            .map(|x| MvConnector {
                ma: x.ma,
                anchor: x.anchor,
                dn: x.dn,
                object_type: x.object_type,
            })
            .collect();
        found.sort_by(|a, b| (&a.ma, &a.anchor).cmp(&(&b.ma, &b.anchor)));
        Ok(found)
    }
}

/// Run `f` in a script context: `mv` (an import flow's metaverse object)
/// and lookups answered from `txn`. An evaluation error is the object's
/// (`what` names the rule); a store failure stops the step.
pub(crate) fn in_context<T>(
    txn: &mut dyn StoreTxn,
    mv: Option<&dyn Lookup>,
    what: impl FnOnce() -> String,
    f: impl FnOnce(&mut Context<'_>) -> Result<T, EvalError>,
) -> Result<T, Fail> {
    let mut metaverse = StoreMetaverse {
        read: txn,
        failed: None,
    };
    let result = f(&mut Context {
        mv,
        metaverse: Some(&mut metaverse),
    });
    if let Some(e) = metaverse.failed {
        return Err(Fail::Store(e));
    }
    result.map_err(|e| expression_failed(&what(), e))
}

/// Evaluate a computed value, in a script context only when it needs one.
/// (Inlined, the script case apart: every flow of every object comes
/// through here.)
#[inline(always)]
pub(crate) fn eval_source<'a>(
    txn: &mut dyn StoreTxn,
    source: &'a Compute,
    view: &'a dyn Lookup,
    mv: Option<&dyn Lookup>,
    what: impl Fn() -> String,
) -> Result<Option<Cow<'a, Value>>, Fail> {
    match source {
        Compute::Program(p) if p.needs_context() => {
            no_reference(eval_in_context(txn, p, view, mv, &what)?, &what)
        }
        Compute::Program(_) => no_reference(
            source
                .eval_ref(view)
                .map_err(|e| expression_failed(&what(), e))?,
            &what,
        ),
        _ => source
            .eval_ref(view)
            .map_err(|e| expression_failed(&what(), e)),
    }
}

/// A script's result with no reference in it: a reference reaches an
/// attribute only by a reference flow (`from`), never as the metaverse
/// object's id.
fn no_reference<'a>(
    v: Option<Cow<'a, Value>>,
    what: impl FnOnce() -> String,
) -> Result<Option<Cow<'a, Value>>, Fail> {
    let found = match v.as_deref() {
        Some(Value::Reference(id)) => Some(*id),
        Some(Value::Multi(vs)) => vs.iter().find_map(|x| match x {
            Value::Reference(id) => Some(*id),
            _ => None,
        }),
        _ => None,
    };
    match found {
        None => Ok(v),
        Some(id) => Err(expression_failed(
            &what(),
            format!(
                "the script returned a reference (to metaverse object {id}), which only a reference flow carries (`from` of a reference attribute into one declared under `references`); to use the referred object's values, look it up: `mv_connectors(ref)` gives its connectors"
            ),
        )),
    }
}

/// [`eval_source`] of a program that needs a script context.
#[inline(never)]
fn eval_in_context<'a>(
    txn: &mut dyn StoreTxn,
    p: &autosync_expr::Program,
    view: &'a dyn Lookup,
    mv: Option<&dyn Lookup>,
    what: impl FnOnce() -> String,
) -> Result<Option<Cow<'a, Value>>, Fail> {
    in_context(txn, mv, what, |ctx| {
        Ok(p.eval_in(view, ctx)?.map(Cow::<Value>::Owned))
    })
    .map(|v| v.filter(|v| !v.is_empty()))
}

/// Evaluate a condition, in a script context only when it needs one.
#[inline]
pub(crate) fn eval_condition(
    txn: &mut dyn StoreTxn,
    program: &autosync_expr::Program,
    view: &dyn Lookup,
    what: impl FnOnce() -> String,
) -> Result<bool, Fail> {
    if program.needs_context() {
        in_context(txn, None, what, |ctx| program.eval_bool_in(view, ctx))
    } else {
        program
            .eval_bool(view)
            .map_err(|e| expression_failed(&what(), e))
    }
}

/// A program's value as text (see [`crate::compute::eval_text`]), in a
/// script context only when it needs one.
pub(crate) fn eval_text(
    txn: &mut dyn StoreTxn,
    program: &autosync_expr::Program,
    view: &dyn Lookup,
    what: impl FnOnce() -> String,
) -> Result<Option<String>, Fail> {
    if program.needs_context() {
        in_context(txn, None, what, |ctx| {
            Ok(program
                .eval_in(view, ctx)?
                .filter(|v| !v.is_empty())
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_text(),
                }))
        })
    } else {
        crate::compute::eval_text(program, view).map_err(|e| expression_failed(&what(), e))
    }
}

/// Run a rules script over `attrs` with its variables.
pub(crate) fn run_rule_script(
    txn: &mut dyn StoreTxn,
    script: &RuleScript,
    attrs: &dyn Lookup,
    variables: &[(&str, Arg<'_>)],
    what: impl FnOnce() -> String,
) -> Result<serde_json::Value, Fail> {
    if script.makes_lookups() {
        in_context(txn, None, what, |ctx| script.run(attrs, variables, ctx))
    } else {
        script
            .run(attrs, variables, &mut Context::default())
            .map_err(|e| expression_failed(&what(), e))
    }
}

/// A connector as scripts see it: `#{ ma, anchor, dn, object_type }`.
pub(crate) fn connector_arg(x: &CsObject) -> Arg<'static> {
    Arg::Json(serde_json::json!({
        "ma": x.ma,
        "anchor": x.anchor,
        "dn": x.dn,
        "object_type": x.object_type,
        "provisioned": x.provisioned,
    }))
}

/// MIM's `ResolveJoinSearch`: the join rule's script picks one of the
/// candidates its conditions found (by `id`), or none (then the next join
/// rule is tried).
pub(crate) fn resolve_join(
    txn: &mut dyn StoreTxn,
    script: &RuleScript,
    cs: &CsObject,
    mut found: Vec<MvObject>,
    what: impl Fn() -> String,
) -> Result<Option<MvObject>, Fail> {
    let views: Vec<MvView<'_>> = found.iter().map(|m| MvView(&m.attributes)).collect();
    let candidates = found
        .iter()
        .zip(&views)
        .map(|(m, view)| {
            Arg::Map(vec![
                ("id", Arg::Json(json!(m.id))),
                ("object_type", Arg::Json(json!(m.object_type))),
                ("attrs", Arg::Attrs(view)),
            ])
        })
        .collect();
    let vars = [("candidates", Arg::List(candidates))];
    let answer = run_rule_script(txn, script, &CsView(cs), &vars, &what)?;
    drop(vars);
    drop(views);
    let chosen = match answer {
        Json::Null | Json::Bool(false) => return Ok(None),
        Json::Number(n) => n.as_i64(),
        _ => None,
    };
    let ids = || {
        found
            .iter()
            .map(|m| m.id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(id) = chosen else {
        return Err(script_failed(
            &what(),
            format!(
                "the script must return the chosen candidate's `id` (one of {}) or nothing",
                ids()
            ),
        ));
    };
    match found.iter().position(|m| m.id == id) {
        Some(i) => Ok(Some(found.swap_remove(i))),
        None => Err(script_failed(
            &what(),
            format!(
                "the script chose id {id}, which is not a candidate (ids {})",
                ids()
            ),
        )),
    }
}

/// MIM's `ShouldDeleteFromMV`: the metaverse type's deletion script
/// decides whether `mv` goes now that `leaving` disconnected from it.
pub(crate) fn should_delete(
    txn: &mut dyn StoreTxn,
    script: &RuleScript,
    mv: &MvObject,
    leaving: &CsObject,
    others: &[(CsObject, Action)],
) -> Result<bool, Fail> {
    let connectors = others
        .iter()
        .filter(|(_, a)| *a != Action::Delete)
        .map(|(x, _)| connector_arg(x))
        .collect();
    let vars = [
        ("id", Arg::Json(json!(mv.id))),
        ("leaving", connector_arg(leaving)),
        ("connectors", Arg::List(connectors)),
    ];
    let what = || format!("deletion script of metaverse type `{}`", mv.object_type);
    match run_rule_script(txn, script, &MvView(&mv.attributes), &vars, what)? {
        Json::Bool(b) => Ok(b),
        Json::Null => Ok(false),
        other => Err(script_failed(
            &what(),
            format!(
                "the script returned {other}; return true to delete the metaverse object, false to keep it"
            ),
        )),
    }
}

/// MIM's `Deprovision`: the MA's script decides what happens to one of its
/// connectors; nothing means the MA's `deprovisioning`.
pub(crate) fn deprovision_action(
    txn: &mut dyn StoreTxn,
    ma: &MaRules,
    x: &CsObject,
    reason: &str,
) -> Result<DeprovisionAction, Fail> {
    let Some(script) = &ma.deprovisioning_script else {
        return Ok(ma.deprovisioning);
    };
    let vars = [
        ("cs", connector_arg(x)),
        ("reason", Arg::Json(json!(reason))),
    ];
    let what = || format!("deprovisioning script of `{}`", ma.name);
    match run_rule_script(txn, script, &AttrView(&x.hologram), &vars, what)? {
        Json::Null => Ok(ma.deprovisioning),
        Json::String(s) if s == "delete" => Ok(DeprovisionAction::Delete),
        Json::String(s) if s == "disconnect" => Ok(DeprovisionAction::Disconnect),
        Json::String(s) if s == "explicit-disconnector" => {
            Ok(DeprovisionAction::ExplicitDisconnector)
        }
        other => Err(script_failed(
            &what(),
            format!(
                "the script returned {other}; return \"delete\", \"disconnect\", \"explicit-disconnector\" or nothing"
            ),
        )),
    }
}

/// A script's result the rule cannot use: the object's error.
pub(crate) fn script_failed(what: &str, detail: String) -> Fail {
    Fail::Object {
        error_type: "expression-failed",
        detail: format!("{what}: {detail}"),
    }
}
