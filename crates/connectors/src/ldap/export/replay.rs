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
    /// An add whose DN exists: update the entry there in place when it is
    /// the same object.
    pub(super) fn replay_add(
        &mut self,
        c: &ExportChange,
        attrs: Vec<(String, HashSet<Vec<u8>>)>,
    ) -> Done<Option<String>> {
        let name = self.s.anchor.name().to_owned();
        let Some(entry) = self.read(&c.dn, &[name.as_str()])? else {
            return Err(Stop::Failed((
                "already-exists",
                format!("`{}` exists and then did not: try again", c.dn),
            )));
        };
        let theirs = anchor_of(self.s, self.session, &entry).ok();
        if let Anchor::Written(_) = self.s.anchor
            && theirs.as_deref() != Some(c.anchor.as_str())
        {
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
