//! Provisioning (rule 4's adds): the object a provisioning rule makes for
//! a metaverse object on a target MA, or the one already there that it
//! takes (its own, one whose delete is pending, one the target's join
//! rules join, or any when the rule adopts); never an explicit or
//! filtered disconnector, nor another person's object
//! (`object-already-exists`, `provisioning-conflict`, as in MIM).

use super::outbound::{count_outbound, leaving};
use super::plan::Plan;
use super::{Action, Fail, Syncer};
use crate::compute::MvView;
use crate::extensions::eval_text;
use crate::rules::MaRules;
use autosync_model::{Connection, CsObject, ExportKind, MvObject, PendingExport, SyncCounters};
use autosync_store::StoreTxn;

/// Provisioning to `target` found under `anchor` an object that the
/// target's filter `#n` matches: `object-already-exists`.
fn filtered_there(what: &str, target: &str, anchor: &str, n: usize) -> Fail {
    Fail::Object {
        error_type: "object-already-exists",
        detail: format!(
            "{what}: `{target}` has an object with anchor `{anchor}` that its filter #{n} \
             matches: a filtered disconnector: never joined; change the filter or the object"
        ),
    }
}

impl Syncer<'_> {
    /// Create the object `rule` provisions for `mv` on `target`. An object
    /// with that anchor already in the connector space is taken only when
    /// it is ours: one provisioning created, or one whose delete is pending
    /// (replaced by a delete-add), or any when the rule adopts; otherwise
    /// the object's sync fails with `object-already-exists`, as in MIM.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn provision(
        &self,
        txn: &mut dyn StoreTxn,
        target: &MaRules,
        plan: &Plan<'_>,
        mv: &MvObject,
        others: &mut Vec<(CsObject, Action)>,
        inserts: &mut Vec<CsObject>,
        counters: &mut SyncCounters,
    ) -> Result<(), Fail> {
        let rule = plan.rule;
        let what = || format!("provisioning rule of `{}`", target.name);
        let view = MvView(&mv.attributes);
        let anchor = match (&plan.anchor, &rule.anchor) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(p)) => eval_text(txn, p, &view, what)?,
            (None, None) => None,
        }
        .ok_or_else(|| Fail::Object {
            error_type: "provisioning-failed",
            detail: format!("{}: the anchor expression gave no value", what()),
        })?;
        let found = txn
            .cs_by_anchor(&target.name, &anchor)?
            .filter(|x| Some(x.id) != self.deleted_source);
        if let Some(mut x) = found {
            if x.connection == Connection::Disconnector && self.claimed(x.id) {
                // Taken by another object of this step (written with the
                // batch): as joined to another.
                return Err(Fail::Object {
                    error_type: "provisioning-conflict",
                    detail: format!(
                        "{}: the object with anchor `{anchor}` was joined to another metaverse object in this sync",
                        what()
                    ),
                });
            }
            // A filtered disconnector of the target is never joined (MIM:
            // neither by join rules nor by provisioning, whose add fails on
            // the object that is there): not taken back, adopted, joined
            // nor replaced, even when provisioning made it.
            if x.connection == Connection::Disconnector
                && let Some(n) = target.filter_matching(txn, &x)?
            {
                return Err(filtered_there(&what(), &target.name, &anchor, n));
            }
            match x.connection {
                // Never joined again (MIM's explicit disconnector): the
                // person came back in scope, and MIM's provisioning fails
                // on the object that is there; an operator releases it.
                Connection::ExplicitDisconnector => {
                    return Err(Fail::Object {
                        error_type: "object-already-exists",
                        detail: format!(
                            "{}: `{}` has an explicit disconnector with anchor `{anchor}` (never \
                             joined again: deprovisioned as `explicit-disconnector`, or its delete \
                             rejected); `autosync cs release {} {anchor}` makes it a normal \
                             disconnector, which this provisioning then takes back if it made it",
                            what(),
                            target.name,
                            target.name
                        ),
                    });
                }
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
                    self.claim(x.id);
                    // Its metaverse object went and its delete is not yet
                    // exported: the new one replaces it.
                    self.stage_delete_add(txn, target, &mut x, mv, plan, counters)?;
                }
                Connection::Disconnector
                    if x.provisioned
                        || rule.adopt
                        || self.rebuilt.made(txn, &target.name, &x.anchor)? =>
                {
                    self.claim(x.id);
                    x.connection = Connection::Connector { mv_id: mv.id };
                    x.provisioned = true;
                    self.refresh(txn, target, &mut x, mv, Some(plan), counters)?;
                }
                // An object there before (an account autosync did not
                // make) that the MA's own join rules join to this object:
                // joined, as a sync of the MA would join it; not taken
                // over (deprovisioning leaves it alone unless
                // `deprovision_joined`).
                Connection::Disconnector if super::join::joins_to(txn, target, &x, mv)? => {
                    self.claim(x.id);
                    x.connection = Connection::Connector { mv_id: mv.id };
                    self.refresh(txn, target, &mut x, mv, Some(plan), counters)?;
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
        // An anchor a script gave picks its object itself: another one the
        // join rules find would not be in its plan (`Scope::Several`).
        let joined = match plan.anchor {
            Some(_) => None,
            None => self.unjoined_match(txn, target, mv, plan.object_type())?,
        };
        if let Some(mut x) = joined {
            // An object there before under another anchor (an account
            // autosync did not make) that the MA's own join rules join to
            // this object: joined, as a sync of the MA would join it, not
            // added next to it; not taken over unless the rule adopts.
            x.connection = Connection::Connector { mv_id: mv.id };
            x.provisioned = x.provisioned || rule.adopt;
            self.made_before(txn, &mut x)?;
            self.refresh(txn, target, &mut x, mv, Some(plan), counters)?;
            others.push((x, Action::Update));
            return Ok(());
        }
        let (changes, dn) = self.initial_export(txn, target, plan, mv, &anchor)?;
        let mut x = CsObject::new(&target.name, &anchor, &dn, plan.object_type());
        x.provisioned = true;
        x.connection = Connection::Connector { mv_id: mv.id };
        x.pending_export = Some(PendingExport {
            values: Default::default(),
            kind: ExportKind::Add,
            changes,
            new_dn: Some(dn),
        });
        count_outbound(counters, &target.name, |c| c.provisioned_adds += 1);
        inserts.push(x);
        Ok(())
    }
}
