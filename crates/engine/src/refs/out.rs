//! The spelling of a metaverse reference on a target MA: each referred
//! object's connector there, by anchor or DN, or a wait for one.

use super::{Joined, OutRef, referred};
use autosync_model::{CsId, ExportKind, MvId, RefBy, Value};
use autosync_store::{OutWaitTargets, StoreResult, StoreTxn};
use rustc_hash::FxHashMap;

/// The connector a reference is spelled for ([`resolve_out`]): its id (0
/// for one being provisioned) and the value it holds of the attribute,
/// when that counts.
pub(crate) struct Referrer<'a> {
    pub id: CsId,
    pub held: Option<&'a Value>,
}

/// What a metaverse reference `value` becomes on target `ma` for its
/// connector `referrer` (0 for one being provisioned): for each referred
/// object, its connector's anchor or DN there (or on the MA the reference
/// names); one without a connector there (or whose add would be sent
/// after the referrer's change: on another MA, any add not yet sent) is
/// left out and noted in `waits`. An export sends changes in id order, so
/// a referred connector being added is spelled only when its add is sent
/// before the referrer's change: a system that checks references never
/// receives one to an object it lacks.
pub(crate) fn resolve_out(
    txn: &mut dyn StoreTxn,
    r: &OutRef,
    ma: &str,
    Referrer { id: referrer, held }: Referrer<'_>,
    value: Option<&Value>,
    waits: &mut OutWaitTargets,
    known: Option<&Joined>,
) -> StoreResult<Option<Value>> {
    // An add the referrer's change would go before names the object by a
    // name the referrer may hold already: an account deleted in the
    // target and made again by the same sync under the same name. The
    // value it holds stays (a manager or a membership is not removed and
    // sent again one export later), and the reference still waits for
    // the add, to be worked out again once it is sent (the name may have
    // been another object's, one that leaves: its removal by name then
    // does not outlast the add). The names held, as compared (DNs
    // folded), are read once and only when an add is skipped: a large
    // group's list is not scanned per member.
    let key = |t: &str| match r.by {
        RefBy::Anchor => t.to_owned(),
        RefBy::Dn => autosync_model::dn::folded(t),
    };
    let held_names: std::cell::OnceCell<rustc_hash::FxHashSet<String>> = std::cell::OnceCell::new();
    let holds = |text: &str| -> bool {
        let names = held_names.get_or_init(|| match held {
            Some(Value::Multi(vs)) => vs.iter().map(|v| key(&v.to_text())).collect(),
            Some(v) if !v.is_empty() => std::iter::once(key(&v.to_text())).collect(),
            _ => Default::default(),
        });
        !names.is_empty() && names.contains(&key(text))
    };
    // An add not sent yet named by a DN the referrer holds already, which
    // another object of the MA has in the system (two people given one
    // name, the second's add refused): the value the referrer holds is
    // that other one's, not this object's, and must go (a second review:
    // a report whose manager became the namesake kept the first as
    // manager). Left out; the reference waits for the add.
    let another_has = |txn: &mut dyn StoreTxn,
                       known: Option<&Joined>,
                       ma: &str,
                       text: &str,
                       anchor: &str|
     -> StoreResult<bool> {
        match known {
            Some(j) if r.by == RefBy::Dn => j.dn_of_another(txn, ma, text, anchor),
            _ => Ok(false),
        }
    };
    // A referrer being provisioned, or one whose type the export sends
    // after the referred objects' (their adds go first whatever the ids).
    let referrer = if referrer == 0 || r.sent_before {
        CsId::MAX
    } else {
        referrer
    };
    // Another MA's export runs apart: its adds are sent when they are.
    let other_ma = r.ma.as_deref().is_some_and(|m| m != ma);
    let (ma, referrer) = match &r.ma {
        Some(other) => (other.as_str(), CsId::MIN),
        None => (ma, referrer),
    };
    let Some(v) = value else {
        return Ok(None);
    };
    let multi = matches!(v, Value::Multi(_));
    let ids = referred(v);
    if ids.is_empty() {
        return Ok(None);
    }
    // A connector whose rename is not sent yet keeps its DN until it is
    // (on this MA or another): the old DN is spelled, and the reference
    // waits for the rename. A system that checks references never gets a
    // DN it does not have yet, and a rename that fails (the DN is taken)
    // leaves the references naming the entry where it still is.
    let old_dn_while_renaming = r.by == RefBy::Dn;
    let mut spelled: FxHashMap<MvId, String> = FxHashMap::default();
    let mut renamed: rustc_hash::FxHashSet<MvId> = Default::default();
    let mut held_meanwhile: rustc_hash::FxHashSet<MvId> = Default::default();
    let mut ask: Vec<MvId> = Vec::new();
    for id in &ids {
        match known.and_then(|j| j.spelling(*id, ma)) {
            Some(Some(s)) if old_dn_while_renaming && s.renaming => ask.push(*id),
            Some(Some(s)) => {
                // A connector written by this step (the first one).
                let text = match r.by {
                    RefBy::Anchor => &s.anchor,
                    RefBy::Dn => &s.dn,
                };
                if s.adding && holds(text) && another_has(txn, known, ma, text, &s.anchor)? {
                    // Left out: waits.
                } else if !s.adding || s.id < referrer {
                    spelled.insert(*id, text.clone());
                } else if holds(text) {
                    spelled.insert(*id, text.clone());
                    held_meanwhile.insert(*id);
                }
            }
            Some(None) => {}
            None => ask.push(*id),
        }
    }
    if let Some(j) = known
        && !ask.is_empty()
        && j.read_whole(txn, ma, true, ask.len())?
    {
        let loaded = j.loaded.borrow();
        let mut renaming = Vec::new();
        for id in ask.drain(..) {
            match loaded.spelling(ma, id, referrer) {
                Some(Some(s)) if old_dn_while_renaming && s.renaming => renaming.push(id),
                Some(Some(s)) => {
                    let text = match r.by {
                        RefBy::Anchor => s.anchor.clone(),
                        RefBy::Dn => s.dn.clone(),
                    };
                    if !(s.adding && holds(&text) && another_has(txn, known, ma, &text, &s.anchor)?)
                    {
                        spelled.insert(id, text);
                    }
                }
                Some(None) => {
                    if let Some(s) = loaded.first_spelling(ma, id) {
                        let text = match r.by {
                            RefBy::Anchor => &s.anchor,
                            RefBy::Dn => &s.dn,
                        };
                        if s.adding && holds(text) && !another_has(txn, known, ma, text, &s.anchor)?
                        {
                            spelled.insert(id, text.clone());
                            held_meanwhile.insert(id);
                        }
                    }
                }
                None => {}
            }
        }
        ask = renaming;
    }
    if !ask.is_empty() {
        // The connectors' spellings without their attributes; the first
        // (lowest id) of each object on the target. A connector whose
        // delete waits (for the export, or for an approval over the
        // deletion threshold) is still there: the references to it go when
        // the delete is exported.
        let mut rows = txn.cs_spellings_by_mvs(ma, &ask)?;
        rows.sort_unstable_by_key(|row| row.id);
        for row in rows {
            if spelled.contains_key(&row.mv_id) {
                continue;
            }
            let adding = matches!(
                row.pending,
                Some((ExportKind::Add | ExportKind::DeleteAdd, _))
            );
            if adding {
                let text = match r.by {
                    RefBy::Anchor => &row.anchor,
                    RefBy::Dn => &row.dn,
                };
                if holds(text) && another_has(txn, known, ma, text, &row.anchor)? {
                    continue;
                }
                if row.id >= referrer {
                    if holds(text) {
                        spelled.insert(row.mv_id, text.clone());
                        held_meanwhile.insert(row.mv_id);
                    }
                    continue;
                }
            }
            let text = match r.by {
                RefBy::Anchor => row.anchor,
                RefBy::Dn => match row.pending {
                    Some((_, Some(_))) if old_dn_while_renaming && !adding => {
                        // On another MA, whose export runs apart, the
                        // rename may go before this referrer's change, and
                        // the old DN then names nothing, or a newcomer
                        // given it (a third review: a new hire got a
                        // renamed person's groups). A value the referrer
                        // holds stays; a new one waits for the rename.
                        if other_ma && !holds(&row.dn) {
                            continue;
                        }
                        renamed.insert(row.mv_id);
                        row.dn
                    }
                    Some((_, Some(new_dn))) => new_dn,
                    _ => row.dn,
                },
            };
            spelled.insert(row.mv_id, text);
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        match spelled.remove(id) {
            Some(s) => out.push(Value::String(s)),
            None => waits.push(*id, ma),
        }
        if renamed.contains(id) || held_meanwhile.contains(id) {
            waits.push(*id, ma);
        }
    }
    Ok(if multi {
        // Two objects the target spells alike (namesakes, one of whose
        // adds is refused) are one value there: sent twice, a directory
        // would refuse the whole change.
        if r.by == RefBy::Dn && out.len() > 1 {
            let keep: Vec<bool> = {
                let mut seen: rustc_hash::FxHashSet<&str> = Default::default();
                out.iter()
                    .map(|v| match v {
                        Value::String(t) => seen.insert(t.as_str()),
                        _ => true,
                    })
                    .collect()
            };
            let mut keep = keep.into_iter();
            out.retain(|_| keep.next().unwrap_or(true));
        }
        (!out.is_empty()).then_some(Value::Multi(out))
    } else {
        out.pop()
    })
}
