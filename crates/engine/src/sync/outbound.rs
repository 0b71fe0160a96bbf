//! Rule 4 of synchronisation: for a metaverse object, outbound flows to its
//! connectors on target MAs (staging pending export updates where the value
//! differs from hologram + unconfirmed + pending export), provisioning
//! (adds, renames) and deprovisioning per the target MA's action.

use super::{Action, Fail, MvWork, Syncer, expression_failed};
use crate::compute::{MvView, eval_text};
use crate::rules::{MaRules, Provisioning};
use crate::values::{merge_changes, same_in};
use autosync_model::{
    AttrChanges, Connection, CsObject, DeprovisionAction, ExportKind, MvObject, OutboundCounters,
    PendingExport, SyncCounters, Value,
};
use autosync_store::StoreTxn;
use std::borrow::Cow;

/// Count on the outbound counters of target `ma` (its name is copied only
/// the first time).
fn count_outbound(
    counters: &mut SyncCounters,
    ma: &str,
    count: impl FnOnce(&mut OutboundCounters),
) {
    match counters.outbound.get_mut(ma) {
        Some(c) => count(c),
        None => count(counters.outbound.entry(ma.to_owned()).or_default()),
    }
}

/// What the connected system will hold for `attr` once the pending and
/// unconfirmed exports are applied.
fn effective<'a>(x: &'a CsObject, attr: &str) -> Option<&'a Value> {
    if let Some(p) = &x.pending_export {
        if let Some(c) = p.changes.get(attr) {
            return c.as_ref();
        }
        if matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd) {
            return None;
        }
    }
    if let Some(u) = &x.unconfirmed_export
        && let Some(c) = u.changes.get(attr)
    {
        return c.as_ref();
    }
    x.hologram.get(attr)
}

fn stage_changes(x: &mut CsObject, changes: AttrChanges) {
    match &mut x.pending_export {
        Some(p) if matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd) => {
            for (k, v) in changes {
                match v {
                    Some(v) => p.changes.insert(k, Some(v)),
                    None => p.changes.remove(&k),
                };
            }
        }
        Some(p) => merge_changes(&mut p.changes, &changes),
        None => {
            x.pending_export = Some(PendingExport {
                kind: ExportKind::Update,
                changes,
                new_dn: None,
            });
        }
    }
}

fn stage_rename(x: &mut CsObject, dn: String) {
    match &mut x.pending_export {
        Some(p) if matches!(p.kind, ExportKind::Add | ExportKind::DeleteAdd) => {
            p.new_dn = Some(dn.clone());
            x.dn = dn;
        }
        Some(p) => {
            p.new_dn = Some(dn);
            if p.kind == ExportKind::Update {
                p.kind = ExportKind::Rename;
            }
        }
        None => {
            x.pending_export = Some(PendingExport {
                kind: ExportKind::Rename,
                changes: AttrChanges::new(),
                new_dn: Some(dn),
            });
        }
    }
}

fn is_connector_of(x: &CsObject, mv: &MvObject) -> bool {
    x.connection == Connection::Connector { mv_id: mv.id }
}

/// What a target MA's provisioning rules say of one metaverse object.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'r> {
    /// The MA has no provisioning rule for the object's type.
    NoRule,
    /// The object meets this rule's condition.
    In(&'r Provisioning),
    /// An attribute this rule's condition reads has no value (and the rule
    /// does not evaluate absent values): what is there stays as it is.
    Undecided(&'r Provisioning),
    /// The object meets no rule's condition.
    Out,
}

/// Why a connector is deprovisioned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deprovision {
    /// Its metaverse object was deleted.
    MvDeleted,
    /// Its metaverse object no longer meets the provisioning condition
    /// (the object stays joined while its delete is pending, so that it
    /// can come back in scope before the export runs).
    OutOfScope,
}

