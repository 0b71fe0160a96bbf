//! Rule 4 of synchronisation: for a metaverse object, outbound flows to its
//! connectors on target MAs (staging pending export updates where the value
//! differs from hologram + unconfirmed + pending export), provisioning
//! (adds, renames) and deprovisioning per the target MA's action.

use super::{Action, Fail, MvWork, Syncer, expression_failed};
use crate::compute::{MvView, eval_text};
use crate::rules::{MaRules, Provisioning};
use crate::values::{merge_changes, same};
use autosync_model::{
    AttrChanges, Attributes, Connection, CsObject, DeprovisionAction, ExportKind, MvObject,
    OutboundCounters, PendingExport, SyncCounters, Value,
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

impl Syncer<'_> {
    /// Rule 4 for one metaverse object. `(to_others, to_self)`: refresh the
    /// connectors on other MAs, and the source on its own MA. Returns
    /// whether the source changed.
    pub(crate) fn outbound(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &mut MvWork,
        mut source: Option<&mut CsObject>,
        inserts: &mut Vec<CsObject>,
        counters: &mut SyncCounters,
        (to_others, to_self): (bool, bool),
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let Some(type_rules) = rules.mv_types.get(&mv.obj.object_type) else {
            return Ok(false);
        };
        let source_id = source.as_ref().map_or(0, |s| s.id);
        let mut source_changed = false;
        for &t in &type_rules.targets {
            let target = &rules.mas[t];
            let own = t == self.ma.index;
            if (own && !to_self) || (!own && !to_others) {
                continue;
            }
            let (has_rule, rule) = self.provisioning_for(target, &mv.obj)?;
            if own {
                if let Some(src) = source.as_deref_mut()
                    && is_connector_of(src, &mv.obj)
                {
                    source_changed |= self.refresh(target, src, &mv.obj, rule, counters)?;
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
                if has_rule && rule.is_none() {
                    self.deprovision(x, action, counters);
                } else if self.refresh(target, x, obj, rule, counters)? {
                    *action = Action::Update;
                }
            }
            if !connected && let Some(rule) = rule {
                self.provision(txn, target, rule, obj, others, inserts, counters)?;
            }
        }
        Ok(source_changed)
    }

    /// Whether `target` has provisioning rules for this type, and the first
    /// one whose condition the object meets.
    fn provisioning_for<'r>(
        &self,
        target: &'r MaRules,
        mv: &MvObject,
    ) -> Result<(bool, Option<&'r Provisioning>), Fail> {
        let mut has = false;
        for p in target
            .provisioning
            .iter()
            .filter(|p| p.mv_type == mv.object_type)
        {
            has = true;
            let met = match &p.condition {
                None => true,
                Some(c) => c.eval_bool(&MvView(&mv.attributes)).map_err(|e| {
                    expression_failed(&format!("provisioning condition of `{}`", target.name), e)
                })?,
            };
            if met {
                return Ok((true, Some(p)));
            }
        }
        Ok((has, None))
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
        if x.pending_export
            .as_ref()
            .is_some_and(|p| p.kind == ExportKind::Delete)
        {
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
            if !same(effective(x, &f.cs_attr), d.as_deref()) {
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

    /// Create the object `rule` provisions for `mv` on `target` (or join
    /// the disconnector that already has its anchor).
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
        let dn = match &rule.dn {
            Some(p) => eval_text(p, &view).map_err(|e| expression_failed(&what(), e))?,
            None => None,
        }
        .unwrap_or_else(|| anchor.clone());
        if let Some(mut x) = txn.cs_by_anchor(&target.name, &anchor)? {
            let leaving = x
                .pending_export
                .as_ref()
                .is_some_and(|p| p.kind == ExportKind::Delete);
            match x.connection {
                Connection::Disconnector if !leaving => {
                    x.connection = Connection::Connector { mv_id: mv.id };
                    self.refresh(target, &mut x, mv, Some(rule), counters)?;
                    others.push((x, Action::Update));
                    Ok(())
                }
                Connection::ExplicitDisconnector | Connection::Disconnector => Ok(()),
                Connection::Connector { .. } => Err(Fail::Object {
                    error_type: "provisioning-conflict",
                    detail: format!(
                        "{}: the object with anchor `{anchor}` is already joined to another metaverse object",
                        what()
                    ),
                }),
            }?;
            return Ok(());
        }
        let mut x = CsObject {
            id: 0,
            ma: target.name.clone(),
            anchor,
            dn: dn.clone(),
            object_type: rule.object_type.clone(),
            hologram: Attributes::new(),
            present: false,
            connection: Connection::Connector { mv_id: mv.id },
            pending_import: None,
            pending_export: None,
            unconfirmed_export: None,
            error: None,
        };
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
    /// or make it an explicit disconnector.
    pub(crate) fn deprovision(
        &self,
        x: &mut CsObject,
        action: &mut Action,
        counters: &mut SyncCounters,
    ) {
        let how = self
            .rules
            .ma_index
            .get(&x.ma)
            .map_or(DeprovisionAction::Disconnect, |&i| {
                self.rules.mas[i].deprovisioning
            });
        count_outbound(counters, &x.ma, |c| c.provisioned_disconnects += 1);
        if !x.present && x.unconfirmed_export.is_none() {
            *action = Action::Delete;
            return;
        }
        *action = Action::Update;
        match how {
            DeprovisionAction::Delete => {
                x.connection = Connection::Disconnector;
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
    }
}
