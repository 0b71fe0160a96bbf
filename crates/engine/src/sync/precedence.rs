//! Rule 3's precedence: which connector's value a metaverse attribute
//! keeps (ranked or equal precedence), the value the next connector gives
//! when the contributor's goes away (`fallback`), the values a full sync
//! recalls because their flow is no longer configured (`recall_stale`),
//! and the fast fill of an object projected just now (`fill_new`).

use super::{Action, Fail, MvWork, Syncer};
use crate::compute::{AttrView, CsView, MvView};
use crate::extensions::eval_source;
use crate::rules::{InboundFlow, MaRules};
use crate::values::same_in;
use autosync_model::{CsId, CsObject, MvValue, Value};
use autosync_store::StoreTxn;
use std::borrow::Cow;
use std::collections::btree_map::Entry;

impl<'a> Syncer<'a> {
    /// The value the highest-ranked other connector gives `attr`, computed
    /// from its hologram (ranked precedence; equal precedence only when
    /// `gone`: the contributor or its flow went, not just its value).
    pub(super) fn fallback(
        &self,
        txn: &mut dyn StoreTxn,
        mv: &MvWork,
        attr: &str,
        gone: bool,
    ) -> Result<Option<MvValue>, Fail> {
        let rules = self.rules;
        let mv_type = mv.obj.object_type.as_str();
        let mut best: Option<(usize, MvValue)> = None;
        for (x, action) in mv.others.iter().flatten() {
            if *action == Action::Delete || x.connection.mv_id() != Some(mv.obj.id) {
                continue;
            }
            let Some(&mi) = rules.ma_index.get(&x.ma) else {
                continue;
            };
            // Equal precedence: the last writer's value stays, even empty;
            // when the writer is gone (its object, or its flow), another
            // source's value takes over, the first MA of the file's.
            let rank = match rules.rank(mv_type, attr, mi) {
                Some(rank) => rank,
                None if gone => mi,
                None => return Ok(None),
            };
            if best.as_ref().is_some_and(|(r, _)| *r <= rank) {
                continue;
            }
            let flows = rules.mas[mi].inbound.iter().filter(|f| f.mv_attr == attr);
            for f in flows.filter(|f| f.applies(&x.object_type, mv_type)) {
                let view = AttrView(&x.hologram);
                let what = || format!("import flow of `{}` to `{attr}`", x.ma);
                let current = MvView(&mv.obj.attributes);
                let v = match &f.reference {
                    Some(r) => {
                        crate::refs::resolve_in(txn, r, &x.hologram, None, self.joined.as_ref())?
                            .map(Cow::Owned)
                    }
                    None => eval_source(txn, &f.source, &view, Some(&current), what)?,
                };
                if let Some(value) = v {
                    best = Some((
                        rank,
                        MvValue {
                            value: value.into_owned(),
                            contributor: x.ma.clone(),
                        },
                    ));
                    break;
                }
            }
        }
        Ok(best.map(|(_, v)| v))
    }

    /// A full sync re-applies all rules: a value this MA contributed
    /// through a flow that no longer exists for this object, or that an MA
    /// no longer in the configuration contributed, is recalled, and the
    /// next source by precedence takes over. Returns whether a value
    /// changed.
    pub(super) fn recall_stale(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &mut MvWork,
        source: &CsObject,
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let me = self.ma.name.as_str();
        let flows = self.ma.flows_into(&source.object_type, &mv.obj.object_type);
        let stale: Vec<String> = mv
            .obj
            .attributes
            .iter()
            .filter(|(attr, v)| {
                if v.contributor == me {
                    !flows.is_some_and(|f| f.contains(attr.as_str()))
                } else {
                    !rules.ma_index.contains_key(&v.contributor)
                }
            })
            .map(|(attr, _)| attr.clone())
            .collect();
        if stale.is_empty() {
            return Ok(false);
        }
        self.load_others(txn, mv, source.id)?;
        for attr in &stale {
            if let Some(old) = mv.obj.attributes.remove(attr) {
                tracing::info!(mv_id = mv.obj.id, attr = %attr, contributor = %old.contributor, "recalled a value whose flow is no longer configured");
            }
            mv.dirty = true;
            if let Some(v) = self.fallback(txn, mv, attr, true)? {
                mv.obj.attributes.insert(attr.clone(), v);
            }
        }
        Ok(true)
    }

