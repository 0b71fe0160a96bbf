//! An imported object whose connector-space object is an add provisioning
//! staged and the system never confirmed (`sync::unjoined::placeholder`):
//! the add itself, applied before a crash kept the store from recording
//! it; an account that was there before autosync under the anchor
//! provisioning gives, whose add becomes an update of what differs (the
//! account joined, not taken over); or another's object, left aside.

use super::Importer;
use super::stage::{holds_sent, whole_from_update};
use crate::history::clear_error;
use crate::rules::MaRules;
use crate::values::without_empty;
use autosync_connector::{ImportChange, ImportedObject};
use autosync_model::{
    AttrChanges, Attributes, CsObject, ErrorStage, ExportKind, PendingExport, Value,
};
use autosync_store::{StoreResult, StoreTxn};

impl Importer<'_, '_> {
    /// Whether the system's object under the anchor of an add provisioning
    /// staged (never confirmed) is another's: it holds other values than
    /// the add sends, and the MA's join rules do not join it to the
    /// add's metaverse object (a namesake's account under the username
    /// provisioning gives). It is left as it is and not read (the
    /// connector space holds one object per anchor: the add's); the add
    /// stays pending, with an error that says why, and fails again
    /// (`already-exists`) until the account or the anchor changes. An MA
    /// without join rules joins nothing (an anchor alike is no proof of
    /// identity), so its object is another's too; a provisioning rule that
    /// adopts takes any over, except one the MA's filters match (a
    /// filtered disconnector is never joined: left aside the same way,
    /// unless it holds every value the add sends, the add itself).
    pub(super) fn foreign_before_add(
        &mut self,
        txn: &mut dyn StoreTxn,
        cs: &mut CsObject,
        obj: &ImportedObject,
    ) -> StoreResult<bool> {
        if cs.present || pending_add(cs).is_none() {
            return Ok(false);
        }
        let Some(rules) = self.rules() else {
            return Ok(false);
        };
        let whole = match obj.change {
            ImportChange::Update => whole_from_update(cs, obj.clone()),
            _ => obj.clone(),
        };
        let attrs = without_empty(whole.attributes);
        // The add itself (applied before a crash kept the store from
        // recording it): nothing is sent to it again; a filter matching it
        // disconnects it at the MA's next sync.
        if pending_add(cs).is_some_and(|add| replays(Some(rules), cs, add, &attrs, &whole.dn)) {
            return Ok(false);
        }
        let mut x = CsObject::new(&cs.ma, &cs.anchor, &whole.dn, &whole.object_type);
        x.hologram = attrs;
        // A filtered object is never the add's, whatever made it and
        // whether or not the rule adopts: a filtered disconnector is never
        // joined (nor written to).
        let filtered = match rules.filter_matching(txn, &x) {
            Ok(n) => n.map(|n| format!("its filter #{n} matches")),
            Err(crate::sync::Fail::Store(e)) => return Err(e),
            Err(crate::sync::Fail::Object { detail, .. }) => Some(format!(
                "its filters could not be evaluated on it ({detail})"
            )),
        };
        if let Some(why) = filtered {
            let detail = format!(
                "{} has an object with anchor `{}` where provisioning made an add, and {why}: a filtered disconnector, never joined; it is left as it is and not read, and the add stays pending: change the filter or the object, or remove or rename that object",
                self.ctx.ma.name, cs.anchor
            );
            self.left_aside(cs, detail);
            return Ok(true);
        }
        // One provisioning made before its connector space was deleted
        // (rebuilt) is the add's own, taken back.
        if adopts(rules, &cs.object_type) || self.rebuilt.made(txn, &cs.ma, &cs.anchor)? {
            return Ok(false);
        }
        let Some(mv_id) = cs.connection.mv_id() else {
            return Ok(false);
        };
        let Some(mv) = txn.mv_get(mv_id)? else {
            return Ok(false);
        };
        let joins = !rules.joins.is_empty()
            && match crate::sync::joins_to(txn, rules, &x, &mv) {
                Ok(joins) => joins,
                Err(crate::sync::Fail::Store(e)) => return Err(e),
                Err(crate::sync::Fail::Object { .. }) => false,
            };
        if joins {
            return Ok(false);
        }
        let detail = if rules.joins.is_empty() {
            format!(
                "{} has an object with anchor `{}` that autosync did not make, where provisioning made an add for metaverse object {mv_id}; this MA has no join rules, so nothing tells that it is that person's: it is left as it is and not read, and the add stays pending: give the MA a join rule that joins it, set `adopt = true` on the provisioning rule to take it over, or remove or rename that object",
                self.ctx.ma.name, cs.anchor
            )
        } else {
            format!(
                "{} has an object with anchor `{}` that this MA's join rules do not join to metaverse object {mv_id}, which provisioning made this add for: another's (a namesake's account under the anchor provisioning gives); it is left as it is and not read, and the add stays pending: remove or rename that object, or give provisioning another anchor",
                self.ctx.ma.name, cs.anchor
            )
        };
        self.left_aside(cs, detail);
        Ok(true)
    }

