//! Replays: an add whose entry exists, value changes already (partly)
//! applied. An export that stopped after the server applied a change but
//! before the engine recorded it sends the change again.

use super::{Done, LdapExport, Stop};
use crate::ldap::config::Anchor;
use crate::ldap::import::anchor_of;
use autosync_connector::ExportChange;
use ldap3::Mod;
use std::collections::HashSet;

impl LdapExport<'_> {
    /// The delete of an add that may have gone out before a crash (the
    /// engine sends the add's values with it) whose anchor finds nothing:
    /// with an anchor the server assigns, the add's entry is never found by
    /// the anchor the engine had before the answer. The entry at the add's
    /// DN is its own if it holds every value the add sent (as for a
    /// replayed add): its DN, to delete; anything else there is left.
    pub(super) fn own_add_at(&mut self, c: &ExportChange) -> Done<Option<String>> {
        if c.changes.is_empty() || c.dn.is_empty() || matches!(self.s.anchor, Anchor::Written(_)) {
            return Ok(None);
        }
        let attrs = self.add_request(c)?.attrs;
        let asked: Vec<&str> = attrs
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.eq_ignore_ascii_case("objectClass"))
            .collect();
        let Some(entry) = self.read(&c.dn, &asked)? else {
            return Ok(None);
        };
        Ok(first_difference(&entry, &attrs)
            .is_none()
            .then(|| c.dn.clone()))
    }

    /// An add whose DN exists: update the entry there in place when it is
    /// the same object. With an anchor the export writes, the entry's
    /// anchor says so. With an anchor the server assigns (or the DN), the
    /// entry is this add's own only if it holds every value the add sends
    /// (an export that stopped after the server took the add and before
    /// the engine recorded it sends the same add again): any other entry
    /// at that DN (a namesake's, one made outside autosync) is never
    /// changed, and the add fails with `already-exists`.
    pub(super) fn replay_add(
        &mut self,
        c: &ExportChange,
        attrs: Vec<(String, HashSet<Vec<u8>>)>,
    ) -> Done<Option<String>> {
        let name = self.s.anchor.name().to_owned();
        let mut asked: Vec<&str> = attrs
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.eq_ignore_ascii_case("objectClass"))
            .collect();
        asked.push(name.as_str());
        let Some(entry) = self.read(&c.dn, &asked)? else {
            return Err(Stop::Failed((
                "already-exists",
                format!("`{}` exists and then did not: try again", c.dn),
            )));
        };
        let theirs = anchor_of(self.s, self.session, &entry).ok();
        if let Anchor::Written(_) = self.s.anchor {
            if theirs.as_deref() != Some(c.anchor.as_str()) {
                return Err(Stop::Failed((
                    "already-exists",
                    format!(
                        "`{}` already holds another object (`{name}` = {:?}, not {:?})",
                        c.dn,
                        theirs.unwrap_or_default(),
                        c.anchor
                    ),
                )));
            }
        } else if let Some(differs) = first_difference(&entry, &attrs) {
            return Err(Stop::Failed((
                "already-exists",
                format!(
                    "`{}` already holds an entry that is not this object's (its `{differs}` differs from what the add sends); it was left as it is",
                    c.dn
                ),
            )));
        }
        let mods: Vec<Mod<Vec<u8>>> = attrs
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("objectClass"))
            .map(|(n, v)| Mod::Replace(n.into_bytes(), v))
            .collect();
        if !mods.is_empty() {
            let r = self.session.modify(&c.dn, mods);
            self.check("update (an add replayed)", &c.dn, r)?;
        }
        Ok(match self.s.anchor {
            Anchor::Assigned(_) => theirs,
            Anchor::Dn => (c.anchor != c.dn).then(|| c.dn.clone()),
            Anchor::Written(_) => None,
        })
    }

    /// Value changes sent again (a replay): the whole-attribute changes,
    /// then each value alone, a value already added or already removed
    /// being what was asked.
    pub(super) fn replay_values(
        &mut self,
        dn: &str,
        replace: Vec<Mod<Vec<u8>>>,
        by_value: Vec<Mod<Vec<u8>>>,
    ) -> Done<()> {
        if !replace.is_empty() {
            let r = self.session.modify(dn, replace);
            self.check("update", dn, r)?;
        }
        for m in by_value {
            let (add, name, vals) = match m {
                Mod::Add(n, v) => (true, n, v),
                Mod::Delete(n, v) => (false, n, v),
                _ => continue,
            };
            for v in vals {
                let one = HashSet::from([v]);
                let op = if add {
                    Mod::Add(name.clone(), one)
                } else {
                    Mod::Delete(name.clone(), one)
                };
                let r = self.session.modify(dn, vec![op]);
                match self.check("update", dn, r) {
                    Ok(_) => {}
                    Err(Stop::Failed(("attribute-or-value-exists", _))) if add => {}
                    Err(Stop::Failed(("no-such-attribute", _))) if !add => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// The first attribute of an add (not `objectClass`) whose values `entry`
/// does not hold exactly: compared ignoring ASCII case and the spaces
/// around them, as directories store what they were sent.
fn first_difference(
    entry: &crate::ldap::ber::RawEntry,
    attrs: &[(String, HashSet<Vec<u8>>)],
) -> Option<String> {
    let norm = |v: &[u8]| -> Vec<u8> { v.trim_ascii().to_ascii_lowercase() };
    attrs
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("objectClass"))
        .find(|(n, sent)| {
            let held: HashSet<Vec<u8>> = entry
                .values(n)
                .map(|vs| vs.iter().map(|v| norm(v)).collect())
                .unwrap_or_default();
            let sent: HashSet<Vec<u8>> = sent.iter().map(|v| norm(v)).collect();
            held != sent
        })
        .map(|(n, _)| n.clone())
}