    /// Set `attr` of the metaverse object to `v` (the source's value)
    /// under precedence; the value is copied only when it is kept.
    pub(super) fn set_value(
        &mut self,
        txn: &mut dyn StoreTxn,
        mv: &mut MvWork,
        source: CsId,
        attr: &str,
        mut v: Option<Cow<'_, Value>>,
        rank: Option<usize>,
    ) -> Result<bool, Fail> {
        let rules = self.rules;
        let me = self.ma.name.as_str();
        if mv.is_new
            && let Some(value) = v
        {
            // An object projected just now usually lacks the attribute:
            // one search, with the name copied up front.
            match mv.obj.attributes.entry(attr.to_owned()) {
                Entry::Vacant(e) => {
                    e.insert(MvValue {
                        value: value.into_owned(),
                        contributor: me.to_owned(),
                    });
                    mv.dirty = true;
                    return Ok(true);
                }
                Entry::Occupied(_) => v = Some(value),
            }
        }
        let current = mv.obj.attributes.get_mut(attr);
        match (v, current) {
            (Some(value), None) => {
                mv.obj.attributes.insert(
                    attr.to_owned(),
                    MvValue {
                        value: value.into_owned(),
                        contributor: me.to_owned(),
                    },
                );
                mv.dirty = true;
                Ok(true)
            }
            (Some(value), Some(cur)) => {
                let order = rules.mv_order(&mv.obj.object_type, attr);
                let value_changed = !same_in(Some(&cur.value), Some(&value), order);
                let mine = cur.contributor == me;
                let wins = mine
                    || match rank {
                        None => value_changed,
                        Some(r) => {
                            let theirs = rules
                                .ma_index
                                .get(&cur.contributor)
                                .and_then(|&i| rules.rank(&mv.obj.object_type, attr, i))
                                .unwrap_or(usize::MAX);
                            r <= theirs
                        }
                    };
                if !wins || (!value_changed && mine) {
                    return Ok(false);
                }
                // Replace in place: the name (and this MA's name, when it
                // was already the contributor) are kept, not copied again.
                cur.value = value.into_owned();
                if !mine {
                    me.clone_into(&mut cur.contributor);
                }
                mv.dirty = true;
                Ok(value_changed)
            }
            (None, Some(cur)) if cur.contributor == me => {
                mv.obj.attributes.remove(attr);
                mv.dirty = true;
                self.load_others(txn, mv, source)?;
                if let Some(fallback) = self.fallback(txn, mv, attr, false)? {
                    mv.obj.attributes.insert(attr.to_owned(), fallback);
                }
                Ok(true)
            }
            (None, _) => Ok(false),
        }
    }
}

/// Rule 3 for a metaverse object projected just now, when the order its
/// flows fill it in does not matter (`inbound_by_attr`): each value as
/// [`Syncer::set_value`] sets it into the empty object, added from the
/// greatest attribute (one comparison each). Should a flow fail, the flows
/// are evaluated again as configured, so that the error is the first
/// configured flow's, as always.
pub(super) fn fill_new(
    txn: &mut dyn StoreTxn,
    ma: &MaRules,
    mv: &mut MvWork,
    source: &CsObject,
    by_attr: &[usize],
) -> Result<bool, Fail> {
    let view = CsView(source);
    let mv_type = mv.obj.object_type.as_str();
    let applies = |f: &&InboundFlow| f.applies(&source.object_type, mv_type);
    let mut changed = false;
    for f in by_attr
        .iter()
        .filter_map(|&i| ma.inbound.get(i))
        .filter(applies)
    {
        // No flow reads the metaverse object (`inbound_by_attr`).
        let what = || format!("import flow to `{}`", f.mv_attr);
        match eval_source(txn, &f.source, &view, None, what) {
            Ok(Some(value)) => {
                mv.obj.attributes.insert(
                    f.mv_attr.clone(),
                    MvValue {
                        value: value.into_owned(),
                        contributor: ma.name.clone(),
                    },
                );
                changed = true;
            }
            Ok(None) => {}
            Err(last) => {
                for f in ma.inbound.iter().filter(applies) {
                    let what = || format!("import flow to `{}`", f.mv_attr);
                    eval_source(txn, &f.source, &view, None, what)?;
                }
                return Err(last);
            }
        }
    }
    mv.dirty |= changed;
    Ok(changed)
}
