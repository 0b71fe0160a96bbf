//! Rule 4 of synchronisation: for a metaverse object, outbound flows to its
//! connectors on target MAs (staging pending export updates where the value
//! differs from hologram + unconfirmed + pending export), provisioning
//! (adds, renames; one object per MA, or several when a provisioning script
//! asks for them) and deprovisioning per the target MA's action (or its
//! deprovisioning script).

use super::deprovision::Deprovision;
use super::plan::{Decision, Plan, decide};
use super::staging::{
    cancel_rename, confirmed, drop_changes, effective, few_values, pending_update_of,
    stage_changes, stage_rename, stage_values, write_only_change, write_only_failed,
};
use super::{Action, Fail, MvWork, Syncer};
use crate::compute::MvView;
use crate::extensions::{eval_condition, eval_source, eval_text};
use crate::refs::{Referrer, resolve_out};
use crate::rules::{MaRules, OutboundFlow};
use crate::values::{dn_folded, same_in};
use autosync_model::{
    AttrChanges, Connection, CsObject, ExportKind, MvObject, OutboundCounters, PendingExport,
    RefBy, SyncCounters, Value, ValueDelta,
};
use autosync_store::{OutWaitTargets, StoreTxn};
use std::borrow::Cow;

/// Count on the outbound counters of target `ma` (its name is copied only
/// the first time).
pub(super) fn count_outbound(
    counters: &mut SyncCounters,
    ma: &str,
    count: impl FnOnce(&mut OutboundCounters),
) {
    match counters.outbound.get_mut(ma) {
        Some(c) => count(c),
        None => count(counters.outbound.entry(ma.to_owned()).or_default()),
    }
}

fn is_connector_of(x: &CsObject, mv: &MvObject) -> bool {
    x.connection == Connection::Connector { mv_id: mv.id }
}