fn leaving(x: &CsObject) -> bool {
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
            let scope = self.scope(target, &mv.obj)?;
            if own {
                if let Some(src) = source.as_deref_mut()
                    && is_connector_of(src, &mv.obj)
                {
                    let a = self.keep_in_step(target, src, &mv.obj, scope, counters)?;
                    source_action = source_action.max(a);
                }
                continue;
            }
            self.load_others(txn, mv, source_id)?;
            let MvWork { obj, others, .. } = mv;
            let others = others.get_or_insert_with(Vec::new);
            let mut connected = false;
            for (x, action) in others.iter_mut() {
                if x.ma != target.name || *action == Action::Delete || !is_connector_of(x, obj) {
                    continue;
                }
                connected = true;
                let a = self.keep_in_step(target, x, obj, scope, counters)?;
                *action = (*action).max(a);
            }
            if !connected && let Scope::In(rule) = scope {
                self.provision(txn, target, rule, obj, others, inserts, counters)?;
            }
        }
        Ok(source_action)
    }

    /// What `target`'s provisioning rules say of `mv`: the first rule whose
    /// condition is met, or undecided at the first rule whose condition
    /// reads an attribute without a value.
    fn scope<'r>(&self, target: &'r MaRules, mv: &MvObject) -> Result<Scope<'r>, Fail> {
        let mut any = false;
        for p in target
            .provisioning
            .iter()
            .filter(|p| p.mv_type == mv.object_type)
        {
            any = true;
            let Some(c) = &p.condition else {
                return Ok(Scope::In(p));
            };
            if !p.evaluate_absent
                && p.condition_reads
                    .iter()
                    .any(|a| mv.attributes.get(a).is_none_or(|v| v.value.is_empty()))
            {
                return Ok(Scope::Undecided(p));
            }
            let met = c.eval_bool(&MvView(&mv.attributes)).map_err(|e| {
                expression_failed(&format!("provisioning condition of `{}`", target.name), e)
            })?;
            if met {
                return Ok(Scope::In(p));
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
        target: &MaRules,
        x: &mut CsObject,
        mv: &MvObject,
        scope: Scope<'_>,
        counters: &mut SyncCounters,
    ) -> Result<Action, Fail> {
        let changed = match scope {
            Scope::In(rule) => {
                let mut changed = false;
                if leaving(x) {
                    // Back in scope before the export ran: the object stays.
                    tracing::info!(ma = %target.name, anchor = %x.anchor, "pending export delete cancelled: the object is back in scope");
                    x.pending_export = None;
                    changed = true;
                }
                if x.provisioned && x.object_type != rule.object_type {
                    self.stage_delete_add(target, x, mv, rule, counters)?;
                    return Ok(Action::Update);
                }
                self.refresh(target, x, mv, Some(rule), counters)? || changed
            }
            Scope::Undecided(rule) => self.refresh(target, x, mv, Some(rule), counters)?,
            Scope::NoRule => self.refresh(target, x, mv, None, counters)?,
            Scope::Out if leaving(x) => false,
            Scope::Out if x.provisioned || target.deprovision_joined => {
                return Ok(self.deprovision(x, Deprovision::OutOfScope, counters));
            }
            Scope::Out => self.refresh(target, x, mv, None, counters)?,
        };
        Ok(if changed {
            Action::Update
        } else {
            Action::Keep
        })
    }

    /// Outbound flows (and a rename) to one connector; returns whether its
    /// pending export changed.
    fn refresh(
        &self,
        target: &MaRules,
        x: &mut CsObject,
        mv: &MvObject,
        rule: Option<&Provisioning>,
        counters: &mut SyncCounters,
    ) -> Result<bool, Fail> {
        if leaving(x) {
            return Ok(false);
        }
        let view = MvView(&mv.attributes);
        let mut changes = AttrChanges::new();
        for f in &target.outbound {
            if f.initial_only || !f.applies(&x.object_type, &mv.object_type) {
                continue;
            }
            let d = f.source.eval_ref(&view).map_err(|e| {
                expression_failed(
                    &format!("export flow of `{}` to `{}`", target.name, f.cs_attr),
                    e,
                )
            })?;
            if !same_in(effective(x, &f.cs_attr), d.as_deref(), f.order) {
                changes.insert(f.cs_attr.clone(), d.map(Cow::into_owned));
            }
        }
        let mut changed = false;
        if changes.is_empty() {
            count_outbound(counters, &target.name, |c| c.export_no_flow += 1);
        } else {
            count_outbound(counters, &target.name, |c| c.export_attribute_flow += 1);
            stage_changes(x, changes);
            changed = true;
        }
        if let Some(dn_rule) = rule.and_then(|r| r.dn.as_ref()) {
            let dn = eval_text(dn_rule, &view).map_err(|e| {
                expression_failed(&format!("provisioning DN of `{}`", target.name), e)
            })?;
            let current = x
                .pending_export
                .as_ref()
                .and_then(|p| p.new_dn.as_deref())
                .unwrap_or(&x.dn);
            if let Some(dn) = dn
                && dn != current
            {
                stage_rename(x, dn);
                count_outbound(counters, &target.name, |c| c.provisioned_renames += 1);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// The complete attributes `target`'s export flows give a new object of
    /// `object_type` for `mv`, and its display key.
    fn initial_export(
        &self,
        target: &MaRules,
        rule: &Provisioning,
        mv: &MvObject,
        anchor: &str,
    ) -> Result<(AttrChanges, String), Fail> {
        let view = MvView(&mv.attributes);
        let dn = match &rule.dn {
            Some(p) => eval_text(p, &view).map_err(|e| {
                expression_failed(&format!("provisioning DN of `{}`", target.name), e)
            })?,
            None => None,
        }
        .unwrap_or_else(|| anchor.to_owned());
        let mut changes = AttrChanges::new();
        for f in target
            .outbound
            .iter()
            .filter(|f| f.applies(&rule.object_type, &mv.object_type))
        {
            let v = f.source.eval(&view).map_err(|e| {
                expression_failed(
                    &format!("export flow of `{}` to `{}`", target.name, f.cs_attr),
                    e,
                )
            })?;
            if let Some(v) = v {
                changes.insert(f.cs_attr.clone(), Some(v));
            }
        }
        Ok((changes, dn))
    }

    /// Replace the object in the connected system: an export delete-add
    /// with the complete attributes `rule` gives it (MIM's "provisioned
    /// delete-add"): the rule now makes another object type, or a new
    /// metaverse object is provisioned onto an object whose delete is
    /// pending.
    fn stage_delete_add(
        &self,
        target: &MaRules,
        x: &mut CsObject,
        mv: &MvObject,
        rule: &Provisioning,
        counters: &mut SyncCounters,
    ) -> Result<(), Fail> {
        let (changes, dn) = self.initial_export(target, rule, mv, &x.anchor)?;
        x.object_type.clone_from(&rule.object_type);
        x.connection = Connection::Connector { mv_id: mv.id };
        x.provisioned = true;
        x.pending_export = Some(PendingExport {
            kind: ExportKind::DeleteAdd,
            changes,
            new_dn: Some(dn),
        });
        count_outbound(counters, &target.name, |c| c.provisioned_delete_adds += 1);
        Ok(())
    }

    /// Create the object `rule` provisions for `mv` on `target`. An object
    /// with that anchor already in the connector space is taken only when
    /// it is ours: one provisioning created, or one whose delete is pending
    /// (replaced by a delete-add), or any when the rule adopts; otherwise
    /// the object's sync fails with `object-already-exists`, as in MIM.
    #[allow(clippy::too_many_arguments)]
    fn provision(
        &self,
        txn: &mut dyn StoreTxn,
        target: &MaRules,
        rule: &Provisioning,
        mv: &MvObject,
        others: &mut Vec<(CsObject, Action)>,
        inserts: &mut Vec<CsObject>,
        counters: &mut SyncCounters,
    ) -> Result<(), Fail> {
        let what = || format!("provisioning rule of `{}`", target.name);
        let view = MvView(&mv.attributes);
        let anchor = eval_text(&rule.anchor, &view)
            .map_err(|e| expression_failed(&what(), e))?
            .ok_or_else(|| Fail::Object {
                error_type: "provisioning-failed",
                detail: format!("{}: the anchor expression gave no value", what()),
            })?;
        if let Some(mut x) = txn.cs_by_anchor(&target.name, &anchor)? {
            match x.connection {
                Connection::ExplicitDisconnector => return Ok(()),
                Connection::Connector { .. } => {
                    return Err(Fail::Object {
                        error_type: "provisioning-conflict",
                        detail: format!(
                            "{}: the object with anchor `{anchor}` is already joined to another metaverse object",
                            what()
                        ),
                    });
                }
                Connection::Disconnector if leaving(&x) => {
                    // Its metaverse object went and its delete is not yet
                    // exported: the new one replaces it.
                    self.stage_delete_add(target, &mut x, mv, rule, counters)?;
                }
                Connection::Disconnector if x.provisioned || rule.adopt => {
                    x.connection = Connection::Connector { mv_id: mv.id };
                    x.provisioned = true;
                    self.refresh(target, &mut x, mv, Some(rule), counters)?;
                }
                Connection::Disconnector => {
                    return Err(Fail::Object {
                        error_type: "object-already-exists",
                        detail: format!(
                            "{}: `{}` already has an object with anchor `{anchor}` that is not joined; \
                             give `{}` a join rule that joins it, or set `adopt = true` on the \
                             provisioning rule to take it over",
                            what(),
                            target.name,
                            target.name
                        ),
                    });
                }
            }
            others.push((x, Action::Update));
            return Ok(());
        }
        let (changes, dn) = self.initial_export(target, rule, mv, &anchor)?;
        let mut x = CsObject::new(&target.name, &anchor, &dn, &rule.object_type);
        x.provisioned = true;
        x.connection = Connection::Connector { mv_id: mv.id };
        x.pending_export = Some(PendingExport {
            kind: ExportKind::Add,
            changes,
            new_dn: Some(dn),
        });
        count_outbound(counters, &target.name, |c| c.provisioned_adds += 1);
        inserts.push(x);
        Ok(())
    }

    /// Deprovision a connector per its MA's action: an object never exported
    /// leaves the CS; otherwise delete (pending export delete), disconnect,
    /// or make it an explicit disconnector. Returns what becomes of it.
    pub(crate) fn deprovision(
        &self,
        x: &mut CsObject,
        why: Deprovision,
        counters: &mut SyncCounters,
    ) -> Action {
        let how = self
            .rules
            .ma_index
            .get(&x.ma)
            .map_or(DeprovisionAction::Disconnect, |&i| {
                self.rules.mas[i].deprovisioning
            });
        if !leaving(x) {
            count_outbound(counters, &x.ma, |c| c.provisioned_disconnects += 1);
        }
        if !x.present && x.unconfirmed_export.is_none() {
            return Action::Delete;
        }
        match how {
            DeprovisionAction::Delete => {
                if why == Deprovision::MvDeleted {
                    x.connection = Connection::Disconnector;
                }
                x.pending_export = Some(PendingExport {
                    kind: ExportKind::Delete,
                    changes: AttrChanges::new(),
                    new_dn: None,
                });
            }
            DeprovisionAction::Disconnect => {
                x.connection = Connection::Disconnector;
                x.pending_export = None;
            }
            DeprovisionAction::ExplicitDisconnector => {
                x.connection = Connection::ExplicitDisconnector;
                x.pending_export = None;
            }
        }
        Action::Update
    }
}
