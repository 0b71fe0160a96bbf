//! Accounts already in a target that provisioning joins instead of adding
//! one: before it adds an object for a metaverse object, provisioning looks
//! among the target's objects joined to nothing (an application table or a
//! directory in use before autosync, imported) for one that the target's
//! own join rules join to that metaverse object, as a sync of the target
//! would once the metaverse object is there. Without this, a source
//! synchronised before the target (the target's objects found no one to
//! join then) gets a second account next to the one that was there.
//!
//! The target's unjoined objects are read once per step, when the first
//! object is provisioned to it, and kept by the first condition's value of
//! each join rule (as join rules compare: ignoring case unless the rule is
//! case-sensitive); a candidate is read again before it is taken, so an
//! object joined meanwhile is not, nor one the target's filters match (a
//! filtered disconnector is never joined). A target with no unjoined
//! object costs one index lookup per step.

use super::outbound::leaving;
use super::{Action, Fail, MvWork, Syncer};
use crate::compute::CsView;
use crate::extensions::eval_source;
use crate::rules::{MaRules, texts};
use autosync_model::{Connection, CsId, CsObject, ExportKind, MvObject};
use autosync_store::{CsFilter, StoreResult, StoreTxn};
use rustc_hash::FxHashMap;

/// An object provisioning made whose add was never sent (or never
/// confirmed sent): nothing of it is in its system.
pub(crate) fn placeholder(x: &CsObject) -> bool {
    !x.present
        && x.unconfirmed_export.is_none()
        && x.pending_export
            .as_ref()
            .is_some_and(|p| p.kind == ExportKind::Add)
}

/// A target's unjoined objects by (join rule, first condition's text).
#[derive(Default)]
pub(crate) struct Unjoined {
    keys: FxHashMap<(usize, String), Vec<CsId>>,
}

/// Whether `x` may be joined by provisioning: joined to nothing by an
/// ordinary disconnection (an explicit disconnector never joins) and not
/// on its way out of the system.
fn joinable(x: &CsObject) -> bool {
    x.connection == Connection::Disconnector
        && !leaving(x)
        && x.present
        && !x
            .pending_import
            .as_ref()
            .is_some_and(|p| p.kind == autosync_model::ImportKind::Delete)
}

impl Unjoined {
    fn read(txn: &mut dyn StoreTxn, target: &MaRules) -> Result<Unjoined, Fail> {
        let mut out = Unjoined::default();
        if target.joins.is_empty() {
            return Ok(out);
        }
        let mut after = 0;
        loop {
            let page = txn.cs_page(&target.name, CsFilter::Unjoined, after, 1_000)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = last.id;
            for x in page.iter().filter(|x| joinable(x)) {
                let view = CsView(x);
                for (i, rule) in target.joins.iter().enumerate() {
                    let Some(first) = rule.conditions.first() else {
                        continue;
                    };
                    if !rule.applies(&x.object_type) {
                        continue;
                    }
                    // A value the rule cannot work out joins nothing here,
                    // as in a sync of the target.
                    let what = String::new;
                    let Ok(Some(v)) = eval_source(txn, &first.cs, &view, None, what) else {
                        continue;
                    };
                    texts(&v, rule.case_sensitive, &mut |t| {
                        out.keys.entry((i, t.into_owned())).or_default().push(x.id);
                    });
                }
            }
        }
    }
}

