//! Several changes in flight at once on the export's one connection.
//!
//! A batch is cut, in its order, into groups of changes that do not touch
//! one another; each group's operations go to the server together (up to
//! [`WINDOW`] in flight), and the next group starts once every answer of
//! this one came. Two changes touch when one names an entry the other
//! writes: the same DN (an add before a modify of the same entry), a
//! parent (a parent before its child, a child deleted before its parent),
//! or a DN among its values (a member added to a group after the member
//! exists). A rename, a move or a delete-and-add goes alone, one operation
//! after the other as before.
//!
//! An update or a delete goes straight to the DN the engine knows, with an
//! assertion (RFC 4528, critical) that the entry there has the change's
//! anchor: one operation instead of a search by anchor and then the
//! operation. Only an anchor the server assigns (`entryUUID`,
//! `objectGUID`, ...), which no two entries share, or the DN itself is
//! used so. When the entry is not there or is another one (`noSuchObject`,
//! `assertionFailed`), the change is made again the usual way (found by
//! its anchor), after its group's other answers.

use super::{AddRequest, Done, LdapExport, Stop};
use crate::ldap::config::Anchor;
use crate::ldap::dn::Dn;
use crate::ldap::import::kind;
use crate::ldap::session::{ASSERTION, Op, OpResult};
use crate::ldap::values;
use autosync_connector::{ConnectorError, ConnectorErrorKind, ExportChange};
use autosync_model::{ExportKind, Value};
use ldap3::controls::{Assertion, RawControl};
use ldap3::{LdapResult, Mod};
use std::collections::HashSet;

/// Operations in flight at once on the connection.
pub const WINDOW: usize = 64;

/// `noSuchObject` and `assertionFailed`: the entry at the DN the engine
/// knows is gone, or is another one.
fn elsewhere(r: &OpResult<LdapResult>) -> bool {
    matches!(r, Ok(res) if res.rc == 32 || res.rc == 122)
}

/// What was sent for a change of a group.
enum Sent {
    Add(AddRequest),
    Update {
        dn: String,
        replace: Vec<Mod<Vec<u8>>>,
        by_value: Vec<Mod<Vec<u8>>>,
    },
    Delete {
        dn: String,
    },
    /// Settled before anything was sent (refused here).
    Settled(Done<Option<String>>),
    /// Made the usual way, one operation after the other.
    Alone,
}

/// The entries a change writes (`own`) and those it also needs (`near`):
/// parents and DNs among its values. Keys as [`Dn::key_text`].
struct Touch {
    own: Vec<String>,
    near: Vec<String>,
}

fn dn_key(dn: &str) -> String {
    Dn::parse(dn).map_or_else(|_| dn.to_lowercase(), |d| d.key_text())
}

fn touch(c: &ExportChange, dn_anchor: bool) -> Touch {
    let mut own = vec![dn_key(&c.dn)];
    if dn_anchor {
        own.push(dn_key(&c.anchor));
    }
    let mut near = Vec::new();
    for dn in std::iter::once(&c.dn).chain(c.new_dn.iter()) {
        if let Ok(d) = Dn::parse(dn) {
            near.extend(d.parent_key_text());
        }
    }
    if let Some(n) = &c.new_dn {
        own.push(dn_key(n));
    }
    let mut seen = |v: &Value| {
        if let Value::String(t) = v
            && t.contains('=')
            && let Ok(d) = Dn::parse(t)
            && !d.is_root()
        {
            near.push(d.key_text());
        }
    };
    for v in c.changes.values().flatten() {
        match v {
            Value::Multi(vs) => vs.iter().for_each(&mut seen),
            one => seen(one),
        }
    }
    for d in c.values.values() {
        d.add.iter().chain(&d.remove).for_each(&mut seen);
    }
    Touch { own, near }
}

/// The changes of the group being gathered and what they touch.
#[derive(Default)]
struct Group {
    members: Vec<usize>,
    own: HashSet<String>,
    all: HashSet<String>,
}

impl Group {
    fn meets(&self, t: &Touch) -> bool {
        t.own.iter().any(|k| self.all.contains(k)) || t.near.iter().any(|k| self.own.contains(k))
    }

    fn join(&mut self, i: usize, t: Touch) {
        self.members.push(i);
        for k in t.own {
            self.all.insert(k.clone());
            self.own.insert(k);
        }
        self.all.extend(t.near);
    }
}

