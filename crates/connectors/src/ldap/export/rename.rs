//! Rename and move: a modify DN with the new RDN (the old RDN value
//! removed) and, when the parent changes, the new superior; a DN another
//! entry has fails the change before anything of it is sent.

use super::{Done, LdapExport, Stop};
use crate::ldap::config::Anchor;
use crate::ldap::dn::Dn;

impl LdapExport<'_> {
    /// Whether the entry at `dn` can be renamed to `new_dn`: another entry
    /// there fails the change before any of it is sent (its other
    /// attributes are not written), naming the entry in the way.
    pub(super) fn rename_possible(&mut self, dn: &str, new_dn: &str) -> Done<()> {
        let now = Dn::parse(dn).map_err(|e| ("invalid-dn", format!("`{dn}`: {e}")))?;
        let new = self.in_scope(new_dn)?;
        if now.same(&new) || self.read(new_dn, &["1.1"])?.is_none() {
            return Ok(());
        }
        Err(Stop::Failed((
            "already-exists",
            format!(
                "rename `{dn}` to `{new_dn}`: another entry is there (nothing of this change was sent)"
            ),
        )))
    }

    /// Move the entry at `dn` to `new_dn`; the new anchor when the anchor
    /// is the DN.
    pub(super) fn rename(&mut self, dn: &str, new_dn: &str) -> Done<Option<String>> {
        let now = Dn::parse(dn).map_err(|e| ("invalid-dn", format!("`{dn}`: {e}")))?;
        let new = self.in_scope(new_dn)?;
        let renamed = (self.s.anchor == Anchor::Dn).then(|| new_dn.to_owned());
        let Some(rdn) = new.rdn() else {
            return Err(Stop::Failed((
                "invalid-dn",
                format!("`{new_dn}` has no RDN"),
            )));
        };
        if now.same(&new) {
            // The same entry: nothing to do, unless a value's case changes
            // (a directory keeps it: `cn=Grace HOPPER`). The entry's own
            // RDN takes it by a modify DN; a parent's case is that entry's
            // own name, which this change cannot give it: the parent stays
            // as the directory has it (a rule or an HR department in
            // another case renamed nothing, or failed for ever: a review).
            if now.rdn().is_some_and(|r| r.same_case(rdn)) {
                return Ok(renamed.map(|_| dn.to_owned()));
            }
            let kept = format!("{},{}", rdn.raw, now.parent_text());
            let r = self.session.modify_dn(dn, &rdn.raw, None);
            self.check(&format!("rename to `{kept}` of"), dn, r)?;
            return Ok((self.s.anchor == Anchor::Dn).then_some(kept));
        }
        let parent = new.parent_text();
        let superior = (!now.same_parent(&new)).then_some(parent.as_str());
        let r = self.session.modify_dn(dn, &rdn.raw, superior);
        let what = format!("rename to `{new_dn}` of");
        match self.check(&what, dn, r) {
            Ok(_) => {}
            // A move under a missing parent: made when the settings say so.
            Err(Stop::Failed(("object-not-found", why))) if superior.is_some() => {
                self.make_parents(&new, why)?;
                let r = self.session.modify_dn(dn, &rdn.raw, superior);
                self.check(&what, dn, r)?;
            }
            Err(e) => return Err(e),
        }
        Ok(renamed)
    }
}