    /// The system's object under the anchor of `cs`'s pending add is not
    /// the add's: not read, `cs` seen (its add stays pending), with an
    /// `already-exists` error saying why.
    fn left_aside(&mut self, cs: &mut CsObject, detail: String) {
        self.counters.stage_failure += 1;
        let error = self.errors.push(&cs.anchor, "already-exists", detail);
        cs.error = Some(error);
        if let Some(seen) = &mut self.seen {
            seen.insert(cs.id);
        }
    }

    /// An object provisioning made in the connector space, whose add the
    /// system never confirmed, read from the system: either this add,
    /// applied before the store could record it (a crash between the two:
    /// every value it sends is there), which the confirming below takes as
    /// sent; or an object that was there before the add (an account made
    /// before autosync, under the anchor provisioning gives), which the
    /// connector refused to overwrite (`already-exists`). That one is the
    /// system's own: the add becomes an update of the values that differ,
    /// and the object is joined, not taken over (never deprovisioned,
    /// unless the provisioning rule says `adopt`).
    pub(super) fn found_before_add(&mut self, cs: &mut CsObject, attrs: &Attributes, dn: &str) {
        if pending_add(cs).is_none() {
            return;
        }
        let Some(add) = cs.pending_export.take() else {
            return;
        };
        let rules = self.rules();
        let adopt = rules.is_some_and(|r| adopts(r, &cs.object_type));
        // Made by provisioning before a rebuild: provisioned again, but
        // not made anew (no initial-only value, no password sent).
        let made = self.rebuilt.made_read(&cs.ma, &cs.anchor);
        if replays(rules, cs, &add, attrs, dn) {
            cs.unconfirmed_export = Some(add);
            return;
        }
        let same = |k: &str, v: &Option<Value>| holds_sent(rules, k, attrs.get(k), v.as_ref());
        let readable = |k: &str| rules.is_none_or(|r| r.write_only.get(k).is_none());
        let same_dn = autosync_model::dn::same_entry(&cs.dn, dn);
        self.counters.export_add_existing += 1;
        cs.provisioned = adopt || made;
        // What only a new object gets (initial-only flows, write-only
        // values) is not sent to an object that was there, unless the rule
        // takes it over.
        let differ: AttrChanges = add
            .changes
            .iter()
            .filter(|(k, v)| {
                let new_only = rules.is_some_and(|r| new_only(r, &cs.object_type, k));
                if new_only && !adopt {
                    return false;
                }
                !readable(k) || !same(k, v)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        clear_error(cs, ErrorStage::Export);
        let kind = if same_dn {
            ExportKind::Update
        } else {
            ExportKind::Rename
        };
        cs.pending_export = (!differ.is_empty() || !same_dn).then(|| PendingExport {
            kind,
            changes: differ,
            new_dn: (!same_dn).then(|| cs.dn.clone()),
            values: Default::default(),
        });
    }
}

/// Whether a provisioning rule of `object_type` takes over what it finds
/// (`adopt = true`).
fn adopts(rules: &MaRules, object_type: &str) -> bool {
    rules
        .provisioning
        .iter()
        .any(|p| p.adopt && p.object_type == object_type)
}

/// `cs`'s add that provisioning staged and the system never confirmed.
fn pending_add(cs: &CsObject) -> Option<&PendingExport> {
    cs.pending_export
        .as_ref()
        .filter(|p| p.kind == ExportKind::Add && cs.unconfirmed_export.is_none())
}

/// Whether the object read (`attrs`, `dn`) holds every value `add` sends,
/// its DN included: the add itself, applied before a crash kept the store
/// from recording it. A write-only value (a password) is never read back:
/// not compared.
fn replays(
    rules: Option<&MaRules>,
    cs: &CsObject,
    add: &PendingExport,
    attrs: &Attributes,
    dn: &str,
) -> bool {
    autosync_model::dn::same_entry(&cs.dn, dn)
        && add.changes.iter().all(|(k, v)| {
            rules.is_some_and(|r| r.write_only.get(k).is_some())
                || holds_sent(rules, k, attrs.get(k.as_str()), v.as_ref())
        })
}

/// Whether attribute `attr` of an object of type `object_type` is only a
/// new object's: write-only (a password; never read back), or written by
/// initial-only flows alone.
fn new_only(rules: &MaRules, object_type: &str, attr: &str) -> bool {
    if rules.write_only.get(attr).is_some() {
        return true;
    }
    let mut flows = rules.outbound.iter().filter(|f| {
        f.cs_attr.eq_ignore_ascii_case(attr)
            && f.object_type.as_deref().is_none_or(|t| t == object_type)
    });
    let mut any = false;
    let all_initial = flows.all(|f| {
        any = true;
        f.initial_only
    });
    any && all_initial
}
