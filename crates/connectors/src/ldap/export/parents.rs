//! Missing parents (`create_parents = true`): an entry provisioned at
//! `cn=Ada Lovelace,ou=Research,ou=people,dc=example,dc=org`, or moved
//! there, when `ou=Research` does not exist yet. The entries missing
//! between the base DN that holds the DN and its parent are added, the
//! highest first, as `organizationalUnit`s; then the add or move is sent
//! again. Only `ou=` entries are made: a missing parent of another kind
//! (a `cn=` container) fails the change with the server's
//! `object-not-found`, as without the setting. An `ou=` made by another
//! writer meanwhile is fine (`already-exists`), and so is a parent that
//! exists by the time the refusal is looked at (made by a sibling's add
//! in flight beside it): the change is sent again. The entries made stay
//! when the last entry under them goes: an empty `ou=` harms nothing,
//! and deleting what nobody asked for is not the export's to decide.

use super::{Done, LdapExport, Stop};
use crate::ldap::dn::Dn;
use std::collections::HashSet;

impl LdapExport<'_> {
    /// Make the missing `ou=` parents of `dn` when the settings say so;
    /// otherwise (or when nothing is missing, or a missing one is not an
    /// `ou=`) the change fails with the server's answer, `why`.
    pub(super) fn make_parents(&mut self, dn: &Dn, why: String) -> Done<()> {
        let refused = |why: String| Stop::Failed(("object-not-found", why));
        if !self.s.create_parents {
            return Err(refused(why));
        }
        // The ancestors below the base DN, nearest first, up to the first
        // one that exists.
        let mut missing: Vec<Dn> = Vec::new();
        let mut there_now = false;
        let mut at = dn.parent();
        while let Some(parent) = at {
            if parent.is_root()
                || self.bases.iter().any(|b| b.same(&parent))
                || !self.bases.iter().any(|b| parent.is_within(b))
            {
                break;
            }
            if self.exists(&parent.to_string())? {
                // Made since the change was refused: by a sibling's add
                // in flight beside it (adds are pipelined), or by another
                // writer. The change is sent again.
                there_now = missing.is_empty();
                break;
            }
            at = parent.parent();
            missing.push(parent);
        }
        if missing.is_empty() {
            return if there_now { Ok(()) } else { Err(refused(why)) };
        }
        for parent in missing.iter().rev() {
            let ou = match parent.rdn().map(|r| r.avas.as_slice()) {
                Some([(attr, value)]) if attr.eq_ignore_ascii_case("ou") => value.clone(),
                _ => {
                    return Err(refused(format!(
                        "{why}; `{parent}` is missing, and create_parents makes only `ou=` entries"
                    )));
                }
            };
            let text = parent.to_string();
            let entry: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
                (
                    b"objectClass".to_vec(),
                    [b"organizationalUnit".to_vec()].into(),
                ),
                (b"ou".to_vec(), [ou.into_bytes()].into()),
            ];
            let r = self.session.add(&text, entry, Vec::new());
            match self.check("add (a missing parent)", &text, r) {
                Ok(_) => tracing::info!(ma = %self.s.ma, dn = %text, "missing parent made"),
                Err(Stop::Failed(("already-exists", _))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
