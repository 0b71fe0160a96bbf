//! Rules 2 and 3 of MIM's order for a disconnector: the join rules in
//! order (one candidate joins; a candidate another object of the MA holds
//! is `already-joined`; several, held or not, are `ambiguous-join`), then
//! projection;
//! and whether an object whose type changed still joins its person.

use super::inbound::accept;
use super::unjoined::placeholder;
use super::{Fail, Syncer, expression_failed};
use crate::compute::CsView;
use crate::extensions::{eval_condition, eval_source, in_context, resolve_join};
use crate::rules::{JoinRule, MaRules, Rules, values_match};
use autosync_model::{Connection, CsObject, ImportKind, MvObject, Value};
use autosync_store::StoreTxn;
use std::borrow::Cow;

/// Whether metaverse object `mv`, a candidate the join index found for the
/// first condition's value, meets every condition of `rule`, given the CS
/// side's `values`: any value of a multi-valued one matches; strings
/// ignore case unless the rule is case-sensitive (the index ignores case,
/// so such a rule compares the first condition again).
fn join_matches(rule: &JoinRule, values: &[Option<Cow<'_, Value>>], mv: &MvObject) -> bool {
    let skip = usize::from(!rule.case_sensitive);
    rule.conditions
        .iter()
        .zip(values)
        .skip(skip)
        .all(|(c, v)| values_match(v.as_deref(), c.mv.value(mv).as_deref(), rule.case_sensitive))
}

/// Whether one of `target`'s join rules joins its object `x` to `mv`
/// (every condition met; the first case-insensitively unless the rule is
/// case-sensitive, as the index compares it).
pub(crate) fn joins_to(
    txn: &mut dyn StoreTxn,
    target: &crate::rules::MaRules,
    x: &CsObject,
    mv: &MvObject,
) -> Result<bool, Fail> {
    let view = CsView(x);
    for (i, rule) in target.joins.iter().enumerate() {
        if !rule.applies(&x.object_type) || rule.mv_type != mv.object_type {
            continue;
        }
        let what = || format!("join rule #{} of `{}`", i + 1, target.name);
        let mut values = Vec::with_capacity(rule.conditions.len());
        for c in &rule.conditions {
            values.push(eval_source(txn, &c.cs, &view, None, what)?);
        }
        if values.iter().any(Option::is_none) {
            continue;
        }
        let all = rule.conditions.iter().zip(&values).all(|(c, v)| {
            values_match(v.as_deref(), c.mv.value(mv).as_deref(), rule.case_sensitive)
        });
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

impl<'a> Syncer<'a> {
    /// Whether connector `cs`, whose pending import is a delete-add (a new
    /// object type), joins in its new state the metaverse object it is
    /// joined to. Without that, its disconnection could delete that object
    /// (the deletion rule) while the join that follows takes it again: a
    /// connector of a deleted object, and its accounts deprovisioned (found
    /// by a black-box review).
    pub(super) fn rejoins(&mut self, txn: &mut dyn StoreTxn, cs: &CsObject) -> Result<bool, Fail> {
        let Some(current) = cs.connection.mv_id().filter(|id| *id != 0) else {
            return Ok(false);
        };
        let mut probe = cs.clone();
        accept(&mut probe);
        probe.connection = Connection::Disconnector;
        match self.join(txn, &probe) {
            Ok(found) => Ok(found.is_some_and(|mv| mv.id == current)),
            Err(Fail::Store(e)) => Err(Fail::Store(e)),
            Err(Fail::Object { .. }) => Ok(false),
        }
    }

    /// Rule 2: the join rules in order; exactly one candidate joins.
    pub(super) fn join(
        &mut self,
        txn: &mut dyn StoreTxn,
        cs: &CsObject,
    ) -> Result<Option<MvObject>, Fail> {
        let ma = self.ma;
        let view = CsView(cs);
        // Candidates another object of this MA is joined to (not one on
        // its way out): an object joins one object per MA.
        let mut taken_by: Option<(autosync_model::MvId, String, usize)> = None;
        // Whether a rule found a candidate no other object has (one a
        // resolution script then turned down included).
        let mut any_free = false;
        for (i, rule) in ma.joins.iter().enumerate() {
            if !rule.applies(&cs.object_type) {
                continue;
            }
            let what = || format!("join rule #{}", i + 1);
            let mut values = Vec::with_capacity(rule.conditions.len());
            for c in &rule.conditions {
                values.push(eval_source(txn, &c.cs, &view, None, what)?);
            }
            let Some(Some(first)) = values.first() else {
                continue;
            };
            if values.iter().any(Option::is_none) {
                continue;
            }
            let first_mv = &rule.conditions[0].mv;
            let ids = if self.join_surely_absent(i, cs.id, first) {
                Vec::new()
            } else {
                txn.mv_find(&rule.mv_type, first_mv.index(), first)?
            };
            let mut found = Vec::new();
            // Candidates this rule matched that another object of the MA
            // holds: they still make the rule's match ambiguous.
            let mut held = Vec::new();
            for id in ids {
                let Some(mv) = self.mv_load(txn, id)? else {
                    continue;
                };
                if !join_matches(rule, &values, &mv) {
                    continue;
                }
                let others: Vec<CsObject> = txn
                    .cs_by_mv(id)?
                    .into_iter()
                    .filter(|x| x.ma == ma.name && x.id != cs.id)
                    .collect();
                // An add provisioning staged of this type and never
                // exported: this object, there already, takes its place
                // (see `drop_placeholder`).
                let free = others
                    .iter()
                    .all(|o| placeholder(o) && o.object_type == cs.object_type);
                let holder = others.into_iter().find(|o| {
                    !placeholder(o)
                        && !o
                            .pending_import
                            .as_ref()
                            .is_some_and(|p| p.kind == ImportKind::Delete)
                });
                match holder {
                    _ if free => found.push(mv),
                    Some(o) => {
                        held.push(format!("{id} (joined to `{}`)", o.anchor));
                        taken_by.get_or_insert((id, o.anchor, i));
                    }
                    None => {}
                }
            }
            any_free |= !found.is_empty();
            if let Some(script) = &rule.resolve
                && !found.is_empty()
            {
                match resolve_join(txn, script, cs, found, what)? {
                    Some(mv) => return Ok(Some(mv)),
                    None => continue,
                }
            }
            match found.len() {
                0 => continue,
                1 if held.is_empty() => return Ok(found.pop()),
                // A rule that matches several people names none of them,
                // even when all but one are joined already (MIM joins the
                // one left, so which one depends on the order objects are
                // synchronised in; see coming-from-mim.md).
                n => {
                    // Each candidate with its value: they may differ only
                    // in case.
                    // Each candidate with its values of every condition
                    // (two people of one first name read alike by the
                    // first alone).
                    let mut candidates: Vec<String> = found
                        .iter()
                        .map(|m| {
                            let vals: Vec<String> = rule
                                .conditions
                                .iter()
                                .filter_map(|c| c.mv.value(m).map(|v| format!("`{v}`")))
                                .collect();
                            if vals.is_empty() {
                                m.id.to_string()
                            } else {
                                format!("{} ({})", m.id, vals.join(" "))
                            }
                        })
                        .collect();
                    let n = n + held.len();
                    candidates.append(&mut held);
                    let compared = if rule.case_sensitive {
                        ""
                    } else {
                        ", ignoring case"
                    };
                    let on: Vec<String> = rule
                        .conditions
                        .iter()
                        .zip(&values)
                        .map(|(c, v)| match v {
                            Some(v) => format!("`{}` = `{v}`", c.mv.index()),
                            None => format!("`{}`", c.mv.index()),
                        })
                        .collect();
                    return Err(Fail::Object {
                        error_type: "ambiguous-join",
                        detail: format!(
                            "{} matches {n} metaverse objects of type `{}` on {}{compared}: ids {}",
                            what(),
                            rule.mv_type,
                            on.join(" and "),
                            candidates.join(", ")
                        ),
                    });
                }
            }
        }
        if let Some((id, anchor, i)) = taken_by.filter(|_| !any_free) {
            // Neither joined nor projected: a second object for one person
            // (a duplicate row, an admin account next to the person's own)
            // would otherwise become a second person, or stay aside
            // unnoticed.
            return Err(Fail::Object {
                error_type: "already-joined",
                detail: format!(
                    "join rule #{} matches metaverse object {id}, which object `{anchor}` of `{}` is joined to already: an object joins at most one object of each MA, so this one is neither joined nor projected; if both are one person's, remove or filter out the other; if they are two, make the join rules tell them apart",
                    i + 1,
                    ma.name
                ),
            });
        }
        Ok(None)
    }

    /// Rule 2: the first projection rule that applies, if any (its
    /// metaverse type).
    pub(super) fn projection(
        &self,
        txn: &mut dyn StoreTxn,
        cs: &CsObject,
    ) -> Result<Option<&'a str>, Fail> {
        let ma: &'a MaRules = self.ma;
        for (i, p) in ma.projections.iter().enumerate() {
            if !p.applies(&cs.object_type) {
                continue;
            }
            let what = || format!("projection rule #{}", i + 1);
            if let Some(script) = &p.script {
                match self.projection_script(txn, script, p.mv_type.as_deref(), cs, what)? {
                    Some(t) => return Ok(Some(t)),
                    None => continue,
                }
            }
            let met = match &p.condition {
                None => true,
                Some(c) => eval_condition(txn, c, &CsView(cs), what)?,
            };
            if met {
                return Ok(p.mv_type.as_deref());
            }
        }
        Ok(None)
    }

    /// A projection script's decision (MIM's `ShouldProjectToMV`): `true`
    /// projects as the rule's type, a string as the type it names.
    fn projection_script(
        &self,
        txn: &mut dyn StoreTxn,
        script: &autosync_expr::Program,
        rule_type: Option<&'a str>,
        cs: &CsObject,
        what: impl Fn() -> String,
    ) -> Result<Option<&'a str>, Fail> {
        let view = CsView(cs);
        let v = if script.needs_context() {
            in_context(txn, None, &what, |ctx| script.eval_in(&view, ctx))?
        } else {
            script
                .eval(&view)
                .map_err(|e| expression_failed(&what(), e))?
        };
        let rules: &'a Rules = self.rules;
        let failed = |detail: String| Fail::Object {
            error_type: "expression-failed",
            detail: format!("{}: {detail}", what()),
        };
        match v {
            None | Some(Value::Boolean(false)) => Ok(None),
            Some(Value::Boolean(true)) => rule_type.map(Some).ok_or_else(|| {
                failed("the script returned true, but the rule has no `mv_type`: return the metaverse type's name".into())
            }),
            Some(Value::String(t)) => match rules.mv_types.get_key_value(&t) {
                Some((name, _)) => Ok(Some(name.as_str())),
                None => Err(failed(format!(
                    "the script names metaverse type `{t}`, which is not declared"
                ))),
            },
            Some(other) => Err(failed(format!(
                "the script returned {}; return true, false, nothing or a metaverse type's name",
                other.to_text()
            ))),
        }
    }
}