/// What a target MA's provisioning rules say of one metaverse object.
#[derive(Clone)]
pub(crate) enum Scope<'r> {
    /// The MA has no provisioning rule for the object's type.
    NoRule,
    /// The object meets this rule's condition (and its script, if any,
    /// asked for one object).
    In(Plan<'r>),
    /// An attribute this rule's condition reads has no value (and the rule
    /// does not evaluate absent values), or its script returned nothing:
    /// what is there stays as it is.
    Undecided(&'r crate::rules::Provisioning),
    /// The object meets no rule's condition.
    Out,
    /// The rule's script asked for these objects, each known by its
    /// anchor: a connector whose anchor is not among them is out of scope.
    Several(Vec<Plan<'r>>),
}

impl<'r> Scope<'r> {
    /// The scope of one connector: under [`Scope::Several`], in scope when
    /// its anchor is asked for, else out.
    fn of(&self, x: &CsObject) -> Scope<'r> {
        match self {
            Scope::Several(plans) => plans
                .iter()
                .find(|p| p.anchor.as_deref() == Some(x.anchor.as_str()))
                .map_or(Scope::Out, |p| Scope::In(p.clone())),
            other => other.clone(),
        }
    }
}

pub(super) fn leaving(x: &CsObject) -> bool {
    x.pending_export
        .as_ref()
        .is_some_and(|p| p.kind == ExportKind::Delete)
}

impl Syncer<'_> {
    /// Rule 4 for one metaverse object. `(to_others, to_self)`: refresh the
    /// connectors on other MAs, and the source on its own MA. Returns what
    /// becomes of the source (kept, changed, or removed from its connector
    /// space).
    pub(crate) fn outbound(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &mut MvWork,
        mut source: Option<&mut CsObject>,
        inserts: &mut Vec<CsObject>,
        counters: &mut SyncCounters,
        (to_others, to_self): (bool, bool),
    ) -> Result<Action, Fail> {
        let rules = self.rules;
        let Some(type_rules) = rules.mv_types.get(&mv.obj.object_type) else {
            return Ok(Action::Keep);
        };
        let source_id = source.as_ref().map_or(0, |s| s.id);
        let mut source_action = Action::Keep;
        for &t in &type_rules.targets {
            let target = &rules.mas[t];
            let own = t == self.ma.index;
            if (own && !to_self) || (!own && !to_others) {
                continue;
            }
            let scope = self.scope(txn, target, &mv.obj)?;
            if own && let Some(src) = source.as_deref_mut() {
                if is_connector_of(src, &mv.obj) {
                    let scope = scope.of(src);
                    let a = self.keep_in_step(txn, target, src, &mv.obj, &scope, counters)?;
                    source_action = source_action.max(a);
                }
                continue;
            }
            // Without a source, this MA's connector left (deleted in its
            // system): the MA is a target like any other, and provisioning
            // may make the object again.
            self.load_others(txn, mv, source_id)?;
            let MvWork { obj, others, .. } = mv;
            let others = others.get_or_insert_with(Vec::new);
            let mut connected = false;
            // Under `Scope::Several`: the anchors the MA has.
            let mut anchors: Vec<String> = Vec::new();
            for (x, action) in others.iter_mut() {
                if x.ma != target.name || *action == Action::Delete || !is_connector_of(x, obj) {
                    continue;
                }
                connected = true;
                if matches!(scope, Scope::Several(_)) {
                    anchors.push(x.anchor.clone());
                }
                let a = self.keep_in_step(txn, target, x, obj, &scope.of(x), counters)?;
                *action = (*action).max(a);
            }
            match &scope {
                Scope::In(plan) if !connected => {
                    self.provision(txn, target, plan, obj, others, inserts, counters)?;
                }
                Scope::Several(plans) => {
                    let missing = plans
                        .iter()
                        .filter(|p| p.anchor.as_ref().is_some_and(|a| !anchors.contains(a)));
                    for plan in missing {
                        self.provision(txn, target, plan, obj, others, inserts, counters)?;
                    }
                }
                _ => {}
            }
        }
        Ok(source_action)
    }

    /// What `target`'s provisioning rules say of `mv`: the first rule whose
    /// condition (and script) is met, or undecided at the first rule whose
    /// condition reads an attribute without a value (or whose script
    /// returns nothing).
    fn scope<'r>(
        &self,
        txn: &mut dyn StoreTxn,
        target: &'r MaRules,
        mv: &MvObject,
    ) -> Result<Scope<'r>, Fail> {
        let mut any = false;
        for p in target
            .provisioning
            .iter()
            .filter(|p| p.mv_type == mv.object_type)
        {
            any = true;
            if let Some(c) = &p.condition {
                if !p.evaluate_absent
                    && p.condition_reads
                        .iter()
                        .any(|a| mv.attributes.get(a).is_none_or(|v| v.value.is_empty()))
                {
                    return Ok(Scope::Undecided(p));
                }
                let what = || format!("provisioning condition of `{}`", target.name);
                if !eval_condition(txn, c, &MvView(&mv.attributes), what)? {
                    continue;
                }
            }
            let Some(script) = &p.script else {
                return Ok(Scope::In(Plan::of(p)));
            };
            match decide(txn, target, p, script, mv)? {
                Decision::Keep => return Ok(Scope::Undecided(p)),
                Decision::Out => {}
                Decision::In(plan) => return Ok(Scope::In(plan)),
                Decision::Several(plans) => return Ok(Scope::Several(plans)),
            }
        }
        Ok(if any { Scope::Out } else { Scope::NoRule })
    }

    /// Keep one connector of `mv` on `target` in step with what the
    /// provisioning rules say: flows (and a rename) while in scope, a
    /// pending delete cancelled when the object is back in scope, a
    /// delete-add when the rule now makes another object type,
    /// deprovisioning when out of scope (only of what provisioning created,
    /// unless the MA says otherwise).
    fn keep_in_step(
        &self,
        txn: &mut dyn StoreTxn,
        target: &MaRules,
        x: &mut CsObject,
        mv: &MvObject,
        scope: &Scope<'_>,
        counters: &mut SyncCounters,
    ) -> Result<Action, Fail> {
        let changed = match scope {
            Scope::In(plan) => {
                let mut changed = false;
                self.in_scope_again(txn, x)?;
                if leaving(x) {
                    // Back in scope before the export ran: the object stays.
                    tracing::info!(ma = %target.name, anchor = %x.anchor, "pending export delete cancelled: the object is back in scope");
                    x.pending_export = None;
                    changed = true;
                }
                if x.provisioned && x.object_type != plan.object_type() {
                    self.stage_delete_add(txn, target, x, mv, plan, counters)?;
                    return Ok(Action::Update);
                }
                self.refresh(txn, target, x, mv, Some(plan), counters)? || changed
            }
            Scope::Undecided(rule) => {
                let plan = Plan::of(rule);
                self.refresh(txn, target, x, mv, Some(&plan), counters)?
            }
            Scope::NoRule => self.refresh(txn, target, x, mv, None, counters)?,
            Scope::Out | Scope::Several(_) if leaving(x) => false,
            // (Unless an operator rejected its delete: it stays, in step.)
            Scope::Out | Scope::Several(_)
                if (x.provisioned || target.deprovision_joined)
                    && !self.delete_rejected(txn, x)? =>
            {
                return self.deprovision(txn, x, Deprovision::OutOfScope, counters);
            }
            Scope::Out | Scope::Several(_) => self.refresh(txn, target, x, mv, None, counters)?,
        };
        Ok(if changed {
            Action::Update
        } else {
            Action::Keep
        })
    }

    /// Outbound flows (and a rename) to one connector; returns whether its
    /// pending export changed.
    pub(super) fn refresh(
        &self,
        txn: &mut dyn StoreTxn,
        target: &MaRules,
        x: &mut CsObject,
        mv: &MvObject,
        plan: Option<&Plan<'_>>,
        counters: &mut SyncCounters,
    ) -> Result<bool, Fail> {
        if leaving(x) {
            return Ok(false);
        }
        let view = MvView(&mv.attributes);
        let mut changes = AttrChanges::new();
        let mut reverted: Vec<String> = Vec::new();
        let mut ref_waits: Option<OutWaitTargets> = None;
        let mut value_changes: Vec<(String, ValueDelta)> = Vec::new();
        for f in &target.outbound {
            if f.initial_only || !f.applies(&x.object_type, &mv.object_type) {
                continue;
            }
            let what = || format!("export flow of `{}` to `{}`", target.name, f.cs_attr);
            let d = match &f.reference {
                Some(r) => {
                    let waits = ref_waits.get_or_insert_with(OutWaitTargets::default);
                    let v = mv.attributes.get(&r.mv_attr).map(|v| &v.value);
                    let referrer = Referrer {
                        id: x.id,
                        held: effective(x, &f.cs_attr),
                    };
                    let joined = self.joined.as_ref();
                    resolve_out(txn, r, &target.name, referrer, v, waits, joined)?.map(Cow::Owned)
                }
                None => eval_source(txn, &f.source, &view, None, what)?,
            };
            if target.write_only.get(&f.cs_attr).is_some() {
                // An `on_change` write-only value: sealed, compared by tag.
                let secrets = &self.rules.secrets;
                if let Some(c) = write_only_change(secrets, target, x, &f.cs_attr, d)? {
                    changes.insert(f.cs_attr.clone(), Some(c));
                }
                continue;
            }
            // DNs compare ignoring case, as directories compare them.
            let by_dn = f.reference.as_ref().is_some_and(|r| r.by == RefBy::Dn);
            // (Folded copies only when the values differ as they are.)
            let same = |held: Option<&Value>| {
                same_in(held, d.as_deref(), f.order)
                    || by_dn
                        && same_in(
                            dn_folded(held).as_ref(),
                            dn_folded(d.as_deref()).as_ref(),
                            f.order,
                        )
            };
            if !same(effective(x, &f.cs_attr)) {
                if pending_update_of(x, &f.cs_attr) && same(confirmed(x, &f.cs_attr)) {
                    // Back to what the system holds before the export ran:
                    // the pending change goes, nothing is sent.
                    reverted.push(f.cs_attr.clone());
                } else if let Some(delta) = few_values(self.rules, target, x, f, d.as_deref()) {
                    // A few members of a group kept in rows (one that left
                    // with its account): a value-level change.
                    value_changes.push((f.cs_attr.clone(), delta));
                } else {
                    changes.insert(f.cs_attr.clone(), d.map(Cow::into_owned));
                }
            }
        }
        let mut changed = !reverted.is_empty();
        if changed {
            drop_changes(x, &reverted);
        }
        if let Some(waits) = ref_waits {
            self.ref_notes
                .borrow_mut()
                .out_waits
                .push((mv.id, target.name.clone(), waits));
        }
        if changes.is_empty() && value_changes.is_empty() {
            count_outbound(counters, &target.name, |c| c.export_no_flow += 1);
        } else {
            count_outbound(counters, &target.name, |c| c.export_attribute_flow += 1);
            if !changes.is_empty() {
                stage_changes(x, changes);
            }
            stage_values(x, value_changes);
            changed = true;
        }
        let dn = match plan {
            Some(Plan { dn: Some(dn), .. }) => Some(Some(dn.clone())),
            Some(Plan {
                rule:
                    crate::rules::Provisioning {
                        dn: Some(dn_rule), ..
                    },
                ..
            }) => {
                let what = || format!("provisioning DN of `{}`", target.name);
                Some(eval_text(txn, dn_rule, &view, what)?)
            }
            _ => None,
        };
        if let Some(dn) = dn {
            let pending_rename = x
                .pending_export
                .as_ref()
                .filter(|p| !matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd))
                .and_then(|p| p.new_dn.clone());
            // A rename not sent yet whose DN the rule no longer gives, the
            // DN the system has being given again (the rule changed back):
            // the rename goes, nothing of it is sent.
            let back = pending_rename.is_some()
                && dn
                    .as_deref()
                    .is_some_and(|d| autosync_model::dn::same_entry(d, &x.dn))
                && x.unconfirmed_export
                    .as_ref()
                    .is_none_or(|u| u.new_dn.is_none());
            if back {
                cancel_rename(x);
                changed = true;
            }
            let current: &str = match (&pending_rename, back) {
                (Some(new), false) => new,
                _ => &x.dn,
            };
            // Compared as a directory compares DNs: the system's own
            // spelling (`cn=` for `CN=`, no spaces after commas, a parent
            // in another case: the parent entry's own name, which only its
            // own rename changes) is not a rename to send again and again.
            if let Some(dn) = dn
                && !autosync_model::dn::same_entry(&dn, current)
            {
                if self.rules.has_refs {
                    // References to it that the target spells by DN change.
                    self.ref_notes.borrow_mut().touched.insert(mv.id);
                }
                stage_rename(x, dn);
                count_outbound(counters, &target.name, |c| c.provisioned_renames += 1);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// The complete attributes `target`'s export flows give a new object of
    /// `object_type` for `mv`, and its display key.
    pub(super) fn initial_export(
        &self,
        txn: &mut dyn StoreTxn,
        target: &MaRules,
        plan: &Plan<'_>,
        mv: &MvObject,
        anchor: &str,
    ) -> Result<(AttrChanges, String), Fail> {
        let view = MvView(&mv.attributes);
        let what = || format!("provisioning DN of `{}`", target.name);
        let dn = match (&plan.dn, &plan.rule.dn) {
            (Some(dn), _) => dn.clone(),
            // A DN rule that gives nothing (a new hire without a mail, a
            // name not known yet) is no DN: the object waits, as MIM's
            // provisioning refuses an empty DN. The anchor in its place
            // would be written into the attribute the DN comes from (an
            // employee id as a mail) and spelled by every reference to it.
            (None, Some(p)) => eval_text(txn, p, &view, what)?.ok_or_else(|| Fail::Object {
                error_type: "provisioning-failed",
                detail: format!(
                    "{}: the DN expression gave no value; the object is provisioned once it does",
                    what()
                ),
            })?,
            (None, None) => anchor.to_owned(),
        };
        let applies = |f: &&OutboundFlow| f.applies(plan.object_type(), &mv.object_type);
        // Added from the greatest attribute (see `outbound_by_attr`); should
        // a flow fail, they are evaluated again as configured, so that the
        // error is the first configured flow's, as always.
        let mut changes = AttrChanges::new();
        let mut ref_waits: Option<OutWaitTargets> = None;
        let by_attr = target.outbound_by_attr.iter();
        for f in by_attr
            .filter_map(|&i| target.outbound.get(i))
            .filter(applies)
        {
            let what = || format!("export flow of `{}` to `{}`", target.name, f.cs_attr);
            let value = match &f.reference {
                Some(r) => {
                    let waits = ref_waits.get_or_insert_with(OutWaitTargets::default);
                    let v = mv.attributes.get(&r.mv_attr).map(|v| &v.value);
                    let j = self.joined.as_ref();
                    let referrer = Referrer { id: 0, held: None };
                    Ok(resolve_out(txn, r, &target.name, referrer, v, waits, j)?.map(Cow::Owned))
                }
                None => eval_source(txn, &f.source, &view, None, what),
            };
            match value {
                Ok(Some(v)) => {
                    changes.insert(f.cs_attr.clone(), Some(v.into_owned()));
                }
                Ok(None) => {}
                Err(last) => {
                    for f in target.outbound.iter().filter(applies) {
                        let what =
                            || format!("export flow of `{}` to `{}`", target.name, f.cs_attr);
                        if f.reference.is_none() {
                            eval_source(txn, &f.source, &view, None, what)?;
                        }
                    }
                    return Err(last);
                }
            }
        }
        if let Some(waits) = ref_waits {
            self.ref_notes
                .borrow_mut()
                .out_waits
                .push((mv.id, target.name.clone(), waits));
        }
        let secrets = &self.rules.secrets;
        target
            .write_only
            .initial(secrets, plan.object_type(), &mut changes)
            .map_err(write_only_failed)?;
        Ok((changes, dn))
    }

    /// Replace the object in the connected system: an export delete-add
    /// with the complete attributes `rule` gives it (MIM's "provisioned
    /// delete-add"): the rule now makes another object type, or a new
    /// metaverse object is provisioned onto an object whose delete is
    /// pending.
    pub(super) fn stage_delete_add(
        &self,
        txn: &mut dyn StoreTxn,
        target: &MaRules,
        x: &mut CsObject,
        mv: &MvObject,
        plan: &Plan<'_>,
        counters: &mut SyncCounters,
    ) -> Result<(), Fail> {
        let (changes, dn) = self.initial_export(txn, target, plan, mv, &x.anchor)?;
        plan.object_type().clone_into(&mut x.object_type);
        x.connection = Connection::Connector { mv_id: mv.id };
        x.provisioned = true;
        x.pending_export = Some(PendingExport {
            values: Default::default(),
            kind: ExportKind::DeleteAdd,
            changes,
            new_dn: Some(dn),
        });
        count_outbound(counters, &target.name, |c| c.provisioned_delete_adds += 1);
        Ok(())
    }
}