impl Syncer<'_> {
    /// `source`, just joined to `mv`, was there before an add provisioning
    /// staged for `mv` on the same MA went out (an account made before
    /// autosync, imported after the sync that provisioned: an initial load
    /// in the other order, a directory whose anchors the server gives):
    /// the placeholder of that add goes, never sent, and `source` is the
    /// connector (joined, not provisioned), brought in step by the export
    /// flows. References to the placeholder on this MA are worked out
    /// again, to `source`'s name.
    pub(super) fn drop_placeholder(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &mut MvWork,
        source: &CsObject,
    ) -> StoreResult<()> {
        self.load_others(txn, mv, source.id)?;
        let mv_id = mv.obj.id;
        for (x, action) in mv.others.iter_mut().flatten() {
            if x.ma == source.ma && x.object_type == source.object_type && placeholder(x) {
                *action = Action::Delete;
                if self.rules.has_refs {
                    let mut notes = self.ref_notes.borrow_mut();
                    notes.touched.insert(mv_id);
                    notes.names.push((
                        mv_id,
                        autosync_store::RefName {
                            ma: x.ma.clone(),
                            anchor: x.anchor.clone(),
                            dn: x.dn.clone(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// The one unjoined object of `target`, of type `object_type`, that
    /// the target's join rules join to `mv`; `None` when there is none; an
    /// `ambiguous-join` failure when there are several (nothing is added
    /// next to them, and none is taken at random).
    pub(super) fn unjoined_match(
        &self,
        txn: &mut dyn StoreTxn,
        target: &MaRules,
        mv: &MvObject,
        object_type: &str,
    ) -> Result<Option<CsObject>, Fail> {
        if target.joins.is_empty() {
            return Ok(None);
        }
        if !self.unjoined.borrow().contains_key(&target.name) {
            let read = Unjoined::read(txn, target)?;
            self.unjoined.borrow_mut().insert(target.name.clone(), read);
        }
        let mut ids: Vec<CsId> = Vec::new();
        {
            let all = self.unjoined.borrow();
            let Some(u) = all.get(&target.name).filter(|u| !u.keys.is_empty()) else {
                return Ok(None);
            };
            for (i, rule) in target.joins.iter().enumerate() {
                if rule.mv_type != mv.object_type || !rule.applies(object_type) {
                    continue;
                }
                let Some(v) = rule.conditions.first().and_then(|c| c.mv.value(mv)) else {
                    continue;
                };
                texts(&v, rule.case_sensitive, &mut |t| {
                    if let Some(found) = u.keys.get(&(i, t.into_owned())) {
                        ids.extend(found.iter().filter(|id| !self.claimed(**id)));
                    }
                });
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut matches = Vec::new();
        for id in ids {
            let Some(x) = txn.cs_get(id)? else { continue };
            // A filtered disconnector is never joined: not a candidate.
            if joinable(&x)
                && x.object_type == object_type
                && target.filter_matching(txn, &x)?.is_none()
                && super::join::joins_to(txn, target, &x, mv)?
            {
                matches.push(x);
            }
        }
        if matches.len() > 1 {
            let anchors: Vec<String> = matches.iter().map(|x| format!("`{}`", x.anchor)).collect();
            return Err(Fail::Object {
                error_type: "ambiguous-join",
                detail: format!(
                    "provisioning to `{}` found {} objects its join rules join to this object ({}): none is joined and nothing is added; remove the duplicates, or make the join rules tell them apart",
                    target.name,
                    matches.len(),
                    anchors.join(", ")
                ),
            });
        }
        let found = matches.pop();
        if let Some(x) = &found {
            self.claim(x.id);
        }
        Ok(found)
    }

    /// A connector `x` that provisioning made before its connector space
    /// was deleted (`crate::rebuilt`) is provisioned again; whether it
    /// changed.
    pub(super) fn made_before(
        &self,
        txn: &mut dyn StoreTxn,
        x: &mut CsObject,
    ) -> StoreResult<bool> {
        if x.provisioned || !self.rebuilt.made(txn, &x.ma, &x.anchor)? {
            return Ok(false);
        }
        x.provisioned = true;
        Ok(true)
    }

    /// Whether provisioning in this step took object `id` for a metaverse
    /// object (its join is written with the batch: a read of the store
    /// does not show it yet).
    pub(super) fn claimed(&self, id: CsId) -> bool {
        self.claimed.borrow().contains(&id)
    }

    /// Provisioning took object `id` (see [`Self::claimed`]).
    pub(super) fn claim(&self, id: CsId) {
        self.claimed.borrow_mut().insert(id);
    }
}