impl LdapExport<'_> {
    /// The batch, group by group: one result per change, in order; when
    /// the connection fails, why, with the results of the changes answered
    /// before (`None`: not sent or not answered).
    #[allow(clippy::type_complexity)]
    pub(super) fn apply_grouped(
        &mut self,
        batch: &[ExportChange],
    ) -> Result<Vec<Done<Option<String>>>, (ConnectorError, Vec<Option<Done<Option<String>>>>)>
    {
        let mut done: Vec<Option<Done<Option<String>>>> = Vec::new();
        done.resize_with(batch.len(), || None);
        if let Err(e) = self.send_all(batch, &mut done) {
            return Err((e, done));
        }
        if done.iter().any(Option::is_none) {
            let e = ConnectorError::new(
                ConnectorErrorKind::Other,
                format!("MA `{}`: a change of the batch was not sent", self.s.ma),
            );
            return Err((e, done));
        }
        Ok(done.into_iter().flatten().collect())
    }

    fn send_all(
        &mut self,
        batch: &[ExportChange],
        done: &mut [Option<Done<Option<String>>>],
    ) -> Result<(), ConnectorError> {
        let dn_anchor = self.s.anchor == Anchor::Dn;
        let mut group = Group::default();
        for (i, c) in batch.iter().enumerate() {
            let together = matches!(
                c.kind,
                ExportKind::Add | ExportKind::Update | ExportKind::Delete
            ) && c.new_dn.is_none();
            if !together {
                self.send_group(batch, std::mem::take(&mut group), done)?;
                done[i] = Some(self.apply_one(c));
                continue;
            }
            let t = touch(c, dn_anchor);
            if group.meets(&t) {
                self.send_group(batch, std::mem::take(&mut group), done)?;
            }
            group.join(i, t);
        }
        self.send_group(batch, group, done)
    }

    /// Where an update or a delete of `c` goes without a search, and the
    /// controls that make sure it is the change's entry.
    fn direct(&self, c: &ExportChange) -> Option<(String, Vec<RawControl>)> {
        match &self.s.anchor {
            Anchor::Dn => Some((c.anchor.clone(), Vec::new())),
            Anchor::Assigned(name) if self.session.supports(ASSERTION) => {
                self.in_scope(&c.dn).ok()?;
                let k = kind(self.s, self.session, name);
                let filter = values::anchor_filter(&self.s.anchor, k, &c.anchor).ok()?;
                // The control's encoder needs a filter that parses.
                ldap3::parse_filter(&filter).ok()?;
                let mut control = Assertion::new(filter);
                control.crit = true;
                Some((c.dn.clone(), vec![control]))
            }
            _ => None,
        }
    }

    /// What to send for change `c` of a group.
    fn prepare(&self, c: &ExportChange) -> (Sent, Option<Op>) {
        match c.kind {
            ExportKind::Add => match self.add_request(c) {
                Ok(mut req) => {
                    let op = Op::Add {
                        dn: c.dn.clone(),
                        attrs: req.entry(),
                        controls: std::mem::take(&mut req.controls),
                    };
                    (Sent::Add(req), Some(op))
                }
                Err(e) => (Sent::Settled(Err(e)), None),
            },
            ExportKind::Update => {
                let Some((dn, controls)) = self.direct(c) else {
                    return (Sent::Alone, None);
                };
                match self.update_mods(c) {
                    Err(e) => (Sent::Settled(Err(e)), None),
                    Ok((replace, by_value)) if replace.is_empty() && by_value.is_empty() => {
                        (Sent::Alone, None)
                    }
                    Ok((replace, by_value)) => {
                        let mods = replace.iter().chain(&by_value).cloned().collect();
                        let op = Op::Modify {
                            dn: dn.clone(),
                            mods,
                            controls,
                        };
                        let sent = Sent::Update {
                            dn,
                            replace,
                            by_value,
                        };
                        (sent, Some(op))
                    }
                }
            }
            ExportKind::Delete => {
                if let Err(f) = self.object_type(c) {
                    return (Sent::Settled(Err(f.into())), None);
                }
                match self.direct(c) {
                    Some((dn, controls)) => {
                        let op = Op::Delete {
                            dn: dn.clone(),
                            controls,
                        };
                        (Sent::Delete { dn }, Some(op))
                    }
                    None => (Sent::Alone, None),
                }
            }
            _ => (Sent::Alone, None),
        }
    }

    fn send_group(
        &mut self,
        batch: &[ExportChange],
        group: Group,
        done: &mut [Option<Done<Option<String>>>],
    ) -> Result<(), ConnectorError> {
        let mut plan = Vec::with_capacity(group.members.len());
        let mut ops = Vec::with_capacity(group.members.len());
        for &i in &group.members {
            let (sent, op) = self.prepare(&batch[i]);
            plan.push((i, sent));
            ops.extend(op);
        }
        let mut answers = self.session.pipeline(ops, WINDOW).into_iter();
        let ma = self.s.ma.clone();
        for (i, sent) in plan {
            let c = &batch[i];
            let mut answer = || {
                answers.next().flatten().ok_or_else(|| {
                    ConnectorError::new(
                        ConnectorErrorKind::Connectivity,
                        format!("MA `{ma}`: no answer for `{}`", c.dn),
                    )
                })
            };
            let result = match sent {
                Sent::Settled(d) => d,
                Sent::Alone => self.apply_one(c),
                Sent::Add(req) => {
                    let r = answer()?;
                    self.add_answered(c, req, r)
                }
                Sent::Update {
                    dn,
                    replace,
                    by_value,
                } => {
                    let r = answer()?;
                    if elsewhere(&r) {
                        self.update(c)
                    } else {
                        self.update_answered(&dn, replace, by_value, r)
                            .map(|()| None)
                    }
                }
                Sent::Delete { dn } => {
                    let r = answer()?;
                    if elsewhere(&r) {
                        self.delete(c).map(|()| None)
                    } else {
                        match self.check("delete", &dn, r) {
                            Ok(_) | Err(Stop::Failed(("object-not-found", _))) => Ok(None),
                            Err(e) => Err(e),
                        }
                    }
                }
            };
            done[i] = Some(result);
        }
        Ok(())
    }
}
